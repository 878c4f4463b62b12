//! Image hashing.
//!
//! * **BLAKE3** of the whole image is built from one chaining value per shard:
//!   each shard hashes its owned range `[start, end)` as a BLAKE3 subtree
//!   (`hazmat::HasherExt::set_input_offset` + `finalize_non_root`), and
//!   [`merge_blake3`] combines the subtrees along BLAKE3's tree shape. Shard
//!   sizes are powers of two (at least one 1 KiB chunk), so every shard is a
//!   complete, aligned subtree and the merge equals `b3sum` of the image. An
//!   image of one shard is hashed as the root directly.
//! * **MD5, SHA-1, SHA-256** cannot be split: [`stream_hash`] reads the image
//!   once, sequentially, and feeds every block to three hasher threads at
//!   once (zero-copy blocks for memory-mapped evidence).
//! * **Piecewise** hashes: BLAKE3 (and optionally MD5) of every window of a
//!   power-of-two size, computed by the shard that owns the window's start.

pub mod bytes;
#[cfg(target_arch = "x86_64")]
pub mod cpu;
pub mod md5;
pub mod sha_multi;
pub mod sha_pair;

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use trawl_core::{PiecewiseHash, Shard, ShardPlan};
use trawl_evidence::{Evidence, EvidenceError};

pub use trawl_core::Blake3Part;

/// Why hashing failed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("cancelled")]
    Cancelled,
    #[error("internal error: {0}")]
    Internal(String),
}

/// BLAKE3 part of a shard whose owned bytes are `owned` (exactly
/// `[shard.start, shard.end)`).
pub fn blake3_part(plan: &ShardPlan, shard: &Shard, owned: &[u8]) -> Blake3Part {
    debug_assert_eq!(owned.len() as u64, shard.len());
    let mut h = blake3::Hasher::new();
    if plan.len() == 1 {
        h.update(owned);
        return Blake3Part::Root(*h.finalize().as_bytes());
    }
    h.set_input_offset(shard.start);
    h.update(owned);
    Blake3Part::ChainingValue(h.finalize_non_root())
}

/// Errors of the BLAKE3 merge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("expected {expected} BLAKE3 shard parts, got {got}")]
    Count { expected: u32, got: usize },
    #[error("shard {0}: a root hash where a chaining value was expected (or the reverse)")]
    Kind(u32),
}

/// Merges per-shard parts (indexed by shard) into the BLAKE3 of the image.
///
/// # Errors
/// A missing part or a part of the wrong kind for the plan.
pub fn merge_blake3(plan: &ShardPlan, parts: &[Blake3Part]) -> Result<[u8; 32], MergeError> {
    let n = plan.len();
    if parts.len() != n as usize {
        return Err(MergeError::Count {
            expected: n,
            got: parts.len(),
        });
    }
    match n {
        0 => Ok(*blake3::hash(b"").as_bytes()),
        1 => match parts[0] {
            Blake3Part::Root(h) => Ok(h),
            Blake3Part::ChainingValue(_) => Err(MergeError::Kind(0)),
        },
        _ => {
            let mut cvs = Vec::with_capacity(parts.len());
            for (i, p) in parts.iter().enumerate() {
                match p {
                    Blake3Part::ChainingValue(cv) => cvs.push(*cv),
                    Blake3Part::Root(_) => return Err(MergeError::Kind(i as u32)),
                }
            }
            let (left, right) = children(plan, 0, n, plan.image_size);
            let l = subtree_cv(plan, &cvs, left);
            let r = subtree_cv(plan, &cvs, right);
            Ok(*merge_subtrees_root(&l, &r, Mode::Hash).as_bytes())
        }
    }
}

/// A subtree as (first shard, shard count, byte length).
type Subtree = (u32, u32, u64);

