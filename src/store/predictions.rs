//! Per-example predictions: one compact blob per (trial, split), what every
//! statement of evidence (intervals, paired tests, `lab diff`, the most
//! confidently wrong texts) reads.
//!
//! Blob layout (little endian): magic `LABP`, u32 format version (1), u32 rows
//! `n`, u32 classes `k`, then `n` u32 record indices, `n` u64 row hashes, `n`
//! u16 true classes, `n` u16 predicted classes and `n × k` f16 probabilities
//! (row-major). f16 keeps three significant digits, plenty to rank confidences,
//! at half the size of f32.

use super::{Result, Store};
use anyhow::{bail, ensure, Context};
use half::f16;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::HashMap;

const MAGIC: &[u8; 4] = b"LABP";
const VERSION: u32 = 1;
const HEADER: usize = 16;

/// One trial's predictions on one split; every vector has one entry per row
/// (`n` rows) in the split's order, which is the data file's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Number of classes `k`; classes are the trial's class indices.
    pub classes: usize,
    /// (n) each row's record index in the data file (0 = first data record).
    pub rows: Vec<u32>,
    /// (n) `data::row_hash` of each row's text as read.
    pub hashes: Vec<u64>,
    /// (n) true class.
    pub truth: Vec<u16>,
    /// (n) predicted class: the first arg-max of the row's probabilities.
    pub predicted: Vec<u16>,
    /// (n, k) class probabilities, row-major.
    pub probs: Vec<f32>,
}

impl Predictions {
    /// Rows `n`.
    pub fn len(&self) -> usize {
        self.truth.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.truth.is_empty()
    }

    /// The probabilities of row `i`, (k).
    pub fn probs_of(&self, i: usize) -> &[f32] {
        &self.probs[i * self.classes..(i + 1) * self.classes]
    }

    /// The blob stored for these predictions.
    ///
    /// # Errors
    /// The vectors' lengths disagree, or there are more than 65,536 classes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let (n, k) = (self.len(), self.classes);
        self.check()?;
        let mut out = Vec::with_capacity(HEADER + n * (4 + 8 + 2 + 2 + 2 * k));
        out.extend_from_slice(MAGIC);
        for v in [VERSION, n as u32, k as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        self.rows.iter().for_each(|v| out.extend(v.to_le_bytes()));
        self.hashes.iter().for_each(|v| out.extend(v.to_le_bytes()));
        self.truth.iter().for_each(|v| out.extend(v.to_le_bytes()));
        self.predicted
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes()));
        for &p in &self.probs {
            out.extend(f16::from_f32(p).to_le_bytes());
        }
        Ok(out)
    }

    /// Read a blob written by [`Predictions::encode`].
    ///
    /// # Errors
    /// Not a predictions blob, another format version, a length that does not
    /// match its header, or a class out of range.
    pub fn decode(blob: &[u8]) -> Result<Predictions> {
        ensure!(
            blob.len() >= HEADER && &blob[..4] == MAGIC,
            "not a predictions blob"
        );
        let word = |at: usize| u32::from_le_bytes(blob[at..at + 4].try_into().unwrap_or_default());
        let (version, n, k) = (word(4), word(8) as usize, word(12) as usize);
        ensure!(
            version == VERSION,
            "predictions format {version}: this lab reads {VERSION}"
        );
        let want = n
            .checked_mul(4 + 8 + 2 + 2)
            .and_then(|b| n.checked_mul(k)?.checked_mul(2)?.checked_add(b))
            .and_then(|b| b.checked_add(HEADER));
        ensure!(
            want == Some(blob.len()),
            "predictions blob of {} bytes, its header says {n} rows of {k} classes",
            blob.len()
        );
        let mut at = HEADER;
        let mut take = |size: usize| {
            let part = &blob[at..at + n * size];
            at += n * size;
            part
        };
        let rows = take(4)
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        let hashes = take(8)
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        let truth = take(2)
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let predicted = take(2)
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let probs = blob[at..]
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect();
        let p = Predictions {
            classes: k,
            rows,
            hashes,
            truth,
            predicted,
            probs,
        };
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<()> {
        let (n, k) = (self.len(), self.classes);
        ensure!(k <= 1 << 16, "{k} classes: at most 65,536 are stored");
        ensure!(
            self.rows.len() == n
                && self.hashes.len() == n
                && self.predicted.len() == n
                && Some(self.probs.len()) == n.checked_mul(k),
            "predictions of {n} rows have {} record indices, {} hashes, {} predicted classes \
             and {} probabilities for {k} classes",
            self.rows.len(),
            self.hashes.len(),
            self.predicted.len(),
            self.probs.len()
        );
        let out_of_range = |v: &u16| *v as usize >= k;
        if self.truth.iter().any(out_of_range) || self.predicted.iter().any(out_of_range) {
            bail!("a class index is not below the {k} classes");
        }
        Ok(())
    }
}

