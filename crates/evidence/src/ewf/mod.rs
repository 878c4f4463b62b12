//! Expert Witness Format (EWF) images, read-only: EWF v1 (`.E01`, EnCase
//! 1–7, FTK Imager, linen, ewfacquire, EWF-X; SMART `.s01`) and EWF v2
//! (`.Ex01`, EnCase 7+), single- or multi-segment.
//!
//! At open, every segment file's sections are walked and verified (section
//! descriptor checksums, table checksums, segment numbers, section chains
//! that must move forward and stay inside the file), the acquisition
//! metadata, stored hashes and acquisition errors are collected, and a flat
//! in-memory chunk index is built: for every chunk of the media, the segment
//! file, file offset, stored size and how it is stored (zlib-compressed,
//! raw with an Adler-32 checksum, or a v2 pattern fill). The index costs 8
//! bytes per chunk (about 256 MiB per TiB of media at the default 32 KiB
//! chunk size) plus a small record per table.
//!
//! [`Evidence::read_at`] then needs no lock on the I/O path: segment files
//! are read with positional reads (`pread`), runs of chunks that lie back to
//! back in a segment file are fetched with one read, and whole chunks are
//! inflated straight into the caller's buffer. Reads that cover only part of
//! a chunk go through a small shared cache of decoded chunks, so small
//! sequential reads do not inflate the same chunk again. Every chunk is
//! verified as it is read (its Adler-32 checksum, or the zlib stream's own);
//! a corrupt chunk is an error naming the segment file and the offset, never
//! silent zeros.
//!
//! The format follows Joachim Metz's "Expert Witness Compression Format"
//! and "EWF2" specifications (libewf documentation).

mod meta;
mod naming;
mod v1;
mod v2;

use crate::remote::Handle;
use crate::{AcquisitionError, Evidence, EvidenceError, EvidenceInfo, Format, StoredHashes};
use flate2::{Decompress, FlushDecompress, Status};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub(crate) const V1_SIGNATURE: &[u8; 8] = b"EVF\x09\x0d\x0a\xff\x00";
pub(crate) const V2_SIGNATURE: &[u8; 8] = b"EVF2\x0d\x0a\x81\x00";

/// Largest chunk (sectors per chunk × bytes per sector) accepted. EnCase
/// writes at most 32768 sectors of 512 bytes (16 MiB); anything larger is
/// treated as corruption rather than allocated.
const MAX_CHUNK_SIZE: u64 = 64 << 20;
/// Most entries accepted in one table section (EnCase writes ≤ 65534).
const MAX_TABLE_ENTRIES: u64 = 1 << 24;
/// Most sections accepted in one segment file.
const MAX_SECTIONS: usize = 1 << 20;
/// Largest compressed metadata section (header, case data, ...) read.
const MAX_META_COMPRESSED: u64 = 16 << 20;
/// Largest inflated metadata section accepted.
const MAX_META_INFLATED: usize = 16 << 20;
/// Largest run of back-to-back chunks fetched with one read.
const MAX_BATCH: u64 = 4 << 20;
/// Scratch memory kept by a thread between reads.
const MAX_RETAINED_SCRATCH: usize = 8 << 20;
/// Total bytes of decoded chunks kept by the partial-read cache.
const CACHE_BYTES: u64 = 16 << 20;

/// EWF format version from a segment's first bytes.
pub fn magic_version(head: &[u8]) -> Option<u8> {
    if head.starts_with(V1_SIGNATURE) {
        Some(1)
    } else if head.starts_with(V2_SIGNATURE) {
        Some(2)
    } else {
        None
    }
}

pub(crate) fn corrupt(path: &Path, offset: u64, what: impl Into<String>) -> EvidenceError {
    EvidenceError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what: what.into(),
    }
}

pub(crate) fn truncated(path: &Path, offset: u64, what: impl Into<String>) -> EvidenceError {
    EvidenceError::Truncated {
        path: path.to_path_buf(),
        offset,
        what: what.into(),
    }
}

/// The error for a segment file whose header carries segment number `found`
/// where `expected` belongs (the number is stored at `offset`).
fn wrong_segment_number(seg: &SegFile, offset: u64, found: u32, expected: u32) -> EvidenceError {
    // A later segment opened on its own (its name differs from what the
    // first segment's would be): point at the first segment.
    if expected == 1
        && found > 1
        && let Some(first) = naming::segment_path(&seg.path, 1).filter(|p| *p != seg.path)
    {
        return EvidenceError::MissingSegment {
            path: seg.path.clone(),
            expected: first.display().to_string(),
            what: format!(
                "this file is segment {found} of its set; open the set by its first segment"
            ),
        };
    }
    corrupt(
        &seg.path,
        offset,
        format!("segment number is {found}, expected {expected}"),
    )
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

fn adler32(data: &[u8]) -> u32 {
    adler2::adler32_slice(data)
}

/// One segment file, opened read-only.
struct SegFile {
    path: PathBuf,
    file: Handle,
    size: u64,
}

impl fmt::Debug for SegFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegFile")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish()
    }
}

