//! The JSON endpoints (README "lab ui" lists them; all usable with curl).
//! Reads answer from a read-only connection; tags and notes are the only writes.

use super::failure::BadRequest;
use super::pages::experiment::{experiment as find_experiment, finished, View};
use super::pages::experiments::overviews;
use super::pages::trial::{trial as trial_row, trial_stamp as stamp_of_trial};
use super::{Failure, Shared};
use crate::report::{flatten_config, render_boards, Format};
use crate::store::{Store, Target};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

type Answer = Result<Json<Value>, Failure>;

/// `GET /healthz`.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// A stamp over every experiment: changes when any of them moves.
///
/// # Errors
/// The store cannot be read.
pub fn global_stamp(store: &Store) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for e in store.experiments()? {
        parts.push(store.experiment_stamp(e.id)?);
    }
    Ok(parts.join("|"))
}

/// `GET /api/stamp`.
pub async fn stamp(State(ui): State<Shared>) -> Answer {
    ui.read(|store| Ok(Json(json!({ "stamp": global_stamp(store)? }))))
        .await
}

/// `GET /api/experiments`.
pub async fn experiments(State(ui): State<Shared>) -> Answer {
    ui.read(|store| Ok(Json(serde_json::to_value(overviews(store)?)?)))
        .await
}

/// `GET /api/experiments/{name}?metric=&group_by=&top=`: counts and the
/// leaderboards as `lab compare --format json` prints them.
pub async fn experiment(
    State(ui): State<Shared>,
    Path(name): Path<String>,
    Query(view): Query<View>,
) -> Answer {
    let opts = view.options()?;
    let cache = ui.clone();
    ui.read(move |store| {
        let e = find_experiment(store, &name)?;
        let counts = store.status_counts(e.id)?;
        let done = finished(&cache, store, &e, &opts)?;
        let boards = done
            .boards
            .as_ref()
            .map_err(|err| BadRequest(StatusCode::BAD_REQUEST, err.clone()))?;
        let board: Value = serde_json::from_str(&render_boards(boards, Format::Json))?;
        Ok(Json(json!({
            "name": e.name,
            "created_at": e.created_at,
            "stamp": store.experiment_stamp(e.id)?,
            "counts": {
                "pending": counts.pending, "running": counts.running, "done": counts.done,
                "failed": counts.failed, "pruned": counts.pruned,
            },
            "tags": store.tags(Target::Experiment(e.id))?,
            "note": store.note(Target::Experiment(e.id))?,
            "leaderboard": board,
        })))
    })
    .await
}

/// `GET /api/experiments/{name}/stamp`.
pub async fn experiment_stamp(State(ui): State<Shared>, Path(name): Path<String>) -> Answer {
    ui.read(move |store| {
        let e = find_experiment(store, &name)?;
        Ok(Json(json!({ "stamp": store.experiment_stamp(e.id)? })))
    })
    .await
}

/// `?status=&limit=&offset=` of `GET /api/experiments/{name}/trials`.
#[derive(Deserialize)]
pub struct TrialFilter {
    /// Only trials in this status.
    status: Option<String>,
    /// At most this many (default [`TRIALS_PAGE`]).
    limit: Option<usize>,
    /// Skip this many first (by id).
    offset: Option<usize>,
}

/// Trials one `GET /api/experiments/{name}/trials` answers unless `limit` says.
pub const TRIALS_PAGE: usize = 1000;

/// `GET /api/experiments/{name}/trials[?status=running&limit=&offset=]`: id, status, seed,
/// flattened config and test metrics of each trial.
pub async fn trials(
    State(ui): State<Shared>,
    Path(name): Path<String>,
    Query(filter): Query<TrialFilter>,
) -> Answer {
    ui.read(move |store| {
        let e = find_experiment(store, &name)?;
        let mut metrics: std::collections::HashMap<i64, serde_json::Map<String, Value>> =
            Default::default();
        for m in store.experiment_metrics(e.id, "test")? {
            metrics
                .entry(m.trial_id)
                .or_default()
                .insert(m.name, json!(m.value));
        }
        let mut out = Vec::new();
        let chosen = store
            .readable_trials(e.id)?
            .into_iter()
            .filter(|t| {
                filter
                    .status
                    .as_deref()
                    .is_none_or(|s| s == t.status.as_str())
            })
            .skip(filter.offset.unwrap_or(0))
            .take(filter.limit.unwrap_or(TRIALS_PAGE));
        for t in chosen {
            let config = serde_json::from_str::<Value>(&t.config_json)
                .map(|c| flatten_config(&c))
                .unwrap_or_default();
            out.push(json!({
                "id": t.id, "status": t.status.as_str(), "seed": t.seed,
                "started_at": t.started_at, "finished_at": t.finished_at,
                "config": config, "test": metrics.remove(&t.id).unwrap_or_default(),
            }));
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// `GET /api/trials/{id}`: the trial, its config, epochs, metrics, confusion
/// matrices, artifacts, tags, note and provenance.
pub async fn trial(State(ui): State<Shared>, Path(id): Path<i64>) -> Answer {
    ui.read(move |store| {
        let t = trial_row(store, id)?;
        let e = store.experiment(t.experiment_id)?;
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
        Ok(Json(json!({
            "id": t.id,
            "experiment": e.map(|e| e.name),
            "status": t.status.as_str(),
            "seed": t.seed,
            "device": t.device, "worker": t.worker,
            "started_at": t.started_at, "finished_at": t.finished_at,
            "error": t.error, "pruned_reason": t.pruned_reason, "search_number": t.search_number,
            "config": serde_json::from_str::<Value>(&t.config_json).unwrap_or(Value::Null),
            "epochs": store.epochs(id)?.iter().map(|e| json!({
                "epoch": e.epoch, "train_loss": e.train_loss, "valid_loss": e.valid_loss,
                "valid_accuracy": e.valid_accuracy, "valid_macro_f1": e.valid_macro_f1,
                "lr": e.lr, "seconds": e.seconds, "samples_per_second": e.samples_per_second,
            })).collect::<Vec<_>>(),
            "metrics": store.metrics(id)?.iter().map(|m| json!({
                "split": m.split, "name": m.name, "value": m.value,
            })).collect::<Vec<_>>(),
            "confusion": store.confusion(id)?.iter().map(|c| json!({
                "split": c.split, "labels": c.labels, "matrix": c.matrix,
            })).collect::<Vec<_>>(),
            "artifacts": store.artifacts(id)?.iter().map(|a| json!({
                "kind": a.kind, "path": a.path, "sha256": a.sha256,
                "url": format!("/trials/{id}/artifacts/{}", a.kind),
            })).collect::<Vec<_>>(),
            "tags": store.tags(Target::Trial(id))?,
            "note": store.note(Target::Trial(id))?,
            "provenance": parse(store.provenance(id)?),
            "data_report": parse(store.data_report(id)?),
        })))
    })
    .await
}

/// `GET /api/trials/{id}/stamp`.
pub async fn trial_stamp(State(ui): State<Shared>, Path(id): Path<i64>) -> Answer {
    ui.read(move |store| {
        let t = trial_row(store, id)?;
        Ok(Json(json!({ "stamp": stamp_of_trial(store, &t)? })))
    })
    .await
}

/// The body of a tag request.
#[derive(Deserialize)]
pub struct TagBody {
    tag: String,
}

/// The body of a note request; an empty note deletes it.
#[derive(Deserialize)]
pub struct NoteBody {
    note: String,
}

/// Writes come from the page's script or curl with a JSON body: a form on
/// another site cannot send one without the browser asking first (CORS).
fn json_only(headers: &HeaderMap) -> Result<(), Failure> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        Ok(())
    } else {
        Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON (Content-Type: application/json)",
        ))
    }
}

