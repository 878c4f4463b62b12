//! bulk_extractor's `exif` scanner: EXIF/TIFF metadata of JPEG (APP1
//! `Exif\0\0`), bare TIFF (`II*\0`, `MM\0*`) and Photoshop PSD (the
//! `ExifInfo` image resource, 0x0422) data at any offset, written as
//! bulk_extractor 2.x writes `exif.txt` and the `gps.txt` lines that
//! `scan_exif` feeds.
//!
//! # Format
//!
//! `exif.txt`: the feature is the lowercase hex SHA-1 (bulk_extractor 2.x's
//! default hasher) of the first 4096 bytes from the JPEG's `FF D8` (fewer
//! at the end of the data), or 32 `0`s for a bare TIFF header, which has
//! no file to hash; the context is `<exif>` followed by
//! `<ifd0.tiff.Make>Apple</ifd0.tiff.Make>`... for every entry with a
//! non-empty value (XML-escaped: `&<>'"` as entities, NUL, CR, LF and TAB
//! as `%00`, `%0D`, `%0A`, `%09`) and `</exif>`:
//!
//! ```text
//! 0  462e52de…  <exif><ifd0.tiff.Make>Apple</ifd0.tiff.Make>…<ifd0.gps.GPSLatitude>41/1 28/1 58/100</ifd0.gps.GPSLatitude>…</exif>
//! 12  00000000000000000000000000000000  <exif><ifd0.tiff.Make>Apple</ifd0.tiff.Make>…</exif>
//! ```
//!
//! `gps.txt` (only when the GPS IFD of IFD0 has a latitude, longitude,
//! altitude, speed or track): the same feature, and the context
//! `DATE,LAT,LON,ELE,SPEED,COURSE`: `GPSDateStamp` (`:` → `-`) `T`
//! `GPSTimeStamp`, else `DateTimeOriginal` in ISO form; latitude and
//! longitude in decimal degrees (`-` for S and W), altitude and speed as
//! decimals, all printed as C++ streams print a double (6 significant
//! digits), the track as stored:
//!
//! ```text
//! 0  462e52de…  2021-12-19T12:04:36,41.4668,-70.6227,5.37167,0.450405,
//! ```
//!
//! Values are formatted as `exif_entry.cpp` does: one BYTE, SHORT or LONG
//! as a decimal number; several BYTEs, UNDEFINED or ASCII bytes as they are
//! (ASCII without up to two trailing NULs); several SHORTs or LONGs as
//! UTF-16 or UTF-32 code units converted to UTF-8 (an invalid code point
//! as its low byte and NULs); RATIONALs as `n/d` separated by spaces; a
//! run of one repeated byte or byte pair as nothing. Unknown tags and the
//! MakerNote are left out, and bulk_extractor's spellings are kept
//! (`PhotometricInterpreation`, `ISOSpeedLatitudeyyy`, and the empty name
//! of the Copyright tag, `<ifd0.tiff.>`).
//!
//! # bulk_extractor's scan, reproduced
//!
//! bulk_extractor walks every byte: a JPEG start (`FF D8 FF Ex`) has its
//! EXIF read and is then validated (`jpeg_validator`: SOI, a JFIF APP0, a
//! table before the scan, ...); a JPEG that fails validation records
//! nothing and its entries stay pending, a valid one records the pending
//! entries and its own under its hash and skips its length when it is
//! complete or longer than 1000 bytes (so the TIFF header inside it is not
//! reported again). A PSD never validates as a JPEG, so its entries always
//! stay pending. A TIFF header records the pending entries and its own.
//! Hence an Exif JPEG without JFIF (phones) is reported once, at its TIFF
//! header (offset 12), with every entry twice. The last 200 bytes of the
//! data are not scanned, as in bulk_extractor.
//!
//! # Deliberate differences
//!
//! * Entries stay pending only across [`BEFORE`] bytes: a record includes
//!   the entries of failed JPEGs and PSDs that start at most 1 KiB before
//!   it (bulk_extractor carries them across its whole 16 MiB page, e.g.
//!   from a PSD header to a JPEG thumbnail 22 KiB further). Likewise a
//!   JPEG's skip is known only for JPEGs starting 1 KiB before.
//! * A structure is read to [`WINDOW`] bytes after its start (JPEG
//!   validation, IFDs, values), where bulk_extractor reads to the end of
//!   its page; the data past that reads as absent.
//! * At most [`MAX_VISITS`] IFD entries are parsed per TIFF (bulk_extractor
//!   may parse 1000 × 1000 × 1000 on a hostile IFD chain); past that the
//!   reading stops as on any EXIF failure, keeping the entries read.

use crate::records::{BEFORE, Record, WINDOW};
use memchr::memmem;
use sha1::{Digest, Sha1};
use std::ops::Range;
use std::sync::LazyLock;

/// bulk_extractor's `MIN_JPEG_SIZE`: no structure starts in the last 200
/// bytes, and nothing is scanned in less.
const MIN_SIZE: usize = 200;
/// A JPEG longer than this is skipped even when not complete.
const MIN_CARVE: usize = 1000;
/// bulk_extractor's `OPT_MAX_IFD_ENTRIES`.
const MAX_IFD_ENTRIES: u16 = 1000;
/// bulk_extractor's `OPT_MAX_EXIF_BYTES` and the per-type count limits.
const MAX_EXIF_BYTES: u64 = 0x10000;
/// IFD entries parsed per TIFF, at most (trawl's bound).
pub const MAX_VISITS: u32 = 4096;
/// The feature of a TIFF header without a JPEG around it.
const ZERO_HASH: &[u8] = b"00000000000000000000000000000000";

static JPEG: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\xff\xd8\xff"));
static PSD: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"8BPS\x00\x01"));
static TIFF_LE: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"II*\x00"));
static TIFF_BE: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"MM\x00*"));

/// The IFD an entry comes from: `ifd0.tiff`, `ifd1.gps`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ifd {
    /// 0 or 1.
    n: u8,
    class: Class,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Tiff,
    Exif,
    Gps,
    Interop,
}

