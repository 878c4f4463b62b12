//! AES key schedules in memory (bulk_extractor's `scan_aes`).
//!
//! A key cannot be recognised, but its expanded schedule can: at every
//! offset the bytes are taken as a key and re-expanded, and the offset is
//! reported when the following bytes are exactly that key's schedule
//! (176 bytes for AES-128, 240 for AES-256; no bit errors allowed, as in
//! bulk_extractor). Like bulk_extractor the key must also not be low-entropy:
//! more than 4 distinct byte values among its 16 bytes (AES-128), more than
//! 8 among its 32 bytes (AES-256).
//!
//! `aes_keys.txt` lines (tab-separated): the key as lowercase hex bytes
//! separated by single spaces, and the context `AES128` or `AES256`:
//!
//! ```text
//! 496  a2 6e 0e 4c 06 c4 bb bf 5d 62 8b c7 f8 b3 91 b6  AES128
//! ```
//!
//! Speed: before expanding anything, each offset must satisfy two of the
//! schedule's plain XOR relations, read as one 64-bit comparison: for
//! AES-128 words 5 and 6 are `w[4] ^ w[1]` and `w[5] ^ w[2]`, for AES-256
//! words 9 and 10 are `w[8] ^ w[1]` and `w[9] ^ w[2]`. Every valid schedule
//! satisfies them, so the test rejects nothing bulk_extractor would accept.
//!
//! Deviations: AES-192 is not scanned. bulk_extractor's `scan_aes_192` is
//! off by default, and its AES-192 check starts the round constants at
//! `rcon[0] = 0` so it never accepts a real AES-192 schedule; [`valid`]
//! implements the correct check for completeness. bulk_extractor reads a
//! schedule that runs past the end of its buffer; trawl requires the whole
//! schedule to be present.

use super::records::Record;
use std::ops::Range;

/// The AES S-box, computed at compile time from the multiplicative inverse
/// in GF(2^8) and the affine transform.
const SBOX: [u8; 256] = sbox();

const fn xtime(a: u8) -> u8 {
    (a << 1) ^ if a & 0x80 != 0 { 0x1b } else { 0 }
}

const fn sbox() -> [u8; 256] {
    // exp/log tables with generator 3.
    let mut exp = [0u8; 256];
    let mut log = [0u8; 256];
    let mut x: u8 = 1;
    let mut i = 0;
    while i < 255 {
        exp[i] = x;
        log[x as usize] = i as u8;
        x ^= xtime(x);
        i += 1;
    }
    let mut s = [0u8; 256];
    let mut a = 0;
    while a < 256 {
        let inv = if a == 0 {
            0
        } else {
            exp[(255 - log[a] as usize) % 255]
        };
        let b = inv;
        s[a] = b ^ b.rotate_left(1) ^ b.rotate_left(2) ^ b.rotate_left(3) ^ b.rotate_left(4) ^ 0x63;
        a += 1;
    }
    s
}

/// Round constants, `RCON[i]` = x^(i-1) for i >= 1.
const RCON: [u8; 16] = {
    let mut r = [0u8; 16];
    let mut c: u8 = 1;
    let mut i = 1;
    while i < 16 {
        r[i] = c;
        c = xtime(c);
        i += 1;
    }
    r
};

/// Schedule length in bytes for a key of `nk` 32-bit words.
pub(crate) const fn schedule_len(nk: usize) -> usize {
    4 * 4 * (nk + 7)
}

/// Whether `s` begins with the complete schedule of its first `4 * nk`
/// bytes (nk = 4, 6 or 8). Stops at the first mismatching byte.
pub(crate) fn valid(s: &[u8], nk: usize) -> bool {
    let len = schedule_len(nk);
    let Some(s) = s.get(..len) else {
        return false;
    };
    let kl = 4 * nk;
    let mut pos = kl;
    while pos < len {
        let mut t = [s[pos - 4], s[pos - 3], s[pos - 2], s[pos - 1]];
        let w = pos / 4;
        if w.is_multiple_of(nk) {
            t = [
                SBOX[t[1] as usize] ^ RCON[w / nk],
                SBOX[t[2] as usize],
                SBOX[t[3] as usize],
                SBOX[t[0] as usize],
            ];
        } else if nk > 6 && w % nk == 4 {
            t = t.map(|b| SBOX[b as usize]);
        }
        for (k, tb) in t.iter().enumerate() {
            if s[pos + k] != s[pos + k - kl] ^ tb {
                return false;
            }
        }
        pos += 4;
    }
    true
}

/// More than `min` distinct byte values in `b`.
fn distinct_more_than(b: &[u8], min: usize) -> bool {
    let mut seen = [0u64; 4];
    let mut n = 0;
    for &c in b {
        let (w, bit) = ((c >> 6) as usize, 1u64 << (c & 63));
        if seen[w] & bit == 0 {
            seen[w] |= bit;
            n += 1;
            if n > min {
                return true;
            }
        }
    }
    false
}

fn le64(s: &[u8], at: usize) -> u64 {
    match s.get(at..at + 8) {
        Some(b) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        }
        None => 0,
    }
}

fn hex_key(k: &[u8]) -> Vec<u8> {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut v = Vec::with_capacity(k.len() * 3);
    for (i, &b) in k.iter().enumerate() {
        if i > 0 {
            v.push(b' ');
        }
        v.push(H[(b >> 4) as usize]);
        v.push(H[(b & 15) as usize]);
    }
    v
}

const L128: usize = schedule_len(4);
const L256: usize = schedule_len(8);

