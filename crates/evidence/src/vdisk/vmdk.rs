//! VMware virtual disks (VMDK): hosted sparse extents (`KDMV`, monolithic
//! or one extent of a split disk), stream-optimized extents (deflate
//! grains behind markers, the header possibly in a footer), and descriptor
//! files naming flat, sparse and zero extents laid end to end.
//!
//! The virtual disk presented is what `qemu-img convert -O raw` writes.
//! A sparse extent's grain directory and grain tables are loaded at open
//! (their sizes checked against the file first, memory bounded by the
//! file's size); reads map each grain through them: unallocated grains read
//! as zeros (or as the parent's bytes for a child disk), zeroed grains as
//! zeros, stored grains with one `pread` per run of contiguous grains, and
//! compressed grains inflated straight into the caller's buffer (a small
//! cache keeps decoded grains for partial reads).
//!
//! Extent files named by a descriptor are resolved inside the descriptor's
//! folder (a name leaving it is refused) and opened through
//! [`ContainerFile`], so the evidence roots' confinement applies. A child
//! disk's parent is read only when given as evidence.

use super::ContainerFile;
use crate::{Evidence, EvidenceError, EvidenceInfo, Format, StoredHashes};
use flate2::{Decompress, FlushDecompress, Status};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};

const SECTOR: u64 = 512;
/// `GD_AT_END`: the real header is in the footer.
const GD_AT_END: u64 = u64::MAX;
/// Header flags.
const FLAG_NL_TEST: u32 = 1;
const FLAG_ZERO_GRAIN: u32 = 1 << 2;
const FLAG_COMPRESSED: u32 = 1 << 16;
const FLAG_MARKERS: u32 = 1 << 17;
/// `compressAlgorithm` for deflate (zlib streams).
const COMPRESS_DEFLATE: u16 = 1;
/// Marker types (stream-optimized metadata markers).
const MARKER_EOS: u32 = 0;
const MARKER_FOOTER: u32 = 3;
/// Largest grain accepted (qemu's limit: 1 GiB).
const MAX_GRAIN_SECTORS: u64 = 0x20_0000;
/// Largest grain accepted in a compressed extent (decoded into memory).
const MAX_COMPRESSED_GRAIN: u64 = 16 << 20;
/// Most grain-directory entries (qemu's limit).
const MAX_GD_ENTRIES: u64 = 32 << 20;
/// Most bytes read of a descriptor (separate or embedded).
const MAX_DESCRIPTOR: u64 = 1 << 20;
/// Most bytes of the descriptor kept in the metadata.
const META_DESCRIPTOR: usize = 64 << 10;
/// Longest chain of child disks.
const MAX_PARENT_DEPTH: usize = 32;
/// Bytes read at once when loading grain tables.
const TABLE_READ: u64 = 4 << 20;
/// Total bytes of decoded grains kept for partial reads.
const CACHE_BYTES: u64 = 8 << 20;
/// Scratch buffers larger than this are freed after each read.
const MAX_RETAINED_SCRATCH: usize = 8 << 20;
/// Extents listed in `vmdk.extents`.
const META_EXTENTS: usize = 8;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Whether `head` (the first bytes of a file) is a VMDK: a sparse extent's
/// `KDMV` magic, or a text descriptor starting with `# Disk DescriptorFile`
/// (any case, after an optional UTF-8 byte-order mark and white space).
pub fn probe(head: &[u8]) -> bool {
    if head.starts_with(b"KDMV") {
        return true;
    }
    let mut h = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    while let [c, rest @ ..] = h {
        if c.is_ascii_whitespace() {
            h = rest;
        } else {
            break;
        }
    }
    const SIG: &[u8] = b"# Disk DescriptorFile";
    h.len() >= SIG.len() && h[..SIG.len()].eq_ignore_ascii_case(SIG)
}

// ---------------------------------------------------------------------------
// Sparse extent header

/// A `SparseExtentHeader` (little-endian, 512 bytes with its padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    version: u32,
    flags: u32,
    /// Sectors.
    capacity: u64,
    /// Sectors per grain.
    grain: u64,
    descriptor_offset: u64,
    descriptor_size: u64,
    gtes_per_gt: u32,
    rgd_offset: u64,
    gd_offset: u64,
    overhead: u64,
    unclean: bool,
    newlines: [u8; 4],
    compress: u16,
}

impl Header {
    /// Parses the 512-byte header (its magic checked by the caller).
    fn parse(b: &[u8]) -> Self {
        Self {
            version: le32(b, 4),
            flags: le32(b, 8),
            capacity: le64(b, 12),
            grain: le64(b, 20),
            descriptor_offset: le64(b, 28),
            descriptor_size: le64(b, 36),
            gtes_per_gt: le32(b, 44),
            rgd_offset: le64(b, 48),
            gd_offset: le64(b, 56),
            overhead: le64(b, 64),
            unclean: b[72] != 0,
            newlines: [b[73], b[74], b[75], b[76]],
            compress: le16(b, 77),
        }
    }
}

/// Where a grain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    /// GTE 0, or no grain table: zeros, or the parent's bytes.
    Unallocated,
    /// GTE 1 with the zeroed-grain flag.
    Zeroed,
    /// Sector of the grain (or of its marker) in the extent file.
    At(u64),
}

/// A hosted sparse extent: its tables, loaded at open.
#[derive(Debug)]
struct Sparse {
    /// Index into the reader's files.
    file: usize,
    header: Header,
    /// Bytes per grain.
    grain: u64,
    gtes: u64,
    /// Grain-table slot of each grain-directory entry (`u32::MAX`: none).
    gd: Vec<u32>,
    /// File offset of each slot's grain table (for error messages).
    gt_offsets: Vec<u64>,
    /// Every loaded grain table, `gtes` entries per slot.
    gts: Vec<u32>,
    compressed: bool,
    markers: bool,
    zero_grain: bool,
    /// The descriptor embedded in the extent, if any.
    embedded: Option<String>,
}

impl Sparse {
    fn lookup(&self, grain: u64) -> Grain {
        let gd_index = grain / self.gtes;
        let Some(&slot) = usize::try_from(gd_index).ok().and_then(|i| self.gd.get(i)) else {
            return Grain::Unallocated;
        };
        if slot == u32::MAX {
            return Grain::Unallocated;
        }
        let e = self.gts[slot as usize * self.gtes as usize + (grain % self.gtes) as usize];
        match e {
            0 => Grain::Unallocated,
            1 if self.zero_grain => Grain::Zeroed,
            s => Grain::At(u64::from(s)),
        }
    }

    /// File offset of the grain-table entry of `grain` (for errors).
    fn gte_offset(&self, grain: u64) -> u64 {
        let slot = self.gd[(grain / self.gtes) as usize] as usize;
        self.gt_offsets[slot] + (grain % self.gtes) * 4
    }
}

