//! Wire forms (`trawl.v1`) of the store's records.
//!
//! These conversions would sit in `trawl_proto::convert` with the model's,
//! but `trawl-store` depends on `trawl-proto` (it stores task results and
//! merged pages as protobuf), so `trawl-proto` cannot see these records:
//! they live here, next to the records, as `From`/`TryFrom` impls.

use crate::{
    AuditEntry, EvidenceMeta, JobRecord, JobState, LimitationRecord, RuleSetRecord, TaskKind,
    TaskRecord, WorkerRecord, now_ms,
};
use trawl_proto::v1;

impl From<JobState> for v1::JobState {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Queued => v1::JobState::Queued,
            JobState::Running => v1::JobState::Running,
            JobState::Completed => v1::JobState::Completed,
            JobState::Failed => v1::JobState::Failed,
            JobState::Cancelled => v1::JobState::Cancelled,
        }
    }
}

/// A wire job state with no stored counterpart (`UNSPECIFIED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnspecifiedState;

impl TryFrom<v1::JobState> for JobState {
    type Error = UnspecifiedState;

    fn try_from(s: v1::JobState) -> Result<Self, UnspecifiedState> {
        Ok(match s {
            v1::JobState::Unspecified => return Err(UnspecifiedState),
            v1::JobState::Queued => JobState::Queued,
            v1::JobState::Running => JobState::Running,
            v1::JobState::Completed => JobState::Completed,
            v1::JobState::Failed => JobState::Failed,
            v1::JobState::Cancelled => JobState::Cancelled,
        })
    }
}

impl From<TaskKind> for v1::TaskKind {
    fn from(k: TaskKind) -> Self {
        match k {
            TaskKind::Shard => v1::TaskKind::Shard,
            TaskKind::StreamHash => v1::TaskKind::StreamHash,
            TaskKind::YaraWhole => v1::TaskKind::YaraWhole,
            TaskKind::YaraCarved => v1::TaskKind::YaraCarved,
            TaskKind::FsHash => v1::TaskKind::FsHash,
        }
    }
}

/// A wire task kind with no stored counterpart (`UNSPECIFIED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnspecifiedKind;

impl TryFrom<v1::TaskKind> for TaskKind {
    type Error = UnspecifiedKind;

    fn try_from(k: v1::TaskKind) -> Result<Self, UnspecifiedKind> {
        Ok(match k {
            v1::TaskKind::Unspecified => return Err(UnspecifiedKind),
            v1::TaskKind::Shard => TaskKind::Shard,
            v1::TaskKind::StreamHash => TaskKind::StreamHash,
            v1::TaskKind::YaraWhole => TaskKind::YaraWhole,
            v1::TaskKind::YaraCarved => TaskKind::YaraCarved,
            v1::TaskKind::FsHash => TaskKind::FsHash,
        })
    }
}

impl From<&EvidenceMeta> for v1::EvidenceInfo {
    fn from(m: &EvidenceMeta) -> Self {
        v1::EvidenceInfo {
            path: m.path.clone(),
            size: m.size,
            format: match m.format.as_str() {
                "raw" => v1::EvidenceFormat::Raw,
                "split-raw" => v1::EvidenceFormat::SplitRaw,
                "ewf" => v1::EvidenceFormat::Ewf,
                "qcow2" => v1::EvidenceFormat::Qcow2,
                "vmdk" => v1::EvidenceFormat::Vmdk,
                "vhd" => v1::EvidenceFormat::Vhd,
                "vhdx" => v1::EvidenceFormat::Vhdx,
                _ => v1::EvidenceFormat::Unspecified,
            } as i32,
            segments: m.segments.clone(),
            stored_md5: m.stored_md5.clone().unwrap_or_default(),
            stored_sha1: m.stored_sha1.clone().unwrap_or_default(),
            metadata: m.metadata.clone().into_iter().collect(),
            upload_digest: m.upload_blake3.clone().unwrap_or_default(),
        }
    }
}

impl From<&LimitationRecord> for v1::Limitation {
    fn from(l: &LimitationRecord) -> Self {
        v1::Limitation {
            start: l.start,
            end: l.end,
            task_id: l.task_id.to_string(),
            error: l.error.clone(),
            attempts: l.attempts,
        }
    }
}

/// A limitation as the wire carries it; its task id is validated.
impl TryFrom<&v1::Limitation> for LimitationRecord {
    type Error = trawl_core::CoreError;

    fn try_from(l: &v1::Limitation) -> Result<Self, trawl_core::CoreError> {
        Ok(LimitationRecord {
            start: l.start,
            end: l.end,
            task_id: trawl_core::TaskId::new(l.task_id.as_str())?,
            error: l.error.clone(),
            attempts: l.attempts,
        })
    }
}

