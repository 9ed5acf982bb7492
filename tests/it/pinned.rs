//! Pins what refactoring must never change: the identity (config hash) and the
//! resolved JSON of known trials, and the first initial weights a seed draws.
//! The literals were computed on main before the code-health refactor (issue 12);
//! a change here means finished trials would run again, or seeds would no longer
//! reproduce earlier results.

use candle_core::Device;
use lab::model::Classifier;
use lab::spec::{config_hash, expand, load_with_env, TrialConfig};
use tempfile::TempDir;

/// Every enum-valued key set to a non-default value, so their serialised forms
/// are pinned along with the hash.
const SPEC: &str = r#"[experiment]
name = "pinned"
seeds = [13, 21]
[data]
path = "d.csv"
label_map = { "1" = "negative", "5" = "positive" }
on_bad_row = "error"
[preprocess]
stopwords = "english"
stem = "snowball"
balance = "class_weights"
[model]
cell = "gru"
bidirectional = true
layers = 2
pooling = "attention"
[train]
optimizer = "adamw"
device = "cpu"
early_stopping = { monitor = "valid.loss", mode = "min", patience = 3 }
[sweep]
"model.pooling" = ["mean", "attention"]
"#;

fn trials() -> Vec<TrialConfig> {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("pinned.toml");
    std::fs::write(&path, SPEC).unwrap();
    std::fs::write(dir.path().join("d.csv"), "text,label\na,1\n").unwrap();
    let loaded = load_with_env(&path, &[], Vec::new()).unwrap();
    expand(&loaded).unwrap()
}

#[test]
fn config_hashes_are_pinned() {
    let hashes: Vec<String> = trials().iter().map(config_hash).collect();
    assert_eq!(hashes, PINNED_HASHES);
}

#[test]
fn resolved_config_json_is_pinned() {
    let json = serde_json::to_string(&trials()[0]).unwrap();
    assert_eq!(json, PINNED_JSON);
}

#[test]
fn first_weights_of_a_seed_are_pinned() {
    let trial = trials().remove(0);
    let model = Classifier::new(&trial.model, 50, 3, trial.seed, &Device::Cpu).unwrap();
    let firsts: Vec<(String, Vec<f32>)> = model
        .named_vars()
        .into_iter()
        .map(|(name, var)| {
            let values = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            // Row 0 of the embedding is <pad> (zeros): take the second row's start.
            let skip = if name == "embedding.weight" {
                trial.model.embedding_dim
            } else {
                0
            };
            (name, values[skip..skip + 3].to_vec())
        })
        .collect();
    let pinned: Vec<(String, Vec<f32>)> = PINNED_WEIGHTS
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect();
    assert_eq!(firsts, pinned);
}

const PINNED_HASHES: &[&str] = &[
    "2ef40079dea96148cdc38f51a9f9307285e7a1e4c239c2cf1727eef7040ecc06",
    "0f927708d4cf2b86f70f98e706189cb61b7645bfbda42f835146e4240c913a22",
    "cbae307052c2086116d0cc6f5e4c440dbc13249e5a57514613ab33972221c4bd",
    "ae5473d6c3f1bb08616d6e2bb1405e425052f9913de1d9bda2e72fa2320defaa",
];
const PINNED_JSON: &str = r#"{"experiment":"pinned","seed":13,"data":{"path":"d.csv","text":"text","label":"label","delimiter":null,"label_map":{"1":"negative","5":"positive"},"limit":null,"split":{"train":0.8,"valid":0.1,"test":0.1,"stratify":true,"seed":0},"on_bad_row":"error"},"preprocess":{"lowercase":true,"strip_html":true,"remove_urls":true,"remove_digits":false,"remove_punctuation":true,"stopwords":"english","stem":"snowball","min_freq":2,"max_vocab":20000,"max_len":64,"balance":"class_weights"},"model":{"cell":"gru","bidirectional":true,"layers":2,"embedding_dim":100,"hidden":128,"dropout":0.3,"pooling":"mean"},"train":{"epochs":10,"batch_size":64,"optimizer":"adamw","lr":0.001,"weight_decay":0.0,"momentum":0.9,"grad_clip":5.0,"early_stopping":{"monitor":"valid.loss","mode":"min","patience":3},"bucket_by_length":true,"device":"cpu"}}"#;
const PINNED_WEIGHTS: &[(&str, [f32; 3])] = &[
    ("embedding.weight", [-0.38042805, -0.49012792, 0.30461287]),
    ("rnn.0.fwd.w_ih", [-0.067358606, 0.020672351, -0.03267544]),
    ("rnn.0.fwd.w_hh", [0.07123009, -0.012960769, 0.08251154]),
    ("rnn.0.fwd.b_ih", [0.046992995, 0.031499855, -0.026240207]),
    ("rnn.0.fwd.b_hh", [-0.06563168, 0.012498334, -0.016365282]),
    ("rnn.0.bwd.w_ih", [0.027479619, -0.030487385, -0.0031687245]),
    ("rnn.0.bwd.w_hh", [-0.0139433965, -0.06946595, 0.023369245]),
    ("rnn.0.bwd.b_ih", [0.043421723, 0.014198996, 0.045873113]),
    ("rnn.0.bwd.b_hh", [0.032983847, -0.06547945, -0.014683373]),
    ("rnn.1.fwd.w_ih", [0.04879018, 0.049246676, -0.019477978]),
    ("rnn.1.fwd.w_hh", [-0.07786632, 0.028084718, -0.007941142]),
    ("rnn.1.fwd.b_ih", [-0.0017369539, -0.02410397, 0.0065112635]),
    ("rnn.1.fwd.b_hh", [0.0360753, -0.08175452, -0.07835006]),
    ("rnn.1.bwd.w_ih", [0.008296587, -0.04789536, -0.059561796]),
    ("rnn.1.bwd.w_hh", [-0.056142762, 0.057543598, -0.072402366]),
    ("rnn.1.bwd.b_ih", [-0.020941526, 0.048638858, 0.04252071]),
    ("rnn.1.bwd.b_hh", [-0.0017061904, -0.05493745, -0.08019489]),
    ("head.weight", [-0.016472086, -0.0074588656, 0.0111656785]),
    ("head.bias", [-0.04058507, 0.021598697, -0.005152896]),
];
