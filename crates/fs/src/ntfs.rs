//! NTFS (to be written).

use crate::{FileSystemListing, FsError, VolumeReader};

/// True when `head` (the volume's first bytes) holds this file system's boot sector.
pub fn probe(_head: &[u8]) -> bool {
    false
}

/// Lists the file system of `r`.
///
/// # Errors
/// Unusable boot structures; I/O errors.
pub fn list(r: &VolumeReader<'_>) -> Result<FileSystemListing, FsError> {
    Err(FsError::corrupt("ntfs", r.base(), "not supported yet"))
}
