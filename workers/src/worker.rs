//! The worker's main loop.

use crate::exec::ExecContext;
use anyhow::{Context, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use trawl_proto::connect::AuthChannel as Channel;
use trawl_proto::v1::{self, cluster_client::ClusterClient, evidence_client::EvidenceClient};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Scheduler URL, e.g. `http://127.0.0.1:50051`. Ignored when
    /// `channel` is given.
    pub scheduler: String,
    /// A ready channel to the scheduler (the embedded scan's in-process
    /// transport) instead of connecting to `scheduler`; calls carry no
    /// token and no client certificate.
    pub channel: Option<tonic::transport::Channel>,
    /// Tasks run at once.
    pub slots: usize,
    /// Analysis threads (0: one per core). Ignored when `pool` is given.
    pub threads: usize,
    /// Evidence this node reads locally must lie under these roots (empty:
    /// any path that exists here).
    pub evidence_roots: Vec<PathBuf>,
    /// Keep this id across restarts (empty: assigned by the scheduler).
    pub worker_id: Option<trawl_core::WorkerId>,
    pub hostname: String,
    /// Grace period for running tasks on shutdown before leases are handed
    /// back.
    pub drain_timeout: Duration,
    /// A shared analysis pool (embedded mode runs several workers on one).
    pub pool: Option<Arc<rayon::ThreadPool>>,
    /// Largest gRPC message.
    pub max_message_bytes: usize,
    /// Fault injection for tests and drills: wait this long before running
    /// each task (makes tasks long enough to kill a worker in the middle).
    pub task_delay: Duration,
    /// Enrolment bundle for mutual TLS (ca.pem, cert.pem, key.pem), made
    /// by `trawl-scheduler worker enroll`; required by an initialised
    /// scheduler.
    pub tls: Option<PathBuf>,
    /// The site this worker runs at (`--site`): the capacity map groups
    /// workers by it.
    pub site: String,
    /// Specialised capabilities announced beyond what every worker does
    /// (`--capability gpu:NAME`, ...).
    pub capabilities: Vec<String>,
    /// Object storage (`[object_store]` in the configuration file), on top
    /// of the `AWS_*`/`GOOGLE_*`/`AZURE_*` environment: with evidence roots
    /// such as `s3://bucket/prefix/`, the worker reads those objects by
    /// byte ranges itself instead of through the scheduler.
    pub object_store: trawl_objstore::Settings,
    /// Prometheus metrics address (`--metrics-listen`; plain HTTP
    /// `GET /metrics`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// gRPC health address (`--health-listen`; plaintext
    /// `grpc.health.v1`, NOT_SERVING once draining).
    pub health_listen: Option<std::net::SocketAddr>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            scheduler: "http://127.0.0.1:50051".into(),
            channel: None,
            slots: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                + 1,
            threads: 0,
            evidence_roots: Vec::new(),
            worker_id: None,
            hostname: hostname(),
            drain_timeout: Duration::from_secs(30),
            pool: None,
            max_message_bytes: 1 << 30,
            task_delay: Duration::ZERO,
            tls: None,
            site: String::new(),
            capabilities: Vec::new(),
            object_store: trawl_objstore::Settings::default(),
            metrics_listen: None,
            health_listen: None,
        }
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn memory_bytes() -> u64 {
    meminfo("MemTotal:")
}

/// Memory available for new work (`MemAvailable`).
fn memory_free_bytes() -> u64 {
    meminfo("MemAvailable:")
}

