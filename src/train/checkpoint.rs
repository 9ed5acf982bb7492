//! Per-epoch checkpoints: everything the loop needs to continue after a finished
//! epoch (weights, optimizer state, best weights so far, epoch records, RNG
//! positions), so an interrupted run ends with the same numbers as an
//! uninterrupted one. The loop talks to a `Checkpointer`; `DirCheckpointer` keeps
//! one safetensors file in a directory, replaced atomically (temp file + rename).
//!
//! The file carries, in its safetensors metadata, the identity it is bound to
//! (for the runner: store id, trial id, config hash, data fingerprint) and a
//! sha256 of its tensors; a file whose identity differs, whose checksum does not
//! match, or that cannot be parsed is refused on load, never resumed.

use super::{EpochRecord, TrainError};
use crate::files::PendingFile;
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{SafeTensors, View};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, TrainError>;

/// The state after epoch `epoch` has ended.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The last finished epoch, from 1.
    pub epoch: usize,
    /// In the order of `Trainable::vars`.
    pub weights: Vec<Tensor>,
    /// `Optimizer::state`.
    pub optimizer: Vec<(String, Tensor)>,
    /// Weights of the best epoch so far (early stopping only).
    pub best_weights: Option<Vec<Tensor>>,
    /// Records of epochs 1..=epoch.
    pub records: Vec<EpochRecord>,
    /// `ChaCha8Rng::get_word_pos` of the dropout stream.
    pub dropout_pos: u128,
    /// `ChaCha8Rng::get_word_pos` of the shuffle stream.
    pub shuffle_pos: u128,
}

/// Where the loop saves and finds checkpoints.
pub trait Checkpointer {
    /// The latest checkpoint, if any.
    ///
    /// # Errors
    /// `TrainError::Checkpoint` when it exists but cannot be read.
    fn load(&mut self) -> Result<Option<Checkpoint>>;
    /// Replace the latest checkpoint.
    ///
    /// # Errors
    /// `TrainError::Checkpoint` when it cannot be written.
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<()>;
}

/// One `checkpoint.safetensors` in `dir`, bound to an identity.
pub struct DirCheckpointer {
    dir: PathBuf,
    identity: BTreeMap<String, String>,
}

const FILE: &str = "checkpoint.safetensors";
/// Metadata keys: the identity (JSON object) and the tensors' sha256.
const IDENTITY_KEY: &str = "lab.identity";
const CHECKSUM_KEY: &str = "lab.checksum";

impl DirCheckpointer {
    /// Checkpoints in `dir` (created on the first save), bound to no identity.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            identity: BTreeMap::new(),
        }
    }

    /// Bind the checkpoints to `identity`: saved with it, and a file with any
    /// other identity is refused on load.
    pub fn bound_to(mut self, identity: BTreeMap<String, String>) -> Self {
        self.identity = identity;
        self
    }

    /// The checkpoint file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Remove the checkpoint (once the trial is finished).
    pub fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn split_u128(x: u128) -> [i64; 2] {
    [(x >> 64) as u64 as i64, x as u64 as i64]
}

fn join_u128(hi: i64, lo: i64) -> u128 {
    ((hi as u64 as u128) << 64) | lo as u64 as u128
}

/// A malformed file reads as a failed read, naming what was wrong.
fn unreadable(path: &std::path::Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::checkpoint(path, "read the checkpoint", e.to_string())
}

impl Checkpointer for DirCheckpointer {
    fn load(&mut self) -> Result<Option<Checkpoint>> {
        let path = self.path();
        if !path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(|e| unreadable(&path, e))?;
        self.check(&path, &bytes)?;
        let mut t = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| unreadable(&path, e))?;
        let has_best = t.contains_key("best.0");
        let mut take = |name: &str| {
            t.remove(name)
                .ok_or_else(|| unreadable(&path, format!("no {name}")))
        };
        let meta = take("meta")?.to_vec1::<i64>()?;
        if meta.len() != 6 {
            return Err(unreadable(&path, "bad meta"));
        }
        let (epoch, n_weights) = (meta[0] as usize, meta[5] as usize);
        let weights = (0..n_weights)
            .map(|i| take(&format!("w.{i}")))
            .collect::<Result<Vec<_>>>()?;
        let best_weights = if has_best {
            Some(
                (0..n_weights)
                    .map(|i| take(&format!("best.{i}")))
                    .collect::<Result<Vec<_>>>()?,
            )
        } else {
            None
        };
        let records = take("records")?
            .to_vec2::<f64>()?
            .into_iter()
            .map(|r| {
                <[f64; EpochRecord::FIELDS]>::try_from(r)
                    .map(EpochRecord::from_array)
                    .map_err(|_| unreadable(&path, "bad records"))
            })
            .collect::<Result<_>>()?;
        let optimizer = t
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("opt.")?.to_string(), v)))
            .collect();
        Ok(Some(Checkpoint {
            epoch,
            weights,
            optimizer,
            best_weights,
            records,
            dropout_pos: join_u128(meta[1], meta[2]),
            shuffle_pos: join_u128(meta[3], meta[4]),
        }))
    }

    fn save(&mut self, c: &Checkpoint) -> Result<()> {
        let pending = self.write_pending(c)?;
        let path = self.path();
        pending
            .commit()
            .map_err(|e| TrainError::checkpoint(&path, "replace the checkpoint", e))
    }
}

