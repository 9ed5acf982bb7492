//! Preparing a dataset in three streaming passes over the data file, so memory stays
//! flat however many rows it has:
//!
//! 1. **scan**: read every row, check it, keep only its class (`load::scan_file`);
//!    then the stratified split (which needs every label) decides each row's split;
//! 2. **count**: clean and tokenise in parallel (rayon over chunks of rows read by a
//!    separate thread), counting the raw tokens of training rows (per-thread counts,
//!    merged at the end) and noting each row's length (before the cut at `max_len`,
//!    for the data report, and as encoded); then **build the vocabulary**, each
//!    distinct raw token stop-word-filtered and stemmed once;
//! 3. **encode**: tokenise again (stopping at `max_len` tokens; each thread remembers
//!    the id of every raw token it met) and stream the ids of each split into a sink:
//!    memory, or a cache file written at its final place (counting the unknown ids
//!    for the report's vocabulary coverage).
//!
//! Texts are never all in memory: a chunk is read while the previous one is tokenised.
//! The result equals tokenising every text with `Preprocessor::tokens`, building the
//! vocabulary with `Vocab::build` and encoding with `Encoder::encode` (tests/it/data.rs
//! checks it on the shipped data sets).

use super::cache::{self, Header};
use super::encoded::{Ids, Split};
use super::notes::ReadNotes;
use super::report::{self, DataReport, LengthCounts};
use super::FastMap;
use super::{load, split_indices, Dataset, Encoder, Preprocessor, Vocab, UNK_ID};
use crate::spec::{DataSection, PreprocessSection};
use anyhow::{bail, Context};
use rayon::prelude::*;
use std::cell::RefCell;
use std::path::Path;
use std::time::{Duration, Instant};
use thread_local::ThreadLocal;

/// A chunk ends after this many rows or bytes of text, whichever comes first.
const CHUNK_ROWS: usize = 8192;
const CHUNK_BYTES: usize = 16 << 20;
/// Rows per rayon task within a chunk.
const TASK_ROWS: usize = 64;

/// What building a dataset did and how long each pass took.
#[derive(Debug, Clone, Default)]
pub struct BuildStats {
    /// Rows kept (read minus skipped).
    pub rows: usize,
    /// Data rows read (after `limit`), skipped ones included.
    pub rows_read: usize,
    /// Vocabulary size, padding and unknown included.
    pub vocab: usize,
    /// Rows and ids per split (train, valid, test).
    pub split_rows: [usize; 3],
    /// Ids per split (train, valid, test).
    pub split_tokens: [usize; 3],
    /// Bytes per stored id.
    pub id_width: usize,
    /// Time of pass 1 (scan and split).
    pub scan: Duration,
    /// Time of pass 2 (count tokens, build the vocabulary).
    pub count: Duration,
    /// Time of pass 3 (encode).
    pub encode: Duration,
}

/// Where pass 3 puts each row's ids.
trait Sink {
    fn push(&mut self, split: usize, ids: &[u32]) -> anyhow::Result<()>;
}

impl Sink for [Vec<u32>; 3] {
    fn push(&mut self, split: usize, ids: &[u32]) -> anyhow::Result<()> {
        self[split].extend_from_slice(ids);
        Ok(())
    }
}

impl Sink for cache::Writer {
    fn push(&mut self, split: usize, ids: &[u32]) -> anyhow::Result<()> {
        cache::Writer::push(self, split, ids)
    }
}

/// Everything of a dataset but its ids: the result of passes 1 and 2.
struct Plan {
    classes: Vec<String>,
    vocab: Vocab,
    rows_read: usize,
    rows_skipped: usize,
    /// Which records read are kept rows (see `load::Labels::kept`).
    kept: Vec<bool>,
    /// The split (0 train, 1 valid, 2 test) of each kept row.
    member: Vec<u8>,
    labels: [Vec<u32>; 3],
    offsets: [Vec<u64>; 3],
    /// Each row's record index in the file, per split (pass 1).
    sources: [Vec<u32>; 3],
    /// Each row's `row_hash`, per split (pass 2).
    hashes: [Vec<u64>; 3],
    stats: BuildStats,
    /// What reading noticed (pass 1), for the report.
    notes: ReadNotes,
    /// Token counts per row before `max_len` (pass 2), for the report.
    lengths: LengthCounts,
    /// `<unk>` ids written per split (pass 3), for the report.
    unknown: [usize; 3],
}

