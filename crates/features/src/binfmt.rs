//! Helpers shared by the binary-structure scanners (`winpe`, `elf`,
//! `winprefetch`, `utmp`): bounds-checked little/big-endian reads, the
//! feature hash, bulk_extractor's ISO 8601 dates and XML escaping, and a
//! number writer that mimics a C++ `std::stringstream` whose `std::hex`
//! flag, once set, stays set (bulk_extractor's XML relies on it).

use sha1::{Digest, Sha1};
use std::fmt::Write as _;

/// `n` bytes of `d` at `off`, or `None` past the end.
#[inline]
pub(crate) fn bytes<const N: usize>(d: &[u8], off: u64) -> Option<[u8; N]> {
    let o = usize::try_from(off).ok()?;
    let e = o.checked_add(N)?;
    d.get(o..e)?.try_into().ok()
}

#[inline]
pub(crate) fn u8_at(d: &[u8], off: u64) -> Option<u8> {
    bytes::<1>(d, off).map(|b| b[0])
}

#[inline]
pub(crate) fn le16(d: &[u8], off: u64) -> Option<u16> {
    bytes(d, off).map(u16::from_le_bytes)
}

#[inline]
pub(crate) fn le32(d: &[u8], off: u64) -> Option<u32> {
    bytes(d, off).map(u32::from_le_bytes)
}

#[inline]
pub(crate) fn le64(d: &[u8], off: u64) -> Option<u64> {
    bytes(d, off).map(u64::from_le_bytes)
}

/// The byte at `off`, 0 past the end (bulk_extractor's `sbuf[i]`).
#[inline]
pub(crate) fn byte_or0(d: &[u8], off: u64) -> u8 {
    u8_at(d, off).unwrap_or(0)
}

/// Lower-case hex SHA-1 of the first 4096 bytes of `d` (bulk_extractor
/// 2.x's default hasher over `sbuf_t(data, 0, 4096)`).
pub(crate) fn sha1_first_4k(d: &[u8]) -> Vec<u8> {
    let h = Sha1::digest(&d[..d.len().min(4096)]);
    let mut s = String::with_capacity(40);
    for b in h {
        let _ = write!(s, "{b:02x}");
    }
    s.into_bytes()
}

/// `gmtime` + `strftime("%Y-%m-%dT%H:%M:%SZ")` of a Unix time.
pub(crate) fn iso8601(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // days since 1970-01-01 to a civil date (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// bulk_extractor's `microsoftDateToISODate(uint64_t)`: 100 ns ticks since
/// 1601, converted with unsigned arithmetic and then read as a `time_t`.
pub(crate) fn filetime_iso8601(ft: u64) -> String {
    let t = (ft / 10_000_000).wrapping_sub(11_644_473_600) as i64;
    iso8601(t)
}

/// `dfxml_writer::xmlescape`: `<`, `>`, `&`, `'`, `"` as entities, NUL as
/// `%00`.
pub(crate) fn xml_escape(s: &[u8], out: &mut Vec<u8>) {
    for &c in s {
        match c {
            b'>' => out.extend_from_slice(b"&gt;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'\'' => out.extend_from_slice(b"&apos;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            0 => out.extend_from_slice(b"%00"),
            _ => out.push(c),
        }
    }
}

/// A byte string built like a C++ `std::stringstream`: numbers print in
/// decimal until [`Xml::hex`] is called, and in hex from then on.
#[derive(Default)]
pub(crate) struct Xml {
    pub buf: Vec<u8>,
    hex: bool,
}

impl Xml {
    pub fn s(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
    pub fn b(&mut self, s: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(s);
        self
    }
    /// `<< std::hex` (sticky).
    pub fn hex(&mut self) -> &mut Self {
        self.hex = true;
        self
    }
    /// `<< n` for an unsigned value, in the current base.
    pub fn n(&mut self, n: u64) -> &mut Self {
        let s = if self.hex {
            format!("{n:x}")
        } else {
            n.to_string()
        };
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
    /// `<< n` for a signed value (`std::hex` prints its two's complement
    /// bits at the value's width; only used for `int` here).
    pub fn i(&mut self, n: i32) -> &mut Self {
        if self.hex {
            self.n(u64::from(n as u32))
        } else {
            let s = n.to_string();
            self.buf.extend_from_slice(s.as_bytes());
            self
        }
    }
}

/// `decode_flags`: `<NAME>` then `<FLAG />` for every table entry whose
/// bits intersect `flags`, then `</NAME>`.
pub(crate) fn decode_flags(x: &mut Xml, name: &str, table: &[(u32, &str)], flags: u32) {
    x.s("<").s(name).s(">");
    for &(f, n) in table {
        if flags & f != 0 {
            x.s("<").s(n).s(" />");
        }
    }
    x.s("</").s(name).s(">");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_234_567_890), "2009-02-13T23:31:30Z");
        assert_eq!(iso8601(-11_644_473_600), "1601-01-01T00:00:00Z");
        assert_eq!(filetime_iso8601(0), "1601-01-01T00:00:00Z");
        assert_eq!(
            filetime_iso8601(129_000_000_000_000_000),
            "2009-10-14T13:20:00Z"
        );
    }

    #[test]
    fn sticky_hex() {
        let mut x = Xml::default();
        x.n(255).s(" ").hex().n(255).s(" ").n(16).s(" ").i(-1);
        assert_eq!(x.buf, b"255 ff 10 ffffffff");
    }

    #[test]
    fn escaping_and_reads() {
        let mut v = Vec::new();
        xml_escape(b"a<b>&'\"\0", &mut v);
        assert_eq!(v, b"a&lt;b&gt;&amp;&apos;&quot;%00");
        let d = [1u8, 2, 3, 4];
        assert_eq!(le16(&d, 2), Some(0x0403));
        assert_eq!(le32(&d, 1), None);
        assert_eq!(le32(&d, u64::MAX), None);
        assert_eq!(byte_or0(&d, 9), 0);
        assert_eq!(
            sha1_first_4k(b"abc"),
            b"a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
