//! RAR 1.5-4.x and RAR 5 (header walk with header CRCs to the end-of-archive
//! header), 7z (start header CRC, next header CRC).

use super::{Cx, Verdict, crc32_range};
use crate::CarveError;
use crate::kinds::{RAR, SEVENZ};
use crate::src::rd;

/// Most headers walked in one archive.
const MAX_HEADERS: u32 = 1 << 20;

pub(crate) fn rar(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let Some(sig) = cx.src.array::<8>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    match &sig {
        b"Rar!\x1a\x07\x01\x00" => rar5(cx, start),
        s if &s[..7] == b"Rar!\x1a\x07\x00" => rar4(cx, start),
        _ => Ok(Verdict::Reject("unknown RAR version")),
    }
}

fn rar4(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let limit = cx.limit(start);
    let mut pos = start + 7;
    let mut files = 0u32;
    for n in 0..MAX_HEADERS {
        let Some(h) = src.array::<11>(pos)? else {
            if pos >= src.size() && n > 0 {
                return Ok(Verdict::broken(
                    RAR,
                    src.size() - start,
                    "truncated by the end of the image before the end-of-archive block",
                ));
            }
            return Ok(Verdict::Reject("short"));
        };
        let crc = rd::le16(&h, 0).unwrap_or(0);
        let ty = h[2];
        let flags = rd::le16(&h, 3).unwrap_or(0);
        let size = u64::from(rd::le16(&h, 5).unwrap_or(0));
        let valid_type = (0x72..=0x7B).contains(&ty);
        if !valid_type || size < 7 || (n == 0 && ty != 0x73) {
            return Ok(rar4_stop(start, pos, files, n));
        }
        let hend = pos + size;
        if hend > limit {
            return Ok(cx.too_long(RAR, start, hend, "block header"));
        }
        // Header CRC: low 16 bits of CRC-32 over the header after the CRC.
        let Some(c) = crc32_range(src, pos + 2, hend)? else {
            return Ok(Verdict::Reject("short"));
        };
        if (c & 0xFFFF) as u16 != crc {
            return Ok(rar4_stop(start, pos, files, n));
        }
        let mut add = 0u64;
        if flags & 0x8000 != 0 || ty == 0x74 || ty == 0x7A {
            add = u64::from(rd::le32(&h, 7).unwrap_or(0));
            if ty == 0x74 && flags & 0x100 != 0 {
                let Some(hi) = src.array::<4>(pos + 32)? else {
                    return Ok(Verdict::Reject("short"));
                };
                add |= u64::from(u32::from_le_bytes(hi)) << 32;
            }
        }
        if ty == 0x74 {
            files += 1;
        }
        if ty == 0x7B {
            return Ok(Verdict::valid(RAR, hend - start));
        }
        let next = hend.saturating_add(add);
        if next > limit {
            return Ok(cx.too_long(RAR, start, next, "file header"));
        }
        pos = next;
    }
    Ok(Verdict::Reject("too many headers"))
}

fn rar4_stop(start: u64, pos: u64, files: u32, n: u32) -> Verdict {
    if n == 0 {
        return Verdict::Reject("no main header");
    }
    if files == 0 {
        return Verdict::Reject("no file header");
    }
    Verdict::broken(
        RAR,
        pos - start,
        format!(
            "no end-of-archive block: header chain ends at +{} after {files} file(s) (RAR 2.x writes none)",
            pos - start
        ),
    )
}

/// RAR5 variable-length integer at `b[i..]`: (value, bytes).
fn vint(b: &[u8], i: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for k in 0..10 {
        let x = *b.get(i + k)?;
        v |= u64::from(x & 0x7F).checked_shl(7 * k as u32)?;
        if x & 0x80 == 0 {
            return Some((v, k + 1));
        }
    }
    None
}

