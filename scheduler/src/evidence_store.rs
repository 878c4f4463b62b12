//! Content-addressed evidence store for uploads.
//!
//! An upload is named by the BLAKE3 its client declares. Bytes go to
//! `partial/<digest>` (resumable: a client asks how much arrived and sends
//! the rest); when the declared size is reached the file is hashed, and only
//! if the digest matches is it moved to `<digest>` and made read-only. A
//! mismatch deletes the partial file: nothing unverified is ever stored.
//! Uploads of content already stored are deduplicated.

use crate::error::SchedError;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The store's directory layout.
#[derive(Debug)]
pub struct EvidenceStore {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    active: Mutex<HashSet<String>>,
    /// Complete uploads are kept here (`s3://bucket/prefix/`) when set.
    bucket: Option<(String, std::sync::Arc<trawl_objstore::ObjectBackend>)>,
}

/// Checks a declared digest: 64 lowercase hex digits.
pub fn check_digest(d: &str) -> Result<String, SchedError> {
    let d = d.to_ascii_lowercase();
    if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SchedError::InvalidArgument(format!(
            "invalid BLAKE3 digest {:?}: expected 64 hex digits",
            d.chars().take(80).collect::<String>()
        )));
    }
    Ok(d)
}

/// An upload in progress, holding the digest's lock.
pub struct UploadSession<'a> {
    store: &'a EvidenceStore,
    digest: String,
    size: u64,
    file: File,
    received: u64,
}

impl EvidenceStore {
    /// Opens the store under `dir` (a temporary folder when `ephemeral`).
    ///
    /// # Errors
    /// The folders cannot be created.
    pub fn open(dir: &Path, ephemeral: bool) -> Result<Self, SchedError> {
        let (dir, temp) = if ephemeral {
            let t = tempfile::tempdir()
                .map_err(|e| SchedError::Internal(format!("temporary evidence store: {e}")))?;
            (t.path().to_path_buf(), Some(t))
        } else {
            (dir.to_path_buf(), None)
        };
        fs::create_dir_all(dir.join("partial"))
            .map_err(|e| SchedError::Internal(format!("{}: {e}", dir.display())))?;
        Ok(Self {
            dir,
            _temp: temp,
            active: Mutex::new(HashSet::new()),
            bucket: None,
        })
    }

    /// Path of a complete, verified upload.
    /// An upload kept in the bucket is named by its locator
    /// (`s3://bucket/prefix/DIGEST`), read by ranges like any object.
    pub fn complete_path(&self, digest: &str) -> Option<PathBuf> {
        let d = check_digest(digest).ok()?;
        let p = self.dir.join(&d);
        if p.is_file() {
            return Some(p);
        }
        self.in_bucket(&d).map(|(loc, _)| PathBuf::from(loc))
    }

    /// Keeps complete uploads in object storage under `prefix`
    /// (`s3://bucket/prefix/`) instead of the data directory.
    ///
    /// # Errors
    /// A prefix that is not an object-storage prefix.
    pub fn with_bucket(
        mut self,
        prefix: &str,
        backend: std::sync::Arc<trawl_objstore::ObjectBackend>,
    ) -> Result<Self, SchedError> {
        let loc = trawl_evidence::Locator::parse(Path::new(prefix), true)
            .map_err(|e| SchedError::InvalidArgument(format!("upload_store: {e}")))?;
        let mut prefix = loc.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        self.bucket = Some((prefix, backend));
        Ok(self)
    }

    /// Where the bucket holds upload `d` and its size (from the marker
    /// `DIGEST.object` written once the object was stored and checked).
    fn in_bucket(&self, d: &str) -> Option<(String, u64)> {
        let text = fs::read_to_string(self.dir.join(format!("{d}.object"))).ok()?;
        let (loc, size) = text.trim().split_once('\n')?;
        Some((loc.to_string(), size.trim().parse().ok()?))
    }

    /// Moves a verified upload into the bucket: uploaded, its stored size
    /// checked, the marker written, and only then the local copy removed.
    fn to_bucket(
        &self,
        local: &Path,
        d: &str,
        size: u64,
        prefix: &str,
        backend: &trawl_objstore::ObjectBackend,
    ) -> Result<PathBuf, SchedError> {
        use trawl_evidence::RemoteBackend;
        let loc = format!("{prefix}{d}");
        let fail = |e: trawl_evidence::EvidenceError| {
            SchedError::Internal(format!(
                "upload {d} verified but not stored in the bucket ({e}); it stays in the data directory"
            ))
        };
        backend.upload_file(local, &loc).map_err(fail)?;
        let stored = backend.open(&loc).map_err(fail)?.size();
        if stored != size {
            return Err(SchedError::Internal(format!(
                "upload {d}: the bucket holds {stored} bytes of {size}; it stays in the data directory"
            )));
        }
        let marker = self.dir.join(format!("{d}.object"));
        let tmp = self.dir.join(format!("{d}.object.tmp"));
        fs::write(&tmp, format!("{loc}\n{size}\n"))
            .and_then(|()| fs::rename(&tmp, &marker))
            .map_err(|e| SchedError::Internal(format!("{}: {e}", marker.display())))?;
        let _ = fs::remove_file(local);
        tracing::info!(upload = %d, object = %loc, "upload stored in the bucket");
        Ok(PathBuf::from(loc))
    }

