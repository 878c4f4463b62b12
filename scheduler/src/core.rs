//! The scheduler's state machine. One mutex owns every state change; sled is
//! written inside it so memory and disk never disagree; memory is rebuilt
//! from sled on start.
//!
//! Ordering of work: the highest priority class with queued work is served
//! first; within it, the case with the fewest running tasks (then the one
//! served least recently), so one huge case cannot starve the others; within
//! a case, jobs in submission order; within a job, the sequential stream
//! task first (it is the longest), then shards in order.

use crate::error::SchedError;
use crate::evidence_store::EvidenceStore;
use crate::results;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;
use trawl_analyzers::yara::scope as yara_scope;
use trawl_core::spec::EvidenceRef;
use trawl_core::{JobId, JobSpec, Priority, TaskId};
use trawl_evidence::SharedEvidence;
use trawl_proto::v1;
use trawl_store::{
    EvidenceMeta, JobRecord, JobState, LimitationRecord, ProgressRecord, Store, TaskKind,
    TaskRecord, TaskState, WorkerRecord, now_ms,
};

use crate::config::SchedulerConfig;

/// Above this many regions, a YARA whole-image task reads the whole image
/// rather than carry the list.
const MAX_YARA_WINDOWS: usize = 50_000;

/// Who is calling (filled by the service layer from the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub role: crate::auth::Role,
    /// The cases the user may act on (admins and local callers: all).
    pub cases: Vec<String>,
    pub peer: String,
}

impl Caller {
    /// The local, unauthenticated caller of an uninitialised scheduler.
    pub fn local(peer: impl Into<String>) -> Self {
        Self {
            user: "local".into(),
            role: crate::auth::Role::Local,
            cases: Vec::new(),
            peer: peer.into(),
        }
    }
}

/// A change of a job, for watchers.
#[derive(Debug, Clone)]
pub struct JobChange {
    pub job_id: String,
    pub message: String,
}

#[derive(Debug)]
struct JobEntry {
    rec: JobRecord,
    /// Queued tasks, by (order, task id).
    queued: BTreeSet<(u32, String)>,
    leased: u32,
    unfinished: u32,
    finalizing: bool,
    /// Waiting tasks are being released (their inputs gathered).
    releasing: bool,
}

#[derive(Debug)]
struct WorkerEntry {
    rec: WorkerRecord,
    running: HashSet<String>,
    /// Busy slots over the last [`LOAD_HISTORY_MS`]: (unix ms, busy),
    /// one sample per [`LOAD_SAMPLE_MS`] (the highest seen in it).
    load: VecDeque<(i64, u32)>,
}

/// How far back the pool's load history goes (in memory).
pub const LOAD_HISTORY_MS: i64 = 6 * 3600 * 1000;
/// One load sample per this period.
pub const LOAD_SAMPLE_MS: i64 = 15 * 1000;

impl WorkerEntry {
    fn sample_load(&mut self, now: i64) {
        let busy = self.running.len() as u32;
        match self.load.back_mut() {
            Some(last) if now - last.0 < LOAD_SAMPLE_MS => last.1 = last.1.max(busy),
            _ => self.load.push_back((now, busy)),
        }
        while self
            .load
            .front()
            .is_some_and(|f| now - f.0 > LOAD_HISTORY_MS)
        {
            self.load.pop_front();
        }
    }
}

/// What the pool page shows: each worker with its busy slots and load
/// history, and the queue per priority.
#[derive(Debug, Clone, Default)]
pub struct PoolView {
    pub workers: Vec<WorkerView>,
    /// Priority name -> (jobs with queued tasks, queued tasks), highest
    /// priority first.
    pub queue: Vec<(String, u64, u64)>,
}

/// A worker on the pool page.
#[derive(Debug, Clone)]
pub struct WorkerView {
    pub rec: WorkerRecord,
    pub busy: u32,
    pub load: Vec<(i64, u32)>,
}

#[derive(Debug, Default)]
struct State {
    jobs: BTreeMap<String, JobEntry>,
    tasks: HashMap<String, TaskRecord>,
    workers: HashMap<String, WorkerEntry>,
    /// Lease counter value when a case was last served (fair share).
    case_served: HashMap<String, u64>,
    lease_counter: u64,
}

/// A task handed to a worker, with what it needs to run it.
#[derive(Debug, Clone)]
pub struct Lease {
    pub task: TaskRecord,
    pub spec: JobSpec,
    pub evidence: EvidenceMeta,
}

/// What a heartbeat tells the worker.
#[derive(Debug, Default)]
pub struct HeartbeatOutcome {
    pub cancel: Vec<String>,
    pub reregister: bool,
}

/// The scheduler.
pub struct Scheduler {
    pub(crate) cfg: SchedulerConfig,
    pub(crate) store: Store,
    state: Mutex<State>,
    events: broadcast::Sender<JobChange>,
    /// Signalled whenever tasks become ready (long-polling leases wait on it).
    work: tokio::sync::Notify,
    pub(crate) uploads: EvidenceStore,
    evidence_cache: Mutex<HashMap<String, SharedEvidence>>,
    /// Users and worker certificates of an initialised data directory.
    auth: Option<Arc<crate::auth::Authenticator>>,
    /// Merged results of finished jobs not yet taken (`hand_over_results`).
    handed: Mutex<HashMap<String, trawl_report::JobResults>>,
    /// Where server-side evidence paths may lie (the configured roots,
    /// never the data directory).
    confinement: trawl_evidence::Confinement,
    /// How far past its scan range a shard task may read (the job's
    /// largest carved file), per job.
    read_extent: Mutex<HashMap<String, u64>>,
    /// Which refusals are audited in full, and the count of the others.
    pub(crate) refusals: crate::audit_limit::RefusalLimiter,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("cfg", &self.cfg).finish()
    }
}

/// Ordering key of a job for the next lease: priority class (highest
/// first), running tasks of its case, when its case was last served, then
/// submission order.
type PickKey = (std::cmp::Reverse<Priority>, u32, u64, u64);

fn job_order_key(e: &JobEntry) -> (u64, &str) {
    (e.rec.seq, e.rec.job_id.as_str())
}

impl Scheduler {
    /// Opens the state (or starts empty) and rebuilds the queues.
    ///
    /// # Errors
    /// The data directory or database cannot be opened.
    pub fn open(cfg: SchedulerConfig) -> Result<Arc<Self>, SchedError> {
        let store = crate::audit_key::open_store(&cfg)?;
        let uploads = EvidenceStore::open(&cfg.data_dir.join("evidence"), cfg.ephemeral)?;
        let (events, _) = broadcast::channel(1024);
        let auth = if !cfg.ephemeral && crate::auth::is_initialised(&cfg.data_dir) {
            Some(Arc::new(
                crate::auth::Authenticator::open(&cfg.data_dir)
                    .map_err(|e| SchedError::FailedPrecondition(format!("{e:#}")))?,
            ))
        } else {
            None
        };
        let confinement =
            trawl_evidence::Confinement::new(&cfg.evidence_roots, &[cfg.data_dir.as_path()]);
        for r in confinement.roots() {
            if !r.exists() {
                tracing::warn!(root = %r.display(), "evidence root does not exist (yet)");
            }
        }
        let refusals = crate::audit_limit::RefusalLimiter::new(cfg.audit_refusals_per_minute);
        let s = Arc::new(Self {
            confinement,
            read_extent: Mutex::new(HashMap::new()),
            cfg,
            store,
            state: Mutex::new(State::default()),
            events,
            work: tokio::sync::Notify::new(),
            uploads,
            evidence_cache: Mutex::new(HashMap::new()),
            auth,
            handed: Mutex::new(HashMap::new()),
            refusals,
        });
        s.rebuild()?;
        s.sync_registry(true);
        Ok(s)
    }

