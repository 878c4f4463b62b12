//! Builds a large table through the import path (external sort) from
//! generated pseudo-random MD5 + SHA-1 + SHA-256 digests, then times
//! single-threaded lookups (half hits, half misses), one call per file
//! (`KnownSet::lookup`) and batched (`KnownSet::lookup_many` on `--batch`
//! files at a time), and reports the peak RSS.
//!
//! ```text
//! cargo run --release -p trawl-known --example known_bench -- \
//!     [--count 100000000] [--lookups 10000000] [--dir DIR] [--memory-mib 256] [--keep]
//!     [--batch 4096] [--table PATH]
//! ```
//!
//! `--table PATH` looks up in an existing table built by this example with
//! the same `--count` (a version-1 table, say) instead of building one.
//!
//! A 100-million-entry table is about 6.8 GB, and the import needs about as
//! much again for its sorted runs: check the free space first. The table
//! is deleted at the end unless `--keep` (an existing table in DIR with the
//! same count is reused).

use std::path::PathBuf;
use std::time::Instant;

use trawl_known::{Algorithm, Digests, ImportOptions, Importer, Kind, KnownSet, SourceInfo};

/// Deterministic digest `k` (0 MD5, 1 SHA-1, 2 SHA-256) of entry `i`.
fn fill(i: u64, k: u64, out: &mut [u8]) {
    let mut s = i.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (k << 61) ^ 0x1234_5678;
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

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn memory(label: &str) {
    println!(
        "{label}: VmHWM {} (peak RSS), RssAnon {}, RssFile {}",
        status("VmHWM:"),
        status("RssAnon:"),
        status("RssFile:")
    );
}

/// CPU time this thread has run, in seconds (`/proc/thread-self/schedstat`):
/// on a loaded machine wall time says more about the neighbours than about
/// the lookups.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 / 1e9)
}

/// Minor and major page faults of the process so far (`/proc/self/stat`).
fn faults() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // minflt is field 10, majflt field 12 (1-based, counting pid and comm).
    (
        f.get(7).copied().unwrap_or(0),
        f.get(9).copied().unwrap_or(0),
    )
}

/// Resets VmHWM (Linux `clear_refs` 5) so the next phase's peak is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 ^ (self.0 >> 29)
    }
}

