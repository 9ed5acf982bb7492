//! A generated store for `lab ui`'s load test (bench/ui_load.sh): one big
//! experiment of N trials and a few small ones, written through lab's own
//! library (specs loaded and planned as `lab run` plans them, rows written by
//! `store::Store`), with simulated curves, metrics and per-example predictions.
//!
//! cargo run --release --example ui_store -- OUT.db [--trials 10000] [--epochs 10]
//!     [--running 4] [--experiments 3] [--limit 3000] [--seed 0]
//!
//! - `big`: `[sweep]` cell × bidirectional × layers, 5 seeds, and a `[search]`
//!   grid over hidden × dropout × lr (as many lr values as N needs) with a
//!   median pruner, on Rotten Tomatoes (the first `--limit` rows): the first N
//!   trials of that plan. About 5% stay pending, `--running` run (epochs
//!   recorded so far, a fresh lease), about 2% failed, about 8% pruned, the
//!   rest done with metrics, confusion matrices and valid/test predictions.
//! - `--experiments` − 1 small ones, alternately a random search with ASHA on
//!   the 5-class Amazon ratings (`search-K`, 40 configurations) and a grid of
//!   12 trials like experiments/quick.toml (`grid-K`).
//!
//! Every number is made up but consistent: metrics and confusion matrices are
//! computed by `train::metrics::evaluate` from the simulated predictions, which
//! are over the real split rows (record indices, text hashes, labels), so the
//! test-split fingerprints match and the UI can show the texts. Trials of one
//! experiment err on the same hard rows more often (a shared difficulty per
//! row), as real models do. Times are those of the generation. No artifact
//! files are written or recorded.
//!
//! The store is built in a temporary directory (under /dev/shm where it
//! exists: one SQLite commit per claim and per trial, which costs an fsync on
//! a disk) and then copied to OUT, which must not exist.

use anyhow::{anyhow, bail, ensure, Context, Result};
use lab::data::{self, Dataset};
use lab::runner::provenance::Provenance;
use lab::spec::{self, Cell, LoadedSpec, TrialConfig};
use lab::store::{EpochRecord, MetricRow, NewTrial, Predictions, Store, TrialResult};
use lab::train::metrics::evaluate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: ui_store OUT.db [--trials N] [--epochs N] [--running N] \
                     [--experiments N] [--limit ROWS] [--seed S]";

