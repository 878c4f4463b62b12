//! Issue 17, findings 5 (audit), 6 and 7 (audit): the audit trail is keyed
//! and anchored outside its store, so cutting entries off its end,
//! reordering, rewriting or corrupting it makes `audit verify` exit 4
//! naming the first bad entry; floods of refusals are counted, not stored
//! one by one; `audit list` pages; hand edits of the user registry are
//! audited. Real schedulers initialised with `trawl-scheduler init`, real
//! data directories, attacked as someone with a copy of the data (but not
//! the key) would.

use crate::cluster::{Proc, start_scheduler};
use crate::common::*;
use crate::security::{Secure, start_secure_with};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};
use tonic::Code;
use trawl_cli::Client;
use trawl_proto::v1;

/// The audit key `trawl-scheduler init` made beside `data`.
fn key_of(data: &Path) -> PathBuf {
    data.with_file_name(format!(
        "{}.audit-key",
        data.file_name().unwrap().to_str().unwrap()
    ))
}

/// SIGTERM, then waits for the scheduler to finish its shutdown.
fn stop(p: &mut Proc) {
    p.signal("-TERM");
    let t0 = Instant::now();
    while p.0.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the scheduler did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `cp -a from to`.
fn copy_dir(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .args(["-a", from.to_str().unwrap(), to.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `trawl audit verify --data DIR --audit-key KEY`.
fn verify(data: &Path, key: &Path) -> Output {
    run(&[
        "audit",
        "verify",
        "--data",
        data.to_str().unwrap(),
        "--audit-key",
        key.to_str().unwrap(),
    ])
}

/// Asserts that verification exits 4 naming entry `seq` and `why`.
fn assert_broken_at(data: &Path, key: &Path, seq: u64, why: &str) {
    let out = verify(data, key);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(
        t.contains(&format!("BROKEN at entry {seq}:")) && t.contains(why),
        "expected entry {seq} ({why}): {t}"
    );
}

/// `ListJobs` of `case` as `c`: the status code.
async fn list_jobs(c: &Client, case: &str) -> Code {
    match c
        .jobs
        .clone()
        .list_jobs(v1::ListJobsRequest {
            case_id: case.into(),
            ..Default::default()
        })
        .await
    {
        Ok(_) => Code::Ok,
        Err(e) => e.code(),
    }
}

async fn audit_entries(s: &Secure) -> Vec<v1::AuditEntry> {
    let c = s.client(Some(&s.admin_token));
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let p = c
            .admin
            .clone()
            .list_audit(v1::ListAuditRequest {
                from_seq: from,
                limit: 10_000,
                ..Default::default()
            })
            .await
            .expect("list audit")
            .into_inner();
        out.extend(p.entries);
        if p.next_seq == 0 {
            return out;
        }
        from = p.next_seq;
    }
}

/// The audit tree of a stopped scheduler's database, opened as an
/// attacker with the data (and sled) would.
fn with_audit_tree<T>(data: &Path, f: impl FnOnce(&sled::Tree) -> T) -> T {
    let db = sled::open(data.join("state.sled")).unwrap();
    let t = db.open_tree("audit").unwrap();
    let out = f(&t);
    db.flush().unwrap();
    out
}

fn entry(t: &sled::Tree, seq: u64) -> Value {
    serde_json::from_slice(&t.get(seq.to_be_bytes()).unwrap().unwrap()).unwrap()
}

/// A stopped, initialised scheduler whose trail holds a few dozen entries
/// of several kinds (users added, refusals, a verification), one of them a
/// refusal on case `flip-marker-7f3a` whose bytes occur nowhere else.
/// Returns (the secure cluster, the number of entries).
async fn populated() -> (Secure, u64) {
    let mut s = start_secure_with(&[], &[]);
    let ivy = s.add_user("ivy", "investigator", &["A"], "1d");
    let admin = s.client(Some(&s.admin_token));
    for i in 0..8 {
        admin
            .admin
            .clone()
            .add_user(v1::AddUserRequest {
                name: format!("user{i}"),
                role: "case_officer".into(),
                cases: vec!["A".into()],
                ttl_seconds: 3600,
            })
            .await
            .expect("add user");
    }
    let inv = s.client(Some(&ivy));
    for case in ["B", "C", "flip-marker-7f3a", "D", "E"] {
        assert_eq!(list_jobs(&inv, case).await, Code::PermissionDenied);
    }
    for _ in 0..4 {
        assert_eq!(list_jobs(&s.client(None), "A").await, Code::Unauthenticated);
    }
    let v = admin
        .admin
        .clone()
        .verify_audit(v1::VerifyAuditRequest {})
        .await
        .expect("verify")
        .into_inner();
    assert!(v.ok && v.keyed, "{v:?}");
    let n = audit_entries(&s).await.len() as u64;
    stop(&mut s.sched.proc);
    (s, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_entries_off_a_copied_trail_is_detected() {
    let (s, n) = populated().await;
    let data = s.data();
    let key = key_of(&data);
    assert!(key.exists(), "init made the key beside the data directory");
    // Intact: every entry, every MAC, the head anchored at shutdown.
    let out = run_ok(&["audit", "verify", "--data", data.to_str().unwrap()]);
    let t = text(&out);
    assert!(
        t.contains(&format!("intact: {n} entries"))
            && t.contains("every MAC verified")
            && t.contains(&format!("anchored head: entry {n} ")),
        "{t}"
    );
    assert!(
        !t.contains("note:"),
        "a clean shutdown anchors the head: {t}"
    );

    // A copy of the data folder, without the key: nothing can be vouched
    // for, and the command says where it looked for the key.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    copy_dir(&data, &copy);
    let out = run(&["audit", "verify", "--data", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("keyed") && text(&out).contains("copy.audit-key"),
        "{}",
        text(&out)
    );
    assert_eq!(verify(&copy, &key).status.code(), Some(0));

    // Cut the last three entries off the copy's store.
    with_audit_tree(&copy, |t| {
        for seq in n - 2..=n {
            t.remove(seq.to_be_bytes()).unwrap().expect("entry present");
        }
    });
    assert_broken_at(&copy, &key, n - 2, "cut off the end");
    // The scheduler will not add to it either.
    let out = run(&[
        "scheduler",
        "--data",
        copy.to_str().unwrap(),
        "--audit-key",
        key.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("refusing to start")
            && text(&out).contains(&format!("broken at entry {}", n - 2)),
        "{}",
        text(&out)
    );

    // An older copy of the database put back under the newer anchor: run
    // the real scheduler again on a copy, add entries, stop it, then
    // restore the older database.
    let older = dir.path().join("older");
    copy_dir(&data, &older);
    let sched = start_scheduler(&data, "127.0.0.1:0", &[]);
    let admin = Client::connect(&trawl_proto::connect::ConnectOptions {
        url: format!("https://{}", sched.addr),
        ca: Some(s.ca()),
        identity: None,
        token: Some(s.admin_token.clone()),
    })
    .unwrap();
    for i in 0..3 {
        admin
            .admin
            .clone()
            .add_user(v1::AddUserRequest {
                name: format!("late{i}"),
                role: "admin".into(),
                cases: Vec::new(),
                ttl_seconds: 60,
            })
            .await
            .expect("add user");
    }
    let mut sched = sched;
    stop(&mut sched.proc);
    let out = run_ok(&["audit", "verify", "--data", data.to_str().unwrap()]);
    assert!(
        text(&out).contains(&format!("intact: {} entries", n + 3)),
        "{}",
        text(&out)
    );
    let restored = dir.path().join("restored");
    copy_dir(&data, &restored);
    std::fs::remove_dir_all(restored.join("state.sled")).unwrap();
    copy_dir(&older.join("state.sled"), &restored.join("state.sled"));
    assert_broken_at(&restored, &key, n + 1, "cut off the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_rewritten_or_corrupted_entries_exit_4_naming_the_entry() {
    let (s, n) = populated().await;
    let data = s.data();
    let key = key_of(&data);
    let dir = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let c = dir.path().join(name);
        copy_dir(&data, &c);
        c
    };

    // Two entries swapped.
    let c = copy("swapped");
    with_audit_tree(&c, |t| {
        let (a, b) = (
            t.get(5u64.to_be_bytes()).unwrap().unwrap(),
            t.get(6u64.to_be_bytes()).unwrap().unwrap(),
        );
        t.insert(5u64.to_be_bytes(), b).unwrap();
        t.insert(6u64.to_be_bytes(), a).unwrap();
    });
    assert_broken_at(&c, &key, 5, "out of order");

    // One entry rewritten and the chain recomputed after it, as someone
    // with the data but without the key would: BLAKE3 agrees again, the
    // MACs do not.
    let c = copy("rewritten");
    with_audit_tree(&c, |t| {
        let mut prev = String::new();
        for seq in 4..=n {
            let mut e = entry(t, seq);
            if seq == 4 {
                e["actor"] = "nobody".into();
            } else {
                e["prev_hash"] = prev.clone().into();
            }
            let canonical = serde_json::json!([
                e["seq"],
                e["time_ms"],
                e["actor"],
                e["role"],
                e["action"],
                e["target"],
                e["case_id"],
                e["from"],
                e["detail"]
            ]);
            let mut h = blake3::Hasher::new();
            h.update(e["prev_hash"].as_str().unwrap().as_bytes());
            h.update(canonical.to_string().as_bytes());
            e["hash"] = h.finalize().to_hex().to_string().into();
            prev = e["hash"].as_str().unwrap().to_string();
            t.insert(seq.to_be_bytes(), serde_json::to_vec(&e).unwrap())
                .unwrap();
        }
    });
    assert_broken_at(&c, &key, 4, "MAC does not verify");
    // With the MACs stripped as well, the entries are still refused.
    with_audit_tree(&c, |t| {
        for seq in 4..=n {
            let mut e = entry(t, seq);
            e.as_object_mut().unwrap().remove("mac");
            t.insert(seq.to_be_bytes(), serde_json::to_vec(&e).unwrap())
                .unwrap();
        }
    });
    assert_broken_at(&c, &key, 4, "no MAC");

    // One byte flipped inside the refusal on case flip-marker-7f3a, in the
    // database file itself.
    let c = copy("flipped");
    let flipped_seq = with_audit_tree(&data.clone(), |t| {
        (1..=n)
            .find(|&seq| entry(t, seq)["case_id"] == "flip-marker-7f3a")
            .expect("the marked refusal")
    });
    let mut hits = 0;
    for f in std::fs::read_dir(c.join("state.sled")).unwrap() {
        let p = f.unwrap().path();
        if !p.is_file() {
            continue;
        }
        let mut b = std::fs::read(&p).unwrap();
        let needle = b"flip-marker-7f3a";
        let at: Vec<usize> = b
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i)
            .collect();
        for i in &at {
            b[i + 5] ^= 0x20;
        }
        hits += at.len();
        std::fs::write(&p, b).unwrap();
    }
    assert!(hits > 0, "the marked entry is in the database file");
    let out = verify(&c, &key);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    // The database's own check drops the damaged record (and what follows
    // it in its log); whichever entry is the first it lost or garbled is
    // named, never one after the damaged one.
    let named: u64 = t
        .split("BROKEN at entry ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no entry named: {t}"));
    assert!(
        named >= 1 && named <= flipped_seq,
        "named {named}, damaged {flipped_seq}: {t}"
    );

    // The anchor deleted: the trail cannot be shown intact, and the
    // scheduler does not start on it.
    let c = copy("unanchored");
    std::fs::remove_file(c.join("audit.anchor")).unwrap();
    let out = verify(&c, &key);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("NOT VERIFIED: no anchor"),
        "{}",
        text(&out)
    );
    let out = run(&[
        "scheduler",
        "--data",
        c.to_str().unwrap(),
        "--audit-key",
        key.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no anchor"), "{}", text(&out));
    // Nor will sealing paper over it: the entries carry MACs.
    let out = run(&[
        "scheduler",
        "audit",
        "seal",
        "--data",
        c.to_str().unwrap(),
        "--audit-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("carries a MAC"), "{}", text(&out));

    // The original, untouched, is intact, also through trawl-scheduler.
    let out = run(&[
        "scheduler",
        "audit",
        "verify",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&format!("intact: {n} entries")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_needs_its_key_kept_outside_the_data() {
    let mut s = start_secure_with(&[], &[]);
    stop(&mut s.sched.proc);
    let data = s.data();
    let key = key_of(&data);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the key is private");
    // Moved away: the scheduler refuses, naming where it looked.
    let away = s.dir.path().join("elsewhere.key");
    std::fs::rename(&key, &away).unwrap();
    let serve = |extra: &[&str]| {
        let mut args = vec![
            "scheduler",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = serve(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(&format!("audit key {} not found", key.display())),
        "{}",
        text(&out)
    );
    // Inside the data directory: refused.
    let inside = data.join("audit.key");
    std::fs::copy(&away, &inside).unwrap();
    let out = serve(&["--audit-key", inside.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("lies inside the data directory"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(&inside).unwrap();
    // Given where it is (environment), it starts.
    let mut child = trawl()
        .args([
            "scheduler",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("TRAWL_AUDIT_KEY", &away)
        .env("TRAWL_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("trawl-scheduler listening on"), "{line}");
    let mut p = Proc(child);
    stop(&mut p);
    // `init` refuses a key inside the data directory before making anything.
    let d2 = s.dir.path().join("d2");
    let out = run(&[
        "scheduler",
        "init",
        "--data",
        d2.to_str().unwrap(),
        "--audit-key",
        d2.join("k").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("lies inside the data directory"));
    assert!(!d2.join("auth").exists(), "nothing initialised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_is_counted_not_stored() {
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "audit_refusals_per_minute = 5\n").unwrap();
    let mut s = start_secure_with(&["--config", cfg.path().to_str().unwrap()], &[]);
    let ivy = s.client(Some(&s.add_user("ivy", "investigator", &["A"], "1d")));
    let mal_token = s.add_user("mal", "investigator", &["A"], "1d");
    let sled_bytes = |data: &Path| -> u64 {
        std::fs::read_dir(data.join("state.sled"))
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    };
    std::thread::sleep(Duration::from_millis(400));
    let before = sled_bytes(&s.data());

    // 30 refusals of an ordinary kind, 30 with a 2 MiB case id, 30 calls
    // without credentials.
    for _ in 0..30 {
        assert_eq!(list_jobs(&ivy, "B").await, Code::PermissionDenied);
    }
    let huge = "Z".repeat(2 << 20);
    let mut huge_invalid = 0u64;
    for _ in 0..30 {
        // A connection per call: the denial repeats the case id in its
        // message, which overflows the client's header limit and spoils
        // the connection; the server has refused and audited it by then.
        let mal = s.client(Some(&mal_token));
        match list_jobs(&mal, &huge).await {
            Code::Ok => panic!("a 2 MiB case id was accepted"),
            // Refused before any access check (a length limit): not a
            // refusal of access, nothing to audit.
            Code::InvalidArgument => huge_invalid += 1,
            _ => {}
        }
    }
    for _ in 0..30 {
        assert_eq!(list_jobs(&s.client(None), "A").await, Code::Unauthenticated);
    }
    // Legitimate work goes on.
    assert_eq!(list_jobs(&ivy, "A").await, Code::Ok);
    std::thread::sleep(Duration::from_millis(600));
    let grown = sled_bytes(&s.data()).saturating_sub(before);
    assert!(
        grown < 2 << 20,
        "90 refusals (60 MiB of case ids) grew the store by {grown} bytes"
    );

    let audit = audit_entries(&s).await;
    let full = |actor: &str, action: &str| {
        audit
            .iter()
            .filter(|e| e.actor == actor && e.action == action)
            .collect::<Vec<_>>()
    };
    assert_eq!(full("ivy", "denied").len(), 5, "the first 5 of the minute");
    assert!(full("ivy", "denied").iter().all(|e| e.case_id == "B"));
    let m = full("mal", "denied");
    let huge_denied = 30 - huge_invalid;
    assert_eq!(m.len() as u64, huge_denied.min(5));
    for e in &m {
        assert!(
            e.case_id.len() < 1100 && e.case_id.ends_with(&format!("[cut: {} bytes]", 2 << 20)),
            "case id stored as {} bytes",
            e.case_id.len()
        );
    }
    assert_eq!(full("(unknown)", "auth.refused").len(), 5);
    // The minute is not over: nothing aggregated yet.
    assert!(!audit.iter().any(|e| e.action.ends_with(".aggregated")));

    // A clean shutdown writes the counts of the open windows.
    stop(&mut s.sched.proc);
    let data = s.data();
    let out = run_ok(&["audit", "list", "--data", data.to_str().unwrap(), "--json"]);
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let agg = |actor: &str, action: &str| -> Vec<&Value> {
        listed
            .iter()
            .filter(|e| e["actor"] == actor && e["action"] == action)
            .collect()
    };
    let a = agg("ivy", "denied.aggregated");
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(
        a[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("25 further refusals"),
        "{}",
        a[0]["detail"]
    );
    assert_eq!(a[0]["case_id"], "B");
    assert_eq!(a[0]["from"], "127.0.0.1");
    let a = agg("mal", "denied.aggregated");
    if huge_denied > 5 {
        assert_eq!(a.len(), 1);
        let d = a[0]["detail"].as_str().unwrap();
        assert!(
            d.starts_with(&format!("{} further refusals", huge_denied - 5)),
            "{d}"
        );
        assert!(d.len() < 4096, "{} bytes", d.len());
    }
    let a = agg("(unknown)", "auth.refused.aggregated");
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(
        a[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("25 further refusals")
    );
    // And the trail with its aggregates is intact.
    let out = run_ok(&["audit", "verify", "--data", data.to_str().unwrap()]);
    assert!(text(&out).contains("intact"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_list_pages_through_a_trail_longer_than_a_page() {
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "audit_refusals_per_minute = 100000\n").unwrap();
    let s = start_secure_with(&["--config", cfg.path().to_str().unwrap()], &[]);
    let ivy = s.client(Some(&s.add_user("ivy", "investigator", &["A"], "1d")));
    for i in 0..1200 {
        let case = if i % 2 == 0 { "B" } else { "C" };
        assert_eq!(list_jobs(&ivy, case).await, Code::PermissionDenied);
    }
    // One call: one page of 1000 at most, and where the next starts.
    let admin = s.client(Some(&s.admin_token));
    let p = admin
        .admin
        .clone()
        .list_audit(v1::ListAuditRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.entries.len(), 1000);
    assert_eq!(p.next_seq, 1001);
    // The command line follows the pages: every entry, in order.
    let mut args = vec!["audit".to_string(), "list".into(), "--json".into()];
    args.extend(s.flags(&s.admin_token));
    let out = trawl().args(&args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed.len() > 1200, "{}", listed.len());
    for (i, e) in listed.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "entries in order, none missing");
    }
    // Of one case, with a limit spanning pages.
    let mut args = vec![
        "audit".to_string(),
        "list".into(),
        "--json".into(),
        "--case".into(),
        "C".into(),
        "--limit".into(),
        "550".into(),
    ];
    args.extend(s.flags(&s.admin_token));
    let out = trawl().args(&args).output().unwrap();
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 550);
    assert!(listed.iter().all(|e| e["case_id"] == "C"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edits_of_roles_cases_and_tokens_are_audited() {
    let s = start_secure_with(&[], &[]);
    s.add_user("ivy", "investigator", &["A"], "1d");
    let otto_token = s.add_user("otto", "case_officer", &["A"], "1d");
    s.add_user("back", "investigator", &["A"], "1d");
    run_ok(&[
        "scheduler",
        "user",
        "revoke",
        "back",
        "--data",
        s.data().to_str().unwrap(),
    ]);
    // Let the scheduler see (and audit) the state so far.
    std::thread::sleep(Duration::from_millis(1500));
    // Someone with write access to the registry promotes ivy, widens her
    // cases and makes her token eternal, replaces otto's token and lifts
    // back's revocation.
    let reg_path = s.data().join("auth/registry.json");
    let mut reg: Value = serde_json::from_slice(&std::fs::read(&reg_path).unwrap()).unwrap();
    for u in reg["users"].as_array_mut().unwrap() {
        match u["name"].as_str().unwrap() {
            "ivy" => {
                u["role"] = "admin".into();
                u["cases"] = serde_json::json!(["A", "B"]);
                u["expires_ms"] = 0.into();
            }
            "otto" => {
                u["token_blake3"] = blake3::hash(b"trawl_forged").to_hex().to_string().into();
            }
            "back" => u["revoked_ms"] = 0.into(),
            _ => {}
        }
    }
    std::fs::write(&reg_path, serde_json::to_vec_pretty(&reg).unwrap()).unwrap();
    let want = [
        ("user.role", "ivy", "role: investigator -> admin"),
        ("user.cases", "ivy", r#"cases: ["A"] -> ["A", "B"]"#),
        ("user.expiry", "ivy", "-> never"),
        ("user.token", "otto", "token replaced"),
        ("user.unrevoke", "back", "works again"),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let audit = loop {
        let audit = audit_entries(&s).await;
        let found = want.iter().all(|(a, t, d)| {
            audit
                .iter()
                .any(|e| e.action == *a && e.target == *t && e.detail.contains(d))
        });
        if found {
            break audit;
        }
        assert!(
            Instant::now() < deadline,
            "registry edits not audited: {:?}",
            audit
                .iter()
                .filter(|e| e.action.starts_with("user."))
                .map(|e| (&e.action, &e.target, &e.detail))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (a, t, _) in want {
        let e = audit
            .iter()
            .find(|e| e.action == a && e.target == t)
            .unwrap();
        assert_eq!(
            (e.actor.as_str(), e.from.as_str()),
            ("trawl-scheduler", "data directory"),
            "{e:?}"
        );
    }
    // otto's old token no longer works, and that is on record too.
    assert_eq!(
        list_jobs(&s.client(Some(&otto_token)), "A").await,
        Code::Unauthenticated
    );
}

#[test]
fn a_trail_from_before_anchoring_says_so_then_is_sealed() {
    // A scheduler that was never initialised anchors without a key.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut sched = start_scheduler(&data, "127.0.0.1:0", &[]);
    let rules = dir.path().join("a.yar");
    std::fs::write(&rules, "rule a { strings: $a = \"abc\" condition: $a }").unwrap();
    run_ok(&[
        "rules",
        "add",
        "r1",
        rules.to_str().unwrap(),
        "--server",
        &sched.url,
    ]);
    stop(&mut sched.proc);
    let d = data.to_str().unwrap();
    let out = run_ok(&["audit", "verify", "--data", d]);
    let t = text(&out);
    assert!(t.contains("intact") && t.contains("note: not keyed"), "{t}");
    let n: u64 = t
        .split("intact: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap();
    assert!(n >= 1, "{t}");

    // A data directory from before anchoring (no anchor file): verify says
    // so, exit 4.
    std::fs::remove_file(data.join("audit.anchor")).unwrap();
    let out = run(&["audit", "verify", "--data", d]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out).contains("NOT VERIFIED: no anchor"),
        "{}",
        text(&out)
    );

    // Sealing checks the chain, makes the key beside the data directory,
    // anchors the head and records what came before.
    let out = run_ok(&["scheduler", "audit", "seal", "--data", d]);
    let t = text(&out);
    assert!(
        t.contains("keyed") && t.contains(&format!("entries 1 to {n} were written before")),
        "{t}"
    );
    assert!(key_of(&data).exists());
    let out = run_ok(&["audit", "verify", "--data", d]);
    let t = text(&out);
    assert!(
        t.contains(&format!("intact: {} entries", n + 1))
            && t.contains("every MAC verified")
            && t.contains(&format!(
                "note: entries 1 to {n} were written before the trail was anchored"
            )),
        "{t}"
    );
    // The scheduler, uninitialised as it is, now keeps the trail keyed.
    let mut sched = start_scheduler(&data, "127.0.0.1:0", &[]);
    run_ok(&["rules", "list", "--server", &sched.url]);
    stop(&mut sched.proc);
    let listed = run_ok(&["audit", "list", "--data", d, "--json"]);
    let listed: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let seal = listed
        .iter()
        .find(|e| e["action"] == "audit.seal")
        .expect("audit.seal entry");
    assert_eq!(seal["seq"], n + 1);
    assert!(
        listed
            .iter()
            .skip(n as usize)
            .all(|e| e["mac"].as_str().is_some_and(|m| m.len() == 64))
    );
    assert!(listed.iter().take(n as usize).all(|e| e["mac"] == ""));
    // Sealing twice is refused.
    let out = run(&["scheduler", "audit", "seal", "--data", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("already keyed"), "{}", text(&out));
}