impl SegFile {
    fn open(path: &Path) -> Result<Self, EvidenceError> {
        let (file, size) = Handle::open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
        })
    }

    /// Reads `buf.len()` bytes at `offset`, which the caller has checked lie
    /// inside the file as opened; a short read means the file shrank.
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<(), EvidenceError> {
        let got = self.file.pread_full(&self.path, offset, buf)?;
        if got < buf.len() {
            return Err(truncated(
                &self.path,
                offset + got as u64,
                format!("file shrank below its opened size of {} bytes", self.size),
            ));
        }
        Ok(())
    }

    /// Reads `len` bytes of `what` at `offset`: a Truncated error when they
    /// run past the end of the file.
    fn read_vec(&self, offset: u64, len: u64, what: &str) -> Result<Vec<u8>, EvidenceError> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| {
                truncated(
                    &self.path,
                    offset,
                    format!(
                        "{what} ({len} bytes at offset {offset}) runs past the end of the file ({} bytes)",
                        self.size
                    ),
                )
            })?;
        let len = usize::try_from(end - offset)
            .map_err(|_| corrupt(&self.path, offset, format!("{what} is too large")))?;
        let mut v = vec![0u8; len];
        self.read_into(offset, &mut v)?;
        Ok(v)
    }
}

// ---------------------------------------------------------------------------
// Chunk index

const F_COMPRESSED: u32 = 1 << 31;
const F_CHECKSUM: u32 = 1 << 30;
const F_PATTERN: u32 = 1 << 29;
const F_CORRUPT: u32 = 1 << 28;
const SIZE_MASK: u32 = (1 << 28) - 1;

/// Why a table entry cannot be used; reported when its chunk is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    OutOfOrder = 1,
    ZeroSize,
    PastEnd,
    TooLarge,
    OutsideSections,
    EntriesChecksum,
    OffsetOverflow,
}

impl Reason {
    fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::OutOfOrder,
            2 => Self::ZeroSize,
            3 => Self::PastEnd,
            4 => Self::TooLarge,
            5 => Self::OutsideSections,
            6 => Self::EntriesChecksum,
            7 => Self::OffsetOverflow,
            _ => return None,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Self::OutOfOrder => {
                "its chunk offset lies before the previous chunk's (table entries out of order)"
            }
            Self::ZeroSize => "its chunk has no stored bytes",
            Self::PastEnd => "its chunk runs past the end of the segment file",
            Self::TooLarge => "its stored chunk size is larger than any valid chunk",
            Self::OutsideSections => {
                "its chunk offset lies outside every section of the segment file"
            }
            Self::EntriesChecksum => {
                "the table's entries fail their checksum (and no intact table2 copy exists)"
            }
            Self::OffsetOverflow => "its chunk offset overflows",
        }
    }
}

/// Where one chunk is stored, as decoded from a table entry.
#[derive(Debug, Clone, Copy)]
enum Loc {
    Data {
        offset: u64,
        size: u32,
        compressed: bool,
        checksum: bool,
    },
    Pattern(u64),
    Corrupt(Reason),
}

/// A run of chunks from one table, in one segment file, whose offsets are
/// stored relative to `base`.
#[derive(Debug, Clone)]
struct Group {
    first_chunk: u64,
    seg: u32,
    base: u64,
    /// File offset of the table entry of `first_chunk` (for error messages).
    entry_offset: u64,
    entry_size: u32,
}

/// One chunk: `rel` is the offset from its group's base (or the pattern
/// index / reason code); `word` packs the stored size and flags.
#[derive(Debug, Clone, Copy)]
struct Entry {
    rel: u32,
    word: u32,
}

#[derive(Debug, Default)]
struct ChunkIndex {
    groups: Vec<Group>,
    entries: Vec<Entry>,
    patterns: Vec<u64>,
}

impl ChunkIndex {
    fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    fn push(&mut self, seg: u32, entry_offset: u64, entry_size: u32, loc: Loc) {
        let chunk = self.len();
        let (rel_of, word, base) = match loc {
            Loc::Data {
                offset,
                size,
                compressed,
                checksum,
            } => {
                let mut word = size & SIZE_MASK;
                if compressed {
                    word |= F_COMPRESSED;
                }
                if checksum {
                    word |= F_CHECKSUM;
                }
                (Some(offset), word, offset)
            }
            Loc::Pattern(p) => {
                self.patterns.push(p);
                (None, F_PATTERN, 0)
            }
            Loc::Corrupt(r) => (None, F_CORRUPT | (r as u32), 0),
        };
        let fits = self.groups.last().is_some_and(|g| {
            let expected_entry = (chunk - g.first_chunk)
                .checked_mul(u64::from(g.entry_size))
                .and_then(|d| d.checked_add(g.entry_offset));
            g.seg == seg
                && g.entry_size == entry_size
                && expected_entry == Some(entry_offset)
                && rel_of.is_none_or(|o| o >= g.base && o - g.base <= u64::from(u32::MAX))
        });
        if !fits {
            self.groups.push(Group {
                first_chunk: chunk,
                seg,
                base,
                entry_offset,
                entry_size,
            });
        }
        let g = self.groups.last().map_or(0, |g| g.base);
        let rel = match loc {
            Loc::Data { offset, .. } => (offset - g) as u32,
            Loc::Pattern(_) => (self.patterns.len() - 1) as u32,
            Loc::Corrupt(_) => 0,
        };
        self.entries.push(Entry { rel, word });
    }

