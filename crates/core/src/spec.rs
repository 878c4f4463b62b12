//! Job specifications: what to examine, how, and for which case.

use crate::plan::{DEFAULT_MARGIN, DEFAULT_SHARD_SIZE, ShardPlan};
use crate::{CaseId, CoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One analysis a job can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Analysis {
    Hash,
    Carve,
    Features,
    Yara,
    /// Volume systems and file systems: every file listed and hashed.
    Files,
}

impl Analysis {
    /// Every analysis, in report order.
    pub const ALL: [Analysis; 5] = [
        Analysis::Hash,
        Analysis::Carve,
        Analysis::Features,
        Analysis::Yara,
        Analysis::Files,
    ];
    /// The analysis name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Analysis::Hash => "hash",
            Analysis::Carve => "carve",
            Analysis::Features => "features",
            Analysis::Yara => "yara",
            Analysis::Files => "files",
        }
    }
}

impl fmt::Display for Analysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Analysis {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hash" | "hashes" | "hashing" => Ok(Analysis::Hash),
            "carve" | "carving" => Ok(Analysis::Carve),
            "features" | "feature" | "be" => Ok(Analysis::Features),
            "yara" => Ok(Analysis::Yara),
            "files" | "fs" | "filesystems" => Ok(Analysis::Files),
            _ => Err(CoreError::UnknownAnalysis(s.to_string())),
        }
    }
}

/// A set of analyses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AnalysisSet {
    pub hash: bool,
    pub carve: bool,
    pub features: bool,
    pub yara: bool,
    /// Absent in jobs recorded before the file-system analysis existed.
    #[serde(default)]
    pub files: bool,
}

impl AnalysisSet {
    /// Every analysis.
    pub fn all() -> Self {
        Self {
            hash: true,
            carve: true,
            features: true,
            yara: true,
            files: true,
        }
    }
    /// Parses a comma-separated list (`hash,carve`); `all` selects every one.
    ///
    /// # Errors
    /// An unknown analysis name, or an empty list.
    pub fn parse(list: &str) -> Result<Self, CoreError> {
        let mut set = Self::default();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.eq_ignore_ascii_case("all") {
                set = Self::all();
                continue;
            }
            set.insert(part.parse()?);
        }
        if set.is_empty() {
            return Err(CoreError::NoAnalysis);
        }
        Ok(set)
    }
    /// Adds an analysis.
    pub fn insert(&mut self, a: Analysis) {
        match a {
            Analysis::Hash => self.hash = true,
            Analysis::Carve => self.carve = true,
            Analysis::Features => self.features = true,
            Analysis::Yara => self.yara = true,
            Analysis::Files => self.files = true,
        }
    }
    /// Whether `a` is in the set.
    pub fn contains(&self, a: Analysis) -> bool {
        match a {
            Analysis::Hash => self.hash,
            Analysis::Carve => self.carve,
            Analysis::Features => self.features,
            Analysis::Yara => self.yara,
            Analysis::Files => self.files,
        }
    }
    /// True when no analysis is selected.
    pub fn is_empty(&self) -> bool {
        !(self.hash || self.carve || self.features || self.yara || self.files)
    }
    /// The selected analyses in report order.
    pub fn iter(&self) -> impl Iterator<Item = Analysis> + '_ {
        Analysis::ALL.into_iter().filter(|a| self.contains(*a))
    }
}

impl fmt::Display for AnalysisSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(Analysis::name).collect();
        f.write_str(&names.join(","))
    }
}

/// Scheduling priority class. Higher classes are always served first; within
/// a class, cases share the pool fairly.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

impl Priority {
    /// The priority name.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl std::str::FromStr for Priority {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Priority::Low),
            "normal" | "" => Ok(Priority::Normal),
            "high" => Ok(Priority::High),
            "urgent" => Ok(Priority::Urgent),
            _ => Err(CoreError::UnknownPriority(s.to_string())),
        }
    }
}

/// Where a job's evidence is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceRef {
    /// Paths on storage every node reads (segments of one image, in order).
    Paths(Vec<String>),
    /// An upload in the scheduler's content-addressed store (BLAKE3 hex).
    Upload(String),
}

/// Settings of the hashing analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashOptions {
    /// Piecewise window in bytes (power of two); 0 turns piecewise hashes
    /// off.
    pub piecewise_window: u64,
    /// Also MD5 per window.
    pub piecewise_md5: bool,
    /// Skip the MD5/SHA-1/SHA-256 stream.
    pub skip_stream: bool,
}

/// Default piecewise window: 1 MiB.
pub const DEFAULT_PIECEWISE_WINDOW: u64 = 1 << 20;

impl Default for HashOptions {
    fn default() -> Self {
        Self {
            piecewise_window: DEFAULT_PIECEWISE_WINDOW,
            piecewise_md5: false,
            skip_stream: false,
        }
    }
}

/// Settings of the carving analysis.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CarveOptions {
    /// Only these types (empty: every built-in type).
    pub types: Vec<String>,
    /// Only consider headers at 512-byte sector starts (fast mode).
    pub sector_aligned: bool,
    /// A Scalpel/Foremost configuration (its text), for custom types.
    pub custom_config: String,
    /// Per-type maximum file size overrides, in bytes.
    pub max_size: BTreeMap<String, u64>,
    /// Maximum candidates per shard and type (0: default).
    pub max_candidates_per_shard: u32,
    /// `--carve-scope unallocated`: keep only the carved files that start
    /// in a file system's unallocated space or outside every file system
    /// (needs the files analysis for the allocation maps).
    #[serde(default)]
    pub unallocated_only: bool,
}