impl Ifd {
    fn prefix(self) -> &'static str {
        match (self.n, self.class) {
            (0, Class::Tiff) => "ifd0.tiff.",
            (0, Class::Exif) => "ifd0.exif.",
            (0, Class::Gps) => "ifd0.gps.",
            (0, Class::Interop) => "ifd0.interoperability.",
            (_, Class::Tiff) => "ifd1.tiff.",
            (_, Class::Exif) => "ifd1.exif.",
            (_, Class::Gps) => "ifd1.gps.",
            (_, Class::Interop) => "ifd1.interoperability.",
        }
    }
}

/// One EXIF entry: its IFD, bulk_extractor's name, the value's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    ifd: Ifd,
    name: &'static str,
    value: Vec<u8>,
}

/// An EXIF failure: the reading stops, the entries read so far are kept.
struct Fail;

/// The EXIF scanner (`exif.txt`, `gps.txt`).
pub(crate) fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    if buf.len() < MIN_SIZE || own.start >= own.end {
        return;
    }
    // Structures can start before `last` only.
    let last = buf.len() - MIN_SIZE;
    let end = own.end.min(last);
    if own.start >= end {
        return;
    }
    let lo = own.start.saturating_sub(BEFORE);
    let hay = &buf[lo..(end + 5).min(buf.len())];
    let mut cands: Vec<(usize, Kind)> = Vec::new();
    for i in JPEG.find_iter(hay) {
        let p = lo + i;
        if p < end && buf.get(p + 3).is_some_and(|b| b & 0xf0 == 0xe0) {
            cands.push((p, Kind::Jpeg));
        }
    }
    for (f, k) in [
        (&*PSD, Kind::Psd),
        (&*TIFF_LE, Kind::Tiff),
        (&*TIFF_BE, Kind::Tiff),
    ] {
        cands.extend(
            f.find_iter(hay)
                .map(|i| (lo + i, k))
                .filter(|&(p, _)| p < end),
        );
    }
    if !cands.iter().any(|&(p, _)| p >= own.start) {
        return;
    }
    cands.sort_unstable_by_key(|c| c.0);
    let mut evals: Vec<Option<Eval>> = vec![None; cands.len()];
    for k in 0..cands.len() {
        let p = cands[k].0;
        if p < own.start {
            continue;
        }
        // bulk_extractor's walk over the candidates BEFORE bytes back.
        let from = p.saturating_sub(BEFORE);
        let mut pending: Vec<usize> = Vec::new();
        let mut skip_until = 0usize;
        for j in 0..k {
            let q = cands[j].0;
            if q < from || q < skip_until {
                continue;
            }
            match eval(buf, &cands, &mut evals, j).action {
                Action::None => {}
                Action::Pending => pending.push(j),
                Action::Record { skip, .. } => {
                    pending.clear();
                    if skip > 1 {
                        skip_until = q + skip;
                    }
                }
            }
        }
        if p < skip_until {
            continue;
        }
        let Action::Record { hashed, .. } = eval(buf, &cands, &mut evals, k).action else {
            continue;
        };
        let mut entries: Vec<&Entry> = Vec::new();
        for &j in &pending {
            entries.extend(
                evals[j]
                    .as_ref()
                    .map(|e| e.entries.iter())
                    .into_iter()
                    .flatten(),
            );
        }
        entries.extend(
            evals[k]
                .as_ref()
                .map(|e| e.entries.iter())
                .into_iter()
                .flatten(),
        );
        if entries.is_empty() {
            continue;
        }
        let feature = if hashed {
            let h = Sha1::digest(&buf[p..(p + 4096).min(buf.len())]);
            hex(&h).into_bytes()
        } else {
            ZERO_HASH.to_vec()
        };
        out.push(Record {
            recorder: "exif",
            pos: p,
            feature: feature.clone(),
            context: exif_xml(&entries),
        });
        if let Some(g) = gps_line(&entries) {
            out.push(Record {
                recorder: "gps",
                pos: p,
                feature,
                context: g,
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Jpeg,
    Psd,
    Tiff,
}

/// What bulk_extractor does at a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Nothing (no valid TIFF).
    None,
    /// Its entries are read but not recorded: they stay pending.
    Pending,
    /// Records the pending entries and its own; skips `skip` bytes.
    Record { skip: usize, hashed: bool },
}

#[derive(Debug, Clone)]
struct Eval {
    entries: Vec<Entry>,
    action: Action,
}

/// The candidate `k`'s evaluation, computed once: a function of the bytes
/// from its start to [`WINDOW`] after it, whoever asks.
fn eval<'e>(
    buf: &[u8],
    cands: &[(usize, Kind)],
    evals: &'e mut [Option<Eval>],
    k: usize,
) -> &'e Eval {
    let (p, kind) = cands[k];
    evals[k].get_or_insert_with(|| {
        let b = &buf[p..(p + WINDOW).min(buf.len())];
        evaluate(b, kind)
    })
}

/// bulk_extractor's handling of a structure at the start of `b`.
fn evaluate(b: &[u8], kind: Kind) -> Eval {
    let mut entries = Vec::new();
    match kind {
        Kind::Jpeg => {
            let off = tiff_offset_from_exif(b);
            if off != 0
                && let Some(t) = b.get(off..)
                && maybe_valid_tiff(t)
            {
                read_tiff(t, &mut entries);
            }
            let (how, len) = validate_jpeg(b);
            let action = if len == 0 {
                Action::Pending
            } else {
                let skip = if how == How::Complete || len > MIN_CARVE {
                    len
                } else {
                    0
                };
                Action::Record { skip, hashed: true }
            };
            Eval { entries, action }
        }
        Kind::Psd => {
            let off = tiff_offset_from_psd(b);
            let action = if off != 0
                && let Some(t) = b.get(off..)
                && maybe_valid_tiff(t)
            {
                read_tiff(t, &mut entries);
                // A PSD never validates as a JPEG: nothing is recorded.
                Action::Pending
            } else {
                Action::None
            };
            Eval { entries, action }
        }
        Kind::Tiff => {
            let action = if maybe_valid_tiff(b) {
                read_tiff(b, &mut entries);
                Action::Record {
                    skip: 0,
                    hashed: false,
                }
            } else {
                Action::None
            };
            Eval { entries, action }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(D[usize::from(b >> 4)]));
        s.push(char::from(D[usize::from(b & 15)]));
    }
    s
}

// ---------------------------------------------------------------------
// JPEG

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Unknown,
    Complete,
    Truncated,
    Corrupt,
}

