//! `trawl scan`: a scheduler and workers in this process, through the same
//! gRPC code paths as a cluster, with no server to install or start. They
//! talk over in-process connections ([`trawl_scheduler::server::in_process`]),
//! not a port: nothing outside this process can reach the embedded
//! scheduler. The merged results alone
//! are handed over in memory ([`Scheduler::take_results`]): the same
//! results `trawl results` fetches, without encoding them for the database
//! and the wire only to decode them back here.

use crate::Exit;
use crate::client::{Client, absolute, is_final};
use crate::commands::{ScanArgs, job_json};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use trawl_core::spec::EvidenceRef;
use trawl_proto::convert::job_state_name;
use trawl_proto::v1;
use trawl_report::JobResults;
use trawl_scheduler::outln;
use trawl_scheduler::{Scheduler, SchedulerConfig};
use trawl_worker::WorkerConfig;

/// Whether several paths name the segments of one image (same folder and
/// stem), rather than separate images.
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

/// What the embedded scheduler is called where a URL would stand.
const IN_PROCESS_LABEL: &str = "in-process";

/// The files the embedded scheduler and workers may read: every image file
/// of the scan, resolved (`absolute` canonicalised them), and the files
/// beside each that share its stem (the further segments of an E01 or a
/// split raw image named by its first segment: disk.E02.., disk.002..),
/// as found beside it and resolved; the extent files a VMDK descriptor
/// names; and the known-file and notable-file
/// hash sets of the scan.
fn evidence_roots(specs: &[trawl_core::JobSpec]) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for spec in specs {
        let EvidenceRef::Paths(paths) = &spec.evidence else {
            continue;
        };
        for p in paths.iter().map(PathBuf::from) {
            // An object: its folder (`s3://bucket/dir/`), where its further
            // segments lie; read with this user's own credentials.
            if trawl_evidence::is_remote(&p) {
                if let Some(dir) = p.parent() {
                    roots.push(PathBuf::from(format!("{}/", dir.display())));
                }
                continue;
            }
            if let (Some(dir), Some(stem)) = (p.parent(), p.file_stem())
                && let Ok(entries) = std::fs::read_dir(dir)
            {
                for e in entries.flatten() {
                    let q = e.path();
                    if q != p && q.file_stem() == Some(stem) && q.is_file() {
                        // As the scheduler names it (beside the first
                        // segment) and resolved.
                        if let Ok(r) = q.canonicalize() {
                            roots.push(r);
                        }
                        roots.push(q);
                    }
                }
            }
            // A VMDK descriptor's extent files, beside it.
            for q in trawl_evidence::vdisk::vmdk::extent_files(&p) {
                if let Ok(r) = q.canonicalize() {
                    roots.push(r);
                }
                roots.push(q);
            }
            roots.push(p);
        }
        // The hash sets named on the command line (canonicalised by the
        // arguments): read by the embedded scheduler.
        roots.extend(
            spec.files
                .known
                .iter()
                .chain(&spec.files.notable)
                .map(PathBuf::from),
        );
    }
    roots.sort();
    roots.dedup();
    roots
}

fn hostname() -> String {
    trawl_worker::hostname_of_this_node()
}

