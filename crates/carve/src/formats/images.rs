//! PNG (chunk walk with CRCs to IEND), GIF (blocks to the trailer, LZW
//! streams decoded), BMP (header sanity and pixel array size).

use super::{Cx, Verdict, crc32_range};
use crate::CarveError;
use crate::kinds::{BMP, GIF, PNG};
use crate::src::{Win, rd};

/// PNG: IHDR first (CRC checked), every chunk's CRC checked, IEND ends it.
pub(crate) fn png(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<33>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    if &h[..8] != b"\x89PNG\r\n\x1a\n" || &h[8..16] != b"\0\0\0\x0dIHDR" {
        return Ok(Verdict::Reject("no IHDR"));
    }
    let (w, ht) = (rd::be32(&h, 16).unwrap_or(0), rd::be32(&h, 20).unwrap_or(0));
    let (depth, color, comp, filter, interlace) = (h[24], h[25], h[26], h[27], h[28]);
    let depth_ok = match color {
        0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(depth, 8 | 16),
        _ => false,
    };
    if w == 0 || ht == 0 || w > 0x7FFF_FFFF || ht > 0x7FFF_FFFF || !depth_ok {
        return Ok(Verdict::Reject("bad IHDR"));
    }
    if comp != 0 || filter != 0 || interlace > 1 {
        return Ok(Verdict::Reject("bad IHDR"));
    }
    if crc32fast::hash(&h[12..29]) != rd::be32(&h, 29).unwrap_or(0) {
        return Ok(Verdict::Reject("IHDR CRC mismatch"));
    }
    let limit = cx.limit(start);
    let mut pos = start + 33;
    let mut bad: Option<String> = None;
    let mut idat = 0u32;
    loop {
        let Some(c) = src.array::<8>(pos)? else {
            return Ok(Verdict::broken(
                PNG,
                src.size() - start,
                "truncated by the end of the image before IEND",
            ));
        };
        let len = u64::from(rd::be32(&c, 0).unwrap_or(u32::MAX));
        let ty = [c[4], c[5], c[6], c[7]];
        if len > 0x7FFF_FFFF || !ty.iter().all(u8::is_ascii_alphabetic) {
            return Ok(Verdict::broken(
                PNG,
                pos - start,
                format!("chunk structure broken at +{}", pos - start),
            ));
        }
        let end = pos + 12 + len;
        if end > limit {
            return Ok(cx.too_long(PNG, start, end, &format!("{} chunk", show(&ty))));
        }
        let Some(crc) = crc32_range(src, pos + 4, pos + 8 + len)? else {
            return Ok(Verdict::Reject("short"));
        };
        let stored = src
            .array::<4>(pos + 8 + len)?
            .map(u32::from_be_bytes)
            .unwrap_or(0);
        if crc != stored && bad.is_none() {
            bad = Some(format!(
                "chunk {} at +{}: CRC mismatch",
                show(&ty),
                pos - start
            ));
        }
        match &ty {
            b"IDAT" => idat += 1,
            b"IEND" => {
                return Ok(match bad {
                    Some(why) => Verdict::broken(PNG, end - start, why),
                    None if idat == 0 => Verdict::broken(PNG, end - start, "no IDAT chunk"),
                    None => Verdict::valid(PNG, end - start),
                });
            }
            _ => {}
        }
        pos = end;
    }
}

fn show(ty: &[u8; 4]) -> String {
    String::from_utf8_lossy(ty).into_owned()
}

