//! Feature scanners: recall against the fixtures' ground truth (ASCII,
//! UTF-16, straddling, inside gzip and ZIP), exactly-once output identical
//! for every shard size and margin, bulk_extractor's expected features on
//! its own test data, false positives on random bytes, limits and hostile
//! input.

use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;
use trawl_core::spec::FeatureOptions;
use trawl_core::{Feature, Note};
use trawl_evidence::Evidence;
use trawl_features::FeatureError;
use trawl_features::{FeatureOutput, FeatureScanner, STAT_PREFIX};
use trawl_fixtures::{Config, Fixture, PlantedFeature};

mod common;
use common::{corpora, random_bytes, shard_outputs};

/// An in-memory image read through `read_at`.
type Mem = trawl_evidence::MemEvidence;

/// Everything a scan of a whole image gave.
struct Scan {
    features: Vec<Feature>,
    notes: Vec<Note>,
    stats: BTreeMap<String, (u64, u64, u64, u64)>,
}

/// Scans `ev` shard by shard (in parallel), as the workers do.
fn scan(sc: &FeatureScanner, ev: &dyn Evidence, shard_size: u64, margin: u64) -> Scan {
    let outs = shard_outputs(sc, ev, shard_size, margin);
    let mut features = Vec::new();
    let mut notes = Vec::new();
    let mut stats = BTreeMap::new();
    for o in outs {
        features.extend(o.features);
        notes.extend(o.notes);
        for s in o.stats {
            let e: &mut (u64, u64, u64, u64) = stats.entry(s.scanner).or_default();
            e.0 += s.bytes;
            e.1 += s.nanos;
            e.2 += s.findings;
            e.3 += s.skipped_bytes;
        }
    }
    features.sort_by(|a, b| a.sort_cmp(b));
    notes.sort();
    Scan {
        features,
        notes,
        stats,
    }
}

fn scanner(opts: &FeatureOptions) -> FeatureScanner {
    FeatureScanner::new(opts).unwrap()
}

fn all_scanners() -> FeatureScanner {
    scanner(&FeatureOptions::default())
}

fn small() -> &'static (Fixture, Mem) {
    static F: OnceLock<(Fixture, Mem)> = OnceLock::new();
    F.get_or_init(|| {
        let f = trawl_fixtures::generate(&Config::small());
        let m = Mem::new("mem", f.image.clone(), false);
        (f, m)
    })
}

fn medium() -> &'static (Fixture, Mem) {
    static F: OnceLock<(Fixture, Mem)> = OnceLock::new();
    F.get_or_init(|| {
        let f = trawl_fixtures::generate(&Config::medium());
        let m = Mem::new("mem", f.image.clone(), false);
        (f, m)
    })
}

/// The forensic path trawl gives a planted feature.
fn expected_path(p: &PlantedFeature) -> String {
    match (p.container.is_some(), p.encoding.as_str()) {
        (true, _) => p.forensic_path.clone(),
        _ => p.offset.to_string(),
    }
}

/// The other reading of a UTF-16 feature (LE at `o` is BE at `o - 1`).
fn other_reading(p: &PlantedFeature) -> Option<String> {
    if p.container.is_some() {
        return None;
    }
    match p.encoding.as_str() {
        "utf16le" => Some(p.offset.checked_sub(1)?.to_string()),
        "utf16be" => Some((p.offset + 1).to_string()),
        _ => None,
    }
}

struct Recall {
    exact: usize,
    other_reading: usize,
    missing: Vec<String>,
    /// UTF-16 features found in the other byte order although their run's
    /// ends decide the order.
    misread: Vec<String>,
}

