//! JPEG: marker segments from SOI to EOI, each checked (frame header,
//! Huffman and quantisation tables, restart interval, scan headers). The
//! entropy-coded data of sequential Huffman scans is decoded (coefficients
//! skipped, not computed) and must yield exactly the number of MCUs the frame
//! declares, with every restart marker in order where the interval says: a
//! file with foreign data spliced in (fragmentation) or cut short fails here
//! even when it ends with an EOI. Progressive, arithmetic-coded and lossless
//! scans are checked at the marker level (restart markers in order).

use super::{Cx, Verdict};
use crate::CarveError;
use crate::kinds::JPG;
use crate::src::Win;

/// Extraneous bytes tolerated between the end of a scan's data and the
/// next marker (some encoders leave a few; libjpeg warns and goes on).
const SLACK: u64 = 16;
const FAST: u32 = 12;

#[derive(Clone)]
pub(crate) struct Huff {
    fast: [u16; 1 << FAST],
    maxcode: [i32; 18],
    valoff: [i32; 17],
    vals: [u8; 256],
}

impl Default for Huff {
    fn default() -> Self {
        Self {
            fast: [0; 1 << FAST],
            maxcode: [-1; 18],
            valoff: [0; 17],
            vals: [0; 256],
        }
    }
}

impl Huff {
    /// Builds the decoding tables; false for an impossible code.
    fn build(&mut self, bits: &[u8], vals: &[u8]) -> bool {
        let total: usize = bits.iter().map(|&b| usize::from(b)).sum();
        if total == 0 || total > 256 || vals.len() < total {
            return false;
        }
        self.fast.fill(0);
        self.maxcode = [-1; 18];
        self.vals[..total].copy_from_slice(&vals[..total]);
        let mut code: i32 = 0;
        let mut k: i32 = 0;
        for l in 1..=16usize {
            let n = i32::from(bits[l - 1]);
            self.valoff[l] = k - code;
            if n > 0 {
                for _ in 0..n {
                    if l as u32 <= FAST {
                        let shift = FAST - l as u32;
                        let base = (code as usize) << shift;
                        let e = ((l as u16) << 8) | u16::from(self.vals[k as usize]);
                        for f in &mut self.fast[base..base + (1 << shift)] {
                            *f = e;
                        }
                    }
                    code += 1;
                    k += 1;
                }
                self.maxcode[l] = code - 1;
            }
            if code > (1 << l) {
                return false;
            }
            code <<= 1;
        }
        self.maxcode[17] = i32::MAX;
        true
    }
}

/// Per-thread decoder state: tables kept between candidates (on the heap:
/// scratch states are cloned on the stacks of nested parallel tasks).
#[derive(Clone, Default)]
pub(crate) struct JpegScratch {
    dc: Box<[Huff; 4]>,
    ac: Box<[Huff; 4]>,
}

// Annex K default tables (Motion-JPEG frames often omit DHT).
const DC_LUM_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_CHR_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUM_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_LUM_VALS: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];
const AC_CHR_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_CHR_VALS: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

#[derive(Clone, Copy, Default)]
struct Comp {
    id: u8,
    h: u8,
    v: u8,
}

#[derive(Default)]
struct Frame {
    /// Sequential Huffman (decodable), progressive, or other.
    sequential_huffman: bool,
    progressive: bool,
    width: u32,
    height: u32,
    comps: Vec<Comp>,
    hmax: u32,
    vmax: u32,
}

