//! QCOW2 / QCOW reader tests: differential against `qemu-img convert -O raw`
//! over every subformat qemu-img writes (v2, v3, compressed, 512-byte and
//! 2 MiB clusters, extended L2 entries with subclusters, zero clusters,
//! backing chains, internal snapshots, QCOW v1), the reference corpora,
//! refusals (encryption, external data file, zstd, missing or cycling
//! backing files) and hostile input (bit flips, overwritten bytes,
//! truncation) under a deadline and an allocation bound.

#![allow(unsafe_code)] // the allocation-tracking global allocator below

use md5::{Digest, Md5};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use trawl_evidence::vdisk::qcow2::Qcow2Evidence;
use trawl_evidence::{Evidence, EvidenceError, Format};

/// Tracks the largest single allocation made on threads that ask for it,
/// so the hostile tests can assert that damaged images never make the
/// reader allocate absurd amounts (other tests running at the same time
/// are not counted).
struct TrackingAlloc;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

/// Runs `f` with this thread's allocations tracked; returns its result and
/// the largest single allocation it made.
fn tracked<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let r = f();
    TRACKING.with(|t| t.set(false));
    (r, LARGEST.with(Cell::get))
}

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: TrackingAlloc = TrackingAlloc;

// ---------------------------------------------------------------------------
// Helpers

/// Whether qemu-img (and qemu-io) can be run; prints the skip line (or
/// panics under CI) when not.
fn have_qemu(test: &str) -> bool {
    let ok = Command::new("qemu-img").arg("--version").output().is_ok();
    if !ok {
        trawl_fixtures::skip(test, "qemu-img not found");
    }
    ok
}

fn have_qemu_io() -> bool {
    Command::new("qemu-io").arg("--version").output().is_ok()
}

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn qemu_img(args: &[&str]) -> String {
    run("qemu-img", args)
}

/// Runs qemu-io commands on a qcow2 image.
fn qemu_io(img: &Path, cmds: &[&str]) {
    let mut args = vec!["-f", "qcow2"];
    for c in cmds {
        args.push("-c");
        args.push(c);
    }
    let p = img.to_str().unwrap();
    args.push(p);
    run("qemu-io", &args);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// What qemu-img reads from `img` (its backing chain included).
fn reference(img: &Path, fmt: &str) -> Vec<u8> {
    let out = img.with_extension("ref.raw");
    qemu_img(&["convert", "-f", fmt, "-O", "raw", s(img), s(&out)]);
    let v = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    v
}

/// A deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Media of `len` bytes: runs of zeros, random bytes, compressible text,
/// and mostly-zero stretches with a few bytes set (partially written
/// clusters); the last bytes are data.
fn media(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed);
    let mut v = vec![0u8; len];
    let mut pos = 0;
    while pos < len {
        let run = (r.below(180_000) as usize + 1).min(len - pos);
        let area = &mut v[pos..pos + run];
        match r.below(4) {
            0 => {}
            1 => area.iter_mut().for_each(|b| *b = r.next() as u8),
            2 => {
                let mut line = 0u64;
                let mut i = 0;
                while i < area.len() {
                    let text = format!("trawl qcow2 line {line} seed {seed}\n");
                    let n = text.len().min(area.len() - i);
                    area[i..i + n].copy_from_slice(&text.as_bytes()[..n]);
                    i += n;
                    line += 1;
                }
            }
            _ => {
                for _ in 0..1 + r.below(8) {
                    let at = r.below(area.len() as u64) as usize;
                    area[at] = r.next() as u8 | 1;
                }
            }
        }
        pos += run;
    }
    let tail = len.saturating_sub(100);
    for b in &mut v[tail..] {
        *b = r.next() as u8 | 1;
    }
    v
}

fn read_all_with(ev: &dyn Evidence, block: usize) -> Result<Vec<u8>, EvidenceError> {
    let mut out = vec![0u8; ev.size() as usize];
    let mut pos = 0;
    while pos < out.len() {
        let end = (pos + block).min(out.len());
        let n = ev.read_at(pos as u64, &mut out[pos..end])?;
        assert!(n > 0, "short read at {pos}");
        pos += n;
    }
    Ok(out)
}

/// Asserts that `ev` presents exactly `raw`: one pass, random-sized
/// sequential reads, and random reads from four threads.
fn assert_same(ev: &Qcow2Evidence, raw: &[u8], label: &str) {
    assert_eq!(ev.size(), raw.len() as u64, "{label}: virtual size");
    assert_eq!(ev.info().format, Format::Qcow2);
    let want = md5_hex(raw);
    let one = read_all_with(ev, raw.len().max(1)).unwrap();
    assert_eq!(md5_hex(&one), want, "{label}: one-pass read");
    std::thread::scope(|sc| {
        for t in 0..4u64 {
            let want = &want;
            sc.spawn(move || {
                let mut r = Rng(0x5eed ^ t.wrapping_mul(7919) ^ raw.len() as u64);
                // Sequential reads of random sizes, hashed.
                let mut h = Md5::new();
                let mut pos = 0u64;
                let mut buf = vec![0u8; 1 << 20];
                while pos < raw.len() as u64 {
                    let cap = if r.below(3) == 0 { 4096 } else { 1 << 20 };
                    let want_len = 1 + r.below(cap);
                    let n = ev.read_at(pos, &mut buf[..want_len as usize]).unwrap();
                    assert!(n > 0, "{label}: short read at {pos}");
                    h.update(&buf[..n]);
                    pos += n as u64;
                }
                assert_eq!(&hex::encode(h.finalize()), want, "{label}: chunked read");
                // Random reads, compared with the raw bytes.
                for _ in 0..200 {
                    let len = 1 + r.below(300_000) as usize;
                    let off = r.below(raw.len() as u64 + 1000);
                    let mut b = vec![0u8; len];
                    let n = ev.read_at(off, &mut b).unwrap();
                    let expect = if off >= raw.len() as u64 {
                        0
                    } else {
                        len.min(raw.len() - off as usize)
                    };
                    assert_eq!(n, expect, "{label}: read of {len} at {off}");
                    if n > 0 {
                        assert!(
                            b[..n] == raw[off as usize..off as usize + n],
                            "{label}: bytes differ for the read of {len} at {off}"
                        );
                    }
                }
            });
        }
    });
}

