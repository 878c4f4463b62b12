//! Evidence held in memory: bytes already read, decoded or generated (test
//! images, benchmarks), served as a raw image.

use crate::{Evidence, EvidenceError, EvidenceInfo, Format, StoredHashes};
use std::collections::BTreeMap;

/// A raw image in memory. `mapped` chooses whether it also offers zero-copy
/// slices ([`Evidence::mapped`], as a memory-mapped raw file does) or serves
/// its bytes through [`Evidence::read_at`] only (as E01 evidence does).
#[derive(Debug)]
pub struct MemEvidence {
    info: EvidenceInfo,
    data: Vec<u8>,
    mapped: bool,
}

impl MemEvidence {
    /// `data` as an image named `name`.
    pub fn new(name: &str, data: Vec<u8>, mapped: bool) -> Self {
        Self {
            info: EvidenceInfo {
                path: name.into(),
                segments: vec![name.into()],
                size: data.len() as u64,
                format: Format::Raw,
                stored: StoredHashes::default(),
                metadata: BTreeMap::new(),
                acquisition_errors: Vec::new(),
                bytes_per_sector: 512,
            },
            data,
            mapped,
        }
    }

    /// The image bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

impl Evidence for MemEvidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        let len = self.data.len() as u64;
        if offset >= len {
            return Ok(0);
        }
        let n = buf.len().min((len - offset) as usize);
        buf[..n].copy_from_slice(&self.data[offset as usize..offset as usize + n]);
        Ok(n)
    }

    fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        if !self.mapped {
            return None;
        }
        let end = offset.checked_add(len as u64)?;
        (end <= self.data.len() as u64).then(|| &self.data[offset as usize..end as usize])
    }
}
