//! Issue: structure-validated carving. On the fixtures: >= 98% of planted
//! files carved byte-identical, no decoy or invalid carving validated, the
//! report layout (carved/TYPE/OFFSET.EXT, manifest.csv, dfxml.xml), the
//! same output for every shard size and worker count; custom Scalpel/Foremost
//! configurations, type filters and limits; sector-aligned mode; the DFTT #8
//! JPEG search image and real files from the corpora.

use crate::common::*;
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    offset: u64,
    length: u64,
    ty: String,
    md5: String,
    sha256: String,
    validated: bool,
    path: String,
}

fn manifest(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("carved/manifest.csv")).expect("manifest.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("offset,length,type,md5,sha256,validated,path")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 7, "{l}");
            Row {
                offset: f[0].parse().unwrap(),
                length: f[1].parse().unwrap(),
                ty: f[2].into(),
                md5: f[3].into(),
                sha256: f[4].into(),
                validated: f[5] == "true",
                path: f[6].into(),
            }
        })
        .collect()
}

fn scan_carve(image: &Path, extra: &[&str]) -> (tempfile::TempDir, Vec<Row>) {
    scan_analyses(image, "carve", extra)
}

fn scan_analyses(image: &Path, analyses: &str, extra: &[&str]) -> (tempfile::TempDir, Vec<Row>) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "scan",
        image.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        analyses,
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    let rows = manifest(out.path());
    (out, rows)
}

fn load_manifest(p: &Path) -> trawl_fixtures::Manifest {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Checks recall and precision against a fixture manifest; returns
/// (byte-identical, planted).
fn check_fixture(m: &trawl_fixtures::Manifest, rows: &[Row]) -> (usize, usize) {
    let got: BTreeSet<(u64, &str)> = rows.iter().map(|r| (r.offset, r.sha256.as_str())).collect();
    let exact = m
        .files
        .iter()
        .filter(|f| got.contains(&(f.offset, f.sha256.as_str())))
        .count();
    let truth: BTreeSet<(u64, u64)> = m.files.iter().map(|f| (f.offset, f.length)).collect();
    for r in rows.iter().filter(|r| r.validated) {
        assert!(
            truth.contains(&(r.offset, r.length)),
            "validated carving not in the ground truth: {r:?}"
        );
    }
    for d in &m.decoys {
        for r in rows
            .iter()
            .filter(|r| r.offset >= d.offset && r.offset < d.offset + d.length)
        {
            assert!(
                !r.validated,
                "decoy ({}) carved as validated: {r:?}",
                d.reason
            );
        }
    }
    (exact, m.files.len())
}

fn sha256_file(p: &Path) -> String {
    hex(&sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn small_fixture_recall_precision_and_report_layout() {
    let fx = small_fixture();
    let m = load_manifest(&fx.manifest);
    let (dir, rows) = scan_carve(&fx.image, &[]);
    let (exact, planted) = check_fixture(&m, &rows);
    println!("small fixture: {exact}/{planted} planted files carved byte-identical");
    assert!(exact * 100 >= planted * 98, "{exact}/{planted}");
    // Every carved file is there, named by type and offset, with the hash
    // the manifest gives.
    for r in &rows {
        assert!(
            r.path
                .starts_with(&format!("carved/{}/{}.", r.ty, r.offset)),
            "{r:?}"
        );
        let p = dir.path().join(&r.path);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), r.length, "{}", r.path);
        assert_eq!(sha256_file(&p), r.sha256, "{}", r.path);
    }
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| (a.offset, &a.ty, a.length).cmp(&(b.offset, &b.ty, b.length)));
    assert_eq!(sorted, rows, "manifest rows in result order");
    // report.json counts.
    let rep = report(dir.path());
    assert_eq!(rep["counts"]["carve"]["total"], rows.len());
    // DFXML: one fileobject per carved file with its byte run and hashes.
    let x = std::fs::read_to_string(dir.path().join("dfxml.xml")).unwrap();
    assert_eq!(x.matches("<fileobject>").count(), rows.len());
    for r in rows.iter().take(10) {
        assert!(x.contains(&format!(
            "<byte_run img_offset='{}' file_offset='0' len='{}'/>",
            r.offset, r.length
        )));
        assert!(x.contains(&format!(
            "<hashdigest type='sha256'>{}</hashdigest>",
            r.sha256
        )));
    }
    if have("python3") {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys,xml.etree.ElementTree as E\nns='{http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML}'\nr=E.parse(sys.argv[1]).getroot()\nprint(len(r.findall(ns+'fileobject')), r.find(ns+'creator/'+ns+'program').text, r.find(ns+'source/'+ns+'image_size').text)",
            ])
            .arg(dir.path().join("dfxml.xml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = s.split_whitespace().collect();
        assert_eq!(
            f,
            [
                rows.len().to_string().as_str(),
                "trawl",
                m.size.to_string().as_str()
            ]
        );
    }
}

