//! Issue 22: the threat report. A real initialised scheduler with its
//! dashboard and a worker; jobs over three cases (one with YARA matches),
//! indicators shared by A and B and by B and C, a flash raising alerts in
//! A and B. `trawl report` writes the report; its `indicators.csv` is the
//! indicators page's CSV for the period, line for line; a case officer's
//! report covers their case only and hides the values of indicators held
//! by other cases; the page draws its charts in Chromium, reads in French,
//! is screenshotted (`en-report.png`, `fr-report.png` to
//! `$TRAWL_SCREENSHOTS`) and printed to PDF (kept under `target/`).

use crate::common::*;
use crate::dashboard::{Browser, base64_decode, chromium_present, sign_in, start_driver};
use crate::dashboard_counts::{check_french, check_line_chart, shots};
use crate::security::{Secure, as_user, last_line, start_secure_with};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const AB: &str = "joe@ab-report-gang.net";
const BC: &str = "kim@bc-report-gang.net";

fn submit(s: &Secure, token: &str, img: &Path, case: &str, extra: &[&str]) -> String {
    let mut args = vec!["submit", img.to_str().unwrap(), "--case", case];
    args.extend(extra);
    let (code, out, err) = as_user(s, token, &args);
    assert_eq!(code, Some(0), "{err}");
    let job = last_line(out.as_bytes());
    let (code, _, err) = as_user(s, token, &["watch", &job]);
    assert_eq!(code, Some(0), "{err}");
    job
}

