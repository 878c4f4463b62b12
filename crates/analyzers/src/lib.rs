//! Analyses over a shard of an evidence image: hashing, carving, feature
//! extraction and YARA. A worker reads a shard plus its margin once and hands
//! the same buffer to every requested analysis, run in parallel with rayon.
//!
//! Analyzers are built once per job ([`JobAnalyzers::build`]: matchers and
//! rules compiled once, shared by `Arc`), then [`JobAnalyzers::scan_shard`]
//! runs them over one shard. They know nothing of transport: the scheduler,
//! the workers and the embedded `trawl scan` call the same code.

//!
//! The analyses themselves are crates of their own, re-exported here under
//! their old paths: [`hash`] (`trawl-hash`), [`carve`] (`trawl-carve`),
//! [`features`] (`trawl-features`), [`yara`] (`trawl-yara`).

pub mod files;

pub use trawl_carve as carve;
pub use trawl_core::ShardOutput;
pub use trawl_features as features;
pub use trawl_hash as hash;
pub use trawl_hash::{md5, sha_multi, sha_pair};
#[cfg(feature = "yara")]
pub use trawl_yara as yara;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use trawl_core::{
    CarvedFile, JobSpec, Note, PiecewiseHash, ScannerStat, Shard, ShardPlan, YaraMatch,
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

impl From<hash::HashError> for AnalyzerError {
    fn from(e: hash::HashError) -> Self {
        match e {
            hash::HashError::Evidence(e) => Self::Evidence(e),
            hash::HashError::Cancelled => Self::Cancelled,
            hash::HashError::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<carve::CarveError> for AnalyzerError {
    fn from(e: carve::CarveError) -> Self {
        match e {
            carve::CarveError::Evidence(e) => Self::Evidence(e),
            carve::CarveError::Hash(e) => e.into(),
            carve::CarveError::Settings(m) => Self::Settings(m),
            carve::CarveError::Cancelled => Self::Cancelled,
        }
    }
}

impl From<features::FeatureError> for AnalyzerError {
    fn from(e: features::FeatureError) -> Self {
        match e {
            features::FeatureError::Evidence(e) => Self::Evidence(e),
            features::FeatureError::Settings(m) => Self::Settings(m),
            features::FeatureError::Cancelled => Self::Cancelled,
            features::FeatureError::Internal(m) => Self::Internal(m),
        }
    }
}

#[cfg(feature = "yara")]
impl From<yara::YaraError> for AnalyzerError {
    fn from(e: yara::YaraError) -> Self {
        match e {
            yara::YaraError::Evidence(e) => Self::Evidence(e),
            yara::YaraError::Settings(m) => Self::Settings(m),
            yara::YaraError::Cancelled => Self::Cancelled,
        }
    }
}

/// The analyzers of one job, built once and shared by every shard.
#[derive(Debug)]
pub struct JobAnalyzers {
    spec: JobSpec,
    plan: ShardPlan,
    carver: Option<carve::Carver>,
    features: Option<features::FeatureScanner>,
    #[cfg(feature = "yara")]
    yara: Option<(std::sync::Arc<yara::ImageRules>, yara::Limits)>,
}

type HashedShard = (hash::Blake3Part, Vec<PiecewiseHash>, ScannerStat);
type YaraShard = (Vec<YaraMatch>, Vec<Note>, ScannerStat);
/// What a shard's YARA scan saw, for its carved files.
#[cfg(feature = "yara")]
type Hits = yara::ShardHits;
#[cfg(not(feature = "yara"))]
type Hits = ();

/// A YARA rule set prepared for an image, handed to [`JobAnalyzers`].
#[cfg(feature = "yara")]
pub type ShareableRules = std::sync::Arc<yara::ImageRules>;
/// Placeholder when built without YARA.
#[cfg(not(feature = "yara"))]
pub type ShareableRules = std::convert::Infallible;

/// Checks a job's carving and feature settings (types, configuration files,
/// scanner names, keyword lists) without evidence, so that a bad setting is
/// refused when the job is submitted rather than failing every shard.
///
/// # Errors
/// The first invalid setting, named.
pub fn check_settings(spec: &JobSpec) -> Result<(), AnalyzerError> {
    if spec.analyses.carve {
        carve::Carver::new(&spec.carve)?;
    }
    if spec.analyses.features {
        features::FeatureScanner::new(&spec.features)?;
    }
    Ok(())
}

/// How far past a shard's scan range a shard task of `spec` may read: the
/// largest file its carver may produce, plus a MiB for the analyses that
/// look a little past the range (YARA matches crossing the end).
pub fn read_extent(spec: &JobSpec) -> u64 {
    let carve = if spec.analyses.carve {
        carve::Carver::new(&spec.carve)
            .map(|c| c.max_extent())
            .unwrap_or(0)
    } else {
        0
    };
    carve.saturating_add(1 << 20)
}

impl JobAnalyzers {
    #[cfg(feature = "yara")]
    fn yara_shard(
        &self,
        evidence: &dyn Evidence,
        shard: &Shard,
        data: &[u8],
        cancel: &AtomicBool,
    ) -> Result<Option<(YaraShard, Hits)>, AnalyzerError> {
        let Some((rules, limits)) = &self.yara else {
            return Ok(None);
        };
        let (m, n, s, h) = rules.scan_shard(evidence, shard, data, *limits, cancel)?;
        Ok(Some(((m, n, s), h)))
    }

    /// YARA over the files carved from a shard (`data` holds the shard's
    /// bytes from `shard.start`), when the job scans carved files.
    #[cfg(feature = "yara")]
    fn yara_carved(
        &self,
        evidence: &dyn Evidence,
        shard: &Shard,
        data: &[u8],
        files: &[CarvedFile],
        hits: Option<&Hits>,
        cancel: &AtomicBool,
    ) -> Result<Option<YaraShard>, AnalyzerError> {
        let Some((rules, limits)) = &self.yara else {
            return Ok(None);
        };
        if !self.spec.yara.scan_carved || files.is_empty() {
            return Ok(None);
        }
        let t = Instant::now();
        let done =
            rules.scan_carved(evidence, (shard.start, data), files, hits, *limits, cancel)?;
        let stat = ScannerStat {
            scanner: "yara-carved".into(),
            bytes: done.bytes,
            nanos: t.elapsed().as_nanos() as u64,
            findings: done.matches.len() as u64,
            skipped_bytes: done.skipped_bytes,
        };
        Ok(Some((done.matches, done.notes, stat)))
    }

    #[cfg(not(feature = "yara"))]
    fn yara_carved(
        &self,
        _evidence: &dyn Evidence,
        _shard: &Shard,
        _data: &[u8],
        _files: &[CarvedFile],
        _hits: Option<&Hits>,
        _cancel: &AtomicBool,
    ) -> Result<Option<YaraShard>, AnalyzerError> {
        Ok(None)
    }

    #[cfg(not(feature = "yara"))]
    fn yara_shard(
        &self,
        _evidence: &dyn Evidence,
        _shard: &Shard,
        _data: &[u8],
        _cancel: &AtomicBool,
    ) -> Result<Option<(YaraShard, Hits)>, AnalyzerError> {
        Ok(None)
    }

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
        Self::build_with_rules(spec, plan, None)
    }

    /// The feature scanners of the job, when it extracts features.
    pub fn features(&self) -> Option<&features::FeatureScanner> {
        self.features.as_ref()
    }

    /// The YARA rules and limits of the job, when it runs YARA.
    #[cfg(feature = "yara")]
    pub fn yara(&self) -> Option<&(std::sync::Arc<yara::ImageRules>, yara::Limits)> {
        self.yara.as_ref()
    }

    /// Builds the analyzers of a job over `evidence`, preparing inline YARA
    /// sources for it.
    ///
    /// # Errors
    /// As [`JobAnalyzers::build_with_rules`]; evidence read errors.
    pub fn build_for(
        spec: &JobSpec,
        plan: ShardPlan,
        evidence: &dyn Evidence,
    ) -> Result<Self, AnalyzerError> {
        #[cfg(feature = "yara")]
        let rules = if spec.analyses.yara && !spec.yara.sources.is_empty() {
            Some(std::sync::Arc::new(
                yara::rule_set(&spec.yara.sources, spec.yara.strict).for_image(evidence)?,
            ))
        } else {
            None
        };
        #[cfg(not(feature = "yara"))]
        let rules = {
            let _ = evidence;
            None
        };
        Self::build_with_rules(spec, plan, rules)
    }

    /// Builds the analyzers with an already compiled YARA rule set (workers
    /// fetch rule sets by digest and compile them once).
    ///
    /// # Errors
    /// Invalid settings, or an analysis this build does not include.
    pub fn build_with_rules(
        spec: &JobSpec,
        plan: ShardPlan,
        #[cfg_attr(not(feature = "yara"), allow(unused_variables))] rules: Option<ShareableRules>,
    ) -> Result<Self, AnalyzerError> {
        spec.validate()
            .map_err(|e| AnalyzerError::Settings(e.to_string()))?;
        #[cfg(not(feature = "yara"))]
        if spec.analyses.yara {
            return Err(AnalyzerError::Settings(
                "the yara analysis is not available in this build (built without the yara feature)"
                    .into(),
            ));
        }
        #[cfg(feature = "yara")]
        let yara = if spec.analyses.yara {
            let Some(rules) = rules else {
                return Err(AnalyzerError::Settings(
                    "the yara analysis needs a rule set prepared for the image".into(),
                ));
            };
            Some((
                rules,
                yara::Limits::from_settings(
                    spec.yara.timeout_seconds,
                    spec.yara.max_matches_per_pattern,
                ),
            ))
        } else {
            None
        };
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
            #[cfg(feature = "yara")]
            yara,
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
    /// `carve_space`: when given, only those image ranges (`[start, end)`,
    /// sorted, from the shard's start to as far as a file may reach) are
    /// carved, end to end (`--carve-scope unallocated`; see
    /// [`carve::Carver::carve_space`]).
    ///
    /// # Errors
    /// Evidence read errors (for reads past the margin), cancellation.
    pub fn scan_shard(
        &self,
        evidence: &dyn Evidence,
        shard: &Shard,
        data: &[u8],
        carve_space: Option<&[(u64, u64)]>,
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
        let ((hashed, carved), (found, yara)) = rayon::join(
            || {
                rayon::join(
                    || self.hash_shard(evidence, shard, data),
                    || {
                        self.carver
                            .as_ref()
                            .map(|c| match carve_space {
                                Some(space) => c.carve_space(evidence, shard, data, space, cancel),
                                None => c.carve_shard(evidence, shard, data, cancel),
                            })
                            .transpose()
                    },
                )
            },
            || {
                rayon::join(
                    || {
                        self.features
                            .as_ref()
                            .map(|f| f.scan_shard(evidence, shard, data, cancel))
                            .transpose()
                    },
                    || self.yara_shard(evidence, shard, data, cancel),
                )
            },
        );
        let (yara, hits) = match yara? {
            Some((y, h)) => (Some(y), Some(h)),
            None => (None, None),
        };
        let carved = carved?;
        // Carved files are scanned with YARA here, while their bytes are at
        // hand, with what the shard's scan saw (files no rule can match are
        // not scanned).
        let carved = carved
            .map(|c| {
                let y = self.yara_carved(evidence, shard, data, &c.files, hits.as_ref(), cancel)?;
                Ok::<_, AnalyzerError>((c, y))
            })
            .transpose();
        if let Some((b3, pw, stat)) = hashed? {
            out.blake3 = Some(b3);
            out.piecewise = pw;
            out.stats.push(stat);
        }
        let mut carved_yara = None;
        if let Some((c, y)) = carved? {
            out.carved = c.files;
            out.notes.extend(c.notes);
            out.stats.extend(c.stats);
            carved_yara = y;
        }
        if let Some(f) = found? {
            out.features = f.features;
            out.notes.extend(f.notes);
            out.stats.extend(f.stats);
        }
        if let Some((m, notes, stat)) = yara {
            out.yara = m;
            out.notes.extend(notes);
            out.stats.push(stat);
        }
        if let Some((m, notes, stat)) = carved_yara {
            out.yara.extend(m);
            out.notes.extend(notes);
            out.stats.push(stat);
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(AnalyzerError::Cancelled);
        }
        Ok(out)
    }
}
