//! The YARA step that waits for every shard: its inputs gathered from the
//! shards' results, then queued.

use super::Scheduler;
use crate::error::SchedError;
use crate::machine::TaskEvent;
use std::sync::Arc;
use trawl_analyzers::yara::scope as yara_scope;
use trawl_core::{JobId, TaskId};
use trawl_proto::v1;
use trawl_store::{TaskKind, TaskState};

/// Above this many regions, a YARA whole-image task reads the whole image
/// rather than carry the list.
const MAX_YARA_WINDOWS: usize = 50_000;

impl Scheduler {
    /// When every shard of a job is final, gathers the inputs of its waiting
    /// tasks (YARA candidates, carved files) and queues them.
    pub(super) fn maybe_release(self: &Arc<Self>, job_id: &JobId) {
        {
            let mut st = self.state.lock();
            let Some(j) = st.jobs.get_mut(job_id) else {
                return;
            };
            if j.releasing || j.rec.state.is_final() || j.shards_open > 0 || j.waiting == 0 {
                return;
            }
            j.releasing = true;
        }
        let me = self.clone();
        let id = job_id.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = me.release_waiting(&id) {
                tracing::error!(job = %id, error = %e, "releasing waiting tasks failed");
            }
        });
    }

    fn release_waiting(self: &Arc<Self>, job_id: &JobId) -> Result<(), SchedError> {
        let shard_ids: Vec<TaskId> = {
            let st = self.state.lock();
            st.job_tasks(job_id)
                .into_iter()
                .filter(|t| t.kind == TaskKind::Shard && t.state == TaskState::Done)
                .map(|t| t.task_id)
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
        let mut st = self.state.lock();
        let Some(job) = st.jobs.get_mut(job_id) else {
            return Ok(());
        };
        job.releasing = false;
        if job.rec.state.is_final() {
            return Ok(());
        }
        let waiting: Vec<TaskId> = st
            .job_tasks(job_id)
            .into_iter()
            .filter(|t| t.state == TaskState::Waiting)
            .map(|t| t.task_id)
            .collect();
        let mut done_empty = Vec::new();
        for id in waiting {
            let Some(t) = st.tasks.get_mut(&id) else {
                continue;
            };
            match t.kind {
                TaskKind::YaraWhole => {
                    t.yara_candidates = hits.iter().cloned().collect();
                    t.yara_spans_known = spans_known.clone();
                    t.yara_windows = windows.clone();
                    st.apply(&id, TaskEvent::Release)
                        .map_err(|e| SchedError::Internal(e.to_string()))?;
                }
                TaskKind::YaraCarved if carved.is_empty() => {
                    // Nothing to scan: done, with an empty result.
                    self.store.put_result(
                        &id,
                        &v1::TaskResult {
                            task_id: id.to_string(),
                            ..Default::default()
                        },
                    )?;
                    st.apply(&id, TaskEvent::NothingToDo)
                        .map_err(|e| SchedError::Internal(e.to_string()))?;
                    done_empty.push(id);
                }
                TaskKind::YaraCarved => {
                    let mut chunks = carved.chunks(CARVED_PER_TASK);
                    let base = t.clone();
                    t.carved = chunks.next().map(<[_]>::to_vec).unwrap_or_default();
                    t.bytes = t.carved.iter().map(|c| c.length).sum();
                    st.apply(&id, TaskEvent::Release)
                        .map_err(|e| SchedError::Internal(e.to_string()))?;
                    for (i, chunk) in chunks.enumerate() {
                        let mut extra = base.clone();
                        extra.task_id = Self::task_id(job_id, TaskKind::YaraCarved, i as u32 + 1);
                        extra.carved = chunk.to_vec();
                        extra.bytes = chunk.iter().map(|c| c.length).sum();
                        extra.state = TaskState::Queued;
                        st.insert_task(extra);
                    }
                }
                _ => {}
            }
        }
        let all_done = st.jobs.get(job_id).is_some_and(|j| j.ready_to_finalize());
        let queued = st.jobs.get(job_id).map_or(0, |j| j.queued.len());
        self.commit(&mut st)?;
        drop(st);
        self.notify(job_id, "yara steps queued");
        self.wake_workers(queued);
        if all_done {
            self.spawn_finalize(job_id.clone());
        }
        Ok(())
    }
}
