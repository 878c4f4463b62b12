//! The scheduler: jobs, tasks and workers behind one mutex. Every task and
//! job transition goes through the pure machine ([`crate::machine`]) via
//! [`state::State::apply`]; sled is written before the lock is released
//! ([`state::State::commit`]) so memory and disk never disagree and the
//! database sees changes in the order memory did; memory is rebuilt from
//! sled on start.
//!
//! Ordering of work: the highest priority class with queued work is served
//! first; within it, the case with the fewest running tasks (then the one
//! served least recently), so one huge case cannot starve the others; within
//! a case, jobs in submission order; within a job, the sequential stream
//! task first (it is the longest), then shards in order.

use crate::error::SchedError;
use crate::evidence_store::EvidenceStore;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;
use trawl_core::{JobId, JobSpec, TaskId};
use trawl_evidence::SharedEvidence;
use trawl_store::{EvidenceMeta, JobRecord, Store, TaskKind, TaskRecord, WorkerRecord, now_ms};

use crate::config::SchedulerConfig;

mod finish;
mod gauges;
mod jobs;
mod release;
mod reports;
pub(crate) mod state;
mod workers;

use state::State;
pub use state::{LOAD_HISTORY_MS, LOAD_SAMPLE_MS};

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
    pub job_id: JobId,
    pub message: String,
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

/// Job and task records (memory or database), for comparison in tests.
pub type Snapshot = (Vec<JobRecord>, Vec<TaskRecord>);

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
    evidence_cache: Mutex<HashMap<JobId, SharedEvidence>>,
    /// Users and worker certificates of an initialised data directory.
    auth: Option<Arc<crate::auth::Authenticator>>,
    /// Merged results of finished jobs not yet taken (`hand_over_results`).
    handed: Mutex<HashMap<JobId, trawl_report::JobResults>>,
    /// Where server-side evidence paths may lie (the configured roots,
    /// never the data directory).
    confinement: trawl_evidence::Confinement,
    /// How far past its scan range a shard task may read (the job's
    /// largest carved file), per job.
    read_extent: Mutex<HashMap<JobId, u64>>,
    /// Which refusals are audited in full, and the count of the others.
    pub(crate) refusals: crate::audit_limit::RefusalLimiter,
    /// The lab's indicator index (`None`: embedded scans, or turned off).
    pub(crate) intel: Option<crate::intel::Intel>,
    /// Prometheus metrics (`--metrics-listen`).
    pub(crate) metrics: crate::metrics::Metrics,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("cfg", &self.cfg).finish()
    }
}

/// Most waiting leases woken at once (see [`Scheduler::wake_workers`]).
const MAX_WAKE: usize = 65_536;