/// The wire form of a job as of `now` (milliseconds since the epoch):
/// throughput and ETA are computed from the job's start to `now` (or to its
/// end when it has finished).
pub fn job_at(j: &JobRecord, now: i64) -> v1::Job {
    let p = &j.progress;
    let elapsed = if j.started_ms > 0 {
        let end = if j.finished_ms > 0 {
            j.finished_ms
        } else {
            now
        };
        (end - j.started_ms).max(1) as f64 / 1000.0
    } else {
        0.0
    };
    let throughput = if elapsed > 0.0 {
        p.bytes_done as f64 / elapsed
    } else {
        0.0
    };
    let eta = if throughput > 0.0 && !j.state.is_final() {
        p.bytes_total.saturating_sub(p.bytes_done) as f64 / throughput
    } else {
        0.0
    };
    v1::Job {
        job_id: j.job_id.to_string(),
        spec: Some(v1::JobSpec::from(&j.spec)),
        state: v1::JobState::from(j.state) as i32,
        progress: Some(v1::Progress {
            bytes_total: p.bytes_total,
            bytes_done: p.bytes_done,
            tasks_total: p.tasks_total,
            tasks_done: p.tasks_done,
            tasks_running: 0,
            tasks_failed: p.tasks_failed,
            findings: p.findings.clone().into_iter().collect(),
            throughput_bps: throughput,
            eta_seconds: eta,
            started_unix_ms: j.started_ms,
            updated_unix_ms: now,
            findings_final: j.counts.is_some(),
            carved_per_type: j
                .counts
                .as_ref()
                .map(|c| c.carve.per_type.clone().into_iter().collect())
                .unwrap_or_default(),
        }),
        evidence: j.evidence.as_ref().map(Into::into),
        error: j.error.clone(),
        submitter: j.submitter.clone(),
        created_unix_ms: j.created_ms,
        finished_unix_ms: j.finished_ms,
        limitations: j.limitations.iter().map(Into::into).collect(),
        seq: j.version,
    }
}

/// The wire form of a job, with live progress as of now.
impl From<&JobRecord> for v1::Job {
    fn from(j: &JobRecord) -> Self {
        job_at(j, now_ms())
    }
}

/// A task as the worker holding its lease receives it: the task, its job's
/// specification and the evidence facts. (The scheduler's `Lease` bundles
/// the three; it is scheduler-internal, so the parts are taken here.)
pub fn leased_task(
    t: &TaskRecord,
    spec: &trawl_core::JobSpec,
    evidence: &EvidenceMeta,
) -> v1::Task {
    let spans_known: std::collections::HashSet<&(String, String)> =
        t.yara_spans_known.iter().collect();
    v1::Task {
        task_id: t.task_id.to_string(),
        job_id: t.job_id.to_string(),
        kind: v1::TaskKind::from(t.kind) as i32,
        shard: t.shard.map(|s| v1::ShardRange {
            index: s.index,
            start: s.start,
            end: s.end,
            scan_end: s.scan_end,
            count: 0,
        }),
        spec: Some(v1::JobSpec::from(spec)),
        evidence: Some(evidence.into()),
        attempt: t.attempts,
        lease_deadline_unix_ms: t.lease_deadline_ms,
        carved: t.carved.iter().map(Into::into).collect(),
        yara_candidates: t
            .yara_candidates
            .iter()
            .map(|(namespace, rule)| v1::YaraRuleRef {
                namespace: namespace.clone(),
                rule: rule.clone(),
                spans_known: spans_known.contains(&(namespace.clone(), rule.clone())),
            })
            .collect(),
        yara_windows: t
            .yara_windows
            .iter()
            .map(|&(start, end)| v1::ByteRange { start, end })
            .collect(),
        lease_token: t.lease_token.clone(),
        fs_files: t
            .fs_files
            .iter()
            .enumerate()
            .map(|(i, (index, c))| {
                let (partition_offset, path) = t.fs_names.get(i).cloned().unwrap_or_default();
                v1::FsFile {
                    index: *index,
                    content: Some(c.into()),
                    partition_offset,
                    path,
                }
            })
            .collect(),
        carve_restricted: t.kind == TaskKind::Shard && evidence.carve_space.is_some(),
        carve_space: match (t.kind, t.shard, &evidence.carve_space) {
            (TaskKind::Shard, Some(s), Some(space)) => {
                let from = space.partition_point(|r| r.1 <= s.start);
                space[from..]
                    .iter()
                    .map(|&(start, end)| v1::ByteRange {
                        start: start.max(s.start),
                        end,
                    })
                    .collect()
            }
            _ => Vec::new(),
        },
    }
}

