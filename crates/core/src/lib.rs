//! Model types shared by every part of trawl: ids, job specifications, the
//! shard plan and its ownership rule, finding kinds and errors. No I/O.
//!
//! ```
//! use trawl_core::plan::ShardPlan;
//! let plan = ShardPlan::new(10_000, 4096, 1024).unwrap();
//! assert_eq!(plan.len(), 3);
//! assert_eq!(plan.owner(5000), Some(1));
//! assert_eq!(plan.shard(2).unwrap().scan_end, 10_000);
//! ```

pub mod counts;
pub mod csv;
pub mod error;
pub mod files;
pub mod finding;
pub mod ids;
pub mod output;
pub mod plan;
pub mod size;
pub mod spec;

pub use counts::Counts;
pub use error::CoreError;
pub use files::{FileHashes, FileRecord, FilesListing, FilesSummary};
pub use finding::{
    ByteRun, CarvedFile, Feature, Note, PiecewiseHash, ScannerStat, YaraMatch, YaraString,
};
pub use ids::{CaseId, JobId, TaskId, WorkerId};
pub use output::{Blake3Part, ShardOutput};
pub use plan::{Shard, ShardPlan};
pub use spec::{Analysis, AnalysisSet, JobSpec, Priority};

/// The tool version recorded in every report.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The tool name recorded in every report.
pub const TOOL_NAME: &str = "trawl";
