//! The subcommands.

use crate::client::{Client, absolute, is_final, status_err, upload};
use crate::spec_args::SpecArgs;
use crate::{Exit, embedded};
use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use trawl_core::JobId;
use trawl_core::spec::EvidenceRef;
use trawl_proto::connect::ConnectOptions;
use trawl_proto::convert::{job_state_from_name, job_state_name};
use trawl_proto::v1;
use trawl_scheduler::outln;
use trawl_scheduler::text::{eta, utc_ms};

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
    #[command(
        after_help = "Examples:\n  trawl status J000042\n  trawl status J000042 --tasks --json"
    )]
    Status(StatusArgs),
    /// Follow one job live until it ends: progress bar, throughput, ETA,
    /// findings per kind as they arrive. Exit 0 completed, 2 failed or
    /// cancelled.
    #[command(
        after_help = "Examples:\n  trawl watch J000042\n  trawl watch J000042 --verbose     (also one line per task event)\n  trawl watch J000042 --json"
    )]
    Watch(WatchArgs),
    /// List jobs (of the cases you may read).
    #[command(
        after_help = "Examples:\n  trawl jobs --case C-2026-17\n  trawl jobs --state running --json"
    )]
    Jobs(JobsArgs),
    /// Cancel a job.
    Cancel(JobArgs),
    /// Fetch a job's results into a report directory.
    #[command(after_help = "Example:\n  trawl results J000042 --out report-J000042/")]
    Results(ResultsArgs),
    /// YARA rule sets kept by the scheduler (jobs name them with --ruleset).
    #[command(subcommand)]
    Rules(RulesCmd),
    /// The worker pool: nodes, slots, load, health.
    Workers(ServerArgs),
    /// Known-file and notable-file hash sets: build the compact table that
    /// --known / --notable look up (memory-mapped, any size).
    #[command(subcommand)]
    Known(KnownCmd),
    /// Users and tokens (admin).
    #[command(subcommand)]
    Users(UsersCmd),
    /// The audit trail (chain of custody): list it, verify its hash chain.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Cases sharing indicators with a case: their ids, their case
    /// officers as contacts and the shared indicators (every case shown is
    /// audited).
    #[command(
        after_help = "Examples:\n  trawl links --case C-2026-17\n  trawl links --case C-2026-17 --json\n  trawl links --json              (admins: the whole lab)"
    )]
    Links(crate::intel::LinksArgs),
    /// The lab's indicator index (analysts and admins).
    #[command(subcommand)]
    Index(crate::intel::IndexCmd),
    /// Alert flashes: publish, list, withdraw (analysts and admins).
    #[command(subcommand)]
    Flash(crate::intel::FlashCmd),
    /// Alerts raised by flashes in your cases; --watch follows them live.
    #[command(
        after_help = "Examples:\n  trawl alerts\n  trawl alerts --case C-2026-17 --state new --json\n  trawl alerts --watch"
    )]
    Alerts(crate::intel::AlertsArgs),
    /// Mark an alert seen, or dismiss it with the reason.
    #[command(subcommand)]
    Alert(crate::intel::AlertCmd),
    /// Share indicators: a STIX 2.1 bundle, a MISP event or a MISP feed of
    /// a case, a job or a flash, at a TLP (case officers and admins).
    #[command(
        after_help = "Examples:\n  trawl export stix --case C-2026-17 --tlp amber --out c17.stix.json\n  trawl export misp --job J000042 --tlp green --out j42.misp.json\n  trawl export misp-feed --case C-2026-17 --tlp green --out feed/"
    )]
    Export(crate::intel::ExportArgs),
    /// The threat report of a period: an HTML page with its charts (prints
    /// to PDF), its print style sheet and its figures as CSV, over the
    /// cases you may read.
    #[command(
        after_help = "Examples:\n  trawl report --from 2026-01-01 --to 2026-12-31 --out report-2026/\n  trawl report --from 2026-10-01 --to 2026-12-31 --out q4 --lang fr --json"
    )]
    Report(crate::report_cmd::ReportArgs),
    /// Run a cluster scheduler (same as the `trawl-scheduler` binary).
    #[command(
        after_help = "Example:\n  trawl scheduler --data /var/lib/trawl --listen 127.0.0.1:50051"
    )]
    Scheduler(trawl_scheduler::cli::Command),
    /// Run a worker node (same as the `trawl-worker` binary).
    #[command(after_help = "Example:\n  trawl worker --scheduler http://127.0.0.1:50051 --slots 3")]
    Worker(trawl_worker::cli::Args),
}

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Scheduler URL: https://HOST:PORT, or http://127.0.0.1:PORT for an
    /// uninitialised scheduler [default: the client config's `server`,
    /// else http://127.0.0.1:50051].
    #[arg(long, env = "TRAWL_SERVER")]
    pub server: Option<String>,
    /// The lab's CA certificate (PEM), to verify the scheduler.
    #[arg(long, env = "TRAWL_CA")]
    pub ca: Option<PathBuf>,
    /// Bearer token (from `trawl-scheduler user add`).
    #[arg(long, env = "TRAWL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the bearer token.
    #[arg(long, env = "TRAWL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Client configuration (TOML: server, ca, token or token_file)
    /// [default: $XDG_CONFIG_HOME/trawl/client.toml or
    /// ~/.config/trawl/client.toml, if present].
    #[arg(long, env = "TRAWL_CLIENT_CONFIG")]
    pub client_config: Option<PathBuf>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// The client configuration file.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