impl Scheduler {
    /// Opens the state (or starts empty) and rebuilds the queues.
    ///
    /// # Errors
    /// The data directory or database cannot be opened.
    pub fn open(cfg: SchedulerConfig) -> Result<Arc<Self>, SchedError> {
        let store = crate::audit_key::open_store(&cfg)?;
        let (events, _) = broadcast::channel(1024);
        let auth = if !cfg.ephemeral && crate::auth::is_initialised(&cfg.data_dir) {
            Some(Arc::new(
                crate::auth::Authenticator::open(&cfg.data_dir)
                    .map_err(|e| SchedError::FailedPrecondition(format!("{e:#}")))?,
            ))
        } else {
            None
        };
        if !trawl_evidence::remote::has_remote_backend() {
            // Object-storage evidence (s3://, gs://, az://): one reader
            // per process, its credentials from the environment and
            // `[object_store]`.
            trawl_objstore::install(cfg.object_store.clone()).map_err(|e| {
                SchedError::FailedPrecondition(format!("starting the object-store client: {e}"))
            })?;
        }
        let mut uploads = EvidenceStore::open(&cfg.data_dir.join("evidence"), cfg.ephemeral)?;
        if let Some(prefix) = &cfg.upload_store {
            let backend = trawl_objstore::installed().ok_or_else(|| {
                SchedError::FailedPrecondition(
                    "upload_store needs this process's object-store client".into(),
                )
            })?;
            uploads = uploads.with_bucket(prefix, backend)?;
            tracing::info!(prefix = %prefix, "uploads are kept in object storage");
        }
        let confinement =
            trawl_evidence::Confinement::new(&cfg.evidence_roots, &[cfg.data_dir.as_path()]);
        for r in confinement.remote_roots() {
            tracing::info!(root = %r, "object-storage evidence root");
        }
        for r in confinement.roots() {
            if !r.exists() {
                tracing::warn!(root = %r.display(), "evidence root does not exist (yet)");
            }
        }
        let refusals = crate::audit_limit::RefusalLimiter::new(cfg.audit_refusals_per_minute);
        let intel = crate::intel::Intel::open(&cfg, &store)?;
        let s = Arc::new(Self {
            intel,
            metrics: crate::metrics::Metrics::default(),
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
        s.intel_backfill();
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
        let rebuilt = state::rebuild(&self.store, self.cfg.lease_ms, now_ms())?;
        let mut st = self.state.lock();
        *st = rebuilt;
        // Jobs whose tasks all finished but were not finalised (crash during
        // the merge) are finalised now; jobs left in planning are re-planned;
        // jobs whose shards ended with YARA steps waiting get them released.
        let mut to_finalize = Vec::new();
        let mut to_plan = Vec::new();
        let mut to_release = Vec::new();
        for (id, j) in &st.jobs {
            if j.rec.state.is_final() {
                continue;
            }
            if j.rec.plan.is_none() {
                to_plan.push(id.clone());
            } else if j.unfinished == 0 {
                to_finalize.push(id.clone());
            } else if j.waiting > 0 {
                to_release.push(id.clone());
            }
        }
        drop(st);
        for id in to_finalize {
            self.spawn_finalize(id);
        }
        for id in to_plan {
            self.spawn_plan(id);
        }
        for id in to_release {
            self.maybe_release(&id);
        }
        Ok(())
    }

    /// Writes what changed under `st`'s lock (see [`State::commit`]);
    /// a failure is logged and returned.
    fn commit(&self, st: &mut State) -> Result<(), SchedError> {
        st.commit(&self.store).map_err(|e| {
            tracing::error!(error = %e, "persisting the scheduler state failed");
            SchedError::from(e)
        })
    }

    /// Test hook: the jobs and tasks in memory and as the database holds
    /// them (the tasks of unfinished jobs), to compare.
    #[doc(hidden)]
    pub fn state_and_store(&self) -> Result<(Snapshot, Snapshot), SchedError> {
        let st = self.state.lock();
        let (jobs, tasks) = st.snapshot();
        let stored_jobs = self.store.jobs()?;
        let mut stored_tasks = Vec::new();
        for j in &jobs {
            if !j.state.is_final() {
                stored_tasks.extend(self.store.tasks_of(&j.job_id)?);
            }
        }
        stored_tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        Ok(((jobs, tasks), (stored_jobs, stored_tasks)))
    }

    fn notify(&self, job_id: &JobId, message: impl Into<String>) {
        let _ = self.events.send(JobChange {
            job_id: job_id.clone(),
            message: message.into(),
        });
    }

    /// A future that completes when tasks may have become ready (see
    /// [`Scheduler::wake_workers`]).
    pub fn work_ready(&self) -> tokio::sync::futures::Notified<'_> {
        self.work.notified()
    }

    /// Wakes as many waiting leases as there are tasks newly ready (each
    /// takes one or more), not every waiter: with thousands of idle slots
    /// waiting, waking all of them for a job of a few tasks cost a lease
    /// attempt each under the state lock. A waiter woken for a task it may
    /// not take (one that failed on it) waits on; its wait's end (at most
    /// the lease call's `wait_ms`) or another slot's next lease takes it.
    fn wake_workers(&self, ready: usize) {
        for _ in 0..ready.min(MAX_WAKE) {
            self.work.notify_one();
        }
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

    /// The id a new task of `job` gets.
    pub fn task_id(job: &JobId, kind: TaskKind, index: u32) -> TaskId {
        match kind {
            TaskKind::Shard => TaskId::shard(job, index),
            TaskKind::StreamHash => TaskId::stream(job),
            TaskKind::YaraWhole => TaskId::yara_whole(job),
            TaskKind::YaraCarved => TaskId::yara_carved(job, index),
            TaskKind::FsHash => TaskId::fs_hash(job, index),
        }
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