/// Converts `raw_path` with `qemu-img convert -O fmt opts`, opens the result
/// and checks it against the raw bytes and against qemu-img's own reading.
fn convert_and_check(
    dir: &Path,
    raw_path: &Path,
    raw: &[u8],
    name: &str,
    fmt: &str,
    opts: &[&str],
) -> PathBuf {
    let img = dir.join(name);
    let mut args = vec!["convert", "-f", "raw", "-O", fmt];
    args.extend_from_slice(opts);
    args.push(s(raw_path));
    args.push(s(&img));
    qemu_img(&args);
    let ev =
        Qcow2Evidence::open(std::slice::from_ref(&img)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_same(&ev, raw, name);
    let r = reference(&img, fmt);
    assert_eq!(
        md5_hex(&r),
        md5_hex(raw),
        "{name}: qemu-img reads the raw back"
    );
    img
}

/// A QCOW v1 image of `raw` whose clusters are written compressed one by
/// one with qemu-io (qemu-img cannot convert to compressed QCOW v1):
/// clusters that do not compress are stored plain, zero clusters left
/// unallocated.
fn qcow1_compressed(dir: &Path, raw: &[u8], name: &str) -> PathBuf {
    let img = dir.join(name);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow",
        s(&img),
        &raw.len().to_string(),
    ]);
    let mut args: Vec<String> = vec!["-f".into(), "qcow".into()];
    for (i, c) in raw.chunks(4096).enumerate() {
        if c.iter().all(|&b| b == 0) {
            continue;
        }
        let piece = dir.join(format!("{name}.{i}.piece"));
        std::fs::write(&piece, c).unwrap();
        args.push("-c".into());
        args.push(format!(
            "write -q -c -s {} {} {}",
            s(&piece),
            i * 4096,
            c.len()
        ));
    }
    args.push(s(&img).into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("qemu-io", &args);
    img
}

fn meta<'a>(ev: &'a Qcow2Evidence, key: &str) -> Option<&'a str> {
    ev.info().metadata.get(key).map(String::as_str)
}

// ---------------------------------------------------------------------------
// Differential tests against qemu-img

