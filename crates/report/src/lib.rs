//! The report directory (the contract every front end writes the same way):
//!
//! ```text
//! DIR/report.json            summary, hashes, counts, timings, provenance
//! DIR/hashes/piecewise.csv   offset,length,blake3[,md5]
//! ```
//!
//! Every path inside DIR is built by [`paths::ReportDir::file`] from names
//! checked against their allowed sets ([`paths`]); results carrying a name
//! that cannot be a report path are refused whole, nothing written.
//!
//! Everything but `report.json`'s timings and ids is a pure function of the
//! job's results, which are sorted, so reruns give byte-identical files.

mod attrib;
mod carved;
mod case;
mod dfxml;
mod features;
pub mod files;
mod model;
pub mod paths;
mod write;
mod yara;

pub use model::*;
pub use write::{ReportError, write_report_dir};

/// The counts of merged results: the one definition `report.json`, the
/// dashboard, `trawl watch`/`status` and the indicators share.
pub fn counts(r: &JobResults) -> trawl_core::Counts {
    trawl_core::Counts::of(r.piecewise.len(), &r.features, &r.carved, &r.yara).with_files(&r.files)
}