struct ClientFile {
    server: Option<String>,
    ca: Option<PathBuf>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

fn default_client_config() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("trawl").join("client.toml"))
}

fn read_token_file(p: &std::path::Path) -> Result<String> {
    let t = std::fs::read_to_string(p).with_context(|| format!("token file {}", p.display()))?;
    Ok(t.trim().to_string())
}

impl ServerArgs {
    /// Where and how to connect: flags, then environment, then the client
    /// configuration file, then the default.
    pub fn connect_options(&self) -> Result<ConnectOptions> {
        let (path, explicit) = match &self.client_config {
            Some(p) => (Some(p.clone()), true),
            None => (default_client_config(), false),
        };
        let mut file = ClientFile::default();
        let mut base = PathBuf::from(".");
        if let Some(p) = path
            && (explicit || p.is_file())
        {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("client config {}", p.display()))?;
            file =
                toml::from_str(&text).with_context(|| format!("client config {}", p.display()))?;
            base = p.parent().map(PathBuf::from).unwrap_or(base);
        }
        let rel = |q: PathBuf| if q.is_absolute() { q } else { base.join(q) };
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(f)) => Some(read_token_file(f)?),
            (None, None) => match (file.token, file.token_file) {
                (Some(t), _) => Some(t),
                (None, Some(f)) => Some(read_token_file(&rel(f))?),
                (None, None) => None,
            },
        };
        Ok(ConnectOptions {
            url: self
                .server
                .clone()
                .or(file.server)
                .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
            ca: self.ca.clone().or(file.ca.map(rel)),
            identity: None,
            token,
        })
    }

    /// A client for these options.
    pub fn client(&self) -> Result<Client> {
        Client::connect(&self.connect_options()?)
    }
}

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// Compile and keep a rule set under a name (admin). Rules that do not
    /// compile are listed with file:line:column; the rest is kept unless
    /// --strict.
    #[command(after_help = "Example:\n  trawl rules add malware-2026 rules/ --strict")]
    Add {
        name: String,
        /// A .yar file or a folder of them.
        path: PathBuf,
        /// Refuse the whole set if any rule fails to compile.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the rule sets.
    List(ServerArgs),
}

#[derive(Subcommand, Debug)]
pub enum KnownCmd {
    /// Imports hash sets (NSRL RDSv3 SQLite databases, hashdeep /
    /// md5sum-style lists, other tables) into one sorted table: memory
    /// bounded whatever their size.
    #[command(
        after_help = "Examples:\n  trawl known import RDS_2024.12.1_modern.db --out nsrl.tkh --name NSRL-2024.12\n  trawl known import csam-hashes.txt --out notable.tkh --name CSAM-set --notable"
    )]
    Import {
        /// Source files, in any mix of the formats.
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// The table to write (refused if it exists, unless --overwrite).
        #[arg(long)]
        out: PathBuf,
        /// The set's name, reported with every file it matches.
        #[arg(long)]
        name: String,
        /// A notable set (contraband, malware) rather than known-good.
        #[arg(long)]
        notable: bool,
        /// Malformed lines allowed per source (counted and recorded in the
        /// table); by default the first one refuses the import.
        #[arg(long, default_value_t = 0)]
        max_malformed: u64,
        /// Replace an existing table.
        #[arg(long)]
        overwrite: bool,
        #[arg(long)]
        json: bool,
    },
    /// Checks a table completely (order, checksums) and prints its metadata.
    Verify {
        table: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Add a user; prints the token once, on the last line.
    #[command(
        after_help = "Example:\n  trawl users add alice --role investigator --case C-2026-17 --expires 30d"
    )]
    Add {
        name: String,
        /// investigator, case_officer or admin.
        #[arg(long)]
        role: String,
        /// A case of the user (repeatable).
        #[arg(long = "case")]
        cases: Vec<String>,
        /// Token lifetime: 90d, 12h, 30m, 45s or never.
        #[arg(long, default_value = "90d")]
        expires: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke a user's token.
    Revoke {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List users.
    List(ServerArgs),
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the audit trail: its hash chain, each entry's MAC and the
    /// anchor recording its head (exit 0 intact; 4 broken, naming the first
    /// entry altered, removed, reordered, forged, unreadable or cut off the
    /// end, or not verifiable). With --data, reads a stopped scheduler's
    /// data directory directly (with the audit key: --audit-key, else
    /// DATA.audit-key when it is there); otherwise asks the scheduler
    /// (admin).
    #[command(
        after_help = "Examples:\n  trawl audit verify --data /var/lib/trawl        (scheduler stopped; key /var/lib/trawl.audit-key)\n  trawl audit verify --data copy/ --audit-key /secure/trawl.audit-key\n  trawl audit verify --server https://sched:50051 --ca ca.pem"
    )]
    Verify {
        /// A scheduler's data directory (the scheduler must be stopped).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The audit key of that data directory (with --data).
        #[arg(long = "audit-key", env = "TRAWL_AUDIT_KEY", requires = "data")]
        audit_key: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List audit entries (who, what, when, from where), page by page.
    List {
        /// Only this case.
        #[arg(long)]
        case: Option<String>,
        /// From this sequence number.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// At most this many entries (0: all).
        #[arg(long, default_value_t = 0)]
        limit: u64,
        /// A stopped scheduler's data directory, read directly.
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Image file(s): raw/dd, split raw (first segment, or every segment in
    /// order), E01 (first segment).
    #[arg(required_unless_present = "list_scanners")]
    pub images: Vec<PathBuf>,
    /// Report directory.
    #[arg(
        long,
        short,
        required_unless_present = "list_scanners",
        default_value = "."
    )]
    pub out: PathBuf,
    /// Print the feature scanners (bulk_extractor's names), the decoding
    /// layers and the scanner groups, one line each, and exit.
    #[arg(long)]
    pub list_scanners: bool,
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
    /// How raw and split images are read: `mmap` (default) or `pread`
    /// (never maps the evidence: a file truncated while it is read gives
    /// an I/O error, not SIGBUS). Results are the same.
    #[arg(long, default_value = "mmap")]
    pub read_mode: trawl_evidence::ReadMode,
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

/// A job id as typed, in the scheduler's spelling (`j42` stays as typed:
/// ids are `J` and six digits, accepted in any case).
fn job_id_arg(s: &str) -> std::result::Result<JobId, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("a job id, such as J000042".into());
    }
    JobId::new(trawl_scheduler::service::canonical_job_id(s)).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
