//! Carving: recall against the fixtures' ground truth, decoys never
//! validated, identical results for every shard size, margin and read path,
//! custom configurations, limits and hostile input.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;
use trawl_carve::Carver;
use trawl_core::spec::CarveOptions;
use trawl_core::{CarvedFile, ShardPlan};
use trawl_evidence::Evidence;
use trawl_fixtures::{Config, Fixture};

/// An in-memory image, "mapped" (zero-copy views) or read only through
/// `read_at` (as E01 evidence is).
type Mem = trawl_evidence::MemEvidence;

fn carve_with(ev: &Mem, opts: &CarveOptions, shard: u64, margin: u64) -> Vec<CarvedFile> {
    let carver = Carver::new(opts).expect("carver");
    let plan = ShardPlan::new(ev.size(), shard, margin).expect("plan");
    let cancel = AtomicBool::new(false);
    let mut out = Vec::new();
    for s in plan.shards() {
        let data = &ev.bytes()[s.start as usize..s.scan_end as usize];
        let o = carver.carve_shard(ev, &s, data, &cancel).expect("carve");
        for f in &o.files {
            assert!(
                s.owns(f.offset),
                "shard {s:?} reported a file at {}",
                f.offset
            );
        }
        out.extend(o.files);
    }
    out.sort_by(|a, b| a.sort_cmp(b));
    out
}

fn carve(img: &[u8], opts: &CarveOptions, shard: u64) -> Vec<CarvedFile> {
    carve_with(
        &Mem::new("mem.raw", img.to_vec(), true),
        opts,
        shard,
        1 << 20,
    )
}

fn small() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| trawl_fixtures::generate(&Config::small()))
}

fn medium() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| trawl_fixtures::generate(&Config::medium()))
}

struct Score {
    planted: usize,
    exact: usize,
    missed: Vec<String>,
    false_validated: Vec<String>,
}

fn score(fx: &Fixture, files: &[CarvedFile]) -> Score {
    let by_sha: BTreeSet<(&str, u64)> = files
        .iter()
        .map(|f| (f.sha256.as_str(), f.offset))
        .collect();
    let mut s = Score {
        planted: fx.manifest.files.len(),
        exact: 0,
        missed: Vec::new(),
        false_validated: Vec::new(),
    };
    for p in &fx.manifest.files {
        if by_sha.contains(&(p.sha256.as_str(), p.offset)) {
            s.exact += 1;
        } else {
            let got: Vec<String> = files
                .iter()
                .filter(|f| f.offset == p.offset)
                .map(|f| format!("{} {} {} {}", f.file_type, f.length, f.validated, f.note))
                .collect();
            s.missed.push(format!(
                "{} at {} len {} ({}): carved {got:?}",
                p.file_type, p.offset, p.length, p.label
            ));
        }
    }
    let truth: BTreeSet<(u64, u64)> = fx
        .manifest
        .files
        .iter()
        .map(|p| (p.offset, p.length))
        .collect();
    for f in files.iter().filter(|f| f.validated) {
        if !truth.contains(&(f.offset, f.length)) {
            s.false_validated.push(format!(
                "{} at {} len {}: {}",
                f.file_type, f.offset, f.length, f.note
            ));
        }
    }
    s
}

#[test]
fn small_fixture_recall_and_precision() {
    let fx = small();
    let files = carve(&fx.image, &CarveOptions::default(), 64 << 20);
    let s = score(fx, &files);
    println!(
        "small: {}/{} planted files carved byte-identical; {} carvings ({} validated)",
        s.exact,
        s.planted,
        files.len(),
        files.iter().filter(|f| f.validated).count()
    );
    for m in &s.missed {
        println!("missed: {m}");
    }
    for m in &s.false_validated {
        println!("validated but not planted: {m}");
    }
    assert!(s.exact * 100 >= s.planted * 98, "recall below 98%");
    assert!(s.false_validated.is_empty());
}

#[test]
fn medium_fixture_recall_and_precision() {
    let fx = medium();
    let files = carve(&fx.image, &CarveOptions::default(), 64 << 20);
    let s = score(fx, &files);
    println!(
        "medium: {}/{} planted files carved byte-identical; {} carvings ({} validated)",
        s.exact,
        s.planted,
        files.len(),
        files.iter().filter(|f| f.validated).count()
    );
    for m in &s.missed {
        println!("missed: {m}");
    }
    for m in &s.false_validated {
        println!("validated but not planted: {m}");
    }
    for f in files.iter().filter(|f| !f.validated) {
        println!(
            "unvalidated: {} at {} len {}: {}",
            f.file_type, f.offset, f.length, f.note
        );
    }
    assert!(s.exact * 100 >= s.planted * 98, "recall below 98%");
    assert!(s.false_validated.is_empty());
}

/// The same carving (offsets, lengths, types, notes, hashes) for every
/// shard size, margin and read path.
#[test]
fn identical_across_shard_sizes_margins_and_read_paths() {
    let fx = small();
    let opts = CarveOptions::default();
    let mapped = Mem::new("mem.raw", fx.image.clone(), true);
    let unmapped = Mem::new("mem.raw", fx.image.clone(), false);
    let reference = carve_with(&mapped, &opts, 64 << 20, 1 << 20);
    assert!(reference.len() >= fx.manifest.files.len());
    for (shard, margin, ev, what) in [
        (1 << 20, 1 << 20, &mapped, "1 MiB shards"),
        (4 << 10, 1 << 20, &mapped, "4 KiB shards"),
        (1 << 10, 1 << 20, &mapped, "1 KiB shards"),
        (1 << 20, 0, &unmapped, "1 MiB shards, no margin, unmapped"),
        (
            64 << 10,
            7,
            &unmapped,
            "64 KiB shards, 7-byte margin, unmapped",
        ),
        (
            2 << 20,
            64 << 10,
            &unmapped,
            "2 MiB shards, 64 KiB margin, unmapped",
        ),
        (1 << 30, 0, &unmapped, "one shard, unmapped"),
    ] {
        let got = carve_with(ev, &opts, shard, margin);
        if got != reference {
            let a: BTreeSet<_> = reference
                .iter()
                .map(|f| (f.offset, f.length, f.file_type.clone()))
                .collect();
            let b: BTreeSet<_> = got
                .iter()
                .map(|f| (f.offset, f.length, f.file_type.clone()))
                .collect();
            panic!(
                "{what}: results differ\nonly in reference: {:?}\nonly here: {:?}",
                a.difference(&b).collect::<Vec<_>>(),
                b.difference(&a).collect::<Vec<_>>()
            );
        }
    }
}
