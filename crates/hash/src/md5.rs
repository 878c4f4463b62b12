//! MD5, as fast as one core allows. A stream ([`Md5`]) is hashed, in this
//! order of preference:
//!
//! * on CPUs with AVX-512F/VL, in vector registers (`ternlog`: each round
//!   function one ternary-logic instruction, each rotation one
//!   instruction), reached only with a [`cpu::Avx512Vl`] token;
//! * with the `openssl` feature (on by default), by OpenSSL's MD5 assembly
//!   through its EVP interface (`openssl::hash::Hasher`), found at build
//!   time by pkg-config, when the library offers MD5 (a FIPS-only
//!   configuration does not);
//! * otherwise by a portable Rust implementation whose dependency chains are
//!   shortened the way the fastest hand-written versions do (G and H terms
//!   computed off the critical path).
//!
//! Every path is checked against the RustCrypto `md-5` crate in the tests.

use crate::HashError;
#[cfg(target_arch = "x86_64")]
use crate::cpu;

/// An MD5 computation.
pub struct Md5 {
    inner: Stream,
    /// The first error of the OpenSSL path, reported by [`Md5::finalize`].
    #[cfg(feature = "openssl")]
    failed: Option<String>,
}

/// The implementation chosen for this machine.
enum Stream {
    /// Each step's round function one ternary-logic instruction and its
    /// rotation one instruction, in AVX-512VL registers: a step's critical
    /// path is four one-cycle operations (five for the best scalar code).
    #[cfg(target_arch = "x86_64")]
    Avx512(portable::Inner<cpu::Avx512Vl>),
    #[cfg(feature = "openssl")]
    Evp(evp::Inner),
    Portable(portable::Inner<portable::Scalar>),
}

impl Md5 {
    /// A fresh computation.
    pub fn new() -> Self {
        Self {
            inner: Self::choose(),
            #[cfg(feature = "openssl")]
            failed: None,
        }
    }

    fn choose() -> Stream {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = cpu::Avx512Vl::detect() {
            return Stream::Avx512(portable::Inner::new(t));
        }
        #[cfg(feature = "openssl")]
        if let Some(e) = evp::Inner::new() {
            return Stream::Evp(e);
        }
        Stream::Portable(portable::Inner::new(portable::Scalar))
    }

    /// Adds data.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            #[cfg(target_arch = "x86_64")]
            Stream::Avx512(i) => i.update(data),
            #[cfg(feature = "openssl")]
            Stream::Evp(i) => {
                if let Err(e) = i.update(data) {
                    self.failed.get_or_insert(e);
                }
            }
            Stream::Portable(i) => i.update(data),
        }
    }

    /// The digest.
    ///
    /// # Errors
    /// [`HashError::Internal`] when OpenSSL reported an error (it does not
    /// for MD5 once the context exists; the pure-Rust paths cannot fail).
    pub fn finalize(self) -> Result<[u8; 16], HashError> {
        #[cfg(feature = "openssl")]
        if let Some(e) = self.failed {
            return Err(HashError::Internal(format!("OpenSSL MD5: {e}")));
        }
        match self.inner {
            #[cfg(target_arch = "x86_64")]
            Stream::Avx512(i) => Ok(i.finalize()),
            #[cfg(feature = "openssl")]
            Stream::Evp(i) => i
                .finalize()
                .map_err(|e| HashError::Internal(format!("OpenSSL MD5: {e}"))),
            Stream::Portable(i) => Ok(i.finalize()),
        }
    }

    /// Which implementation a new computation uses on this machine:
    /// `avx512vl-ternlog`, `openssl-evp` or `rust`.
    pub fn implementation() -> &'static str {
        match Self::choose() {
            #[cfg(target_arch = "x86_64")]
            Stream::Avx512(_) => "avx512vl-ternlog",
            #[cfg(feature = "openssl")]
            Stream::Evp(_) => "openssl-evp",
            Stream::Portable(_) => "rust",
        }
    }
}

