//! `trawl-bench vdisk`: hashing virtual-machine disks. A dynamic VHDX and a
//! compressed QCOW2 made by `qemu-img` from the mixed-content image (planted
//! files, text, noise), hashed by `trawl scan --analyses hash` (MD5, SHA-1,
//! SHA-256 and BLAKE3 of the virtual disk) against `qemu-img convert -O
//! raw` of the same container followed by `md5sum` (qemu-img cannot write
//! a raw disk to a pipe, so it writes to /dev/shm, memory, and md5sum reads
//! it back). Alternating runs, same machine, same run; both answers checked
//! equal.
//!
//! ```text
//! trawl-bench vdisk [--size 2GiB] [--runs 3] [--dir DIR]
//! ```

use crate::arg;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;
use trawl_benches::{Contender, fresh_output, have, race, table};

pub fn run(args: &[String]) -> Result<()> {
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "2GiB".into()))?;
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
    for tool in ["qemu-img", "md5sum"] {
        if !have(tool) {
            bail!(
                "{tool} not found: the peer of this section (Debian packages qemu-utils, coreutils)"
            );
        }
    }
    let raw = crate::scale::mixed_image(&dir, size)?;
    let shm = PathBuf::from("/dev/shm/trawl-bench-vdisk.raw");
    let out = dir.join("trawl-bench-vdisk-out");
    println!(
        "Input: {} converted by qemu-img ({size} bytes: planted files, text, noise), {runs} runs each, alternating; MB/s are of the virtual disk\n",
        raw.display()
    );
    for (label, fmt, opts) in [
        ("dynamic VHDX", "vhdx", vec!["-o", "subformat=dynamic"]),
        ("compressed QCOW2", "qcow2", vec!["-c"]),
    ] {
        let img = dir.join(format!("trawl-bench-vdisk-{size}.{fmt}"));
        if !img.exists() {
            let st = Command::new("qemu-img")
                .args(["convert", "-O", fmt])
                .args(&opts)
                .arg(&raw)
                .arg(&img)
                .status()
                .context("running qemu-img")?;
            if !st.success() {
                let _ = std::fs::remove_file(&img);
                bail!("qemu-img convert -O {fmt} failed ({st})");
            }
        }
        let container = std::fs::metadata(&img)?.len();
        let (t, i, o, s) = (
            trawl.to_str().unwrap(),
            img.to_str().unwrap(),
            out.to_str().unwrap(),
            shm.to_str().unwrap(),
        );
        let mut c = vec![
            Contender::new(
                "trawl scan --analyses hash (MD5, SHA-1, SHA-256, BLAKE3)",
                &[t, "scan", i, "--out", o, "--analyses", "hash"],
            )
            .prep(&fresh_output(o, i)),
            Contender::new(
                "qemu-img convert -O raw, then md5sum",
                &[
                    "sh",
                    "-c",
                    &format!("qemu-img convert -O raw -f {fmt} {i} {s} && md5sum {s} > {s}.md5"),
                ],
            )
            .prep(&format!(
                "rm -f {s}; sync; (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; cat {i} > /dev/null"
            )),
        ];
        race(&mut c, runs);
        // The same disk: trawl's MD5 and md5sum's.
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("report.json")).context("reading trawl's report.json")?,
        )?;
        let ours = report["hashes"]["md5"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let theirs = std::fs::read_to_string(format!("{s}.md5"))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        println!("{label} ({container} bytes of container):\n");
        print!("{}", table(&c, size));
        println!(
            "\n{label}: trawl {:.2}x the throughput of qemu-img convert + md5sum; MD5 {}\n",
            c[1].median_wall() / c[0].median_wall(),
            if ours == theirs && !ours.is_empty() {
                format!("equal ({ours})")
            } else {
                format!("DIFFERENT: trawl {ours}, qemu-img {theirs}")
            }
        );
        let _ = std::fs::remove_file(&shm);
        let _ = std::fs::remove_file(format!("{s}.md5"));
        trawl_benches::clean_outputs(o);
        if ours != theirs {
            bail!("{label}: trawl's MD5 {ours} differs from qemu-img's {theirs}");
        }
    }
    Ok(())
}
