//! Conversions between the wire messages and the model types of
//! `trawl-core`. Wire input is untrusted: conversions into the model
//! validate ids and settings and return a message naming the bad field.

use crate::v1;
use trawl_core::spec::{
    CarveOptions, EvidenceRef, FeatureOptions, HashOptions, RuleSource, YaraOptions,
};
use trawl_core::{
    Analysis, AnalysisSet, ByteRun, CarvedFile, CaseId, Feature, JobSpec, Note, PiecewiseHash,
    Priority, ScannerStat, YaraMatch, YaraString,
};

/// A field of a request that does not convert to the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidField {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        message: message.into(),
    }
}

impl From<Analysis> for v1::Analysis {
    fn from(a: Analysis) -> Self {
        match a {
            Analysis::Hash => v1::Analysis::Hash,
            Analysis::Carve => v1::Analysis::Carve,
            Analysis::Features => v1::Analysis::Features,
            Analysis::Yara => v1::Analysis::Yara,
            Analysis::Files => v1::Analysis::Files,
        }
    }
}

impl From<Priority> for v1::Priority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Low => v1::Priority::Low,
            Priority::Normal => v1::Priority::Normal,
            Priority::High => v1::Priority::High,
            Priority::Urgent => v1::Priority::Urgent,
        }
    }
}

/// Model priority of a wire value (unspecified = normal).
pub fn priority_from_wire(p: i32) -> Result<Priority, InvalidField> {
    match v1::Priority::try_from(p) {
        Ok(v1::Priority::Unspecified) | Ok(v1::Priority::Normal) => Ok(Priority::Normal),
        Ok(v1::Priority::Low) => Ok(Priority::Low),
        Ok(v1::Priority::High) => Ok(Priority::High),
        Ok(v1::Priority::Urgent) => Ok(Priority::Urgent),
        Err(_) => Err(invalid("spec.priority", format!("unknown value {p}"))),
    }
}

impl From<&JobSpec> for v1::JobSpec {
    fn from(s: &JobSpec) -> Self {
        v1::JobSpec {
            case_id: s.case_id.to_string(),
            evidence: Some(match &s.evidence {
                EvidenceRef::Paths(p) => v1::EvidenceLocator {
                    source: Some(v1::evidence_locator::Source::Paths(v1::PathList {
                        paths: p.clone(),
                    })),
                },
                EvidenceRef::Upload(d) => v1::EvidenceLocator {
                    source: Some(v1::evidence_locator::Source::UploadDigest(d.clone())),
                },
            }),
            analyses: s
                .analyses
                .iter()
                .map(|a| v1::Analysis::from(a) as i32)
                .collect(),
            priority: v1::Priority::from(s.priority) as i32,
            shard_size: s.shard_size,
            margin: s.margin,
            hash: Some(v1::HashOptions {
                piecewise_window: s.hash.piecewise_window,
                piecewise_md5: s.hash.piecewise_md5,
                skip_stream: s.hash.skip_stream,
                no_piecewise: s.hash.piecewise_window == 0,
            }),
            carve: Some(v1::CarveOptions {
                types: s.carve.types.clone(),
                sector_aligned: s.carve.sector_aligned,
                custom_config: s.carve.custom_config.clone(),
                max_size: s.carve.max_size.clone().into_iter().collect(),
                max_candidates_per_shard: s.carve.max_candidates_per_shard,
                unallocated_only: s.carve.unallocated_only,
            }),
            features: Some(v1::FeatureOptions {
                scanners: s.features.scanners.clone(),
                find_keywords: s.features.find_keywords.clone(),
                stop_list: s.features.stop_list.clone(),
                alert_list: s.features.alert_list.clone(),
                max_recursion_depth: s.features.max_recursion_depth,
                max_inflate_bytes: s.features.max_inflate_bytes,
                find_case_sensitive: s.features.find_case_sensitive,
            }),
            yara: Some(v1::YaraOptions {
                ruleset_name: s.yara.ruleset_name.clone(),
                sources: s.yara.sources.iter().map(v1::RuleSource::from).collect(),
                strict: s.yara.strict,
                timeout_seconds: s.yara.timeout_seconds,
                max_matches_per_pattern: s.yara.max_matches_per_pattern,
                scan_carved: s.yara.scan_carved,
                ruleset_digest: s.yara.ruleset_digest.clone(),
            }),
            description: s.description.clone(),
            evidence_name: s.evidence_name.clone(),
            files: Some(v1::FileOptions {
                known: s.files.known.clone(),
                notable: s.files.notable.clone(),
                skip_known: s.files.skip_known,
                task_bytes: s.files.task_bytes,
            }),
        }
    }
}

