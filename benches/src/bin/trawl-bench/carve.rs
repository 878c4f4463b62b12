//! `trawl-bench carve`: recall and precision of trawl, foremost and scalpel
//! on the same images (the fixtures, the DFTT #8 JPEG search image, and
//! synthetic images laid out from the DFRWS 2006 and 2007 answer keys with
//! files of our own), then throughput against foremost on a large mixed
//! image, alternating runs, same machine, same run.
//!
//! ```text
//! trawl-bench carve [--size 1GiB] [--runs 3] [--dir DIR] [--no-throughput] [--no-accuracy]
//! ```
//!
//! Scoring: a ground-truth file is recovered when a tool outputs a file with
//! its MD5 (byte-identical). Precision is the share of a tool's output files
//! that are ground-truth files. For trawl both all outputs and the ones it
//! marks validated are shown.

use anyhow::{Context, Result, bail};
use md5::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use trawl_benches::{Contender, have, race, table};
use trawl_fixtures::art::Artifact;
use trawl_fixtures::formats::{exec, images, media, ole, pdf, zip};
use trawl_fixtures::util::Rng;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn md5_hex(d: &[u8]) -> String {
    hex(&md5::Md5::digest(d))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A file every tool should recover.
#[derive(Debug, Clone)]
struct Truth {
    name: String,
    md5: String,
    /// Whole and contiguous in the image (recoverable by carving).
    contiguous: bool,
}

struct Image {
    name: String,
    path: PathBuf,
    truth: Vec<Truth>,
    note: String,
}

/// What one tool produced on one image.
#[derive(Default)]
struct Outcome {
    /// MD5 of every output file, and whether the tool vouches for it.
    files: Vec<(String, bool)>,
    secs: f64,
}

pub fn run(args: &[String]) -> Result<()> {
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "1GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "3".into()).parse()?;
    let base = PathBuf::from(
        arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    )
    .join("trawl-bench-carve");
    std::fs::create_dir_all(&base)?;
    let trawl = super::trawl_bin();
    if !trawl.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --locked)",
            trawl.display()
        );
    }
    let peers: Vec<&str> = ["foremost", "scalpel"]
        .into_iter()
        .filter(|t| have(t))
        .collect();
    let scalpel_conf = base.join("scalpel.conf");
    std::fs::write(&scalpel_conf, scalpel_config(true)?)?;
    let scalpel_conf_bulk = base.join("scalpel-footers.conf");
    std::fs::write(&scalpel_conf_bulk, scalpel_config(false)?)?;
    println!(
        "Peers: {}. foremost: `foremost -t all` (its built-in types); scalpel: the stock \
         /etc/scalpel/scalpel.conf lines for gif, jpg, png, bmp, tif, avi, mov, wav, mpg, doc, \
         htm, pdf, zip (uncommented, unchanged).\n",
        if peers.is_empty() {
            "none installed".to_string()
        } else {
            peers.join(", ")
        }
    );
    if !args.iter().any(|a| a == "--no-accuracy") {
        let images = build_images(&base)?;
        accuracy(&trawl, &peers, &scalpel_conf, &base, &images)?;
    }
    if !args.iter().any(|a| a == "--no-throughput") {
        throughput(&trawl, &peers, &scalpel_conf_bulk, &base, size, runs)?;
    }
    Ok(())
}

/// The stock scalpel.conf lines for the types of the images, uncommented.
fn scalpel_config(all: bool) -> Result<String> {
    let text = std::fs::read_to_string("/etc/scalpel/scalpel.conf").unwrap_or_default();
    let want: &[&str] = if all {
        &[
            "gif", "jpg", "png", "bmp", "tif", "avi", "mov", "wav", "mpg", "doc", "htm", "pdf",
            "zip",
        ]
    } else {
        // Footer-bounded types only: the footer-less tif/mov/bmp/avi/wav
        // lines carve their maximum size (up to 200 MB) at every header.
        &["gif", "jpg", "png", "mpg", "doc", "htm", "pdf", "zip"]
    };
    let mut out = String::new();
    for l in text.lines() {
        let t = l.trim_start_matches(['#', ' ', '\t']);
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() >= 4
            && matches!(f[1], "y" | "n")
            && f[2].parse::<u64>().is_ok()
            && want.contains(&f[0])
        {
            out.push_str(t);
            out.push('\n');
        }
    }
    Ok(out)
}

