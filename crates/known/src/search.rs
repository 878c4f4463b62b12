//! Search in a sorted array of fixed-width digests.
//!
//! With a page index (table format 2): [`contains_indexed`] (one lookup) and
//! [`contains_batch`] (many, pipelined), described in the crate docs. Below,
//! the version-1 search without an index:
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
    prefix_of(d)
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

/// Buckets of the page index (format version 2) hold on average between
/// `BUCKET_MIN` and `2 × BUCKET_MIN` entries: see [`index_bits`].
pub const BUCKET_MIN: u64 = 32;
/// The most prefix bits an index may use.
pub const MAX_INDEX_BITS: u32 = 32;
/// Entries either side of the in-bucket estimate that a lookup prefetches
/// and searches first (the estimate's standard deviation is at most
/// √64 / 2 = 4 entries).
pub const WINDOW: usize = 8;
/// Lookups in flight in [`contains_batch`].
const DEPTH: usize = 16;

/// The first eight bytes of a digest as a big-endian number.
#[inline]
#[must_use]
pub fn prefix_of(d: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let k = d.len().min(8);
    b[..k].copy_from_slice(&d[..k]);
    u64::from_be_bytes(b)
}

/// The prefix bits the index of an `n`-entry array uses: the largest `b`
/// (at most [`MAX_INDEX_BITS`]) with `n / 2^b ≥ BUCKET_MIN`, so a bucket
/// holds on average 32 to 64 entries; `0` (one bucket) for small arrays.
#[must_use]
pub fn index_bits(n: u64) -> u32 {
    match n / BUCKET_MIN {
        0 => 0,
        q => q.ilog2().min(MAX_INDEX_BITS),
    }
}

/// The bucket of prefix `p` under `bits` bits.
#[inline]
#[must_use]
pub fn bucket_of(p: u64, bits: u32) -> u64 {
    if bits == 0 { 0 } else { p >> (64 - bits) }
}

/// The prefix range `[lo_key, hi_key]` of bucket `b`.
#[inline]
fn bucket_keys(b: u64, bits: u32) -> (u64, u64) {
    if bits == 0 {
        (0, u64::MAX)
    } else {
        let lo = b << (64 - bits);
        (lo, lo | (u64::MAX >> bits))
    }
}

/// A page index: for every bucket of `bits` prefix bits, the position of
/// its first entry (`2^bits + 1` little-endian integers of `width` bytes,
/// the last one the entry count).
#[derive(Debug, Clone, Copy)]
pub struct Index<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) bits: u32,
    pub(crate) width: usize,
}

