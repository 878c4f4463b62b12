//! RIFF (WAV, AVI with OpenDML extensions, WebP: chunk walk filling the
//! declared size), ISO base media (MP4, MOV, HEIF: top-level box walk with
//! the `moov` children checked) and Windows EVTX logs (file header and chunk
//! checksums).

use super::{Cx, Verdict, crc32_range, is_fourcc};
use crate::CarveError;
use crate::kinds::{AVI, AVIF, EVTX, HEIC, Kind, M4A, M4V, MOV, MP4, MP4_3GP, WAV, WEBP};
use crate::src::rd;

/// Most chunks / boxes walked in one file.
const MAX_ITEMS: u32 = 1 << 20;

pub(crate) fn riff(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<12>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    let size = u64::from(rd::le32(&h, 4).unwrap_or(0));
    let kind = match &h[8..12] {
        b"WAVE" => WAV,
        b"AVI " => AVI,
        b"WEBP" => WEBP,
        _ => return Ok(Verdict::Reject("unknown RIFF form")),
    };
    if size < 4 + 8 {
        return Ok(Verdict::Reject("RIFF too small"));
    }
    let mut end = start + 8 + size;
    if end - start > cx.max {
        return Ok(Verdict::Reject("larger than the maximum size"));
    }
    // Walk the chunks of the form.
    let mut pos = start + 12;
    let mut first: Option<[u8; 4]> = None;
    let mut seen_fmt = false;
    let mut seen_data = false;
    let mut broken: Option<String> = None;
    let mut n = 0u32;
    while pos + 8 <= end {
        let Some(c) = src.array::<8>(pos)? else {
            if !riff_core_seen(kind, seen_fmt, first.as_ref()) {
                return Ok(Verdict::Reject("RIFF size runs past the image end"));
            }
            return Ok(cx.too_long(kind, start, end, "RIFF header"));
        };
        let id = [c[0], c[1], c[2], c[3]];
        let len = u64::from(rd::le32(&c, 4).unwrap_or(0));
        if !is_fourcc(&id) {
            if !riff_core_seen(kind, seen_fmt, first.as_ref()) {
                return Ok(Verdict::Reject("no valid first chunk"));
            }
            return Ok(Verdict::broken(
                kind,
                (end.min(src.size())) - start,
                format!("chunk structure broken at +{}", pos - start),
            ));
        }
        if first.is_none() {
            first = Some(id);
        }
        match &id {
            b"fmt " => {
                seen_fmt = true;
                if kind == WAV {
                    let Some(f) = src.array::<16>(pos + 8)? else {
                        return Ok(Verdict::Reject("short"));
                    };
                    let (tag, ch, rate) = (
                        rd::le16(&f, 0).unwrap_or(0),
                        rd::le16(&f, 2).unwrap_or(0),
                        rd::le32(&f, 4).unwrap_or(0),
                    );
                    if tag == 0 || ch == 0 || rate == 0 || len < 14 {
                        return Ok(Verdict::Reject("bad fmt chunk"));
                    }
                }
            }
            b"data" => seen_data = true,
            b"LIST" if broken.is_none() && len >= 4 => {
                if let Some(why) = list_fill(cx, pos + 12, pos + 8 + len, 0)? {
                    broken = Some(format!("LIST chunk at +{}: {why}", pos - start));
                }
            }
            _ => {}
        }
        pos = pos
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
        n += 1;
        if n > MAX_ITEMS {
            return Ok(Verdict::Reject("too many chunks"));
        }
    }
    // The last chunk's pad byte may or may not be counted in the size.
    if pos != end && pos != end + 1 {
        if !riff_core_seen(kind, seen_fmt, first.as_ref()) {
            return Ok(Verdict::Reject("chunks do not fill the RIFF size"));
        }
        return Ok(Verdict::broken(
            kind,
            end.min(src.size()) - start,
            format!(
                "chunks do not fill the declared RIFF size ({} of {} bytes)",
                pos.saturating_sub(start + 8),
                size
            ),
        ));
    }
    if let Some(why) = broken
        && riff_core_seen(kind, seen_fmt, first.as_ref())
    {
        return Ok(Verdict::broken(kind, end.min(src.size()) - start, why));
    }
    let ok = match kind {
        k if k == WAV => seen_fmt && seen_data,
        k if k == AVI => first.as_ref() == Some(b"LIST"),
        _ => matches!(first.as_ref(), Some(b"VP8 " | b"VP8L" | b"VP8X")),
    };
    if !ok {
        return Ok(Verdict::Reject("required chunks missing"));
    }
    // OpenDML: AVI files over 1 GiB continue in RIFF 'AVIX' lists.
    let mut note = String::new();
    if kind == AVI {
        let mut ext = 0;
        while let Some(x) = src.array::<12>(end)? {
            if &x[..4] != b"RIFF" || &x[8..12] != b"AVIX" {
                break;
            }
            let l = u64::from(rd::le32(&x, 4).unwrap_or(0));
            let e = end + 8 + l;
            if e - start > cx.max || l < 4 {
                break;
            }
            end = e;
            ext += 1;
        }
        if ext > 0 {
            note = format!("{ext} OpenDML AVIX extension(s)");
        }
    }
    if end > src.size() {
        return Ok(cx.too_long(kind, start, end, "RIFF header"));
    }
    Ok(Verdict::valid_note(kind, end - start, note))
}

