//! ZIP (and ZIP64): local headers walked to the central directory, every
//! central directory entry checked against its local header, the end of
//! central directory record checked against both; the file ends after the
//! EOCD comment. OOXML (docx/xlsx/pptx and their macro/template variants)
//! is told from `[Content_Types].xml` (inflated, bounded) and part names,
//! ODF and EPUB from the `mimetype` member, JAR and APK from their manifests.
//!
//! A member's local header is also a `PK\3\4` candidate: its walk reaches
//! the same central directory, whose offsets say where the archive starts,
//! so it is rejected. Walks are remembered per thread, so the members of a
//! large archive cost one walk, not one each.

use super::{Cx, Verdict};
use crate::CarveError;
use crate::kinds::{
    APK, DOCM, DOCX, EPUB, JAR, Kind, ODG, ODP, ODS, ODT, PPTM, PPTX, XLSM, XLSX, ZIP,
};
use crate::src::rd;

const LFH: [u8; 4] = *b"PK\x03\x04";
const CDH: [u8; 4] = *b"PK\x01\x02";
const EOCD: [u8; 4] = *b"PK\x05\x06";
const EOCD64: [u8; 4] = *b"PK\x06\x06";
const LOC64: [u8; 4] = *b"PK\x06\x07";
const DD: [u8; 4] = *b"PK\x07\x08";
const MAX_ENTRIES: u64 = 1 << 20;
/// Most EOCD records tried when the local header walk cannot reach the
/// central directory.
const MAX_EOCD_TRIES: u32 = 64;
/// Bytes inflated from `[Content_Types].xml` at most.
const CT_MAX: usize = 256 << 10;

/// A remembered walk: the local headers it crossed and where the archive
/// they belong to starts (per its central directory), if anywhere.
#[derive(Default)]
pub(crate) struct ZipMemo {
    chain: Vec<u64>,
    archive_start: Option<u64>,
    /// Last end-record search: (searched from, first record found).
    eocd: Option<(u64, Option<u64>)>,
}

enum Walk {
    /// The central directory starts here.
    Cd(u64),
    /// The walk stopped (data descriptor of unknown size, or junk) here.
    Lost,
    /// The image ends inside the archive.
    Truncated,
    TooLong(u64),
}

