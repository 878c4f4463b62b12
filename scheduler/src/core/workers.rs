//! Workers: registration, heartbeats, the pool, leasing and fair share,
//! what a worker may read, leases given back.

use super::state::{JobEntry, State, WorkerEntry};
use super::{
    HeartbeatOutcome, Lease, PoolView, Scheduler, WorkerView, new_lease_token, sanitize,
    worker_of_cert,
};
use crate::error::SchedError;
use crate::machine::{self, JobEvent, TaskEvent};
use std::collections::{BTreeMap, VecDeque};
use trawl_core::{JobId, Priority, TaskId, WorkerId};
use trawl_store::{JobState, TaskKind, TaskState, WorkerRecord, now_ms};

/// Ordering key of a job for the next lease: priority class (highest
/// first), running tasks of its case, when its case was last served, then
/// submission order.
type PickKey = (std::cmp::Reverse<Priority>, u32, u64, u64);

fn job_order_key(e: &JobEntry) -> (u64, &str) {
    (e.rec.seq, e.rec.job_id.as_str())
}

impl Scheduler {
    /// A new worker id for a worker on `hostname` that asked for none
    /// (`CERT@W0001-host` for a worker with a certificate).
    ///
    /// # Errors
    /// The state database failing; a certificate name that makes no valid
    /// id.
    pub fn new_worker_id(
        &self,
        hostname: &str,
        cert: Option<&str>,
    ) -> Result<WorkerId, SchedError> {
        let id = format!(
            "W{:04}-{}",
            self.store.next_id("worker")?,
            sanitize(hostname)
        );
        let id = match cert {
            Some(c) => format!("{c}@{id}"),
            None => id,
        };
        WorkerId::new(id).map_err(|e| SchedError::InvalidArgument(e.to_string()))
    }