// ------------------------------------------------------------- images

fn build_images(base: &Path) -> Result<Vec<Image>> {
    let mut v = Vec::new();
    for (name, cfg) in [
        ("fixture small (8 MiB)", trawl_fixtures::Config::small()),
        ("fixture medium (40 MiB)", trawl_fixtures::Config::medium()),
    ] {
        let stem = if name.contains("small") {
            "small"
        } else {
            "medium"
        };
        let (img, man) = trawl_fixtures::write(&cfg, base, stem)?;
        let m: trawl_fixtures::Manifest = serde_json::from_str(&std::fs::read_to_string(man)?)?;
        let truth = m
            .files
            .iter()
            .map(|f| Truth {
                name: format!("{} at {}", f.file_type, f.offset),
                md5: f.md5.clone(),
                contiguous: true,
            })
            .collect();
        v.push(Image {
            name: name.into(),
            path: img,
            truth,
            note: format!(
                "{} planted files of 25 types (embedded ones included), {} decoys",
                m.files.len(),
                m.decoys.len()
            ),
        });
    }
    match dftt8(base) {
        Ok(Some(i)) => v.push(i),
        Ok(None) => println!("DFTT #8: corpora absent, skipped\n"),
        Err(e) => println!("DFTT #8: skipped: {e:#}\n"),
    }
    let key = corpora().map(|c| c.join("dfrws-2006-answer-key/file-image-layout.md"));
    match key.filter(|k| k.exists()) {
        Some(k) => v.push(dfrws2006(base, &k)?),
        None => println!("DFRWS 2006: answer key absent, skipped\n"),
    }
    let key = corpora().map(|c| c.join("dfrws-2007-answer-key"));
    match key.filter(|k| k.join("challenge-layout.txt").exists()) {
        Some(k) => v.push(dfrws2007(base, &k)?),
        None => println!("DFRWS 2007: answer key absent, skipped\n"),
    }
    Ok(v)
}

fn corpora() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
    p.is_dir().then_some(p)
}

/// Extracts one member of a ZIP archive (stored or deflated).
fn unzip_member(zip: &[u8], suffix: &str) -> Result<Vec<u8>> {
    let mut pos = 0usize;
    while pos + 30 <= zip.len() && zip[pos..pos + 4] == *b"PK\x03\x04" {
        let le16 = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]) as usize;
        let le32 =
            |i: usize| u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]) as usize;
        let method = le16(pos + 8);
        let csize = le32(pos + 18);
        let (n, e) = (le16(pos + 26), le16(pos + 28));
        let name = String::from_utf8_lossy(&zip[pos + 30..pos + 30 + n]).into_owned();
        let data = pos + 30 + n + e;
        let body = zip
            .get(data..data + csize)
            .context("truncated ZIP member")?;
        if name.ends_with(suffix) {
            return match method {
                0 => Ok(body.to_vec()),
                8 => {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::DeflateDecoder::new(body),
                        &mut out,
                    )?;
                    Ok(out)
                }
                m => bail!("ZIP method {m} not supported"),
            };
        }
        pos = data + csize;
    }
    bail!("{suffix} not found in the archive")
}

