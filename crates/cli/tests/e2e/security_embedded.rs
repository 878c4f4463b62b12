//! Issue 17, finding 4: `trawl scan` must open no port another local user
//! could reach (its scheduler, workers and client talk in-process); and
//! the last item of finding 7: an E01 whose stored MD5 does not match its
//! data makes `trawl scan` and `trawl results` exit 5 after writing the
//! report, naming the image, the stored and the computed MD5 on stderr.

use crate::cluster::{
    Proc, assert_same, done, fingerprint, start_scheduler, start_worker, submit, wait_for,
};
use crate::common::*;
use md5::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Exit status for a stored hash that does not match the data.
const EXIT_STORED_HASH_MISMATCH: i32 = 5;

/// What a process's sockets are, seen from another process as a local
/// attacker would: every socket inode among its descriptors, looked up in
/// the kernel's tables.
#[derive(Debug, Default)]
struct Sockets {
    /// Socket descriptors of the process.
    count: usize,
    /// Its TCP and UDP sockets (IPv4 and IPv6), any state, as
    /// `tcp 0100007F:A3F1 state 0A` (0A is LISTEN).
    inet: Vec<String>,
    /// Its Unix sockets bound to a name (a path or an abstract name), which
    /// another process could connect to.
    named_unix: Vec<String>,
}

/// The inodes of `socket:[N]` descriptors of `pid`.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// inode → description of every TCP/UDP socket of this network namespace.
fn inet_table() -> BTreeMap<u64, String> {
    let mut m = BTreeMap::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/net/{proto}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9
                && let Ok(inode) = f[9].parse::<u64>()
            {
                m.insert(inode, format!("{proto} {} state {}", f[1], f[3]));
            }
        }
    }
    m
}

/// inode → name of every Unix socket bound to a name.
fn named_unix_table() -> BTreeMap<u64, String> {
    let text = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let name = f.get(7)?;
            Some((f[6].parse().ok()?, name.to_string()))
        })
        .collect()
}

fn sockets_of(pid: u32) -> Sockets {
    let inodes = socket_inodes(pid);
    let (inet, unix) = (inet_table(), named_unix_table());
    Sockets {
        count: inodes.len(),
        inet: inodes.iter().filter_map(|i| inet.get(i).cloned()).collect(),
        named_unix: inodes.iter().filter_map(|i| unix.get(i).cloned()).collect(),
    }
}

