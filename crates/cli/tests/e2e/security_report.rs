//! Issue 17, finding 3: path traversal in the report writer. A real
//! scheduler (initialised, TLS, a real worker) runs a features job; its
//! stored results are then forged the way a compromised worker or a
//! tampered state database would carry them (feature scanners `/abs/x`,
//! `../../../../y`, `a/b`, `..`, empty, NUL; a carved type `../../x`), and
//! both report writers are run on them: `trawl results` on the client and
//! the dashboard's `report.tar` on the scheduler host. Each refuses the
//! results whole, naming the record, the field and the escaped value, and
//! writes nothing, inside or outside its folder. The report folders sit
//! deep in folders the test owns (the dashboard's through `TMPDIR`), so
//! every place a `..` name aims at can be looked at.

use crate::cluster::{Proc, Sched};
use crate::common::*;
use crate::security::last_line;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use trawl_proto::v1;

/// Starts `trawl scheduler` with its dashboard, `TMPDIR` set to `tmp`.
fn start(data: &Path, tmp: &Path) -> Sched {
    let mut child = trawl()
        .args(["scheduler", "--data", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .env("TRAWL_LOG", "warn")
        .env("TMPDIR", tmp)
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
        url: format!("https://{addr}"),
        addr,
        http,
    }
}

/// Stops a scheduler with SIGTERM and waits for it (its state flushed).
fn stop(mut s: Sched) {
    s.proc.signal("-TERM");
    let _ = s.proc.0.wait();
}

/// The client flags for `s` with `token`.
fn flags(s: &Sched, ca: &Path, token: &str) -> Vec<String> {
    vec![
        "--server".into(),
        s.url.clone(),
        "--ca".into(),
        ca.display().to_string(),
        "--token".into(),
        token.into(),
    ]
}

fn run_with(args: &[&str], more: &[String]) -> std::process::Output {
    trawl().args(args).args(more).output().expect("run trawl")
}

/// Everything under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A dashboard session through curl: signs in with `token` and returns
/// the cookie jar.
pub fn web_sign_in(http: &str, ca: &Path, token: &str, jar: &Path) {
    let curl = |args: &[&str]| -> String {
        let o = Command::new("curl")
            .args(["-sS", "--cacert", ca.to_str().unwrap()])
            .args(["-c", jar.to_str().unwrap(), "-b", jar.to_str().unwrap()])
            .args(args)
            .output()
            .expect("curl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    curl(&["-o", "/dev/null", &format!("https://{http}/login")]);
    let jar_text = std::fs::read_to_string(jar).unwrap();
    let pre = jar_text
        .lines()
        .find(|l| l.contains("\ttrawl_prelogin\t"))
        .and_then(|l| l.rsplit('\t').next())
        .expect("pre-login cookie")
        .to_string();
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--data-urlencode",
        &format!("token={token}"),
        "--data-urlencode",
        &format!("csrf={pre}"),
        &format!("https://{http}/login"),
    ]);
    assert_eq!(code, "303", "sign-in");
}

/// `GET /jobs/JOB/report.tar`: the status and the body.
fn web_report_tar(http: &str, ca: &Path, jar: &Path, job: &str, body: &Path) -> (String, Vec<u8>) {
    let o = Command::new("curl")
        .args(["-sS", "--cacert", ca.to_str().unwrap()])
        .args(["-b", jar.to_str().unwrap(), "-o", body.to_str().unwrap()])
        .args(["-w", "%{http_code}"])
        .arg(format!("https://{http}/jobs/{job}/report.tar"))
        .output()
        .expect("curl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        std::fs::read(body).unwrap(),
    )
}

pub fn curl_present() -> bool {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        trawl_fixtures::skip("the dashboard half of the report test", "curl");
    }
    ok
}

