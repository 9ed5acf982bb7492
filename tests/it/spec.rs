//! The spec module through the library's public API: loading, layering,
//! validation errors with line/key/suggestion, expansion and hashing.

use lab::spec::{
    config_hash, expand, load_with_env, spec_hash, swept_values, trial_label, Cell, Device,
    LoadedSpec, SpecError, Stopwords, TrialConfig,
};
use std::path::PathBuf;
use tempfile::TempDir;

const DESIGN_EXAMPLE: &str = r#"[experiment]
name = "bilstm"
seeds = [13, 21, 34]            # every trial runs once per seed

[data]
path = "data/rotten_tomatoes.csv"   # relative to the spec file
text = "text"
label = "label"
split = { train = 0.8, valid = 0.1, test = 0.1, stratify = true }

[preprocess]
lowercase = true
strip_html = true
remove_urls = true
remove_digits = false
remove_punctuation = true
stopwords = "none"              # "none" | "english" | path to a word list
stem = "none"                   # "none" | "snowball"
min_freq = 2
max_vocab = 20000
max_len = 64
balance = "none"                # "none" | "upsample" | "downsample" | "class_weights" (training split only)

[model]
cell = "lstm"                   # "lstm" | "gru"
bidirectional = true
layers = 1
embedding_dim = 100
hidden = 128
dropout = 0.3
pooling = "last"                # "last" | "mean" | "max"

[train]
epochs = 10
batch_size = 64
optimizer = "adam"
lr = 1e-3
grad_clip = 5.0
early_stopping = { monitor = "valid.macro_f1", mode = "max", patience = 2 }

[sweep]                         # axes of the grid: dotted key = list of values
"model.cell" = ["lstm", "gru"]
"model.bidirectional" = [false, true]
"train.lr" = [1e-3, 3e-3]
"#;

/// The smallest valid spec; tests append to it, so their first line is line 5.
const MINIMAL: &str = "[experiment]\nname = \"t\"\n[data]\npath = \"d.csv\"\n";

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn load(
        &self,
        text: &str,
        sets: &[&str],
        env: &[(&str, &str)],
    ) -> Result<LoadedSpec, SpecError> {
        let path = self.write("spec.toml", text);
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_with_env(&path, &sets, env)
    }
}

