//! Expert Witness Format (placeholder: being written).
use crate::{Evidence, EvidenceError, EvidenceInfo};
use std::path::{Path, PathBuf};

/// EWF format version from a segment's first bytes.
pub fn magic_version(head: &[u8]) -> Option<u8> {
    if head.starts_with(b"EVF\x09\x0d\x0a\xff\x00") {
        Some(1)
    } else if head.starts_with(b"EVF2\x0d\x0a\x81\x00") {
        Some(2)
    } else {
        None
    }
}

/// An EWF image.
#[derive(Debug)]
pub struct EwfEvidence {
    info: EvidenceInfo,
}

impl EwfEvidence {
    /// Opens an EWF image by its first segment.
    ///
    /// # Errors
    /// Always, for now.
    pub fn open(path: &Path) -> Result<Self, EvidenceError> {
        Err(EvidenceError::Unsupported { path: path.into(), format: "EWF", hint: "not yet" })
    }
    /// Opens explicit segments.
    ///
    /// # Errors
    /// Always, for now.
    pub fn open_segments(paths: &[PathBuf]) -> Result<Self, EvidenceError> {
        Self::open(&paths[0])
    }
}

impl Evidence for EwfEvidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<usize, EvidenceError> {
        Ok(0)
    }
}