/// Why a walk stops: before any scan it is a false hit; after, a broken
/// file of the length walked so far.
enum Stop {
    Reject(&'static str),
    Broken(u64, String),
    /// The window could not grow (image end or maximum size); whether a
    /// frame header had been parsed.
    Long(bool),
}

pub(crate) fn validate(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let mut win = Win::new(cx.src, start, cx.max)?;
    let js = &mut cx.scratch.jpeg;
    let r = walk(&mut win, js, start)?;
    Ok(match r {
        Ok((end, note)) => {
            if note.is_empty() {
                Verdict::valid(JPG, end - start)
            } else {
                Verdict::valid_note(JPG, end - start, note)
            }
        }
        Err(Stop::Reject(why)) => Verdict::Reject(why),
        Err(Stop::Broken(len, why)) => Verdict::broken(JPG, len, why),
        Err(Stop::Long(false)) => Verdict::Reject("header segments run past the end"),
        Err(Stop::Long(true)) => {
            if win.limit() >= cx.src.size() {
                Verdict::broken(
                    JPG,
                    cx.src.size() - start,
                    "truncated by the end of the image before EOI",
                )
            } else {
                Verdict::Reject("no EOI within the maximum size")
            }
        }
    })
}

type WalkResult = Result<(u64, String), Stop>;

#[allow(clippy::collapsible_match)] // guards would fall through to other arms
fn walk(win: &mut Win, js: &mut JpegScratch, start: u64) -> Result<WalkResult, CarveError> {
    let mut framed = false;
    macro_rules! byte {
        ($at:expr) => {
            match win.byte($at)? {
                Some(b) => b,
                None => return Ok(Err(Stop::Long(framed))),
            }
        };
    }
    if byte!(start) != 0xFF || byte!(start + 1) != 0xD8 {
        return Ok(Err(Stop::Reject("no SOI")));
    }
    let mut pos = start + 2;
    let mut frame: Option<Frame> = None;
    let mut dc_set = [false; 4];
    let mut ac_set = [false; 4];
    let mut restart = 0u32;
    let mut scans = 0u32;
    let mut notes: Vec<String> = Vec::new();
    let fail = |scans: u32, pos: u64, why: &str| -> Stop {
        if scans == 0 {
            Stop::Reject("bad marker segment before the first scan")
        } else {
            Stop::Broken(
                pos - start,
                format!("marker structure broken at +{}: {why}", pos - start),
            )
        }
    };
    for _ in 0..1_000_000u32 {
        if byte!(pos) != 0xFF {
            return Ok(Err(fail(scans, pos, "marker expected")));
        }
        // Fill bytes.
        let mut m = byte!(pos + 1);
        let mut fills = 0;
        while m == 0xFF {
            pos += 1;
            fills += 1;
            if fills > 64 {
                return Ok(Err(fail(scans, pos, "run of fill bytes")));
            }
            m = byte!(pos + 1);
        }
        match m {
            0xD9 => {
                if frame.is_none() || scans == 0 {
                    return Ok(Err(Stop::Reject("EOI before any scan")));
                }
                return Ok(Ok((pos + 2, notes.join("; "))));
            }
            0x01 => {
                pos += 2;
                continue;
            }
            0x00 | 0xD0..=0xD8 | 0x02..=0xBF => {
                return Ok(Err(fail(scans, pos, "unexpected marker")));
            }
            _ => {}
        }
        let len = (u64::from(byte!(pos + 2)) << 8) | u64::from(byte!(pos + 3));
        if len < 2 {
            return Ok(Err(fail(scans, pos, "segment length below 2")));
        }
        let seg_end = pos + 2 + len;
        let Some(seg) = win.slice(pos + 4, len - 2)? else {
            return Ok(Err(Stop::Long(framed)));
        };
        match m {
            0xC0..=0xCF if !matches!(m, 0xC4 | 0xC8 | 0xCC) => {
                if frame.is_some() {
                    return Ok(Err(fail(scans, pos, "second frame header")));
                }
                match parse_sof(m, seg) {
                    Some(f) => {
                        frame = Some(f);
                        framed = true;
                    }
                    None => return Ok(Err(fail(scans, pos, "bad frame header"))),
                }
            }
            0xC4 => {
                if !parse_dht(seg, js, &mut dc_set, &mut ac_set) {
                    return Ok(Err(fail(scans, pos, "bad Huffman table")));
                }
            }
            0xDB => {
                if !dqt_ok(seg) {
                    return Ok(Err(fail(scans, pos, "bad quantisation table")));
                }
            }
            0xDD => {
                if seg.len() != 2 {
                    return Ok(Err(fail(scans, pos, "bad restart interval")));
                }
                restart = u32::from(u16::from_be_bytes([seg[0], seg[1]]));
            }
            0xDA => {
                let Some(f) = frame.as_ref() else {
                    return Ok(Err(fail(scans, pos, "scan before the frame header")));
                };
                let Some(scan) = parse_sos(seg, f) else {
                    return Ok(Err(fail(scans, pos, "bad scan header")));
                };
                let data = seg_end;
                // Where the entropy-coded data ends.
                let (mpos, rst_ok) = match scan_end(win, data)? {
                    Some(x) => x,
                    None => return Ok(Err(Stop::Long(framed))),
                };
                if !rst_ok {
                    return Ok(Err(Stop::Broken(
                        mpos - start,
                        format!(
                            "restart markers out of order in the scan at +{} (fragmented?)",
                            data - start
                        ),
                    )));
                }
                if f.sequential_huffman && f.height > 0 {
                    // Default tables for those a Motion-JPEG frame omits.
                    for &(ci, td, ta) in &scan.comps {
                        let _ = ci;
                        if !dc_set[td] {
                            js.dc[td]
                                .build(if td == 0 { &DC_LUM_BITS } else { &DC_CHR_BITS }, &DC_VALS);
                            dc_set[td] = true;
                        }
                        if !ac_set[ta] {
                            let (b, v): (&[u8], &[u8]) = if ta == 0 {
                                (&AC_LUM_BITS, &AC_LUM_VALS)
                            } else {
                                (&AC_CHR_BITS, &AC_CHR_VALS)
                            };
                            js.ac[ta].build(b, v);
                            ac_set[ta] = true;
                        }
                    }
                    let Some(bytes) = win.slice(data, mpos - data)? else {
                        return Ok(Err(Stop::Long(framed)));
                    };
                    match decode_scan(bytes, f, &scan, js, restart) {
                        Ok(extra) => {
                            if extra > 0 {
                                notes.push(format!(
                                    "{extra} extraneous byte(s) after the scan data at +{}",
                                    data - start
                                ));
                            }
                        }
                        Err(why) => {
                            return Ok(Err(Stop::Broken(
                                mpos - start,
                                format!(
                                    "entropy-coded data of the scan at +{} does not decode: {why} (fragmented or corrupt)",
                                    data - start
                                ),
                            )));
                        }
                    }
                } else if scans == 0 {
                    notes.push(if f.progressive {
                        "progressive: marker structure checked, scan data not decoded".into()
                    } else {
                        "arithmetic-coded, lossless or DNL-sized: marker structure checked, scan data not decoded".into()
                    });
                }
                scans += 1;
                pos = mpos;
                continue;
            }
            _ => {} // APPn, COM, DNL, DAC, DHP, EXP, JPGn: skipped
        }
        pos = seg_end;
    }
    Ok(Err(Stop::Reject("too many segments")))
}

fn parse_sof(m: u8, s: &[u8]) -> Option<Frame> {
    if s.len() < 6 {
        return None;
    }
    let p = s[0];
    let height = u32::from(u16::from_be_bytes([s[1], s[2]]));
    let width = u32::from(u16::from_be_bytes([s[3], s[4]]));
    let n = usize::from(s[5]);
    if !(1..=4).contains(&n) || s.len() != 6 + 3 * n || width == 0 {
        return None;
    }
    if !matches!(p, 2..=16) {
        return None;
    }
    let mut comps = Vec::with_capacity(n);
    let (mut hmax, mut vmax) = (1u32, 1u32);
    for i in 0..n {
        let c = &s[6 + 3 * i..9 + 3 * i];
        let (h, v, tq) = (c[1] >> 4, c[1] & 15, c[2]);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
            return None;
        }
        hmax = hmax.max(u32::from(h));
        vmax = vmax.max(u32::from(v));
        comps.push(Comp { id: c[0], h, v });
    }
    let sequential_huffman = matches!(m, 0xC0 | 0xC1) && matches!(p, 8 | 12);
    Some(Frame {
        sequential_huffman,
        progressive: matches!(m, 0xC2 | 0xC6 | 0xCA | 0xCE),
        width,
        height,
        comps,
        hmax,
        vmax,
    })
}

