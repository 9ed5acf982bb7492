//! Sweep progress: bars on a terminal (trials with ETA, batches with running loss
//! and samples/s), plain log lines otherwise (files, CI, cron). Lines go through
//! the logger, which clears the bars while it prints one.

use crate::runner::RunEvent;
use crate::train::Progress as TrainProgress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bars: Option<Bars>,
    trial: String,
    trials_total: usize,
    trials_seen: usize,
}

struct Bars {
    /// Owns the drawing of both bars; the logger holds a clone to print above them.
    _multi: MultiProgress,
    sweep: ProgressBar,
    epoch: ProgressBar,
}

impl Progress {
    pub fn new() -> Self {
        let draw = std::io::stderr().is_terminal() && !super::log::quiet();
        let bars = draw.then(|| {
            let multi = MultiProgress::new();
            let sweep = multi.add(ProgressBar::new(0));
            sweep.set_style(
                ProgressStyle::with_template(
                    "trials {bar:30} {pos}/{len} [{elapsed_precise}, eta {eta}] {msg}",
                )
                .expect("valid template"),
            );
            let epoch = multi.add(ProgressBar::new(0));
            epoch.set_style(
                ProgressStyle::with_template("  {prefix} {bar:30} {pos}/{len} batches {msg}")
                    .expect("valid template"),
            );
            super::log::set_bars(Some(multi.clone()));
            Bars {
                _multi: multi,
                sweep,
                epoch,
            }
        });
        Self {
            bars,
            trial: String::new(),
            trials_total: 0,
            trials_seen: 0,
        }
    }

    pub fn on_event(&mut self, event: RunEvent) {
        match event {
            RunEvent::Planned { total, done } => {
                self.trials_total = total;
                self.trials_seen = done;
                match &self.bars {
                    Some(b) => {
                        b.sweep.set_length(total as u64);
                        b.sweep.set_position(done as u64);
                    }
                    None => tracing::info!("{total} trials, {done} already done"),
                }
            }
            RunEvent::TrialStart { trial_id, label } => {
                self.trials_seen += 1;
                // A worker's queue can grow past what it saw at the start.
                self.trials_total = self.trials_total.max(self.trials_seen);
                if let Some(b) = &self.bars {
                    b.sweep.set_length(self.trials_total as u64);
                }
                self.trial = format!(
                    "trial {trial_id} ({}/{}) {label}",
                    self.trials_seen, self.trials_total
                );
                match &self.bars {
                    Some(b) => b.sweep.set_message(label.to_string()),
                    None => tracing::info!("{} started", self.trial),
                }
            }
            RunEvent::Train(p) => self.on_train(p),
            RunEvent::TrialDone {
                test_accuracy,
                seconds,
                ..
            } => {
                let line = format!(
                    "{} done in {seconds:.1} s: test accuracy {test_accuracy:.4}",
                    self.trial
                );
                if let Some(b) = &self.bars {
                    b.sweep.inc(1);
                }
                tracing::info!("{line}");
            }
            RunEvent::CheckpointDiscarded {
                trial_id,
                path,
                reason,
            } => tracing::warn!(
                "trial {trial_id}: discarded the checkpoint {}: {reason}; the trial restarts from epoch 1",
                path.display()
            ),
            RunEvent::TrialInterrupted { .. } => {
                if let Some(b) = &self.bars {
                    b.epoch.finish_and_clear();
                }
                tracing::warn!(
                    "{} interrupted: back to pending with its finished epochs and checkpoint",
                    self.trial
                );
            }
            RunEvent::TrialPruned { reason, .. } => {
                let line = format!("{} {reason}", self.trial);
                if let Some(b) = &self.bars {
                    b.epoch.finish_and_clear();
                    b.sweep.inc(1);
                }
                tracing::info!("{line}");
            }
            RunEvent::TrialFailed { error, .. } => {
                let line = format!("{} FAILED: {error}", self.trial);
                if let Some(b) = &self.bars {
                    b.sweep.inc(1);
                }
                tracing::info!("{line}");
            }
        }
    }

    fn on_train(&self, p: &TrainProgress) {
        match (p, &self.bars) {
            (
                TrainProgress::EpochStart {
                    epoch,
                    epochs,
                    batches,
                },
                Some(b),
            ) => {
                b.epoch.reset();
                b.epoch.set_length(*batches as u64);
                b.epoch.set_prefix(format!("epoch {epoch}/{epochs}"));
            }
            (
                TrainProgress::Batch {
                    done,
                    loss,
                    samples_per_second,
                },
                Some(b),
            ) => {
                b.epoch.set_position(*done as u64);
                b.epoch
                    .set_message(format!("loss {loss:.4}, {samples_per_second:.0} samples/s"));
            }
            (TrainProgress::EpochEnd(e), _) => {
                let line = format!(
                    "  epoch {:>3}: train loss {:.4}, valid loss {:.4}, valid acc {:.4}, valid macro F1 {:.4} ({:.1} s, {:.0} samples/s)",
                    e.epoch, e.train_loss, e.valid_loss, e.valid_accuracy, e.valid_macro_f1, e.seconds, e.samples_per_second
                );
                tracing::info!("{line}");
            }
            _ => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.epoch.finish_and_clear();
            b.sweep.finish();
            super::log::set_bars(None);
        }
    }
}