/// The 64 MD5 steps (RFC 1321) as `$step!(round function as a ternary-logic
/// table over b, c, d, step index, message word, rotation)`, for the SIMD
/// implementations below.
#[cfg(target_arch = "x86_64")]
macro_rules! md5_steps {
    ($step:ident) => {
        $step!(0xCA, 0, 0, 7);
        $step!(0xCA, 1, 1, 12);
        $step!(0xCA, 2, 2, 17);
        $step!(0xCA, 3, 3, 22);
        $step!(0xCA, 4, 4, 7);
        $step!(0xCA, 5, 5, 12);
        $step!(0xCA, 6, 6, 17);
        $step!(0xCA, 7, 7, 22);
        $step!(0xCA, 8, 8, 7);
        $step!(0xCA, 9, 9, 12);
        $step!(0xCA, 10, 10, 17);
        $step!(0xCA, 11, 11, 22);
        $step!(0xCA, 12, 12, 7);
        $step!(0xCA, 13, 13, 12);
        $step!(0xCA, 14, 14, 17);
        $step!(0xCA, 15, 15, 22);
        $step!(0xE4, 16, 1, 5);
        $step!(0xE4, 17, 6, 9);
        $step!(0xE4, 18, 11, 14);
        $step!(0xE4, 19, 0, 20);
        $step!(0xE4, 20, 5, 5);
        $step!(0xE4, 21, 10, 9);
        $step!(0xE4, 22, 15, 14);
        $step!(0xE4, 23, 4, 20);
        $step!(0xE4, 24, 9, 5);
        $step!(0xE4, 25, 14, 9);
        $step!(0xE4, 26, 3, 14);
        $step!(0xE4, 27, 8, 20);
        $step!(0xE4, 28, 13, 5);
        $step!(0xE4, 29, 2, 9);
        $step!(0xE4, 30, 7, 14);
        $step!(0xE4, 31, 12, 20);
        $step!(0x96, 32, 5, 4);
        $step!(0x96, 33, 8, 11);
        $step!(0x96, 34, 11, 16);
        $step!(0x96, 35, 14, 23);
        $step!(0x96, 36, 1, 4);
        $step!(0x96, 37, 4, 11);
        $step!(0x96, 38, 7, 16);
        $step!(0x96, 39, 10, 23);
        $step!(0x96, 40, 13, 4);
        $step!(0x96, 41, 0, 11);
        $step!(0x96, 42, 3, 16);
        $step!(0x96, 43, 6, 23);
        $step!(0x96, 44, 9, 4);
        $step!(0x96, 45, 12, 11);
        $step!(0x96, 46, 15, 16);
        $step!(0x96, 47, 2, 23);
        $step!(0x39, 48, 0, 6);
        $step!(0x39, 49, 7, 10);
        $step!(0x39, 50, 14, 15);
        $step!(0x39, 51, 5, 21);
        $step!(0x39, 52, 12, 6);
        $step!(0x39, 53, 3, 10);
        $step!(0x39, 54, 10, 15);
        $step!(0x39, 55, 1, 21);
        $step!(0x39, 56, 8, 6);
        $step!(0x39, 57, 15, 10);
        $step!(0x39, 58, 6, 15);
        $step!(0x39, 59, 13, 21);
        $step!(0x39, 60, 4, 6);
        $step!(0x39, 61, 11, 10);
        $step!(0x39, 62, 2, 15);
        $step!(0x39, 63, 9, 21);
    };
}

#[cfg(target_arch = "x86_64")]
mod ternlog {
    //! One MD5 stream in the low lane of AVX-512VL registers.

    const K: [u32; 64] = super::portable::K;

    use crate::cpu::Avx512Vl;

    impl super::portable::Compress for Avx512Vl {
        /// Compresses whole 64-byte blocks.
        #[allow(unsafe_code)] // the call of `go`, behind its token
        fn compress(self, state: &mut [u32; 4], blocks: &[u8]) {
            // SAFETY: `go` needs AVX-512F and AVX-512VL, which the token
            // `self` proves this CPU has (`Avx512Vl::detect`).
            unsafe { go(state, blocks) }
        }
    }

