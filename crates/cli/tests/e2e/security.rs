//! Issue: TLS, tokens and roles, the audit trail, resumable uploads.
//! A real scheduler initialised with `trawl-scheduler init` and a real
//! worker enrolled for mutual TLS, on loopback ports.

use crate::cluster::{Proc, Sched, default_roots, start_scheduler};
use crate::common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tonic::{Code, Status};
use trawl_cli::Client;
use trawl_proto::connect::ConnectOptions;
use trawl_proto::v1;

/// An initialised scheduler with one enrolled worker process.
pub struct Secure {
    pub dir: tempfile::TempDir,
    pub sched: Sched,
    pub _worker: Option<Proc>,
    pub admin_token: String,
}

impl Secure {
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn url(&self) -> String {
        format!("https://{}", self.sched.addr)
    }
    pub fn ca(&self) -> PathBuf {
        self.data().join("auth/ca.pem")
    }
    pub fn opts(&self, token: Option<&str>) -> ConnectOptions {
        ConnectOptions {
            url: self.url(),
            ca: Some(self.ca()),
            identity: None,
            token: token.map(String::from),
        }
    }
    pub fn client(&self, token: Option<&str>) -> Client {
        Client::connect(&self.opts(token)).expect("client")
    }
    /// `trawl-scheduler user add`, returning the token.
    pub fn add_user(&self, name: &str, role: &str, cases: &[&str], expires: &str) -> String {
        let data = self.data();
        let mut args = vec![
            "scheduler",
            "user",
            "add",
            name,
            "--role",
            role,
            "--expires",
            expires,
            "--data",
            data.to_str().unwrap(),
        ];
        for c in cases {
            args.extend(["--case", c]);
        }
        last_line(&run_ok(&args).stdout)
    }
    /// `trawl` client command line flags for `token`.
    #[allow(dead_code)]
    pub fn flags(&self, token: &str) -> Vec<String> {
        vec![
            "--server".into(),
            self.url(),
            "--ca".into(),
            self.ca().display().to_string(),
            "--token".into(),
            token.into(),
        ]
    }
}

