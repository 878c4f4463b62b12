//! `trawl-bench labyear`: a lab's year in one scheduler. A real
//! `trawl scheduler` process with its own data directory; jobs submitted
//! through the Jobs API (every job the same sparse image, cut into
//! `--tasks-per-job` shards, the features analysis only, so each job is
//! exactly that many tasks); `--workers` simulated workers of `--slots`
//! slots each, every one its own gRPC connection on loopback, registering
//! and heartbeating as `trawl worker` does, whose slots report each task
//! done at once (an empty, valid result) and lease the next in the same
//! call (`lease_next`, as the real worker's slots do).
//!
//! Measured at the client: lease round trips per second (calls that hand
//! out a task) and their latency; then the scheduler's RSS with every task
//! finished in the store, the store's size, restart to serving (kill -9,
//! start, until the health service says SERVING and a lease works), and
//! the archive (`trawl scheduler archive`): its time, the store before and
//! after, restart after it, and the results of sample jobs identical
//! before and after.

use super::scale::Killed;
use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use trawl_proto::v1;
use trawl_proto::v1::cluster_client::ClusterClient;
use trawl_proto::v1::jobs_client::JobsClient;

use super::arg;

struct Opts {
    jobs: u64,
    tasks_per_job: u64,
    workers: usize,
    slots: usize,
    cases: u64,
    backlog: u64,
    /// Each slot holds a task this long before reporting it (the work a
    /// real worker does): an offered load of slots / hold, below capacity,
    /// to measure latency when the scheduler is not saturated. 0: report
    /// at once (saturation).
    hold_ms: u64,
    dir: PathBuf,
    keep: bool,
}

fn opt<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match arg(args, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| anyhow::anyhow!("{name} {v:?}: {e}")),
    }
}

fn opts(args: &[String]) -> Result<Opts> {
    let o = Opts {
        jobs: opt(args, "--jobs", 5000)?,
        tasks_per_job: opt(args, "--tasks-per-job", 2000)?,
        workers: opt(args, "--workers", 500)?,
        slots: opt(args, "--slots", 16)?,
        cases: opt(args, "--cases", 50)?,
        backlog: opt(args, "--backlog", 64)?,
        hold_ms: opt(args, "--hold-ms", 0)?,
        dir: PathBuf::from(
            arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
        ),
        keep: args.iter().any(|a| a == "--keep"),
    };
    ensure!(o.jobs >= 1, "--jobs must be at least 1");
    ensure!(
        (1..=1_000_000).contains(&o.tasks_per_job),
        "--tasks-per-job must be between 1 and 1000000"
    );
    ensure!(o.workers >= 1, "--workers must be at least 1");
    ensure!(
        (1..=1024).contains(&o.slots),
        "--slots must be between 1 and 1024"
    );
    ensure!(o.cases >= 1, "--cases must be at least 1");
    ensure!(o.backlog >= 1, "--backlog must be at least 1");
    Ok(o)
}

/// Shard size of the benchmark's jobs (the scheduler's default minimum).
const SHARD: u64 = 64 << 10;

/// VmRSS and VmHWM of a live process, in KiB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bytes on disk under `dir` (allocated blocks, as `du` counts them).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

fn mib_kb(kb: u64) -> String {
    format!("{:.0} MiB", kb as f64 / 1024.0)
}

/// Starts `trawl scheduler` on `listen` with `data`, `config` and `root`
/// the only evidence root; returns the process and its address.
fn start_scheduler(
    trawl: &Path,
    data: &Path,
    config: &Path,
    root: &Path,
    listen: &str,
) -> Result<(Killed, String)> {
    let mut cmd = Command::new(trawl);
    cmd.args(["scheduler", "--data"])
        .arg(data)
        .args(["--listen", listen, "--evidence-root"])
        .arg(root)
        .arg("--config")
        .arg(config)
        .env("TRAWL_LOG", "error")
        .stderr(Stdio::inherit());
    crate::scale::spawn_scheduler(cmd)
}

async fn connect(url: &str) -> Result<Channel> {
    Channel::from_shared(url.to_string())?
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}

