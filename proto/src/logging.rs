//! Logs of every trawl binary: to stderr, in colour only on a terminal
//! (never ANSI codes in a redirected file), as text or as one JSON object
//! per line for log shippers (`--log-format json`).

use std::io::IsTerminal;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// Installs the global subscriber: `filter` is an `EnvFilter` directive
/// (`info`, `trawl=debug`; `fallback` when it does not parse).
pub fn init(filter: &str, fallback: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(fallback));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => b.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => b.json().with_ansi(false).try_init(),
    };
}