/// A sparse file of `len` zero bytes: long to hash, free to make.
fn sparse_zeros(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// A standing scheduler's configuration allowing server paths under `dir`
/// (written for a scheduler that refuses server paths outside its roots).
fn roots_config(dir: &Path, root: &Path) -> PathBuf {
    let cfg = dir.join("scheduler.toml");
    std::fs::write(
        &cfg,
        format!(
            "evidence_roots = [{:?}]\n",
            root.canonicalize().unwrap().display().to_string()
        ),
    )
    .unwrap();
    cfg
}

/// The attack of finding 4: while `trawl scan` runs, look for anything of
/// it another local user could connect to. A standing scheduler's port is
/// found by the same look (so the look works); the scan's process has no
/// TCP or UDP socket in any state and no named Unix socket, and its report
/// is the one a cluster gives for the same image.
#[test]
fn embedded_scan_opens_no_port_another_local_user_could_reach() {
    let fx = small_fixture();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rules/demo.yar");
    let spec = [
        "--analyses",
        "all",
        "--rules",
        rules.to_str().unwrap(),
        "--shard-size",
        "1MiB",
    ];

    // The look finds a standing (plaintext, loopback) scheduler's port.
    let data = tempfile::tempdir().unwrap();
    let fx_dir = fx.image.parent().unwrap();
    let cfg = roots_config(data.path(), fx_dir);
    let s = start_scheduler(
        &data.path().join("state"),
        "127.0.0.1:0",
        &["--config", cfg.to_str().unwrap()],
    );
    let standing = sockets_of(s.proc.0.id());
    let port = s.addr.rsplit(':').next().unwrap();
    let port_hex = format!(":{:04X} state 0A", port.parse::<u16>().unwrap());
    assert!(
        standing.inet.iter().any(|d| d.ends_with(&port_hex)),
        "the socket look must see the standing scheduler listening on {}: {standing:?}",
        s.addr
    );

    // The embedded scan: the fixture (something to find) and 512 MiB of
    // zeros (seconds of hashing, to look at the process while it runs).
    let work = tempfile::tempdir().unwrap();
    let zeros = work.path().join("zeros.dd");
    sparse_zeros(&zeros, 512 << 20);
    let out = work.path().join("report");
    let mut child = trawl()
        .arg("scan")
        .arg(&fx.image)
        .arg(&zeros)
        .arg("--out")
        .arg(&out)
        .args(spec)
        .env("TRAWL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trawl scan");
    let pid = child.id();
    let serving = Arc::new(AtomicBool::new(false));
    let stderr = child.stderr.take().unwrap();
    let reader = {
        let serving = serving.clone();
        std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // A worker registered: the embedded scheduler is serving.
                if line.contains("registered with the scheduler") {
                    serving.store(true, Ordering::SeqCst);
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        })
    };
    let (mut looks, mut sockets_seen) = (0usize, 0usize);
    let mut reachable: BTreeSet<String> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "trawl scan did not end");
        if serving.load(Ordering::SeqCst) {
            let seen = sockets_of(pid);
            // Counts only while the scan was still running after the look.
            if child.try_wait().unwrap().is_none() {
                looks += 1;
                sockets_seen = sockets_seen.max(seen.count);
                reachable.extend(seen.inet);
                reachable.extend(seen.named_unix.into_iter().map(|n| format!("unix {n}")));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = reader.join().unwrap();
    println!(
        "embedded scan looked at {looks} times while it ran: {sockets_seen} socket descriptor(s) at most, reachable: {reachable:?}"
    );
    assert!(
        looks >= 3,
        "the scan ended before its sockets could be looked at while it served ({looks} looks); log:\n{log}"
    );
    assert!(
        reachable.is_empty(),
        "trawl scan (pid {pid}) has sockets another local user could reach: {reachable:?}"
    );
    assert!(status.success(), "trawl scan failed: {status}\n{log}");

    // The report is the cluster's for the same image.
    let embedded = out.join(fx.image.file_name().unwrap());
    let zeros_report = report(&out.join("zeros.dd"));
    assert_eq!(
        zeros_report["hashes"]["md5"], "aa559b4e3523a6c931f08f4df52d58f2",
        "MD5 of 512 MiB of zeros"
    );
    let _w: Proc = start_worker(&s.url, "w-embedded-cmp", 2, 0);
    let job = submit(&s.url, &fx.image, "case-embedded", &spec);
    let st = wait_for(&s.url, &job, "completion", 300, done);
    assert_eq!(st["state"], "completed", "{st}");
    let cluster = work.path().join("cluster");
    run_ok(&[
        "results",
        &job,
        "--server",
        &s.url,
        "--out",
        cluster.to_str().unwrap(),
    ]);
    let want = fingerprint(&cluster);
    let got = fingerprint(&embedded);
    assert!(
        got.keys().any(|k| k.starts_with("carved/")) && got.contains_key("yara/matches.jsonl"),
        "the fixture gives carved files and YARA matches: {:?}",
        got.keys().collect::<Vec<_>>()
    );
    assert_same(&got, &want, "embedded (in-process) and cluster reports");
}

/// Adler-32 as EWF checksums use it.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

fn le32(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(d[at..at + 4].try_into().unwrap())
}

fn le64(d: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(d[at..at + 8].try_into().unwrap())
}

/// Tampers with the media of a one-segment, uncompressed EWF v1 image
/// (ewfacquire's default): flips the byte at `at` of the first chunk and
/// rewrites that chunk's Adler-32, so every chunk still checks out and only
/// the MD5 stored at acquisition tells. Returns the section names seen.
fn flip_media_byte(e01: &Path, at: usize) -> Vec<String> {
    let mut d = std::fs::read(e01).unwrap();
    let mut sections: Vec<(String, usize)> = Vec::new();
    let mut off = 13usize;
    loop {
        let name = String::from_utf8_lossy(&d[off..off + 16])
            .trim_end_matches('\0')
            .to_string();
        let next = le64(&d, off + 16) as usize;
        sections.push((name.clone(), off));
        if name == "done" || next == off || sections.len() > 64 {
            break;
        }
        off = next;
    }
    let find = |n: &str| {
        sections
            .iter()
            .find(|(s, _)| s == n)
            .map(|(_, o)| *o + 76)
            .unwrap_or_else(|| panic!("{}: no '{n}' section: {sections:?}", e01.display()))
    };
    let vol = find("volume");
    let chunk = (le32(&d, vol + 8) * le32(&d, vol + 12)) as usize;
    let table = find("table");
    let base = le64(&d, table + 8) as usize;
    let first = le32(&d, table + 24);
    assert_eq!(
        first & 0x8000_0000,
        0,
        "first chunk compressed: ewfacquire's default should store it raw"
    );
    let c0 = base + first as usize;
    assert!(at < chunk && c0 + chunk + 4 <= d.len());
    d[c0 + at] ^= 0xff;
    let sum = adler32(&d[c0..c0 + chunk]);
    d[c0 + chunk..c0 + chunk + 4].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(e01, d).unwrap();
    sections.into_iter().map(|(s, _)| s).collect()
}

fn md5_hex(data: &[u8]) -> String {
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The last non-empty line of stderr.
fn last_err_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string()
}

fn assert_integrity_failure(o: &Output, image: &Path, stored: &str, computed: &str, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(EXIT_STORED_HASH_MISMATCH),
        "{what}: exit status; stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = last_err_line(o);
    for needle in [
        "integrity FAILURE",
        image.to_str().unwrap(),
        &format!("stored MD5 {stored}"),
        &format!("computed MD5 {computed}"),
    ] {
        assert!(line.contains(needle), "{what}: {line:?} lacks {needle:?}");
    }
}

fn assert_report_mismatch(dir: &Path, stored: &str, computed: &str, what: &str) {
    let r = report(dir);
    assert_eq!(r["hashes"]["md5"], computed, "{what}: computed MD5");
    let v = r["verification"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no verification in report.json"));
    let md5v = v
        .iter()
        .find(|x| x["algorithm"] == "md5")
        .unwrap_or_else(|| panic!("{what}: no md5 verification: {v:?}"));
    assert_eq!(md5v["stored"], stored, "{what}");
    assert_eq!(md5v["matches"], false, "{what}");
    for f in ["dfxml.xml", "case.jsonld"] {
        assert!(dir.join(f).is_file(), "{what}: {f} not written");
    }
}

/// Finding 7: media bytes changed after acquisition (chunk checksums
/// rewritten to match, as a careful forger would) are caught by the stored
/// MD5 alone. `ewfverify` says FAILURE; `trawl scan` writes the whole
/// report, then exits 5 with one stderr line naming the image, the stored
/// and the computed MD5; `trawl results` of the same image on a cluster
/// does the same. The untouched image scans with exit 0.
#[test]
fn e01_with_tampered_media_exits_5_naming_both_md5s_from_scan_and_results() {
    let test = "e01_with_tampered_media_exits_5_naming_both_md5s_from_scan_and_results";
    if !have("ewfacquire") || !have("ewfverify") {
        trawl_fixtures::skip(test, "ewfacquire/ewfverify (Debian ewf-tools)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("media.raw");
    random_media(&raw, 3 << 20, 17);
    let media = std::fs::read(&raw).unwrap();
    let stored = md5_hex(&media);
    let target = dir.path().join("disk");
    let acq = Command::new("ewfacquire")
        .args(["-u", "-q", "-t"])
        .arg(&target)
        .arg(&raw)
        .output()
        .expect("ewfacquire");
    assert!(
        acq.status.success(),
        "ewfacquire: {}",
        String::from_utf8_lossy(&acq.stderr)
    );
    let e01 = dir.path().join("disk.E01");

    // Untouched: verified, exit 0.
    let good_out = dir.path().join("good");
    let o = run(&[
        "scan",
        e01.to_str().unwrap(),
        "--out",
        good_out.to_str().unwrap(),
        "--analyses",
        "hash",
    ]);
    assert!(
        o.status.success(),
        "untouched E01: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = report(&good_out);
    assert_eq!(r["hashes"]["md5"], stored.as_str());
    assert_eq!(
        r["verification"][0]["matches"], true,
        "{}",
        r["verification"]
    );

    // Tampered: one media byte flipped, the chunk checksum rewritten.
    let sections = flip_media_byte(&e01, 1000);
    let mut tampered = media.clone();
    tampered[1000] ^= 0xff;
    let computed = md5_hex(&tampered);
    let v = Command::new("ewfverify")
        .arg("-q")
        .arg(&e01)
        .output()
        .expect("ewfverify");
    let vtext = String::from_utf8_lossy(&v.stdout);
    assert!(
        !v.status.success() && vtext.contains("FAILURE") && vtext.contains(&computed),
        "ewfverify should see only the MD5 mismatch ({sections:?}): {vtext}"
    );

    let bad_out = dir.path().join("bad");
    let o = run(&[
        "scan",
        e01.to_str().unwrap(),
        "--out",
        bad_out.to_str().unwrap(),
        "--analyses",
        "hash,carve,features",
    ]);
    assert_integrity_failure(&o, &e01, &stored, &computed, "trawl scan");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("stored md5 {stored}: MISMATCH")),
        "summary: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_report_mismatch(&bad_out, &stored, &computed, "trawl scan");
    assert!(
        bad_out.join("features").is_dir(),
        "trawl scan: the full report is written"
    );
    // --json: the same exit and stderr line; stdout stays JSON.
    let o = run(&[
        "scan",
        e01.to_str().unwrap(),
        "--out",
        dir.path().join("bad-json").to_str().unwrap(),
        "--analyses",
        "hash",
        "--json",
    ]);
    assert_integrity_failure(&o, &e01, &stored, &computed, "trawl scan --json");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json output");
    assert_eq!(j["verification"][0]["matches"], false, "{j}");

    // The same image on a cluster: `trawl results` exits 5 after writing.
    let data = tempfile::tempdir().unwrap();
    let cfg = roots_config(data.path(), dir.path());
    let s = start_scheduler(
        &data.path().join("state"),
        "127.0.0.1:0",
        &["--config", cfg.to_str().unwrap()],
    );
    let _w = start_worker(&s.url, "w-e01", 2, 0);
    let job = submit(&s.url, &e01, "case-e01", &["--analyses", "hash"]);
    let st = wait_for(&s.url, &job, "completion", 120, done);
    assert_eq!(st["state"], "completed", "{st}");
    let res_out = dir.path().join("results");
    let o = run(&[
        "results",
        &job,
        "--server",
        &s.url,
        "--out",
        res_out.to_str().unwrap(),
    ]);
    assert_integrity_failure(&o, &e01, &stored, &computed, "trawl results");
    assert!(last_err_line(&o).contains(&job), "names the job: {o:?}");
    assert_report_mismatch(&res_out, &stored, &computed, "trawl results");
}

/// Deterministic media: text and pseudo-random bytes (whole sectors).
fn random_media(path: &Path, len: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        if (v.len() / 4096) % 3 == 0 {
            v.extend_from_slice(b"evidence text, alice@example.com, http://example.org/ ");
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
    }
    v.truncate(len);
    std::fs::write(path, v).unwrap();
}

/// Finding 7 on the reference corpus: bulk_extractor's `email_test.E01`
/// set stores MD5 b817ed25… while its data's is 63fa5466… (ewfverify:
/// FAILURE). `trawl scan` writes the report and exits 5 naming both.
#[test]
fn corpus_email_test_e01_with_a_wrong_stored_md5_exits_5() {
    let test = "corpus_email_test_e01_with_a_wrong_stored_md5_exits_5";
    let rel = "bulk-extractor-test-data/src/tests/email_test.E01";
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora")
        .join(rel);
    if !p.is_file() {
        trawl_fixtures::skip(test, &format!("../shared/corpora/{rel}"));
        return;
    }
    let p = p.canonicalize().unwrap();
    let (stored, computed) = (
        "b817ed2590eeeb39f42445088d369f6c",
        "63fa546614f5d732586f3ca06b59bc49",
    );
    let out = tempfile::tempdir().unwrap();
    let o = run(&[
        "scan",
        p.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "hash,features",
    ]);
    assert_integrity_failure(&o, &p, stored, computed, "email_test.E01");
    assert_report_mismatch(out.path(), stored, computed, "email_test.E01");
    assert!(
        out.path().join("features/email.txt").is_file(),
        "the full report (e-mail features) is written: {:?}",
        std::fs::read_dir(out.path().join("features"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
}