    fn truncate(&mut self, n: u64) {
        if n < self.len() {
            self.entries.truncate(n as usize);
            self.groups.retain(|g| g.first_chunk < n);
        }
    }

    fn locate(&self, chunk: u64) -> (&Group, Entry) {
        let gi = self.groups.partition_point(|g| g.first_chunk <= chunk) - 1;
        (&self.groups[gi], self.entries[chunk as usize])
    }
}

// ---------------------------------------------------------------------------
// Decoded-chunk cache for partial reads

#[derive(Debug)]
struct Slot {
    chunk: u64,
    data: Vec<u8>,
    len: usize,
    used: u64,
}

#[derive(Debug)]
struct ChunkCache {
    slots: Vec<Slot>,
    cap: usize,
    tick: u64,
}

impl ChunkCache {
    fn new(chunk_size: u32) -> Self {
        let cap = (CACHE_BYTES / u64::from(chunk_size.max(1))).clamp(2, 64) as usize;
        Self {
            slots: Vec::with_capacity(cap),
            cap,
            tick: 0,
        }
    }

    fn get(&mut self, chunk: u64) -> Option<&[u8]> {
        self.tick += 1;
        let tick = self.tick;
        let slot = self.slots.iter_mut().find(|s| s.chunk == chunk)?;
        slot.used = tick;
        Some(&slot.data[..slot.len])
    }

    /// Caches `data[..len]` as `chunk`; returns a buffer for reuse.
    fn insert(&mut self, chunk: u64, data: Vec<u8>, len: usize) -> Vec<u8> {
        self.tick += 1;
        let tick = self.tick;
        if let Some(s) = self.slots.iter_mut().find(|s| s.chunk == chunk) {
            s.used = tick;
            return data;
        }
        let slot = Slot {
            chunk,
            data,
            len,
            used: tick,
        };
        if self.slots.len() < self.cap {
            self.slots.push(slot);
            return Vec::new();
        }
        let victim = self
            .slots
            .iter_mut()
            .min_by_key(|s| s.used)
            .expect("cache capacity is at least 2");
        std::mem::replace(victim, slot).data
    }
}

/// Per-thread buffers reused across reads.
#[derive(Default)]
struct Scratch {
    io: Vec<u8>,
    chunk: Vec<u8>,
    sink: Vec<u8>,
    inflater: Option<Decompress>,
}

impl Scratch {
    fn trim(&mut self) {
        for v in [&mut self.io, &mut self.chunk, &mut self.sink] {
            if v.capacity() > MAX_RETAINED_SCRATCH {
                *v = Vec::new();
            }
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Inflates the zlib stream `input` into `dest`. Returns the total inflated
/// size, which may exceed `dest.len()` (the excess is discarded) but never
/// `max_total`. The stream's Adler-32 trailer is verified.
fn inflate_chunk(
    dec: &mut Decompress,
    sink: &mut Vec<u8>,
    input: &[u8],
    dest: &mut [u8],
    max_total: usize,
) -> Result<usize, String> {
    dec.reset(true);
    // A single call with `Finish` lets the inflater write straight into the
    // output without going through its window; that needs room for the
    // whole stream, hence the sink when `dest` is shorter than a chunk.
    let direct = dest.len() >= max_total;
    let target: &mut [u8] = if direct {
        dest
    } else {
        if sink.len() < max_total {
            sink.resize(max_total, 0);
        }
        &mut sink[..max_total]
    };
    let status = dec
        .decompress(input, target, FlushDecompress::Finish)
        .map_err(|e| format!("zlib stream is corrupt: {e}"))?;
    let total = usize::try_from(dec.total_out()).unwrap_or(usize::MAX);
    if status != Status::StreamEnd {
        return Err(if total < target.len() {
            format!("zlib stream ends after {total} bytes without its end marker (truncated)")
        } else {
            format!("zlib stream inflates to more than {max_total} bytes")
        });
    }
    if !direct {
        let n = total.min(dest.len());
        dest[..n].copy_from_slice(&sink[..n]);
    }
    Ok(total)
}

/// Inflates a whole zlib stream of metadata, up to `limit` bytes.
fn inflate_meta(input: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut dec = Decompress::new(true);
    let mut out = Vec::with_capacity((input.len() * 4).clamp(256, limit));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= limit {
                return Err(format!("inflates to more than {limit} bytes"));
            }
            out.reserve((out.len()).clamp(256, limit - out.len()));
        }
        let (in_before, out_before) = (dec.total_in(), dec.total_out());
        let used = usize::try_from(in_before)
            .unwrap_or(usize::MAX)
            .min(input.len());
        let status = dec
            .decompress_vec(&input[used..], &mut out, FlushDecompress::None)
            .map_err(|e| format!("zlib stream is corrupt: {e}"))?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        if dec.total_in() == in_before
            && dec.total_out() == out_before
            && out.len() < out.capacity()
        {
            return Err("zlib stream is truncated".into());
        }
    }
}

// ---------------------------------------------------------------------------
// Building an image from its segments

/// Geometry of the media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Media {
    sectors_per_chunk: u32,
    bytes_per_sector: u32,
    sector_count: u64,
    chunk_size: u32,
    media_size: u64,
}

