//! Issue 26: the counts a person sees agree with the report, the charts
//! draw, the capacity map groups workers by site, and every page is in
//! French for a French browser — in a real headless Chromium.
//!
//! The same image is submitted with two shard sizes: the job pages,
//! `trawl watch --json`'s final event, the indicators page and its CSV all
//! show the counts of `report.json`; the pool's bytes are the evidence size
//! times the passes the job pages state. Screenshots of every page in
//! English and French go to `target/dashboard-screenshots` (or
//! `$TRAWL_SCREENSHOTS`; `docs/screenshots` holds the committed ones).

use crate::common::{report, run_ok, small_fixture, trawl};
use crate::dashboard::{Browser, chromium_present, sign_in, start_driver};
use crate::security::{Secure, start_secure_with};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn shots() -> PathBuf {
    std::env::var_os("TRAWL_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
        })
}

fn demo_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rules/demo.yar")
}

/// `trawl submit` with every analysis and the demo rules.
fn submit(s: &Secure, token: &str, image: &Path, shard: &str) -> String {
    let mut args: Vec<String> = vec![
        "submit".into(),
        image.display().to_string(),
        "--case".into(),
        "A".into(),
        "--analyses".into(),
        "all".into(),
        "--rules".into(),
        demo_rules().display().to_string(),
        "--shard-size".into(),
        shard.into(),
    ];
    args.extend(s.flags(token));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_ok(&args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// `trawl watch --json JOB` to the end: its last event.
fn watch_final(s: &Secure, token: &str, job: &str) -> Value {
    let out = trawl()
        .args(["watch", job, "--json"])
        .args(s.flags(token))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "watch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().expect("an event")).expect("JSON event")
}

/// `report.json` of the job, written by `trawl results`.
fn report_of(s: &Secure, token: &str, job: &str, dir: &Path) -> Value {
    let out = dir.join(job);
    let mut args: Vec<String> = vec![
        "results".into(),
        job.into(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(s.flags(token));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&args);
    report(&out)
}

/// Findings per kind as report.json counts them.
pub fn report_findings(r: &Value) -> BTreeMap<String, u64> {
    let c = &r["counts"];
    let mut m: BTreeMap<String, u64> = c["features"]["per_scanner"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    for (k, v) in [
        ("carved", &c["carve"]["total"]),
        ("yara", &c["yara"]["matches"]),
    ] {
        if v.as_u64().unwrap() > 0 {
            m.insert(k.into(), v.as_u64().unwrap());
        }
    }
    m
}

/// Rows of a table as (attribute values, `data-n`) through the DOM.
fn rows(b: &Browser, css: &str, attrs: &[&str]) -> Vec<(Vec<String>, u64)> {
    let script = format!(
        "var done = arguments[arguments.length - 1];
         done(Array.from(document.querySelectorAll({css:?})).map(function(r){{
           return [{attrs}].map(function(a){{ return r.getAttribute(a) || ''; }})
             .concat([r.querySelector('[data-n]') ? r.querySelector('[data-n]').getAttribute('data-n') : r.getAttribute('data-n')]);
         }}));",
        css = css,
        attrs = attrs
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let v = b.run_async(&script);
    v.as_array()
        .unwrap_or_else(|| panic!("{css}: {v}"))
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            let n = r
                .last()
                .and_then(|x| x.as_str())
                .and_then(|x| x.parse().ok())
                .unwrap_or_else(|| panic!("{css}: no data-n in {r:?}"));
            (
                r[..r.len() - 1]
                    .iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect(),
                n,
            )
        })
        .collect()
}

/// Waits until the job page shows a finished job (it reloads itself).
fn open_job(b: &Browser, base: &str, job: &str) {
    b.go(&format!("{base}/jobs/{job}"));
    b.el("#findings-table");
}

/// A chart in the DOM: its series path has points, both axis labels have
/// text, ticks are drawn.
fn check_line_chart(b: &Browser, id: &str) {
    let v = b.run_async(&format!(
        "var done = arguments[arguments.length - 1];
         var s = document.getElementById({id:?});
         if (!s) {{ done(null); return; }}
         var p = s.querySelector('path.series');
         done({{
           d: p ? p.getAttribute('d') : '',
           labels: Array.from(s.querySelectorAll('.axis-label')).map(function(t){{ return t.textContent; }}),
           ticks: s.querySelectorAll('.tick').length,
           width: s.getBoundingClientRect().width,
           title: s.querySelector('title') ? s.querySelector('title').textContent : '',
           role: s.getAttribute('role')
         }});"
    ));
    assert!(!v.is_null(), "no chart {id}");
    let d = v["d"].as_str().unwrap_or_default();
    assert!(
        d.starts_with('M') && d.matches(" L").count() >= 1,
        "{id}: a path with points: {v}"
    );
    let labels = v["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 2, "{id}: {v}");
    assert!(
        labels
            .iter()
            .all(|l| !l.as_str().unwrap_or_default().is_empty()),
        "{v}"
    );
    assert!(v["ticks"].as_u64().unwrap() >= 4, "{id}: {v}");
    assert!(
        v["width"].as_f64().unwrap() > 100.0,
        "{id} is not drawn: {v}"
    );
    assert_eq!(v["role"], json!("img"));
    assert!(!v["title"].as_str().unwrap_or_default().is_empty());
}

/// The page in the browser holds no untranslated key, and none of the
/// dashboard's English texts (those that differ in French) in its visible
/// text.
pub(crate) fn check_french(b: &Browser, page: &str) {
    let src = b.source();
    assert!(!src.contains('⟦'), "{page}: untranslated key in {src}");
    assert!(src.contains("<html lang=\"fr\""), "{page}: not French");
    let text = b
        .run_async(
            "var done = arguments[arguments.length - 1];
             done(document.body.innerText + ' ' + Array.from(document.querySelectorAll('svg title, svg desc, svg text')).map(function(e){ return e.textContent; }).join(' '));",
        )
        .as_str()
        .unwrap_or_default()
        .to_string();
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-')
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect()
    };
    let page_words = words(&text);
    for (key, en, fr) in trawl_scheduler::web::TEXTS {
        if en == fr || en.chars().count() < 4 || fr.contains(en) {
            continue;
        }
        // An English phrase whose words all appear in sequence.
        let ew = words(en);
        let found = page_words.windows(ew.len()).any(|w| w == ew.as_slice());
        assert!(
            !found,
            "{page}: English text of {key:?} ({en:?}) in the French page: {text}"
        );
    }
}

#[test]
fn counts_agree_with_the_report_in_every_view_in_english_and_french() {
    if !chromium_present("counts_agree_with_the_report_in_every_view_in_english_and_french") {
        return;
    }
    let s = start_secure_with(
        &["--http", "127.0.0.1:0"],
        &["--site", "paris-lab", "--capability", "gpu:none"],
    );
    let base = format!("https://{}", s.sched.http.clone().expect("dashboard"));
    let ivy = s.add_user("ivy", "investigator", &["A"], "1d");
    let olga = s.add_user("olga", "case_officer", &["A"], "1d");
    let image = &small_fixture().image;
    let size = std::fs::metadata(image).unwrap().len();

    // The same image, two shard sizes.
    let j1 = submit(&s, &ivy, image, "1MiB");
    let j2 = submit(&s, &ivy, image, "256KiB");
    let w1 = watch_final(&s, &olga, &j1);
    let w2 = watch_final(&s, &olga, &j2);
    let out = tempfile::tempdir().unwrap();
    let r1 = report_of(&s, &olga, &j1, out.path());
    let r2 = report_of(&s, &olga, &j2, out.path());
    let want = report_findings(&r1);
    assert_eq!(want, report_findings(&r2), "the reports agree");
    assert!(
        want.contains_key("carved") && want.contains_key("yara") && want.contains_key("email"),
        "the fixture has carved files, YARA matches and e-mail addresses: {want:?}"
    );
    for (w, job) in [(&w1, &j1), (&w2, &j2)] {
        assert_eq!(w["state"], json!("completed"), "{w}");
        assert_eq!(
            w["progress"]["findings_final"],
            json!(true),
            "{job}: the final event carries the final counts: {w}"
        );
        let got: BTreeMap<String, u64> =
            serde_json::from_value(w["progress"]["findings"].clone()).unwrap();
        assert_eq!(got, want, "{job}: trawl watch --json's final event");
        let per_type: BTreeMap<String, u64> =
            serde_json::from_value(w["progress"]["carved_per_type"].clone()).unwrap();
        let report_types: BTreeMap<String, u64> =
            serde_json::from_value(r1["counts"]["carve"]["per_type"].clone()).unwrap();
        assert_eq!(per_type, report_types);
    }

    let (_driver, port) = start_driver();
    let downloads = tempfile::tempdir().unwrap();
    let shots = shots();
    for lang in ["en-US", "fr-FR"] {
        let l = &lang[..2];
        let b = Browser::with_lang(port, downloads.path(), lang);
        b.go(&format!("{base}/login"));
        b.el("#token");
        b.screenshot(&shots.join(format!("{l}-login.png")));
        if l == "fr" {
            check_french(&b, "login");
        }
        sign_in(&b, &base, &olga);

        // The job pages: the report's counts, the passes, the charts.
        for job in [&j1, &j2] {
            open_job(&b, &base, job);
            let shown: BTreeMap<String, u64> = rows(&b, "#findings tr", &["data-kind"])
                .into_iter()
                .map(|(a, n)| (a[0].clone(), n))
                .collect();
            assert_eq!(shown, want, "{lang}: job page of {job}");
            let carved: BTreeMap<String, u64> =
                rows(&b, "#carved-types tr[data-kind]", &["data-kind"])
                    .into_iter()
                    .map(|(a, n)| (a[0].clone(), n))
                    .collect();
            let report_types: BTreeMap<String, u64> =
                serde_json::from_value(r1["counts"]["carve"]["per_type"].clone()).unwrap();
            assert_eq!(carved, report_types, "{lang}: carved per type");
            let passes = b.prop("#facts", "innerHTML");
            assert!(
                passes
                    .as_str()
                    .unwrap_or_default()
                    .contains("data-passes=\"2\""),
                "hash + shards: two passes: {passes}"
            );
            assert!(b.find("#eta").is_none(), "no time left on a completed job");
            check_line_chart(&b, "throughput-chart");
            let bars = b.run_async(
                "var done = arguments[arguments.length - 1];
                 done([document.querySelectorAll('#findings-chart rect.bar').length,
                       document.querySelectorAll('#carved-chart rect.bar').length]);",
            );
            assert_eq!(
                bars,
                json!([want.len(), report_types.len()]),
                "one bar per kind and per type"
            );
        }
        // The job page's reload keeps the series (stored with the job).
        b.screenshot(&shots.join(format!("{l}-job.png")));
        if l == "fr" {
            check_french(&b, "job");
        }

        // Cases: both jobs with their facts; filters.
        b.go(&format!("{base}/cases"));
        let cases = b.source();
        assert!(cases.contains(&j1) && cases.contains(&j2), "{cases}");
        b.screenshot(&shots.join(format!("{l}-cases.png")));
        if l == "fr" {
            check_french(&b, "cases");
            assert!(cases.contains("terminé"), "{cases}");
        }
        b.go(&format!("{base}/cases?state=failed"));
        let none = b.source();
        assert!(!none.contains(&j1), "filtered out: {none}");
        b.go(&format!("{base}/cases?sort=job&dir=asc"));
        let src = b.source();
        assert!(
            src.find(&format!("data-job=\"{j1}\"")) < src.find(&format!("data-job=\"{j2}\"")),
            "sorted by job, ascending"
        );

        // Indicators: the page's figures are the CSV's, and twice the
        // report's (two jobs, same month and case).
        b.go(&format!("{base}/indicators"));
        b.el("#indicators");
        let page: BTreeMap<(String, String, String), u64> = rows(
            &b,
            "#indicators tr[data-kind]",
            &["data-month", "data-case", "data-kind"],
        )
        .into_iter()
        .map(|(a, n)| ((a[0].clone(), a[1].clone(), a[2].clone()), n))
        .collect();
        let csv = b
            .run_async(
                "var done = arguments[arguments.length - 1];
                 fetch('/indicators.csv').then(function(r){ return r.text(); }).then(done);",
            )
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some(
                "month,case,kind,findings,images,bytes_processed,jobs_completed,mean_time_to_result_s,p90_time_to_result_s"
            )
        );
        let from_csv: BTreeMap<(String, String, String), u64> = lines
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                (
                    (f[0].to_string(), f[1].to_string(), f[2].to_string()),
                    f[3].parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(page, from_csv, "{lang}: the indicators page and its CSV");
        let month = page.keys().next().unwrap().0.clone();
        for (k, n) in &want {
            assert_eq!(
                page[&(month.clone(), "A".to_string(), k.clone())],
                2 * n,
                "{lang}: indicators for {k}"
            );
        }
        assert_eq!(
            page[&(month.clone(), "A".to_string(), "all".to_string())],
            2 * want.values().sum::<u64>()
        );
        let all_line = csv
            .lines()
            .find(|l| l.contains(",A,all,"))
            .unwrap()
            .split(',')
            .map(String::from)
            .collect::<Vec<_>>();
        assert_eq!(all_line[4], "2", "two images");
        assert_eq!(all_line[5], (2 * size).to_string(), "bytes examined");
        assert_eq!(all_line[6], "2", "two jobs completed");
        for id in ["images-month-chart", "bytes-month-chart", "ttr-month-chart"] {
            let d = b.run_async(&format!(
                "var done = arguments[arguments.length - 1];
                 var s = document.getElementById({id:?});
                 done(s ? [s.querySelectorAll('.axis-label').length, s.querySelectorAll('circle').length] : null);"
            ));
            assert_eq!(d[0], json!(2), "{id}: {d}");
            assert!(d[1].as_u64().unwrap_or(0) >= 1, "{id}: {d}");
        }
        let stacked = b.run_async(
            "var done = arguments[arguments.length - 1];
             done(Array.from(document.querySelectorAll('#findings-month-chart rect.bar')).map(function(r){ return +r.getAttribute('data-value'); }).reduce(function(a, b){ return a + b; }, 0));",
        );
        assert_eq!(
            stacked.as_f64().unwrap() as u64,
            2 * want.values().sum::<u64>(),
            "the stacked bars add up to the findings"
        );
        b.screenshot(&shots.join(format!("{l}-indicators.png")));
        if l == "fr" {
            check_french(&b, "indicators");
        }

        // The capacity map: the site, cores, memory, capabilities, and the
        // bytes of both jobs, each evidence byte once per pass (2).
        b.go(&format!("{base}/pool"));
        b.el("#sites");
        let sites = b.text("#sites");
        assert!(sites.contains("paris-lab"), "{sites}");
        let worker = b.text("table.workers");
        assert!(
            worker.contains("GPU none") || worker.contains("GPU none"),
            "{worker}"
        );
        let bytes = b.run_async(
            "var done = arguments[arguments.length - 1];
             done(Array.from(document.querySelectorAll('[data-bytes]')).map(function(e){ return +e.getAttribute('data-bytes'); }).reduce(function(a, b){ return a + b; }, 0));",
        );
        assert_eq!(
            bytes.as_u64(),
            Some(2 * 2 * size),
            "pool bytes = 2 jobs x 2 passes x evidence size"
        );
        b.screenshot(&shots.join(format!("{l}-pool.png")));
        if l == "fr" {
            check_french(&b, "pool");
            assert!(worker.contains("actif"), "{worker}");
            // A job that does not exist: explained in French, a link
            // back, the sign-out button.
            b.go(&format!("{base}/jobs/J999999"));
            b.el("#back");
            check_french(&b, "not found");
            assert!(b.source().contains("Retour aux affaires"));
            assert!(b.source().contains("action=\"/logout\""));
        }
    }
}

/// Issue 20: the job page links its top features and YARA hits to their
/// files, and the files page lists, searches and filters the listing — in
/// a real headless Chromium, against a job on a FAT image.
#[test]
fn files_page_lists_searches_and_links_findings_to_their_files() {
    let test = "files_page_lists_searches_and_links_findings_to_their_files";
    if !chromium_present(test) {
        return;
    }
    for t in ["mkfs.vfat", "mcopy", "mdel"] {
        if !crate::common::have(t) {
            trawl_fixtures::skip(test, t);
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let fat = dir.path().join("fat.img");
    let sh = |cmd: &mut std::process::Command| {
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    sh(std::process::Command::new("mkfs.vfat")
        .args(["-F", "16", "-C"])
        .arg(&fat)
        .arg("20480"));
    let put = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        sh(std::process::Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&fat)
            .arg(&p)
            .arg(format!("::/{name}")));
    };
    // The same address twice (a top feature), a rule's string.
    put(
        "MAIL.TXT",
        b"to: carol.files@dash-example.org\ncc: carol.files@dash-example.org\nDASH-FILES-MARKER\n",
    );
    put("OTHER.TXT", b"nothing to see\n");
    put("OLD.TXT", b"deleted text\n");
    sh(std::process::Command::new("mdel")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&fat)
        .arg("::/OLD.TXT"));
    let rules = dir.path().join("r.yar");
    std::fs::write(
        &rules,
        "rule dash_marker { strings: $a = \"DASH-FILES-MARKER\" condition: $a }\n",
    )
    .unwrap();
    let s = start_secure_with(&["--http", "127.0.0.1:0"], &[]);
    let base = format!("https://{}", s.sched.http.clone().expect("dashboard"));
    let ivy = s.add_user("ivy", "investigator", &["A"], "1d");
    let mut args: Vec<String> = vec![
        "submit".into(),
        fat.display().to_string(),
        "--case".into(),
        "A".into(),
        "--analyses".into(),
        "files,features,yara".into(),
        "--rules".into(),
        rules.display().to_string(),
    ];
    args.extend(s.flags(&ivy));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_ok(&a);
    let job = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let w = watch_final(&s, &ivy, &job);
    assert_eq!(w["state"], json!("completed"), "{w}");

    let (_driver, port) = start_driver();
    let downloads = tempfile::tempdir().unwrap();
    let b = crate::dashboard::Browser::new(port, downloads.path());
    sign_in(&b, &base, &ivy);
    open_job(&b, &base, &job);
    // The top feature and the YARA hit link to MAIL.TXT's entry.
    let link = |css: &str| {
        b.run_async(&format!(
            "var done = arguments[arguments.length - 1];
             var a = document.querySelector({css:?});
             done(a ? [a.textContent, a.getAttribute('href')] : null);"
        ))
    };
    let want = json!(["MAIL.TXT", format!("/jobs/{job}/files?q=MAIL.TXT")]);
    assert_eq!(link("#top-features a"), want);
    assert_eq!(link("#yara-hits a"), want);
    // The files page: every entry, then the search and a filter.
    b.click("#files-link");
    b.el("#files");
    let count = |b: &crate::dashboard::Browser| b.text("#files-count");
    let all = count(&b);
    let paths = |b: &crate::dashboard::Browser| -> Vec<String> {
        b.run_async(
            "var done = arguments[arguments.length - 1];
             done(Array.from(document.querySelectorAll('#files tr td:first-child')).map(function(t){ return t.textContent; }));",
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
    };
    let listed = paths(&b);
    assert!(listed.contains(&"MAIL.TXT".to_string()), "{listed:?}");
    assert!(listed.contains(&"OTHER.TXT".to_string()), "{listed:?}");
    b.go(&format!("{base}/jobs/{job}/files?q=mail.txt"));
    b.el("#files");
    assert_eq!(paths(&b), ["MAIL.TXT"]);
    b.go(&format!("{base}/jobs/{job}/files?show=deleted"));
    b.el("#files");
    let deleted = paths(&b);
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(deleted[0].ends_with("LD.TXT"), "{deleted:?}");
    assert_ne!(count(&b), all);
    // Another case's user sees nothing of it.
    let other = s.add_user("bob", "investigator", &["B"], "1d");
    let b2 = crate::dashboard::Browser::new(port, downloads.path());
    sign_in(&b2, &base, &other);
    b2.go(&format!("{base}/jobs/{job}/files"));
    assert!(!b2.source().contains("MAIL.TXT"));
}
