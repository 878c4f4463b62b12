//! Text hash lists: hashdeep, md5sum-style, NSRL RDSv2 CSV, plain digests.
//!
//! Lines are bytes, not text: names in a list may be in any encoding, and a
//! garbled file must give "malformed line N", never a panic or a lossy
//! guess. A line is at most [`MAX_LINE`] bytes; a longer one is malformed
//! (and skipped to its end without being held in memory).

use std::io::BufRead;

use crate::{Algorithm, Digests};

/// Longest line accepted.
pub(crate) const MAX_LINE: usize = 64 * 1024;

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn describe(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("'{}'", c as char)
    } else {
        format!("byte 0x{c:02x}")
    }
}

/// Parses exactly `2 × N` hex digits (either case).
pub(crate) fn parse_hex<const N: usize>(s: &[u8]) -> Result<[u8; N], String> {
    if let Some(i) = s.iter().position(|&c| nibble(c).is_none()) {
        return Err(format!(
            "non-hex {} at position {} of the digest",
            describe(s[i]),
            i + 1
        ));
    }
    if s.len() != 2 * N {
        return Err(format!(
            "digest of {} hex digits where {} were expected",
            s.len(),
            2 * N
        ));
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        // Both digits were checked above.
        *o = (nibble(pair[0]).unwrap_or(0) << 4) | nibble(pair[1]).unwrap_or(0);
    }
    Ok(out)
}

/// Parses a bare digest, its algorithm chosen by its length, into `d`.
fn parse_any(s: &[u8], d: &mut Digests) -> Result<(), String> {
    if let Some(i) = s.iter().position(|&c| nibble(c).is_none()) {
        return Err(format!(
            "non-hex {} at position {} of the digest",
            describe(s[i]),
            i + 1
        ));
    }
    set(d, Algorithm::from_hex_len(s.len()), s).map_err(|()| {
        format!(
            "digest of {} hex digits: not MD5 (32), SHA-1 (40) or SHA-256 (64)",
            s.len()
        )
    })
}

fn set(d: &mut Digests, alg: Option<Algorithm>, s: &[u8]) -> Result<(), ()> {
    match alg {
        Some(Algorithm::Md5) => d.md5 = Some(parse_hex(s).map_err(|_| ())?),
        Some(Algorithm::Sha1) => d.sha1 = Some(parse_hex(s).map_err(|_| ())?),
        Some(Algorithm::Sha256) => d.sha256 = Some(parse_hex(s).map_err(|_| ())?),
        None => return Err(()),
    }
    Ok(())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// One line from [`LineReader`].
pub(crate) enum Line<'a> {
    Text(&'a [u8]),
    /// Longer than [`MAX_LINE`]; its length.
    TooLong(u64),
}

/// Reads lines of at most [`MAX_LINE`] bytes, numbering them from 1.
pub(crate) struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    pub(crate) line_no: u64,
}

impl<R: BufRead> LineReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            line_no: 0,
        }
    }

    /// The reader.
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// The next line without its `\n` (and `\r`), or `None` at end of file.
    pub(crate) fn next_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut len = 0u64;
        let mut any = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (take, done) = match avail.iter().position(|&c| c == b'\n') {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            len += take as u64;
            if len <= MAX_LINE as u64 {
                self.buf.extend_from_slice(&avail[..take]);
            }
            self.inner.consume(if done { take + 1 } else { take });
            if done {
                break;
            }
        }
        self.line_no += 1;
        if len > MAX_LINE as u64 {
            return Ok(Some(Line::TooLong(len)));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(Line::Text(&self.buf)))
    }
}

/// The format of a list, known after its first non-blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListFormat {
    Hashdeep,
    NsrlCsv,
    Sums,
}

