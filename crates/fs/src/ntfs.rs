//! NTFS: every MFT entry, allocated and deleted, as The Sleuth Kit lists it.
//!
//! How the volume is read:
//! - The boot sector gives the sector, cluster and MFT record sizes and
//!   where the MFT starts; when it is damaged, the backup boot sector in the
//!   volume's last sector is used (a [`Limitation`] says so).
//! - MFT record 0 (or its mirror in `$MFTMirr` when record 0 is damaged)
//!   gives the `$MFT`'s own `$DATA` runs, following its `$ATTRIBUTE_LIST`
//!   (resident or not) to the extension records that hold the rest of a
//!   fragmented MFT. The whole MFT is then read run by run in large reads
//!   and every record's update-sequence (fixup) array is checked and
//!   applied in memory; a record that fails is a [`Limitation`] and is
//!   skipped.
//! - Every record with the `FILE` signature that is not an extension record
//!   is a file: its attributes come from the record and, through its
//!   `$ATTRIBUTE_LIST`, from the extension records whose base reference
//!   points back at it. Non-resident attributes split over several records
//!   are joined in VCN order.
//!
//! What is listed (TSK's `fls -r -p` / fiwalk semantics):
//! - one [`Entry`] per `$FILE_NAME` of a file (hard links give several),
//!   DOS 8.3 names skipped as TSK skips them; named `$DATA` streams as
//!   further entries `path:stream` with the same inode (fls lists them;
//!   fiwalk 4.11 does not);
//! - the path is built from the `$FILE_NAME` parent references, as TSK's
//!   parent map does: a name belongs to its parent directory when the
//!   parent's MFT entry is a directory whose sequence number matches the
//!   reference (for a deleted parent: its sequence number minus one, since
//!   NTFS bumps the sequence when it frees an entry). A name whose parent
//!   does not match (reused or vanished) goes under `$OrphanFiles/`, as do
//!   unallocated entries with no name at all (`$OrphanFiles/OrphanFile-N`).
//!   An entry with several names lists the ones that reach the root, or only
//!   its first name under `$OrphanFiles/` when none does (TSK lists an
//!   orphan once). `$OrphanFiles` itself is listed as a directory whose
//!   inode is the number of MFT entries, as TSK numbers it.
//! - `alloc`: Allocated for in-use entries, Deleted for unused ones that
//!   still parse and hang under a live path, Orphan under `$OrphanFiles/`.
//! - size and content: the unnamed `$DATA` for files (resident: the bytes
//!   and their image offset; non-resident: the runs, sparse runs as
//!   `offset: None`, bytes past the initialised size as a sparse tail,
//!   which is what `icat` returns; LZNT1-compressed attributes as
//!   [`Content::Lznt1`]); for directories the `$I30` `$INDEX_ROOT` value
//!   (what fiwalk sizes and hashes a directory by).
//! - times: `$STANDARD_INFORMATION` (mtime = modified, atime = accessed,
//!   ctime = MFT entry modified, crtime = created); `fn_times` from the
//!   `$FILE_NAME` the path came from.
//!
//! Note for consumers: `$BadClus:$Bad` is a sparse stream as large as the
//! volume (fls lists it, fiwalk does not); streaming its content yields
//! that many zeros.
//!
//! [`list_mft`] lists a bare `$MFT` file (no volume): run offsets are then
//! volume offsets and resident offsets are offsets in the MFT file.
//!
//! Deliberate differences from TSK (asserted in the tests):
//! - Directory indexes (`$INDEX_ROOT` / `$INDEX_ALLOCATION`) are not walked:
//!   names are taken from the MFT entries. TSK also reports stale index
//!   entries found in index slack; those whose MFT entry was reused show up
//!   in fiwalk as deleted names without metadata (no inode, no size), and
//!   are not listed here.
//! - The root directory (`.`), and the `.`/`..` entries fiwalk prints, are
//!   not listed.
//! - Named `$INDEX_ROOT` streams other than `$I30` (`$Secure:$SDH`,
//!   `$Extend/$Quota:$O`, ...) that `fls` prints are not listed; files
//!   without an unnamed `$DATA` (`$Secure`, `$Extend/$ObjId`) are listed
//!   with size 0.
//! - Allocated entries whose name does not reach the root (TSK does not
//!   list them at all) are listed under `$OrphanFiles/` as orphans.

use std::collections::HashMap;

use crate::{
    Alloc, Content, Entry, FileSystemListing, FileType, FsError, FsKind, Limitation, Run, Times,
    Timestamp, VolumeReader,
};

const ROOT: usize = 5;
const AT_SI: u32 = 0x10;
const AT_ATTRLIST: u32 = 0x20;
const AT_FN: u32 = 0x30;
const AT_VOLNAME: u32 = 0x60;
const AT_DATA: u32 = 0x80;
const AT_IDXROOT: u32 = 0x90;
const AT_END: u32 = 0xffff_ffff;
/// The MFT is read whole; never more than this (4 Gi bytes: 4 million
/// records of 1 KiB).
const MAX_MFT_BYTES: u64 = 4 << 30;
/// An `$ATTRIBUTE_LIST` larger than this is damaged.
const MAX_ATTRLIST: u64 = 1 << 20;
/// Directory depth beyond which a path is cut (loops are detected anyway).
const MAX_DEPTH: usize = 4096;
/// Bytes per read when loading the MFT.
const READ_CHUNK: u64 = 16 << 20;
const ORPHANS: &str = "$OrphanFiles";

/// What the boot sector says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub sector_size: u64,
    pub cluster_size: u64,
    pub record_size: u64,
    pub total_sectors: u64,
    pub mft_lcn: u64,
    pub mftmirr_lcn: u64,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}
