//! The job and task state machines, as pure functions: no lock, no I/O, no
//! clock. Every change of a task's or a job's state in the scheduler goes
//! through [`apply_task`] or [`job_next`]; the scheduler's indices (queues,
//! leased and unfinished counts, progress) are derived from the transitions
//! they return, in one place (`core::state`).
//!
//! ```text
//!  task:                       Cancel (from any non-final state)
//!                                    ──────────────► Cancelled
//!  Waiting ──Release──► Queued ──Lease──► Leased ──Done──► Done
//!     │                   ▲  ▲             │  │ ▲
//!     └──NothingToDo──► Done │  GiveBack   │  │ └ Extend (heartbeat)
//!                         │  └─────────────┘  │
//!                         └── Failed (attempts < max)
//!                                             └─ Failed (attempts ≥ max) ──► Quarantined
//!
//!  job:  Queued ──FirstLease──► Running ──Completed──► Completed
//!          │                       │ ──Failed────► Failed
//!          └─ PlanFailed / Completed (no tasks) / Failed / Cancel ─► (final)
//! ```
//!
//! Final states (Done, Quarantined, Cancelled; Completed, Failed,
//! Cancelled) take no event: a late report, a second cancel or an expired
//! lease of a finished task is refused by the machine, never applied.

use trawl_core::WorkerId;
use trawl_store::{JobState, TaskRecord, TaskState};

/// What happens to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    /// The shards it waits on are final and its inputs are gathered.
    Release,
    /// Its inputs are gathered and there is nothing for it to scan.
    NothingToDo,
    /// Handed to `worker` under `token` until `deadline_ms`; `seq` is the
    /// scheduler-wide lease counter.
    Lease {
        worker: WorkerId,
        token: String,
        deadline_ms: i64,
        seq: u64,
    },
    /// The holder's heartbeat: the lease runs until `deadline_ms`.
    Extend { deadline_ms: i64 },
    /// The holder's result was accepted at `at_ms`.
    Done { worker: WorkerId, at_ms: i64 },
    /// The attempt failed (the worker's error, a refused result, the lease
    /// expired): queued again, or quarantined after `max_attempts`.
    Failed {
        worker: WorkerId,
        error: String,
        max_attempts: u32,
    },
    /// The holder gives the lease back unrun (a draining worker): the
    /// attempt does not count.
    GiveBack,
    /// Its job was cancelled.
    Cancel,
}

impl TaskEvent {
    /// The event's name (errors, logs).
    pub fn name(&self) -> &'static str {
        match self {
            TaskEvent::Release => "release",
            TaskEvent::NothingToDo => "nothing-to-do",
            TaskEvent::Lease { .. } => "lease",
            TaskEvent::Extend { .. } => "extend",
            TaskEvent::Done { .. } => "done",
            TaskEvent::Failed { .. } => "failed",
            TaskEvent::GiveBack => "give-back",
            TaskEvent::Cancel => "cancel",
        }
    }
}

/// A transition the machine does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} {what} cannot take the event {event}")]
pub struct Refused {
    pub what: &'static str,
    pub from: &'static str,
    pub event: &'static str,
}

/// A task state's name.
pub fn task_state_name(s: TaskState) -> &'static str {
    match s {
        TaskState::Waiting => "waiting",
        TaskState::Queued => "queued",
        TaskState::Leased => "leased",
        TaskState::Done => "done",
        TaskState::Quarantined => "quarantined",
        TaskState::Cancelled => "cancelled",
    }
}

