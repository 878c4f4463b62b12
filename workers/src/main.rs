//! `trawl-worker`: a worker node.
use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use trawl_worker::WorkerConfig;

/// A trawl worker: leases shard tasks from a scheduler and runs every
/// requested analysis on them.
#[derive(Parser, Debug)]
#[command(
    name = "trawl-worker",
    version,
    about,
    after_help = "Example:\n  trawl-worker --scheduler http://10.0.0.5:50051 --slots 4 --evidence-root /mnt/evidence"
)]
struct Args {
    /// Scheduler URL.
    #[arg(
        long,
        env = "TRAWL_SCHEDULER",
        default_value = "http://127.0.0.1:50051"
    )]
    scheduler: String,
    /// Tasks run at once (default: cores + 1).
    #[arg(long, env = "TRAWL_SLOTS")]
    slots: Option<usize>,
    /// Analysis threads (default: one per core).
    #[arg(long, env = "TRAWL_THREADS", default_value_t = 0)]
    threads: usize,
    /// A folder of evidence this node reads locally (repeatable).
    #[arg(
        long = "evidence-root",
        env = "TRAWL_EVIDENCE_ROOTS",
        value_delimiter = ','
    )]
    evidence_roots: Vec<PathBuf>,
    /// Keep this worker id across restarts.
    #[arg(long, env = "TRAWL_WORKER_ID")]
    worker_id: Option<String>,
    /// Seconds running tasks may take to finish on shutdown.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
    /// Optional TOML configuration file (keys as the flags).
    #[arg(long, env = "TRAWL_WORKER_CONFIG")]
    config: Option<PathBuf>,
    /// Log filter.
    #[arg(long, env = "TRAWL_LOG", default_value = "info")]
    log: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct FileConfig {
    scheduler: Option<String>,
    slots: Option<usize>,
    threads: Option<usize>,
    evidence_roots: Option<Vec<PathBuf>>,
    worker_id: Option<String>,
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
            eprintln!("trawl-worker: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<()> {
    let file: FileConfig = match &args.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => FileConfig::default(),
    };
    let mut cfg = WorkerConfig {
        scheduler: file.scheduler.unwrap_or(args.scheduler),
        ..Default::default()
    };
    if let Some(s) = args.slots.or(file.slots) {
        cfg.slots = s.max(1);
    }
    cfg.threads = if args.threads > 0 {
        args.threads
    } else {
        file.threads.unwrap_or(0)
    };
    cfg.evidence_roots = if args.evidence_roots.is_empty() {
        file.evidence_roots.unwrap_or_default()
    } else {
        args.evidence_roots
    };
    cfg.worker_id = args.worker_id.or(file.worker_id);
    cfg.drain_timeout = Duration::from_secs(args.drain_seconds);
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
            tracing::info!("draining");
            s2.cancel();
        });
        trawl_worker::run(cfg, shutdown).await
    })
}
