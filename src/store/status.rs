//! Trial status and its text form as stored in the `trials.status` column.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Where a trial is in its life: pending → running → done | failed | pruned.
/// Done, failed and pruned are final: no claim takes them; only failed trials
/// are ever put back to pending (`--retry-failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrialStatus {
    /// Waiting to be claimed.
    Pending,
    /// Claimed by a worker, which renews its lease while it trains.
    Running,
    /// Finished; its results are recorded.
    Done,
    /// Stopped by an error, recorded in `TrialRow::error`.
    Failed,
    /// Stopped early by a search's pruner; keeps its epochs, has no metrics,
    /// and says why in `TrialRow::pruned_reason`. Never ranked as a result.
    Pruned,
}

impl TrialStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [TrialStatus; 5] = [
        TrialStatus::Pending,
        TrialStatus::Running,
        TrialStatus::Done,
        TrialStatus::Failed,
        TrialStatus::Pruned,
    ];

    /// The text stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialStatus::Pending => "pending",
            TrialStatus::Running => "running",
            TrialStatus::Done => "done",
            TrialStatus::Failed => "failed",
            TrialStatus::Pruned => "pruned",
        }
    }
}

impl fmt::Display for TrialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TrialStatus {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrialStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown trial status `{s}`; expected pending|running|done|failed|pruned"
                )
            })
    }
}

/// How many trials of an experiment are in each status, and at which epoch
/// the pruned ones were stopped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusCounts {
    /// Trials waiting to be claimed.
    pub pending: usize,
    /// Trials being trained.
    pub running: usize,
    /// Finished trials.
    pub done: usize,
    /// Failed trials.
    pub failed: usize,
    /// Trials stopped early by a pruner.
    pub pruned: usize,
    /// Pruned trials by the epoch they were stopped at (their last recorded
    /// epoch; 0 for one stopped before its first): epoch → trials. Its values
    /// sum to `pruned`.
    pub pruned_at: BTreeMap<usize, usize>,
}

impl StatusCounts {
    /// All trials of the experiment.
    pub fn total(&self) -> usize {
        self.pending + self.running + self.done + self.failed + self.pruned
    }

    /// The count for one status.
    pub fn get(&self, status: TrialStatus) -> usize {
        match status {
            TrialStatus::Pending => self.pending,
            TrialStatus::Running => self.running,
            TrialStatus::Done => self.done,
            TrialStatus::Failed => self.failed,
            TrialStatus::Pruned => self.pruned,
        }
    }

    pub(crate) fn add(&mut self, status: TrialStatus, n: usize) {
        match status {
            TrialStatus::Pending => self.pending += n,
            TrialStatus::Running => self.running += n,
            TrialStatus::Done => self.done += n,
            TrialStatus::Failed => self.failed += n,
            TrialStatus::Pruned => self.pruned += n,
        }
    }

    /// "3 trials pruned (epoch 1: 2, epoch 3: 1)", or `None` when none was.
    pub fn pruned_line(&self) -> Option<String> {
        if self.pruned == 0 {
            return None;
        }
        let by_epoch: Vec<String> = self
            .pruned_at
            .iter()
            .map(|(epoch, n)| format!("epoch {epoch}: {n}"))
            .collect();
        let noun = if self.pruned == 1 { "trial" } else { "trials" };
        Some(format!(
            "{} {noun} pruned ({})",
            self.pruned,
            by_epoch.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for status in TrialStatus::ALL {
            assert_eq!(status.to_string().parse::<TrialStatus>().unwrap(), status);
        }
        assert_eq!(
            "failed".parse::<TrialStatus>().unwrap(),
            TrialStatus::Failed
        );
        assert_eq!(
            "pruned".parse::<TrialStatus>().unwrap(),
            TrialStatus::Pruned
        );
        let err = "Done".parse::<TrialStatus>().unwrap_err().to_string();
        assert!(err.contains("pending|running|done|failed|pruned"), "{err}");
    }

    #[test]
    fn pruned_line_counts_by_epoch() {
        let mut c = StatusCounts::default();
        assert_eq!(c.pruned_line(), None);
        c.add(TrialStatus::Pruned, 3);
        c.add(TrialStatus::Done, 2);
        c.pruned_at = BTreeMap::from([(3, 1), (1, 2)]);
        assert_eq!(c.total(), 5);
        assert_eq!(c.get(TrialStatus::Pruned), 3);
        assert_eq!(
            c.pruned_line().unwrap(),
            "3 trials pruned (epoch 1: 2, epoch 3: 1)"
        );
    }
}
