//! Golden files: a fixed set's STIX bundle (amber), MISP event (green) and
//! MISP feed, byte for byte. `TRAWL_BLESS=1` rewrites them (on purpose
//! only: a change of output is a change of format).

mod common;

use common::{golden_set, sharing_dir};
use std::path::Path;
use trawl_share::{Tlp, misp_event, misp_feed, stix_bundle};

fn bless() -> bool {
    std::env::var_os("TRAWL_BLESS").is_some()
}

fn compare(path: &Path, got: &[u8]) {
    if bless() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, got).unwrap();
    }
    let want = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e} (TRAWL_BLESS=1 writes it)", path.display()));
    assert!(
        want == got,
        "{} differs from the output:\n{}",
        path.display(),
        String::from_utf8_lossy(got)
    );
}

#[test]
fn stix_bundle_amber_is_the_golden_file() {
    let w = stix_bundle(&golden_set(Tlp::Amber, "case C0001")).unwrap();
    // strict.example and red-only.example are withheld; bitcoin, IBAN,
    // phone and the rule name have no STIX object.
    assert_eq!((w.withheld, w.not_in_format), (2, 4));
    // marking, identity, 9 items × 4, one YARA indicator
    assert_eq!(w.objects, 2 + 9 * 4 + 1);
    compare(&sharing_dir().join("bundle-amber.json"), &w.bytes);
}

#[test]
fn misp_event_green_is_the_golden_file() {
    let w = misp_event(&golden_set(Tlp::Green, "case C0001")).unwrap();
    // the five amber items, amber+strict and red withheld
    assert_eq!(w.withheld, 5 + 1 + 1);
    assert_eq!(w.objects, 8 + 1);
    let text = String::from_utf8(w.bytes.clone()).unwrap();
    for absent in [
        "strict.example",
        "red-only.example",
        "2001:db8::7",
        "FR1420041010050500013M02606",
    ] {
        assert!(!text.contains(absent), "{absent}");
    }
    compare(&sharing_dir().join("event-green.json"), &w.bytes);
}

#[test]
fn misp_feed_is_the_golden_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("feed");
    let sets = [
        golden_set(Tlp::Green, "case C0001"),
        golden_set(Tlp::Amber, "flash F000001"),
    ];
    let w = misp_feed(&sets, &out).unwrap();
    assert_eq!((w.events, w.withheld), (2, 7 + 2));
    let golden = sharing_dir().join("feed");
    if bless() {
        if golden.exists() {
            std::fs::remove_dir_all(&golden).unwrap();
        }
        std::fs::create_dir_all(&golden).unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (TRAWL_BLESS=1 writes it)", golden.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    if bless() {
        names = w.files.iter().map(|(n, _)| n.clone()).collect();
    }
    names.sort();
    let written: Vec<String> = w.files.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, written, "the golden feed's files");
    for name in &written {
        compare(&golden.join(name), &std::fs::read(out.join(name)).unwrap());
    }
    // The listing digest of the golden feed, as the audit trail records it.
    let listing = std::fs::read_to_string(golden.join("..").join("feed.sha256")).ok();
    let lines: String = w.files.iter().map(|(n, s)| format!("{s}  {n}\n")).collect();
    if bless() {
        std::fs::write(sharing_dir().join("feed.sha256"), &lines).unwrap();
    } else {
        assert_eq!(
            listing.as_deref(),
            Some(lines.as_str()),
            "fixtures/sharing/feed.sha256"
        );
    }
}
