//! Virtual-machine disks read as evidence: QCOW2, VMDK, VHD and VHDX.
//!
//! Each reader presents the *virtual* disk (what `qemu-img convert -O raw`
//! writes): unallocated clusters read as zeros without I/O; every table
//! entry, length and offset is checked against the container file before
//! use, and a bad one is an error naming the structure and its offset.
//! Readers are read-only and thread-safe: positional reads (`pread`) on the
//! container files, tables loaded once at open (or cached behind a lock).
//!
//! Files a container refers to (backing files, parents, extents) are read
//! only when they are given as evidence too (`open_segments`), or, for a
//! VMDK descriptor's extents, when they resolve inside the evidence roots.

pub mod qcow2;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;

use crate::EvidenceError;
use crate::raw::{open_file, pread_full};
use std::fs::File;
use std::path::{Path, PathBuf};

/// One container file, opened read-only (through the evidence roots'
/// confinement), read by position.
#[derive(Debug)]
pub(crate) struct ContainerFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl ContainerFile {
    /// Opens `path` read-only.
    ///
    /// # Errors
    /// Missing, unreadable, a directory, outside the evidence roots.
    pub(crate) fn open(path: &Path) -> Result<Self, EvidenceError> {
        let (file, len) = open_file(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Reads exactly `buf.len()` bytes at `offset`; `what` names the
    /// structure being read (for the error when the file ends first).
    ///
    /// # Errors
    /// [`EvidenceError::Truncated`] naming `what` when the file is too
    /// short; I/O errors.
    pub(crate) fn read_exact_at(
        &self,
        offset: u64,
        buf: &mut [u8],
        what: &str,
    ) -> Result<(), EvidenceError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(EvidenceError::Truncated {
                path: self.path.clone(),
                offset,
                what: format!(
                    "{what}: {} bytes at offset {offset} pass the end of the file ({} bytes)",
                    buf.len(),
                    self.len
                ),
            });
        }
        let n = pread_full(&self.file, &self.path, offset, buf)?;
        if n < buf.len() {
            return Err(EvidenceError::Truncated {
                path: self.path.clone(),
                offset: offset + n as u64,
                what: format!("{what}: the file ended while reading"),
            });
        }
        Ok(())
    }

    /// A corruption error at `offset` of this file.
    pub(crate) fn corrupt(&self, offset: u64, what: impl Into<String>) -> EvidenceError {
        EvidenceError::Corrupt {
            path: self.path.clone(),
            offset,
            what: what.into(),
        }
    }
}

/// How many of `len` bytes a read at `offset` of a virtual disk of `size`
/// bytes returns: short only at the end, 0 at or past it.
pub(crate) fn readable(size: u64, offset: u64, len: usize) -> usize {
    if offset >= size {
        return 0;
    }
    (len as u64).min(size - offset) as usize
}