    /// Registers (or re-registers) a worker.
    ///
    /// # Errors
    /// The state database failing.
    pub fn register(&self, mut info: WorkerRecord) -> Result<WorkerRecord, SchedError> {
        let now = now_ms();
        info.registered_ms = now;
        info.last_heartbeat_ms = now;
        info.slots = info.slots.clamp(1, 1024);
        let mut st = self.state.lock();
        let running = st
            .leased
            .iter()
            .filter(|id| {
                st.tasks
                    .get(*id)
                    .is_some_and(|t| t.worker.as_ref() == Some(&info.worker_id))
            })
            .cloned()
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
        let Some(w) = st.workers.get_mut(worker_id) else {
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
        let deadline_ms = now + self.cfg.lease_ms as i64;
        for id in task_ids {
            if !st.held_by(id, worker_id)
                || st.apply(id, TaskEvent::Extend { deadline_ms }).is_err()
            {
                out.cancel.push(id.clone());
            }
        }
        // Retrohunts give way to casework: when a case's own job waits for a
        // slot and no live worker has one free, this worker's retrohunt
        // leases go back to the queue (no attempt counted; the worker stops
        // them; results are keyed by task, so the rerun is exact).
        let held: Vec<String> = task_ids
            .iter()
            .filter(|id| !out.cancel.contains(id))
            .filter(|id| {
                st.tasks
                    .get(id.as_str())
                    .and_then(|t| st.jobs.get(&t.job_id))
                    .is_some_and(|j| !j.rec.spec.origin.is_empty())
            })
            .cloned()
            .collect();
        let mut gave_back = 0;
        if !held.is_empty() {
            let casework_waits = st.jobs.values().any(|j| {
                !j.rec.state.is_final() && j.rec.spec.origin.is_empty() && !j.queued.is_empty()
            });
            let lost_ms = now - self.cfg.lease_ms as i64;
            let free_slot = st.workers.values().any(|w| {
                w.rec.last_heartbeat_ms > lost_ms && (w.running.len() as u32) < w.rec.slots
            });
            if casework_waits && !free_slot {
                for id in held {
                    match st.apply(&id, TaskEvent::GiveBack) {
                        Ok(_) => {
                            tracing::info!(task = %id, worker = worker_id, "retrohunt task given back for casework");
                            out.cancel.push(id);
                            gave_back += 1;
                        }
                        Err(e) => {
                            tracing::error!(task = %id, error = %e, "giving a retrohunt lease back")
                        }
                    }
                }
            }
        }
        // Extended deadlines are written with the lock held, as every change.
        let _ = self.commit(&mut st);
        drop(st);
        self.wake_workers(gave_back);
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

    /// Live workers, counted up to `at_most` (leasing asks whether there
    /// is more than one: it need not look at every worker).
    fn live_workers(st: &State, now: i64, heartbeat_ms: u64, at_most: usize) -> usize {
        st.workers
            .values()
            .filter(|w| now - w.rec.last_heartbeat_ms <= 3 * heartbeat_ms as i64 + 1000)
            .take(at_most)
            .count()
    }

    /// Leases up to `max` tasks to a worker. The lease clock starts now.
    ///
    /// # Errors
    /// Unknown worker (it must register again).
    pub fn lease(&self, worker_id: &str, max: u32) -> Result<Vec<Lease>, SchedError> {
        let now = now_ms();
        let mut st = self.state.lock();
        let Some(worker) = st
            .workers
            .get_key_value(worker_id)
            .map(|(id, _)| id.clone())
        else {
            return Err(SchedError::FailedPrecondition(format!(
                "worker {worker_id:?} is not registered (register again)"
            )));
        };
        let several_workers = Self::live_workers(&st, now, self.cfg.heartbeat_ms, 2) > 1;
        let mut out = Vec::new();
        let mut started = Vec::new();
        for _ in 0..max.min(256) {
            let Some((job_id, task_id)) = self.pick(&st, &worker, several_workers) else {
                break;
            };
            st.lease_counter += 1;
            let seq = st.lease_counter;
            let event = TaskEvent::Lease {
                worker: worker.clone(),
                token: new_lease_token(),
                deadline_ms: now + self.cfg.lease_ms as i64,
                seq,
            };
            if let Err(e) = st.apply(&task_id, event) {
                // A picked task is queued: the machine cannot refuse it.
                tracing::error!(task = %task_id, error = %e, "leasing a picked task");
                break;
            }
            let task = st.tasks[&task_id].clone();
            let job = st.jobs.get_mut(&job_id).expect("picked job exists");
            let case = job.rec.spec.case_id.clone();
            let first = job.rec.state == JobState::Queued;
            if first && let Ok(next) = machine::job_next(job.rec.state, JobEvent::FirstLease) {
                job.rec.state = next;
                job.rec.started_ms = now;
                started.push(job_id.clone());
            }
            let lease = Lease {
                task,
                spec: job.rec.spec.clone(),
                evidence: job.rec.evidence.clone().unwrap_or_default(),
            };
            st.case_served.insert(case, seq);
            if first {
                st.touch_job(&job_id);
            }
            out.push(lease);
        }
        self.commit(&mut st)?;
        drop(st);
        for j in started {
            self.notify(&j, "running");
        }
        Ok(out)
    }

    /// Chooses the next task for a worker (see the module docs): the jobs
    /// with queued tasks come from [`State::ready`], so a pick looks at the
    /// cases of the highest class with work and, per case, its first job
    /// with a task this worker may take: never at every job or task.
    fn pick(
        &self,
        st: &State,
        worker_id: &WorkerId,
        avoid_failed: bool,
    ) -> Option<(JobId, TaskId)> {
        let examine = |_n: u64| {
            #[cfg(test)]
            st.examined.set(st.examined.get() + _n);
        };
        for cases in st.ready.values() {
            let mut best: Option<(PickKey, &JobEntry, &TaskId)> = None;
            for (case, jobs) in cases {
                let running = st.case_leased.get(case).copied().unwrap_or(0);
                let served = st.case_served.get(case).copied().unwrap_or(0);
                // The case's first job (submission order) with a queued
                // task this worker may take.
                let found = jobs.iter().find_map(|(_, id)| {
                    examine(1);
                    let j = st.jobs.get(id)?;
                    if j.rec.state.is_final() {
                        return None;
                    }
                    j.queued
                        .iter()
                        .find(|(_, t)| {
                            !avoid_failed || {
                                examine(1);
                                st.tasks
                                    .get(t)
                                    .is_none_or(|t| !t.failed_on.contains(worker_id))
                            }
                        })
                        .map(|(_, t)| (j, t))
                });
                let Some((j, task)) = found else { continue };
                let key = (
                    std::cmp::Reverse(j.rec.spec.priority),
                    running,
                    served,
                    j.rec.seq,
                );
                if best.as_ref().is_none_or(|(k, bj, _)| {
                    key < *k || (key == *k && job_order_key(j) < job_order_key(bj))
                }) {
                    best = Some((key, j, task));
                }
            }
            if let Some((_, j, t)) = best {
                return Some((j.rec.job_id.clone(), t.clone()));
            }
        }
        None
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
                let job = self.job(job_id)?;
                // Carving a chosen space end to end, a file may run on
                // past allocated clusters to anywhere after the shard.
                let e = if job.spec.carve.unallocated_only {
                    u64::MAX
                } else {
                    trawl_analyzers::read_extent(&job.spec)
                };
                self.read_extent.lock().insert(job.job_id, e);
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
        let mut st = self.state.lock();
        for id in task_ids {
            if st.held_by(id, worker_id)
                && let Err(e) = st.apply(id, TaskEvent::GiveBack)
            {
                tracing::error!(task = %id, error = %e, "giving a lease back");
            }
        }
        let _ = self.commit(&mut st);
        drop(st);
        self.wake_workers(task_ids.len());
    }
}

#[cfg(test)]
mod pick_tests {
    use super::super::state::{JobEntry, State};
    use super::*;
    use crate::config::SchedulerConfig;
    use trawl_core::spec::{AnalysisSet, EvidenceRef};
    use trawl_core::{CaseId, JobSpec, ShardPlan};
    use trawl_store::{JobRecord, ProgressRecord, TaskRecord};

    fn job(seq: u64, case: &str, priority: Priority) -> JobRecord {
        let mut spec = JobSpec::new(
            CaseId::new(case).unwrap(),
            EvidenceRef::Paths(vec!["/nonexistent".into()]),
            AnalysisSet::parse("features").unwrap(),
        );
        spec.priority = priority;
        JobRecord {
            job_id: JobId::new(format!("J{seq:06}")).unwrap(),
            seq,
            spec,
            submitter: "t".into(),
            state: JobState::Queued,
            error: String::new(),
            created_ms: 0,
            started_ms: 0,
            finished_ms: 0,
            evidence: None,
            plan: Some(ShardPlan {
                image_size: 1 << 20,
                shard_size: 1 << 16,
                margin: 0,
            }),
            progress: ProgressRecord::default(),
            limitations: Vec::new(),
            version: 1,
            counts: None,
            throughput: Vec::new(),
        }
    }

    fn task(job: &JobId, i: u32) -> TaskRecord {
        TaskRecord {
            task_id: Scheduler::task_id(job, TaskKind::Shard, i),
            job_id: job.clone(),
            kind: TaskKind::Shard,
            shard: None,
            order: i + 1,
            state: TaskState::Queued,
            attempts: 0,
            worker: None,
            lease_deadline_ms: 0,
            lease_token: String::new(),
            errors: Vec::new(),
            failed_on: Vec::new(),
            bytes: 1,
            first_lease_seq: 0,
            findings: Default::default(),
            yara_candidates: Vec::new(),
            yara_spans_known: Vec::new(),
            yara_windows: Vec::new(),
            carved: Vec::new(),
            finished_ms: 0,
            fs_files: Vec::new(),
            fs_names: Vec::new(),
        }
    }

    /// `jobs` jobs of `tasks` queued tasks each over three cases (job 7 of
    /// case C1 urgent, with one task, when `urgent`).
    fn state(jobs: u64, tasks: u32, urgent: bool) -> State {
        let mut st = State::default();
        for seq in 1..=jobs {
            let prio = if urgent && seq == 7 {
                Priority::Urgent
            } else {
                Priority::Normal
            };
            let rec = job(seq, &format!("C{}", seq % 3), prio);
            let id = rec.job_id.clone();
            st.jobs.insert(id.clone(), JobEntry::new(rec));
            let n = if prio == Priority::Urgent { 1 } else { tasks };
            for i in 0..n {
                st.insert_task(task(&id, i));
            }
        }
        st
    }

    fn lease_one(s: &Scheduler, st: &mut State, w: &WorkerId) -> (JobId, TaskId) {
        st.examined.set(0);
        let (j, t) = s.pick(st, w, true).expect("a task to pick");
        st.lease_counter += 1;
        let seq = st.lease_counter;
        st.apply(
            &t,
            TaskEvent::Lease {
                worker: w.clone(),
                token: "x".into(),
                deadline_ms: i64::MAX,
                seq,
            },
        )
        .unwrap();
        let case = st.jobs[&j].rec.spec.case_id.clone();
        st.case_served.insert(case, seq);
        (j, t)
    }

    /// Issue 23: a pick looks at the cases with queued work and one job of
    /// each, whatever the number of jobs and tasks held; and it still
    /// orders by priority, then the case with the fewest running tasks,
    /// then the case served least recently, then submission order.
    #[tokio::test]
    async fn a_pick_looks_at_cases_not_at_every_job_or_task() {
        let s = Scheduler::open(SchedulerConfig {
            ephemeral: true,
            ..Default::default()
        })
        .unwrap();
        let w = WorkerId::new("w1").unwrap();
        let mut examined = Vec::new();
        for (jobs, tasks) in [(30, 10), (600, 50)] {
            let mut st = state(jobs, tasks, true);
            // The urgent job first, looking at that one job only.
            let (j, _) = lease_one(&s, &mut st, &w);
            assert_eq!(j.as_str(), "J000007");
            let urgent = st.examined.get();
            // Then fair share over the cases: C1 runs one task, so C2 and
            // C0 (first jobs J000002, J000003) come next, then C1 again
            // with its first job, J000001.
            let order: Vec<String> = (0..3)
                .map(|_| lease_one(&s, &mut st, &w).0.to_string())
                .collect();
            assert_eq!(order, ["J000002", "J000003", "J000001"]);
            let normal = st.examined.get();
            examined.push((urgent, normal));
            // Leased counts per case follow the tasks.
            let c1 = CaseId::new("C1").unwrap();
            assert_eq!(st.case_leased.get(&c1).copied(), Some(2));
        }
        // The same few looked at, with 300 tasks or 30,000 held.
        assert_eq!(examined[0], examined[1], "{examined:?}");
        assert!(examined[1].0 <= 2 && examined[1].1 <= 6, "{examined:?}");
    }

    /// A job whose queue empties leaves the index; a cancelled job's leases
    /// leave its case's count.
    #[tokio::test]
    async fn the_ready_index_follows_queues_and_archives() {
        let s = Scheduler::open(SchedulerConfig {
            ephemeral: true,
            ..Default::default()
        })
        .unwrap();
        let w = WorkerId::new("w1").unwrap();
        let mut st = state(1, 2, false);
        lease_one(&s, &mut st, &w);
        lease_one(&s, &mut st, &w);
        assert!(st.ready.is_empty(), "{:?}", st.ready);
        assert!(s.pick(&st, &w, true).is_none());
        let c1 = CaseId::new("C1").unwrap();
        assert_eq!(st.case_leased.get(&c1).copied(), Some(2));
        let id = JobId::new("J000001").unwrap();
        st.jobs.get_mut(&id).unwrap().rec.state = JobState::Cancelled;
        st.archive(&id, s.store()).unwrap();
        assert!(st.case_leased.is_empty(), "{:?}", st.case_leased);
        assert!(st.tasks.is_empty());
    }
}
