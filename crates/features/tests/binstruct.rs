//! The binary-structure scanners `winpe`, `elf`, `winprefetch` and `utmp`:
//! bulk_extractor's expected features on its own test data, real ELF
//! binaries of this machine cross-checked with `readelf`, a PE image built
//! here, identical exactly-once output for every shard size, hostile input,
//! false positives and throughput on random and text-like bytes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use trawl_core::Feature;
use trawl_core::spec::FeatureOptions;
use trawl_features::{FeatureScanner, STAT_PREFIX};

mod common;
use common::{be_test_data as corpus, random_bytes, scan_sharded};

type Mem = trawl_evidence::MemEvidence;

const MINE: [&str; 4] = ["winpe", "elf", "winprefetch", "utmp"];

fn scanner(names: &[&str]) -> FeatureScanner {
    let o = FeatureOptions {
        scanners: vec![names.join(",")],
        ..FeatureOptions::default()
    };
    FeatureScanner::new(&o).unwrap()
}

/// (recorder, forensic path, feature, context) of every feature.
type Line = (String, String, Vec<u8>, Vec<u8>);

fn lines(fs: &[Feature]) -> Vec<Line> {
    fs.iter()
        .map(|f| {
            (
                f.scanner.clone(),
                f.path.clone(),
                f.feature.clone(),
                f.context.clone(),
            )
        })
        .collect()
}

fn scan_file(sc: &FeatureScanner, data: &[u8]) -> Vec<Line> {
    lines(
        &sc.scan_buffer(data, &AtomicBool::new(false))
            .unwrap()
            .features,
    )
}

fn sha1_4k(d: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(&d[..d.len().min(4096)])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Text-like bytes: words, digits, punctuation, newlines, a few of the
/// scanners' magic strings in prose.
fn text_bytes(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "PE",
        "ELF",
        "MZ",
        "SCCA",
        "file",
        "header",
        "section",
        "Windows",
        "Linux",
        "utmp",
        "login",
        "2024",
        "0x3c",
        "load",
        "import",
        "KERNEL32.dll",
        "tty7",
        "root",
        "data",
        "of",
        "and",
        "in",
        "executable",
        "binary",
        "offset",
        "{}",
        "\"key\":",
    ];
    let r = random_bytes(seed, len / 3 + 16);
    let mut v = Vec::with_capacity(len + 32);
    let mut i = 0;
    while v.len() < len {
        let k = r[i % r.len()] as usize;
        v.extend_from_slice(WORDS[k % WORDS.len()].as_bytes());
        v.push(match k % 17 {
            0 => b'\n',
            1 => b',',
            2 => b'.',
            _ => b' ',
        });
        i += 1;
    }
    v.truncate(len);
    v
}

// ---------------------------------------------------------------- winprefetch

