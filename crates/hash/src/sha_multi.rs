//! SHA-1 and SHA-256 of many buffers at once (carved files): on x86-64
//! with AVX-512, one buffer per 32-bit lane of a 512-bit register (16
//! lanes), the way multi-buffer hashing libraries do it. Elsewhere, or for
//! fewer buffers than make it worthwhile, one RustCrypto digest per buffer
//! (SHA-NI where the CPU has it). Both are checked against the RustCrypto
//! crates in the tests.

use sha1::Digest as _;

/// Fewest buffers (and, once none is waiting, fewest busy lanes) worth the
/// 16-lane SHA-1 kernel: it does about 3.3 times the work of SHA-NI on one
/// core with all 16 lanes busy (Emerald Rapids), so it breaks even at 4-5.
#[cfg(target_arch = "x86_64")]
const SHA1_MIN_INPUTS: usize = 5;
/// The same for SHA-256: about 2.1 times SHA-NI with 16 lanes busy, even
/// at 7-8.
#[cfg(target_arch = "x86_64")]
const SHA256_MIN_INPUTS: usize = 8;

/// SHA-1 of each buffer, in order.
pub fn sha1_many(inputs: &[&[u8]]) -> Vec<[u8; 20]> {
    #[cfg(target_arch = "x86_64")]
    if inputs.len() >= SHA1_MIN_INPUTS
        && let Some(cpu) = crate::cpu::Avx512Bw::detect()
    {
        return multi::hash(cpu, inputs, &multi::SHA1);
    }
    inputs
        .iter()
        .map(|d| sha1::Sha1::digest(d).into())
        .collect()
}

/// SHA-256 of each buffer, in order.
pub fn sha256_many(inputs: &[&[u8]]) -> Vec<[u8; 32]> {
    #[cfg(target_arch = "x86_64")]
    if inputs.len() >= SHA256_MIN_INPUTS
        && let Some(cpu) = crate::cpu::Avx512Bw::detect()
    {
        return multi::hash(cpu, inputs, &multi::SHA256);
    }
    inputs
        .iter()
        .map(|d| sha2::Sha256::digest(d).into())
        .collect()
}

/// The 16-lane kernel alone, whatever the number of inputs (`None`
/// without AVX-512): the tests check it on every batch.
#[cfg(test)]
fn sha1_multi_only(inputs: &[&[u8]]) -> Option<Vec<[u8; 20]>> {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = crate::cpu::Avx512Bw::detect() {
        return Some(multi::hash(cpu, inputs, &multi::SHA1));
    }
    let _ = inputs;
    None
}

/// See [`sha1_multi_only`].
#[cfg(test)]
fn sha256_multi_only(inputs: &[&[u8]]) -> Option<Vec<[u8; 32]>> {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = crate::cpu::Avx512Bw::detect() {
        return Some(multi::hash(cpu, inputs, &multi::SHA256));
    }
    let _ = inputs;
    None
}

#[cfg(target_arch = "x86_64")]
mod multi {
    //! Lane `l` of every word vector belongs to buffer `l`. The lane and
    //! queue machinery is shared by both hashes; each supplies its initial
    //! state, a 16-lane kernel and a scalar compression function.

    use crate::cpu::Avx512Bw;
    use std::arch::x86_64::*;

    use sha2::digest::generic_array::GenericArray;

    /// `S` state words of 16 lanes, `state[word][lane]`.
    type LaneState<const S: usize> = [[u32; 16]; S];

    /// A hash with `S` 32-bit state words, for [`hash`].
    pub(super) struct Algo<const S: usize> {
        iv: [u32; S],
        /// Hashes `blocks` blocks of every lane: lane `l`'s block `i` is
        /// `data[l][64 * i..64 * i + 64]`, zeros where that is out of
        /// bounds (idle lanes).
        kernel: fn(Avx512Bw, &mut LaneState<S>, &[&[u8]; 16], usize),
        /// Hashes the whole 64-byte blocks of a buffer, one lane's state.
        scalar: fn(&mut [u32; S], &[u8]),
        /// With no buffer waiting and fewer lanes than this busy, the rest
        /// is finished by `scalar` (a few long buffers would otherwise run
        /// with most lanes idle).
        min_lanes: usize,
    }

    pub(super) static SHA1: Algo<5> = Algo {
        iv: crate::sha_pair::SHA1_IV,
        kernel: sha1_kernel,
        scalar: |st, data| {
            for b in data.chunks_exact(64) {
                sha1::compress(st, std::slice::from_ref(GenericArray::from_slice(b)));
            }
        },
        min_lanes: super::SHA1_MIN_INPUTS,
    };

