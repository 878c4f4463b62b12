//! Finding kinds. Every finding carries the image offset of its first byte,
//! which decides the shard that owns it (see [`crate::plan`]). Results are
//! sorted by (image offset, kind, value) so any run of the same job gives
//! byte-identical output.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A feature found by a scanner (email, url, ccn, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Feature {
    /// Scanner name: the feature file is `features/<scanner>.txt`.
    pub scanner: String,
    /// Image offset of the first byte of the region the feature was found in
    /// (for a feature inside decoded data, the offset of the encoded stream).
    pub offset: u64,
    /// bulk_extractor forensic path: `1234`, `1234-GZIP-56`, `1234-ZIP-80`.
    pub path: String,
    /// The feature, as bytes (UTF-8 for text features).
    pub feature: Vec<u8>,
    /// Bytes around the feature.
    pub context: Vec<u8>,
    /// Found in UTF-16 text (the feature converted to UTF-8; the path's
    /// last offset is its first encoded byte's, as bulk_extractor writes
    /// it). Counted as `utf16=` in histograms.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub utf16: bool,
}

impl Feature {
    /// Result order: offset, scanner, forensic path, feature, context.
    pub fn sort_cmp(&self, other: &Self) -> Ordering {
        (
            self.offset,
            &self.scanner,
            &self.path,
            &self.feature,
            &self.context,
        )
            .cmp(&(
                other.offset,
                &other.scanner,
                &other.path,
                &other.feature,
                &other.context,
            ))
    }
}

/// A contiguous run of a carved file in the image (DFXML byte_run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ByteRun {
    pub img_offset: u64,
    pub file_offset: u64,
    pub len: u64,
}

/// A carved file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CarvedFile {
    /// Image offset of the first byte.
    pub offset: u64,
    pub length: u64,
    /// Type name: the folder under `carved/`.
    pub file_type: String,
    /// File name extension, without the dot.
    pub extension: String,
    /// Whether the file's structure was parsed to its end and found sound.
    pub validated: bool,
    /// Why it was not validated, or what was noticed.
    pub note: String,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub byte_runs: Vec<ByteRun>,
}

impl CarvedFile {
    /// Path of the carved file inside a report directory.
    pub fn report_path(&self) -> String {
        format!(
            "carved/{}/{}.{}",
            self.file_type, self.offset, self.extension
        )
    }
    /// Result order: offset, type, length.
    pub fn sort_cmp(&self, other: &Self) -> Ordering {
        (self.offset, &self.file_type, self.length).cmp(&(
            other.offset,
            &other.file_type,
            other.length,
        ))
    }
}

/// One matched string of a YARA rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct YaraString {
    pub id: String,
    /// Offset in the target (image offset when the target is the image).
    pub offset: u64,
    pub length: u64,
}

/// A rule that matched a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct YaraMatch {
    /// `image`, or a carved file's report path.
    pub target: String,
    /// Image offset of the target (0 for the image, the carved file's offset).
    pub target_offset: u64,
    pub rule: String,
    pub namespace: String,
    pub tags: Vec<String>,
    /// The rule's metadata as a JSON object.
    pub metadata_json: String,
    pub strings: Vec<YaraString>,
}

impl YaraMatch {
    /// A shard's partial record of a rule decided on the whole image
    /// (target `shard…` or `hit…`: see `trawl_analyzers::yara::scope`),
    /// not a final match.
    pub fn is_shard_record(&self) -> bool {
        self.target.starts_with("shard") || self.target.starts_with("hit")
    }
    /// Result order: target offset, target, namespace, rule.
    pub fn sort_cmp(&self, other: &Self) -> Ordering {
        (
            self.target_offset,
            &self.target,
            &self.namespace,
            &self.rule,
        )
            .cmp(&(
                other.target_offset,
                &other.target,
                &other.namespace,
                &other.rule,
            ))
    }
}

/// A piecewise hash of one window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PiecewiseHash {
    pub offset: u64,
    pub length: u64,
    pub blake3: String,
    /// Empty unless MD5 was asked for.
    pub md5: String,
}

/// Time and bytes spent by one scanner or analysis.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannerStat {
    pub scanner: String,
    pub bytes: u64,
    pub nanos: u64,
    pub findings: u64,
    pub skipped_bytes: u64,
}

impl ScannerStat {
    /// Adds another measurement of the same scanner.
    pub fn add(&mut self, o: &ScannerStat) {
        self.bytes += o.bytes;
        self.nanos += o.nanos;
        self.findings += o.findings;
        self.skipped_bytes += o.skipped_bytes;
    }
}

/// Something an analysis noticed that the examiner should know (a limit
/// reached, a stream not inflated, a rule refused).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Note {
    pub analysis: String,
    pub offset: u64,
    pub message: String,
}
