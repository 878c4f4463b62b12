//! RAR 1.5-4.x volumes and members (bulk_extractor's `scan_rar`).
//!
//! Two kinds of `rar.txt` lines (tab-separated), as bulk_extractor writes
//! them:
//!
//! * a volume: the marker block `Rar!\x1a\x07\x00` followed by a valid
//!   archive header (type 0x73, flags without 0xFE00, header size 13..=1024,
//!   header CRC); at the marker, feature `<volume>`:
//!
//!   ```text
//!   0  <volume>  <rar_volume><encrypted>false</encrypted></rar_volume>
//!   ```
//!
//! * a member ("component"): a file header (type 0x74) with flag 0x8000
//!   set, 0x6000 clear, not split (0x0001, 0x0002) and not encrypted
//!   (0x0004), header size 32..=1024, name size at most 1024, packed and
//!   unpacked sizes non-zero, at most 10 TiB and `packed * 0.95 <=
//!   unpacked`, a name (for flag 0x0200 the part after a NUL, valid UTF-8)
//!   and a matching header CRC (low 16 bits of CRC-32 over the header from
//!   its type byte); at the header, the member's name as the feature and an
//!   XML summary as the context:
//!
//!   ```text
//!   20  jpegs\1.jpg  <rar_component><name>jpegs\1.jpg</name><flags>0x8020</flags><version>29</version><compression_method>normal</compression_method><uncompr_size>7323</uncompr_size><compr_size>4277</compr_size><file_attr>0x80</file_attr><lastmoddate>2014-07-18T12:27:16Z</lastmoddate><host_os>Windows</host_os><crc32>0xD8099FFB</crc32></rar_component>
//!   ```
//!
//! The header fields are read as bulk_extractor reads them: 32-bit fields
//! through a signed `int` (so a size with its top bit set fails the 10 TiB
//! test), the name in the XML printed up to its first NUL and the XML cut
//! to 2047 bytes (its `snprintf` buffer), the name not XML-escaped.
//!
//! RAR5 (`Rar!\x1a\x07\x01\x00`) is not recognised, as in bulk_extractor.
//!
//! Deviations: bulk_extractor links unrar, decompresses every member that
//! is not stored (method 0x30), re-scans the decompressed bytes under the
//! forensic path `N-RAR-0` and carves them through its `unrar_carved`
//! recorder; trawl does not decompress RAR's own algorithms, so it reports
//! the members only (and no `unrar_carved` lines or features found inside
//! them). For a volume whose headers are encrypted bulk_extractor also
//! carves the encrypted archive (a second `rar.txt` line naming the carved
//! file); trawl writes only the `<volume>` line. A name must lie in the
//! bytes a scanner may read (bulk_extractor reads it wherever it is).

use super::records::{Record, window};
use std::ops::Range;

const MARK: &[u8; 7] = b"Rar!\x1a\x07\x00";
const FILE_MIN: usize = 32;
const ARCHIVE_MIN: usize = 13;
const MAX_HEADER: usize = 1024;
const MAX_FILE: u64 = 10 * 1024 * 1024 * 1024 * 1024;

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// A 32-bit field read through a signed `int`, widened to 64 bits as
/// bulk_extractor's `(uint64_t) int4(...)` does.
fn int4_u64(b: &[u8], at: usize) -> Option<u64> {
    let v = u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]);
    Some(v as i32 as i64 as u64)
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Whether the header CRC (first two bytes) matches the header of `len`
/// bytes in `b`.
fn crc_ok(b: &[u8], len: usize) -> bool {
    let (Some(stored), Some(body)) = (u16le(b, 0), b.get(2..len)) else {
        return false;
    };
    let mut c = flate2::Crc::new();
    c.update(body);
    (c.sum() & 0xffff) as u16 == stored
}

/// The archive header at the start of `b` (after the marker): whether its
/// headers are encrypted, or `None` when bulk_extractor would not accept it.
/// `b` reaches the end of the scanned data.
fn volume(b: &[u8]) -> Option<bool> {
    if b.len() < ARCHIVE_MIN || b[2] != 0x73 {
        return None;
    }
    let flags = u16le(b, 3)?;
    if flags & 0xFE00 != 0 {
        return None;
    }
    let len = usize::from(u16le(b, 5)?);
    if !(ARCHIVE_MIN..=MAX_HEADER).contains(&len) || len >= b.len() || !crc_ok(b, len) {
        return None;
    }
    Some(flags & 0x0080 != 0)
}

/// A member's header fields.
#[derive(Debug)]
struct Member {
    name: Vec<u8>,
    flags: u16,
    version: u8,
    method: u8,
    unpacked: u64,
    packed: u64,
    attr: u32,
    dos_time: u32,
    host_os: u8,
    crc: u32,
}

