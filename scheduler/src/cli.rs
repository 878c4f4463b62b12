//! Command-line front end of the scheduler, shared by the `trawl-scheduler`
//! binary and `trawl scheduler`.
use crate::SchedulerConfig;
use crate::outln;
use anyhow::Result;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The scheduler command: serve (no subcommand), or set up its security.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Command {
    #[command(subcommand)]
    pub sub: Option<Sub>,
    #[command(flatten)]
    pub serve: Args,
}

/// Setting up TLS, users and workers of a data directory.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Sub {
    /// Initialise a data directory: the lab CA, the scheduler's TLS
    /// certificate, one enrolled worker (worker-1) and the first admin
    /// token (printed once, on the last line). From then on the scheduler
    /// requires TLS and a token or worker certificate on every call.
    #[command(
        after_help = "Example:\n  trawl-scheduler init --data /var/lib/trawl --host sched.lab.example --admin chief\n  trawl-scheduler --data /var/lib/trawl --listen 0.0.0.0:50051"
    )]
    Init(InitArgs),
    /// Users and their bearer tokens.
    #[command(subcommand)]
    User(UserCmd),
    /// Worker certificates (mutual TLS).
    #[command(subcommand)]
    Worker(WorkerCmd),
    /// The audit trail of a stopped scheduler: verify it, or key and anchor
    /// a trail from before audit keys existed.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Move ended jobs out of the hot store (scheduler stopped): each
    /// job's task records and merged results go to one compressed file,
    /// DATA/archive/JOB.trawl-archive, and leave the state database; status,
    /// results and reports of the job read them from there, unchanged.
    #[command(
        after_help = "Example:\n  trawl-scheduler archive --data /var/lib/trawl --older-than 90d"
    )]
    Archive {
        #[command(flatten)]
        data: DataArg,
        /// Jobs that ended at least this long ago: 90d, 12h, 30m, 45s, 0s
        /// (every ended job).
        #[arg(long, default_value = "90d")]
        older_than: String,
    },
}

/// The audit key: a file outside the data directory.
#[derive(clap::Args, Debug, Clone)]
pub struct AuditKeyArg {
    /// The audit trail's key file (default: DATA.audit-key beside the data
    /// directory). It must not lie inside the data directory.
    #[arg(long = "audit-key", env = "TRAWL_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AuditCmd {
    /// Check the audit trail (hash chain, MACs, anchor): exit 0 intact, 4
    /// broken or not verifiable (the first bad entry is named).
    #[command(
        after_help = "Example:\n  trawl-scheduler audit verify --data /var/lib/trawl --audit-key /etc/trawl/audit.key"
    )]
    Verify {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        key: AuditKeyArg,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Key and anchor the audit trail of a data directory from before audit
    /// keys existed (or of a scheduler that was never initialised): checks
    /// the chain, makes the key unless it exists, anchors the current head
    /// and records which entries came before.
    #[command(
        after_help = "Example:\n  trawl-scheduler audit seal --data /var/lib/trawl      (scheduler stopped; key at /var/lib/trawl.audit-key)"
    )]
    Seal {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        key: AuditKeyArg,
    },
}

/// An error carrying the process exit status (`audit verify`: 4).
#[derive(Debug)]
pub struct ExitStatus(pub u8, pub String);

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}
impl std::error::Error for ExitStatus {}