impl Plan {
    fn header(&self) -> Header {
        Header {
            classes: self.classes.clone(),
            vocab: self.vocab.clone(),
            rows_read: self.rows_read,
            rows_skipped: self.rows_skipped,
            id_width: cache::id_width(self.vocab.len()),
            rows: [0, 1, 2].map(|s| self.labels[s].len()),
            tokens: [0, 1, 2].map(|s| self.offsets[s].last().copied().unwrap_or(0) as usize),
        }
    }

    /// The data report, once pass 3 has run.
    fn report(&self, path: &Path, max_len: usize) -> DataReport {
        DataReport::new(&report::Parts {
            file: path,
            notes: &self.notes,
            rows_read: self.rows_read,
            rows_skipped: self.rows_skipped,
            classes: &self.classes,
            labels: [0, 1, 2].map(|s| &self.labels[s][..]),
            lengths: &self.lengths,
            max_len,
            vocab_size: self.vocab.len(),
            ids: [0, 1, 2].map(|s| self.offsets[s].last().copied().unwrap_or(0) as usize),
            unknown: self.unknown,
        })
    }
}

/// Build the dataset in memory.
pub(super) fn build_in_memory(
    path: &Path,
    data: &DataSection,
    cfg: &PreprocessSection,
    base_dir: &Path,
) -> anyhow::Result<(Dataset, BuildStats)> {
    let pre = Preprocessor::new(cfg, base_dir)?;
    let mut plan = plan(path, data, cfg, &pre)?;
    let mut ids: [Vec<u32>; 3] = Default::default();
    encode(path, data, cfg, &pre, &mut plan, &mut ids)?;
    let report = plan.report(path, cfg.max_len.max(1));
    let narrow = cache::id_width(plan.vocab.len()) == 2;
    let [train, valid, test] = [0, 1, 2].map(|s| {
        let ids = std::mem::take(&mut ids[s]);
        Split {
            ids: if narrow {
                Ids::U16(ids.iter().map(|&v| v as u16).collect::<Vec<_>>().into())
            } else {
                Ids::U32(ids.into())
            },
            offsets: std::mem::take(&mut plan.offsets[s]).into(),
            labels: std::mem::take(&mut plan.labels[s]).into(),
            sources: std::mem::take(&mut plan.sources[s]).into(),
            hashes: std::mem::take(&mut plan.hashes[s]).into(),
        }
    });
    let ds = Dataset {
        classes: plan.classes,
        vocab: plan.vocab,
        train,
        valid,
        test,
        rows_read: plan.rows_read,
        rows_skipped: plan.rows_skipped,
        report: Some(std::sync::Arc::new(report)),
    };
    Ok((ds, plan.stats))
}

/// Build the dataset straight into the cache file `file` (never holding its ids in
/// memory), with its data report.
pub(super) fn build_to_file(
    path: &Path,
    data: &DataSection,
    cfg: &PreprocessSection,
    base_dir: &Path,
    file: &Path,
) -> anyhow::Result<(BuildStats, DataReport)> {
    let pre = Preprocessor::new(cfg, base_dir)?;
    let mut plan = plan(path, data, cfg, &pre)?;
    let mut writer = cache::Writer::create(
        file,
        &plan.header(),
        cache::Columns {
            labels: [0, 1, 2].map(|s| &plan.labels[s][..]),
            offsets: [0, 1, 2].map(|s| &plan.offsets[s][..]),
            sources: [0, 1, 2].map(|s| &plan.sources[s][..]),
            hashes: [0, 1, 2].map(|s| &plan.hashes[s][..]),
        },
    )?;
    encode(path, data, cfg, &pre, &mut plan, &mut writer)?;
    let report = plan.report(path, cfg.max_len.max(1));
    writer.finish(Some(&report))?;
    Ok((plan.stats, report))
}

