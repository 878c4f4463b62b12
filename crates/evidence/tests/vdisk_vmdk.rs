//! VMDK reader tests: differential against `qemu-img` (every subformat it
//! writes, child disks made with `qemu-io`), the reference corpora, a small
//! stream-optimized writer with the header in the footer (as VMware and
//! ovftool write them), hand-written descriptors, and hostile input
//! (seeded mutations run with a deadline; `TRAWL_FUZZ_SECS=N` loops for N
//! seconds).

use md5::{Digest, Md5};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use trawl_evidence::vdisk::vmdk::{VmdkEvidence, probe};
use trawl_evidence::{Evidence, EvidenceError, Format};

// ---------------------------------------------------------------------------
// Helpers

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

fn qemu_img(test: &str) -> Option<&'static str> {
    let ok = Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some("qemu-img")
    } else {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: qemu-img not found (CI is set: install qemu-utils)");
        }
        println!("{test}: skipped: qemu-img not found");
        None
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes a raw image of `size` bytes (sparse where zero): random data,
/// runs of zeros, partly written 64 KiB grains, data in the last bytes.
fn make_raw(path: &Path, size: u64, seed: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut r = Rng::new(seed);
    let mut pos = 0u64;
    while pos < size {
        let run = (1 + r.below(300_000)).min(size - pos);
        match r.below(4) {
            0 => {} // zeros
            1 => {
                // a few bytes inside a grain
                let n = (1 + r.below(700)).min(run);
                let mut b = vec![0u8; n as usize];
                r.fill(&mut b);
                f.write_at(&b, pos + r.below(run - n + 1)).unwrap();
            }
            _ => {
                let mut b = vec![0u8; run as usize];
                r.fill(&mut b);
                // compressible stretches too
                if r.below(2) == 0 {
                    for x in b.iter_mut().step_by(3) {
                        *x = 0x41;
                    }
                }
                f.write_at(&b, pos).unwrap();
            }
        }
        pos += run;
    }
    let tail = size.min(777);
    let mut b = vec![0u8; tail as usize];
    r.fill(&mut b);
    f.write_at(&b, size - tail).unwrap();
}

/// Writes `data` at each offset of a sparse raw file of `size` bytes.
fn make_sparse_raw(path: &Path, size: u64, blocks: &[(u64, usize)], seed: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut r = Rng::new(seed);
    for &(off, len) in blocks {
        let mut b = vec![0u8; len];
        r.fill(&mut b);
        f.write_at(&b, off).unwrap();
    }
}

