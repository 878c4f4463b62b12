//! Workers' reports, failed attempts and expired leases.

use super::state::State;
use super::{Scheduler, constant_time_eq};
use crate::error::SchedError;
use crate::machine::TaskEvent;
use std::sync::Arc;
use trawl_core::{JobId, TaskId, WorkerId};
use trawl_proto::v1;
use trawl_store::{LimitationRecord, TaskKind, TaskState, now_ms};

impl Scheduler {
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
        let Some(t) = st.tasks.get(task_id) else {
            // A task of an ended job (archived) takes no report: said as a
            // report ignored, as for any finished task.
            let job = trawl_core::TaskId::new(task_id)
                .ok()
                .and_then(|t| t.job())
                .and_then(|j| st.jobs.get(j.as_str()));
            if job.is_some_and(|j| j.rec.state.is_final()) {
                if let Some(w) = st.workers.get_mut(worker_id) {
                    w.running.remove(task_id);
                }
                return Ok(false);
            }
            return Err(SchedError::NotFound(format!("task {task_id:?}")));
        };
        if t.state.is_final() {
            if let Some(w) = st.workers.get_mut(worker_id) {
                w.running.remove(task_id);
            }
            return Ok(false);
        }
        let held = t.worker.clone().filter(|w| {
            t.state == TaskState::Leased
                && *w == worker_id
                && !t.lease_token.is_empty()
                && constant_time_eq(t.lease_token.as_bytes(), lease_token.as_bytes())
                && t.lease_deadline_ms >= now
        });
        let Some(holder) = held else {
            return Err(SchedError::PermissionDenied(format!(
                "task {task_id:?} is not leased to worker {worker_id:?} under this lease token (never leased to it, lease expired or taken by another worker)"
            )));
        };
        let job_id = t.job_id.clone();
        let Some(job) = st.jobs.get(&job_id) else {
            return Err(SchedError::Internal(format!("task {task_id} has no job")));
        };
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
                // Findings per kind: each feature scanner by name, carved
                // files, YARA matches.
                let mut findings = std::collections::BTreeMap::new();
                for f in &result.features {
                    *findings.entry(f.scanner.clone()).or_default() += 1;
                }
                for (k, n) in [("carved", result.carved.len()), ("yara", result.yara.len())] {
                    if n > 0 {
                        findings.insert(k.to_string(), n as u64);
                    }
                }
                if let Some(t) = st.tasks.get_mut(task_id) {
                    t.findings = findings;
                }
                let done = TaskEvent::Done {
                    worker: holder.clone(),
                    at_ms: now_ms(),
                };
                st.apply(task_id, done)
                    .map_err(|e| SchedError::Internal(e.to_string()))?;
                let bytes = st.tasks[task_id].bytes;
                // each shard's own range, once per analysis of its job
                if st.tasks[task_id].kind == TaskKind::Shard
                    && let Some(j) = st.jobs.get(&job_id)
                {
                    self.count_scanned(&j.rec.spec.analyses, bytes);
                }
                if let Some(w) = st.workers.get_mut(worker_id) {
                    w.rec.tasks_done += 1;
                    w.rec.bytes_done += bytes;
                }
            }
            Err(error) => self.fail_attempt(&mut st, task_id, &holder, &error),
        }
        let task = st.tasks[task_id].clone();
        let job = &st.jobs[&job_id];
        let done = job.ready_to_finalize();
        let release = task.kind == TaskKind::Shard && task.state.is_final() && job.waiting > 0;
        self.commit(&mut st)?;
        drop(st);
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

    /// One failed attempt of a leased task: requeued, or quarantined after
    /// `max_attempts` with the range recorded as a limitation of its job.
    fn fail_attempt(&self, st: &mut State, task_id: &str, worker_id: &WorkerId, error: &str) {
        let event = TaskEvent::Failed {
            worker: worker_id.clone(),
            error: error.to_string(),
            max_attempts: self.cfg.max_attempts,
        };
        match st.apply(task_id, event) {
            Ok((_, TaskState::Quarantined)) => {
                let t = &st.tasks[task_id];
                let job_id = t.job_id.clone();
                let limitation = LimitationRecord {
                    start: t.shard.map_or(0, |s| s.start),
                    end: t.shard.map_or_else(
                        || {
                            st.jobs
                                .get(&job_id)
                                .map_or(0, |j| j.rec.progress.bytes_total)
                        },
                        |s| s.end,
                    ),
                    task_id: t.task_id.clone(),
                    error: error.to_string(),
                    attempts: t.attempts,
                };
                tracing::warn!(task = %task_id, error, "task quarantined after {} attempts", t.attempts);
                self.metrics.quarantines.inc();
                if let Some(j) = st.jobs.get_mut(&job_id) {
                    j.rec.limitations.push(limitation);
                }
                st.touch_job(&job_id);
            }
            Ok(_) => {
                self.metrics.retries.inc();
                let attempt = st.tasks.get(task_id).map_or(0, |t| t.attempts);
                tracing::info!(task = %task_id, error, attempt, "task will be retried");
            }
            Err(e) => tracing::error!(task = %task_id, error = %e, "failing an attempt"),
        }
    }

    /// Requeues (or quarantines) tasks whose lease deadline passed.
    pub fn expire_leases(self: &Arc<Self>) {
        self.expire_leases_at(now_ms());
    }

    /// [`Scheduler::expire_leases`] as if the clock read `now` (tests).
    #[doc(hidden)]
    pub fn expire_leases_at(self: &Arc<Self>, now: i64) {
        let mut st = self.state.lock();
        let expired: Vec<TaskId> = st
            .leased
            .iter()
            .filter(|id| {
                st.tasks
                    .get(*id)
                    .is_some_and(|t| t.lease_deadline_ms <= now)
            })
            .cloned()
            .collect();
        let mut jobs = std::collections::BTreeSet::new();
        for id in &expired {
            jobs.insert(st.tasks[id].job_id.clone());
            match st.tasks[id].worker.clone() {
                Some(worker) => self.fail_attempt(
                    &mut st,
                    id,
                    &worker,
                    "lease expired (worker lost or stopped heartbeating)",
                ),
                // The machine sets the holder with every lease: a leased
                // task without one (a damaged record) is queued again.
                None => {
                    tracing::error!(task = %id, "leased task without a holder: queued again");
                    if let Err(e) = st.apply(id, TaskEvent::GiveBack) {
                        tracing::error!(task = %id, error = %e, "requeueing a task");
                    }
                }
            }
        }
        let finalize: Vec<JobId> = jobs
            .iter()
            .filter(|id| st.jobs.get(*id).is_some_and(|j| j.ready_to_finalize()))
            .cloned()
            .collect();
        let release: Vec<JobId> = jobs
            .iter()
            .filter(|id| {
                st.jobs
                    .get(*id)
                    .is_some_and(|j| j.waiting > 0 && j.shards_open == 0)
            })
            .cloned()
            .collect();
        let _ = self.commit(&mut st);
        drop(st);
        for id in &jobs {
            self.notify(id, "lease expired");
        }
        self.wake_workers(expired.len());
        for id in finalize {
            self.spawn_finalize(id);
        }
        for id in release {
            self.maybe_release(&id);
        }
    }
}
