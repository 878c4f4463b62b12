//! `winprefetch`: Windows prefetch files (bulk_extractor's
//! `scan_winprefetch`), written to `winprefetch.txt`.
//!
//! bulk_extractor recognises the uncompressed `SCCA` header of format
//! version 17 (`0x11`, Windows XP/2003) and 23 (`0x17`, Vista/7): the
//! version as a 32-bit little-endian value, then `SCCA`. Versions 26
//! (Windows 8) and 30 (Windows 10, also MAM-compressed) are not recognised
//! by bulk_extractor and not here either.
//!
//! Every such header is reported, even when later checks fail: fields are
//! read in order (version, file length, executable name, section A offset
//! = header size, which must be 0x98 / 0xf0, run time and count, section C
//! file names, section D volume and directories) and the record keeps what
//! was read before the first check that fails or the first read past the
//! data.
//!
//! * feature: the executable name (UTF-16LE at 0x10, as UTF-8;
//!   `UNKNOWN_FILENAME` if empty);
//! * context: `<prefetch><os>Windows XP</os><filename>RUNDLL32.EXE
//!   </filename><header_size>152</header_size><atime>2010-..Z</atime>
//!   <runs>3</runs><filenames><file>\DEVICE\..</file>...</filenames>
//!   <volume><path>\DEVICE\HARDDISKVOLUME1</path><creation>..Z</creation>
//!   <serial_number>hex</serial_number><dirnames><dir>..</dir>...
//!   </dirnames></volume></prefetch>`, text XML-escaped as bulk_extractor's
//!   `dfxml_writer::xmlescape`.
//!
//! As in bulk_extractor, a name that is not valid UTF-16 becomes empty
//! (and so fails the `\`-path check), and a header whose name cannot be
//! read at all gives no feature (bulk_extractor 2.x drops zero-length
//! features).
//!
//! Deviation: bulk_extractor reads to the end of its 16 MiB page (plus
//! margin); this scanner reads [`records::WINDOW`] bytes from the header,
//! so the file-name and volume sections of a prefetch file larger than
//! 60 KiB are read as bulk_extractor reads sections past the end of its
//! buffer (left empty).

use crate::binfmt::{filetime_iso8601, le16, le32, le64, u8_at, xml_escape};
use crate::records::{Record, window};
use memchr::memmem;
use std::ops::Range;

/// The records of prefetch headers starting in `own`.
pub(crate) fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let start = own.start.saturating_add(4);
    let end = own.end.saturating_add(8).min(buf.len());
    if start >= end {
        return;
    }
    for m in memmem::find_iter(&buf[start..end], b"SCCA") {
        let pos = start + m - 4;
        if pos >= own.end || !matches!(buf[pos], 0x11 | 0x17) || buf[pos + 1..pos + 4] != [0, 0, 0]
        {
            continue;
        }
        let (w, p) = window(buf, pos);
        let mut r = Prefetch::default();
        let _ = r.parse(&w[p..]);
        if r.filename.is_empty() {
            continue;
        }
        out.push(Record {
            recorder: "winprefetch",
            pos,
            context: r.to_xml(),
            feature: r.filename,
        });
    }
}

/// What bulk_extractor's `prefetch_record_t` gleans.
#[derive(Default)]
struct Prefetch {
    os: &'static str,
    header_size: u32,
    filename: Vec<u8>,
    runs: u32,
    atime: u64,
    volume: Vec<u8>,
    serial: u32,
    creation: u64,
    files: Vec<Vec<u8>>,
    dirs: Vec<Vec<u8>>,
}

/// `sbuf_t::getUTF16`: code units from `off` to a NUL unit (or the end);
/// `None` if `off` is past the end.
fn utf16_at(d: &[u8], off: u64) -> Option<Vec<u16>> {
    let o = usize::try_from(off).ok().filter(|&o| o < d.len())?;
    let mut v = Vec::new();
    for c in d[o..].chunks_exact(2) {
        let u = u16::from_le_bytes([c[0], c[1]]);
        if u == 0 {
            break;
        }
        v.push(u);
    }
    Some(v)
}

/// `safe_utf16to8`: UTF-8, or empty if the UTF-16 is invalid.
fn to_utf8(u: &[u16]) -> Vec<u8> {
    char::decode_utf16(u.iter().copied())
        .collect::<Result<String, _>>()
        .map(String::into_bytes)
        .unwrap_or_default()
}

/// `valid_full_path_name`.
fn valid_path(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'\\' && !s.contains(&0)
}

