//! Carving micro-benchmarks: each validator family on an image of its own
//! files (200 copies with noise between: signature scan, structure walk to
//! the end, MD5/SHA-1/SHA-256 of every file), and the whole carver (all
//! types) on the mixed fixtures, on random data (signature scan and false-hit
//! rejection only) and in sector-aligned mode.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngCore, SeedableRng};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use trawl_analyzers::carve::Carver;
use trawl_core::ShardPlan;
use trawl_core::spec::CarveOptions;
use trawl_evidence::{Evidence, RawEvidence};
use trawl_fixtures::art::Artifact;
use trawl_fixtures::formats::{archive, exec, images, media, ole, pdf, sqlite, zip};
use trawl_fixtures::util::Rng;

/// One sample file per family: (type to carve, bytes).
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let mut r = Rng::new(42);
    let t = Artifact {
        bytes: trawl_fixtures::features::paragraph(&mut r, 3000).into_bytes(),
        ..Default::default()
    };
    let u = Artifact {
        bytes: trawl_fixtures::util::utf16le(&trawl_fixtures::features::paragraph(&mut r, 3000)),
        ..Default::default()
    };
    let mut jspec = images::small_spec(&mut r);
    jspec.width = 320;
    jspec.height = 240;
    jspec.restart = 8;
    let tm = zip::dos_time(&mut r);
    let rows = vec![vec![(None, "alice".to_string()), (None, "bob".to_string())]];
    vec![
        ("jpg", images::jpeg(&mut r, &jspec)),
        ("png", images::png(&mut r, 200, 150, None, false).bytes),
        ("gif", images::gif(&mut r, 120, 90)),
        ("bmp", images::bmp(&mut r, 100, 80)),
        ("tif", images::tiff(&mut r, 64, 64, true, true, None).bytes),
        (
            "pdf",
            pdf::pdf(
                &mut r,
                &pdf::PdfSpec {
                    text: Some(&t),
                    image: None,
                    compress_filler: true,
                    incremental: true,
                },
            )
            .bytes,
        ),
        (
            "zip",
            zip::zip(
                &[
                    zip::Member::deflated("a.txt", t.clone()),
                    zip::Member::stored("b.txt", t.clone()),
                ],
                b"",
                tm,
            )
            .bytes,
        ),
        (
            "docx",
            zip::ooxml(&mut r, zip::Ooxml::Docx, Some(&t), None, false).bytes,
        ),
        ("rar", archive::rar5(&mut r, "a.txt", &t).bytes),
        ("7z", archive::sevenz(&mut r, "a.txt", &t).bytes),
        ("gz", archive::gz(&mut r, &t, None, "a.txt").bytes),
        ("sqlite", sqlite::sqlite(&mut r, &rows, 2).bytes),
        ("exe", exec::pe(&mut r, true, false, Some(&t)).bytes),
        ("elf", exec::elf(&mut r, true, false, Some(&t)).bytes),
        ("wav", media::wav(&mut r, None).bytes),
        ("avi", media::avi(&mut r, &[], 64, 48).bytes),
        ("mp4", media::isobmff(&mut r, false).bytes),
        ("evtx", media::evtx(&mut r, 2, &[]).bytes),
        ("doc", ole::doc(&mut r, &u).bytes),
    ]
}

fn write_image(dir: &Path, name: &str, data: &[u8]) -> RawEvidence {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write image");
    RawEvidence::open(&p).expect("open image")
}

/// Carves the whole image (one shard per 64 MiB), returning the file count.
fn carve_all(carver: &Carver, ev: &RawEvidence) -> usize {
    let size = ev.size();
    let plan = ShardPlan::new(size, 64 << 20, 1 << 20).expect("plan");
    let data = ev.mapped(0, size as usize).expect("mapped");
    let cancel = AtomicBool::new(false);
    plan.shards()
        .map(|s| {
            carver
                .carve_shard(
                    ev,
                    &s,
                    &data[s.start as usize..s.scan_end as usize],
                    &cancel,
                )
                .expect("carve")
                .files
                .len()
        })
        .sum()
}

fn opts(types: &[&str]) -> CarveOptions {
    CarveOptions {
        types: types.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut noise = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    // Per family.
    let mut g = c.benchmark_group("carve-family");
    g.sample_size(10);
    for (ty, sample) in samples() {
        let mut img = Vec::new();
        for _ in 0..200 {
            let mut gap = vec![0u8; 4096];
            noise.fill_bytes(&mut gap);
            img.extend_from_slice(&gap);
            img.extend_from_slice(&sample);
        }
        let ev = write_image(dir.path(), &format!("{ty}.raw"), &img);
        let carver = Carver::new(&opts(&[ty])).expect("carver");
        let found = carve_all(&carver, &ev);
        assert!(found >= 200, "{ty}: {found} files carved of 200");
        g.throughput(Throughput::Bytes(img.len() as u64));
        g.bench_function(ty, |b| b.iter(|| black_box(carve_all(&carver, &ev))));
    }
    g.finish();

    // The whole carver.
    let all = Carver::new(&CarveOptions::default()).expect("carver");
    let mut g = c.benchmark_group("carve-all-types");
    g.sample_size(10);
    for (name, cfg) in [
        ("fixture-small-8MiB", trawl_fixtures::Config::small()),
        ("fixture-medium-40MiB", trawl_fixtures::Config::medium()),
    ] {
        let fx = trawl_fixtures::generate(&cfg);
        let ev = write_image(dir.path(), &format!("{name}.raw"), &fx.image);
        g.throughput(Throughput::Bytes(fx.image.len() as u64));
        g.bench_function(name, |b| b.iter(|| black_box(carve_all(&all, &ev))));
    }
    let mut rnd = vec![0u8; 128 << 20];
    noise.fill_bytes(&mut rnd);
    let ev = write_image(dir.path(), "random.raw", &rnd);
    g.throughput(Throughput::Bytes(rnd.len() as u64));
    g.bench_function("random-128MiB", |b| {
        b.iter(|| black_box(carve_all(&all, &ev)))
    });
    let aligned = Carver::new(&CarveOptions {
        sector_aligned: true,
        ..Default::default()
    })
    .expect("carver");
    g.bench_function("random-128MiB-sector-aligned", |b| {
        b.iter(|| black_box(carve_all(&aligned, &ev)))
    });
    let text: Vec<u8> = {
        let mut r = Rng::new(3);
        let mut t = Vec::with_capacity(64 << 20);
        while t.len() < 64 << 20 {
            t.extend_from_slice(trawl_fixtures::features::paragraph(&mut r, 1 << 16).as_bytes());
        }
        t
    };
    let ev = write_image(dir.path(), "text.raw", &text);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("english-text-64MiB", |b| {
        b.iter(|| black_box(carve_all(&all, &ev)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
