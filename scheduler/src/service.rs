//! The gRPC services: thin adapters from wire messages to [`Scheduler`]
//! calls. Wire input is validated here (ids, sizes, enums) and every error
//! maps to a status code in one place ([`SchedError`]'s `From`).

use crate::auth::{Perm, Role};
use crate::core::{Caller, Scheduler};
use crate::error::SchedError;
use crate::results;
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use trawl_core::JobSpec;
use trawl_proto::convert::job_state_name;
use trawl_proto::v1::{
    self, cluster_server::Cluster, evidence_server::Evidence, jobs_server::Jobs,
};
use trawl_store::{EvidenceMeta, JobRecord, JobState, TaskKind, WorkerRecord, now_ms};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Largest ReadRange request.
const MAX_READ_RANGE: u64 = 1 << 30;
/// Longest a lease request waits for work.
const MAX_LEASE_WAIT_MS: u32 = 5_000;
/// Default results page size (findings per message).
const DEFAULT_PAGE: usize = 20_000;

/// The caller of a request, as the authentication layer
/// ([`crate::server`]) identified it. A request that did not pass through
/// it is refused.
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("the caller was not authenticated"))
}

/// Refuses, with PERMISSION_DENIED and an audit entry, what `caller` may not
/// do.
pub fn authorize(
    sched: &Scheduler,
    caller: &Caller,
    perm: Perm,
    case: &str,
    target: &str,
) -> Result<(), Status> {
    if caller.may(perm, case) {
        return Ok(());
    }
    let what = if perm.per_case() {
        format!("{} case {case:?}", perm.as_str())
    } else {
        perm.as_str().to_string()
    };
    sched.audit(caller, "denied", target, case, what.clone());
    Err(Status::permission_denied(format!(
        "user {} ({}) may not {what}",
        caller.user, caller.role
    )))
}

/// A job the caller may `perm`. A job of another case is answered exactly
/// as a job that does not exist (NOT_FOUND, same message: the answer tells
/// neither that the id exists nor its case); the refusal is audited.
/// A job id as the scheduler writes it (`J000042`): ids are accepted in
/// any case (`j000042`).
pub fn canonical_job_id(id: &str) -> String {
    match id.strip_prefix(['j', 'J']) {
        Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => {
            format!("J{rest}")
        }
        _ => id.to_string(),
    }
}

pub fn job_for(
    sched: &Scheduler,
    caller: &Caller,
    perm: Perm,
    id: &str,
) -> Result<JobRecord, Status> {
    check_id("job_id", id)?;
    let hidden = || {
        Status::not_found(format!(
            "job {id:?} not found among the jobs you may access"
        ))
    };
    let Ok(job) = sched.job(id) else {
        return Err(hidden());
    };
    if !caller.may(perm, job.spec.case_id.as_str()) {
        sched.audit(
            caller,
            "denied",
            id,
            job.spec.case_id.as_str(),
            format!("{} a job of another case", perm.as_str()),
        );
        return Err(hidden());
    }
    Ok(job)
}

/// The worker id a call acts as: a worker certificate acts only as itself
/// (its name, or `NAME@...`); anything else is refused and audited.
fn acting_worker(sched: &Scheduler, caller: &Caller, requested: &str) -> Result<String, Status> {
    check_id("worker_id", requested)?;
    if caller.role == Role::Worker && !crate::core::worker_of_cert(requested, &caller.user) {
        sched.audit(caller, "denied", requested, "", "act as another worker");
        return Err(Status::permission_denied(format!(
            "the certificate of worker {} may not act as worker {requested:?}",
            caller.user
        )));
    }
    Ok(requested.to_string())
}

