//! Card numbers, IBANs, phone numbers and bitcoin addresses: all anchored
//! on runs of ASCII digits.

#[cfg(test)]
use super::text::digit_runs;
use super::text::{ALPHA, B58, DIGIT, UPPER, at, is, starts_with_ci};
use super::validate;
use super::{Hit, Kind};
use std::ops::Range;

const ALNUM: u16 = ALPHA | DIGIT;

/// Digit groups separated by one `sep`, starting with the run `[s, e)`:
/// up to `max` groups, as (start, end) pairs.
fn groups(buf: &[u8], s: usize, e: usize, sep: u8, max: usize, out: &mut Vec<(usize, usize)>) {
    out.clear();
    out.push((s, e));
    let mut i = e;
    while out.len() < max + 1 && buf.get(i) == Some(&sep) && at(buf, i + 1, DIGIT) {
        let gs = i + 1;
        let mut ge = gs;
        while ge < buf.len() && buf[ge].is_ascii_digit() {
            ge += 1;
        }
        out.push((gs, ge));
        i = ge;
    }
}

const CCN_GROUPINGS: &[&[usize]] = &[
    &[4, 4, 4, 4],
    &[4, 4, 4, 4, 3],
    &[4, 6, 5],
    &[4, 6, 4],
    &[4, 4, 4, 3],
    &[4, 4, 4, 2],
    &[4, 4, 4, 1],
];

/// Whether the digit run `buf[s..e]` can anchor a finding of
/// [`ccn_in`], [`iban_in`], [`phone_in`] or [`bitcoin_in`]: the union of
/// the first tests each applies to a run (kept in step with them; the
/// tests compare every scanner over all runs and over these). Most runs
/// of binary data are one or two digits that none of them can use.
#[inline]
pub fn run_may_anchor(buf: &[u8], s: usize, e: usize) -> bool {
    let n = e - s;
    let first = buf[s];
    // ccn: a 4-digit group or 13-19 digits; bitcoin: `1…`, `3…`, `bc1…`;
    // phone: `0X` groups or a 10-digit national number; iban: two capitals
    // before at least two digits.
    n == 4
        || (13..=19).contains(&n)
        || first == b'1'
        || first == b'3'
        || (first == b'0' && (n == 2 || n == 10))
        || (n >= 2 && s >= 2 && is(buf[s - 2], UPPER) && is(buf[s - 1], UPPER))
}

/// The digit runs of `own` (plus the two bytes after) that may anchor a
/// finding, as the feature scanner lists them.
#[cfg(test)]
fn anchor_runs(buf: &[u8], own: Range<usize>) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    digit_runs(buf, own.start, (own.end + 2).min(buf.len()), |s, e| {
        if run_may_anchor(buf, s, e) {
            runs.push((s, e))
        }
    });
    runs
}

/// Payment card numbers: 13-19 digits written plain, or grouped with
/// single spaces or dashes (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4, 4-4-4-3,
/// 4-4-4-2, 4-4-4-1); Luhn-valid, a brand issuing that prefix and length,
/// not delimited by letters, dots or further digit groups.
pub fn ccn_in(buf: &[u8], own: Range<usize>, runs: &[(usize, usize)], out: &mut Vec<Hit>) {
    let mut g = Vec::with_capacity(8);
    let mut digits = Vec::with_capacity(24);
    for &(s, e) in runs.iter().filter(|r| (own.start..own.end).contains(&r.0)) {
        let n = e - s;
        if n != 4 && !(13..=19).contains(&n) {
            continue;
        }
        if s > 0 {
            let c = buf[s - 1];
            if is(c, ALPHA) || matches!(c, b'.' | b'-' | b'+' | b'_') {
                continue;
            }
        }
        if n >= 13 {
            if tail_ok(buf, e, 0) && validate::ccn_valid(&buf[s..e]) {
                out.push(Hit::new(Kind::Ccn, s, e));
            }
            continue;
        }
        let Some(&sep) = buf.get(e) else { continue };
        if sep != b' ' && sep != b'-' {
            continue;
        }
        groups(buf, s, e, sep, 5, &mut g);
        let lens: Vec<usize> = g.iter().map(|(a, b)| b - a).collect();
        if !CCN_GROUPINGS.contains(&lens.as_slice()) {
            continue;
        }
        let end = g[g.len() - 1].1;
        if !tail_ok(buf, end, sep) {
            continue;
        }
        digits.clear();
        for &(a, b) in &g {
            digits.extend_from_slice(&buf[a..b]);
        }
        if validate::ccn_valid(&digits) {
            out.push(Hit::new(Kind::Ccn, s, end));
        }
    }
}

