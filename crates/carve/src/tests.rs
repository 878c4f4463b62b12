//! Unit tests of the validators: every family on generated samples, the
//! exact end found with trailing noise, truncation, hostile structures
//! (loops, huge sizes, bombs), and a property test feeding random,
//! truncated and bit-flipped bytes to every validator.

use super::formats::{self, Cx, Scratch, Verdict};
use super::kinds::{self, Fam, Kind};
use super::src::Src;
use proptest::prelude::*;
use std::time::{Duration, Instant};
use trawl_fixtures::art::Artifact;
use trawl_fixtures::formats::{archive, exec, images, media, ole, pdf, sqlite, zip};
use trawl_fixtures::util::Rng;

type Mem = trawl_evidence::MemEvidence;

/// Runs `fam`'s validator on `img` at `at`, with the buffer covering only
/// the first `buffered` bytes (the rest read through the evidence).
fn run_at(fam: Fam, img: &[u8], at: u64, buffered: usize, max: u64) -> Verdict {
    let ev = Mem::new("mem", img.to_vec(), false);
    let b = buffered.min(img.len());
    let src = Src::new(&ev, 0, &img[..b]);
    let mut scratch = Scratch::default();
    let mut cx = Cx {
        src: &src,
        max,
        scratch: &mut scratch,
    };
    formats::validate(fam, &mut cx, at).expect("no evidence error")
}

fn run(fam: Fam, img: &[u8]) -> Verdict {
    run_at(fam, img, 0, img.len(), 1 << 30)
}

fn text(rng: &mut Rng, n: usize) -> Artifact {
    Artifact {
        bytes: trawl_fixtures::features::paragraph(rng, n).into_bytes(),
        ..Default::default()
    }
}

