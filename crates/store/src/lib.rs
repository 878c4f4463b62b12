//! Durable state of a scheduler, in sled, one tree per keyspace:
//!
//! | tree       | key                 | value                              |
//! |------------|---------------------|------------------------------------|
//! | `jobs`     | job id              | [`JobRecord`] (JSON)               |
//! | `tasks`    | task id             | [`TaskRecord`] (JSON)              |
//! | `results`  | task id             | `trawl.v1.TaskResult` (protobuf)   |
//! | `merged`   | job id              | `trawl.v1.ResultsPage` (protobuf)  |
//! | `evidence` | BLAKE3 hex          | [`EvidenceRecord`] (JSON)          |
//! | `rulesets` | name                | [`RuleSetRecord`] (JSON)           |
//! | `workers`  | worker id           | [`WorkerRecord`] (JSON)            |
//! | `audit`    | sequence (u64 BE)   | [`AuditEntry`] (JSON, hash-chained)|
//! | `meta`     | name                | counters                           |
//!
//! sled is the truth: the scheduler rebuilds its in-memory queues from it on
//! start, so a restart (or `kill -9`) loses nothing that was flushed, and a
//! task whose result was not flushed simply runs again (results are keyed by
//! task id, so a rerun never duplicates findings).

mod audit;
mod records;

pub use audit::{AuditEntry, AuditError, AuditLog, NewAuditEntry, now_ms};
pub use records::*;

use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use trawl_proto::v1;

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
}

/// The scheduler's state database.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    jobs: sled::Tree,
    tasks: sled::Tree,
    results: sled::Tree,
    merged: sled::Tree,
    evidence: sled::Tree,
    rulesets: sled::Tree,
    workers: sled::Tree,
    meta: sled::Tree,
    audit: AuditLog,
    /// A throw-away database: flushing it buys nothing.
    ephemeral: bool,
}

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
            .flush_every_ms(Some(200))
            .open()?;
        Self::from_db(db, false)
    }

    /// A throw-away in-memory database (embedded scans, tests).
    ///
    /// # Errors
    /// sled failures.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?, true)
    }

    fn from_db(db: sled::Db, ephemeral: bool) -> Result<Self, StoreError> {
        Ok(Self {
            jobs: db.open_tree("jobs")?,
            tasks: db.open_tree("tasks")?,
            results: db.open_tree("results")?,
            merged: db.open_tree("merged")?,
            evidence: db.open_tree("evidence")?,
            rulesets: db.open_tree("rulesets")?,
            workers: db.open_tree("workers")?,
            meta: db.open_tree("meta")?,
            audit: AuditLog::new(db.open_tree("audit")?),
            db,
            ephemeral,
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
        self.db.flush()?;
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
        self.db.flush_async().await?;
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

    /// Writes task records in one batch.
    ///
    /// # Errors
    /// sled failures.
    pub fn put_tasks<'a>(
        &self,
        tasks: impl IntoIterator<Item = &'a TaskRecord>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for t in tasks {
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
        self.results
            .get(task_id.as_bytes())?
            .map(|v| {
                v1::TaskResult::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
                    tree: "results",
                    key: task_id.into(),
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// Removes the results of a job's tasks (after merging).
    ///
    /// # Errors
    /// sled failures.
    pub fn remove_results(&self, task_ids: &[String]) -> Result<(), StoreError> {
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
        self.merged
            .get(job_id.as_bytes())?
            .map(|v| {
                v1::ResultsPage::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
                    tree: "merged",
                    key: job_id.into(),
                    message: e.to_string(),
                })
            })
            .transpose()
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
