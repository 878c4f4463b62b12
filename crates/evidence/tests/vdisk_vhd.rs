//! VHD reader tests: differential against `qemu-img` (raw images with
//! random contents converted to every VHD subformat qemu writes, then the
//! virtual disk compared with the raw and with `qemu-img convert -O raw`),
//! the reference corpora, differencing chains built here (qemu cannot
//! create VHD differencing disks, and reads them as if they had no parent),
//! and hostile input (seeded mutations with a per-case deadline;
//! `TRAWL_FUZZ_SECS=N` for a long run).

mod vdisk_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trawl_evidence::vdisk::vhd::VhdEvidence;
use trawl_evidence::{Evidence, EvidenceError, Format};
use vdisk_common::{MIB, Rng, have_qemu, md5_hex, random_disk, read_all, read_threaded};

fn corpora() -> Option<PathBuf> {
    let dir = std::env::var_os("TRAWL_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"));
    dir.is_dir().then_some(dir)
}

fn qemu(args: &[&str]) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `qemu-img convert -O raw` of `src`, read back.
fn qemu_raw(src: &Path, fmt: &str, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!(
        "{}.qemu.raw",
        src.file_name().unwrap().to_string_lossy()
    ));
    qemu(&[
        "convert",
        "-f",
        fmt,
        "-O",
        "raw",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let v = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    v
}

/// Checks a VHD against the expected virtual disk (the raw, zero-padded to
/// the virtual size) and against qemu's conversion of it.
fn check(vhd: &Path, raw: &[u8], dir: &Path) -> Arc<dyn Evidence> {
    let ev: Arc<dyn Evidence> = Arc::new(VhdEvidence::open(&[vhd.to_path_buf()]).unwrap());
    let reference = qemu_raw(vhd, "vpc", dir);
    assert_eq!(ev.size(), reference.len() as u64, "{}", vhd.display());
    assert!(reference.len() >= raw.len());
    assert!(reference[..raw.len()] == *raw, "qemu's output is the raw");
    assert!(reference[raw.len()..].iter().all(|&b| b == 0));
    let want = md5_hex(&reference);
    assert_eq!(md5_hex(&read_all(&*ev, 1 << 20)), want, "{}", vhd.display());
    assert_eq!(md5_hex(&read_all(&*ev, 4093)), want);
    let reference = Arc::new(reference);
    assert_eq!(md5_hex(&read_threaded(&ev, &reference, 7)), want);
    assert_eq!(ev.info().format, Format::Vhd);
    assert_eq!(ev.info().bytes_per_sector, 512);
    ev
}

fn convert(raw: &Path, out: &Path, opts: &str) {
    qemu(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vpc",
        "-o",
        opts,
        raw.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
}

#[test]
fn qemu_subformats() {
    if !have_qemu("qemu_subformats") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 4212736 bytes is exactly a CHS geometry (121/4/17); 3000000 is not a
    // whole number of sectors (qemu rounds it up to a geometry, or to a
    // sector with force_size); 5000192 is whole sectors but no geometry.
    for (i, size) in [4_212_736usize, 3_000_000, 5_000_192]
        .into_iter()
        .enumerate()
    {
        let raw = random_disk(size, 100 + i as u64);
        let rp = dir.path().join(format!("d{i}.raw"));
        std::fs::write(&rp, &raw).unwrap();
        for opts in [
            "subformat=dynamic",
            "subformat=fixed",
            "subformat=dynamic,force_size=on",
            "subformat=fixed,force_size=on",
        ] {
            let vp = dir
                .path()
                .join(format!("d{i}-{}.vhd", opts.replace([',', '='], "_")));
            convert(&rp, &vp, opts);
            let ev = check(&vp, &raw, dir.path());
            let m = &ev.info().metadata;
            let fixed = opts.contains("fixed");
            assert_eq!(m["vhd.disk_type"], if fixed { "fixed" } else { "dynamic" });
            let force = opts.contains("force_size");
            assert_eq!(m["vhd.creator_app"], if force { "qem2" } else { "qemu" });
            if force || size == 4_212_736 {
                assert_eq!(ev.size(), size.next_multiple_of(512) as u64, "{opts}");
            }
            if !fixed {
                assert_eq!(m["vhd.block_size"], "2097152");
            }
            assert!(m.contains_key("vhd.unique_id"));
            assert!(m.contains_key("vhd.timestamp"));
            assert!(m.contains_key("vhd.geometry"));
        }
    }
}

/// A 256 MiB virtual disk with a few islands of data: unallocated blocks
/// cost nothing.
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
    for opts in ["subformat=dynamic,force_size=on", "subformat=dynamic"] {
        let vp = dir.path().join("big.vhd");
        convert(&rp, &vp, opts);
        assert!(std::fs::metadata(&vp).unwrap().len() < 20 * MIB);
        let ev = VhdEvidence::open(std::slice::from_ref(&vp)).unwrap();
        let reference = qemu_raw(&vp, "vpc", dir.path());
        assert_eq!(ev.size(), reference.len() as u64);
        assert!(reference[..size.min(reference.len())] == raw[..size.min(reference.len())]);
        let t = Instant::now();
        assert_eq!(md5_hex(&read_all(&ev, 4 << 20)), md5_hex(&reference));
        println!("{opts}: 256 MiB read in {:?}", t.elapsed());
        std::fs::remove_file(&vp).unwrap();
    }
}

// ---------------------------------------------------------------------------
// A small VHD writer for differencing disks (qemu cannot make them).

fn checksum(b: &[u8], field: usize) -> u32 {
    let mut s = 0u32;
    for (i, &x) in b.iter().enumerate() {
        if !(field..field + 4).contains(&i) {
            s = s.wrapping_add(u32::from(x));
        }
    }
    !s
}

/// Recomputes the checksums of the footer at 0 and at the end, and of the
/// dynamic header at 512 (when they carry their signatures).
fn fix_checksums(img: &mut [u8]) {
    let n = img.len();
    let mut ats = vec![];
    if n >= 512 && &img[..8] == b"conectix" {
        ats.push(0);
    }
    if n >= 512 && &img[n - 512..n - 504] == b"conectix" {
        ats.push(n - 512);
    }
    for at in ats {
        let c = checksum(&img[at..at + 512], 64);
        img[at + 64..at + 68].copy_from_slice(&c.to_be_bytes());
    }
    if n >= 1536 && &img[512..520] == b"cxsparse" {
        let c = checksum(&img[512..1536], 36);
        img[548..552].copy_from_slice(&c.to_be_bytes());
    }
}

struct Diff<'a> {
    uid: u8,
    parent_uid: [u8; 16],
    parent_name: &'a str,
    block_size: u32,
    size: u64,
    /// Per block: absent, or (data, bitmap).
    blocks: Vec<Option<(Vec<u8>, Vec<u8>)>>,
    disk_type: u32,
}

