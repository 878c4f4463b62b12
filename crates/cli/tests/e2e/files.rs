//! Issue 19: file systems. Disks built here with the Debian file-system
//! tools (FAT16, ext4 and NTFS partitions behind GPT and MBR, deleted and
//! fragmented files), examined with `--analyses files`: every planted file
//! found with its path and MD5; the listing equal to fiwalk's (The Sleuth
//! Kit) on (path, size, MD5); identical output at two shard and task sizes,
//! embedded and on a cluster of three workers; files.hashdeep read by
//! hashdeep, bodyfile.txt by mactime; known and notable sets applied.

use crate::cluster::{
    assert_same, done, fingerprint, results, start_scheduler, start_worker, submit, wait_for,
};
use crate::common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLS: &[&str] = &[
    "sfdisk",
    "mkfs.vfat",
    "mcopy",
    "mdel",
    "mke2fs",
    "debugfs",
    "mkntfs",
    "ntfscp",
    "fiwalk",
    "python3",
    "hashdeep",
    "mactime",
];

/// Deterministic pseudo-random bytes.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A planted file: (partition index, path, content MD5, deleted).
pub type Planted = Vec<(usize, String, String, bool)>;

const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
pub const P1: u64 = 2048; // sectors
pub const P1_LEN: u64 = 40960; // 20 MiB FAT16
pub const P2: u64 = P1 + P1_LEN;
pub const P2_LEN: u64 = 40960; // 20 MiB ext4
pub const P3: u64 = P2 + P2_LEN;
pub const P3_LEN: u64 = 40960; // 20 MiB NTFS

/// Builds a disk of three partitions (GPT or MBR) and returns it with the
/// files planted in it.
pub fn build_disk(dir: &Path, gpt: bool) -> (PathBuf, Planted) {
    let mut planted = Vec::new();
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("docs/deep")).unwrap();
    let put = |rel: &str, data: &[u8]| {
        let p = tree.join(rel);
        std::fs::write(&p, data).unwrap();
        fixtures_md5(data)
    };
    // FAT16: small files, one deleted, then a big one that must fragment.
    let fat = dir.join("fat.img");
    sh(Command::new("mkfs.vfat")
        .args(["-F", "16", "-n", "TRAWLFAT", "-C"])
        .arg(&fat)
        .arg((P1_LEN / 2).to_string()));
    let mt = |args: &[&str]| mtools(&fat, args);
    mt(&["mmd", "::/DOCS"]);
    for i in 0..6 {
        let name = format!("fill{i}.bin");
        let m = put(&name, &bytes(100 + i, 5000));
        mt(&[
            "mcopy",
            tree.join(&name).to_str().unwrap(),
            &format!("::/FILL{i}.BIN"),
        ]);
        if i % 2 == 0 {
            mt(&["mdel", &format!("::/FILL{i}.BIN")]);
        } else {
            planted.push((0, format!("FILL{i}.BIN"), m, false));
        }
    }
    let m = put("frag.bin", &bytes(7, 40000));
    mt(&[
        "mcopy",
        tree.join("frag.bin").to_str().unwrap(),
        "::/DOCS/FRAG.BIN",
    ]);
    planted.push((0, "DOCS/FRAG.BIN".into(), m, false));
    let m = put("gone.txt", b"deleted but contiguous\n");
    mt(&[
        "mcopy",
        tree.join("gone.txt").to_str().unwrap(),
        "::/DOCS/GONE.TXT",
    ]);
    mt(&["mdel", "::/DOCS/GONE.TXT"]);
    planted.push((0, "DOCS/_ONE.TXT".into(), m, true));

    // ext4 from a tree, one file deleted with debugfs.
    let e = dir.join("etree");
    std::fs::create_dir_all(e.join("docs/deep")).unwrap();
    for (rel, data) in [
        ("a.txt", b"hello\n".to_vec()),
        ("docs/report.pdf", bytes(11, 70000)),
        ("docs/deep/empty", Vec::new()),
        ("docs/deep/r\u{e9}sum\u{e9}.txt", bytes(12, 4097)),
        ("docs/victim.bin", bytes(13, 3000)),
    ] {
        std::fs::write(e.join(rel), &data).unwrap();
        if rel != "docs/victim.bin" {
            planted.push((1, rel.to_string(), fixtures_md5(&data), false));
        }
    }
    let ext = dir.join("ext.img");
    sh(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "1024", "-d"])
        .arg(&e)
        .arg(&ext)
        .arg(format!("{}k", P2_LEN / 2)));
    sh(Command::new("debugfs")
        .args(["-w", "-R", "rm docs/victim.bin"])
        .arg(&ext));

    // NTFS with ntfscp.
    let ntfs = dir.join("ntfs.img");
    sh(Command::new("truncate")
        .arg("-s")
        .arg((P3_LEN * 512).to_string())
        .arg(&ntfs));
    sh(Command::new("mkntfs")
        .args(["-F", "-Q", "-q", "-L", "TRAWLNTFS"])
        .arg(&ntfs));
    for (i, (name, n)) in [
        ("notes.txt", 100usize),
        ("photo.jpg", 90000),
        ("zero.dat", 0),
    ]
    .iter()
    .enumerate()
    {
        let data = bytes(20 + i as u64, *n);
        let m = put(name, &data);
        sh(Command::new("ntfscp")
            .arg("-f")
            .arg(&ntfs)
            .arg(tree.join(name))
            .arg(name));
        planted.push((2, (*name).to_string(), m, false));
    }

    // The disk: a partition table, the three file systems copied in.
    let disk = dir.join(if gpt { "gpt.img" } else { "mbr.img" });
    let total = (P3 + P3_LEN + 2048) * 512;
    sh(Command::new("truncate")
        .arg("-s")
        .arg(total.to_string())
        .arg(&disk));
    let table = if gpt {
        format!(
            "label: gpt\nstart={P1}, size={P1_LEN}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"fat\"\nstart={P2}, size={P2_LEN}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"linux\"\nstart={P3}, size={P3_LEN}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"windows\"\n"
        )
    } else {
        format!(
            "label: dos\nstart={P1}, size={P1_LEN}, type=6\nstart={P2}, size={P2_LEN}, type=83\nstart={P3}, size={P3_LEN}, type=7\n"
        )
    };
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
        .write_all(table.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    for (img, start) in [(&fat, P1), (&ext, P2), (&ntfs, P3)] {
        sh(Command::new("dd")
            .arg(format!("if={}", img.display()))
            .arg(format!("of={}", disk.display()))
            .args(["bs=512", "conv=notrunc,sparse", "status=none"])
            .arg(format!("seek={start}")));
    }
    (disk, planted)
}

