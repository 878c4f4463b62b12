//! QEMU copy-on-write disks, read-only: QCOW2 (versions 2 and 3, the format
//! of QEMU's `docs/interop/qcow2.txt`) and the original QCOW (version 1).
//!
//! At open the header is checked (cluster size, table sizes and offsets
//! against the file, feature bits, header extensions), the active L1 table
//! and every L2 table it references are loaded into memory (each distinct
//! table once; their total is bounded by the file size and by
//! [`MAX_L2_BYTES`]), the internal snapshots are listed (only the active
//! state is read), and the backing chain is opened from the files given as
//! evidence: a backing file is never looked up on disk by the name the image
//! records.
//!
//! [`Evidence::read_at`] needs no lock on its I/O path: guest clusters are
//! mapped through the in-memory tables, runs of clusters stored back to back
//! in the file are fetched with one positional read straight into the
//! caller's buffer, unallocated clusters read as zeros (or from the backing
//! file), and a compressed cluster wholly covered by the read is inflated
//! straight into the caller's buffer. Reads that cover part of a compressed
//! cluster go through a small shared cache of inflated clusters.
//!
//! Every table entry is checked when its cluster is read: an unaligned
//! offset or an invalid combination of flags is [`EvidenceError::Corrupt`],
//! data past the end of the file [`EvidenceError::Truncated`], each naming
//! the file and the offset of the entry or of the data. Unsupported features
//! (encryption, external data files, zstd-compressed clusters) are refused at
//! open, naming the feature.

use super::ContainerFile;
use crate::{Evidence, EvidenceError, EvidenceInfo, Format, RawEvidence, StoredHashes};
use flate2::{Decompress, FlushDecompress};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// "QFI\xfb": every QCOW version starts with it.
pub const MAGIC: &[u8; 4] = b"QFI\xfb";

/// Largest active L1 table accepted (QEMU's own limit: 32 MiB).
const MAX_L1_BYTES: u64 = 32 << 20;
/// Largest total of L2 tables loaded at open (8 bytes per guest cluster:
/// enough for an 8 TiB disk of 64 KiB clusters).
pub const MAX_L2_BYTES: u64 = 1 << 30;
/// Most snapshots listed (QEMU's limit).
const MAX_SNAPSHOTS: u32 = 65_536;
/// Largest snapshot table read (QEMU's limit).
const MAX_SNAPSHOT_TABLE: u64 = 64 << 20;
/// Largest extra data of one snapshot table entry (QEMU's limit).
const MAX_SNAPSHOT_EXTRA: u32 = 1024;
/// Total bytes of inflated clusters kept for partial reads.
const CACHE_BYTES: u64 = 16 << 20;
/// Scratch memory a thread keeps between reads.
const MAX_RETAINED_SCRATCH: usize = 8 << 20;

const L1E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const OFLAG_COMPRESSED: u64 = 1 << 62;
const OFLAG_ZERO: u64 = 1;
/// QCOW version 1: bit 63 flags a compressed cluster.
const V1_OFLAG_COMPRESSED: u64 = 1 << 63;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 = 0x1f;

const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_FEATURE_TABLE: u32 = 0x6803_f857;
const EXT_BITMAPS: u32 = 0x2385_2875;
const EXT_CRYPTO: u32 = 0x0537_be77;
const EXT_DATA_FILE: u32 = 0x4441_5441;

/// L1 slot values at or above this are not table indices.
const L1_NONE: u32 = u32::MAX;
const L1_UNALIGNED: u32 = u32::MAX - 1;
const L1_PAST_END: u32 = u32::MAX - 2;
const L1_FIRST_SPECIAL: u32 = u32::MAX - 2;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// Whether `head` (the first bytes of a file) starts a QCOW image of
/// version 1, 2 or 3.
pub fn probe(head: &[u8]) -> bool {
    head.len() >= 8 && head[..4] == MAGIC[..] && matches!(be32(head, 4), 1..=3)
}

/// An unsupported-feature error.
fn unsupported(path: &Path, hint: &'static str) -> EvidenceError {
    EvidenceError::Unsupported {
        path: path.to_path_buf(),
        format: "qcow2",
        hint,
    }
}

fn truncated(path: &Path, offset: u64, what: String) -> EvidenceError {
    EvidenceError::Truncated {
        path: path.to_path_buf(),
        offset,
        what,
    }
}

// ---------------------------------------------------------------------------
// Header

/// The fields of a QCOW header this reader uses (all versions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Header {
    version: u32,
    backing_file_offset: u64,
    backing_file_size: u32,
    cluster_bits: u32,
    /// Virtual size as recorded.
    size: u64,
    crypt_method: u32,
    /// Entries of the active L1 table (v2/v3 as recorded; v1 derived).
    l1_size: u64,
    l1_table_offset: u64,
    /// log2 of the entries of one L2 table.
    l2_bits: u32,
    refcount_table_offset: u64,
    refcount_table_clusters: u32,
    nb_snapshots: u32,
    snapshots_offset: u64,
    incompatible: u64,
    compatible: u64,
    autoclear: u64,
    refcount_order: u32,
    header_length: u32,
    compression_type: u8,
    /// v1: modification time of the backing file.
    mtime: u32,
}

impl Header {
    fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    fn extended_l2(&self) -> bool {
        self.incompatible & INCOMPAT_EXTL2 != 0
    }

    /// Parses and checks a header from the first bytes of `file` (`head`
    /// holds up to 512 of them).
    fn parse(file: &ContainerFile, head: &[u8]) -> Result<Self, EvidenceError> {
        let path = file.path();
        if head.len() < 8 || head[..4] != MAGIC[..] {
            return Err(EvidenceError::UnknownFormat {
                path: path.to_path_buf(),
                reason: "no QCOW magic (\"QFI\\xfb\") at offset 0".into(),
            });
        }
        let version = be32(head, 4);
        let need = match version {
            1 => 48,
            2 => 72,
            3 => 104,
            v => {
                return Err(EvidenceError::UnknownFormat {
                    path: path.to_path_buf(),
                    reason: format!(
                        "QCOW version {v} (at offset 4): only versions 1, 2 and 3 are known"
                    ),
                });
            }
        };
        if head.len() < need {
            return Err(truncated(
                path,
                0,
                format!(
                    "QCOW version {version} header: {need} bytes needed, the file has {}",
                    head.len()
                ),
            ));
        }
        if version == 1 {
            Self::parse_v1(file, head)
        } else {
            Self::parse_v2(file, head, version)
        }
    }

    fn parse_v1(file: &ContainerFile, h: &[u8]) -> Result<Self, EvidenceError> {
        let mut hd = Header {
            version: 1,
            backing_file_offset: be64(h, 8),
            backing_file_size: be32(h, 16),
            mtime: be32(h, 20),
            size: be64(h, 24),
            cluster_bits: u32::from(h[32]),
            l2_bits: u32::from(h[33]),
            crypt_method: be32(h, 36),
            l1_table_offset: be64(h, 40),
            refcount_order: 4,
            header_length: 48,
            ..Header::default()
        };
        if !(9..=16).contains(&hd.cluster_bits) {
            return Err(file.corrupt(
                32,
                format!(
                    "QCOW cluster_bits is {}: must be 9 to 16 (512-byte to 64 KiB clusters)",
                    hd.cluster_bits
                ),
            ));
        }
        if !(6..=13).contains(&hd.l2_bits) {
            return Err(file.corrupt(
                33,
                format!(
                    "QCOW l2_bits is {}: must be 6 to 13 (L2 tables of 512 bytes to 64 KiB)",
                    hd.l2_bits
                ),
            ));
        }
        match hd.crypt_method {
            0 => {}
            1 => {
                return Err(unsupported(
                    file.path(),
                    "QCOW image encrypted with AES: the key is not available; decrypt it with `qemu-img convert --object secret,... -O raw` first",
                ));
            }
            m => {
                return Err(file.corrupt(36, format!("QCOW crypt_method is {m}: 0 or 1 only")));
            }
        }
        let shift = hd.cluster_bits + hd.l2_bits;
        hd.l1_size = (hd.size >> shift) + u64::from(hd.size & ((1 << shift) - 1) != 0);
        Ok(hd)
    }

