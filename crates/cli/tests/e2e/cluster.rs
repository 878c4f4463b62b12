//! Issue: the cluster. Real scheduler and worker processes on loopback
//! ports: kill -9 of a worker and of the scheduler mid-job, lost heartbeats,
//! priority and fair share, identical results across worker counts and shard
//! sizes, bad input.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status();
    }
}

/// A scheduler process.
pub struct Sched {
    pub proc: Proc,
    pub url: String,
    pub addr: String,
    /// The dashboard's address, when started with `--http`.
    #[allow(dead_code)] // read by the dashboard test
    pub http: Option<String>,
}

/// Starts `trawl scheduler` on `listen` (port 0 for any) and waits until it
/// prints its address.
pub fn start_scheduler(data: &Path, listen: &str, extra: &[&str]) -> Sched {
    let mut child = trawl()
        .args([
            "scheduler",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            listen,
        ])
        .args(default_roots(extra))
        .args(extra.iter().filter(|a| **a != "--no-default-roots"))
        .env("TRAWL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn scheduler");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut http = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("trawl-scheduler dashboard on https://") {
                http = Some(a.trim().to_string());
            }
            if let Some(a) = line.strip_prefix("trawl-scheduler listening on ") {
                let _ = tx.send((a.trim().to_string(), http.clone()));
            }
        }
    });
    let (addr, http) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("scheduler did not start");
    Sched {
        proc: Proc(child),
        url: format!("http://{addr}"),
        addr,
        http,
    }
}

/// The evidence roots of test schedulers and workers when the test gives
/// none: the temporary folder the fixtures are written to (the data
/// directories there are refused by the scheduler all the same) and the
/// shared corpora.
pub fn default_roots(extra: &[&str]) -> Vec<String> {
    if extra.contains(&"--evidence-root") || extra.contains(&"--no-default-roots") {
        return Vec::new();
    }
    let mut v = vec![
        "--evidence-root".to_string(),
        std::env::temp_dir().display().to_string(),
    ];
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora");
    if corpora.is_dir() {
        v.push("--evidence-root".into());
        v.push(corpora.display().to_string());
    }
    v
}

/// Starts `trawl worker`.
pub fn start_worker(url: &str, id: &str, slots: u32, delay_ms: u64) -> Proc {
    Proc(
        trawl()
            .args([
                "worker",
                "--scheduler",
                url,
                "--worker-id",
                id,
                "--slots",
                &slots.to_string(),
                "--threads",
                "2",
            ])
            .args(default_roots(&[]))
            .args([
                "--fault-delay-ms",
                &delay_ms.to_string(),
                "--drain-seconds",
                "1",
            ])
            .env("TRAWL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker"),
    )
}

