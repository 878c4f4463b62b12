//! Properties: lookups agree with a naive in-memory set; no input, however
//! garbled, truncated or bit-flipped, makes the crate panic; and any change
//! to a table's bytes is caught by `open` or `verify`.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::Rng;
use proptest::prelude::*;
use trawl_known::{
    Algorithm, Digests, ImportOptions, Importer, Kind, KnownSet, OpenOptions, Table, import,
};

/// The naive model: every (algorithm, digest) inserted.
fn model(ds: &[(Algorithm, Vec<u8>)]) -> HashSet<(Algorithm, Vec<u8>)> {
    ds.iter().cloned().collect()
}

fn random_entries(seed: u64, n: usize) -> Vec<(Algorithm, Vec<u8>)> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| {
            let alg = Algorithm::ALL[(r.next_u64() % 3) as usize];
            let mut d = vec![0u8; alg.digest_len()];
            r.fill(&mut d);
            // Clustered prefixes now and then: interpolation must not rely
            // on uniformity for correctness.
            if r.next_u64().is_multiple_of(8) {
                d[..6].fill(0x42);
            }
            (alg, d)
        })
        .collect()
}

fn add(imp: &mut Importer, alg: Algorithm, d: &[u8]) {
    match alg {
        Algorithm::Md5 => imp.add_md5(d.try_into().unwrap()).unwrap(),
        Algorithm::Sha1 => imp.add_sha1(d.try_into().unwrap()).unwrap(),
        Algorithm::Sha256 => imp.add_sha256(d.try_into().unwrap()).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Thousands of random digests (with duplicates), written through the
    /// external sort with a tiny memory budget or all in memory, then as a
    /// text list: every lookup agrees with a HashSet.
    #[test]
    fn lookups_agree_with_a_hashset(seed in any::<u64>(), n in 1usize..6000, dup in 0usize..500, tiny in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let mut entries = random_entries(seed, n);
        let extra: Vec<_> = entries.iter().take(dup).cloned().collect();
        entries.extend(extra);
        let want = model(&entries);

        let out = tmp.path().join("t.trawlknown");
        let opts = ImportOptions { memory: if tiny { 1 } else { 64 << 20 }, ..ImportOptions::default() };
        let mut imp = Importer::new(&out, "p", Kind::Known, &opts).unwrap();
        for (alg, d) in &entries {
            add(&mut imp, *alg, d);
        }
        let report = imp.finish().unwrap();
        let table = Table::open(&out).unwrap();
        table.verify().unwrap();
        let total: u64 = report.meta.arrays.iter().map(|a| a.count).sum();
        prop_assert_eq!(total as usize, want.len());

        // The same digests as a text list, opened directly.
        let list = tmp.path().join("list.txt");
        let text: String = entries.iter().map(|(_, d)| format!("{}  name\n", hex::encode(d))).collect();
        std::fs::write(&list, text).unwrap();
        let set = KnownSet::open(&list, Kind::Known).unwrap();

        let mut r = Rng(seed ^ 0x5555);
        let mut queries: Vec<(Algorithm, Vec<u8>)> = entries.iter().step_by(3).cloned().collect();
        for (alg, d) in entries.iter().step_by(5) {
            let mut near = d.clone();
            let last = near.len() - 1;
            near[last] ^= 1; // a neighbour: usually absent
            queries.push((*alg, near));
        }
        queries.extend(random_entries(r.next_u64(), 500));
        for (alg, d) in &queries {
            let expect = want.contains(&(*alg, d.clone()));
            prop_assert_eq!(table.contains(*alg, d), expect);
            prop_assert_eq!(set.contains(*alg, d).unwrap(), expect);
            let mut digests = Digests::default();
            match alg {
                Algorithm::Md5 => digests.md5 = Some(d[..].try_into().unwrap()),
                Algorithm::Sha1 => digests.sha1 = Some(d[..].try_into().unwrap()),
                Algorithm::Sha256 => digests.sha256 = Some(d[..].try_into().unwrap()),
            }
            prop_assert_eq!(set.lookup(&digests).unwrap().map(|h| h.algorithm), expect.then_some(*alg));
        }
    }

    /// Random bytes as a list: an answer (a set or an error), never a panic.
    #[test]
    fn garbage_lists_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000), max in 0u64..4) {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("garbage");
        std::fs::write(&p, &data).unwrap();
        let mut o = OpenOptions::new(Kind::Notable);
        o.import.max_malformed = max;
        if let Ok(set) = KnownSet::open_with(&p, &o) {
            let _ = set.lookup(&Digests { md5: Some([0; 16]), sha1: Some([0; 20]), sha256: Some([0; 32]) });
        }
    }

    /// Valid lists of each format, garbled by edits and truncation.
    #[test]
    fn garbled_lists_never_panic(
        kind in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
        cut in any::<prop::sample::Index>(),
        max in 0u64..3,
    ) {
        let mut r = Rng(7);
        let mut text = String::new();
        match kind {
            0 => text.push_str("%%%% HASHDEEP-1.0\n%%%% size,md5,sha256,filename\n## c\n"),
            1 => text.push_str("\"SHA-1\",\"MD5\",\"CRC32\",\"FileName\"\n"),
            _ => {}
        }
        for i in 0..20 {
            let d = r.digests();
            let (m, s1, s2) = (hex::encode(d.md5.unwrap()), hex::encode(d.sha1.unwrap()), hex::encode(d.sha256.unwrap()));
            text.push_str(&match kind {
                0 => format!("{i},{m},{s2},/x/f,{i}\n"),
                1 => format!("\"{s1}\",\"{m}\",\"00\",\"f{i}\"\n"),
                2 => format!("{s2}  f {i}\nSHA1 (g{i}) = {s1}\n"),
                _ => format!("{m}\n"),
            });
        }
        let mut data = text.into_bytes();
        for (at, b) in edits {
            let i = at.index(data.len());
            data[i] = b;
        }
        data.truncate(cut.index(data.len() + 1));
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("garbled");
        std::fs::write(&p, &data).unwrap();
        let mut o = OpenOptions::new(Kind::Known);
        o.import.max_malformed = max;
        match KnownSet::open_with(&p, &o) {
            Ok(set) => {
                let t = set.table().unwrap();
                t.verify().unwrap();
                let src = &t.meta().sources[0];
                prop_assert!(src.malformed <= max);
                prop_assert!(src.digests.total() > 0);
            }
            Err(e) => prop_assert!(e.to_string().contains("garbled"), "{}", e),
        }
    }
}