/// BLAKE3's left and right children of the subtree over shards
/// `[first, first + count)` spanning `bytes` bytes. The left child holds the
/// largest power-of-two number of chunks that leaves at least one byte to the
/// right; with power-of-two shards that is a whole number of shards.
fn children(plan: &ShardPlan, first: u32, count: u32, bytes: u64) -> (Subtree, Subtree) {
    let left_bytes = left_len(bytes);
    let left_count = (left_bytes / plan.shard_size) as u32;
    (
        (first, left_count, left_bytes),
        (first + left_count, count - left_count, bytes - left_bytes),
    )
}

fn subtree_cv(
    plan: &ShardPlan,
    cvs: &[ChainingValue],
    (first, count, bytes): Subtree,
) -> ChainingValue {
    if count == 1 {
        return cvs[first as usize];
    }
    let (l, r) = children(plan, first, count, bytes);
    merge_subtrees_non_root(
        &subtree_cv(plan, cvs, l),
        &subtree_cv(plan, cvs, r),
        Mode::Hash,
    )
}

/// Length of the left subtree of a BLAKE3 tree over `len` bytes (more than
/// one chunk): the largest power-of-two multiple of 1 KiB below `len`.
fn left_len(len: u64) -> u64 {
    let full_chunks = (len - 1) / 1024;
    let pow = 1u64 << (63 - full_chunks.leading_zeros());
    pow * 1024
}

/// Piecewise hashes of the windows whose first byte lies in `shard`.
/// `data` holds `[shard.start, shard.scan_end)`; a window running past it
/// (window larger than shard + margin) is completed from `evidence`.
///
/// # Errors
/// A read error of the evidence.
pub fn piecewise(
    evidence: &dyn Evidence,
    shard: &Shard,
    data: &[u8],
    window: u64,
    with_md5: bool,
) -> Result<Vec<PiecewiseHash>, HashError> {
    let size = evidence.size();
    let first = shard.start.div_ceil(window) * window;
    let starts: Vec<u64> = (first..shard.end).step_by(window as usize).collect();
    starts
        .par_iter()
        .map(|&off| {
            let end = (off + window).min(size);
            let rel = (off - shard.start) as usize;
            let have_end = shard.start + data.len() as u64;
            let owned;
            let bytes: &[u8] = if end <= have_end {
                &data[rel..rel + (end - off) as usize]
            } else {
                let mut v = vec![0u8; (end - off) as usize];
                evidence.read_exact_at(off, &mut v)?;
                owned = v;
                &owned
            };
            Ok(PiecewiseHash {
                offset: off,
                length: end - off,
                blake3: blake3::hash(bytes).to_hex().to_string(),
                md5: if with_md5 {
                    hex::encode(crate::md5::md5(bytes))
                } else {
                    String::new()
                },
            })
        })
        .collect()
}

/// MD5, SHA-1 and SHA-256 of a whole evidence item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHashes {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub bytes: u64,
}

/// Block size of the sequential stream read.
pub const STREAM_BLOCK: usize = 8 << 20;
const STREAM_BUFFERS: usize = 6;

enum Block<'a> {
    /// A slice of the mapping, its image offset, and the evidence to release
    /// it in once every hasher is done.
    Mapped(&'a [u8], u64, &'a dyn Evidence),
    Owned(Vec<u8>, usize, crossbeam_channel::Sender<Vec<u8>>),
}

impl Block<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Block::Mapped(s, _, _) => s,
            Block::Owned(v, n, _) => &v[..*n],
        }
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        match self {
            Block::Owned(v, _, free) => {
                // Return the buffer to the reader; it may have stopped already.
                let _ = free.send(std::mem::take(v));
            }
            Block::Mapped(s, off, ev) => ev.release(*off, *off + s.len() as u64),
        }
    }
}