/// A file reference's entry number (low 48 bits) and sequence (high 16).
fn fref(b: &[u8], o: usize) -> Option<(u64, u16)> {
    let v = u64_at(b, o)?;
    Some((v & 0xffff_ffff_ffff, (v >> 48) as u16))
}
fn utf16(b: &[u8]) -> String {
    char::decode_utf16(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])))
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Parses an NTFS boot sector.
///
/// # Errors
/// What is wrong with it.
pub fn parse_boot(b: &[u8]) -> Result<Geometry, String> {
    if b.len() < 512 {
        return Err("shorter than a sector".into());
    }
    if b.get(3..11) != Some(b"NTFS    ".as_slice()) {
        return Err("no \"NTFS    \" OEM id".into());
    }
    let bps = u64::from(u16_at(b, 0x0b).unwrap_or(0));
    if !(256..=4096).contains(&bps) || !bps.is_power_of_two() {
        return Err(format!("{bps} bytes per sector"));
    }
    let raw = b[0x0d];
    let spc = match raw {
        0 => return Err("0 sectors per cluster".into()),
        1..=0x80 => u64::from(raw),
        // Windows 10 and later: 2^(256 - n) for clusters past 64 KiB.
        0xf4..=0xff => 1u64 << (256 - u32::from(raw)),
        _ => return Err(format!("sectors per cluster byte {raw:#x}")),
    };
    if !spc.is_power_of_two() {
        return Err(format!("{spc} sectors per cluster"));
    }
    let cluster = bps * spc;
    if cluster > 2 << 20 {
        return Err(format!("{cluster}-byte clusters"));
    }
    let total = u64_at(b, 0x28).unwrap_or(0);
    if total == 0 {
        return Err("0 sectors".into());
    }
    let cpr = b[0x40] as i8;
    let record = if cpr > 0 {
        u64::from(cpr as u8) * cluster
    } else if (-16..=-9).contains(&cpr) {
        1u64 << (-i32::from(cpr))
    } else {
        return Err(format!("MFT record size byte {cpr}"));
    };
    if !(512..=65536).contains(&record) || !record.is_power_of_two() {
        return Err(format!("{record}-byte MFT records"));
    }
    Ok(Geometry {
        sector_size: bps,
        cluster_size: cluster,
        record_size: record,
        total_sectors: total,
        mft_lcn: u64_at(b, 0x30).unwrap_or(0),
        mftmirr_lcn: u64_at(b, 0x38).unwrap_or(0),
    })
}

/// True when `head` (the volume's first bytes) holds an NTFS boot sector.
pub fn probe(head: &[u8]) -> bool {
    parse_boot(head).is_ok()
}

/// Applies the update-sequence (fixup) array of a `FILE` record in place.
fn fixup(rec: &mut [u8]) -> Result<(), String> {
    let usa_off = usize::from(u16_at(rec, 4).ok_or("record too short")?);
    let usa_cnt = usize::from(u16_at(rec, 6).ok_or("record too short")?);
    if usa_cnt < 2 || (usa_cnt - 1) * 512 > rec.len() {
        return Err(format!(
            "update sequence of {usa_cnt} entries for a {}-byte record",
            rec.len()
        ));
    }
    if usa_off < 8 || usa_off + 2 * usa_cnt > rec.len() {
        return Err(format!(
            "update sequence array at {usa_off} past the record"
        ));
    }
    let usn = [rec[usa_off], rec[usa_off + 1]];
    for i in 1..usa_cnt {
        let end = i * 512;
        if rec[end - 2..end] != usn {
            return Err(format!(
                "sector {} does not end with the update sequence number",
                i - 1
            ));
        }
        rec[end - 2] = rec[usa_off + 2 * i];
        rec[end - 1] = rec[usa_off + 2 * i + 1];
    }
    Ok(())
}

/// A run in clusters: LCN (`None` = sparse) and length.
type CRun = (Option<u64>, u64);

/// Decodes mapping pairs; on damage returns the runs decoded so far and
/// what is wrong.
fn decode_runs(b: &[u8], vcn_count: Option<u64>) -> (Vec<CRun>, Option<String>) {
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut lcn: i64 = 0;
    let mut total: u64 = 0;
    while let Some(&h) = b.get(i) {
        if h == 0 {
            break;
        }
        let ln = usize::from(h & 0x0f);
        let lo = usize::from(h >> 4);
        if ln == 0 || ln > 8 || lo > 8 {
            return (out, Some(format!("run header {h:#04x}")));
        }
        let Some(body) = b.get(i + 1..i + 1 + ln + lo) else {
            return (out, Some("mapping pairs cut at the attribute end".into()));
        };
        let mut len = 0u64;
        for (k, &x) in body[..ln].iter().enumerate() {
            len |= u64::from(x) << (8 * k);
        }
        if len == 0 || len > i64::MAX as u64 {
            return (out, Some(format!("run of {len} clusters")));
        }
        let run_lcn = if lo == 0 {
            None
        } else {
            let mut d: i64 = 0;
            for (k, &x) in body[ln..].iter().enumerate() {
                d |= i64::from(x) << (8 * k);
            }
            if lo < 8 && body[ln + lo - 1] & 0x80 != 0 {
                d |= -1i64 << (8 * lo);
            }
            match lcn.checked_add(d) {
                Some(v) if v >= 0 => {
                    lcn = v;
                    Some(v as u64)
                }
                _ => return (out, Some(format!("run LCN {lcn} + {d} out of range"))),
            }
        };
        total = total.saturating_add(len);
        if let Some(n) = vcn_count
            && total > n
        {
            return (
                out,
                Some(format!("runs cover more than the attribute's {n} clusters")),
            );
        }
        out.push((run_lcn, len));
        i += 1 + ln + lo;
    }
    (out, None)
}

/// An attribute of a record, located in the MFT buffer.
#[derive(Clone, Copy)]
struct AttrLoc {
    /// Byte offset of the attribute header in the MFT buffer.
    off: usize,
    len: usize,
}

#[derive(Clone, Default)]
struct Rec {
    valid: bool,
    in_use: bool,
    dir: bool,
    seq: u16,
    nlink: u16,
    base: u64,
    attrs: std::ops::Range<usize>,
}

