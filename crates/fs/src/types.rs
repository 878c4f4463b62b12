//! The model every parser fills in.

use serde::{Deserialize, Serialize};

/// Why a volume or file system could not be read. Every variant names where.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The evidence reader failed (I/O, corrupt container).
    #[error(transparent)]
    Io(#[from] trawl_evidence::EvidenceError),
    /// A structure is damaged beyond use: `structure` at image offset
    /// `offset` (for example "NTFS boot sector", "ext superblock").
    #[error("{structure} at offset {offset}: {what}")]
    Corrupt {
        structure: String,
        offset: u64,
        what: String,
    },
}

impl FsError {
    /// A [`FsError::Corrupt`].
    pub fn corrupt(structure: impl Into<String>, offset: u64, what: impl Into<String>) -> Self {
        FsError::Corrupt {
            structure: structure.into(),
            offset,
            what: what.into(),
        }
    }
}

/// A damaged structure that was skipped while the rest was listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limitation {
    /// Image offset of the volume (0 without a partition table).
    pub volume_offset: u64,
    /// What was damaged: "MBR", "GPT backup header", "FAT chain",
    /// "MFT entry 1234", "ext4 extent tree of inode 12", ...
    pub structure: String,
    /// Image offset of the damaged structure.
    pub offset: u64,
    /// What is wrong with it.
    pub what: String,
}

/// The file systems trawl reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    Ntfs,
    Fat12,
    Fat16,
    Fat32,
    Exfat,
    Ext2,
    Ext3,
    Ext4,
}

impl FsKind {
    /// The name in `files.jsonl` (`ntfs`, `fat12`, ..., `ext4`).
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ntfs => "ntfs",
            FsKind::Fat12 => "fat12",
            FsKind::Fat16 => "fat16",
            FsKind::Fat32 => "fat32",
            FsKind::Exfat => "exfat",
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
        }
    }
}

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    File,
    Dir,
    /// A symbolic link (its target is the content).
    Link,
    /// Devices, FIFOs, sockets, and anything else.
    Other,
}

/// Allocation state of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alloc {
    /// Reachable from the root, metadata allocated.
    Allocated,
    /// Name and/or metadata marked unused, but still present.
    Deleted,
    /// Metadata present (allocated or not) but no name reaches it; listed
    /// under `$OrphanFiles/` as TSK does.
    Orphan,
}

/// A point in time: seconds since the Unix epoch (UTC) and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    /// From an NTFS/Windows FILETIME (100 ns ticks since 1601-01-01);
    /// `None` for 0.
    pub fn from_filetime(t: u64) -> Option<Self> {
        if t == 0 {
            return None;
        }
        const EPOCH_DIFF: i64 = 11_644_473_600;
        let secs = (t / 10_000_000) as i64 - EPOCH_DIFF;
        let nanos = ((t % 10_000_000) * 100) as u32;
        Some(Self { secs, nanos })
    }

    /// From Unix seconds; `None` for 0 (unset), as TSK prints it.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Self> {
        (secs != 0 || nanos != 0).then_some(Self {
            secs,
            nanos: nanos.min(999_999_999),
        })
    }
}

/// MACB times; `None` where the file system has no such time or it is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Times {
    pub mtime: Option<Timestamp>,
    pub atime: Option<Timestamp>,
    /// Metadata change time (NTFS: MFT entry modified; ext: inode change;
    /// FAT and exFAT have none).
    pub ctime: Option<Timestamp>,
    /// Creation (birth) time.
    pub crtime: Option<Timestamp>,
}

/// A piece of a file's content in image coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Image offset of the run's first byte; `None` for a sparse run (reads
    /// as zeros, occupies nothing on disk).
    pub offset: Option<u64>,
    pub length: u64,
}