fn dftt8(base: &Path) -> Result<Option<Image>> {
    let Some(c) = corpora() else {
        return Ok(None);
    };
    let z = c.join("sleuthkit-dftt/from_brian/8-jpeg-search.zip");
    if !z.exists() {
        return Ok(None);
    }
    let dd = unzip_member(&std::fs::read(&z)?, "8-jpeg-search.dd")?;
    let path = base.join("dftt8.dd");
    std::fs::write(&path, dd)?;
    // The answer key (MANIFEST.md, index.html of the image): the JPEG-bearing
    // files. 11 (random bytes + JPEG) cannot be carved whole; 13 (an NTFS
    // alternate data stream) is fragmented on this image.
    let key = [
        (
            "1 alloc/file1.jpg",
            "75b8d00568815a36c3809b46fc84ba6d",
            true,
        ),
        (
            "2 alloc/file2.dat",
            "de5d83153339931371719f4e5c924eba",
            true,
        ),
        ("6 del1/file6.jpg", "afd55222024a4e22f7f5a3a665320763", true),
        ("7 del2/file7.hmm", "0c452c5800fcfa7c66027ae89c4f068a", true),
        (
            "8 archive/file8.zip",
            "d41b56e0a9f84eb2825e73c24cedd963",
            true,
        ),
        (
            "9 archive/file9.boo",
            "73c3029066aee9416a5aeb98a5c55321",
            true,
        ),
        (
            "10 archive/file10.tar.gz",
            "d4f8cf643141f0c2911c539750e18ef2",
            true,
        ),
        (
            "11 misc/file11.dat",
            "f407ab92da959c7ab03292cfe596a99d",
            false,
        ),
        (
            "12 misc/file12.doc",
            "61c0b55639e52d1ce82aba834ada2bab",
            true,
        ),
        (
            "13 misc/file13.dll:here",
            "9b787e63e3b64562730c5aecaab1e1f8",
            false,
        ),
    ];
    Ok(Some(Image {
        name: "DFTT #8 JPEG search (10 MiB NTFS)".into(),
        path,
        truth: key
            .iter()
            .map(|(n, m, c)| Truth {
                name: n.to_string(),
                md5: m.to_string(),
                contiguous: *c,
            })
            .collect(),
        note: "10 JPEG-bearing files of the answer key; 11 and 13 cannot be carved whole".into(),
    }))
}

// ------------------------------------------------- our own files by size

fn text(rng: &mut Rng, n: usize) -> String {
    let mut s = trawl_fixtures::features::paragraph(rng, n);
    s.truncate(n);
    s
}

fn noise_art(rng: &mut Rng, n: usize) -> Artifact {
    Artifact {
        bytes: rng.noise(n),
        ..Default::default()
    }
}

/// A JPEG of exactly `target` bytes (padded with comment segments).
fn gen_jpeg(rng: &mut Rng, target: usize) -> Vec<u8> {
    let spec = |w: u32, h: u32| images::JpegSpec {
        width: w as u16,
        height: h as u16,
        color: true,
        quality: 85,
        restart: 0,
        detail: 20,
        comment: None,
    };
    let (mut w, mut h) = (320u32, 240u32);
    let mut j = images::jpeg(rng, &spec(w, h));
    for _ in 0..6 {
        let scale = (target as f64 * 0.9 / j.len() as f64).sqrt();
        w = ((f64::from(w) * scale) as u32).clamp(16, 16000);
        h = ((f64::from(h) * scale) as u32).clamp(16, 16000);
        j = images::jpeg(rng, &spec(w, h));
        if j.len() <= target && j.len() * 10 >= target * 8 {
            break;
        }
    }
    while j.len() > target && w > 16 {
        w = w * 9 / 10;
        h = h * 9 / 10;
        j = images::jpeg(rng, &spec(w, h));
    }
    // Pad after SOI with COM segments (each at most 65535 bytes).
    let mut pad = Vec::new();
    let mut left = target.saturating_sub(j.len());
    while left >= 4 {
        let n = left.min(65_000);
        pad.extend_from_slice(&[0xFF, 0xFE]);
        pad.extend_from_slice(&((n - 2) as u16).to_be_bytes());
        pad.extend(std::iter::repeat_n(b'.', n - 4));
        left -= n;
    }
    let mut out = j[..2].to_vec();
    out.extend(pad);
    out.extend_from_slice(&j[2..]);
    out
}

fn gen_doc(rng: &mut Rng, target: usize) -> Vec<u8> {
    // The fixtures' compound file writer keeps its FAT in the header DIFAT
    // (about 7 MB at most).
    let target = target.min(6 << 20);
    let mut chars = target / 2;
    loop {
        let t = Artifact {
            bytes: trawl_fixtures::util::utf16le(&text(rng, chars)),
            ..Default::default()
        };
        let d = ole::doc(rng, &t).bytes;
        if d.len() <= target || chars < 64 {
            return d;
        }
        chars = chars * target / d.len() * 97 / 100;
    }
}

