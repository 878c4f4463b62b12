//! bulk_extractor's `vin` scanner (`scan_vehicle.flex` with the validator
//! `scan_vin.cpp`): vehicle identification numbers, written to `vin.txt`.
//!
//! # Format
//!
//! The 17 characters as the feature, 16 bytes either side as the context
//! (`write_buf`), e.g. for `src/tests/test_vin.txt`:
//!
//! ```text
//! (columns are tab-separated)
//! 213    1HGBH41JXMN109186    Honda Accord\012VIN: 1HGBH41JXMN109186\012\012Test 2: 1992
//! ```
//!
//! # Recognition (the flex rules, resolved)
//!
//! The flex scanner (case-insensitive) matches 17 VIN characters
//! (`[0-9A-HJ-NPR-Z]`, so lowercase too) followed by a delimiter (one of
//! `` \t\r\n:,;|"'(){}[]<>#.!?`` — and `$`, which flex takes literally
//! inside that group), preceded either by a delimiter (or a literal `^`)
//! or by a prefix: `VIN`, `V.I.N.`, `vehicle id[entification] number`,
//! `make`, `model`, `year`, `chassis`, `frame` or `serial`, then any of
//! space `#` `:`. A prefix that ends in a separator leaves a delimiter
//! right before the VIN, so the prefix rules only add VINs glued to the
//! keyword (`make1HGBH41JXMN109186`). The scanner's "hex around a
//! standalone VIN" filter can never fire (a delimiter is always on each
//! side), so the automotive-keyword test guarding it changes nothing.
//!
//! The 17 characters must then pass `valid_vin`: no lowercase letters; no
//! I, O, Q; the check digit (position 9: transliteration A–H=1–8, J–N=1–5,
//! P=7, R=9, S–Z=2–9, weights 8 7 6 5 4 3 2 10 0 9 8 7 6 5 4 3 2, sum mod
//! 11, 10 written `X`); not starting with `0`; model-year character (10th)
//! in `1-9A-HJ-NPR-TV-Y`; with a year digit 1–9, positions 12–17 numeric;
//! not all digits; no character 5 times in a row; no run of 7 characters
//! each one apart from the previous.
//!
//! # Deviations
//!
//! * bulk_extractor skips the delimiter before a standalone VIN unless the
//!   match starts at position 0 of its 16 MiB page, where it validates the
//!   delimiter and the first 16 characters instead (a bug that depends on
//!   page boundaries): trawl always skips the delimiter.

use crate::CONTEXT;
use crate::records::Record;
use std::ops::Range;

const LEN: usize = 17;

/// VIN characters as the case-insensitive flex class `[0-9A-HJ-NPR-Z]`.
static VC: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let u = b.to_ascii_uppercase();
        t[c] =
            b.is_ascii_digit() || (u.is_ascii_uppercase() && u != b'I' && u != b'O' && u != b'Q');
        c += 1;
    }
    t
};

fn delim(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t'
            | b'\r'
            | b'\n'
            | b':'
            | b','
            | b';'
            | b'|'
            | b'"'
            | b'\''
            | b'('
            | b')'
            | b'{'
            | b'}'
            | b'['
            | b']'
            | b'<'
            | b'>'
            | b'#'
            | b'.'
            | b'!'
            | b'?'
    )
}

/// Whether `buf[..v]` ends with `word` (case-insensitive); the start.
fn ends_with_ci(buf: &[u8], v: usize, word: &[u8]) -> Option<usize> {
    let s = v.checked_sub(word.len())?;
    buf.get(s..v)?.eq_ignore_ascii_case(word).then_some(s)
}

/// Whether a prefix keyword ends right at `v` (no separator).
fn keyword_before(buf: &[u8], v: usize) -> bool {
    for w in [
        &b"vin"[..],
        b"make",
        b"model",
        b"year",
        b"chassis",
        b"frame",
        b"serial",
    ] {
        if ends_with_ci(buf, v, w).is_some() {
            return true;
        }
    }
    // vehicle[ ]*id(entification)?[ ]*number
    let Some(mut i) = ends_with_ci(buf, v, b"number") else {
        return false;
    };
    while i > 0 && buf.get(i - 1) == Some(&b' ') {
        i -= 1;
    }
    let Some(j) = ends_with_ci(buf, i, b"identification").or_else(|| ends_with_ci(buf, i, b"id"))
    else {
        return false;
    };
    let mut k = j;
    while k > 0 && buf.get(k - 1) == Some(&b' ') {
        k -= 1;
    }
    ends_with_ci(buf, k, b"vehicle").is_some()
}

/// Transliteration for the check digit.
fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'H' => u32::from(c - b'A') + 1,
        b'J' => 1,
        b'K'..=b'N' => u32::from(c - b'K') + 2,
        b'P' => 7,
        b'R' => 9,
        b'S'..=b'Z' => u32::from(c - b'S') + 2,
        _ => return None,
    })
}

