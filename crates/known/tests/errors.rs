//! Malformed lists and corrupt tables: refused with the file and the line
//! or offset, or (when allowed) skipped, counted and recorded.

mod common;

use std::path::{Path, PathBuf};

use common::digests_of;
use trawl_known::{
    Digests, HEADER_SIZE, ImportOptions, Kind, KnownError, KnownSet, OpenOptions, Table, import,
    import_with,
};

const MD5_A: &str = "d41d8cd98f00b204e9800998ecf8427e";
const MD5_B: &str = "0cc175b9c0f1b6a831c399e269772661";

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn open_err(path: &Path) -> KnownError {
    KnownSet::open(path, Kind::Known).unwrap_err()
}

fn malformed_line(e: &KnownError) -> (u64, String) {
    match e {
        KnownError::Malformed { line, reason, .. } => (*line, reason.clone()),
        other => panic!("expected Malformed, got {other}"),
    }
}

#[test]
fn malformed_lines_are_refused_with_their_line_number() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, u64, &str)] = &[
        (
            "d41d8cd98f00b204e9800998ecf8427e  a\nnot a digest\n",
            2,
            "non-hex 'n'",
        ),
        (
            "# header\n\nd41d8cd98f00b204e9800998ecf8427  short\n",
            3,
            "digest of 31 hex digits: not MD5 (32), SHA-1 (40) or SHA-256 (64)",
        ),
        (
            "d41d8cd98f00b204e9800998ecf8427e\nd41d8cd98f00b204e9800998ecf8427e0\n",
            2,
            "33 hex digits",
        ),
        ("SHA512 (x) = 00\n", 1, "unsupported algorithm SHA512"),
        (
            "MD5 (x) = d41d8cd98f00b204e9800998ecf8427e00\n",
            1,
            "MD5: digest of 34 hex digits",
        ),
        (
            "%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n1,d41d8cd98f00b204e9800998ecf8427e\n",
            3,
            "2 comma-separated fields where the header declares 3",
        ),
        (
            "%%%% HASHDEEP-1.0\n%%%% size,md5,filename\nx1,d41d8cd98f00b204e9800998ecf8427e,f\n",
            3,
            "field 1 (size) is not a number",
        ),
        (
            "%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n1,d41d8cd98f00b204e9800998ecf8427g,f\n",
            3,
            "field 2 (md5): non-hex 'g'",
        ),
        (
            "%%%% HASHDEEP-1.0\n%%%% size,crc,filename\n",
            2,
            "unknown column \"crc\"",
        ),
        (
            "%%%% HASHDEEP-1.0\n1,2,3\n",
            2,
            "before a valid %%%% column header",
        ),
        (
            "\"SHA-1\",\"MD5\"\n\"00\",\"d41d8cd98f00b204e9800998ecf8427e\"\n",
            2,
            "SHA-1 field: digest of 2 hex digits",
        ),
        ("\u{0}\u{1}binary\u{ff}", 1, "non-hex byte 0x00"),
    ];
    for (i, (text, line, reason)) in cases.iter().enumerate() {
        let p = write(tmp.path(), &format!("case{i}.txt"), text.as_bytes());
        let e = open_err(&p);
        let (l, r) = malformed_line(&e);
        assert_eq!((l, r.contains(reason)), (*line, true), "case {i}: {e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{}:{line}: ", p.display())),
            "case {i}: {msg}"
        );
    }
}

#[test]
fn overlong_line_is_malformed_not_buffered() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = format!("{MD5_A}\n").into_bytes();
    data.extend(std::iter::repeat_n(b'f', 200_000));
    data.push(b'\n');
    let p = write(tmp.path(), "long.txt", &data);
    let (line, reason) = malformed_line(&open_err(&p));
    assert_eq!(line, 2);
    assert!(reason.contains("line of 200000 bytes"), "{reason}");
}

