//! FAT12/16/32 against fiwalk/TSK: corpora images and images built with
//! mkfs.vfat + mtools, plus fuzzing of the metadata areas.

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

fn gunzip(src: &Path, dst: &Path) {
    let f = std::fs::File::open(src).unwrap();
    let mut d = flate2::read::GzDecoder::new(f);
    let mut v = Vec::new();
    d.read_to_end(&mut v).unwrap();
    std::fs::write(dst, v).unwrap();
}

/// One fiwalk fileobject.
#[derive(Debug, Clone)]
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

/// fiwalk -X on `img`, parsed; `.`/`..` entries dropped.
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
        // The parent_object element has its own inode.
        let body = match block.find("</parent_object>") {
            Some(i) => &block[i..],
            None => block,
        };
        let path = tag(body, "filename").unwrap_or_default();
        let last = path.rsplit('/').next().unwrap_or("");
        if last == "." || last == ".." {
            continue;
        }
        let md5 = body.find("<hashdigest type='md5'>").map(|i| {
            let s = &body[i + 23..];
            s[..32].to_string()
        });
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

/// What differs between our listing and fiwalk's, one line each; and the
/// number of fiwalk objects matched exactly.
fn compare(img_path: &Path, fss: &[FileSystemListing]) -> (usize, Vec<String>) {
    let img = trawl_evidence::open(img_path).unwrap();
    let fw = fiwalk(img_path);
    let mut ours: BTreeMap<(String, u64), Vec<&Entry>> = BTreeMap::new();
    let multi = fss.len() > 1;
    let mut keyed = Vec::new();
    for (i, fs) in fss.iter().enumerate() {
        for e in &fs.entries {
            let p = if multi {
                format!("{i}:{}", e.path)
            } else {
                e.path.clone()
            };
            keyed.push((p, e));
        }
    }
    for (p, e) in &keyed {
        ours.entry((p.clone(), e.inode)).or_default().push(e);
    }
    // fiwalk numbers partitions; map in order of appearance.
    let mut diffs = Vec::new();
    let mut equal = 0;
    let mut part_of = Vec::new();
    {
        // Partition index per fileobject: fiwalk's <partition> element.
        let text = std::fs::read_to_string(fiwalk_xml(img_path)).unwrap();
        let mut parts: Vec<String> = Vec::new();
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
            let p = tag(body, "partition").unwrap_or_default();
            if !parts.contains(&p) {
                parts.push(p.clone());
            }
            part_of.push(parts.iter().position(|x| *x == p).unwrap());
        }
    }
    for (f, part) in fw.iter().zip(part_of) {
        let p = if multi {
            format!("{part}:{}", f.path)
        } else {
            f.path.clone()
        };
        let Some(v) = ours.get_mut(&(p.clone(), f.inode)) else {
            diffs.push(format!("missing: {p} inode {} size {}", f.inode, f.size));
            continue;
        };
        let Some(e) = v.pop() else {
            diffs.push(format!("missing (dup): {p} inode {}", f.inode));
            continue;
        };
        if v.is_empty() {
            ours.remove(&(p.clone(), f.inode));
        }
        let mut bad = Vec::new();
        if e.size != f.size {
            bad.push(format!("size {} vs fiwalk {}", e.size, f.size));
        }
        let ours_alloc = e.alloc == Alloc::Allocated;
        if ours_alloc != f.alloc && f.name_type != "-" {
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
            diffs.push(format!("{p} inode {}: {}", f.inode, bad.join("; ")));
        }
    }
    for ((p, i), v) in ours {
        for _ in v {
            diffs.push(format!("extra: {p} inode {i}"));
        }
    }
    (equal, diffs)
}