pub(crate) fn validate(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<30>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    let ver = rd::le16(&h, 4).unwrap_or(0);
    let flags = rd::le16(&h, 6).unwrap_or(0);
    let method = rd::le16(&h, 8).unwrap_or(0);
    let nlen = rd::le16(&h, 26).unwrap_or(0);
    if (ver & 0xFF) > 90 || flags & 0xC000 != 0 || nlen == 0 {
        return Ok(Verdict::Reject("bad local header"));
    }
    if !matches!(method, 0..=20 | 93 | 95..=99) {
        return Ok(Verdict::Reject("unknown compression method"));
    }
    // A member of an archive walked before?
    let memo = &cx.scratch.zip;
    if memo.archive_start.is_some()
        && memo.archive_start != Some(start)
        && memo.chain.binary_search(&start).is_ok()
    {
        return Ok(Verdict::Reject("member of an archive found before"));
    }
    let limit = cx.limit(start);
    let mut chain = std::mem::take(&mut cx.scratch.zip.chain);
    chain.clear();
    let walk = walk_locals(cx, start, limit, &mut chain)?;
    let cd = match walk {
        Walk::Cd(p) => Some(p),
        Walk::Lost => None,
        Walk::Truncated => {
            let members = chain.len();
            cx.scratch.zip.chain = chain;
            cx.scratch.zip.chain.clear();
            // A bogus local header's size runs anywhere: only a chain of
            // sound members cut by the image end is a truncated archive.
            if members < 2 {
                return Ok(Verdict::Reject("local header size runs past the image end"));
            }
            return Ok(Verdict::broken(
                ZIP,
                src.size() - start,
                "truncated by the end of the image before the central directory",
            ));
        }
        Walk::TooLong(e) => {
            cx.scratch.zip.chain = chain;
            cx.scratch.zip.chain.clear();
            return Ok(cx.too_long(ZIP, start, e, "local headers"));
        }
    };
    let found = match cd {
        Some(p) => parse_cd(cx, start, p, limit)?,
        None => search_eocd(cx, start, limit)?,
    };
    // Remember the walk only when every later member of the chain would
    // reach the same verdict (a directory whose start is known): the memo
    // must never change a result, only save the work.
    let archive_start = match &found {
        Cd::Ok { archive_start, .. } | Cd::Elsewhere(archive_start) if cd.is_some() => {
            Some(*archive_start)
        }
        _ => None,
    };
    if archive_start.is_some() {
        cx.scratch.zip.chain = chain;
        cx.scratch.zip.archive_start = archive_start;
    } else {
        cx.scratch.zip.chain = chain;
        cx.scratch.zip.chain.clear();
        cx.scratch.zip.archive_start = None;
    }
    match found {
        Cd::Ok {
            archive_start,
            end,
            entries,
        } if archive_start == start => {
            if end - start > cx.max {
                return Ok(Verdict::Reject("larger than the maximum size"));
            }
            if end > src.size() {
                return Ok(cx.too_long(ZIP, start, end, "central directory"));
            }
            let (kind, note) = classify(cx, start, &entries)?;
            Ok(Verdict::valid_note(kind, end - start, note))
        }
        Cd::Ok { .. } | Cd::Elsewhere(_) => Ok(Verdict::Reject("member of a larger archive")),
        Cd::Bad(why) => {
            if cd.is_some() {
                Ok(Verdict::Reject(why))
            } else {
                Ok(Verdict::Reject("no end of central directory found"))
            }
        }
        Cd::Truncated => Ok(Verdict::broken(
            ZIP,
            src.size() - start,
            "truncated by the end of the image inside the central directory",
        )),
    }
}

/// Follows local headers from `start` to the central directory.
fn walk_locals(cx: &Cx, start: u64, limit: u64, chain: &mut Vec<u64>) -> Result<Walk, CarveError> {
    let src = cx.src;
    let mut pos = start;
    for _ in 0..MAX_ENTRIES {
        let Some(sig) = src.array::<4>(pos)? else {
            return Ok(Walk::Truncated);
        };
        if sig == CDH || sig == EOCD || sig == EOCD64 {
            return Ok(Walk::Cd(pos));
        }
        if sig != LFH {
            return Ok(Walk::Lost);
        }
        let Some(h) = src.array::<30>(pos)? else {
            return Ok(Walk::Truncated);
        };
        let flags = rd::le16(&h, 6).unwrap_or(0);
        let method = rd::le16(&h, 8).unwrap_or(0);
        let mut csize = u64::from(rd::le32(&h, 18).unwrap_or(0));
        let n = u64::from(rd::le16(&h, 26).unwrap_or(0));
        let e = u64::from(rd::le16(&h, 28).unwrap_or(0));
        let name = src.view(pos + 30, n.min(256))?;
        if n == 0 || name.iter().any(|&c| c < 0x20 || c == 0x7F) {
            return Ok(Walk::Lost);
        }
        chain.push(pos);
        let mut zip64 = false;
        if csize == 0xFFFF_FFFF {
            // ZIP64 extra field (id 1): uncompressed then compressed size.
            let ex = src.view(pos + 30 + n, e)?;
            match zip64_field(&ex) {
                Some(f) if f.len() >= 16 => {
                    csize = rd::le64(f, 8).unwrap_or(u64::MAX);
                    zip64 = true;
                }
                _ => return Ok(Walk::Lost),
            }
        }
        if flags & 0x0008 != 0 && csize == 0 {
            // Sizes in a data descriptor after the data: DEFLATE data ends
            // where the stream ends (inflated, bounded); others are lost.
            if method != 8 {
                return Ok(Walk::Lost);
            }
            match deflate_len(src, pos + 30 + n + e, limit)? {
                Some(l) => csize = l,
                None => return Ok(Walk::Lost),
            }
        }
        let mut next = match (pos + 30 + n + e).checked_add(csize) {
            Some(x) => x,
            None => return Ok(Walk::Lost),
        };
        if flags & 0x0008 != 0 {
            let dsz = if zip64 { 20 } else { 12 };
            next += match src.array::<4>(next)? {
                Some(s) if s == DD => dsz + 4,
                _ => dsz,
            };
        }
        if next > limit {
            return Ok(if limit >= src.size() {
                Walk::Truncated
            } else {
                Walk::TooLong(next)
            });
        }
        pos = next;
    }
    Ok(Walk::Lost)
}