    fn partial_path(&self, d: &str) -> PathBuf {
        self.dir.join("partial").join(d)
    }

    /// Bytes received so far for `digest` (its size when complete).
    ///
    /// # Errors
    /// Invalid digest.
    pub fn received(&self, digest: &str) -> Result<(u64, bool), SchedError> {
        let d = check_digest(digest)?;
        if let Some((_, size)) = self.in_bucket(&d) {
            return Ok((size, true));
        }
        if let Some(p) = self.complete_path(&d) {
            return Ok((fs::metadata(p).map(|m| m.len()).unwrap_or(0), true));
        }
        Ok((
            fs::metadata(self.partial_path(&d))
                .map(|m| m.len())
                .unwrap_or(0),
            false,
        ))
    }

    /// Starts (or resumes at `offset`) an upload of `size` bytes.
    /// Returns `None` when the content is already stored (deduplicated).
    ///
    /// # Errors
    /// Invalid digest, size above `max`, an offset other than the bytes
    /// already received, or an upload of the same digest in progress.
    pub fn begin(
        &self,
        digest: &str,
        size: u64,
        offset: u64,
        max: u64,
    ) -> Result<Option<UploadSession<'_>>, SchedError> {
        let d = check_digest(digest)?;
        if size > max {
            return Err(SchedError::ResourceExhausted(format!(
                "upload of {size} bytes exceeds the limit of {max} bytes"
            )));
        }
        if self.complete_path(&d).is_some() {
            return Ok(None);
        }
        if !self.active.lock().insert(d.clone()) {
            return Err(SchedError::FailedPrecondition(format!(
                "an upload of {d} is already in progress"
            )));
        }
        let guard = ActiveGuard {
            store: self,
            digest: d.clone(),
            armed: true,
        };
        let path = self.partial_path(&d);
        let have = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if offset != have {
            return Err(SchedError::FailedPrecondition(format!(
                "upload of {d} must resume at offset {have}, not {offset}"
            )));
        }
        if have > size {
            let _ = fs::remove_file(&path);
            return Err(SchedError::InvalidArgument(format!(
                "upload of {d}: {have} bytes already received exceed the declared size {size}"
            )));
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| SchedError::Internal(format!("{}: {e}", path.display())))?;
        std::mem::forget(guard);
        Ok(Some(UploadSession {
            store: self,
            digest: d,
            size,
            file,
            received: have,
        }))
    }
}

struct ActiveGuard<'a> {
    store: &'a EvidenceStore,
    digest: String,
    armed: bool,
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.store.active.lock().remove(&self.digest);
        }
    }
}

impl UploadSession<'_> {
    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Appends data.
    ///
    /// # Errors
    /// More bytes than declared, or a write failure.
    pub fn write(&mut self, data: &[u8]) -> Result<(), SchedError> {
        if self.received + data.len() as u64 > self.size {
            let _ = fs::remove_file(self.store.partial_path(&self.digest));
            return Err(SchedError::InvalidArgument(format!(
                "upload of {} sends more than its declared {} bytes",
                self.digest, self.size
            )));
        }
        self.file
            .write_all(data)
            .map_err(|e| SchedError::Internal(format!("writing upload {}: {e}", self.digest)))?;
        self.received += data.len() as u64;
        Ok(())
    }

    /// Whether every declared byte arrived.
    pub fn is_complete(&self) -> bool {
        self.received == self.size
    }

    /// Verifies the BLAKE3 of the complete upload and stores it read-only.
    /// On mismatch the bytes are deleted.
    ///
    /// # Errors
    /// Incomplete upload, digest mismatch, I/O failures.
    pub fn finish(self) -> Result<PathBuf, SchedError> {
        self.file
            .sync_all()
            .map_err(|e| SchedError::Internal(format!("syncing upload {}: {e}", self.digest)))?;
        let partial = self.store.partial_path(&self.digest);
        if !self.is_complete() {
            return Err(SchedError::FailedPrecondition(format!(
                "upload of {} incomplete: {} of {} bytes",
                self.digest, self.received, self.size
            )));
        }
        let mut h = blake3::Hasher::new();
        let mut f = File::open(&partial)
            .map_err(|e| SchedError::Internal(format!("{}: {e}", partial.display())))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| SchedError::Internal(format!("{}: {e}", partial.display())))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let got = h.finalize().to_hex().to_string();
        if got != self.digest {
            let _ = fs::remove_file(&partial);
            return Err(SchedError::InvalidArgument(format!(
                "upload rejected: its BLAKE3 is {got}, not the declared {}; nothing was stored",
                self.digest
            )));
        }
        let dest = self.store.dir.join(&self.digest);
        fs::rename(&partial, &dest)
            .map_err(|e| SchedError::Internal(format!("{}: {e}", dest.display())))?;
        let mut perm = fs::metadata(&dest)
            .map_err(|e| SchedError::Internal(format!("{}: {e}", dest.display())))?
            .permissions();
        perm.set_readonly(true);
        let _ = fs::set_permissions(&dest, perm);
        if let Some((prefix, backend)) = &self.store.bucket {
            return self
                .store
                .to_bucket(&dest, &self.digest, self.size, prefix, backend);
        }
        Ok(dest)
    }
}

impl Drop for UploadSession<'_> {
    fn drop(&mut self) {
        self.store.active.lock().remove(&self.digest);
    }
}