fn parse_dht(mut s: &[u8], js: &mut JpegScratch, dc: &mut [bool; 4], ac: &mut [bool; 4]) -> bool {
    if s.is_empty() {
        return false;
    }
    while !s.is_empty() {
        if s.len() < 17 {
            return false;
        }
        let (tc, th) = (s[0] >> 4, usize::from(s[0] & 15));
        if tc > 1 || th > 3 {
            return false;
        }
        let bits: [u8; 16] = match s[1..17].try_into() {
            Ok(b) => b,
            Err(_) => return false,
        };
        let n: usize = bits.iter().map(|&b| usize::from(b)).sum();
        if s.len() < 17 + n {
            return false;
        }
        let vals = &s[17..17 + n];
        if tc == 0 && vals.iter().any(|&v| v > 16) {
            return false;
        }
        let ok = if tc == 0 {
            dc[th] = true;
            js.dc[th].build(&bits, vals)
        } else {
            ac[th] = true;
            js.ac[th].build(&bits, vals)
        };
        if !ok {
            return false;
        }
        s = &s[17 + n..];
    }
    true
}

fn dqt_ok(mut s: &[u8]) -> bool {
    if s.is_empty() {
        return false;
    }
    while !s.is_empty() {
        let (pq, tq) = (s[0] >> 4, s[0] & 15);
        let n = if pq == 0 { 64 } else { 128 };
        if pq > 1 || tq > 3 || s.len() < 1 + n {
            return false;
        }
        s = &s[1 + n..];
    }
    true
}

