//! `trawl`: the investigator's command.
use std::process::ExitCode;

fn main() -> ExitCode {
    trawl_cli::main()
}