/// The command line.
struct Args {
    out: PathBuf,
    trials: usize,
    epochs: usize,
    running: usize,
    experiments: usize,
    limit: usize,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        out: PathBuf::new(),
        trials: 10_000,
        epochs: 10,
        running: 4,
        experiments: 3,
        limit: 3000,
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<u64> {
            let v = it.next().with_context(|| format!("{name} needs a value"))?;
            v.parse()
                .with_context(|| format!("{name} {v}: not a whole number"))
        };
        match a.as_str() {
            "--trials" => args.trials = value("--trials")? as usize,
            "--epochs" => args.epochs = value("--epochs")? as usize,
            "--running" => args.running = value("--running")? as usize,
            "--experiments" => args.experiments = value("--experiments")? as usize,
            "--limit" => args.limit = value("--limit")? as usize,
            "--seed" => args.seed = value("--seed")?,
            s if s.starts_with("--") => bail!("unknown option {s}"),
            s if args.out.as_os_str().is_empty() => args.out = s.into(),
            s => bail!("one output file only ({s})"),
        }
    }
    ensure!(!args.out.as_os_str().is_empty(), "no output file");
    ensure!(args.trials >= 1, "--trials must be at least 1");
    ensure!(args.epochs >= 3, "--epochs must be at least 3");
    ensure!(args.experiments >= 1, "--experiments must be at least 1");
    ensure!(args.limit >= 200, "--limit must be at least 200 rows");
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ui_store: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match generate(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ui_store: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Build every experiment in a staging store, then copy it to `args.out`.
fn generate(args: &Args) -> Result<()> {
    ensure!(
        !args.out.exists(),
        "{} exists; remove it first",
        args.out.display()
    );
    let start = Instant::now();
    let shm = Path::new("/dev/shm");
    let stage = if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("ui_store")
            .tempdir_in(shm)?
    } else {
        tempfile::Builder::new().prefix("ui_store").tempdir()?
    };
    let db = stage.path().join("lab.db");
    let store = Store::open(&db)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut written = Vec::new();
    for k in 0..args.experiments {
        let (name, source, mix) = experiment(args, k);
        let spec_path = stage.path().join(format!("{name}.toml"));
        std::fs::write(&spec_path, &source)?;
        let no_env = std::iter::empty::<(String, String)>();
        let loaded = spec::load_with_env_limited(&spec_path, &[], no_env, usize::MAX)
            .map_err(|e| anyhow!("{e}"))?;
        let limit = if k == 0 { args.trials } else { usize::MAX };
        let counts = record_experiment(&store, &loaded, limit, &mix, &mut rng)?;
        println!("{name}: {counts}");
        written.push(name);
    }
    drop(store); // the last connection checkpoints the WAL into the file
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(&db, &args.out)
        .with_context(|| format!("cannot copy the store to {}", args.out.display()))?;
    let bytes = std::fs::metadata(&args.out)?.len();
    println!(
        "wrote {} ({} experiments: {}; {:.1} MB) in {:.1} s",
        args.out.display(),
        written.len(),
        written.join(", "),
        bytes as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// How an experiment's trials end, as fractions of its trials.
struct Mix {
    pending: f64,
    running: usize,
    failed: f64,
    pruned: f64,
    /// Mean accuracy of a poor configuration and of the best one.
    floor: f64,
    ceiling: f64,
}

/// Experiment `k`'s name, spec text and outcome mix: 0 is the big one.
fn experiment(args: &Args, k: usize) -> (String, String, Mix) {
    let root = env!("CARGO_MANIFEST_DIR");
    let rotten = format!("{root}/data/rotten_tomatoes.csv");
    if k == 0 {
        let mix = Mix {
            pending: 0.05,
            running: args.running,
            failed: 0.02,
            pruned: 0.08,
            floor: 0.55,
            ceiling: 0.76,
        };
        return ("big".into(), big_spec(args, &rotten), mix);
    }
    let mut mix = Mix {
        pending: 0.0,
        running: 0,
        failed: 0.0,
        pruned: 0.0,
        floor: 0.55,
        ceiling: 0.74,
    };
    if k % 2 == 1 {
        let amazon = format!("{root}/data/amazon_ratings.csv");
        mix.pruned = 0.4;
        (mix.floor, mix.ceiling) = (0.3, 0.5);
        let name = format!("search-{k}");
        let source = search_spec(&name, &amazon, args.epochs, k as u64);
        (name, source, mix)
    } else {
        let name = format!("grid-{k}");
        (name.clone(), grid_spec(&name, &rotten, args.limit), mix)
    }
}

/// The big experiment: 8 sweep points × 5 seeds × (25 × L) search points,
/// with L learning rates, enough for `args.trials`.
fn big_spec(args: &Args, data: &str) -> String {
    let lrs = args.trials.div_ceil(1000).max(1);
    let lr_values: Vec<String> = (0..lrs)
        .map(|i| {
            let t = if lrs == 1 {
                0.74
            } else {
                i as f64 / (lrs - 1) as f64
            };
            format!("{:.2e}", 10f64.powf(-4.0 + 2.0 * t))
        })
        .collect();
    format!(
        r#"# Generated by examples/ui_store.rs for lab ui's load test (bench/ui_load.sh).
[experiment]
name = "big"
description = "A large sweep: cell, direction and depth on a grid, hidden, dropout and lr searched as a grid with a median pruner"
seeds = [1, 2, 3, 4, 5]

[data]
path = "{data}"
limit = {limit}
split = {{ train = 0.8, valid = 0.1, test = 0.1, stratify = true }}

[preprocess]
min_freq = 2
max_len = 32

[model]
embedding_dim = 64
pooling = "mean"

[train]
epochs = {epochs}
batch_size = 64
grad_clip = 5.0
early_stopping = {{ monitor = "valid.macro_f1", mode = "max", patience = 2 }}

[sweep]
"model.cell" = ["lstm", "gru"]
"model.bidirectional" = [false, true]
"model.layers" = [1, 2]

[search]
strategy = "grid"
objective = {{ metric = "valid.macro_f1" }}

[search.space]
"model.hidden" = {{ choice = [32, 64, 128, 256, 512] }}
"model.dropout" = {{ choice = [0.0, 0.1, 0.2, 0.3, 0.5] }}
"train.lr" = {{ choice = [{lr}] }}

[search.pruner]
kind = "median"
min_epochs = 2
"#,
        limit = args.limit,
        epochs = args.epochs,
        lr = lr_values.join(", ")
    )
}

/// A small random search with ASHA on a 5-class data set.
fn search_spec(name: &str, data: &str, epochs: usize, seed: u64) -> String {
    format!(
        r#"# Generated by examples/ui_store.rs for lab ui's load test (bench/ui_load.sh).
[experiment]
name = "{name}"
description = "A random search with ASHA on Amazon review sentence ratings"
seeds = [7]

[data]
path = "{data}"
split = {{ train = 0.8, valid = 0.1, test = 0.1, stratify = true }}

[preprocess]
min_freq = 1
max_len = 48

[model]
embedding_dim = 64
pooling = "max"

[train]
epochs = {epochs}
batch_size = 32

[search]
strategy = "random"
trials = 40
seed = {seed}
objective = {{ metric = "valid.macro_f1" }}

[search.space]
"model.cell" = {{ choice = ["lstm", "gru"] }}
"model.hidden" = {{ choice = [32, 64, 128, 256] }}
"model.dropout" = {{ uniform = [0.0, 0.5] }}
"train.lr" = {{ loguniform = [1e-4, 1e-2] }}

[search.pruner]
kind = "asha"
min_epochs = 2
"#
    )
}

/// A small grid like experiments/quick.toml.
fn grid_spec(name: &str, data: &str, limit: usize) -> String {
    format!(
        r#"# Generated by examples/ui_store.rs for lab ui's load test (bench/ui_load.sh).
[experiment]
name = "{name}"
seeds = [1, 2, 3]

[data]
path = "{data}"
limit = {limit}

[preprocess]
min_freq = 2
max_len = 32

[model]
embedding_dim = 32
hidden = 32
dropout = 0.2
pooling = "mean"

[train]
epochs = 4
batch_size = 32
lr = 5e-3

[sweep]
"model.cell" = ["lstm", "gru"]
"model.bidirectional" = [false, true]
"#
    )
}

/// The spec's trials as `lab run` plans a grid or a random search: the sweep
/// grid (seeds innermost) for every search proposal, duplicates dropped; each
/// with its search number.
fn plan(loaded: &LoadedSpec) -> Result<Vec<(TrialConfig, Option<i64>)>> {
    let grid = spec::expand(loaded).map_err(|e| anyhow!("{e}"))?;
    let Some(search) = &loaded.spec.search else {
        return Ok(grid.into_iter().map(|c| (c, None)).collect());
    };
    let params = spec::search_space(loaded).map_err(|e| anyhow!("{e}"))?;
    let proposals = lab::search::sample::fixed(
        &params,
        search.strategy,
        search.seed,
        search.trials.unwrap_or(0),
    )
    .map_err(|e| anyhow!(e))?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for proposal in &proposals {
        for base in &grid {
            let config = spec::apply(base, &params, &proposal.values, &loaded.base_dir)
                .map_err(|e| anyhow!(e))?;
            if seen.insert(spec::config_hash(&config)) {
                out.push((config, Some(proposal.number as i64)));
            }
        }
    }
    Ok(out)
}

/// One split's rows as `lab run` records predictions of them, and how hard
/// each row is (shared by the experiment's trials).
struct Rows {
    rows: Vec<u32>,
    hashes: Vec<u64>,
    labels: Vec<u32>,
    difficulty: Vec<f64>,
}

impl Rows {
    fn of(split: &data::Split, rng: &mut ChaCha8Rng) -> Result<Rows> {
        let (rows, hashes) = split.origins().context("the split has no origins")?;
        let labels = split.labels.to_vec();
        let difficulty = labels.iter().map(|_| normal(rng)).collect();
        Ok(Rows {
            rows: rows.to_vec(),
            hashes: hashes.to_vec(),
            labels,
            difficulty,
        })
    }
}

/// What every trial of one experiment shares.
struct Shared {
    classes: Vec<String>,
    valid: Rows,
    test: Rows,
    test_split: String,
    train_rows: usize,
    data_report: String,
    provenance: Provenance,
    epochs: usize,
    pruner: Option<(String, usize)>,
}

impl Shared {
    fn new(loaded: &LoadedSpec, first: &TrialConfig, rng: &mut ChaCha8Rng) -> Result<Shared> {
        let dataset: Dataset =
            data::prepare(&first.data, &first.preprocess, &loaded.base_dir, None)?;
        let test = Rows::of(&dataset.test, rng)?;
        let test_split = lab::stats::fingerprint::test_split(
            &dataset.classes,
            &test.rows,
            &test.hashes,
            &test.labels,
        );
        let data_report = match &dataset.report {
            Some(r) => serde_json::to_string(r.as_ref())?,
            None => "{}".into(),
        };
        let pruner = loaded
            .spec
            .search
            .as_ref()
            .and_then(|s| s.pruner.as_ref())
            .map(|p| (format!("{:?}", p.kind).to_lowercase(), p.min_epochs.max(1)));
        Ok(Shared {
            classes: dataset.classes.clone(),
            valid: Rows::of(&dataset.valid, rng)?,
            test,
            test_split,
            train_rows: dataset.train.len(),
            data_report,
            provenance: Provenance::collect(first, &loaded.base_dir, "cuda:0"),
            epochs: first.train.epochs,
            pruner,
        })
    }
}

/// How a trial ends up.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    Pending,
    /// Running with this many epochs recorded.
    Running(usize),
    /// Failed after this many epochs.
    Failed(usize),
    /// Pruned after this many epochs.
    Pruned(usize),
    Done,
}

/// Per status, how many trials were written.
#[derive(Default)]
struct Counts {
    pending: usize,
    running: usize,
    failed: usize,
    pruned: usize,
    done: usize,
    seconds: f64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} trials: {} done, {} pruned, {} failed, {} running, {} pending ({:.1} s)",
            self.pending + self.running + self.failed + self.pruned + self.done,
            self.done,
            self.pruned,
            self.failed,
            self.running,
            self.pending,
            self.seconds
        )
    }
}

