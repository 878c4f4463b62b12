//! GZIP: header fields checked, the DEFLATE stream inflated (output
//! discarded, bounded) to find where it ends, then the CRC-32 and size in the
//! trailer compared with the inflated data.

use super::{Cx, Verdict};
use crate::CarveError;
use crate::kinds::GZ;
use crate::src::rd;
use flate2::{Decompress, FlushDecompress, Status};

/// Most bytes inflated from one member (a decompression bomb stops here).
pub(crate) const MAX_INFLATE: u64 = 1 << 30;

pub(crate) fn validate(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    validate_capped(cx, start, MAX_INFLATE)
}

/// As [`validate`], inflating at most `cap` bytes.
pub(crate) fn validate_capped(cx: &mut Cx, start: u64, cap: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<10>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    let flg = h[3];
    let xfl = h[8];
    let os = h[9];
    if flg & 0xE0 != 0 || !matches!(xfl, 0 | 2 | 4) || (os > 13 && os != 255) {
        return Ok(Verdict::Reject("bad header"));
    }
    let mut pos = start + 10;
    if flg & 0x04 != 0 {
        let Some(x) = src.array::<2>(pos)? else {
            return Ok(Verdict::Reject("short"));
        };
        pos += 2 + u64::from(u16::from_le_bytes(x));
    }
    for (bit, max) in [(0x08u8, 4096u64), (0x10, 1 << 16)] {
        if flg & bit != 0 {
            let Some(z) = src.find(b"\0", pos, pos + max)? else {
                return Ok(Verdict::Reject("unterminated name or comment"));
            };
            pos = z + 1;
        }
    }
    if flg & 0x02 != 0 {
        let Some(c) = src.array::<2>(pos)? else {
            return Ok(Verdict::Reject("short"));
        };
        let hdr = src.view(start, pos - start)?;
        if (crc32fast::hash(&hdr) & 0xFFFF) as u16 != u16::from_le_bytes(c) {
            return Ok(Verdict::Reject("header CRC mismatch"));
        }
        pos += 2;
    }
    let limit = cx.limit(start);
    if pos >= limit {
        return Ok(Verdict::Reject("short"));
    }
    let mut out = std::mem::take(&mut cx.scratch.buf);
    out.resize(64 << 10, 0);
    let mut d = Decompress::new(false);
    let mut crc = crc32fast::Hasher::new();
    enum End {
        Done,
        Error,
        Bomb,
    }
    let r = src.each_chunk(pos, limit, 1 << 20, |_, mut input| {
        loop {
            let (in0, out0) = (d.total_in(), d.total_out());
            let st = d.decompress(input, &mut out, FlushDecompress::None);
            let used = (d.total_in() - in0) as usize;
            let made = (d.total_out() - out0) as usize;
            crc.update(&out[..made]);
            input = &input[used..];
            match st {
                Ok(Status::StreamEnd) => return Some(End::Done),
                Err(_) => return Some(End::Error),
                Ok(_) => {}
            }
            if d.total_out() > cap {
                return Some(End::Bomb);
            }
            if used == 0 && made == 0 {
                // Needs more input.
                if input.is_empty() {
                    return None;
                }
                // No progress with input left: treat as corrupt.
                return Some(End::Error);
            }
            if input.is_empty() && made < out.len() {
                return None;
            }
        }
    });
    cx.scratch.buf = out;
    let r = r?;
    let consumed = d.total_in();
    let inflated = d.total_out();
    match r {
        Some(End::Done) => {}
        Some(End::Bomb) => {
            return Ok(Verdict::Reject(
                "inflates past the inflate limit (decompression bomb?)",
            ));
        }
        Some(End::Error) => {
            if consumed >= 1024 && inflated >= 1024 {
                return Ok(Verdict::broken(
                    GZ,
                    pos + consumed - start,
                    format!("DEFLATE data corrupt at about +{}", pos + consumed - start),
                ));
            }
            return Ok(Verdict::Reject("not a DEFLATE stream"));
        }
        None => {
            if limit >= src.size() && consumed >= 1024 {
                return Ok(Verdict::broken(
                    GZ,
                    src.size() - start,
                    "truncated by the end of the image inside the DEFLATE data",
                ));
            }
            return Ok(Verdict::Reject(
                "DEFLATE stream does not end within the maximum size",
            ));
        }
    }
    let tend = pos + consumed;
    let Some(t) = src.array::<8>(tend)? else {
        return Ok(Verdict::broken(
            GZ,
            src.size() - start,
            "truncated by the end of the image before the trailer",
        ));
    };
    let end = tend + 8;
    if end - start > cx.max {
        return Ok(Verdict::Reject("larger than the maximum size"));
    }
    if rd::le32(&t, 0) != Some(crc.finalize()) || rd::le32(&t, 4) != Some(inflated as u32) {
        return Ok(Verdict::broken(
            GZ,
            end - start,
            "trailer CRC-32 or size does not match the inflated data",
        ));
    }
    Ok(Verdict::valid(GZ, end - start))
}