#[test]
fn subformats_match_qemu_img() {
    if !have_qemu("subformats_match_qemu_img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 3 MiB + 7 sectors: not a multiple of any cluster size.
    let raw = media((3 << 20) + 7 * 512, 1);
    let raw_path = dir.path().join("media.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        ("v2.qcow2", "qcow2", &["-o", "compat=0.10"]),
        ("v3.qcow2", "qcow2", &["-o", "compat=1.1"]),
        ("v3c.qcow2", "qcow2", &["-c", "-o", "compat=1.1"]),
        ("v2c.qcow2", "qcow2", &["-c", "-o", "compat=0.10"]),
        ("c512.qcow2", "qcow2", &["-o", "cluster_size=512"]),
        ("c512c.qcow2", "qcow2", &["-c", "-o", "cluster_size=512"]),
        ("c2m.qcow2", "qcow2", &["-o", "cluster_size=2M"]),
        ("c2mc.qcow2", "qcow2", &["-c", "-o", "cluster_size=2M"]),
        (
            "c4k.qcow2",
            "qcow2",
            &["-o", "cluster_size=4096,compat=0.10"],
        ),
        ("ext.qcow2", "qcow2", &["-o", "extended_l2=on"]),
        (
            "extc.qcow2",
            "qcow2",
            &["-c", "-o", "extended_l2=on,cluster_size=16k"],
        ),
        (
            "ext2m.qcow2",
            "qcow2",
            &["-o", "extended_l2=on,cluster_size=2M"],
        ),
        (
            "r64.qcow2",
            "qcow2",
            &["-o", "refcount_bits=64,lazy_refcounts=on"],
        ),
        ("prealloc.qcow2", "qcow2", &["-o", "preallocation=metadata"]),
        ("v1.qcow", "qcow", &[]),
    ];
    for (name, fmt, opts) in cases {
        let img = convert_and_check(dir.path(), &raw_path, &raw, name, fmt, opts);
        let ev = Qcow2Evidence::open(&[img]).unwrap();
        let version = meta(&ev, "qcow2.version").unwrap();
        match *name {
            n if n.starts_with("v2") || n == "c4k.qcow2" => assert_eq!(version, "2", "{n}"),
            n if n.starts_with("v1") => assert_eq!(version, "1", "{n}"),
            n => assert_eq!(version, "3", "{n}"),
        }
        if name.starts_with("ext") {
            assert_eq!(meta(&ev, "qcow2.extended_l2"), Some("true"));
        }
        assert_eq!(ev.info().bytes_per_sector, 512);
        assert_eq!(ev.info().segments.len(), 1);
    }
}

#[test]
fn qcow1_compressed_matches_qemu() {
    if !have_qemu("qcow1_compressed_matches_qemu") || !have_qemu_io() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = media((512 << 10) + 1536, 21);
    let img = qcow1_compressed(dir.path(), &raw, "v1c.qcow");
    let map = qemu_img(&["map", "-f", "qcow", "--output=json", s(&img)]);
    assert!(map.contains("\"compressed\": true"), "{map}");
    let ev = Qcow2Evidence::open(std::slice::from_ref(&img)).unwrap();
    assert_same(&ev, &raw, "v1c");
    assert_eq!(md5_hex(&reference(&img, "qcow")), md5_hex(&raw));
}

#[test]
fn compressed_images_hold_compressed_clusters() {
    // The -c cases above only test compression if qemu-img did compress.
    if !have_qemu("compressed_images_hold_compressed_clusters") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = media(1 << 20, 2);
    let raw_path = dir.path().join("media.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    let img = convert_and_check(dir.path(), &raw_path, &raw, "c.qcow2", "qcow2", &["-c"]);
    let map = qemu_img(&["map", "--output=json", s(&img)]);
    assert!(map.contains("\"compressed\": true"), "{map}");
}

#[test]
fn sizes_match_qemu_img() {
    if !have_qemu("sizes_match_qemu_img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, len) in [0usize, 512, 4096 + 512, 65536, 65536 * 3 + 1536, 2 << 20]
        .into_iter()
        .enumerate()
    {
        let raw = media(len, 10 + i as u64);
        let raw_path = dir.path().join(format!("m{i}.raw"));
        std::fs::write(&raw_path, &raw).unwrap();
        convert_and_check(
            dir.path(),
            &raw_path,
            &raw,
            &format!("m{i}.qcow2"),
            "qcow2",
            &[],
        );
        convert_and_check(
            dir.path(),
            &raw_path,
            &raw,
            &format!("m{i}c.qcow2"),
            "qcow2",
            &["-c", "-o", "cluster_size=4k"],
        );
    }
}

#[test]
fn header_size_not_a_sector_multiple_reads_like_qemu() {
    if !have_qemu("header_size_not_a_sector_multiple_reads_like_qemu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = media(1 << 20, 3);
    let raw_path = dir.path().join("m.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    let img = dir.path().join("odd.qcow2");
    qemu_img(&["convert", "-O", "qcow2", s(&raw_path), s(&img)]);
    let mut b = std::fs::read(&img).unwrap();
    b[24..32].copy_from_slice(&((1u64 << 20) - 100).to_be_bytes());
    std::fs::write(&img, &b).unwrap();
    let ev = Qcow2Evidence::open(std::slice::from_ref(&img)).unwrap();
    let r = reference(&img, "qcow2");
    assert_eq!(ev.size(), r.len() as u64);
    assert_eq!(md5_hex(&read_all_with(&ev, 1 << 20).unwrap()), md5_hex(&r));
}

#[test]
fn large_sparse_image() {
    if !have_qemu("large_sparse_image") || !have_qemu_io() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("sparse.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", s(&img), "256M"]);
    qemu_io(
        &img,
        &[
            "write -P 0x11 0 4k",
            "write -P 0x22 100M 1M",
            "write -P 0x33 255M 1023k",
            "write -P 0x44 262143k 512",
            "write -z 100M 64k",
        ],
    );
    let ev = Qcow2Evidence::open(std::slice::from_ref(&img)).unwrap();
    let r = reference(&img, "qcow2");
    assert_same(&ev, &r, "sparse");
}

#[test]
fn zero_clusters_and_subclusters_match_qemu() {
    if !have_qemu("zero_clusters_and_subclusters_match_qemu") || !have_qemu_io() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, opts) in [
        ("zero.qcow2", "compat=1.1"),
        ("sub.qcow2", "extended_l2=on"),
        ("sub2m.qcow2", "extended_l2=on,cluster_size=2M"),
    ] {
        let img = dir.path().join(name);
        let base = dir.path().join(format!("base-{name}"));
        qemu_img(&["create", "-q", "-f", "qcow2", s(&base), "8M"]);
        qemu_io(&base, &["write -P 0x77 0 8M"]);
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-o",
            opts,
            "-b",
            s(&base),
            "-F",
            "qcow2",
            s(&img),
        ]);
        qemu_io(
            &img,
            &[
                "write -P 0x55 1M 64k",
                "write -P 0x56 2052k 2k",
                "write -P 0x57 3M 3k",
                "write -z 4M 128k",
                "write -z 5M 4k",
                "write -P 0x58 5124k 8k",
                "write -z 7M 1M",
                "write -P 0x59 8180k 12k",
            ],
        );
        let ev = Qcow2Evidence::open(&[img.clone(), base.clone()]).unwrap();
        let r = reference(&img, "qcow2");
        assert_same(&ev, &r, name);
        assert_eq!(ev.info().segments, vec![img.clone(), base.clone()]);
        // Without its backing file, the same image is refused.
        let e = Qcow2Evidence::open(std::slice::from_ref(&img)).unwrap_err();
        assert!(matches!(e, EvidenceError::MissingSegment { .. }), "{e}");
        assert!(e.to_string().contains("is not given as evidence"), "{e}");
    }
}

#[test]
fn backing_chains_match_qemu() {
    if !have_qemu("backing_chains_match_qemu") || !have_qemu_io() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // raw <- qcow (v1) <- qcow2 v2 <- qcow2 v3 (smaller base, larger child).
    let raw = media(3 << 20, 4);
    let base = d.join("base.raw");
    std::fs::write(&base, &raw).unwrap();
    let mid1 = d.join("mid1.qcow");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow",
        "-b",
        "base.raw",
        "-F",
        "raw",
        s(&mid1),
        "4M",
    ]);
    // QCOW v1 is written through qemu-io too.
    run(
        "qemu-io",
        &["-f", "qcow", "-c", "write -P 0x61 512k 100k", s(&mid1)],
    );
    let mid2 = d.join("mid2.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "compat=0.10",
        "-b",
        "mid1.qcow",
        "-F",
        "qcow",
        s(&mid2),
        "5M",
    ]);
    qemu_io(&mid2, &["write -P 0x62 1M 64k", "write -P 0x63 3M 1536k"]);
    let top = d.join("top.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "mid2.qcow2",
        "-F",
        "qcow2",
        s(&top),
        "6M",
    ]);
    qemu_io(
        &top,
        &[
            "write -P 0x64 1056k 8k",
            "write -z 2M 64k",
            "write -P 0x65 6140k 4k",
        ],
    );
    let r = reference(&top, "qcow2");
    assert_eq!(r.len(), 6 << 20);
    // Any order of the other files.
    let ev = Qcow2Evidence::open(&[top.clone(), base.clone(), mid2.clone(), mid1.clone()]).unwrap();
    assert_same(&ev, &r, "chain");
    assert_eq!(
        ev.info().segments,
        vec![top.clone(), mid2.clone(), mid1.clone(), base.clone()]
    );
    assert_eq!(meta(&ev, "qcow2.backing_file"), Some("mid2.qcow2"));
    assert_eq!(meta(&ev, "qcow2.backing_format"), Some("qcow2"));
    let chain = meta(&ev, "qcow2.backing_chain").unwrap();
    assert_eq!(chain.lines().count(), 3, "{chain}");
    assert!(chain.lines().last().unwrap().ends_with("(raw)"), "{chain}");

    // A missing link anywhere in the chain is named.
    let e = Qcow2Evidence::open(&[top.clone(), mid2.clone(), base.clone()]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("mid1.qcow") && msg.contains("not given as evidence"),
        "{msg}"
    );

    // Matched by file name: copies in another folder, the recorded names
    // pointing elsewhere.
    let other = d.join("copies");
    std::fs::create_dir(&other).unwrap();
    for f in [&top, &mid2, &mid1, &base] {
        std::fs::copy(f, other.join(f.file_name().unwrap())).unwrap();
    }
    let copy = |n: &str| other.join(n);
    // The recorded name resolves to the originals (relative to the copy's
    // folder it does not exist): the file name decides.
    let ev = Qcow2Evidence::open(&[
        copy("top.qcow2"),
        copy("mid2.qcow2"),
        copy("mid1.qcow"),
        copy("base.raw"),
    ])
    .unwrap();
    assert_same(&ev, &r, "copied chain");
    assert_eq!(ev.info().segments[3], copy("base.raw"));
    // Absolute recorded names pointing elsewhere: matched by file name.
    let abs_top = d.join("abs.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "/nonexistent/dir/mid2.qcow2",
        "-F",
        "qcow2",
        "-u",
        s(&abs_top),
        "5M",
    ]);
    let ev = Qcow2Evidence::open(&[
        abs_top.clone(),
        copy("mid2.qcow2"),
        copy("mid1.qcow"),
        copy("base.raw"),
    ])
    .unwrap();
    let want = reference(&mid2, "qcow2");
    assert_same(&ev, &want, "absolute name");
    // Two given files of the backing's name and none the same file: refused.
    let e = Qcow2Evidence::open(&[
        abs_top,
        copy("mid2.qcow2"),
        mid2.clone(),
        mid1.clone(),
        base.clone(),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("2 files of that name"), "{e}");
}

