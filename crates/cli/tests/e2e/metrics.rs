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

#[test]
fn metrics_are_scraped_and_parse_with_the_right_types() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = trawl()
        .args([
            "scheduler",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args(["--evidence-root", dir.path().to_str().unwrap()])
        .env("TRAWL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut metrics = None;
    let mut grpc = None;
    for l in lines.by_ref().map_while(Result::ok) {
        if let Some(a) = l.strip_prefix("trawl-scheduler metrics on http://") {
            metrics = Some(a.trim_end_matches("/metrics").to_string());
        }
        if let Some(a) = l.strip_prefix("trawl-scheduler listening on ") {
            grpc = Some(a.trim().to_string());
            break;
        }
    }
    let _sched = Proc(child);
    let metrics = metrics.expect("no metrics line");
    let url = format!("http://{}", grpc.expect("no listening line"));
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
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools-venv/bin/python");
    let ok = py.is_file()
        && std::process::Command::new(&py)
            .args(["-c", "import prometheus_client.openmetrics.parser"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        trawl_fixtures::skip(
            "metrics",
            "prometheus-client (scripts/setup.sh installs it)",
        );
        return;
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
    let fam: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
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
    let sample = |name: &str, sample: &str, key: &str, val: &str| -> f64 {
        fam[name]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s[0] == sample && (key.is_empty() || s[1][key] == val))
            .and_then(|s| s[2].as_f64())
            .unwrap_or_else(|| panic!("{sample}{{{key}={val}}} missing: {}", fam[name]))
    };
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
