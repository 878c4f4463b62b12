//! Issue 23: the scheduler's Prometheus metrics, scraped after a real job
//! and parsed by the reference OpenMetrics parser (PyPI prometheus-client).

use crate::cluster::{Proc, start_worker, submit};
use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn scrape(addr: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    (head.to_string(), body.to_string())
}

/// Parses an OpenMetrics text with the reference parser (PyPI
/// prometheus-client): family name to {type, samples}. `None` (skipped)
/// when the parser is not installed.
fn parse_openmetrics(body: &str, test: &str) -> Option<serde_json::Value> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools-venv/bin/python");
    let ok = py.is_file()
        && std::process::Command::new(&py)
            .args(["-c", "import prometheus_client.openmetrics.parser"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        trawl_fixtures::skip(test, "prometheus-client (scripts/setup.sh installs it)");
        return None;
    }
    let script = r#"
import sys, json
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
"#;
    let mut p = std::process::Command::new(&py)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "parser: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(serde_json::from_slice(&o.stdout).unwrap())
}

/// The value of `sample{key=val}` of family `name` (`key` empty: the first).
fn sample(fam: &serde_json::Value, name: &str, sample: &str, key: &str, val: &str) -> f64 {
    fam[name]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} missing"))
        .iter()
        .find(|s| s[0] == sample && (key.is_empty() || s[1][key] == val))
        .and_then(|s| s[2].as_f64())
        .unwrap_or_else(|| panic!("{sample}{{{key}={val}}} missing: {}", fam[name]))
}

#[test]
fn metrics_are_scraped_and_parse_with_the_right_types() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = trawl();
    cmd.args([
        "scheduler",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .args(["--metrics-listen", "127.0.0.1:0"])
    .args(["--evidence-root", dir.path().to_str().unwrap()]);
    let (_sched, got) = spawn_reading(
        cmd,
        &[
            "trawl-scheduler metrics on http://",
            "trawl-scheduler listening on ",
        ],
    );
    let metrics = got[0].trim_end_matches("/metrics").to_string();
    let url = format!("http://{}", got[1]);
    let _w = start_worker(&url, "m1", 2, 0);
    let img = dir.path().join("m.dd");
    let mut v = vec![0u8; 4 << 20];
    v[1000..1030].copy_from_slice(b" contact bob@metrics-case.org ");
    std::fs::write(&img, &v).unwrap();
    let job = submit(
        &url,
        &img,
        "M",
        &["--analyses", "hash,features", "--shard-size", "1MiB"],
    );
    let o = run(&["watch", &job, "--server", &url]);
    assert!(o.status.success());
    std::thread::sleep(Duration::from_millis(200));
    let (head, body) = scrape(&metrics);
    assert!(
        head.to_ascii_lowercase()
            .contains("application/openmetrics-text"),
        "{head}"
    );
    // no case, job or evidence names: counts only
    for secret in ["\"M\"", job.as_str(), "m.dd", "metrics-case"] {
        assert!(!body.contains(secret), "{secret} in the metrics:\n{body}");
    }
    // the reference parser: every metric with its type
    let Some(fam) = parse_openmetrics(&body, "metrics") else {
        return;
    };
    for (name, ty) in [
        ("trawl_jobs", "gauge"),
        ("trawl_tasks", "gauge"),
        ("trawl_scanned_bytes", "counter"),
        ("trawl_lease_round_trip_seconds", "histogram"),
        ("trawl_queue_depth", "gauge"),
        ("trawl_worker_slots", "gauge"),
        ("trawl_workers", "gauge"),
        ("trawl_task_retries", "counter"),
        ("trawl_tasks_quarantined", "counter"),
    ] {
        assert_eq!(fam[name]["type"], ty, "{name}: {}", fam[name]);
    }
    let sample = |name: &str, s: &str, key: &str, val: &str| sample(&fam, name, s, key, val);
    assert_eq!(
        sample("trawl_jobs", "trawl_jobs", "state", "completed"),
        1.0
    );
    assert_eq!(sample("trawl_jobs", "trawl_jobs", "state", "running"), 0.0);
    // every shard's bytes once per analysis
    let total = (4u64 << 20) as f64;
    for a in ["hash", "features"] {
        assert_eq!(
            sample(
                "trawl_scanned_bytes",
                "trawl_scanned_bytes_total",
                "analysis",
                a
            ),
            total,
            "{a}"
        );
    }
    assert_eq!(
        sample("trawl_worker_slots", "trawl_worker_slots", "state", "free"),
        2.0
    );
    assert_eq!(sample("trawl_workers", "trawl_workers", "state", "up"), 1.0);
    assert!(
        sample(
            "trawl_lease_round_trip_seconds",
            "trawl_lease_round_trip_seconds_count",
            "",
            ""
        ) >= 4.0
    );
    assert_eq!(
        sample(
            "trawl_queue_depth",
            "trawl_queue_depth",
            "priority",
            "urgent"
        ),
        0.0
    );
}

/// A process started with piped stdout: the value after each wanted
/// prefix, read until all are seen; stdout is drained after that.
fn spawn_reading(mut cmd: std::process::Command, prefixes: &[&str]) -> (Proc, Vec<String>) {
    let mut child = cmd
        .env("TRAWL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let want: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            for (i, p) in want.iter().enumerate() {
                if let Some(v) = l.strip_prefix(p.as_str()) {
                    let _ = tx.send((i, v.trim().to_string()));
                }
            }
        }
    });
    let mut got = vec![String::new(); prefixes.len()];
    for _ in 0..prefixes.len() {
        let (i, v) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no {prefixes:?} lines"));
        got[i] = v;
    }
    (Proc(child), got)
}

