//! Command-line front end of the worker, shared by the `trawl-worker` binary
//! and `trawl worker`.
use crate::WorkerConfig;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// A trawl worker: leases shard tasks from a scheduler and runs every
/// requested analysis on them.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Scheduler URL.
    #[arg(
        long,
        env = "TRAWL_SCHEDULER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub scheduler: String,
    /// Tasks run at once (default: cores + 1).
    #[arg(long, env = "TRAWL_SLOTS")]
    pub slots: Option<usize>,
    /// Analysis threads (default: one per core).
    #[arg(long, env = "TRAWL_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// A folder of evidence this node reads locally (repeatable).
    #[arg(
        long = "evidence-root",
        env = "TRAWL_EVIDENCE_ROOTS",
        value_delimiter = ','
    )]
    pub evidence_roots: Vec<PathBuf>,
    /// Keep this worker id across restarts.
    #[arg(long, env = "TRAWL_WORKER_ID")]
    pub worker_id: Option<trawl_core::WorkerId>,
    /// Seconds running tasks may take to finish on shutdown.
    #[arg(long, default_value_t = 30)]
    pub drain_seconds: u64,
    /// Fault injection for tests and drills: wait this long (ms) before each
    /// task.
    #[arg(long, default_value_t = 0, hide = true)]
    pub fault_delay_ms: u64,
    /// Enrolment bundle directory (ca.pem, cert.pem, key.pem from
    /// `trawl-scheduler worker enroll`): mutual TLS with an initialised
    /// scheduler (then the URL is https://).
    #[arg(long, env = "TRAWL_WORKER_TLS")]
    pub tls: Option<PathBuf>,
    /// The site this worker runs at (a label such as `paris-lab`): the
    /// dashboard's capacity map groups workers by site.
    #[arg(long, env = "TRAWL_SITE")]
    pub site: Option<String>,
    /// A specialised capability to announce (repeatable), such as
    /// `gpu:A100` or `format:aff4`.
    #[arg(long = "capability")]
    pub capabilities: Vec<String>,
    /// How raw and split images are read: `mmap` (default) or `pread`
    /// (never maps the evidence).
    #[arg(long, env = "TRAWL_READ_MODE", default_value = "mmap")]
    pub read_mode: trawl_evidence::ReadMode,
    /// Optional TOML configuration file (keys as the flags).
    #[arg(long, env = "TRAWL_WORKER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve Prometheus metrics (plain HTTP `GET /metrics`: per-analysis
    /// bytes and time, tasks, slots, RSS; counts only) on this address.
    #[arg(long, env = "TRAWL_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Serve the gRPC health protocol (plaintext, for Kubernetes probes)
    /// on this address: SERVING while taking work, NOT_SERVING once
    /// draining.
    #[arg(long, env = "TRAWL_HEALTH_LISTEN")]
    pub health_listen: Option<std::net::SocketAddr>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct FileConfig {
    scheduler: Option<String>,
    slots: Option<usize>,
    threads: Option<usize>,
    evidence_roots: Option<Vec<PathBuf>>,
    worker_id: Option<trawl_core::WorkerId>,
    tls: Option<PathBuf>,
    site: Option<String>,
    capabilities: Option<Vec<String>>,
    object_store: Option<trawl_objstore::Settings>,
    metrics_listen: Option<std::net::SocketAddr>,
    health_listen: Option<std::net::SocketAddr>,
}

/// The worker configuration `args` describe (file, then environment and
/// flags).
///
/// # Errors
/// An unreadable or invalid configuration file.
pub fn config(args: Args) -> Result<WorkerConfig> {
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
    cfg.tls = args.tls.or(file.tls);
    trawl_evidence::set_read_mode(args.read_mode);
    cfg.site = args.site.or(file.site).unwrap_or_default();
    cfg.capabilities = if args.capabilities.is_empty() {
        file.capabilities.unwrap_or_default()
    } else {
        args.capabilities
    };
    if cfg.site.len() > 128 || cfg.site.chars().any(char::is_control) {
        anyhow::bail!("--site: at most 128 characters, no control characters");
    }
    if let Some(c) = cfg
        .capabilities
        .iter()
        .find(|c| c.is_empty() || c.len() > 128 || c.starts_with("ruleset:"))
    {
        anyhow::bail!(
            "--capability {c:?}: 1 to 128 characters, not ruleset: (reported by the worker itself)"
        );
    }
    cfg.object_store = file.object_store.unwrap_or_default();
    cfg.metrics_listen = args.metrics_listen.or(file.metrics_listen);
    cfg.health_listen = args.health_listen.or(file.health_listen);
    cfg.drain_timeout = Duration::from_secs(args.drain_seconds);
    cfg.task_delay = Duration::from_millis(args.fault_delay_ms);
    Ok(cfg)
}

/// Runs a worker until SIGINT or SIGTERM, then drains.
///
/// # Errors
/// As [`crate::run`].
pub async fn run(args: Args) -> Result<()> {
    let cfg = config(args)?;
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
        tracing::info!("draining");
        s2.cancel();
    });
    crate::run(cfg, shutdown).await
}
