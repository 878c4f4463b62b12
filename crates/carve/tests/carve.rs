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

/// Carving a chosen space (`--carve-scope unallocated`) is carving the
/// stream of that space's bytes end to end (what `blkls` writes), mapped
/// back to the image: for random layouts (the fixture's blocks scattered
/// among "allocated" blocks of noise and real file headers) and every
/// shard size, the same files, types, lengths and hashes as the stream
/// carved on its own, at the image offsets of their first bytes, with byte
/// runs that name exactly the pieces the stream took them from.
#[test]
fn carving_a_space_equals_carving_its_stream() {
    use trawl_fixtures::util::Rng;
    let fx = small();
    let stream = &fx.image;
    let opts = CarveOptions::default();
    let reference = carve(stream, &opts, 64 << 20);
    assert!(reference.len() >= fx.manifest.files.len());
    // Headers of real files, to be planted in allocated blocks.
    let headers: Vec<Vec<u8>> = reference
        .iter()
        .map(|f| stream[f.offset as usize..(f.offset as usize + 512).min(stream.len())].to_vec())
        .collect();
    for seed in 0..3u64 {
        let mut rng = Rng::new(0x5ca7 + seed);
        let block = [512usize, 4096, 1024][seed as usize];
        // The image: the stream's blocks in order, with runs of allocated
        // blocks between some of them.
        let mut image = Vec::new();
        let mut space: Vec<(u64, u64)> = Vec::new();
        let mut map: Vec<(u64, u64, u64)> = Vec::new(); // stream off, image off, len
        let mut pos = 0usize;
        while pos < stream.len() {
            if rng.below(4) == 0 {
                for _ in 0..1 + rng.below(3) {
                    let mut b = vec![0u8; block];
                    rng.fill(&mut b);
                    let h = &headers[rng.below(headers.len() as u64) as usize];
                    let n = h.len().min(block);
                    b[..n].copy_from_slice(&h[..n]);
                    image.extend_from_slice(&b);
                }
            }
            let n = (block * (1 + rng.below(8) as usize)).min(stream.len() - pos);
            let at = image.len() as u64;
            image.extend_from_slice(&stream[pos..pos + n]);
            map.push((pos as u64, at, n as u64));
            match space.last_mut() {
                Some(last) if last.1 == at => last.1 = at + n as u64,
                _ => space.push((at, at + n as u64)),
            }
            pos += n;
        }
        let to_image = |off: u64| {
            let &(s, i, _) = map.iter().rev().find(|m| m.0 <= off).unwrap();
            i + (off - s)
        };
        let mut want: Vec<CarvedFile> = reference
            .iter()
            .map(|f| {
                let mut g = f.clone();
                g.offset = to_image(f.offset);
                g.byte_runs.clear();
                let (mut p, end) = (f.offset, f.offset + f.length);
                while p < end {
                    let &(s, i, l) = map.iter().rev().find(|m| m.0 <= p).unwrap();
                    let e = (s + l).min(end);
                    let img_offset = i + (p - s);
                    match g.byte_runs.last_mut() {
                        // Blocks adjacent in the image: one run.
                        Some(r) if r.img_offset + r.len == img_offset => r.len += e - p,
                        _ => g.byte_runs.push(trawl_core::ByteRun {
                            img_offset,
                            file_offset: p - f.offset,
                            len: e - p,
                        }),
                    }
                    p = e;
                }
                g
            })
            .collect();
        want.sort_by(|a, b| a.sort_cmp(b));
        assert!(
            want.iter().filter(|f| f.byte_runs.len() > 1).count() >= 3,
            "seed {seed}: the layout splits too few files"
        );
        let carver = Carver::new(&opts).expect("carver");
        let cancel = AtomicBool::new(false);
        for (shard, mapped) in [(1u64 << 30, true), (64 << 10, false), (4 << 10, true)] {
            let ev = Mem::new("layout.raw", image.clone(), mapped);
            let plan = ShardPlan::new(ev.size(), shard, 1 << 20).expect("plan");
            let mut got = Vec::new();
            for s in plan.shards() {
                let data = &image[s.start as usize..s.scan_end as usize];
                let o = carver
                    .carve_space(&ev, &s, data, &space, &cancel)
                    .expect("carve");
                got.extend(o.files);
            }
            got.sort_by(|a, b| a.sort_cmp(b));
            assert_eq!(
                got.len(),
                want.len(),
                "seed {seed}, shards of {shard}: {} files, the stream gives {}",
                got.len(),
                want.len()
            );
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "seed {seed}, shards of {shard}");
            }
        }
    }
}