/// One sample per family variant: (family, bytes, expected type).
fn samples(seed: u64) -> Vec<(Fam, Vec<u8>, Kind)> {
    let mut r = Rng::new(seed);
    let mut v = Vec::new();
    let mut spec = images::small_spec(&mut r);
    spec.restart = 3;
    v.push((Fam::Jpeg, images::jpeg(&mut r, &spec), kinds::JPG));
    let spec = images::small_spec(&mut r);
    v.push((Fam::Jpeg, images::jpeg(&mut r, &spec), kinds::JPG));
    v.push((
        Fam::Png,
        images::png(&mut r, 40, 30, None, false).bytes,
        kinds::PNG,
    ));
    v.push((Fam::Gif, images::gif(&mut r, 37, 21), kinds::GIF));
    v.push((Fam::Bmp, images::bmp(&mut r, 13, 7), kinds::BMP));
    v.push((
        Fam::Tiff,
        images::tiff(&mut r, 20, 17, false, true, None).bytes,
        kinds::TIF,
    ));
    v.push((
        Fam::Tiff,
        images::tiff(&mut r, 9, 33, true, false, None).bytes,
        kinds::TIF,
    ));
    let t = text(&mut r, 300);
    for incremental in [false, true] {
        let p = pdf::pdf(
            &mut r,
            &pdf::PdfSpec {
                text: Some(&t),
                image: None,
                compress_filler: false,
                incremental,
            },
        );
        v.push((Fam::Pdf, p.bytes, kinds::PDF));
    }
    let tm = zip::dos_time(&mut r);
    let z = zip::zip(
        &[
            zip::Member::text("a.txt", "hello hello hello hello", true),
            zip::Member::stored("b.bin", text(&mut r, 100)),
        ],
        b"comment",
        tm,
    );
    v.push((Fam::Zip, z.bytes, kinds::ZIP));
    v.push((
        Fam::Zip,
        zip::ooxml(&mut r, zip::Ooxml::Docx, Some(&t), None, false).bytes,
        kinds::DOCX,
    ));
    v.push((
        Fam::Zip,
        zip::ooxml(&mut r, zip::Ooxml::Xlsx, Some(&t), None, true).bytes,
        kinds::XLSX,
    ));
    v.push((
        Fam::Zip,
        zip::ooxml(&mut r, zip::Ooxml::Pptx, None, None, false).bytes,
        kinds::PPTX,
    ));
    v.push((
        Fam::Zip,
        zip::odt(&mut r, Some(&t), None, false).bytes,
        kinds::ODT,
    ));
    v.push((
        Fam::Rar,
        archive::rar4(&mut r, "x.txt", &t).bytes,
        kinds::RAR,
    ));
    v.push((
        Fam::Rar,
        archive::rar5(&mut r, "x.txt", &t).bytes,
        kinds::RAR,
    ));
    v.push((
        Fam::SevenZ,
        archive::sevenz(&mut r, "x.txt", &t).bytes,
        kinds::SEVENZ,
    ));
    v.push((
        Fam::Gzip,
        archive::gz(&mut r, &t, None, "x.txt").bytes,
        kinds::GZ,
    ));
    let rows = vec![vec![(None, "alice".to_string()), (None, "bob".to_string())]];
    v.push((
        Fam::Sqlite,
        sqlite::sqlite(&mut r, &rows, 1).bytes,
        kinds::SQLITE,
    ));
    v.push((
        Fam::Pe,
        exec::pe(&mut r, false, false, None).bytes,
        kinds::EXE,
    ));
    v.push((
        Fam::Pe,
        exec::pe(&mut r, true, true, None).bytes,
        kinds::DLL,
    ));
    v.push((
        Fam::Elf,
        exec::elf(&mut r, true, false, None).bytes,
        kinds::ELF,
    ));
    v.push((
        Fam::Elf,
        exec::elf(&mut r, false, true, None).bytes,
        kinds::ELF_SO,
    ));
    v.push((Fam::Riff, media::wav(&mut r, None).bytes, kinds::WAV));
    v.push((Fam::Riff, media::avi(&mut r, &[], 16, 8).bytes, kinds::AVI));
    v.push((
        Fam::Isobmff,
        media::isobmff(&mut r, false).bytes,
        kinds::MP4,
    ));
    v.push((Fam::Isobmff, media::isobmff(&mut r, true).bytes, kinds::MOV));
    v.push((Fam::Evtx, media::evtx(&mut r, 2, &[]).bytes, kinds::EVTX));
    let u = Artifact {
        bytes: trawl_fixtures::util::utf16le("some words in a document"),
        ..Default::default()
    };
    v.push((Fam::Ole, ole::doc(&mut r, &u).bytes, kinds::DOC));
    v.push((
        Fam::Ole,
        ole::xls(&mut r, &[(None, "cell".to_string(), false)]).bytes,
        kinds::XLS,
    ));
    v.push((
        Fam::Ole,
        ole::msg(&mut r, "a@b.example", "c@d.example", &u).bytes,
        kinds::MSG,
    ));
    let body = trawl_fixtures::features::paragraph(&mut r, 2000);
    v.push((
        Fam::Html,
        format!("<!DOCTYPE html>\r\n<HTML lang=en><head><title>t</title></head>\r\n<body><p>{body}</p></body></Html >\r\n").into_bytes(),
        kinds::HTML,
    ));
    v
}

/// Noise that holds no signature.
fn noise(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut b = rng.noise(n);
    for x in &mut b {
        if *x == b'P' || *x == 0xFF || *x == b'%' || *x == 0x1F || *x == b'R' {
            *x = b'.';
        }
    }
    b
}

#[test]
fn every_sample_parses_to_its_exact_end() {
    let mut rng = Rng::new(7);
    for (fam, bytes, kind) in samples(1) {
        let mut img = noise(&mut rng, 300);
        let at = img.len() as u64;
        img.extend_from_slice(&bytes);
        img.extend(noise(&mut rng, 5000));
        for buffered in [img.len(), at as usize + 10, 0] {
            match run_at(fam, &img, at, buffered, 1 << 30) {
                Verdict::Valid(f) => {
                    assert_eq!(f.len, bytes.len() as u64, "{fam:?} {kind:?}: length");
                    assert_eq!(f.kind, kind, "{fam:?}: type");
                }
                other => panic!("{fam:?} {kind:?} (buffered {buffered}): {other:?}"),
            }
        }
    }
}