    /// Whether `caller`, as the registry describes it now, may still do
    /// `perm` on `case` (a revoked or expired token may not; open streams
    /// check this and end).
    pub fn still_may(&self, caller: &Caller, perm: crate::auth::Perm, case: &str) -> bool {
        match &self.auth {
            None => true,
            Some(a) => a.refresh(caller).is_some_and(|c| c.may(perm, case)),
        }
    }

    /// The authenticator of an initialised scheduler (`None`: insecure,
    /// loopback only).
    pub fn authenticator(&self) -> Option<&Arc<crate::auth::Authenticator>> {
        self.auth.as_ref()
    }

    /// Records the registry's current state; with `audit`, every change
    /// since the last recorded state (users added or revoked with
    /// `trawl-scheduler user`, workers enrolled) gets an audit entry.
    pub fn sync_registry(&self, audit: bool) {
        let Some(a) = &self.auth else { return };
        let now = a.registry();
        let old: crate::auth::Registry = self
            .store
            .meta_get("registry_snapshot")
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if old == now {
            return;
        }
        if audit {
            let who = Caller {
                user: "trawl-scheduler".into(),
                role: crate::auth::Role::Local,
                cases: Vec::new(),
                peer: "data directory".into(),
            };
            for (action, name, detail) in crate::auth::changes(&old, &now) {
                self.audit(&who, action, &name, "", detail);
            }
        }
        match serde_json::to_vec(&now) {
            Ok(b) => {
                if let Err(e) = self.store.meta_put("registry_snapshot", &b) {
                    tracing::error!(error = %e, "recording the registry snapshot");
                }
            }
            Err(e) => tracing::error!(error = %e, "encoding the registry snapshot"),
        }
    }