/// Passes 1 and 2: labels, split, token counts, lengths, vocabulary.
fn plan(
    path: &Path,
    data: &DataSection,
    cfg: &PreprocessSection,
    pre: &Preprocessor,
) -> anyhow::Result<Plan> {
    let start = Instant::now();
    let scan = scan_and_split(path, data)?;
    let scanned = start.elapsed();
    let start = Instant::now();
    let counted = count_tokens(path, data, cfg, pre, &scan)?;
    let vocab = build_vocab(counted.raw, pre, cfg);
    let offsets = counted.offsets;
    let lengths = counted.lengths;
    let hashes = counted.hashes;
    let stats = BuildStats {
        rows: scan.member.len(),
        rows_read: scan.labels.rows_read,
        vocab: vocab.len(),
        split_rows: [0, 1, 2].map(|s| scan.split_labels[s].len()),
        split_tokens: [0, 1, 2].map(|s| offsets[s].last().copied().unwrap_or(0) as usize),
        id_width: cache::id_width(vocab.len()),
        scan: scanned,
        count: start.elapsed(),
        encode: Duration::ZERO,
    };
    Ok(Plan {
        classes: scan.labels.classes,
        vocab,
        rows_read: scan.labels.rows_read,
        rows_skipped: scan.labels.rows_skipped,
        kept: scan.labels.kept,
        member: scan.member,
        labels: scan.split_labels,
        offsets,
        sources: scan.sources,
        hashes,
        stats,
        notes: scan.labels.notes,
        lengths,
        unknown: [0; 3],
    })
}

/// Pass 1's result: every kept row's class and split.
struct Scanned {
    labels: load::Labels,
    /// The split (0 train, 1 valid, 2 test) of each kept row.
    member: Vec<u8>,
    /// The labels of train, valid and test, in file order.
    split_labels: [Vec<u32>; 3],
    /// The record index (in the file) of each row of train, valid and test.
    sources: [Vec<u32>; 3],
}

/// Pass 1: read every row's label (`load::scan_file`), then split. Splits that
/// cannot be scored are refused here, before anything is recorded
/// (`split::check_splits`).
fn scan_and_split(path: &Path, data: &DataSection) -> anyhow::Result<Scanned> {
    let scan = load::scan_file(path, data)?;
    let [train, valid, test] = split_indices(&scan.labels, scan.classes.len(), &data.split)?;
    super::split::check_splits(path, data, &scan, [&train, &valid, &test])?;
    let mut member = vec![0u8; scan.labels.len()];
    for (s, rows) in [(1u8, &valid), (2u8, &test)] {
        for &i in rows {
            member[i] = s;
        }
    }
    let split_labels: [Vec<u32>; 3] =
        [&train, &valid, &test].map(|rows| rows.iter().map(|&i| scan.labels[i]).collect());
    let sources = record_indices(path, &scan.kept, &member)?;
    Ok(Scanned {
        labels: scan,
        member,
        split_labels,
        sources,
    })
}

/// The record index of every kept row, per split, in file order: kept row `j`
/// is the `j`-th record whose `kept` is true.
fn record_indices(path: &Path, kept: &[bool], member: &[u8]) -> anyhow::Result<[Vec<u32>; 3]> {
    let mut sources: [Vec<u32>; 3] = Default::default();
    let records = kept.iter().enumerate().filter(|(_, k)| **k);
    for ((record, _), &s) in records.zip(member) {
        let record = u32::try_from(record)
            .map_err(|_| anyhow::anyhow!("{}: more than 2^32 records", path.display()))?;
        sources[s as usize].push(record);
    }
    Ok(sources)
}

/// Pass 2's result: raw-token counts of the training rows, each split's row ends and
/// the rows' lengths before the cut at `max_len`.
struct Counted {
    raw: FastMap<String, RawCount>,
    offsets: [Vec<u64>; 3],
    lengths: LengthCounts,
    /// Each row's `row_hash`, per split.
    hashes: [Vec<u64>; 3],
}

