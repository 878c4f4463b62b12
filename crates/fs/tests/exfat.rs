//! exFAT against fiwalk/TSK on the corpora images, plus fuzzing. No
//! userspace tool writes files into exFAT here (mkfs.exfat only formats;
//! mtools do not speak exFAT), so content checks rely on the corpora.

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