/// [`ccn_in`] computing its own digit runs.
#[cfg(test)]
pub fn ccn(buf: &[u8], own: Range<usize>, out: &mut Vec<Hit>) {
    let runs = anchor_runs(buf, own.clone());
    ccn_in(buf, own, &runs, out);
}

/// After a number: not a letter or '_', not a decimal or a dashed
/// continuation, not one more group with the same separator.
fn tail_ok(buf: &[u8], e: usize, sep: u8) -> bool {
    match buf.get(e) {
        None => true,
        Some(&c) if is(c, ALPHA) || c == b'_' => false,
        Some(&c) if (c == b'.' || c == b'-' || (sep != 0 && c == sep)) && at(buf, e + 1, DIGIT) => {
            false
        }
        _ => true,
    }
}

/// IBANs: a country code with IBANs, two check digits, the country's BBAN
/// length in upper-case letters and digits, compact or in groups of four
/// separated by single spaces; mod-97 verified.
pub fn iban_in(buf: &[u8], own: Range<usize>, runs: &[(usize, usize)], out: &mut Vec<Hit>) {
    let mut compact = Vec::with_capacity(40);
    let lo = own.start + 2;
    let hi = own.end + 2;
    'runs: for &(r, e) in runs.iter().filter(|r| (lo..hi).contains(&r.0)) {
        if e - r < 2 {
            continue;
        }
        let s = r - 2;
        if !is(buf[s], UPPER) || !is(buf[s + 1], UPPER) || (s > 0 && is(buf[s - 1], ALNUM)) {
            continue;
        }
        let Some(len) = validate::iban_length(&buf[s..s + 2]) else {
            continue;
        };
        let ok = |c: u8| c.is_ascii_digit() || c.is_ascii_uppercase();
        // compact
        if s + len <= buf.len()
            && buf[s..s + len].iter().all(|&c| ok(c))
            && !at(buf, s + len, ALNUM)
            && validate::iban_valid(&buf[s..s + len])
        {
            out.push(Hit::new(Kind::Iban, s, s + len));
            continue;
        }
        // groups of four
        compact.clear();
        let mut i = s;
        loop {
            let g = i;
            while i < buf.len() && i - g < 4 && compact.len() < len && ok(buf[i]) {
                compact.push(buf[i]);
                i += 1;
            }
            if compact.len() == len {
                break;
            }
            if i - g != 4 || buf.get(i) != Some(&b' ') || !buf.get(i + 1).is_some_and(|&c| ok(c)) {
                continue 'runs;
            }
            i += 1;
        }
        if at(buf, i, ALNUM) || i - s == len {
            continue;
        }
        if validate::iban_valid(&compact) {
            out.push(Hit::new(Kind::Iban, s, i));
        }
    }
}

/// [`iban_in`] computing its own digit runs.
#[cfg(test)]
pub fn iban(buf: &[u8], own: Range<usize>, out: &mut Vec<Hit>) {
    let runs = anchor_runs(buf, own.clone());
    iban_in(buf, own, &runs, out);
}

