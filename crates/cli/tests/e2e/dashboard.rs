//! Issue: the web dashboard, driven by a real headless Chromium through
//! chromedriver (WebDriver over HTTP, spoken here with std sockets): sign
//! in, watch a running job's progress bar advance, cancel a second job,
//! download a report, be refused another case's job; escaping of
//! `<script>` planted in an evidence name and a feature value.

use crate::security::{Secure, start_secure_with, wait_final};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trawl_proto::v1;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver, killed when dropped.
pub struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One WebDriver call: the response's `value`.
fn wd(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver may keep the connection open: read the head, then
    // exactly the body it announces.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        // A signal (the test harness' children ending) may interrupt the
        // read: it is retried, as the standard library's read_exact does.
        let n = match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.expect("WebDriver response"),
        };
        assert!(n > 0, "WebDriver closed the connection");
        raw.extend_from_slice(&buf[..n]);
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    let complete = |raw: &[u8]| match length {
        Some(n) => raw.len() >= head_end + n,
        None if chunked => raw[head_end..].windows(5).any(|w| w == b"0\r\n\r\n"),
        None => false,
    };
    while !complete(&raw) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }
    let rest = String::from_utf8_lossy(&raw[head_end..]).into_owned();
    let payload = if chunked {
        let mut out = String::new();
        let mut r = rest.as_str();
        loop {
            let (len, after) = r.split_once("\r\n").unwrap_or(("0", ""));
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            r = &after[n + 2..];
        }
        out
    } else {
        rest
    };
    let v: Value = serde_json::from_str(&payload)
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}: {payload}"));
    v["value"].clone()
}

/// chromedriver on a free port, and the port.
pub fn start_driver() -> (Driver, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver");
    let driver = Driver { child };
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (driver, port)
}

/// Signs in with `token` and waits for the cases page.
pub fn sign_in(b: &Browser, base: &str, token: &str) {
    b.go(&format!("{base}/login"));
    b.type_in("#token", token);
    b.click("#sign-in");
    let t0 = Instant::now();
    while !b.url().ends_with("/cases") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "not signed in: {} {}",
            b.url(),
            b.source()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A browser session.
pub struct Browser {
    port: u16,
    id: String,
}

impl Browser {
    pub fn new(port: u16, downloads: &Path) -> Self {
        Self::with_lang(port, downloads, "en-US")
    }

    /// A browser whose language is `lang` (`en-US`, `fr-FR`).
    pub fn with_lang(port: u16, downloads: &Path, lang: &str) -> Self {
        let langs = format!("{lang},{}", &lang[..2]);
        let v = wd(
            port,
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "acceptInsecureCerts": true,
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1000", format!("--lang={lang}")],
                    "prefs": {"download.default_directory": downloads.display().to_string(),
                              "download.prompt_for_download": false,
                              "intl.accept_languages": langs}
                }
            }}})),
        );
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Self { port, id }
    }
    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        wd(
            self.port,
            method,
            &format!("/session/{}{path}", self.id),
            body,
        )
    }
    pub fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }
    pub fn find(&self, css: &str) -> Option<String> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().map(String::from)
    }
    /// The element, waiting up to ten seconds for it (clicks do not wait
    /// for the navigation they start).
    pub fn el(&self, css: &str) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no element {css} in {}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    pub fn click(&self, css: &str) {
        let e = self.el(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }
    pub fn type_in(&self, css: &str, text: &str) {
        let e = self.el(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }
    pub fn prop(&self, css: &str, name: &str) -> Value {
        let e = self.el(css);
        self.cmd("GET", &format!("/element/{e}/property/{name}"), None)
    }
    pub fn text(&self, css: &str) -> String {
        let e = self.el(css);
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    pub fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    /// Runs an async script (its last argument is the callback).
    pub fn run_async(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
    }
    /// A picture of the whole page (the window grown to its height).
    pub fn screenshot(&self, to: &Path) {
        let h = self
            .run_async(
                "var done = arguments[arguments.length - 1];
                 done(Math.max(document.documentElement.scrollHeight, document.body.scrollHeight));",
            )
            .as_u64()
            .unwrap_or(1000)
            .clamp(600, 8000);
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": 1280, "height": h + 140})),
        );
        let v = self.cmd("GET", "/screenshot", None);
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": 1280, "height": 1000})),
        );
        let png = base64_decode(v.as_str().expect("screenshot"));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.cmd("DELETE", "", None));
    }
}