fn build(d: &Diff) -> Vec<u8> {
    let mut foot = [0u8; 512];
    foot[0..8].copy_from_slice(b"conectix");
    foot[8..12].copy_from_slice(&2u32.to_be_bytes());
    foot[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    foot[16..24].copy_from_slice(&512u64.to_be_bytes());
    foot[28..32].copy_from_slice(b"win ");
    foot[36..40].copy_from_slice(b"Wi2k");
    foot[40..48].copy_from_slice(&d.size.to_be_bytes());
    foot[48..56].copy_from_slice(&d.size.to_be_bytes());
    foot[56..60].copy_from_slice(&[0xff, 0xff, 16, 255]);
    foot[60..64].copy_from_slice(&d.disk_type.to_be_bytes());
    foot[68..84].fill(d.uid);
    let mut h = [0u8; 1024];
    h[0..8].copy_from_slice(b"cxsparse");
    h[8..16].fill(0xff);
    h[16..24].copy_from_slice(&1536u64.to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&(d.blocks.len() as u32).to_be_bytes());
    h[32..36].copy_from_slice(&d.block_size.to_be_bytes());
    h[40..56].copy_from_slice(&d.parent_uid);
    for (i, c) in d.parent_name.encode_utf16().enumerate() {
        h[64 + 2 * i..66 + 2 * i].copy_from_slice(&c.to_be_bytes());
    }
    let bat_len = (d.blocks.len() * 4).next_multiple_of(512);
    let bitmap_len = (d.block_size as usize / 512)
        .div_ceil(8)
        .next_multiple_of(512);
    // A W2ru locator (".\name", UTF-16LE) after the BAT.
    let loc: Vec<u8> = format!(".\\{}", d.parent_name)
        .encode_utf16()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    let loc_at = 1536 + bat_len;
    if !d.parent_name.is_empty() {
        h[576..580].copy_from_slice(b"W2ru");
        h[580..584].copy_from_slice(&512u32.to_be_bytes());
        h[584..588].copy_from_slice(&(loc.len() as u32).to_be_bytes());
        h[592..600].copy_from_slice(&(loc_at as u64).to_be_bytes());
    }
    let mut img = foot.to_vec();
    img.extend_from_slice(&h);
    let mut bat = vec![0xffu8; bat_len];
    let mut body = loc.clone();
    body.resize(512, 0);
    let mut next = loc_at + 512;
    for (i, b) in d.blocks.iter().enumerate() {
        if let Some((data, bitmap)) = b {
            bat[i * 4..i * 4 + 4].copy_from_slice(&((next / 512) as u32).to_be_bytes());
            let mut bm = bitmap.clone();
            bm.resize(bitmap_len, 0);
            body.extend_from_slice(&bm);
            body.extend_from_slice(data);
            next += bitmap_len + data.len();
        }
    }
    img.extend_from_slice(&bat);
    img.extend_from_slice(&body);
    img.extend_from_slice(&foot);
    fix_checksums(&mut img);
    img
}

fn unique_id(path: &Path) -> [u8; 16] {
    let d = std::fs::read(path).unwrap();
    let f = &d[d.len() - 512..];
    f[68..84].try_into().unwrap()
}

/// A child over `parent` (virtual contents `base`): some blocks absent,
/// some present with random bitmaps; returns the image and the expected
/// virtual disk.
fn make_child(
    base: &[u8],
    parent_uid: [u8; 16],
    parent_name: &str,
    uid: u8,
    block_size: u32,
    seed: u64,
) -> (Vec<u8>, Vec<u8>) {
    let mut r = Rng(seed);
    let bs = block_size as usize;
    let nblocks = base.len().div_ceil(bs);
    let mut want = base.to_vec();
    let mut blocks = Vec::new();
    for b in 0..nblocks {
        if r.below(3) == 0 {
            blocks.push(None);
            continue;
        }
        let mut data = vec![0u8; bs];
        r.fill(&mut data);
        let sectors = bs / 512;
        let mut bitmap = vec![0u8; sectors.div_ceil(8)];
        let mode = r.below(3);
        for s in 0..sectors {
            let set = match mode {
                0 => true,
                1 => r.below(2) == 0,
                _ => (s / 7) % 2 == 0,
            };
            if set {
                bitmap[s / 8] |= 0x80 >> (s % 8);
                let at = b * bs + s * 512;
                if at < want.len() {
                    let end = (at + 512).min(want.len());
                    want[at..end].copy_from_slice(&data[s * 512..s * 512 + end - at]);
                }
            }
        }
        blocks.push(Some((data, bitmap)));
    }
    let img = build(&Diff {
        uid,
        parent_uid,
        parent_name,
        block_size,
        size: base.len() as u64,
        blocks,
        disk_type: 4,
    });
    (img, want)
}

/// Differencing disks over qemu-made dynamic and fixed parents, and a
/// chain of two, against the expected overlay.
#[test]
fn differencing_chains() {
    if !have_qemu("differencing_chains") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 6 * MIB as usize + 512 * 37;
    let base = random_disk(size, 55);
    let rp = dir.path().join("base.raw");
    std::fs::write(&rp, &base).unwrap();
    for (k, opts) in [
        "subformat=dynamic,force_size=on",
        "subformat=fixed,force_size=on",
    ]
    .into_iter()
    .enumerate()
    {
        let pp = dir.path().join(format!("parent{k}.vhd"));
        convert(&rp, &pp, opts);
        let pname = pp.file_name().unwrap().to_str().unwrap().to_string();
        let (child, want1) = make_child(&base, unique_id(&pp), &pname, 0xc1, 1 << 20, 1 + k as u64);
        let cp = dir.path().join(format!("child{k}.vhd"));
        std::fs::write(&cp, &child).unwrap();
        let (gchild, want2) = make_child(
            &want1,
            [0xc1; 16],
            &format!("child{k}.vhd"),
            0xc2,
            512 << 10,
            9,
        );
        let gp = dir.path().join(format!("grandchild{k}.vhd"));
        std::fs::write(&gp, &gchild).unwrap();

        // The child alone is refused, naming its parent.
        let e = VhdEvidence::open(std::slice::from_ref(&cp)).unwrap_err();
        match &e {
            EvidenceError::MissingSegment { expected, path, .. } => {
                assert_eq!(expected, &pname);
                assert_eq!(path, &cp);
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("not given as evidence"), "{e}");

        let noise = dir.path().join("base.raw");
        let ev: Arc<dyn Evidence> =
            Arc::new(VhdEvidence::open(&[cp.clone(), noise.clone(), pp.clone()]).unwrap());
        assert_eq!(ev.info().segments, vec![cp.clone(), pp.clone()]);
        let m = &ev.info().metadata;
        assert_eq!(m["vhd.disk_type"], "differencing");
        assert_eq!(m["vhd.parent_name"], pname);
        assert!(m["vhd.parent_locators"].contains(&format!("W2ru: .\\{pname}")));
        assert_eq!(md5_hex(&read_all(&*ev, 1 << 20)), md5_hex(&want1));
        assert_eq!(md5_hex(&read_all(&*ev, 1000)), md5_hex(&want1));
        let want1a = Arc::new(want1.clone());
        assert_eq!(md5_hex(&read_threaded(&ev, &want1a, 3)), md5_hex(&want1));

        // Chain of two, paths in any order.
        let ev: Arc<dyn Evidence> =
            Arc::new(VhdEvidence::open(&[gp.clone(), pp.clone(), cp.clone()]).unwrap());
        assert_eq!(ev.info().segments, vec![gp.clone(), cp.clone(), pp.clone()]);
        let want2a = Arc::new(want2.clone());
        assert_eq!(md5_hex(&read_threaded(&ev, &want2a, 4)), md5_hex(&want2));
        assert_eq!(md5_hex(&read_all(&*ev, 3 << 20)), md5_hex(&want2));
        let e = VhdEvidence::open(&[gp.clone(), pp.clone()]).unwrap_err();
        assert!(
            matches!(&e, EvidenceError::MissingSegment { expected, .. } if expected == &format!("child{k}.vhd")),
            "{e}"
        );
    }
}

#[test]
fn differencing_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |uid: u8, parent: u8, name: &str| {
        build(&Diff {
            uid,
            parent_uid: [parent; 16],
            parent_name: name,
            block_size: 4096,
            size: 8192,
            blocks: vec![None, Some((vec![7u8; 4096], vec![0x0f]))],
            disk_type: 4,
        })
    };
    let a = dir.path().join("a.vhd");
    let b = dir.path().join("b.vhd");
    let c = dir.path().join("c.vhd");
    std::fs::write(&a, mk(1, 2, "b.vhd")).unwrap();
    std::fs::write(&b, mk(2, 3, "c.vhd")).unwrap();
    std::fs::write(&c, mk(3, 1, "a.vhd")).unwrap();
    let t = Instant::now();
    let e = VhdEvidence::open(&[a.clone(), b.clone(), c.clone()]).unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

// ---------------------------------------------------------------------------
// Corpora

#[test]
fn corpora_match_qemu() {
    if !have_qemu("corpora_match_qemu") {
        return;
    }
    let Some(root) = corpora() else {
        trawl_fixtures::skip("corpora_match_qemu", "../shared/corpora");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "dfvfs-test-data/test_data/ext2.vhd",
        "sleuthkit-test-data/test/data/image.vhd",
    ] {
        let p = root.join(rel);
        if !p.is_file() {
            trawl_fixtures::skip("corpora_match_qemu", rel);
            continue;
        }
        let ev = VhdEvidence::open(std::slice::from_ref(&p)).unwrap();
        let reference = qemu_raw(&p, "vpc", dir.path());
        assert_eq!(ev.size(), reference.len() as u64, "{rel}");
        assert_eq!(
            md5_hex(&read_all(&ev, 1 << 16)),
            md5_hex(&reference),
            "{rel}"
        );
        println!("{rel}: {} bytes, md5 {}", ev.size(), md5_hex(&reference));
    }
}

/// dfvfs's `image.vhd` and `image-differential.vhd` carry footer checksums
/// that do not match their footers (and the differential's dynamic header
/// checksum is wrong too): qemu refuses both ("Incorrect header checksum"),
/// and so does this reader, naming the footer. With the checksums
/// recomputed (copies in a temporary directory), `image.vhd` matches qemu,
/// and the differential needs its parent; its one block's sector bitmap
/// covers the whole virtual disk, so its contents are its own data, which
/// is what qemu (reading it without its parent) writes.
#[test]
fn corpora_dfvfs_differential() {
    if !have_qemu("corpora_dfvfs_differential") {
        return;
    }
    let Some(root) = corpora() else {
        trawl_fixtures::skip("corpora_dfvfs_differential", "../shared/corpora");
        return;
    };
    let src = root.join("dfvfs-test-data/test_data");
    let (parent, child) = (src.join("image.vhd"), src.join("image-differential.vhd"));
    if !parent.is_file() || !child.is_file() {
        trawl_fixtures::skip("corpora_dfvfs_differential", "dfvfs image.vhd");
        return;
    }
    for p in [&parent, &child] {
        let e = VhdEvidence::open(&[p.clone(), parent.clone()]).unwrap_err();
        assert!(
            matches!(&e, EvidenceError::Corrupt { .. })
                && e.to_string().contains("footer checksum"),
            "{e}"
        );
        let out = Command::new("qemu-img")
            .args(["info", p.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "qemu refuses it too");
    }
    let dir = tempfile::tempdir().unwrap();
    let fixed = |from: &Path| {
        let mut d = std::fs::read(from).unwrap();
        fix_checksums(&mut d);
        let to = dir.path().join(from.file_name().unwrap());
        std::fs::write(&to, &d).unwrap();
        (to, d)
    };
    let (pp, _) = fixed(&parent);
    let (cp, cd) = fixed(&child);
    let ev = VhdEvidence::open(std::slice::from_ref(&pp)).unwrap();
    let reference = qemu_raw(&pp, "vpc", dir.path());
    assert_eq!(md5_hex(&read_all(&ev, 4096)), md5_hex(&reference));

    // Missing parent: named.
    let e = VhdEvidence::open(std::slice::from_ref(&cp)).unwrap_err();
    assert!(
        matches!(&e, EvidenceError::MissingSegment { expected, .. } if expected == "image.vhd"),
        "{e}"
    );
    let ev = VhdEvidence::open(&[cp.clone(), pp.clone()]).unwrap();
    let m = &ev.info().metadata;
    assert_eq!(m["vhd.disk_type"], "differencing");
    assert_eq!(m["vhd.parent_name"], "image.vhd");
    assert_eq!(m["vhd.parent_unique_id"], m_uid(&pp));
    // The child's bitmap covers every sector of the virtual disk.
    let sectors = ev.size() as usize / 512;
    let bat0 = u32::from_be_bytes(cd[1536..1540].try_into().unwrap()) as usize * 512;
    assert!((0..sectors).all(|s| cd[bat0 + s / 8] & (0x80 >> (s % 8)) != 0));
    let reference = qemu_raw(&cp, "vpc", dir.path());
    assert_eq!(ev.size(), reference.len() as u64);
    assert_eq!(md5_hex(&read_all(&ev, 4096)), md5_hex(&reference));
}

fn m_uid(p: &Path) -> String {
    VhdEvidence::open(&[p.to_path_buf()])
        .unwrap()
        .info()
        .metadata["vhd.unique_id"]
        .clone()
}

// ---------------------------------------------------------------------------
// Hostile input

/// Bases for mutation: (files, index of the file to mutate, structure
/// ranges worth hitting).
struct Base {
    files: Vec<Vec<u8>>,
    hot: Vec<(usize, usize)>,
}

fn bases(dir: &Path) -> Vec<Base> {
    let mut out = Vec::new();
    // Hand-built dynamic disk with small blocks (many BAT entries).
    let mut r = Rng(77);
    let blocks: Vec<_> = (0..24)
        .map(|i| {
            (i % 3 != 0).then(|| {
                let mut d = vec![0u8; 4096];
                r.fill(&mut d);
                (d, vec![0xff; 1])
            })
        })
        .collect();
    let dynamic = build(&Diff {
        uid: 5,
        parent_uid: [0; 16],
        parent_name: "",
        block_size: 4096,
        size: 24 * 4096 - 1000,
        blocks: blocks.clone(),
        disk_type: 3,
    });
    let n = dynamic.len();
    out.push(Base {
        hot: vec![(0, 2048), (n - 512, n)],
        files: vec![dynamic.clone()],
    });
    // A differencing child over it.
    let child = build(&Diff {
        uid: 6,
        parent_uid: [5; 16],
        parent_name: "p.vhd",
        block_size: 8192,
        size: 24 * 4096 - 1000,
        blocks: (0..12)
            .map(|i| (i % 2 == 0).then(|| (vec![i as u8; 8192], vec![0x5a, 0xc3])))
            .collect(),
        disk_type: 4,
    });
    let n = child.len();
    out.push(Base {
        hot: vec![(0, 2560), (n - 512, n)],
        files: vec![child, dynamic],
    });
    // Fixed disk.
    let mut fixed = vec![0u8; 64 << 10];
    r.fill(&mut fixed);
    let mut f = build(&Diff {
        uid: 7,
        parent_uid: [0; 16],
        parent_name: "",
        block_size: 4096,
        size: 64 << 10,
        blocks: vec![],
        disk_type: 2,
    });
    let foot = f.split_off(f.len() - 512);
    fixed.extend_from_slice(&foot);
    let n = fixed.len();
    out.push(Base {
        hot: vec![(n - 512, n)],
        files: vec![fixed],
    });
    // A qemu-made dynamic disk, when qemu is there.
    if Command::new("qemu-img").arg("--version").output().is_ok() {
        let raw = random_disk(300_000, 3);
        let rp = dir.join("q.raw");
        std::fs::write(&rp, &raw).unwrap();
        let vp = dir.join("q.vhd");
        convert(&rp, &vp, "subformat=dynamic");
        let q = std::fs::read(&vp).unwrap();
        let n = q.len();
        out.push(Base {
            hot: vec![(0, 4096), (n - 512, n)],
            files: vec![q],
        });
    }
    out
}

fn mutate(base: &Base, r: &mut Rng) -> Vec<u8> {
    let mut d = base.files[0].clone();
    let n = d.len();
    for _ in 0..1 + r.below(6) {
        let at = if r.below(4) == 0 {
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
                    2 => (r.next() as u32).to_be_bytes(),
                    _ => [0x7f, 0xff, 0xff, 0xff],
                };
                let at = at & !3;
                let e = (at + 4).min(n);
                d[at..e].copy_from_slice(&v[..e - at]);
            }
            _ => {
                let at = at & !7;
                let e = (at + 8).min(n);
                let v = (1u64 << (20 + r.below(44))).to_be_bytes();
                d[at..e].copy_from_slice(&v[..e - at]);
            }
        }
    }
    if r.below(2) == 0 {
        fix_checksums(&mut d);
    }
    if r.below(8) == 0 {
        d.truncate(r.below(n as u64) as usize);
    }
    d
}

/// Opens the mutated image and reads it (all of it when small, else its
/// ends and random windows); any error is fine, a panic or a case over
/// 2 s is not.
fn fuzz_case(dir: &Path, files: Vec<Vec<u8>>, case: u64) -> bool {
    let names = ["m.vhd", "p.vhd"];
    let sub = dir.join(format!("c{}", case % 4));
    std::fs::create_dir_all(&sub).unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .zip(names)
        .map(|(d, name)| {
            let p = sub.join(name);
            std::fs::write(&p, d).unwrap();
            p
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let opened = VhdEvidence::open(&paths);
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
            worker.join().unwrap(); // re-raises the panic
            false
        }
        Err(_) => panic!("fuzz case {case} took more than 2 s"),
    }
}

/// Runs `cases` cases (or for `secs` seconds); returns (cases, opened).
fn run_fuzz(cases: Option<u64>, secs: u64) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let bases = bases(dir.path());
    let mut r = Rng(0xfeed);
    let start = Instant::now();
    let mut case = 0u64;
    let mut opened = 0u64;
    loop {
        if cases.is_some_and(|c| case >= c)
            || (cases.is_none() && start.elapsed().as_secs() >= secs)
        {
            break;
        }
        let b = &bases[(case % bases.len() as u64) as usize];
        let mut files = vec![mutate(b, &mut r)];
        files.extend(b.files[1..].iter().cloned());
        opened += u64::from(fuzz_case(dir.path(), files, case));
        case += 1;
    }
    (case, opened)
}