fn be16(b: &[u8], i: usize) -> usize {
    match (b.get(i), b.get(i + 1)) {
        (Some(&x), Some(&y)) => usize::from(x) << 8 | usize::from(y),
        _ => 0,
    }
}

/// `jpeg_validator::validate_jpeg`: how the JPEG at the start of `b` ends
/// and the length validated (0: not a JPEG).
fn validate_jpeg(b: &[u8]) -> (How, usize) {
    let n = b.len();
    let mut how = How::Unknown;
    let mut i = 0usize;
    let (mut c4, mut cc, mut db, mut e1, mut jfif, mut eoi, mut soi, mut sos) =
        (false, false, false, false, false, false, false, false);
    let (mut height, mut width) = (0usize, 0usize);
    'walk: while i + 1 < n && !eoi && how == How::Unknown {
        if b[i] != 0xff {
            how = How::Corrupt;
            break;
        }
        match b[i + 1] {
            0xff => how = How::Corrupt,
            0xd8 => {
                soi = true;
                i += 2;
            }
            0x01 => {
                how = How::Complete;
                i += 2;
            }
            0xd0..=0xd7 => i += 2,
            0xd9 => {
                eoi = true;
                how = How::Complete;
                i += 2;
            }
            0xda => {
                sos = true;
                if !c4 && !cc && !db {
                    return (How::Corrupt, 0);
                }
                if !jfif || width == 0 || height == 0 {
                    return (How::Corrupt, 0);
                }
                if i + 2 >= n {
                    i += 2;
                    continue;
                }
                if i + 3 >= n {
                    // bulk_extractor reads past its buffer here.
                    i += 2;
                    break 'walk;
                }
                i += 2 + be16(b, i + 2);
                while i + 1 < n {
                    if b[i] != 0xff || b[i + 1] == 0x00 {
                        i += 1;
                        continue;
                    }
                    if b[i + 1] == 0xde || b[i + 1] == 0xd9 {
                        how = How::Complete;
                        i += 2;
                        break;
                    }
                    if (0xc0..=0xdf).contains(&b[i + 1]) {
                        i += 1;
                        continue;
                    }
                    how = How::Corrupt;
                    break;
                }
                break 'walk;
            }
            m => {
                if i + 8 >= n {
                    i += 8;
                    continue;
                }
                let len = be16(b, i + 2);
                match m {
                    0xc4 => c4 = true,
                    0xcc => cc = true,
                    0xdb => db = true,
                    0xe1 => e1 = true,
                    _ => {}
                }
                if m == 0xe0 && len > 8 && &b[i + 4..i + 8] == b"JFIF" {
                    jfif = true;
                }
                if m == 0xc0 && len > 8 {
                    height = be16(b, i + 5);
                    width = be16(b, i + 7);
                }
                i += 2 + len;
            }
        }
    }
    let len = i;
    if !jfif || !soi {
        return (How::Corrupt, 0);
    }
    if e1 {
        return (How::Truncated, len);
    }
    if !c4 && !cc && !db {
        return (How::Corrupt, 0);
    }
    if !sos || width == 0 || height == 0 {
        return (How::Corrupt, 0);
    }
    (how, len)
}

/// `exif_reader::get_tiff_offset_from_exif`: the TIFF header's offset in
/// the JPEG's APP1 `Exif\0\0` segment, or 0.
fn tiff_offset_from_exif(b: &[u8]) -> usize {
    if b.len() < 4 || b[0] != 0xff || b[1] != 0xd8 || b[2] != 0xff {
        return 0;
    }
    let mut o = 2usize;
    loop {
        if b.len() < o + 10 {
            return 0;
        }
        if b[o] != 0xff || b[o + 1] & 0xf0 != 0xe0 {
            return 0;
        }
        if b[o + 1] == 0xe1 && &b[o + 4..o + 10] == b"Exif\0\0" {
            return o + 10;
        }
        o += be16(b, o + 2) + 2;
    }
}

// ---------------------------------------------------------------------
// PSD

/// `psd_reader::get_tiff_offset_from_psd`: the offset of the `ExifInfo`
/// resource's TIFF data in the PSD at the start of `b`, or 0 (with
/// bulk_extractor's reading of the name length from the byte after it, and
/// resource sizes kept to 16 bits).
fn tiff_offset_from_psd(b: &[u8]) -> usize {
    if b.len() < 26 || &b[..6] != b"8BPS\x00\x01" || b[6..12].iter().any(|&x| x != 0) {
        return 0;
    }
    let at = |o: u64| usize::try_from(o).ok().and_then(|o| b.get(o)).copied();
    let u8p = |o: u32| at(u64::from(o) + 1).map_or(0, u32::from);
    let u16p = |o: u32| match (at(u64::from(o)), at(u64::from(o) + 1)) {
        (Some(x), Some(y)) => u32::from(x) << 8 | u32::from(y),
        _ => 0,
    };
    let u32p = |o: u32| {
        let o = u64::from(o);
        match (at(o), at(o + 1), at(o + 2), at(o + 3)) {
            (Some(a), Some(b2), Some(c), Some(d)) => u32::from_be_bytes([a, b2, c, d]),
            _ => 0,
        }
    };
    let cm = u32p(26);
    let rl = u32p(30u32.wrapping_add(cm));
    let start = 34 + u64::from(cm);
    let end = start + u64::from(rl);
    let mut ro = start;
    // Past the data every read gives 0 and no resource matches.
    while ro < end && ro < b.len() as u64 {
        let id = u16p((ro + 4) as u32);
        let nl = u64::from(u8p((ro + 6) as u32) & 0xfe);
        let size = u32p((ro + 8 + nl) as u32).wrapping_add(1) & 0xfffe;
        if id == 0x0422 {
            return usize::try_from(ro + 8 + nl + 4).unwrap_or(0);
        }
        ro += 8 + nl + 4 + u64::from(size);
    }
    0
}

// ---------------------------------------------------------------------
// TIFF

/// A TIFF being read: its bytes (from the header), byte order, budget.
struct Tiff<'a> {
    b: &'a [u8],
    le: bool,
    bytes_read: u64,
    visits: u32,
}

