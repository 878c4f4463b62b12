//! The pages' escaping, masking and translation, rendered without a
//! server.

use super::files::{files_link, select as select_files};
use super::summary::{Summary, mask_card};
use super::*;
use crate::auth::Role;
use crate::core::Caller;

#[test]
fn card_numbers_keep_the_first_six_and_last_four_digits() {
    assert_eq!(mask_card("4111111111111111"), "411111••••••1111");
    assert_eq!(mask_card("4111 1111 1111 1111"), "4111 11•• •••• 1111");
    assert_eq!(mask_card("1234567890"), "1234567890");
}

#[test]
fn planted_script_in_names_and_features_is_escaped() {
    let c = Caller {
        user: "<b>ivy</b>".into(),
        role: Role::Investigator,
        cases: vec!["A".into()],
        peer: String::new(),
    };
    let mut record: trawl_store::JobRecord = serde_json::from_value(serde_json::json!({
        "job_id": "J000001", "seq": 1,
        "spec": serde_json::to_value(trawl_core::JobSpec::new(
            trawl_core::CaseId::new("A").unwrap(),
            trawl_core::spec::EvidenceRef::Paths(vec!["/x".into()]),
            trawl_core::spec::AnalysisSet::default(),
        )).unwrap(),
        "submitter": "<script>x</script>", "state": "completed", "error": "",
        "created_ms": 1, "started_ms": 1, "finished_ms": 2, "evidence": null, "plan": null,
        "progress": {"bytes_total": 1, "bytes_done": 1, "tasks_total": 1, "tasks_done": 1,
                      "tasks_failed": 0, "findings": {"<script>k</script>": 1}},
        "limitations": [], "version": 1
    }))
    .expect("a job record");
    record.spec.evidence_name = "<script>alert(1).dd".into();
    let summary = Summary {
        top_features: vec![
            ("find".into(), "<script>alert(\"xss\")</script>".into(), 2),
            ("ccn".into(), "4111111111111111".into(), 2),
        ],
        yara: vec![("<ns>".into(), "<rule>".into(), 1)],
        ..Default::default()
    };
    let wire = crate::service::wire_job(&record);
    let view = |revealed| JobView {
        job: &record,
        wire: &wire,
        tasks: &[],
        summary: Some(&summary),
        may_cancel: true,
        may_reveal: true,
        revealed,
    };
    let page = job(Lang::En, &c, "tok", &view(false)).into_string();
    // Card numbers masked unless revealed.
    assert!(page.contains("411111••••••1111"), "{page}");
    assert!(!page.contains("4111111111111111"), "{page}");
    assert!(page.contains("id=\"reveal\""), "{page}");
    let shown = job(Lang::En, &c, "tok", &view(true)).into_string();
    assert!(shown.contains("4111111111111111"));
    // French: no English word of the table, no missing key.
    let fr = job(Lang::Fr, &c, "tok", &view(false)).into_string();
    assert!(!fr.contains(super::super::i18n::MISSING), "{fr}");
    assert!(fr.contains("numéros de carte"), "{fr}");
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<script>x"), "{page}");
    assert!(!page.contains("<b>ivy"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1).dd"));
    assert!(page.contains("&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;"));
    let list = cases(Lang::Fr, &c, "tok", &[record], &Default::default()).into_string();
    assert!(
        list.contains("Affaires") && !list.contains("<script>x"),
        "{list}"
    );
    // The only script element is the served asset.
    assert_eq!(page.matches("<script").count(), 1);
}

fn file_rec(path: &str, alloc: &str, known: Option<&str>, md5: &str) -> trawl_core::FileRecord {
    serde_json::from_value(serde_json::json!({
        "partition_offset": 0, "fs": "fat16", "path": path, "inode": 3, "kind": "file",
        "alloc": alloc, "size": 10, "md5": md5, "sha1": null, "sha256": null,
        "times": {"mtime": null, "atime": null, "ctime": null, "crtime": null},
        "fn_times": null, "mode": 0, "uid": 0, "gid": 0, "known": known,
        "known_set": known.map(|_| "NSRL"), "runs": [], "error": null
    }))
    .expect("a file record")
}

#[test]
fn files_page_searches_filters_and_escapes() {
    let c = Caller {
        user: "ivy".into(),
        role: Role::Investigator,
        cases: vec!["A".into()],
        peer: String::new(),
    };
    let record: trawl_store::JobRecord = serde_json::from_value(serde_json::json!({
        "job_id": "J000002", "seq": 2,
        "spec": serde_json::to_value(trawl_core::JobSpec::new(
            trawl_core::CaseId::new("A").unwrap(),
            trawl_core::spec::EvidenceRef::Paths(vec!["/x".into()]),
            trawl_core::spec::AnalysisSet::parse("files").unwrap(),
        )).unwrap(),
        "submitter": "ivy", "state": "completed", "error": "",
        "created_ms": 1, "started_ms": 1, "finished_ms": 2, "evidence": null, "plan": null,
        "progress": {"bytes_total": 1, "bytes_done": 1, "tasks_total": 1, "tasks_done": 1,
                      "tasks_failed": 0, "findings": {}},
        "limitations": [], "version": 1
    }))
    .expect("a job record");
    let listing = vec![
        file_rec(
            "DOCS/<script>x</script>.TXT",
            "allocated",
            None,
            "aa11bb22cc33dd44ee55ff6677889900",
        ),
        file_rec(
            "WINDOWS/NOTEPAD.EXE",
            "allocated",
            Some("known"),
            "0123456789abcdef0123456789abcdef",
        ),
        file_rec(
            "_LD.TXT",
            "deleted",
            None,
            "ffffffffffffffffffffffffffffffff",
        ),
        file_rec(
            "BAD.EXE",
            "allocated",
            Some("notable"),
            "deadbeefdeadbeefdeadbeefdeadbeef",
        ),
    ];
    let q = |q: &str, show: &str| FilesQuery {
        q: q.into(),
        show: show.into(),
        page: 0,
    };
    let paths = |q: &FilesQuery| -> Vec<String> {
        select_files(&listing, q)
            .iter()
            .map(|f| f.path.clone())
            .collect()
    };
    assert_eq!(paths(&q("", "")).len(), 4);
    assert_eq!(paths(&q("notepad", "")), ["WINDOWS/NOTEPAD.EXE"]);
    assert_eq!(paths(&q("0123456789AB", "")), ["WINDOWS/NOTEPAD.EXE"]);
    assert_eq!(paths(&q("", "deleted")), ["_LD.TXT"]);
    assert_eq!(paths(&q("", "known")), ["WINDOWS/NOTEPAD.EXE"]);
    assert_eq!(paths(&q(".exe", "notable")), ["BAD.EXE"]);
    assert!(paths(&q("deadbeef", "known")).is_empty());
    let page = files(Lang::En, &c, "tok", &record, Some(&listing), &q("txt", "")).into_string();
    assert!(page.contains("id=\"files-count\">2 / 4<"), "{page}");
    assert!(!page.contains("<script>x"), "{page}");
    assert!(
        page.contains("&lt;script&gt;x&lt;/script&gt;.TXT"),
        "{page}"
    );
    assert!(page.contains(">deleted<"), "{page}");
    let fr = files(Lang::Fr, &c, "tok", &record, Some(&listing), &q("", "")).into_string();
    assert!(!fr.contains(super::super::i18n::MISSING), "{fr}");
    assert!(fr.contains("connu (NSRL)"), "{fr}");
    let waiting = files(Lang::En, &c, "tok", &record, None, &q("", "")).into_string();
    assert!(!waiting.contains("id=\"files\""), "{waiting}");
    assert_eq!(
        files_link("J000002", "DOCS/a b.txt"),
        "/jobs/J000002/files?q=DOCS%2Fa%20b.txt"
    );
}

fn officer(cases: &[&str]) -> Caller {
    Caller {
        user: "olga".into(),
        role: Role::CaseOfficer,
        cases: cases.iter().map(|s| s.to_string()).collect(),
        peer: String::new(),
    }
}

#[test]
fn links_page_draws_the_graph_masks_card_hashes_and_hides_jobs_from_officers() {
    use crate::intel::CaseLink;
    use trawl_intel::{Indicator, Kind};
    let ind = |kind, v: &str| Indicator {
        kind,
        value: v.into(),
    };
    let hash = "ab12cd34".repeat(8);
    let mut shared = vec![
        (ind(Kind::Email, "joe@<b>gang</b>.net"), 1_700_000_000_000),
        (ind(Kind::CcnHmac, &hash), 1_700_000_000_000),
    ];
    // more indicators than the graph draws
    for i in 0..links::GRAPH_MAX {
        shared.push((ind(Kind::Domain, &format!("d{i:03}.example.net")), 1));
    }
    let found = vec![(
        "A".to_string(),
        CaseLink {
            other_case: "B".into(),
            contacts: vec!["officer-b".into()],
            shared,
            own_jobs: vec!["J000001".into()],
            other_jobs: vec!["J000002".into()],
        },
    )];
    let view = LinksView::Links {
        case: "A",
        links: &found,
    };
    let page = links(Lang::En, &officer(&["A"]), "tok", &view).into_string();
    assert!(page.contains("<svg class=\"chart graph\""), "{page}");
    assert!(page.contains("role=\"img\""));
    // the graph stops at 200 indicators; the table has them all
    assert_eq!(
        page.matches("<g class=\"node indicator\"").count(),
        links::GRAPH_MAX
    );
    assert!(page.contains("id=\"links-capped\""));
    assert_eq!(
        page.matches("<tr data-other=\"B\"").count(),
        links::GRAPH_MAX + 2
    );
    assert!(page.contains("card number (keyed hash)"));
    assert!(page.contains(">ab12cd34…<"), "{page}");
    assert!(!page.contains(&hash), "the whole keyed hash is shown");
    assert!(page.contains("joe@&lt;b&gt;gang&lt;/b&gt;.net"));
    assert!(page.contains("officer-b"));
    // a case officer never sees job ids; an admin does
    assert!(!page.contains("J000002"));
    let admin = Caller {
        role: Role::Admin,
        ..officer(&[])
    };
    let page = links(Lang::Fr, &admin, "tok", &view).into_string();
    assert!(page.contains("href=\"/jobs/J000002\""), "{page}");
    assert!(page.contains("numéro de carte (empreinte à clé)"));
    assert!(!page.contains('⟦'), "{page}");
    let none = links(Lang::En, &officer(&[]), "tok", &LinksView::Choose(&[])).into_string();
    assert!(none.contains("id=\"no-case\""), "{none}");
}

#[test]
fn alerts_table_links_jobs_only_for_readers_and_offers_the_next_steps() {
    use trawl_intel::flash::{AlertRecord, AlertState, AlertWhat, Tlp};
    let a = |id: &str, case: &str, state| AlertRecord {
        seq: 1,
        id: id.into(),
        case: case.into(),
        flash: "F000001".into(),
        flash_title: "<i>Campaign</i>".into(),
        tlp: Tlp::AmberStrict,
        job: "J000007".into(),
        what: AlertWhat::Rule {
            rules: vec!["campaign_x".into()],
            hits: 2,
        },
        created_ms: 1_700_000_000_000,
        state,
    };
    let list = [
        a("AL000001", "A", AlertState::New),
        a(
            "AL000002",
            "A",
            AlertState::Dismissed {
                by: "olga".into(),
                ms: 1_700_000_000_000,
                reason: "<s>lab test</s>".into(),
            },
        ),
    ];
    let t = alerts_table(Lang::En, &officer(&["A"]), "tok", &list).into_string();
    assert!(t.contains("href=\"/jobs/J000007\""), "{t}");
    assert!(t.contains("action=\"/alerts/AL000001/seen\""));
    assert!(t.contains("action=\"/alerts/AL000001/dismiss\""));
    assert!(!t.contains("action=\"/alerts/AL000002/"), "{t}");
    assert!(t.contains("&lt;s&gt;lab test&lt;/s&gt;"));
    assert!(t.contains("&lt;i&gt;Campaign&lt;/i&gt;"));
    assert!(t.contains("TLP:AMBER+STRICT"));
    assert!(t.contains("value=\"tok\""));
    // an analyst sees the alert, not a way to the job
    let analyst = Caller {
        role: Role::Analyst,
        ..officer(&[])
    };
    let t = alerts_table(Lang::Fr, &analyst, "tok", &list).into_string();
    assert!(!t.contains("href=\"/jobs/"), "{t}");
    assert!(t.contains("classée") && t.contains("nouvelle"));
    assert!(!t.contains('⟦'), "{t}");
    let q = AlertsQuery {
        case: "A B".into(),
        state: "new".into(),
        fragment: String::new(),
    };
    assert_eq!(q.fragment_url(), "/alerts?fragment=1&case=A%20B&state=new");
}
