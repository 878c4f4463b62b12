//! SHA-1 and SHA-256 of the same bytes together, in one pass: with the x86
//! SHA extensions, each 64-byte block goes through both compression
//! functions in one instruction stream, their rounds interleaved. Both are
//! chains of dependent SHA instructions, so interleaved they fill each
//! other's latency: on the machine measured (Emerald Rapids), the pair
//! costs about 73% of the two computed one after the other (which is what
//! the RustCrypto crates, used elsewhere and as the reference in the
//! tests, do).

use sha1::Digest as _;

/// SHA-1's initial state (FIPS 180-4).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const SHA1_IV: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
/// SHA-256's initial state.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const SHA256_IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];
/// SHA-256's round constants.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const K256: [u32; 64] = [
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
];

/// SHA-1 and SHA-256 hashers over one stream.
pub struct Sha1Sha256 {
    inner: Inner,
}

enum Inner {
    #[cfg(target_arch = "x86_64")]
    Fused(Box<Fused>),
    Separate(Box<(sha1::Sha1, sha2::Sha256)>),
}

#[cfg(target_arch = "x86_64")]
struct Fused {
    cpu: crate::cpu::ShaNi,
    s1: [u32; 5],
    s2: [u32; 8],
    blocks: crate::Blocks,
}

impl Default for Sha1Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha1Sha256 {
    /// A new pair of hashers: interleaved where the CPU has the SHA
    /// extensions, the RustCrypto hashers otherwise.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(cpu) = crate::cpu::ShaNi::detect() {
            return Self {
                inner: Inner::Fused(Box::new(Fused {
                    cpu,
                    s1: SHA1_IV,
                    s2: SHA256_IV,
                    blocks: crate::Blocks::new(),
                })),
            };
        }
        Self::separate()
    }

    /// The RustCrypto hashers, whatever the CPU.
    fn separate() -> Self {
        Self {
            inner: Inner::Separate(Box::new((sha1::Sha1::new(), sha2::Sha256::new()))),
        }
    }

    /// Hashes `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            #[cfg(target_arch = "x86_64")]
            Inner::Fused(f) => {
                let (cpu, s1, s2) = (f.cpu, &mut f.s1, &mut f.s2);
                f.blocks.update(data, |b| ni::compress(cpu, s1, s2, b));
            }
            Inner::Separate(h) => {
                h.0.update(data);
                h.1.update(data);
            }
        }
    }

    /// The SHA-1 and SHA-256 digests.
    pub fn finalize(self) -> ([u8; 20], [u8; 32]) {
        match self.inner {
            #[cfg(target_arch = "x86_64")]
            Inner::Fused(mut f) => {
                // The same padding for both.
                let (tail, n) = f.blocks.finish(true);
                ni::compress(f.cpu, &mut f.s1, &mut f.s2, &tail[..n]);
                (digest(f.s1), digest(f.s2))
            }
            Inner::Separate(h) => (h.0.finalize().into(), h.1.finalize().into()),
        }
    }
}

/// The digest of a SHA state: its words, big-endian (`D` = 4 `S`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn digest<const S: usize, const D: usize>(state: [u32; S]) -> [u8; D] {
    let mut out = [0u8; D];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// SHA-1 and SHA-256 of `data`.
pub fn sha1_sha256(data: &[u8]) -> ([u8; 20], [u8; 32]) {
    let mut h = Sha1Sha256::new();
    h.update(data);
    h.finalize()
}

#[cfg(target_arch = "x86_64")]
mod ni {
    //! The two compression functions with the SHA extensions (the
    //! instruction sequences of Intel's reference code, as in the
    //! RustCrypto crates), their round groups interleaved.

    use super::K256;
    use crate::cpu::ShaNi;
    use std::arch::x86_64::*;

