//! What one shard's analyses produce, as plain data: built by
//! `trawl_analyzers::JobAnalyzers::scan_shard`, carried to the scheduler by
//! the wire conversion (`trawl-proto`), merged there.

use crate::finding::{CarvedFile, Feature, Note, PiecewiseHash, ScannerStat, YaraMatch};

/// The BLAKE3 contribution of one shard (`trawl_hash::blake3_part`; merged
/// into the image's BLAKE3 by `trawl_hash::merge_blake3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blake3Part {
    /// Chaining value of the shard's subtree.
    ChainingValue([u8; 32]),
    /// The whole image is this one shard: its root hash.
    Root([u8; 32]),
}

/// Everything one shard produced.
#[derive(Debug, Default)]
pub struct ShardOutput {
    pub blake3: Option<Blake3Part>,
    pub piecewise: Vec<PiecewiseHash>,
    pub features: Vec<Feature>,
    pub carved: Vec<CarvedFile>,
    pub yara: Vec<YaraMatch>,
    pub stats: Vec<ScannerStat>,
    pub notes: Vec<Note>,
    pub bytes_scanned: u64,
}