fn fixtures_md5(data: &[u8]) -> String {
    trawl_fixtures::md5_hex(data)
}

fn files_of(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("files/files.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn scan(image: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "scan",
        image.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--analyses",
        "files",
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

/// fiwalk's file objects: (partition offset, path) -> (size, md5, alloc,
/// name type).
type Fiwalk = BTreeMap<(u64, String), (u64, Option<String>, bool, String)>;

fn fiwalk(image: &Path, dir: &Path) -> Fiwalk {
    let xml = dir.join("fiwalk.xml");
    sh(Command::new("fiwalk").arg("-X").arg(&xml).arg(image));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fiwalk_files.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let path = v["path"].as_str().unwrap_or("").to_string();
        if path.is_empty()
            || path.ends_with("/.")
            || path.ends_with("/..")
            || path == "."
            || path == ".."
        {
            continue;
        }
        m.insert(
            (v["partition_offset"].as_u64().unwrap(), path),
            (
                v["size"].as_u64().unwrap_or(0),
                v["md5"].as_str().map(str::to_string),
                v["alloc"].as_bool().unwrap_or(false),
                v["type"].as_str().unwrap_or("").to_string(),
            ),
        );
    }
    m
}

#[test]
fn files_on_built_disks_match_fiwalk_and_every_planted_file() {
    if !tools(
        "files_on_built_disks_match_fiwalk_and_every_planted_file",
        TOOLS,
    ) {
        return;
    }
    for gpt in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (disk, planted) = build_disk(dir.path(), gpt);
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        scan(
            &disk,
            &a,
            &[
                "--shard-size",
                "1MiB",
                "--files-task-size",
                "16KiB",
                "--workers",
                "1",
            ],
        );
        scan(&disk, &b, &["--shard-size", "16MiB", "--workers", "3"]);
        assert_same(
            &fingerprint(&b),
            &fingerprint(&a),
            "shard, task size and worker count",
        );
        let r = report(&a);
        let fsum = &r["files"];
        assert_eq!(fsum["volume_system"], if gpt { "gpt" } else { "mbr" });
        let kinds: Vec<&str> = fsum["filesystems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fs"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["fat16", "ext4", "ntfs"], "{fsum}");
        assert_eq!(fsum["limitations"].as_array().unwrap().len(), 0, "{fsum}");
        let files = files_of(&a);
        let offsets = [P1 * 512, P2 * 512, P3 * 512];
        let find = |part: usize, path: &str| {
            files
                .iter()
                .find(|f| f["partition_offset"] == offsets[part] && f["path"] == path)
                .unwrap_or_else(|| {
                    panic!(
                        "{path} not listed in partition {part} ({} records)",
                        files.len()
                    )
                })
        };
        for (part, path, md5, deleted) in &planted {
            let f = find(*part, path);
            assert_eq!(f["md5"], md5.as_str(), "{path}: {f}");
            assert_eq!(
                f["alloc"],
                if *deleted { "deleted" } else { "allocated" },
                "{path}"
            );
            assert_eq!(f["type"], "file");
        }
        // The deleted ext4 file is listed as deleted (its extents were
        // zeroed by the delete: no content).
        let victim = find(1, "docs/victim.bin");
        assert_eq!(victim["alloc"], "deleted");
        // Every record's runs are inside its partition.
        for f in &files {
            let base = f["partition_offset"].as_u64().unwrap();
            for run in f["runs"].as_array().unwrap() {
                let o = run[0].as_u64().unwrap();
                assert!(o >= base && o < base + 20 * 1024 * 1024, "{f}");
            }
        }

        // fiwalk: every allocated regular file equal on (size, md5); every
        // deleted file fiwalk hashes listed as deleted with the same MD5.
        let fw = fiwalk(&disk, dir.path());
        let ours: BTreeMap<(u64, String), &Value> = files
            .iter()
            .map(|f| {
                (
                    (
                        f["partition_offset"].as_u64().unwrap(),
                        f["path"].as_str().unwrap().to_string(),
                    ),
                    f,
                )
            })
            .collect();
        let mut compared = 0;
        let mut differences = BTreeSet::new();
        for ((off, path), (size, md5, alloc, t)) in &fw {
            if t != "r" && t != "v" {
                continue;
            }
            let Some(f) = ours.get(&(*off, path.clone())) else {
                differences.insert(format!("missing {off}/{path}"));
                continue;
            };
            // fiwalk gives no MD5 for an empty file; trawl gives the empty
            // file's digests.
            let md5 = match md5 {
                None if *size == 0 => Some(EMPTY_MD5.to_string()),
                m => m.clone(),
            };
            if *alloc {
                compared += 1;
                if f["size"].as_u64() != Some(*size) || f["md5"].as_str() != md5.as_deref() {
                    differences.insert(format!(
                        "{path}: fiwalk {size} {md5:?}, trawl {} {}",
                        f["size"], f["md5"]
                    ));
                }
            } else if md5.is_some() && *size > 0 && f["md5"].as_str() != md5.as_deref() {
                differences.insert(format!(
                    "deleted {path}: fiwalk {md5:?}, trawl {}",
                    f["md5"]
                ));
            }
        }
        // Known, documented difference (crates/fs/src/ntfs.rs): fiwalk
        // sizes $Secure 0 but hashes its $SDS stream under that name;
        // trawl lists the stream as `$Secure:$SDS`.
        let expected: BTreeSet<String> = fw
            .iter()
            .filter(|((_, p), _)| p == "$Secure")
            .map(|((_, p), (size, md5, _, _))| {
                let f = ours[&(P3 * 512, p.clone())];
                format!(
                    "{p}: fiwalk {size} {md5:?}, trawl {} {}",
                    f["size"], f["md5"]
                )
            })
            .collect();
        assert_eq!(differences, expected, "differences with fiwalk");
        assert!(compared >= 15, "only {compared} files compared with fiwalk");

        // hashdeep reads files.hashdeep: every planted allocated file of
        // the tree matches it.
        let out = Command::new("hashdeep")
            .arg("-k")
            .arg(a.join("files/files.hashdeep"))
            .args(["-m", "-b", "-r"])
            .arg(dir.path().join("tree"))
            .output()
            .unwrap();
        let matched = String::from_utf8_lossy(&out.stdout);
        for n in ["notes.txt", "photo.jpg", "frag.bin"] {
            assert!(
                matched.lines().any(|l| l.trim() == n),
                "hashdeep did not match {n}: {matched}"
            );
        }
        // mactime builds a timeline from bodyfile.txt.
        let out = Command::new("mactime")
            .arg("-b")
            .arg(a.join("files/bodyfile.txt"))
            .arg("-d")
            .output()
            .unwrap();
        assert!(out.status.success());
        let tl = String::from_utf8_lossy(&out.stdout);
        assert!(tl.contains("/@") && tl.contains("photo.jpg"), "{tl}");
        // DFXML: one volume per file system, the files inside.
        let x = std::fs::read_to_string(a.join("dfxml.xml")).unwrap();
        assert_eq!(x.matches("<volume offset=").count(), 3);
        assert!(x.contains("<filename>photo.jpg</filename>"));
    }
}