fn zip64_field(ex: &[u8]) -> Option<&[u8]> {
    let mut i = 0usize;
    while i + 4 <= ex.len() {
        let id = rd::le16(ex, i)?;
        let len = usize::from(rd::le16(ex, i + 2)?);
        let body = ex.get(i + 4..i + 4 + len)?;
        if id == 1 {
            return Some(body);
        }
        i += 4 + len;
    }
    None
}

/// A central directory entry worth keeping for classification.
pub(crate) struct Entry {
    name: Vec<u8>,
    method: u16,
    csize: u64,
    local: u64,
}

enum Cd {
    Ok {
        archive_start: u64,
        end: u64,
        entries: Vec<Entry>,
    },
    /// A consistent directory of an archive starting elsewhere.
    Elsewhere(u64),
    Bad(&'static str),
    Truncated,
}

/// Parses the central directory at `cd` and the records after it.
fn parse_cd(cx: &Cx, start: u64, cd: u64, limit: u64) -> Result<Cd, CarveError> {
    let src = cx.src;
    let mut pos = cd;
    let mut entries = Vec::new();
    let mut count = 0u64;
    loop {
        let Some(sig) = src.array::<4>(pos)? else {
            return Ok(Cd::Truncated);
        };
        if sig != CDH {
            break;
        }
        let Some(h) = src.array::<46>(pos)? else {
            return Ok(Cd::Truncated);
        };
        let method = rd::le16(&h, 10).unwrap_or(0);
        let mut csize = u64::from(rd::le32(&h, 20).unwrap_or(0));
        let usize_ = u64::from(rd::le32(&h, 24).unwrap_or(0));
        let n = u64::from(rd::le16(&h, 28).unwrap_or(0));
        let e = u64::from(rd::le16(&h, 30).unwrap_or(0));
        let c = u64::from(rd::le16(&h, 32).unwrap_or(0));
        let mut local = u64::from(rd::le32(&h, 42).unwrap_or(0));
        if csize == 0xFFFF_FFFF || usize_ == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
            let ex = src.view(pos + 46 + n, e)?;
            if let Some(f) = zip64_field(&ex) {
                let mut i = 0;
                let mut take = |want: bool| {
                    if !want {
                        return None;
                    }
                    let v = rd::le64(f, i);
                    i += 8;
                    v
                };
                let _ = take(usize_ == 0xFFFF_FFFF);
                if let Some(v) = take(csize == 0xFFFF_FFFF) {
                    csize = v;
                }
                if let Some(v) = take(local == 0xFFFF_FFFF) {
                    local = v;
                }
            }
        }
        let name = src.view(pos + 46, n.min(512))?.into_owned();
        entries.push(Entry {
            name,
            method,
            csize,
            local,
        });
        count += 1;
        if count > MAX_ENTRIES {
            return Ok(Cd::Bad("too many entries"));
        }
        pos = pos + 46 + n + e + c;
        if pos > limit {
            return Ok(if limit >= src.size() {
                Cd::Truncated
            } else {
                Cd::Bad("central directory larger than the maximum size")
            });
        }
    }
    let cd_size = pos - cd;
    // Optional ZIP64 end record and locator.
    let mut z64: Option<(u64, u64, u64)> = None;
    if let Some(s) = src.array::<56>(pos)?
        && s[..4] == EOCD64
    {
        let rsize = rd::le64(&s, 4).unwrap_or(0);
        let total = rd::le64(&s, 32).unwrap_or(0);
        let size = rd::le64(&s, 40).unwrap_or(0);
        let off = rd::le64(&s, 48).unwrap_or(0);
        z64 = Some((total, size, off));
        pos = match (pos + 12).checked_add(rsize) {
            Some(p) => p,
            None => return Ok(Cd::Bad("bad ZIP64 end record")),
        };
        if let Some(l) = src.array::<20>(pos)?
            && l[..4] == LOC64
        {
            pos += 20;
        }
    }
    let Some(eo) = src.array::<22>(pos)? else {
        return Ok(if pos + 22 > src.size() {
            Cd::Truncated
        } else {
            Cd::Bad("short end record")
        });
    };
    if eo[..4] != EOCD {
        return Ok(Cd::Bad("no end of central directory after the directory"));
    }
    let disk = rd::le16(&eo, 4).unwrap_or(1);
    let cd_disk = rd::le16(&eo, 6).unwrap_or(1);
    let n_disk = u64::from(rd::le16(&eo, 8).unwrap_or(0));
    let n_total = u64::from(rd::le16(&eo, 10).unwrap_or(0));
    let mut size = u64::from(rd::le32(&eo, 12).unwrap_or(0));
    let mut off = u64::from(rd::le32(&eo, 16).unwrap_or(0));
    let clen = u64::from(rd::le16(&eo, 20).unwrap_or(0));
    let mut total = n_total;
    if let Some((t, s, o)) = z64 {
        if n_total == 0xFFFF {
            total = t;
        }
        if size == 0xFFFF_FFFF {
            size = s;
        }
        if off == 0xFFFF_FFFF {
            off = o;
        }
    }
    if disk != 0 || cd_disk != 0 {
        return Ok(Cd::Bad("multi-disk archive"));
    }
    if n_disk != n_total || (total != count && total != count & 0xFFFF) || size != cd_size {
        return Ok(Cd::Bad("end record disagrees with the central directory"));
    }
    let Some(archive_start) = cd.checked_sub(off) else {
        return Ok(Cd::Bad("central directory offset before the image"));
    };
    if archive_start != start {
        return Ok(Cd::Elsewhere(archive_start));
    }
    // Every entry's local header is where the directory says.
    for en in &entries {
        let Some(l) = src.array::<30>(start.saturating_add(en.local))? else {
            return Ok(Cd::Bad("local header past the image end"));
        };
        if l[..4] != LFH
            || u64::from(rd::le16(&l, 26).unwrap_or(0)) != en.name.len() as u64
                && en.name.len() < 512
        {
            return Ok(Cd::Bad("central directory entry without its local header"));
        }
    }
    Ok(Cd::Ok {
        archive_start,
        end: pos + 22 + clen,
        entries,
    })
}

