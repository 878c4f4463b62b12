//! Attribution of 1 million findings against 1 million byte runs (issue
//! target: under 1 s per core): building the locator, then placing every
//! finding.

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use trawl_attrib::Locator;
use trawl_core::files::{FileRecord, FileSystemRecord, FilesSummary, MacbTimes};

/// `files` records with 1 million runs in all over a 64 GiB file system:
/// fragmented files of 1 to 8 runs, 5% of them deleted entries whose runs
/// overlap allocated ones; the free space between files unallocated.
fn listing() -> (Vec<FileRecord>, FilesSummary) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20);
    let mut recs = Vec::new();
    let mut runs_total = 0usize;
    let mut pos = 1u64 << 20;
    let mut free = Vec::new();
    while runs_total < 1_000_000 {
        let n = rng.gen_range(1..=8usize);
        let mut runs = Vec::with_capacity(n);
        for _ in 0..n {
            let len = rng.gen_range(1..=64u64) * 4096;
            runs.push((pos, len));
            pos += len;
            let gap = rng.gen_range(0..=4u64) * 4096;
            if gap > 0 {
                free.push((pos, gap));
            }
            pos += gap;
        }
        runs_total += n;
        let deleted = rng.gen_bool(0.05);
        if deleted {
            // a deleted entry over the previous file's first run
            if let Some(prev) = recs.last().map(|r: &FileRecord| r.runs[0]) {
                runs = vec![prev];
                runs_total -= n - 1;
            }
        }
        recs.push(FileRecord {
            partition_offset: 0,
            fs: "ntfs".into(),
            path: format!("dir{}/file{}.bin", recs.len() / 100, recs.len()),
            inode: recs.len() as u64,
            kind: "file".into(),
            alloc: if deleted { "deleted" } else { "allocated" }.into(),
            size: runs.iter().map(|r| r.1).sum(),
            md5: None,
            sha1: None,
            sha256: None,
            times: MacbTimes::default(),
            fn_times: None,
            mode: 0,
            uid: 0,
            gid: 0,
            known: None,
            known_set: None,
            runs,
            error: None,
        });
    }
    let summary = FilesSummary {
        filesystems: vec![FileSystemRecord {
            partition_offset: 0,
            fs: "ntfs".into(),
            label: None,
            block_size: 4096,
            size: pos + (1 << 20),
            entries: recs.len() as u64,
            unallocated: Some(free),
        }],
        ..Default::default()
    };
    (recs, summary)
}

fn bench(c: &mut Criterion) {
    let (recs, summary) = listing();
    let end = summary.filesystems[0].size;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let mut findings: Vec<u64> = (0..1_000_000)
        .map(|_| rng.gen_range(0..end + (1 << 20)))
        .collect();
    let mut g = c.benchmark_group("attribution");
    g.sample_size(10);
    g.bench_function("build, 1M runs", |b| {
        b.iter(|| black_box(Locator::new(&recs, Some(&summary))))
    });
    let l = Locator::new(&recs, Some(&summary));
    assert!(l.runs() >= 1_000_000);
    g.bench_function("locate 1M findings (random order)", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut files = Vec::new();
            for &f in &findings {
                l.locate_into(f, &mut files);
                n += files.len();
            }
            black_box(n)
        })
    });
    findings.sort_unstable();
    g.bench_function("locate 1M findings (image order)", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut files = Vec::new();
            for &f in &findings {
                l.locate_into(f, &mut files);
                n += files.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