/// The gRPC health status of `addr` (plaintext), or None when it does not
/// answer.
fn health(addr: &str) -> Option<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .ok()?
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .ok()?;
        let mut c = tonic_health::pb::health_client::HealthClient::new(ch);
        let r = c
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?;
        Some(r.into_inner().status)
    })
}

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
const NOT_SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;

fn worker_cmd(url: &str, id: &str, delay_ms: u64) -> std::process::Command {
    let mut c = trawl();
    c.args(["worker", "--scheduler", url, "--worker-id", id])
        .args(["--slots", "2", "--threads", "2", "--drain-seconds", "1"])
        .args(["--fault-delay-ms", &delay_ms.to_string()])
        .args(crate::cluster::default_roots(&[]))
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--health-listen",
            "127.0.0.1:0",
        ]);
    c
}

#[test]
fn workers_show_metrics_and_health_and_drain_without_losing_work() {
    let test = "workers_show_metrics_and_health_and_drain_without_losing_work";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = trawl();
    cmd.args([
        "scheduler",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .args(["--health-listen", "127.0.0.1:0"])
    .args(["--evidence-root", dir.path().to_str().unwrap()]);
    let (_sched, got) = spawn_reading(
        cmd,
        &[
            "trawl-scheduler health on ",
            "trawl-scheduler listening on ",
        ],
    );
    let (sched_health, url) = (got[0].clone(), format!("http://{}", got[1]));
    assert_eq!(health(&sched_health), Some(SERVING), "scheduler health");

    // A worker with both endpoints runs a job; its metrics count it.
    let (mut w1, got) = spawn_reading(
        worker_cmd(&url, "obs-1", 0),
        &["trawl-worker metrics on http://", "trawl-worker health on "],
    );
    let (w1_metrics, w1_health) = (
        got[0].trim_end_matches("/metrics").to_string(),
        got[1].clone(),
    );
    assert_eq!(health(&w1_health), Some(SERVING), "worker health");
    let img = dir.path().join("w.dd");
    let mut v = vec![0u8; 4 << 20];
    v[5000..5031].copy_from_slice(b" write to carol@worker-case.org");
    std::fs::write(&img, &v).unwrap();
    let job = submit(
        &url,
        &img,
        "W",
        &["--analyses", "hash,features", "--shard-size", "1MiB"],
    );
    assert!(run(&["watch", &job, "--server", &url]).status.success());
    let (_, body) = scrape(&w1_metrics);
    for secret in ["\"W\"", job.as_str(), "w.dd", "worker-case"] {
        assert!(!body.contains(secret), "{secret} in the metrics:\n{body}");
    }
    let Some(fam) = parse_openmetrics(&body, test) else {
        return;
    };
    for (name, ty) in [
        ("trawl_worker_scanned_bytes", "counter"),
        ("trawl_worker_analysis_seconds", "counter"),
        ("trawl_worker_tasks", "counter"),
        ("trawl_worker_slots", "gauge"),
        ("trawl_worker_draining", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
        ("trawl_worker_peak_resident_memory_bytes", "gauge"),
    ] {
        assert_eq!(fam[name]["type"], ty, "{name}: {}", fam[name]);
    }
    let total = (4u64 << 20) as f64;
    let scanned = |a: &str| {
        sample(
            &fam,
            "trawl_worker_scanned_bytes",
            "trawl_worker_scanned_bytes_total",
            "analysis",
            a,
        )
    };
    assert_eq!(scanned("hash"), total);
    assert_eq!(scanned("stream-hash"), total);
    // the feature scanners count theirs too
    let others = fam["trawl_worker_scanned_bytes"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s[0] == "trawl_worker_scanned_bytes_total"
                && !matches!(s[1]["analysis"].as_str(), Some("hash" | "stream-hash"))
                && s[2].as_f64().is_some_and(|b| b > 0.0)
        })
        .count();
    assert!(others >= 1, "{}", fam["trawl_worker_scanned_bytes"]);
    assert!(
        sample(
            &fam,
            "trawl_worker_analysis_seconds",
            "trawl_worker_analysis_seconds_total",
            "analysis",
            "hash"
        ) > 0.0
    );
    // 4 shards and the stream hash
    assert_eq!(
        sample(
            &fam,
            "trawl_worker_tasks",
            "trawl_worker_tasks_total",
            "outcome",
            "done"
        ),
        5.0
    );
    assert_eq!(
        sample(
            &fam,
            "trawl_worker_tasks",
            "trawl_worker_tasks_total",
            "outcome",
            "failed"
        ),
        0.0
    );
    assert_eq!(
        sample(
            &fam,
            "trawl_worker_slots",
            "trawl_worker_slots",
            "state",
            "free"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &fam,
            "trawl_worker_draining",
            "trawl_worker_draining",
            "",
            ""
        ),
        0.0
    );
    let rss = sample(
        &fam,
        "process_resident_memory_bytes",
        "process_resident_memory_bytes",
        "",
        "",
    );
    let peak = sample(
        &fam,
        "trawl_worker_peak_resident_memory_bytes",
        "trawl_worker_peak_resident_memory_bytes",
        "",
        "",
    );
    assert!(rss > 4e6 && peak >= rss, "rss {rss} peak {peak}");
    w1.signal("-TERM");
    let _ = w1.0.wait();

    // Scale-down: a worker holding slow tasks is told to stop. Its health
    // turns NOT_SERVING at once, it hands its leases back, and another
    // worker finishes the job.
    let (mut w2, got) = spawn_reading(
        worker_cmd(&url, "obs-2", 8_000),
        &["trawl-worker metrics on http://", "trawl-worker health on "],
    );
    let w2_health = got[1].clone();
    let job = submit(
        &url,
        &img,
        "W",
        &["--analyses", "hash", "--shard-size", "2MiB"],
    );
    poll_until("the slow worker leases tasks", 30, || {
        let s = crate::cluster::status(&url, &job);
        (s.to_string().matches("\"leased\"").count() >= 2).then_some(())
    });
    w2.signal("-TERM");
    let seen = poll_until(
        "the draining worker says NOT_SERVING",
        10,
        || match health(&w2_health) {
            Some(s) if s == NOT_SERVING => Some(true),
            None => Some(false),
            _ => None,
        },
    );
    assert!(seen, "the worker stopped before reporting NOT_SERVING");
    let status = w2.0.wait().unwrap();
    assert!(status.success(), "{status}");
    let _w3 = crate::cluster::start_worker(&url, "obs-3", 2, 0);
    let o = run(&["watch", &job, "--server", &url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = crate::cluster::status(&url, &job);
    assert_eq!(s["state"], "completed", "{s}");
}
