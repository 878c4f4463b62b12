//! The `net` structure scanner (bulk_extractor's `scan_net`): BE's expected
//! `ip.txt` / `ether.txt` lines on its own test files, `packets.pcap`
//! round trips, shard invariance, hostile input, random bytes.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use trawl_core::Feature;
use trawl_core::spec::FeatureOptions;
use trawl_features::FeatureScanner;

mod common;
use common::{be_test_data as corpus, random_bytes, scan_sharded};

type Mem = trawl_evidence::MemEvidence;

fn net_only() -> FeatureScanner {
    let o = FeatureOptions {
        scanners: vec!["net".into()],
        ..FeatureOptions::default()
    };
    FeatureScanner::new(&o).unwrap()
}

fn read(c: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(c.join(rel)).unwrap()
}

fn scan_buf(data: &[u8]) -> Vec<Feature> {
    let mut f = net_only()
        .scan_buffer(data, &AtomicBool::new(false))
        .unwrap()
        .features;
    f.sort_by(|a, b| a.sort_cmp(b));
    f
}

/// (path, feature, context) of one feature file, in feature-file order
/// (offset, then feature).
fn lines(f: &[Feature], name: &str) -> Vec<(String, String, String)> {
    f.iter()
        .filter(|f| f.scanner == name)
        .map(|f| {
            (
                f.path.clone(),
                String::from_utf8_lossy(&f.feature).into_owned(),
                String::from_utf8_lossy(&f.context).into_owned(),
            )
        })
        .collect()
}

fn l(p: &str, f: &str, c: &str) -> (String, String, String) {
    (p.into(), f.into(), c.into())
}

/// Expected lines in feature-file order: BE's tests list the source
/// before the destination, the feature file sorts them.
fn sorted(mut v: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    v.sort_by(|a, b| {
        let n = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
        (n(&a.0), &a.1).cmp(&(n(&b.0), &b.1))
    });
    v
}

/// `features/packets.pcap` as the report writes it.
fn pcap_file(f: &[Feature]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for p in f.iter().filter(|f| f.scanner == "packets") {
        v.extend_from_slice(&p.feature);
    }
    v
}

/// A pcap record: time stamp, original length, data.
#[derive(Debug, PartialEq, Eq)]
struct Rec {
    ts: (u32, u32),
    len: u32,
    data: Vec<u8>,
}

/// A minimal pcap reader (little-endian, microseconds): the link type and
/// the records; panics on a malformed file.
fn parse_pcap(b: &[u8]) -> (u32, Vec<Rec>) {
    let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!(u(0), 0xa1b2_c3d4, "magic");
    let link = u(20);
    let mut out = Vec::new();
    let mut i = 24;
    while i < b.len() {
        assert!(i + 16 <= b.len(), "truncated record header at {i}");
        let cap = u(i + 8) as usize;
        assert!(cap <= u(16) as usize && u(i + 12) >= cap as u32);
        assert!(i + 16 + cap <= b.len(), "truncated record at {i}");
        out.push(Rec {
            ts: (u(i), u(i + 4)),
            len: u(i + 12),
            data: b[i + 16..i + 16 + cap].to_vec(),
        });
        i += 16 + cap;
    }
    (link, out)
}

const TCPDUMP: (&str, &str) = ("0xd4,0xc3,0xb2,0xa1", "TCPDUMP file");

/// BE `src/test_be.cpp` test_net1: `ip.txt` lines at 40 and
/// `packets.pcap` identical to the input file.
#[test]
fn ntlm1_as_bulk_extractor() {
    let Some(c) = corpus("ntlm1_as_bulk_extractor") else {
        return;
    };
    let data = read(&c, "src/tests/ntlm1.pcap");
    let f = scan_buf(&data);
    // the TCPDUMP line: scan_net.cpp carvePCAPFileHeader
    assert_eq!(
        lines(&f, "ip"),
        sorted(vec![
            l("0", TCPDUMP.0, TCPDUMP.1),
            l("40", "192.168.0.91", "struct ip L (src) cksum-ok"),
            l("40", "192.168.0.55", "struct ip R (dst) cksum-ok"),
        ])
    );
    // scan_net.cpp documentIPFields, at the record's data (the ports of
    // the TCP header, see the module's deviations)
    assert_eq!(
        lines(&f, "tcp"),
        [l(
            "40",
            "192.168.0.91 2239 -> 192.168.0.55 80 (TCP)",
            " Size: 412"
        )]
    );
    // BE writes no ether.txt line for a frame in a pcap record
    assert!(lines(&f, "ether").is_empty());
    assert_eq!(pcap_file(&f), data);
}

