//! Compressed streams: gzip members, ZIP members (deflate) and zlib
//! streams, found by their signatures and inflated with a size bound.
//!
//! A stream whose compressed bytes run past the buffer is read on through
//! the evidence, so a stream owned by a shard is always inflated whole (up
//! to the bound), whatever the margin.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use flate2::{Decompress, FlushDecompress, Status};
use std::borrow::Cow;
use std::ops::Range;
use trawl_evidence::{Evidence, EvidenceError};

/// Kinds of compressed streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Gzip,
    Zip,
    Zlib,
}

impl StreamKind {
    /// The forensic-path component.
    pub fn tag(self) -> &'static str {
        match self {
            StreamKind::Gzip => "GZIP",
            StreamKind::Zip => "ZIP",
            StreamKind::Zlib => "ZLIB",
        }
    }
}

/// Bytes readable at image (or inner-buffer) offsets: a buffer, and beyond
/// it the evidence when there is one.
pub struct Source<'a> {
    pub buf: &'a [u8],
    /// Offset of `buf[0]`.
    pub base: u64,
    pub evidence: Option<&'a dyn Evidence>,
}

impl Source<'_> {
    /// Up to `len` bytes at `off`.
    fn get(&self, off: u64, len: usize) -> Result<Cow<'_, [u8]>, EvidenceError> {
        if off >= self.base {
            let i = (off - self.base) as usize;
            if i + len <= self.buf.len() {
                return Ok(Cow::Borrowed(&self.buf[i..i + len]));
            }
        }
        let Some(ev) = self.evidence else {
            let i = off.saturating_sub(self.base) as usize;
            let i = i.min(self.buf.len());
            let j = (i + len).min(self.buf.len());
            return Ok(Cow::Borrowed(&self.buf[i..j]));
        };
        let mut v = vec![0u8; len];
        let n = ev.read_at(off, &mut v)?;
        v.truncate(n);
        Ok(Cow::Owned(v))
    }
}

/// The signatures: gzip, ZIP local header, zlib with a 32 KiB window, and
/// a PDF `stream` keyword (after which any zlib header is looked for).
///
/// # Errors
/// Never for these fixed patterns; typed for the caller.
pub fn signatures() -> Result<AhoCorasick, aho_corasick::BuildError> {
    let pats: [&[u8]; 9] = [
        b"\x1f\x8b\x08",
        b"PK\x03\x04",
        b"\x78\x01",
        b"\x78\x5e",
        b"\x78\x9c",
        b"\x78\xda",
        b"stream\r\n",
        b"stream\n",
        b"stream\r",
    ];
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .build(pats)
}

/// A zlib header (RFC 1950: deflate, window up to 32 KiB, no preset
/// dictionary, check bits) at `buf[z..]`.
fn zlib_header_at(buf: &[u8], z: usize) -> bool {
    let (Some(&cmf), Some(&flg)) = (buf.get(z), buf.get(z + 1)) else {
        return false;
    };
    cmf & 0x0f == 8
        && cmf >> 4 <= 7
        && flg & 0x20 == 0
        && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// A stream header found at `at`: its kind and where the compressed data
/// starts.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub kind: StreamKind,
    pub at: u64,
    pub data: u64,
}

/// Stream positions whose signature starts in `buf[own]` (for a PDF
/// `stream` keyword, the position of the zlib header after it).
pub fn candidates(
    ac: &AhoCorasick,
    buf: &[u8],
    own: Range<usize>,
    out: &mut Vec<(usize, StreamKind)>,
) {
    let hi = (own.end + 8).min(buf.len());
    if own.start >= hi {
        return;
    }
    for m in ac.find_iter(&buf[own.start..hi]) {
        let p = own.start + m.start();
        if p >= own.end {
            break;
        }
        let (z, kind) = match m.pattern().as_usize() {
            0 => (p, StreamKind::Gzip),
            1 => (p, StreamKind::Zip),
            2..=5 => (p, StreamKind::Zlib),
            _ => {
                let z = own.start + m.end();
                if !zlib_header_at(buf, z) || buf[z] == 0x78 {
                    // none, or found by its own signature
                    continue;
                }
                (z, StreamKind::Zlib)
            }
        };
        out.push((z, kind));
    }
}

