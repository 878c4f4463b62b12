//! Microsoft Virtual Hard Disk (VHD, "Virtual Hard Disk Image Format
//! Specification" 1.0; Connectix / Virtual PC, Virtual Server, Hyper-V,
//! disk2vhd, XenServer, QEMU "vpc"), read-only: fixed, dynamic and
//! differencing disks.
//!
//! Layout (big-endian): a 512-byte footer (`conectix`) at the end of the
//! file (old Virtual PC images end with a 511-byte one), mirrored at offset
//! 0 for dynamic and differencing disks. A fixed disk is the data followed
//! by the footer. A dynamic disk has a dynamic header (`cxsparse`) at the
//! footer's data offset, a block allocation table (BAT: one 32-bit sector
//! number per block, `0xFFFFFFFF` when the block is absent) and blocks, each
//! a sector bitmap (one bit per 512-byte sector, most significant bit first,
//! padded to 512 bytes) followed by the block's data. A differencing disk is
//! a dynamic disk whose absent blocks, and sectors whose bitmap bit is 0,
//! come from its parent, identified by the parent's unique id and name in the
//! dynamic header (plus platform-specific parent locators).
//!
//! What is presented is what `qemu-img convert -O raw` writes:
//! - Both footer checksums are verified. The footer at the end is used when
//!   it is intact; otherwise the copy at offset 0 (dynamic and differencing
//!   disks); otherwise the image is refused naming the footer. The dynamic
//!   header's checksum is verified too (qemu does not; a bad one is
//!   corruption).
//! - The virtual size follows qemu's rule: the CHS geometry (cylinders ×
//!   heads × sectors × 512) for images whose creator sizes by geometry
//!   (Virtual PC `vpc `, QEMU `qemu`, anything unknown), the footer's current
//!   size for Hyper-V (`win `), disk2vhd (`d2v `), QEMU with `force_size`
//!   (`qem2`), XenServer (`tap\0`) and XenConverter (`CTXS`) images, and
//!   whenever the geometry is the maximum 65535/16/255 (the size cannot be
//!   expressed in CHS). Both sizes and the choice are in the metadata.
//! - A dynamic disk's present blocks are read whole, as qemu does (the
//!   sector bitmap is not consulted: writers zero a new block, so sectors
//!   never written read as zeros either way); absent blocks read as zeros
//!   without I/O.
//! - A differencing disk is resolved through its parent chain (qemu reads
//!   it as if it had no parent, which is wrong): sectors whose bitmap bit
//!   is set come from the child, all others from the parent, which must be among
//!   the files given as evidence; it is matched by its unique id (the
//!   parent id recorded in the child), and a file whose name matches the
//!   recorded parent name but whose id differs is refused. Chains of
//!   parents are followed (at most [`MAX_CHAIN`] deep); a cycle is an error.
//!   Parent bytes past the parent's own virtual size read as zeros.
//!
//! Bounds: the BAT is loaded at open, only the entries that cover the
//! virtual size, after checking that they lie inside the file (so memory is
//! bounded by the file's size); every present block must lie inside the
//! file (as qemu requires); block sizes are powers of two from 512 bytes to
//! 256 MiB. Sector bitmaps are read at read time, 512 bytes at a time, so no
//! memory grows with hostile tables.

use super::ContainerFile;
use crate::{Evidence, EvidenceError, EvidenceInfo, Format, StoredHashes};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const COOKIE: &[u8; 8] = b"conectix";
const DYN_COOKIE: &[u8; 8] = b"cxsparse";
const FOOTER_LEN: usize = 512;
/// Old Virtual PC images end with a 511-byte footer.
const OLD_FOOTER_LEN: usize = 511;
const DYN_HEADER_LEN: usize = 1024;
const SECTOR: u64 = 512;
const UNALLOCATED: u32 = 0xFFFF_FFFF;
const MIN_BLOCK_SIZE: u32 = 512;
const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// CHS geometry meaning "the size does not fit CHS: use the current size".
const MAX_GEOMETRY: u64 = 65535 * 16 * 255;
/// Most disks in a differencing chain (the image and its ancestors).
pub const MAX_CHAIN: usize = 64;
/// Most bytes of one parent locator read (a path).
const MAX_LOCATOR: u64 = 64 << 10;
/// Seconds from the Unix epoch to the VHD epoch (2000-01-01 00:00:00 UTC).
const VHD_EPOCH: i64 = 946_684_800;

const TYPE_FIXED: u32 = 2;
const TYPE_DYNAMIC: u32 = 3;
const TYPE_DIFFERENCING: u32 = 4;

/// Recognises a dynamic or differencing VHD from its first bytes (the
/// footer copy at offset 0). Fixed disks have no header: see
/// [`probe_footer`].
pub fn probe(head: &[u8]) -> bool {
    head.starts_with(COOKIE)
}

/// Recognises a VHD from the last 512 bytes of a file: an intact footer
/// (512 bytes, or the 511 bytes of old Virtual PC images) with a known disk
/// type. This is how fixed VHDs are detected.
pub fn probe_footer(tail: &[u8]) -> bool {
    let candidates = [
        tail.len()
            .checked_sub(FOOTER_LEN)
            .map(|at| &tail[at..])
            .filter(|f| f.starts_with(COOKIE)),
        tail.len()
            .checked_sub(OLD_FOOTER_LEN)
            .map(|at| &tail[at..])
            .filter(|f| f.starts_with(COOKIE)),
    ];
    candidates.into_iter().flatten().any(|f| {
        let foot = Footer::parse(f);
        foot.checksum_ok && matches!(foot.disk_type, TYPE_FIXED..=TYPE_DIFFERENCING)
    })
}

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

/// One's complement of the byte sum of `b`, skipping the 4-byte checksum
/// field at `field`.
fn checksum(b: &[u8], field: usize) -> u32 {
    let sum = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |s, (_, &x)| s.wrapping_add(u32::from(x)));
    !sum
}