/// The file header at the start of `b`; `b` reaches the end of the scanned
/// data.
fn member(b: &[u8]) -> Option<Member> {
    if b.len() < FILE_MIN || b[2] != 0x74 {
        return None;
    }
    let flags = u16le(b, 3)?;
    if flags & 0x8000 == 0 || flags & 0x6000 != 0 || flags & 0x0007 != 0 {
        return None;
    }
    let len = usize::from(u16le(b, 5)?);
    if !(FILE_MIN..=MAX_HEADER).contains(&len) || len >= b.len() {
        return None;
    }
    let name_len = usize::from(u16le(b, 26)?);
    if name_len > MAX_HEADER {
        return None;
    }
    let big = flags & 0x0100 != 0;
    let mut packed = int4_u64(b, 7)?;
    let mut unpacked = int4_u64(b, 11)?;
    if big {
        packed = packed.wrapping_add(int4_u64(b, 32)? << 32);
        unpacked = unpacked.wrapping_add(int4_u64(b, 36)? << 32);
    }
    if packed == 0
        || unpacked == 0
        || packed as f64 * 0.95 > unpacked as f64
        || packed > MAX_FILE
        || unpacked > MAX_FILE
    {
        return None;
    }
    let at = if big { 40 } else { 32 };
    let raw = b.get(at..at + name_len)?;
    let name = if flags & 0x0200 != 0 {
        let name = match raw.iter().position(|&c| c == 0) {
            None => raw,
            Some(z) if z + 1 == name_len => return None,
            Some(z) => &raw[z + 1..],
        };
        std::str::from_utf8(name).ok()?;
        name
    } else {
        raw
    };
    if name.is_empty() || !crc_ok(b, len) {
        return None;
    }
    Some(Member {
        name: name.to_vec(),
        flags,
        version: b[24],
        method: b[25],
        unpacked,
        packed,
        attr: u32le(b, 28)?,
        dos_time: u32le(b, 20)?,
        host_os: b[15],
        crc: u32le(b, 16)?,
    })
}

fn dos_date(t: u32) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        (t >> 25) + 1980,
        (t >> 21) & 0xF,
        (t >> 16) & 0x1F,
        (t >> 11) & 0x1F,
        (t >> 5) & 0x3F,
        (t & 0x1F) * 2
    )
}

impl Member {
    fn to_xml(&self) -> Vec<u8> {
        let method = match self.method {
            0x30 => "uncompressed".to_string(),
            0x31 => "fastest".to_string(),
            0x32 => "fast".to_string(),
            0x33 => "normal".to_string(),
            0x34 => "small".to_string(),
            0x35 => "smallest".to_string(),
            m => format!("0x{m:02X}"),
        };
        let os = match self.host_os {
            0 => "DOS".to_string(),
            1 => "OS/2".to_string(),
            2 => "Windows".to_string(),
            3 => "Unix".to_string(),
            4 => "Mac OS".to_string(),
            5 => "BeOS".to_string(),
            o => format!("0x{o:02X}"),
        };
        // `%s` of the name stops at its first NUL.
        let name = match self.name.iter().position(|&c| c == 0) {
            Some(z) => &self.name[..z],
            None => &self.name[..],
        };
        let mut x = b"<rar_component><name>".to_vec();
        x.extend_from_slice(name);
        x.extend_from_slice(
            format!(
                "</name><flags>0x{:04X}</flags><version>{}</version>\
                 <compression_method>{method}</compression_method>\
                 <uncompr_size>{}</uncompr_size><compr_size>{}</compr_size>\
                 <file_attr>0x{:X}</file_attr><lastmoddate>{}</lastmoddate>\
                 <host_os>{os}</host_os><crc32>0x{:08X}</crc32></rar_component>",
                self.flags,
                self.version,
                self.unpacked,
                self.packed,
                self.attr,
                dos_date(self.dos_time),
                self.crc
            )
            .as_bytes(),
        );
        x.truncate(2047);
        x
    }
}

