//! Durable records.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trawl_core::{JobId, JobSpec, Shard, ShardPlan, TaskId, WorkerId};

/// Job lifecycle:
///
/// ```text
///  submit ──► Queued ──(first lease)──► Running ──(all tasks done)──► Completed
///               │                          │
///               │                          ├──(evidence unreadable)──► Failed
///               └──────(cancel)────────────┴──(cancel)──────────────► Cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobState {
    /// Whether the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }
    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// The opened evidence, as the scheduler planned it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceMeta {
    pub path: String,
    pub segments: Vec<String>,
    pub size: u64,
    pub format: String,
    pub stored_md5: Option<String>,
    pub stored_sha1: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub acquisition_errors: Vec<(u64, u64)>,
    pub upload_blake3: Option<String>,
    /// `--carve-scope unallocated`: the image ranges `[start, end)` carved
    /// (each shard task receives those from its start on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carve_space: Option<Vec<(u64, u64)>>,
}

/// A byte range that could not be examined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitationRecord {
    pub start: u64,
    pub end: u64,
    pub task_id: TaskId,
    pub error: String,
    pub attempts: u32,
}

/// Live progress of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub tasks_total: u32,
    pub tasks_done: u32,
    pub tasks_failed: u32,
    pub findings: BTreeMap<String, u64>,
}

/// A job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: JobId,
    /// Submission order (for FIFO within a class and case).
    pub seq: u64,
    pub spec: JobSpec,
    pub submitter: String,
    pub state: JobState,
    pub error: String,
    pub created_ms: i64,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub evidence: Option<EvidenceMeta>,
    pub plan: Option<ShardPlan>,
    pub progress: ProgressRecord,
    pub limitations: Vec<LimitationRecord>,
    /// Versions of the record, for watchers.
    pub version: u64,
    /// The final counts of the merged results, set with the completed
    /// state (`trawl_report::counts`): what every view shows once the job
    /// is complete.
    #[serde(default)]
    pub counts: Option<trawl_core::Counts>,
    /// Progress over time, kept when the job ends: (unix ms, shard bytes
    /// done), one point per finished shard task (at most
    /// [`THROUGHPUT_POINTS`], evenly thinned).
    #[serde(default)]
    pub throughput: Vec<(i64, u64)>,
}

/// The most points a job's stored throughput series keeps.
pub const THROUGHPUT_POINTS: usize = 512;

/// The (time, cumulative bytes) series of finished shard tasks: one point
/// per finish time, thinned evenly to at most [`THROUGHPUT_POINTS`] (the
/// first and last kept), starting at (`started_ms`, 0).
pub fn throughput_series(started_ms: i64, tasks: &[TaskRecord]) -> Vec<(i64, u64)> {
    let mut done: Vec<(i64, u64)> = tasks
        .iter()
        .filter(|t| t.kind == TaskKind::Shard && t.state == TaskState::Done && t.finished_ms > 0)
        .map(|t| (t.finished_ms, t.bytes))
        .collect();
    done.sort_unstable();
    let mut out: Vec<(i64, u64)> = Vec::with_capacity(done.len() + 1);
    if started_ms > 0 {
        out.push((started_ms, 0));
    }
    let mut total = 0u64;
    for (ms, b) in done {
        total += b;
        match out.last_mut() {
            Some(last) if last.0 == ms => last.1 = total,
            _ => out.push((ms.max(out.last().map_or(ms, |l| l.0)), total)),
        }
    }
    if out.len() > THROUGHPUT_POINTS {
        let n = out.len();
        let keep = THROUGHPUT_POINTS;
        out = (0..keep).map(|i| out[i * (n - 1) / (keep - 1)]).collect();
    }
    out
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// One shard: every per-shard analysis in one read.
    Shard,
    /// MD5/SHA-1/SHA-256 of the whole image, one sequential read.
    StreamHash,
    /// YARA rules whose condition needs the whole image.
    YaraWhole,
    /// YARA over carved files.
    YaraCarved,
    /// MD5/SHA-1/SHA-256 of a group of file-system files.
    FsHash,
}

/// Task lifecycle:
///
/// ```text
///  Waiting ──(dependencies done)──► Queued ──lease──► Leased ──report ok──► Done
///                                     ▲                 │
///                                     └─(lease expired, │error; attempts < max)
///                                                       └─(attempts = max)──► Quarantined
///  any unfinished state ──(job cancelled)──► Cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Waiting,
    Queued,
    Leased,
    Done,
    Quarantined,
    Cancelled,
}