const WEIGHTS: [u32; LEN] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/// bulk_extractor's `valid_vin`.
pub fn valid(vin: &[u8]) -> bool {
    if vin.len() != LEN {
        return false;
    }
    // Characters: uppercase, no I/O/Q (value() rejects everything else).
    let mut sum = 0u32;
    for (i, &c) in vin.iter().enumerate() {
        let Some(v) = value(c) else { return false };
        if i != 8 {
            sum += v * WEIGHTS[i];
        }
    }
    let check = match sum % 11 {
        10 => b'X',
        d => b'0' + d as u8,
    };
    if vin[8] != check || vin[0] == b'0' {
        return false;
    }
    let year = vin[9];
    if !b"123456789ABCDEFGHJKLMNPRSTVWXY".contains(&year) {
        return false;
    }
    if year.is_ascii_digit() && !vin[11..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    if vin.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut same = 1;
    let mut seq = 0;
    for w in vin.windows(2) {
        if w[1] == w[0] {
            same += 1;
            if same > 4 {
                return false;
            }
        } else {
            same = 1;
        }
        if w[1].abs_diff(w[0]) == 1 {
            seq += 1;
            if seq > 5 {
                return false;
            }
        } else {
            seq = 0;
        }
    }
    true
}

/// The `vin` structure scanner.
pub fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let own = own.start.min(buf.len())..own.end.min(buf.len());
    let mut s = own.start;
    // Runs of 17+ VIN characters starting at or after s, found by testing
    // the 17th byte first (skipping 17 when it is not a VIN character).
    while s < own.end && s + LEN <= buf.len() {
        if !VC[usize::from(buf[s + LEN - 1])] {
            s += LEN;
            continue;
        }
        if let Some(k) = buf[s..s + LEN - 1]
            .iter()
            .rposition(|&b| !VC[usize::from(b)])
        {
            s += k + 1;
            continue;
        }
        // A run of at least 17 from s: its end, as long as the VIN (the
        // last 17) can start in `own`.
        let mut e = s + LEN;
        while e < buf.len() && VC[usize::from(buf[e])] {
            if e + 1 - LEN >= own.end {
                return;
            }
            e += 1;
        }
        let v = e - LEN;
        if v >= own.end {
            return;
        }
        let after = buf.get(e).is_some_and(|&b| delim(b) || b == b'$');
        let before = v > 0 && (delim(buf[v - 1]) || buf[v - 1] == b'^' || keyword_before(buf, v));
        if after && before && valid(&buf[v..e]) {
            let c0 = v.saturating_sub(CONTEXT);
            let c1 = (e + CONTEXT).min(buf.len());
            out.push(Record {
                recorder: "vin",
                pos: v,
                feature: buf[v..e].to_vec(),
                context: buf[c0..c1].to_vec(),
            });
        }
        s = e + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(buf: &[u8]) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        scan(buf, 0..buf.len(), &mut out);
        out.into_iter()
            .map(|r| (r.pos, String::from_utf8(r.feature).unwrap()))
            .collect()
    }

    #[test]
    fn check_digit() {
        for v in [
            "1HGBH41JXMN109186",
            "JH4DB1561NS000565",
            "5GZCZ43D13S812715",
            "1G1ZT53826F109149",
        ] {
            assert!(valid(v.as_bytes()), "{v}");
        }
        for v in [
            "1FAHP3K2XCL277509",
            "JN1CV6AP8BM550167",
            "1FTFW1ET5DFC10312",
            "1HGBH41JXMN109187",
        ] {
            assert!(!valid(v.as_bytes()), "{v}");
        }
        // Lowercase, I/O/Q, leading 0, bad year, digits after a digit year.
        assert!(!valid(b"1hgbh41jxmn109186"));
        assert!(!valid(b"1FAHP3Q2XCL277509"));
    }

    #[test]
    fn delimiters_and_prefixes() {
        assert_eq!(
            run(b"VIN: 1HGBH41JXMN109186\n"),
            vec![(5, "1HGBH41JXMN109186".into())]
        );
        assert_eq!(
            run(b"(1HGBH41JXMN109186)"),
            vec![(1, "1HGBH41JXMN109186".into())]
        );
        assert_eq!(
            run(b"make1HGBH41JXMN109186."),
            vec![(4, "1HGBH41JXMN109186".into())]
        );
        assert_eq!(
            run(b"VIN1HGBH41JXMN109186."),
            vec![(3, "1HGBH41JXMN109186".into())]
        );
        assert_eq!(
            run(b"Vehicle  identification number1HGBH41JXMN109186 "),
            vec![(30, "1HGBH41JXMN109186".into())]
        );
        assert_eq!(
            run(b"^1HGBH41JXMN109186$"),
            vec![(1, "1HGBH41JXMN109186".into())]
        );
        // No delimiter on one side, glued to hex, at the very end.
        assert!(run(b"x1HGBH41JXMN109186 ").is_empty());
        assert!(run(b" 1HGBH41JXMN109186x").is_empty());
        assert!(run(b"FFFFFFFF1HGBH41JXMN109186FFFFFFFF").is_empty());
        assert!(run(b" 1HGBH41JXMN109186").is_empty());
        assert!(run(b"1HGBH41JXMN109186 ").is_empty());
        // Two in a row share the delimiter.
        assert_eq!(run(b" JH4DB1561NS000565 5GZCZ43D13S812715 ").len(), 2);
    }

    #[test]
    fn context_is_16_each_side() {
        let buf = b"0123456789abcdefghij VIN 1HGBH41JXMN109186 0123456789abcdefghij";
        let mut out = Vec::new();
        scan(buf, 0..buf.len(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].context, &buf[9..9 + 16 + 17 + 16]);
    }
}