/// Compressed length of the raw DEFLATE stream at `at` (inflated into a
/// small reused buffer, at most 256 MiB out); `None` when it does not end.
fn deflate_len(src: &crate::src::Src, at: u64, limit: u64) -> Result<Option<u64>, CarveError> {
    let mut d = flate2::Decompress::new(false);
    let mut out = vec![0u8; 32 << 10];
    let r = src.each_chunk(at, limit, 1 << 20, |_, mut input| {
        loop {
            let (i0, o0) = (d.total_in(), d.total_out());
            let st = d.decompress(input, &mut out, flate2::FlushDecompress::None);
            let used = (d.total_in() - i0) as usize;
            let made = (d.total_out() - o0) as usize;
            input = &input[used..];
            match st {
                Ok(flate2::Status::StreamEnd) => return Some(true),
                Err(_) => return Some(false),
                Ok(_) => {}
            }
            if d.total_out() > 256 << 20 || (used == 0 && made == 0 && !input.is_empty()) {
                return Some(false);
            }
            if input.is_empty() && made < out.len() {
                return None;
            }
        }
    })?;
    Ok((r == Some(true)).then(|| d.total_in()))
}

/// The first end-of-central-directory record after `from` whose directory
/// is where it says: (record position, archive start).
fn first_eocd(cx: &mut Cx, from: u64, limit: u64) -> Result<Option<(u64, u64)>, CarveError> {
    let src = cx.src;
    let mut at = from;
    // A previous search from at or before `from` found the first record at
    // or after `from`: no record lies between, so the answer is the same.
    let memo = cx.scratch.zip.eocd;
    let mut q_first = None;
    if let Some((f0, found)) = memo
        && f0 <= from
        && found.is_some_and(|q| q >= from)
    {
        q_first = found;
    }
    for _ in 0..MAX_EOCD_TRIES {
        let q = match q_first.take() {
            Some(q) => q,
            None => match src.find(&EOCD, at, limit)? {
                Some(q) => q,
                None => return Ok(None),
            },
        };
        if at == from {
            cx.scratch.zip.eocd = Some((from, Some(q)));
        }
        at = q + 4;
        let Some(eo) = src.array::<22>(q)? else {
            return Ok(None);
        };
        let mut size = u64::from(rd::le32(&eo, 12).unwrap_or(0));
        let mut off = u64::from(rd::le32(&eo, 16).unwrap_or(0));
        let mut cd_end = q;
        if (size == 0xFFFF_FFFF || off == 0xFFFF_FFFF)
            && q >= 20
            && let Some(l) = src.array::<20>(q - 20)?
            && l[..4] == LOC64
        {
            // The locator's offset is relative to the archive start, which
            // is what we are looking for: find the ZIP64 record before it.
            let rec = q - 20 - 56;
            if let Some(s) = src.array::<56>(rec)?
                && s[..4] == EOCD64
            {
                size = rd::le64(&s, 40).unwrap_or(0);
                off = rd::le64(&s, 48).unwrap_or(0);
                cd_end = rec;
            }
        }
        let Some(cd) = cd_end.checked_sub(size) else {
            continue;
        };
        let sig_ok = size == 0 || src.array::<4>(cd)? == Some(CDH);
        let Some(archive) = cd.checked_sub(off) else {
            continue;
        };
        if sig_ok {
            return Ok(Some((q, archive)));
        }
    }
    Ok(None)
}

