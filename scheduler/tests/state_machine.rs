//! The scheduler's state machine against a simple model (issue 18): random
//! interleavings of lease, report (accepted, failed, stale), heartbeat,
//! lease expiry, give-back, cancel, worker loss and scheduler restart.
//! After every step the scheduler agrees with the model; nothing is lost
//! (every task ends final exactly once), nothing duplicated (a task is
//! never leased twice at once), no state goes backwards; the database
//! always equals memory, and a restarted scheduler rebuilds the same
//! state. A second test does the same under real concurrency.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trawl_core::spec::{AnalysisSet, EvidenceRef, JobSpec, RuleSource};
use trawl_core::{CaseId, Priority};
use trawl_proto::v1;
use trawl_scheduler::{Caller, SchedError, Scheduler, SchedulerConfig};
use trawl_store::{JobRecord, JobState, TaskKind, TaskRecord, TaskState, WorkerRecord};

const MAX_ATTEMPTS: u32 = 3;
const SHARD: u64 = 8 << 10;

fn config(data: &Path, evidence: &Path) -> SchedulerConfig {
    SchedulerConfig {
        data_dir: data.to_path_buf(),
        evidence_roots: vec![evidence.to_path_buf()],
        min_shard_size: 1 << 10,
        max_attempts: MAX_ATTEMPTS,
        background_rule_validation: false,
        ..Default::default()
    }
}

fn worker(id: &str) -> WorkerRecord {
    WorkerRecord {
        worker_id: trawl_core::WorkerId::new(id).unwrap(),
        hostname: "test".into(),
        slots: 4,
        memory_bytes: 1 << 30,
        evidence_roots: Vec::new(),
        version: "test".into(),
        registered_ms: 0,
        last_heartbeat_ms: 0,
        tasks_done: 0,
        bytes_done: 0,
        site: String::new(),
        cores: 2,
        memory_free_bytes: 1 << 30,
        capabilities: Vec::new(),
    }
}