#[test]
fn backing_file_larger_and_smaller_than_child() {
    if !have_qemu("backing_file_larger_and_smaller_than_child") || !have_qemu_io() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = media((5 << 20) + 512, 5);
    let base = d.join("b.qcow2");
    let raw_path = d.join("b.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    qemu_img(&["convert", "-O", "qcow2", "-c", s(&raw_path), s(&base)]);
    for (name, size) in [("small.qcow2", "2M"), ("big.qcow2", "9M")] {
        let child = d.join(name);
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "b.qcow2",
            "-F",
            "qcow2",
            s(&child),
            size,
        ]);
        qemu_io(&child, &["write -P 0x70 1M 4k"]);
        let ev = Qcow2Evidence::open(&[child.clone(), base.clone()]).unwrap();
        assert_same(&ev, &reference(&child, "qcow2"), name);
    }
    // No backing format extension: the backing file's format is probed.
    let child = d.join("probed.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "b.qcow2",
        "-F",
        "qcow2",
        s(&child),
    ]);
    let mut b = std::fs::read(&child).unwrap();
    let at = b
        .windows(4)
        .position(|w| w == [0xe2, 0x79, 0x2a, 0xca])
        .unwrap();
    b[at..at + 4].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]); // an unknown extension
    std::fs::write(&child, &b).unwrap();
    let ev = Qcow2Evidence::open(&[child.clone(), base.clone()]).unwrap();
    assert_same(&ev, &raw, "probed");
}

