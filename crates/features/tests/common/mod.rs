//! Helpers shared by the feature-scanner tests: the corpora (skipped with
//! a line when absent, a failure under CI), seeded random bytes, and the
//! scan of an image shard by shard as the workers do it.

#![allow(dead_code)]

use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use trawl_core::{Feature, ShardPlan};
use trawl_evidence::Evidence;
use trawl_features::{FeatureOutput, FeatureScanner};

/// `../shared/corpora`, or `None` (after saying `test` is skipped).
pub fn corpora(test: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora");
    if p.is_dir() {
        Some(p)
    } else {
        trawl_fixtures::skip(test, "../shared/corpora");
        None
    }
}

/// bulk_extractor's test data (`../shared/corpora/bulk-extractor-test-data`),
/// or `None` (after saying `test` is skipped).
pub fn be_test_data(test: &str) -> Option<PathBuf> {
    let p = corpora(test)?.join("bulk-extractor-test-data");
    if p.is_dir() {
        Some(p)
    } else {
        trawl_fixtures::skip(test, "../shared/corpora/bulk-extractor-test-data");
        None
    }
}

/// xorshift64* random bytes.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Every shard's output of `ev` cut by `shard_size`/`margin`, scanned in
/// parallel as the workers do; each feature checked to be owned by the
/// shard that reported it.
pub fn shard_outputs(
    sc: &FeatureScanner,
    ev: &dyn Evidence,
    shard_size: u64,
    margin: u64,
) -> Vec<FeatureOutput> {
    let plan = ShardPlan::new(ev.size(), shard_size, margin).unwrap();
    let shards: Vec<_> = plan.shards().collect();
    shards
        .par_iter()
        .map(|s| {
            let mut data = vec![0u8; s.scan_len() as usize];
            ev.read_exact_at(s.start, &mut data).unwrap();
            let out = sc
                .scan_shard(ev, s, &data, &AtomicBool::new(false))
                .unwrap();
            for f in &out.features {
                assert!(s.owns(f.offset), "shard {s:?} reported {f:?}");
            }
            out
        })
        .collect()
}

/// The features of `ev` scanned shard by shard, in image order.
pub fn scan_sharded(
    sc: &FeatureScanner,
    ev: &dyn Evidence,
    shard_size: u64,
    margin: u64,
) -> Vec<Feature> {
    let mut v: Vec<Feature> = shard_outputs(sc, ev, shard_size, margin)
        .into_iter()
        .flat_map(|o| o.features)
        .collect();
    v.sort_by(|a, b| a.sort_cmp(b));
    v
}
