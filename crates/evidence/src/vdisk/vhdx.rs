//! Microsoft Hyper-V virtual hard disk v2 (VHDX, "[MS-VHDX]" v1.0),
//! read-only: fixed and dynamic disks, with the metadata log replayed in
//! memory.
//!
//! Layout (little-endian): the file identifier (`vhdxfile` and the creator,
//! UTF-16) at 0; two headers at 64 KiB and 128 KiB (`head`, CRC-32C over
//! 4 KiB; the valid one with the higher sequence number is current); two
//! region tables at 192 KiB and 256 KiB (`regi`, CRC-32C over 64 KiB) that
//! locate the BAT and the metadata region; the metadata table (`metadata`)
//! and its items (file parameters, virtual disk size, page 83 data = the
//! virtual disk id, logical and physical sector sizes, parent locator); the
//! BAT, 64-bit entries (state in bits 0–2, file offset in MiB from bit 20),
//! payload block entries with one sector bitmap entry after every
//! `chunk ratio` = 2^23 × logical sector size / block size of them.
//!
//! What is presented is what `qemu-img convert -O raw` writes:
//! - payload blocks NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED (and the v0.95
//!   UNMAPPED, 5) read as zeros without I/O; FULLY_PRESENT blocks are read
//!   from the file, runs of blocks that lie back to back in the file with
//!   one read; PARTIALLY_PRESENT (differencing only) and the undefined state
//!   4 are errors naming the BAT entry when read.
//! - Every fully present block must lie past the 1 MiB header section,
//!   inside the file (up to the virtual size: qemu-made files may end inside
//!   their last block) and clear of the log, BAT and metadata regions.
//! - The log: when the current header names a log (non-zero log GUID), the
//!   active sequence of log entries (valid entries with that GUID and
//!   consecutive sequence numbers, CRC-32C verified, the one ending with the
//!   highest sequence number) is replayed in memory before the region
//!   tables, metadata and BAT are read: data descriptors overwrite 4 KiB
//!   sectors of the file (8 leading bytes from the descriptor, 4084 from the
//!   data sector, 4 trailing from the descriptor), zero descriptors zero
//!   ranges, and the file is treated as extended to the entries' last file
//!   offset. The evidence file is never written. `qemu-img convert` refuses
//!   such an image (it replays only when opened read-write, e.g. by
//!   `qemu-img check -r all`); the replayed view equals what qemu shows after
//!   that repair. A log GUID with no valid entry means an empty log, as for
//!   qemu.
//! - Differencing disks (`has_parent`) are refused with a clear error (qemu
//!   cannot read them either).
//!
//! Bounds: the BAT is loaded at open (8 bytes per payload block, after
//! checking that it lies inside the file); the log is read whole when
//! replayed (at most [`MAX_LOG`] bytes) and the work spent searching it is
//! capped; headers, tables and metadata are fixed-size reads.

use super::ContainerFile;
use crate::{Evidence, EvidenceError, EvidenceInfo, Format, StoredHashes};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SIGNATURE: &[u8; 8] = b"vhdxfile";
const KIB: u64 = 1024;
const MIB: u64 = 1 << 20;
const HEADER_OFFSETS: [u64; 2] = [64 * KIB, 128 * KIB];
const HEADER_SIZE: usize = 4096;
const REGION_OFFSETS: [u64; 2] = [192 * KIB, 256 * KIB];
const REGION_TABLE_SIZE: usize = 64 * 1024;
const METADATA_TABLE_SIZE: usize = 64 * 1024;
const MAX_TABLE_ENTRIES: usize = 2047;
const MIN_BLOCK_SIZE: u32 = 1 << 20;
const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Largest virtual disk (64 TiB, the format's limit).
const MAX_VIRTUAL_SIZE: u64 = 64 << 40;
/// Largest log replayed (read into memory whole).
pub const MAX_LOG: u64 = 256 << 20;
const LOG_SECTOR: u64 = 4096;
/// Largest run of back-to-back blocks fetched with one read.
const MAX_BATCH: usize = 8 << 20;

const PAYLOAD_NOT_PRESENT: u64 = 0;
const PAYLOAD_UNDEFINED: u64 = 1;
const PAYLOAD_ZERO: u64 = 2;
const PAYLOAD_UNMAPPED: u64 = 3;
const PAYLOAD_UNMAPPED_V095: u64 = 5;
const PAYLOAD_FULLY_PRESENT: u64 = 6;
const PAYLOAD_PARTIALLY_PRESENT: u64 = 7;

/// A GUID in its on-disk (little-endian fields) byte order.
const fn ms_guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

const BAT_GUID: [u8; 16] = ms_guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
const METADATA_GUID: [u8; 16] = ms_guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const FILE_PARAMETERS: [u8; 16] = ms_guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
const VIRTUAL_DISK_SIZE: [u8; 16] = ms_guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
const PAGE_83_DATA: [u8; 16] = ms_guid(
    0xBECA_12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
const LOGICAL_SECTOR_SIZE: [u8; 16] = ms_guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
const PHYSICAL_SECTOR_SIZE: [u8; 16] = ms_guid(
    0xCDA3_48C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
const PARENT_LOCATOR: [u8; 16] = ms_guid(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);

/// Recognises a VHDX from its first bytes (the file identifier).
pub fn probe(head: &[u8]) -> bool {
    head.starts_with(SIGNATURE)
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn guid_at(b: &[u8], at: usize) -> [u8; 16] {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    g
}

/// A GUID as text (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
fn guid_text(g: &[u8; 16]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        le32(g, 0),
        le16(g, 4),
        le16(g, 6),
        hex::encode(&g[8..10]),
        hex::encode(&g[10..16])
    )
}

/// CRC-32C of `b` with the 4-byte checksum field at `field` taken as zero.
fn crc_zeroed(b: &[u8], field: usize) -> u32 {
    let c = crc32c::crc32c(&b[..field]);
    let c = crc32c::crc32c_append(c, &[0; 4]);
    crc32c::crc32c_append(c, &b[field + 4..])
}

fn crc_ok(b: &[u8], field: usize) -> bool {
    le32(b, field) == crc_zeroed(b, field)
}

// ---------------------------------------------------------------------------
// The container file as replayed: the file's bytes with the log's writes
// laid over them.

enum Patch {
    /// Zeros up to `end`.
    Zero { end: u64 },
    /// One 4 KiB sector.
    Data(Box<[u8]>),
}

impl std::fmt::Debug for Patch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Patch::Zero { end } => write!(f, "Zero(..{end})"),
            Patch::Data(d) => write!(f, "Data({} bytes)", d.len()),
        }
    }
}

