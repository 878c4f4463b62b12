//! Volume systems: DOS/MBR partition tables (primary, extended and logical
//! partitions), GPT (primary header and entries, checked against the
//! backup), and images without a partition table.

use crate::{FsError, Limitation};
use serde::{Deserialize, Serialize};
use trawl_evidence::Evidence;

/// The partitioning found on an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeSystemKind {
    /// No partition table: the image is one volume.
    None,
    /// DOS / MBR partition table.
    Mbr,
    /// GUID partition table (behind a protective MBR).
    Gpt,
}

/// What a volume is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum VolumeKind {
    /// The whole image (no partition table).
    Whole,
    /// An MBR primary or logical partition with its type byte.
    Mbr {
        type_byte: u8,
        logical: bool,
        bootable: bool,
    },
    /// An MBR extended partition (a container of logical ones; not data).
    Extended { type_byte: u8 },
    /// A GPT partition with its type and unique GUIDs and attribute bits.
    Gpt {
        type_guid: String,
        guid: String,
        attributes: u64,
    },
}

/// One volume of the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Position in the table (MBR: 0-3 primary, 4.. logical in chain
    /// order; GPT: entry index).
    pub slot: u32,
    /// Image offset of the first byte.
    pub offset: u64,
    /// Length in bytes as the table gives it (it may pass the image end;
    /// that is a limitation, and reads stop at the end).
    pub length: u64,
    pub kind: VolumeKind,
    /// Human name of the type ("NTFS / exFAT (0x07)", "Linux filesystem",
    /// "EFI System", ...).
    pub type_name: String,
    /// GPT partition name; `None` for MBR partitions.
    pub label: Option<String>,
}

impl Volume {
    /// True for volumes that may hold a file system (not an extended
    /// container, not empty).
    pub fn is_data(&self) -> bool {
        !matches!(self.kind, VolumeKind::Extended { .. }) && self.length > 0
    }
}

/// The volumes of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSystem {
    pub kind: VolumeSystemKind,
    pub volumes: Vec<Volume>,
    pub limitations: Vec<Limitation>,
}

const SECTOR: u64 = 512;
/// Logical partitions followed at most (a cycle in the EBR chain stops here
/// at the latest; visited EBRs are tracked too).
const MAX_LOGICAL: usize = 4096;
/// GPT entries read at most (the standard is 128).
const MAX_GPT_ENTRIES: u32 = 16384;

/// Finds the volumes of `img`. An image whose first sector is a file
/// system's boot sector, or has no valid partition table, is one volume.
///
/// # Errors
/// I/O errors only; damaged tables become limitations.
pub fn list_volumes(img: &dyn Evidence) -> Result<VolumeSystem, FsError> {
    let size = img.size();
    let whole = || VolumeSystem {
        kind: VolumeSystemKind::None,
        volumes: vec![Volume {
            slot: 0,
            offset: 0,
            length: size,
            kind: VolumeKind::Whole,
            type_name: "whole image".into(),
            label: None,
        }],
        limitations: Vec::new(),
    };
    if size < SECTOR {
        return Ok(whole());
    }
    let mut mbr = [0u8; 512];
    img.read_exact_at(0, &mut mbr)?;
    if mbr[510..512] != [0x55, 0xAA] || looks_like_boot_sector(&mbr) {
        return Ok(whole());
    }
    let entries = parse_table(&mbr);
    if !entries.iter().all(|e| e.plausible()) || entries.iter().all(|e| e.is_empty()) {
        return Ok(whole());
    }
    // GPT: a protective MBR entry of type 0xEE.
    if entries.iter().any(|e| e.type_byte == 0xEE) {
        let mut lims = Vec::new();
        for &ss in &[512u64, 4096] {
            if let Some(vs) = gpt(img, ss, &mut lims)? {
                return Ok(vs);
            }
        }
        lims.push(Limitation {
            volume_offset: 0,
            structure: "GPT header".into(),
            offset: SECTOR,
            what: "protective MBR present but no valid GPT header (primary or backup)".into(),
        });
        let mut vs = whole();
        vs.limitations = lims;
        return Ok(vs);
    }
    Ok(dos(img, &entries))
}

