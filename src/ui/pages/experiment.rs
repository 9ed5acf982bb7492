//! `/experiments/{name}`: the leaderboard with its evidence (sortable, metric
//! and grouping selectable), curves per configuration and of running trials,
//! parallel coordinates, parameter effects, a search's history, the spec.
//! The live part is re-fetched whenever the experiment's stamp changes.

use super::experiments::{description, urlencode};
use super::{fragment, layout, note_editor, raw, respond, tag_editor};
use crate::report::svg::{line_chart, Series, PALETTE};
use crate::report::{leaderboards, Leaderboard, LeaderboardOptions};
use crate::store::{ExperimentRow, Store, Target};
use crate::ui::failure::NotFound;
use crate::ui::{analysis, Failure, Shared};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

/// Leaderboard rows shown unless `top=all`.
const TOP: usize = 50;
/// Configurations (leaderboard rows) whose curves are drawn.
const CURVE_ROWS: usize = 6;
/// Running trials whose curves are drawn.
const RUNNING: usize = 8;

/// The page's choices, as query parameters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct View {
    /// Rank by (`macro_f1`, `accuracy`, `valid.loss`, ...); default macro_f1.
    pub metric: Option<String>,
    /// Comma-separated config keys; empty: the keys that differ.
    pub group_by: Option<String>,
    /// Rows shown: a number, or `all`; default 50.
    pub top: Option<String>,
}

impl View {
    /// The leaderboard options these choices mean.
    ///
    /// # Errors
    /// `top` is neither a positive number nor `all`.
    pub fn options(&self) -> Result<LeaderboardOptions, Failure> {
        let top = match self.top.as_deref().map(str::trim) {
            None | Some("") => Some(TOP),
            Some("all") => None,
            Some(n) => Some(n.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                Failure::bad_request(format!("top={n}: expected a positive number or `all`"))
            })?),
        };
        let group_by = self
            .group_by
            .as_deref()
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .filter(|g| !g.is_empty());
        Ok(LeaderboardOptions {
            metric: self
                .metric
                .clone()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| "macro_f1".into()),
            group_by,
            top,
            ..Default::default()
        })
    }

    fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("metric", &self.metric),
            ("group_by", &self.group_by),
            ("top", &self.top),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// The experiment called `name`, or a 404.
pub fn experiment(store: &Store, name: &str) -> anyhow::Result<ExperimentRow> {
    store.experiment_by_name(name)?.ok_or_else(|| {
        NotFound(format!(
            "no experiment `{name}` in {}",
            store.path().display()
        ))
        .into()
    })
}

/// `GET /experiments/{name}`.
pub async fn page(
    State(ui): State<Shared>,
    Path(name): Path<String>,
    Query(view): Query<View>,
) -> Response {
    respond(render_page(&ui, name, view).await)
}

/// `GET /experiments/{name}/live`: the live part alone.
pub async fn live(
    State(ui): State<Shared>,
    Path(name): Path<String>,
    Query(view): Query<View>,
) -> Response {
    let result = async {
        let opts = view.options()?;
        ui.read(move |store| {
            let e = experiment(store, &name)?;
            live_part(store, &e, &opts)
        })
        .await
    };
    fragment(result.await)
}

async fn render_page(ui: &Shared, name: String, view: View) -> Result<Markup, Failure> {
    let opts = view.options()?;
    let query = view.query();
    ui.read(move |store| {
        let e = experiment(store, &name)?;
        let stamp = store.experiment_stamp(e.id)?;
        let live = live_part(store, &e, &opts)?;
        let api = format!("/api/experiments/{}", urlencode(&e.name));
        let body = html! {
            h1 { "Experiment " (e.name) }
            @let d = description(&e);
            @if !d.is_empty() { p.description { (d) } }
            (tag_editor(&api, &store.tags(Target::Experiment(e.id))?))
            (note_editor(&api, store.note(Target::Experiment(e.id))?.as_deref()))
            (controls(store, &e, &view)?)
            div #live data-live={ "/experiments/" (urlencode(&e.name)) "/live" (query) }
                data-stamp-src={ (api) "/stamp" } data-stamp=(stamp) { (live) }
            (compare_form(&e))
            h2 { "Spec" }
            pre.spec { (e.spec_toml) }
        };
        Ok(layout(&e.name, html! { " / " (e.name) }, body))
    })
    .await
}