impl Patch {
    fn end(&self, start: u64) -> u64 {
        match self {
            Patch::Zero { end } => *end,
            Patch::Data(d) => start + d.len() as u64,
        }
    }
}

#[derive(Debug)]
struct Image {
    file: ContainerFile,
    /// The file's length as replayed (at least the file's own).
    len: u64,
    /// Non-overlapping writes of the replayed log, by start offset.
    patches: BTreeMap<u64, Patch>,
}

impl Image {
    fn path(&self) -> &Path {
        self.file.path()
    }

    fn corrupt(&self, offset: u64, what: impl Into<String>) -> EvidenceError {
        self.file.corrupt(offset, what)
    }

    /// Lays `patch` over `[start, end)`, replacing what was there.
    fn patch(&mut self, start: u64, end: u64, patch: Patch) {
        let overlapping: Vec<u64> = self
            .patches
            .range(..end)
            .rev()
            .take_while(|(s, p)| p.end(**s) > start)
            .map(|(s, _)| *s)
            .collect();
        for s in overlapping {
            let Some(p) = self.patches.remove(&s) else {
                continue;
            };
            let e = p.end(s);
            if let Patch::Zero { .. } = p {
                // Data patches are whole aligned sectors, so only zero
                // ranges can stick out of the new range.
                if s < start {
                    self.patches.insert(s, Patch::Zero { end: start });
                }
                if e > end {
                    self.patches.insert(end, Patch::Zero { end: e });
                }
            }
        }
        self.patches.insert(start, patch);
        self.len = self.len.max(end);
    }

