//! The Cluster service: worker registration, heartbeats, leases, reports,
//! and the pool as clients see it.

use super::{MAX_LEASE_WAIT_MS, acting_worker, caller, check_id};
use crate::auth::Role;
use crate::core::Scheduler;
use crate::error::SchedError;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use trawl_proto::v1::{self, cluster_server::Cluster};
use trawl_store::{WorkerRecord, now_ms};

/// Worker-facing service.
#[derive(Clone, Debug)]
pub struct ClusterService {
    pub sched: Arc<Scheduler>,
}

/// A lease on the wire. (`Lease` is the scheduler's own bundle of a task,
/// its job's specification and evidence facts; the conversion is
/// `trawl_store::wire::leased_task`, on those parts.)
fn wire_task(l: &crate::core::Lease) -> v1::Task {
    trawl_store::wire::leased_task(&l.task, &l.spec, &l.evidence)
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn register(
        &self,
        req: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        let caller = caller(&req)?;
        let w = req
            .into_inner()
            .worker
            .ok_or_else(|| Status::invalid_argument("worker: missing"))?;
        if w.protocol != trawl_proto::PROTOCOL_VERSION as i32 {
            return Err(Status::failed_precondition(format!(
                "protocol version {} not supported (scheduler speaks {})",
                w.protocol,
                trawl_proto::PROTOCOL_VERSION as i32
            )));
        }
        if w.worker_id.len() > 128 || w.hostname.len() > 256 {
            return Err(Status::invalid_argument("worker id or hostname too long"));
        }
        if !w.worker_id.is_empty() {
            acting_worker(&self.sched, &caller, &w.worker_id)?;
        }
        if w.evidence_roots.len() > 64 || w.evidence_roots.iter().any(|r| r.len() > 4096) {
            return Err(Status::invalid_argument(
                "evidence_roots: too many or too long",
            ));
        }
        if w.version.len() > 128 {
            return Err(Status::invalid_argument("version: longer than 128 bytes"));
        }
        if w.site.len() > 128 || w.site.chars().any(char::is_control) {
            return Err(Status::invalid_argument(
                "site: longer than 128 bytes or has control characters",
            ));
        }
        if w.capabilities.len() > 256
            || w.capabilities
                .iter()
                .any(|c| c.len() > 128 || c.starts_with("ruleset:"))
        {
            return Err(Status::invalid_argument(
                "capabilities: too many, too long, or a ruleset: entry (the scheduler sets those)",
            ));
        }
        let cert = (caller.role == Role::Worker).then_some(caller.user.as_str());
        let mut w = w;
        if w.worker_id.is_empty() {
            w.worker_id = self.sched.new_worker_id(&w.hostname, cert)?.into();
        }
        let mut rec = WorkerRecord::try_from(w)
            .map_err(|e| Status::invalid_argument(format!("worker_id: {e}")))?;
        rec.cores = rec.cores.min(1 << 16);
        let rec = self.sched.register(rec)?;
        let cfg = self.sched.config();
        Ok(Response::new(v1::RegisterResponse {
            worker_id: rec.worker_id.into(),
            heartbeat_interval_ms: cfg.heartbeat_ms as u32,
            lease_ms: cfg.lease_ms as u32,
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<v1::HeartbeatRequest>,
    ) -> Result<Response<v1::HeartbeatResponse>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        acting_worker(&self.sched, &caller, &r.worker_id)?;
        if r.task_ids.len() > 4096 || r.task_ids.iter().any(|t| t.len() > 256) {
            return Err(Status::invalid_argument("task_ids: too many or too long"));
        }
        if r.rule_sets.len() > 256 || r.rule_sets.iter().any(|d| d.len() > 128) {
            return Err(Status::invalid_argument("rule_sets: too many or too long"));
        }
        let o = self
            .sched
            .heartbeat(&r.worker_id, &r.task_ids, r.memory_free_bytes, &r.rule_sets);
        Ok(Response::new(v1::HeartbeatResponse {
            cancel_task_ids: o.cancel,
            reregister: o.reregister,
        }))
    }

    async fn lease_tasks(
        &self,
        req: Request<v1::LeaseTasksRequest>,
    ) -> Result<Response<v1::LeaseTasksResponse>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        acting_worker(&self.sched, &caller, &r.worker_id)?;
        let wait = std::time::Duration::from_millis(u64::from(r.wait_ms.min(MAX_LEASE_WAIT_MS)));
        let deadline = tokio::time::Instant::now() + wait;
        let leases = loop {
            // Register interest before looking, so a wake-up between the
            // look and the wait is not lost.
            let ready = self.sched.work_ready();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let t = std::time::Instant::now();
            let leases = self.sched.lease(&r.worker_id, r.max_tasks)?;
            if !leases.is_empty() {
                self.sched.observe_lease(t.elapsed());
            }
            if !leases.is_empty() || tokio::time::Instant::now() >= deadline {
                break leases;
            }
            tokio::select! {
                _ = ready => {},
                _ = tokio::time::sleep_until(deadline) => {},
            }
        };
        Ok(Response::new(v1::LeaseTasksResponse {
            tasks: leases.iter().map(wire_task).collect(),
        }))
    }

    async fn report_task(
        &self,
        req: Request<v1::ReportTaskRequest>,
    ) -> Result<Response<v1::ReportTaskResponse>, Status> {
        let started = std::time::Instant::now();
        let caller = caller(&req)?;
        let r = req.into_inner();
        acting_worker(&self.sched, &caller, &r.worker_id)?;
        check_id("task_id", &r.task_id)?;
        if r.lease_token.len() > 128 {
            return Err(Status::invalid_argument(
                "lease_token: longer than 128 bytes",
            ));
        }
        let outcome = match r.outcome {
            Some(v1::report_task_request::Outcome::Result(res)) => Ok(res),
            Some(v1::report_task_request::Outcome::Error(e)) => Err(e),
            None => {
                return Err(Status::invalid_argument(
                    "outcome: missing (result or error)",
                ));
            }
        };
        // A report is a few in-memory updates and sled inserts (microseconds):
        // done inline rather than paying a thread hop per report.
        let accepted = match self
            .sched
            .report(&r.worker_id, &r.task_id, &r.lease_token, outcome)
        {
            Ok(a) => a,
            Err(e) => {
                if matches!(
                    e,
                    SchedError::PermissionDenied(_) | SchedError::InvalidArgument(_)
                ) {
                    self.sched
                        .audit(&caller, "denied", &r.task_id, "", e.to_string());
                }
                return Err(e.into());
            }
        };
        let next = if r.lease_next > 0 {
            match self.sched.lease(&r.worker_id, r.lease_next) {
                Ok(l) => l.iter().map(wire_task).collect(),
                Err(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        if !next.is_empty() {
            self.sched.observe_lease(started.elapsed());
        }
        Ok(Response::new(v1::ReportTaskResponse { accepted, next }))
    }

    async fn release_tasks(
        &self,
        req: Request<v1::ReleaseTasksRequest>,
    ) -> Result<Response<v1::ReleaseTasksResponse>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        acting_worker(&self.sched, &caller, &r.worker_id)?;
        if r.task_ids.len() > 4096 {
            return Err(Status::invalid_argument("task_ids: too many"));
        }
        self.sched.release(&r.worker_id, &r.task_ids);
        Ok(Response::new(v1::ReleaseTasksResponse {}))
    }

    async fn list_workers(
        &self,
        _req: Request<v1::ListWorkersRequest>,
    ) -> Result<Response<v1::ListWorkersResponse>, Status> {
        let now = now_ms();
        let hb = self.sched.config().heartbeat_ms as i64;
        let workers = self
            .sched
            .workers()
            .into_iter()
            .map(|(w, busy)| {
                let up = now - w.last_heartbeat_ms <= 3 * hb + 1000;
                trawl_store::wire::worker_info(w, busy, if up { "up" } else { "lost" })
            })
            .collect();
        Ok(Response::new(v1::ListWorkersResponse { workers }))
    }
}