/// The scanner: `aes_keys` records for schedules starting in `own`.
pub fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let end = own.end.min(buf.len());
    let mut p = own.start;
    // Fast path: both schedules fit.
    while p < end && p + L256 <= buf.len() {
        let s = &buf[p..p + L256];
        let c128 = le64(s, 20) == le64(s, 16) ^ le64(s, 4);
        let c256 = le64(s, 36) == le64(s, 32) ^ le64(s, 4);
        if c128 | c256 {
            check(buf, p, c128, c256, out);
        }
        p += 1;
    }
    // Tail: only AES-128 schedules can still fit.
    while p < end && p + L128 <= buf.len() {
        let s = &buf[p..p + L128];
        if le64(s, 20) == le64(s, 16) ^ le64(s, 4) {
            check(buf, p, true, false, out);
        }
        p += 1;
    }
}

fn check(buf: &[u8], p: usize, c128: bool, c256: bool, out: &mut Vec<Record>) {
    let s = &buf[p..];
    if c128 && distinct_more_than(&s[..16], 4) && valid(s, 4) {
        out.push(Record {
            recorder: "aes_keys",
            pos: p,
            feature: hex_key(&s[..16]),
            context: b"AES128".to_vec(),
        });
    }
    if c256 && s.len() >= 32 && distinct_more_than(&s[..32], 8) && valid(s, 8) {
        out.push(Record {
            recorder: "aes_keys",
            pos: p,
            feature: hex_key(&s[..32]),
            context: b"AES256".to_vec(),
        });
    }
}

#[cfg(test)]
pub(crate) fn expand(key: &[u8]) -> Vec<u8> {
    let nk = key.len() / 4;
    let len = schedule_len(nk);
    let mut s = key.to_vec();
    while s.len() < len {
        let n = s.len();
        let w = n / 4;
        let mut t = [s[n - 4], s[n - 3], s[n - 2], s[n - 1]];
        if w.is_multiple_of(nk) {
            t = [
                SBOX[t[1] as usize] ^ RCON[w / nk],
                SBOX[t[2] as usize],
                SBOX[t[3] as usize],
                SBOX[t[0] as usize],
            ];
        } else if nk > 6 && w % nk == 4 {
            t = t.map(|b| SBOX[b as usize]);
        }
        for (k, tb) in t.iter().enumerate() {
            let b = s[n + k - 4 * nk] ^ tb;
            s.push(b);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn sbox_known_values() {
        assert_eq!(SBOX[0x00], 0x63);
        assert_eq!(SBOX[0x01], 0x7c);
        assert_eq!(SBOX[0x53], 0xed);
        assert_eq!(SBOX[0xff], 0x16);
        assert_eq!(&RCON[1..11], &[1, 2, 4, 8, 16, 32, 64, 128, 0x1b, 0x36]);
    }

    /// FIPS-197 Appendix A.1-A.3: the last round key of each expansion.
    #[test]
    fn fips197_appendix_a() {
        let k128 = unhex("2b7e151628aed2a6abf7158809cf4f3c");
        let s = expand(&k128);
        assert_eq!(s.len(), 176);
        assert_eq!(&s[16..20], &unhex("a0fafe17"));
        assert_eq!(&s[160..], &unhex("d014f9a8c9ee2589e13f0cc8b6630ca6"));
        assert!(valid(&s, 4));

        let k192 = unhex("8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b");
        let s = expand(&k192);
        assert_eq!(s.len(), 208);
        assert_eq!(&s[24..28], &unhex("fe0c91f7"));
        assert_eq!(&s[192..], &unhex("e98ba06f448c773c8ecc720401002202"));
        assert!(valid(&s, 6));

        let k256 = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let s = expand(&k256);
        assert_eq!(s.len(), 240);
        assert_eq!(&s[32..36], &unhex("9ba35411"));
        assert_eq!(&s[224..], &unhex("fe4890d1e6188d0b046df344706c631e"));
        assert!(valid(&s, 8));
    }

    #[test]
    fn finds_planted_and_rejects_flipped_bits() {
        let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        for (klen, ctx) in [(16, "AES128"), (32, "AES256")] {
            let s = expand(&key[..klen]);
            let mut buf = vec![0u8; 7];
            buf.extend_from_slice(&s);
            buf.extend_from_slice(&[0u8; 9]);
            let mut out = Vec::new();
            scan(&buf, 0..buf.len(), &mut out);
            assert_eq!(out.len(), 1, "{ctx}");
            assert_eq!(out[0].pos, 7);
            assert_eq!(out[0].context, ctx.as_bytes());
            assert_eq!(out[0].feature, hex_key(&key[..klen]));
            // one flipped bit anywhere in the schedule: nothing
            for i in [0, klen + 3, s.len() - 1] {
                let mut b = buf.clone();
                b[7 + i] ^= 0x10;
                let mut out = Vec::new();
                scan(&b, 0..b.len(), &mut out);
                assert!(out.is_empty(), "{ctx} flip at {i}");
            }
            // not owned: nothing
            let mut out = Vec::new();
            scan(&buf, 8..buf.len(), &mut out);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn low_entropy_keys_are_skipped() {
        // the all-zero key expands to a valid schedule but has 1 distinct byte
        let s = expand(&[0u8; 16]);
        let mut out = Vec::new();
        scan(&s, 0..s.len(), &mut out);
        assert!(out.is_empty());
        assert_eq!(hex_key(&[0, 0xab]), b"00 ab");
    }
}