/// Finds the end record of the archive starting at `start` by searching
/// forward (used when the local headers cannot be walked). The first sound
/// record decides: an archive starting elsewhere means this header is a
/// member of it (or of nothing).
fn search_eocd(cx: &mut Cx, start: u64, limit: u64) -> Result<Cd, CarveError> {
    let Some((q, archive)) = first_eocd(cx, start + 30, limit)? else {
        return Ok(Cd::Bad("no end record"));
    };
    if archive != start {
        return Ok(Cd::Elsewhere(archive));
    }
    let Some(eo) = cx.src.array::<22>(q)? else {
        return Ok(Cd::Truncated);
    };
    let size = u64::from(rd::le32(&eo, 12).unwrap_or(0));
    let mut cd = q.saturating_sub(size);
    if size == 0xFFFF_FFFF
        && q >= 76
        && let Some(s) = cx.src.array::<56>(q - 76)?
    {
        cd = (q - 76).saturating_sub(rd::le64(&s, 40).unwrap_or(0));
    }
    parse_cd(cx, start, cd, limit)
}

/// Tells OOXML, ODF, EPUB, JAR and APK from plain ZIP.
fn classify(cx: &mut Cx, start: u64, entries: &[Entry]) -> Result<(Kind, String), CarveError> {
    let has = |n: &[u8]| entries.iter().any(|e| e.name == n);
    if let Some(ct) = entries.iter().find(|e| e.name == b"[Content_Types].xml") {
        let text = member_bytes(cx, start, ct, CT_MAX)?;
        let k = ooxml_kind(&text).or_else(|| {
            if has(b"word/document.xml") {
                Some(DOCX)
            } else if has(b"xl/workbook.xml") {
                Some(XLSX)
            } else if has(b"ppt/presentation.xml") {
                Some(PPTX)
            } else {
                None
            }
        });
        if let Some(k) = k {
            return Ok((k, String::new()));
        }
    }
    if let Some(m) = entries
        .first()
        .filter(|e| e.name == b"mimetype" && e.method == 0)
    {
        let t = member_bytes(cx, start, m, 128)?;
        let k = match t.trim_ascii() {
            b"application/vnd.oasis.opendocument.text"
            | b"application/vnd.oasis.opendocument.text-template" => Some(ODT),
            b"application/vnd.oasis.opendocument.spreadsheet"
            | b"application/vnd.oasis.opendocument.spreadsheet-template" => Some(ODS),
            b"application/vnd.oasis.opendocument.presentation"
            | b"application/vnd.oasis.opendocument.presentation-template" => Some(ODP),
            b"application/vnd.oasis.opendocument.graphics"
            | b"application/vnd.oasis.opendocument.graphics-template" => Some(ODG),
            b"application/epub+zip" => Some(EPUB),
            _ => None,
        };
        if let Some(k) = k {
            return Ok((k, String::new()));
        }
    }
    if has(b"AndroidManifest.xml") && has(b"classes.dex") {
        return Ok((APK, String::new()));
    }
    if has(b"META-INF/MANIFEST.MF") && entries.iter().any(|e| e.name.ends_with(b".class")) {
        return Ok((JAR, String::new()));
    }
    Ok((ZIP, String::new()))
}

