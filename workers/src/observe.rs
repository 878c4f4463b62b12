//! What a worker shows its platform: Prometheus metrics
//! (`--metrics-listen ADDR`, plain HTTP `GET /metrics`, OpenMetrics text)
//! and the gRPC health protocol (`--health-listen ADDR`, plaintext
//! `grpc.health.v1`, for Kubernetes' `grpc` probes): SERVING while the
//! worker takes work, NOT_SERVING once it drains.
//!
//! Metrics hold counts only, never a case, job or evidence name:
//! - `trawl_worker_scanned_bytes_total{analysis}` and
//!   `trawl_worker_analysis_seconds_total{analysis}`: bytes each analysis
//!   examined and the time it spent (their rates' ratio is its throughput);
//! - `trawl_worker_tasks_total{outcome}`: tasks run, `done` or `failed`;
//! - `trawl_worker_slots{state}`: task slots `busy` or `free`;
//! - `trawl_worker_draining`: 1 once the worker drains;
//! - `process_resident_memory_bytes` and
//!   `trawl_worker_peak_resident_memory_bytes`: RSS now and its peak
//!   (`VmRSS`, `VmHWM`), read at scrape time.

use anyhow::{Context, Result};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trawl_proto::v1;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnalysisLabel {
    analysis: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// A worker's metrics and health.
pub struct Observer {
    registry: Registry,
    scanned: Family<AnalysisLabel, Counter>,
    seconds: Family<AnalysisLabel, Counter<f64, AtomicU64>>,
    tasks: Family<OutcomeLabel, Counter>,
    slots: Family<StateLabel, Gauge>,
    draining: Gauge,
    rss: Gauge,
    peak_rss: Gauge,
    health: Option<tonic_health::server::HealthReporter>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// A `/proc/self/status` field in bytes (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> Option<i64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|k| k * 1024)
}

impl Observer {
    fn new(health: Option<tonic_health::server::HealthReporter>) -> Self {
        let mut registry = Registry::default();
        let scanned = Family::<AnalysisLabel, Counter>::default();
        registry.register(
            "trawl_worker_scanned_bytes",
            "Evidence bytes each analysis examined on this worker",
            scanned.clone(),
        );
        let seconds = Family::<AnalysisLabel, Counter<f64, AtomicU64>>::default();
        registry.register(
            "trawl_worker_analysis_seconds",
            "Time each analysis spent on this worker (throughput: rate of bytes over rate of seconds)",
            seconds.clone(),
        );
        let tasks = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "trawl_worker_tasks",
            "Tasks run on this worker, done or failed",
            tasks.clone(),
        );
        let slots = Family::<StateLabel, Gauge>::default();
        registry.register(
            "trawl_worker_slots",
            "This worker's task slots, busy or free",
            slots.clone(),
        );
        let draining = Gauge::default();
        registry.register(
            "trawl_worker_draining",
            "1 once the worker drains (finishing or handing back its leases)",
            draining.clone(),
        );
        let rss = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            rss.clone(),
        );
        let peak_rss = Gauge::default();
        registry.register(
            "trawl_worker_peak_resident_memory_bytes",
            "Peak resident memory size of the worker process in bytes",
            peak_rss.clone(),
        );
        for o in ["done", "failed"] {
            let _ = tasks.get_or_create(&OutcomeLabel { outcome: o.into() });
        }
        Self {
            registry,
            scanned,
            seconds,
            tasks,
            slots,
            draining,
            rss,
            peak_rss,
            health,
        }
    }

    /// Binds the addresses asked for and serves metrics and health until
    /// `stop`. Prints `trawl-worker metrics on http://ADDR/metrics` and
    /// `trawl-worker health on ADDR` (machine-readable, port 0 binds any).
    ///
    /// # Errors
    /// An address cannot be bound.
    pub async fn start(
        metrics: Option<SocketAddr>,
        health: Option<SocketAddr>,
        slots: usize,
        busy: Arc<dyn Fn() -> usize + Send + Sync>,
        stop: CancellationToken,
    ) -> Result<Arc<Self>> {
        let mut reporter = None;
        if let Some(a) = health {
            let l = TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the health address {a}"))?;
            let addr = l.local_addr()?;
            let (r, service) = tonic_health::server::health_reporter();
            r.set_service_status("", tonic_health::ServingStatus::Serving)
                .await;
            reporter = Some(r);
            println!("trawl-worker health on {addr}");
            let stop = stop.clone();
            tokio::spawn(async move {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
                if let Err(e) = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await
                {
                    tracing::error!(error = %e, "health endpoint stopped");
                }
            });
        }
        let me = Arc::new(Self::new(reporter));
        if let Some(a) = metrics {
            let l = TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the metrics address {a}"))?;
            let addr = l.local_addr()?;
            println!("trawl-worker metrics on http://{addr}/metrics");
            let m = me.clone();
            tokio::spawn(async move {
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let body = m.text(slots, busy());
                        async move {
                            (
                                [(
                                    axum::http::header::CONTENT_TYPE,
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )],
                                body,
                            )
                        }
                    }),
                );
                if let Err(e) = axum::serve(l, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
                {
                    tracing::error!(error = %e, "metrics endpoint stopped");
                }
            });
        }
        Ok(me)
    }

    /// The metrics in the text exposition format, gauges read now.
    fn text(&self, slots: usize, busy: usize) -> String {
        self.slots
            .get_or_create(&StateLabel {
                state: "busy".into(),
            })
            .set(busy as i64);
        self.slots
            .get_or_create(&StateLabel {
                state: "free".into(),
            })
            .set(slots.saturating_sub(busy) as i64);
        if let Some(v) = status_kib("VmRSS") {
            self.rss.set(v);
        }
        if let Some(v) = status_kib("VmHWM") {
            self.peak_rss.set(v);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics");
        }
        out
    }

    /// Counts a task's outcome and its analyses' bytes and time.
    pub fn record(&self, outcome: &Result<v1::TaskResult, String>) {
        let label = |s: &str| AnalysisLabel {
            analysis: s.to_string(),
        };
        match outcome {
            Ok(r) => {
                self.tasks
                    .get_or_create(&OutcomeLabel {
                        outcome: "done".into(),
                    })
                    .inc();
                for s in &r.stats {
                    self.scanned
                        .get_or_create(&label(&s.scanner))
                        .inc_by(s.bytes);
                    self.seconds
                        .get_or_create(&label(&s.scanner))
                        .inc_by(s.nanos as f64 / 1e9);
                }
                if let Some(st) = &r.stream {
                    self.scanned
                        .get_or_create(&label("stream-hash"))
                        .inc_by(st.bytes);
                    self.seconds
                        .get_or_create(&label("stream-hash"))
                        .inc_by(r.elapsed_ms as f64 / 1e3);
                }
            }
            Err(_) => {
                self.tasks
                    .get_or_create(&OutcomeLabel {
                        outcome: "failed".into(),
                    })
                    .inc();
            }
        }
    }

    /// The worker drains: health turns NOT_SERVING (so no readiness probe
    /// sends it anything new), the gauge turns 1.
    pub async fn draining(&self) {
        self.draining.set(1);
        if let Some(r) = &self.health {
            r.set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
        }
    }
}
