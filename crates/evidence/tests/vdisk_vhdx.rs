//! VHDX reader tests: differential against `qemu-img` (raw images with
//! random contents converted to the VHDX subformats qemu writes, then the
//! virtual disk compared with the raw and with `qemu-img convert -O raw`),
//! 4096-byte logical sectors (patched into qemu's output: qemu cannot make
//! them), dirty logs replayed in memory (compared with qemu's own replay by
//! `qemu-img check -r all` on a copy), and hostile input (seeded mutations
//! with a per-case deadline; `TRAWL_FUZZ_SECS=N` for a long run).

mod vdisk_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trawl_evidence::vdisk::vhdx::VhdxEvidence;
use trawl_evidence::{Evidence, EvidenceError, Format};
use vdisk_common::{MIB, Rng, have_qemu, md5_hex, random_disk, read_all, read_threaded};

fn qemu(args: &[&str]) -> std::process::Output {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn qemu_raw(src: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!(
        "{}.qemu.raw",
        src.file_name().unwrap().to_string_lossy()
    ));
    qemu(&[
        "convert",
        "-f",
        "vhdx",
        "-O",
        "raw",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let v = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    v
}

fn convert(raw: &Path, out: &Path, opts: &str) {
    qemu(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vhdx",
        "-o",
        opts,
        raw.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
}

/// Checks a VHDX against the raw (zero-padded to the virtual size) and
/// qemu's conversion of it.
fn check(vhdx: &Path, raw: &[u8], dir: &Path) -> Arc<dyn Evidence> {
    let ev: Arc<dyn Evidence> = Arc::new(VhdxEvidence::open(&[vhdx.to_path_buf()]).unwrap());
    let reference = qemu_raw(vhdx, dir);
    assert_eq!(ev.size(), reference.len() as u64, "{}", vhdx.display());
    assert_eq!(ev.size(), raw.len().next_multiple_of(512) as u64);
    assert!(reference[..raw.len()] == *raw, "qemu's output is the raw");
    let want = md5_hex(&reference);
    assert_eq!(
        md5_hex(&read_all(&*ev, 1 << 20)),
        want,
        "{}",
        vhdx.display()
    );
    assert_eq!(md5_hex(&read_all(&*ev, 4093)), want);
    let reference = Arc::new(reference);
    assert_eq!(md5_hex(&read_threaded(&ev, &reference, 7)), want);
    assert_eq!(ev.info().format, Format::Vhdx);
    ev
}

// ---------------------------------------------------------------------------
// Structure helpers (for patching qemu's output)

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// (BAT offset, metadata offset) from the first region table.
fn regions(d: &[u8]) -> (usize, usize) {
    let t = &d[192 << 10..];
    let (mut bat, mut meta) = (0, 0);
    for i in 0..le32(t, 8) as usize {
        let e = &t[16 + i * 32..48 + i * 32];
        match e[0] {
            0x66 => bat = le64(e, 16) as usize,
            0x06 => meta = le64(e, 16) as usize,
            _ => {}
        }
    }
    (bat, meta)
}

fn crc_fix(b: &mut [u8], field: usize) {
    b[field..field + 4].fill(0);
    let c = crc32c::crc32c(b);
    b[field..field + 4].copy_from_slice(&c.to_le_bytes());
}

/// Recomputes the CRCs of both headers and both region tables.
fn fix_crcs(d: &mut [u8]) {
    for (at, len) in [
        (64usize << 10, 4096usize),
        (128 << 10, 4096),
        (192 << 10, 65536),
        (256 << 10, 65536),
    ] {
        if d.len() >= at + len {
            crc_fix(&mut d[at..at + len], 4);
        }
    }
}

/// The metadata item `first_byte` (first byte of its GUID) value offset.
fn meta_item(d: &[u8], first_byte: u8) -> usize {
    let (_, meta) = regions(d);
    let t = &d[meta..];
    let n = u16::from_le_bytes([t[10], t[11]]) as usize;
    for i in 0..n {
        let e = &t[32 + i * 32..64 + i * 32];
        if e[0] == first_byte {
            return meta + le32(e, 16) as usize;
        }
    }
    panic!("no metadata item {first_byte:#x}");
}

#[test]
fn qemu_subformats() {
    if !have_qemu("qemu_subformats") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, size) in [3_000_000usize, 9 * MIB as usize + 4096 * 3]
        .into_iter()
        .enumerate()
    {
        let raw = random_disk(size, 200 + i as u64);
        let rp = dir.path().join(format!("d{i}.raw"));
        std::fs::write(&rp, &raw).unwrap();
        for opts in [
            "subformat=dynamic",
            "subformat=fixed",
            "subformat=dynamic,block_size=1M",
            "subformat=dynamic,block_size=32M",
            "subformat=fixed,block_size=1M",
            "subformat=dynamic,log_size=1M",
            "subformat=dynamic,log_size=4M,block_size=2M",
        ] {
            let vp = dir
                .path()
                .join(format!("d{i}-{}.vhdx", opts.replace([',', '='], "_")));
            convert(&rp, &vp, opts);
            let ev = check(&vp, &raw, dir.path());
            let m = &ev.info().metadata;
            if let Some(bs) = opts.split("block_size=").nth(1) {
                let mib: u64 = bs.trim_end_matches('M').parse().unwrap();
                assert_eq!(m["vhdx.block_size"], (mib * MIB).to_string());
            }
            assert_eq!(m["vhdx.logical_sector_size"], "512");
            assert_eq!(m["vhdx.has_parent"], "false");
            assert_eq!(m["vhdx.log"], "empty");
            assert!(m["vhdx.creator"].starts_with("QEMU"), "{m:?}");
            assert_eq!(
                m["vhdx.leave_blocks_allocated"],
                opts.contains("fixed").to_string()
            );
            assert_eq!(m["vhdx.virtual_disk_id"].len(), 36);
            assert_eq!(ev.info().bytes_per_sector, 512);
        }
    }
}

/// A 256 MiB sparse virtual disk: unallocated blocks cost nothing.
#[test]
fn qemu_large_sparse() {
    if !have_qemu("qemu_large_sparse") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 256 * MIB as usize;
    let mut raw = vec![0u8; size];
    let mut r = Rng(9);
    for at in [
        0usize,
        5 * MIB as usize + 1234,
        100 * MIB as usize,
        size - 70_000,
    ] {
        let n = 60_000 + r.below(10_000) as usize;
        r.fill(&mut raw[at..(at + n).min(size)]);
    }
    let rp = dir.path().join("big.raw");
    std::fs::write(&rp, &raw).unwrap();
    let vp = dir.path().join("big.vhdx");
    convert(&rp, &vp, "subformat=dynamic");
    assert!(std::fs::metadata(&vp).unwrap().len() < 64 * MIB);
    let ev = VhdxEvidence::open(std::slice::from_ref(&vp)).unwrap();
    assert_eq!(ev.size(), size as u64);
    let t = Instant::now();
    let got = read_all(&ev, 4 << 20);
    println!("256 MiB read in {:?}", t.elapsed());
    assert!(got == raw);
    assert_eq!(md5_hex(&got), md5_hex(&qemu_raw(&vp, dir.path())));
}

/// 4096-byte logical sectors: qemu cannot create them, so its output is
/// patched (the metadata item; with fewer payload blocks than the chunk
/// ratio the BAT layout is the same). The bytes are the raw's.
#[test]
fn logical_sector_4096() {
    if !have_qemu("logical_sector_4096") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = random_disk(5 * MIB as usize + 8192, 31);
    let rp = dir.path().join("a.raw");
    std::fs::write(&rp, &raw).unwrap();
    for opts in ["subformat=dynamic,block_size=1M", "subformat=fixed"] {
        let vp = dir.path().join("a.vhdx");
        convert(&rp, &vp, opts);
        let mut d = std::fs::read(&vp).unwrap();
        let ls = meta_item(&d, 0x1d);
        assert_eq!(le32(&d, ls), 512);
        d[ls..ls + 4].copy_from_slice(&4096u32.to_le_bytes());
        let ps = meta_item(&d, 0xc7);
        d[ps..ps + 4].copy_from_slice(&4096u32.to_le_bytes());
        std::fs::write(&vp, &d).unwrap();
        let ev: Arc<dyn Evidence> =
            Arc::new(VhdxEvidence::open(std::slice::from_ref(&vp)).unwrap());
        assert_eq!(ev.size(), raw.len() as u64);
        assert_eq!(ev.info().bytes_per_sector, 4096);
        assert_eq!(ev.info().metadata["vhdx.logical_sector_size"], "4096");
        assert!(read_all(&*ev, 1 << 20) == raw);
        let want = Arc::new(raw.clone());
        assert!(read_threaded(&ev, &want, 5) == raw);
    }
}

// ---------------------------------------------------------------------------
// Logs

enum LogDesc {
    Data(u64, Vec<u8>),
    Zero(u64, u64),
}

/// One log entry (header sector with the descriptors, then data sectors).
fn log_entry(guid: &[u8; 16], seq: u64, descs: &[LogDesc], file_len: u64) -> Vec<u8> {
    assert!(descs.len() <= 126);
    let data: Vec<&Vec<u8>> = descs
        .iter()
        .filter_map(|d| match d {
            LogDesc::Data(_, v) => Some(v),
            LogDesc::Zero(..) => None,
        })
        .collect();
    let mut e = vec![0u8; 4096 * (1 + data.len())];
    e[0..4].copy_from_slice(b"loge");
    let elen = e.len() as u32;
    e[8..12].copy_from_slice(&elen.to_le_bytes());
    e[16..24].copy_from_slice(&seq.to_le_bytes());
    e[24..28].copy_from_slice(&(descs.len() as u32).to_le_bytes());
    e[32..48].copy_from_slice(guid);
    e[48..56].copy_from_slice(&file_len.to_le_bytes());
    e[56..64].copy_from_slice(&file_len.to_le_bytes());
    let mut k = 0;
    for (i, d) in descs.iter().enumerate() {
        let at = 64 + 32 * i;
        match d {
            LogDesc::Zero(off, len) => {
                e[at..at + 4].copy_from_slice(b"zero");
                e[at + 8..at + 16].copy_from_slice(&len.to_le_bytes());
                e[at + 16..at + 24].copy_from_slice(&off.to_le_bytes());
            }
            LogDesc::Data(off, v) => {
                assert_eq!(v.len(), 4096);
                e[at..at + 4].copy_from_slice(b"desc");
                e[at + 4..at + 8].copy_from_slice(&v[4092..]);
                e[at + 8..at + 16].copy_from_slice(&v[..8]);
                e[at + 16..at + 24].copy_from_slice(&off.to_le_bytes());
                k += 1;
                let s = &mut e[4096 * k..4096 * (k + 1)];
                s[0..4].copy_from_slice(b"data");
                s[4..8].copy_from_slice(&((seq >> 32) as u32).to_le_bytes());
                s[8..4092].copy_from_slice(&v[8..4092]);
                s[4092..].copy_from_slice(&(seq as u32).to_le_bytes());
            }
        }
        e[at + 24..at + 32].copy_from_slice(&seq.to_le_bytes());
    }
    crc_fix(&mut e, 4);
    e
}

/// A qemu-made dynamic VHDX with a dirty log: two entries of the active
/// sequence (data written into a block, a block zeroed, a BAT entry
/// changed to map an absent block, the same sector written twice) and a
/// stale older entry after them. Returns the image.
fn dirty(dir: &Path, raw: &[u8]) -> Vec<u8> {
    let mut raw = raw.to_vec();
    let end = raw.len().min(3 << 20);
    raw[2 << 20..end].fill(0); // an absent block
    let rp = dir.join("dirty.raw");
    std::fs::write(&rp, &raw).unwrap();
    let vp = dir.join("dirty-src.vhdx");
    convert(&rp, &vp, "subformat=dynamic,block_size=1M");
    let mut d = std::fs::read(&vp).unwrap();
    let (bat, _) = regions(&d);
    let blocks: Vec<u64> = (0..6).map(|i| le64(&d, bat + 8 * i)).collect();
    let present: Vec<usize> = (0..6).filter(|&i| blocks[i] & 7 == 6).collect();
    let absent = (0..6)
        .find(|&i| blocks[i] & 7 != 6)
        .expect("an absent block");
    assert!(present.len() >= 2, "{blocks:x?}");
    let off = |i: usize| blocks[i] & !(MIB - 1);
    let mut r = Rng(4);
    let mut s1 = vec![0u8; 4096];
    r.fill(&mut s1);
    let mut s2 = vec![0u8; 4096];
    r.fill(&mut s2);
    let mut s3 = vec![0u8; 4096];
    r.fill(&mut s3);
    // The BAT's first sector with the absent block mapped onto the second
    // present block's data.
    let mut bat_sector = d[bat..bat + 4096].to_vec();
    bat_sector[absent * 8..absent * 8 + 8].copy_from_slice(&(off(present[1]) | 6).to_le_bytes());
    let guid = [0x42u8; 16];
    let len = d.len() as u64;
    let e1 = log_entry(
        &guid,
        10,
        &[
            LogDesc::Data(off(present[0]) + 8192, s1),
            LogDesc::Zero(off(present[1]) + 4096, 3 * 4096),
            LogDesc::Data(bat as u64, bat_sector),
        ],
        len,
    );
    let e2 = log_entry(
        &guid,
        11,
        &[
            LogDesc::Data(off(present[0]) + 8192, s2),
            LogDesc::Data(off(present[0]) + 65536, s3.clone()),
        ],
        len,
    );
    let stale = log_entry(&guid, 3, &[LogDesc::Data(off(present[0]), s3)], len);
    // The stale entry follows after a free sector: qemu 10.0 takes the
    // entry right after the first of a sequence whatever its sequence
    // number (the spec, and this reader, require consecutive numbers).
    let log = 1usize << 20;
    let mut at = log;
    for e in [&e1, &e2, &vec![0u8; 4096], &stale] {
        d[at..at + e.len()].copy_from_slice(e);
        at += e.len();
    }
    for h in [64usize << 10, 128 << 10] {
        d[h + 48..h + 64].copy_from_slice(&guid);
    }
    fix_crcs(&mut d);
    d
}

#[test]
fn dirty_log_replayed_like_qemu() {
    if !have_qemu("dirty_log_replayed_like_qemu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = random_disk(5 * MIB as usize + 512, 12);
    let d = dirty(dir.path(), &raw);
    let vp = dir.path().join("dirty.vhdx");
    std::fs::write(&vp, &d).unwrap();
    // qemu refuses it read-only ...
    let out = Command::new("qemu-img")
        .args(["convert", "-O", "raw", vp.to_str().unwrap(), "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("log"));
    // ... and replays it on a copy opened read-write.
    let copy = dir.path().join("copy.vhdx");
    std::fs::write(&copy, &d).unwrap();
    let _ = Command::new("qemu-img")
        .args(["check", "-r", "all", copy.to_str().unwrap()])
        .output()
        .unwrap();
    let reference = qemu_raw(&copy, dir.path());
    assert!(reference != raw, "the log changes the disk");

    let ev: Arc<dyn Evidence> = Arc::new(VhdxEvidence::open(std::slice::from_ref(&vp)).unwrap());
    let log = &ev.info().metadata["vhdx.log"];
    assert!(
        log.contains("replayed in memory: 2 entries (sequence 10..=11), 5 writes"),
        "{log}"
    );
    assert_eq!(md5_hex(&read_all(&*ev, 1 << 20)), md5_hex(&reference));
    let want = Arc::new(reference.clone());
    assert_eq!(md5_hex(&read_threaded(&ev, &want, 8)), md5_hex(&reference));
    // The evidence file was not touched.
    assert!(std::fs::read(&vp).unwrap() == d);

    // A log whose entry fails its checksum is no active sequence: the disk
    // is read as it stands (qemu does the same).
    let mut bad = d.clone();
    bad[(1 << 20) + 100] ^= 1; // first entry
    let bp = dir.path().join("bad.vhdx");
    std::fs::write(&bp, &bad).unwrap();
    let ev = VhdxEvidence::open(std::slice::from_ref(&bp)).unwrap();
    // The second entry alone (sequence 11) is then the active sequence.
    assert!(ev.info().metadata["vhdx.log"].contains("sequence 11..=11"));
    let copy = dir.path().join("copy2.vhdx");
    std::fs::write(&copy, &bad).unwrap();
    let _ = Command::new("qemu-img")
        .args(["check", "-r", "all", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        md5_hex(&read_all(&ev, 1 << 20)),
        md5_hex(&qemu_raw(&copy, dir.path()))
    );

    // A log entry recording a larger flushed file than there is: the file
    // was truncated; refused, naming it.
    let mut t = d.clone();
    let e = 1usize << 20;
    t[e + 48..e + 56].copy_from_slice(&(1u64 << 40).to_le_bytes());
    crc_fix(&mut t[e..e + 3 * 4096], 4); // the first entry: 3 sectors
    let tp = dir.path().join("trunc.vhdx");
    std::fs::write(&tp, &t).unwrap();
    let err = VhdxEvidence::open(std::slice::from_ref(&tp)).unwrap_err();
    assert!(err.to_string().contains("flushed file size"), "{err}");
}

// ---------------------------------------------------------------------------
// Hostile input

struct Base {
    file: Vec<u8>,
    hot: Vec<(usize, usize)>,
}

fn bases(dir: &Path) -> Vec<Base> {
    let mut out = Vec::new();
    if Command::new("qemu-img").arg("--version").output().is_err() {
        return out;
    }
    let raw = random_disk(2 * MIB as usize + 3000, 3);
    let rp = dir.join("f.raw");
    std::fs::write(&rp, &raw).unwrap();
    for opts in [
        "subformat=dynamic,block_size=1M",
        "subformat=fixed,block_size=1M",
    ] {
        let vp = dir.join("f.vhdx");
        convert(&rp, &vp, opts);
        let d = std::fs::read(&vp).unwrap();
        let (bat, meta) = regions(&d);
        out.push(Base {
            hot: vec![
                (0, 64),
                (64 << 10, (64 << 10) + 80),
                (128 << 10, (128 << 10) + 80),
                (192 << 10, (192 << 10) + 80),
                (256 << 10, (256 << 10) + 80),
                (meta, meta + 200),
                (meta + 65536, meta + 65536 + 64),
                (bat, bat + 64),
            ],
            file: d,
        });
    }
    let d = dirty(dir, &raw);
    let log = 1 << 20;
    out.push(Base {
        hot: vec![
            (64 << 10, (64 << 10) + 80),
            (128 << 10, (128 << 10) + 80),
            (log, log + 400),
            (log + 4096 * 3, log + 4096 * 3 + 400),
            (log + 4096 * 7, log + 4096 * 7 + 400),
            (log + 4096, log + 4096 * 3),
        ],
        file: d,
    });
    out
}

fn mutate(base: &Base, r: &mut Rng) -> Vec<u8> {
    let mut d = base.file.clone();
    let n = d.len();
    for _ in 0..1 + r.below(6) {
        let at = if r.below(5) == 0 {
            r.below(n as u64) as usize
        } else {
            let (a, b) = base.hot[r.below(base.hot.len() as u64) as usize];
            a + r.below((b - a) as u64) as usize
        };
        match r.below(4) {
            0 => d[at] ^= 1 << r.below(8),
            1 => d[at] = r.next() as u8,
            2 => {
                let v: [u8; 4] = match r.below(4) {
                    0 => [0xff; 4],
                    1 => [0; 4],
                    2 => (r.next() as u32).to_le_bytes(),
                    _ => [0xff, 0xff, 0xff, 0x7f],
                };
                let at = at & !3;
                let e = (at + 4).min(n);
                d[at..e].copy_from_slice(&v[..e - at]);
            }
            _ => {
                let at = at & !7;
                let e = (at + 8).min(n);
                let v = (1u64 << (20 + r.below(44))).to_le_bytes();
                d[at..e].copy_from_slice(&v[..e - at]);
            }
        }
    }
    if r.below(2) == 0 {
        fix_crcs(&mut d);
        // and the first log entry's, when there is one
        let e = 1usize << 20;
        if &d[e..e + 4] == b"loge" {
            let len = le32(&d, e + 8) as usize;
            if len.is_multiple_of(4096) && len > 0 && e + len <= d.len() && len <= 1 << 20 {
                crc_fix(&mut d[e..e + len], 4);
            }
        }
    }
    if r.below(20) == 0 {
        d.truncate(r.below(n as u64) as usize);
    }
    d
}

/// Opens `path` and reads the disk (all of it when small, else its ends and
/// random windows) on a worker thread; any error is fine, a panic or a case
/// over 2 s is not. Returns whether it opened.
fn fuzz_case(path: &Path, case: u64) -> bool {
    let path = path.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let opened = VhdxEvidence::open(&[path]);
        let ok = opened.is_ok();
        if let Ok(ev) = opened {
            let size = ev.size();
            let mut buf = vec![0u8; 1 << 20];
            let mut r = Rng(case);
            let windows: Vec<u64> = if size <= 16 * MIB {
                (0..size.div_ceil(MIB)).map(|i| i * MIB).collect()
            } else {
                let mut w = vec![0, size - MIB];
                w.extend((0..8).map(|_| r.below(size)));
                w
            };
            for off in windows {
                let _ = ev.read_at(off, &mut buf);
                let k = 1 + r.below(5000) as usize;
                let _ = ev.read_at(off + r.below(MIB), &mut buf[..k]);
            }
        }
        let _ = tx.send(ok);
    });
    match rx.recv_timeout(Duration::from_secs(2)) {
        Ok(ok) => {
            worker.join().unwrap();
            ok
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            worker.join().unwrap();
            false
        }
        Err(_) => panic!("fuzz case {case} took more than 2 s"),
    }
}

/// The 4 KiB pages where `a` and `b` (of equal length) differ.
fn changed_pages(a: &[u8], b: &[u8]) -> Vec<usize> {
    a.chunks(4096)
        .zip(b.chunks(4096))
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, _)| i * 4096)
        .collect()
}

fn run_fuzz(cases: Option<u64>, secs: u64) -> Option<(u64, u64)> {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let bases = bases(dir.path());
    if bases.is_empty() {
        return None;
    }
    // Each base is written once; a case writes only the pages it changes
    // (and puts them back after), or a whole file when it truncates.
    let files: Vec<(PathBuf, std::fs::File)> = bases
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let p = dir.path().join(format!("base{i}.vhdx"));
            std::fs::write(&p, &b.file).unwrap();
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            (p, f)
        })
        .collect();
    let short = dir.path().join("short.vhdx");
    let mut r = Rng(0xbeef);
    let start = Instant::now();
    let (mut case, mut opened) = (0u64, 0u64);
    loop {
        if cases.is_some_and(|c| case >= c)
            || (cases.is_none() && start.elapsed().as_secs() >= secs)
        {
            break;
        }
        let k = (case % bases.len() as u64) as usize;
        let b = &bases[k];
        let d = mutate(b, &mut r);
        if d.len() != b.file.len() {
            std::fs::write(&short, &d).unwrap();
            opened += u64::from(fuzz_case(&short, case));
        } else {
            let (p, f) = &files[k];
            let pages = changed_pages(&b.file, &d);
            for &pg in &pages {
                let e = (pg + 4096).min(d.len());
                f.write_all_at(&d[pg..e], pg as u64).unwrap();
            }
            opened += u64::from(fuzz_case(p, case));
            for &pg in &pages {
                let e = (pg + 4096).min(d.len());
                f.write_all_at(&b.file[pg..e], pg as u64).unwrap();
            }
        }
        case += 1;
    }
    Some((case, opened))
}