impl TryFrom<&v1::JobSpec> for JobSpec {
    type Error = InvalidField;
    fn try_from(w: &v1::JobSpec) -> Result<Self, InvalidField> {
        let case_id =
            CaseId::new(w.case_id.clone()).map_err(|e| invalid("spec.case_id", e.to_string()))?;
        let evidence = match w.evidence.as_ref().and_then(|e| e.source.as_ref()) {
            Some(v1::evidence_locator::Source::Paths(p)) => {
                if p.paths.is_empty() || p.paths.iter().any(|x| x.is_empty()) {
                    return Err(invalid("spec.evidence.paths", "empty path"));
                }
                EvidenceRef::Paths(p.paths.clone())
            }
            Some(v1::evidence_locator::Source::UploadDigest(d)) => {
                if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        "spec.evidence.upload_digest",
                        "expected 64 hex digits (BLAKE3)",
                    ));
                }
                EvidenceRef::Upload(d.to_ascii_lowercase())
            }
            None => return Err(invalid("spec.evidence", "missing")),
        };
        let mut analyses = AnalysisSet::default();
        for a in &w.analyses {
            analyses.insert(match v1::Analysis::try_from(*a) {
                Ok(v1::Analysis::Hash) => Analysis::Hash,
                Ok(v1::Analysis::Carve) => Analysis::Carve,
                Ok(v1::Analysis::Features) => Analysis::Features,
                Ok(v1::Analysis::Yara) => Analysis::Yara,
                Ok(v1::Analysis::Files) => Analysis::Files,
                _ => return Err(invalid("spec.analyses", format!("unknown analysis {a}"))),
            });
        }
        let mut spec = JobSpec::new(case_id, evidence, analyses);
        spec.priority = priority_from_wire(w.priority)?;
        if w.shard_size != 0 {
            spec.shard_size = w.shard_size;
        }
        if w.margin != 0 {
            spec.margin = w.margin;
        }
        if let Some(h) = &w.hash {
            spec.hash = HashOptions {
                piecewise_window: if h.no_piecewise {
                    0
                } else if h.piecewise_window == 0 {
                    HashOptions::default().piecewise_window
                } else {
                    h.piecewise_window
                },
                piecewise_md5: h.piecewise_md5,
                skip_stream: h.skip_stream,
            };
        }
        if let Some(c) = &w.carve {
            spec.carve = CarveOptions {
                types: c.types.clone(),
                sector_aligned: c.sector_aligned,
                custom_config: c.custom_config.clone(),
                max_size: c.max_size.clone().into_iter().collect(),
                max_candidates_per_shard: c.max_candidates_per_shard,
                unallocated_only: c.unallocated_only,
            };
        }
        if let Some(f) = &w.features {
            spec.features = FeatureOptions {
                scanners: f.scanners.clone(),
                find_keywords: f.find_keywords.clone(),
                stop_list: f.stop_list.clone(),
                alert_list: f.alert_list.clone(),
                max_recursion_depth: f.max_recursion_depth,
                max_inflate_bytes: f.max_inflate_bytes,
                find_case_sensitive: f.find_case_sensitive,
            };
        }
        if let Some(f) = &w.files {
            spec.files = trawl_core::spec::FileOptions {
                known: f.known.clone(),
                notable: f.notable.clone(),
                skip_known: f.skip_known,
                task_bytes: if f.task_bytes == 0 {
                    trawl_core::spec::DEFAULT_FILES_TASK_BYTES
                } else {
                    f.task_bytes
                },
            };
        }
        if let Some(y) = &w.yara {
            spec.yara = YaraOptions {
                ruleset_name: y.ruleset_name.clone(),
                sources: y.sources.iter().map(RuleSource::from).collect(),
                strict: y.strict,
                timeout_seconds: y.timeout_seconds,
                max_matches_per_pattern: y.max_matches_per_pattern,
                scan_carved: y.scan_carved,
                ruleset_digest: y.ruleset_digest.clone(),
            };
        }
        spec.description = w.description.clone();
        spec.evidence_name = w.evidence_name.clone();
        spec.validate()
            .map_err(|e| invalid("spec", e.to_string()))?;
        Ok(spec)
    }
}