#[test]
fn backing_cycle_is_refused() {
    if !have_qemu("backing_cycle_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a.qcow2");
    let b = d.join("b.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", s(&a), "1M"]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "a.qcow2",
        "-F",
        "qcow2",
        s(&b),
        "1M",
    ]);
    qemu_img(&["rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", s(&a)]);
    let e = Qcow2Evidence::open(&[b.clone(), a.clone()]).unwrap_err();
    assert!(matches!(e, EvidenceError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("cycles"), "{e}");
    // An image naming itself.
    let c = d.join("c.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", s(&c), "1M"]);
    qemu_img(&["rebase", "-u", "-b", "c.qcow2", "-F", "qcow2", s(&c)]);
    let e = Qcow2Evidence::open(&[c.clone(), c.clone()]).unwrap_err();
    assert!(e.to_string().contains("cycles"), "{e}");
    let e = Qcow2Evidence::open(std::slice::from_ref(&c)).unwrap_err();
    assert!(e.to_string().contains("cycles"), "{e}");
}

#[test]
fn snapshots_are_listed_and_the_active_state_read() {
    if !have_qemu("snapshots_are_listed_and_the_active_state_read") || !have_qemu_io() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("snap.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", s(&img), "4M"]);
    qemu_io(&img, &["write -P 0x01 0 1M"]);
    qemu_img(&["snapshot", "-c", "first snapshot", s(&img)]);
    qemu_io(&img, &["write -P 0x02 512k 1M"]);
    qemu_img(&["snapshot", "-c", "second", s(&img)]);
    qemu_io(&img, &["write -P 0x03 3M 4k", "write -z 0 64k"]);
    let ev = Qcow2Evidence::open(std::slice::from_ref(&img)).unwrap();
    assert_same(&ev, &reference(&img, "qcow2"), "snapshots");
    assert_eq!(meta(&ev, "qcow2.snapshot_count"), Some("2"));
    let list = meta(&ev, "qcow2.snapshots").unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("id=\"1\" name=\"first snapshot\" date=20"),
        "{list}"
    );
    assert!(lines[1].starts_with("id=\"2\" name=\"second\""), "{list}");
    // The dates agree with qemu-img's listing (to the day).
    let listing = qemu_img(&["snapshot", "-l", s(&img)]);
    let day = lines[0].split("date=").nth(1).unwrap();
    assert!(listing.contains(&day[..10]), "{listing} vs {list}");
}

#[test]
fn unsupported_features_are_refused_by_name() {
    if !have_qemu("unsupported_features_are_refused_by_name") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let enc = d.join("enc.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        "secret,id=sec0,data=123456",
        "-o",
        "encrypt.format=luks,encrypt.key-secret=sec0",
        s(&enc),
        "1M",
    ]);
    let e = Qcow2Evidence::open(&[enc]).unwrap_err();
    assert!(matches!(e, EvidenceError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("encrypted"), "{e}");

    let df = d.join("df.qcow2");
    let data = d.join("df.raw");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        &format!("data_file={}", s(&data)),
        s(&df),
        "1M",
    ]);
    let e = Qcow2Evidence::open(&[df, data]).unwrap_err();
    assert!(e.to_string().contains("external data file"), "{e}");

    let raw = media(1 << 20, 6);
    let raw_path = d.join("m.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    let zstd = d.join("zstd.qcow2");
    qemu_img(&[
        "convert",
        "-c",
        "-O",
        "qcow2",
        "-o",
        "compression_type=zstd",
        s(&raw_path),
        s(&zstd),
    ]);
    let e = Qcow2Evidence::open(std::slice::from_ref(&zstd)).unwrap_err();
    assert!(matches!(e, EvidenceError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("zstd"), "{e}");
    // zstd as the compression type but no compressed cluster: readable.
    let zplain = convert_and_check(
        d,
        &raw_path,
        &raw,
        "zplain.qcow2",
        "qcow2",
        &["-o", "compression_type=zstd"],
    );
    let ev = Qcow2Evidence::open(&[zplain]).unwrap();
    assert_eq!(meta(&ev, "qcow2.compression_type"), Some("zstd"));

    // Unknown incompatible feature bits are named.
    let img = d.join("unknown.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", s(&img), "1M"]);
    let mut b = std::fs::read(&img).unwrap();
    b[72 + 7] |= 0x40; // bit 6
    std::fs::write(&img, &b).unwrap();
    let e = Qcow2Evidence::open(&[img]).unwrap_err();
    assert!(e.to_string().contains("bit 6"), "{e}");
}

