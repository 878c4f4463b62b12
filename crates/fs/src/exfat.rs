//! exFAT, listed as The Sleuth Kit (4.11) lists it.
//!
//! * The main boot region is used when its boot sector is sane and its
//!   checksum sector matches; otherwise the backup region (sectors 12-23).
//!   A checksum mismatch is a [`Limitation`].
//! * `inode` is TSK's directory-entry address, as for FAT: the cluster heap
//!   is the data area, every 32-byte slot is numbered
//!   `(sector - heap_start) * (sector_size / 32) + 3 + slot`; a file is
//!   numbered by its file (0x85) entry. The virtual files `$MBR`, `$FAT1`
//!   (`$FAT2`) and `$OrphanFiles` follow the last slot.
//! * Directory entries are parsed as TSK's `exfatfs_dent_parse_buf`: a file
//!   entry set is a file entry, a stream extension and name entries with the
//!   same in-use bit; a set cut short keeps the name gathered so far. The
//!   entry set checksum is verified and a mismatch is a [`Limitation`] (the
//!   entry is still listed, as TSK lists it). Volume label entries are
//!   listed as `LABEL (Volume Label Entry)` (`$EMPTY_VOLUME_LABEL` for an
//!   empty one; TSK also lists that one as `$OrphanFiles/$EMPTY_VOLUME_LABEL`,
//!   and so do we), the allocation bitmap and up-case table entries as
//!   `$ALLOC_BITMAP` and `$UPCASE_TABLE` with their content.
//! * A name is deleted when the in-use bit of its entries is clear or its
//!   sector's cluster is free in the allocation bitmap.
//! * Content: `NoFatChain` streams are contiguous, others follow the FAT,
//!   up to the data length. Bytes past the valid data length are read from
//!   the clusters as they are, because icat and fiwalk do so (the exFAT
//!   spec says they read as zeros: a deliberate match of TSK); deleted
//!   entries use TSK's recovery rule (free clusters from the first one on).
//! * A file entry whose set yields no name (its stream extension is
//!   invalid, e.g. a size with no first cluster) in an allocated directory
//!   sector is listed as `$OrphanFiles/OrphanFile-<inode>`, as fiwalk shows
//!   it.
//! * Times: local date/time with 10 ms increments taken as UTC, as TSK (TZ
//!   unset) prints them; the UTC offset fields are not applied (TSK does
//!   not either).

use crate::fat::{dos_time, is_date};
use crate::unalloc::FreeRanges;
use crate::{
    Alloc, Content, Entry, FileSystemListing, FileType, FsError, FsKind, Limitation, Run, Times,
    Timestamp, VolumeReader,
};
use std::collections::{HashMap, HashSet};

const MAX_DEPTH: usize = 128;
const MAX_DIR_BYTES: u64 = 64 << 20;
const MAX_ENTRIES: usize = 20_000_000;
const MAX_DIR_VISITS: u32 = 8;

/// True when `head` holds an exFAT boot sector ("EXFAT   " OEM id), or
/// sector 0 is blank and the backup boot sector at sector 12 is one.
pub fn probe(head: &[u8]) -> bool {
    let ok = |s: &[u8]| s.len() >= 512 && &s[3..11] == b"EXFAT   ";
    if head.get(..512).is_some_and(ok) {
        return true;
    }
    // A destroyed main boot sector: the backup, at 512..4096-byte sectors.
    [512usize, 1024, 2048, 4096]
        .iter()
        .any(|&ss| head.get(12 * ss..12 * ss + 512).is_some_and(ok))
}