#[test]
fn winprefetch_against_bulk_extractor() {
    let Some(c) = corpus("winprefetch_against_bulk_extractor") else {
        return;
    };
    let sc = scanner(&["winprefetch"]);

    // src/test_be.cpp, TEST_CASE("scan_winprefetch"): requireFeature(
    // "3584\tRUNDLL32.EXE") on src/tests/test_winprefetch.raw
    let raw = std::fs::read(c.join("src/tests/test_winprefetch.raw")).unwrap();
    let got = scan_file(&sc, &raw);
    println!("test_winprefetch.raw: {} records", got.len());
    for l in &got {
        println!("  {}\t{}\t{}", l.1, s(&l.2), s(&l.3));
    }
    let hit = got
        .iter()
        .find(|l| l.1 == "3584")
        .expect("3584 RUNDLL32.EXE");
    assert_eq!(hit.0, "winprefetch");
    assert_eq!(hit.2, b"RUNDLL32.EXE");
    // the XP record's shape (scan_winprefetch.cpp to_xml)
    let ctx = s(&hit.3);
    assert!(
        ctx.starts_with("<prefetch><os>Windows XP</os><filename>RUNDLL32.EXE</filename><header_size>152</header_size><atime>"),
        "{ctx}"
    );
    assert!(ctx.ends_with("</dirnames></volume></prefetch>"), "{ctx}");
    assert!(ctx.contains("<file>\\DEVICE\\HARDDISKVOLUME"), "{ctx}");

    // tests/data_check.txt, scan_winprefetch:
    // Data/Windows7Prefetch_AGENT.EXE-D2852D29.pf -0 AGENT.EXE
    //   <prefetch><os>Windows Vista or Windows 7</os>...
    let pf = std::fs::read(c.join("tests/Data/Windows7Prefetch_AGENT.EXE-D2852D29.pf")).unwrap();
    let got = scan_file(&sc, &pf);
    for l in &got {
        println!("Windows7Prefetch: {}\t{}\t{}", l.1, s(&l.2), s(&l.3));
    }
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].1.as_str(), got[0].2.as_slice()),
        ("0", &b"AGENT.EXE"[..])
    );
    assert!(
        s(&got[0].3).starts_with(
            "<prefetch><os>Windows Vista or Windows 7</os><filename>AGENT.EXE</filename><header_size>240</header_size>"
        ),
        "{}",
        s(&got[0].3)
    );
    // run count at 0x98 and last run time at 0x80 (FILETIME), read here
    let runs = u32::from_le_bytes(pf[0x98..0x9c].try_into().unwrap());
    assert!(s(&got[0].3).contains(&format!("<runs>{runs}</runs>")));
}

// ----------------------------------------------------------------------- utmp

#[test]
fn utmp_sparc_and_debian() {
    let Some(c) = corpus("utmp_sparc_and_debian") else {
        return;
    };
    let sc = scanner(&["utmp"]);
    // src/tests/wtmp-sparc-be (+ README): 100 big-endian records, every one
    // carved by bulk_extractor since its pull request #563 ("a regression
    // test for all 100 records"); the carving recorder's line is
    // OFFSET\tutmp_carved/utmp\t384 (scan_utmp.cpp, carve_records)
    let w = std::fs::read(c.join("src/tests/wtmp-sparc-be")).unwrap();
    assert_eq!(w.len(), 38_400);
    let got = scan_file(&sc, &w);
    let want: Vec<Line> = (0..100)
        .map(|i| {
            (
                "utmp_carved".to_string(),
                (i * 384).to_string(),
                b"utmp_carved/utmp".to_vec(),
                b"384".to_vec(),
            )
        })
        .collect();
    assert_eq!(got, want);

    // tests/Data/DebianUtmp: a little-endian utmp file (no line for it in
    // data_check.txt); 3840 bytes = 10 records, each reported at its start
    let d = std::fs::read(c.join("tests/Data/DebianUtmp")).unwrap();
    let got = scan_file(&sc, &d);
    println!(
        "DebianUtmp: {:?}",
        got.iter().map(|l| &l.1).collect::<Vec<_>>()
    );
    assert!(!got.is_empty());
    for l in &got {
        let p: usize = l.1.parse().unwrap();
        assert_eq!(p % 384, 0, "{l:?}");
    }
}

// ------------------------------------------------------------------------ ELF