impl Media {
    fn new(
        seg: &SegFile,
        offset: u64,
        sectors_per_chunk: u64,
        bytes_per_sector: u64,
        sector_count: u64,
    ) -> Result<Self, EvidenceError> {
        if bytes_per_sector == 0 {
            return Err(corrupt(
                &seg.path,
                offset,
                "media has zero bytes per sector",
            ));
        }
        if sectors_per_chunk == 0 {
            return Err(corrupt(
                &seg.path,
                offset,
                "media has zero sectors per chunk",
            ));
        }
        let chunk_size = sectors_per_chunk
            .checked_mul(bytes_per_sector)
            .filter(|&c| c <= MAX_CHUNK_SIZE)
            .ok_or_else(|| {
                corrupt(
                    &seg.path,
                    offset,
                    format!(
                        "chunk size of {sectors_per_chunk} sectors × {bytes_per_sector} bytes exceeds the {MAX_CHUNK_SIZE}-byte maximum"
                    ),
                )
            })?;
        let media_size = sector_count.checked_mul(bytes_per_sector).ok_or_else(|| {
            corrupt(
                &seg.path,
                offset,
                format!("media of {sector_count} sectors × {bytes_per_sector} bytes overflows"),
            )
        })?;
        Ok(Self {
            sectors_per_chunk: sectors_per_chunk as u32,
            bytes_per_sector: bytes_per_sector as u32,
            sector_count,
            chunk_size: chunk_size as u32,
            media_size,
        })
    }

    fn chunks_needed(&self) -> u64 {
        self.media_size.div_ceil(u64::from(self.chunk_size))
    }

    /// Largest stored size accepted for one chunk: zlib output of
    /// incompressible data is slightly larger than its input.
    fn max_stored(&self) -> u64 {
        u64::from(self.chunk_size) * 2 + 4096
    }
}

/// How a segment file ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Next,
    Done,
}

/// State collected while the segment files are parsed.
#[derive(Debug, Default)]
struct Builder {
    segs: Vec<SegFile>,
    index: ChunkIndex,
    media: Option<Media>,
    /// Header values from header2 (v1) or case data/device information (v2).
    header2: BTreeMap<String, String>,
    /// Header values from the (ASCII) header section.
    header: BTreeMap<String, String>,
    /// Values from the EWF-X xheader section.
    xheader: BTreeMap<String, String>,
    /// v2: raw case data and device information values the reader needs.
    raw: BTreeMap<String, String>,
    /// Container facts (chunk size, media type, ...).
    facts: BTreeMap<String, String>,
    stored: StoredHashes,
    acquisition_errors: Vec<AcquisitionError>,
    warnings: Vec<String>,
    /// v1: a SMART (EWF-S01) volume section was found.
    smart: bool,
    /// Set identifier of the first segment (v2 file header, v1 volume).
    set_identifier: Option<[u8; 16]>,
}

impl Builder {
    fn warn(&mut self, w: String) {
        tracing::warn!("{w}");
        self.warnings.push(w);
    }

    fn set_md5(&mut self, md5: &[u8], source: &str) {
        if md5.iter().all(|&b| b == 0) {
            return;
        }
        let hex = hex::encode(md5);
        match &self.stored.md5 {
            None => self.stored.md5 = Some(hex),
            Some(old) if *old != hex => {
                let old = old.clone();
                self.warn(format!(
                    "{source} holds MD5 {hex}, which differs from the MD5 {old} stored elsewhere"
                ));
            }
            Some(_) => {}
        }
    }

    fn set_sha1(&mut self, sha1: &[u8], source: &str) {
        if sha1.iter().all(|&b| b == 0) {
            return;
        }
        let hex = hex::encode(sha1);
        match &self.stored.sha1 {
            None => self.stored.sha1 = Some(hex),
            Some(old) if *old != hex => {
                let old = old.clone();
                self.warn(format!(
                    "{source} holds SHA-1 {hex}, which differs from the SHA-1 {old} stored elsewhere"
                ));
            }
            Some(_) => {}
        }
    }
}

/// How the segment files of the set are found.
enum Segments<'a> {
    /// Derive each next segment's name from the first one's.
    Discover(&'a Path),
    /// Exactly these files, in segment-number order.
    Given(Vec<PathBuf>),
}

