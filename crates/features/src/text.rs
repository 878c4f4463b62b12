//! Byte classes shared by the scanners, and fast searches over them.

/// ASCII decimal digit.
pub const DIGIT: u16 = 1;
/// ASCII letter.
pub const ALPHA: u16 = 1 << 1;
/// Hexadecimal digit.
pub const HEX: u16 = 1 << 2;
/// E-mail local-part character (bulk_extractor: `[a-zA-Z0-9._%\-+]`).
pub const LOCAL: u16 = 1 << 3;
/// E-mail domain character (`[a-zA-Z0-9._%\-]`).
pub const EDOMAIN: u16 = 1 << 4;
/// URL character (bulk_extractor: `[a-zA-Z0-9_%/\-+@:=&?#~.;]`).
pub const URLC: u16 = 1 << 5;
/// Host name character (`[a-zA-Z0-9.-]`).
pub const HOST: u16 = 1 << 6;
/// Base58 alphabet.
pub const B58: u16 = 1 << 7;
/// Printable text for UTF-16 runs (0x20..0x7e, tab, LF, CR).
pub const TEXT: u16 = 1 << 8;
/// Upper-case ASCII letter.
pub const UPPER: u16 = 1 << 9;

const fn build() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut v = 0u16;
        let digit = c.is_ascii_digit();
        let alpha = c.is_ascii_alphabetic();
        if digit {
            v |= DIGIT;
        }
        if alpha {
            v |= ALPHA;
        }
        if c.is_ascii_uppercase() {
            v |= UPPER;
        }
        if c.is_ascii_hexdigit() {
            v |= HEX;
        }
        if digit || alpha || c == b'.' || c == b'_' || c == b'%' || c == b'-' || c == b'+' {
            v |= LOCAL;
        }
        if digit || alpha || c == b'.' || c == b'_' || c == b'%' || c == b'-' {
            v |= EDOMAIN;
        }
        if digit
            || alpha
            || matches!(
                c,
                b'_' | b'%'
                    | b'/'
                    | b'-'
                    | b'+'
                    | b'@'
                    | b':'
                    | b'='
                    | b'&'
                    | b'?'
                    | b'#'
                    | b'~'
                    | b'.'
                    | b';'
            )
        {
            v |= URLC;
        }
        if digit || alpha || c == b'.' || c == b'-' {
            v |= HOST;
        }
        if (digit && c != b'0') || (alpha && c != b'O' && c != b'I' && c != b'l') {
            v |= B58;
        }
        if (c >= 0x20 && c < 0x7f) || c == b'\t' || c == b'\n' || c == b'\r' {
            v |= TEXT;
        }
        t[i] = v;
        i += 1;
    }
    t
}

/// The class table.
pub static CLASS: [u16; 256] = build();

/// Whether `c` has any of the class bits in `mask`.
#[inline(always)]
pub fn is(c: u8, mask: u16) -> bool {
    CLASS[c as usize] & mask != 0
}

/// `buf[i]` has a class bit of `mask`; false out of bounds.
#[inline(always)]
pub fn at(buf: &[u8], i: usize, mask: u16) -> bool {
    buf.get(i).is_some_and(|&c| is(c, mask))
}

#[inline(always)]
fn load(buf: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[i..i + 8]);
    u64::from_le_bytes(w)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Lanes of `w` whose byte is an ASCII digit, as the high bit of each lane
/// (exact, no cross-lane carries).
#[inline(always)]
fn digit_lanes(w: u64) -> u64 {
    let y = w & !HIGHS;
    let ge = y + ONES * (0x80 - b'0' as u64);
    let gt = y + ONES * (0x7f - b'9' as u64);
    ge & !gt & !w & HIGHS
}

