//! FAT12, FAT16 and FAT32, listed as The Sleuth Kit (4.11) lists them.
//!
//! * The FAT type is decided by the cluster count (Microsoft's rule, as TSK
//!   does): fewer than 4085 clusters is FAT12, fewer than 65525 FAT16, else
//!   FAT32. The boot sector's type string is ignored. When sector 0 has no
//!   boot signature at all, the FAT32 backup boot sector (sector 6) is used.
//! * `inode` is TSK's directory-entry address: the root is 2, and every
//!   32-byte slot of the data area (FAT12/16 root directory included) is
//!   numbered `(sector - first_data_sector) * (sector_size / 32) + 3 + slot`.
//!   The virtual files follow the last slot of the image: `$MBR`, `$FAT1`,
//!   `$FAT2` (two FATs only) and `$OrphanFiles`.
//! * Directory entries are parsed as TSK's `fatxxfs_dent_parse_buf` does:
//!   every slot is tested (an end-of-directory marker does not stop the
//!   scan), long-name pieces are gathered until an 8.3 entry consumes them
//!   (TSK 4.11 restarts a sequence on a new "first" piece or a checksum
//!   change, and does not compare the checksum with the 8.3 name: neither do
//!   we, so the listing matches fiwalk), 8.3 names honour the NT lower-case
//!   flags, a deleted entry's first character is shown as `_`, bytes above
//!   0x7e in 8.3 names become `^`. Long names are UCS-2, decoded to UTF-8 with
//!   U+FFFD for unpaired surrogates (TSK writes `^`).
//! * An entry is deleted when its sector is unallocated or its name starts
//!   with 0xE5. Deleted directories are walked too. `.` and `..` are not
//!   listed.
//! * Content: allocated entries follow their cluster chain, cut at the size
//!   (a chain shorter than the size gives that much content only: TSK's
//!   filler run ends icat's output there, so the content's size may be
//!   below the entry's); deleted entries use TSK's recovery rule: from the
//!   start cluster, the next unallocated clusters (allocated ones skipped)
//!   until the size is covered; when the start cluster is allocated, or the
//!   clusters run out, only the start cluster. Directory sizes
//!   are computed as TSK does (allocated: clusters in the chain; deleted:
//!   one cluster when the first is free, else 0).
//! * Times are the FAT local times taken as UTC (TSK with `TZ` unset, as
//!   `fls -m` prints them): mtime to 2 s, crtime with 10 ms, atime the date.
//! * Orphans (`$OrphanFiles/...`): as TSK's orphan hunt, 8.3 entries found in
//!   unallocated clusters that no name of the walk reaches; the contents of
//!   orphan directories are listed below them and not again at the top.
//!
//! Deliberate differences from TSK: a directory whose first cluster was
//! already walked is not walked again (a [`Limitation`]; TSK would list it
//! again under each name, or loop until its depth limit); directories are
//! cut at 64 MiB and the walk at 128 levels; volumes with a sector size TSK
//! refuses are still listed when the geometry is sane.

use crate::unalloc::FreeRanges;
use crate::{
    Alloc, Content, Entry, FileSystemListing, FileType, FsError, FsKind, Limitation, Run, Times,
    Timestamp, VolumeReader,
};
use std::collections::{HashMap, HashSet};

const MAX_DEPTH: usize = 128;
/// Times one directory's clusters may be walked (under different names).
const MAX_DIR_VISITS: u32 = 8;
const MAX_DIR_BYTES: u64 = 64 << 20;
const MAX_ENTRIES: usize = 20_000_000;
/// Bytes read at once while hunting orphans in free clusters.
const SCAN_CHUNK: u64 = 4 << 20;

const ATTR_RO: u8 = 0x01;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_LFN: u8 = 0x0f;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    F12,
    F16,
    F32,
}

/// The BIOS parameter block fields TSK uses.
#[derive(Clone, Debug)]
struct Bpb {
    ssize: u64,
    csize: u64,
    reserved: u64,
    numfat: u64,
    sectors: u64,
    sectperfat: u64,
    rootclust: u64,
    label16: [u8; 11],
    label32: [u8; 11],
    ty: Ty,
    firstdatasect: u64,
    firstclustsect: u64,
    clustcnt: u64,
}

fn u16le(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 2)
        .map_or(0, |s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32le(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 4).map_or(0, |s| {
        u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    })
}

fn parse_bpb(b: &[u8]) -> Result<Bpb, String> {
    if b.len() < 512 {
        return Err("boot sector shorter than 512 bytes".into());
    }
    if b[510] != 0x55 || b[511] != 0xaa {
        return Err("no 0x55AA boot signature".into());
    }
    if &b[3..11] == b"EXFAT   " || &b[3..11] == b"NTFS    " {
        return Err("not a FAT boot sector".into());
    }
    let ssize = u16le(b, 11);
    if !matches!(ssize, 512 | 1024 | 2048 | 4096) {
        return Err(format!("sector size {ssize}"));
    }
    let csize = u64::from(b[13]);
    if !csize.is_power_of_two() || csize > 128 {
        return Err(format!("cluster size {csize} sectors"));
    }
    let numfat = u64::from(b[16]);
    if numfat == 0 || numfat > 8 {
        return Err(format!("{numfat} FATs"));
    }
    let numroot = u16le(b, 17);
    let mut sectors = u16le(b, 19);
    if sectors == 0 {
        sectors = u32le(b, 32);
    }
    let mut sectperfat = u16le(b, 22);
    if sectperfat == 0 {
        sectperfat = u32le(b, 36);
    }
    if sectperfat == 0 {
        return Err("0 sectors per FAT".into());
    }
    let reserved = u16le(b, 14);
    if reserved == 0 || reserved > sectors {
        return Err(format!("first FAT sector {reserved}"));
    }
    let firstdatasect = reserved + sectperfat * numfat;
    let firstclustsect = firstdatasect + (numroot * 32).div_ceil(ssize);
    if firstclustsect > sectors {
        return Err(format!(
            "data area starts at sector {firstclustsect}, past the {sectors} sectors of the file system"
        ));
    }
    let clustcnt = (sectors - firstclustsect) / csize;
    let ty = if clustcnt < 4085 {
        Ty::F12
    } else if clustcnt < 65525 {
        Ty::F16
    } else {
        Ty::F32
    };
    if ty == Ty::F32 && numroot != 0 {
        return Err("FAT32 with root directory entries".into());
    }
    if ty != Ty::F32 && numroot == 0 {
        return Err("FAT12/16 without root directory entries".into());
    }
    let mut label16 = [0u8; 11];
    label16.copy_from_slice(&b[43..54]);
    let mut label32 = [0u8; 11];
    label32.copy_from_slice(&b[71..82]);
    Ok(Bpb {
        ssize,
        csize,
        reserved,
        numfat,
        sectors,
        sectperfat,
        rootclust: u32le(b, 44),
        label16,
        label32,
        ty,
        firstdatasect,
        firstclustsect,
        clustcnt,
    })
}