impl From<&Feature> for v1::Feature {
    fn from(f: &Feature) -> Self {
        v1::Feature {
            scanner: f.scanner.clone(),
            offset: f.offset,
            path: f.path.clone(),
            feature: f.feature.clone(),
            context: f.context.clone(),
            utf16: f.utf16,
        }
    }
}

impl From<&v1::Feature> for Feature {
    fn from(f: &v1::Feature) -> Self {
        Feature {
            scanner: f.scanner.clone(),
            offset: f.offset,
            path: f.path.clone(),
            feature: f.feature.clone(),
            context: f.context.clone(),
            utf16: f.utf16,
        }
    }
}

impl From<&CarvedFile> for v1::CarvedFile {
    fn from(c: &CarvedFile) -> Self {
        v1::CarvedFile {
            offset: c.offset,
            length: c.length,
            file_type: c.file_type.clone(),
            extension: c.extension.clone(),
            validated: c.validated,
            note: c.note.clone(),
            md5: c.md5.clone(),
            sha256: c.sha256.clone(),
            byte_runs: c
                .byte_runs
                .iter()
                .map(|r| v1::ByteRun {
                    img_offset: r.img_offset,
                    file_offset: r.file_offset,
                    len: r.len,
                })
                .collect(),
            sha1: c.sha1.clone(),
        }
    }
}

impl From<&v1::CarvedFile> for CarvedFile {
    fn from(c: &v1::CarvedFile) -> Self {
        CarvedFile {
            offset: c.offset,
            length: c.length,
            file_type: c.file_type.clone(),
            extension: c.extension.clone(),
            validated: c.validated,
            note: c.note.clone(),
            md5: c.md5.clone(),
            sha1: c.sha1.clone(),
            sha256: c.sha256.clone(),
            byte_runs: c
                .byte_runs
                .iter()
                .map(|r| ByteRun {
                    img_offset: r.img_offset,
                    file_offset: r.file_offset,
                    len: r.len,
                })
                .collect(),
        }
    }
}

impl From<&YaraMatch> for v1::YaraMatch {
    fn from(m: &YaraMatch) -> Self {
        v1::YaraMatch {
            target: m.target.clone(),
            rule: m.rule.clone(),
            namespace: m.namespace.clone(),
            tags: m.tags.clone(),
            metadata_json: m.metadata_json.clone(),
            strings: m
                .strings
                .iter()
                .map(|s| v1::YaraString {
                    id: s.id.clone(),
                    offset: s.offset,
                    length: s.length,
                })
                .collect(),
            target_offset: m.target_offset,
        }
    }
}

impl From<&v1::YaraMatch> for YaraMatch {
    fn from(m: &v1::YaraMatch) -> Self {
        YaraMatch {
            target: m.target.clone(),
            target_offset: m.target_offset,
            rule: m.rule.clone(),
            namespace: m.namespace.clone(),
            tags: m.tags.clone(),
            metadata_json: m.metadata_json.clone(),
            strings: m
                .strings
                .iter()
                .map(|s| YaraString {
                    id: s.id.clone(),
                    offset: s.offset,
                    length: s.length,
                })
                .collect(),
        }
    }
}

impl From<&PiecewiseHash> for v1::PiecewiseHash {
    fn from(p: &PiecewiseHash) -> Self {
        v1::PiecewiseHash {
            offset: p.offset,
            length: p.length,
            blake3: p.blake3.clone(),
            md5: p.md5.clone(),
        }
    }
}

impl From<&v1::PiecewiseHash> for PiecewiseHash {
    fn from(p: &v1::PiecewiseHash) -> Self {
        PiecewiseHash {
            offset: p.offset,
            length: p.length,
            blake3: p.blake3.clone(),
            md5: p.md5.clone(),
        }
    }
}

impl From<&ScannerStat> for v1::ScannerStat {
    fn from(s: &ScannerStat) -> Self {
        v1::ScannerStat {
            scanner: s.scanner.clone(),
            bytes: s.bytes,
            nanos: s.nanos,
            findings: s.findings,
            skipped_bytes: s.skipped_bytes,
        }
    }
}

