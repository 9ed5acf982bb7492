//! `lab show TRIAL`: everything the store knows about one trial, and what
//! people said about it (tags, note).

use super::grid::grid;
use super::Format;
use crate::store::{ArtifactRow, ConfusionRow, EpochRecord, MetricRow, Store, Target, TrialRow};
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A titled table.
struct Section {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Everything the store holds about one trial, read once.
struct TrialView {
    trial: TrialRow,
    experiment: String,
    config: Value,
    epochs: Vec<EpochRecord>,
    metrics: Vec<MetricRow>,
    confusion: Vec<ConfusionRow>,
    artifacts: Vec<ArtifactRow>,
    /// The trial's tags and its experiment's, sorted.
    tags: Vec<String>,
    experiment_tags: Vec<String>,
    /// The trial's note.
    note: Option<String>,
}

impl TrialView {
    fn load(store: &Store, trial_id: i64) -> Result<TrialView> {
        let trial = store
            .trial(trial_id)?
            .ok_or_else(|| anyhow!("no trial {trial_id} in {}", store.path().display()))?;
        let experiment = store
            .experiment(trial.experiment_id)?
            .map(|e| e.name)
            .unwrap_or_else(|| format!("#{}", trial.experiment_id));
        let config: Value = serde_json::from_str(&trial.config_json)
            .with_context(|| format!("trial {trial_id}: its stored config is not valid JSON"))?;
        Ok(TrialView {
            experiment,
            config,
            epochs: store.epochs(trial_id)?,
            metrics: store.metrics(trial_id)?,
            confusion: store.confusion(trial_id)?,
            artifacts: store.artifacts(trial_id)?,
            tags: store.tags(Target::Trial(trial_id))?,
            experiment_tags: store.tags(Target::Experiment(trial.experiment_id))?,
            note: store.note(Target::Trial(trial_id))?,
            trial,
        })
    }

    fn to_json(&self) -> Value {
        let t = &self.trial;
        json!({
            "id": t.id,
            "experiment": self.experiment,
            "status": t.status.to_string(),
            "seed": t.seed,
            "device": t.device,
            "worker": t.worker,
            "started_at": t.started_at,
            "finished_at": t.finished_at,
            "error": t.error,
            "pruned_reason": t.pruned_reason,
            "search_number": t.search_number,
            "config_hash": t.config_hash,
            "tags": self.tags,
            "experiment_tags": self.experiment_tags,
            "note": self.note,
            "config": self.config,
            "epochs": self.epochs.iter().map(|e| json!({
                "epoch": e.epoch, "train_loss": e.train_loss, "valid_loss": e.valid_loss,
                "valid_accuracy": e.valid_accuracy, "valid_macro_f1": e.valid_macro_f1,
                "lr": e.lr, "seconds": e.seconds, "samples_per_second": e.samples_per_second,
            })).collect::<Vec<_>>(),
            "metrics": self.metrics.iter()
                .map(|m| json!({"split": m.split, "name": m.name, "value": m.value}))
                .collect::<Vec<_>>(),
            "confusion": self.confusion.iter().map(|c| json!({
                "split": c.split, "labels": c.labels, "matrix": c.matrix,
            })).collect::<Vec<_>>(),
            "artifacts": self.artifacts.iter().map(|a| json!({
                "kind": a.kind, "path": a.path, "sha256": a.sha256,
            })).collect::<Vec<_>>(),
        })
    }

    /// The titled tables, in print order (the config is placed by `render_trial`).
    fn sections(&self) -> Vec<Section> {
        let mut header = header_section(&self.trial, &self.experiment);
        for (field, tags) in [
            ("tags", &self.tags),
            ("experiment tags", &self.experiment_tags),
        ] {
            if !tags.is_empty() {
                header.rows.push(vec![field.into(), tags.join(", ")]);
            }
        }
        let mut sections = vec![header];
        if !self.epochs.is_empty() {
            sections.push(epochs_section(&self.epochs));
        }
        if !self.metrics.is_empty() {
            sections.push(metrics_section(&self.metrics));
        }
        sections.extend(self.confusion.iter().map(confusion_section));
        if !self.artifacts.is_empty() {
            sections.push(Section {
                title: "artifacts".into(),
                header: strings(["kind", "path", "sha256"]),
                rows: self
                    .artifacts
                    .iter()
                    .map(|a| vec![a.kind.clone(), a.path.clone(), a.sha256.clone()])
                    .collect(),
            });
        }
        sections
    }
}

/// Print one trial: header (with its tags and its experiment's), resolved
/// config, its note, epochs, metrics by split, confusion matrices (rows true,
/// columns predicted) and artifacts. CSV prints each table
/// after a `# title` line; JSON prints one object.
///
/// # Errors
/// No such trial, its stored config is not JSON, or the store cannot be read.
pub fn render_trial(store: &Store, trial_id: i64, format: Format) -> Result<String> {
    let view = TrialView::load(store, trial_id)?;
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(&view.to_json())?);
    }
    let config_text = serde_json::to_string_pretty(&view.config)?;
    let mut out = Vec::new();
    for (i, s) in view.sections().iter().enumerate() {
        let table = grid(&s.header, &s.rows, format);
        out.push(match format {
            Format::Markdown if i == 0 => format!("# {}\n\n{table}", s.title),
            Format::Markdown => format!("## {}\n\n{table}", s.title),
            Format::Csv => format!("# {}\n{table}", s.title),
            _ => format!("{}\n{table}", s.title),
        });
        if i == 0 && format != Format::Csv {
            // The config follows the header: it is what the reader looks at next.
            out.push(match format {
                Format::Markdown => format!("## config\n\n```json\n{config_text}\n```"),
                _ => format!("config\n{config_text}"),
            });
            out.extend(view.note.as_deref().map(|n| note_block(n, format)));
        }
    }
    if format == Format::Csv {
        let rows = super::flatten_config(&view.config)
            .into_iter()
            .map(|(k, v)| vec![k, v])
            .collect::<Vec<_>>();
        let table = grid(&strings(["key", "value"]), &rows, format);
        out.insert(1, format!("# config\n{table}"));
        if let Some(note) = &view.note {
            out.insert(2, note_block(note, format));
        }
    }
    Ok(out.join("\n\n"))
}

