//! Reads for a live view (`lab ui`): what changed since the last look, when an
//! experiment last moved, its best single trial, and which metrics it records.
//! Each is one short query, cheap on a store of 10,000 trials.

use super::{Result, Store};
use rusqlite::OptionalExtension;

impl Store {
    /// A token that changes when the experiment's trials change status or a
    /// running trial records an epoch (heartbeats alone leave it unchanged):
    /// compare it with the last one seen before re-reading the experiment.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn experiment_stamp(&self, experiment_id: i64) -> Result<String> {
        let trials: (i64, i64, i64, Option<String>, Option<String>) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(status = 'running'), 0),
                    COALESCE(SUM(status IN ('done', 'failed', 'pruned')), 0),
                    MAX(started_at), MAX(finished_at)
             FROM trials WHERE experiment_id = ?1",
            [experiment_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let epochs: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM epochs WHERE trial_id IN
                 (SELECT id FROM trials WHERE experiment_id = ?1 AND status = 'running')",
            [experiment_id],
            |r| r.get(0),
        )?;
        Ok(format!(
            "{}.{}.{}.{}.{}.{epochs}",
            trials.0,
            trials.1,
            trials.2,
            trials.3.unwrap_or_default(),
            trials.4.unwrap_or_default()
        ))
    }

    /// When anything last happened to the experiment: the latest trial start,
    /// finish or heartbeat, else its creation (RFC 3339 UTC).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn last_activity(&self, experiment_id: i64) -> Result<String> {
        Ok(self.conn.query_row(
            "SELECT MAX(COALESCE((SELECT MAX(MAX(COALESCE(started_at, '')),
                                            MAX(COALESCE(finished_at, '')),
                                            MAX(COALESCE(heartbeat_at, '')))
                                  FROM trials WHERE experiment_id = ?1), ''),
                        created_at)
             FROM experiments WHERE id = ?1",
            [experiment_id],
            |r| r.get(0),
        )?)
    }

    /// The done trial with the best value of `split`.`name` (the highest, or the
    /// lowest when `lower_is_better`), lowest id on ties: `(trial id, value)`;
    /// `None` before any done trial recorded it.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn best_trial_value(
        &self,
        experiment_id: i64,
        split: &str,
        name: &str,
        lower_is_better: bool,
    ) -> Result<Option<(i64, f64)>> {
        let order = if lower_is_better { "ASC" } else { "DESC" };
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT m.trial_id, m.value FROM metrics m JOIN trials t ON t.id = m.trial_id
                     WHERE t.experiment_id = ?1 AND t.status = 'done' AND m.split = ?2
                       AND m.name = ?3 AND typeof(m.value) = 'real'
                     ORDER BY m.value {order}, m.trial_id LIMIT 1"
                ),
                rusqlite::params![experiment_id, split, name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The `(split, name)` metrics the experiment's first done trial recorded
    /// (every done trial records the same ones), sorted; empty before one is done.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn metric_names(&self, experiment_id: i64) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT split, name FROM metrics WHERE trial_id =
                 (SELECT MIN(id) FROM trials WHERE experiment_id = ?1 AND status = 'done')
             ORDER BY split, name",
        )?;
        let rows = stmt.query_map([experiment_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Store {
    /// The first trial's recorded config (JSON), for the keys a page offers to
    /// group by; `None` for an experiment without trials.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn first_config(&self, experiment_id: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT config_json FROM trials WHERE experiment_id = ?1 ORDER BY id LIMIT 1",
                [experiment_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// `split`.`name` of every done trial of the experiment that recorded it as
    /// a finite number: `(trial id, value)` by trial id. One metric, where
    /// `experiment_metrics` reads them all.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn metric_values(
        &self,
        experiment_id: i64,
        split: &str,
        name: &str,
    ) -> Result<Vec<(i64, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT m.trial_id, m.value FROM metrics m JOIN trials t ON t.id = m.trial_id
             WHERE t.experiment_id = ?1 AND t.status = 'done' AND m.split = ?2 AND m.name = ?3
               AND typeof(m.value) IN ('real', 'integer')
             ORDER BY m.trial_id",
        )?;
        let rows = stmt.query_map(rusqlite::params![experiment_id, split, name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows
            .collect::<rusqlite::Result<Vec<(i64, f64)>>>()?
            .into_iter()
            .filter(|(_, v)| v.is_finite())
            .collect())
    }
}