/// Record the experiment and its first `limit` planned trials, each taken to
/// its fate.
fn record_experiment(
    store: &Store,
    loaded: &LoadedSpec,
    limit: usize,
    mix: &Mix,
    rng: &mut ChaCha8Rng,
) -> Result<Counts> {
    let start = Instant::now();
    let mut planned = plan(loaded)?;
    planned.truncate(limit);
    let first = &planned.first().context("the spec plans no trial")?.0;
    let shared = Shared::new(loaded, first, rng)?;
    let name = &loaded.spec.experiment.name;
    let experiment =
        store.upsert_experiment(name, &loaded.source, &spec::spec_hash(&loaded.source))?;
    let rows: Vec<NewTrial> = planned
        .iter()
        .map(|(config, number)| {
            Ok(NewTrial {
                config_json: serde_json::to_string(config)?,
                config_hash: spec::config_hash(config),
                seed: config.seed,
                search_number: *number,
            })
        })
        .collect::<Result<_>>()?;
    let ids = store.add_trials(experiment, &rows)?;
    let qualities: Vec<f64> = planned
        .iter()
        .map(|(c, _)| quality(c, mix) + 0.008 * normal(rng))
        .collect();
    let fates = fates(&qualities, mix, &shared, rng);
    let mut counts = Counts::default();
    let mut at_epoch: Vec<Vec<f64>> = vec![Vec::new(); shared.epochs + 1];
    for (i, ((id, (config, _)), fate)) in ids.iter().zip(&planned).zip(&fates).enumerate() {
        let curve = simulate(config, qualities[i], &shared, rng);
        let fate = clip(*fate, curve.len());
        write_trial(store, *id, config, fate, &curve, &shared, &at_epoch, rng)?;
        if fate == Fate::Done {
            for e in &curve {
                at_epoch[e.epoch].push(e.valid_macro_f1);
            }
        }
        count(&mut counts, fate);
    }
    counts.seconds = start.elapsed().as_secs_f64();
    Ok(counts)
}