pub async fn scan(a: ScanArgs) -> Result<()> {
    let groups: Vec<(Vec<PathBuf>, PathBuf)> =
        if a.images.len() == 1 || one_segmented_image(&a.images) {
            vec![(a.images.clone(), a.out.clone())]
        } else {
            // One report folder per image, OUT/NAME, its path built like
            // every report path (a name that cannot be one is refused).
            let out = trawl_report::paths::ReportDir::new(&a.out);
            a.images
                .iter()
                .map(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "image".into());
                    let rel = trawl_report::paths::RelPath::name("image name", &name)?;
                    Ok((vec![p.clone()], out.file(&rel)?))
                })
                .collect::<Result<_>>()?
        };
    // Check what can be checked before starting anything.
    let mut specs = Vec::new();
    for (paths, _) in &groups {
        let abs = absolute(paths)?;
        let name = paths[0]
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        specs.push(a.spec.spec(&a.case, EvidenceRef::Paths(abs), name)?);
    }

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let threads = if a.threads > 0 { a.threads } else { cores };
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("trawl-analysis-{i}"))
            .build()
            .context("starting the analysis pool")?,
    );
    // The scheduler may read the images named here (and the further
    // segments of a segmented image beside them) and nothing else.
    let roots = evidence_roots(&specs);
    let cfg = SchedulerConfig {
        min_shard_size: trawl_core::plan::MIN_SHARD_SIZE,
        ephemeral: true,
        background_rule_validation: false,
        hand_over_results: true,
        lease_ms: 600_000,
        heartbeat_ms: 1_000,
        evidence_roots: roots.clone(),
        ..Default::default()
    };
    let sched = Scheduler::open(cfg).context("starting the embedded scheduler")?;
    // No port: the scheduler, the workers and this client talk over
    // in-process connections (memory), which no other process or user can
    // reach.
    let (connector, incoming) = trawl_scheduler::server::in_process();
    let stop = CancellationToken::new();
    let server = tokio::spawn(trawl_scheduler::server::serve_in_process(
        sched.clone(),
        incoming,
        stop.clone(),
    ));
    let slots = a.slots.unwrap_or(threads + 1).max(1);
    let mut workers = Vec::new();
    for i in 0..a.workers.max(1) {
        let wc = WorkerConfig {
            scheduler: IN_PROCESS_LABEL.into(),
            channel: Some(connector.channel()),
            slots,
            pool: Some(pool.clone()),
            worker_id: Some(trawl_core::WorkerId::new(format!("embedded-{i}"))?),
            drain_timeout: std::time::Duration::ZERO,
            evidence_roots: roots.clone(),
            ..Default::default()
        };
        workers.push(tokio::spawn(trawl_worker::run(wc, stop.clone())));
    }

    let client = Client::with_channel(IN_PROCESS_LABEL, connector.channel());
    drop(connector);
    let outcome = run_jobs(&client, &sched, &a, &groups, specs, a.workers.max(1) as u32).await;
    stop.cancel();
    for w in workers {
        let _ = w.await;
    }
    let _ = server.await;
    outcome
}

async fn run_jobs(
    client: &Client,
    sched: &Scheduler,
    a: &ScanArgs,
    groups: &[(Vec<PathBuf>, PathBuf)],
    specs: Vec<trawl_core::JobSpec>,
    workers: u32,
) -> Result<()> {
    let mut ids = Vec::new();
    for spec in specs {
        let r = client
            .jobs
            .clone()
            .submit_job(v1::SubmitJobRequest {
                spec: Some(v1::JobSpec::from(&spec)),
            })
            .await
            .map_err(crate::client::status_err)?
            .into_inner();
        ids.push(r.job_id);
    }
    let mut failed = Vec::new();
    let mut limited = Vec::new();
    let mut mismatched = Vec::new();
    for (id, (_, out)) in ids.iter().zip(groups) {
        let job = client.follow(id, |_, _| {}).await?;
        if job_state_name(job.state) != "completed" {
            failed.push(format!(
                "{}: {}",
                job.evidence
                    .as_ref()
                    .map(|e| e.path.clone())
                    .unwrap_or_default(),
                job.error
            ));
            if job_state_name(job.state) == "failed" && job.evidence.is_none() {
                continue;
            }
        }
        let t_results = std::time::Instant::now();
        let (job, mut r) = match sched.take_results(id) {
            Some(r) => (job, r),
            None => client.results(id).await?,
        };
        tracing::info!(
            ms = t_results.elapsed().as_millis() as u64,
            "results fetched"
        );
        r.provenance.command = std::env::args().collect();
        r.provenance.hostname = hostname();
        r.provenance.workers = workers;
        let r = write_report(client, &job, r, out).await?;
        print_summary(&job, &r, out, a.json);
        mismatched.extend(stored_hash_mismatches(&r));
        if !r.limitations.is_empty() {
            limited.push(format!(
                "{}: {} range(s) not examined",
                r.evidence.path,
                r.limitations.len()
            ));
        }
    }
    if !failed.is_empty() {
        return Err(Exit(2, format!("error: {}", failed.join("; "))).into());
    }
    if !mismatched.is_empty() {
        let mut msg = integrity_failure(&mismatched);
        if !limited.is_empty() {
            msg.push_str(&format!(
                "; also, examination incomplete: {}",
                limited.join("; ")
            ));
        }
        return Err(Exit(crate::EXIT_STORED_HASH_MISMATCH, msg).into());
    }
    if !limited.is_empty() {
        return Err(Exit(
            3,
            format!("warning: examination incomplete: {}", limited.join("; ")),
        )
        .into());
    }
    Ok(())
}