#[test]
fn hostile_mutations() {
    if !have_qemu("hostile_mutations") {
        return;
    }
    let secs: u64 = std::env::var("TRAWL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let t = Instant::now();
    let (n, opened) = if secs > 0 {
        run_fuzz(None, secs)
    } else {
        run_fuzz(Some(1000), 0)
    }
    .unwrap();
    println!(
        "vhdx fuzz: {n} cases ({opened} opened) in {:.1} s, no panic, none over 2 s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        opened > n / 20,
        "the mutations should leave some images readable"
    );
}

/// Specific hostile cases on a qemu-made image.
#[test]
fn hostile_specific() {
    if !have_qemu("hostile_specific") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = random_disk(3 * MIB as usize, 8);
    let rp = dir.path().join("s.raw");
    std::fs::write(&rp, &raw).unwrap();
    let vp = dir.path().join("s.vhdx");
    convert(&rp, &vp, "subformat=dynamic,block_size=1M");
    let base = std::fs::read(&vp).unwrap();
    let (bat, meta) = regions(&base);
    let p = dir.path().join("x.vhdx");
    let open = |d: &[u8]| {
        std::fs::write(&p, d).unwrap();
        VhdxEvidence::open(std::slice::from_ref(&p))
    };
    assert!(open(&base).is_ok());
    // A BAT entry past the end of the file.
    let mut d = base.clone();
    d[bat..bat + 8].copy_from_slice(&((1u64 << 40) | 6).to_le_bytes());
    let e = open(&d).unwrap_err();
    assert!(
        matches!(&e, EvidenceError::Truncated { offset, .. } if *offset == bat as u64),
        "{e}"
    );
    // A BAT entry pointing into the header section / the BAT itself.
    for target in [0u64, bat as u64] {
        let mut d = base.clone();
        d[bat..bat + 8].copy_from_slice(&(target | 6).to_le_bytes());
        let e = open(&d).unwrap_err().to_string();
        assert!(e.contains("overlaps the file's structures"), "{e}");
    }
    // Undefined state 4: an error when read, naming the entry.
    let mut d = base.clone();
    d[bat..bat + 8].copy_from_slice(&4u64.to_le_bytes());
    let ev = open(&d).unwrap();
    let mut b = [0u8; 512];
    let e = ev.read_at(0, &mut b).unwrap_err().to_string();
    assert!(e.contains("undefined state 4"), "{e}");
    // A huge virtual size: the BAT cannot hold it, nothing is allocated.
    let vs = meta_item(&base, 0x24);
    for (v, why) in [(u64::MAX, "exceeds 64 TiB"), (60u64 << 40, "cannot hold")] {
        let mut d = base.clone();
        d[vs..vs + 8].copy_from_slice(&v.to_le_bytes());
        let e = open(&d).unwrap_err().to_string();
        assert!(e.contains(why), "{e}");
    }
    // Bad block size.
    let fp = meta_item(&base, 0x37);
    let mut d = base.clone();
    d[fp..fp + 4].copy_from_slice(&(3u32 << 20).to_le_bytes());
    assert!(open(&d).unwrap_err().to_string().contains("block size"));
    // Has a parent: refused clearly.
    let mut d = base.clone();
    d[fp + 4] |= 2;
    let e = open(&d).unwrap_err();
    assert!(matches!(e, EvidenceError::Unsupported { .. }), "{e}");
    // Both headers damaged.
    let mut d = base.clone();
    d[(64 << 10) + 20] ^= 1;
    d[(128 << 10) + 20] ^= 1;
    assert!(
        open(&d)
            .unwrap_err()
            .to_string()
            .contains("no valid VHDX header")
    );
    // One header damaged: the other is used.
    let mut d = base.clone();
    d[(128 << 10) + 20] ^= 1;
    assert!(open(&d).is_ok());
    // First region table damaged: the second is used; both: an error.
    let mut d = base.clone();
    d[(192 << 10) + 100] ^= 1;
    assert!(open(&d).is_ok());
    d[(256 << 10) + 100] ^= 1;
    assert!(open(&d).unwrap_err().to_string().contains("region table"));
    // Metadata signature.
    let mut d = base.clone();
    d[meta] ^= 1;
    assert!(open(&d).unwrap_err().to_string().contains("metadata"));
    // Truncation anywhere: no panic.
    for cut in (0..base.len()).step_by(base.len() / 97) {
        if let Ok(ev) = open(&base[..cut]) {
            let mut b = vec![0u8; ev.size() as usize];
            let _ = ev.read_exact_at(0, &mut b);
        }
    }
    // A log GUID without a valid entry: an empty log, the disk as it is.
    let mut d = base.clone();
    for h in [64usize << 10, 128 << 10] {
        d[h + 48..h + 64].fill(7);
    }
    fix_crcs(&mut d);
    let ev = open(&d).unwrap();
    assert!(ev.info().metadata["vhdx.log"].starts_with("empty"));
    assert!(read_all(&ev, 1 << 20)[..raw.len()] == raw);
}