#[test]
fn medium_fixture_recall_and_precision() {
    let dir = tempfile::tempdir().unwrap();
    let (img, man) =
        trawl_fixtures::write(&trawl_fixtures::Config::medium(), dir.path(), "medium").unwrap();
    let (_out, rows) = scan_carve(&img, &[]);
    let (exact, planted) = check_fixture(&load_manifest(&man), &rows);
    println!("medium fixture: {exact}/{planted} planted files carved byte-identical");
    assert!(exact * 100 >= planted * 98, "{exact}/{planted}");
}

/// The carved tree: relative path -> sha256.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.join("carved")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256_file(&p));
            }
        }
    }
    out
}

#[test]
fn identical_output_for_every_shard_size_and_worker_count() {
    let fx = small_fixture();
    let (ref_dir, ref_rows) = scan_carve(&fx.image, &["--shard-size", "64MiB"]);
    let ref_tree = tree(ref_dir.path());
    let ref_manifest = std::fs::read(ref_dir.path().join("carved/manifest.csv")).unwrap();
    let ref_dfxml = std::fs::read_to_string(ref_dir.path().join("dfxml.xml")).unwrap();
    assert!(!ref_rows.is_empty());
    for extra in [
        &["--shard-size", "1MiB"][..],
        &["--shard-size", "4KiB", "--workers", "3"],
        &["--shard-size", "256KiB", "--margin", "0"],
        &["--shard-size", "2MiB", "--workers", "2"],
        // The other read path: positional reads, never a mapping.
        &["--shard-size", "1MiB", "--read-mode", "pread"],
        &[
            "--shard-size",
            "4KiB",
            "--workers",
            "3",
            "--read-mode",
            "pread",
        ],
    ] {
        let (dir, _) = scan_carve(&fx.image, extra);
        assert_eq!(
            std::fs::read(dir.path().join("carved/manifest.csv")).unwrap(),
            ref_manifest,
            "manifest.csv differs with {extra:?}"
        );
        assert_eq!(
            tree(dir.path()),
            ref_tree,
            "carved files differ with {extra:?}"
        );
        let x = std::fs::read_to_string(dir.path().join("dfxml.xml")).unwrap();
        let fo = |s: &str| s[s.find("<fileobject>").unwrap_or(0)..].to_string();
        assert_eq!(
            fo(&x),
            fo(&ref_dfxml),
            "dfxml file objects differ with {extra:?}"
        );
    }
}

#[test]
fn sector_aligned_mode_finds_the_aligned_files() {
    let fx = small_fixture();
    let m = load_manifest(&fx.manifest);
    let (_dir, rows) = scan_carve(&fx.image, &["--sector-aligned"]);
    assert!(rows.iter().all(|r| r.offset % 512 == 0));
    let got: BTreeSet<&str> = rows.iter().map(|r| r.sha256.as_str()).collect();
    let aligned: Vec<_> = m.files.iter().filter(|f| f.sector_aligned).collect();
    assert!(!aligned.is_empty());
    for f in aligned {
        assert!(
            got.contains(f.sha256.as_str()),
            "aligned {} at {} missed",
            f.file_type,
            f.offset
        );
    }
}

#[test]
fn type_filter_and_size_limits() {
    let fx = small_fixture();
    let m = load_manifest(&fx.manifest);
    let (_d, rows) = scan_carve(&fx.image, &["--carve-types", "jpg,docx"]);
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.ty == "jpg" || r.ty == "docx"),
        "{rows:?}"
    );
    let want = m
        .files
        .iter()
        .filter(|f| f.file_type == "jpg" || f.file_type == "docx")
        .count();
    assert_eq!(rows.iter().filter(|r| r.validated).count(), want);
    // A maximum size below the big JPEG leaves it out.
    let big = m
        .files
        .iter()
        .map(|f| f.length)
        .filter(|&l| l > 1 << 20)
        .count();
    assert!(big > 0);
    let (_d, rows) = scan_carve(
        &fx.image,
        &["--carve-types", "jpg", "--carve-max-size", "jpg=1MiB"],
    );
    assert!(rows.iter().all(|r| r.length <= 1 << 20), "{rows:?}");
    assert!(!rows.is_empty());
    // An unknown type is refused with the list of known ones.
    let out = tempfile::tempdir().unwrap();
    let o = run(&[
        "scan",
        fx.image.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "carve",
        "--carve-types",
        "jpg,nosuchtype",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stdout) + String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nosuchtype") && err.contains("docx"), "{err}");
}