#[derive(clap::Args, Debug, Clone)]
pub struct DataArg {
    /// Data directory.
    #[arg(long, env = "TRAWL_DATA")]
    pub data: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct InitArgs {
    #[command(flatten)]
    pub data: DataArg,
    /// Host names or addresses clients use to reach the scheduler (the
    /// certificate also covers localhost, 127.0.0.1, ::1 and this host's
    /// name). Repeatable.
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Name of the first admin user.
    #[arg(long, default_value = "admin")]
    pub admin: String,
    #[command(flatten)]
    pub key: AuditKeyArg,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum UserCmd {
    /// Add a user; prints its token once, on the last line.
    #[command(
        after_help = "Examples:\n  trawl-scheduler user add alice --role investigator --case C-2026-17 --data /var/lib/trawl\n  trawl-scheduler user add bob --role case_officer --case C-2026-17 --case C-2026-20 --expires 30d --data /var/lib/trawl"
    )]
    Add {
        name: String,
        /// investigator, case_officer or admin.
        #[arg(long)]
        role: String,
        /// A case the user works on (repeatable; admins see every case).
        #[arg(long = "case")]
        cases: Vec<String>,
        /// Token lifetime: 90d, 12h, 30m, 45s, or never.
        #[arg(long, default_value = "90d")]
        expires: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Revoke a user's token (takes effect on the next call).
    Revoke {
        name: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// List users.
    List {
        #[command(flatten)]
        data: DataArg,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum WorkerCmd {
    /// Issue and enroll a worker certificate; prints the bundle directory to
    /// copy to the worker (`trawl-worker --tls DIR`).
    Enroll {
        name: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Revoke a worker's certificate.
    Revoke {
        name: String,
        #[command(flatten)]
        data: DataArg,
    },
}

/// Seconds in a duration like `90d`, `12h`, `30m`, `45s` (0: `never`).
///
/// # Errors
/// Anything else.
pub fn parse_ttl(s: &str) -> Result<u64> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("never") {
        return Ok(0);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid duration {s:?} (e.g. 90d, 12h, 30m, 45s, never)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => anyhow::bail!("invalid duration {s:?} (e.g. 90d, 12h, 30m, 45s, never)"),
    };
    let secs = n.saturating_mul(mult);
    if secs == 0 {
        anyhow::bail!("a token lifetime of 0 seconds: give a positive duration or `never`");
    }
    Ok(secs)
}

/// `archive`: every job that ended `older_than` ago or earlier, archived.
fn archive(data: &std::path::Path, older_than: &str) -> Result<()> {
    let secs = if older_than.trim().trim_end_matches(['s', 'm', 'h', 'd']) == "0" {
        0
    } else if older_than.trim().eq_ignore_ascii_case("never") {
        anyhow::bail!("--older-than never: give an age (e.g. 90d, 12h, 0s for every ended job)");
    } else {
        parse_ttl(older_than)?
    };
    if !data.join("state.sled").exists() {
        anyhow::bail!("{}: no scheduler data directory here", data.display());
    }
    let store = trawl_store::Store::open(data).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (a running scheduler holds the state database: stop it first)",
            data.display()
        )
    })?;
    let before = trawl_store::now_ms().saturating_sub((secs as i64).saturating_mul(1000));
    let (mut jobs, mut tasks, mut moved, mut files, mut already) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for j in store.jobs()? {
        if !j.state.is_final() || j.finished_ms > before {
            continue;
        }
        match store.archive_job(&j.job_id)? {
            Some(a) => {
                jobs += 1;
                tasks += a.tasks;
                moved += a.bytes_moved;
                files += a.file_bytes;
            }
            None => already += 1,
        }
    }
    store.flush()?;
    outln!(
        "archived {jobs} jobs ({tasks} task records, {moved} bytes) into {} ({files} bytes); {already} were archived already",
        data.join(trawl_store::archive::ARCHIVE_DIR).display()
    );
    Ok(())
}

/// A user as `--json` prints it.
pub fn user_json(u: &trawl_proto::v1::User) -> serde_json::Value {
    serde_json::json!({"name": u.name, "role": u.role, "cases": u.cases,
        "created_unix_ms": u.created_unix_ms, "expires_unix_ms": u.expires_unix_ms,
        "revoked_unix_ms": u.revoked_unix_ms})
}

/// The users, as a table or JSON.
///
/// # Errors
/// JSON encoding.
pub fn print_users(users: &[trawl_proto::v1::User], json: bool) -> Result<()> {
    if json {
        let v: Vec<_> = users.iter().map(user_json).collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    outln!(
        "{:<20} {:<13} {:<21} {:<21} CASES",
        "USER",
        "ROLE",
        "EXPIRES",
        "REVOKED"
    );
    for u in users {
        outln!(
            "{:<20} {:<13} {:<21} {:<21} {}",
            u.name,
            u.role,
            crate::text::utc_ms(u.expires_unix_ms),
            crate::text::utc_ms(u.revoked_unix_ms),
            u.cases.join(",")
        );
    }
    Ok(())
}

/// A new user and its token, shown once (the token on the last line).
pub fn print_new_user(u: &trawl_proto::v1::User, token: &str) {
    outln!(
        "user {} ({}) cases {:?} expires {}: token (shown once):",
        u.name,
        u.role,
        u.cases,
        crate::text::utc_ms(u.expires_unix_ms)
    );
    outln!("{token}");
}

/// Runs a setup subcommand.
///
/// # Errors
/// As the underlying [`crate::auth`] function.
pub fn run_sub(sub: Sub) -> Result<()> {
    use crate::auth;
    match sub {
        Sub::Archive { data, older_than } => archive(&data.data, &older_than)?,
        Sub::Init(a) => {
            // The audit key goes outside the data directory; check its place
            // before anything is made.
            let data = &a.data.data;
            let key = crate::audit_key::key_path(data, a.key.audit_key.as_deref());
            if !auth::is_initialised(data) {
                std::fs::create_dir_all(data)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", data.display()))?;
                crate::audit_key::check_outside(&key, data)?;
                if key.exists() {
                    anyhow::bail!(
                        "the audit key {} already exists (the key of another data directory?): move it away, or choose another place with --audit-key FILE",
                        key.display()
                    );
                }
            }
            let r = auth::init(data, &a.hosts, &a.admin)?;
            let sealed = crate::audit_key::seal(data, a.key.audit_key.as_deref())?;
            outln!(
                "initialised {}: TLS, tokens and roles are now required on every call",
                a.data.data.display()
            );
            outln!(
                "  CA certificate (give it to clients: --ca or TRAWL_CA): {}",
                r.ca.display()
            );
            outln!(
                "  worker bundle (trawl-worker --tls DIR): {}",
                r.worker_bundle.display()
            );
            outln!(
                "  audit key (keep it apart from the data and its backups; the scheduler needs it: --audit-key, TRAWL_AUDIT_KEY or audit_key_file{}): {}",
                if a.key.audit_key.is_none() {
                    ", found here by default"
                } else {
                    ""
                },
                sealed.key.display()
            );
            if sealed.before > 0 {
                outln!(
                    "  audit trail: the {} entries already there were checked and anchored",
                    sealed.before
                );
            }
            outln!(
                "  admin user {:?}: token (shown once, keep it secret):",
                r.admin
            );
            outln!("{}", r.admin_token);
        }
        Sub::User(UserCmd::Add {
            name,
            role,
            cases,
            expires,
            data,
        }) => {
            let role = auth::Role::parse_user_role(&role)?;
            let ttl = parse_ttl(&expires)?;
            let (u, token) = auth::add_user(&data.data, &name, role, &cases, ttl)?;
            print_new_user(&crate::admin::wire_user(&u), &token);
        }
        Sub::User(UserCmd::Revoke { name, data }) => {
            let u = auth::revoke_user(&data.data, &name)?;
            outln!(
                "revoked user {} at {}",
                u.name,
                crate::text::utc_ms(u.revoked_ms)
            );
        }
        Sub::User(UserCmd::List { data, json }) => {
            let users: Vec<_> = auth::registry(&data.data)?
                .users
                .iter()
                .map(crate::admin::wire_user)
                .collect();
            print_users(&users, json)?;
        }
        Sub::Worker(WorkerCmd::Enroll { name, data }) => {
            let dir = auth::enroll_worker(&data.data, &name)?;
            outln!(
                "enrolled worker {name}: copy {} to the worker",
                dir.display()
            );
            outln!("{}", dir.display());
        }
        Sub::Audit(AuditCmd::Verify { data, key, json }) => {
            let r = crate::audit_key::verify_data_dir(&data.data, key.audit_key.as_deref())?;
            return print_verify(&r, json);
        }
        Sub::Audit(AuditCmd::Seal { data, key }) => {
            let s = crate::audit_key::seal(&data.data, key.audit_key.as_deref())?;
            outln!(
                "audit trail of {} keyed (key {}{}) and anchored ({}){}",
                data.data.display(),
                s.key_id,
                if s.key_created { ", new" } else { "" },
                data.data.join(trawl_store::ANCHOR_FILE).display(),
                if s.before > 0 {
                    format!(
                        "; entries 1 to {} were written before and carry no MAC",
                        s.before
                    )
                } else {
                    String::new()
                }
            );
            outln!(
                "  audit key (keep it apart from the data): {}",
                s.key.display()
            );
        }
        Sub::Worker(WorkerCmd::Revoke { name, data }) => {
            let w = auth::revoke_worker(&data.data, &name)?;
            outln!(
                "revoked worker {} at {}",
                w.name,
                crate::text::utc_ms(w.revoked_ms)
            );
        }
    }
    Ok(())
}

/// Evidence roots as given (`--evidence-root`, repeatable, or
/// `TRAWL_EVIDENCE_ROOTS`, colon-separated): each value split at colons,
/// except the colon of an object-storage scheme (`s3://`, `gs://`, `az://`).
pub fn split_roots(given: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for g in given {
        let s = g.to_string_lossy();
        let mut parts = s.split(':').peekable();
        while let Some(p) = parts.next() {
            if trawl_evidence::remote::REMOTE_SCHEMES.contains(&p)
                && parts.peek().is_some_and(|n| n.starts_with("//"))
            {
                let rest = parts.next().unwrap_or_default();
                out.push(PathBuf::from(format!("{p}:{rest}")));
            } else if !p.is_empty() {
                out.push(PathBuf::from(p));
            }
        }
    }
    out
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn object_storage_roots_survive_the_colon_list() {
        let got = split_roots(&[
            PathBuf::from("/evidence:s3://ev/cases/:/nas/lab"),
            PathBuf::from("gs://b/x/"),
            PathBuf::from("/plain"),
        ]);
        let want: Vec<PathBuf> = [
            "/evidence",
            "s3://ev/cases/",
            "/nas/lab",
            "gs://b/x/",
            "/plain",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(got, want);
    }
}

/// Prints a verification (text or JSON) and fails with exit status 4 when
/// the trail is broken or cannot be verified.
///
/// # Errors
/// [`ExitStatus`] 4 for a broken trail.
pub fn print_verify(r: &trawl_proto::v1::VerifyAuditResponse, json: bool) -> Result<()> {
    let (code, text) = crate::audit_key::verify_report(r);
    if json {
        outln!(
            "{}",
            serde_json::json!({"ok": r.ok, "entries": r.entries, "broken_seq": r.broken_seq,
                "problem": r.problem, "anchored_seq": r.anchored_seq,
                "anchored_hash": r.anchored_hash, "head_hash": r.head_hash,
                "keyed": r.keyed, "key_id": r.key_id, "notes": r.notes})
        );
    } else if code == 0 {
        outln!("{text}");
    }
    if code == 0 {
        Ok(())
    } else {
        Err(ExitStatus(code, text).into())
    }
}

/// The trawl scheduler: takes jobs, leases shard tasks to workers, merges
/// results. State lives in sled under --data.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Data directory (sled state, evidence store).
    #[arg(long, env = "TRAWL_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "TRAWL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Serve the web dashboard (HTTPS) on this address; needs a data
    /// directory initialised with `init`.
    #[arg(long, env = "TRAWL_HTTP")]
    pub http: Option<SocketAddr>,
    /// Serve Prometheus metrics (plain HTTP, `GET /metrics`: counts only,
    /// no case data) on this address.
    #[arg(long, env = "TRAWL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve the gRPC health protocol alone, in plaintext, on this address
    /// (Kubernetes `grpc` probes; the gRPC port itself needs TLS once
    /// initialised).
    #[arg(long, env = "TRAWL_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// Optional TOML configuration file (flags and environment override it).
    #[arg(long, env = "TRAWL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Lease duration in milliseconds.
    #[arg(long, env = "TRAWL_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// Worker heartbeat interval in milliseconds.
    #[arg(long, env = "TRAWL_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Attempts before a task is quarantined.
    #[arg(long, env = "TRAWL_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// A folder (or file) whose evidence may be submitted by server path,
    /// or an object-storage prefix (`s3://bucket/prefix/`) (repeatable; the
    /// environment variable takes a colon-separated list, in which
    /// `s3://…`, `gs://…` and `az://…` stay whole). None: server paths are
    /// refused, only uploads are accepted.
    #[arg(
        long = "evidence-root",
        value_name = "DIR",
        env = "TRAWL_EVIDENCE_ROOTS"
    )]
    pub evidence_roots: Vec<PathBuf>,
    /// A root open to one case only: CASE=DIR (repeatable).
    #[arg(long = "case-evidence-root", value_name = "CASE=DIR", value_parser = parse_case_root)]
    pub case_evidence_roots: Vec<(String, PathBuf)>,
    /// Most tasks one job may create.
    #[arg(long, env = "TRAWL_MAX_TASKS_PER_JOB")]
    pub max_tasks_per_job: Option<u64>,
    /// Most evidence bytes one user may have in unfinished jobs (0: no
    /// limit), e.g. 20TiB.
    #[arg(long, env = "TRAWL_MAX_QUEUED_BYTES_PER_USER", value_parser = parse_bytes)]
    pub max_queued_bytes_per_user: Option<u64>,
    #[command(flatten)]
    pub key: AuditKeyArg,
}