/// BE test_net2 / test_net3 / test_net80: the records of ntlm2, ntlm3,
/// ntlm80 at 40, 482, 1010 …, every packet written back unchanged.
#[test]
fn ntlm_pcaps_as_bulk_extractor() {
    let Some(c) = corpus("ntlm_pcaps_as_bulk_extractor") else {
        return;
    };
    let ok = |o: &str, a: &str, b: &str| {
        vec![
            l(o, a, "struct ip L (src) cksum-ok"),
            l(o, b, "struct ip R (dst) cksum-ok"),
        ]
    };
    let (a, b) = ("192.168.0.91", "192.168.0.55");
    let mut want2 = vec![l("0", TCPDUMP.0, TCPDUMP.1)];
    want2.extend(ok("40", a, b));
    want2.extend(ok("482", b, a));
    let data = read(&c, "src/tests/ntlm2.pcap");
    let f = scan_buf(&data);
    assert_eq!(lines(&f, "ip"), sorted(want2.clone()));
    assert_eq!(pcap_file(&f), data, "test_net2: packets.pcap == ntlm2.pcap");

    let mut want3 = want2.clone();
    want3.extend(ok("1010", a, b));
    let data = read(&c, "src/tests/ntlm3.pcap");
    let f = scan_buf(&data);
    assert_eq!(lines(&f, "ip"), sorted(want3));
    assert_eq!(pcap_file(&f), data);

    // test_net80: first line at 40, 192.168.0.91 80 times in ip.txt
    let data = read(&c, "src/tests/ntlm80.pcap");
    let f = scan_buf(&data);
    let ip = lines(&f, "ip");
    assert!(ip[1..3].contains(&ok("40", a, b)[0]));
    assert_eq!(ip.iter().filter(|x| x.1 == a).count(), 80);
    assert_eq!(ip.len(), 1 + 160);
    assert_eq!(pcap_file(&f), data, "every ntlm80 packet written back");
    // tests/Data/NTLM-wenchao.pcap is the same capture
    let w = read(&c, "tests/Data/NTLM-wenchao.pcap");
    assert_eq!(pcap_file(&scan_buf(&w)), w);
}

/// BE test_net3+10 and test_net3+24: ntlm3.pcap without its first 10 /
/// 24 bytes; the records are still found.
#[test]
fn ntlm3_without_file_header() {
    let Some(c) = corpus("ntlm3_without_file_header") else {
        return;
    };
    let data = read(&c, "src/tests/ntlm3.pcap");
    let (a, b) = ("192.168.0.91", "192.168.0.55");
    for (cut, offs) in [(10usize, ["30", "472", "1000"]), (24, ["16", "458", "986"])] {
        let f = scan_buf(&data[cut..]);
        let want = vec![
            l(offs[0], a, "struct ip L (src) cksum-ok"),
            l(offs[0], b, "struct ip R (dst) cksum-ok"),
            l(offs[1], b, "struct ip L (src) cksum-ok"),
            l(offs[1], a, "struct ip R (dst) cksum-ok"),
            l(offs[2], a, "struct ip L (src) cksum-ok"),
            l(offs[2], b, "struct ip R (dst) cksum-ok"),
        ];
        assert_eq!(lines(&f, "ip"), sorted(want), "ntlm3.pcap+{cut}");
        assert_eq!(&pcap_file(&f)[24..], &data[24..]);
    }
}

/// ntlm.pcap-noheader is ntlm80.pcap without its first 100 bytes (the file
/// header and part of the first packet): BE's loop carves the 79 records
/// that follow, the first at 366 (data at 382).
#[test]
fn ntlm_noheader() {
    let Some(c) = corpus("ntlm_noheader") else {
        return;
    };
    let data = read(&c, "src/tests/ntlm.pcap-noheader");
    let full = read(&c, "src/tests/ntlm80.pcap");
    assert_eq!(&full[100..], &data[..]);
    let f = scan_buf(&data);
    let ip = lines(&f, "ip");
    assert_eq!(ip.len(), 2 * 79);
    assert_eq!(
        ip[0],
        l("382", "192.168.0.55", "struct ip L (src) cksum-ok")
    );
    assert_eq!(&pcap_file(&f)[24..], &full[466..]);
}