/// Phone numbers: E.164 (`+` country code and number, compact or in groups
/// separated by single spaces, dots or dashes; known country code and
/// length), and French national numbers (`0X XX XX XX XX` with spaces, dots
/// or dashes, or a compact mobile `06…`/`07…`).
pub fn phone_in(buf: &[u8], own: Range<usize>, runs: &[(usize, usize)], out: &mut Vec<Hit>) {
    let mut g = Vec::with_capacity(16);
    let mut digits = Vec::with_capacity(20);
    for rel in memchr::memchr_iter(b'+', &buf[own.start..own.end.min(buf.len())]) {
        let p = own.start + rel;
        if p > 0 && (is(buf[p - 1], ALNUM) || matches!(buf[p - 1], b'+' | b'_' | b'.' | b'-')) {
            continue;
        }
        if !at(buf, p + 1, DIGIT) || buf[p + 1] == b'0' {
            continue;
        }
        let s = p + 1;
        let mut e = s;
        while e < buf.len() && buf[e].is_ascii_digit() && e - s < 16 {
            e += 1;
        }
        let sep = buf.get(e).copied().unwrap_or(0);
        if matches!(sep, b' ' | b'.' | b'-') && at(buf, e + 1, DIGIT) {
            groups(buf, s, e, sep, 8, &mut g);
            if g[1..].iter().all(|(a, b)| b - a <= 4) {
                digits.clear();
                for &(a, b) in &g {
                    digits.extend_from_slice(&buf[a..b]);
                }
                let end = g[g.len() - 1].1;
                if tail_ok(buf, end, sep) && validate::e164_valid(&digits) {
                    out.push(Hit::new(Kind::Phone, p, end));
                    continue;
                }
            }
        }
        if tail_ok(buf, e, 0) && !at(buf, e, DIGIT) && validate::e164_valid(&buf[s..e]) {
            out.push(Hit::new(Kind::Phone, p, e));
        }
    }
    for &(s, e) in runs.iter().filter(|r| (own.start..own.end).contains(&r.0)) {
        if buf[s] != b'0' || !at(buf, s + 1, DIGIT) || buf[s + 1] == b'0' {
            continue;
        }
        if s > 0
            && (is(buf[s - 1], ALNUM)
                || matches!(buf[s - 1], b'+' | b'.' | b'-' | b'/' | b'_' | b':'))
        {
            continue;
        }
        let n = e - s;
        if n == 10 && matches!(buf[s + 1], b'6' | b'7') {
            if tail_ok(buf, e, b' ') {
                out.push(Hit::new(Kind::Phone, s, e));
            }
            continue;
        }
        if n != 2 {
            continue;
        }
        let Some(&sep) = buf.get(e) else { continue };
        if !matches!(sep, b' ' | b'.' | b'-') {
            continue;
        }
        groups(buf, s, e, sep, 4, &mut g);
        if g.len() != 5 || g.iter().any(|(a, b)| b - a != 2) {
            continue;
        }
        let end = g[4].1;
        if tail_ok(buf, end, sep) {
            out.push(Hit::new(Kind::Phone, s, end));
        }
    }
}

/// [`phone_in`] computing its own digit runs.
#[cfg(test)]
pub fn phone(buf: &[u8], own: Range<usize>, out: &mut Vec<Hit>) {
    let runs = anchor_runs(buf, own.clone());
    phone_in(buf, own, &runs, out);
}