fn parse_case_root(s: &str) -> std::result::Result<(String, PathBuf), String> {
    let (case, dir) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected CASE=DIR"))?;
    trawl_core::CaseId::new(case.to_string()).map_err(|e| e.to_string())?;
    if dir.is_empty() {
        return Err(format!("{s:?}: the folder is empty"));
    }
    Ok((case.to_string(), PathBuf::from(dir)))
}

fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    trawl_core::size::parse_size(s).map_err(|e| e.to_string())
}

/// The configuration `args` describe (file, then environment and flags).
///
/// # Errors
/// An unreadable or invalid configuration file.
pub fn config(args: &Args) -> Result<SchedulerConfig> {
    let mut cfg = match &args.config {
        Some(p) => SchedulerConfig::from_file(p)?,
        None => SchedulerConfig::default(),
    };
    if let Some(d) = &args.data {
        cfg.data_dir = d.clone();
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(h) = args.http {
        cfg.http = Some(h);
    }
    if let Some(m) = args.metrics_listen {
        cfg.metrics_listen = Some(m);
    }
    if let Some(h) = args.health_listen {
        cfg.health_listen = Some(h);
    }
    if let Some(v) = args.lease_ms {
        cfg.lease_ms = v.max(100);
    }
    if let Some(v) = args.heartbeat_ms {
        cfg.heartbeat_ms = v.max(10);
    }
    if let Some(v) = args.max_attempts {
        cfg.max_attempts = v.max(1);
    }
    if !args.evidence_roots.is_empty() {
        cfg.evidence_roots = split_roots(&args.evidence_roots);
    }
    for (case, dir) in &args.case_evidence_roots {
        cfg.case_evidence_roots
            .entry(case.clone())
            .or_default()
            .push(dir.clone());
    }
    if let Some(v) = args.max_tasks_per_job {
        cfg.max_tasks_per_job = v.max(1);
    }
    if let Some(v) = args.max_queued_bytes_per_user {
        cfg.max_queued_bytes_per_user = v;
    }
    if let Some(k) = &args.key.audit_key {
        cfg.audit_key_file = Some(k.clone());
    }
    Ok(cfg)
}

/// Runs a setup subcommand, or serves.
///
/// # Errors
/// As [`run_sub`] and [`run`].
pub async fn run_command(cmd: Command) -> Result<()> {
    match cmd.sub {
        Some(sub) => run_sub(sub),
        None => run(cmd.serve).await,
    }
}

/// Serves until SIGINT or SIGTERM, then shuts down gracefully.
///
/// # Errors
/// As [`crate::run`].
pub async fn run(args: Args) -> Result<()> {
    let cfg = config(&args)?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let s2 = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutting down");
        s2.cancel();
    });
    crate::run(cfg, shutdown).await
}
