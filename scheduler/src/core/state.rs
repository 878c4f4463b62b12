//! The scheduler's in-memory state and the one place it changes.
//!
//! Every task transition goes through [`State::apply`], which runs the pure
//! machine ([`crate::machine`]) and then updates, from the (old, new) pair
//! alone, every index that depends on a task's state: the job's queue, its
//! leased, waiting and unfinished counts, its progress, the worker's running
//! set and the scheduler-wide set of leased tasks. Changed records are marked
//! dirty; [`State::commit`] writes them to sled while the caller still holds
//! the lock, so the database sees the changes in the order memory did.
//!
//! Hot state holds the tasks of unfinished jobs only: when a job ends its
//! tasks are written and dropped from memory ([`State::archive`]), so no
//! operation walks every task ever created.

use crate::machine::{self, Refused, TaskEvent};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use trawl_core::{CaseId, JobId, Priority, TaskId, WorkerId};
use trawl_store::{
    JobRecord, ProgressRecord, Store, StoreError, TaskKind, TaskRecord, TaskState, WorkerRecord,
};

/// How far back the pool's load history goes (in memory).
pub const LOAD_HISTORY_MS: i64 = 6 * 3600 * 1000;
/// One load sample per this period.
pub const LOAD_SAMPLE_MS: i64 = 15 * 1000;

#[derive(Debug)]
pub(crate) struct JobEntry {
    pub(crate) rec: JobRecord,
    /// Its tasks (unfinished jobs only; empty once archived).
    pub(crate) tasks: BTreeSet<TaskId>,
    /// Queued tasks, by (order, task id).
    pub(crate) queued: BTreeSet<(u32, TaskId)>,
    pub(crate) leased: u32,
    pub(crate) waiting: u32,
    pub(crate) unfinished: u32,
    /// Shard tasks not final yet (the YARA step waits for them).
    pub(crate) shards_open: u32,
    pub(crate) finalizing: bool,
    /// Waiting tasks are being released (their inputs gathered).
    pub(crate) releasing: bool,
}

impl JobEntry {
    pub(crate) fn new(rec: JobRecord) -> Self {
        Self {
            rec,
            tasks: BTreeSet::new(),
            queued: BTreeSet::new(),
            leased: 0,
            waiting: 0,
            unfinished: 0,
            shards_open: 0,
            finalizing: false,
            releasing: false,
        }
    }

    /// Every task final, and the job neither ended nor being finalised.
    pub(crate) fn ready_to_finalize(&self) -> bool {
        self.rec.plan.is_some()
            && self.unfinished == 0
            && !self.finalizing
            && !self.rec.state.is_final()
    }
}

#[derive(Debug)]
pub(crate) struct WorkerEntry {
    pub(crate) rec: WorkerRecord,
    pub(crate) running: HashSet<TaskId>,
    /// Busy slots over the last [`LOAD_HISTORY_MS`]: (unix ms, busy),
    /// one sample per [`LOAD_SAMPLE_MS`] (the highest seen in it).
    pub(crate) load: VecDeque<(i64, u32)>,
}

impl WorkerEntry {
    pub(crate) fn sample_load(&mut self, now: i64) {
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

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) jobs: BTreeMap<JobId, JobEntry>,
    /// Tasks of unfinished jobs.
    pub(crate) tasks: HashMap<TaskId, TaskRecord>,
    pub(crate) workers: HashMap<WorkerId, WorkerEntry>,
    /// Leased tasks (lease expiry, re-registration).
    pub(crate) leased: BTreeSet<TaskId>,
    /// Lease counter value when a case was last served (fair share).
    pub(crate) case_served: HashMap<CaseId, u64>,
    pub(crate) lease_counter: u64,
    /// Leased tasks per case (fair share), kept with the jobs' `leased`.
    pub(crate) case_leased: HashMap<CaseId, u32>,
    /// The jobs with queued tasks: priority class (highest first), case,
    /// then (submission order, job id). Leasing looks here, never at every
    /// job or task.
    pub(crate) ready: ReadyIndex,
    /// Jobs and task records a pick looked at (tests: it must not grow
    /// with the jobs and tasks held).
    #[cfg(test)]
    pub(crate) examined: std::cell::Cell<u64>,
    dirty_tasks: BTreeSet<TaskId>,
    dirty_jobs: BTreeSet<JobId>,
}

/// Jobs with queued tasks, by priority class, case and submission order.
pub(crate) type ReadyIndex =
    BTreeMap<std::cmp::Reverse<Priority>, BTreeMap<CaseId, BTreeSet<(u64, JobId)>>>;

/// Why [`State::apply`] did not apply an event.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    #[error("task {0:?} is not in the scheduler's working state")]
    Unknown(String),
    #[error(transparent)]
    Refused(#[from] Refused),
}