fn file_md5(path: &Path) -> String {
    let f = std::fs::File::open(path).unwrap();
    let mut h = Md5::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut off = 0;
    loop {
        let n = f.read_at(&mut buf, off).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
    hex::encode(h.finalize())
}

/// MD5 of the whole virtual disk in one pass of 4 MiB reads.
fn media_md5(ev: &dyn Evidence) -> String {
    let mut h = Md5::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut off = 0u64;
    loop {
        let n = ev.read_at(off, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
    assert_eq!(off, ev.size());
    hex::encode(h.finalize())
}

/// Reads the whole disk (or, `sample`, 400 pieces of it) in random-sized
/// pieces, in random order, from four threads, and compares each piece with
/// `raw` at the same offset (the raw padded with zeros to the disk's size):
/// when the pieces cover the disk, their MD5 is the raw's.
fn random_reads_check(ev: &VmdkEvidence, raw: &Path, seed: u64, sample: bool) {
    let size = ev.size();
    let mut r = Rng::new(seed);
    let mut pieces = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let cap = if r.below(3) == 0 { 3_000_000 } else { 70_000 };
        let n = (1 + r.below(cap)).min(size - pos);
        pieces.push((pos, n as usize));
        pos += n;
    }
    for i in (1..pieces.len()).rev() {
        let j = r.below(i as u64 + 1) as usize;
        pieces.swap(i, j);
    }
    if sample {
        pieces.truncate(400);
    }
    let rawf = std::fs::File::open(raw).unwrap();
    let raw_len = rawf.metadata().unwrap().len();
    std::thread::scope(|sc| {
        for t in 0..4 {
            let pieces = &pieces;
            let rawf = &rawf;
            sc.spawn(move || {
                let mut got = Vec::new();
                let mut want = Vec::new();
                for &(off, n) in pieces.iter().skip(t).step_by(4) {
                    got.resize(n, 0xee);
                    want.clear();
                    want.resize(n, 0);
                    ev.read_exact_at(off, &mut got).unwrap();
                    if off < raw_len {
                        let m = (raw_len - off).min(n as u64) as usize;
                        rawf.read_exact_at(&mut want[..m], off).unwrap();
                    }
                    assert!(
                        got == want,
                        "read of {n} bytes at {off} differs from the raw"
                    );
                }
            });
        }
    });
}

/// MD5 of `raw` padded with zeros to `size` bytes.
fn padded_md5(raw: &Path, size: u64) -> String {
    let f = std::fs::File::open(raw).unwrap();
    let len = f.metadata().unwrap().len();
    assert!(len <= size);
    let mut h = Md5::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut off = 0;
    while off < len {
        let n = f.read_at(&mut buf, off).unwrap();
        h.update(&buf[..n]);
        off += n as u64;
    }
    let zeros = vec![0u8; 1 << 20];
    let mut left = size - len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        h.update(&zeros[..n]);
        left -= n as u64;
    }
    hex::encode(h.finalize())
}

/// `qemu-img convert -O raw` of `img`, into `out`, and its MD5.
fn qemu_raw_md5(img: &Path, out: &Path) -> String {
    run(
        "qemu-img",
        &["convert", "-f", "vmdk", "-O", "raw", s(img), s(out)],
    );
    let m = file_md5(out);
    std::fs::remove_file(out).unwrap();
    m
}

/// Converts `raw` with `opts` and checks the reader against the raw and
/// against qemu-img's own reading. Small disks: MD5 of one pass, random
/// reads covering the disk, MD5 of `qemu-img convert -O raw`. `big` disks
/// (GiBs, mostly zeros): one pass compared with the raw chunk by chunk,
/// sampled random reads, and `qemu-img compare` of the container with the
/// raw (which skips zeros instead of hashing them).
fn check_subformat(dir: &Path, raw: &Path, name: &str, opts: &[&str], big: bool) -> VmdkEvidence {
    let img = dir.join(format!("{name}.vmdk"));
    let mut args = vec!["convert", "-f", "raw", "-O", "vmdk"];
    args.extend_from_slice(opts);
    args.push(s(raw));
    args.push(s(&img));
    run("qemu-img", &args);
    let ev = VmdkEvidence::open(std::slice::from_ref(&img))
        .unwrap_or_else(|e| panic!("{name}: open: {e}"));
    let raw_len = std::fs::metadata(raw).unwrap().len();
    assert_eq!(
        ev.size(),
        raw_len.div_ceil(512) * 512,
        "{name}: virtual size"
    );
    assert_eq!(ev.info().format, Format::Vmdk);
    assert_eq!(ev.info().bytes_per_sector, 512);
    if big {
        compare_with_raw(&ev, raw);
        random_reads_check(&ev, raw, 7, true);
        run(
            "qemu-img",
            &["compare", "-f", "vmdk", "-F", "raw", s(&img), s(raw)],
        );
        return ev;
    }
    let want = padded_md5(raw, ev.size());
    assert_eq!(media_md5(&ev), want, "{name}: one-pass MD5");
    random_reads_check(&ev, raw, 7, false);
    let q = qemu_raw_md5(&img, &dir.join(format!("{name}.qemu.raw")));
    assert_eq!(q, want, "{name}: qemu-img convert -O raw");
    ev
}

/// Compares the whole disk with the raw in one pass of 4 MiB reads.
fn compare_with_raw(ev: &dyn Evidence, raw: &Path) {
    let f = std::fs::File::open(raw).unwrap();
    let mut a = vec![0u8; 4 << 20];
    let mut b = vec![0u8; 4 << 20];
    let mut off = 0u64;
    loop {
        let n = ev.read_at(off, &mut a).unwrap();
        if n == 0 {
            break;
        }
        b[..n].fill(0);
        let _ = f.read_at(&mut b[..n], off).unwrap();
        assert!(
            a[..n] == b[..n],
            "the disk differs from the raw in [{off}, +{n})"
        );
        off += n as u64;
    }
    assert_eq!(off, ev.size());
}

const SUBFORMATS: &[(&str, &[&str])] = &[
    ("monolithicSparse", &["-o", "subformat=monolithicSparse"]),
    ("monolithicFlat", &["-o", "subformat=monolithicFlat"]),
    (
        "twoGbMaxExtentSparse",
        &["-o", "subformat=twoGbMaxExtentSparse"],
    ),
    (
        "twoGbMaxExtentFlat",
        &["-o", "subformat=twoGbMaxExtentFlat"],
    ),
    ("streamOptimized", &["-o", "subformat=streamOptimized"]),
    ("compat6", &["-o", "compat6=on"]),
    ("hwversion", &["-o", "hwversion=10"]),
    ("zeroed_grain", &["-o", "zeroed_grain=on"]),
    ("lsilogic", &["-o", "adapter_type=lsilogic"]),
    (
        "stream_compat6",
        &["-o", "subformat=streamOptimized,compat6=on"],
    ),
];

// ---------------------------------------------------------------------------
// Differential tests against qemu-img

#[test]
fn qemu_img_subformats_match_raw() {
    let Some(_) = qemu_img("qemu_img_subformats_match_raw") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Not a multiple of the 64 KiB grain; the last sectors hold data.
    let raw = dir.path().join("disk.raw");
    make_raw(&raw, (5 << 20) + 7 * 512, 1);
    for (name, opts) in SUBFORMATS {
        let ev = check_subformat(dir.path(), &raw, name, opts, false);
        let m = &ev.info().metadata;
        assert!(m.contains_key("vmdk.create_type"), "{name}: {m:?}");
        assert!(m.contains_key("vmdk.descriptor"), "{name}");
        assert!(m.contains_key("vmdk.cid"), "{name}");
        assert_eq!(m["vmdk.parent_cid"], "ffffffff", "{name}");
        assert!(m["vmdk.extents"].starts_with("1 extent"), "{name}: {m:?}");
        match *name {
            "hwversion" => assert_eq!(m["vmdk.hw_version"], "10"),
            "compat6" => assert_eq!(m["vmdk.hw_version"], "6"),
            "lsilogic" => assert_eq!(m["vmdk.adapter_type"], "lsilogic"),
            "streamOptimized" => {
                assert_eq!(m["vmdk.create_type"], "streamOptimized");
                assert_eq!(m["vmdk.compression"], "deflate");
            }
            "monolithicFlat" | "twoGbMaxExtentFlat" | "twoGbMaxExtentSparse" => {
                assert_eq!(ev.info().segments.len(), 2, "{name}: descriptor and extent");
            }
            _ => {}
        }
    }
}

#[test]
fn qemu_img_odd_sizes_and_empty_disks() {
    let Some(_) = qemu_img("qemu_img_odd_sizes_and_empty_disks") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, size) in [1_000_003u64, 512, 65_536 * 3 + 1, 4096]
        .into_iter()
        .enumerate()
    {
        let raw = dir.path().join(format!("odd{i}.raw"));
        make_raw(&raw, size, 10 + i as u64);
        for (name, opts) in SUBFORMATS.iter().take(5) {
            check_subformat(dir.path(), &raw, &format!("odd{i}-{name}"), opts, false);
        }
    }
    // An all-zero disk: nothing allocated.
    let raw = dir.path().join("zero.raw");
    make_sparse_raw(&raw, 3 << 20, &[], 0);
    for (name, opts) in SUBFORMATS.iter().take(5) {
        check_subformat(dir.path(), &raw, &format!("zero-{name}"), opts, false);
    }
}