#[test]
fn forged_scanner_names_never_leave_the_report_folder() {
    let t = tempfile::tempdir().unwrap();
    let t = t.path();
    let data = t.join("data");
    // The dashboard writes its report in TMPDIR/.tmpXXXX: four folders
    // down from `t/s`, so `../../../../y` from its features/ lands in t/s.
    let tmp = t.join("s/t/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let ca = data.join("auth/ca.pem");
    run_ok(&[
        "scheduler",
        "init",
        "--data",
        data.to_str().unwrap(),
        "--admin",
        "chief",
    ]);
    let ivy = last_line(
        &run_ok(&[
            "scheduler",
            "user",
            "add",
            "ivy",
            "--role",
            "investigator",
            "--case",
            "A",
            "--expires",
            "1d",
            "--data",
            data.to_str().unwrap(),
        ])
        .stdout,
    );
    let sched = start(&data, &tmp);
    let worker = Proc(
        trawl()
            .args(["worker", "--scheduler", &sched.url, "--tls"])
            .arg(data.join("enroll/worker-1"))
            .args(["--slots", "2", "--threads", "2", "--drain-seconds", "1"])
            .env("TRAWL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker"),
    );
    let img = t.join("mail.txt");
    let mut text = Vec::new();
    for i in 0..200 {
        text.extend_from_slice(
            format!("From: user{i}@example.com to bob@example.org\n").as_bytes(),
        );
    }
    std::fs::write(&img, &text).unwrap();
    let f = flags(&sched, &ca, &ivy);
    let sub = run_with(
        &[
            "submit",
            img.to_str().unwrap(),
            "--upload",
            "--case",
            "A",
            "--analyses",
            "features",
        ],
        &f,
    );
    assert!(
        sub.status.success(),
        "{}",
        String::from_utf8_lossy(&sub.stderr)
    );
    let job = last_line(&sub.stdout);
    let w = run_with(&["watch", &job], &f);
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));

    // The legitimate results write, through both writers.
    let good = t.join("good");
    let o = run_with(&["results", &job, "--out", good.to_str().unwrap()], &f);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let email = std::fs::read_to_string(good.join("features/email.txt")).unwrap();
    assert!(email.contains("\tbob@example.org\t"), "{email}");
    let curl = curl_present();
    let http = sched.http.clone().expect("dashboard address");
    let jar = t.join("jar");
    if curl {
        web_sign_in(&http, &ca, &ivy, &jar);
        let (code, tar) = web_report_tar(&http, &ca, &jar, &job, &t.join("ok.tar"));
        assert_eq!(code, "200");
        let entry = format!("trawl-{job}/features/email.txt");
        assert!(tar.windows(entry.len()).any(|w| w == entry.as_bytes()));
        assert!(tree(&t.join("s")).iter().all(|p| p == "t" || p == "t/tmp"));
    }
    drop(worker);
    stop(sched);

    // Forge the stored results, as a worker's report would carry them.
    let abs = t.join("abs-x");
    let forged = [
        abs.to_str().unwrap().to_string(),
        "../../../../y".into(),
        "a/b".into(),
        "..".into(),
        String::new(),
        "email\0x".into(),
    ];
    {
        let store = trawl_store::Store::open(&data).unwrap();
        let mut page = store.merged(&job).unwrap().expect("stored results");
        let real = page.features[0].clone();
        for (i, name) in forged.iter().enumerate() {
            page.features.push(v1::Feature {
                scanner: name.clone(),
                offset: 7000 + i as u64,
                ..real.clone()
            });
        }
        page.carved.push(v1::CarvedFile {
            offset: 0,
            length: 4,
            file_type: "../../../../carved-escape".into(),
            extension: "txt".into(),
            ..Default::default()
        });
        store.put_merged(&job, &page).unwrap();
        store.flush().unwrap();
    }
    let sched = start(&data, &tmp);
    let f = flags(&sched, &ca, &ivy);

    // The client: refused whole, exit 1, every refused record named.
    let out = t.join("a/b/c/out");
    std::fs::create_dir_all(t.join("a/b/c")).unwrap();
    let o = run_with(&["results", &job, "--out", out.to_str().unwrap()], &f);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    let n = page_features(&good);
    for part in [
        "7 names in the results cannot be report paths: ".to_string(),
        format!(
            "feature {n} (offset 7000): feature scanner {:?} refused: contains a path separator (/ or \\)",
            abs.to_str().unwrap()
        ),
        format!(
            "feature {} (offset 7001): feature scanner \"../../../../y\" refused: contains a path separator",
            n + 1
        ),
        format!(
            "feature {} (offset 7002): feature scanner \"a/b\" refused",
            n + 2
        ),
        format!(
            "feature {} (offset 7003): feature scanner \"..\" refused: a reference to a folder (. or ..)",
            n + 3
        ),
        format!(
            "feature {} (offset 7004): feature scanner \"\" refused: empty",
            n + 4
        ),
        format!(
            "feature {} (offset 7005): feature scanner \"email\\0x\" refused: contains a control character",
            n + 5
        ),
        "carved file 0 (offset 0): carved file type \"../../../../carved-escape\" refused".into(),
        format!("nothing was written to {}", out.display()),
    ] {
        assert!(err.contains(&part), "{part}\n{err}");
    }
    assert_eq!(tree(&t.join("a")), ["b", "b/c"], "{err}");
    for aimed in [
        "abs-x.txt",
        "abs-x_histogram.txt",
        "a/y.txt",
        "a/y_histogram.txt",
    ] {
        assert!(!t.join(aimed).exists(), "{aimed}");
    }

    // The dashboard: refused (409, the reason shown), nothing written on
    // the scheduler host.
    if curl {
        let http = sched.http.clone().expect("dashboard address");
        web_sign_in(&http, &ca, &ivy, &jar);
        let (code, body) = web_report_tar(&http, &ca, &jar, &job, &t.join("forged.tar"));
        let body = String::from_utf8_lossy(&body);
        assert_eq!(code, "409", "{body}");
        assert!(
            body.contains("7 names in the results cannot be report paths: ")
                && body.contains("feature scanner &quot;../../../../y&quot; refused")
                && body.ends_with("; no report was written"),
            "{body}"
        );
        assert_eq!(tree(&t.join("s")), ["t", "t/tmp"]);
        assert!(!t.join("abs-x.txt").exists());
        assert!(!t.join("carved-escape").exists() && !t.join("s/carved-escape").exists());
    }
    stop(sched);
}

/// How many features the legitimate report holds (the forged ones follow).
fn page_features(report: &Path) -> usize {
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    r["counts"]["features"]["total"].as_u64().unwrap() as usize
}

/// `trawl scan` of several images writes one folder per image, named after
/// the image: built by the same path function, so an image name that is
/// not one plain name is refused before anything runs, and a legitimate
/// one lands inside OUT.
#[test]
fn image_report_folders_are_built_inside_out() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("one.raw");
    let b = t.path().join("two.raw");
    std::fs::write(&a, vec![0u8; 4096]).unwrap();
    std::fs::write(&b, b"x@example.com ".repeat(300)).unwrap();
    let out: PathBuf = t.path().join("out");
    let o = run(&[
        "scan",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--analyses",
        "features",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("one.raw/report.json").is_file());
    assert!(out.join("two.raw/features/email.txt").is_file());
    // A name with a newline in it cannot be a report folder.
    let c = t.path().join("bad\nname.raw");
    std::fs::write(&c, vec![0u8; 4096]).unwrap();
    let out2 = t.path().join("out2");
    let o = run(&[
        "scan",
        a.to_str().unwrap(),
        c.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("image name \"bad\\nname.raw\" refused: contains a control character"),
        "{err}"
    );
    assert!(!out2.exists());
}
