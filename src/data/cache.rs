//! The prepared-dataset cache: one file per key under the cache directory, read back
//! by memory-mapping it (the ids are never copied).
//!
//! Format (little endian, every array starting at a multiple of 8 bytes):
//!
//! ```text
//! magic "LABDS004" | u64 header length | JSON header (classes, vocabulary, row counts,
//! id width, rows and ids per split) | labels of train, valid, test (u32 each) |
//! offsets of train, valid, test (u64, rows + 1 each) | record indices of train, valid,
//! test (u32 each) | row hashes of train, valid, test (u64 each) | ids of train, valid, test (u16
//! when the vocabulary has at most 65,536 entries, else u32) | JSON data report |
//! u64 report length | sha256 checksum
//! ```
//!
//! The checksum is the sha256 of five sha256s: of everything before the ids, of each
//! split's ids (with their padding) and of the report with its length; the writer
//! hashes the ids as it streams them and the reader checks the parts in parallel. The
//! report goes last because it is only known once the ids are written (its vocabulary
//! coverage counts them); an entry whose report does not parse reads as one without,
//! which `prepare` rebuilds. Files are written to a temporary
//! name and renamed into place, never changed in place, so a mapped file stays valid.

use super::{encoded::Ids, report::DataReport, Column, Dataset, Scalar, Split, Vocab};
use crate::files::{parent_dir, PendingFile};
use crate::spec::{DataSection, PreprocessSection, Stem};
use anyhow::{ensure, Context};
use memmap2::Mmap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"LABDS004";
/// Bumped whenever preprocessing or the format changes, so old entries are never reused.
const KEY_VERSION: &str = "lab-data-cache-v4";