fn count(counts: &mut Counts, fate: Fate) {
    match fate {
        Fate::Pending => counts.pending += 1,
        Fate::Running(_) => counts.running += 1,
        Fate::Failed(_) => counts.failed += 1,
        Fate::Pruned(_) => counts.pruned += 1,
        Fate::Done => counts.done += 1,
    }
}

/// A fate that fits a curve of `epochs` epochs (early stopping may end a
/// trial before a pruner or a running trial would have got there).
fn clip(fate: Fate, epochs: usize) -> Fate {
    match fate {
        Fate::Running(k) => Fate::Running(k.min(epochs - 1)),
        Fate::Failed(k) => Fate::Failed(k.min(epochs - 1)),
        Fate::Pruned(k) if k >= epochs => Fate::Done,
        f => f,
    }
}

/// Fates in claim order: finished trials first (the worst configurations
/// pruned, a few failed), then the running ones, then the pending tail.
fn fates(qualities: &[f64], mix: &Mix, shared: &Shared, rng: &mut ChaCha8Rng) -> Vec<Fate> {
    let n = qualities.len();
    let pending = (n as f64 * mix.pending).round() as usize;
    let running = mix.running.min(n - pending);
    let finished = n - pending - running;
    let mut sorted = qualities[..finished].to_vec();
    sorted.sort_by(f64::total_cmp);
    let cut = match (&shared.pruner, sorted.len()) {
        (Some(_), m) if m > 0 => sorted[((m as f64 * mix.pruned) as usize).min(m - 1)],
        _ => f64::NEG_INFINITY,
    };
    let min_epochs = shared.pruner.as_ref().map_or(2, |p| p.1);
    (0..n)
        .map(|i| {
            if i >= finished + running {
                Fate::Pending
            } else if i >= finished {
                Fate::Running(rng.gen_range(1..shared.epochs))
            } else if rng.gen_bool(mix.failed) {
                Fate::Failed(rng.gen_range(0..shared.epochs / 2))
            } else if qualities[i] < cut && i >= 10 {
                Fate::Pruned(min_epochs + rng.gen_range(0..2))
            } else {
                Fate::Done
            }
        })
        .collect()
}