fn ooxml_kind(t: &[u8]) -> Option<Kind> {
    let f = |n: &str| memchr::memmem::find(t, n.as_bytes()).is_some();
    Some(
        if f("wordprocessingml.document.main+xml") || f("wordprocessingml.template.main+xml") {
            DOCX
        } else if f("ms-word.document.macroEnabled.main+xml")
            || f("ms-word.template.macroEnabledTemplate.main+xml")
        {
            DOCM
        } else if f("spreadsheetml.sheet.main+xml") || f("spreadsheetml.template.main+xml") {
            XLSX
        } else if f("ms-excel.sheet.macroEnabled.main+xml")
            || f("ms-excel.sheet.binary.macroEnabled.main")
        {
            XLSM
        } else if f("presentationml.presentation.main+xml")
            || f("presentationml.slideshow.main+xml")
            || f("presentationml.template.main+xml")
        {
            PPTX
        } else if f("ms-powerpoint.presentation.macroEnabled.main+xml")
            || f("ms-powerpoint.slideshow.macroEnabled.main+xml")
        {
            PPTM
        } else {
            return None;
        },
    )
}

/// The (inflated, at most `max` bytes of the) data of a member.
fn member_bytes(cx: &mut Cx, start: u64, e: &Entry, max: usize) -> Result<Vec<u8>, CarveError> {
    let src = cx.src;
    let Some(l) = src.array::<30>(start.saturating_add(e.local))? else {
        return Ok(Vec::new());
    };
    let n = u64::from(rd::le16(&l, 26).unwrap_or(0));
    let x = u64::from(rd::le16(&l, 28).unwrap_or(0));
    let data_at = start + e.local + 30 + n + x;
    let csize = e.csize.min(16 << 20);
    let raw = src.view(data_at, csize)?;
    match e.method {
        0 => Ok(raw[..raw.len().min(max)].to_vec()),
        8 => {
            let mut out = std::mem::take(&mut cx.scratch.buf);
            out.clear();
            out.resize(max, 0);
            let mut d = flate2::Decompress::new(false);
            let _ = d.decompress(&raw, &mut out, flate2::FlushDecompress::Finish);
            let n = (d.total_out() as usize).min(max);
            let v = out[..n].to_vec();
            cx.scratch.buf = out;
            Ok(v)
        }
        _ => Ok(Vec::new()),
    }
}