impl State {
    /// Adds a task (planning, restart, a split YARA step) and indexes it.
    pub(crate) fn insert_task(&mut self, t: TaskRecord) {
        let Some(job) = self.jobs.get_mut(&t.job_id) else {
            return;
        };
        job.tasks.insert(t.task_id.clone());
        job.rec.progress.tasks_total += 1;
        if t.kind == TaskKind::Shard && !t.state.is_final() {
            job.shards_open += 1;
        }
        enter(job, &mut self.workers, &mut self.leased, &t);
        if !t.state.is_final() {
            job.unfinished += 1;
        }
        if t.state == TaskState::Leased {
            *self
                .case_leased
                .entry(job.rec.spec.case_id.clone())
                .or_default() += 1;
        }
        self.dirty_tasks.insert(t.task_id.clone());
        let job_id = t.job_id.clone();
        self.tasks.insert(t.task_id.clone(), t);
        self.index_job(&job_id);
    }

    /// Keeps a job's entry in [`State::ready`] in step with its queue.
    fn index_job(&mut self, job_id: &str) {
        let Some(job) = self.jobs.get(job_id) else {
            return;
        };
        let prio = std::cmp::Reverse(job.rec.spec.priority);
        let case = &job.rec.spec.case_id;
        let key = (job.rec.seq, job.rec.job_id.clone());
        if job.queued.is_empty() || job.rec.state.is_final() {
            if let Some(cases) = self.ready.get_mut(&prio)
                && let Some(jobs) = cases.get_mut(case)
            {
                jobs.remove(&key);
                if jobs.is_empty() {
                    cases.remove(case);
                    if cases.is_empty() {
                        self.ready.remove(&prio);
                    }
                }
            }
        } else {
            self.ready
                .entry(prio)
                .or_default()
                .entry(case.clone())
                .or_default()
                .insert(key);
        }
    }

