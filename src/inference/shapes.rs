//! A model's config checked against its weights before anything is allocated for
//! it: the safetensors header gives every tensor's shape without reading the
//! tensors, so a tampered `config.json` (`model.hidden = 1000000000`,
//! `model.layers = 10000000`) is refused with the file, the key and the weights'
//! shape instead of aborting on an allocation. The header itself is checked too:
//! every tensor's bytes must lie inside the file, so what loading allocates is
//! bounded by the file's size.

use crate::model::recurrent::gates;
use crate::spec::{ModelSection, Pooling};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// A header larger than this is refused (ours are a few KB).
const MAX_HEADER: u64 = 16 << 20;

/// One tensor's entry in a safetensors header.
#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// Every tensor's shape, by name, read from the header of the safetensors file at
/// `path` (the tensors are not read).
///
/// # Errors
/// A file that is not safetensors, or whose header claims bytes it does not hold.
pub fn tensor_shapes(path: &Path) -> Result<BTreeMap<String, Vec<usize>>> {
    let bad =
        |why: String| anyhow::anyhow!("{} is not a valid weights file: {why}", path.display());
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n)
        .map_err(|_| bad(format!("{len} bytes, too short for a header")))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER || n > len - 8 {
        return Err(bad(format!(
            "its header claims {n} bytes, the file has {len} (at most {MAX_HEADER})"
        )));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("its header: {e}")))?;
    entries.remove("__metadata__");
    let data_len = len - 8 - n;
    let mut shapes = BTreeMap::new();
    for (name, value) in entries {
        let entry: Entry =
            serde_json::from_value(value).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        let size = dtype_size(&entry.dtype)
            .ok_or_else(|| bad(format!("tensor `{name}` has dtype {}", entry.dtype)))?;
        let bytes = entry
            .shape
            .iter()
            .try_fold(size, |acc, &d| acc.checked_mul(d as u64));
        let [begin, end] = entry.data_offsets;
        if bytes.is_none() || begin > end || end > data_len || Some(end - begin) != bytes {
            return Err(bad(format!(
                "tensor `{name}` of shape {:?} ({}) claims bytes {begin}..{end} of {data_len}",
                entry.shape, entry.dtype
            )));
        }
        shapes.insert(name, entry.shape);
    }
    Ok(shapes)
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "F32" | "I32" | "U32" => 4,
        "F64" | "I64" | "U64" => 8,
        _ => return None,
    })
}

/// What sizes a model besides its config: the vocabulary and class count
/// (`vocab.json`), and the files to name in errors.
pub struct Sizes<'a> {
    /// Tokens in the vocabulary.
    pub vocab: usize,
    /// Classes.
    pub classes: usize,
    /// The config file (`config.json`).
    pub config: &'a Path,
    /// The vocabulary file (`vocab.json`).
    pub vocab_file: &'a Path,
    /// The weights file.
    pub weights: &'a Path,
}

