//! The json, kml, vcard and vin structure scanners: bulk_extractor's
//! expected lines on its own test files, exactly-once output identical for
//! every shard plan, hostile input, false positives and throughput on
//! random bytes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;
use trawl_core::Feature;
use trawl_core::spec::FeatureOptions;
use trawl_evidence::Evidence;
use trawl_features::{FeatureScanner, STAT_PREFIX};

mod common;
use common::{be_test_data as corpora, shard_outputs};

type Mem = trawl_evidence::MemEvidence;

const MINE: [&str; 4] = ["json", "kml", "vcard", "vin"];

/// Features of the four recorders and the scanners' own time (ns).
struct Scan {
    features: Vec<Feature>,
    nanos: BTreeMap<String, u64>,
}

/// Scans `ev` shard by shard (in parallel), as the workers do.
fn scan(sc: &FeatureScanner, ev: &dyn Evidence, shard_size: u64, margin: u64) -> Scan {
    let outs = shard_outputs(sc, ev, shard_size, margin);
    let mut features = Vec::new();
    let mut nanos = BTreeMap::new();
    for o in outs {
        features.extend(
            o.features
                .into_iter()
                .filter(|f| MINE.contains(&f.scanner.as_str())),
        );
        for s in o.stats {
            *nanos.entry(s.scanner).or_default() += s.nanos;
        }
    }
    features.sort_by(|a, b| a.sort_cmp(b));
    Scan { features, nanos }
}

fn scanner(names: &str) -> FeatureScanner {
    let mut o = FeatureOptions::default();
    if !names.is_empty() {
        o.scanners = vec![names.into()];
    }
    FeatureScanner::new(&o).unwrap()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The features of one file scanned as a whole image (one shard).
fn scan_file(data: &[u8], names: &str) -> Vec<Feature> {
    let ev = Mem::new("mem", data.to_vec(), false);
    scan(&scanner(names), &ev, 1 << 30, 1 << 20).features
}

/// A line as bulk_extractor writes it (path, feature, context), with the
/// carved-file placeholder resolved by the path column.
fn line(f: &Feature) -> (String, String, String, String) {
    let feat = String::from_utf8_lossy(&f.feature).replace("{pos}", &f.path.replace('/', "_"));
    let ctx = String::from_utf8_lossy(&f.context).replace("{pos}", &f.path.replace('/', "_"));
    (f.scanner.clone(), f.path.clone(), feat, ctx)
}

fn sha1_hex(data: &[u8]) -> String {
    trawl_hash::sha_multi::sha1_many(&[data])[0]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn test_json_txt() {
    let Some(c) = corpora("test_json_txt") else {
        return;
    };
    // src/test_be.cpp TEST_CASE("test_json"): json.txt has
    // Feature("0", JSON1, "ef2b5d7ee21e14eeebb5623784f73724218ee5dd").
    let json1 = r#"[{"1": "one@company.com"}, {"2": "two@company.com"}, {"3": "two@company.com"}]"#;
    let got = scan_file(&read(&c.join("src/tests/test_json.txt")), "json");
    let lines: Vec<_> = got.iter().map(line).collect();
    assert_eq!(
        lines,
        vec![(
            "json".into(),
            "0".into(),
            json1.into(),
            "ef2b5d7ee21e14eeebb5623784f73724218ee5dd".into()
        )]
    );
    // The base16 / base64 files hold no plain JSON (their JSON is found
    // through the base16 / base64 layers, not built here).
    for f in ["test_base16json.txt", "test_base64json.txt"] {
        assert!(scan_file(&read(&c.join("src/tests").join(f)), "json").is_empty());
    }
}

#[test]
fn data_json_files() {
    let Some(c) = corpora("data_json_files") else {
        return;
    };
    // tests/data_check.txt lists no json lines; by scan_json.cpp every
    // object with more than two commas is reported at its `{` with its
    // SHA-1: the two objects of json_log.txt and the one of
    // json_plain.txt.
    let log = read(&c.join("tests/Data/json_log.txt"));
    let got = scan_file(&log, "json");
    let turing = find(&log, b"{\n\"name\": \"Turing\"");
    let murdock = find(&log, b"{\n\"name\": \"Murdock\"");
    assert_eq!(
        got.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
        vec![turing.to_string(), murdock.to_string()]
    );
    for f in &got {
        assert!(f.feature.starts_with(b"{\n\"name\""));
        assert!(f.feature.ends_with(b"}]\n}"));
        assert_eq!(f.context, sha1_hex(&f.feature).into_bytes());
    }
    let plain = read(&c.join("tests/Data/json_plain.txt"));
    let got = scan_file(&plain, "json");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "0");
    let end = plain.iter().rposition(|&b| b == b'}').unwrap() + 1;
    assert_eq!(got[0].feature, &plain[..end]);
    assert_eq!(got[0].context, sha1_hex(&plain[..end]).into_bytes());
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    memchr::memmem::find(hay, needle).unwrap()
}

#[test]
fn kml_samples() {
    let Some(c) = corpora("kml_samples") else {
        return;
    };
    // src/test_be.cpp TEST_CASE("KML_Samples.kml"): kml.txt has
    // Feature("0", "kml/000/0.kml", "<fileobject><filename>kml/000/0.kml
    // </filename><filesize>35919</filesize><hashdigest type='sha1'>cffc78e2
    // 7ac32414b33d595a0fefcb971eaadaa3</hashdigest></fileobject>").
    let got = scan_file(&read(&c.join("src/tests/KML_Samples.kml")), "kml");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].feature, b"kml/000/0.kml");
    assert_eq!(
        line(&got[0]),
        (
            "kml".into(),
            "0".into(),
            "kml/000/0.kml".into(),
            "<fileobject><filename>kml/000/0.kml</filename><filesize>35919</filesize><hashdigest type='sha1'>cffc78e27ac32414b33d595a0fefcb971eaadaa3</hashdigest></fileobject>".into()
        )
    );
}