/// The boot sector to use: sector 0, or the FAT32 backup at sector 6 when
/// sector 0 has no signature at all (TSK's rule).
fn boot_candidates(head: &[u8]) -> Vec<(u64, &[u8])> {
    let mut v = Vec::new();
    if let Some(s0) = head.get(..512) {
        v.push((0, s0));
        if s0[510] == 0 && s0[511] == 0 {
            // The backup is at sector 6 of whatever sector size; try the
            // usual ones.
            for ss in [512usize, 1024, 2048, 4096] {
                if let Some(s6) = head.get(6 * ss..6 * ss + 512) {
                    v.push(((6 * ss) as u64, s6));
                }
            }
        }
    }
    v
}

fn find_bpb(head: &[u8]) -> Result<(u64, Bpb), String> {
    let mut err = "no boot sector".to_string();
    for (off, s) in boot_candidates(head) {
        match parse_bpb(s) {
            Ok(b) => {
                // A backup is only believed for FAT32 at its own sector 6.
                if off != 0 && (b.ty != Ty::F32 || off != 6 * b.ssize) {
                    continue;
                }
                return Ok((off, b));
            }
            Err(e) => {
                if off == 0 {
                    err = e;
                }
            }
        }
    }
    Err(err)
}

/// True when `head` (the volume's first bytes) holds a FAT boot sector with
/// a sane BIOS parameter block.
pub fn probe(head: &[u8]) -> bool {
    find_bpb(head).is_ok()
}

/// Lists the FAT file system of `r`.
///
/// # Errors
/// A boot sector whose parameters are unusable; I/O errors.
pub fn list(r: &VolumeReader<'_>) -> Result<FileSystemListing, FsError> {
    let mut head = vec![0u8; 8 * 4096];
    let n = r.read_at(0, &mut head)?;
    head.truncate(n);
    let (boot_off, bpb) =
        find_bpb(&head).map_err(|e| FsError::corrupt("FAT boot sector", r.base(), e))?;
    let mut fs = Fat::new(r, bpb)?;
    if boot_off != 0 {
        fs.lim(
            "FAT boot sector",
            0,
            format!("sector 0 has no boot signature; the backup boot sector at volume offset {boot_off} was used"),
        );
    }
    fs.run()?;
    let label = fs.label();
    let unallocated = fs.unallocated();
    let b = &fs.b;
    Ok(FileSystemListing {
        partition_offset: r.base(),
        fs: match b.ty {
            Ty::F12 => FsKind::Fat12,
            Ty::F16 => FsKind::Fat16,
            Ty::F32 => FsKind::Fat32,
        },
        label,
        block_size: b.csize * b.ssize,
        size: b.sectors.saturating_mul(b.ssize),
        entries: std::mem::take(&mut fs.entries),
        limitations: std::mem::take(&mut fs.lims),
        unallocated,
    })
}

/// One name found in a directory.
struct Name {
    name: String,
    inum: u64,
    /// Name allocated (sector allocated and no 0xE5).
    alloc: bool,
    de: [u8; 32],
    /// Volume sector of the entry.
    sect: u64,
}

/// Where a file's content is, as TSK's `fatfs_make_data_runs` finds it.
enum Runs {
    /// Sector runs (start sector, sector count).
    Ok(Vec<(u64, u64)>),
    /// TSK cannot load the content (and fiwalk prints no hash).
    Err(String),
}

struct Fat<'a, 'r> {
    r: &'a VolumeReader<'r>,
    b: Bpb,
    mask: u64,
    last_block: u64,
    dps: u64,
    last_inum: u64,
    fat: Vec<u8>,
    entries: Vec<Entry>,
    lims: Vec<Limitation>,
    named: HashSet<u64>,
    dirs_seen: HashMap<u64, u32>,
    stack: Vec<u64>,
    root_label: Option<String>,
    capped: bool,
}

impl<'a, 'r> Fat<'a, 'r> {
    fn new(r: &'a VolumeReader<'r>, b: Bpb) -> Result<Self, FsError> {
        let mask = match b.ty {
            Ty::F12 => 0xfff,
            Ty::F16 => 0xffff,
            Ty::F32 => 0x0fff_ffff,
        };
        let last_block = b.sectors - 1;
        let in_image = r.len() / b.ssize;
        let last_block_act = if in_image < b.sectors {
            in_image.saturating_sub(1)
        } else {
            last_block
        };
        let dps = b.ssize / 32;
        let numvirt = b.numfat + 2;
        let last_inum =
            ((last_block_act + 1).saturating_sub(b.firstdatasect) * dps + 3 - 1) + numvirt;
        // FAT1, only as much as the clusters need.
        let lastclust = b.clustcnt + 1;
        let need = match b.ty {
            Ty::F12 => (lastclust + 2) * 3 / 2 + 2,
            Ty::F16 => (lastclust + 2) * 2,
            Ty::F32 => (lastclust + 2) * 4,
        };
        let fat_len = need.min(b.sectperfat * b.ssize);
        let fat_off = b.reserved * b.ssize;
        let avail = r.len().saturating_sub(fat_off).min(fat_len);
        let mut fat = r.read_vec(fat_off, avail, "FAT")?;
        fat.truncate(avail as usize);
        let mut me = Self {
            r,
            b,
            mask,
            last_block,
            dps,
            last_inum,
            fat,
            entries: Vec::new(),
            lims: Vec::new(),
            named: HashSet::new(),
            dirs_seen: HashMap::new(),
            stack: vec![2],
            root_label: None,
            capped: false,
        };
        if avail < fat_len {
            me.lim(
                "FAT",
                fat_off + avail,
                format!("the FAT is cut by the image end ({avail} of {fat_len} bytes)"),
            );
        }
        Ok(me)
    }

