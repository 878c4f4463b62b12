//! `trawl-worker`: a worker node.
use clap::Parser;
use std::process::ExitCode;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
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
