//! Read-only evidence readers: raw/dd images (memory-mapped, zero-copy),
//! split raw (`.001`/`.002`…, `.aa`/`.ab`…) and Expert Witness (EWF v1 `.E01`
//! and v2 `.Ex01`, multi-segment). The format is detected from magic bytes,
//! not the file name; split-raw and EWF segment files are discovered from the
//! first segment's name.
//!
//! Every reader is `Send + Sync` and offers random access with
//! [`Evidence::read_at`], so many threads can read different shards of one
//! image at once. No code path opens evidence for writing.
//!
//! ```no_run
//! let ev = trawl_evidence::open("disk.E01").unwrap();
//! let mut mbr = [0u8; 512];
//! ev.read_exact_at(0, &mut mbr).unwrap();
//! println!("{} bytes, {}", ev.size(), ev.info().format);
//! ```

mod confine;
mod detect;
mod error;
pub mod ewf;
mod mem;
mod raw;
pub mod remote;
mod spans;
mod split;
pub mod vdisk;

pub use confine::Confinement;
pub use detect::{Format, detect_format, open, open_segments};
pub use error::EvidenceError;
pub use mem::MemEvidence;
pub use raw::{RawEvidence, ReadMode, read_mode, set_read_mode};
pub use remote::{Locator, RemoteBackend, RemoteObject, is_remote, set_remote_backend};
pub use spans::{SpanRun, Spans};
pub use split::SplitRawEvidence;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

/// Hashes stored inside a container (EWF `hash`/`digest` sections).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHashes {
    /// Lowercase hex MD5, if stored.
    pub md5: Option<String>,
    /// Lowercase hex SHA-1, if stored.
    pub sha1: Option<String>,
}

/// A range of sectors the acquisition tool could not read (EWF `error2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquisitionError {
    pub first_sector: u64,
    pub sector_count: u64,
}

/// What is known about an evidence item once opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceInfo {
    /// The path the evidence was opened by (its first segment).
    pub path: PathBuf,
    /// Every segment file, in order.
    pub segments: Vec<PathBuf>,
    /// Media size in bytes.
    pub size: u64,
    pub format: Format,
    /// Hashes stored by the acquisition tool.
    pub stored: StoredHashes,
    /// Acquisition metadata (case number, examiner, dates, tool, ...).
    pub metadata: BTreeMap<String, String>,
    /// Sector ranges the acquisition tool could not read.
    pub acquisition_errors: Vec<AcquisitionError>,
    /// Bytes per sector when the container records it.
    pub bytes_per_sector: u32,
}

/// Random-access, read-only view of an evidence item's media bytes.
pub trait Evidence: Send + Sync + fmt::Debug {
    /// What was found when the evidence was opened.
    fn info(&self) -> &EvidenceInfo;

    /// Media size in bytes.
    fn size(&self) -> u64 {
        self.info().size
    }

    /// Reads up to `buf.len()` bytes at media offset `offset`. Returns the
    /// number of bytes read, which is short only at the end of the media
    /// (0 at or past the end).
    ///
    /// # Errors
    /// I/O errors and corrupt container structures, naming the file and the
    /// offset.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError>;

    /// A zero-copy view of `[offset, offset + len)` when the bytes are
    /// directly mapped (raw images); `None` otherwise.
    fn mapped(&self, _offset: u64, _len: usize) -> Option<&[u8]> {
        None
    }

    /// Hints that `[start, end)` will not be read again soon: mapped readers
    /// drop those pages from this process (the page cache keeps them), so a
    /// worker's resident memory stays bounded by what it is scanning rather
    /// than growing with the image. Reads of the range stay valid.
    fn release(&self, _start: u64, _end: u64) {}

    /// Copies the media bytes `[start, end)` into `out` at `out_offset`
    /// inside the kernel (`copy_file_range`: no mapping, no user-space
    /// buffer) when the evidence is a plain file that allows it; `None` when
    /// it cannot (containers, split images, file systems refusing it): the
    /// caller then copies through [`Evidence::region`].
    ///
    /// # Errors
    /// I/O errors on either file (the caller names both); the range passing
    /// the end of the media or the file shrinking below it.
    fn copy_range_to(
        &self,
        _start: u64,
        _end: u64,
        _out: &std::fs::File,
        _out_offset: u64,
    ) -> Option<std::io::Result<()>> {
        None
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// As [`Evidence::read_at`], and [`EvidenceError::OutOfRange`] when the
    /// range passes the end of the media.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), EvidenceError> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_at(offset + done as u64, &mut buf[done..])?;
            if n == 0 {
                return Err(EvidenceError::OutOfRange {
                    path: self.info().path.clone(),
                    offset: offset + done as u64,
                    size: self.size(),
                });
            }
            done += n;
        }
        Ok(())
    }

    /// The bytes of `[start, end)` (clamped to the media): a zero-copy view
    /// when mapped, otherwise one read into a new buffer.
    ///
    /// # Errors
    /// As [`Evidence::read_exact_at`].
    fn region(&self, start: u64, end: u64) -> Result<Region<'_>, EvidenceError> {
        let end = end.min(self.size());
        let start = start.min(end);
        let len = usize::try_from(end - start).map_err(|_| EvidenceError::OutOfRange {
            path: self.info().path.clone(),
            offset: end,
            size: self.size(),
        })?;
        if let Some(s) = self.mapped(start, len) {
            return Ok(Region::Mapped(s));
        }
        let mut v = vec![0u8; len];
        self.read_exact_at(start, &mut v)?;
        Ok(Region::Owned(v))
    }
}

/// Bytes of an evidence range: borrowed from a mapping or owned.
#[derive(Debug)]
pub enum Region<'a> {
    Mapped(&'a [u8]),
    Owned(Vec<u8>),
}

impl Deref for Region<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Region::Mapped(s) => s,
            Region::Owned(v) => v,
        }
    }
}

/// A shared handle to opened evidence.
pub type SharedEvidence = Arc<dyn Evidence>;
