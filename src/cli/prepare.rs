//! `lab prepare SPEC`: build the cache of a spec's datasets, with timings; with
//! `--show N`, also what was read (`lab data`'s view).

use super::out;
use super::spec_args::SpecArgs;
use crate::data::{self, Warmed};
use crate::runner::RunOptions;
use std::path::Path;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    spec: SpecArgs,
    /// Build again even when the cache already holds the dataset.
    #[arg(long)]
    rebuild: bool,
    /// How to print each dataset's report.
    #[arg(long, value_enum, default_value_t = PrepareFormat::Text)]
    format: PrepareFormat,
    /// The same as --format json (kept for scripts written before --format).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Also print what was read, as `lab data` does, with N example rows.
    #[arg(long, value_name = "N")]
    show: Option<usize>,
}

/// `lab prepare`'s report: lines of text, or one JSON object per dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PrepareFormat {
    /// A few lines per dataset: rows, rate, timings, splits, cache file.
    Text,
    /// One JSON object per line per dataset (JSON lines).
    Json,
}

/// Prepare (clean, split, encode) every distinct dataset of the spec's grid into the
/// cache beside the database, and report rows per second.
pub fn execute(args: Args, db: &Path) -> anyhow::Result<i32> {
    let loaded = args.spec.load()?;
    let cache = RunOptions::new(db.to_path_buf()).root().join("cache");
    // Trials differing only in model/train settings (or balance) share a dataset.
    for (sweep, trial) in super::data::distinct(&loaded)? {
        let start = Instant::now();
        let warmed = data::warm_cache(
            &trial.data,
            &trial.preprocess,
            &loaded.base_dir,
            &cache,
            args.rebuild,
        )?;
        let seconds = start.elapsed().as_secs_f64();
        let path = data::data_path(&trial.data, &loaded.base_dir);
        let examples = match args.show {
            Some(n) => Some(super::data::example_rows(&loaded, &trial, &cache, n)?),
            None => None,
        };
        if args.json || args.format == PrepareFormat::Json {
            let mut v = json(&path, &warmed, seconds);
            if let (Some(examples), Some(obj)) = (&examples, v.as_object_mut()) {
                let view = super::data::view_json(&sweep, &warmed.report, examples);
                obj.insert("data_report".into(), view["report"].clone());
                obj.insert("examples".into(), view["examples"].clone());
            }
            out::line(v)?;
        } else {
            out::text(text(&path, &warmed, seconds))?;
            if let Some(examples) = &examples {
                out::text(super::data::view_text(&sweep, &warmed.report, examples))?;
            }
        }
    }
    Ok(super::exit::OK)
}

fn json(path: &Path, w: &Warmed, seconds: f64) -> serde_json::Value {
    let mut v = serde_json::json!({
        "data": path.display().to_string(),
        "key": w.key,
        "file": w.file.display().to_string(),
        "bytes": w.bytes,
        "cached": w.built.is_none(),
        "seconds": seconds,
        "hash_seconds": w.hashing.as_secs_f64(),
    });
    if let (Some(b), Some(obj)) = (&w.built, v.as_object_mut()) {
        let extra = serde_json::json!({
            "rows": b.rows,
            "rows_read": b.rows_read,
            "rows_per_second": b.rows as f64 / seconds.max(1e-9),
            "scan_seconds": b.scan.as_secs_f64(),
            "count_seconds": b.count.as_secs_f64(),
            "encode_seconds": b.encode.as_secs_f64(),
            "vocab": b.vocab,
            "id_width": b.id_width,
            "split_rows": b.split_rows,
            "split_tokens": b.split_tokens,
        });
        if let Some(extra) = extra.as_object() {
            obj.extend(extra.clone());
        }
    }
    v
}

fn text(path: &Path, w: &Warmed, seconds: f64) -> String {
    let mb = w.bytes as f64 / 1e6;
    let Some(b) = &w.built else {
        return format!(
            "{}: already cached in {} ({mb:.1} MB; checked in {seconds:.1} s)\n",
            path.display(),
            w.file.display()
        );
    };
    let [tr, va, te] = b.split_rows;
    format!(
        "{}: {} rows in {seconds:.2} s = {:.0} rows/s (hash {:.2} s, scan {:.2} s, \
         count {:.2} s, encode {:.2} s)\n  \
         train {tr} / valid {va} / test {te} rows, {} ids as u{}, vocabulary {}\n  \
         cache: {} ({mb:.1} MB)\n",
        path.display(),
        b.rows,
        b.rows as f64 / seconds.max(1e-9),
        w.hashing.as_secs_f64(),
        b.scan.as_secs_f64(),
        b.count.as_secs_f64(),
        b.encode.as_secs_f64(),
        b.split_tokens.iter().sum::<usize>(),
        b.id_width * 8,
        b.vocab,
        w.file.display(),
    )
}