/// Pass 2: each row's encoded length (its split's offsets) and the counts of the
/// raw tokens of training rows (as cleaning leaves them, before stop words and
/// stemming: one lookup per token). Each thread counts into its own map, never
/// contended; the maps are merged at the end.
fn count_tokens(
    path: &Path,
    data: &DataSection,
    cfg: &PreprocessSection,
    pre: &Preprocessor,
    scan: &Scanned,
) -> anyhow::Result<Counted> {
    let max_len = cfg.max_len.max(1);
    let member = &scan.member;
    let locals: ThreadLocal<RefCell<FastMap<String, RawCount>>> = ThreadLocal::new();
    let mut offsets: [Vec<u64>; 3] = [0, 1, 2].map(|s| {
        let mut v = Vec::with_capacity(scan.split_labels[s].len() + 1);
        v.push(0);
        v
    });
    let mut lengths = LengthCounts::default();
    let mut hashes: [Vec<u64>; 3] = Default::default();
    let kept = chunks(path, data, &scan.labels.kept, |first, texts| {
        let lens: Vec<(u32, u64)> = texts
            .par_chunks(TASK_ROWS)
            .enumerate()
            .flat_map_iter(|(task, texts)| {
                let mut counts = locals.get_or_default().borrow_mut();
                let first = first + task * TASK_ROWS;
                let lens: Vec<(u32, u64)> = texts
                    .iter()
                    .enumerate()
                    .map(|(j, text)| {
                        let training = member.get(first + j) == Some(&0);
                        let counts = training.then_some(&mut *counts);
                        (row_length(pre, text, counts), super::row_hash(text))
                    })
                    .collect();
                lens
            })
            .collect();
        for (j, (len, hash)) in lens.into_iter().enumerate() {
            let s = split_of(member, first + j)?;
            hashes[s].push(hash);
            lengths.add(s, len as usize, max_len);
            let len = (len as usize).clamp(1, max_len);
            let end = offsets[s].last().copied().unwrap_or(0) + len as u64;
            offsets[s].push(end);
        }
        Ok(())
    })?;
    check_rows(path, kept, member.len())?;
    let mut raw: FastMap<String, RawCount> = FastMap::default();
    for local in locals {
        let local = local.into_inner();
        if raw.is_empty() {
            raw = local;
            continue;
        }
        for (t, c) in local {
            raw.entry(t).or_insert(RawCount { count: 0, ..c }).count += c.count;
        }
    }
    Ok(Counted {
        raw,
        offsets,
        lengths,
        hashes,
    })
}

/// The tokens of one row after stop words, before the cut at `max_len` (the encoded
/// length is this clamped to 1..=`max_len`); a training row (`counts` given) has its
/// raw tokens counted.
fn row_length(
    pre: &Preprocessor,
    text: &str,
    counts: Option<&mut FastMap<String, RawCount>>,
) -> u32 {
    let mut n = 0usize;
    match counts {
        Some(counts) => pre.each_raw_token(text, |raw| {
            let stop = match counts.get_mut(raw) {
                Some(c) => {
                    c.count += 1;
                    c.stop
                }
                None => {
                    let stop = pre.is_stopword(raw);
                    counts.insert(raw.to_string(), RawCount { count: 1, stop });
                    stop
                }
            };
            n += usize::from(!stop);
            true
        }),
        None => pre.each_raw_token(text, |raw| {
            n += usize::from(!pre.is_stopword(raw));
            true
        }),
    }
    n.min(u32::MAX as usize) as u32
}

/// The vocabulary from the raw-token counts: each distinct raw token that is not a
/// stop word is stemmed once, and a base form counts the sum over its raw forms.
fn build_vocab(
    raw: FastMap<String, RawCount>,
    pre: &Preprocessor,
    cfg: &PreprocessSection,
) -> Vocab {
    let based: Vec<(String, u64)> = raw
        .into_iter()
        .filter(|(_, c)| !c.stop)
        .collect::<Vec<_>>()
        .into_par_iter()
        .filter_map(|(t, c)| pre.base_form(&t).map(|b| (b, c.count)))
        .collect();
    let mut counts: FastMap<String, u64> = FastMap::default();
    for (t, c) in based {
        *counts.entry(t).or_insert(0) += c;
    }
    Vocab::from_counts(counts, cfg.min_freq, cfg.max_vocab)
}

