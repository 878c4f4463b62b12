//! The aes, rar and sqlite structure scanners: bulk_extractor's expected
//! features on its own test data, synthetic samples at odd offsets (AES
//! schedules from an independent key expansion checked against FIPS-197,
//! SQLite databases made by Python's sqlite3, RAR headers built here),
//! exactly-once output for every shard size, hostile input, and the
//! speed and false positives on random and text-like bytes.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use trawl_core::Feature;
use trawl_core::spec::FeatureOptions;
use trawl_features::FeatureScanner;

mod common;
use common::{corpora, random_bytes, scan_sharded};

type Mem = trawl_evidence::MemEvidence;

fn scanner(names: &[&str]) -> FeatureScanner {
    let opts = FeatureOptions {
        scanners: names.iter().map(|s| s.to_string()).collect(),
        ..FeatureOptions::default()
    };
    FeatureScanner::new(&opts).unwrap()
}

fn scan_bytes(names: &[&str], data: &[u8]) -> Vec<Feature> {
    let ev = Mem::new("mem", data.to_vec(), false);
    scan_sharded(&scanner(names), &ev, 1 << 30, 1 << 20)
}

fn be_data(test: &str, rel: &str) -> Option<Vec<u8>> {
    let p = corpora(test)?.join("bulk-extractor-test-data").join(rel);
    match std::fs::read(&p) {
        Ok(d) => Some(d),
        Err(_) => {
            trawl_fixtures::skip(test, &p.display().to_string());
            None
        }
    }
}

/// Text-like bytes: words, spaces, punctuation and newlines.
fn text_bytes(len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "the ",
        "data ",
        "table ",
        "Rar! ",
        "format ",
        "SQLite ",
        "key, ",
        "schedule.\n",
        "attr ",
        "t",
        "value=42 ",
        "<p>",
    ];
    let r = random_bytes(7, len / 2);
    let mut v = Vec::with_capacity(len + 16);
    let mut i = 0;
    while v.len() < len {
        v.extend_from_slice(WORDS[r[i % r.len()] as usize % WORDS.len()].as_bytes());
        i += 1;
    }
    v.truncate(len);
    v
}

