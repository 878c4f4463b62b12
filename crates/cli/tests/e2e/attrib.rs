//! Issue 20: attribution. Every feature, YARA match and carved file placed
//! in the file (or the kind of space) that holds it: on a disk built here
//! with planted findings, and on nps-2010-emails.E01 against what
//! bulk_extractor's identify_filenames.py assigns from fiwalk's DFXML.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Partition start, sectors.
const P1: u64 = 2048;
const P1_LEN: u64 = 40960;
/// Where the unallocated marker is written, bytes into the file system
/// (far past the few files: free clusters).
const FREE_AT: u64 = 18 << 20;

/// A FAT16 file system inside an MBR disk with: a mail file, a JPEG, a
/// document in a folder, a deleted file, and text written into free
/// clusters. Returns the disk and the JPEG's bytes.
fn build(dir: &Path) -> (PathBuf, Vec<u8>) {
    let fat = dir.join("fat.img");
    sh(Command::new("mkfs.vfat")
        .args(["-F", "16", "-n", "ATTRIB", "-C"])
        .arg(&fat)
        .arg((P1_LEN / 2).to_string()));
    let mt = |args: &[&str]| mtools(&fat, args);
    let put = |name: &str, data: &[u8]| put_file(dir, name, data);
    let mail = put(
        "mail.txt",
        b"From: alice.attrib@example.org\nSubject: plans\n\nTRAWL-ATTRIB-MARKER-ONE in a mail\n",
    );
    let mut rng = trawl_fixtures::util::Rng::new(20);
    let spec = trawl_fixtures::formats::images::small_spec(&mut rng);
    let jpeg = trawl_fixtures::formats::images::jpeg(&mut rng, &spec);
    let photo = put("photo.jpg", &jpeg);
    let notes = put(
        "notes.txt",
        b"notes for carol.embedded@example.com and nobody else\n",
    );
    let old = put("old.txt", b"deleted: bob.deleted@example.net\n");
    mt(&["mmd", "::/DOCS"]);
    mt(&["mcopy", mail.to_str().unwrap(), "::/MAIL.TXT"]);
    mt(&["mcopy", old.to_str().unwrap(), "::/OLD.TXT"]);
    mt(&["mcopy", photo.to_str().unwrap(), "::/PHOTO.JPG"]);
    mt(&["mcopy", notes.to_str().unwrap(), "::/DOCS/NOTES.TXT"]);
    mt(&["mdel", "::/OLD.TXT"]);
    // Text in free clusters.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&fat).unwrap();
        f.seek(SeekFrom::Start(FREE_AT)).unwrap();
        f.write_all(b"left over: dave.unalloc@example.org TRAWL-ATTRIB-MARKER-TWO\n")
            .unwrap();
        // A second JPEG, deleted long ago: only in free clusters.
        let mut rng = trawl_fixtures::util::Rng::new(21);
        let spec = trawl_fixtures::formats::images::small_spec(&mut rng);
        let lost = trawl_fixtures::formats::images::jpeg(&mut rng, &spec);
        f.seek(SeekFrom::Start(FREE_AT + (64 << 10))).unwrap();
        f.write_all(&lost).unwrap();
        std::fs::write(dir.join("lost.jpg"), &lost).unwrap();
    }
    let disk = mbr_disk(dir, &fat);
    (disk, jpeg)
}