/// A UUID stored as 16 bytes in order, as text.
fn uuid_text(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A four-character code as text (printable ASCII, trailing blanks and
/// NULs trimmed; other bytes escaped).
fn fourcc(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if c.is_ascii_graphic() || c == b' ' {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    while s.ends_with(' ') {
        s.pop();
    }
    while s.ends_with("\\x00") {
        s.truncate(s.len() - 4);
    }
    s
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a VHD timestamp (seconds since 2000-01-01).
fn vhd_time(secs: u32) -> String {
    let t = VHD_EPOCH + i64::from(secs);
    let days = t.div_euclid(86_400);
    let sod = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// The hard disk footer.
#[derive(Debug, Clone)]
struct Footer {
    checksum_ok: bool,
    stored_checksum: u32,
    computed_checksum: u32,
    version: u32,
    data_offset: u64,
    timestamp: u32,
    creator_app: [u8; 4],
    creator_version: u32,
    creator_os: [u8; 4],
    original_size: u64,
    current_size: u64,
    cylinders: u16,
    heads: u8,
    sectors: u8,
    disk_type: u32,
    unique_id: [u8; 16],
    saved_state: u8,
}

impl Footer {
    /// Parses a footer (511 or 512 bytes starting with the cookie).
    fn parse(b: &[u8]) -> Self {
        let mut creator_app = [0u8; 4];
        creator_app.copy_from_slice(&b[28..32]);
        let mut creator_os = [0u8; 4];
        creator_os.copy_from_slice(&b[36..40]);
        let mut unique_id = [0u8; 16];
        unique_id.copy_from_slice(&b[68..84]);
        let stored = be32(b, 64);
        let computed = checksum(b, 64);
        Self {
            checksum_ok: stored == computed,
            stored_checksum: stored,
            computed_checksum: computed,
            version: be32(b, 12),
            data_offset: be64(b, 16),
            timestamp: be32(b, 24),
            creator_app,
            creator_version: be32(b, 32),
            creator_os,
            original_size: be64(b, 40),
            current_size: be64(b, 48),
            cylinders: be16(b, 56),
            heads: b[58],
            sectors: b[59],
            disk_type: be32(b, 60),
            unique_id,
            saved_state: b[84],
        }
    }

    fn geometry_sectors(&self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors)
    }

    /// qemu's choice: whether the creator sizes the disk by its footer's
    /// current size rather than by its CHS geometry.
    fn sized_by_current_size(&self) -> bool {
        matches!(
            &self.creator_app,
            b"win " | b"qem2" | b"d2v " | b"CTXS" | b"tap\0"
        ) || self.geometry_sectors() == MAX_GEOMETRY
    }

    /// The virtual size as qemu computes it (whole sectors).
    fn virtual_size(&self) -> u64 {
        if self.sized_by_current_size() {
            self.current_size / SECTOR * SECTOR
        } else {
            self.geometry_sectors() * SECTOR
        }
    }

    fn type_name(&self) -> String {
        match self.disk_type {
            TYPE_FIXED => "fixed".into(),
            TYPE_DYNAMIC => "dynamic".into(),
            TYPE_DIFFERENCING => "differencing".into(),
            t => format!("unknown ({t})"),
        }
    }
}

/// The dynamic disk header.
#[derive(Debug, Clone)]
struct DynHeader {
    table_offset: u64,
    max_table_entries: u32,
    block_size: u32,
    parent_uuid: [u8; 16],
    parent_timestamp: u32,
    parent_name: String,
    /// (platform code, decoded path) of each parent locator.
    locators: Vec<(String, String)>,
}

/// Where a disk's data lives.
#[derive(Debug)]
enum Map {
    /// The file's first `size` bytes.
    Fixed,
    /// Blocks through a BAT.
    Sparse {
        /// One entry per block of the virtual size.
        bat: Vec<u32>,
        block_shift: u32,
        bitmap_size: u64,
        /// Absent blocks and clear bitmap bits read from the parent.
        differencing: bool,
    },
}

/// One disk of a chain: the image or one of its ancestors.
#[derive(Debug)]
struct Layer {
    file: ContainerFile,
    footer: Footer,
    /// File offset of the footer used.
    footer_offset: u64,
    /// Whether both footer copies are intact and differ.
    copies_differ: bool,
    dynamic: Option<DynHeader>,
    map: Map,
    size: u64,
}

impl Layer {
    /// Opens one VHD file: footer, dynamic header, BAT.
    fn open(path: &Path) -> Result<Self, EvidenceError> {
        let file = ContainerFile::open(path)?;
        let len = file.len();
        if len < OLD_FOOTER_LEN as u64 {
            return Err(EvidenceError::Truncated {
                path: path.to_path_buf(),
                offset: 0,
                what: format!("VHD footer: the file has only {len} bytes"),
            });
        }
        // The footer at the end (512 bytes, or 511 for old Virtual PC).
        let tail_len = FOOTER_LEN.min(len as usize);
        let mut tail = [0u8; FOOTER_LEN];
        file.read_exact_at(len - tail_len as u64, &mut tail[..tail_len], "VHD footer")?;
        let end = if tail_len == FOOTER_LEN && tail.starts_with(COOKIE) {
            Some((len - FOOTER_LEN as u64, Footer::parse(&tail)))
        } else if tail[tail_len - OLD_FOOTER_LEN..tail_len].starts_with(COOKIE) {
            Some((
                len - OLD_FOOTER_LEN as u64,
                Footer::parse(&tail[tail_len - OLD_FOOTER_LEN..tail_len]),
            ))
        } else {
            None
        };
        // The copy at offset 0 (dynamic and differencing disks).
        let head = if len >= FOOTER_LEN as u64 {
            let mut h = [0u8; FOOTER_LEN];
            file.read_exact_at(0, &mut h, "VHD footer copy")?;
            h.starts_with(COOKIE).then(|| Footer::parse(&h))
        } else {
            None
        };
        let (footer_offset, footer, copies_differ) = match (&end, &head) {
            (Some((at, f)), h) if f.checksum_ok => {
                let differs = h.as_ref().is_some_and(|h| {
                    h.checksum_ok
                        && f.disk_type != TYPE_FIXED
                        && (h.unique_id != f.unique_id
                            || h.current_size != f.current_size
                            || h.data_offset != f.data_offset
                            || h.disk_type != f.disk_type)
                });
                (*at, f.clone(), differs)
            }
            (_, Some(h)) if h.checksum_ok && h.disk_type != TYPE_FIXED => (0, h.clone(), false),
            (Some((at, f)), h) => {
                let copy = match h {
                    Some(h) if h.disk_type == TYPE_FIXED => {
                        "; the copy at offset 0 claims a fixed disk, which has no copy"
                    }
                    Some(_) => "; the copy at offset 0 fails its checksum too",
                    None => "; there is no copy at offset 0",
                };
                return Err(file.corrupt(
                    *at,
                    format!(
                        "VHD footer checksum mismatch: stored {:#010x}, computed {:#010x}{copy}",
                        f.stored_checksum, f.computed_checksum
                    ),
                ));
            }
            (None, Some(h)) => {
                let why = if h.checksum_ok {
                    "claims a fixed disk, which has no copy there".to_string()
                } else {
                    format!(
                        "fails its checksum: stored {:#010x}, computed {:#010x}",
                        h.stored_checksum, h.computed_checksum
                    )
                };
                return Err(file.corrupt(
                    0,
                    format!("no VHD footer at the end of the file, and the copy at offset 0 {why}"),
                ));
            }
            (None, None) => {
                return Err(EvidenceError::UnknownFormat {
                    path: path.to_path_buf(),
                    reason: "no VHD footer (\"conectix\") at the end of the file or at offset 0"
                        .into(),
                });
            }
        };
        let size = footer.virtual_size();
        let (dynamic, map) = match footer.disk_type {
            TYPE_FIXED => {
                if size > footer_offset {
                    return Err(EvidenceError::Truncated {
                        path: path.to_path_buf(),
                        offset: footer_offset,
                        what: format!(
                            "fixed VHD data: the virtual size is {size} bytes but only {footer_offset} bytes precede the footer"
                        ),
                    });
                }
                (None, Map::Fixed)
            }
            TYPE_DYNAMIC | TYPE_DIFFERENCING => {
                let (dh, map) = Self::open_sparse(&file, &footer, footer_offset, size)?;
                (Some(dh), map)
            }
            t => {
                return Err(file.corrupt(
                    footer_offset + 60,
                    format!(
                        "VHD footer: unknown disk type {t} (2 fixed, 3 dynamic, 4 differencing)"
                    ),
                ));
            }
        };
        Ok(Self {
            file,
            footer,
            footer_offset,
            copies_differ,
            dynamic,
            map,
            size,
        })
    }

    fn open_sparse(
        file: &ContainerFile,
        footer: &Footer,
        footer_offset: u64,
        size: u64,
    ) -> Result<(DynHeader, Map), EvidenceError> {
        let at = footer.data_offset;
        let mut h = [0u8; DYN_HEADER_LEN];
        if at
            .checked_add(DYN_HEADER_LEN as u64)
            .is_none_or(|e| e > file.len())
        {
            return Err(file.corrupt(
                footer_offset + 16,
                format!(
                    "VHD footer: the dynamic header offset {at} lies outside the file ({} bytes)",
                    file.len()
                ),
            ));
        }
        file.read_exact_at(at, &mut h, "VHD dynamic header")?;
        if !h.starts_with(DYN_COOKIE) {
            return Err(file.corrupt(
                at,
                "VHD dynamic header: no \"cxsparse\" signature at the footer's data offset",
            ));
        }
        let stored = be32(&h, 36);
        let computed = checksum(&h, 36);
        if stored != computed {
            return Err(file.corrupt(
                at,
                format!(
                    "VHD dynamic header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                ),
            ));
        }
        let table_offset = be64(&h, 16);
        let max_table_entries = be32(&h, 28);
        let block_size = be32(&h, 32);
        if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size)
        {
            return Err(file.corrupt(
                at + 32,
                format!(
                    "VHD dynamic header: block size {block_size} is not a power of two from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}"
                ),
            ));
        }
        let block_size64 = u64::from(block_size);
        let bitmap_size = (block_size64 / SECTOR).div_ceil(8).next_multiple_of(SECTOR);
        let needed = size.div_ceil(block_size64);
        if needed > u64::from(max_table_entries) {
            return Err(file.corrupt(
                at + 28,
                format!(
                    "VHD dynamic header: {max_table_entries} BAT entries of {block_size} bytes cannot cover the virtual size of {size} bytes"
                ),
            ));
        }
        // `needed` ≤ u32::MAX, so the table length cannot overflow.
        let bat_len = needed * 4;
        if table_offset
            .checked_add(bat_len)
            .is_none_or(|e| e > file.len())
        {
            return Err(EvidenceError::Truncated {
                path: file.path().to_path_buf(),
                offset: table_offset,
                what: format!(
                    "VHD BAT: {needed} entries ({bat_len} bytes) at offset {table_offset} pass the end of the file ({} bytes)",
                    file.len()
                ),
            });
        }
        let mut raw = vec![0u8; bat_len as usize];
        file.read_exact_at(table_offset, &mut raw, "VHD BAT")?;
        let bat: Vec<u32> = raw.chunks_exact(4).map(|c| be32(c, 0)).collect();
        drop(raw);
        for (i, &e) in bat.iter().enumerate() {
            if e == UNALLOCATED {
                continue;
            }
            let start = u64::from(e) * SECTOR;
            let end = start + bitmap_size + block_size64;
            if end > file.len() {
                return Err(EvidenceError::Truncated {
                    path: file.path().to_path_buf(),
                    offset: table_offset + i as u64 * 4,
                    what: format!(
                        "VHD BAT entry {i}: block (bitmap and data, {} bytes at offset {start}) passes the end of the file ({} bytes)",
                        bitmap_size + block_size64,
                        file.len()
                    ),
                });
            }
        }
        let mut parent_uuid = [0u8; 16];
        parent_uuid.copy_from_slice(&h[40..56]);
        let name16: Vec<u16> = h[64..576]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        let parent_name = String::from_utf16_lossy(&name16);
        let mut locators = Vec::new();
        for i in 0..8 {
            let e = &h[576 + i * 24..576 + (i + 1) * 24];
            let code = &e[0..4];
            if code == [0; 4] {
                continue;
            }
            let len = u64::from(be32(e, 8));
            let off = be64(e, 16);
            let text = if len == 0 || len > MAX_LOCATOR {
                None
            } else {
                let mut b = vec![0u8; len as usize];
                file.read_exact_at(off, &mut b, "VHD parent locator")
                    .ok()
                    .map(|()| match code {
                        b"W2ku" | b"W2ru" => {
                            let u: Vec<u16> = b
                                .chunks_exact(2)
                                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                                .take_while(|&c| c != 0)
                                .collect();
                            String::from_utf16_lossy(&u)
                        }
                        b"Mac " => "(Mac OS alias)".to_string(),
                        _ => String::from_utf8_lossy(&b)
                            .trim_end_matches('\0')
                            .to_string(),
                    })
            };
            locators.push((
                fourcc(code),
                text.unwrap_or_else(|| format!("(unreadable: {len} bytes at offset {off})")),
            ));
        }
        let dh = DynHeader {
            table_offset,
            max_table_entries,
            block_size,
            parent_uuid,
            parent_timestamp: be32(&h, 56),
            parent_name,
            locators,
        };
        let map = Map::Sparse {
            bat,
            block_shift: block_size.trailing_zeros(),
            bitmap_size,
            differencing: footer.disk_type == TYPE_DIFFERENCING,
        };
        Ok((dh, map))
    }

    fn differencing(&self) -> bool {
        matches!(
            self.map,
            Map::Sparse {
                differencing: true,
                ..
            }
        )
    }

    /// The base names this disk's parent is recorded under.
    fn parent_names(&self) -> Vec<String> {
        let Some(d) = &self.dynamic else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for full in std::iter::once(&d.parent_name).chain(d.locators.iter().map(|(_, p)| p)) {
            let base = full.rsplit(['\\', '/']).next().unwrap_or("").trim();
            if !base.is_empty() && !base.starts_with('(') && !names.contains(&base.to_string()) {
                names.push(base.to_string());
            }
        }
        names
    }
}

/// A VHD image (and, for a differencing disk, its parents) as evidence.
#[derive(Debug)]
pub struct VhdEvidence {
    info: EvidenceInfo,
    /// `layers[0]` is the image; each differencing layer's parent follows it.
    layers: Vec<Layer>,
}

impl VhdEvidence {
    /// Opens the VHD `paths[0]`. The other paths are the other files given
    /// as evidence: a differencing disk's parents must be among them (any
    /// order); files that are not needed are left alone.
    ///
    /// # Errors
    /// Missing or unreadable files; a footer or dynamic header failing its
    /// checksum; tables or blocks outside the file; a parent not given
    /// ([`EvidenceError::MissingSegment`] naming it), whose id differs from
    /// the one recorded, or a cycle of parents.
    pub fn open(paths: &[PathBuf]) -> Result<Self, EvidenceError> {
        let Some(first) = paths.first() else {
            return Err(EvidenceError::NotFound {
                path: PathBuf::new(),
            });
        };
        let mut layers = vec![Layer::open(first)?];
        // Candidates for parents, opened when first needed.
        let mut pool: Vec<Option<Result<Layer, String>>> = (0..paths.len()).map(|_| None).collect();
        let mut chain_idx = vec![0usize];
        loop {
            let child = layers.last().expect("at least the image");
            if !child.differencing() {
                break;
            }
            let child_path = child.file.path().to_path_buf();
            let want = child
                .dynamic
                .as_ref()
                .map(|d| d.parent_uuid)
                .unwrap_or_default();
            let names = child.parent_names();
            let shown = names
                .first()
                .cloned()
                .unwrap_or_else(|| format!("unique id {}", uuid_text(&want)));
            if let Some(l) = layers
                .iter()
                .find(|l| l.footer.unique_id == want && want != [0; 16])
            {
                return Err(EvidenceError::Corrupt {
                    path: child_path,
                    offset: 0,
                    what: format!(
                        "VHD differencing chain forms a cycle: the parent id {} is that of {}, already in the chain",
                        uuid_text(&want),
                        l.file.path().display()
                    ),
                });
            }
            if layers.len() >= MAX_CHAIN {
                return Err(EvidenceError::Corrupt {
                    path: first.clone(),
                    offset: 0,
                    what: format!("VHD differencing chain is deeper than {MAX_CHAIN} disks"),
                });
            }
            let mut found = None;
            let mut name_mismatch = None;
            for j in 1..paths.len() {
                if chain_idx.contains(&j) {
                    continue;
                }
                if pool[j].is_none() {
                    pool[j] = Some(Layer::open(&paths[j]).map_err(|e| e.to_string()));
                }
                let Some(Ok(cand)) = &pool[j] else {
                    continue;
                };
                if want != [0; 16] {
                    if cand.footer.unique_id == want {
                        found = Some(j);
                        break;
                    }
                    let fname = paths[j]
                        .file_name()
                        .map(|n| n.to_string_lossy().to_lowercase())
                        .unwrap_or_default();
                    if names.iter().any(|n| n.to_lowercase() == fname) {
                        name_mismatch = Some((j, cand.footer.unique_id));
                    }
                } else {
                    let fname = paths[j]
                        .file_name()
                        .map(|n| n.to_string_lossy().to_lowercase())
                        .unwrap_or_default();
                    if names.iter().any(|n| n.to_lowercase() == fname) {
                        found = Some(j);
                        break;
                    }
                }
            }
            let Some(j) = found else {
                if let Some((j, id)) = name_mismatch {
                    return Err(EvidenceError::Corrupt {
                        path: paths[j].clone(),
                        offset: 0,
                        what: format!(
                            "named like the parent {shown} of {}, but its unique id {} differs from the recorded parent id {}",
                            child_path.display(),
                            uuid_text(&id),
                            uuid_text(&want)
                        ),
                    });
                }
                // A candidate that failed to open but carries the name.
                for j in 1..paths.len() {
                    if let Some(Err(e)) = &pool[j] {
                        let fname = paths[j]
                            .file_name()
                            .map(|n| n.to_string_lossy().to_lowercase())
                            .unwrap_or_default();
                        if names.iter().any(|n| n.to_lowercase() == fname) {
                            return Err(EvidenceError::Corrupt {
                                path: paths[j].clone(),
                                offset: 0,
                                what: format!(
                                    "parent {shown} of {} cannot be opened: {e}",
                                    child_path.display()
                                ),
                            });
                        }
                    }
                }
                return Err(EvidenceError::MissingSegment {
                    path: child_path.clone(),
                    expected: shown,
                    what: format!(
                        "parent disk (unique id {}) of differencing VHD {} is not given as evidence",
                        uuid_text(&want),
                        child_path.display()
                    ),
                });
            };
            let Some(Ok(parent)) = pool[j].take() else {
                unreachable!("a matched candidate opened");
            };
            layers.push(parent);
            chain_idx.push(j);
        }
        let info = Self::describe(&layers);
        Ok(Self { info, layers })
    }

    fn describe(layers: &[Layer]) -> EvidenceInfo {
        let top = &layers[0];
        let f = &top.footer;
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(format!("vhd.{k}"), v);
        };
        put("disk_type", f.type_name());
        put("creator_app", fourcc(&f.creator_app));
        put(
            "creator_version",
            format!("{}.{}", f.creator_version >> 16, f.creator_version & 0xffff),
        );
        let os = match &f.creator_os {
            b"Wi2k" => "Wi2k (Windows)".to_string(),
            b"Mac " => "Mac (Macintosh)".to_string(),
            other => fourcc(other),
        };
        put("creator_host_os", os);
        put(
            "format_version",
            format!("{}.{}", f.version >> 16, f.version & 0xffff),
        );
        put("unique_id", uuid_text(&f.unique_id));
        put("timestamp", vhd_time(f.timestamp));
        put(
            "geometry",
            format!("{}/{}/{}", f.cylinders, f.heads, f.sectors),
        );
        put("current_size", f.current_size.to_string());
        put("original_size", f.original_size.to_string());
        put(
            "size_from",
            if f.sized_by_current_size() {
                "current_size"
            } else {
                "geometry"
            }
            .into(),
        );
        put("footer_offset", top.footer_offset.to_string());
        if top.copies_differ {
            put(
                "footer_copies_differ",
                "true (the footer at the end is used)".into(),
            );
        }
        if f.saved_state != 0 {
            put("saved_state", "true".into());
        }
        if let Some(d) = &top.dynamic {
            put("block_size", d.block_size.to_string());
            put("bat_offset", d.table_offset.to_string());
            put("bat_entries", d.max_table_entries.to_string());
            if f.disk_type == TYPE_DIFFERENCING {
                put("parent_unique_id", uuid_text(&d.parent_uuid));
                put("parent_timestamp", vhd_time(d.parent_timestamp));
                put("parent_name", d.parent_name.clone());
                if !d.locators.is_empty() {
                    put(
                        "parent_locators",
                        d.locators
                            .iter()
                            .map(|(c, p)| format!("{c}: {p}"))
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                }
                put(
                    "parents",
                    layers[1..]
                        .iter()
                        .map(|l| l.file.path().display().to_string())
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
        }
        EvidenceInfo {
            path: top.file.path().to_path_buf(),
            segments: layers.iter().map(|l| l.file.path().to_path_buf()).collect(),
            size: top.size,
            format: Format::Vhd,
            stored: StoredHashes::default(),
            metadata: m,
            acquisition_errors: Vec::new(),
            bytes_per_sector: 512,
        }
    }

    /// Fills `buf` with layer `li`'s bytes at `offset` (zeros past its end).
    fn read_layer(&self, li: usize, offset: u64, buf: &mut [u8]) -> Result<(), EvidenceError> {
        let layer = &self.layers[li];
        let inside = layer.size.saturating_sub(offset).min(buf.len() as u64) as usize;
        let (buf, past) = buf.split_at_mut(inside);
        past.fill(0);
        if buf.is_empty() {
            return Ok(());
        }
        match &layer.map {
            Map::Fixed => layer.file.read_exact_at(offset, buf, "fixed VHD data"),
            Map::Sparse {
                bat,
                block_shift,
                bitmap_size,
                differencing,
            } => {
                let block_size = 1u64 << block_shift;
                let mut done = 0usize;
                while done < buf.len() {
                    let pos = offset + done as u64;
                    let idx = (pos >> block_shift) as usize;
                    let in_block = pos & (block_size - 1);
                    let n = ((block_size - in_block) as usize).min(buf.len() - done);
                    let out = &mut buf[done..done + n];
                    let entry = bat[idx];
                    if entry == UNALLOCATED {
                        if *differencing {
                            self.read_layer(li + 1, pos, out)?;
                        } else {
                            out.fill(0);
                        }
                    } else {
                        let bitmap_at = u64::from(entry) * SECTOR;
                        let data_at = bitmap_at + bitmap_size + in_block;
                        if *differencing {
                            self.read_differencing(li, bitmap_at, data_at, pos, in_block, out)?;
                        } else {
                            layer.file.read_exact_at(data_at, out, "VHD data block")?;
                        }
                    }
                    done += n;
                }
                Ok(())
            }
        }
    }

    /// Reads `out` (inside one present block of differencing layer `li`,
    /// starting `in_block` bytes into it, at virtual offset `pos`): sectors
    /// whose bitmap bit is set from the block's data at `data_at`, the
    /// others from the parent.
    fn read_differencing(
        &self,
        li: usize,
        bitmap_at: u64,
        data_at: u64,
        pos: u64,
        in_block: u64,
        out: &mut [u8],
    ) -> Result<(), EvidenceError> {
        let file = &self.layers[li].file;
        let mut bits = [0u8; 512];
        let mut bits_first = u64::MAX; // first sector covered by `bits`
        let mut done = 0usize;
        while done < out.len() {
            let at = in_block + done as u64;
            let sector = at / SECTOR;
            // The run of sectors sharing this sector's bit.
            let bit = |s: u64, bits: &[u8; 512], first: u64| {
                let k = s - first;
                bits[(k / 8) as usize] & (0x80 >> (k % 8)) != 0
            };
            if bits_first == u64::MAX || sector >= bits_first + 4096 {
                // Load the bitmap bytes from this sector's byte on, up to
                // 512 bytes (4096 sectors), not past the block's bitmap.
                let first_byte = sector / 8;
                let last_sector = (in_block + out.len() as u64 - 1) / SECTOR;
                let want = (last_sector / 8 - first_byte + 1).min(512) as usize;
                file.read_exact_at(
                    bitmap_at + first_byte,
                    &mut bits[..want],
                    "VHD sector bitmap",
                )?;
                bits_first = first_byte * 8;
            }
            let set = bit(sector, &bits, bits_first);
            let mut end_sector = sector + 1;
            let last_sector = (in_block + out.len() as u64 - 1) / SECTOR;
            while end_sector <= last_sector
                && end_sector < bits_first + 4096
                && bit(end_sector, &bits, bits_first) == set
            {
                end_sector += 1;
            }
            let run_end = (end_sector * SECTOR).min(in_block + out.len() as u64);
            let n = (run_end - at) as usize;
            let dst = &mut out[done..done + n];
            if set {
                file.read_exact_at(data_at + done as u64, dst, "VHD data block")?;
            } else {
                self.read_layer(li + 1, pos + done as u64, dst)?;
            }
            done += n;
        }
        Ok(())
    }
}

impl Evidence for VhdEvidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        let size = self.info.size;
        let n = super::readable(size, offset, buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.read_layer(0, offset, &mut buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const BS: u32 = 4096; // small blocks for tests

    fn footer(disk_type: u32, size: u64, data_offset: u64, uid: u8, app: &[u8; 4]) -> [u8; 512] {
        let mut f = [0u8; 512];
        f[0..8].copy_from_slice(COOKIE);
        f[8..12].copy_from_slice(&2u32.to_be_bytes());
        f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        f[16..24].copy_from_slice(&data_offset.to_be_bytes());
        f[24..28].copy_from_slice(&0x2000_0000u32.to_be_bytes());
        f[28..32].copy_from_slice(app);
        f[32..36].copy_from_slice(&0x0005_0003u32.to_be_bytes());
        f[36..40].copy_from_slice(b"Wi2k");
        f[40..48].copy_from_slice(&size.to_be_bytes());
        f[48..56].copy_from_slice(&size.to_be_bytes());
        // Maximum geometry: the current size is used whatever the creator.
        f[56..58].copy_from_slice(&65535u16.to_be_bytes());
        f[58] = 16;
        f[59] = 255;
        f[60..64].copy_from_slice(&disk_type.to_be_bytes());
        f[68..84].fill(uid);
        let c = checksum(&f, 64);
        f[64..68].copy_from_slice(&c.to_be_bytes());
        f
    }

    /// A dynamic (or differencing) image of `blocks` blocks of `BS` bytes;
    /// `data[i]` is block i's contents and bitmap, or absent.
    fn sparse(
        disk_type: u32,
        uid: u8,
        parent: Option<(u8, &str)>,
        data: &[Option<(Vec<u8>, Vec<u8>)>],
    ) -> Vec<u8> {
        let size = data.len() as u64 * u64::from(BS);
        let foot = footer(disk_type, size, 512, uid, b"test");
        let mut img = foot.to_vec();
        let mut h = [0u8; 1024];
        h[0..8].copy_from_slice(DYN_COOKIE);
        h[8..16].fill(0xff);
        h[16..24].copy_from_slice(&1536u64.to_be_bytes());
        h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        h[28..32].copy_from_slice(&(data.len() as u32).to_be_bytes());
        h[32..36].copy_from_slice(&BS.to_be_bytes());
        if let Some((pid, name)) = parent {
            h[40..56].fill(pid);
            for (i, c) in name.encode_utf16().enumerate() {
                h[64 + 2 * i..66 + 2 * i].copy_from_slice(&c.to_be_bytes());
            }
        }
        let c = checksum(&h, 36);
        h[36..40].copy_from_slice(&c.to_be_bytes());
        img.extend_from_slice(&h);
        let bat_len = (data.len() * 4).next_multiple_of(512);
        let mut bat = vec![0xffu8; bat_len];
        let mut blocks = Vec::new();
        let mut next = (1536 + bat_len) as u64;
        for (i, d) in data.iter().enumerate() {
            if let Some((bytes, bitmap)) = d {
                bat[i * 4..i * 4 + 4].copy_from_slice(&((next / 512) as u32).to_be_bytes());
                let mut bm = bitmap.clone();
                bm.resize(512, 0);
                blocks.extend_from_slice(&bm);
                blocks.extend_from_slice(bytes);
                next += 512 + u64::from(BS);
            }
        }
        img.extend_from_slice(&bat);
        img.extend_from_slice(&blocks);
        img.extend_from_slice(&foot);
        img
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        p
    }

    fn read_all(ev: &VhdEvidence) -> Vec<u8> {
        let mut v = vec![0u8; ev.size() as usize];
        ev.read_exact_at(0, &mut v).unwrap();
        v
    }

    #[test]
    fn checksum_and_time() {
        let f = footer(TYPE_FIXED, 1024, u64::MAX, 1, b"win ");
        let p = Footer::parse(&f);
        assert!(p.checksum_ok);
        assert!(probe_footer(&f));
        assert!(probe(&f));
        assert!(!probe(b"conecti"));
        assert_eq!(vhd_time(0), "2000-01-01T00:00:00Z");
        assert_eq!(vhd_time(86_400 * 366 + 3661), "2001-01-01T01:01:01Z");
        assert_eq!(fourcc(b"tap\0"), "tap");
        assert_eq!(fourcc(b"vpc "), "vpc");
    }

    #[test]
    fn size_rule() {
        let mut f = Footer::parse(&footer(TYPE_FIXED, 10 * 512 + 100, u64::MAX, 1, b"vpc "));
        // Maximum geometry: the current size (whole sectors).
        assert_eq!(f.virtual_size(), 10 * 512);
        f.cylinders = 2;
        f.heads = 4;
        f.sectors = 17;
        assert_eq!(f.virtual_size(), 2 * 4 * 17 * 512);
        f.creator_app = *b"win ";
        assert_eq!(f.virtual_size(), 10 * 512);
    }

    #[test]
    fn fixed_and_old_footer() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        let mut img = data.clone();
        img.extend_from_slice(&footer(TYPE_FIXED, 4096, u64::MAX, 1, b"win "));
        let p = write(dir.path(), "f.vhd", &img);
        let ev = VhdEvidence::open(std::slice::from_ref(&p)).unwrap();
        assert_eq!(read_all(&ev), data);
        assert_eq!(ev.info().metadata["vhd.disk_type"], "fixed");
        // A 511-byte footer (old Virtual PC): same checksum, last byte gone.
        let mut f = footer(TYPE_FIXED, 4096, u64::MAX, 1, b"win ");
        assert_eq!(f[511], 0);
        let c = checksum(&f[..511], 64);
        f[64..68].copy_from_slice(&c.to_be_bytes());
        let mut img = data.clone();
        img.extend_from_slice(&f[..511]);
        let p = write(dir.path(), "old.vhd", &img);
        let ev = VhdEvidence::open(&[p]).unwrap();
        assert_eq!(read_all(&ev), data);
        // Footer too large for the data.
        let mut img = data.clone();
        img.extend_from_slice(&footer(TYPE_FIXED, 8192, u64::MAX, 1, b"win "));
        let p = write(dir.path(), "big.vhd", &img);
        let e = VhdEvidence::open(&[p]).unwrap_err().to_string();
        assert!(e.contains("precede the footer"), "{e}");
    }

    #[test]
    fn footer_fallback_and_checksum_errors() {
        let dir = tempfile::tempdir().unwrap();
        let block: Vec<u8> = (0..BS).map(|i| (i % 251) as u8).collect();
        let img = sparse(
            TYPE_DYNAMIC,
            3,
            None,
            &[Some((block.clone(), vec![0xff; 1])), None],
        );
        let mut want = block.clone();
        want.resize(2 * BS as usize, 0);
        // Damaged end footer: the copy at 0 is used.
        let mut bad = img.clone();
        let n = bad.len();
        bad[n - 512 + 40] ^= 1;
        let p = write(dir.path(), "a.vhd", &bad);
        let ev = VhdEvidence::open(&[p]).unwrap();
        assert_eq!(read_all(&ev), want);
        assert_eq!(ev.info().metadata["vhd.footer_offset"], "0");
        // Both damaged: an error naming the footer checksum.
        bad[40] ^= 1;
        let p = write(dir.path(), "b.vhd", &bad);
        let e = VhdEvidence::open(&[p]).unwrap_err().to_string();
        assert!(e.contains("footer checksum mismatch"), "{e}");
        // Damaged dynamic header.
        let mut bad = img.clone();
        bad[512 + 100] ^= 1;
        let p = write(dir.path(), "c.vhd", &bad);
        let e = VhdEvidence::open(&[p]).unwrap_err().to_string();
        assert!(e.contains("dynamic header checksum"), "{e}");
        // No footer at all.
        let p = write(dir.path(), "d.vhd", &[0u8; 2048]);
        assert!(matches!(
            VhdEvidence::open(&[p]),
            Err(EvidenceError::UnknownFormat { .. })
        ));
        let p = write(dir.path(), "e.vhd", &[0u8; 10]);
        assert!(matches!(
            VhdEvidence::open(&[p]),
            Err(EvidenceError::Truncated { .. })
        ));
    }

    #[test]
    fn bat_errors() {
        let dir = tempfile::tempdir().unwrap();
        let block = vec![1u8; BS as usize];
        let img = sparse(TYPE_DYNAMIC, 3, None, &[Some((block, vec![0xff]))]);
        // BAT entry past the end of the file.
        let mut bad = img.clone();
        bad[1536..1540].copy_from_slice(&0x00ff_0000u32.to_be_bytes());
        let p = write(dir.path(), "a.vhd", &bad);
        let e = VhdEvidence::open(&[p]).unwrap_err().to_string();
        assert!(e.contains("BAT entry 0"), "{e}");
        // Block size not a power of two (checksum fixed up).
        let mut bad = img.clone();
        bad[512 + 32..512 + 36].copy_from_slice(&3000u32.to_be_bytes());
        let c = checksum(&bad[512..1536], 36);
        bad[512 + 36..512 + 40].copy_from_slice(&c.to_be_bytes());
        let p = write(dir.path(), "b.vhd", &bad);
        let e = VhdEvidence::open(&[p]).unwrap_err().to_string();
        assert!(e.contains("block size 3000"), "{e}");
        // Too few BAT entries for the size.
        let mut bad = img.clone();
        bad[512 + 28..512 + 32].copy_from_slice(&0u32.to_be_bytes());
        let c = checksum(&bad[512..1536], 36);
        bad[512 + 36..512 + 40].copy_from_slice(&c.to_be_bytes());
        let p = write(dir.path(), "c.vhd", &bad);
        let e = VhdEvidence::open(&[p]).unwrap_err().to_string();
        assert!(e.contains("cannot cover"), "{e}");
        // A huge virtual size: the BAT it would need is not in the file
        // (and is not allocated).
        let mut bad = img.clone();
        for at in [0usize, bad.len() - 512] {
            bad[at + 48..at + 56].copy_from_slice(&(1u64 << 50).to_be_bytes());
            let c = checksum(&bad[at..at + 512], 64);
            bad[at + 64..at + 68].copy_from_slice(&c.to_be_bytes());
        }
        bad[512 + 28..512 + 32].copy_from_slice(&u32::MAX.to_be_bytes());
        bad[512 + 32..512 + 36].copy_from_slice(&(256u32 << 20).to_be_bytes());
        let c = checksum(&bad[512..1536], 36);
        bad[512 + 36..512 + 40].copy_from_slice(&c.to_be_bytes());
        let p = write(dir.path(), "d.vhd", &bad);
        let e = VhdEvidence::open(&[p]).unwrap_err();
        assert!(matches!(e, EvidenceError::Truncated { .. }), "{e}");
    }

    #[test]
    fn differencing_chain() {
        let dir = tempfile::tempdir().unwrap();
        let bsz = BS as usize;
        let base: Vec<u8> = (0..2 * bsz).map(|i| (i % 253) as u8 + 1).collect();
        let base_img = sparse(
            TYPE_DYNAMIC,
            0xb0,
            None,
            &[
                Some((base[..bsz].to_vec(), vec![0xff])),
                Some((base[bsz..].to_vec(), vec![0xff])),
            ],
        );
        // Child: block 0 present with sectors 1 and 6 set; block 1 absent.
        let child_block = vec![0xccu8; bsz];
        let child_img = sparse(
            TYPE_DIFFERENCING,
            0xc0,
            Some((0xb0, "base.vhd")),
            &[Some((child_block, vec![0b0100_0010])), None],
        );
        // Grandchild: block 1 present with sector 0 set.
        let gc_img = sparse(
            TYPE_DIFFERENCING,
            0xd0,
            Some((0xc0, "child.vhd")),
            &[None, Some((vec![0xddu8; bsz], vec![0x80]))],
        );
        let bp = write(dir.path(), "base.vhd", &base_img);
        let cp = write(dir.path(), "child.vhd", &child_img);
        let gp = write(dir.path(), "gc.vhd", &gc_img);
        let mut want = base.clone();
        want[512..1024].fill(0xcc);
        want[3072..3584].fill(0xcc);
        let ev = VhdEvidence::open(&[cp.clone(), bp.clone()]).unwrap();
        assert_eq!(read_all(&ev), want);
        assert_eq!(ev.info().segments, vec![cp.clone(), bp.clone()]);
        // Unaligned reads across bit runs.
        let mut b = vec![0u8; 1000];
        ev.read_exact_at(300, &mut b).unwrap();
        assert_eq!(b, want[300..1300]);
        want[bsz..bsz + 512].fill(0xdd);
        let ev = VhdEvidence::open(&[gp.clone(), bp.clone(), cp.clone()]).unwrap();
        assert_eq!(read_all(&ev), want);
        assert_eq!(ev.info().segments.len(), 3);
        // Missing parent: named.
        let e = VhdEvidence::open(&[gp.clone(), bp.clone()]).unwrap_err();
        assert!(
            matches!(&e, EvidenceError::MissingSegment { expected, .. } if expected == "child.vhd"),
            "{e}"
        );
        // A file named like the parent but with another id.
        let other = sparse(TYPE_DYNAMIC, 0x11, None, &[None, None]);
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let op = write(&sub, "base.vhd", &other);
        let e = VhdEvidence::open(&[cp.clone(), op])
            .unwrap_err()
            .to_string();
        assert!(e.contains("differs from the recorded parent id"), "{e}");
        // A cycle: two differencing disks naming each other.
        let x = sparse(TYPE_DIFFERENCING, 0x21, Some((0x22, "y.vhd")), &[None]);
        let y = sparse(TYPE_DIFFERENCING, 0x22, Some((0x21, "x.vhd")), &[None]);
        let xp = write(dir.path(), "x.vhd", &x);
        let yp = write(dir.path(), "y.vhd", &y);
        let e = VhdEvidence::open(&[xp.clone(), yp])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle"), "{e}");
        // Its own parent.
        let s = sparse(TYPE_DIFFERENCING, 0x31, Some((0x31, "s.vhd")), &[None]);
        let sp = write(dir.path(), "s.vhd", &s);
        let e = VhdEvidence::open(&[sp.clone(), sp])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle"), "{e}");
    }
}
