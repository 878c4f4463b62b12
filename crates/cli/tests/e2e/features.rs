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
        // a line twice (the same feature may appear at one path with two
        // contexts: a packet's source and destination)
        let whole: BTreeSet<&(String, String, String)> = ls.iter().collect();
        assert_eq!(whole.len(), ls.len(), "{name}: a feature reported twice");
        let set: BTreeSet<(String, String)> =
            ls.iter().map(|(p, f, _)| (p.clone(), f.clone())).collect();
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
    // report.json: counts equal the lines (decoded.txt lists the decoded
    // buffers: not findings, not counted), per-scanner statistics
    let r = report(a.path());
    let per = &r["counts"]["features"]["per_scanner"];
    for name in by.keys() {
        let n = lines(a.path(), name).len() as u64;
        let want = if name == "decoded" { 0 } else { n };
        assert_eq!(per[name].as_u64().unwrap_or(0), want, "{name}");
    }
    assert!(by.get("decoded").is_some_and(|d| !d.is_empty()));
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

/// An IPv4/TCP packet with valid checksums (IP header and TCP pseudo-header).
fn tcp_packet(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    fn sum(data: &[u8], mut acc: u32) -> u32 {
        for c in data.chunks(2) {
            acc += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
        }
        acc
    }
    fn fold(mut acc: u32) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    }
    let tcp_len = 20 + payload.len();
    let total = 20 + tcp_len;
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = fold(sum(&ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6, (tcp_len >> 8) as u8, tcp_len as u8]);
    let c = fold(sum(&tcp, sum(&pseudo, 0)));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&tcp);
    ip
}

#[test]
fn bulk_extractor_scanners_and_layers_through_the_cli() {
    // --list-scanners: one line per scanner, bulk_extractor's names
    let out = run_ok(&["scan", "--list-scanners"]);
    let list = String::from_utf8(out.stdout).unwrap();
    for name in [
        "email",
        "exif",
        "net",
        "json",
        "aes",
        "elf",
        "kml",
        "rar",
        "sqlite",
        "utmp",
        "vcard",
        "vin",
        "winpe",
        "winprefetch",
        "base64",
        "base16",
        "gzip",
        "accts",
    ] {
        assert!(
            list.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing from --list-scanners:\n{list}"
        );
    }
    assert!(
        list.lines()
            .any(|l| l.starts_with("aes") && l.contains(" off "))
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("net") && l.contains(" default "))
    );

    // an image: a TCP packet, a base64 block holding an address, a JSON
    // object, a VIN; two copies of the same gzip member
    let dir = tempfile::tempdir().unwrap();
    let mut img = vec![0u8; 3 << 20];
    let pkt = tcp_packet(
        [10, 1, 2, 3],
        [192, 0, 2, 80],
        40000,
        80,
        b"GET / HTTP/1.0\r\n\r\n",
    );
    img[100_003..100_003 + pkt.len()].copy_from_slice(&pkt);
    let text = "Reply to: someone.encoded@example.net, thanks.\n".repeat(4);
    let b64 = {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in text.as_bytes().chunks(3) {
            let v = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                s.push(if k <= c.len() {
                    A[((v >> (18 - 6 * k)) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        s.as_bytes()
            .chunks(76)
            .map(|l| format!("{}\r\n", std::str::from_utf8(l).unwrap()))
            .collect::<String>()
    };
    let mail = format!("Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n");
    img[1_500_000..1_500_000 + mail.len()].copy_from_slice(mail.as_bytes());
    let json = br#"x {"user": "a", "id": 7, "tags": ["p", "q"]} y"#;
    img[2_000_000..2_000_000 + json.len()].copy_from_slice(json);
    let vin = b" VIN: 1HGBH41JXMN109186 ";
    img[2_100_000..2_100_000 + vin.len()].copy_from_slice(vin);
    let image = dir.path().join("mixed.dd");
    std::fs::write(&image, &img).unwrap();

    let a = scan_features(&image, &["--shard-size", "1MiB"]);
    let ip = lines(a.path(), "ip");
    assert_eq!(ip.len(), 2, "{ip:?}");
    assert_eq!(ip[0].0, "100003");
    assert_eq!(ip[0].1, "10.1.2.3");
    assert!(ip[0].2.contains("cksum-ok"), "{ip:?}");
    let tcp = lines(a.path(), "tcp");
    assert_eq!(tcp.len(), 1, "{tcp:?}");
    assert!(
        tcp[0].1.starts_with("10.1.2.3 40000 -> 192.0.2.80 80"),
        "{tcp:?}"
    );
    // packets.pcap: a global header and the one packet, Ethernet-framed
    let pcap = std::fs::read(a.path().join("features/packets.pcap")).unwrap();
    assert_eq!(&pcap[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let incl = u32::from_le_bytes(pcap[24 + 8..24 + 12].try_into().unwrap()) as usize;
    assert_eq!(pcap.len(), 24 + 16 + incl);
    assert_eq!(&pcap[24 + 16 + 14..], &pkt[..]);
    // the base64 block decoded and scanned: N-BASE64-M
    let emails = lines(a.path(), "email");
    let block = 1_500_000 + mail.find(&b64[..20]).unwrap();
    assert_eq!(
        emails
            .iter()
            .filter(|e| e.0.starts_with(&format!("{block}-BASE64-")))
            .map(|e| e.1.as_str())
            .collect::<Vec<_>>(),
        ["someone.encoded@example.net"; 4]
    );
    let decoded = lines(a.path(), "decoded");
    assert!(
        decoded.iter().any(|d| d.0 == format!("{block}-BASE64")),
        "{decoded:?}"
    );
    let json_lines = lines(a.path(), "json");
    assert_eq!(json_lines.len(), 1, "{json_lines:?}");
    assert_eq!(json_lines[0].0, "2000002");
    // VINs are off by default, on with -e vin; net off with --disable net
    assert!(!a.path().join("features/vin.txt").exists());
    let b = scan_features(
        &image,
        &["-e", "vin", "--disable", "net,json", "--workers", "2"],
    );
    assert_eq!(lines(b.path(), "vin")[0].1, "1HGBH41JXMN109186");
    assert!(!b.path().join("features/ip.txt").exists());
    assert!(!b.path().join("features/json.txt").exists());
    assert_eq!(lines(b.path(), "email"), emails, "the same e-mail lines");
    // unknown names are refused, naming them
    let bad = run(&[
        "scan",
        image.to_str().unwrap(),
        "--out",
        dir.path().join("bad").to_str().unwrap(),
        "--analyses",
        "features",
        "--enable",
        "nosuch",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nosuch"));
}
