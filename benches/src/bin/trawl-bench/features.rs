//! `trawl-bench features [--size BYTES] [--seed N] [--scanners LIST] [--each]`
//!
//! Throughput of the feature scanners on one core over a mixed image
//! (`trawl_fixtures::Config::bulk`: text with planted features, documents,
//! archives, compressed streams, random and zero runs), scanned shard by
//! shard as a worker does (64 MiB shards, 1 MiB margin). Prints MB/s per
//! core for all scanners together, the time each scanner took (from the
//! per-scanner statistics), and with `--each` every scanner run alone.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use trawl_analyzers::features::{FeatureScanner, Kind, STAT_PREFIX};
use trawl_core::ShardPlan;
use trawl_core::spec::FeatureOptions;
use trawl_evidence::{Evidence, RawEvidence};

fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().with_context(|| format!("size {s:?}"))?;
    let mul = match s[split..].to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        other => bail!("unknown size suffix {other:?}"),
    };
    Ok(n * mul)
}

struct Run {
    secs: f64,
    features: usize,
    per_scanner: BTreeMap<String, (u64, u64)>,
}

fn scan(ev: &dyn Evidence, data: &[u8], opts: &FeatureOptions) -> Result<Run> {
    let sc = FeatureScanner::new(opts)?;
    let plan = ShardPlan::new(data.len() as u64, 64 << 20, 1 << 20)?;
    let cancel = AtomicBool::new(false);
    let mut per_scanner: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut features = 0;
    let t = Instant::now();
    for s in plan.shards() {
        let out = sc.scan_shard(
            ev,
            &s,
            &data[s.start as usize..s.scan_end as usize],
            &cancel,
        )?;
        features += out.features.len();
        for st in out.stats {
            let e = per_scanner.entry(st.scanner).or_default();
            e.0 += st.nanos;
            e.1 += st.findings;
        }
    }
    Ok(Run {
        secs: t.elapsed().as_secs_f64(),
        features,
        per_scanner,
    })
}

pub fn run(args: &[String]) -> Result<()> {
    let mut size = 256u64 << 20;
    let mut seed = 1u64;
    let mut scanners = Vec::new();
    let mut each = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--size" => size = parse_size(&val()?)?,
            "--seed" => seed = val()?.parse()?,
            "--scanners" => scanners = val()?.split(',').map(str::to_string).collect(),
            "--each" => each = true,
            // Works in memory: no scratch directory needed.
            "--dir" => {
                val()?;
            }
            "-h" | "--help" => {
                println!(
                    "trawl-bench features [--size 256MiB] [--seed 1] [--scanners email,url,...] [--each]"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    // one core, as the target is per core
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .ok();
    let dir = tempfile_dir()?;
    let t = Instant::now();
    let cfg = trawl_fixtures::Config::bulk(size, seed);
    let (img, _) = trawl_fixtures::write(&cfg, &dir, "bulk")?;
    println!(
        "mixed image: {} MiB (trawl_fixtures::Config::bulk, seed {seed}), generated in {:.1}s",
        size >> 20,
        t.elapsed().as_secs_f64()
    );
    let ev = RawEvidence::open(&img)?;
    let data = ev
        .mapped(0, size as usize)
        .context("the image is not memory-mapped")?
        .to_vec();
    let mb = size as f64 / 1e6;
    let opts = FeatureOptions {
        scanners: scanners.clone(),
        ..Default::default()
    };
    // warm the page cache and the allocator once
    scan(&ev, &data, &opts)?;
    let r = scan(&ev, &data, &opts)?;
    println!(
        "all scanners{}: {:.2}s, {:.0} MB/s on one core, {} features",
        if scanners.is_empty() {
            String::new()
        } else {
            format!(" ({})", scanners.join(","))
        },
        r.secs,
        mb / r.secs,
        r.features
    );
    println!(
        "{:<18} {:>10} {:>12} {:>10}",
        "stage", "seconds", "MB/s alone", "findings"
    );
    for (name, (nanos, findings)) in &r.per_scanner {
        let secs = *nanos as f64 / 1e9;
        println!(
            "{:<18} {:>10.3} {:>12.0} {:>10}",
            name,
            secs,
            if secs > 0.0 { mb / secs } else { f64::INFINITY },
            findings
        );
    }
    if scanners.is_empty() {
        // every scanner and decoding layer on
        let o = FeatureOptions {
            scanners: vec!["+all".into(), "+base16".into()],
            ..Default::default()
        };
        let r = scan(&ev, &data, &o)?;
        println!(
            "every scanner and layer (+all,+base16): {:.2}s, {:.0} MB/s on one core, {} features",
            r.secs,
            mb / r.secs,
            r.features
        );
    }
    if each {
        println!(
            "each scanner alone (whole pass: its scan, UTF-16 for text scanners, the decoding layers; own: its statistics' time):"
        );
        let mut names: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| **k != Kind::Find)
            .map(|k| k.name().to_string())
            .collect();
        names.extend(
            trawl_analyzers::features::records::STRUCTS
                .iter()
                .map(|s| s.name.to_string()),
        );
        for name in names {
            let o = FeatureOptions {
                scanners: vec![name.clone()],
                ..Default::default()
            };
            let r = scan(&ev, &data, &o)?;
            let (nanos, found) = r
                .per_scanner
                .get(&format!("{STAT_PREFIX}{name}"))
                .copied()
                .unwrap_or_default();
            println!(
                "  {:<12} {:>8.0} MB/s whole pass  {:>8.0} MB/s own  {:>8} features",
                name,
                mb / r.secs,
                if nanos > 0 {
                    mb / (nanos as f64 / 1e9)
                } else {
                    f64::INFINITY
                },
                found
            );
        }
        // the decoding layers: the pass with no scanner but each layer
        for layer in ["base64", "base16"] {
            let o = FeatureOptions {
                scanners: vec!["email".into(), "-email".into(), format!("+{layer}")],
                ..Default::default()
            };
            let r = scan(&ev, &data, &o)?;
            let (nanos, _) = r
                .per_scanner
                .get(&format!("{STAT_PREFIX}{layer}"))
                .copied()
                .unwrap_or_default();
            println!(
                "  {:<12} {:>8.0} MB/s whole pass  {:>8.0} MB/s own  (decoding layer)",
                layer,
                mb / r.secs,
                if nanos > 0 {
                    mb / (nanos as f64 / 1e9)
                } else {
                    f64::INFINITY
                },
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("trawl-bench-features-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
