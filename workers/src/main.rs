//! `trawl-worker`: a worker node.
use clap::Parser;
use std::process::ExitCode;

/// mimalloc, as in `trawl` (why: `crates/cli/src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A trawl worker: leases shard tasks from a scheduler and runs every
/// requested analysis on them.
#[derive(Parser, Debug)]
#[command(
    name = "trawl-worker",
    version,
    about,
    after_help = "Example:\n  trawl-worker --scheduler http://10.0.0.5:50051 --slots 4 --evidence-root /mnt/evidence"
)]
struct Cli {
    #[command(flatten)]
    args: trawl_worker::cli::Args,
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
            eprintln!("trawl-worker: error: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(trawl_worker::cli::run(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trawl-worker: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
