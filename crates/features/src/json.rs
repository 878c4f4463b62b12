//! bulk_extractor's `json` scanner (`scan_json.cpp`): JSON objects and
//! arrays found in raw data, written to `json.txt`.
//!
//! # Format (bulk_extractor 2.x)
//!
//! One line per JSON text with at least [`MIN_COMMAS`] (2) commas outside
//! strings:
//! the position of its opening `{` or `[`, the JSON text itself as the
//! feature, and the lowercase hex SHA-1 of that text as the context, e.g.
//! (`src/test_be.cpp`, `test_json.txt`):
//!
//! ```text
//! (columns are tab-separated)
//! 0    [{"1": "one@company.com"}, {"2": "two@company.com"}, {"3": "two@company.com"}]    ef2b5d7ee21e14eeebb5623784f73724218ee5dd
//! ```
//!
//! # Recognition
//!
//! A candidate is a `{` or `[` followed by one of `0123456789.-{[`, a
//! space, tab, CR, LF or `"`. From it, JSON.org's `JSON_checker` automaton
//! (as in bulk_extractor: nesting bounded by a 256-entry stack, bytes ≥
//! 0x80 accepted anywhere inside strings) reads byte by byte until it
//! rejects a byte or the outermost value closes. bulk_extractor then
//! resumes its search after the byte where the checker stopped — so a
//! closed JSON text hides the objects nested in it, and a rejected one
//! hides the candidates it read through. A checker that reaches the end of
//! the data without deciding consumes nothing.
//!
//! # Deviations
//!
//! * A JSON text is at most [`MAX_LEN`] bytes (59 KiB): the checker
//!   stops reading there as bulk_extractor stops at the end of its 16 MiB
//!   page + margin (so it consumes nothing).
//! * Which candidates are hidden by an earlier one is decided from at most
//!   [`BEFORE`] (1 KiB) before the candidate: bulk_extractor's left-to-right
//!   scan is replayed from there ([`chain`]). A chain of rejected or
//!   accepted texts reaching further back than that may, rarely, make this
//!   report a text bulk_extractor hides (never the other way round when the
//!   replay starts outside any structure).

use crate::records::{BEFORE, Record, WINDOW};
use std::ops::Range;

/// Fewest commas (outside strings) a reported JSON text has. The 1.x
/// source says "more than 2", but bulk_extractor 2.x's own test
/// (`src/test_be.cpp`, `test_json.txt`) expects a two-comma array to be
/// reported; 2 is the threshold consistent with both of its tests.
pub const MIN_COMMAS: u32 = 2;

/// The longest JSON text (and the furthest the checker reads).
pub const MAX_LEN: usize = WINDOW - BEFORE;

/// Bytes that may follow the opening bracket of a candidate.
fn second_ok(b: u8) -> bool {
    matches!(
        b,
        b'0'..=b'9' | b'.' | b'-' | b'{' | b'[' | b' ' | b'\t' | b'\n' | b'\r' | b'"'
    )
}

/// Positions of the candidates in `buf[range]`.
fn candidates(buf: &[u8], range: Range<usize>) -> Vec<usize> {
    let mut out = Vec::new();
    let end = range.end.min(buf.len());
    let Some(hay) = buf.get(range.start..end) else {
        return out;
    };
    for i in memchr::memchr2_iter(b'{', b'[', hay) {
        let p = range.start + i;
        if buf.get(p + 1).is_some_and(|&b| second_ok(b)) {
            out.push(p);
        }
    }
    out
}