/// Each stored container hash (an E01's MD5 or SHA-1) that differs from the
/// one computed over the data, as `IMAGE: stored MD5 S, computed MD5 C`.
pub fn stored_hash_mismatches(r: &JobResults) -> Vec<String> {
    r.verification
        .iter()
        .filter(|v| !v.matches)
        .map(|v| {
            let alg = v.algorithm.to_uppercase();
            format!(
                "{}: stored {alg} {}, computed {alg} {}",
                r.evidence.path, v.stored, v.computed
            )
        })
        .collect()
}

/// The one-line reason of [`crate::EXIT_STORED_HASH_MISMATCH`] (as
/// `ewfverify` says FAILURE).
pub fn integrity_failure(mismatches: &[String]) -> String {
    format!(
        "integrity FAILURE: the data does not match the hash stored at acquisition: {} (report written)",
        mismatches.join("; ")
    )
}

fn print_summary(job: &v1::Job, r: &JobResults, out: &Path, json: bool) {
    if json {
        let mut v = job_json(job);
        v["out"] = serde_json::json!(out);
        v["hashes"] = serde_json::json!(r.hashes);
        v["verification"] = serde_json::json!(r.verification);
        outln!("{v}");
        return;
    }
    outln!(
        "{} ({} bytes, {})",
        r.evidence.path,
        r.evidence.size,
        r.evidence.format
    );
    for (name, v) in [
        ("md5", &r.hashes.md5),
        ("sha1", &r.hashes.sha1),
        ("sha256", &r.hashes.sha256),
        ("blake3", &r.hashes.blake3),
    ] {
        if let Some(v) = v {
            outln!("  {name:<7} {v}");
        }
    }
    for v in &r.verification {
        outln!(
            "  stored {} {}: {}",
            v.algorithm,
            v.stored,
            if v.matches { "verified" } else { "MISMATCH" }
        );
    }
    let found = r
        .features
        .iter()
        .filter(|f| f.scanner != trawl_features::DECODED_RECORDER)
        .count();
    if found > 0 {
        outln!("  features {found}");
    }
    if !r.carved.is_empty() {
        outln!(
            "  carved  {} ({} validated)",
            r.carved.len(),
            r.carved.iter().filter(|c| c.validated).count()
        );
    }
    if !r.yara.is_empty() {
        outln!("  yara    {} matches", r.yara.len());
    }
    for l in &r.limitations {
        outln!("  NOT EXAMINED bytes {}..{}: {}", l.start, l.end, l.error);
    }
    for e in &r.errors {
        outln!("  error: {e}");
    }
    outln!("  report  {}", out.display());
    if !is_final(job.state) {
        outln!("  (partial results: job {})", job_state_name(job.state));
    }
}

/// Writes the report directory of a job's results. Carved files are read
/// from the evidence: locally when this machine can read every segment,
/// otherwise through the scheduler.
pub async fn write_report(
    client: &Client,
    job: &v1::Job,
    r2: JobResults,
    out: &Path,
) -> Result<JobResults> {
    let out2 = out.to_path_buf();
    let ev = job.evidence.clone().unwrap_or_default();
    let job_id = job.job_id.clone();
    let client = client.evidence.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let evidence: Option<trawl_evidence::SharedEvidence> = if r2.carved.is_empty() {
            None
        } else if !ev.segments.is_empty() && ev.segments.iter().all(|s| Path::new(s).is_file()) {
            let paths: Vec<PathBuf> = ev.segments.iter().map(PathBuf::from).collect();
            Some(trawl_evidence::open_segments(&paths)?)
        } else {
            Some(std::sync::Arc::new(
                trawl_worker::remote::RemoteEvidence::new(&job_id, ev.size, &ev.path, client, rt),
            ))
        };
        let t = std::time::Instant::now();
        let done = trawl_report::write_report_dir(&out2, &r2, evidence.as_deref())
            .map_err(anyhow::Error::from);
        tracing::info!(ms = t.elapsed().as_millis() as u64, "report written");
        done.map(|()| r2)
    })
    .await?
    .with_context(|| format!("writing the report to {}", out.display()))
}
