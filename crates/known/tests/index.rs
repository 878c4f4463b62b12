//! Table format 2: the page index agrees with the arrays, a corrupted
//! index is caught by `open` or `verify`, version-1 tables are still read,
//! and the batched lookups agree with a HashSet and with one-by-one lookups.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::Rng;
use proptest::prelude::*;
use trawl_known::search::{bucket_of, index_bits, prefix_of};
use trawl_known::{
    Algorithm, Digests, ImportOptions, Importer, Kind, KnownError, KnownSet, KnownSets, Table,
    VERSION, VERSION_1,
};

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// A table of `n` random files (all three digests each) and the files.
fn build(dir: &Path, name: &str, n: u64, seed: u64, kind: Kind) -> (PathBuf, Vec<Digests>) {
    let mut r = Rng(seed);
    let files: Vec<Digests> = (0..n).map(|_| r.digests()).collect();
    let out = dir.join(format!("{name}.trawlknown"));
    let mut imp = Importer::new(&out, name, kind, &ImportOptions::default()).unwrap();
    for d in &files {
        imp.add(d).unwrap();
    }
    imp.finish().unwrap();
    (out, files)
}

fn check_index<const N: usize>(t: &Table, alg: Algorithm, a: &[[u8; N]]) {
    let idx = t.index(alg).expect("a version-2 table has an index");
    assert_eq!(idx.bits(), index_bits(a.len() as u64), "{alg}");
    for j in 0..=idx.buckets() {
        let want = a.partition_point(|d| bucket_of(prefix_of(d), idx.bits()) < j);
        assert_eq!(idx.start(j), want as u64, "{alg} bucket {j}");
    }
}

#[test]
fn index_agrees_with_the_arrays() {
    let tmp = tempfile::tempdir().unwrap();
    for n in [0u64, 1, 63, 64, 65, 5000, 40_000] {
        let (p, files) = build(tmp.path(), &format!("n{n}"), n, n + 1, Kind::Known);
        let t = Table::open(&p).unwrap();
        assert_eq!(t.version(), VERSION);
        assert_eq!(t.meta().version, VERSION);
        t.verify().unwrap();
        check_index(&t, Algorithm::Md5, t.md5());
        check_index(&t, Algorithm::Sha1, t.sha1());
        check_index(&t, Algorithm::Sha256, t.sha256());
        for d in &files {
            assert_eq!(t.lookup(d), Some(Algorithm::Sha256));
            for alg in Algorithm::ALL {
                assert!(t.contains(alg, d.get(alg).unwrap()));
            }
        }
    }
    // Buckets hold 32 to 64 entries on average.
    assert_eq!(index_bits(63), 0);
    assert_eq!(index_bits(64), 1);
    assert_eq!(index_bits(100_000_000), 21);
}

#[test]
fn same_digests_give_the_same_table_whatever_the_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Rng(3);
    let files: Vec<Digests> = (0..20_000).map(|_| r.digests()).collect();
    let mut tables = Vec::new();
    for (i, memory) in [1usize, 64 << 20].into_iter().enumerate() {
        let out = tmp.path().join(format!("m{i}"));
        let opts = ImportOptions {
            memory,
            ..ImportOptions::default()
        };
        let mut imp = Importer::new(&out, "m", Kind::Known, &opts).unwrap();
        // Duplicates: the upper bound of the count is twice the count.
        for d in files.iter().chain(&files) {
            imp.add(d).unwrap();
        }
        imp.finish().unwrap();
        tables.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(tables[0], tables[1]);
}

/// Rewrites the version-2 header CRC after an edit.
fn fix_crc(b: &mut [u8]) {
    let meta_off = le64(b, 24) as usize;
    let meta_len = le64(b, 32) as usize;
    let mut c = crc32fast::Hasher::new();
    c.update(&b[..88]);
    c.update(&b[92..140]);
    c.update(&b[meta_off..meta_off + meta_len]);
    let crc = c.finalize();
    b[88..92].copy_from_slice(&crc.to_le_bytes());
}

fn open_bytes(dir: &Path, name: &str, b: &[u8]) -> Result<Table, KnownError> {
    let p = dir.join(name);
    std::fs::write(&p, b).unwrap();
    Table::open(&p)
}

