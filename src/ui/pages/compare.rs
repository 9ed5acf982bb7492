//! `/compare?experiment=E&a=A&b=B`: two trials or configurations (`3`, or
//! `model.cell=gru,model.hidden=128` as `lab diff` takes them): their curves
//! overlaid, their test metrics side by side with the difference A − B, and `lab
//! diff`'s paired test, contingency table and disagreeing rows.

use super::experiments::urlencode;
use super::{layout, raw, respond};
use crate::report::diff::{diff, resolve, Diff, DiffOptions, Side};
use crate::report::svg::{line_chart, Series, PALETTE};
use crate::store::{ExperimentRow, Store};
use crate::ui::failure::BadRequest;
use crate::ui::Shared;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The two sides and where configurations are looked up.
#[derive(Debug, Deserialize)]
pub struct Pick {
    /// Experiment name (needed for a configuration; else the first trial's).
    pub experiment: Option<String>,
    /// Side A: a trial id or `key=value[,key=value…]`.
    pub a: String,
    /// Side B.
    pub b: String,
    /// `lab diff`'s metric (a confusion-matrix metric); default macro_f1.
    pub metric: Option<String>,
}

/// `GET /compare`.
pub async fn page(State(ui): State<Shared>, Query(pick): Query<Pick>) -> Response {
    respond(ui.read(move |store| render(store, &pick)).await)
}

fn bad(message: String) -> anyhow::Error {
    BadRequest(StatusCode::BAD_REQUEST, message).into()
}

fn render(store: &Store, pick: &Pick) -> anyhow::Result<Markup> {
    let a = Side::parse(&pick.a).map_err(|e| bad(format!("a: {e:#}")))?;
    let b = Side::parse(&pick.b).map_err(|e| bad(format!("b: {e:#}")))?;
    let experiment = experiment(store, pick, &a)?;
    let ta = resolve(store, &a, experiment.as_ref())
        .map_err(|e| bad(format!("a = {}: {e:#}", pick.a)))?;
    let tb = resolve(store, &b, experiment.as_ref())
        .map_err(|e| bad(format!("b = {}: {e:#}", pick.b)))?;
    let opts = DiffOptions {
        metric: pick.metric.clone().unwrap_or_else(|| "macro_f1".into()),
        ..Default::default()
    };
    let diffed = diff(store, &a, &b, experiment.as_ref(), &opts);
    let crumbs = match &experiment {
        Some(e) => {
            html! { " / " a href={ "/experiments/" (urlencode(&e.name)) } { (e.name) } " / compare" }
        }
        None => html! { " / compare" },
    };
    let body = html! {
        h1 { "A: " (pick.a) " against B: " (pick.b) }
        p.muted { "A's trials: " (ids(&ta)) "; B's trials: " (ids(&tb)) "." }
        (curves(store, &ta, &tb)?)
        (metrics(store, &ta, &tb)?)
        h2 { "Paired comparison on the same rows (lab diff)" }
        @match &diffed {
            Ok(d) => (diff_part(d)),
            Err(e) => p.error { "No paired comparison: " (format!("{e:#}")) },
        }
    };
    Ok(layout("Compare", crumbs, body))
}

fn ids(trials: &[i64]) -> Markup {
    html! { @for (i, t) in trials.iter().enumerate() { @if i > 0 { ", " } a href={ "/trials/" (t) } { (t) } } }
}

fn experiment(store: &Store, pick: &Pick, a: &Side) -> anyhow::Result<Option<ExperimentRow>> {
    if let Some(name) = pick.experiment.as_deref().filter(|n| !n.is_empty()) {
        return Ok(Some(super::experiment::experiment(store, name)?));
    }
    let Side::Trial(id) = a else { return Ok(None) };
    let Some(t) = store.trial(*id)? else {
        return Ok(None);
    };
    store.experiment(t.experiment_id)
}

