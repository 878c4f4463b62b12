//! PDF: from `%PDF-` to the last `%%EOF` (and its end-of-line) of the
//! document, following incremental updates and linearized sections. An
//! `%%EOF` belongs to this document when its `startxref` points, relative to
//! this header, at a cross-reference table (`xref`) or stream (`N G obj`).

use super::{Cx, Verdict};
use crate::CarveError;
use crate::kinds::PDF;

pub(crate) fn validate(cx: &mut Cx, start: u64) -> Result<Verdict, CarveError> {
    let src = cx.src;
    let Some(h) = src.array::<8>(start)? else {
        return Ok(Verdict::Reject("short"));
    };
    // %PDF-1.x / %PDF-2.0
    if !(h[5].is_ascii_digit() && h[6] == b'.' && h[7].is_ascii_digit()) {
        return Ok(Verdict::Reject("bad version"));
    }
    let limit = cx.limit(start);
    // Another document's header ends the search (bounded work on broken
    // files), except where that header is inside our own structure, which
    // the startxref check sorts out below.
    let next_header = cx.find(b"%PDF-", start + 5, limit)?;
    let search_end = next_header.unwrap_or(limit);
    let mut pos = start + 5;
    let mut best: Option<(u64, bool)> = None;
    let mut sections = 0u32;
    let mut pending = false;
    while let Some(e) = cx.find(b"%%EOF", pos, search_end)? {
        let end = e + 5 + eol_len(cx, e + 5, limit)?;
        let resolved = startxref_ok(cx, start, e)?;
        if resolved {
            sections += 1;
            pending = false;
        }
        if resolved || best.is_none_or(|(_, r)| !r) {
            best = Some((end, resolved));
        }
        if update_follows(cx, end)? {
            pending = best.is_some_and(|(_, r)| r);
            pos = end;
            continue;
        }
        if resolved {
            break;
        }
        if best.is_some_and(|(_, r)| r) {
            break;
        }
        pos = e + 5;
    }
    match best {
        Some((end, true)) if pending => Ok(Verdict::broken(
            PDF,
            end - start,
            "an incremental update follows the last complete revision but does not end (truncated or fragmented): carved up to that revision",
        )),
        Some((end, true)) => {
            let note = if sections > 1 {
                format!("{sections} revisions (incremental updates or linearized sections)")
            } else {
                String::new()
            };
            Ok(Verdict::valid_note(PDF, end - start, note))
        }
        Some((end, false)) => Ok(Verdict::broken(
            PDF,
            end - start,
            "%%EOF found but startxref does not point to a cross-reference section",
        )),
        None => {
            if next_header.is_some() {
                Ok(Verdict::Reject("no %%EOF before the next PDF header"))
            } else {
                Ok(Verdict::Reject("no %%EOF within the maximum size"))
            }
        }
    }
}

fn eol_len(cx: &Cx, at: u64, limit: u64) -> Result<u64, CarveError> {
    let b = cx.src.view(at, 2.min(limit.saturating_sub(at)))?;
    Ok(match (b.first(), b.get(1)) {
        (Some(b'\r'), Some(b'\n')) => 2,
        (Some(b'\r' | b'\n'), _) => 1,
        _ => 0,
    })
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c')
}

/// `N G obj` at the start of `b` (after whitespace).
fn obj_at(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    if b[i..].starts_with(b"xref") {
        return true;
    }
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s && *i - s <= 10
    };
    if !digits(&mut i) {
        return false;
    }
    let s = i;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    if i == s || !digits(&mut i) {
        return false;
    }
    let s = i;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i > s && b[i..].starts_with(b"obj")
}

/// Whether the `startxref` before the `%%EOF` at `e` points at a
/// cross-reference section of the document starting at `start`.
fn startxref_ok(cx: &Cx, start: u64, e: u64) -> Result<bool, CarveError> {
    let from = e.saturating_sub(64).max(start);
    let tail = cx.src.view(from, e - from)?;
    let Some(i) = memchr::memmem::rfind(&tail, b"startxref") else {
        return Ok(false);
    };
    let num: Vec<u8> = tail[i + 9..]
        .iter()
        .copied()
        .skip_while(|&c| is_ws(c))
        .take_while(u8::is_ascii_digit)
        .collect();
    if num.is_empty() || num.len() > 19 {
        return Ok(false);
    }
    let n: u64 = std::str::from_utf8(&num)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    if n == 0 {
        // Linearized first-page trailers may say 0.
        return Ok(false);
    }
    let Some(at) = start.checked_add(n).filter(|&a| a < e) else {
        return Ok(false);
    };
    let b = cx.src.view(at, 48)?;
    Ok(obj_at(&b))
}

/// Whether an incremental update (or the rest of a linearized file)
/// follows the end of line after an `%%EOF`.
fn update_follows(cx: &Cx, at: u64) -> Result<bool, CarveError> {
    let b = cx.src.view(at, 64)?;
    if b.is_empty() || !(b[0].is_ascii_digit() || is_ws(b[0]) || b[0] == b'x') {
        return Ok(false);
    }
    // Only whitespace that a writer would put between sections.
    let lead = b.iter().take_while(|&&c| is_ws(c)).count();
    if lead > 16 {
        return Ok(false);
    }
    Ok(obj_at(&b[lead..]))
}
