//! Analyses over a shard of an evidence image: hashing, carving, feature
//! extraction and YARA. A worker reads a shard plus its margin once and hands
//! the same buffer to every requested analysis, run in parallel with rayon.
//!
//! Analyzers are built once per job ([`JobAnalyzers::build`]: matchers and
//! rules compiled once, shared by `Arc`), then [`JobAnalyzers::scan_shard`]
//! runs them over one shard. They know nothing of transport: the scheduler,
//! the workers and the embedded `trawl scan` call the same code.

pub mod carve;
pub mod features;
pub mod hash;
pub mod md5;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use trawl_core::{
    CarvedFile, Feature, JobSpec, Note, PiecewiseHash, ScannerStat, Shard, ShardPlan, YaraMatch,
};
use trawl_evidence::{Evidence, EvidenceError};

/// Why an analysis failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error("cancelled")]
    Cancelled,
    #[error("internal error: {0}")]
    Internal(String),
}

/// Everything one shard produced.
#[derive(Debug, Default)]
pub struct ShardOutput {
    pub blake3: Option<hash::Blake3Part>,
    pub piecewise: Vec<PiecewiseHash>,
    pub features: Vec<Feature>,
    pub carved: Vec<CarvedFile>,
    pub yara: Vec<YaraMatch>,
    pub stats: Vec<ScannerStat>,
    pub notes: Vec<Note>,
    pub bytes_scanned: u64,
}

/// The analyzers of one job, built once and shared by every shard.
#[derive(Debug)]
pub struct JobAnalyzers {
    spec: JobSpec,
    plan: ShardPlan,
    carver: Option<carve::Carver>,
    features: Option<features::FeatureScanner>,
}

type HashedShard = (hash::Blake3Part, Vec<PiecewiseHash>, ScannerStat);

impl JobAnalyzers {
    fn hash_shard(
        &self,
        evidence: &dyn Evidence,
        shard: &Shard,
        data: &[u8],
    ) -> Result<Option<HashedShard>, AnalyzerError> {
        if !self.spec.analyses.hash {
            return Ok(None);
        }
        let t = Instant::now();
        let owned = &data[..shard.len() as usize];
        let window = self.spec.hash.piecewise_window;
        let (b3, pw) = rayon::join(
            || hash::blake3_part(&self.plan, shard, owned),
            || {
                if window == 0 {
                    return Ok(Vec::new());
                }
                hash::piecewise(evidence, shard, data, window, self.spec.hash.piecewise_md5)
            },
        );
        let pw = pw?;
        let stat = ScannerStat {
            scanner: "hash".into(),
            bytes: shard.len(),
            nanos: t.elapsed().as_nanos() as u64,
            findings: pw.len() as u64,
            skipped_bytes: 0,
        };
        Ok(Some((b3, pw, stat)))
    }

    /// Builds the analyzers a job asks for.
    ///
    /// # Errors
    /// Invalid settings, or an analysis this build does not include.
    pub fn build(spec: &JobSpec, plan: ShardPlan) -> Result<Self, AnalyzerError> {
        spec.validate()
            .map_err(|e| AnalyzerError::Settings(e.to_string()))?;
        if spec.analyses.yara {
            return Err(AnalyzerError::Settings(
                "the yara analysis is not available in this build".into(),
            ));
        }
        let carver = spec
            .analyses
            .carve
            .then(|| carve::Carver::new(&spec.carve))
            .transpose()?;
        let features = spec
            .analyses
            .features
            .then(|| features::FeatureScanner::new(&spec.features))
            .transpose()?;
        Ok(Self {
            spec: spec.clone(),
            plan,
            carver,
            features,
        })
    }

    /// The job's specification.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The shard plan.
    pub fn plan(&self) -> &ShardPlan {
        &self.plan
    }

    /// Runs every requested per-shard analysis over `data`, which holds the
    /// image bytes `[shard.start, shard.scan_end)`. Findings starting at or
    /// past `shard.end` are dropped (the next shard owns them).
    ///
    /// # Errors
    /// Evidence read errors (for reads past the margin), cancellation.
    pub fn scan_shard(
        &self,
        evidence: &dyn Evidence,
        shard: &Shard,
        data: &[u8],
        cancel: &AtomicBool,
    ) -> Result<ShardOutput, AnalyzerError> {
        if data.len() as u64 != shard.scan_len() {
            return Err(AnalyzerError::Internal(format!(
                "shard {} buffer holds {} bytes, expected {}",
                shard.index,
                data.len(),
                shard.scan_len()
            )));
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(AnalyzerError::Cancelled);
        }
        let mut out = ShardOutput {
            bytes_scanned: shard.len(),
            ..Default::default()
        };
        // Every analysis over the same buffer, in parallel.
        let ((hashed, carved), found) = rayon::join(
            || {
                rayon::join(
                    || self.hash_shard(evidence, shard, data),
                    || {
                        self.carver
                            .as_ref()
                            .map(|c| c.carve_shard(evidence, shard, data, cancel))
                            .transpose()
                    },
                )
            },
            || {
                self.features
                    .as_ref()
                    .map(|f| f.scan_shard(shard, data, cancel))
                    .transpose()
            },
        );
        if let Some((b3, pw, stat)) = hashed? {
            out.blake3 = Some(b3);
            out.piecewise = pw;
            out.stats.push(stat);
        }
        if let Some(c) = carved? {
            out.carved = c.files;
            out.notes.extend(c.notes);
            out.stats.extend(c.stats);
        }
        if let Some(f) = found? {
            out.features = f.features;
            out.notes.extend(f.notes);
            out.stats.extend(f.stats);
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(AnalyzerError::Cancelled);
        }
        Ok(out)
    }
}