fn curves(store: &Store, ta: &[i64], tb: &[i64]) -> anyhow::Result<Markup> {
    let (mut loss, mut f1) = (Vec::new(), Vec::new());
    for (side, trials, color, dashed) in [("A", ta, PALETTE[0], false), ("B", tb, PALETTE[1], true)]
    {
        for &t in trials {
            let epochs = store.epochs(t)?;
            let line = |what: &str, f: &dyn Fn(&crate::store::EpochRecord) -> f64| Series {
                name: format!("{side} {what} {t}"),
                points: epochs.iter().map(|e| (e.epoch as f64, f(e))).collect(),
                color,
                dashed,
            };
            loss.push(line("valid loss", &|e| e.valid_loss));
            f1.push(line("valid F1", &|e| e.valid_macro_f1));
        }
    }
    Ok(html! {
        h2 { "Curves (A solid, B dashed)" }
        div.charts {
            (raw(line_chart("Valid loss", "epoch", "loss", &loss)))
            (raw(line_chart("Valid macro F1", "epoch", "macro F1", &f1)))
        }
    })
}

/// Test metrics averaged over each side's trials, and A − B (as `lab diff`).
fn metrics(store: &Store, ta: &[i64], tb: &[i64]) -> anyhow::Result<Markup> {
    let mean = |trials: &[i64]| -> anyhow::Result<BTreeMap<String, f64>> {
        let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for &t in trials {
            for m in store.metrics(t)?.into_iter().filter(|m| m.split == "test") {
                let s = sums.entry(m.name).or_default();
                s.0 += m.value;
                s.1 += 1;
            }
        }
        Ok(sums
            .into_iter()
            .map(|(k, (s, n))| (k, s / n as f64))
            .collect())
    };
    let (ma, mb) = (mean(ta)?, mean(tb)?);
    let names: Vec<&String> = ma.keys().filter(|k| mb.contains_key(*k)).collect();
    Ok(html! {
        h2 { "Test metrics (mean over each side's trials)" }
        table.sortable.metric-diff {
            tr { th.k { "metric" } th { "A" } th { "B" } th { "A − B" } }
            @for k in names {
                tr {
                    td.k { (k) } td { (format!("{:.4}", ma[k])) } td { (format!("{:.4}", mb[k])) }
                    td { (format!("{:+.4}", ma[k] - mb[k])) }
                }
            }
        }
    })
}

fn diff_part(d: &Diff) -> Markup {
    let c = &d.contingency;
    html! {
        p {
            (d.metric) " on " (d.rows) " " (d.split) " rows: A " (format!("{:.4}", d.a.metric)) ", B " (format!("{:.4}", d.b.metric))
            ", A − B = " (format!("{:+.4}", d.difference))
            @if let Some(p) = &d.paired {
                " (" (format!("{:.0}", d.level * 100.0)) "% interval [" (format!("{:+.4}", p.interval.low)) ", " (format!("{:+.4}", p.interval.high))
                "], paired bootstrap p = " (format!("{:.3}", p.p_value)) ")"
            }
            @if let Some(p) = d.mcnemar_p { "; McNemar's exact p = " (format!("{p:.3}")) }
            "."
        }
        table.contingency {
            tr { th {} th { "B right" } th { "B wrong" } }
            tr { th { "A right" } td { (c.both_right) } td { (c.only_a) } }
            tr { th { "A wrong" } td { (c.only_b) } td { (c.both_wrong) } }
        }
        h3 { (d.disagreeing) " rows where A and B disagree" }
        @if !d.disagreements.is_empty() {
            table.disagreements {
                tr { th { "row" } th.k { "true" } th.k { "A" } th.k { "B" } th.k { "text" } }
                @for r in &d.disagreements {
                    tr {
                        td { (r.row) } td.k { (r.truth) }
                        td.k { (r.a) " (" (format!("{:.2}", r.a_probability)) ")" }
                        td.k { (r.b) " (" (format!("{:.2}", r.b_probability)) ")" }
                        td.k.text { (r.text.as_deref().unwrap_or("-")) }
                    }
                }
            }
        }
        @for n in &d.notes { p.muted { (n) } }
    }
}
