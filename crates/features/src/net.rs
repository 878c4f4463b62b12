//! IPv4 and IPv6 addresses, Ethernet (MAC) addresses.

use super::text::{ALPHA, DIGIT, HEX, at, is};
use super::{Hit, Kind};
use std::net::Ipv6Addr;
use std::ops::Range;

const ALNUM: u16 = ALPHA | DIGIT;

/// One octet at `i`: 1-3 digits, 3-digit octets 100..=255 (bulk_extractor's
/// `INUM`); returns (value, end).
fn octet(buf: &[u8], i: usize) -> Option<(u32, usize)> {
    let mut e = i;
    while e < buf.len() && buf[e].is_ascii_digit() && e - i < 4 {
        e += 1;
    }
    let n = e - i;
    if n == 0 || n > 3 {
        return None;
    }
    let v = buf[i..e]
        .iter()
        .fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'));
    if v > 255 || (n == 3 && buf[i] == b'0') {
        return None;
    }
    Some((v, e))
}

/// Left context that marks a version number rather than an address: a
/// word `v`, `v.`, `ver`, `ver.`, `version`, `rv` just before (spaces, `:`
/// and `=` between), a comparison (`>=`, `<=`, `<<`), or one of
/// bulk_extractor's markers (`rsion`, `ion=`, `PSW/`, `flash=`, `stone=`,
/// `NSS`, `/2001,`, `TI_SZ`) in the 8 bytes before.
fn version_like(buf: &[u8], s: usize) -> bool {
    let ctx = &buf[s.saturating_sub(8)..s];
    const ANY: [&[u8]; 8] = [
        b"rsion", b"ion=", b"PSW/", b"flash=", b"stone=", b"NSS", b"/2001,", b"TI_SZ",
    ];
    if ANY.iter().any(|p| ctx.windows(p.len()).any(|w| w == *p)) {
        return true;
    }
    let mut e = s;
    while e > 0 && s - e < 4 && matches!(buf[e - 1], b' ' | b':' | b'=' | b'\t') {
        e -= 1;
    }
    let head = &buf[s.saturating_sub(16)..e];
    if head.ends_with(b">=") || head.ends_with(b"<=") || head.ends_with(b"<<") {
        return true;
    }
    for w in [&b"version"[..], b"ver.", b"ver", b"v.", b"v", b"rv"] {
        if head.len() >= w.len() && head[head.len() - w.len()..].eq_ignore_ascii_case(w) {
            let k = head.len() - w.len();
            if k == 0 || !head[k - 1].is_ascii_alphabetic() {
                return true;
            }
        }
    }
    false
}

/// Dotted-quad IPv4 addresses: four octets, not part of a longer dotted or
/// alphanumeric token, not a version number (bulk_extractor's context
/// rules), first octet not 0.
pub fn ipv4(buf: &[u8], own: Range<usize>, out: &mut Vec<Hit>) {
    let hi = (own.end + 4).min(buf.len());
    if own.start >= hi {
        return;
    }
    for rel in memchr::memchr_iter(b'.', &buf[own.start..hi]) {
        let p = own.start + rel;
        let mut s = p;
        while s > 0 && buf[s - 1].is_ascii_digit() && p - s < 4 {
            s -= 1;
        }
        if s == p || p - s > 3 || !own.contains(&s) {
            continue;
        }
        if let Some(e) = ipv4_at(buf, s) {
            out.push(Hit::new(Kind::Ipv4, s, e));
        }
    }
}

/// The address starting at `s`, if it is one.
pub fn ipv4_at(buf: &[u8], s: usize) -> Option<usize> {
    if s > 0 {
        let c = buf[s - 1];
        if is(c, ALNUM) || matches!(c, b'.' | b'-' | b'+' | b'_') {
            return None;
        }
    }
    let (a, mut i) = octet(buf, s)?;
    for _ in 0..3 {
        if buf.get(i) != Some(&b'.') {
            return None;
        }
        i = octet(buf, i + 1)?.1;
    }
    let e = i;
    match buf.get(e) {
        Some(&c) if is(c, ALNUM) || matches!(c, b'_' | b'-' | b'+') => return None,
        // "1.2.3.4.5", "1.2.3.4.com": a longer dotted token
        Some(b'.') if at(buf, e + 1, ALNUM) => return None,
        _ => {}
    }
    if a == 0 || version_like(buf, s) {
        return None;
    }
    Some(e)
}