/// Settings of the feature extraction analysis.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeatureOptions {
    /// Only these scanners (empty: every default scanner).
    pub scanners: Vec<String>,
    /// Keyword list for the `find` scanner.
    pub find_keywords: String,
    /// Stop list text.
    pub stop_list: String,
    /// Alert list text.
    pub alert_list: String,
    /// Maximum recursion depth into compressed data (0: default).
    pub max_recursion_depth: u32,
    /// Maximum bytes inflated per compressed stream (0: default).
    pub max_inflate_bytes: u64,
    /// The `find` keywords match case-sensitively (default: ASCII
    /// case-insensitively, as bulk_extractor's find).
    #[serde(default)]
    pub find_case_sensitive: bool,
}

/// A rule file given inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSource {
    pub name: String,
    pub text: String,
}

/// Settings of the YARA analysis.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct YaraOptions {
    /// A registered rule set, by name.
    pub ruleset_name: String,
    /// Inline rule files.
    pub sources: Vec<RuleSource>,
    /// Fail on any rule yara-x refuses.
    pub strict: bool,
    /// Per-scan timeout in seconds (0: default).
    pub timeout_seconds: u32,
    /// Maximum matches per pattern (0: default).
    pub max_matches_per_pattern: u32,
    /// Also scan carved files (default true when carving runs).
    pub scan_carved: bool,
    /// BLAKE3 digest of the rule sources, set by the scheduler.
    pub ruleset_digest: String,
}

/// Settings of the file-system analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOptions {
    /// Known-file hash sets (NSRL RDSv3 SQLite, hashdeep or md5sum-style
    /// lists, or tables made by `trawl known import`): paths the scheduler
    /// reads.
    pub known: Vec<String>,
    /// Notable-file hash sets (contraband, malware), same formats.
    pub notable: Vec<String>,
    /// Keep known files out of YARA and feature extraction (their hashes
    /// are still reported).
    pub skip_known: bool,
    /// Content bytes per file-hashing task (0: default).
    pub task_bytes: u64,
}

/// Default content bytes per file-hashing task: 256 MiB.
pub const DEFAULT_FILES_TASK_BYTES: u64 = 256 << 20;

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            known: Vec::new(),
            notable: Vec::new(),
            skip_known: false,
            task_bytes: DEFAULT_FILES_TASK_BYTES,
        }
    }
}

/// A job: one evidence item, the analyses to run on it, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub case_id: CaseId,
    pub evidence: EvidenceRef,
    pub evidence_name: String,
    pub analyses: AnalysisSet,
    pub priority: Priority,
    pub shard_size: u64,
    pub margin: u64,
    pub hash: HashOptions,
    pub carve: CarveOptions,
    pub features: FeatureOptions,
    pub yara: YaraOptions,
    /// Absent in jobs recorded before the file-system analysis existed.
    #[serde(default)]
    pub files: FileOptions,
    pub description: String,
    /// Set by the scheduler for jobs it makes itself (`retrohunt F000001
    /// J000003`: a flash's rules over an earlier job's evidence); never
    /// taken from the wire.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin: String,
}

impl JobSpec {
    /// A spec with default settings.
    pub fn new(case_id: CaseId, evidence: EvidenceRef, analyses: AnalysisSet) -> Self {
        Self {
            case_id,
            evidence,
            evidence_name: String::new(),
            analyses,
            priority: Priority::Normal,
            shard_size: DEFAULT_SHARD_SIZE,
            margin: DEFAULT_MARGIN,
            hash: HashOptions::default(),
            carve: CarveOptions::default(),
            features: FeatureOptions::default(),
            yara: YaraOptions::default(),
            files: FileOptions::default(),
            description: String::new(),
            origin: String::new(),
        }
    }

    /// Checks the settings that do not depend on the evidence.
    ///
    /// # Errors
    /// Bad shard size, margin or piecewise window, or no analysis.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.analyses.is_empty() {
            return Err(CoreError::NoAnalysis);
        }
        ShardPlan::new(0, self.shard_size, self.margin)?;
        let w = self.hash.piecewise_window;
        if w != 0 && (!w.is_power_of_two() || w < 1024) {
            return Err(CoreError::PiecewiseWindow(w));
        }
        if self.carve.unallocated_only && !(self.analyses.carve && self.analyses.files) {
            return Err(CoreError::Settings(
                "carving only unallocated space needs the carve and files analyses (the allocation maps come from the file-system listing)",
            ));
        }
        Ok(())
    }

    /// The shard plan for an image of `image_size` bytes.
    ///
    /// # Errors
    /// Bad shard size or margin.
    pub fn plan(&self, image_size: u64) -> Result<ShardPlan, CoreError> {
        ShardPlan::new(image_size, self.shard_size, self.margin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyses_parse() {
        let s = AnalysisSet::parse("hash, carve").unwrap();
        assert!(s.hash && s.carve && !s.features && !s.yara && !s.files);
        assert!(AnalysisSet::parse("files").unwrap().files);
        assert_eq!(s.to_string(), "hash,carve");
        assert_eq!(AnalysisSet::parse("all").unwrap(), AnalysisSet::all());
        assert!(AnalysisSet::parse("").is_err());
        assert!(AnalysisSet::parse("hash,md6").is_err());
        assert_eq!("HIGH".parse::<Priority>().unwrap(), Priority::High);
        assert!(Priority::Urgent > Priority::High && Priority::Low < Priority::Normal);
    }

    #[test]
    fn spec_validates() {
        let mut spec = JobSpec::new(
            CaseId::new("c1").unwrap(),
            EvidenceRef::Paths(vec!["/x".into()]),
            AnalysisSet::parse("hash").unwrap(),
        );
        assert!(spec.validate().is_ok());
        spec.shard_size = 3000;
        assert!(spec.validate().is_err());
        spec.shard_size = 4096;
        spec.hash.piecewise_window = 1000;
        assert!(spec.validate().is_err());
    }
}
