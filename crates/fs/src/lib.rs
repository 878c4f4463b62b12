//! Files, not only bytes: the volume systems and file systems of an image.
//!
//! [`list_image`] finds the volumes of an image (MBR with extended and
//! logical partitions, GPT checked against its backup, or no partition table
//! at all), recognises the file system on each (NTFS, FAT12/16/32, exFAT,
//! ext2/3/4) and lists every file and directory it holds: allocated ones,
//! deleted ones whose metadata still says where their content is, and
//! orphans. Each [`Entry`] carries its content as [`Content`]: byte runs in
//! *image* coordinates (sparse runs read as zeros), resident bytes, or
//! LZNT1-compressed runs; [`read_content`] streams it. Each listing also
//! carries the file system's unallocated space
//! ([`FileSystemListing::unallocated`]) as image ranges read from its own
//! allocation structures, the blocks TSK's `blkls -A` lists.
//!
//! Everything is read-only and defensive: every length and offset read from
//! the image is checked before use, loops in chains and trees are cut, and a
//! damaged structure becomes a [`Limitation`] naming the volume, the
//! structure and the offset, while the rest of the image is still listed.
//! Parsers never panic on any input (fuzzed by the tests).

pub mod content;
pub mod exfat;
pub mod ext;
pub mod fat;
pub mod lznt1;
pub mod ntfs;
pub mod volume;

mod reader;
mod types;
mod unalloc;

pub use content::{ContentReader, read_content};
pub use reader::VolumeReader;
pub use types::*;
pub use volume::{Volume, VolumeKind, VolumeSystem, list_volumes};

use trawl_evidence::Evidence;

/// Finds the volumes of `img` and lists the file system on each.
///
/// Volumes whose file system is not recognised are reported without a
/// listing; damaged structures become limitations. Only errors reading the
/// image itself (I/O) are returned as errors.
///
/// # Errors
/// I/O errors from the evidence reader.
pub fn list_image(img: &dyn Evidence) -> Result<ImageListing, FsError> {
    let vs = list_volumes(img)?;
    let mut out = ImageListing {
        volume_system: vs.kind,
        volumes: vs.volumes.clone(),
        filesystems: Vec::new(),
        limitations: vs.limitations,
    };
    for v in vs.volumes.iter().filter(|v| v.is_data()) {
        let r = VolumeReader::new(img, v.offset, v.length);
        match open_fs(&r) {
            Ok(Some(fs)) => out.filesystems.push(fs),
            Ok(None) => {}
            Err(FsError::Io(e)) => return Err(FsError::Io(e)),
            Err(e) => out.limitations.push(Limitation {
                volume_offset: v.offset,
                structure: "file system".into(),
                offset: v.offset,
                what: e.to_string(),
            }),
        }
    }
    Ok(out)
}

/// Recognises the file system at the start of `r` and lists it; `Ok(None)`
/// when no supported file system is there.
///
/// # Errors
/// A recognised file system whose essential structures (boot sector,
/// superblock, the MFT's first entry) are unusable; I/O errors.
pub fn open_fs(r: &VolumeReader<'_>) -> Result<Option<FileSystemListing>, FsError> {
    // Enough for the probes to see the exFAT backup boot region (sector 12
    // of 4 KiB sectors) when the main one is destroyed.
    let mut head = vec![0u8; 64 << 10];
    let n = r.read_at(0, &mut head)?;
    let head = &head[..n];
    if ntfs::probe(head) {
        return ntfs::list(r).map(Some);
    }
    if exfat::probe(head) {
        return exfat::list(r).map(Some);
    }
    if fat::probe(head) {
        return fat::list(r).map(Some);
    }
    if ext::probe(r)? {
        return ext::list(r).map(Some);
    }
    Ok(None)
}
