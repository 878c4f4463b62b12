//! exFAT against fiwalk/TSK on the corpora images, plus fuzzing. No
//! userspace tool writes files into exFAT here (mkfs.exfat only formats;
//! mtools do not speak exFAT), so content checks rely on the corpora.

use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use trawl_fs::{Alloc, Entry, FileSystemListing, FsKind, list_image, read_content};

mod tsk_unalloc;

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn load(file: &str) -> Option<Vec<u8>> {
    let src = corpora().join("dfir-ntfs-test-data/test_data").join(file);
    if !src.exists() {
        return None;
    }
    let mut v = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(src).unwrap())
        .read_to_end(&mut v)
        .unwrap();
    Some(v)
}

#[derive(Debug)]
struct Fw {
    path: String,
    inode: u64,
    size: u64,
    md5: Option<String>,
    alloc: bool,
    name_type: String,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn tag(block: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let i = block.find(&open)? + open.len();
    let j = block[i..].find(&format!("</{name}>"))? + i;
    Some(unescape(&block[i..j]))
}

/// Where fiwalk's DFXML for `img` goes: a temporary folder, never beside
/// the image (the corpora are read-only).
fn fiwalk_xml(img: &Path) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trawl-fs-fiwalk-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let name = img.display().to_string().replace(['/', '\\'], "_");
    d.join(format!("{name}.xml"))
}

fn fiwalk(img: &Path) -> Vec<Fw> {
    let xml = fiwalk_xml(img);
    let _ = std::fs::remove_file(&xml);
    let st = Command::new("fiwalk")
        .arg("-X")
        .arg(&xml)
        .arg(img)
        .output()
        .unwrap();
    assert!(st.status.success(), "fiwalk failed: {st:?}");
    let text = std::fs::read_to_string(&xml).unwrap();
    let mut out = Vec::new();
    for block in text.split("<fileobject>").skip(1) {
        let block = block.split("</fileobject>").next().unwrap();
        let body = match block.find("</parent_object>") {
            Some(i) => &block[i..],
            None => block,
        };
        let path = tag(body, "filename").unwrap_or_default();
        let last = path.rsplit('/').next().unwrap_or("");
        if last == "." || last == ".." {
            continue;
        }
        let md5 = body
            .find("<hashdigest type='md5'>")
            .map(|i| body[i + 23..i + 55].to_string());
        out.push(Fw {
            path,
            inode: tag(body, "inode").and_then(|s| s.parse().ok()).unwrap_or(0),
            size: tag(body, "filesize")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            md5,
            alloc: tag(body, "alloc").as_deref() == Some("1"),
            name_type: tag(body, "name_type").unwrap_or_default(),
        });
    }
    out
}

fn md5_of(img: &dyn trawl_evidence::Evidence, e: &Entry) -> Option<String> {
    let mut h = Md5::new();
    read_content(img, &e.content, |b| h.update(b)).ok()?;
    Some(hex::encode(h.finalize()))
}

fn compare(img_path: &Path, fs: &FileSystemListing) -> (usize, Vec<String>) {
    let img = trawl_evidence::open(img_path).unwrap();
    let mut ours: BTreeMap<(String, u64), Vec<&Entry>> = BTreeMap::new();
    for e in &fs.entries {
        ours.entry((e.path.clone(), e.inode)).or_default().push(e);
    }
    let mut diffs = Vec::new();
    let mut equal = 0;
    for f in fiwalk(img_path) {
        let key = (f.path.clone(), f.inode);
        let Some(e) = ours.get_mut(&key).and_then(|v| v.pop()) else {
            diffs.push(format!(
                "missing: {} inode {} size {}",
                f.path, f.inode, f.size
            ));
            continue;
        };
        if ours.get(&key).is_some_and(|v| v.is_empty()) {
            ours.remove(&key);
        }
        let mut bad = Vec::new();
        if e.size != f.size {
            bad.push(format!("size {} vs fiwalk {}", e.size, f.size));
        }
        if (e.alloc == Alloc::Allocated) != f.alloc && f.name_type != "-" {
            bad.push(format!("alloc {:?} vs fiwalk alloc={}", e.alloc, f.alloc));
        }
        if let Some(m) = &f.md5 {
            let our = md5_of(&*img, e);
            if our.as_deref() != Some(m.as_str()) {
                bad.push(format!("md5 {our:?} vs fiwalk {m}"));
            }
        }
        if bad.is_empty() {
            equal += 1;
        } else {
            diffs.push(format!("{} inode {}: {}", f.path, f.inode, bad.join("; ")));
        }
    }
    for ((p, i), v) in ours {
        for _ in v {
            diffs.push(format!("extra: {p} inode {i}"));
        }
    }
    (equal, diffs)
}