impl Tiff<'_> {
    fn get(&self, o: u64, n: usize) -> Option<&[u8]> {
        let o = usize::try_from(o).ok()?;
        self.b.get(o..o.checked_add(n)?)
    }
    fn u8(&self, o: u64) -> Option<u8> {
        self.get(o, 1).map(|s| s[0])
    }
    fn u16(&self, o: u64) -> Option<u16> {
        let s = self.get(o, 2)?;
        let a = [s[0], s[1]];
        Some(if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        })
    }
    fn u32(&self, o: u64) -> Option<u32> {
        let s = self.get(o, 4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }
    /// The bytes from `o` on (none past the end).
    fn from(&self, o: u64) -> &[u8] {
        usize::try_from(o)
            .ok()
            .and_then(|o| self.b.get(o..))
            .unwrap_or(&[])
    }
}

fn tiff_order(b: &[u8]) -> Option<bool> {
    match b.get(..4)? {
        b"II*\x00" => Some(true),
        b"MM\x00*" => Some(false),
        _ => None,
    }
}

/// `tiff_reader::is_maybe_valid_tiff`: the magic, a first IFD of 1 to 200
/// entries, the first entry whole and of a TIFF type (1..=12).
fn maybe_valid_tiff(b: &[u8]) -> bool {
    let Some(le) = tiff_order(b) else {
        return false;
    };
    let t = Tiff {
        b,
        le,
        bytes_read: 0,
        visits: 0,
    };
    let ifd0 = u64::from(t.u32(4).unwrap_or(0));
    if ifd0 == 0 {
        return false;
    }
    let n = t.u16(ifd0).unwrap_or(0);
    if n == 0 || n > 200 {
        return false;
    }
    let e0 = ifd0 + 2;
    if e0 + 12 > b.len() as u64 {
        return false;
    }
    matches!(t.u16(e0 + 2), Some(1..=12))
}

/// `tiff_reader::read_tiff_data`: IFD0 (with its EXIF, GPS and
/// interoperability IFDs), then IFD1.
fn read_tiff(b: &[u8], entries: &mut Vec<Entry>) {
    let Some(le) = tiff_order(b) else {
        return;
    };
    let mut t = Tiff {
        b,
        le,
        bytes_read: 0,
        visits: 0,
    };
    let ifd0 = u64::from(t.u32(4).unwrap_or(0));
    if ifd0 == 0 {
        return;
    }
    let ifd = |n, class| Ifd { n, class };
    if parse_ifd(&mut t, ifd(0, Class::Tiff), ifd0, entries).is_err() {
        return;
    }
    let n = u64::from(t.u16(ifd0).unwrap_or(0));
    let ptr = (ifd0 + 2 + n * 12) & 0xffff_ffff;
    let ifd1 = u64::from(t.u32(ptr).unwrap_or(0));
    if ifd1 == 0 {
        return;
    }
    let _ = parse_ifd(&mut t, ifd(1, Class::Tiff), ifd1, entries);
}

/// `entry_reader::parse_ifd_entries`.
fn parse_ifd(t: &mut Tiff<'_>, ifd: Ifd, off: u64, entries: &mut Vec<Entry>) -> Result<(), Fail> {
    let n = t.u16(off).unwrap_or(0);
    if n == 0 {
        return Ok(());
    }
    if n > MAX_IFD_ENTRIES {
        return Err(Fail);
    }
    for i in 0..u64::from(n) {
        if t.bytes_read >= MAX_EXIF_BYTES {
            return Err(Fail);
        }
        let eo = (off + 2 + i * 12) & 0xffff_ffff;
        if eo + 12 > t.b.len() as u64 {
            return Err(Fail);
        }
        t.visits += 1;
        if t.visits > MAX_VISITS {
            return Err(Fail);
        }
        parse_entry(t, ifd, eo, entries)?;
    }
    Ok(())
}

fn tiff_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x0100 => "ImageWidth",
        0x0102 => "BitsPerSample",
        0x0103 => "Compression",
        0x0106 => "PhotometricInterpreation",
        0x010e => "ImageDescription",
        0x010f => "Make",
        0x0110 => "Model",
        0x0111 => "StripOffsets",
        0x0112 => "Orientation",
        0x0115 => "SamplesPerPixel",
        0x0116 => "RowsPerStrip",
        0x0117 => "StripByteCounts",
        0x011a => "XResolution",
        0x011b => "YResolution",
        0x011c => "PlanarConfiguration",
        0x0128 => "ResolutionUnit",
        0x012d => "TransferFunction",
        0x0131 => "Software",
        0x0132 => "DateTime",
        0x013b => "Artist",
        0x013e => "WhitePoint",
        0x013f => "PrimaryChromaticities",
        0x0201 => "JPEGInterchangeFormat",
        0x0202 => "JPEGInterchangeFormatLength",
        0x0211 => "YCbCrCoefficients",
        0x0212 => "YCbCrSubSampling",
        0x0213 => "YCbCrPositioning",
        0x0214 => "ReferenceBlackWhite",
        // bulk_extractor 2.x names the Copyright tag "".
        0x8298 => "",
        _ => return None,
    })
}

