//! The `trawl` command line.

mod local;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use trawl_core::size::parse_size;

/// trawl — a digital-forensics compute engine: hashing, carving, feature
/// extraction and YARA over disk images, on one laptop or a cluster.
#[derive(Parser, Debug)]
#[command(name = "trawl", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (e.g. info, debug, trawl=debug); also TRAWL_LOG.
    #[arg(long, global = true, env = "TRAWL_LOG", default_value = "warn")]
    log: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Examine images on this machine (embedded scheduler and workers).
    #[command(after_help = "Examples:\n  trawl scan disk.E01 --out report/\n  trawl scan disk.dd --out r --analyses hash --shard-size 16MiB\n  trawl scan disk.001 disk.002 --out r   (segments of one split image)")]
    Scan(ScanArgs),
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Image file(s): raw/dd, split raw (first segment, or every segment in
    /// order), E01 (first segment).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Report directory.
    #[arg(long, short)]
    out: PathBuf,
    /// Analyses to run, comma-separated: hash, carve, features, yara, or all.
    #[arg(long, default_value = "hash")]
    analyses: String,
    /// YARA rules: a file or a folder of .yar/.yara files.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Shard size (power of two, 1KiB..1GiB).
    #[arg(long, default_value = "64MiB")]
    shard_size: String,
    /// Bytes read past each shard's end.
    #[arg(long, default_value = "1MiB")]
    margin: String,
    /// Worker threads (default: every core).
    #[arg(long)]
    workers: Option<usize>,
    /// Piecewise hash window (power of two).
    #[arg(long, default_value = "1MiB")]
    piecewise_window: String,
    /// Also MD5 per piecewise window.
    #[arg(long)]
    piecewise_md5: bool,
    /// Case id recorded in the report.
    #[arg(long, default_value = "local")]
    case: String,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Entry point shared by the binary and tests.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trawl: error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Scan(args) => scan(args),
    }
}

fn scan(args: ScanArgs) -> Result<()> {
    let shard_size = parse_size(&args.shard_size).context("--shard-size")?;
    let margin = parse_size(&args.margin).context("--margin")?;
    let window = parse_size(&args.piecewise_window).context("--piecewise-window")?;
    let analyses = trawl_core::AnalysisSet::parse(&args.analyses).context("--analyses")?;
    if analyses.yara && args.rules.is_none() {
        bail!("--analyses yara needs --rules FILE|DIR");
    }
    let opts = local::LocalScan {
        images: args.images,
        out: args.out,
        case: args.case,
        analyses,
        shard_size,
        margin,
        piecewise_window: window,
        piecewise_md5: args.piecewise_md5,
        workers: args.workers,
        json: args.json,
    };
    local::run(opts)
}