#[test]
fn truncated_samples_are_never_valid() {
    for (fam, bytes, kind) in samples(2) {
        let n = bytes.len();
        let cuts: Vec<usize> = [1, 2, 7, 16, 33, 100, n / 3, n / 2, n - 9, n - 2, n - 1]
            .into_iter()
            .filter(|&c| c < n)
            .collect();
        for cut in cuts {
            // A PDF or HTML document without its final end of line is whole.
            if matches!(fam, Fam::Pdf | Fam::Html)
                && bytes[cut..].iter().all(|c| matches!(c, b'\r' | b'\n'))
            {
                continue;
            }
            let v = run(fam, &bytes[..cut]);
            assert!(
                !matches!(v, Verdict::Valid(_)),
                "{fam:?} {kind:?} cut at {cut} of {n}: {v:?}"
            );
            if let Verdict::Broken(f) = &v {
                assert!(
                    f.len <= cut as u64,
                    "{fam:?} cut at {cut}: length {}",
                    f.len
                );
            }
        }
    }
}

#[test]
fn larger_than_max_size_is_not_carved_as_valid() {
    for (fam, bytes, kind) in samples(3) {
        let max = bytes.len() as u64 - 1;
        let v = run_at(fam, &bytes, 0, bytes.len(), max);
        if let Verdict::Valid(f) = &v {
            // A PDF without its final end of line is still whole.
            assert!(
                matches!(fam, Fam::Pdf | Fam::Html) && f.len <= max,
                "{fam:?} {kind:?}: valid with length {} and max {max}",
                f.len
            );
        }
    }
}

#[test]
fn signature_followed_by_garbage_is_rejected() {
    let mut rng = Rng::new(11);
    for f in kinds::FAMILIES {
        for (sig, off) in f.signatures() {
            for _ in 0..50 {
                let mut b = rng.noise(4096);
                b[usize::from(*off)..usize::from(*off) + sig.len()].copy_from_slice(sig);
                let v = run(f, &b);
                assert!(
                    !matches!(v, Verdict::Valid(_)),
                    "{f:?}: random bytes valid: {v:?}"
                );
            }
        }
    }
}

#[test]
fn fragmented_jpeg_is_not_valid_even_with_an_eoi() {
    let mut r = Rng::new(5);
    let mut spec = images::small_spec(&mut r);
    spec.width = 160;
    spec.height = 120;
    spec.restart = 0;
    let j = images::jpeg(&mut r, &spec);
    // Text spliced into the scan data (DFRWS 3d), a sector starting with
    // ffd9 spliced in (3j), and the tail cut off but an EOI appended.
    let mid = j.len() / 2;
    let mut a = j[..mid].to_vec();
    a.extend_from_slice(&b"The quick brown fox jumps over the lazy dog. ".repeat(20));
    a.extend_from_slice(&j[mid..]);
    let mut b = j[..mid].to_vec();
    let mut sector = vec![0xFF, 0xD9];
    sector.extend(r.noise(510));
    b.extend_from_slice(&sector);
    b.extend_from_slice(&j[mid..]);
    let mut c = j[..mid].to_vec();
    c.extend_from_slice(&[0xFF, 0xD9]);
    for (what, img) in [("text spliced", a), ("ffd9 sector spliced", b), ("cut", c)] {
        let v = run(Fam::Jpeg, &img);
        assert!(matches!(v, Verdict::Broken(_)), "{what}: {v:?}");
    }
    assert!(matches!(run(Fam::Jpeg, &j), Verdict::Valid(_)));
}

