//! In-process examination: plan the shards, run them on a rayon pool next to
//! the sequential stream-hash task, merge, write the report directory.

use anyhow::{Context, Result, anyhow};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use trawl_analyzers::{JobAnalyzers, ShardOutput, hash};
use trawl_core::spec::EvidenceRef;
use trawl_core::{AnalysisSet, CaseId, JobSpec};
use trawl_report::{EvidenceSummary, JobResults, Provenance, Timings};

pub struct LocalScan {
    pub images: Vec<PathBuf>,
    pub out: PathBuf,
    pub case: String,
    pub analyses: AnalysisSet,
    pub shard_size: u64,
    pub margin: u64,
    pub piecewise_window: u64,
    pub piecewise_md5: bool,
    pub workers: Option<usize>,
    pub json: bool,
}

/// Whether several paths name the segments of one image (same folder and
/// stem, distinct extensions), rather than separate images.
fn one_segmented_image(paths: &[PathBuf]) -> bool {
    let key = |p: &Path| {
        (
            p.parent().map(Path::to_path_buf),
            p.file_stem().map(|s| s.to_os_string()),
        )
    };
    let first = key(&paths[0]);
    paths.iter().all(|p| key(p) == first)
}

pub fn run(opts: LocalScan) -> Result<()> {
    let threads = opts.workers.unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("trawl-scan-{i}"))
        .build()
        .context("starting the worker pool")?;
    let groups: Vec<(Vec<PathBuf>, PathBuf)> =
        if opts.images.len() == 1 || one_segmented_image(&opts.images) {
            vec![(opts.images.clone(), opts.out.clone())]
        } else {
            opts.images
                .iter()
                .map(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "image".into());
                    (vec![p.clone()], opts.out.join(name))
                })
                .collect()
        };
    let mut summaries = Vec::new();
    for (paths, out) in groups {
        let results = pool.install(|| scan_one(&opts, &paths))?;
        trawl_report::write_report_dir(&out, &results)
            .with_context(|| format!("writing the report to {}", out.display()))?;
        summaries.push((out, results));
    }
    for (out, r) in &summaries {
        if opts.json {
            println!(
                "{}",
                serde_json::json!({
                    "out": out, "evidence": r.evidence.path, "size": r.evidence.size,
                    "hashes": r.hashes, "verification": r.verification, "state": r.state,
                })
            );
        } else {
            println!("{} ({} bytes, {})", r.evidence.path, r.evidence.size, r.evidence.format);
            for (name, v) in [
                ("md5", &r.hashes.md5),
                ("sha1", &r.hashes.sha1),
                ("sha256", &r.hashes.sha256),
                ("blake3", &r.hashes.blake3),
            ] {
                if let Some(v) = v {
                    println!("  {name:<7} {v}");
                }
            }
            for v in &r.verification {
                println!(
                    "  stored {} {}: {}",
                    v.algorithm,
                    v.stored,
                    if v.matches { "verified" } else { "MISMATCH" }
                );
            }
            println!("  report  {}", out.display());
        }
    }
    Ok(())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn scan_one(opts: &LocalScan, paths: &[PathBuf]) -> Result<JobResults> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let evidence = trawl_evidence::open_segments(paths)?;
    let info = evidence.info().clone();
    let mut spec = JobSpec::new(
        CaseId::new(opts.case.clone()).context("--case")?,
        EvidenceRef::Paths(paths.iter().map(|p| p.display().to_string()).collect()),
        opts.analyses,
    );
    spec.shard_size = opts.shard_size;
    spec.margin = opts.margin;
    spec.hash.piecewise_window = opts.piecewise_window;
    spec.hash.piecewise_md5 = opts.piecewise_md5;
    spec.evidence_name = info
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plan = spec.plan(info.size)?;
    let analyzers = JobAnalyzers::build(&spec, plan)?;
    let cancel = AtomicBool::new(false);
    let ev = evidence.as_ref();

    let (stream, shards) = rayon::join(
        || {
            opts.analyses
                .hash
                .then(|| hash::stream_hash(ev, &|_| {}, &cancel))
        },
        || {
            plan.shards()
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|shard| {
                    let data = ev.region(shard.start, shard.scan_end)?;
                    analyzers
                        .scan_shard(ev, &shard, &data, &cancel)
                        .map_err(anyhow::Error::from)
                })
                .collect::<Result<Vec<ShardOutput>>>()
        },
    );
    let shards = shards?;
    let mut results = JobResults {
        job_id: format!("local-{}", std::process::id()),
        case_id: opts.case.clone(),
        state: "completed".into(),
        evidence: EvidenceSummary {
            path: info.path.display().to_string(),
            size: info.size,
            format: info.format.name().into(),
            segments: info.segments.iter().map(|p| p.display().to_string()).collect(),
            stored_md5: info.stored.md5.clone(),
            stored_sha1: info.stored.sha1.clone(),
            metadata: info.metadata.clone(),
            acquisition_errors: info
                .acquisition_errors
                .iter()
                .map(|e| (e.first_sector, e.sector_count))
                .collect(),
            upload_blake3: None,
        },
        piecewise_window: spec.hash.piecewise_window,
        ..Default::default()
    };
    if opts.analyses.hash {
        let parts: Vec<_> = shards.iter().filter_map(|s| s.blake3).collect();
        let b3 = hash::merge_blake3(&plan, &parts).map_err(|e| anyhow!("{e}"))?;
        results.hashes.blake3 = Some(hex::encode(b3));
        if let Some(stream) = stream {
            let s = stream?;
            results.hashes.md5 = Some(s.md5);
            results.hashes.sha1 = Some(s.sha1);
            results.hashes.sha256 = Some(s.sha256);
        }
        results.hashes.computed_at = Some(now_rfc3339());
    }
    let mut stats = std::collections::BTreeMap::<String, trawl_core::ScannerStat>::new();
    for s in shards {
        results.piecewise.extend(s.piecewise);
        results.features.extend(s.features);
        results.carved.extend(s.carved);
        results.yara.extend(s.yara);
        results.notes.extend(s.notes);
        for st in s.stats {
            stats
                .entry(st.scanner.clone())
                .or_insert_with(|| trawl_core::ScannerStat {
                    scanner: st.scanner.clone(),
                    ..Default::default()
                })
                .add(&st);
        }
    }
    results.stats = stats.into_values().collect();
    results.verify_stored();
    results.sort();
    let wall = started.elapsed();
    results.timings = Timings {
        submitted_at: Some(started_at.clone()),
        started_at: Some(started_at),
        finished_at: Some(now_rfc3339()),
        wall_ms: wall.as_millis() as u64,
        throughput_mb_s: info.size as f64 / 1e6 / wall.as_secs_f64().max(1e-9),
    };
    results.provenance = Provenance {
        tool: trawl_core::TOOL_NAME.into(),
        version: trawl_core::TOOL_VERSION.into(),
        shard_size: plan.shard_size,
        margin: plan.margin,
        shards: plan.len(),
        analyses: opts.analyses.iter().map(|a| a.name().to_string()).collect(),
        settings: serde_json::to_value(&spec)?,
        command: std::env::args().collect(),
        hostname: hostname(),
        workers: rayon::current_num_threads() as u32,
    };
    Ok(results)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
