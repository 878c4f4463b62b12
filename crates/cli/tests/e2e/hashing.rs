//! Issue: image hashing. Hashes equal md5sum/sha1sum/sha256sum/b3sum on the
//! fixtures, on every raw image of the corpora, E01 media hashes equal
//! ewfverify's, split raw equals the concatenation; bad input fails cleanly.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scan_hashes(image: &Path, extra: &[&str]) -> (tempfile::TempDir, [String; 4]) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "scan",
        image.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "hash",
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    let h = report_hashes(out.path());
    (out, h)
}

#[test]
fn fixture_hashes_equal_peers_for_every_shard_size() {
    let fx = small_fixture();
    let want = peer_hashes(&fx.image);
    let mut piecewise = None;
    for (shard, mode) in [
        ("1KiB", "mmap"),
        ("64KiB", "mmap"),
        ("1MiB", "mmap"),
        ("4MiB", "mmap"),
        ("64MiB", "mmap"),
        ("64KiB", "pread"),
        ("64MiB", "pread"),
    ] {
        let (dir, got) = scan_hashes(&fx.image, &["--shard-size", shard, "--read-mode", mode]);
        assert_eq!(got, want, "shard size {shard}, read mode {mode}");
        let pw = std::fs::read(dir.path().join("hashes/piecewise.csv")).unwrap();
        match &piecewise {
            None => piecewise = Some(pw),
            Some(p) => assert_eq!(p, &pw, "piecewise.csv differs with shard size {shard}"),
        }
    }
    // Piecewise windows are the BLAKE3 of each 1 MiB window.
    let data = std::fs::read(&fx.image).unwrap();
    let csv = String::from_utf8(piecewise.unwrap()).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("offset,length,blake3"));
    let rows: Vec<_> = lines.collect();
    assert_eq!(rows.len(), data.len().div_ceil(1 << 20));
    for (i, row) in rows.iter().enumerate() {
        let f: Vec<_> = row.split(',').collect();
        let off = i << 20;
        let end = (off + (1 << 20)).min(data.len());
        assert_eq!(f[0], off.to_string());
        assert_eq!(f[1], (end - off).to_string());
        assert_eq!(f[2], blake3::hash(&data[off..end]).to_hex().as_str());
    }
}

#[test]
fn edge_sizes_equal_peers() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = 0x9e3779b97f4a7c15u64;
    let mut data = Vec::new();
    while data.len() < (3 << 20) + 4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    for len in [
        0usize,
        1,
        1023,
        1024,
        1025,
        4096,
        (1 << 20) - 1,
        1 << 20,
        (3 << 20) + 17,
    ] {
        let p = dir.path().join(format!("img-{len}.raw"));
        std::fs::write(&p, &data[..len]).unwrap();
        let want = peer_hashes(&p);
        for shard in ["1KiB", "1MiB"] {
            let (_o, got) = scan_hashes(&p, &["--shard-size", shard, "--piecewise-window", "4KiB"]);
            assert_eq!(got, want, "size {len}, shard {shard}");
        }
    }
}

#[test]
fn worker_counts_give_identical_results() {
    let fx = small_fixture();
    let (a, ha) = scan_hashes(
        &fx.image,
        &["--workers", "1", "--shard-size", "1MiB", "--piecewise-md5"],
    );
    let (b, hb) = scan_hashes(
        &fx.image,
        &["--workers", "3", "--shard-size", "2MiB", "--piecewise-md5"],
    );
    assert_eq!(ha, hb);
    let pa = std::fs::read(a.path().join("hashes/piecewise.csv")).unwrap();
    let pb = std::fs::read(b.path().join("hashes/piecewise.csv")).unwrap();
    assert_eq!(pa, pb);
    assert!(String::from_utf8_lossy(&pa).starts_with("offset,length,blake3,md5\n"));
}