/// The state a task in `from` moves to on `event`, `attempts` being the
/// leases it had so far (the current one included).
///
/// # Errors
/// The transition does not exist (see the module's diagram).
pub fn task_next(from: TaskState, event: &TaskEvent, attempts: u32) -> Result<TaskState, Refused> {
    use TaskState::{Cancelled, Done, Leased, Quarantined, Queued, Waiting};
    Ok(match (from, event) {
        (Waiting, TaskEvent::Release) => Queued,
        (Waiting, TaskEvent::NothingToDo) => Done,
        (Queued, TaskEvent::Lease { .. }) => Leased,
        (Leased, TaskEvent::Extend { .. }) => Leased,
        (Leased, TaskEvent::Done { .. }) => Done,
        (Leased, TaskEvent::Failed { max_attempts, .. }) => {
            if attempts >= *max_attempts {
                Quarantined
            } else {
                Queued
            }
        }
        (Leased, TaskEvent::GiveBack) => Queued,
        (Waiting | Queued | Leased, TaskEvent::Cancel) => Cancelled,
        _ => {
            return Err(Refused {
                what: "task",
                from: task_state_name(from),
                event: event.name(),
            });
        }
    })
}

/// Applies `event` to `t`: its state and the fields the transition sets
/// (worker, lease token and deadline, attempts, errors). Returns the state
/// it left. On a refused event `t` is unchanged.
///
/// # Errors
/// The transition does not exist.
pub fn apply_task(t: &mut TaskRecord, event: TaskEvent) -> Result<TaskState, Refused> {
    let from = t.state;
    let to = task_next(from, &event, t.attempts)?;
    match event {
        TaskEvent::Lease {
            worker,
            token,
            deadline_ms,
            seq,
        } => {
            t.worker = Some(worker);
            t.attempts += 1;
            if t.first_lease_seq == 0 {
                t.first_lease_seq = seq;
            }
            t.lease_deadline_ms = deadline_ms;
            t.lease_token = token;
        }
        TaskEvent::Extend { deadline_ms } => t.lease_deadline_ms = deadline_ms,
        TaskEvent::Done { worker, at_ms } => {
            t.finished_ms = at_ms;
            t.lease_token.clear();
            t.worker = Some(worker);
        }
        TaskEvent::Failed { worker, error, .. } => {
            t.errors
                .push(format!("attempt {} on {worker}: {error}", t.attempts));
            if !t.failed_on.contains(&worker) {
                t.failed_on.push(worker);
            }
            t.worker = None;
            t.lease_token.clear();
        }
        TaskEvent::GiveBack => {
            t.worker = None;
            t.attempts = t.attempts.saturating_sub(1);
            t.lease_token.clear();
        }
        TaskEvent::Cancel => t.lease_token.clear(),
        TaskEvent::Release | TaskEvent::NothingToDo => {}
    }
    t.state = to;
    Ok(from)
}

/// What happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    /// Its evidence could not be opened or planned.
    PlanFailed,
    /// A first task of it was leased.
    FirstLease,
    /// Every task is final and the results are merged and stored.
    Completed,
    /// Merging or storing its results failed.
    Failed,
    /// Cancelled by a user.
    Cancel,
}

impl JobEvent {
    /// The event's name.
    pub fn name(self) -> &'static str {
        match self {
            JobEvent::PlanFailed => "plan-failed",
            JobEvent::FirstLease => "first-lease",
            JobEvent::Completed => "completed",
            JobEvent::Failed => "failed",
            JobEvent::Cancel => "cancel",
        }
    }
}

/// The state a job in `from` moves to on `event`.
///
/// # Errors
/// The transition does not exist: a final job takes no event.
pub fn job_next(from: JobState, event: JobEvent) -> Result<JobState, Refused> {
    use JobState::{Cancelled, Completed, Failed, Queued, Running};
    Ok(match (from, event) {
        (Queued, JobEvent::PlanFailed) => Failed,
        (Queued, JobEvent::FirstLease) => Running,
        (Queued | Running, JobEvent::Completed) => Completed,
        (Queued | Running, JobEvent::Failed) => Failed,
        (Queued | Running, JobEvent::Cancel) => Cancelled,
        _ => {
            return Err(Refused {
                what: "job",
                from: from.name(),
                event: event.name(),
            });
        }
    })
}

