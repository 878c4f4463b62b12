//! HTML: a text document (no binary bytes) from `<html` (or
//! `<!DOCTYPE html`) to the matching `</html>`, with no second root element
//! opened before it (two documents intertwined), plus the end of line after
//! it.

use super::{Cx, Verdict};
use crate::CarveError;
use crate::kinds::HTML;
use crate::src::Win;

/// Bytes a text document never holds (C0 controls other than tab, line
/// feed, form feed, carriage return and escape; DEL).
fn binary(b: u8) -> bool {
    matches!(b, 0..=8 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F | 0x7F)
}

fn tag_end(b: Option<u8>) -> bool {
    matches!(b, Some(b' ' | b'\t' | b'\r' | b'\n' | b'>'))
}

/// Shortest document worth reporting when it breaks.
const MIN_PARTIAL: u64 = 512;

pub(crate) fn html(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let mut win = Win::new(cx.src, start, cx.max)?;
    let Some(h) = win.slice(start, 14)?.map(<[u8]>::to_ascii_lowercase) else {
        return Ok(Verdict::Reject("short"));
    };
    let mut root = false;
    if h.starts_with(b"<html") {
        if !tag_end(h.get(5).copied()) {
            return Ok(Verdict::Reject("not an html tag"));
        }
        root = true;
    } else if !h.starts_with(b"<!doctype html") {
        return Ok(Verdict::Reject("not an html header"));
    }
    let stop = |pos: u64, why: &str| -> Verdict {
        if pos - start < MIN_PARTIAL {
            Verdict::Reject("html breaks right after its header")
        } else {
            Verdict::broken(HTML, pos - start, format!("{why} at +{}", pos - start))
        }
    };
    let mut pos = start + 1;
    loop {
        if pos >= win.end() && !win.ensure(pos + 1)? {
            return Ok(if win.limit() >= cx.src.size() {
                stop(pos, "truncated by the end of the image before </html>")
            } else {
                Verdict::Reject("no </html> within the maximum size")
            });
        }
        let b = win.bytes();
        let i = (pos - win.start()) as usize;
        let Some(k) = b[i..].iter().position(|&c| c == b'<' || binary(c)) else {
            pos = win.end();
            continue;
        };
        pos += k as u64;
        if b[i + k] != b'<' {
            return Ok(stop(pos, "binary data"));
        }
        let Some(t) = win.slice(pos, 8)?.map(<[u8]>::to_ascii_lowercase) else {
            pos += 1;
            continue;
        };
        if t.starts_with(b"</html") && tag_end(t.get(6).copied()) {
            // The end of the closing tag, then one end of line.
            let mut e = pos + 6;
            for _ in 0..64 {
                match win.byte(e)? {
                    Some(b'>') => break,
                    Some(c) if !binary(c) => e += 1,
                    _ => return Ok(stop(pos, "unterminated </html> tag")),
                }
            }
            if win.byte(e)? != Some(b'>') {
                return Ok(stop(pos, "unterminated </html> tag"));
            }
            e += 1;
            match (win.byte(e)?, win.byte(e + 1)?) {
                (Some(b'\r'), Some(b'\n')) => e += 2,
                (Some(b'\n' | b'\r'), _) => e += 1,
                _ => {}
            }
            if !root {
                return Ok(stop(pos, "</html> without <html>"));
            }
            return Ok(Verdict::valid(HTML, e - start));
        }
        if t.starts_with(b"<html") && tag_end(t.get(5).copied()) {
            if root {
                return Ok(stop(
                    pos,
                    "a second <html> root before </html> (intertwined documents?)",
                ));
            }
            root = true;
        }
        pos += 1;
    }
}