    /// Reads `buf.len()` bytes at `offset` of the replayed file.
    fn read(&self, offset: u64, buf: &mut [u8], what: &str) -> Result<(), EvidenceError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(EvidenceError::Truncated {
                path: self.path().to_path_buf(),
                offset,
                what: format!(
                    "{what}: {} bytes at offset {offset} pass the end of the file ({} bytes)",
                    buf.len(),
                    self.len
                ),
            });
        }
        let end = offset + buf.len() as u64;
        let real = self.file.len().saturating_sub(offset).min(buf.len() as u64) as usize;
        self.file.read_exact_at(offset, &mut buf[..real], what)?;
        buf[real..].fill(0);
        if self.patches.is_empty() {
            return Ok(());
        }
        let first = self
            .patches
            .range(..=offset)
            .next_back()
            .map_or(offset, |(s, _)| *s);
        for (&s, p) in self.patches.range(first..end) {
            let e = p.end(s);
            if e <= offset {
                continue;
            }
            let (a, b) = (s.max(offset), e.min(end));
            let dst = &mut buf[(a - offset) as usize..(b - offset) as usize];
            match p {
                Patch::Zero { .. } => dst.fill(0),
                Patch::Data(d) => dst.copy_from_slice(&d[(a - s) as usize..(b - s) as usize]),
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Headers and the log

#[derive(Debug, Clone)]
struct Header {
    offset: u64,
    sequence: u64,
    file_write_guid: [u8; 16],
    data_write_guid: [u8; 16],
    log_guid: [u8; 16],
    log_version: u16,
    log_length: u32,
    log_offset: u64,
    raw: Vec<u8>,
}

fn read_headers(file: &ContainerFile) -> Result<Header, EvidenceError> {
    let mut found: Vec<Header> = Vec::new();
    let mut why = Vec::new();
    for at in HEADER_OFFSETS {
        let mut b = vec![0u8; HEADER_SIZE];
        if let Err(e) = file.read_exact_at(at, &mut b, "VHDX header") {
            why.push(format!("{e}"));
            continue;
        }
        if &b[0..4] != b"head" {
            why.push(format!("no \"head\" signature at offset {at}"));
        } else if !crc_ok(&b, 4) {
            why.push(format!("the header at offset {at} fails its CRC-32C"));
        } else if le16(&b, 66) != 1 {
            why.push(format!(
                "the header at offset {at} has version {}, not 1",
                le16(&b, 66)
            ));
        } else {
            found.push(Header {
                offset: at,
                sequence: le64(&b, 8),
                file_write_guid: guid_at(&b, 16),
                data_write_guid: guid_at(&b, 32),
                log_guid: guid_at(&b, 48),
                log_version: le16(&b, 64),
                log_length: le32(&b, 68),
                log_offset: le64(&b, 72),
                raw: b[..80].to_vec(),
            });
        }
    }
    match found.len() {
        0 => Err(file.corrupt(
            HEADER_OFFSETS[0],
            format!("no valid VHDX header: {}", why.join("; ")),
        )),
        1 => Ok(found.remove(0)),
        _ => {
            let (a, b) = (&found[0], &found[1]);
            if a.sequence == b.sequence && a.raw != b.raw {
                return Err(file.corrupt(
                    HEADER_OFFSETS[1],
                    format!(
                        "both VHDX headers carry sequence number {} but differ",
                        a.sequence
                    ),
                ));
            }
            Ok(if b.sequence > a.sequence {
                found.remove(1)
            } else {
                found.remove(0)
            })
        }
    }
}

/// One valid log entry.
#[derive(Debug, Clone)]
struct LogEntry {
    /// First sector (index in the log).
    sector: u64,
    sectors: u64,
    sequence: u64,
    flushed_file_offset: u64,
    last_file_offset: u64,
    /// (file offset, zero length) of zero descriptors, or (file offset, data
    /// sector index in the entry) of data descriptors, in order.
    descs: Vec<Desc>,
}

#[derive(Debug, Clone)]
enum Desc {
    Zero {
        offset: u64,
        length: u64,
    },
    Data {
        offset: u64,
        leading: [u8; 8],
        trailing: [u8; 4],
        /// Index of the data sector in the log.
        sector: u64,
    },
}

/// The log as read from the file, addressed circularly by 4 KiB sector.
struct Log<'a> {
    data: &'a [u8],
    sectors: u64,
}

impl Log<'_> {
    fn sector(&self, i: u64) -> &[u8] {
        let i = (i % self.sectors) as usize * LOG_SECTOR as usize;
        &self.data[i..i + LOG_SECTOR as usize]
    }

    /// The valid entry starting at sector `p`, if any; `budget` counts the
    /// bytes checksummed.
    fn entry(&self, p: u64, guid: &[u8; 16], budget: &mut u64) -> Option<LogEntry> {
        let h = self.sector(p);
        if &h[0..4] != b"loge" {
            return None;
        }
        let length = u64::from(le32(h, 8));
        let sequence = le64(h, 16);
        let count = u64::from(le32(h, 24));
        if length == 0
            || !length.is_multiple_of(LOG_SECTOR)
            || length > self.sectors * LOG_SECTOR
            || sequence == 0
            || guid_at(h, 32) != *guid
            || count * 32 > length
        {
            return None;
        }
        let sectors = length / LOG_SECTOR;
        let desc_sectors = (count + 2).div_ceil(128);
        if desc_sectors > sectors {
            return None;
        }
        if *budget < length {
            *budget = 0;
            return None;
        }
        *budget -= length;
        // CRC-32C over the whole entry, checksum field zeroed.
        let mut crc = crc_zeroed(h, 4);
        for i in 1..sectors {
            crc = crc32c::crc32c_append(crc, self.sector(p + i));
        }
        if crc != le32(h, 4) {
            return None;
        }
        let mut descs = Vec::with_capacity(count as usize);
        let mut next_data = p + desc_sectors;
        for i in 0..count {
            let at = 64 + i * 32;
            let d = &self.sector(p + at / LOG_SECTOR)[(at % LOG_SECTOR) as usize..][..32];
            let offset = le64(d, 16);
            if le64(d, 24) != sequence || !offset.is_multiple_of(LOG_SECTOR) {
                return None;
            }
            match &d[0..4] {
                b"zero" => {
                    let length = le64(d, 8);
                    if !length.is_multiple_of(LOG_SECTOR) {
                        return None;
                    }
                    descs.push(Desc::Zero { offset, length });
                }
                b"desc" => {
                    if next_data >= p + sectors {
                        return None;
                    }
                    let s = self.sector(next_data);
                    let seq = (u64::from(le32(s, 4)) << 32) | u64::from(le32(s, 4092));
                    if &s[0..4] != b"data" || seq != sequence {
                        return None;
                    }
                    let mut leading = [0u8; 8];
                    leading.copy_from_slice(&d[8..16]);
                    let mut trailing = [0u8; 4];
                    trailing.copy_from_slice(&d[4..8]);
                    descs.push(Desc::Data {
                        offset,
                        leading,
                        trailing,
                        sector: next_data,
                    });
                    next_data += 1;
                }
                _ => return None,
            }
        }
        Some(LogEntry {
            sector: p,
            sectors,
            sequence,
            flushed_file_offset: le64(h, 48),
            last_file_offset: le64(h, 56),
            descs,
        })
    }
}

