//! Durable state of a scheduler, in sled, one tree per keyspace:
//!
//! | tree       | key                 | value                              |
//! |------------|---------------------|------------------------------------|
//! | `jobs`     | job id              | [`JobRecord`] (JSON)               |
//! | `tasks`    | task id             | [`TaskRecord`] (JSON)              |
//! | `results`  | task id             | `trawl.v1.TaskResult` (protobuf)   |
//! | `merged`   | job id              | `trawl.v1.ResultsPage` (protobuf)  |
//! | `listings` | job id              | `trawl_core::FilesListing` (JSON)  |
//! | `evidence` | BLAKE3 hex          | [`EvidenceRecord`] (JSON)          |
//! | `rulesets` | name                | [`RuleSetRecord`] (JSON)           |
//! | `workers`  | worker id           | [`WorkerRecord`] (JSON)            |
//! | `audit`    | sequence (u64 BE)   | [`AuditEntry`] (JSON, hash-chained)|
//! | `meta`     | name                | counters                           |
//!
//! Beside the database, `audit.anchor` records the audit chain's head after
//! each flush that made new entries durable ([`seal`]); a store opened with
//! [`Store::open_anchored`] keeps it up to date.
//!
//! sled is the truth: the scheduler rebuilds its in-memory queues from it on
//! start, so a restart (or `kill -9`) loses nothing that was flushed, and a
//! task whose result was not flushed simply runs again (results are keyed by
//! task id, so a rerun never duplicates findings).

pub mod archive;
mod audit;
mod records;
pub mod seal;
pub mod wire;

pub use audit::{
    AuditEntry, AuditError, AuditLog, MAX_DETAIL_BYTES, MAX_FIELD_BYTES, NewAuditEntry, Verified,
    cap_field, now_ms,
};
pub use records::*;
pub use seal::{ANCHOR_FILE, Anchor, AnchorWriter, AuditKey};

use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use trawl_proto::v1;

/// How often the anchoring thread records a new audit head.
const ANCHOR_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database: {0}")]
    Sled(#[from] sled::Error),
    #[error("state database: corrupt {tree} record {key}: {message}")]
    Corrupt {
        tree: &'static str,
        key: String,
        message: String,
    },
    #[error("state database: {0}")]
    Other(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl StoreError {
    /// The database's own checks found damaged data (not an I/O or lock
    /// failure).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            StoreError::Sled(sled::Error::Corruption { .. } | sled::Error::ReportableBug(_))
        )
    }
}

/// Keeps the anchor file in step with the audit trail: after a flush of the
/// database, the head it made durable is appended to the anchor (so the
/// anchor never names an entry a crash could lose).
#[derive(Debug)]
struct Anchoring {
    db: sled::Db,
    audit: AuditLog,
    writer: Mutex<AnchorWriter>,
    path: PathBuf,
}

impl Anchoring {
    /// Flushes the database and anchors the head, if it moved.
    fn tick(&self) -> Result<(), StoreError> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let (seq, hash) = self.audit.head()?;
        if seq <= w.last_seq {
            return Ok(());
        }
        self.db.flush()?;
        w.anchor(seq, &hash)?;
        Ok(())
    }

    /// Anchors `head`, which a flush that started after it was read made
    /// durable.
    fn anchor(&self, (seq, hash): (u64, String)) -> Result<(), StoreError> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.anchor(seq, &hash)?;
        Ok(())
    }
}

impl Drop for Anchoring {
    fn drop(&mut self) {
        if let Err(e) = self.tick() {
            tracing::error!(error = %e, "anchoring the audit trail at close");
        }
    }
}