/// `cfg` and `sizes` fit the tensors in `shapes` exactly; the first value that does
/// not is named with its file and key and the shape in the weights.
///
/// # Errors
/// A config or vocabulary value the weights contradict.
pub fn check(
    cfg: &ModelSection,
    sizes: &Sizes,
    shapes: &BTreeMap<String, Vec<usize>>,
) -> Result<()> {
    let (config, weights) = (sizes.config.display(), sizes.weights.display());
    let shape = |name: &str| {
        shapes.get(name).with_context(|| {
            format!("{weights} has no tensor `{name}` (is it a lab model's weights file?)")
        })
    };
    let mismatch = |key: &str, value: String, name: &str, found: &[usize], means: String| {
        anyhow::anyhow!(
            "{config}: {key} = {value}, but tensor `{name}` in {weights} has shape {found:?} \
             ({means}); the config does not belong to these weights"
        )
    };
    let layers = (0..)
        .take_while(|l| shapes.contains_key(&format!("rnn.{l}.fwd.w_ih")))
        .count();
    let first = shape("rnn.0.fwd.w_ih")?;
    let structure = |key: &str, value: String, holds: String| {
        anyhow::anyhow!(
            "{config}: {key} = {value}, but {weights} holds {holds} (tensor `rnn.0.fwd.w_ih` \
             has shape {first:?}); the config does not belong to these weights"
        )
    };
    if cfg.layers != layers {
        let holds = format!(
            "{layers} layers (rnn.0 to rnn.{})",
            layers.saturating_sub(1)
        );
        return Err(structure("model.layers", cfg.layers.to_string(), holds));
    }
    let bidirectional = shapes.contains_key("rnn.0.bwd.w_ih");
    if cfg.bidirectional != bidirectional {
        let holds = format!("a model with bidirectional = {bidirectional}");
        return Err(structure(
            "model.bidirectional",
            cfg.bidirectional.to_string(),
            holds,
        ));
    }
    let emb = shape("embedding.weight")?;
    if emb.len() != 2 || emb[1] != cfg.embedding_dim {
        let means = format!("embedding_dim {}", emb.get(1).unwrap_or(&0));
        return Err(mismatch(
            "model.embedding_dim",
            cfg.embedding_dim.to_string(),
            "embedding.weight",
            emb,
            means,
        ));
    }
    if emb[0] != sizes.vocab {
        bail!(
            "{} holds {} tokens, but tensor `embedding.weight` in {weights} has shape {emb:?} \
             ({} tokens); the vocabulary does not belong to these weights",
            sizes.vocab_file.display(),
            sizes.vocab,
            emb[0]
        );
    }
    let w_hh = shape("rnn.0.fwd.w_hh")?;
    if w_hh.len() != 2 || w_hh[1] != cfg.hidden {
        let means = format!("hidden {}", w_hh.get(1).unwrap_or(&0));
        return Err(mismatch(
            "model.hidden",
            cfg.hidden.to_string(),
            "rnn.0.fwd.w_hh",
            w_hh,
            means,
        ));
    }
    let g = gates(cfg.cell);
    if w_hh[0] != g * cfg.hidden {
        let means = format!("{} gate rows per hidden unit", w_hh[0] / cfg.hidden.max(1));
        return Err(mismatch(
            "model.cell",
            format!("{:?} ({g} gates)", cfg.cell),
            "rnn.0.fwd.w_hh",
            w_hh,
            means,
        ));
    }
    let attention = shapes.contains_key("attention.v");
    if (cfg.pooling == Pooling::Attention) != attention {
        let holds = format!(
            "{} attention weights",
            if attention {
                "a model with"
            } else {
                "a model without"
            }
        );
        return Err(structure(
            "model.pooling",
            format!("{:?}", cfg.pooling),
            holds,
        ));
    }
    let head = shape("head.weight")?;
    if head.first() != Some(&sizes.classes) {
        bail!(
            "{} holds {} classes, but tensor `head.weight` in {weights} has shape {head:?}; the \
             vocabulary does not belong to these weights",
            sizes.vocab_file.display(),
            sizes.classes
        );
    }
    // Everything named above agrees; now every tensor's exact shape.
    check_every_tensor(cfg, sizes, shapes)
}

/// Every tensor `cfg` implies has exactly its shape, and there is no other (the
/// counts are bounded by the file's own tensors, so this allocates little).
fn check_every_tensor(
    cfg: &ModelSection,
    sizes: &Sizes,
    shapes: &BTreeMap<String, Vec<usize>>,
) -> Result<()> {
    let (config, weights) = (sizes.config.display(), sizes.weights.display());
    let mut names = std::collections::HashSet::new();
    for (name, want) in expected(cfg, sizes) {
        let found = shapes
            .get(&name)
            .with_context(|| format!("{weights} has no tensor `{name}` that {config} needs"))?;
        if *found != want {
            bail!("tensor `{name}` in {weights} has shape {found:?}, but {config} needs {want:?}");
        }
        names.insert(name);
    }
    if let Some(extra) = shapes.keys().find(|k| !names.contains(*k)) {
        bail!("{weights} has a tensor `{extra}` that {config}'s model does not have");
    }
    Ok(())
}

/// Every tensor of the model `cfg` describes, with its shape (as `Classifier::new`
/// makes them).
fn expected<'a>(
    cfg: &'a ModelSection,
    sizes: &Sizes,
) -> impl Iterator<Item = (String, Vec<usize>)> + 'a {
    let (h, g) = (cfg.hidden, gates(cfg.cell));
    let dirs = if cfg.bidirectional { 2 } else { 1 };
    let (vocab, classes) = (sizes.vocab, sizes.classes);
    let pooled = h * dirs;
    let rnn = (0..cfg.layers).flat_map(move |l| {
        let input = if l == 0 { cfg.embedding_dim } else { pooled };
        ["fwd", "bwd"].into_iter().take(dirs).flat_map(move |d| {
            [
                (format!("rnn.{l}.{d}.w_ih"), vec![g * h, input]),
                (format!("rnn.{l}.{d}.w_hh"), vec![g * h, h]),
                (format!("rnn.{l}.{d}.b_ih"), vec![g * h]),
                (format!("rnn.{l}.{d}.b_hh"), vec![g * h]),
            ]
        })
    });
    let attention = (cfg.pooling == Pooling::Attention)
        .then(|| {
            [
                ("attention.weight".to_string(), vec![h, pooled]),
                ("attention.bias".to_string(), vec![h]),
                ("attention.v".to_string(), vec![h]),
            ]
        })
        .into_iter()
        .flatten();
    std::iter::once((
        "embedding.weight".to_string(),
        vec![vocab, cfg.embedding_dim],
    ))
    .chain(rnn)
    .chain(attention)
    .chain([
        ("head.weight".to_string(), vec![classes, pooled]),
        ("head.bias".to_string(), vec![classes]),
    ])
}
