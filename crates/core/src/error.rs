//! Errors of the model layer.

/// An invalid value in a job specification, a plan or an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    #[error("invalid shard size {0} bytes: must be a power of two between 1 KiB and 1 GiB")]
    ShardSize(u64),
    #[error("invalid margin {0} bytes: must be at most 256 MiB")]
    Margin(u64),
    #[error("invalid piecewise window {0} bytes: must be a power of two of at least 1 KiB")]
    PiecewiseWindow(u64),
    #[error("invalid size {input:?}: {reason}")]
    ParseSize { input: String, reason: &'static str },
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidId {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("unknown analysis {0:?} (expected one of: hash, carve, features, yara)")]
    UnknownAnalysis(String),
    #[error("unknown priority {0:?} (expected one of: low, normal, high, urgent)")]
    UnknownPriority(String),
    #[error("no analysis requested")]
    NoAnalysis,
    #[error("{0}")]
    Settings(&'static str),
}