/// Hashes the whole evidence with MD5, SHA-1 and SHA-256 in one sequential
/// read; MD5 on one thread, SHA-1 and SHA-256 together on another
/// ([`crate::sha_pair`], their rounds interleaved), over the same blocks.
/// `progress` receives the byte count after each block; `cancel` stops the
/// read early (the result is then an error).
///
/// # Errors
/// Read errors, or [`HashError::Cancelled`].
pub fn stream_hash(
    evidence: &dyn Evidence,
    progress: &(dyn Fn(u64) + Sync),
    cancel: &AtomicBool,
) -> Result<StreamHashes, HashError> {
    let size = evidence.size();
    let done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        type Rx<'a> = crossbeam_channel::Receiver<std::sync::Arc<Block<'a>>>;
        fn md5_loop(rx: Rx<'_>) -> Result<String, HashError> {
            let mut d = crate::md5::Md5::new();
            for b in rx {
                d.update(b.bytes());
            }
            d.finalize().map(hex::encode)
        }
        fn sha_loop(rx: Rx<'_>) -> (String, String) {
            lower_thread_priority();
            let mut d = crate::sha_pair::Sha1Sha256::new();
            for b in rx {
                d.update(b.bytes());
            }
            let (sha1, sha256) = d.finalize();
            (hex::encode(sha1), hex::encode(sha256))
        }
        let (md5_tx, md5_rx) = crossbeam_channel::bounded(STREAM_BUFFERS);
        let (sha_tx, sha_rx) = crossbeam_channel::bounded(STREAM_BUFFERS);
        let md5 = scope.spawn(move || md5_loop(md5_rx));
        let sha = scope.spawn(move || sha_loop(sha_rx));
        let txs = [md5_tx, sha_tx];

        let (free_tx, free_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
        let mapped_whole = evidence.mapped(0, size as usize).is_some();
        if !mapped_whole {
            for _ in 0..STREAM_BUFFERS + 2 {
                let _ = free_tx.send(vec![0u8; STREAM_BLOCK]);
            }
        }
        let mut offset = 0u64;
        let mut result = Ok(());
        while offset < size {
            if cancel.load(Ordering::Relaxed) {
                result = Err(HashError::Cancelled);
                break;
            }
            let n = (size - offset).min(STREAM_BLOCK as u64) as usize;
            let block = if let Some(s) = evidence.mapped(offset, n) {
                Block::Mapped(s, offset, evidence)
            } else {
                let mut buf = match free_rx.recv() {
                    Ok(b) => b,
                    Err(_) => break,
                };
                if let Err(e) = evidence.read_exact_at(offset, &mut buf[..n]) {
                    result = Err(e.into());
                    break;
                }
                Block::Owned(buf, n, free_tx.clone())
            };
            let block = std::sync::Arc::new(block);
            for tx in &txs {
                if tx.send(block.clone()).is_err() {
                    result = Err(HashError::Internal("stream hasher thread stopped".into()));
                }
            }
            offset += n as u64;
            done.store(offset, Ordering::Relaxed);
            progress(offset);
        }
        drop(txs);
        let md5 = md5
            .join()
            .unwrap_or_else(|_| Err(HashError::Internal("the MD5 thread panicked".into())));
        let (sha1, sha256) = sha.join().unwrap_or_default();
        result?;
        let md5 = md5?;
        Ok(StreamHashes {
            md5,
            sha1,
            sha256,
            bytes: done.load(Ordering::Relaxed),
        })
    })
}

/// The last block or two of an MD5, SHA-1 or SHA-256 message (64-byte
/// blocks): `rest` (what follows the last whole block), the 0x80 byte,
/// zeros and the message length in bits, `length` (little-endian for MD5,
/// big-endian for SHA): the blocks are `tail[..n]`, `n` 64 or 128.
pub(crate) fn final_blocks(rest: &[u8], length: [u8; 8]) -> ([u8; 128], usize) {
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let n = if rest.len() < 56 { 64 } else { 128 };
    tail[n - 8..n].copy_from_slice(&length);
    (tail, n)
}

/// A streaming MD5/SHA message cut into 64-byte blocks: the bytes not yet
/// in a whole block, and the length so far.
pub(crate) struct Blocks {
    buf: [u8; 64],
    len: usize,
    total: u64,
}

impl Blocks {
    pub(crate) fn new() -> Self {
        Self {
            buf: [0; 64],
            len: 0,
            total: 0,
        }
    }