fn gen_xls(rng: &mut Rng, target: usize) -> Vec<u8> {
    let mut n = target / 240;
    loop {
        let cells: Vec<(Option<&'static str>, String, bool)> =
            (0..n).map(|_| (None, text(rng, 200), false)).collect();
        let x = ole::xls(rng, &cells).bytes;
        if x.len() <= target || n < 2 {
            return x;
        }
        n = n * target / x.len() * 97 / 100;
    }
}

fn gen_zip(rng: &mut Rng, target: usize) -> Vec<u8> {
    let t = zip::dos_time(rng);
    let readme = text(rng, 600);
    let base = zip::zip(&[zip::Member::text("readme.txt", &readme, true)], b"", t)
        .bytes
        .len();
    let blob = target.saturating_sub(base + 30 + 46 + 2 * 8);
    zip::zip(
        &[
            zip::Member::text("readme.txt", &readme, true),
            zip::Member::stored("data.bin", noise_art(rng, blob)),
        ],
        b"",
        t,
    )
    .bytes
}

fn gen_pdf(rng: &mut Rng, target: usize) -> Vec<u8> {
    let t = Artifact {
        bytes: text(rng, target.saturating_sub(2500).max(100)).into_bytes(),
        ..Default::default()
    };
    pdf::pdf(
        rng,
        &pdf::PdfSpec {
            text: Some(&t),
            image: None,
            compress_filler: false,
            incremental: false,
        },
    )
    .bytes
}

fn gen_exe(rng: &mut Rng, target: usize) -> Vec<u8> {
    let t = Artifact {
        bytes: text(rng, target.saturating_sub(16_000).max(100)).into_bytes(),
        ..Default::default()
    };
    exec::pe(rng, false, false, Some(&t)).bytes
}

fn gen_avi(rng: &mut Rng, target: usize) -> Vec<u8> {
    let side = ((target / 6) as f64).sqrt().max(8.0) as u32;
    media::avi(rng, &[], side, side).bytes
}

/// MP4/MOV with its `mdat` grown to reach `target` bytes.
fn gen_isobmff(rng: &mut Rng, target: usize, qt: bool) -> Vec<u8> {
    let f = media::isobmff(rng, qt).bytes;
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mdat_len = {
        let mut p = 0;
        let mut l = 0;
        while p + 8 <= f.len() {
            let s = u32::from_be_bytes([f[p], f[p + 1], f[p + 2], f[p + 3]]) as usize;
            if &f[p + 4..p + 8] == b"mdat" {
                l = s;
            }
            p += s.max(8);
        }
        l
    };
    let grow = target.saturating_sub(f.len());
    while pos + 8 <= f.len() {
        let s = u32::from_be_bytes([f[pos], f[pos + 1], f[pos + 2], f[pos + 3]]) as usize;
        if &f[pos + 4..pos + 8] == b"mdat" {
            let n = mdat_len + grow;
            out.extend_from_slice(&(n as u32).to_be_bytes());
            out.extend_from_slice(b"mdat");
            out.extend(rng.noise(n - 8));
        } else {
            out.extend_from_slice(&f[pos..pos + s]);
        }
        pos += s.max(8);
    }
    out
}

fn gen_text(rng: &mut Rng, target: usize, kind: &str) -> Vec<u8> {
    match kind {
        "html" => {
            let head = "<html><head><title>report</title></head><body>\n<p>";
            let tail = "</p>\n</body></html>\n";
            let body = text(rng, target.saturating_sub(head.len() + tail.len()));
            format!("{head}{body}{tail}").into_bytes()
        }
        "mbox" => {
            let head = "From alice@example.com Mon Jan  8 10:12:03 2007\nFrom: alice@example.com\nTo: bob@example.org\nSubject: notes\n\n";
            format!(
                "{head}{}\n",
                text(rng, target.saturating_sub(head.len() + 1))
            )
            .into_bytes()
        }
        "txt16" => trawl_fixtures::util::utf16le(&text(rng, target / 2)),
        _ => text(rng, target).into_bytes(),
    }
}

/// Our own file of a DFRWS type, at most `target` bytes; `None` for types
/// we cannot produce (their sectors stay random).
fn gen_file(rng: &mut Rng, ty: &str, target: usize) -> Option<Vec<u8>> {
    Some(match ty {
        "jpg" => gen_jpeg(rng, target),
        "doc" => gen_doc(rng, target),
        "xls" => gen_xls(rng, target),
        "zip" => gen_zip(rng, target),
        "pdf" => gen_pdf(rng, target),
        "exe" => gen_exe(rng, target),
        "avi" => gen_avi(rng, target),
        "mov" => gen_isobmff(rng, target, true),
        "mp4" => gen_isobmff(rng, target, false),
        "html" | "txt" | "mbox" | "txt16" => gen_text(rng, target, ty),
        _ => return None,
    })
}

// -------------------------------------------------------------- DFRWS

struct Frag {
    file: String,
    /// Byte range of the file.
    file_off: u64,
    /// Image sector where it goes and the sectors it spans.
    sector: u64,
    sectors: u64,
}

/// Places files (by fragments) into a random image; returns the truth.
fn lay_out(
    path: &Path,
    size: u64,
    seed: u64,
    files: &BTreeMap<String, Vec<u8>>,
    frags: &[Frag],
    specials: &[(u64, [u8; 2])],
) -> Result<Vec<Truth>> {
    let mut img = Rng::new(seed).noise(size as usize);
    let mut covered: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for f in frags {
        let Some(d) = files.get(&f.file) else {
            continue;
        };
        let s = (f.file_off as usize).min(d.len());
        let e = ((f.file_off + f.sectors * 512) as usize).min(d.len());
        let at = (f.sector * 512) as usize;
        if s < e && at + (e - s) <= img.len() {
            img[at..at + (e - s)].copy_from_slice(&d[s..e]);
            covered
                .entry(&f.file)
                .or_default()
                .push((s as u64, e as u64));
        }
        *count.entry(&f.file).or_default() += usize::from(s < e);
    }
    for (sec, b) in specials {
        let at = (*sec * 512) as usize;
        img[at..at + 2].copy_from_slice(b);
    }
    std::fs::write(path, &img)?;
    let mut truth = Vec::new();
    for (name, d) in files {
        let mut r = covered.get(name.as_str()).cloned().unwrap_or_default();
        r.sort();
        let mut end = 0;
        for (s, e) in r {
            if s <= end {
                end = end.max(e);
            }
        }
        if end < d.len() as u64 {
            continue; // a fragment is missing: not a complete file
        }
        truth.push(Truth {
            name: name.clone(),
            md5: md5_hex(d),
            contiguous: count.get(name.as_str()).copied().unwrap_or(0) == 1,
        });
    }
    Ok(truth)
}

fn dfrws2006(base: &Path, key: &Path) -> Result<Image> {
    let md = std::fs::read_to_string(key)?;
    // File list: name | md5 | size.
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for l in md.lines() {
        let f: Vec<&str> = l.split('|').map(str::trim).collect();
        if f.len() >= 3
            && f[0].contains('.')
            && let Ok(n) = f[2].parse::<usize>()
        {
            sizes.insert(f[0].to_string(), n);
        }
    }
    // Layout rows: start | end | scenario | description.
    let mut frags = Vec::new();
    let mut specials = Vec::new();
    let mut next_off: BTreeMap<String, u64> = BTreeMap::new();
    for l in md.lines() {
        let f: Vec<&str> = l.split('|').map(str::trim).collect();
        if f.len() < 4 {
            continue;
        }
        let (Ok(s), Ok(e)) = (f[0].parse::<u64>(), f[1].parse::<u64>()) else {
            continue;
        };
        let (sc, desc) = (f[2], f[3].to_ascii_lowercase());
        if desc.starts_with("random") {
            continue;
        }
        if desc.contains("sector with") {
            let b = if desc.contains("ffd8") {
                [0xFF, 0xD8]
            } else {
                [0xFF, 0xD9]
            };
            specials.push((s, b));
            continue;
        }
        let ext = if desc.contains("html") {
            "html"
        } else if desc.contains("excel") {
            "xls"
        } else if desc.contains("jp") {
            "jpg"
        } else if desc.contains("word") || desc.contains("office") {
            "doc"
        } else if desc.contains("zip") {
            "zip"
        } else if desc.contains("text") {
            "txt"
        } else {
            continue;
        };
        let num = desc
            .split(|c: char| !c.is_ascii_alphanumeric())
            .skip(1)
            .find(|w| w.len() == 1 && w.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or("");
        let mut name = format!("{sc}{num}.{ext}");
        if !sizes.contains_key(&name) {
            name = format!("{sc}.{ext}");
        }
        if !sizes.contains_key(&name) {
            continue;
        }
        let off = next_off.entry(name.clone()).or_default();
        frags.push(Frag {
            file: name,
            file_off: *off,
            sector: s,
            sectors: e - s + 1,
        });
        *off += (e - s + 1) * 512;
    }
    let mut rng = Rng::new(2006);
    let mut files = BTreeMap::new();
    for (name, &size) in &sizes {
        let ext = name.rsplit('.').next().unwrap_or("");
        let ty = if name == "1c.txt" { "txt16" } else { ext };
        if let Some(d) = gen_file(&mut rng, ty, size) {
            files.insert(name.clone(), d);
        }
    }
    let path = base.join("dfrws2006-synthetic.raw");
    let truth = lay_out(&path, 49_999_872, 2006, &files, &frags, &specials)?;
    let contiguous = truth.iter().filter(|t| t.contiguous).count();
    Ok(Image {
        name: "DFRWS 2006 layout, our files (48 MiB)".into(),
        path,
        note: format!(
            "{} files (html, txt, doc, xls, jpg, zip) in the 22 scenarios of the answer key, {contiguous} of them contiguous",
            truth.len()
        ),
        truth,
    })
}

fn dfrws2007(base: &Path, key: &Path) -> Result<Image> {
    let layout = std::fs::read_to_string(key.join("challenge-layout.txt"))?;
    let info = std::fs::read_to_string(key.join("challenge-file-info.txt"))?;
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for l in info.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() >= 4
            && let Ok(n) = f[f.len() - 2].trim().parse::<usize>()
        {
            sizes.insert(f[0].trim().to_string(), n);
        }
    }
    let range = |s: &str| -> Option<(u64, u64)> {
        let (a, b) = s.trim().split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let mut frags = Vec::new();
    let mut max_sector = 0;
    for l in layout.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() < 6 {
            continue;
        }
        let (Some((fa, fb)), Some((ia, ib))) = (range(f[3]), range(f[4])) else {
            continue;
        };
        max_sector = max_sector.max(ib + 1);
        let _ = fb;
        frags.push(Frag {
            file: f[0].trim().to_string(),
            file_off: fa * 512,
            sector: ia,
            sectors: ib - ia + 1,
        });
    }
    let placed: BTreeSet<&str> = frags.iter().map(|f| f.file.as_str()).collect();
    let mut rng = Rng::new(2007);
    let mut files = BTreeMap::new();
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    for name in placed {
        let Some(&size) = sizes.get(name) else {
            continue;
        };
        let ext = name.rsplit('.').next().unwrap_or("");
        match gen_file(&mut rng, ext, size) {
            Some(d) => {
                files.insert(name.to_string(), d);
            }
            None => {
                skipped.insert(ext.to_string());
            }
        }
    }
    let path = base.join("dfrws2007-synthetic.raw");
    let truth = lay_out(&path, (max_sector + 2048) * 512, 2007, &files, &frags, &[])?;
    let contiguous = truth.iter().filter(|t| t.contiguous).count();
    Ok(Image {
        name: "DFRWS 2007 layout, our files (324 MiB)".into(),
        path,
        note: format!(
            "{} complete files (jpg, doc, pdf, zip, exe, avi, mov, mp4, mbox) placed by the answer key, {contiguous} contiguous; {} left as random data (no generator)",
            truth.len(),
            skipped.into_iter().collect::<Vec<_>>().join(", ")
        ),
        truth,
    })
}

// ------------------------------------------------------------ running

fn md5_tree(dir: &Path, skip: &[&str]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if !skip.iter().any(|s| p.file_name().is_some_and(|n| n == *s)) {
                out.push(md5_hex(&std::fs::read(&p)?));
            }
        }
    }
    Ok(out)
}