/// GIF: header, colour tables, image descriptors with their LZW data
/// (decoded, checking every code), extensions, trailer.
pub(crate) fn gif(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<13>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    if &h[..3] != b"GIF" || !(&h[3..6] == b"87a" || &h[3..6] == b"89a") {
        return Ok(Verdict::Reject("no GIF header"));
    }
    let (sw, sh) = (rd::le16(&h, 6).unwrap_or(0), rd::le16(&h, 8).unwrap_or(0));
    if sw == 0 || sh == 0 {
        return Ok(Verdict::Reject("zero screen size"));
    }
    let mut win = Win::new(src, start, cx.max)?;
    let mut pos = start + 13;
    if h[10] & 0x80 != 0 {
        pos += 3 << ((h[10] & 7) + 1);
    }
    let mut images = 0u32;
    let lzw = &mut cx.scratch.buf;
    loop {
        let Some(b) = win.byte(pos)? else {
            return Ok(truncated_or_long(cx, &win, start));
        };
        match b {
            0x3B => {
                let end = pos + 1;
                if images == 0 {
                    return Ok(Verdict::broken(GIF, end - start, "no image"));
                }
                return Ok(Verdict::valid(GIF, end - start));
            }
            0x2C => {
                let Some(d) = win.slice(pos, 10)? else {
                    return Ok(truncated_or_long(cx, &win, start));
                };
                let (iw, ih) = (rd::le16(d, 5).unwrap_or(0), rd::le16(d, 7).unwrap_or(0));
                let flags = d[9];
                pos += 10;
                if flags & 0x80 != 0 {
                    pos += 3 << ((flags & 7) + 1);
                }
                let Some(min) = win.byte(pos)? else {
                    return Ok(truncated_or_long(cx, &win, start));
                };
                if !(1..=11).contains(&min) {
                    return Ok(broken_at(images, start, pos, "bad LZW minimum code size"));
                }
                pos += 1;
                // Gather the sub-blocks, then decode.
                lzw.clear();
                match sub_blocks(&mut win, &mut pos, Some(lzw))? {
                    Blocks::Ok => {}
                    Blocks::End => return Ok(truncated_or_long(cx, &win, start)),
                }
                let pixels = u64::from(iw) * u64::from(ih);
                if let Err(why) = lzw_check(lzw, min, pixels) {
                    return Ok(broken_at(images, start, pos, why));
                }
                images += 1;
            }
            0x21 => {
                pos += 2;
                match sub_blocks(&mut win, &mut pos, None)? {
                    Blocks::Ok => {}
                    Blocks::End => return Ok(truncated_or_long(cx, &win, start)),
                }
            }
            _ => return Ok(broken_at(images, start, pos, "unknown block")),
        }
    }
}

fn broken_at(images: u32, start: u64, pos: u64, why: &'static str) -> Verdict {
    if images == 0 {
        return Verdict::Reject(why);
    }
    Verdict::broken(
        GIF,
        pos - start,
        format!("block structure broken at +{}: {why}", pos - start),
    )
}

fn truncated_or_long(cx: &Cx, win: &Win, start: u64) -> Verdict {
    if win.limit() >= cx.src.size() {
        Verdict::broken(
            GIF,
            cx.src.size() - start,
            "truncated by the end of the image before the trailer",
        )
    } else {
        Verdict::Reject("larger than the maximum size")
    }
}

enum Blocks {
    Ok,
    End,
}

/// Walks data sub-blocks to the zero-length terminator, optionally
/// collecting their bytes.
fn sub_blocks(
    win: &mut Win,
    pos: &mut u64,
    mut out: Option<&mut Vec<u8>>,
) -> Result<Blocks, CarveError> {
    loop {
        let Some(n) = win.byte(*pos)? else {
            return Ok(Blocks::End);
        };
        *pos += 1;
        if n == 0 {
            return Ok(Blocks::Ok);
        }
        let Some(b) = win.slice(*pos, u64::from(n))? else {
            return Ok(Blocks::End);
        };
        if let Some(o) = out.as_deref_mut() {
            o.extend_from_slice(b);
        }
        *pos += u64::from(n);
    }
}

