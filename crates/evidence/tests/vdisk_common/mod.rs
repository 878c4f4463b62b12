//! Helpers shared by the VHD and VHDX tests: qemu-img's presence, MD5,
//! a seeded generator, random disks and the two ways of reading a whole
//! virtual disk (one pass; four threads with random reads checked).

#![allow(dead_code)]

use md5::{Digest, Md5};
use std::process::Command;
use std::sync::Arc;
use trawl_evidence::Evidence;

pub const MIB: u64 = 1 << 20;

/// Whether qemu-img can be run; otherwise prints the skip line (and panics
/// under CI).
pub fn have_qemu(test: &str) -> bool {
    if Command::new("qemu-img").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: qemu-img not found (CI is set: install qemu-utils)");
    }
    trawl_fixtures::skip(test, "qemu-img not found");
    false
}

pub fn md5_hex(d: &[u8]) -> String {
    hex::encode(Md5::digest(d))
}

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let x = self.next().to_le_bytes();
            c.copy_from_slice(&x[..c.len()]);
        }
    }
}

/// Random disk contents: runs of random data, runs of zeros, zero blocks
/// with a few written sectors, and data in the last bytes.
pub fn random_disk(size: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed);
    let mut d = vec![0u8; size];
    let mut at = 0usize;
    while at < size {
        let len = (1 + r.below(3 * MIB) as usize).min(size - at);
        match r.below(3) {
            0 => r.fill(&mut d[at..at + len]),
            1 => {} // zeros
            _ => {
                for _ in 0..4 {
                    let s = at + r.below(len as u64) as usize;
                    let n = (1 + r.below(1500) as usize).min(size - s);
                    r.fill(&mut d[s..s + n]);
                }
            }
        }
        at += len;
    }
    let tail = size.min(777);
    r.fill(&mut d[size - tail..]);
    d
}

/// Reads the whole virtual disk in one pass of `chunk`-sized reads.
pub fn read_all(ev: &dyn Evidence, chunk: usize) -> Vec<u8> {
    let mut v = vec![0u8; ev.size() as usize];
    for (i, c) in v.chunks_mut(chunk).enumerate() {
        ev.read_exact_at((i * chunk) as u64, c).unwrap();
    }
    let mut extra = [0u8; 16];
    assert_eq!(ev.read_at(ev.size(), &mut extra).unwrap(), 0);
    v
}

/// The virtual disk assembled from random-sized reads taken by four
/// threads, plus random-offset reads checked against `want`.
pub fn read_threaded(ev: &Arc<dyn Evidence>, want: &Arc<Vec<u8>>, seed: u64) -> Vec<u8> {
    let size = ev.size();
    let mut r = Rng(seed);
    let mut cuts = vec![0u64];
    while *cuts.last().unwrap() < size {
        let big = r.below(4) == 0;
        let step = 1 + r.below(if big { 3 * MIB } else { 70_000 });
        cuts.push((cuts.last().unwrap() + step).min(size));
    }
    let cuts = Arc::new(cuts);
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let ev = ev.clone();
            let cuts = cuts.clone();
            let want = want.clone();
            std::thread::spawn(move || {
                let mut r = Rng(seed ^ ((t + 1) * 0x1234_5678));
                let mut parts = Vec::new();
                for i in (t as usize..cuts.len() - 1).step_by(4) {
                    let (a, b) = (cuts[i], cuts[i + 1]);
                    let mut buf = vec![0u8; (b - a) as usize];
                    ev.read_exact_at(a, &mut buf).unwrap();
                    parts.push((i, buf));
                }
                for _ in 0..20 {
                    let off = r.below(size);
                    let len = 1 + r.below(MIB + 3000) as usize;
                    let mut buf = vec![0u8; len];
                    let n = ev.read_at(off, &mut buf).unwrap();
                    assert_eq!(n as u64, (len as u64).min(size - off));
                    assert!(buf[..n] == want[off as usize..off as usize + n]);
                }
                parts
            })
        })
        .collect();
    let mut parts: Vec<(usize, Vec<u8>)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    parts.sort_by_key(|p| p.0);
    parts.into_iter().flat_map(|p| p.1).collect()
}