#[test]
fn report_records_provenance() {
    let fx = small_fixture();
    let (dir, _) = scan_hashes(
        &fx.image,
        &[
            "--shard-size",
            "2MiB",
            "--margin",
            "64KiB",
            "--piecewise-window",
            "256KiB",
        ],
    );
    let r = report(dir.path());
    assert_eq!(r["tool"]["name"], "trawl");
    assert_eq!(r["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["evidence"]["size"], 8 << 20);
    assert_eq!(r["evidence"]["format"], "raw");
    let p = &r["provenance"];
    assert_eq!(p["shard_size"], 2 << 20);
    assert_eq!(p["margin"], 64 << 10);
    assert_eq!(p["shards"], 4);
    assert_eq!(p["analyses"], serde_json::json!(["hash"]));
    assert_eq!(p["settings"]["hash"]["piecewise_window"], 256 << 10);
    assert!(p["command"].as_array().unwrap().len() > 2);
    assert_eq!(r["piecewise"]["window"], 256 << 10);
    assert_eq!(r["piecewise"]["windows"], 32);
    assert!(r["timings"]["wall_ms"].is_u64());
    assert!(r["hashes"]["computed_at"].is_string());
}

/// Writes `data` as split raw segments named by `name(i)`.
fn split(dir: &Path, data: &[u8], seg: usize, name: impl Fn(usize) -> String) -> Vec<PathBuf> {
    data.chunks(seg)
        .enumerate()
        .map(|(i, c)| {
            let p = dir.join(name(i));
            std::fs::write(&p, c).unwrap();
            p
        })
        .collect()
}

#[test]
fn split_raw_equals_concatenation() {
    let fx = small_fixture();
    let data = std::fs::read(&fx.image).unwrap();
    let want = peer_hashes(&fx.image);
    let dir = tempfile::tempdir().unwrap();
    // Odd segment size, so shards and segments do not line up.
    let numeric = split(dir.path(), &data, 3_000_001, |i| {
        format!("disk.{:03}", i + 1)
    });
    let letters = split(dir.path(), &data, 1_500_007, |i| {
        format!("disk.a{}", (b'a' + i as u8) as char)
    });
    // By the first segment (discovery) and by every segment listed.
    for first in [&numeric[0], &letters[0]] {
        let (o, got) = scan_hashes(first, &["--shard-size", "1MiB"]);
        assert_eq!(got, want, "{}", first.display());
        assert_eq!(report(o.path())["evidence"]["format"], "split-raw");
    }
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["scan".to_string()];
    args.extend(numeric.iter().map(|p| p.display().to_string()));
    args.extend([
        "--out".into(),
        out.path().display().to_string(),
        "--analyses".into(),
        "hash".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&args);
    assert_eq!(report_hashes(out.path()), want);
    assert_eq!(
        report(out.path())["evidence"]["segments"]
            .as_array()
            .unwrap()
            .len(),
        numeric.len()
    );
}

/// Every raw image of the corpora (plain files, gzip-compressed images and
/// the DFTT images inside their zips) hashes like the peers.
#[test]
fn corpora_raw_images_equal_peers() {
    let Some(corpora) = corpora("corpora_raw_images_equal_peers") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut images: Vec<PathBuf> = Vec::new();
    let mut stack = vec![corpora.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().to_lowercase();
            if [".raw", ".dd", ".img", ".iso", ".dmg", ".000", ".001"]
                .iter()
                .any(|x| name.ends_with(x))
            {
                images.push(p);
            } else if name.ends_with(".raw.gz") {
                let out = tmp.path().join(name.trim_end_matches(".gz"));
                let mut dec = flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap());
                let mut f = std::fs::File::create(&out).unwrap();
                std::io::copy(&mut dec, &mut f).unwrap();
                images.push(out);
            } else if name.ends_with(".zip")
                && p.to_string_lossy().contains("sleuthkit-dftt")
                && have("python3")
            {
                let dest = tmp.path().join(name.trim_end_matches(".zip"));
                let ok = Command::new("python3")
                    .args([
                        "-c",
                        "import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
                    ])
                    .arg(&p)
                    .arg(&dest)
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "unzip {}", p.display());
                let mut st = vec![dest];
                while let Some(d) = st.pop() {
                    for e in std::fs::read_dir(&d).unwrap() {
                        let q = e.unwrap().path();
                        let n = q.to_string_lossy().to_lowercase();
                        if q.is_dir() {
                            st.push(q);
                        } else if n.ends_with(".dd") || n.ends_with(".iso") || n.ends_with(".dmg") {
                            images.push(q);
                        }
                    }
                }
            }
        }
    }
    images.sort();
    assert!(images.len() >= 20, "found only {} raw images", images.len());
    let mut checked = 0;
    for img in &images {
        let name = img.to_string_lossy();
        // A split raw's later segments are read through the first one.
        if name.ends_with(".001") && Path::new(&name.replace(".001", ".000")).exists() {
            continue;
        }
        let out = tempfile::tempdir().unwrap();
        let o = run(&[
            "scan",
            &name,
            "--out",
            out.path().to_str().unwrap(),
            "--analyses",
            "hash",
            "--shard-size",
            "1MiB",
        ]);
        assert!(
            o.status.success(),
            "{}: {}",
            name,
            String::from_utf8_lossy(&o.stderr)
        );
        let got = report_hashes(out.path());
        let r = report(out.path());
        let want = if r["evidence"]["format"] == "split-raw" {
            let mut cat = Vec::new();
            for s in r["evidence"]["segments"].as_array().unwrap() {
                cat.extend(std::fs::read(s.as_str().unwrap()).unwrap());
            }
            let p = tmp.path().join("concat.raw");
            std::fs::write(&p, cat).unwrap();
            peer_hashes(&p)
        } else {
            peer_hashes(img)
        };
        assert_eq!(got, want, "{name}");
        checked += 1;
    }
    println!(
        "corpora_raw_images_equal_peers: {checked} images hashed like md5sum/sha1sum/sha256sum/b3sum"
    );
}