/// Replace the predictions of (trial, split).
pub(crate) fn insert(
    tx: &Transaction,
    trial_id: i64,
    split: &str,
    predictions: &Predictions,
) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO predictions (trial_id, split, rows, classes, blob)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            trial_id,
            split,
            predictions.len() as i64,
            predictions.classes as i64,
            predictions.encode()?
        ],
    )
    .with_context(|| format!("cannot record the {split} predictions of trial {trial_id}"))?;
    Ok(())
}

impl Store {
    /// Whether the database has a table or a `trials` column of this schema
    /// version: a shard opened read-only may be older than this build.
    pub(crate) fn has_version(&self, version: i64) -> Result<bool> {
        let have: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok(have >= version)
    }

    /// The predictions recorded for a trial's split (`valid` or `test`); `None`
    /// when none were (a trial recorded by an older lab, or not done).
    ///
    /// # Errors
    /// The database cannot be read, or the blob is damaged (named).
    pub fn predictions(&self, trial_id: i64, split: &str) -> Result<Option<Predictions>> {
        if !self.has_version(6)? {
            return Ok(None);
        }
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT blob FROM predictions WHERE trial_id = ?1 AND split = ?2",
                params![trial_id, split],
                |r| r.get(0),
            )
            .optional()?;
        blob.map(|b| {
            Predictions::decode(&b).with_context(|| {
                format!(
                    "{}: the {split} predictions of trial {trial_id} are damaged",
                    self.path.display()
                )
            })
        })
        .transpose()
    }

    /// The splits a trial has predictions for, in name order.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn prediction_splits(&self, trial_id: i64) -> Result<Vec<String>> {
        if !self.has_version(6)? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT split FROM predictions WHERE trial_id = ?1 ORDER BY split")?;
        let rows = stmt.query_map([trial_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The fingerprint of the test split each trial was scored on (see
    /// `stats::fingerprint`), `None` for trials recorded without one.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn test_split(&self, trial_id: i64) -> Result<Option<String>> {
        if !self.has_version(6)? {
            return Ok(None);
        }
        let found: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT test_split FROM trials WHERE id = ?1",
                [trial_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(found.flatten())
    }

    /// The test-split fingerprint of every trial of an experiment that has one,
    /// by trial id.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn test_splits(&self, experiment_id: i64) -> Result<HashMap<i64, String>> {
        if !self.has_version(6)? {
            return Ok(HashMap::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT id, test_split FROM trials WHERE experiment_id = ?1 AND test_split IS NOT NULL",
        )?;
        let rows = stmt.query_map([experiment_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Predictions {
        Predictions {
            classes: 3,
            rows: vec![4, 9],
            hashes: vec![1 << 60, 7],
            truth: vec![0, 2],
            predicted: vec![1, 2],
            probs: vec![0.25, 0.5, 0.25, 0.0, 0.125, 0.875],
        }
    }

    #[test]
    fn a_blob_round_trips_and_damage_is_refused() {
        let p = sample();
        let blob = p.encode().unwrap();
        assert_eq!(blob.len(), 16 + 2 * 16 + 2 * 3 * 2);
        assert_eq!(Predictions::decode(&blob).unwrap(), p);
        assert!(Predictions::decode(&blob[..blob.len() - 1]).is_err());
        let mut bad = blob.clone();
        bad[16 + 2 * 12 + 2] = 7; // second row's true class: 7 of 3
        assert!(Predictions::decode(&bad).is_err());
        let mut short = p.clone();
        short.predicted.pop();
        assert!(short.encode().is_err());
    }
}