/// Decodes a GIF LZW stream without producing pixels: every code must be
/// defined, and the stream must end with the end-of-information code (or
/// run out) after at most `pixels` pixels, yielding at least one.
fn lzw_check(data: &[u8], min: u8, pixels: u64) -> Result<(), &'static str> {
    let min = u32::from(min.max(2));
    let clear = 1u32 << min;
    let eoi = clear + 1;
    let mut width = min + 1;
    let mut next = clear + 2;
    let mut prev: Option<u32> = None;
    // length of the string of each code
    let mut lens = [0u32; 4096];
    for l in lens.iter_mut().take(clear as usize) {
        *l = 1;
    }
    let mut produced = 0u64;
    let (mut acc, mut n, mut i) = (0u64, 0u32, 0usize);
    loop {
        while n < width {
            let Some(&b) = data.get(i) else {
                // Ran out without EOI: tolerated when the image is complete.
                return complete(produced, pixels);
            };
            acc |= u64::from(b) << n;
            n += 8;
            i += 1;
        }
        let code = (acc & ((1 << width) - 1)) as u32;
        acc >>= width;
        n -= width;
        if code == clear {
            width = min + 1;
            next = clear + 2;
            prev = None;
            continue;
        }
        if code == eoi {
            return complete(produced, pixels);
        }
        let len = if code < next && code != clear && code != eoi && lens[code as usize] > 0 {
            lens[code as usize]
        } else if code == next && prev.is_some() {
            prev.map_or(0, |p| lens[p as usize] + 1)
        } else {
            return Err("undefined LZW code");
        };
        produced = produced.saturating_add(u64::from(len));
        if produced > pixels.saturating_add(4096) {
            return Err("more pixels than the image holds");
        }
        if let Some(p) = prev
            && next < 4096
        {
            lens[next as usize] = lens[p as usize] + 1;
            next += 1;
            if next == (1 << width) && width < 12 {
                width += 1;
            }
        }
        prev = Some(code);
    }
}

fn complete(produced: u64, pixels: u64) -> Result<(), &'static str> {
    if produced >= pixels.max(1) {
        Ok(())
    } else {
        Err("LZW data ends before the image is complete")
    }
}

/// BMP: file header + DIB header sanity; the pixel array must fit the
/// declared file size, which must not exceed it by more than a little.
pub(crate) fn bmp(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<54>(start)? else {
        // A 12-byte core header BMP is 26 bytes at least; try that.
        return bmp_core(cx, start);
    };
    let size = u64::from(rd::le32(&h, 2).unwrap_or(0));
    let reserved = rd::le32(&h, 6).unwrap_or(1);
    let off = u64::from(rd::le32(&h, 10).unwrap_or(0));
    let hsize = rd::le32(&h, 14).unwrap_or(0);
    if reserved != 0 {
        return Ok(Verdict::Reject("reserved fields set"));
    }
    if hsize == 12 {
        return bmp_core(cx, start);
    }
    if !matches!(hsize, 40 | 52 | 56 | 64 | 108 | 124) {
        return Ok(Verdict::Reject("bad DIB header size"));
    }
    let w = rd::le32(&h, 18).unwrap_or(0) as i32;
    let ht = rd::le32(&h, 22).unwrap_or(0) as i32;
    let planes = rd::le16(&h, 26).unwrap_or(0);
    let bpp = rd::le16(&h, 28).unwrap_or(0);
    let comp = rd::le32(&h, 30).unwrap_or(99);
    let img_size = u64::from(rd::le32(&h, 34).unwrap_or(0));
    let colors = u64::from(rd::le32(&h, 46).unwrap_or(0));
    if w <= 0 || ht == 0 || ht == i32::MIN || planes != 1 {
        return Ok(Verdict::Reject("bad dimensions"));
    }
    if !matches!(bpp, 1 | 2 | 4 | 8 | 16 | 24 | 32 | 64) {
        return Ok(Verdict::Reject("bad bit depth"));
    }
    let min_off = 14 + u64::from(hsize);
    if off < min_off || size < off || size > cx.max || size < 26 {
        return Ok(Verdict::Reject("bad offsets"));
    }
    if bpp <= 8 && colors > (1u64 << bpp) {
        return Ok(Verdict::Reject("bad palette size"));
    }
    let (w, hh) = (u64::from(w.unsigned_abs()), u64::from(ht.unsigned_abs()));
    if w > 1 << 20 || hh > 1 << 20 {
        return Ok(Verdict::Reject("bad dimensions"));
    }
    let stride = (w * u64::from(bpp)).div_ceil(32) * 4;
    let pixels = stride * hh;
    let end = start + size;
    match comp {
        // BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS: the pixel array size is known.
        0 | 3 | 6 => {
            if comp != 0 && !matches!(bpp, 16 | 32) {
                return Ok(Verdict::Reject("bitfields with bad depth"));
            }
            if off + pixels > size {
                return Ok(Verdict::Reject("pixel array larger than the file"));
            }
            // Writers pad a little at most (2 bytes, a sector).
            if size - (off + pixels) > 4096.max(pixels / 64) {
                return Ok(Verdict::Reject("file size far beyond the pixel array"));
            }
            // biSizeImage is often 0 or slightly off: not checked.
            let _ = img_size;
            if end > src.size() {
                return Ok(cx.too_long(BMP, start, end, "file header"));
            }
            Ok(Verdict::valid(BMP, size))
        }
        // RLE8 / RLE4: walk the run-length codes to end-of-bitmap.
        1 | 2 => {
            if (comp == 1 && bpp != 8) || (comp == 2 && bpp != 4) {
                return Ok(Verdict::Reject("RLE with bad depth"));
            }
            if end > src.size() {
                return Ok(cx.too_long(BMP, start, end, "file header"));
            }
            let data = src.view(start + off, size - off)?;
            match rle_end(&data, comp == 1) {
                Some(used) if off + used as u64 <= size && size - (off + used as u64) <= 4096 => {
                    Ok(Verdict::valid_note(BMP, size, "RLE pixel data walked"))
                }
                _ => Ok(Verdict::broken(BMP, size, "RLE pixel data broken")),
            }
        }
        // Embedded JPEG / PNG: the size comes from the header only.
        4 | 5 => {
            if end > src.size() {
                return Ok(cx.too_long(BMP, start, end, "file header"));
            }
            Ok(Verdict::broken(
                BMP,
                size,
                "JPEG/PNG-compressed bitmap: size taken from the header, not checked",
            ))
        }
        _ => Ok(Verdict::Reject("bad compression")),
    }
}