struct Name {
    parent: u64,
    pseq: u16,
    name: String,
    times: Times,
}

/// Non-resident attribute header fields.
struct NonRes {
    start_vcn: u64,
    cu: u16,
    alloc: u64,
    real: u64,
    init: u64,
    runs: Vec<CRun>,
    err: Option<String>,
}

/// A parsed attribute header.
struct Attr<'a> {
    ty: u32,
    flags: u16,
    name: String,
    /// Resident value and its offset in the MFT buffer.
    value: Option<(&'a [u8], usize)>,
    nonres: Option<NonRes>,
}

fn parse_attr(mft: &[u8], loc: AttrLoc) -> Option<Attr<'_>> {
    let a = mft.get(loc.off..loc.off + loc.len)?;
    let ty = u32_at(a, 0)?;
    let nonres = *a.get(8)? != 0;
    let nlen = usize::from(*a.get(9)?);
    let noff = usize::from(u16_at(a, 0x0a)?);
    let flags = u16_at(a, 0x0c)?;
    let name = if nlen == 0 {
        String::new()
    } else {
        utf16(a.get(noff..noff + 2 * nlen)?)
    };
    if !nonres {
        let vlen = u32_at(a, 0x10)? as usize;
        let voff = usize::from(u16_at(a, 0x14)?);
        let v = a.get(voff..voff.checked_add(vlen)?)?;
        return Some(Attr {
            ty,
            flags,
            name,
            value: Some((v, loc.off + voff)),
            nonres: None,
        });
    }
    let start_vcn = u64_at(a, 0x10)?;
    let last_vcn = u64_at(a, 0x18)?;
    let roff = usize::from(u16_at(a, 0x20)?);
    let cu = u16_at(a, 0x22)?;
    let alloc = u64_at(a, 0x28)?;
    let real = u64_at(a, 0x30)?;
    let init = u64_at(a, 0x38)?;
    let vcn_count = last_vcn
        .checked_sub(start_vcn)
        .and_then(|d| d.checked_add(1));
    let (runs, err) = match a.get(roff..) {
        Some(m) if roff >= 0x40 => decode_runs(m, vcn_count),
        _ => (Vec::new(), Some(format!("mapping pairs offset {roff}"))),
    };
    Some(Attr {
        ty,
        flags,
        name,
        value: None,
        nonres: Some(NonRes {
            start_vcn,
            cu,
            alloc,
            real,
            init,
            runs,
            err,
        }),
    })
}

/// Where the bytes of the MFT buffer sit in the image.
struct MftMap {
    /// (offset in the MFT, image offset or None for sparse, length).
    pieces: Vec<(u64, Option<u64>, u64)>,
}

impl MftMap {
    fn image(&self, off: u64) -> u64 {
        let i = self.pieces.partition_point(|p| p.0 + p.2 <= off);
        match self.pieces.get(i) {
            Some(&(s, Some(img), _)) if off >= s => img + (off - s),
            _ => 0,
        }
    }
}

/// Everything needed to turn clusters into image offsets.
struct Ctx<'a> {
    r: Option<&'a VolumeReader<'a>>,
    cluster: u64,
    base: u64,
    lim: Vec<Limitation>,
}

impl Ctx<'_> {
    fn limit(&mut self, structure: impl Into<String>, offset: u64, what: impl Into<String>) {
        self.lim.push(Limitation {
            volume_offset: self.base,
            structure: structure.into(),
            offset,
            what: what.into(),
        });
    }

    /// Cluster runs to byte runs in image coordinates; a run outside the
    /// volume ends the list (with a limitation).
    fn byte_runs(&mut self, runs: &[CRun], what: &str) -> Vec<Run> {
        let mut out = Vec::with_capacity(runs.len());
        for &(lcn, len) in runs {
            let Some(bytes) = len.checked_mul(self.cluster) else {
                self.limit(what, self.base, format!("run of {len} clusters"));
                break;
            };
            let offset = match lcn {
                None => None,
                Some(l) => {
                    let vol = l.checked_mul(self.cluster);
                    let inside = match (vol, self.r) {
                        (Some(v), Some(r)) => v.checked_add(bytes).is_some_and(|e| e <= r.len()),
                        (Some(_), None) => true,
                        (None, _) => false,
                    };
                    if !inside {
                        self.limit(
                            what,
                            self.base,
                            format!("run at cluster {l} of {len} clusters passes the volume end"),
                        );
                        break;
                    }
                    let v = vol.unwrap_or(0);
                    Some(match self.r {
                        Some(r) => r.image_offset(v),
                        None => v,
                    })
                }
            };
            out.push(Run {
                offset,
                length: bytes,
            });
        }
        out
    }
}

/// The MFT, read whole.
struct Mft {
    bytes: Vec<u8>,
    map: MftMap,
    record_size: usize,
}