fn exif_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x829a => "ExposureTime",
        0x829d => "FNumber",
        0x8822 => "ExposureProgram",
        0x8824 => "SpectralSensitivity",
        0x8827 => "PhotographicSensitivity",
        0x8828 => "OECF",
        0x8830 => "SensitivityType",
        0x8831 => "StandardOutputSensitivity",
        0x8832 => "RecommendedExposureIndex",
        0x8833 => "ISOSpeed",
        0x8834 => "ISOSpeedLatitudeyyy",
        0x8835 => "IOSpeedLatitudezzz",
        0x9000 => "ExifVersion",
        0x9003 => "DateTimeOriginal",
        0x9004 => "DateTimeDigitized",
        0x9101 => "ComponentsConfiguration",
        0x9102 => "CompressedBitsPerPixel",
        0x9201 => "ShutterSpeedValue",
        0x9202 => "ApertureValue",
        0x9203 => "BrightnessValue",
        0x9204 => "ExposureBiasValue",
        0x9205 => "MaxApertureValue",
        0x9206 => "SubjectDistance",
        0x9207 => "MeteringMode",
        0x9208 => "LightSource",
        0x9209 => "Flash",
        0x920a => "FocalLength",
        0x9214 => "SubjectArea",
        0x9286 => "UserComment",
        0x9290 => "SubSecTime",
        0x9291 => "SubSecTimeOriginal",
        0x9292 => "SubSecTimeDigitized",
        0xa000 => "FlashpixVersion",
        0xa001 => "ColorSpace",
        0xa002 => "PixelXDimension",
        0xa003 => "PixelYDimension",
        0xa004 => "RelatedSoundFile",
        0xa20b => "FlashEnergy",
        0xa20c => "SpatialFrequencyResponse",
        0xa20e => "FocalPlaneXResolution",
        0xa20f => "FocalPlaneYResolution",
        0xa210 => "FocalPlaneResolutionUnit",
        0xa214 => "SubjectLocation",
        0xa215 => "ExposureIndex",
        0xa217 => "SensingMethod",
        0xa300 => "FileSource",
        0xa301 => "SceneType",
        0xa302 => "CFAPattern",
        0xa401 => "CustomRendered",
        0xa402 => "ExposureMode",
        0xa403 => "WhiteBalance",
        0xa404 => "DigitalZoomRatio",
        0xa405 => "FocalLengthIn35mmFilm",
        0xa406 => "SceneCaptureType",
        0xa407 => "GainControl",
        0xa408 => "Contrast",
        0xa409 => "Saturation",
        0xa40a => "Sharpness",
        0xa40b => "DeviceSettingDescription",
        0xa40c => "SubjectDistanceRange",
        0xa420 => "ImageUniqueID",
        0xa430 => "CameraOwnerName",
        0xa431 => "BodySerialNumber",
        0xa432 => "LensSpecification",
        0xa433 => "LensMake",
        0xa434 => "LensModel",
        0xa435 => "LensSerialNumber",
        0xa500 => "Gamma",
        _ => return None,
    })
}

const GPS_NAMES: [&str; 32] = [
    "GPSVersionID",
    "GPSLatitudeRef",
    "GPSLatitude",
    "GPSLongitudeRef",
    "GPSLongitude",
    "GPSAltitudeRef",
    "GPSAltitude",
    "GPSTimeStamp",
    "GPSSatellites",
    "GPSStatus",
    "GPSMeasureMode",
    "GPSDOP",
    "GPSSpeedRef",
    "GPSSpeed",
    "GPSTrackRef",
    "GPSTrack",
    "GPSImgDirectionRef",
    "GPSImgDirection",
    "GPSMapDatum",
    "GPSDestLatitudeRef",
    "GPSDestLatitude",
    "GPSDestLongitudeRef",
    "GPSDestLongitude",
    "GPSDestBearingRef",
    "GPSDestBearing",
    "GPSDestDistanceRef",
    "GPSDestDistance",
    "GPSProcessingMethod",
    "GPSAreaInformation",
    "GPSDateStamp",
    "GPSDifferential",
    "GPSHPositioningError",
];

/// `entry_reader::parse_entry`: one 12-byte entry at `eo`.
fn parse_entry(t: &mut Tiff<'_>, ifd: Ifd, eo: u64, entries: &mut Vec<Entry>) -> Result<(), Fail> {
    let tag = t.u16(eo).unwrap_or(0);
    let sub = |class| Ifd { n: ifd.n, class };
    let name = match ifd.class {
        Class::Tiff => match tag {
            0x8769 | 0x8825 => {
                let fwd = u64::from(t.u32(eo + 8).unwrap_or((eo + 12) as u32));
                let class = if tag == 0x8769 {
                    Class::Exif
                } else {
                    Class::Gps
                };
                return parse_ifd(t, sub(class), fwd, entries);
            }
            _ => tiff_name(tag),
        },
        Class::Exif => match tag {
            0xa005 => {
                let fwd = u64::from(t.u32(eo + 8).unwrap_or((eo + 12) as u32));
                return parse_ifd(t, sub(Class::Interop), fwd, entries);
            }
            0xa002 | 0xa003 => {
                let v = value(t, eo)?;
                if atol(&v) as u32 > 65535 {
                    return Err(Fail);
                }
                let name = if tag == 0xa002 {
                    "PixelXDimension"
                } else {
                    "PixelYDimension"
                };
                entries.push(Entry {
                    ifd,
                    name,
                    value: v,
                });
                return Ok(());
            }
            _ => exif_name(tag),
        },
        Class::Gps => GPS_NAMES.get(usize::from(tag)).copied(),
        Class::Interop => (tag == 1).then_some("InteroperabilityIndex"),
    };
    if let Some(name) = name {
        let v = value(t, eo)?;
        entries.push(Entry {
            ifd,
            name,
            value: v,
        });
    }
    Ok(())
}

/// C's `atol` (wrapping): leading blanks, a sign, digits.
fn atol(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while let Some(d) = s.get(i).filter(|d| d.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(i64::from(d - b'0'));
        i += 1;
    }
    if neg { v.wrapping_neg() } else { v }
}

/// The value's offset (`get_data_offset`, kept to 16 bits as there).
fn data_offset(t: &Tiff<'_>, eo: u64) -> u64 {
    let Some(ty) = t.u16(eo + 2) else {
        return 0;
    };
    let width: u32 = match ty {
        1 | 2 | 7 => 1,
        3 => 2,
        4 | 9 => 4,
        5 | 10 => 8,
        _ => return 0,
    };
    let count = t.u32(eo + 4).unwrap_or(0);
    let o = if count.wrapping_mul(width) <= 4 {
        eo + 8
    } else {
        t.u32(eo + 8).map_or(eo + 12, u64::from)
    };
    o & 0xffff
}