/// Where an entry's content is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// No content (directories, empty files, content not recoverable).
    #[default]
    None,
    /// The content is the runs concatenated, cut at `size` (the runs may
    /// cover more: the tail of the last cluster).
    Runs { runs: Vec<Run>, size: u64 },
    /// Stored inside the metadata (NTFS resident attribute, ext4 inline
    /// data, fast symlinks): the bytes themselves, and the image offset
    /// where they sit.
    Resident { bytes: Vec<u8>, offset: u64 },
    /// NTFS LZNT1 compression: `runs` are the attribute's runs in VCN order
    /// (sparse runs included), grouped in compression units of
    /// `unit_clusters` clusters of `cluster_size` bytes; a unit whose
    /// clusters are all allocated is stored raw, one that ends in sparse
    /// clusters is compressed, an all-sparse unit is zeros.
    Lznt1 {
        runs: Vec<Run>,
        cluster_size: u64,
        unit_clusters: u64,
        size: u64,
    },
}

impl Content {
    /// The logical size of the content.
    pub fn size(&self) -> u64 {
        match self {
            Content::None => 0,
            Content::Runs { size, .. } | Content::Lznt1 { size, .. } => *size,
            Content::Resident { bytes, .. } => bytes.len() as u64,
        }
    }

    /// The image ranges that hold the content: allocated runs cut at the
    /// logical size (whole runs for compressed content), the resident bytes'
    /// location. Used for `runs` in files.jsonl and DFXML byte runs.
    pub fn image_runs(&self) -> Vec<(u64, u64)> {
        match self {
            Content::None => Vec::new(),
            Content::Resident { bytes, offset } => {
                if bytes.is_empty() {
                    Vec::new()
                } else {
                    vec![(*offset, bytes.len() as u64)]
                }
            }
            Content::Runs { runs, size } => {
                let mut left = *size;
                let mut out = Vec::new();
                for r in runs {
                    if left == 0 {
                        break;
                    }
                    let n = r.length.min(left);
                    left -= n;
                    if let Some(o) = r.offset {
                        out.push((o, n));
                    }
                }
                out
            }
            Content::Lznt1 { runs, .. } => runs
                .iter()
                .filter_map(|r| r.offset.map(|o| (o, r.length)))
                .collect(),
        }
    }
}

/// One file, directory, stream or other object of a file system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// From the file system's root, `/`-separated, no leading slash, names
    /// as UTF-8 (invalid UTF-16/bytes replaced by U+FFFD). NTFS alternate
    /// data streams are `path:stream`. Orphans are under `$OrphanFiles/`.
    pub path: String,
    /// Inode number / MFT entry number / TSK's metadata address for FAT and
    /// exFAT (the directory-entry address TSK computes).
    pub inode: u64,
    pub kind: FileType,
    pub alloc: Alloc,
    /// Logical size in bytes.
    pub size: u64,
    /// MACB times (NTFS: from $STANDARD_INFORMATION).
    pub times: Times,
    /// NTFS only: the times of the $FILE_NAME attribute the path came from.
    pub fn_times: Option<Times>,
    /// Unix permission bits and file-type bits where the file system has
    /// them (ext), as `st_mode`; 0 otherwise.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Number of names (hard links) the metadata records.
    pub nlink: u32,
    pub content: Content,
}

/// Everything listed from one file system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSystemListing {
    /// Image offset of the volume holding the file system.
    pub partition_offset: u64,
    pub fs: FsKind,
    /// Volume label, when the file system records one.
    pub label: Option<String>,
    /// Cluster / block size in bytes.
    pub block_size: u64,
    /// Size of the file system in bytes (as its boot sector / superblock
    /// says).
    pub size: u64,
    /// Entries in a deterministic order (the parser's walk order; callers
    /// sort as they need).
    pub entries: Vec<Entry>,
    /// Damaged structures skipped while listing.
    pub limitations: Vec<Limitation>,
    /// The file system's unallocated space in image coordinates: `(offset, length)` ranges,
    /// sorted, merged (adjacent and overlapping joined), from the file system's own
    /// allocation structures (NTFS $Bitmap, the FAT, the exFAT allocation bitmap,
    /// ext block bitmaps). Clusters/blocks past the end of the image are left out
    /// (a block the image's end cuts keeps the bytes the image holds).
    #[serde(default)]
    pub unallocated: Vec<(u64, u64)>,
}

/// All volumes and file systems of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageListing {
    pub volume_system: crate::volume::VolumeSystemKind,
    pub volumes: Vec<crate::volume::Volume>,
    pub filesystems: Vec<FileSystemListing>,
    pub limitations: Vec<Limitation>,
}
