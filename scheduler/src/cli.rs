//! Command-line front end of the scheduler, shared by the `trawl-scheduler`
//! binary and `trawl scheduler`.
use crate::SchedulerConfig;
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
}

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
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<20} {:<13} {:<21} {:<21} CASES",
        "USER", "ROLE", "EXPIRES", "REVOKED"
    );
    for u in users {
        println!(
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
    println!(
        "user {} ({}) cases {:?} expires {}: token (shown once):",
        u.name,
        u.role,
        u.cases,
        crate::text::utc_ms(u.expires_unix_ms)
    );
    println!("{token}");
}

/// Runs a setup subcommand.
///
/// # Errors
/// As the underlying [`crate::auth`] function.
pub fn run_sub(sub: Sub) -> Result<()> {
    use crate::auth;
    match sub {
        Sub::Init(a) => {
            let r = auth::init(&a.data.data, &a.hosts, &a.admin)?;
            println!(
                "initialised {}: TLS, tokens and roles are now required on every call",
                a.data.data.display()
            );
            println!(
                "  CA certificate (give it to clients: --ca or TRAWL_CA): {}",
                r.ca.display()
            );
            println!(
                "  worker bundle (trawl-worker --tls DIR): {}",
                r.worker_bundle.display()
            );
            println!(
                "  admin user {:?}: token (shown once, keep it secret):",
                r.admin
            );
            println!("{}", r.admin_token);
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
            println!(
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
            println!(
                "enrolled worker {name}: copy {} to the worker",
                dir.display()
            );
            println!("{}", dir.display());
        }
        Sub::Worker(WorkerCmd::Revoke { name, data }) => {
            let w = auth::revoke_worker(&data.data, &name)?;
            println!(
                "revoked worker {} at {}",
                w.name,
                crate::text::utc_ms(w.revoked_ms)
            );
        }
    }
    Ok(())
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
    /// A folder (or file) whose evidence may be submitted by server path
    /// (repeatable; the environment variable takes a colon-separated list).
    /// None: server paths are refused, only uploads are accepted.
    #[arg(
        long = "evidence-root",
        value_name = "DIR",
        env = "TRAWL_EVIDENCE_ROOTS",
        value_delimiter = ':'
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
        cfg.evidence_roots = args.evidence_roots.clone();
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