fn check(file: &str, expected: &[&str]) -> Option<FileSystemListing> {
    let Some(bytes) = load(file) else {
        trawl_fixtures::skip(file, "corpus image");
        return None;
    };
    if !have("fiwalk") {
        trawl_fixtures::skip(file, "fiwalk");
        return None;
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join(file.trim_end_matches(".gz"));
    std::fs::write(&img, bytes).unwrap();
    let ev = trawl_evidence::open(&img).unwrap();
    let l = list_image(&*ev).unwrap();
    assert_eq!(l.filesystems.len(), 1, "{file}: {:?}", l.limitations);
    let fs = l.filesystems.into_iter().next().unwrap();
    assert_eq!(fs.fs, FsKind::Exfat);
    let (equal, diffs) = compare(&img, &fs);
    println!("{file}: {equal} equal, {} differing", diffs.len());
    for d in &diffs {
        println!("  {d}");
    }
    let unexpected: Vec<&String> = diffs
        .iter()
        .filter(|d| !expected.iter().any(|x| d.contains(x)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{file}: differences from fiwalk: {unexpected:#?}"
    );
    for x in expected {
        assert!(
            diffs.iter().any(|d| d.contains(x)),
            "{file}: expected difference {x:?} is gone"
        );
    }
    Some(fs)
}

#[test]
fn exfat_win() {
    check("exfat_win.raw.gz", &[]);
}

#[test]
fn win_exfat_7() {
    check("win_exfat_7.raw.gz", &[]);
}

#[test]
fn exfat_orphan() {
    check("exfat_orphan.raw.gz", &[]);
}

#[test]
fn exfat_lin_part() {
    let fs = check("exfat_lin_part.raw.gz", &[]);
    if let Some(fs) = fs {
        assert_eq!(fs.label.as_deref(), Some("1234567890abcde"));
    }
}

/// EFS-encrypted files on exFAT: listed with their (encrypted) bytes and
/// the `$EFS` stream file, as TSK does.
#[test]
fn exfat_encrypted() {
    check("exfat_encrypted.raw.gz", &[]);
}

/// `fls -r -p -m /` times (TZ unset) equal ours for every entry of
/// exfat_win (the 10 ms parts are not printed by fls).
#[test]
fn exfat_times_match_fls() {
    let Some(bytes) = load("exfat_win.raw.gz") else {
        trawl_fixtures::skip("exfat_times_match_fls", "exfat_win.raw.gz");
        return;
    };
    if !have("fls") {
        trawl_fixtures::skip("exfat_times_match_fls", "fls");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("exfat_win.raw");
    std::fs::write(&img, &bytes).unwrap();
    let ev = trawl_evidence::MemEvidence::new("x", bytes, false);
    let l = list_image(&ev).unwrap();
    let fs = &l.filesystems[0];
    let out = Command::new("fls")
        .args(["-r", "-p", "-m", "/"])
        .arg(&img)
        .env_remove("TZ")
        .output()
        .unwrap();
    let mut checked = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 11 {
            continue;
        }
        let inode: u64 = f[2].split('-').next().unwrap().parse().unwrap_or(0);
        let path = f[1].trim_start_matches('/');
        let Some(e) = fs
            .entries
            .iter()
            .find(|e| e.inode == inode && e.path == path)
        else {
            continue;
        };
        let t = |x: Option<trawl_fs::Timestamp>| x.map_or(0, |t| t.secs);
        let want: Vec<i64> = f[7..11].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(
            vec![
                t(e.times.atime),
                t(e.times.mtime),
                t(e.times.ctime),
                t(e.times.crtime)
            ],
            want,
            "times of {path}"
        );
        checked += 1;
    }
    assert!(checked > 500, "only {checked} entries compared");
}

/// A destroyed main boot sector: the backup boot region is used, with a
/// limitation; a changed byte in the main region: checksum limitation.
#[test]
fn exfat_backup_boot_and_checksum() {
    let Some(base) = load("exfat_lin_part.raw.gz") else {
        trawl_fixtures::skip("exfat_backup_boot_and_checksum", "exfat_lin_part.raw.gz");
        return;
    };
    let ev = trawl_evidence::MemEvidence::new("x", base.clone(), false);
    let good = list_image(&ev).unwrap();
    let n = good.filesystems[0].entries.len();
    let part = good.filesystems[0].partition_offset as usize;
    assert!(
        good.filesystems[0].limitations.is_empty(),
        "{:?}",
        good.filesystems[0].limitations
    );

    // lib.rs probes with the volume's first 4096 bytes only, which do not
    // reach the backup boot sector (sector 12): call the parser directly.
    let mut img = base.clone();
    img[part..part + 512].fill(0);
    let ev = trawl_evidence::MemEvidence::new("x", img, false);
    let len = good
        .volumes
        .iter()
        .find(|v| v.offset as usize == part)
        .unwrap()
        .length;
    let r = trawl_fs::VolumeReader::new(&ev, part as u64, len);
    let mut head = vec![0u8; 8192];
    r.read_at(0, &mut head).unwrap();
    assert!(trawl_fs::exfat::probe(&head));
    let fs = trawl_fs::exfat::list(&r).unwrap();
    assert_eq!(fs.entries.len(), n);
    assert!(
        fs.limitations.iter().any(|x| x.what.contains("backup")),
        "{:?}",
        fs.limitations
    );

    let mut img = base.clone();
    img[part + 300] ^= 0x55; // boot code: checksummed
    let ev = trawl_evidence::MemEvidence::new("x", img, false);
    let l = list_image(&ev).unwrap();
    let fs = &l.filesystems[0];
    assert_eq!(fs.entries.len(), n);
    assert!(
        fs.limitations.iter().any(|x| x.what.contains("checksum")),
        "{:?}",
        fs.limitations
    );
}

/// A fresh mkfs.exfat volume (labelled) against fiwalk: label, bitmap,
/// up-case table, virtual files.
#[test]
fn exfat_mkfs() {
    for t in ["mkfs.exfat", "fiwalk"] {
        if !have(t) {
            trawl_fixtures::skip("exfat_mkfs", t);
            return;
        }
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("x.img");
    std::fs::write(&img, vec![0u8; 32 << 20]).unwrap();
    let o = Command::new("mkfs.exfat")
        .arg("-L")
        .arg("TRAWLX")
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let ev = trawl_evidence::open(&img).unwrap();
    let l = list_image(&*ev).unwrap();
    let fs = &l.filesystems[0];
    assert_eq!(fs.label.as_deref(), Some("TRAWLX"));
    let (equal, diffs) = compare(&img, fs);
    assert!(diffs.is_empty(), "{diffs:#?}");
    assert!(equal >= 6);
}

/// The file system of `img` (the first exFAT one): unallocated space
/// against TSK's `blkls -A` (sector units); the bytes only ours and only
/// TSK's call unallocated.
fn unalloc_diff(img: &Path) -> (FileSystemListing, tsk_unalloc::Ranges, tsk_unalloc::Ranges) {
    let ev = trawl_evidence::open(img).unwrap();
    let l = list_image(&*ev).unwrap();
    let fs = l
        .filesystems
        .into_iter()
        .find(|f| f.fs == FsKind::Exfat)
        .unwrap();
    let mut shift = [0u8];
    ev.read_exact_at(fs.partition_offset + 108, &mut shift)
        .unwrap();
    let (a, b) = tsk_unalloc::compare(img, &fs, 1 << shift[0], ev.size());
    (fs, a, b)
}

/// Unallocated space equals `blkls -A` on every exFAT corpus image (files
/// deleted, orphans, a partitioned disk, EFS-encrypted files).
#[test]
fn unallocated_vs_blkls() {
    let t = "unallocated_vs_blkls";
    if !have("blkls") {
        trawl_fixtures::skip(t, "blkls");
        return;
    }
    for f in [
        "exfat_win.raw.gz",
        "win_exfat_7.raw.gz",
        "exfat_orphan.raw.gz",
        "exfat_lin_part.raw.gz",
        "exfat_encrypted.raw.gz",
    ] {
        let Some(bytes) = load(f) else {
            trawl_fixtures::skip(t, f);
            return;
        };
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join(f.trim_end_matches(".gz"));
        std::fs::write(&img, bytes).unwrap();
        let (fs, a, b) = unalloc_diff(&img);
        assert!(
            a.is_empty() && b.is_empty(),
            "{f}: only ours {a:?}, only TSK {b:?}"
        );
        assert!(!fs.unallocated.is_empty(), "{f}");
    }
}

/// A fresh mkfs.exfat volume whose allocation bitmap is then edited as
/// writing and deleting files would leave it (no tool here writes files
/// into exFAT): clusters 10-299 taken, then runs inside them freed again,
/// across byte boundaries. Equal to `blkls -A` before and after; an image
/// cut inside the bitmap gives a limitation and nothing past the cut.
#[test]
fn unallocated_mkfs_with_freed_clusters() {
    let t = "unallocated_mkfs_with_freed_clusters";
    for tool in ["mkfs.exfat", "blkls"] {
        if !have(tool) {
            trawl_fixtures::skip(t, tool);
            return;
        }
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("x.img");
    std::fs::write(&img, vec![0u8; 40 << 20]).unwrap();
    let o = Command::new("mkfs.exfat").arg(&img).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    let (fs, a, b) = unalloc_diff(&img);
    assert!(a.is_empty() && b.is_empty(), "fresh: {a:?} {b:?}");
    let bm = fs
        .entries
        .iter()
        .find(|e| e.path == "$ALLOC_BITMAP")
        .unwrap()
        .content
        .image_runs()[0]
        .0 as usize;
    let mut bytes = std::fs::read(&img).unwrap();
    let mut set = |c: usize, on: bool| {
        let (i, bit) = (bm + (c - 2) / 8, 1u8 << ((c - 2) % 8));
        if on {
            bytes[i] |= bit;
        } else {
            bytes[i] &= !bit;
        }
    };
    (10..300).for_each(|c| set(c, true));
    for (s, e) in [(13, 14), (30, 47), (64, 65), (100, 180), (299, 300)] {
        (s..e).for_each(|c| set(c, false));
    }
    std::fs::write(&img, &bytes).unwrap();
    let (fs2, a, b) = unalloc_diff(&img);
    assert!(a.is_empty() && b.is_empty(), "edited: {a:?} {b:?}");
    assert!(fs2.unallocated.len() >= 6, "{:?}", fs2.unallocated);
    assert!(tsk_unalloc::bytes(&fs2.unallocated) < tsk_unalloc::bytes(&fs.unallocated));
    // Cut inside the bitmap.
    let cut = bm + 20;
    let ev = trawl_evidence::MemEvidence::new("cut", bytes[..cut].to_vec(), false);
    let l = list_image(&ev).unwrap();
    let f = &l.filesystems[0];
    tsk_unalloc::assert_well_formed(f, cut as u64);
    assert!(
        f.limitations
            .iter()
            .any(|x| x.structure == "exFAT allocation bitmap"),
        "{:?}",
        f.limitations
    );
}

/// Random byte changes in the boot region, FAT and directory clusters of
/// the exFAT corpus images: no panic, no hang. `TRAWL_FUZZ_SECS` for long
/// runs.
#[test]
fn fuzz_exfat_metadata() {
    let secs: u64 = std::env::var("TRAWL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut imgs = Vec::new();
    for f in [
        "win_exfat_7.raw.gz",
        "exfat_win.raw.gz",
        "exfat_orphan.raw.gz",
        "exfat_encrypted.raw.gz",
    ] {
        match load(f) {
            Some(v) => imgs.push(v),
            None => {
                trawl_fixtures::skip("fuzz_exfat_metadata", f);
                return;
            }
        }
    }
    let start = std::time::Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut cases = 0u64;
    loop {
        if (secs == 0 && cases >= 250) || (secs > 0 && start.elapsed().as_secs() >= secs) {
            break;
        }
        let base = &imgs[(rnd() % imgs.len() as u64) as usize];
        let mut img = base.clone();
        let u32at = |o: usize| {
            u32::from_le_bytes([base[o], base[o + 1], base[o + 2], base[o + 3]]) as usize
        };
        let ss = 1usize << base[108].min(12);
        let cs = ss << base[109].min(8);
        let fat = u32at(80) * ss;
        let heap = u32at(88) * ss;
        let root = heap + (u32at(96).saturating_sub(2)) * cs;
        let ranges = [
            (0, 12 * ss),
            (fat, fat + 4096),
            (heap, (heap + 64 * cs).min(base.len())),
            (root.min(base.len()), (root + cs).min(base.len())),
        ];
        for _ in 0..1 + rnd() % 16 {
            let (a, b) = ranges[(rnd() % ranges.len() as u64) as usize];
            if b <= a {
                continue;
            }
            let o = a + (rnd() % (b - a) as u64) as usize;
            if rnd() % 2 == 0 {
                img[o] ^= 1 << (rnd() % 8);
            } else {
                img[o] = rnd() as u8;
            }
        }
        let ev = trawl_evidence::MemEvidence::new("f", img, false);
        let l = list_image(&ev).unwrap();
        for fs in &l.filesystems {
            tsk_unalloc::assert_well_formed(fs, base.len() as u64);
            for e in &fs.entries {
                let _ = read_content(&ev, &e.content, |_| {});
            }
        }
        cases += 1;
    }
    println!(
        "fuzz_exfat_metadata: {cases} cases in {:?}",
        start.elapsed()
    );
}