impl From<&v1::ScannerStat> for ScannerStat {
    fn from(s: &v1::ScannerStat) -> Self {
        ScannerStat {
            scanner: s.scanner.clone(),
            bytes: s.bytes,
            nanos: s.nanos,
            findings: s.findings,
            skipped_bytes: s.skipped_bytes,
        }
    }
}

impl From<&Note> for v1::Note {
    fn from(n: &Note) -> Self {
        v1::Note {
            analysis: n.analysis.clone(),
            message: n.message.clone(),
            offset: n.offset,
        }
    }
}

impl From<&v1::Note> for Note {
    fn from(n: &v1::Note) -> Self {
        Note {
            analysis: n.analysis.clone(),
            message: n.message.clone(),
            offset: n.offset,
        }
    }
}

impl From<&RuleSource> for v1::RuleSource {
    fn from(r: &RuleSource) -> Self {
        v1::RuleSource {
            name: r.name.clone(),
            text: r.text.clone(),
        }
    }
}

impl From<&v1::RuleSource> for RuleSource {
    fn from(r: &v1::RuleSource) -> Self {
        RuleSource {
            name: r.name.clone(),
            text: r.text.clone(),
        }
    }
}

impl From<v1::RuleSource> for RuleSource {
    fn from(r: v1::RuleSource) -> Self {
        RuleSource {
            name: r.name,
            text: r.text,
        }
    }
}

/// Lowercase name of a job state, as `status --json` prints it.
pub fn job_state_name(s: i32) -> &'static str {
    match v1::JobState::try_from(s) {
        Ok(v1::JobState::Queued) => "queued",
        Ok(v1::JobState::Running) => "running",
        Ok(v1::JobState::Completed) => "completed",
        Ok(v1::JobState::Failed) => "failed",
        Ok(v1::JobState::Cancelled) => "cancelled",
        _ => "unknown",
    }
}

/// Parses a job state name (as printed by [`job_state_name`]).
pub fn job_state_from_name(s: &str) -> Option<v1::JobState> {
    Some(match s.to_ascii_lowercase().as_str() {
        "queued" => v1::JobState::Queued,
        "running" => v1::JobState::Running,
        "completed" => v1::JobState::Completed,
        "failed" => v1::JobState::Failed,
        "cancelled" | "canceled" => v1::JobState::Cancelled,
        _ => return None,
    })
}

/// The wire result of a shard task: what one shard's analyses produced.
pub fn shard_result(
    task_id: &str,
    shard_index: u32,
    out: &trawl_core::ShardOutput,
    elapsed_ms: u64,
) -> v1::TaskResult {
    use trawl_core::Blake3Part;
    v1::TaskResult {
        task_id: task_id.to_string(),
        features: out.features.iter().map(Into::into).collect(),
        carved: out.carved.iter().map(Into::into).collect(),
        yara: out.yara.iter().map(Into::into).collect(),
        piecewise: out.piecewise.iter().map(Into::into).collect(),
        blake3: out.blake3.map(|b| match b {
            Blake3Part::ChainingValue(v) => v1::Blake3Part {
                shard_index,
                value: v.to_vec(),
                is_root: false,
            },
            Blake3Part::Root(v) => v1::Blake3Part {
                shard_index,
                value: v.to_vec(),
                is_root: true,
            },
        }),
        stream: None,
        stats: out.stats.iter().map(Into::into).collect(),
        notes: out.notes.iter().map(Into::into).collect(),
        bytes_scanned: out.bytes_scanned,
        elapsed_ms,
        file_hashes: Vec::new(),
    }
}

impl From<&trawl_fs::Content> for v1::FsContent {
    fn from(c: &trawl_fs::Content) -> Self {
        use trawl_fs::Content;
        use v1::fs_content::Kind;
        let runs = |r: &[trawl_fs::Run]| {
            r.iter()
                .map(|r| v1::FsRun {
                    offset: r.offset.unwrap_or(0),
                    length: r.length,
                    sparse: r.offset.is_none(),
                })
                .collect()
        };
        let mut w = v1::FsContent {
            size: c.size(),
            ..Default::default()
        };
        match c {
            Content::None => w.kind = Kind::None as i32,
            Content::Runs { runs: r, .. } => {
                w.kind = Kind::Runs as i32;
                w.runs = runs(r);
            }
            Content::Resident { bytes, offset } => {
                w.kind = Kind::Resident as i32;
                w.resident = bytes.clone();
                w.resident_offset = *offset;
            }
            Content::Lznt1 {
                runs: r,
                cluster_size,
                unit_clusters,
                ..
            } => {
                w.kind = Kind::Lznt1 as i32;
                w.runs = runs(r);
                w.cluster_size = *cluster_size;
                w.unit_clusters = *unit_clusters;
            }
        }
        w
    }
}