/// Standard base64 (the screenshots), without a crate for it.
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Where the screenshots of the closing note go.
fn shots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
}

pub fn chromium_present(test: &str) -> bool {
    let ok = Path::new("/usr/bin/chromium").exists()
        && Command::new("chromedriver")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        trawl_fixtures::skip(
            test,
            "chromium and chromedriver (Debian chromium, chromium-driver)",
        );
    }
    ok
}

fn submit(s: &Secure, spec: v1::JobSpec) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        s.client(Some(&s.admin_token))
            .jobs
            .clone()
            .submit_job(v1::SubmitJobRequest { spec: Some(spec) })
            .await
            .expect("submit")
            .into_inner()
            .job_id
    })
}

fn job_state(s: &Secure, id: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let j = s.client(Some(&s.admin_token)).job(id).await.unwrap();
        trawl_proto::convert::job_state_name(j.state).to_string()
    })
}

fn spec(case: &str, image: &Path, features: bool) -> v1::JobSpec {
    let mut analyses = vec![v1::Analysis::Hash as i32];
    if features {
        analyses.push(v1::Analysis::Features as i32);
    }
    v1::JobSpec {
        case_id: case.into(),
        evidence: Some(v1::EvidenceLocator {
            source: Some(v1::evidence_locator::Source::Paths(v1::PathList {
                paths: vec![image.display().to_string()],
            })),
        }),
        analyses,
        evidence_name: image.file_name().unwrap().to_string_lossy().into_owned(),
        shard_size: 1 << 20,
        features: Some(v1::FeatureOptions {
            find_case_sensitive: false,
            scanners: vec!["find".into(), "email".into(), "ccn".into()],
            find_keywords: "<script>alert(\"xss\")</script>".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn dashboard_in_headless_chromium() {
    if !chromium_present("dashboard_in_headless_chromium") {
        return;
    }
    // Two slots, 600 ms per task: a 32-shard job runs for about ten seconds.
    let s = start_secure_with(&["--http", "127.0.0.1:0"], &["--fault-delay-ms", "600"]);
    let http = s.sched.http.clone().expect("dashboard address");
    let base = format!("https://{http}");
    let ivy = s.add_user("ivy", "investigator", &["A"], "1d");

    // Evidence named with a script tag, holding one as a feature too.
    let img = s.dir.path().join("<script>alert(1).dd");
    crate::security::random_file(&img, 32 << 20, 5);
    {
        let mut data = std::fs::read(&img).unwrap();
        let planted = b" contact <script>alert(\"xss\")</script> mallory@example.com card 4111 1111 1111 1111 ";
        // Twice: the top features list what was seen at least twice.
        data[3000..3000 + planted.len()].copy_from_slice(planted);
        data[90_000..90_000 + planted.len()].copy_from_slice(planted);
        std::fs::write(&img, data).unwrap();
    }
    let small = s.dir.path().join("other.dd");
    crate::security::random_file(&small, 2 << 20, 6);
    let j1 = submit(&s, spec("A", &img, true));
    let j2 = submit(&s, spec("A", &small, false));
    let j3 = submit(&s, spec("B", &small, false));

    let (_driver, port) = start_driver();
    let downloads = tempfile::tempdir().unwrap();
    let b = Browser::new(port, downloads.path());

    // Signed out: 401.
    b.go(&format!("{base}/cases"));
    assert!(b.source().contains("401"), "{}", b.source());
    // Sign in with a wrong token, then the right one.
    b.go(&format!("{base}/login"));
    b.type_in("#token", "trawl_not_a_token");
    b.click("#sign-in");
    b.el("#login-error");
    b.type_in("#token", &ivy);
    b.click("#sign-in");
    let t0 = Instant::now();
    while !b.url().ends_with("/cases") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "not signed in: {} {}",
            b.url(),
            b.source()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cases = b.source();
    assert!(cases.contains(&j1) && cases.contains(&j2), "{cases}");
    assert!(
        !cases.contains(&j3),
        "another case's job is listed: {cases}"
    );
    // The evidence name is text, not markup.
    assert!(cases.contains("&lt;script&gt;alert(1).dd"), "{cases}");
    assert!(!cases.contains("<script>alert(1)"), "{cases}");

    // The running job's progress bar advances (server-sent events).
    b.go(&format!("{base}/jobs/{j1}"));
    let value = || b.prop("#progress", "value").as_f64().unwrap_or(0.0);
    let first = value();
    let mut later = first;
    let t0 = Instant::now();
    while later <= first && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(300));
        later = value();
    }
    assert!(later > first, "progress bar stuck at {first}");
    assert!(
        first < 1000.0,
        "the job finished before it could be watched"
    );
    // While running, the counts are labelled provisional, time left shows,
    // and the throughput chart is drawn from the shards done so far.
    assert_eq!(b.prop("#counts-note", "className"), json!("provisional"));
    b.el("#eta");
    // A few more updates for the throughput line, then the picture.
    std::thread::sleep(Duration::from_secs(3));
    let d = b.run_async(
        "var done = arguments[arguments.length - 1];
         var p = document.querySelector('#throughput-chart path.series');
         done(p ? p.getAttribute('d') : '');",
    );
    assert!(
        d.as_str().unwrap_or_default().contains(" L"),
        "a live throughput line: {d}"
    );
    b.screenshot(&shots_dir().join("job.png"));

    // Cancel the second job (queued behind the first on the one slot).
    b.go(&format!("{base}/jobs/{j2}"));
    b.click("#cancel");
    let t0 = Instant::now();
    while job_state(&s, &j2) != "cancelled" {
        assert!(t0.elapsed() < Duration::from_secs(10), "not cancelled");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t0 = Instant::now();
    while !b.text("#state").contains("cancelled") {
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", b.source());
        std::thread::sleep(Duration::from_millis(200));
    }

    // A forged CSRF token and a request without the session are refused.
    let forged = b.run_async(&format!(
        "var done = arguments[arguments.length - 1];
         fetch('/jobs/{j1}/cancel', {{method: 'POST', headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: 'csrf=forged'}})
           .then(r => done(r.status));"
    ));
    assert_eq!(forged, json!(403));
    let anonymous = b.run_async(&format!(
        "var done = arguments[arguments.length - 1];
         fetch('/jobs/{j1}', {{credentials: 'omit'}}).then(r => done(r.status));"
    ));
    assert_eq!(anonymous, json!(401));
    assert_ne!(job_state(&s, &j1), "cancelled");

    // When it completes: its features, escaped; the report archive.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fin = rt.block_on(async { wait_final(&s.client(Some(&s.admin_token)), &j1).await });
    assert_eq!(trawl_proto::convert::job_state_name(fin.state), "completed");
    b.go(&format!("{base}/jobs/{j1}"));
    let page = b.source();
    assert!(page.contains("mallory@example.com"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(\"xss\")&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert("), "{page}");
    // Card numbers masked; an investigator reveals them, audited.
    assert!(page.contains("4111 11•• •••• 1111"), "{page}");
    assert!(!page.contains("4111 1111 1111 1111"), "{page}");
    b.click("#reveal");
    b.el("#revealed");
    assert!(b.source().contains("4111 1111 1111 1111"));
    let reveals = |who: &str, action: &str| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async { crate::security::audit_actions(&s).await })
            .iter()
            .filter(|e| e.actor == who && e.action == action && e.target == j1)
            .count()
    };
    assert_eq!(reveals("ivy", "web.reveal_card_numbers"), 1);
    // A case officer sees them masked, without the action; forcing it is
    // refused and audited.
    {
        let olga = s.add_user("olga", "case_officer", &["A"], "1d");
        let o = Browser::new(port, downloads.path());
        sign_in(&o, &base, &olga);
        o.go(&format!("{base}/jobs/{j1}"));
        let page = o.source();
        assert!(page.contains("4111 11•• •••• 1111"), "{page}");
        assert!(o.find("#reveal").is_none());
        let status = o.run_async(&format!(
            "var done = arguments[arguments.length - 1];
             var t = document.querySelector('input[name=csrf]').value;
             fetch('/jobs/{j1}/reveal', {{method: 'POST', headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: 'csrf=' + t}})
               .then(r => r.text().then(x => done([r.status, x])));"
        ));
        assert_eq!(status[0], json!(403), "{status}");
        assert!(!status[1].as_str().unwrap_or_default().contains("4111 1111"));
        assert_eq!(reveals("olga", "web.reveal_card_numbers"), 0);
        assert_eq!(reveals("olga", "denied"), 1);
    }
    b.go(&format!("{base}/jobs/{j1}"));
    let raw = b.run_async(
        "var done = arguments[arguments.length - 1];
         fetch(location.href).then(r => r.text()).then(done);",
    );
    let raw = raw.as_str().unwrap_or_default();
    assert!(
        raw.contains("&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;"),
        "{raw}"
    );
    assert!(!raw.contains("<script>alert"), "{raw}");
    let tar = b.run_async(&format!(
        "var done = arguments[arguments.length - 1];
         fetch('/jobs/{j1}/report.tar').then(r => r.arrayBuffer().then(b => {{
           var u = new Uint8Array(b), s = '';
           for (var i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
           done([r.status, r.headers.get('content-type'), u.length, s]);
         }}));"
    ));
    assert_eq!(tar[0], json!(200), "{tar}");
    assert_eq!(tar[1], json!("application/x-tar"));
    let body = tar[3].as_str().unwrap_or_default();
    assert!(
        body.contains(&format!("trawl-{j1}/report.json")),
        "tar entries"
    );
    assert!(body.contains("features/find.txt"), "tar entries");
    // The download link itself.
    b.click("#download");
    let t0 = Instant::now();
    let saved = loop {
        let found = std::fs::read_dir(downloads.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "tar"));
        if let Some(p) = found {
            break p;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no download");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(std::fs::metadata(&saved).unwrap().len() > 1024);

    // The pool.
    b.go(&format!("{base}/pool"));
    let pool = b.text("table.workers");
    assert!(pool.contains("up"), "{pool}");
    b.screenshot(&shots_dir().join("pool.png"));

    // Another case's job: the same 404 as a job that does not exist,
    // audited.
    b.go(&format!("{base}/jobs/{j3}"));
    let refused = b.source();
    assert!(refused.contains("Not found"), "{refused}");
    assert!(
        !refused.contains("other.dd"),
        "nothing of the job leaks: {refused}"
    );
    // The refusal explains itself, leads back, keeps the sign-out button.
    b.el("#refusal");
    b.el("#back");
    assert!(refused.contains("action=\"/logout\""), "{refused}");
    // Job ids in any case lead to the same page.
    b.go(&format!("{base}/jobs/{}", j1.to_lowercase()));
    assert!(b.source().contains(&format!("{j1} —")), "{}", b.source());
    let audit = rt.block_on(async {
        s.client(Some(&s.admin_token))
            .admin
            .clone()
            .list_audit(v1::ListAuditRequest::default())
            .await
            .unwrap()
            .into_inner()
            .entries
    });
    assert!(
        audit
            .iter()
            .any(|e| e.action == "denied" && e.target == j3 && e.actor == "ivy"),
        "refusal audited"
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "denied" && e.detail.contains("CSRF"))
    );

    // French for a browser that asks for it.
    let fr = b.run_async(
        "var done = arguments[arguments.length - 1];
         fetch('/cases', {headers: {'Accept-Language': 'fr-FR,fr;q=0.9'}}).then(r => r.text()).then(done);",
    );
    assert!(fr.as_str().unwrap_or_default().contains("Affaires"), "{fr}");
}
