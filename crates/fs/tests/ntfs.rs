//! NTFS against The Sleuth Kit: fiwalk DFXML (path, size, MD5, allocation)
//! and the published answer keys of the DFTT images, the dfir_ntfs corpora
//! (images and bare MFTs with their fls listings), images built here with
//! mkntfs + ntfs-3g tools, and fuzzing of the MFT and boot sector.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use md5::{Digest, Md5};
use trawl_evidence::Evidence;
use trawl_evidence::MemEvidence;
use trawl_fs::{Alloc, Content, Entry, FileType, FsKind, VolumeReader, ntfs, read_content};

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn gunzip(p: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap())
        .read_to_end(&mut v)
        .unwrap();
    v
}

/// Unzips `zip` into `dir` and returns the path of `member` in it.
fn unzip(zip: &Path, dir: &Path, member: &str) -> Option<PathBuf> {
    let ok = Command::new("unzip")
        .args(["-o", "-q"])
        .arg(zip)
        .arg("-d")
        .arg(dir)
        .status()
        .ok()?
        .success();
    let p = dir.join(member);
    (ok && p.exists()).then_some(p)
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

fn content_md5(img: &dyn Evidence, c: &Content) -> Result<String, String> {
    let mut h = Md5::new();
    read_content(img, c, |b| h.update(b)).map_err(|e| e.to_string())?;
    Ok(hex::encode(h.finalize()))
}

/// One fiwalk fileobject.
#[derive(Debug, Clone)]
struct Fw {
    path: String,
    inode: Option<u64>,
    size: Option<u64>,
    md5: Option<String>,
    unalloc: bool,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn tag<'a>(block: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let s = block.find(&open)? + open.len();
    let e = block[s..].find(&format!("</{name}>"))? + s;
    Some(&block[s..e])
}

fn parse_dfxml(xml: &str) -> Vec<Fw> {
    let mut out = Vec::new();
    for block in xml.split("<fileobject>").skip(1) {
        let block = block.split("</fileobject>").next().unwrap_or("");
        // The parent_object holds an inode of its own: drop it.
        let own = match block.find("</parent_object>") {
            Some(i) => &block[i..],
            None => block,
        };
        let md5 = own
            .split("<hashdigest type='md5'>")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .map(str::to_string);
        out.push(Fw {
            path: unescape(tag(own, "filename").unwrap_or("")),
            inode: tag(own, "inode").and_then(|s| s.parse().ok()),
            size: tag(own, "filesize").and_then(|s| s.parse().ok()),
            md5,
            unalloc: tag(own, "unalloc") == Some("1"),
        });
    }
    out
}

fn fiwalk(img: &Path, dir: &Path) -> Vec<Fw> {
    let xml = dir.join(format!(
        "{}.xml",
        img.file_name().unwrap().to_string_lossy()
    ));
    let st = Command::new("fiwalk")
        .arg("-X")
        .arg(&xml)
        .arg(img)
        .output()
        .unwrap();
    assert!(st.status.success(), "fiwalk failed on {}", img.display());
    parse_dfxml(&std::fs::read_to_string(&xml).unwrap())
}

/// Our listing of the (only) NTFS file system of `img`, with MD5s.
fn ours(img: &dyn Evidence) -> (trawl_fs::FileSystemListing, Vec<(Entry, String)>) {
    let l = trawl_fs::list_image(img).unwrap();
    let fs: Vec<_> = l
        .filesystems
        .into_iter()
        .filter(|f| f.fs == FsKind::Ntfs)
        .collect();
    assert_eq!(fs.len(), 1, "one NTFS file system expected");
    let fs = fs.into_iter().next().unwrap();
    let with = fs
        .entries
        .iter()
        .map(|e| {
            let m = content_md5(img, &e.content).unwrap_or_else(|err| format!("error: {err}"));
            (e.clone(), m)
        })
        .collect();
    (fs, with)
}

/// The comparison with fiwalk: counts and every difference as a line.
#[derive(Debug, Default)]
struct Cmp {
    equal: usize,
    diffs: BTreeSet<String>,
}

const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

fn compare(fw: &[Fw], ours: &[(Entry, String)]) -> Cmp {
    let mut by_path: BTreeMap<&str, Vec<&(Entry, String)>> = BTreeMap::new();
    for o in ours {
        by_path.entry(o.0.path.as_str()).or_default().push(o);
    }
    let mut seen = BTreeSet::new();
    let mut c = Cmp::default();
    for f in fw {
        if f.path == "." || f.path.ends_with("/.") || f.path.ends_with("/..") {
            continue;
        }
        let Some(f_inode) = f.inode else {
            c.diffs.insert(format!("no metadata in fiwalk: {}", f.path));
            continue;
        };
        let Some(cands) = by_path.get(f.path.as_str()) else {
            c.diffs.insert(format!("missing: {}", f.path));
            continue;
        };
        let o = cands
            .iter()
            .find(|o| o.0.inode == f_inode)
            .unwrap_or(&cands[0]);
        seen.insert((o.0.path.clone(), o.0.inode));
        let mut why = Vec::new();
        if o.0.inode != f_inode {
            why.push(format!("inode {} vs {}", o.0.inode, f_inode));
        }
        if Some(o.0.size) != f.size {
            why.push(format!("size {} vs {:?}", o.0.size, f.size));
        }
        let fmd5 = f.md5.clone().unwrap_or_else(|| EMPTY_MD5.to_string());
        if o.0.size == f.size.unwrap_or(0) && o.1 != fmd5 {
            why.push(format!("md5 {} vs {}", o.1, fmd5));
        }
        let deleted = o.0.alloc != Alloc::Allocated;
        if deleted != f.unalloc {
            why.push(format!("alloc {:?} vs unalloc={}", o.0.alloc, f.unalloc));
        }
        if why.is_empty() {
            c.equal += 1;
        } else {
            c.diffs
                .insert(format!("differs: {}: {}", f.path, why.join(", ")));
        }
    }
    for o in ours {
        if !seen.contains(&(o.0.path.clone(), o.0.inode)) {
            c.diffs.insert(format!("extra: {}", o.0.path));
        }
    }
    c
}

fn check_fiwalk(name: &str, img_path: &Path, dir: &Path, expected: &[&str]) -> Cmp {
    let img = trawl_evidence::open(img_path).unwrap();
    let fw = fiwalk(img_path, dir);
    let (_, with) = ours(img.as_ref());
    let c = compare(&fw, &with);
    println!(
        "{name}: {} fiwalk objects, {} entries of ours, {} equal, {} differences",
        fw.len(),
        with.len(),
        c.equal,
        c.diffs.len()
    );
    let want: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    let unexpected: Vec<_> = c.diffs.difference(&want).collect();
    let gone: Vec<_> = want.difference(&c.diffs).collect();
    if std::env::var_os("NTFS_DUMP").is_some() {
        for d in &c.diffs {
            println!("  {d}");
        }
        return c;
    }
    assert!(
        unexpected.is_empty() && gone.is_empty(),
        "{name}: unexpected differences with fiwalk:\n  {}\nexpected but absent:\n  {}",
        unexpected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        gone.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    c
}

#[test]
fn dump_corpora() {
    let dir = tempfile::tempdir().unwrap();
    let td = corpora().join("dfir-ntfs-test-data/test_data");
    for g in ["ntfs3", "ntfs3_attrlist", "ntfs_index"] {
        let p = dir.path().join(format!("{g}.raw"));
        std::fs::write(&p, gunzip(&td.join(format!("{g}.raw.gz")))).unwrap();
        let c = check_fiwalk(g, &p, dir.path(), &[]);
        let _ = c;
    }
}

#[allow(dead_code)]
fn unused(_: FileType, _: &VolumeReader<'_>, _: &MemEvidence, _: fn(&[u8]) -> bool) {
    let _ = ntfs::probe;
}
