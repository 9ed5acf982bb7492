//! Trial status and its text form as stored in the `trials.status` column.

use std::fmt;
use std::str::FromStr;

/// Where a trial is in its life: pending → running → done | failed.
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
}

impl TrialStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [TrialStatus; 4] = [
        TrialStatus::Pending,
        TrialStatus::Running,
        TrialStatus::Done,
        TrialStatus::Failed,
    ];

    /// The text stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialStatus::Pending => "pending",
            TrialStatus::Running => "running",
            TrialStatus::Done => "done",
            TrialStatus::Failed => "failed",
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
                anyhow::anyhow!("unknown trial status `{s}`; expected pending|running|done|failed")
            })
    }
}

/// How many trials of an experiment are in each status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusCounts {
    /// Trials waiting to be claimed.
    pub pending: usize,
    /// Trials being trained.
    pub running: usize,
    /// Finished trials.
    pub done: usize,
    /// Failed trials.
    pub failed: usize,
}

impl StatusCounts {
    /// All trials of the experiment.
    pub fn total(&self) -> usize {
        self.pending + self.running + self.done + self.failed
    }

    /// The count for one status.
    pub fn get(&self, status: TrialStatus) -> usize {
        match status {
            TrialStatus::Pending => self.pending,
            TrialStatus::Running => self.running,
            TrialStatus::Done => self.done,
            TrialStatus::Failed => self.failed,
        }
    }

    pub(crate) fn add(&mut self, status: TrialStatus, n: usize) {
        match status {
            TrialStatus::Pending => self.pending += n,
            TrialStatus::Running => self.running += n,
            TrialStatus::Done => self.done += n,
            TrialStatus::Failed => self.failed += n,
        }
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
        let err = "Done".parse::<TrialStatus>().unwrap_err().to_string();
        assert!(err.contains("pending|running|done|failed"), "{err}");
    }
}