/// Sector 0 is a volume boot record rather than an MBR: NTFS, exFAT, or a
/// FAT BPB with a plausible geometry.
fn looks_like_boot_sector(s: &[u8; 512]) -> bool {
    if &s[3..11] == b"NTFS    " || &s[3..11] == b"EXFAT   " {
        return true;
    }
    let bps = u16::from_le_bytes([s[11], s[12]]);
    let spc = s[13];
    let reserved = u16::from_le_bytes([s[14], s[15]]);
    let fats = s[16];
    let jump = s[0] == 0xEB || s[0] == 0xE9;
    jump && matches!(bps, 512 | 1024 | 2048 | 4096)
        && spc.is_power_of_two()
        && reserved > 0
        && (1..=4).contains(&fats)
        && (&s[54..59] == b"FAT12"
            || &s[54..59] == b"FAT16"
            || &s[82..87] == b"FAT32"
            || &s[54..57] == b"FAT")
}

#[derive(Clone, Copy, Debug)]
struct DosEntry {
    boot: u8,
    type_byte: u8,
    start: u32,
    count: u32,
}

impl DosEntry {
    fn is_empty(&self) -> bool {
        self.type_byte == 0 || self.count == 0
    }
    fn plausible(&self) -> bool {
        self.is_empty() || ((self.boot == 0 || self.boot == 0x80) && self.start > 0)
    }
    fn extended(&self) -> bool {
        matches!(self.type_byte, 0x05 | 0x0F | 0x85)
    }
}

fn parse_table(sector: &[u8]) -> [DosEntry; 4] {
    std::array::from_fn(|i| {
        let e = &sector[446 + 16 * i..446 + 16 * (i + 1)];
        DosEntry {
            boot: e[0],
            type_byte: e[4],
            start: u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
            count: u32::from_le_bytes([e[12], e[13], e[14], e[15]]),
        }
    })
}

fn dos(img: &dyn Evidence, primary: &[DosEntry; 4]) -> VolumeSystem {
    let size = img.size();
    let mut vols = Vec::new();
    let mut lims = Vec::new();
    let past_end = |v: &Volume, lims: &mut Vec<Limitation>| {
        if v.offset.saturating_add(v.length) > size {
            lims.push(Limitation {
                volume_offset: v.offset,
                structure: "partition".into(),
                offset: v.offset,
                what: format!(
                    "partition {} ({} bytes at offset {}) runs past the image end ({} bytes)",
                    v.slot, v.length, v.offset, size
                ),
            });
        }
    };
    let mut logical_slot = 4u32;
    for (i, e) in primary.iter().enumerate() {
        if e.is_empty() {
            continue;
        }
        let offset = u64::from(e.start) * SECTOR;
        let length = u64::from(e.count) * SECTOR;
        if e.extended() {
            let v = Volume {
                slot: i as u32,
                offset,
                length,
                kind: VolumeKind::Extended {
                    type_byte: e.type_byte,
                },
                type_name: format!("{} (0x{:02x})", dos_type_name(e.type_byte), e.type_byte),
                label: None,
            };
            past_end(&v, &mut lims);
            vols.push(v);
            walk_ebr(img, e.start, &mut vols, &mut lims, &mut logical_slot);
        } else {
            let v = Volume {
                slot: i as u32,
                offset,
                length,
                kind: VolumeKind::Mbr {
                    type_byte: e.type_byte,
                    logical: false,
                    bootable: e.boot == 0x80,
                },
                type_name: format!("{} (0x{:02x})", dos_type_name(e.type_byte), e.type_byte),
                label: None,
            };
            past_end(&v, &mut lims);
            vols.push(v);
        }
    }
    for v in &vols {
        if matches!(v.kind, VolumeKind::Mbr { logical: true, .. }) {
            past_end(v, &mut lims);
        }
    }
    VolumeSystem {
        kind: VolumeSystemKind::Mbr,
        volumes: vols,
        limitations: lims,
    }
}