fn run_tool(tool: &str, trawl: &Path, conf: &Path, img: &Path, out: &Path) -> Result<Outcome> {
    let _ = std::fs::remove_dir_all(out);
    let t = std::time::Instant::now();
    let st = match tool {
        "trawl" | "trawl --carve-types all" => Command::new(trawl)
            .args([
                "scan",
                img.to_str().unwrap(),
                "--analyses",
                "carve",
                "--out",
            ])
            .arg(out)
            .args(if tool == "trawl" {
                &[][..]
            } else {
                &["--carve-types", "all"][..]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?,
        "foremost" => Command::new("foremost")
            .args(["-Q", "-t", "all", "-i", img.to_str().unwrap(), "-o"])
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?,
        _ => Command::new("scalpel")
            .args([
                "-c",
                conf.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                img.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?,
    };
    let secs = t.elapsed().as_secs_f64();
    let is_trawl = tool.starts_with("trawl");
    if !st.success() && is_trawl {
        bail!("{tool} failed on {}", img.display());
    }
    let files = if is_trawl {
        let text = std::fs::read_to_string(out.join("carved/manifest.csv")).unwrap_or_default();
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f.len() == 7).then(|| (f[3].to_string(), f[5] == "true"))
            })
            .collect()
    } else {
        md5_tree(out, &["audit.txt"])?
            .into_iter()
            .map(|m| (m, false))
            .collect()
    };
    let _ = std::fs::remove_dir_all(out);
    Ok(Outcome { files, secs })
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.1}% ({a}/{b})", 100.0 * a as f64 / b as f64)
    }
}

