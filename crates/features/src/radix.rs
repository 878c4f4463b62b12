//! Base64 and base16 (hex) decoding layers, as bulk_extractor 2.x finds
//! them.
//!
//! * **base64** (bulk_extractor's `scan_base64`): a block is a run of
//!   lines (`\n`-terminated, `\r` and blanks ignored) made only of base64
//!   characters (`A-Z a-z 0-9 + / - _`, `=` only at the end), the first at
//!   least 60 bytes long and the following of the same length; it ends at
//!   a line of another length (kept when the block had at least 2 lines)
//!   or at a line that is not base64 (kept, that line included, when the
//!   block had at least 3 lines). Lines longer than 160 bytes must mix
//!   upper and lower case (or be all `A`), so long hex lines are not
//!   taken. The block is decoded by the forensic decoder (whitespace
//!   skipped, stop at `=` or at any other character) and scanned again
//!   with every scanner, forensic path `N-BASE64-M`.
//! * **base16** (`scan_base16`, off by default as in bulk_extractor): runs
//!   of at least 6 hex digit pairs, pairs separated by at most two blanks
//!   or newlines. A run decoding to 6, 16 or 32 bytes (a MAC address or a
//!   128/256-bit key) is reported in `hex.txt`; one decoding to more than
//!   64 bytes is scanned again, forensic path `N-BASE16-M`.
//!
//! # Exactness across shards
//!
//! Both are left-to-right state machines. A shard starts its machine at
//! the last point before its owned range where the state is known to be
//! reset (a line that is not base64; a byte that cannot be part of a hex
//! run), found in the context before the shard, and keeps the blocks that
//! start in its range. A base64 block running past the buffer is read on
//! through the evidence, up to the layer size bound.

use std::ops::Range;

const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
const SYMBOL: u8 = 8;

/// Character classes of the base64 alphabet (`-` and `_` of RFC 4648
/// count for the line test, as in bulk_extractor, but stop the decoder).
const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_lowercase() {
            LOWER
        } else if b.is_ascii_uppercase() {
            UPPER
        } else if b.is_ascii_digit() {
            DIGIT
        } else if b == b'+' || b == b'/' || b == b'-' || b == b'_' {
            SYMBOL
        } else {
            0
        };
        c += 1;
    }
    t
}
static CLASS: [u8; 256] = classes();

/// Shortest first line of a base64 block.
pub const MIN_LINE: usize = 60;
/// Lines longer than this must mix upper and lower case.
const MIXED_CASE_OVER: usize = 160;

/// Whether `line` (without its `\n`) is a base64 line.
fn is_base64_line(line: &[u8]) -> bool {
    let mut classes = 0u8;
    let mut only_a = true;
    let mut in_equal = false;
    for &c in line {
        match c {
            b' ' | b'\t' | b'\r' => continue,
            b'=' => {
                in_equal = true;
                continue;
            }
            _ => {}
        }
        if in_equal {
            return false;
        }
        let k = CLASS[c as usize];
        if k == 0 {
            return false;
        }
        classes |= k;
        only_a &= c == b'A';
    }
    if line.len() > MIXED_CASE_OVER && !only_a {
        return classes & UPPER != 0 && classes & LOWER != 0;
    }
    true
}

/// The line starting at `start`: its end (the `\n` or `text.len()`).
/// As in bulk_extractor, a line's first byte is never its terminator.
fn line_end(text: &[u8], start: usize) -> usize {
    if start + 1 >= text.len() {
        return text.len();
    }
    memchr::memchr(b'\n', &text[start + 1..]).map_or(text.len(), |i| start + 1 + i)
}

/// A base64 block: `text[start..end]`; `open` when it ran to the end of
/// `text` still growing (more text could make it longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub start: usize,
    pub end: usize,
    pub open: bool,
}

/// Runs bulk_extractor's block machine over `text` from line start
/// `from` (state reset there), calling `f` for every block that starts in
/// `own`; stops after the first block starting at or past `own.end`.
pub fn base64_blocks(text: &[u8], from: usize, own: Range<usize>, mut f: impl FnMut(Block)) {
    let mut in_block = false;
    let mut block_start = 0;
    let mut prev_len = 0;
    let mut lines = 0usize;
    let mut pos = from;
    while pos < text.len() {
        let start = pos;
        let end = line_end(text, start);
        let len = end - start;
        pos = end + 1;
        if in_block && block_start >= own.end {
            return;
        }
        if !in_block && start >= own.end {
            return;
        }
        if is_base64_line(&text[start..end]) {
            if !in_block {
                if len >= MIN_LINE {
                    in_block = true;
                    block_start = start;
                    lines = 1;
                    prev_len = len;
                }
                continue;
            }
            if len != prev_len {
                if lines > 1 && own.contains(&block_start) {
                    f(Block {
                        start: block_start,
                        end,
                        open: end == text.len(),
                    });
                }
                in_block = false;
                continue;
            }
            lines += 1;
            if end == text.len() && own.contains(&block_start) && lines > 2 {
                // the text ends inside the block
                f(Block {
                    start: block_start,
                    end,
                    open: true,
                });
                return;
            }
        } else {
            if in_block && lines > 2 && own.contains(&block_start) {
                f(Block {
                    start: block_start,
                    end,
                    open: end == text.len(),
                });
            }
            in_block = false;
        }
    }
}