impl TaskState {
    /// Whether the task will not run again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Done | TaskState::Quarantined | TaskState::Cancelled
        )
    }
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task_id: TaskId,
    pub job_id: JobId,
    pub kind: TaskKind,
    pub shard: Option<Shard>,
    /// Index within the job, for ordering.
    pub order: u32,
    pub state: TaskState,
    pub attempts: u32,
    pub worker: Option<WorkerId>,
    pub lease_deadline_ms: i64,
    /// The current lease's secret (empty when not leased): reports must
    /// carry it.
    #[serde(default)]
    pub lease_token: String,
    pub errors: Vec<String>,
    /// Workers this task failed on (retried elsewhere when possible).
    pub failed_on: Vec<WorkerId>,
    /// Bytes this task covers (progress accounting).
    pub bytes: u64,
    /// Scheduler-wide order of the first lease (0: never leased).
    #[serde(default)]
    pub first_lease_seq: u64,
    /// Findings per kind of the accepted result (job progress is rebuilt
    /// from the tasks, so it need not be written on every report).
    #[serde(default)]
    pub findings: BTreeMap<String, u64>,
    /// YARA_WHOLE: (namespace, rule) with pattern hits in some shard.
    #[serde(default)]
    pub yara_candidates: Vec<(String, String)>,
    /// YARA_WHOLE: the candidates whose pattern matches every shard listed.
    #[serde(default)]
    pub yara_spans_known: Vec<(String, String)>,
    /// YARA_WHOLE: `[from, to)` regions around those matches
    /// (`trawl_analyzers::yara::hit_windows`).
    #[serde(default)]
    pub yara_windows: Vec<(u64, u64)>,
    /// YARA_CARVED: the carved files to scan.
    #[serde(default)]
    pub carved: Vec<trawl_core::CarvedFile>,
    /// When the accepted result arrived (unix ms; 0 until done).
    #[serde(default)]
    pub finished_ms: i64,
    /// FS_HASH: the files to hash, by index in the job's listing, with
    /// where their content is.
    #[serde(default)]
    pub fs_files: Vec<(u32, trawl_fs::Content)>,
    /// FS_HASH: each file's (partition offset, path), in the order of
    /// `fs_files`, for the per-file YARA scan's targets and external
    /// variables (empty in tasks planned before it).
    #[serde(default)]
    pub fs_names: Vec<(u64, String)>,
}

/// An upload in the content-addressed evidence store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    pub blake3: String,
    pub size: u64,
    pub name: String,
    pub case_id: String,
    pub uploader: String,
    pub received: u64,
    pub complete: bool,
    pub created_ms: i64,
    pub completed_ms: i64,
    /// Other cases whose uploaders proved they hold the same bytes (a
    /// deduplicated upload, verified in full).
    #[serde(default)]
    pub other_cases: Vec<String>,
}

impl EvidenceRecord {
    /// Whether jobs of `case` may use this evidence.
    pub fn belongs_to(&self, case: &str) -> bool {
        self.case_id == case || self.other_cases.iter().any(|c| c == case)
    }
}

/// A diagnostic of a rule set compilation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleDiagnosticRecord {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub severity: String,
    pub message: String,
    pub rule: String,
}

/// A registered YARA rule set (sources: workers compile them themselves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSetRecord {
    pub name: String,
    pub digest: String,
    pub sources: Vec<(String, String)>,
    pub rules: u32,
    pub rejected_files: u32,
    pub diagnostics: Vec<RuleDiagnosticRecord>,
    pub strict: bool,
    pub created_ms: i64,
    pub owner: String,
}

/// A worker of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    pub worker_id: WorkerId,
    pub hostname: String,
    pub slots: u32,
    pub memory_bytes: u64,
    pub evidence_roots: Vec<String>,
    pub version: String,
    pub registered_ms: i64,
    pub last_heartbeat_ms: i64,
    pub tasks_done: u64,
    pub bytes_done: u64,
    /// The site label the worker was started with (`--site`).
    #[serde(default)]
    pub site: String,
    /// Logical CPUs of the worker's machine.
    #[serde(default)]
    pub cores: u32,
    /// Available memory at the last heartbeat.
    #[serde(default)]
    pub memory_free_bytes: u64,
    /// What the worker can do beyond the common analyses: `yara`,
    /// `gpu:NAME`, evidence formats (`format:ewf`), and the rule sets it
    /// has compiled (`ruleset:DIGEST`, set by the scheduler).
    #[serde(default)]
    pub capabilities: Vec<String>,
}