    #[target_feature(enable = "avx512f,avx512vl")]
    fn go(state: &mut [u32; 4], blocks: &[u8]) {
        use std::arch::x86_64::*;
        let v = |x: u32| _mm_cvtsi32_si128(x as i32);
        let (mut a0, mut b0, mut c0, mut d0) = (v(state[0]), v(state[1]), v(state[2]), v(state[3]));
        for blk in blocks.chunks_exact(64) {
            let m: [u32; 16] = std::array::from_fn(|i| {
                u32::from_le_bytes([blk[4 * i], blk[4 * i + 1], blk[4 * i + 2], blk[4 * i + 3]])
            });
            let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
            // a + (K + m) is ready early; the round function of b, c, d
            // is added last, then the rotation and b.
            macro_rules! step {
                ($f:expr, $i:expr, $mi:expr, $s:expr) => {{
                    let early = _mm_add_epi32(a, v(K[$i].wrapping_add(m[$mi])));
                    let t = _mm_add_epi32(early, _mm_ternarylogic_epi32::<$f>(b, c, d));
                    let n = _mm_add_epi32(_mm_rol_epi32::<$s>(t), b);
                    a = d;
                    d = c;
                    c = b;
                    b = n;
                }};
            }
            md5_steps!(step);
            a0 = _mm_add_epi32(a0, a);
            b0 = _mm_add_epi32(b0, b);
            c0 = _mm_add_epi32(c0, c);
            d0 = _mm_add_epi32(d0, d);
        }
        let g = |x: __m128i| _mm_cvtsi128_si32(x) as u32;
        *state = [g(a0), g(b0), g(c0), g(d0)];
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

/// MD5 of a buffer in memory, by the pure-Rust paths only (AVX-512VL or
/// portable), so it cannot fail; [`Md5`] adds OpenSSL for long streams.
pub fn md5(data: &[u8]) -> [u8; 16] {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = cpu::Avx512Vl::detect() {
        let mut h = portable::Inner::new(t);
        h.update(data);
        return h.finalize();
    }
    let mut h = portable::Inner::new(portable::Scalar);
    h.update(data);
    h.finalize()
}

/// MD5 of many buffers at once (carved files): on x86-64 with AVX-512 (16
/// lanes) or AVX2 (8 lanes), one SIMD lane per buffer, the way multi-buffer
/// hashing libraries do it — several times the throughput of one MD5 per
/// core, as MD5 itself is one long dependency chain. Elsewhere, or for
/// fewer buffers than make it worthwhile, one [`md5`] per buffer.
pub fn md5_many(inputs: &[&[u8]]) -> Vec<[u8; 16]> {
    #[cfg(target_arch = "x86_64")]
    {
        if inputs.len() >= 6
            && let Some(t) = cpu::Avx512F::detect()
        {
            return multi::hash::<16>(inputs, |s, m| multi::rounds16(t, s, m));
        }
        if inputs.len() >= 3
            && let Some(t) = cpu::Avx2::detect()
        {
            return multi::hash::<8>(inputs, |s, m| multi::rounds8(t, s, m));
        }
    }
    inputs.iter().map(|d| md5(d)).collect()
}

#[cfg(target_arch = "x86_64")]
mod multi {
    //! Multi-buffer MD5: lane `l` of every word vector belongs to buffer
    //! `l`; the rounds are written over `[u32; L]` arrays, which LLVM turns
    //! into vector instructions (rotates, ternary logic) in functions
    //! compiled for AVX-512F or AVX2 and chosen at run time.

    use crate::cpu::{Avx2, Avx512F};

    const K: [u32; 64] = super::portable::K;
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    const IV: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

    /// One 64-byte block per lane: `m[word][lane]`.
    #[inline(always)]
    fn rounds<const L: usize>(state: &mut [[u32; L]; 4], m: &[[u32; L]; 16]) {
        let [mut a, mut b, mut c, mut d] = *state;
        for i in 0..64 {
            let (g, mi) = match i / 16 {
                0 => (0, i),
                1 => (1, (5 * i + 1) % 16),
                2 => (2, (3 * i + 5) % 16),
                _ => (3, (7 * i) % 16),
            };
            let mut n = [0u32; L];
            for l in 0..L {
                let f = match g {
                    0 => d[l] ^ (b[l] & (c[l] ^ d[l])),
                    1 => c[l] ^ (d[l] & (b[l] ^ c[l])),
                    2 => b[l] ^ c[l] ^ d[l],
                    _ => c[l] ^ (b[l] | !d[l]),
                };
                n[l] = a[l]
                    .wrapping_add(f)
                    .wrapping_add(K[i])
                    .wrapping_add(m[mi][l])
                    .rotate_left(S[i])
                    .wrapping_add(b[l]);
            }
            a = d;
            d = c;
            c = b;
            b = n;
        }
        for l in 0..L {
            state[0][l] = state[0][l].wrapping_add(a[l]);
            state[1][l] = state[1][l].wrapping_add(b[l]);
            state[2][l] = state[2][l].wrapping_add(c[l]);
            state[3][l] = state[3][l].wrapping_add(d[l]);
        }
    }

    /// The 16-lane rounds in AVX-512 registers: each round function is one
    /// ternary-logic instruction, each rotation one instruction.
    #[allow(unsafe_code)] // the call of `go`, behind its token; 64-byte loads and stores
    pub(super) fn rounds16(_cpu: Avx512F, state: &mut [[u32; 16]; 4], m: &[[u32; 16]; 16]) {
        #[target_feature(enable = "avx512f")]
        fn go(state: &mut [[u32; 16]; 4], m: &[[u32; 16]; 16]) {
            use std::arch::x86_64::*;
            // SAFETY: unaligned loads and stores of exactly 64 bytes from
            // and to `[u32; 16]` arrays.
            let load = |p: &[u32; 16]| unsafe { _mm512_loadu_si512(p.as_ptr().cast()) };
            let w: [__m512i; 16] = std::array::from_fn(|i| load(&m[i]));
            let (a0, b0, c0, d0) = (
                load(&state[0]),
                load(&state[1]),
                load(&state[2]),
                load(&state[3]),
            );
            let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
            // Step i: round function (ternary-logic table over b, c, d),
            // message word mi, rotation s (RFC 1321).
            macro_rules! step {
                ($f:expr, $i:expr, $mi:expr, $s:expr) => {{
                    let f = _mm512_ternarylogic_epi32::<$f>(b, c, d);
                    let t = _mm512_add_epi32(
                        _mm512_add_epi32(a, f),
                        _mm512_add_epi32(w[$mi], _mm512_set1_epi32(K[$i] as i32)),
                    );
                    let n = _mm512_add_epi32(_mm512_rol_epi32::<$s>(t), b);
                    a = d;
                    d = c;
                    c = b;
                    b = n;
                }};
            }
            md5_steps!(step);
            let store = |p: &mut [u32; 16], v: __m512i| {
                // SAFETY: as for the loads.
                unsafe { _mm512_storeu_si512(p.as_mut_ptr().cast(), v) }
            };
            store(&mut state[0], _mm512_add_epi32(a0, a));
            store(&mut state[1], _mm512_add_epi32(b0, b));
            store(&mut state[2], _mm512_add_epi32(c0, c));
            store(&mut state[3], _mm512_add_epi32(d0, d));
        }
        // SAFETY: `go` needs AVX-512F, which the token `_cpu` proves.
        unsafe { go(state, m) }
    }

    /// The 8-lane rounds, compiled for AVX2.
    #[allow(unsafe_code)] // the call of `go`, behind its token
    pub(super) fn rounds8(_cpu: Avx2, state: &mut [[u32; 8]; 4], m: &[[u32; 8]; 16]) {
        #[target_feature(enable = "avx2")]
        fn go(state: &mut [[u32; 8]; 4], m: &[[u32; 8]; 16]) {
            rounds(state, m)
        }
        // SAFETY: `go` needs AVX2, which the token `_cpu` proves.
        unsafe { go(state, m) }
    }

    /// A buffer in a lane: its whole 64-byte blocks, then one or two
    /// padding blocks.
    struct Lane<'a> {
        input: usize,
        data: &'a [u8],
        full: usize,
        tail: [u8; 128],
        blocks: usize,
        next: usize,
    }

    impl<'a> Lane<'a> {
        fn new(input: usize, data: &'a [u8]) -> Self {
            let full = data.len() / 64;
            let bits = (data.len() as u64).wrapping_mul(8);
            let (tail, n) = crate::final_blocks(&data[full * 64..], bits.to_le_bytes());
            Self {
                input,
                data,
                full,
                tail,
                blocks: full + n / 64,
                next: 0,
            }
        }
        fn block(&self, i: usize) -> &[u8] {
            if i < self.full {
                &self.data[i * 64..i * 64 + 64]
            } else {
                let t = (i - self.full) * 64;
                &self.tail[t..t + 64]
            }
        }
    }

    fn digest(state: [u32; 4]) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, w) in state.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    pub(super) fn hash<const L: usize>(
        inputs: &[&[u8]],
        rounds: impl Fn(&mut [[u32; L]; 4], &[[u32; L]; 16]),
    ) -> Vec<[u8; 16]> {
        let mut out = vec![[0u8; 16]; inputs.len()];
        // Longest first, so that lanes run out of work together.
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(inputs[i].len()));
        let mut queue = order.into_iter();
        let mut lanes: Vec<Option<Lane<'_>>> = (0..L)
            .map(|_| queue.next().map(|i| Lane::new(i, inputs[i])))
            .collect();
        let mut state: [[u32; L]; 4] = IV.map(|v| [v; L]);
        let mut m = [[0u32; L]; 16];
        loop {
            let active = lanes.iter().filter(|l| l.is_some()).count();
            if active == 0 {
                break;
            }
            if active * 4 < L && queue.len() == 0 {
                // A few long buffers left: one scalar MD5 each, from where
                // their lanes are.
                for (l, lane) in lanes.iter_mut().enumerate() {
                    if let Some(lane) = lane.take() {
                        let mut st = [state[0][l], state[1][l], state[2][l], state[3][l]];
                        super::portable::compress(
                            &mut st,
                            &lane.data[lane.next.min(lane.full) * 64..lane.full * 64],
                        );
                        let tail_from = lane.next.saturating_sub(lane.full) * 64;
                        super::portable::compress(
                            &mut st,
                            &lane.tail[tail_from..(lane.blocks - lane.full) * 64],
                        );
                        out[lane.input] = digest(st);
                    }
                }
                break;
            }
            for (l, lane) in lanes.iter().enumerate() {
                if let Some(lane) = lane {
                    let b = lane.block(lane.next);
                    for (w, word) in b.chunks_exact(4).enumerate() {
                        m[w][l] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                    }
                }
            }
            rounds(&mut state, &m);
            for (l, slot) in lanes.iter_mut().enumerate() {
                let Some(lane) = slot else { continue };
                lane.next += 1;
                if lane.next == lane.blocks {
                    out[lane.input] = digest([state[0][l], state[1][l], state[2][l], state[3][l]]);
                    *slot = queue.next().map(|i| Lane::new(i, inputs[i]));
                    for w in 0..4 {
                        state[w][l] = IV[w];
                    }
                }
            }
        }
        out
    }
}

