//! NTFS against The Sleuth Kit: fiwalk DFXML (path, size, MD5, allocation)
//! and the published answer keys of the DFTT images, the dfir_ntfs corpora
//! (images and bare MFTs with their fls listings), images built here with
//! mkntfs + ntfs-3g tools, and fuzzing of the MFT and boot sector.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use md5::{Digest, Md5};
use trawl_evidence::{Evidence, MemEvidence};
use trawl_fs::{Alloc, Content, Entry, FileType, FsKind, ntfs, read_content};

mod tsk_unalloc;

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
    let _ = std::fs::remove_file(&xml);
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

/// Differences with fiwalk 4.11 every NTFS volume has:
/// - fiwalk hashes `$Secure`'s first `$DATA` (`$SDS`) while giving it size
///   0; we list `$Secure` with size 0 and no content, and `$SDS` as the
///   stream `$Secure:$SDS`;
/// - fiwalk lists no alternate data streams (fls does): ours are extra.
fn common(secure_md5: &str, streams: &[&str]) -> Vec<String> {
    let mut v = vec![format!("differs: $Secure: md5 {EMPTY_MD5} vs {secure_md5}")];
    v.extend(streams.iter().map(|s| format!("extra: {s}")));
    v
}

fn corpus_image(test: &str, dir: &Path, gz: &str) -> Option<PathBuf> {
    let src = corpora().join("dfir-ntfs-test-data/test_data").join(gz);
    if !src.exists() {
        trawl_fixtures::skip(test, &src.display().to_string());
        return None;
    }
    let p = dir.join(gz.trim_end_matches(".gz"));
    std::fs::write(&p, gunzip(&src)).unwrap();
    Some(p)
}

fn dftt_image(test: &str, dir: &Path, zip: &str, member: &str) -> Option<PathBuf> {
    let z = corpora().join("sleuthkit-dftt/from_brian").join(zip);
    if !z.exists() || !have("unzip") {
        trawl_fixtures::skip(test, &format!("{} or unzip", z.display()));
        return None;
    }
    unzip(&z, dir, member)
}

fn tools(test: &str, list: &[&str]) -> bool {
    for t in list {
        if !have(t) {
            trawl_fixtures::skip(test, t);
            return false;
        }
    }
    true
}

const STD_STREAMS: [&str; 3] = ["$BadClus:$Bad", "$Secure:$SDS", "$UpCase:$Info"];