impl ListFormat {
    pub(crate) fn name(format: Option<ListFormat>) -> &'static str {
        match format {
            Some(ListFormat::Hashdeep) => "hashdeep",
            Some(ListFormat::NsrlCsv) => "nsrl-rdsv2-csv",
            Some(ListFormat::Sums) | None => "sums",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Size,
    Digest(Algorithm),
    /// tiger, whirlpool: read, not kept.
    Other,
    Filename,
}

/// Parses the lines of one list.
#[derive(Debug, Default)]
pub(crate) struct ListParser {
    pub(crate) format: Option<ListFormat>,
    cols: Vec<Col>,
}

impl ListParser {
    /// The digests on one line; `Ok(None)` for headers, comments and blank
    /// lines; `Err(reason)` for a malformed line.
    pub(crate) fn line(&mut self, line: &[u8]) -> Result<Option<Digests>, String> {
        let mut line = line;
        if self.format.is_none() {
            if let Some(rest) = line.strip_prefix(b"\xEF\xBB\xBF") {
                line = rest;
            }
            let t = trim(line);
            if t.is_empty() {
                return Ok(None);
            }
            if t.starts_with(b"%%%% HASHDEEP") {
                self.format = Some(ListFormat::Hashdeep);
                return Ok(None);
            }
            if t.starts_with(b"\"SHA-1\"") {
                self.format = Some(ListFormat::NsrlCsv);
                return Ok(None);
            }
            self.format = Some(ListFormat::Sums);
        }
        match self.format {
            Some(ListFormat::Hashdeep) => self.hashdeep(line),
            Some(ListFormat::NsrlCsv) => nsrl_csv(line),
            Some(ListFormat::Sums) | None => sums(line),
        }
    }

    fn hashdeep(&mut self, line: &[u8]) -> Result<Option<Digests>, String> {
        if trim(line).is_empty() || line.starts_with(b"##") {
            return Ok(None);
        }
        if let Some(rest) = line.strip_prefix(b"%%%%") {
            let rest = trim(rest);
            if rest.starts_with(b"HASHDEEP") {
                return Ok(None);
            }
            self.cols.clear();
            let mut cols = Vec::new();
            for name in rest.split(|&c| c == b',') {
                cols.push(match trim(name) {
                    b"size" => Col::Size,
                    b"md5" => Col::Digest(Algorithm::Md5),
                    b"sha1" => Col::Digest(Algorithm::Sha1),
                    b"sha256" => Col::Digest(Algorithm::Sha256),
                    b"tiger" | b"whirlpool" => Col::Other,
                    b"filename" => Col::Filename,
                    other => {
                        return Err(format!(
                            "hashdeep column header names an unknown column \"{}\"",
                            String::from_utf8_lossy(other)
                        ));
                    }
                });
            }
            if cols.iter().filter(|c| **c == Col::Filename).count() > 1
                || cols.contains(&Col::Filename) && cols.last() != Some(&Col::Filename)
            {
                return Err("hashdeep column header: filename must be the last column".into());
            }
            self.cols = cols;
            return Ok(None);
        }
        if self.cols.is_empty() {
            return Err("hashdeep line before a valid %%%% column header".into());
        }
        let n = self.cols.len();
        let fields: Vec<&[u8]> = line.splitn(n, |&c| c == b',').collect();
        if fields.len() != n {
            return Err(format!(
                "{} comma-separated fields where the header declares {n}",
                fields.len()
            ));
        }
        let mut d = Digests::default();
        for (i, (col, field)) in self.cols.iter().zip(&fields).enumerate() {
            match col {
                Col::Size => {
                    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
                        return Err(format!("field {} (size) is not a number", i + 1));
                    }
                }
                Col::Digest(alg) => {
                    let r = match alg {
                        Algorithm::Md5 => parse_hex::<16>(field).map(|x| d.md5 = Some(x)),
                        Algorithm::Sha1 => parse_hex::<20>(field).map(|x| d.sha1 = Some(x)),
                        Algorithm::Sha256 => parse_hex::<32>(field).map(|x| d.sha256 = Some(x)),
                    };
                    r.map_err(|e| format!("field {} ({}): {e}", i + 1, alg.name()))?;
                }
                Col::Other | Col::Filename => {}
            }
        }
        Ok(if d.is_empty() { None } else { Some(d) })
    }
}

/// `"SHA-1","MD5","CRC32","FileName",...` (NSRL RDSv2 `NSRLFile.txt`).
fn nsrl_csv(line: &[u8]) -> Result<Option<Digests>, String> {
    let t = trim(line);
    if t.is_empty() || t.starts_with(b"\"SHA-1\"") {
        return Ok(None);
    }
    fn quoted(s: &[u8]) -> Option<(&[u8], &[u8])> {
        let s = s.strip_prefix(b"\"")?;
        let end = s.iter().position(|&c| c == b'"')?;
        Some((&s[..end], &s[end + 1..]))
    }
    let (sha1, rest) = quoted(t).ok_or("expected a quoted SHA-1 as the first field")?;
    let rest = rest
        .strip_prefix(b",")
        .ok_or("expected a comma after the SHA-1")?;
    let (md5, _) = quoted(rest).ok_or("expected a quoted MD5 as the second field")?;
    let sha1 = parse_hex::<20>(sha1).map_err(|e| format!("SHA-1 field: {e}"))?;
    let md5 = parse_hex::<16>(md5).map_err(|e| format!("MD5 field: {e}"))?;
    Ok(Some(Digests {
        md5: Some(md5),
        sha1: Some(sha1),
        sha256: None,
    }))
}