/// The metric, group-by and row-count choices (a GET form).
fn controls(store: &Store, e: &ExperimentRow, view: &View) -> anyhow::Result<Markup> {
    let metrics: Vec<String> = store
        .metric_names(e.id)?
        .into_iter()
        .map(|(split, name)| {
            if split == "test" {
                name
            } else {
                format!("{split}.{name}")
            }
        })
        .collect();
    let current = view.metric.clone().unwrap_or_else(|| "macro_f1".into());
    let keys: Vec<String> = store
        .first_config(e.id)?
        .and_then(|c| serde_json::from_str(&c).ok())
        .map(|c| crate::report::flatten_config(&c).into_keys().collect())
        .unwrap_or_default();
    Ok(html! {
        form.controls method="get" {
            label { "Rank by " select name="metric" #metric {
                @if !metrics.contains(&current) { option selected value=(current) { (current) } }
                @for m in &metrics { option value=(m) selected[*m == current] { (m) } }
            } }
            " "
            label { "Group by " input name="group_by" #group-by list="config-keys" size="40"
                placeholder="the keys that differ" value=(view.group_by.clone().unwrap_or_default()); }
            datalist #config-keys { @for k in &keys { option value=(k) {} } }
            " "
            label { "Rows " input name="top" size="4" value=(view.top.clone().unwrap_or_default()) placeholder="50"; }
            " "
            button type="submit" { "Apply" }
        }
    })
}

fn compare_form(e: &ExperimentRow) -> Markup {
    html! {
        h2 { "Compare" }
        form.compare method="get" action="/compare" {
            input type="hidden" name="experiment" value=(e.name);
            label { "A " input name="a" size="24" placeholder="trial id or key=value" required; }
            " "
            label { "B " input name="b" size="24" placeholder="trial id or key=value" required; }
            " "
            button type="submit" { "Compare" }
        }
    }
}

/// Counts, leaderboards, curves, parameters and the search: all that moves.
fn live_part(
    store: &Store,
    e: &ExperimentRow,
    opts: &LeaderboardOptions,
) -> anyhow::Result<Markup> {
    let counts = store.status_counts(e.id)?;
    let boards = leaderboards(store, e, opts);
    let mut search = String::new();
    crate::report::search_section(&mut search, store, e)?;
    Ok(html! {
        p.summary { (super::counts(&counts)) @if let Some(line) = counts.pruned_line() { " · " (line) } }
        h2 { "Leaderboard" }
        @match &boards {
            Err(err) => p.error { (format!("{err:#}")) },
            Ok(boards) => {
                @for b in boards {
                    (raw({ let mut s = String::new(); crate::report::leaderboard_table(&mut s, b, Some("/trials/")); s }))
                }
                @if let Some(board) = boards.first() {
                    @if board.groups > board.rows.len() {
                        p.muted { "Showing " (board.rows.len()) " of " (board.groups) " configurations: " a href="?top=all" { "show all" } }
                    }
                }
            }
        }
        (running(store, e)?)
        @if let Ok(boards) = &boards {
            (curves(store, boards)?)
            @if let Some(board) = boards.first() { (parameters(store, e, board)?) }
        }
        (raw(search))
    })
}