/// Pass 3: every row's ids, in file order, to `sink`.
fn encode(
    path: &Path,
    data: &DataSection,
    cfg: &PreprocessSection,
    pre: &Preprocessor,
    plan: &mut Plan,
    sink: &mut impl Sink,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let encoder = plan.vocab.encoder();
    let max_len = cfg.max_len.max(1);
    let memos: ThreadLocal<RefCell<FastMap<String, u32>>> = ThreadLocal::new();
    let mut next = [0usize; 3];
    let mut unknown = [0usize; 3];
    let (member, offsets) = (&plan.member, &plan.offsets);
    let kept = chunks(path, data, &plan.kept, |first, texts| {
        let encoded: Vec<Vec<u32>> = texts
            .par_chunks(TASK_ROWS)
            .flat_map_iter(|texts| {
                let mut memo = memos.get_or_default().borrow_mut();
                let rows: Vec<Vec<u32>> = texts
                    .iter()
                    .map(|text| encode_row(pre, &encoder, &mut memo, text, max_len))
                    .collect();
                rows
            })
            .collect();
        for (j, ids) in encoded.iter().enumerate() {
            let s = split_of(member, first + j)?;
            let r = next[s];
            let expected = offsets[s].get(r + 1).map(|end| end - offsets[s][r]);
            if expected != Some(ids.len() as u64) {
                bail!(
                    "{} changed while it was being read (row {} encodes differently); run again",
                    path.display(),
                    first + j + 1
                );
            }
            sink.push(s, ids)?;
            unknown[s] += ids.iter().filter(|&&id| id == UNK_ID).count();
            next[s] += 1;
        }
        Ok(())
    })?;
    check_rows(path, kept, member.len())?;
    plan.unknown = unknown;
    plan.stats.encode = start.elapsed();
    Ok(())
}

/// A raw token's id in `memo` for a stop word (or a token with no base form).
const SKIP: u32 = u32::MAX;

/// One row's ids (at most `max_len`, never empty); `memo` maps each raw token met
/// so far to its id (or `SKIP`), so a token is stemmed and looked up once.
fn encode_row(
    pre: &Preprocessor,
    encoder: &Encoder,
    memo: &mut FastMap<String, u32>,
    text: &str,
    max_len: usize,
) -> Vec<u32> {
    let mut ids = Vec::new();
    pre.each_raw_token(text, |raw| {
        let id = match memo.get(raw) {
            Some(&id) => id,
            None => {
                let id = pre.base_form(raw).map_or(SKIP, |b| encoder.id(&b));
                memo.insert(raw.to_string(), id);
                id
            }
        };
        if id != SKIP {
            ids.push(id);
        }
        ids.len() < max_len
    });
    if ids.is_empty() {
        ids.push(super::UNK_ID);
    }
    ids
}

/// A raw token's count in training rows, and whether it is a stop word.
#[derive(Clone, Copy)]
struct RawCount {
    count: u64,
    stop: bool,
}

/// The split of kept row `row` (as pass 1 saw the file).
fn split_of(member: &[u8], row: usize) -> anyhow::Result<usize> {
    let s = member
        .get(row)
        .context("more rows than in the first pass")?;
    Ok(*s as usize)
}

fn check_rows(path: &Path, now: usize, before: usize) -> anyhow::Result<()> {
    if now != before {
        bail!(
            "{} changed while it was being read ({now} rows kept now, {before} before); run again",
            path.display()
        );
    }
    Ok(())
}

/// Stream the kept texts of the file in chunks to `f(first_row, texts)`: a separate
/// thread reads (and gunzips) the next chunks while `f` works. Returns the rows read.
fn chunks(
    path: &Path,
    data: &DataSection,
    kept: &[bool],
    mut f: impl FnMut(usize, Vec<String>) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<anyhow::Result<Vec<String>>>(2);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut chunk = Vec::new();
            let mut bytes = 0;
            let mut receiver_gone = false;
            let read = load::texts(path, data, kept, |text| {
                bytes += text.len();
                chunk.push(text);
                if chunk.len() >= CHUNK_ROWS || bytes >= CHUNK_BYTES {
                    bytes = 0;
                    receiver_gone = tx.send(Ok(std::mem::take(&mut chunk))).is_err();
                }
                !receiver_gone
            });
            let last = match read {
                Ok(_) => Ok(chunk),
                Err(e) => Err(e),
            };
            let _ = tx.send(last);
        });
        let mut first = 0;
        for chunk in rx {
            let chunk = chunk?;
            let n = chunk.len();
            if n > 0 {
                f(first, chunk)?;
            }
            first += n;
        }
        Ok(first)
    })
}
