//! Issue 22: the lab's memory. A real initialised scheduler and worker;
//! four cases whose images hold planted indicators, three of them sharing
//! some; the links are exactly the planted overlaps, under need-to-know.

use crate::common::*;
use crate::security::{Secure, as_user, last_line, start_secure_with};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CARD: &str = "4111111111111111";

/// What each case's image holds.
fn planted(case: &str) -> Vec<&'static str> {
    let common = [
        // in every case: common (seen in more than 2 cases), no link
        "www.everywhere-cdn.com",
    ];
    let mut v: Vec<&str> = common.to_vec();
    v.extend(match case {
        "A" => vec![
            "alice@a-only-case.org",
            "GB82WEST12345698765432",
            "joe@ab-shared-gang.net",
            "http://ac-shared-c2.com/gate.php",
            "card 4111 1111 1111 1111 exp 12/29",
            "stoplisted-update.com",
            "192.168.1.10",
        ],
        "B" => vec![
            "bob@b-only-case.org",
            "joe@ab-shared-gang.net",
            "45.33.32.156",
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
            "stoplisted-update.com",
            "192.168.1.10",
        ],
        "C" => vec![
            "carol@c-only-case.org",
            "FR1420041010050500013M02606",
            "45.33.32.156",
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
            "http://ac-shared-c2.com/gate.php",
            "card 4111 1111 1111 1111 exp 12/29",
        ],
        _ => vec!["dave@d-only-case.org", "DE89370400440532013000"],
    });
    v
}

