//! Issue 22 in the dashboard: a real initialised scheduler with its
//! dashboard and the lab's index, driven by a headless Chromium. Two cases
//! share an indicator; A's officer sees the link (graph and table), then
//! an alert raised by a flash published after the jobs arrive in the page
//! and its header badge without a reload; marks it seen and dismisses it
//! with a reason (audited); the pages are French for a French browser; an
//! unrelated case's officer sees no link and no alert; an analyst (no
//! case) signs in and reaches the flashes.

use crate::common::{planted_image, poll_until};
use crate::dashboard::{Browser, chromium_present, sign_in, start_driver};
use crate::dashboard_counts::check_french;
use crate::security::{as_user, last_line, start_secure_with};
use serde_json::{Value, json};
use std::path::PathBuf;

fn shots() -> Option<PathBuf> {
    std::env::var_os("TRAWL_SCREENSHOTS").map(PathBuf::from)
}

const SHARED: &str = "joe@ab-shared-gang.net";
const FLASHED: &str = "a-flash-target.net";

/// A POST of a form from the page's own origin: (status, body).
fn post(b: &Browser, path: &str, body: &str) -> (u64, String) {
    let v = b.run_async(&format!(
        "var done = arguments[arguments.length - 1];
         fetch({path:?}, {{method: 'POST', redirect: 'manual', headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: {body:?}}})
           .then(r => r.text().then(t => done([r.status, t])));"
    ));
    (
        v[0].as_u64().unwrap_or(0),
        v[1].as_str().unwrap_or_default().to_string(),
    )
}