/// Bitcoin addresses: base58check P2PKH (`1…`) and P2SH (`3…`) with the
/// double-SHA-256 checksum verified, and segwit `bc1…` addresses with the
/// bech32 / bech32m checksum verified.
pub fn bitcoin_in(buf: &[u8], own: Range<usize>, runs: &[(usize, usize)], out: &mut Vec<Hit>) {
    let lo = own.start + 2;
    let hi = own.end + 2;
    for &(r, _e) in runs
        .iter()
        .filter(|r| (own.start.min(lo)..hi).contains(&r.0))
    {
        let c = buf[r];
        if (c == b'1' || c == b'3') && own.contains(&r) && !(r > 0 && is(buf[r - 1], ALNUM)) {
            let mut j = r;
            while j < buf.len() && j - r <= 35 && is(buf[j], B58) {
                j += 1;
            }
            if (26..=35).contains(&(j - r))
                && !at(buf, j, ALNUM)
                && validate::bitcoin_base58(&buf[r..j]).is_some()
            {
                out.push(Hit::new(Kind::Bitcoin, r, j));
                continue;
            }
        }
        if c == b'1' && r >= 2 && starts_with_ci(buf, r - 2, b"bc") && own.contains(&(r - 2)) {
            let s = r - 2;
            if s > 0 && is(buf[s - 1], ALNUM) {
                continue;
            }
            let mut j = r + 1;
            while j < buf.len() && j - s <= 90 && validate::is_bech32_char(buf[j]) {
                j += 1;
            }
            if !at(buf, j, ALNUM) && validate::bitcoin_bech32(&buf[s..j]).is_some() {
                out.push(Hit::new(Kind::Bitcoin, s, j));
            }
        }
    }
}

