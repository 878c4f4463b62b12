//! Issue 25: virtual-machine disks as evidence. QCOW2, VMDK, VHD and VHDX
//! containers made by `qemu-img` from a built three-partition disk, and the
//! corpora's, read as their virtual disk: the MD5 equals that of
//! `qemu-img convert -O raw`, and the file listing, carving and features
//! equal the raw disk's, whatever the shard size and worker count.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (qemu-img format, options, label).
const CONTAINERS: &[(&str, &[&str], &str)] = &[
    ("qcow2", &["-o", "compat=0.10"], "qcow2-v2"),
    ("qcow2", &["-o", "compat=1.1"], "qcow2-v3"),
    (
        "qcow2",
        &["-c", "-o", "cluster_size=4096"],
        "qcow2-compressed",
    ),
    ("vmdk", &["-o", "subformat=monolithicSparse"], "vmdk-sparse"),
    ("vmdk", &["-o", "subformat=streamOptimized"], "vmdk-stream"),
    (
        "vmdk",
        &["-o", "subformat=twoGbMaxExtentSparse"],
        "vmdk-split-sparse",
    ),
    ("vmdk", &["-o", "subformat=monolithicFlat"], "vmdk-flat"),
    (
        "vpc",
        &["-o", "subformat=dynamic,force_size=on"],
        "vhd-dynamic",
    ),
    ("vpc", &["-o", "subformat=fixed,force_size=on"], "vhd-fixed"),
    ("vhdx", &["-o", "subformat=dynamic"], "vhdx-dynamic"),
    ("vhdx", &["-o", "subformat=fixed"], "vhdx-fixed"),
];

fn md5_file(p: &Path) -> String {
    trawl_fixtures::md5_hex(&std::fs::read(p).unwrap())
}

/// `qemu-img convert -O raw` of `img` (and what it refers to), into `out`;
/// `format` given for images qemu-img cannot probe (a fixed VHD looks raw).
fn qemu_raw(img: &Path, format: Option<&str>, out: &Path) -> PathBuf {
    let mut c = Command::new("qemu-img");
    c.args(["convert", "-O", "raw"]);
    if let Some(f) = format {
        c.args(["-f", f]);
    }
    sh(c.arg(img).arg(out));
    out.to_path_buf()
}

