//! bulk_extractor-class feature scanners (being written).

use crate::AnalyzerError;
use std::sync::atomic::AtomicBool;
use trawl_core::spec::FeatureOptions;
use trawl_core::{Feature, Note, ScannerStat, Shard};

/// What scanning one shard produced.
#[derive(Debug, Default)]
pub struct FeatureOutput {
    /// Features whose first byte lies in the shard.
    pub features: Vec<Feature>,
    pub notes: Vec<Note>,
    pub stats: Vec<ScannerStat>,
}

/// The feature scanners of a job, built once.
#[derive(Debug)]
pub struct FeatureScanner {
    _opts: FeatureOptions,
}

impl FeatureScanner {
    /// Builds the scanners.
    ///
    /// # Errors
    /// Unknown scanner names, bad keyword or stop lists.
    pub fn new(opts: &FeatureOptions) -> Result<Self, AnalyzerError> {
        Ok(Self {
            _opts: opts.clone(),
        })
    }

    /// Scans `data` (`[shard.start, shard.scan_end)`), keeping the features
    /// that start in `[shard.start, shard.end)`.
    ///
    /// # Errors
    /// Cancellation.
    pub fn scan_shard(
        &self,
        _shard: &Shard,
        _data: &[u8],
        _cancel: &AtomicBool,
    ) -> Result<FeatureOutput, AnalyzerError> {
        Ok(FeatureOutput::default())
    }
}