#[test]
fn qemu_img_large_sparse_disks() {
    let Some(_) = qemu_img("qemu_img_large_sparse_disks") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("big.raw");
    let size = 256u64 << 20;
    make_sparse_raw(
        &raw,
        size,
        &[
            (0, 70_000),
            (33 << 20, 5),
            ((100 << 20) + 1000, 300_000),
            (size - 65_536 - 100, 200),
            (size - 3000, 3000),
        ],
        3,
    );
    for (name, opts) in [SUBFORMATS[0], SUBFORMATS[2], SUBFORMATS[4]] {
        check_subformat(dir.path(), &raw, &format!("big-{name}"), opts, false);
    }
}

/// Disks above 2 GiB: the twoGbMaxExtent subformats split them in extents.
#[test]
fn qemu_img_two_gib_extents() {
    let Some(_) = qemu_img("qemu_img_two_gib_extents") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("two.raw");
    let size = (2u64 << 30) + (3 << 20) + 512;
    let two = 2u64 << 30;
    make_sparse_raw(
        &raw,
        size,
        &[
            (4096, 10_000),
            (two - 70_000, 140_000),
            (two + (1 << 20), 65_536),
            (size - 1024, 1024),
        ],
        4,
    );
    let ev = check_subformat(dir.path(), &raw, "two-sparse", SUBFORMATS[2].1, true);
    assert!(
        ev.info().metadata["vmdk.extents"].starts_with("2 extents"),
        "{:?}",
        ev.info().metadata
    );
    assert_eq!(ev.info().segments.len(), 3);
    drop(ev);
    // Flat extents: check the room first (qemu-img may write them whole).
    let free = free_bytes(dir.path());
    if free < 10 << 30 {
        println!(
            "qemu_img_two_gib_extents: skipped twoGbMaxExtentFlat: {} GiB free in the temporary folder (10 GiB wanted)",
            free >> 30
        );
        return;
    }
    let ev = check_subformat(dir.path(), &raw, "two-flat", SUBFORMATS[3].1, true);
    assert!(ev.info().metadata["vmdk.extents"].starts_with("2 extents"));
    drop(ev);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains("two-flat") {
            std::fs::remove_file(p).unwrap();
        }
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail", s(dir)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// Child disks (snapshots): unallocated grains read the parent's bytes; the
/// parent is read only when given.
#[test]
fn qemu_img_child_disks() {
    let Some(_) = qemu_img("qemu_img_child_disks") else {
        return;
    };
    if Command::new("qemu-io").arg("--version").output().is_err() {
        println!("qemu_img_child_disks: skipped: qemu-io not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = d.join("base.raw");
    make_raw(&raw, 3 << 20, 20);
    let base = d.join("base.vmdk");
    run(
        "qemu-img",
        &["convert", "-f", "raw", "-O", "vmdk", s(&raw), s(&base)],
    );
    for (name, opts) in [
        ("child", "subformat=monolithicSparse"),
        ("childz", "zeroed_grain=on"),
        ("child2g", "subformat=twoGbMaxExtentSparse"),
    ] {
        let child = d.join(format!("{name}.vmdk"));
        run(
            "qemu-img",
            &[
                "create",
                "-f",
                "vmdk",
                "-o",
                opts,
                "-b",
                "base.vmdk",
                "-F",
                "vmdk",
                s(&child),
            ],
        );
        run(
            "qemu-io",
            &[
                "-f",
                "vmdk",
                "-c",
                "write -P 0x55 65536 70000",
                "-c",
                "write -P 0x66 3000000 1000",
                "-c",
                "write -z 1048576 131072",
                "-c",
                "write -P 0x77 0 512",
                s(&child),
            ],
        );
        // Without its parent: refused, naming it.
        let e = VmdkEvidence::open(std::slice::from_ref(&child)).unwrap_err();
        assert!(
            matches!(&e, EvidenceError::MissingSegment { expected, .. } if expected.contains("base.vmdk")),
            "{name}: {e}"
        );
        assert!(e.to_string().contains("not given as evidence"), "{e}");
        let ev = VmdkEvidence::open(&[child.clone(), base.clone()])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(ev.info().segments.contains(&base), "{name}");
        let q = qemu_raw_md5(&child, &d.join("child.qemu.raw"));
        assert_eq!(media_md5(&ev), q, "{name}");
        // Also through a copy of the parent in another folder, by name.
        let other = d.join("elsewhere");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::copy(&base, other.join("base.vmdk")).unwrap();
        let ev = VmdkEvidence::open(&[other.join("base.vmdk"), child.clone()]).unwrap();
        // paths[0] is the base here: it is the disk read.
        assert_eq!(media_md5(&ev), padded_md5(&raw, ev.size()));
        let ev = VmdkEvidence::open(&[child.clone(), other.join("base.vmdk")]).unwrap();
        assert_eq!(media_md5(&ev), q, "{name} (parent elsewhere)");
    }
    // A parent with another CID: refused.
    let other = d.join("other.vmdk");
    run(
        "qemu-img",
        &["convert", "-f", "raw", "-O", "vmdk", s(&raw), s(&other)],
    );
    let fake = d.join("fake");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::copy(&other, fake.join("base.vmdk")).unwrap();
    let e = VmdkEvidence::open(&[d.join("child.vmdk"), fake.join("base.vmdk")]).unwrap_err();
    assert!(e.to_string().contains("parentCID"), "{e}");
}

// ---------------------------------------------------------------------------
// Corpora

fn corpora() -> Option<PathBuf> {
    let dir = std::env::var_os("TRAWL_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"));
    if dir.is_dir() {
        Some(dir)
    } else {
        trawl_fixtures::skip("vmdk corpora", "../shared/corpora");
        None
    }
}

#[test]
fn corpora_match_qemu_img() {
    let Some(root) = corpora() else { return };
    let Some(_) = qemu_img("corpora_match_qemu_img") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for sub in ["dfvfs-test-data/test_data", "sleuthkit-test-data/test/data"] {
        let Ok(rd) = std::fs::read_dir(root.join(sub)) else {
            println!("corpora_match_qemu_img: skipped: {sub} is absent");
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("vmdk"))
            })
            .collect();
        files.sort();
        for p in files {
            let mut head = [0u8; 512];
            let f = std::fs::File::open(&p).unwrap();
            let n = f.read_at(&mut head, 0).unwrap();
            if !probe(&head[..n]) {
                // An extent of a descriptor, read through the descriptor.
                continue;
            }
            let ev = VmdkEvidence::open(std::slice::from_ref(&p))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let q = qemu_raw_md5(&p, &tmp.path().join("c.raw"));
            assert_eq!(media_md5(&ev), q, "{}", p.display());
            println!(
                "{}: {} bytes, MD5 {q} (= qemu-img), {:?}",
                p.display(),
                ev.size(),
                ev.info().metadata.get("vmdk.create_type")
            );
            seen += 1;
        }
    }
    println!("corpora_match_qemu_img: {seen} VMDK images checked");
}