/// BE test_net-domexusers: Ethernet frames at 242 and 1778 of a raw
/// memory sample (`validateEther`, `ether.txt`).
#[test]
fn domexusers_ethernet() {
    let Some(c) = corpus("domexusers_ethernet") else {
        return;
    };
    let data = read(&c, "src/tests/domexusers-2435863310-2435928846.raw");
    let f = scan_buf(&data);
    let ether = lines(&f, "ether");
    for want in [
        l("242", "00:0C:29:26:BB:CD", "(ether_dhost)"),
        l("242", "00:50:56:E0:FE:24", "(ether_shost)"),
        l("1778", "00:0C:29:26:BB:CD", "(ether_dhost)"),
        l("1778", "00:50:56:E0:FE:24", "(ether_shost)"),
    ] {
        assert!(ether.contains(&want), "{want:?} not in {ether:#?}");
    }
    // each frame is written with time stamp 0, its Ethernet header included
    let (_, recs) = parse_pcap(&pcap_file(&f));
    for off in [242usize, 1778] {
        assert!(
            recs.iter()
                .any(|r| r.ts == (0, 0) && data[off..].starts_with(&r.data)),
            "frame at {off}"
        );
    }
    println!(
        "domexusers: {} ether, {} ip, {} packets",
        ether.len(),
        lines(&f, "ip").len(),
        recs.len()
    );
}

/// ipv6_packet.pkt: a bare IPv6/UDP packet (LLMNR query, hop limit 1):
/// `carveIPFrame` at 0, link-local source and `ff02::1:3` multicast
/// destination pass `invalidIP6`, the UDP checksum is right.
#[test]
fn ipv6_bare_packet() {
    let Some(c) = corpus("ipv6_bare_packet") else {
        return;
    };
    let data = read(&c, "src/tests/ipv6_packet.pkt");
    let f = scan_buf(&data);
    assert_eq!(
        lines(&f, "ip"),
        sorted(vec![
            l(
                "0",
                "fe80::c46b:e4:d55:62b1",
                "struct ip6_hdr R (src) cksum-ok"
            ),
            l("0", "ff02::1:3", "struct ip6_hdr L (dst) cksum-ok"),
        ])
    );
    assert_eq!(
        lines(&f, "tcp"),
        [l(
            "0",
            "fe80::c46b:e4:d55:62b1 63902 -> ff02::1:3 5355 (UDP)",
            " Size: 76"
        )]
    );
    let (link, recs) = parse_pcap(&pcap_file(&f));
    assert_eq!((link, recs.len()), (1, 1));
    assert_eq!(
        &recs[0].data[..14],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd]
    );
    assert_eq!(&recs[0].data[14..], &data[..76]);
}

