//! The file-system analysis' records: volumes, file systems and one record
//! per file or directory (a line of `files/files.jsonl`).

use serde::{Deserialize, Serialize};

/// A point in time: seconds since the Unix epoch (UTC) and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileTime {
    pub secs: i64,
    pub nanos: u32,
}

/// MACB times; `None` where the file system has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacbTimes {
    pub mtime: Option<FileTime>,
    pub atime: Option<FileTime>,
    pub ctime: Option<FileTime>,
    pub crtime: Option<FileTime>,
}

/// One file, directory, stream or other object of a file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Image offset of the volume holding the file system.
    pub partition_offset: u64,
    /// `ntfs`, `fat12`, `fat16`, `fat32`, `exfat`, `ext2`, `ext3`, `ext4`.
    pub fs: String,
    /// From the file system's root, `/`-separated, no leading slash.
    pub path: String,
    pub inode: u64,
    /// `file`, `dir`, `link`, `other`.
    pub kind: String,
    /// `allocated`, `deleted`, `orphan`.
    pub alloc: String,
    pub size: u64,
    /// Content digests (lowercase hex), for files whose content was read.
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    /// $STANDARD_INFORMATION times on NTFS.
    pub times: MacbTimes,
    /// NTFS: the $FILE_NAME times of the name this record is for.
    pub fn_times: Option<MacbTimes>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `known` or `notable` after the hash-set lookup.
    pub known: Option<String>,
    /// The name of the hash set that matched.
    pub known_set: Option<String>,
    /// The content's byte runs in the image: `[offset, length]`.
    pub runs: Vec<(u64, u64)>,
    /// Why the content could not be read, when it could not.
    pub error: Option<String>,
}

impl FileRecord {
    /// Whether the record has content to hash (regular files, and links
    /// whose target is content).
    pub fn hashable(&self) -> bool {
        self.kind == "file"
    }

    /// Result order: by partition, path, inode.
    pub fn sort_cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.partition_offset, &self.path, self.inode, &self.alloc).cmp(&(
            o.partition_offset,
            &o.path,
            o.inode,
            &o.alloc,
        ))
    }
}

/// One volume (partition) of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub slot: u32,
    pub offset: u64,
    pub length: u64,
    /// `whole`, `mbr`, `logical`, `extended`, `gpt`.
    pub kind: String,
    pub type_name: String,
    pub label: Option<String>,
    /// The file system found on it, if any.
    pub fs: Option<String>,
}

/// One file system of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSystemRecord {
    pub partition_offset: u64,
    pub fs: String,
    pub label: Option<String>,
    pub block_size: u64,
    pub size: u64,
    /// Entries listed (files, directories, streams, others).
    pub entries: u64,
    /// The file system's unallocated space in image coordinates
    /// (`[offset, length]`, sorted, merged), from its allocation structures;
    /// `None` when not read. Used for attribution and the carving scope;
    /// report.json gives only its total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unallocated: Option<Vec<(u64, u64)>>,
}

/// A damaged structure skipped while listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsLimitation {
    pub volume_offset: u64,
    pub structure: String,
    pub offset: u64,
    pub what: String,
}

/// What the file-system analysis found besides the file records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesSummary {
    /// `none`, `mbr`, `gpt`.
    pub volume_system: String,
    pub volumes: Vec<VolumeRecord>,
    pub filesystems: Vec<FileSystemRecord>,
    pub limitations: Vec<FsLimitation>,
    /// Files found in a known-good set / a notable set.
    pub known: u64,
    pub notable: u64,
}

/// Digests of one file's content, as a file-hashing task reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHashes {
    /// Index of the record in the job's listing.
    pub index: u32,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    /// Set when the content could not be read (digests then empty).
    pub error: String,
}

/// A job's file-system listing as the scheduler plans it: the summary and
/// every record (digests filled in from the hashing tasks' results).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesListing {
    pub summary: FilesSummary,
    pub records: Vec<FileRecord>,
}
