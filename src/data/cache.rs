//! The prepared-dataset cache: one file per key under the cache directory.
//!
//! Format (little endian): magic `LABDS001`, a u64 length and a JSON header (classes,
//! vocabulary, row counts), then for each split a u64 row count, the labels, the
//! lengths and the concatenated ids (all u32), and finally the sha256 of everything
//! before it. The ids are the bulk, so they stay binary and read back at memory speed.

use super::{Dataset, Split, Vocab};
use crate::spec::{DataSection, PreprocessSection};
use anyhow::{bail, ensure, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LABDS001";
/// Bumped whenever preprocessing or the format changes, so old entries are never reused.
const KEY_VERSION: &str = "lab-data-cache-v1";

/// The cache key for already-read data bytes.
pub(super) fn key_from_bytes(
    bytes: &[u8],
    data: &DataSection,
    pre: &PreprocessSection,
    stopword_bytes: Option<&[u8]>,
) -> anyhow::Result<String> {
    let mut pre_json = serde_json::to_value(pre)?;
    if let Some(obj) = pre_json.as_object_mut() {
        // Balancing happens per trial, after the cache.
        obj.remove("balance");
    }
    let mut h = Sha256::new();
    let mut part = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    part(KEY_VERSION.as_bytes());
    part(bytes);
    part(&serde_json::to_vec(data)?);
    part(&serde_json::to_vec(&pre_json)?);
    part(stopword_bytes.unwrap_or(b""));
    Ok(hex::encode(h.finalize()))
}

/// Where the entry for `key` lives.
pub fn cache_path(cache_dir: &Path, key: &str) -> PathBuf {
    cache_dir.join(format!("{key}.dataset"))
}

#[derive(Serialize, Deserialize)]
struct Header {
    classes: Vec<String>,
    vocab: Vocab,
    rows_read: usize,
    rows_skipped: usize,
}

/// Serialise `ds` to `path` atomically: a temporary file in the same directory, then a rename.
pub fn write(path: &Path, ds: &Dataset) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create cache directory {}", dir.display()))?;
    let bytes = encode(ds)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.{}.{nanos}.tmp",
        name.unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, &bytes)
        .with_context(|| format!("cannot write cache file {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot move cache file into place at {}", path.display())
    })
}

/// Read a cache entry; any damage (truncation, bad checksum, ids out of range) is an error.
pub fn read(path: &Path) -> anyhow::Result<Dataset> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read cache file {}", path.display()))?;
    decode(&bytes).with_context(|| format!("corrupt cache file {}", path.display()))
}

fn encode(ds: &Dataset) -> anyhow::Result<Vec<u8>> {
    let header = serde_json::to_vec(&Header {
        classes: ds.classes.clone(),
        vocab: ds.vocab.clone(),
        rows_read: ds.rows_read,
        rows_skipped: ds.rows_skipped,
    })?;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for split in [&ds.train, &ds.valid, &ds.test] {
        ensure!(
            split.ids.len() == split.labels.len(),
            "split has {} sequences but {} labels",
            split.ids.len(),
            split.labels.len()
        );
        out.extend_from_slice(&(split.len() as u64).to_le_bytes());
        let lens = split.ids.iter().map(|s| s.len() as u32);
        let ids = split.ids.iter().flatten().copied();
        for v in split.labels.iter().copied().chain(lens).chain(ids) {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            bail!("truncated at byte {}", self.pos);
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u64(&mut self) -> anyhow::Result<usize> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into()?) as usize)
    }
    fn u32s(&mut self, n: usize) -> anyhow::Result<Vec<u32>> {
        let b = self.take(n.checked_mul(4).context("length overflow")?)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

fn decode(bytes: &[u8]) -> anyhow::Result<Dataset> {
    ensure!(bytes.len() >= MAGIC.len() + 32, "too short");
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    ensure!(body.starts_with(MAGIC), "not a lab dataset cache file");
    ensure!(Sha256::digest(body).as_slice() == sum, "checksum mismatch");
    let mut r = Reader {
        bytes: body,
        pos: MAGIC.len(),
    };
    let header_len = r.u64()?;
    let header: Header = serde_json::from_slice(r.take(header_len)?)?;
    let mut splits = Vec::with_capacity(3);
    for _ in 0..3 {
        let n = r.u64()?;
        let labels = r.u32s(n)?;
        let lens = r.u32s(n)?;
        let total = lens.iter().map(|&l| l as usize).sum();
        let flat = r.u32s(total)?;
        let mut ids = Vec::with_capacity(n);
        let mut at = 0;
        for &l in &lens {
            ensure!(l > 0, "empty sequence");
            ids.push(flat[at..at + l as usize].to_vec());
            at += l as usize;
        }
        let vocab_len = header.vocab.len() as u32;
        ensure!(
            flat.iter().all(|&id| id < vocab_len),
            "id out of vocabulary"
        );
        let n_classes = header.classes.len() as u32;
        ensure!(labels.iter().all(|&l| l < n_classes), "label out of range");
        splits.push(Split { ids, labels });
    }
    ensure!(r.pos == body.len(), "trailing bytes");
    let mut splits = splits.into_iter();
    let mut next = || splits.next().unwrap_or_default();
    Ok(Dataset {
        classes: header.classes,
        vocab: header.vocab,
        train: next(),
        valid: next(),
        test: next(),
        rows_read: header.rows_read,
        rows_skipped: header.rows_skipped,
    })
}