// ---------------------------------------------------------------------------
// A stream-optimized writer (header in the footer, as VMware writes them)

const GRAIN: usize = 65_536;

fn marker(val: u64, size: u32, kind: u32) -> [u8; 512] {
    let mut m = [0u8; 512];
    m[..8].copy_from_slice(&val.to_le_bytes());
    m[8..12].copy_from_slice(&size.to_le_bytes());
    m[12..16].copy_from_slice(&kind.to_le_bytes());
    m
}

fn header(capacity: u64, gd: u64, flags: u32, compress: u16) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&3u32.to_le_bytes());
    h[8..12].copy_from_slice(&flags.to_le_bytes());
    h[12..20].copy_from_slice(&capacity.to_le_bytes());
    h[20..28].copy_from_slice(&128u64.to_le_bytes());
    h[28..36].copy_from_slice(&1u64.to_le_bytes());
    h[36..44].copy_from_slice(&1u64.to_le_bytes());
    h[44..48].copy_from_slice(&512u32.to_le_bytes());
    h[56..64].copy_from_slice(&gd.to_le_bytes());
    h[64..72].copy_from_slice(&128u64.to_le_bytes());
    h[73..77].copy_from_slice(b"\n \r\n");
    h[77..79].copy_from_slice(&compress.to_le_bytes());
    h
}

fn pad(v: &mut Vec<u8>) {
    v.resize(v.len().div_ceil(512) * 512, 0);
}

/// A stream-optimized extent of `data` (a multiple of 512 bytes) with the
/// grain directory at the end; all-zero grains are left out.
fn stream_optimized(data: &[u8]) -> Vec<u8> {
    let capacity = (data.len() / 512) as u64;
    let flags = 1 | (1 << 16) | (1 << 17);
    let mut out = Vec::new();
    out.extend_from_slice(&header(capacity, u64::MAX, flags, 1));
    let desc = b"# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\nRW 0 SPARSE \"x.vmdk\"\nddb.adapterType = \"lsilogic\"\n";
    let mut d = desc.to_vec();
    d.resize(512, 0);
    out.extend_from_slice(&d);
    out.resize(128 * 512, 0);
    let grains = data.len().div_ceil(GRAIN);
    let mut gtes = vec![0u32; grains.div_ceil(512) * 512];
    for (g, chunk) in data.chunks(GRAIN).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(chunk).unwrap();
        let c = z.finish().unwrap();
        gtes[g] = (out.len() / 512) as u32;
        out.extend_from_slice(&((g * 128) as u64).to_le_bytes());
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
        out.extend_from_slice(&c);
        pad(&mut out);
    }
    let mut gd = Vec::new();
    for t in gtes.chunks(512) {
        out.extend_from_slice(&marker(4, 0, 1));
        gd.push((out.len() / 512) as u32);
        for e in t {
            out.extend_from_slice(&e.to_le_bytes());
        }
    }
    let gd_sectors = (gd.len() * 4).div_ceil(512) as u64;
    out.extend_from_slice(&marker(gd_sectors, 0, 2));
    let gd_at = (out.len() / 512) as u64;
    for e in &gd {
        out.extend_from_slice(&e.to_le_bytes());
    }
    pad(&mut out);
    out.extend_from_slice(&marker(1, 0, 3));
    out.extend_from_slice(&header(capacity, gd_at, flags, 1));
    out.extend_from_slice(&marker(0, 0, 0));
    out
}