/// `fat` as the one partition (type 6, at sector `P1`) of an MBR disk
/// with 1 MiB after it.
fn mbr_disk(dir: &Path, fat: &Path) -> PathBuf {
    let disk = dir.join("disk.img");
    sh(Command::new("truncate")
        .arg("-s")
        .arg(((P1 + P1_LEN + 2048) * 512).to_string())
        .arg(&disk));
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg(&disk)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("label: dos\nstart={P1}, size={P1_LEN}, type=6\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    sh(Command::new("dd")
        .arg(format!("if={}", fat.display()))
        .arg(format!("of={}", disk.display()))
        .args(["bs=512", "conv=notrunc", "status=none"])
        .arg(format!("seek={P1}")));
    disk
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The data lines of an annotated feature file, split at tabs.
fn annotated(out: &Path, name: &str) -> Vec<Vec<String>> {
    lines(&out.join("features/annotated").join(format!("{name}.txt")))
        .into_iter()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn files_of(out: &Path) -> Vec<Value> {
    lines(&out.join("files/files.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// identify_filenames.py's answer for each line of a feature file:
/// (forensic path, filename, md5).
fn reference(xml: &Path, features: &Path) -> Vec<(String, Option<String>, Option<String>)> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/identify_filenames_ref.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(xml)
        .arg(features)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// trawl's annotated lines as (forensic path, filename, md5).
fn ours(out: &Path, name: &str) -> Vec<(String, Option<String>, Option<String>)> {
    annotated(out, name)
        .into_iter()
        .map(|c| {
            assert!(c.len() == 3 || c.len() == 5, "{c:?}");
            (c[0].clone(), c.get(3).cloned(), c.get(4).cloned())
        })
        .collect()
}

#[test]
fn findings_attributed_to_their_files_on_a_built_disk() {
    let test = "findings_attributed_to_their_files_on_a_built_disk";
    if !tools(
        test,
        &[
            "mkfs.vfat",
            "mcopy",
            "mdel",
            "mmd",
            "sfdisk",
            "fiwalk",
            "python3",
        ],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (disk, jpeg) = build(dir.path());
    let rules = dir.path().join("r.yar");
    std::fs::write(
        &rules,
        "rule marker_one { strings: $a = \"TRAWL-ATTRIB-MARKER-ONE\" condition: $a }\n\
         rule marker_two { strings: $a = \"TRAWL-ATTRIB-MARKER-TWO\" condition: $a }\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    run_ok(&[
        "scan",
        disk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--analyses",
        "files,features,carve,yara",
        "--rules",
        rules.to_str().unwrap(),
        "--shard-size",
        "1MiB",
    ]);
    let part = P1 * 512;
    let files = files_of(&out);
    let rec = |path: &str| {
        files
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} not listed"))
            .clone()
    };
    let deleted = files
        .iter()
        .find(|f| f["alloc"] == "deleted" && f["path"].as_str().unwrap().ends_with("LD.TXT"))
        .expect("the deleted OLD.TXT listed")
        .clone();

    // Features: the annotated e-mail file.
    let email = annotated(&out, "email");
    let row = |addr: &str| {
        email
            .iter()
            .find(|c| c[1] == addr)
            .unwrap_or_else(|| panic!("{addr} not in annotated email.txt: {email:?}"))
            .clone()
    };
    let mail = rec("MAIL.TXT");
    assert_eq!(
        row("alice.attrib@example.org")[3..],
        [
            "MAIL.TXT".to_string(),
            mail["md5"].as_str().unwrap().to_string()
        ]
    );
    assert_eq!(row("carol.embedded@example.com")[3], "DOCS/NOTES.TXT");
    assert_eq!(
        row("bob.deleted@example.net")[3],
        format!("*{}", deleted["path"].as_str().unwrap())
    );
    assert_eq!(
        row("dave.unalloc@example.org").len(),
        3,
        "a feature in free space has no file"
    );
    let text = std::fs::read_to_string(out.join("features/annotated/email.txt")).unwrap();
    assert!(
        text.starts_with("# Position\tFeature\tContext\tMD5\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "# Total features located to files: 3\n# Total features in unallocated space: 1\n"
        ),
        "{text}"
    );
    // The same as identify_filenames.py from fiwalk's DFXML.
    let xml = dir.path().join("fiwalk.xml");
    sh(Command::new("fiwalk").arg("-X").arg(&xml).arg(&disk));
    for name in ["email", "domain"] {
        assert_eq!(
            ours(&out, name),
            reference(&xml, &out.join("features").join(format!("{name}.txt"))),
            "{name}"
        );
    }

    // YARA: the match in MAIL.TXT, the one in free clusters.
    let matches: Vec<Value> = lines(&out.join("yara/matches.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let m = |rule: &str| {
        matches
            .iter()
            .find(|m| m["rule"] == rule && m["target"] == "image")
            .unwrap_or_else(|| panic!("{rule}: {matches:?}"))["file"]
            .clone()
    };
    let one = m("marker_one");
    assert_eq!(one["place"], "file", "{one}");
    assert_eq!(one["path"], "MAIL.TXT");
    assert_eq!(one["alloc"], "allocated");
    assert_eq!(one["inode"], mail["inode"]);
    assert_eq!(one["partition_offset"], part);
    let two = m("marker_two");
    assert_eq!(two["place"], "unallocated", "{two}");
    assert_eq!(two["partition_offset"], part);
    assert!(two.get("path").is_none());

    // Carving: the JPEG is the allocated PHOTO.JPG.
    let manifest = lines(&out.join("carved/manifest.csv"));
    assert_eq!(
        manifest[0],
        "offset,length,type,md5,sha256,validated,path,file,placement"
    );
    let jpeg_md5 = trawl_fixtures::md5_hex(&jpeg);
    let row = manifest
        .iter()
        .find(|l| l.contains(&jpeg_md5))
        .unwrap_or_else(|| panic!("the JPEG not carved: {manifest:?}"));
    assert!(
        row.ends_with(",PHOTO.JPG,allocated_file=PHOTO.JPG"),
        "{row}"
    );
    let lost_md5 = trawl_fixtures::md5_hex(&std::fs::read(dir.path().join("lost.jpg")).unwrap());
    let lost_row = manifest
        .iter()
        .find(|l| l.contains(&lost_md5))
        .unwrap_or_else(|| panic!("the lost JPEG not carved: {manifest:?}"));
    assert!(lost_row.ends_with(",,unallocated"), "{lost_row}");
    // --carve-scope unallocated: the lost JPEG only.
    let only = dir.path().join("only");
    run_ok(&[
        "scan",
        disk.to_str().unwrap(),
        "--out",
        only.to_str().unwrap(),
        "--analyses",
        "files,carve",
        "--carve-scope",
        "unallocated",
    ]);
    let kept = lines(&only.join("carved/manifest.csv"));
    assert!(kept.iter().any(|l| l.contains(&lost_md5)), "{kept:?}");
    assert!(!kept.iter().any(|l| l.contains(&jpeg_md5)), "{kept:?}");
    assert!(
        kept.iter()
            .skip(1)
            .all(|l| !l.contains("allocated_file=") && !l.contains("embedded_in=")),
        "{kept:?}"
    );
    let o = run(&[
        "scan",
        disk.to_str().unwrap(),
        "--out",
        dir.path().join("refused").to_str().unwrap(),
        "--analyses",
        "carve",
        "--carve-scope",
        "unallocated",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs the carve and files analyses"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // ... and so in DFXML and CASE.
    let photo = rec("PHOTO.JPG");
    let dfxml = std::fs::read_to_string(out.join("dfxml.xml")).unwrap();
    assert!(
        dfxml.contains(&format!(
            "<trawl:placement placement='allocated_file' path='PHOTO.JPG' inode='{}' alloc='allocated' partition_offset='{part}'/>",
            photo["inode"]
        )),
        "{dfxml}"
    );
    let case: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("case.jsonld")).unwrap()).unwrap();
    let graph = case["@graph"].as_array().unwrap();
    let node_of = |id: &Value| graph.iter().find(|n| &n["@id"] == id).unwrap().clone();
    let rel = graph
        .iter()
        .find(|n| n["uco-core:description"] == "allocated_file")
        .expect("a relationship from the carved JPEG to PHOTO.JPG");
    let target = node_of(&rel["uco-core:target"]["@id"]);
    assert_eq!(
        target["uco-core:hasFacet"][0]["uco-observable:filePath"], "PHOTO.JPG",
        "{target}"
    );
}

#[test]
fn nps_2010_emails_annotated_as_identify_filenames_would() {
    let test = "nps_2010_emails_annotated_as_identify_filenames_would";
    let Some(c) = corpora(test) else { return };
    if !tools(test, &["fiwalk", "python3"]) {
        return;
    }
    let img = c.join("bulk-extractor-test-data/tests/Images/nps-2010-emails.E01");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ok(&[
        "scan",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--analyses",
        "files,features",
    ]);
    let xml = dir.path().join("fiwalk.xml");
    sh(Command::new("fiwalk").arg("-X").arg(&xml).arg(&img));
    let ours = ours(&out, "email");
    let theirs = reference(&xml, &out.join("features/email.txt"));
    assert!(ours.len() > 20, "{} e-mail features", ours.len());
    assert!(
        ours.iter().filter(|o| o.1.is_some()).count() > 10,
        "most features are in files: {ours:?}"
    );
    let differ: Vec<_> = ours.iter().zip(&theirs).filter(|(a, b)| a != b).collect();
    assert!(differ.is_empty(), "differences: {differ:#?}");
    assert_eq!(ours.len(), theirs.len());
}

/// A GPT disk of a FAT16, an ext4 and an NTFS partition (the layout of
/// `files::build_disk`), each holding the given files.
fn three_fs_disk(dir: &Path, files: &[(usize, &str, Vec<u8>)]) -> PathBuf {
    use crate::files::{P1, P1_LEN, P2, P2_LEN, P3, P3_LEN};
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    // FAT16 with mtools.
    let fat = dir.join("fat.img");
    sh(Command::new("mkfs.vfat")
        .args(["-F", "16", "-C"])
        .arg(&fat)
        .arg((P1_LEN / 2).to_string()));
    // ext4 from a tree.
    let tree = dir.join("etree");
    std::fs::create_dir_all(tree.join("home/user")).unwrap();
    let ntfs = dir.join("ntfs.img");
    sh(Command::new("truncate")
        .arg("-s")
        .arg((P3_LEN * 512).to_string())
        .arg(&ntfs));
    sh(Command::new("mkntfs").args(["-F", "-Q", "-q"]).arg(&ntfs));
    for (i, (part, name, data)) in files.iter().enumerate() {
        let p = src.join(format!("f{i}"));
        std::fs::write(&p, data).unwrap();
        match part {
            0 => sh(Command::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .arg("-i")
                .arg(&fat)
                .arg(&p)
                .arg(format!("::/{name}"))),
            1 => {
                std::fs::write(tree.join(name), data).unwrap();
            }
            _ => sh(Command::new("ntfscp")
                .arg("-f")
                .arg(&ntfs)
                .arg(&p)
                .arg(name)),
        }
    }
    let ext = dir.join("ext.img");
    sh(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg(&ext)
        .arg(format!("{}k", P2_LEN / 2)));
    let disk = dir.join("disk3.img");
    sh(Command::new("truncate")
        .arg("-s")
        .arg(((P3 + P3_LEN + 2048) * 512).to_string())
        .arg(&disk));
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg(&disk)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            format!(
                "label: gpt\nstart={P1}, size={P1_LEN}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\nstart={P2}, size={P2_LEN}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\nstart={P3}, size={P3_LEN}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n"
            )
            .as_bytes(),
        )
        .unwrap();
    assert!(child.wait().unwrap().success());
    for (img, start) in [(&fat, P1), (&ext, P2), (&ntfs, P3)] {
        sh(Command::new("dd")
            .arg(format!("if={}", img.display()))
            .arg(format!("of={}", disk.display()))
            .args(["bs=512", "conv=notrunc", "status=none"])
            .arg(format!("seek={start}")));
    }
    disk
}

#[test]
fn planted_features_attributed_to_their_files_in_fat_ext4_and_ntfs() {
    let test = "planted_features_attributed_to_their_files_in_fat_ext4_and_ntfs";
    if !tools(
        test,
        &[
            "mkfs.vfat",
            "mcopy",
            "mke2fs",
            "mkntfs",
            "ntfscp",
            "sfdisk",
            "fiwalk",
            "python3",
        ],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Each file: text with its own address, padded to several blocks (and
    // a small one: NTFS keeps it resident in its MFT entry).
    let body = |addr: &str, pad: usize| {
        let mut v = b"\n".repeat(pad);
        v.extend_from_slice(format!(" contact {addr} today\n").as_bytes());
        v.extend(b"\n".repeat(pad));
        v
    };
    let planted: Vec<(usize, &str, &str, Vec<u8>)> = vec![
        (
            0,
            "FAT1.TXT",
            "one.fat@attrib-fat.org",
            body("one.fat@attrib-fat.org", 3000),
        ),
        (
            0,
            "FAT2.TXT",
            "two.fat@attrib-fat.org",
            body("two.fat@attrib-fat.org", 10),
        ),
        (
            1,
            "home/user/ext1.txt",
            "one.ext@attrib-ext.org",
            body("one.ext@attrib-ext.org", 9000),
        ),
        (
            1,
            "ext2.txt",
            "two.ext@attrib-ext.org",
            body("two.ext@attrib-ext.org", 20),
        ),
        (
            2,
            "ntfs1.txt",
            "one.ntfs@attrib-ntfs.org",
            body("one.ntfs@attrib-ntfs.org", 9000),
        ),
        (
            2,
            "ntfs2.txt",
            "two.ntfs@attrib-ntfs.org",
            body("two.ntfs@attrib-ntfs.org", 30),
        ),
    ];
    let files: Vec<(usize, &str, Vec<u8>)> = planted
        .iter()
        .map(|(p, n, _, d)| (*p, *n, d.clone()))
        .collect();
    let disk = three_fs_disk(dir.path(), &files);
    let out = dir.path().join("out");
    run_ok(&[
        "scan",
        disk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--analyses",
        "files,features",
        "--shard-size",
        "1MiB",
    ]);
    let email = annotated(&out, "email");
    for (_, name, addr, data) in &planted {
        let rows: Vec<&Vec<String>> = email.iter().filter(|c| c[1] == *addr).collect();
        assert_eq!(rows.len(), 1, "{addr}: {email:?}");
        assert_eq!(
            rows[0].get(3).map(String::as_str),
            Some(*name),
            "{addr}: {:?}",
            rows[0]
        );
        assert_eq!(
            rows[0].get(4).map(String::as_str),
            Some(trawl_fixtures::md5_hex(data).as_str()),
            "{addr}"
        );
    }
    // The same as identify_filenames.py from fiwalk's DFXML but for one
    // difference, asserted: the small NTFS file is resident in its MFT
    // entry; fiwalk writes a resident attribute's byte run with
    // img_offset 0, so identify_filenames names $MFT, trawl the file itself.
    let xml = dir.path().join("fiwalk.xml");
    sh(Command::new("fiwalk").arg("-X").arg(&xml).arg(&disk));
    let theirs = reference(&xml, &out.join("features/email.txt"));
    let ours = ours(&out, "email");
    assert_eq!(ours.len(), theirs.len());
    let (mut compared, mut resident) = (0, 0);
    for (o, t) in ours.iter().zip(&theirs) {
        if t.1.as_deref() == Some("$MFT") && o.1.as_deref() == Some("ntfs2.txt") {
            resident += 1;
            continue;
        }
        assert_eq!(o, t);
        compared += 1;
    }
    assert_eq!(resident, 1, "{ours:?} {theirs:?}");
    assert!(
        compared >= 5,
        "{compared} lines compared: {ours:?} {theirs:?}"
    );
}

/// A FAT16 disk where a deleted JPEG's clusters lie on either side of
/// allocated ones (written into the gaps of deleted files, then deleted),
/// an allocated JPEG, and JPEGs outside the partition (before it and
/// after it). Returns the disk, the fragmented JPEG and the allocated one.
fn build_split(dir: &Path) -> (PathBuf, Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    let fat = dir.join("split.img");
    sh(Command::new("mkfs.vfat")
        .args(["-F", "16", "-n", "SPLIT", "-C"])
        .arg(&fat)
        .arg((P1_LEN / 2).to_string()));
    let boot = std::fs::read(&fat).unwrap();
    let cluster = u16::from_le_bytes([boot[11], boot[12]]) as usize * boot[13] as usize;
    let mt = |args: &[&str]| mtools(&fat, args);
    let put = |name: &str, data: &[u8]| put_file(dir, name, data);
    let mut rng = trawl_fixtures::util::Rng::new(2020);
    let mut jpeg = |min: usize| loop {
        let mut spec = trawl_fixtures::formats::images::small_spec(&mut rng);
        spec.width = 400;
        spec.height = 300;
        spec.detail = 40;
        let j = trawl_fixtures::formats::images::jpeg(&mut rng, &spec);
        if j.len() >= min {
            return j;
        }
    };
    let lost = jpeg(12 * cluster);
    let kept = jpeg(0);
    let outside = vec![jpeg(0), jpeg(0)];
    // Gaps of k clusters: the lost JPEG spans three of them.
    let k = (lost.len() * 2).div_ceil(5 * cluster);
    assert!(lost.len() > 2 * k * cluster && lost.len() <= 3 * k * cluster);
    for i in 0..6 {
        let p = put(&format!("fill{i}"), &vec![b'a' + i as u8; k * cluster]);
        mt(&["mcopy", p.to_str().unwrap(), &format!("::/FILL{i}.BIN")]);
    }
    mt(&[
        "mcopy",
        put("kept.jpg", &kept).to_str().unwrap(),
        "::/KEPT.JPG",
    ]);
    for i in [0, 2, 4] {
        mt(&["mdel", &format!("::/FILL{i}.BIN")]);
    }
    mt(&[
        "mcopy",
        put("lost.jpg", &lost).to_str().unwrap(),
        "::/LOST.JPG",
    ]);
    mt(&["mdel", "::/LOST.JPG"]);
    let disk = mbr_disk(dir, &fat);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
        f.seek(SeekFrom::Start(64 << 10)).unwrap();
        f.write_all(&outside[0]).unwrap();
        f.seek(SeekFrom::Start((P1 + P1_LEN) * 512 + 4096)).unwrap();
        f.write_all(&outside[1]).unwrap();
    }
    (disk, lost, kept, outside)
}

/// `--carve-scope unallocated` carves the unallocated space of each file
/// system and the space outside them, end to end: the same JPEGs as
/// foremost on that stream (the space before the partition, `blkls` of
/// the file system, the space after it), with the deleted JPEG whose
/// clusters an allocated file separates recovered whole, in three byte
/// runs. Carving everything finds the allocated JPEG but not the split one.
#[test]
fn carving_unallocated_space_equals_foremost_on_blkls() {
    let test = "carving_unallocated_space_equals_foremost_on_blkls";
    if !tools(
        test,
        &[
            "mkfs.vfat",
            "mcopy",
            "mdel",
            "sfdisk",
            "blkls",
            "foremost",
            "yara",
        ],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (disk, lost, kept, outside) = build_split(dir.path());
    let md5 = |b: &[u8]| trawl_fixtures::md5_hex(b);
    // The reference: foremost on the stream.
    let image = std::fs::read(&disk).unwrap();
    let (p_start, p_end) = ((P1 * 512) as usize, ((P1 + P1_LEN) * 512) as usize);
    let blkls = Command::new("blkls")
        .args(["-A", "-o", &P1.to_string()])
        .arg(&disk)
        .output()
        .unwrap();
    assert!(
        blkls.status.success(),
        "{}",
        String::from_utf8_lossy(&blkls.stderr)
    );
    let mut stream = image[..p_start].to_vec();
    stream.extend_from_slice(&blkls.stdout);
    stream.extend_from_slice(&image[p_end..]);
    let stream_path = dir.path().join("stream.raw");
    std::fs::write(&stream_path, &stream).unwrap();
    let fm = dir.path().join("foremost");
    sh(Command::new("foremost")
        .args(["-Q", "-t", "jpg", "-o"])
        .arg(&fm)
        .arg("-i")
        .arg(&stream_path));
    let mut reference = std::collections::BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(fm.join("jpg")) {
        for e in rd {
            reference.insert(md5(&std::fs::read(e.unwrap().path()).unwrap()));
        }
    }
    let want: std::collections::BTreeSet<String> = [&lost, &outside[0], &outside[1]]
        .iter()
        .map(|b| md5(b))
        .collect();
    assert_eq!(reference, want, "foremost on the stream");

    let carved = |out: &Path| -> Vec<Vec<String>> {
        lines(&out.join("carved/manifest.csv"))
            .iter()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect())
            .filter(|c: &Vec<String>| c[2] == "jpg")
            .collect()
    };
    // A YARA string across the split JPEG's first break: in the carved
    // file, never on the image.
    let first_run = {
        let image_pos = image
            .windows(64)
            .position(|w| w == &lost[..64])
            .expect("the split JPEG's first cluster on the disk");
        (0..lost.len())
            .find(|&i| image[image_pos + i] != lost[i])
            .expect("the JPEG is split")
    };
    let hex: Vec<String> = lost[first_run - 8..first_run + 8]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let rules = dir.path().join("across.yar");
    std::fs::write(
        &rules,
        format!(
            "rule across_the_break {{ strings: $a = {{ {} }} condition: $a }}\n",
            hex.join(" ")
        ),
    )
    .unwrap();
    for (shard, workers) in [("64KiB", "3"), ("64MiB", "1")] {
        let out = dir.path().join(format!("only-{shard}"));
        run_ok(&[
            "scan",
            disk.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--analyses",
            "files,carve,yara",
            "--rules",
            rules.to_str().unwrap(),
            "--carve-scope",
            "unallocated",
            "--shard-size",
            shard,
            "--workers",
            workers,
        ]);
        let matches: Vec<Value> = lines(&out.join("yara/matches.jsonl"))
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let lost_row = carved(&out)
            .into_iter()
            .find(|c| c[3] == md5(&lost))
            .expect("the split JPEG carved");
        // In the carved file and in the deleted file (TSK-style recovery
        // of a deleted FAT file skips allocated clusters too); never on
        // the image.
        let targets: Vec<&str> = matches
            .iter()
            .map(|m| m["target"].as_str().unwrap())
            .collect();
        assert_eq!(
            targets,
            [
                format!("carved/jpg/{}.jpg", lost_row[0]),
                "fs:1048576/_OST.JPG".to_string()
            ],
            "{matches:?}"
        );
        for m in &matches {
            assert_eq!(m["strings"][0]["offset"], (first_run - 8) as u64, "{m}");
        }
        let got: std::collections::BTreeSet<String> =
            carved(&out).iter().map(|c| c[3].clone()).collect();
        assert_eq!(got, reference, "{shard}: trawl's JPEGs against foremost's");
        // The split JPEG: at its first cluster, in three runs that are
        // its clusters.
        let dfxml = std::fs::read_to_string(out.join("dfxml.xml")).unwrap();
        let obj = dfxml
            .split("<fileobject>")
            .find(|o| o.contains(&md5(&lost)))
            .expect("the split JPEG in DFXML");
        let runs: Vec<(u64, u64, u64)> = obj
            .split("<byte_run ")
            .skip(1)
            .map(|r| {
                let attr = |k: &str| -> u64 {
                    let a = r.split(&format!("{k}='")).nth(1).unwrap();
                    a[..a.find('\'').unwrap()].parse().unwrap()
                };
                (attr("file_offset"), attr("img_offset"), attr("len"))
            })
            .collect();
        assert_eq!(runs.len(), 3, "{obj}");
        let mut joined = Vec::new();
        for &(fo, io, len) in &runs {
            assert_eq!(fo as usize, joined.len());
            joined.extend_from_slice(&image[io as usize..(io + len) as usize]);
        }
        assert_eq!(joined, lost);
        let note = std::fs::read_to_string(out.join("report.json")).unwrap();
        assert!(note.contains("--carve-scope unallocated: "), "{note}");
    }
    // Everything: the allocated JPEG, not the split one.
    let all = dir.path().join("all");
    run_ok(&[
        "scan",
        disk.to_str().unwrap(),
        "--out",
        all.to_str().unwrap(),
        "--analyses",
        "files,carve",
    ]);
    let got: Vec<String> = carved(&all).iter().map(|c| c[3].clone()).collect();
    assert!(got.contains(&md5(&kept)), "{got:?}");
    assert!(!got.contains(&md5(&lost)), "{got:?}");
}