fn main() {
    let mut count: u64 = 100_000_000;
    let mut lookups: u64 = 10_000_000;
    let mut dir = std::env::temp_dir().join("trawl-known-bench");
    let mut memory_mib: usize = 256;
    let mut keep = false;
    let mut batch: usize = 4096;
    let mut table: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("missing value");
        match a.as_str() {
            "--count" => count = val().parse().expect("--count N"),
            "--lookups" => lookups = val().parse().expect("--lookups N"),
            "--dir" => dir = PathBuf::from(val()),
            "--memory-mib" => memory_mib = val().parse().expect("--memory-mib N"),
            "--keep" => keep = true,
            "--batch" => batch = val().parse::<usize>().expect("--batch N").max(1),
            "--table" => table = Some(PathBuf::from(val())),
            other => panic!("unknown argument {other}"),
        }
    }
    std::fs::create_dir_all(&dir).expect("create --dir");
    let path = table
        .clone()
        .unwrap_or_else(|| dir.join(format!("bench-{count}.trawlknown")));
    if table.is_some() {
        keep = true;
    }
    println!(
        "table {} : {count} entries x (MD5 + SHA-1 + SHA-256)",
        path.display()
    );

    if !path.exists() {
        let opts = ImportOptions {
            memory: memory_mib << 20,
            ..ImportOptions::default()
        };
        let t0 = Instant::now();
        let mut imp = Importer::new(&path, "bench", Kind::Known, &opts).expect("importer");
        for i in 0..count {
            imp.add(&digests(i)).expect("add");
        }
        let t_add = t0.elapsed();
        imp.record_source(SourceInfo {
            path: "generated".into(),
            format: "generated".into(),
            bytes: 0,
            sha256: String::new(),
            lines: count,
            digests: trawl_known::DigestCounts {
                md5: count,
                sha1: count,
                sha256: count,
            },
            malformed: 0,
            malformed_examples: Vec::new(),
        });
        let report = imp.finish().expect("finish");
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "import: {:.1} s ({:.1} s generating + sorting runs, {} runs of {memory_mib} MiB, \
             then merge), {:.2} M digests/s, {:.0} MB/s of table, table {:.2} GB",
            secs,
            t_add.as_secs_f64(),
            report.runs,
            (3 * count) as f64 / secs / 1e6,
            report.bytes as f64 / secs / 1e6,
            report.bytes as f64 / 1e9
        );
        memory("after import");
    } else {
        println!("reusing the existing table");
    }

    reset_peak();
    let t0 = Instant::now();
    let set = KnownSet::open(&path, Kind::Known).expect("open");
    println!(
        "open (header, CRC, spot checks): {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "table format version {}",
        set.table().expect("a table").version()
    );
    let c = set.counts().expect("counts");
    assert_eq!((c.md5, c.sha1, c.sha256), (count, count, count));

    // Queries are generated on the fly (a prepared list of 10M would be
    // the biggest thing in memory); the generation alone is timed too.
    let query = |k: u64, rng: &mut Lcg, strip: bool| -> Digests {
        let r = rng.next();
        let d = if k.is_multiple_of(2) {
            digests(r % count)
        } else {
            digests(count + r % (u64::MAX / 2)) // never inserted
        };
        if strip {
            Digests {
                sha256: d.sha256,
                ..Digests::default()
            }
        } else {
            d
        }
    };
    let mut rng = Lcg(42);
    let c0 = cpu_secs();
    let mut sink = 0u8;
    for k in 0..lookups {
        sink ^= std::hint::black_box(query(k, &mut rng, false))
            .md5
            .unwrap_or_default()[0];
    }
    let gen_cpu = cpu_secs() - c0;
    println!("query generation alone: {gen_cpu:.2} s CPU (included below) [{sink}]");

    for (label, strip, batched) in [
        ("SHA-256 only", true, false),
        ("SHA-256 only, again (pages already mapped)", true, false),
        (
            "MD5 + SHA-1 + SHA-256 (a miss searches all three)",
            false,
            false,
        ),
        ("SHA-256 only, batched", true, true),
        ("MD5 + SHA-1 + SHA-256, batched", false, true),
    ] {
        let f0 = faults();
        let mut rng = Lcg(42);
        let t0 = Instant::now();
        let c0 = cpu_secs();
        let mut hits = 0u64;
        if batched {
            let mut qs: Vec<Digests> = Vec::with_capacity(batch);
            let mut k = 0u64;
            while k < lookups {
                qs.clear();
                while qs.len() < batch && k < lookups {
                    qs.push(query(k, &mut rng, strip));
                    k += 1;
                }
                for h in set
                    .lookup_many(&qs)
                    .expect("lookup_many")
                    .into_iter()
                    .flatten()
                {
                    debug_assert_eq!(h.algorithm, Algorithm::Sha256);
                    hits += 1;
                }
            }
        } else {
            for k in 0..lookups {
                if let Some(h) = set.lookup(&query(k, &mut rng, strip)).expect("lookup") {
                    debug_assert_eq!(h.algorithm, Algorithm::Sha256);
                    hits += 1;
                }
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu_secs() - c0;
        let f1 = faults();
        assert_eq!(hits, lookups.div_ceil(2), "every even query is a hit");
        println!(
            "lookups, {label}{}: {lookups} ({hits} hits), one thread: {cpu:.2} s CPU = \
             {:.2} M lookups per CPU-second ({:.2} M/s without the query generation); \
             wall {secs:.2} s = {:.2} M/s; page faults {} minor, {} major",
            if batched {
                format!(" ({batch} per call)")
            } else {
                String::new()
            },
            lookups as f64 / cpu / 1e6,
            lookups as f64 / (cpu - gen_cpu).max(1e-9) / 1e6,
            lookups as f64 / secs / 1e6,
            f1.0 - f0.0,
            f1.1 - f0.1,
        );
    }
    memory("lookup phase");
    println!(
        "(RssFile: the table's pages in the page cache, mapped read-only, shared \
         between processes and reclaimable; RssAnon: the process's own memory)"
    );
    drop(set);
    if !keep {
        std::fs::remove_file(&path).expect("remove table");
        println!("table removed");
    }
}