fn sample_data(size: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    let mut data = vec![0u8; size];
    let mut pos = 0;
    while pos < size {
        let run = (1 + r.below(200_000) as usize).min(size - pos);
        if r.below(3) != 0 {
            r.fill(&mut data[pos..pos + run]);
            if r.below(2) == 0 {
                for x in data[pos..pos + run].iter_mut().step_by(2) {
                    *x = 0;
                }
            }
        }
        pos += run;
    }
    let n = data.len();
    data[n - 5..].copy_from_slice(b"last!");
    data
}

#[test]
fn stream_optimized_with_footer() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_data(GRAIN * 40 + 512 * 3, 5);
    let img = dir.path().join("so.vmdk");
    std::fs::write(&img, stream_optimized(&data)).unwrap();
    let ev = VmdkEvidence::open(std::slice::from_ref(&img)).unwrap();
    assert_eq!(ev.size(), data.len() as u64);
    let m = &ev.info().metadata;
    assert_eq!(m["vmdk.create_type"], "streamOptimized");
    assert_eq!(m["vmdk.adapter_type"], "lsilogic");
    assert_eq!(m["vmdk.cid"], "12345678");
    let mut all = vec![0u8; data.len()];
    ev.read_exact_at(0, &mut all).unwrap();
    assert!(all == data);
    let raw = dir.path().join("so.raw");
    std::fs::write(&raw, &data).unwrap();
    random_reads_check(&ev, &raw, 9, false);
    if qemu_img("stream_optimized_with_footer").is_some() {
        assert_eq!(
            qemu_raw_md5(&img, &dir.path().join("q.raw")),
            file_md5(&raw)
        );
    }
    // A grain marker naming another grain is refused.
    let mut bytes = stream_optimized(&data);
    let first = 128 * 512;
    bytes[first] ^= 0x80; // LBA of grain 0's marker
    std::fs::write(&img, &bytes).unwrap();
    let ev = VmdkEvidence::open(std::slice::from_ref(&img)).unwrap();
    let e = ev.read_exact_at(0, &mut all[..512]).unwrap_err();
    assert!(e.to_string().contains("grain marker"), "{e}");
    // A damaged zlib stream is an error naming the grain.
    let mut bytes = stream_optimized(&data);
    for b in &mut bytes[first + 12 + 2..first + 12 + 40] {
        *b = 0xff;
    }
    std::fs::write(&img, &bytes).unwrap();
    let ev = VmdkEvidence::open(std::slice::from_ref(&img)).unwrap();
    let e = ev.read_exact_at(0, &mut all[..512]).unwrap_err();
    assert!(e.to_string().contains("compressed grain 0"), "{e}");
    // Footer lost (file truncated): refused.
    let bytes = stream_optimized(&data);
    std::fs::write(&img, &bytes[..bytes.len() - 512]).unwrap();
    let e = VmdkEvidence::open(std::slice::from_ref(&img)).unwrap_err();
    assert!(e.to_string().contains("footer"), "{e}");
}

// ---------------------------------------------------------------------------
// Hand-written descriptors