impl DirCheckpointer {
    /// Write `c` under a private temporary name beside the checkpoint; the
    /// caller commits it (renames it into place) when it may.
    ///
    /// # Errors
    /// `TrainError::Checkpoint` when it cannot be written.
    pub fn write_pending(&self, c: &Checkpoint) -> Result<PendingFile> {
        let tensors = tensors_of(c)?;
        let mut sorted: Vec<(&String, &Tensor)> = tensors.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let metadata = HashMap::from([
            (CHECKSUM_KEY.to_string(), checksum(sorted.iter().copied())),
            (IDENTITY_KEY.to_string(), identity_json(&self.identity)),
        ]);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| TrainError::checkpoint(&self.dir, "create the checkpoint directory", e))?;
        let tmp = PendingFile::new(&self.path());
        safetensors::tensor::serialize_to_file(sorted, Some(metadata), tmp.path())
            .map_err(|e| TrainError::checkpoint(tmp.path(), "write the checkpoint", e))?;
        Ok(tmp)
    }

    /// Refuse a file whose checksum or identity is not this one's.
    fn check(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| unreadable(path, e))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| unreadable(path, e))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let Some(recorded) = meta.get(CHECKSUM_KEY) else {
            return Err(unreadable(
                path,
                "it has no checksum (written by an older lab?)",
            ));
        };
        let mut views = file.tensors();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        if *recorded != checksum(views.iter().map(|(n, v)| (n, v))) {
            return Err(unreadable(
                path,
                "its tensors do not match its checksum (the file was changed or damaged)",
            ));
        }
        let expected = identity_json(&self.identity);
        let found = meta.get(IDENTITY_KEY).map_or("none", String::as_str);
        if found != expected {
            return Err(TrainError::checkpoint(
                path,
                "use the checkpoint",
                format!("it belongs to {found}, not to {expected}"),
            ));
        }
        Ok(())
    }
}

/// The tensors a checkpoint is saved as, on the CPU.
fn tensors_of(c: &Checkpoint) -> Result<HashMap<String, Tensor>> {
    let cpu = |t: &Tensor| t.to_device(&Device::Cpu);
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let [d_hi, d_lo] = split_u128(c.dropout_pos);
    let [s_hi, s_lo] = split_u128(c.shuffle_pos);
    let meta = [
        c.epoch as i64,
        d_hi,
        d_lo,
        s_hi,
        s_lo,
        c.weights.len() as i64,
    ];
    t.insert("meta".into(), Tensor::new(&meta, &Device::Cpu)?);
    for (i, w) in c.weights.iter().enumerate() {
        t.insert(format!("w.{i}"), cpu(w)?);
    }
    for (i, w) in c.best_weights.iter().flatten().enumerate() {
        t.insert(format!("best.{i}"), cpu(w)?);
    }
    for (name, v) in &c.optimizer {
        t.insert(format!("opt.{name}"), cpu(v)?);
    }
    let rows: Vec<f64> = c.records.iter().flat_map(|r| r.to_array()).collect();
    let records = Tensor::from_vec(rows, (c.records.len(), EpochRecord::FIELDS), &Device::Cpu)?;
    t.insert("records".into(), records.to_dtype(DType::F64)?);
    Ok(t)
}

/// Hex sha256 over the tensors in name order: name, dtype, shape and bytes each.
fn checksum<'a, N: AsRef<str> + 'a, V: View + 'a>(tensors: impl Iterator<Item = (N, V)>) -> String {
    let mut hash = Sha256::new();
    for (name, view) in tensors {
        hash.update(name.as_ref().as_bytes());
        hash.update(format!("\0{:?}{:?}\0", view.dtype(), view.shape()).as_bytes());
        hash.update(view.data());
    }
    hex::encode(hash.finalize())
}

fn identity_json(identity: &BTreeMap<String, String>) -> String {
    serde_json::to_string(identity).unwrap_or_default()
}