#[test]
fn malformed_lines_can_be_skipped_counted_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!("{MD5_A}\nnot one\n{MD5_B}\n12345\n");
    let p = write(tmp.path(), "two-bad.txt", text.as_bytes());
    let mut o = OpenOptions::new(Kind::Notable);
    o.import.max_malformed = 2;
    let set = KnownSet::open_with(&p, &o).unwrap();
    let src = &set.table().unwrap().meta().sources[0];
    assert_eq!((src.lines, src.malformed, src.digests.md5), (4, 2, 2));
    assert_eq!(src.malformed_examples[0].line, 2);
    assert!(src.malformed_examples[0].reason.contains("non-hex 'n'"));
    assert_eq!(src.malformed_examples[1].line, 4);
    assert!(src.malformed_examples[1].reason.contains("5 hex digits"));
    let d = Digests::from_hex(Some(MD5_B), None, None).unwrap();
    assert!(set.lookup(&d).unwrap().is_some());

    // One more than allowed: refused, naming the count and the first.
    o.import.max_malformed = 1;
    let e = KnownSet::open_with(&p, &o).unwrap_err();
    match &e {
        KnownError::TooManyMalformed {
            count,
            limit,
            first_line,
            ..
        } => assert_eq!((*count, *limit, *first_line), (2, 1, 2)),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("more than the 1 allowed"), "{e}");

    // The skipped lines travel with an imported table.
    let out = tmp.path().join("t.trawlknown");
    let opts = ImportOptions {
        max_malformed: 10,
        ..ImportOptions::default()
    };
    let r = import_with(&[&p], &out, "t", Kind::Notable, &opts).unwrap();
    assert_eq!(r.meta.sources[0].malformed, 2);
    let t = Table::open(&out).unwrap();
    assert_eq!(t.meta().sources[0].malformed_examples.len(), 2);
}

#[test]
fn lists_without_digests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("empty.txt", ""),
        ("comments.txt", "# nothing\n\n   \n"),
        (
            "header-only.hashdeep",
            "%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n## x\n",
        ),
    ] {
        let p = write(tmp.path(), name, text.as_bytes());
        let e = open_err(&p);
        assert!(matches!(e, KnownError::NoDigests { .. }), "{name}: {e}");
        assert!(e.to_string().contains("no digests found"));
    }
    let e = open_err(&tmp.path().join("missing.txt"));
    assert!(matches!(e, KnownError::Io { .. }), "{e}");
    assert!(e.to_string().contains("missing.txt"));
}

#[test]
fn digests_from_hex() {
    let d = Digests::from_hex(Some(MD5_A), None, Some("")).unwrap();
    assert!(d.md5.is_some() && d.sha1.is_none() && d.sha256.is_none());
    assert!(
        Digests::from_hex(None, Some(MD5_A), None)
            .unwrap_err()
            .contains("SHA-1: digest of 32 hex digits where 40")
    );
    assert!(
        Digests::from_hex(Some("zz"), None, None)
            .unwrap_err()
            .contains("non-hex 'z'")
    );
}