#[test]
fn descriptor_extents_zero_rdonly_noaccess_and_confinement() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut r = Rng::new(77);
    let mut a = vec![0u8; 10 * 512];
    r.fill(&mut a);
    std::fs::write(d.join("a.bin"), &a).unwrap();
    let desc = "\u{feff}# Disk DescriptorFile\r\nversion=1\r\nCID=fffffffe\r\nparentCID=ffffffff\r\ncreateType=\"monolithicFlat\"\r\n\
                RW 4 FLAT \"a.bin\" 2\r\nRDONLY 3 ZERO\r\nRDONLY 2 VMFS \"a.bin\"\r\nRW 1 FLAT \"sub dir/b c.bin\"\r\n";
    std::fs::create_dir_all(d.join("sub dir")).unwrap();
    std::fs::write(d.join("sub dir/b c.bin"), [9u8; 512]).unwrap();
    std::fs::write(d.join("x.vmdk"), desc).unwrap();
    let ev = VmdkEvidence::open(&[d.join("x.vmdk")]).unwrap();
    assert_eq!(ev.size(), 10 * 512);
    let mut got = vec![0u8; 10 * 512];
    ev.read_exact_at(0, &mut got).unwrap();
    let mut want = a[1024..1024 + 2048].to_vec();
    want.extend_from_slice(&[0u8; 1536]);
    want.extend_from_slice(&a[..1024]);
    want.extend_from_slice(&[9u8; 512]);
    assert!(got == want);
    assert_eq!(ev.info().segments.len(), 4);
    assert!(ev.info().metadata["vmdk.extents"].starts_with("4 extents: RW 4 FLAT \"a.bin\" 2"));

    // NOACCESS: reading it names the extent; the rest reads.
    std::fs::write(
        d.join("n.vmdk"),
        "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 2 FLAT \"a.bin\" 0\nNOACCESS 2 FLAT \"nothere.bin\" 0\n",
    )
    .unwrap();
    let ev = VmdkEvidence::open(&[d.join("n.vmdk")]).unwrap();
    ev.read_exact_at(0, &mut got[..1024]).unwrap();
    let e = ev.read_exact_at(512, &mut got[..1024]).unwrap_err();
    assert!(e.to_string().contains("NOACCESS"), "{e}");

    // Names leaving the descriptor's folder are refused.
    for bad in [
        "../a.bin",
        "/etc/passwd",
        "sub dir/../../a.bin",
        "..\\a.bin",
    ] {
        std::fs::write(
            d.join("bad.vmdk"),
            format!("# Disk DescriptorFile\nRW 2 FLAT \"{bad}\" 0\n"),
        )
        .unwrap();
        let e = VmdkEvidence::open(&[d.join("bad.vmdk")]).unwrap_err();
        assert!(
            matches!(e, EvidenceError::OutsideRoots { .. }),
            "{bad}: {e}"
        );
    }
    // A missing extent is named.
    std::fs::write(
        d.join("m.vmdk"),
        "# Disk DescriptorFile\nRW 2 FLAT \"gone.bin\" 0\n",
    )
    .unwrap();
    let e = VmdkEvidence::open(&[d.join("m.vmdk")]).unwrap_err();
    assert!(
        matches!(&e, EvidenceError::MissingSegment { expected, .. } if expected.ends_with("gone.bin")),
        "{e}"
    );
    // ... unless given as evidence from elsewhere.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("gone.bin"), &a[..1024]).unwrap();
    let ev = VmdkEvidence::open(&[d.join("m.vmdk"), other.path().join("gone.bin")]).unwrap();
    ev.read_exact_at(0, &mut got[..1024]).unwrap();
    assert!(got[..1024] == a[..1024]);
    // A flat extent shorter than the descriptor says: truncation error.
    std::fs::write(
        d.join("t.vmdk"),
        "# Disk DescriptorFile\nRW 20 FLAT \"a.bin\" 0\n",
    )
    .unwrap();
    let ev = VmdkEvidence::open(&[d.join("t.vmdk")]).unwrap();
    let e = ev.read_exact_at(9 * 512, &mut got[..1024]).unwrap_err();
    assert!(matches!(e, EvidenceError::Truncated { .. }), "{e}");
    // A flat offset at the end of the 64-bit range: an error, not a wrap.
    std::fs::write(
        d.join("w.vmdk"),
        "# Disk DescriptorFile\nRW 4 FLAT \"a.bin\" 36028797018963967\n",
    )
    .unwrap();
    let ev = VmdkEvidence::open(&[d.join("w.vmdk")]).unwrap();
    assert!(ev.read_exact_at(0, &mut got[..2048]).is_err());
    // Malformed extent lines and non-VMDK text.
    for (text, what) in [
        (
            "# Disk DescriptorFile\nRW x FLAT \"a.bin\" 0\n",
            "sector count",
        ),
        ("# Disk DescriptorFile\nRW 2 FLAT a.bin 0\n", "quoted"),
        ("# Disk DescriptorFile\nRW 2 FLAT \"a.bin\n", "quote"),
        (
            "# Disk DescriptorFile\nRW 2 WEIRD \"a.bin\"\n",
            "unknown extent type",
        ),
        ("# Disk DescriptorFile\nversion=1\n", "no extents"),
        ("hello world\n", "not a VMDK"),
    ] {
        std::fs::write(d.join("e.vmdk"), text).unwrap();
        let e = VmdkEvidence::open(&[d.join("e.vmdk")]).unwrap_err();
        assert!(e.to_string().contains(what), "{text:?}: {e}");
    }
    // Unsupported extent kinds are refused by name.
    std::fs::write(
        d.join("u.vmdk"),
        "# Disk DescriptorFile\nRW 2 VMFSSPARSE \"a.bin\"\n",
    )
    .unwrap();
    let e = VmdkEvidence::open(&[d.join("u.vmdk")]).unwrap_err();
    assert!(matches!(e, EvidenceError::Unsupported { .. }), "{e}");
    // Mutual parents end (each path is used once).
    for (me, other) in [("p.vmdk", "q.vmdk"), ("q.vmdk", "p.vmdk")] {
        std::fs::write(
            d.join(me),
            format!("# Disk DescriptorFile\nCID=1\nparentCID=1\nparentFileNameHint=\"{other}\"\nRW 2 FLAT \"a.bin\" 0\n"),
        )
        .unwrap();
    }
    let e = VmdkEvidence::open(&[d.join("p.vmdk"), d.join("q.vmdk")]).unwrap_err();
    assert!(e.to_string().contains("not given as evidence"), "{e}");
}

#[test]
fn probe_recognises_heads() {
    assert!(probe(b"KDMV\x01\0\0\0"));
    assert!(probe(b"# Disk DescriptorFile\nversion=1"));
    assert!(probe(b"\xef\xbb\xbf  \r\n# disk descriptorfile\n"));
    assert!(!probe(b"# Disk Descriptor"));
    assert!(!probe(b"QFI\xfb"));
    assert!(!probe(b""));
}

// ---------------------------------------------------------------------------
// Hostile input

