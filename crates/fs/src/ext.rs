//! ext2/3/4: superblock (backups when the primary is damaged), group
//! descriptors (32/64 bytes, `meta_bg`), inode tables read a group at a time,
//! block maps and extent trees as image runs, inline data, linear and htree
//! directories (htree interior blocks read linearly, as TSK does), deleted
//! names in directory-entry slack, and orphan inodes.
//!
//! What is listed follows The Sleuth Kit (`fls -r -p`) and fiwalk:
//!
//! * The file-system kind is Ext4 when the `extents` incompat feature is set,
//!   Ext3 when the file system has a journal, Ext2 otherwise (TSK's rule).
//! * Directory blocks are scanned the way TSK scans them: entries are
//!   followed by their record length and, where a record is longer than its
//!   name needs, the slack is searched 4 bytes at a time for deleted entries
//!   (a name in the slack, an entry with inode 0, or any entry of an
//!   unallocated directory is a deleted name). The same (inode, name) twice in
//!   a directory is listed once, the allocated one kept.
//! * A name's metadata is its inode whenever the inode number is in range, even
//!   when the inode has since been reused (as `icat` and fiwalk show it).
//! * Deleted directories are descended when both the name and the inode are
//!   unallocated; allocated directories when the name is allocated.
//! * Orphans are TSK's: inodes that are unallocated, were used (ctime != 0)
//!   and that no name reaches; they are listed as
//!   `$OrphanFiles/OrphanFile-<inode>`, and an orphan directory's contents
//!   under it. The virtual `$OrphanFiles` directory itself is listed (inode =
//!   inode count + 1, as TSK numbers it). Allocated inodes no name reaches
//!   (the journal, inode 8; the resize inode, 7; other reserved inodes) are not
//!   listed, as fiwalk does not list them.
//! * Times: mtime/atime/ctime in seconds; on Ext4 nanoseconds and the
//!   creation time from the large-inode extra fields, as TSK reads them (TSK
//!   ignores them on Ext2/Ext3, so do we).
//! * Deleted content: the block pointers / extents still in the unallocated
//!   inode (ext2 keeps them; ext3 and ext4 kernels zero them, leaving a size of
//!   0 or no runs).
//! * `alloc`: Deleted when the name or the inode is unallocated, Orphan under
//!   `$OrphanFiles`.
//!
//! Deliberate differences from TSK 4.11:
//!
//! * Fast symlinks (target stored in `i_block`) are [`Content::Resident`] with
//!   the target; TSK's `icat` (and so fiwalk's MD5) reads them as zeros.
//! * An unallocated inode whose block pointers or extents were zeroed (what
//!   the ext3 and ext4 kernels do on delete) has [`Content::None`] and its
//!   recorded size; TSK reads `size` zeros for it.
//! * Uninitialised extents read as zeros (sparse runs), as the kernel reads
//!   them.
//! * A directory is descended once even when two names lead to it (TSK only
//!   cuts loops through ancestors); deeper than 128 levels is not descended
//!   (TSK's limit), which is reported as a limitation.
//! * Names are UTF-8 with invalid bytes replaced by U+FFFD (fiwalk prints
//!   `\xFF`-style escapes); as in TSK, a NUL byte ends a name.
//! * With `meta_bg`, group descriptors are read where that feature puts them
//!   (TSK reads them as one contiguous table).

use std::collections::{HashMap, HashSet};

use crate::unalloc::FreeRanges;
use crate::{
    Alloc, Content, Entry, FileSystemListing, FileType, FsError, FsKind, Limitation, Run, Times,
    Timestamp, VolumeReader,
};

const SB_OFF: u64 = 1024;
const MAGIC: u16 = 0xEF53;

const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_LARGE_FILE: u32 = 0x2;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_BIGALLOC: u32 = 0x200;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// Group flag: the block bitmap was never initialised.
const BG_BLOCK_UNINIT: u16 = 0x2;

const FL_EXTENTS: u32 = 0x8_0000;
const FL_INLINE_DATA: u32 = 0x1000_0000;

const S_IFMT: u16 = 0xF000;
const S_IFREG: u16 = 0x8000;
const S_IFDIR: u16 = 0x4000;
const S_IFLNK: u16 = 0xA000;

const EXTENT_MAGIC: u16 = 0xF30A;
/// Deepest extent tree the kernel builds is 5 levels; allow a little more.
const MAX_EXTENT_DEPTH: u16 = 8;
/// TSK's directory recursion limit.
const MAX_DIR_DEPTH: usize = 128;
/// Bytes of inode table read at once.
const ITABLE_CHUNK: u64 = 4 << 20;