/// Reads and checks a sparse extent's header (from the footer when the
/// grain directory is at the end), its embedded descriptor, grain directory
/// and grain tables.
fn open_sparse(f: &ContainerFile, file: usize) -> Result<Sparse, EvidenceError> {
    let mut b = [0u8; 512];
    f.read_exact_at(0, &mut b, "sparse extent header")?;
    if &b[..4] != b"KDMV" {
        return Err(f.corrupt(
            0,
            "sparse extent header: no KDMV magic (not a hosted sparse VMDK extent)",
        ));
    }
    let first = Header::parse(&b);
    let mut h = first;
    if first.gd_offset == GD_AT_END {
        if f.len() < 4 * SECTOR {
            return Err(EvidenceError::Truncated {
                path: f.path().to_path_buf(),
                offset: f.len(),
                what: "stream-optimized extent: the header says the grain directory is at the end, but the file is too short to hold a footer".into(),
            });
        }
        let at = f.len() - 3 * SECTOR;
        let mut foot = [0u8; 1536];
        f.read_exact_at(at, &mut foot, "stream-optimized footer")?;
        if le32(&foot, 8) != 0 || le32(&foot, 12) != MARKER_FOOTER {
            return Err(f.corrupt(
                at,
                format!(
                    "stream-optimized footer: expected a footer marker (size 0, type {MARKER_FOOTER}) 1536 bytes before the end, found size {} type {}",
                    le32(&foot, 8),
                    le32(&foot, 12)
                ),
            ));
        }
        if &foot[512..516] != b"KDMV" {
            return Err(f.corrupt(
                at + 512,
                "stream-optimized footer: the header copy has no KDMV magic",
            ));
        }
        if le64(&foot, 1024) != 0 || le32(&foot, 1032) != 0 || le32(&foot, 1036) != MARKER_EOS {
            return Err(f.corrupt(
                at + 1024,
                "stream-optimized footer: no end-of-stream marker in the last sector",
            ));
        }
        h = Header::parse(&foot[512..]);
        if h.gd_offset == GD_AT_END {
            return Err(f.corrupt(
                at + 512 + 56,
                "stream-optimized footer: the footer's header also puts the grain directory at the end",
            ));
        }
    }
    if !(1..=3).contains(&h.version) {
        return Err(f.corrupt(
            4,
            format!(
                "sparse extent header: version {} (trawl reads versions 1 to 3)",
                h.version
            ),
        ));
    }
    if h.flags & FLAG_NL_TEST != 0 && h.newlines != *b"\n \r\n" {
        return Err(f.corrupt(
            73,
            format!(
                "sparse extent header: the newline-detection bytes are {:02x?} instead of 0a 20 0d 0a (the file was probably transferred in text mode and its data altered)",
                h.newlines
            ),
        ));
    }
    if h.grain == 0 || h.grain > MAX_GRAIN_SECTORS {
        return Err(f.corrupt(
            20,
            format!(
                "sparse extent header: grain size of {} sectors (1 to {MAX_GRAIN_SECTORS} accepted)",
                h.grain
            ),
        ));
    }
    if h.gtes_per_gt == 0 || h.gtes_per_gt > 512 {
        return Err(f.corrupt(
            44,
            format!(
                "sparse extent header: {} entries per grain table (1 to 512 accepted)",
                h.gtes_per_gt
            ),
        ));
    }
    let compressed = match h.compress {
        0 => false,
        COMPRESS_DEFLATE => true,
        c => {
            return Err(f.corrupt(
                77,
                format!("sparse extent header: unknown compression algorithm {c} (1 is deflate)"),
            ));
        }
    };
    let grain = h.grain * SECTOR;
    if compressed && grain > MAX_COMPRESSED_GRAIN {
        return Err(f.corrupt(
            20,
            format!(
                "sparse extent header: compressed grains of {grain} bytes (at most {MAX_COMPRESSED_GRAIN} accepted)"
            ),
        ));
    }
    if h.capacity.checked_mul(SECTOR).is_none() {
        return Err(f.corrupt(
            12,
            format!(
                "sparse extent header: capacity of {} sectors overflows",
                h.capacity
            ),
        ));
    }
    let gtes = u64::from(h.gtes_per_gt);
    let per_gd = gtes * h.grain;
    let gd_entries = h.capacity.div_ceil(per_gd);
    if gd_entries > MAX_GD_ENTRIES {
        return Err(f.corrupt(
            12,
            format!(
                "sparse extent header: capacity of {} sectors needs {gd_entries} grain-directory entries (at most {MAX_GD_ENTRIES})",
                h.capacity
            ),
        ));
    }
    let gd_off = h.gd_offset.checked_mul(SECTOR);
    let gd_bytes = gd_entries * 4;
    let gd_off = match gd_off {
        Some(o) if o.checked_add(gd_bytes).is_some_and(|e| e <= f.len()) => o,
        _ => {
            return Err(EvidenceError::Truncated {
                path: f.path().to_path_buf(),
                offset: h.gd_offset.saturating_mul(SECTOR),
                what: format!(
                    "grain directory: {gd_entries} entries at sector {} pass the end of the file ({} bytes)",
                    h.gd_offset,
                    f.len()
                ),
            });
        }
    };
    // The embedded descriptor (sparse extents of monolithic disks).
    let embedded = if first.descriptor_offset != 0 && first.descriptor_size != 0 {
        let off = first.descriptor_offset.checked_mul(SECTOR);
        let len = first
            .descriptor_size
            .saturating_mul(SECTOR)
            .min(MAX_DESCRIPTOR);
        match off {
            Some(o) if o.checked_add(len).is_some_and(|e| e <= f.len()) => {
                let mut v = vec![0u8; len as usize];
                f.read_exact_at(o, &mut v, "embedded descriptor")?;
                let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
                v.truncate(end);
                Some(String::from_utf8_lossy(&v).into_owned())
            }
            _ => {
                return Err(EvidenceError::Truncated {
                    path: f.path().to_path_buf(),
                    offset: first.descriptor_offset.saturating_mul(SECTOR),
                    what: format!(
                        "embedded descriptor: {} sectors at sector {} pass the end of the file ({} bytes)",
                        first.descriptor_size,
                        first.descriptor_offset,
                        f.len()
                    ),
                });
            }
        }
    } else {
        None
    };

    let mut raw = vec![0u8; gd_bytes as usize];
    f.read_exact_at(gd_off, &mut raw, "grain directory")?;
    let dir: Vec<u32> = raw.chunks_exact(4).map(|c| le32(c, 0)).collect();
    drop(raw);
    let gt_bytes = gtes * 4;
    // Distinct grain tables, checked against the file and each other.
    let mut wanted: Vec<u32> = dir.iter().copied().filter(|&e| e != 0).collect();
    wanted.sort_unstable();
    wanted.dedup();
    for (i, &e) in dir.iter().enumerate() {
        if e != 0 && u64::from(e) * SECTOR + gt_bytes > f.len() {
            return Err(f.corrupt(
                gd_off + i as u64 * 4,
                format!(
                    "grain directory entry {i}: grain table at sector {e} passes the end of the file ({} bytes)",
                    f.len()
                ),
            ));
        }
    }
    for w in wanted.windows(2) {
        if u64::from(w[0]) * SECTOR + gt_bytes > u64::from(w[1]) * SECTOR {
            let i = dir.iter().position(|&e| e == w[1]).unwrap_or(0);
            return Err(f.corrupt(
                gd_off + i as u64 * 4,
                format!(
                    "grain directory entry {i}: grain table at sector {} overlaps the one at sector {}",
                    w[1], w[0]
                ),
            ));
        }
    }
    let mut slot_of: HashMap<u32, u32> = HashMap::with_capacity(wanted.len());
    let mut gts: Vec<u32> = Vec::with_capacity(wanted.len() * gtes as usize);
    let mut gt_offsets = Vec::with_capacity(wanted.len());
    let mut buf = Vec::new();
    let mut i = 0;
    while i < wanted.len() {
        // A run of back-to-back tables, read at once.
        let start = u64::from(wanted[i]) * SECTOR;
        let mut j = i + 1;
        while j < wanted.len()
            && u64::from(wanted[j]) * SECTOR == start + (j - i) as u64 * gt_bytes
            && (j - i + 1) as u64 * gt_bytes <= TABLE_READ
        {
            j += 1;
        }
        let len = ((j - i) as u64 * gt_bytes) as usize;
        buf.resize(len, 0);
        f.read_exact_at(start, &mut buf, "grain table")?;
        for (k, &s) in wanted[i..j].iter().enumerate() {
            slot_of.insert(s, gt_offsets.len() as u32);
            gt_offsets.push(u64::from(s) * SECTOR);
            let t = &buf[k * gt_bytes as usize..(k + 1) * gt_bytes as usize];
            gts.extend(t.chunks_exact(4).map(|c| le32(c, 0)));
        }
        i = j;
    }
    let gd = dir
        .iter()
        .map(|&e| if e == 0 { u32::MAX } else { slot_of[&e] })
        .collect();
    Ok(Sparse {
        file,
        header: h,
        grain,
        gtes,
        gd,
        gt_offsets,
        gts,
        compressed,
        markers: h.flags & FLAG_MARKERS != 0,
        zero_grain: h.flags & FLAG_ZERO_GRAIN != 0,
        embedded,
    })
}