    /// Both compression functions over the whole 64-byte blocks of `data`
    /// (its length is a multiple of 64).
    #[allow(unsafe_code)] // the call of `go`, behind its token
    pub(super) fn compress(_cpu: ShaNi, s1: &mut [u32; 5], s2: &mut [u32; 8], data: &[u8]) {
        if data.len() >= 64 {
            // SAFETY: `go` needs SHA, SSE2, SSSE3 and SSE4.1, which the
            // token `_cpu` proves this CPU has (`ShaNi::detect`).
            unsafe { go(s1, s2, data) }
        }
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[allow(unsafe_code)] // 16-byte loads
    fn go(s1: &mut [u32; 5], s2: &mut [u32; 8], data: &[u8]) {
        let mask1 = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0A0B_0C0D_0E0F);
        let mask2 = _mm_set_epi64x(
            0x0C0D_0E0F_0809_0A0Bu64 as i64,
            0x0405_0607_0001_0203u64 as i64,
        );
        let mut abcd = _mm_set_epi32(s1[0] as i32, s1[1] as i32, s1[2] as i32, s1[3] as i32);
        let mut e0 = _mm_set_epi32(s1[4] as i32, 0, 0, 0);
        let dcba = _mm_set_epi32(s2[3] as i32, s2[2] as i32, s2[1] as i32, s2[0] as i32);
        let hgfe = _mm_set_epi32(s2[7] as i32, s2[6] as i32, s2[5] as i32, s2[4] as i32);
        let cdab = _mm_shuffle_epi32::<0xB1>(dcba);
        let efgh = _mm_shuffle_epi32::<0x1B>(hgfe);
        let mut abef = _mm_alignr_epi8::<8>(cdab, efgh);
        let mut cdgh = _mm_blend_epi16::<0xF0>(efgh, cdab);
        for block in data.chunks_exact(64) {
            // SAFETY: unaligned 16-byte loads within the 64-byte block.
            let load = |i: usize| unsafe { _mm_loadu_si128(block.as_ptr().add(16 * i).cast()) };
            let raw = [load(0), load(1), load(2), load(3)];
            // The message words, byte-swapped for each (SHA-1 wants them in
            // the opposite lane order).
            let mut x = raw.map(|r| _mm_shuffle_epi8(r, mask1));
            let mut y = raw.map(|r| _mm_shuffle_epi8(r, mask2));
            let (abef_save, cdgh_save) = (abef, cdgh);
            let mut h0 = abcd;
            let mut h1 = _mm_add_epi32(e0, x[0]);
            // SHA-256 rounds 4i..4i+4 (message words scheduled from i = 4).
            macro_rules! g256 {
                ($i:expr) => {{
                    if $i >= 4 {
                        let t1 = _mm_sha256msg1_epu32(y[$i % 4], y[($i + 1) % 4]);
                        let t2 = _mm_alignr_epi8::<4>(y[($i + 3) % 4], y[($i + 2) % 4]);
                        y[$i % 4] = _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), y[($i + 3) % 4]);
                    }
                    let k = _mm_set_epi32(
                        K256[4 * $i + 3] as i32,
                        K256[4 * $i + 2] as i32,
                        K256[4 * $i + 1] as i32,
                        K256[4 * $i] as i32,
                    );
                    let t = _mm_add_epi32(y[$i % 4], k);
                    cdgh = _mm_sha256rnds2_epu32(cdgh, abef, t);
                    abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32::<0x0E>(t));
                }};
            }
            // SHA-1 rounds 4i..4i+4 (function i / 5).
            macro_rules! g1 {
                ($i:expr) => {{
                    if $i >= 4 {
                        x[$i % 4] = _mm_sha1msg2_epu32(
                            _mm_xor_si128(
                                _mm_sha1msg1_epu32(x[$i % 4], x[($i + 1) % 4]),
                                x[($i + 2) % 4],
                            ),
                            x[($i + 3) % 4],
                        );
                    }
                    if $i == 0 {
                        h1 = _mm_sha1rnds4_epu32::<0>(h0, h1);
                    } else if $i % 2 == 1 {
                        h0 = _mm_sha1rnds4_epu32::<{ $i / 5 }>(
                            h1,
                            _mm_sha1nexte_epu32(h0, x[$i % 4]),
                        );
                    } else {
                        h1 = _mm_sha1rnds4_epu32::<{ $i / 5 }>(
                            h0,
                            _mm_sha1nexte_epu32(h1, x[$i % 4]),
                        );
                    }
                }};
            }
            g1!(0);
            g256!(0);
            g1!(1);
            g256!(1);
            g1!(2);
            g256!(2);
            g1!(3);
            g256!(3);
            g1!(4);
            g256!(4);
            g1!(5);
            g256!(5);
            g1!(6);
            g256!(6);
            g1!(7);
            g256!(7);
            g1!(8);
            g256!(8);
            g1!(9);
            g256!(9);
            g1!(10);
            g256!(10);
            g1!(11);
            g256!(11);
            g1!(12);
            g256!(12);
            g1!(13);
            g256!(13);
            g1!(14);
            g256!(14);
            g1!(15);
            g256!(15);
            g1!(16);
            g1!(17);
            g1!(18);
            g1!(19);
            abcd = _mm_add_epi32(abcd, h0);
            e0 = _mm_sha1nexte_epu32(h1, e0);
            abef = _mm_add_epi32(abef, abef_save);
            cdgh = _mm_add_epi32(cdgh, cdgh_save);
        }
        s1[0] = _mm_extract_epi32::<3>(abcd) as u32;
        s1[1] = _mm_extract_epi32::<2>(abcd) as u32;
        s1[2] = _mm_extract_epi32::<1>(abcd) as u32;
        s1[3] = _mm_extract_epi32::<0>(abcd) as u32;
        s1[4] = _mm_extract_epi32::<3>(e0) as u32;
        // Back from the (ABEF, CDGH) layout of the SHA-256 instructions.
        let feba = _mm_shuffle_epi32::<0x1B>(abef);
        let dchg = _mm_shuffle_epi32::<0xB1>(cdgh);
        let dcba = _mm_blend_epi16::<0xF0>(feba, dchg);
        let hgef = _mm_alignr_epi8::<8>(dchg, feba);
        s2[0] = _mm_extract_epi32::<0>(dcba) as u32;
        s2[1] = _mm_extract_epi32::<1>(dcba) as u32;
        s2[2] = _mm_extract_epi32::<2>(dcba) as u32;
        s2[3] = _mm_extract_epi32::<3>(dcba) as u32;
        s2[4] = _mm_extract_epi32::<0>(hgef) as u32;
        s2[5] = _mm_extract_epi32::<1>(hgef) as u32;
        s2[6] = _mm_extract_epi32::<2>(hgef) as u32;
        s2[7] = _mm_extract_epi32::<3>(hgef) as u32;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` pseudo-random bytes (xorshift64*) from `seed`.
    pub(crate) fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            v.extend_from_slice(&x.wrapping_mul(0x2545F4914F6CDD1D).to_le_bytes());
        }
        v.truncate(n);
        v
    }

    fn want(data: &[u8]) -> ([u8; 20], [u8; 32]) {
        (
            sha1::Sha1::digest(data).into(),
            sha2::Sha256::digest(data).into(),
        )
    }

    #[test]
    fn every_length_and_split_matches_rustcrypto() {
        let data = random_bytes(1000, 7);
        for n in 0..=300 {
            assert_eq!(sha1_sha256(&data[..n]), want(&data[..n]), "length {n}");
        }
        // Updates of every size pattern, across block boundaries.
        for step in [1usize, 3, 55, 63, 64, 65, 127, 200] {
            let mut h = Sha1Sha256::new();
            let mut s = Sha1Sha256::separate();
            for c in data.chunks(step) {
                h.update(c);
                s.update(c);
            }
            assert_eq!(h.finalize(), want(&data), "steps of {step}");
            assert_eq!(s.finalize(), want(&data), "steps of {step}, separate");
        }
    }

    #[test]
    fn large_input_matches_rustcrypto() {
        let data = random_bytes(3 << 20, 9);
        assert_eq!(sha1_sha256(&data), want(&data));
        let mut h = Sha1Sha256::new();
        h.update(&data[..1_000_001]);
        h.update(&data[1_000_001..]);
        assert_eq!(h.finalize(), want(&data));
    }
}
