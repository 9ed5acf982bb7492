//! What a search reads and writes: the trials a sampler learns from, a
//! proposal recorded and claimed in one transaction, and the per-epoch curves
//! a pruner judges.

use super::rows::{NewTrial, TrialRow, TRIAL_COLUMNS};
use super::{now, Store, TrialStatus};
use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::HashSet;

/// A trial of a search as its sampler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchTrial {
    /// The trial's id.
    pub id: i64,
    /// Its resolved config (JSON).
    pub config_json: String,
    /// Its identity in the experiment.
    pub config_hash: String,
    /// Where it is in its life.
    pub status: TrialStatus,
    /// The proposal it belongs to; `None` for a trial outside the search.
    pub search_number: Option<i64>,
    /// The objective: the final validation metric of a done trial, the last
    /// epoch's of a pruned one; `None` otherwise.
    pub objective: Option<f64>,
}

/// What `Store::propose_and_claim` calls: the next proposal number and the
/// search's trials so far in, the proposal's trials out.
pub type Proposer<'a> = dyn FnMut(usize, &[SearchTrial]) -> Result<Vec<NewTrial>> + 'a;

/// A trial's objective per epoch, as a pruner reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochCurve {
    /// The trial's id.
    pub trial_id: i64,
    /// Its status now.
    pub status: TrialStatus,
    /// The objective at epochs 1, 2, ... as recorded so far.
    pub values: Vec<f64>,
}

/// The `epochs` column holding a validation metric (`valid.macro_f1` ->
/// `valid_macro_f1`), and the metric's name in `metrics` (`macro_f1`).
fn columns(metric: &str) -> Result<(&'static str, &'static str)> {
    match metric {
        "valid.loss" => Ok(("valid_loss", "loss")),
        "valid.accuracy" => Ok(("valid_accuracy", "accuracy")),
        "valid.macro_f1" => Ok(("valid_macro_f1", "macro_f1")),
        other => anyhow::bail!(
            "{other} is not recorded every epoch; a search optimises valid.loss, valid.accuracy or valid.macro_f1"
        ),
    }
}

impl Store {
    /// Claim the oldest pending trial of the experiment's search (one with a
    /// proposal number): a trial put back after a crash or a stop, or another
    /// seed of a proposal. `None` when there is none.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn claim_search_pending(
        &self,
        experiment_id: i64,
        worker: &str,
        device: &str,
    ) -> Result<Option<TrialRow>> {
        let tx = self.write()?;
        let claimed = claim(&tx, experiment_id, None, worker, device)?;
        tx.commit()?;
        Ok(claimed)
    }

    /// In one write transaction: the next proposal number (one past the
    /// largest recorded), the search's trials with their objectives on
    /// `metric` (a `valid.*` metric), `propose(number, trials)`'s trials
    /// inserted as pending with that number, and the first new one claimed.
    /// `None`, with nothing written, when `number >= budget` or `propose`
    /// returns no trial that is not recorded already. Concurrent proposers
    /// queue on the write lock, so no two get the same number.
    ///
    /// # Errors
    /// `metric` is not recorded per epoch, `propose` fails, or the database
    /// cannot be read or written.
    pub fn propose_and_claim(
        &self,
        experiment_id: i64,
        metric: &str,
        budget: usize,
        claim_as: (&str, &str),
        propose: &mut Proposer,
    ) -> Result<Option<TrialRow>> {
        let tx = self.write()?;
        let number: i64 = tx.query_row(
            "SELECT COALESCE(MAX(search_number) + 1, 0) FROM trials WHERE experiment_id = ?1",
            [experiment_id],
            |r| r.get(0),
        )?;
        if number as usize >= budget {
            return Ok(None);
        }
        let trials = search_trials(&tx, experiment_id, metric)?;
        let known: HashSet<&str> = trials.iter().map(|t| t.config_hash.as_str()).collect();
        let new: Vec<NewTrial> = propose(number as usize, &trials)?
            .into_iter()
            .filter(|t| !known.contains(t.config_hash.as_str()))
            .collect();
        if new.is_empty() {
            return Ok(None);
        }
        for t in &new {
            tx.execute(
                "INSERT INTO trials (experiment_id, config_json, config_hash, seed, status, search_number)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
                params![experiment_id, t.config_json, t.config_hash, t.seed as i64, number],
            )
            .with_context(|| format!("cannot record proposal {number}"))?;
        }
        let (worker, device) = claim_as;
        let claimed = claim(&tx, experiment_id, Some(number), worker, device)?;
        tx.commit()?;
        Ok(claimed)
    }

    /// The trials of a search with their objectives on `metric`, by id.
    ///
    /// # Errors
    /// As [`Store::propose_and_claim`].
    pub fn search_trials(&self, experiment_id: i64, metric: &str) -> Result<Vec<SearchTrial>> {
        let tx = self.conn.unchecked_transaction()?;
        search_trials(&tx, experiment_id, metric)
    }

    /// Every trial's `metric` (a `valid.*` metric) per epoch, for the pruner.
    ///
    /// # Errors
    /// `metric` is not recorded per epoch; the database cannot be read.
    pub fn epoch_curves(&self, experiment_id: i64, metric: &str) -> Result<Vec<EpochCurve>> {
        let (column, _) = columns(metric)?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT t.id, t.status, e.{column} AS value FROM trials t
             JOIN epochs e ON e.trial_id = t.id
             WHERE t.experiment_id = ?1 ORDER BY t.id, e.epoch"
        ))?;
        let mut curves: Vec<EpochCurve> = Vec::new();
        let mut rows = stmt.query([experiment_id])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let value: f64 = row.get(2)?;
            match curves.last_mut() {
                Some(c) if c.trial_id == id => c.values.push(value),
                _ => curves.push(EpochCurve {
                    trial_id: id,
                    status: row.get::<_, String>(1)?.parse()?,
                    values: vec![value],
                }),
            }
        }
        Ok(curves)
    }
}

