//! Ended jobs archived out of the hot store: a job's task records, its
//! merged results and any task results still held are written to one
//! compressed file, `DATA/archive/JOB.trawl-archive`, then removed from
//! sled. Reads fall back to the file where sled has nothing for the job
//! ([`Store::tasks_of`], [`Store::merged`], [`Store::result`]), so results,
//! reports and task listings of an archived job are what they were.
//!
//! The file: gzip of `TRAWL-ARCHIVE 1\n`, then records of one tag byte
//! (`M` merged page, `T` task record, `R` task result), a little-endian u64
//! length and the bytes (`R`: u32 task id length, task id, protobuf). The
//! file is written, synced and renamed into place before anything leaves
//! sled; a crash in between leaves both, and sled is read first.

use crate::{Store, StoreError, TaskRecord};
use prost::Message;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use trawl_proto::v1;

/// The archive folder under the data directory.
pub const ARCHIVE_DIR: &str = "archive";
const MAGIC: &[u8] = b"TRAWL-ARCHIVE 1\n";

/// What an archive file holds.
#[derive(Debug, Default)]
pub struct ArchiveContents {
    pub merged: Option<v1::ResultsPage>,
    pub tasks: Vec<TaskRecord>,
    pub results: std::collections::BTreeMap<String, v1::TaskResult>,
}

/// What archiving one job moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Archived {
    pub tasks: u64,
    pub results: u64,
    /// Bytes of the values removed from sled.
    pub bytes_moved: u64,
    /// Size of the archive file.
    pub file_bytes: u64,
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Other(format!("{}: {e}", path.display()))
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree: "archive",
        key: path.display().to_string(),
        message: what.to_string(),
    }
}

/// A job id as a file name (job ids are `J000123`-like; anything else is
/// refused rather than turned into a path).
fn file_name(job_id: &str) -> Option<String> {
    (!job_id.is_empty()
        && job_id.len() <= 128
        && job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| format!("{job_id}.trawl-archive"))
}

fn put(out: &mut impl Write, tag: u8, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&[tag])?;
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)
}

fn read_file(path: &Path) -> Result<ArchiveContents, StoreError> {
    let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::io::BufReader::new(f))
        .read_to_end(&mut raw)
        .map_err(|e| corrupt(path, e))?;
    let rest = raw
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt(path, "not a trawl archive (bad header)"))?;
    let mut c = ArchiveContents::default();
    let mut p = rest;
    while !p.is_empty() {
        if p.len() < 9 {
            return Err(corrupt(path, "truncated record header"));
        }
        let tag = p[0];
        let len = u64::from_le_bytes(p[1..9].try_into().expect("8 bytes")) as usize;
        let body = p
            .get(9..9usize.saturating_add(len))
            .ok_or_else(|| corrupt(path, "truncated record"))?;
        p = &p[9 + len..];
        match tag {
            b'M' => c.merged = Some(v1::ResultsPage::decode(body).map_err(|e| corrupt(path, e))?),
            b'T' => c
                .tasks
                .push(serde_json::from_slice(body).map_err(|e| corrupt(path, e))?),
            b'R' => {
                let n = body
                    .get(..4)
                    .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                    .ok_or_else(|| corrupt(path, "truncated result record"))?;
                let id = body
                    .get(4..4 + n)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or_else(|| corrupt(path, "bad task id in a result record"))?;
                let r = v1::TaskResult::decode(&body[4 + n..]).map_err(|e| corrupt(path, e))?;
                c.results.insert(id.to_string(), r);
            }
            t => return Err(corrupt(path, format!("unknown record tag {t}"))),
        }
    }
    Ok(c)
}

impl Store {
    /// Where job `job_id`'s archive is (or would be); `None` for a
    /// temporary store or an id that makes no file name.
    pub fn archive_path(&self, job_id: &str) -> Option<PathBuf> {
        Some(
            self.dir
                .as_ref()?
                .join(ARCHIVE_DIR)
                .join(file_name(job_id)?),
        )
    }

    /// Whether job `job_id` has an archive file.
    pub fn is_archived(&self, job_id: &str) -> bool {
        self.archive_path(job_id).is_some_and(|p| p.exists())
    }

