//! End-to-end comparison harness: trawl against the peers on the same input
//! in the same run, alternating runs, medians and ratios.
//!
//! ```text
//! trawl-bench hash [--size 1GiB] [--runs 5] [--dir /tmp]
//! ```
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use trawl_benches::{Contender, have, race, random_file, table};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn trawl_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name("trawl")
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("hash") => hash(&args[2..]),
        _ => bail!("usage: trawl-bench hash [--size 1GiB] [--runs 5] [--dir DIR]"),
    }
}

fn hash(args: &[String]) -> Result<()> {
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "1GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "5".into()).parse()?;
    let dir = PathBuf::from(
        arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    );
    let trawl = trawl_bin();
    if !trawl.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --locked)",
            trawl.display()
        );
    }
    let img = dir.join(format!("trawl-bench-{size}.raw"));
    if std::fs::metadata(&img).map(|m| m.len()).ok() != Some(size) {
        random_file(&img, size, 42).with_context(|| format!("writing {}", img.display()))?;
    }
    let out = dir.join("trawl-bench-out");
    let (t, i, o) = (
        trawl.to_str().unwrap(),
        img.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let mut c = vec![
        Contender::new(
            "trawl scan --analyses hash (MD5+SHA-1+SHA-256+BLAKE3)",
            &[t, "scan", i, "--out", o, "--analyses", "hash"],
        ),
        Contender::new(
            "trawl scan --analyses hash --no-stream-hash --piecewise-window 0 (BLAKE3)",
            &[
                t,
                "scan",
                i,
                "--out",
                o,
                "--analyses",
                "hash",
                "--no-stream-hash",
                "--piecewise-window",
                "0",
            ],
        ),
        Contender::new("openssl dgst -md5", &["openssl", "dgst", "-md5", i]),
    ];
    if have("b3sum") {
        c.push(Contender::new("b3sum", &["b3sum", i]));
    }
    if have("hashdeep") {
        c.push(Contender::new(
            "hashdeep -c md5,sha1,sha256",
            &["hashdeep", "-c", "md5,sha1,sha256", i],
        ));
    }
    race(&mut c, runs);
    println!(
        "Input: {} ({} bytes of random data, page cache warm), {} runs each, alternating\n",
        img.display(),
        size,
        runs
    );
    println!("{}", table(&c, size));
    let w = |name: &str| {
        c.iter()
            .find(|x| x.name.starts_with(name))
            .map(|x| x.median_wall())
    };
    let all = w("trawl scan --analyses hash (").unwrap_or(f64::NAN);
    let b3 = w("trawl scan --analyses hash --no-stream").unwrap_or(f64::NAN);
    if let Some(md5) = w("openssl") {
        println!(
            "all four vs MD5 alone (openssl): {:.2}x (target >= 0.9)",
            md5 / all
        );
    }
    if let Some(b) = w("b3sum") {
        println!("BLAKE3 vs b3sum: {:.2}x (target >= 0.9)", b / b3);
    }
    if let Some(h) = w("hashdeep") {
        println!(
            "all four vs hashdeep -c md5,sha1,sha256: {:.2}x (target >= 3)",
            h / all
        );
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}