/// A name given to uploaded evidence: a plain file name, no path.
fn check_upload_name(name: &str) -> Result<(), String> {
    if name.len() > 255 {
        return Err("name longer than 255 bytes".into());
    }
    if name.contains(['/', '\\']) || name == ".." || name == "." || name.starts_with("..") {
        return Err(format!("name {name:?} is a path: give a plain file name"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("name {name:?} contains control characters"));
    }
    Ok(())
}

fn check_id(kind: &'static str, v: &str) -> Result<(), Status> {
    if v.is_empty() {
        return Err(Status::invalid_argument(format!("{kind} is empty")));
    }
    bounded(kind, v, MAX_ID)
}

/// Longest id (job, task, worker, case, rule set) accepted on the wire.
const MAX_ID: usize = 128;
/// Longest free text (a cancel reason, a description) accepted.
const MAX_TEXT: usize = 4096;

/// Refuses a string field longer than `max` bytes, before it is used,
/// stored or audited.
pub fn bounded(field: &'static str, v: &str, max: usize) -> Result<(), Status> {
    if v.len() > max {
        return Err(Status::invalid_argument(format!(
            "{field}: {} bytes, more than the limit of {max}",
            v.len()
        )));
    }
    Ok(())
}

/// The identity and free-text fields of a job specification, bounded
/// before the specification is converted or any of it is audited.
fn check_wire_spec(spec: &v1::JobSpec) -> Result<(), Status> {
    bounded("case_id", &spec.case_id, MAX_ID)?;
    bounded("description", &spec.description, MAX_TEXT)?;
    bounded("evidence_name", &spec.evidence_name, 255)?;
    if let Some(ev) = &spec.evidence {
        use v1::evidence_locator::Source;
        match &ev.source {
            Some(Source::Paths(p)) => {
                if p.paths.len() > 1024 {
                    return Err(Status::invalid_argument(
                        "evidence: more than 1024 segment paths",
                    ));
                }
                for path in &p.paths {
                    bounded("evidence path", path, MAX_TEXT)?;
                }
            }
            Some(Source::UploadDigest(d)) => bounded("evidence upload digest", d, 64)?,
            None => {}
        }
    }
    Ok(())
}

fn wire_state(s: JobState) -> v1::JobState {
    match s {
        JobState::Queued => v1::JobState::Queued,
        JobState::Running => v1::JobState::Running,
        JobState::Completed => v1::JobState::Completed,
        JobState::Failed => v1::JobState::Failed,
        JobState::Cancelled => v1::JobState::Cancelled,
    }
}

/// Wire evidence facts.
pub fn wire_evidence(m: &EvidenceMeta) -> v1::EvidenceInfo {
    v1::EvidenceInfo {
        path: m.path.clone(),
        size: m.size,
        format: match m.format.as_str() {
            "raw" => v1::EvidenceFormat::Raw,
            "split-raw" => v1::EvidenceFormat::SplitRaw,
            "ewf" => v1::EvidenceFormat::Ewf,
            _ => v1::EvidenceFormat::Unspecified,
        } as i32,
        segments: m.segments.clone(),
        stored_md5: m.stored_md5.clone().unwrap_or_default(),
        stored_sha1: m.stored_sha1.clone().unwrap_or_default(),
        metadata: m.metadata.clone().into_iter().collect(),
        upload_digest: m.upload_blake3.clone().unwrap_or_default(),
    }
}

/// Wire form of a job record, with live progress.
pub fn wire_job(j: &JobRecord) -> v1::Job {
    let now = now_ms();
    let p = &j.progress;
    let elapsed = if j.started_ms > 0 {
        let end = if j.finished_ms > 0 {
            j.finished_ms
        } else {
            now
        };
        (end - j.started_ms).max(1) as f64 / 1000.0
    } else {
        0.0
    };
    let throughput = if elapsed > 0.0 {
        p.bytes_done as f64 / elapsed
    } else {
        0.0
    };
    let eta = if throughput > 0.0 && !j.state.is_final() {
        p.bytes_total.saturating_sub(p.bytes_done) as f64 / throughput
    } else {
        0.0
    };
    v1::Job {
        job_id: j.job_id.clone(),
        spec: Some(v1::JobSpec::from(&j.spec)),
        state: wire_state(j.state) as i32,
        progress: Some(v1::Progress {
            bytes_total: p.bytes_total,
            bytes_done: p.bytes_done,
            tasks_total: p.tasks_total,
            tasks_done: p.tasks_done,
            tasks_running: 0,
            tasks_failed: p.tasks_failed,
            findings: p.findings.clone().into_iter().collect(),
            throughput_bps: throughput,
            eta_seconds: eta,
            started_unix_ms: j.started_ms,
            updated_unix_ms: now,
            findings_final: j.counts.is_some(),
            carved_per_type: j
                .counts
                .as_ref()
                .map(|c| c.carve.per_type.clone().into_iter().collect())
                .unwrap_or_default(),
        }),
        evidence: j.evidence.as_ref().map(wire_evidence),
        error: j.error.clone(),
        submitter: j.submitter.clone(),
        created_unix_ms: j.created_ms,
        finished_unix_ms: j.finished_ms,
        limitations: j
            .limitations
            .iter()
            .map(|l| v1::Limitation {
                start: l.start,
                end: l.end,
                task_id: l.task_id.clone(),
                error: l.error.clone(),
                attempts: l.attempts,
            })
            .collect(),
        seq: j.version,
    }
}

/// Client-facing service.
#[derive(Clone, Debug)]
pub struct JobsService {
    pub sched: Arc<Scheduler>,
}

#[tonic::async_trait]
impl Jobs for JobsService {
    async fn submit_job(
        &self,
        req: Request<v1::SubmitJobRequest>,
    ) -> Result<Response<v1::SubmitJobResponse>, Status> {
        let caller = caller(&req)?;
        let spec = req
            .into_inner()
            .spec
            .ok_or_else(|| Status::invalid_argument("spec: missing"))?;
        check_wire_spec(&spec)?;
        let spec = JobSpec::try_from(&spec).map_err(|e| Status::invalid_argument(e.to_string()))?;
        authorize(
            &self.sched,
            &caller,
            Perm::Submit,
            spec.case_id.as_str(),
            "job.submit",
        )?;
        if let trawl_core::spec::EvidenceRef::Upload(d) = &spec.evidence
            && !caller.all_cases()
        {
            let d = d.to_ascii_lowercase();
            let owned = self
                .sched
                .store()
                .evidence(&d)
                .map_err(SchedError::from)?
                .is_some_and(|e| e.belongs_to(spec.case_id.as_str()));
            if !owned {
                self.sched.audit(
                    &caller,
                    "denied",
                    &d,
                    spec.case_id.as_str(),
                    "upload of another case",
                );
                return Err(Status::permission_denied(format!(
                    "upload {d} does not belong to case {:?}",
                    spec.case_id.as_str()
                )));
            }
        }
        let case = spec.case_id.as_str().to_string();
        let rec = match self.sched.submit(spec, &caller).await {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, SchedError::PermissionDenied(_)) {
                    self.sched
                        .audit(&caller, "denied", "job.submit", &case, e.to_string());
                }
                return Err(e.into());
            }
        };
        Ok(Response::new(v1::SubmitJobResponse {
            job_id: rec.job_id.clone(),
            job: Some(wire_job(&rec)),
        }))
    }

    async fn get_job(&self, req: Request<v1::GetJobRequest>) -> Result<Response<v1::Job>, Status> {
        let caller = caller(&req)?;
        let id = canonical_job_id(&req.into_inner().job_id);
        let job = job_for(&self.sched, &caller, Perm::Read, &id)?;
        Ok(Response::new(wire_job(&job)))
    }

    async fn list_jobs(
        &self,
        req: Request<v1::ListJobsRequest>,
    ) -> Result<Response<v1::ListJobsResponse>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        bounded("case_id", &r.case_id, MAX_ID)?;
        bounded("submitter", &r.submitter, MAX_ID)?;
        if !r.case_id.is_empty() {
            authorize(&self.sched, &caller, Perm::Read, &r.case_id, "jobs.list")?;
        }
        let state = match v1::JobState::try_from(r.state) {
            Ok(v1::JobState::Unspecified) => None,
            Ok(s) => Some(match s {
                v1::JobState::Queued => JobState::Queued,
                v1::JobState::Running => JobState::Running,
                v1::JobState::Completed => JobState::Completed,
                v1::JobState::Failed => JobState::Failed,
                _ => JobState::Cancelled,
            }),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "state: unknown value {}",
                    r.state
                )));
            }
        };
        let mut jobs = self.sched.list_jobs(
            (!r.case_id.is_empty()).then_some(r.case_id.as_str()),
            state,
            (!r.submitter.is_empty()).then_some(r.submitter.as_str()),
            0,
        );
        // Only the cases the caller may read.
        jobs.retain(|j| caller.may(Perm::Read, j.spec.case_id.as_str()));
        if r.limit > 0 {
            jobs.truncate(r.limit as usize);
        }
        Ok(Response::new(v1::ListJobsResponse {
            jobs: jobs.iter().map(wire_job).collect(),
        }))
    }

    type WatchJobStream = BoxStream<v1::JobEvent>;

    async fn watch_job(
        &self,
        req: Request<v1::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = caller(&req)?;
        let id = canonical_job_id(&req.into_inner().job_id);
        let first = job_for(&self.sched, &caller, Perm::Read, &id)?;
        let mut rx = self.sched.subscribe();
        let sched = self.sched.clone();
        let stream = async_stream_job(move |tx| async move {
            let mut last_version = first.version;
            let done = first.state.is_final();
            if tx
                .send(Ok(v1::JobEvent {
                    job: Some(wire_job(&first)),
                    message: job_state_name(wire_state(first.state) as i32).into(),
                }))
                .await
                .is_err()
                || done
            {
                return;
            }
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                let msg = tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(c) if c.job_id == id => c.message,
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => "progress".to_string(),
                        Err(_) => return,
                    },
                    _ = tick.tick() => "progress".to_string(),
                };
                let Ok(j) = sched.job(&id) else { return };
                // A token revoked (or expired, or moved off the case) since
                // the stream opened ends it.
                if !sched.still_may(&caller, Perm::Read, j.spec.case_id.as_str()) {
                    let _ = tx
                        .send(Err(Status::unauthenticated(
                            "credentials revoked or expired: the stream is closed",
                        )))
                        .await;
                    return;
                }
                if j.version == last_version && msg == "progress" && !j.state.is_final() {
                    // Periodic tick: still send, so throughput and ETA move.
                }
                last_version = j.version;
                let fin = j.state.is_final();
                if tx
                    .send(Ok(v1::JobEvent {
                        job: Some(wire_job(&j)),
                        message: msg,
                    }))
                    .await
                    .is_err()
                    || fin
                {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn cancel_job(
        &self,
        req: Request<v1::CancelJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        let caller = caller(&req)?;
        let mut r = req.into_inner();
        r.job_id = canonical_job_id(&r.job_id);
        bounded("reason", &r.reason, MAX_TEXT)?;
        job_for(&self.sched, &caller, Perm::Cancel, &r.job_id)?;
        Ok(Response::new(wire_job(
            &self.sched.cancel(&r.job_id, &r.reason, &caller)?,
        )))
    }

    async fn list_tasks(
        &self,
        req: Request<v1::ListTasksRequest>,
    ) -> Result<Response<v1::ListTasksResponse>, Status> {
        let caller = caller(&req)?;
        let id = canonical_job_id(&req.into_inner().job_id);
        job_for(&self.sched, &caller, Perm::Read, &id)?;
        Ok(Response::new(self.tasks(&id)?))
    }

    type GetResultsStream = BoxStream<v1::ResultsPage>;

    async fn get_results(
        &self,
        req: Request<v1::GetResultsRequest>,
    ) -> Result<Response<Self::GetResultsStream>, Status> {
        let caller = caller(&req)?;
        let mut r = req.into_inner();
        r.job_id = canonical_job_id(&r.job_id);
        let job = job_for(&self.sched, &caller, Perm::Read, &r.job_id)?;
        let sched = self.sched.clone();
        let id = r.job_id.clone();
        let mut page = tokio::task::spawn_blocking(move || sched.results(&id))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        page.job = Some(wire_job(&job));
        self.sched.audit(
            &caller,
            "results.get",
            &job.job_id,
            job.spec.case_id.as_str(),
            "",
        );
        let size = if r.page_size == 0 {
            DEFAULT_PAGE
        } else {
            r.page_size as usize
        };
        let pages = results::split_pages(page, size);
        Ok(Response::new(Box::pin(tokio_stream::iter(
            pages.into_iter().map(Ok),
        ))))
    }
}

impl JobsService {
    fn tasks(&self, job_id: &str) -> Result<v1::ListTasksResponse, Status> {
        self.sched.job(job_id)?;
        let tasks = self
            .sched
            .tasks_of(job_id)
            .into_iter()
            .map(|t| v1::TaskStatus {
                task_id: t.task_id,
                kind: format!("{:?}", t.kind).to_lowercase(),
                state: format!("{:?}", t.state).to_lowercase(),
                attempts: t.attempts,
                worker: t.worker.unwrap_or_default(),
                errors: t.errors,
                first_lease_seq: t.first_lease_seq,
                start: t.shard.map(|s| s.start).unwrap_or(0),
                end: t.shard.map(|s| s.end).unwrap_or(t.bytes),
            })
            .collect();
        Ok(v1::ListTasksResponse { tasks })
    }
}

/// A stream fed by a task through a channel.
fn async_stream_job<T, F, Fut>(f: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Worker-facing service.
#[derive(Clone, Debug)]
pub struct ClusterService {
    pub sched: Arc<Scheduler>,
}

fn wire_task(l: &crate::core::Lease) -> v1::Task {
    let t = &l.task;
    let spans_known: std::collections::HashSet<&(String, String)> =
        t.yara_spans_known.iter().collect();
    v1::Task {
        task_id: t.task_id.clone(),
        job_id: t.job_id.clone(),
        kind: match t.kind {
            TaskKind::Shard => v1::TaskKind::Shard,
            TaskKind::StreamHash => v1::TaskKind::StreamHash,
            TaskKind::YaraWhole => v1::TaskKind::YaraWhole,
            TaskKind::YaraCarved => v1::TaskKind::YaraCarved,
        } as i32,
        shard: t.shard.map(|s| v1::ShardRange {
            index: s.index,
            start: s.start,
            end: s.end,
            scan_end: s.scan_end,
            count: 0,
        }),
        spec: Some(v1::JobSpec::from(&l.spec)),
        evidence: Some(wire_evidence(&l.evidence)),
        attempt: t.attempts,
        lease_deadline_unix_ms: t.lease_deadline_ms,
        carved: t.carved.iter().map(Into::into).collect(),
        yara_candidates: t
            .yara_candidates
            .iter()
            .map(|(namespace, rule)| v1::YaraRuleRef {
                namespace: namespace.clone(),
                rule: rule.clone(),
                spans_known: spans_known.contains(&(namespace.clone(), rule.clone())),
            })
            .collect(),
        yara_windows: t
            .yara_windows
            .iter()
            .map(|&(start, end)| v1::ByteRange { start, end })
            .collect(),
        lease_token: t.lease_token.clone(),
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn register(
        &self,
        req: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        let caller = caller(&req)?;
        authorize(&self.sched, &caller, Perm::Work, "", "cluster.register")?;
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
        let rec = self.sched.register(
            WorkerRecord {
                worker_id: w.worker_id,
                hostname: w.hostname,
                slots: w.slots,
                memory_bytes: w.memory_bytes,
                evidence_roots: w.evidence_roots,
                version: w.version,
                registered_ms: 0,
                last_heartbeat_ms: 0,
                tasks_done: 0,
                bytes_done: 0,
                site: w.site,
                cores: w.cores.min(1 << 16),
                memory_free_bytes: w.memory_free_bytes,
                capabilities: w.capabilities,
            },
            cert,
        )?;
        let cfg = self.sched.config();
        Ok(Response::new(v1::RegisterResponse {
            worker_id: rec.worker_id,
            heartbeat_interval_ms: cfg.heartbeat_ms as u32,
            lease_ms: cfg.lease_ms as u32,
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<v1::HeartbeatRequest>,
    ) -> Result<Response<v1::HeartbeatResponse>, Status> {
        let caller = caller(&req)?;
        authorize(&self.sched, &caller, Perm::Work, "", "cluster.heartbeat")?;
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
        authorize(&self.sched, &caller, Perm::Work, "", "cluster.lease_tasks")?;
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
            let leases = self.sched.lease(&r.worker_id, r.max_tasks)?;
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
        let caller = caller(&req)?;
        authorize(&self.sched, &caller, Perm::Work, "", "cluster.report_task")?;
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
        Ok(Response::new(v1::ReportTaskResponse { accepted, next }))
    }

    async fn release_tasks(
        &self,
        req: Request<v1::ReleaseTasksRequest>,
    ) -> Result<Response<v1::ReleaseTasksResponse>, Status> {
        let caller = caller(&req)?;
        authorize(
            &self.sched,
            &caller,
            Perm::Work,
            "",
            "cluster.release_tasks",
        )?;
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
        req: Request<v1::ListWorkersRequest>,
    ) -> Result<Response<v1::ListWorkersResponse>, Status> {
        let caller = caller(&req)?;
        authorize(&self.sched, &caller, Perm::ReadPool, "", "workers.list")?;
        let now = now_ms();
        let hb = self.sched.config().heartbeat_ms as i64;
        let workers = self
            .sched
            .workers()
            .into_iter()
            .map(|(w, busy)| v1::WorkerInfo {
                worker_id: w.worker_id,
                hostname: w.hostname,
                slots: w.slots,
                memory_bytes: w.memory_bytes,
                evidence_roots: w.evidence_roots,
                version: w.version,
                protocol: trawl_proto::PROTOCOL_VERSION as i32,
                busy_slots: busy,
                last_heartbeat_unix_ms: w.last_heartbeat_ms,
                state: if now - w.last_heartbeat_ms <= 3 * hb + 1000 {
                    "up"
                } else {
                    "lost"
                }
                .into(),
                tasks_done: w.tasks_done,
                bytes_done: w.bytes_done,
                site: w.site,
                cores: w.cores,
                memory_free_bytes: w.memory_free_bytes,
                capabilities: w.capabilities,
            })
            .collect();
        Ok(Response::new(v1::ListWorkersResponse { workers }))
    }
}

/// Rule sets.
#[derive(Clone, Debug)]
pub struct RulesService {
    pub sched: Arc<Scheduler>,
}

fn ruleset_info(r: &trawl_store::RuleSetRecord) -> v1::RuleSetInfo {
    v1::RuleSetInfo {
        name: r.name.clone(),
        digest: r.digest.clone(),
        files: r.sources.len() as u32,
        rules: r.rules,
        diagnostics: r
            .diagnostics
            .iter()
            .map(|d| v1::RuleDiagnostic {
                file: d.file.clone(),
                line: d.line,
                column: d.column,
                severity: d.severity.clone(),
                message: d.message.clone(),
                rule: d.rule.clone(),
            })
            .collect(),
        created_unix_ms: r.created_ms,
        rejected_files: r.rejected_files,
    }
}

#[tonic::async_trait]
impl trawl_proto::v1::rules_server::Rules for RulesService {
    async fn add_rule_set(
        &self,
        req: Request<v1::AddRuleSetRequest>,
    ) -> Result<Response<v1::RuleSetInfo>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        check_id("name", &r.name)?;
        if r.sources.len() > 100_000 || r.sources.iter().any(|s| s.name.len() > MAX_TEXT) {
            return Err(Status::invalid_argument(
                "sources: more than 100000 files, or a file name longer than 4096 bytes",
            ));
        }
        authorize(&self.sched, &caller, Perm::ManageRules, "", &r.name)?;
        let sources = r
            .sources
            .into_iter()
            .map(|s| trawl_core::spec::RuleSource {
                name: s.name,
                text: s.text,
            })
            .collect();
        let rec = self
            .sched
            .add_ruleset(&r.name, sources, r.strict, &caller)
            .await?;
        Ok(Response::new(ruleset_info(&rec)))
    }

    async fn list_rule_sets(
        &self,
        req: Request<v1::ListRuleSetsRequest>,
    ) -> Result<Response<v1::ListRuleSetsResponse>, Status> {
        let caller = caller(&req)?;
        authorize(&self.sched, &caller, Perm::ReadRules, "", "rules.list")?;
        let sets = self.sched.rulesets()?;
        Ok(Response::new(v1::ListRuleSetsResponse {
            rule_sets: sets.iter().map(ruleset_info).collect(),
        }))
    }

    async fn get_rule_set(
        &self,
        req: Request<v1::GetRuleSetRequest>,
    ) -> Result<Response<v1::RuleSet>, Status> {
        let caller = caller(&req)?;
        let name = req.into_inner().name;
        check_id("name", &name)?;
        authorize(&self.sched, &caller, Perm::ReadRules, "", &name)?;
        let r = self.sched.ruleset(&name)?;
        Ok(Response::new(v1::RuleSet {
            info: Some(ruleset_info(&r)),
            sources: r
                .sources
                .iter()
                .map(|(n, t)| v1::RuleSource {
                    name: n.clone(),
                    text: t.clone(),
                })
                .collect(),
        }))
    }
}

/// Evidence store and remote reads.
#[derive(Clone, Debug)]
pub struct EvidenceService {
    pub sched: Arc<Scheduler>,
}

#[tonic::async_trait]
impl Evidence for EvidenceService {
    async fn upload_evidence(
        &self,
        req: Request<Streaming<v1::UploadChunk>>,
    ) -> Result<Response<v1::UploadResponse>, Status> {
        let caller = caller(&req)?;
        let mut stream = req.into_inner();
        let header = match stream.next().await {
            Some(Ok(v1::UploadChunk {
                part: Some(v1::upload_chunk::Part::Header(h)),
            })) => h,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Status::invalid_argument(
                    "the first upload message must be the header",
                ));
            }
        };
        bounded("case_id", &header.case_id, MAX_ID)?;
        bounded("blake3", &header.blake3, 64)?;
        bounded("name", &header.name, 255)?;
        authorize(
            &self.sched,
            &caller,
            Perm::Submit,
            &header.case_id,
            &header.blake3,
        )?;
        if let Err(why) = check_upload_name(&header.name) {
            self.sched.audit(
                &caller,
                "evidence.upload.rejected",
                &header.blake3,
                &header.case_id,
                why.clone(),
            );
            return Err(Status::invalid_argument(why));
        }
        let max = self.sched.config().max_upload_bytes;
        let sched = self.sched.clone();
        let digest = crate::evidence_store::check_digest(&header.blake3)?;
        // The upload runs on a blocking thread, fed through a channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
        let h2 = header.clone();
        let caller2 = caller.clone();
        let worker = tokio::task::spawn_blocking(move || -> Result<(bool, u64), SchedError> {
            let Some(mut session) = sched.uploads.begin(&h2.blake3, h2.size, h2.offset, max)?
            else {
                // Already stored. The same case (or an admin) needs no bytes;
                // another case must prove it holds the content: the whole
                // stream is hashed and must equal the digest.
                let d = h2.blake3.to_ascii_lowercase();
                let mut rec = sched.store.evidence(&d)?;
                let known = rec
                    .as_ref()
                    .is_none_or(|r| caller2.all_cases() || r.belongs_to(&h2.case_id));
                if known {
                    while rx.blocking_recv().is_some() {}
                    return Ok((true, h2.size));
                }
                let mut h = blake3::Hasher::new();
                let mut n = 0u64;
                while let Some(data) = rx.blocking_recv() {
                    h.update(&data);
                    n += data.len() as u64;
                }
                if h2.offset != 0 || n != h2.size || h.finalize().to_hex().as_str() != d {
                    return Err(SchedError::PermissionDenied(format!(
                        "upload {d} belongs to another case: send the whole content from offset 0 to attach it to case {:?}",
                        h2.case_id
                    )));
                }
                if let Some(r) = rec.as_mut() {
                    r.other_cases.push(h2.case_id.clone());
                    sched.store.put_evidence(r)?;
                }
                return Ok((true, h2.size));
            };
            // A partial upload belongs to the case that started it: its
            // status is answered to that case only.
            let d = h2.blake3.to_ascii_lowercase();
            if sched.store.evidence(&d)?.is_none() {
                sched.store.put_evidence(&trawl_store::EvidenceRecord {
                    blake3: d.clone(),
                    size: h2.size,
                    name: h2.name.clone(),
                    case_id: h2.case_id.clone(),
                    uploader: caller2.user.clone(),
                    received: 0,
                    complete: false,
                    created_ms: now_ms(),
                    completed_ms: 0,
                    other_cases: Vec::new(),
                })?;
            }
            while let Some(data) = rx.blocking_recv() {
                session.write(&data)?;
            }
            if !session.is_complete() {
                return Ok((false, session.received()));
            }
            session.finish()?;
            // The case that started the upload keeps it; another case that
            // finished it is attached only if it sent every byte.
            let started = sched.store.evidence(&d)?;
            let mut rec = trawl_store::EvidenceRecord {
                blake3: d.clone(),
                size: h2.size,
                name: h2.name.clone(),
                case_id: h2.case_id.clone(),
                uploader: caller2.user.clone(),
                received: h2.size,
                complete: true,
                created_ms: now_ms(),
                completed_ms: now_ms(),
                other_cases: Vec::new(),
            };
            if let Some(s) = started.filter(|s| s.case_id != h2.case_id) {
                rec.case_id = s.case_id;
                rec.name = s.name;
                rec.uploader = s.uploader;
                rec.created_ms = s.created_ms;
                rec.other_cases = s.other_cases;
                if h2.offset == 0 {
                    rec.other_cases.push(h2.case_id.clone());
                }
            }
            sched.store.put_evidence(&rec)?;
            Ok((false, h2.size))
        });
        let mut stream_err = None;
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(v1::UploadChunk {
                    part: Some(v1::upload_chunk::Part::Data(d)),
                }) => {
                    if tx.send(d).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {
                    stream_err = Some(Status::invalid_argument(
                        "only data may follow the upload header",
                    ));
                    break;
                }
                Err(e) => {
                    stream_err = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let outcome = worker.await.map_err(|e| Status::internal(e.to_string()))?;
        let (dedup, size) = match outcome {
            Ok(v) => v,
            Err(e) => {
                self.sched.audit(
                    &caller,
                    "evidence.upload.rejected",
                    &digest,
                    &header.case_id,
                    e.to_string(),
                );
                return Err(e.into());
            }
        };
        if let Some(e) = stream_err {
            return Err(e);
        }
        let (received, complete) = self.sched.uploads.received(&digest)?;
        if !complete {
            return Err(Status::aborted(format!(
                "upload of {digest} incomplete: {received} of {} bytes received; resume at offset {received}",
                header.size
            )));
        }
        self.sched.audit(
            &caller,
            "evidence.upload",
            &digest,
            &header.case_id,
            format!("name={:?} size={size} dedup={dedup}", header.name),
        );
        Ok(Response::new(v1::UploadResponse {
            digest,
            size,
            deduplicated: dedup,
        }))
    }

    async fn upload_status(
        &self,
        req: Request<v1::UploadStatusRequest>,
    ) -> Result<Response<v1::UploadStatusResponse>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        let d = crate::evidence_store::check_digest(&r.blake3)?;
        bounded("case_id", &r.case_id, MAX_ID)?;
        authorize(&self.sched, &caller, Perm::Submit, &r.case_id, &d)?;
        // Another case's upload is answered as an unknown one.
        let mine = caller.all_cases()
            || self
                .sched
                .store()
                .evidence(&d)
                .map_err(SchedError::from)?
                .is_some_and(|e| e.belongs_to(&r.case_id));
        let (received, complete) = if mine {
            self.sched.uploads.received(&d)?
        } else {
            (0, false)
        };
        Ok(Response::new(v1::UploadStatusResponse {
            received,
            complete,
        }))
    }

    type ReadRangeStream = BoxStream<v1::ReadRangeChunk>;

    async fn read_range(
        &self,
        req: Request<v1::ReadRangeRequest>,
    ) -> Result<Response<Self::ReadRangeStream>, Status> {
        // Workers read the shards they lease; clients read the carved files
        // of the jobs they may read (`trawl results` without the mount).
        let caller = caller(&req)?;
        let r = req.into_inner();
        let job = if caller.may(Perm::Work, "") {
            check_id("job_id", &r.job_id)?;
            if caller.role == Role::Worker
                && let Err(e) =
                    self.sched
                        .worker_may_read(&caller.user, &r.job_id, r.offset, r.length)
            {
                self.sched.audit(
                    &caller,
                    "denied",
                    &r.job_id,
                    "",
                    format!("read bytes {}+{}: {e}", r.offset, r.length),
                );
                return Err(e.into());
            }
            self.sched.job(&r.job_id)?
        } else {
            let job = job_for(&self.sched, &caller, Perm::Read, &r.job_id)?;
            self.sched.audit(
                &caller,
                "evidence.read",
                &job.job_id,
                job.spec.case_id.as_str(),
                format!("bytes {}+{}", r.offset, r.length),
            );
            job
        };
        if r.length > MAX_READ_RANGE {
            return Err(Status::invalid_argument(format!(
                "length {} exceeds {MAX_READ_RANGE}",
                r.length
            )));
        }
        let sched = self.sched.clone();
        let ev = tokio::task::spawn_blocking(move || sched.open_evidence(&job.job_id, &job.spec))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        let size = ev.size();
        if r.offset > size {
            return Err(Status::out_of_range(format!(
                "offset {} is past the end ({size} bytes)",
                r.offset
            )));
        }
        let end = r.offset.saturating_add(r.length).min(size);
        let start = r.offset;
        let stream = async_stream_job(move |tx| async move {
            let mut off = start;
            while off < end {
                let n = (end - off).min(1 << 20) as usize;
                let ev2 = ev.clone();
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; n];
                    ev2.read_exact_at(off, &mut buf).map(|_| buf)
                })
                .await;
                let msg = match read {
                    Ok(Ok(data)) => Ok(v1::ReadRangeChunk { offset: off, data }),
                    Ok(Err(e)) => Err(Status::data_loss(e.to_string())),
                    Err(e) => Err(Status::internal(e.to_string())),
                };
                let stop = msg.is_err();
                if tx.send(msg).await.is_err() || stop {
                    return;
                }
                off += n as u64;
            }
        });
        Ok(Response::new(stream))
    }
}
