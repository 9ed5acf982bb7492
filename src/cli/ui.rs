//! `lab ui`: the live web dashboard over the store (or a shard directory).

use crate::ui::{Source, UiOptions};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// Require this token: `Authorization: Bearer TOKEN`, or open `/?token=TOKEN`
    /// once in the browser (kept in a cookie).
    #[arg(long)]
    token: Option<String>,
    /// Show a Slurm array's shard directory (`lab submit --shards`), read-only,
    /// instead of --db.
    #[arg(long, value_name = "DIR")]
    shards: Option<PathBuf>,
}

pub fn execute(args: Args, db: &Path) -> Result<i32> {
    let source = match &args.shards {
        Some(dir) => Source::shards(dir)?,
        None => Source::db(db)?,
    };
    let default_db = Path::new("runs/lab.db");
    let opts = UiOptions {
        source,
        token: args.token,
        db_arg: (args.shards.is_none() && db != default_db).then(|| db.display().to_string()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let shown = match &args.shards {
            Some(dir) => format!("shards in {}", dir.display()),
            None => db.display().to_string(),
        };
        tracing::info!(
            "lab ui for {shown} on http://{} (Ctrl-C or SIGTERM stops)",
            listener.local_addr()?
        );
        crate::ui::serve(listener, opts, crate::serve::stop_signal()).await?;
        tracing::info!("stopped");
        Ok(0)
    })
}