/// Where a shard's base64 machine starts for an owned range starting at
/// `own_start`: the start of the last line before it that is not base64
/// (the machine's state is reset after such a line whatever came before),
/// looked for within `limit` bytes back; the buffer's start when reached;
/// else the earliest line start seen.
///
/// A `\n` whose previous byte is not `\n` always ends a line (a line's
/// first byte is never its terminator), so the byte after it starts one.
pub fn base64_sync(text: &[u8], own_start: usize, limit: usize) -> usize {
    let floor = own_start.saturating_sub(limit);
    let mut end = own_start.min(text.len());
    let mut earliest = None;
    while let Some(i) = memchr::memrchr(b'\n', &text[floor..end]) {
        let nl = floor + i;
        end = nl;
        if nl > 0 && text[nl - 1] == b'\n' {
            continue;
        }
        let s = nl + 1;
        earliest = Some(s);
        if !is_base64_line(&text[s..line_end(text, s)]) {
            return s;
        }
    }
    if floor == 0 {
        0
    } else {
        earliest.unwrap_or(own_start)
    }
}

/// bulk_extractor's forensic base64 decoder: whitespace skipped, decoding
/// stops at `=`, at a character outside `A-Za-z0-9+/` or at a NUL.
pub fn decode_base64(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / 4 * 3 + 3);
    let mut acc = 0u32;
    let mut n = 0;
    for &c in src {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => continue,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    // a partial quantum yields its whole bytes
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex_or_sep(c: u8) -> bool {
    hex_val(c).is_some() || matches!(c, b' ' | b'\n' | b'\r')
}

/// Longest hex run starting at `i`: `[0-9A-F]{2}(([ \n]|\r\n){0,2}[0-9A-F]{2}){5,}`
/// (case-insensitive); its end, or `None`.
fn hex_run_at(text: &[u8], i: usize, max: usize) -> Option<usize> {
    let hx = |j: usize| text.get(j).is_some_and(|c| hex_val(*c).is_some());
    if !(hx(i) && hx(i + 1)) {
        return None;
    }
    let lim = (i + max).min(text.len());
    let mut end = i + 2;
    let mut pairs = 0;
    loop {
        // up to two separators ([ \n] or \r\n), then a pair
        let mut j = end;
        let mut best = None;
        for _ in 0..=2 {
            if j + 1 < lim && hx(j) && hx(j + 1) {
                best = Some(j + 2);
                break;
            }
            match text.get(j) {
                Some(b' ' | b'\n') => j += 1,
                Some(b'\r') if text.get(j + 1) == Some(&b'\n') => j += 2,
                _ => break,
            }
        }
        let Some(e) = best else { break };
        if e > lim {
            break;
        }
        end = e;
        pairs += 1;
    }
    (pairs >= 5).then_some(end)
}

/// Bytes of a hex run decoded as bulk_extractor decodes them (separators
/// skipped; `None` when a digit is not followed by a second one).
pub fn decode_hex(run: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(run.len() / 2);
    let mut i = 0;
    while i + 1 < run.len() {
        let Some(hi) = hex_val(run[i]) else {
            i += 1;
            continue;
        };
        let lo = hex_val(run[i + 1])?;
        out.push(hi << 4 | lo);
        i += 2;
    }
    Some(out)
}

/// Hex runs starting in `own`, from the sync point before it; at most
/// `max` bytes long each.
pub fn hex_runs(text: &[u8], own: Range<usize>, max: usize, mut f: impl FnMut(Range<usize>)) {
    // sync: after the last byte before `own` that no run can contain
    let floor = own.start.saturating_sub(max);
    let mut i = (floor..own.start)
        .rev()
        .find(|&j| !hex_or_sep(text[j]))
        .map_or(floor, |j| j + 1);
    while i < own.end.min(text.len()) {
        // skip to a hex digit
        match text[i..own.end.min(text.len())]
            .iter()
            .position(|c| hex_val(*c).is_some())
        {
            Some(k) => i += k,
            None => return,
        }
        if let Some(end) = hex_run_at(text, i, max) {
            if i >= own.start {
                f(i..end);
            }
            i = end;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in data.chunks(3) {
            let v = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    s.push(A[((v >> (18 - 6 * k)) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    fn wrap(s: &str, w: usize, eol: &str) -> String {
        s.as_bytes()
            .chunks(w)
            .map(|c| format!("{}{eol}", std::str::from_utf8(c).unwrap()))
            .collect()
    }

    fn blocks(text: &[u8]) -> Vec<Block> {
        let mut v = Vec::new();
        base64_blocks(text, 0, 0..text.len(), |b| v.push(b));
        v
    }

    #[test]
    fn mime_attachment_block_is_found_and_decodes() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let body = wrap(&b64(&payload), 76, "\r\n");
        let text = format!("Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--boundary--\r\n");
        let bl = blocks(text.as_bytes());
        assert_eq!(bl.len(), 1, "{bl:?}");
        let b = bl[0];
        assert_eq!(&text[b.start..b.start + 4], &body[..4]);
        assert_eq!(decode_base64(&text.as_bytes()[b.start..b.end]), payload);
    }

    #[test]
    fn two_lines_need_a_short_last_line_and_short_text_is_not_base64() {
        // 2 full lines and a shorter one: kept (2 lines, then other length)
        let payload = vec![0x41u8; 120];
        let enc = b64(&payload);
        let text = format!("x\n{}", wrap(&enc, 64, "\n"));
        assert_eq!(blocks(text.as_bytes()).len(), 1);
        // one line of 64 then one of 40: not a block (bulk_extractor's rule)
        let text = "x\nW3siMSI6ICJvbmVAYmFzZTY0LmNvbSJ9LCB7IjIiOiAidHdvQGJhc2U2NC5jb20i\nfSwgeyIzIjogInRocmVlQGJhc2U2NC5jb20ifV0K\n";
        assert!(blocks(text.as_bytes()).is_empty());
        // prose: not base64 (punctuation), even in equal-length lines
        let prose = "Hello, this is a line of prose that is long enough to count..\n".repeat(5);
        assert!(blocks(prose.as_bytes()).is_empty());
        // long hex lines are refused (one case only)
        let hex = format!("{}\n", "0123456789abcdef".repeat(11)).repeat(4);
        assert!(blocks(hex.as_bytes()).is_empty());
    }

    #[test]
    fn forensic_decoder_stops_at_padding_or_junk() {
        assert_eq!(decode_base64(b"aGVsbG8="), b"hello");
        assert_eq!(decode_base64(b"aGVs\r\nbG8gd29y\nbGQ="), b"hello world");
        assert_eq!(decode_base64(b"aGVsbG8*garbage"), b"hello");
        assert_eq!(decode_base64(b""), b"");
    }

    #[test]
    fn sync_point_makes_blocks_independent_of_where_scanning_starts() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
        let mut text = b"header line, not base64\n".to_vec();
        text.extend(wrap(&b64(&payload), 76, "\n").as_bytes());
        text.extend(b"trailer, not base64\n");
        text.extend(wrap(&b64(&payload[..900]), 64, "\r\n").as_bytes());
        text.extend(b"end.\n");
        let whole = blocks(&text);
        assert_eq!(whole.len(), 2);
        for cut in (0..text.len()).step_by(97) {
            let mut got = Vec::new();
            for own in [0..cut, cut..text.len()] {
                let from = base64_sync(&text, own.start, 64 << 10);
                base64_blocks(&text, from, own, |b| got.push(b));
            }
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn hex_runs_follow_the_flex_rule() {
        let t = b"key: 00112233445566778899aabbccddeeff; addr 00 11 22 33 44 55, short 0011223344";
        let mut runs = Vec::new();
        hex_runs(t, 0..t.len(), 1 << 20, |r| runs.push(r));
        let texts: Vec<&[u8]> = runs.iter().map(|r| &t[r.clone()]).collect();
        assert_eq!(
            texts,
            [
                &b"00112233445566778899aabbccddeeff"[..],
                b"00 11 22 33 44 55"
            ]
        );
        assert_eq!(
            decode_hex(texts[1]).unwrap(),
            [0, 0x11, 0x22, 0x33, 0x44, 0x55]
        );
        // the same runs whatever the owned range's start
        for cut in 0..t.len() {
            let mut got = Vec::new();
            for own in [0..cut, cut..t.len()] {
                hex_runs(t, own, 1 << 20, |r| got.push(r));
            }
            assert_eq!(got, runs, "cut {cut}");
        }
    }
}