#[test]
fn vcards() {
    let Some(c) = corpora("vcards") else {
        return;
    };
    // src/test_be.cpp TEST_CASE("scan_vcard") carves john_jakes.vcf at -0;
    // tests/data_check.txt: "Data/John Jakes.vcf…-0  vcard/000/…-0.vcf
    // <fileobject>...". The card is the whole file (it ends with
    // END:VCARD\r\n).
    for p in ["src/tests/john_jakes.vcf", "tests/Data/John Jakes.vcf"] {
        let data = read(&c.join(p));
        let got = scan_file(&data, "vcard");
        assert_eq!(got.len(), 1, "{p}");
        assert_eq!(
            line(&got[0]),
            (
                "vcard".into(),
                "0".into(),
                "vcard/000/0.vcf".into(),
                format!(
                    "<fileobject><filename>vcard/000/0.vcf</filename><filesize>{}</filesize><hashdigest type='sha1'>{}</hashdigest></fileobject>",
                    data.len(),
                    sha1_hex(&data)
                )
            )
        );
    }
}

/// Expected vin.txt lines for VINs at the given strings' occurrences.
fn vin_lines(
    data: &[u8],
    vins: &[&str],
    path: impl Fn(usize) -> String,
) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for v in vins {
        for p in memchr::memmem::find_iter(data, v.as_bytes()) {
            let c0 = p.saturating_sub(16);
            let c1 = (p + 17 + 16).min(data.len());
            out.push((
                "vin".to_string(),
                path(p),
                v.to_string(),
                String::from_utf8_lossy(&data[c0..c1]).into_owned(),
            ));
        }
    }
    out.sort_by(|a, b| (a.1.len(), &a.1).cmp(&(b.1.len(), &b.1)));
    out
}