/// The mean accuracy a configuration reaches: best near lr 3e-3, dropout
/// 0.3, hidden 128, bidirectional, GRU.
fn quality(c: &TrialConfig, mix: &Mix) -> f64 {
    let m = &c.model;
    let penalty = 0.35 * (c.train.lr / 3e-3).log10().powi(2)
        + 0.8 * (m.dropout - 0.3).powi(2)
        + 0.03 * (m.hidden as f64 / 128.0).log2().powi(2)
        + if m.cell == Cell::Lstm { 0.02 } else { 0.0 }
        + if m.bidirectional { 0.0 } else { 0.04 }
        + if m.layers > 1 { 0.0 } else { 0.01 };
    mix.floor + (mix.ceiling - mix.floor) * (1.0 - penalty).clamp(0.0, 1.0)
}

/// Epoch records up to where early stopping (patience 2 on valid macro-F1,
/// when the spec has it) ends the trial: fast rise for a high lr, then
/// overfitting that grows with the hidden size.
fn simulate(
    c: &TrialConfig,
    quality: f64,
    shared: &Shared,
    rng: &mut ChaCha8Rng,
) -> Vec<EpochRecord> {
    let k = shared.classes.len() as f64;
    let chance = 1.0 / k;
    let tau = (3e-3 / c.train.lr).sqrt().clamp(0.4, 6.0);
    let peak = (3.0 * tau).clamp(2.0, shared.epochs as f64);
    let overfit = 0.004 * (c.model.hidden as f64 / 128.0).sqrt() * (1.2 - c.model.dropout);
    let size = c.model.hidden as f64 / 128.0
        * c.model.layers as f64
        * if c.model.bidirectional { 1.8 } else { 1.0 }
        * if c.model.cell == Cell::Gru { 0.8 } else { 1.0 };
    let patience = c.train.early_stopping.as_ref().map(|e| e.patience);
    let (mut best, mut since) = (f64::NEG_INFINITY, 0);
    let mut out = Vec::new();
    for e in 1..=shared.epochs {
        let t = e as f64;
        let acc = (chance + (quality - chance) * (1.0 - (-t / tau).exp())
            - overfit * (t - peak).max(0.0)
            + 0.006 * normal(rng))
        .clamp(0.0, 1.0);
        let f1 = (acc - 0.01 - 0.005 * normal(rng).abs()).max(0.0);
        let seconds =
            (0.5 + 1.5 * size) * shared.train_rows as f64 / 2400.0 * (1.0 + 0.05 * normal(rng));
        out.push(EpochRecord {
            epoch: e,
            train_loss: k.ln() * (-t / (1.5 * tau)).exp() + 0.08 + 0.01 * normal(rng).abs(),
            valid_loss: k.ln() - 1.2 * (acc - chance) + 0.04 * (t - peak).max(0.0),
            valid_accuracy: acc,
            valid_macro_f1: f1,
            lr: c.train.lr,
            seconds,
            samples_per_second: shared.train_rows as f64 / seconds,
        });
        if f1 > best {
            (best, since) = (f1, 0);
        } else {
            since += 1;
        }
        if patience.is_some_and(|p| since >= p) {
            break;
        }
    }
    out
}