#[test]
fn custom_scalpel_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // An image with two custom records, a JPEG and noise.
    let fx = small_fixture();
    let data = std::fs::read(&fx.image).unwrap();
    let m = load_manifest(&fx.manifest);
    let jpg = m
        .files
        .iter()
        .find(|f| f.file_type == "jpg" && f.length < 100_000)
        .unwrap();
    let jpeg = &data[jpg.offset as usize..(jpg.offset + jpg.length) as usize];
    let mut img = vec![0x5Au8; 3000];
    let rec1 = 3000u64;
    let r1: &[u8] = b"TRAWLREC\x01\x02payload one TRAWLEND";
    let r2: &[u8] = b"trawlrec\x01\x09payload two TrawlEnd";
    img.extend_from_slice(r1);
    img.extend(vec![0x33u8; 1000]);
    let rec2 = img.len() as u64;
    img.extend_from_slice(r2);
    img.extend(vec![0x44u8; 777]);
    let jat = img.len() as u64;
    img.extend_from_slice(jpeg);
    img.extend(vec![0x11u8; 5000]);
    let ip = dir.path().join("custom.raw");
    std::fs::write(&ip, &img).unwrap();
    let conf = dir.path().join("lab.conf");
    std::fs::write(
        &conf,
        "# a lab's scalpel.conf\n\
         wildcard ?\n\
         rec  n  4096  TRAWLREC\\x01?   TRAWLEND\n\
         jpg  y  5242880  \\xff\\xd8\\xff???JFIF  \\xff\\xd9  REVERSE\n\
         NONE y  64     \\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\\x5a\n",
    )
    .unwrap();
    let (out, rows) = scan_carve(
        &ip,
        &[
            "--carve-config",
            conf.to_str().unwrap(),
            "--carve-types",
            "rec,jpg",
        ],
    );
    let recs: Vec<&Row> = rows.iter().filter(|r| r.ty == "rec").collect();
    assert_eq!(recs.len(), 2, "{rows:?}");
    assert_eq!((recs[0].offset, recs[0].length), (rec1, r1.len() as u64));
    assert_eq!((recs[1].offset, recs[1].length), (rec2, r2.len() as u64));
    assert!(recs.iter().all(|r| !r.validated));
    assert_eq!(std::fs::read(out.path().join(&recs[1].path)).unwrap(), r2);
    // The JPEG line is validated by the built-in parser: one file, exact.
    let j: Vec<&Row> = rows.iter().filter(|r| r.ty == "jpg").collect();
    assert_eq!(j.len(), 1, "{rows:?}");
    assert_eq!(
        (j[0].offset, j[0].length, j[0].validated),
        (jat, jpg.length, true)
    );
    assert_eq!(j[0].sha256, jpg.sha256);
    let x = std::fs::read_to_string(out.path().join("dfxml.xml")).unwrap();
    assert!(x.contains("header/footer carving"), "custom carving noted");
    // The NONE type (not selected) was not carved.
    assert!(rows.iter().all(|r| r.ty != "none"));
}