fn sorted(mut v: Vec<(String, String, String, String)>) -> Vec<(String, String, String, String)> {
    v.sort_by(|a, b| (a.1.len(), &a.1).cmp(&(b.1.len(), &b.1)));
    v
}

#[test]
fn test_vin_txt() {
    let Some(c) = corpora("test_vin_txt") else {
        return;
    };
    // src/tests/test_vin.txt: tests 1–9 valid (1, 2 and 3 appear twice),
    // 10–14 must not match; scan_vehicle.flex + scan_vin.cpp accept exactly
    // those. Feature = the 17 characters, context 16 bytes each side
    // (write_buf).
    let data = read(&c.join("src/tests/test_vin.txt"));
    let valid = [
        "1HGBH41JXMN109186",
        "JH4DB1561NS000565",
        "5GZCZ43D13S812715",
        "1G1ZT53826F109149",
        "JN1AV7AR4EM700084",
        "WBA3A5C57CFJ89971",
        "1G1ZC5EB1AF319310",
    ];
    let mut want = vin_lines(&data, &valid, |p| p.to_string());
    // Test 14 (FFFFFFFF1HGBH41JXMN109186FFFFFFFF) is glued to hex.
    let hex = find(&data, b"FFFFFFFF1HGB") + 8;
    want.retain(|l| l.1 != hex.to_string());
    assert_eq!(want.len(), 10);
    let got = sorted(scan_file(&data, "vin").iter().map(line).collect());
    assert_eq!(got, want);
}

#[test]
fn test_synthetic_vin_json() {
    let Some(c) = corpora("test_synthetic_vin_json") else {
        return;
    };
    // src/tests/test_synthetic_vin.json: the 20 "valid" VINs are found,
    // none of the 20 "invalid" ones.
    let data = read(&c.join("src/tests/test_synthetic_vin.json"));
    let text = String::from_utf8(data.clone()).unwrap();
    let valid: Vec<&str> = text[..text.find("\"invalid\"").unwrap()]
        .split('"')
        .filter(|s| s.len() == 17)
        .collect();
    assert_eq!(valid.len(), 20);
    let want = vin_lines(&data, &valid, |p| p.to_string());
    let got = sorted(scan_file(&data, "vin").iter().map(line).collect());
    assert_eq!(got, want);
}

/// content.xml of an ODT: its local header offset and inflated bytes.
fn odt_content(odt: &[u8]) -> (usize, Vec<u8>) {
    for h in memchr::memmem::find_iter(odt, b"PK\x03\x04") {
        let u16le = |o: usize| usize::from(u16::from_le_bytes([odt[h + o], odt[h + o + 1]]));
        let (n, x) = (u16le(26), u16le(28));
        if &odt[h + 30..h + 30 + n] == b"content.xml" {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(&odt[h + 30 + n + x..])
                .read_to_end(&mut out)
                .unwrap();
            return (h, out);
        }
    }
    panic!("no content.xml");
}

#[test]
fn test_vin_doc_odt() {
    let Some(c) = corpora("test_vin_doc_odt") else {
        return;
    };
    // src/tests/test_vin_doc.odt: a table in content.xml (deflated) holding
    // the first 15 "valid" VINs of test_synthetic_vin.json, each in
    // <text:p …>VIN</text:p>, found through the ZIP layer at
    // HEADER-ZIP-OFFSET.
    let odt = read(&c.join("src/tests/test_vin_doc.odt"));
    let syn = String::from_utf8(read(&c.join("src/tests/test_synthetic_vin.json"))).unwrap();
    let valid: Vec<&str> = syn[..syn.find("\"invalid\"").unwrap()]
        .split('"')
        .filter(|s| s.len() == 17)
        .collect();
    let (h, content) = odt_content(&odt);
    let want = vin_lines(&content, &valid, |p| format!("{h}-ZIP-{p}"));
    assert_eq!(want.len(), 15);
    let got: Vec<_> = scan_file(&odt, "vin")
        .iter()
        .map(line)
        .filter(|l| l.1.contains("-ZIP-") && !l.1.contains("MSXML"))
        .collect();
    assert_eq!(sorted(got), want);
}