/// A worker name on another host (judged by its lease, not by its process)
/// and its device.
fn worker_for(id: i64) -> (String, String) {
    let gpu = id % 4;
    (
        format!("gpu{:02}:{}", 1 + (id / 4) % 3, 41000 + gpu),
        format!("cuda:{gpu}"),
    )
}

/// Claim the trial and write what its fate leaves: two write transactions.
#[allow(clippy::too_many_arguments)]
fn write_trial(
    store: &Store,
    id: i64,
    config: &TrialConfig,
    fate: Fate,
    curve: &[EpochRecord],
    shared: &Shared,
    at_epoch: &[Vec<f64>],
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    if fate == Fate::Pending {
        return Ok(());
    }
    let (worker, device) = worker_for(id);
    store
        .claim_trial_id(id, &worker, &device)?
        .with_context(|| format!("trial {id} is not pending"))?;
    let host = worker.split(':').next().unwrap_or_default().to_string();
    let mut provenance = Provenance {
        host,
        device: device.clone(),
        ..shared.provenance.clone()
    };
    let mut curve = curve.to_vec();
    let result = match fate {
        Fate::Done => {
            let wall = curve.iter().map(|e| e.seconds).sum::<f64>() + 3.0;
            provenance.wall_seconds = Some(wall);
            provenance.cpu_seconds = Some(wall * 1.05);
            Some(result(&mut curve, shared, rng, wall))
        }
        _ => None,
    };
    let reason = match fate {
        Fate::Pruned(k) => pruned_reason(shared, &curve, k, at_epoch),
        _ => String::new(),
    };
    store.while_owning(id, &worker, |o| {
        o.record_provenance(&provenance.to_json())?;
        o.record_data_report(&shared.data_report)?;
        match fate {
            Fate::Pending => Ok(()),
            Fate::Running(k) => o.set_epochs(&curve[..k]),
            Fate::Failed(k) => {
                o.set_epochs(&curve[..k])?;
                o.fail(&failure(config, k))
            }
            Fate::Pruned(k) => {
                o.set_epochs(&curve[..k])?;
                o.prune(&reason)
            }
            Fate::Done => o.finish(&curve, result.as_ref().expect("done has a result")),
        }
    })
}

/// Why a trial failed, in the words lab uses.
fn failure(config: &TrialConfig, epochs: usize) -> String {
    if epochs == 0 {
        format!(
            "CUDA_ERROR_OUT_OF_MEMORY: out of memory allocating a {} × {} batch on the device",
            config.train.batch_size, config.model.hidden
        )
    } else {
        format!(
            "training diverged: the loss of batch 17 of epoch {} is NaN (lower train.lr, now {})",
            epochs + 1,
            config.train.lr
        )
    }
}

/// The pruner's words for stopping at epoch `k`.
fn pruned_reason(shared: &Shared, curve: &[EpochRecord], k: usize, at: &[Vec<f64>]) -> String {
    let own = curve[k - 1].valid_macro_f1;
    let mut others = at[k].clone();
    let n = others.len();
    let median = if n == 0 {
        own + 0.01
    } else {
        *others.select_nth_unstable_by(n / 2, f64::total_cmp).1
    };
    match shared.pruner.as_ref().map(|p| p.0.as_str()) {
        Some("asha") => format!(
            "pruned at epoch {k} (rung 0): {own:.4} is not in the top {} of {} trials at this rung \
             (cut {median:.4})",
            (n / 3).max(1),
            n + 1
        ),
        _ => format!(
            "pruned at epoch {k}: {own:.4} < median {:.4} of {n} finished trials",
            median.max(own + 1e-4)
        ),
    }
}

