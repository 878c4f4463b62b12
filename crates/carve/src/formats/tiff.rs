//! TIFF and BigTIFF, both byte orders: walks every IFD (the main chain,
//! SubIFDs, EXIF, GPS and interoperability IFDs) and takes the file's end as
//! the furthest byte any structure references: IFDs, out-of-line values,
//! strips, tiles and JPEG interchange streams.

use super::{Cx, Verdict};
use crate::CarveError;
use crate::kinds::TIF;
use crate::src::rd;

const MAX_IFDS: usize = 512;
const MAX_ENTRIES: u64 = 4096;
const MAX_ARRAY: u64 = 1 << 20;

struct T<'c, 'a, 's> {
    cx: &'c Cx<'a, 's>,
    start: u64,
    be: bool,
    big: bool,
}

impl T<'_, '_, '_> {
    fn u16(&self, b: &[u8], i: usize) -> u64 {
        u64::from(
            if self.be {
                rd::be16(b, i)
            } else {
                rd::le16(b, i)
            }
            .unwrap_or(0),
        )
    }
    fn u32(&self, b: &[u8], i: usize) -> u64 {
        u64::from(
            if self.be {
                rd::be32(b, i)
            } else {
                rd::le32(b, i)
            }
            .unwrap_or(0),
        )
    }
    fn u64(&self, b: &[u8], i: usize) -> u64 {
        if self.be {
            rd::be64(b, i)
        } else {
            rd::le64(b, i)
        }
        .unwrap_or(0)
    }
    /// Reads `count` unsigned values of `ty` stored inline in `inline` or
    /// at file offset `off`.
    fn values(
        &self,
        ty: u64,
        count: u64,
        inline: &[u8],
        off: u64,
        out: &mut Vec<u64>,
    ) -> Result<bool, CarveError> {
        out.clear();
        let sz = match ty {
            3 => 2,
            4 | 13 => 4,
            16 | 18 => 8,
            _ => return Ok(false),
        };
        if count > MAX_ARRAY {
            return Ok(false);
        }
        let bytes = count * sz;
        let inl = if self.big { 8 } else { 4 };
        let data = if bytes <= inl {
            std::borrow::Cow::Borrowed(&inline[..bytes as usize])
        } else {
            let v = self.cx.src.view(self.start + off, bytes)?;
            if v.len() as u64 != bytes {
                return Ok(false);
            }
            v
        };
        for i in 0..count as usize {
            out.push(match sz {
                2 => self.u16(&data, i * 2),
                4 => self.u32(&data, i * 4),
                _ => self.u64(&data, i * 8),
            });
        }
        Ok(true)
    }
}

fn type_size(ty: u64, big: bool) -> Option<u64> {
    Some(match ty {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 => 8,
        16..=18 if big => 8,
        _ => return None,
    })
}