/// Runs `f` on a thread; fails when it takes more than `secs` seconds.
fn with_deadline<T: Send + 'static, F: FnOnce() -> T + Send + 'static>(
    what: String,
    secs: u64,
    f: F,
) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => {
            h.join().unwrap();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("the case sent no result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: took more than {secs} s"),
    }
}

/// Opens and reads (all of a small disk, samples of a large one); only
/// panics and hangs are failures.
fn open_and_read(paths: &[PathBuf]) -> (bool, bool) {
    let Ok(ev) = VmdkEvidence::open(paths) else {
        return (false, false);
    };
    let mut read_err = false;
    let size = ev.size();
    let mut buf = vec![0u8; 1 << 20];
    let mut ranges = Vec::new();
    if size <= 32 << 20 {
        ranges.push((0, size));
    } else {
        ranges.push((0, 4 << 20));
        ranges.push((size - (1 << 20), size));
        for i in 1..16u64 {
            let at = size / 16 * i;
            ranges.push((at, at + 70_000));
        }
    }
    for (mut a, b) in ranges {
        while a < b {
            let n = (b - a).min(buf.len() as u64) as usize;
            match ev.read_at(a, &mut buf[..n]) {
                Ok(0) => break,
                Ok(k) => a += k as u64,
                Err(_) => {
                    read_err = true;
                    break;
                }
            }
        }
        // partial reads through the grain cache
        let _ = ev.read_at(a.saturating_sub(1000), &mut buf[..333]);
    }
    (true, read_err)
}

/// A named file's bytes.
type NamedBytes = (String, Vec<u8>);

/// Valid small containers to damage: (file name, bytes, extra files).
fn fuzz_bases(dir: &Path) -> Vec<(String, Vec<u8>, Vec<NamedBytes>)> {
    let mut bases = Vec::new();
    let data = sample_data(GRAIN * 12 + 1024, 11);
    bases.push(("so.vmdk".to_string(), stream_optimized(&data), vec![]));
    if Command::new("qemu-img").arg("--version").output().is_ok() {
        let raw = dir.join("f.raw");
        std::fs::write(&raw, &data).unwrap();
        for (name, opt) in [
            ("ms", "subformat=monolithicSparse"),
            ("so2", "subformat=streamOptimized"),
            ("zg", "zeroed_grain=on"),
            ("tg", "subformat=twoGbMaxExtentSparse"),
        ] {
            let img = dir.join(format!("{name}.vmdk"));
            run(
                "qemu-img",
                &[
                    "convert",
                    "-f",
                    "raw",
                    "-O",
                    "vmdk",
                    "-o",
                    opt,
                    s(&raw),
                    s(&img),
                ],
            );
            let mut extra = Vec::new();
            if name == "tg" {
                let ext = format!("{name}-s001.vmdk");
                extra.push((ext.clone(), std::fs::read(dir.join(&ext)).unwrap()));
            }
            bases.push((format!("{name}.vmdk"), std::fs::read(&img).unwrap(), extra));
        }
    }
    bases
}