/// bulk_extractor's left-to-right scan with skipping, made exact per
/// candidate from a bounded look-back.
///
/// `cands` are every candidate position from `own.start - BEFORE`
/// (clamped) to `own.end`, sorted. `eval(q)` decides about the candidate at
/// `q` reading only `buf[q .. q + MAX_LEN]`: the position from which the
/// search resumes (candidates before it are hidden) and what to report.
/// Returns what the reached candidates in `own` report, in order.
///
/// A candidate `p` is reached when the scan started at its own look-back
/// start (`p - BEFORE`, clamped to the buffer, which is the same for every
/// shard plan) arrives at `p` rather than skipping it. Chains started at
/// different points merge for good at the first candidate both reach, so
/// each `p` only replays until it meets the chain of the whole range.
pub(crate) fn chain<T>(
    own: Range<usize>,
    cands: &[usize],
    mut eval: impl FnMut(usize) -> (usize, Option<T>),
) -> Vec<(usize, T)> {
    let n = cands.len();
    let mut memo: Vec<Option<(usize, Option<T>)>> = (0..n).map(|_| None).collect();
    // Index of the first candidate at or after a position.
    let first_at = |x: usize| cands.partition_point(|&c| c < x);
    // The same, searching forward from index `k` (galloping: the answer
    // is usually a few candidates on).
    let first_from = |k: usize, x: usize| {
        let mut lo = k;
        let mut step = 1;
        while lo + step < n && cands[lo + step] < x {
            lo += step;
            step *= 2;
        }
        let hi = (lo + step).min(n);
        lo + cands[lo..hi].partition_point(|&c| c < x)
    };
    // Decides about the candidate at index `i` once.
    let mut fill = |i: usize, memo: &mut Vec<Option<(usize, Option<T>)>>| {
        if memo[i].is_none() {
            memo[i] = Some(eval(cands[i]));
        }
    };
    // The candidate the scan reaches after the one at index `i`.
    let mut next = |i: usize, memo: &mut Vec<Option<(usize, Option<T>)>>| -> usize {
        fill(i, memo);
        let resume = memo[i].as_ref().map_or(cands[i] + 1, |m| m.0);
        first_from(i + 1, resume)
    };
    // The chain started at the range's look-back start.
    let mut on_main = vec![false; n];
    let mut i = first_at(own.start.saturating_sub(BEFORE));
    while i < n && cands[i] < own.end {
        on_main[i] = true;
        i = next(i, &mut memo);
    }
    let mut out = Vec::new();
    let mut back = first_at(own.start.saturating_sub(BEFORE));
    for p in first_at(own.start)..n {
        if cands[p] >= own.end {
            break;
        }
        // Replay from p's own look-back start until it meets the main
        // chain or passes p.
        let start = cands[p].saturating_sub(BEFORE);
        while cands[back] < start {
            back += 1;
        }
        let mut j = back;
        let reached = loop {
            if j == p {
                break true;
            }
            if j > p {
                break false;
            }
            if on_main[j] {
                break on_main[p];
            }
            j = next(j, &mut memo);
        };
        if reached {
            next(p, &mut memo);
            if let Some((_, Some(t))) = memo[p].take() {
                out.push((cands[p], t));
            }
        }
    }
    out
}

/// How far [`Next`] searches beyond what a query needs.
const AHEAD: usize = 1 << 20;

/// The first match at or after a position, remembered between queries
/// so that many nearby candidates share one search (candidates come
/// roughly in increasing order).
pub(crate) struct Next {
    /// A search covered `from..to` and found `at` (or nothing).
    from: usize,
    to: usize,
    at: Option<usize>,
    len: usize,
}

impl Next {
    /// For matches `len` bytes long.
    pub(crate) fn new(len: usize) -> Self {
        Next {
            from: 1,
            to: 0,
            at: None,
            len,
        }
    }

    /// The first match lying wholly in `buf[q..lim]`; `search(hay)` gives
    /// the first match's index in `hay`.
    pub(crate) fn find(
        &mut self,
        buf: &[u8],
        q: usize,
        lim: usize,
        search: impl Fn(&[u8]) -> Option<usize>,
    ) -> Option<usize> {
        let lim = lim.min(buf.len());
        if self.from <= q {
            match self.at {
                Some(a) if a >= q => return (a + self.len <= lim).then_some(a),
                None if lim <= self.to => return None,
                _ => {}
            }
        }
        // Search ahead for the queries to come; the answer only depends on
        // `buf[q..lim]` all the same.
        let to = lim.max(q.saturating_add(AHEAD)).min(buf.len());
        let hay = buf.get(q..to)?;
        self.from = q;
        self.to = to;
        self.at = search(hay).map(|i| q + i);
        self.at.filter(|&a| a + self.len <= lim)
    }
}

/// Modes on the checker's stack.
const M_ARRAY: u8 = 0;
const M_DONE: u8 = 1;
const M_KEY: u8 = 2;
const M_OBJECT: u8 = 3;
const STACK: usize = 256;