#[test]
fn corrupted_index_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, files) = build(tmp.path(), "good", 5000, 9, Kind::Known);
    let good = std::fs::read(&p).unwrap();
    let sha_idx = le64(&good, 92 + 2 * 16) as usize;
    let bits = le32(&good, 92 + 2 * 16 + 8);
    let width = le32(&good, 92 + 2 * 16 + 12) as usize;
    assert_eq!((bits, width), (index_bits(5000), 4));

    // The first entry not 0, the last not the count: open refuses.
    for j in [0usize, 1 << bits] {
        let mut b = good.clone();
        b[sha_idx + j * width] ^= 1;
        let e = open_bytes(tmp.path(), "ends", &b).unwrap_err();
        assert!(
            matches!(e, KnownError::Corrupt { offset, .. } if offset == (sha_idx + j * width) as u64),
            "{e}"
        );
        assert!(e.to_string().contains("SHA-256 page index entry"), "{e}");
    }
    // Any entry changed: open may pass (spot checks), verify does not, and
    // lookups before verify never panic.
    for j in [1usize, 7, 50, (1 << bits) - 1] {
        for delta in [1u32, 1000, u32::MAX] {
            let mut b = good.clone();
            let at = sha_idx + j * width;
            let v = le32(&b, at).wrapping_add(delta);
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            if let Ok(t) = open_bytes(tmp.path(), "entry", &b) {
                for d in &files {
                    let _ = t.lookup(d);
                }
                let _ = t.lookup_many(&files);
                let e = t.verify().unwrap_err();
                assert!(e.to_string().contains("page index entry"), "{e}");
            }
        }
    }
    // Descriptors: too many bits, a bad width, a misaligned offset; the CRC
    // made consistent so that the layout check itself is tested.
    for (field, value) in [(8usize, 40u64), (8, 5), (12, 3), (12, 0), (0, 1), (0, 64)] {
        let mut b = good.clone();
        let at = 92 + 2 * 16 + field;
        if field == 0 {
            let off = le64(&b, at) + value;
            b[at..at + 8].copy_from_slice(&off.to_le_bytes());
        } else {
            b[at..at + 4].copy_from_slice(&(value as u32).to_le_bytes());
        }
        fix_crc(&mut b);
        let e = open_bytes(tmp.path(), "desc", &b).unwrap_err();
        assert!(e.to_string().contains("page index"), "{field} {value}: {e}");
    }
    // A descriptor changed without fixing the CRC: the CRC covers it.
    let mut b = good.clone();
    b[92 + 8] ^= 1;
    assert!(matches!(
        open_bytes(tmp.path(), "crc", &b).unwrap_err(),
        KnownError::HeaderChecksum { .. }
    ));
    // Non-zero padding before an index: verify.
    let md5_idx = le64(&good, 92) as usize;
    let sha_end = le64(&good, 72) as usize + 32 * 5000;
    if md5_idx > sha_end {
        let mut b = good.clone();
        b[sha_end] = 1;
        let t = open_bytes(tmp.path(), "pad", &b).unwrap();
        assert!(t.verify().unwrap_err().to_string().contains("padding"));
    }
}

/// The version-1 form of a version-2 table: the same arrays, no index,
/// the metadata right after the SHA-256 array, version 1 in header and
/// metadata, the version-1 CRC (bytes 0..88 and the metadata).
fn as_version_1(v2: &[u8]) -> Vec<u8> {
    let meta_off = le64(v2, 24) as usize;
    let sha_end = le64(v2, 72) as usize + 32 * le64(v2, 80) as usize;
    let meta = String::from_utf8(v2[meta_off..].to_vec()).unwrap();
    let meta = meta.replacen(
        &format!("\"version\": {VERSION}"),
        &format!("\"version\": {VERSION_1}"),
        1,
    );
    let mut b = v2[..sha_end].to_vec();
    b[92..140].fill(0);
    b[8..12].copy_from_slice(&VERSION_1.to_le_bytes());
    let total = (sha_end + meta.len()) as u64;
    b[16..24].copy_from_slice(&total.to_le_bytes());
    b[24..32].copy_from_slice(&(sha_end as u64).to_le_bytes());
    b[32..40].copy_from_slice(&(meta.len() as u64).to_le_bytes());
    b.extend_from_slice(meta.as_bytes());
    let mut c = crc32fast::Hasher::new();
    c.update(&b[..88]);
    c.update(meta.as_bytes());
    let crc = c.finalize();
    b[88..92].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn version_1_tables_are_still_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, files) = build(tmp.path(), "v2", 3000, 11, Kind::Notable);
    let v1 = as_version_1(&std::fs::read(&p).unwrap());
    let p1 = tmp.path().join("v1.trawlknown");
    std::fs::write(&p1, &v1).unwrap();
    let t = Table::open(&p1).unwrap();
    assert_eq!(t.version(), VERSION_1);
    assert!(t.index(Algorithm::Sha256).is_none());
    t.verify().unwrap();
    let set = KnownSet::open(&p1, Kind::Notable).unwrap();
    let mut r = Rng(12);
    let absent: Vec<Digests> = (0..500).map(|_| r.digests()).collect();
    for d in &files {
        assert_eq!(set.lookup(d).unwrap().unwrap().algorithm, Algorithm::Sha256);
    }
    for d in &absent {
        assert!(set.lookup(d).unwrap().is_none());
    }
    let all: Vec<Digests> = files.iter().chain(&absent).copied().collect();
    let many = set.lookup_many(&all).unwrap();
    assert_eq!(many.iter().filter(|h| h.is_some()).count(), files.len());
    // A version-1 table re-imported becomes version 2, same digests.
    let out = tmp.path().join("again.trawlknown");
    let rep = trawl_known::import(&[&p1], &out, "v2", Kind::Notable).unwrap();
    assert_eq!(rep.meta.version, VERSION);
    let t2 = Table::open(&out).unwrap();
    assert_eq!(t2.sha256(), t.sha256());
    // A version-1 table with bytes in the (version-2) index descriptors:
    // reserved space, refused.
    let mut b = v1.clone();
    b[100] = 1;
    let e = open_bytes(tmp.path(), "v1res", &b).unwrap_err();
    assert!(matches!(e, KnownError::Corrupt { offset: 100, .. }), "{e}");
}