    /// Changes a case's count of leased tasks.
    fn count_leased(&mut self, case: &CaseId, up: bool) {
        if up {
            *self.case_leased.entry(case.clone()).or_default() += 1;
        } else if let Some(n) = self.case_leased.get_mut(case) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.case_leased.remove(case);
            }
        }
    }

    /// Applies `event` to a task through the machine, then updates the
    /// indices from the transition. Returns (from, to).
    pub(crate) fn apply(
        &mut self,
        task_id: &str,
        event: TaskEvent,
    ) -> Result<(TaskState, TaskState), ApplyError> {
        let t = self
            .tasks
            .get_mut(task_id)
            .ok_or_else(|| ApplyError::Unknown(task_id.to_string()))?;
        let holder = t.worker.clone();
        let from = machine::apply_task(t, event)?;
        let to = t.state;
        self.dirty_tasks.insert(t.task_id.clone());
        if from == to {
            return Ok((from, to));
        }
        let t = &self.tasks[task_id];
        let Some(job) = self.jobs.get_mut(&t.job_id) else {
            return Ok((from, to));
        };
        // Leave the old state's indices.
        match from {
            TaskState::Queued => {
                job.queued.remove(&(t.order, t.task_id.clone()));
            }
            TaskState::Leased => {
                job.leased = job.leased.saturating_sub(1);
                self.leased.remove(task_id);
                if let Some(w) = holder.and_then(|h| self.workers.get_mut(&h)) {
                    w.running.remove(task_id);
                }
            }
            TaskState::Waiting => job.waiting = job.waiting.saturating_sub(1),
            _ => {}
        }
        enter(job, &mut self.workers, &mut self.leased, t);
        if to.is_final() {
            job.unfinished = job.unfinished.saturating_sub(1);
            if t.kind == TaskKind::Shard {
                job.shards_open = job.shards_open.saturating_sub(1);
            }
        }
        job.rec.version += 1;
        let (case, job_id) = (job.rec.spec.case_id.clone(), t.job_id.clone());
        if from == TaskState::Leased || to == TaskState::Leased {
            self.count_leased(&case, to == TaskState::Leased);
        }
        if from == TaskState::Queued || to == TaskState::Queued {
            self.index_job(&job_id);
        }
        Ok((from, to))
    }

    /// Whether `worker_id` holds the current lease of `task_id`.
    pub(crate) fn held_by(&self, task_id: &str, worker_id: &str) -> bool {
        self.tasks
            .get(task_id)
            .is_some_and(|t| t.state == TaskState::Leased && t.worker.as_deref() == Some(worker_id))
    }

    /// Marks a job's record for writing at the next commit.
    pub(crate) fn touch_job(&mut self, job_id: &str) {
        if let Some(j) = self.jobs.get_mut(job_id) {
            j.rec.version += 1;
            self.dirty_jobs.insert(j.rec.job_id.clone());
        }
    }

    /// Writes every changed task and job record (tasks first: a job is
    /// never recorded past the tasks it counts). Called with the lock held.
    pub(crate) fn commit(&mut self, store: &Store) -> Result<(), StoreError> {
        if !self.dirty_tasks.is_empty() {
            let ids = std::mem::take(&mut self.dirty_tasks);
            store.put_tasks(ids.iter().filter_map(|id| self.tasks.get(id)))?;
        }
        for id in std::mem::take(&mut self.dirty_jobs) {
            if let Some(j) = self.jobs.get(&id) {
                store.put_job(&j.rec)?;
            }
        }
        Ok(())
    }

    /// A job has ended: its record (with its final progress) and tasks are
    /// written, then its tasks leave the hot state. Called with the lock
    /// held, after the job's final transition.
    pub(crate) fn archive(&mut self, job_id: &JobId, store: &Store) -> Result<(), StoreError> {
        self.dirty_jobs.insert(job_id.clone());
        self.commit(store)?;
        store.meta_put("lease_counter", &self.lease_counter.to_be_bytes())?;
        let Some(job) = self.jobs.get_mut(job_id) else {
            return Ok(());
        };
        for id in std::mem::take(&mut job.tasks) {
            self.leased.remove(&id);
            self.tasks.remove(&id);
        }
        let (case, leased) = (job.rec.spec.case_id.clone(), job.leased);
        job.queued.clear();
        job.leased = 0;
        job.waiting = 0;
        job.unfinished = 0;
        job.shards_open = 0;
        for _ in 0..leased {
            self.count_leased(&case, false);
        }
        self.index_job(job_id);
        Ok(())
    }

    /// The tasks of a job in memory, in their order.
    pub(crate) fn job_tasks(&self, job_id: &str) -> Vec<TaskRecord> {
        let mut v: Vec<TaskRecord> = self
            .jobs
            .get(job_id)
            .map(|j| {
                j.tasks
                    .iter()
                    .filter_map(|id| self.tasks.get(id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|t| t.order);
        v
    }

    /// The state of the jobs and tasks in memory, for comparison with the
    /// database (tests).
    pub(crate) fn snapshot(&self) -> (Vec<JobRecord>, Vec<TaskRecord>) {
        let jobs = self.jobs.values().map(|j| j.rec.clone()).collect();
        let mut tasks: Vec<TaskRecord> = self.tasks.values().cloned().collect();
        tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        (jobs, tasks)
    }
}

/// Enters a task's current state into the indices.
fn enter(
    job: &mut JobEntry,
    workers: &mut HashMap<WorkerId, WorkerEntry>,
    leased: &mut BTreeSet<TaskId>,
    t: &TaskRecord,
) {
    match t.state {
        TaskState::Queued => {
            job.queued.insert((t.order, t.task_id.clone()));
        }
        TaskState::Leased => {
            job.leased += 1;
            leased.insert(t.task_id.clone());
            if let Some(w) = t.worker.as_ref().and_then(|w| workers.get_mut(w)) {
                w.running.insert(t.task_id.clone());
            }
        }
        TaskState::Waiting => job.waiting += 1,
        TaskState::Done => {
            let p = &mut job.rec.progress;
            p.tasks_done += 1;
            if t.kind == TaskKind::Shard {
                p.bytes_done += t.bytes;
            }
            for (k, n) in &t.findings {
                *p.findings.entry(k.clone()).or_default() += n;
            }
        }
        TaskState::Quarantined => job.rec.progress.tasks_failed += 1,
        TaskState::Cancelled => {}
    }
}

/// Rebuilds the state from the database: unfinished jobs with their tasks
/// (one prefix scan per job), ended jobs from their records alone.
pub(crate) fn rebuild(store: &Store, lease_ms: u64, now: i64) -> Result<State, StoreError> {
    let mut st = State {
        lease_counter: store
            .meta_get("lease_counter")?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0),
        ..State::default()
    };
    for rec in store.jobs()? {
        let id = rec.job_id.clone();
        let ended = rec.state.is_final();
        let recount = !ended || rec.progress.tasks_total == 0;
        let mut entry = JobEntry::new(rec);
        if recount && entry.rec.plan.is_some() {
            entry.rec.progress = ProgressRecord {
                bytes_total: entry.rec.progress.bytes_total,
                ..Default::default()
            };
        }
        st.jobs.insert(id.clone(), entry);
        if ended && !recount {
            continue;
        }
        for mut t in store.tasks_of(&id)? {
            if t.state == TaskState::Leased {
                // The worker holding it may still report after it
                // reconnects: give it a fresh lease period.
                t.lease_deadline_ms = now + lease_ms as i64;
            }
            st.lease_counter = st.lease_counter.max(t.first_lease_seq);
            st.insert_task(t);
        }
        if ended {
            // A job ended by an earlier version: its progress recounted,
            // its tasks not kept.
            st.archive(&id, store)?;
        }
    }
    // A completed job's counts are its merged report's, not the sums over
    // its tasks.
    for j in st.jobs.values_mut() {
        if let Some(c) = &j.rec.counts {
            j.rec.progress.findings = c.findings();
        }
    }
    // Refreshed lease deadlines are written; nothing else changed.
    st.dirty_tasks.retain(|id| {
        st.tasks
            .get(id)
            .is_some_and(|t| t.state == TaskState::Leased)
    });
    st.commit(store)?;
    Ok(st)
}