#[test]
fn hostile_mutations() {
    let secs: u64 = std::env::var("TRAWL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let t = Instant::now();
    let (n, opened) = if secs > 0 {
        run_fuzz(None, secs)
    } else {
        run_fuzz(Some(1000), 0)
    };
    println!(
        "vhd fuzz: {n} cases ({opened} opened) in {:.1} s, no panic, none over 2 s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        opened > n / 20,
        "the mutations should leave some images readable"
    );
}

/// Specific hostile cases: BAT entries past the end, a huge size field,
/// truncations at every structure boundary.
#[test]
fn hostile_specific() {
    let dir = tempfile::tempdir().unwrap();
    let base = build(&Diff {
        uid: 5,
        parent_uid: [0; 16],
        parent_name: "",
        block_size: 4096,
        size: 4 * 4096,
        blocks: (0..4)
            .map(|i| Some((vec![i as u8 + 1; 4096], vec![0xff])))
            .collect(),
        disk_type: 3,
    });
    let p = dir.path().join("x.vhd");
    let open = |d: &[u8]| {
        std::fs::write(&p, d).unwrap();
        VhdEvidence::open(std::slice::from_ref(&p))
    };
    let ev = open(&base).unwrap();
    assert_eq!(read_all(&ev, 4096)[4096 * 3], 4);
    // BAT entry past the end of the file.
    let mut d = base.clone();
    d[1536 + 8..1536 + 12].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
    let e = open(&d).unwrap_err();
    assert!(
        matches!(&e, EvidenceError::Truncated { offset, .. } if *offset == 1536 + 8),
        "{e}"
    );
    assert!(e.to_string().contains("BAT entry 2"), "{e}");
    // A huge current size (maximum geometry, so it is used): the BAT it
    // needs is not in the file; nothing of that size is allocated.
    let mut d = base.clone();
    let n = d.len();
    for at in [0, n - 512] {
        d[at + 48..at + 56].copy_from_slice(&(u64::MAX - 511).to_be_bytes());
    }
    d[512 + 28..512 + 32].copy_from_slice(&u32::MAX.to_be_bytes());
    fix_checksums(&mut d);
    let e = open(&d).unwrap_err();
    assert!(
        matches!(
            e,
            EvidenceError::Corrupt { .. } | EvidenceError::Truncated { .. }
        ),
        "{e}"
    );
    // The same size on a fixed disk.
    let mut d = vec![0u8; 4096];
    d.extend_from_slice(&base[n - 512..]);
    let m = d.len() - 512;
    d[m + 48..m + 56].copy_from_slice(&(1u64 << 60).to_be_bytes());
    d[m + 60..m + 64].copy_from_slice(&2u32.to_be_bytes());
    fix_checksums(&mut d);
    let e = open(&d).unwrap_err();
    assert!(e.to_string().contains("precede the footer"), "{e}");
    // Truncation anywhere: an error or a consistent (shorter) disk, never a
    // panic.
    for cut in (0..base.len()).step_by(97) {
        if let Ok(ev) = open(&base[..cut]) {
            let mut b = vec![0u8; ev.size() as usize];
            let _ = ev.read_exact_at(0, &mut b);
        }
    }
    // Unknown disk type.
    let mut d = base.clone();
    for at in [0, n - 512] {
        d[at + 60..at + 64].copy_from_slice(&9u32.to_be_bytes());
    }
    fix_checksums(&mut d);
    let e = open(&d).unwrap_err();
    assert!(e.to_string().contains("unknown disk type 9"), "{e}");
}
