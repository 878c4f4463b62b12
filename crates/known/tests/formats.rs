//! Import from every input format and look up present and absent digests.
//! Lists are written by the real tools (hashdeep, coreutils' md5sum,
//! sha1sum, sha256sum) over files whose digests the test computes itself.

mod common;

use std::path::Path;

use common::{digests_of, have, run_in, write_files};
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use trawl_known::{
    Algorithm, Digests, Hit, ImportOptions, Kind, KnownError, KnownSet, KnownSets, OpenOptions,
    SetFormat, Table, import, import_with,
};

fn hit(set: &KnownSet, d: &Digests) -> Option<Hit> {
    set.lookup(d).unwrap()
}

/// A file nobody listed.
fn absent() -> Digests {
    digests_of(b"this content is in no list")
}

#[test]
fn hashdeep_default_and_custom_columns() {
    if std::process::Command::new("hashdeep")
        .arg("-V")
        .output()
        .is_err()
    {
        trawl_fixtures::skip("hashdeep_default_and_custom_columns", "hashdeep");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let files = write_files(&data);

    // Default columns: size,md5,sha256,filename (names contain commas).
    let list = tmp.path().join("default.hashdeep");
    std::fs::write(&list, run_in(&data, "hashdeep", &["-r", "."])).unwrap();
    let set = KnownSet::open(&list, Kind::Known).unwrap();
    assert_eq!(set.format(), SetFormat::TextList);
    assert_eq!(set.name(), "default");
    let n = files.len() as u64;
    let counts = set.counts().unwrap();
    assert_eq!((counts.md5, counts.sha1, counts.sha256), (n, 0, n));
    let meta = set.table().unwrap().meta();
    assert_eq!(meta.sources[0].format, "hashdeep");
    assert_eq!(meta.sources[0].digests.sha256, n);
    for (p, d) in &files {
        let h = hit(&set, &digests_of(d)).unwrap_or_else(|| panic!("{} not found", p.display()));
        assert_eq!(h.algorithm, Algorithm::Sha256);
        assert_eq!(h.kind, Kind::Known);
        assert_eq!(&*h.set, "default");
        // MD5 alone is enough, and reported as an MD5 match.
        let md5_only = Digests {
            md5: digests_of(d).md5,
            ..Digests::default()
        };
        assert_eq!(hit(&set, &md5_only).unwrap().algorithm, Algorithm::Md5);
    }
    assert_eq!(hit(&set, &absent()), None);

    // Declared column set: md5,sha1 only.
    let list = tmp.path().join("md5sha1.txt");
    std::fs::write(
        &list,
        run_in(&data, "hashdeep", &["-c", "md5,sha1", "-l", "-r", "."]),
    )
    .unwrap();
    let set = KnownSet::open(&list, Kind::Notable).unwrap();
    let counts = set.counts().unwrap();
    assert_eq!((counts.md5, counts.sha1, counts.sha256), (n, n, 0));
    for (_, d) in &files {
        let h = hit(&set, &digests_of(d)).unwrap();
        assert_eq!((h.algorithm, h.kind), (Algorithm::Sha1, Kind::Notable));
    }
    assert_eq!(hit(&set, &absent()), None);
}

#[test]
fn coreutils_sums_plain_tagged_and_escaped() {
    for tool in ["md5sum", "sha1sum", "sha256sum"] {
        if !have(tool) {
            trawl_fixtures::skip("coreutils_sums_plain_tagged_and_escaped", tool);
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let files = write_files(&data);
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = names.iter().map(String::as_str).collect();
    let cases: [(&str, Vec<&str>, Algorithm); 4] = [
        ("md5sum", vec![], Algorithm::Md5),
        ("sha1sum", vec!["-b"], Algorithm::Sha1), // `HEX *name`
        ("sha256sum", vec![], Algorithm::Sha256),
        ("sha256sum", vec!["--tag"], Algorithm::Sha256),
    ];
    for (i, (tool, flags, alg)) in cases.iter().enumerate() {
        let mut a = flags.clone();
        a.extend(&args);
        let out = run_in(&data, tool, &a);
        if *tool == "sha1sum" {
            // The backslash name is escaped: the line starts with '\'.
            assert!(out.split(|&c| c == b'\n').any(|l| l.starts_with(b"\\")));
        }
        let list = tmp.path().join(format!("{i}-{tool}.txt"));
        std::fs::write(&list, &out).unwrap();
        let set = KnownSet::open(&list, Kind::Known).unwrap();
        assert_eq!(set.counts().unwrap().get(*alg), files.len() as u64);
        assert_eq!(set.counts().unwrap().total(), files.len() as u64);
        assert_eq!(set.table().unwrap().meta().sources[0].format, "sums");
        for (_, d) in &files {
            assert_eq!(hit(&set, &digests_of(d)).unwrap().algorithm, *alg, "{tool}");
        }
        assert_eq!(hit(&set, &absent()), None);
    }
}

#[test]
fn plain_digest_list_mixed_lengths_and_case() {
    let tmp = tempfile::tempdir().unwrap();
    let a = digests_of(b"a");
    let b = digests_of(b"b");
    let c = digests_of(b"c");
    let text = format!(
        "# a comment\n\n{}\n  {}  \r\n{}\n{}\n",
        hex::encode(a.md5.unwrap()),
        hex::encode_upper(b.sha1.unwrap()),
        hex::encode(c.sha256.unwrap()),
        hex::encode(c.sha256.unwrap()), // duplicate
    );
    let list = tmp.path().join("plain.lst");
    std::fs::write(&list, text).unwrap();
    let set = KnownSet::open(&list, Kind::Known).unwrap();
    let counts = set.counts().unwrap();
    assert_eq!((counts.md5, counts.sha1, counts.sha256), (1, 1, 1));
    assert_eq!(set.table().unwrap().meta().sources[0].digests.sha256, 2);
    assert_eq!(set.table().unwrap().meta().sources[0].lines, 6);
    assert_eq!(hit(&set, &a).unwrap().algorithm, Algorithm::Md5);
    assert_eq!(hit(&set, &b).unwrap().algorithm, Algorithm::Sha1);
    assert_eq!(hit(&set, &c).unwrap().algorithm, Algorithm::Sha256);
    assert_eq!(hit(&set, &absent()), None);
    assert_eq!(hit(&set, &Digests::default()), None);
}

#[test]
fn nsrl_rdsv2_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let a = digests_of(b"rdsv2 a");
    let b = digests_of(b"rdsv2 b");
    let mut text = String::from(
        "\"SHA-1\",\"MD5\",\"CRC32\",\"FileName\",\"FileSize\",\"ProductCode\",\"OpSystemCode\",\"SpecialCode\"\r\n",
    );
    for (d, name) in [(&a, "a, with comma.dll"), (&b, "b.exe")] {
        text.push_str(&format!(
            "\"{}\",\"{}\",\"00000000\",\"{name}\",12,1234,\"362\",\"\"\r\n",
            hex::encode_upper(d.sha1.unwrap()),
            hex::encode_upper(d.md5.unwrap())
        ));
    }
    let list = tmp.path().join("NSRLFile.txt");
    std::fs::write(&list, text).unwrap();
    let set = KnownSet::open(&list, Kind::Known).unwrap();
    assert_eq!(
        set.table().unwrap().meta().sources[0].format,
        "nsrl-rdsv2-csv"
    );
    assert_eq!(hit(&set, &a).unwrap().algorithm, Algorithm::Sha1);
    let md5_only = Digests {
        md5: b.md5,
        ..Digests::default()
    };
    assert_eq!(hit(&set, &md5_only).unwrap().algorithm, Algorithm::Md5);
    assert_eq!(hit(&set, &absent()), None);
}

/// The RDSv3 layout: METADATA rows per file name / package, DISTINCT_HASH
/// one row per content, and the FILE view joining them (plus PKG, OS, MFG,
/// VERSION). `md5_index` false drops the MD5 index.
fn rdsv3(path: &Path, files: &[Digests], md5_index: bool) {
    let c = Connection::open(path).unwrap();
    c.execute_batch("PRAGMA synchronous = OFF; BEGIN;").unwrap();
    c.execute_batch(
        "CREATE TABLE VERSION (version TEXT NOT NULL, build_set TEXT NOT NULL, \
           build_date TIMESTAMP NOT NULL, release_date TIMESTAMP NOT NULL, description TEXT NOT NULL);
         CREATE TABLE MFG (manufacturer_id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE OS (operating_system_id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, \
           version TEXT NOT NULL, manufacturer_id INTEGER NOT NULL);
         CREATE TABLE PKG (package_id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, \
           version TEXT NOT NULL, operating_system_id INTEGER NOT NULL, \
           manufacturer_id INTEGER NOT NULL, language TEXT NOT NULL, application_type TEXT NOT NULL);
         CREATE TABLE DISTINCT_HASH (sha256 VARCHAR NOT NULL PRIMARY KEY, sha1 VARCHAR NOT NULL, \
           md5 VARCHAR NOT NULL);
         CREATE TABLE METADATA (sha256 VARCHAR NOT NULL, file_name VARCHAR NOT NULL, \
           file_size INTEGER NOT NULL, package_id INTEGER NOT NULL);
         CREATE INDEX METADATA_sha256_idx ON METADATA (sha256);
         CREATE INDEX DISTINCT_HASH_sha1_idx ON DISTINCT_HASH (sha1);
         CREATE VIEW FILE AS SELECT METADATA.sha256 AS sha256, DISTINCT_HASH.sha1 AS sha1, \
           DISTINCT_HASH.md5 AS md5, METADATA.file_name AS file_name, \
           METADATA.file_size AS file_size, METADATA.package_id AS package_id \
           FROM METADATA JOIN DISTINCT_HASH ON METADATA.sha256 = DISTINCT_HASH.sha256;
         INSERT INTO VERSION VALUES ('2024.03.1', 'Modern', '2024-03-01', '2024-03-01', 'test');
         INSERT INTO MFG VALUES (1, 'Test Manufacturer');
         INSERT INTO OS VALUES (1, 'TestOS', '1.0', 1);
         INSERT INTO PKG VALUES (1, 'Test Package', '1.0', 1, 1, 'English', 'Operating System');",
    )
    .unwrap();
    if md5_index {
        c.execute_batch("CREATE INDEX DISTINCT_HASH_md5_idx ON DISTINCT_HASH (md5);")
            .unwrap();
    }
    for (i, d) in files.iter().enumerate() {
        let s256 = hex::encode_upper(d.sha256.unwrap());
        c.execute(
            "INSERT INTO DISTINCT_HASH VALUES (?1, ?2, ?3)",
            [
                &s256,
                &hex::encode_upper(d.sha1.unwrap()),
                &hex::encode_upper(d.md5.unwrap()),
            ],
        )
        .unwrap();
        // Two file names per content, as in the RDS.
        for name in [format!("file{i}.dll"), format!("copy{i}.dll")] {
            c.execute(
                "INSERT INTO METADATA VALUES (?1, ?2, ?3, 1)",
                rusqlite::params![&s256, name, i as i64],
            )
            .unwrap();
        }
    }
    c.execute_batch("COMMIT;").unwrap();
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn nsrl_rdsv3_sqlite_queried_and_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let nsrl_dir = tmp.path().join("nsrl");
    std::fs::create_dir(&nsrl_dir).unwrap();
    let db = nsrl_dir.join("RDS_2024.03.1_modern_minimal.db");
    let files: Vec<Digests> = (0..50u32).map(|i| digests_of(&i.to_le_bytes())).collect();
    rdsv3(&db, &files, true);
    let before = dir_listing(&nsrl_dir);
    let db_sha = hex::encode(Sha256::digest(std::fs::read(&db).unwrap()));

    // Queried in place through its indexes.
    let set = KnownSet::open(&db, Kind::Known).unwrap();
    assert_eq!(set.format(), SetFormat::NsrlSqlite);
    assert_eq!(set.name(), "NSRL RDS 2024.03.1 Modern");
    assert_eq!(set.algorithms(), Algorithm::ALL.to_vec());
    for d in &files {
        assert_eq!(hit(&set, d).unwrap().algorithm, Algorithm::Sha256);
        for alg in [Algorithm::Sha1, Algorithm::Md5] {
            // Lower-case input matches the RDS's upper-case hex.
            assert!(set.contains(alg, d.get(alg).unwrap()).unwrap());
        }
    }
    assert_eq!(hit(&set, &absent()), None);
    // Several threads share the set (each lookup borrows a connection).
    std::thread::scope(|s| {
        for t in 0..4 {
            let set = &set;
            let files = &files;
            s.spawn(move || {
                for d in files.iter().skip(t) {
                    assert!(set.lookup(d).unwrap().is_some());
                }
            });
        }
    });
    drop(set);
    // Read-only and immutable: nothing was written beside it, nothing changed.
    assert_eq!(dir_listing(&nsrl_dir), before);
    assert_eq!(
        hex::encode(Sha256::digest(std::fs::read(&db).unwrap())),
        db_sha
    );

    // Imported into a table.
    let out = tmp.path().join("nsrl.trawlknown");
    let report = import(&[&db], &out, "NSRL modern", Kind::Known).unwrap();
    assert_eq!(report.runs, 0);
    let src = &report.meta.sources[0];
    assert_eq!(src.format, "nsrl-rdsv3-sqlite");
    assert_eq!(src.lines, 100); // rows of the FILE view
    assert_eq!(src.sha256, db_sha);
    assert_eq!(src.digests.sha256, 100);
    let set = KnownSet::open(&out, Kind::Known).unwrap();
    assert_eq!(set.name(), "NSRL modern");
    let c = set.counts().unwrap();
    assert_eq!((c.md5, c.sha1, c.sha256), (50, 50, 50));
    for d in &files {
        assert_eq!(hit(&set, d).unwrap().algorithm, Algorithm::Sha256);
    }
    assert_eq!(hit(&set, &absent()), None);
    set.table().unwrap().verify().unwrap();
}

#[test]
fn nsrl_without_index_is_refused_but_importable() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("noindex.db");
    let files: Vec<Digests> = (0..10u32).map(|i| digests_of(&i.to_be_bytes())).collect();
    rdsv3(&db, &files, false);
    let err = KnownSet::open(&db, Kind::Known).unwrap_err();
    match &err {
        KnownError::SqliteNoIndex { column, plan, .. } => {
            assert_eq!(column, "md5");
            assert!(plan.contains("SCAN"), "{plan}");
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("noindex.db") && msg.contains("trawl known import"),
        "{msg}"
    );
    // The import scans it once, which is fine.
    let out = tmp.path().join("t.trawlknown");
    import(&[&db], &out, "n", Kind::Known).unwrap();
    let set = KnownSet::open(&out, Kind::Known).unwrap();
    let md5_only = Digests {
        md5: files[3].md5,
        ..Digests::default()
    };
    assert_eq!(hit(&set, &md5_only).unwrap().algorithm, Algorithm::Md5);
}

#[test]
fn minimal_file_table_and_schema_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // FILE as a plain table with its own indexes.
    let db = tmp.path().join("min.db");
    let c = Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE FILE (sha256 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL, \
           file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL, package_id INTEGER NOT NULL);
         CREATE INDEX f256 ON FILE (sha256); CREATE INDEX f1 ON FILE (sha1); CREATE INDEX f5 ON FILE (md5);",
    )
    .unwrap();
    let d = digests_of(b"minimal");
    c.execute(
        "INSERT INTO FILE VALUES (?1, ?2, ?3, 'x', 1, 1)",
        [
            hex::encode_upper(d.sha256.unwrap()),
            hex::encode_upper(d.sha1.unwrap()),
            hex::encode_upper(d.md5.unwrap()),
        ],
    )
    .unwrap();
    drop(c);
    let set = KnownSet::open(&db, Kind::Notable).unwrap();
    assert_eq!(set.name(), "min");
    assert_eq!(
        hit(&set, &d),
        Some(Hit {
            set: "min".into(),
            kind: Kind::Notable,
            algorithm: Algorithm::Sha256
        })
    );
    assert_eq!(hit(&set, &absent()), None);

    // An SQLite database that is not an RDS.
    let other = tmp.path().join("other.sqlite");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let e = KnownSet::open(&other, Kind::Known).unwrap_err();
    assert!(matches!(e, KnownError::SqliteSchema { .. }), "{e}");
    assert!(e.to_string().contains("no FILE table or view"));
}

#[test]
fn notable_wins_over_known() {
    let tmp = tempfile::tempdir().unwrap();
    let both = digests_of(b"in both sets");
    let known_only = digests_of(b"known only");
    let notable_only = digests_of(b"notable only");
    let known = tmp.path().join("nsrl-ish.txt");
    let notable = tmp.path().join("malware.txt");
    std::fs::write(
        &known,
        format!(
            "{}\n{}\n",
            hex::encode(both.sha256.unwrap()),
            hex::encode(known_only.sha256.unwrap())
        ),
    )
    .unwrap();
    std::fs::write(
        &notable,
        format!(
            "{}\n{}\n",
            hex::encode(both.md5.unwrap()),
            hex::encode(notable_only.md5.unwrap())
        ),
    )
    .unwrap();
    // Known given first on purpose: the order given does not matter.
    let mut sets = KnownSets::new();
    sets.push(KnownSet::open(&known, Kind::Known).unwrap());
    sets.push(KnownSet::open(&notable, Kind::Notable).unwrap());
    let h = sets.lookup(&both).unwrap().unwrap();
    assert_eq!(
        (&*h.set, h.kind, h.algorithm),
        ("malware", Kind::Notable, Algorithm::Md5)
    );
    let all = sets.lookup_all(&both).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[1].kind, &*all[1].set), (Kind::Known, "nsrl-ish"));
    let h = sets.lookup(&known_only).unwrap().unwrap();
    assert_eq!((h.kind, h.algorithm), (Kind::Known, Algorithm::Sha256));
    assert_eq!(
        sets.lookup(&notable_only).unwrap().unwrap().kind,
        Kind::Notable
    );
    assert_eq!(sets.lookup(&absent()).unwrap(), None);

    let sets = KnownSets::open(&[&known], &[&notable]).unwrap();
    assert_eq!(sets.sets().len(), 2);
    assert_eq!(sets.lookup(&both).unwrap().unwrap().kind, Kind::Notable);
}