fn check_image(name: &str, img: &Path, expected: &[&str]) -> (usize, Vec<FileSystemListing>) {
    let ev = trawl_evidence::open(img).unwrap();
    let l = list_image(&*ev).unwrap();
    let (equal, diffs) = compare(img, &l.filesystems);
    println!("{name}: {equal} equal, {} differing", diffs.len());
    for d in &diffs {
        println!("  {d}");
    }
    let unexpected: Vec<&String> = diffs
        .iter()
        .filter(|d| !expected.iter().any(|x| d.contains(x)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{name}: differences from fiwalk: {unexpected:#?}"
    );
    for x in expected {
        assert!(
            diffs.iter().any(|d| d.contains(x)),
            "{name}: expected difference {x:?} is gone"
        );
    }
    (equal, l.filesystems)
}

fn corpus_image(test: &str, file: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let src = corpora().join("dfir-ntfs-test-data/test_data").join(file);
    if !src.exists() {
        trawl_fixtures::skip(test, &format!("corpus file {file}"));
        return None;
    }
    if !have("fiwalk") {
        trawl_fixtures::skip(test, "fiwalk");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join(file.trim_end_matches(".gz"));
    gunzip(&src, &dst);
    Some((dir, dst))
}

macro_rules! corpus_test {
    ($fn:ident, $file:expr, $kind:expr, [$($exp:expr),*]) => {
        #[test]
        fn $fn() {
            let Some((_d, img)) = corpus_image(stringify!($fn), $file) else { return };
            let (_, fss) = check_image($file, &img, &[$($exp),*]);
            assert_eq!(fss.len(), 1);
            assert_eq!(fss[0].fs, $kind);
        }
    };
}

corpus_test!(fat12_corpus, "fat12.raw.gz", FsKind::Fat12, []);
corpus_test!(fat16_corpus, "fat16.raw.gz", FsKind::Fat16, []);
corpus_test!(fat16_moved, "fat16_moved.raw.gz", FsKind::Fat16, []);
corpus_test!(fat32_loop, "fat32_loop.raw.gz", FsKind::Fat32, []);
corpus_test!(fat_deleted_dir, "fat_deleted_dir.raw.gz", FsKind::Fat32, []);
corpus_test!(
    fat_deleted_dir_2,
    "fat_deleted_dir_2.raw.gz",
    FsKind::Fat16,
    []
);
corpus_test!(fat_dir, "fat_dir.raw.gz", FsKind::Fat16, []);
corpus_test!(fat_lfn_test, "fat_lfn_test.raw.gz", FsKind::Fat32, []);
corpus_test!(fat_noloop, "fat_noloop.raw.gz", FsKind::Fat16, []);
corpus_test!(
    fat_unusual_cluster,
    "fat_unusual_cluster.raw.gz",
    FsKind::Fat12,
    []
);
corpus_test!(
    fat_unusual_label,
    "fat_unusual_label.raw.gz",
    FsKind::Fat12,
    []
);

fn dftt(test: &str, zip: &str) -> Option<tempfile::TempDir> {
    let src = corpora().join("sleuthkit-dftt/from_brian").join(zip);
    if !src.exists() {
        trawl_fixtures::skip(test, &format!("corpus file {zip}"));
        return None;
    }
    for t in ["fiwalk", "unzip"] {
        if !have(t) {
            trawl_fixtures::skip(test, t);
            return None;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("unzip")
        .arg("-oq")
        .arg(&src)
        .arg("-d")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    Some(dir)
}

fn find<'a>(fs: &'a FileSystemListing, path: &str) -> &'a Entry {
    fs.entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("{path} not listed"))
}

fn md5_entry(img: &Path, e: &Entry) -> String {
    let ev = trawl_evidence::open(img).unwrap();
    md5_of(&*ev, e).unwrap()
}

/// DFTT #6: every deleted file of the answer key is found deleted; the
/// unfragmented ones with the published MD5, the fragmented ones with the
/// MD5 the key gives for a tool that assumes consecutive clusters (TSK's
/// rule, which trawl follows so its content matches icat).
#[test]
fn dftt6_fat_undelete() {
    let Some(d) = dftt("dftt6_fat_undelete", "6-undel-fat.zip") else {
        return;
    };
    let img = d.path().join("6-undel-fat/6-fat-undel.dd");
    let (_, fss) = check_image("6-fat-undel", &img, &[]);
    let fs = &fss[0];
    assert_eq!(fs.fs, FsKind::Fat16);
    // Deleted names lose their first character; dir2 and frag3.dat were
    // not deleted themselves (their directory was).
    let key = [
        ("_ing.dat", 780, "59b20779f69ff9f0ac5fcd2c38835a79"),
        ("_ult1.dat", 3801, "ffd27bd782bdce67750b6b9ee069d2ef"),
        ("_rag1.dat", 1584, "c4f3b9a0f17d464f4fc61b94ecf6cc21"),
        ("_rag2.dat", 3873, "965370acfa85aa7e26ab04bbd45cdcae"),
        ("_ir1/mult2.dat", 1715, "59cf0e9cd107bc1e75afb7374f6e05bb"),
        (
            "_ir1/dir2/frag3.dat",
            2027,
            "a7a14ac62f79fdea4056ed5e8bcf97ef",
        ),
    ];
    for (want, size, md5) in key {
        let e = find(fs, want);
        assert_eq!(e.alloc, Alloc::Deleted, "{want}");
        assert_eq!(e.size, size, "{want}");
        assert_eq!(md5_entry(&img, e), md5, "{want}");
    }
}

/// DFTT #9: volume label entries that own clusters are listed with their
/// content (TSK's " (Volume Label Entry)" names), the label is the root
/// directory's.
#[test]
fn dftt9_fat_label() {
    let Some(d) = dftt("dftt9_fat_label", "9-fat-label.zip") else {
        return;
    };
    let img = d.path().join("9-fat-label/9-fat-label.dd");
    let (_, fss) = check_image("9-fat-label", &img, &[]);
    let fs = &fss[0];
    assert_eq!(fs.label.as_deref(), Some("LABEL2"));
    for (p, md5) in [
        (
            "LABEL2      (Volume Label Entry)",
            "8071eeaa52cd372a9bbb093e348e605c",
        ),
        (
            "dir1/FILE2   DLL (Volume Label Entry)",
            "8aeca328aa6fbb7d2ec01f8c2f3e4bbd",
        ),
    ] {
        let e = find(fs, p);
        assert_eq!(md5_entry(&img, e), md5, "{p}");
    }
}

#[test]
fn dftt2_fat_keyword() {
    let Some(d) = dftt("dftt2_fat_keyword", "2-kwsrch-fat.zip") else {
        return;
    };
    check_image(
        "2-kwsrch-fat",
        &d.path().join("2-kwsrch-fat/fat-img-kw.dd"),
        &[],
    );
}

/// DFTT #5: FAT times are local times; TSK (TZ unset) and trawl print them
/// as UTC.
#[test]
fn dftt5_fat_daylight() {
    let Some(d) = dftt("dftt5_fat_daylight", "5-fat-daylight.zip") else {
        return;
    };
    let img = d.path().join("5-fat-daylight/daylight.dd");
    let (_, fss) = check_image("5-fat-daylight", &img, &[]);
    compare_times(&img, &fss[0]);
}

/// `fls -r -p -m /` times (TZ unset) against ours, for every entry fls
/// prints with a matching inode.
fn compare_times(img: &Path, fs: &FileSystemListing) {
    let out = Command::new("fls")
        .args(["-r", "-p", "-m", "/"])
        .arg(img)
        .env_remove("TZ")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut checked = 0;
    for line in text.lines() {
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
        let (a, m, c, b): (i64, i64, i64, i64) = (
            f[7].parse().unwrap(),
            f[8].parse().unwrap(),
            f[9].parse().unwrap(),
            f[10].parse().unwrap(),
        );
        assert_eq!(
            (
                t(e.times.atime),
                t(e.times.mtime),
                t(e.times.ctime),
                t(e.times.crtime)
            ),
            (a, m, c, b),
            "times of {path}"
        );
        checked += 1;
    }
    assert!(checked > 0, "no times compared");
}

/// DFTT #1: six FAT16 partitions, the third in the second extended table.
#[test]
fn dftt1_extended_partitions() {
    let Some(d) = dftt("dftt1_extended_partitions", "1-extend-part.zip") else {
        return;
    };
    let img = d.path().join("1-extend-part/ext-part-test-2.dd");
    // This image's first extended boot record holds two logical
    // partitions and links to the next EBR in its third entry: all four
    // entries are read, so all six partitions are found.
    let (_, fss) = check_image("1-extend-part", &img, &[]);
    assert_eq!(fss.len(), 6);
    assert!(fss.iter().all(|f| f.fs == FsKind::Fat16));
    // The partition layout equals mmls' (TSK).
    if have("mmls") {
        let out = Command::new("mmls").arg(&img).output().unwrap();
        let mmls: Vec<u64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("DOS FAT16"))
            .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
            .map(|s| s * 512)
            .collect();
        let mut ours: Vec<u64> = fss.iter().map(|f| f.partition_offset).collect();
        ours.sort_unstable();
        let mut mmls = mmls;
        mmls.sort_unstable();
        assert_eq!(ours, mmls, "partition offsets vs mmls");
    }
}

#[test]
fn fat32_full_test() {
    let test = "fat32_full_test";
    let src = corpora().join("dfir-ntfs-test-data/test_data/fat32_full_test.tgz");
    if !src.exists() || !have("fiwalk") || !have("tar") {
        trawl_fixtures::skip(test, "fat32_full_test.tgz, fiwalk or tar");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&src)
        .arg("-C")
        .arg(d.path())
        .status()
        .unwrap();
    assert!(st.success());
    let img = d.path().join("fat32_full_test.raw");
    let (_, fss) = check_image(test, &img, &[]);
    assert_eq!(fss[0].fs, FsKind::Fat32);
    compare_times(&img, &fss[0]);
}

/// Volumes TSK refuses are refused too, cleanly: fat64 (a FAT32 whose total
/// sector count is 0 in the BPB) and fat32_small (2048-byte sectors, 256
/// clusters: FAT12 by count, but no root directory entries).
#[test]
fn refused_like_tsk() {
    for f in ["fat64.raw.gz", "fat32_small.raw.gz"] {
        let Some((_d, img)) = corpus_image("refused_like_tsk", f) else {
            return;
        };
        let ev = trawl_evidence::open(&img).unwrap();
        let l = list_image(&*ev).unwrap();
        assert!(l.filesystems.is_empty(), "{f}");
        assert_eq!(fiwalk(&img).len(), 0, "{f}");
    }
}

fn sh(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Deterministic file bytes.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// mkfs.vfat -F 12/16/32 images with files of many sizes, nested and
/// long/Unicode names, a fragmented file and deleted files, against fiwalk.
#[test]
fn built_images() {
    for t in ["mkfs.vfat", "mcopy", "mmd", "mdel", "fiwalk", "fls"] {
        if !have(t) {
            trawl_fixtures::skip("built_images", t);
            return;
        }
    }
    for (bits, mb, cl) in [(12u32, 4u64, 4u32), (16, 32, 4), (32, 64, 1)] {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join(format!("fat{bits}.img"));
        sh(Command::new("mkfs.vfat")
            .arg("-C")
            .arg("-F")
            .arg(bits.to_string())
            .arg("-s")
            .arg(cl.to_string())
            .arg("-n")
            .arg("TRAWLTEST")
            .arg(&img)
            .arg((mb * 1024).to_string()));
        let cs = 512 * cl as usize;
        let src = d.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let put = |name: &str, data: &[u8], dest: &str| {
            let p = src.join(name);
            std::fs::write(&p, data).unwrap();
            sh(Command::new("mcopy")
                .arg("-i")
                .arg(&img)
                .arg(&p)
                .arg(format!("::{dest}")));
        };
        let sizes = [0, 1, cs - 1, cs, cs + 1, 3 * cs + 7, 300_000];
        for (i, n) in sizes.iter().enumerate() {
            put(
                &format!("s{i}.bin"),
                &bytes(i as u64, *n),
                &format!("S{i}.BIN"),
            );
        }
        sh(Command::new("mmd").arg("-i").arg(&img).arg("::/dir1"));
        sh(Command::new("mmd")
            .arg("-i")
            .arg(&img)
            .arg("::/dir1/Sub Dir With Long Name"));
        put(
            "u",
            b"unicode",
            "/dir1/Sub Dir With Long Name/Ünïcödé näme — ok.txt",
        );
        put(
            "l",
            &bytes(77, 5000),
            "/dir1/a very long file name that needs several LFN entries.dat",
        );
        put("lower", b"lower", "/dir1/lower.txt");
        // Fragmentation: fill, delete every other, write a big file.
        for i in 0..12 {
            put(
                &format!("f{i}"),
                &bytes(100 + i, 2 * cs),
                &format!("/F{i}.DAT"),
            );
        }
        for i in (0..12).step_by(2) {
            sh(Command::new("mdel")
                .arg("-i")
                .arg(&img)
                .arg(format!("::/F{i}.DAT")));
        }
        put("big", &bytes(999, 11 * cs + 5), "/BIGFRAG.DAT");
        // Deleted files: one contiguous, one in a deleted directory.
        sh(Command::new("mmd").arg("-i").arg(&img).arg("::/gone"));
        put("g", &bytes(6, cs + 3), "/gone/inner.txt");
        sh(Command::new("mdel")
            .arg("-i")
            .arg(&img)
            .arg("::/gone/inner.txt"));
        sh(Command::new("mrd").arg("-i").arg(&img).arg("::/gone"));
        put("del", &bytes(5, 3 * cs), "/DELME.TXT");
        sh(Command::new("mdel").arg("-i").arg(&img).arg("::/DELME.TXT"));

        let (equal, fss) = check_image(&format!("fat{bits}"), &img, &[]);
        assert!(equal >= 25, "fat{bits}: only {equal} equal");
        let fs = &fss[0];
        assert_eq!(
            fs.fs,
            match bits {
                12 => FsKind::Fat12,
                16 => FsKind::Fat16,
                _ => FsKind::Fat32,
            }
        );
        assert_eq!(fs.label.as_deref(), Some("TRAWLTEST"));
        assert_eq!(fs.block_size, cs as u64);
        let big = find(fs, "BIGFRAG.DAT");
        // mtools fills the freed holes first on FAT12/16 (on FAT32 it
        // follows the FSInfo next-free hint past them).
        if let (trawl_fs::Content::Runs { runs, .. }, true) = (&big.content, bits != 32) {
            assert!(runs.len() > 1, "fat{bits}: BIGFRAG.DAT is not fragmented");
        }
        let mut h = Md5::new();
        h.update(bytes(999, 11 * cs + 5));
        assert_eq!(md5_entry(&img, big), hex::encode(h.finalize()));
        find(fs, "dir1/Sub Dir With Long Name/Ünïcödé näme — ok.txt");
        let del = fs
            .entries
            .iter()
            .find(|e| e.path == "_ELME.TXT")
            .expect("deleted file");
        assert_eq!(del.alloc, Alloc::Deleted);
        let mut h = Md5::new();
        h.update(bytes(5, 3 * cs));
        assert_eq!(md5_entry(&img, del), hex::encode(h.finalize()));
        compare_times(&img, fs);
        check_unallocated(&img);
    }
}

/// Every FAT file system of `img`: unallocated space equal to TSK's
/// `blkls -A` (512-byte sector units here), sectors after the last cluster
/// included, as TSK counts them.
fn check_unallocated(img: &Path) -> Vec<FileSystemListing> {
    let ev = trawl_evidence::open(img).unwrap();
    let l = list_image(&*ev).unwrap();
    assert!(!l.filesystems.is_empty(), "{}", img.display());
    for fs in &l.filesystems {
        let mut ss = [0u8; 2];
        ev.read_exact_at(fs.partition_offset + 11, &mut ss).unwrap();
        tsk_unalloc::assert_equal(img, fs, u16::from_le_bytes(ss).into(), ev.size());
    }
    l.filesystems
}

/// Unallocated space against `blkls -A` on the corpus images: deleted
/// files and directories (DFTT #6, fat_deleted_dir), FAT12/16/32, a chain
/// loop, an unusual cluster size, six partitions behind extended tables
/// (DFTT #1: `-o` per partition).
#[test]
fn unallocated_vs_blkls() {
    let t = "unallocated_vs_blkls";
    if !have("blkls") {
        trawl_fixtures::skip(t, "blkls");
        return;
    }
    for f in [
        "fat12.raw.gz",
        "fat16.raw.gz",
        "fat32_loop.raw.gz",
        "fat_deleted_dir.raw.gz",
        "fat_deleted_dir_2.raw.gz",
        "fat_unusual_cluster.raw.gz",
    ] {
        let Some((_d, img)) = corpus_image(t, f) else {
            return;
        };
        check_unallocated(&img);
    }
    for (zip, img) in [
        ("6-undel-fat.zip", "6-undel-fat/6-fat-undel.dd"),
        ("1-extend-part.zip", "1-extend-part/ext-part-test-2.dd"),
    ] {
        let Some(d) = dftt(t, zip) else { return };
        let fss = check_unallocated(&d.path().join(img));
        for f in &fss {
            assert!(
                !f.limitations.iter().any(|x| x.what.contains("unallocated")),
                "{img}: {:?}",
                f.limitations
            );
        }
    }
}

fn load_corpus(file: &str) -> Option<Vec<u8>> {
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

/// Lists `bytes` and reads every entry's content; returns the entry count.
fn list_all(bytes: Vec<u8>) -> usize {
    let ev = trawl_evidence::MemEvidence::new("fuzz", bytes, false);
    let l = list_image(&ev).unwrap();
    let mut n = 0;
    for fs in &l.filesystems {
        tsk_unalloc::assert_well_formed(fs, trawl_evidence::Evidence::size(&ev));
        for e in &fs.entries {
            let _ = read_content(&ev, &e.content, |_| {});
            n += 1;
        }
    }
    n
}

/// Metadata ranges of a FAT image: boot sector, FATs, root directory and
/// the first directory clusters.
fn fat_meta_ranges(img: &[u8]) -> Vec<(usize, usize)> {
    let u16at = |o: usize| u16::from_le_bytes([img[o], img[o + 1]]) as usize;
    let ss = u16at(11).max(512);
    let reserved = u16at(14);
    let numfat = img[16] as usize;
    let mut spf = u16at(22);
    if spf == 0 {
        spf = u32::from_le_bytes([img[36], img[37], img[38], img[39]]) as usize;
    }
    let fat_start = reserved * ss;
    let data = fat_start + numfat * spf * ss;
    vec![
        (0, 512),
        (fat_start, fat_start + (spf * ss).min(64 << 10)),
        (data, (data + (256 << 10)).min(img.len())),
    ]
}

/// Random byte changes in the metadata of real images: no panic, no hang.
/// `TRAWL_FUZZ_SECS` runs it for that long instead of the short CI budget.
#[test]
fn fuzz_fat_metadata() {
    let secs: u64 = std::env::var("TRAWL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut imgs = Vec::new();
    for f in [
        "fat12.raw.gz",
        "fat16.raw.gz",
        "fat_deleted_dir_2.raw.gz",
        "fat32_loop.raw.gz",
        "fat_lfn_test.raw.gz",
    ] {
        match load_corpus(f) {
            Some(v) => imgs.push(v),
            None => {
                trawl_fixtures::skip("fuzz_fat_metadata", f);
                return;
            }
        }
    }
    let start = std::time::Instant::now();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut cases = 0u64;
    loop {
        if secs == 0 && cases >= 250 {
            break;
        }
        if secs > 0 && start.elapsed().as_secs() >= secs {
            break;
        }
        // The 64 MiB FAT32 images (last two) one case in ten.
        let k = if rnd() % 10 == 0 {
            3 + (rnd() % 2) as usize
        } else {
            (rnd() % 3) as usize
        };
        let base = &imgs[k];
        let mut img = base.clone();
        let ranges = fat_meta_ranges(base);
        let flips = 1 + rnd() % 16;
        for _ in 0..flips {
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
        list_all(img);
        cases += 1;
    }
    println!("fuzz_fat_metadata: {cases} cases in {:?}", start.elapsed());
}

/// Hand-made hostile cases on a real FAT16 image: a cluster chain that
/// loops on itself, a directory whose entry points back at its parent's
/// cluster, a start cluster past the end, a size larger than the volume,
/// garbage names.
#[test]
fn hostile_fat_cases() {
    let Some(base) = load_corpus("fat16.raw.gz") else {
        trawl_fixtures::skip("hostile_fat_cases", "fat16.raw.gz");
        return;
    };
    let ev = trawl_evidence::MemEvidence::new("h", base.clone(), false);
    let l = list_image(&ev).unwrap();
    let fs = &l.filesystems[0];
    // Layout of this image.
    let u16at = |o: usize| u16::from_le_bytes([base[o], base[o + 1]]) as usize;
    let ss = u16at(11);
    let fat = u16at(14) * ss;
    let root = fat + base[16] as usize * u16at(22) * ss;
    // The first regular file with content, and the first directory.
    let file = fs
        .entries
        .iter()
        .find(|e| {
            e.kind == trawl_fs::FileType::File && e.size > 4096 && e.alloc == Alloc::Allocated
        })
        .unwrap();
    let slot = |inode: u64| root + (inode as usize - 3) * 32;
    let fslot = slot(file.inode);
    let fclust = u16at(fslot + 26);

    // 1. A chain that loops on its first cluster.
    let mut img = base.clone();
    img[fat + fclust * 2..fat + fclust * 2 + 2].copy_from_slice(&(fclust as u16).to_le_bytes());
    let ev = trawl_evidence::MemEvidence::new("h", img, false);
    let l = list_image(&ev).unwrap();
    let fs1 = &l.filesystems[0];
    assert!(
        fs1.limitations.iter().any(|x| x.what.contains("loops")),
        "{:?}",
        fs1.limitations
    );
    let e = fs1.entries.iter().find(|e| e.inode == file.inode).unwrap();
    read_content(&ev, &e.content, |_| {}).unwrap();

    // 2. Start cluster past the last cluster, size past the volume: TSK
    //    rejects the entry as a directory entry.
    let mut img = base.clone();
    img[fslot + 26..fslot + 28].copy_from_slice(&0xfff0u16.to_le_bytes());
    img[fslot + 28..fslot + 32].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(list_all(img) > 0);

    // 3. A directory entry pointing at the root's first data cluster of a
    //    directory that contains it (directory loop), and garbage names.
    let mut img = base.clone();
    let dir = fs
        .entries
        .iter()
        .find(|e| {
            e.kind == trawl_fs::FileType::Dir && e.alloc == Alloc::Allocated && e.path.contains('/')
        })
        .or_else(|| {
            fs.entries
                .iter()
                .find(|e| e.kind == trawl_fs::FileType::Dir)
        })
        .unwrap();
    let parent = fs.entries.iter().find(|e| {
        e.kind == trawl_fs::FileType::Dir && dir.path.starts_with(&format!("{}/", e.path))
    });
    if let Some(p) = parent {
        let pclust = u16at(slot(p.inode) + 26);
        // The child's directory cluster: its third entry points at the
        // parent's cluster.
        let cclust = u16at(slot(dir.inode) + 26);
        let data0 = root + u16at(17) * 32;
        let cs = base[13] as usize * ss;
        let at = data0 + (cclust - 2) * cs + 2 * 32;
        img[at..at + 11].copy_from_slice(b"LOOP       ");
        img[at + 11] = 0x10;
        img[at + 26..at + 28].copy_from_slice(&(pclust as u16).to_le_bytes());
        img[at + 24..at + 26].copy_from_slice(&0x5021u16.to_le_bytes());
    }
    for i in 0..8 {
        img[root + 32 * 40 + i] = 0xff - i as u8;
    }
    let ev = trawl_evidence::MemEvidence::new("h", img, false);
    let l = list_image(&ev).unwrap();
    assert!(!l.filesystems[0].entries.is_empty());

    // 4. Every FAT entry pointing to cluster 2 and a truncated image.
    let mut img = base.clone();
    for c in 2..4000 {
        img[fat + c * 2..fat + c * 2 + 2].copy_from_slice(&2u16.to_le_bytes());
    }
    img.truncate(img.len() / 3);
    list_all(img);

    // 5. The image ends inside FAT1: the clusters whose entries are cut
    //    off are not called unallocated (a limitation names the FAT), and
    //    nothing past the image's end is.
    let mut img = base.clone();
    img.truncate(fat + 100);
    let ev = trawl_evidence::MemEvidence::new("h", img, false);
    let l = list_image(&ev).unwrap();
    let fs5 = &l.filesystems[0];
    assert!(
        fs5.limitations
            .iter()
            .any(|x| x.structure == "FAT" && x.what.contains("not listed as unallocated")),
        "{:?}",
        fs5.limitations
    );
    assert!(
        fs5.unallocated
            .iter()
            .all(|r| r.0 + r.1 <= (fat + 100) as u64)
    );

    // 6. Boot sector nonsense: the file system is refused, not crashed on.
    let mut img = base.clone();
    img[13] = 3;
    let ev = trawl_evidence::MemEvidence::new("h", img, false);
    assert!(list_image(&ev).unwrap().filesystems.is_empty());
}

/// bulk_extractor's test images with FAT file systems behind an MBR (raw,
/// a .dmg that is a raw disk, and E01): equal to fiwalk.
#[test]
fn bulk_extractor_images() {
    let dir = corpora().join("bulk-extractor-test-data/src/tests");
    if !dir.is_dir() || !have("fiwalk") {
        trawl_fixtures::skip(
            "bulk_extractor_images",
            "bulk-extractor-test-data or fiwalk",
        );
        return;
    }
    // 1mb_fat32.dmg: one deleted entry (directory slot address 28091,
    // `ntfs-lastaccess.raw.gz`, reached through three deleted directories
    // that share its cluster) that TSK's directory-entry test refuses
    // (`istat` says "28091 is not an inode") and trawl lists as deleted.
    // Not investigated further: listed, asserted, kept.
    for (file, expected) in [
        (
            "1mb_fat32.dmg",
            &[
                "extra: .Trashes/505/Downloaded from github.com/ntfs-lastaccess.raw.gz inode 28091",
                "extra: Downloaded from github.com/ntfs-lastaccess.raw.gz inode 28091",
                "extra: _NTITL~1/ntfs-lastaccess.raw.gz inode 28091",
            ][..],
        ),
        ("CFReDS001.E01", &[][..]),
        ("nps-2010-emails.E01", &[][..]),
    ] {
        let (equal, fss) = check_image(file, &dir.join(file), expected);
        println!("{file}: {equal} files equal to fiwalk");
        assert_eq!(fss.len(), 1, "{file}");
        assert!(equal > 0, "{file}");
    }
}