/// Whether the UTF-16 run holding a planted feature is ambiguous: preceded
/// by a zero byte exactly when its last character is followed by one (both
/// readings complete, or both cut), so neither end decides the byte order.
fn ambiguous_run(image: &[u8], p: &PlantedFeature) -> bool {
    let text = |b: u8| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r');
    let c = p.offset as usize + usize::from(p.encoding == "utf16be");
    let mut first = c;
    while first >= 2 && image[first - 1] == 0 && text(image[first - 2]) {
        first -= 2;
    }
    let mut last = c;
    while last + 2 < image.len() && image[last + 1] == 0 && text(image[last + 2]) {
        last += 2;
    }
    let s_zero = first > 0 && image[first - 1] == 0;
    let e_zero = last + 1 < image.len() && image[last + 1] == 0;
    s_zero == e_zero
}

/// Checks every planted feature against the scan.
fn recall(fx: &Fixture, s: &Scan) -> Recall {
    let found: BTreeSet<(&str, &str, &[u8])> = s
        .features
        .iter()
        .map(|f| (f.scanner.as_str(), f.path.as_str(), f.feature.as_slice()))
        .collect();
    let mut r = Recall {
        exact: 0,
        other_reading: 0,
        missing: Vec::new(),
        misread: Vec::new(),
    };
    for p in &fx.manifest.features {
        let want = expected_path(p);
        if found.contains(&(p.scanner.as_str(), want.as_str(), p.feature.as_bytes())) {
            r.exact += 1;
        } else if let Some(o) = other_reading(p)
            && found.contains(&(p.scanner.as_str(), o.as_str(), p.feature.as_bytes()))
        {
            r.other_reading += 1;
            println!(
                "other reading: {} {want} {:?} {}",
                p.scanner, p.feature, p.encoding
            );
            if !ambiguous_run(&fx.image, p) {
                r.misread
                    .push(format!("{} {want} {:?}", p.scanner, p.feature));
            }
        } else {
            r.missing.push(format!(
                "{} {} {:?} ({}, straddles {})",
                p.scanner, want, p.feature, p.encoding, p.straddles
            ));
        }
    }
    r
}

/// No line twice (a feature may appear twice at one path with different
/// contexts: the source and destination of a packet sent to itself).
fn assert_exactly_once(s: &Scan) {
    let mut seen = BTreeSet::new();
    for f in &s.features {
        assert!(
            seen.insert((&f.scanner, &f.path, &f.feature, &f.context)),
            "reported twice: {f:?}"
        );
    }
}

fn check_fixture(name: &str, fx: &Fixture, ev: &Mem) {
    let sc = all_scanners();
    let s = scan(&sc, ev, 1 << 20, 1 << 20);
    let r = recall(fx, &s);
    let total = fx.manifest.features.len();
    println!(
        "{name}: {total} planted features: {} at their exact path, {} in the other UTF-16 reading, {} missing",
        r.exact,
        r.other_reading,
        r.missing.len()
    );
    assert!(r.missing.is_empty(), "{name}: missing {:#?}", r.missing);
    // the other byte order only where neither end of the run decides it
    assert!(
        r.misread.is_empty(),
        "{name}: byte order misread: {:#?}",
        r.misread
    );
    assert_exactly_once(&s);
    // every scanner accounts for the whole image
    for (scanner, (bytes, nanos, findings, skipped)) in &s.stats {
        println!(
            "{name}: {scanner}: {bytes} bytes, {skipped} skipped, {findings} findings, {nanos} ns"
        );
        // (the inflater counts the compressed streams it opened)
        if !scanner.ends_with("/inflate") {
            assert!(*bytes >= ev.size(), "{name}: {scanner} saw {bytes} bytes");
        }
    }
    assert!(!s.stats.is_empty());
    println!("{name}: notes {:?}", s.notes);
    // categories covered
    let planted = &fx.manifest.features;
    assert!(planted.iter().any(|p| p.straddles && p.container.is_none()));
    assert!(planted.iter().any(|p| p.encoding == "utf16be"));
    assert!(planted.iter().any(|p| p.container.is_some() && p.straddles));
    // identical output whatever the shard size
    for (shard, margin) in [(64 << 20, 1 << 20), (64 << 10, 1 << 20), (1 << 20, 4 << 10)] {
        let t = scan(&sc, ev, shard, margin);
        assert!(
            t.features == s.features,
            "{name}: shard {shard} margin {margin}: {} features vs {}",
            t.features.len(),
            s.features.len()
        );
    }
}