/// Replays the log named by `hdr` into `image`; returns what was done (for
/// the metadata).
fn replay_log(image: &mut Image, hdr: &Header) -> Result<String, EvidenceError> {
    let at = hdr.offset;
    if hdr.log_version != 0 {
        return Err(image.corrupt(
            at + 64,
            format!(
                "VHDX header: log version {} (only 0 exists)",
                hdr.log_version
            ),
        ));
    }
    if hdr.log_guid == [0; 16] || hdr.log_length == 0 {
        return Ok("empty".into());
    }
    let (off, len) = (hdr.log_offset, u64::from(hdr.log_length));
    if off < MIB || !off.is_multiple_of(MIB) || !len.is_multiple_of(MIB) {
        return Err(image.corrupt(
            at + 68,
            format!("VHDX header: log of {len} bytes at offset {off} is not aligned to 1 MiB"),
        ));
    }
    if len > MAX_LOG {
        return Err(image.corrupt(
            at + 68,
            format!(
                "VHDX log of {len} bytes (GUID {}) needs replaying but is larger than {MAX_LOG} bytes: not replayed",
                guid_text(&hdr.log_guid)
            ),
        ));
    }
    if off + len > image.file.len() {
        return Err(EvidenceError::Truncated {
            path: image.path().to_path_buf(),
            offset: at + 68,
            what: format!(
                "VHDX log ({len} bytes at offset {off}) passes the end of the file ({} bytes)",
                image.file.len()
            ),
        });
    }
    let mut data = vec![0u8; len as usize];
    image
        .file
        .read_exact_at(off, &mut data, "VHDX log (to replay)")?;
    let log = Log {
        data: &data,
        sectors: len / LOG_SECTOR,
    };
    // Every valid entry, by starting sector.
    let mut budget = 8 * len + 64 * MIB;
    let entries: Vec<Option<LogEntry>> = (0..log.sectors)
        .map(|p| log.entry(p, &hdr.log_guid, &mut budget))
        .collect();
    if budget == 0 {
        return Err(image.corrupt(
            off,
            "VHDX log: too many overlapping entry headers to search for the active sequence",
        ));
    }
    // The active sequence: the chain of consecutive sequence numbers that
    // ends with the highest one.
    let continuations: std::collections::HashSet<(u64, u64)> = entries
        .iter()
        .flatten()
        .map(|e| {
            (
                (e.sector + e.sectors) % log.sectors,
                e.sequence.wrapping_add(1),
            )
        })
        .collect();
    let mut best: Option<Vec<&LogEntry>> = None;
    for e in entries.iter().flatten() {
        if continuations.contains(&(e.sector, e.sequence)) {
            continue;
        }
        let mut chain = vec![e];
        loop {
            let last = chain[chain.len() - 1];
            let next = (last.sector + last.sectors) % log.sectors;
            match &entries[next as usize] {
                Some(n)
                    if last.sequence.checked_add(1) == Some(n.sequence)
                        && chain.len() < log.sectors as usize =>
                {
                    chain.push(n)
                }
                _ => break,
            }
        }
        let end_seq = chain[chain.len() - 1].sequence;
        if best
            .as_ref()
            .is_none_or(|b| end_seq > b[b.len() - 1].sequence)
        {
            best = Some(chain);
        }
    }
    let Some(chain) = best else {
        return Ok(format!(
            "empty (GUID {} but no valid entry)",
            guid_text(&hdr.log_guid)
        ));
    };
    let file_len = image.file.len();
    let mut writes = 0u64;
    for e in &chain {
        if e.flushed_file_offset > file_len {
            return Err(EvidenceError::Truncated {
                path: image.path().to_path_buf(),
                offset: file_len,
                what: format!(
                    "VHDX log entry {} (sequence {}) records a flushed file size of {} bytes: the file ({file_len} bytes) has been truncated",
                    e.sector, e.sequence, e.flushed_file_offset
                ),
            });
        }
        for d in &e.descs {
            match d {
                Desc::Zero { offset, length } => {
                    let Some(end) = offset.checked_add(*length).filter(|&e| e <= 1 << 62) else {
                        return Err(image.corrupt(
                            off + e.sector * LOG_SECTOR,
                            "VHDX log: a zero descriptor's range overflows",
                        ));
                    };
                    if end > *offset {
                        image.patch(*offset, end, Patch::Zero { end });
                    }
                }
                Desc::Data {
                    offset,
                    leading,
                    trailing,
                    sector,
                } => {
                    if offset.checked_add(LOG_SECTOR).is_none_or(|e| e > 1 << 62) {
                        return Err(image.corrupt(
                            off + e.sector * LOG_SECTOR,
                            "VHDX log: a data descriptor's offset overflows",
                        ));
                    }
                    let s = log.sector(*sector);
                    let mut d = vec![0u8; LOG_SECTOR as usize].into_boxed_slice();
                    d[..8].copy_from_slice(leading);
                    d[8..4092].copy_from_slice(&s[8..4092]);
                    d[4092..].copy_from_slice(trailing);
                    image.patch(*offset, offset + LOG_SECTOR, Patch::Data(d));
                }
            }
            writes += 1;
        }
        if e.last_file_offset > image.len && e.last_file_offset <= 1 << 62 {
            image.len = e.last_file_offset.next_multiple_of(MIB);
        }
    }
    Ok(format!(
        "replayed in memory: {} entries (sequence {}..={}), {writes} writes",
        chain.len(),
        chain[0].sequence,
        chain[chain.len() - 1].sequence
    ))
}

// ---------------------------------------------------------------------------
// Region table and metadata

#[derive(Debug, Clone, Copy)]
struct Region {
    offset: u64,
    length: u64,
}