#[test]
fn dfir_ntfs3_vs_fiwalk() {
    let t = "dfir_ntfs3_vs_fiwalk";
    if !tools(t, &["fiwalk"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = corpus_image(t, dir.path(), "ntfs3.raw.gz") else {
        return;
    };
    let exp = common("1de94ba0dfadd51f5b4c9cd08609c033", &STD_STREAMS);
    let c = check_fiwalk(
        t,
        &p,
        dir.path(),
        &exp.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    );
    assert_eq!(c.equal, 26);
    // test/1.txt is allocated but missing from its directory's index (TSK
    // finds it through the parent map, as we do).
    let img = trawl_evidence::open(&p).unwrap();
    let (fs, _) = ours(img.as_ref());
    let e = fs.entries.iter().find(|e| e.path == "test/1.txt").unwrap();
    assert_eq!((e.inode, e.alloc, e.size), (28, Alloc::Allocated, 286671));
    let orphans: Vec<_> = fs
        .entries
        .iter()
        .filter(|e| e.alloc == Alloc::Orphan)
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        orphans,
        (16..24)
            .map(|i| format!("$OrphanFiles/OrphanFile-{i}"))
            .collect::<Vec<_>>()
    );
    let o = fs
        .entries
        .iter()
        .find(|e| e.path == "$OrphanFiles")
        .unwrap();
    assert_eq!((o.inode, o.kind), (1152, FileType::Dir));
}

#[test]
fn dfir_ntfs3_attrlist_vs_fiwalk() {
    let t = "dfir_ntfs3_attrlist_vs_fiwalk";
    if !tools(t, &["fiwalk"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = corpus_image(t, dir.path(), "ntfs3_attrlist.raw.gz") else {
        return;
    };
    let exp = common("1de94ba0dfadd51f5b4c9cd08609c033", &STD_STREAMS);
    let c = check_fiwalk(
        t,
        &p,
        dir.path(),
        &exp.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    );
    // 100 hard links of one file whose $FILE_NAMEs overflow into extension
    // records through its $ATTRIBUTE_LIST.
    assert_eq!(c.equal, 122);
    let img = trawl_evidence::open(&p).unwrap();
    let (fs, _) = ours(img.as_ref());
    let links = fs.entries.iter().filter(|e| e.inode == 27).count();
    assert_eq!(links, 100);
}

#[test]
fn dfir_ntfs_index_vs_fiwalk() {
    let t = "dfir_ntfs_index_vs_fiwalk";
    if !tools(t, &["fiwalk"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = corpus_image(t, dir.path(), "ntfs_index.raw.gz") else {
        return;
    };
    let mut exp = common(
        "2aafb641bd114ffe46ff70e0b57107b0",
        &[
            "$BadClus:$Bad",
            "$Secure:$SDS",
            "$UpCase:$Info",
            "$Extend/$RmMetadata/$Repair:$Config",
            "$Extend/$RmMetadata/$TxfLog/$Tops:$T",
        ],
    );
    // Stale index entries (index slack) whose MFT entries were reused:
    // fiwalk prints the names without metadata; we do not walk indexes.
    exp.push(format!(
        "no metadata in fiwalk: {} - Copy (11).txt",
        "A".repeat(120)
    ));
    exp.push("no metadata in fiwalk: test_dir/BBBBBBBBBBBBB-del.txt".into());
    // Inside an MBR: list_image finds the partition.
    let c = check_fiwalk(
        t,
        &p,
        dir.path(),
        &exp.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    );
    assert_eq!(c.equal, 57);
}

fn find<'a>(fs: &'a [(Entry, String)], path: &str) -> &'a (Entry, String) {
    fs.iter()
        .find(|e| e.0.path == path)
        .unwrap_or_else(|| panic!("{path} not listed"))
}

#[test]
fn dftt7_undelete_answer_key() {
    let t = "dftt7_undelete_answer_key";
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = dftt_image(
        t,
        dir.path(),
        "7-undel-ntfs.zip",
        "7-undel-ntfs/7-ntfs-undel.dd",
    ) else {
        return;
    };
    let img = trawl_evidence::open(&p).unwrap();
    let (fs, with) = ours(img.as_ref());
    assert!(fs.limitations.is_empty(), "{:?}", fs.limitations);
    // The published answer key (index.html): MFT entry, path, size, MD5.
    let key: [(u64, &str, u64, &str); 9] = [
        (37, "res1.dat", 101, "9036637712b491904cd0bfbdbe648453"),
        (31, "sing1.dat", 780, "59b20779f69ff9f0ac5fcd2c38835a79"),
        (32, "mult1.dat", 3801, "ffd27bd782bdce67750b6b9ee069d2ef"),
        (
            32,
            "mult1.dat:ADS",
            1234,
            "ba1b9eedb1c091ddca253d35dde8f616",
        ),
        (29, "frag1.dat", 1584, "7a3bc5b763bef201202108f4ba128149"),
        (30, "frag2.dat", 3873, "0e80ab84ef0087e60dfc67b88a1cf13e"),
        (
            36,
            "dir1/mult2.dat",
            1715,
            "59cf0e9cd107bc1e75afb7374f6e05bb",
        ),
        (
            35,
            "dir1/dir2/frag3.dat",
            2027,
            "21121699487f3fbbdb9a4b3391b6d3e0",
        ),
        // dir3\sing2.dat: its directory's MFT entry was reused (by
        // res1.dat), so it is an orphan, as TSK lists it.
        (
            38,
            "$OrphanFiles/sing2.dat",
            1005,
            "c229626f6a71b167ad7e50c4f2fccdb1",
        ),
    ];
    for (inode, path, size, md5) in key {
        let (e, m) = find(&with, path);
        assert_eq!((e.inode, e.size, m.as_str()), (inode, size, md5), "{path}");
        let want = if path.starts_with("$OrphanFiles/") {
            Alloc::Orphan
        } else {
            Alloc::Deleted
        };
        assert_eq!(e.alloc, want, "{path}");
    }
    for (inode, path) in [(33, "dir1"), (34, "dir1/dir2")] {
        let (e, _) = find(&with, path);
        assert_eq!(
            (e.inode, e.kind, e.alloc),
            (inode, FileType::Dir, Alloc::Deleted)
        );
    }
    // Bonus: the files were created on the leap day 2004-02-29 (UTC).
    let (e, _) = find(&with, "res1.dat");
    let c = e.times.crtime.unwrap().secs;
    assert!((1_078_012_800..1_078_099_200).contains(&c), "{c}");
    assert!(e.fn_times.unwrap().crtime.is_some());
    // Resident content: its image offset holds the bytes.
    if let Content::Resident { bytes, offset } = &e.content {
        let mut b = vec![0u8; bytes.len()];
        img.read_exact_at(*offset, &mut b).unwrap();
        assert_eq!(&b, bytes);
    } else {
        panic!("res1.dat should be resident");
    }
    if tools(t, &["fiwalk"]) {
        let exp = common(
            "ab306261ae99a0ffb18a89ea682ab722",
            &["$BadClus:$Bad", "$Secure:$SDS", "mult1.dat:ADS"],
        );
        let c = check_fiwalk(
            t,
            &p,
            dir.path(),
            &exp.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        );
        assert_eq!(c.equal, 26);
    }
}

#[test]
fn dftt8_jpeg_search_answer_key() {
    let t = "dftt8_jpeg_search_answer_key";
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = dftt_image(
        t,
        dir.path(),
        "8-jpeg-search.zip",
        "8-jpeg-search/8-jpeg-search.dd",
    ) else {
        return;
    };
    let img = trawl_evidence::open(&p).unwrap();
    let (fs, with) = ours(img.as_ref());
    assert!(fs.limitations.is_empty(), "{:?}", fs.limitations);
    let key = [
        ("alloc/file1.jpg", "75b8d00568815a36c3809b46fc84ba6d"),
        ("alloc/file2.dat", "de5d83153339931371719f4e5c924eba"),
        ("invalid/file3.jpg", "1ba4e91591f0541eda255ee26f7533bc"),
        ("invalid/file4.jpg", "c8de721102617158e8492121bdad3711"),
        ("invalid/file5.rtf", "86f14fc525648c39d878829f288c0543"),
        ("del1/file6.jpg", "afd55222024a4e22f7f5a3a665320763"),
        ("del2/file7.hmm", "0c452c5800fcfa7c66027ae89c4f068a"),
        ("archive/file8.zip", "d41b56e0a9f84eb2825e73c24cedd963"),
        ("archive/file9.boo", "73c3029066aee9416a5aeb98a5c55321"),
        ("archive/file10.tar.gz", "d4f8cf643141f0c2911c539750e18ef2"),
        ("misc/file11.dat", "f407ab92da959c7ab03292cfe596a99d"),
        ("misc/file12.doc", "61c0b55639e52d1ce82aba834ada2bab"),
        ("misc/file13.dll:here", "9b787e63e3b64562730c5aecaab1e1f8"),
    ];
    for (path, md5) in key {
        let (e, m) = find(&with, path);
        assert_eq!(m, md5, "{path}");
        let deleted = path.starts_with("del");
        assert_eq!(e.alloc == Alloc::Deleted, deleted, "{path}");
        if !deleted {
            assert_eq!(e.alloc, Alloc::Allocated, "{path}");
        }
    }
    assert_eq!(find(&with, "del1/file6.jpg").0.inode, 32);
    assert_eq!(find(&with, "del2/file7.hmm").0.inode, 31);
    assert_eq!(find(&with, "misc/file13.dll:here").0.inode, 44);
    if tools(t, &["fiwalk"]) {
        let exp = common(
            "25914449708af9f834f9e4f0ded37b24",
            &["$BadClus:$Bad", "$Secure:$SDS", "misc/file13.dll:here"],
        );
        let c = check_fiwalk(
            t,
            &p,
            dir.path(),
            &exp.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        );
        assert_eq!(c.equal, 39);
    }
}

/// One `fls -r -p` line: path, inode, attribute type (None for virtual
/// and nameless orphans), deleted.
fn parse_fls(text: &str) -> Vec<(String, u64, Option<u32>, bool)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((head, rest)) = line.split_once(":\t") else {
            continue;
        };
        let path = rest.split('\t').next().unwrap_or("").to_string();
        let deleted = head.contains(" * ");
        let addr = head.rsplit(' ').next().unwrap_or("");
        let mut it = addr.split('-');
        let inode = it.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
        let ty = it.next().and_then(|s| s.parse().ok());
        out.push((path, inode, ty, deleted));
    }
    out
}

/// fls' names against ours: (path, inode) sets, index streams (type 144
/// on a path with a stream name) left out since we do not list them.
fn fls_diffs(fls: &[(String, u64, Option<u32>, bool)], ours: &[Entry]) -> BTreeSet<String> {
    let theirs: BTreeSet<(String, u64)> = fls
        .iter()
        .filter(|(p, _, ty, _)| !(*ty == Some(144) && p.contains(':')))
        .map(|(p, i, _, _)| (p.clone(), *i))
        .collect();
    let mine: BTreeSet<(String, u64)> = ours.iter().map(|e| (e.path.clone(), e.inode)).collect();
    let mut d = BTreeSet::new();
    for x in theirs.difference(&mine) {
        d.insert(format!("missing: {} {}", x.0, x.1));
    }
    for x in mine.difference(&theirs) {
        d.insert(format!("extra: {} {}", x.0, x.1));
    }
    d
}

#[test]
fn dftt10_autodetect_vs_fls() {
    // Each partition holds NTFS and a second file system laid over it;
    // fiwalk shows the other one, so the oracle is `fls -f ntfs`.
    let t = "dftt10_autodetect_vs_fls";
    if !tools(t, &["fls", "icat"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (part, label, txt) in [
        ("10-ntfs-part1.dd", "EXT3?", "NTFS.TXT"),
        ("10-ntfs-part2.dd", "UFS1?", "NTFS.TXT"),
        ("10-ntfs-part3.dd", "UFS1-2", "ntfs.txt"),
    ] {
        let m = format!("10-ntfs-autodetect/{part}");
        let Some(p) = dftt_image(t, dir.path(), "10b-ntfs-autodetect.zip", &m) else {
            return;
        };
        let img = trawl_evidence::open(&p).unwrap();
        let (fs, with) = ours(img.as_ref());
        assert_eq!(fs.label.as_deref(), Some(label));
        let out = Command::new("fls")
            .args(["-f", "ntfs", "-r", "-p"])
            .arg(&p)
            .output()
            .unwrap();
        let fls = parse_fls(&String::from_utf8_lossy(&out.stdout));
        let d = fls_diffs(&fls, &fs.entries);
        // Files without an unnamed $DATA, which fls prints only by their
        // streams.
        let want: BTreeSet<String> = [
            "extra: $Secure 9",
            "extra: $Extend/$ObjId 25",
            "extra: $Extend/$Quota 24",
            "extra: $Extend/$Reparse 26",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(d, want, "{part}");
        // Content of every allocated file equals icat's.
        for (e, m) in &with {
            if e.kind != FileType::File || e.path.contains(':') || e.path.starts_with('$') {
                continue;
            }
            let out = Command::new("icat")
                .args(["-f", "ntfs"])
                .arg(&p)
                .arg(e.inode.to_string())
                .output()
                .unwrap();
            assert_eq!(&md5_hex(&out.stdout), m, "{part} {}", e.path);
        }
        assert!(with.iter().any(|(e, _)| e.path == txt));
        // Entry 31 was overwritten by the second file system.
        assert!(fs.limitations.iter().any(|l| l.structure == "MFT entry 31"));
    }
    // The disk image: two NTFS partitions behind an MBR.
    let Some(p) = dftt_image(
        t,
        dir.path(),
        "10b-ntfs-autodetect.zip",
        "10-ntfs-autodetect/10-ntfs-disk.dd",
    ) else {
        return;
    };
    let img = trawl_evidence::open(&p).unwrap();
    let l = trawl_fs::list_image(img.as_ref()).unwrap();
    let offs: Vec<u64> = l
        .filesystems
        .iter()
        .filter(|f| f.fs == FsKind::Ntfs)
        .map(|f| f.partition_offset)
        .collect();
    assert_eq!(offs, vec![63 * 512, 96390 * 512]);
    let e = l.filesystems[1]
        .entries
        .iter()
        .find(|e| e.path == "NTFS.TXT")
        .unwrap();
    match &e.content {
        Content::Resident { offset, .. } => assert!(*offset > 96390 * 512),
        c => panic!("{c:?}"),
    }
}

#[test]
fn bare_mft_files_vs_fls() {
    let t = "bare_mft_files_vs_fls";
    let td = corpora().join("dfir-ntfs-test-data/test_data");
    if !td.join("orphan.mft").exists() {
        trawl_fixtures::skip(t, "dfir-ntfs-test-data");
        return;
    }
    for (name, rs) in [("4k-large", 4096u64), ("orphan", 1024), ("unicode", 1024)] {
        let mft = std::fs::read(td.join(format!("{name}.mft"))).unwrap();
        let fls_text = std::fs::read_to_string(td.join(format!("{name}.fls"))).unwrap();
        let fls = parse_fls(&fls_text);
        let l = ntfs::list_mft(&mft, rs, 4096);
        // The .fls files list allocated names only (with sizes in column
        // 6 of the line after the path).
        let allocated: Vec<Entry> = l
            .entries
            .iter()
            .filter(|e| e.alloc == Alloc::Allocated)
            .cloned()
            .collect();
        let d = fls_diffs(&fls, &allocated);
        let want: BTreeSet<String> = [
            "extra: $Secure 9",
            "extra: $Extend/$ObjId 25",
            "extra: $Extend/$Quota 24",
            "extra: $Extend/$Reparse 26",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(d, want, "{name}");
        // Sizes as fls prints them.
        for line in fls_text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let (Some(path), Some(size)) = (f.get(1), f.get(6)) else {
                continue;
            };
            let size: u64 = size.parse().unwrap();
            if let Some(e) = l.entries.iter().find(|e| e.path == *path)
                && e.kind == FileType::File
            {
                assert_eq!(e.size, size, "{name}: {path}");
            }
        }
    }
    // The other MFTs (compressed, sparse, deleted, odd mapping pairs,
    // slack) parse without damage reports beyond what no volume allows.
    for name in [
        "compressed_sparse",
        "deleted",
        "different_la",
        "mapping_pairs_1",
        "mapping_pairs_2",
        "slack",
        "slack-2",
        "slack-3",
    ] {
        let mft = std::fs::read(td.join(format!("{name}.mft"))).unwrap();
        let l = ntfs::list_mft(&mft, 1024, 4096);
        assert!(l.entries.iter().any(|e| e.path == "$MFT"), "{name}");
        for lim in &l.limitations {
            assert!(lim.what.contains("no volume"), "{name}: {lim:?}");
        }
    }
    let mft = std::fs::read(td.join("compressed_sparse.mft")).unwrap();
    let l = ntfs::list_mft(&mft, 1024, 4096);
    assert!(
        l.entries.iter().any(|e| matches!(
            e.content,
            Content::Lznt1 {
                unit_clusters: 16,
                ..
            }
        )),
        "compressed_sparse.mft lists a compressed file"
    );
    assert!(l.entries.iter().any(|e| match &e.content {
        Content::Runs { runs, .. } =>
            runs.iter().any(|r| r.offset.is_none()) && e.path != "$BadClus:$Bad",
        _ => false,
    }));
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Unmounts on drop (a failing test must not leave a FUSE mount behind).
struct Mount(PathBuf, bool);
impl Mount {
    fn unmount(&mut self) -> bool {
        if self.1 {
            return true;
        }
        self.1 = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        self.1
    }
}
impl Drop for Mount {
    fn drop(&mut self) {
        self.unmount();
    }
}

#[test]
fn mkntfs_image_vs_fiwalk_and_icat() {
    let t = "mkntfs_image_vs_fiwalk_and_icat";
    if !tools(
        t,
        &["mkntfs", "ntfs-3g", "fiwalk", "icat", "python3", "umount"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("ntfs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let ok = Command::new("mkntfs")
        .args(["-F", "-f", "-Q", "-L", "trawl-ntfs"])
        .arg(&img)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "mkntfs failed");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("ntfs-3g")
        .args(["-o", "compression,streams_interface=windows"])
        .arg(&img)
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        trawl_fixtures::skip(t, "a working ntfs-3g FUSE mount");
        return;
    }
    let mut guard = Mount(mnt.clone(), false);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut planted: Vec<(String, Vec<u8>)> = Vec::new();
    let mut put = |rel: &str, data: Vec<u8>| {
        let p = mnt.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &data).unwrap();
        planted.push((rel.to_string(), data));
    };
    put("empty.txt", Vec::new());
    put("one.bin", vec![0x41]);
    put("c-1.bin", rng.bytes(4095));
    put("c+1.bin", rng.bytes(4097));
    put("big.bin", rng.bytes(3 << 20));
    put("a/b/c/deep.txt", b"deep\n".to_vec());
    put("Привет/naïve — 文件.txt", "unicode ✓\n".as_bytes().to_vec());
    put(&format!("{}.txt", "L".repeat(200)), b"long name\n".to_vec());
    // Fragmentation: fill the volume, free every other file, write a big
    // one into the holes.
    let mut nfill = 0;
    for i in 0..400 {
        let p = format!("frag/f{i:03}");
        let d = rng.bytes(512 << 10);
        std::fs::create_dir_all(mnt.join("frag")).unwrap();
        if std::fs::write(mnt.join(&p), &d).is_err() {
            let _ = std::fs::remove_file(mnt.join(&p));
            break;
        }
        planted.push((p, d));
        nfill += 1;
    }
    assert!(nfill > 20, "{nfill} fill files");
    for i in (1..nfill).step_by(2) {
        std::fs::remove_file(mnt.join(format!("frag/f{i:03}"))).unwrap();
    }
    planted.retain(|(p, _)| {
        !(p.starts_with("frag/f") && p[6..].parse::<u32>().is_ok_and(|i| i % 2 == 1))
    });
    let bigfrag = rng.bytes(1_600_000);
    std::fs::write(mnt.join("frag/big-frag.bin"), &bigfrag).unwrap();
    planted.push(("frag/big-frag.bin".into(), bigfrag));
    // A hard link, an alternate data stream.
    std::fs::hard_link(mnt.join("one.bin"), mnt.join("a/link-to-one.bin")).unwrap();
    planted.push(("a/link-to-one.bin".into(), vec![0x41]));
    std::fs::write(mnt.join("one.bin:secret"), b"hidden stream data").unwrap();
    planted.push(("one.bin:secret".into(), b"hidden stream data".to_vec()));
    // Compressed files: a directory with the compressed attribute (0x800).
    std::fs::create_dir(mnt.join("comp")).unwrap();
    let set = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import os\np={:?}\nv=os.getxattr(p,'system.ntfs_attrib_be')\nos.setxattr(p,'system.ntfs_attrib_be',(int.from_bytes(v,'big')|0x800).to_bytes(4,'big'))",
            mnt.join("comp").to_str().unwrap()
        ))
        .status()
        .unwrap();
    assert!(set.success());
    let mut text = Vec::new();
    for i in 0..40000 {
        text.extend_from_slice(format!("{i} compressible line\n").as_bytes());
    }
    let mut mixed = rng.bytes(70_000);
    mixed.extend(std::iter::repeat_n(0u8, 200_000));
    mixed.extend(b"tail".iter());
    for (n, d) in [
        ("comp/text.txt", text),
        ("comp/rand.bin", rng.bytes(100_000)),
        ("comp/mixed.bin", mixed),
    ] {
        std::fs::write(mnt.join(n), &d).unwrap();
        planted.push((n.into(), d));
    }
    // A sparse file: a hole, then data.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(mnt.join("sparse.bin")).unwrap();
        f.seek(SeekFrom::Start(4 << 20)).unwrap();
        f.write_all(b"after the hole").unwrap();
        let mut d = vec![0u8; 4 << 20];
        d.extend_from_slice(b"after the hole");
        planted.push(("sparse.bin".into(), d));
    }
    // Deleted: a file, a directory with a file.
    std::fs::write(mnt.join("del.txt"), rng.bytes(10_000)).unwrap();
    std::fs::create_dir(mnt.join("deldir")).unwrap();
    std::fs::write(mnt.join("deldir/inner.txt"), b"inner").unwrap();
    std::fs::remove_file(mnt.join("del.txt")).unwrap();
    std::fs::remove_file(mnt.join("deldir/inner.txt")).unwrap();
    std::fs::remove_dir(mnt.join("deldir")).unwrap();
    assert!(guard.unmount(), "umount failed");

    let ev = trawl_evidence::open(&img).unwrap();
    let (fs, with) = ours(ev.as_ref());
    assert_eq!(fs.label.as_deref(), Some("trawl-ntfs"));
    assert_eq!(fs.block_size, 4096);
    assert!(fs.limitations.is_empty(), "{:?}", fs.limitations);
    for (p, data) in &planted {
        let (e, m) = find(&with, p);
        assert_eq!(
            (e.size, m.clone()),
            (data.len() as u64, md5_hex(data)),
            "{p}"
        );
        assert_eq!(e.alloc, Alloc::Allocated, "{p}");
    }
    // Hard links: one entry per name, same inode.
    assert_eq!(
        find(&with, "one.bin").0.inode,
        find(&with, "a/link-to-one.bin").0.inode
    );
    // Compressed and sparse content as TSK stores it, equal to icat's.
    for p in ["comp/text.txt", "comp/mixed.bin"] {
        assert!(
            matches!(find(&with, p).0.content, Content::Lznt1 { .. }),
            "{p}"
        );
    }
    match &find(&with, "sparse.bin").0.content {
        Content::Runs { runs, .. } => assert!(runs.iter().any(|r| r.offset.is_none())),
        c => panic!("sparse.bin: {c:?}"),
    }
    match &find(&with, "frag/big-frag.bin").0.content {
        Content::Runs { runs, .. } => {
            assert!(runs.iter().filter(|r| r.offset.is_some()).count() > 1)
        }
        c => panic!("big-frag.bin: {c:?}"),
    }
    for (e, m) in &with {
        // (System files without an unnamed $DATA: icat prints their first
        // named stream; see `common`.)
        if e.kind != FileType::File
            || e.path.contains(':')
            || e.path.starts_with('$')
            || e.alloc != Alloc::Allocated
        {
            continue;
        }
        let out = Command::new("icat")
            .arg(&img)
            .arg(e.inode.to_string())
            .output()
            .unwrap();
        assert_eq!(&md5_hex(&out.stdout), m, "icat {}", e.path);
    }
    // The deleted ones.
    let del = find(&with, "del.txt").0.alloc;
    assert_eq!(del, Alloc::Deleted);
    assert_eq!(find(&with, "deldir").0.alloc, Alloc::Deleted);
    assert_eq!(find(&with, "deldir/inner.txt").0.alloc, Alloc::Deleted);
    let exp = common(
        &fiwalk_secure_md5(&img, dir.path()),
        &[
            "$BadClus:$Bad",
            "$Secure:$SDS",
            "$UpCase:$Info",
            "one.bin:secret",
            "a/link-to-one.bin:secret",
        ],
    );
    let c = check_fiwalk(
        t,
        &img,
        dir.path(),
        &exp.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    );
    assert!(c.equal > 60, "{}", c.equal);
    // Unallocated space (the holes the deleted fill files left, the deleted
    // files' clusters) equals TSK's.
    if tools(t, &["blkls"]) {
        assert_eq!(check_unallocated(&img), 1);
        assert!(fs.unallocated.len() > 10, "{:?}", fs.unallocated);
    }
}

/// Every NTFS file system of `p`: unallocated space equal to TSK's
/// `blkls -A` (cluster units), no limitation about it.
fn check_unallocated(p: &Path) -> usize {
    let img = trawl_evidence::open(p).unwrap();
    let l = trawl_fs::list_image(img.as_ref()).unwrap();
    let mut n = 0;
    for fs in l.filesystems.iter().filter(|f| f.fs == FsKind::Ntfs) {
        tsk_unalloc::assert_equal(p, fs, fs.block_size, img.size());
        assert!(
            !fs.limitations.iter().any(|x| x.structure == "$Bitmap"),
            "{:?}",
            fs.limitations
        );
        n += 1;
    }
    n
}

/// Unallocated space against `blkls -A` on the corpus images: deleted
/// files (DFTT #7), a fragmented MFT with an attribute list, an index
/// image, and a disk of two NTFS partitions (DFTT #10, `-o`).
#[test]
fn unallocated_vs_blkls() {
    let t = "unallocated_vs_blkls";
    if !tools(t, &["blkls"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for gz in ["ntfs3.raw.gz", "ntfs3_attrlist.raw.gz", "ntfs_index.raw.gz"] {
        let Some(p) = corpus_image(t, dir.path(), gz) else {
            return;
        };
        assert_eq!(check_unallocated(&p), 1, "{gz}");
    }
    for (zip, member, n) in [
        ("7-undel-ntfs.zip", "7-undel-ntfs/7-ntfs-undel.dd", 1),
        ("8-jpeg-search.zip", "8-jpeg-search/8-jpeg-search.dd", 1),
        (
            "10b-ntfs-autodetect.zip",
            "10-ntfs-autodetect/10-ntfs-disk.dd",
            2,
        ),
    ] {
        let Some(p) = dftt_image(t, dir.path(), zip, member) else {
            return;
        };
        assert_eq!(check_unallocated(&p), n, "{member}");
    }
}

/// A `$Bitmap` that cannot be found, or an image cut short: limitations,
/// never a panic, never a range past the image's end.
#[test]
fn unallocated_damaged_bitmap_and_cut_image() {
    let t = "unallocated_damaged_bitmap_and_cut_image";
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = corpus_image(t, dir.path(), "ntfs3.raw.gz") else {
        return;
    };
    let base = std::fs::read(&p).unwrap();
    let g = ntfs::parse_boot(&base[..512]).unwrap();
    // MFT entry 6 without its signature: not listed, so no $Bitmap.
    let mut d = base.clone();
    let rec6 = (g.mft_lcn * g.cluster_size + 6 * g.record_size) as usize;
    d[rec6..rec6 + 4].copy_from_slice(b"XXXX");
    let ev = MemEvidence::new("nobitmap", d, false);
    let l = trawl_fs::list_image(&ev).unwrap();
    let fs = &l.filesystems[0];
    assert!(fs.unallocated.is_empty(), "{:?}", fs.unallocated);
    assert!(
        fs.limitations.iter().any(|x| x.structure == "$Bitmap"),
        "{:?}",
        fs.limitations
    );
    // Cut at several points: what is left is inside the image.
    for cut in [base.len() / 2, base.len() - 4096 - 100, rec6 + 8192] {
        let ev = MemEvidence::new("cut", base[..cut].to_vec(), false);
        if let Ok(l) = trawl_fs::list_image(&ev) {
            for fs in &l.filesystems {
                tsk_unalloc::assert_well_formed(fs, cut as u64);
            }
        }
    }
}

/// What fiwalk gives as `$Secure`'s MD5 (its `$SDS`, which depends on the
/// mkntfs run).
fn fiwalk_secure_md5(img: &Path, dir: &Path) -> String {
    fiwalk(img, dir)
        .into_iter()
        .find(|f| f.path == "$Secure")
        .and_then(|f| f.md5)
        .unwrap_or_default()
}

/// Lists `data` and reads every entry's content (up to 4 MiB each): the
/// parser must neither panic nor hang.
fn list_and_read(data: Vec<u8>) -> usize {
    let ev = trawl_evidence::MemEvidence::new("fuzz", data, false);
    let mut n = 0;
    if let Ok(l) = trawl_fs::list_image(&ev) {
        for fs in &l.filesystems {
            tsk_unalloc::assert_well_formed(fs, ev.size());
            for e in &fs.entries {
                if e.content.size() <= 4 << 20 {
                    let _ = read_content(&ev, &e.content, |_| {});
                }
                n += 1;
            }
        }
    }
    n
}

#[test]
fn fuzz_mft_and_boot_sector() {
    let t = "fuzz_mft_and_boot_sector";
    let dir = tempfile::tempdir().unwrap();
    let mut bases = Vec::new();
    if let Some(p) = dftt_image(
        t,
        dir.path(),
        "7-undel-ntfs.zip",
        "7-undel-ntfs/7-ntfs-undel.dd",
    ) {
        bases.push(std::fs::read(p).unwrap());
    }
    if let Some(p) = corpus_image(t, dir.path(), "ntfs3_attrlist.raw.gz") {
        bases.push(std::fs::read(p).unwrap());
    }
    if bases.is_empty() {
        return;
    }
    let secs: u64 = std::env::var("TRAWL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let start = std::time::Instant::now();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut cases = 0u64;
    loop {
        if secs == 0 && cases >= 300 || secs > 0 && start.elapsed().as_secs() >= secs {
            break;
        }
        let base = &bases[(rng.next() % bases.len() as u64) as usize];
        let g = ntfs::parse_boot(&base[..512]).unwrap();
        let mft = (g.mft_lcn * g.cluster_size) as usize;
        let mft_len = (64 * g.record_size) as usize;
        let mut d = base.clone();
        let flips = 1 + rng.next() % 16;
        for _ in 0..flips {
            let off = match rng.next() % 10 {
                0 => (rng.next() % 512) as usize,
                // Record 0 ($MFT's own runs and attribute list).
                1 | 2 => mft + (rng.next() % g.record_size) as usize,
                _ => mft + (rng.next() % mft_len as u64) as usize,
            };
            if rng.next().is_multiple_of(2) {
                d[off] ^= 1 << (rng.next() % 8);
            } else {
                d[off] = rng.next() as u8;
            }
        }
        list_and_read(d);
        cases += 1;
    }
    println!("{t}: {cases} cases in {:?}", start.elapsed());
    assert!(cases >= 300 || secs > 0);
}

/// The attribute of type `ty` in MFT record `rec` of `d`: (attribute
/// offset, value or mapping-pairs offset) as image offsets.
fn attr_in(d: &[u8], m: &Mft, rec: usize, ty: u32) -> Option<(usize, usize)> {
    let (r, rs) = (m.rec(rec), m.rs);
    let mut off = r + u16::from_le_bytes([d[r + 0x14], d[r + 0x15]]) as usize;
    while off + 8 < r + rs {
        let aty = u32::from_le_bytes(d[off..off + 4].try_into().unwrap());
        let len = u32::from_le_bytes(d[off + 4..off + 8].try_into().unwrap()) as usize;
        if aty == 0xffff_ffff || len == 0 {
            return None;
        }
        if aty == ty {
            let v = if d[off + 8] == 0 {
                u16::from_le_bytes([d[off + 0x14], d[off + 0x15]])
            } else {
                u16::from_le_bytes([d[off + 0x20], d[off + 0x21]])
            };
            return Some((off, off + v as usize));
        }
        off += len;
    }
    None
}

/// Where the records of a (possibly fragmented) MFT are in the image.
struct Mft {
    runs: Vec<(u64, u64)>,
    rs: usize,
}
impl Mft {
    fn rec(&self, i: usize) -> usize {
        let mut off = (i * self.rs) as u64;
        for &(o, l) in &self.runs {
            if off < l {
                return (o + off) as usize;
            }
            off -= l;
        }
        panic!("record {i} outside the MFT");
    }
}

fn seq_of(d: &[u8], m: &Mft, rec: usize) -> u16 {
    let r = m.rec(rec);
    u16::from_le_bytes([d[r + 0x10], d[r + 0x11]])
}

fn set_parent(d: &mut [u8], m: &Mft, rec: usize, parent: usize, seq: u16) {
    let (_, v) = attr_in(d, m, rec, 0x30).unwrap();
    let r = (parent as u64) | (u64::from(seq) << 48);
    d[v..v + 8].copy_from_slice(&r.to_le_bytes());
}

#[test]
fn hostile_cycles_runs_names_and_damaged_boot() {
    let t = "hostile_cycles_runs_names_and_damaged_boot";
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = dftt_image(
        t,
        dir.path(),
        "7-undel-ntfs.zip",
        "7-undel-ntfs/7-ntfs-undel.dd",
    ) else {
        return;
    };
    let base = std::fs::read(p).unwrap();
    let g = ntfs::parse_boot(&base[..512]).unwrap();
    let listing = |d: Vec<u8>| {
        let ev = MemEvidence::new("h", d, false);
        let fs = ntfs::list(&trawl_fs::VolumeReader::whole(&ev)).unwrap();
        for e in &fs.entries {
            let _ = read_content(&ev, &e.content, |_| {});
        }
        fs
    };
    let clean = listing(base.clone());
    let m = Mft {
        runs: clean
            .entries
            .iter()
            .find(|e| e.path == "$MFT")
            .unwrap()
            .content
            .image_runs(),
        rs: g.record_size as usize,
    };
    // This MFT is in two fragments.
    assert_eq!(m.runs.len(), 2);
    let mft = m.rec(0);
    let paths = |fs: &trawl_fs::FileSystemListing| -> BTreeMap<String, u64> {
        fs.entries
            .iter()
            .map(|e| (e.path.clone(), e.inode))
            .collect()
    };

    // A directory loop: dir1 (33) and dir2 (34, both deleted) point at
    // each other; then dir1 at itself.
    let mut d = base.clone();
    let (s33, s34) = (seq_of(&d, &m, 33), seq_of(&d, &m, 34));
    set_parent(&mut d, &m, 33, 34, s34 - 1);
    set_parent(&mut d, &m, 34, 33, s33 - 1);
    let fs = listing(d.clone());
    for i in [33u64, 34, 35, 36] {
        let e = fs.entries.iter().find(|e| e.inode == i).unwrap();
        assert!(e.path.starts_with("$OrphanFiles/"), "{}", e.path);
        assert_eq!(e.alloc, Alloc::Orphan);
    }
    set_parent(&mut d, &m, 33, 33, s33 - 1);
    let fs = listing(d);
    let e = fs.entries.iter().find(|e| e.inode == 35).unwrap();
    assert!(e.path.starts_with("$OrphanFiles/"), "{}", e.path);

    // A run far past the volume end (mult1.dat, 32): a limitation, and
    // the content stops there.
    let mut d = base.clone();
    let (_, mp) = attr_in(&d, &m, 32, 0x80).unwrap();
    let h = d[mp];
    let (ln, lo) = ((h & 0xf) as usize, (h >> 4) as usize);
    assert!(lo >= 2);
    d[mp + 1 + ln + lo - 1] = 0x7f;
    let fs = listing(d);
    assert!(
        fs.limitations
            .iter()
            .any(|l| l.what.contains("passes the volume end")),
        "{:?}",
        fs.limitations
    );
    let e = fs.entries.iter().find(|e| e.path == "mult1.dat").unwrap();
    assert!(e.content.image_runs().is_empty());

    // An invalid UTF-16 name (a lone surrogate) becomes U+FFFD.
    let mut d = base.clone();
    let (_, v) = attr_in(&d, &m, 37, 0x30).unwrap();
    d[v + 0x42..v + 0x44].copy_from_slice(&0xd800u16.to_le_bytes());
    let fs = listing(d);
    let e = fs.entries.iter().find(|e| e.inode == 37).unwrap();
    assert_eq!(e.path, "\u{fffd}es1.dat");

    // A $MFT that claims an absurd size is cut at the volume.
    let mut d = base.clone();
    let (a, _) = attr_in(&d, &m, 0, 0x80).unwrap();
    d[a + 0x30..a + 0x38].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let fs = listing(d);
    assert!(fs.limitations.iter().any(|l| l.structure == "$MFT"));
    assert_eq!(paths(&fs).get("res1.dat"), Some(&37));

    // Huge runs counts in a record's mapping pairs: sparse runs of 2^56
    // clusters are refused against the attribute's VCN range.
    let mut d = base.clone();
    let (_, mp) = attr_in(&d, &m, 31, 0x80).unwrap();
    d[mp] = 0x08;
    d[mp + 1..mp + 9].copy_from_slice(&(1u64 << 56).to_le_bytes());
    d[mp + 9] = 0;
    let fs = listing(d);
    let e = fs.entries.iter().find(|e| e.inode == 31).unwrap();
    assert!(e.size <= 780, "{}", e.size);

    // A zeroed boot sector: the backup in the volume's last sector is
    // used. (This image was taken without that sector: append it.)
    let mut d = base.clone();
    d.extend_from_slice(&base[..512]);
    d[..512].fill(0);
    let fs = listing(d);
    assert!(
        fs.limitations
            .iter()
            .any(|l| l.structure == "NTFS boot sector")
    );
    assert_eq!(paths(&fs), paths(&clean));

    // A torn MFT record 0 (fixup mismatch): $MFTMirr gives the runs.
    let mut d = base.clone();
    d[mft + 510] ^= 0xff;
    let fs = listing(d);
    assert!(
        fs.limitations.iter().any(|l| l.structure == "MFT entry 0"),
        "{:?}",
        fs.limitations
    );
    // Entry 0 itself now fails its fixup in the MFT and is not listed.
    let mut want = paths(&clean);
    want.remove("$MFT");
    assert_eq!(paths(&fs), want);

    // A torn ordinary record is a limitation; the rest is listed.
    let mut d = base.clone();
    d[m.rec(29) + 1022] ^= 0xff;
    let fs = listing(d);
    assert!(fs.limitations.iter().any(|l| l.structure == "MFT entry 29"));
    assert!(!paths(&fs).contains_key("frag1.dat"));
    assert_eq!(paths(&fs).len(), paths(&clean).len() - 1);
}

#[test]
fn initialized_size_tail_reads_as_icat() {
    // A file whose data size passes its initialised size (ntfstruncate
    // extends the size only), with garbage planted in its last cluster
    // after the initialised size: icat gives zeros there, so do we.
    let t = "initialized_size_tail_reads_as_icat";
    if !tools(t, &["mkntfs", "ntfs-3g", "ntfstruncate", "icat", "umount"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("init.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    assert!(
        Command::new("mkntfs")
            .args(["-F", "-f", "-Q"])
            .arg(&img)
            .output()
            .unwrap()
            .status
            .success()
    );
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    if !Command::new("ntfs-3g")
        .arg(&img)
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success())
    {
        trawl_fixtures::skip(t, "a working ntfs-3g FUSE mount");
        return;
    }
    let mut guard = Mount(mnt.clone(), false);
    let data = Rng(77).bytes(10_000);
    std::fs::write(mnt.join("x.bin"), &data).unwrap();
    assert!(guard.unmount());
    let ev = trawl_evidence::open(&img).unwrap();
    let (fs, _) = ours(ev.as_ref());
    let e = fs
        .entries
        .iter()
        .find(|e| e.path == "x.bin")
        .unwrap()
        .clone();
    let ino = e.inode.to_string();
    drop(ev);
    let st = Command::new("ntfstruncate")
        .arg("-f")
        .arg(&img)
        .args([ino.as_str(), "0x80", "", "100000"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // Garbage after byte 10000 in the file's last allocated cluster.
    let runs = e.content.image_runs();
    let (o, l) = *runs.last().unwrap();
    let cluster_end = o + l.div_ceil(4096) * 4096;
    let tail = (o + l)..cluster_end;
    let mut b = std::fs::read(&img).unwrap();
    b[tail.start as usize..tail.end as usize].fill(0xee);
    std::fs::write(&img, &b).unwrap();
    let ev = trawl_evidence::open(&img).unwrap();
    let (_, with) = ours(ev.as_ref());
    let (e, m) = find(&with, "x.bin");
    assert_eq!(e.size, 100_000);
    let out = Command::new("icat").arg(&img).arg(&ino).output().unwrap();
    assert_eq!(out.stdout.len(), 100_000);
    let mut want = data.clone();
    want.resize(100_000, 0);
    assert_eq!(out.stdout, want);
    assert_eq!(m, &md5_hex(&want));
}

/// The sleuthkit test E01 with two NTFS partitions behind an MBR: each
/// partition (copied out of the E01 through trawl's reader) equal to
/// fiwalk on it, but for the differences common to every NTFS volume.
#[test]
fn sleuthkit_two_partition_e01() {
    let t = "sleuthkit_two_partition_e01";
    let src = corpora().join("sleuthkit-test-data/test/data/imageformat_mmls_1.E01");
    if !src.exists() || !have("fiwalk") {
        trawl_fixtures::skip(t, "imageformat_mmls_1.E01 or fiwalk");
        return;
    }
    let img = trawl_evidence::open(&src).unwrap();
    let l = trawl_fs::list_image(img.as_ref()).unwrap();
    let parts: Vec<(u64, u64)> = l
        .filesystems
        .iter()
        .map(|f| (f.partition_offset, f.size))
        .collect();
    assert_eq!(parts.len(), 2, "{:?}", l.volumes);
    assert!(l.filesystems.iter().all(|f| f.fs == FsKind::Ntfs));
    assert_eq!(parts[0].0, 128 * 512);
    assert_eq!(parts[1].0, 55424 * 512);
    let dir = tempfile::tempdir().unwrap();
    for (i, (off, _)) in parts.iter().enumerate() {
        let v = l.volumes.iter().find(|v| v.offset == *off).unwrap();
        let mut buf = vec![0u8; v.length as usize];
        img.read_exact_at(*off, &mut buf).unwrap();
        let p = dir.path().join(format!("part{i}.raw"));
        std::fs::write(&p, &buf).unwrap();
        let raw = trawl_evidence::open(&p).unwrap();
        let (_, with) = ours(raw.as_ref());
        let fw = fiwalk(&p, dir.path());
        let c = compare(&fw, &with);
        println!("partition {i}: {} equal, {:?}", c.equal, c.diffs);
        assert!(c.equal > 10, "partition {i}");
        // The differences every NTFS volume has (module docs): $Secure's
        // hash and the streams fiwalk does not list.
        for d in &c.diffs {
            assert!(
                d.starts_with("differs: $Secure: md5")
                    || (d.starts_with("extra: ") && d.contains(':')),
                "partition {i}: {d}"
            );
        }
    }
}
