//! `/`: every experiment with its description, tags, status counts, best
//! single trial and last activity; the table refreshes while trials run.

use super::{counts, fragment, layout, respond};
use crate::store::{ExperimentRow, StatusCounts, Store, Target};
use crate::ui::{Failure, Shared};
use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};
use serde::Serialize;

/// The metric the overview ranks by: every trial records it.
const METRIC: &str = "macro_f1";

/// One experiment as the overview shows it (`GET /api/experiments`).
#[derive(Serialize)]
pub struct Overview {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub pending: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub pruned: usize,
    /// The done trial with the best test macro F1 and that value.
    pub best_trial: Option<i64>,
    pub best_macro_f1: Option<f64>,
    pub created_at: String,
    pub last_activity: String,
    #[serde(skip)]
    counts: StatusCounts,
}

/// The experiment's description, from its recorded spec.
pub fn description(e: &ExperimentRow) -> String {
    toml::from_str::<toml::Table>(&e.spec_toml)
        .ok()
        .and_then(|t| {
            t.get("experiment")?
                .get("description")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Every experiment's overview, oldest first.
///
/// # Errors
/// The store cannot be read.
pub fn overviews(store: &Store) -> anyhow::Result<Vec<Overview>> {
    let mut out = Vec::new();
    for e in store.experiments()? {
        let counts = store.status_counts(e.id)?;
        let best = store.best_trial_value(e.id, "test", METRIC, false)?;
        out.push(Overview {
            description: description(&e),
            tags: store.tags(Target::Experiment(e.id))?,
            pending: counts.pending,
            running: counts.running,
            done: counts.done,
            failed: counts.failed,
            pruned: counts.pruned,
            best_trial: best.map(|b| b.0),
            best_macro_f1: best.map(|b| b.1),
            last_activity: store.last_activity(e.id)?,
            created_at: e.created_at,
            name: e.name,
            counts,
        });
    }
    Ok(out)
}

/// `GET /`.
pub async fn page(State(ui): State<Shared>) -> Response {
    respond(render(&ui).await.map(|(table, stamp)| {
        layout(
            "Experiments",
            html! {},
            html! {
                h1 { "Experiments" }
                p.muted { "Store " code { (ui.source_name()) } ". Updates while trials run." }
                div #live data-live="/live/experiments" data-stamp-src="/api/stamp" data-stamp=(stamp) { (table) }
            },
        )
    }))
}

/// `GET /live/experiments`: the table alone.
pub async fn live(State(ui): State<Shared>) -> Response {
    fragment(render(&ui).await.map(|(table, _)| table))
}

async fn render(ui: &Shared) -> Result<(Markup, String), Failure> {
    ui.read(|store| {
        Ok((
            table(&overviews(store)?),
            crate::ui::api::global_stamp(store)?,
        ))
    })
    .await
}

fn table(rows: &[Overview]) -> Markup {
    html! {
        @if rows.is_empty() {
            p { "No experiments yet: " code { "lab run experiments/quick.toml" } " starts one." }
        } @else {
            table.sortable.experiments {
                tr {
                    th.k { "experiment" } th.k { "description" } th.k { "tags" } th.k { "trials" }
                    th { "best test macro F1" } th { "best trial" } th.k { "last activity" }
                }
                @for r in rows {
                    tr {
                        td.k { a href={ "/experiments/" (urlencode(&r.name)) } { (r.name) } }
                        td.k { (r.description) }
                        td.k { @for t in &r.tags { span.tag { (t) } " " } }
                        td.k { (counts(&r.counts)) }
                        td { @if let Some(v) = r.best_macro_f1 { (format!("{v:.4}")) } @else { "-" } }
                        td { @if let Some(t) = r.best_trial { a href={ "/trials/" (t) } { (t) } } @else { "-" } }
                        td.k { (r.last_activity) }
                    }
                }
            }
        }
    }
}

/// A path segment, percent-encoded (experiment names may hold spaces).
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