/// An EWF image (v1 or v2), possibly spread over several segment files.
pub struct EwfEvidence {
    info: EvidenceInfo,
    segs: Vec<SegFile>,
    index: ChunkIndex,
    chunk_size: u32,
    version: u8,
    cache: Mutex<ChunkCache>,
}

impl fmt::Debug for EwfEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EwfEvidence")
            .field("info", &self.info)
            .field("version", &self.version)
            .field("chunk_size", &self.chunk_size)
            .field("chunks", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl EwfEvidence {
    /// Opens an EWF image by its first segment (`.E01`, `.e01`, `.s01`,
    /// `.Ex01`); further segments are found by name (`.E02` … `.E99`, `.EAA`
    /// … `.EZZ`, `.FAA` …; `.Ex02` … `.ExAA` …) until a segment ends the set.
    ///
    /// # Errors
    /// Unreadable files, structural corruption (naming the file and offset),
    /// a missing segment ([`EvidenceError::MissingSegment`]), or features
    /// trawl does not read (encrypted or bzip2-compressed Ex01).
    pub fn open(path: &Path) -> Result<Self, EvidenceError> {
        Self::build(Segments::Discover(path))
    }

    /// Opens an EWF image from an explicit list of its segment files (in any
    /// order; they are ordered by the segment numbers in their headers). One
    /// path behaves like [`EwfEvidence::open`].
    ///
    /// # Errors
    /// As [`EwfEvidence::open`]; a segment number missing from the list is a
    /// [`EvidenceError::MissingSegment`].
    pub fn open_segments(paths: &[PathBuf]) -> Result<Self, EvidenceError> {
        match paths {
            [] => Err(EvidenceError::NotFound {
                path: PathBuf::new(),
            }),
            [one] => Self::open(one),
            many => Self::build(Segments::Given(order_segments(many)?)),
        }
    }

    fn build(segments: Segments<'_>) -> Result<Self, EvidenceError> {
        let first_path = match &segments {
            Segments::Discover(p) => p.to_path_buf(),
            Segments::Given(v) => v[0].clone(),
        };
        let first = SegFile::open(&first_path)?;
        let head = first.read_vec(0, 8.min(first.size), "file signature")?;
        let version = magic_version(&head).ok_or_else(|| EvidenceError::UnknownFormat {
            path: first_path.clone(),
            reason: "no EWF signature (EVF\\x09\\x0d\\x0a\\xff\\x00 or EVF2\\x0d\\x0a\\x81\\x00)"
                .into(),
        })?;
        let mut b = Builder::default();
        b.segs.push(first);
        let mut number: u32 = 1;
        loop {
            let si = b.segs.len() - 1;
            let end = if version == 1 {
                v1::parse_segment(&mut b, si, number)?
            } else {
                v2::parse_segment(&mut b, si, number)?
            };
            if end == End::Done {
                if let Segments::Given(v) = &segments
                    && v.len() > b.segs.len()
                {
                    let extra = &v[b.segs.len()];
                    b.warn(format!(
                        "segment {number} ({}) ends the set; ignoring {} and later files",
                        b.segs[si].path.display(),
                        extra.display()
                    ));
                }
                break;
            }
            number = number
                .checked_add(1)
                .ok_or_else(|| corrupt(&b.segs[si].path, 0, "too many segment files"))?;
            let next = match &segments {
                Segments::Given(v) => v.get(b.segs.len()).cloned(),
                Segments::Discover(first) => {
                    naming::segment_path(first, number).filter(|p| crate::remote::segment_exists(p))
                }
            };
            let Some(next) = next else {
                let expected = naming::segment_path(&first_path, number)
                    .map_or_else(|| format!("segment {number}"), |p| p.display().to_string());
                return Err(EvidenceError::MissingSegment {
                    path: first_path,
                    expected,
                    what: format!(
                        "{} ends with a 'next' section, so segment {number} must follow",
                        b.segs[si].path.display()
                    ),
                });
            };
            b.segs.push(SegFile::open(&next)?);
        }
        Self::finish(b, version)
    }

    fn finish(mut b: Builder, version: u8) -> Result<Self, EvidenceError> {
        let last = b.segs.len() - 1;
        let Some(media) = b.media else {
            return Err(corrupt(
                &b.segs[0].path,
                0,
                if version == 1 {
                    "no volume, disk or data section describes the media"
                } else {
                    "no device information and case data sections describe the media"
                },
            ));
        };
        let needed = media.chunks_needed();
        if b.index.len() < needed {
            return Err(corrupt(
                &b.segs[last].path,
                b.segs[last].size,
                format!(
                    "the chunk tables of the {} segment file(s) list {} chunks, but the media of {} bytes needs {needed} chunks of {} bytes",
                    b.segs.len(),
                    b.index.len(),
                    media.media_size,
                    media.chunk_size
                ),
            ));
        }
        if b.index.len() > needed {
            b.index.truncate(needed);
        }
        b.index.entries.shrink_to_fit();

        let mut metadata = b.xheader.clone();
        metadata.extend(std::mem::take(&mut b.header));
        metadata.extend(std::mem::take(&mut b.header2));
        metadata.retain(|_, v| !v.is_empty());
        metadata.extend(std::mem::take(&mut b.facts));
        metadata.insert("ewf_version".into(), version.to_string());
        metadata.insert("chunk_size".into(), media.chunk_size.to_string());
        metadata.insert(
            "sectors_per_chunk".into(),
            media.sectors_per_chunk.to_string(),
        );
        metadata.insert(
            "bytes_per_sector".into(),
            media.bytes_per_sector.to_string(),
        );
        metadata.insert("sector_count".into(), media.sector_count.to_string());
        metadata.insert("chunk_count".into(), needed.to_string());
        metadata.insert("segment_count".into(), b.segs.len().to_string());
        if let Some(guid) = b.set_identifier.filter(|g| g.iter().any(|&x| x != 0)) {
            metadata.insert("set_identifier".into(), meta::guid_string(&guid));
        }
        if !b.warnings.is_empty() {
            metadata.insert("warnings".into(), b.warnings.join("; "));
        }

        let paths: Vec<PathBuf> = b.segs.iter().map(|s| s.path.clone()).collect();
        let info = EvidenceInfo {
            path: paths[0].clone(),
            segments: paths,
            size: media.media_size,
            format: Format::Ewf,
            stored: b.stored,
            metadata,
            acquisition_errors: b.acquisition_errors,
            bytes_per_sector: media.bytes_per_sector,
        };
        Ok(Self {
            info,
            segs: b.segs,
            index: b.index,
            chunk_size: media.chunk_size,
            version,
            cache: Mutex::new(ChunkCache::new(media.chunk_size)),
        })
    }

    /// EWF format version: 1 (E01, S01) or 2 (Ex01).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Bytes of media per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Number of chunks of the media.
    pub fn chunk_count(&self) -> u64 {
        self.index.len()
    }

    fn chunk_len(&self, chunk: u64) -> usize {
        let cs = u64::from(self.chunk_size);
        (self.info.size - chunk * cs).min(cs) as usize
    }

    /// The segment file, file offset and description for errors about `chunk`.
    fn chunk_error(&self, chunk: u64, what: impl fmt::Display) -> EvidenceError {
        let (g, e) = self.index.locate(chunk);
        let seg = &self.segs[g.seg as usize];
        let media_offset = chunk * u64::from(self.chunk_size);
        let offset = if e.word & (F_CORRUPT | F_PATTERN) == 0 {
            g.base + u64::from(e.rel)
        } else {
            g.entry_offset + (chunk - g.first_chunk) * u64::from(g.entry_size)
        };
        corrupt(
            &seg.path,
            offset,
            format!("chunk {chunk} (media offset {media_offset}): {what}"),
        )
    }

    /// Decodes chunk `chunk` from its stored bytes into `dest`
    /// (`dest.len()` is the chunk's length in the media).
    fn decode_stored(
        &self,
        chunk: u64,
        word: u32,
        stored: &[u8],
        dest: &mut [u8],
        s: &mut Scratch,
    ) -> Result<(), EvidenceError> {
        let cs = self.chunk_size as usize;
        if word & F_COMPRESSED != 0 {
            let dec = s.inflater.get_or_insert_with(|| Decompress::new(true));
            let total = inflate_chunk(dec, &mut s.sink, stored, dest, cs)
                .map_err(|e| self.chunk_error(chunk, e))?;
            if total < dest.len() {
                return Err(self.chunk_error(
                    chunk,
                    format!("inflates to {total} bytes, expected {}", dest.len()),
                ));
            }
            return Ok(());
        }
        let data = if word & F_CHECKSUM != 0 {
            if stored.len() < 4 {
                return Err(self.chunk_error(
                    chunk,
                    format!(
                        "{} stored bytes cannot hold data and its checksum",
                        stored.len()
                    ),
                ));
            }
            let data_len = (stored.len() - 4).min(cs);
            let (data, rest) = stored.split_at(data_len);
            let want = le32(rest, 0);
            let got = adler32(data);
            if want != got {
                return Err(self.chunk_error(
                    chunk,
                    format!(
                        "Adler-32 checksum mismatch (stored {want:#010x}, computed {got:#010x})"
                    ),
                ));
            }
            data
        } else {
            &stored[..stored.len().min(cs)]
        };
        if data.len() < dest.len() {
            return Err(self.chunk_error(
                chunk,
                format!("holds {} bytes, expected {}", data.len(), dest.len()),
            ));
        }
        dest.copy_from_slice(&data[..dest.len()]);
        Ok(())
    }

    /// Decodes `count` whole chunks from `first` into `dest`, fetching chunks
    /// that lie back to back in a segment file with one read.
    fn decode_run(
        &self,
        first: u64,
        count: u64,
        dest: &mut [u8],
        s: &mut Scratch,
    ) -> Result<(), EvidenceError> {
        let cs = u64::from(self.chunk_size);
        let mut i = 0u64;
        while i < count {
            let chunk = first + i;
            let (g, e) = self.index.locate(chunk);
            let d0 = (i * cs) as usize;
            if e.word & F_CORRUPT != 0 {
                let why = Reason::from_code(e.word & 0xff)
                    .map_or("table entry is corrupt", Reason::describe);
                return Err(self.chunk_error(chunk, format!("table entry unusable: {why}")));
            }
            if e.word & F_PATTERN != 0 {
                let len = self.chunk_len(chunk);
                fill_pattern(&mut dest[d0..d0 + len], self.index.patterns[e.rel as usize]);
                i += 1;
                continue;
            }
            let seg = g.seg;
            let start = g.base + u64::from(e.rel);
            let mut end = start + u64::from(e.word & SIZE_MASK);
            let mut j = i + 1;
            while j < count && end - start < MAX_BATCH {
                let (g2, e2) = self.index.locate(first + j);
                if e2.word & (F_CORRUPT | F_PATTERN) != 0
                    || g2.seg != seg
                    || g2.base + u64::from(e2.rel) != end
                {
                    break;
                }
                end += u64::from(e2.word & SIZE_MASK);
                j += 1;
            }
            let len = (end - start) as usize;
            let mut io = std::mem::take(&mut s.io);
            if io.len() < len {
                io.resize(len, 0);
            }
            let res = self.segs[seg as usize]
                .read_into(start, &mut io[..len])
                .and_then(|()| {
                    let mut at = 0usize;
                    for k in i..j {
                        let c = first + k;
                        let (_, ek) = self.index.locate(c);
                        let n = (ek.word & SIZE_MASK) as usize;
                        let d = (k * cs) as usize;
                        let clen = self.chunk_len(c);
                        self.decode_stored(c, ek.word, &io[at..at + n], &mut dest[d..d + clen], s)?;
                        at += n;
                    }
                    Ok(())
                });
            s.io = io;
            res?;
            i = j;
        }
        Ok(())
    }

    /// Copies `dest.len()` bytes from offset `within` of chunk `chunk`,
    /// through the decoded-chunk cache.
    fn read_partial(
        &self,
        chunk: u64,
        within: usize,
        dest: &mut [u8],
        s: &mut Scratch,
    ) -> Result<(), EvidenceError> {
        if let Some(data) = self.cache.lock().get(chunk) {
            dest.copy_from_slice(&data[within..within + dest.len()]);
            return Ok(());
        }
        let clen = self.chunk_len(chunk);
        let mut buf = std::mem::take(&mut s.chunk);
        if buf.len() < clen {
            buf.resize(clen, 0);
        }
        self.decode_run(chunk, 1, &mut buf[..clen], s)?;
        dest.copy_from_slice(&buf[within..within + dest.len()]);
        s.chunk = self.cache.lock().insert(chunk, buf, clen);
        Ok(())
    }

    fn read_inner(
        &self,
        offset: u64,
        buf: &mut [u8],
        s: &mut Scratch,
    ) -> Result<(), EvidenceError> {
        let cs = u64::from(self.chunk_size);
        let chunks = self.index.len();
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let chunk = pos / cs;
            let within = (pos % cs) as usize;
            let clen = self.chunk_len(chunk);
            let rest = buf.len() - done;
            if within == 0 && rest >= clen {
                let mut count = 0u64;
                let mut bytes = 0usize;
                while chunk + count < chunks {
                    let l = self.chunk_len(chunk + count);
                    if bytes + l > rest {
                        break;
                    }
                    bytes += l;
                    count += 1;
                }
                self.decode_run(chunk, count, &mut buf[done..done + bytes], s)?;
                done += bytes;
            } else {
                let n = (clen - within).min(rest);
                self.read_partial(chunk, within, &mut buf[done..done + n], s)?;
                done += n;
            }
        }
        Ok(())
    }
}

