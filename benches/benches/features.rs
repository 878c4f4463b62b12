//! Feature scanner micro-benchmarks: each scanner alone and all together,
//! on one core, over a mixed image (`trawl_fixtures::Config::bulk`: text
//! with features, documents, archives and compressed streams, random
//! bytes, zero and 0xFF runs). Throughput in bytes of image per second.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use trawl_analyzers::features::{FeatureScanner, Kind};
use trawl_core::spec::FeatureOptions;

const SIZE: u64 = 32 << 20;

fn bench(c: &mut Criterion) {
    let image = trawl_fixtures::generate(&trawl_fixtures::Config::bulk(SIZE, 1)).image;
    let cancel = AtomicBool::new(false);
    let mut g = c.benchmark_group("features");
    g.throughput(Throughput::Bytes(SIZE));
    g.sample_size(10);
    let mut sets: Vec<(String, Vec<String>)> = Kind::ALL
        .iter()
        .filter(|k| **k != Kind::Find)
        .map(|k| (k.name().to_string(), vec![k.name().to_string()]))
        .collect();
    sets.push(("all".into(), Vec::new()));
    for (name, scanners) in sets {
        let sc = FeatureScanner::new(&FeatureOptions {
            scanners,
            ..Default::default()
        })
        .expect("scanners");
        g.bench_function(&name, |b| {
            b.iter(|| {
                black_box(
                    sc.scan_buffer(&image, &cancel)
                        .expect("scan")
                        .features
                        .len(),
                )
            })
        });
    }
    let find = FeatureScanner::new(&FeatureOptions {
        scanners: vec!["find".into()],
        find_keywords: "password\nconfidential\n/acct-[0-9]{6}/\n".into(),
        ..Default::default()
    })
    .expect("find");
    g.bench_function("find", |b| {
        b.iter(|| {
            black_box(
                find.scan_buffer(&image, &cancel)
                    .expect("scan")
                    .features
                    .len(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
