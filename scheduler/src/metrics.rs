//! The scheduler's Prometheus metrics (`--metrics-listen ADDR`, plain
//! HTTP `GET /metrics`, text exposition format). They hold counts only,
//! never a case, job or evidence name, so the endpoint needs no sign-in;
//! bind it where only the lab's Prometheus reaches.
//!
//! Counters are bumped where the events happen (task results accepted,
//! retries, quarantines, lease round trips); gauges (jobs and tasks by
//! state, queue depth per priority, worker slots) are read from the
//! scheduler's indices at scrape time: per job and per worker, never per
//! task.

use crate::core::Scheduler;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnalysisLabel {
    pub analysis: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PriorityLabel {
    pub priority: String,
}

/// The metrics and their registry.
pub struct Metrics {
    registry: Registry,
    pub jobs: Family<StateLabel, Gauge>,
    pub tasks: Family<StateLabel, Gauge>,
    pub scanned_bytes: Family<AnalysisLabel, Counter>,
    pub lease_round_trip: Histogram,
    pub queue_depth: Family<PriorityLabel, Gauge>,
    pub worker_slots: Family<StateLabel, Gauge>,
    pub workers: Family<StateLabel, Gauge>,
    pub retries: Counter,
    pub quarantines: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let jobs = Family::<StateLabel, Gauge>::default();
        registry.register("trawl_jobs", "Jobs by state", jobs.clone());
        let tasks = Family::<StateLabel, Gauge>::default();
        registry.register(
            "trawl_tasks",
            "Tasks by state (queued, leased, waiting: of unfinished jobs; done, failed: every job the scheduler holds)",
            tasks.clone(),
        );
        let scanned_bytes = Family::<AnalysisLabel, Counter>::default();
        registry.register(
            "trawl_scanned_bytes",
            "Evidence bytes examined by each analysis (results accepted)",
            scanned_bytes.clone(),
        );
        let lease_round_trip = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        registry.register(
            "trawl_lease_round_trip_seconds",
            "Time the scheduler takes to answer a lease or a task report that hands out work",
            lease_round_trip.clone(),
        );
        let queue_depth = Family::<PriorityLabel, Gauge>::default();
        registry.register(
            "trawl_queue_depth",
            "Queued tasks per job priority",
            queue_depth.clone(),
        );
        let worker_slots = Family::<StateLabel, Gauge>::default();
        registry.register(
            "trawl_worker_slots",
            "Task slots of live workers, busy or free",
            worker_slots.clone(),
        );
        let workers = Family::<StateLabel, Gauge>::default();
        registry.register(
            "trawl_workers",
            "Registered workers, up (heartbeating) or lost",
            workers.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "trawl_task_retries",
            "Failed task attempts queued again",
            retries.clone(),
        );
        let quarantines = Counter::default();
        registry.register(
            "trawl_tasks_quarantined",
            "Tasks quarantined after their last attempt",
            quarantines.clone(),
        );
        Self {
            registry,
            jobs,
            tasks,
            scanned_bytes,
            lease_round_trip,
            queue_depth,
            worker_slots,
            workers,
            retries,
            quarantines,
        }
    }
}

impl Scheduler {
    /// The metrics in the text exposition format, gauges read now.
    pub fn metrics_text(&self) -> String {
        let m = &self.metrics;
        self.refresh_gauges();
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &m.registry) {
            tracing::error!(error = %e, "encoding the metrics");
        }
        out
    }

    /// Records one round trip that handed out work.
    pub fn observe_lease(&self, d: std::time::Duration) {
        self.metrics.lease_round_trip.observe(d.as_secs_f64());
    }

    /// Counts a task result accepted: its bytes for each analysis of its
    /// job.
    pub(crate) fn count_scanned(&self, analyses: &trawl_core::AnalysisSet, bytes: u64) {
        for a in trawl_core::spec::Analysis::ALL {
            if analyses.contains(a) {
                self.metrics
                    .scanned_bytes
                    .get_or_create(&AnalysisLabel {
                        analysis: a.name().into(),
                    })
                    .inc_by(bytes);
            }
        }
    }
}