pub(crate) fn validate(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<16>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    // An EXIF block inside a JPEG is a TIFF structure, not a TIFF file.
    if start >= 6 && src.array::<6>(start - 6)?.as_ref() == Some(b"Exif\0\0") {
        return Ok(Verdict::Reject("EXIF block"));
    }
    let be = &h[..2] == b"MM";
    let t0 = T {
        cx,
        start,
        be,
        big: false,
    };
    let version = t0.u16(&h, 2);
    let big = version == 43;
    let t = T { big, ..t0 };
    let (first, hlen) = if big {
        if t.u16(&h, 4) != 8 || t.u16(&h, 6) != 0 {
            return Ok(Verdict::Reject("bad BigTIFF header"));
        }
        (t.u64(&h, 8), 16)
    } else {
        (t.u32(&h, 4), 8)
    };
    if first < hlen || first > cx.max {
        return Ok(Verdict::Reject("bad first IFD offset"));
    }
    let (esz, csz, nsz): (u64, u64, u64) = if big { (20, 8, 8) } else { (12, 2, 4) };
    let mut extent = hlen;
    let mut queue: Vec<u64> = vec![first];
    let mut seen: Vec<u64> = Vec::new();
    let mut image = false;
    let mut bad = 0u64;
    let mut total = 0u64;
    let mut offs = Vec::new();
    let mut counts = Vec::new();
    let mut scratch = Vec::new();
    while let Some(ifd) = queue.pop() {
        if seen.contains(&ifd) {
            continue; // loops in the IFD chain end the walk
        }
        if seen.len() >= MAX_IFDS {
            break;
        }
        seen.push(ifd);
        let Some(cb) = src.array::<8>(start + ifd)? else {
            return Ok(Verdict::Reject("IFD past the end of the image"));
        };
        let n = if big { t.u64(&cb, 0) } else { t.u16(&cb, 0) };
        if n == 0 || n > MAX_ENTRIES {
            if seen.len() == 1 {
                return Ok(Verdict::Reject("bad IFD entry count"));
            }
            bad += 1;
            continue;
        }
        let ifd_len = csz + n * esz + nsz;
        let body = src.view(start + ifd + csz, n * esz + nsz)?;
        if body.len() as u64 != n * esz + nsz {
            return Ok(Verdict::Reject("IFD past the end of the image"));
        }
        extent = extent.max(ifd + ifd_len);
        let (mut w, mut hgt) = (false, false);
        let (mut so, mut sc, mut to, mut tc) = (None, None, None, None);
        let (mut jo, mut jl) = (None, None);
        let mut last_tag = 0u64;
        for i in 0..n as usize {
            let e = &body[i * esz as usize..(i + 1) * esz as usize];
            let tag = t.u16(e, 0);
            let ty = t.u16(e, 2);
            let (count, inline) = if big {
                (t.u64(e, 4), &e[12..20])
            } else {
                (t.u32(e, 4), &e[8..12])
            };
            total += 1;
            if tag < last_tag {
                bad += 1;
            }
            last_tag = tag;
            let Some(ts) = type_size(ty, big) else {
                bad += 1;
                continue;
            };
            let Some(bytes) = count.checked_mul(ts) else {
                bad += 1;
                continue;
            };
            let inl = if big { 8 } else { 4 };
            let voff = if big {
                t.u64(inline, 0)
            } else {
                t.u32(inline, 0)
            };
            if bytes > inl {
                match voff.checked_add(bytes) {
                    Some(e) if voff >= hlen => {
                        if e > cx.max {
                            return Ok(Verdict::Reject("value past the maximum size"));
                        }
                        extent = extent.max(e);
                    }
                    _ => {
                        bad += 1;
                        continue;
                    }
                }
            }
            let first_val = || -> u64 {
                match ty {
                    3 => t.u16(inline, 0),
                    4 | 13 => t.u32(inline, 0),
                    16 | 18 => t.u64(inline, 0),
                    _ => 0,
                }
            };
            match tag {
                256 => w = first_val() > 0,
                257 => hgt = first_val() > 0,
                273 => so = Some((ty, count, voff, inline.to_vec())),
                279 => sc = Some((ty, count, voff, inline.to_vec())),
                324 => to = Some((ty, count, voff, inline.to_vec())),
                325 => tc = Some((ty, count, voff, inline.to_vec())),
                513 => jo = Some(first_val()),
                514 => jl = Some(first_val()),
                330 | 34665 | 34853 | 40965
                    if t.values(ty, count.min(64), inline, voff, &mut scratch)? =>
                {
                    for &o in &scratch {
                        if o >= cx.max {
                            return Ok(Verdict::Reject("IFD past the maximum size"));
                        }
                        if o >= hlen {
                            queue.push(o);
                        }
                    }
                }
                _ => {}
            }
        }
        let next = if big {
            t.u64(&body, (n * esz) as usize)
        } else {
            t.u32(&body, (n * esz) as usize)
        };
        if next >= cx.max {
            return Ok(Verdict::Reject("IFD past the maximum size"));
        }
        if next != 0 && next >= hlen {
            queue.push(next);
        }
        // Image data extents.
        let mut data_ext = |o: &Option<(u64, u64, u64, Vec<u8>)>,
                            c: &Option<(u64, u64, u64, Vec<u8>)>|
         -> Result<Option<bool>, CarveError> {
            let (Some((oty, on, oo, oi)), Some((cty, cn, co, ci))) = (o, c) else {
                return Ok(None);
            };
            if on != cn
                || !t.values(*oty, *on, oi, *oo, &mut offs)?
                || !t.values(*cty, *cn, ci, *co, &mut counts)?
            {
                return Ok(Some(false));
            }
            for (&a, &l) in offs.iter().zip(counts.iter()) {
                match a.checked_add(l) {
                    Some(e) if a >= hlen => extent = extent.max(e),
                    _ => return Ok(Some(false)),
                }
            }
            Ok(Some(true))
        };
        let strips = data_ext(&so, &sc)?;
        let tiles = data_ext(&to, &tc)?;
        if extent > cx.max {
            return Ok(Verdict::Reject("larger than the maximum size"));
        }
        if strips == Some(false) || tiles == Some(false) {
            bad += 1;
        }
        let mut jpeg = false;
        if let (Some(a), Some(l)) = (jo, jl)
            && let Some(e) = a.checked_add(l)
            && a >= hlen
            && l > 0
        {
            if e > cx.max {
                return Ok(Verdict::Reject("larger than the maximum size"));
            }
            extent = extent.max(e);
            jpeg = true;
        }
        if w && hgt && (strips == Some(true) || tiles == Some(true) || jpeg) {
            image = true;
        }
    }
    if bad * 4 > total.max(1) {
        return Ok(Verdict::Reject("too many bad IFD entries"));
    }
    if !image {
        return Ok(Verdict::Reject("no image data referenced"));
    }
    let end = start + extent;
    if extent > cx.max {
        return Ok(Verdict::Reject("larger than the maximum size"));
    }
    if end > src.size() {
        // TIFF structures point anywhere: a reference past the image end
        // is more often a false hit than a truncated file.
        return Ok(Verdict::Reject("references past the end of the image"));
    }
    let note = if bad > 0 {
        format!("{bad} IFD entries out of range or of unknown type")
    } else {
        String::new()
    };
    Ok(Verdict::valid_note(TIF, extent, note))
}