/// `get_value`: the entry's value as bulk_extractor formats it.
fn value(t: &mut Tiff<'_>, eo: u64) -> Result<Vec<u8>, Fail> {
    let ty = t.u16(eo + 2).unwrap_or(0);
    let count = t.u32(eo + 4).unwrap_or(0);
    let off = data_offset(t, eo);
    let c = u64::from(count);
    // (bytes per value, count limit)
    let (w, lim) = match ty {
        2 => (1, 0x10000),
        3 => (2, 0x8000),
        4 | 9 => (4, 0x4000),
        5 | 10 => (8, 0x2000),
        _ => (1, 0x10000),
    };
    t.bytes_read += u64::from(count.wrapping_mul(w));
    if c >= lim || t.bytes_read >= MAX_EXIF_BYTES {
        return Err(Fail);
    }
    let mut s = Vec::new();
    match ty {
        2 => {
            let mut n = c;
            for _ in 0..2 {
                if n > 0 && t.u8((off + n - 1) & 0xffff_ffff) == Some(0) {
                    n -= 1;
                }
            }
            s = possible_utf8(t.from(off), n);
        }
        3 if count == 1 => {
            if let Some(v) = t.u16(off) {
                s = v.to_string().into_bytes();
            }
        }
        3 => s = possible_utf16(t.from(off), c, t.le),
        4 if count == 1 => {
            if let Some(v) = t.u32(off) {
                s = v.to_string().into_bytes();
            }
        }
        4 => s = possible_utf32(t.from(off), c, t.le),
        5 | 10 | 9 => {
            let step = if ty == 9 { 4 } else { 8 };
            for i in 0..c {
                let a = off + i * step;
                let text = if ty == 9 {
                    t.u32(a).map(|x| (x as i32).to_string())
                } else {
                    match (t.u32(a), t.u32(a + 4)) {
                        (Some(x), Some(y)) if ty == 5 => Some(format!("{x}/{y}")),
                        (Some(x), Some(y)) => Some(format!("{}/{}", x as i32, y as i32)),
                        _ => None,
                    }
                };
                let Some(text) = text else {
                    break;
                };
                s.extend_from_slice(text.as_bytes());
                if i + 1 < c {
                    s.push(b' ');
                }
            }
        }
        // BYTE, UNDEFINED and every unknown type.
        _ if count == 1 => {
            if let Some(v) = t.u8(off) {
                s = v.to_string().into_bytes();
            }
        }
        _ => s = possible_utf8(t.from(off), c),
    }
    Ok(s)
}

/// `chars_match`: the first `count` bytes are one repeated byte.
fn chars_match(s: &[u8], count: u64) -> bool {
    if count < 2 || s.len() < 2 {
        return false;
    }
    for i in 1..count {
        let Some(&b) = s.get(i as usize) else {
            return true;
        };
        if b != s[0] {
            return false;
        }
    }
    true
}

/// `char_pairs_match`: the first `count` bytes are one repeated pair.
fn char_pairs_match(s: &[u8], count: u64) -> bool {
    if count < 4 || !count.is_multiple_of(2) || s.len() < 4 {
        return false;
    }
    let mut i = 2u64;
    while i < count {
        for k in 0..2 {
            let Some(&b) = s.get((i + k) as usize) else {
                return true;
            };
            if b != s[k as usize] {
                return false;
            }
        }
        i += 2;
    }
    true
}

fn dull(s: &[u8], count: u64) -> bool {
    chars_match(s, count) || char_pairs_match(s, count)
}

fn possible_utf8(s: &[u8], count: u64) -> Vec<u8> {
    if dull(s, count) {
        return Vec::new();
    }
    s[..s.len().min(count as usize)].to_vec()
}

/// utf8cpp's `append`, or bulk_extractor's fallback for an invalid code
/// point: its low byte followed by `zeros` NULs.
fn append_cp(out: &mut Vec<u8>, cp: u32, zeros: usize) {
    match char::from_u32(cp) {
        Some(c) => {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
        None => {
            out.push(cp as u8);
            out.extend(std::iter::repeat_n(0u8, zeros));
        }
    }
}

fn possible_utf16(s: &[u8], count: u64, le: bool) -> Vec<u8> {
    if dull(s, count) {
        return Vec::new();
    }
    let n = (s.len() / 2).min(count as usize);
    let units: Vec<u32> = s[..n * 2]
        .chunks_exact(2)
        .map(|c| {
            u32::from(if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            })
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let mut cp = units[i];
        i += 1;
        if (0xd800..0xdc00).contains(&cp) && i < units.len() {
            let trail = units[i];
            i += 1;
            if (0xdc00..0xe000).contains(&trail) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (trail - 0xdc00);
            }
        }
        append_cp(&mut out, cp, 1);
    }
    out
}

fn possible_utf32(s: &[u8], count: u64, le: bool) -> Vec<u8> {
    if dull(s, count) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in s.chunks_exact(4).take(count as usize) {
        let a = [c[0], c[1], c[2], c[3]];
        let cp = if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        };
        append_cp(&mut out, cp, 3);
    }
    out
}

// ---------------------------------------------------------------------
// Output

/// `dfxml_writer::xmlescape`.
fn xml_escape(v: &[u8], out: &mut Vec<u8>) {
    for &c in v {
        match c {
            b'>' => out.extend_from_slice(b"&gt;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'\'' => out.extend_from_slice(b"&apos;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            0 => out.extend_from_slice(b"%00"),
            b'\r' => out.extend_from_slice(b"%0D"),
            b'\n' => out.extend_from_slice(b"%0A"),
            b'\t' => out.extend_from_slice(b"%09"),
            _ => out.push(c),
        }
    }
}

/// `record_exif_data`'s context.
fn exif_xml(entries: &[&Entry]) -> Vec<u8> {
    let mut out = b"<exif>".to_vec();
    let mut v = Vec::new();
    for e in entries {
        v.clear();
        xml_escape(&e.value, &mut v);
        if v.is_empty() {
            continue;
        }
        let full = [e.ifd.prefix().as_bytes(), e.name.as_bytes()].concat();
        out.push(b'<');
        out.extend_from_slice(&full);
        out.push(b'>');
        out.extend_from_slice(&v);
        out.extend_from_slice(b"</");
        out.extend_from_slice(&full);
        out.push(b'>');
    }
    out.extend_from_slice(b"</exif>");
    out
}

/// bulk_extractor's `split` (`std::getline`): no last empty piece.
fn split(s: &[u8], d: u8) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = s.split(|&c| c == d).collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

/// `sscanf("%lf")`: the longest decimal (or inf/nan) prefix, else 0.
fn stod(s: &[u8]) -> f64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let s = &s[i..];
    let mut j = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let lower: Vec<u8> = s[j..].iter().take(8).map(u8::to_ascii_lowercase).collect();
    for word in [&b"infinity"[..], b"inf", b"nan"] {
        if lower.starts_with(word) {
            let neg = s.first() == Some(&b'-');
            let v = if word == b"nan" {
                f64::NAN
            } else {
                f64::INFINITY
            };
            return if neg { -v } else { v };
        }
    }
    let digits = |s: &[u8], mut k: usize| {
        while k < s.len() && s[k].is_ascii_digit() {
            k += 1;
        }
        k
    };
    let a = j;
    j = digits(s, j);
    let mut mant = j > a;
    if s.get(j) == Some(&b'.') {
        let b = digits(s, j + 1);
        mant |= b > j + 1;
        j = b;
    }
    if !mant {
        return 0.0;
    }
    if matches!(s.get(j), Some(b'e' | b'E')) {
        let k = j + 1 + usize::from(matches!(s.get(j + 1), Some(b'+' | b'-')));
        let e = digits(s, k);
        if e > k {
            j = e;
        }
    }
    std::str::from_utf8(&s[..j])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0)
}