/// Calls `f(start, end)` for every maximal run of ASCII digits whose first
/// byte lies in `[lo, hi)` (the run may extend past `hi`).
#[inline]
pub fn digit_runs(buf: &[u8], lo: usize, hi: usize, mut f: impl FnMut(usize, usize)) {
    let hi = hi.min(buf.len());
    let mut i = lo;
    // a run that started before `lo` is not ours
    while i < hi && i > 0 && buf[i - 1].is_ascii_digit() && buf[i].is_ascii_digit() {
        i += 1;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = trawl_hash::cpu::Avx2::detect() {
        // 64 bytes at a time: every run inside a block from its mask (the
        // byte before a block is never a digit of an unlisted run).
        while i < hi
            && let Some(block) = buf[i..].first_chunk::<64>()
        {
            let m = trawl_hash::bytes::digit_mask64(cpu, block);
            let mut left = m;
            let mut next = i + 64;
            while left != 0 {
                let k = left.trailing_zeros();
                let s = i + k as usize;
                if s >= hi {
                    return;
                }
                let ones = (!(m >> k)).trailing_zeros();
                if k + ones == 64 {
                    // The run goes on past the block.
                    let mut e = i + 64;
                    while e < buf.len() && buf[e].is_ascii_digit() {
                        e += 1;
                    }
                    f(s, e);
                    next = e;
                    break;
                }
                f(s, s + ones as usize);
                left &= !(((1u64 << ones) - 1) << k);
            }
            i = next;
        }
    }
    while i < hi {
        // skip digit-free words quickly
        if i + 8 <= buf.len() {
            let m = digit_lanes(load(buf, i));
            if m == 0 {
                i += 8;
                continue;
            }
            i += (m.trailing_zeros() / 8) as usize;
            if i >= hi {
                break;
            }
        } else if !buf[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let s = i;
        let mut e = i + 1;
        while e < buf.len() && buf[e].is_ascii_digit() {
            e += 1;
        }
        f(s, e);
        i = e;
    }
}

/// Whether the 8 bytes at `i` look like four UTF-16 code units of printable
/// ASCII: `Some(0)` when the characters are at even lanes (zeros at odd),
/// `Some(1)` when they are at odd lanes.
#[inline(always)]
pub fn utf16_probe(buf: &[u8], i: usize) -> Option<usize> {
    let w = load(buf, i);
    const EVEN: u64 = 0x00ff_00ff_00ff_00ff;
    // 16-bit lanes holding one byte each: printable iff 0x20 <= v <= 0x7e
    let ok = |l: u64| {
        let a = l + 0x00e0_00e0_00e0_00e0;
        let b = l + 0x0081_0081_0081_0081;
        a & 0x0100_0100_0100_0100 == 0x0100_0100_0100_0100 && b & 0x0100_0100_0100_0100 == 0
    };
    if w & !EVEN == 0 && ok(w & EVEN) {
        Some(0)
    } else if w & EVEN == 0 && ok((w >> 8) & EVEN) {
        Some(1)
    } else {
        None
    }
}

/// Whether the 4 KiB-aligned block `[s, s + len)` is one repeated 8-byte
/// pattern that cannot be part of any feature: no printable ASCII byte and
/// no byte that starts a compressed-stream signature.
pub fn is_inert_block(block: &[u8]) -> bool {
    if block.len() < 8 || !block.len().is_multiple_of(8) {
        return false;
    }
    let first = load(block, 0);
    for b in first.to_le_bytes() {
        if is(b, TEXT) || b == 0x1f {
            return false;
        }
    }
    block.chunks_exact(8).all(|c| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_le_bytes(w) == first
    })
}

/// Case-insensitive ASCII comparison of `buf[i..]` with `lit` (lower case).
#[inline]
pub fn starts_with_ci(buf: &[u8], i: usize, lit: &[u8]) -> bool {
    buf.len() >= i + lit.len()
        && buf[i..i + lit.len()]
            .iter()
            .zip(lit)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_found() {
        let b = b"ab12 3x45678 9";
        let mut v = Vec::new();
        digit_runs(b, 0, b.len(), |s, e| v.push((s, e)));
        assert_eq!(v, vec![(2, 4), (5, 6), (7, 12), (13, 14)]);
        let mut v = Vec::new();
        digit_runs(b, 3, 9, |s, e| v.push((s, e)));
        assert_eq!(v, vec![(5, 6), (7, 12)]);
        let long: Vec<u8> = (0..100u8)
            .map(|i| if i % 7 == 3 { b'5' } else { b'x' })
            .collect();
        let mut n = 0;
        digit_runs(&long, 0, long.len(), |_, _| n += 1);
        assert_eq!(n, long.iter().filter(|c| c.is_ascii_digit()).count());
    }

    /// The block path (AVX2) lists the same runs as one byte at a time,
    /// for every window of bytes rich in digit runs of every length.
    #[test]
    fn digit_runs_match_a_byte_loop() {
        let mut x = 0x9E3779B97F4A7C15u64;
        let buf: Vec<u8> = (0..5000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Long digit stretches every so often, across block edges.
                if (i / 97) % 3 == 0 {
                    b'0' + (x % 10) as u8
                } else {
                    b"0123456789a \xff."[(x % 14) as usize]
                }
            })
            .collect();
        // Every maximal run of the buffer whose first byte is in [lo, hi).
        let reference = |lo: usize, hi: usize| {
            let mut v = Vec::new();
            let mut i = 0;
            while i < buf.len() {
                if !buf[i].is_ascii_digit() {
                    i += 1;
                    continue;
                }
                let mut e = i;
                while e < buf.len() && buf[e].is_ascii_digit() {
                    e += 1;
                }
                if (lo..hi).contains(&i) {
                    v.push((i, e));
                }
                i = e;
            }
            v
        };
        for (lo, hi) in [
            (0, 5000),
            (1, 4999),
            (63, 64),
            (64, 130),
            (5, 900),
            (190, 4100),
            (4990, 6000),
        ] {
            let mut got = Vec::new();
            digit_runs(&buf, lo, hi, |s, e| got.push((s, e)));
            assert_eq!(got, reference(lo, hi), "{lo}..{hi}");
        }
    }

    #[test]
    fn digit_lanes_exact() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b'a', b, 0, 0xff, b'9', b'0', b'/', b':']);
            let m = digit_lanes(w);
            assert_eq!(m & 0x8000 != 0, b.is_ascii_digit(), "byte {b}");
            assert_eq!(m & !0x8000, (0x80u64 << 32) | (0x80u64 << 40));
        }
    }

    #[test]
    fn utf16_probe_finds_both_parities() {
        let le = b"a\0b\0c\0d\0";
        assert_eq!(utf16_probe(le, 0), Some(0));
        let be = b"\0a\0b\0c\0d";
        assert_eq!(utf16_probe(be, 0), Some(1));
        assert_eq!(utf16_probe(&[0u8; 8], 0), None);
        assert_eq!(utf16_probe(b"abcdefgh", 0), None);
        assert_eq!(utf16_probe(b"a\0b\0\x01\0d\0", 0), None);
    }

    #[test]
    fn inert_blocks() {
        assert!(is_inert_block(&[0u8; 4096]));
        assert!(is_inert_block(&[0xffu8; 4096]));
        let pat: Vec<u8> = (0..4096).map(|i| [0x00, 0x80, 0xf6, 0x01][i % 4]).collect();
        assert!(is_inert_block(&pat));
        assert!(!is_inert_block(&[b'A'; 4096]));
        let mut z = vec![0u8; 4096];
        z[100] = 1;
        assert!(!is_inert_block(&z));
    }
}