struct Scan {
    /// (frame component index, DC table, AC table)
    comps: Vec<(usize, usize, usize)>,
    ss: u8,
    se: u8,
}

fn parse_sos(s: &[u8], f: &Frame) -> Option<Scan> {
    let n = usize::from(*s.first()?);
    if !(1..=4).contains(&n) || s.len() != 4 + 2 * n {
        return None;
    }
    let mut comps = Vec::with_capacity(n);
    for i in 0..n {
        let (cid, t) = (s[1 + 2 * i], s[2 + 2 * i]);
        let ci = f.comps.iter().position(|c| c.id == cid)?;
        let (td, ta) = (usize::from(t >> 4), usize::from(t & 15));
        if td > 3 || ta > 3 || comps.iter().any(|&(c, _, _)| c == ci) {
            return None;
        }
        comps.push((ci, td, ta));
    }
    let (ss, se, a) = (s[1 + 2 * n], s[2 + 2 * n], s[3 + 2 * n]);
    if se > 63 || ss > se || (a >> 4) > 13 || (a & 15) > 13 {
        return None;
    }
    if f.sequential_huffman && (ss != 0 || se != 63 || a != 0) {
        return None;
    }
    Some(Scan { comps, ss, se })
}

/// Finds the marker ending the entropy-coded data that starts at `from`:
/// (its position, whether restart markers came in order).
fn scan_end(win: &mut Win, from: u64) -> Result<Option<(u64, bool)>, CarveError> {
    let mut p = from;
    let mut expect = 0u8;
    let mut ok = true;
    loop {
        if p + 1 >= win.end() && !win.ensure(p + 2 + (1 << 20))? && p + 1 >= win.end() {
            return Ok(None);
        }
        let base = win.start();
        let bytes = win.bytes();
        let i = (p - base) as usize;
        let Some(k) = memchr::memchr(0xFF, &bytes[i..]) else {
            p = win.end();
            if !win.ensure(p + (1 << 20))? && p >= win.end() {
                return Ok(None);
            }
            continue;
        };
        let q = p + k as u64;
        let Some(n) = win.byte(q + 1)? else {
            return Ok(None);
        };
        match n {
            0x00 => p = q + 2,
            0xFF => p = q + 1,
            0xD0..=0xD7 => {
                if n - 0xD0 != expect & 7 {
                    ok = false;
                }
                expect = expect.wrapping_add(1);
                p = q + 2;
            }
            _ => return Ok(Some((q, ok))),
        }
    }
}

struct Bits<'d> {
    d: &'d [u8],
    pos: usize,
    acc: u64,
    bits: u32,
    /// Zero bits appended past a marker or the data end.
    fake: u32,
    at_marker: bool,
}

impl<'d> Bits<'d> {
    fn new(d: &'d [u8], pos: usize) -> Self {
        Self {
            d,
            pos,
            acc: 0,
            bits: 0,
            fake: 0,
            at_marker: false,
        }
    }