#[test]
fn files_known_and_notable_sets_and_a_cluster_of_three_workers() {
    if !tools(
        "files_known_and_notable_sets_and_a_cluster_of_three_workers",
        TOOLS,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (disk, planted) = build_disk(dir.path(), true);
    // A notable md5sum list and a known hashdeep list, imported and raw.
    let photo = planted
        .iter()
        .find(|p| p.1 == "photo.jpg")
        .unwrap()
        .2
        .clone();
    let notes = planted
        .iter()
        .find(|p| p.1 == "notes.txt")
        .unwrap()
        .2
        .clone();
    let notable = dir.path().join("notable.md5");
    std::fs::write(&notable, format!("{photo}  photo.jpg\n")).unwrap();
    let known_list = dir.path().join("known.md5");
    std::fs::write(&known_list, format!("{notes}  notes.txt\n")).unwrap();
    let table = dir.path().join("known.tkh");
    run_ok(&[
        "known",
        "import",
        known_list.to_str().unwrap(),
        "--out",
        table.to_str().unwrap(),
        "--name",
        "baseline",
    ]);
    run_ok(&["known", "verify", table.to_str().unwrap()]);
    let embedded = dir.path().join("embedded");
    scan(
        &disk,
        &embedded,
        &[
            "--known",
            table.to_str().unwrap(),
            "--notable",
            notable.to_str().unwrap(),
        ],
    );
    let files = files_of(&embedded);
    let by = |name: &str| files.iter().find(|f| f["path"] == name).unwrap().clone();
    assert_eq!(by("photo.jpg")["known"], "notable");
    // A list opened directly is named by its file stem.
    assert_eq!(by("photo.jpg")["known_set"], "notable");
    assert_eq!(by("notes.txt")["known"], "known");
    assert_eq!(by("notes.txt")["known_set"], "baseline");
    assert!(by("zero.dat").get("known").is_none());
    let n = std::fs::read_to_string(embedded.join("files/notable.txt")).unwrap();
    assert!(n.contains(&photo) && n.contains("photo.jpg"), "{n}");
    assert_eq!(report(&embedded)["files"]["notable"], 1);
    // A notable file is an alert: counted with the findings.
    assert_eq!(report(&embedded)["counts"]["files"]["notable"], 1);
    assert_eq!(report(&embedded)["counts"]["files"]["known"], 1);

    // The same job on a scheduler with three workers: the same files.
    let data = tempfile::tempdir().unwrap();
    let s = start_scheduler(
        data.path(),
        "127.0.0.1:0",
        &["--evidence-root", dir.path().to_str().unwrap()],
    );
    let _w: Vec<_> = (0..3)
        .map(|i| start_worker(&s.url, &format!("w{i}"), 2, 0))
        .collect();
    let job = submit(
        &s.url,
        &disk,
        "C-FILES",
        &[
            "--analyses",
            "files",
            "--files-task-size",
            "32KiB",
            "--known",
            table.to_str().unwrap(),
            "--notable",
            notable.to_str().unwrap(),
        ],
    );
    let st = wait_for(&s.url, &job, "the files job", 180, done);
    assert_eq!(st["state"], "completed", "{st}");
    let cl = dir.path().join("cluster");
    results(&s.url, &job, &cl);
    assert_same(
        &fingerprint(&cl),
        &fingerprint(&embedded),
        "cluster vs embedded",
    );
}