/// Reads the `$MFT`'s `$DATA` through its runs (following its attribute
/// list to extension records).
fn load_mft(r: &VolumeReader<'_>, g: &Geometry, ctx: &mut Ctx<'_>) -> Result<Mft, FsError> {
    let rs = g.record_size;
    let mut rec0 = None;
    let mut why = Vec::new();
    for (which, lcn) in [("$MFT", g.mft_lcn), ("$MFTMirr", g.mftmirr_lcn)] {
        let Some(off) = lcn.checked_mul(g.cluster_size) else {
            why.push(format!("{which} at cluster {lcn} is out of range"));
            continue;
        };
        let mut b = match r.read_vec(off, rs, "MFT entry 0") {
            Ok(b) => b,
            Err(e) => {
                why.push(format!("{which}: {e}"));
                continue;
            }
        };
        if b.get(0..4) != Some(b"FILE".as_slice()) {
            why.push(format!("{which} entry 0 has no FILE signature"));
            continue;
        }
        if let Err(e) = fixup(&mut b) {
            why.push(format!("{which} entry 0: {e}"));
            continue;
        }
        if which == "$MFTMirr" {
            ctx.limit(
                "MFT entry 0",
                r.image_offset(g.mft_lcn.saturating_mul(g.cluster_size)),
                format!("{}; read the $MFT's runs from $MFTMirr", why.join("; ")),
            );
        }
        rec0 = Some(b);
        break;
    }
    let Some(rec0) = rec0 else {
        return Err(FsError::corrupt(
            "MFT entry 0",
            r.image_offset(g.mft_lcn.saturating_mul(g.cluster_size)),
            why.join("; "),
        ));
    };
    let attrs = record_attrs(&rec0, 0);
    let mut runs: Vec<CRun> = Vec::new();
    let mut size = None;
    let mut list = None;
    for loc in &attrs {
        let Some(a) = parse_attr(&rec0, *loc) else {
            continue;
        };
        if a.ty == AT_DATA && a.name.is_empty() {
            if let Some(nr) = a.nonres
                && nr.start_vcn == 0
            {
                size = Some(nr.real);
                runs = nr.runs;
                if let Some(e) = nr.err {
                    ctx.limit("$MFT $DATA runs", r.image_offset(0), e);
                }
            }
        } else if a.ty == AT_ATTRLIST {
            list = Some(attr_value(&a, ctx, "$MFT $ATTRIBUTE_LIST"));
        }
    }
    let Some(size) = size else {
        return Err(FsError::corrupt(
            "MFT entry 0",
            r.image_offset(g.mft_lcn.saturating_mul(g.cluster_size)),
            "no non-resident unnamed $DATA attribute",
        ));
    };
    // Further extents of $MFT:$DATA in extension records.
    if let Some(list) = list {
        let mut ext: Vec<(u64, u64)> = parse_attr_list(&list)
            .into_iter()
            .filter(|e| e.ty == AT_DATA && !e.named && e.rec != 0 && e.start_vcn > 0)
            .map(|e| (e.start_vcn, e.rec))
            .collect();
        ext.sort_unstable();
        ext.dedup();
        for (vcn, recno) in ext {
            let have: u64 = runs.iter().map(|r| r.1).fold(0, u64::saturating_add);
            let Some(off) = recno
                .checked_mul(rs)
                .and_then(|o| cluster_of(&runs, o, g.cluster_size))
            else {
                ctx.limit(
                    format!("MFT entry {recno}"),
                    r.base(),
                    "extension record of $MFT lies outside the MFT's known runs",
                );
                continue;
            };
            let mut b = match r.read_vec(off, rs, "MFT extension record") {
                Ok(b) => b,
                Err(e) => {
                    ctx.limit(
                        format!("MFT entry {recno}"),
                        r.image_offset(off),
                        e.to_string(),
                    );
                    continue;
                }
            };
            if b.get(0..4) != Some(b"FILE".as_slice()) || fixup(&mut b).is_err() {
                ctx.limit(
                    format!("MFT entry {recno}"),
                    r.image_offset(off),
                    "extension record of $MFT does not parse",
                );
                continue;
            }
            for loc in record_attrs(&b, 0) {
                if let Some(a) = parse_attr(&b, loc)
                    && a.ty == AT_DATA
                    && a.name.is_empty()
                    && let Some(nr) = a.nonres
                    && nr.start_vcn == vcn
                {
                    if vcn > have {
                        runs.push((None, vcn - have));
                    } else if vcn < have {
                        ctx.limit(
                            format!("MFT entry {recno}"),
                            r.image_offset(off),
                            "overlapping $MFT extents",
                        );
                        continue;
                    }
                    runs.extend(nr.runs);
                }
            }
        }
    }
    // Read the MFT.
    let want = size.min(MAX_MFT_BYTES).min(r.len());
    let want = want - want % rs;
    let mut bytes: Vec<u8> = Vec::new();
    let mut pieces = Vec::new();
    for (lcn, len) in &runs {
        if bytes.len() as u64 >= want {
            break;
        }
        let n = len
            .saturating_mul(g.cluster_size)
            .min(want - bytes.len() as u64);
        let start = bytes.len() as u64;
        match lcn {
            None => {
                pieces.push((start, None, n));
                bytes.resize((start + n) as usize, 0);
            }
            Some(l) => {
                let vol = l.saturating_mul(g.cluster_size);
                pieces.push((start, Some(r.image_offset(vol)), n));
                let mut done = 0u64;
                while done < n {
                    let k = (n - done).min(READ_CHUNK);
                    let s = bytes.len();
                    bytes.resize(s + k as usize, 0);
                    let got = r.read_at(vol.saturating_add(done), &mut bytes[s..])?;
                    if (got as u64) < k {
                        ctx.limit(
                            "$MFT",
                            r.image_offset(vol.saturating_add(done)),
                            "the MFT's run passes the volume end",
                        );
                    }
                    done += k;
                }
            }
        }
    }
    if (bytes.len() as u64) < want {
        ctx.limit(
            "$MFT",
            r.image_offset(g.mft_lcn.saturating_mul(g.cluster_size)),
            format!(
                "$DATA is {size} bytes, its runs cover {} bytes",
                bytes.len()
            ),
        );
    }
    Ok(Mft {
        bytes,
        map: MftMap { pieces },
        record_size: rs as usize,
    })
}

/// Volume offset of byte `off` of an attribute with cluster runs `runs`.
fn cluster_of(runs: &[CRun], off: u64, cluster: u64) -> Option<u64> {
    let mut vcn_bytes = 0u64;
    for &(lcn, len) in runs {
        let n = len.checked_mul(cluster)?;
        if off < vcn_bytes + n {
            return lcn?.checked_mul(cluster)?.checked_add(off - vcn_bytes);
        }
        vcn_bytes += n;
    }
    None
}