/// Follows the chain of extended boot records. Logical partitions start
/// relative to their EBR; the next EBR relative to the extended partition's
/// start.
fn walk_ebr(
    img: &dyn Evidence,
    ext_start: u32,
    vols: &mut Vec<Volume>,
    lims: &mut Vec<Limitation>,
    slot: &mut u32,
) {
    let mut seen = std::collections::HashSet::new();
    let mut ebr = u64::from(ext_start);
    for _ in 0..MAX_LOGICAL {
        if !seen.insert(ebr) {
            lims.push(Limitation {
                volume_offset: u64::from(ext_start) * SECTOR,
                structure: "extended boot record".into(),
                offset: ebr * SECTOR,
                what: "the chain of extended boot records loops back here".into(),
            });
            return;
        }
        let mut s = [0u8; 512];
        let ok = ebr.saturating_mul(SECTOR).saturating_add(SECTOR) <= img.size()
            && img.read_exact_at(ebr * SECTOR, &mut s).is_ok();
        if !ok || s[510..512] != [0x55, 0xAA] {
            lims.push(Limitation {
                volume_offset: u64::from(ext_start) * SECTOR,
                structure: "extended boot record".into(),
                offset: ebr * SECTOR,
                what: if ok {
                    "no 0x55AA signature".into()
                } else {
                    "past the image end or unreadable".into()
                },
            });
            return;
        }
        let t = parse_table(&s);
        let mut next = None;
        // Linux and Windows write one logical partition and one link per
        // EBR, but other tools fill more slots: all four are read.
        for e in t.iter() {
            if e.is_empty() {
                continue;
            }
            if e.extended() {
                next = Some(u64::from(ext_start) + u64::from(e.start));
            } else {
                vols.push(Volume {
                    slot: *slot,
                    offset: (ebr + u64::from(e.start)).saturating_mul(SECTOR),
                    length: u64::from(e.count) * SECTOR,
                    kind: VolumeKind::Mbr {
                        type_byte: e.type_byte,
                        logical: true,
                        bootable: e.boot == 0x80,
                    },
                    type_name: format!("{} (0x{:02x})", dos_type_name(e.type_byte), e.type_byte),
                    label: None,
                });
                *slot += 1;
            }
        }
        match next {
            Some(n) => ebr = n,
            None => return,
        }
    }
    lims.push(Limitation {
        volume_offset: u64::from(ext_start) * SECTOR,
        structure: "extended boot record".into(),
        offset: ebr * SECTOR,
        what: format!("more than {MAX_LOGICAL} logical partitions; the rest is not listed"),
    });
}

fn dos_type_name(t: u8) -> &'static str {
    match t {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0E => "FAT16",
        0x05 | 0x0F => "DOS extended",
        0x85 => "Linux extended",
        0x07 => "NTFS / exFAT",
        0x0B | 0x0C => "FAT32",
        0x11 | 0x14 | 0x16 | 0x1B | 0x1C | 0x1E => "hidden FAT",
        0x17 => "hidden NTFS",
        0x27 => "Windows recovery",
        0x42 => "Windows dynamic",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x8E => "Linux LVM",
        0xA5 => "FreeBSD",
        0xA6 => "OpenBSD",
        0xA8 => "Mac OS X",
        0xAF => "HFS / HFS+",
        0xEE => "GPT protective",
        0xEF => "EFI System",
        0xFD => "Linux RAID",
        _ => "unknown",
    }
}

struct GptHeader {
    current: u64,
    backup: u64,
    first_usable: u64,
    last_usable: u64,
    entries_lba: u64,
    count: u32,
    entry_size: u32,
    entries_crc: u32,
    disk_guid: [u8; 16],
}