fn rational(s: &[u8]) -> f64 {
    let p = split(s, b'/');
    if p.len() != 2 {
        return stod(s);
    }
    let (top, bot) = (stod(p[0]), stod(p[1]));
    if bot > 0.0 { top / bot } else { top }
}

/// A double as a C++ stream prints it (`%g`, 6 significant digits).
fn dtos(d: f64) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d < 0.0 { "-inf" } else { "inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let e = format!("{d:.5e}");
    let (m, x) = e.split_once('e').unwrap_or((&e, "0"));
    let x: i32 = x.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&x) {
        let sign = if x < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(m), x.abs())
    } else {
        trim(&format!("{:.*}", (5 - x) as usize, d))
    }
}

fn fix_gps(s: &[u8]) -> Vec<u8> {
    let p = split(s, b' ');
    if p.len() != 3 {
        return s.to_vec();
    }
    dtos(rational(p[0]) + rational(p[1]) / 60.0 + rational(p[2]) / 3600.0).into_bytes()
}

fn fix_gps_ref(s: &[u8]) -> &'static [u8] {
    if s == b"W" || s == b"S" { b"-" } else { b"" }
}

/// `record_gps_data`'s context, when the GPS IFD of IFD0 has a position.
fn gps_line(entries: &[&Entry]) -> Option<Vec<u8>> {
    let (mut time, mut date, mut lon_ref, mut lon, mut lat_ref) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut lat, mut ele, mut speed, mut course, mut exif_time) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut has_gps, mut has_date) = (false, false);
    for e in entries {
        if e.name == "DateTimeOriginal" {
            exif_time = e.value.clone();
            if exif_time.len() == 19 {
                for k in [4, 7] {
                    if exif_time[k] == b'/' || exif_time[k] == b':' {
                        exif_time[k] = b'-';
                    }
                }
                if exif_time[10] == b' ' {
                    exif_time[10] = b'T';
                }
            }
        }
        if e.ifd
            != (Ifd {
                n: 0,
                class: Class::Gps,
            })
        {
            continue;
        }
        let v = &e.value;
        match e.name {
            "GPSTimeStamp" => {
                has_date = true;
                time = v.clone();
                if time.len() == 8 {
                    for k in [4, 7] {
                        if time[k] == b' ' {
                            time[k] = b':';
                        }
                    }
                }
            }
            "GPSDateStamp" => {
                has_date = true;
                date = v.clone();
                if date.len() == 10 {
                    for k in [4, 7] {
                        if date[k] == b':' {
                            date[k] = b'-';
                        }
                    }
                }
            }
            "GPSLongitudeRef" => lon_ref = fix_gps_ref(v).to_vec(),
            "GPSLongitude" => lon = fix_gps(v),
            "GPSLatitudeRef" => lat_ref = fix_gps_ref(v).to_vec(),
            "GPSLatitude" => lat = fix_gps(v),
            "GPSAltitude" => ele = dtos(rational(v)).into_bytes(),
            "GPSSpeed" => speed = dtos(rational(v)).into_bytes(),
            "GPSTrack" => course = v.clone(),
            _ => continue,
        }
        if !matches!(e.name, "GPSTimeStamp" | "GPSDateStamp") {
            has_gps = true;
        }
    }
    if !has_gps {
        return None;
    }
    let mut out = Vec::new();
    if has_date {
        out.extend_from_slice(&date);
        out.push(b'T');
        out.extend_from_slice(&time);
    } else {
        out.extend_from_slice(&exif_time);
    }
    lat_ref.extend_from_slice(&lat);
    lon_ref.extend_from_slice(&lon);
    for part in [lat_ref, lon_ref, ele, speed, course] {
        out.push(b',');
        out.extend_from_slice(&part);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A big-endian TIFF: IFD0 with the given (tag, type, count, value or
    /// offset) entries, then the extra data.
    fn tiff_be(entries: &[(u16, u16, u32, u32)], data: &[u8]) -> Vec<u8> {
        let mut t = b"MM\x00*\x00\x00\x00\x08".to_vec();
        t.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for &(tag, ty, n, v) in entries {
            t.extend_from_slice(&tag.to_be_bytes());
            t.extend_from_slice(&ty.to_be_bytes());
            t.extend_from_slice(&n.to_be_bytes());
            t.extend_from_slice(&v.to_be_bytes());
        }
        t.extend_from_slice(&[0; 4]);
        t.extend_from_slice(data);
        t
    }

    fn run(buf: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        scan(buf, 0..buf.len(), &mut out);
        out
    }

    #[test]
    fn bare_tiff_make_model_and_values() {
        // IFD0 at 8 with 4 entries (2 + 48 + 4 = 54 bytes): data at 62.
        let data = b"Canon\0EOS 5D\0\0\x00\x00\x00\x48\x00\x00\x00\x01";
        let t = tiff_be(
            &[
                (0x010f, 2, 6, 62),
                (0x0110, 2, 8, 68),
                (0x0112, 3, 1, 0x0001_0000),
                (0x011a, 5, 1, 76),
            ],
            data,
        );
        let mut buf = vec![0u8; 100];
        let at = buf.len();
        buf.extend_from_slice(&t);
        buf.resize(buf.len() + 300, 0);
        let r = run(&buf);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].pos, at);
        assert_eq!(r[0].recorder, "exif");
        assert_eq!(r[0].feature, ZERO_HASH);
        assert_eq!(
            String::from_utf8_lossy(&r[0].context),
            "<exif><ifd0.tiff.Make>Canon</ifd0.tiff.Make><ifd0.tiff.Model>EOS 5D</ifd0.tiff.Model>\
             <ifd0.tiff.Orientation>1</ifd0.tiff.Orientation><ifd0.tiff.XResolution>72/1</ifd0.tiff.XResolution></exif>"
        );
    }

    #[test]
    fn too_close_to_the_end_or_invalid_is_ignored() {
        let t = tiff_be(&[(0x0112, 3, 1, 0x0001_0000)], b"");
        let mut buf = vec![0u8; 300];
        buf.extend_from_slice(&t);
        // the header is in the last 200 bytes: not scanned
        buf.resize(buf.len() + 100, 0);
        assert!(run(&buf).is_empty());
        // a type of 0 in the first entry: not a TIFF
        let t = tiff_be(&[(0x0112, 0, 1, 0x0001_0000)], b"");
        let mut buf = t.clone();
        buf.resize(1000, 0);
        assert!(run(&buf).is_empty());
    }

    #[test]
    fn gps_line_from_ifd0_gps() {
        // IFD0: GPS pointer to IFD at 26; GPS IFD with 5 entries, data after.
        let mut t = b"MM\x00*\x00\x00\x00\x08".to_vec();
        t.extend_from_slice(&1u16.to_be_bytes());
        t.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 26]);
        t.extend_from_slice(&[0; 4]);
        assert_eq!(t.len(), 26);
        let n = 5u16;
        let data_at = 26 + 2 + 12 * u32::from(n) + 4;
        t.extend_from_slice(&n.to_be_bytes());
        let ent = |t: &mut Vec<u8>, tag: u16, ty: u16, c: u32, v: u32| {
            t.extend_from_slice(&tag.to_be_bytes());
            t.extend_from_slice(&ty.to_be_bytes());
            t.extend_from_slice(&c.to_be_bytes());
            t.extend_from_slice(&v.to_be_bytes());
        };
        ent(&mut t, 1, 2, 2, u32::from_be_bytes(*b"N\0\0\0"));
        ent(&mut t, 2, 5, 3, data_at);
        ent(&mut t, 3, 2, 2, u32::from_be_bytes(*b"W\0\0\0"));
        ent(&mut t, 4, 5, 3, data_at + 24);
        ent(&mut t, 6, 5, 1, data_at + 48);
        t.extend_from_slice(&[0; 4]);
        for (a, b) in [
            (41, 1),
            (28, 1),
            (58, 100),
            (70, 1),
            (37, 1),
            (2168, 100),
            (11909, 2217),
        ] {
            t.extend_from_slice(&u32::to_be_bytes(a));
            t.extend_from_slice(&u32::to_be_bytes(b));
        }
        t.resize(600, 0);
        let r = run(&t);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[1].recorder, "gps");
        assert_eq!(
            String::from_utf8_lossy(&r[1].context),
            ",41.4668,-70.6227,5.37167,,"
        );
        assert!(String::from_utf8_lossy(&r[0].context).contains(
            "<ifd0.gps.GPSLatitudeRef>N</ifd0.gps.GPSLatitudeRef><ifd0.gps.GPSLatitude>41/1 28/1 58/100</ifd0.gps.GPSLatitude>"
        ));
    }

    #[test]
    fn value_formats() {
        assert_eq!(dtos(41.466827777), "41.4668");
        assert_eq!(dtos(0.450405), "0.450405");
        assert_eq!(dtos(1234567.0), "1.23457e+06");
        assert_eq!(dtos(0.00001234), "1.234e-05");
        assert_eq!(dtos(100.0), "100");
        assert_eq!(dtos(-70.6226888), "-70.6227");
        assert_eq!(rational(b"72/0"), 72.0);
        assert_eq!(stod(b" 12.5abc"), 12.5);
        assert_eq!(stod(b"x"), 0.0);
        assert_eq!(split(b"a b ", b' '), vec![&b"a"[..], b"b"]);
        assert_eq!(split(b"", b' ').len(), 0);
        assert_eq!(atol(b" 70000x"), 70000);
        // SHORTs as UTF-16, an unpaired surrogate as its low byte and a NUL
        assert_eq!(
            possible_utf16(&[0x07, 0xdd, 0xd8, 0x00], 2, false),
            "ߝ\0\0".as_bytes()
        );
        assert_eq!(
            possible_utf16(&[0x07, 0xdd, 0xdc, 0x01], 2, false),
            b"\xdf\x9d\x01\x00"
        );
        // one repeated byte or pair: nothing
        assert!(possible_utf8(b"\0\0\0\0", 4).is_empty());
        assert!(possible_utf16(&[0, 8, 0, 8, 0, 8, 0, 8], 4, false).is_empty());
        let mut v = Vec::new();
        xml_escape(b"a<b>&'\"\0\r\n\t", &mut v);
        assert_eq!(v, b"a&lt;b&gt;&amp;&apos;&quot;%00%0D%0A%09");
    }

    #[test]
    fn jpeg_validation() {
        // SOI, JFIF APP0, DQT, SOF0 (8x8), SOS, data, EOI
        let mut j =
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec();
        j.extend_from_slice(b"\xff\xdb\x00\x43\x00");
        j.extend_from_slice(&[1; 64]);
        j.extend_from_slice(b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00");
        j.extend_from_slice(b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00");
        j.extend_from_slice(&[0x12; 50]);
        j.extend_from_slice(b"\xff\xd9");
        assert_eq!(validate_jpeg(&j), (How::Complete, j.len()));
        // without JFIF: not a JPEG for bulk_extractor
        let mut k = j.clone();
        k[6] = b'X';
        assert_eq!(validate_jpeg(&k).1, 0);
        assert_eq!(tiff_offset_from_exif(&j), 0);
    }

    #[test]
    fn hostile_ifd_chains_are_bounded() {
        // IFD0 of 1000 EXIF pointers, each to the same IFD of 1000 pointers.
        let mut t = b"II*\x00\x08\x00\x00\x00".to_vec();
        t.extend_from_slice(&1000u16.to_le_bytes());
        for _ in 0..1000 {
            t.extend_from_slice(&[0x69, 0x87, 4, 0, 1, 0, 0, 0, 8, 0, 0, 0]);
        }
        t.resize(20000, 0);
        let mut e = Vec::new();
        read_tiff(&t, &mut e);
        assert!(e.is_empty());
    }
}
