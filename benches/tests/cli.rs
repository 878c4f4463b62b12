//! trawl-bench's command line: help is help, never a run.

use std::process::Command;
use std::time::{Duration, Instant};

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trawl-bench"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_prints_usage_and_exits_0_without_running_anything() {
    let o = bench(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    for sub in [
        "all", "hash", "carve", "features", "yara", "cluster", "pipeline", "scale",
    ] {
        assert!(text.contains(sub), "{sub} in {text}");
    }
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for sub in ["cluster", "hash", "all", "scale", "pipeline"] {
        let t0 = Instant::now();
        let o = bench(&[sub, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{sub} --help");
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{sub} --help ran something"
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: trawl-bench"));
    }
    // Unknown flags are refused, not ignored.
    let o = bench(&["hash", "--sise", "1GiB"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--sise"));
}
