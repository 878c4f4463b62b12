//! Text extracted from decoded data, as bulk_extractor's `pdf` and `msxml`
//! scanners extract it, so that forensic paths such as `70727-PDF-0` and
//! `155996-ZIP-0-MSXML-22` point at the same text.
//!
//! * **PDF**: a zlib stream right after a `stream` keyword (and one end of
//!   line) whose inflated bytes are mostly printable: the characters inside
//!   `( )` string operands, a space after each string unless the strings
//!   themselves hold spaces. The layer is named after the keyword's offset.
//! * **MSXML**: inflated data starting with `<?xml `: the characters between
//!   tags, a line feed for each `</w:p>`.

/// The offset of the `stream` keyword when the zlib stream at `z` follows
/// one (`stream` then CR LF, LF or CR).
pub fn pdf_keyword(buf: &[u8], z: usize) -> Option<usize> {
    if z >= 8 && &buf[z - 8..z] == b"stream\r\n" {
        return Some(z - 8);
    }
    if z >= 7 && &buf[z - 7..z - 1] == b"stream" && matches!(buf[z - 1], b'\n' | b'\r') {
        return Some(z - 7);
    }
    None
}

/// More than 90% printable ASCII or white space.
pub fn mostly_printable(d: &[u8]) -> bool {
    let n = d
        .iter()
        .filter(|&&c| (0x20..0x7f).contains(&c) || matches!(c, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .count();
    n > d.len() * 9 / 10
}

/// The text of a PDF content stream.
pub fn pdf_text(d: &[u8]) -> Vec<u8> {
    let mut spaces = false;
    let mut out = Vec::new();
    for pass in 0..2 {
        let mut in_paren = false;
        for &c in d {
            if !in_paren && (c == b'[' || c == b']') {
                continue;
            }
            if !in_paren && c == b'(' {
                in_paren = true;
                continue;
            }
            if in_paren && c == b')' {
                in_paren = false;
                if pass == 1 && !spaces {
                    out.push(b' ');
                }
                continue;
            }
            if in_paren {
                if c == b' ' {
                    spaces = true;
                }
                if pass == 1 {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// The text of an XML document.
pub fn msxml_text(d: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.len() / 4);
    let mut in_text = false;
    for (i, &c) in d.iter().enumerate() {
        match c {
            b'<' => {
                in_text = false;
                if d[i..].starts_with(b"</w:p>") {
                    out.push(b'\n');
                }
            }
            b'>' => in_text = true,
            _ if in_text => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf() {
        assert_eq!(pdf_keyword(b"<<>>\nstream\r\nx\x01", 13), Some(5));
        assert_eq!(pdf_keyword(b"<<>>\nstream\nx\x01", 12), Some(5));
        assert_eq!(pdf_keyword(b"<<>>\nstreax\nx\x01", 12), None);
        let s = b"BT /F1 1 Tf (This is a test  ) Tj [(---) -250 (user@x.com)] TJ ET";
        assert_eq!(pdf_text(s), b"This is a test  ---user@x.com");
        assert_eq!(pdf_text(b"(plain@x.com) Tj (b) Tj"), b"plain@x.com b ");
        assert!(mostly_printable(b"q Q 1 0 0 -1 cm\n"));
        assert!(!mostly_printable(&[0u8, 1, 2, 3, b'a']));
    }

    #[test]
    fn msxml() {
        let x = b"<?xml version=\"1.0\"?>\r\n<w:document><w:p><w:t>Hi a@b.com</w:t></w:p><w:p><w:t>x</w:t></w:p></w:document>";
        assert_eq!(msxml_text(x), b"\r\nHi a@b.com\nx\n");
    }
}