    #[inline]
    #[allow(clippy::collapsible_match)] // a guard would fall through to the data arm
    fn fill(&mut self) {
        // Fast path: the next 8 bytes hold no 0xFF (no stuffing, no marker):
        // as many whole bytes as fit, at once.
        if !self.at_marker
            && let Some(b8) = self.d.get(self.pos..self.pos + 8)
        {
            let w = u64::from_be_bytes(b8.try_into().unwrap_or([0xFF; 8]));
            let z = !w;
            if z.wrapping_sub(0x0101_0101_0101_0101) & !z & 0x8080_8080_8080_8080 == 0 {
                let take = (64 - self.bits) / 8;
                if take > 0 {
                    let used = self.bits + take * 8;
                    let mut add = w >> self.bits;
                    if used < 64 {
                        add &= !((1u64 << (64 - used)) - 1);
                    }
                    self.acc |= add;
                    self.bits = used;
                    self.pos += take as usize;
                }
                return;
            }
        }
        while self.bits <= 56 {
            let b = if self.at_marker {
                self.fake += 8;
                0
            } else {
                match self.d.get(self.pos) {
                    Some(&0xFF) => {
                        if self.d.get(self.pos + 1) == Some(&0) {
                            self.pos += 2;
                            0xFF
                        } else {
                            self.at_marker = true;
                            self.fake += 8;
                            0
                        }
                    }
                    Some(&b) => {
                        self.pos += 1;
                        b
                    }
                    None => {
                        self.at_marker = true;
                        self.fake += 8;
                        0
                    }
                }
            };
            self.acc |= u64::from(b) << (56 - self.bits);
            self.bits += 8;
        }
    }

    #[inline]
    fn skip(&mut self, n: u32) {
        if self.bits < n {
            self.fill();
        }
        self.acc <<= n;
        self.bits -= n;
    }

    #[inline]
    fn decode(&mut self, h: &Huff) -> Option<u8> {
        if self.bits < 16 {
            self.fill();
        }
        let f = h.fast[(self.acc >> (64 - FAST)) as usize];
        if f != 0 {
            let l = u32::from(f >> 8);
            self.acc <<= l;
            self.bits -= l;
            return Some(f as u8);
        }
        let code16 = (self.acc >> 48) as i32;
        for l in (FAST as usize + 1)..=16 {
            let code = code16 >> (16 - l);
            if code <= h.maxcode[l] {
                self.acc <<= l;
                self.bits -= l as u32;
                return h.vals.get((code + h.valoff[l]) as usize).copied();
            }
        }
        None
    }

    /// Real (not appended) bits still buffered, or `None` when appended
    /// bits were consumed (the data ran out).
    fn real_left(&self) -> Option<u32> {
        self.bits.checked_sub(self.fake)
    }

    /// Whole bytes of real data after the current bit position up to the
    /// next marker, or `None` when the data ran out.
    fn bytes_before_marker(&mut self) -> Option<u64> {
        self.fill();
        let left = u64::from(self.real_left()?) / 8;
        if self.at_marker {
            return Some(left);
        }
        // Still not at the marker after a full refill: more than 7 bytes
        // remain; count them up to the next marker.
        let rest = self.d[self.pos..]
            .windows(2)
            .position(|w| w[0] == 0xFF && w[1] != 0)
            .unwrap_or(self.d.len() - self.pos) as u64;
        Some(left + rest)
    }
}

fn decode_block(b: &mut Bits, dc: &Huff, ac: &Huff) -> Result<(), &'static str> {
    let s = b.decode(dc).ok_or("invalid DC code")?;
    if s > 16 {
        return Err("DC magnitude out of range");
    }
    b.skip(u32::from(s));
    let mut k = 1u32;
    while k < 64 {
        // Fast path: a short code and its magnitude bits consumed at once
        // (only their count matters here, not the coefficient's value).
        if b.bits < 32 {
            b.fill();
        }
        let f = ac.fast[(b.acc >> (64 - FAST)) as usize];
        if f != 0 {
            let (r, s) = (u32::from((f as u8) >> 4), u32::from(f & 15));
            let n = u32::from(f >> 8) + s;
            b.acc <<= n;
            b.bits -= n;
            if s == 0 {
                if r == 15 {
                    k += 16;
                    continue;
                }
                break;
            }
            k += r + 1;
            continue;
        }
        let rs = b.decode(ac).ok_or("invalid AC code")?;
        let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
        if s == 0 {
            if r == 15 {
                k += 16;
                continue;
            }
            break;
        }
        k += r;
        b.skip(s);
        k += 1;
    }
    if k > 64 {
        return Err("coefficient index past 63");
    }
    Ok(())
}

