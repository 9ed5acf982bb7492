//! `lab ui`: a live dashboard over the store, for watching sweeps while they
//! run. Server-rendered HTML (maud, escaping by default) with charts from
//! `report`'s SVG module, a little vanilla JS that polls a change stamp and
//! swaps the live parts of a page, and the JSON endpoints the page uses.
//!
//! Read-only connections (WAL: a reader never blocks `lab run`, a worker or
//! `lab merge`); the only writes are tags and notes. Every store access runs
//! on the blocking pool.

mod analysis;
mod api;
mod auth;
mod failure;
mod pages;
mod source;

pub use source::Source;

use crate::store::Store;
use axum::middleware;
use axum::routing::{get, post, put};
use axum::Router;
use failure::Failure;
use std::future::Future;
use std::sync::Arc;

/// What `lab ui` serves.
pub struct UiOptions {
    /// The store, or a directory of Slurm shards (read-only).
    pub source: Source,
    /// When set, every route needs it: `Authorization: Bearer T`, or a browser
    /// opens `/?token=T` once and keeps it in a cookie.
    pub token: Option<String>,
    /// How the store was named on the command line (`--db`), for the commands
    /// the trial page offers to copy; `None`: the default, left out.
    pub db_arg: Option<String>,
}

struct Ui {
    source: Source,
    token: Option<String>,
    db_arg: Option<String>,
}

type Shared = Arc<Ui>;

impl Ui {
    /// The store's path or the shard directory, as the pages name it.
    fn source_name(&self) -> String {
        match &self.source {
            Source::Db(path) => path.display().to_string(),
            Source::Shards(view) => view.dir().display().to_string(),
        }
    }

    /// Runs `f` with a read connection on the blocking pool.
    async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    {
        let ui = self.clone();
        tokio::task::spawn_blocking(move || {
            let store = ui.source.read()?;
            f(&store)
        })
        .await
        .map_err(|e| Failure::internal(format!("a store read stopped: {e}")))?
        .map_err(Failure::from)
    }

    /// Runs `f` with a write connection (tags and notes) on the blocking pool.
    async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    {
        let ui = self.clone();
        tokio::task::spawn_blocking(move || {
            let store = ui.source.write()?;
            f(&store)
        })
        .await
        .map_err(|e| Failure::internal(format!("a store write stopped: {e}")))?
        .map_err(Failure::from)
    }
}

/// The pages, their live fragments and the JSON API (README "lab ui").
pub fn router(opts: UiOptions) -> Router {
    let ui: Shared = Arc::new(Ui {
        source: opts.source,
        token: opts.token.filter(|t| !t.is_empty()),
        db_arg: opts.db_arg,
    });
    Router::new()
        .route("/", get(pages::experiments::page))
        .route("/live/experiments", get(pages::experiments::live))
        .route("/experiments/{name}", get(pages::experiment::page))
        .route("/experiments/{name}/live", get(pages::experiment::live))
        .route("/trials/{id}", get(pages::trial::page))
        .route("/trials/{id}/live", get(pages::trial::live))
        .route("/trials/{id}/errors", get(pages::trial::errors))
        .route("/trials/{id}/attention", get(pages::trial::attention))
        .route("/trials/{id}/artifacts/{kind}", get(pages::trial::artifact))
        .route("/compare", get(pages::compare::page))
        .route("/assets/ui.js", get(pages::script))
        .route("/healthz", get(api::health))
        .route("/api/stamp", get(api::stamp))
        .route("/api/experiments", get(api::experiments))
        .route("/api/experiments/{name}", get(api::experiment))
        .route("/api/experiments/{name}/stamp", get(api::experiment_stamp))
        .route("/api/experiments/{name}/trials", get(api::trials))
        .route("/api/experiments/{name}/tags", post(api::tag_experiment))
        .route(
            "/api/experiments/{name}/tags/{tag}",
            axum::routing::delete(api::untag_experiment),
        )
        .route("/api/experiments/{name}/note", put(api::note_experiment))
        .route("/api/trials/{id}", get(api::trial))
        .route("/api/trials/{id}/stamp", get(api::trial_stamp))
        .route("/api/trials/{id}/tags", post(api::tag_trial))
        .route(
            "/api/trials/{id}/tags/{tag}",
            axum::routing::delete(api::untag_trial),
        )
        .route("/api/trials/{id}/note", put(api::note_trial))
        .fallback(|| async { Failure::not_found("no such page") })
        .layer(middleware::from_fn_with_state(ui.clone(), auth::check))
        .with_state(ui)
}

/// Serves `router(opts)` on `listener` until `stop` resolves; requests in
/// flight finish first.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: UiOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(opts))
        .with_graceful_shutdown(stop)
        .await?;
    Ok(())
}