impl<'a> Index<'a> {
    /// An index over `bytes` (`2^bits + 1` integers of `width` = 4 or 8
    /// bytes); `None` when the sizes disagree.
    #[must_use]
    pub fn new(bytes: &'a [u8], bits: u32, width: usize) -> Option<Index<'a>> {
        let entries = 1u64.checked_shl(bits)?.checked_add(1)?;
        let ok = bits <= MAX_INDEX_BITS
            && (width == 4 || width == 8)
            && entries.checked_mul(width as u64) == Some(bytes.len() as u64);
        ok.then_some(Index { bytes, bits, width })
    }

    /// The prefix bits.
    #[must_use]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Buckets (`2^bits`).
    #[must_use]
    pub fn buckets(&self) -> u64 {
        1u64 << self.bits
    }

    /// Entry `j` (0 ..= 2^bits), as stored; out of range reads as `u64::MAX`.
    #[inline]
    #[must_use]
    pub fn start(&self, j: u64) -> u64 {
        let at = (j as usize).saturating_mul(self.width);
        match self.bytes.get(at..at.saturating_add(self.width)) {
            Some(b) if self.width == 4 => {
                u64::from(u32::from_le_bytes(b.try_into().unwrap_or_default()))
            }
            Some(b) => u64::from_le_bytes(b.try_into().unwrap_or_default()),
            None => u64::MAX,
        }
    }

    #[inline]
    fn entry_ptr(&self, j: u64) -> *const u8 {
        let at = ((j as usize).saturating_mul(self.width)).min(self.bytes.len().saturating_sub(1));
        self.bytes.as_ptr().wrapping_add(at)
    }
}

/// Hints the CPU to fetch the cache line holding `p` (a TLB miss included).
/// Only a hint: no memory is read, so any address is harmless.
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetch` only hints the cache: it reads no memory the
    // program sees and never faults, whatever the address; SSE, which it
    // needs, is part of every x86_64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
    }
}

/// Prefetches the lines of `arr[w0..w1]`.
#[inline]
fn prefetch_range<const N: usize>(arr: &[[u8; N]], w0: usize, w1: usize) {
    if w0 >= w1 {
        return;
    }
    let first = arr[w0].as_ptr();
    let bytes = (w1 - w0) * N;
    let mut off = 0usize;
    // One hint per 64-byte line, from the line holding the first byte.
    let skew = first as usize & 63;
    while off < bytes + skew {
        prefetch(first.wrapping_add(off).wrapping_sub(skew));
        off += 64;
    }
}

/// Where a target lies: its bucket's entries `[lo, hi)` and keys, and the
/// window searched first.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    lo: usize,
    hi: usize,
    w0: usize,
    w1: usize,
}

/// The bucket of `t` (clamped to the array whatever the index holds) and
/// the window around the interpolated position.
#[inline]
fn probe(n: usize, idx: &Index<'_>, t: u64) -> Probe {
    let b = bucket_of(t, idx.bits);
    let lo = idx.start(b).min(n as u64) as usize;
    let hi = (idx.start(b + 1).min(n as u64) as usize).max(lo);
    let len = hi - lo;
    if len == 0 {
        return Probe {
            lo,
            hi,
            w0: lo,
            w1: lo,
        };
    }
    let (lo_key, hi_key) = bucket_keys(b, idx.bits);
    let span = u128::from(hi_key - lo_key) + 1;
    let off = (u128::from(t.saturating_sub(lo_key)) * len as u128 / span) as usize;
    let est = lo + off.min(len - 1);
    Probe {
        lo,
        hi,
        w0: est.saturating_sub(WINDOW).max(lo),
        w1: (est + WINDOW + 1).min(hi),
    }
}

/// Finishes a lookup: the window first, then the side of the bucket the
/// target falls on (binary search). Never leaves the array.
#[inline]
fn finish<const N: usize>(arr: &[[u8; N]], p: Probe, target: &[u8; N]) -> bool {
    if p.w0 >= p.w1 {
        return false;
    }
    if *target < arr[p.w0] {
        arr[p.lo..p.w0].binary_search(target).is_ok()
    } else if *target > arr[p.w1 - 1] {
        arr[p.w1..p.hi].binary_search(target).is_ok()
    } else {
        arr[p.w0..p.w1].contains(target)
    }
}

/// True when `target` is in `arr`, found through its page index: the
/// index gives the target's bucket (32 to 64 entries, usually inside one
/// 4 KiB page), the bucket's key range gives an estimate, and the
/// ±[`WINDOW`] entries around it are compared (one cold page, a few
/// adjacent lines); a target outside the window is binary-searched in the
/// rest of the bucket. A corrupt index may give a wrong answer
/// ([`crate::Table::verify`] detects it), never a panic.
#[must_use]
pub fn contains_indexed<const N: usize>(
    arr: &[[u8; N]],
    idx: &Index<'_>,
    target: &[u8; N],
) -> bool {
    let p = probe(arr.len(), idx, prefix_of(target));
    prefetch_range(arr, p.w0, p.w1);
    finish(arr, p, target)
}

/// Prefetches the window of `target` (for a caller about to look up
/// several digests: issue every prefetch, then every lookup).
pub fn prefetch_indexed<const N: usize>(arr: &[[u8; N]], idx: &Index<'_>, target: &[u8; N]) {
    let p = probe(arr.len(), idx, prefix_of(target));
    prefetch_range(arr, p.w0, p.w1);
}

/// [`contains_indexed`] for many targets, software-pipelined: the index
/// entries of target `i + 2·16` and the array window of target `i + 16`
/// are prefetched while target `i` is compared, so the cache and TLB misses
/// of independent lookups overlap instead of following one another.
/// `targets[i]` of `None` is skipped (`out[i]` untouched); `out[i]` is set to
/// true for a target present. Memory: a fixed ring of 32 probes.
///
/// # Panics
/// Never for a table's data; `out` must be as long as `targets`.
pub fn contains_batch<const N: usize>(
    arr: &[[u8; N]],
    idx: &Index<'_>,
    targets: &[Option<&[u8; N]>],
    out: &mut [bool],
) {
    let n = targets.len().min(out.len());
    let mut ring = [Probe::default(); DEPTH];
    for i in 0..n + 2 * DEPTH {
        // Stage 3: compare target i − 2·DEPTH (first: stage 2 reuses its
        // ring slot).
        if let Some(k) = i.checked_sub(2 * DEPTH).filter(|&k| k < n)
            && let Some(t) = targets[k]
            && finish(arr, ring[k % DEPTH], t)
        {
            out[k] = true;
        }
        // Stage 2: the window of target i − DEPTH.
        if let Some(j) = i.checked_sub(DEPTH).filter(|&j| j < n)
            && let Some(t) = targets[j]
        {
            let p = probe(arr.len(), idx, prefix_of(t));
            prefetch_range(arr, p.w0, p.w1);
            ring[j % DEPTH] = p;
        }
        // Stage 1: the index entries of target i.
        if i < n
            && let Some(t) = targets[i]
        {
            let b = bucket_of(prefix_of(t), idx.bits);
            prefetch(idx.entry_ptr(b));
            prefetch(idx.entry_ptr(b + 1));
        }
    }
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

    /// An index built the way the import builds it.
    fn index_bytes(a: &[[u8; 16]], bits: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for j in 0..=(1u64 << bits) {
            let s = a.partition_point(|d| bucket_of(prefix_of(d), bits) < j) as u32;
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    #[test]
    fn indexed_and_batched_agree_with_binary_search() {
        let mut skewed: Vec<[u8; 16]> = (0u64..3000)
            .map(|i| {
                let mut d = [0xAB; 16];
                d[8..].copy_from_slice(&i.to_be_bytes());
                d
            })
            .collect();
        skewed.push([0xFF; 16]);
        for a in [arr(0, 1), arr(1, 2), arr(100, 3), arr(50_000, 4), skewed] {
            for bits in [0, index_bits(a.len() as u64), 12] {
                let bytes = index_bytes(&a, bits);
                let idx = Index::new(&bytes, bits, 4).unwrap();
                let mut qs: Vec<[u8; 16]> = a.iter().step_by(3).copied().collect();
                qs.extend(a.iter().step_by(5).map(|d| {
                    let mut e = *d;
                    e[15] ^= 1;
                    e
                }));
                qs.extend(arr(300, 99));
                qs.extend([[0; 16], [0xFF; 16]]);
                let want: Vec<bool> = qs.iter().map(|q| a.binary_search(q).is_ok()).collect();
                let one: Vec<bool> = qs.iter().map(|q| contains_indexed(&a, &idx, q)).collect();
                assert_eq!(one, want);
                let targets: Vec<Option<&[u8; 16]>> = qs
                    .iter()
                    .enumerate()
                    .map(|(i, q)| (i % 7 != 3).then_some(q))
                    .collect();
                let mut out = vec![false; qs.len()];
                contains_batch(&a, &idx, &targets, &mut out);
                for (i, (o, w)) in out.iter().zip(&want).enumerate() {
                    assert_eq!(*o, *w && i % 7 != 3, "{i}");
                }
            }
        }
    }

    #[test]
    fn hostile_index_never_panics() {
        let a = arr(5000, 5);
        let mut s = 1u64;
        for bits in [0u32, 3, 7] {
            let mut bytes = vec![0u8; ((1usize << bits) + 1) * 4];
            for b in &mut bytes {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                *b = (s >> 56) as u8;
            }
            let idx = Index::new(&bytes, bits, 4).unwrap();
            let targets: Vec<Option<&[u8; 16]>> = a.iter().step_by(11).map(Some).collect();
            let mut out = vec![false; targets.len()];
            contains_batch(&a, &idx, &targets, &mut out);
            for d in a.iter().step_by(13) {
                let _ = contains_indexed(&a, &idx, d);
            }
        }
        assert!(Index::new(&[0; 12], 1, 4).is_some());
        assert!(Index::new(&[0; 12], 2, 4).is_none());
        assert!(Index::new(&[0; 12], 1, 3).is_none());
        assert!(Index::new(&[0; 12], 64, 4).is_none());
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