fn report(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

/// The data lines of every result file that depends on the image's bytes
/// only (not on its name or container): the listing, the carving manifest,
/// the feature files.
fn results(out: &Path) -> Vec<(String, Vec<String>)> {
    let mut v = Vec::new();
    let mut add = |rel: String| {
        let p = out.join(&rel);
        if let Ok(t) = std::fs::read_to_string(&p) {
            v.push((
                rel,
                t.lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(str::to_string)
                    .collect(),
            ));
        }
    };
    add("files/files.jsonl".into());
    add("carved/manifest.csv".into());
    add("yara/matches.jsonl".into());
    let mut names: Vec<String> = std::fs::read_dir(out.join("features"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".txt"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in names {
        add(format!("features/{n}"));
    }
    v
}

fn scan(images: &[&Path], out: &Path, analyses: &str, shard: &str, workers: &str) {
    let mut args: Vec<String> = vec!["scan".into()];
    if analyses.contains("yara") {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rules/demo.yar");
        args.extend(["--rules".into(), rules.display().to_string()]);
    }
    args.extend(images.iter().map(|p| p.display().to_string()));
    args.extend(
        [
            "--out",
            out.to_str().unwrap(),
            "--analyses",
            analyses,
            "--shard-size",
            shard,
            "--workers",
            workers,
        ]
        .map(String::from),
    );
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&a);
}

/// Every container format and subformat `qemu-img` makes, from a disk with
/// FAT16, ext4 and NTFS partitions: the virtual disk's MD5 is
/// `qemu-img convert -O raw`'s (and the raw disk's), its format and size are
/// in report.json, and the listing, carving and features are the raw
/// disk's, with small shards over three workers.
#[test]
fn virtual_disks_read_as_the_disk_qemu_img_converts_them_to() {
    let test = "virtual_disks_read_as_the_disk_qemu_img_converts_them_to";
    if !tools(
        test,
        &[
            "qemu-img",
            "mkfs.vfat",
            "mcopy",
            "mke2fs",
            "mkntfs",
            "sfdisk",
        ],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = crate::files::build_disk(dir.path(), false);
    // Carvable files and features after the partitions: the fixture image.
    {
        use std::io::Write;
        let fx = trawl_fixtures::generate(&trawl_fixtures::Config::small());
        let mut f = std::fs::OpenOptions::new().append(true).open(&raw).unwrap();
        f.write_all(&fx.image).unwrap();
        let pad = (512 - fx.image.len() % 512) % 512;
        f.write_all(&vec![0u8; pad]).unwrap();
    }
    let raw_md5 = md5_file(&raw);
    let analyses = "hash,files,carve,features,yara";
    let base = dir.path().join("out-raw");
    scan(&[&raw], &base, analyses, "1MiB", "3");
    let want = results(&base);
    assert!(want.len() >= 4, "{want:?}");
    for kind in [
        "files/files.jsonl",
        "carved/manifest.csv",
        "yara/matches.jsonl",
    ] {
        assert!(
            want.iter().any(|(n, l)| n == kind && l.len() > 1),
            "the raw disk gives too little to compare in {kind}"
        );
    }
    for (fmt, opts, label) in CONTAINERS {
        let img = dir.path().join(format!("disk-{label}.img"));
        sh(Command::new("qemu-img")
            .args(["convert", "-O", fmt])
            .args(*opts)
            .arg(&raw)
            .arg(&img));
        let conv = qemu_raw(
            &img,
            Some(fmt),
            &dir.path().join(format!("back-{label}.raw")),
        );
        let conv_md5 = md5_file(&conv);
        assert_eq!(conv_md5, raw_md5, "{label}: qemu-img's round trip");
        let _ = std::fs::remove_file(&conv);
        let out = dir.path().join(format!("out-{label}"));
        scan(&[&img], &out, analyses, "1MiB", "3");
        let r = report(&out);
        assert_eq!(r["hashes"]["md5"], conv_md5.as_str(), "{label}");
        assert_eq!(
            r["evidence"]["size"],
            std::fs::metadata(&raw).unwrap().len(),
            "{label}"
        );
        let name = match *fmt {
            "vpc" => "vhd",
            f => f,
        };
        assert_eq!(r["evidence"]["format"], name, "{label}");
        assert_eq!(
            r["evidence"]["virtual_size"], r["evidence"]["size"],
            "{label}"
        );
        let meta = r["evidence"]["metadata"].as_object().unwrap();
        assert!(
            meta.keys().any(|k| k.starts_with(&format!("{name}."))),
            "{label}: no container metadata in report.json: {meta:?}"
        );
        if *fmt == "vmdk" {
            assert!(
                meta["vmdk.create_type"].is_string() && meta["vmdk.descriptor"].is_string(),
                "{label}: {meta:?}"
            );
        }
        if *fmt == "vhdx" {
            assert!(
                meta["vhdx.virtual_disk_id"].is_string(),
                "{label}: {meta:?}"
            );
        }
        let got = results(&out);
        for ((wn, wl), (gn, gl)) in want.iter().zip(&got) {
            assert_eq!(wn, gn, "{label}");
            assert!(wl == gl, "{label}: {wn} differs from the raw disk's");
        }
        assert_eq!(want.len(), got.len(), "{label}");
        std::fs::remove_dir_all(&out).unwrap();
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("disk-{label}"))
            {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// The corpora's QCOW2, VMDK and VHD images (dfvfs and sleuthkit test
/// data), a VHD differencing disk with its parent given: the MD5 of the
/// virtual disk equals `qemu-img convert -O raw`'s.
#[test]
fn corpora_virtual_disks_hash_as_qemu_img_converts_them() {
    let test = "corpora_virtual_disks_hash_as_qemu_img_converts_them";
    let Some(c) = corpora(test) else { return };
    if !tools(test, &["qemu-img"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dfvfs = c.join("dfvfs-test-data/test_data");
    let tsk = c.join("sleuthkit-test-data/test/data");
    let cases: Vec<Vec<PathBuf>> = vec![
        vec![dfvfs.join("ext2.qcow2")],
        vec![dfvfs.join("windows_volume.qcow2")],
        vec![dfvfs.join("ext2.vmdk")],
        vec![tsk.join("image.vmdk")],
        vec![dfvfs.join("ext2.vhd")],
        vec![tsk.join("image.vhd")],
        vec![tsk.join("image.qcow")],
    ];
    for (i, images) in cases.iter().enumerate() {
        let name = images[0].file_name().unwrap().to_string_lossy().to_string();
        let conv = qemu_raw(&images[0], None, &dir.path().join(format!("{i}.raw")));
        let want = md5_file(&conv);
        let out = dir.path().join(format!("out-{i}"));
        let paths: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
        scan(&paths, &out, "hash,files", "64MiB", "1");
        assert_eq!(report(&out)["hashes"]["md5"], want.as_str(), "{name}");
        // The same file listing as the raw disk qemu-img writes.
        let raw_out = dir.path().join(format!("out-{i}-raw"));
        scan(&[&conv], &raw_out, "hash,files", "64MiB", "1");
        let listing = |o: &Path| std::fs::read_to_string(o.join("files/files.jsonl")).ok();
        assert_eq!(listing(&out), listing(&raw_out), "{name}: the file listing");
        let _ = std::fs::remove_file(&conv);
    }
    // dfvfs's image.vhd and its differencing child carry footer checksums
    // that do not match their footers: qemu-img refuses them, and so does
    // trawl, naming the checksum.
    for images in [
        vec![dfvfs.join("image.vhd")],
        vec![
            dfvfs.join("image-differential.vhd"),
            dfvfs.join("image.vhd"),
        ],
    ] {
        let q = Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&images[0])
            .arg(dir.path().join("refused.raw"))
            .output()
            .unwrap();
        assert!(!q.status.success(), "qemu-img now reads {images:?}");
        let mut args = vec!["scan".to_string()];
        args.extend(images.iter().map(|p| p.display().to_string()));
        args.extend([
            "--out".into(),
            dir.path().join("refused").display().to_string(),
        ]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("checksum"),
            "{images:?}: {err}"
        );
    }
}

/// Damaged containers: a clear error naming the file, never a panic, and
/// no report claiming success.
#[test]
fn damaged_virtual_disks_are_refused_clearly() {
    let test = "damaged_virtual_disks_are_refused_clearly";
    if !tools(test, &["qemu-img"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("small.raw");
    let mut rng = trawl_fixtures::util::Rng::new(25);
    let mut data = vec![0u8; 4 << 20];
    rng.fill(&mut data[..1 << 20]);
    std::fs::write(&raw, &data).unwrap();
    for (fmt, opts, label) in CONTAINERS {
        if label.contains("flat") || label.contains("split") || label.ends_with("fixed") {
            continue;
        }
        let img = dir.path().join(format!("{label}.img"));
        sh(Command::new("qemu-img")
            .args(["convert", "-O", fmt])
            .args(*opts)
            .arg(&raw)
            .arg(&img));
        let good = std::fs::read(&img).unwrap();
        // Truncated to its first KiB (tables and data gone), then with
        // the header's second half overwritten.
        let mut damaged = vec![good[..1024].to_vec()];
        let mut flipped = good.clone();
        for b in &mut flipped[16..512] {
            *b = 0xA5;
        }
        damaged.push(flipped);
        for (k, bytes) in damaged.iter().enumerate() {
            let bad = dir.path().join(format!("{label}-bad{k}.img"));
            std::fs::write(&bad, bytes).unwrap();
            let out = dir.path().join(format!("out-{label}-{k}"));
            let o = run(&[
                "scan",
                bad.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--analyses",
                "hash",
            ]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!err.contains("panicked"), "{label} damage {k}: {err}");
            if o.status.success() {
                // A damage the format tolerates: then the bytes read must
                // still be what qemu-img reads, if it reads them.
                let conv = dir.path().join("conv.raw");
                let q = Command::new("qemu-img")
                    .args(["convert", "-O", "raw", "-f", fmt])
                    .arg(&bad)
                    .arg(&conv)
                    .output()
                    .unwrap();
                if q.status.success() {
                    assert_eq!(
                        report(&out)["hashes"]["md5"],
                        md5_file(&conv).as_str(),
                        "{label} damage {k}"
                    );
                }
            } else {
                assert!(
                    err.contains(bad.file_name().unwrap().to_str().unwrap()),
                    "{label} damage {k}: the error does not name the file: {err}"
                );
            }
        }
    }
}

/// A compressed QCOW2 uploaded to a scheduler (TLS, a worker process):
/// stored as sent, detected as QCOW2 and scanned by the worker as its
/// virtual disk.
#[test]
fn an_uploaded_virtual_disk_is_scanned_as_its_virtual_disk() {
    let test = "an_uploaded_virtual_disk_is_scanned_as_its_virtual_disk";
    if !tools(test, &["qemu-img"]) {
        return;
    }
    let s = crate::security::start_secure_with(&[], &[]);
    let inv = s.add_user("ivy", "investigator", &["A"], "1d");
    let raw = s.dir.path().join("vm.raw");
    let mut data = vec![0u8; 8 << 20];
    let mut rng = trawl_fixtures::util::Rng::new(2525);
    rng.fill(&mut data[..2 << 20]);
    data[(5 << 20)..(5 << 20) + 64].copy_from_slice(&[0x5a; 64]);
    std::fs::write(&raw, &data).unwrap();
    let img = s.dir.path().join("vm.qcow2");
    sh(Command::new("qemu-img")
        .args(["convert", "-O", "qcow2", "-c"])
        .arg(&raw)
        .arg(&img));
    let mut args: Vec<String> = [
        "submit",
        img.to_str().unwrap(),
        "--upload",
        "--case",
        "A",
        "--analyses",
        "hash",
        "--shard-size",
        "1MiB",
    ]
    .map(String::from)
    .to_vec();
    args.extend(s.flags(&inv));
    let o = trawl().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job = crate::security::last_line(&o.stdout);
    let mut args = vec!["watch".to_string(), job.clone()];
    args.extend(s.flags(&inv));
    let w = trawl().args(&args).output().unwrap();
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let out = s.dir.path().join("report");
    let mut args = vec![
        "results".to_string(),
        job,
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(s.flags(&inv));
    assert!(trawl().args(&args).status().unwrap().success());
    let r = report(&out);
    assert_eq!(r["evidence"]["format"], "qcow2");
    assert_eq!(r["evidence"]["size"], data.len() as u64);
    assert_eq!(r["hashes"]["md5"], trawl_fixtures::md5_hex(&data).as_str());
    assert_eq!(
        r["evidence"]["upload_blake3"],
        blake3::hash(&std::fs::read(&img).unwrap())
            .to_hex()
            .as_str(),
        "the upload is the container as sent"
    );
}
