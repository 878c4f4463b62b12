//! Finishing a job: its results merged and stored, the job completed;
//! the results served.

use super::Scheduler;
use crate::error::SchedError;
use crate::machine::{self, JobEvent};
use crate::results;
use std::sync::Arc;
use trawl_core::{JobId, TaskId};
use trawl_proto::v1;
use trawl_store::{JobState, TaskRecord, now_ms};

impl Scheduler {
    pub(super) fn spawn_finalize(self: &Arc<Self>, job_id: JobId) {
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
    fn finalize(self: &Arc<Self>, job_id: &JobId) {
        let (rec, tasks) = {
            let st = self.state.lock();
            let Some(j) = st.jobs.get(job_id) else { return };
            (j.rec.clone(), st.job_tasks(job_id))
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
            job = %job_id,
            ms = t.elapsed().as_millis() as u64,
            "results merged"
        );
        // The job's indicators, for the lab's index (off the runtime, as
        // the merge is); indexed once the job is completed and announced.
        let after = merged
            .as_ref()
            .ok()
            .and_then(|r| self.intel_after(&ending, r));
        let mut st = self.state.lock();
        let Some(j) = st.jobs.get_mut(job_id) else {
            return;
        };
        j.finalizing = false;
        if j.rec.state.is_final() {
            return;
        }
        let mut keep = None;
        let event = match merged {
            Ok(r) => {
                // The one definition of the counts, settled with the state:
                // every view shows these from now on.
                let counts = trawl_report::counts(&r);
                j.rec.progress.findings = counts.findings();
                j.rec.counts = Some(counts);
                j.rec.throughput = trawl_store::throughput_series(j.rec.started_ms, &tasks);
                keep = self.cfg.hand_over_results.then_some(r);
                JobEvent::Completed
            }
            Err(e) => {
                j.rec.error = format!("merging or storing results: {e}");
                JobEvent::Failed
            }
        };
        match machine::job_next(j.rec.state, event) {
            Ok(next) => j.rec.state = next,
            Err(e) => {
                tracing::error!(job = %job_id, error = %e, "finishing a job");
                return;
            }
        }
        j.rec.finished_ms = finished_ms;
        let rec = j.rec.clone();
        let archived = st.archive(job_id, &self.store);
        drop(st);
        if let Err(e) = archived.and_then(|()| self.store.flush()) {
            tracing::error!(job = %job_id, error = %e, "persisting the finished job failed");
        }
        if rec.state == JobState::Completed && store_merged {
            let ids: Vec<TaskId> = tasks.iter().map(|t| t.task_id.clone()).collect();
            let _ = self.store.remove_results(&ids);
        }
        if let Some(r) = keep {
            self.handed.lock().insert(job_id.clone(), r);
        }
        self.evidence_cache.lock().remove(job_id);
        self.read_extent.lock().remove(job_id);
        tracing::info!(job = %job_id, state = rec.state.name(), "job finished");
        self.notify(job_id, rec.state.name());
        if let Some(work) = after {
            self.intel_finish(&rec, work);
        }
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
        let rec = self.job(job_id)?;
        if rec.state == JobState::Completed
            && let Some(p) = self.store.merged(job_id)?
        {
            return Ok(p);
        }
        let tasks = self.tasks_of(job_id);
        results::merge_job(&self.store, &rec, &tasks)
    }

    /// The task records of a job, in their order: from memory while the
    /// job runs, from the database once it has ended (archived).
    pub fn tasks_of(&self, job_id: &str) -> Vec<TaskRecord> {
        let st = self.state.lock();
        match st.jobs.get(job_id) {
            Some(j) if !j.rec.state.is_final() => st.job_tasks(job_id),
            Some(_) => {
                drop(st);
                let mut v = self.store.tasks_of(job_id).unwrap_or_else(|e| {
                    tracing::error!(job = %job_id, error = %e, "reading an ended job's tasks");
                    Vec::new()
                });
                v.sort_by_key(|t| t.order);
                v
            }
            None => Vec::new(),
        }
    }
}