#[test]
fn small_fixture_recall_and_shard_invariance() {
    let (fx, ev) = small();
    check_fixture("small", fx, ev);
}

#[test]
fn medium_fixture_recall_and_shard_invariance() {
    let (fx, ev) = medium();
    check_fixture("medium", fx, ev);
}

#[test]
fn nps_2010_emails_against_bulk_extractor() {
    let Some(c) = corpora("nps_2010_emails_against_bulk_extractor") else {
        return;
    };
    let dir = c.join("bulk-extractor-test-data/src/tests");
    let ev = trawl_evidence::open(dir.join("nps-2010-emails.E01")).unwrap();
    let sc = all_scanners();
    let s = scan(&sc, ev.as_ref(), 64 << 20, 1 << 20);
    // Lines as bulk_extractor writes them: forensic path, feature, context.
    let got: BTreeSet<String> = s
        .features
        .iter()
        .filter(|f| f.scanner == "email")
        .map(|f| {
            format!(
                "{}\t{}\t{}",
                f.path,
                trawl_features::format::escape(&f.feature),
                trawl_features::format::escape(&f.context)
            )
        })
        .collect();
    let expected: BTreeSet<String> = std::fs::read_to_string(dir.join("nps-email.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    println!(
        "nps-2010-emails: {} of {} lines of nps-email.txt identical (path, feature, context); {} more from zlib streams",
        expected.len() - missing.len(),
        expected.len(),
        extra.len()
    );
    assert_eq!(expected.len(), 76);
    assert!(missing.is_empty(), "missing {missing:?}");
    // The only lines bulk_extractor does not write: addresses inside raw
    // zlib streams (of OLE documents), a layer it does not decode.
    assert!(
        extra
            .iter()
            .all(|l| l.split('\t').next().unwrap().contains("-ZLIB-")),
        "extra {extra:?}"
    );
    // the same with small shards
    let t = scan(&sc, ev.as_ref(), 64 << 10, 1 << 20);
    assert!(t.features == s.features);
}

/// Whether a line of data_check.txt is a feature of a kind trawl scans
/// for (e-mail, card number, bitcoin, host name in PDF text), in layers it
/// decodes (BASE64 included; not OUTLOOK, RAR).
fn in_scope(path: &str, feature: &str) -> bool {
    if ["OUTLOOK", "RAR"].iter().any(|l| path.contains(l)) {
        return false;
    }
    let b58 = |c: char| c.is_ascii_alphanumeric() && !"0OIl".contains(c);
    feature.contains('@')
        || ((13..=19).contains(&feature.len()) && feature.chars().all(|c| c.is_ascii_digit()))
        || ((26..=35).contains(&feature.len())
            && (feature.starts_with('1') || feature.starts_with('3'))
            && feature.chars().all(b58))
        || (path.contains("PDF") && feature.contains('.') && !feature.contains(' '))
}

#[test]
fn tests_data_against_bulk_extractor() {
    let Some(c) = corpora("tests_data_against_bulk_extractor") else {
        return;
    };
    let root = c.join("bulk-extractor-test-data/tests");
    let sc = all_scanners();
    let text = std::fs::read_to_string(root.join("data_check.txt")).unwrap();
    let mut cache: BTreeMap<String, BTreeSet<(String, Vec<u8>)>> = BTreeMap::new();
    let (mut total, mut scope, mut found_scope, mut found_all) = (0, 0, 0, 0);
    let mut missing = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.split('\t');
        let loc = cols.next().unwrap();
        let feature = cols.next().unwrap_or_default();
        let Some((file, path)) = loc.split_once('\u{10001c}') else {
            continue;
        };
        total += 1;
        let path = path.trim_start_matches('-').to_string();
        let file_path = root.join(file);
        if !file_path.is_file() {
            continue; // the ELF files are not in the corpus
        }
        let got = cache.entry(file.to_string()).or_insert_with(|| {
            let ev = Mem::new("mem", std::fs::read(&file_path).unwrap(), false);
            scan(&sc, &ev, 64 << 20, 1 << 20)
                .features
                .iter()
                .map(|f| (f.path.clone(), f.feature.clone()))
                .collect()
        });
        let hit = got.contains(&(path.clone(), feature.as_bytes().to_vec()));
        found_all += usize::from(hit);
        if in_scope(&path, feature) {
            scope += 1;
            if hit {
                found_scope += 1;
            } else {
                missing.push(format!("{file} {path} {feature}"));
            }
        }
    }
    println!(
        "tests/Data: {total} expected lines; {scope} of trawl's kinds (e-mail, card, bitcoin, host name; in every layer but OUTLOOK/RAR): {found_scope} found at the same forensic path; {found_all} of all {total} found"
    );
    assert!(scope >= 26, "in-scope lines: {scope}");
    assert!(missing.is_empty(), "missing {missing:#?}");
}