    fn parse_v2(file: &ContainerFile, h: &[u8], version: u32) -> Result<Self, EvidenceError> {
        let mut hd = Header {
            version,
            backing_file_offset: be64(h, 8),
            backing_file_size: be32(h, 16),
            cluster_bits: be32(h, 20),
            size: be64(h, 24),
            crypt_method: be32(h, 32),
            l1_size: u64::from(be32(h, 36)),
            l1_table_offset: be64(h, 40),
            refcount_table_offset: be64(h, 48),
            refcount_table_clusters: be32(h, 56),
            nb_snapshots: be32(h, 60),
            snapshots_offset: be64(h, 64),
            refcount_order: 4,
            header_length: 72,
            ..Header::default()
        };
        if !(9..=21).contains(&hd.cluster_bits) {
            return Err(file.corrupt(
                20,
                format!(
                    "qcow2 cluster_bits is {}: must be 9 to 21 (512-byte to 2 MiB clusters)",
                    hd.cluster_bits
                ),
            ));
        }
        if version >= 3 {
            hd.incompatible = be64(h, 72);
            hd.compatible = be64(h, 80);
            hd.autoclear = be64(h, 88);
            hd.refcount_order = be32(h, 96);
            hd.header_length = be32(h, 100);
            if hd.header_length < 104 {
                return Err(file.corrupt(
                    100,
                    format!(
                        "qcow2 v3 header_length is {}: at least 104",
                        hd.header_length
                    ),
                ));
            }
            if u64::from(hd.header_length) > hd.cluster_size() {
                return Err(file.corrupt(
                    100,
                    format!(
                        "qcow2 header_length {} exceeds the cluster size {}",
                        hd.header_length,
                        hd.cluster_size()
                    ),
                ));
            }
            if hd.refcount_order > 6 {
                return Err(file.corrupt(
                    96,
                    format!("qcow2 refcount_order is {}: at most 6", hd.refcount_order),
                ));
            }
            if hd.header_length > 104 {
                // The header may be longer than the 512 bytes in `h`: only
                // the compression type byte (offset 104) matters here.
                let mut b = [0u8; 1];
                file.read_exact_at(104, &mut b, "qcow2 header compression_type")?;
                hd.compression_type = b[0];
            }
        }
        match hd.crypt_method {
            0 => {}
            1 | 2 => {
                return Err(unsupported(
                    file.path(),
                    "encrypted qcow2 image (AES or LUKS): the key is not available; decrypt it with `qemu-img convert --object secret,... -O raw` first",
                ));
            }
            m => {
                return Err(file.corrupt(
                    32,
                    format!("qcow2 crypt_method is {m}: 0, 1 (AES) or 2 (LUKS) only"),
                ));
            }
        }
        if hd.incompatible & INCOMPAT_DATA_FILE != 0 {
            return Err(unsupported(
                file.path(),
                "qcow2 image with an external data file (incompatible feature bit 2): its guest data lives in another file this reader does not open; convert with `qemu-img convert -O raw`",
            ));
        }
        let has_type_bit = hd.incompatible & INCOMPAT_COMPRESSION != 0;
        match (has_type_bit, hd.compression_type) {
            (false, 0) | (true, 1) => {}
            (false, t) => {
                return Err(file.corrupt(
                    104,
                    format!(
                        "qcow2 compression_type is {t} but the compression-type feature bit is clear"
                    ),
                ));
            }
            (true, 0) => {
                return Err(file.corrupt(
                    72,
                    "qcow2 compression-type feature bit is set but compression_type is 0 (zlib)",
                ));
            }
            (true, t) => {
                return Err(file.corrupt(
                    104,
                    format!("qcow2 compression_type is {t}: only 0 (zlib) and 1 (zstd) exist"),
                ));
            }
        }
        if hd.extended_l2() && hd.cluster_bits < 14 {
            return Err(file.corrupt(
                20,
                format!(
                    "qcow2 image with extended L2 entries has {}-byte clusters: at least 16 KiB",
                    hd.cluster_size()
                ),
            ));
        }
        hd.l2_bits = hd.cluster_bits - if hd.extended_l2() { 4 } else { 3 };
        Ok(hd)
    }

    /// Entries of the L1 table that map the virtual disk.
    fn l1_needed(&self) -> u64 {
        let shift = self.cluster_bits + self.l2_bits;
        (self.size >> shift) + u64::from(self.size & ((1 << shift) - 1) != 0)
    }
}

/// What the header extensions of a v2/v3 image say.
#[derive(Debug, Default)]
struct Extensions {
    backing_format: Option<String>,
    /// (type, bit) → feature name.
    feature_names: BTreeMap<(u8, u8), String>,
    data_file: Option<String>,
    bitmaps: bool,
    crypto: bool,
}

/// Walks the header extensions between the header and `end`.
fn read_extensions(file: &ContainerFile, hd: &Header) -> Result<Extensions, EvidenceError> {
    let cs = hd.cluster_size();
    let start = u64::from(hd.header_length);
    let mut end = if hd.backing_file_offset != 0 && hd.backing_file_offset < cs {
        hd.backing_file_offset
    } else {
        cs
    };
    end = end.min(file.len());
    let mut ext = Extensions::default();
    if end <= start {
        return Ok(ext);
    }
    let mut area = vec![0u8; (end - start) as usize];
    file.read_exact_at(start, &mut area, "qcow2 header extensions")?;
    let mut pos = 0usize;
    while pos + 8 <= area.len() {
        let at = start + pos as u64;
        let kind = be32(&area, pos);
        let len = be32(&area, pos + 4) as usize;
        if kind == EXT_END {
            break;
        }
        let data_at = pos + 8;
        if len > area.len() - data_at {
            return Err(file.corrupt(
                at,
                format!(
                    "qcow2 header extension {kind:#010x} claims {len} bytes, past the end of the header area at offset {end}"
                ),
            ));
        }
        let data = &area[data_at..data_at + len];
        match kind {
            EXT_BACKING_FORMAT => {
                if len >= 16 {
                    return Err(file.corrupt(
                        at,
                        format!(
                            "qcow2 backing file format extension is {len} bytes long: at most 15"
                        ),
                    ));
                }
                ext.backing_format = Some(String::from_utf8_lossy(data).into_owned());
            }
            EXT_FEATURE_TABLE => {
                for e in data.chunks_exact(48) {
                    let name = &e[2..];
                    let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                    ext.feature_names
                        .insert((e[0], e[1]), String::from_utf8_lossy(name).into_owned());
                }
            }
            EXT_DATA_FILE => ext.data_file = Some(String::from_utf8_lossy(data).into_owned()),
            EXT_BITMAPS => ext.bitmaps = true,
            EXT_CRYPTO => ext.crypto = true,
            _ => {}
        }
        pos = data_at + len.div_ceil(8) * 8;
    }
    Ok(ext)
}

// ---------------------------------------------------------------------------
// Snapshots

/// One internal snapshot (listed, never read).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    id: String,
    name: String,
    date_sec: u32,
    date_nsec: u32,
    vm_clock_nsec: u64,
    vm_state_size: u64,
    l1_size: u32,
    disk_size: Option<u64>,
}