/// `trawl submit`, returning the job id (its last stdout line).
pub fn submit(url: &str, image: &Path, case: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "submit",
        image.to_str().unwrap(),
        "--server",
        url,
        "--case",
        case,
    ];
    args.extend_from_slice(extra);
    let out = run_ok(&args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// `trawl status --json --tasks`, retrying while the scheduler is away.
pub fn status(url: &str, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(&["status", job, "--server", url, "--json", "--tasks"]);
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "status of {job}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls the status until `pred` holds.
pub fn wait_for(
    url: &str,
    job: &str,
    what: &str,
    secs: u64,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status(url, job);
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn done(s: &Value) -> bool {
    matches!(
        s["state"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Every file of a report directory but report.json, plus report.json's
/// hashes and counts: what must be identical between runs.
pub fn fingerprint(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "report.json" {
                m.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let r = report(dir);
    m.insert(
        "report.json#hashes".into(),
        r["hashes"]["md5"].to_string().into_bytes(),
    );
    for k in ["md5", "sha1", "sha256", "blake3"] {
        m.insert(
            format!("report.json#{k}"),
            r["hashes"][k].to_string().into_bytes(),
        );
    }
    m.insert(
        "report.json#counts".into(),
        r["counts"].to_string().into_bytes(),
    );
    m
}

/// Asserts two fingerprints are equal, naming the files that differ.
pub fn assert_same(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let keys: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| match (got.get(k), want.get(k)) {
            (Some(a), Some(b)) => format!(
                "{k}: {:?} vs {:?}",
                String::from_utf8_lossy(&a[..a.len().min(300)]),
                String::from_utf8_lossy(&b[..b.len().min(300)])
            ),
            (a, _) => format!("{k}: only in {}", if a.is_some() { "got" } else { "want" }),
        })
        .collect();
    assert!(differ.is_empty(), "{what} differ:\n{}", differ.join("\n"));
}

/// `trawl results` into a new directory.
pub fn results(url: &str, job: &str, out: &Path) {
    run_ok(&[
        "results",
        job,
        "--server",
        url,
        "--out",
        out.to_str().unwrap(),
    ]);
}

/// The reference: an undisturbed embedded scan of the same image.
fn reference(image: &Path, extra: &[&str]) -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "scan",
        image.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    let f = fingerprint(dir.path());
    (dir, f)
}

const SPEC: &[&str] = &[
    "--analyses",
    "hash",
    "--shard-size",
    "256KiB",
    "--piecewise-window",
    "64KiB",
    "--piecewise-md5",
];

#[test]
fn worker_killed_mid_job_results_identical() {
    let fx = small_fixture();
    let (_r, want) = reference(&fx.image, SPEC);
    let data = tempfile::tempdir().unwrap();
    let s = start_scheduler(
        data.path(),
        "127.0.0.1:0",
        &["--lease-ms", "1500", "--heartbeat-ms", "200"],
    );
    let mut a = start_worker(&s.url, "wa", 2, 150);
    let _b = start_worker(&s.url, "wb", 2, 150);
    let job = submit(&s.url, &fx.image, "case-kill", SPEC);
    wait_for(&s.url, &job, "some progress", 60, |s| {
        s["progress"]["tasks_done"].as_u64().unwrap_or(0) >= 4
    });
    a.kill9();
    let st = wait_for(&s.url, &job, "completion", 120, done);
    assert_eq!(st["state"], "completed", "{st}");
    // Tasks of the killed worker ran again elsewhere.
    let tasks = st["tasks"].as_array().unwrap();
    assert!(tasks.iter().all(|t| t["state"] == "done"), "{st}");
    assert!(
        tasks
            .iter()
            .any(|t| t["errors"].to_string().contains("lease expired") && t["worker"] == "wb"),
        "no task of the killed worker was rerun: {st}"
    );
    let out = tempfile::tempdir().unwrap();
    results(&s.url, &job, out.path());
    assert_same(&fingerprint(out.path()), &want, "results");
}

#[test]
fn scheduler_killed_and_restarted_results_identical() {
    let fx = small_fixture();
    let (_r, want) = reference(&fx.image, SPEC);
    let data = tempfile::tempdir().unwrap();
    let mut s = start_scheduler(
        data.path(),
        "127.0.0.1:0",
        &["--lease-ms", "3000", "--heartbeat-ms", "200"],
    );
    let addr = s.addr.clone();
    let url = s.url.clone();
    let _a = start_worker(&url, "wa", 2, 100);
    let _b = start_worker(&url, "wb", 2, 100);
    let job = submit(&url, &fx.image, "case-restart", SPEC);
    wait_for(&url, &job, "some progress", 60, |s| {
        s["progress"]["tasks_done"].as_u64().unwrap_or(0) >= 5
    });
    s.proc.kill9();
    std::thread::sleep(Duration::from_millis(300));
    // Same data directory, same address: the workers reconnect by themselves.
    let s2 = start_scheduler(
        data.path(),
        &addr,
        &["--lease-ms", "3000", "--heartbeat-ms", "200"],
    );
    let st = wait_for(&s2.url, &job, "completion after restart", 120, done);
    assert_eq!(st["state"], "completed", "{st}");
    let out = tempfile::tempdir().unwrap();
    results(&s2.url, &job, out.path());
    assert_same(
        &fingerprint(out.path()),
        &want,
        "results after a scheduler restart",
    );
    // Nothing lost or duplicated: one piecewise line per window.
    let csv = std::fs::read_to_string(out.path().join("hashes/piecewise.csv")).unwrap();
    assert_eq!(csv.lines().count() - 1, (8 << 20) / (64 << 10));

    // A completed job's counts are its report's, and stay so across a
    // restart (not rebuilt as sums over its shards).
    let job2 = submit(
        &s2.url,
        &fx.image,
        "case-restart",
        &["--analyses", "features,carve", "--shard-size", "256KiB"],
    );
    let st = wait_for(&s2.url, &job2, "completion", 120, done);
    let out2 = tempfile::tempdir().unwrap();
    results(&s2.url, &job2, out2.path());
    let want = crate::dashboard_counts::report_findings(&report(out2.path()));
    assert!(
        want.contains_key("carved") && want.contains_key("email"),
        "{want:?}"
    );
    let shown = |st: &Value| -> BTreeMap<String, u64> {
        assert_eq!(st["progress"]["findings_final"], Value::Bool(true), "{st}");
        serde_json::from_value(st["progress"]["findings"].clone()).unwrap()
    };
    assert_eq!(shown(&st), want);
    let mut s2 = s2;
    s2.proc.kill9();
    std::thread::sleep(Duration::from_millis(300));
    let s3 = start_scheduler(data.path(), &addr, &[]);
    let st = status(&s3.url, &job2);
    assert_eq!(shown(&st), want, "after a restart");
}

#[test]
fn worker_without_heartbeats_loses_its_lease() {
    let fx = small_fixture();
    let data = tempfile::tempdir().unwrap();
    let s = start_scheduler(
        data.path(),
        "127.0.0.1:0",
        &["--lease-ms", "800", "--heartbeat-ms", "100"],
    );
    // The frozen worker takes a task, then stops (SIGSTOP: no heartbeats).
    let frozen = start_worker(&s.url, "frozen", 1, 3000);
    let job = submit(
        &s.url,
        &fx.image,
        "case-hb",
        &[
            "--analyses",
            "hash",
            "--shard-size",
            "4MiB",
            "--no-stream-hash",
        ],
    );
    let st = wait_for(&s.url, &job, "a lease by the frozen worker", 60, |s| {
        s["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["state"] == "leased" && t["worker"] == "frozen")
    });
    let held: Vec<String> = st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["worker"] == "frozen")
        .map(|t| t["task_id"].as_str().unwrap().to_string())
        .collect();
    frozen.signal("-STOP");
    let _healthy = start_worker(&s.url, "healthy", 2, 0);
    let st = wait_for(&s.url, &job, "completion", 60, done);
    frozen.signal("-CONT");
    assert_eq!(st["state"], "completed", "{st}");
    for t in st["tasks"].as_array().unwrap() {
        if held.contains(&t["task_id"].as_str().unwrap().to_string()) {
            assert_eq!(t["worker"], "healthy", "{t}");
            assert!(t["attempts"].as_u64().unwrap() >= 2, "{t}");
            assert!(t["errors"].to_string().contains("lease expired"), "{t}");
        }
    }
}

#[test]
fn priority_then_fair_share_order() {
    let fx = small_fixture();
    let data = tempfile::tempdir().unwrap();
    let s = start_scheduler(
        data.path(),
        "127.0.0.1:0",
        &["--lease-ms", "5000", "--heartbeat-ms", "200"],
    );
    // 20 jobs from 4 cases, submitted before any worker exists.
    // case-a: 8 normal jobs (the big case); case-b: 4 normal; case-c: 4 high;
    // case-d: 2 urgent, 2 low.
    let spec = |p: &str| {
        vec![
            "--analyses",
            "hash",
            "--shard-size",
            "2MiB",
            "--no-stream-hash",
            "--priority",
            p,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let mut jobs: Vec<(String, &str, &str)> = Vec::new();
    let plan: Vec<(&str, &str, usize)> = vec![
        ("case-a", "normal", 8),
        ("case-b", "normal", 4),
        ("case-c", "high", 4),
        ("case-d", "urgent", 2),
        ("case-d", "low", 2),
    ];
    for (case, prio, n) in &plan {
        for _ in 0..*n {
            let sp = spec(prio);
            let sp: Vec<&str> = sp.iter().map(String::as_str).collect();
            jobs.push((submit(&s.url, &fx.image, case, &sp), case, prio));
        }
    }
    assert_eq!(jobs.len(), 20);
    // Wait until every job is planned, then start 3 workers.
    for (j, _, _) in &jobs {
        wait_for(&s.url, j, "planning", 60, |s| {
            s["progress"]["tasks_total"].as_u64().unwrap_or(0) > 0
        });
    }
    let _w: Vec<Proc> = (0..3)
        .map(|i| start_worker(&s.url, &format!("w{i}"), 1, 30))
        .collect();
    let mut leases: Vec<(u64, &str, &str)> = Vec::new();
    for (j, case, prio) in &jobs {
        let st = wait_for(&s.url, j, "completion", 180, done);
        assert_eq!(st["state"], "completed", "{st}");
        for t in st["tasks"].as_array().unwrap() {
            leases.push((t["first_lease_seq"].as_u64().unwrap(), case, prio));
        }
    }
    leases.sort();
    let rank = |p: &str| match p {
        "urgent" => 3,
        "high" => 2,
        "normal" => 1,
        _ => 0,
    };
    // Priority: every task of a higher class was leased before any task of a
    // lower class (all were queued before the first lease).
    for w in leases.windows(2) {
        assert!(
            rank(w[0].2) >= rank(w[1].2),
            "priority order broken at {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    // Fair share within the normal class: case-b (4 jobs) is not starved by
    // case-a (8 jobs): while both have queued tasks, their lease counts stay
    // within the number of workers of each other.
    let normal: Vec<&str> = leases
        .iter()
        .filter(|l| l.2 == "normal")
        .map(|l| l.1)
        .collect();
    let total_b = normal.iter().filter(|c| **c == "case-b").count();
    let (mut na, mut nb) = (0usize, 0usize);
    for c in &normal {
        if *c == "case-a" {
            na += 1
        } else {
            nb += 1
        }
        if nb < total_b {
            assert!(
                na.abs_diff(nb) <= 3,
                "fair share broken: case-a {na} vs case-b {nb} leases: {normal:?}"
            );
        }
    }
}

#[test]
fn identical_results_across_worker_counts_and_shard_sizes() {
    let fx = small_fixture();
    let mut prints = Vec::new();
    for (workers, shard) in [(1usize, "1MiB"), (3, "1MiB"), (1, "64MiB"), (3, "64MiB")] {
        let data = tempfile::tempdir().unwrap();
        let s = start_scheduler(data.path(), "127.0.0.1:0", &[]);
        let _w: Vec<Proc> = (0..workers)
            .map(|i| start_worker(&s.url, &format!("w{i}"), 2, 0))
            .collect();
        let job = submit(
            &s.url,
            &fx.image,
            "case-x",
            &[
                "--analyses",
                "hash",
                "--shard-size",
                shard,
                "--piecewise-md5",
            ],
        );
        let st = wait_for(&s.url, &job, "completion", 120, done);
        assert_eq!(st["state"], "completed");
        let out = tempfile::tempdir().unwrap();
        results(&s.url, &job, out.path());
        prints.push(((workers, shard), fingerprint(out.path())));
    }
    for p in &prints[1..] {
        assert_eq!(p.1, prints[0].1, "{:?} differs from {:?}", p.0, prints[0].0);
    }
}

/// Bad input through the wire: jobs fail fast with the reason in status;
/// malformed requests are refused with the right code; a forged upload is
/// rejected and nothing is stored.
#[test]
fn bad_input_over_grpc() {
    use trawl_proto::v1;
    let data = tempfile::tempdir().unwrap();
    let s = start_scheduler(data.path(), "127.0.0.1:0", &[]);
    let _w = start_worker(&s.url, "w0", 1, 0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let client = trawl_cli::Client::new(&s.url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec_for = |path: &str| {
        let spec = trawl_core::JobSpec::new(
            trawl_core::CaseId::new("case-bad").unwrap(),
            trawl_core::spec::EvidenceRef::Paths(vec![path.to_string()]),
            trawl_core::AnalysisSet::parse("hash").unwrap(),
        );
        v1::JobSpec::from(&spec)
    };
    let submit = |spec: v1::JobSpec| {
        rt.block_on(
            client
                .jobs
                .clone()
                .submit_job(v1::SubmitJobRequest { spec: Some(spec) }),
        )
    };
    // A missing file is refused at submission (its path cannot be resolved
    // under the evidence roots), naming it.
    let missing = dir.path().join("missing.dd");
    let e = submit(spec_for(missing.to_str().unwrap())).unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("missing.dd") && e.message().contains("not found"),
        "{e:?}"
    );
    // Unknown format, truncated E01: the job fails, status says why.
    let qcow = dir.path().join("vm.qcow2");
    std::fs::write(&qcow, b"QFI\xfb\0\0\0\x03xxxxxxxx").unwrap();
    let e01 = dir.path().join("cut.E01");
    std::fs::write(&e01, b"EVF\x09\x0d\x0a\xff\x00\x01\x01\x00\x00\x00header\0").unwrap();
    for (path, needle) in [(&qcow, "QCOW"), (&e01, "cut.E01")] {
        let id = submit(spec_for(path.to_str().unwrap()))
            .unwrap()
            .into_inner()
            .job_id;
        let st = wait_for(&s.url, &id, "failure", 30, done);
        assert_eq!(st["state"], "failed", "{st}");
        assert!(st["error"].as_str().unwrap().contains(needle), "{st}");
    }
    // Relative paths and '..' are refused at submission.
    let e = submit(spec_for("relative/disk.dd")).unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    // Malformed requests.
    let mut bad = spec_for("/x.dd");
    bad.case_id = String::new();
    assert_eq!(
        submit(bad).unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let mut bad = spec_for("/x.dd");
    bad.shard_size = u64::MAX; // a "negative" size from a careless client
    assert_eq!(
        submit(bad).unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let mut bad = spec_for("/x.dd");
    bad.analyses = vec![42];
    assert_eq!(
        submit(bad).unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        submit(v1::JobSpec::default()).unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    let mut huge = spec_for("/x.dd");
    huge.description = "x".repeat(80 << 20);
    let code = submit(huge).unwrap_err().code();
    assert!(
        matches!(
            code,
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange | tonic::Code::InvalidArgument
        ),
        "{code:?}"
    );
    let get = |id: &str| {
        rt.block_on(
            client
                .jobs
                .clone()
                .get_job(v1::GetJobRequest { job_id: id.into() }),
        )
    };
    assert_eq!(get("").unwrap_err().code(), tonic::Code::InvalidArgument);
    assert_eq!(get("J999999").unwrap_err().code(), tonic::Code::NotFound);
    let cancel = rt.block_on(client.jobs.clone().cancel_job(v1::CancelJobRequest {
        job_id: "nope".into(),
        reason: String::new(),
    }));
    assert_eq!(cancel.unwrap_err().code(), tonic::Code::NotFound);
    let mut cl = client.cluster.clone();
    let r = rt.block_on(cl.report_task(v1::ReportTaskRequest {
        worker_id: "w0".into(),
        task_id: "J1:s000001".into(),
        attempt: 1,
        outcome: None,
        lease_next: 0,
        lease_token: String::new(),
    }));
    assert_eq!(r.unwrap_err().code(), tonic::Code::InvalidArgument);
    let r = rt.block_on(cl.lease_tasks(v1::LeaseTasksRequest {
        worker_id: String::new(),
        max_tasks: 1,
        wait_ms: 0,
    }));
    assert_eq!(r.unwrap_err().code(), tonic::Code::InvalidArgument);
    let r = rt.block_on(cl.lease_tasks(v1::LeaseTasksRequest {
        worker_id: "ghost".into(),
        max_tasks: 1,
        wait_ms: 0,
    }));
    assert_eq!(r.unwrap_err().code(), tonic::Code::FailedPrecondition);
    // An upload whose content does not match its declared BLAKE3.
    let content = vec![7u8; 100_000];
    let declared = blake3::hash(b"something else").to_hex().to_string();
    let chunks = vec![
        v1::UploadChunk {
            part: Some(v1::upload_chunk::Part::Header(v1::UploadHeader {
                blake3: declared.clone(),
                size: content.len() as u64,
                name: "../../etc/passwd".into(),
                offset: 0,
                case_id: "case-bad".into(),
            })),
        },
        v1::UploadChunk {
            part: Some(v1::upload_chunk::Part::Data(content.clone())),
        },
    ];
    let r = rt.block_on(
        client
            .evidence
            .clone()
            .upload_evidence(tokio_stream::iter(chunks)),
    );
    assert_eq!(r.unwrap_err().code(), tonic::Code::InvalidArgument);
    let st = rt
        .block_on(
            client
                .evidence
                .clone()
                .upload_status(v1::UploadStatusRequest {
                    blake3: declared.clone(),
                    case_id: "case-bad".into(),
                }),
        )
        .unwrap()
        .into_inner();
    assert!(
        !st.complete && st.received == 0,
        "nothing may be stored: {st:?}"
    );
    let stored: Vec<PathBuf> = walk(&data.path().join("evidence"));
    assert!(
        stored
            .iter()
            .all(|p| std::fs::metadata(p).unwrap().len() == 0
                || !p.starts_with(data.path().join("evidence/partial"))),
        "{stored:?}"
    );
    assert!(
        !stored
            .iter()
            .any(|p| p.file_name().unwrap().to_string_lossy() == declared),
        "{stored:?}"
    );
    // A genuine upload is stored read-only, deduplicated on a second upload,
    // and a job on it gets the same hashes as the file.
    let digest = rt
        .block_on(crate::cluster::upload_bytes(&client, &content))
        .unwrap();
    assert_eq!(digest, blake3::hash(&content).to_hex().to_string());
    let p = data.path().join("evidence").join(&digest);
    assert!(std::fs::metadata(&p).unwrap().permissions().readonly());
}

pub fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

pub async fn upload_bytes(
    client: &trawl_cli::Client,
    content: &[u8],
) -> Result<String, tonic::Status> {
    use trawl_proto::v1;
    let digest = blake3::hash(content).to_hex().to_string();
    let chunks = vec![
        v1::UploadChunk {
            part: Some(v1::upload_chunk::Part::Header(v1::UploadHeader {
                blake3: digest.clone(),
                size: content.len() as u64,
                name: "ok.raw".into(),
                offset: 0,
                case_id: "c".into(),
            })),
        },
        v1::UploadChunk {
            part: Some(v1::upload_chunk::Part::Data(content.to_vec())),
        },
    ];
    let r = client
        .evidence
        .clone()
        .upload_evidence(tokio_stream::iter(chunks))
        .await?
        .into_inner();
    Ok(r.digest)
}

#[test]
fn cancel_stops_running_tasks() {
    let fx = small_fixture();
    let data = tempfile::tempdir().unwrap();
    let s = start_scheduler(
        data.path(),
        "127.0.0.1:0",
        &["--lease-ms", "5000", "--heartbeat-ms", "100"],
    );
    let _w = start_worker(&s.url, "w0", 2, 60_000);
    let job = submit(
        &s.url,
        &fx.image,
        "case-cancel",
        &["--analyses", "hash", "--shard-size", "1MiB"],
    );
    wait_for(&s.url, &job, "running tasks", 30, |s| {
        s["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] == "leased")
            .count()
            == 2
    });
    let out = run_ok(&["cancel", &job, "--server", &s.url, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "cancelled");
    let st = status(&s.url, &job);
    assert!(
        st["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "cancelled"),
        "{st}"
    );
    // A new job runs at once on another worker: the cancelled tasks hold
    // nothing in the scheduler. (The slow worker is stopped first: its
    // injected delay is not cut short by the cancellation, and it would
    // sleep 60 s on any new task it leased.)
    drop(_w);
    let t0 = Instant::now();
    let _w2 = start_worker(&s.url, "w1", 1, 0);
    let job2 = submit(&s.url, &fx.image, "case-cancel", &["--analyses", "hash"]);
    let st2 = wait_for(&s.url, &job2, "second job", 30, done);
    assert_eq!(st2["state"], "completed");
    assert!(t0.elapsed() < Duration::from_secs(30));
    // `jobs` lists both, filtered by state.
    let o = run_ok(&["jobs", "--server", &s.url, "--json", "--state", "cancelled"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["job_id"], job.as_str());
    // `watch` of a finished job returns at once with its exit status.
    let o = run(&["watch", &job, "--server", &s.url]);
    assert_eq!(o.status.code(), Some(2), "watch of a cancelled job");
    let o = run(&["watch", &job2, "--server", &s.url, "--json"]);
    assert!(o.status.success());
    let last: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["state"], "completed");
}

#[test]
fn worker_without_the_shared_mount_reads_through_the_scheduler() {
    let fx = small_fixture();
    let (_r, want) = reference(&fx.image, SPEC);
    let data = tempfile::tempdir().unwrap();
    let s = start_scheduler(data.path(), "127.0.0.1:0", &[]);
    // Evidence roots that do not hold the image: every read goes over gRPC.
    let _w = Proc(
        trawl()
            .args([
                "worker",
                "--scheduler",
                &s.url,
                "--worker-id",
                "remote",
                "--evidence-root",
                "/nonexistent-mount",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let job = submit(&s.url, &fx.image, "case-remote", SPEC);
    let st = wait_for(&s.url, &job, "completion", 60, done);
    assert_eq!(st["state"], "completed", "{st}");
    let out = tempfile::tempdir().unwrap();
    results(&s.url, &job, out.path());
    assert_same(&fingerprint(out.path()), &want, "results");
}

#[test]
fn sigterm_drains_a_worker() {
    let fx = small_fixture();
    let data = tempfile::tempdir().unwrap();
    let s = start_scheduler(
        data.path(),
        "127.0.0.1:0",
        &["--lease-ms", "60000", "--heartbeat-ms", "100"],
    );
    // Tasks take 5 s; the drain grace is 1 s: leases are handed back, not
    // left to expire (the lease is a minute long).
    let w = start_worker(&s.url, "draining", 2, 5000);
    let job = submit(
        &s.url,
        &fx.image,
        "case-drain",
        &[
            "--analyses",
            "hash",
            "--shard-size",
            "4MiB",
            "--no-stream-hash",
        ],
    );
    wait_for(&s.url, &job, "leases", 30, |s| {
        s["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] == "leased")
            .count()
            == 2
    });
    w.signal("-TERM");
    wait_for(&s.url, &job, "released leases", 20, |s| {
        s["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "queued")
    });
    let _w2 = start_worker(&s.url, "fresh", 2, 0);
    let st = wait_for(&s.url, &job, "completion", 30, done);
    assert_eq!(st["state"], "completed");
    for t in st["tasks"].as_array().unwrap() {
        assert_eq!(t["worker"], "fresh");
        assert!(
            t["errors"].as_array().unwrap().is_empty(),
            "a handed-back lease is not a failure: {t}"
        );
    }
}

#[test]
fn health_reflection_and_toml_configuration() {
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("scheduler.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nlease_ms = 4321\nheartbeat_ms = 321\nmax_attempts = 5\n",
            data.path().join("state")
        ),
    )
    .unwrap();
    let mut child = trawl()
        .args([
            "scheduler",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _p = Proc(child);
    let url = format!("http://{}", line.trim().rsplit(' ').next().unwrap());
    assert!(
        data.path().join("state/state.sled").exists(),
        "data_dir from the TOML file"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
        for svc in ["", "trawl.v1.Jobs", "trawl.v1.Cluster", "trawl.v1.Evidence"] {
            let r = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: svc.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                r.status,
                tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
                "{svc}"
            );
        }
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut refl = ServerReflectionClient::new(ch.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = refl
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let resp = stream.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
            panic!("no service list")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for svc in [
            "trawl.v1.Jobs",
            "trawl.v1.Cluster",
            "trawl.v1.Evidence",
            "grpc.health.v1.Health",
        ] {
            assert!(names.iter().any(|n| n == svc), "{svc} not in {names:?}");
        }
        // The lease settings from the file reach registering workers.
        let mut cl = trawl_proto::v1::cluster_client::ClusterClient::new(ch);
        let r = cl
            .register(trawl_proto::v1::RegisterRequest {
                worker: Some(trawl_proto::v1::WorkerInfo {
                    worker_id: "probe".into(),
                    slots: 1,
                    protocol: 1,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.lease_ms, r.heartbeat_interval_ms), (4321, 321));
        // A worker of another protocol version is refused.
        let e = cl
            .register(trawl_proto::v1::RegisterRequest {
                worker: Some(trawl_proto::v1::WorkerInfo {
                    worker_id: "old".into(),
                    slots: 1,
                    protocol: 99,
                    ..Default::default()
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    });
    // Without TLS, a non-loopback address is refused.
    let o = run(&[
        "scheduler",
        "--data",
        data.path().join("x").to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("loopback"));
}

/// An embedded scan takes its merged results in memory from the scheduler
/// in its process; `trawl results` fetches them from a standing scheduler's
/// database over gRPC: with every analysis on, the two reports must be
/// identical, and both must describe the job as it ended (completed, with
/// its end time).
#[test]
fn embedded_scan_and_cluster_results_identical_with_every_analysis() {
    let fx = small_fixture();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rules/demo.yar");
    let spec = [
        "--analyses",
        "all",
        "--rules",
        rules.to_str().unwrap(),
        "--shard-size",
        "1MiB",
    ];
    let (embedded, want) = reference(&fx.image, &spec);
    let data = tempfile::tempdir().unwrap();
    let s = start_scheduler(data.path(), "127.0.0.1:0", &[]);
    let _w = start_worker(&s.url, "w0", 2, 0);
    let job = submit(&s.url, &fx.image, "case-all", &spec);
    let st = wait_for(&s.url, &job, "completion", 120, done);
    assert_eq!(st["state"], "completed", "{st}");
    let out = tempfile::tempdir().unwrap();
    results(&s.url, &job, out.path());
    let got = fingerprint(out.path());
    assert!(
        got.keys().any(|k| k.starts_with("carved/")) && got.contains_key("yara/matches.jsonl"),
        "the fixture gives carved files and YARA matches: {:?}",
        got.keys().collect::<Vec<_>>()
    );
    assert_same(&got, &want, "embedded and cluster reports");
    for dir in [embedded.path(), out.path()] {
        let r = report(dir);
        assert_eq!(r["state"], "completed", "{}", dir.display());
        let (started, finished) = (
            r["timings"]["started_at"].as_str().unwrap_or_default(),
            r["timings"]["finished_at"].as_str().unwrap_or_default(),
        );
        assert!(
            !started.is_empty() && finished >= started,
            "{}: {}",
            dir.display(),
            r["timings"]
        );
    }
}

/// Issue 23: ended jobs archived out of the hot store keep their results,
/// report and task list byte for byte; a running job is left alone; a
/// second archive moves nothing; the archive refuses a running scheduler's
/// data directory with the reason.
#[test]
fn archived_jobs_keep_identical_results() {
    let fx = small_fixture();
    let data = tempfile::tempdir().unwrap();
    let spec = ["--analyses", "features,carve", "--shard-size", "256KiB"];
    let mut s = start_scheduler(data.path(), "127.0.0.1:0", &[]);
    let addr = s.addr.clone();
    let w = start_worker(&s.url, "wa", 2, 0);
    let job = submit(&s.url, &fx.image, "case-archive", &spec);
    let st = wait_for(&s.url, &job, "completion", 120, done);
    assert_eq!(st["state"], "completed", "{st}");
    let before = tempfile::tempdir().unwrap();
    results(&s.url, &job, before.path());
    let tasks_before = st["tasks"].clone();
    assert!(
        tasks_before.as_array().is_some_and(|t| t.len() >= 8),
        "{st}"
    );
    drop(w);

    let dp = data.path().to_str().unwrap();
    let archive = |age: &'static str| ["scheduler", "archive", "--data", dp, "--older-than", age];
    // The running scheduler holds the database: refused, saying why.
    let o = run(&archive("0s"));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stop it first"), "{err}");

    s.proc.kill9();
    std::thread::sleep(Duration::from_millis(300));
    // Not old enough: nothing moves.
    let o = run_ok(&archive("1d"));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("archived 0 jobs"), "{said}");
    let o = run_ok(&archive("0s"));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("archived 1 jobs"), "{said}");
    let file = data
        .path()
        .join("archive")
        .join(format!("{job}.trawl-archive"));
    assert!(file.is_file(), "{} missing", file.display());
    let o = run_ok(&archive("0s"));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("archived 0 jobs") && said.contains("1 were archived already"),
        "{said}"
    );
    // The task records left the state database.
    {
        let store = trawl_store::Store::open(data.path()).unwrap();
        assert!(store.merged(&job).unwrap().is_some());
        assert!(store.is_archived(&job));
        assert_eq!(
            store.tasks_of(&job).unwrap().len(),
            tasks_before.as_array().unwrap().len()
        );
    }

    let s2 = start_scheduler(data.path(), &addr, &[]);
    let after = tempfile::tempdir().unwrap();
    results(&s2.url, &job, after.path());
    assert_same(
        &fingerprint(after.path()),
        &fingerprint(before.path()),
        "results after the archive",
    );
    let st = status(&s2.url, &job);
    assert_eq!(st["state"], "completed", "{st}");
    assert_eq!(st["tasks"], tasks_before, "task list after the archive");

    // A job submitted after the archive runs as ever.
    let _w = start_worker(&s2.url, "wb", 2, 0);
    let job2 = submit(&s2.url, &fx.image, "case-archive", &spec);
    let st = wait_for(&s2.url, &job2, "completion", 120, done);
    assert_eq!(st["state"], "completed", "{st}");
}