/// [`bitcoin_in`] computing its own digit runs.
#[cfg(test)]
pub fn bitcoin(buf: &[u8], own: Range<usize>, out: &mut Vec<Hit>) {
    let runs = anchor_runs(buf, own.clone());
    bitcoin_in(buf, own, &runs, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::hit_texts as run;

    /// Every scanner anchored on digit runs finds the same over all the
    /// runs as over those [`run_may_anchor`] keeps: examples of each
    /// (valid and not), among runs of every length and pseudo-random bytes.
    #[test]
    fn anchor_filter_keeps_every_finding() {
        let mut buf = Vec::new();
        for t in [
            "Card: 4111111111111111 exp, 4111 1111 1111 1111. 3782 822463 10005 ",
            "IBAN DE89370400440532013000. FR14 2004 1010 0505 0001 3M02 606 GB82 WEST 1234 5698 7654 32",
            "Call +33612345678, +33 6 12 34 56 78, 06 12 34 56 78 or 0612345678; 01.20.18.22.15 ",
            "17NdbrSGoUotzeGCcMMCqnFkEvLymoou9j 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy ",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4 1111111114oLvT2 ",
        ] {
            buf.extend_from_slice(t.as_bytes());
        }
        for n in 1..=25 {
            for d in [b'0', b'1', b'3', b'4', b'9'] {
                buf.extend(std::iter::repeat_n(d, n));
                buf.push(b' ');
                buf.extend_from_slice(b"AB");
                buf.extend(std::iter::repeat_n(d, n));
                buf.push(b'-');
            }
        }
        let mut x = 0x2545F4914F6CDD1Du64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly digits, separators and capitals.
            buf.push(b"0123456789 -.+ABCDEFbc13"[(x % 24) as usize]);
        }
        let own = 0..buf.len() - 2;
        let mut all = Vec::new();
        digit_runs(&buf, own.start, own.end + 2, |s, e| all.push((s, e)));
        let kept = anchor_runs(&buf, own.clone());
        assert!(kept.len() < all.len());
        type RunFn = fn(&[u8], Range<usize>, &[(usize, usize)], &mut Vec<Hit>);
        for (name, f) in [
            ("ccn", ccn_in as RunFn),
            ("iban", iban_in),
            ("phone", phone_in),
            ("bitcoin", bitcoin_in),
        ] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            f(&buf, own.clone(), &all, &mut a);
            f(&buf, own.clone(), &kept, &mut b);
            assert!(!a.is_empty(), "{name}: nothing found");
            assert_eq!(a, b, "{name}");
        }
    }

    #[test]
    fn ccn_examples() {
        assert_eq!(run(ccn, "Card: 4111111111111111 exp"), ["4111111111111111"]);
        assert_eq!(
            run(ccn, "Card 4111 1111 1111 1111."),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(run(ccn, "x 4111-1111-1111-1111\n"), ["4111-1111-1111-1111"]);
        assert_eq!(run(ccn, ">378282246310005<"), ["378282246310005"]);
        assert_eq!(run(ccn, "3782 822463 10005 "), ["3782 822463 10005"]);
        assert_eq!(
            run(ccn, "4111 1111 1111 1111 1111 1111"),
            Vec::<String>::new()
        );
        assert_eq!(run(ccn, "4111111111111112"), Vec::<String>::new());
        assert_eq!(run(ccn, "A4111111111111111"), Vec::<String>::new());
        assert_eq!(run(ccn, "3.4111111111111111"), Vec::<String>::new());
        assert_eq!(run(ccn, "4111111111111111.5"), Vec::<String>::new());
        assert_eq!(run(ccn, "\"x\",4111111111111111,42"), ["4111111111111111"]);
    }

    #[test]
    fn iban_examples() {
        assert_eq!(
            run(iban, "IBAN DE89370400440532013000."),
            ["DE89370400440532013000"]
        );
        assert_eq!(
            run(iban, "to FR14 2004 1010 0505 0001 3M02 606 now"),
            ["FR14 2004 1010 0505 0001 3M02 606"]
        );
        assert_eq!(
            run(iban, "GB82 WEST 1234 5698 7654 32\n"),
            ["GB82 WEST 1234 5698 7654 32"]
        );
        assert_eq!(run(iban, "DE89370400440532013001"), Vec::<String>::new());
        assert_eq!(run(iban, "XDE89370400440532013000"), Vec::<String>::new());
        assert_eq!(run(iban, "DE893704004405320130000"), Vec::<String>::new());
        // cut short, or not in groups of four: no IBAN (and no endless loop)
        assert_eq!(run(iban, "DE89 3704 0044 end"), Vec::<String>::new());
        assert_eq!(run(iban, "GB12abc GB12 ABCD 12"), Vec::<String>::new());
        assert_eq!(run(iban, "FR76 30006"), Vec::<String>::new());
    }

    #[test]
    fn phone_examples() {
        assert_eq!(run(phone, "Call +33612345678 now"), ["+33612345678"]);
        assert_eq!(
            run(phone, "Tel: +33 6 12 34 56 78\n"),
            ["+33 6 12 34 56 78"]
        );
        assert_eq!(run(phone, "+1 415 555 0123"), ["+1 415 555 0123"]);
        assert_eq!(run(phone, "+447700900123,"), ["+447700900123"]);
        assert_eq!(run(phone, "Mobile: 06 12 34 56 78\n"), ["06 12 34 56 78"]);
        assert_eq!(run(phone, "01.20.18.22.15 "), ["01.20.18.22.15"]);
        assert_eq!(run(phone, "0612345678 "), ["0612345678"]);
        assert_eq!(run(phone, "C++ 3 +3"), Vec::<String>::new());
        assert_eq!(run(phone, "06 12 34 56 78 90"), Vec::<String>::new());
        assert_eq!(run(phone, "x+33612345678"), Vec::<String>::new());
        assert_eq!(run(phone, "+0612345678"), Vec::<String>::new());
    }

    #[test]
    fn bitcoin_examples() {
        assert_eq!(
            run(bitcoin, "\n17NdbrSGoUotzeGCcMMCqnFkEvLymoou9j\n"),
            ["17NdbrSGoUotzeGCcMMCqnFkEvLymoou9j"]
        );
        assert_eq!(
            run(bitcoin, "\"1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i\""),
            ["1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i"]
        );
        assert_eq!(run(bitcoin, "1111111114oLvT2 "), Vec::<String>::new());
        assert_eq!(
            run(bitcoin, "pay bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4."),
            ["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"]
        );
        assert_eq!(
            run(bitcoin, "xbc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            Vec::<String>::new()
        );
        assert_eq!(
            run(bitcoin, "a1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i"),
            Vec::<String>::new()
        );
    }
}