#[test]
fn probe_recognises_the_versions() {
    assert!(Qcow2Evidence::probe(b"QFI\xfb\0\0\0\x02rest"));
    assert!(Qcow2Evidence::probe(b"QFI\xfb\0\0\0\x03"));
    assert!(Qcow2Evidence::probe(b"QFI\xfb\0\0\0\x01"));
    assert!(!Qcow2Evidence::probe(b"QFI\xfb\0\0\0\x04"));
    assert!(!Qcow2Evidence::probe(b"QFI\xfb"));
    assert!(!Qcow2Evidence::probe(b"KDMV\0\0\0\x01"));
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
        trawl_fixtures::skip("qcow2 corpora", "../shared/corpora");
        None
    }
}

#[test]
fn corpora_match_qemu_img() {
    let Some(root) = corpora() else { return };
    if !have_qemu("corpora_match_qemu_img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (rel, fmt, version) in [
        ("dfvfs-test-data/test_data/ext2.qcow2", "qcow2", "3"),
        (
            "dfvfs-test-data/test_data/windows_volume.qcow2",
            "qcow2",
            "3",
        ),
        ("sleuthkit-test-data/test/data/image.qcow", "qcow", "1"),
    ] {
        let p = root.join(rel);
        if !p.is_file() {
            trawl_fixtures::skip("corpora_match_qemu_img", rel);
            continue;
        }
        let out = dir.path().join("ref.raw");
        qemu_img(&["convert", "-f", fmt, "-O", "raw", s(&p), s(&out)]);
        let want = std::fs::read(&out).unwrap();
        let ev =
            Qcow2Evidence::open(std::slice::from_ref(&p)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(meta(&ev, "qcow2.version"), Some(version), "{rel}");
        assert_same(&ev, &want, rel);
        println!("{rel}: {} bytes, md5 {}", want.len(), md5_hex(&want));
    }
}

// ---------------------------------------------------------------------------
// Hostile input

/// Opens `paths` and reads the virtual disk (its first 64 MiB and a few
/// spots further on), on another thread, failing when that takes more than
/// `limit`. Returns the largest single allocation made meanwhile.
fn open_and_read_within(paths: Vec<PathBuf>, limit: Duration) -> Result<usize, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let (r, largest) = tracked(|| {
            std::panic::catch_unwind(|| {
                let ev = Qcow2Evidence::open(&paths)?;
                let mut buf = vec![0u8; 1 << 20];
                let head = ev.size().min(64 << 20);
                let mut pos = 0;
                let mut first_err = None;
                while pos < head {
                    match ev.read_at(pos, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => pos += n as u64,
                        Err(e) => {
                            first_err.get_or_insert(e);
                            pos += buf.len() as u64;
                        }
                    }
                }
                for k in 1..8u64 {
                    let at = ev.size() / 8 * k;
                    let _ = ev.read_at(at, &mut buf[..70_000]);
                }
                match first_err {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            })
        });
        let _ = tx.send(r.map(|_| largest));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(largest)) => Ok(largest),
        Ok(Err(_)) => Err("panicked".into()),
        Err(_) => Err(format!(
            "took more than {limit:?} (started {:?} ago)",
            started.elapsed()
        )),
    }
}