fn read_gpt_header(
    img: &dyn Evidence,
    lba: u64,
    ss: u64,
) -> Result<Result<GptHeader, String>, FsError> {
    let off = lba.saturating_mul(ss);
    if off.saturating_add(ss) > img.size() {
        return Ok(Err("past the image end".into()));
    }
    let mut s = vec![0u8; ss as usize];
    img.read_exact_at(off, &mut s)?;
    if &s[0..8] != b"EFI PART" {
        return Ok(Err("no \"EFI PART\" signature".into()));
    }
    let hsize = u32::from_le_bytes(s[12..16].try_into().unwrap_or_default()) as usize;
    if !(92..=ss as usize).contains(&hsize) {
        return Ok(Err(format!("header size {hsize} out of range")));
    }
    let stored = u32::from_le_bytes(s[16..20].try_into().unwrap_or_default());
    let mut h = s[..hsize].to_vec();
    h[16..20].fill(0);
    let crc = crc32fast::hash(&h);
    if crc != stored {
        return Ok(Err(format!(
            "header CRC32 {stored:08x} stored, {crc:08x} computed"
        )));
    }
    let u64at = |o: usize| u64::from_le_bytes(s[o..o + 8].try_into().unwrap_or_default());
    let u32at = |o: usize| u32::from_le_bytes(s[o..o + 4].try_into().unwrap_or_default());
    let mut disk_guid = [0u8; 16];
    disk_guid.copy_from_slice(&s[56..72]);
    Ok(Ok(GptHeader {
        current: u64at(24),
        backup: u64at(32),
        first_usable: u64at(40),
        last_usable: u64at(48),
        disk_guid,
        entries_lba: u64at(72),
        count: u32at(80),
        entry_size: u32at(84),
        entries_crc: u32at(88),
    }))
}

fn read_gpt_entries(
    img: &dyn Evidence,
    h: &GptHeader,
    ss: u64,
) -> Result<Result<Vec<u8>, String>, FsError> {
    if h.count > MAX_GPT_ENTRIES
        || !(128..=4096).contains(&h.entry_size)
        || !h.entry_size.is_multiple_of(8)
    {
        return Ok(Err(format!(
            "{} entries of {} bytes: out of range",
            h.count, h.entry_size
        )));
    }
    let len = u64::from(h.count) * u64::from(h.entry_size);
    let off = h.entries_lba.saturating_mul(ss);
    if off.saturating_add(len) > img.size() {
        return Ok(Err(format!(
            "entry array at LBA {} passes the image end",
            h.entries_lba
        )));
    }
    let mut v = vec![0u8; len as usize];
    img.read_exact_at(off, &mut v)?;
    let crc = crc32fast::hash(&v);
    if crc != h.entries_crc {
        return Ok(Err(format!(
            "entry array CRC32 {:08x} stored, {crc:08x} computed",
            h.entries_crc
        )));
    }
    Ok(Ok(v))
}