#[test]
fn stock_peer_configurations_work_unchanged() {
    // The lab's existing files, every type line enabled.
    for path in ["/etc/scalpel/scalpel.conf", "/etc/foremost.conf"] {
        let Ok(text) = std::fs::read_to_string(path) else {
            trawl_fixtures::skip(
                "stock_peer_configurations_work_unchanged",
                &format!("{path} (scripts/setup.sh installs scalpel and foremost)"),
            );
            continue;
        };
        let enabled: String = text
            .lines()
            .map(|l| {
                let t = l.trim_start_matches(['#', ' ', '\t']);
                let f: Vec<&str> = t.split_whitespace().collect();
                if f.len() >= 4 && matches!(f[1], "y" | "n") && f[2].parse::<u64>().is_ok() {
                    format!("{t}\n")
                } else {
                    format!("#{l}\n")
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("peer.conf");
        std::fs::write(&conf, enabled).unwrap();
        let fx = small_fixture();
        let (out, rows) = scan_carve(
            &fx.image,
            &[
                "--carve-config",
                conf.to_str().unwrap(),
                "--carve-types",
                "custom",
            ],
        );
        // Their JPEG/GIF/PNG/ZIP/PDF lines are validated by the built-in
        // parsers where the structure allows; everything else is marked
        // not validated.
        let m = load_manifest(&fx.manifest);
        let truth: BTreeSet<(u64, u64)> = m.files.iter().map(|f| (f.offset, f.length)).collect();
        assert!(rows.iter().any(|r| r.validated), "{path}");
        for r in rows.iter().filter(|r| r.validated) {
            if r.ty == "html" {
                // The fixture's web pages are feature containers, not
                // manifest files: a validated one must be a whole document.
                let b = std::fs::read(out.path().join(&r.path)).unwrap();
                let t = String::from_utf8_lossy(&b).to_ascii_lowercase();
                assert!(
                    t.starts_with("<html") && t.trim_end().ends_with("</html>"),
                    "{path}: {r:?}"
                );
                continue;
            }
            assert!(truth.contains(&(r.offset, r.length)), "{path}: {r:?}");
        }
        println!(
            "{path}: {} carvings, {} validated by built-in parsers",
            rows.len(),
            rows.iter().filter(|r| r.validated).count()
        );
    }
}

fn unzip_dftt8(dir: &Path) -> Option<PathBuf> {
    let c = corpora("dftt8")?;
    if !have("python3") {
        trawl_fixtures::skip("dftt8", "python3 (needed to unzip)");
        return None;
    }
    let zip = c.join("sleuthkit-dftt/from_brian/8-jpeg-search.zip");
    let st = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys,zipfile;zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
        ])
        .arg(&zip)
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    Some(dir.join("8-jpeg-search/8-jpeg-search.dd"))
}

#[test]
fn dftt8_jpeg_search_image() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(img) = unzip_dftt8(tmp.path()) else {
        return;
    };
    let (_out, rows) = scan_carve(&img, &[]);
    let md5s: BTreeSet<&str> = rows.iter().map(|r| r.md5.as_str()).collect();
    // The answer key: what foremost recovers (1, 2, 6, 7, 8, 9) plus the
    // tar.gz (10) and the Word document (12), all contiguous on disk.
    let key = [
        (1, "75b8d00568815a36c3809b46fc84ba6d"),
        (2, "de5d83153339931371719f4e5c924eba"),
        (6, "afd55222024a4e22f7f5a3a665320763"),
        (7, "0c452c5800fcfa7c66027ae89c4f068a"),
        (8, "d41b56e0a9f84eb2825e73c24cedd963"),
        (9, "73c3029066aee9416a5aeb98a5c55321"),
        (10, "d4f8cf643141f0c2911c539750e18ef2"),
        (12, "61c0b55639e52d1ce82aba834ada2bab"),
    ];
    for (n, md5) in key {
        assert!(
            md5s.contains(md5),
            "DFTT #8 file {n} ({md5}) not recovered: {rows:?}"
        );
    }
    // The random decoys are never carved as valid files.
    for md5 in [
        "1ba4e91591f0541eda255ee26f7533bc",
        "c8de721102617158e8492121bdad3711",
        "86f14fc525648c39d878829f288c0543",
    ] {
        assert!(!md5s.contains(md5));
    }
    // The JPEG in the alternate data stream is fragmented on disk: found,
    // but not claimed as whole.
    let ads = rows
        .iter()
        .find(|r| r.offset == 3_424_256)
        .expect("ADS JPEG header");
    assert!(!ads.validated);
}