    /// The state database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    fn rebuild(self: &Arc<Self>) -> Result<(), SchedError> {
        let jobs = self.store.jobs()?;
        let tasks = self.store.tasks()?;
        let now = now_ms();
        let mut st = self.state.lock();
        for rec in jobs {
            st.jobs.insert(
                rec.job_id.clone(),
                JobEntry {
                    rec,
                    queued: BTreeSet::new(),
                    leased: 0,
                    unfinished: 0,
                    finalizing: false,
                    releasing: false,
                },
            );
        }
        let mut refreshed = Vec::new();
        for j in st.jobs.values_mut() {
            if j.rec.plan.is_some() {
                let total = j.rec.progress.bytes_total;
                j.rec.progress = ProgressRecord {
                    bytes_total: total,
                    ..Default::default()
                };
            }
        }
        for mut t in tasks {
            let Some(job) = st.jobs.get_mut(&t.job_id) else {
                continue;
            };
            if !t.state.is_final() {
                job.unfinished += 1;
            }
            let p = &mut job.rec.progress;
            p.tasks_total += 1;
            match t.state {
                TaskState::Done => {
                    p.tasks_done += 1;
                    if t.kind == TaskKind::Shard {
                        p.bytes_done += t.bytes;
                    }
                    for (k, n) in &t.findings {
                        *p.findings.entry(k.clone()).or_default() += n;
                    }
                }
                TaskState::Quarantined => p.tasks_failed += 1,
                _ => {}
            }
            match t.state {
                TaskState::Queued => {
                    job.queued.insert((t.order, t.task_id.clone()));
                }
                TaskState::Leased => {
                    // The worker holding it may still report after it
                    // reconnects: give it a fresh lease period.
                    t.lease_deadline_ms = now + self.cfg.lease_ms as i64;
                    job.leased += 1;
                    refreshed.push(t.clone());
                }
                _ => {}
            }
            st.lease_counter = st.lease_counter.max(t.first_lease_seq);
            st.tasks.insert(t.task_id.clone(), t);
        }
        self.store.put_tasks(refreshed.iter())?;
        // A completed job's counts are its merged report's, not the sums
        // over its tasks.
        for j in st.jobs.values_mut() {
            if let Some(c) = &j.rec.counts {
                j.rec.progress.findings = c.findings();
            }
        }
        // Jobs whose tasks all finished but were not finalised (crash during
        // the merge) are finalised now; jobs left in planning are re-planned.
        let mut to_finalize = Vec::new();
        let mut to_plan = Vec::new();
        for (id, j) in &st.jobs {
            if j.rec.state.is_final() {
                continue;
            }
            if j.rec.plan.is_none() {
                to_plan.push(id.clone());
            } else if j.unfinished == 0 {
                to_finalize.push(id.clone());
            }
        }
        drop(st);
        for id in to_finalize {
            self.spawn_finalize(id);
        }
        for id in to_plan {
            self.spawn_plan(id);
        }
        for id in self.jobs_waiting_release() {
            self.maybe_release(&id);
        }
        Ok(())
    }

    fn notify(&self, job_id: &str, message: impl Into<String>) {
        let _ = self.events.send(JobChange {
            job_id: job_id.to_string(),
            message: message.into(),
        });
    }

    /// A future that completes when tasks may have become ready.
    pub fn work_ready(&self) -> tokio::sync::futures::Notified<'_> {
        self.work.notified()
    }

    fn wake_workers(&self) {
        self.work.notify_waiters();
    }

    /// Job change events.
    pub fn subscribe(&self) -> broadcast::Receiver<JobChange> {
        self.events.subscribe()
    }

    /// Records an audited action (failures to audit are logged, never
    /// silent). Refusals (`denied`) go through the rate limit: the first of
    /// each minute per source, user and kind are written, the rest counted
    /// into one aggregate entry ([`crate::audit_limit`]).
    pub fn audit(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        case_id: &str,
        detail: impl Into<String>,
    ) {
        let detail = detail.into();
        if action == "denied" {
            let role = caller.role.to_string();
            let (full, closed) = self.refusals.admit(
                now_ms(),
                &crate::audit_limit::Refusal {
                    peer: &caller.peer,
                    actor: &caller.user,
                    role: &role,
                    action,
                    target,
                    case_id,
                    detail: &detail,
                },
            );
            for e in closed {
                self.append_audit(e);
            }
            if !full {
                return;
            }
        }
        self.append_audit(trawl_store::NewAuditEntry {
            actor: caller.user.clone(),
            role: caller.role.to_string(),
            action: action.into(),
            target: target.into(),
            case_id: case_id.into(),
            from: caller.peer.clone(),
            detail,
        });
    }

    /// Audits a call that was refused before anyone was identified (bad
    /// token, no TLS, a certificate not enrolled), rate-limited as
    /// [`Scheduler::audit`]'s refusals are.
    pub fn audit_refusal(&self, who: &str, peer: &str, reason: &str) {
        let actor = if who.is_empty() { "(unknown)" } else { who };
        let (full, closed) = self.refusals.admit(
            now_ms(),
            &crate::audit_limit::Refusal {
                peer,
                actor,
                role: "none",
                action: "auth.refused",
                target: "",
                case_id: "",
                detail: reason,
            },
        );
        for e in closed {
            self.append_audit(e);
        }
        if full {
            self.append_audit(trawl_store::NewAuditEntry {
                actor: actor.into(),
                role: "none".into(),
                action: "auth.refused".into(),
                target: String::new(),
                case_id: String::new(),
                from: peer.into(),
                detail: reason.into(),
            });
        }
    }

    // ------------------------------------------------------------------
    // Jobs
    // ------------------------------------------------------------------

    /// Accepts a job: records it queued, then plans it in the background
    /// (opening the evidence); a job whose evidence cannot be read fails
    /// with the reason in its status.
    ///
    /// # Errors
    /// Invalid specification, or the state database failing.
    pub async fn submit(
        self: &Arc<Self>,
        mut spec: JobSpec,
        caller: &Caller,
    ) -> Result<JobRecord, SchedError> {
        spec.validate()
            .map_err(|e| SchedError::InvalidArgument(e.to_string()))?;
        trawl_analyzers::check_settings(&spec)
            .map_err(|e| SchedError::InvalidArgument(e.to_string()))?;
        let case = spec.case_id.as_str().to_string();
        let bytes = match &spec.evidence {
            EvidenceRef::Paths(paths) => {
                let mut n = 0u64;
                for p in paths {
                    n = n.saturating_add(self.check_evidence_path(p, &case)?);
                }
                n
            }
            EvidenceRef::Upload(d) => self
                .store
                .evidence(&d.to_ascii_lowercase())?
                .map(|e| e.size)
                .unwrap_or(0),
        };
        if bytes > 0 {
            self.check_task_count(bytes, spec.shard_size)?;
        }
        self.check_quota(caller, bytes)?;
        self.resolve_rules(&mut spec, caller).await?;
        let seq = self.store.next_id("job")?;
        let created = now_ms();
        let job_id =
            JobId::new(format!("J{seq:06}")).map_err(|e| SchedError::Internal(e.to_string()))?;
        let rec = JobRecord {
            job_id: job_id.to_string(),
            seq,
            spec,
            submitter: caller.user.clone(),
            state: JobState::Queued,
            error: String::new(),
            created_ms: created,
            started_ms: 0,
            finished_ms: 0,
            evidence: None,
            plan: None,
            progress: ProgressRecord::default(),
            limitations: Vec::new(),
            version: 1,
            counts: None,
            throughput: Vec::new(),
        };
        self.store.put_job(&rec)?;
        self.store.flush_async().await?;
        self.audit(
            caller,
            "job.submit",
            &rec.job_id,
            rec.spec.case_id.as_str(),
            format!("analyses={}", rec.spec.analyses),
        );
        self.state.lock().jobs.insert(
            rec.job_id.clone(),
            JobEntry {
                rec: rec.clone(),
                queued: BTreeSet::new(),
                leased: 0,
                unfinished: 0,
                finalizing: false,
                releasing: false,
            },
        );
        self.notify(&rec.job_id, "submitted");
        self.spawn_plan(rec.job_id.clone());
        Ok(rec)
    }

    /// Where evidence of `case` may be read from: the scheduler's roots and
    /// the case's own.
    pub(crate) fn confinement_for(&self, case: &str) -> trawl_evidence::Confinement {
        match self.cfg.case_evidence_roots.get(case) {
            Some(more) => self.confinement.with_roots(more),
            None => self.confinement.clone(),
        }
    }

    /// A server-side evidence path of a job of `case`: absolute, resolving
    /// (symbolic links followed) under an evidence root, not in the data
    /// directory. Returns its size (0 for devices).
    fn check_evidence_path(&self, p: &str, case: &str) -> Result<u64, SchedError> {
        let path = std::path::Path::new(p);
        if !path.is_absolute() {
            return Err(SchedError::InvalidArgument(format!(
                "evidence path {p:?} must be absolute (a path every node can read)"
            )));
        }
        let conf = self.confinement_for(case);
        if conf.is_empty() {
            return Err(SchedError::PermissionDenied(format!(
                "evidence path {p:?} refused: this scheduler has no evidence root (start it with --evidence-root DIR, TRAWL_EVIDENCE_ROOTS or evidence_roots in its configuration file); upload the image instead (trawl submit --upload)"
            )));
        }
        let real = conf.check_path(path).map_err(|e| match e {
            trawl_evidence::EvidenceError::OutsideRoots { why, .. } => {
                SchedError::PermissionDenied(format!("evidence path {p:?} refused: {why}"))
            }
            e => SchedError::Evidence(e),
        })?;
        Ok(std::fs::metadata(&real).map(|m| m.len()).unwrap_or(0))
    }

    /// Refuses a job whose shards would be smaller than the scheduler's
    /// minimum or more than its per-job cap.
    pub(crate) fn check_task_count(
        &self,
        image_size: u64,
        shard_size: u64,
    ) -> Result<(), SchedError> {
        let min = self.cfg.min_shard_size;
        if shard_size < min {
            return Err(SchedError::InvalidArgument(format!(
                "shard size {shard_size} bytes is below this scheduler's minimum of {min} bytes"
            )));
        }
        let shards = image_size.div_ceil(shard_size.max(1));
        let max = self.cfg.max_tasks_per_job;
        // Shards, plus the stream hash and the YARA steps.
        if shards.saturating_add(3) > max {
            let fit = image_size
                .div_ceil(max.saturating_sub(3).max(1))
                .next_power_of_two();
            return Err(SchedError::InvalidArgument(format!(
                "{image_size} bytes in shards of {shard_size} bytes would make {shards} tasks, more than this scheduler's limit of {max} per job: use --shard-size {fit} or more"
            )));
        }
        Ok(())
    }

    /// Refuses a job that would take `user` over the per-user limit of
    /// evidence bytes in unfinished jobs.
    fn check_quota(&self, caller: &Caller, bytes: u64) -> Result<(), SchedError> {
        let max = self.cfg.max_queued_bytes_per_user;
        if max == 0 || caller.role == crate::auth::Role::Local {
            return Ok(());
        }
        let queued: u64 = self
            .state
            .lock()
            .jobs
            .values()
            .filter(|j| j.rec.submitter == caller.user && !j.rec.state.is_final())
            .map(|j| {
                j.rec
                    .plan
                    .map(|p| p.image_size)
                    .unwrap_or(j.rec.progress.bytes_total)
            })
            .sum();
        if queued.saturating_add(bytes) > max {
            return Err(SchedError::ResourceExhausted(format!(
                "user {} has {queued} bytes of evidence in unfinished jobs; {bytes} more would exceed the limit of {max} bytes per user: wait for jobs to finish or ask an administrator",
                caller.user
            )));
        }
        Ok(())
    }

    fn spawn_plan(self: &Arc<Self>, job_id: String) {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.plan(&job_id));
    }

    /// Opens the evidence, records its size and format, creates the tasks.
    fn plan(self: &Arc<Self>, job_id: &str) {
        let spec = match self.state.lock().jobs.get(job_id) {
            Some(j) if j.rec.state == JobState::Queued && j.rec.plan.is_none() => {
                j.rec.spec.clone()
            }
            _ => return,
        };
        let planned = crate::plan::plan_job(self, job_id, &spec);
        let mut st = self.state.lock();
        let Some(job) = st.jobs.get_mut(job_id) else {
            return;
        };
        if job.rec.state != JobState::Queued {
            return; // cancelled meanwhile
        }
        match planned {
            Err(e) => {
                tracing::warn!(job = job_id, error = %e, "job failed while planning");
                job.rec.state = JobState::Failed;
                job.rec.error = e.to_string();
                job.rec.finished_ms = now_ms();
                job.rec.version += 1;
                let rec = job.rec.clone();
                drop(st);
                let _ = self.store.put_job(&rec);
                let _ = self.store.flush();
                self.notify(job_id, format!("failed: {}", rec.error));
            }
            Ok((meta, plan, tasks)) => {
                job.rec.evidence = Some(meta);
                job.rec.plan = Some(plan);
                job.rec.progress.bytes_total = plan.image_size;
                job.rec.progress.tasks_total = tasks.len() as u32;
                job.rec.version += 1;
                job.unfinished = tasks.len() as u32;
                for t in &tasks {
                    if t.state == TaskState::Queued {
                        job.queued.insert((t.order, t.task_id.clone()));
                    }
                }
                let rec = job.rec.clone();
                let empty = tasks.is_empty();
                for t in &tasks {
                    st.tasks.insert(t.task_id.clone(), t.clone());
                }
                drop(st);
                if let Err(e) = self
                    .store
                    .put_tasks(tasks.iter())
                    .and_then(|_| self.store.put_job(&rec))
                {
                    tracing::error!(job = job_id, error = %e, "persisting the plan failed");
                }
                self.notify(job_id, format!("planned {} tasks", tasks.len()));
                self.wake_workers();
                if empty {
                    self.spawn_finalize(job_id.to_string());
                }
            }
        }
    }

    /// Opens (once, then cached) a job's evidence.
    ///
    /// # Errors
    /// The evidence cannot be opened.
    pub fn open_evidence(
        &self,
        job_id: &str,
        spec: &JobSpec,
    ) -> Result<SharedEvidence, SchedError> {
        if let Some(e) = self.evidence_cache.lock().get(job_id) {
            return Ok(e.clone());
        }
        let ev = match &spec.evidence {
            EvidenceRef::Paths(p) => {
                // Checked again at open, on the files as opened: a path
                // swapped since the submission cannot lead out of the roots.
                let paths: Vec<_> = p.iter().map(std::path::PathBuf::from).collect();
                self.confinement_for(spec.case_id.as_str())
                    .open_segments(&paths)?
            }
            EvidenceRef::Upload(d) => {
                let path = self.uploads.complete_path(d).ok_or_else(|| {
                    SchedError::NotFound(format!(
                        "upload {d} is not in the evidence store (or is incomplete)"
                    ))
                })?;
                trawl_evidence::open(path)?
            }
        };
        let mut c = self.evidence_cache.lock();
        if c.len() > 64 {
            c.clear();
        }
        c.insert(job_id.to_string(), ev.clone());
        Ok(ev)
    }

    /// A job.
    ///
    /// # Errors
    /// Unknown job.
    pub fn job(&self, job_id: &str) -> Result<JobRecord, SchedError> {
        self.state
            .lock()
            .jobs
            .get(job_id)
            .map(|j| j.rec.clone())
            .ok_or_else(|| SchedError::NotFound(format!("job {job_id:?}")))
    }

    /// Jobs, newest first, filtered.
    pub fn list_jobs(
        &self,
        case: Option<&str>,
        state: Option<JobState>,
        submitter: Option<&str>,
        limit: usize,
    ) -> Vec<JobRecord> {
        let st = self.state.lock();
        let mut v: Vec<_> = st
            .jobs
            .values()
            .filter(|j| case.is_none_or(|c| j.rec.spec.case_id.as_str() == c))
            .filter(|j| state.is_none_or(|s| j.rec.state == s))
            .filter(|j| submitter.is_none_or(|s| j.rec.submitter == s))
            .map(|j| j.rec.clone())
            .collect();
        v.sort_by_key(|j| std::cmp::Reverse(j.seq));
        if limit > 0 {
            v.truncate(limit);
        }
        v
    }

    /// Cancels a job: queued tasks never run, running ones are stopped at
    /// the workers' next heartbeat.
    ///
    /// # Errors
    /// Unknown job.
    pub fn cancel(
        &self,
        job_id: &str,
        reason: &str,
        caller: &Caller,
    ) -> Result<JobRecord, SchedError> {
        let mut st = self.state.lock();
        let State { jobs, tasks, .. } = &mut *st;
        let job = jobs
            .get_mut(job_id)
            .ok_or_else(|| SchedError::NotFound(format!("job {job_id:?}")))?;
        if job.rec.state.is_final() {
            // Nothing to cancel: said, and the attempt audited.
            let (state, case) = (job.rec.state.name(), job.rec.spec.case_id.clone());
            drop(st);
            let msg = format!("job {job_id} has already ended ({state}): nothing to cancel");
            self.audit(
                caller,
                "job.cancel",
                job_id,
                case.as_str(),
                format!("refused: {msg}"),
            );
            return Err(SchedError::FailedPrecondition(msg));
        }
        job.rec.state = JobState::Cancelled;
        job.rec.error = if reason.is_empty() {
            format!("cancelled by {}", caller.user)
        } else {
            format!("cancelled by {}: {reason}", caller.user)
        };
        job.rec.finished_ms = now_ms();
        job.rec.version += 1;
        job.queued.clear();
        job.leased = 0;
        let mut changed = Vec::new();
        for t in tasks
            .values_mut()
            .filter(|t| t.job_id == job_id && !t.state.is_final())
        {
            t.state = TaskState::Cancelled;
            changed.push(t.clone());
        }
        job.unfinished = 0;
        let rec = job.rec.clone();
        drop(st);
        self.store.put_tasks(changed.iter())?;
        self.store.put_job(&rec)?;
        self.store.flush()?;
        self.audit(
            caller,
            "job.cancel",
            job_id,
            rec.spec.case_id.as_str(),
            reason.to_string(),
        );
        self.notify(job_id, "cancelled");
        Ok(rec)
    }

    // ------------------------------------------------------------------
    // Workers
    // ------------------------------------------------------------------

    /// Registers (or re-registers) a worker.
    ///
    /// # Errors
    /// The state database failing.
    pub fn register(
        &self,
        mut info: WorkerRecord,
        cert: Option<&str>,
    ) -> Result<WorkerRecord, SchedError> {
        let now = now_ms();
        if info.worker_id.is_empty() {
            let id = format!(
                "W{:04}-{}",
                self.store.next_id("worker")?,
                sanitize(&info.hostname)
            );
            info.worker_id = match cert {
                Some(c) => format!("{c}@{id}"),
                None => id,
            };
        }
        trawl_core::WorkerId::new(info.worker_id.clone())
            .map_err(|e| SchedError::InvalidArgument(e.to_string()))?;
        info.registered_ms = now;
        info.last_heartbeat_ms = now;
        info.slots = info.slots.clamp(1, 1024);
        let mut st = self.state.lock();
        let running = st
            .tasks
            .values()
            .filter(|t| {
                t.state == TaskState::Leased && t.worker.as_deref() == Some(&info.worker_id)
            })
            .map(|t| t.task_id.clone())
            .collect();
        let mut load = VecDeque::new();
        if let Some(old) = st.workers.get_mut(&info.worker_id) {
            info.tasks_done = old.rec.tasks_done;
            info.bytes_done = old.rec.bytes_done;
            load = std::mem::take(&mut old.load);
        }
        st.workers.insert(
            info.worker_id.clone(),
            WorkerEntry {
                rec: info.clone(),
                running,
                load,
            },
        );
        drop(st);
        self.store.put_worker(&info)?;
        tracing::info!(worker = %info.worker_id, slots = info.slots, host = %info.hostname, "worker registered");
        Ok(info)
    }

    /// A worker's heartbeat: extends the leases it still holds; lists the
    /// tasks it must stop.
    pub fn heartbeat(
        &self,
        worker_id: &str,
        task_ids: &[String],
        memory_free: u64,
        rule_sets: &[String],
    ) -> HeartbeatOutcome {
        let now = now_ms();
        let mut st = self.state.lock();
        let State { workers, tasks, .. } = &mut *st;
        let Some(w) = workers.get_mut(worker_id) else {
            return HeartbeatOutcome {
                cancel: task_ids.to_vec(),
                reregister: true,
            };
        };
        w.rec.last_heartbeat_ms = now;
        w.rec.memory_free_bytes = memory_free;
        w.rec.capabilities.retain(|c| !c.starts_with("ruleset:"));
        w.rec
            .capabilities
            .extend(rule_sets.iter().map(|d| format!("ruleset:{d}")));
        w.sample_load(now);
        let mut out = HeartbeatOutcome::default();
        for id in task_ids {
            match tasks.get_mut(id) {
                Some(t)
                    if t.state == TaskState::Leased && t.worker.as_deref() == Some(worker_id) =>
                {
                    t.lease_deadline_ms = now + self.cfg.lease_ms as i64;
                }
                _ => out.cancel.push(id.clone()),
            }
        }
        out
    }

    /// The pool as its page shows it: workers with their load history,
    /// and the queue depth per priority.
    pub fn pool_view(&self) -> PoolView {
        let now = now_ms();
        let mut st = self.state.lock();
        let mut workers: Vec<WorkerView> = st
            .workers
            .values_mut()
            .map(|w| {
                w.sample_load(now);
                WorkerView {
                    rec: w.rec.clone(),
                    busy: w.running.len() as u32,
                    load: w.load.iter().copied().collect(),
                }
            })
            .collect();
        workers.sort_by(|a, b| {
            (a.rec.site.as_str(), a.rec.worker_id.as_str())
                .cmp(&(b.rec.site.as_str(), b.rec.worker_id.as_str()))
        });
        let mut queue: BTreeMap<std::cmp::Reverse<Priority>, (u64, u64)> = BTreeMap::new();
        for j in st.jobs.values() {
            if j.rec.state.is_final() {
                continue;
            }
            let q = queue
                .entry(std::cmp::Reverse(j.rec.spec.priority))
                .or_default();
            if !j.queued.is_empty() || j.rec.plan.is_none() {
                q.0 += 1;
            }
            q.1 += j.queued.len() as u64;
        }
        PoolView {
            workers,
            queue: queue
                .into_iter()
                .map(|(p, (j, t))| (p.0.name().to_string(), j, t))
                .collect(),
        }
    }

    /// The pool.
    pub fn workers(&self) -> Vec<(WorkerRecord, u32)> {
        let st = self.state.lock();
        let mut v: Vec<_> = st
            .workers
            .values()
            .map(|w| (w.rec.clone(), w.running.len() as u32))
            .collect();
        v.sort_by(|a, b| a.0.worker_id.cmp(&b.0.worker_id));
        v
    }

    fn live_workers(st: &State, now: i64, heartbeat_ms: u64) -> usize {
        st.workers
            .values()
            .filter(|w| now - w.rec.last_heartbeat_ms <= 3 * heartbeat_ms as i64 + 1000)
            .count()
    }

    /// Leases up to `max` tasks to a worker. The lease clock starts now.
    ///
    /// # Errors
    /// Unknown worker (it must register again).
    pub fn lease(&self, worker_id: &str, max: u32) -> Result<Vec<Lease>, SchedError> {
        let now = now_ms();
        let mut st = self.state.lock();
        if !st.workers.contains_key(worker_id) {
            return Err(SchedError::FailedPrecondition(format!(
                "worker {worker_id:?} is not registered (register again)"
            )));
        }
        let several_workers = Self::live_workers(&st, now, self.cfg.heartbeat_ms) > 1;
        let mut out = Vec::new();
        let mut changed = Vec::new();
        let mut jobs_changed = Vec::new();
        for _ in 0..max.min(256) {
            let Some((job_id, task_id)) = self.pick(&st, worker_id, several_workers) else {
                break;
            };
            st.lease_counter += 1;
            let counter = st.lease_counter;
            let State {
                jobs,
                tasks,
                workers,
                case_served,
                ..
            } = &mut *st;
            let job = jobs.get_mut(&job_id).expect("picked job exists");
            let t = tasks.get_mut(&task_id).expect("picked task exists");
            job.queued.remove(&(t.order, task_id.clone()));
            job.leased += 1;
            case_served.insert(job.rec.spec.case_id.to_string(), counter);
            t.state = TaskState::Leased;
            t.worker = Some(worker_id.to_string());
            t.attempts += 1;
            if t.first_lease_seq == 0 {
                t.first_lease_seq = counter;
            }
            t.lease_deadline_ms = now + self.cfg.lease_ms as i64;
            t.lease_token = new_lease_token();
            if job.rec.state == JobState::Queued {
                job.rec.state = JobState::Running;
                job.rec.started_ms = now;
                job.rec.version += 1;
                jobs_changed.push(job.rec.clone());
            }
            if let Some(w) = workers.get_mut(worker_id) {
                w.running.insert(task_id.clone());
            }
            changed.push(t.clone());
            out.push(Lease {
                task: t.clone(),
                spec: job.rec.spec.clone(),
                evidence: job.rec.evidence.clone().unwrap_or_default(),
            });
        }
        drop(st);
        if !changed.is_empty() {
            self.store.put_tasks(changed.iter())?;
        }
        for j in jobs_changed {
            self.store.put_job(&j)?;
            self.notify(&j.job_id, "running");
        }
        Ok(out)
    }

    /// Chooses the next task for a worker (see the module docs).
    fn pick(&self, st: &State, worker_id: &str, avoid_failed: bool) -> Option<(String, String)> {
        // Running tasks per case.
        let mut running: HashMap<&str, u32> = HashMap::new();
        for j in st.jobs.values() {
            *running.entry(j.rec.spec.case_id.as_str()).or_default() += j.leased;
        }
        let mut best: Option<(PickKey, &JobEntry, &str)> = None;
        for j in st.jobs.values() {
            if j.queued.is_empty() || j.rec.state.is_final() {
                continue;
            }
            let case = j.rec.spec.case_id.as_str();
            // First queued task this worker may take.
            let task = j.queued.iter().find(|(_, id)| {
                !avoid_failed
                    || st
                        .tasks
                        .get(id.as_str())
                        .is_none_or(|t| !t.failed_on.iter().any(|w| w == worker_id))
            });
            let Some((_, task)) = task else { continue };
            let key = (
                std::cmp::Reverse(j.rec.spec.priority),
                running.get(case).copied().unwrap_or(0),
                st.case_served.get(case).copied().unwrap_or(0),
                j.rec.seq,
            );
            if best.as_ref().is_none_or(|(k, bj, _)| {
                key < *k || (key == *k && job_order_key(j) < job_order_key(bj))
            }) {
                best = Some((key, j, task.as_str()));
            }
        }
        best.map(|(_, j, t)| (j.rec.job_id.clone(), t.to_string()))
    }

    /// Whether the worker certificate `cert` holds, right now, a lease on a
    /// task of `job_id` whose bytes include `[offset, offset + len)`: a
    /// worker reads only what its current leases need (a shard's scan
    /// range and the files that may be carved from it; the carved files of
    /// a YARA_CARVED task; the whole image for the stream hash and the
    /// whole-image YARA step).
    ///
    /// # Errors
    /// [`SchedError::PermissionDenied`] naming the range.
    pub fn worker_may_read(
        &self,
        cert: &str,
        job_id: &str,
        offset: u64,
        len: u64,
    ) -> Result<(), SchedError> {
        let now = now_ms();
        let end = offset.saturating_add(len);
        let cached = self.read_extent.lock().get(job_id).copied();
        let extent = match cached {
            Some(e) => e,
            None => {
                let e = trawl_analyzers::read_extent(&self.job(job_id)?.spec);
                self.read_extent.lock().insert(job_id.to_string(), e);
                e
            }
        };
        let st = self.state.lock();
        let image_size = st
            .jobs
            .get(job_id)
            .and_then(|j| j.rec.plan.map(|p| p.image_size))
            .unwrap_or(0);
        let ok = st
            .workers
            .iter()
            .filter(|(id, _)| worker_of_cert(id, cert))
            .flat_map(|(_, w)| w.running.iter())
            .filter_map(|id| st.tasks.get(id))
            .filter(|t| {
                t.job_id == job_id
                    && t.state == TaskState::Leased
                    && t.lease_deadline_ms >= now
                    && t.worker.as_deref().is_some_and(|w| worker_of_cert(w, cert))
            })
            .any(|t| match (t.kind, t.shard) {
                (TaskKind::Shard, Some(s)) => {
                    offset >= s.start.saturating_sub(1 << 20)
                        && end
                            <= s.scan_end
                                .saturating_add(extent)
                                .min(image_size.max(s.scan_end))
                }
                (TaskKind::YaraCarved, _) => t.carved.iter().any(|c| {
                    (offset >= c.offset && end <= c.offset.saturating_add(c.length))
                        || c.byte_runs.iter().any(|r| {
                            offset >= r.img_offset && end <= r.img_offset.saturating_add(r.len)
                        })
                }),
                _ => end <= image_size,
            });
        if ok {
            Ok(())
        } else {
            Err(SchedError::PermissionDenied(format!(
                "worker {cert} holds no current lease of job {job_id} covering bytes {offset}..{end}"
            )))
        }
    }

    /// Gives leases back without results (a draining worker).
    pub fn release(&self, worker_id: &str, task_ids: &[String]) {
        let mut changed = Vec::new();
        {
            let mut st = self.state.lock();
            let State {
                jobs,
                tasks,
                workers,
                ..
            } = &mut *st;
            for id in task_ids {
                let Some(t) = tasks.get_mut(id) else { continue };
                if t.state != TaskState::Leased || t.worker.as_deref() != Some(worker_id) {
                    continue;
                }
                t.state = TaskState::Queued;
                t.worker = None;
                // A released task was not at fault: the attempt is returned.
                t.attempts = t.attempts.saturating_sub(1);
                if let Some(j) = jobs.get_mut(&t.job_id) {
                    j.leased = j.leased.saturating_sub(1);
                    j.queued.insert((t.order, t.task_id.clone()));
                }
                if let Some(w) = workers.get_mut(worker_id) {
                    w.running.remove(id);
                }
                changed.push(t.clone());
            }
        }
        if let Err(e) = self.store.put_tasks(changed.iter()) {
            tracing::error!(error = %e, "persisting released tasks failed");
        }
        self.wake_workers();
    }

    /// A worker's report. Taken only from the worker holding the task's
    /// current lease, with the lease's token, before the lease expired; a
    /// task already done ignores further reports (returns false). A result
    /// is checked for shape (task, offsets inside the image and the task's
    /// range, names) before it is stored. Returns whether the report was
    /// taken.
    ///
    /// # Errors
    /// Unknown task; the lease not held ([`SchedError::PermissionDenied`]);
    /// a malformed result ([`SchedError::InvalidArgument`]); the state
    /// database failing.
    pub fn report(
        self: &Arc<Self>,
        worker_id: &str,
        task_id: &str,
        lease_token: &str,
        outcome: Result<v1::TaskResult, String>,
    ) -> Result<bool, SchedError> {
        let now = now_ms();
        let mut st = self.state.lock();
        let State {
            jobs,
            tasks,
            workers,
            ..
        } = &mut *st;
        let t = tasks
            .get_mut(task_id)
            .ok_or_else(|| SchedError::NotFound(format!("task {task_id:?}")))?;
        if t.state.is_final() {
            if let Some(w) = workers.get_mut(worker_id) {
                w.running.remove(task_id);
            }
            return Ok(false);
        }
        let held = t.state == TaskState::Leased
            && t.worker.as_deref() == Some(worker_id)
            && !t.lease_token.is_empty()
            && constant_time_eq(t.lease_token.as_bytes(), lease_token.as_bytes())
            && t.lease_deadline_ms >= now;
        if !held {
            return Err(SchedError::PermissionDenied(format!(
                "task {task_id:?} is not leased to worker {worker_id:?} under this lease token (never leased to it, lease expired or taken by another worker)"
            )));
        }
        if let Some(w) = workers.get_mut(worker_id) {
            w.running.remove(task_id);
        }
        let job = jobs
            .get_mut(&t.job_id)
            .ok_or_else(|| SchedError::Internal(format!("task {task_id} has no job")))?;
        // A malformed result is refused: the attempt fails (retried, then
        // quarantined as a limitation), so the job still ends.
        let image_size = job.rec.plan.map(|p| p.image_size).unwrap_or(0);
        let refused = match &outcome {
            Ok(result) => crate::result_check::check(t, image_size, result)
                .err()
                .map(|e| format!("result of task {task_id} refused: {e}")),
            Err(_) => None,
        };
        let outcome = match &refused {
            Some(e) => Err(e.clone()),
            None => outcome,
        };
        match outcome {
            Ok(result) => {
                // Persist the result before the task is marked done.
                self.store.put_result(task_id, &result)?;
                if t.state == TaskState::Leased {
                    job.leased = job.leased.saturating_sub(1);
                } else {
                    job.queued.remove(&(t.order, t.task_id.clone()));
                }
                t.state = TaskState::Done;
                t.finished_ms = now_ms();
                t.lease_token.clear();
                t.worker = Some(worker_id.to_string());
                job.unfinished = job.unfinished.saturating_sub(1);
                let p = &mut job.rec.progress;
                p.tasks_done += 1;
                if t.kind == TaskKind::Shard {
                    p.bytes_done += t.bytes;
                }
                // Findings per kind: each feature scanner by name, carved
                // files, YARA matches.
                t.findings.clear();
                for f in &result.features {
                    *t.findings.entry(f.scanner.clone()).or_default() += 1;
                }
                for (k, n) in [("carved", result.carved.len()), ("yara", result.yara.len())] {
                    if n > 0 {
                        t.findings.insert(k.to_string(), n as u64);
                    }
                }
                for (k, n) in &t.findings {
                    *p.findings.entry(k.clone()).or_default() += n;
                }
                if let Some(w) = workers.get_mut(worker_id) {
                    w.rec.tasks_done += 1;
                    w.rec.bytes_done += t.bytes;
                }
            }
            Err(error) => {
                job.leased = job.leased.saturating_sub(1);
                Self::fail_attempt(&self.cfg, job, t, worker_id, &error, now);
            }
        }
        job.rec.version += 1;
        let task = t.clone();
        let job_id = job.rec.job_id.clone();
        // Progress is rebuilt from the tasks on restart; the job record itself
        // only changes when a range is quarantined (a new limitation).
        let rec = (task.state == TaskState::Quarantined).then(|| job.rec.clone());
        let done = job.unfinished == 0 && !job.finalizing && !job.rec.state.is_final();
        let release = task.kind == TaskKind::Shard && task.state.is_final();
        drop(st);
        self.store.put_task(&task)?;
        if let Some(rec) = rec {
            self.store.put_job(&rec)?;
        }
        self.notify(
            &job_id,
            format!(
                "task {task_id} {}",
                format!("{:?}", task.state).to_lowercase()
            ),
        );
        if release {
            self.maybe_release(&job_id);
        }
        if done {
            self.spawn_finalize(job_id);
        }
        match refused {
            Some(e) => Err(SchedError::InvalidArgument(e)),
            None => Ok(true),
        }
    }

    /// One failed attempt: requeue, or quarantine after `max_attempts`.
    fn fail_attempt(
        cfg: &SchedulerConfig,
        job: &mut JobEntry,
        t: &mut TaskRecord,
        worker_id: &str,
        error: &str,
        _now: i64,
    ) {
        t.errors
            .push(format!("attempt {} on {worker_id}: {error}", t.attempts));
        if !t.failed_on.iter().any(|w| w == worker_id) {
            t.failed_on.push(worker_id.to_string());
        }
        t.worker = None;
        if t.attempts >= cfg.max_attempts {
            t.state = TaskState::Quarantined;
            job.unfinished = job.unfinished.saturating_sub(1);
            job.rec.progress.tasks_failed += 1;
            let (start, end) = t
                .shard
                .map(|s| (s.start, s.end))
                .unwrap_or((0, job.rec.progress.bytes_total));
            job.rec.limitations.push(LimitationRecord {
                start,
                end,
                task_id: t.task_id.clone(),
                error: error.to_string(),
                attempts: t.attempts,
            });
            tracing::warn!(task = %t.task_id, error, "task quarantined after {} attempts", t.attempts);
        } else {
            t.state = TaskState::Queued;
            job.queued.insert((t.order, t.task_id.clone()));
            tracing::info!(task = %t.task_id, error, attempt = t.attempts, "task will be retried");
        }
    }

    /// Requeues (or quarantines) tasks whose lease deadline passed.
    pub fn expire_leases(self: &Arc<Self>) {
        let now = now_ms();
        let mut changed_tasks = Vec::new();
        let mut changed_jobs = Vec::new();
        let mut finalize = Vec::new();
        {
            let mut st = self.state.lock();
            let State {
                jobs,
                tasks,
                workers,
                ..
            } = &mut *st;
            for t in tasks.values_mut() {
                if t.state != TaskState::Leased || t.lease_deadline_ms > now {
                    continue;
                }
                let worker = t.worker.clone().unwrap_or_default();
                if let Some(w) = workers.get_mut(&worker) {
                    w.running.remove(&t.task_id);
                }
                let Some(job) = jobs.get_mut(&t.job_id) else {
                    continue;
                };
                job.leased = job.leased.saturating_sub(1);
                Self::fail_attempt(
                    &self.cfg,
                    job,
                    t,
                    &worker,
                    "lease expired (worker lost or stopped heartbeating)",
                    now,
                );
                job.rec.version += 1;
                changed_tasks.push(t.clone());
                if job.unfinished == 0 && !job.finalizing && !job.rec.state.is_final() {
                    finalize.push(job.rec.job_id.clone());
                }
                changed_jobs.push(job.rec.job_id.clone());
            }
            changed_jobs.sort();
            changed_jobs.dedup();
            let recs: Vec<_> = changed_jobs
                .iter()
                .filter_map(|id| jobs.get(id).map(|j| j.rec.clone()))
                .collect();
            drop(st);
            if let Err(e) = self.store.put_tasks(changed_tasks.iter()) {
                tracing::error!(error = %e, "persisting expired leases failed");
            }
            for r in recs {
                let _ = self.store.put_job(&r);
                self.notify(&r.job_id, "lease expired");
            }
            if !changed_tasks.is_empty() {
                self.wake_workers();
            }
        }
        for id in finalize {
            self.spawn_finalize(id);
        }
        for id in self.jobs_waiting_release() {
            self.maybe_release(&id);
        }
    }

    fn jobs_waiting_release(&self) -> Vec<String> {
        let st = self.state.lock();
        let mut ids: Vec<String> = st
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Waiting)
            .map(|t| t.job_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    // ------------------------------------------------------------------
    // Completion
    // ------------------------------------------------------------------

    /// When every shard of a job is final, gathers the inputs of its waiting
    /// tasks (YARA candidates, carved files) and queues them.
    fn maybe_release(self: &Arc<Self>, job_id: &str) {
        {
            let mut st = self.state.lock();
            let State { jobs, tasks, .. } = &mut *st;
            let Some(j) = jobs.get_mut(job_id) else {
                return;
            };
            if j.releasing || j.rec.state.is_final() {
                return;
            }
            let mut waiting = false;
            for t in tasks.values().filter(|t| t.job_id == job_id) {
                if t.kind == TaskKind::Shard && !t.state.is_final() {
                    return;
                }
                waiting |= t.state == TaskState::Waiting;
            }
            if !waiting {
                return;
            }
            j.releasing = true;
        }
        let me = self.clone();
        let id = job_id.to_string();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = me.release_waiting(&id) {
                tracing::error!(job = %id, error = %e, "releasing waiting tasks failed");
            }
        });
    }

    fn release_waiting(self: &Arc<Self>, job_id: &str) -> Result<(), SchedError> {
        let shard_ids: Vec<String> = {
            let st = self.state.lock();
            st.tasks
                .values()
                .filter(|t| {
                    t.job_id == job_id && t.kind == TaskKind::Shard && t.state == TaskState::Done
                })
                .map(|t| t.task_id.clone())
                .collect()
        };
        let mut hits = std::collections::BTreeSet::new();
        // Rules whose every hit record listed its match spans, and those
        // spans; a rule with one record without them is read everywhere.
        let mut listed = std::collections::BTreeSet::new();
        let mut unlisted = std::collections::BTreeSet::new();
        let mut spans: Vec<(u64, u64)> = Vec::new();
        let mut carved = Vec::new();
        for id in &shard_ids {
            if let Some(r) = self.store.result(id)? {
                for y in &r.yara {
                    if y.target.starts_with(yara_scope::HIT) {
                        let key = (y.namespace.clone(), y.rule.clone());
                        if y.target == yara_scope::HIT_SPANS && !y.strings.is_empty() {
                            spans.extend(y.strings.iter().map(|s| (s.offset, s.length)));
                            listed.insert(key.clone());
                        } else {
                            unlisted.insert(key.clone());
                        }
                        hits.insert(key);
                    }
                }
                carved.extend(r.carved.iter().map(trawl_core::CarvedFile::from));
            }
        }
        let (size, block) = {
            let st = self.state.lock();
            st.jobs
                .get(job_id)
                .and_then(|j| j.rec.plan)
                .map_or((0, 0), |p| (p.image_size, p.shard_size))
        };
        let mut windows = trawl_analyzers::yara::hit_windows(spans, size, block);
        let mut spans_known: Vec<(String, String)> =
            listed.difference(&unlisted).cloned().collect();
        if windows.len() > MAX_YARA_WINDOWS {
            // Too scattered to list in a task: the whole image is read.
            windows.clear();
            spans_known.clear();
        }
        carved.sort_by(|a, b| a.sort_cmp(b));
        const CARVED_PER_TASK: usize = 1000;
        let mut changed = Vec::new();
        let mut done_empty = Vec::new();
        {
            let mut st = self.state.lock();
            let State { jobs, tasks, .. } = &mut *st;
            let Some(job) = jobs.get_mut(job_id) else {
                return Ok(());
            };
            job.releasing = false;
            if job.rec.state.is_final() {
                return Ok(());
            }
            let waiting: Vec<String> = tasks
                .values()
                .filter(|t| t.job_id == job_id && t.state == TaskState::Waiting)
                .map(|t| t.task_id.clone())
                .collect();
            for id in waiting {
                let Some(t) = tasks.get_mut(&id) else {
                    continue;
                };
                match t.kind {
                    TaskKind::YaraWhole => {
                        t.yara_candidates = hits.iter().cloned().collect();
                        t.yara_spans_known = spans_known.clone();
                        t.yara_windows = windows.clone();
                        t.state = TaskState::Queued;
                        job.queued.insert((t.order, t.task_id.clone()));
                        changed.push(t.clone());
                    }
                    TaskKind::YaraCarved => {
                        if carved.is_empty() {
                            t.state = TaskState::Done;
                            job.unfinished = job.unfinished.saturating_sub(1);
                            job.rec.progress.tasks_done += 1;
                            done_empty.push(t.task_id.clone());
                            changed.push(t.clone());
                            continue;
                        }
                        let mut chunks = carved.chunks(CARVED_PER_TASK);
                        let base = t.clone();
                        t.carved = chunks.next().map(<[_]>::to_vec).unwrap_or_default();
                        t.bytes = t.carved.iter().map(|c| c.length).sum();
                        t.state = TaskState::Queued;
                        job.queued.insert((t.order, t.task_id.clone()));
                        changed.push(t.clone());
                        for (i, chunk) in chunks.enumerate() {
                            let mut extra = base.clone();
                            extra.task_id =
                                Self::task_id(job_id, TaskKind::YaraCarved, i as u32 + 1);
                            extra.carved = chunk.to_vec();
                            extra.bytes = chunk.iter().map(|c| c.length).sum();
                            extra.state = TaskState::Queued;
                            job.queued.insert((extra.order, extra.task_id.clone()));
                            job.unfinished += 1;
                            job.rec.progress.tasks_total += 1;
                            changed.push(extra.clone());
                            tasks.insert(extra.task_id.clone(), extra);
                        }
                    }
                    _ => {}
                }
            }
            job.rec.version += 1;
        }
        for id in &done_empty {
            self.store.put_result(
                id,
                &v1::TaskResult {
                    task_id: id.clone(),
                    ..Default::default()
                },
            )?;
        }
        self.store.put_tasks(changed.iter())?;
        self.notify(job_id, "yara steps queued");
        self.wake_workers();
        let all_done = {
            let st = self.state.lock();
            st.jobs
                .get(job_id)
                .is_some_and(|j| j.unfinished == 0 && !j.rec.state.is_final())
        };
        if all_done {
            self.spawn_finalize(job_id.to_string());
        }
        Ok(())
    }

    fn spawn_finalize(self: &Arc<Self>, job_id: String) {
        {
            let mut st = self.state.lock();
            match st.jobs.get_mut(&job_id) {
                Some(j) if !j.finalizing && !j.rec.state.is_final() => j.finalizing = true,
                _ => return,
            }
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.finalize(&job_id));
    }

    /// Merges every task result into the job's sorted results and completes
    /// the job.
    fn finalize(self: &Arc<Self>, job_id: &str) {
        let (rec, tasks) = {
            let st = self.state.lock();
            let Some(j) = st.jobs.get(job_id) else { return };
            let tasks: Vec<TaskRecord> = st
                .tasks
                .values()
                .filter(|t| t.job_id == job_id)
                .cloned()
                .collect();
            (j.rec.clone(), tasks)
        };
        // The results describe the job as it ends: completed, with its end
        // time (the merged record is what `results` and reports show).
        let finished_ms = now_ms();
        let t = std::time::Instant::now();
        let mut ending = rec;
        ending.state = JobState::Completed;
        ending.finished_ms = finished_ms;
        // Results handed over in memory are not stored merged: `results`
        // merges the tasks' results (kept) if ever asked.
        let store_merged = !self.cfg.hand_over_results;
        let merged = results::build(&self.store, &ending, &tasks).and_then(|mut r| {
            if store_merged {
                self.store.put_merged(job_id, &results::to_page(&mut r))?;
            }
            Ok(r)
        });
        tracing::debug!(
            job = job_id,
            ms = t.elapsed().as_millis() as u64,
            "results merged"
        );
        let mut st = self.state.lock();
        let Some(j) = st.jobs.get_mut(job_id) else {
            return;
        };
        j.finalizing = false;
        if j.rec.state.is_final() {
            return;
        }
        let mut keep = None;
        match merged {
            Ok(r) => {
                // The one definition of the counts, settled with the state:
                // every view shows these from now on.
                let counts = trawl_report::counts(&r);
                j.rec.progress.findings = counts.findings();
                j.rec.counts = Some(counts);
                j.rec.throughput = trawl_store::throughput_series(j.rec.started_ms, &tasks);
                j.rec.state = JobState::Completed;
                keep = self.cfg.hand_over_results.then_some(r);
            }
            Err(e) => {
                j.rec.state = JobState::Failed;
                j.rec.error = format!("merging or storing results: {e}");
            }
        }
        j.rec.finished_ms = finished_ms;
        j.rec.version += 1;
        let rec = j.rec.clone();
        drop(st);
        if let Err(e) = self.store.put_job(&rec).and_then(|_| self.store.flush()) {
            tracing::error!(job = job_id, error = %e, "persisting the finished job failed");
        }
        if rec.state == JobState::Completed && store_merged {
            let ids: Vec<String> = tasks.iter().map(|t| t.task_id.clone()).collect();
            let _ = self.store.remove_results(&ids);
        }
        if let Some(r) = keep {
            self.handed.lock().insert(job_id.to_string(), r);
        }
        self.evidence_cache.lock().remove(job_id);
        self.read_extent.lock().remove(job_id);
        tracing::info!(job = job_id, state = rec.state.name(), "job finished");
        self.notify(job_id, rec.state.name());
    }

    /// The merged results of a completed job, handed over once to the
    /// process that runs this scheduler (`hand_over_results`): the same
    /// results [`Scheduler::results`] serves, without the round trip
    /// through the database and the wire. `None` when not kept or already
    /// taken.
    pub fn take_results(&self, job_id: &str) -> Option<trawl_report::JobResults> {
        self.handed.lock().remove(job_id)
    }

    /// A job's results: the merged results of a completed job, or the
    /// partial merge of the tasks done so far.
    ///
    /// # Errors
    /// Unknown job, state database failing.
    pub fn results(&self, job_id: &str) -> Result<v1::ResultsPage, SchedError> {
        let (rec, tasks) = {
            let st = self.state.lock();
            let j = st
                .jobs
                .get(job_id)
                .ok_or_else(|| SchedError::NotFound(format!("job {job_id:?}")))?;
            let tasks: Vec<TaskRecord> = st
                .tasks
                .values()
                .filter(|t| t.job_id == job_id)
                .cloned()
                .collect();
            (j.rec.clone(), tasks)
        };
        if rec.state == JobState::Completed
            && let Some(p) = self.store.merged(job_id)?
        {
            return Ok(p);
        }
        results::merge_job(&self.store, &rec, &tasks)
    }

    /// Test hook: the task records of a job.
    pub fn tasks_of(&self, job_id: &str) -> Vec<TaskRecord> {
        let st = self.state.lock();
        let mut v: Vec<_> = st
            .tasks
            .values()
            .filter(|t| t.job_id == job_id)
            .cloned()
            .collect();
        v.sort_by_key(|t| t.order);
        v
    }

    /// The id a new task of `job` gets.
    pub fn task_id(job: &str, kind: TaskKind, index: u32) -> String {
        let j = JobId::new(job).expect("job ids are valid");
        match kind {
            TaskKind::Shard => TaskId::shard(&j, index),
            TaskKind::StreamHash => TaskId::stream(&j),
            TaskKind::YaraWhole => TaskId::yara_whole(&j),
            TaskKind::YaraCarved => TaskId::yara_carved(&j, index),
        }
        .to_string()
    }
}

fn sanitize(s: &str) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    if t.is_empty() { "node".into() } else { t }
}

/// A lease's secret: 128 random bits, hex.
fn new_lease_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the worker id `id` belongs to the worker certificate `cert`: the
/// certificate's name itself, or `NAME@...` (several processes enrolled
/// with one certificate).
pub fn worker_of_cert(id: &str, cert: &str) -> bool {
    id == cert
        || (!cert.contains('@')
            && id
                .strip_prefix(cert)
                .is_some_and(|rest| rest.starts_with('@')))
}

#[cfg(test)]
mod worker_id_tests {
    use super::worker_of_cert;

    #[test]
    fn a_certificate_acts_only_as_its_own_ids() {
        assert!(worker_of_cert("node2", "node2"));
        assert!(worker_of_cert("node2@W0001-host", "node2"));
        assert!(!worker_of_cert("node20", "node2"));
        assert!(!worker_of_cert("node", "node2"));
        assert!(!worker_of_cert("node2x@W1", "node2"));
        // A certificate name with '@' (enrolment now refuses them) matches
        // itself only.
        assert!(worker_of_cert("a@b", "a@b"));
        assert!(!worker_of_cert("a@b@c", "a@b"));
    }
}