/// ipv6_checksum_paths.pcap (+ .md): Ethernet/IPv6 TCP SYN, UDP DNS
/// query, ICMPv6 neighbour solicitation, all with right checksums; the
/// records are written back unchanged.
#[test]
fn ipv6_checksum_paths() {
    let Some(c) = corpus("ipv6_checksum_paths") else {
        return;
    };
    let data = read(&c, "src/tests/ipv6_checksum_paths.pcap");
    let f = scan_buf(&data);
    let ip = lines(&f, "ip");
    assert_eq!(ip[0], l("0", TCPDUMP.0, TCPDUMP.1));
    assert_eq!(ip.len(), 7);
    assert!(
        ip[1..]
            .iter()
            .all(|x| x.2.starts_with("struct ip6_hdr ") && x.2.ends_with(" cksum-ok")),
        "{ip:#?}"
    );
    let tcp = lines(&f, "tcp");
    let kinds: Vec<&str> = tcp
        .iter()
        .map(|x| x.1.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(kinds, ["(TCP)", "(UDP)", "(ICMPv6)"], "{tcp:#?}");
    assert!(tcp[2].2.starts_with(" Type: 135 Code: 0"), "{tcp:#?}");
    // same records (the input's snap length is 2000, BE writes 65535)
    assert_eq!(&pcap_file(&f)[24..], &data[24..]);
    println!("{ip:#?}\n{tcp:#?}");
}

/// skipped-packets.bin: raw-IPv6 pcap records without a file header; each
/// is carved (followed by another record), written with the pcap writer's
/// forged Ethernet header and lengths + 14.
#[test]
fn skipped_packets_raw_ipv6_records() {
    let Some(c) = corpus("skipped_packets_raw_ipv6_records") else {
        return;
    };
    let data = read(&c, "tests/Data/skipped-packets.bin");
    let f = scan_buf(&data);
    let (_, recs) = parse_pcap(&pcap_file(&f));
    let ip = lines(&f, "ip");
    let pk: Vec<&Feature> = f.iter().filter(|f| f.scanner == "packets").collect();
    println!(
        "skipped-packets.bin: {} ip lines, {} packets",
        ip.len(),
        recs.len()
    );
    // the 111 records chained from offset 503 to the end of the file
    assert_eq!(recs.len(), 111);
    assert_eq!(pk[0].offset, 503);
    assert_eq!(ip.len(), 2 * 111);
    // every written packet matches the record it came from
    for (p, r) in pk.iter().zip(&recs) {
        let o = p.offset as usize;
        let cap = u32::from_le_bytes(data[o + 8..o + 12].try_into().unwrap()) as usize;
        assert_eq!(r.data.len(), cap + 14);
        assert_eq!(
            &r.data[..14],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd]
        );
        assert_eq!(&r.data[14..], &data[o + 16..o + 16 + cap]);
        assert_eq!(
            &data[o..o + 8],
            &[r.ts.0.to_le_bytes(), r.ts.1.to_le_bytes()].concat()[..]
        );
    }
}

/// 802.11 captures (link type `DLT_IEEE802_11`): as the corpus README of
/// these files says of bulk_extractor, every record is carved with its link
/// type kept (`packets_80211.pcap`, records as they are); an IPv4 or IPv6
/// packet in an LLC/SNAP data frame is reported like one in an Ethernet
/// frame, at the record's data.
#[test]
fn wifi_pcaps_carved_with_their_link_type() {
    let Some(c) = corpus("wifi_pcaps_carved_with_their_link_type") else {
        return;
    };
    for (name, ips, tcp) in [
        (
            "wifi_ipv4.pcap",
            vec![
                l("40", "192.168.1.1", "struct ip R (dst) cksum-ok"),
                l("40", "192.168.1.132", "struct ip L (src) cksum-ok"),
            ],
            Some("192.168.1.132 1031 -> 192.168.1.1 53 (UDP)"),
        ),
        ("wifi_ipv6.pcap", vec![], None),
        ("wifi_management.pcap", vec![], None),
        ("wifi_management_pair.pcap", vec![], None),
    ] {
        let data = read(&c, &format!("src/tests/{name}"));
        assert_eq!(
            &data[20..24],
            &105u32.to_le_bytes(),
            "{name}: DLT_IEEE802_11"
        );
        let f = scan_buf(&data);
        // every record, in order, as it is
        let carved: Vec<u8> = f
            .iter()
            .filter(|x| x.scanner == "packets_80211")
            .flat_map(|x| x.feature.clone())
            .collect();
        assert_eq!(carved, &data[24..], "{name}");
        assert!(f.iter().all(|x| x.scanner != "packets"), "{name}");
        let ip = lines(&f, "ip");
        assert_eq!(ip[0], l("0", TCPDUMP.0, TCPDUMP.1), "{name}");
        if name == "wifi_ipv6.pcap" {
            // an IPv6 UDP packet from a link-local address to ff02::
            assert_eq!(ip.len(), 3, "{ip:?}");
            assert!(
                ip[1..]
                    .iter()
                    .all(|x| x.0 == "40" && x.2.contains("ip6_hdr")),
                "{ip:?}"
            );
            assert!(ip.iter().any(|x| x.1.starts_with("fe80::")), "{ip:?}");
            let t = lines(&f, "tcp");
            assert_eq!(t.len(), 1, "{t:?}");
            assert!(t[0].1.ends_with("(UDP)"), "{t:?}");
        } else {
            assert_eq!(ip[1..], ips[..], "{name}");
            let t: Vec<String> = lines(&f, "tcp").into_iter().map(|x| x.1).collect();
            assert_eq!(
                t,
                tcp.into_iter().map(str::to_string).collect::<Vec<_>>(),
                "{name}"
            );
        }
    }
}