/// Checker states.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum S {
    Go,
    Ok,
    Ob,
    Ke,
    Co,
    Va,
    Ar,
    St,
    Es,
    U1,
    U2,
    U3,
    U4,
    Mi,
    Ze,
    In,
    Fr,
    E1,
    E2,
    E3,
    T1,
    T2,
    T3,
    F1,
    F2,
    F3,
    F4,
    N1,
    N2,
    N3,
}

/// JSON.org's JSON_checker, as bulk_extractor runs it.
struct Checker {
    state: S,
    /// The mode stack, two bits an entry (cheap to set up per candidate).
    stack: [u64; STACK / 32],
    top: usize,
    commas: u32,
}

impl Checker {
    fn new() -> Self {
        let mut c = Checker {
            state: S::Go,
            stack: [0; STACK / 32],
            top: 0,
            commas: 0,
        };
        c.set(0, M_DONE);
        c
    }

    fn mode(&self) -> u8 {
        ((self.stack[self.top / 32] >> (2 * (self.top % 32))) & 3) as u8
    }

    fn set(&mut self, i: usize, m: u8) {
        let w = &mut self.stack[i / 32];
        let sh = 2 * (i % 32);
        *w = (*w & !(3 << sh)) | (u64::from(m) << sh);
    }

    fn push(&mut self, m: u8) -> Option<()> {
        if self.top + 1 >= STACK {
            return None;
        }
        self.top += 1;
        self.set(self.top, m);
        Some(())
    }

    fn pop(&mut self, m: u8) -> Option<()> {
        // `m` is never MODE_DONE, which stays at the bottom of the stack.
        if self.mode() != m {
            return None;
        }
        self.top = self.top.checked_sub(1)?;
        Some(())
    }

    /// Whether the outermost value has just closed.
    fn done(&self) -> bool {
        self.state == S::Ok && self.top == 0
    }

    /// One byte; `None` when it is rejected.
    fn step(&mut self, c: u8) -> Option<()> {
        use S::*;
        // Control characters other than TAB, LF and CR are always errors.
        if c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r') {
            return None;
        }
        let ws = matches!(c, b' ' | b'\t' | b'\n' | b'\r');
        let digit19 = c.is_ascii_digit() && c != b'0';
        let hex = c.is_ascii_hexdigit();
        let s = self.state;
        self.state = match s {
            Go => match c {
                _ if ws => Go,
                b'{' => return self.open(M_KEY, Ob),
                b'[' => return self.open(M_ARRAY, Ar),
                _ => return None,
            },
            Ok => match c {
                _ if ws => Ok,
                _ => return self.after_value(c),
            },
            Ob => match c {
                _ if ws => Ob,
                b'}' => {
                    self.pop(M_KEY)?;
                    Ok
                }
                b'"' => St,
                _ => return None,
            },
            Ke => match c {
                _ if ws => Ke,
                b'"' => St,
                _ => return None,
            },
            Co => match c {
                _ if ws => Co,
                b':' => {
                    self.pop(M_KEY)?;
                    self.push(M_OBJECT)?;
                    Va
                }
                _ => return None,
            },
            Va | Ar => match c {
                _ if ws => s,
                b'{' => return self.open(M_KEY, Ob),
                b'[' => return self.open(M_ARRAY, Ar),
                b']' if s == Ar => {
                    self.pop(M_ARRAY)?;
                    Ok
                }
                b'"' => St,
                b'-' => Mi,
                b'0' => Ze,
                _ if digit19 => In,
                b'f' => F1,
                b'n' => N1,
                b't' => T1,
                _ => return None,
            },
            St => match c {
                b'\t' | b'\n' | b'\r' => return None,
                b'"' => match self.mode() {
                    M_KEY => Co,
                    M_ARRAY | M_OBJECT => Ok,
                    _ => return None,
                },
                b'\\' => Es,
                _ => St,
            },
            Es => match c {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => St,
                b'u' => U1,
                _ => return None,
            },
            U1 | U2 | U3 | U4 if hex => match s {
                U1 => U2,
                U2 => U3,
                U3 => U4,
                _ => St,
            },
            U1 | U2 | U3 | U4 => return None,
            Mi => match c {
                b'0' => Ze,
                _ if digit19 => In,
                _ => return None,
            },
            Ze => match c {
                _ if ws => Ok,
                b'.' => Fr,
                _ => return self.after_value(c),
            },
            In => match c {
                _ if ws => Ok,
                b'.' => Fr,
                b'0'..=b'9' => In,
                b'e' | b'E' => E1,
                _ => return self.after_value(c),
            },
            Fr => match c {
                _ if ws => Ok,
                b'0'..=b'9' => Fr,
                b'e' | b'E' => E1,
                _ => return self.after_value(c),
            },
            E1 => match c {
                b'+' | b'-' => E2,
                b'0'..=b'9' => E3,
                _ => return None,
            },
            E2 => match c {
                b'0'..=b'9' => E3,
                _ => return None,
            },
            E3 => match c {
                _ if ws => Ok,
                b'0'..=b'9' => E3,
                _ => return self.after_value(c),
            },
            T1 if c == b'r' => T2,
            T2 if c == b'u' => T3,
            T3 if c == b'e' => Ok,
            F1 if c == b'a' => F2,
            F2 if c == b'l' => F3,
            F3 if c == b's' => F4,
            F4 if c == b'e' => Ok,
            N1 if c == b'u' => N2,
            N2 if c == b'l' => N3,
            N3 if c == b'l' => Ok,
            _ => return None,
        };
        Some(())
    }

    fn open(&mut self, m: u8, s: S) -> Option<()> {
        self.push(m)?;
        self.state = s;
        Some(())
    }

    /// `}`, `]` or `,` after a complete value (states OK, zero, int, frac,
    /// exp).
    fn after_value(&mut self, c: u8) -> Option<()> {
        match c {
            b'}' => {
                self.pop(M_OBJECT)?;
                self.state = S::Ok;
            }
            b']' => {
                self.pop(M_ARRAY)?;
                self.state = S::Ok;
            }
            b',' => {
                self.commas += 1;
                match self.mode() {
                    M_OBJECT => {
                        self.pop(M_OBJECT)?;
                        self.push(M_KEY)?;
                        self.state = S::Ke;
                    }
                    M_ARRAY => self.state = S::Va,
                    _ => return None,
                }
            }
            _ => return None,
        }
        Some(())
    }
}

