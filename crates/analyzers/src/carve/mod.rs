//! Structure-validated file carving (being written).

use crate::AnalyzerError;
use std::sync::atomic::AtomicBool;
use trawl_core::spec::CarveOptions;
use trawl_core::{CarvedFile, Note, ScannerStat, Shard};
use trawl_evidence::Evidence;

/// What carving one shard produced.
#[derive(Debug, Default)]
pub struct CarveOutput {
    /// Files whose first byte lies in the shard.
    pub files: Vec<CarvedFile>,
    pub notes: Vec<Note>,
    pub stats: Vec<ScannerStat>,
}

/// The carver of a job: signatures and validators built once.
#[derive(Debug)]
pub struct Carver {
    _opts: CarveOptions,
}

impl Carver {
    /// Builds a carver.
    ///
    /// # Errors
    /// Invalid options (unknown type, bad custom configuration).
    pub fn new(opts: &CarveOptions) -> Result<Self, AnalyzerError> {
        Ok(Self {
            _opts: opts.clone(),
        })
    }

    /// Carves the files starting in `shard`; `data` holds
    /// `[shard.start, shard.scan_end)`.
    ///
    /// # Errors
    /// Evidence read errors.
    pub fn carve_shard(
        &self,
        _evidence: &dyn Evidence,
        _shard: &Shard,
        _data: &[u8],
        _cancel: &AtomicBool,
    ) -> Result<CarveOutput, AnalyzerError> {
        Ok(CarveOutput::default())
    }
}