impl TryFrom<&v1::FsContent> for trawl_fs::Content {
    type Error = InvalidField;
    fn try_from(w: &v1::FsContent) -> Result<Self, InvalidField> {
        use trawl_fs::{Content, Run};
        use v1::fs_content::Kind;
        let runs = || {
            w.runs
                .iter()
                .map(|r| Run {
                    offset: (!r.sparse).then_some(r.offset),
                    length: r.length,
                })
                .collect()
        };
        Ok(match Kind::try_from(w.kind) {
            Ok(Kind::None) => Content::None,
            Ok(Kind::Runs) => Content::Runs {
                runs: runs(),
                size: w.size,
            },
            Ok(Kind::Resident) => Content::Resident {
                bytes: w.resident.clone(),
                offset: w.resident_offset,
            },
            Ok(Kind::Lznt1) => Content::Lznt1 {
                runs: runs(),
                cluster_size: w.cluster_size,
                unit_clusters: w.unit_clusters,
                size: w.size,
            },
            Err(_) => {
                return Err(invalid(
                    "fs_files.content.kind",
                    format!("unknown kind {}", w.kind),
                ));
            }
        })
    }
}

impl From<&trawl_core::FileHashes> for v1::FileHash {
    fn from(h: &trawl_core::FileHashes) -> Self {
        v1::FileHash {
            index: h.index,
            md5: h.md5.clone(),
            sha1: h.sha1.clone(),
            sha256: h.sha256.clone(),
            error: h.error.clone(),
        }
    }
}

impl From<&v1::FileHash> for trawl_core::FileHashes {
    fn from(h: &v1::FileHash) -> Self {
        trawl_core::FileHashes {
            index: h.index,
            md5: h.md5.clone(),
            sha1: h.sha1.clone(),
            sha256: h.sha256.clone(),
            error: h.error.clone(),
        }
    }
}

fn time_to_wire(t: Option<trawl_core::files::FileTime>) -> Option<v1::FileTime> {
    t.map(|t| v1::FileTime {
        secs: t.secs,
        nanos: t.nanos,
    })
}

fn time_from_wire(t: Option<&v1::FileTime>) -> Option<trawl_core::files::FileTime> {
    t.map(|t| trawl_core::files::FileTime {
        secs: t.secs,
        nanos: t.nanos,
    })
}

fn macb_to_wire(t: &trawl_core::files::MacbTimes) -> v1::MacbTimes {
    v1::MacbTimes {
        mtime: time_to_wire(t.mtime),
        atime: time_to_wire(t.atime),
        ctime: time_to_wire(t.ctime),
        crtime: time_to_wire(t.crtime),
    }
}

