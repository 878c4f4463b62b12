//! The exports against the reference tools, through
//! `scripts/check_sharing.py` run by the venv's python (scripts/setup.sh
//! installs stix2-validator, pymisp and misp-stix there): STIX bundles pass
//! stix2-validator with no error, MISP events load with PyMISP, convert
//! with misp-stix (whose bundle passes stix2-validator too) and use only
//! (category, type) pairs of PyMISP's describeTypes.json; feeds are
//! consistent. Then the checker is shown to fail on broken exports.

mod common;

use common::{golden_set, random_sets, sharing_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use trawl_share::{Tlp, misp_event, misp_feed, stix_bundle};

const TOOLS: &str = "stix2-validator, pymisp, misp-stix (scripts/setup.sh installs them)";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python, or None (the test is skipped, or fails under CI).
fn python(test: &str) -> Option<PathBuf> {
    let py = repo().join("target/tools-venv/bin/python");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", "import stix2validator, pymisp, misp_stix_converter"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if ok {
        Some(py)
    } else {
        trawl_fixtures::skip(test, TOOLS);
        None
    }
}

/// Runs the checker; (exit code, stdout, stderr).
fn check(py: &Path, kind: &str, paths: &[PathBuf]) -> (i32, String, String) {
    let o = Command::new(py)
        .arg(repo().join("scripts/check_sharing.py"))
        .arg(kind)
        .args(paths)
        .output()
        .expect("run check_sharing.py");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn passes(py: &Path, kind: &str, paths: &[PathBuf]) -> String {
    let (code, out, err) = check(py, kind, paths);
    assert_eq!(code, 0, "check_sharing.py {kind}:\n{out}\n{err}");
    let summary = out.lines().last().unwrap_or_default().to_string();
    assert!(
        summary.starts_with(&format!("check_sharing: {kind}: ")),
        "{out}"
    );
    summary
}

fn fails(py: &Path, kind: &str, path: &Path, why: &str) {
    let (code, out, err) = check(py, kind, &[path.to_path_buf()]);
    assert_eq!(
        code, 1,
        "check_sharing.py {kind} accepted a broken file:\n{out}\n{err}"
    );
    assert!(err.contains(why), "{why} not in:\n{err}");
}

#[test]
fn exports_pass_the_reference_tools() {
    let Some(py) = python("exports_pass_the_reference_tools") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut sets = random_sets(22, 10);
    for tlp in Tlp::ALL {
        sets.push(golden_set(tlp, &format!("case C0001 at {}", tlp.label())));
    }
    let (mut bundles, mut events) = (vec![], vec![]);
    let (mut objects, mut attributes, mut withheld) = (0, 0, 0);
    for (i, s) in sets.iter().enumerate() {
        let b = stix_bundle(s).unwrap_or_else(|e| panic!("set {i}: {e}"));
        let e = misp_event(s).unwrap_or_else(|e| panic!("set {i}: {e}"));
        assert_eq!(b.withheld, e.withheld);
        objects += b.objects;
        attributes += e.objects;
        withheld += b.withheld;
        let bp = tmp.path().join(format!("bundle-{i}.json"));
        let ep = tmp.path().join(format!("event-{i}.json"));
        std::fs::write(&bp, &b.bytes).unwrap();
        std::fs::write(&ep, &e.bytes).unwrap();
        bundles.push(bp);
        events.push(ep);
    }
    // The sets are not trivial: some withheld, many objects.
    assert!(
        withheld > 10 && objects > 400 && attributes > 150,
        "{withheld} {objects} {attributes}"
    );
    let feed = tmp.path().join("feed");
    let f = misp_feed(&sets, &feed).unwrap();
    assert_eq!((f.events, f.attributes), (sets.len(), attributes));

    let s = passes(&py, "stix", &bundles);
    assert!(
        s.contains(&format!("{} bundle(s), {objects} objects", sets.len())),
        "{s}"
    );
    let s = passes(&py, "misp", &events);
    assert!(
        s.contains(&format!("{} event(s), {attributes} attributes", sets.len())),
        "{s}"
    );
    let s = passes(&py, "feed", &[feed]);
    assert!(
        s.contains(&format!("{} events, {attributes} attributes", sets.len())),
        "{s}"
    );
}

#[test]
fn golden_files_pass_the_reference_tools() {
    let Some(py) = python("golden_files_pass_the_reference_tools") else {
        return;
    };
    let d = sharing_dir();
    passes(&py, "stix", &[d.join("bundle-amber.json")]);
    passes(&py, "misp", &[d.join("event-green.json")]);
    passes(&py, "feed", &[d.join("feed")]);
}

fn edit(path: &Path, out: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(out, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// The checker is no rubber stamp: each broken export is refused, naming
/// the failure.
#[test]
fn the_checker_refuses_broken_exports() {
    let Some(py) = python("the_checker_refuses_broken_exports") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let set = golden_set(Tlp::Amber, "case C0001");
    let bundle = tmp.path().join("bundle.json");
    let event = tmp.path().join("event.json");
    std::fs::write(&bundle, stix_bundle(&set).unwrap().bytes).unwrap();
    std::fs::write(&event, misp_event(&set).unwrap().bytes).unwrap();

    // An unescaped quote in a pattern.
    let bad = tmp.path().join("bad-pattern.json");
    edit(&bundle, &bad, |v| {
        for o in v["objects"].as_array_mut().unwrap() {
            if o["pattern_type"] == "stix" {
                o["pattern"] = "[domain-name:value = 'a'b']".into();
            }
        }
    });
    fails(&py, "stix", &bad, "stix2-validator");
    // An observable whose id is not its UUIDv5.
    let bad = tmp.path().join("bad-id.json");
    edit(&bundle, &bad, |v| {
        for o in v["objects"].as_array_mut().unwrap() {
            if o["type"] == "domain-name" {
                o["value"] = "other.example".into();
            }
        }
    });
    fails(&py, "stix", &bad, "the stix2 library derives");
    // A (category, type) pair MISP does not know.
    let bad = tmp.path().join("bad-category.json");
    edit(&event, &bad, |v| {
        v["Event"]["Attribute"][0]["category"] = "Person".into();
    });
    fails(&py, "misp", &bad, "describeTypes.json");
    // A feed whose hashes.csv misses a row, and one with a stray file.
    let feed = tmp.path().join("feed");
    misp_feed(std::slice::from_ref(&set), &feed).unwrap();
    let hashes = feed.join("hashes.csv");
    let text = std::fs::read_to_string(&hashes).unwrap();
    let fewer: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&hashes, fewer).unwrap();
    fails(&py, "feed", &feed, "hashes.csv");
    std::fs::write(&hashes, text).unwrap();
    passes(&py, "feed", std::slice::from_ref(&feed));
    std::fs::write(feed.join("00000000-0000-4000-8000-000000000000.json"), "{}").unwrap();
    fails(&py, "feed", &feed, "manifest.json names");
}