/// `trawl report` into a new folder `name` as `token`'s user.
fn report(s: &Secure, token: &str, from: &str, to: &str, out: &Path, lang: &str) {
    let (code, stdout, err) = as_user(
        s,
        token,
        &[
            "report",
            "--from",
            from,
            "--to",
            to,
            "--out",
            out.to_str().unwrap(),
            "--lang",
            lang,
        ],
    );
    assert_eq!(code, Some(0), "trawl report: {err}");
    assert!(stdout.contains("index.html"), "{stdout}");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

fn fetch(b: &Browser, url: &str) -> String {
    b.run_async(&format!(
        "var done = arguments[arguments.length - 1];
         fetch({url:?}, {{credentials: 'same-origin'}}).then(function(r){{ return r.text(); }}).then(done);"
    ))
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Prints the current page through WebDriver: a PDF with at least one
/// page, saved to `to`.
fn print_pdf(b: &Browser, to: &Path) -> usize {
    let v = b.cmd(
        "POST",
        "/print",
        Some(json!({"orientation": "portrait", "background": true,
                    "page": {"width": 21.0, "height": 29.7}})),
    );
    let pdf = base64_decode(v.as_str().unwrap_or_else(|| panic!("print: {v}")));
    assert!(
        pdf.starts_with(b"%PDF-"),
        "not a PDF: {:?}",
        &pdf[..16.min(pdf.len())]
    );
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, &pdf).unwrap();
    // Page objects (`/Type /Page`, not `/Pages`).
    let text = String::from_utf8_lossy(&pdf);
    text.match_indices("/Type /Page")
        .filter(|(i, _)| !text[i + 11..].starts_with('s'))
        .count()
}

/// The report page's charts: line charts drawn, bars where there are data.
fn check_charts(b: &Browser, kinds: usize) {
    for id in ["images-chart", "bytes-chart", "ttr-chart", "flashes-chart"] {
        check_line_chart(b, id);
    }
    let bars = b.run_async(
        "var done = arguments[arguments.length - 1];
         done(['kinds-chart', 'families-chart', 'alerts-chart'].map(function(id){
           var s = document.getElementById(id);
           return s ? [s.getAttribute('role'), s.querySelectorAll('rect.bar').length] : null; }));",
    );
    assert_eq!(bars[0], json!(["img", kinds]), "one bar per kind: {bars}");
    assert!(bars[1][1].as_u64().unwrap() >= 1, "YARA families: {bars}");
    assert!(bars[2][1].as_u64().unwrap() >= 1, "alerts: {bars}");
}

#[test]
fn threat_report_figures_equal_the_indicators_csv_and_print_to_pdf() {
    if !chromium_present("threat_report_figures_equal_the_indicators_csv_and_print_to_pdf") {
        return;
    }
    let s = start_secure_with(&["--http", "127.0.0.1:0"], &[]);
    let base = format!("https://{}", s.sched.http.clone().expect("dashboard"));
    let ivy = s.add_user("ivy", "investigator", &["A", "B", "C"], "1d");
    let olga = s.add_user("olga", "case_officer", &["A"], "1d");
    let ana = s.add_user("ana", "analyst", &[], "1d");
    let admin = s.admin_token.clone();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rules/demo.yar");

    // A: the fixture with every analysis and the demo rules, and a planted
    // image; B and C: planted images. A∩B and B∩C share an e-mail.
    submit(
        &s,
        &ivy,
        &small_fixture().image,
        "A",
        &["--analyses", "all", "--rules", rules.to_str().unwrap()],
    );
    let a2 = planted_image(s.dir.path(), "a2.dd", &[AB, "solo@a-report-only.org"]);
    submit(&s, &ivy, &a2, "A", &["--analyses", "features"]);
    let b1 = planted_image(s.dir.path(), "b1.dd", &[AB, BC]);
    submit(&s, &ivy, &b1, "B", &["--analyses", "features"]);
    let c1 = planted_image(s.dir.path(), "c1.dd", &[BC]);
    submit(&s, &ivy, &c1, "C", &["--analyses", "features"]);
    // indexing follows completion: wait for B's links to A and C
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = as_user(&s, &admin, &["links", "--case", "B", "--json"]);
        if out.contains("\"other_case\": \"A\"") && out.contains("\"other_case\": \"C\"") {
            break;
        }
        assert!(Instant::now() < deadline, "links of B: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // a flash on the A∩B e-mail (alerts in A and B at once) with a rule
    // for A's second image (a retrohunt over every image: its bytes are
    // counted apart, its rule alert is A's)
    let flash_rules = s.dir.path().join("solo.yar");
    std::fs::write(
        &flash_rules,
        "rule report_solo { strings: $a = \"solo@a-report-only.org\" condition: $a }\n",
    )
    .unwrap();
    let (code, _, err) = as_user(
        &s,
        &ana,
        &[
            "flash",
            "publish",
            "--title",
            "Report campaign",
            "--tlp",
            "amber",
            "--indicator",
            &format!("email:{AB}"),
            "--rules",
            flash_rules.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, out, _) = as_user(&s, &ana, &["flash", "list", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let r = &v[0]["retro"];
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        if n("jobs") == 4 && n("done") + n("failed") == 4 {
            assert_eq!(n("done"), 4, "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "retrohunt: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }

    let year = &read_year();
    let (from, to) = (format!("{year}-01-01"), format!("{year}-12-31"));
    let work = tempfile::tempdir().unwrap();

    // Bad input: clear errors, nothing written.
    for (args, want) in [
        (
            vec!["--from", "2026-02-30", "--to", "2026-12-31"],
            "--from \"2026-02-30\"",
        ),
        (
            vec!["--from", "2026-01-01", "--to", "26-12-31"],
            "--to \"26-12-31\"",
        ),
        (
            vec!["--from", "2026-12-01", "--to", "2026-01-31"],
            "is after --to",
        ),
    ] {
        let out = work.path().join("bad");
        let mut a = vec!["report"];
        a.extend(args);
        a.extend(["--out", out.to_str().unwrap()]);
        let (code, _, err) = as_user(&s, &olga, &a);
        assert_eq!(code, Some(1), "{a:?}: {err}");
        assert!(err.contains(want), "{a:?}: {err}");
        assert!(!out.exists());
    }
    let full = work.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    let (code, _, err) = as_user(
        &s,
        &olga,
        &[
            "report",
            "--from",
            &from,
            "--to",
            &to,
            "--out",
            full.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not empty"), "{err}");

    // The case officer's report: case A only.
    let mine = work.path().join("olga");
    report(&s, &olga, &from, &to, &mine, "en");
    for f in [
        "index.html",
        "print.css",
        "indicators.csv",
        "months.csv",
        "alerts.csv",
        "top_indicators.csv",
        "charts/images-chart.svg",
        "charts/bytes-chart.svg",
        "charts/kinds-chart.svg",
        "charts/families-chart.svg",
        "charts/ttr-chart.svg",
        "charts/alerts-chart.svg",
        "charts/flashes-chart.svg",
    ] {
        assert!(mine.join(f).is_file(), "{f} missing");
    }
    let html = read(&mine.join("index.html"));
    assert!(
        html.contains("href=\"print.css\"") && !html.contains("/assets/"),
        "self-contained"
    );
    assert!(read(&mine.join("print.css")).contains("@media print"));
    assert!(read(&mine.join("charts/images-chart.svg")).contains("role=\"img\""));
    let ind = read(&mine.join("indicators.csv"));
    let rows = csv_rows(&ind);
    assert!(!rows.is_empty(), "{ind}");
    assert!(rows.iter().all(|r| r[1] == "A"), "case A only: {ind}");
    assert!(
        rows.iter().any(|r| r[2].starts_with("yara_family:")),
        "{ind}"
    );
    let images: u64 = rows
        .iter()
        .filter(|r| r[2] == "all")
        .map(|r| r[4].parse::<u64>().unwrap())
        .sum();
    assert_eq!(images, 2, "A's two jobs: {ind}");
    // retrohunt jobs: not images, their bytes apart
    let months = csv_rows(&read(&mine.join("months.csv")));
    assert_eq!(months.len(), 12, "{months:?}");
    let sum = |col: usize| -> u64 { months.iter().map(|r| r[col].parse::<u64>().unwrap()).sum() };
    assert_eq!(sum(1), 2, "images: {months:?}");
    assert_eq!(sum(9), 2, "A's two retrohunt jobs: {months:?}");
    assert!(sum(10) > 0, "retrohunt bytes: {months:?}");
    let alerts = csv_rows(&read(&mine.join("alerts.csv")));
    assert_eq!(alerts.len(), 2, "A's alerts only: {alerts:?}");
    assert!(alerts.iter().all(|a| a[2] == "A"), "{alerts:?}");
    assert!(
        alerts.iter().any(|a| a[7] == "indicator" && a[9] == AB),
        "{alerts:?}"
    );
    assert!(
        alerts
            .iter()
            .any(|a| a[7] == "rule" && a[10] == "report_solo"),
        "{alerts:?}"
    );
    let top = csv_rows(&read(&mine.join("top_indicators.csv")));
    let find = |v: &[Vec<String>], kind: &str, value: &str| {
        v.iter().find(|r| r[1] == kind && r[2] == value).cloned()
    };
    let ab = find(&top, "email", AB).unwrap_or_else(|| panic!("A holds {AB}: {top:?}"));
    assert_eq!((ab[3].as_str(), ab[4].as_str()), ("2", ""), "{top:?}");
    assert!(
        find(&top, "domain", "ab-report-gang.net").is_some(),
        "{top:?}"
    );
    // B∩C: counted, its value hidden from A's officer
    assert!(!format!("{top:?}").contains("bc-report-gang"), "{top:?}");
    assert_eq!(
        top.iter().filter(|r| r[2].is_empty()).count(),
        2,
        "B∩C's e-mail and domain, hidden: {top:?}"
    );
    // The admin's: every case, values and cases.
    let all = work.path().join("admin");
    report(&s, &admin, &from, &to, &all, "en");
    let cases: std::collections::BTreeSet<String> = csv_rows(&read(&all.join("indicators.csv")))
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(cases.into_iter().collect::<Vec<_>>(), ["A", "B", "C"]);
    let top_all = csv_rows(&read(&all.join("top_indicators.csv")));
    let bc = find(&top_all, "email", BC).unwrap_or_else(|| panic!("{top_all:?}"));
    assert_eq!((bc[3].as_str(), bc[4].as_str()), ("2", "B C"));
    assert_eq!(csv_rows(&read(&all.join("alerts.csv"))).len(), 3);
    // A period without jobs: the header only.
    let empty = work.path().join("empty");
    report(&s, &olga, "2001-01-01", "2001-12-31", &empty, "fr");
    assert_eq!(read(&empty.join("indicators.csv")).lines().count(), 1);
    // audited with the period
    let (_, audit, _) = as_user(&s, &admin, &["audit", "list", "--json"]);
    assert!(
        audit.contains("report.threat") && audit.contains(&format!("{from}..{to}")),
        "{audit}"
    );

    // In Chromium, as A's officer.
    let (_driver, port) = start_driver();
    let downloads = tempfile::tempdir().unwrap();
    let shots = shots();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let kinds = {
        let b = Browser::new(port, downloads.path());
        sign_in(&b, &base, &olga);
        // the same CSV as the dashboard's, line for line
        let dash = fetch(&b, &format!("/indicators.csv?from={from}&to={to}"));
        assert_eq!(
            dash.lines().collect::<Vec<_>>(),
            ind.lines().collect::<Vec<_>>()
        );
        assert_eq!(
            fetch(&b, "/indicators.csv"),
            ind,
            "every job is in the period"
        );
        let dash_top = fetch(
            &b,
            &format!("/report/top_indicators.csv?from={from}&to={to}"),
        );
        assert_eq!(dash_top, read(&mine.join("top_indicators.csv")));
        // linked from the indicators page
        b.go(&format!("{base}/indicators"));
        b.click("#threat-report");
        b.el("#top-table");
        let v = b.run_async(
            "var done = arguments[arguments.length - 1];
             done(document.querySelectorAll('#kinds-table tr[data-kind]').length);",
        );
        v.as_u64().unwrap() as usize
    };
    assert!(kinds >= 3, "the fixture's kinds: {kinds}");
    for lang in ["en-US", "fr-FR"] {
        let l = &lang[..2];
        let b = Browser::with_lang(port, downloads.path(), lang);
        sign_in(&b, &base, &olga);
        b.go(&format!("{base}/report?from={from}&to={to}"));
        b.el("#top-table");
        check_charts(&b, kinds);
        let hidden = b.run_async(
            "var done = arguments[arguments.length - 1];
             done(document.querySelectorAll('#top-table tr[data-hidden=\"true\"]').length);",
        );
        assert_eq!(hidden, json!(2));
        b.screenshot(&shots.join(format!("{l}-report.png")));
        if l == "fr" {
            check_french(&b, "report");
        }
        let pages = print_pdf(&b, &target.join(format!("threat-report-{l}.pdf")));
        assert!(pages >= 2, "{l}: sections on their own pages: {pages}");
        // a bad period: a clear refusal, in the reader's language
        b.go(&format!("{base}/report?from=2026-13-01&to={to}"));
        let text = b.text("#refusal");
        assert!(text.contains("2026-13-01"), "{text}");
        if l == "fr" {
            assert!(text.contains("AAAA-MM-JJ"), "{text}");
        }
    }
    // The exported page on its own (file://): charts drawn, prints.
    let b = Browser::new(port, downloads.path());
    b.go(&format!("file://{}", mine.join("index.html").display()));
    b.el("#top-table");
    check_charts(&b, kinds);
    let styled = b.run_async(
        "var done = arguments[arguments.length - 1];
         done(getComputedStyle(document.querySelector('svg.chart')).backgroundColor);",
    );
    assert_eq!(styled, json!("rgb(255, 255, 255)"), "print.css applied");
    let pages = print_pdf(&b, &target.join("threat-report-export.pdf"));
    assert!(pages >= 2, "{pages}");
}

/// This year (UTC), as the scheduler dates jobs.
fn read_year() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    // civil from days (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    y.to_string()
}