fn job_spec(image: &Path, case: &str, high: bool) -> v1::JobSpec {
    v1::JobSpec {
        case_id: case.into(),
        evidence: Some(v1::EvidenceLocator {
            source: Some(v1::evidence_locator::Source::Paths(v1::PathList {
                paths: vec![image.display().to_string()],
            })),
        }),
        analyses: vec![v1::Analysis::Features as i32],
        priority: if high {
            v1::Priority::High as i32
        } else {
            v1::Priority::Normal as i32
        },
        shard_size: SHARD,
        margin: 4096,
        evidence_name: "labyear.raw".into(),
        ..Default::default()
    }
}

async fn register(c: &mut ClusterClient<Channel>, id: &str, slots: usize) -> Result<()> {
    c.register(v1::RegisterRequest {
        worker: Some(v1::WorkerInfo {
            worker_id: id.into(),
            hostname: "labyear".into(),
            slots: slots as u32,
            memory_bytes: 16 << 30,
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: trawl_proto::PROTOCOL_VERSION as i32,
            cores: 16,
            ..Default::default()
        }),
    })
    .await
    .with_context(|| format!("registering {id}"))?;
    Ok(())
}

/// What the slots of all workers share.
struct Shared {
    total: u64,
    done: AtomicU64,
    leased: AtomicU64,
    /// Unix-epoch microseconds when 10% and 90% of the tasks were done.
    t10: AtomicU64,
    t90: AtomicU64,
    stop: AtomicBool,
    start: Instant,
    errors: AtomicU64,
    /// LeaseTasks calls (a slot without a task), and those that got none.
    lease_calls: AtomicU64,
    lease_empty: AtomicU64,
}

impl Shared {
    fn finished_one(&self) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let us = self.start.elapsed().as_micros() as u64;
        if n == self.total / 10 {
            self.t10.store(us, Ordering::Relaxed);
        }
        if n == self.total * 9 / 10 {
            self.t90.store(us, Ordering::Relaxed);
        }
    }
}