fn read_regions(image: &Image, reserved: &[(u64, u64)]) -> Result<(Region, Region), EvidenceError> {
    let mut why = Vec::new();
    for at in REGION_OFFSETS {
        let mut b = vec![0u8; REGION_TABLE_SIZE];
        if let Err(e) = image.read(at, &mut b, "VHDX region table") {
            why.push(e.to_string());
            continue;
        }
        if &b[0..4] != b"regi" {
            why.push(format!("no \"regi\" signature at offset {at}"));
            continue;
        }
        if !crc_ok(&b, 4) {
            why.push(format!("the region table at offset {at} fails its CRC-32C"));
            continue;
        }
        let count = le32(&b, 8) as usize;
        if count > MAX_TABLE_ENTRIES {
            return Err(image.corrupt(
                at + 8,
                format!("VHDX region table: {count} entries (at most {MAX_TABLE_ENTRIES})"),
            ));
        }
        let mut seen: Vec<(u64, u64)> = reserved.to_vec();
        let (mut bat, mut meta) = (None, None);
        for i in 0..count {
            let e = &b[16 + i * 32..16 + (i + 1) * 32];
            let eat = at + 16 + i as u64 * 32;
            let guid = guid_at(e, 0);
            let r = Region {
                offset: le64(e, 16),
                length: u64::from(le32(e, 24)),
            };
            let end = r.offset.saturating_add(r.length);
            if end > image.len {
                return Err(EvidenceError::Truncated {
                    path: image.path().to_path_buf(),
                    offset: eat,
                    what: format!(
                        "VHDX region {} ({} bytes at offset {}) passes the end of the file ({} bytes)",
                        guid_text(&guid),
                        r.length,
                        r.offset,
                        image.len
                    ),
                });
            }
            if r.offset < MIB {
                return Err(image.corrupt(
                    eat,
                    format!(
                        "VHDX region {} at offset {} lies in the header section",
                        guid_text(&guid),
                        r.offset
                    ),
                ));
            }
            if let Some((s, e2)) = seen.iter().find(|(s, e2)| r.offset < *e2 && end > *s) {
                return Err(image.corrupt(
                    eat,
                    format!(
                        "VHDX region {} ({}..{end}) overlaps another region or the log ({s}..{e2})",
                        guid_text(&guid),
                        r.offset
                    ),
                ));
            }
            seen.push((r.offset, end));
            let slot = if guid == BAT_GUID {
                &mut bat
            } else if guid == METADATA_GUID {
                &mut meta
            } else {
                if le32(e, 28) & 1 != 0 {
                    return Err(image.corrupt(
                        eat,
                        format!(
                            "VHDX region table: unknown required region {} (not readable)",
                            guid_text(&guid)
                        ),
                    ));
                }
                continue;
            };
            if slot.is_some() {
                return Err(image.corrupt(
                    eat,
                    format!("VHDX region table: region {} twice", guid_text(&guid)),
                ));
            }
            *slot = Some(r);
        }
        return match (bat, meta) {
            (Some(b), Some(m)) => Ok((b, m)),
            _ => Err(image.corrupt(
                at,
                "VHDX region table: the BAT or metadata region is missing",
            )),
        };
    }
    Err(image.corrupt(
        REGION_OFFSETS[0],
        format!("no valid VHDX region table: {}", why.join("; ")),
    ))
}

#[derive(Debug)]
struct Metadata {
    block_size: u32,
    leave_allocated: bool,
    has_parent: bool,
    virtual_size: u64,
    disk_id: [u8; 16],
    logical_sector: u32,
    physical_sector: u32,
    parent_locator: Option<String>,
}

