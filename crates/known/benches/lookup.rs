//! Lookup speed: interpolation search against plain binary search, on a
//! memory-mapped table of a few million entries, and `KnownSet::lookup`
//! with one or three digests. The 100-million-entry figures come from
//! `examples/known_bench.rs` (too large for a benchmark run).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use trawl_known::{Digests, ImportOptions, Importer, Kind, KnownSet, search};

const N: u64 = 4_000_000;

fn fill(i: u64, k: u64, out: &mut [u8]) {
    let mut s = i.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (k << 61);
    for c in out.chunks_mut(8) {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let v = (z ^ (z >> 31)).to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
}

fn digests(i: u64) -> Digests {
    let (mut a, mut b, mut c) = ([0u8; 16], [0u8; 20], [0u8; 32]);
    fill(i, 0, &mut a);
    fill(i, 1, &mut b);
    fill(i, 2, &mut c);
    Digests {
        md5: Some(a),
        sha1: Some(b),
        sha256: Some(c),
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.trawlknown");
    let mut imp = Importer::new(&path, "bench", Kind::Known, &ImportOptions::default()).unwrap();
    for i in 0..N {
        imp.add(&digests(i)).unwrap();
    }
    imp.finish().unwrap();
    let set = KnownSet::open(&path, Kind::Known).unwrap();
    let table = set.table().unwrap();
    // 4096 queries, half present, half absent, in random order.
    let queries: Vec<Digests> = (0..4096u64)
        .map(|k| {
            let r = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
            if k.is_multiple_of(2) {
                digests(r % N)
            } else {
                digests(N + r)
            }
        })
        .collect();
    let sha: Vec<[u8; 32]> = queries.iter().map(|d| d.sha256.unwrap()).collect();

    let mut g = c.benchmark_group("sha256_4M");
    g.throughput(criterion::Throughput::Elements(sha.len() as u64));
    g.bench_function("interpolation", |b| {
        b.iter(|| {
            sha.iter()
                .filter(|d| search::contains(table.sha256(), black_box(d)))
                .count()
        });
    });
    g.bench_function("binary", |b| {
        b.iter(|| {
            sha.iter()
                .filter(|d| search::binary_contains(table.sha256(), black_box(d)))
                .count()
        });
    });
    g.finish();

    let mut g = c.benchmark_group("knownset_lookup_4M");
    g.throughput(criterion::Throughput::Elements(queries.len() as u64));
    let only256: Vec<Digests> = queries
        .iter()
        .map(|d| Digests {
            sha256: d.sha256,
            ..Digests::default()
        })
        .collect();
    g.bench_function("sha256_only", |b| {
        b.iter(|| {
            only256
                .iter()
                .filter(|d| set.lookup(black_box(d)).unwrap().is_some())
                .count()
        });
    });
    g.bench_function("md5_sha1_sha256", |b| {
        b.iter(|| {
            queries
                .iter()
                .filter(|d| set.lookup(black_box(d)).unwrap().is_some())
                .count()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