/// Whether the first bytes of a deflate stream can start a valid block.
fn deflate_start_ok(d: &[u8]) -> bool {
    let Some(&b0) = d.first() else { return false };
    match (b0 >> 1) & 3 {
        3 => false,
        0 => {
            // stored: LEN and NLEN (after the byte-aligned header) complement
            d.len() >= 5 && d[1] == !d[3] && d[2] == !d[4]
        }
        _ => true,
    }
}

/// Parses the header of a stream of `kind` at `at`.
///
/// # Errors
/// Evidence read errors.
pub fn header(
    src: &Source<'_>,
    kind: StreamKind,
    at: u64,
) -> Result<Option<Header>, EvidenceError> {
    match kind {
        StreamKind::Zlib => {
            let h = src.get(at, 7)?;
            if h.len() < 7 || !deflate_start_ok(&h[2..]) {
                return Ok(None);
            }
            Ok(Some(Header {
                kind,
                at,
                data: at + 2,
            }))
        }
        StreamKind::Gzip => {
            let h = src.get(at, 10)?;
            if h.len() < 10 || h[3] & 0xe0 != 0 {
                return Ok(None);
            }
            let flags = h[3];
            let mut p = at + 10;
            if flags & 4 != 0 {
                let x = src.get(p, 2)?;
                if x.len() < 2 {
                    return Ok(None);
                }
                p += 2 + u64::from(u16::from_le_bytes([x[0], x[1]]));
            }
            for (bit, max) in [(8u8, 1024usize), (16, 4096)] {
                if flags & bit != 0 {
                    let s = src.get(p, max)?;
                    let Some(z) = s.iter().position(|&b| b == 0) else {
                        return Ok(None);
                    };
                    p += z as u64 + 1;
                }
            }
            if flags & 2 != 0 {
                p += 2;
            }
            let d = src.get(p, 5)?;
            if !deflate_start_ok(&d) {
                return Ok(None);
            }
            Ok(Some(Header { kind, at, data: p }))
        }
        StreamKind::Zip => {
            let h = src.get(at, 30)?;
            if h.len() < 30 {
                return Ok(None);
            }
            let u16at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
            let (flags, method, nlen, xlen) = (u16at(6), u16at(8), u16at(26), u16at(28));
            if method != 8 || flags & 1 != 0 || nlen == 0 || nlen > 1024 {
                return Ok(None);
            }
            let name = src.get(at + 30, usize::from(nlen))?;
            if name.len() != usize::from(nlen)
                || std::str::from_utf8(&name).is_err()
                || name.iter().any(|&b| b < 0x20)
            {
                return Ok(None);
            }
            let data = at + 30 + u64::from(nlen) + u64::from(xlen);
            let d = src.get(data, 5)?;
            if !deflate_start_ok(&d) {
                return Ok(None);
            }
            Ok(Some(Header { kind, at, data }))
        }
    }
}

/// What inflating a stream gave.
#[derive(Debug, Default)]
pub struct Inflated {
    pub data: Vec<u8>,
    /// The stream ended properly (and, for zlib, its Adler-32 matched).
    pub complete: bool,
    /// Output stopped at the size bound.
    pub truncated: bool,
}

