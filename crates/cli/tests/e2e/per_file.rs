//! Issue 20: every file scanned as a file. Per-file YARA equals `yara` (and
//! yara-x) run on the files `tsk_recover` extracts, with the external
//! variables set; a string that lies across the boundary of a fragmented
//! file's runs is found in the file at its logical offset, and not on the
//! image.

use crate::common::*;
use crate::yara::{
    CompiledYara, Matches, diff, restrict, rule_files, trawl_matches, yara_accepted,
    yarax_accepted, yarax_file,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every regular file under `root`, as (path relative to it, path).
fn tree(root: &Path) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                v.push((p.strip_prefix(root).unwrap().display().to_string(), p));
            }
        }
    }
    v.sort();
    v
}

/// The external variables trawl sets for a file-system file.
fn externals(path: &str) -> [(&'static str, String); 4] {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_string())
        .unwrap_or_default();
    [
        ("filename", name),
        ("filepath", path.to_string()),
        ("extension", ext),
        ("filetype", "file".to_string()),
    ]
}

/// A FAT16 image in which `FRAG2.BIN` is written into the gaps left by
/// deleted files, with `marker` across the end of its first run. Returns
/// the image and the marker's offset in the file.
fn fragmented_fat(dir: &Path, marker: &[u8]) -> (PathBuf, usize) {
    let fat = dir.join("frag.img");
    sh(Command::new("mkfs.vfat")
        .args(["-F", "16", "-n", "FRAG", "-C"])
        .arg(&fat)
        .arg("20480"));
    let boot = std::fs::read(&fat).unwrap();
    let cluster = u16::from_le_bytes([boot[11], boot[12]]) as usize * boot[13] as usize;
    let mt = |args: &[&str]| mtools(&fat, args);
    // Six files of 3 clusters; the even ones deleted: 3-cluster gaps.
    for i in 0..6 {
        let p = dir.join(format!("fill{i}"));
        std::fs::write(&p, vec![b'a' + i as u8; 3 * cluster]).unwrap();
        mt(&["mcopy", p.to_str().unwrap(), &format!("::/FILL{i}.BIN")]);
    }
    for i in [0, 2, 4] {
        mt(&["mdel", &format!("::/FILL{i}.BIN")]);
    }
    let gap = 3 * cluster;
    // The boundary falls 20 bytes into the marker.
    let at = gap - 20;
    let mut data: Vec<u8> = (0..7 * cluster).map(|i| b"lorem ipsum\n"[i % 12]).collect();
    data[at - 1] = b' ';
    // And one inside the first run: seen both on the image and in the file.
    let inside = b" inside.first@fragment-example.org ";
    data[100..100 + inside.len()].copy_from_slice(inside);
    data[at..at + marker.len()].copy_from_slice(marker);
    let p = dir.join("frag2");
    std::fs::write(&p, &data).unwrap();
    mt(&["mcopy", p.to_str().unwrap(), "::/FRAG2.BIN"]);
    (fat, at)
}

#[test]
fn a_string_across_a_fragment_boundary_is_found_in_the_file_only() {
    let test = "a_string_across_a_fragment_boundary_is_found_in_the_file_only";
    if !tools(test, &["mkfs.vfat", "mcopy", "mdel"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // An e-mail address cut by the boundary, then a YARA string.
    let marker = b"frag.user@boundary-example.org TRAWL-ACROSS-THE-FRAGMENT-BOUNDARY";
    let (img, at) = fragmented_fat(dir.path(), marker);
    let rules = dir.path().join("r.yar");
    std::fs::write(
        &rules,
        "rule across { strings: $a = \"frag.user@boundary-example.org TRAWL-ACROSS-THE-FRAGMENT-BOUNDARY\" condition: $a }\n",
    )
    .unwrap();
    for (shard, workers) in [("64KiB", "1"), ("16MiB", "3")] {
        let out = dir.path().join(format!("out-{shard}"));
        run_ok(&[
            "scan",
            img.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--analyses",
            "files,yara,features",
            "--rules",
            rules.to_str().unwrap(),
            "--shard-size",
            shard,
            "--workers",
            workers,
        ]);
        // The file is fragmented: the marker's bytes are in two runs.
        let files = std::fs::read_to_string(out.join("files/files.jsonl")).unwrap();
        let rec: serde_json::Value = files
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|f| f["path"] == "FRAG2.BIN")
            .expect("FRAG2.BIN listed");
        let runs = rec["runs"].as_array().unwrap();
        assert!(runs.len() >= 2, "not fragmented: {rec}");
        let first = runs[0][1].as_u64().unwrap() as usize;
        assert!(at < first && at + marker.len() > first, "{rec}");
        assert_ne!(
            runs[0][0].as_u64().unwrap() + first as u64,
            runs[1][0].as_u64().unwrap()
        );
        let m = trawl_matches(&out);
        let want: Matches = [(
            (
                "fs:0/FRAG2.BIN".to_string(),
                "r.yar".to_string(),
                "across".to_string(),
            ),
            BTreeSet::from([("$a".to_string(), at as u64)]),
        )]
        .into();
        assert_eq!(m, want, "shard {shard}: {}", diff(&m, &want));
        // The e-mail address: found once, through the file, at its logical
        // offset (FILESTART-FILE-L), its offset the image offset of its
        // first byte; the raw pass saw only the two halves.
        let start = runs[0][0].as_u64().unwrap();
        let email = std::fs::read_to_string(out.join("features/email.txt")).unwrap();
        let lines: Vec<&str> = email.lines().filter(|l| l.contains("frag.user@")).collect();
        assert_eq!(lines.len(), 1, "{email}");
        let cols: Vec<&str> = lines[0].split('\t').collect();
        assert_eq!(cols[0], format!("{start}-FILE-{at}"), "{email}");
        assert_eq!(cols[1], "frag.user@boundary-example.org");
        // Seen on the image and through the file: once, as the image has it.
        let inside: Vec<&str> = email
            .lines()
            .filter(|l| l.contains("inside.first@"))
            .collect();
        assert_eq!(inside.len(), 1, "{email}");
        assert_eq!(
            inside[0].split('\t').next(),
            Some((start + 101).to_string().as_str()),
            "{email}"
        );
        let annotated = std::fs::read_to_string(out.join("features/annotated/email.txt")).unwrap();
        let line = annotated
            .lines()
            .find(|l| l.contains("frag.user@"))
            .unwrap();
        assert_eq!(line.split('\t').nth(3), Some("FRAG2.BIN"), "{annotated}");
    }
}

struct Ctx<'a> {
    files: &'a [(String, PathBuf)],
    set: &'a Path,
    compiled: &'a CompiledYara,
    both: &'a BTreeSet<(String, String)>,
}

struct Compared {
    /// Recovered files that trawl lists as symbolic links (not scanned).
    links: usize,
    got: Matches,
    scanned: usize,
    matching: usize,
    engine: Vec<String>,
}

/// trawl's per-file matches on `img` against yara-x (exactly) and the yara
/// CLI (on the rules both accept) on each file `tsk_recover -a` extracts
/// from each file system trawl found (`want` their starts in sectors).
fn compare(ctx: &Ctx, img: &Path, want: Option<&[u64]>, work: &Path) -> Compared {
    let out = work.join("out");
    run_ok(&[
        "scan",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--analyses",
        "files,yara",
        "--rules",
        ctx.set.to_str().unwrap(),
        "--shard-size",
        "4MiB",
    ]);
    let got = trawl_matches(&out);
    let starts: Vec<u64> = report(&out)["files"]["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["partition_offset"].as_u64().unwrap() / 512)
        .collect();
    if let Some(w) = want {
        assert_eq!(starts, w, "{}: file systems found", img.display());
    }
    let kinds: std::collections::BTreeMap<(u64, String), String> =
        std::fs::read_to_string(out.join("files/files.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    (
                        v["partition_offset"].as_u64().unwrap(),
                        v["path"].as_str().unwrap().to_string(),
                    ),
                    v["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    let mut r = Compared {
        links: 0,
        got: Matches::new(),
        scanned: 0,
        matching: 0,
        engine: Vec::new(),
    };
    for start in starts {
        let rec = work.join(format!("rec-{start}"));
        sh(Command::new("tsk_recover")
            .args(["-a", "-o", &start.to_string()])
            .arg(img)
            .arg(&rec));
        for (path, file) in tree(&rec) {
            // tsk_recover writes symbolic links as files too; trawl scans
            // regular files only.
            if kinds
                .get(&(start * 512, path.clone()))
                .is_some_and(|k| k != "file")
            {
                r.links += 1;
                continue;
            }
            let target = format!("fs:{}/{path}", start * 512);
            let vars = externals(&path);
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mine: Matches = got
                .iter()
                .filter(|((t, _, _), _)| *t == target)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let reference = yarax_file(ctx.files, &file, &target, &vars);
            assert!(
                mine == reference,
                "{}, {target}: trawl vs yara-x on the recovered file:\n{}",
                img.display(),
                diff(&mine, &reference)
            );
            let cli = restrict(&ctx.compiled.scan(&file, &target, &vars), ctx.both);
            let d = diff(&restrict(&reference, ctx.both), &cli);
            if !d.is_empty() {
                r.engine.push(format!("{}, {target}:\n{d}", img.display()));
            }
            r.matching += cli.len();
            r.scanned += 1;
        }
    }
    r.got = got;
    r
}

#[test]
fn per_file_yara_equals_yara_on_the_files_tsk_recover_extracts() {
    let test = "per_file_yara_equals_yara_on_the_files_tsk_recover_extracts";
    if !tools(
        test,
        &[
            "sfdisk",
            "mkfs.vfat",
            "mcopy",
            "mdel",
            "mke2fs",
            "debugfs",
            "mkntfs",
            "ntfscp",
            "tsk_recover",
            "yara",
            "yarac",
        ],
    ) {
        return;
    }
    let Some(c) = corpora(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (disk, _) = crate::files::build_disk(dir.path(), true);
    // Rules: a public set, and rules on what the planted files hold and on
    // the external variables.
    let rules = dir.path().join("rules");
    let own = rules.join("own");
    std::fs::create_dir_all(&own).unwrap();
    let community = c.join("yara-rules/yara-rules-community");
    std::fs::write(
        own.join("vars.yar"),
        "rule txt_ext { condition: extension == \"txt\" or extension == \"TXT\" }\n\
         rule in_docs { condition: filepath matches /^docs\\// or filepath matches /^DOCS\\// }\n\
         rule hello { strings: $h = \"hello\" condition: $h and filename == \"a.txt\" }\n\
         rule big { condition: filesize > 60000 and filetype == \"file\" }\n\
         rule head_zero { condition: uint8(0) == 0 }\n",
    )
    .unwrap();
    let mut files = rule_files(&own);
    for (n, p) in rule_files(&community) {
        files.push((format!("community/{n}"), p));
    }
    // trawl reads a folder of rules: the same files, named the same.
    let set = dir.path().join("set");
    for (n, p) in &files {
        let dst = set.join(n);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(p, &dst).unwrap();
    }
    let files = rule_files(&set);
    let accepted = yara_accepted(&files);
    let compiled = CompiledYara::new(&accepted);
    let both: BTreeSet<(String, String)> = {
        let yx = yarax_accepted(&files);
        let cli = yarax_accepted(&accepted);
        yx.intersection(&cli).cloned().collect()
    };
    let ctx = Ctx {
        files: &files,
        set: &set,
        compiled: &compiled,
        both: &both,
    };
    let built = compare(
        &ctx,
        &disk,
        Some(&[crate::files::P1, crate::files::P2, crate::files::P3]),
        &dir.path().join("built"),
    );
    let got = built.got.clone();
    let (mut scanned, mut matching, mut engine) = (built.scanned, built.matching, built.engine);
    // Corpus images: FAT (nps-2010-emails, E01), ext2 (dfvfs, E01), NTFS
    // with compressed and sparse files (dfir-ntfs).
    let ntfs3 = dir.path().join("ntfs3.raw");
    sh(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc {} > {}",
        c.join("dfir-ntfs-test-data/test_data/ntfs3.raw.gz")
            .display(),
        ntfs3.display()
    )));
    for (i, img) in [
        c.join("bulk-extractor-test-data/tests/Images/nps-2010-emails.E01"),
        c.join("dfvfs-test-data/test_data/ext2.E01"),
        ntfs3,
    ]
    .iter()
    .enumerate()
    {
        let r = compare(&ctx, img, None, &dir.path().join(format!("corpus{i}")));
        println!(
            "{}: {} files recovered and compared, {} symbolic links left out, {} (rule, file) matches",
            img.display(),
            r.scanned,
            r.links,
            r.matching
        );
        assert!(r.scanned > 0, "{}: nothing recovered", img.display());
        scanned += r.scanned;
        matching += r.matching;
        engine.extend(r.engine);
    }
    // Every allocated regular file was recovered and compared; no per-file
    // match for anything else.
    let targets: BTreeSet<&String> = got
        .keys()
        .map(|(t, _, _)| t)
        .filter(|t| t.starts_with("fs:"))
        .collect();
    assert!(built.scanned >= 9, "{} files recovered", built.scanned);
    assert!(matching >= 5, "{matching} (rule, file) matches for yara");
    assert!(
        got.keys()
            .any(|(t, _, r)| t.ends_with("/a.txt") && r == "hello"),
        "{targets:?}"
    );
    println!(
        "per-file YARA: {scanned} files recovered by tsk_recover, trawl equal to yara-x on each; {matching} (rule, file) matches for the yara CLI; {} per-file targets in trawl's matches",
        targets.len()
    );
    assert!(engine.is_empty(), "yara CLI vs yara-x: {engine:#?}");
}