/// A done trial's metrics, confusion matrices and predictions: the best
/// epoch's validation accuracy on valid (whose record then takes the valid
/// scores computed, as the restored best weights give them), about the same
/// on test.
fn result(
    curve: &mut [EpochRecord],
    shared: &Shared,
    rng: &mut ChaCha8Rng,
    seconds: f64,
) -> TrialResult {
    let (best, record) = curve
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.valid_macro_f1.total_cmp(&b.1.valid_macro_f1))
        .expect("a done trial has epochs");
    let target = record.valid_accuracy;
    let mut out = TrialResult {
        test_split: Some(shared.test_split.clone()),
        ..TrialResult::default()
    };
    for (split, rows, acc) in [
        ("valid", &shared.valid, target),
        ("test", &shared.test, target + 0.01 * normal(rng)),
    ] {
        let predictions = predict(rows, shared.classes.len(), acc, rng);
        let probs: Vec<Vec<f32>> = (0..predictions.len())
            .map(|i| predictions.probs_of(i).to_vec())
            .collect();
        let loss = log_loss(&rows.labels, &probs);
        let eval = evaluate(&rows.labels, &probs, &shared.classes, Some(loss));
        out.metrics
            .extend(eval.metrics.iter().map(|(n, v)| MetricRow {
                split: split.into(),
                name: n.clone(),
                value: *v,
            }));
        out.confusion.push(lab::store::ConfusionRow {
            split: split.into(),
            matrix: eval.confusion.clone(),
            labels: shared.classes.clone(),
        });
        out.predictions.push((split.into(), predictions));
        if split == "valid" {
            let record = &mut curve[best];
            record.valid_accuracy = eval.get("accuracy").unwrap_or(target);
            record.valid_macro_f1 = eval.get("macro_f1").unwrap_or(record.valid_macro_f1);
            record.valid_loss = loss;
        }
    }
    for (name, value) in [
        ("seconds", seconds),
        ("best_epoch", (best + 1) as f64),
        ("epochs", curve.len() as f64),
    ] {
        out.metrics.push(MetricRow {
            split: "train".into(),
            name: name.into(),
            value,
        });
    }
    out
}

/// Predictions over `rows` with exactly round(accuracy × n) right: the rows
/// with the highest (ease + noise) are the right ones; confidence grows with
/// the distance from that cut. Wrong answers are a neighbouring class more
/// often (ratings are ordinal).
fn predict(rows: &Rows, k: usize, accuracy: f64, rng: &mut ChaCha8Rng) -> Predictions {
    let n = rows.labels.len();
    let score: Vec<f64> = rows
        .difficulty
        .iter()
        .map(|d| -d + 0.7 * normal(rng))
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let right = ((accuracy.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
    let cut = if right == 0 || right == n {
        0.0
    } else {
        (score[order[right - 1]] + score[order[right]]) / 2.0
    };
    let mut predicted = vec![0u16; n];
    let mut probs = vec![0f32; n * k];
    for (rank, &i) in order.iter().enumerate() {
        let truth = rows.labels[i] as usize;
        let class = if rank < right {
            truth
        } else {
            wrong_class(truth, k, rng)
        };
        predicted[i] = class as u16;
        let margin = (score[i] - cut).abs();
        let top = 1.0 / k as f64 + (1.0 - 1.0 / k as f64) * (0.08 + 0.9 * (1.2 * margin).tanh());
        let rest = (1.0 - top) / (k - 1) as f64;
        for c in 0..k {
            probs[i * k + c] = if c == class { top } else { rest } as f32;
        }
    }
    Predictions {
        classes: k,
        rows: rows.rows.clone(),
        hashes: rows.hashes.clone(),
        truth: rows.labels.iter().map(|&y| y as u16).collect(),
        predicted,
        probs,
    }
}

fn wrong_class(truth: usize, k: usize, rng: &mut ChaCha8Rng) -> usize {
    if k > 2 && rng.gen_bool(0.7) {
        if truth == 0 || (truth + 1 < k && rng.gen_bool(0.5)) {
            truth + 1
        } else {
            truth - 1
        }
    } else {
        (truth + rng.gen_range(1..k)) % k
    }
}

/// Mean cross-entropy of the true classes.
fn log_loss(labels: &[u32], probs: &[Vec<f32>]) -> f64 {
    let total: f64 = labels
        .iter()
        .zip(probs)
        .map(|(&y, p)| -(p[y as usize].max(1e-7) as f64).ln())
        .sum();
    total / labels.len().max(1) as f64
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}