/// The sample files, each at an odd offset in noise, with separators.
fn sample_image(c: &Path) -> Vec<u8> {
    let mut img = random_bytes(7, 3001);
    for (i, f) in [
        "src/tests/test_json.txt",
        "src/tests/KML_Samples.kml",
        "src/tests/john_jakes.vcf",
        "src/tests/test_vin.txt",
        "src/tests/test_synthetic_vin.json",
        "src/tests/test_vin_doc.odt",
        "tests/Data/json_log.txt",
        "tests/Data/json_plain.txt",
    ]
    .iter()
    .enumerate()
    {
        img.push(b'\n');
        img.extend_from_slice(&read(&c.join(f)));
        img.push(b'\n');
        img.extend_from_slice(&random_bytes(i as u64 + 11, 4093 + 977 * i));
    }
    img
}

#[test]
fn shard_invariance() {
    let Some(c) = corpora("shard_invariance") else {
        return;
    };
    let img = sample_image(&c);
    let ev = Mem::new("mem", img, false);
    let sc = scanner("json,kml,vcard,vin");
    let whole = scan(&sc, &ev, 1 << 30, 1 << 20).features;
    let count = |s: &str| whole.iter().filter(|f| f.scanner == s).count();
    // 1 + 2 + 1 json (test_json, json_log, json_plain) plus the JSON
    // object of test_synthetic_vin.json; 1 kml; 1 vcard; 10 + 20 + 15 vin
    // (ZIP) — plus any in the ODT's text layer.
    assert_eq!(count("kml"), 1);
    assert_eq!(count("vcard"), 1);
    assert!(count("json") >= 4, "{}", count("json"));
    assert!(count("vin") >= 45, "{}", count("vin"));
    let mut keys: Vec<_> = whole.iter().map(line).collect();
    keys.dedup();
    assert_eq!(keys.len(), whole.len(), "a feature reported twice");
    for (size, margin) in [
        (4u64 << 10, 4u64 << 10),
        (4 << 10, 64 << 10),
        (64 << 10, 64 << 10),
        (64 << 10, 1 << 20),
        (8 << 10, 128 << 10),
    ] {
        let got = scan(&sc, &ev, size, margin).features;
        assert_eq!(got, whole, "shard {size} margin {margin}");
    }
}

#[test]
fn hostile_input() {
    let sc = scanner("json,kml,vcard,vin");
    let mut samples: Vec<Vec<u8>> = vec![
        b"{\"a\": [1, 2, 3, {\"b\": \"\\u12".to_vec(),
        [b"[".repeat(5000), b"]".repeat(5000)].concat(),
        b"{ ".repeat(40_000),
        b"<?xml <kml </kml>".repeat(3000),
        b"BEGIN:VCARD\r".repeat(5000),
        b"BEGIN:VCARD\rEND:VCARD\r".repeat(3000),
        b" 1HGBH41JXMN109186 ".repeat(3000),
        b"A".repeat(200_000),
        b"vehicle".repeat(10_000),
    ];
    if let Some(c) = corpora("hostile_input") {
        let img = sample_image(&c);
        let mut x = 0x1234_5678_9abc_def1u64;
        for cut in [1, 7, 100, 1000, 20_000, img.len() / 2] {
            samples.push(img[..img.len().saturating_sub(cut)].to_vec());
            samples.push(img[cut.min(img.len())..].to_vec());
        }
        for _ in 0..8 {
            let mut m = img.clone();
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x % m.len() as u64) as usize;
                m[i] = (x >> 32) as u8;
            }
            samples.push(m);
        }
    }
    samples.push(random_bytes(99, 3 << 20));
    for s in &samples {
        let ev = Mem::new("mem", s.clone(), false);
        let a = scan(&sc, &ev, 1 << 30, 1 << 20).features;
        let b = scan(&sc, &ev, 4 << 10, 4 << 10).features;
        assert_eq!(a, b);
    }
    // The repeated JSON openers: `{ { { …` never closes: nothing.
    let ev = Mem::new("mem", b"{ ".repeat(40_000), false);
    assert!(scan(&sc, &ev, 1 << 30, 1 << 20).features.is_empty());
}