    fn lim(&mut self, structure: &str, vol_off: u64, what: impl Into<String>) {
        if self.lims.len() < 10_000 {
            self.lims.push(Limitation {
                volume_offset: self.r.base(),
                structure: structure.into(),
                offset: self.r.image_offset(vol_off),
                what: what.into(),
            });
        }
    }

    fn lastclust(&self) -> u64 {
        self.b.clustcnt + 1
    }

    /// FAT entry of cluster `c` (TSK's `fatfs_getFAT`); `None` when out of
    /// range or unreadable.
    fn get_fat(&self, c: u64) -> Option<u64> {
        let b = &self.b;
        if c > self.lastclust() {
            if c == self.lastclust() + 1
                && b.firstclustsect + b.csize * b.clustcnt - 1 != self.last_block
            {
                return Some(0);
            }
            return None;
        }
        let c = usize::try_from(c).ok()?;
        match b.ty {
            Ty::F12 => {
                let o = c + c / 2;
                let v = u16::from_le_bytes([*self.fat.get(o)?, *self.fat.get(o + 1)?]);
                Some(u64::from(if c & 1 == 1 { v >> 4 } else { v & 0xfff }))
            }
            Ty::F16 => {
                let o = c * 2;
                Some(u64::from(u16::from_le_bytes([
                    *self.fat.get(o)?,
                    *self.fat.get(o + 1)?,
                ])))
            }
            Ty::F32 => {
                let o = c * 4;
                let s = self.fat.get(o..o + 4)?;
                Some(u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])) & 0x0fff_ffff)
            }
        }
    }

    fn is_eof(&self, v: u64) -> bool {
        v >= (0x0fff_fff8 & self.mask) && v <= 0x0fff_ffff
    }

    /// First sector of cluster `c` (`None` below cluster 2's sector, where
    /// TSK's unsigned arithmetic wraps to a huge value).
    fn clust_sect(&self, c: u64) -> Option<u64> {
        let c = c & self.mask;
        let s = i128::from(self.b.firstclustsect) + (i128::from(c) - 2) * i128::from(self.b.csize);
        u64::try_from(s).ok()
    }

    fn sect_clust(&self, s: u64) -> u64 {
        2 + (s.saturating_sub(self.b.firstclustsect)) / self.b.csize
    }

    /// Cluster allocation (TSK: FAT entry non-zero); `None` on error.
    fn clust_alloc(&self, c: u64) -> Option<bool> {
        self.get_fat(c).map(|v| v != 0)
    }

    /// Sector allocation as TSK's `fatfs_is_sectalloc`.
    fn sect_alloc(&self, s: u64) -> Option<bool> {
        let b = &self.b;
        if s < b.firstclustsect {
            return Some(true);
        }
        if s >= b.firstclustsect + b.csize * b.clustcnt {
            return Some(false);
        }
        self.clust_alloc(self.sect_clust(s))
    }

    /// Free space as TSK's block walk finds it (`blkls -A`): the clusters
    /// whose FAT entry is 0, and the sectors after the last cluster (which
    /// no cluster covers: TSK counts them unallocated). The reserved area,
    /// the FATs and the FAT12/16 root directory are allocated. An unreadable
    /// FAT entry ends the cluster scan (a limitation).
    fn unallocated(&mut self) -> Vec<(u64, u64)> {
        let b = self.b.clone();
        let cb = self.cluster_bytes();
        let mut out = FreeRanges::new(self.r, b.sectors.saturating_mul(b.ssize));
        for c in 2..=self.lastclust() {
            match self.get_fat(c) {
                Some(0) => {
                    if let Some(s) = self.clust_sect(c) {
                        out.free(s * b.ssize, cb);
                    }
                }
                Some(_) => {}
                None => {
                    let at = b.reserved * b.ssize + self.fat_entry_offset(c);
                    self.lim(
                        "FAT",
                        at,
                        format!(
                            "entry of cluster {c} unreadable; clusters from it on are not listed as unallocated"
                        ),
                    );
                    break;
                }
            }
        }
        let tail = b.firstclustsect + b.csize * b.clustcnt;
        out.free(tail * b.ssize, (b.sectors - tail) * b.ssize);
        out.done()
    }

    /// Byte offset of cluster `c`'s entry in a FAT.
    fn fat_entry_offset(&self, c: u64) -> u64 {
        match self.b.ty {
            Ty::F12 => c + c / 2,
            Ty::F16 => c * 2,
            Ty::F32 => c * 4,
        }
    }

    fn sect_inode(&self, s: u64) -> u64 {
        s.saturating_sub(self.b.firstdatasect)
            .saturating_mul(self.dps)
            .saturating_add(3)
    }

    fn cluster_bytes(&self) -> u64 {
        self.b.csize * self.b.ssize
    }

    /// Number of clusters in the chain from `c` (TSK's directory size rule:
    /// stops at the first cluster seen twice).
    fn chain_len(&self, mut c: u64) -> u64 {
        let mut seen = HashSet::new();
        let mut n = 0u64;
        while c != 0 && !self.is_eof(c) {
            if !seen.insert(c) || n > self.lastclust() {
                break;
            }
            n += 1;
            match self.get_fat(c) {
                Some(v) => c = v,
                None => break,
            }
        }
        n
    }

    /// TSK's `fatfs_make_data_runs` for an entry starting at cluster `clust`
    /// of `size` bytes; `alloc` is the metadata allocation state.
    fn make_runs(&mut self, clust: u64, size: u64, alloc: bool, what: &str, at: u64) -> Runs {
        let cb = self.cluster_bytes();
        let csize = self.b.csize;
        if clust > self.lastclust() && !self.is_eof(clust) {
            return Runs::Err(format!("starting cluster {clust} past the last cluster"));
        }
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let push = |runs: &mut Vec<(u64, u64)>, s: u64| match runs.last_mut() {
            Some(l) if l.0 + l.1 == s => l.1 += csize,
            _ => runs.push((s, csize)),
        };
        if alloc {
            let mut remain = size.div_ceil(cb).saturating_mul(cb);
            let mut seen = HashSet::new();
            let mut c = clust;
            while c & self.mask > 0 && remain > 0 && !self.is_eof(c) {
                let s = match self.clust_sect(c) {
                    Some(s) if s + csize - 1 <= self.last_block => s,
                    _ => {
                        let m = format!("cluster {c} of the chain is past the file system end");
                        self.lim(what, at, m.clone());
                        return Runs::Err(m);
                    }
                };
                push(&mut runs, s);
                remain = remain.saturating_sub(cb);
                if remain > 0 {
                    let Some(n) = self.get_fat(c) else {
                        let m = format!("FAT entry of cluster {c} unreadable");
                        self.lim(what, at, m.clone());
                        return Runs::Err(m);
                    };
                    c = n;
                    if !seen.insert(c) {
                        self.lim(
                            what,
                            at,
                            format!("cluster chain loops back to cluster {c}; cut there"),
                        );
                        break;
                    }
                }
            }
            if remain > 0 && c & self.mask > 0 && self.is_eof(c) {
                // Chain shorter than the size: TSK reads zeros (filler).
            }
            return Runs::Ok(runs);
        }
        // Recovery of a deleted entry.
        let Some(mut sbase) = self.clust_sect(clust).filter(|&s| s <= self.last_block) else {
            return Runs::Err(format!(
                "starting cluster {clust} of a deleted entry is outside the file system"
            ));
        };
        let mut can = self.clust_alloc(clust) == Some(false);
        let mut c = clust;
        let mut remain = size;
        while remain > 0 && can {
            match self.clust_sect(c) {
                Some(s) if s + csize - 1 <= self.last_block => sbase = s,
                _ => {
                    can = false;
                    sbase = self.clust_sect(c).unwrap_or(u64::MAX);
                    break;
                }
            }
            match self.clust_alloc(c) {
                None => {
                    can = false;
                    break;
                }
                Some(true) => {
                    c += 1;
                    continue;
                }
                Some(false) => {
                    push(&mut runs, sbase);
                    remain = remain.saturating_sub(cb);
                    c += 1;
                }
            }
        }
        if can {
            Runs::Ok(runs)
        } else if sbase.saturating_add(csize - 1) > self.last_block {
            Runs::Err("not enough free clusters to recover the deleted entry".into())
        } else {
            Runs::Ok(vec![(sbase, csize)])
        }
    }

    fn content(&self, runs: &Runs, size: u64) -> Content {
        match runs {
            Runs::Err(_) => Content::None,
            Runs::Ok(v) => {
                // TSK reads no further than the runs (its filler run for
                // the rest of the size ends the read): icat and fiwalk's
                // hashes cover the runs only.
                let have: u64 = v.iter().map(|r| r.1 * self.b.ssize).sum();
                let size = size.min(have);
                if size == 0 {
                    return Content::None;
                }
                Content::Runs {
                    runs: v
                        .iter()
                        .map(|&(s, n)| Run {
                            offset: Some(self.r.image_offset(s * self.b.ssize)),
                            length: n * self.b.ssize,
                        })
                        .collect(),
                    size,
                }
            }
        }
    }

    /// Reads the sectors of `runs`, at most `len` bytes (whole sectors);
    /// returns the bytes and the sector number of each sector read.
    fn read_sectors(&mut self, runs: &[(u64, u64)], len: u64, what: &str) -> (Vec<u8>, Vec<u64>) {
        let ss = self.b.ssize;
        let mut want = len.div_ceil(ss);
        let mut buf = Vec::new();
        let mut addrs = Vec::new();
        for &(s, n) in runs {
            if want == 0 {
                break;
            }
            let k = n.min(want);
            want -= k;
            let start = buf.len();
            buf.resize(start + (k * ss) as usize, 0);
            let got = match self.r.read_at(s * ss, &mut buf[start..]) {
                Ok(g) => g,
                Err(e) => {
                    self.lim(what, s * ss, format!("unreadable: {e}"));
                    0
                }
            };
            let full = got as u64 / ss;
            if full < k {
                self.lim(
                    what,
                    (s + full) * ss,
                    "directory sectors past the image end".to_string(),
                );
            }
            buf.truncate(start + (full * ss) as usize);
            addrs.extend((0..full).map(|i| s + i));
            if full < k {
                break;
            }
        }
        (buf, addrs)
    }

    // ---- directory entries -------------------------------------------------

    fn is_83_name(de: &[u8; 32]) -> bool {
        let ok = |c: u8| {
            !(c < 0x20
                || c == 0x22
                || (0x2a..=0x2c).contains(&c)
                || c == 0x2e
                || c == 0x2f
                || (0x3a..=0x3f).contains(&c)
                || (0x5b..=0x5d).contains(&c)
                || c == 0x7c)
        };
        if de[0] != 0x05 && de[0] != b'.' && !ok(de[0]) {
            return false;
        }
        if de[0] == 0x20 {
            return false;
        }
        if de[1] == b'.' {
            if de[0] != b'.' {
                return false;
            }
        } else if !ok(de[1]) {
            return false;
        }
        if !de[2..11].iter().all(|&c| ok(c)) {
            return false;
        }
        if de[11] & ATTR_VOLUME != ATTR_VOLUME {
            for i in 1..7 {
                if de[i] == 0x20 && de[i + 1] != 0x20 {
                    return false;
                }
            }
            if de[9] == 0x20 && de[10] != 0x20 {
                return false;
            }
        }
        true
    }

    fn de_clust(de: &[u8; 32]) -> u64 {
        u16le(de, 26) | (u16le(de, 20) << 16)
    }

    /// TSK's `fatxxfs_is_dentry`.
    fn is_dentry(&self, de: &[u8; 32], basic: bool) -> bool {
        let attr = de[11];
        if attr & ATTR_LFN == ATTR_LFN {
            return !(de[0] > 0x4f && de[0] != 0xe5);
        }
        let ctime = u16le(de, 14) as u16;
        let cdate = u16le(de, 16) as u16;
        let adate = u16le(de, 18) as u16;
        let wtime = u16le(de, 22) as u16;
        let wdate = u16le(de, 24) as u16;
        if !basic {
            if de[12] & !0x18 != 0 || attr & !0x3f != 0 {
                return false;
            }
            if attr & ATTR_VOLUME != 0 && attr & (ATTR_DIR | ATTR_RO | ATTR_ARCHIVE) != 0 {
                return false;
            }
            if (ctime != 0 && !is_time(ctime))
                || (wtime != 0 && !is_time(wtime))
                || (cdate != 0 && (!is_date(cdate) || dos_time(cdate, ctime, de[13]).is_none()))
                || de[13] > 200
                || (adate != 0 && (!is_date(adate) || dos_time(adate, 0, 0).is_none()))
                || (wdate != 0 && (!is_date(wdate) || dos_time(wdate, wtime, 0).is_none()))
            {
                return false;
            }
        }
        let clust = Self::de_clust(de);
        let size = u32le(de, 28);
        if clust > self.lastclust() && !self.is_eof(clust) {
            return false;
        }
        if size > (self.b.clustcnt * self.b.csize) * self.b.ssize {
            return false;
        }
        if size > 0 && clust == 0 {
            return false;
        }
        if attr & ATTR_VOLUME == 0 && !Self::is_83_name(de) {
            return false;
        }
        !(ctime == 0
            && wtime == 0
            && cdate == 0
            && adate == 0
            && wdate == 0
            && clust == 0
            && size == 0)
    }

    /// TSK's `fatxxfs_dent_parse_buf` over a directory's bytes.
    fn parse_dir(&mut self, buf: &[u8], addrs: &[u64], what: &str) -> Vec<Name> {
        let ss = self.b.ssize as usize;
        let mut out = Vec::new();
        let mut lfn = vec![0u8; 1024];
        let mut start: usize = 1023;
        let mut chk: u8 = 0;
        let mut seen = 0u32;
        let mut invalid = 0u32;
        let mut corrupt = false;
        for (si, &sect) in addrs.iter().enumerate() {
            let ibase = self.sect_inode(sect);
            if ibase > self.last_inum {
                self.lim(
                    what,
                    sect * self.b.ssize,
                    "directory sector past the last entry address",
                );
                return out;
            }
            let Some(sectalloc) = self.sect_alloc(sect) else {
                continue;
            };
            let Some(sbuf) = buf.get(si * ss..(si + 1) * ss) else {
                break;
            };
            for (idx, raw) in sbuf.chunks_exact(32).enumerate() {
                let mut de = [0u8; 32];
                de.copy_from_slice(raw);
                seen += 1;
                if !self.is_dentry(&de, !corrupt && sectalloc) {
                    invalid += 1;
                    if seen == 4 && invalid == 4 {
                        corrupt = true;
                    }
                    continue;
                }
                let inum = ibase + idx as u64;
                let attr = de[11];
                let name: String;
                if attr & ATTR_LFN == ATTR_LFN {
                    let seq = de[0];
                    let ck = de[13];
                    if (seq & 0x40 != 0 && seq != 0xe5) || ck != chk {
                        chk = ck;
                        start = 1023;
                    }
                    let parts: [&[u8]; 3] = [&de[28..32], &de[14..26], &de[1..11]];
                    for p in parts {
                        for &byte in p.iter().rev() {
                            if start > 0 {
                                lfn[start] = byte;
                                start -= 1;
                            }
                        }
                    }
                    continue;
                } else if attr & ATTR_VOLUME == ATTR_VOLUME {
                    let mut v = Vec::with_capacity(40);
                    for &c in &de[..11] {
                        v.push(if c >= 0x20 && c != 0xff { c } else { b'^' });
                    }
                    let label = String::from_utf8_lossy(&v).into_owned();
                    if sectalloc && de[0] != 0xe5 && self.root_label.is_none() {
                        self.root_label = Some(label.trim_end().to_string());
                    }
                    name = format!("{label} (Volume Label Entry)");
                } else {
                    let short = short_name(&de);
                    if start != 1023 {
                        name = decode_lfn(&lfn[start + 1..]);
                        start = 1023;
                    } else {
                        name = short;
                    }
                }
                let alloc = sectalloc && de[0] != 0xe5;
                out.push(Name {
                    name,
                    inum,
                    alloc,
                    de,
                    sect,
                });
            }
        }
        out
    }

    // ---- the walk ----------------------------------------------------------

    fn run(&mut self) -> Result<(), FsError> {
        // The root directory.
        let (root_runs, root_size) = if self.b.ty == Ty::F32 {
            let c = self.b.rootclust;
            let n = self.chain_len(c);
            let size = n * self.cluster_bytes();
            let runs = self.make_runs(
                c,
                size,
                true,
                "FAT32 root directory",
                self.b.reserved * self.b.ssize,
            );
            (runs, size)
        } else {
            let n = self.b.firstclustsect - self.b.firstdatasect;
            (Runs::Ok(vec![(self.b.firstdatasect, n)]), n * self.b.ssize)
        };
        let root_start = match &root_runs {
            Runs::Ok(v) => v.first().map_or(u64::MAX, |r| r.0),
            Runs::Err(e) => {
                return Err(FsError::corrupt(
                    "FAT32 root directory",
                    self.r.image_offset(self.b.reserved * self.b.ssize),
                    e.clone(),
                ));
            }
        };
        self.dirs_seen.insert(root_start, 1);
        self.named.insert(2);
        if let Runs::Ok(v) = &root_runs {
            let v = v.clone();
            let len = root_size.min(MAX_DIR_BYTES);
            let (buf, addrs) = self.read_sectors(&v, len, "root directory");
            let names = self.parse_dir(&buf, &addrs, "root directory");
            self.walk_names(names, "", 1, Alloc::Allocated);
        }
        self.virtual_files();
        self.orphans();
        Ok(())
    }

    fn entry_of(&mut self, n: &Name, path: String, alloc: Alloc) -> (Entry, Runs) {
        let de = &n.de;
        let attr = de[11];
        let is_dir = attr & ATTR_DIR != 0;
        let clust = Self::de_clust(de) & self.mask;
        let meta_alloc = n.alloc;
        let size = if is_dir {
            if meta_alloc {
                self.chain_len(Self::de_clust(de)) * self.cluster_bytes()
            } else if self.clust_alloc(Self::de_clust(de)) == Some(true) {
                0
            } else {
                self.cluster_bytes()
            }
        } else {
            u32le(de, 28)
        };
        let at = n.sect * self.b.ssize + (n.inum - self.sect_inode(n.sect)) * 32;
        let what = format!("FAT directory entry {}", n.inum);
        let runs = self.make_runs(clust, size, meta_alloc, &what, at);
        let content = self.content(&runs, size);
        let wdate = u16le(de, 24) as u16;
        let wtime = u16le(de, 22) as u16;
        let adate = u16le(de, 18) as u16;
        let cdate = u16le(de, 16) as u16;
        let ctime = u16le(de, 14) as u16;
        let ts = |t: Option<i64>, ns: u32| t.and_then(|s| Timestamp::from_unix(s, ns));
        let times = Times {
            mtime: if is_date(wdate) {
                ts(dos_time(wdate, wtime, 0), 0)
            } else {
                None
            },
            atime: if is_date(adate) {
                ts(dos_time(adate, 0, 0), 0)
            } else {
                None
            },
            ctime: None,
            crtime: if is_date(cdate) {
                ts(
                    dos_time(cdate, ctime, de[13]),
                    u32::from(de[13] % 100) * 10_000_000,
                )
            } else {
                None
            },
        };
        let e = Entry {
            path,
            inode: n.inum,
            kind: if is_dir {
                FileType::Dir
            } else {
                FileType::File
            },
            alloc,
            size,
            times,
            fn_times: None,
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: u32::from(de[0] != 0xe5),
            content,
        };
        (e, runs)
    }

    fn push_entry(&mut self, e: Entry) -> bool {
        if self.entries.len() >= MAX_ENTRIES {
            if !self.capped {
                self.capped = true;
                self.lim(
                    "FAT directory tree",
                    0,
                    format!("more than {MAX_ENTRIES} entries; listing cut"),
                );
            }
            return false;
        }
        self.entries.push(e);
        true
    }

    fn walk_names(&mut self, names: Vec<Name>, prefix: &str, depth: usize, under: Alloc) {
        for n in names {
            self.named.insert(n.inum);
            if n.name == "." || n.name == ".." {
                continue;
            }
            let path = if prefix.is_empty() {
                n.name.clone()
            } else {
                format!("{prefix}/{}", n.name)
            };
            let alloc = match under {
                Alloc::Orphan => Alloc::Orphan,
                _ if n.alloc => Alloc::Allocated,
                _ => Alloc::Deleted,
            };
            let (e, runs) = self.entry_of(&n, path.clone(), alloc);
            let is_dir = e.kind == FileType::Dir;
            let size = e.size;
            if !self.push_entry(e) {
                return;
            }
            if is_dir && n.de[11] & ATTR_VOLUME == 0 {
                self.descend(&n, &runs, size, &path, depth, under);
            }
        }
    }

    fn descend(
        &mut self,
        n: &Name,
        runs: &Runs,
        size: u64,
        path: &str,
        depth: usize,
        under: Alloc,
    ) {
        let Runs::Ok(v) = runs else { return };
        let Some(first) = v.first().map(|r| r.0) else {
            return;
        };
        let at = n.sect * self.b.ssize;
        if depth >= MAX_DEPTH {
            self.lim(
                "FAT directory",
                at,
                format!("{path}: deeper than {MAX_DEPTH} levels; not walked"),
            );
            return;
        }
        if size == 0 || self.stack.contains(&n.inum) {
            return;
        }
        let visits = self.dirs_seen.entry(first).or_insert(0);
        *visits += 1;
        let visits = *visits;
        if visits > 1 {
            if visits > MAX_DIR_VISITS {
                self.lim(
                    "FAT directory",
                    at,
                    format!("{path}: its clusters (sector {first}) were already walked {MAX_DIR_VISITS} times; not walked again"),
                );
                return;
            }
            self.lim(
                "FAT directory",
                at,
                format!("{path}: its first cluster (sector {first}) is also another directory's (loop or cross-linked directories)"),
            );
        }
        let mut len = size;
        if len > MAX_DIR_BYTES {
            self.lim(
                "FAT directory",
                at,
                format!("{path}: {len} bytes; only the first {MAX_DIR_BYTES} read"),
            );
            len = MAX_DIR_BYTES;
        }
        let v = v.clone();
        let (buf, addrs) = self.read_sectors(&v, len, "FAT directory");
        let names = self.parse_dir(&buf, &addrs, "FAT directory");
        self.stack.push(n.inum);
        self.walk_names(names, path, depth + 1, under);
        self.stack.pop();
    }

    fn virtual_files(&mut self) {
        let b = self.b.clone();
        let v = virtual_entries(
            self.r,
            self.last_inum,
            b.numfat,
            b.reserved * b.ssize,
            b.sectperfat * b.ssize,
        );
        for e in v {
            self.push_entry(e);
        }
    }

    /// TSK's orphan hunt: 8.3 entries in unallocated clusters that no name
    /// reaches.
    fn orphans(&mut self) {
        let b = self.b.clone();
        let ss = b.ssize;
        let end_inum = self.last_inum - (b.numfat + 2);
        let last_sect = self.last_block.min(self.r.len() / ss).saturating_sub(0);
        let mut found: Vec<Name> = Vec::new();
        let mut c = 2u64;
        let lastclust = self.lastclust();
        let mut buf = Vec::new();
        while c <= lastclust {
            // A run of free clusters.
            if self.get_fat(c) != Some(0) {
                c += 1;
                continue;
            }
            let mut e = c;
            while e < lastclust
                && self.get_fat(e + 1) == Some(0)
                && (e + 1 - c) * b.csize * ss < SCAN_CHUNK
            {
                e += 1;
            }
            let Some(s0) = self.clust_sect(c) else { break };
            let nsect = ((e - c + 1) * b.csize).min((last_sect + 1).saturating_sub(s0));
            if nsect == 0 {
                break;
            }
            buf.resize((nsect * ss) as usize, 0);
            let got = self.r.read_at(s0 * ss, &mut buf).unwrap_or(0);
            buf.truncate(got);
            for (i, sbuf) in buf.chunks_exact(ss as usize).enumerate() {
                let sect = s0 + i as u64;
                let mut first = [0u8; 32];
                first.copy_from_slice(&sbuf[..32]);
                if !self.is_dentry(&first, false) {
                    continue;
                }
                let ibase = self.sect_inode(sect);
                for (idx, raw) in sbuf.chunks_exact(32).enumerate() {
                    let inum = ibase + idx as u64;
                    if inum > end_inum {
                        break;
                    }
                    let mut de = [0u8; 32];
                    de.copy_from_slice(raw);
                    if !self.is_dentry(&de, false)
                        || de[11] & ATTR_LFN == ATTR_LFN
                        || (de[11] & ATTR_DIR != 0 && de[0] == b'.')
                        || self.named.contains(&inum)
                    {
                        continue;
                    }
                    if found.len() >= MAX_ENTRIES {
                        break;
                    }
                    found.push(Name {
                        name: meta_name(&de),
                        inum,
                        alloc: false,
                        de,
                        sect,
                    });
                }
            }
            c = e + 1;
        }
        if found.is_empty() {
            return;
        }
        // Children of orphan directories are listed under them only.
        let mut children: HashSet<u64> = HashSet::new();
        for n in &found {
            if n.de[11] & ATTR_DIR != 0 && n.de[11] & ATTR_VOLUME == 0 {
                self.collect_children(n, &mut children, 0);
            }
        }
        let top: Vec<Name> = found
            .into_iter()
            .filter(|n| !children.contains(&n.inum))
            .collect();
        for n in &top {
            self.named.insert(n.inum);
        }
        self.walk_names(top, "$OrphanFiles", 1, Alloc::Orphan);
    }

    /// The entries reachable below the orphan directory `n` (inode numbers).
    fn collect_children(&mut self, n: &Name, out: &mut HashSet<u64>, depth: usize) {
        if depth >= 32 || out.len() > MAX_ENTRIES {
            return;
        }
        let de = n.de;
        let size = if self.clust_alloc(Self::de_clust(&de)) == Some(true) {
            0
        } else {
            self.cluster_bytes()
        };
        let runs = self.make_runs(
            Self::de_clust(&de) & self.mask,
            size,
            false,
            "FAT orphan directory",
            0,
        );
        let Runs::Ok(v) = runs else { return };
        let (buf, addrs) = self.read_sectors(&v, size, "FAT orphan directory");
        let lims = self.lims.len();
        let names = self.parse_dir(&buf, &addrs, "FAT orphan directory");
        self.lims.truncate(lims);
        for c in names {
            if c.name == "." || c.name == ".." {
                continue;
            }
            if out.insert(c.inum) && c.de[11] & ATTR_DIR != 0 && c.de[11] & ATTR_VOLUME == 0 {
                self.collect_children(&c, out, depth + 1);
            }
        }
    }

    fn label(&self) -> Option<String> {
        if let Some(l) = self.root_label.as_ref().filter(|l| !l.is_empty()) {
            return Some(l.clone());
        }
        let raw = if self.b.ty == Ty::F32 {
            &self.b.label32
        } else {
            &self.b.label16
        };
        let s = String::from_utf8_lossy(raw).trim_end().to_string();
        (!s.is_empty() && s != "NO NAME" && raw.iter().all(|&c| c >= 0x20)).then_some(s)
    }
}

