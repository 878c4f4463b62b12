//! Retrohunt throughput (issue 22): a flash's rules over retained evidence,
//! against the same rules run as a fresh YARA job on the same image, in the
//! same run, alternately; the matches of both must be identical.

use crate::{arg, last_line, run};
use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The YARA matches of a job, as its report writes them.
fn matches(trawl: &Path, url: &str, job: &str, out: &Path) -> Result<Vec<String>> {
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
    let text = std::fs::read_to_string(out.join("yara/matches.jsonl")).unwrap_or_default();
    // the flash's namespace names the flash: compare the rest
    let mut v: Vec<String> = text
        .lines()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(mut m) => {
                if let Some(o) = m.as_object_mut() {
                    o.remove("namespace");
                }
                m.to_string()
            }
            Err(_) => l.to_string(),
        })
        .collect();
    v.sort();
    Ok(v)
}

pub fn run_bench(trawl: &Path, args: &[String]) -> Result<()> {
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "1GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "3".into()).parse()?;
    let dir = PathBuf::from(arg(args, "--dir").unwrap_or_else(|| "target/bench".into()));
    std::fs::create_dir_all(&dir)?;
    let rules = arg(args, "--rules").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rules/demo.yar")
    });
    let img = crate::scale::mixed_image(&dir, size)?;
    let data = dir.join("retro-data");
    let _ = std::fs::remove_dir_all(&data);
    let root = img.to_str().unwrap();
    let (_sched, url, _workers) = crate::scale::start_cluster(trawl, &data, root, 1, 2, "retro-w")?;
    let submit = |extra: &[&str]| -> Result<String> {
        let mut a = vec!["submit", root, "--server", &url, "--case", "BENCH-1"];
        a.extend_from_slice(extra);
        Ok(last_line(&run(trawl, &a)?))
    };
    let watch = |job: &str| run(trawl, &["watch", job, "--server", &url]).map(|_| ());
    // the first pass: the casework whose evidence is retained
    let first = submit(&["--analyses", "hash,features"])?;
    watch(&first)?;
    let rules_s = rules.to_str().unwrap();
    let gib = size as f64 / (1u64 << 30) as f64;
    let (mut fresh, mut retro) = (Vec::new(), Vec::new());
    let mut same = true;
    for i in 0..runs {
        let t = Instant::now();
        let j = submit(&["--analyses", "yara", "--rules", rules_s])?;
        watch(&j)?;
        fresh.push(t.elapsed().as_secs_f64());
        let m_fresh = matches(trawl, &url, &j, &dir.join("retro-out-fresh"))?;
        let t = Instant::now();
        let o = run(
            trawl,
            &[
                "flash",
                "publish",
                "--server",
                &url,
                "--title",
                &format!("bench {i}"),
                "--tlp",
                "green",
                "--rules",
                rules_s,
                "--json",
            ],
        )?;
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).context("flash publish --json")?;
        let jobs = v["retro_jobs"].as_array().cloned().unwrap_or_default();
        ensure!(jobs.len() == 1, "expected one retrohunt job, got {jobs:?}");
        let rj = jobs[0].as_str().unwrap_or_default().to_string();
        watch(&rj)?;
        retro.push(t.elapsed().as_secs_f64());
        let m_retro = matches(trawl, &url, &rj, &dir.join("retro-out-retro"))?;
        same &= m_fresh == m_retro;
        let flash = v["flash_id"].as_str().unwrap_or_default().to_string();
        run(
            trawl,
            &[
                "flash",
                "withdraw",
                &flash,
                "--reason",
                "benchmark run over",
                "--server",
                &url,
            ],
        )?;
        eprintln!(
            "run {}: fresh {:.2} s, retrohunt {:.2} s, {} match lines",
            i + 1,
            fresh[i],
            retro[i],
            m_fresh.len()
        );
    }
    ensure!(same, "the retrohunt's matches differ from the fresh job's");
    let (f, r) = (
        trawl_benches::median(fresh.clone()),
        trawl_benches::median(retro.clone()),
    );
    println!("## Retrohunt\n");
    println!(
        "{gib:.2} GiB mixed image, rules {}, one worker (2 slots), {runs} runs, medians:\n",
        rules.display()
    );
    println!("| run | median s | GiB/s |\n|---|---:|---:|");
    println!("| fresh YARA job | {f:.2} | {:.2} |", gib / f);
    println!(
        "| retrohunt (flash published → retrohunt job done) | {r:.2} | {:.2} |",
        gib / r
    );
    println!(
        "\nretrohunt / fresh: {:.2}; matches identical in every run.",
        r / f
    );
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
