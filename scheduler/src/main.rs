//! `trawl-scheduler`: a cluster's scheduler.
use clap::Parser;
use std::process::ExitCode;

/// mimalloc, as in `trawl` (why: `crates/cli/src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The trawl scheduler: takes jobs, leases shard tasks to workers, merges
/// results. State lives in sled under --data.
#[derive(Parser, Debug)]
#[command(
    name = "trawl-scheduler",
    version,
    about,
    after_help = "Examples:\n  trawl-scheduler --data /var/lib/trawl --listen 127.0.0.1:50051      (insecure, loopback only)\n  trawl-scheduler init --data /var/lib/trawl --host sched.lab      (CA, certificates, admin token)\n  trawl-scheduler --data /var/lib/trawl --listen 0.0.0.0:50051        (TLS, tokens, roles)\n  trawl-scheduler user add alice --role investigator --case C-17 --data /var/lib/trawl"
)]
struct Cli {
    #[command(flatten)]
    args: trawl_scheduler::cli::Command,
    /// Log filter.
    #[arg(long, env = "TRAWL_LOG", default_value = "info")]
    log: String,
    /// Log lines as text (coloured only on a terminal) or JSON, one object
    /// per line.
    #[arg(long, env = "TRAWL_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: trawl_proto::logging::LogFormat,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    trawl_proto::logging::init(&cli.log, "info", cli.log_format);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trawl-scheduler: error: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(trawl_scheduler::cli::run_command(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(x) = e.downcast_ref::<trawl_scheduler::cli::ExitStatus>() {
                eprintln!("trawl-scheduler: {}", x.1);
                return ExitCode::from(x.0);
            }
            eprintln!("trawl-scheduler: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