#[test]
fn random_bytes_false_positives() {
    // 256 MiB of random bytes in 8 independent images, every scanner and
    // decoding layer on
    let sc = scanner(&opts(|o| {
        o.scanners = vec!["+all".into(), "+base16".into()]
    }));
    assert!(sc.enabled_structs().len() >= 13 && sc.layer_on("base16"));
    let per: Vec<Vec<Feature>> = (0..8u64)
        .into_par_iter()
        .map(|i| {
            let data = random_bytes((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15), 32 << 20);
            sc.scan_buffer(&data, &AtomicBool::new(false))
                .unwrap()
                .features
        })
        .collect();
    let all: Vec<&Feature> = per.iter().flatten().collect();
    let count = |s: &str| all.iter().filter(|f| f.scanner == s).count();
    let mut counts = BTreeMap::new();
    for f in &all {
        *counts.entry(f.scanner.as_str()).or_insert(0usize) += 1;
    }
    println!("random bytes, 256 MiB, features per recorder (absent: 0): {counts:?}");
    for s in ["ccn", "iban", "bitcoin"] {
        assert_eq!(count(s), 0, "{s} false positives on random bytes");
    }
    // the structure scanners and the hex strings: none at all
    for def in trawl_features::records::STRUCTS {
        for r in def.recorders {
            assert_eq!(
                count(r) - usize::from(*r == "ether") * count_text_ether(&all),
                0,
                "{} false positives ({r})",
                def.name
            );
        }
    }
    assert_eq!(count(trawl_features::HEX_RECORDER), 0);
    // e-mail and URL hits on noise are rare: a few per GiB at most
    assert!(count("email") <= 8, "{}", count("email"));
    assert!(count("url") <= 2, "{}", count("url"));
}

/// MAC addresses found in text (the text scanner's `ether` features, whose
/// context is the text around them), told from the net scanner's ones
/// (context `(ether_dhost)` / `(ether_shost)`).
fn count_text_ether(all: &[&Feature]) -> usize {
    all.iter()
        .filter(|f| f.scanner == "ether" && !f.context.starts_with(b"(ether_"))
        .count()
}

fn opts(f: impl FnOnce(&mut FeatureOptions)) -> FeatureOptions {
    let mut o = FeatureOptions::default();
    f(&mut o);
    o
}

/// The features found (not the listing of decoded buffers).
fn names(out: &FeatureOutput) -> Vec<(String, String, String)> {
    out.features
        .iter()
        .filter(|f| f.scanner != trawl_features::DECODED_RECORDER)
        .map(|f| {
            (
                f.scanner.clone(),
                f.path.clone(),
                String::from_utf8_lossy(&f.feature).into_owned(),
            )
        })
        .collect()
}