/// One valid table, built once for the corruption properties.
fn good_table() -> &'static (PathBuf, Vec<u8>) {
    static T: OnceLock<(PathBuf, Vec<u8>)> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("trawl-known-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("src.txt");
        let text: String = random_entries(99, 1500)
            .iter()
            .map(|(_, d)| format!("{}\n", hex::encode(d)))
            .collect();
        std::fs::write(&src, text).unwrap();
        let out = dir.join("good.trawlknown");
        let _ = std::fs::remove_file(&out);
        import(&[&src], &out, "good", Kind::Known).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        (out, bytes)
    })
}

fn open_bytes(dir: &Path, b: &[u8]) -> Result<Table, trawl_known::KnownError> {
    let p = dir.join("t");
    std::fs::write(&p, b).unwrap();
    Table::open(&p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any truncation is refused.
    #[test]
    fn truncated_tables_are_refused(cut in any::<prop::sample::Index>()) {
        let (_, good) = good_table();
        let len = cut.index(good.len());
        let tmp = tempfile::tempdir().unwrap();
        prop_assert!(open_bytes(tmp.path(), &good[..len]).is_err());
    }

    /// Any bit flips are caught by open or verify; lookups on a table that
    /// opened never panic.
    #[test]
    fn bit_flips_are_caught(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6)) {
        let (_, good) = good_table();
        let mut b = good.clone();
        for (at, bit) in &flips {
            let i = at.index(b.len());
            b[i] ^= 1 << bit;
        }
        prop_assume!(&b != good); // flips that cancel out
        let tmp = tempfile::tempdir().unwrap();
        if let Ok(t) = open_bytes(tmp.path(), &b) {
            for (alg, d) in random_entries(5, 50) {
                let _ = t.contains(alg, &d);
            }
            for d in t.sha256().iter().step_by(37) {
                let _ = t.contains(Algorithm::Sha256, d);
            }
            prop_assert!(t.verify().is_err());
        }
    }
}