/// A task's status as `ListTasks` shows it.
impl From<TaskRecord> for v1::TaskStatus {
    fn from(t: TaskRecord) -> Self {
        v1::TaskStatus {
            task_id: t.task_id.into(),
            kind: format!("{:?}", t.kind).to_lowercase(),
            state: format!("{:?}", t.state).to_lowercase(),
            attempts: t.attempts,
            worker: t.worker.map(String::from).unwrap_or_default(),
            errors: t.errors,
            first_lease_seq: t.first_lease_seq,
            start: t.shard.map(|s| s.start).unwrap_or(0),
            end: t.shard.map(|s| s.end).unwrap_or(t.bytes),
        }
    }
}

/// A rule set's facts (name, digest, counts, diagnostics), without its
/// sources.
impl From<&RuleSetRecord> for v1::RuleSetInfo {
    fn from(r: &RuleSetRecord) -> Self {
        v1::RuleSetInfo {
            name: r.name.clone(),
            digest: r.digest.clone(),
            files: r.sources.len() as u32,
            rules: r.rules,
            diagnostics: r
                .diagnostics
                .iter()
                .map(|d| v1::RuleDiagnostic {
                    file: d.file.clone(),
                    line: d.line,
                    column: d.column,
                    severity: d.severity.clone(),
                    message: d.message.clone(),
                    rule: d.rule.clone(),
                })
                .collect(),
            created_unix_ms: r.created_ms,
            rejected_files: r.rejected_files,
        }
    }
}

/// A rule set with its sources.
impl From<&RuleSetRecord> for v1::RuleSet {
    fn from(r: &RuleSetRecord) -> Self {
        v1::RuleSet {
            info: Some(r.into()),
            sources: r
                .sources
                .iter()
                .map(|(n, t)| v1::RuleSource {
                    name: n.clone(),
                    text: t.clone(),
                })
                .collect(),
        }
    }
}

/// A worker as it registers: what it says of itself. The scheduler's own
/// fields (registration and heartbeat times, counters) start at zero. The
/// worker id must be set and valid (a worker asking for one is given it by
/// the scheduler before this conversion).
impl TryFrom<v1::WorkerInfo> for WorkerRecord {
    type Error = trawl_core::CoreError;

    fn try_from(w: v1::WorkerInfo) -> Result<Self, trawl_core::CoreError> {
        Ok(WorkerRecord {
            worker_id: trawl_core::WorkerId::new(w.worker_id)?,
            hostname: w.hostname,
            slots: w.slots,
            memory_bytes: w.memory_bytes,
            evidence_roots: w.evidence_roots,
            version: w.version,
            registered_ms: 0,
            last_heartbeat_ms: 0,
            tasks_done: 0,
            bytes_done: 0,
            site: w.site,
            cores: w.cores,
            memory_free_bytes: w.memory_free_bytes,
            capabilities: w.capabilities,
        })
    }
}

/// A worker of the pool as `ListWorkers` shows it: its record, the slots
/// it has busy and its state (`up`, `lost`), speaking this protocol.
pub fn worker_info(w: WorkerRecord, busy_slots: u32, state: &str) -> v1::WorkerInfo {
    v1::WorkerInfo {
        worker_id: w.worker_id.into(),
        hostname: w.hostname,
        slots: w.slots,
        memory_bytes: w.memory_bytes,
        evidence_roots: w.evidence_roots,
        version: w.version,
        protocol: trawl_proto::PROTOCOL_VERSION as i32,
        busy_slots,
        last_heartbeat_unix_ms: w.last_heartbeat_ms,
        state: state.into(),
        tasks_done: w.tasks_done,
        bytes_done: w.bytes_done,
        site: w.site,
        cores: w.cores,
        memory_free_bytes: w.memory_free_bytes,
        capabilities: w.capabilities,
    }
}

