//! The subcommands.

use crate::client::{Client, absolute, is_final, status_err, upload};
use crate::spec_args::SpecArgs;
use crate::{Exit, embedded};
use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use trawl_core::spec::EvidenceRef;
use trawl_proto::convert::{job_state_from_name, job_state_name};
use trawl_proto::v1;

const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Examine images on this machine: an embedded scheduler and workers in
    /// this process, no server to install.
    #[command(
        after_help = "Examples:\n  trawl scan disk.E01 --out report/\n  trawl scan disk.dd --out r --analyses hash,carve --shard-size 16MiB\n  trawl scan disk.001 disk.002 --out r        (segments of one split image)"
    )]
    Scan(ScanArgs),
    /// Submit an image to a cluster; prints the job id on its last line.
    #[command(
        after_help = "Examples:\n  trawl submit /mnt/evidence/disk.E01 --server http://sched:50051 --case C-2026-17\n  trawl submit ./disk.dd --upload --case C-1 --analyses all --rules rules/"
    )]
    Submit(SubmitArgs),
    /// Show one job.
    Status(StatusArgs),
    /// Follow one job live until it ends.
    Watch(JobArgs),
    /// List jobs.
    Jobs(JobsArgs),
    /// Cancel a job.
    Cancel(JobArgs),
    /// Fetch a job's results into a report directory.
    Results(ResultsArgs),
    /// Run a cluster scheduler (same as the `trawl-scheduler` binary).
    #[command(
        after_help = "Example:\n  trawl scheduler --data /var/lib/trawl --listen 127.0.0.1:50051"
    )]
    Scheduler(trawl_scheduler::cli::Args),
    /// Run a worker node (same as the `trawl-worker` binary).
    #[command(after_help = "Example:\n  trawl worker --scheduler http://127.0.0.1:50051 --slots 3")]
    Worker(trawl_worker::cli::Args),
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Scheduler URL.
    #[arg(long, env = "TRAWL_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Image file(s): raw/dd, split raw (first segment, or every segment in
    /// order), E01 (first segment).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Report directory.
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// In-process workers.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Tasks each worker runs at once (default: cores + 1).
    #[arg(long)]
    pub slots: Option<usize>,
    /// Analysis threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Case id recorded in the report.
    #[arg(long, default_value = "local")]
    pub case: String,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Image file(s): a path every node can read, or with --upload a local
    /// file sent to the scheduler's evidence store.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Case id.
    #[arg(long)]
    pub case: String,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Upload the image to the scheduler's evidence store.
    #[arg(long)]
    pub upload: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct JobArgs {
    /// Job id.
    pub job: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Job id.
    pub job: String,
    /// Also list the job's tasks (state, attempts, worker, errors).
    #[arg(long)]
    pub tasks: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct JobsArgs {
    /// Only this case.
    #[arg(long)]
    pub case: Option<String>,
    /// Only this state: queued, running, completed, failed, cancelled.
    #[arg(long)]
    pub state: Option<String>,
    /// Only jobs of this submitter.
    #[arg(long)]
    pub submitter: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct ResultsArgs {
    /// Job id.
    pub job: String,
    /// Report directory.
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Scan(a) => embedded::scan(a).await,
        Command::Submit(a) => submit(a).await,
        Command::Status(a) => status(a).await,
        Command::Watch(a) => watch(a).await,
        Command::Jobs(a) => jobs(a).await,
        Command::Cancel(a) => cancel(a).await,
        Command::Results(a) => results(a).await,
        Command::Scheduler(a) => trawl_scheduler::cli::run(a).await,
        Command::Worker(a) => trawl_worker::cli::run(a).await,
    }
}

/// `status --json` object of a job.
pub fn job_json(j: &v1::Job) -> serde_json::Value {
    let p = j.progress.clone().unwrap_or_default();
    let spec = j.spec.clone().unwrap_or_default();
    let ev = j.evidence.clone().unwrap_or_default();
    let pct = if p.bytes_total > 0 {
        100.0 * p.bytes_done as f64 / p.bytes_total as f64
    } else if is_final(j.state) {
        100.0
    } else {
        0.0
    };
    json!({
        "job_id": j.job_id,
        "state": job_state_name(j.state),
        "case_id": spec.case_id,
        "submitter": j.submitter,
        "evidence": { "path": ev.path, "size": ev.size, "format": ev.format().as_str_name().trim_start_matches("EVIDENCE_FORMAT_").to_ascii_lowercase() },
        "progress": {
            "percent": (pct * 10.0).round() / 10.0,
            "bytes_done": p.bytes_done, "bytes_total": p.bytes_total,
            "tasks_done": p.tasks_done, "tasks_total": p.tasks_total, "tasks_failed": p.tasks_failed,
            "throughput_bps": p.throughput_bps.round(), "eta_seconds": (p.eta_seconds * 10.0).round() / 10.0,
            "findings": p.findings,
        },
        "error": j.error,
        "limitations": j.limitations.iter().map(|l| json!({"start": l.start, "end": l.end, "task": l.task_id, "error": l.error, "attempts": l.attempts})).collect::<Vec<_>>(),
        "created_unix_ms": j.created_unix_ms,
        "finished_unix_ms": j.finished_unix_ms,
    })
}

fn human_line(j: &v1::Job) -> String {
    let p = j.progress.clone().unwrap_or_default();
    let spec = j.spec.clone().unwrap_or_default();
    let pct = if p.bytes_total > 0 {
        100.0 * p.bytes_done as f64 / p.bytes_total as f64
    } else {
        0.0
    };
    format!(
        "{:<10} {:<10} {:<16} {:>6.1}%  {:>4}/{:<4} tasks  {}",
        j.job_id,
        job_state_name(j.state),
        spec.case_id,
        pct,
        p.tasks_done,
        p.tasks_total,
        j.evidence.as_ref().map(|e| e.path.as_str()).unwrap_or("")
    )
}

async fn submit(a: SubmitArgs) -> Result<()> {
    let client = Client::new(&a.server.server)?;
    let name = a.images[0]
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let evidence = if a.upload {
        if a.images.len() != 1 {
            return Err(anyhow!("--upload takes one image file"));
        }
        let digest = upload(&client, &a.images[0], &a.case, |_, _| {}).await?;
        EvidenceRef::Upload(digest)
    } else {
        EvidenceRef::Paths(absolute(&a.images)?)
    };
    let spec = a.spec.spec(&a.case, evidence, name)?;
    let resp = client
        .jobs
        .clone()
        .submit_job(v1::SubmitJobRequest {
            spec: Some(v1::JobSpec::from(&spec)),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if a.server.json {
        println!("{}", json!({"job_id": resp.job_id}));
    }
    println!("{}", resp.job_id);
    Ok(())
}

async fn status(a: StatusArgs) -> Result<()> {
    let client = Client::new(&a.server.server)?;
    let j = client.job(&a.job).await?;
    let tasks = if a.tasks {
        client
            .jobs
            .clone()
            .list_tasks(v1::ListTasksRequest {
                job_id: a.job.clone(),
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .tasks
    } else {
        Vec::new()
    };
    if a.server.json {
        let mut v = job_json(&j);
        if a.tasks {
            v["tasks"] = json!(tasks
                .iter()
                .map(|t| json!({
                    "task_id": t.task_id, "kind": t.kind, "state": t.state, "attempts": t.attempts,
                    "worker": t.worker, "errors": t.errors, "first_lease_seq": t.first_lease_seq,
                    "start": t.start, "end": t.end,
                }))
                .collect::<Vec<_>>());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", human_line(&j));
        if !j.error.is_empty() {
            println!("  error: {}", j.error);
        }
        for l in &j.limitations {
            println!(
                "  not examined: bytes {}..{} ({}, {} attempts): {}",
                l.start, l.end, l.task_id, l.attempts, l.error
            );
        }
        for t in &tasks {
            println!(
                "  {:<24} {:<12} {:<12} attempts {:<2} {:<16} {}",
                t.task_id,
                t.kind,
                t.state,
                t.attempts,
                t.worker,
                t.errors.last().map(String::as_str).unwrap_or("")
            );
        }
    }
    Ok(())
}

async fn watch(a: JobArgs) -> Result<()> {
    let client = Client::new(&a.server.server)?;
    let json_out = a.server.json;
    let j = client
        .follow(&a.job, |j, msg| {
            if json_out {
                let mut v = job_json(j);
                v["event"] = json!(msg);
                println!("{v}");
            } else {
                println!("{}  {}", human_line(j), msg);
            }
        })
        .await?;
    match job_state_name(j.state) {
        "completed" => Ok(()),
        s => Err(Exit(2, format!("job {} {s}: {}", j.job_id, j.error)).into()),
    }
}

async fn jobs(a: JobsArgs) -> Result<()> {
    let client = Client::new(&a.server.server)?;
    let state = match &a.state {
        Some(s) => {
            job_state_from_name(s).ok_or_else(|| anyhow!("--state: unknown state {s:?}"))? as i32
        }
        None => 0,
    };
    let list = client
        .jobs
        .clone()
        .list_jobs(v1::ListJobsRequest {
            case_id: a.case.unwrap_or_default(),
            state,
            submitter: a.submitter.unwrap_or_default(),
            limit: 0,
        })
        .await
        .map_err(status_err)?
        .into_inner()
        .jobs;
    if a.server.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list.iter().map(job_json).collect::<Vec<_>>())?
        );
    } else {
        println!(
            "{:<10} {:<10} {:<16} {:>7}  {:>9}  EVIDENCE",
            "JOB", "STATE", "CASE", "DONE", "TASKS"
        );
        for j in &list {
            println!("{}", human_line(j));
        }
    }
    Ok(())
}

async fn cancel(a: JobArgs) -> Result<()> {
    let client = Client::new(&a.server.server)?;
    let j = client
        .jobs
        .clone()
        .cancel_job(v1::CancelJobRequest {
            job_id: a.job.clone(),
            reason: String::new(),
        })
        .await
        .map_err(status_err)?
        .into_inner();
    if a.server.json {
        println!("{}", serde_json::to_string_pretty(&job_json(&j))?);
    } else {
        println!("{}", human_line(&j));
    }
    Ok(())
}

async fn results(a: ResultsArgs) -> Result<()> {
    let client = Client::new(&a.server.server)?;
    let (job, r) = client.results(&a.job).await?;
    embedded::write_report(&client, &job, &r, &a.out).await?;
    if a.server.json {
        println!(
            "{}",
            json!({"job_id": job.job_id, "state": job_state_name(job.state), "out": a.out})
        );
    } else {
        println!(
            "{} {} -> {}",
            job.job_id,
            job_state_name(job.state),
            a.out.display()
        );
    }
    if !is_final(job.state) {
        eprintln!(
            "trawl: note: job {} is {}: these are partial results",
            job.job_id,
            job_state_name(job.state)
        );
    }
    Ok(())
}