fn mutate(r: &mut Rng, b: &mut Vec<u8>) {
    let len = b.len() as u64;
    let meta = len.min(128 * 512 + 4096); // header, descriptor, tables
    for _ in 0..1 + r.below(6) {
        match r.below(7) {
            0 | 1 => {
                let i = r.below(meta) as usize;
                b[i] ^= 1 << r.below(8);
            }
            2 => {
                let i = r.below(meta) as usize;
                b[i] = r.next() as u8;
            }
            3 => {
                // an aligned little-endian word in the header or tables
                let i = (r.below(meta / 4) * 4) as usize;
                let v =
                    [0u32, 1, 2, 0xffff_ffff, 0x8000_0000, r.next() as u32][r.below(6) as usize];
                if i + 4 <= b.len() {
                    b[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            4 => {
                let i = r.below(len) as usize;
                b[i] ^= 1 << r.below(8);
            }
            5 => {
                // the footer / tail
                let i = (len - 1 - r.below(len.min(1536))) as usize;
                b[i] = r.next() as u8;
            }
            _ => {
                if r.below(3) == 0 {
                    let n = r.below(len) as usize;
                    b.truncate(n);
                    return;
                }
            }
        }
    }
}

/// Runs mutated cases; returns (cases, opened, read errors).
fn fuzz_for(cases: Option<u64>, secs: Option<u64>, seed: u64) -> (u64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let bases = fuzz_bases(dir.path());
    let mut r = Rng::new(seed);
    let start = Instant::now();
    let (mut n, mut opened, mut read_errs) = (0u64, 0u64, 0u64);
    loop {
        if cases.is_some_and(|c| n >= c) || secs.is_some_and(|s| start.elapsed().as_secs() >= s) {
            break;
        }
        let (name, bytes, extra) = &bases[(n % bases.len() as u64) as usize];
        let case = dir.path().join(format!("case{}", n % 4));
        std::fs::create_dir_all(&case).unwrap();
        let mut b = bytes.clone();
        let mutate_extra = !extra.is_empty() && r.below(2) == 0;
        if !mutate_extra {
            mutate(&mut r, &mut b);
        }
        std::fs::write(case.join(name), &b).unwrap();
        for (en, eb) in extra {
            let mut eb = eb.clone();
            if mutate_extra {
                mutate(&mut r, &mut eb);
            }
            std::fs::write(case.join(en), &eb).unwrap();
        }
        let paths = vec![case.join(name)];
        let (o, re) = with_deadline(format!("case {n} ({name})"), 2, move || {
            open_and_read(&paths)
        });
        opened += u64::from(o);
        read_errs += u64::from(re);
        n += 1;
    }
    (n, opened, read_errs)
}

#[test]
fn hostile_mutations_never_panic_or_hang() {
    let secs = std::env::var("TRAWL_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let (n, opened, read_errs) = match secs {
        Some(s) => fuzz_for(None, Some(s), 0xC0FFEE ^ s),
        None => fuzz_for(Some(600), None, 42),
    };
    println!(
        "hostile_mutations_never_panic_or_hang: {n} cases ({opened} opened, {read_errs} of them with a read error)"
    );
    assert!(
        opened > 0 && opened < n,
        "the mutations should both pass and fail"
    );
}

/// Patches a monolithicSparse file made by the writer below.
fn sparse_image(data: &[u8]) -> Vec<u8> {
    // Header, GD at sector 1 (one entry), GT at sector 2, grains from 8.
    let capacity = (data.len() / 512) as u64;
    let mut out = header(capacity, 1, 1, 0).to_vec();
    out[28..44].fill(0); // no embedded descriptor
    let grains = data.len().div_ceil(GRAIN);
    assert!(grains <= 512);
    out.extend_from_slice(&2u32.to_le_bytes());
    out.resize(2 * 512, 0);
    let mut gt = vec![0u32; 512];
    let mut body = Vec::new();
    for (g, chunk) in data.chunks(GRAIN).enumerate() {
        gt[g] = 8 + (body.len() / 512) as u32;
        body.extend_from_slice(chunk);
        pad(&mut body);
    }
    for e in gt {
        out.extend_from_slice(&e.to_le_bytes());
    }
    out.resize(8 * 512, 0);
    out.extend_from_slice(&body);
    out
}

#[test]
fn hostile_specific_cases() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("h.vmdk");
    let data = sample_data(GRAIN * 3, 12);
    let good = sparse_image(&data);
    std::fs::write(&img, &good).unwrap();
    let ev = VmdkEvidence::open(std::slice::from_ref(&img)).unwrap();
    let mut all = vec![0u8; data.len()];
    ev.read_exact_at(0, &mut all).unwrap();
    assert!(all == data);
    let open = |b: &[u8]| {
        std::fs::write(&img, b).unwrap();
        VmdkEvidence::open(std::slice::from_ref(&img))
    };
    // A grain-table entry past the end of the file: error at read, naming
    // the entry.
    let mut b = good.clone();
    b[1024 + 4..1024 + 8].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let ev = open(&b).unwrap();
    let e = ev
        .read_exact_at(GRAIN as u64, &mut all[..4096])
        .unwrap_err();
    assert!(
        matches!(&e, EvidenceError::Corrupt { offset, .. } if *offset == 1024 + 4),
        "{e}"
    );
    assert!(e.to_string().contains("grain 1"), "{e}");
    // ...the other grains still read.
    ev.read_exact_at(0, &mut all[..GRAIN]).unwrap();
    assert!(all[..GRAIN] == data[..GRAIN]);
    // A grain-directory entry past the end: refused at open.
    let mut b = good.clone();
    b[512..516].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let e = open(&b).unwrap_err();
    assert!(e.to_string().contains("grain directory entry 0"), "{e}");
    // A huge capacity: its directory does not fit the file; nothing huge
    // is allocated.
    let mut b = good.clone();
    b[12..20].copy_from_slice(&(u64::MAX / 512).to_le_bytes());
    let t = Instant::now();
    let e = open(&b).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(
        e.to_string().contains("grain-directory entries")
            || e.to_string().contains("grain directory"),
        "{e}"
    );
    let mut b = good.clone();
    b[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(open(&b).unwrap_err().to_string().contains("overflows"));
    // Capacity of 2^40 sectors with a large grain: 512 TiB of zeros is
    // opened (one directory entry) and reads as zeros quickly.
    let mut b = good.clone();
    b[12..20].copy_from_slice(&(1u64 << 40).to_le_bytes());
    b[20..28].copy_from_slice(&(1u64 << 21).to_le_bytes());
    let e = open(&b);
    assert!(e.is_err() || e.unwrap().size() == 1 << 49);
    // Grain size zero, too many GTEs, unknown version / compression.
    let bad: [(usize, Vec<u8>); 4] = [
        (20, 0u64.to_le_bytes().to_vec()),
        (44, 513u32.to_le_bytes().to_vec()),
        (4, 4u32.to_le_bytes().to_vec()),
        (77, 2u16.to_le_bytes().to_vec()),
    ];
    for (at, v) in bad {
        let mut b = good.clone();
        b[at..at + v.len()].copy_from_slice(&v);
        let e = open(&b).unwrap_err();
        assert!(matches!(e, EvidenceError::Corrupt { .. }), "{at}: {e}");
    }
    // Newline check damaged (text-mode transfer).
    let mut b = good.clone();
    b[75] = b'\n';
    assert!(open(&b).unwrap_err().to_string().contains("text mode"));
    // Truncations at every sector boundary of the metadata.
    for cut in (0..8 * 512).step_by(97) {
        let _ = open(&good[..cut]);
    }
    let ev = open(&good[..good.len() - 100]).unwrap();
    let e = ev.read_exact_at(0, &mut all).unwrap_err();
    assert!(e.to_string().contains("passes the end of the file"), "{e}");
}
