//! Forged results given to the report writer: names that would be paths
//! outside the report folder (absolute, `..`, separators, NUL) or that no
//! analyzer gives. The whole results set is refused, the error names the
//! record, the field and the escaped value, and nothing is written: not
//! the report folder, not a file beside it, not the places the names aim
//! at (DIR is nested in a folder the test owns, so `../` lands somewhere
//! it can look).

use std::path::{Path, PathBuf};
use trawl_core::{CarvedFile, Feature, YaraMatch};
use trawl_report::{JobResults, ReportError, write_report_dir};

fn feature(scanner: &str, offset: u64) -> Feature {
    Feature {
        scanner: scanner.into(),
        offset,
        path: offset.to_string(),
        feature: b"bob@example.com".to_vec(),
        context: b"to: bob@example.com".to_vec(),
        utf16: false,
    }
}

fn carved(file_type: &str, extension: &str, offset: u64) -> CarvedFile {
    CarvedFile {
        offset,
        length: 16,
        file_type: file_type.into(),
        extension: extension.into(),
        validated: true,
        note: String::new(),
        md5: String::new(),
        sha1: String::new(),
        sha256: String::new(),
        byte_runs: Vec::new(),
    }
}

/// Legitimate results, with the image to copy carved files from.
fn legit(t: &Path) -> (JobResults, PathBuf) {
    let img = t.join("img.raw");
    std::fs::write(&img, vec![0x5au8; 8192]).unwrap();
    let mut r = JobResults::default();
    r.provenance.analyses = vec!["carve".into(), "features".into(), "yara".into()];
    r.features = vec![feature("email", 10), feature("email_stopped", 20)];
    r.carved = vec![carved("jpg", "jpg", 100)];
    r.yara = vec![YaraMatch {
        target: "carved/jpg/100.jpg".into(),
        target_offset: 100,
        rule: "r".into(),
        namespace: "default".into(),
        tags: Vec::new(),
        metadata_json: "{}".into(),
        strings: Vec::new(),
    }];
    (r, img)
}

/// Every file and folder under `dir`, relative, sorted.
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

/// Writes `r` into `T/a/b/c/out` and returns the error: nothing may have
/// been written anywhere under `T` but the image.
fn refused(r: &JobResults, t: &Path, img: &Path) -> String {
    let out = t.join("a/b/c/out");
    std::fs::create_dir_all(t.join("a/b/c")).unwrap();
    let ev = trawl_evidence::open(img).unwrap();
    let e = write_report_dir(&out, r, Some(ev.as_ref())).unwrap_err();
    assert!(matches!(e, ReportError::Refused { .. }), "{e:?}");
    assert_eq!(tree(t), ["a", "a/b", "a/b/c", "img.raw"], "{e}");
    e.to_string()
}

#[test]
fn forged_feature_scanners_are_refused_and_nothing_is_written() {
    for (name, shown, why) in [
        (
            "/tmp/x",
            r#""/tmp/x""#,
            "contains a path separator (/ or \\)",
        ),
        (
            "../../../../tmp/y",
            r#""../../../../tmp/y""#,
            "contains a path separator (/ or \\)",
        ),
        ("a/b", r#""a/b""#, "contains a path separator (/ or \\)"),
        ("..", r#""..""#, "a reference to a folder (. or ..)"),
        (".", r#"".""#, "a reference to a folder (. or ..)"),
        ("", r#""""#, "empty"),
        (
            "email\0",
            r#""email\0""#,
            "contains a control character (NUL, newline, ...)",
        ),
        (
            "..\\..\\x",
            r#""..\\..\\x""#,
            "contains a path separator (/ or \\)",
        ),
        (
            "emails",
            r#""emails""#,
            "not a feature recorder of trawl (a scanner's name, NAME_stopped or alerts)",
        ),
    ] {
        let t = tempfile::tempdir().unwrap();
        let (mut r, img) = legit(t.path());
        r.features.push(feature(name, 4096));
        let e = refused(&r, t.path(), &img);
        let expected = format!(
            "1 name in the results cannot be report paths: feature 2 (offset 4096): feature scanner {shown} refused: {why}; nothing was written to {}",
            t.path().join("a/b/c/out").display()
        );
        assert_eq!(e, expected, "{name:?}");
    }
}

#[test]
fn forged_carved_types_extensions_and_yara_targets_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let (mut r, img) = legit(t.path());
    r.carved.push(carved("../x", "jpg", 200));
    r.carved.push(carved("/tmp", "jpg", 300));
    r.carved.push(carved("jpg", "../../../y", 400));
    r.carved.push(carved("jpg", "", 500));
    r.yara[0].target = "carved/../100.jpg".into();
    let e = refused(&r, t.path(), &img);
    for part in [
        "5 names in the results cannot be report paths: ",
        r#"carved file 1 (offset 200): carved file type "../x" refused: contains a path separator"#,
        r#"carved file 2 (offset 300): carved file type "/tmp" refused"#,
        r#"carved file 3 (offset 400): carved file extension "../../../y" refused"#,
        r#"carved file 4 (offset 500): carved file extension "" refused: empty"#,
        r#"YARA match 0 (offset 100): YARA target: carved file type ".." refused"#,
    ] {
        assert!(e.contains(part), "{part}\n{e}");
    }
}

#[test]
fn many_forged_names_are_counted_and_the_first_ten_listed() {
    let t = tempfile::tempdir().unwrap();
    let (mut r, img) = legit(t.path());
    for i in 0..25u64 {
        r.features.push(feature(&format!("../{i}"), 1000 + i));
    }
    let e = refused(&r, t.path(), &img);
    assert!(
        e.starts_with("25 names in the results cannot be report paths: "),
        "{e}"
    );
    assert_eq!(e.matches(" refused: ").count(), 10, "{e}");
    assert!(e.contains("; and 15 more; nothing was written to "), "{e}");
    // An enormous forged name is shown cut, with its length.
    let (mut r, _) = legit(t.path());
    r.features.push(feature(&"../".repeat(10_000), 1));
    let e = refused(&r, t.path(), &img);
    assert!(e.contains("… (30000 bytes) refused"), "{e}");
    assert!(e.len() < 600, "{}", e.len());
}

/// An existing report folder is left as it was when results are refused.
#[test]
fn a_refused_report_leaves_an_existing_folder_untouched() {
    let t = tempfile::tempdir().unwrap();
    let (mut r, img) = legit(t.path());
    let out = t.path().join("out");
    let ev = trawl_evidence::open(&img).unwrap();
    write_report_dir(&out, &r, Some(ev.as_ref())).unwrap();
    let before = tree(&out);
    let report = std::fs::read(out.join("report.json")).unwrap();
    assert!(
        before.contains(&"carved/jpg/100.jpg".to_string()),
        "{before:?}"
    );
    assert!(
        before.contains(&"features/email.txt".to_string()),
        "{before:?}"
    );
    r.features.push(feature("../../escaped", 7));
    r.features[0].feature = b"changed@example.com".to_vec();
    assert!(write_report_dir(&out, &r, Some(ev.as_ref())).is_err());
    assert_eq!(tree(&out), before);
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), report);
    assert!(!t.path().join("escaped.txt").exists());
}