/// The scheduler's state database.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    jobs: sled::Tree,
    tasks: sled::Tree,
    results: sled::Tree,
    merged: sled::Tree,
    listings: sled::Tree,
    evidence: sled::Tree,
    rulesets: sled::Tree,
    workers: sled::Tree,
    meta: sled::Tree,
    audit: AuditLog,
    /// A throw-away database: flushing it buys nothing.
    ephemeral: bool,
    /// The audit anchor being kept (a store opened with `open_anchored`).
    anchoring: Option<Arc<Anchoring>>,
    /// The data directory (archives live under it); `None`: temporary.
    dir: Option<PathBuf>,
    /// The last archive read ([`Store::archived`]).
    last_archive: Arc<Mutex<Option<LastArchive>>>,
}

/// A job id and its archive, decoded.
type LastArchive = (String, Arc<archive::ArchiveContents>);

/// sled's page cache (sled's own default is 1 GiB): the hot state is the
/// scheduler's memory; sled serves it writes and the reads of ended jobs.
pub const CACHE_BYTES: u64 = 128 << 20;

fn decode<T: DeserializeOwned>(tree: &'static str, key: &[u8], v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        tree,
        key: String::from_utf8_lossy(key).into_owned(),
        message: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Other(e.to_string()))
}

impl Store {
    /// Opens (or creates) the database under `dir`.
    ///
    /// # Errors
    /// The directory cannot be created or the database is locked/corrupt.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Other(format!("{}: {e}", dir.display())))?;
        let db = sled::Config::new()
            .path(dir.join("state.sled"))
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(200))
            .open()?;
        Self::from_db(db, false, Some(dir.to_path_buf()))
    }

    /// A throw-away in-memory database (embedded scans, tests).
    ///
    /// # Errors
    /// sled failures.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?, true, None)
    }

    /// The database itself, for the keyspaces other crates own and
    /// encode (the lab's indicator index, `trawl-intel`).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn from_db(db: sled::Db, ephemeral: bool, dir: Option<PathBuf>) -> Result<Self, StoreError> {
        Ok(Self {
            jobs: db.open_tree("jobs")?,
            tasks: db.open_tree("tasks")?,
            results: db.open_tree("results")?,
            merged: db.open_tree("merged")?,
            listings: db.open_tree("listings")?,
            evidence: db.open_tree("evidence")?,
            rulesets: db.open_tree("rulesets")?,
            workers: db.open_tree("workers")?,
            meta: db.open_tree("meta")?,
            audit: AuditLog::new(db.open_tree("audit")?),
            db,
            ephemeral,
            anchoring: None,
            dir,
            last_archive: Arc::new(Mutex::new(None)),
        })
    }

    /// Opens the database under `dir` and keeps its audit trail anchored in
    /// `dir/audit.anchor`: with `key`, new entries are MACed and the anchor
    /// is keyed. A trail with no anchor yet gets one: from its start when it
    /// is empty; at its current head when it is not keyed (a scheduler that
    /// was never initialised). The anchor's last record must name an entry
    /// the store still has, with the same hash.
    ///
    /// # Errors
    /// As [`Store::open`]; `Audit(Broken)` when the store no longer matches
    /// its anchor (entries cut off or rewritten); `Audit(Key)` when the
    /// anchor is keyed and `key` is `None` (or the other way round), or a
    /// keyed trail with entries has no anchor.
    pub fn open_anchored(dir: &Path, key: Option<AuditKey>) -> Result<Self, StoreError> {
        let mut s = Self::open(dir)?;
        let path = dir.join(ANCHOR_FILE);
        let head = s.audit.head()?;
        let writer = if !path.exists() {
            if head.0 > 0 && key.is_some() {
                return Err(AuditError::Key(format!(
                    "{}: the audit trail has {} entries but no anchor {}: it was deleted, or this data directory predates anchoring (then check it with `trawl audit verify --data {}` and anchor it with `trawl-scheduler audit seal --data {}`)",
                    dir.display(),
                    head.0,
                    path.display(),
                    dir.display(),
                    dir.display()
                ))
                .into());
            }
            if head.0 > 0 {
                tracing::warn!(
                    entries = head.0,
                    anchor = %path.display(),
                    "the audit trail had no anchor: anchored from its current head on"
                );
            }
            AnchorWriter::create(&path, key.clone(), head.0, &head.1)?
        } else {
            let anchor = Anchor::read(&path)?;
            match (&key, &anchor.key_id) {
                (None, Some(id)) => {
                    return Err(AuditError::Key(format!(
                        "the audit trail of {} is keyed (anchor {} names key {id}) but no audit key was given",
                        dir.display(),
                        path.display()
                    ))
                    .into());
                }
                (Some(_), None) => {
                    return Err(AuditError::Key(format!(
                        "the audit trail of {} is not keyed (anchor {}) but an audit key was given: anchor it with the key first (`trawl-scheduler audit seal --data {}`)",
                        dir.display(),
                        path.display(),
                        dir.display()
                    ))
                    .into());
                }
                _ => {}
            }
            anchor.check(key.as_ref())?;
            let last = anchor.last();
            let have = if last.seq == 0 {
                Some(audit::GENESIS.to_string())
            } else {
                s.audit
                    .page(last.seq, 1, usize::MAX, "")?
                    .0
                    .into_iter()
                    .next()
                    .filter(|e| e.seq == last.seq)
                    .map(|e| e.hash)
            };
            match have {
                None => {
                    return Err(AuditError::Broken {
                        seq: head.0 + 1,
                        problem: format!(
                            "missing: the trail ends at entry {} but its anchor ({} line {}) records entry {}: entries were cut off the end, or the database was replaced by an older copy; preserve {} as it is and run `trawl audit verify --data {}`",
                            head.0,
                            path.display(),
                            last.line,
                            last.seq,
                            dir.display(),
                            dir.display()
                        ),
                    }
                    .into());
                }
                Some(h) if h != last.hash => {
                    return Err(AuditError::Broken {
                        seq: last.seq,
                        problem: format!(
                            "differs from the hash its anchor ({} line {}) recorded: the trail was rewritten; preserve {} as it is and run `trawl audit verify --data {}`",
                            path.display(),
                            last.line,
                            dir.display(),
                            dir.display()
                        ),
                    }
                    .into());
                }
                Some(_) => {}
            }
            AnchorWriter::open(&path, key.clone(), &anchor)?
        };
        s.audit.set_key(key);
        let a = Arc::new(Anchoring {
            db: s.db.clone(),
            audit: s.audit.clone(),
            writer: Mutex::new(writer),
            path,
        });
        let weak: Weak<Anchoring> = Arc::downgrade(&a);
        std::thread::Builder::new()
            .name("audit-anchor".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(ANCHOR_EVERY);
                    let Some(a) = weak.upgrade() else { break };
                    if let Err(e) = a.tick() {
                        tracing::error!(error = %e, "anchoring the audit trail");
                    }
                }
            })
            .map_err(|e| StoreError::Other(format!("starting the audit anchor thread: {e}")))?;
        s.anchoring = Some(a);
        Ok(s)
    }

    /// The anchor file and key of a store opened with
    /// [`Store::open_anchored`].
    pub fn anchoring(&self) -> Option<(&Path, Option<&AuditKey>)> {
        self.anchoring.as_ref().map(|a| {
            (
                a.path.as_path(),
                // The key lives in the writer; the audit log has a copy.
                self.audit.key(),
            )
        })
    }

    /// Makes every write so far durable.
    ///
    /// # Errors
    /// I/O failures.
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.ephemeral {
            return Ok(());
        }
        let head = match &self.anchoring {
            Some(_) => Some(self.audit.head()?),
            None => None,
        };
        self.db.flush()?;
        if let (Some(a), Some(h)) = (&self.anchoring, head) {
            a.anchor(h)?;
        }
        Ok(())
    }

    /// Makes every write so far durable, without blocking the runtime.
    ///
    /// # Errors
    /// I/O failures.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        if self.ephemeral {
            return Ok(());
        }
        let head = match &self.anchoring {
            Some(_) => Some(self.audit.head()?),
            None => None,
        };
        // On a runtime thread of its own, not through sled's
        // `flush_async`: that runs the flush on sled's small I/O pool, the
        // pool that also writes the log buffers the flush waits for; a
        // handful of concurrent submissions (each flushing) filled the pool
        // with waiting flushes and nothing wrote the buffers: the scheduler
        // hung (seen with 8 jobs submitted at once).
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Other(format!("flushing the state database: {e}")))??;
        if let (Some(a), Some(h)) = (&self.anchoring, head) {
            a.anchor(h)?;
        }
        Ok(())
    }

    /// The next value of a named counter (starting at 1), durable.
    ///
    /// # Errors
    /// sled failures.
    pub fn next_id(&self, name: &str) -> Result<u64, StoreError> {
        let v = self.meta.update_and_fetch(name, |old| {
            let n = old
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        Ok(v.and_then(|b| b.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    /// A named value of the `meta` tree.
    ///
    /// # Errors
    /// sled failures.
    pub fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(name)?.map(|v| v.to_vec()))
    }

    /// Sets a named value of the `meta` tree.
    ///
    /// # Errors
    /// sled failures.
    pub fn meta_put(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(name, value)?;
        Ok(())
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    // ---- jobs ----

    /// Writes a job's file-system listing (planned with the job).
    ///
    /// # Errors
    /// sled failures.
    pub fn put_listing(
        &self,
        job_id: &str,
        l: &trawl_core::FilesListing,
    ) -> Result<(), StoreError> {
        self.listings.insert(job_id.as_bytes(), encode(l)?)?;
        Ok(())
    }

    /// A job's file-system listing, if it has one.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn listing(&self, job_id: &str) -> Result<Option<trawl_core::FilesListing>, StoreError> {
        self.listings
            .get(job_id.as_bytes())?
            .map(|v| decode("listings", job_id.as_bytes(), &v))
            .transpose()
    }

    /// Writes a job record.
    ///
    /// # Errors
    /// sled failures.
    pub fn put_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.jobs.insert(job.job_id.as_bytes(), encode(job)?)?;
        Ok(())
    }

    /// Reads a job record.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.jobs
            .get(job_id.as_bytes())?
            .map(|v| decode("jobs", job_id.as_bytes(), &v))
            .transpose()
    }

    /// Every job record.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.jobs
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode("jobs", &k, &v)
            })
            .collect()
    }

    // ---- tasks ----

    /// Writes task records in one batch (recovered all or none). One
    /// record is a plain insert: a sled batch writes out the log buffer
    /// before and after it, which at one batch per lease and per report
    /// made the log's writes, not the scheduler, the limit.
    ///
    /// # Errors
    /// sled failures.
    pub fn put_tasks<'a>(
        &self,
        tasks: impl IntoIterator<Item = &'a TaskRecord>,
    ) -> Result<(), StoreError> {
        let mut tasks = tasks.into_iter();
        let Some(first) = tasks.next() else {
            return Ok(());
        };
        let Some(second) = tasks.next() else {
            self.tasks
                .insert(first.task_id.as_bytes(), encode(first)?)?;
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        for t in [first, second].into_iter().chain(tasks) {
            batch.insert(t.task_id.as_bytes(), encode(t)?);
        }
        self.tasks.apply_batch(batch)?;
        Ok(())
    }

    /// Writes one task record.
    ///
    /// # Errors
    /// sled failures.
    pub fn put_task(&self, task: &TaskRecord) -> Result<(), StoreError> {
        self.tasks.insert(task.task_id.as_bytes(), encode(task)?)?;
        Ok(())
    }

    /// Every task record.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn tasks(&self) -> Result<Vec<TaskRecord>, StoreError> {
        self.tasks
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode("tasks", &k, &v)
            })
            .collect()
    }

    /// The task records of one job (task ids are `JOB:...`): one prefix
    /// scan, not a scan of every task ever created.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn tasks_of(&self, job_id: &str) -> Result<Vec<TaskRecord>, StoreError> {
        let prefix = format!("{job_id}:");
        let v: Vec<TaskRecord> = self
            .tasks
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (k, v) = kv?;
                decode("tasks", &k, &v)
            })
            .collect::<Result<_, _>>()?;
        if v.is_empty()
            && let Some(a) = self.archived(job_id)?
        {
            return Ok(a.tasks.clone());
        }
        Ok(v)
    }

    // ---- results ----

    /// Stores a task's result (replacing any earlier one: idempotent).
    ///
    /// # Errors
    /// sled failures.
    pub fn put_result(&self, task_id: &str, result: &v1::TaskResult) -> Result<(), StoreError> {
        self.results
            .insert(task_id.as_bytes(), result.encode_to_vec())?;
        Ok(())
    }

    /// A task's result.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn result(&self, task_id: &str) -> Result<Option<v1::TaskResult>, StoreError> {
        let r = self
            .results
            .get(task_id.as_bytes())?
            .map(|v| {
                v1::TaskResult::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
                    tree: "results",
                    key: task_id.into(),
                    message: e.to_string(),
                })
            })
            .transpose()?;
        if r.is_none()
            && let Some((job, _)) = task_id.split_once(':')
            && let Some(a) = self.archived(job)?
        {
            return Ok(a.results.get(task_id).cloned());
        }
        Ok(r)
    }

    /// Removes the results of a job's tasks (after merging).
    ///
    /// # Errors
    /// sled failures.
    pub fn remove_results(&self, task_ids: &[trawl_core::TaskId]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for t in task_ids {
            batch.remove(t.as_bytes());
        }
        self.results.apply_batch(batch)?;
        Ok(())
    }

    /// Stores a job's merged, sorted results.
    ///
    /// # Errors
    /// sled failures.
    pub fn put_merged(&self, job_id: &str, page: &v1::ResultsPage) -> Result<(), StoreError> {
        self.merged
            .insert(job_id.as_bytes(), page.encode_to_vec())?;
        Ok(())
    }

    /// A job's merged results.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn merged(&self, job_id: &str) -> Result<Option<v1::ResultsPage>, StoreError> {
        let m = self
            .merged
            .get(job_id.as_bytes())?
            .map(|v| {
                v1::ResultsPage::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
                    tree: "merged",
                    key: job_id.into(),
                    message: e.to_string(),
                })
            })
            .transpose()?;
        if m.is_none()
            && let Some(a) = self.archived(job_id)?
        {
            return Ok(a.merged.clone());
        }
        Ok(m)
    }

    // ---- evidence store, rule sets, workers ----

    /// Writes an evidence record.
    ///
    /// # Errors
    /// sled failures.
    pub fn put_evidence(&self, e: &EvidenceRecord) -> Result<(), StoreError> {
        self.evidence.insert(e.blake3.as_bytes(), encode(e)?)?;
        Ok(())
    }

    /// Reads an evidence record.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn evidence(&self, blake3: &str) -> Result<Option<EvidenceRecord>, StoreError> {
        self.evidence
            .get(blake3.as_bytes())?
            .map(|v| decode("evidence", blake3.as_bytes(), &v))
            .transpose()
    }

    /// Writes a rule set.
    ///
    /// # Errors
    /// sled failures.
    pub fn put_ruleset(&self, r: &RuleSetRecord) -> Result<(), StoreError> {
        self.rulesets.insert(r.name.as_bytes(), encode(r)?)?;
        Ok(())
    }

    /// Reads a rule set by name.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn ruleset(&self, name: &str) -> Result<Option<RuleSetRecord>, StoreError> {
        self.rulesets
            .get(name.as_bytes())?
            .map(|v| decode("rulesets", name.as_bytes(), &v))
            .transpose()
    }

    /// Every rule set.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn rulesets(&self) -> Result<Vec<RuleSetRecord>, StoreError> {
        self.rulesets
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode("rulesets", &k, &v)
            })
            .collect()
    }

    /// Writes a worker record.
    ///
    /// # Errors
    /// sled failures.
    pub fn put_worker(&self, w: &WorkerRecord) -> Result<(), StoreError> {
        self.workers.insert(w.worker_id.as_bytes(), encode(w)?)?;
        Ok(())
    }

    /// Every worker ever registered.
    ///
    /// # Errors
    /// sled failures, corrupt records.
    pub fn workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        self.workers
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode("workers", &k, &v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! Records written before the ids were typed (plain strings) still
    //! decode: the ids' serde form is the string itself.

    use super::*;
    use serde::Serialize;
    use trawl_core::{AnalysisSet, CaseId, JobId, JobSpec, TaskId, WorkerId, spec::EvidenceRef};

    /// `LimitationRecord` as it was, with a `String` task id.
    #[derive(Serialize)]
    struct OldLimitation {
        start: u64,
        end: u64,
        task_id: String,
        error: String,
        attempts: u32,
    }

    /// `JobRecord` as it was, with a `String` job id (fields added later
    /// with `#[serde(default)]` left out, as an old record lacks them).
    #[derive(Serialize)]
    struct OldJob {
        job_id: String,
        seq: u64,
        spec: JobSpec,
        submitter: String,
        state: JobState,
        error: String,
        created_ms: i64,
        started_ms: i64,
        finished_ms: i64,
        evidence: Option<EvidenceMeta>,
        plan: Option<trawl_core::ShardPlan>,
        progress: ProgressRecord,
        limitations: Vec<OldLimitation>,
        version: u64,
    }

    /// `TaskRecord` as it was, with `String` ids.
    #[derive(Serialize)]
    struct OldTask {
        task_id: String,
        job_id: String,
        kind: TaskKind,
        shard: Option<trawl_core::Shard>,
        order: u32,
        state: TaskState,
        attempts: u32,
        worker: Option<String>,
        lease_deadline_ms: i64,
        lease_token: String,
        errors: Vec<String>,
        failed_on: Vec<String>,
        bytes: u64,
    }

    /// `WorkerRecord` as it was, with a `String` worker id.
    #[derive(Serialize)]
    struct OldWorker {
        worker_id: String,
        hostname: String,
        slots: u32,
        memory_bytes: u64,
        evidence_roots: Vec<String>,
        version: String,
        registered_ms: i64,
        last_heartbeat_ms: i64,
        tasks_done: u64,
        bytes_done: u64,
    }

    fn old_job(job_id: &str, task_id: &str) -> OldJob {
        OldJob {
            job_id: job_id.into(),
            seq: 3,
            spec: JobSpec::new(
                CaseId::new("C1").unwrap(),
                EvidenceRef::Paths(vec!["/ev/a.dd".into()]),
                AnalysisSet::all(),
            ),
            submitter: "ivy".into(),
            state: JobState::Running,
            error: String::new(),
            created_ms: 1,
            started_ms: 2,
            finished_ms: 0,
            evidence: None,
            plan: None,
            progress: ProgressRecord::default(),
            limitations: vec![OldLimitation {
                start: 0,
                end: 512,
                task_id: task_id.into(),
                error: "read error".into(),
                attempts: 3,
            }],
            version: 9,
        }
    }

    fn old_task(task_id: &str, job_id: &str, worker: &str) -> OldTask {
        OldTask {
            task_id: task_id.into(),
            job_id: job_id.into(),
            kind: TaskKind::Shard,
            shard: None,
            order: 1,
            state: TaskState::Leased,
            attempts: 2,
            worker: Some(worker.into()),
            lease_deadline_ms: 77,
            lease_token: "00ff".into(),
            errors: vec!["attempt 1 on w0: boom".into()],
            failed_on: vec!["w0".into()],
            bytes: 4096,
        }
    }

    fn old_worker(worker_id: &str) -> OldWorker {
        OldWorker {
            worker_id: worker_id.into(),
            hostname: "host".into(),
            slots: 4,
            memory_bytes: 8 << 30,
            evidence_roots: vec!["/ev".into()],
            version: "0.1.0".into(),
            registered_ms: 5,
            last_heartbeat_ms: 6,
            tasks_done: 7,
            bytes_done: 8,
        }
    }

    #[test]
    fn records_written_with_string_ids_decode_into_typed_records() {
        let s = Store::temporary().unwrap();
        let job = JobId::new("J000001").unwrap();
        let task = TaskId::shard(&job, 1);
        s.jobs
            .insert(job.as_bytes(), encode(&old_job(&job, &task)).unwrap())
            .unwrap();
        s.tasks
            .insert(
                task.as_bytes(),
                encode(&old_task(&task, &job, "w1@host")).unwrap(),
            )
            .unwrap();
        s.workers
            .insert(&b"w1@host"[..], encode(&old_worker("w1@host")).unwrap())
            .unwrap();

        let j = s.job(&job).unwrap().unwrap();
        assert_eq!(j.job_id, job);
        assert_eq!((j.seq, j.version, j.submitter.as_str()), (3, 9, "ivy"));
        assert_eq!(j.limitations[0].task_id, task);
        assert_eq!(j.counts, None);

        let t = &s.tasks_of(&job).unwrap()[0];
        assert_eq!((&t.task_id, &t.job_id), (&task, &job));
        assert_eq!(t.worker, Some(WorkerId::new("w1@host").unwrap()));
        assert_eq!(t.failed_on, [WorkerId::new("w0").unwrap()]);
        assert_eq!((t.attempts, t.bytes, t.state), (2, 4096, TaskState::Leased));

        let w = &s.workers().unwrap()[0];
        assert_eq!(w.worker_id, "w1@host");
        assert_eq!((w.slots, w.tasks_done, w.cores), (4, 7, 0));

        // Written again, the typed record has the old encoding's ids.
        s.put_task(t).unwrap();
        let raw = s.tasks.get(task.as_bytes()).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["task_id"], "J000001:s000001");
        assert_eq!(v["job_id"], "J000001");
        assert_eq!(v["worker"], "w1@host");
        assert_eq!(v["failed_on"], serde_json::json!(["w0"]));
    }

    #[test]
    fn a_stored_record_with_an_invalid_id_is_a_decode_error_naming_it() {
        let corrupt = |e: StoreError| match e {
            StoreError::Corrupt { tree, key, message } => (tree, key, message),
            other => panic!("not a decode error: {other}"),
        };

        let s = Store::temporary().unwrap();
        s.tasks
            .insert(
                &b"J000001:s000000"[..],
                encode(&old_task("J000001:s000000", "J000001", "bad worker")).unwrap(),
            )
            .unwrap();
        let (tree, key, message) = corrupt(s.tasks().unwrap_err());
        assert_eq!((tree, key.as_str()), ("tasks", "J000001:s000000"));
        assert!(message.contains("worker id"), "{message}");

        let s = Store::temporary().unwrap();
        s.jobs
            .insert(&b"J/1"[..], encode(&old_job("J/1", "J000001:s1")).unwrap())
            .unwrap();
        let e = s.job("J/1").unwrap_err();
        assert!(e.to_string().contains("corrupt jobs record J/1"), "{e}");
        let (_, _, message) = corrupt(e);
        assert!(message.contains("job id"), "{message}");

        let s = Store::temporary().unwrap();
        s.workers
            .insert(&b"w"[..], encode(&old_worker("")).unwrap())
            .unwrap();
        let (tree, key, message) = corrupt(s.workers().unwrap_err());
        assert_eq!((tree, key.as_str()), ("workers", "w"));
        assert!(message.contains("empty"), "{message}");
    }
}