/// Inflates the stream of `h`, at most `limit` bytes of output.
///
/// # Errors
/// Evidence read errors.
pub fn inflate(
    src: &Source<'_>,
    h: &Header,
    limit: usize,
    raw: &mut Decompress,
    zlib: &mut Decompress,
) -> Result<Inflated, EvidenceError> {
    let dec = if h.kind == StreamKind::Zlib {
        zlib.reset(true);
        zlib
    } else {
        raw.reset(false);
        raw
    };
    let mut res = Inflated::default();
    let mut out: Vec<u8> = Vec::new();
    let mut pos = if h.kind == StreamKind::Zlib {
        h.at
    } else {
        h.data
    };
    let max_in = limit as u64 + (1 << 20) + 64;
    let start_in = pos;
    let mut scratch = Vec::new();
    'feed: while pos - start_in < max_in {
        // the next input: from the buffer, or read through the evidence
        let input: &[u8] = if pos >= src.base && ((pos - src.base) as usize) < src.buf.len() {
            &src.buf[(pos - src.base) as usize..]
        } else if let Some(ev) = src.evidence {
            scratch.resize(1 << 18, 0);
            let n = ev.read_at(pos, &mut scratch)?;
            if n == 0 {
                break;
            }
            &scratch[..n]
        } else {
            break;
        };
        let mut used = 0usize;
        loop {
            if out.len() >= limit {
                res.truncated = true;
                break 'feed;
            }
            out.reserve((limit - out.len()).min(256 << 10));
            let (i0, o0) = (dec.total_in(), dec.total_out());
            let r = dec.decompress_vec(&input[used..], &mut out, FlushDecompress::None);
            used += (dec.total_in() - i0) as usize;
            match r {
                Ok(Status::StreamEnd) => {
                    res.complete = true;
                    break 'feed;
                }
                Ok(_) => {}
                Err(_) => break 'feed,
            }
            let progress = dec.total_in() != i0 || dec.total_out() != o0;
            if used >= input.len() || !progress {
                break;
            }
        }
        if used == 0 {
            break;
        }
        pos += used as u64;
    }
    if out.len() > limit {
        out.truncate(limit);
        res.truncated = true;
    }
    res.data = out;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn run(buf: &[u8], limit: usize) -> Vec<(StreamKind, Inflated)> {
        let ac = signatures().unwrap();
        let mut c = Vec::new();
        candidates(&ac, buf, 0..buf.len(), &mut c);
        let src = Source {
            buf,
            base: 0,
            evidence: None,
        };
        let (mut raw, mut z) = (Decompress::new(false), Decompress::new(true));
        let mut v = Vec::new();
        for (p, k) in c {
            if let Some(h) = header(&src, k, p as u64).unwrap() {
                let r = inflate(&src, &h, limit, &mut raw, &mut z).unwrap();
                if !r.data.is_empty() && (k != StreamKind::Zlib || r.complete || r.truncated) {
                    v.push((k, r));
                }
            }
        }
        v
    }

    #[test]
    fn gzip_zlib_zip() {
        let text = b"hello bob@example.com, this is a test of the inflater".repeat(20);
        let mut img = b"junk".to_vec();
        img.extend(gz(&text));
        let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
        z.write_all(&text).unwrap();
        img.extend(z.finish().unwrap());
        // a ZIP local header with a deflated member
        let mut d = DeflateEncoder::new(Vec::new(), Compression::fast());
        d.write_all(&text).unwrap();
        let comp = d.finish().unwrap();
        let mut zh = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
        zh.extend([0u8; 8]);
        zh.extend((comp.len() as u32).to_le_bytes());
        zh.extend((text.len() as u32).to_le_bytes());
        zh.extend(5u16.to_le_bytes());
        zh.extend(0u16.to_le_bytes());
        zh.extend(b"a.txt");
        img.extend(zh);
        img.extend(comp);
        let got = run(&img, 1 << 20);
        let kinds: Vec<StreamKind> = got.iter().map(|g| g.0).collect();
        assert_eq!(kinds, [StreamKind::Gzip, StreamKind::Zlib, StreamKind::Zip]);
        for (_, r) in &got {
            assert_eq!(r.data, text);
            assert!(r.complete);
        }
        // bound
        let got = run(&gz(&vec![b'a'; 1 << 20]), 1000);
        assert_eq!(got[0].1.data.len(), 1000);
        assert!(got[0].1.truncated);
    }

    #[test]
    fn noise_is_not_a_stream() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut buf = vec![0u8; 1 << 20];
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        for (k, r) in run(&buf, 1 << 20) {
            assert_ne!(
                k,
                StreamKind::Zlib,
                "random zlib stream {} bytes",
                r.data.len()
            );
        }
    }
}