/// Loss and valid metric lines of some trials: one colour per trial.
fn trial_lines(
    store: &Store,
    trials: &[(i64, String)],
) -> anyhow::Result<(Vec<Series>, Vec<Series>, usize)> {
    let (mut loss, mut metric, mut epochs) = (Vec::new(), Vec::new(), 0);
    for (i, (id, label)) in trials.iter().enumerate() {
        let rows = store.epochs(*id)?;
        epochs += rows.len();
        let color = PALETTE[i % PALETTE.len()];
        let line = |name: String, f: &dyn Fn(&crate::store::EpochRecord) -> f64, dashed| Series {
            name,
            points: rows.iter().map(|e| (e.epoch as f64, f(e))).collect(),
            color,
            dashed,
        };
        loss.push(line(format!("train {label}"), &|e| e.train_loss, false));
        loss.push(line(format!("valid {label}"), &|e| e.valid_loss, true));
        metric.push(line(format!("F1 {label}"), &|e| e.valid_macro_f1, false));
        metric.push(line(format!("acc {label}"), &|e| e.valid_accuracy, true));
    }
    Ok((loss, metric, epochs))
}

/// The running trials' curves so far (each new epoch shows on the next poll).
fn running(store: &Store, e: &ExperimentRow) -> anyhow::Result<Markup> {
    let leases = store.running(e.id)?;
    if leases.is_empty() {
        return Ok(html! {});
    }
    let ids: Vec<(i64, String)> = leases
        .iter()
        .take(RUNNING)
        .map(|l| (l.id, format!("trial {}", l.id)))
        .collect();
    let (loss, metric, epochs) = trial_lines(store, &ids)?;
    Ok(html! {
        h2 { "Running trials" }
        p.muted { (leases.len()) " running: " @for l in &leases { a href={ "/trials/" (l.id) } { (l.id) } " " } }
        div.charts.running-curves data-epochs=(epochs) {
            (raw(line_chart("Running trials: loss (train solid, valid dashed)", "epoch", "loss", &loss)))
            (raw(line_chart("Running trials: valid F1 (solid), accuracy (dashed)", "epoch", "valid metric", &metric)))
        }
    })
}

/// Curves of the leaderboard's first configurations, one line per seed.
fn curves(store: &Store, boards: &[Leaderboard]) -> anyhow::Result<Markup> {
    let Some(board) = boards.first() else {
        return Ok(html! {});
    };
    let rows: Vec<_> = boards
        .iter()
        .flat_map(|b| &b.rows)
        .take(CURVE_ROWS)
        .collect();
    if rows.is_empty() {
        return Ok(html! {});
    }
    let mut parts = Vec::new();
    for row in rows {
        let ids: Vec<(i64, String)> = row
            .trials
            .iter()
            .map(|&t| (t, format!("trial {t}")))
            .collect();
        let (loss, metric, _) = trial_lines(store, &ids)?;
        parts.push((
            crate::report::row_label(&board.group_by, &row.group),
            loss,
            metric,
        ));
    }
    Ok(html! {
        h2 { "Training curves" }
        p.muted { "The first " (parts.len()) " configurations of the leaderboard, one colour per seed." }
        @for (name, loss, metric) in &parts {
            h3 { (name) }
            div.charts {
                (raw(line_chart("Loss (train solid, valid dashed)", "epoch", "loss", loss)))
                (raw(line_chart("Valid macro F1 (solid), accuracy (dashed)", "epoch", "valid metric", metric)))
            }
        }
    })
}

/// Parallel coordinates and parameter effects over the done trials.
fn parameters(store: &Store, e: &ExperimentRow, board: &Leaderboard) -> anyhow::Result<Markup> {
    let params = analysis::parameters(e, board);
    if params.is_empty() {
        return Ok(html! {});
    }
    let samples = analysis::samples(store, e, board, &params)?;
    if samples.is_empty() {
        return Ok(html! {});
    }
    let column = board.columns.first().cloned().unwrap_or_default();
    Ok(html! {
        h2 { "Parameters" }
        div.charts { (raw(analysis::parallel_chart(&samples, &params, board))) }
        h3 { "Effect of each parameter on " (column) }
        p.muted { "The mean over the done trials with each value (the other parameters as sampled), with its 95% Student-t interval." }
        div.charts { @for c in analysis::effect_charts(&samples, &params, &column) { (raw(c)) } }
    })
}