#[test]
fn real_files_from_the_corpora() {
    let Some(c) = corpora("real_files_from_the_corpora") else {
        return;
    };
    // Real files of the supported types, laid end to end with random gaps.
    let names = [
        "bulk-extractor-test-data/src/tests/exif_demo1.jpg",
        "bulk-extractor-test-data/src/tests/exif_demo2.tiff",
        "bulk-extractor-test-data/src/tests/pdf_words2.pdf",
        "bulk-extractor-test-data/src/tests/testfilex.docx",
        "bulk-extractor-test-data/src/tests/test_vin_doc.odt",
        "bulk-extractor-test-data/src/tests/iwork_09.pages",
        "bulk-extractor-test-data/src/tests/jpegs.rar",
        "bulk-extractor-test-data/src/tests/test_hello.gz",
        "bulk-extractor-test-data/tests/Data/jpegs.rar5",
        "bulk-extractor-test-data/tests/Data/jpegs.rar-encrypted",
        "bulk-extractor-test-data/tests/Data/WindowsEvtx",
        "bulk-extractor-test-data/tests/Data/ExifPhotos/Thumbs.db",
        "bulk-extractor-test-data/tests/Data/ExifPhotos/Iphone/Exif-IPHONE4.JPG",
        "bulk-extractor-test-data/tests/Data/ExifPhotos/GalaxyPhotos/IMG_20140722_235127.jpg",
        "bulk-extractor-test-data/tests/Data/Outlook_Files/Outlook Message Format - Unicode.msg",
        "bulk-extractor-test-data/tests/Data/MailUserAgents/files/redball.png",
        "bulk-extractor-test-data/tests/Data/jpegs.tar.gz",
        "dfvfs-test-data/test_data/zip/syslog.zip",
    ];
    let mut x = 0x2545F4914F6CDD1Du64;
    let mut img = Vec::new();
    let mut placed = Vec::new();
    for n in names {
        let Ok(d) = std::fs::read(c.join(n)) else {
            trawl_fixtures::skip(
                "real_files_from_the_corpora",
                &format!("../shared/corpora/{n}"),
            );
            continue;
        };
        for _ in 0..(700 + (x % 2000)) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            img.push((x >> 32) as u8);
        }
        placed.push((n, img.len() as u64, hex(&md5::Md5::digest(&d))));
        img.extend_from_slice(&d);
    }
    img.extend(vec![0u8; 4096]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("real.raw");
    std::fs::write(&p, &img).unwrap();
    let (_out, rows) = scan_carve(&p, &[]);
    let mut missed = Vec::new();
    for (n, off, md5) in &placed {
        if !rows
            .iter()
            .any(|r| r.offset == *off && &r.md5 == md5 && r.validated)
        {
            missed.push(*n);
        }
    }
    println!(
        "real files: {}/{} carved byte-identical and validated",
        placed.len() - missed.len(),
        placed.len()
    );
    assert!(missed.is_empty(), "missed: {missed:?}");
}

/// `case_validate` from the venv scripts/setup.sh makes, or on PATH.
fn case_validate() -> Option<PathBuf> {
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools-venv/bin/case_validate");
    if venv.is_file() {
        return Some(venv);
    }
    have("case_validate").then(|| PathBuf::from("case_validate"))
}

#[test]
fn case_export_validates_and_dfxml_parses() {
    let fx = small_fixture();
    let (out, rows) = scan_analyses(&fx.image, "hash,carve", &[]);
    let case = std::fs::read_to_string(out.path().join("case.jsonld")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&case).unwrap();
    let graph = doc["@graph"].as_array().unwrap();
    // the evidence, every carved file and its relationship, the tool, the action
    assert_eq!(graph.len(), 3 + 2 * rows.len());
    for r in &rows {
        assert!(case.contains(&r.sha256), "{r:?}");
        assert!(case.contains(&format!("\"{}\"", r.path)), "{r:?}");
    }
    // same bytes on a second run
    let (out2, _) = scan_analyses(&fx.image, "hash,carve", &[]);
    assert!(std::fs::read(out2.path().join("case.jsonld")).unwrap() == case.as_bytes());
    match case_validate() {
        Some(cv) => {
            let o = std::process::Command::new(cv)
                .arg(out.path().join("case.jsonld"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success() && text.contains("Conforms: True"),
                "case_validate: {text}{}",
                String::from_utf8_lossy(&o.stderr)
            );
            println!(
                "case_validate: Conforms: True ({} carved files)",
                rows.len()
            );
        }
        None => trawl_fixtures::skip("case_validate", "case-utils (scripts/setup.sh installs it)"),
    }
    // DFXML through a real XML parser: one fileobject per carving, byte runs
    if have("python3") {
        let script = r#"
import sys, xml.etree.ElementTree as ET
ns = {'d': 'http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML'}
root = ET.parse(sys.argv[1]).getroot()
fos = root.findall('d:fileobject', ns)
runs = sum(len(f.findall('d:byte_runs/d:byte_run', ns)) for f in fos)
print(len(fos), runs)
"#;
        let o = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(out.path().join("dfxml.xml"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let t = String::from_utf8_lossy(&o.stdout);
        let n: Vec<usize> = t.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(n[0], rows.len(), "fileobjects");
        assert!(n[1] >= rows.len(), "byte runs");
    } else {
        trawl_fixtures::skip("dfxml parse", "python3");
    }
}
