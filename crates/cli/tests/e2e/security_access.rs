//! Issue 17, findings 1, 2, 5 and 7: the attacks of an investigator token
//! and of a worker certificate against a real initialised scheduler on a
//! loopback port, each refused (and audited where the README says so).

use crate::cluster::walk;
use crate::common::*;
use crate::security::{
    Secure, audit_actions, random_file, start_secure_with, upload_bytes, wait_final,
};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tonic::Code;
use trawl_cli::Client;
use trawl_proto::connect::ConnectOptions;
use trawl_proto::v1;

fn spec(case: &str, paths: &[&Path], analyses: &[v1::Analysis], shard: u64) -> v1::JobSpec {
    v1::JobSpec {
        case_id: case.into(),
        evidence: Some(v1::EvidenceLocator {
            source: Some(v1::evidence_locator::Source::Paths(v1::PathList {
                paths: paths.iter().map(|p| p.display().to_string()).collect(),
            })),
        }),
        analyses: analyses.iter().map(|a| *a as i32).collect(),
        shard_size: shard,
        evidence_name: "img.dd".into(),
        ..Default::default()
    }
}

async fn submit(c: &Client, spec: v1::JobSpec) -> Result<String, tonic::Status> {
    c.jobs
        .clone()
        .submit_job(v1::SubmitJobRequest { spec: Some(spec) })
        .await
        .map(|r| r.into_inner().job_id)
}