// ---------------------------------------------------------------------------
// Descriptor

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Rw,
    RdOnly,
    NoAccess,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Rw => "RW",
            Mode::RdOnly => "RDONLY",
            Mode::NoAccess => "NOACCESS",
        }
    }
}

/// One extent line: `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExtentLine {
    access: Mode,
    sectors: u64,
    kind: String,
    file: Option<String>,
    offset: u64,
    /// Byte offset of the line in the descriptor.
    at: u64,
}

impl fmt::Display for ExtentLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.access.name(), self.sectors, self.kind)?;
        if let Some(n) = &self.file {
            write!(f, " \"{n}\"")?;
        }
        if self.offset != 0 {
            write!(f, " {}", self.offset)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Descriptor {
    text: String,
    /// `key=value` pairs (quotes removed), keys as written.
    values: BTreeMap<String, String>,
    extents: Vec<ExtentLine>,
}

impl Descriptor {
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Parses descriptor text; a malformed extent line is an error (offset
    /// of the line, what is wrong).
    fn parse(text: &str) -> Result<Self, (u64, String)> {
        let mut d = Descriptor {
            text: text.to_string(),
            ..Default::default()
        };
        let mut at = 0u64;
        for raw in text.split('\n') {
            let line_at = at;
            at += raw.len() as u64 + 1;
            let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let first = line.split_whitespace().next().unwrap_or("");
            let access = match first.to_ascii_uppercase().as_str() {
                "RW" => Some(Mode::Rw),
                "RDONLY" => Some(Mode::RdOnly),
                "NOACCESS" => Some(Mode::NoAccess),
                _ => None,
            };
            if let Some(access) = access {
                let e = parse_extent(line, access, line_at).map_err(|w| (line_at, w))?;
                d.extents.push(e);
            } else if let Some((k, v)) = line.split_once('=') {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                d.values.insert(k.trim().to_string(), v.to_string());
            }
        }
        Ok(d)
    }
}

fn parse_extent(line: &str, access: Mode, at: u64) -> Result<ExtentLine, String> {
    let bad = |why: &str| format!("descriptor extent line {line:?}: {why}");
    let mut rest = line;
    let mut token = || {
        let r = rest.trim_start();
        let end = r.find(char::is_whitespace).unwrap_or(r.len());
        let (t, tail) = r.split_at(end);
        rest = tail;
        t
    };
    let _access = token();
    let sectors = token()
        .parse::<u64>()
        .map_err(|_| bad("the sector count is not a number"))?;
    let kind = token().to_ascii_uppercase();
    if kind.is_empty() {
        return Err(bad("no extent type"));
    }
    let r = rest.trim();
    let (file, tail) = if let Some(q) = r.strip_prefix('"') {
        let end = q
            .find('"')
            .ok_or_else(|| bad("the file name's closing quote is missing"))?;
        (Some(q[..end].to_string()), q[end + 1..].trim())
    } else if r.is_empty() {
        (None, "")
    } else {
        return Err(bad("the file name is not quoted"));
    };
    let offset = if tail.is_empty() {
        0
    } else {
        tail.split_whitespace()
            .next()
            .unwrap_or("")
            .parse::<u64>()
            .map_err(|_| bad("the offset after the file name is not a number"))?
    };
    if file.is_none() && kind != "ZERO" {
        return Err(bad("no file name"));
    }
    Ok(ExtentLine {
        access,
        sectors,
        kind,
        file,
        offset,
        at,
    })
}

/// Resolves an extent file name inside `dir`; `None` when it leaves it
/// (absolute, `..`, a drive or root).
fn confined_join(dir: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('\\') && name.split('\\').any(|c| c == "..") {
        return None;
    }
    let p = Path::new(name);
    if !p
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    Some(dir.join(p))
}

/// The extent files a VMDK descriptor file names (resolved in its folder;
/// names that leave it are left out, and refused when the disk is opened).
/// Empty for anything but a readable descriptor file. Callers that confine
/// reads (the embedded scan's evidence roots) allow these beside the
/// descriptor.
pub fn extent_files(descriptor: &Path) -> Vec<PathBuf> {
    let Ok(f) = ContainerFile::open(descriptor) else {
        return Vec::new();
    };
    if f.len() > MAX_DESCRIPTOR {
        return Vec::new();
    }
    let mut text = vec![0u8; f.len() as usize];
    if f.read_exact_at(0, &mut text, "descriptor").is_err()
        || !probe(&text)
        || text.starts_with(b"KDMV")
    {
        return Vec::new();
    }
    let Ok(d) = Descriptor::parse(&String::from_utf8_lossy(&text)) else {
        return Vec::new();
    };
    let dir = descriptor.parent().unwrap_or(Path::new("."));
    d.extents
        .iter()
        .filter_map(|e| e.file.as_deref())
        .filter_map(|n| confined_join(dir, n))
        .collect()
}

/// The last component of a file name written with `/` or `\`.
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

// ---------------------------------------------------------------------------
// The reader

#[derive(Debug)]
enum Kind {
    Flat { file: usize, base: u64 },
    Zero,
    NoAccess,
    Sparse(Box<Sparse>),
}

#[derive(Debug)]
struct Extent {
    /// Virtual offset and length in bytes.
    start: u64,
    len: u64,
    kind: Kind,
    /// How errors name it: `extent 2 (RW 4192256 SPARSE "x-s002.vmdk")`.
    label: String,
}

/// Per-thread buffers reused across reads.
#[derive(Default)]
struct Scratch {
    io: Vec<u8>,
    sink: Vec<u8>,
    grain: Vec<u8>,
    inflater: Option<Decompress>,
}

impl Scratch {
    fn trim(&mut self) {
        for v in [&mut self.io, &mut self.sink, &mut self.grain] {
            if v.capacity() > MAX_RETAINED_SCRATCH {
                *v = Vec::new();
            }
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Decoded compressed grains, for reads of part of a grain.
#[derive(Debug)]
struct GrainCache {
    slots: Vec<(usize, u64, Vec<u8>, u64)>,
    cap: usize,
    tick: u64,
}

impl GrainCache {
    fn new(grain: u64) -> Self {
        Self {
            slots: Vec::new(),
            cap: (CACHE_BYTES / grain.max(1)).clamp(2, 64) as usize,
            tick: 0,
        }
    }

    fn get(&mut self, ext: usize, grain: u64) -> Option<&[u8]> {
        self.tick += 1;
        let t = self.tick;
        let s = self.slots.iter_mut().find(|s| s.0 == ext && s.1 == grain)?;
        s.3 = t;
        Some(&s.2)
    }

    /// Keeps `data`; returns a buffer for reuse.
    fn insert(&mut self, ext: usize, grain: u64, data: Vec<u8>) -> Vec<u8> {
        self.tick += 1;
        let t = self.tick;
        if self.slots.iter().any(|s| s.0 == ext && s.1 == grain) {
            return data;
        }
        if self.slots.len() < self.cap {
            self.slots.push((ext, grain, data, t));
            return Vec::new();
        }
        let victim = self
            .slots
            .iter_mut()
            .min_by_key(|s| s.3)
            .expect("cache capacity is at least 2");
        std::mem::replace(victim, (ext, grain, data, t)).2
    }
}

/// A VMware virtual disk: a monolithic sparse or stream-optimized file, or
/// a descriptor and its extents (and, for a child disk, its parent).
pub struct VmdkEvidence {
    info: EvidenceInfo,
    files: Vec<ContainerFile>,
    extents: Vec<Extent>,
    parent: Option<Box<VmdkEvidence>>,
    cache: Mutex<GrainCache>,
}

impl fmt::Debug for VmdkEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmdkEvidence")
            .field("info", &self.info)
            .field("extents", &self.extents.len())
            .field("parent", &self.parent.as_ref().map(|p| p.info.path.clone()))
            .finish_non_exhaustive()
    }
}

impl VmdkEvidence {
    /// Opens a VMDK: `paths[0]` is a descriptor file or a monolithic sparse
    /// / stream-optimized file; the other paths are the files given with it
    /// as evidence (extents, parent disks), in any order. Extents named by a
    /// descriptor are also found next to it; a child disk's parent must be
    /// given.
    ///
    /// # Errors
    /// Unreadable files, structural corruption (naming the file, structure
    /// and offset), a missing extent or parent
    /// ([`EvidenceError::MissingSegment`]), an extent name leaving the
    /// descriptor's folder ([`EvidenceError::OutsideRoots`]), extent types
    /// trawl does not read ([`EvidenceError::Unsupported`]).
    pub fn open(paths: &[PathBuf]) -> Result<Self, EvidenceError> {
        Self::open_depth(paths, 0)
    }

    fn open_depth(paths: &[PathBuf], depth: usize) -> Result<Self, EvidenceError> {
        let Some(p0) = paths.first() else {
            return Err(EvidenceError::NotFound {
                path: PathBuf::new(),
            });
        };
        let f0 = ContainerFile::open(p0)?;
        let mut head = vec![0u8; f0.len().min(512) as usize];
        f0.read_exact_at(0, &mut head, "file signature")?;
        let mut files = vec![f0];
        let mut extents = Vec::new();
        let mut metadata = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut used = vec![false; paths.len()];
        used[0] = true;
        let desc;
        if head.starts_with(b"KDMV") {
            let sp = open_sparse(&files[0], 0)?;
            desc = match &sp.embedded {
                Some(t) => Descriptor::parse(t).unwrap_or_else(|(_, w)| {
                    warnings.push(format!("embedded descriptor: {w}"));
                    Descriptor {
                        text: t.clone(),
                        ..Default::default()
                    }
                }),
                None => Descriptor::default(),
            };
            sparse_metadata(&sp, &mut metadata);
            let len = sp.header.capacity * SECTOR;
            let line = desc.extents.first().map_or_else(
                || {
                    format!(
                        "RW {} SPARSE \"{}\"",
                        sp.header.capacity,
                        p0.file_name().unwrap_or_default().to_string_lossy()
                    )
                },
                ToString::to_string,
            );
            if desc.extents.len() > 1 {
                warnings.push(format!(
                    "the embedded descriptor lists {} extents; a sparse file is read as its one extent",
                    desc.extents.len()
                ));
            }
            metadata.insert("vmdk.extents".into(), format!("1 extent: {line}"));
            extents.push(Extent {
                start: 0,
                len,
                kind: Kind::Sparse(Box::new(sp)),
                label: format!("extent 1 ({line})"),
            });
        } else if head.starts_with(b"COWD") {
            return Err(EvidenceError::Unsupported {
                path: p0.clone(),
                format: "VMDK (ESX vmfsSparse, COWD)",
                hint: "convert with `qemu-img convert -O raw IMAGE out.raw`",
            });
        } else {
            let f0 = &files[0];
            if f0.len() > MAX_DESCRIPTOR {
                return Err(EvidenceError::UnknownFormat {
                    path: p0.clone(),
                    reason: format!(
                        "not a VMDK: no KDMV magic, and {} bytes is too long for a descriptor file (at most {MAX_DESCRIPTOR})",
                        f0.len()
                    ),
                });
            }
            let mut v = vec![0u8; f0.len() as usize];
            f0.read_exact_at(0, &mut v, "descriptor")?;
            let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
            v.truncate(end);
            let text = String::from_utf8_lossy(&v).into_owned();
            desc = Descriptor::parse(&text).map_err(|(at, w)| f0.corrupt(at, w))?;
            if desc.extents.is_empty() {
                return Err(if probe(&head) {
                    f0.corrupt(0, "descriptor lists no extents")
                } else {
                    EvidenceError::UnknownFormat {
                        path: p0.clone(),
                        reason: "not a VMDK: no KDMV magic and no descriptor extent lines".into(),
                    }
                });
            }
            let dir = p0.parent().unwrap_or(Path::new(".")).to_path_buf();
            let mut start = 0u64;
            let n = desc.extents.len();
            for (i, e) in desc.extents.iter().enumerate() {
                let label = format!("extent {} ({e})", i + 1);
                let len = e.sectors.checked_mul(SECTOR).and_then(|l| {
                    start.checked_add(l)?;
                    Some(l)
                });
                let Some(len) = len else {
                    return Err(files[0].corrupt(
                        e.at,
                        format!("{label}: the extents' sizes add up past 2^64 bytes"),
                    ));
                };
                let kind = match (e.access, e.kind.as_str()) {
                    (Mode::NoAccess, _) => Kind::NoAccess,
                    (_, "ZERO") => Kind::Zero,
                    (_, "FLAT" | "VMFS" | "SPARSE") => {
                        let name = e.file.as_deref().unwrap_or("");
                        let fi = files.len();
                        let f = open_extent(paths, &mut used, p0, &dir, name, &label)?;
                        files.push(f);
                        if e.kind == "SPARSE" {
                            let sp = open_sparse(&files[fi], fi)?;
                            if sp.header.capacity != e.sectors {
                                warnings.push(format!(
                                    "{label}: the extent's header gives a capacity of {} sectors, the descriptor {}; the descriptor's size is used",
                                    sp.header.capacity, e.sectors
                                ));
                            }
                            if i == 0 {
                                sparse_metadata(&sp, &mut metadata);
                            }
                            Kind::Sparse(Box::new(sp))
                        } else {
                            Kind::Flat {
                                file: fi,
                                base: e.offset.checked_mul(SECTOR).ok_or_else(|| {
                                    files[0].corrupt(
                                        e.at,
                                        format!(
                                            "{label}: offset of {} sectors overflows",
                                            e.offset
                                        ),
                                    )
                                })?,
                            }
                        }
                    }
                    (_, "VMFSSPARSE") => {
                        return Err(EvidenceError::Unsupported {
                            path: p0.clone(),
                            format: "VMDK VMFSSPARSE (COWD) extent",
                            hint: "convert with `qemu-img convert -O raw IMAGE out.raw`",
                        });
                    }
                    (_, "SESPARSE") => {
                        return Err(EvidenceError::Unsupported {
                            path: p0.clone(),
                            format: "VMDK SESPARSE extent",
                            hint: "convert with `qemu-img convert -O raw IMAGE out.raw`",
                        });
                    }
                    (_, "VMFSRDM" | "VMFSRAW") => {
                        return Err(EvidenceError::Unsupported {
                            path: p0.clone(),
                            format: "VMDK raw device mapping extent",
                            hint: "image the mapped device itself",
                        });
                    }
                    (_, other) => {
                        return Err(files[0].corrupt(
                            e.at,
                            format!("{label}: unknown extent type {other:?} (FLAT, SPARSE, ZERO, VMFS read)"),
                        ));
                    }
                };
                extents.push(Extent {
                    start,
                    len,
                    kind,
                    label,
                });
                start += len;
            }
            let mut list: Vec<String> = desc
                .extents
                .iter()
                .take(META_EXTENTS)
                .map(ToString::to_string)
                .collect();
            if n > META_EXTENTS {
                list.push(format!("and {} more", n - META_EXTENTS));
            }
            metadata.insert(
                "vmdk.extents".into(),
                format!(
                    "{n} extent{}: {}",
                    if n == 1 { "" } else { "s" },
                    list.join("; ")
                ),
            );
        }
        let size = extents.last().map_or(0, |e| e.start + e.len);

        // Descriptor facts.
        let text = desc.text.trim();
        if !text.is_empty() {
            let mut cut = text.len().min(META_DESCRIPTOR);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            metadata.insert("vmdk.descriptor".into(), text[..cut].to_string());
        }
        let create_type = desc.get("createType").map(str::to_string).or_else(|| {
            match &extents.first().map(|e| &e.kind) {
                Some(Kind::Sparse(sp)) if sp.compressed => Some("streamOptimized".to_string()),
                Some(Kind::Sparse(_)) => Some("monolithicSparse".to_string()),
                _ => None,
            }
        });
        if let Some(c) = &create_type {
            metadata.insert("vmdk.create_type".into(), c.clone());
        }
        for (key, name) in [
            ("CID", "vmdk.cid"),
            ("parentCID", "vmdk.parent_cid"),
            ("ddb.adapterType", "vmdk.adapter_type"),
            ("ddb.virtualHWVersion", "vmdk.hw_version"),
            ("parentFileNameHint", "vmdk.parent_file_name_hint"),
        ] {
            if let Some(v) = desc.get(key) {
                metadata.insert(name.into(), v.to_string());
            }
        }

        // A child disk reads its parent where its grains are unallocated.
        let parent_cid = desc
            .get("parentCID")
            .filter(|v| !v.eq_ignore_ascii_case("ffffffff"));
        let parent = match parent_cid {
            None => None,
            Some(pcid) => Some(Box::new(open_parent(paths, &used, p0, &desc, pcid, depth)?)),
        };
        let mut segments: Vec<PathBuf> = files.iter().map(|f| f.path().to_path_buf()).collect();
        if let Some(p) = &parent {
            metadata.insert("vmdk.parent".into(), p.info.path.display().to_string());
            for s in &p.info.segments {
                if !segments.contains(s) {
                    segments.push(s.clone());
                }
            }
        }
        if !warnings.is_empty() {
            metadata.insert("vmdk.warnings".into(), warnings.join("; "));
        }
        let grain = extents
            .iter()
            .filter_map(|e| match &e.kind {
                Kind::Sparse(sp) if sp.compressed => Some(sp.grain),
                _ => None,
            })
            .max()
            .unwrap_or(SECTOR * 128);
        Ok(Self {
            info: EvidenceInfo {
                path: p0.clone(),
                segments,
                size,
                format: Format::Vmdk,
                stored: StoredHashes::default(),
                metadata,
                acquisition_errors: Vec::new(),
                bytes_per_sector: SECTOR as u32,
            },
            files,
            extents,
            parent,
            cache: Mutex::new(GrainCache::new(grain)),
        })
    }

    /// Reads `buf.len()` bytes at `offset`, all inside the virtual disk.
    fn read_inner(
        &self,
        offset: u64,
        buf: &mut [u8],
        s: &mut Scratch,
    ) -> Result<(), EvidenceError> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let ei = self.extents.partition_point(|e| e.start + e.len <= pos);
            let Some(e) = self.extents.get(ei) else {
                buf[done..].fill(0);
                return Ok(());
            };
            let within = pos - e.start;
            let n = ((buf.len() - done) as u64).min(e.len - within) as usize;
            self.read_extent(ei, within, &mut buf[done..done + n], s)?;
            done += n;
        }
        Ok(())
    }

    /// Reads from the parent (zeros past its end, or without one).
    fn read_parent(&self, pos: u64, dest: &mut [u8], s: &mut Scratch) -> Result<(), EvidenceError> {
        let Some(p) = &self.parent else {
            dest.fill(0);
            return Ok(());
        };
        let size = p.info.size;
        let n = if pos >= size {
            0
        } else {
            (size - pos).min(dest.len() as u64) as usize
        };
        if n > 0 {
            p.read_inner(pos, &mut dest[..n], s)?;
        }
        dest[n..].fill(0);
        Ok(())
    }

    fn read_extent(
        &self,
        ei: usize,
        within: u64,
        dest: &mut [u8],
        s: &mut Scratch,
    ) -> Result<(), EvidenceError> {
        let e = &self.extents[ei];
        match &e.kind {
            Kind::Zero => {
                dest.fill(0);
                Ok(())
            }
            Kind::NoAccess => Err(EvidenceError::Io {
                path: self.info.path.clone(),
                offset: e.start + within,
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is marked NOACCESS in the descriptor: its data cannot be read",
                        e.label
                    ),
                ),
            }),
            Kind::Flat { file, base } => {
                let f = &self.files[*file];
                let what = format!("{} data", e.label);
                let Some(at) = base.checked_add(within) else {
                    return Err(
                        f.corrupt(*base, format!("{what}: offset {base} + {within} overflows"))
                    );
                };
                f.read_exact_at(at, dest, &what)
            }
            Kind::Sparse(sp) => self.read_sparse(ei, sp, within, dest, s),
        }
    }

    fn read_sparse(
        &self,
        ei: usize,
        sp: &Sparse,
        within: u64,
        dest: &mut [u8],
        s: &mut Scratch,
    ) -> Result<(), EvidenceError> {
        let e = &self.extents[ei];
        let f = &self.files[sp.file];
        let gs = sp.grain;
        let mut d = 0usize;
        while d < dest.len() {
            let p = within + d as u64;
            let g = p / gs;
            let gw = p % gs;
            let glen = gs.min(e.len - g * gs);
            let n = ((dest.len() - d) as u64).min(glen - gw) as usize;
            match sp.lookup(g) {
                Grain::Unallocated | Grain::Zeroed => {
                    // Extend over the following grains of the same kind.
                    let kind = sp.lookup(g);
                    let mut m = n;
                    let mut k = g + 1;
                    while d + m < dest.len() && sp.lookup(k) == kind {
                        m += ((dest.len() - d - m) as u64).min(gs.min(e.len - k * gs)) as usize;
                        k += 1;
                    }
                    let out = &mut dest[d..d + m];
                    if kind == Grain::Zeroed || self.parent.is_none() {
                        out.fill(0);
                    } else {
                        self.read_parent(e.start + p, out, s)?;
                    }
                    d += m;
                }
                Grain::At(sector) if !sp.compressed => {
                    // Coalesce grains stored back to back.
                    let mut m = n;
                    let mut k = g + 1;
                    while d + m < dest.len()
                        && sp.lookup(k) == Grain::At(sector + (k - g) * sp.header.grain)
                    {
                        m += ((dest.len() - d - m) as u64).min(gs.min(e.len - k * gs)) as usize;
                        k += 1;
                    }
                    let off = sector * SECTOR + gw;
                    if off + m as u64 > f.len() {
                        // Name the first grain that leaves the file.
                        let mut bad = g;
                        while bad + 1 < k
                            && (sector + (bad + 1 - g) * sp.header.grain) * SECTOR < f.len()
                        {
                            bad += 1;
                        }
                        let bs = sector + (bad - g) * sp.header.grain;
                        return Err(f.corrupt(
                            sp.gte_offset(bad),
                            format!(
                                "grain table entry of grain {bad} of {}: the grain at sector {bs} passes the end of the file ({} bytes)",
                                e.label,
                                f.len()
                            ),
                        ));
                    }
                    f.read_exact_at(off, &mut dest[d..d + m], "grain")?;
                    d += m;
                }
                Grain::At(sector) => {
                    if gw == 0 && n as u64 == glen {
                        self.inflate_grain(ei, sp, g, sector, &mut dest[d..d + n], s)?;
                    } else {
                        let hit = self.cache.lock().get(ei, g).map(|data| {
                            dest[d..d + n].copy_from_slice(&data[gw as usize..gw as usize + n]);
                        });
                        if hit.is_none() {
                            let mut buf = std::mem::take(&mut s.grain);
                            buf.resize(glen as usize, 0);
                            let r = self.inflate_grain(ei, sp, g, sector, &mut buf, s);
                            if let Err(err) = r {
                                s.grain = buf;
                                return Err(err);
                            }
                            dest[d..d + n].copy_from_slice(&buf[gw as usize..gw as usize + n]);
                            s.grain = self.cache.lock().insert(ei, g, buf);
                        }
                    }
                    d += n;
                }
            }
        }
        Ok(())
    }

    /// Inflates compressed grain `g` (stored at `sector`) into `dest`, the
    /// grain's bytes inside the extent.
    fn inflate_grain(
        &self,
        ei: usize,
        sp: &Sparse,
        g: u64,
        sector: u64,
        dest: &mut [u8],
        s: &mut Scratch,
    ) -> Result<(), EvidenceError> {
        let e = &self.extents[ei];
        let f = &self.files[sp.file];
        let off = sector * SECTOR;
        let gte = sp.gte_offset(g);
        if off >= f.len() {
            return Err(f.corrupt(
                gte,
                format!(
                    "grain table entry of grain {g} of {}: the grain at sector {sector} is past the end of the file ({} bytes)",
                    e.label,
                    f.len()
                ),
            ));
        }
        let avail = f.len() - off;
        let max_stored = 2 * sp.grain + SECTOR;
        let (data_off, data_len) = if sp.markers {
            let mut m = [0u8; 12];
            f.read_exact_at(off, &mut m, "grain marker")?;
            let lba = le64(&m, 0);
            let size = u64::from(le32(&m, 8));
            let want = g * sp.header.grain;
            if lba != want {
                return Err(f.corrupt(
                    off,
                    format!(
                        "grain marker of grain {g} of {}: records sector {lba}, expected {want} (the grain table entry at offset {gte} is wrong or the marker damaged)",
                        e.label
                    ),
                ));
            }
            if size == 0 || size > max_stored {
                return Err(f.corrupt(
                    off + 8,
                    format!(
                        "grain marker of grain {g} of {}: compressed size of {size} bytes (1 to {max_stored} accepted)",
                        e.label
                    ),
                ));
            }
            if 12 + size > avail {
                return Err(EvidenceError::Truncated {
                    path: f.path().to_path_buf(),
                    offset: off,
                    what: format!(
                        "compressed grain {g} of {}: {size} bytes after its marker pass the end of the file ({} bytes)",
                        e.label,
                        f.len()
                    ),
                });
            }
            (off + 12, size)
        } else {
            (off, avail.min(max_stored))
        };
        let mut io = std::mem::take(&mut s.io);
        io.resize(data_len as usize, 0);
        let r = f
            .read_exact_at(data_off, &mut io, "compressed grain")
            .and_then(|()| {
                let dec = s.inflater.get_or_insert_with(|| Decompress::new(true));
                let total =
                    inflate(dec, &mut s.sink, &io, dest, sp.grain as usize).map_err(|w| {
                        f.corrupt(
                            data_off,
                            format!("compressed grain {g} of {}: {w}", e.label),
                        )
                    })?;
                if total < dest.len() {
                    return Err(f.corrupt(
                        data_off,
                        format!(
                            "compressed grain {g} of {}: inflates to {total} bytes, expected {}",
                            e.label,
                            dest.len()
                        ),
                    ));
                }
                Ok(())
            });
        s.io = io;
        r
    }
}