fn ok(text: &str) -> LoadedSpec {
    Fixture::new()
        .load(text, &[], &[])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> SpecError {
    Fixture::new().load(text, &[], &[]).unwrap_err()
}

/// Asserts an error's line and key, and that its message mentions `needle`.
#[track_caller]
fn assert_err(e: &SpecError, line: Option<usize>, key: &str, needle: &str) {
    assert_eq!(e.line, line, "line of: {e}");
    assert_eq!(e.key.as_deref(), Some(key), "key of: {e}");
    assert!(
        e.message.contains(needle),
        "message of `{e}` lacks `{needle}`"
    );
}

fn axes(s: &LoadedSpec) -> Vec<String> {
    s.spec.sweep.keys().cloned().collect()
}

// ---- loading ----

#[test]
fn design_example_loads() {
    let s = ok(DESIGN_EXAMPLE);
    assert_eq!(s.spec.experiment.name, "bilstm");
    assert_eq!(s.spec.experiment.seeds, [13, 21, 34]);
    assert_eq!(s.spec.data.path, PathBuf::from("data/rotten_tomatoes.csv"));
    assert_eq!(s.spec.model.hidden, 128);
    assert!(s.spec.model.bidirectional);
    let es = s.spec.train.early_stopping.as_ref().unwrap();
    assert_eq!((es.monitor.name(), es.patience), ("valid.macro_f1", 2));
    assert_eq!(axes(&s), ["model.bidirectional", "model.cell", "train.lr"]);
    assert_eq!(s.source, DESIGN_EXAMPLE);
    assert_eq!(s.base_dir, s.path.parent().unwrap());
    assert_eq!(expand(&s).unwrap().len(), 2 * 2 * 2 * 3);
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let s = ok(MINIMAL);
    assert_eq!(s.spec.model.hidden, 128);
    assert_eq!(s.spec.model.cell, Cell::Lstm);
    assert_eq!(s.spec.train.lr, 1e-3);
    assert_eq!(s.spec.train.device, Device::Cpu);
    assert_eq!(s.spec.data.split.train, 0.8);
    assert_eq!(s.spec.experiment.seeds, [13]);
    assert!(s.spec.train.early_stopping.is_none());
    assert!(s.spec.sweep.is_empty());
}

#[test]
fn layers_file_then_env_then_set() {
    let f = Fixture::new();
    let text = format!("{MINIMAL}[train]\nlr = 0.1\nepochs = 3\nbatch_size = 7\n");
    let env = [
        ("LAB_TRAIN__LR", "0.2"),
        ("LAB_TRAIN__EPOCHS", "4"),
        ("LAB_MODEL__CELL", "gru"),
        ("LAB_DB", "elsewhere.db"),
        ("LAB_WORKERS", "3"),
    ];
    let s = f.load(&text, &["train.lr=0.3"], &env).unwrap();
    assert_eq!(s.spec.train.lr, 0.3, "--set beats env");
    assert_eq!(s.spec.train.epochs, 4, "env beats file");
    assert_eq!(s.spec.train.batch_size, 7, "file beats default");
    assert_eq!(s.spec.model.cell, Cell::Gru);
    assert_eq!(s.spec.model.hidden, 128, "default");
}

#[test]
fn env_nested_keys_and_string_values() {
    let f = Fixture::new();
    let text = format!(
        "{MINIMAL}[train]\nearly_stopping = {{ monitor = \"valid.loss\", mode = \"min\", patience = 9 }}\n"
    );
    let env = [
        ("LAB_TRAIN__EARLY_STOPPING__PATIENCE", "3"),
        ("LAB_EXPERIMENT__NAME", "2024"),
    ];
    let s = f.load(&text, &[], &env).unwrap();
    assert_eq!(s.spec.train.early_stopping.unwrap().patience, 3);
    assert_eq!(
        s.spec.experiment.name, "2024",
        "a string field keeps digits as text"
    );
}

#[test]
fn set_overrides_sweep_axes_without_nesting_them() {
    let f = Fixture::new();
    let text = format!("{MINIMAL}[sweep]\n\"model.cell\" = [\"lstm\", \"gru\"]\n");
    let sets = [
        "sweep.model.hidden=[64,128]",
        "sweep.model.cell=[gru]",
        "model.layers=2",
    ];
    let s = f.load(&text, &sets, &[]).unwrap();
    assert_eq!(axes(&s), ["model.cell", "model.hidden"]);
    assert_eq!(s.spec.sweep["model.cell"], vec![toml::Value::from("gru")]);
    assert_eq!(
        s.spec.sweep["model.hidden"],
        vec![toml::Value::from(64), toml::Value::from(128)]
    );
    assert_eq!(s.spec.model.layers, 2);
    let trials = expand(&s).unwrap();
    let hidden: Vec<usize> = trials.iter().map(|t| t.model.hidden).collect();
    assert_eq!(hidden, [64, 128]);
    assert!(trials.iter().all(|t| t.model.cell == Cell::Gru));
}

#[test]
fn env_can_set_a_sweep_axis() {
    let f = Fixture::new();
    let s = f
        .load(MINIMAL, &[], &[("LAB_SWEEP__TRAIN__LR", "[0.1, 0.2]")])
        .unwrap();
    assert_eq!(axes(&s), ["train.lr"]);
    let lrs: Vec<f64> = expand(&s).unwrap().iter().map(|t| t.train.lr).collect();
    assert_eq!(lrs, [0.1, 0.2]);
}

// ---- expansion ----

#[test]
fn expansion_order_first_axis_slowest_seeds_innermost() {
    let text = "[experiment]\nname = \"t\"\nseeds = [1, 2]\n[data]\npath = \"d.csv\"\n[sweep]\n\"train.lr\" = [0.001, 0.003, 0.01]\n\"model.cell\" = [\"lstm\", \"gru\"]\n";
    let s = ok(text);
    let trials = expand(&s).unwrap();
    assert_eq!(trials.len(), 2 * 3 * 2);
    let labels: Vec<String> = trials.iter().map(|t| trial_label(t, &axes(&s))).collect();
    assert_eq!(labels[0], "model.cell=lstm train.lr=0.001 seed=1");
    assert_eq!(labels[1], "model.cell=lstm train.lr=0.001 seed=2");
    assert_eq!(labels[2], "model.cell=lstm train.lr=0.003 seed=1");
    assert_eq!(labels[6], "model.cell=gru train.lr=0.001 seed=1");
    assert_eq!(labels[11], "model.cell=gru train.lr=0.01 seed=2");
    assert!(trials.iter().all(|t| t.experiment == "t"));
    assert_eq!(
        swept_values(&trials[5], &axes(&s)),
        [
            ("model.cell".to_string(), "lstm".to_string()),
            ("train.lr".into(), "0.01".into())
        ]
    );
}

#[test]
fn no_sweep_gives_one_trial_per_seed() {
    let text = MINIMAL.replace("name = \"t\"\n", "name = \"t\"\nseeds = [5, 6, 7]\n");
    let trials = expand(&ok(&text)).unwrap();
    let seeds: Vec<u64> = trials.iter().map(|t| t.seed).collect();
    assert_eq!(seeds, [5, 6, 7]);
    assert_eq!(trial_label(&trials[0], &[]), "seed=5");
}

// ---- hashes ----

fn one_trial() -> TrialConfig {
    expand(&ok(MINIMAL)).unwrap().remove(0)
}

#[test]
fn config_hash_is_stable_and_sensitive() {
    let a = one_trial();
    let h = config_hash(&a);
    assert_eq!(h.len(), 64);
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(h, config_hash(&one_trial()), "same spec, same hash");
    let mut b = a.clone();
    b.model.hidden = 129;
    assert_ne!(config_hash(&b), h);
    let mut c = a.clone();
    c.seed += 1;
    assert_ne!(config_hash(&c), h);
    let mut d = a.clone();
    d.train.lr = 0.0010000001;
    assert_ne!(config_hash(&d), h);
    let mut e = a.clone();
    e.data.label_map.insert("1".into(), "pos".into());
    assert_ne!(config_hash(&e), h);
    let mut x = a.clone();
    x.experiment = "other".into();
    assert_ne!(config_hash(&x), h);
    let mut g = a.clone();
    g.train.device = Device::Cuda(Some(1));
    assert_eq!(config_hash(&g), h, "device is not part of the identity");
}

#[test]
fn every_grid_point_has_a_distinct_hash() {
    let trials = expand(&ok(DESIGN_EXAMPLE)).unwrap();
    let mut hashes: Vec<String> = trials.iter().map(config_hash).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), trials.len());
}

