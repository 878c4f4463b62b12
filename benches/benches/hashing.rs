//! Hashing micro-benchmarks: each algorithm alone over the same buffer, the
//! sequential MD5+SHA-1+SHA-256 stream task, and all four together as
//! `trawl scan --analyses hash` runs them (stream task beside BLAKE3 shards).
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use digest::Digest;
use rayon::prelude::*;
use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use trawl_analyzers::hash;
use trawl_core::ShardPlan;
use trawl_evidence::{Evidence, RawEvidence};

const SIZE: usize = 256 << 20;

fn data_file() -> (tempfile::TempDir, std::path::PathBuf) {
    use rand::{RngCore, SeedableRng};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.raw");
    let mut v = vec![0u8; SIZE];
    rand_chacha::ChaCha8Rng::seed_from_u64(7).fill_bytes(&mut v);
    std::fs::write(&path, &v).expect("write");
    (dir, path)
}

fn bench(c: &mut Criterion) {
    let (_dir, path) = data_file();
    let ev = RawEvidence::open(&path).expect("open");
    let data = ev.mapped(0, SIZE).expect("mapped");
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    g.bench_function("md5", |b| b.iter(|| black_box(md5::Md5::digest(data))));
    g.bench_function("sha1", |b| b.iter(|| black_box(sha1::Sha1::digest(data))));
    g.bench_function("sha256", |b| {
        b.iter(|| black_box(sha2::Sha256::digest(data)))
    });
    g.bench_function("blake3-1thread", |b| {
        b.iter(|| black_box(blake3::hash(data)))
    });
    let plan = ShardPlan::new(SIZE as u64, 16 << 20, 0).expect("plan");
    g.bench_function("blake3-shards-merged", |b| {
        b.iter(|| {
            let parts: Vec<_> = plan
                .shards()
                .collect::<Vec<_>>()
                .par_iter()
                .map(|s| hash::blake3_part(&plan, s, &data[s.start as usize..s.end as usize]))
                .collect();
            black_box(hash::merge_blake3(&plan, &parts).expect("merge"))
        })
    });
    // Carved files: many buffers of mixed sizes, one MD5 each (one thread).
    let files: Vec<&[u8]> = (0..SIZE / (96 << 10))
        .map(|i| {
            let len = 4096 + (i * 7919) % (184 << 10);
            let start = (i * (96 << 10)).min(SIZE - len);
            &data[start..start + len]
        })
        .collect();
    g.bench_function("md5-per-file", |b| {
        b.iter(|| {
            black_box(
                files
                    .iter()
                    .map(|f| trawl_analyzers::md5::md5(f))
                    .collect::<Vec<_>>(),
            )
        })
    });
    g.bench_function("md5-many-files-multibuffer", |b| {
        b.iter(|| black_box(trawl_analyzers::md5::md5_many(&files)))
    });
    let cancel = AtomicBool::new(false);
    g.bench_function("stream-md5-sha1-sha256", |b| {
        b.iter(|| black_box(hash::stream_hash(&ev, &|_| {}, &cancel).expect("stream")))
    });
    g.bench_function("all-four", |b| {
        b.iter(|| {
            let (s, parts) = rayon::join(
                || hash::stream_hash(&ev, &|_| {}, &cancel).expect("stream"),
                || {
                    plan.shards()
                        .collect::<Vec<_>>()
                        .par_iter()
                        .map(|s| {
                            hash::blake3_part(&plan, s, &data[s.start as usize..s.end as usize])
                        })
                        .collect::<Vec<_>>()
                },
            );
            black_box((s, hash::merge_blake3(&plan, &parts).expect("merge")))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