fn rar5(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let limit = cx.limit(start);
    let mut pos = start + 8;
    for n in 0..MAX_HEADERS {
        let Some(h) = src.array::<7>(pos)? else {
            if n > 0 && pos >= src.size() {
                return Ok(Verdict::broken(
                    RAR,
                    src.size() - start,
                    "truncated by the end of the image before the end-of-archive header",
                ));
            }
            return Ok(Verdict::Reject("short"));
        };
        let crc = rd::le32(&h, 0).unwrap_or(0);
        let Some((hsize, vl)) = vint(&h, 4) else {
            return Ok(rar5_stop(start, pos, n));
        };
        if hsize == 0 || hsize > (2 << 20) {
            return Ok(rar5_stop(start, pos, n));
        }
        let hend = pos + 4 + vl as u64 + hsize;
        if hend > limit {
            return Ok(cx.too_long(RAR, start, hend, "header"));
        }
        let hdr = src.view(pos + 4, vl as u64 + hsize)?;
        if crc32fast::hash(&hdr) != crc {
            return Ok(rar5_stop(start, pos, n));
        }
        let mut i = vl;
        let Some((ty, a)) = vint(&hdr, i) else {
            return Ok(rar5_stop(start, pos, n));
        };
        i += a;
        let Some((flags, a)) = vint(&hdr, i) else {
            return Ok(rar5_stop(start, pos, n));
        };
        i += a;
        if flags & 1 != 0 {
            let Some((_, a)) = vint(&hdr, i) else {
                return Ok(rar5_stop(start, pos, n));
            };
            i += a;
        }
        let mut data = 0u64;
        if flags & 2 != 0 {
            let Some((d, _)) = vint(&hdr, i) else {
                return Ok(rar5_stop(start, pos, n));
            };
            data = d;
        }
        if (n == 0 && ty != 1 && ty != 4) || !(1..=5).contains(&ty) {
            return Ok(rar5_stop(start, pos, n));
        }
        match ty {
            5 => return Ok(Verdict::valid(RAR, hend - start)),
            4 => {
                return Ok(Verdict::Reject(
                    "RAR5 with encrypted headers: end cannot be found",
                ));
            }
            _ => {}
        }
        let next = hend.saturating_add(data);
        if next > limit {
            return Ok(cx.too_long(RAR, start, next, "file header"));
        }
        pos = next;
    }
    Ok(Verdict::Reject("too many headers"))
}

fn rar5_stop(start: u64, pos: u64, n: u32) -> Verdict {
    if n < 2 {
        return Verdict::Reject("bad RAR5 header");
    }
    Verdict::broken(
        RAR,
        pos - start,
        format!(
            "header chain broken at +{} before the end-of-archive header",
            pos - start
        ),
    )
}

/// 7z: the start header's CRC, then the next header's CRC at the end.
pub(crate) fn sevenz(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<32>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    if h[6] != 0 {
        return Ok(Verdict::Reject("unknown 7z major version"));
    }
    if crc32fast::hash(&h[12..32]) != rd::le32(&h, 8).unwrap_or(0) {
        return Ok(Verdict::Reject("start header CRC mismatch"));
    }
    let off = rd::le64(&h, 12).unwrap_or(u64::MAX);
    let size = rd::le64(&h, 20).unwrap_or(u64::MAX);
    let crc = rd::le32(&h, 28).unwrap_or(0);
    let Some(end) = off
        .checked_add(size)
        .and_then(|x| x.checked_add(32))
        .and_then(|x| x.checked_add(start))
    else {
        return Ok(Verdict::Reject("bad next header"));
    };
    if size > 1 << 30 {
        return Ok(Verdict::Reject("next header too large"));
    }
    if end - start > cx.max {
        return Ok(Verdict::Reject("larger than the maximum size"));
    }
    if end > src.size() {
        return Ok(cx.too_long(SEVENZ, start, end, "start header"));
    }
    if size == 0 {
        return Ok(Verdict::valid_note(SEVENZ, end - start, "empty archive"));
    }
    let nh = start + 32 + off;
    let Some(c) = crc32_range(src, nh, end)? else {
        return Ok(Verdict::Reject("short"));
    };
    let first = src.array::<1>(nh)?.map_or(0, |b| b[0]);
    if c != crc || !(first == 0x01 || first == 0x17) {
        return Ok(Verdict::broken(
            SEVENZ,
            end - start,
            "next header CRC mismatch (fragmented or corrupt)",
        ));
    }
    Ok(Verdict::valid(SEVENZ, end - start))
}
