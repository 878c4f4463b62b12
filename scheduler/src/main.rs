//! `trawl-scheduler`: a cluster's scheduler.
use anyhow::Result;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use trawl_scheduler::SchedulerConfig;

/// The trawl scheduler: takes jobs, leases shard tasks to workers, merges
/// results. State lives in sled under --data.
#[derive(Parser, Debug)]
#[command(
    name = "trawl-scheduler",
    version,
    about,
    after_help = "Example:\n  trawl-scheduler --data /var/lib/trawl --listen 127.0.0.1:50051"
)]
struct Args {
    /// Data directory (sled state, evidence store).
    #[arg(long, env = "TRAWL_DATA")]
    data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "TRAWL_LISTEN")]
    listen: Option<SocketAddr>,
    /// Optional TOML configuration file (flags and environment override it).
    #[arg(long, env = "TRAWL_CONFIG")]
    config: Option<PathBuf>,
    /// Lease duration in milliseconds.
    #[arg(long, env = "TRAWL_LEASE_MS")]
    lease_ms: Option<u64>,
    /// Worker heartbeat interval in milliseconds.
    #[arg(long, env = "TRAWL_HEARTBEAT_MS")]
    heartbeat_ms: Option<u64>,
    /// Attempts before a task is quarantined.
    #[arg(long, env = "TRAWL_MAX_ATTEMPTS")]
    max_attempts: Option<u32>,
    /// Log filter.
    #[arg(long, env = "TRAWL_LOG", default_value = "info")]
    log: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trawl-scheduler: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<()> {
    let mut cfg = match &args.config {
        Some(p) => SchedulerConfig::from_file(p)?,
        None => SchedulerConfig::default(),
    };
    if let Some(d) = args.data {
        cfg.data_dir = d;
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(v) = args.lease_ms {
        cfg.lease_ms = v;
    }
    if let Some(v) = args.heartbeat_ms {
        cfg.heartbeat_ms = v;
    }
    if let Some(v) = args.max_attempts {
        cfg.max_attempts = v.max(1);
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let s2 = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            tracing::info!("shutting down");
            s2.cancel();
        });
        trawl_scheduler::run(cfg, shutdown).await
    })
}