/// Decodes a sequential Huffman scan: returns the count of extraneous bytes
/// between the last MCU and the marker, or why it fails.
fn decode_scan(
    data: &[u8],
    f: &Frame,
    scan: &Scan,
    js: &JpegScratch,
    restart: u32,
) -> Result<u64, &'static str> {
    let _ = (scan.ss, scan.se);
    // Blocks per MCU and MCU count.
    let (mcus, layout): (u64, Vec<(usize, u32)>) = if scan.comps.len() == 1 {
        let (ci, _, _) = scan.comps[0];
        let c = f.comps[ci];
        let w = (f.width * u32::from(c.h)).div_ceil(f.hmax).div_ceil(8);
        let h = (f.height * u32::from(c.v)).div_ceil(f.vmax).div_ceil(8);
        (u64::from(w) * u64::from(h), vec![(0, 1)])
    } else {
        let mx = f.width.div_ceil(8 * f.hmax);
        let my = f.height.div_ceil(8 * f.vmax);
        let l = scan
            .comps
            .iter()
            .enumerate()
            .map(|(i, &(ci, _, _))| {
                let c = f.comps[ci];
                (i, u32::from(c.h) * u32::from(c.v))
            })
            .collect();
        (u64::from(mx) * u64::from(my), l)
    };
    // A scan of n MCUs needs at least n bits per block.
    let per_mcu: u64 = layout.iter().map(|&(_, n)| u64::from(n)).sum();
    if (data.len() as u64).saturating_mul(8) < mcus.saturating_mul(per_mcu).saturating_mul(2) / 2 {
        return Err("too little data for the frame size");
    }
    let tables: Vec<(&Huff, &Huff, u32)> = layout
        .iter()
        .map(|&(i, n)| {
            let (_, td, ta) = scan.comps[i];
            (&js.dc[td], &js.ac[ta], n)
        })
        .collect();
    let mut b = Bits::new(data, 0);
    let mut done = 0u64;
    let mut rst = 0u8;
    while done < mcus {
        for &(dc, ac, n) in &tables {
            for _ in 0..n {
                decode_block(&mut b, dc, ac)?;
            }
        }
        done += 1;
        if b.real_left().is_none() {
            return Err("data ends before the last MCU");
        }
        if restart > 0 && done.is_multiple_of(u64::from(restart)) && done < mcus {
            // Must be exactly at a restart marker now.
            if b.bytes_before_marker() != Some(0) || !b.at_marker {
                return Err("restart marker not where the interval says");
            }
            let p = b.pos;
            let m = data.get(p + 1).copied().unwrap_or(0);
            if data.get(p) != Some(&0xFF) || m != 0xD0 + (rst & 7) {
                return Err("wrong restart marker");
            }
            rst = rst.wrapping_add(1);
            b = Bits::new(data, p + 2);
        }
    }
    let n = b
        .bytes_before_marker()
        .filter(|&n| n <= SLACK)
        .ok_or("data continues past the last MCU")?;
    // Tolerated leftovers are padding (zeros or fill), not more data.
    let tail = &data[data.len().saturating_sub(n as usize)..];
    if !tail.iter().all(|&x| x == 0 || x == 0xFF) {
        return Err("data continues past the last MCU");
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::Bits;

    /// The entropy-coded bits of `d` from 0 up to the first marker (stuffed
    /// 0xFF 0x00 read as 0xFF), then zeros.
    fn reference_bits(d: &[u8]) -> Vec<bool> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < d.len() {
            let b = d[i];
            if b == 0xFF {
                if d.get(i + 1) != Some(&0) {
                    break;
                }
                i += 1;
            }
            for k in (0..8).rev() {
                out.push(b >> k & 1 == 1);
            }
            i += 1;
        }
        out
    }

    #[test]
    fn bit_reader_matches_a_bytewise_reference() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..300 {
            let len = (next() % 200) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Stuffing, and a marker now and then.
            for i in 0..d.len() {
                if d[i] == 0xFF && i + 1 < d.len() {
                    d[i + 1] = if round % 5 == 0 && next() % 20 == 0 {
                        0xD9
                    } else {
                        0
                    };
                }
            }
            let want = reference_bits(&d);
            let mut b = Bits::new(&d, 0);
            let mut at = 0usize;
            while at < want.len() + 40 {
                let n = 1 + (next() % 16) as u32;
                if b.bits < n {
                    b.fill();
                }
                let got = b.acc >> (64 - n);
                let mut expect = 0u64;
                for k in 0..n as usize {
                    expect = expect << 1 | u64::from(want.get(at + k).copied().unwrap_or(false));
                }
                assert_eq!(got, expect, "round {round}, bit {at}, {n} bits of {d:02x?}");
                b.skip(n);
                at += n as usize;
            }
        }
    }
}