#[derive(Clone, Debug)]
struct Boot {
    ssize: u64,
    csize: u64,
    vol_sectors: u64,
    fat_off: u64,
    fat_len: u64,
    heap: u64,
    clusters: u64,
    root: u64,
    numfat: u64,
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

fn u64le(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

fn parse_boot(b: &[u8]) -> Result<Boot, String> {
    if b.len() < 512 || &b[3..11] != b"EXFAT   " {
        return Err("no EXFAT OEM id".into());
    }
    if b[510] != 0x55 || b[511] != 0xaa {
        return Err("no 0x55AA boot signature".into());
    }
    let ss_sh = b[108];
    let cs_sh = b[109];
    if !(9..=12).contains(&ss_sh) || u32::from(ss_sh) + u32::from(cs_sh) > 25 {
        return Err(format!("sector shift {ss_sh}, cluster shift {cs_sh}"));
    }
    let numfat = u64::from(b[110]);
    if numfat == 0 || numfat > 2 {
        return Err(format!("{numfat} FATs"));
    }
    let bt = Boot {
        ssize: 1 << ss_sh,
        csize: 1 << cs_sh,
        vol_sectors: u64le(b, 72),
        fat_off: u32le(b, 80),
        fat_len: u32le(b, 84),
        heap: u32le(b, 88),
        clusters: u32le(b, 92),
        root: u32le(b, 96),
        numfat,
    };
    if bt.fat_off < 24
        || bt.fat_len == 0
        || bt.heap < bt.fat_off + bt.fat_len * numfat
        || bt.vol_sectors < bt.heap
        || bt.clusters == 0
        || bt.root < 2
        || bt.root > bt.clusters + 1
    {
        return Err(format!("inconsistent layout {bt:?}"));
    }
    if bt.clusters.saturating_mul(bt.csize) > bt.vol_sectors - bt.heap {
        return Err(format!(
            "{} clusters do not fit in the volume's {} sectors",
            bt.clusters, bt.vol_sectors
        ));
    }
    Ok(bt)
}

/// The boot region checksum over sectors 0-10 (flags and percent-in-use
/// skipped), compared with sector 11.
fn checksum_ok(region: &[u8], ss: usize) -> bool {
    let Some(body) = region.get(..11 * ss) else {
        return false;
    };
    let mut sum: u32 = 0;
    for (i, &b) in body.iter().enumerate() {
        if i == 106 || i == 107 || i == 112 {
            continue;
        }
        sum = sum.rotate_right(1).wrapping_add(u32::from(b));
    }
    let Some(cs) = region.get(11 * ss..12 * ss) else {
        return false;
    };
    cs.chunks_exact(4)
        .all(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) == sum)
}

/// Lists the exFAT file system of `r`.
///
/// # Errors
/// Neither boot region usable; I/O errors.
pub fn list(r: &VolumeReader<'_>) -> Result<FileSystemListing, FsError> {
    let mut lims = Vec::new();
    let mut chosen = None;
    let mut why = String::new();
    for ss in [512usize, 1024, 2048, 4096] {
        for (k, base) in [(0usize, 0u64), (1, 12 * ss as u64)] {
            let mut region = vec![0u8; 12 * ss];
            let n = r.read_at(base, &mut region)?;
            region.truncate(n);
            match parse_boot(&region) {
                Ok(b) if b.ssize == ss as u64 => {
                    if !checksum_ok(&region, ss) {
                        lims.push(Limitation {
                            volume_offset: r.base(),
                            structure: "exFAT boot region".into(),
                            offset: r.image_offset(base + 11 * ss as u64),
                            what: "boot checksum sector does not match sectors 0-10".into(),
                        });
                        if k == 0 {
                            // Try the backup before settling for this one.
                            if chosen.is_none() {
                                chosen = Some((b, base));
                            }
                            continue;
                        }
                        if chosen.is_some() {
                            break;
                        }
                    }
                    if k == 1 {
                        lims.push(Limitation {
                            volume_offset: r.base(),
                            structure: "exFAT boot region".into(),
                            offset: r.image_offset(0),
                            what: "main boot region damaged; the backup boot region was used"
                                .into(),
                        });
                    }
                    chosen = Some((b, base));
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    if why.is_empty() {
                        why = e;
                    }
                }
            }
        }
        if chosen.is_some() {
            break;
        }
    }
    let Some((boot, _)) = chosen else {
        return Err(FsError::corrupt("exFAT boot sector", r.base(), why));
    };
    let mut fs = Exfat::new(r, boot, lims)?;
    fs.run();
    let unallocated = fs.unallocated();
    let b = &fs.b;
    Ok(FileSystemListing {
        partition_offset: r.base(),
        fs: FsKind::Exfat,
        label: fs.label.clone().filter(|l| !l.is_empty()),
        block_size: b.csize * b.ssize,
        size: b.vol_sectors.saturating_mul(b.ssize),
        entries: std::mem::take(&mut fs.entries),
        limitations: std::mem::take(&mut fs.lims),
        unallocated,
    })
}

/// A parsed name (entry set) of a directory.
#[derive(Clone)]
struct Name {
    name: String,
    inum: u64,
    alloc: bool,
    kind: NameKind,
    /// Sector of the first entry.
    sect: u64,
}

#[derive(Clone)]
enum NameKind {
    File {
        is_dir: bool,
        file: [u8; 32],
        stream: Option<[u8; 32]>,
    },
    Label {
        empty: bool,
    },
    /// Bitmap, up-case table, GUID, TexFAT, ACT: first cluster and length.
    Special {
        clust: u64,
        len: u64,
    },
}

enum Runs {
    Ok(Vec<(u64, u64)>),
    Err,
}

struct Exfat<'a, 'r> {
    r: &'a VolumeReader<'r>,
    b: Boot,
    last_block: u64,
    dps: u64,
    last_inum: u64,
    fat: Vec<u8>,
    bitmap: Option<Vec<u8>>,
    /// Volume offset of the allocation bitmap's first byte.
    bitmap_off: u64,
    entries: Vec<Entry>,
    lims: Vec<Limitation>,
    label: Option<String>,
    dirs_seen: HashMap<u64, u32>,
    stack: Vec<u64>,
    named: HashSet<u64>,
    unnamed: Vec<u64>,
    capped: bool,
}

impl<'a, 'r> Exfat<'a, 'r> {
    fn new(r: &'a VolumeReader<'r>, b: Boot, lims: Vec<Limitation>) -> Result<Self, FsError> {
        let last_block = b.vol_sectors - 1;
        let in_image = r.len() / b.ssize;
        let last_block_act = if in_image < b.vol_sectors {
            in_image.saturating_sub(1)
        } else {
            last_block
        };
        let dps = b.ssize / 32;
        let last_inum = ((last_block_act + 1).saturating_sub(b.heap) * dps + 3 - 1) + b.numfat + 2;
        let need = (b.clusters + 2) * 4;
        let fat_len = need.min(b.fat_len * b.ssize);
        let off = b.fat_off * b.ssize;
        let avail = r.len().saturating_sub(off).min(fat_len);
        let fat = r.read_vec(off, avail, "exFAT FAT")?;
        let mut me = Self {
            r,
            b,
            last_block,
            dps,
            last_inum,
            fat,
            bitmap: None,
            bitmap_off: 0,
            entries: Vec::new(),
            lims,
            label: None,
            dirs_seen: HashMap::new(),
            stack: vec![2],
            named: HashSet::new(),
            unnamed: Vec::new(),
            capped: false,
        };
        if avail < fat_len {
            me.lim("exFAT FAT", off + avail, "the FAT is cut by the image end");
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
        self.b.clusters + 1
    }

    fn cb(&self) -> u64 {
        self.b.csize * self.b.ssize
    }

    fn get_fat(&self, c: u64) -> Option<u64> {
        if c > self.lastclust() {
            return None;
        }
        let o = usize::try_from(c).ok()?.checked_mul(4)?;
        let s = self.fat.get(o..o + 4)?;
        Some(u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])) & 0x0fff_ffff)
    }

    fn is_eof(v: u64) -> bool {
        (0x0fff_fff8..=0x0fff_ffff).contains(&v)
    }

    fn clust_sect(&self, c: u64) -> Option<u64> {
        let s = i128::from(self.b.heap) + (i128::from(c) - 2) * i128::from(self.b.csize);
        u64::try_from(s).ok()
    }

    /// Allocation from the bitmap (TSK's exFAT rule); `None` when unknown.
    fn clust_alloc(&self, c: u64) -> Option<bool> {
        if c < 2 || c > self.lastclust() {
            return None;
        }
        let bm = self.bitmap.as_ref()?;
        let i = usize::try_from(c - 2).ok()?;
        // Past a missing or short bitmap: taken as allocated.
        Some(bm.get(i / 8).is_none_or(|b| b & (1 << (i % 8)) != 0))
    }

    fn sect_alloc(&self, s: u64) -> Option<bool> {
        if s < self.b.heap {
            return Some(true);
        }
        let c = 2 + (s - self.b.heap) / self.b.csize;
        if c > self.lastclust() {
            return Some(false);
        }
        // Before the bitmap is known (the root's first read) everything
        // reachable counts as allocated.
        if self.bitmap.is_none() {
            return Some(true);
        }
        self.clust_alloc(c)
    }

    /// Free space as TSK's block walk finds it (`blkls -A`): the clusters
    /// whose allocation bitmap bit is 0, and the sectors after the last
    /// cluster; everything before the cluster heap is allocated. Clusters
    /// past a short bitmap are not listed (a limitation; a missing bitmap
    /// was reported by [`Exfat::run`]).
    fn unallocated(&mut self) -> Vec<(u64, u64)> {
        let b = self.b.clone();
        let mut out = FreeRanges::new(self.r, b.vol_sectors.saturating_mul(b.ssize));
        let bm = self.bitmap.take().unwrap_or_default();
        let have = out.bitmap(&bm, b.clusters, b.heap * b.ssize, self.cb());
        if have < b.clusters && !bm.is_empty() {
            self.lim(
                "exFAT allocation bitmap",
                self.bitmap_off,
                format!(
                    "holds {have} of {} clusters; the rest are not listed as unallocated",
                    b.clusters
                ),
            );
        }
        self.bitmap = Some(bm);
        let tail = b.heap + b.clusters * b.csize;
        out.free(tail * b.ssize, (b.vol_sectors - tail) * b.ssize);
        out.done()
    }

    fn sect_inode(&self, s: u64) -> u64 {
        s.saturating_sub(self.b.heap)
            .saturating_mul(self.dps)
            .saturating_add(3)
    }

    fn chain_len(&self, mut c: u64) -> u64 {
        let mut seen = HashSet::new();
        let mut n = 0;
        while c != 0 && !Self::is_eof(c) {
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

    /// Sector runs for content starting at `clust`, `size` bytes.
    fn make_runs(&mut self, clust: u64, size: u64, alloc: bool, contiguous: bool, at: u64) -> Runs {
        let cb = self.cb();
        let csize = self.b.csize;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let push = |runs: &mut Vec<(u64, u64)>, s: u64| match runs.last_mut() {
            Some(l) if l.0 + l.1 == s => l.1 += csize,
            _ => runs.push((s, csize)),
        };
        if size == 0 || clust == 0 {
            return Runs::Ok(runs);
        }
        if clust < 2 || (clust > self.lastclust() && !Self::is_eof(clust)) {
            self.lim(
                "exFAT stream extension",
                at,
                format!("first cluster {clust} out of range"),
            );
            return Runs::Err;
        }
        let n = size.div_ceil(cb);
        if alloc {
            if contiguous {
                if clust + n - 1 > self.lastclust() {
                    self.lim(
                        "exFAT stream extension",
                        at,
                        format!("{n} contiguous clusters from {clust} pass the cluster heap end"),
                    );
                    return Runs::Err;
                }
                let s = self.clust_sect(clust).unwrap_or(0);
                return Runs::Ok(vec![(s, n * csize)]);
            }
            let mut remain = n;
            let mut seen = HashSet::new();
            let mut c = clust;
            while c > 0 && remain > 0 && !Self::is_eof(c) {
                let Some(s) = self
                    .clust_sect(c)
                    .filter(|&s| s + csize - 1 <= self.last_block)
                else {
                    self.lim(
                        "exFAT FAT chain",
                        at,
                        format!("cluster {c} past the volume end"),
                    );
                    return Runs::Err;
                };
                push(&mut runs, s);
                remain -= 1;
                if remain > 0 {
                    let Some(nx) = self.get_fat(c) else {
                        self.lim(
                            "exFAT FAT chain",
                            at,
                            format!("FAT entry of cluster {c} unreadable"),
                        );
                        return Runs::Err;
                    };
                    c = nx;
                    if !seen.insert(c) {
                        self.lim(
                            "exFAT FAT chain",
                            at,
                            format!("chain loops back to cluster {c}; cut there"),
                        );
                        break;
                    }
                }
            }
            return Runs::Ok(runs);
        }
        // Deleted: TSK's recovery from the first cluster.
        let Some(mut sbase) = self.clust_sect(clust).filter(|&s| s <= self.last_block) else {
            return Runs::Err;
        };
        let mut can = self.clust_alloc(clust) == Some(false);
        let mut c = clust;
        let mut remain = size;
        while remain > 0 && can {
            match self.clust_sect(c) {
                Some(s) if s + csize - 1 <= self.last_block && c <= self.lastclust() => sbase = s,
                _ => {
                    can = false;
                    sbase = u64::MAX;
                    break;
                }
            }
            match self.clust_alloc(c) {
                None => {
                    can = false;
                    break;
                }
                Some(true) => c += 1,
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
            Runs::Err
        } else {
            Runs::Ok(vec![(sbase, csize)])
        }
    }

    /// Content of `size` bytes whose first `valid` bytes are on disk.
    fn content(&self, runs: &Runs, size: u64, valid: u64) -> Content {
        let Runs::Ok(v) = runs else {
            return Content::None;
        };
        let have: u64 = v.iter().map(|r| r.1 * self.b.ssize).sum();
        let size = size.min(have);
        if size == 0 {
            return Content::None;
        }
        let mut left = valid.min(size);
        let mut out = Vec::new();
        for &(s, n) in v {
            if left == 0 {
                break;
            }
            let len = (n * self.b.ssize).min(left);
            left -= len;
            out.push(Run {
                offset: Some(self.r.image_offset(s * self.b.ssize)),
                length: len,
            });
        }
        Content::Runs { runs: out, size }
    }

    fn read_sectors(&mut self, runs: &[(u64, u64)], len: u64) -> (Vec<u8>, Vec<u64>) {
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
            let got = self.r.read_at(s * ss, &mut buf[start..]).unwrap_or(0);
            let full = got as u64 / ss;
            buf.truncate(start + (full * ss) as usize);
            addrs.extend((0..full).map(|i| s + i));
            if full < k {
                self.lim(
                    "exFAT directory",
                    (s + full) * ss,
                    "directory sectors past the image end",
                );
                break;
            }
        }
        (buf, addrs)
    }

    /// Entry-type sanity as TSK's `exfatfs_is_dentry` (simplified to the
    /// fields that decide what is listed).
    fn is_dentry(&self, de: &[u8; 32], basic: bool) -> bool {
        let cl_ok = |c: u64| c == 0 || (2..=self.lastclust()).contains(&c);
        match de[0] {
            0x85 | 0x05 => {
                let n = de[1];
                (2..=18).contains(&n) && (basic || de[4] & !0x37 == 0)
            }
            0xc0 | 0x40 => {
                let len = u64le(de, 24);
                let vdl = u64le(de, 8);
                let c = u32le(de, 20);
                let real = (2..=self.lastclust()).contains(&c);
                de[3] > 0
                    && cl_ok(c)
                    && (len == 0 || real)
                    && (basic || (real && vdl <= len && len <= self.b.clusters * self.cb()))
            }
            0xc1 | 0x41 => true,
            0x83 => de[1] <= 15,
            0x03 => true,
            0x81 | 0x82 => cl_ok(u32le(de, 20)) && u32le(de, 20) != 0,
            0xa0 | 0xa1 | 0xe2 => true,
            _ => false,
        }
    }

    fn parse_dir(&mut self, buf: &[u8], addrs: &[u64]) -> Vec<Name> {
        let ss = self.b.ssize as usize;
        let mut out: Vec<Name> = Vec::new();
        let mut cur: Option<Name> = None;
        let mut expected = 0u8;
        let mut actual = 0u8;
        let mut name_len = 0usize;
        let mut units: Vec<u16> = Vec::new();
        let mut last: u8 = 0;
        let mut set_bytes: Vec<u8> = Vec::new();
        let mut set_ck: u16 = 0;
        let mut seen = 0u32;
        let mut invalid = 0u32;
        let mut corrupt = false;
        let mut unnamed: Vec<Name> = Vec::new();
        let finish = |cur: &mut Option<Name>,
                      units: &mut Vec<u16>,
                      set_bytes: &mut Vec<u8>,
                      set_ck: u16,
                      expected: u8,
                      out: &mut Vec<Name>,
                      unnamed: &mut Vec<Name>,
                      lims: &mut Vec<(u64, String)>| {
            if let Some(mut n) = cur.take() {
                if let NameKind::File { .. } = n.kind {
                    n.name = char::decode_utf16(units.iter().copied())
                        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                        .collect();
                    if set_bytes.len() == (usize::from(expected) + 1) * 32 {
                        let mut ck: u16 = 0;
                        for (i, &b) in set_bytes.iter().enumerate() {
                            if i == 2 || i == 3 {
                                continue;
                            }
                            ck = ck.rotate_right(1).wrapping_add(u16::from(b));
                        }
                        if ck != set_ck && n.alloc {
                            lims.push((
                                n.sect,
                                format!(
                                    "entry set checksum 0x{set_ck:04x}, computed 0x{ck:04x} ({})",
                                    n.name
                                ),
                            ));
                        }
                    }
                }
                if !n.name.is_empty() {
                    out.push(n);
                } else if matches!(n.kind, NameKind::File { .. }) {
                    unnamed.push(n);
                }
            }
            units.clear();
            set_bytes.clear();
        };
        let mut pending: Vec<(u64, String)> = Vec::new();
        for (si, &sect) in addrs.iter().enumerate() {
            let ibase = self.sect_inode(sect);
            if ibase > self.last_inum {
                break;
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
                let inum = ibase + idx as u64;
                let ty = if self.is_dentry(&de, !corrupt && sectalloc) {
                    de[0]
                } else {
                    0
                };
                match ty {
                    0x85 | 0x05 => {
                        finish(
                            &mut cur,
                            &mut units,
                            &mut set_bytes,
                            set_ck,
                            expected,
                            &mut out,
                            &mut unnamed,
                            &mut pending,
                        );
                        expected = de[1];
                        actual = 0;
                        name_len = 0;
                        set_ck = u16le(&de, 2) as u16;
                        set_bytes.extend_from_slice(&de);
                        last = ty;
                        cur = Some(Name {
                            name: String::new(),
                            inum,
                            alloc: sectalloc && ty & 0x80 != 0,
                            kind: NameKind::File {
                                is_dir: de[4] & 0x10 != 0,
                                file: de,
                                stream: None,
                            },
                            sect,
                        });
                    }
                    0xc0 | 0x40 => {
                        if last & 0x7f != 0x05 || (last ^ ty) & 0x80 != 0 || cur.is_none() {
                            finish(
                                &mut cur,
                                &mut units,
                                &mut set_bytes,
                                set_ck,
                                expected,
                                &mut out,
                                &mut unnamed,
                                &mut pending,
                            );
                            last = 0;
                            continue;
                        }
                        last = ty;
                        name_len = usize::from(de[3]);
                        set_bytes.extend_from_slice(&de);
                        if let Some(Name {
                            kind: NameKind::File { stream, .. },
                            ..
                        }) = cur.as_mut()
                        {
                            *stream = Some(de);
                        }
                        actual += 1;
                        if actual == expected {
                            finish(
                                &mut cur,
                                &mut units,
                                &mut set_bytes,
                                set_ck,
                                expected,
                                &mut out,
                                &mut unnamed,
                                &mut pending,
                            );
                            last = 0;
                        }
                    }
                    0xc1 | 0x41 => {
                        if !matches!(last, 0xc0 | 0x40 | 0xc1 | 0x41) || (last ^ ty) & 0x80 != 0 {
                            finish(
                                &mut cur,
                                &mut units,
                                &mut set_bytes,
                                set_ck,
                                expected,
                                &mut out,
                                &mut unnamed,
                                &mut pending,
                            );
                            last = 0;
                            continue;
                        }
                        last = ty;
                        set_bytes.extend_from_slice(&de);
                        let k = name_len.saturating_sub(units.len()).min(15);
                        for i in 0..k {
                            let u = u16le(&de, 2 + 2 * i) as u16;
                            units.push(u);
                        }
                        actual += 1;
                        if actual == expected {
                            finish(
                                &mut cur,
                                &mut units,
                                &mut set_bytes,
                                set_ck,
                                expected,
                                &mut out,
                                &mut unnamed,
                                &mut pending,
                            );
                            last = 0;
                        }
                    }
                    0x83 | 0x03 => {
                        finish(
                            &mut cur,
                            &mut units,
                            &mut set_bytes,
                            set_ck,
                            expected,
                            &mut out,
                            &mut unnamed,
                            &mut pending,
                        );
                        last = ty;
                        let empty = ty == 0x03;
                        let label = if empty {
                            "$EMPTY_VOLUME_LABEL".to_string()
                        } else {
                            let n = usize::from(de[1]).min(15);
                            let u: Vec<u16> =
                                (0..n).map(|i| u16le(&de, 2 + 2 * i) as u16).collect();
                            char::decode_utf16(u)
                                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                                .collect()
                        };
                        if !empty && sectalloc && self.label.is_none() {
                            self.label = Some(label.clone());
                        }
                        out.push(Name {
                            name: format!("{label} (Volume Label Entry)"),
                            inum,
                            alloc: sectalloc,
                            kind: NameKind::Label { empty },
                            sect,
                        });
                    }
                    0x81 | 0x82 | 0xa0 | 0xa1 | 0xe2 => {
                        finish(
                            &mut cur,
                            &mut units,
                            &mut set_bytes,
                            set_ck,
                            expected,
                            &mut out,
                            &mut unnamed,
                            &mut pending,
                        );
                        last = ty;
                        let name = match ty {
                            0x81 => "$ALLOC_BITMAP",
                            0x82 => "$UPCASE_TABLE",
                            0xa0 => "$VOLUME_GUID",
                            0xa1 => "$TEX_FAT",
                            _ => "$ACT",
                        };
                        out.push(Name {
                            name: name.into(),
                            inum,
                            alloc: sectalloc,
                            kind: NameKind::Special {
                                clust: if matches!(ty, 0x81 | 0x82) {
                                    u32le(&de, 20)
                                } else {
                                    0
                                },
                                len: if matches!(ty, 0x81 | 0x82) {
                                    u64le(&de, 24)
                                } else {
                                    0
                                },
                            },
                            sect,
                        });
                    }
                    _ => {
                        invalid += 1;
                        if seen == 4 && invalid == 4 {
                            corrupt = true;
                        }
                        finish(
                            &mut cur,
                            &mut units,
                            &mut set_bytes,
                            set_ck,
                            expected,
                            &mut out,
                            &mut unnamed,
                            &mut pending,
                        );
                        last = 0;
                    }
                }
            }
        }
        finish(
            &mut cur,
            &mut units,
            &mut set_bytes,
            set_ck,
            expected,
            &mut out,
            &mut unnamed,
            &mut pending,
        );
        for (sect, what) in pending {
            self.lim("exFAT entry set", sect * self.b.ssize, what);
        }
        for n in unnamed {
            if self.sect_alloc(n.sect) == Some(true) && self.unnamed.len() < MAX_ENTRIES {
                self.unnamed.push(n.inum);
            }
        }
        out
    }

    fn run(&mut self) {
        let root = self.b.root;
        let n = self.chain_len(root);
        let size = n * self.cb();
        let at = self.clust_sect(root).unwrap_or(0) * self.b.ssize;
        let runs = self.make_runs(root, size, true, false, at);
        self.named.insert(2);
        let Runs::Ok(v) = runs else {
            self.lim("exFAT root directory", at, "root directory unreadable");
            self.virtual_files();
            return;
        };
        if let Some(f) = v.first() {
            self.dirs_seen.insert(f.0, 1);
        }
        let (buf, addrs) = self.read_sectors(&v, size.min(MAX_DIR_BYTES));
        // The allocation bitmap is named in the root: find it first (TSK
        // reads it at open time).
        let first = self.parse_dir(&buf, &addrs);
        let bm_entry = first
            .iter()
            .find_map(|nm| match (&nm.kind, nm.name.as_str()) {
                (NameKind::Special { clust, len }, "$ALLOC_BITMAP") => Some((*clust, *len)),
                _ => None,
            });
        if let Some((clust, len)) = bm_entry {
            let need = self.b.clusters.div_ceil(8);
            let runs = self.make_runs(clust, len.min(need.max(1)), true, false, 0);
            if let Runs::Ok(r) = runs {
                self.bitmap_off = r.first().map_or(0, |f| f.0 * self.b.ssize);
                let mut bm = Vec::new();
                for (s, k) in r {
                    let off = s * self.b.ssize;
                    // Never more than the image holds there.
                    let n = (k * self.b.ssize).min(self.r.len().saturating_sub(off));
                    let mut b = vec![0u8; n as usize];
                    let got = self.r.read_at(off, &mut b).unwrap_or(0);
                    b.truncate(got);
                    bm.extend_from_slice(&b);
                    if bm.len() as u64 >= need {
                        break;
                    }
                }
                self.bitmap = Some(bm);
            }
        }
        if self.bitmap.is_none() {
            self.lim("exFAT allocation bitmap", at, "no usable allocation bitmap entry in the root directory; clusters are taken as allocated");
            // Unknown: every cluster is taken as allocated (an empty bitmap
            // reads as unknown, which directory parsing treats so).
            self.bitmap = Some(Vec::new());
        }
        // Re-parse with the bitmap known (sector allocation decides names).
        let lims = self.lims.len();
        self.unnamed.clear();
        let names = self.parse_dir(&buf, &addrs);
        // The first parse already reported the same entry-set problems.
        self.lims.truncate(lims);
        let empties: Vec<u64> = names
            .iter()
            .filter(|n| matches!(n.kind, NameKind::Label { empty: true }))
            .map(|n| n.inum)
            .collect();
        self.walk(names, "", 1, false);
        self.virtual_files();
        let mut unnamed = std::mem::take(&mut self.unnamed);
        unnamed.sort_unstable();
        unnamed.dedup();
        for inum in unnamed {
            if self.named.contains(&inum) {
                continue;
            }
            self.push(Entry {
                path: format!("$OrphanFiles/OrphanFile-{inum}"),
                inode: inum,
                kind: FileType::File,
                alloc: Alloc::Orphan,
                size: 0,
                times: Times::default(),
                fn_times: None,
                mode: 0,
                uid: 0,
                gid: 0,
                nlink: 1,
                content: Content::None,
            });
        }
        for inum in empties {
            self.push(Entry {
                path: "$OrphanFiles/$EMPTY_VOLUME_LABEL".into(),
                inode: inum,
                kind: FileType::File,
                alloc: Alloc::Orphan,
                size: 0,
                times: Times::default(),
                fn_times: None,
                mode: 0,
                uid: 0,
                gid: 0,
                nlink: 1,
                content: Content::None,
            });
        }
    }

    fn push(&mut self, e: Entry) -> bool {
        if self.entries.len() >= MAX_ENTRIES {
            if !self.capped {
                self.capped = true;
                self.lim("exFAT directory tree", 0, "too many entries; listing cut");
            }
            return false;
        }
        self.entries.push(e);
        true
    }

    fn walk(&mut self, names: Vec<Name>, prefix: &str, depth: usize, orphan: bool) {
        for n in names {
            self.named.insert(n.inum);
            let path = if prefix.is_empty() {
                n.name.clone()
            } else {
                format!("{prefix}/{}", n.name)
            };
            let alloc = if orphan {
                Alloc::Orphan
            } else if n.alloc {
                Alloc::Allocated
            } else {
                Alloc::Deleted
            };
            let at = n.sect * self.b.ssize;
            let mut e = Entry {
                path: path.clone(),
                inode: n.inum,
                kind: FileType::File,
                alloc,
                size: 0,
                times: Times::default(),
                fn_times: None,
                mode: 0,
                uid: 0,
                gid: 0,
                nlink: u32::from(n.alloc),
                content: Content::None,
            };
            let mut dir_runs = None;
            match &n.kind {
                NameKind::Label { .. } => {}
                NameKind::Special { clust, len } => {
                    let runs = self.make_runs(*clust, *len, true, false, at);
                    e.size = *len;
                    e.content = self.content(&runs, *len, *len);
                }
                NameKind::File {
                    is_dir,
                    file,
                    stream,
                } => {
                    e.kind = if *is_dir {
                        FileType::Dir
                    } else {
                        FileType::File
                    };
                    e.times = times(file);
                    if let Some(st) = stream {
                        let clust = u32le(st, 20);
                        let len = u64le(st, 24);
                        let vdl = u64le(st, 8);
                        let contiguous = st[1] & 0x02 != 0;
                        e.size = len;
                        let runs = self.make_runs(clust, len, n.alloc, contiguous, at);
                        // TSK (icat, fiwalk) reads the clusters up to the data
                        // length, past the valid data length too.
                        let _ = vdl;
                        e.content = self.content(&runs, len, len);
                        if *is_dir {
                            dir_runs = Some((runs, len));
                        }
                    }
                }
            }
            if !self.push(e) {
                return;
            }
            if let Some((Runs::Ok(v), len)) = dir_runs {
                self.descend(&n, &v, len, &path, depth, orphan);
            }
        }
    }

    fn descend(
        &mut self,
        n: &Name,
        v: &[(u64, u64)],
        size: u64,
        path: &str,
        depth: usize,
        orphan: bool,
    ) {
        let Some(first) = v.first().map(|r| r.0) else {
            return;
        };
        let at = n.sect * self.b.ssize;
        if size == 0 || self.stack.contains(&n.inum) {
            return;
        }
        // TSK cannot read a directory whose runs end before its size (the
        // recovery of a deleted directory whose first cluster is in use
        // again gives one cluster): it lists no children. Neither do we.
        let have: u64 = v.iter().map(|r| r.1 * self.b.ssize).sum();
        if have < size {
            self.lim(
                "exFAT directory",
                at,
                format!("{path}: only {have} of its {size} bytes can be located; its entries are not listed"),
            );
            return;
        }
        if depth >= MAX_DEPTH {
            self.lim(
                "exFAT directory",
                at,
                format!("{path}: deeper than {MAX_DEPTH} levels; not walked"),
            );
            return;
        }
        let visits = self.dirs_seen.entry(first).or_insert(0);
        *visits += 1;
        let visits = *visits;
        if visits > 1 {
            if visits > MAX_DIR_VISITS {
                self.lim(
                    "exFAT directory",
                    at,
                    format!("{path}: walked {MAX_DIR_VISITS} times already; not walked again"),
                );
                return;
            }
            self.lim(
                "exFAT directory",
                at,
                format!("{path}: its first cluster (sector {first}) is also another directory's"),
            );
        }
        let len = size.min(MAX_DIR_BYTES);
        let v = v.to_vec();
        let (buf, addrs) = self.read_sectors(&v, len);
        let names = self.parse_dir(&buf, &addrs);
        self.stack.push(n.inum);
        self.walk(names, path, depth + 1, orphan);
        self.stack.pop();
    }

    fn virtual_files(&mut self) {
        let b = self.b.clone();
        let v = crate::fat::virtual_entries(
            self.r,
            self.last_inum,
            b.numfat,
            b.fat_off * b.ssize,
            b.fat_len * b.ssize,
        );
        for e in v {
            self.push(e);
        }
    }
}

/// MAC-B times of a file entry: local times taken as UTC, with the 10 ms
/// increments.
fn times(de: &[u8; 32]) -> Times {
    let ts = |off: usize, tens: Option<u8>| {
        let t = u32le(de, off) as u32;
        let (time, date) = ((t & 0xffff) as u16, (t >> 16) as u16);
        if !is_date(date) {
            return None;
        }
        let tens = tens.unwrap_or(0);
        dos_time(date, time, tens)
            .and_then(|s| Timestamp::from_unix(s, u32::from(tens % 100) * 10_000_000))
    };
    Times {
        crtime: ts(8, Some(de[20])),
        mtime: ts(12, Some(de[21])),
        atime: ts(16, None),
        ctime: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_needs_oem_id() {
        let mut b = vec![0u8; 8192];
        assert!(!probe(&b));
        b[3..11].copy_from_slice(b"EXFAT   ");
        assert!(probe(&b));
    }

    #[test]
    fn checksum_rejects_garbage() {
        let mut region = vec![0u8; 12 * 512];
        assert!(checksum_ok(&region, 512)); // all zeros: sum 0
        region[0] = 1;
        assert!(!checksum_ok(&region, 512));
    }
}