/// `HEX  name`, `HEX *name`, `\HEX  name`, `TAG (name) = HEX`, `HEX`.
fn sums(line: &[u8]) -> Result<Option<Digests>, String> {
    let t = trim(line);
    if t.is_empty() || t.starts_with(b"#") {
        return Ok(None);
    }
    let t = t.strip_prefix(b"\\").unwrap_or(t);
    let mut d = Digests::default();
    // BSD / --tag form.
    let tag_end = t.iter().position(|&c| c == b' ').unwrap_or(t.len());
    let tag = &t[..tag_end];
    if t[tag_end..].starts_with(b" (")
        && !tag.is_empty()
        && tag
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'-')
        && tag.iter().any(u8::is_ascii_uppercase)
    {
        let Some(eq) = t.windows(4).rposition(|w| w == b") = ") else {
            return Err("tagged line without \") = \" before the digest".into());
        };
        let hex = trim(&t[eq + 4..]);
        let alg = match tag {
            b"MD5" => Algorithm::Md5,
            b"SHA1" => Algorithm::Sha1,
            b"SHA256" => Algorithm::Sha256,
            other => {
                return Err(format!(
                    "unsupported algorithm {}",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        let r = match alg {
            Algorithm::Md5 => parse_hex::<16>(hex).map(|x| d.md5 = Some(x)),
            Algorithm::Sha1 => parse_hex::<20>(hex).map(|x| d.sha1 = Some(x)),
            Algorithm::Sha256 => parse_hex::<32>(hex).map(|x| d.sha256 = Some(x)),
        };
        r.map_err(|e| format!("{alg}: {e}"))?;
        return Ok(Some(d));
    }
    let end = t
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(t.len());
    parse_any(&t[..end], &mut d)?;
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &[u8]) -> Vec<Result<Option<Digests>, String>> {
        let mut p = ListParser::default();
        let mut r = LineReader::new(text);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(match l {
                Line::Text(t) => p.line(t),
                Line::TooLong(n) => Err(format!("too long {n}")),
            });
        }
        out
    }

    #[test]
    fn sums_forms() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let lines = format!(
            "{md5}  a b\n{md5} *bin\n\\{md5}  we\\\\ird\nMD5 (x (y)) = {md5}\n{md5}\n\n# c\r\n"
        );
        let r = parse_all(lines.as_bytes());
        assert_eq!(r.len(), 7);
        for x in &r[..5] {
            assert_eq!(x.as_ref().unwrap().unwrap().md5.unwrap()[0], 0xd4);
        }
        assert!(matches!(r[5], Ok(None)));
        assert!(matches!(r[6], Ok(None)));
    }

    #[test]
    fn sums_errors() {
        let r = parse_all(b"xyz  file\nabcd\nSHA512 (f) = 00\n");
        assert!(r[0].as_ref().unwrap_err().contains("non-hex 'x'"));
        assert!(r[1].as_ref().unwrap_err().contains("4 hex digits"));
        assert!(
            r[2].as_ref()
                .unwrap_err()
                .contains("unsupported algorithm SHA512")
        );
    }

    #[test]
    fn long_line_is_bounded() {
        let mut text = vec![b'a'; MAX_LINE + 10];
        text.extend_from_slice(b"\nd41d8cd98f00b204e9800998ecf8427e\n");
        let mut r = LineReader::new(&text[..]);
        assert!(
            matches!(r.next_line().unwrap(), Some(Line::TooLong(n)) if n == MAX_LINE as u64 + 10)
        );
        assert!(matches!(r.next_line().unwrap(), Some(Line::Text(t)) if t.len() == 32));
        assert_eq!(r.line_no, 2);
        assert!(r.next_line().unwrap().is_none());
    }
}