/// A valid table with a few hundred entries per algorithm.
fn table(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for i in 0..300u32 {
        let d = digests_of(&i.to_le_bytes());
        text.push_str(&format!("{}\n", hex::encode(d.md5.unwrap())));
        text.push_str(&format!("{}\n", hex::encode(d.sha1.unwrap())));
        text.push_str(&format!("{}\n", hex::encode(d.sha256.unwrap())));
    }
    let src = write(dir, "src.txt", text.as_bytes());
    let out = dir.join("good.trawlknown");
    import(&[&src], &out, "good", Kind::Known).unwrap();
    out
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Rewrites the header CRC after an edit (so the edit itself is tested).
fn fix_crc(b: &mut [u8]) {
    let meta_off = le64(b, 24) as usize;
    let meta_len = le64(b, 32) as usize;
    let mut c = crc32fast::Hasher::new();
    c.update(&b[..88]);
    if b[8] >= 2 {
        // Version 2: the page-index descriptors too.
        c.update(&b[92..140]);
    }
    c.update(&b[meta_off..meta_off + meta_len]);
    let crc = c.finalize();
    b[88..92].copy_from_slice(&crc.to_le_bytes());
}

fn open_bytes(dir: &Path, name: &str, b: &[u8]) -> Result<Table, KnownError> {
    let p = write(dir, name, b);
    Table::open(&p)
}

#[test]
fn corrupt_tables_are_refused_naming_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(table(tmp.path())).unwrap();
    let t = open_bytes(tmp.path(), "copy", &good).unwrap();
    t.verify().unwrap();
    assert_eq!(t.counts().total(), 900);

    // Truncated anywhere.
    for len in [0, 5, 8, 100, 4095, 4096, good.len() / 2, good.len() - 1] {
        let e = open_bytes(tmp.path(), "trunc", &good[..len]).unwrap_err();
        match e {
            KnownError::BadMagic { .. } => assert!(len < 8),
            KnownError::Truncated { need, have, .. } => {
                assert_eq!(have, len as u64);
                assert!(need > have);
            }
            other => panic!("{len}: {other}"),
        }
    }
    // Trailing bytes.
    let mut b = good.clone();
    b.extend_from_slice(b"junk");
    let e = open_bytes(tmp.path(), "long", &b).unwrap_err();
    assert!(
        e.to_string()
            .contains("4 bytes past the table's recorded end"),
        "{e}"
    );
    // Not a table at all / another version.
    let mut b = good.clone();
    b[0] = b'X';
    assert!(matches!(
        open_bytes(tmp.path(), "m", &b).unwrap_err(),
        KnownError::BadMagic { .. }
    ));
    let mut b = good.clone();
    b[8] = 3;
    let e = open_bytes(tmp.path(), "v", &b).unwrap_err();
    assert!(matches!(e, KnownError::Version { found: 3, .. }), "{e}");
    // A flipped bit in the header or the metadata: the CRC.
    for at in [13usize, 45, 87, 90, good.len() - 3] {
        let mut b = good.clone();
        b[at] ^= 0x10;
        let e = open_bytes(tmp.path(), "crc", &b).unwrap_err();
        assert!(matches!(e, KnownError::HeaderChecksum { .. }), "{at}: {e}");
        assert!(e.to_string().contains("header checksum mismatch"));
    }
    // Reserved header space must stay zero.
    let mut b = good.clone();
    b[1000] = 1;
    let e = open_bytes(tmp.path(), "res", &b).unwrap_err();
    assert!(matches!(e, KnownError::Corrupt { offset: 1000, .. }), "{e}");
    // Counts that do not fit the file (CRC made consistent).
    let mut b = good.clone();
    b[48..56].copy_from_slice(&(u64::MAX / 8).to_le_bytes());
    fix_crc(&mut b);
    let e = open_bytes(tmp.path(), "count", &b).unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
    // Misaligned array offset.
    let mut b = good.clone();
    let off = le64(&b, 56) + 4;
    b[56..64].copy_from_slice(&off.to_le_bytes());
    fix_crc(&mut b);
    let e = open_bytes(tmp.path(), "align", &b).unwrap_err();
    assert!(matches!(e, KnownError::Corrupt { offset: 56, .. }), "{e}");
    // Kind changed in the header only (CRC fixed): disagrees with the metadata.
    let mut b = good.clone();
    b[12] = 1;
    fix_crc(&mut b);
    let e = open_bytes(tmp.path(), "kind", &b).unwrap_err();
    assert!(e.to_string().contains("metadata disagrees"), "{e}");

    // Two SHA-256 entries swapped: the spot check on open sees it.
    let sha_off = le64(&good, 72) as usize;
    let mut b = good.clone();
    let (x, y) = b[sha_off..sha_off + 64].split_at_mut(32);
    x.swap_with_slice(y);
    let e = open_bytes(tmp.path(), "swap", &b).unwrap_err();
    match &e {
        KnownError::Unsorted { index, offset, .. } => {
            assert_eq!((*index, *offset), (0, sha_off as u64))
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .contains("SHA-256 array not in strictly ascending order at entry 0")
    );

    // One flipped bit inside an array between spot checks: open may pass,
    // verify does not.
    let md5_off = le64(&good, 40) as usize;
    let mut b = good.clone();
    b[md5_off + 16 * 150 + 15] ^= 1;
    let t = open_bytes(tmp.path(), "flip", &b).unwrap();
    let e = t.verify().unwrap_err();
    assert!(
        matches!(
            e,
            KnownError::ArrayChecksum { .. } | KnownError::Unsorted { .. }
        ),
        "{e}"
    );
    assert_eq!(HEADER_SIZE, 4096);
}