/// One slot: lease, then report each task done at once and lease the next
/// in the same call. Returns the latency (µs) of each call that handed out
/// a task.
async fn slot(
    mut c: ClusterClient<Channel>,
    worker: String,
    held: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    sh: Arc<Shared>,
    hold: Duration,
    phase: Duration,
) -> Vec<u32> {
    let mut lat = Vec::new();
    // Paced slots start spread over one hold period, as real workers'
    // tasks end at different times (not all 8,000 in one burst).
    if !phase.is_zero() {
        tokio::time::sleep(phase).await;
    }
    let mut cur: Option<v1::Task> = None;
    loop {
        if sh.stop.load(Ordering::Relaxed) {
            break;
        }
        let t0 = Instant::now();
        let from_lease = cur.is_none();
        let next = match cur.take() {
            None => {
                let r = c
                    .lease_tasks(v1::LeaseTasksRequest {
                        worker_id: worker.clone(),
                        max_tasks: 1,
                        // As `trawl worker` waits.
                        wait_ms: 1_000,
                    })
                    .await;
                sh.lease_calls.fetch_add(1, Ordering::Relaxed);
                match r {
                    Ok(r) => {
                        let t = r.into_inner().tasks.into_iter().next();
                        if t.is_none() {
                            sh.lease_empty.fetch_add(1, Ordering::Relaxed);
                        }
                        t
                    }
                    Err(_) => {
                        sh.errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        None
                    }
                }
            }
            Some(t) => {
                if !hold.is_zero() {
                    // The task's work; the round trip is timed after it.
                    tokio::time::sleep(hold).await;
                }
                let t0 = Instant::now();
                let req = v1::ReportTaskRequest {
                    worker_id: worker.clone(),
                    task_id: t.task_id.clone(),
                    attempt: t.attempt,
                    outcome: Some(v1::report_task_request::Outcome::Result(v1::TaskResult {
                        task_id: t.task_id.clone(),
                        ..Default::default()
                    })),
                    lease_next: 1,
                    lease_token: t.lease_token.clone(),
                };
                match c.report_task(req).await {
                    Ok(r) => {
                        held.lock().expect("held").remove(&t.task_id);
                        sh.finished_one();
                        let next = r.into_inner().next.into_iter().next();
                        if next.is_some() {
                            lat.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                            sh.leased.fetch_add(1, Ordering::Relaxed);
                        }
                        next
                    }
                    Err(_) => {
                        // Reports are idempotent: the same report again.
                        sh.errors.fetch_add(1, Ordering::Relaxed);
                        cur = Some(t);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
        };
        if let Some(t) = next {
            if from_lease {
                lat.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                sh.leased.fetch_add(1, Ordering::Relaxed);
            }
            held.lock().expect("held").insert(t.task_id.clone());
            cur = Some(t);
        }
    }
    lat
}

/// Heartbeats of one worker (every 2 s, its held tasks), as `trawl worker`.
async fn heartbeats(
    mut c: ClusterClient<Channel>,
    worker: String,
    held: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    sh: Arc<Shared>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    while !sh.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let ids: Vec<String> = held.lock().expect("held").iter().cloned().collect();
        let _ = c
            .heartbeat(v1::HeartbeatRequest {
                worker_id: worker.clone(),
                free_slots: 0,
                task_ids: ids,
                memory_free_bytes: 8 << 30,
                rule_sets: Vec::new(),
            })
            .await;
    }
}

/// Every page of a job's results, encoded, hashed: equal digests, equal
/// results (the job status in the first page reads the clock: that time
/// is left out).
async fn results_digest(jobs: &mut JobsClient<Channel>, job: &str) -> Result<(String, u64)> {
    use prost::Message;
    let mut s = jobs
        .get_results(v1::GetResultsRequest {
            job_id: job.into(),
            page_size: 0,
        })
        .await?
        .into_inner();
    let mut h = blake3::Hasher::new();
    let mut n = 0u64;
    while let Some(mut p) = s.message().await? {
        // The job's status as of now (its `updated` time is the clock's).
        if let Some(pr) = p.job.as_mut().and_then(|j| j.progress.as_mut()) {
            pr.updated_unix_ms = 0;
        }
        let b = p.encode_to_vec();
        n += b.len() as u64;
        h.update(&b);
    }
    Ok((h.finalize().to_hex().to_string(), n))
}

async fn wait_serving(url: &str, deadline: Duration) -> Result<Channel> {
    let t = Instant::now();
    loop {
        if let Ok(ch) = Channel::from_shared(url.to_string())?.connect().await {
            let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
            if let Ok(r) = h
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                && r.into_inner().status
                    == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            {
                return Ok(ch);
            }
        }
        if t.elapsed() > deadline {
            bail!("{url} was not serving after {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Restart: the old process killed (SIGKILL), a new one started on the
/// same data and address; (seconds to SERVING, seconds to a task leased,
/// the new process).
async fn restart(
    old: Option<Killed>,
    trawl: &Path,
    data: &Path,
    config: &Path,
    root: &Path,
    addr: &str,
) -> Result<(f64, f64, Killed)> {
    drop(old); // kill -9, then reaped
    let t = Instant::now();
    let (child, addr2) = start_scheduler(trawl, data, config, root, addr)?;
    let url = format!("http://{addr2}");
    let ch = wait_serving(&url, Duration::from_secs(600)).await?;
    let serving = t.elapsed().as_secs_f64();
    let mut c = ClusterClient::new(ch);
    register(&mut c, "ly-probe", 1).await?;
    loop {
        let r = c
            .lease_tasks(v1::LeaseTasksRequest {
                worker_id: "ly-probe".into(),
                max_tasks: 1,
                wait_ms: 1000,
            })
            .await?
            .into_inner();
        if !r.tasks.is_empty() {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("no task could be leased after the restart");
        }
    }
    Ok((serving, t.elapsed().as_secs_f64(), child))
}

/// `per` callers on each channel calling the health service in a loop for
/// `secs`: (calls per second, p99 latency in ms).
async fn grpc_ceiling(chans: &[Channel], per: usize, secs: Duration) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for ch in chans {
        for _ in 0..per {
            let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = h
                        .check(tonic_health::pb::HealthCheckRequest {
                            service: String::new(),
                        })
                        .await;
                    if r.is_ok() {
                        lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    }
                }
                lat
            }));
        }
    }
    let t = Instant::now();
    tokio::time::sleep(secs).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for k in tasks {
        lat.extend(k.await.unwrap_or_default());
    }
    let elapsed = t.elapsed().as_secs_f64();
    lat.sort_unstable();
    (lat.len() as f64 / elapsed, pct(&lat, 0.99))
}

fn pct(v: &[u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    f64::from(v[i]) / 1000.0
}

pub fn run(trawl: &Path, args: &[String]) -> Result<()> {
    let o = opts(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(trawl, o))
}

async fn run_async(trawl: &Path, o: Opts) -> Result<()> {
    let work = o.dir.join(format!("trawl-labyear-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| work.display().to_string())?;
    let data = work.join("data");
    let image = work.join("labyear.raw");
    let size = o.tasks_per_job * SHARD;
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(size))
        .with_context(|| image.display().to_string())?;
    let config = work.join("scheduler.toml");
    std::fs::write(
        &config,
        format!(
            "max_tasks_per_job = {}\nlease_ms = 120000\n",
            o.tasks_per_job + 3
        ),
    )?;
    let total = o.jobs * o.tasks_per_job;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "labyear: {} jobs x {} tasks = {total} tasks, {} workers x {} slots, {} cases, backlog {} jobs, {cores} cores, work dir {}",
        o.jobs,
        o.tasks_per_job,
        o.workers,
        o.slots,
        o.cases,
        o.backlog,
        work.display()
    );
    let (sched, addr) = start_scheduler(trawl, &data, &config, &image, "127.0.0.1:0")?;
    let url = format!("http://{addr}");
    let jobs_ch = connect(&url).await?;
    let sh = Arc::new(Shared {
        total,
        done: AtomicU64::new(0),
        leased: AtomicU64::new(0),
        t10: AtomicU64::new(0),
        t90: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        start: Instant::now(),
        errors: AtomicU64::new(0),
        lease_calls: AtomicU64::new(0),
        lease_empty: AtomicU64::new(0),
    });

    // Workers: one connection each, registered, heartbeating, their slots
    // leasing.
    let mut slots = Vec::new();
    let mut beats = Vec::new();
    let mut chans = Vec::new();
    for w in 0..o.workers {
        let ch = connect(&url).await?;
        chans.push(ch.clone());
        let mut c = ClusterClient::new(ch);
        let id = format!("ly-w{w:04}");
        register(&mut c, &id, o.slots).await?;
        let held = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        beats.push(tokio::spawn(heartbeats(
            c.clone(),
            id.clone(),
            held.clone(),
            sh.clone(),
        )));
        for k in 0..o.slots {
            // A fixed spread: slot n of all starts at n/all of the hold.
            let n = (w * o.slots + k) as u64;
            let all = (o.workers * o.slots) as u64;
            slots.push(tokio::spawn(slot(
                c.clone(),
                id.clone(),
                held.clone(),
                sh.clone(),
                Duration::from_millis(o.hold_ms),
                Duration::from_millis(o.hold_ms * n / all.max(1)),
            )));
        }
    }

    // The gRPC ceiling of this machine: the same connections and as many
    // callers, each calling the health service (an empty answer, no
    // scheduler state) in a loop; what a lease round trip can at best be.
    let (ceiling, ceiling_p99) = grpc_ceiling(&chans, o.slots, Duration::from_secs(5)).await;
    eprintln!(
        "labyear: empty round trips (health checks): {ceiling:.0}/s, p99 {ceiling_p99:.1} ms"
    );

    // Jobs: submitted through the API, `backlog` jobs ahead of the
    // finished tasks (a year's jobs arrive over the year).
    let t_start = Instant::now();
    let submitter = {
        let sh = sh.clone();
        let image = image.clone();
        let jobs = JobsClient::new(jobs_ch.clone());
        let (n, tpj, cases, backlog) = (o.jobs, o.tasks_per_job, o.cases, o.backlog);
        tokio::spawn(async move {
            // Up to SUBMITTERS submissions in flight: one at a time, the
            // submitter (a round trip and a plan per job) held the slots
            // back rather than the scheduler's leasing.
            const SUBMITTERS: usize = 8;
            let mut ids = vec![String::new(); n as usize];
            let mut submit_us: Vec<u32> = Vec::with_capacity(n as usize);
            let mut inflight = tokio::task::JoinSet::new();
            // A finished submission: its job id, in submission order, and
            // its latency.
            let mut take = |(k, id, us): (u64, String, u32)| {
                ids[k as usize] = id;
                submit_us.push(us);
            };
            for i in 0..n {
                while i.saturating_sub(sh.done.load(Ordering::Relaxed) / tpj) >= backlog {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                if inflight.len() >= SUBMITTERS
                    && let Some(r) = inflight.join_next().await
                {
                    take(r??);
                }
                let spec = job_spec(&image, &format!("LY-{:03}", i % cases), i % 10 == 9);
                let mut jobs = jobs.clone();
                inflight.spawn(async move {
                    let t = Instant::now();
                    let r = jobs
                        .submit_job(v1::SubmitJobRequest { spec: Some(spec) })
                        .await
                        .with_context(|| format!("submitting job {i}"))?;
                    anyhow::Ok((i, r.into_inner().job_id, t.elapsed().as_micros() as u32))
                });
            }
            while let Some(r) = inflight.join_next().await {
                take(r??);
            }
            anyhow::Ok((ids, submit_us))
        })
    };

    // Progress on stderr.
    let progress = {
        let sh = sh.clone();
        tokio::spawn(async move {
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            while !sh.stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let d = sh.done.load(Ordering::Relaxed);
                eprintln!(
                    "labyear: {d} of {} tasks done ({:.0}/s over the last 10 s)",
                    sh.total,
                    (d - last) as f64 / 10.0
                );
                last = d;
            }
        })
    };

    let (ids, mut submit_us) = submitter.await??;
    while sh.done.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leasing_s = t_start.elapsed().as_secs_f64();
    sh.stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u32> = Vec::with_capacity(total as usize);
    for s in slots {
        lat.extend(s.await?);
    }
    for b in beats {
        b.abort();
    }
    progress.abort();
    lat.sort_unstable();
    submit_us.sort_unstable();
    let steady_s =
        (sh.t90.load(Ordering::Relaxed) as f64 - sh.t10.load(Ordering::Relaxed) as f64) / 1e6;
    let steady_rate = if steady_s > 0.0 {
        (total * 8 / 10) as f64 / steady_s
    } else {
        0.0
    };

    // Every job completed (merged) before the store is measured.
    let mut jobs = JobsClient::new(jobs_ch.clone());
    let t_merge = Instant::now();
    for id in &ids {
        loop {
            let j = jobs
                .get_job(v1::GetJobRequest { job_id: id.clone() })
                .await?
                .into_inner();
            if j.state == v1::JobState::Completed as i32 {
                break;
            }
            ensure!(
                j.state == v1::JobState::Running as i32 || j.state == v1::JobState::Queued as i32,
                "job {id} ended {:?}: {}",
                j.state,
                j.error
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let all_completed_s = leasing_s + t_merge.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_run, hwm_run) = rss_kb(sched.0.id());
    let store_run = disk_bytes(&data);

    // Sample jobs' results, to compare after the archive.
    let samples: Vec<String> = [0, ids.len() / 2, ids.len() - 1]
        .iter()
        .map(|&i| ids[i].clone())
        .collect();
    let mut before = Vec::new();
    for j in &samples {
        before.push(results_digest(&mut jobs, j).await?);
    }
    // A job left queued, for the lease after each restart.
    let probe = jobs
        .submit_job(v1::SubmitJobRequest {
            spec: Some(job_spec(&image, "LY-probe", false)),
        })
        .await?
        .into_inner()
        .job_id;
    crate::wait_planned(&mut jobs, &probe).await?;
    drop(jobs);
    drop(jobs_ch);

    // Restart (kill -9) with every task finished in the store.
    let (serving1, lease1, sched) =
        restart(Some(sched), trawl, &data, &config, &image, &addr).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_restarted, _) = rss_kb(sched.0.id());

    // Archive, scheduler stopped.
    drop(sched);
    let t = Instant::now();
    let out = Command::new(trawl)
        .args(["scheduler", "archive", "--data"])
        .arg(&data)
        .args(["--older-than", "0s"])
        .env("TRAWL_LOG", "error")
        .output()?;
    ensure!(
        out.status.success(),
        "trawl scheduler archive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive_s = t.elapsed().as_secs_f64();
    let store_archived = disk_bytes(&data);
    let sled_archived = disk_bytes(&data.join("state.sled"));
    let (serving2, lease2, sched) = restart(None, trawl, &data, &config, &image, &addr).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_archived, _) = rss_kb(sched.0.id());
    let mut jobs = JobsClient::new(connect(&format!("http://{addr}")).await?);
    let mut identical = true;
    for (j, b) in samples.iter().zip(&before) {
        let a = results_digest(&mut jobs, j).await?;
        identical &= a == *b;
    }
    drop(sched);

    let rts = lat.len() as u64;
    println!(
        "{} jobs × {} tasks = {total} tasks through one `trawl scheduler` (uninitialised, loopback), {} simulated workers × {} slots over real gRPC (one connection per worker; each slot holds its task {} ms, then reports it done and leases the next in the same call; heartbeats every 2 s); jobs submitted through the Jobs API {} ahead of the finished work, {} cases, every tenth job high priority; {cores} cores shared by the scheduler and the simulated workers.\n",
        o.jobs, o.tasks_per_job, o.workers, o.slots, o.hold_ms, o.backlog, o.cases
    );
    println!("| measure | target | measured |\n|---|---|---|");
    println!(
        "| lease round trips per second (all {total} tasks, submit to last report) | ≥ 20,000 | {:.0} ({rts} in {leasing_s:.1} s) |",
        rts as f64 / leasing_s
    );
    println!(
        "| lease round trips per second (10% to 90% of the tasks) | ≥ 20,000 | {steady_rate:.0} |"
    );
    println!(
        "| empty round trips per second (health checks, same connections and callers, 5 s before the jobs); p99 | | {ceiling:.0}; {ceiling_p99:.1} ms |"
    );
    println!(
        "| lease round-trip latency p50 / p99 / max (client side) | p99 ≤ 20 ms | {:.1} / {:.1} / {:.1} ms |",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    println!(
        "| job submission latency p50 / p99 | | {:.1} / {:.1} ms |",
        pct(&submit_us, 0.5),
        pct(&submit_us, 0.99)
    );
    println!(
        "| every job completed (merged) | | {all_completed_s:.1} s after the first submission |"
    );
    println!(
        "| scheduler RSS with {total} finished tasks in the store (VmRSS / VmHWM of the run) | ≤ 1 GiB | {} / {} |",
        mib_kb(rss_run),
        mib_kb(hwm_run)
    );
    println!(
        "| restart to serving (kill -9; health SERVING / first task leased) | ≤ 10 s | {serving1:.2} s / {lease1:.2} s |"
    );
    println!(
        "| scheduler RSS after the restart | ≤ 1 GiB | {} |",
        mib_kb(rss_restarted)
    );
    println!("| data directory after the run | | {} |", gib(store_run));
    println!(
        "| `trawl scheduler archive --older-than 0s` | | {archive_s:.1} s; data directory {} (state database {}) |",
        gib(store_archived),
        gib(sled_archived)
    );
    println!(
        "| restart after the archive (SERVING / first task leased); RSS | ≤ 10 s | {serving2:.2} s / {lease2:.2} s; {} |",
        mib_kb(rss_archived)
    );
    println!(
        "| results of jobs {} before and after the archive | identical | {} |",
        samples.join(", "),
        if identical { "identical" } else { "DIFFERENT" }
    );
    println!(
        "| client-side call errors (retried) | | {} |",
        sh.errors.load(Ordering::Relaxed)
    );
    println!(
        "| LeaseTasks calls (a slot without a task) / of which empty (waited up to 1 s) | | {} / {} |",
        sh.lease_calls.load(Ordering::Relaxed),
        sh.lease_empty.load(Ordering::Relaxed)
    );
    if !o.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    ensure!(identical, "results changed across the archive");
    Ok(())
}
