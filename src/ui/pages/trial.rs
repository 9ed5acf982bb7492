//! `/trials/{id}`: one trial: its state, tags and note, the commands that use
//! it, metrics, epochs and curves (live while it runs), confusion matrices and
//! per-class scores, resolved config, reproducibility metadata, artifacts, and
//! (fetched after the page, as they read the data file) its most confidently
//! wrong test texts and attention words.

use super::experiments::urlencode;
use super::{copy_command, fragment, layout, note_editor, raw, respond, tag_editor};
use crate::report::flatten_config;
use crate::report::svg::{line_chart, Series, PALETTE};
use crate::store::{Store, Target, TrialRow, TrialStatus};
use crate::ui::failure::NotFound;
use crate::ui::Shared;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use std::collections::BTreeMap;

/// Wrong test texts listed.
const WRONG: usize = 10;

/// The trial with id `id`, or a 404.
pub fn trial(store: &Store, id: i64) -> anyhow::Result<TrialRow> {
    store
        .trial(id)?
        .ok_or_else(|| NotFound(format!("no trial {id} in {}", store.path().display())).into())
}

/// `GET /trials/{id}`.
pub async fn page(State(ui): State<Shared>, Path(id): Path<i64>) -> Response {
    let db = ui.db_arg.clone();
    respond(ui.read(move |store| render(store, id, db.as_deref())).await)
}

/// `GET /trials/{id}/live`: state, metrics, epochs and curves.
pub async fn live(State(ui): State<Shared>, Path(id): Path<i64>) -> Response {
    fragment(
        ui.read(move |store| live_part(store, &trial(store, id)?))
            .await,
    )
}

fn render(store: &Store, id: i64, db: Option<&str>) -> anyhow::Result<Markup> {
    let t = trial(store, id)?;
    let e = store
        .experiment(t.experiment_id)?
        .ok_or_else(|| NotFound(format!("trial {id}: its experiment is gone")))?;
    let api = format!("/api/trials/{id}");
    let db = db.map(|d| format!(" --db {d}")).unwrap_or_default();
    let done = t.status == TrialStatus::Done;
    let attention = serde_json::from_str::<serde_json::Value>(&t.config_json)
        .ok()
        .and_then(|c| {
            c.pointer("/model/pooling")
                .and_then(|p| p.as_str())
                .map(|p| p == "attention")
        })
        .unwrap_or(false);
    let body = html! {
        h1 { "Trial " (id) }
        p { "Experiment " a href={ "/experiments/" (urlencode(&e.name)) } { (e.name) } }
        (tag_editor(&api, &store.tags(Target::Trial(id))?))
        (note_editor(&api, store.note(Target::Trial(id))?.as_deref()))
        @if done {
            h2 { "Use it" }
            (copy_command(&format!("lab predict{db} {id} \"a review to classify\"")))
            (copy_command(&format!("lab serve{db} {id}")))
            (copy_command(&format!("lab show{db} {id}")))
        }
        div #live data-live={ "/trials/" (id) "/live" } data-stamp-src={ (api) "/stamp" }
            data-stamp=(trial_stamp(store, &t)?) { (live_part(store, &t)?) }
        @if done {
            h2 { "Confusion matrices and per-class scores" }
            (raw({ let mut s = String::new(); crate::report::class_scores(&mut s, store, id)?; s }))
            div.lazy data-src={ "/trials/" (id) "/errors" } { p.muted { "Reading the test texts…" } }
            @if attention {
                div.lazy data-src={ "/trials/" (id) "/attention" } { p.muted { "Computing attention…" } }
            }
        }
        h2 { "Configuration" }
        (key_values(&config_map(&t.config_json)))
        (json_section("Reproducibility", store.provenance(id)?))
        (json_section("Data", store.data_report(id)?))
        (artifacts(store, id)?)
    };
    Ok(layout(
        &format!("Trial {id}"),
        html! { " / " a href={ "/experiments/" (urlencode(&e.name)) } { (e.name) } " / trial " (id) },
        body,
    ))
}

/// What changes while a trial runs: status, epochs, metrics.
pub fn trial_stamp(store: &Store, t: &TrialRow) -> anyhow::Result<String> {
    Ok(format!("{}.{}", t.status, store.epochs(t.id)?.len()))
}

fn config_map(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str::<serde_json::Value>(json)
        .map(|c| flatten_config(&c))
        .unwrap_or_default()
}

fn key_values(map: &BTreeMap<String, String>) -> Markup {
    html! {
        table.kv { @for (k, v) in map { tr { td.k { (k) } td.k { (v) } } } }
    }
}

fn json_section(title: &str, json: Option<String>) -> Markup {
    html! {
        h2 { (title) }
        @match json {
            Some(j) => (key_values(&config_map(&j))),
            None => p.muted { "Not recorded for this trial." },
        }
    }
}

