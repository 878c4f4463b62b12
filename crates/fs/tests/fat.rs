//! FAT12/16/32 against fiwalk/TSK: corpora images and images built with
//! mkfs.vfat + mtools, plus fuzzing of the metadata areas.

use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use trawl_fs::{Alloc, Entry, FileSystemListing, FsKind, list_image, read_content};

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

/// fiwalk -X on `img`, parsed; `.`/`..` entries dropped.
fn fiwalk(img: &Path) -> Vec<Fw> {
    let xml = img.with_extension("fiwalk.xml");
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
        let text = std::fs::read_to_string(img_path.with_extension("fiwalk.xml")).unwrap();
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