/// xorshift64* random bytes, the seed spread first.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    common::random_bytes(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), len)
}

/// Text-like bytes: English-ish words, digits, punctuation and a few
/// braces and brackets (no valid structures).
fn text_bytes(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "vehicle",
        "model",
        "year",
        "of",
        "and",
        "make",
        "serial",
        "number",
        "frame",
        "{id",
        "[0]",
        "value:",
        "2021-06-18",
        "INFO|",
        "http://example.com/a?b=c",
        "(see",
        "note)",
        "\"quoted\",",
        "JH4DB1561",
        "user@example.org",
        "<?xml",
        "BEGIN:VCAR",
        "1234567890",
        "chassis",
        "\n",
        "  ",
        "{\"a\":",
        "1}",
        "[\n",
    ];
    let r = random_bytes(seed, len / 2);
    let mut v = Vec::with_capacity(len + 64);
    let mut i = 0;
    while v.len() < len {
        let w = WORDS[usize::from(r[i % r.len()]) % WORDS.len()];
        v.extend_from_slice(w.as_bytes());
        v.push(b' ');
        i += 1;
    }
    v.truncate(len);
    v
}

#[test]
fn throughput_and_false_positives() {
    // 256 MiB each under TRAWL_BENCH (run with --release), 8 MiB otherwise.
    let size = if std::env::var_os("TRAWL_BENCH").is_some() {
        256 << 20
    } else {
        8 << 20
    };
    let random = random_bytes(42, size);
    let text = text_bytes(43, size);
    // Real text: bulk_extractor's text test files, repeated.
    let mut real = Vec::new();
    if let Some(c) = corpora("throughput_and_false_positives") {
        let mut files: Vec<PathBuf> = ["src/tests", "tests/Data"]
            .iter()
            .flat_map(|d| std::fs::read_dir(c.join(d)).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.to_string_lossy();
                [
                    ".txt", ".htm", ".html", ".eml", ".xml", ".json", ".kml", ".vcf",
                ]
                .iter()
                .any(|x| n.ends_with(x))
            })
            .collect();
        files.sort();
        let one: Vec<u8> = files.iter().flat_map(|p| read(p)).collect();
        while real.len() < size {
            real.extend_from_slice(&one);
        }
        real.truncate(size);
    }
    for name in MINE {
        let sc = scanner(&format!("{name},-gzip,-zip,-zlib"));
        for (kind, data) in [
            ("random", &random),
            ("word-and-brace text", &text),
            ("real text", &real),
        ] {
            if data.is_empty() {
                continue;
            }
            let ev = Mem::new("mem", data.clone(), false);
            let t = Instant::now();
            let s = scan(&sc, &ev, 16 << 20, 64 << 10);
            let wall = t.elapsed().as_secs_f64();
            let own = s
                .nanos
                .get(&format!("{STAT_PREFIX}{name}"))
                .copied()
                .unwrap_or(0) as f64
                / 1e9;
            let hits = s.features.iter().filter(|f| f.scanner == name).count();
            // Own time: the scanner's time summed over the shards (run in
            // parallel), so MB/s per core.
            println!(
                "{name} on {} MiB {kind}: {hits} features, scanner {:.0} MB/s (own time {own:.3}s, wall {wall:.3}s)",
                size >> 20,
                size as f64 / 1e6 / own.max(1e-9),
            );
            if kind == "random" {
                assert_eq!(hits, 0, "{name} false positives on random bytes");
            }
        }
    }
}