/// Two cases, three jobs: one with a YARA step waiting for its shards.
async fn submit_jobs(sched: &Arc<Scheduler>, image: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for (case, analyses, yara) in [
        ("case-a", "features", false),
        ("case-b", "features,yara", true),
        ("case-a", "carve", false),
    ] {
        let mut spec = JobSpec::new(
            CaseId::new(case).unwrap(),
            EvidenceRef::Paths(vec![image.display().to_string()]),
            AnalysisSet::parse(analyses).unwrap(),
        );
        spec.shard_size = SHARD;
        spec.priority = Priority::Normal;
        if yara {
            spec.yara.sources = vec![RuleSource {
                name: "t.yar".into(),
                text: "rule t { strings: $a = \"trawl-needle\" condition: $a }".into(),
            }];
        }
        let rec = sched
            .submit(spec, &Caller::local("test"))
            .await
            .expect("submit");
        ids.push(rec.job_id.to_string());
    }
    // Planned (in the background).
    let t0 = Instant::now();
    while ids
        .iter()
        .any(|id| sched.job(id).unwrap().plan.is_none() && !sched.job(id).unwrap().state.is_final())
    {
        assert!(t0.elapsed() < Duration::from_secs(20), "jobs not planned");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ids
}

/// Waits until no background step (YARA release, finalisation) is due.
async fn settle(sched: &Arc<Scheduler>, jobs: &[String]) {
    let t0 = Instant::now();
    loop {
        let busy = jobs.iter().any(|id| {
            let j = sched.job(id).unwrap();
            if j.state.is_final() {
                return false;
            }
            let tasks = sched.tasks_of(id);
            let shards_final = tasks
                .iter()
                .filter(|t| t.kind == TaskKind::Shard)
                .all(|t| t.state.is_final());
            let all_final = tasks.iter().all(|t| t.state.is_final());
            let waiting = tasks.iter().any(|t| t.state == TaskState::Waiting);
            all_final || (shards_final && waiting)
        });
        if !busy {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "background steps did not settle"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The fields of a job record the database must hold as memory does.
fn job_key(j: &JobRecord) -> impl PartialEq + std::fmt::Debug {
    (
        j.job_id.clone(),
        j.state,
        j.error.clone(),
        j.plan,
        j.limitations.clone(),
        j.started_ms,
        j.finished_ms,
        j.counts.clone(),
    )
}

/// The database equals memory: every task of an unfinished job, and
/// every job record.
fn assert_persisted(sched: &Scheduler) {
    let ((jobs, tasks), (stored_jobs, stored_tasks)) = sched.state_and_store().unwrap();
    if tasks != stored_tasks {
        let stored: BTreeMap<_, _> = stored_tasks.iter().map(|t| (&t.task_id, t)).collect();
        let differ: Vec<_> = tasks
            .iter()
            .filter(|t| stored.get(&t.task_id) != Some(t))
            .map(|t| (t, stored.get(&t.task_id)))
            .take(3)
            .collect();
        panic!(
            "tasks in memory ({}) and in the database ({}) differ: {differ:#?}",
            tasks.len(),
            stored_tasks.len()
        );
    }
    let by_id: BTreeMap<_, _> = stored_jobs.iter().map(|j| (j.job_id.clone(), j)).collect();
    for j in &jobs {
        let s = by_id
            .get(&j.job_id)
            .unwrap_or_else(|| panic!("job {} not in the database", j.job_id));
        assert_eq!(
            job_key(j),
            job_key(s),
            "job {} in memory and database",
            j.job_id
        );
    }
}

#[derive(Debug, Clone)]
enum Op {
    Lease { worker: usize, max: u32 },
    ReportOk { worker: usize, pick: usize },
    ReportErr { worker: usize, pick: usize },
    ReportStale { pick: usize },
    Heartbeat { worker: usize },
    Expire,
    GiveBack { worker: usize },
    Cancel { job: usize },
    LoseWorker { worker: usize },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..3, 1u32..5).prop_map(|(worker, max)| Op::Lease { worker, max }),
        6 => (0usize..3, any::<usize>()).prop_map(|(worker, pick)| Op::ReportOk { worker, pick }),
        2 => (0usize..3, any::<usize>()).prop_map(|(worker, pick)| Op::ReportErr { worker, pick }),
        1 => any::<usize>().prop_map(|pick| Op::ReportStale { pick }),
        1 => (0usize..3).prop_map(|worker| Op::Heartbeat { worker }),
        1 => Just(Op::Expire),
        1 => (0usize..3).prop_map(|worker| Op::GiveBack { worker }),
        1 => (0usize..3).prop_map(|job| Op::Cancel { job }),
        1 => (0usize..3).prop_map(|worker| Op::LoseWorker { worker }),
        1 => Just(Op::Restart),
    ]
}

/// The model: what each task is, and the leases each worker holds.
#[derive(Debug, Default)]
struct Model {
    state: HashMap<String, TaskState>,
    attempts: HashMap<String, u32>,
    job_of: HashMap<String, String>,
    /// task -> (worker index, lease token, deadline)
    leases: BTreeMap<String, (usize, String, i64)>,
    /// Tokens of leases that ended (a report under them must be refused).
    stale: Vec<(usize, String, String)>,
    job_state: HashMap<String, JobState>,
}

fn rank(s: JobState) -> u8 {
    match s {
        JobState::Queued => 0,
        JobState::Running => 1,
        _ => 2,
    }
}

impl Model {
    fn load(&mut self, sched: &Scheduler, jobs: &[String]) {
        for j in jobs {
            for t in sched.tasks_of(j) {
                self.state.insert(t.task_id.to_string(), t.state);
                self.attempts.insert(t.task_id.to_string(), t.attempts);
                self.job_of.insert(t.task_id.to_string(), j.clone());
            }
            self.job_state
                .insert(j.clone(), sched.job(j).unwrap().state);
        }
    }

    fn held_by(&self, worker: usize) -> Vec<String> {
        self.leases
            .iter()
            .filter(|(_, (w, _, _))| *w == worker)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Every lease due by `now` fails its attempt.
    fn expire(&mut self, now: i64) {
        let due: Vec<String> = self
            .leases
            .iter()
            .filter(|(_, (_, _, d))| *d <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for t in due {
            self.fail(&t);
        }
    }

    fn refresh_deadlines(&mut self, sched: &Scheduler, jobs: &[String]) {
        for j in jobs {
            for t in sched.tasks_of(j) {
                if let Some(l) = self.leases.get_mut(t.task_id.as_str()) {
                    l.2 = t.lease_deadline_ms;
                }
            }
        }
    }

    fn end_lease(&mut self, task: &str) {
        if let Some((w, token, _)) = self.leases.remove(task) {
            self.stale.push((w, task.to_string(), token));
        }
    }

    fn fail(&mut self, task: &str) {
        self.end_lease(task);
        let next = if self.attempts[task] >= MAX_ATTEMPTS {
            TaskState::Quarantined
        } else {
            TaskState::Queued
        };
        self.state.insert(task.to_string(), next);
    }

    /// After the background steps: the scheduler's tasks equal the model's
    /// (a waiting task is released, as the model predicts, once every shard
    /// of its job is final); job states only move forward.
    fn check(&mut self, sched: &Scheduler, jobs: &[String]) {
        for j in jobs {
            let tasks = sched.tasks_of(j);
            let shards_final = tasks
                .iter()
                .filter(|t| t.kind == TaskKind::Shard)
                .all(|t| self.state[t.task_id.as_str()].is_final());
            let job = sched.job(j).unwrap();
            for t in &tasks {
                let Some(expect) = self.state.get(t.task_id.as_str()).copied() else {
                    // A task created by the release step (more carved files
                    // than one task takes): new to the model.
                    self.state.insert(t.task_id.to_string(), t.state);
                    self.attempts.insert(t.task_id.to_string(), t.attempts);
                    self.job_of.insert(t.task_id.to_string(), j.clone());
                    continue;
                };
                let expect = match expect {
                    TaskState::Waiting if shards_final && !job.state.is_final() => {
                        // Released: queued, or done when there was nothing
                        // to scan.
                        assert!(
                            matches!(t.state, TaskState::Queued | TaskState::Done),
                            "{} should have been released, is {:?}",
                            t.task_id,
                            t.state
                        );
                        t.state
                    }
                    s => s,
                };
                assert_eq!(t.state, expect, "task {} (model vs scheduler)", t.task_id);
                assert_eq!(
                    t.attempts,
                    self.attempts[t.task_id.as_str()],
                    "attempts of {}",
                    t.task_id
                );
                self.state.insert(t.task_id.to_string(), t.state);
                if t.state == TaskState::Leased {
                    let (w, token, deadline) = &self.leases[t.task_id.as_str()];
                    assert_eq!(t.worker.as_deref(), Some(worker_name(*w).as_str()));
                    assert_eq!(&t.lease_token, token);
                    assert_eq!(t.lease_deadline_ms, *deadline, "deadline of {}", t.task_id);
                }
            }
            let before = self.job_state[j];
            assert!(
                rank(job.state) >= rank(before),
                "job {j} went back from {before:?} to {:?}",
                job.state
            );
            if before.is_final() {
                assert_eq!(job.state, before, "a final job changed");
            }
            self.job_state.insert(j.clone(), job.state);
            if job.state.is_final() {
                assert!(
                    tasks.iter().all(|t| t.state.is_final()),
                    "job {j} ended with unfinished tasks"
                );
            }
        }
    }
}

fn worker_name(i: usize) -> String {
    format!("w{i}")
}

fn empty_result(task: &str) -> Result<v1::TaskResult, String> {
    Ok(v1::TaskResult {
        task_id: task.to_string(),
        ..Default::default()
    })
}

fn nth_lease(m: &Model, worker: Option<usize>, pick: usize) -> Option<(String, usize, String)> {
    let held: Vec<_> = m
        .leases
        .iter()
        .filter(|(_, (w, _, _))| worker.is_none_or(|x| x == *w))
        .map(|(t, (w, tok, _))| (t.clone(), *w, tok.clone()))
        .collect();
    (!held.is_empty()).then(|| held[pick % held.len()].clone())
}

/// Restarts the scheduler on the same data directory: every reference
/// dropped (the background steps included), the database reopened.
async fn restart(sched: Arc<Scheduler>, cfg: &SchedulerConfig) -> Arc<Scheduler> {
    let mut sched = sched;
    let t0 = Instant::now();
    loop {
        match Arc::try_unwrap(sched) {
            Ok(s) => {
                drop(s);
                break;
            }
            Err(s) => {
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "scheduler still referenced"
                );
                sched = s;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let t0 = Instant::now();
    loop {
        match Scheduler::open(cfg.clone()) {
            Ok(s) => return s,
            Err(e) if t0.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("reopening the scheduler: {e}"),
        }
    }
}

/// Memory equal before and after a restart (lease deadlines refreshed).
fn same_state(before: &[TaskRecord], after: &[TaskRecord]) {
    let norm = |v: &[TaskRecord]| -> Vec<TaskRecord> {
        v.iter()
            .cloned()
            .map(|mut t| {
                t.lease_deadline_ms = 0;
                t
            })
            .collect()
    };
    assert_eq!(norm(before), norm(after), "state rebuilt after a restart");
}

async fn run_ops(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("evidence");
    std::fs::create_dir(&ev).unwrap();
    let image = ev.join("disk.dd");
    let mut data = vec![0u8; 64 << 10];
    data[10_000..10_012].copy_from_slice(b"trawl-needle");
    std::fs::write(&image, &data).unwrap();
    let ev = ev.canonicalize().unwrap();
    let image = image.canonicalize().unwrap();
    let cfg = config(&dir.path().join("data"), &ev);
    let mut sched = Scheduler::open(cfg.clone()).unwrap();
    for w in 0..3 {
        sched.register(worker(&worker_name(w))).unwrap();
    }
    let jobs = submit_jobs(&sched, &image).await;
    let mut m = Model::default();
    m.load(&sched, &jobs);
    let far = trawl_store::now_ms() + 10 * 365 * 24 * 3600 * 1000;
    for op in ops {
        match op {
            Op::Lease { worker, max } => {
                let got = sched.lease(&worker_name(worker), max).unwrap();
                for l in got {
                    let id = l.task.task_id.to_string();
                    assert_eq!(
                        m.state[&id],
                        TaskState::Queued,
                        "{id} leased while {:?} (duplicated?)",
                        m.state[&id]
                    );
                    assert!(!m.leases.contains_key(&id), "{id} leased twice at once");
                    m.state.insert(id.clone(), TaskState::Leased);
                    *m.attempts.get_mut(&id).unwrap() += 1;
                    m.leases.insert(
                        id,
                        (worker, l.task.lease_token.clone(), l.task.lease_deadline_ms),
                    );
                }
            }
            Op::ReportOk { worker, pick } => {
                if let Some((task, w, token)) = nth_lease(&m, Some(worker), pick) {
                    let r = sched.report(&worker_name(w), &task, &token, empty_result(&task));
                    assert!(matches!(r, Ok(true)), "report of {task}: {r:?}");
                    m.end_lease(&task);
                    m.state.insert(task, TaskState::Done);
                }
            }
            Op::ReportErr { worker, pick } => {
                if let Some((task, w, token)) = nth_lease(&m, Some(worker), pick) {
                    let r = sched.report(&worker_name(w), &task, &token, Err("boom".into()));
                    assert!(matches!(r, Ok(true)), "failed report of {task}: {r:?}");
                    m.fail(&task);
                }
            }
            Op::ReportStale { pick } => {
                if !m.stale.is_empty() {
                    let (w, task, token) = m.stale[pick % m.stale.len()].clone();
                    let r = sched.report(&worker_name(w), &task, &token, empty_result(&task));
                    // Refused, or ignored once the task is final.
                    match r {
                        Err(SchedError::PermissionDenied(_)) => {}
                        Ok(false) => assert!(m.state[&task].is_final()),
                        other => panic!("stale report of {task} taken: {other:?}"),
                    }
                }
            }
            Op::Heartbeat { worker } => {
                let held = m.held_by(worker);
                let before = trawl_store::now_ms();
                let out = sched.heartbeat(&worker_name(worker), &held, 1 << 30, &[]);
                assert!(
                    out.cancel.is_empty(),
                    "held leases cancelled: {:?}",
                    out.cancel
                );
                m.refresh_deadlines(&sched, &jobs);
                for t in &held {
                    assert!(
                        m.leases[t].2 >= before + cfg.lease_ms as i64,
                        "lease of {t} not extended"
                    );
                }
            }
            Op::Expire => {
                sched.expire_leases_at(far);
                m.expire(far);
            }
            Op::GiveBack { worker } => {
                let held = m.held_by(worker);
                sched.release(&worker_name(worker), &held);
                for t in held {
                    m.end_lease(&t);
                    m.state.insert(t.clone(), TaskState::Queued);
                    *m.attempts.get_mut(&t).unwrap() -= 1;
                }
            }
            Op::Cancel { job } => {
                let id = &jobs[job];
                let r = sched.cancel(id, "test", &Caller::local("test"));
                if m.job_state[id].is_final() {
                    assert!(matches!(r, Err(SchedError::FailedPrecondition(_))), "{r:?}");
                } else {
                    r.unwrap();
                    for (t, j) in m.job_of.clone() {
                        if j == *id && !m.state[&t].is_final() {
                            m.end_lease(&t);
                            m.state.insert(t, TaskState::Cancelled);
                        }
                    }
                }
            }
            Op::LoseWorker { worker } => {
                // The worker is gone: the clock passes its last lease's
                // deadline, and every lease due by then expires (its own,
                // and any other as old).
                let last = m
                    .leases
                    .values()
                    .filter(|(w, _, _)| *w == worker)
                    .map(|(_, _, d)| *d)
                    .max();
                if let Some(t) = last {
                    sched.expire_leases_at(t);
                    m.expire(t);
                }
            }
            Op::Restart => {
                settle(&sched, &jobs).await;
                assert_persisted(&sched);
                let before: Vec<TaskRecord> = jobs.iter().flat_map(|j| sched.tasks_of(j)).collect();
                sched = restart(sched, &cfg).await;
                for w in 0..3 {
                    sched.register(worker(&worker_name(w))).unwrap();
                }
                let after: Vec<TaskRecord> = jobs.iter().flat_map(|j| sched.tasks_of(j)).collect();
                same_state(&before, &after);
                // Leases held across a restart get a fresh period.
                m.refresh_deadlines(&sched, &jobs);
            }
        }
        settle(&sched, &jobs).await;
        m.check(&sched, &jobs);
        assert_persisted(&sched);
    }
    // Drain: every job ends, every task final exactly once.
    let t0 = Instant::now();
    while jobs.iter().any(|j| !sched.job(j).unwrap().state.is_final()) {
        assert!(t0.elapsed() < Duration::from_secs(30), "jobs did not end");
        for l in sched.lease("w0", 64).unwrap() {
            let id = l.task.task_id;
            assert!(
                sched
                    .report("w0", &id, &l.task.lease_token, empty_result(&id))
                    .unwrap()
            );
        }
        sched.expire_leases_at(far);
        settle(&sched, &jobs).await;
    }
    for j in &jobs {
        let rec = sched.job(j).unwrap();
        let tasks = sched.tasks_of(j);
        assert_eq!(
            tasks.len() as u32,
            rec.progress.tasks_total,
            "job {j}: tasks lost or duplicated"
        );
        assert!(tasks.iter().all(|t| t.state.is_final()));
        let done = tasks.iter().filter(|t| t.state == TaskState::Done).count() as u32;
        let failed = tasks
            .iter()
            .filter(|t| t.state == TaskState::Quarantined)
            .count() as u32;
        assert_eq!(
            (done, failed),
            (rec.progress.tasks_done, rec.progress.tasks_failed),
            "job {j} progress"
        );
        if rec.state == JobState::Completed {
            assert_eq!(done + failed, rec.progress.tasks_total);
        }
    }
    assert_persisted(&sched);
    let before: Vec<JobRecord> = jobs.iter().map(|j| sched.job(j).unwrap()).collect();
    sched = restart(sched, &cfg).await;

    let after: Vec<JobRecord> = jobs.iter().map(|j| sched.job(j).unwrap()).collect();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(job_key(b), job_key(a));
        assert_eq!(
            b.progress, a.progress,
            "ended job {} progress after restart",
            b.job_id
        );
    }
    drop(sched);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_interleavings_agree_with_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_ops(ops));
    }
}

/// Leases, reports and cancels from several threads at once, then a
/// restart: the database equals memory before, and the rebuilt memory
/// equals it after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_and_cancel_under_load_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("evidence");
    std::fs::create_dir(&ev).unwrap();
    let image = ev.join("disk.dd");
    std::fs::write(&image, vec![7u8; 256 << 10]).unwrap();
    let ev = ev.canonicalize().unwrap();
    let image = image.canonicalize().unwrap();
    let cfg = config(&dir.path().join("data"), &ev);
    let sched = Scheduler::open(cfg.clone()).unwrap();
    for w in 0..4 {
        sched.register(worker(&worker_name(w))).unwrap();
    }
    let mut jobs = Vec::new();
    for _ in 0..4 {
        jobs.extend(submit_jobs(&sched, &image).await);
    }
    let rt = tokio::runtime::Handle::current();
    let mut handles = Vec::new();
    for w in 0..4 {
        let s = sched.clone();
        let rt = rt.clone();
        handles.push(std::thread::spawn(move || {
            let _rt = rt.enter();
            let name = worker_name(w);
            for round in 0..200 {
                let leases = s.lease(&name, 3).unwrap();
                if round % 7 == 0 {
                    let held: Vec<String> =
                        leases.iter().map(|l| l.task.task_id.to_string()).collect();
                    s.release(&name, &held);
                    continue;
                }
                for (i, l) in leases.iter().enumerate() {
                    let id = &l.task.task_id;
                    let outcome = if (round + i) % 5 == 0 {
                        Err("boom".to_string())
                    } else {
                        empty_result(id)
                    };
                    // Taken, refused (cancelled meanwhile) or ignored.
                    let _ = s.report(&name, id, &l.task.lease_token, outcome);
                }
            }
        }));
    }
    let canceller = {
        let s = sched.clone();
        let jobs = jobs.clone();
        std::thread::spawn(move || {
            for (i, j) in jobs.iter().enumerate() {
                if i % 3 == 1 {
                    let _ = s.cancel(j, "load test", &Caller::local("test"));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    for h in handles {
        h.join().unwrap();
    }
    canceller.join().unwrap();
    let far = trawl_store::now_ms() + 10 * 365 * 24 * 3600 * 1000;
    sched.expire_leases_at(far);
    settle(&sched, &jobs).await;
    assert_persisted(&sched);
    let before_tasks: Vec<TaskRecord> = jobs.iter().flat_map(|j| sched.tasks_of(j)).collect();
    let before_jobs: Vec<JobRecord> = jobs.iter().map(|j| sched.job(j).unwrap()).collect();
    for j in &before_jobs {
        let tasks = sched.tasks_of(&j.job_id);
        assert_eq!(tasks.len() as u32, j.progress.tasks_total, "{}", j.job_id);
        if j.state == JobState::Cancelled {
            assert!(tasks.iter().all(|t| t.state.is_final()));
        }
    }
    let sched = restart(sched, &cfg).await;
    assert_persisted(&sched);
    let after_tasks: Vec<TaskRecord> = jobs.iter().flat_map(|j| sched.tasks_of(j)).collect();
    same_state(&before_tasks, &after_tasks);
    for b in &before_jobs {
        let a = sched.job(&b.job_id).unwrap();
        assert_eq!(job_key(b), job_key(&a));
        assert_eq!(
            b.progress, a.progress,
            "job {} progress after restart",
            b.job_id
        );
    }
}