/// Checks that the sub-chunks of a LIST exactly fill `[pos, end)`
/// (frames of an AVI `movi` list, its header lists, INFO tags).
fn list_fill(cx: &Cx, mut pos: u64, end: u64, depth: u32) -> Result<Option<String>, CarveError> {
    let mut n = 0u32;
    while pos + 8 <= end {
        let Some(c) = cx.src.array::<8>(pos)? else {
            return Ok(Some("runs past the image end".into()));
        };
        let id = [c[0], c[1], c[2], c[3]];
        let len = u64::from(rd::le32(&c, 4).unwrap_or(0));
        if !is_fourcc(&id) {
            return Ok(Some(format!(
                "sub-chunk structure broken at image offset {pos}"
            )));
        }
        if &id == b"LIST"
            && depth < 4
            && len >= 4
            && let Some(why) = list_fill(cx, pos + 12, pos + 8 + len, depth + 1)?
        {
            return Ok(Some(why));
        }
        pos = pos
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
        n += 1;
        if n > MAX_ITEMS {
            return Ok(Some("too many sub-chunks".into()));
        }
    }
    if pos != end && pos != end + 1 && !(pos < end && end - pos < 8) {
        return Ok(Some("sub-chunks do not fill the list".into()));
    }
    Ok(None)
}

/// Whether the chunk identifying the form was seen (a real file of the
/// form, so a broken or truncated one is worth reporting).
fn riff_core_seen(kind: Kind, fmt: bool, first: Option<&[u8; 4]>) -> bool {
    if kind == WAV {
        fmt
    } else if kind == AVI {
        first == Some(b"LIST")
    } else {
        matches!(first, Some(b"VP8 " | b"VP8L" | b"VP8X"))
    }
}

const TOP_BOXES: [&[u8; 4]; 20] = [
    b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin", b"moof", b"mfra", b"meta", b"uuid",
    b"styp", b"sidx", b"ssix", b"prft", b"emsg", b"udta", b"pnot", b"junk", b"PICT", b"beam",
];

fn brand_kind(b: &[u8]) -> Kind {
    match b {
        b"qt  " => MOV,
        b"M4A " | b"M4B " | b"M4P " => M4A,
        b"M4V " | b"M4VH" | b"M4VP" => M4V,
        b"heic" | b"heix" | b"hevc" | b"hevx" | b"mif1" | b"msf1" | b"heim" | b"heis" => HEIC,
        b"avif" | b"avis" => AVIF,
        x if x.starts_with(b"3g") => MP4_3GP,
        _ => MP4,
    }
}

/// One box header at `pos`: (type, header length, total length); `None`
/// past the end of the image.
fn box_at(cx: &Cx, pos: u64) -> Result<Option<([u8; 4], u64, u64)>, CarveError> {
    let Some(h) = cx.src.array::<8>(pos)? else {
        return Ok(None);
    };
    let ty = [h[4], h[5], h[6], h[7]];
    let size = u64::from(rd::be32(&h, 0).unwrap_or(0));
    if size == 1 {
        let Some(l) = cx.src.array::<8>(pos + 8)? else {
            return Ok(None);
        };
        return Ok(Some((ty, 16, u64::from_be_bytes(l))));
    }
    Ok(Some((ty, 8, size)))
}

pub(crate) fn isobmff(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<16>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    let fsize = u64::from(rd::be32(&h, 0).unwrap_or(0));
    if &h[4..8] != b"ftyp" || !(16..=4096).contains(&fsize) || fsize % 4 != 0 {
        return Ok(Verdict::Reject("bad ftyp box"));
    }
    if !h[8..12]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b' ')
    {
        return Ok(Verdict::Reject("bad major brand"));
    }
    let kind = brand_kind(&h[8..12]);
    let limit = cx.limit(start);
    let mut pos = start + fsize;
    let (mut moov, mut mdat, mut meta, mut moof) = (false, false, false, false);
    let mut n = 0u32;
    let mut broken: Option<String> = None;
    while let Some((ty, hl, size)) = box_at(cx, pos)? {
        if !TOP_BOXES.contains(&&ty) {
            break;
        }
        if size == 0 {
            // "to the end of the file": unknowable for a carved file.
            if ty == *b"mdat" {
                return Ok(Verdict::Reject(
                    "mdat box extends to the end of the file: length unknown",
                ));
            }
            break;
        }
        if size < hl {
            break;
        }
        let Some(end) = pos.checked_add(size) else {
            break;
        };
        if end > limit {
            return Ok(cx.too_long(kind, start, end, &format!("{} box", fourcc(&ty))));
        }
        match &ty {
            b"moov" => {
                moov = true;
                if broken.is_none()
                    && let Some(why) = children_fill(cx, pos + hl, end)?
                {
                    broken = Some(format!("moov box at +{}: {why}", pos - start));
                }
            }
            b"mdat" => mdat = true,
            b"meta" => meta = true,
            b"moof" => moof = true,
            _ => {}
        }
        pos = end;
        n += 1;
        if n > MAX_ITEMS {
            return Ok(Verdict::Reject("too many boxes"));
        }
    }
    let len = pos - start;
    let _ = (mdat, moof);
    let complete = moov || (kind.name == "heic" && meta);
    if let Some(why) = broken {
        return Ok(Verdict::broken(kind, len, why));
    }
    if !complete {
        if n == 0 {
            return Ok(Verdict::Reject("no box after ftyp"));
        }
        return Ok(Verdict::broken(
            kind,
            len,
            "no moov box: the movie header is missing (fragmented or truncated)",
        ));
    }
    Ok(Verdict::valid(kind, len))
}