fn fill_pattern(dest: &mut [u8], pattern: u64) {
    let p = pattern.to_le_bytes();
    for (i, b) in dest.iter_mut().enumerate() {
        *b = p[i % 8];
    }
}

impl Evidence for EwfEvidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        let size = self.info.size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(size - offset) as usize;
        let buf = &mut buf[..want];
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => {
                let r = self.read_inner(offset, buf, &mut s);
                s.trim();
                r
            }
            Err(_) => self.read_inner(offset, buf, &mut Scratch::default()),
        })?;
        Ok(want)
    }
}

/// Orders explicitly given segment files by the segment numbers in their
/// headers and checks that none is missing or given twice.
fn order_segments(paths: &[PathBuf]) -> Result<Vec<PathBuf>, EvidenceError> {
    let mut numbered = Vec::with_capacity(paths.len());
    for p in paths {
        let seg = SegFile::open(p)?;
        let head = seg.read_vec(0, 32.min(seg.size), "file header")?;
        let number = match magic_version(&head) {
            Some(1) if head.len() >= 13 => u32::from(le16(&head, 9)),
            Some(2) if head.len() >= 16 => le32(&head, 12),
            Some(_) => return Err(truncated(p, 0, "file header is cut short")),
            None => {
                return Err(EvidenceError::UnknownFormat {
                    path: p.clone(),
                    reason: "listed as an EWF segment but has no EWF signature".into(),
                });
            }
        };
        numbered.push((number, p.clone()));
    }
    numbered.sort_by_key(|(n, _)| *n);
    for (i, (n, p)) in numbered.iter().enumerate() {
        let want = i as u32 + 1;
        if *n == want {
            continue;
        }
        if i > 0 && numbered[i - 1].0 == *n {
            return Err(corrupt(
                p,
                0,
                format!(
                    "segment number {n} is also the number of {}",
                    numbered[i - 1].1.display()
                ),
            ));
        }
        let expected = naming::segment_path(&numbered[0].1, want)
            .map_or_else(|| format!("segment {want}"), |p| p.display().to_string());
        return Err(EvidenceError::MissingSegment {
            path: numbered[0].1.clone(),
            expected,
            what: format!(
                "segment {want} is not among the {} files given",
                paths.len()
            ),
        });
    }
    Ok(numbered.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::ZlibEncoder;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflate_exact_and_bounds() {
        let data: Vec<u8> = (0..32768u32).map(|i| (i % 251) as u8).collect();
        let z = zlib(&data);
        let mut dec = Decompress::new(true);
        let mut sink = Vec::new();
        let mut out = vec![0u8; 32768];
        assert_eq!(
            inflate_chunk(&mut dec, &mut sink, &z, &mut out, 32768).unwrap(),
            32768
        );
        assert_eq!(out, data);
        // Shorter destination (last chunk): the excess is discarded.
        let mut short = vec![0u8; 1000];
        assert_eq!(
            inflate_chunk(&mut dec, &mut sink, &z, &mut short, 32768).unwrap(),
            32768
        );
        assert_eq!(short, data[..1000]);
        // More than allowed.
        assert!(inflate_chunk(&mut dec, &mut sink, &z, &mut short, 20000).is_err());
        // Truncated stream.
        let mut out = vec![0u8; 32768];
        assert!(inflate_chunk(&mut dec, &mut sink, &z[..z.len() / 2], &mut out, 32768).is_err());
        // A flipped bit in the Adler-32 trailer is detected.
        let mut bad = z.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(inflate_chunk(&mut dec, &mut sink, &bad, &mut out, 32768).is_err());
    }

    #[test]
    fn inflate_meta_limits() {
        let data = vec![7u8; 100_000];
        let z = zlib(&data);
        assert_eq!(inflate_meta(&z, 1 << 20).unwrap(), data);
        assert!(inflate_meta(&z, 50_000).is_err());
        assert!(inflate_meta(&z[..10], 1 << 20).is_err());
        assert!(inflate_meta(b"not zlib at all", 1 << 20).is_err());
    }

    #[test]
    fn index_groups_and_lookup() {
        let mut ix = ChunkIndex::default();
        for i in 0..10u64 {
            ix.push(
                0,
                100 + 4 * i,
                4,
                Loc::Data {
                    offset: 1000 + i * 50,
                    size: 50,
                    compressed: i % 2 == 0,
                    checksum: i % 2 == 1,
                },
            );
        }
        // A new table in another segment.
        ix.push(
            1,
            40,
            4,
            Loc::Data {
                offset: 5_000_000_000,
                size: 9,
                compressed: true,
                checksum: false,
            },
        );
        ix.push(1, 44, 4, Loc::Corrupt(Reason::PastEnd));
        ix.push(1, 48, 4, Loc::Pattern(0x1122));
        assert_eq!(ix.groups.len(), 2);
        let (g, e) = ix.locate(3);
        assert_eq!(
            (g.seg, g.base + u64::from(e.rel), e.word & SIZE_MASK),
            (0, 1150, 50)
        );
        assert_ne!(e.word & F_CHECKSUM, 0);
        let (g, e) = ix.locate(10);
        assert_eq!((g.seg, g.base + u64::from(e.rel)), (1, 5_000_000_000));
        let (_, e) = ix.locate(11);
        assert_eq!(Reason::from_code(e.word & 0xff), Some(Reason::PastEnd));
        let (_, e) = ix.locate(12);
        assert_eq!(ix.patterns[e.rel as usize], 0x1122);
        ix.truncate(5);
        assert_eq!((ix.len(), ix.groups.len()), (5, 1));
    }

    #[test]
    fn cache_evicts_least_recent() {
        let mut c = ChunkCache::new(8 << 20);
        assert_eq!(c.cap, 2);
        assert!(c.insert(1, vec![1; 4], 4).is_empty());
        assert!(c.insert(2, vec![2; 4], 4).is_empty());
        assert!(c.get(1).is_some());
        let old = c.insert(3, vec![3; 4], 4);
        assert_eq!(old, vec![2; 4]);
        assert!(c.get(2).is_none());
        assert_eq!(c.get(3).unwrap(), &[3, 3, 3, 3]);
    }

    #[test]
    fn pattern_fill_repeats_bytes() {
        let mut d = [0u8; 11];
        fill_pattern(&mut d, 0x0807_0605_0403_0201);
        assert_eq!(d, [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3]);
    }
}