/// Parses `ewfverify`'s "MD5 hash calculated over data:" line.
fn ewfverify_md5(path: &Path) -> Option<String> {
    let out = Command::new("ewfverify")
        .args(["-q", "-d", "sha1"])
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("MD5 hash calculated over data:"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
}

#[test]
fn corpora_e01_media_hashes_equal_ewfverify() {
    let Some(corpora) = corpora("corpora_e01_media_hashes_equal_ewfverify") else {
        return;
    };
    if !have("ewfverify") {
        trawl_fixtures::skip(
            "corpora_e01_media_hashes_equal_ewfverify",
            "ewfverify (Debian ewf-tools)",
        );
        return;
    }
    let e01s = [
        "dfvfs-test-data/test_data/ext2.E01",
        "dfvfs-test-data/test_data/ext2.split.E01",
        "sleuthkit-test-data/test/data/image.E01",
        "sleuthkit-test-data/test/data/imageformat_mmls_1.E01",
        "bulk-extractor-test-data/src/tests/nps-2010-emails.E01",
        "bulk-extractor-test-data/src/tests/CFReDS001.E01",
        "bulk-extractor-test-data/src/tests/email_test.E01",
        "bulk-extractor-test-data/tests/Images/ansi.E01",
        "bulk-extractor-test-data/tests/Images/german_ansi.E01",
        "bulk-extractor-test-data/tests/Images/german_utf8.E01",
        "bulk-extractor-test-data/tests/Images/kml_samples.E01",
        "bulk-extractor-test-data/tests/Images/nps-2010-emails.E01",
    ];
    for rel in e01s {
        let p = corpora.join(rel);
        let want = ewfverify_md5(&p).unwrap_or_else(|| panic!("ewfverify gave no MD5 for {rel}"));
        let out = tempfile::tempdir().unwrap();
        let o = run(&[
            "scan",
            p.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--analyses",
            "hash",
            "--shard-size",
            "64KiB",
        ]);
        // email_test's stored MD5 is not its data's: exit 5 (see
        // security_embedded.rs), the report written all the same.
        let want_status = if rel.contains("email_test") { 5 } else { 0 };
        assert_eq!(
            o.status.code(),
            Some(want_status),
            "{rel}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r = report(out.path());
        assert_eq!(r["evidence"]["format"], "ewf", "{rel}");
        assert_eq!(
            r["hashes"]["md5"],
            want.as_str(),
            "{rel}: media MD5 differs from ewfverify's"
        );
        // The stored hash is verified and reported.
        let v = r["verification"].as_array().unwrap();
        let md5v = v
            .iter()
            .find(|x| x["algorithm"] == "md5")
            .unwrap_or_else(|| panic!("{rel}: no stored md5 verification"));
        let expect_match = !rel.contains("email_test");
        assert_eq!(md5v["matches"], expect_match, "{rel}: {md5v}");
    }
}

#[test]
fn bad_input_fails_with_a_clear_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let check = |args: &[&str], needles: &[&str]| {
        let o = run(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&o.stderr);
        let last = err
            .trim_end()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        for n in needles {
            assert!(
                last.contains(n),
                "{args:?}: error {last:?} should mention {n:?}"
            );
        }
        assert!(!err.contains("panicked"), "{err}");
    };
    let missing = dir.path().join("nope.dd");
    check(
        &["scan", missing.to_str().unwrap(), "--out", out_s],
        &["nope.dd", "not found"],
    );
    check(
        &["scan", dir.path().to_str().unwrap(), "--out", out_s],
        &["directory"],
    );
    let qcow = dir.path().join("disk.qcow2");
    std::fs::write(&qcow, b"QFI\xfb\x00\x00\x00\x03rest-of-header").unwrap();
    check(
        &["scan", qcow.to_str().unwrap(), "--out", out_s],
        &["disk.qcow2", "QCOW"],
    );
    let img = dir.path().join("ok.dd");
    std::fs::write(&img, vec![7u8; 5000]).unwrap();
    check(
        &[
            "scan",
            img.to_str().unwrap(),
            "--out",
            out_s,
            "--shard-size",
            "3000",
        ],
        &["shard size"],
    );
    check(
        &[
            "scan",
            img.to_str().unwrap(),
            "--out",
            out_s,
            "--analyses",
            "md6",
        ],
        &["md6"],
    );
    // A truncated E01: the header is there, the rest is not.
    let e01 = dir.path().join("cut.E01");
    let mut head = b"EVF\x09\x0d\x0a\xff\x00\x01\x01\x00\x00\x00".to_vec();
    head.extend_from_slice(b"header\0");
    std::fs::write(&e01, &head).unwrap();
    check(
        &["scan", e01.to_str().unwrap(), "--out", out_s],
        &["cut.E01"],
    );
    if let Some(c) = corpora("bad_input (E01 missing segment)") {
        let lone = dir.path().join("ext2.split.E01");
        std::fs::copy(c.join("dfvfs-test-data/test_data/ext2.split.E01"), &lone).unwrap();
        check(
            &["scan", lone.to_str().unwrap(), "--out", out_s],
            &["ext2.split.E02"],
        );
        // A corrupt chunk: flip bytes in the middle of the sectors data. The
        // job completes, the unreadable ranges are listed as examination
        // limitations naming the file and offset, and the exit status says
        // the examination is incomplete.
        let bad = dir.path().join("corrupt.E01");
        let mut b = std::fs::read(c.join("dfvfs-test-data/test_data/ext2.split.E01")).unwrap();
        let mid = b.len() / 2;
        for x in &mut b[mid..mid + 64] {
            *x ^= 0x5a;
        }
        std::fs::write(&bad, b).unwrap();
        std::fs::copy(
            c.join("dfvfs-test-data/test_data/ext2.split.E02"),
            dir.path().join("corrupt.E02"),
        )
        .unwrap();
        let o = run(&[
            "scan",
            bad.to_str().unwrap(),
            "--out",
            out_s,
            "--analyses",
            "hash",
            "--shard-size",
            "1MiB",
        ]);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r = report(&out);
        let lim = r["limitations"].as_array().unwrap();
        assert!(!lim.is_empty());
        for l in lim {
            let e = l["error"].as_str().unwrap();
            assert!(e.contains("corrupt.E01") && e.contains("offset"), "{e}");
        }
        assert!(
            r["hashes"]["md5"].is_null(),
            "no MD5 may be reported for an image not read whole"
        );
    }
}