/// What the checker made of the bytes from a candidate.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The outermost value closed at this index; its comma count.
    Closed(usize, u32),
    /// The byte at this index was rejected.
    Rejected(usize),
    /// Ran out of bytes (or reached [`MAX_LEN`]) undecided.
    Open,
}

fn check(buf: &[u8], q: usize) -> Outcome {
    let end = q.saturating_add(MAX_LEN).min(buf.len());
    let mut jc = Checker::new();
    for (i, &c) in buf.get(q..end).unwrap_or(&[]).iter().enumerate() {
        if jc.step(c).is_none() {
            return Outcome::Rejected(q + i);
        }
        if (c == b']' || c == b'}') && jc.done() {
            return Outcome::Closed(q + i, jc.commas);
        }
    }
    Outcome::Open
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> Vec<u8> {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(H[usize::from(b >> 4)]);
        out.push(H[usize::from(b & 15)]);
    }
    out
}

/// SHA-1 in lowercase hex.
pub(crate) fn sha1_hex(data: &[u8]) -> Vec<u8> {
    let d = trawl_hash::sha_multi::sha1_many(&[data]);
    d.first().map_or_else(Vec::new, |h| hex(h))
}

/// The `json` structure scanner.
pub fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let own = own.start.min(buf.len())..own.end.min(buf.len());
    if own.is_empty() {
        return;
    }
    // Cheap rejection: no candidate in the owned range at all.
    let cands = candidates(buf, own.start.saturating_sub(BEFORE)..own.end);
    if cands.last().is_none_or(|&c| c < own.start) {
        return;
    }
    let found = chain(own, &cands, |q| match check(buf, q) {
        Outcome::Closed(i, commas) => (i + 1, (commas >= MIN_COMMAS).then_some(i + 1)),
        Outcome::Rejected(i) => (i + 1, None),
        Outcome::Open => (q + 1, None),
    });
    for (p, end) in found {
        let Some(text) = buf.get(p..end) else {
            continue;
        };
        out.push(Record {
            recorder: "json",
            pos: p,
            feature: text.to_vec(),
            context: sha1_hex(text),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(buf: &[u8]) -> Vec<(usize, String, String)> {
        let mut out = Vec::new();
        scan(buf, 0..buf.len(), &mut out);
        out.into_iter()
            .map(|r| {
                (
                    r.pos,
                    String::from_utf8_lossy(&r.feature).into_owned(),
                    String::from_utf8_lossy(&r.context).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn be_unit_example() {
        // src/test_be.cpp, TEST_CASE("scan_json1"): the context is the
        // SHA-1 of the JSON text.
        let got = run(br#"hello {"hello": 10, "world": 20, "another": 30, "language": 40} world"#);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 6);
        assert_eq!(
            got[0].1,
            r#"{"hello": 10, "world": 20, "another": 30, "language": 40}"#
        );
        assert_eq!(got[0].2, "6ee8c369e2f111caa9610afc99d7fae877e616c9");
    }

    #[test]
    fn needs_two_commas() {
        assert!(run(br#"x {"a": 1, "b": 2} y"#).is_empty());
        assert_eq!(run(br#"x {"a": 1, "b": 2, "c": 3} y"#).len(), 1);
        assert_eq!(run(br#"x [1, 2, 3, 4] y"#).len(), 1);
        assert!(
            run(br#"x [true, 2, 3, 4] y"#).is_empty(),
            "[t is not a candidate"
        );
        assert_eq!(run(br#"x [ 1, 2, 3, 4] y"#).len(), 1);
        assert_eq!(run(br#"[-1.5e+3, 0.25, true, false, null]"#).len(), 1);
    }

    #[test]
    fn values_and_escapes() {
        let j = br#"{"s": "a\"b\\c\u00e9\n", "t": [true, false, null], "n": -0.5E-2, "o": {}}"#;
        let got = run(j);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.as_bytes(), j);
        // Bytes >= 0x80 inside strings are accepted.
        let u = "{\"k\": \"caf\u{e9}\", \"l\": 1, \"m\": 2, \"n\": 3}";
        assert_eq!(run(u.as_bytes()).len(), 1);
    }

    #[test]
    fn rejects_bad_json() {
        for bad in [
            &br#"{"a": 1, "b": 2, "c": 3, "d": 01}"#[..],
            br#"{"a": 1, "b": 2, "c": 3, "d": tru}"#,
            br#"{"a": 1, "b": 2, "c": 3, "d" 4}"#,
            br#"{"a": 1, "b": 2, "c": 3, "d": "x	"}"#,
            br#"{"a": 1, "b": 2, "c": 3, "d": "\x"}"#,
            br#"{"a": 1, "b": 2, "c": 3, "d": 4,}"#,
            br#"{"a": 1, "b": 2, "c": 3, "d": 4]"#,
            br#"{"a": 1, "b": 2, "c": 3, "d": 4"#,
        ] {
            assert!(run(bad).is_empty(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn nested_objects_are_hidden() {
        let j = br#"{"a": {"x": 1, "y": 2, "z": 3, "w": 4}, "b": 2}"#;
        let got = run(j);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0);
    }

    #[test]
    fn rejected_text_hides_what_it_read() {
        // The outer array is read through the inner object and rejected at
        // `x`: bulk_extractor resumes after the `x`, so the inner object
        // is not reported.
        let j = br#"[ {"a": 1, "b": 2, "c": 3, "d": 4}, x ] {"e": 1, "f": 2, "g": 3, "h": 4}"#;
        let got = run(j);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 40);
        // Rejected before the inner object: the inner one is reported.
        let k = br#"[ x {"a": 1, "b": 2, "c": 3, "d": 4}"#;
        let got = run(k);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 4);
    }

    #[test]
    fn nesting_limit() {
        let mut deep = vec![b'['; 300];
        deep.extend(std::iter::repeat_n(b']', 300));
        assert!(run(&deep).is_empty());
        let mut ok = b"[ 1, 2, 3, ".to_vec();
        ok.extend(std::iter::repeat_n(b'[', 250));
        ok.extend(std::iter::repeat_n(b']', 251));
        assert_eq!(run(&ok).len(), 1);
    }

    #[test]
    fn owned_range_and_lookback() {
        let mut buf = vec![b' '; 3000];
        let j = br#"{"a": 1, "b": 2, "c": 3, "d": 4}"#;
        buf[2000..2000 + j.len()].copy_from_slice(j);
        let mut out = Vec::new();
        scan(&buf, 0..2000, &mut out);
        assert!(out.is_empty());
        scan(&buf, 2000..2001, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].pos, 2000);
    }
}