/// What every worker of this build can do, with the announced extras:
/// YARA, the evidence containers it opens.
fn capabilities(extra: &[String]) -> Vec<String> {
    let mut c: Vec<String> = ["yara", "format:raw", "format:split", "format:ewf"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    c.extend(extra.iter().cloned());
    c.sort();
    c.dedup();
    c
}

fn meminfo(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

struct Running {
    cancel: Arc<AtomicBool>,
}

struct Shared {
    cluster: ClusterClient<Channel>,
    worker_id: Mutex<String>,
    running: Mutex<HashMap<String, Running>>,
    finished: Notify,
    need_register: AtomicBool,
    task_delay: Duration,
    /// Set on shutdown: no new tasks.
    draining: AtomicBool,
    /// Metrics and health (set once the endpoints are up).
    observer: std::sync::OnceLock<Arc<crate::observe::Observer>>,
}

fn is_transient(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Internal
            | Code::Aborted
    )
}

/// Runs a worker until `shutdown`, then drains.
///
/// # Errors
/// An invalid scheduler URL or analysis pool failure.
pub async fn run(cfg: WorkerConfig, shutdown: CancellationToken) -> Result<()> {
    let channel = match &cfg.channel {
        Some(ch) => trawl_proto::connect::without_token(ch.clone()),
        None => {
            let connect = trawl_proto::connect::ConnectOptions {
                url: cfg.scheduler.clone(),
                ca: cfg.tls.as_ref().map(|d| d.join("ca.pem")),
                identity: cfg
                    .tls
                    .as_ref()
                    .map(|d| (d.join("cert.pem"), d.join("key.pem"))),
                token: None,
            };
            connect.auth_channel().map_err(|e| anyhow::anyhow!(e))?
        }
    };
    let max = cfg.max_message_bytes;
    let cluster = ClusterClient::new(channel.clone())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let evidence = EvidenceClient::new(channel.clone()).max_decoding_message_size(16 << 20);
    let rules = trawl_proto::v1::rules_client::RulesClient::new(channel)
        .max_decoding_message_size(64 << 20);
    let pool = match &cfg.pool {
        Some(p) => p.clone(),
        None => Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(cfg.threads)
                .thread_name(|i| format!("trawl-analysis-{i}"))
                .build()
                .context("starting the analysis pool")?,
        ),
    };
    if !trawl_evidence::remote::has_remote_backend() {
        trawl_objstore::install(cfg.object_store.clone())
            .context("starting the object-store client")?;
    }
    let ctx = Arc::new(ExecContext::new(
        pool,
        cfg.evidence_roots.clone(),
        evidence,
        rules,
        tokio::runtime::Handle::current(),
    ));
    let shared = Arc::new(Shared {
        cluster,
        worker_id: Mutex::new(
            cfg.worker_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        running: Mutex::new(HashMap::new()),
        finished: Notify::new(),
        need_register: AtomicBool::new(true),
        task_delay: cfg.task_delay,
        draining: AtomicBool::new(false),
        observer: std::sync::OnceLock::new(),
    });
    let observe_stop = CancellationToken::new();
    let weak = Arc::downgrade(&shared);
    let observer = crate::observe::Observer::start(
        cfg.metrics_listen,
        cfg.health_listen,
        cfg.slots,
        Arc::new(move || weak.upgrade().map_or(0, |s| s.running.lock().len())),
        observe_stop.clone(),
    )
    .await?;
    let _ = shared.observer.set(observer);
    // The endpoints stop when the worker returns, however it returns.
    let _observe_guard = observe_stop.drop_guard();

    let mut hb_interval = Duration::from_millis(2000);
    if !register(&shared, &cfg, &shutdown, &mut hb_interval).await {
        return Ok(());
    }
    let hb_stop = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat_loop(
        shared.clone(),
        ctx.clone(),
        hb_interval,
        hb_stop.clone(),
    ));

    while !shutdown.is_cancelled() {
        if shared.need_register.load(Ordering::Relaxed)
            && !register(&shared, &cfg, &shutdown, &mut hb_interval).await
        {
            break;
        }
        let free = cfg.slots.saturating_sub(shared.running.lock().len());
        if free == 0 {
            tokio::select! {
                _ = shared.finished.notified() => {},
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {},
            }
            continue;
        }
        let id = shared.worker_id.lock().clone();
        let mut client = shared.cluster.clone();
        let leased = tokio::select! {
            r = client.lease_tasks(v1::LeaseTasksRequest {
                worker_id: id,
                max_tasks: free as u32,
                wait_ms: 1_000,
            }) => r,
            _ = shutdown.cancelled() => break,
        };
        match leased {
            Ok(resp) => {
                let tasks = resp.into_inner().tasks;
                if tasks.is_empty() {
                    // The scheduler already waited for work (long poll).
                    continue;
                }
                for t in tasks {
                    spawn_task(shared.clone(), ctx.clone(), t);
                }
            }
            Err(s) if s.code() == Code::FailedPrecondition => {
                shared.need_register.store(true, Ordering::Relaxed);
            }
            Err(s) => {
                tracing::debug!(status = %s, "lease failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {},
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }

    // Drain: let running tasks finish for a while, then hand leases back.
    shared.draining.store(true, Ordering::Relaxed);
    if let Some(o) = shared.observer.get() {
        o.draining().await;
    }
    let deadline = tokio::time::Instant::now() + cfg.drain_timeout;
    while !shared.running.lock().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = shared.finished.notified() => {},
            _ = tokio::time::sleep_until(deadline) => {},
        }
    }
    let left: Vec<String> = {
        let r = shared.running.lock();
        for v in r.values() {
            v.cancel.store(true, Ordering::Relaxed);
        }
        r.keys().cloned().collect()
    };
    if !left.is_empty() {
        let id = shared.worker_id.lock().clone();
        let mut client = shared.cluster.clone();
        let _ = client
            .release_tasks(v1::ReleaseTasksRequest {
                worker_id: id,
                task_ids: left.clone(),
            })
            .await;
        tracing::info!(tasks = left.len(), "handed unfinished leases back");
    }
    hb_stop.cancel();
    let _ = heartbeat.await;
    Ok(())
}

async fn register(
    shared: &Arc<Shared>,
    cfg: &WorkerConfig,
    shutdown: &CancellationToken,
    hb: &mut Duration,
) -> bool {
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut client = shared.cluster.clone();
        let req = v1::RegisterRequest {
            worker: Some(v1::WorkerInfo {
                worker_id: shared.worker_id.lock().clone(),
                hostname: cfg.hostname.clone(),
                slots: cfg.slots as u32,
                memory_bytes: memory_bytes(),
                evidence_roots: cfg
                    .evidence_roots
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                version: trawl_core::TOOL_VERSION.into(),
                protocol: trawl_proto::PROTOCOL_VERSION as i32,
                site: cfg.site.clone(),
                cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
                memory_free_bytes: memory_free_bytes(),
                capabilities: capabilities(&cfg.capabilities),
                ..Default::default()
            }),
        };
        match client.register(req).await {
            Ok(r) => {
                let r = r.into_inner();
                tracing::info!(worker = %r.worker_id, "registered with the scheduler");
                *shared.worker_id.lock() = r.worker_id;
                *hb = Duration::from_millis(u64::from(r.heartbeat_interval_ms.max(50)));
                shared.need_register.store(false, Ordering::Relaxed);
                return true;
            }
            Err(s) if !is_transient(&s) => {
                tracing::error!(status = %s, "registration refused");
            }
            Err(s) => tracing::debug!(status = %s, "scheduler unreachable; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {},
            _ = shutdown.cancelled() => return false,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn heartbeat_loop(
    shared: Arc<Shared>,
    ctx: Arc<ExecContext>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut t = tokio::time::interval(every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = t.tick() => {},
        }
        let ids: Vec<String> = shared.running.lock().keys().cloned().collect();
        let id = shared.worker_id.lock().clone();
        let mut client = shared.cluster.clone();
        match client
            .heartbeat(v1::HeartbeatRequest {
                worker_id: id,
                task_ids: ids,
                free_slots: 0,
                memory_free_bytes: memory_free_bytes(),
                rule_sets: ctx.rule_sets(),
            })
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                if r.reregister {
                    shared.need_register.store(true, Ordering::Relaxed);
                }
                let running = shared.running.lock();
                for c in &r.cancel_task_ids {
                    if let Some(t) = running.get(c) {
                        tracing::info!(task = %c, "task cancelled by the scheduler");
                        t.cancel.store(true, Ordering::Relaxed);
                    }
                    if let Some(job) = c.rsplit_once(':').map(|(j, _)| j) {
                        ctx.forget(job);
                    }
                }
            }
            Err(s) => tracing::debug!(status = %s, "heartbeat failed"),
        }
    }
}

/// Runs a task in a slot; the report that ends it asks for the slot's next
/// task in the same round trip, so a busy worker needs one call per task.
fn spawn_task(shared: Arc<Shared>, ctx: Arc<ExecContext>, task: v1::Task) {
    let delay = shared.task_delay;
    let start = |shared: &Shared, task: &v1::Task| {
        let cancel = Arc::new(AtomicBool::new(false));
        shared.running.lock().insert(
            task.task_id.clone(),
            Running {
                cancel: cancel.clone(),
            },
        );
        cancel
    };
    let mut cancel = start(&shared, &task);
    tokio::spawn(async move {
        let mut task = task;
        loop {
            let until = tokio::time::Instant::now() + delay;
            while tokio::time::Instant::now() < until && !cancel.load(Ordering::Relaxed) {
                tokio::time::sleep_until(
                    until.min(tokio::time::Instant::now() + Duration::from_millis(50)),
                )
                .await;
            }
            let outcome = if cancel.load(Ordering::Relaxed) {
                Err("cancelled".to_string())
            } else {
                ctx.execute(&task, cancel.clone()).await
            };
            if let Some(o) = shared.observer.get()
                && !cancel.load(Ordering::Relaxed)
            {
                o.record(&outcome);
            }
            let next = if cancel.load(Ordering::Relaxed) {
                Vec::new()
            } else {
                let want = u32::from(!shared.draining.load(Ordering::Relaxed));
                report(&shared, &task, outcome, want).await
            };
            shared.running.lock().remove(&task.task_id);
            match next.into_iter().next() {
                Some(t) => {
                    cancel = start(&shared, &t);
                    task = t;
                }
                None => break,
            }
        }
        shared.finished.notify_waiters();
        shared.finished.notify_one();
    });
}

/// Reports until the scheduler takes the report (it may be restarting):
/// reports are idempotent, so retrying is always safe.
async fn report(
    shared: &Shared,
    task: &v1::Task,
    outcome: Result<v1::TaskResult, String>,
    lease_next: u32,
) -> Vec<v1::Task> {
    let outcome = match outcome {
        Ok(r) => v1::report_task_request::Outcome::Result(r),
        Err(e) => {
            tracing::warn!(task = %task.task_id, error = %e, "task failed");
            v1::report_task_request::Outcome::Error(e)
        }
    };
    let mut backoff = Duration::from_millis(50);
    loop {
        let id = shared.worker_id.lock().clone();
        let mut client = shared.cluster.clone();
        let req = v1::ReportTaskRequest {
            worker_id: id,
            task_id: task.task_id.clone(),
            attempt: task.attempt,
            outcome: Some(outcome.clone()),
            lease_next,
            lease_token: task.lease_token.clone(),
        };
        match client.report_task(req).await {
            Ok(r) => return r.into_inner().next,
            Err(s) if is_transient(&s) => {
                tracing::debug!(task = %task.task_id, status = %s, "report failed; retrying");
            }
            Err(s) => {
                tracing::warn!(task = %task.task_id, status = %s, "report refused");
                return Vec::new();
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
