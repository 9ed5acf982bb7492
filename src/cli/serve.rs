//! `lab serve TRIAL` / `-e EXPERIMENT` / `--model DIR`: a trained model over HTTP.

use super::args::{DeviceParser, UsageError};
use crate::inference::export;
use crate::runner::device;
use crate::serve::{Limits, Served};
use crate::store::Store;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Serve this trained trial (as `lab compare` lists it).
    #[arg(value_name = "TRIAL", conflicts_with_all = ["experiment", "model"])]
    trial: Option<i64>,
    /// Serve this trained trial (the same as the positional TRIAL).
    #[arg(
        long = "trial",
        value_name = "TRIAL",
        conflicts_with_all = ["trial", "experiment", "model"]
    )]
    trial_flag: Option<i64>,
    /// Serve the best trial of this experiment (--best is the older name).
    #[arg(
        short = 'e',
        long = "experiment",
        visible_alias = "best",
        value_name = "EXPERIMENT",
        conflicts_with = "model"
    )]
    experiment: Option<String>,
    /// Metric that picks the best trial (with --experiment).
    #[arg(long, default_value = "macro_f1", requires = "experiment")]
    metric: String,
    /// Serve a directory written by `lab export` (no database needed).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Address to listen on; loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on /v1/*.
    #[arg(long)]
    token: Option<String>,
    /// Largest request body in bytes (and a `.gz` upload once decompressed); 413 above.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most texts in one /v1/predict request; 413 above.
    #[arg(long, default_value_t = Limits::default().max_batch)]
    max_batch: usize,
    /// Most data rows in one /v1/predict/csv upload; 413 above.
    #[arg(long, default_value_t = Limits::default().max_rows)]
    max_rows: usize,
    /// Longest text in bytes (a /v1/predict text, an upload's text field); 413 above.
    #[arg(long, default_value_t = Limits::default().max_text_bytes)]
    max_text_bytes: usize,
    /// Seconds a request may take, upload and answer included; 503 past it.
    #[arg(long, default_value_t = Limits::default().request_timeout.as_secs())]
    request_timeout_secs: u64,
    /// Most /v1/* requests answered at once; 503 above.
    #[arg(long, default_value_t = Limits::default().max_in_flight)]
    max_in_flight: usize,
    /// Most open connections; one more is answered 503 and closed.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Seconds a connection may take to send a request's headers, sit idle between
    /// requests or leave an answer unread before it is closed.
    #[arg(long, default_value_t = Limits::default().idle_timeout.as_secs())]
    idle_timeout_secs: u64,
    /// Threads answering requests, and threads running the model (default: one
    /// per CPU core each).
    #[arg(long)]
    workers: Option<usize>,
    /// The device to run the model on.
    #[arg(long, default_value = "cpu", value_parser = DeviceParser)]
    device: String,
}

pub fn execute(args: Args, db: &Path) -> Result<i32> {
    // A server runs for days: memory a burst of requests freed goes back to the OS.
    crate::return_freed_memory();
    let device = device::select(&args.device)?;
    let trial = args.trial.or(args.trial_flag);
    let (model, info) = match (&args.model, trial, &args.experiment) {
        (Some(dir), _, _) => export::load_exported(dir, &device)?,
        (None, Some(trial), _) => {
            super::require_db(db)?;
            export::load_trial(&Store::open(db)?, db, trial, &device)?
        }
        (None, None, Some(experiment)) => {
            super::require_db(db)?;
            let store = Store::open(db)?;
            let trial = export::best_trial(&store, experiment, &args.metric)?;
            export::load_trial(&store, db, trial, &device)?
        }
        (None, None, None) => {
            return Err(
                UsageError("say what to serve: TRIAL, -e EXPERIMENT or --model DIR".into()).into(),
            )
        }
    };
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_batch: args.max_batch,
        max_rows: args.max_rows,
        max_text_bytes: args.max_text_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        max_in_flight: args.max_in_flight,
        max_connections: args.max_connections,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
    };
    limits.check().map_err(UsageError)?;
    let served = Served {
        model,
        info,
        token: args.token.filter(|t| !t.is_empty()),
        limits,
        threads: args.workers.unwrap_or(0),
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        runtime
            .worker_threads(n.max(1))
            .max_blocking_threads(n.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let trial = served
            .info
            .trial
            .map(|t| format!(", trial {t}"))
            .unwrap_or_default();
        tracing::info!(
            "serving experiment {}{trial} on http://{} (Ctrl-C or SIGTERM stops)",
            served.info.experiment,
            listener.local_addr()?
        );
        crate::serve::serve(listener, served, crate::serve::stop_signal()).await?;
        tracing::info!("stopped");
        Ok(0)
    })
}