fn v6char(c: u8) -> bool {
    is(c, HEX) || c == b':' || c == b'.'
}

/// IPv6 addresses: a run of hex digits, colons and dots that parses as an
/// address, has at least two colons, is delimited by non-alphanumerics and,
/// when compressed (`::`), has a group of three or more hex digits or an
/// embedded IPv4 address (so `A::B` in source code is not taken).
pub fn ipv6(buf: &[u8], own: Range<usize>, out: &mut Vec<Hit>) {
    let hi = (own.end + 48).min(buf.len());
    if own.start >= hi {
        return;
    }
    let mut next = own.start;
    for rel in memchr::memchr_iter(b':', &buf[own.start..hi]) {
        let p = own.start + rel;
        if p < next {
            continue;
        }
        let mut r = p;
        while r > 0 && p - r < 64 && v6char(buf[r - 1]) {
            r -= 1;
        }
        let mut e = p + 1;
        while e < buf.len() && e - p < 64 && v6char(buf[e]) {
            e += 1;
        }
        next = e;
        if let Some((s, t)) = ipv6_in(buf, r, e)
            && own.contains(&s)
        {
            out.push(Hit::new(Kind::Ipv6, s, t));
        }
    }
}

fn ipv6_in(buf: &[u8], mut r: usize, mut e: usize) -> Option<(usize, usize)> {
    if e - r > 45 {
        return None;
    }
    while r < e && buf[r] == b'.' {
        r += 1;
    }
    while e > r && buf[e - 1] == b'.' {
        e -= 1;
    }
    if e - r >= 2 && buf[r] == b':' && buf[r + 1] != b':' {
        r += 1;
    }
    if e - r >= 2 && buf[e - 1] == b':' && buf[e - 2] != b':' {
        e -= 1;
    }
    if e - r < 3 {
        return None;
    }
    if r > 0 && (is(buf[r - 1], ALNUM) || buf[r - 1] == b'_') {
        return None;
    }
    if e < buf.len() && (is(buf[e], ALNUM) || buf[e] == b'_') {
        return None;
    }
    let s = &buf[r..e];
    if s.iter().filter(|&&c| c == b':').count() < 2 {
        return None;
    }
    let txt = std::str::from_utf8(s).ok()?;
    let _: Ipv6Addr = txt.parse().ok()?;
    if txt.contains("::") {
        let groups: Vec<&str> = txt.split(':').filter(|g| !g.is_empty()).collect();
        let long = groups.iter().any(|g| g.len() >= 3);
        if !(long || txt == "::1" || groups.len() >= 4) {
            return None;
        }
        // short forms ("::1", "fe80::1") only between text delimiters
        let delim = |c: Option<&u8>| {
            c.is_none_or(|c| {
                matches!(
                    c,
                    b' ' | b'\t'
                        | b'\r'
                        | b'\n'
                        | b'['
                        | b']'
                        | b'('
                        | b')'
                        | b'"'
                        | b'\''
                        | b','
                        | b';'
                        | b'/'
                        | b'='
                        | b'<'
                        | b'>'
                        | b'%'
                        | b'.'
                )
            })
        };
        if groups.len() < 4
            && !(delim(r.checked_sub(1).and_then(|i| buf.get(i))) && delim(buf.get(e)))
        {
            return None;
        }
    }
    Some((r, e))
}

/// Ethernet addresses `HH:HH:HH:HH:HH:HH` (and `HH-HH-…` with at least one
/// hex letter), delimited by non-alphanumerics, with bulk_extractor's
/// checks: not all zeros, not `00:11:22:33:44:55`, at least four distinct
/// groups.
pub fn ether(buf: &[u8], own: Range<usize>, out: &mut Vec<Hit>) {
    let lo = own.start + 2;
    let hi = (own.end + 2).min(buf.len());
    if lo >= hi {
        return;
    }
    for rel in memchr::memchr2_iter(b':', b'-', &buf[lo..hi]) {
        let p = lo + rel;
        let s = p - 2;
        if let Some(e) = ether_at(buf, s) {
            out.push(Hit::new(Kind::Ether, s, e));
        }
    }
}