/// Small valid containers of every kind, made once.
fn hostile_bases(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let raw = media((256 << 10) + 1536, 9);
    let raw_path = dir.join("h.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    let mut out = Vec::new();
    for (name, fmt, opts) in [
        ("v2", "qcow2", vec!["-o", "compat=0.10,cluster_size=4k"]),
        ("v3", "qcow2", vec!["-o", "cluster_size=4k"]),
        ("v3c", "qcow2", vec!["-c", "-o", "cluster_size=4k"]),
        ("c512", "qcow2", vec!["-c", "-o", "cluster_size=512"]),
        (
            "ext",
            "qcow2",
            vec!["-o", "extended_l2=on,cluster_size=16k"],
        ),
        ("v1", "qcow", vec![]),
    ] {
        let img = dir.join(format!("{name}.img"));
        let mut args = vec!["convert", "-O", fmt];
        args.extend(opts);
        args.push(s(&raw_path));
        args.push(s(&img));
        qemu_img(&args);
        if name == "v3" && have_qemu_io() {
            qemu_img(&["snapshot", "-c", "s1", s(&img)]);
            qemu_io(&img, &["write -z 0 8k", "write -P 9 100k 3k"]);
        }
        out.push((name.to_string(), std::fs::read(&img).unwrap()));
    }
    if have_qemu_io() {
        let img = qcow1_compressed(dir, &raw[..128 << 10], "v1c.img");
        out.push(("v1c".to_string(), std::fs::read(&img).unwrap()));
    }
    out
}

/// Offsets worth damaging: the header, and the L1 and L2 tables.
fn interesting(b: &[u8]) -> Vec<usize> {
    let mut v: Vec<usize> = (0..b.len().min(512)).collect();
    if b.len() >= 48 {
        let version = u32::from_be_bytes(b[4..8].try_into().unwrap());
        let (l1_off, l1_len) = if version == 1 {
            (
                u64::from_be_bytes(b[40..48].try_into().unwrap()) as usize,
                64,
            )
        } else if b.len() >= 72 {
            (
                u64::from_be_bytes(b[40..48].try_into().unwrap()) as usize,
                u32::from_be_bytes(b[36..40].try_into().unwrap()) as usize * 8,
            )
        } else {
            (0, 0)
        };
        for i in l1_off..l1_off.saturating_add(l1_len.min(4096)).min(b.len()) {
            v.push(i);
            if i % 8 == 0 && i + 8 <= b.len() {
                let mut e = u64::from_be_bytes(b[i..i + 8].try_into().unwrap());
                if version != 1 {
                    e &= 0x00ff_ffff_ffff_fe00;
                }
                let e = e as usize;
                if e > 0 && e < b.len() {
                    v.extend(e..(e + 4096).min(b.len()));
                }
            }
        }
    }
    v
}

fn mutate(base: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    let spots = interesting(&b);
    for _ in 0..1 + r.below(4) {
        let spots: Vec<usize> = spots.iter().copied().filter(|&i| i < b.len()).collect();
        if spots.is_empty() {
            return b;
        }
        match r.below(6) {
            0 | 1 => {
                let at = spots[r.below(spots.len() as u64) as usize];
                b[at] ^= 1 << r.below(8);
            }
            2 => {
                let at = spots[r.below(spots.len() as u64) as usize];
                b[at] = r.next() as u8;
            }
            3 => {
                // An 8-byte field or table entry set to an extreme value.
                let at = spots[r.below(spots.len() as u64) as usize] & !7;
                if at + 8 <= b.len() {
                    let v: u64 = match r.below(5) {
                        0 => u64::MAX,
                        1 => 1 << 62,
                        2 => b.len() as u64 + r.below(1 << 20),
                        3 => r.next() & 0x00ff_ffff_ffff_fe00,
                        _ => r.next(),
                    };
                    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
                }
            }
            4 => {
                let len = r.below(b.len() as u64 + 1) as usize;
                b.truncate(len);
                if b.is_empty() {
                    return b;
                }
            }
            _ => {
                let at = r.below(b.len() as u64) as usize;
                b[at] = r.next() as u8;
            }
        }
    }
    b
}

fn hostile_round(dir: &Path, bases: &[(String, Vec<u8>)], r: &mut Rng, case: u64) {
    let (name, base) = &bases[r.below(bases.len() as u64) as usize];
    let b = mutate(base, r);
    let p = dir.join(format!("case-{}.img", case % 4));
    std::fs::write(&p, &b).unwrap();
    match open_and_read_within(vec![p.clone()], Duration::from_secs(2)) {
        Ok(largest) if largest < 16 << 20 => {}
        res => {
            let keep = dir.join("failing.img");
            std::fs::copy(&p, &keep).unwrap();
            let why = match res {
                Ok(largest) => format!("an allocation of {largest} bytes"),
                Err(e) => e,
            };
            panic!(
                "case {case} from base {name}: {why} (kept as {})",
                keep.display()
            );
        }
    }
}

#[test]
fn hostile_containers_never_panic_hang_or_overallocate() {
    if !have_qemu("hostile_containers_never_panic_hang_or_overallocate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bases = hostile_bases(dir.path());
    // The bases themselves read back.
    for (name, b) in &bases {
        let p = dir.path().join(format!("{name}.img"));
        assert_eq!(&std::fs::read(&p).unwrap(), b);
        Qcow2Evidence::open(&[p]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let secs: u64 = std::env::var("TRAWL_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let seed = std::env::var("TRAWL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9c02);
    let mut r = Rng(seed);
    let started = Instant::now();
    let mut cases = 0u64;
    loop {
        hostile_round(dir.path(), &bases, &mut r, cases);
        cases += 1;
        let done = if secs == 0 {
            cases >= 600
        } else {
            started.elapsed() >= Duration::from_secs(secs)
        };
        if done {
            break;
        }
    }
    println!(
        "hostile: {cases} cases in {:.1} s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
}

/// A v3 image of 4 KiB clusters: its bytes, and the file offsets of its L1
/// table and first L2 table.
fn small_v3(dir: &Path, opts: &str, compress: bool) -> (PathBuf, Vec<u8>, usize, usize) {
    let raw = media(256 << 10, 12);
    let raw_path = dir.join("s.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    let img = dir.join("s.qcow2");
    let mut args = vec!["convert", "-O", "qcow2", "-o", opts];
    if compress {
        args.push("-c");
    }
    args.push(s(&raw_path));
    args.push(s(&img));
    qemu_img(&args);
    let b = std::fs::read(&img).unwrap();
    let l1 = u64::from_be_bytes(b[40..48].try_into().unwrap()) as usize;
    let l2 =
        (u64::from_be_bytes(b[l1..l1 + 8].try_into().unwrap()) & 0x00ff_ffff_ffff_fe00) as usize;
    (img, b, l1, l2)
}

/// The first error reading the whole virtual disk.
fn first_read_error(ev: &Qcow2Evidence) -> Option<EvidenceError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = 0;
    while pos < ev.size() {
        match ev.read_at(pos, &mut buf) {
            Ok(n) => pos += n as u64,
            Err(e) => return Some(e),
        }
    }
    None
}

#[test]
fn specific_damage_is_named() {
    if !have_qemu("specific_damage_is_named") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (img, b, l1, l2) = small_v3(d, "cluster_size=4k", false);
    let len = b.len() as u64;
    let write = |bytes: &[u8]| {
        std::fs::write(&img, bytes).unwrap();
        img.clone()
    };
    let open = |bytes: &[u8]| {
        let p = write(bytes);
        let (r, largest) = tracked(|| Qcow2Evidence::open(&[p]));
        assert!(largest < 4 << 20, "an allocation of {largest} bytes");
        r
    };

    // An L2 entry pointing past the end of the file.
    let first_data = (0..512)
        .map(|i| l2 + i * 8)
        .find(|&at| u64::from_be_bytes(b[at..at + 8].try_into().unwrap()) != 0)
        .unwrap();
    let mut m = b.clone();
    m[first_data..first_data + 8]
        .copy_from_slice(&((1u64 << 63) | (len + 4096 * 10)).to_be_bytes());
    let ev = open(&m).unwrap();
    let e = first_read_error(&ev).unwrap();
    assert!(
        matches!(e, EvidenceError::Truncated { offset, .. } if offset == first_data as u64),
        "{e}"
    );
    assert!(e.to_string().contains("passes the end of the file"), "{e}");

    // An unaligned L2 entry.
    let mut m = b.clone();
    m[first_data..first_data + 8].copy_from_slice(&((1u64 << 63) | (4096 * 3 + 512)).to_be_bytes());
    let e = first_read_error(&open(&m).unwrap()).unwrap();
    assert!(
        matches!(e, EvidenceError::Corrupt { offset, .. } if offset == first_data as u64),
        "{e}"
    );
    assert!(e.to_string().contains("not aligned"), "{e}");

    // An L1 entry pointing past the end of the file.
    let mut m = b.clone();
    m[l1..l1 + 8].copy_from_slice(&((1u64 << 63) | (len + (1 << 20))).to_be_bytes());
    let e = first_read_error(&open(&m).unwrap()).unwrap();
    assert!(
        matches!(e, EvidenceError::Truncated { offset, .. } if offset == l1 as u64),
        "{e}"
    );
    assert!(e.to_string().contains("L1 entry 0"), "{e}");

    // A huge virtual size: the L1 table is too small for it.
    let mut m = b.clone();
    m[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
    let e = open(&m).unwrap_err();
    assert!(
        matches!(e, EvidenceError::Corrupt { offset: 36, .. }),
        "{e}"
    );
    // A huge L1 table.
    let mut m = b.clone();
    m[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
    m[24..32].copy_from_slice(&(1u64 << 50).to_be_bytes());
    let e = open(&m).unwrap_err();
    assert!(matches!(e, EvidenceError::Corrupt { .. }), "{e}");
    // An L1 table that fits QEMU's limit but not the file.
    let mut m = b.clone();
    m[36..40].copy_from_slice(&(1u32 << 20).to_be_bytes());
    m[24..32].copy_from_slice(&(1u64 << 38).to_be_bytes());
    let e = open(&m).unwrap_err();
    assert!(matches!(e, EvidenceError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("L1 table"), "{e}");
    // Cluster bits out of range.
    let mut m = b.clone();
    m[20..24].copy_from_slice(&30u32.to_be_bytes());
    let e = open(&m).unwrap_err();
    assert!(
        matches!(e, EvidenceError::Corrupt { offset: 20, .. }),
        "{e}"
    );
    // Every L1 entry pointing at the same L2 table: loaded once.
    let mut m = b.clone();
    let l1_size = u32::from_be_bytes(m[36..40].try_into().unwrap()) as usize;
    let e0 = m[l1..l1 + 8].to_vec();
    for i in 0..l1_size {
        m[l1 + i * 8..l1 + i * 8 + 8].copy_from_slice(&e0);
    }
    let ev = open(&m).unwrap();
    let _ = first_read_error(&ev);
    // A truncated file.
    let e = first_read_error(&open(&b[..b.len() / 2]).unwrap()).unwrap();
    assert!(matches!(e, EvidenceError::Truncated { .. }), "{e}");
    let e = open(&b[..60]).unwrap_err();
    assert!(
        matches!(e, EvidenceError::Truncated { offset: 0, .. }),
        "{e}"
    );

    // A damaged compressed cluster.
    let (img, b, _, l2) = small_v3(d, "cluster_size=4k", true);
    let comp = (0..512)
        .map(|i| l2 + i * 8)
        .map(|at| (at, u64::from_be_bytes(b[at..at + 8].try_into().unwrap())))
        .find(|(_, e)| e & (1 << 62) != 0)
        .unwrap();
    let host = (comp.1 & ((1u64 << 58) - 1)) as usize;
    let mut m = b.clone();
    for x in &mut m[host..host + 64] {
        *x = 0xff;
    }
    std::fs::write(&img, &m).unwrap();
    let e = first_read_error(&Qcow2Evidence::open(std::slice::from_ref(&img)).unwrap()).unwrap();
    assert!(
        matches!(e, EvidenceError::Corrupt { offset, .. } if offset == host as u64),
        "{e}"
    );
    assert!(e.to_string().contains("compressed cluster"), "{e}");
}