/// `trawl ARGS` as the user of `token`: (exit code, stdout, stderr).
pub fn as_user(s: &Secure, token: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let o = trawl()
        .args(args)
        .args(s.flags(token))
        .output()
        .expect("running trawl");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn last_line(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Initialises a data directory, starts the scheduler (TLS) and worker-1.
fn start_secure(extra: &[&str]) -> Secure {
    start_secure_with(extra, &[])
}

/// As [`start_secure`], with extra worker arguments.
pub fn start_secure_with(extra: &[&str], worker_extra: &[&str]) -> Secure {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_ok(&[
        "scheduler",
        "init",
        "--data",
        data.to_str().unwrap(),
        "--admin",
        "chief",
    ]);
    let admin_token = last_line(&out.stdout);
    assert!(admin_token.starts_with("trawl_"), "{admin_token}");
    let sched = start_scheduler(&data, "127.0.0.1:0", extra);
    let worker = (!worker_extra.contains(&"--no-worker")).then(|| {
        Proc(
            trawl()
                .args([
                    "worker",
                    "--scheduler",
                    &format!("https://{}", sched.addr),
                    "--tls",
                    data.join("enroll/worker-1").to_str().unwrap(),
                    "--slots",
                    "2",
                    "--threads",
                    "2",
                    "--drain-seconds",
                    "1",
                ])
                .args(default_roots(worker_extra))
                .args(worker_extra)
                .env("TRAWL_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn worker"),
        )
    });
    Secure {
        dir,
        sched,
        _worker: worker,
        admin_token,
    }
}

pub fn random_file(path: &Path, len: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    std::fs::write(path, v).unwrap();
}

fn hash_spec(case: &str, image: &Path) -> v1::JobSpec {
    v1::JobSpec {
        case_id: case.into(),
        evidence: Some(v1::EvidenceLocator {
            source: Some(v1::evidence_locator::Source::Paths(v1::PathList {
                paths: vec![image.display().to_string()],
            })),
        }),
        analyses: vec![v1::Analysis::Hash as i32],
        evidence_name: "img.dd".into(),
        ..Default::default()
    }
}

pub async fn wait_final(c: &Client, job: &str) -> v1::Job {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = c.job(job).await.expect("get job");
        if trawl_cli::is_final(j.state) {
            return j;
        }
        assert!(Instant::now() < deadline, "job {job} did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Uploads `data` for `case` in one stream.
pub async fn upload_bytes(c: &Client, case: &str, name: &str, data: Vec<u8>) -> Result<(), Status> {
    let digest = blake3::hash(&data).to_hex().to_string();
    let msgs = vec![
        v1::UploadChunk {
            part: Some(v1::upload_chunk::Part::Header(v1::UploadHeader {
                blake3: digest,
                size: data.len() as u64,
                name: name.into(),
                offset: 0,
                case_id: case.into(),
            })),
        },
        v1::UploadChunk {
            part: Some(v1::upload_chunk::Part::Data(data)),
        },
    ];
    c.evidence
        .clone()
        .upload_evidence(tokio_stream::iter(msgs))
        .await
        .map(|_| ())
}

/// What the table needs of the running cluster.
struct Ctx {
    image: PathBuf,
    /// A finished task id and the worker id registered by the worker row.
    task: String,
    counter: AtomicU64,
}

/// Calls `rpc` as `c` on `case` (and `job`, a job of that case).
async fn call(
    rpc: &str,
    c: &Client,
    admin: &Client,
    case: &str,
    job: &str,
    ctx: &Ctx,
) -> Result<(), Status> {
    let n = ctx.counter.fetch_add(1, Ordering::Relaxed);
    let job_id = job.to_string();
    match rpc {
        "SubmitJob" => c
            .jobs
            .clone()
            .submit_job(v1::SubmitJobRequest {
                spec: Some(hash_spec(case, &ctx.image)),
            })
            .await
            .map(|_| ()),
        "GetJob" => c
            .jobs
            .clone()
            .get_job(v1::GetJobRequest { job_id })
            .await
            .map(|_| ()),
        "ListJobs" => {
            let r = c
                .jobs
                .clone()
                .list_jobs(v1::ListJobsRequest {
                    case_id: case.into(),
                    ..Default::default()
                })
                .await?;
            assert!(
                r.get_ref()
                    .jobs
                    .iter()
                    .all(|j| j.spec.as_ref().unwrap().case_id == case),
                "ListJobs returned jobs of other cases"
            );
            Ok(())
        }
        "WatchJob" => {
            let mut s = c
                .jobs
                .clone()
                .watch_job(v1::WatchJobRequest { job_id })
                .await?
                .into_inner();
            s.next().await.expect("an event").map(|_| ())
        }
        // The table's jobs have ended: an authorised caller is told there
        // is nothing to cancel (FAILED_PRECONDITION, after the access
        // check), an unauthorised one that the job is not found.
        "CancelJob" => match c
            .jobs
            .clone()
            .cancel_job(v1::CancelJobRequest {
                job_id,
                reason: "table".into(),
            })
            .await
        {
            Err(e)
                if e.code() == tonic::Code::FailedPrecondition
                    && e.message().contains("nothing to cancel") =>
            {
                Ok(())
            }
            r => r.map(|_| ()),
        },
        "GetResults" => {
            let mut s = c
                .jobs
                .clone()
                .get_results(v1::GetResultsRequest {
                    job_id,
                    page_size: 0,
                })
                .await?
                .into_inner();
            s.next().await.expect("a page").map(|_| ())
        }
        "ListTasks" => c
            .jobs
            .clone()
            .list_tasks(v1::ListTasksRequest { job_id })
            .await
            .map(|_| ()),
        "AddRuleSet" => c
            .rules
            .clone()
            .add_rule_set(v1::AddRuleSetRequest {
                name: format!("set{n}"),
                sources: vec![v1::RuleSource {
                    name: "a.yar".into(),
                    text: "rule a { strings: $a = \"abc\" condition: $a }".into(),
                }],
                strict: true,
            })
            .await
            .map(|_| ()),
        "ListRuleSets" => c
            .rules
            .clone()
            .list_rule_sets(v1::ListRuleSetsRequest {})
            .await
            .map(|_| ()),
        "GetRuleSet" => c
            .rules
            .clone()
            .get_rule_set(v1::GetRuleSetRequest {
                name: "base".into(),
            })
            .await
            .map(|_| ()),
        "Register" => c
            .cluster
            .clone()
            .register(v1::RegisterRequest {
                worker: Some(v1::WorkerInfo {
                    worker_id: "worker-1@table".into(),
                    hostname: "table".into(),
                    slots: 1,
                    protocol: trawl_proto::PROTOCOL_VERSION as i32,
                    ..Default::default()
                }),
            })
            .await
            .map(|_| ()),
        "Heartbeat" => c
            .cluster
            .clone()
            .heartbeat(v1::HeartbeatRequest {
                worker_id: "worker-1@table".into(),
                task_ids: vec![],
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "LeaseTasks" => c
            .cluster
            .clone()
            .lease_tasks(v1::LeaseTasksRequest {
                worker_id: "worker-1@table".into(),
                max_tasks: 0,
                wait_ms: 0,
            })
            .await
            .map(|_| ()),
        "ReportTask" => c
            .cluster
            .clone()
            .report_task(v1::ReportTaskRequest {
                worker_id: "worker-1@table".into(),
                task_id: ctx.task.clone(),
                attempt: 1,
                outcome: Some(v1::report_task_request::Outcome::Error("table".into())),
                lease_next: 0,
                lease_token: String::new(),
            })
            .await
            .map(|_| ()),
        "ReleaseTasks" => c
            .cluster
            .clone()
            .release_tasks(v1::ReleaseTasksRequest {
                worker_id: "worker-1@table".into(),
                task_ids: vec![],
            })
            .await
            .map(|_| ()),
        "ListWorkers" => c
            .cluster
            .clone()
            .list_workers(v1::ListWorkersRequest {})
            .await
            .map(|_| ()),
        "UploadEvidence" => {
            let data: Vec<u8> = format!("evidence {n} for {case}").repeat(1000).into_bytes();
            let digest = blake3::hash(&data).to_hex().to_string();
            let r = upload_bytes(c, case, "upload.dd", data).await;
            if r.is_err() {
                // Refused: nothing stored.
                let st = admin
                    .evidence
                    .clone()
                    .upload_status(v1::UploadStatusRequest {
                        blake3: digest,
                        case_id: case.into(),
                    })
                    .await
                    .expect("upload status")
                    .into_inner();
                assert_eq!(
                    (st.received, st.complete),
                    (0, false),
                    "refused upload stored bytes"
                );
            }
            r
        }
        "UploadStatus" => c
            .evidence
            .clone()
            .upload_status(v1::UploadStatusRequest {
                blake3: blake3::hash(b"nothing").to_hex().to_string(),
                case_id: case.into(),
            })
            .await
            .map(|_| ()),
        "ReadRange" => {
            let mut s = c
                .evidence
                .clone()
                .read_range(v1::ReadRangeRequest {
                    job_id,
                    offset: 0,
                    length: 4096,
                })
                .await?
                .into_inner();
            let chunk = s.next().await.expect("a chunk")?;
            assert_eq!(chunk.data.len(), 4096);
            Ok(())
        }
        "ListUsers" => c
            .admin
            .clone()
            .list_users(v1::ListUsersRequest {})
            .await
            .map(|_| ()),
        "AddUser" => c
            .admin
            .clone()
            .add_user(v1::AddUserRequest {
                name: format!("made{n}"),
                role: "case_officer".into(),
                cases: vec![case.into()],
                ttl_seconds: 60,
            })
            .await
            .map(|_| ()),
        "RevokeUser" => {
            let name = format!("victim{n}");
            admin
                .admin
                .clone()
                .add_user(v1::AddUserRequest {
                    name: name.clone(),
                    role: "investigator".into(),
                    cases: vec![case.into()],
                    ttl_seconds: 60,
                })
                .await
                .expect("admin adds a user");
            c.admin
                .clone()
                .revoke_user(v1::RevokeUserRequest { name })
                .await
                .map(|_| ())
        }
        "ListAudit" => c
            .admin
            .clone()
            .list_audit(v1::ListAuditRequest::default())
            .await
            .map(|_| ()),
        "VerifyAudit" => {
            let r = c
                .admin
                .clone()
                .verify_audit(v1::VerifyAuditRequest {})
                .await?;
            assert!(r.get_ref().ok, "audit chain broken: {:?}", r.get_ref());
            Ok(())
        }
        other => panic!("no call for {other}"),
    }
}

/// Expected access, per RPC: investigator own/other case, case officer
/// own/other, admin own/other, worker (certificate) own/other.
const TABLE: &[(&str, [bool; 8])] = &[
    (
        "SubmitJob",
        [true, false, false, false, true, true, false, false],
    ),
    (
        "GetJob",
        [true, false, true, false, true, true, false, false],
    ),
    (
        "ListJobs",
        [true, false, true, false, true, true, false, false],
    ),
    (
        "WatchJob",
        [true, false, true, false, true, true, false, false],
    ),
    (
        "ListTasks",
        [true, false, true, false, true, true, false, false],
    ),
    (
        "GetResults",
        [true, false, true, false, true, true, false, false],
    ),
    (
        "CancelJob",
        [true, false, false, false, true, true, false, false],
    ),
    (
        "AddRuleSet",
        [false, false, false, false, true, true, false, false],
    ),
    (
        "ListRuleSets",
        [true, true, true, true, true, true, true, true],
    ),
    (
        "GetRuleSet",
        [true, true, true, true, true, true, true, true],
    ),
    (
        "Register",
        [false, false, false, false, false, false, true, true],
    ),
    (
        "Heartbeat",
        [false, false, false, false, false, false, true, true],
    ),
    (
        "LeaseTasks",
        [false, false, false, false, false, false, true, true],
    ),
    (
        "ReportTask",
        [false, false, false, false, false, false, true, true],
    ),
    (
        "ReleaseTasks",
        [false, false, false, false, false, false, true, true],
    ),
    (
        "ListWorkers",
        [true, true, true, true, true, true, false, false],
    ),
    (
        "UploadEvidence",
        [true, false, false, false, true, true, false, false],
    ),
    (
        "UploadStatus",
        [true, false, false, false, true, true, false, false],
    ),
    // A worker reads only the ranges of the tasks it holds a lease on (none
    // here: see security_access.rs for the leased case).
    (
        "ReadRange",
        [true, false, true, false, true, true, false, false],
    ),
    (
        "ListUsers",
        [false, false, false, false, true, true, false, false],
    ),
    (
        "AddUser",
        [false, false, false, false, true, true, false, false],
    ),
    (
        "RevokeUser",
        [false, false, false, false, true, true, false, false],
    ),
    (
        "ListAudit",
        [false, false, false, false, true, true, false, false],
    ),
    (
        "VerifyAudit",
        [false, false, false, false, true, true, false, false],
    ),
];

pub async fn audit_actions(s: &Secure) -> Vec<v1::AuditEntry> {
    s.client(Some(&s.admin_token))
        .admin
        .clone()
        .list_audit(v1::ListAuditRequest {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .expect("list audit")
        .into_inner()
        .entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_is_checked_for_every_role_and_case() {
    let s = start_secure(&[]);
    let img = s.dir.path().join("img.dd");
    random_file(&img, 3 << 20, 7);
    let inv = s.add_user("ivy", "investigator", &["A"], "1d");
    let off = s.add_user("otto", "case_officer", &["A"], "1d");
    let admin = s.client(Some(&s.admin_token));

    // One finished job per case, a rule set, a finished task id.
    let mut jobs = std::collections::HashMap::new();
    for case in ["A", "B"] {
        let r = admin
            .jobs
            .clone()
            .submit_job(v1::SubmitJobRequest {
                spec: Some(hash_spec(case, &img)),
            })
            .await
            .expect("admin submits")
            .into_inner();
        let j = wait_final(&admin, &r.job_id).await;
        assert_eq!(
            trawl_proto::convert::job_state_name(j.state),
            "completed",
            "{j:?}"
        );
        jobs.insert(case, r.job_id);
    }
    admin
        .rules
        .clone()
        .add_rule_set(v1::AddRuleSetRequest {
            name: "base".into(),
            sources: vec![v1::RuleSource {
                name: "b.yar".into(),
                text: "rule b { strings: $b = \"xyz\" condition: $b }".into(),
            }],
            strict: true,
        })
        .await
        .expect("rule set");
    let task = admin
        .jobs
        .clone()
        .list_tasks(v1::ListTasksRequest {
            job_id: jobs["A"].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tasks[0]
        .task_id
        .clone();
    let ctx = Ctx {
        image: img.clone(),
        task,
        counter: AtomicU64::new(0),
    };

    let worker = Client::connect(&ConnectOptions {
        identity: Some((
            s.data().join("enroll/worker-1/cert.pem"),
            s.data().join("enroll/worker-1/key.pem"),
        )),
        ..s.opts(None)
    })
    .unwrap();
    let callers: [(&str, Client); 4] = [
        ("investigator", s.client(Some(&inv))),
        ("case_officer", s.client(Some(&off))),
        ("admin", admin.clone()),
        ("worker", worker),
    ];
    let denied_before = audit_actions(&s)
        .await
        .iter()
        .filter(|e| e.action == "denied")
        .count();
    let mut denied = 0;
    let mut checked = 0;
    let mut failures = Vec::new();
    for (rpc, expect) in TABLE {
        for (ci, (role, client)) in callers.iter().enumerate() {
            for (k, case) in ["A", "B"].iter().enumerate() {
                let allowed = expect[ci * 2 + k];
                let r = call(rpc, client, &admin, case, &jobs[case], &ctx).await;
                checked += 1;
                // Another case's job is answered as a job that does not
                // exist (the answer does not tell that it exists).
                let job_rpc = matches!(
                    *rpc,
                    "GetJob" | "WatchJob" | "ListTasks" | "GetResults" | "CancelJob"
                ) || (*rpc == "ReadRange" && *role != "worker");
                match (&r, allowed) {
                    (Ok(()), true) => {}
                    (Err(e), false) if e.code() == Code::PermissionDenied && !job_rpc => {
                        denied += 1
                    }
                    (Err(e), false) if e.code() == Code::NotFound && job_rpc => denied += 1,
                    _ => failures.push(format!(
                        "{rpc} as {role} on {} case: expected {}, got {:?}",
                        if k == 0 { "own" } else { "other" },
                        if allowed {
                            "success"
                        } else if job_rpc {
                            "NOT_FOUND"
                        } else {
                            "PERMISSION_DENIED"
                        },
                        r.map_err(|e| (e.code(), e.message().to_string()))
                    )),
                }
            }
        }
        // No credentials at all: UNAUTHENTICATED, whatever the call.
        let anon = s.client(None);
        let r = call(rpc, &anon, &admin, "A", &jobs["A"], &ctx).await;
        checked += 1;
        if r.as_ref().map_err(|e| e.code()).err() != Some(Code::Unauthenticated) {
            failures.push(format!(
                "{rpc} without a token: {:?}",
                r.map_err(|e| e.code())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, TABLE.len() * 9);
    println!("access table: {checked} calls checked ({denied} refused as expected)");

    // Every refusal left an audit entry naming who, what and from where.
    let audit = audit_actions(&s).await;
    let denials: Vec<_> = audit.iter().filter(|e| e.action == "denied").collect();
    assert_eq!(
        denials.len() - denied_before,
        denied,
        "one audit entry per refusal"
    );
    assert!(
        denials
            .iter()
            .all(|e| !e.actor.is_empty() && e.from.starts_with("127.0.0.1:"))
    );
    let refused = audit.iter().filter(|e| e.action == "auth.refused").count();
    assert!(
        refused >= TABLE.len(),
        "unauthenticated calls audited: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_bad_uploads_are_refused_and_audited() {
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "max_upload_bytes = 1048576\n").unwrap();
    let s = start_secure(&["--config", cfg.path().to_str().unwrap()]);
    let admin = s.client(Some(&s.admin_token));
    let old = s.add_user("old", "investigator", &["A"], "1s");
    let gone = s.add_user("gone", "investigator", &["A"], "1d");
    run_ok(&[
        "scheduler",
        "user",
        "revoke",
        "gone",
        "--data",
        s.data().to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(1100));
    let list = |c: Client| async move {
        c.jobs
            .clone()
            .list_jobs(v1::ListJobsRequest::default())
            .await
            .map(|_| ())
    };
    for (what, token) in [
        ("expired", old.as_str()),
        ("revoked", gone.as_str()),
        ("wrong", "trawl_0000"),
    ] {
        let e = list(s.client(Some(token))).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{what} token: {e:?}");
        if what != "wrong" {
            assert!(e.message().contains(what), "{what}: {}", e.message());
        }
    }
    // The command line says so in one line, exit 1.
    let mut args = vec!["jobs".to_string()];
    args.extend(s.flags(&gone));
    let out = trawl().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not authenticated") && err.contains("revoked"),
        "{err}"
    );

    // A client without TLS, and a worker whose certificate another CA
    // signed, never get a gRPC answer.
    let plain = Client::new(&format!("http://{}", s.sched.addr)).unwrap();
    let e = list(plain).await.unwrap_err();
    assert!(refused_at_transport(e.code()), "{e:?}");
    let other = tempfile::tempdir().unwrap();
    run_ok(&[
        "scheduler",
        "init",
        "--data",
        other.path().to_str().unwrap(),
    ]);
    let rogue = Client::connect(&ConnectOptions {
        identity: Some((
            other.path().join("enroll/worker-1/cert.pem"),
            other.path().join("enroll/worker-1/key.pem"),
        )),
        ..s.opts(None)
    })
    .unwrap();
    let e = rogue
        .cluster
        .clone()
        .lease_tasks(v1::LeaseTasksRequest {
            worker_id: "rogue".into(),
            max_tasks: 1,
            wait_ms: 0,
        })
        .await
        .unwrap_err();
    assert!(refused_at_transport(e.code()), "{e:?}");

    // Path traversal in the uploaded name; an oversized upload.
    let e = upload_bytes(&admin, "A", "../../etc/passwd", b"x".repeat(1000))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let big = vec![7u8; 2 << 20];
    let big_digest = blake3::hash(&big).to_hex().to_string();
    let e = upload_bytes(&admin, "A", "big.dd", big).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    for d in [
        blake3::hash(&b"x".repeat(1000)).to_hex().to_string(),
        big_digest,
    ] {
        let st = admin
            .evidence
            .clone()
            .upload_status(v1::UploadStatusRequest {
                blake3: d,
                case_id: "A".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((st.received, st.complete), (0, false), "nothing stored");
    }
    let audit = audit_actions(&s).await;
    let refused: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "auth.refused")
        .map(|e| e.detail.as_str())
        .collect();
    for what in ["expired", "revoked", "unknown token", "TLS handshake"] {
        assert!(
            refused.iter().any(|d| d.contains(what)),
            "no audit entry for {what}: {refused:?}"
        );
    }
    let rejected = audit
        .iter()
        .filter(|e| e.action == "evidence.upload.rejected")
        .count();
    assert_eq!(rejected, 2, "traversal and oversized uploads audited");
    // The registry changes made with `trawl-scheduler user` were audited too.
    assert!(
        audit
            .iter()
            .any(|e| e.action == "user.revoke" && e.target == "gone")
    );

    // An uninitialised scheduler refuses any address but loopback.
    let d = tempfile::tempdir().unwrap();
    let out = run(&[
        "scheduler",
        "--data",
        d.path().to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve plaintext"), "{err}");
}

/// A call that never reached a handler: the TLS layer refused the
/// connection (how the client sees the closed connection varies).
fn refused_at_transport(c: Code) -> bool {
    matches!(
        c,
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
    )
}

/// A TCP proxy that cuts its first connection after `cut` bytes from the
/// client, and passes later connections whole; counts bytes per connection.
struct CutProxy {
    addr: String,
    sent: Arc<std::sync::Mutex<Vec<u64>>>,
}

fn cut_proxy(upstream: String, cut: u64) -> CutProxy {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sent2 = sent.clone();
    let conns = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(client) = c else { break };
            let Ok(server) = TcpStream::connect(&upstream) else {
                break;
            };
            let i = conns.fetch_add(1, Ordering::SeqCst);
            let limit = if i == 0 { cut } else { u64::MAX };
            let idx = {
                let mut s = sent2.lock().unwrap();
                s.push(0);
                s.len() - 1
            };
            let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_r, mut c_w) = (server, client);
            let sent3 = sent2.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                let mut total = 0u64;
                loop {
                    let n = match c_r.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let n = n.min((limit - total) as usize);
                    if s_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    total += n as u64;
                    sent3.lock().unwrap()[idx] = total;
                    if total >= limit {
                        break;
                    }
                }
                let _ = c_r.shutdown(std::net::Shutdown::Both);
                let _ = s_w.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_r, &mut c_w);
                let _ = c_w.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    CutProxy { addr, sent }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_halfway_resumes_to_the_same_digest() {
    let s = start_secure(&[]);
    let inv = s.add_user("ivy", "investigator", &["A"], "1d");
    let img = s.dir.path().join("field.dd");
    let size = 24u64 << 20;
    random_file(&img, size as usize, 11);
    let want = b3sum(&img);
    let proxy = cut_proxy(s.sched.addr.clone(), size / 2);
    let out = trawl()
        .args([
            "submit",
            img.to_str().unwrap(),
            "--upload",
            "--case",
            "A",
            "--analyses",
            "hash",
        ])
        .args(["--server", &format!("https://{}", proxy.addr)])
        .args(["--ca", s.ca().to_str().unwrap(), "--token", &inv])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = last_line(&out.stdout);
    let sent = proxy.sent.lock().unwrap().clone();
    assert!(sent.len() >= 2, "the cut connection was reopened: {sent:?}");
    assert_eq!(sent[0], size / 2, "the first connection was cut halfway");
    let after: u64 = sent[1..].iter().sum();
    assert!(
        after < size - size / 4,
        "the upload resumed instead of starting over: {after} bytes after the cut ({sent:?})"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&want),
        "the client reports the verified digest: {err}"
    );

    // `trawl watch` follows it to the end; the evidence digest is the file's.
    let mut args = vec!["watch".to_string(), job.clone()];
    args.extend(s.flags(&inv));
    let w = trawl().args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&w.stdout);
    assert!(
        w.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&w.stderr)
    );
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains("completed") && last.contains("100.0%"),
        "{text}"
    );
    let mut args = vec!["status".to_string(), job.clone(), "--json".to_string()];
    args.extend(s.flags(&inv));
    let st: serde_json::Value =
        serde_json::from_slice(&trawl().args(&args).output().unwrap().stdout).unwrap();
    assert_eq!(st["state"], "completed");
    let out_dir = s.dir.path().join("report");
    let mut args = vec![
        "results".to_string(),
        job.clone(),
        "--out".into(),
        out_dir.display().to_string(),
    ];
    args.extend(s.flags(&inv));
    assert!(trawl().args(&args).status().unwrap().success());
    let r = report(&out_dir);
    assert_eq!(r["hashes"]["blake3"], want.as_str());
    assert_eq!(r["evidence"]["upload_blake3"], want.as_str());
    assert_eq!(r["custody"]["received"]["blake3"], want.as_str());
    assert_eq!(r["custody"]["received"]["uploaded_by"], "ivy");
    assert!(r["custody"]["received"]["verified_at"].is_string());
    assert!(r["custody"]["verification"]["computed_at"].is_string());
    let audit = audit_actions(&s).await;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "evidence.upload" && e.target == want)
            .count(),
        1,
        "one completed upload"
    );
}

#[test]
fn audit_verify_finds_the_altered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let img = dir.path().join("img.dd");
    random_file(&img, 1 << 20, 3);
    {
        let sched = start_scheduler(&data, "127.0.0.1:0", &[]);
        let _w = crate::cluster::start_worker(&sched.url, "w1", 2, 0);
        for case in ["A", "B", "C"] {
            let job = crate::cluster::submit(&sched.url, &img, case, &["--analyses", "hash"]);
            run_ok(&["watch", &job, "--server", &sched.url]);
            let out = dir.path().join(format!("r-{case}"));
            run_ok(&[
                "results",
                &job,
                "--server",
                &sched.url,
                "--out",
                out.to_str().unwrap(),
            ]);
        }
        sched.proc.signal("-TERM");
        let mut p = sched.proc;
        let t0 = Instant::now();
        while p.0.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let d = data.to_str().unwrap();
    let out = run_ok(&["audit", "verify", "--data", d]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("intact: 6 entries"), "{text}");
    let listed = run_ok(&["audit", "list", "--data", d, "--json"]);
    let entries: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 6);
    assert_eq!(entries[2]["action"], "job.submit");
    assert_eq!(entries[2]["case_id"], "B");

    // Alter entry 3 (the submission of case B becomes case Z), as someone
    // editing the database would.
    let key = 3u64.to_be_bytes();
    let original = {
        let db = sled::open(data.join("state.sled")).unwrap();
        let t = db.open_tree("audit").unwrap();
        let v = t.get(key).unwrap().unwrap();
        let mut e: serde_json::Value = serde_json::from_slice(&v).unwrap();
        e["case_id"] = "Z".into();
        t.insert(key, serde_json::to_vec(&e).unwrap()).unwrap();
        db.flush().unwrap();
        v
    };
    let out = run(&["audit", "verify", "--data", d]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BROKEN at entry 3") && err.contains("altered"),
        "{err}"
    );

    // Put it back, then remove entry 5 instead.
    {
        let db = sled::open(data.join("state.sled")).unwrap();
        let t = db.open_tree("audit").unwrap();
        t.insert(key, original).unwrap();
        t.remove(5u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let out = run(&["audit", "verify", "--data", d]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BROKEN at entry 5"), "{err}");
}