/// The scanner: `rar` records for volumes and members starting in `own`.
pub fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let end = own.end.min(buf.len());
    if own.start >= end {
        return;
    }
    let first = out.len();
    // volumes: at their marker block
    let hay = &buf[own.start..(end + MARK.len() - 1).min(buf.len())];
    for i in memchr::memmem::find_iter(hay, MARK) {
        let pos = own.start + i;
        let (w, at) = window(buf, pos);
        if let Some(enc) = w.get(at + MARK.len()..).and_then(volume) {
            out.push(Record {
                recorder: "rar",
                pos,
                feature: b"<volume>".to_vec(),
                context: format!("<rar_volume><encrypted>{enc}</encrypted></rar_volume>")
                    .into_bytes(),
            });
        }
    }
    // members: the header type byte 0x74 two bytes in
    let lo = own.start + 2;
    let hi = (end + 2).min(buf.len());
    if lo < hi {
        for i in memchr::memchr_iter(0x74, &buf[lo..hi]) {
            let pos = own.start + i;
            // cheap flag test before anything else
            match buf.get(pos + 4) {
                Some(f) if f & 0xE0 == 0x80 => {}
                _ => continue,
            }
            let (w, at) = window(buf, pos);
            if let Some(m) = member(&w[at..]) {
                let context = m.to_xml();
                out.push(Record {
                    recorder: "rar",
                    pos,
                    feature: m.name,
                    context,
                });
            }
        }
    }
    out[first..].sort_by_key(|r| r.pos);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member header with a valid CRC.
    pub(crate) fn file_header(name: &[u8], flags: u16, method: u8, packed: u32) -> Vec<u8> {
        let len = 32 + name.len();
        let mut h = vec![0u8; len];
        h[2] = 0x74;
        h[3..5].copy_from_slice(&flags.to_le_bytes());
        h[5..7].copy_from_slice(&(len as u16).to_le_bytes());
        h[7..11].copy_from_slice(&packed.to_le_bytes());
        h[11..15].copy_from_slice(&(packed + 10).to_le_bytes());
        h[15] = 3;
        h[16..20].copy_from_slice(&0xDEADBEEFu32.to_le_bytes());
        h[20..24].copy_from_slice(&0x42F2_6B63u32.to_le_bytes());
        h[24] = 20;
        h[25] = method;
        h[26..28].copy_from_slice(&(name.len() as u16).to_le_bytes());
        h[28..32].copy_from_slice(&0x81A4u32.to_le_bytes());
        h[32..].copy_from_slice(name);
        let mut c = flate2::Crc::new();
        c.update(&h[2..]);
        h[..2].copy_from_slice(&((c.sum() & 0xffff) as u16).to_le_bytes());
        h
    }

    #[test]
    fn member_line() {
        let mut buf = b"xyz".to_vec();
        buf.extend(file_header(b"dir/a.txt", 0x8000, 0x30, 100));
        buf.extend([0u8; 120]);
        let mut out = Vec::new();
        scan(&buf, 0..buf.len(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].pos, 3);
        assert_eq!(out[0].feature, b"dir/a.txt");
        assert_eq!(
            String::from_utf8_lossy(&out[0].context),
            "<rar_component><name>dir/a.txt</name><flags>0x8000</flags><version>20</version>\
             <compression_method>uncompressed</compression_method><uncompr_size>110</uncompr_size>\
             <compr_size>100</compr_size><file_attr>0x81A4</file_attr>\
             <lastmoddate>2013-07-18T13:27:06Z</lastmoddate><host_os>Unix</host_os>\
             <crc32>0xDEADBEEF</crc32></rar_component>"
        );
    }

    #[test]
    fn member_rejections() {
        let ok = file_header(b"a", 0x8000, 0x33, 5);
        let pad = |mut v: Vec<u8>| {
            v.extend([0u8; 8]);
            v
        };
        assert!(member(&pad(ok.clone())).is_some());
        // no room after the header
        assert!(member(&ok).is_none());
        // encrypted, split, missing 0x8000
        for f in [0x8004, 0x8001, 0x8002, 0x0000, 0xA000] {
            assert!(
                member(&pad(file_header(b"a", f, 0x33, 5))).is_none(),
                "{f:x}"
            );
        }
        // bad CRC
        let mut bad = pad(ok.clone());
        bad[0] ^= 1;
        assert!(member(&bad).is_none());
        // size with the top bit set (signed int) fails
        assert!(member(&pad(file_header(b"a", 0x8000, 0x33, 0x8000_0000))).is_none());
        // unicode flag: the part after the NUL, UTF-8
        let m = member(&pad(file_header(b"ab\0\xc3\xa9", 0x8200, 0x33, 5))).unwrap();
        assert_eq!(m.name, "é".as_bytes());
        assert!(member(&pad(file_header(b"ab\0", 0x8200, 0x33, 5))).is_none());
        assert!(member(&pad(file_header(b"ab\0\xff", 0x8200, 0x33, 5))).is_none());
    }

    #[test]
    fn volume_line() {
        let mut ah = vec![0u8; 13];
        ah[2] = 0x73;
        ah[3] = 0x80;
        ah[5] = 13;
        let mut c = flate2::Crc::new();
        c.update(&ah[2..]);
        let crc = (c.sum() & 0xffff) as u16;
        ah[..2].copy_from_slice(&crc.to_le_bytes());
        let mut buf = vec![9u8; 5];
        buf.extend_from_slice(MARK);
        buf.extend_from_slice(&ah);
        buf.push(0);
        let mut out = Vec::new();
        scan(&buf, 0..buf.len(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].pos, 5);
        assert_eq!(out[0].feature, b"<volume>");
        assert_eq!(
            out[0].context,
            b"<rar_volume><encrypted>true</encrypted></rar_volume>"
        );
        // without the marker: nothing
        let mut out = Vec::new();
        scan(&buf[12..], 0..buf.len() - 12, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn dos_dates() {
        assert_eq!(dos_date(0), "1980-00-00T00:00:00Z");
        assert_eq!(dos_date(0x42F2_6B63), "2013-07-18T13:27:06Z");
    }
}
