//! What a finished job hands to the report writer.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trawl_core::{CarvedFile, Feature, Note, PiecewiseHash, ScannerStat, YaraMatch};

/// The evidence as examined.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceSummary {
    pub path: String,
    pub size: u64,
    pub format: String,
    pub segments: Vec<String>,
    /// Hashes stored in the container by the acquisition tool (E01).
    pub stored_md5: Option<String>,
    pub stored_sha1: Option<String>,
    /// Acquisition metadata from the container.
    pub metadata: BTreeMap<String, String>,
    /// Sector ranges the acquisition tool could not read.
    pub acquisition_errors: Vec<(u64, u64)>,
    /// Digest of the upload in the evidence store, when uploaded.
    pub upload_blake3: Option<String>,
    /// When the scheduler verified the upload's BLAKE3 (RFC 3339, UTC).
    pub upload_verified_at: Option<String>,
    /// Who uploaded it.
    pub uploaded_by: Option<String>,
}

/// Whole-image hashes, lowercase hex.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageHashes {
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub blake3: Option<String>,
    /// When the hashes were computed (RFC 3339, UTC).
    pub computed_at: Option<String>,
}

/// Stored container hash compared with the hash of the media read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashVerification {
    pub algorithm: String,
    pub stored: String,
    pub computed: String,
    pub matches: bool,
}

/// A part of the evidence that could not be examined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limitation {
    pub start: u64,
    pub end: u64,
    pub task: String,
    pub error: String,
    pub attempts: u32,
}

/// How the results were produced: enough to reproduce them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub tool: String,
    pub version: String,
    pub shard_size: u64,
    pub margin: u64,
    pub shards: u32,
    pub analyses: Vec<String>,
    /// The job specification (every analysis setting), as submitted.
    pub settings: serde_json::Value,
    pub command: Vec<String>,
    pub hostname: String,
    pub workers: u32,
}

/// Wall-clock facts of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub submitted_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub wall_ms: u64,
    pub throughput_mb_s: f64,
}

/// Everything a report directory is written from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobResults {
    pub job_id: String,
    pub case_id: String,
    pub state: String,
    pub evidence: EvidenceSummary,
    pub hashes: ImageHashes,
    pub verification: Vec<HashVerification>,
    pub piecewise_window: u64,
    pub piecewise: Vec<PiecewiseHash>,
    pub features: Vec<Feature>,
    pub carved: Vec<CarvedFile>,
    pub yara: Vec<YaraMatch>,
    /// File-system files (sorted by partition, path, inode).
    #[serde(default)]
    pub files: Vec<trawl_core::FileRecord>,
    /// Volumes and file systems found, when the file-system analysis ran.
    #[serde(default)]
    pub filesystems: Option<trawl_core::FilesSummary>,
    pub stats: Vec<ScannerStat>,
    pub notes: Vec<Note>,
    pub limitations: Vec<Limitation>,
    pub errors: Vec<String>,
    pub provenance: Provenance,
    pub timings: Timings,
}

impl JobResults {
    /// Sorts every finding list into result order.
    pub fn sort(&mut self) {
        use rayon::slice::ParallelSliceMut;
        let (features, carved, yara) = (&mut self.features, &mut self.carved, &mut self.yara);
        rayon::join(
            || features.par_sort_by(|a, b| a.sort_cmp(b)),
            || {
                rayon::join(
                    || carved.par_sort_by(|a, b| a.sort_cmp(b)),
                    || yara.par_sort_by(|a, b| a.sort_cmp(b)),
                )
            },
        );
        self.piecewise.sort_by_key(|p| p.offset);
        self.stats.sort_by(|a, b| a.scanner.cmp(&b.scanner));
        self.notes.sort();
    }

    /// Compares stored container hashes with the computed ones.
    pub fn verify_stored(&mut self) {
        self.verification.clear();
        let pairs = [
            ("md5", &self.evidence.stored_md5, &self.hashes.md5),
            ("sha1", &self.evidence.stored_sha1, &self.hashes.sha1),
        ];
        for (alg, stored, computed) in pairs {
            if let (Some(s), Some(c)) = (stored, computed) {
                self.verification.push(HashVerification {
                    algorithm: alg.into(),
                    stored: s.clone(),
                    computed: c.clone(),
                    matches: s.eq_ignore_ascii_case(c),
                });
            }
        }
    }
}
