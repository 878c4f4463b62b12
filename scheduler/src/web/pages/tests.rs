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
