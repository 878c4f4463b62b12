//! UTF-16 text runs.
//!
//! A run is a maximal sequence of printable ASCII characters (plus tab, LF,
//! CR) at every other byte with zero bytes between them. Its characters are
//! decoded to ASCII and scanned like plain text. Both byte orders give the
//! same characters, one byte apart: `c0 00 c1 00 …` is UTF-16LE from `c0`,
//! and UTF-16BE from the zero before `c0` when there is one. The reading is
//! decided per feature from the run's ends, looked at only within
//! [`WINDOW`] bytes of the feature (so that the decision never depends on
//! where a shard starts):
//!
//! 1. a byte-order mark just before the run decides;
//! 2. otherwise UTF-16BE when the run is preceded by a zero byte (its first
//!    code unit is complete in big-endian) and its last character is not
//!    followed by one (its last code unit is incomplete in little-endian);
//! 3. otherwise UTF-16LE, the byte order of Windows and of most UTF-16 on
//!    disks. A run whose both ends are ambiguous (or farther than the
//!    window) is read as UTF-16LE.
//!
//! A feature is reported once, in the reading chosen.

use super::text::{TEXT, is, utf16_probe};

/// How far from a feature the ends of its run are looked at.
pub const WINDOW: usize = 16 << 10;
/// How far runs are followed past the region being scanned.
pub const EXTEND: usize = 32 << 10;
/// How many bytes of a run around the region are decoded (context for the
/// scanners).
pub const DECODE_CTX: usize = 8 << 10;
/// Shortest run scanned, in characters.
pub const MIN_CHARS: usize = 6;

/// A run of characters at `first, first + 2, …, last` (raw buffer indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub first: usize,
    pub last: usize,
    /// The run's first character is its true start (not cut by the search
    /// bound).
    pub start_known: bool,
    pub end_known: bool,
}

/// Calls `f` for every run of at least [`MIN_CHARS`] characters that has
/// characters in `[lo, hi)`; runs are followed at most [`EXTEND`] bytes past
/// the region.
pub fn runs(buf: &[u8], lo: usize, hi: usize, mut f: impl FnMut(Run)) {
    let s_lim = lo.saturating_sub(EXTEND);
    let e_lim = (hi + EXTEND).min(buf.len());
    let mut q = lo & !3;
    while q + 8 <= buf.len() && q < hi {
        // Skip, 56 bytes at a time, positions where the probe must fail: it
        // needs four zero bytes at every other position.
        if let Some(j) = next_candidate(buf, q)
            && j > 0
        {
            q += j;
            continue;
        }
        let Some(par) = utf16_probe(buf, q) else {
            q += 4;
            continue;
        };
        let p = q + par;
        let mut first = p;
        while first >= s_lim + 2 && buf[first - 1] == 0 && is(buf[first - 2], TEXT) {
            first -= 2;
        }
        let start_known =
            !(first >= 2 && first - 2 < s_lim && buf[first - 1] == 0 && is(buf[first - 2], TEXT));
        let mut last = p;
        while last + 2 < e_lim && buf[last + 1] == 0 && is(buf[last + 2], TEXT) {
            last += 2;
        }
        let end_known = !(last + 2 < buf.len()
            && last + 2 >= e_lim
            && buf[last + 1] == 0
            && is(buf[last + 2], TEXT));
        if (last - first) / 2 + 1 >= MIN_CHARS {
            f(Run {
                first,
                last,
                start_known,
                end_known,
            });
        }
        q = (last + 2).max(q + 4) & !3;
    }
}

/// From `q` (a multiple of 4, with 64 bytes readable), the offset of the
/// first position `q + j` (`j` a multiple of 4, below 56) where four zero
/// bytes sit at every other position in the next 8 bytes — where
/// [`utf16_probe`] may succeed — or 56 when there is none; `None` when the
/// 64 bytes are not there.
#[inline]
fn next_candidate(buf: &[u8], q: usize) -> Option<usize> {
    let block = buf.get(q..)?.first_chunk::<64>()?;
    let z = trawl_hash::bytes::zero_mask64(block);
    // Bit p: bytes p, p + 2, p + 4, p + 6 are zero.
    let e = z & (z >> 2) & (z >> 4) & (z >> 6);
    // Position q: zeros at the odd (bit q + 1) or the even (bit q) bytes;
    // positions 0, 4, ..., 52 only.
    let c = (e | (e >> 1)) & 0x0011_1111_1111_1111;
    Some(if c == 0 {
        56
    } else {
        c.trailing_zeros() as usize
    })
}

/// The reading of a feature whose characters are at raw `f..=g` (step 2)
/// in `run`: `true` for UTF-16BE (the feature then starts at `f - 1`).
pub fn big_endian(buf: &[u8], run: &Run, f: usize, g: usize) -> bool {
    let rs = run.first;
    let re = run.last;
    let s_zero = rs > 0 && buf[rs - 1] == 0;
    let e_zero = re + 1 < buf.len() && buf[re + 1] == 0;
    let start_known = run.start_known && f - rs <= WINDOW;
    let end_known = run.end_known && re - g <= WINDOW;
    let le_bom = rs >= 2 && buf[rs - 2..rs] == [0xff, 0xfe];
    let be_bom = rs >= 3 && s_zero && buf[rs - 3..rs - 1] == [0xfe, 0xff];
    let mut be = if start_known && le_bom {
        false
    } else if start_known && be_bom {
        true
    } else {
        start_known && end_known && s_zero && !e_zero
    };
    // the reading must hold every character of the feature
    let le_ok = g != re || e_zero;
    let be_ok = f != rs || s_zero;
    if be && !be_ok && le_ok {
        be = false;
    } else if !be && !le_ok && be_ok {
        be = true;
    }
    be
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }
    fn be(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    fn all_runs(buf: &[u8]) -> Vec<Run> {
        let mut v = Vec::new();
        runs(buf, 0, buf.len(), |r| v.push(r));
        v
    }

    #[test]
    fn finds_runs_at_any_offset() {
        for pad in 0..8 {
            let mut b = vec![0x01u8; pad];
            b.extend(le("hello world"));
            b.extend([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09]);
            let r = all_runs(&b);
            assert_eq!(r.len(), 1, "pad {pad}");
            assert_eq!(r[0].first, pad);
            assert_eq!(r[0].last, pad + 20);
        }
        assert!(all_runs(&le("short")).is_empty());
        assert!(all_runs(&[0u8; 64]).is_empty());
    }

    #[test]
    fn byte_order_rules() {
        // LE, terminated: little-endian
        let mut b = vec![0x05u8, 0x06];
        b.extend(le("user@example.com"));
        b.extend([0, 0]);
        let r = all_runs(&b)[0];
        assert!(!big_endian(&b, &r, r.first, r.last));
        // BE after a zero, followed by a non-zero byte: big-endian
        let mut b = vec![0x05u8];
        b.extend(be("user@example.com"));
        b.extend([0x07, 0x08]);
        let r = all_runs(&b)[0];
        assert!(big_endian(&b, &r, r.first, r.last));
        // ambiguous (zero before and after): little-endian
        let mut b = vec![0u8, 0];
        b.extend(be("user@example.com"));
        b.extend([0, 0]);
        let r = all_runs(&b)[0];
        assert!(!big_endian(&b, &r, r.first, r.last));
        // a byte-order mark decides
        let mut b = vec![0xfe, 0xff];
        b.extend(be("user@example.com"));
        b.extend([0, 0]);
        let r = all_runs(&b)[0];
        assert!(big_endian(&b, &r, r.first, r.last));
    }
}