fn gpt(
    img: &dyn Evidence,
    ss: u64,
    lims: &mut Vec<Limitation>,
) -> Result<Option<VolumeSystem>, FsError> {
    if img.size() < 3 * ss {
        return Ok(None);
    }
    let last_lba = img.size() / ss - 1;
    let primary = read_gpt_header(img, 1, ss)?;
    let (hdr, entries, mut local) = match primary {
        Ok(ph) => match read_gpt_entries(img, &ph, ss)? {
            Ok(e) => (ph, e, Vec::new()),
            Err(why) => {
                // Primary entries damaged: try the backup.
                let at = ph.entries_lba.saturating_mul(ss);
                let Some((h, e)) = backup(img, last_lba, ss)? else {
                    lims.push(lim(ss, "GPT entry array", at, &why));
                    return Ok(None);
                };
                (
                    h,
                    e,
                    vec![lim(
                        ss,
                        "GPT primary entry array",
                        at,
                        &format!("{why}; the backup is used"),
                    )],
                )
            }
        },
        Err(why) => {
            let Some((h, e)) = backup(img, last_lba, ss)? else {
                if ss == 512 {
                    lims.push(lim(ss, "GPT primary header", ss, &why));
                }
                return Ok(None);
            };
            (
                h,
                e,
                vec![lim(
                    ss,
                    "GPT primary header",
                    ss,
                    &format!("{why}; the backup header is used"),
                )],
            )
        }
    };
    // Cross-check with the backup when the primary was used.
    if hdr.current == 1 {
        match read_gpt_header(img, hdr.backup, ss)? {
            Err(why) => local.push(lim(
                ss,
                "GPT backup header",
                hdr.backup.saturating_mul(ss),
                &format!(
                    "{why} (the primary header says it is at LBA {})",
                    hdr.backup
                ),
            )),
            Ok(b) => {
                if b.disk_guid != hdr.disk_guid
                    || b.count != hdr.count
                    || b.entries_crc != hdr.entries_crc
                    || b.first_usable != hdr.first_usable
                    || b.last_usable != hdr.last_usable
                {
                    local.push(lim(
                        ss,
                        "GPT backup header",
                        hdr.backup.saturating_mul(ss),
                        "differs from the primary header (disk GUID, entry count, entry CRC or usable range)",
                    ));
                }
            }
        }
        if hdr.backup != last_lba {
            local.push(lim(
                ss,
                "GPT primary header",
                ss,
                &format!(
                    "backup header LBA {} is not the image's last LBA {last_lba} (image truncated or extended)",
                    hdr.backup
                ),
            ));
        }
    }
    let mut vols = Vec::new();
    for (i, e) in entries.chunks_exact(hdr.entry_size as usize).enumerate() {
        let type_guid: [u8; 16] = e[0..16].try_into().unwrap_or_default();
        if type_guid == [0; 16] {
            continue;
        }
        let first = u64::from_le_bytes(e[32..40].try_into().unwrap_or_default());
        let last = u64::from_le_bytes(e[40..48].try_into().unwrap_or_default());
        let attributes = u64::from_le_bytes(e[48..56].try_into().unwrap_or_default());
        let name: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        let name = String::from_utf16_lossy(&name);
        if last < first {
            local.push(lim(
                ss,
                "GPT entry",
                hdr.entries_lba
                    .saturating_mul(ss)
                    .saturating_add(i as u64 * u64::from(hdr.entry_size)),
                &format!("entry {i}: last LBA {last} before first LBA {first}"),
            ));
            continue;
        }
        let tg = guid(&type_guid);
        let v = Volume {
            slot: i as u32,
            offset: first.saturating_mul(ss),
            length: (last - first + 1).saturating_mul(ss),
            type_name: gpt_type_name(&tg).to_string(),
            kind: VolumeKind::Gpt {
                type_guid: tg,
                guid: guid(e[16..32].try_into().unwrap_or(&[0; 16])),
                attributes,
            },
            label: (!name.is_empty()).then_some(name),
        };
        if v.offset.saturating_add(v.length) > img.size() {
            local.push(Limitation {
                volume_offset: v.offset,
                structure: "partition".into(),
                offset: v.offset,
                what: format!(
                    "GPT partition {i} ({} bytes at offset {}) runs past the image end ({} bytes)",
                    v.length,
                    v.offset,
                    img.size()
                ),
            });
        }
        vols.push(v);
    }
    lims.clear();
    Ok(Some(VolumeSystem {
        kind: VolumeSystemKind::Gpt,
        volumes: vols,
        limitations: local,
    }))
}

fn backup(
    img: &dyn Evidence,
    last_lba: u64,
    ss: u64,
) -> Result<Option<(GptHeader, Vec<u8>)>, FsError> {
    let Ok(h) = read_gpt_header(img, last_lba, ss)? else {
        return Ok(None);
    };
    let Ok(e) = read_gpt_entries(img, &h, ss)? else {
        return Ok(None);
    };
    Ok(Some((h, e)))
}

fn lim(_ss: u64, structure: &str, offset: u64, what: &str) -> Limitation {
    Limitation {
        volume_offset: 0,
        structure: structure.into(),
        offset,
        what: what.into(),
    }
}

/// A GUID in its textual form (mixed-endian, as GPT stores it).
fn guid(g: &[u8; 16]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

fn gpt_type_name(g: &str) -> &'static str {
    match g {
        "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" => "EFI System",
        "e3c9e316-0b5c-4db8-817d-f92df00215ae" => "Microsoft reserved",
        "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7" => "Microsoft basic data",
        "de94bba4-06d1-4d40-a16a-bfd50179d6ac" => "Windows recovery",
        "0fc63daf-8483-4772-8e79-3d69d8477de4" => "Linux filesystem",
        "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f" => "Linux swap",
        "e6d6d379-f507-44c2-a23c-238f2a3df928" => "Linux LVM",
        "a19d880f-05fc-4d3b-a006-743f0f84911e" => "Linux RAID",
        "21686148-6449-6e6f-744e-656564454649" => "BIOS boot",
        "48465300-0000-11aa-aa11-00306543ecac" => "Apple HFS+",
        "7c3457ef-0000-11aa-aa11-00306543ecac" => "Apple APFS",
        _ => "unknown",
    }
}