pub struct JobArgs {
    /// Job id (J000042; any case).
    #[arg(value_parser = job_id_arg)]
    pub job: JobId,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Also print one line per task event (task done, retried...).
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Job id (J000042; any case).
    #[arg(value_parser = job_id_arg)]
    pub job: JobId,
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
    /// Job id (J000042; any case).
    #[arg(value_parser = job_id_arg)]
    pub job: JobId,
    /// Report directory.
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Scan(a) if a.list_scanners => {
            for line in trawl_features::list_scanners() {
                println!("{line}");
            }
            Ok(())
        }
        Command::Scan(a) => {
            trawl_evidence::set_read_mode(a.read_mode);
            embedded::scan(a).await
        }
        Command::Submit(a) => submit(a).await,
        Command::Status(a) => status(a).await,
        Command::Watch(a) => watch(a).await,
        Command::Jobs(a) => jobs(a).await,
        Command::Cancel(a) => cancel(a).await,
        Command::Results(a) => results(a).await,
        Command::Rules(c) => rules(c).await,
        Command::Workers(a) => workers(a).await,
        Command::Known(c) => tokio::task::spawn_blocking(move || known(c))
            .await
            .map_err(|e| anyhow!("{e}"))?,
        Command::Users(c) => users(c).await,
        Command::Audit(c) => audit(c).await,
        Command::Links(a) => crate::intel::links(a).await,
        Command::Index(c) => crate::intel::index(c).await,
        Command::Flash(c) => crate::intel::flash(c).await,
        Command::Alerts(a) => crate::intel::alerts(a).await,
        Command::Alert(c) => crate::intel::alert(c).await,
        Command::Export(a) => crate::intel::export(a).await,
        Command::Report(a) => crate::report_cmd::report(a).await,
        Command::Scheduler(a) => trawl_scheduler::cli::run_command(a).await.map_err(|e| {
            match e.downcast::<trawl_scheduler::cli::ExitStatus>() {
                Ok(x) => Exit(x.0, x.1).into(),
                Err(e) => e,
            }
        }),
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
        "evidence": { "submitted": submitted_evidence(j), "path": ev.path, "size": ev.size, "format": ev.format().as_str_name().trim_start_matches("EVIDENCE_FORMAT_").to_ascii_lowercase() },
        "progress": {
            "percent": (pct * 10.0).round() / 10.0,
            "bytes_done": p.bytes_done, "bytes_total": p.bytes_total,
            "tasks_done": p.tasks_done, "tasks_total": p.tasks_total, "tasks_failed": p.tasks_failed,
            "throughput_bps": p.throughput_bps.round(), "eta_seconds": (p.eta_seconds * 10.0).round() / 10.0,
            "findings": p.findings,
            // Final: the merged report's counts (report.json `counts`);
            // otherwise provisional sums over the shards done so far.
            "findings_final": p.findings_final,
            "carved_per_type": p.carved_per_type,
        },
        "error": j.error,
        "limitations": j.limitations.iter().map(|l| json!({"start": l.start, "end": l.end, "task": l.task_id, "error": l.error, "attempts": l.attempts})).collect::<Vec<_>>(),
        "created_unix_ms": j.created_unix_ms,
        "finished_unix_ms": j.finished_unix_ms,
    })
}

/// The evidence as it was submitted: the path given (not where a symbolic
/// link leads), its segment count, or the upload.
fn submitted_evidence(j: &v1::Job) -> String {
    let spec = j.spec.clone().unwrap_or_default();
    match spec.evidence.and_then(|e| e.source) {
        Some(v1::evidence_locator::Source::Paths(p)) => match p.paths.as_slice() {
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} (+{} segments)", rest.len()),
            [] => String::new(),
        },
        Some(v1::evidence_locator::Source::UploadDigest(d)) => {
            format!("upload {} ({})", spec.evidence_name, &d[..d.len().min(12)])
        }
        None => j
            .evidence
            .as_ref()
            .map(|e| e.path.clone())
            .unwrap_or_default(),
    }
}

/// The header of [`human_line`]'s columns (numbers right-aligned under
/// their names).
fn jobs_header() -> String {
    format!(
        "{:<8} {:<9} {:<8} {:<16} {:<18} {:>6} {:>12} {}",
        "JOB", "STATE", "PRIORITY", "CASE", "SUBMITTED (UTC)", "DONE", "TASKS", "EVIDENCE"
    )
}