#[cfg(feature = "openssl")]
mod evp {
    //! OpenSSL's MD5 through its EVP interface (the library's own assembly).

    use openssl::hash::{Hasher, MessageDigest};

    pub(super) struct Inner {
        h: Hasher,
    }

    impl Inner {
        /// `None` when the library refuses MD5 (a FIPS-only configuration).
        pub(super) fn new() -> Option<Self> {
            Hasher::new(MessageDigest::md5()).ok().map(|h| Self { h })
        }
        pub(super) fn update(&mut self, data: &[u8]) -> Result<(), String> {
            self.h.update(data).map_err(|e| e.to_string())
        }
        pub(super) fn finalize(mut self) -> Result<[u8; 16], String> {
            let d = self.h.finish().map_err(|e| e.to_string())?;
            <[u8; 16]>::try_from(&*d).map_err(|_| format!("a digest of {} bytes", d.len()))
        }
    }
}

mod portable {
    pub(super) const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];

    #[inline(always)]
    fn ff(a: u32, b: u32, c: u32, d: u32, m: u32, k: u32, s: u32) -> u32 {
        let t = a.wrapping_add(k).wrapping_add(m);
        t.wrapping_add(d ^ (b & (c ^ d)))
            .rotate_left(s)
            .wrapping_add(b)
    }
    #[inline(always)]
    fn gg(a: u32, b: u32, c: u32, d: u32, m: u32, k: u32, s: u32) -> u32 {
        // (b & d) | (c & !d) == (b & d) + (c & !d): the second term does not
        // wait for b.
        let t = a.wrapping_add(k).wrapping_add(m).wrapping_add(c & !d);
        t.wrapping_add(b & d).rotate_left(s).wrapping_add(b)
    }
    #[inline(always)]
    fn hh(a: u32, b: u32, c: u32, d: u32, m: u32, k: u32, s: u32) -> u32 {
        let t = a.wrapping_add(k).wrapping_add(m);
        t.wrapping_add(b ^ (c ^ d)).rotate_left(s).wrapping_add(b)
    }
    #[inline(always)]
    fn ii(a: u32, b: u32, c: u32, d: u32, m: u32, k: u32, s: u32) -> u32 {
        let t = a.wrapping_add(k).wrapping_add(m);
        t.wrapping_add(c ^ (b | !d)).rotate_left(s).wrapping_add(b)
    }

    pub(super) fn compress(state: &mut [u32; 4], blocks: &[u8]) {
        let [mut a0, mut b0, mut c0, mut d0] = *state;
        for blk in blocks.chunks_exact(64) {
            let mut m = [0u32; 16];
            for (i, w) in blk.chunks_exact(4).enumerate() {
                m[i] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            }
            let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
            macro_rules! r4 {
                ($f:ident, $i:expr, $m0:expr, $m1:expr, $m2:expr, $m3:expr, $s0:expr, $s1:expr, $s2:expr, $s3:expr) => {
                    a = $f(a, b, c, d, m[$m0], K[$i], $s0);
                    d = $f(d, a, b, c, m[$m1], K[$i + 1], $s1);
                    c = $f(c, d, a, b, m[$m2], K[$i + 2], $s2);
                    b = $f(b, c, d, a, m[$m3], K[$i + 3], $s3);
                };
            }
            r4!(ff, 0, 0, 1, 2, 3, 7, 12, 17, 22);
            r4!(ff, 4, 4, 5, 6, 7, 7, 12, 17, 22);
            r4!(ff, 8, 8, 9, 10, 11, 7, 12, 17, 22);
            r4!(ff, 12, 12, 13, 14, 15, 7, 12, 17, 22);
            r4!(gg, 16, 1, 6, 11, 0, 5, 9, 14, 20);
            r4!(gg, 20, 5, 10, 15, 4, 5, 9, 14, 20);
            r4!(gg, 24, 9, 14, 3, 8, 5, 9, 14, 20);
            r4!(gg, 28, 13, 2, 7, 12, 5, 9, 14, 20);
            r4!(hh, 32, 5, 8, 11, 14, 4, 11, 16, 23);
            r4!(hh, 36, 1, 4, 7, 10, 4, 11, 16, 23);
            r4!(hh, 40, 13, 0, 3, 6, 4, 11, 16, 23);
            r4!(hh, 44, 9, 12, 15, 2, 4, 11, 16, 23);
            r4!(ii, 48, 0, 7, 14, 5, 6, 10, 15, 21);
            r4!(ii, 52, 12, 3, 10, 1, 6, 10, 15, 21);
            r4!(ii, 56, 8, 15, 6, 13, 6, 10, 15, 21);
            r4!(ii, 60, 4, 11, 2, 9, 6, 10, 15, 21);
            a0 = a0.wrapping_add(a);
            b0 = b0.wrapping_add(b);
            c0 = c0.wrapping_add(c);
            d0 = d0.wrapping_add(d);
        }
        *state = [a0, b0, c0, d0];
    }

    /// A block function: whole 64-byte blocks into the state.
    pub trait Compress: Copy {
        fn compress(self, state: &mut [u32; 4], blocks: &[u8]);
    }

    /// The portable block function.
    #[derive(Clone, Copy)]
    pub struct Scalar;

    impl Compress for Scalar {
        fn compress(self, state: &mut [u32; 4], blocks: &[u8]) {
            compress(state, blocks)
        }
    }

    /// One MD5 stream over a block function.
    pub struct Inner<C> {
        state: [u32; 4],
        blocks: crate::Blocks,
        compress: C,
    }

    impl<C: Compress> Inner<C> {
        pub fn new(compress: C) -> Self {
            Self {
                state: [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476],
                blocks: crate::Blocks::new(),
                compress,
            }
        }
        pub fn update(&mut self, data: &[u8]) {
            let (state, c) = (&mut self.state, self.compress);
            self.blocks.update(data, |b| c.compress(state, b));
        }
        pub fn finalize(mut self) -> [u8; 16] {
            let (tail, n) = self.blocks.finish(false);
            self.compress.compress(&mut self.state, &tail[..n]);
            let mut out = [0u8; 16];
            for (i, w) in self.state.iter().enumerate() {
                out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use digest::Digest;

    #[test]
    fn equals_rustcrypto_md5() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 131 + i / 9) as u8).collect();
        for len in [
            0usize, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 299_999,
        ] {
            let want: [u8; 16] = ::md5::Md5::digest(&data[..len]).into();
            assert_eq!(md5(&data[..len]), want, "len {len}");
            // Fed in uneven pieces.
            let mut h = Md5::new();
            for piece in data[..len].chunks(37) {
                h.update(piece);
            }
            assert_eq!(h.finalize().unwrap(), want, "pieces, len {len}");
            let mut p = portable::Inner::new(portable::Scalar);
            for piece in data[..len].chunks(61) {
                p.update(piece);
            }
            assert_eq!(p.finalize(), want, "portable, len {len}");
            // OpenSSL, whatever the CPU.
            #[cfg(feature = "openssl")]
            {
                let mut o = evp::Inner::new().expect("OpenSSL offers MD5");
                for piece in data[..len].chunks(29) {
                    o.update(piece).unwrap();
                }
                assert_eq!(o.finalize().unwrap(), want, "openssl, len {len}");
            }
            #[cfg(target_arch = "x86_64")]
            if let Some(tok) = cpu::Avx512Vl::detect() {
                let mut t = portable::Inner::new(tok);
                for piece in data[..len].chunks(53) {
                    t.update(piece);
                }
                assert_eq!(t.finalize(), want, "avx512vl, len {len}");
            }
        }
    }

    #[test]
    fn many_equals_one_by_one() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 197 + i / 7) as u8).collect();
        let lens = [
            0usize,
            1,
            55,
            56,
            57,
            63,
            64,
            65,
            119,
            120,
            121,
            128,
            1000,
            4096,
            70_000,
            3,
            200_000,
            64 * 17,
            64 * 17 + 56,
            9,
        ];
        // Every count from one buffer to more than two rounds of 16 lanes,
        // so that lanes are refilled, left idle and finished in scalar.
        for count in 1..=40 {
            let inputs: Vec<&[u8]> = (0..count)
                .map(|i| {
                    let len = lens[(i * 7) % lens.len()];
                    let start = (i * 131) % 1000;
                    &data[start..start + len.min(data.len() - start)]
                })
                .collect();
            let got = md5_many(&inputs);
            for (i, d) in inputs.iter().enumerate() {
                let want: [u8; 16] = ::md5::Md5::digest(d).into();
                assert_eq!(got[i], want, "count {count} input {i} len {}", d.len());
            }
            #[cfg(target_arch = "x86_64")]
            if let Some(t) = cpu::Avx2::detect() {
                let got = multi::hash::<8>(&inputs, |s, m| multi::rounds8(t, s, m));
                for (i, g) in got.iter().enumerate() {
                    let want: [u8; 16] = ::md5::Md5::digest(inputs[i]).into();
                    assert_eq!(*g, want, "avx2, count {count} input {i}");
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn many_equals_rustcrypto(lens in proptest::collection::vec(0usize..3000, 0..50), seed in 0u8..255) {
            let data: Vec<u8> = (0..3000u32).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
            let inputs: Vec<&[u8]> = lens.iter().map(|&n| &data[..n]).collect();
            let got = md5_many(&inputs);
            for (i, d) in inputs.iter().enumerate() {
                let want: [u8; 16] = ::md5::Md5::digest(d).into();
                proptest::prop_assert_eq!(got[i], want);
            }
        }
    }
}