/// Inflates the zlib stream `input` into `dest`; returns the inflated size,
/// which never exceeds `max_total` (bytes past `dest.len()` are dropped).
fn inflate(
    dec: &mut Decompress,
    sink: &mut Vec<u8>,
    input: &[u8],
    dest: &mut [u8],
    max_total: usize,
) -> Result<usize, String> {
    dec.reset(true);
    let direct = dest.len() >= max_total;
    let target: &mut [u8] = if direct {
        &mut dest[..max_total]
    } else {
        sink.resize(max_total, 0);
        &mut sink[..max_total]
    };
    let status = dec
        .decompress(input, target, FlushDecompress::Finish)
        .map_err(|e| format!("zlib stream is corrupt: {e}"))?;
    let total = usize::try_from(dec.total_out()).unwrap_or(usize::MAX);
    if status != Status::StreamEnd {
        return Err(if total < max_total {
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

fn sparse_metadata(sp: &Sparse, m: &mut BTreeMap<String, String>) {
    m.insert("vmdk.version".into(), sp.header.version.to_string());
    m.insert("vmdk.grain_size".into(), sp.grain.to_string());
    m.insert(
        "vmdk.compression".into(),
        if sp.compressed { "deflate" } else { "none" }.into(),
    );
    if sp.header.flags & FLAG_COMPRESSED != 0 || sp.markers {
        m.insert("vmdk.stream_optimized".into(), "true".into());
    }
    if sp.zero_grain {
        m.insert("vmdk.zeroed_grains".into(), "true".into());
    }
    if sp.header.unclean {
        m.insert("vmdk.unclean_shutdown".into(), "true".into());
    }
}

/// Opens extent `name` of the descriptor `desc`: next to the descriptor,
/// else a given file of that name.
fn open_extent(
    paths: &[PathBuf],
    used: &mut [bool],
    desc: &Path,
    dir: &Path,
    name: &str,
    label: &str,
) -> Result<ContainerFile, EvidenceError> {
    let Some(cand) = confined_join(dir, name) else {
        return Err(EvidenceError::OutsideRoots {
            path: desc.to_path_buf(),
            real: dir.join(name),
            why: format!(
                "{label} names a file outside the descriptor's folder (an absolute path or one with ..); extent files must lie beside the descriptor"
            ),
        });
    };
    let given = paths
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, p)| **p == cand)
        .or_else(|| {
            paths.iter().enumerate().skip(1).find(|(i, p)| {
                !used[*i]
                    && p.file_name()
                        .is_some_and(|f| f.to_string_lossy() == base_name(name))
            })
        })
        .map(|(i, p)| (i, p.clone()));
    match ContainerFile::open(&cand) {
        Ok(f) => {
            if let Some((i, _)) = given.filter(|(_, p)| *p == cand) {
                used[i] = true;
            }
            Ok(f)
        }
        Err(EvidenceError::NotFound { .. }) => {
            let Some((i, p)) = given else {
                return Err(EvidenceError::MissingSegment {
                    path: desc.to_path_buf(),
                    expected: cand.display().to_string(),
                    what: format!("{label} of the descriptor is missing"),
                });
            };
            used[i] = true;
            ContainerFile::open(&p)
        }
        Err(e) => Err(e),
    }
}

/// Opens the parent of the child disk `child` from the given paths.
fn open_parent(
    paths: &[PathBuf],
    used: &[bool],
    child: &Path,
    desc: &Descriptor,
    pcid: &str,
    depth: usize,
) -> Result<VmdkEvidence, EvidenceError> {
    let Some(hint) = desc.get("parentFileNameHint") else {
        return Err(EvidenceError::Corrupt {
            path: child.to_path_buf(),
            offset: 0,
            what: format!(
                "child disk (parentCID {pcid}) without a parentFileNameHint naming its parent"
            ),
        });
    };
    if depth >= MAX_PARENT_DEPTH {
        return Err(EvidenceError::Corrupt {
            path: child.to_path_buf(),
            offset: 0,
            what: format!("chain of parent disks deeper than {MAX_PARENT_DEPTH}"),
        });
    }
    let want = base_name(hint);
    let dir = child.parent().unwrap_or(Path::new("."));
    let exact = confined_join(dir, hint);
    let pick = paths
        .iter()
        .enumerate()
        .filter(|(i, _)| !used[*i])
        .find(|(_, p)| Some(*p) == exact.as_ref())
        .or_else(|| {
            paths.iter().enumerate().find(|(i, p)| {
                !used[*i] && p.file_name().is_some_and(|f| f.to_string_lossy() == want)
            })
        });
    let Some((pi, pp)) = pick else {
        return Err(EvidenceError::MissingSegment {
            path: child.to_path_buf(),
            expected: hint.to_string(),
            what: format!(
                "parent disk {hint:?} of child disk {} (parentCID {pcid}) is not given as evidence; give it with the child",
                child.display()
            ),
        });
    };
    let mut rest = vec![pp.clone()];
    rest.extend(
        paths
            .iter()
            .enumerate()
            .filter(|(i, _)| !used[*i] && *i != pi)
            .map(|(_, p)| p.clone()),
    );
    let parent = VmdkEvidence::open_depth(&rest, depth + 1)?;
    let pc = parent.info.metadata.get("vmdk.cid").map(String::as_str);
    let same = match (
        pc.map(|c| u32::from_str_radix(c, 16)),
        u32::from_str_radix(pcid, 16),
    ) {
        (Some(Ok(a)), Ok(b)) => a == b,
        _ => pc.is_some_and(|c| c.eq_ignore_ascii_case(pcid)),
    };
    if !same {
        return Err(EvidenceError::Corrupt {
            path: child.to_path_buf(),
            offset: 0,
            what: format!(
                "child disk records parentCID {pcid}, but its parent {} has CID {} (the parent changed after the child was made, or it is another disk)",
                pp.display(),
                pc.unwrap_or("(none)")
            ),
        });
    }
    Ok(parent)
}

impl Evidence for VmdkEvidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        let size = self.info.size;
        let want = super::readable(size, offset, buf.len());
        if want == 0 {
            return Ok(0);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header_bytes(capacity: u64, grain: u64, gd: u64, flags: u32, compress: u16) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..4].copy_from_slice(b"KDMV");
        h[4..8].copy_from_slice(&1u32.to_le_bytes());
        h[8..12].copy_from_slice(&flags.to_le_bytes());
        h[12..20].copy_from_slice(&capacity.to_le_bytes());
        h[20..28].copy_from_slice(&grain.to_le_bytes());
        h[44..48].copy_from_slice(&512u32.to_le_bytes());
        h[56..64].copy_from_slice(&gd.to_le_bytes());
        h[73..77].copy_from_slice(b"\n \r\n");
        h[77..79].copy_from_slice(&compress.to_le_bytes());
        h
    }

    fn write(dir: &Path, name: &str, b: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    }

    #[test]
    fn header_fields_parse_at_their_offsets() {
        let mut b = header_bytes(1000, 128, 7, 0x3_0003, 1);
        b[28..36].copy_from_slice(&1u64.to_le_bytes());
        b[36..44].copy_from_slice(&20u64.to_le_bytes());
        b[48..56].copy_from_slice(&21u64.to_le_bytes());
        b[64..72].copy_from_slice(&128u64.to_le_bytes());
        b[72] = 1;
        let h = Header::parse(&b);
        assert_eq!(
            h,
            Header {
                version: 1,
                flags: 0x3_0003,
                capacity: 1000,
                grain: 128,
                descriptor_offset: 1,
                descriptor_size: 20,
                gtes_per_gt: 512,
                rgd_offset: 21,
                gd_offset: 7,
                overhead: 128,
                unclean: true,
                newlines: *b"\n \r\n",
                compress: 1,
            }
        );
    }

    #[test]
    fn probe_magic_and_descriptor_text() {
        assert!(probe(b"KDMV"));
        assert!(probe(b"\xef\xbb\xbf\n\t # DISK DESCRIPTORFILE"));
        assert!(!probe(b"KDM"));
        assert!(!probe(b"COWD"));
        assert!(!probe(b"x # Disk DescriptorFile"));
    }

    #[test]
    fn descriptor_values_and_extent_lines() {
        let d = Descriptor::parse(
            "# Disk DescriptorFile\nversion=1\nCID = 0a0b0c0d\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\
             RW 4192256 SPARSE \"my disk-s001.vmdk\"\nrdonly 10 FLAT \"f.vmdk\" 5\nNOACCESS 3 ZERO\n\
             ddb.adapterType = \"lsilogic\"\n",
        )
        .unwrap();
        assert_eq!(d.get("cid"), Some("0a0b0c0d"));
        assert_eq!(d.get("createType"), Some("twoGbMaxExtentSparse"));
        assert_eq!(d.get("ddb.adapterType"), Some("lsilogic"));
        assert_eq!(d.extents.len(), 3);
        assert_eq!(d.extents[0].file.as_deref(), Some("my disk-s001.vmdk"));
        assert_eq!(d.extents[0].sectors, 4_192_256);
        assert_eq!(d.extents[1].access, Mode::RdOnly);
        assert_eq!(d.extents[1].offset, 5);
        assert_eq!(d.extents[1].to_string(), "RDONLY 10 FLAT \"f.vmdk\" 5");
        assert_eq!(d.extents[2].access, Mode::NoAccess);
        assert_eq!(d.extents[2].file, None);
        // The error names the line's offset.
        let (at, why) = Descriptor::parse("# x\nRW 12 FLAT\n").unwrap_err();
        assert_eq!(at, 4);
        assert!(why.contains("no file name"), "{why}");
        assert!(Descriptor::parse("RW -1 FLAT \"a\"").is_err());
        assert!(Descriptor::parse("RW 1 FLAT \"a\" x").is_err());
    }

    #[test]
    fn extent_names_stay_in_the_folder() {
        let d = Path::new("/ev/case");
        assert_eq!(
            confined_join(d, "a b.vmdk"),
            Some(PathBuf::from("/ev/case/a b.vmdk"))
        );
        assert_eq!(
            confined_join(d, "sub/./x.vmdk"),
            Some(PathBuf::from("/ev/case/sub/x.vmdk"))
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "..\\x",
            "a\\..\\..\\x",
        ] {
            assert_eq!(confined_join(d, bad), None, "{bad}");
        }
        assert_eq!(base_name("C:\\VMs\\base.vmdk"), "base.vmdk");
        assert_eq!(base_name("../b/base.vmdk"), "base.vmdk");
    }

    #[test]
    fn grain_lookup_zeroed_and_out_of_range() {
        let mut sp = Sparse {
            file: 0,
            header: Header::parse(&header_bytes(2048, 1, 1, 0, 0)),
            grain: 512,
            gtes: 4,
            gd: vec![0, u32::MAX],
            gt_offsets: vec![4096],
            gts: vec![0, 1, 9, 10],
            compressed: false,
            markers: false,
            zero_grain: false,
            embedded: None,
        };
        assert_eq!(sp.lookup(0), Grain::Unallocated);
        assert_eq!(sp.lookup(1), Grain::At(1));
        assert_eq!(sp.lookup(2), Grain::At(9));
        assert_eq!(sp.lookup(5), Grain::Unallocated);
        assert_eq!(sp.lookup(1 << 40), Grain::Unallocated);
        assert_eq!(sp.gte_offset(3), 4096 + 12);
        sp.zero_grain = true;
        assert_eq!(sp.lookup(1), Grain::Zeroed);
    }

    #[test]
    fn grain_cache_evicts_least_recent() {
        let mut c = GrainCache::new(CACHE_BYTES);
        assert_eq!(c.cap, 2);
        c.insert(0, 1, vec![1]);
        c.insert(0, 2, vec![2]);
        assert!(c.get(0, 1).is_some());
        let back = c.insert(0, 3, vec![3]);
        assert_eq!(back, vec![2]);
        assert!(c.get(0, 2).is_none());
        assert_eq!(c.get(0, 3), Some(&[3u8][..]));
        assert!(c.get(1, 3).is_none());
    }

    #[test]
    fn inflate_bounds() {
        let data = vec![7u8; 3000];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&data).unwrap();
        let c = z.finish().unwrap();
        let mut dec = Decompress::new(true);
        let mut sink = Vec::new();
        let mut out = vec![0u8; 4096];
        assert_eq!(inflate(&mut dec, &mut sink, &c, &mut out, 4096), Ok(3000));
        assert_eq!(out[..3000], data[..]);
        // Partial destination through the sink.
        let mut small = vec![0u8; 100];
        assert_eq!(inflate(&mut dec, &mut sink, &c, &mut small, 4096), Ok(3000));
        assert_eq!(small, vec![7u8; 100]);
        // More than the grain: refused.
        let e = inflate(&mut dec, &mut sink, &c, &mut out[..2048], 2048).unwrap_err();
        assert!(e.contains("more than 2048"), "{e}");
        // Truncated stream, garbage.
        let e = inflate(&mut dec, &mut sink, &c[..c.len() / 2], &mut out, 4096).unwrap_err();
        assert!(e.contains("truncated") || e.contains("corrupt"), "{e}");
        assert!(inflate(&mut dec, &mut sink, &[0xff; 40], &mut out, 4096).is_err());
    }

    #[test]
    fn sparse_header_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A good one: 4 grains of 1 sector, GD at sector 1, GT at sector 2.
        let mut good = header_bytes(4, 1, 1, FLAG_NL_TEST, 0);
        good.resize(1024, 0);
        good[512..516].copy_from_slice(&2u32.to_le_bytes());
        good.resize(2 * 512, 0);
        for s in [7u32, 8, 0, 1] {
            good.extend_from_slice(&s.to_le_bytes());
        }
        good.resize(7 * 512, 0);
        good.extend_from_slice(&[0xaa; 512]);
        good.extend_from_slice(&[0xbb; 512]);
        let p = write(d, "g.vmdk", &good);
        let f = ContainerFile::open(&p).unwrap();
        let sp = open_sparse(&f, 0).unwrap();
        assert_eq!(sp.lookup(0), Grain::At(7));
        assert_eq!(sp.lookup(3), Grain::At(1));
        let ev = VmdkEvidence::open(&[p]).unwrap();
        assert_eq!(ev.size(), 2048);
        let mut b = vec![0u8; 2048];
        ev.read_exact_at(0, &mut b).unwrap();
        assert!(b[..512].iter().all(|&x| x == 0xaa));
        assert!(b[512..1024].iter().all(|&x| x == 0xbb));
        assert!(b[1024..1536].iter().all(|&x| x == 0));
        // Without the zeroed-grain flag GTE 1 is sector 1 (as qemu reads it).
        assert_eq!(b[1536..2048], good[512..1024]);
        assert_eq!(ev.info().metadata["vmdk.create_type"], "monolithicSparse");

        let cases: &[(&str, usize, &[u8], &str)] = &[
            ("magic", 0, b"KDMX", "no KDMV magic"),
            ("version", 4, &9u32.to_le_bytes(), "version 9"),
            ("grain", 20, &0u64.to_le_bytes(), "grain size"),
            ("gtes", 44, &0u32.to_le_bytes(), "entries per grain table"),
            (
                "compress",
                77,
                &5u16.to_le_bytes(),
                "compression algorithm 5",
            ),
            ("newline", 76, b"\r", "text mode"),
            ("gd", 56, &1000u64.to_le_bytes(), "grain directory"),
            (
                "gd entry",
                512,
                &1000u32.to_le_bytes(),
                "grain directory entry 0",
            ),
            (
                "descriptor",
                28,
                &1000u64.to_le_bytes(),
                "embedded descriptor",
            ),
        ];
        for (name, at, bytes, want) in cases {
            let mut b = good.clone();
            b[*at..*at + bytes.len()].copy_from_slice(bytes);
            if *name == "descriptor" {
                b[36..44].copy_from_slice(&1u64.to_le_bytes());
            }
            let p = write(d, "b.vmdk", &b);
            let e = VmdkEvidence::open(&[p]).unwrap_err();
            assert!(e.to_string().contains(want), "{name}: {e}");
        }
        // Grain tables overlapping each other.
        let mut b = header_bytes(2048, 1, 1, 0, 0);
        b[44..48].copy_from_slice(&4u32.to_le_bytes());
        b.resize(512, 0);
        for s in [2u32, 2, 3] {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b.resize(4096, 0);
        let p = write(d, "o.vmdk", &b);
        // 16-byte tables at sectors 2 and 3 do not overlap; shared ones are fine.
        assert!(VmdkEvidence::open(&[p]).is_ok());
        b[44..48].copy_from_slice(&512u32.to_le_bytes());
        let p = write(d, "o.vmdk", &b);
        let e = VmdkEvidence::open(&[p]).unwrap_err();
        assert!(e.to_string().contains("overlaps"), "{e}");
    }
}