/// The trial's note after its config, as written: in a fence longer than any
/// run of backticks in it (markdown), as a one-cell `note` table (CSV), or
/// under a `note` title.
fn note_block(note: &str, format: Format) -> String {
    let note = note.trim_end();
    match format {
        Format::Markdown => {
            let mut fence = "```".to_string();
            while note.contains(fence.as_str()) {
                fence.push('`');
            }
            format!("## note\n\n{fence}text\n{note}\n{fence}")
        }
        Format::Csv => format!(
            "# note\n{}",
            grid(&strings(["note"]), &[vec![note.to_string()]], format)
        ),
        _ => format!("note\n{note}"),
    }
}

fn epochs_section(epochs: &[EpochRecord]) -> Section {
    Section {
        title: "epochs".into(),
        header: strings([
            "epoch",
            "train_loss",
            "valid_loss",
            "valid_accuracy",
            "valid_macro_f1",
            "lr",
            "seconds",
            "samples/s",
        ]),
        rows: epochs
            .iter()
            .map(|e| {
                vec![
                    e.epoch.to_string(),
                    format!("{:.4}", e.train_loss),
                    format!("{:.4}", e.valid_loss),
                    format!("{:.4}", e.valid_accuracy),
                    format!("{:.4}", e.valid_macro_f1),
                    format!("{:e}", e.lr),
                    format!("{:.1}", e.seconds),
                    format!("{:.0}", e.samples_per_second),
                ]
            })
            .collect(),
    }
}

fn header_section(trial: &TrialRow, experiment: &str) -> Section {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut rows = vec![
        vec!["experiment".into(), experiment.to_string()],
        vec!["status".into(), trial.status.to_string()],
        vec!["seed".into(), trial.seed.to_string()],
        vec!["device".into(), opt(&trial.device)],
        vec!["worker".into(), opt(&trial.worker)],
        vec!["started".into(), opt(&trial.started_at)],
        vec!["finished".into(), opt(&trial.finished_at)],
        vec!["config hash".into(), trial.config_hash.clone()],
    ];
    if let Some(n) = trial.search_number {
        rows.push(vec!["search proposal".into(), n.to_string()]);
    }
    if let Some(e) = &trial.error {
        rows.push(vec!["error".into(), e.clone()]);
    }
    if let Some(reason) = &trial.pruned_reason {
        rows.push(vec!["pruned".into(), reason.clone()]);
    }
    Section {
        title: format!("trial {}", trial.id),
        header: strings(["field", "value"]),
        rows,
    }
}

/// Metric names down, splits across (test, then valid, then any others).
fn metrics_section(metrics: &[MetricRow]) -> Section {
    let order = |s: &str| match s {
        "test" => 0,
        "valid" => 1,
        _ => 2,
    };
    let mut splits: Vec<&str> = metrics
        .iter()
        .map(|m| m.split.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    splits.sort_by_key(|s| (order(s), *s));
    let names: BTreeSet<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    let mut header = vec!["metric".to_string()];
    header.extend(splits.iter().map(|s| s.to_string()));
    let rows = names
        .into_iter()
        .map(|name| {
            let mut row = vec![name.to_string()];
            for split in &splits {
                let v = metrics
                    .iter()
                    .find(|m| m.split == *split && m.name == name)
                    .map(|m| format!("{:.4}", m.value))
                    .unwrap_or_else(|| "-".into());
                row.push(v);
            }
            row
        })
        .collect();
    Section {
        title: "metrics".into(),
        header,
        rows,
    }
}

fn confusion_section(c: &ConfusionRow) -> Section {
    let mut header = vec!["true \\ predicted".to_string()];
    header.extend(c.labels.iter().cloned());
    let rows = c
        .matrix
        .iter()
        .enumerate()
        .map(|(i, counts)| {
            let label = c.labels.get(i).cloned().unwrap_or_else(|| i.to_string());
            let mut row = vec![label];
            row.extend(counts.iter().map(|n| n.to_string()));
            row
        })
        .collect();
    Section {
        title: format!("confusion ({})", c.split),
        header,
        rows,
    }
}