/// An audit entry on the wire.
impl From<AuditEntry> for v1::AuditEntry {
    fn from(e: AuditEntry) -> Self {
        v1::AuditEntry {
            seq: e.seq,
            time_unix_ms: e.time_ms,
            actor: e.actor,
            role: e.role,
            action: e.action,
            target: e.target,
            case_id: e.case_id,
            from: e.from,
            detail: e.detail,
            prev_hash: e.prev_hash,
            hash: e.hash,
            mac: e.mac,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_round_trip() {
        for s in [
            JobState::Queued,
            JobState::Running,
            JobState::Completed,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            assert_eq!(JobState::try_from(v1::JobState::from(s)), Ok(s));
        }
        assert_eq!(
            JobState::try_from(v1::JobState::Unspecified),
            Err(UnspecifiedState)
        );
    }

    #[test]
    fn task_kinds_round_trip() {
        for k in [
            TaskKind::Shard,
            TaskKind::StreamHash,
            TaskKind::YaraWhole,
            TaskKind::YaraCarved,
            TaskKind::FsHash,
        ] {
            assert_eq!(TaskKind::try_from(v1::TaskKind::from(k)), Ok(k));
        }
        assert!(TaskKind::try_from(v1::TaskKind::Unspecified).is_err());
    }

    #[test]
    fn limitations_round_trip() {
        let l = LimitationRecord {
            start: 10,
            end: 20,
            task_id: trawl_core::TaskId::new("J000001-S0001").unwrap(),
            error: "read error".into(),
            attempts: 3,
        };
        assert_eq!(
            LimitationRecord::try_from(&v1::Limitation::from(&l)).unwrap(),
            l
        );
        let bad = v1::Limitation {
            task_id: "../x".into(),
            ..v1::Limitation::from(&l)
        };
        assert!(LimitationRecord::try_from(&bad).is_err());
    }

    #[test]
    fn workers_round_trip_what_they_register() {
        let w = WorkerRecord {
            worker_id: trawl_core::WorkerId::new("w1@host").unwrap(),
            hostname: "host".into(),
            slots: 4,
            memory_bytes: 8 << 30,
            evidence_roots: vec!["/ev".into()],
            version: "0.1.0".into(),
            registered_ms: 0,
            last_heartbeat_ms: 0,
            tasks_done: 0,
            bytes_done: 0,
            site: "lab".into(),
            cores: 8,
            memory_free_bytes: 1 << 30,
            capabilities: vec!["yara".into()],
        };
        let wire = worker_info(w.clone(), 2, "up");
        assert_eq!(
            (wire.busy_slots, wire.state.as_str(), wire.protocol),
            (2, "up", trawl_proto::PROTOCOL_VERSION as i32)
        );
        assert_eq!(WorkerRecord::try_from(wire.clone()).unwrap(), w);
        let unnamed = v1::WorkerInfo {
            worker_id: String::new(),
            ..wire
        };
        assert!(WorkerRecord::try_from(unnamed).is_err());
    }

    #[test]
    fn evidence_formats_and_jobs() {
        let mut m = EvidenceMeta {
            path: "/ev/a.E01".into(),
            segments: vec!["/ev/a.E01".into()],
            size: 1 << 20,
            format: "ewf".into(),
            stored_md5: Some("00".into()),
            stored_sha1: None,
            metadata: [("examiner".to_string(), "x".to_string())].into(),
            acquisition_errors: Vec::new(),
            upload_blake3: None,
            carve_space: None,
        };
        let e = v1::EvidenceInfo::from(&m);
        assert_eq!(e.format, v1::EvidenceFormat::Ewf as i32);
        assert_eq!((e.stored_md5.as_str(), e.stored_sha1.as_str()), ("00", ""));
        m.format = "something".into();
        assert_eq!(
            v1::EvidenceInfo::from(&m).format,
            v1::EvidenceFormat::Unspecified as i32
        );
    }

    #[test]
    fn a_running_job_has_its_rate_and_eta_as_of_now() {
        use trawl_core::{AnalysisSet, CaseId, spec::EvidenceRef};
        let spec = trawl_core::JobSpec::new(
            CaseId::new("C1").unwrap(),
            EvidenceRef::Paths(vec!["/ev/a.dd".into()]),
            AnalysisSet::all(),
        );
        let mut j = JobRecord {
            job_id: trawl_core::JobId::new("J000001").unwrap(),
            seq: 1,
            spec: spec.clone(),
            submitter: "ivy".into(),
            state: JobState::Running,
            error: String::new(),
            created_ms: 1_000,
            started_ms: 2_000,
            finished_ms: 0,
            evidence: None,
            plan: None,
            progress: crate::ProgressRecord {
                bytes_total: 3_000,
                bytes_done: 1_000,
                tasks_total: 3,
                tasks_done: 1,
                tasks_failed: 0,
                findings: Default::default(),
            },
            limitations: Vec::new(),
            version: 7,
            counts: None,
            throughput: Vec::new(),
        };
        let w = job_at(&j, 3_000);
        let p = w.progress.as_ref().unwrap();
        assert_eq!((p.throughput_bps, p.eta_seconds), (1_000.0, 2.0));
        assert_eq!(w.state, v1::JobState::Running as i32);
        assert_eq!((w.seq, w.created_unix_ms), (7, 1_000));
        assert_eq!(
            trawl_core::JobSpec::try_from(w.spec.as_ref().unwrap()).unwrap(),
            spec
        );
        j.state = JobState::Completed;
        j.finished_ms = 4_000;
        let p = job_at(&j, 10_000).progress.unwrap();
        assert_eq!((p.throughput_bps, p.eta_seconds), (500.0, 0.0));
    }
}