/// Checks that the child boxes of a container exactly fill `[pos, end)`.
fn children_fill(cx: &Cx, mut pos: u64, end: u64) -> Result<Option<&'static str>, CarveError> {
    let mut n = 0u32;
    while pos < end {
        let Some((ty, hl, size)) = box_at(cx, pos)? else {
            return Ok(Some("child box past the image end"));
        };
        if !is_fourcc(&ty) || size < hl {
            return Ok(Some("child box structure broken"));
        }
        pos = match pos.checked_add(size) {
            Some(p) => p,
            None => return Ok(Some("child box size overflows")),
        };
        n += 1;
        if n > MAX_ITEMS {
            return Ok(Some("too many child boxes"));
        }
    }
    Ok((pos != end).then_some("child boxes do not fill the box"))
}

fn fourcc(t: &[u8; 4]) -> String {
    String::from_utf8_lossy(t).into_owned()
}

/// EVTX: the file header checksum, then every chunk's header and records
/// checksums; the file ends after the last chunk (the counted ones, and any
/// valid chunks directly after them).
pub(crate) fn evtx(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<128>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    if crc32fast::hash(&h[..120]) != rd::le32(&h, 124).unwrap_or(0) {
        return Ok(Verdict::Reject("file header checksum mismatch"));
    }
    let hsize = rd::le32(&h, 32).unwrap_or(0);
    let major = rd::le16(&h, 38).unwrap_or(0);
    let block = u64::from(rd::le16(&h, 40).unwrap_or(0));
    let nchunks = u64::from(rd::le16(&h, 42).unwrap_or(0));
    if hsize != 128 || major != 3 || block != 4096 {
        return Ok(Verdict::Reject("bad file header"));
    }
    const CHUNK: u64 = 65536;
    let mut end = start + block;
    let mut k = 0u64;
    loop {
        let at = end;
        if at + CHUNK - start > cx.max {
            if k < nchunks {
                return Ok(Verdict::Reject("larger than the maximum size"));
            }
            break;
        }
        let ok = match chunk_ok(cx, at)? {
            Some(ok) => ok,
            None => {
                if k < nchunks {
                    return Ok(cx.too_long(
                        EVTX,
                        start,
                        start + block + nchunks * CHUNK,
                        "file header",
                    ));
                }
                break;
            }
        };
        if !ok {
            if k < nchunks {
                return Ok(Verdict::broken(
                    EVTX,
                    at - start,
                    format!("chunk {k} at +{}: bad signature or checksum", at - start),
                ));
            }
            break;
        }
        end = at + CHUNK;
        k += 1;
    }
    if k == 0 {
        return Ok(Verdict::Reject("no chunk"));
    }
    let note = if k > nchunks {
        format!(
            "{} valid chunk(s) beyond the {nchunks} counted in the header",
            k - nchunks
        )
    } else {
        String::new()
    };
    Ok(Verdict::valid_note(EVTX, end - start, note))
}

/// Whether the chunk at `at` is sound; `None` when it passes the image end.
fn chunk_ok(cx: &Cx, at: u64) -> Result<Option<bool>, CarveError> {
    let Some(h) = cx.src.array::<512>(at)? else {
        return Ok(None);
    };
    if at + 65536 > cx.src.size() {
        return Ok(None);
    }
    if &h[..8] != b"ElfChnk\0" {
        return Ok(Some(false));
    }
    let mut c = crc32fast::Hasher::new();
    c.update(&h[..120]);
    c.update(&h[128..512]);
    if c.finalize() != rd::le32(&h, 124).unwrap_or(0) {
        return Ok(Some(false));
    }
    let free = u64::from(rd::le32(&h, 48).unwrap_or(0));
    if !(512..=65536).contains(&free) {
        return Ok(Some(false));
    }
    let data_crc = crc32_range(cx.src, at + 512, at + free)?;
    Ok(Some(data_crc == rd::le32(&h, 52)))
}