fn read_metadata(image: &Image, region: Region) -> Result<Metadata, EvidenceError> {
    let at = region.offset;
    if region.length < METADATA_TABLE_SIZE as u64 {
        return Err(image.corrupt(
            at,
            format!(
                "VHDX metadata region of {} bytes is smaller than its 64 KiB table",
                region.length
            ),
        ));
    }
    let mut t = vec![0u8; METADATA_TABLE_SIZE];
    image.read(at, &mut t, "VHDX metadata table")?;
    if &t[0..8] != b"metadata" {
        return Err(image.corrupt(at, "VHDX metadata table: no \"metadata\" signature"));
    }
    let count = le16(&t, 10) as usize;
    if count > MAX_TABLE_ENTRIES {
        return Err(image.corrupt(
            at + 10,
            format!("VHDX metadata table: {count} entries (at most {MAX_TABLE_ENTRIES})"),
        ));
    }
    // (offset, length) of each known item.
    let known: [(&[u8; 16], &str); 6] = [
        (&FILE_PARAMETERS, "file parameters"),
        (&VIRTUAL_DISK_SIZE, "virtual disk size"),
        (&PAGE_83_DATA, "page 83 data"),
        (&LOGICAL_SECTOR_SIZE, "logical sector size"),
        (&PHYSICAL_SECTOR_SIZE, "physical sector size"),
        (&PARENT_LOCATOR, "parent locator"),
    ];
    let mut items: [Option<(u64, u32)>; 6] = [None; 6];
    for i in 0..count {
        let e = &t[32 + i * 32..32 + (i + 1) * 32];
        let eat = at + 32 + i as u64 * 32;
        let id = guid_at(e, 0);
        let (off, len, flags) = (le32(e, 16), le32(e, 20), le32(e, 24));
        let Some(k) = known.iter().position(|(g, _)| **g == id) else {
            if flags & 4 != 0 {
                return Err(image.corrupt(
                    eat,
                    format!(
                        "VHDX metadata: unknown required item {} (not readable)",
                        guid_text(&id)
                    ),
                ));
            }
            continue;
        };
        if items[k].is_some() {
            return Err(image.corrupt(eat, format!("VHDX metadata: {} twice", known[k].1)));
        }
        if u64::from(off) + u64::from(len) > region.length {
            return Err(image.corrupt(
                eat,
                format!(
                    "VHDX metadata: {} ({len} bytes at {off}) passes the end of the metadata region ({} bytes)",
                    known[k].1, region.length
                ),
            ));
        }
        items[k] = Some((at + u64::from(off), len));
    }
    let read = |k: usize, n: usize| -> Result<Vec<u8>, EvidenceError> {
        let Some((off, len)) = items[k] else {
            return Err(image.corrupt(
                at,
                format!("VHDX metadata: the required {} item is missing", known[k].1),
            ));
        };
        if (len as usize) < n {
            return Err(image.corrupt(
                off,
                format!(
                    "VHDX metadata: the {} item has {len} bytes, not {n}",
                    known[k].1
                ),
            ));
        }
        let mut b = vec![0u8; n];
        image.read(off, &mut b, known[k].1)?;
        Ok(b)
    };
    let fp = read(0, 8)?;
    let block_size = le32(&fp, 0);
    let bits = le32(&fp, 4);
    let vs = read(1, 8)?;
    let virtual_size = le64(&vs, 0);
    let p83 = read(2, 16)?;
    let logical_sector = le32(&read(3, 4)?, 0);
    let physical_sector = le32(&read(4, 4)?, 0);
    let item = |k: usize| items[k].map_or(at, |(o, _)| o);
    if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return Err(image.corrupt(
            item(0),
            format!(
                "VHDX metadata: block size {block_size} is not a power of two from 1 MiB to 256 MiB"
            ),
        ));
    }
    if logical_sector != 512 && logical_sector != 4096 {
        return Err(image.corrupt(
            item(3),
            format!("VHDX metadata: logical sector size {logical_sector} (512 or 4096)"),
        ));
    }
    if physical_sector != 512 && physical_sector != 4096 {
        return Err(image.corrupt(
            item(4),
            format!("VHDX metadata: physical sector size {physical_sector} (512 or 4096)"),
        ));
    }
    if virtual_size > MAX_VIRTUAL_SIZE {
        return Err(image.corrupt(
            item(1),
            format!("VHDX metadata: virtual disk size {virtual_size} exceeds 64 TiB"),
        ));
    }
    let has_parent = bits & 2 != 0;
    let parent_locator = match items[5] {
        Some((off, len)) if has_parent => {
            let mut b = vec![0u8; (len as usize).min(64 << 10)];
            image.read(off, &mut b, "VHDX parent locator")?;
            Some(parent_locator_text(&b))
        }
        _ => None,
    };
    Ok(Metadata {
        block_size,
        leave_allocated: bits & 1 != 0,
        has_parent,
        virtual_size,
        disk_id: guid_at(&p83, 0),
        logical_sector,
        physical_sector,
        parent_locator,
    })
}

/// The key/value pairs of a parent locator item, as text.
fn parent_locator_text(b: &[u8]) -> String {
    if b.len() < 20 {
        return String::new();
    }
    let count = le16(b, 18) as usize;
    let utf16 = |off: usize, len: usize| -> Option<String> {
        let s = b.get(off..off.checked_add(len)?)?;
        let u: Vec<u16> = s.chunks_exact(2).map(|c| le16(c, 0)).collect();
        Some(String::from_utf16_lossy(&u))
    };
    let mut out = Vec::new();
    for i in 0..count.min(256) {
        let Some(e) = b.get(20 + i * 12..32 + i * 12) else {
            break;
        };
        let (ko, vo) = (le32(e, 0) as usize, le32(e, 4) as usize);
        let (kl, vl) = (le16(e, 8) as usize, le16(e, 10) as usize);
        if let (Some(k), Some(v)) = (utf16(ko, kl), utf16(vo, vl)) {
            out.push(format!("{k}={v}"));
        }
    }
    out.join("; ")
}

// ---------------------------------------------------------------------------
// The reader

/// A VHDX image as evidence.
pub struct VhdxEvidence {
    info: EvidenceInfo,
    image: Image,
    /// One BAT entry per payload block.
    bat: Vec<u64>,
    /// File offset of the BAT (for error messages).
    bat_offset: u64,
    chunk_ratio: u64,
    block_shift: u32,
}

impl std::fmt::Debug for VhdxEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdxEvidence")
            .field("info", &self.info)
            .field("image", &self.image)
            .field("bat_entries", &self.bat.len())
            .field("chunk_ratio", &self.chunk_ratio)
            .finish()
    }
}