/// The 8.3 name as TSK's directory parser prints it.
fn short_name(de: &[u8; 32]) -> String {
    let lower_base = de[12] & 0x08 != 0;
    let lower_ext = de[12] & 0x10 != 0;
    let mut v = Vec::with_capacity(12);
    for (b, &c) in de[..8].iter().enumerate() {
        if c == 0 || c == 0xff || c == 0x20 {
            continue;
        }
        if b == 0 && c == 0xe5 {
            v.push(b'_');
        } else if lower_base && c.is_ascii_uppercase() {
            v.push(c + 32);
        } else {
            v.push(c);
        }
    }
    for (b, &c) in de[8..11].iter().enumerate() {
        if c == 0 || c == 0xff || c == 0x20 {
            continue;
        }
        if b == 0 {
            v.push(b'.');
        }
        if lower_ext && c.is_ascii_uppercase() {
            v.push(c + 32);
        } else {
            v.push(c);
        }
    }
    for c in &mut v {
        if *c > 0x7e {
            *c = b'^';
        }
    }
    String::from_utf8_lossy(&v).into_owned()
}

/// The name TSK's metadata layer gives an entry (orphans are named so).
fn meta_name(de: &[u8; 32]) -> String {
    let mut v = Vec::with_capacity(12);
    if de[11] & ATTR_VOLUME != 0 {
        v.extend(de[..11].iter().copied().filter(|&c| c != 0 && c != 0xff));
    } else {
        let lower_base = de[12] & 0x08 != 0;
        let lower_ext = de[12] & 0x10 != 0;
        for (i, &c) in de[..8].iter().enumerate() {
            if c == 0 || c == b' ' {
                break;
            }
            v.push(if i == 0 && c == 0xe5 {
                b'_'
            } else if lower_base && c.is_ascii_uppercase() {
                c + 32
            } else {
                c
            });
        }
        if de[8] != 0 && de[8] != b' ' {
            v.push(b'.');
            for &c in &de[8..11] {
                if c == 0 || c == b' ' {
                    break;
                }
                v.push(if lower_ext && c.is_ascii_uppercase() {
                    c + 32
                } else {
                    c
                });
            }
        }
    }
    for c in &mut v {
        if *c > 0x7e || *c < 0x20 || *c == 0x7f {
            *c = b'^';
        }
    }
    String::from_utf8_lossy(&v).into_owned()
}