/// How far along a job state is: a job's rank never decreases.
pub fn job_rank(s: JobState) -> u8 {
    match s {
        JobState::Queued => 0,
        JobState::Running => 1,
        JobState::Completed | JobState::Failed | JobState::Cancelled => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: u32 = 3;

    fn wid(w: &str) -> WorkerId {
        WorkerId::new(w).unwrap()
    }

    fn task(state: TaskState) -> TaskRecord {
        TaskRecord {
            task_id: trawl_core::TaskId::new("J000001:s000000").unwrap(),
            job_id: trawl_core::JobId::new("J000001").unwrap(),
            kind: trawl_store::TaskKind::Shard,
            shard: None,
            order: 1,
            state,
            attempts: 0,
            worker: None,
            lease_deadline_ms: 0,
            lease_token: String::new(),
            errors: Vec::new(),
            failed_on: Vec::new(),
            bytes: 0,
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

    fn event() -> impl Strategy<Value = TaskEvent> {
        prop_oneof![
            Just(TaskEvent::Release),
            Just(TaskEvent::NothingToDo),
            (0u8..3, 1u64..100).prop_map(|(w, s)| TaskEvent::Lease {
                worker: wid(&format!("w{w}")),
                token: format!("t{s}"),
                deadline_ms: s as i64 * 10,
                seq: s,
            }),
            (1i64..1000).prop_map(|d| TaskEvent::Extend { deadline_ms: d }),
            (0u8..3).prop_map(|w| TaskEvent::Done {
                worker: wid(&format!("w{w}")),
                at_ms: 5
            }),
            (0u8..3).prop_map(|w| TaskEvent::Failed {
                worker: wid(&format!("w{w}")),
                error: "boom".into(),
                max_attempts: MAX
            }),
            Just(TaskEvent::GiveBack),
            Just(TaskEvent::Cancel),
        ]
    }

    /// The model: what a task is, written independently of the machine.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Model {
        Waiting,
        Queued,
        Leased,
        Done,
        Quarantined,
        Cancelled,
    }

    fn model_step(m: Model, e: &TaskEvent, attempts: &mut u32) -> Option<Model> {
        let ended = matches!(m, Model::Done | Model::Quarantined | Model::Cancelled);
        if ended {
            return None;
        }
        match e {
            TaskEvent::Cancel => Some(Model::Cancelled),
            TaskEvent::Release => (m == Model::Waiting).then_some(Model::Queued),
            TaskEvent::NothingToDo => (m == Model::Waiting).then_some(Model::Done),
            TaskEvent::Lease { .. } => (m == Model::Queued).then(|| {
                *attempts += 1;
                Model::Leased
            }),
            TaskEvent::Extend { .. } => (m == Model::Leased).then_some(Model::Leased),
            TaskEvent::Done { .. } => (m == Model::Leased).then_some(Model::Done),
            TaskEvent::GiveBack => (m == Model::Leased).then(|| {
                *attempts -= 1;
                Model::Queued
            }),
            TaskEvent::Failed { .. } => (m == Model::Leased).then_some(if *attempts >= MAX {
                Model::Quarantined
            } else {
                Model::Queued
            }),
        }
    }

    fn same(m: Model, s: TaskState) -> bool {
        matches!(
            (m, s),
            (Model::Waiting, TaskState::Waiting)
                | (Model::Queued, TaskState::Queued)
                | (Model::Leased, TaskState::Leased)
                | (Model::Done, TaskState::Done)
                | (Model::Quarantined, TaskState::Quarantined)
                | (Model::Cancelled, TaskState::Cancelled)
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any sequence of events: the machine agrees with the model, a
        /// refused event changes nothing, final states take nothing, the
        /// attempts never pass the limit, a leased task always has a
        /// holder and a token, a non-leased one has no token.
        #[test]
        fn task_machine_follows_the_model(
            start_waiting in any::<bool>(),
            events in proptest::collection::vec(event(), 0..40),
        ) {
            let (mut m, s) = if start_waiting {
                (Model::Waiting, TaskState::Waiting)
            } else {
                (Model::Queued, TaskState::Queued)
            };
            let mut t = task(s);
            let mut attempts = 0u32;
            for e in events {
                let before = t.clone();
                let expect = model_step(m, &e, &mut attempts);
                let got = apply_task(&mut t, e.clone());
                match (expect, got) {
                    (Some(next), Ok(from)) => {
                        prop_assert_eq!(from, before.state);
                        prop_assert!(same(next, t.state), "{:?} then {:?}: model {:?}, machine {:?}", before.state, e, next, t.state);
                        m = next;
                    }
                    (None, Err(_)) => prop_assert_eq!(&t, &before, "a refused event changed the task"),
                    (exp, got) => prop_assert!(false, "{:?} then {:?}: model {:?}, machine {:?}", before.state, e, exp, got),
                }
                prop_assert_eq!(t.attempts, attempts);
                prop_assert!(t.attempts <= MAX);
                if t.state == TaskState::Leased {
                    prop_assert!(t.worker.is_some() && !t.lease_token.is_empty());
                } else {
                    prop_assert!(t.lease_token.is_empty());
                }
                if before.state.is_final() {
                    prop_assert_eq!(&t, &before);
                }
            }
        }

        /// A job's rank never decreases and a final job takes no event.
        #[test]
        fn job_states_never_go_backwards(
            events in proptest::collection::vec(0u8..5, 0..20),
        ) {
            let mut s = JobState::Queued;
            for e in events {
                let e = [JobEvent::PlanFailed, JobEvent::FirstLease, JobEvent::Completed, JobEvent::Failed, JobEvent::Cancel][e as usize];
                match job_next(s, e) {
                    Ok(n) => {
                        prop_assert!(!s.is_final());
                        prop_assert!(job_rank(n) > job_rank(s));
                        s = n;
                    }
                    Err(_) => prop_assert!(s.is_final() || s == JobState::Running && matches!(e, JobEvent::PlanFailed | JobEvent::FirstLease)),
                }
            }
        }
    }

    #[test]
    fn every_state_and_event_has_a_defined_answer() {
        let states = [
            TaskState::Waiting,
            TaskState::Queued,
            TaskState::Leased,
            TaskState::Done,
            TaskState::Quarantined,
            TaskState::Cancelled,
        ];
        let events = [
            TaskEvent::Release,
            TaskEvent::NothingToDo,
            TaskEvent::Lease {
                worker: wid("w"),
                token: "t".into(),
                deadline_ms: 1,
                seq: 1,
            },
            TaskEvent::Extend { deadline_ms: 2 },
            TaskEvent::Done {
                worker: wid("w"),
                at_ms: 3,
            },
            TaskEvent::Failed {
                worker: wid("w"),
                error: "e".into(),
                max_attempts: 1,
            },
            TaskEvent::GiveBack,
            TaskEvent::Cancel,
        ];
        let mut allowed = 0;
        for s in states {
            for e in &events {
                match task_next(s, e, 1) {
                    Ok(_) => {
                        assert!(!s.is_final(), "{s:?} took {e:?}");
                        allowed += 1;
                    }
                    Err(r) => assert_eq!(r.from, task_state_name(s)),
                }
            }
        }
        // Waiting: release, nothing-to-do, cancel; queued: lease, cancel;
        // leased: extend, done, failed, give-back, cancel.
        assert_eq!(allowed, 10);
        let mut t = task(TaskState::Queued);
        t.attempts = 0;
        apply_task(
            &mut t,
            TaskEvent::Lease {
                worker: wid("w"),
                token: "t".into(),
                deadline_ms: 1,
                seq: 1,
            },
        )
        .unwrap();
        let failed = TaskEvent::Failed {
            worker: wid("w"),
            error: "e".into(),
            max_attempts: 1,
        };
        apply_task(&mut t, failed).unwrap();
        assert_eq!(t.state, TaskState::Quarantined);
        assert_eq!(t.errors, ["attempt 1 on w: e"]);
    }
}