fn ether_at(buf: &[u8], s: usize) -> Option<usize> {
    let e = s + 17;
    if e > buf.len() {
        return None;
    }
    let w = &buf[s..e];
    let sep = w[2];
    for g in 0..6 {
        let i = g * 3;
        if !is(w[i], HEX) || !is(w[i + 1], HEX) || (g < 5 && w[i + 2] != sep) {
            return None;
        }
    }
    let bad = |c: u8| is(c, ALNUM) || c == b':' || c == sep;
    if (s > 0 && bad(buf[s - 1])) || (e < buf.len() && bad(buf[e])) {
        return None;
    }
    if w == b"00:00:00:00:00:00" || w == b"00:11:22:33:44:55" {
        return None;
    }
    let mut groups: Vec<[u8; 2]> = (0..6).map(|g| [w[g * 3], w[g * 3 + 1]]).collect();
    groups.sort_unstable();
    groups.dedup();
    if groups.len() < 4 {
        return None;
    }
    if sep == b'-' && !w.iter().any(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::hit_texts as run;

    #[test]
    fn ipv4_examples() {
        assert_eq!(run(ipv4, "from 10.1.2.3 port"), ["10.1.2.3"]);
        assert_eq!(run(ipv4, "(192.168.0.254)"), ["192.168.0.254"]);
        assert_eq!(run(ipv4, "go to 8.8.8.8."), ["8.8.8.8"]);
        assert_eq!(run(ipv4, "1.2.3.4.5"), Vec::<String>::new());
        assert_eq!(run(ipv4, "256.1.1.1 "), Vec::<String>::new());
        assert_eq!(run(ipv4, "version 1.2.3.4 "), Vec::<String>::new());
        assert_eq!(run(ipv4, "Firefox rv:1.9.2.8 "), Vec::<String>::new());
        assert_eq!(run(ipv4, "tool v1.2.3.4 "), Vec::<String>::new());
        assert_eq!(
            run(ipv4, "Received: from srv (198.106.104.163)"),
            ["198.106.104.163"]
        );
        assert_eq!(run(ipv4, "connect to server 10.0.0.1 now"), ["10.0.0.1"]);
        assert_eq!(run(ipv4, "x1.2.3.4"), Vec::<String>::new());
        assert_eq!(run(ipv4, "0.1.2.3 "), Vec::<String>::new());
        assert_eq!(run(ipv4, "1.2.3.4a"), Vec::<String>::new());
        assert_eq!(run(ipv4, "a 010.1.1.1 "), Vec::<String>::new());
    }

    #[test]
    fn ipv6_examples() {
        assert_eq!(run(ipv6, "addr 2001:db8::1 up"), ["2001:db8::1"]);
        assert_eq!(
            run(ipv6, "fe80::344a:5cfd:d344:4b51\n"),
            ["fe80::344a:5cfd:d344:4b51"]
        );
        assert_eq!(
            run(ipv6, "[2001:0db8:e4e2:f05f:d7de:d788:72d6:887e]"),
            ["2001:0db8:e4e2:f05f:d7de:d788:72d6:887e"]
        );
        assert_eq!(run(ipv6, "::1 "), ["::1"]);
        assert_eq!(run(ipv6, "::ffff:10.0.0.1."), ["::ffff:10.0.0.1"]);
        assert_eq!(run(ipv6, "std::vector"), Vec::<String>::new());
        assert_eq!(run(ipv6, "Foo::Bar A::B"), Vec::<String>::new());
        assert_eq!(run(ipv6, "12:34:56"), Vec::<String>::new());
        assert_eq!(run(ipv6, "00:1a:2b:3c:4d:5e"), Vec::<String>::new());
    }

    #[test]
    fn ether_examples() {
        assert_eq!(
            run(ether, "lease for 00:1a:2b:ae:ba:cd via"),
            ["00:1a:2b:ae:ba:cd"]
        );
        assert_eq!(run(ether, "MAC 3C-D9-2B-01-02-03."), ["3C-D9-2B-01-02-03"]);
        assert_eq!(run(ether, "00:00:00:00:00:00"), Vec::<String>::new());
        assert_eq!(run(ether, "00:11:22:33:44:55"), Vec::<String>::new());
        assert_eq!(run(ether, "11:11:11:11:22:33"), Vec::<String>::new());
        assert_eq!(run(ether, "12-34-56-78-90-12"), Vec::<String>::new());
        assert_eq!(run(ether, "a00:1a:2b:ae:ba:cd"), Vec::<String>::new());
        assert_eq!(run(ether, "00:1a:2b:ae:ba:cd:ef"), Vec::<String>::new());
    }
}