/// The attribute headers of a record (already fixed up) at `base` in `buf`.
fn record_attrs(rec: &[u8], base: usize) -> Vec<AttrLoc> {
    let mut out = Vec::new();
    let used = (u32_at(rec, 0x18).unwrap_or(0) as usize).min(rec.len());
    let mut off = usize::from(u16_at(rec, 0x14).unwrap_or(0));
    while off + 8 <= used {
        let ty = u32_at(rec, off).unwrap_or(AT_END);
        if ty == AT_END {
            break;
        }
        let len = u32_at(rec, off + 4).unwrap_or(0) as usize;
        if len < 0x18 || off + len > used {
            break;
        }
        out.push(AttrLoc {
            off: base + off,
            len,
        });
        off += len;
    }
    out
}

/// The value of a resident attribute, or the content of a non-resident
/// one read from the volume (small attributes only: attribute lists).
fn attr_value(a: &Attr<'_>, ctx: &mut Ctx<'_>, what: &str) -> Vec<u8> {
    if let Some((v, _)) = a.value {
        return v.to_vec();
    }
    let Some(nr) = &a.nonres else {
        return Vec::new();
    };
    let Some(r) = ctx.r else {
        ctx.limit(what, 0, "non-resident, and no volume to read it from");
        return Vec::new();
    };
    if nr.real > MAX_ATTRLIST {
        ctx.limit(what, r.base(), format!("{} bytes", nr.real));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(nr.real as usize);
    for &(lcn, len) in &nr.runs {
        let left = nr.real - out.len() as u64;
        if left == 0 {
            break;
        }
        let n = len.saturating_mul(ctx.cluster).min(left) as usize;
        let s = out.len();
        out.resize(s + n, 0);
        if let Some(l) = lcn {
            let vol = l.saturating_mul(ctx.cluster);
            if r.read_at(vol, &mut out[s..]).unwrap_or(0) < n {
                ctx.limit(what, r.image_offset(vol), "run passes the volume end");
            }
        }
    }
    out
}

struct ListEntry {
    ty: u32,
    named: bool,
    start_vcn: u64,
    rec: u64,
}

fn parse_attr_list(b: &[u8]) -> Vec<ListEntry> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + 0x1a <= b.len() && out.len() < 65536 {
        let ty = u32_at(b, off).unwrap_or(0);
        let len = usize::from(u16_at(b, off + 4).unwrap_or(0));
        if len < 0x1a || off + len > b.len() {
            break;
        }
        out.push(ListEntry {
            ty,
            named: b[off + 6] != 0,
            start_vcn: u64_at(b, off + 8).unwrap_or(0),
            rec: fref(b, off + 0x10).map_or(0, |r| r.0),
        });
        off += len;
    }
    out
}

fn times4(b: &[u8], at: [usize; 4]) -> Times {
    let t = |o| u64_at(b, o).and_then(Timestamp::from_filetime);
    Times {
        crtime: t(at[0]),
        mtime: t(at[1]),
        ctime: t(at[2]),
        atime: t(at[3]),
    }
}

/// Lists the NTFS file system of `r`.
///
/// # Errors
/// Unusable boot sectors (primary and backup) or MFT entry 0 (and its
/// mirror); I/O errors.
pub fn list(r: &VolumeReader<'_>) -> Result<FileSystemListing, FsError> {
    let mut ctx = Ctx {
        r: Some(r),
        cluster: 0,
        base: r.base(),
        lim: Vec::new(),
    };
    let mut head = [0u8; 512];
    let n = r.read_at(0, &mut head)?;
    let g = match parse_boot(&head[..n]) {
        Ok(g) => g,
        Err(e) => {
            let mut found = None;
            for ss in [512u64, 1024, 2048, 4096] {
                let Some(off) = r.len().checked_sub(ss) else {
                    continue;
                };
                let mut b = [0u8; 512];
                if r.read_at(off, &mut b)? == 512
                    && let Ok(g) = parse_boot(&b)
                    && g.sector_size == ss
                {
                    found = Some((g, off));
                    break;
                }
            }
            let Some((g, off)) = found else {
                return Err(FsError::corrupt("NTFS boot sector", r.base(), e));
            };
            ctx.limit(
                "NTFS boot sector",
                r.base(),
                format!(
                    "{e}; used the backup boot sector at image offset {}",
                    r.image_offset(off)
                ),
            );
            g
        }
    };
    ctx.cluster = g.cluster_size;
    let mft = load_mft(r, &g, &mut ctx)?;
    let (entries, label) = build(mft, &mut ctx);
    let unallocated = unallocated(r, &g, &entries, &mut ctx);
    Ok(FileSystemListing {
        partition_offset: r.base(),
        fs: FsKind::Ntfs,
        label,
        block_size: g.cluster_size,
        size: g.total_sectors.saturating_mul(g.sector_size),
        entries,
        limitations: ctx.lim,
        unallocated,
    })
}

/// MFT entry of `$Bitmap`.
const BITMAP: u64 = 6;

/// Free clusters as TSK's block walk finds them (`blkls -A`): the clusters
/// whose bit in `$Bitmap` (MFT entry 6, its unnamed `$DATA` as listed) is 0.
/// The volume holds `total sectors / sectors per cluster` clusters (TSK's
/// count: a partial last cluster is none). A `$Bitmap` that is missing or
/// shorter than that is a limitation; what it covers is still used.
fn unallocated(
    r: &VolumeReader<'_>,
    g: &Geometry,
    entries: &[Entry],
    ctx: &mut Ctx<'_>,
) -> Vec<(u64, u64)> {
    let clusters = g.total_sectors / (g.cluster_size / g.sector_size).max(1);
    let mut out = crate::unalloc::FreeRanges::new(r, clusters.saturating_mul(g.cluster_size));
    let Some(bm) = entries.iter().find(|e| e.inode == BITMAP) else {
        ctx.limit(
            "$Bitmap",
            r.base(),
            "MFT entry 6 is not listed; the unallocated space is unknown",
        );
        return Vec::new();
    };
    let at = bm.content.image_runs().first().map_or(r.base(), |x| x.0);
    let (bytes, err) = read_prefix(r, &bm.content, clusters.div_ceil(8));
    if let Some(e) = err {
        ctx.limit("$Bitmap", at, e);
    }
    let have = out.bitmap(&bytes, clusters, 0, g.cluster_size);
    if have < clusters {
        ctx.limit(
            "$Bitmap",
            at,
            format!("covers {have} of {clusters} clusters; the rest are not listed as unallocated"),
        );
    }
    out.done()
}

