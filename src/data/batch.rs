//! Cutting a split into padded batches, optionally bucketed by length.

use super::{Split, PAD_ID};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::ops::Range;

/// A padded batch: `ids` is row-major (batch, time), padded with PAD_ID to the
/// longest sequence of this batch only.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Token ids, (batch, time) row-major.
    pub ids: Vec<u32>,
    /// True length of each row (at least 1), (batch).
    pub lengths: Vec<usize>,
    /// Class index of each row, (batch).
    pub labels: Vec<u32>,
    /// For each batch row, its index in the split (to put predictions back in order).
    pub rows: Vec<usize>,
    /// Rows in this batch.
    pub batch: usize,
    /// Steps per row: the longest true length of this batch.
    pub time: usize,
}

/// Rows of similar length are sorted together within windows of this many batches,
/// so batches stay short of padding but still differ from epoch to epoch.
const BUCKET_WINDOW: usize = 50;

/// Cut `order` (indices into `split`) into batches of `batch_size` (the last may be
/// smaller; a size of 0 counts as 1).
///
/// With `shuffle_seed` the order is shuffled first. With `bucket` and a seed, windows of
/// 50 batches are sorted by length, cut into batches and the batches are shuffled; with
/// `bucket` and no seed (evaluation) the whole order is sorted by length.
/// Indices outside the split are skipped.
///
/// Only the plan (row indices) is made here: each batch is built from the split's rows
/// (a memory-mapped file for a cached dataset) when the iterator reaches it.
pub fn batches<'a>(
    split: &'a Split,
    order: &[usize],
    batch_size: usize,
    bucket: bool,
    shuffle_seed: Option<u64>,
) -> Batches<'a> {
    let bs = batch_size.max(1);
    let mut order: Vec<usize> = order.iter().copied().filter(|&i| i < split.len()).collect();
    let mut rng = shuffle_seed.map(ChaCha8Rng::seed_from_u64);
    if let Some(rng) = rng.as_mut() {
        order.shuffle(rng);
    }
    let len = |i: &usize| split.row_len(*i);
    let chunks = |n: usize| (0..n.div_ceil(bs)).map(move |k| k * bs..((k + 1) * bs).min(n));
    let mut groups: Vec<Range<usize>> = Vec::new();
    match (bucket, rng.as_mut()) {
        (false, _) => groups.extend(chunks(order.len())),
        (true, None) => {
            order.sort_by_key(len);
            groups.extend(chunks(order.len()));
        }
        (true, Some(rng)) => {
            for window in order.chunks_mut(bs * BUCKET_WINDOW) {
                window.sort_by_key(len);
            }
            // Windows are whole multiples of `bs`, so only the very last batch is short.
            groups.extend(chunks(order.len()));
            groups.shuffle(rng);
        }
    }
    Batches {
        split,
        order,
        groups: groups.into_iter(),
    }
}

/// The batches of an epoch, each built when reached (see [`batches`]).
pub struct Batches<'a> {
    split: &'a Split,
    order: Vec<usize>,
    groups: std::vec::IntoIter<Range<usize>>,
}

impl Iterator for Batches<'_> {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        let range = self.groups.next()?;
        Some(make_batch(self.split, &self.order[range]))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.groups.size_hint()
    }
}

impl ExactSizeIterator for Batches<'_> {}

fn make_batch(split: &Split, rows: &[usize]) -> Batch {
    let lengths: Vec<usize> = rows.iter().map(|&i| split.row_len(i)).collect();
    let time = lengths.iter().copied().max().unwrap_or(0);
    let mut ids = vec![PAD_ID; rows.len() * time];
    for (r, &i) in rows.iter().enumerate() {
        split.copy_row(i, &mut ids[r * time..r * time + lengths[r]]);
    }
    Batch {
        ids,
        lengths,
        labels: rows.iter().map(|&i| split.labels[i]).collect(),
        rows: rows.to_vec(),
        batch: rows.len(),
        time,
    }
}
