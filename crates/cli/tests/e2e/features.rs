//! Issue: feature extraction through `trawl scan`. Every planted feature of
//! the small fixture in features/NAME.txt at its forensic path, exactly once;
//! byte-identical feature files for 1 MiB and 64 MiB shards and any worker
//! count; histograms, stop and alert lists, the `find` scanner from a keyword
//! file; per-scanner statistics in report.json; bad settings refused with a
//! clear message.

use crate::common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// (forensic path, feature) of every line of features/NAME.txt.
fn lines(dir: &Path, name: &str) -> Vec<(String, String, String)> {
    let p = dir.join("features").join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut out = Vec::new();
    for l in text.lines() {
        if l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split('\t').collect();
        assert!(f.len() >= 3, "{name}: {l:?}");
        out.push((f[0].to_string(), f[1].to_string(), f[2].to_string()));
    }
    out
}

fn scan_features(image: &Path, extra: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "scan",
        image.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "features",
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    out
}

/// Every file under features/, by name.
fn feature_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("features")).unwrap() {
        let e = e.unwrap();
        m.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        );
    }
    m
}

fn expected_path(p: &trawl_fixtures::PlantedFeature) -> String {
    match (p.container.is_some(), p.encoding.as_str()) {
        (true, _) => p.forensic_path.clone(),
        _ => p.offset.to_string(),
    }
}

#[test]
fn every_planted_feature_once_and_shard_size_invariant() {
    let fx = small_fixture();
    let m: trawl_fixtures::Manifest =
        serde_json::from_str(&std::fs::read_to_string(&fx.manifest).unwrap()).unwrap();
    let a = scan_features(&fx.image, &["--shard-size", "1MiB", "--workers", "3"]);
    let b = scan_features(&fx.image, &["--shard-size", "64MiB", "--workers", "1"]);
    let fa = feature_files(a.path());
    let fb = feature_files(b.path());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(
            *v == fb[k],
            "features/{k} differs between 1 MiB and 64 MiB shards"
        );
    }
    // every scanner has its feature file and histogram
    for s in [
        "email", "url", "domain", "ipv4", "ipv6", "ccn", "iban", "phone", "bitcoin", "ether",
    ] {
        assert!(fa.contains_key(&format!("{s}.txt")), "{s}.txt");
        assert!(
            fa.contains_key(&format!("{s}_histogram.txt")),
            "{s}_histogram"
        );
    }
    // every planted feature at its forensic path, and no line twice
    let mut by: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for name in fa.keys().filter_map(|k| k.strip_suffix(".txt")) {
        if name.ends_with("_histogram") {
            continue;
        }
        let ls = lines(a.path(), name);
        let set: BTreeSet<(String, String)> =
            ls.iter().map(|(p, f, _)| (p.clone(), f.clone())).collect();
        assert_eq!(set.len(), ls.len(), "{name}: a feature reported twice");
        by.insert(name.to_string(), set);
    }
    let mut missing = Vec::new();
    for p in &m.features {
        let want = (expected_path(p), p.feature.clone());
        if !by.get(&p.scanner).is_some_and(|s| s.contains(&want)) {
            missing.push(format!("{} {want:?}", p.scanner));
        }
    }
    println!(
        "{} planted features, {} missing",
        m.features.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "missing: {missing:#?}");
    assert!(m.features.iter().any(|p| p.straddles));
    // the header names the recorder; histograms count
    let email = String::from_utf8_lossy(&fa["email.txt"]).into_owned();
    assert!(email.starts_with("# Feature-Recorder: email\n"), "{email}");
    let hist = String::from_utf8_lossy(&fa["email_histogram.txt"]).into_owned();
    assert!(hist.lines().any(|l| l.starts_with("n=")), "{hist}");
    // report.json: counts equal the lines, per-scanner statistics
    let r = report(a.path());
    let per = &r["counts"]["features"]["per_scanner"];
    for (name, set) in &by {
        assert_eq!(per[name].as_u64().unwrap_or(0), set.len() as u64, "{name}");
    }
    let stats = r["stats"].as_array().unwrap();
    for s in ["email", "ccn", "bitcoin"] {
        let st = stats
            .iter()
            .find(|x| x["scanner"] == format!("features/{s}"))
            .unwrap_or_else(|| panic!("no statistics for {s}: {stats:?}"));
        assert!(st["bytes"].as_u64().unwrap() >= r["evidence"]["size"].as_u64().unwrap());
    }
}

#[test]
fn stop_alert_and_find_lists() {
    let fx = small_fixture();
    let m: trawl_fixtures::Manifest =
        serde_json::from_str(&std::fs::read_to_string(&fx.manifest).unwrap()).unwrap();
    let email = m
        .features
        .iter()
        .find(|p| p.scanner == "email" && p.encoding == "ascii" && p.container.is_none())
        .expect("a plain e-mail address")
        .feature
        .clone();
    let ccn = m
        .features
        .iter()
        .find(|p| p.scanner == "ccn")
        .expect("a card number")
        .feature
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let stop = dir.path().join("stop.txt");
    let alert = dir.path().join("alert.txt");
    let find = dir.path().join("find.txt");
    std::fs::write(&stop, format!("# stop list\n{email}\n")).unwrap();
    std::fs::write(&alert, format!("{ccn}\n")).unwrap();
    // a literal the fixture's text holds, and a regex
    let word = email.split('@').nth(1).unwrap().to_string();
    std::fs::write(
        &find,
        format!("{word}\n/[a-z]+@{}/\n", word.replace('.', "\\.")),
    )
    .unwrap();
    let out = scan_features(
        &fx.image,
        &[
            "--shard-size",
            "1MiB",
            "--stop-list",
            stop.to_str().unwrap(),
            "--alert-list",
            alert.to_str().unwrap(),
            "--find",
            find.to_str().unwrap(),
        ],
    );
    let d = out.path();
    // stopped: diverted, never dropped
    assert!(!lines(d, "email").iter().any(|(_, f, _)| *f == email));
    assert!(
        lines(d, "email_stopped")
            .iter()
            .any(|(_, f, _)| *f == email),
        "{email} not in email_stopped.txt"
    );
    // alerts: copied, with the scanner that found it
    assert!(lines(d, "ccn").iter().any(|(_, f, _)| *f == ccn));
    let alerts = std::fs::read_to_string(d.join("features/alerts.txt")).unwrap();
    assert!(
        alerts
            .lines()
            .any(|l| l.contains(&format!("\t{ccn}\t")) && l.ends_with("\tccn")),
        "{alerts}"
    );
    // find: both keywords hit
    let found = lines(d, "find");
    assert!(
        found.iter().any(|(_, f, _)| f.eq_ignore_ascii_case(&word)),
        "{found:?}"
    );
    assert!(found.iter().any(|(_, f, _)| f.contains('@')), "{found:?}");
}

#[test]
fn bad_feature_settings_are_refused_clearly() {
    let fx = small_fixture();
    let out = tempfile::tempdir().unwrap();
    let o = run(&[
        "scan",
        fx.image.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "features",
        "--scanners",
        "email,nosuchscanner",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nosuchscanner"), "{err}");
    let kw = out.path().join("bad.txt");
    std::fs::write(&kw, "/([unclosed/\n").unwrap();
    let o = run(&[
        "scan",
        fx.image.to_str().unwrap(),
        "--out",
        out.path().join("r").to_str().unwrap(),
        "--analyses",
        "features",
        "--find",
        kw.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unclosed") || err.contains("line 1"), "{err}");
}