#[test]
fn spec_hash_is_sha256_of_the_text() {
    assert_eq!(
        spec_hash(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_ne!(spec_hash("a"), spec_hash("b"));
}

// ---- errors: file and syntax ----

#[test]
fn missing_file() {
    let path = PathBuf::from("/nonexistent/x.toml");
    let e = load_with_env(&path, &[], Vec::new()).unwrap_err();
    assert_eq!(e.file, path);
    assert!(e.message.contains("cannot read"), "{e}");
}

#[test]
fn toml_syntax_error_names_its_line() {
    let e = err(&format!("{MINIMAL}[model]\nhidden = = 3\n"));
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.message.contains("invalid TOML"), "{e}");
}

// ---- errors: unknown keys and types ----

#[test]
fn typo_in_key_suggests_the_nearest() {
    let e = err(&format!("{MINIMAL}[model]\nlayers = 1\nhiden = 128\n"));
    assert_err(&e, Some(7), "model.hiden", "unknown key");
    assert_eq!(e.suggestion.as_deref(), Some("model.hidden"));
    let shown = e.to_string();
    assert!(shown.contains("spec.toml:7"), "{shown}");
    assert!(shown.contains("did you mean `model.hidden`"), "{shown}");
}

#[test]
fn unknown_section_suggests_the_nearest_section() {
    let e = err(&format!("{MINIMAL}[modle]\nhidden = 3\n"));
    assert_err(&e, Some(5), "modle", "unknown section");
    assert_eq!(e.suggestion.as_deref(), Some("model"));
}

#[test]
fn key_in_the_wrong_section_points_to_the_right_one() {
    let e = err(&format!("{MINIMAL}[train]\nhidden = 3\n"));
    assert_err(&e, Some(6), "train.hidden", "unknown key");
    assert_eq!(e.suggestion.as_deref(), Some("model.hidden"));
}

#[test]
fn unknown_key_inside_inline_table() {
    let e = err(&format!(
        "{MINIMAL}split = {{ train = 0.8, vaild = 0.1, test = 0.1 }}\n"
    ));
    assert_err(&e, Some(5), "data.split.vaild", "unknown key");
    assert_eq!(e.suggestion.as_deref(), Some("data.split.valid"));
}

#[test]
fn wrong_type_names_the_expected_type() {
    let e = err(&format!("{MINIMAL}[model]\nhidden = \"big\"\n"));
    assert_err(&e, Some(6), "model.hidden", "expected a whole number");
    let e = err(&format!("{MINIMAL}[train]\nlr = true\n"));
    assert_err(&e, Some(6), "train.lr", "expected a number");
    let e = err("model = 3\n[data]\npath = \"d.csv\"\n");
    assert_err(&e, Some(1), "model", "expected a table");
}

#[test]
fn unknown_enum_value_suggests_the_nearest() {
    let e = err(&format!("{MINIMAL}[model]\ncell = \"gur\"\n"));
    assert_err(&e, Some(6), "model.cell", "lstm, gru");
    assert_eq!(e.suggestion.as_deref(), Some("gru"));
}

#[test]
fn env_and_set_errors_name_the_variable_or_flag() {
    let f = Fixture::new();
    let e = f
        .load(MINIMAL, &[], &[("LAB_TRAIN__LR", "fast")])
        .unwrap_err();
    assert_err(&e, None, "train.lr", "LAB_TRAIN__LR");
    let e = f.load(MINIMAL, &["train.lr=-1"], &[]).unwrap_err();
    assert_err(&e, None, "train.lr", "--set train.lr=-1");
    let e = f
        .load(MINIMAL, &[], &[("LAB_MODEL__HIDEN", "3")])
        .unwrap_err();
    assert_err(&e, None, "model.hiden", "LAB_MODEL__HIDEN");
    assert_eq!(e.suggestion.as_deref(), Some("model.hidden"));
    let e = f.load(MINIMAL, &["train.lr"], &[]).unwrap_err();
    assert!(e.message.contains("key=value"), "{e}");
}

#[test]
fn file_value_overridden_by_a_bad_flag_blames_the_flag() {
    let f = Fixture::new();
    let text = format!("{MINIMAL}[model]\nhidden = 3\n");
    let e = f.load(&text, &["model.hidden=0"], &[]).unwrap_err();
    assert_err(&e, None, "model.hidden", "--set model.hidden=0");
}

// ---- errors: out-of-range values, one test per rule ----

/// Loads MINIMAL plus `[section]` and `line` (so at line 6), expecting an error there.
#[track_caller]
fn range_err(section: &str, line: &str, key: &str, needle: &str) {
    let e = err(&format!("{MINIMAL}[{section}]\n{line}\n"));
    assert_err(&e, Some(6), key, needle);
}

#[test]
fn experiment_name() {
    let e = err("[experiment]\nname = \"a b\"\n[data]\npath = \"d.csv\"\n");
    assert_err(&e, Some(2), "experiment.name", "directory");
    let e = err("[experiment]\nname = \"\"\n[data]\npath = \"d.csv\"\n");
    assert_err(&e, Some(2), "experiment.name", "not a valid name");
    ok("[experiment]\nname = \"run-1.v2_b\"\n[data]\npath = \"d.csv\"\n");
}

#[test]
fn seeds_empty_or_repeated() {
    let e = err("[experiment]\nseeds = []\n[data]\npath = \"d.csv\"\n");
    assert_err(&e, Some(2), "experiment.seeds", "at least one seed");
    let e = err("[experiment]\nseeds = [1, 1]\n[data]\npath = \"d.csv\"\n");
    assert_err(&e, Some(2), "experiment.seeds", "twice");
}

#[test]
fn data_path_required() {
    let e = err("[data]\npath = \"\"\n");
    assert_err(&e, Some(2), "data.path", "must name the data file");
    let e = err("[model]\nhidden = 3\n");
    assert_err(&e, None, "data.path", "built-in default");
}

#[test]
fn split_fractions() {
    let split = |s: &str| format!("{MINIMAL}split = {{ {s} }}\n");
    let e = err(&split("train = 1.5, valid = 0.1, test = 0.1"));
    assert_err(&e, Some(5), "data.split.train", "(0, 1]");
    let e = err(&split("train = 0.9, valid = 0.1, test = 0.0"));
    assert_err(&e, Some(5), "data.split.test", "(0, 1]");
    let e = err(&format!(
        "{MINIMAL}[data.split]\ntrain = 0.7\nvalid = 0.1\ntest = 0.1\n"
    ));
    assert_err(&e, Some(5), "data.split", "must be 1");
    // Within 1e-6 of 1 is fine: 0.7 + 0.2 + 0.1 is not exactly 1 in floating point.
    ok(&split("train = 0.7, valid = 0.2, test = 0.1"));
}

#[test]
fn data_delimiter_and_limit() {
    let e = err(&format!("{MINIMAL}delimiter = \";;\"\n"));
    assert_err(&e, Some(5), "data.delimiter", "single character");
    let e = err(&format!("{MINIMAL}limit = 0\n"));
    assert_err(&e, Some(5), "data.limit", "at least 1");
    ok(&format!("{MINIMAL}delimiter = \"\\t\"\nlimit = 10\n"));
}

#[test]
fn preprocess_ranges() {
    range_err(
        "preprocess",
        "min_freq = 0",
        "preprocess.min_freq",
        "at least 1",
    );
    range_err(
        "preprocess",
        "max_vocab = 2",
        "preprocess.max_vocab",
        "at least 3",
    );
    range_err(
        "preprocess",
        "max_len = 0",
        "preprocess.max_len",
        "at least 1",
    );
    range_err(
        "preprocess",
        "max_len = -4",
        "preprocess.max_len",
        "whole number",
    );
}

#[test]
fn stopwords_name_or_existing_file() {
    range_err(
        "preprocess",
        "stopwords = \"german\"",
        "preprocess.stopwords",
        "does not exist",
    );
    let f = Fixture::new();
    f.write("words.txt", "the\na\n");
    let text = format!("{MINIMAL}[preprocess]\nstopwords = \"words.txt\"\n");
    let s = f.load(&text, &[], &[]).unwrap();
    assert_eq!(
        s.spec.preprocess.stopwords,
        Stopwords::File("words.txt".into())
    );
    ok(&format!("{MINIMAL}[preprocess]\nstopwords = \"english\"\n"));
}

#[test]
fn model_ranges() {
    range_err("model", "layers = 0", "model.layers", "at least 1");
    range_err(
        "model",
        "embedding_dim = 0",
        "model.embedding_dim",
        "at least 1",
    );
    range_err("model", "hidden = 0", "model.hidden", "at least 1");
    range_err("model", "dropout = 1.0", "model.dropout", "[0, 1)");
    range_err("model", "dropout = -0.1", "model.dropout", "[0, 1)");
    ok(&format!("{MINIMAL}[model]\ndropout = 0\n"));
}

#[test]
fn train_ranges() {
    range_err("train", "epochs = 0", "train.epochs", "at least 1");
    range_err("train", "batch_size = 0", "train.batch_size", "at least 1");
    range_err("train", "lr = 0.0", "train.lr", "> 0");
    range_err("train", "lr = -0.1", "train.lr", "> 0");
    range_err("train", "lr = inf", "train.lr", "finite");
    range_err("train", "lr = nan", "train.lr", "finite");
    range_err(
        "train",
        "weight_decay = -1e-4",
        "train.weight_decay",
        ">= 0",
    );
    range_err("train", "momentum = 1.0", "train.momentum", "[0, 1)");
    range_err("train", "grad_clip = -1", "train.grad_clip", ">= 0");
    ok(&format!("{MINIMAL}[train]\ngrad_clip = 0\nmomentum = 0\n"));
    // Sparse embedding updates with SGD are only SGD's without momentum.
    range_err(
        "train",
        "sparse_embedding = true\noptimizer = \"sgd\"",
        "train.sparse_embedding",
        "momentum = 0",
    );
    ok(&format!(
        "{MINIMAL}[train]\nsparse_embedding = true\noptimizer = \"sgd\"\nmomentum = 0\n"
    ));
    ok(&format!("{MINIMAL}[train]\nsparse_embedding = true\n"));
}

#[test]
fn early_stopping_rules() {
    let es = |inner: &str| format!("early_stopping = {{ {inner} }}");
    range_err(
        "train",
        &es("monitor = \"valid.f1\", mode = \"max\", patience = 2"),
        "train.early_stopping.monitor",
        "valid.loss, valid.accuracy, valid.macro_f1",
    );
    let e = err(&format!(
        "{MINIMAL}[train]\n{}\n",
        es("monitor = \"valid.acuracy\", mode = \"max\", patience = 2")
    ));
    assert_eq!(e.suggestion.as_deref(), Some("valid.accuracy"), "{e}");
    range_err(
        "train",
        &es("monitor = \"valid.loss\", mode = \"min\", patience = 0"),
        "train.early_stopping.patience",
        "at least 1",
    );
    range_err(
        "train",
        &es("monitor = \"valid.loss\", mode = \"max\", patience = 2"),
        "train.early_stopping.mode",
        "mode = \"min\"",
    );
    range_err(
        "train",
        &es("monitor = \"valid.loss\", patience = 2"),
        "train.early_stopping",
        "missing key `mode`",
    );
}

#[test]
fn device_forms() {
    range_err(
        "train",
        "device = \"gpu\"",
        "train.device",
        "cpu, auto, cuda or cuda:N",
    );
    range_err("train", "device = \"cuda:\"", "train.device", "cuda:N");
    range_err("train", "device = \"cuda:x\"", "train.device", "cuda:N");
    for d in ["cpu", "auto", "cuda", "cuda:0", "cuda:12"] {
        ok(&format!("{MINIMAL}[train]\ndevice = \"{d}\"\n"));
    }
}

/// The typed values (stop words, device, monitor) keep the text they were written
/// in: the resolved JSON holds the same strings, and a bad value names its key.
#[test]
fn typed_values_round_trip_and_name_their_key() {
    let f = Fixture::new();
    f.write("stop words.txt", "the\n");
    let text = format!(
        "{MINIMAL}[preprocess]\nstopwords = \"stop words.txt\"\n[train]\ndevice = \"cuda:3\"\n\
         early_stopping = {{ monitor = \"valid.accuracy\", mode = \"max\", patience = 1 }}\n"
    );
    let s = f.load(&text, &[], &[]).unwrap();
    assert_eq!(s.spec.train.device, Device::Cuda(Some(3)));
    let t = &expand(&s).unwrap()[0];
    let json = serde_json::to_value(t).unwrap();
    assert_eq!(json["preprocess"]["stopwords"], "stop words.txt");
    assert_eq!(json["train"]["device"], "cuda:3");
    assert_eq!(json["train"]["early_stopping"]["monitor"], "valid.accuracy");
    let back: TrialConfig = serde_json::from_value(json).unwrap();
    assert_eq!(&back, t);
    for (d, form) in [
        ("cpu", "cpu"),
        ("auto", "auto"),
        ("cuda", "cuda"),
        ("cuda:0", "cuda:0"),
    ] {
        let s = ok(&format!("{MINIMAL}[train]\ndevice = \"{d}\"\n"));
        assert_eq!(s.spec.train.device.to_string(), form);
    }

    // A bad device from the file, the environment, a flag and a sweep axis.
    let e = err(&format!("{MINIMAL}[train]\ndevice = \"gpu\"\n"));
    assert_err(&e, Some(6), "train.device", "unknown device `gpu`");
    assert_eq!(e.suggestion.as_deref(), Some("cpu"));
    let e = f
        .load(MINIMAL, &[], &[("LAB_TRAIN__DEVICE", "cpux")])
        .unwrap_err();
    assert_err(&e, None, "train.device", "LAB_TRAIN__DEVICE");
    assert_eq!(e.suggestion.as_deref(), Some("cpu"));
    let e = f.load(MINIMAL, &["train.device=cuda:x"], &[]).unwrap_err();
    assert_err(&e, None, "train.device", "--set train.device=cuda:x");
    let e = sweep_err("\"train.device\" = [\"cpu\", \"gpu\"]");
    assert_err(
        &e,
        Some(6),
        "sweep.train.device",
        "train.device = gpu: unknown device",
    );
    assert_eq!(e.suggestion.as_deref(), Some("cpu"));
    let e = err(&format!("{MINIMAL}[train]\ndevice = 3\n"));
    assert_err(&e, Some(6), "train.device", "expected a string");
    // A monitor from a sweep axis, worded as a grid point's error.
    let e = err(&format!(
        "{MINIMAL}[train]\nearly_stopping = {{ monitor = \"valid.loss\", mode = \"min\", patience = 1 }}\n\
         [sweep]\n\"train.early_stopping.monitor\" = [\"valid.loss\", \"valid.los\"]\n"
    ));
    assert_err(
        &e,
        Some(8),
        "sweep.train.early_stopping.monitor",
        "unknown metric `valid.los`",
    );
    assert_eq!(e.suggestion.as_deref(), Some("valid.loss"));
}

// ---- errors: sweep ----

/// MINIMAL plus a [sweep] table whose first axis is on line 6.
fn sweep_err(axis_line: &str) -> SpecError {
    err(&format!("{MINIMAL}[sweep]\n{axis_line}\n"))
}

#[test]
fn sweep_unknown_axis_suggests_the_nearest() {
    let e = sweep_err("\"model.hiden\" = [64]");
    assert_err(&e, Some(6), "sweep.model.hiden", "not a sweepable key");
    assert_eq!(e.suggestion.as_deref(), Some("model.hidden"));
}

#[test]
fn sweep_rejects_experiment_keys_and_sections() {
    let e = sweep_err("\"experiment.seeds\" = [[1], [2]]");
    assert_err(&e, Some(6), "sweep.experiment.seeds", "experiment.seeds");
    let e = sweep_err("\"model\" = [1]");
    assert_err(&e, Some(6), "sweep.model", "is a table");
    let e = sweep_err("\"data.label_map\" = [{}]");
    assert_err(&e, Some(6), "sweep.data.label_map", "is a table");
}

#[test]
fn sweep_axis_must_be_a_non_empty_list() {
    let e = sweep_err("\"model.hidden\" = []");
    assert_err(&e, Some(6), "sweep.model.hidden", "at least one value");
    let e = sweep_err("\"model.hidden\" = 64");
    assert_err(&e, Some(6), "sweep.model.hidden", "expected a list");
}

#[test]
fn sweep_bad_value_is_reported_against_the_axis() {
    let e = sweep_err("\"train.lr\" = [0.001, 0.0]");
    assert_err(&e, Some(6), "sweep.train.lr", "> 0");
    assert!(e.message.contains("train.lr = 0"), "{e}");
    let e = sweep_err("\"model.hidden\" = [\n  64,\n  \"wide\",\n]");
    assert_err(&e, Some(8), "sweep.model.hidden", "expected usize");
    let e = sweep_err("\"model.cell\" = [\"lstm\", \"rnn\"]");
    assert_err(&e, Some(6), "sweep.model.cell", "rnn");
    let e = sweep_err("\"model.hidden\" = [64, 64]");
    assert_err(&e, Some(6), "sweep.model.hidden", "twice");
}

#[test]
fn sweep_grid_point_breaking_a_cross_field_rule() {
    let text = format!(
        "{MINIMAL}split = {{ train = 0.8, valid = 0.1, test = 0.1 }}\n[sweep]\n\"data.split.train\" = [0.8, 0.7]\n"
    );
    let e = err(&text);
    assert_err(&e, Some(7), "sweep.data.split.train", "must be 1");
}

#[test]
fn sweep_of_early_stopping_needs_it_set() {
    let e = sweep_err("\"train.early_stopping.patience\" = [1, 2]");
    assert_err(
        &e,
        Some(6),
        "sweep.train.early_stopping.patience",
        "train.early_stopping",
    );
    let s = ok(&format!(
        "{MINIMAL}[train]\nearly_stopping = {{ monitor = \"valid.loss\", mode = \"min\", patience = 1 }}\n[sweep]\n\"train.early_stopping.patience\" = [1, 2]\n"
    ));
    let p: Vec<usize> = expand(&s)
        .unwrap()
        .iter()
        .map(|t| t.train.early_stopping.as_ref().unwrap().patience)
        .collect();
    assert_eq!(p, [1, 2]);
}

#[test]
fn sweep_error_from_set_names_the_flag() {
    let f = Fixture::new();
    let e = f
        .load(MINIMAL, &["sweep.model.hidden=[64,0]"], &[])
        .unwrap_err();
    assert_err(
        &e,
        None,
        "sweep.model.hidden",
        "--set sweep.model.hidden=[64,0]",
    );
}

#[test]
fn expand_of_a_hand_built_spec_still_validates() {
    let mut s = ok(MINIMAL);
    s.spec.train.lr = -1.0;
    let e = expand(&s).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("train.lr"));
}
