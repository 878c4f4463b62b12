//! `trawl`: the investigator's command.
use std::process::ExitCode;

/// mimalloc: the scheduler's gRPC path and the workers' parallel analyses
/// allocate from many threads at once, where glibc's allocator spent a
/// fifth of the scheduler's time; `trawl-bench labyear` (100 jobs × 2,000
/// tasks, 500 × 16 slots) leased 1.44× as many tasks per second with it,
/// at the same RSS (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    trawl_cli::main()
}
