//! The `trawl` command line: the embedded scan and the cluster client.
//!
//! Exit status: 0 success; 1 error (bad input, unreachable server, refused
//! request: one line on stderr); 2 the job ended failed or cancelled; 3 the
//! job completed but parts of the evidence could not be examined (listed as
//! limitations in the report); 4 `trawl audit verify` found the hash chain
//! broken; 5 ([`EXIT_STORED_HASH_MISMATCH`]) `trawl scan` or `trawl results`
//! wrote the report, but a hash stored in the image (an E01's MD5 or SHA-1)
//! does not match the data; 6 ([`EXIT_NOTHING_TO_CANCEL`]) `trawl cancel`
//! found the job already ended; 64 ([`EXIT_USAGE`]) the command line could
//! not be understood. Output to a reader that goes away (`| head`) ends
//! quietly with 0.

mod client;
mod commands;
mod embedded;
mod intel;
mod report_cmd;
mod spec_args;

use clap::Parser;
use std::process::ExitCode;

pub use client::{Client, is_final};

/// trawl — a digital-forensics compute engine: hashing, carving, feature
/// extraction and YARA over disk images, on one laptop or a cluster.
#[derive(Parser, Debug)]
#[command(
    name = "trawl",
    version,
    about,
    long_about = None,
    after_help = "Connecting to a cluster: --server URL (TRAWL_SERVER), --ca FILE (TRAWL_CA), --token TOKEN\n(TRAWL_TOKEN) or --token-file FILE, or a client config ~/.config/trawl/client.toml with the keys\nserver, ca, token / token_file. Flags win over the environment, the environment over the file.\n\nExit status: 0 success; 1 error (bad input, unreachable server, refused request: one line on\nstderr); 2 the job ended failed or cancelled; 3 the job completed but parts of the evidence\ncould not be examined; 4 `audit verify` found the audit trail broken; 5 the report was written\nbut a hash stored in the image (E01 MD5/SHA-1) does not match its data (one line on stderr\nnames the image, the stored and the computed hash); 6 `cancel` found the job already ended\n(nothing cancelled); 64 the command line could not be understood. A reader that closes the\noutput early (`| head`) ends the command quietly with 0."
)]
pub struct Cli {
    #[command(subcommand)]
    command: commands::Command,
    /// Log filter (e.g. info, debug, trawl=debug).
    #[arg(long, global = true, env = "TRAWL_LOG", default_value = "warn")]
    log: String,
    /// Log lines as text (coloured only on a terminal) or JSON, one object
    /// per line.
    #[arg(
        long,
        global = true,
        env = "TRAWL_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: trawl_proto::logging::LogFormat,
}

/// Exit status of `trawl scan` and `trawl results` when the report was
/// written but a hash stored in the image at acquisition (an E01's MD5 or
/// SHA-1) does not match the hash computed over its data, as `ewfverify`
/// reports FAILURE. Takes precedence over 3 (parts not examined), not over
/// 2 (a job failed).
pub const EXIT_STORED_HASH_MISMATCH: u8 = 5;

/// Exit status of `trawl cancel` when the job had already ended: nothing
/// was cancelled (the attempt is audited).
pub const EXIT_NOTHING_TO_CANCEL: u8 = 6;

/// Exit status of a command line that cannot be understood (unknown flag,
/// missing argument, bad value): sysexits' `EX_USAGE`, apart from the
/// statuses of jobs.
pub const EXIT_USAGE: u8 = 64;

/// An error carrying the process exit code.
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}
impl std::error::Error for Exit {}

/// Entry point shared by the binary and tests.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are answers (0); a command line that
            // cannot be understood is a usage error (64), never a job's 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    trawl_proto::logging::init(&cli.log, "warn", cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trawl: error: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(x) = e.downcast_ref::<Exit>() {
                eprintln!("trawl: {}", x.1);
                return ExitCode::from(x.0);
            }
            eprintln!("trawl: error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// An error chain on one line, without repeating nested messages.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