fn macb_from_wire(t: &v1::MacbTimes) -> trawl_core::files::MacbTimes {
    trawl_core::files::MacbTimes {
        mtime: time_from_wire(t.mtime.as_ref()),
        atime: time_from_wire(t.atime.as_ref()),
        ctime: time_from_wire(t.ctime.as_ref()),
        crtime: time_from_wire(t.crtime.as_ref()),
    }
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl From<&trawl_core::FileRecord> for v1::FileObject {
    fn from(f: &trawl_core::FileRecord) -> Self {
        let mut file_offset = 0;
        v1::FileObject {
            partition_offset: f.partition_offset,
            fs: f.fs.clone(),
            path: f.path.clone(),
            inode: f.inode,
            kind: f.kind.clone(),
            alloc: f.alloc.clone(),
            size: f.size,
            md5: opt(&f.md5),
            sha1: opt(&f.sha1),
            sha256: opt(&f.sha256),
            times: Some(macb_to_wire(&f.times)),
            fn_times: f.fn_times.as_ref().map(macb_to_wire),
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
            known: opt(&f.known),
            known_set: opt(&f.known_set),
            runs: f
                .runs
                .iter()
                .map(|&(o, l)| {
                    let r = v1::ByteRun {
                        img_offset: o,
                        file_offset,
                        len: l,
                    };
                    file_offset += l;
                    r
                })
                .collect(),
            error: opt(&f.error),
        }
    }
}

impl From<&v1::FileObject> for trawl_core::FileRecord {
    fn from(f: &v1::FileObject) -> Self {
        trawl_core::FileRecord {
            partition_offset: f.partition_offset,
            fs: f.fs.clone(),
            path: f.path.clone(),
            inode: f.inode,
            kind: f.kind.clone(),
            alloc: f.alloc.clone(),
            size: f.size,
            md5: nonempty(&f.md5),
            sha1: nonempty(&f.sha1),
            sha256: nonempty(&f.sha256),
            times: f.times.as_ref().map(macb_from_wire).unwrap_or_default(),
            fn_times: f.fn_times.as_ref().map(macb_from_wire),
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
            known: nonempty(&f.known),
            known_set: nonempty(&f.known_set),
            runs: f.runs.iter().map(|r| (r.img_offset, r.len)).collect(),
            error: nonempty(&f.error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips() {
        let mut spec = JobSpec::new(
            CaseId::new("case-7").unwrap(),
            EvidenceRef::Paths(vec!["/ev/disk.E01".into()]),
            AnalysisSet::all(),
        );
        spec.priority = Priority::High;
        spec.shard_size = 16 << 20;
        spec.carve.max_size.insert("jpg".into(), 1 << 20);
        spec.yara.sources.push(RuleSource {
            name: "a.yar".into(),
            text: "rule a { condition: true }".into(),
        });
        let wire = v1::JobSpec::from(&spec);
        let back = JobSpec::try_from(&wire).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn rule_sources_round_trip() {
        let r = RuleSource {
            name: "b.yar".into(),
            text: "rule b { condition: false }".into(),
        };
        let wire = v1::RuleSource::from(&r);
        assert_eq!(RuleSource::from(&wire), r);
        assert_eq!(RuleSource::from(wire), r);
    }

    #[test]
    fn bad_wire_specs_are_refused() {
        let mut w = v1::JobSpec::from(&JobSpec::new(
            CaseId::new("c").unwrap(),
            EvidenceRef::Paths(vec!["/x".into()]),
            AnalysisSet::parse("hash").unwrap(),
        ));
        w.case_id = String::new();
        assert_eq!(JobSpec::try_from(&w).unwrap_err().field, "spec.case_id");
        w.case_id = "c".into();
        w.analyses = vec![99];
        assert_eq!(JobSpec::try_from(&w).unwrap_err().field, "spec.analyses");
        w.analyses = vec![1];
        w.shard_size = 12345;
        assert_eq!(JobSpec::try_from(&w).unwrap_err().field, "spec");
        w.shard_size = 0;
        w.evidence = Some(v1::EvidenceLocator {
            source: Some(v1::evidence_locator::Source::UploadDigest("zz".into())),
        });
        assert!(JobSpec::try_from(&w).is_err());
        w.evidence = None;
        assert!(JobSpec::try_from(&w).is_err());
        w.evidence = Some(v1::EvidenceLocator {
            source: Some(v1::evidence_locator::Source::Paths(v1::PathList {
                paths: vec![],
            })),
        });
        assert!(JobSpec::try_from(&w).is_err());
        w.priority = 42;
    }

    #[test]
    fn a_shard_result_carries_its_blake3_part_and_counts() {
        let out = trawl_core::ShardOutput {
            blake3: Some(trawl_core::Blake3Part::ChainingValue([7; 32])),
            bytes_scanned: 4096,
            ..Default::default()
        };
        let r = super::shard_result("J000001:s000003", 3, &out, 12);
        assert_eq!(r.task_id, "J000001:s000003");
        let b = r.blake3.expect("blake3 part");
        assert_eq!((b.shard_index, b.is_root, b.value), (3, false, vec![7; 32]));
        assert_eq!((r.bytes_scanned, r.elapsed_ms), (4096, 12));
        let root = trawl_core::ShardOutput {
            blake3: Some(trawl_core::Blake3Part::Root([1; 32])),
            ..Default::default()
        };
        assert!(
            super::shard_result("J1:s0", 0, &root, 0)
                .blake3
                .unwrap()
                .is_root
        );
    }
}