#[test]
fn intertwined_or_binary_html_is_not_valid() {
    let mut r = Rng::new(12);
    let a = format!(
        "<html>\n<body>{}",
        trawl_fixtures::features::paragraph(&mut r, 900)
    );
    let b = format!(
        "<html><body>{}</body></html>\n",
        trawl_fixtures::features::paragraph(&mut r, 900)
    );
    let tail = "</body></html>\n";
    let two = format!("{a}{b}{tail}").into_bytes();
    assert!(matches!(run(Fam::Html, &two), Verdict::Broken(_)));
    let mut bin = a.to_string().into_bytes();
    bin.extend_from_slice(&[0, 1, 2, 3, 0xFF, 0xD8]);
    bin.extend_from_slice(tail.as_bytes());
    assert!(matches!(run(Fam::Html, &bin), Verdict::Broken(_)));
    let ok = format!("{a}{tail}").into_bytes();
    assert_eq!(run(Fam::Html, &ok).len(), Some(ok.len() as u64));
}

#[test]
fn png_with_a_bad_crc_is_broken() {
    let mut r = Rng::new(9);
    let p = images::png(&mut r, 30, 30, None, true).bytes;
    match run(Fam::Png, &p) {
        Verdict::Broken(f) => {
            assert_eq!(f.len, p.len() as u64);
            assert!(f.note.contains("CRC"), "{}", f.note);
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn tiff_ifd_loop_terminates() {
    // Two IFDs pointing at each other, each with a strip.
    let mut t = b"II*\0\x08\0\0\0".to_vec();
    let ifd = |next: u32| {
        let mut v = Vec::new();
        v.extend_from_slice(&4u16.to_le_bytes());
        for (tag, ty, val) in [
            (256u16, 4u16, 8u32),
            (257, 4, 8),
            (273, 4, 100),
            (279, 4, 64),
        ] {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&ty.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
            v.extend_from_slice(&val.to_le_bytes());
        }
        v.extend_from_slice(&next.to_le_bytes());
        v
    };
    t.extend(ifd(8 + 54));
    t.extend(ifd(8));
    t.resize(164, 0x55);
    let start = Instant::now();
    let v = run(Fam::Tiff, &t);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(v.len(), Some(164), "{v:?}");
}

#[test]
fn ole_with_looping_directory_chain_is_bounded() {
    let mut r = Rng::new(3);
    let u = Artifact {
        bytes: trawl_fixtures::util::utf16le("x"),
        ..Default::default()
    };
    let mut d = ole::doc(&mut r, &u).bytes;
    // Point the FAT entry of the directory's first sector at itself.
    let dir = u32::from_le_bytes(d[48..52].try_into().unwrap()) as usize;
    let fat0 = u32::from_le_bytes(d[76..80].try_into().unwrap()) as usize;
    let at = 512 + fat0 * 512 + dir * 4;
    d[at..at + 4].copy_from_slice(&(dir as u32).to_le_bytes());
    let start = Instant::now();
    let v = run(Fam::Ole, &d);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(!matches!(v, Verdict::Valid(_)), "{v:?}");
}

#[test]
fn zip_whose_directory_claims_a_huge_size_is_not_valid() {
    let mut r = Rng::new(4);
    let tm = zip::dos_time(&mut r);
    let mut z = zip::zip(&[zip::Member::text("a", "abc", false)], b"", tm).bytes;
    let n = z.len();
    // EOCD: central directory size field.
    z[n - 22 + 12..n - 22 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(!matches!(run(Fam::Zip, &z), Verdict::Valid(_)));
    // A member claiming 4 GiB of data.
    let mut z = zip::zip(&[zip::Member::text("a", "abc", false)], b"", tm).bytes;
    z[18..22].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    assert!(!matches!(run(Fam::Zip, &z), Verdict::Valid(_)));
}

#[test]
fn members_of_a_zip_are_not_carved_as_archives() {
    let mut r = Rng::new(6);
    let tm = zip::dos_time(&mut r);
    let z = zip::zip(
        &[
            zip::Member::text("a.txt", "first member", false),
            zip::Member::text("b.txt", "second member", false),
        ],
        b"",
        tm,
    )
    .bytes;
    let second = 30 + 5 + 12;
    assert_eq!(&z[second..second + 4], b"PK\x03\x04");
    let v = run(Fam::Zip, &z);
    assert!(matches!(v, Verdict::Valid(_)), "{v:?}");
    assert!(matches!(
        run_at(Fam::Zip, &z, second as u64, z.len(), 1 << 30),
        Verdict::Reject(_)
    ));
}

#[test]
fn gzip_bomb_stops_at_the_inflate_cap() {
    // 64 MiB of zeros deflate to about 64 KiB.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut e, &vec![0u8; 64 << 20]).unwrap();
    let g = e.finish().unwrap();
    let ev = Mem::new("mem", g.clone(), false);
    let src = Src::new(&ev, 0, &g);
    let mut scratch = Scratch::default();
    let mut cx = Cx {
        src: &src,
        max: 1 << 30,
        scratch: &mut scratch,
    };
    let v = formats::gzip::validate_capped(&mut cx, 0, 1 << 20).unwrap();
    assert!(
        matches!(v, Verdict::Reject(r) if r.contains("inflate limit")),
        "{v:?}"
    );
    let v = formats::validate(Fam::Gzip, &mut cx, 0).unwrap();
    assert_eq!(v.len(), Some(g.len() as u64));
}

#[test]
fn pdf_end_follows_updates_and_skips_embedded_eof() {
    let mut r = Rng::new(8);
    let p = pdf::pdf(
        &mut r,
        &pdf::PdfSpec {
            text: None,
            image: None,
            compress_filler: true,
            incremental: true,
        },
    )
    .bytes;
    assert!(p.ends_with(b"%%EOF\n"));
    // A stray %%EOF (not ending a document of ours) before the real one is
    // skipped: the startxref before it does not resolve. Written over the
    // title string, keeping every offset.
    let mut q = p.clone();
    let fake = b"startxref 99999 %%EOF";
    let at = memchr::memmem::find(&q, b"/Title (").unwrap() + 8;
    q[at..at + fake.len()].copy_from_slice(fake);
    let v = run(Fam::Pdf, &q);
    assert!(
        matches!(&v, Verdict::Valid(f) if f.len == q.len() as u64),
        "{v:?}"
    );
    // No %%EOF at all: nothing carved.
    let no = pdf::pdf_no_eof(&mut r);
    assert!(matches!(run(Fam::Pdf, &no), Verdict::Reject(_)));
}

#[test]
fn config_parses_the_stock_files_and_escapes() {
    use super::config::{Mode, decode, parse};
    assert_eq!(
        decode("\\x4F\\123\\I\\sCCI", b'?'),
        b"OSI CCI".iter().map(|&c| Some(c)).collect::<Vec<_>>()
    );
    assert_eq!(decode("a?\\x3f", b'?'), vec![Some(b'a'), None, Some(b'?')]);
    let c = parse(
        "# comment\nwildcard *\njpg y 5242880 \\xff\\xd8\\xff*** \\xff\\xd9 REVERSE\nhtm n 50000 <html </html>\nNONE y 1000 FOREMOST\ndoc y 10000 \\xd0\\xcf \\xd0\\xcf NEXT\n",
    )
    .unwrap();
    assert_eq!(c.len(), 4);
    assert_eq!(c[0].header.len(), 6);
    assert_eq!(c[0].header[3], None);
    assert_eq!(c[0].mode, Mode::Reverse);
    assert!(!c[1].case_sensitive);
    assert_eq!(c[2].type_name(), "none");
    assert!(c[2].footer.is_none());
    assert_eq!(c[3].mode, Mode::Next);
    assert!(
        parse("jpg y notanumber \\xff")
            .unwrap_err()
            .contains("line 1")
    );
    assert!(parse("jpg q 100 \\xff").is_err());
    assert!(parse("jpg y 100 ???").is_err());
    // The stock configurations with every line enabled.
    for path in ["/etc/scalpel/scalpel.conf", "/etc/foremost.conf"] {
        let Ok(text) = std::fs::read_to_string(path) else {
            println!("{path}: not installed, skipped");
            continue;
        };
        let enabled: String = text
            .lines()
            .map(|l| {
                let t = l.trim_start_matches(['#', ' ', '\t']);
                let f: Vec<&str> = t.split_whitespace().collect();
                if f.len() >= 4
                    && matches!(f[1], "y" | "n" | "Y" | "N")
                    && f[2].parse::<u64>().is_ok()
                {
                    format!("{t}\n")
                } else {
                    format!("#{l}\n")
                }
            })
            .collect();
        let c = parse(&enabled).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(c.len() > 20, "{path}: only {} types", c.len());
    }
}

fn all_families_bytes() -> Vec<(Fam, Vec<u8>)> {
    let mut v: Vec<(Fam, Vec<u8>)> = samples(21).into_iter().map(|(f, b, _)| (f, b)).collect();
    for f in kinds::FAMILIES {
        for (sig, off) in f.signatures() {
            let mut b = vec![0u8; usize::from(*off)];
            b.extend_from_slice(sig);
            v.push((f, b));
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Random bytes after a signature, truncations and bit flips of real
    /// samples: no panic, bounded time, and a carving never longer than
    /// the image.
    #[test]
    fn hostile_bytes_never_panic(
        which in 0usize..64,
        tail in proptest::collection::vec(any::<u8>(), 0..3000),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
    ) {
        let all = all_families_bytes();
        let (fam, base) = &all[which % all.len()];
        let mut img = base.clone();
        img.extend_from_slice(&tail);
        for (at, x) in &flips {
            let i = at % img.len();
            img[i] ^= x | 1;
        }
        let keep = 1 + cut % img.len();
        img.truncate(keep);
        let t = Instant::now();
        let v = run_at(*fam, &img, 0, img.len() / 2, 1 << 24);
        prop_assert!(t.elapsed() < Duration::from_secs(2), "{fam:?} took {:?}", t.elapsed());
        if let Some(n) = v.len() {
            prop_assert!(n <= img.len() as u64);
        }
    }
}

#[test]
fn output_type_table_accepts_what_the_carver_names_and_nothing_path_like() {
    use super::config::parse;
    use super::{is_output_extension, is_output_type};
    for f in kinds::FAMILIES {
        for k in f.kinds() {
            assert!(is_output_type(k.name), "{}", k.name);
            assert!(is_output_extension(k.ext), "{}", k.ext);
        }
    }
    // Custom types: the names the carver derives from hostile extensions.
    let c =
        parse("../../etc y 100 \\xff\nA/B.c y 100 \\xfe\nNONE y 100 \\xfd\nx\\x00y y 100 \\xfc\n")
            .unwrap();
    for t in &c {
        assert!(is_output_type(&t.type_name()), "{}", t.type_name());
        assert!(is_output_extension(&t.extension()), "{}", t.extension());
    }
    assert_eq!(c[0].type_name(), "______etc");
    assert_eq!(c[1].extension(), "A_B_c");
    for bad in [
        "",
        ".",
        "..",
        "../x",
        "/tmp/x",
        "a/b",
        "a\\b",
        "a\0b",
        "jpg\n",
        "a.b",
        "Jpg",
        &"x".repeat(33),
    ] {
        assert!(!is_output_type(bad), "type {bad:?}");
    }
    for bad in ["", ".", "..", "a/b", "/x", "a\0", "j.pg", &"x".repeat(33)] {
        assert!(!is_output_extension(bad), "extension {bad:?}");
    }
}