/// Reads the snapshot table (bounded by QEMU's own limits).
fn read_snapshots(file: &ContainerFile, hd: &Header) -> Result<Vec<Snapshot>, EvidenceError> {
    if hd.nb_snapshots == 0 {
        return Ok(Vec::new());
    }
    if hd.nb_snapshots > MAX_SNAPSHOTS {
        return Err(file.corrupt(
            60,
            format!(
                "qcow2 header lists {} snapshots: at most {MAX_SNAPSHOTS}",
                hd.nb_snapshots
            ),
        ));
    }
    if !hd.snapshots_offset.is_multiple_of(hd.cluster_size()) {
        return Err(file.corrupt(
            64,
            format!(
                "qcow2 snapshot table offset {} is not aligned to a cluster",
                hd.snapshots_offset
            ),
        ));
    }
    let mut out = Vec::new();
    let mut pos = hd.snapshots_offset;
    for i in 0..hd.nb_snapshots {
        if pos - hd.snapshots_offset > MAX_SNAPSHOT_TABLE {
            return Err(file.corrupt(
                pos,
                format!("qcow2 snapshot table is larger than {MAX_SNAPSHOT_TABLE} bytes"),
            ));
        }
        let what = format!("qcow2 snapshot table entry {i}");
        let mut e = [0u8; 40];
        file.read_exact_at(pos, &mut e, &what)?;
        let id_len = u64::from(be16(&e, 12));
        let name_len = u64::from(be16(&e, 14));
        let extra_len = be32(&e, 36);
        if extra_len > MAX_SNAPSHOT_EXTRA {
            return Err(file.corrupt(
                pos + 36,
                format!("{what} has {extra_len} bytes of extra data: at most {MAX_SNAPSHOT_EXTRA}"),
            ));
        }
        let extra_len = u64::from(extra_len);
        let mut var = vec![0u8; (extra_len + id_len + name_len) as usize];
        file.read_exact_at(pos + 40, &mut var, &what)?;
        let (extra, rest) = var.split_at(extra_len as usize);
        let (id, name) = rest.split_at(id_len as usize);
        let vm_state_size = if extra.len() >= 8 {
            be64(extra, 0)
        } else {
            u64::from(be32(&e, 32))
        };
        out.push(Snapshot {
            id: String::from_utf8_lossy(id).into_owned(),
            name: String::from_utf8_lossy(name).into_owned(),
            date_sec: be32(&e, 16),
            date_nsec: be32(&e, 20),
            vm_clock_nsec: be64(&e, 24),
            vm_state_size,
            l1_size: be32(&e, 8),
            disk_size: (extra.len() >= 16).then(|| be64(extra, 8)),
        });
        pos += (40 + extra_len + id_len + name_len).div_ceil(8) * 8;
    }
    Ok(out)
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn describe_snapshots(snaps: &[Snapshot]) -> String {
    let mut s = String::new();
    for sn in snaps {
        if !s.is_empty() {
            s.push('\n');
        }
        let clock = sn.vm_clock_nsec / 1_000_000;
        s.push_str(&format!(
            "id={:?} name={:?} date={} date_nsec={} vm_clock={:02}:{:02}:{:02}.{:03} vm_state_size={} l1_size={}",
            sn.id,
            sn.name,
            utc(u64::from(sn.date_sec)),
            sn.date_nsec,
            clock / 3_600_000,
            clock / 60_000 % 60,
            clock / 1000 % 60,
            clock % 1000,
            sn.vm_state_size,
            sn.l1_size,
        ));
        if let Some(d) = sn.disk_size {
            s.push_str(&format!(" disk_size={d}"));
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Partial-read cache of inflated compressed clusters

#[derive(Debug)]
struct Slot {
    /// Host offset and stored length of the compressed cluster.
    key: (u64, u64),
    data: Vec<u8>,
    used: u64,
}

#[derive(Debug)]
struct Cache {
    slots: Vec<Slot>,
    cap: usize,
    tick: u64,
}

impl Cache {
    fn new(cluster_size: u64) -> Self {
        Self {
            slots: Vec::new(),
            cap: (CACHE_BYTES / cluster_size).clamp(2, 64) as usize,
            tick: 0,
        }
    }

    /// Copies `out.len()` bytes at `within` of cached cluster `key`.
    fn copy_out(&mut self, key: (u64, u64), within: usize, out: &mut [u8]) -> bool {
        self.tick += 1;
        let tick = self.tick;
        match self.slots.iter_mut().find(|s| s.key == key) {
            Some(s) => {
                s.used = tick;
                out.copy_from_slice(&s.data[within..within + out.len()]);
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: (u64, u64), data: &[u8]) {
        self.tick += 1;
        let tick = self.tick;
        if self.slots.iter().any(|s| s.key == key) {
            return;
        }
        if self.slots.len() < self.cap {
            self.slots.push(Slot {
                key,
                data: data.to_vec(),
                used: tick,
            });
            return;
        }
        if let Some(v) = self.slots.iter_mut().min_by_key(|s| s.used) {
            v.key = key;
            v.used = tick;
            v.data.clear();
            v.data.extend_from_slice(data);
        }
    }
}

/// Per-thread buffers reused across reads.
#[derive(Default)]
struct Scratch {
    input: Vec<u8>,
    cluster: Vec<u8>,
    inflater: Option<Decompress>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

// ---------------------------------------------------------------------------
// One image of a chain

/// The backing file of an image.
#[derive(Debug)]
enum Backing {
    Raw(RawEvidence),
    Qcow(Box<Image>),
}

impl Backing {
    fn size(&self) -> u64 {
        match self {
            Backing::Raw(r) => r.size(),
            Backing::Qcow(q) => q.size,
        }
    }

    /// Fills `buf` with the backing file's bytes at `offset`, zeros past its
    /// end.
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), EvidenceError> {
        let size = self.size();
        let avail = if offset >= size {
            0
        } else {
            (size - offset).min(buf.len() as u64) as usize
        };
        let (data, zeros) = buf.split_at_mut(avail);
        if !data.is_empty() {
            match self {
                Backing::Raw(r) => r.read_exact_at(offset, data)?,
                Backing::Qcow(q) => q.read_into(offset, data)?,
            }
        }
        zeros.fill(0);
        Ok(())
    }
}

/// How a stretch of the virtual disk is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reads as zeros.
    Zero,
    /// Not allocated: the backing file, or zeros.
    Unallocated,
    /// Stored at this host offset (of the first byte of the stretch).
    Data(u64),
    /// A compressed cluster: its data at `offset`, at most `len` bytes.
    Compressed { offset: u64, len: u64 },
}

/// A uniform stretch of the virtual disk starting at a guest offset.
#[derive(Debug, Clone, Copy)]
struct Unit {
    kind: Kind,
    /// Bytes from the guest offset to the end of the stretch.
    len: u64,
    /// File offset of the table entry that maps it (for errors).
    entry: u64,
}

/// One QCOW image file: its geometry and its loaded tables.
struct Image {
    file: ContainerFile,
    version: u32,
    cluster_bits: u32,
    l2_bits: u32,
    extended: bool,
    /// Virtual size (the header's, rounded down to 512 bytes as QEMU does).
    size: u64,
    l1_table_offset: u64,
    /// Raw L1 entries (for messages).
    l1_raw: Vec<u64>,
    /// Index of each L1 entry's L2 table in `l2`, or an `L1_*` code.
    l1: Vec<u32>,
    /// Every loaded L2 table, back to back (extended entries: two words).
    l2: Vec<u64>,
    /// File offset of each loaded L2 table.
    l2_offsets: Vec<u64>,
    backing: Option<Backing>,
    cache: Mutex<Cache>,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("path", &self.file.path())
            .field("version", &self.version)
            .field("cluster_bits", &self.cluster_bits)
            .field("extended", &self.extended)
            .field("size", &self.size)
            .field("l2_tables", &self.l2_offsets.len())
            .field("backing", &self.backing)
            .finish_non_exhaustive()
    }
}

/// State shared while a backing chain is opened.
struct Chain<'a> {
    /// Every file the user gave (the top image first).
    pool: &'a [PathBuf],
    /// Canonical paths of the images opened so far.
    visited: Vec<PathBuf>,
    /// Every file opened, top first.
    segments: Vec<PathBuf>,
    /// "path (format)" for each backing file.
    descriptions: Vec<String>,
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Image {
    fn open(
        path: &Path,
        chain: &mut Chain<'_>,
        facts: Option<&mut BTreeMap<String, String>>,
    ) -> Result<Self, EvidenceError> {
        let file = ContainerFile::open(path)?;
        let mut head = vec![0u8; file.len().min(512) as usize];
        file.read_exact_at(0, &mut head, "QCOW header")?;
        let hd = Header::parse(&file, &head)?;
        let ext = if hd.version >= 2 {
            read_extensions(&file, &hd)?
        } else {
            Extensions::default()
        };
        let unknown = hd.incompatible & !INCOMPAT_KNOWN;
        if unknown != 0 {
            let names: Vec<String> = (0..64u8)
                .filter(|b| unknown & (1 << b) != 0)
                .map(|b| match ext.feature_names.get(&(0, b)) {
                    Some(n) => format!("bit {b} ({n:?})"),
                    None => format!("bit {b}"),
                })
                .collect();
            return Err(EvidenceError::UnknownFormat {
                path: path.to_path_buf(),
                reason: format!(
                    "qcow2 incompatible features this reader does not know are set at offset 72: {}",
                    names.join(", ")
                ),
            });
        }

        let cs = hd.cluster_size();
        let needed = hd.l1_needed();
        if needed > hd.l1_size {
            return Err(file.corrupt(
                36,
                format!(
                    "L1 table has {} entries, {needed} are needed to map the {}-byte virtual disk",
                    hd.l1_size, hd.size
                ),
            ));
        }
        if hd.version >= 2 && hd.l1_size.saturating_mul(8) > MAX_L1_BYTES {
            return Err(file.corrupt(
                36,
                format!(
                    "L1 table has {} entries: more than the {} QEMU allows",
                    hd.l1_size,
                    MAX_L1_BYTES / 8
                ),
            ));
        }
        if needed.saturating_mul(8) > MAX_L1_BYTES {
            return Err(file.corrupt(
                24,
                format!(
                    "a {}-byte virtual disk needs an L1 table of {needed} entries: more than {}",
                    hd.size,
                    MAX_L1_BYTES / 8
                ),
            ));
        }
        if hd.version >= 2 && !hd.l1_table_offset.is_multiple_of(cs) {
            return Err(file.corrupt(
                40,
                format!(
                    "L1 table offset {} is not aligned to a {cs}-byte cluster",
                    hd.l1_table_offset
                ),
            ));
        }
        // `needed` entries fit the file: checked before allocating them.
        let l1_bytes = needed * 8;
        if hd
            .l1_table_offset
            .checked_add(l1_bytes)
            .is_none_or(|e| e > file.len())
        {
            return Err(truncated(
                path,
                hd.l1_table_offset,
                format!(
                    "L1 table ({needed} entries at offset {}) passes the end of the file ({} bytes)",
                    hd.l1_table_offset,
                    file.len()
                ),
            ));
        }
        let mut raw = vec![0u8; l1_bytes as usize];
        file.read_exact_at(hd.l1_table_offset, &mut raw, "L1 table")?;
        let l1_raw: Vec<u64> = raw.chunks_exact(8).map(|c| be64(c, 0)).collect();
        drop(raw);

        let Tables {
            l1,
            l2,
            offsets: l2_offsets,
        } = load_l2_tables(&file, &hd, &l1_raw)?;

        if hd.compression_type == 1 {
            let stride = if hd.extended_l2() { 2 } else { 1 };
            if l2.iter().step_by(stride).any(|e| e & OFLAG_COMPRESSED != 0) {
                return Err(unsupported(
                    path,
                    "qcow2 image with zstd-compressed clusters (compression_type 1): this reader inflates zlib only; convert with `qemu-img convert -O raw`",
                ));
            }
        }

        let backing_name = if hd.backing_file_offset != 0 && hd.backing_file_size != 0 {
            if hd.backing_file_size > 1023 {
                return Err(file.corrupt(
                    16,
                    format!(
                        "backing file name is {} bytes long: at most 1023",
                        hd.backing_file_size
                    ),
                ));
            }
            let mut name = vec![0u8; hd.backing_file_size as usize];
            file.read_exact_at(hd.backing_file_offset, &mut name, "backing file name")?;
            Some(name)
        } else {
            None
        };

        let snapshots = if hd.version >= 2 {
            Some(read_snapshots(&file, &hd))
        } else {
            None
        };

        if let Some(facts) = facts {
            describe(facts, &hd, &ext, backing_name.as_deref(), snapshots);
        }

        let canon = canonical(path);
        chain.visited.push(canon);
        let backing = match &backing_name {
            Some(name) => Some(open_backing(
                &file,
                &hd,
                name,
                ext.backing_format.as_deref(),
                chain,
            )?),
            None => None,
        };

        Ok(Image {
            version: hd.version,
            cluster_bits: hd.cluster_bits,
            l2_bits: hd.l2_bits,
            extended: hd.extended_l2(),
            size: hd.size & !511,
            l1_table_offset: hd.l1_table_offset,
            l1_raw,
            l1,
            l2,
            l2_offsets,
            backing,
            cache: Mutex::new(Cache::new(cs)),
            file,
        })
    }

    fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Words per L2 entry.
    fn stride(&self) -> usize {
        if self.extended { 2 } else { 1 }
    }

    /// How the virtual disk is stored from guest offset `g` (< size).
    fn unit(&self, g: u64) -> Result<Unit, EvidenceError> {
        let cb = self.cluster_bits;
        let cs = self.cluster_size();
        let within = g & (cs - 1);
        let l1_shift = cb + self.l2_bits;
        let l1_index = (g >> l1_shift) as usize;
        let l1_entry_at = self.l1_table_offset + l1_index as u64 * 8;
        let slot = self.l1.get(l1_index).copied().unwrap_or(L1_NONE);
        if slot >= L1_FIRST_SPECIAL {
            let raw = self.l1_raw.get(l1_index).copied().unwrap_or(0);
            return match slot {
                L1_UNALIGNED => Err(self.file.corrupt(
                    l1_entry_at,
                    format!(
                        "L1 entry {l1_index} ({raw:#018x}) points to an L2 table at offset {} that is not aligned to a {cs}-byte cluster",
                        raw & L1E_OFFSET_MASK
                    ),
                )),
                L1_PAST_END => Err(truncated(
                    self.file.path(),
                    l1_entry_at,
                    format!(
                        "L1 entry {l1_index} ({raw:#018x}) points to an L2 table at offset {} that passes the end of the file ({} bytes)",
                        self.l1_target(raw),
                        self.file.len()
                    ),
                )),
                _ => Ok(Unit {
                    kind: Kind::Unallocated,
                    len: (1u64 << l1_shift) - (g & ((1u64 << l1_shift) - 1)),
                    entry: l1_entry_at,
                }),
            };
        }
        let l2_index = ((g >> cb) & ((1u64 << self.l2_bits) - 1)) as usize;
        let stride = self.stride();
        let base = (slot as usize * (1usize << self.l2_bits) + l2_index) * stride;
        let e = self.l2[base];
        let entry = self.l2_offsets[slot as usize] + (l2_index * stride * 8) as u64;
        let rest = cs - within;

        if self.version == 1 {
            if e == 0 {
                return Ok(Unit {
                    kind: Kind::Unallocated,
                    len: rest,
                    entry,
                });
            }
            if e & V1_OFLAG_COMPRESSED != 0 {
                let shift = 63 - cb;
                return Ok(Unit {
                    kind: Kind::Compressed {
                        offset: e & ((1u64 << shift) - 1),
                        len: (e >> shift) & (cs - 1),
                    },
                    len: rest,
                    entry,
                });
            }
            if e & 511 != 0 {
                return Err(self.file.corrupt(
                    entry,
                    format!("L2 entry ({e:#018x}) of guest offset {g}: cluster offset is not aligned to 512 bytes"),
                ));
            }
            return Ok(Unit {
                kind: Kind::Data(e + within),
                len: rest,
                entry,
            });
        }

        if e & OFLAG_COMPRESSED != 0 {
            let shift = 62 - (cb - 8);
            let offset = e & ((1u64 << shift) - 1);
            let sectors = ((e >> shift) & ((1u64 << (cb - 8)) - 1)) + 1;
            return Ok(Unit {
                kind: Kind::Compressed {
                    offset,
                    len: sectors * 512 - (offset & 511),
                },
                len: rest,
                entry,
            });
        }
        let host = e & L2E_OFFSET_MASK;
        if host != 0 && host & (cs - 1) != 0 {
            return Err(self.file.corrupt(
                entry,
                format!(
                    "L2 entry ({e:#018x}) of guest offset {g}: cluster offset {host} is not aligned to a {cs}-byte cluster"
                ),
            ));
        }
        if !self.extended {
            if e & OFLAG_ZERO != 0 {
                if self.version < 3 {
                    return Err(self.file.corrupt(
                        entry,
                        format!(
                            "L2 entry ({e:#018x}) of guest offset {g} has the zero flag, which version 2 images do not have"
                        ),
                    ));
                }
                return Ok(Unit {
                    kind: Kind::Zero,
                    len: rest,
                    entry,
                });
            }
            let kind = if host == 0 {
                Kind::Unallocated
            } else {
                Kind::Data(host + within)
            };
            return Ok(Unit {
                kind,
                len: rest,
                entry,
            });
        }

        // Extended L2 entries: 32 subclusters with allocation and zero bits.
        let bitmap = self.l2[base + 1];
        let alloc = bitmap as u32;
        let zero = (bitmap >> 32) as u32;
        if alloc & zero != 0 {
            return Err(self.file.corrupt(
                entry + 8,
                format!(
                    "extended L2 entry of guest offset {g}: subclusters {alloc_zero:#010x} are marked both allocated and zero",
                    alloc_zero = alloc & zero
                ),
            ));
        }
        if host == 0 && alloc != 0 {
            return Err(self.file.corrupt(
                entry,
                format!(
                    "extended L2 entry ({e:#018x}) of guest offset {g}: subclusters {alloc:#010x} are allocated but the cluster has no host offset"
                ),
            ));
        }
        let sc_bits = cb - 5;
        let sc = (within >> sc_bits) as u32;
        let class = |i: u32| -> u8 {
            if zero & (1 << i) != 0 {
                0
            } else if alloc & (1 << i) != 0 {
                1
            } else {
                2
            }
        };
        let c = class(sc);
        let mut last = sc;
        while last + 1 < 32 && class(last + 1) == c {
            last += 1;
        }
        let len = (u64::from(last + 1) << sc_bits) - within;
        let kind = match c {
            0 => Kind::Zero,
            1 => Kind::Data(host + within),
            _ => Kind::Unallocated,
        };
        Ok(Unit { kind, len, entry })
    }

    /// The offset an L1 entry points to.
    fn l1_target(&self, raw: u64) -> u64 {
        if self.version == 1 {
            raw
        } else {
            raw & L1E_OFFSET_MASK
        }
    }

    /// Fills `buf` with the virtual disk's bytes at `offset`; the range must
    /// lie inside the virtual disk.
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<(), EvidenceError> {
        debug_assert!(offset + buf.len() as u64 <= self.size);
        let flen = self.file.len();
        let mut pos = 0usize;
        // The pending run: its kind, where it starts in `buf`, its length.
        let mut run: Option<(Kind, usize, usize)> = None;
        while pos < buf.len() {
            let g = offset + pos as u64;
            let u = self.unit(g)?;
            let n = u.len.min((buf.len() - pos) as u64) as usize;
            let kind = match u.kind {
                Kind::Compressed { offset: c, len } => {
                    if let Some(r) = run.take() {
                        self.flush(offset, buf, r)?;
                    }
                    let within = (g & (self.cluster_size() - 1)) as usize;
                    self.read_compressed(c, len, u.entry, g, within, &mut buf[pos..pos + n])?;
                    pos += n;
                    continue;
                }
                Kind::Data(h) => {
                    if h.checked_add(n as u64).is_none_or(|e| e > flen) {
                        return Err(truncated(
                            self.file.path(),
                            u.entry,
                            format!(
                                "data of guest offset {g} ({n} bytes at host offset {h}, mapped by the L2 entry at offset {}) passes the end of the file ({flen} bytes)",
                                u.entry
                            ),
                        ));
                    }
                    Kind::Data(h)
                }
                Kind::Unallocated if self.backing.is_none() => Kind::Zero,
                k => k,
            };
            run = match run {
                Some((rk, start, len)) if continues(rk, len, kind) => Some((rk, start, len + n)),
                Some(r) => {
                    self.flush(offset, buf, r)?;
                    Some((kind, pos, n))
                }
                None => Some((kind, pos, n)),
            };
            pos += n;
        }
        if let Some(r) = run {
            self.flush(offset, buf, r)?;
        }
        Ok(())
    }

    /// Reads a pending run into `buf[start..start + len]`.
    fn flush(
        &self,
        offset: u64,
        buf: &mut [u8],
        (kind, start, len): (Kind, usize, usize),
    ) -> Result<(), EvidenceError> {
        let out = &mut buf[start..start + len];
        match kind {
            Kind::Zero => out.fill(0),
            Kind::Data(h) => self.file.read_exact_at(h, out, "guest data clusters")?,
            Kind::Unallocated => match &self.backing {
                Some(b) => b.read(offset + start as u64, out)?,
                None => out.fill(0),
            },
            Kind::Compressed { .. } => unreachable!("compressed clusters are never batched"),
        }
        Ok(())
    }

    /// Copies `out.len()` bytes at `within` of the compressed cluster stored
    /// at `coff` (at most `clen` bytes) into `out`.
    #[allow(clippy::too_many_arguments)]
    fn read_compressed(
        &self,
        coff: u64,
        clen: u64,
        entry: u64,
        g: u64,
        within: usize,
        out: &mut [u8],
    ) -> Result<(), EvidenceError> {
        let cs = self.cluster_size() as usize;
        if within == 0 && out.len() == cs {
            return SCRATCH.with(|s| {
                let s = &mut *s.borrow_mut();
                let r = self.inflate(coff, clen, entry, g, &mut s.input, &mut s.inflater, out);
                trim(s);
                r
            });
        }
        if self.cache.lock().copy_out((coff, clen), within, out) {
            return Ok(());
        }
        SCRATCH.with(|s| {
            let s = &mut *s.borrow_mut();
            let mut cluster = std::mem::take(&mut s.cluster);
            cluster.resize(cs, 0);
            let r = self.inflate(
                coff,
                clen,
                entry,
                g,
                &mut s.input,
                &mut s.inflater,
                &mut cluster,
            );
            if r.is_ok() {
                out.copy_from_slice(&cluster[within..within + out.len()]);
                self.cache.lock().insert((coff, clen), &cluster);
            }
            s.cluster = cluster;
            trim(s);
            r
        })
    }

    /// Inflates the compressed cluster at `coff` into `dest` (one cluster).
    #[allow(clippy::too_many_arguments)]
    fn inflate(
        &self,
        coff: u64,
        clen: u64,
        entry: u64,
        g: u64,
        input: &mut Vec<u8>,
        inflater: &mut Option<Decompress>,
        dest: &mut [u8],
    ) -> Result<(), EvidenceError> {
        let flen = self.file.len();
        if coff >= flen {
            return Err(truncated(
                self.file.path(),
                entry,
                format!(
                    "compressed cluster of guest offset {g} (L2 entry at offset {entry}) starts at host offset {coff}, past the end of the file ({flen} bytes)"
                ),
            ));
        }
        // The last sector of compressed data may pass the end of the file:
        // QEMU reads zeros there, and inflating stops at a full cluster.
        let n = clen.min(flen - coff) as usize;
        input.resize(n, 0);
        self.file
            .read_exact_at(coff, &mut input[..n], "compressed cluster")?;
        let dec = inflater.get_or_insert_with(|| Decompress::new(false));
        dec.reset(false);
        let res = dec.decompress(&input[..n], dest, FlushDecompress::Finish);
        let corrupt = |why: String| {
            self.file.corrupt(
                coff,
                format!(
                    "compressed cluster of guest offset {g} ({n} bytes at host offset {coff}, L2 entry at offset {entry}): {why}"
                ),
            )
        };
        if let Err(e) = res {
            return Err(corrupt(format!("deflate stream is corrupt: {e}")));
        }
        let got = dec.total_out();
        if got != dest.len() as u64 {
            return Err(corrupt(format!(
                "inflates to {got} bytes, not a whole {}-byte cluster",
                dest.len()
            )));
        }
        Ok(())
    }
}

fn trim(s: &mut Scratch) {
    for v in [&mut s.input, &mut s.cluster] {
        if v.capacity() > MAX_RETAINED_SCRATCH {
            *v = Vec::new();
        }
    }
}

/// Whether a run of `rk` of `len` bytes continues with a stretch of `k`.
fn continues(rk: Kind, len: usize, k: Kind) -> bool {
    match (rk, k) {
        (Kind::Zero, Kind::Zero) | (Kind::Unallocated, Kind::Unallocated) => true,
        (Kind::Data(a), Kind::Data(b)) => a.checked_add(len as u64) == Some(b),
        _ => false,
    }
}

/// The loaded tables of an image (see the fields of [`Image`]).
struct Tables {
    l1: Vec<u32>,
    l2: Vec<u64>,
    offsets: Vec<u64>,
}

/// Loads every L2 table the first `l1_raw.len()` L1 entries reference,
/// each distinct table once.
fn load_l2_tables(
    file: &ContainerFile,
    hd: &Header,
    l1_raw: &[u64],
) -> Result<Tables, EvidenceError> {
    let entry_words = if hd.extended_l2() { 2 } else { 1 };
    let table_words = (1usize << hd.l2_bits) * entry_words;
    let table_bytes = table_words as u64 * 8;
    let cs = hd.cluster_size();
    let mut l1 = Vec::with_capacity(l1_raw.len());
    let mut l2: Vec<u64> = Vec::new();
    let mut offsets: Vec<u64> = Vec::new();
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut buf = vec![0u8; table_bytes as usize];
    for &raw in l1_raw {
        let off = if hd.version == 1 {
            raw
        } else {
            raw & L1E_OFFSET_MASK
        };
        if off == 0 {
            l1.push(L1_NONE);
            continue;
        }
        if hd.version >= 2 && !off.is_multiple_of(cs) {
            l1.push(L1_UNALIGNED);
            continue;
        }
        if off.checked_add(table_bytes).is_none_or(|e| e > file.len()) {
            l1.push(L1_PAST_END);
            continue;
        }
        if let Some(&t) = seen.get(&off) {
            l1.push(t);
            continue;
        }
        let t = offsets.len() as u64;
        // Distinct tables that do not overlap fit in the file; QCOW v1
        // tables need no alignment, so overlapping ones could otherwise
        // multiply the memory loaded.
        if (t + 1) * table_bytes > file.len() {
            return Err(file.corrupt(
                off,
                format!(
                    "L2 table at offset {off} overlaps others: {} distinct {table_bytes}-byte L2 tables do not fit in the {}-byte file",
                    t + 1,
                    file.len()
                ),
            ));
        }
        if (t + 1) * table_bytes > MAX_L2_BYTES {
            return Err(unsupported(
                file.path(),
                "qcow2 image whose L2 tables total more than the 1 GiB this reader loads (a virtual disk of many TiB)",
            ));
        }
        file.read_exact_at(off, &mut buf, "L2 table")?;
        l2.extend(buf.chunks_exact(8).map(|c| be64(c, 0)));
        offsets.push(off);
        seen.insert(off, t as u32);
        l1.push(t as u32);
    }
    Ok(Tables { l1, l2, offsets })
}

/// The container's facts for `EvidenceInfo::metadata`.
fn describe(
    facts: &mut BTreeMap<String, String>,
    hd: &Header,
    ext: &Extensions,
    backing: Option<&[u8]>,
    snapshots: Option<Result<Vec<Snapshot>, EvidenceError>>,
) {
    let mut put = |k: &str, v: String| {
        facts.insert(format!("qcow2.{k}"), v);
    };
    put("version", hd.version.to_string());
    put("cluster_size", hd.cluster_size().to_string());
    put("virtual_size", hd.size.to_string());
    put("l1_size", hd.l1_size.to_string());
    put("l1_table_offset", hd.l1_table_offset.to_string());
    if let Some(b) = backing {
        put("backing_file", String::from_utf8_lossy(b).into_owned());
    }
    if hd.version == 1 {
        put("l2_entries", (1u64 << hd.l2_bits).to_string());
        if hd.mtime != 0 {
            put("backing_file_mtime", utc(u64::from(hd.mtime)));
        }
        return;
    }
    put(
        "refcount_bits",
        (1u64 << hd.refcount_order.min(63)).to_string(),
    );
    put(
        "refcount_table_offset",
        hd.refcount_table_offset.to_string(),
    );
    put(
        "refcount_table_clusters",
        hd.refcount_table_clusters.to_string(),
    );
    if hd.version >= 3 {
        put("header_length", hd.header_length.to_string());
        put("incompatible_features", format!("{:#x}", hd.incompatible));
        put("compatible_features", format!("{:#x}", hd.compatible));
        put("autoclear_features", format!("{:#x}", hd.autoclear));
        put(
            "compression_type",
            if hd.compression_type == 1 {
                "zstd"
            } else {
                "zlib"
            }
            .into(),
        );
        put("extended_l2", hd.extended_l2().to_string());
        put("lazy_refcounts", (hd.compatible & 1 != 0).to_string());
        if hd.incompatible & INCOMPAT_DIRTY != 0 {
            put("dirty", "true".into());
        }
        if hd.incompatible & INCOMPAT_CORRUPT != 0 {
            put("corrupt_flag", "true".into());
        }
    }
    if let Some(f) = &ext.backing_format {
        put("backing_format", f.clone());
    }
    if let Some(f) = &ext.data_file {
        put("data_file", f.clone());
    }
    if ext.bitmaps {
        put("bitmaps", "present".into());
    }
    if !ext.feature_names.is_empty() {
        let names: Vec<String> = ext
            .feature_names
            .iter()
            .map(|((t, b), n)| {
                let kind = match t {
                    0 => "incompatible",
                    1 => "compatible",
                    2 => "autoclear",
                    _ => "unknown",
                };
                format!("{kind}:{b}={n}")
            })
            .collect();
        put("feature_names", names.join(" "));
    }
    put("snapshot_count", hd.nb_snapshots.to_string());
    match snapshots {
        Some(Ok(s)) if !s.is_empty() => put("snapshots", describe_snapshots(&s)),
        Some(Err(e)) => {
            tracing::warn!("qcow2 snapshot table unreadable: {e}");
            put("snapshots", format!("unreadable: {e}"));
        }
        _ => {}
    }
}

/// Finds the file given as evidence that is the backing file `recorded` of
/// `image`: the same file (canonical path, the recorded name resolved
/// against the image's folder), else the only given file of that name.
fn find_backing(image: &Path, recorded: &[u8], pool: &[PathBuf]) -> Result<PathBuf, EvidenceError> {
    let rec = Path::new(OsStr::from_bytes(recorded));
    let shown = rec.display().to_string();
    let target = if rec.is_absolute() {
        rec.to_path_buf()
    } else {
        image.parent().unwrap_or(Path::new("")).join(rec)
    };
    if let Ok(c) = std::fs::canonicalize(&target)
        && let Some(p) = pool
            .iter()
            .find(|p| std::fs::canonicalize(p).is_ok_and(|pc| pc == c))
    {
        return Ok(p.clone());
    }
    let name = rec.file_name();
    let same_name: Vec<&PathBuf> = pool
        .iter()
        .filter(|p| name.is_some() && p.file_name() == name)
        .collect();
    match same_name.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(EvidenceError::MissingSegment {
            path: image.to_path_buf(),
            expected: shown.clone(),
            what: format!(
                "backing file {shown} of {} is not given as evidence",
                image.display()
            ),
        }),
        many => Err(EvidenceError::MissingSegment {
            path: image.to_path_buf(),
            expected: shown.clone(),
            what: format!(
                "backing file {shown} of {}: {} files of that name are given ({}); give only the right one",
                image.display(),
                many.len(),
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Opens the backing file `name` of the image in `file`.
fn open_backing(
    file: &ContainerFile,
    hd: &Header,
    name: &[u8],
    format: Option<&str>,
    chain: &mut Chain<'_>,
) -> Result<Backing, EvidenceError> {
    let path = find_backing(file.path(), name, chain.pool)?;
    let canon = canonical(&path);
    if chain.visited.contains(&canon) {
        return Err(file.corrupt(
            hd.backing_file_offset,
            format!(
                "the backing chain cycles: backing file {} is already in the chain",
                path.display()
            ),
        ));
    }
    let qcow = match format {
        Some("raw") => false,
        Some("qcow2" | "qcow") => true,
        Some(_) => {
            return Err(unsupported(
                &path,
                "backing file in a format other than raw, qcow or qcow2 (its backing file format extension names another); convert the chain with `qemu-img convert -O raw`",
            ));
        }
        None => {
            let f = ContainerFile::open(&path)?;
            let mut head = vec![0u8; f.len().min(64) as usize];
            f.read_exact_at(0, &mut head, "backing file header")?;
            let other: &[&[u8]] = &[
                b"KDMV",
                b"vhdxfile",
                b"conectix",
                b"# Disk DescriptorFile",
                b"EVF",
            ];
            if other.iter().any(|m| head.starts_with(m)) {
                return Err(unsupported(
                    &path,
                    "backing file in a format other than raw, qcow or qcow2; convert the chain with `qemu-img convert -O raw`",
                ));
            }
            head.starts_with(MAGIC)
        }
    };
    chain.segments.push(path.clone());
    let slot = chain.descriptions.len();
    chain.descriptions.push(format!("{} (raw)", path.display()));
    if qcow {
        let img = Image::open(&path, chain, None)?;
        chain.descriptions[slot] = format!(
            "{} (qcow{}, version {})",
            path.display(),
            if img.version == 1 { "" } else { "2" },
            img.version
        );
        Ok(Backing::Qcow(Box::new(img)))
    } else {
        chain.visited.push(canon);
        Ok(Backing::Raw(RawEvidence::open(&path)?))
    }
}

// ---------------------------------------------------------------------------
// The evidence

/// A QCOW2 (v2, v3) or QCOW (v1) virtual disk, with its backing chain.
pub struct Qcow2Evidence {
    info: EvidenceInfo,
    image: Image,
}

impl fmt::Debug for Qcow2Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qcow2Evidence")
            .field("info", &self.info)
            .field("image", &self.image)
            .finish()
    }
}

impl Qcow2Evidence {
    /// Opens the image `paths[0]`; the other paths are files given as
    /// evidence with it, among which its backing chain is looked up (by
    /// canonical path or by file name).
    ///
    /// # Errors
    /// Unreadable files; a corrupt or truncated header or table (naming the
    /// file and offset); unsupported features (encryption, external data
    /// file, zstd-compressed clusters); a backing file that is not given, or
    /// a backing chain that cycles.
    pub fn open(paths: &[PathBuf]) -> Result<Self, EvidenceError> {
        let Some(first) = paths.first() else {
            return Err(EvidenceError::NotFound {
                path: PathBuf::new(),
            });
        };
        let mut chain = Chain {
            // The top image is among the candidates too, so that a chain
            // leading back to it is reported as a cycle.
            pool: paths,
            visited: Vec::new(),
            segments: vec![first.clone()],
            descriptions: Vec::new(),
        };
        let mut metadata = BTreeMap::new();
        let image = Image::open(first, &mut chain, Some(&mut metadata))?;
        if !chain.descriptions.is_empty() {
            metadata.insert("qcow2.backing_chain".into(), chain.descriptions.join("\n"));
        }
        Ok(Self {
            info: EvidenceInfo {
                path: first.clone(),
                segments: chain.segments,
                size: image.size,
                format: Format::Qcow2,
                stored: StoredHashes::default(),
                metadata,
                acquisition_errors: Vec::new(),
                bytes_per_sector: 512,
            },
            image,
        })
    }

    /// Whether `head` starts a QCOW image (version 1, 2 or 3).
    pub fn probe(head: &[u8]) -> bool {
        probe(head)
    }
}

impl Evidence for Qcow2Evidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        let size = self.image.size;
        let n = super::readable(size, offset, buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.image.read_into(offset, &mut buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// File offsets of the single L1 and L2 tables and of the data area of
    /// a [`build`] image.
    fn layout(cb: u32) -> (u64, u64, u64) {
        let cs = 1u64 << cb;
        (cs, 2 * cs, 3 * cs)
    }

    /// A qcow2 image with one L1 entry and one L2 table holding `entries`
    /// (pairs for extended L2), followed by `data` at the data area.
    fn build(
        version: u32,
        cb: u32,
        size: u64,
        incompat: u64,
        entries: &[u64],
        exts: &[(u32, Vec<u8>)],
        data: &[u8],
    ) -> Vec<u8> {
        let cs = 1usize << cb;
        let (l1, l2, d) = layout(cb);
        let mut b = vec![0u8; d as usize];
        b[..4].copy_from_slice(MAGIC);
        b[4..8].copy_from_slice(&version.to_be_bytes());
        b[20..24].copy_from_slice(&cb.to_be_bytes());
        b[24..32].copy_from_slice(&size.to_be_bytes());
        b[36..40].copy_from_slice(&1u32.to_be_bytes());
        b[40..48].copy_from_slice(&l1.to_be_bytes());
        let mut pos = 72;
        if version >= 3 {
            b[72..80].copy_from_slice(&incompat.to_be_bytes());
            b[96..100].copy_from_slice(&4u32.to_be_bytes());
            b[100..104].copy_from_slice(&112u32.to_be_bytes());
            pos = 112;
        }
        for (kind, body) in exts {
            b[pos..pos + 4].copy_from_slice(&kind.to_be_bytes());
            b[pos + 4..pos + 8].copy_from_slice(&(body.len() as u32).to_be_bytes());
            b[pos + 8..pos + 8 + body.len()].copy_from_slice(body);
            pos += 8 + body.len().div_ceil(8) * 8;
        }
        assert!(pos <= cs);
        b[l1 as usize..l1 as usize + 8].copy_from_slice(&((1u64 << 63) | l2).to_be_bytes());
        for (i, e) in entries.iter().enumerate() {
            let at = l2 as usize + i * 8;
            b[at..at + 8].copy_from_slice(&e.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn open(bytes: &[u8]) -> Result<Qcow2Evidence, EvidenceError> {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "t.qcow2", bytes);
        Qcow2Evidence::open(&[p])
    }

    fn read_all(ev: &Qcow2Evidence) -> Result<Vec<u8>, EvidenceError> {
        let mut v = vec![0u8; ev.size() as usize];
        ev.read_exact_at(0, &mut v)?;
        Ok(v)
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, FlushCompress::Finish)
            .unwrap();
        out
    }

    fn err_text<T: fmt::Debug>(r: Result<T, EvidenceError>) -> String {
        r.unwrap_err().to_string()
    }

    const DATA: u64 = 1 << 63;

    #[test]
    fn probe_needs_magic_and_a_known_version() {
        assert!(probe(b"QFI\xfb\0\0\0\x03"));
        assert!(probe(b"QFI\xfb\0\0\0\x01"));
        assert!(!probe(b"QFI\xfb\0\0\0\x00"));
        assert!(!probe(b"QFI\xfa\0\0\0\x02"));
        assert!(!probe(b""));
    }

    #[test]
    fn standard_zero_and_unallocated_clusters() {
        let (_, _, d) = layout(9);
        let mut data = vec![0u8; 1024];
        data[..512].fill(0xaa);
        data[512..].fill(0xbb);
        // Guest clusters: data 1, unallocated, zero (v3, with a stale
        // offset), data 0, unallocated with the copied flag only.
        let entries = [DATA | (d + 512), 0, (d + 512) | 1, DATA | d, DATA];
        let b = build(3, 9, 5 * 512, 0, &entries, &[], &data);
        let ev = open(&b).unwrap();
        assert_eq!(ev.size(), 2560);
        let all = read_all(&ev).unwrap();
        assert!(all[..512].iter().all(|&x| x == 0xbb));
        assert!(all[512..1536].iter().all(|&x| x == 0));
        assert!(all[1536..2048].iter().all(|&x| x == 0xaa));
        assert!(all[2048..].iter().all(|&x| x == 0));
        // Reads crossing clusters, short at the end, empty past it.
        let mut buf = [0u8; 100];
        assert_eq!(ev.read_at(1490, &mut buf).unwrap(), 100);
        assert!(buf[..46].iter().all(|&x| x == 0) && buf[46..].iter().all(|&x| x == 0xaa));
        assert_eq!(ev.read_at(2500, &mut buf).unwrap(), 60);
        assert_eq!(ev.read_at(2560, &mut buf).unwrap(), 0);
        assert_eq!(ev.read_at(u64::MAX, &mut buf).unwrap(), 0);
        let m = &ev.info().metadata;
        assert_eq!(m["qcow2.version"], "3");
        assert_eq!(m["qcow2.cluster_size"], "512");
        assert_eq!(m["qcow2.compression_type"], "zlib");
    }

    #[test]
    fn zero_flag_in_a_version_2_image_is_corrupt() {
        let b = build(2, 9, 512, 0, &[1], &[], &[]);
        let ev = open(&b).unwrap();
        let e = read_all(&ev).unwrap_err();
        let (_, l2, _) = layout(9);
        assert!(
            matches!(e, EvidenceError::Corrupt { offset, .. } if offset == l2),
            "{e}"
        );
        assert!(e.to_string().contains("zero flag"), "{e}");
    }

    #[test]
    fn bad_data_entries_name_the_entry() {
        let (_, l2, d) = layout(9);
        // Unaligned (bits 0-8 are flags and reserved bits, not offset).
        let (_, l2_12, d_12) = layout(12);
        let b = build(3, 12, 8192, 0, &[0, DATA | (d_12 + 512)], &[], &[0; 4096]);
        let e = read_all(&open(&b).unwrap()).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset, .. } if offset == l2_12 + 8),
            "{e}"
        );
        // Past the end of the file: the first cluster still reads.
        let b = build(
            3,
            9,
            1024,
            0,
            &[DATA | d, DATA | (d + 4096)],
            &[],
            &[7; 512],
        );
        let ev = open(&b).unwrap();
        let mut buf = [0u8; 512];
        ev.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(buf, [7; 512]);
        let e = ev.read_exact_at(512, &mut buf).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Truncated { offset, .. } if offset == l2 + 8),
            "{e}"
        );
        // Partly past the end.
        let b = build(3, 9, 512, 0, &[DATA | d], &[], &[7; 100]);
        let e = read_all(&open(&b).unwrap()).unwrap_err();
        assert!(e.to_string().contains("passes the end of the file"), "{e}");
    }

    /// A compressed-cluster descriptor for `len` bytes at `off` (cb 9).
    fn compressed(cb: u32, off: u64, len: u64) -> u64 {
        let shift = 62 - (cb - 8);
        let sectors = (off + len).div_ceil(512) - off / 512;
        OFLAG_COMPRESSED | ((sectors - 1) << shift) | off
    }

    #[test]
    fn compressed_clusters_full_partial_and_damaged() {
        let cb = 12;
        let (_, l2, d) = layout(cb);
        let c0: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let c1: Vec<u8> = (0..4096u32).map(|i| (i / 64) as u8).collect();
        let z0 = deflate(&c0);
        let z1 = deflate(&c1);
        let mut data = z0.clone();
        data.extend_from_slice(&z1);
        let entries = [
            compressed(cb, d, z0.len() as u64),
            compressed(cb, d + z0.len() as u64, z1.len() as u64),
        ];
        let b = build(3, cb, 8192, 0, &entries, &[], &data);
        let ev = open(&b).unwrap();
        let all = read_all(&ev).unwrap();
        assert_eq!(&all[..4096], &c0[..]);
        assert_eq!(&all[4096..], &c1[..]);
        // Partial reads go through the cache, and agree.
        for (off, len) in [(1, 10), (4000, 200), (4096, 4096), (8191, 1), (100, 8000)] {
            let mut buf = vec![0u8; len];
            ev.read_exact_at(off, &mut buf).unwrap();
            assert_eq!(buf, all[off as usize..off as usize + len]);
        }
        // The file ends inside the last sector of compressed data: fine.
        let e = build(3, cb, 8192, 0, &entries, &[], &data);
        assert_eq!(read_all(&open(&e).unwrap()).unwrap(), all);
        // Garbage instead of a deflate stream.
        let mut bad = data.clone();
        bad[..16].fill(0xff);
        let e = read_all(&open(&build(3, cb, 8192, 0, &entries, &[], &bad)).unwrap()).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset, .. } if offset == d),
            "{e}"
        );
        // A stream that stops short of a cluster.
        let short = deflate(&c0[..1000]);
        let entries2 = [compressed(cb, d, short.len() as u64)];
        let e =
            read_all(&open(&build(3, cb, 4096, 0, &entries2, &[], &short)).unwrap()).unwrap_err();
        assert!(e.to_string().contains("inflates to 1000 bytes"), "{e}");
        // Compressed data past the end of the file.
        let entries3 = [compressed(cb, d + (1 << 20), 100)];
        let e = read_all(&open(&build(3, cb, 4096, 0, &entries3, &[], &[])).unwrap()).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Truncated { offset, .. } if offset == l2),
            "{e}"
        );
    }

    #[test]
    fn extended_l2_subclusters() {
        let cb = 14; // 16 KiB clusters, 512-byte subclusters
        let (_, l2, d) = layout(cb);
        let data: Vec<u8> = (0..16384u32).map(|i| (i / 512) as u8 + 1).collect();
        // Subclusters 0-1 allocated, 2 zero, 3.. unallocated, 31 allocated.
        let alloc: u64 = 0b11 | (1 << 31);
        let zero: u64 = 0b100;
        let entries = [DATA | d, alloc | (zero << 32), 0, 1 << 32];
        let b = build(3, cb, 2 * 16384, INCOMPAT_EXTL2, &entries, &[], &data);
        let ev = open(&b).unwrap();
        assert_eq!(ev.info().metadata["qcow2.extended_l2"], "true");
        let all = read_all(&ev).unwrap();
        assert_eq!(&all[..1024], &data[..1024]);
        assert!(all[1024..31 * 512].iter().all(|&x| x == 0));
        assert_eq!(&all[31 * 512..16384], &data[31 * 512..]);
        assert!(all[16384..].iter().all(|&x| x == 0));
        // Allocated and zero at once.
        let entries = [DATA | d, 1 | (1 << 32)];
        let e =
            read_all(&open(&build(3, cb, 16384, INCOMPAT_EXTL2, &entries, &[], &data)).unwrap())
                .unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset, .. } if offset == l2 + 8),
            "{e}"
        );
        // Allocated subclusters without a host cluster.
        let entries = [0, 1];
        let e =
            read_all(&open(&build(3, cb, 16384, INCOMPAT_EXTL2, &entries, &[], &data)).unwrap())
                .unwrap_err();
        assert!(e.to_string().contains("no host offset"), "{e}");
        // Too small a cluster for extended entries.
        let e = err_text(open(&build(3, 12, 4096, INCOMPAT_EXTL2, &[], &[], &[])));
        assert!(e.contains("at least 16 KiB"), "{e}");
    }

    #[test]
    fn header_checks() {
        let good = build(3, 9, 512, 0, &[], &[], &[]);
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            open(&b)
        };
        assert!(with(&|_| {}).is_ok());
        let e = with(&|b| b[0] = b'X').unwrap_err();
        assert!(matches!(e, EvidenceError::UnknownFormat { .. }), "{e}");
        let e = with(&|b| b[7] = 4).unwrap_err();
        assert!(e.to_string().contains("QCOW version 4"), "{e}");
        for cb in [8u32, 22, 64] {
            let e = with(&|b| b[20..24].copy_from_slice(&cb.to_be_bytes())).unwrap_err();
            assert!(
                matches!(e, EvidenceError::Corrupt { offset: 20, .. }),
                "{e}"
            );
        }
        let e = with(&|b| b[100..104].copy_from_slice(&100u32.to_be_bytes())).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset: 100, .. }),
            "{e}"
        );
        let e = with(&|b| b[100..104].copy_from_slice(&1024u32.to_be_bytes())).unwrap_err();
        assert!(e.to_string().contains("exceeds the cluster size"), "{e}");
        let e = with(&|b| b[96..100].copy_from_slice(&7u32.to_be_bytes())).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset: 96, .. }),
            "{e}"
        );
        for m in [1u32, 2] {
            let e = with(&|b| b[32..36].copy_from_slice(&m.to_be_bytes())).unwrap_err();
            assert!(matches!(e, EvidenceError::Unsupported { .. }), "{e}");
            assert!(e.to_string().contains("encrypted"), "{e}");
        }
        let e = with(&|b| b[32..36].copy_from_slice(&3u32.to_be_bytes())).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset: 32, .. }),
            "{e}"
        );
        let e = with(&|b| b[79] |= INCOMPAT_DATA_FILE as u8).unwrap_err();
        assert!(e.to_string().contains("external data file"), "{e}");
        // Compression type and its feature bit must agree.
        let e = with(&|b| b[104] = 1).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset: 104, .. }),
            "{e}"
        );
        let e = with(&|b| b[79] |= INCOMPAT_COMPRESSION as u8).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset: 72, .. }),
            "{e}"
        );
        let e = with(&|b| {
            b[79] |= INCOMPAT_COMPRESSION as u8;
            b[104] = 9;
        })
        .unwrap_err();
        assert!(e.to_string().contains("compression_type is 9"), "{e}");
        // zstd without compressed clusters reads.
        let ev = with(&|b| {
            b[79] |= INCOMPAT_COMPRESSION as u8;
            b[104] = 1;
        })
        .unwrap();
        assert_eq!(ev.info().metadata["qcow2.compression_type"], "zstd");
        // Dirty and corrupt bits are reported, not refused.
        let ev = with(&|b| b[79] |= 3).unwrap();
        assert_eq!(ev.info().metadata["qcow2.dirty"], "true");
        assert_eq!(ev.info().metadata["qcow2.corrupt_flag"], "true");
        // Truncated header.
        let e = open(&good[..90]).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Truncated { offset: 0, .. }),
            "{e}"
        );
        // L1 table: too small, unaligned, past the end, too large.
        let e = with(&|b| b[24..32].copy_from_slice(&(1u64 << 20).to_be_bytes())).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset: 36, .. }),
            "{e}"
        );
        let e = with(&|b| b[40..48].copy_from_slice(&520u64.to_be_bytes())).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset: 40, .. }),
            "{e}"
        );
        let e = with(&|b| b[40..48].copy_from_slice(&(1u64 << 40).to_be_bytes())).unwrap_err();
        assert!(matches!(e, EvidenceError::Truncated { .. }), "{e}");
        let e = with(&|b| b[36..40].copy_from_slice(&(8u32 << 20).to_be_bytes())).unwrap_err();
        assert!(e.to_string().contains("more than the"), "{e}");
    }

    #[test]
    fn unknown_incompatible_features_are_named_from_the_feature_table() {
        let mut table = vec![0u8; 48];
        table[1] = 9;
        table[2..2 + 12].copy_from_slice(b"future thing");
        let b = build(3, 9, 512, 1 << 9, &[], &[(EXT_FEATURE_TABLE, table)], &[]);
        let e = err_text(open(&b));
        assert!(e.contains("bit 9 (\"future thing\")"), "{e}");
    }

    #[test]
    fn header_extensions_are_bounded() {
        // An extension longer than the header area.
        let mut b = build(3, 9, 512, 0, &[], &[], &[]);
        b[112..116].copy_from_slice(&0x1234u32.to_be_bytes());
        b[116..120].copy_from_slice(&4096u32.to_be_bytes());
        let e = open(&b).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset: 112, .. }),
            "{e}"
        );
        // A backing format name of 16 bytes or more.
        let b = build(
            3,
            9,
            512,
            0,
            &[],
            &[(EXT_BACKING_FORMAT, vec![b'x'; 16])],
            &[],
        );
        assert!(err_text(open(&b)).contains("at most 15"));
        // Known extensions are reported.
        let b = build(
            3,
            9,
            512,
            0,
            &[],
            &[
                (EXT_BACKING_FORMAT, b"qcow2".to_vec()),
                (EXT_BITMAPS, vec![0; 24]),
            ],
            &[],
        );
        let ev = open(&b).unwrap();
        assert_eq!(ev.info().metadata["qcow2.backing_format"], "qcow2");
        assert_eq!(ev.info().metadata["qcow2.bitmaps"], "present");
    }

    #[test]
    fn backing_files_come_from_the_given_paths_only() {
        let dir = tempfile::tempdir().unwrap();
        let base_bytes: Vec<u8> = (0..1024u32).map(|i| (i % 7) as u8 + 1).collect();
        let base = write(&dir, "base.raw", &base_bytes);
        let (_, _, d) = layout(9);
        let mut b = build(
            3,
            9,
            2048,
            0,
            &[0, DATA | d],
            &[(EXT_BACKING_FORMAT, b"raw".to_vec())],
            &[9; 512],
        );
        let name = b"base.raw";
        b[400..400 + name.len()].copy_from_slice(name);
        b[8..16].copy_from_slice(&400u64.to_be_bytes());
        b[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
        let top = write(&dir, "top.qcow2", &b);
        let e = Qcow2Evidence::open(std::slice::from_ref(&top)).unwrap_err();
        assert!(matches!(e, EvidenceError::MissingSegment { .. }), "{e}");
        assert!(e.to_string().contains("backing file base.raw of"), "{e}");
        let ev = Qcow2Evidence::open(&[top.clone(), base.clone()]).unwrap();
        let all = read_all(&ev).unwrap();
        assert_eq!(&all[..512], &base_bytes[..512]);
        assert_eq!(&all[512..1024], &[9; 512]);
        // Past the end of the backing file: zeros.
        assert!(all[1024..].iter().all(|&x| x == 0));
        assert_eq!(ev.info().segments, vec![top.clone(), base]);
        assert_eq!(ev.info().metadata["qcow2.backing_file"], "base.raw");
        // A backing format this reader does not read.
        let mut b2 = b.clone();
        let at = 112 + 8;
        b2[at..at + 3].copy_from_slice(b"vpc");
        let top2 = write(&dir, "top2.qcow2", &b2);
        let other = write(&dir, "base.raw", &base_bytes);
        let e = Qcow2Evidence::open(&[top2, other]).unwrap_err();
        assert!(matches!(e, EvidenceError::Unsupported { .. }), "{e}");
        // A backing name too long.
        let mut b3 = b.clone();
        b3[16..20].copy_from_slice(&2000u32.to_be_bytes());
        let e = err_text(open(&b3));
        assert!(e.contains("at most 1023"), "{e}");
    }

    /// A QCOW v1 image of 512-byte clusters and 64-entry L2 tables.
    fn build_v1(size: u64, entries: &[u64], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 1536];
        b[..4].copy_from_slice(MAGIC);
        b[4..8].copy_from_slice(&1u32.to_be_bytes());
        b[24..32].copy_from_slice(&size.to_be_bytes());
        b[32] = 9;
        b[33] = 6;
        b[40..48].copy_from_slice(&512u64.to_be_bytes());
        b[512..520].copy_from_slice(&1024u64.to_be_bytes());
        for (i, e) in entries.iter().enumerate() {
            b[1024 + i * 8..1032 + i * 8].copy_from_slice(&e.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn qcow_version_1() {
        let plain = [5u8; 512];
        let packed: Vec<u8> = (0..512u32).map(|i| (i / 32) as u8).collect();
        let z = deflate(&packed);
        let mut data = plain.to_vec();
        data.extend_from_slice(&z);
        let comp = V1_OFLAG_COMPRESSED | ((z.len() as u64) << (63 - 9)) | 2048;
        let b = build_v1(2048, &[1536, 0, comp], &data);
        let ev = open(&b).unwrap();
        assert_eq!(ev.info().metadata["qcow2.version"], "1");
        assert_eq!(ev.info().metadata["qcow2.l2_entries"], "64");
        let all = read_all(&ev).unwrap();
        assert_eq!(&all[..512], &plain);
        assert!(all[512..1024].iter().all(|&x| x == 0));
        assert_eq!(&all[1024..1536], &packed[..]);
        assert!(all[1536..].iter().all(|&x| x == 0));
        // Unaligned cluster offsets are corrupt.
        let b = build_v1(512, &[1537], &data);
        let e = read_all(&open(&b).unwrap()).unwrap_err();
        assert!(
            matches!(e, EvidenceError::Corrupt { offset: 1024, .. }),
            "{e}"
        );
        // Header limits.
        let mut bad = build_v1(512, &[], &[]);
        bad[32] = 17;
        assert!(matches!(
            open(&bad).unwrap_err(),
            EvidenceError::Corrupt { offset: 32, .. }
        ));
        let mut bad = build_v1(512, &[], &[]);
        bad[33] = 14;
        assert!(matches!(
            open(&bad).unwrap_err(),
            EvidenceError::Corrupt { offset: 33, .. }
        ));
        let mut bad = build_v1(512, &[], &[]);
        bad[39] = 1;
        assert!(matches!(
            open(&bad).unwrap_err(),
            EvidenceError::Unsupported { .. }
        ));
        // Overlapping L2 tables (v1 needs no alignment) are refused rather
        // than loaded again and again.
        let mut b = build_v1(64 * 512 * 64, &[], &[]);
        b[40..48].copy_from_slice(&2048u64.to_be_bytes());
        b.resize(2048 + 64 * 8, 0);
        for i in 0..64u64 {
            let at = 2048 + i as usize * 8;
            b[at..at + 8].copy_from_slice(&(8 + i).to_be_bytes());
        }
        let e = open(&b).unwrap_err();
        assert!(e.to_string().contains("overlaps"), "{e}");
    }

    #[test]
    fn snapshot_table_is_listed_and_its_damage_not_fatal() {
        let mut b = build(3, 9, 512, 0, &[], &[], &[]);
        let at = b.len();
        let mut e = vec![0u8; 40];
        e[12..14].copy_from_slice(&1u16.to_be_bytes());
        e[14..16].copy_from_slice(&4u16.to_be_bytes());
        e[16..20].copy_from_slice(&1_700_000_000u32.to_be_bytes());
        e[24..32].copy_from_slice(&3_723_004_000_000u64.to_be_bytes());
        e[36..40].copy_from_slice(&16u32.to_be_bytes());
        let mut extra = vec![0u8; 16];
        extra[8..16].copy_from_slice(&512u64.to_be_bytes());
        e.extend_from_slice(&extra);
        e.extend_from_slice(b"1");
        e.extend_from_slice(b"snap");
        e.resize(e.len().div_ceil(8) * 8, 0);
        b.extend_from_slice(&e);
        b[60..64].copy_from_slice(&1u32.to_be_bytes());
        b[64..72].copy_from_slice(&(at as u64).to_be_bytes());
        let ev = open(&b).unwrap();
        let m = &ev.info().metadata;
        assert_eq!(m["qcow2.snapshot_count"], "1");
        assert_eq!(
            m["qcow2.snapshots"],
            "id=\"1\" name=\"snap\" date=2023-11-14T22:13:20Z date_nsec=0 vm_clock=01:02:03.004 vm_state_size=0 l1_size=0 disk_size=512"
        );
        // Damaged: recorded, the disk still opens.
        b[at + 36..at + 40].copy_from_slice(&5000u32.to_be_bytes());
        let ev = open(&b).unwrap();
        assert!(ev.info().metadata["qcow2.snapshots"].starts_with("unreadable:"));
        b[60..64].copy_from_slice(&100_000u32.to_be_bytes());
        let ev = open(&b).unwrap();
        assert!(ev.info().metadata["qcow2.snapshots"].contains("at most 65536"));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn cache_keeps_the_most_recently_used() {
        let mut c = Cache::new(8 << 20);
        assert_eq!(c.cap, 2);
        c.insert((1, 9), &[1; 4]);
        c.insert((2, 9), &[2; 4]);
        let mut out = [0u8; 2];
        assert!(c.copy_out((1, 9), 1, &mut out));
        assert!(!c.copy_out((1, 8), 1, &mut out));
        c.insert((3, 9), &[3; 4]);
        assert!(c.copy_out((1, 9), 0, &mut out));
        assert!(!c.copy_out((2, 9), 0, &mut out));
        assert!(c.copy_out((3, 9), 2, &mut out));
        assert_eq!(out, [3, 3]);
    }

    #[test]
    fn runs_continue_only_when_contiguous() {
        assert!(continues(Kind::Zero, 5, Kind::Zero));
        assert!(continues(Kind::Data(100), 50, Kind::Data(150)));
        assert!(!continues(Kind::Data(100), 50, Kind::Data(151)));
        assert!(!continues(Kind::Data(u64::MAX), 50, Kind::Data(49)));
        assert!(!continues(Kind::Zero, 5, Kind::Unallocated));
    }
}