/// `readelf -h FILE` fields, or `None` without readelf.
fn readelf_h(path: &Path) -> Option<Vec<(String, String)>> {
    let out = Command::new("readelf").arg("-h").arg(path).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        s(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

fn attr(ctx: &str, name: &str) -> String {
    let k = format!(" {name}=\"");
    let i = ctx.find(&k).unwrap_or_else(|| panic!("{name} in {ctx}")) + k.len();
    ctx[i..i + ctx[i..].find('"').unwrap()].to_string()
}

/// An ELF of this machine's /usr/bin in a size range, with a machine in
/// bulk_extractor's table (x86, x86-64, ...).
fn system_elf(min: usize, max: usize) -> Option<(PathBuf, Vec<u8>)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir("/usr/bin")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for p in names {
        let Ok(m) = std::fs::metadata(&p) else {
            continue;
        };
        if !m.is_file() || (m.len() as usize) < min || m.len() as usize > max {
            continue;
        }
        let Ok(d) = std::fs::read(&p) else { continue };
        if d.starts_with(b"\x7fELF") && d[5] == 1 && matches!(d[18], 3 | 62) {
            return Some((p, d));
        }
    }
    None
}

#[test]
fn elf_system_binaries_against_readelf() {
    let sc = scanner(&["elf"]);
    let mut checked = 0;
    for (min, max) in [(4096, 56 << 10), (200 << 10, 4 << 20)] {
        let Some((path, d)) = system_elf(min, max) else {
            println!("no ELF of {min}..{max} bytes in /usr/bin");
            continue;
        };
        // copied into an image at an odd offset
        let mut img = random_bytes(7, 1001);
        img.extend_from_slice(&d);
        img.extend(random_bytes(8, 999));
        let got = scan_file(&sc, &img);
        let at: Vec<&Line> = got.iter().filter(|l| l.1 == "1001").collect();
        assert_eq!(at.len(), 1, "{path:?}: {got:?}");
        let (_, _, feature, ctx) = at[0];
        assert_eq!(s(feature), sha1_4k(&d));
        let ctx = s(ctx);
        println!(
            "{path:?} ({} bytes): {}",
            d.len(),
            &ctx[..ctx.len().min(600)]
        );
        assert!(ctx.starts_with("<ELF class=\"ELFCLASS"));
        assert!(ctx.ends_with("</shared_objects></ELF>"));
        // the header, against readelf -h
        let Some(h) = readelf_h(&path) else {
            println!("readelf not available: header fields not cross-checked");
            continue;
        };
        let get = |k: &str| h.iter().find(|e| e.0 == k).map(|e| e.1.clone()).unwrap();
        let num = |k: &str| get(k).split_whitespace().next().unwrap().to_string();
        let entry =
            u64::from_str_radix(get("Entry point address").trim_start_matches("0x"), 16).unwrap();
        assert_eq!(attr(&ctx, "entry"), entry.to_string());
        assert_eq!(attr(&ctx, "phoff"), num("Start of program headers"));
        assert_eq!(attr(&ctx, "shoff"), num("Start of section headers"));
        assert_eq!(attr(&ctx, "ehsize"), num("Size of this header"));
        assert_eq!(attr(&ctx, "phentsize"), num("Size of program headers"));
        assert_eq!(attr(&ctx, "phnum"), num("Number of program headers"));
        assert_eq!(attr(&ctx, "shentsize"), num("Size of section headers"));
        assert_eq!(attr(&ctx, "shnum"), num("Number of section headers"));
        assert_eq!(
            attr(&ctx, "shstrndx"),
            num("Section header string table index")
        );
        let flags = u64::from_str_radix(
            get("Flags")
                .split(',')
                .next()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap();
        assert_eq!(attr(&ctx, "flags"), flags.to_string());
        let typ = get("Type");
        let want_type = ["REL", "EXEC", "DYN", "CORE"]
            .iter()
            .find(|t| typ.starts_with(*t))
            .map(|t| format!("ET_{t}"))
            .unwrap();
        assert_eq!(attr(&ctx, "type"), want_type);
        let class = if get("Class") == "ELF64" {
            "ELFCLASS64"
        } else {
            "ELFCLASS32"
        };
        assert_eq!(attr(&ctx, "class"), class);
        // the sections when the table lies in the 60 KiB window, against
        // readelf -S -W; the shared objects against readelf -d
        let shoff: usize = num("Start of section headers").parse().unwrap();
        let shnum: usize = num("Number of section headers").parse().unwrap();
        let shentsize: usize = num("Size of section headers").parse().unwrap();
        let n = ctx.matches("<section ").count();
        if shoff + shnum * shentsize <= 60 << 10 {
            assert_eq!(n, shnum, "{ctx}");
            let out = Command::new("readelf")
                .arg("-S")
                .arg("-W")
                .arg(&path)
                .output()
                .unwrap();
            for l in s(&out.stdout).lines() {
                let Some(i) = l.find(']') else { continue };
                let Some(name) = l[i + 1..].split_whitespace().next() else {
                    continue;
                };
                if l.trim_start().starts_with("[ 0]") || !name.starts_with('.') {
                    continue;
                }
                assert!(
                    ctx.contains(&format!("<section name=\"{name}\"")),
                    "{name}: {ctx}"
                );
            }
            let out = Command::new("readelf")
                .arg("-d")
                .arg(&path)
                .output()
                .unwrap();
            let mut so = String::new();
            for l in s(&out.stdout).lines().filter(|l| l.contains("(NEEDED)")) {
                let a = l.find('[').unwrap() + 1;
                let b = l.rfind(']').unwrap();
                so.push_str(&format!("<so>{}</so>", &l[a..b]));
            }
            assert!(
                ctx.ends_with(&format!("<shared_objects>{so}</shared_objects></ELF>")),
                "{ctx}"
            );
        } else {
            // a section table beyond the window: treated as past the buffer
            assert_eq!(n, 0, "{ctx}");
            assert!(ctx.contains("<sections></sections><shared_objects></shared_objects>"));
        }
        checked += 1;
    }
    assert!(
        checked > 0 || cfg!(not(target_os = "linux")),
        "no ELF binary checked"
    );
}

// ------------------------------------------------------------------------- PE

/// A PE32+ (x86-64) image built here, and its expected header values.
fn pe64() -> Vec<u8> {
    let mut f = vec![0u8; 0x800];
    let p16 = |f: &mut [u8], o: usize, v: u16| f[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let p32 = |f: &mut [u8], o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_le_bytes());
    let p64 = |f: &mut [u8], o: usize, v: u64| f[o..o + 8].copy_from_slice(&v.to_le_bytes());
    f[..2].copy_from_slice(b"MZ");
    p32(&mut f, 0x3c, 0x100);
    f[0x100..0x104].copy_from_slice(b"PE\0\0");
    let fh = 0x104;
    p16(&mut f, fh, 0x8664);
    p16(&mut f, fh + 2, 3);
    p32(&mut f, fh + 4, 1_700_000_000);
    p16(&mut f, fh + 16, 0xf0);
    p16(&mut f, fh + 18, 0x0022);
    let oh = fh + 20;
    p16(&mut f, oh, 0x20b);
    f[oh + 2] = 2;
    f[oh + 3] = 38;
    p32(&mut f, oh + 4, 0x1200);
    p32(&mut f, oh + 8, 0x600);
    p32(&mut f, oh + 12, 0x10);
    p32(&mut f, oh + 16, 0x14e0);
    p32(&mut f, oh + 20, 0x1000);
    let ow = oh + 24;
    p64(&mut f, ow, 0x1_4000_0000);
    p32(&mut f, ow + 8, 0x1000);
    p32(&mut f, ow + 12, 0x200);
    p16(&mut f, ow + 16, 4);
    p16(&mut f, ow + 24, 5);
    p16(&mut f, ow + 26, 2);
    p32(&mut f, ow + 28, 0);
    p32(&mut f, ow + 32, 0x5000);
    p32(&mut f, ow + 36, 0x400);
    p32(&mut f, ow + 40, 0x1_2345);
    p16(&mut f, ow + 44, 3);
    p16(&mut f, ow + 46, 0x8160);
    p64(&mut f, ow + 48, 0x20_0000);
    p64(&mut f, ow + 56, 0x1000);
    p64(&mut f, ow + 64, 0x10_0000);
    p64(&mut f, ow + 72, 0x1000);
    p32(&mut f, ow + 84, 16);
    // data directory 1 (imports) -> RVA 0x3000
    p32(&mut f, ow + 88 + 8, 0x3000);
    p32(&mut f, ow + 88 + 12, 40);
    let sh = fh + 20 + 0xf0;
    for (i, (name, va, raw, ch)) in [
        (&b".text"[..], 0x1000u32, 0x400u32, 0x6000_0020u32),
        (b".rdata", 0x2000, 0x600, 0x4000_0040),
        (b".idata", 0x3000, 0x600, 0xc000_0040),
    ]
    .into_iter()
    .enumerate()
    {
        let o = sh + 40 * i;
        f[o..o + name.len()].copy_from_slice(name);
        p32(&mut f, o + 8, 0x100);
        p32(&mut f, o + 12, va);
        p32(&mut f, o + 16, 0x200);
        p32(&mut f, o + 20, raw);
        p32(&mut f, o + 36, ch);
    }
    // .idata at file 0x600: one import of "KERNEL32.dll" named at RVA 0x3040
    p32(&mut f, 0x600 + 12, 0x3040);
    p32(&mut f, 0x600 + 16, 0x3080);
    f[0x640..0x64d].copy_from_slice(b"KERNEL32.dll\0");
    f
}

#[test]
fn winpe_built_image_and_system_exes() {
    let sc = scanner(&["winpe"]);
    let f = pe64();
    let mut img = random_bytes(3, 777);
    img.extend_from_slice(&f);
    img.extend(random_bytes(4, 555));
    let got = scan_file(&sc, &img);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "777");
    // the hash covers 4096 bytes from the header, past the image's end
    assert_eq!(s(&got[0].2), sha1_4k(&img[777..]));
    let ctx = s(&got[0].3);
    // the values written into the image, in scan_winpe.cpp's formats: the
    // file header in decimal, AddressOfEntryPoint onwards in hex (sticky
    // std::hex), PE32+ fields at bulk_extractor's offsets
    let table: &[(&str, &str)] = &[
        ("Machine", "IMAGE_FILE_MACHINE_AMD64"),
        ("NumberOfSections", "3"),
        ("TimeDateStamp", "1700000000"),
        ("TimeDateStampISO", "2023-11-14T22:13:20Z"),
        ("SizeOfOptionalHeader", "240"),
        ("Magic", "PE32+"),
        ("MajorLinkerVersion", "2"),
        ("MinorLinkerVersion", "38"),
        ("SizeOfCode", "4608"),
        ("SizeOfInitializedData", "1536"),
        ("SizeOfUninitializedData", "16"),
        ("AddressOfEntryPoint", "0x14e0"),
        ("BaseOfCode", "0x1000"),
        ("ImageBase", "0x140000000"),
        ("SectionAlignment", "1000"),
        ("FileAlignment", "200"),
        ("MajorOperatingSystemVersion", "4"),
        ("MajorSubsystemVersion", "5"),
        ("MinorSubsystemVersion", "2"),
        // bulk_extractor reads Win32VersionValue at +30: the high half of
        // 0 and the low half of SizeOfImage 0x5000
        ("Win32VersionValue", "50000000"),
        ("SizeOfImage", "5000"),
        ("SizeOfHeaders", "400"),
        ("CheckSum", "0x12345"),
        ("SubSystem", ""),
        ("SizeOfStackReserve", "200000"),
        // 32 bits at +52: the high half of SizeOfStackReserve
        ("SizeOfStackCommit", "0"),
        ("SizeOfHeapReserve", "1000"),
        ("SizeOfHeapCommit", "0"),
        ("LoaderFlags", "100000"),
        ("NumberOfRvaAndSizes", "0"),
    ];
    for (k, v) in table {
        assert_eq!(attr(&ctx, k), *v, "{k} in {ctx}");
    }
    assert!(ctx.contains(
        "<Characteristics><IMAGE_FILE_EXECUTABLE_IMAGE /><IMAGE_FILE_LARGE_ADDRESS_AWARE /></Characteristics>"
    ));
    assert!(ctx.contains("<DllCharacteristics><IMAGE_DLL_CHARACTERISTICS_DYNAMIC_BASE /><IMAGE_DLL_CHARACTERISTICS_NX_COMPAT /><IMAGE_DLL_CHARACTERISTICS_TERMINAL_SERVER_AWARE /></DllCharacteristics>"));
    assert!(ctx.contains(r#"<SectionHeader Name=".rdata" VirtualSize="100" VirtualAddress="2000" SizeOfRawData="200" PointerToRawData="600" PointerToRelocations="0" PointerToLinenumbers="0" ><Characteristics><IMAGE_SCN_CNT_INITIALIZED_DATA /><IMAGE_SCN_MEM_READ /></Characteristics></SectionHeader>"#));
    assert!(
        ctx.ends_with("</Sections><dlls><dll>KERNEL32.dll</dll></dlls></PE>"),
        "{ctx}"
    );
    // src/test_be.cpp test_winpe: the context starts "<PE><FileHeader Machine="
    assert!(ctx.starts_with("<PE><FileHeader Machine=\"IMAGE_FILE_MACHINE_AMD64\""));

    // launcher .exe files shipped by Python's pip/setuptools, when present:
    // the header fields against a parse made here
    let mut exes = Vec::new();
    for base in [
        "/usr/lib/python3/dist-packages",
        "/usr/local/lib",
        "/root/.pyenv/versions",
    ] {
        find_exes(Path::new(base), 0, &mut exes);
    }
    exes.sort();
    exes.truncate(6);
    if exes.is_empty() {
        println!("no .exe found on this machine: only the built image checked");
    }
    for p in exes {
        let d = std::fs::read(&p).unwrap();
        let got = scan_file(&sc, &d);
        let at0: Vec<&Line> = got.iter().filter(|l| l.1 == "0").collect();
        let lfanew = u32::from_le_bytes(d[0x3c..0x40].try_into().unwrap()) as usize;
        let machine = u16::from_le_bytes(d[lfanew + 4..lfanew + 6].try_into().unwrap());
        if !matches!(machine, 0x14c | 0x8664 | 0x1c0 | 0x1c4 | 0x200) {
            // e.g. ARM64 launchers: not in bulk_extractor's machine table
            assert!(at0.is_empty(), "{p:?}");
            continue;
        }
        assert_eq!(at0.len(), 1, "{p:?}");
        let ctx = s(&at0[0].3);
        let nsec = u16::from_le_bytes(d[lfanew + 6..lfanew + 8].try_into().unwrap());
        let stamp = u32::from_le_bytes(d[lfanew + 8..lfanew + 12].try_into().unwrap());
        assert_eq!(attr(&ctx, "NumberOfSections"), nsec.to_string());
        assert_eq!(attr(&ctx, "TimeDateStamp"), stamp.to_string());
        assert_eq!(s(&at0[0].2), sha1_4k(&d));
        println!("{p:?}: {}", &ctx[..ctx.len().min(300)]);
    }
}

fn find_exes(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > 8 || out.len() > 50 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            find_exes(&p, depth + 1, out);
        } else if t.is_file() && p.extension().is_some_and(|x| x == "exe") {
            out.push(p);
        }
    }
}

// ------------------------------------------------------- shards and hostility

/// The samples: the built PE, a small system ELF, the corpus prefetch
/// files and wtmp (when present).
fn samples() -> Vec<Vec<u8>> {
    let mut v = vec![pe64()];
    if let Some((_, d)) = system_elf(4096, 56 << 10) {
        v.push(d);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/bulk-extractor-test-data");
    for f in [
        "src/tests/wtmp-sparc-be",
        "tests/Data/Windows7Prefetch_AGENT.EXE-D2852D29.pf",
        "tests/Data/DebianUtmp",
    ] {
        if let Ok(d) = std::fs::read(p.join(f)) {
            v.push(d);
        }
    }
    if let Ok(d) = std::fs::read(p.join("src/tests/test_winprefetch.raw")) {
        v.push(d[3584..3584 + 0x4000].to_vec());
    }
    v
}

#[test]
fn shard_invariance_exactly_once() {
    let sc = scanner(&MINE);
    let mut img = random_bytes(11, 4093);
    let mut starts = Vec::new();
    for (i, smp) in samples().iter().enumerate() {
        starts.push(img.len());
        img.extend_from_slice(smp);
        img.extend(random_bytes(100 + i as u64, 4096 * (i + 1) + 13 * i + 1));
    }
    // the samples again, inside a gzip member
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &img[..img.len().min(300_000)]).unwrap();
    img.extend(gz.finish().unwrap());
    let ev = Mem::new("img", img.clone(), false);
    let base = lines(&scan_sharded(&sc, &ev, 1 << 30, 0));
    let uniq: BTreeSet<&Line> = base.iter().collect();
    assert_eq!(uniq.len(), base.len(), "duplicates");
    for st in &starts {
        assert!(
            base.iter().any(|l| l.1 == st.to_string()),
            "nothing at {st}: {:?}",
            base.iter().map(|l| (&l.0, &l.1)).collect::<Vec<_>>()
        );
    }
    assert!(base.iter().any(|l| l.1.contains("-GZIP-")));
    for scanner in ["winpe", "elf", "utmp_carved"] {
        assert!(base.iter().any(|l| l.0 == scanner), "{scanner}");
    }
    for (shard, margin) in [
        (4096, 4096),
        (4096, 65536),
        (65536, 0),
        (65536, 1 << 20),
        (1024, 333),
    ] {
        let got = lines(&scan_sharded(&sc, &ev, shard, margin));
        assert_eq!(got, base, "shard {shard} margin {margin}");
    }
    println!("{} features, identical for every shard plan", base.len());
}

#[test]
fn hostile_input_no_panic() {
    let sc = scanner(&MINE);
    let mut r = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        r
    };
    for smp in samples() {
        // every truncation point of the first 4 KiB, then coarser
        for n in (0..smp.len().min(4096)).chain((4096..smp.len()).step_by(997)) {
            let _ = sc.scan_buffer(&smp[..n], &AtomicBool::new(false)).unwrap();
        }
        // byte mutations in the headers
        for _ in 0..300 {
            let mut m = smp.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() as usize) % m.len().min(1024);
                m[i] = next() as u8;
            }
            let _ = sc.scan_buffer(&m, &AtomicBool::new(false)).unwrap();
        }
        // large offsets and counts
        for v in [0u8, 0x7f, 0x80, 0xff] {
            let mut m = smp.clone();
            for k in (0..m.len().min(0x300)).step_by(5) {
                m[k] = v;
            }
            let _ = sc.scan_buffer(&m, &AtomicBool::new(false)).unwrap();
        }
    }
    let noise = random_bytes(5, 4 << 20);
    let out = sc.scan_buffer(&noise, &AtomicBool::new(false)).unwrap();
    assert!(out.features.is_empty(), "{:?}", lines(&out.features));
}