/// The cache key: sha256 over the data file's bytes (streamed; an `hf://` dataset's
/// Parquet files in order), the data section, the
/// preprocess section without `balance` (applied per trial), the stop-word file's bytes
/// when there is one, and the lemma table when `stem = "lemma"`.
pub(super) fn key(
    data_file: &Path,
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
    part(&serde_json::to_vec(data)?);
    part(&serde_json::to_vec(&pre_json)?);
    part(stopword_bytes.unwrap_or(b""));
    part(if pre.stem == Stem::Lemma {
        super::lemma::TABLE
    } else {
        b""
    });
    // Each file's bytes then its length: one file (every path but hf://) hashes as before.
    for path in super::read::source_files(data_file)? {
        let cannot = || format!("cannot read data file {}", path.display());
        let mut file = super::read::open_regular(&path, "data file")?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = file.read(&mut buf).with_context(cannot)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
        }
        h.update(total.to_le_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// Where the entry for `key` lives.
pub fn cache_path(cache_dir: &Path, key: &str) -> PathBuf {
    cache_dir.join(format!("{key}.dataset"))
}

#[derive(Serialize, Deserialize)]
pub(super) struct Header {
    pub classes: Vec<String>,
    pub vocab: Vocab,
    pub rows_read: usize,
    pub rows_skipped: usize,
    /// Bytes per id: 2 or 4.
    pub id_width: usize,
    /// Rows and ids of train, valid, test.
    pub rows: [usize; 3],
    pub tokens: [usize; 3],
}

/// Bytes per id for a vocabulary of `n` entries.
pub(super) fn id_width(vocab_len: usize) -> usize {
    if vocab_len <= 1 << 16 {
        2
    } else {
        4
    }
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Byte positions of every array, from the header's counts.
struct Layout {
    labels: [usize; 3],
    offsets: [usize; 3],
    sources: [usize; 3],
    hashes: [usize; 3],
    /// Start of each split's ids, and (last) the end of the ids = the checksum's place.
    ids: [usize; 4],
}

impl Layout {
    fn new(header_len: usize, h: &Header) -> anyhow::Result<Layout> {
        let big = || anyhow::anyhow!("sizes overflow");
        let mut pos = 16usize.checked_add(header_len).ok_or_else(big)?;
        // Room for `n` values of `size` bytes at the next multiple of 8: their start.
        let mut reserve = |n: Option<usize>, size: usize| -> anyhow::Result<usize> {
            let start = align8(pos);
            pos = n
                .and_then(|n| n.checked_mul(size))
                .and_then(|b| b.checked_add(start))
                .ok_or_else(big)?;
            Ok(start)
        };
        let mut labels = [0; 3];
        for (at, &rows) in labels.iter_mut().zip(&h.rows) {
            *at = reserve(Some(rows), 4)?;
        }
        let mut offsets = [0; 3];
        for (at, &rows) in offsets.iter_mut().zip(&h.rows) {
            *at = reserve(rows.checked_add(1), 8)?;
        }
        let mut sources = [0; 3];
        for (at, &rows) in sources.iter_mut().zip(&h.rows) {
            *at = reserve(Some(rows), 4)?;
        }
        let mut hashes = [0; 3];
        for (at, &rows) in hashes.iter_mut().zip(&h.rows) {
            *at = reserve(Some(rows), 8)?;
        }
        let mut ids = [0; 4];
        for (at, &tokens) in ids.iter_mut().zip(&h.tokens) {
            *at = reserve(Some(tokens), h.id_width)?;
        }
        ids[3] = reserve(Some(0), 1)?;
        Ok(Layout {
            labels,
            offsets,
            sources,
            hashes,
            ids,
        })
    }
}

/// The per-row arrays written before the ids, each for train, valid and test.
pub(super) struct Columns<'a> {
    pub labels: [&'a [u32]; 3],
    /// Rows + 1 each.
    pub offsets: [&'a [u64]; 3],
    /// Record indices in the data file.
    pub sources: [&'a [u32]; 3],
    /// Row hashes (`row_hash`).
    pub hashes: [&'a [u64]; 3],
}

fn header_bytes(h: &Header) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(h)?)
}

/// Streams a cache file: labels and offsets are known up front, the ids of each split
/// arrive in row order (rows of the three splits interleaved) and are written at their
/// place through one handle per split. Nothing is in place until `finish`.
pub(super) struct Writer {
    /// The ids' handles go first: they are closed before the temporary file is
    /// removed when a `Writer` is dropped unfinished.
    splits: Vec<(BufWriter<File>, Sha256, usize)>,
    file: PendingFile,
    layout: Layout,
    width: usize,
    meta_hash: [u8; 32],
    expected: [usize; 3],
}

impl Writer {
    pub(super) fn create(path: &Path, header: &Header, cols: Columns) -> anyhow::Result<Writer> {
        let dir = parent_dir(path);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create cache directory {}", dir.display()))?;
        let head = header_bytes(header)?;
        let layout = Layout::new(head.len(), header)?;
        let mut w = Writer {
            splits: Vec::new(),
            file: PendingFile::new(path),
            width: header.id_width,
            meta_hash: [0; 32],
            expected: header.tokens,
            layout,
        };
        let cannot = |p: &Path| format!("cannot write cache file {}", p.display());
        let tmp = w.file.path().to_path_buf();
        let file = File::create(&tmp).with_context(|| cannot(&tmp))?;
        // Everything before the ids, hashed as it goes.
        let mut meta = HashingWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            pos: 0,
        };
        meta.put(MAGIC)?;
        meta.put(&(head.len() as u64).to_le_bytes())?;
        meta.put(&head)?;
        for s in 0..3 {
            ensure!(
                cols.sources[s].len() == header.rows[s] && cols.hashes[s].len() == header.rows[s],
                "split {s}: row origins do not match its rows"
            );
        }
        for (s, labels) in cols.labels.iter().enumerate() {
            meta.pad_to(w.layout.labels[s])?;
            meta.put(&u32::le_bytes(labels))?;
        }
        for (s, offsets) in cols.offsets.iter().enumerate() {
            meta.pad_to(w.layout.offsets[s])?;
            meta.put(&u64::le_bytes(offsets))?;
        }
        for (s, sources) in cols.sources.iter().enumerate() {
            meta.pad_to(w.layout.sources[s])?;
            meta.put(&u32::le_bytes(sources))?;
        }
        for (s, hashes) in cols.hashes.iter().enumerate() {
            meta.pad_to(w.layout.hashes[s])?;
            meta.put(&u64::le_bytes(hashes))?;
        }
        ensure!(meta.pos == w.layout.ids[0], "cache layout mismatch");
        w.meta_hash = meta.hash.finalize().into();
        meta.out.flush().with_context(|| cannot(&tmp))?;
        for s in 0..3 {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&tmp)
                .with_context(|| cannot(&tmp))?;
            f.seek(SeekFrom::Start(w.layout.ids[s] as u64))
                .with_context(|| cannot(&tmp))?;
            w.splits
                .push((BufWriter::with_capacity(1 << 20, f), Sha256::new(), 0));
        }
        Ok(w)
    }

    /// Append the ids of the next row of split `s` (0 train, 1 valid, 2 test).
    pub(super) fn push(&mut self, s: usize, ids: &[u32]) -> anyhow::Result<()> {
        let width = self.width;
        let (out, hash, written) = &mut self.splits[s];
        let mut buf = [0u8; 4096];
        for chunk in ids.chunks(1024) {
            let n = chunk.len() * width;
            for (b, &id) in buf.chunks_exact_mut(width).zip(chunk) {
                if width == 2 {
                    ensure!(id <= u16::MAX as u32, "id {id} does not fit in 16 bits");
                    b.copy_from_slice(&(id as u16).to_le_bytes());
                } else {
                    b.copy_from_slice(&id.to_le_bytes());
                }
            }
            out.write_all(&buf[..n]).with_context(|| {
                format!("cannot write cache file {}", self.file.path().display())
            })?;
            hash.update(&buf[..n]);
        }
        *written += ids.len();
        Ok(())
    }

    /// Pad, write the report and the checksum and move the file into place (synced
    /// to disk first).
    pub(super) fn finish(mut self, report: Option<&DataReport>) -> anyhow::Result<()> {
        let tmp = self.file.path().to_path_buf();
        let cannot = || format!("cannot write cache file {}", tmp.display());
        let mut sum = Sha256::new();
        sum.update(self.meta_hash);
        for (s, (out, hash, written)) in self.splits.iter_mut().enumerate() {
            ensure!(
                *written == self.expected[s],
                "split {s}: {written} ids written, {} expected",
                self.expected[s]
            );
            let end = self.layout.ids[s] + *written * self.width;
            let pad = vec![0u8; self.layout.ids[s + 1] - end];
            out.write_all(&pad).with_context(cannot)?;
            hash.update(&pad);
            out.flush().with_context(cannot)?;
            sum.update(hash.clone().finalize());
        }
        let mut footer = serde_json::to_vec(&report)?;
        footer.extend_from_slice(&(footer.len() as u64).to_le_bytes());
        sum.update(Sha256::digest(&footer));
        let (mut last, _, _) = self.splits.pop().context("no splits")?;
        last.write_all(&footer).with_context(cannot)?;
        last.write_all(&sum.finalize()).with_context(cannot)?;
        last.flush().with_context(cannot)?;
        drop(last);
        self.splits.clear();
        let dest = self.file.dest().display().to_string();
        self.file
            .commit()
            .with_context(|| format!("cannot move cache file into place at {dest}"))
    }
}

struct HashingWriter {
    out: BufWriter<File>,
    hash: Sha256,
    pos: usize,
}

impl HashingWriter {
    fn put(&mut self, b: &[u8]) -> anyhow::Result<()> {
        self.out.write_all(b).context("cannot write cache file")?;
        self.hash.update(b);
        self.pos += b.len();
        Ok(())
    }
    fn pad_to(&mut self, pos: usize) -> anyhow::Result<()> {
        ensure!(pos >= self.pos, "cache layout mismatch");
        self.put(&vec![0u8; pos - self.pos])
    }
}

/// Serialise `ds` to `path` atomically (a temporary file in the same directory, then a
/// rename).
pub fn write(path: &Path, ds: &Dataset) -> anyhow::Result<()> {
    let splits = [&ds.train, &ds.valid, &ds.test];
    let header = Header {
        classes: ds.classes.clone(),
        vocab: ds.vocab.clone(),
        rows_read: ds.rows_read,
        rows_skipped: ds.rows_skipped,
        id_width: id_width(ds.vocab.len()),
        rows: splits.map(|s| s.len()),
        tokens: splits.map(|s| s.tokens()),
    };
    // A split whose origins are unknown is written as records 0.. with hash 0.
    let origins = splits.map(|s| match s.origins() {
        Some((sources, hashes)) => (sources.to_vec(), hashes.to_vec()),
        None => ((0..s.len() as u32).collect(), vec![0; s.len()]),
    });
    let mut w = Writer::create(
        path,
        &header,
        Columns {
            labels: splits.map(|s| &s.labels[..]),
            offsets: splits.map(|s| &s.offsets[..]),
            sources: [0, 1, 2].map(|s| &origins[s].0[..]),
            hashes: [0, 1, 2].map(|s| &origins[s].1[..]),
        },
    )?;
    for (k, split) in splits.iter().enumerate() {
        for row in split.rows() {
            w.push(k, &row)?;
        }
    }
    w.finish(ds.report.as_deref())
}

/// Map a cache entry; any damage (truncation, bad checksum, ids or labels out of
/// range, bad offsets) is an error.
pub fn read(path: &Path) -> anyhow::Result<Dataset> {
    let file =
        File::open(path).with_context(|| format!("cannot read cache file {}", path.display()))?;
    // SAFETY: lab never changes a cache file in place (it writes a new file and renames
    // it over the old one), so the mapped bytes do not change under us unless another
    // program truncates or rewrites the file, which the cache directory is not for.
    let map = unsafe { Mmap::map(&file) }
        .with_context(|| format!("cannot map cache file {}", path.display()))?;
    decode(Arc::new(map)).with_context(|| format!("corrupt cache file {}", path.display()))
}

fn decode(map: Arc<Mmap>) -> anyhow::Result<Dataset> {
    let bytes: &[u8] = &map;
    ensure!(bytes.len() >= 16 + 8 + 32, "too short");
    ensure!(bytes.starts_with(MAGIC), "not a lab dataset cache file");
    let header_len = u64::from_le_bytes(bytes[8..16].try_into()?) as usize;
    ensure!(header_len <= bytes.len() - 16, "truncated header");
    let header: Header = serde_json::from_slice(&bytes[16..16 + header_len])?;
    ensure!(
        header.id_width == 2 || header.id_width == 4,
        "id width {}",
        header.id_width
    );
    let layout = Layout::new(header_len, &header)?;
    let sum_at = bytes.len() - 32;
    let footer_len = u64::from_le_bytes(bytes[sum_at - 8..sum_at].try_into()?);
    let footer_end = usize::try_from(footer_len)
        .ok()
        .and_then(|n| layout.ids[3].checked_add(n));
    ensure!(
        footer_end.and_then(|n| n.checked_add(8 + 32)) == Some(bytes.len()),
        "{} bytes, the header describes {} and a report of {footer_len}",
        bytes.len(),
        layout.ids[3].saturating_add(8 + 32)
    );
    // The checksum, its five parts hashed in parallel.
    let regions = [
        0..layout.ids[0],
        layout.ids[0]..layout.ids[1],
        layout.ids[1]..layout.ids[2],
        layout.ids[2]..layout.ids[3],
        layout.ids[3]..sum_at,
    ];
    let parts: Vec<[u8; 32]> = regions
        .par_iter()
        .map(|r| Sha256::digest(&bytes[r.clone()]).into())
        .collect();
    let mut sum = Sha256::new();
    for p in &parts {
        sum.update(p);
    }
    ensure!(
        sum.finalize().as_slice() == &bytes[sum_at..],
        "checksum mismatch"
    );
    // A report this build cannot parse (an older layout) reads as none.
    let report: Option<DataReport> =
        serde_json::from_slice(&bytes[layout.ids[3]..sum_at - 8]).unwrap_or(None);

    let n_classes = header.classes.len() as u32;
    let vocab_len = header.vocab.len() as u64;
    let mut splits = Vec::with_capacity(3);
    for s in 0..3 {
        let (rows, tokens) = (header.rows[s], header.tokens[s]);
        let labels: Column<u32> = Column::mapped(&map, layout.labels[s], rows);
        ensure!(labels.iter().all(|&l| l < n_classes), "label out of range");
        let offsets: Column<u64> = Column::mapped(&map, layout.offsets[s], rows + 1);
        ensure!(
            offsets.first() == Some(&0) && offsets.last() == Some(&(tokens as u64)),
            "offsets do not span the ids"
        );
        ensure!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "empty or unordered sequence"
        );
        let ids = if header.id_width == 2 {
            let c: Column<u16> = Column::mapped(&map, layout.ids[s], tokens);
            ensure!(
                c.par_chunks(1 << 16)
                    .all(|c| c.iter().all(|&id| (id as u64) < vocab_len)),
                "id out of vocabulary"
            );
            Ids::U16(c)
        } else {
            let c: Column<u32> = Column::mapped(&map, layout.ids[s], tokens);
            ensure!(
                c.par_chunks(1 << 16)
                    .all(|c| c.iter().all(|&id| (id as u64) < vocab_len)),
                "id out of vocabulary"
            );
            Ids::U32(c)
        };
        splits.push(Split {
            ids,
            offsets,
            labels,
            sources: Column::mapped(&map, layout.sources[s], rows),
            hashes: Column::mapped(&map, layout.hashes[s], rows),
        });
    }
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
        report: report.map(Arc::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(vocab_len: usize) -> Dataset {
        let mut itos = vec!["<pad>".to_string(), "<unk>".to_string()];
        itos.extend((2..vocab_len).map(|i| format!("w{i}")));
        let top = vocab_len as u32 - 1;
        Dataset {
            classes: vec!["a".into(), "b".into()],
            vocab: Vocab { itos },
            train: Split::from_rows(&[vec![2, 3], vec![top], vec![1, 1, 1]], vec![0, 1, 0]),
            valid: Split::from_rows(&[vec![5]], vec![1]),
            test: Split::default(),
            rows_read: 5,
            rows_skipped: 1,
            report: Some(Arc::new(DataReport {
                file: "tiny.csv".into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn round_trip_in_both_widths_is_mapped() {
        let dir = tempfile::tempdir().unwrap();
        for n in [300, 70_000] {
            let ds = tiny(n);
            let file = dir.path().join(format!("{n}.dataset"));
            write(&file, &ds).unwrap();
            let back = read(&file).unwrap();
            assert_eq!(back, ds);
            assert_eq!(back.report, ds.report);
            assert_eq!(back.train.id_width(), id_width(n));
            assert!(back.train.is_mapped());
            assert_eq!(back.train.row(1).as_ref(), [n as u32 - 1]);
        }
    }
}
