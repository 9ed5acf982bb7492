//! The trial queue behind `lab queue` and `lab worker`: which pending trials
//! workers take (highest priority first, then in the order they were queued),
//! where each trial's relative paths resolve, and cancellation.

use super::rows::{TrialRow, TRIAL_COLUMNS};
use super::{now, Result, Store};
use anyhow::{bail, Context};
use rusqlite::{params, OptionalExtension};
use std::path::PathBuf;

/// A trial to queue: `Store::enqueue`'s input.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    /// The trial's id.
    pub trial_id: i64,
    /// How `lab queue list` and the worker's log name it.
    pub label: String,
}

/// A trial a worker has claimed from the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedTrial {
    /// The trial, now running under the claiming worker.
    pub trial: TrialRow,
    /// Its label in the queue.
    pub label: String,
    /// The directory the spec's relative paths (data, stopword list) resolve against.
    pub base_dir: PathBuf,
    /// Its priority in the queue (higher first).
    pub priority: i64,
}

/// One line of `lab queue list`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// The trial's id.
    pub trial_id: i64,
    /// The name of its experiment.
    pub experiment: String,
    /// Its label in the queue.
    pub label: String,
    /// Its priority (higher first).
    pub priority: i64,
    /// The trial's status; `cancelled` for a cancelled pending trial, `running
    /// (cancelled)` for one cancelled while it runs.
    pub state: String,
    /// `host:pid` of the worker that claimed it.
    pub worker: Option<String>,
    /// The device it runs (or ran) on.
    pub device: Option<String>,
    /// RFC 3339 UTC time it was (last) queued.
    pub enqueued_at: String,
}

/// What `cancel` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cancelled {
    /// Pending trials that no worker will now claim.
    pub cancelled: Vec<i64>,
    /// Running trials, left to finish; if their worker dies they are not run again.
    pub running: Vec<i64>,
    /// Done, failed, pruned or already cancelled: nothing to do.
    pub unchanged: Vec<i64>,
}

impl Store {
    /// Queue trials with a priority; `base_dir` is where their spec's relative
    /// paths resolve. A trial queued before is queued again: its priority and
    /// place are this call's, and a cancellation is lifted. Returns how many of
    /// them are pending (what workers will run).
    ///
    /// # Errors
    /// An unknown trial id, or the database cannot be written.
    pub fn enqueue(&self, trials: &[QueueItem], priority: i64, base_dir: &str) -> Result<usize> {
        let tx = self.write()?;
        let batch: i64 = tx.query_row(
            "SELECT COALESCE(MAX(batch), 0) + 1 AS next FROM queue",
            [],
            |r| r.get("next"),
        )?;
        let at = now();
        let mut pending = 0;
        {
            let mut insert = tx.prepare(
                "INSERT INTO queue (trial_id, priority, batch, label, base_dir, enqueued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(trial_id) DO UPDATE SET
                     priority = excluded.priority, batch = excluded.batch,
                     label = excluded.label, base_dir = excluded.base_dir,
                     enqueued_at = excluded.enqueued_at, cancelled_at = NULL",
            )?;
            let mut status = tx.prepare("SELECT status FROM trials WHERE id = ?1")?;
            for QueueItem {
                trial_id: id,
                label,
            } in trials
            {
                insert
                    .execute(params![id, priority, batch, label, base_dir, at])
                    .with_context(|| format!("cannot queue trial {id}"))?;
                let s: String = status.query_row([id], |r| r.get("status"))?;
                if s == "pending" {
                    pending += 1;
                }
            }
        }
        tx.commit()?;
        Ok(pending)
    }

    /// Atomically take the next queued pending trial that is not cancelled
    /// (highest priority, then earliest queued, then lowest id) and mark it
    /// running. The device recorded is `device`, or the trial's `train.device`.
    pub fn claim_queued(&self, worker: &str, device: Option<&str>) -> Result<Option<QueuedTrial>> {
        let tx = self.write()?;
        let sql = format!(
            "UPDATE trials
             SET status = 'running', worker = ?1,
                 device = COALESCE(?2, json_extract(config_json, '$.train.device'), 'cpu'),
                 started_at = ?3, heartbeat_at = ?3, finished_at = NULL, error = NULL
             WHERE id = (SELECT q.trial_id FROM queue q JOIN trials t ON t.id = q.trial_id
                         WHERE t.status = 'pending' AND q.cancelled_at IS NULL
                         ORDER BY q.priority DESC, q.batch, q.trial_id LIMIT 1)
             RETURNING {TRIAL_COLUMNS}"
        );
        let trial = tx
            .query_row(&sql, params![worker, device, now()], TrialRow::from_row)
            .optional()
            .context("cannot claim a queued trial")?;
        let Some(trial) = trial else {
            tx.commit()?;
            return Ok(None);
        };
        let queued = tx.query_row(
            "SELECT label, base_dir, priority FROM queue WHERE trial_id = ?1",
            [trial.id],
            |r| {
                Ok(QueuedTrial {
                    trial,
                    label: r.get("label")?,
                    base_dir: PathBuf::from(r.get::<_, String>("base_dir")?),
                    priority: r.get("priority")?,
                })
            },
        )?;
        tx.commit()?;
        Ok(Some(queued))
    }

