//! ext2/3/4 (to be written).

use crate::{FileSystemListing, FsError, VolumeReader};

/// True when the volume holds an ext superblock (at byte 1024).
///
/// # Errors
/// I/O errors.
pub fn probe(_r: &VolumeReader<'_>) -> Result<bool, FsError> {
    Ok(false)
}

/// Lists the file system of `r`.
///
/// # Errors
/// Unusable superblock or group descriptors; I/O errors.
pub fn list(r: &VolumeReader<'_>) -> Result<FileSystemListing, FsError> {
    Err(FsError::corrupt(
        "ext superblock",
        r.base() + 1024,
        "not supported yet",
    ))
}