fn le16(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The fields of a superblock that are used.
#[derive(Clone, Debug)]
struct Super {
    /// Volume offset of the superblock that was used.
    offset: u64,
    inodes_count: u32,
    blocks_count: u64,
    first_data_block: u64,
    block_size: u64,
    blocks_per_group: u64,
    inodes_per_group: u64,
    inode_size: u64,
    compat: u32,
    incompat: u32,
    ro_compat: u32,
    desc_size: u64,
    first_meta_bg: u64,
    block_group_nr: u64,
    groups: u64,
    label: Option<String>,
}

impl Super {
    /// Parses and checks the 1024-byte superblock `b` read at volume offset
    /// `offset`.
    fn parse(b: &[u8], offset: u64) -> Result<Self, String> {
        if b.len() < 1024 {
            return Err("superblock truncated".into());
        }
        if le16(b, 56) != MAGIC {
            return Err(format!("magic {:#06x}, expected 0xef53", le16(b, 56)));
        }
        let log_bs = le32(b, 24);
        if log_bs > 6 {
            return Err(format!("log block size {log_bs} (over 64 KiB blocks)"));
        }
        let block_size = 1024u64 << log_bs;
        let inodes_count = le32(b, 0);
        if inodes_count < 10 {
            return Err(format!("{inodes_count} inodes"));
        }
        let incompat = le32(b, 96);
        let mut blocks_count = u64::from(le32(b, 4));
        if incompat & INCOMPAT_64BIT != 0 {
            blocks_count |= u64::from(le32(b, 336)) << 32;
        }
        let first_data_block = u64::from(le32(b, 20));
        let blocks_per_group = u64::from(le32(b, 32));
        let inodes_per_group = u64::from(le32(b, 40));
        if blocks_per_group == 0 {
            return Err("0 blocks per group".into());
        }
        if inodes_per_group == 0 || inodes_per_group > block_size * 8 {
            return Err(format!(
                "{inodes_per_group} inodes per group (the bitmap holds {})",
                block_size * 8
            ));
        }
        if blocks_count <= first_data_block {
            return Err(format!(
                "{blocks_count} blocks, first data block {first_data_block}"
            ));
        }
        let rev = le32(b, 76);
        let inode_size = if rev == 0 {
            128
        } else {
            u64::from(le16(b, 88))
        };
        if inode_size < 128 || inode_size > block_size || !inode_size.is_power_of_two() {
            return Err(format!("inode size {inode_size}"));
        }
        if u64::from(inodes_count).saturating_mul(inode_size)
            > blocks_count.saturating_mul(block_size)
        {
            return Err(format!(
                "{inodes_count} inodes of {inode_size} bytes exceed the {blocks_count} blocks"
            ));
        }
        let groups = (blocks_count - first_data_block).div_ceil(blocks_per_group);
        if groups.saturating_mul(inodes_per_group) < u64::from(inodes_count) {
            return Err(format!(
                "{inodes_count} inodes do not fit in {groups} groups of {inodes_per_group}"
            ));
        }
        let ds = u64::from(le16(b, 254));
        let desc_size = if incompat & INCOMPAT_64BIT != 0 && ds >= 64 {
            if ds > block_size || !ds.is_power_of_two() {
                return Err(format!("group descriptor size {ds}"));
            }
            ds
        } else {
            32
        };
        let name = &b[120..136];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        let label = String::from_utf8_lossy(&name[..end]).into_owned();
        Ok(Self {
            offset,
            inodes_count,
            blocks_count,
            first_data_block,
            block_size,
            blocks_per_group,
            inodes_per_group,
            inode_size,
            compat: le32(b, 92),
            incompat,
            ro_compat: le32(b, 100),
            desc_size,
            first_meta_bg: u64::from(le32(b, 260)),
            block_group_nr: u64::from(le16(b, 90)),
            groups,
            label: (!label.is_empty()).then_some(label),
        })
    }

    fn kind(&self) -> FsKind {
        if self.incompat & INCOMPAT_EXTENTS != 0 {
            FsKind::Ext4
        } else if self.compat & COMPAT_HAS_JOURNAL != 0 {
            FsKind::Ext3
        } else {
            FsKind::Ext2
        }
    }

    fn group_start(&self, g: u64) -> u64 {
        self.first_data_block
            .saturating_add(g.saturating_mul(self.blocks_per_group))
    }

    fn has_super(&self, g: u64) -> bool {
        if self.ro_compat & RO_COMPAT_SPARSE_SUPER == 0 || g <= 1 {
            return true;
        }
        [3u64, 5, 7].iter().any(|&b| {
            let mut p = b;
            while p < g {
                p = p.saturating_mul(b);
            }
            p == g
        })
    }
}

/// Volume offsets where backup superblocks would be for the usual block
/// sizes (group 1 with 8 * block-size blocks per group).
fn backup_offsets() -> impl Iterator<Item = u64> {
    [1024u64, 2048, 4096].into_iter().map(|bs| {
        let first = u64::from(bs == 1024);
        (first + bs * 8) * bs
    })
}

/// True when the volume holds an ext superblock (at byte 1024, or a backup
/// in group 1 when the primary is damaged).
///
/// # Errors
/// I/O errors.
pub fn probe(r: &VolumeReader<'_>) -> Result<bool, FsError> {
    let mut b = [0u8; 1024];
    if r.read_at(SB_OFF, &mut b)? == 1024 && Super::parse(&b, SB_OFF).is_ok() {
        return Ok(true);
    }
    for off in backup_offsets() {
        if r.read_at(off, &mut b)? == 1024 && Super::parse(&b, off).is_ok() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One group's bitmap and inode table locations (blocks) and flags.
#[derive(Clone, Copy, Debug)]
struct Group {
    block_bitmap: u64,
    inode_bitmap: u64,
    inode_table: u64,
    flags: u16,
}

/// The fields of an inode that are used.
#[derive(Clone, Debug)]
struct Inode {
    /// Volume offset of the inode.
    off: u64,
    mode: u16,
    uid: u32,
    gid: u32,
    size: u64,
    atime: u32,
    ctime: u32,
    mtime: u32,
    links: u16,
    flags: u32,
    block: [u8; 60],
    /// ctime, mtime, atime extra; crtime; crtime extra (Ext4 large inodes).
    extra: [u32; 5],
    /// The `system.data` extended attribute of an inline-data inode: its
    /// bytes and volume offset.
    inline_tail: Option<(Vec<u8>, u64)>,
}

impl Inode {
    fn kind(&self) -> Option<FileType> {
        match self.mode & S_IFMT {
            0 => None,
            S_IFREG => Some(FileType::File),
            S_IFDIR => Some(FileType::Dir),
            S_IFLNK => Some(FileType::Link),
            _ => Some(FileType::Other),
        }
    }
}

/// A directory entry as TSK reads it.
struct Name {
    inode: u32,
    name: Vec<u8>,
    ftype: u8,
    alloc: bool,
}

struct Fs<'a> {
    r: &'a VolumeReader<'a>,
    sb: Super,
    kind: FsKind,
    /// Inodes with any non-zero byte in their first 128 bytes.
    inodes: HashMap<u32, Inode>,
    /// Allocation bit per inode (index inode - 1).
    alloc: Vec<u64>,
    lims: Vec<Limitation>,
}

/// Lists the file system of `r`.
///
/// # Errors
/// No usable superblock (primary nor backup) or unreadable group
/// descriptors; I/O errors.
pub fn list(r: &VolumeReader<'_>) -> Result<FileSystemListing, FsError> {
    let mut lims = Vec::new();
    let mut b = vec![0u8; 1024];
    let n = r.read_at(SB_OFF, &mut b)?;
    let sb = match Super::parse(&b[..n], SB_OFF) {
        Ok(sb) => sb,
        Err(why) => {
            let mut found = None;
            for off in backup_offsets() {
                let k = r.read_at(off, &mut b)?;
                if let Ok(sb) = Super::parse(&b[..k], off) {
                    found = Some(sb);
                    break;
                }
            }
            match found {
                Some(sb) => {
                    lims.push(Limitation {
                        volume_offset: r.base(),
                        structure: "ext superblock".into(),
                        offset: r.image_offset(SB_OFF),
                        what: format!(
                            "primary superblock unusable ({why}); using the backup at image offset {}",
                            r.image_offset(sb.offset)
                        ),
                    });
                    sb
                }
                None => {
                    return Err(FsError::corrupt(
                        "ext superblock",
                        r.image_offset(SB_OFF),
                        why,
                    ));
                }
            }
        }
    };
    let groups = read_groups(r, &sb, &mut lims)?;
    let mut fs = Fs {
        r,
        kind: sb.kind(),
        alloc: vec![0; (sb.inodes_count as usize).div_ceil(64)],
        inodes: HashMap::new(),
        sb,
        lims,
    };
    fs.load_inodes(&groups)?;
    let unallocated = fs.unallocated(&groups)?;
    let mut w = Walker {
        fs: &fs,
        entries: Vec::new(),
        lims: Vec::new(),
        visited: HashSet::new(),
        named_unalloc: HashSet::new(),
    };
    w.visited.insert(2);
    w.walk_dir(2, "", 0, false);
    w.orphans();
    let Walker { entries, lims, .. } = w;
    let mut limitations = fs.lims;
    limitations.extend(lims);
    Ok(FileSystemListing {
        partition_offset: r.base(),
        fs: fs.kind,
        label: fs.sb.label.clone(),
        block_size: fs.sb.block_size,
        size: fs.sb.blocks_count.saturating_mul(fs.sb.block_size),
        entries,
        limitations,
        unallocated,
    })
}

/// Reads the group descriptors.
fn read_groups(
    r: &VolumeReader<'_>,
    sb: &Super,
    lims: &mut Vec<Limitation>,
) -> Result<Vec<Group>, FsError> {
    let bs = sb.block_size;
    let per_block = bs / sb.desc_size;
    let nblocks = sb.groups.div_ceil(per_block);
    // The superblock's own group: the descriptor copy follows it.
    let sb_group = if sb.offset == SB_OFF {
        0
    } else {
        sb.block_group_nr
    };
    let base = sb.group_start(sb_group).saturating_add(1);
    let meta_bg = sb.incompat & INCOMPAT_META_BG != 0;
    let mut raw = Vec::new();
    let mut b = 0u64;
    while b < nblocks {
        // Contiguous descriptor blocks are read at once.
        if !meta_bg || b < sb.first_meta_bg {
            let end = if meta_bg {
                nblocks.min(sb.first_meta_bg)
            } else {
                nblocks
            };
            let off = base.saturating_add(b).saturating_mul(bs);
            let v = r.read_vec(off, (end - b).saturating_mul(bs), "ext group descriptors")?;
            raw.extend_from_slice(&v);
            b = end;
        } else {
            let g = b.saturating_mul(per_block);
            let blk = sb.group_start(g).saturating_add(u64::from(sb.has_super(g)));
            let v = r.read_vec(
                blk.saturating_mul(bs),
                bs,
                "ext group descriptors (meta_bg)",
            )?;
            raw.extend_from_slice(&v);
            b += 1;
        }
    }
    let ds = sb.desc_size as usize;
    let wide = ds >= 64;
    let mut out = Vec::with_capacity(sb.groups as usize);
    for g in 0..sb.groups as usize {
        let d = raw.get(g * ds..g * ds + ds).unwrap_or(&[]);
        let mut bb = u64::from(le32(d, 0));
        let mut ib = u64::from(le32(d, 4));
        let mut it = u64::from(le32(d, 8));
        if wide {
            bb |= u64::from(le32(d, 32)) << 32;
            ib |= u64::from(le32(d, 36)) << 32;
            it |= u64::from(le32(d, 40)) << 32;
        }
        if it == 0 || it >= sb.blocks_count {
            lims.push(Limitation {
                volume_offset: r.base(),
                structure: format!("ext group descriptor {g}"),
                offset: r.image_offset(base.saturating_mul(bs) + (g * ds) as u64),
                what: format!(
                    "inode table at block {it}, the file system has {} blocks",
                    sb.blocks_count
                ),
            });
        }
        out.push(Group {
            block_bitmap: bb,
            inode_bitmap: ib,
            inode_table: it,
            flags: le16(d, 18),
        });
    }
    Ok(out)
}

impl Fs<'_> {
    fn lim(&mut self, structure: String, vol_off: u64, what: String) {
        self.lims.push(Limitation {
            volume_offset: self.r.base(),
            structure,
            offset: self.r.image_offset(vol_off),
            what,
        });
    }

    fn is_alloc(&self, inum: u32) -> bool {
        let i = u64::from(inum).wrapping_sub(1);
        self.alloc
            .get((i / 64) as usize)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// The inode `inum` (all-zero when never written), `None` when out of
    /// range.
    fn inode(&self, inum: u32) -> Option<&Inode> {
        static ZERO: Inode = Inode {
            off: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            atime: 0,
            ctime: 0,
            mtime: 0,
            links: 0,
            flags: 0,
            block: [0; 60],
            extra: [0; 5],
            inline_tail: None,
        };
        if inum == 0 || inum > self.sb.inodes_count {
            return None;
        }
        Some(self.inodes.get(&inum).unwrap_or(&ZERO))
    }

    /// Free blocks as TSK's block walk finds them (`blkls -A`): the blocks
    /// whose bit in their group's block bitmap is 0, wherever `flex_bg`
    /// put that bitmap. Blocks before the first data block, and block 0,
    /// are allocated (TSK's rule). A group with a bitmap that cannot be
    /// read is left out (a limitation).
    ///
    /// `BLOCK_UNINIT` groups (on file systems with group descriptor
    /// checksums, where the flag means something) never had their bitmap
    /// written: all their blocks are free, their backup superblock,
    /// descriptors and (without `flex_bg`) bitmaps and inode table too.
    /// That is what TSK reports on the images mke2fs and the kernel make
    /// (it reads the bitmap block, which is zeros there); where that
    /// never-written block holds old bytes, TSK reads them as allocation
    /// and we do not.
    fn unallocated(&mut self, groups: &[Group]) -> Result<Vec<(u64, u64)>, FsError> {
        let sb = self.sb.clone();
        let bs = sb.block_size;
        let mut out = FreeRanges::new(self.r, sb.blocks_count.saturating_mul(bs));
        if sb.ro_compat & RO_COMPAT_BIGALLOC != 0 {
            self.lim(
                "ext block bitmaps".into(),
                sb.offset,
                "bigalloc: the bitmaps count clusters; unallocated space not listed".into(),
            );
            return Ok(Vec::new());
        }
        let csum = sb.ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0;
        for (g, grp) in groups.iter().enumerate() {
            let start = sb.group_start(g as u64);
            if start >= sb.blocks_count {
                break;
            }
            let count = sb.blocks_per_group.min(sb.blocks_count - start);
            if csum && grp.flags & BG_BLOCK_UNINIT != 0 {
                out.free(start * bs, count * bs);
                continue;
            }
            let Some(mut bits) = self.block_bitmap(g, grp)? else {
                continue;
            };
            if start == 0 {
                // Block 0 (the boot block and superblock) is always
                // allocated for TSK.
                bits[0] |= 1;
            }
            let have = out.bitmap(&bits, count, start * bs, bs);
            if have < count {
                self.lim(
                    format!("ext block bitmap of group {g}"),
                    grp.block_bitmap * bs,
                    format!("holds {have} of the group's {count} blocks; the rest are not listed as unallocated"),
                );
            }
        }
        Ok(out.done())
    }

    /// Group `g`'s block bitmap (one block), `None` (a limitation) when its
    /// location is out of range or unreadable.
    fn block_bitmap(&mut self, g: usize, grp: &Group) -> Result<Option<Vec<u8>>, FsError> {
        let bs = self.sb.block_size;
        if grp.block_bitmap == 0 || grp.block_bitmap >= self.sb.blocks_count {
            self.lim(
                format!("ext group descriptor {g}"),
                0,
                format!(
                    "block bitmap at block {}; the group's unallocated blocks are not listed",
                    grp.block_bitmap
                ),
            );
            return Ok(None);
        }
        let off = grp.block_bitmap * bs;
        let mut bits = vec![0u8; bs as usize];
        match self.r.read_exact(off, &mut bits, "ext block bitmap") {
            Ok(()) => Ok(Some(bits)),
            Err(FsError::Io(e)) => Err(FsError::Io(e)),
            Err(e) => {
                self.lim(format!("ext block bitmap of group {g}"), off, e.to_string());
                Ok(None)
            }
        }
    }

    /// Reads every group's inode bitmap and inode table.
    fn load_inodes(&mut self, groups: &[Group]) -> Result<(), FsError> {
        let bs = self.sb.block_size;
        let ipg = self.sb.inodes_per_group;
        let isz = self.sb.inode_size;
        let count = u64::from(self.sb.inodes_count);
        for (g, grp) in groups.iter().enumerate() {
            let first = g as u64 * ipg + 1;
            if first > count {
                break;
            }
            let n = ipg.min(count - first + 1);
            // Bitmap.
            let mut bitmap_ok = false;
            let mut bits = vec![0u8; bs as usize];
            if grp.inode_bitmap != 0 && grp.inode_bitmap < self.sb.blocks_count {
                let off = grp.inode_bitmap * bs;
                match self.r.read_exact(off, &mut bits, "ext inode bitmap") {
                    Ok(()) => bitmap_ok = true,
                    Err(FsError::Io(e)) => return Err(FsError::Io(e)),
                    Err(e) => {
                        self.lim(format!("ext inode bitmap of group {g}"), off, e.to_string())
                    }
                }
            } else {
                self.lim(
                    format!("ext group descriptor {g}"),
                    0,
                    format!(
                        "inode bitmap at block {}; allocation guessed from link counts",
                        grp.inode_bitmap
                    ),
                );
            }
            if grp.inode_table == 0 || grp.inode_table >= self.sb.blocks_count {
                continue;
            }
            let table = grp.inode_table * bs;
            let mut done = 0u64;
            while done < n {
                let k = (ITABLE_CHUNK / isz).max(1).min(n - done);
                let off = table + done * isz;
                let buf = match self.r.read_vec(off, k * isz, "ext inode table") {
                    Ok(v) => v,
                    Err(FsError::Io(e)) => return Err(FsError::Io(e)),
                    Err(e) => {
                        self.lim(format!("ext inode table of group {g}"), off, e.to_string());
                        break;
                    }
                };
                for i in 0..k {
                    let idx = done + i;
                    let inum = (first + idx) as u32;
                    let raw = &buf[(i * isz) as usize..((i + 1) * isz) as usize];
                    let nonzero = raw[..128].iter().any(|&c| c != 0);
                    let ino = nonzero.then(|| self.parse_inode(raw, off + i * isz));
                    let allocated = if bitmap_ok {
                        bits.get((idx / 8) as usize)
                            .is_some_and(|b| b >> (idx % 8) & 1 == 1)
                    } else {
                        ino.as_ref()
                            .is_some_and(|x| x.links > 0 && le32(raw, 20) == 0)
                    };
                    if allocated {
                        let j = u64::from(inum) - 1;
                        if let Some(w) = self.alloc.get_mut((j / 64) as usize) {
                            *w |= 1 << (j % 64);
                        }
                    }
                    if let Some(ino) = ino {
                        self.inodes.insert(inum, ino);
                    }
                }
                done += k;
            }
        }
        Ok(())
    }

    fn parse_inode(&self, raw: &[u8], off: u64) -> Inode {
        let mode = le16(raw, 0);
        let mut size = u64::from(le32(raw, 4));
        if mode & S_IFMT == S_IFREG && self.sb.ro_compat & RO_COMPAT_LARGE_FILE != 0 {
            size |= u64::from(le32(raw, 108)) << 32;
        }
        let mut block = [0u8; 60];
        block.copy_from_slice(&raw[40..100]);
        let flags = le32(raw, 32);
        let mut extra = [0u32; 5];
        if self.kind == FsKind::Ext4 && raw.len() > 128 {
            for (k, o) in [132usize, 136, 140, 144, 148].into_iter().enumerate() {
                extra[k] = le32(raw, o);
            }
        }
        let inline_tail = if flags & FL_INLINE_DATA != 0 {
            inline_xattr(raw).map(|(s, e)| (raw[s..e].to_vec(), off + s as u64))
        } else {
            None
        };
        Inode {
            off,
            mode,
            uid: u32::from(le16(raw, 2)) | u32::from(le16(raw, 120)) << 16,
            gid: u32::from(le16(raw, 24)) | u32::from(le16(raw, 122)) << 16,
            size,
            atime: le32(raw, 8),
            ctime: le32(raw, 12),
            mtime: le32(raw, 16),
            links: le16(raw, 26),
            flags,
            block,
            extra,
            inline_tail,
        }
    }

    fn times(&self, ino: &Inode) -> Times {
        let ext4 = self.kind == FsKind::Ext4;
        let t = |secs: u32, extra: u32| {
            Timestamp::from_unix(i64::from(secs), if ext4 { extra >> 2 } else { 0 })
        };
        Times {
            mtime: t(ino.mtime, ino.extra[1]),
            atime: t(ino.atime, ino.extra[2]),
            ctime: t(ino.ctime, ino.extra[0]),
            crtime: if ext4 {
                t(ino.extra[3], ino.extra[4])
            } else {
                None
            },
        }
    }

    /// The content of inode `inum` as `icat` reads it (fast symlinks as
    /// their target).
    fn content(&self, inum: u32, ino: &Inode, lims: &mut Vec<Limitation>) -> Content {
        if ino.flags & FL_INLINE_DATA != 0 {
            let mut bytes = ino.block.to_vec();
            if let Some((tail, _)) = &ino.inline_tail {
                bytes.extend_from_slice(tail);
            }
            bytes.truncate(ino.size.min(usize::MAX as u64) as usize);
            return Content::Resident {
                bytes,
                offset: self.r.image_offset(ino.off + 40),
            };
        }
        if ino.size == 0 {
            return Content::None;
        }
        if ino.kind() == Some(FileType::Link) && ino.flags & FL_EXTENTS == 0 && ino.size < 60 {
            return Content::Resident {
                bytes: ino.block[..ino.size as usize].to_vec(),
                offset: self.r.image_offset(ino.off + 40),
            };
        }
        let res = if ino.flags & FL_EXTENTS != 0 {
            self.extent_runs(ino)
        } else {
            self.blockmap_runs(ino)
        };
        match res {
            Ok(runs) => Content::Runs {
                runs,
                size: ino.size,
            },
            Err((off, what)) => {
                lims.push(Limitation {
                    volume_offset: self.r.base(),
                    structure: if ino.flags & FL_EXTENTS != 0 {
                        format!("ext4 extent tree of inode {inum}")
                    } else {
                        format!("ext block map of inode {inum}")
                    },
                    offset: self.r.image_offset(off),
                    what,
                });
                Content::None
            }
        }
    }

    /// Block pointers (direct, indirect, double, triple) to runs, holes as
    /// sparse runs.
    fn blockmap_runs(&self, ino: &Inode) -> Result<Vec<Run>, (u64, String)> {
        let bs = self.sb.block_size;
        let mut rb = RunBuilder::new(self, ino.off + 40);
        let mut left = ino.size.div_ceil(bs);
        for i in 0..12 {
            if left == 0 {
                break;
            }
            rb.block(u64::from(le32(&ino.block, i * 4)), 1)?;
            left -= 1;
        }
        let mut seen = HashSet::new();
        for level in 1..=3u32 {
            if left == 0 {
                break;
            }
            let ptr = u64::from(le32(&ino.block, 44 + level as usize * 4));
            self.indirect(&mut rb, ptr, level, &mut left, &mut seen)?;
        }
        Ok(rb.runs)
    }

    fn indirect(
        &self,
        rb: &mut RunBuilder,
        ptr: u64,
        level: u32,
        left: &mut u64,
        seen: &mut HashSet<u64>,
    ) -> Result<(), (u64, String)> {
        let bs = self.sb.block_size;
        let ppb = bs / 4;
        if ptr == 0 {
            let span = ppb.saturating_pow(level);
            let n = span.min(*left);
            rb.block(0, n)?;
            *left -= n;
            return Ok(());
        }
        if ptr >= self.sb.blocks_count {
            return Err((
                rb.at,
                format!(
                    "indirect block {ptr} past the file system's {} blocks",
                    self.sb.blocks_count
                ),
            ));
        }
        if !seen.insert(ptr) {
            return Err((ptr * bs, format!("indirect block {ptr} used twice")));
        }
        let buf = self
            .r
            .read_vec(ptr * bs, bs, "ext indirect block")
            .map_err(|e| (ptr * bs, e.to_string()))?;
        for i in 0..ppb as usize {
            if *left == 0 {
                break;
            }
            let p = u64::from(le32(&buf, i * 4));
            if level == 1 {
                rb.at = ptr * bs + i as u64 * 4;
                rb.block(p, 1)?;
                *left -= 1;
            } else {
                self.indirect(rb, p, level - 1, left, seen)?;
            }
        }
        Ok(())
    }

    /// Extent tree to runs: holes and uninitialised extents as sparse runs.
    fn extent_runs(&self, ino: &Inode) -> Result<Vec<Run>, (u64, String)> {
        let bs = self.sb.block_size;
        let mut exts: Vec<(u64, u64, u64, bool)> = Vec::new();
        let mut seen = HashSet::new();
        self.extent_node(&ino.block, ino.off + 40, None, &mut exts, &mut seen)?;
        exts.sort_unstable_by_key(|e| e.0);
        let nblocks = ino.size.div_ceil(bs);
        let mut rb = RunBuilder::new(self, ino.off + 40);
        let mut cur = 0u64;
        for (lblk, phys, len, uninit) in exts {
            if cur >= nblocks {
                break;
            }
            if lblk < cur {
                return Err((
                    ino.off + 40,
                    format!("extents overlap at logical block {lblk}"),
                ));
            }
            if lblk >= nblocks {
                break;
            }
            if lblk > cur {
                rb.block(0, lblk - cur)?;
            }
            let len = len.min(nblocks - lblk);
            if uninit {
                // Allocated but never written: reads as zeros.
                if phys
                    .checked_add(len)
                    .is_none_or(|e| e > self.sb.blocks_count)
                {
                    return Err((
                        ino.off + 40,
                        format!("extent at block {phys} (+{len}) past the file system"),
                    ));
                }
                rb.block(0, len)?;
            } else {
                rb.block_run(phys, len)?;
            }
            cur = lblk + len;
        }
        Ok(rb.runs)
    }

    /// Walks one extent node (`buf`, at volume offset `at`).
    fn extent_node(
        &self,
        buf: &[u8],
        at: u64,
        want_depth: Option<u16>,
        out: &mut Vec<(u64, u64, u64, bool)>,
        seen: &mut HashSet<u64>,
    ) -> Result<(), (u64, String)> {
        if le16(buf, 0) != EXTENT_MAGIC {
            return Err((at, format!("extent header magic {:#06x}", le16(buf, 0))));
        }
        let entries = le16(buf, 2) as usize;
        let depth = le16(buf, 6);
        let cap = (buf.len() - 12) / 12;
        if entries > cap {
            return Err((
                at,
                format!("{entries} extent entries, the node holds {cap}"),
            ));
        }
        if depth > MAX_EXTENT_DEPTH || want_depth.is_some_and(|d| d != depth) {
            return Err((at, format!("extent node depth {depth}")));
        }
        let bs = self.sb.block_size;
        for i in 0..entries {
            let e = &buf[12 + i * 12..24 + i * 12];
            let lblk = u64::from(le32(e, 0));
            if depth == 0 {
                let raw_len = u64::from(le16(e, 4));
                let (len, uninit) = if raw_len > 32768 {
                    (raw_len - 32768, true)
                } else {
                    (raw_len, false)
                };
                let phys = u64::from(le16(e, 6)) << 32 | u64::from(le32(e, 8));
                if len > 0 {
                    out.push((lblk, phys, len, uninit));
                }
            } else {
                let child = u64::from(le16(e, 8)) << 32 | u64::from(le32(e, 4));
                if child == 0 || child >= self.sb.blocks_count {
                    return Err((
                        at + 12 + i as u64 * 12,
                        format!("extent index points at block {child}"),
                    ));
                }
                if !seen.insert(child) || seen.len() as u64 > self.sb.blocks_count {
                    return Err((child * bs, format!("extent node {child} reached twice")));
                }
                let node = self
                    .r
                    .read_vec(child * bs, bs, "ext4 extent node")
                    .map_err(|e| (child * bs, e.to_string()))?;
                self.extent_node(&node, child * bs, Some(depth - 1), out, seen)?;
            }
        }
        Ok(())
    }

    /// The names in directory `ino` (TSK's scan, duplicates merged).
    fn read_dir(
        &self,
        inum: u32,
        ino: &Inode,
        unalloc: bool,
        lims: &mut Vec<Limitation>,
    ) -> Vec<Name> {
        let mut names = Vec::new();
        let mut index: HashMap<(u32, Vec<u8>), usize> = HashMap::new();
        let mut add = |n: Name, names: &mut Vec<Name>| {
            let key = (n.inode, n.name.clone());
            match index.get(&key) {
                Some(&i) => {
                    if !names[i].alloc && n.alloc {
                        names[i] = n;
                    }
                }
                None => {
                    index.insert(key, names.len());
                    names.push(n);
                }
            }
        };
        let v2 = self.sb.incompat & INCOMPAT_FILETYPE != 0;
        let last = self.sb.inodes_count.saturating_add(1);
        match self.content(inum, ino, lims) {
            Content::Resident { bytes, .. } => {
                parse_dir_block(&bytes, v2, last, unalloc, &mut |n| add(n, &mut names));
            }
            Content::Runs { runs, size } => {
                let bs = self.sb.block_size;
                let mut left = size.div_ceil(bs).saturating_mul(bs);
                let mut buf = Vec::new();
                for run in runs {
                    if left == 0 {
                        break;
                    }
                    let len = run.length.min(left);
                    left -= len;
                    let Some(o) = run.offset else { continue };
                    let mut done = 0;
                    while done < len {
                        let k = (len - done).min(1 << 20);
                        buf.resize(k as usize, 0);
                        let vol = o.saturating_sub(self.r.base()) + done;
                        if let Err(e) = self.r.read_exact(vol, &mut buf, "ext directory block") {
                            lims.push(Limitation {
                                volume_offset: self.r.base(),
                                structure: format!("ext directory {inum}"),
                                offset: o + done,
                                what: e.to_string(),
                            });
                            break;
                        }
                        for blk in buf.chunks(bs as usize) {
                            parse_dir_block(blk, v2, last, unalloc, &mut |n| add(n, &mut names));
                        }
                        done += k;
                    }
                }
            }
            _ => {}
        }
        names
    }
}

/// Finds the `system.data` extended attribute in the inode body; returns
/// its value's range in `raw`.
fn inline_xattr(raw: &[u8]) -> Option<(usize, usize)> {
    let extra = le16(raw, 128) as usize;
    let start = 128usize.checked_add(extra)?;
    if le32(raw, start) != 0xEA02_0000 {
        return None;
    }
    let base = start + 4;
    let mut p = base;
    while p + 16 <= raw.len() {
        if le32(raw, p) == 0 {
            break;
        }
        let name_len = raw[p] as usize;
        let index = raw[p + 1];
        let value_off = le16(raw, p + 2) as usize;
        let value_inum = le32(raw, p + 4);
        let value_size = le32(raw, p + 8) as usize;
        let name = raw.get(p + 16..p + 16 + name_len)?;
        if index == 7 && name == b"data" && value_inum == 0 {
            let s = base.checked_add(value_off)?;
            let e = s.checked_add(value_size)?;
            return (e <= raw.len()).then_some((s, e));
        }
        p += (16 + name_len).div_ceil(4) * 4;
    }
    None
}

/// TSK's directory-block scan: follows record lengths and searches the slack
/// after each entry 4 bytes at a time for deleted entries.
fn parse_dir_block(buf: &[u8], v2: bool, last_inum: u32, unalloc: bool, out: &mut dyn FnMut(Name)) {
    let dirsiz = |n: usize| (n + 8 + 3) & !3;
    let len = buf.len();
    if len < dirsiz(1) {
        return;
    }
    let mut idx = 0usize;
    let mut dellen: usize = 0;
    while idx <= len - dirsiz(1) {
        let inode = le32(buf, idx);
        let reclen = le16(buf, idx + 4) as usize;
        let namelen = if v2 {
            buf[idx + 6] as usize
        } else {
            le16(buf, idx + 6) as usize
        };
        let minrec = dirsiz(namelen);
        if inode > last_inum
            || namelen > 255
            || namelen == 0
            || reclen < minrec
            || !reclen.is_multiple_of(4)
            || idx + reclen > len
        {
            dellen = dellen.saturating_sub(4);
            idx += 4;
            continue;
        }
        if dellen > 0 && dellen < minrec {
            dellen -= 4.min(dellen);
            idx += 4;
            continue;
        }
        // TSK copies names as C strings: a NUL ends the name.
        let raw = &buf[idx + 8..idx + 8 + namelen];
        let name = raw[..raw.iter().position(|&c| c == 0).unwrap_or(raw.len())].to_vec();
        let ftype = if v2 { buf[idx + 7] } else { 0 };
        let deleted = dellen > 0 || inode == 0 || unalloc;
        if dellen > 0 {
            dellen -= minrec;
        }
        out(Name {
            inode,
            name,
            ftype,
            alloc: !deleted,
        });
        let mut step = minrec;
        if dellen == 0 {
            if reclen - minrec >= dirsiz(1) {
                dellen = reclen - minrec;
            } else {
                step = reclen;
            }
        }
        idx += step;
    }
}

/// Accumulates block-granular runs, merging contiguous ones.
struct RunBuilder {
    runs: Vec<Run>,
    bs: u64,
    base: u64,
    blocks: u64,
    /// Volume offset of the pointer being read (for limitations).
    at: u64,
}

impl RunBuilder {
    fn new(fs: &Fs<'_>, at: u64) -> Self {
        Self {
            runs: Vec::new(),
            bs: fs.sb.block_size,
            base: fs.r.base(),
            blocks: fs.sb.blocks_count,
            at,
        }
    }

    /// `n` blocks at block `b` (0 = sparse) when `n` is 1; a sparse run of
    /// `n` blocks when `b` is 0.
    fn block(&mut self, b: u64, n: u64) -> Result<(), (u64, String)> {
        if b == 0 {
            self.push(None, n.saturating_mul(self.bs));
            Ok(())
        } else {
            self.block_run(b, n)
        }
    }

    fn block_run(&mut self, b: u64, n: u64) -> Result<(), (u64, String)> {
        if b.checked_add(n).is_none_or(|e| e > self.blocks) {
            return Err((
                self.at,
                format!(
                    "block {b} (+{n}) past the file system's {} blocks",
                    self.blocks
                ),
            ));
        }
        let off = self.base.saturating_add(b * self.bs);
        self.push(Some(off), n * self.bs);
        Ok(())
    }

    fn push(&mut self, offset: Option<u64>, length: u64) {
        if length == 0 {
            return;
        }
        if let Some(last) = self.runs.last_mut() {
            let contiguous = match (last.offset, offset) {
                (None, None) => true,
                (Some(a), Some(b)) => a.checked_add(last.length) == Some(b),
                _ => false,
            };
            if contiguous {
                last.length = last.length.saturating_add(length);
                return;
            }
        }
        self.runs.push(Run { offset, length });
    }
}

struct Walker<'a> {
    fs: &'a Fs<'a>,
    entries: Vec<Entry>,
    lims: Vec<Limitation>,
    /// Directories already descended.
    visited: HashSet<u32>,
    /// Unallocated inodes some name reaches (not orphans).
    named_unalloc: HashSet<u32>,
}

fn is_dot(n: &[u8]) -> bool {
    n == b"." || n == b".."
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl Walker<'_> {
    /// Lists directory `inum` (path `path`) and descends.
    fn walk_dir(&mut self, inum: u32, path: &str, depth: usize, orphan: bool) {
        let fs = self.fs;
        let Some(ino) = fs.inode(inum) else { return };
        let unalloc = !fs.is_alloc(inum);
        let names = fs.read_dir(inum, ino, unalloc, &mut self.lims);
        for n in names {
            let meta = if n.inode != 0 {
                fs.inode(n.inode)
            } else {
                None
            };
            let meta_alloc = fs.is_alloc(n.inode);
            if meta.is_some() && !meta_alloc {
                self.named_unalloc.insert(n.inode);
            }
            if is_dot(&n.name) {
                continue;
            }
            let name = String::from_utf8_lossy(&n.name);
            let p = join(path, &name);
            let alloc = if orphan {
                Alloc::Orphan
            } else if n.alloc && (meta.is_none() || meta_alloc) {
                Alloc::Allocated
            } else {
                Alloc::Deleted
            };
            let name_kind = match n.ftype {
                2 => Some(FileType::Dir),
                7 => Some(FileType::Link),
                3..=6 => Some(FileType::Other),
                1 => Some(FileType::File),
                _ => None,
            };
            self.push_entry(p.clone(), n.inode, name_kind, meta, alloc);
            let Some(m) = meta else { continue };
            let descend = matches!(name_kind, None | Some(FileType::Dir))
                && m.kind() == Some(FileType::Dir)
                && (n.alloc || !meta_alloc);
            if !descend || !self.visited.insert(n.inode) {
                continue;
            }
            if depth + 1 >= MAX_DIR_DEPTH {
                self.lims.push(Limitation {
                    volume_offset: fs.r.base(),
                    structure: format!("ext directory {}", n.inode),
                    offset: fs.r.image_offset(m.off),
                    what: format!("{p}: deeper than {MAX_DIR_DEPTH} levels, not descended"),
                });
                continue;
            }
            self.walk_dir(n.inode, &p, depth + 1, orphan);
        }
    }

    fn push_entry(
        &mut self,
        path: String,
        inum: u32,
        name_kind: Option<FileType>,
        meta: Option<&Inode>,
        alloc: Alloc,
    ) {
        let fs = self.fs;
        let e = match meta {
            Some(m) => Entry {
                path,
                inode: u64::from(inum),
                kind: m.kind().or(name_kind).unwrap_or(FileType::File),
                alloc,
                size: m.size,
                times: fs.times(m),
                fn_times: None,
                mode: u32::from(m.mode),
                uid: m.uid,
                gid: m.gid,
                nlink: u32::from(m.links),
                content: match m.kind() {
                    Some(FileType::Other) => Content::None,
                    _ => match fs.content(inum, m, &mut self.lims) {
                        // A deleted inode whose pointers / extents were
                        // zeroed (ext3, ext4 kernels): nothing to recover
                        // (TSK reads `size` zeros).
                        Content::Runs { runs, .. }
                            if !fs.is_alloc(inum) && runs.iter().all(|r| r.offset.is_none()) =>
                        {
                            Content::None
                        }
                        c => c,
                    },
                },
            },
            None => Entry {
                path,
                inode: u64::from(inum),
                kind: name_kind.unwrap_or(FileType::File),
                alloc,
                size: 0,
                times: Times::default(),
                fn_times: None,
                mode: 0,
                uid: 0,
                gid: 0,
                nlink: 0,
                content: Content::None,
            },
        };
        self.entries.push(e);
    }

    /// `$OrphanFiles` and the orphan inodes under it.
    fn orphans(&mut self) {
        let fs = self.fs;
        let orphan_dir = fs.sb.inodes_count.saturating_add(1);
        self.entries.push(Entry {
            path: "$OrphanFiles".into(),
            inode: u64::from(orphan_dir),
            kind: FileType::Dir,
            alloc: Alloc::Allocated,
            size: 0,
            times: Times::default(),
            fn_times: None,
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            content: Content::None,
        });
        let mut cands: Vec<u32> = fs
            .inodes
            .iter()
            .filter(|(i, ino)| {
                ino.ctime != 0 && !fs.is_alloc(**i) && !self.named_unalloc.contains(i)
            })
            .map(|(i, _)| *i)
            .collect();
        cands.sort_unstable();
        // Inodes reachable from an orphan directory are listed under it,
        // not at the top of $OrphanFiles.
        let mut sub: HashSet<u32> = HashSet::new();
        for &o in &cands {
            if sub.contains(&o) {
                continue;
            }
            let Some(ino) = fs.inode(o) else { continue };
            if ino.kind() != Some(FileType::Dir) {
                continue;
            }
            let mut seen = HashSet::from([o]);
            let mut stack = vec![(o, 0usize)];
            let mut scratch = Vec::new();
            while let Some((d, depth)) = stack.pop() {
                let Some(dino) = fs.inode(d) else { continue };
                for n in fs.read_dir(d, dino, !fs.is_alloc(d), &mut scratch) {
                    if is_dot(&n.name) || n.alloc || n.inode == 0 {
                        continue;
                    }
                    let Some(m) = fs.inode(n.inode) else { continue };
                    if fs.is_alloc(n.inode) {
                        continue;
                    }
                    sub.insert(n.inode);
                    if m.kind() == Some(FileType::Dir)
                        && depth + 1 < MAX_DIR_DEPTH
                        && seen.insert(n.inode)
                    {
                        stack.push((n.inode, depth + 1));
                    }
                }
            }
        }
        self.visited.clear();
        for o in cands {
            if sub.contains(&o) {
                continue;
            }
            let Some(ino) = fs.inode(o) else { continue };
            let p = format!("$OrphanFiles/OrphanFile-{o}");
            self.push_entry(p.clone(), o, None, Some(ino), Alloc::Orphan);
            if ino.kind() == Some(FileType::Dir) && self.visited.insert(o) {
                self.walk_dir(o, &p, 1, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_block_slack_holds_deleted_names() {
        // "a" (inode 12) whose record covers a deleted "bb" (inode 13).
        let mut b = vec![0u8; 1024];
        b[0..4].copy_from_slice(&12u32.to_le_bytes());
        b[4..6].copy_from_slice(&1024u16.to_le_bytes());
        b[6] = 1;
        b[7] = 1;
        b[8] = b'a';
        b[12..16].copy_from_slice(&13u32.to_le_bytes());
        b[16..18].copy_from_slice(&1012u16.to_le_bytes());
        b[18] = 2;
        b[19] = 1;
        b[20..22].copy_from_slice(b"bb");
        let mut got = Vec::new();
        parse_dir_block(&b, true, 100, false, &mut |n| {
            got.push((n.inode, n.name, n.alloc))
        });
        assert_eq!(
            got,
            vec![(12, b"a".to_vec(), true), (13, b"bb".to_vec(), false)]
        );
    }

    #[test]
    fn dir_block_garbage_never_panics() {
        let mut x = 0x1234_5678u32;
        for len in [0usize, 3, 11, 12, 13, 60, 1024, 4096] {
            let mut b = vec![0u8; len];
            for _ in 0..50 {
                for c in b.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    *c = (x & 0xff) as u8;
                }
                parse_dir_block(&b, true, u32::MAX, false, &mut |_| {});
                parse_dir_block(&b, false, 50, true, &mut |_| {});
            }
        }
    }

    #[test]
    fn inline_xattr_bounds() {
        let mut raw = vec![0u8; 256];
        raw[128..130].copy_from_slice(&32u16.to_le_bytes());
        raw[160..164].copy_from_slice(&0xEA02_0000u32.to_le_bytes());
        // entry: name_len 4, index 7, value_offs 200 (past the end), size 10
        raw[164] = 4;
        raw[165] = 7;
        raw[166..168].copy_from_slice(&200u16.to_le_bytes());
        raw[172..176].copy_from_slice(&10u32.to_le_bytes());
        raw[180..184].copy_from_slice(b"data");
        assert_eq!(inline_xattr(&raw), None);
        raw[166..168].copy_from_slice(&24u16.to_le_bytes());
        assert_eq!(inline_xattr(&raw), Some((188, 198)));
        // extra_isize huge
        raw[128..130].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(inline_xattr(&raw), None);
    }
}
