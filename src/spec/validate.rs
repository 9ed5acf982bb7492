//! Range checks: values of the right type that still make no sense.
//! The first problem found is reported, with the key it belongs to.

use super::config::{
    DataSection, EmbeddingFormat, ExperimentSection, Mode, Optimizer, Sample, TrialConfig,
};
use super::Problem;
use std::path::Path;

type Check = Result<(), Problem>;

fn fail(key: &str, message: impl Into<String>) -> Check {
    Err(Problem::at_key(key, message.into()))
}

/// Longest experiment name, in bytes: it becomes a directory name under
/// `runs/` and part of report file names, which file systems cap at 255.
pub const MAX_NAME_LEN: usize = 100;

/// Names of what lab keeps beside the database (the dataset cache, Slurm
/// shards), compared case-insensitively (macOS and Windows ignore case).
const RESERVED_NAMES: [&str; 2] = ["cache", "shards"];

/// Endings of the database and its SQLite side files (`lab.db`, `lab.db-wal`).
const RESERVED_ENDINGS: [&str; 4] = [".db", ".db-wal", ".db-shm", ".db-journal"];

/// Whether `name` may name an experiment. An experiment's name becomes a path
/// component (`runs/<name>/`, `<name>.html`), so this is the one rule for every
/// place a name is read: the spec, a shard being merged, a queued trial's config.
///
/// # Errors
/// What is wrong with the name and what is allowed.
pub fn check_experiment_name(name: &str) -> Result<(), String> {
    let shown: String = name.chars().take(40).flat_map(char::escape_debug).collect();
    let shown = if name.chars().count() > 40 {
        format!("{shown}...")
    } else {
        shown
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || !name.chars().all(allowed) {
        return Err(format!(
            "`{shown}` is not a valid name: it becomes a directory name, so use only letters, digits, `_`, `.` and `-`"
        ));
    }
    if name.starts_with('.') {
        return Err(format!(
            "`{shown}` is not a valid name: it becomes a directory name, which must not start with `.`"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the name is {} characters long, more than the {MAX_NAME_LEN} allowed (it becomes a directory name)",
            name.len()
        ));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_NAMES.contains(&lower.as_str())
        || RESERVED_ENDINGS.iter().any(|e| lower.ends_with(e))
    {
        return Err(format!(
            "`{shown}` is not a valid name: lab keeps its database (`*.db` and its side files), \
             `cache/` and `shards/` beside the experiments' directories; choose another name"
        ));
    }
    Ok(())
}

/// The experiment section: not part of any trial, checked once.
pub(crate) fn experiment(e: &ExperimentSection) -> Check {
    if let Err(message) = check_experiment_name(&e.name) {
        return fail("experiment.name", message);
    }
    if e.seeds.is_empty() {
        return fail("experiment.seeds", "needs at least one seed");
    }
    // A set, not a scan per seed: a long list must not take quadratic time.
    let mut seen = std::collections::HashSet::with_capacity(e.seeds.len());
    for s in &e.seeds {
        if !seen.insert(s) {
            return fail(
                "experiment.seeds",
                format!("seed {s} is listed twice; its trials would be identical"),
            );
        }
    }
    Ok(())
}

/// A path the spec names that exists but is not a regular file (a FIFO or a
/// device would hang the reader, a directory fail it late).
fn regular(key: &str, path: &Path) -> Check {
    crate::data::read::check_regular(path).or_else(|why| fail(key, why))
}

/// Every field of one grid point. `base_dir` resolves a stopword file.
pub(crate) fn trial(t: &TrialConfig, base_dir: &Path) -> Check {
    data(t, base_dir)?;
    preprocess(t, base_dir)?;
    model(t, base_dir)?;
    train(t)
}

fn data(t: &TrialConfig, base_dir: &Path) -> Check {
    let d = &t.data;
    if d.path.as_os_str().is_empty() {
        return fail(
            "data.path",
            "must name the data file (CSV or TSV, relative to the spec file)",
        );
    }
    if crate::data::read::hf::is_hf(&d.path) {
        if let Err(e) = crate::data::read::hf::parse(&d.path.to_string_lossy()) {
            return fail("data.path", e.to_string());
        }
    } else {
        // Whether it exists is checked with the data; a FIFO or device would hang that.
        regular("data.path", &base_dir.join(&d.path))?;
    }
    if d.text.is_empty() {
        return fail("data.text", "must name the text column");
    }
    if d.label.is_empty() {
        return fail("data.label", "must name the label column");
    }
    dialect(d)?;
    if d.limit == Some(0) {
        return fail(
            "data.limit",
            "must be at least 1 (leave it out to read every row)",
        );
    }
    if let Some(sample) = d.sample {
        sample_size(sample)?;
    }
    let s = &d.split;
    for (name, v) in [("train", s.train), ("valid", s.valid), ("test", s.test)] {
        if !(v > 0.0 && v <= 1.0) {
            return fail(
                &format!("data.split.{name}"),
                format!("expected a fraction in (0, 1], found {v}"),
            );
        }
    }
    let sum = s.train + s.valid + s.test;
    if (sum - 1.0).abs() > 1e-6 {
        return fail(
            "data.split",
            format!("train + valid + test must be 1, found {sum}"),
        );
    }
    Ok(())
}

/// `data.delimiter` and `data.encoding`: what the delimited reader can use.
fn dialect(d: &DataSection) -> Check {
    if let Some(delim) = &d.delimiter {
        let one_byte = delim.len() == 1 && !matches!(delim.as_str(), "\n" | "\r");
        if !one_byte && !matches!(delim.as_str(), "tab" | "\\t") {
            return fail(
                "data.delimiter",
                format!(
                    "expected a single character, ASCII and not a line break \
                     (e.g. \",\", \";\", \"|\" or \"\\t\"), found {delim:?}"
                ),
            );
        }
    }
    let quoting = d.quoting.unwrap_or(super::config::Quoting::Rfc4180);
    if d.delimiter.as_deref() == Some("\"") && quoting == super::config::Quoting::Rfc4180 {
        return fail(
            "data.delimiter",
            "a quote cannot separate fields that RFC 4180 quotes; set data.quoting = \"none\" \
             or another delimiter",
        );
    }
    if let Some(label) = &d.encoding {
        if crate::data::read::encoding_for_label(label).is_none() {
            return fail(
                "data.encoding",
                format!(
                    "{label:?} is not an encoding label; expected a WHATWG label such as \
                     \"utf-8\", \"utf-16le\", \"utf-16be\", \"windows-1252\", \"latin1\", \
                     \"iso-8859-15\", \"shift_jis\" or \"gbk\""
                ),
            );
        }
    }
    Ok(())
}

/// `data.sample`: a row count >= 1 or a fraction strictly between 0 and 1 (the
/// label normalisation's names are checked by their type).
fn sample_size(sample: Sample) -> Check {
    let ok = match sample {
        Sample::Rows(n) => n >= 1,
        Sample::Fraction(f) => f > 0.0 && f < 1.0,
    };
    if ok {
        return Ok(());
    }
    let found = match sample {
        Sample::Rows(n) => n.to_string(),
        Sample::Fraction(f) => f.to_string(),
    };
    fail(
        "data.sample",
        format!(
            "expected a row count >= 1 (e.g. 5000) or a fraction in (0, 1) (e.g. 0.1), \
             found {found}; leave it out to use every row"
        ),
    )
}

fn preprocess(t: &TrialConfig, base_dir: &Path) -> Check {
    let p = &t.preprocess;
    if p.min_freq == 0 {
        return fail("preprocess.min_freq", "must be at least 1");
    }
    if p.max_vocab < 3 {
        return fail(
            "preprocess.max_vocab",
            format!(
                "must be at least 3 (padding, unknown and one word), found {}",
                p.max_vocab
            ),
        );
    }
    if p.max_len == 0 {
        return fail("preprocess.max_len", "must be at least 1");
    }
    // The names are checked by their type; a word list must exist.
    if let Some(list) = p.stopwords.file() {
        regular("preprocess.stopwords", &base_dir.join(list))?;
        if !base_dir.join(list).is_file() {
            return fail(
                "preprocess.stopwords",
                format!(
                    "expected \"none\", \"english\" or a word-list file; {} does not exist",
                    base_dir.join(list).display()
                ),
            );
        }
    }
    Ok(())
}

/// The most stacked recurrent layers a spec may ask for.
pub const MAX_LAYERS: usize = 32;
/// The widest embedding or hidden state (per direction) a spec may ask for.
pub const MAX_WIDTH: usize = 8192;

fn model(t: &TrialConfig, base_dir: &Path) -> Check {
    let m = &t.model;
    // The upper bounds are sanity bounds, far above any recurrent text
    // classifier's, so that a typo is refused instead of allocating gigabytes.
    for (name, v, max) in [
        ("layers", m.layers, MAX_LAYERS),
        ("embedding_dim", m.embedding_dim, MAX_WIDTH),
        ("hidden", m.hidden, MAX_WIDTH),
    ] {
        if v == 0 {
            return fail(&format!("model.{name}"), "must be at least 1");
        }
        if v > max {
            return fail(
                &format!("model.{name}"),
                format!("expected at most {max}, found {v}"),
            );
        }
    }
    if !(0.0..1.0).contains(&m.dropout) {
        return fail(
            "model.dropout",
            format!("expected a probability in [0, 1), found {}", m.dropout),
        );
    }
    match &m.embeddings {
        Some(e) => embeddings(e, base_dir),
        None => Ok(()),
    }
}

/// The vectors file (and the word list of `npy+vocab`) must exist; whether the
/// dimension matches is checked when the file is read (the runner does so before
/// anything is recorded).
fn embeddings(e: &super::EmbeddingsSection, base_dir: &Path) -> Check {
    if e.path.as_os_str().is_empty() {
        return fail(
            "model.embeddings.path",
            "must name a file of pretrained vectors (relative to the spec file), or \"none\"",
        );
    }
    let npy = e.format == EmbeddingFormat::NpyVocab;
    if !e.has_file() {
        if e.vocab.is_some() {
            return fail(
                "model.embeddings.vocab",
                "names a word list, but model.embeddings.path is \"none\"",
            );
        }
        return Ok(());
    }
    let path = base_dir.join(&e.path);
    regular("model.embeddings.path", &path)?;
    if !path.is_file() {
        return fail(
            "model.embeddings.path",
            format!(
                "the vectors file {} does not exist (paths are relative to the spec file)",
                path.display()
            ),
        );
    }
    match (&e.vocab, npy) {
        (None, true) => fail(
            "model.embeddings.vocab",
            "format = \"npy+vocab\" needs the word list: vocab = \"words.txt\" (one word per line, row i of the .npy)",
        ),
        (Some(_), false) => fail(
            "model.embeddings.vocab",
            "only format = \"npy+vocab\" takes a separate word list; the other formats carry their words",
        ),
        (Some(v), true) => {
            let list = base_dir.join(v);
            regular("model.embeddings.vocab", &list)?;
            if list.is_file() {
                return Ok(());
            }
            fail(
                "model.embeddings.vocab",
                format!(
                    "the word list {} does not exist (paths are relative to the spec file)",
                    list.display()
                ),
            )
        }
        _ => Ok(()),
    }
}

fn train(t: &TrialConfig) -> Check {
    let tr = &t.train;
    if tr.epochs == 0 {
        return fail("train.epochs", "must be at least 1");
    }
    if tr.batch_size == 0 {
        return fail("train.batch_size", "must be at least 1");
    }
    if !(tr.lr.is_finite() && tr.lr > 0.0) {
        return fail(
            "train.lr",
            format!("expected a finite number > 0, found {}", tr.lr),
        );
    }
    if !(tr.weight_decay.is_finite() && tr.weight_decay >= 0.0) {
        return fail(
            "train.weight_decay",
            format!("expected a finite number >= 0, found {}", tr.weight_decay),
        );
    }
    if !(0.0..1.0).contains(&tr.momentum) {
        return fail(
            "train.momentum",
            format!("expected a value in [0, 1), found {}", tr.momentum),
        );
    }
    if tr.sparse_embedding && tr.optimizer == Optimizer::Sgd && tr.momentum != 0.0 {
        return fail(
            "train.sparse_embedding",
            format!(
                "sparse embedding updates with sgd need train.momentum = 0 (found {}); set it, or use adam",
                tr.momentum
            ),
        );
    }
    if !(tr.grad_clip.is_finite() && tr.grad_clip >= 0.0) {
        return fail(
            "train.grad_clip",
            format!(
                "expected a finite number >= 0 (0 turns clipping off), found {}",
                tr.grad_clip
            ),
        );
    }
    // The monitor's and the device's names are checked by their types.
    if let Some(es) = &tr.early_stopping {
        let want = es.monitor.mode();
        if es.mode != want {
            let w = if want == Mode::Min { "min" } else { "max" };
            return fail(
                "train.early_stopping.mode",
                format!(
                    "`{}` improves in the other direction; use mode = \"{w}\"",
                    es.monitor
                ),
            );
        }
        if es.patience == 0 {
            return fail("train.early_stopping.patience", "must be at least 1");
        }
    }
    Ok(())
}