/// The first `n` bytes (at most) of content `c`, and what stopped the read
/// short.
fn read_prefix(r: &VolumeReader<'_>, c: &Content, n: u64) -> (Vec<u8>, Option<String>) {
    let cut = match c.clone() {
        Content::Runs { runs, size } => Content::Runs {
            runs,
            size: size.min(n),
        },
        Content::Lznt1 {
            runs,
            cluster_size,
            unit_clusters,
            size,
        } => Content::Lznt1 {
            runs,
            cluster_size,
            unit_clusters,
            size: size.min(n),
        },
        Content::Resident { mut bytes, offset } => {
            bytes.truncate(usize::try_from(n).unwrap_or(usize::MAX));
            Content::Resident { bytes, offset }
        }
        Content::None => Content::None,
    };
    let mut out = Vec::new();
    let err = crate::read_content(r.image(), &cut, |b| out.extend_from_slice(b)).err();
    (out, err.map(|e| e.to_string()))
}

/// Lists a bare MFT (a `$MFT` file extracted from a volume): records of
/// `record_size` bytes, clusters of `cluster_size` bytes. Without the
/// volume, run offsets are volume offsets (cluster × cluster size) and
/// resident offsets are offsets in `mft`; non-resident attribute lists
/// cannot be read (limitations).
pub fn list_mft(mft: &[u8], record_size: u64, cluster_size: u64) -> FileSystemListing {
    let mut ctx = Ctx {
        r: None,
        cluster: cluster_size,
        base: 0,
        lim: Vec::new(),
    };
    let rs = record_size.clamp(512, 65536);
    let n = (mft.len() as u64 / rs * rs) as usize;
    let m = Mft {
        bytes: mft[..n].to_vec(),
        map: MftMap {
            pieces: vec![(0, Some(0), n as u64)],
        },
        record_size: rs as usize,
    };
    let (entries, label) = build(m, &mut ctx);
    FileSystemListing {
        partition_offset: 0,
        fs: FsKind::Ntfs,
        label,
        block_size: cluster_size,
        size: 0,
        entries,
        limitations: ctx.lim,
        unallocated: Vec::new(),
    }
}