    /// The contents of job `job_id`'s archive (`None`: not archived); the
    /// last one read is kept, so a job's results read task by task decode
    /// the file once.
    ///
    /// # Errors
    /// An unreadable or damaged archive.
    pub fn archived(&self, job_id: &str) -> Result<Option<Arc<ArchiveContents>>, StoreError> {
        let Some(path) = self.archive_path(job_id) else {
            return Ok(None);
        };
        let mut last = self.last_archive.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((id, c)) = &*last
            && id == job_id
            && path.exists()
        {
            return Ok(Some(c.clone()));
        }
        if !path.exists() {
            return Ok(None);
        }
        let c = Arc::new(read_file(&path)?);
        *last = Some((job_id.to_string(), c.clone()));
        Ok(Some(c))
    }

    /// Moves an ended job's task records, merged results and remaining
    /// task results out of sled into its archive file. `Ok(None)`: nothing
    /// left in sled to move (already archived).
    ///
    /// # Errors
    /// Unknown job, a job not ended, a temporary store, I/O or sled
    /// failures (then sled still holds everything).
    pub fn archive_job(&self, job_id: &str) -> Result<Option<Archived>, StoreError> {
        let job = self
            .job(job_id)?
            .ok_or_else(|| StoreError::Other(format!("no job {job_id:?}")))?;
        if !job.state.is_final() {
            return Err(StoreError::Other(format!(
                "job {job_id} has not ended ({}): only ended jobs are archived",
                job.state.name()
            )));
        }
        let path = self.archive_path(job_id).ok_or_else(|| {
            StoreError::Other(format!(
                "job {job_id}: no archive folder (a temporary store, or an id that is no file name)"
            ))
        })?;
        let prefix = format!("{job_id}:");
        let mut tasks: Vec<(sled::IVec, sled::IVec)> = Vec::new();
        for kv in self.tasks.scan_prefix(prefix.as_bytes()) {
            tasks.push(kv?);
        }
        let merged = self.merged.get(job_id.as_bytes())?;
        let mut results = Vec::new();
        for (k, _) in &tasks {
            if let Some(v) = self.results.get(k)? {
                results.push((k.clone(), v));
            }
        }
        if tasks.is_empty() && merged.is_none() {
            return Ok(None);
        }
        // Earlier contents (a crash after the file was written) are
        // replaced by what sled holds.
        let dir = path.parent().expect("archive file has a folder");
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let tmp = path.with_extension("trawl-archive.tmp");
        let mut bytes_moved = 0u64;
        {
            let f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
            let mut gz = flate2::write::GzEncoder::new(
                std::io::BufWriter::new(f),
                flate2::Compression::fast(),
            );
            let mut write = || -> std::io::Result<()> {
                gz.write_all(MAGIC)?;
                if let Some(m) = &merged {
                    put(&mut gz, b'M', m)?;
                    bytes_moved += m.len() as u64;
                }
                for (_, v) in &tasks {
                    put(&mut gz, b'T', v)?;
                    bytes_moved += v.len() as u64;
                }
                for (k, v) in &results {
                    let mut body = Vec::with_capacity(4 + k.len() + v.len());
                    body.extend_from_slice(&(k.len() as u32).to_le_bytes());
                    body.extend_from_slice(k);
                    body.extend_from_slice(v);
                    put(&mut gz, b'R', &body)?;
                    bytes_moved += v.len() as u64;
                }
                Ok(())
            };
            write().map_err(|e| io(&tmp, e))?;
            let f = gz
                .finish()
                .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                .map_err(|e| io(&tmp, e))?;
            f.sync_all().map_err(|e| io(&tmp, e))?;
        }
        // Read back before sled lets go: the archive must decode to what
        // it replaces.
        let check = read_file(&tmp)?;
        if check.tasks.len() != tasks.len() || check.results.len() != results.len() {
            return Err(corrupt(&tmp, "the archive read back differs"));
        }
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut rb = sled::Batch::default();
        for (k, _) in &results {
            rb.remove(k.clone());
        }
        self.results.apply_batch(rb)?;
        let mut tb = sled::Batch::default();
        for (k, _) in &tasks {
            tb.remove(k.clone());
        }
        self.tasks.apply_batch(tb)?;
        self.merged.remove(job_id.as_bytes())?;
        *self.last_archive.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(Some(Archived {
            tasks: tasks.len() as u64,
            results: results.len() as u64,
            bytes_moved,
            file_bytes,
        }))
    }
}