/// Every (algorithm, digest) a set holds.
type Model = HashSet<(Algorithm, Vec<u8>)>;

/// Digests of files some sets hold only as MD5, some only as SHA-1 or
/// SHA-256 (a set may hold one algorithm only).
#[derive(Debug, Clone)]
struct Case {
    /// Per set: (kind, which algorithms it stores, file numbers it holds).
    sets: Vec<(Kind, [bool; 3], Vec<u16>)>,
    /// Queries: file number, and which digests the query carries.
    queries: Vec<(u16, [bool; 3])>,
}

fn file(i: u16) -> Digests {
    let mut r = Rng(u64::from(i).wrapping_mul(0x9E37_79B9) ^ 0xABCD);
    r.digests()
}

fn case() -> impl Strategy<Value = Case> {
    let set = (
        any::<bool>(),
        any::<[bool; 3]>(),
        proptest::collection::vec(0u16..600, 0..400),
    )
        .prop_map(|(notable, algs, files)| {
            let kind = if notable { Kind::Notable } else { Kind::Known };
            (kind, algs, files)
        });
    (
        proptest::collection::vec(set, 1..4),
        proptest::collection::vec((0u16..700, any::<[bool; 3]>()), 0..300),
    )
        .prop_map(|(sets, queries)| Case { sets, queries })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// `KnownSets::lookup_many` gives what a HashSet model gives, and the
    /// same as `lookup` file by file (notable wins, strongest digest first,
    /// sets without an algorithm skipped).
    #[test]
    fn batched_lookups_agree_with_a_hashset(c in case()) {
        let tmp = tempfile::tempdir().unwrap();
        let mut sets = KnownSets::new();
        let mut model: Vec<(Kind, String, Model)> = Vec::new();
        for (i, (kind, algs, files)) in c.sets.iter().enumerate() {
            let name = format!("s{i}");
            let out = tmp.path().join(&name);
            let mut imp = Importer::new(&out, &name, *kind, &ImportOptions::default()).unwrap();
            let mut m = HashSet::new();
            for &f in files {
                let d = file(f);
                let kept = Digests {
                    md5: d.md5.filter(|_| algs[0]),
                    sha1: d.sha1.filter(|_| algs[1]),
                    sha256: d.sha256.filter(|_| algs[2]),
                };
                imp.add(&kept).unwrap();
                for alg in Algorithm::ALL {
                    if let Some(x) = kept.get(alg) {
                        m.insert((alg, x.to_vec()));
                    }
                }
            }
            imp.finish().unwrap();
            sets.push(KnownSet::open(&out, *kind).unwrap());
            model.push((*kind, name, m));
        }
        let queries: Vec<Digests> = c.queries.iter().map(|(f, has)| {
            let d = file(*f);
            Digests {
                md5: d.md5.filter(|_| has[0]),
                sha1: d.sha1.filter(|_| has[1]),
                sha256: d.sha256.filter(|_| has[2]),
            }
        }).collect();
        let many = sets.lookup_many(&queries).unwrap();
        prop_assert_eq!(many.len(), queries.len());
        for (q, got) in queries.iter().zip(&many) {
            let mut want = None;
            'find: for kind in [Kind::Notable, Kind::Known] {
                for (k, name, m) in model.iter().filter(|s| s.0 == kind) {
                    for alg in Algorithm::STRONGEST_FIRST {
                        if q.get(alg).is_some_and(|x| m.contains(&(alg, x.to_vec()))) {
                            want = Some((*k, name.clone(), alg));
                            break 'find;
                        }
                    }
                }
            }
            let got_t = got.as_ref().map(|h| (h.kind, h.set.to_string(), h.algorithm));
            prop_assert_eq!(&got_t, &want);
            prop_assert_eq!(got, &sets.lookup(q).unwrap());
        }
        // Per set and per table too.
        for s in sets.sets() {
            let one: Vec<_> = queries.iter().map(|q| s.lookup(q).unwrap()).collect();
            prop_assert_eq!(s.lookup_many(&queries).unwrap(), one);
        }
    }
}
