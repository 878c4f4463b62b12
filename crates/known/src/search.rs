//! Search in a sorted array of fixed-width digests.
//!
//! Digests are uniformly distributed, so the position of a digest in a sorted
//! array of `n` is about `n × (its first 8 bytes as a number) / 2⁶⁴`, with a
//! standard deviation under √n / 2. [`contains`] estimates the position and
//! probes nine entries spread over the estimate ± (√n + 8), independent loads
//! whose cache and TLB misses overlap (a memory latency per round, not per
//! probe): the target almost always lies between two of them, so one round
//! shrinks the range from n to about √n / 4 (n = 10⁸ → 2,500 → 12), and the
//! last few dozen entries are compared in one pass. A round whose window
//! misses still narrows the range on one side. After [`MAX_ROUNDS`] rounds, or once
//! the range is small, a binary search finishes, so a table that is not
//! uniform (or crafted) costs at most a few dozen probes. Indexes never leave
//! the array, whatever its contents: on an unsorted array the answer may be
//! wrong (the table is corrupt, which [`crate::Table::verify`] detects) but
//! nothing panics.

use std::cmp::Ordering;

/// Interpolation rounds before the binary search takes over.
pub const MAX_ROUNDS: usize = 6;
/// At most this many entries are scanned linearly (their loads overlap).
const SMALL: usize = 32;
/// Probes per round, spread over the estimate's ±2σ window.
const FAN: usize = 9;

#[inline]
fn prefix<const N: usize>(d: &[u8; N]) -> u64 {
    let mut b = [0u8; 8];
    let k = N.min(8);
    b[..k].copy_from_slice(&d[..k]);
    u64::from_be_bytes(b)
}

/// True when `target` is in the ascending array `arr` (interpolation search
/// falling back to binary search).
#[must_use]
pub fn contains<const N: usize>(arr: &[[u8; N]], target: &[u8; N]) -> bool {
    let t = prefix(target);
    // Invariant (on a sorted array): every entry in [lo, hi) has a prefix in
    // [lo_key, hi_key], and the target, if present, is in [lo, hi).
    let (mut lo, mut hi) = (0usize, arr.len());
    let (mut lo_key, mut hi_key) = (0u64, u64::MAX);
    for _ in 0..MAX_ROUNDS {
        let len = hi - lo;
        if len <= SMALL {
            return arr[lo..hi].contains(target);
        }
        if t < lo_key || t > hi_key {
            return false;
        }
        let span = u128::from(hi_key - lo_key) + 1;
        let off = (u128::from(t - lo_key) * len as u128 / span) as usize;
        let est = lo + off.min(len - 1);
        // The estimate's standard deviation is under √len / 2: FAN probes
        // spread over ±(√len + 8) leave about √len / 4 entries between two.
        let step = (len.isqrt() + 8).div_ceil(FAN / 2);
        let first = est.saturating_sub(step * (FAN / 2));
        let mut idx = [0usize; FAN];
        for (j, i) in idx.iter_mut().enumerate() {
            *i = first.saturating_add(step * j).clamp(lo, hi - 1);
        }
        // All loads first, without branches: their cache and TLB misses
        // overlap instead of following one another.
        let keys: [u64; FAN] = idx.map(|i| prefix(&arr[i]));
        let (mut nlo, mut nlo_key, mut nhi, mut nhi_key) = (lo, lo_key, hi, hi_key);
        for (&i, &k) in idx.iter().zip(&keys) {
            match arr[i].cmp(target) {
                Ordering::Equal => return true,
                Ordering::Less => (nlo, nlo_key) = (i + 1, k),
                Ordering::Greater => {
                    (nhi, nhi_key) = (i, k);
                    break;
                }
            }
        }
        (lo, lo_key, hi, hi_key) = (nlo, nlo_key, nhi, nhi_key);
        if lo_key > hi_key || lo > hi {
            // Only on an unsorted (corrupt) array.
            return false;
        }
    }
    arr[lo..hi].binary_search(target).is_ok()
}

/// Plain binary search, for comparison in the benchmarks.
#[must_use]
pub fn binary_contains<const N: usize>(arr: &[[u8; N]], target: &[u8; N]) -> bool {
    arr.binary_search(target).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(n: usize, seed: u64) -> Vec<[u8; 16]> {
        let mut s = seed;
        let mut v: Vec<[u8; 16]> = (0..n)
            .map(|_| {
                let mut d = [0u8; 16];
                for c in d.chunks_mut(8) {
                    s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = s;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    c.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
                }
                d
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn finds_every_entry_and_no_neighbour() {
        for n in [0, 1, 2, 31, 33, 1000, 100_000] {
            let a = arr(n, n as u64);
            for d in &a {
                assert!(contains(&a, d));
                let mut e = *d;
                e[15] ^= 1;
                assert_eq!(contains(&a, &e), a.binary_search(&e).is_ok());
            }
        }
    }

    #[test]
    fn skewed_and_extreme_values() {
        // All entries share the first 8 bytes: interpolation learns nothing.
        let mut a: Vec<[u8; 16]> = (0u64..5000)
            .map(|i| {
                let mut d = [0xAB; 16];
                d[8..].copy_from_slice(&i.to_be_bytes());
                d
            })
            .collect();
        a.sort_unstable();
        for d in &a {
            assert!(contains(&a, d));
        }
        assert!(!contains(&a, &[0u8; 16]));
        assert!(!contains(&a, &[0xFF; 16]));
        a.push([0xFF; 16]);
        a.insert(0, [0; 16]);
        assert!(contains(&a, &[0xFF; 16]));
        assert!(contains(&a, &[0; 16]));
    }

    #[test]
    fn unsorted_never_panics() {
        let mut a = arr(10_000, 7);
        a.reverse();
        for d in a.iter().step_by(7) {
            let _ = contains(&a, d);
        }
    }
}