fn worker_client(s: &Secure, name: &str) -> Client {
    Client::connect(&ConnectOptions {
        identity: Some((
            s.data().join(format!("enroll/{name}/cert.pem")),
            s.data().join(format!("enroll/{name}/key.pem")),
        )),
        ..s.opts(None)
    })
    .expect("worker client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_paths_are_confined_to_the_evidence_roots() {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("evidence");
    let case_root = top.path().join("case-a-only");
    let outside = top.path().join("outside");
    for d in [&root, &case_root, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    let root_s = root.display().to_string();
    let case_arg = format!("A={}", case_root.display());
    let s = start_secure_with(
        &[
            "--evidence-root",
            &root_s,
            "--case-evidence-root",
            &case_arg,
        ],
        &["--evidence-root", &root_s],
    );
    let inv = s.add_user("ivy", "investigator", &["A"], "1d");
    let ivy = s.client(Some(&inv));
    let bob_token = s.add_user("bob", "investigator", &["B"], "1d");
    let bob = s.client(Some(&bob_token));
    let admin = s.client(Some(&s.admin_token));

    let good = root.join("img.dd");
    random_file(&good, 1 << 20, 1);
    random_file(&case_root.join("a.dd"), 1 << 20, 2);
    random_file(&outside.join("secret.dd"), 1 << 20, 3);
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd.dd")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.dd"), root.join("secret.dd")).unwrap();
    std::os::unix::fs::symlink(s.data().join("auth/ca.key"), root.join("ca.dd")).unwrap();

    // A legitimate upload by case B: its store path is not a server path.
    let blob = vec![9u8; 100_000];
    let digest = blake3::hash(&blob).to_hex().to_string();
    upload_bytes(&bob, "B", "b.dd", blob)
        .await
        .expect("case B uploads");
    let store_path = walk(&s.data().join("evidence"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&digest))
        .expect("the upload in the store");

    let hash = [v1::Analysis::Hash];
    let attacks: Vec<(&str, std::path::PathBuf)> = vec![
        (
            "a worker's private key",
            s.data().join("enroll/worker-1/key.pem"),
        ),
        ("the CA key", s.data().join("auth/ca.key")),
        ("the registry", s.data().join("auth/registry.json")),
        ("/etc/passwd", "/etc/passwd".into()),
        ("a symlink in a root to /etc/passwd", root.join("passwd.dd")),
        (
            "a symlink in a root to a file outside",
            root.join("secret.dd"),
        ),
        ("a symlink in a root to the CA key", root.join("ca.dd")),
        ("'..' out of a root", root.join("../outside/secret.dd")),
        (
            "another case's upload by its store path",
            store_path.clone(),
        ),
        ("a file outside every root", outside.join("secret.dd")),
    ];
    for (what, path) in &attacks {
        let r = submit(&ivy, spec("A", &[path], &hash, 0)).await;
        let e = r.expect_err(what);
        assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
        // Even the admin cannot reach them.
        let e = submit(&admin, spec("A", &[path], &hash, 0))
            .await
            .expect_err(what);
        assert_eq!(e.code(), Code::PermissionDenied, "{what} (admin): {e:?}");
    }
    let refusals = audit_actions(&s)
        .await
        .into_iter()
        .filter(|e| e.action == "denied" && e.detail.contains("evidence path"))
        .count();
    assert_eq!(refusals, attacks.len() * 2, "every refused path audited");

    // A per-case root is open to its case only.
    let a = case_root.join("a.dd");
    let e = submit(&bob, spec("B", &[&a], &hash, 0)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let job = submit(&ivy, spec("A", &[&a], &hash, 0))
        .await
        .expect("own case root");
    let j = wait_final(&ivy, &job).await;
    assert_eq!(
        trawl_proto::convert::job_state_name(j.state),
        "completed",
        "{j:?}"
    );

    // What is under the root works as before, through the real worker.
    let job = submit(&ivy, spec("A", &[&good], &hash, 0))
        .await
        .expect("good path");
    let j = wait_final(&ivy, &job).await;
    assert_eq!(
        trawl_proto::convert::job_state_name(j.state),
        "completed",
        "{j:?}"
    );
    println!(
        "evidence roots: {} attacks refused and audited, per-case root and a good path accepted",
        attacks.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_evidence_roots_only_uploads_are_accepted() {
    let s = start_secure_with(&["--no-default-roots"], &["--no-worker"]);
    let inv = s.add_user("ivy", "investigator", &["A"], "1d");
    let ivy = s.client(Some(&inv));
    let img = s.dir.path().join("img.dd");
    random_file(&img, 1 << 20, 4);
    let e = submit(&ivy, spec("A", &[&img], &[v1::Analysis::Hash], 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("--evidence-root"), "{}", e.message());
}

/// Leases one task of `job`, as `worker_id`, with the certificate of
/// worker-1 (`w`).
async fn lease_one(w: &Client, worker_id: &str) -> Option<v1::Task> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = w
            .cluster
            .clone()
            .lease_tasks(v1::LeaseTasksRequest {
                worker_id: worker_id.into(),
                max_tasks: 1,
                wait_ms: 500,
            })
            .await
            .expect("lease")
            .into_inner();
        if let Some(t) = r.tasks.into_iter().next() {
            return Some(t);
        }
        if Instant::now() > deadline {
            return None;
        }
    }
}

async fn read(w: &Client, job: &str, offset: u64, length: u64) -> Result<usize, tonic::Status> {
    let mut s = w
        .evidence
        .clone()
        .read_range(v1::ReadRangeRequest {
            job_id: job.into(),
            offset,
            length,
        })
        .await?
        .into_inner();
    let mut n = 0;
    while let Some(c) = s.next().await {
        n += c?.data.len();
    }
    Ok(n)
}

async fn report(
    w: &Client,
    worker_id: &str,
    task: &str,
    token: &str,
    result: v1::TaskResult,
) -> Result<bool, tonic::Status> {
    w.cluster
        .clone()
        .report_task(v1::ReportTaskRequest {
            worker_id: worker_id.into(),
            task_id: task.into(),
            attempt: 1,
            outcome: Some(v1::report_task_request::Outcome::Result(result)),
            lease_next: 0,
            lease_token: token.into(),
        })
        .await
        .map(|r| r.into_inner().accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_certificate_reads_and_reports_only_its_current_leases() {
    let s = start_secure_with(&["--lease-ms", "1500"], &["--no-worker"]);
    run_ok(&[
        "scheduler",
        "worker",
        "enroll",
        "node2",
        "--data",
        s.data().to_str().unwrap(),
    ]);
    let inv = s.add_user("bob", "investigator", &["B"], "1d");
    let bob = s.client(Some(&inv));
    let img = s.dir.path().join("img.dd");
    random_file(&img, 8 << 20, 5);
    // Features only: shard tasks, no whole-image step.
    let job = submit(&bob, spec("B", &[&img], &[v1::Analysis::Features], 1 << 20))
        .await
        .expect("submit");

    let w = worker_client(&s, "worker-1");
    // The identity is the certificate: worker-1 cannot act as node2.
    let reg = |id: &str| v1::RegisterRequest {
        worker: Some(v1::WorkerInfo {
            worker_id: id.into(),
            hostname: "attacker".into(),
            slots: 1,
            protocol: trawl_proto::PROTOCOL_VERSION as i32,
            ..Default::default()
        }),
    };
    let e = w.cluster.clone().register(reg("node2")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let id = w
        .cluster
        .clone()
        .register(reg(""))
        .await
        .expect("register")
        .into_inner()
        .worker_id;
    assert!(id.starts_with("worker-1@"), "{id}");
    let e = w
        .cluster
        .clone()
        .lease_tasks(v1::LeaseTasksRequest {
            worker_id: "node2".into(),
            max_tasks: 1,
            wait_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // Without a lease: no byte of the case's evidence.
    let e = read(&w, &job, 0, 4096).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // A task never leased cannot be reported. (The job is planned in the
    // background: wait for its tasks.)
    let t0 = std::time::Instant::now();
    let tasks = loop {
        let tasks = bob
            .jobs
            .clone()
            .list_tasks(v1::ListTasksRequest {
                job_id: job.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .tasks;
        if !tasks.is_empty() {
            break tasks;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "the job was never planned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let never = tasks.last().unwrap().task_id.clone();
    let forged = |task: &str| v1::TaskResult {
        task_id: task.into(),
        ..Default::default()
    };
    let e = report(&w, &id, &never, "", forged(&never))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // With a lease: its range and no other.
    let t = lease_one(&w, &id).await.expect("a task");
    let shard = t.shard.expect("a shard task");
    assert!(!t.lease_token.is_empty());
    assert_eq!(
        read(&w, &job, shard.start, shard.end - shard.start)
            .await
            .expect("own shard"),
        (shard.end - shard.start) as usize
    );
    let far = if shard.start >= 4 << 20 { 0 } else { 7 << 20 };
    let e = read(&w, &job, far, 4096).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "bytes at {far}: {e:?}");

    // Reports: the lease's token, and a result of the right shape.
    let e = report(
        &w,
        &id,
        &t.task_id,
        "0123456789abcdef0123456789abcdef",
        forged(&t.task_id),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "wrong token: {e:?}");
    // A malformed result is refused and its attempt fails (the task goes
    // back to the queue: the lease and its token are gone).
    let mut refused = 0;
    for what in [
        "a scanner name leaving the report folder",
        "an absolute scanner name",
        "a feature outside the shard",
        "a carved type leaving the report folder",
    ] {
        let t = lease_one(&w, &id).await.expect("a task");
        let shard = t.shard.expect("a shard task");
        let far = if shard.start >= 4 << 20 { 0 } else { 7 << 20 };
        let mut r = forged(&t.task_id);
        let feature = |scanner: &str, offset: u64| v1::Feature {
            scanner: scanner.into(),
            offset,
            path: offset.to_string(),
            feature: b"x@example.com".to_vec(),
            context: Vec::new(),
            utf16: false,
        };
        match what {
            "a scanner name leaving the report folder" => {
                r.features.push(feature("../../../../tmp/y", shard.start))
            }
            "an absolute scanner name" => r.features.push(feature("/tmp/x", shard.start)),
            "a feature outside the shard" => r.features.push(feature("email", far)),
            _ => r.carved.push(v1::CarvedFile {
                offset: shard.start,
                length: 10,
                file_type: "../x".into(),
                extension: "jpg".into(),
                ..Default::default()
            }),
        }
        let e = report(&w, &id, &t.task_id, &t.lease_token, r)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        // The lease is gone: refused, or ignored once the task was
        // quarantined after its last attempt; never taken.
        let again = report(&w, &id, &t.task_id, &t.lease_token, forged(&t.task_id)).await;
        assert!(
            matches!(&again, Err(e) if e.code() == Code::PermissionDenied)
                || matches!(again, Ok(false)),
            "{what}: the lease is gone: {again:?}"
        );
        refused += 1;
    }
    let tasks = bob
        .jobs
        .clone()
        .list_tasks(v1::ListTasksRequest {
            job_id: job.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    let errors: usize = tasks
        .iter()
        .map(|t| t.errors.iter().filter(|e| e.contains("refused")).count())
        .sum();
    assert_eq!(
        errors, refused,
        "each refused result is a failed attempt: {tasks:?}"
    );
    let t = lease_one(&w, &id).await.expect("a task");
    assert!(
        report(&w, &id, &t.task_id, &t.lease_token, forged(&t.task_id))
            .await
            .expect("the holder's report"),
        "accepted"
    );

    // A lease token is useless once the lease expired (no heartbeat).
    let t2 = lease_one(&w, &id).await.expect("a second task");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = report(&w, &id, &t2.task_id, &t2.lease_token, forged(&t2.task_id))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "expired lease: {e:?}");
    let e = read(&w, &job, 0, 4096).await.unwrap_err();
    assert_eq!(
        e.code(),
        Code::PermissionDenied,
        "expired lease read: {e:?}"
    );

    // Every refusal of the worker is in the audit trail.
    let denied: Vec<_> = audit_actions(&s)
        .await
        .into_iter()
        .filter(|e| e.action == "denied" && e.actor == "worker-1")
        .collect();
    assert!(denied.len() >= 9, "{denied:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_fields_task_floods_and_quotas_are_refused() {
    let s = start_secure_with(
        &[
            "--max-tasks-per-job",
            "100",
            "--max-queued-bytes-per-user",
            "12MiB",
        ],
        &["--no-worker"],
    );
    let inv = s.add_user("ivy", "investigator", &["A"], "1d");
    let ivy = s.client(Some(&inv));
    let before = audit_actions(&s).await.len();
    let huge = "A".repeat(8 << 20);
    for _ in 0..5 {
        let e = ivy
            .jobs
            .clone()
            .list_jobs(v1::ListJobsRequest {
                case_id: huge.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.code());
    }
    let after = audit_actions(&s).await;
    assert!(
        after.len() - before <= 5 && after.iter().all(|e| e.case_id.len() <= 128),
        "the huge case id was not stored"
    );

    let img = s.dir.path().join("big.dd");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(256 << 20).unwrap();
    let hash = [v1::Analysis::Hash];
    // Below the scheduler's minimum shard size.
    let e = submit(&ivy, spec("A", &[&img], &hash, 1 << 10))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("minimum"), "{}", e.message());
    // More tasks than the per-job cap.
    let e = submit(&ivy, spec("A", &[&img], &hash, 1 << 20))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("limit of 100"), "{}", e.message());
    // The per-user quota on queued bytes (no worker: jobs stay queued).
    let small = s.dir.path().join("small.dd");
    random_file(&small, 8 << 20, 6);
    submit(&ivy, spec("A", &[&small], &hash, 0))
        .await
        .expect("first job fits");
    // Wait until it is planned (its size counts from then).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = submit(&ivy, spec("A", &[&small], &hash, 0)).await;
        match e {
            Err(e) if e.code() == Code::ResourceExhausted => {
                assert!(e.message().contains("limit"), "{}", e.message());
                break;
            }
            Ok(id) => {
                // Planned after this one was accepted: cancel and retry.
                ivy.jobs
                    .clone()
                    .cancel_job(v1::CancelJobRequest {
                        job_id: id,
                        reason: String::new(),
                    })
                    .await
                    .unwrap();
            }
            Err(e) => panic!("{e:?}"),
        }
        assert!(Instant::now() < deadline, "quota never enforced");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesser_findings_other_cases_revocation_reflection() {
    let s = start_secure_with(&[], &["--no-worker"]);
    let ivy_t = s.add_user("ivy", "investigator", &["A"], "1d");
    let bob_t = s.add_user("bob", "investigator", &["B"], "1d");
    let ivy = s.client(Some(&ivy_t));
    let bob = s.client(Some(&bob_t));
    let img = s.dir.path().join("img.dd");
    random_file(&img, 1 << 20, 8);

    // UploadStatus does not answer for another case's upload.
    let blob = vec![5u8; 300_000];
    let digest = blake3::hash(&blob).to_hex().to_string();
    let msgs = vec![
        v1::UploadChunk {
            part: Some(v1::upload_chunk::Part::Header(v1::UploadHeader {
                blake3: digest.clone(),
                size: blob.len() as u64,
                name: "b.dd".into(),
                offset: 0,
                case_id: "B".into(),
            })),
        },
        v1::UploadChunk {
            part: Some(v1::upload_chunk::Part::Data(blob[..100_000].to_vec())),
        },
    ];
    let _ = bob
        .evidence
        .clone()
        .upload_evidence(tokio_stream::iter(msgs))
        .await;
    let status = |c: &Client, case: &str| {
        let c = c.clone();
        let req = v1::UploadStatusRequest {
            blake3: digest.clone(),
            case_id: case.into(),
        };
        async move { c.evidence.clone().upload_status(req).await }
    };
    let own = status(&bob, "B").await.unwrap().into_inner();
    assert_eq!(own.received, 100_000, "{own:?}");
    let e = status(&ivy, "B").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let theirs = status(&ivy, "A").await.unwrap().into_inner();
    assert_eq!((theirs.received, theirs.complete), (0, false), "{theirs:?}");

    // Another case's job answers exactly as a job that does not exist.
    let job = submit(&bob, spec("B", &[&img], &[v1::Analysis::Hash], 0))
        .await
        .unwrap();
    let other = ivy
        .jobs
        .clone()
        .get_job(v1::GetJobRequest {
            job_id: job.clone(),
        })
        .await
        .unwrap_err();
    let missing = ivy
        .jobs
        .clone()
        .get_job(v1::GetJobRequest {
            job_id: "J999999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), missing.code());
    assert_eq!(
        other.message().replace(&job, "ID"),
        missing.message().replace("J999999", "ID")
    );
    assert!(!other.message().contains("\"B\""), "{}", other.message());

    // Reflection needs credentials.
    let channel = s.opts(None).channel().unwrap();
    let mut refl =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let e = refl
        .server_reflection_info(tokio_stream::iter(vec![req.clone()]))
        .await
        .err()
        .map(|e| e.code());
    let e = match e {
        Some(c) => c,
        None => Code::Ok,
    };
    assert_eq!(e, Code::Unauthenticated, "reflection without a token");

    // A revoked token closes its open watch stream within seconds.
    let mut watch = bob
        .jobs
        .clone()
        .watch_job(v1::WatchJobRequest {
            job_id: job.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    watch.next().await.expect("first event").expect("ok");
    run_ok(&[
        "scheduler",
        "user",
        "revoke",
        "bob",
        "--data",
        s.data().to_str().unwrap(),
    ]);
    let revoked = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match watch.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(e.code()),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream of a revoked token stays open");
    assert_eq!(ended, Some(Code::Unauthenticated));
    println!(
        "watch stream closed {:.1} s after the revocation",
        revoked.elapsed().as_secs_f64()
    );
}

#[test]
fn a_revoked_token_ends_its_dashboard_event_stream() {
    if !crate::security_report::curl_present() {
        return;
    }
    let s = start_secure_with(&["--http", "127.0.0.1:0"], &["--no-worker"]);
    let http = s.sched.http.clone().expect("the dashboard address");
    let bob_t = s.add_user("bob", "investigator", &["B"], "1d");
    let img = s.dir.path().join("img.dd");
    random_file(&img, 1 << 20, 9);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let bob = s.client(Some(&bob_t));
    // No worker: the job stays queued and its event stream stays open.
    let job = rt
        .block_on(submit(&bob, spec("B", &[&img], &[v1::Analysis::Hash], 0)))
        .unwrap();
    let jar = s.dir.path().join("jar");
    crate::security_report::web_sign_in(&http, &s.ca(), &bob_t, &jar);
    let mut curl = std::process::Command::new("curl")
        .args(["-sS", "-N", "--max-time", "60", "--cacert"])
        .arg(s.ca())
        .args(["-b", jar.to_str().unwrap()])
        .arg(format!("https://{http}/jobs/{job}/events"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    let mut out = std::io::BufReader::new(curl.stdout.take().unwrap());
    let mut line = String::new();
    // The stream is live: a first event.
    while !line.starts_with("data:") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "the stream ended before its first event"
        );
    }
    run_ok(&[
        "scheduler",
        "user",
        "revoke",
        "bob",
        "--data",
        s.data().to_str().unwrap(),
    ]);
    let revoked = Instant::now();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = curl.wait().unwrap();
    let took = revoked.elapsed();
    assert!(status.success(), "curl: {status:?} (60 s timeout reached?)");
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
    println!(
        "dashboard event stream closed {:.1} s after the revocation",
        took.as_secs_f64()
    );
}