/// The gathered long-name bytes (UTF-16LE) as UTF-8, cut at the first NUL.
fn decode_lfn(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

fn is_time(t: u16) -> bool {
    (t & 0x1f) <= 30 && ((t >> 5) & 0x3f) <= 59 && (t >> 11) <= 23
}

pub(crate) fn is_date(d: u16) -> bool {
    let day = d & 0x1f;
    let mon = (d >> 5) & 0xf;
    (1..=31).contains(&day) && (1..=12).contains(&mon)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// TSK's `fatfs_dos_2_unix_time` with the local time taken as UTC; `None`
/// for TSK's 0.
pub(crate) fn dos_time(date: u16, time: u16, tens: u8) -> Option<i64> {
    if date == 0 {
        return None;
    }
    let mut sec = i64::from(time & 0x1f) * 2;
    if sec > 60 {
        sec = 0;
    }
    if tens > 100 {
        sec += 1;
    }
    let mut min = i64::from((time >> 5) & 0x3f);
    if min > 59 {
        min = 0;
    }
    let mut hour = i64::from(time >> 11);
    if hour > 23 {
        hour = 0;
    }
    let mut mday = i64::from(date & 0x1f);
    if !(1..=31).contains(&mday) {
        mday = 0;
    }
    let mut mon = i64::from((date >> 5) & 0xf) - 1;
    if !(0..=11).contains(&mon) {
        mon = 0;
    }
    let year = 1980 + i64::from(date >> 9);
    let days = days_from_civil(year, mon + 1, 1) + mday - 1;
    let t = days * 86_400 + hour * 3600 + min * 60 + sec;
    (t > 0).then_some(t)
}

/// The virtual files TSK lists for FAT and exFAT, numbered after the last
/// directory-entry address: `$MBR` (the boot sector), `$FAT1` (and `$FAT2`
/// with two FATs) at `fat_off` bytes into the volume, `fat_len` bytes each,
/// and the `$OrphanFiles` directory at `last_inum`.
pub(crate) fn virtual_entries(
    r: &VolumeReader<'_>,
    last_inum: u64,
    numfat: u64,
    fat_off: u64,
    fat_len: u64,
) -> Vec<Entry> {
    let mbr = last_inum - (numfat + 2) + 1;
    let virt = |path: &str, inode: u64, off: u64, size: u64| Entry {
        path: path.into(),
        inode,
        kind: FileType::File,
        alloc: Alloc::Allocated,
        size,
        times: Times::default(),
        fn_times: None,
        mode: 0,
        uid: 0,
        gid: 0,
        nlink: 1,
        content: if size == 0 {
            Content::None
        } else {
            Content::Runs {
                runs: vec![Run {
                    offset: Some(r.image_offset(off)),
                    length: size,
                }],
                size,
            }
        },
    };
    let mut v = vec![
        virt("$MBR", mbr, 0, 512),
        virt("$FAT1", mbr + 1, fat_off, fat_len),
    ];
    if numfat == 2 {
        v.push(virt("$FAT2", mbr + 2, fat_off + fat_len, fat_len));
    }
    let mut od = virt("$OrphanFiles", last_inum, 0, 0);
    od.kind = FileType::Dir;
    v.push(od);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times() {
        // 2022-01-24 21:09:16 -> 1643058556 (fls -m on fat_unusual_label).
        let date = ((2022 - 1980) << 9) | (1 << 5) | 24;
        let time = (21 << 11) | (9 << 5) | 8;
        assert_eq!(dos_time(date, time, 0), Some(1_643_058_556));
        assert_eq!(dos_time(date, 0, 0), Some(1_642_982_400));
        assert_eq!(dos_time(0, time, 0), None);
    }

    #[test]
    fn names() {
        let mut de = [0u8; 32];
        de[..11].copy_from_slice(b"\xe5ILE    TXT");
        assert_eq!(short_name(&de), "_ILE.TXT");
        de[..11].copy_from_slice(b"README  TXT");
        de[12] = 0x18;
        assert_eq!(short_name(&de), "readme.txt");
        de[12] = 0x08;
        assert_eq!(short_name(&de), "readme.TXT");
        let lfn: Vec<u8> = "héllo"
            .encode_utf16()
            .chain([0, 0xffff])
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(decode_lfn(&lfn), "héllo");
        let bad: Vec<u8> = [0xd800u16, 0x41]
            .iter()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(decode_lfn(&bad), "\u{fffd}A");
    }

    #[test]
    fn probe_rejects_garbage() {
        assert!(!probe(&[0u8; 512]));
        let mut b = [0u8; 512];
        b[510] = 0x55;
        b[511] = 0xaa;
        assert!(!probe(&b));
    }
}
