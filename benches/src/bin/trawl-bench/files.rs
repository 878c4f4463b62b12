//! `trawl-bench files`: the `files` analysis (file-system listing, MD5,
//! SHA-1 and SHA-256 of every file, the five file reports) against
//! `fiwalk -X` (TSK's listing with MD5 and SHA-1, DFXML) on the same ext4
//! image, alternating runs, same machine, same run.
//!
//! ```text
//! trawl-bench files [--files 110000] [--size 4GiB] [--runs 3] [--dir DIR]
//! ```
//!
//! Then the pipeline (hash, carve, features) with and without `files` on
//! the same image: the cost of listing and hashing the files.
//!
//! The image is built once per (file count, size) with `mke2fs -d` from a
//! generated tree: 100 files per folder, half of them under 4 KiB, most
//! under 40 KiB, 0.3% of 1 to 6 MiB (about 22 KB per file on average),
//! slices of one random blob so that every file's bytes are its own.

use crate::arg;
use anyhow::{Context, Result, bail};
use rand::{Rng, RngCore, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::Command;
use trawl_benches::{Contender, fresh_output, have, race, table};

/// Writes the tree of `n` files under `root`; returns the bytes of content.
fn tree(root: &Path, n: usize) -> Result<u64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(19);
    let mut blob = vec![0u8; 64 << 20];
    rng.fill_bytes(&mut blob);
    let mut total = 0u64;
    for i in 0..n {
        let d = i / 100;
        let dir = root.join(format!("d{d:04}")).join(format!("sub{}", d % 7));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let r: f64 = rng.r#gen();
        let size = if r < 0.5 {
            rng.gen_range(0..=4096)
        } else if r < 0.997 {
            rng.gen_range(4096..=40_000)
        } else {
            rng.gen_range(1 << 20..=6 << 20)
        };
        let off = rng.gen_range(0..=blob.len() - size);
        let path = dir.join(format!("file{:03}.bin", i % 100));
        std::fs::write(&path, &blob[off..off + size])
            .with_context(|| format!("writing {}", path.display()))?;
        total += size as u64;
    }
    Ok(total)
}

/// The image (and its content bytes), built when missing.
fn image(dir: &Path, n: usize, size: u64) -> Result<(PathBuf, u64)> {
    let img = dir.join(format!("trawl-bench-files-{n}-{size}.ext4"));
    let stamp = img.with_extension("ext4.bytes");
    if let (Ok(m), Ok(b)) = (std::fs::metadata(&img), std::fs::read_to_string(&stamp))
        && m.len() == size
        && let Ok(bytes) = b.trim().parse::<u64>()
    {
        return Ok((img, bytes));
    }
    if !have("mke2fs") {
        bail!("mke2fs not found: the image is built with `mke2fs -d` (Debian package e2fsprogs)");
    }
    let root = dir.join(format!("trawl-bench-files-tree-{n}"));
    let _ = std::fs::remove_dir_all(&root);
    eprintln!(
        "trawl-bench files: writing {n} files under {}",
        root.display()
    );
    let bytes = tree(&root, n)?;
    let _ = std::fs::remove_file(&img);
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&root)
        .arg(&img)
        .arg(format!("{}k", size / 1024))
        .stdout(std::process::Stdio::null())
        .status()
        .context("running mke2fs")?;
    let _ = std::fs::remove_dir_all(&root);
    if !st.success() {
        bail!(
            "mke2fs -d failed ({st}) building {} from {n} files ({bytes} bytes): is --size large enough?",
            img.display()
        );
    }
    std::fs::write(&stamp, bytes.to_string())?;
    Ok((img, bytes))
}

pub fn run(args: &[String]) -> Result<()> {
    let n: usize = arg(args, "--files")
        .unwrap_or_else(|| "110000".into())
        .parse()
        .context("--files")?;
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "4GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "3".into()).parse()?;
    let dir = PathBuf::from(
        arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    );
    let trawl = crate::trawl_bin();
    if !trawl.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --locked)",
            trawl.display()
        );
    }
    if !have("fiwalk") {
        bail!("fiwalk not found: it is the peer of this section (Debian package sleuthkit)");
    }
    let (img, bytes) = image(&dir, n, size)?;
    let out = dir.join("trawl-bench-files-out");
    let xml = dir.join("trawl-bench-files-fiwalk.xml");
    let (t, i, o, x) = (
        trawl.to_str().unwrap(),
        img.to_str().unwrap(),
        out.to_str().unwrap(),
        xml.to_str().unwrap(),
    );
    let mut c = vec![
        Contender::new(
            "trawl scan --analyses files (MD5+SHA-1+SHA-256; jsonl, hashdeep, bodyfile, DFXML, CASE)",
            &[t, "scan", i, "--out", o, "--analyses", "files"],
        )
        .prep(&fresh_output(o, i)),
        Contender::new("fiwalk -X (MD5+SHA-1; DFXML)", &["fiwalk", "-X", x, i]).prep(&format!(
            "rm -f {x}; sync; (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; cat {i} > /dev/null"
        )),
    ];
    race(&mut c, runs);
    // Both tools saw every file: trawl's count of regular files, and the
    // files fiwalk hashed.
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("report.json")).context("reading trawl's report.json")?,
    )?;
    let trawl_files = report["files"]["regular_files"].as_u64().unwrap_or(0);
    let fiwalk_files = std::fs::read_to_string(&xml)
        .with_context(|| format!("reading {}", xml.display()))?
        .matches("<hashdigest type='md5'>")
        .count();
    println!(
        "Input: {} ({size} bytes, ext4 from `mke2fs -d`, {n} files in {} folders, {bytes} bytes of content, page cache warm), {runs} runs each, alternating; MB/s are of file content\n",
        img.display(),
        n.div_ceil(100) * 2,
    );
    print!("{}", table(&c, bytes));
    println!(
        "\nregular files: {n} written, trawl listed {trawl_files}; fiwalk wrote {fiwalk_files} MD5 digests (files, folders, metadata files)"
    );
    println!(
        "files vs fiwalk -X: {:.2}x its throughput (target >= 2)",
        c[1].median_wall() / c[0].median_wall()
    );
    if trawl_files != n as u64 {
        bail!("trawl listed {trawl_files} regular files, {n} were written");
    }
    // The cost of `files` in the pipeline: the per-shard analyses with and
    // without it, on the same image.
    let base = "hash,carve,features";
    let with = "hash,carve,features,files";
    let mut p = vec![
        Contender::new(
            &format!("trawl scan --analyses {with}"),
            &[t, "scan", i, "--out", o, "--analyses", with],
        )
        .prep(&fresh_output(o, i)),
        Contender::new(
            &format!("trawl scan --analyses {base}"),
            &[t, "scan", i, "--out", o, "--analyses", base],
        )
        .prep(&fresh_output(o, i)),
    ];
    race(&mut p, runs);
    println!("\nThe pipeline with and without `files`, same image; MB/s are of the image\n");
    print!("{}", table(&p, size));
    println!(
        "\nfiles in the pipeline: {:.2}x the wall time, {:.2}x the CPU time of the pipeline without it",
        p[0].median_wall() / p[1].median_wall(),
        p[0].median_cpu() / p[1].median_cpu()
    );
    trawl_benches::clean_outputs(o);
    let _ = std::fs::remove_file(&xml);
    Ok(())
}