/// A JSON write's body: refused unless sent as JSON and shaped as `example`.
fn parse<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    example: &str,
) -> Result<T, Failure> {
    json_only(headers)?;
    serde_json::from_slice(body)
        .map_err(|e| Failure::bad_request(format!("the body is not {example}: {e}")))
}

async fn experiment_target(ui: &Shared, name: String) -> Result<Target, Failure> {
    ui.read(move |store| Ok(Target::Experiment(find_experiment(store, &name)?.id)))
        .await
}

/// A 404 for a trial that does not exist (experiments are found by name first).
async fn exists(ui: &Shared, target: Target) -> Result<(), Failure> {
    match target {
        Target::Trial(id) => ui.read(move |store| trial_row(store, id).map(|_| ())).await,
        Target::Experiment(_) => Ok(()),
    }
}

async fn add_tag(ui: Shared, target: Target, tag: String) -> Answer {
    exists(&ui, target).await?;
    ui.write(move |store| {
        store
            .add_tag(target, &tag)
            .map_err(|e| BadRequest(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
        Ok(Json(json!({ "tags": store.tags(target)? })))
    })
    .await
}

async fn remove_tag(ui: Shared, target: Target, tag: String) -> Answer {
    exists(&ui, target).await?;
    ui.write(move |store| {
        store.remove_tag(target, &tag)?;
        Ok(Json(json!({ "tags": store.tags(target)? })))
    })
    .await
}

async fn set_note(ui: Shared, target: Target, note: String) -> Answer {
    exists(&ui, target).await?;
    ui.write(move |store| {
        store
            .set_note(target, &note)
            .map_err(|e| BadRequest(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
        Ok(Json(json!({ "note": store.note(target)? })))
    })
    .await
}

/// `POST /api/trials/{id}/tags` with `{"tag": "..."}`: the trial's tags after.
pub async fn tag_trial(
    State(ui): State<Shared>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    let b: TagBody = parse(&headers, &body, r#"{"tag": "..."}"#)?;
    add_tag(ui, Target::Trial(id), b.tag).await
}

/// `DELETE /api/trials/{id}/tags/{tag}`.
pub async fn untag_trial(State(ui): State<Shared>, Path((id, tag)): Path<(i64, String)>) -> Answer {
    remove_tag(ui, Target::Trial(id), tag).await
}

/// `PUT /api/trials/{id}/note` with `{"note": "..."}`.
pub async fn note_trial(
    State(ui): State<Shared>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    let b: NoteBody = parse(&headers, &body, r#"{"note": "..."}"#)?;
    set_note(ui, Target::Trial(id), b.note).await
}

/// `POST /api/experiments/{name}/tags` with `{"tag": "..."}`.
pub async fn tag_experiment(
    State(ui): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    let b: TagBody = parse(&headers, &body, r#"{"tag": "..."}"#)?;
    let target = experiment_target(&ui, name).await?;
    add_tag(ui, target, b.tag).await
}

/// `DELETE /api/experiments/{name}/tags/{tag}`.
pub async fn untag_experiment(
    State(ui): State<Shared>,
    Path((name, tag)): Path<(String, String)>,
) -> Answer {
    let target = experiment_target(&ui, name).await?;
    remove_tag(ui, target, tag).await
}

/// `PUT /api/experiments/{name}/note` with `{"note": "..."}`.
pub async fn note_experiment(
    State(ui): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    let b: NoteBody = parse(&headers, &body, r#"{"note": "..."}"#)?;
    let target = experiment_target(&ui, name).await?;
    set_note(ui, target, b.note).await
}