#[test]
fn tables_merge_reproducibly_and_keep_their_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.md5");
    let b = tmp.path().join("b.sha256");
    let da: Vec<Digests> = (0..3000u32).map(|i| digests_of(&i.to_le_bytes())).collect();
    let db: Vec<Digests> = (2000..6000u32)
        .map(|i| digests_of(&i.to_le_bytes()))
        .collect();
    let lines = |ds: &[Digests], alg: Algorithm| -> String {
        ds.iter()
            .map(|d| format!("{}  f\n", hex::encode(d.get(alg).unwrap())))
            .collect()
    };
    std::fs::write(&a, lines(&da, Algorithm::Md5)).unwrap();
    std::fs::write(&b, lines(&db, Algorithm::Sha256)).unwrap();
    let small = ImportOptions {
        memory: 1, // clamped to 64 KiB: forces sorted runs and a merge
        ..ImportOptions::default()
    };
    let t1 = tmp.path().join("t1.trawlknown");
    let t2 = tmp.path().join("t2.trawlknown");
    let r1 = import_with(&[&a, &b], &t1, "case 42", Kind::Notable, &small).unwrap();
    let r2 = import(&[&a, &b], &t2, "case 42", Kind::Notable).unwrap();
    assert!(r1.runs > 0, "{}", r1.runs);
    assert_eq!(r2.runs, 0);
    // Same sources, name, kind: byte-identical tables however they were sorted.
    assert_eq!(std::fs::read(&t1).unwrap(), std::fs::read(&t2).unwrap());
    assert_eq!(r1.bytes, std::fs::metadata(&t1).unwrap().len());
    // Provenance: each source's SHA-256 as sha256sum would give it.
    for (s, p) in r1.meta.sources.iter().zip([&a, &b]) {
        assert_eq!(
            s.sha256,
            hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
        );
        assert_eq!(s.path, p.display().to_string());
    }

    // A table is itself a source; a merge with overlap dedupes.
    let more = tmp.path().join("more.txt");
    std::fs::write(&more, lines(&da[..10], Algorithm::Sha256)).unwrap();
    let t3 = tmp.path().join("t3.trawlknown");
    import(&[&t1, &more], &t3, "merged", Kind::Notable).unwrap();
    let t = Table::open(&t3).unwrap();
    t.verify().unwrap();
    assert_eq!(t.counts().md5, 3000);
    assert_eq!(t.counts().sha256, 4010);
    assert_eq!(t.meta().sources[0].format, "trawl-table");

    // A notable table used as --known is refused.
    let e = KnownSet::open(&t1, Kind::Known).unwrap_err();
    assert!(matches!(e, KnownError::KindMismatch { .. }), "{e}");
    // A name given on open overrides the recorded one.
    let mut o = OpenOptions::new(Kind::Notable);
    o.name = Some("renamed".into());
    let s = KnownSet::open_with(&t1, &o).unwrap();
    assert_eq!(&*s.lookup(&da[0]).unwrap().unwrap().set, "renamed");

    // The output is never overwritten unless asked.
    let e = import(&[&a], &t1, "x", Kind::Known).unwrap_err();
    assert!(e.to_string().contains("output exists"), "{e}");
    let o = ImportOptions {
        overwrite: true,
        ..ImportOptions::default()
    };
    import_with(&[&a], &t1, "x", Kind::Known, &o).unwrap();
    assert_eq!(Table::open(&t1).unwrap().kind(), Kind::Known);
    // Nor is the output accepted as its own source.
    let e = import_with(&[&t1], &t1, "x", Kind::Known, &o).unwrap_err();
    assert!(e.to_string().contains("own output"), "{e}");
}