#[test]
fn stop_and_alert_lists() {
    let sc = scanner(&opts(|o| {
        o.scanners = vec!["email".into()];
        o.stop_list = "# noise\nnoreply@example.com\n".into();
        o.alert_list = "boss@corp.example.com\n.*@evil\\.example\\.org\n".into();
    }));
    let data = b"From: noreply@example.com\nTo: boss@corp.example.com\nCc: eve@evil.example.org, joe@example.net\n";
    let out = sc.scan_buffer(data, &AtomicBool::new(false)).unwrap();
    let got = names(&out);
    let has = |s: &str, f: &str| got.iter().any(|g| g.0 == s && g.2 == f);
    assert!(has("email_stopped", "noreply@example.com"));
    assert!(
        !has("email", "noreply@example.com"),
        "stopped features leave email.txt"
    );
    assert!(has("email", "boss@corp.example.com") && has("alerts", "boss@corp.example.com"));
    assert!(has("email", "eve@evil.example.org") && has("alerts", "eve@evil.example.org"));
    assert!(has("email", "joe@example.net") && !has("alerts", "joe@example.net"));
    assert_eq!(got.len(), 6, "{got:?}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn inflation_bomb_is_bounded_and_noted() {
    let mut inner = b"early: alice@example.com\n".to_vec();
    inner.resize(8 << 20, 0);
    inner.extend_from_slice(b" late: bob@example.com\n");
    let mut img = b"xxxx".to_vec();
    img.extend(gzip(&inner));
    assert!(img.len() < 1 << 20, "{}", img.len());
    let sc = scanner(&opts(|o| {
        o.scanners = vec!["email".into()];
        o.max_inflate_bytes = 1 << 20;
    }));
    let out = sc.scan_buffer(&img, &AtomicBool::new(false)).unwrap();
    let got = names(&out);
    assert_eq!(
        got,
        [(
            "email".into(),
            "4-GZIP-7".into(),
            "alice@example.com".into()
        )]
    );
    assert!(
        out.notes
            .iter()
            .any(|n| n.message.contains("limit of 1048576 bytes")),
        "{:?}",
        out.notes
    );
    // default bound: found
    let out = all_scanners()
        .scan_buffer(&img, &AtomicBool::new(false))
        .unwrap();
    assert!(names(&out).iter().any(|g| g.2 == "bob@example.com"));
}

#[test]
fn nesting_depth_is_limited_and_noted() {
    // zeros after each level keep every level compressed (no stored block
    // showing the level below as it is)
    let mut data = b"deep: carol@example.com\n".to_vec();
    for _ in 0..10 {
        data.extend([0u8; 4096]);
        data = gzip(&data);
    }
    let out = all_scanners()
        .scan_buffer(&data, &AtomicBool::new(false))
        .unwrap();
    assert!(!names(&out).iter().any(|g| g.0 == "email"));
    assert!(
        out.notes
            .iter()
            .any(|n| n.message.contains("recursion depth limit 7"))
    );
    let sc = scanner(&opts(|o| o.max_recursion_depth = 12));
    let out = sc.scan_buffer(&data, &AtomicBool::new(false)).unwrap();
    let deep = names(&out);
    let e = deep
        .iter()
        .find(|g| g.0 == "email")
        .expect("found when deep enough");
    assert_eq!(e.1, format!("0{}-6", "-GZIP-0".repeat(9) + "-GZIP"));
    assert!(out.notes.is_empty(), "{:?}", out.notes);
}

#[test]
fn cancellation() {
    let data = random_bytes(7, 4 << 20);
    let r = all_scanners().scan_buffer(&data, &AtomicBool::new(true));
    assert!(matches!(r, Err(FeatureError::Cancelled)));
}

#[test]
fn features_per_shard_are_capped() {
    let mut data = Vec::new();
    for i in 0..110_000u32 {
        data.extend_from_slice(format!("u{i:06}@ex.com ").as_bytes());
    }
    let sc = scanner(&opts(|o| o.scanners = vec!["email".into()]));
    let out = sc.scan_buffer(&data, &AtomicBool::new(false)).unwrap();
    assert_eq!(out.features.len(), 100_000);
    assert!(
        out.notes
            .iter()
            .any(|n| n.message.contains("more than 100000 features"))
    );
}

#[test]
fn inert_blocks_are_skipped_and_counted() {
    let mut data = vec![0u8; 1 << 20];
    data.extend_from_slice(b" write to dave@example.com today ");
    data.extend(vec![0xffu8; 1 << 20]);
    let out = all_scanners()
        .scan_buffer(&data, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(names(&out).iter().filter(|g| g.0 == "email").count(), 1);
    let email = out
        .stats
        .iter()
        .find(|s| s.scanner == format!("{STAT_PREFIX}email"))
        .unwrap();
    assert_eq!(email.bytes, data.len() as u64);
    assert!(
        email.skipped_bytes >= (2 << 20) - 3 * 4096,
        "{}",
        email.skipped_bytes
    );
    assert_eq!(email.findings, 1);
    for k in [
        "email", "url", "domain", "ipv4", "ipv6", "ether", "ccn", "iban", "phone", "bitcoin",
        "utf16", "inflate",
    ] {
        assert!(
            out.stats
                .iter()
                .any(|s| s.scanner == format!("{STAT_PREFIX}{k}")),
            "{k}"
        );
    }
}

#[test]
fn scanner_selection_and_bad_settings() {
    let sc = scanner(&opts(|o| o.scanners = vec!["email,ccn".into()]));
    let data = b"x bob@example.com 4111 1111 1111 1111 http://www.example.com/ 10.0.0.1 ";
    let out = sc.scan_buffer(data, &AtomicBool::new(false)).unwrap();
    let kinds: BTreeSet<String> = names(&out).into_iter().map(|g| g.0).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ccn".to_string(), "email".to_string()])
    );
    assert!(FeatureScanner::new(&opts(|o| o.scanners = vec!["emial".into()])).is_err());
    assert!(FeatureScanner::new(&opts(|o| o.scanners = vec!["find".into()])).is_err());
    assert!(FeatureScanner::new(&opts(|o| o.find_keywords = "/(unclosed/".into())).is_err());
    assert!(FeatureScanner::new(&opts(|o| o.stop_list = "a[b".into())).is_err());
}

#[test]
fn find_keywords_in_text_utf16_and_gzip() {
    let sc = scanner(&opts(|o| {
        o.find_keywords = "Project Falcon\n/acct-[0-9]{6}/\n".into()
    }));
    let mut data = b"notes: the project falcon launch; ref ACCT-123456.\n".to_vec();
    data.extend(
        "\u{0}see Project Falcon now"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    data.extend(gzip(b"zipped acct-654321 here"));
    let out = sc.scan_buffer(&data, &AtomicBool::new(false)).unwrap();
    let finds: Vec<(String, String)> = names(&out)
        .into_iter()
        .filter(|g| g.0 == "find")
        .map(|g| (g.1, g.2))
        .collect();
    assert_eq!(finds.len(), 4, "{finds:?}");
    assert!(finds.contains(&("11".into(), "project falcon".into())));
    assert!(finds.contains(&("38".into(), "ACCT-123456".into())));
    assert!(finds.iter().any(|f| f.0 != "11" && f.1 == "Project Falcon"));
    assert!(
        finds
            .iter()
            .any(|f| f.0.contains("-GZIP-7") && f.1 == "acct-654321")
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Building blocks of hostile but feature-rich images.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            Just(b"bob.smith@example.com".to_vec()),
            Just(b"https://www.example.org/a/b?q=1".to_vec()),
            Just(b"4111 1111 1111 1111".to_vec()),
            Just(b"FR14 2004 1010 0505 0001 3M02 606".to_vec()),
            Just(b"+33612345678".to_vec()),
            Just(b"10.20.30.40".to_vec()),
            Just(b"fe80::1:2:3:4".to_vec()),
            Just(b"00:1a:2b:3c:4d:5e".to_vec()),
            Just(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa".to_vec()),
            Just(vec![0u8; 100]),
            Just(b"stream\r\n".to_vec()),
            Just(b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec()),
            "[a-z@.:/ 0-9]{0,40}".prop_map(String::into_bytes),
            "[A-Z]{2}[0-9]{2}( [A-Z0-9]{1,5}){0,7}".prop_map(String::into_bytes),
            "[+0]?[0-9]{1,4}([ .-][0-9]{1,4}){0,6}".prop_map(String::into_bytes),
            "(bc|BC)1[a-z0-9]{6,70}".prop_map(String::into_bytes),
            "[a-z@.:/ 0-9]{0,40}"
                .prop_map(|s| s.encode_utf16().flat_map(u16::to_le_bytes).collect()),
            "[a-z@.:/ 0-9]{0,40}"
                .prop_map(|s| s.encode_utf16().flat_map(u16::to_be_bytes).collect()),
            "[a-z@.: 0-9]{0,60}".prop_map(|s| gzip(s.as_bytes())),
            // what the structure scanners and decoding layers look for
            "[A-Za-z0-9+/]{76}".prop_map(|l| format!("\n{l}\r\n{l}\r\n{l}\r\n{}==\r\n", &l[..20]).into_bytes()),
            "[0-9a-f]{12,200}".prop_map(String::into_bytes),
            Just(br#"{"user": "a", "id": 7, "tags": ["p", "q"]}"#.to_vec()),
            Just(br#"<trkpt lat="47.644548" lon="-122.326897"><ele>4.46</ele><time>2009-10-17T18:37:26Z</time></trkpt>"#.to_vec()),
            Just(b"VIN 1HGBH41JXMN109186 ".to_vec()),
            Just(b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A B\r\nEND:VCARD\r\n".to_vec()),
            Just(b"Rar!\x1a\x07\x00\xcf\x90\x73\x00\x00\x0d\x00".to_vec()),
            Just(b"SQLite format 3\0\x10\x00\x01\x01\x00\x40\x20\x20".to_vec()),
            Just(b"\x7fELF\x02\x01\x01\x00".to_vec()),
            Just(b"MZ\x90\x00\x03\x00\x00\x00PE\0\0d\x86".to_vec()),
            Just(b"II*\0\x08\0\0\0\x01\0\x0f\x01\x02\0".to_vec()),
            Just(b"\xff\xd8\xff\xe1\x00\x20Exif\0\0MM\0*".to_vec()),
            Just(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00".to_vec()),
            Just(b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x02".to_vec()),
        ]
    }

    /// Every scanner and decoding layer on.
    fn everything() -> FeatureScanner {
        scanner(&opts(|o| {
            o.scanners = vec!["+all".into(), "+base16".into()]
        }))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn no_panic_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..8192)) {
            let out = everything().scan_buffer(&data, &AtomicBool::new(false)).unwrap();
            for f in &out.features {
                prop_assert!(f.offset < data.len().max(1) as u64);
            }
        }

        #[test]
        fn same_features_for_every_shard_size(
            parts in proptest::collection::vec(token(), 1..80),
            exp in 10u32..13,
            margin in prop_oneof![Just(0u64), 1u64..3000, Just(1u64 << 20)],
        ) {
            let data: Vec<u8> = parts.concat();
            let ev = Mem::new("mem", data, false);
            let sc = everything();
            let whole = scan(&sc, &ev, 1 << 30, 1 << 20);
            let sharded = scan(&sc, &ev, 1 << exp, margin);
            prop_assert_eq!(&whole.features, &sharded.features);
            assert_exactly_once(&whole);
        }
    }
}

#[test]
fn identical_decoded_buffers_are_scanned_once_and_listed() {
    // the same gzip member at three offsets, in different shards of the
    // 64 KiB plan; a different member in between
    let a = gzip(b"contact: first.copy@example.com, again");
    let b = gzip(b"other: second.thing@example.org");
    let mut img = vec![0x20u8; 400_000];
    for (at, m) in [
        (1_000usize, &a),
        (150_000, &b),
        (200_000, &a),
        (330_001, &a),
    ] {
        img[at..at + m.len()].copy_from_slice(m);
    }
    let ev = Mem::new("mem", img, false);
    let sc = all_scanners();
    let mut outs = Vec::new();
    for (shard, margin) in [(64 << 10, 4 << 10), (1 << 30, 1 << 20)] {
        let mut f = scan(&sc, &ev, shard, margin).features;
        let (dups, bytes) = trawl_features::dedupe_layers(&mut f);
        assert_eq!(dups, 2);
        assert_eq!(bytes, 2 * 38);
        outs.push(f);
    }
    assert_eq!(outs[0], outs[1], "the same whatever the shard plan");
    let f = &outs[0];
    let emails: Vec<(&str, &[u8])> = f
        .iter()
        .filter(|f| f.scanner == "email" && f.path.contains("GZIP"))
        .map(|f| (f.path.as_str(), f.feature.as_slice()))
        .collect();
    assert_eq!(
        emails,
        [
            ("1000-GZIP-9", &b"first.copy@example.com"[..]),
            ("150000-GZIP-7", b"second.thing@example.org")
        ]
    );
    let listed: Vec<(&str, String)> = f
        .iter()
        .filter(|f| f.scanner == trawl_features::DECODED_RECORDER)
        .map(|f| {
            (
                f.path.as_str(),
                String::from_utf8_lossy(&f.context).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("1000-GZIP", "size=38".to_string()),
            ("150000-GZIP", "size=31".to_string()),
            ("200000-GZIP", "size=38 duplicate_of=1000-GZIP".to_string()),
            ("330001-GZIP", "size=38 duplicate_of=1000-GZIP".to_string()),
        ]
    );
}

#[test]
fn base16_json_file_decoded_as_bulk_extractor_does() {
    let Some(c) = corpora("base16_json_file_decoded_as_bulk_extractor_does") else {
        return;
    };
    let data =
        std::fs::read(c.join("bulk-extractor-test-data/src/tests/test_base16json.txt")).unwrap();
    // the hex line starts after the first line
    let start = data.iter().position(|&b| b == b'\n').unwrap() + 1;
    let sc = scanner(&opts(|o| o.scanners = vec!["+base16".into()]));
    let out = sc.scan_buffer(&data, &AtomicBool::new(false)).unwrap();
    let got: Vec<(String, String, String)> = names(&out);
    let prefix = format!("{start}-BASE16-");
    // bulk_extractor's base16 scanner: the run decodes to 151 bytes (> 64),
    // scanned again: the JSON array and its three addresses
    let json: Vec<&(String, String, String)> = got.iter().filter(|g| g.0 == "json").collect();
    assert_eq!(json.len(), 1, "{got:#?}");
    assert_eq!(json[0].1, format!("{prefix}0"));
    assert!(
        json[0]
            .2
            .starts_with("[{\"1\": \"one@base16_company.com\"}")
    );
    let emails: BTreeSet<(String, String)> = got
        .iter()
        .filter(|g| g.0 == "email")
        .map(|g| (g.1.clone(), g.2.clone()))
        .collect();
    // offsets in the decoded text `[{"1": "one@...`, `}, {"2": "two@...`
    let want: BTreeSet<(String, String)> = [(8, "one"), (41, "two"), (74, "two")]
        .iter()
        .map(|(o, w)| (format!("{prefix}{o}"), format!("{w}@base16_company.com")))
        .collect();
    assert_eq!(emails, want);
    // off by default, as in bulk_extractor
    let out = all_scanners()
        .scan_buffer(&data, &AtomicBool::new(false))
        .unwrap();
    assert!(names(&out).iter().all(|g| !g.1.contains("BASE16")));
}