// ------------------------------------------------- false positives and speed

#[test]
fn random_and_text_false_positives_and_throughput() {
    // 256 MiB in release builds (cargo test --release prints the figures),
    // 16 MiB in debug builds
    let total: usize = if cfg!(debug_assertions) {
        16 << 20
    } else {
        256 << 20
    };
    let chunk = 32 << 20;
    for name in MINE {
        let sc = scanner(&[name]);
        for (kind, make) in [
            ("random", random_bytes as fn(u64, usize) -> Vec<u8>),
            ("text", text_bytes as fn(u64, usize) -> Vec<u8>),
        ] {
            let mut found = 0usize;
            let mut nanos = 0u64;
            let mut wall = 0f64;
            let mut done = 0usize;
            let mut seed = 1u64;
            while done < total {
                let n = chunk.min(total - done);
                let data = make(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), n);
                seed += 1;
                let t = Instant::now();
                let out = sc.scan_buffer(&data, &AtomicBool::new(false)).unwrap();
                wall += t.elapsed().as_secs_f64();
                // the listing of decoded buffers (base64 blocks of the
                // text) is not a finding
                found += out
                    .features
                    .iter()
                    .filter(|f| f.scanner != trawl_features::DECODED_RECORDER)
                    .count();
                nanos += out
                    .stats
                    .iter()
                    .filter(|s| s.scanner == format!("{STAT_PREFIX}{name}"))
                    .map(|s| s.nanos)
                    .sum::<u64>();
                done += n;
            }
            let mb = total as f64 / 1e6;
            println!(
                "{name:12} {kind:6} {} MiB: {found} features, scanner {:.0} MB/s (whole pass {:.0} MB/s)",
                total >> 20,
                mb / (nanos.max(1) as f64 / 1e9),
                mb / wall
            );
            assert_eq!(found, 0, "{name} false positives on {kind} bytes");
        }
    }
}