/// ram_2pages.bin (AES key schedules) holds no packet.
#[test]
fn ram_2pages_has_no_packets() {
    let Some(c) = corpus("ram_2pages_has_no_packets") else {
        return;
    };
    assert!(scan_buf(&read(&c, "src/tests/ram_2pages.bin")).is_empty());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The sample files at odd offsets (structures straddling 4 KiB and 64 KiB
/// shard boundaries) in random filler, and ntlm2.pcap gzipped.
fn sample_image(c: &Path) -> Vec<u8> {
    let mut img = random_bytes(42, 400_000);
    let put = |img: &mut Vec<u8>, at: usize, d: &[u8]| img[at..at + d.len()].copy_from_slice(d);
    // ntlm3's first IP header at 4096 + 6 (record at 4096 - 24)
    put(&mut img, 4096 - 48, &read(c, "src/tests/ntlm3.pcap"));
    // domexusers: the Ethernet header at 65536 - 7, its IP header past it
    put(
        &mut img,
        65536 - 7 - 242,
        &read(c, "src/tests/domexusers-2435863310-2435928846.raw"),
    );
    put(&mut img, 140_001, &read(c, "src/tests/ipv6_packet.pkt"));
    put(
        &mut img,
        150_003,
        &read(c, "src/tests/ipv6_checksum_paths.pcap"),
    );
    put(
        &mut img,
        8192 * 20 - 515,
        &read(c, "tests/Data/skipped-packets.bin"),
    );
    put(&mut img, 230_001, &read(c, "src/tests/wifi_ipv4.pcap"));
    put(&mut img, 233_333, &gzip(&read(c, "src/tests/ntlm2.pcap")));
    put(&mut img, 262_144 - 3, &read(c, "src/tests/ntlm1.pcap"));
    img
}

#[test]
fn same_features_for_every_shard_plan() {
    let Some(c) = corpus("same_features_for_every_shard_plan") else {
        return;
    };
    let img = sample_image(&c);
    let ev = Mem::new("mem", img.clone(), false);
    let sc = net_only();
    let whole = scan_buf(&img);
    // exactly once
    let mut seen = std::collections::BTreeSet::new();
    for f in &whole {
        assert!(
            seen.insert((&f.scanner, &f.path, &f.feature, &f.context)),
            "twice: {f:?}"
        );
    }
    let count = |n: &str| whole.iter().filter(|f| f.scanner == n).count();
    println!(
        "sample image: ip {}, ether {}, tcp {}, packets {}",
        count("ip"),
        count("ether"),
        count("tcp"),
        count("packets")
    );
    // ntlm3 (3 packets), domexusers (2), ipv6_packet (1), ipv6_checksum_paths
    // (3), skipped-packets (111), ntlm2 in gzip (2), ntlm1 (1); the last
    // record of a capture is followed by filler, not by a record header, so
    // BE carves its frame as a bare Ethernet frame (time stamp 0) — which
    // also happens to wifi_ipv4's LLC/SNAP header (EtherType 0x0800 before
    // the IPv4 header, 60 bytes into the file)
    let pk: Vec<u64> = whole
        .iter()
        .filter(|f| f.scanner == "packets" && f.path.parse::<u64>().is_ok())
        .map(|f| f.offset)
        .collect();
    assert!(pk.contains(&(230_001 + 60)), "{pk:?}");
    assert_eq!(count("packets"), 3 + 2 + 1 + 3 + 111 + 2 + 1 + 1);
    // inside the gzip member: BE's forensic path
    let mut gz: Vec<_> = lines(&whole, "ip")
        .into_iter()
        .filter(|x| x.0.starts_with("233333-GZIP-"))
        .collect();
    gz.sort();
    assert_eq!(
        gz,
        std::collections::BTreeSet::from([
            l("233333-GZIP-0", TCPDUMP.0, TCPDUMP.1),
            l(
                "233333-GZIP-40",
                "192.168.0.91",
                "struct ip L (src) cksum-ok"
            ),
            l(
                "233333-GZIP-40",
                "192.168.0.55",
                "struct ip R (dst) cksum-ok"
            ),
            l(
                "233333-GZIP-482",
                "192.168.0.55",
                "struct ip L (src) cksum-ok"
            ),
            l(
                "233333-GZIP-482",
                "192.168.0.91",
                "struct ip R (dst) cksum-ok"
            ),
        ])
        .into_iter()
        .collect::<Vec<_>>()
    );
    for (shard, margin) in [
        (4096u64, 4096u64),
        (4096, 0),
        (4096, 1000),
        (65536, 65536),
        (65536, 3),
        (1 << 30, 1 << 20),
    ] {
        let s = scan_sharded(&sc, &ev, shard, margin);
        assert_eq!(s, whole, "shard {shard} margin {margin}");
    }
    // every packet written parses back as a pcap file
    let (link, recs) = parse_pcap(&pcap_file(&whole));
    assert_eq!((link, recs.len()), (1, count("packets")));
}

/// Truncated and mutated samples, and random bytes: no panic, every
/// packet written is a well-formed pcap record.
#[test]
fn hostile_input() {
    let Some(c) = corpus("hostile_input") else {
        return;
    };
    let mut samples = vec![
        read(&c, "src/tests/ntlm3.pcap"),
        read(&c, "src/tests/ipv6_checksum_paths.pcap"),
        read(&c, "src/tests/ipv6_packet.pkt"),
        read(&c, "src/tests/domexusers-2435863310-2435928846.raw")[..4096].to_vec(),
    ];
    samples.push(read(&c, "tests/Data/skipped-packets.bin")[..6000].to_vec());
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for s in &samples {
        for cut in (0..s.len()).step_by(7) {
            parse_pcap(&pcap_file(&scan_buf(&s[..cut])));
            parse_pcap(&pcap_file(&scan_buf(&s[cut..])));
        }
        for _ in 0..300 {
            let mut m = s.clone();
            for _ in 0..1 + rnd() % 8 {
                let i = (rnd() as usize) % m.len();
                m[i] = match rnd() % 4 {
                    0 => 0,
                    1 => 0xff,
                    2 => m[i] ^ (1 << (rnd() % 8)),
                    _ => rnd() as u8,
                };
            }
            parse_pcap(&pcap_file(&scan_buf(&m)));
        }
    }
    for seed in 0..20 {
        assert!(scan_buf(&random_bytes(seed, 1 << 16)).is_empty());
    }
}

/// False positives and throughput on 256 MiB of random bytes, and speed on
/// text; figures printed, not asserted (run with `--release --nocapture`).
#[test]
fn random_bytes_and_speed() {
    let per = 32 << 20;
    let net = trawl_features::records::STRUCTS[trawl_features::records::find("net").unwrap()].scan;
    let mut fp = 0;
    let (mut nanos, mut base) = (0u128, 0u128);
    let mut out = Vec::new();
    // the machine is shared: best of three runs per 32 MiB, and memmem
    // over the same bytes as a yardstick
    let best = |f: &mut dyn FnMut()| {
        (0..if cfg!(debug_assertions) { 1 } else { 3 })
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed().as_nanos()
            })
            .min()
            .unwrap_or(0)
    };
    for i in 0..8u64 {
        let data = random_bytes((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15), per);
        nanos += best(&mut || {
            out.clear();
            net(&data, 0..data.len(), &mut out);
        });
        fp += out.len();
        base += best(&mut || {
            assert!(memchr::memmem::find(&data, b"\x01\x02\x03\x04\x05\x06\x07\x08").is_none());
        });
    }
    let mbs = |bytes: usize, ns: u128| bytes as f64 / 1e6 / (ns as f64 / 1e9);
    println!(
        "net on 256 MiB random bytes: {fp} records, {:.0} MB/s (memmem on the same bytes: {:.0} MB/s)",
        mbs(8 * per, nanos),
        mbs(8 * per, base)
    );
    assert_eq!(fp, 0, "false positives on random bytes");
    // text-like data: words, digits, punctuation, e-mail-ish lines
    let words = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,application/xhtml+xml;q=0.9\r\n\r\nThe quick brown fox jumps over the lazy dog 0123456789 email: bob@example.org :: 10.0.0.1\n";
    let text: Vec<u8> = words.iter().copied().cycle().take(64 << 20).collect();
    let ns = best(&mut || {
        out.clear();
        net(&text, 0..text.len(), &mut out);
    });
    println!(
        "net on 64 MiB text: {} records, {:.0} MB/s",
        out.len(),
        mbs(text.len(), ns)
    );
    assert!(out.is_empty());
    // packet-dense data: ntlm80.pcap over and over (one record per 600 bytes)
    if let Some(c) = corpus("random_bytes_and_speed") {
        let pcap = read(&c, "src/tests/ntlm80.pcap");
        let dense: Vec<u8> = pcap.iter().copied().cycle().take(64 << 20).collect();
        let ns = best(&mut || {
            out.clear();
            net(&dense, 0..dense.len(), &mut out);
        });
        let packets = out.iter().filter(|r| r.recorder == "packets").count();
        println!(
            "net on 64 MiB of pcap records: {packets} packets, {:.0} MB/s",
            mbs(dense.len(), ns)
        );
        assert!(packets > 100_000);
    }
}