impl Prefetch {
    /// Reads fields in bulk_extractor's order; `None` where it would stop
    /// (range exception or failed check).
    fn parse(&mut self, d: &[u8]) -> Option<()> {
        let (exec_time_off, runs_off, want_header) = match u8_at(d, 0)? {
            0x11 => {
                self.os = "Windows XP";
                (0x78, 0x90, 0x98)
            }
            0x17 => {
                self.os = "Windows Vista or Windows 7";
                (0x80, 0x98, 0xf0)
            }
            _ => return None,
        };
        let file_len = le32(d, 0x0c)?;
        self.filename = to_utf8(&utf16_at(d, 0x10)?);
        if self.filename.is_empty() {
            self.filename = b"UNKNOWN_FILENAME".to_vec();
        }
        self.header_size = le32(d, 0x54)?;
        if self.header_size != want_header {
            return None;
        }
        self.atime = le64(d, exec_time_off)?;
        self.runs = le32(d, runs_off)?;

        // section C: file names
        let c_off = u64::from(le32(d, 0x64)?);
        let c_len = u64::from(le32(d, 0x68)?);
        let mut tell = 0u64;
        while tell < c_len {
            let u = utf16_at(d, c_off + tell)?;
            tell += u.len() as u64 * 2 + 2;
            let name = to_utf8(&u);
            if !valid_path(&name) {
                return None;
            }
            self.files.push(name);
        }

        // section D: volume
        let d_off = le32(d, 0x6c)?;
        let at = |k: u32| u64::from(d_off.wrapping_add(k));
        let name_off = le32(d, at(0))?;
        self.volume = to_utf8(&utf16_at(d, u64::from(d_off.wrapping_add(name_off)))?);
        self.creation = le64(d, at(0x08))?;
        self.serial = le32(d, at(0x10))?;
        let d2 = le32(d, at(0x1c))?;
        let dir_off = d_off.wrapping_add(d2);
        let ndirs = le32(d, at(0x20))?;
        if dir_off > file_len {
            return Some(());
        }
        let upper = u64::from(file_len - dir_off);
        let base = u64::from(dir_off);
        let mut tell = 0u64;
        for _ in 0..ndirs {
            if tell > upper {
                return None;
            }
            le16(d, base + tell)?; // the name length, unused
            tell += 2;
            let u = utf16_at(d, base + tell)?;
            tell += u.len() as u64 * 2 + 2;
            let name = to_utf8(&u);
            if !valid_path(&name) {
                return None;
            }
            self.dirs.push(name);
        }
        Some(())
    }

    /// `prefetch_record_t::to_xml`.
    fn to_xml(&self) -> Vec<u8> {
        let mut x = Vec::new();
        x.extend_from_slice(b"<prefetch><os>");
        xml_escape(self.os.as_bytes(), &mut x);
        x.extend_from_slice(b"</os><filename>");
        xml_escape(&self.filename, &mut x);
        x.extend_from_slice(b"</filename><header_size>");
        x.extend_from_slice(self.header_size.to_string().as_bytes());
        x.extend_from_slice(b"</header_size><atime>");
        x.extend_from_slice(filetime_iso8601(self.atime).as_bytes());
        x.extend_from_slice(b"</atime><runs>");
        x.extend_from_slice(self.runs.to_string().as_bytes());
        x.extend_from_slice(b"</runs><filenames>");
        for f in &self.files {
            x.extend_from_slice(b"<file>");
            xml_escape(f, &mut x);
            x.extend_from_slice(b"</file>");
        }
        x.extend_from_slice(b"</filenames><volume><path>");
        xml_escape(&self.volume, &mut x);
        x.extend_from_slice(b"</path><creation>");
        x.extend_from_slice(filetime_iso8601(self.creation).as_bytes());
        x.extend_from_slice(b"</creation><serial_number>");
        x.extend_from_slice(format!("{:x}", self.serial).as_bytes());
        x.extend_from_slice(b"</serial_number><dirnames>");
        for f in &self.dirs {
            x.extend_from_slice(b"<dir>");
            xml_escape(f, &mut x);
            x.extend_from_slice(b"</dir>");
        }
        x.extend_from_slice(b"</dirnames></volume></prefetch>");
        x
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn utf16z(s: &str) -> Vec<u8> {
        let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        v.extend_from_slice(&[0, 0]);
        v
    }

    /// A Windows XP (version 17) prefetch file: two file names, a volume
    /// with one directory.
    pub(crate) fn tiny_xp() -> Vec<u8> {
        let mut f = vec![0u8; 0x400];
        let p32 = |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_le_bytes());
        let p64 = |f: &mut Vec<u8>, o: usize, v: u64| f[o..o + 8].copy_from_slice(&v.to_le_bytes());
        p32(&mut f, 0, 0x11);
        f[4..8].copy_from_slice(b"SCCA");
        p32(&mut f, 0x0c, 0x400);
        let n = utf16z("NOTE<PAD>.EXE");
        f[0x10..0x10 + n.len()].copy_from_slice(&n);
        p32(&mut f, 0x54, 0x98);
        p64(&mut f, 0x78, 129_000_000_000_000_000);
        p32(&mut f, 0x90, 7);
        // section C at 0x100
        let a = utf16z("\\DEVICE\\HARDDISKVOLUME1\\A.DLL");
        let b = utf16z("\\DEVICE\\HARDDISKVOLUME1\\B&C.DLL");
        f[0x100..0x100 + a.len()].copy_from_slice(&a);
        f[0x100 + a.len()..0x100 + a.len() + b.len()].copy_from_slice(&b);
        p32(&mut f, 0x64, 0x100);
        p32(&mut f, 0x68, (a.len() + b.len()) as u32);
        // section D at 0x200: volume name at +0x40, directories at +0x80
        p32(&mut f, 0x6c, 0x200);
        p32(&mut f, 0x200, 0x40);
        p64(&mut f, 0x208, 128_000_000_000_000_000);
        p32(&mut f, 0x210, 0xdead_beef);
        p32(&mut f, 0x21c, 0x80);
        p32(&mut f, 0x220, 1);
        let v = utf16z("\\DEVICE\\HARDDISKVOLUME1");
        f[0x240..0x240 + v.len()].copy_from_slice(&v);
        let dname = utf16z("\\DEVICE\\HARDDISKVOLUME1\\WINDOWS");
        f[0x282..0x282 + dname.len()].copy_from_slice(&dname);
        f
    }

