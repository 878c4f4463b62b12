//! Byte-class masks of 64-byte blocks, for the feature scanners
//! (`trawl-features`: digit runs of the account scanners, zero bytes of
//! UTF-16 text). They are SIMD kernels, so they live here, with the
//! workspace's other `unsafe`; `trawl-features` has none.

#[cfg(target_arch = "x86_64")]
use crate::cpu::Avx2;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Bit `k` set iff `block[k]` is an ASCII digit, with AVX2 (two 32-byte
/// compares).
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)] // the call of `go`, behind its token
pub fn digit_mask64(_cpu: Avx2, block: &[u8; 64]) -> u64 {
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)] // 32-byte loads
    fn go(block: &[u8; 64]) -> u64 {
        let lo = _mm256_set1_epi8(b'0' as i8 - 1);
        let hi = _mm256_set1_epi8(b'9' as i8 + 1);
        let half = |k: usize| {
            // SAFETY: a 32-byte unaligned load of block[32k..32k + 32],
            // inside the 64 bytes (k is 0 or 1).
            let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(32 * k).cast()) };
            // Signed compares: bytes from 0x80 are negative, not digits.
            let d = _mm256_and_si256(_mm256_cmpgt_epi8(v, lo), _mm256_cmpgt_epi8(hi, v));
            _mm256_movemask_epi8(d) as u32 as u64
        };
        half(0) | (half(1) << 32)
    }
    // SAFETY: `go` needs AVX2, which the token `_cpu` proves this CPU has
    // (`Avx2::detect`).
    unsafe { go(block) }
}

/// Bit `k` set iff `block[k] == 0`: with SSE2 on x86-64 (four 16-byte
/// compares; SSE2 is part of x86-64, so there is nothing to detect), a
/// plain loop elsewhere.
#[inline]
pub fn zero_mask64(block: &[u8; 64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        sse2_zero_mask64(block)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        block
            .iter()
            .enumerate()
            .fold(0u64, |m, (i, &b)| m | (u64::from(b == 0) << i))
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)] // SSE2 intrinsics and 16-byte loads
fn sse2_zero_mask64(block: &[u8; 64]) -> u64 {
    let mut m = 0u64;
    for k in 0..4 {
        // SAFETY: SSE2 is part of the x86-64 baseline, so its intrinsics
        // run on every CPU this code is built for; the 16-byte unaligned
        // load reads block[16k..16k + 16], inside the 64 bytes (k < 4).
        let bits = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) as u32 as u64
        };
        m |= bits << (16 * k);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks where every byte value sits at every position modulo 8, next
    /// to digits' neighbours, zeros and bytes with the high bit.
    fn blocks() -> Vec<[u8; 64]> {
        let tricky = [b'0', b'9', b'/', b':', 0, 0x80, 0xb0, 0xff];
        let mut out = Vec::new();
        for v in 0..=255u8 {
            for shift in 0..8 {
                out.push(std::array::from_fn(|k| {
                    if k % 8 == shift {
                        v
                    } else {
                        tricky[(k * 7 + v as usize) % 8]
                    }
                }));
            }
        }
        out
    }

    fn bytewise(b: &[u8; 64], f: impl Fn(u8) -> bool) -> u64 {
        b.iter()
            .enumerate()
            .fold(0u64, |m, (k, &c)| m | (u64::from(f(c)) << k))
    }

    #[test]
    fn masks_equal_bytewise() {
        #[cfg(target_arch = "x86_64")]
        let avx2 = Avx2::detect();
        for b in blocks() {
            assert_eq!(zero_mask64(&b), bytewise(&b, |c| c == 0), "{b:?}");
            #[cfg(target_arch = "x86_64")]
            if let Some(cpu) = avx2 {
                assert_eq!(
                    digit_mask64(cpu, &b),
                    bytewise(&b, |c| c.is_ascii_digit()),
                    "{b:?}"
                );
            }
        }
    }
}