/// An Ethernet ARP reply (42 bytes).
fn arp_reply() -> Vec<u8> {
    let mut f = vec![0x00, 0x1b, 0x21, 0x3a, 0x4b, 0x5c]; // destination
    f.extend_from_slice(&[0x00, 0x0c, 0x29, 0x26, 0xbb, 0xcd]); // source
    f.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02]);
    f.extend_from_slice(&[0x00, 0x0c, 0x29, 0x26, 0xbb, 0xcd, 192, 168, 0, 1]);
    f.extend_from_slice(&[0x00, 0x1b, 0x21, 0x3a, 0x4b, 0x5c, 192, 168, 0, 77]);
    f
}

/// ARP (which bulk_extractor does not read): the MAC and IPv4 addresses of
/// both parties and the frame carved, in a pcap record with its time
/// stamp; at odd offsets, in every shard plan, exactly once.
#[test]
fn arp_frames_in_raw_data_and_in_pcap_records() {
    let frame = arp_reply();
    let mut img = random_bytes(77, 200_000);
    img[10_001..10_001 + 42].copy_from_slice(&frame);
    // a pcap record holding the frame, at 150 003
    let mut rec = Vec::new();
    rec.extend_from_slice(&1_300_000_000u32.to_le_bytes());
    rec.extend_from_slice(&5u32.to_le_bytes());
    rec.extend_from_slice(&42u32.to_le_bytes());
    rec.extend_from_slice(&42u32.to_le_bytes());
    rec.extend_from_slice(&frame);
    img[150_003..150_003 + rec.len()].copy_from_slice(&rec);
    let f = scan_buf(&img);
    for at in ["10001", "150019"] {
        assert_eq!(
            lines(&f, "ether")
                .into_iter()
                .filter(|x| x.0 == at)
                .collect::<Vec<_>>(),
            [
                l(at, "00:0C:29:26:BB:CD", "(arp_sha)"),
                l(at, "00:1B:21:3A:4B:5C", "(arp_tha)"),
            ]
        );
        assert_eq!(
            lines(&f, "ip")
                .into_iter()
                .filter(|x| x.0 == at)
                .collect::<Vec<_>>(),
            [
                l(at, "192.168.0.1", "struct arp (spa)"),
                l(at, "192.168.0.77", "struct arp (tpa)"),
            ]
        );
    }
    let pk: Vec<&Feature> = f.iter().filter(|x| x.scanner == "packets").collect();
    assert_eq!(pk.len(), 2, "{pk:#?}");
    assert_eq!(&pk[0].feature[16..], &frame[..]);
    assert_eq!(&pk[0].feature[..8], &[0u8; 8]);
    assert_eq!(pk[1].feature, rec, "the pcap record as it is");
    // the same for every shard plan
    let ev = trawl_evidence::MemEvidence::new("mem", img.clone(), false);
    for (shard, margin) in [(4096u64, 0u64), (65536, 4096), (1 << 30, 0)] {
        assert_eq!(
            scan_sharded(&net_only(), &ev, shard, margin),
            f,
            "shard {shard}"
        );
    }
}