fn accuracy(
    trawl: &Path,
    peers: &[&str],
    conf: &Path,
    base: &Path,
    images: &[Image],
) -> Result<()> {
    println!("## Recall and precision (byte-identical by MD5)\n");
    for img in images {
        println!("- **{}**: {}", img.name, img.note);
    }
    println!(
        "\n| image | tool | recall (all truth) | recall (contiguous) | precision (all outputs) | precision (validated) | wall (s) |\n|---|---|---:|---:|---:|---:|---:|"
    );
    // trawl's defaults, then with the opt-in types (HTML) as well.
    let mut tools = vec!["trawl", "trawl --carve-types all"];
    tools.extend_from_slice(peers);
    let mut missed = Vec::new();
    for img in images {
        // The ground truth next to the image, for inspection.
        let tj: Vec<serde_json::Value> = img
            .truth
            .iter()
            .map(|t| serde_json::json!({"name": t.name, "md5": t.md5, "contiguous": t.contiguous}))
            .collect();
        std::fs::write(
            img.path.with_extension("truth.json"),
            serde_json::to_string_pretty(&tj)?,
        )?;
        let truth: BTreeSet<&str> = img.truth.iter().map(|t| t.md5.as_str()).collect();
        for tool in &tools {
            let o = run_tool(
                tool,
                trawl,
                conf,
                &img.path,
                &base.join(format!("out-{}", tool.len())),
            )?;
            let got: BTreeSet<&str> = o.files.iter().map(|(m, _)| m.as_str()).collect();
            let rec = img
                .truth
                .iter()
                .filter(|t| got.contains(t.md5.as_str()))
                .count();
            let cont: Vec<&Truth> = img.truth.iter().filter(|t| t.contiguous).collect();
            let rec_c = cont.iter().filter(|t| got.contains(t.md5.as_str())).count();
            let good = o
                .files
                .iter()
                .filter(|(m, _)| truth.contains(m.as_str()))
                .count();
            let val: Vec<&(String, bool)> = o.files.iter().filter(|(_, v)| *v).collect();
            let val_good = val
                .iter()
                .filter(|(m, _)| truth.contains(m.as_str()))
                .count();
            if *tool == "trawl" {
                for t in cont.iter().filter(|t| !got.contains(t.md5.as_str())) {
                    missed.push(format!("{}: {}", img.name, t.name));
                }
            }
            println!(
                "| {} | {tool} | {} | {} | {} | {} | {:.2} |",
                img.name,
                pct(rec, img.truth.len()),
                pct(rec_c, cont.len()),
                pct(good, o.files.len()),
                if tool.starts_with("trawl") {
                    pct(val_good, val.len())
                } else {
                    "n/a".into()
                },
                o.secs
            );
        }
    }
    println!();
    if !missed.is_empty() {
        println!("Contiguous files trawl did not recover byte-identical:");
        for m in &missed {
            println!("- {m}");
        }
        println!();
    }
    Ok(())
}