    pub(super) static SHA256: Algo<8> = Algo {
        iv: crate::sha_pair::SHA256_IV,
        kernel: sha256_kernel,
        scalar: |st, data| {
            for b in data.chunks_exact(64) {
                sha2::compress256(st, std::slice::from_ref(GenericArray::from_slice(b)));
            }
        },
        min_lanes: super::SHA256_MIN_INPUTS,
    };

    /// Byte-swaps each 32-bit word (`_mm512_shuffle_epi8` mask, the same
    /// in every 128-bit lane).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn bswap_mask() -> __m512i {
        _mm512_set4_epi32(0x0C0D0E0F, 0x08090A0B, 0x04050607, 0x00010203)
    }

    /// Block `i` of every lane as 16 big-endian message words, `w[word]`
    /// holding that word of all lanes: one 64-byte load and one byte
    /// shuffle per lane, then a 16 × 16 transpose in registers.
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    #[allow(unsafe_code)] // a 64-byte load
    fn message(data: &[&[u8]; 16], i: usize, swap: __m512i) -> [__m512i; 16] {
        let mut r = [_mm512_setzero_si512(); 16];
        for (r, d) in r.iter_mut().zip(data) {
            if let Some(b) = d.get(i * 64..i * 64 + 64) {
                // SAFETY: unaligned load of exactly the 64 bytes of `b`.
                let v = unsafe { _mm512_loadu_si512(b.as_ptr().cast()) };
                *r = _mm512_shuffle_epi8(v, swap);
            }
        }
        transpose(r)
    }

    /// Transposes a 16 × 16 matrix of 32-bit words, one row per register.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn transpose(r: [__m512i; 16]) -> [__m512i; 16] {
        let z = _mm512_setzero_si512();
        // Rows 2i and 2i+1 interleaved: in each 128-bit lane k, columns
        // 4k, 4k+1 (t[2i]) and 4k+2, 4k+3 (t[2i+1]).
        let mut t = [z; 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        // u[4g + j]: in 128-bit lane k, column 4k + j of rows 4g..4g+3.
        let mut u = [z; 16];
        for g in 0..4 {
            u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
            u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
            u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
            u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
        }
        // Column 4k + j: lane k of u[j], u[4 + j], u[8 + j], u[12 + j].
        let mut out = [z; 16];
        for j in 0..4 {
            let a = _mm512_shuffle_i32x4::<0x88>(u[j], u[4 + j]);
            let b = _mm512_shuffle_i32x4::<0xDD>(u[j], u[4 + j]);
            let c = _mm512_shuffle_i32x4::<0x88>(u[8 + j], u[12 + j]);
            let d = _mm512_shuffle_i32x4::<0xDD>(u[8 + j], u[12 + j]);
            out[j] = _mm512_shuffle_i32x4::<0x88>(a, c);
            out[4 + j] = _mm512_shuffle_i32x4::<0x88>(b, d);
            out[8 + j] = _mm512_shuffle_i32x4::<0xDD>(a, c);
            out[12 + j] = _mm512_shuffle_i32x4::<0xDD>(b, d);
        }
        out
    }

    /// `$round!(t)` for t = `$b` .. `$b` + 15.
    macro_rules! rounds16 {
        ($round:ident, $b:expr) => {
            $round!($b);
            $round!($b + 1);
            $round!($b + 2);
            $round!($b + 3);
            $round!($b + 4);
            $round!($b + 5);
            $round!($b + 6);
            $round!($b + 7);
            $round!($b + 8);
            $round!($b + 9);
            $round!($b + 10);
            $round!($b + 11);
            $round!($b + 12);
            $round!($b + 13);
            $round!($b + 14);
            $round!($b + 15);
        };
    }

    /// Loads a lane-major state, `S` registers.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(unsafe_code)] // 64-byte loads
    fn load_state<const S: usize>(state: &[[u32; 16]; S]) -> [__m512i; S] {
        let mut v = [_mm512_setzero_si512(); S];
        for (v, s) in v.iter_mut().zip(state) {
            // SAFETY: unaligned load of exactly the 64 bytes of a
            // `[u32; 16]`.
            *v = unsafe { _mm512_loadu_si512(s.as_ptr().cast()) };
        }
        v
    }

    /// Stores what [`load_state`] loaded.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(unsafe_code)] // 64-byte stores
    fn store_state<const S: usize>(state: &mut [[u32; 16]; S], v: [__m512i; S]) {
        for (s, v) in state.iter_mut().zip(v) {
            // SAFETY: unaligned store of exactly the 64 bytes of a
            // `[u32; 16]`.
            unsafe { _mm512_storeu_si512(s.as_mut_ptr().cast(), v) }
        }
    }

    /// The 80 SHA-1 steps (FIPS 180-4) in AVX-512 registers: each round
    /// function is one ternary-logic instruction, each rotation one
    /// instruction; the message schedule is computed 16 words ahead in
    /// place.
    #[allow(unsafe_code)] // the call of `go`, behind its token
    fn sha1_kernel(_cpu: Avx512Bw, state: &mut [[u32; 16]; 5], data: &[&[u8]; 16], blocks: usize) {
        #[target_feature(enable = "avx512f,avx512bw")]
        fn go(state: &mut [[u32; 16]; 5], data: &[&[u8]; 16], blocks: usize) {
            const K: [u32; 4] = [0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6];
            let swap = bswap_mask();
            let mut s = load_state(state);
            for i in 0..blocks {
                let mut w = message(data, i, swap);
                let [mut a, mut b, mut c, mut d, mut e] = s;
                // Step t: round function as a ternary-logic table over b,
                // c, d (choose, parity, majority, parity); w[t % 16] is
                // replaced by W[t] from t = 16 on.
                macro_rules! step {
                    ($t:expr) => {{
                        let j = $t % 16;
                        if $t >= 16 {
                            let x = _mm512_ternarylogic_epi32::<0x96>(
                                w[($t + 13) % 16],
                                w[($t + 8) % 16],
                                w[($t + 2) % 16],
                            );
                            w[j] = _mm512_rol_epi32::<1>(_mm512_xor_si512(x, w[j]));
                        }
                        let f = match $t / 20 {
                            0 => _mm512_ternarylogic_epi32::<0xCA>(b, c, d),
                            2 => _mm512_ternarylogic_epi32::<0xE8>(b, c, d),
                            _ => _mm512_ternarylogic_epi32::<0x96>(b, c, d),
                        };
                        let ew = _mm512_add_epi32(
                            e,
                            _mm512_add_epi32(w[j], _mm512_set1_epi32(K[$t / 20] as i32)),
                        );
                        let n = _mm512_add_epi32(_mm512_add_epi32(_mm512_rol_epi32::<5>(a), f), ew);
                        e = d;
                        d = c;
                        c = _mm512_rol_epi32::<30>(b);
                        b = a;
                        a = n;
                    }};
                }
                rounds16!(step, 0);
                rounds16!(step, 16);
                rounds16!(step, 32);
                rounds16!(step, 48);
                rounds16!(step, 64);
                s = [
                    _mm512_add_epi32(s[0], a),
                    _mm512_add_epi32(s[1], b),
                    _mm512_add_epi32(s[2], c),
                    _mm512_add_epi32(s[3], d),
                    _mm512_add_epi32(s[4], e),
                ];
            }
            store_state(state, s);
        }
        // SAFETY: `go` needs AVX-512F and AVX-512BW, which the token
        // `_cpu` proves this CPU has (`Avx512Bw::detect`).
        unsafe { go(state, data, blocks) }
    }

    /// The 64 SHA-256 rounds (FIPS 180-4) in AVX-512 registers: each Σ/σ
    /// is three rotations or shifts and one three-way-xor ternary-logic
    /// instruction, Ch and Maj one ternary-logic instruction each.
    #[allow(unsafe_code)] // the call of `go`, behind its token
    fn sha256_kernel(
        _cpu: Avx512Bw,
        state: &mut [[u32; 16]; 8],
        data: &[&[u8]; 16],
        blocks: usize,
    ) {
        #[target_feature(enable = "avx512f,avx512bw")]
        fn go(state: &mut [[u32; 16]; 8], data: &[&[u8]; 16], blocks: usize) {
            const K: [u32; 64] = crate::sha_pair::K256;
            let swap = bswap_mask();
            let mut s = load_state(state);
            for i in 0..blocks {
                let mut w = message(data, i, swap);
                let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = s;
                // Round t; w[t % 16] is replaced by W[t] from t = 16 on.
                macro_rules! round {
                    ($t:expr) => {{
                        let j = $t % 16;
                        if $t >= 16 {
                            let w15 = w[($t + 1) % 16];
                            let w2 = w[($t + 14) % 16];
                            let s0 = _mm512_ternarylogic_epi32::<0x96>(
                                _mm512_ror_epi32::<7>(w15),
                                _mm512_ror_epi32::<18>(w15),
                                _mm512_srli_epi32::<3>(w15),
                            );
                            let s1 = _mm512_ternarylogic_epi32::<0x96>(
                                _mm512_ror_epi32::<17>(w2),
                                _mm512_ror_epi32::<19>(w2),
                                _mm512_srli_epi32::<10>(w2),
                            );
                            w[j] = _mm512_add_epi32(
                                _mm512_add_epi32(w[j], s0),
                                _mm512_add_epi32(w[($t + 9) % 16], s1),
                            );
                        }
                        let hkw = _mm512_add_epi32(
                            h,
                            _mm512_add_epi32(w[j], _mm512_set1_epi32(K[$t] as i32)),
                        );
                        let s1 = _mm512_ternarylogic_epi32::<0x96>(
                            _mm512_ror_epi32::<6>(e),
                            _mm512_ror_epi32::<11>(e),
                            _mm512_ror_epi32::<25>(e),
                        );
                        let ch = _mm512_ternarylogic_epi32::<0xCA>(e, f, g);
                        let t1 = _mm512_add_epi32(hkw, _mm512_add_epi32(s1, ch));
                        let s0 = _mm512_ternarylogic_epi32::<0x96>(
                            _mm512_ror_epi32::<2>(a),
                            _mm512_ror_epi32::<13>(a),
                            _mm512_ror_epi32::<22>(a),
                        );
                        let maj = _mm512_ternarylogic_epi32::<0xE8>(a, b, c);
                        h = g;
                        g = f;
                        f = e;
                        e = _mm512_add_epi32(d, t1);
                        d = c;
                        c = b;
                        b = a;
                        a = _mm512_add_epi32(t1, _mm512_add_epi32(s0, maj));
                    }};
                }
                rounds16!(round, 0);
                rounds16!(round, 16);
                rounds16!(round, 32);
                rounds16!(round, 48);
                let n = [a, b, c, d, e, f, g, h];
                for (s, n) in s.iter_mut().zip(n) {
                    *s = _mm512_add_epi32(*s, n);
                }
            }
            store_state(state, s);
        }
        // SAFETY: `go` needs AVX-512F and AVX-512BW, which the token
        // `_cpu` proves this CPU has (`Avx512Bw::detect`).
        unsafe { go(state, data, blocks) }
    }

    /// A buffer in a lane: its whole 64-byte blocks, then one or two
    /// padding blocks.
    struct Lane<'a> {
        input: usize,
        /// Whole blocks not hashed yet.
        data: &'a [u8],
        /// The last partial block, the 0x80 byte, zeros and the big-endian
        /// bit length: `tail[..tail_end]`, hashed from `tail_pos` on once
        /// `data` is empty.
        tail: [u8; 128],
        tail_pos: usize,
        tail_end: usize,
    }

    impl<'a> Lane<'a> {
        fn new(input: usize, data: &'a [u8]) -> Self {
            let bits = (data.len() as u64).wrapping_mul(8);
            let (data, rest) = data.split_at(data.len() / 64 * 64);
            let (tail, tail_end) = crate::final_blocks(rest, bits.to_be_bytes());
            Self {
                input,
                data,
                tail,
                tail_pos: 0,
                tail_end,
            }
        }
        /// The blocks of the current stretch (whole blocks of the buffer,
        /// or padding blocks): never empty until the lane is done.
        fn pending(&self) -> &[u8] {
            if self.data.is_empty() {
                &self.tail[self.tail_pos..self.tail_end]
            } else {
                self.data
            }
        }
        /// `n` bytes of [`Lane::pending`] hashed.
        fn advance(&mut self, n: usize) {
            if self.data.is_empty() {
                self.tail_pos = (self.tail_pos + n).min(self.tail_end);
            } else {
                self.data = self.data.get(n..).unwrap_or_default();
            }
        }
        fn done(&self) -> bool {
            self.data.is_empty() && self.tail_pos == self.tail_end
        }
    }

    /// Hashes `inputs` with `algo` (`D` = 4 `S` digest bytes), 16 lanes at
    /// a time: longest buffers first, a lane refilled from the queue when
    /// its buffer is done, and the kernel run for as many blocks as no lane
    /// changes stretch.
    pub(super) fn hash<const S: usize, const D: usize>(
        cpu: Avx512Bw,
        inputs: &[&[u8]],
        algo: &Algo<S>,
    ) -> Vec<[u8; D]> {
        let mut out = vec![[0u8; D]; inputs.len()];
        // Longest first, so that lanes run out of work together.
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(inputs[i].len()));
        let mut queue = order.into_iter();
        let mut lanes: [Option<Lane<'_>>; 16] =
            std::array::from_fn(|_| queue.next().map(|i| Lane::new(i, inputs[i])));
        let mut state: [[u32; 16]; S] = algo.iv.map(|v| [v; 16]);
        loop {
            let active = lanes.iter().flatten().count();
            if active == 0 {
                break;
            }
            if active < algo.min_lanes && queue.len() == 0 {
                // A few long buffers left: scalar compression each, from
                // where their lanes are.
                for (l, lane) in lanes.iter_mut().enumerate() {
                    if let Some(lane) = lane.take() {
                        let mut st: [u32; S] = std::array::from_fn(|w| state[w][l]);
                        (algo.scalar)(&mut st, lane.data);
                        (algo.scalar)(&mut st, &lane.tail[lane.tail_pos..lane.tail_end]);
                        out[lane.input] = crate::sha_pair::digest(st);
                    }
                }
                break;
            }
            let blocks = lanes
                .iter()
                .flatten()
                .map(|l| l.pending().len() / 64)
                .min()
                .unwrap_or(0);
            let data: [&[u8]; 16] =
                std::array::from_fn(|l| lanes[l].as_ref().map_or(&[][..], |l| l.pending()));
            (algo.kernel)(cpu, &mut state, &data, blocks);
            for (l, slot) in lanes.iter_mut().enumerate() {
                let Some(lane) = slot else { continue };
                lane.advance(blocks * 64);
                if lane.done() {
                    out[lane.input] =
                        crate::sha_pair::digest(std::array::from_fn::<u32, S, _>(|w| state[w][l]));
                    *slot = queue.next().map(|i| Lane::new(i, inputs[i]));
                    for (s, iv) in state.iter_mut().zip(algo.iv) {
                        s[l] = iv;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha_pair::tests::random_bytes;

    fn check(inputs: &[&[u8]]) {
        let want1: Vec<[u8; 20]> = inputs
            .iter()
            .map(|d| sha1::Sha1::digest(d).into())
            .collect();
        let want2: Vec<[u8; 32]> = inputs
            .iter()
            .map(|d| sha2::Sha256::digest(d).into())
            .collect();
        assert_eq!(sha1_many(inputs), want1);
        assert_eq!(sha256_many(inputs), want2);
        // The kernels themselves, whatever the number of inputs.
        if let Some(got) = sha1_multi_only(inputs) {
            assert_eq!(got, want1);
        }
        if let Some(got) = sha256_multi_only(inputs) {
            assert_eq!(got, want2);
        }
    }

    #[test]
    fn empty_batch() {
        check(&[]);
        check(&[&b""[..]]);
        check(&[&b""[..]; 17]);
    }

    #[test]
    fn every_length_to_300() {
        let data = random_bytes(300, 1);
        // All at once (many lanes, refills) and one by one.
        let all: Vec<&[u8]> = (0..=300).map(|n| &data[..n]).collect();
        check(&all);
        for s in &all {
            check(&[s]);
        }
    }

    #[test]
    fn block_boundaries() {
        let data = random_bytes(200, 2);
        let lens = [55, 56, 57, 63, 64, 65, 119, 120, 121, 127, 128, 129];
        let inputs: Vec<&[u8]> = lens.iter().map(|&n| &data[..n]).collect();
        check(&inputs);
        for &n in &lens {
            check(&vec![&data[..n]; 16]);
            check(&vec![&data[..n]; 20]);
        }
    }

    #[test]
    fn mixed_batches() {
        let data = random_bytes(1 << 20, 3);
        let mut seed = 0x9E3779B97F4A7C15u64;
        for &count in &[1usize, 5, 16, 17, 40, 100] {
            // Varied lengths and offsets.
            let mut varied = Vec::new();
            for _ in 0..count {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let len = (seed % 20_000) as usize;
                let off = ((seed >> 32) % 1000) as usize;
                varied.push(&data[off..off + len]);
            }
            check(&varied);
            // Equal lengths, different contents.
            let equal: Vec<&[u8]> = (0..count).map(|i| &data[i * 77..i * 77 + 4096]).collect();
            check(&equal);
        }
    }

    #[test]
    fn one_huge_among_small() {
        let data = random_bytes(5 << 20, 4);
        let mut inputs: Vec<&[u8]> = (0..30).map(|i| &data[i..i * 997 + 1]).collect();
        inputs.insert(7, &data[..]);
        check(&inputs);
        // A few big ones of different sizes (lanes finish scalar).
        let big: Vec<&[u8]> = (0..20).map(|i| &data[i * 3..(i + 1) * 200_003]).collect();
        check(&big);
    }
}