    /// Adds `data`; `compress` receives the whole blocks (a multiple of 64
    /// bytes), in order.
    pub(crate) fn update(&mut self, mut data: &[u8], mut compress: impl FnMut(&[u8])) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.len > 0 {
            let n = (64 - self.len).min(data.len());
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len < 64 {
                return;
            }
            compress(&self.buf);
            self.len = 0;
        }
        let whole = data.len() / 64 * 64;
        if whole > 0 {
            compress(&data[..whole]);
        }
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.len = rest.len();
    }

    /// The final block(s), [`final_blocks`] with the length in bits
    /// big-endian (SHA) or little-endian (MD5).
    pub(crate) fn finish(&self, big_endian: bool) -> ([u8; 128], usize) {
        let bits = self.total.wrapping_mul(8);
        let length = if big_endian {
            bits.to_be_bytes()
        } else {
            bits.to_le_bytes()
        };
        final_blocks(&self.buf[..self.len], length)
    }
}

/// MD5 is the one serial bottleneck of the stream: the SHA pair runs at a
/// lower scheduling priority so that, with more runnable threads than
/// cores, the MD5 thread keeps its core and the other fills the gaps.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: setpriority on the calling thread's own id (gettid) with a
    // positive nice increment; no memory is shared with the call.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_for(data: &[u8], shard: u64) -> (ShardPlan, Vec<Blake3Part>) {
        let plan = ShardPlan::new(data.len() as u64, shard, 0).unwrap();
        let parts = plan
            .shards()
            .map(|s| blake3_part(&plan, &s, &data[s.start as usize..s.end as usize]))
            .collect();
        (plan, parts)
    }

    #[test]
    fn left_len_matches_blake3() {
        for len in [
            1025u64,
            2048,
            2049,
            4096,
            5000,
            1 << 20,
            (1 << 20) + 1,
            3 << 20,
        ] {
            assert_eq!(
                left_len(len),
                blake3::hazmat::left_subtree_len(len),
                "{len}"
            );
        }
    }

    #[test]
    fn merge_equals_hash_edge_sizes() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for len in [
            0usize, 1, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 65_536, 70_000,
        ] {
            for shard in [1024u64, 2048, 4096, 65_536] {
                let d = &data[..len];
                let (plan, parts) = parts_for(d, shard);
                assert_eq!(
                    merge_blake3(&plan, &parts).unwrap(),
                    *blake3::hash(d).as_bytes(),
                    "len {len} shard {shard}"
                );
            }
        }
    }

    /// Fast deterministic filler (xorshift), so large cases stay cheap.
    fn fill(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.truncate(len);
        v
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Shard sizes 1 KiB..64 MiB; images from empty to several shards,
        /// exact multiples and ragged ends.
        #[test]
        fn merge_equals_b3sum(exp in 10u32..=26, shards in 0u64..5, extra_frac in 0u64..4, seed in 1u64..u64::MAX) {
            let shard = 1u64 << exp;
            // Keep the largest cases to a few hundred MiB.
            let shards = if exp > 22 { shards.min(3) } else { shards };
            let extra = match extra_frac { 0 => 0, 1 => 1, 2 => shard / 3, _ => shard - 1 };
            let len = (shards * shard + extra) as usize;
            let data = fill(len, seed);
            let (plan, parts) = parts_for(&data, shard);
            proptest::prop_assert_eq!(merge_blake3(&plan, &parts).unwrap(), *blake3::hash(&data).as_bytes());
        }
    }

    #[test]
    fn merge_rejects_wrong_parts() {
        let data = vec![1u8; 5000];
        let (plan, mut parts) = parts_for(&data, 1024);
        parts.pop();
        assert!(merge_blake3(&plan, &parts).is_err());
        let (plan, mut parts) = parts_for(&data, 1024);
        parts[0] = Blake3Part::Root([0; 32]);
        assert_eq!(merge_blake3(&plan, &parts), Err(MergeError::Kind(0)));
    }
}