    /// Queued trials that no worker has taken yet (pending, not cancelled).
    pub fn queued_pending(&self) -> Result<usize> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) AS n FROM queue q JOIN trials t ON t.id = q.trial_id
             WHERE t.status = 'pending' AND q.cancelled_at IS NULL",
            [],
            |r| r.get::<_, i64>("n"),
        )? as usize)
    }

    /// Experiments with queued trials that are running: where a worker looks
    /// for abandoned trials to put back.
    pub fn queued_running_experiments(&self) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT t.experiment_id FROM queue q JOIN trials t ON t.id = q.trial_id
             WHERE t.status = 'running' ORDER BY t.experiment_id",
        )?;
        let rows = stmt.query_map([], |r| r.get("experiment_id"))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The queue, in the order workers take it. Without `all`, only trials still
    /// to do (pending, running, cancelled).
    pub fn queue(&self, all: bool) -> Result<Vec<QueueEntry>> {
        let filter = if all {
            ""
        } else {
            "WHERE t.status IN ('pending', 'running')"
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT q.trial_id, e.name AS experiment, q.label, q.priority,
                    CASE WHEN q.cancelled_at IS NULL THEN t.status
                         WHEN t.status = 'pending' THEN 'cancelled'
                         WHEN t.status = 'running' THEN 'running (cancelled)'
                         ELSE t.status END AS state,
                    t.worker, t.device, q.enqueued_at
             FROM queue q JOIN trials t ON t.id = q.trial_id
                          JOIN experiments e ON e.id = t.experiment_id
             {filter}
             ORDER BY q.priority DESC, q.batch, q.trial_id"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok(QueueEntry {
                trial_id: r.get("trial_id")?,
                experiment: r.get("experiment")?,
                label: r.get("label")?,
                priority: r.get("priority")?,
                state: r.get("state")?,
                worker: r.get("worker")?,
                device: r.get("device")?,
                enqueued_at: r.get("enqueued_at")?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The queued trials of an experiment, in queue order.
    pub fn queued_trials_of(&self, experiment_id: i64) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT q.trial_id FROM queue q JOIN trials t ON t.id = q.trial_id
             WHERE t.experiment_id = ?1 ORDER BY q.priority DESC, q.batch, q.trial_id",
        )?;
        let rows = stmt.query_map([experiment_id], |r| r.get("trial_id"))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Cancel queued trials: a pending one is never claimed afterwards (by a
    /// worker or `lab run`); a running one is left to finish, and is not claimed
    /// again should its worker die. A trial that is not in the queue is an
    /// error, and then nothing is cancelled.
    pub fn cancel(&self, ids: &[i64]) -> Result<Cancelled> {
        let tx = self.write()?;
        let mut out = Cancelled::default();
        for &id in ids {
            let state: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT t.status, q.cancelled_at FROM queue q JOIN trials t ON t.id = q.trial_id
                     WHERE q.trial_id = ?1",
                    [id],
                    |r| Ok((r.get("status")?, r.get("cancelled_at")?)),
                )
                .optional()?;
            match state {
                None => bail!(
                    "{}: trial {id} is not in the queue (`lab queue list --all` shows it)",
                    self.path.display()
                ),
                Some((status, None)) if status == "pending" || status == "running" => {
                    tx.execute(
                        "UPDATE queue SET cancelled_at = ?2 WHERE trial_id = ?1",
                        params![id, now()],
                    )?;
                    if status == "pending" {
                        out.cancelled.push(id);
                    } else {
                        out.running.push(id);
                    }
                }
                Some(_) => out.unchanged.push(id),
            }
        }
        tx.commit()?;
        Ok(out)
    }
}