/// OS/2 BITMAPCOREHEADER bitmaps.
fn bmp_core(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<26>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    let size = u64::from(rd::le32(&h, 2).unwrap_or(0));
    let off = u64::from(rd::le32(&h, 10).unwrap_or(0));
    if rd::le32(&h, 6) != Some(0) || rd::le32(&h, 14) != Some(12) {
        return Ok(Verdict::Reject("bad header"));
    }
    let (w, ht) = (
        u64::from(rd::le16(&h, 18).unwrap_or(0)),
        u64::from(rd::le16(&h, 20).unwrap_or(0)),
    );
    let (planes, bpp) = (rd::le16(&h, 22).unwrap_or(0), rd::le16(&h, 24).unwrap_or(0));
    if w == 0 || ht == 0 || planes != 1 || !matches!(bpp, 1 | 4 | 8 | 24) {
        return Ok(Verdict::Reject("bad dimensions"));
    }
    let pixels = (w * u64::from(bpp)).div_ceil(32) * 4 * ht;
    if off < 26 || off + pixels > size || size - (off + pixels) > 4096 || size > cx.max {
        return Ok(Verdict::Reject("bad offsets"));
    }
    let end = start + size;
    if end > src.size() {
        return Ok(cx.too_long(BMP, start, end, "file header"));
    }
    Ok(Verdict::valid(BMP, size))
}

/// Bytes used by RLE8/RLE4 data up to and including end-of-bitmap.
fn rle_end(d: &[u8], rle8: bool) -> Option<usize> {
    let mut i = 0usize;
    loop {
        let n = *d.get(i)?;
        let c = *d.get(i + 1)?;
        i += 2;
        if n > 0 {
            continue;
        }
        match c {
            0 => {}
            1 => return Some(i),
            2 => i += 2,
            k => {
                let bytes = if rle8 {
                    usize::from(k)
                } else {
                    usize::from(k).div_ceil(2)
                };
                i += bytes + (bytes & 1);
            }
        }
        if i > d.len() {
            return None;
        }
    }
}
