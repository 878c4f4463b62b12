//! Jobs: submission and its checks, planning, lookup, cancellation.

use super::state::JobEntry;
use super::{Caller, Scheduler};
use crate::error::SchedError;
use crate::machine::{self, JobEvent, TaskEvent};
use std::sync::Arc;
use trawl_core::spec::EvidenceRef;
use trawl_core::{JobId, JobSpec, TaskId};
use trawl_evidence::SharedEvidence;
use trawl_store::{JobRecord, JobState, ProgressRecord, now_ms};

impl Scheduler {
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
        if let EvidenceRef::Paths(paths) = &mut spec.evidence {
            // `file:///x` is the path `/x`; object locators stay as given.
            for p in paths.iter_mut() {
                *p = trawl_evidence::remote::locator_path(p)
                    .map_err(|e| SchedError::InvalidArgument(e.to_string()))?;
            }
        }
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
            job_id,
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
        self.state
            .lock()
            .jobs
            .insert(rec.job_id.clone(), JobEntry::new(rec.clone()));
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
        if trawl_evidence::is_remote(path) {
            // An object: by bucket and key against the allowed prefixes;
            // the store is asked when the job is planned.
            let conf = self.confinement_for(case);
            conf.check_path(path).map_err(|e| match e {
                trawl_evidence::EvidenceError::OutsideRoots { why, .. } => {
                    SchedError::PermissionDenied(format!("evidence {p:?} refused: {why}"))
                }
                e => SchedError::InvalidArgument(e.to_string()),
            })?;
            return Ok(0);
        }
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

    pub(super) fn spawn_plan(self: &Arc<Self>, job_id: JobId) {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.plan(&job_id));
    }

    /// Opens the evidence, records its size and format, creates the tasks.
    fn plan(self: &Arc<Self>, job_id: &JobId) {
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
                tracing::warn!(job = %job_id, error = %e, "job failed while planning");
                let Ok(next) = machine::job_next(job.rec.state, JobEvent::PlanFailed) else {
                    return;
                };
                job.rec.state = next;
                job.rec.error = e.to_string();
                job.rec.finished_ms = now_ms();
                let error = job.rec.error.clone();
                let archived = st.archive(job_id, &self.store);
                drop(st);
                if let Err(e) = archived.and_then(|()| self.store.flush()) {
                    tracing::error!(job = %job_id, error = %e, "persisting the failed job failed");
                }
                self.notify(job_id, format!("failed: {error}"));
            }
            Ok((meta, plan, tasks)) => {
                job.rec.evidence = Some(meta);
                job.rec.plan = Some(plan);
                job.rec.progress.bytes_total = plan.image_size;
                let n = tasks.len();
                for t in tasks {
                    st.insert_task(t);
                }
                st.touch_job(job_id);
                let ready = st.jobs.get(job_id).is_some_and(|j| j.ready_to_finalize());
                let persisted = self.commit(&mut st);
                drop(st);
                if persisted.is_err() {
                    return;
                }
                self.notify(job_id, format!("planned {n} tasks"));
                self.wake_workers(n);
                if ready {
                    self.spawn_finalize(job_id.clone());
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
        job_id: &JobId,
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
        c.insert(job_id.clone(), ev.clone());
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
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let job = st
            .jobs
            .get_mut(job_id)
            .ok_or_else(|| SchedError::NotFound(format!("job {job_id:?}")))?;
        if job.rec.state.is_final() {
            // Nothing to cancel: said, and the attempt audited.
            let (state, case) = (job.rec.state.name(), job.rec.spec.case_id.clone());
            drop(guard);
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
        job.rec.state = machine::job_next(job.rec.state, JobEvent::Cancel)
            .map_err(|e| SchedError::FailedPrecondition(e.to_string()))?;
        job.rec.error = if reason.is_empty() {
            format!("cancelled by {}", caller.user)
        } else {
            format!("cancelled by {}: {reason}", caller.user)
        };
        job.rec.finished_ms = now_ms();
        let open: Vec<TaskId> = job
            .tasks
            .iter()
            .filter(|id| st.tasks.get(*id).is_some_and(|t| !t.state.is_final()))
            .cloned()
            .collect();
        for id in open {
            if let Err(e) = st.apply(&id, TaskEvent::Cancel) {
                tracing::error!(task = %id, error = %e, "cancelling a task");
            }
        }
        let rec = st.jobs[job_id].rec.clone();
        st.archive(&rec.job_id, &self.store)?;
        drop(guard);
        self.store.flush()?;
        self.audit(
            caller,
            "job.cancel",
            job_id,
            rec.spec.case_id.as_str(),
            reason.to_string(),
        );
        self.notify(&rec.job_id, "cancelled");
        Ok(rec)
    }
}