fn live_part(store: &Store, t: &TrialRow) -> anyhow::Result<Markup> {
    let epochs = store.epochs(t.id)?;
    let metrics = store.metrics(t.id)?;
    let mut by_name: BTreeMap<&str, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for m in &metrics {
        let slot = by_name.entry(m.name.as_str()).or_default();
        match m.split.as_str() {
            "valid" => slot.0 = Some(m.value),
            _ => slot.1 = Some(m.value),
        }
    }
    let line = |name: &str, f: &dyn Fn(&crate::store::EpochRecord) -> f64, color, dashed| Series {
        name: name.into(),
        points: epochs.iter().map(|e| (e.epoch as f64, f(e))).collect(),
        color,
        dashed,
    };
    let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    Ok(html! {
        table.kv.state {
            tr { td.k { "status" } td.k { span.st.(t.status.as_str()) { (t.status.as_str()) } } }
            tr { td.k { "seed" } td.k { (t.seed) } }
            @if let Some(n) = t.search_number { tr { td.k { "search proposal" } td.k { (n) } } }
            tr { td.k { "device" } td.k { (t.device.as_deref().unwrap_or("-")) } }
            tr { td.k { "worker" } td.k { (t.worker.as_deref().unwrap_or("-")) } }
            tr { td.k { "started" } td.k { (t.started_at.as_deref().unwrap_or("-")) } }
            tr { td.k { "finished" } td.k { (t.finished_at.as_deref().unwrap_or("-")) } }
            @if let Some(e) = &t.error { tr { td.k { "error" } td.k.error { (e) } } }
            @if let Some(p) = &t.pruned_reason { tr { td.k { "pruned" } td.k { (p) } } }
        }
        @if !metrics.is_empty() {
            h2 { "Metrics" }
            table.sortable.metrics {
                tr { th.k { "metric" } th { "valid" } th { "test" } }
                @for (name, (v, t)) in &by_name { tr { td.k { (name) } td { (cell(*v)) } td { (cell(*t)) } } }
            }
        }
        h2 { "Epochs" }
        @if epochs.is_empty() {
            p.muted { "No epoch recorded yet." }
        } @else {
            div.charts.trial-curves data-epochs=(epochs.len()) {
                (raw(line_chart("Loss (train solid, valid dashed)", "epoch", "loss", &[
                    line("train", &|e| e.train_loss, PALETTE[0], false),
                    line("valid", &|e| e.valid_loss, PALETTE[1], true),
                ])))
                (raw(line_chart("Valid macro F1 (solid), accuracy (dashed)", "epoch", "valid metric", &[
                    line("macro F1", &|e| e.valid_macro_f1, PALETTE[0], false),
                    line("accuracy", &|e| e.valid_accuracy, PALETTE[1], true),
                ])))
            }
            table.sortable.epochs {
                tr { th { "epoch" } th { "train loss" } th { "valid loss" } th { "valid accuracy" } th { "valid macro F1" } th { "lr" } th { "seconds" } th { "samples/s" } }
                @for e in &epochs {
                    tr {
                        td { (e.epoch) } td { (format!("{:.4}", e.train_loss)) } td { (format!("{:.4}", e.valid_loss)) }
                        td { (format!("{:.4}", e.valid_accuracy)) } td { (format!("{:.4}", e.valid_macro_f1)) }
                        td { (format!("{:.2e}", e.lr)) } td { (format!("{:.2}", e.seconds)) } td { (format!("{:.0}", e.samples_per_second)) }
                    }
                }
            }
        }
    })
}

fn artifacts(store: &Store, id: i64) -> anyhow::Result<Markup> {
    let rows = store.artifacts(id)?;
    Ok(html! {
        h2 { "Artifacts" }
        @if rows.is_empty() {
            p.muted { "None recorded." }
        } @else {
            table.artifacts {
                tr { th.k { "kind" } th.k { "file" } th.k { "sha256" } }
                @for a in &rows {
                    tr {
                        td.k { a href={ "/trials/" (id) "/artifacts/" (urlencode(&a.kind)) } { (a.kind) } }
                        td.k { (a.path) }
                        td.k { code { (a.sha256.get(..12).unwrap_or(&a.sha256)) "…" } }
                    }
                }
            }
        }
    })
}

/// `GET /trials/{id}/errors`: the most confidently wrong test texts.
pub async fn errors(State(ui): State<Shared>, Path(id): Path<i64>) -> Response {
    fragment(
        ui.read(move |store| {
            let wrong =
                crate::inference::errors::most_confidently_wrong(store, store.path(), id, WRONG)
                    .map_err(|e| format!("{e:#}"));
            let mut s = String::new();
            crate::report::wrong_texts(&mut s, id, &wrong);
            Ok(raw(s))
        })
        .await,
    )
}

/// `GET /trials/{id}/attention`: the most-attended words of a few test reviews.
pub async fn attention(State(ui): State<Shared>, Path(id): Path<i64>) -> Response {
    fragment(
        ui.read(move |store| {
            let reviews = crate::inference::attention::most_attended(store, store.path(), id, 6, 8);
            Ok(html! {
                h3 { "Most-attended words" }
                @match reviews {
                    Err(e) => p.muted { "No attention words: " (format!("{e:#}")) },
                    Ok(reviews) => table.attention {
                        tr { th.k { "true label" } th.k { "predicted" } th.k { "words (weight)" } }
                        @for r in &reviews {
                            tr {
                                td.k { (r.label) } td.k { (r.predicted) }
                                td.k { @for (w, a) in &r.top { span.word { (w) " (" (format!("{a:.2}")) ")" } " " } }
                            }
                        }
                    },
                }
            })
        })
        .await,
    )
}

/// `GET /trials/{id}/artifacts/{kind}`: the recorded file, checked to lie
/// inside the store's directory.
pub async fn artifact(State(ui): State<Shared>, Path((id, kind)): Path<(i64, String)>) -> Response {
    let result = ui
        .read(move |store| {
            let rows = store.artifacts(id)?;
            let row = rows
                .iter()
                .find(|a| a.kind == kind)
                .ok_or_else(|| NotFound(format!("trial {id} has no artifact `{kind}`")))?;
            let path = store.artifact_file(id, row)?;
            let bytes =
                std::fs::read(&path).map_err(|e| NotFound(format!("{}: {e}", path.display())))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(kind);
            Ok((name, bytes))
        })
        .await;
    match result {
        Ok((name, bytes)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", name.replace('"', "")),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(f) => f.page(),
    }
}