/// A job on one line, in [`jobs_header`]'s columns (a case id longer than
/// its column pushes the rest right rather than being cut).
fn human_line(j: &v1::Job) -> String {
    let p = j.progress.clone().unwrap_or_default();
    let spec = j.spec.clone().unwrap_or_default();
    let pct = if p.bytes_total > 0 {
        100.0 * p.bytes_done as f64 / p.bytes_total as f64
    } else if is_final(j.state) && job_state_name(j.state) == "completed" {
        100.0
    } else {
        0.0
    };
    let priority = v1::Priority::try_from(spec.priority)
        .map(|p| {
            p.as_str_name()
                .trim_start_matches("PRIORITY_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let submitted = utc_ms(j.created_unix_ms);
    format!(
        "{:<8} {:<9} {:<8} {:<16} {:<18} {:>5.1}% {:>12} {}",
        j.job_id,
        job_state_name(j.state),
        if priority == "unspecified" {
            "normal".into()
        } else {
            priority
        },
        spec.case_id,
        submitted.get(..16).unwrap_or(submitted.as_str()),
        pct,
        format!("{}/{}", p.tasks_done, p.tasks_total),
        submitted_evidence(j),
    )
}

async fn submit(a: SubmitArgs) -> Result<()> {
    let client = a.server.client()?;
    let name = a.images[0]
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let evidence = if a.upload {
        if a.images.len() != 1 {
            return Err(anyhow!("--upload takes one image file"));
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "uploading {prefix} [{bar:32}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(name.clone());
        let digest = upload(&client, &a.images[0], &a.case, |sent, total| {
            bar.set_length(total);
            bar.set_position(sent);
        })
        .await;
        bar.finish_and_clear();
        let digest = digest?;
        eprintln!("uploaded {name}: BLAKE3 {digest} verified by the scheduler");
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
        outln!("{}", json!({"job_id": resp.job_id}));
    }
    outln!("{}", resp.job_id);
    Ok(())
}

async fn status(a: StatusArgs) -> Result<()> {
    let client = a.server.client()?;
    let j = client.job(&a.job).await?;
    let tasks = if a.tasks {
        client
            .jobs
            .clone()
            .list_tasks(v1::ListTasksRequest {
                job_id: a.job.to_string(),
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
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!("{}", jobs_header());
        outln!("{}", human_line(&j));
        if !j.error.is_empty() {
            outln!("  error: {}", j.error);
        }
        for l in &j.limitations {
            outln!(
                "  not examined: bytes {}..{} ({}, {} attempts): {}",
                l.start,
                l.end,
                l.task_id,
                l.attempts,
                l.error
            );
        }
        for t in &tasks {
            outln!(
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

/// Findings per kind, most first: "email 12, carved 3".
fn findings_line(p: &v1::Progress) -> String {
    let items = findings_items(p);
    if items.is_empty() {
        return if p.findings_final {
            "none".into()
        } else {
            "none yet".into()
        };
    }
    let list = items.join(", ");
    if p.findings_final {
        list
    } else {
        // Per-shard sums before the exact merge: overlaps and whole-image
        // YARA rules are settled when the job completes.
        format!("{list} (provisional)")
    }
}

/// Findings per kind as "kind count", most first (ties by kind).
fn findings_items(p: &v1::Progress) -> Vec<String> {
    let mut f: Vec<(&String, &u64)> = p.findings.iter().collect();
    f.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    f.iter().map(|(k, n)| format!("{k} {n}")).collect()
}

/// One line of `watch` without a terminal.
fn watch_line(j: &v1::Job, msg: &str) -> String {
    let p = j.progress.clone().unwrap_or_default();
    let pct = if p.bytes_total > 0 {
        100.0 * p.bytes_done as f64 / p.bytes_total as f64
    } else {
        0.0
    };
    format!(
        "{} {:<9} {:>5.1}% {:>9}/{:<9} tasks {}/{}  {:>10}/s  ETA {:<6} findings: {}{}",
        j.job_id,
        job_state_name(j.state),
        pct,
        indicatif::HumanBytes(p.bytes_done).to_string(),
        indicatif::HumanBytes(p.bytes_total).to_string(),
        p.tasks_done,
        p.tasks_total,
        indicatif::HumanBytes(p.throughput_bps.max(0.0) as u64).to_string(),
        if is_final(j.state) {
            "-".into()
        } else {
            eta(p.eta_seconds)
        },
        findings_line(&p),
        if msg.is_empty() || msg == "progress" {
            String::new()
        } else {
            format!("  [{msg}]")
        }
    )
}

/// The terminal's width in columns (80 when unknown), capped at 160.
fn term_width() -> usize {
    console::Term::stdout()
        .size_checked()
        .map_or(80, |(_, w)| usize::from(w))
        .clamp(40, 160)
}

/// `items` joined with ", " into lines of at most `width` columns, the
/// first starting with `head`, the next indented.
fn wrap_list(head: &str, items: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = head.to_string();
    for (i, it) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{it},")
        } else {
            it.clone()
        };
        let sep = if line.ends_with(' ') || line.is_empty() {
            ""
        } else {
            " "
        };
        if line.chars().count() + sep.len() + piece.chars().count() > width
            && line.trim().len() > head.trim().len()
        {
            lines.push(line);
            line = format!("  {piece}");
        } else {
            line.push_str(sep);
            line.push_str(&piece);
        }
    }
    lines.push(line);
    lines
}

/// The summary `watch` prints when the job ends, wrapped to `width`.
fn watch_summary(j: &v1::Job, width: usize) -> Vec<String> {
    let p = j.progress.clone().unwrap_or_default();
    let took = if j.finished_unix_ms > 0 && p.started_unix_ms > 0 {
        format!(
            " in {}",
            eta(((j.finished_unix_ms - p.started_unix_ms) as f64 / 1000.0).max(1.0))
        )
    } else {
        String::new()
    };
    let mut out = vec![format!(
        "{} {}{took}: {} at {}/s, tasks {}/{}",
        j.job_id,
        job_state_name(j.state),
        indicatif::HumanBytes(p.bytes_done),
        indicatif::HumanBytes(p.throughput_bps.max(0.0) as u64),
        p.tasks_done,
        p.tasks_total,
    )];
    out.extend(findings_lines(&p, width));
    out.into_iter()
        .map(|l| {
            if l.chars().count() > width {
                l.chars().take(width).collect()
            } else {
                l
            }
        })
        .collect()
}

/// Findings per kind, most first, wrapped to `width`: "findings: ..." once
/// final, "findings (provisional): ..." while the job runs.
fn findings_lines(p: &v1::Progress, width: usize) -> Vec<String> {
    let items = findings_items(p);
    let head = if p.findings_final {
        "findings:"
    } else {
        "findings (provisional):"
    };
    if items.is_empty() {
        vec![format!(
            "{head} {}",
            if p.findings_final { "none" } else { "none yet" }
        )]
    } else {
        wrap_list(head, &items, width)
    }
}

/// A task event (`task J000001:s000003 done`): shown with `--verbose`.
fn is_task_event(msg: &str) -> bool {
    msg.starts_with("task ")
}

async fn watch(w: WatchArgs) -> Result<()> {
    use std::io::IsTerminal;
    let a = w.job;
    let verbose = w.verbose;
    let client = a.server.client()?;
    let json_out = a.server.json;
    let tty = !json_out && std::io::stdout().is_terminal();
    let width = term_width();
    let bar = indicatif::ProgressBar::new(0);
    // Two lines that fit the terminal: the bar (as wide as there is
    // room), and the figures (cut to the width by indicatif).
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            // (One column left free: text never reaches the last one.)
            "{prefix} {wide_bar} {percent:>3}% \n{msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    if !tty {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut last = String::new();
    let mut last_line_at: Option<std::time::Instant> = None;
    let j = client
        .follow(&a.job, |j, msg| {
            if json_out {
                // A task's event is shown with --verbose only, unless it is
                // the one that found the job ended (its final line).
                if is_task_event(msg) && !verbose && !is_final(j.state) {
                    return;
                }
                let mut v = job_json(j);
                v["event"] = json!(msg);
                outln!("{v}");
                return;
            }
            let p = j.progress.clone().unwrap_or_default();
            if tty {
                bar.set_prefix(format!("{} {}", j.job_id, job_state_name(j.state)));
                bar.set_length(p.bytes_total);
                bar.set_position(p.bytes_done);
                // The figures on one line, the findings wrapped under
                // them: every line fits the terminal, nothing is cut.
                let mut lines = vec![format!(
                    "{}/{}  {}/s  ETA {}  tasks {}/{}",
                    indicatif::HumanBytes(p.bytes_done),
                    indicatif::HumanBytes(p.bytes_total),
                    indicatif::HumanBytes(p.throughput_bps.max(0.0) as u64),
                    eta(p.eta_seconds),
                    p.tasks_done,
                    p.tasks_total,
                )];
                lines.extend(findings_lines(&p, width - 1));
                bar.set_message(lines.join("\n"));
                // State changes are said (the end by the summary); task
                // events only with --verbose.
                if msg != "progress"
                    && !msg.is_empty()
                    && !is_final(j.state)
                    && (verbose || !is_task_event(msg))
                {
                    bar.println(format!("{}: {msg}", j.job_id));
                }
            } else {
                // Without a terminal: a line when the state changes, at
                // most one every two seconds otherwise (every event with
                // --verbose).
                let key = format!("{} {}", j.state, if verbose { msg } else { "" });
                let due =
                    last_line_at.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(2));
                if key != last || (verbose && !msg.is_empty()) || (due && !is_final(j.state)) {
                    outln!(
                        "{}",
                        watch_line(
                            j,
                            if verbose || !is_task_event(msg) {
                                msg
                            } else {
                                ""
                            }
                        )
                    );
                    last = key;
                    last_line_at = Some(std::time::Instant::now());
                }
            }
        })
        .await?;
    bar.finish_and_clear();
    if tty {
        for l in watch_summary(&j, width) {
            outln!("{l}");
        }
    }
    match job_state_name(j.state) {
        "completed" if !j.limitations.is_empty() => Err(Exit(
            3,
            format!(
                "job {} completed, but {} part(s) of the evidence could not be examined (see `trawl status {}`)",
                j.job_id,
                j.limitations.len(),
                j.job_id
            ),
        )
        .into()),
        "completed" => Ok(()),
        s => Err(Exit(2, format!("job {} {s}: {}", j.job_id, j.error)).into()),
    }
}

async fn jobs(a: JobsArgs) -> Result<()> {
    let client = a.server.client()?;
    let state = match &a.state {
        Some(s) => {
            job_state_from_name(&s.to_ascii_lowercase()).ok_or_else(|| {
                anyhow!(
                    "--state: unknown state {s:?} (one of queued, running, completed, failed, cancelled)"
                )
            })? as i32
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
        outln!(
            "{}",
            serde_json::to_string_pretty(&list.iter().map(job_json).collect::<Vec<_>>())?
        );
    } else {
        outln!("{}", jobs_header());
        for j in &list {
            outln!("{}", human_line(j));
        }
    }
    Ok(())
}

async fn cancel(a: JobArgs) -> Result<()> {
    let client = a.server.client()?;
    let j = client
        .jobs
        .clone()
        .cancel_job(v1::CancelJobRequest {
            job_id: a.job.to_string(),
            reason: String::new(),
        })
        .await
        .map_err(|s| {
            if s.code() == tonic::Code::FailedPrecondition {
                Exit(crate::EXIT_NOTHING_TO_CANCEL, s.message().to_string()).into()
            } else {
                status_err(s)
            }
        })?
        .into_inner();
    if a.server.json {
        outln!("{}", serde_json::to_string_pretty(&job_json(&j))?);
    } else {
        outln!("{}", human_line(&j));
    }
    Ok(())
}

async fn results(a: ResultsArgs) -> Result<()> {
    let client = a.server.client()?;
    let (job, r) = client.results(&a.job).await?;
    let r = embedded::write_report(&client, &job, r, &a.out).await?;
    if a.server.json {
        outln!(
            "{}",
            json!({"job_id": job.job_id, "state": job_state_name(job.state), "out": a.out})
        );
    } else {
        outln!(
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
    // The job's exit status, as `watch` and `scan` give it: 2 failed or
    // cancelled (partial results written), then 5 a stored hash
    // mismatch, then 3 parts not examined.
    let state = v1::JobState::try_from(job.state).unwrap_or_default();
    if matches!(state, v1::JobState::Failed | v1::JobState::Cancelled) {
        return Err(Exit(
            2,
            format!(
                "job {} {}: the partial results were written to {}",
                job.job_id,
                job_state_name(job.state),
                a.out.display()
            ),
        )
        .into());
    }
    let mismatched = embedded::stored_hash_mismatches(&r);
    if !mismatched.is_empty() {
        return Err(Exit(
            crate::EXIT_STORED_HASH_MISMATCH,
            format!(
                "job {}: {}",
                job.job_id,
                embedded::integrity_failure(&mismatched)
            ),
        )
        .into());
    }
    if !job.limitations.is_empty() {
        return Err(Exit(
            3,
            format!(
                "job {}: {} parts of the evidence could not be examined (see report.json limitations)",
                job.job_id,
                job.limitations.len()
            ),
        )
        .into());
    }
    Ok(())
}

async fn rules(c: RulesCmd) -> Result<()> {
    match c {
        RulesCmd::Add {
            name,
            path,
            strict,
            server,
        } => {
            let sources = crate::spec_args::read_rules(&path)?
                .into_iter()
                .map(|r| v1::RuleSource {
                    name: r.name,
                    text: r.text,
                })
                .collect();
            let info = server
                .client()?
                .rules
                .add_rule_set(v1::AddRuleSetRequest {
                    name: name.clone(),
                    sources,
                    strict,
                })
                .await
                .map_err(status_err)?
                .into_inner();
            if server.json {
                outln!("{}", serde_json::to_string_pretty(&ruleset_json(&info))?);
            } else {
                outln!(
                    "rule set {}: {} rules from {} files ({} refused), digest {}",
                    info.name,
                    info.rules,
                    info.files,
                    info.rejected_files,
                    info.digest
                );
                for d in &info.diagnostics {
                    outln!(
                        "  {}:{}:{}: {}: {}",
                        d.file,
                        d.line,
                        d.column,
                        d.severity,
                        d.message
                    );
                }
            }
        }
        RulesCmd::List(server) => {
            let sets = server
                .client()?
                .rules
                .list_rule_sets(v1::ListRuleSetsRequest {})
                .await
                .map_err(status_err)?
                .into_inner()
                .rule_sets;
            if server.json {
                let v: Vec<_> = sets.iter().map(ruleset_json).collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!(
                    "{:<24} {:>7} {:>6} {:>8}  {:<20} DIGEST",
                    "NAME",
                    "RULES",
                    "FILES",
                    "REFUSED",
                    "CREATED"
                );
                for r in &sets {
                    outln!(
                        "{:<24} {:>7} {:>6} {:>8}  {:<20} {}",
                        r.name,
                        r.rules,
                        r.files,
                        r.rejected_files,
                        utc_ms(r.created_unix_ms),
                        &r.digest[..r.digest.len().min(16)]
                    );
                }
            }
        }
    }
    Ok(())
}

fn ruleset_json(r: &v1::RuleSetInfo) -> serde_json::Value {
    json!({
        "name": r.name, "digest": r.digest, "rules": r.rules, "files": r.files,
        "rejected_files": r.rejected_files, "created_unix_ms": r.created_unix_ms,
        "diagnostics": r.diagnostics.iter().map(|d| json!({"file": d.file, "line": d.line, "column": d.column, "severity": d.severity, "message": d.message, "rule": d.rule})).collect::<Vec<_>>(),
    })
}

async fn workers(a: ServerArgs) -> Result<()> {
    let list = a
        .client()?
        .cluster
        .list_workers(v1::ListWorkersRequest {})
        .await
        .map_err(status_err)?
        .into_inner()
        .workers;
    let now = trawl_store::now_ms();
    if a.json {
        let v: Vec<_> = list
            .iter()
            .map(|w| {
                json!({"worker_id": w.worker_id, "hostname": w.hostname, "slots": w.slots,
                "busy_slots": w.busy_slots, "memory_bytes": w.memory_bytes, "state": w.state,
                "last_heartbeat_unix_ms": w.last_heartbeat_unix_ms, "tasks_done": w.tasks_done,
                "bytes_done": w.bytes_done, "evidence_roots": w.evidence_roots, "version": w.version})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    outln!(
        "{:<22} {:<16} {:>5} {:>5} {:>5} {:>10} {:<6} {:>9} {:>7} {:>10}  EVIDENCE ROOTS",
        "WORKER",
        "HOST",
        "SLOTS",
        "BUSY",
        "LOAD",
        "MEMORY",
        "HEALTH",
        "HEARTBEAT",
        "TASKS",
        "DONE"
    );
    for w in &list {
        let load = if w.slots > 0 {
            format!(
                "{:.0}%",
                100.0 * f64::from(w.busy_slots) / f64::from(w.slots)
            )
        } else {
            "-".into()
        };
        outln!(
            "{:<22} {:<16} {:>5} {:>5} {:>5} {:>10} {:<6} {:>8}s {:>7} {:>10}  {}",
            w.worker_id,
            w.hostname,
            w.slots,
            w.busy_slots,
            load,
            indicatif::HumanBytes(w.memory_bytes).to_string(),
            w.state,
            ((now - w.last_heartbeat_unix_ms).max(0) / 1000),
            w.tasks_done,
            indicatif::HumanBytes(w.bytes_done).to_string(),
            w.evidence_roots.join(",")
        );
    }
    Ok(())
}

fn known(c: KnownCmd) -> Result<()> {
    match c {
        KnownCmd::Import {
            sources,
            out,
            name,
            notable,
            max_malformed,
            overwrite,
            json,
        } => {
            let kind = if notable {
                trawl_known::Kind::Notable
            } else {
                trawl_known::Kind::Known
            };
            let opts = trawl_known::ImportOptions {
                max_malformed,
                overwrite,
                ..Default::default()
            };
            let r = trawl_known::import_with(&sources, &out, &name, kind, &opts)
                .with_context(|| format!("importing into {}", out.display()))?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&r.meta)?);
            } else {
                for s in &r.meta.sources {
                    outln!("{}", serde_json::to_string(s)?);
                }
                for a in &r.meta.arrays {
                    outln!("{}", serde_json::to_string(a)?);
                }
                outln!(
                    "{}: {} bytes, set {:?} ({})",
                    r.path.display(),
                    r.bytes,
                    name,
                    kind.as_str()
                );
            }
            Ok(())
        }
        KnownCmd::Verify { table, json } => {
            let t = trawl_known::Table::open(&table)
                .with_context(|| format!("opening {}", table.display()))?;
            t.verify()
                .with_context(|| format!("verifying {}", table.display()))?;
            if json {
                outln!("{}", serde_json::to_string_pretty(t.meta())?);
            } else {
                outln!(
                    "{}: OK, set {:?} ({})",
                    table.display(),
                    t.meta().name,
                    t.meta().kind.as_str()
                );
                for a in &t.meta().arrays {
                    outln!("{}", serde_json::to_string(a)?);
                }
            }
            Ok(())
        }
    }
}

async fn users(c: UsersCmd) -> Result<()> {
    use trawl_scheduler::cli::{print_new_user, print_users, user_json};
    match c {
        UsersCmd::Add {
            name,
            role,
            cases,
            expires,
            server,
        } => {
            let ttl = trawl_scheduler::cli::parse_ttl(&expires)?;
            let r = server
                .client()?
                .admin
                .add_user(v1::AddUserRequest {
                    name,
                    role,
                    cases,
                    ttl_seconds: if ttl == 0 { u64::MAX / 2000 } else { ttl },
                })
                .await
                .map_err(status_err)?
                .into_inner();
            let u = r.user.unwrap_or_default();
            if server.json {
                let mut v = user_json(&u);
                v["token"] = json!(r.token);
                outln!("{v}");
            } else {
                print_new_user(&u, &r.token);
            }
        }
        UsersCmd::Revoke { name, server } => {
            let u = server
                .client()?
                .admin
                .revoke_user(v1::RevokeUserRequest { name })
                .await
                .map_err(status_err)?
                .into_inner();
            if server.json {
                outln!("{}", user_json(&u));
            } else {
                outln!("revoked user {} at {}", u.name, utc_ms(u.revoked_unix_ms));
            }
        }
        UsersCmd::List(server) => {
            let list = server
                .client()?
                .admin
                .list_users(v1::ListUsersRequest {})
                .await
                .map_err(status_err)?
                .into_inner()
                .users;
            print_users(&list, server.json)?;
        }
    }
    Ok(())
}

/// Opens a stopped scheduler's state, read for the audit commands.
fn open_state(data: &std::path::Path) -> Result<trawl_store::Store> {
    if !data.join("state.sled").exists() {
        return Err(anyhow!(
            "{}: no scheduler state here (expected {})",
            data.display(),
            data.join("state.sled").display()
        ));
    }
    trawl_store::Store::open(data).map_err(|e| {
        anyhow!(
            "{}: {e} (is the scheduler still running? stop it, or ask it: --server)",
            data.display()
        )
    })
}

fn audit_json(e: &v1::AuditEntry) -> serde_json::Value {
    json!({"seq": e.seq, "time_unix_ms": e.time_unix_ms, "actor": e.actor, "role": e.role,
    "action": e.action, "target": e.target, "case_id": e.case_id, "from": e.from,
    "detail": e.detail, "prev_hash": e.prev_hash, "hash": e.hash, "mac": e.mac})
}

async fn audit(c: AuditCmd) -> Result<()> {
    match c {
        AuditCmd::Verify {
            data,
            audit_key,
            server,
        } => {
            let r = match &data {
                Some(d) => trawl_scheduler::audit_key::verify_data_dir(d, audit_key.as_deref())?,
                None => server
                    .client()?
                    .admin
                    .verify_audit(v1::VerifyAuditRequest {})
                    .await
                    .map_err(status_err)?
                    .into_inner(),
            };
            trawl_scheduler::cli::print_verify(&r, server.json).map_err(|e| {
                match e.downcast::<trawl_scheduler::cli::ExitStatus>() {
                    Ok(x) => Exit(x.0, x.1).into(),
                    Err(e) => e,
                }
            })
        }
        AuditCmd::List {
            case,
            from,
            limit,
            data,
            server,
        } => {
            let case = case.unwrap_or_default();
            enum Source {
                Stopped(Box<trawl_store::Store>, String),
                Server(Box<Client>),
            }
            let src = match &data {
                Some(d) => Source::Stopped(Box::new(open_state(d)?), d.display().to_string()),
                None => Source::Server(Box::new(server.client()?)),
            };
            let json = server.json;
            if json {
                outln!("[");
            } else {
                outln!(
                    "{:>6} {:<20} {:<16} {:<13} {:<26} {:<14} {:<12} {:<22} DETAIL",
                    "SEQ",
                    "TIME",
                    "WHO",
                    "ROLE",
                    "ACTION",
                    "TARGET",
                    "CASE",
                    "FROM"
                );
            }
            // Page by page: a long trail never has to fit in one message.
            let mut next = from;
            let mut shown = 0u64;
            loop {
                let want = if limit == 0 {
                    1000
                } else {
                    (limit - shown).min(1000)
                } as u32;
                let page = match &src {
                    Source::Stopped(st, d) => {
                        trawl_scheduler::admin::audit_page(st.audit(), next, want, &case)
                            .map_err(|e| anyhow!("{d}: {e}"))?
                    }
                    Source::Server(c) => c
                        .admin
                        .clone()
                        .list_audit(v1::ListAuditRequest {
                            from_seq: next,
                            limit: want,
                            case_id: case.clone(),
                        })
                        .await
                        .map_err(status_err)?
                        .into_inner(),
                };
                for e in &page.entries {
                    if json {
                        outln!(
                            "{}{}",
                            if shown > 0 { "," } else { "" },
                            serde_json::to_string_pretty(&audit_json(e))?
                        );
                    } else {
                        // Fixed columns: a longer value is cut with "…"
                        // (`--json` has every value in full).
                        outln!(
                            "{:>6} {:<20} {} {} {} {} {} {} {}",
                            e.seq,
                            utc_ms(e.time_unix_ms),
                            cell(&e.actor, 16),
                            cell(&e.role, 13),
                            cell(&e.action, 26),
                            cell(&e.target, 14),
                            cell(&e.case_id, 12),
                            cell(&e.from, 22),
                            e.detail
                        );
                    }
                    shown += 1;
                }
                if page.next_seq == 0 || page.entries.is_empty() || (limit > 0 && shown >= limit) {
                    break;
                }
                next = page.next_seq;
            }
            if json {
                outln!("]");
            }
            Ok(())
        }
    }
}

/// `s` in a column of `width` characters: padded, or cut with "…".
fn cell(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        format!("{s}{}", " ".repeat(width - n))
    } else {
        let mut o: String = s.chars().take(width.saturating_sub(1)).collect();
        o.push('…');
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_columns_line_up_with_their_header() {
        let h = jobs_header();
        let j = v1::Job {
            job_id: "J000042".into(),
            state: v1::JobState::Completed as i32,
            created_unix_ms: 1_700_000_000_000,
            spec: Some(v1::JobSpec {
                case_id: "C-2026-17".into(),
                priority: v1::Priority::High as i32,
                evidence: Some(v1::EvidenceLocator {
                    source: Some(v1::evidence_locator::Source::Paths(v1::PathList {
                        paths: vec!["/mnt/e/disk.dd".into()],
                    })),
                }),
                ..Default::default()
            }),
            progress: Some(v1::Progress {
                bytes_total: 10,
                bytes_done: 10,
                tasks_done: 123,
                tasks_total: 123,
                ..Default::default()
            }),
            ..Default::default()
        };
        let l = human_line(&j);
        assert_eq!(l.find("/mnt/e/disk.dd"), h.find("EVIDENCE"), "{h}\n{l}");
        assert_eq!(
            l.find("123/123").map(|i| i + 7),
            h.find("TASKS").map(|i| i + 5)
        );
        assert_eq!(
            l.find("100.0%").map(|i| i + 6),
            h.find("DONE").map(|i| i + 4)
        );
        assert_eq!(l.find("high"), h.find("PRIORITY"));
        assert_eq!(l.find("2023-11-14 22:13"), h.find("SUBMITTED"));
        assert_eq!(cell("a-very-long-target-name", 8), "a-very-…");
        assert_eq!(cell("short", 8), "short   ");
    }

    /// `watch` labels running counts provisional; final counts are the
    /// report's, said without the label.
    #[test]
    fn running_counts_are_labelled_provisional() {
        let mut p = v1::Progress::default();
        assert_eq!(findings_line(&p), "none yet");
        p.findings.insert("email".into(), 3);
        p.findings.insert("yara".into(), 7);
        assert_eq!(findings_line(&p), "yara 7, email 3 (provisional)");
        p.findings_final = true;
        assert_eq!(findings_line(&p), "yara 7, email 3");
        p.findings.clear();
        assert_eq!(findings_line(&p), "none");
    }
}