/// Parses every record and lists the entries.
fn build(mut mft: Mft, ctx: &mut Ctx<'_>) -> (Vec<Entry>, Option<String>) {
    let rs = mft.record_size;
    let count = mft.bytes.len() / rs;
    let mut recs: Vec<Rec> = vec![Rec::default(); count];
    let mut locs: Vec<AttrLoc> = Vec::new();
    // Pass 1: fixups and attribute headers.
    for (i, rec) in recs.iter_mut().enumerate() {
        let start = i * rs;
        let b = &mut mft.bytes[start..start + rs];
        if &b[0..4] != b"FILE" {
            if &b[0..4] == b"BAAD" {
                ctx.limit(
                    format!("MFT entry {i}"),
                    mft.map.image(start as u64),
                    "BAAD signature (marked bad by chkdsk)",
                );
            }
            continue;
        }
        if let Err(e) = fixup(b) {
            ctx.limit(format!("MFT entry {i}"), mft.map.image(start as u64), e);
            continue;
        }
        let b = &*b;
        let flags = u16_at(b, 0x16).unwrap_or(0);
        rec.valid = true;
        rec.in_use = flags & 1 != 0;
        rec.dir = flags & 2 != 0;
        rec.seq = u16_at(b, 0x10).unwrap_or(0);
        rec.nlink = u16_at(b, 0x12).unwrap_or(0);
        rec.base = fref(b, 0x20).map_or(0, |f| f.0);
        let s = locs.len();
        locs.extend(record_attrs(b, start));
        rec.attrs = s..locs.len();
    }
    let bytes = &mft.bytes;
    // Pass 2: extension records named by each base record's attribute list.
    let mut ext: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..count {
        if !recs[i].valid || recs[i].base != 0 {
            continue;
        }
        let Some(al) = locs[recs[i].attrs.clone()]
            .iter()
            .filter_map(|l| parse_attr(bytes, *l))
            .find(|a| a.ty == AT_ATTRLIST)
        else {
            continue;
        };
        let v = attr_value(&al, ctx, &format!("$ATTRIBUTE_LIST of MFT entry {i}"));
        let mut others: Vec<usize> = parse_attr_list(&v)
            .into_iter()
            .filter_map(|e| usize::try_from(e.rec).ok())
            .filter(|&k| k != i && k < count && recs[k].valid && recs[k].base == i as u64)
            .collect();
        others.sort_unstable();
        others.dedup();
        if !others.is_empty() {
            ext.insert(i, others);
        }
    }
    let attrs_of = |i: usize| -> Vec<AttrLoc> {
        let mut v = locs[recs[i].attrs.clone()].to_vec();
        if let Some(o) = ext.get(&i) {
            for &k in o {
                v.extend_from_slice(&locs[recs[k].attrs.clone()]);
            }
        }
        v
    };
    // Pass 3: names of every file.
    let mut names: Vec<Vec<Name>> = Vec::with_capacity(count);
    for (i, rec) in recs.iter().enumerate() {
        let mut v = Vec::new();
        if rec.valid && rec.base == 0 {
            let mut dos = Vec::new();
            for l in attrs_of(i) {
                let Some(a) = parse_attr(bytes, l) else {
                    continue;
                };
                if a.ty != AT_FN {
                    continue;
                }
                let Some((fnv, _)) = a.value else { continue };
                let (Some((parent, pseq)), Some(&nl), Some(&ns)) =
                    (fref(fnv, 0), fnv.get(0x40), fnv.get(0x41))
                else {
                    continue;
                };
                let Some(nb) = fnv.get(0x42..0x42 + 2 * usize::from(nl)) else {
                    continue;
                };
                let n = Name {
                    parent,
                    pseq,
                    name: utf16(nb).replace('/', "\u{fffd}"),
                    times: times4(fnv, [0x08, 0x10, 0x18, 0x20]),
                };
                if ns == 2 { dos.push(n) } else { v.push(n) }
            }
            if v.is_empty() {
                v = dos;
            }
        }
        names.push(v);
    }
    // Paths of directories (memo), then entries.
    let parent_ok = |p: u64, pseq: u16| -> Option<usize> {
        let p = usize::try_from(p).ok()?;
        let r = recs.get(p)?;
        let want = if r.in_use {
            r.seq
        } else {
            r.seq.wrapping_sub(1)
        };
        (r.valid && r.base == 0 && r.dir && want == pseq).then_some(p)
    };
    let mut memo: Vec<Option<(String, bool)>> = vec![None; count];
    let mut visiting = vec![false; count];
    let mut dir_path = |e: usize| -> (String, bool) {
        let mut chain = Vec::new();
        let mut cur = e;
        let base = loop {
            if cur == ROOT {
                break (String::new(), false);
            }
            if let Some(p) = &memo[cur] {
                break p.clone();
            }
            if visiting[cur] || chain.len() >= MAX_DEPTH {
                break (ORPHANS.to_string(), true);
            }
            visiting[cur] = true;
            chain.push(cur);
            match names[cur].first() {
                Some(n) => match parent_ok(n.parent, n.pseq) {
                    Some(p) => cur = p,
                    None => break (ORPHANS.to_string(), true),
                },
                None => break (ORPHANS.to_string(), true),
            }
        };
        let mut acc = base;
        for &c in chain.iter().rev() {
            let comp = names[c]
                .first()
                .map_or_else(|| format!("OrphanFile-{c}"), |n| n.name.clone());
            let p = if acc.0.is_empty() {
                comp
            } else {
                format!("{}/{comp}", acc.0)
            };
            acc = (p, acc.1);
            memo[c] = Some(acc.clone());
        }
        for &c in &chain {
            visiting[c] = false;
        }
        acc
    };
    let mut entries = Vec::new();
    let mut label = None;
    for i in 0..count {
        let rec = &recs[i];
        if !rec.valid || rec.base != 0 || i == ROOT {
            continue;
        }
        // Paths: (path, orphan, index of the name).
        let mut paths: Vec<(String, bool, Option<usize>)> = Vec::new();
        for (k, n) in names[i].iter().enumerate() {
            let (p, orphan) = match parent_ok(n.parent, n.pseq) {
                Some(ROOT) => (n.name.clone(), false),
                Some(p) => {
                    let (pp, o) = dir_path(p);
                    (format!("{pp}/{}", n.name), o)
                }
                None => (format!("{ORPHANS}/{}", n.name), true),
            };
            paths.push((p, orphan, Some(k)));
        }
        if paths.iter().any(|p| !p.1) {
            paths.retain(|p| !p.1);
        } else {
            paths.truncate(1);
        }
        if paths.is_empty() {
            // A nameless entry is listed only when unallocated and used at
            // least once (sequence number set, attributes present), as TSK
            // lists them; never-used templates are not files.
            if rec.in_use || rec.seq == 0 || rec.attrs.is_empty() {
                continue;
            }
            paths.push((format!("{ORPHANS}/OrphanFile-{i}"), true, None));
        }
        // Attributes.
        let mut si = Times::default();
        let mut idx_root: Option<Content> = None;
        let mut streams: Vec<(String, Vec<Attr<'_>>)> = Vec::new();
        for l in attrs_of(i) {
            let Some(a) = parse_attr(bytes, l) else {
                continue;
            };
            match a.ty {
                AT_SI => {
                    if let Some((v, _)) = a.value {
                        si = times4(v, [0, 8, 16, 24]);
                    }
                }
                AT_VOLNAME if i == 3 => {
                    if let Some((v, _)) = a.value {
                        label = Some(utf16(v));
                    }
                }
                AT_IDXROOT if a.name == "$I30" => {
                    if let Some((v, off)) = a.value {
                        idx_root = Some(Content::Resident {
                            bytes: v.to_vec(),
                            offset: mft.map.image(off as u64),
                        });
                    }
                }
                AT_DATA => match streams.iter_mut().find(|s| s.0 == a.name) {
                    Some(s) => s.1.push(a),
                    None => streams.push((a.name.clone(), vec![a])),
                },
                _ => {}
            }
        }
        let rec_img = mft.map.image((i * rs) as u64);
        let mut contents: Vec<(String, Content)> = Vec::new();
        for (sname, parts) in streams {
            let what = if sname.is_empty() {
                format!("$DATA of MFT entry {i}")
            } else {
                format!("$DATA:{sname} of MFT entry {i}")
            };
            let c = stream_content(parts, &mft.map, ctx, &what, rec_img);
            contents.push((sname, c));
        }
        let main = if rec.dir {
            idx_root.unwrap_or_default()
        } else {
            contents
                .iter()
                .find(|c| c.0.is_empty())
                .map(|c| c.1.clone())
                .unwrap_or_default()
        };
        for (path, orphan, k) in paths {
            let alloc = if orphan {
                Alloc::Orphan
            } else if rec.in_use {
                Alloc::Allocated
            } else {
                Alloc::Deleted
            };
            let fn_times = k.and_then(|k| names[i].get(k)).map(|n| n.times);
            let mk = |path: String, kind, content: Content| Entry {
                path,
                inode: i as u64,
                kind,
                alloc,
                size: content.size(),
                times: si,
                fn_times,
                mode: 0,
                uid: 0,
                gid: 0,
                nlink: u32::from(rec.nlink),
                content,
            };
            let kind = if rec.dir {
                FileType::Dir
            } else {
                FileType::File
            };
            entries.push(mk(path.clone(), kind, main.clone()));
            for (sname, c) in &contents {
                if !sname.is_empty() {
                    entries.push(mk(format!("{path}:{sname}"), FileType::File, c.clone()));
                }
            }
        }
    }
    entries.push(Entry {
        path: ORPHANS.into(),
        inode: count as u64,
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
    (entries, label)
}

/// The content of one `$DATA` stream from its attribute pieces.
fn stream_content(
    mut parts: Vec<Attr<'_>>,
    map: &MftMap,
    ctx: &mut Ctx<'_>,
    what: &str,
    rec_img: u64,
) -> Content {
    if let Some(a) = parts.iter().find(|a| a.value.is_some())
        && let Some((v, off)) = a.value
    {
        return Content::Resident {
            bytes: v.to_vec(),
            offset: map.image(off as u64),
        };
    }
    parts.sort_by_key(|a| a.nonres.as_ref().map_or(0, |n| n.start_vcn));
    let Some(first) = parts.first().and_then(|a| a.nonres.as_ref()) else {
        return Content::None;
    };
    if first.start_vcn != 0 {
        ctx.limit(what, rec_img, "no extent starts at VCN 0");
        return Content::None;
    }
    let (alloc, real, init, cu) = (first.alloc, first.real, first.init, first.cu);
    let compressed = parts[0].flags & 1 != 0 && cu > 0 && cu <= 16;
    let mut runs: Vec<CRun> = Vec::new();
    let mut have = 0u64;
    for a in &parts {
        let Some(nr) = &a.nonres else { continue };
        if let Some(e) = &nr.err {
            ctx.limit(what, rec_img, e.clone());
        }
        if nr.start_vcn > have {
            runs.push((None, nr.start_vcn - have));
            have = nr.start_vcn;
        } else if nr.start_vcn < have {
            ctx.limit(
                what,
                rec_img,
                format!("extent at VCN {} overlaps", nr.start_vcn),
            );
            continue;
        }
        for &r in &nr.runs {
            runs.push(r);
            have = have.saturating_add(r.1);
        }
    }
    let brs = ctx.byte_runs(&runs, what);
    let covered: u64 = brs.iter().map(|r| r.length).fold(0, u64::saturating_add);
    let mut size = real;
    if size > alloc {
        ctx.limit(
            what,
            rec_img,
            format!("size {real} larger than the allocated {alloc} bytes"),
        );
        size = alloc;
    }
    let vol_len = ctx.r.map_or(u64::MAX, |r| r.len());
    if size > covered && size - covered > vol_len {
        ctx.limit(
            what,
            rec_img,
            format!("size {size}, runs cover {covered} bytes"),
        );
        size = covered;
    }
    if compressed {
        return Content::Lznt1 {
            runs: brs,
            cluster_size: ctx.cluster,
            unit_clusters: 1u64 << cu,
            size,
        };
    }
    // Bytes past the initialised size read as zeros (icat does the same).
    let keep = init.min(size);
    let mut out = Vec::with_capacity(brs.len() + 1);
    let mut acc = 0u64;
    for r in brs {
        if acc >= keep {
            break;
        }
        let n = r.length.min(keep - acc);
        out.push(Run {
            offset: r.offset,
            length: n,
        });
        acc += n;
    }
    if size > acc {
        out.push(Run {
            offset: None,
            length: size - acc,
        });
    }
    Content::Runs { runs: out, size }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_pairs() {
        // 0x21: 1 length byte, 2 offset bytes; then a sparse run; then a
        // negative delta.
        let b = [0x21, 0x04, 0x00, 0x10, 0x01, 0x08, 0x11, 0x02, 0xf0, 0x00];
        let (r, e) = decode_runs(&b, None);
        assert!(e.is_none());
        assert_eq!(
            r,
            vec![(Some(0x1000), 4), (None, 8), (Some(0x1000 - 16), 2)]
        );
        // More clusters than the VCN range allows.
        let (r, e) = decode_runs(&b, Some(5));
        assert_eq!(r.len(), 1);
        assert!(e.is_some());
        // Bad headers, negative LCN, cut pairs.
        assert!(decode_runs(&[0x09, 1], None).1.is_some());
        assert!(decode_runs(&[0x11, 1, 0x80], None).1.is_some());
        assert!(decode_runs(&[0x31, 1, 0], None).1.is_some());
    }

    #[test]
    fn boot_sector_checks() {
        let mut b = vec![0u8; 512];
        b[3..11].copy_from_slice(b"NTFS    ");
        b[0x0b..0x0d].copy_from_slice(&512u16.to_le_bytes());
        b[0x0d] = 8;
        b[0x28..0x30].copy_from_slice(&1000u64.to_le_bytes());
        b[0x40] = 0xf6; // -10: 1024-byte records
        let g = parse_boot(&b).unwrap();
        assert_eq!((g.cluster_size, g.record_size), (4096, 1024));
        b[0x0d] = 3;
        assert!(parse_boot(&b).is_err());
        b[0x0d] = 8;
        b[0x40] = 0x7f;
        assert!(parse_boot(&b).is_err());
        b[0x40] = 0xf6;
        b[0x0c] = 0;
        assert!(!probe(&b));
    }

    #[test]
    fn fixup_detects_torn_records() {
        let mut r = vec![0u8; 1024];
        r[0..4].copy_from_slice(b"FILE");
        r[4] = 0x30;
        r[6] = 3;
        r[0x30] = 0xab;
        r[0x31] = 0xcd;
        r[0x32] = 1;
        r[0x34] = 2;
        r[510] = 0xab;
        r[511] = 0xcd;
        r[1022] = 0xab;
        r[1023] = 0xcd;
        let mut ok = r.clone();
        fixup(&mut ok).unwrap();
        assert_eq!((ok[510], ok[1022]), (1, 2));
        r[1023] = 0;
        assert!(fixup(&mut r).is_err());
        let mut huge = ok.clone();
        huge[6] = 200;
        assert!(fixup(&mut huge).is_err());
    }
}