impl VhdxEvidence {
    /// Opens the VHDX `paths[0]` (further paths, other evidence, are not
    /// needed: differencing VHDX disks are refused).
    ///
    /// # Errors
    /// Missing or unreadable file; no valid header or region table;
    /// required metadata missing or out of range; a BAT or present block
    /// outside the file or overlapping the file's structures; a log that
    /// cannot be replayed; a differencing disk ([`EvidenceError::Unsupported`]).
    pub fn open(paths: &[PathBuf]) -> Result<Self, EvidenceError> {
        let Some(path) = paths.first() else {
            return Err(EvidenceError::NotFound {
                path: PathBuf::new(),
            });
        };
        let file = ContainerFile::open(path)?;
        let mut ident = vec![0u8; 520];
        if file.len() < 520 {
            return Err(EvidenceError::Truncated {
                path: path.clone(),
                offset: 0,
                what: format!(
                    "VHDX file identifier: the file has only {} bytes",
                    file.len()
                ),
            });
        }
        file.read_exact_at(0, &mut ident, "VHDX file identifier")?;
        if !probe(&ident) {
            return Err(EvidenceError::UnknownFormat {
                path: path.clone(),
                reason: "no VHDX file identifier (\"vhdxfile\") at offset 0".into(),
            });
        }
        let creator: Vec<u16> = ident[8..520]
            .chunks_exact(2)
            .map(|c| le16(c, 0))
            .take_while(|&c| c != 0)
            .collect();
        let creator = String::from_utf16_lossy(&creator);
        let hdr = read_headers(&file)?;
        let len = file.len();
        let mut image = Image {
            file,
            len,
            patches: BTreeMap::new(),
        };
        let log_state = replay_log(&mut image, &hdr)?;
        let log_region = (
            hdr.log_offset,
            hdr.log_offset.saturating_add(u64::from(hdr.log_length)),
        );
        let reserved: Vec<(u64, u64)> = if hdr.log_length > 0 {
            vec![log_region]
        } else {
            Vec::new()
        };
        let (bat_r, meta_r) = read_regions(&image, &reserved)?;
        let md = read_metadata(&image, meta_r)?;
        if md.has_parent {
            return Err(EvidenceError::Unsupported {
                path: path.clone(),
                format: "VHDX differencing disk",
                hint: "a differencing VHDX (has_parent) is not read: merge it into its parent (Hyper-V Merge-VHD) and give the merged disk",
            });
        }
        let bs = u64::from(md.block_size);
        let size = md.virtual_size / u64::from(md.logical_sector) * u64::from(md.logical_sector);
        let chunk_ratio = (1u64 << 23) * u64::from(md.logical_sector) / bs;
        let payload = size.div_ceil(bs);
        let entries = if payload == 0 {
            0
        } else {
            payload + (payload - 1) / chunk_ratio
        };
        if entries * 8 > bat_r.length {
            return Err(image.corrupt(
                bat_r.offset,
                format!(
                    "VHDX BAT region of {} bytes cannot hold the {entries} entries a {size}-byte disk of {bs}-byte blocks needs",
                    bat_r.length
                ),
            ));
        }
        let mut raw = vec![0u8; (entries * 8) as usize];
        image.read(bat_r.offset, &mut raw, "VHDX BAT")?;
        let mut bat = Vec::with_capacity(payload as usize);
        let structures = [
            (0, MIB),
            log_region,
            (bat_r.offset, bat_r.offset + bat_r.length),
            (meta_r.offset, meta_r.offset + meta_r.length),
        ];
        for p in 0..payload {
            let idx = p + p / chunk_ratio;
            let e = le64(&raw, (idx * 8) as usize);
            if e & 7 == PAYLOAD_FULLY_PRESENT {
                let at = bat_r.offset + idx * 8;
                let off = e & !(MIB - 1);
                let need = bs.min(size - p * bs);
                if off.checked_add(need).is_none_or(|end| end > image.len) {
                    return Err(EvidenceError::Truncated {
                        path: path.clone(),
                        offset: at,
                        what: format!(
                            "VHDX BAT entry {idx} (payload block {p}): {need} bytes at offset {off} pass the end of the file ({} bytes)",
                            image.len
                        ),
                    });
                }
                if let Some((s, e2)) = structures
                    .iter()
                    .find(|(s, e2)| s < e2 && off < *e2 && off + bs > *s)
                {
                    return Err(image.corrupt(
                        at,
                        format!(
                            "VHDX BAT entry {idx} (payload block {p}): block at offset {off} overlaps the file's structures ({s}..{e2})"
                        ),
                    ));
                }
            }
            bat.push(e);
        }
        drop(raw);
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(format!("vhdx.{k}"), v);
        };
        put("virtual_disk_id", guid_text(&md.disk_id));
        put("block_size", md.block_size.to_string());
        put("logical_sector_size", md.logical_sector.to_string());
        put("physical_sector_size", md.physical_sector.to_string());
        put("creator", creator);
        put("has_parent", md.has_parent.to_string());
        put("leave_blocks_allocated", md.leave_allocated.to_string());
        put("log", log_state);
        put("log_guid", guid_text(&hdr.log_guid));
        put("header_sequence", hdr.sequence.to_string());
        put("header_offset", hdr.offset.to_string());
        put("file_write_guid", guid_text(&hdr.file_write_guid));
        put("data_write_guid", guid_text(&hdr.data_write_guid));
        put("virtual_disk_size", md.virtual_size.to_string());
        if let Some(p) = &md.parent_locator {
            put("parent_locator", p.clone());
        }
        let info = EvidenceInfo {
            path: path.clone(),
            segments: vec![path.clone()],
            size,
            format: Format::Vhdx,
            stored: StoredHashes::default(),
            metadata: m,
            acquisition_errors: Vec::new(),
            bytes_per_sector: md.logical_sector,
        };
        Ok(Self {
            info,
            image,
            bat,
            bat_offset: bat_r.offset,
            chunk_ratio,
            block_shift: md.block_size.trailing_zeros(),
        })
    }

    fn entry_offset(&self, p: u64) -> u64 {
        self.bat_offset + (p + p / self.chunk_ratio) * 8
    }
}

