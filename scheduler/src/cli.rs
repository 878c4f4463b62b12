//! Command-line front end of the scheduler, shared by the `trawl-scheduler`
//! binary and `trawl scheduler`.
use crate::SchedulerConfig;
use anyhow::Result;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The trawl scheduler: takes jobs, leases shard tasks to workers, merges
/// results. State lives in sled under --data.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Data directory (sled state, evidence store).
    #[arg(long, env = "TRAWL_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "TRAWL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Optional TOML configuration file (flags and environment override it).
    #[arg(long, env = "TRAWL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Lease duration in milliseconds.
    #[arg(long, env = "TRAWL_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// Worker heartbeat interval in milliseconds.
    #[arg(long, env = "TRAWL_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Attempts before a task is quarantined.
    #[arg(long, env = "TRAWL_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
}

/// The configuration `args` describe (file, then environment and flags).
///
/// # Errors
/// An unreadable or invalid configuration file.
pub fn config(args: &Args) -> Result<SchedulerConfig> {
    let mut cfg = match &args.config {
        Some(p) => SchedulerConfig::from_file(p)?,
        None => SchedulerConfig::default(),
    };
    if let Some(d) = &args.data {
        cfg.data_dir = d.clone();
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(v) = args.lease_ms {
        cfg.lease_ms = v.max(100);
    }
    if let Some(v) = args.heartbeat_ms {
        cfg.heartbeat_ms = v.max(10);
    }
    if let Some(v) = args.max_attempts {
        cfg.max_attempts = v.max(1);
    }
    Ok(cfg)
}

/// Serves until SIGINT or SIGTERM, then shuts down gracefully.
///
/// # Errors
/// As [`crate::run`].
pub async fn run(args: Args) -> Result<()> {
    let cfg = config(&args)?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let s2 = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutting down");
        s2.cancel();
    });
    crate::run(cfg, shutdown).await
}