/// The links each case must see: (other case, kind, value); card numbers
/// as `ccn_hmac` with any value.
fn expected(case: &str) -> BTreeSet<(String, String, String)> {
    let ab = [
        ("email", "joe@ab-shared-gang.net"),
        ("domain", "ab-shared-gang.net"),
    ];
    let bc = [
        ("ipv4", "45.33.32.156"),
        ("bitcoin", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
    ];
    let ac = [
        ("url", "http://ac-shared-c2.com/gate.php"),
        ("domain", "ac-shared-c2.com"),
        ("ccn_hmac", "*"),
    ];
    let set = |other: &str, l: &[(&str, &str)]| {
        l.iter()
            .map(|(k, v)| (other.to_string(), k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let mut out = BTreeSet::new();
    match case {
        "A" => {
            out.extend(set("B", &ab));
            out.extend(set("C", &ac));
        }
        "B" => {
            out.extend(set("A", &ab));
            out.extend(set("C", &bc));
        }
        "C" => {
            out.extend(set("A", &ac));
            out.extend(set("B", &bc));
        }
        _ => {}
    }
    out
}

fn links_of(json: &str) -> BTreeSet<(String, String, String)> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let kind = l["indicator"]["kind"].as_str().unwrap().to_string();
            let value = l["indicator"]["value"].as_str().unwrap();
            let value = if kind == "ccn_hmac" {
                assert!(
                    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{value}"
                );
                "*".to_string()
            } else {
                value.to_string()
            };
            (l["other_case"].as_str().unwrap().to_string(), kind, value)
        })
        .collect()
}

#[test]
fn links_are_exactly_the_planted_overlaps_under_need_to_know() {
    let dir = tempfile::tempdir().unwrap();
    let stop = dir.path().join("stop.txt");
    std::fs::write(&stop, "# the lab's stop list\nstoplisted-update.com\n").unwrap();
    let cfg = dir.path().join("sched.toml");
    std::fs::write(
        &cfg,
        format!(
            "[intel]\nstop_list = {:?}\ncommon_min_cases = 2\ncommon_share = 0.0\n",
            stop.display().to_string()
        ),
    )
    .unwrap();
    let s = start_secure_with(&["--config", cfg.to_str().unwrap()], &[]);
    let off: Vec<(String, String)> = ["A", "B", "C", "D"]
        .iter()
        .map(|c| {
            let name = format!("officer-{}", c.to_lowercase());
            let t = s.add_user(&name, "case_officer", &[c], "1d");
            (c.to_string(), t)
        })
        .collect();
    let tok = |case: &str| off.iter().find(|(c, _)| c == case).unwrap().1.clone();
    let inv_a = s.add_user("ivy", "investigator", &["A", "B", "C", "D"], "1d");
    let analyst = s.add_user("ana", "analyst", &[], "1d");

    // one job per case, features only, submitted by the investigator
    let mut jobs = Vec::new();
    for case in ["A", "B", "C", "D"] {
        let img = planted_image(s.dir.path(), &format!("{case}.dd"), &planted(case));
        let (code, out, err) = as_user(
            &s,
            &inv_a,
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
        let (code, _, err) = as_user(&s, &inv_a, &["watch", &job]);
        assert_eq!(code, Some(0), "{err}");
        jobs.push(job);
    }

    // links are raised right after each job completes: wait for the last
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, out, err) = as_user(&s, &tok("C"), &["links", "--case", "C", "--json"]);
        assert_eq!(code, Some(0), "{err}");
        if links_of(&out) == expected("C") || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    for case in ["A", "B", "C", "D"] {
        let (code, out, err) = as_user(&s, &tok(case), &["links", "--case", case, "--json"]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(
            links_of(&out),
            expected(case),
            "links of case {case}: {out}"
        );
        // contacts: the other case's officer, and nothing of its jobs
        let v: Value = serde_json::from_str(&out).unwrap();
        for l in v.as_array().unwrap() {
            let other = l["other_case"].as_str().unwrap();
            assert_eq!(
                l["contacts"],
                serde_json::json!([format!("officer-{}", other.to_lowercase())]),
                "{l}"
            );
            assert!(
                l.get("other_jobs").is_none(),
                "jobs shown to a case officer: {l}"
            );
            assert!(!out.contains(CARD), "card number in clear: {out}");
        }
    }
    // the human form names the other case and its contact
    let (_, text, _) = as_user(&s, &tok("A"), &["links", "--case", "A"]);
    assert!(
        text.contains("shares 2 indicator(s) with case B (contact: officer-b)"),
        "{text}"
    );

    // D's officer: nothing of A, and A's links refused
    let (code, _, err) = as_user(&s, &tok("D"), &["links", "--case", "A", "--json"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("may not read case \"A\""), "{err}");
    // A's officer cannot read B's job: as if it did not exist
    let (code, _, err) = as_user(&s, &tok("A"), &["status", &jobs[1]]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not found"), "{err}");
    // analysts read the index, not case links
    let (code, _, err) = as_user(&s, &analyst, &["links", "--case", "A"]);
    assert_ne!(code, Some(0), "{err}");

    // the admin sees the whole lab, with both sides' jobs
    let (code, out, err) = as_user(&s, &s.admin_token, &["links", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    let n: usize = ["A", "B", "C"].iter().map(|c| expected(c).len()).sum();
    assert_eq!(all.as_array().unwrap().len(), n, "{out}");
    let ab = all
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["case"] == "A" && l["other_case"] == "B")
        .unwrap();
    assert_eq!(ab["own_jobs"], serde_json::json!([jobs[0]]));
    assert_eq!(ab["other_jobs"], serde_json::json!([jobs[1]]));

    // the analyst's look-ups: common indicators say why; an investigator
    // may not look up
    let (code, out, err) = as_user(
        &s,
        &analyst,
        &[
            "index",
            "lookup",
            "domain",
            "WWW.Everywhere-CDN.com.",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["indicator"]["value"], "www.everywhere-cdn.com");
    assert_eq!(v["common"], true);
    assert_eq!(v["common_reason"], "seen in more than 2 cases");
    assert_eq!(v["sightings"].as_array().unwrap().len(), 4, "{out}");
    let (_, out, _) = as_user(
        &s,
        &analyst,
        &[
            "index",
            "lookup",
            "domain",
            "stoplisted-update.com",
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["common_reason"], "on the lab's stop list", "{out}");
    let (_, out, _) = as_user(
        &s,
        &analyst,
        &["index", "lookup", "ccn_hmac", CARD, "--json"],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let cases: Vec<&str> = v["sightings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["case"].as_str().unwrap())
        .collect();
    assert_eq!(cases, ["A", "C"], "{out}");
    let (code, _, err) = as_user(
        &s,
        &inv_a,
        &["index", "lookup", "domain", "ac-shared-c2.com"],
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("may not read the lab's indicator index"),
        "{err}"
    );

    // every case revealed was audited
    let rt = tokio::runtime::Runtime::new().unwrap();
    let audit = rt.block_on(crate::security::audit_actions(&s));
    let revealed: Vec<(String, String, String)> = audit
        .iter()
        .filter(|e| e.action == "intel.case_revealed")
        .map(|e| (e.actor.clone(), e.case_id.clone(), e.target.clone()))
        .collect();
    for (actor, case, other) in [
        ("officer-a", "A", "B"),
        ("officer-a", "A", "C"),
        ("officer-b", "B", "A"),
        ("officer-c", "C", "B"),
        ("chief", "A", "B"),
    ] {
        assert!(
            revealed
                .iter()
                .any(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str()) == (actor, case, other)),
            "no intel.case_revealed for {actor} {case}->{other}: {revealed:?}"
        );
    }
    assert!(
        !revealed.iter().any(|r| r.0 == "officer-d"),
        "D's officer was shown a case: {revealed:?}"
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "intel.lookup" && e.actor == "ana")
    );
    assert!(audit.iter().any(|e| e.action == "intel.link"));
    assert!(
        !audit
            .iter()
            .any(|e| e.target.contains(CARD) || e.detail.contains(CARD)),
        "card number in the audit trail"
    );

    // stopped: no key or value of the index holds the card number
    let data = s.data();
    let Secure {
        dir: _keep,
        sched,
        _worker,
        ..
    } = s;
    drop(sched);
    drop(_worker);
    let db = sled::open(data.join("state.sled")).unwrap();
    let mut trees = 0;
    for name in db.tree_names() {
        if !name.starts_with(b"intel_") {
            continue;
        }
        trees += 1;
        for kv in db.open_tree(&name).unwrap().iter() {
            let (k, v) = kv.unwrap();
            for b in [&k[..], &v[..]] {
                assert!(
                    !b.windows(CARD.len()).any(|w| w == CARD.as_bytes()),
                    "the card number in {}",
                    String::from_utf8_lossy(&name)
                );
            }
        }
    }
    assert!(trees >= 7, "{trees} index trees");
}

/// One HTTP request the webhook receiver got.
#[derive(Debug, Clone)]
struct Hook {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Hook {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver on a loopback port: records every request, answers
/// 200.
fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Hook>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/trawl", l.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            r.read_line(&mut line).unwrap_or(0);
            assert!(line.starts_with("POST /hooks/trawl "), "{line}");
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            g.lock().unwrap().push(Hook { headers, body });
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

fn verify_signature(secret: &[u8], h: &Hook) -> bool {
    use hmac::{KeyInit, Mac};
    let Some(ts) = h.header("x-trawl-timestamp") else {
        return false;
    };
    let Some(sig) = h.header("x-trawl-signature") else {
        return false;
    };
    let mut m = <hmac::Hmac<sha2_hmac::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    m.update(ts.as_bytes());
    m.update(b".");
    m.update(&h.body);
    let want = format!(
        "sha256={}",
        m.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    sig == want
}

/// A child process whose stdout lines are collected.
struct Lines {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_lines(s: &Secure, token: &str, args: &[&str]) -> Lines {
    use std::io::BufRead;
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(s.flags(token));
    let mut child = trawl()
        .args(&all)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            l.lock().unwrap().push(line);
        }
    });
    Lines { child, lines }
}

const MARKER: &str = "ZX-CAMPAIGN-MARKER-7731";

#[test]
fn a_flash_finds_past_sightings_and_retrohunts_the_retained_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let (url, hooks) = webhook_receiver();
    let secret = "lab-webhook-secret-0123456789";
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, secret).unwrap();
    let cfg = dir.path().join("sched.toml");
    std::fs::write(
        &cfg,
        format!(
            "[intel]\nwebhook_url = {url:?}\nwebhook_secret_file = {:?}\n",
            secret_file.display().to_string()
        ),
    )
    .unwrap();
    let s = start_secure_with(&["--config", cfg.to_str().unwrap()], &[]);
    let inv = s.add_user("ivy", "investigator", &["A", "B", "C"], "1d");
    let off_a = s.add_user("officer-a", "case_officer", &["A"], "1d");
    let off_c = s.add_user("officer-c", "case_officer", &["C"], "1d");
    let analyst = s.add_user("ana", "analyst", &[], "1d");

    let contents = [
        ("A", vec!["alice@a-flash-case.org", MARKER]),
        ("B", vec!["bob@b-flash-case.org", "flash-c2-node.net"]),
        ("C", vec!["carol@c-flash-case.org", MARKER]),
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
                "features,hash",
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        let job = last_line(out.as_bytes());
        let (code, _, err) = as_user(&s, &inv, &["watch", &job]);
        assert_eq!(code, Some(0), "{err}");
        jobs.push(job);
    }
    // the watches start before the flash
    let watch_a = spawn_lines(&s, &off_a, &["alerts", "--case", "A", "--watch", "--json"]);
    let watch_c = spawn_lines(&s, &off_c, &["alerts", "--watch", "--json"]);
    std::thread::sleep(Duration::from_millis(500));

    // wait until B's job is indexed (its domain is in the index)
    poll_until("B's indicators indexed", 30, || {
        let (_, out, _) = as_user(
            &s,
            &analyst,
            &["index", "lookup", "domain", "flash-c2-node.net", "--json"],
        );
        let v: Value = serde_json::from_str(&out).ok()?;
        (v["sightings"].as_array()?.len() == 1).then_some(())
    });

    let rules = dir.path().join("campaign.yar");
    std::fs::write(
        &rules,
        format!("rule campaign_x {{ strings: $m = \"{MARKER}\" condition: $m }}\n"),
    )
    .unwrap();
    // malformed requests: clear refusals naming what is wrong
    for (args, want) in [
        (
            vec!["index", "lookup", "colour", "red"],
            "unknown indicator kind",
        ),
        (vec!["index", "lookup", "ipv4", "999.1.1.1"], "ipv4"),
        (
            vec![
                "flash",
                "publish",
                "--title",
                "t",
                "--tlp",
                "purple",
                "--indicator",
                "domain:x.com",
            ],
            "TLP",
        ),
        (
            vec![
                "flash",
                "publish",
                "--title",
                " ",
                "--tlp",
                "red",
                "--indicator",
                "domain:x.com",
            ],
            "title",
        ),
        (
            vec![
                "flash",
                "publish",
                "--title",
                "t",
                "--tlp",
                "red",
                "--indicator",
                "domain:",
            ],
            "needs indicators or YARA rules",
        ),
        (vec!["alert", "seen", "AL999999"], "not found"),
        (
            vec!["flash", "withdraw", "F999999", "--reason", "x"],
            "not found",
        ),
    ] {
        let (code, _, err) = as_user(&s, &analyst, &args);
        assert_ne!(code, Some(0), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (code, _, err) = as_user(&s, &s.admin_token, &["links", "--case", "A/../B"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("bad identifier") || err.contains("invalid"),
        "{err}"
    );
    let bad_rules = dir.path().join("bad.yar");
    std::fs::write(&bad_rules, "rule { nonsense").unwrap();
    let (code, _, err) = as_user(
        &s,
        &analyst,
        &[
            "flash",
            "publish",
            "--title",
            "t",
            "--tlp",
            "red",
            "--rules",
            bad_rules.to_str().unwrap(),
        ],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("flash rules"), "{err}");
    let (_, out, _) = as_user(&s, &analyst, &["flash", "list", "--json"]);
    assert_eq!(out.trim(), "[]", "a refused flash was stored: {out}");
    // investigators may not publish
    let (code, _, err) = as_user(
        &s,
        &inv,
        &[
            "flash",
            "publish",
            "--title",
            "x",
            "--tlp",
            "green",
            "--indicator",
            "domain:x.com",
        ],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("may not publish alert flashes"), "{err}");
    let (code, out, err) = as_user(
        &s,
        &analyst,
        &[
            "flash",
            "publish",
            "--title",
            "Campaign X",
            "--tlp",
            "amber",
            "--indicator",
            "domain:Flash-C2-Node.NET",
            "--rules",
            rules.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let f: Value = serde_json::from_str(&out).unwrap();
    let flash = f["flash_id"].as_str().unwrap().to_string();
    // B's indicator: at once, from the index
    let past = f["past_alerts"].as_array().unwrap();
    assert_eq!(past.len(), 1, "{out}");
    assert_eq!(past[0]["case"], "B");
    assert_eq!(past[0]["job"], jobs[1].as_str());
    // one retrohunt job per retained image
    assert_eq!(f["retro_jobs"].as_array().unwrap().len(), 3, "{out}");

    // the rule alerts: exactly A and C
    let alerts = poll_until("the retrohunt's alerts", 60, || {
        let (_, out, _) = as_user(&s, &analyst, &["alerts", "--json"]);
        let v: Vec<Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (v.iter().filter(|a| a["kind"] == "rule").count() >= 2).then_some(v)
    });
    let rule_cases: BTreeSet<String> = alerts
        .iter()
        .filter(|a| a["kind"] == "rule")
        .map(|a| a["case"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        rule_cases,
        ["A", "C"].map(String::from).into(),
        "{alerts:?}"
    );
    for a in alerts.iter().filter(|a| a["kind"] == "rule") {
        assert_eq!(a["rules"], serde_json::json!(["campaign_x"]), "{a}");
        assert_eq!(a["hits"], 1, "{a}");
    }
    // every retrohunt finished, none hit B
    std::thread::sleep(Duration::from_secs(2));
    let (_, out, _) = as_user(&s, &analyst, &["flash", "list", "--json"]);
    let fl: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(fl[0]["retro"]["done"], 3, "{out}");
    assert_eq!(fl[0]["retro"]["hits"], 2, "{out}");

    // A's officer sees only A's alert; the watches printed theirs
    let (_, out, _) = as_user(&s, &off_a, &["alerts", "--json"]);
    let mine: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(mine.len(), 1, "{out}");
    assert_eq!(mine[0]["case"], "A");
    let alert_a = mine[0]["alert_id"].as_str().unwrap().to_string();
    poll_until("A's watch", 20, || {
        let l = watch_a.lines.lock().unwrap();
        l.iter().any(|x| x.contains(&alert_a)).then_some(())
    });
    poll_until("C's watch", 20, || {
        let l = watch_c.lines.lock().unwrap();
        let v: Vec<Value> = l
            .iter()
            .filter_map(|x| serde_json::from_str(x).ok())
            .collect();
        (v.iter().any(|a| a["case"] == "C" && a["kind"] == "rule")).then_some(())
    });
    assert!(
        !watch_c
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|x| x.contains("\"case\":\"A\"")),
        "C's officer saw A's alert"
    );

    // the webhook got each alert once, signed
    let got = poll_until("webhook deliveries", 30, || {
        let g = hooks.lock().unwrap();
        (g.len() >= 3).then(|| g.clone())
    });
    std::thread::sleep(Duration::from_secs(1));
    let got_now = hooks.lock().unwrap().clone();
    assert_eq!(got_now.len(), got.len(), "a delivery came twice");
    let mut ids = BTreeSet::new();
    for h in &got {
        assert!(
            verify_signature(secret.as_bytes(), h),
            "bad signature: {h:?}"
        );
        let v: Value = serde_json::from_slice(&h.body).unwrap();
        assert_eq!(v["flash"]["id"], flash.as_str());
        assert_eq!(v["flash"]["title"], "Campaign X");
        assert!(
            ids.insert(v["alert_id"].as_str().unwrap().to_string()),
            "{v}"
        );
        assert_eq!(h.header("x-trawl-delivery"), v["alert_id"].as_str());
    }
    assert_eq!(ids.len(), 3);
    // a forged body fails the check
    let mut forged = got[0].clone();
    forged.body.extend_from_slice(b" ");
    assert!(!verify_signature(secret.as_bytes(), &forged));

    // seen, then dismissed with a reason; not by another case's officer
    let (code, _, err) = as_user(&s, &off_c, &["alert", "seen", &alert_a]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not found"), "{err}");
    let (code, out, err) = as_user(&s, &off_a, &["alert", "seen", &alert_a, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"state\":\"seen\""), "{out}");
    let (code, _, err) = as_user(&s, &off_a, &["alert", "dismiss", &alert_a, "--reason", " "]);
    assert_ne!(code, Some(0));
    assert!(err.contains("needs a reason"), "{err}");
    let (code, out, err) = as_user(
        &s,
        &off_a,
        &[
            "alert",
            "dismiss",
            &alert_a,
            "--reason",
            "lab test image, not the campaign",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("dismissed"), "{out}");

    // a new job holding the marker: checked against the flash's rules
    let img = planted_image(s.dir.path(), "A2.dd", &["new evidence", MARKER]);
    let (code, out, err) = as_user(
        &s,
        &inv,
        &[
            "submit",
            img.to_str().unwrap(),
            "--case",
            "A",
            "--analyses",
            "hash",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let job2 = last_line(out.as_bytes());
    poll_until("the new job's flash check", 60, || {
        let (_, out, _) = as_user(&s, &off_a, &["alerts", "--json"]);
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|a| a["job"] == job2.as_str() && a["kind"] == "rule")
            .then_some(())
    });

    // investigators cannot use the flash's rule set
    let (code, _, _) = as_user(&s, &inv, &["rules", "list", "--json"]);
    assert_eq!(code, Some(0));
    let (_, out, _) = as_user(&s, &inv, &["rules", "list", "--json"]);
    assert!(!out.contains("flash-"), "{out}");
    let (code, _, err) = as_user(
        &s,
        &inv,
        &[
            "submit",
            img.to_str().unwrap(),
            "--case",
            "A",
            "--analyses",
            "yara",
            "--ruleset",
            &format!("flash-{flash}"),
        ],
    );
    assert_ne!(code, Some(0), "an investigator ran the flash's rules");
    assert!(err.contains("not found"), "{err}");

    // audited
    let rt = tokio::runtime::Runtime::new().unwrap();
    let audit = rt.block_on(crate::security::audit_actions(&s));
    for action in [
        "flash.publish",
        "alert.raise",
        "alert.seen",
        "alert.dismiss",
    ] {
        assert!(
            audit.iter().any(|e| e.action == action),
            "no {action} in the audit trail"
        );
    }
    assert!(
        audit
            .iter()
            .any(|e| e.action == "intel.case_revealed" && e.actor == "ana" && e.case_id == "B"),
        "the flash's past sightings named case B unaudited"
    );
    let d = audit.iter().find(|e| e.action == "alert.dismiss").unwrap();
    assert_eq!(d.detail, "lab test image, not the campaign");
    assert_eq!(d.actor, "officer-a");
    drop(watch_a);
    drop(watch_c);
}

/// The venv python `scripts/setup.sh` installs the sharing validators in.
fn sharing_python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = root.join("target/tools-venv/bin/python");
    let ok = py.is_file()
        && std::process::Command::new(&py)
            .args(["-c", "import stix2validator, pymisp, misp_stix_converter"])
            .output()
            .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

fn check_sharing(py: &Path, kind: &str, path: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_sharing.py");
    let o = std::process::Command::new(py)
        .arg(script)
        .arg(kind)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "check_sharing {kind} {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    println!("{}", String::from_utf8_lossy(&o.stdout).trim());
}

fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(p).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn sharing_exports_pass_the_validators_and_keep_to_their_tlp() {
    let s = start_secure_with(&[], &[]);
    let inv = s.add_user("ivy", "investigator", &["A"], "1d");
    let off = s.add_user("officer-a", "case_officer", &["A"], "1d");
    let off_b = s.add_user("officer-b", "case_officer", &["B"], "1d");
    let analyst = s.add_user("ana", "analyst", &[], "1d");
    let img = planted_image(
        s.dir.path(),
        "A.dd",
        &[
            "alice@share-case.org",
            "http://share-c2-panel.com/admin.php?id=7",
            "45.33.32.156",
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
            "GB82WEST12345698765432",
            "card 4111 1111 1111 1111 exp 12/29",
            "red-only-c2.net",
        ],
    );
    let (code, out, err) = as_user(
        &s,
        &inv,
        &[
            "submit",
            img.to_str().unwrap(),
            "--case",
            "A",
            "--analyses",
            "features",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let job = last_line(out.as_bytes());
    let (code, _, err) = as_user(&s, &inv, &["watch", &job]);
    assert_eq!(code, Some(0), "{err}");
    // a red flash names one of A's domains: it must not leave below red
    let rules = s.dir.path().join("r.yar");
    std::fs::write(
        &rules,
        "rule red_campaign { strings: $a = \"red-only-c2\" condition: $a }\n",
    )
    .unwrap();
    let (code, out, err) = as_user(
        &s,
        &analyst,
        &[
            "flash",
            "publish",
            "--title",
            "Red campaign",
            "--tlp",
            "red",
            "--indicator",
            "domain:red-only-c2.net",
            "--rules",
            rules.to_str().unwrap(),
            "--no-retrohunt",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let flash = last_line(out.as_bytes());

    let out_dir = tempfile::tempdir().unwrap();
    let o = |n: &str| out_dir.path().join(n);
    let export = |tok: &str, args: &[&str]| -> (Option<i32>, Value, String) {
        let mut a = vec!["export"];
        a.extend_from_slice(args);
        a.push("--json");
        let (code, out, err) = as_user(&s, tok, &a);
        (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
    };
    // wait for the job's indicators to be indexed
    poll_until("A's index", 30, || {
        let (code, v, _) = export(
            &off,
            &[
                "stix",
                "--job",
                &job,
                "--tlp",
                "amber",
                "--out",
                o("probe.json").to_str().unwrap(),
            ],
        );
        let _ = std::fs::remove_file(o("probe.json"));
        (code == Some(0) && v["objects"].as_u64().unwrap_or(0) > 0).then_some(())
    });

    let (code, v, err) = export(
        &off,
        &[
            "stix",
            "--case",
            "A",
            "--tlp",
            "amber",
            "--out",
            o("a.stix.json").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["sha256"], sha256_file(&o("a.stix.json")));
    assert!(v["withheld"].as_u64().unwrap() >= 1, "{v}");
    let bundle = std::fs::read_to_string(o("a.stix.json")).unwrap();
    for present in [
        "alice@share-case.org",
        "share-c2-panel.com",
        "45.33.32.156",
        "TLP:AMBER",
    ] {
        assert!(bundle.contains(present), "{present} not in the bundle");
    }
    for absent in ["red-only-c2.net", "4111111111111111", "ccn", "TLP:RED"] {
        assert!(!bundle.contains(absent), "{absent} left in an amber bundle");
    }
    let (code, _, err) = export(
        &off,
        &[
            "misp",
            "--case",
            "A",
            "--tlp",
            "green",
            "--out",
            o("a.misp.json").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let event = std::fs::read_to_string(o("a.misp.json")).unwrap();
    for present in [
        "GB82WEST12345698765432",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        "tlp:green",
    ] {
        assert!(event.contains(present), "{present} not in the event");
    }
    assert!(!event.contains("red-only-c2.net") && !event.contains("4111111111111111"));
    let (code, v, err) = export(
        &off,
        &[
            "misp-feed",
            "--case",
            "A",
            "--tlp",
            "green",
            "--out",
            o("feed").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        o("feed/manifest.json").is_file() && o("feed/hashes.csv").is_file(),
        "{v}"
    );
    let (code, _, err) = export(
        &off,
        &[
            "stix",
            "--job",
            &job,
            "--tlp",
            "green",
            "--out",
            o("job.stix.json").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    // the flash: whole at red (rules as YARA patterns), nothing of it at green
    let (code, v, err) = export(
        &analyst,
        &[
            "stix",
            "--flash",
            &flash,
            "--tlp",
            "red",
            "--out",
            o("flash.stix.json").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let fb = std::fs::read_to_string(o("flash.stix.json")).unwrap();
    assert!(
        fb.contains("red-only-c2.net")
            && fb.contains("\"pattern_type\": \"yara\"")
            && fb.contains("red_campaign"),
        "{v}"
    );
    let (code, v, err) = export(
        &analyst,
        &[
            "stix",
            "--flash",
            &flash,
            "--tlp",
            "green",
            "--out",
            o("flash-green.stix.json").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let fg = std::fs::read_to_string(o("flash-green.stix.json")).unwrap();
    assert!(
        !fg.contains("red-only-c2.net") && !fg.contains("red_campaign"),
        "{fg}"
    );
    assert_eq!(v["withheld"], 1, "{v}");

    // refused: no TLP, an investigator, another case's officer, a case
    // officer asking for a flash; nothing overwritten
    let (code, _, err) = as_user(
        &s,
        &off,
        &[
            "export",
            "stix",
            "--case",
            "A",
            "--out",
            o("x.json").to_str().unwrap(),
        ],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("--tlp"), "{err}");
    let (code, _, err) = export(
        &inv,
        &[
            "stix",
            "--case",
            "A",
            "--tlp",
            "amber",
            "--out",
            o("inv.json").to_str().unwrap(),
        ],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("may not export"), "{err}");
    let (code, _, err) = export(
        &off_b,
        &[
            "stix",
            "--job",
            &job,
            "--tlp",
            "amber",
            "--out",
            o("b.json").to_str().unwrap(),
        ],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("not found"), "{err}");
    let (code, _, err) = export(
        &off,
        &[
            "stix",
            "--flash",
            &flash,
            "--tlp",
            "red",
            "--out",
            o("f.json").to_str().unwrap(),
        ],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("may not export flash"), "{err}");
    let (code, _, err) = export(
        &off,
        &[
            "stix",
            "--case",
            "A",
            "--tlp",
            "amber",
            "--out",
            o("a.stix.json").to_str().unwrap(),
        ],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("exists"), "{err}");
    assert!(!o("inv.json").exists() && !o("b.json").exists());

    // audited with the digest
    let rt = tokio::runtime::Runtime::new().unwrap();
    let audit = rt.block_on(crate::security::audit_actions(&s));
    let e = audit
        .iter()
        .find(|e| e.action == "export.stix" && e.target == "A")
        .expect("export.stix audited");
    assert!(
        e.detail.contains(&sha256_file(&o("a.stix.json"))),
        "{}",
        e.detail
    );
    assert_eq!(e.actor, "officer-a");
    assert!(audit.iter().any(|e| e.action == "export.misp_feed"));
    assert!(
        audit
            .iter()
            .any(|e| e.action == "denied" && e.actor == "ivy")
    );

    // the reference tools
    match sharing_python() {
        Some(py) => {
            for f in [
                "a.stix.json",
                "job.stix.json",
                "flash.stix.json",
                "flash-green.stix.json",
            ] {
                check_sharing(&py, "stix", &o(f));
            }
            check_sharing(&py, "misp", &o("a.misp.json"));
            check_sharing(&py, "feed", &o("feed"));
        }
        None => trawl_fixtures::skip(
            "sharing_exports",
            "stix2-validator, pymisp, misp-stix (scripts/setup.sh installs them)",
        ),
    }
}

/// Tasks of a job as `trawl status --tasks --json` lists them.
fn tasks_of(s: &Secure, token: &str, job: &str) -> Vec<Value> {
    let (_, out, _) = as_user(s, token, &["status", job, "--tasks", "--json"]);
    serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| v["tasks"].as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn retrohunt_gives_its_slots_back_to_urgent_casework() {
    // every task takes 6 s on the one worker (2 slots); heartbeats every 2 s
    let s = start_secure_with(&[], &["--fault-delay-ms", "6000"]);
    let inv = s.add_user("ivy", "investigator", &["A"], "1d");
    let analyst = s.add_user("ana", "analyst", &[], "1d");
    let img = planted_image(s.dir.path(), "A.dd", &[MARKER]);
    let mut big = std::fs::read(&img).unwrap();
    big.resize(1 << 20, 0);
    std::fs::write(&img, &big).unwrap();
    let (code, out, err) = as_user(
        &s,
        &inv,
        &[
            "submit",
            img.to_str().unwrap(),
            "--case",
            "A",
            "--analyses",
            "hash",
            "--shard-size",
            "256KiB",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let job = last_line(out.as_bytes());
    let (code, _, err) = as_user(&s, &inv, &["watch", &job]);
    assert_eq!(code, Some(0), "{err}");
    let rules = s.dir.path().join("m.yar");
    std::fs::write(
        &rules,
        format!("rule m {{ strings: $a = \"{MARKER}\" condition: $a }}\n"),
    )
    .unwrap();
    let (code, out, err) = as_user(
        &s,
        &analyst,
        &[
            "flash",
            "publish",
            "--title",
            "M",
            "--tlp",
            "green",
            "--rules",
            rules.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let f: Value = serde_json::from_str(&out).unwrap();
    let retro = f["retro_jobs"][0].as_str().unwrap().to_string();
    // the retrohunt holds both slots
    poll_until("the retrohunt's tasks leased", 30, || {
        let t = tasks_of(&s, &s.admin_token, &retro);
        (t.iter().filter(|t| t["state"] == "leased").count() == 2).then_some(())
    });
    // urgent casework arrives
    let (code, out, err) = as_user(
        &s,
        &inv,
        &[
            "submit",
            img.to_str().unwrap(),
            "--case",
            "A",
            "--analyses",
            "hash",
            "--priority",
            "urgent",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let urgent = last_line(out.as_bytes());
    // leased before any retrohunt task could have ended (6 s each): the
    // retrohunt gave a slot back
    poll_until("the urgent job's task leased", 5, || {
        let t = tasks_of(&s, &inv, &urgent);
        t.iter()
            .any(|t| t["state"] == "leased" || t["state"] == "done")
            .then_some(())
    });
    let rt = tasks_of(&s, &s.admin_token, &retro);
    assert!(
        !rt.iter().any(|t| t["state"] == "done"),
        "a retrohunt task ended before the urgent job got a slot: {rt:?}"
    );
    // given back without counting an attempt; the retrohunt still ends
    let (code, _, err) = as_user(&s, &inv, &["watch", &urgent]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = as_user(&s, &s.admin_token, &["watch", &retro]);
    assert_eq!(code, Some(0), "{err}");
    let rt = tasks_of(&s, &s.admin_token, &retro);
    assert!(rt.iter().all(|t| t["state"] == "done"), "{rt:?}");
    let (_, out, _) = as_user(&s, &analyst, &["alerts", "--json"]);
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn jobs_completed_while_the_index_was_off_are_indexed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let off_cfg = dir.path().join("off.toml");
    std::fs::write(&off_cfg, "[intel]\nenabled = false\n").unwrap();
    let mut s = start_secure_with(&["--config", off_cfg.to_str().unwrap()], &[]);
    let inv = s.add_user("ivy", "investigator", &["A", "B"], "1d");
    let analyst = s.add_user("ana", "analyst", &[], "1d");
    let mut jobs = Vec::new();
    for case in ["A", "B"] {
        let img = planted_image(
            s.dir.path(),
            &format!("{case}.dd"),
            &["mallory@restart-shared.org"],
        );
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
    // the index is off: nothing to look up
    let (code, _, err) = as_user(
        &s,
        &analyst,
        &["index", "lookup", "email", "mallory@restart-shared.org"],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("keeps no indicator index"), "{err}");
    // restarted with the index on: both jobs indexed, the cases linked
    let data = s.data();
    s.sched.proc.kill9();
    s.sched = crate::cluster::start_scheduler(&data, "127.0.0.1:0", &["--no-default-roots"]);
    let v = poll_until("the backfill", 30, || {
        let (_, out, _) = as_user(
            &s,
            &analyst,
            &[
                "index",
                "lookup",
                "email",
                "mallory@restart-shared.org",
                "--json",
            ],
        );
        let v: Value = serde_json::from_str(&out).ok()?;
        (v["sightings"].as_array()?.len() == 2).then_some(v)
    });
    assert_eq!(v["sightings"][0]["case"], "A", "{v}");
    let (code, out, err) = as_user(&s, &s.admin_token, &["links", "--case", "A", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        links_of(&out),
        [
            (
                "B".to_string(),
                "domain".to_string(),
                "restart-shared.org".to_string()
            ),
            (
                "B".to_string(),
                "email".to_string(),
                "mallory@restart-shared.org".to_string()
            ),
        ]
        .into(),
        "{out}"
    );
}