fn search_trials(tx: &Transaction, experiment_id: i64, metric: &str) -> Result<Vec<SearchTrial>> {
    let (column, name) = columns(metric)?;
    let mut stmt = tx.prepare(&format!(
        "SELECT t.id, t.config_json, t.config_hash, t.status, t.search_number,
           CASE t.status
             WHEN 'done' THEN (SELECT value FROM metrics m
                               WHERE m.trial_id = t.id AND m.split = 'valid' AND m.name = ?2)
             WHEN 'pruned' THEN (SELECT {column} FROM epochs e
                                 WHERE e.trial_id = t.id ORDER BY e.epoch DESC LIMIT 1)
           END AS objective
         FROM trials t WHERE t.experiment_id = ?1 ORDER BY t.id"
    ))?;
    let rows = stmt.query_map(params![experiment_id, name], |r| {
        Ok((
            SearchTrial {
                id: r.get(0)?,
                config_json: r.get(1)?,
                config_hash: r.get(2)?,
                status: TrialStatus::Pending,
                search_number: r.get(4)?,
                objective: r.get(5)?,
            },
            r.get::<_, String>(3)?,
        ))
    })?;
    rows.map(|row| {
        let (mut trial, status) = row?;
        trial.status = status.parse()?;
        Ok(trial)
    })
    .collect()
}

/// Claim the oldest pending trial of the experiment's search (of proposal
/// `number` when given), as `claim_trial_id` does.
fn claim(
    tx: &Transaction,
    experiment_id: i64,
    number: Option<i64>,
    worker: &str,
    device: &str,
) -> Result<Option<TrialRow>> {
    let sql = format!(
        "UPDATE trials
         SET status = 'running', worker = ?2, device = ?3, started_at = ?4,
             heartbeat_at = ?4, finished_at = NULL, error = NULL
         WHERE id = (SELECT id FROM trials
                     WHERE experiment_id = ?1 AND status = 'pending'
                       AND search_number IS NOT NULL
                       AND (?5 IS NULL OR search_number = ?5)
                       AND id NOT IN (SELECT trial_id FROM queue WHERE cancelled_at IS NOT NULL)
                     ORDER BY id LIMIT 1)
         RETURNING {TRIAL_COLUMNS}"
    );
    tx.query_row(
        &sql,
        params![experiment_id, worker, device, now(), number],
        TrialRow::from_row,
    )
    .optional()
    .context("cannot claim a trial of the search")
}