/// The feature lines (not the listing of decoded buffers).
fn lines(fs: &[Feature]) -> Vec<(String, String, String, String)> {
    fs.iter()
        .filter(|f| f.scanner != trawl_features::DECODED_RECORDER)
        .map(|f| {
            (
                f.scanner.clone(),
                f.path.clone(),
                String::from_utf8_lossy(&f.feature).into_owned(),
                String::from_utf8_lossy(&f.context).into_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- AES

/// An AES key expansion written from FIPS-197 section 5.2 (independent of
/// the scanner's), checked against Appendix A below.
fn expand(key: &[u8]) -> Vec<u8> {
    fn sub(b: u8) -> u8 {
        // multiplicative inverse by search, then the affine transform
        fn mul(mut a: u8, mut b: u8) -> u8 {
            let mut p = 0;
            while b != 0 {
                if b & 1 != 0 {
                    p ^= a;
                }
                a = (a << 1) ^ if a & 0x80 != 0 { 0x1b } else { 0 };
                b >>= 1;
            }
            p
        }
        let inv = (1..=255u8).find(|&x| mul(b, x) == 1).unwrap_or(0);
        let mut s = 0x63u8;
        for i in 0..8 {
            let bit = ((inv >> i) ^ (inv >> ((i + 4) % 8)) ^ (inv >> ((i + 5) % 8)))
                ^ (inv >> ((i + 6) % 8))
                ^ (inv >> ((i + 7) % 8));
            s ^= (bit & 1) << i;
        }
        s
    }
    let nk = key.len() / 4;
    let nr = nk + 6;
    let mut w: Vec<[u8; 4]> = key.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect();
    let mut rcon = 1u8;
    for i in nk..4 * (nr + 1) {
        let mut t = w[i - 1];
        if i % nk == 0 {
            t = [sub(t[1]) ^ rcon, sub(t[2]), sub(t[3]), sub(t[0])];
            rcon = (rcon << 1) ^ if rcon & 0x80 != 0 { 0x1b } else { 0 };
        } else if nk > 6 && i % nk == 4 {
            t = t.map(sub);
        }
        let p = w[i - nk];
        w.push([p[0] ^ t[0], p[1] ^ t[1], p[2] ^ t[2], p[3] ^ t[3]]);
    }
    w.concat()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn spaced_hex(k: &[u8]) -> String {
    k.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn aes_expansion_matches_fips197_appendix_a() {
    // FIPS-197 Appendix A.1 and A.3: first derived word and last round key
    let s = expand(&unhex("2b7e151628aed2a6abf7158809cf4f3c"));
    assert_eq!(s.len(), 176);
    assert_eq!(&s[16..20], &unhex("a0fafe17"));
    assert_eq!(&s[160..], &unhex("d014f9a8c9ee2589e13f0cc8b6630ca6"));
    let s = expand(&unhex(
        "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
    ));
    assert_eq!(s.len(), 240);
    assert_eq!(&s[32..36], &unhex("9ba35411"));
    assert_eq!(&s[224..], &unhex("fe4890d1e6188d0b046df344706c631e"));
}

/// Random AES-128 and AES-256 keys, expanded, planted at odd offsets in
/// random data: each found once, with bulk_extractor's feature and context.
#[test]
fn aes_planted_schedules() {
    let keys = random_bytes(99, 32 * 12);
    let mut data = random_bytes(5, 200_000);
    let mut want = Vec::new();
    for (i, k) in keys.chunks(32).enumerate() {
        let klen = if i % 2 == 0 { 16 } else { 32 };
        let key = &k[..klen];
        let s = expand(key);
        let at = 1 + i * 16_001 + i % 7;
        data[at..at + s.len()].copy_from_slice(&s);
        let ctx = if klen == 16 { "AES128" } else { "AES256" };
        want.push((
            "aes_keys".to_string(),
            at.to_string(),
            spaced_hex(key),
            ctx.to_string(),
        ));
    }
    // one at the very end: the whole schedule and nothing more
    let s = expand(&keys[..16]);
    let at = data.len() - s.len();
    data[at..].copy_from_slice(&s);
    want.push((
        "aes_keys".into(),
        at.to_string(),
        spaced_hex(&keys[..16]),
        "AES128".into(),
    ));
    let got = lines(&scan_bytes(&["aes"], &data));
    assert_eq!(got, want);
}

/// bulk_extractor's test_be.cpp (`ram_2pages.bin`, ex3): four keys in
/// `aes_keys.txt`, offsets 496 and 1120 (AES128), 7008 and 7304 (AES256).
#[test]
fn aes_ram_2pages() {
    let Some(data) = be_data("aes_ram_2pages", "src/tests/ram_2pages.bin") else {
        return;
    };
    let got = lines(&scan_bytes(&["aes"], &data));
    let want = [
        (
            "496",
            "a2 6e 0e 4c 06 c4 bb bf 5d 62 8b c7 f8 b3 91 b6",
            "AES128",
        ),
        (
            "1120",
            "dc d2 05 18 c4 16 c0 e2 8e d8 59 9c 86 ed e8 e6",
            "AES128",
        ),
        (
            "7008",
            "09 23 e0 4d 40 44 57 1f 55 bf 43 bc ac 06 11 04 45 63 03 a1 52 c5 4c 16 ba a6 96 e9 a6 18 80 65",
            "AES256",
        ),
        (
            "7304",
            "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f",
            "AES256",
        ),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(p, f, c)| {
            (
                "aes_keys".into(),
                p.to_string(),
                f.to_string(),
                c.to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------- RAR

/// A member's context as bulk_extractor's `RarComponentInfo::to_xml`
/// prints it (all of jpegs.rar's members: method normal, host Windows,
/// version 29, attributes 0x80).
fn jpeg_member(n: u32, flags: u32, unpacked: u32, packed: u32, date: &str, crc: u32) -> String {
    format!(
        "<rar_component><name>jpegs\\{n}.jpg</name><flags>0x{flags:04X}</flags><version>29</version>\
         <compression_method>normal</compression_method><uncompr_size>{unpacked}</uncompr_size>\
         <compr_size>{packed}</compr_size><file_attr>0x80</file_attr><lastmoddate>{date}</lastmoddate>\
         <host_os>Windows</host_os><crc32>0x{crc:08X}</crc32></rar_component>"
    )
}

/// `jpegs.rar`'s `rar.txt` lines. Offsets 20, 4340 and 8708 are those of
/// bulk_extractor's `tests/data_check.txt` (`Data/jpegs.rar-20-RAR-0`,
/// `-4340-RAR-0`, `-8708-RAR-0`: the forensic paths of the decompressed
/// members, whose parent offsets are the member headers); the volume at 0,
/// the fourth member and the field values come from the headers, decoded
/// by hand and with Python's `struct` (no unrar, 7z or bsdtar on this
/// machine), and the 7323-byte first member is `src/tests/1.jpg`'s size.
fn jpegs_rar_lines() -> Vec<(String, String, String, String)> {
    let m = [
        (
            20,
            1,
            0x8020,
            7323,
            4277,
            "2014-07-18T12:27:16Z",
            0xD809_9FFB,
        ),
        (
            4340,
            2,
            0x8020,
            7331,
            4325,
            "2014-07-18T12:27:22Z",
            0x916C_0906,
        ),
        (
            8708,
            3,
            0x9020,
            7509,
            4506,
            "2014-07-18T12:27:28Z",
            0x6202_C9A1,
        ),
        (
            13259,
            4,
            0x8020,
            7599,
            6026,
            "2014-07-18T12:27:34Z",
            0x5FAC_3154,
        ),
    ];
    let mut v = vec![(
        "rar".to_string(),
        "0".to_string(),
        "<volume>".to_string(),
        "<rar_volume><encrypted>false</encrypted></rar_volume>".to_string(),
    )];
    for (pos, n, flags, up, pk, date, crc) in m {
        v.push((
            "rar".into(),
            pos.to_string(),
            format!("jpegs\\{n}.jpg"),
            jpeg_member(n, flags, up, pk, date, crc),
        ));
    }
    v
}

#[test]
fn rar_jpegs_rar() {
    for rel in ["tests/Data/jpegs.rar", "src/tests/jpegs.rar"] {
        let Some(data) = be_data("rar_jpegs_rar", rel) else {
            return;
        };
        assert_eq!(
            lines(&scan_bytes(&["rar"], &data)),
            jpegs_rar_lines(),
            "{rel}"
        );
    }
}

/// `jpegs.rar-encrypted` (`rar -p`): the archive header is valid, the file
/// headers carry flag 0x0004 (encrypted), which bulk_extractor skips, so
/// only the volume. RAR5 (`jpegs.rar5`, `jpegs.rar5-encrypted`): nothing,
/// bulk_extractor's scanner knows only RAR 1.5-4.x headers.
#[test]
fn rar_encrypted_and_rar5() {
    let Some(enc) = be_data("rar_encrypted_and_rar5", "tests/Data/jpegs.rar-encrypted") else {
        return;
    };
    assert_eq!(
        lines(&scan_bytes(&["rar"], &enc)),
        vec![(
            "rar".to_string(),
            "0".to_string(),
            "<volume>".to_string(),
            "<rar_volume><encrypted>false</encrypted></rar_volume>".to_string()
        )]
    );
    for rel in ["tests/Data/jpegs.rar5", "tests/Data/jpegs.rar5-encrypted"] {
        let Some(d) = be_data("rar_encrypted_and_rar5", rel) else {
            return;
        };
        assert!(scan_bytes(&["rar"], &d).is_empty(), "{rel}");
    }
}

/// A RAR 2.9 archive built here: marker, archive header (headers
/// encrypted flag set), one stored member with a UTF-8 name after a NUL,
/// one with a plain name.
fn synthetic_rar() -> Vec<u8> {
    fn crc16(h: &mut [u8]) {
        let mut c = flate2::Crc::new();
        c.update(&h[2..]);
        let v = (c.sum() & 0xffff) as u16;
        h[..2].copy_from_slice(&v.to_le_bytes());
    }
    fn member(name: &[u8], flags: u16, size: u32) -> Vec<u8> {
        let mut h = vec![0u8; 32];
        h[2] = 0x74;
        h[3..5].copy_from_slice(&flags.to_le_bytes());
        h[5..7].copy_from_slice(&((32 + name.len()) as u16).to_le_bytes());
        h[7..11].copy_from_slice(&size.to_le_bytes());
        h[11..15].copy_from_slice(&size.to_le_bytes());
        h[15] = 3;
        h[16..20].copy_from_slice(&0x0102_0304u32.to_le_bytes());
        h[20..24].copy_from_slice(&0x5a21_4c2eu32.to_le_bytes());
        h[24] = 20;
        h[25] = 0x30;
        h[26..28].copy_from_slice(&(name.len() as u16).to_le_bytes());
        h[28..32].copy_from_slice(&0x1a4u32.to_le_bytes());
        h.extend_from_slice(name);
        crc16(&mut h);
        h.extend(std::iter::repeat_n(b'x', size as usize));
        h
    }
    let mut v = b"Rar!\x1a\x07\x00".to_vec();
    let mut ah = vec![0u8, 0, 0x73, 0x80, 0, 13, 0, 0, 0, 0, 0, 0, 0];
    crc16(&mut ah);
    v.extend(ah);
    v.extend(member(
        "caf\u{e9}.txt\0caf\u{e9}.txt".as_bytes(),
        0x8200,
        50,
    ));
    v.extend(member(b"notes/readme.md", 0x8000, 40));
    v
}

fn synthetic_rar_lines(base: usize) -> Vec<(String, String, String, String)> {
    let xml = |name: &str, flags: u16, size: u32| {
        format!(
            "<rar_component><name>{name}</name><flags>0x{flags:04X}</flags><version>20</version>\
             <compression_method>uncompressed</compression_method><uncompr_size>{size}</uncompr_size>\
             <compr_size>{size}</compr_size><file_attr>0x1A4</file_attr>\
             <lastmoddate>2025-01-01T09:33:28Z</lastmoddate><host_os>Unix</host_os>\
             <crc32>0x01020304</crc32></rar_component>"
        )
    };
    let m1 = base + 20;
    let m2 = m1 + 32 + 19 + 50;
    vec![
        (
            "rar".into(),
            base.to_string(),
            "<volume>".into(),
            "<rar_volume><encrypted>true</encrypted></rar_volume>".into(),
        ),
        (
            "rar".into(),
            m1.to_string(),
            "caf\u{e9}.txt".into(),
            xml("caf\u{e9}.txt", 0x8200, 50),
        ),
        (
            "rar".into(),
            m2.to_string(),
            "notes/readme.md".into(),
            xml("notes/readme.md", 0x8000, 40),
        ),
    ]
}

#[test]
fn rar_synthetic_members() {
    let rar = synthetic_rar();
    let mut data = random_bytes(3, 777);
    data.extend_from_slice(&rar);
    data.extend(random_bytes(4, 333));
    assert_eq!(
        lines(&scan_bytes(&["rar"], &data)),
        synthetic_rar_lines(777)
    );
}

// ---------------------------------------------------------------- SQLite

/// A database made by Python's sqlite3 (page size 1024, a table and an
/// index, some rows), with its size and SHA-1 as Python computes them; or
/// `None` when python3 is missing.
fn python_sqlite(tag: &str) -> Option<(Vec<u8>, String)> {
    let dir = std::env::temp_dir().join(format!("trawl-miscstruct-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let db = dir.join("t.db");
    let _ = std::fs::remove_file(&db);
    let script = format!(
        "import sqlite3,hashlib\n\
         c=sqlite3.connect({db:?})\n\
         c.execute('PRAGMA page_size=1024')\n\
         c.execute('CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT, email TEXT)')\n\
         c.execute('CREATE INDEX people_name ON people(name)')\n\
         c.executemany('INSERT INTO people(name,email) VALUES (?,?)', [('user%d' % i, 'user%d@example.com' % i) for i in range(300)])\n\
         c.commit(); c.close()\n\
         d=open({db:?},'rb').read()\n\
         print(hashlib.sha1(d).hexdigest())\n",
        db = db.display().to_string()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .ok()?;
    if !out.status.success() {
        trawl_fixtures::skip("python_sqlite", "python3 sqlite3");
        return None;
    }
    let data = std::fs::read(&db).ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    Some((
        data,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

#[test]
fn sqlite_python_databases() {
    let Some((db, sha)) = python_sqlite("a") else {
        return;
    };
    assert_eq!(&db[..16], b"SQLite format 3\0");
    assert_eq!(u16::from_be_bytes([db[16], db[17]]), 1024);
    let pages = u32::from_be_bytes([db[28], db[29], db[30], db[31]]) as usize;
    assert_eq!(pages * 1024, db.len());
    assert!(
        db.len() < 60 << 10,
        "fits in a scanner's window: {}",
        db.len()
    );
    let ctx = format!(
        "<fileobject><filesize>{}</filesize><hashdigest type='sha1'>{sha}</hashdigest></fileobject>",
        db.len()
    );
    // at odd offsets, twice, in random bytes
    let mut data = random_bytes(11, 4097);
    data.extend_from_slice(&db);
    data.extend(random_bytes(12, 12_345));
    let second = data.len();
    data.extend_from_slice(&db);
    data.extend(random_bytes(13, 999));
    let want = vec![
        (
            "sqlite_carved".to_string(),
            "4097".to_string(),
            "<CACHED>".to_string(),
            ctx.clone(),
        ),
        (
            "sqlite_carved".into(),
            second.to_string(),
            "<CACHED>".into(),
            ctx.clone(),
        ),
    ];
    assert_eq!(lines(&scan_bytes(&["sqlite"], &data)), want);

    // inside a gzip stream: the forensic path N-GZIP-M
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&random_bytes(14, 301)).unwrap();
    gz.write_all(&db).unwrap();
    let gz = gz.finish().unwrap();
    let mut data = random_bytes(15, 1001);
    data.extend_from_slice(&gz);
    data.extend(random_bytes(16, 100));
    assert_eq!(
        lines(&scan_bytes(&["sqlite"], &data)),
        vec![(
            "sqlite_carved".to_string(),
            "1001-GZIP-301".to_string(),
            "<CACHED>".to_string(),
            ctx
        )]
    );
}

/// Hand-built headers: bad page sizes and empty databases are not
/// reported; page size 1 means 65536 (clamped to the 60 KiB a scanner may
/// read).
#[test]
fn sqlite_hand_built_headers() {
    let head = |page: u16, pages: u32| {
        let mut h = b"SQLite format 3\0".to_vec();
        h.extend_from_slice(&page.to_be_bytes());
        h.resize(28, 0);
        h.extend_from_slice(&pages.to_be_bytes());
        h.resize(100, 0);
        h
    };
    let mut data = vec![b'.'; 10];
    for (page, pages) in [(4096u16, 0u32), (1000, 3), (256, 2), (1, 65536)] {
        data.extend(head(page, pages));
        data.extend([0u8; 513]);
    }
    assert!(scan_bytes(&["sqlite"], &data).is_empty());
    let at = data.len();
    data.extend(head(1, 2));
    data.resize(at + 200_000, 0x20);
    let got = scan_bytes(&["sqlite"], &data);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, at.to_string());
    assert!(
        String::from_utf8_lossy(&got[0].context)
            .starts_with("<fileobject><filesize>61440</filesize>"),
        "{:?}",
        String::from_utf8_lossy(&got[0].context)
    );
}

// ---------------------------------------------------------------- all three

/// A ~300 KiB image with AES schedules, RAR archives and SQLite databases
/// at odd offsets, some straddling 4 KiB and 64 KiB boundaries.
fn mixed_image() -> (Vec<u8>, usize) {
    let mut data = random_bytes(21, 300_000);
    let mut n = 0;
    let keys = random_bytes(22, 32 * 8);
    for (i, k) in keys.chunks(32).enumerate() {
        let s = expand(if i % 2 == 0 { &k[..16] } else { k });
        let at = 4096 * (i + 1) - 50 + i;
        data[at..at + s.len()].copy_from_slice(&s);
        n += 1;
    }
    let rar = synthetic_rar();
    for at in [65536 - 60, 131_071, 200_001] {
        data[at..at + rar.len()].copy_from_slice(&rar);
        n += 3;
    }
    let mut db = b"SQLite format 3\0\x02\x00".to_vec();
    db.resize(28, 1);
    db.extend_from_slice(&3u32.to_be_bytes());
    db.resize(1536, 0x33);
    for at in [65536 * 3 - 7, 250_003] {
        data[at..at + db.len()].copy_from_slice(&db);
        n += 1;
    }
    (data, n)
}

#[test]
fn shard_invariance_exactly_once() {
    let (data, n) = mixed_image();
    let ev = Mem::new("mem", data, false);
    let sc = scanner(&["aes", "rar", "sqlite"]);
    let whole = scan_sharded(&sc, &ev, 1 << 30, 1 << 20);
    assert_eq!(whole.len(), n, "{:#?}", lines(&whole));
    let mut keys: Vec<_> = whole
        .iter()
        .map(|f| (f.scanner.clone(), f.path.clone()))
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), n, "exactly once");
    for (shard, margin) in [
        (4 << 10, 0),
        (4 << 10, 4 << 10),
        (64 << 10, 1 << 20),
        (64 << 10, 3000),
        (1 << 30, 0),
    ] {
        let t = scan_sharded(&sc, &ev, shard, margin);
        assert!(
            t == whole,
            "shard {shard} margin {margin}: {} vs {}",
            t.len(),
            whole.len()
        );
    }
}

#[test]
fn hostile_input_no_panic() {
    let sc = scanner(&["aes", "rar", "sqlite"]);
    let (img, _) = mixed_image();
    let rar = synthetic_rar();
    let mut samples: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0x74],
        b"Rar!\x1a\x07\x00".to_vec(),
        b"SQLite format 3\0".to_vec(),
    ];
    // every truncation of the RAR and of a schedule
    for i in 0..rar.len() {
        samples.push(rar[..i].to_vec());
    }
    let s = expand(&random_bytes(1, 32));
    for i in 0..s.len() {
        samples.push(s[..i].to_vec());
    }
    // mutations: every byte of the RAR headers set to 0x00, 0xFF, and a bit flipped
    for i in 0..rar.len().min(140) {
        for v in [0u8, 0xFF, rar[i] ^ 0x40] {
            let mut m = rar.clone();
            m[i] = v;
            samples.push(m);
        }
    }
    for seed in 0..20u64 {
        let mut m = img.clone();
        let r = random_bytes(seed + 100, 2000);
        for c in r.chunks(4) {
            let at = u32::from_le_bytes([c[0], c[1], c[2], 0]) as usize % m.len();
            m[at] = c[3];
        }
        samples.push(m);
    }
    for d in &samples {
        let out = sc.scan_buffer(d, &AtomicBool::new(false)).unwrap();
        for f in &out.features {
            assert!(f.offset <= d.len() as u64);
        }
    }
}

/// Throughput of each scanner alone on 256 MiB of random bytes and on
/// 64 MiB of text-like bytes, and their false positives on the random
/// bytes (which must be none). Timings are printed, never asserted; run
/// with `--release --nocapture` to read them.
#[test]
fn speed_and_false_positives() {
    let big = cfg!(not(debug_assertions));
    let (rlen, tlen) = if big {
        (32 << 20, 64 << 20)
    } else {
        (4 << 20, 4 << 20)
    };
    let parts = if big { 8 } else { 2 };
    let random: Vec<Vec<u8>> = (0..parts)
        .map(|i| random_bytes(0x9e37_79b9 + i as u64, rlen))
        .collect();
    let text = text_bytes(tlen);
    for name in ["aes", "rar", "sqlite"] {
        let sc = scanner(&[name]);
        let t = Instant::now();
        let mut fp = 0;
        for d in &random {
            fp += sc
                .scan_buffer(d, &AtomicBool::new(false))
                .unwrap()
                .features
                .len();
        }
        let rs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let tf = sc
            .scan_buffer(&text, &AtomicBool::new(false))
            .unwrap()
            .features
            .len();
        let ts = t.elapsed().as_secs_f64();
        let mib = (rlen * parts) as f64 / (1 << 20) as f64;
        println!(
            "{name}: random {mib:.0} MiB {:.0} MB/s, {fp} false positives; text {} MiB {:.0} MB/s, {tf} features",
            (rlen * parts) as f64 / rs / 1e6,
            tlen >> 20,
            tlen as f64 / ts / 1e6
        );
        assert_eq!(fp, 0, "{name} false positives on random bytes");
    }
}