fn csrf_of(b: &Browser) -> String {
    b.prop("input[name=csrf]", "value")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn links_and_live_alerts_in_the_dashboard_under_need_to_know() {
    if !chromium_present("links_and_live_alerts_in_the_dashboard_under_need_to_know") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sched.toml");
    std::fs::write(&cfg, "[intel]\n").unwrap();
    let s = start_secure_with(
        &["--config", cfg.to_str().unwrap(), "--http", "127.0.0.1:0"],
        &[],
    );
    let base = format!("https://{}", s.sched.http.clone().expect("dashboard"));
    let inv = s.add_user("ivy", "investigator", &["A", "B", "D"], "1d");
    let off_a = s.add_user("officer-a", "case_officer", &["A"], "1d");
    let _off_b = s.add_user("officer-b", "case_officer", &["B"], "1d");
    let off_d = s.add_user("officer-d", "case_officer", &["D"], "1d");
    let analyst = s.add_user("ana", "analyst", &[], "1d");

    let contents = [
        ("A", vec![SHARED, "alice@a-only-case.org", FLASHED]),
        ("B", vec![SHARED, "bob@b-only-case.org"]),
        ("D", vec!["dave@d-only-case.org"]),
    ];
    let mut jobs = Vec::new();
    for (case, tokens) in &contents {
        let img = planted_image(s.dir.path(), &format!("{case}.dd"), tokens);
        let (code, out, err) = as_user(
            &s,
            &inv,
            &[
                "submit",
                img.to_str().unwrap(),
                "--case",
                case,
                "--analyses",
                "features",
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        let job = last_line(out.as_bytes());
        let (code, _, err) = as_user(&s, &inv, &["watch", &job]);
        assert_eq!(code, Some(0), "{err}");
        jobs.push(job);
    }
    // the link is raised once B's job is indexed
    poll_until("the A-B link", 30, || {
        let (_, out, _) = as_user(&s, &off_a, &["links", "--case", "A", "--json"]);
        out.contains(SHARED).then_some(())
    });

    let (_driver, port) = start_driver();
    let downloads = tempfile::tempdir().unwrap();
    let b = Browser::new(port, downloads.path());
    sign_in(&b, &base, &off_a);
    // the case list leads to the case's links
    b.click("a.case-links");
    poll_until("the links page", 10, || {
        b.url().contains("/links?case=A").then_some(())
    });

    // the links: the graph and its table
    b.el("svg#links-graph[role=img]");
    let graph = b.run_async(
        "var done = arguments[arguments.length - 1];
         var s = document.querySelector('svg#links-graph');
         done([s.querySelector('title').textContent,
               Array.from(s.querySelectorAll('g.node')).map(function(g){ return g.getAttribute('data-key'); }),
               s.querySelectorAll('line.edge').length]);",
    );
    assert!(!graph[0].as_str().unwrap_or_default().is_empty(), "{graph}");
    let keys: Vec<&str> = graph[1]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for k in [
        "A",
        "B",
        &format!("email:{SHARED}"),
        "domain:ab-shared-gang.net",
    ] {
        assert!(keys.contains(&k), "no node {k} in {keys:?}");
    }
    assert!(!keys.iter().any(|k| k.contains('D')), "{keys:?}");
    assert_eq!(graph[2], json!(4), "{graph}");
    let table = b.text("table#links");
    assert!(table.contains(SHARED), "{table}");
    assert!(table.contains("officer-b"), "{table}");
    let page = b.source();
    assert!(
        !page.contains(&jobs[1]),
        "B's job shown to A's officer: {page}"
    );
    assert!(!page.contains("bob@b-only-case.org"), "{page}");
    if let Some(d) = shots() {
        b.screenshot(&d.join("en-links.png"));
    }

    // the alerts: none yet; the badge gets its count from the events
    b.go(&format!("{base}/alerts"));
    b.el("#no-alerts");
    poll_until("the badge's first count", 20, || {
        (b.prop("#alerts-badge", "textContent") == json!("0")).then_some(())
    });
    assert_eq!(b.prop("#alerts-badge", "hidden"), json!(true));
    // a mark on the page: a reload would wipe it
    b.run_async("var done = arguments[arguments.length - 1]; window.trawlMark = 42; done(1);");

    // the analyst publishes a flash: A's job holds its indicator
    let (code, out, err) = as_user(
        &s,
        &analyst,
        &[
            "flash",
            "publish",
            "--title",
            "Campaign Y",
            "--tlp",
            "amber",
            "--indicator",
            &format!("domain:{FLASHED}"),
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let f: Value = serde_json::from_str(&out).unwrap();
    let flash = f["flash_id"].as_str().unwrap().to_string();
    let past = f["past_alerts"].as_array().unwrap();
    assert_eq!(past.len(), 1, "{out}");
    let alert = past[0]["alert_id"].as_str().unwrap().to_string();

    // the row and the badge arrive without a reload
    let row = format!("tr#alert-{alert}");
    poll_until("the new alert's row", 20, || {
        b.find(&format!("{row}[data-state=new]"))
    });
    poll_until("the badge's new count", 20, || {
        (b.prop("#alerts-badge", "textContent") == json!("1")).then_some(())
    });
    assert_eq!(b.prop("#alerts-badge", "hidden"), json!(false));
    let mark =
        b.run_async("var done = arguments[arguments.length - 1]; done(window.trawlMark || 0);");
    assert_eq!(mark, json!(42), "the page was reloaded");
    let text = b.text(&row);
    for want in ["Campaign Y", "TLP:AMBER", &flash, &jobs[0], FLASHED, "new"] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    // A's officer reads A: the job is a link
    b.el(&format!("{row} a.job[href='/jobs/{}']", jobs[0]));
    if let Some(d) = shots() {
        b.screenshot(&d.join("en-alerts.png"));
    }

    // refusals: a forged form, an unknown alert, a dismissal without reason
    let csrf = csrf_of(&b);
    let (st, _) = post(&b, &format!("/alerts/{alert}/seen"), "csrf=forged");
    assert_eq!(st, 403);
    let (st, body) = post(&b, "/alerts/AL999999/seen", &format!("csrf={csrf}"));
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("No alert with this id"), "{body}");
    let (st, body) = post(&b, "/alerts/%00%01/seen", &format!("csrf={csrf}"));
    assert_eq!(st, 404, "{body}");
    let (st, body) = post(
        &b,
        &format!("/alerts/{alert}/dismiss"),
        &format!("csrf={csrf}&reason=+"),
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("needs a reason"), "{body}");
    assert!(b.find(&format!("{row}[data-state=new]")).is_some());

    // seen, then dismissed with a reason, through the page's forms
    b.click(&format!("{row} button.mark-seen"));
    poll_until("the alert seen", 10, || {
        b.find(&format!("{row}[data-state=seen]"))
    });
    assert!(b.find(&format!("{row} button.mark-seen")).is_none());
    let reason = "faux positif : domaine de test du labo";
    b.type_in(&format!("{row} input.reason"), reason);
    b.click(&format!("{row} button.dismiss"));
    poll_until("the alert dismissed", 10, || {
        b.find(&format!("{row}[data-state=dismissed]"))
    });
    assert!(b.text(&row).contains(reason));
    poll_until("the badge back to 0", 20, || {
        (b.prop("#alerts-badge", "textContent") == json!("0")).then_some(())
    });
    // once dismissed, seeing it again is refused
    let (st, body) = post(
        &b,
        &format!("/alerts/{alert}/seen"),
        &format!("csrf={csrf}"),
    );
    assert_eq!(st, 409, "{body}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let audit = rt.block_on(crate::security::audit_actions(&s));
    let by = |action: &str| {
        audit
            .iter()
            .filter(|e| e.action == action && e.actor == "officer-a" && e.target == alert)
            .collect::<Vec<_>>()
    };
    assert_eq!(by("alert.seen").len(), 1, "{audit:?}");
    let d = by("alert.dismiss");
    assert_eq!(d.len(), 1, "{audit:?}");
    assert_eq!(d[0].detail, reason);
    assert_eq!(d[0].case_id, "A");
    assert!(audit.iter().any(|e| e.action == "intel.case_revealed"
        && e.actor == "officer-a"
        && e.case_id == "A"
        && e.target == "B"));
    assert!(
        audit
            .iter()
            .any(|e| e.action == "denied" && e.actor == "officer-a" && e.detail.contains("CSRF")),
        "the forged form was not audited"
    );
    // officers do not see the flashes
    b.go(&format!("{base}/flashes"));
    assert!(b.text("#refusal").contains("analysts"), "{}", b.source());
    assert!(b.find("#nav-flashes").is_none());

    // French
    {
        let fr = Browser::with_lang(port, downloads.path(), "fr-FR");
        sign_in(&fr, &base, &off_a);
        fr.go(&format!("{base}/links?case=A"));
        fr.el("svg#links-graph[role=img]");
        check_french(&fr, "links");
        fr.go(&format!("{base}/alerts"));
        fr.el(&row);
        assert!(fr.text(&row).contains("classée"), "{}", fr.text(&row));
        check_french(&fr, "alerts");
        fr.go(&format!("{base}/alerts?state=bogus"));
        check_french(&fr, "alerts refused");
        if let Some(d) = shots() {
            fr.screenshot(&d.join("fr-alerts.png"));
        }
    }

    // D's officer: no link, no alert, A's links refused (audited)
    {
        let o = Browser::new(port, downloads.path());
        sign_in(&o, &base, &off_d);
        o.go(&format!("{base}/links?case=D"));
        o.el("#no-links");
        assert!(o.find("svg#links-graph").is_none());
        o.go(&format!("{base}/links?case=A"));
        o.el("#refusal");
        let page = o.source();
        assert!(!page.contains(SHARED), "{page}");
        o.go(&format!("{base}/alerts"));
        o.el("#no-alerts");
        assert!(!o.source().contains(&alert));
        let frag = o.run_async(
            "var done = arguments[arguments.length - 1];
             fetch('/alerts?fragment=1').then(r => r.text()).then(done);",
        );
        assert!(
            !frag.as_str().unwrap_or_default().contains(&alert),
            "{frag}"
        );
        poll_until("D's badge", 20, || {
            (o.prop("#alerts-badge", "textContent") == json!("0")).then_some(())
        });
        let audit = rt.block_on(crate::security::audit_actions(&s));
        assert!(
            audit
                .iter()
                .any(|e| e.action == "denied" && e.actor == "officer-d" && e.case_id == "A"),
            "D's refusal was not audited"
        );
        assert!(
            !audit
                .iter()
                .any(|e| e.action == "intel.case_revealed" && e.actor == "officer-d"),
            "a case was revealed to D's officer"
        );
    }

    // the analyst: no case, signs in; no jobs, no case links; the alerts
    // and the flashes with their progress
    {
        let a = Browser::new(port, downloads.path());
        sign_in(&a, &base, &analyst);
        assert!(a.find("a.job").is_none(), "{}", a.source());
        a.go(&format!("{base}/links"));
        a.el("#no-case");
        a.go(&format!("{base}/alerts"));
        a.el(&row);
        assert!(
            a.find(&format!("{row} a.job")).is_none(),
            "analysts get no job link"
        );
        a.go(&format!("{base}/flashes"));
        let r = a.text(&format!("tr#flash-{flash}"));
        assert!(r.contains("Campaign Y") && r.contains("TLP:AMBER"), "{r}");
        a.go(&format!("{base}/pool"));
        a.el("table.workers");
    }
}