    fn run(buf: &[u8]) -> Vec<Record> {
        let mut v = Vec::new();
        scan(buf, 0..buf.len(), &mut v);
        v
    }

    #[test]
    fn tiny_xp_xml() {
        let f = tiny_xp();
        let r = run(&f);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].feature, b"NOTE<PAD>.EXE");
        assert_eq!(
            String::from_utf8_lossy(&r[0].context),
            concat!(
                "<prefetch><os>Windows XP</os><filename>NOTE&lt;PAD&gt;.EXE</filename>",
                "<header_size>152</header_size><atime>2009-10-14T13:20:00Z</atime><runs>7</runs>",
                "<filenames><file>\\DEVICE\\HARDDISKVOLUME1\\A.DLL</file>",
                "<file>\\DEVICE\\HARDDISKVOLUME1\\B&amp;C.DLL</file></filenames>",
                "<volume><path>\\DEVICE\\HARDDISKVOLUME1</path><creation>2006-08-14T03:33:20Z</creation>",
                "<serial_number>deadbeef</serial_number>",
                "<dirnames><dir>\\DEVICE\\HARDDISKVOLUME1\\WINDOWS</dir></dirnames></volume></prefetch>"
            )
        );
    }

    #[test]
    fn partial_records() {
        let f = tiny_xp();
        // wrong header size: reported with what was read before the check
        let mut g = f.clone();
        g[0x54] = 0x99;
        let r = run(&g);
        assert_eq!(r.len(), 1);
        assert_eq!(
            String::from_utf8_lossy(&r[0].context),
            "<prefetch><os>Windows XP</os><filename>NOTE&lt;PAD&gt;.EXE</filename><header_size>153</header_size><atime>1601-01-01T00:00:00Z</atime><runs>0</runs><filenames></filenames><volume><path></path><creation>1601-01-01T00:00:00Z</creation><serial_number>0</serial_number><dirnames></dirnames></volume></prefetch>"
        );
        // a file name not starting with '\' stops the record there
        let mut g = f.clone();
        g[0x100] = b'X';
        let r = run(&g);
        assert!(
            r[0].context
                .windows(23)
                .any(|w| w == b"<filenames></filenames>")
        );
        // empty name
        let mut g = f.clone();
        g[0x10] = 0;
        g[0x11] = 0;
        assert_eq!(run(&g)[0].feature, b"UNKNOWN_FILENAME");
        // other versions are not recognised
        let mut g = f.clone();
        g[0] = 0x1a;
        assert!(run(&g).is_empty());
        let mut g = f.clone();
        g[0] = 0x1e;
        assert!(run(&g).is_empty());
        // truncated: name unreadable -> no feature; then every length
        assert!(run(&f[..0x10]).is_empty());
        for n in 0..f.len() {
            assert!(run(&f[..n]).len() <= 1);
        }
    }

    #[test]
    fn owned_range() {
        let f = tiny_xp();
        let mut buf = vec![0u8; 7];
        buf.extend_from_slice(&f);
        let mut v = Vec::new();
        scan(&buf, 0..7, &mut v);
        assert!(v.is_empty());
        scan(&buf, 7..8, &mut v);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pos, 7);
    }
}