impl Evidence for VhdxEvidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        let size = self.info.size;
        let n = super::readable(size, offset, buf.len());
        if n == 0 {
            return Ok(0);
        }
        let buf = &mut buf[..n];
        let bs = 1u64 << self.block_shift;
        let mut done = 0usize;
        while done < n {
            let pos = offset + done as u64;
            let p = pos >> self.block_shift;
            let in_block = pos & (bs - 1);
            let mut len = ((bs - in_block) as usize).min(n - done);
            let e = self.bat[p as usize];
            match e & 7 {
                PAYLOAD_NOT_PRESENT
                | PAYLOAD_UNDEFINED
                | PAYLOAD_ZERO
                | PAYLOAD_UNMAPPED
                | PAYLOAD_UNMAPPED_V095 => buf[done..done + len].fill(0),
                PAYLOAD_FULLY_PRESENT => {
                    let start = (e & !(MIB - 1)) + in_block;
                    // Extend over following blocks stored right after.
                    let mut q = p + 1;
                    let mut next_file = (e & !(MIB - 1)) + bs;
                    while done + len < n && len < MAX_BATCH {
                        let Some(&f) = self.bat.get(q as usize) else {
                            break;
                        };
                        if f & 7 != PAYLOAD_FULLY_PRESENT || f & !(MIB - 1) != next_file {
                            break;
                        }
                        len = (len + bs as usize).min(n - done);
                        next_file += bs;
                        q += 1;
                    }
                    self.image
                        .read(start, &mut buf[done..done + len], "VHDX payload block")?;
                }
                state => {
                    let what = if state == PAYLOAD_PARTIALLY_PRESENT {
                        "PARTIALLY_PRESENT, which only a differencing disk may use".to_string()
                    } else {
                        format!("the undefined state {state}")
                    };
                    return Err(self.image.corrupt(
                        self.entry_offset(p),
                        format!("VHDX BAT entry for payload block {p} has {what}"),
                    ));
                }
            }
            done += len;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert_eq!(guid_text(&BAT_GUID), "2dc27766-f623-4200-9d64-115e9bfd4a08");
        assert_eq!(
            guid_text(&METADATA_GUID),
            "8b7ca206-4790-4b9a-b8fe-575f050f886e"
        );
        assert_eq!(BAT_GUID[0..4], [0x66, 0x77, 0xc2, 0x2d]);
        assert!(probe(b"vhdxfile\0\0"));
        assert!(!probe(b"vhdxfil"));
    }

    #[test]
    fn crc() {
        let mut b = vec![7u8; 4096];
        let c = crc_zeroed(&b, 4);
        b[4..8].copy_from_slice(&c.to_le_bytes());
        assert!(crc_ok(&b, 4));
        b[100] ^= 1;
        assert!(!crc_ok(&b, 4));
        // CRC-32C check value.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    fn image_with(len: usize) -> (tempfile::TempDir, Image) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let file = ContainerFile::open(&p).unwrap();
        let len = file.len();
        (
            dir,
            Image {
                file,
                len,
                patches: BTreeMap::new(),
            },
        )
    }

    #[test]
    fn patches_overlay() {
        let (_d, mut img) = image_with(5 * 4096);
        let mut want: Vec<u8> = (0..5 * 4096).map(|i| (i % 251) as u8).collect();
        img.patch(4096, 4 * 4096, Patch::Zero { end: 4 * 4096 });
        want[4096..4 * 4096].fill(0);
        img.patch(
            2 * 4096,
            3 * 4096,
            Patch::Data(vec![9u8; 4096].into_boxed_slice()),
        );
        want[2 * 4096..3 * 4096].fill(9);
        // Past the end of the file: the file grows.
        img.patch(
            6 * 4096,
            7 * 4096,
            Patch::Data(vec![5u8; 4096].into_boxed_slice()),
        );
        want.resize(7 * 4096, 0);
        want[6 * 4096..].fill(5);
        assert_eq!(img.len, 7 * 4096);
        assert_eq!(img.patches.len(), 4);
        let mut b = vec![0u8; want.len()];
        img.read(0, &mut b, "t").unwrap();
        assert_eq!(b, want);
        for (off, n) in [(100u64, 5000usize), (4095, 2), (8191, 4098), (20000, 8672)] {
            let mut b = vec![0u8; n];
            img.read(off, &mut b, "t").unwrap();
            assert_eq!(b, want[off as usize..off as usize + n], "{off}");
        }
        let mut b = vec![0u8; 2];
        assert!(img.read(7 * 4096 - 1, &mut b, "t").is_err());
        // A later zero range over the data patch.
        img.patch(0, 8 * 4096, Patch::Zero { end: 8 * 4096 });
        assert_eq!(img.patches.len(), 1);
        let mut b = vec![1u8; 8 * 4096];
        img.read(0, &mut b, "t").unwrap();
        assert!(b.iter().all(|&x| x == 0));
    }

    #[test]
    fn parent_locator_pairs() {
        let mut b = vec![0u8; 20 + 12];
        b[18..20].copy_from_slice(&1u16.to_le_bytes());
        let k: Vec<u8> = "parent_linkage"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let v: Vec<u8> = "{x}".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let ko = b.len();
        b.extend_from_slice(&k);
        let vo = b.len();
        b.extend_from_slice(&v);
        b[20..24].copy_from_slice(&(ko as u32).to_le_bytes());
        b[24..28].copy_from_slice(&(vo as u32).to_le_bytes());
        b[28..30].copy_from_slice(&(k.len() as u16).to_le_bytes());
        b[30..32].copy_from_slice(&(v.len() as u16).to_le_bytes());
        assert_eq!(parent_locator_text(&b), "parent_linkage={x}");
        assert_eq!(parent_locator_text(&b[..10]), "");
    }
}