fn throughput(
    trawl: &Path,
    peers: &[&str],
    conf: &Path,
    base: &Path,
    size: u64,
    runs: usize,
) -> Result<()> {
    let name = format!("bulk-{size}");
    let img = base.join(format!("{name}.raw"));
    if std::fs::metadata(&img).map(|m| m.len()).ok() != Some(size) {
        trawl_fixtures::write(&trawl_fixtures::Config::bulk(size, 5), base, &name)?;
    }
    let out = |t: &str| base.join(format!("tp-{t}")).display().to_string();
    let (i, t) = (img.display().to_string(), trawl.display().to_string());
    let mut c = vec![
        Contender::new(
            "trawl scan --analyses carve (all types)",
            &[
                "sh",
                "-c",
                &format!(
                    "{t} scan {i} --analyses carve --out {o} >/dev/null",
                    o = out("trawl")
                ),
            ],
        )
        .prep(&trawl_benches::fresh_output(&out("trawl"), &i)),
    ];
    if peers.contains(&"foremost") {
        c.push(
            Contender::new(
                "foremost -t all",
                &[
                    "sh",
                    "-c",
                    &format!(
                        "foremost -Q -t all -i {i} -o {o} >/dev/null",
                        o = out("foremost")
                    ),
                ],
            )
            .prep(&trawl_benches::fresh_output(&out("foremost"), &i)),
        );
    }
    if peers.contains(&"scalpel") {
        c.push(
            Contender::new(
                "scalpel (stock lines with footers: gif jpg png mpg doc htm pdf zip)",
                &[
                    "sh",
                    "-c",
                    &format!(
                        "scalpel -c {} -o {o} {i} >/dev/null 2>&1",
                        conf.display(),
                        o = out("scalpel")
                    ),
                ],
            )
            .prep(&trawl_benches::fresh_output_deleting(&out("scalpel"), &i)),
        );
    }
    race(&mut c, runs);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "## Throughput\n\nInput: {} ({size} bytes, `Config::bulk({size}, 5)`: planted files of the 25 types replicated with noise between), page cache warm, {runs} runs each after a warm-up, alternating; {cores} cores. Each command writes its carved files into an empty folder (the previous run's output is moved aside, not deleted, except scalpel's gigabytes; see `fresh_output` in benches/src/lib.rs).\n",
        img.display()
    );
    println!("{}", table(&c, size));
    let w = |p: &str| {
        c.iter()
            .find(|x| x.name.starts_with(p))
            .map(|x| x.median_wall())
    };
    if let (Some(tw), Some(fw)) = (w("trawl"), w("foremost")) {
        println!(
            "trawl vs foremost (all types): {:.2}x (target >= 2)",
            fw / tw
        );
    }
    if let (Some(tw), Some(sw)) = (w("trawl"), w("scalpel")) {
        println!("trawl vs scalpel: {:.2}x", sw / tw);
    }
    for t in ["trawl", "foremost", "scalpel"] {
        trawl_benches::clean_outputs(&out(t));
    }
    Ok(())
}
