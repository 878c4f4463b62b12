//! Issue 16: trawl's YARA answer equals yara-x run directly, on the whole
//! image and on every carved file, for generated rule sets that no fixture
//! was tuned to: patterns drawn from the bytes of the carved files and of
//! the image, conditions drawn from `$a`, `$a at N`, `$a in (A..B)`, counts,
//! `not $a`, `filesize`, integer reads, `any/all/none/N of`, other rules,
//! combined with `and`, `or` and `not`; several shard sizes. Seeded and
//! reproducible: `TRAWL_YARA_SEED`, `TRAWL_YARA_RULES` (large set) and
//! `TRAWL_YARA_SETS` (small sets) change the seed and the sizes for longer
//! runs by hand; `TRAWL_YARA_RULES_DIR` keeps the generated rules
//! (`large/`, `small/setN/`) to rerun a failing case.

use crate::common::*;
use crate::yara::{Matches, check_carved_files, diff, rule_files, trawl_matches, yarax_whole};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::path::Path;

/// A carved file: image offset and length.
#[derive(Clone, Copy)]
struct Carved {
    offset: u64,
    length: u64,
}

/// What rules are drawn from.
struct Material<'a> {
    image: &'a [u8],
    carved: Vec<Carved>,
}

/// A drawn pattern: its declaration and where its bytes were taken (image
/// offset; offset inside the carved file when drawn from one).
struct Pat {
    decl: String,
    image_offset: u64,
    file_offset: Option<u64>,
    file_len: Option<u64>,
}

fn hex(bytes: &[u8], rng: &mut ChaCha8Rng) -> String {
    let mut s = String::from("{ ");
    for (i, b) in bytes.iter().enumerate() {
        // A wildcard inside the pattern now and then (never at its ends).
        if i > 0 && i + 1 < bytes.len() && bytes.len() >= 5 && rng.gen_ratio(1, 8) {
            s.push_str("?? ");
        } else {
            let _ = write!(s, "{b:02X} ");
        }
    }
    s.push('}');
    s
}

fn text(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(*b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    s
}

fn regexp(bytes: &[u8], rng: &mut ChaCha8Rng) -> String {
    let mut s = String::from("/");
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i + 1 < bytes.len() && bytes.len() >= 5 && rng.gen_ratio(1, 6) {
            s.push('.');
        } else if b.is_ascii_alphanumeric() {
            s.push(*b as char);
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s.push('/');
    s
}

impl Material<'_> {
    /// Bytes to draw a pattern from, with where they were taken; runs of
    /// one byte (zero fill) are drawn again: they would match millions of
    /// times and test nothing more.
    fn draw(&self, rng: &mut ChaCha8Rng) -> (Vec<u8>, u64, Option<u64>, Option<u64>) {
        loop {
            let len = rng.gen_range(3..=10usize);
            let (image_offset, file_offset, file_len) =
                if !self.carved.is_empty() && rng.gen_ratio(2, 3) {
                    let c = self.carved[rng.gen_range(0..self.carved.len())];
                    let max = c.length.saturating_sub(len as u64);
                    let rel = match rng.gen_range(0..4) {
                        0 | 1 => 0,
                        2 => max,
                        _ => rng.gen_range(0..=max),
                    };
                    (c.offset + rel, Some(rel), Some(c.length))
                } else {
                    let off = rng.gen_range(0..self.image.len() - len) as u64;
                    (off, None, None)
                };
            let at = image_offset as usize;
            let bytes = &self.image[at..(at + len).min(self.image.len())];
            let mut distinct = bytes.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            if bytes.len() >= 3 && distinct.len() * 2 > bytes.len() {
                // Two-byte patterns now and then (many occurrences), from
                // the start of a carved file only (magic numbers).
                let magic = bytes[0] != bytes[1] && bytes[0] != 0 && bytes[1] != 0;
                let bytes = if file_offset == Some(0) && magic && rng.gen_ratio(1, 8) {
                    bytes[..2].to_vec()
                } else {
                    bytes.to_vec()
                };
                return (bytes, image_offset, file_offset, file_len);
            }
        }
    }

    fn pattern(&self, id: &str, rng: &mut ChaCha8Rng) -> Pat {
        let (bytes, image_offset, file_offset, file_len) = self.draw(rng);
        let bytes = bytes.as_slice();
        let printable = bytes.iter().all(|b| (0x20..0x7f).contains(b));
        let body = match rng.gen_range(0..10) {
            0..=3 => hex(bytes, rng),
            4..=6 => text(bytes),
            7 if printable => format!("{} nocase", text(bytes)),
            8 if printable => format!("{} fullword", text(bytes)),
            8 => format!("{} xor(0-3)", text(bytes)),
            _ => regexp(bytes, rng),
        };
        let private = if rng.gen_ratio(1, 12) { " private" } else { "" };
        Pat {
            decl: format!("{id} = {body}{private}"),
            image_offset,
            file_offset,
            file_len,
        }
    }

    /// An integer test on the data read at a fixed offset, with a value
    /// that the image or a carved file has there.
    fn read_test(&self, rng: &mut ChaCha8Rng) -> String {
        let (fun, n) = [
            ("uint8", 1),
            ("uint16", 2),
            ("uint16be", 2),
            ("uint32", 4),
            ("uint32be", 4),
        ][rng.gen_range(0..5)];
        let off = if rng.gen_ratio(3, 4) {
            0
        } else {
            rng.gen_range(0..64u64)
        };
        let base = if !self.carved.is_empty() && rng.gen_ratio(3, 4) {
            self.carved[rng.gen_range(0..self.carved.len())].offset
        } else {
            0
        };
        let at = (base + off) as usize;
        let b = &self.image[at..at + n];
        let v: u64 = if fun.ends_with("be") {
            b.iter().fold(0, |a, x| (a << 8) | u64::from(*x))
        } else {
            b.iter().rev().fold(0, |a, x| (a << 8) | u64::from(*x))
        };
        let op = ["==", "==", "!="][rng.gen_range(0..3)];
        format!("{fun}({off}) {op} {v:#x}")
    }

    fn filesize_test(&self, rng: &mut ChaCha8Rng) -> String {
        let n = if !self.carved.is_empty() && rng.gen_ratio(2, 3) {
            let c = self.carved[rng.gen_range(0..self.carved.len())];
            (c.length as i64 + rng.gen_range(-2..=2i64)).max(0) as u64
        } else if rng.gen_bool(0.5) {
            self.image.len() as u64 + rng.gen_range(0..2)
        } else {
            rng.gen_range(0..200_000)
        };
        let op = ["<", ">", "<=", ">=", "=="][rng.gen_range(0..5)];
        format!("filesize {op} {n}")
    }
}

/// A test on one pattern.
fn pattern_atom(p: &Pat, id: &str, rng: &mut ChaCha8Rng) -> String {
    let name = &id[1..];
    match rng.gen_range(0..9) {
        0 | 1 => id.to_string(),
        2 => {
            // `at`: where the bytes were taken, in the file or the image.
            let at = match (p.file_offset, rng.gen_range(0..3)) {
                (Some(rel), 0) => rel,
                (_, 1) => p.image_offset,
                _ => 0,
            };
            format!("{id} at {at}")
        }
        3 => {
            let (lo, hi) = match (p.file_offset, rng.gen_range(0..3)) {
                (Some(rel), 0) => (rel.saturating_sub(100), rel + 100),
                (_, 1) => (
                    p.image_offset.saturating_sub(rng.gen_range(0..5000)),
                    p.image_offset + rng.gen_range(0..5000),
                ),
                _ => (0, p.file_len.unwrap_or(4096).min(1 << 20)),
            };
            format!("{id} in ({lo}..{hi})")
        }
        4 => {
            let op = [">", "==", ">=", "<"][rng.gen_range(0..4)];
            format!("#{name} {op} {}", rng.gen_range(0..4))
        }
        5 => format!("not {id}"),
        6 => format!("#{name} in (0..{}) > 0", rng.gen_range(1..100_000)),
        7 => format!("@{name}[1] < {}", rng.gen_range(0..(1u64 << 23))),
        _ => format!("!{name}[1] == {}", rng.gen_range(2..11)),
    }
}

/// One rule; `earlier` are the rules before it in its file (which it may
/// reference).
fn rule(m: &Material, name: &str, earlier: &[String], rng: &mut ChaCha8Rng) -> String {
    let n = if rng.gen_ratio(1, 10) {
        0
    } else {
        rng.gen_range(1..=4)
    };
    let ids: Vec<String> = (0..n)
        .map(|i| {
            if rng.gen_ratio(1, 5) {
                format!("$g{i}")
            } else {
                format!("$p{i}")
            }
        })
        .collect();
    let pats: Vec<Pat> = ids.iter().map(|id| m.pattern(id, rng)).collect();
    let mut used = vec![false; n];
    let mut atom = |rng: &mut ChaCha8Rng, used: &mut Vec<bool>| -> String {
        let k = rng.gen_range(0..10);
        if n > 0 && k < 5 {
            let i = rng.gen_range(0..n);
            used[i] = true;
            return pattern_atom(&pats[i], &ids[i], rng);
        }
        match k {
            5 if n > 0 => {
                used.iter_mut().for_each(|u| *u = true);
                [
                    "any of them",
                    "all of them",
                    "none of them",
                    "2 of them",
                    "0 of them",
                    "50% of them",
                ][rng.gen_range(0..6)]
                .to_string()
            }
            6 if n > 0 && ids.iter().any(|i| i.starts_with("$g")) => {
                for (i, id) in ids.iter().enumerate() {
                    used[i] |= id.starts_with("$g");
                }
                let q = ["any", "all", "1", "none"][rng.gen_range(0..4)];
                if rng.gen_bool(0.5) {
                    format!("{q} of ($g*)")
                } else {
                    format!("for {q} of ($g*) : (# >= 1 and @[1] > 0)")
                }
            }
            7 => m.filesize_test(rng),
            8 if !earlier.is_empty() && rng.gen_ratio(1, 3) => {
                earlier[rng.gen_range(0..earlier.len())].clone()
            }
            _ => m.read_test(rng),
        }
    };
    fn combine(
        depth: u32,
        rng: &mut ChaCha8Rng,
        used: &mut Vec<bool>,
        atom: &mut dyn FnMut(&mut ChaCha8Rng, &mut Vec<bool>) -> String,
    ) -> String {
        if depth == 0 || rng.gen_ratio(2, 5) {
            return atom(rng, used);
        }
        let a = combine(depth - 1, rng, used, atom);
        let b = combine(depth - 1, rng, used, atom);
        match rng.gen_range(0..5) {
            0 | 1 => format!("({a} and {b})"),
            2 | 3 => format!("({a} or {b})"),
            _ => format!("not ({a} and {b})"),
        }
    }
    let mut cond = combine(rng.gen_range(0..4), rng, &mut used, &mut atom);
    // yara-x refuses a pattern the condition leaves unused.
    for i in 0..n {
        if !used[i] {
            let a = pattern_atom(&pats[i], &ids[i], rng);
            cond = if rng.gen_bool(0.5) {
                format!("{cond} or {a}")
            } else {
                format!("({cond}) and {a}")
            };
        }
    }
    let mut r = String::new();
    if rng.gen_ratio(1, 15) {
        r.push_str("private ");
    }
    let _ = write!(r, "rule {name}");
    if rng.gen_ratio(1, 4) {
        r.push_str(" : gen");
    }
    let _ = write!(r, " {{\n  meta:\n    n = \"{name}\"\n");
    if n > 0 {
        r.push_str("  strings:\n");
        for p in &pats {
            let _ = writeln!(r, "    {}", p.decl);
        }
    }
    let _ = write!(r, "  condition:\n    {cond}\n}}\n");
    r
}

/// A generated rule file of `n` rules named `g{file}_{i}`.
fn rule_file(m: &Material, file: usize, n: usize, rng: &mut ChaCha8Rng) -> String {
    let mut src = String::new();
    if rng.gen_ratio(1, 3) {
        src.push_str("import \"pe\"\n");
    }
    let mut earlier = Vec::new();
    for r in 0..n {
        let name = format!("g{file}_{r}");
        src.push_str(&rule(m, &name, &earlier, rng));
        earlier.push(name);
    }
    src
}

/// Writes `files` rule files of `per_file` generated rules under `dir`.
fn generate(m: &Material, dir: &Path, seed: u64, files: usize, per_file: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    std::fs::create_dir_all(dir).unwrap();
    for f in 0..files {
        let src = rule_file(m, f, per_file, &mut rng);
        std::fs::write(dir.join(format!("gen{f}.yar")), src).unwrap();
    }
}

fn carved_of(out: &Path) -> Vec<Carved> {
    let csv = std::fs::read_to_string(out.join("carved/manifest.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Carved {
                offset: f[0].parse().unwrap(),
                length: f[1].parse().unwrap(),
            }
        })
        .collect()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn generated_rules_equal_yara_x_on_the_image_and_every_carved_file() {
    let fx = small_fixture();
    let image = std::fs::read(&fx.image).unwrap();
    let first = tempfile::tempdir().unwrap();
    run_ok(&[
        "scan",
        fx.image.to_str().unwrap(),
        "--out",
        first.path().to_str().unwrap(),
        "--analyses",
        "carve",
    ]);
    let m = Material {
        image: &image,
        carved: carved_of(first.path()),
    };
    assert!(m.carved.len() > 10, "only {} carved files", m.carved.len());
    let seed = env_or("TRAWL_YARA_SEED", 16);
    let rules = env_or("TRAWL_YARA_RULES", 2400) as usize;
    let files = 8;
    let dir = tempfile::tempdir().unwrap();
    // TRAWL_YARA_RULES_DIR keeps the generated rules there (to rerun by
    // hand).
    let rules_dir = std::env::var_os("TRAWL_YARA_RULES_DIR")
        .map_or_else(|| dir.path().to_path_buf(), std::path::PathBuf::from)
        .join("large");
    let per_file = rules.div_ceil(files);
    let rules = per_file * files;
    generate(&m, &rules_dir, seed, files, per_file);
    let rule_files = rule_files(&rules_dir);
    let reference = yarax_whole(&rule_files, &fx.image, "image");
    let compiled = {
        let sources: Vec<trawl_core::spec::RuleSource> = rule_files
            .iter()
            .map(|(n, p)| trawl_core::spec::RuleSource {
                name: n.clone(),
                text: std::fs::read_to_string(p).unwrap(),
            })
            .collect();
        trawl_analyzers::yara::compile_cached(&sources, false)
            .unwrap()
            .rule_count()
    };
    // The generator writes rules yara-x takes (a few may be refused: both
    // sides leave them out alike).
    assert!(
        compiled * 10 >= rules * 9,
        "yara-x compiled only {compiled} of {rules} generated rules (seed {seed})"
    );
    let mut carved_pairs = 0usize;
    let mut carved_files = 0usize;
    for shard in ["64KiB", "1MiB", "4MiB"] {
        let out = tempfile::tempdir().unwrap();
        run_ok(&[
            "scan",
            fx.image.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--analyses",
            "carve,yara",
            "--rules",
            rules_dir.to_str().unwrap(),
            "--shard-size",
            shard,
        ]);
        let got = trawl_matches(out.path());
        let image_got: Matches = got
            .iter()
            .filter(|((t, _, _), _)| t == "image")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert!(
            image_got == reference,
            "seed {seed}, shard {shard}: trawl vs yara-x on the whole image:\n{}",
            diff(&image_got, &reference)
        );
        let mut pairs = 0;
        carved_files = check_carved_files(
            &format!("seed {seed}, shard {shard}"),
            out.path(),
            &rule_files,
            &got,
            |_, _, _, reference| pairs += reference.len(),
        );
        carved_pairs = pairs;
    }
    println!(
        "seed {seed}: {rules} generated rules ({compiled} compiled by yara-x) in {files} files; \
         image: {} matching rules; {carved_files} carved files, {carved_pairs} matching (rule, carved file) pairs; \
         equal to yara-x at shard sizes 64KiB, 1MiB, 4MiB",
        reference.len()
    );
    assert!(
        !reference.is_empty() && carved_pairs > 0,
        "the generated rules match nothing: the comparison would prove nothing"
    );
}

/// Small generated rule sets (one to three rules), each its own scan at a
/// shard size drawn with it: with few rules, every rule of a set is often
/// decided for a carved file by the shard's occurrences and the file's
/// facts, and the file is not scanned — that shortcut must give exactly
/// what yara-x gives on the file (and the image answer what yara-x gives
/// on the image).
#[test]
fn small_generated_rule_sets_equal_yara_x_where_carved_files_are_not_scanned() {
    let fx = small_fixture();
    let image = std::fs::read(&fx.image).unwrap();
    let first = tempfile::tempdir().unwrap();
    run_ok(&[
        "scan",
        fx.image.to_str().unwrap(),
        "--out",
        first.path().to_str().unwrap(),
        "--analyses",
        "carve",
    ]);
    let m = Material {
        image: &image,
        carved: carved_of(first.path()),
    };
    let seed = env_or("TRAWL_YARA_SEED", 16);
    let sets = env_or("TRAWL_YARA_SETS", 360) as usize;
    let dir = tempfile::tempdir().unwrap();
    let root = std::env::var_os("TRAWL_YARA_RULES_DIR")
        .map_or_else(|| dir.path().to_path_buf(), std::path::PathBuf::from)
        .join("small");
    // (rules, carved files known without a scan, carved files, image matches)
    let totals = std::sync::Mutex::new((0usize, 0usize, 0usize, 0usize));
    let check_set = |i: usize| {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        let n = rng.gen_range(1..=3);
        let rules_dir = root.join(format!("set{i}"));
        std::fs::create_dir_all(&rules_dir).unwrap();
        std::fs::write(rules_dir.join("set.yar"), rule_file(&m, i, n, &mut rng)).unwrap();
        let shard = ["64KiB", "256KiB", "1MiB", "8MiB"][rng.gen_range(0..4)];
        let out = tempfile::tempdir().unwrap();
        run_ok(&[
            "scan",
            fx.image.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--analyses",
            "carve,yara",
            "--rules",
            rules_dir.to_str().unwrap(),
            "--shard-size",
            shard,
        ]);
        let files = rule_files(&rules_dir);
        let got = trawl_matches(out.path());
        let image_got: Matches = got
            .iter()
            .filter(|((t, _, _), _)| t == "image")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let reference = yarax_whole(&files, &fx.image, "image");
        assert!(
            image_got == reference,
            "seed {seed}, set {i} ({}), shard {shard}: trawl vs yara-x on the whole image:\n{}",
            rules_dir.display(),
            diff(&image_got, &reference)
        );
        let carved = check_carved_files(
            &format!(
                "seed {seed}, set {i} ({}), shard {shard}",
                rules_dir.display()
            ),
            out.path(),
            &files,
            &got,
            |_, _, _, _| {},
        );
        let skipped = report(out.path())["stats"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["scanner"] == "yara-carved")
            .map(|s| s["skipped_bytes"].as_u64().unwrap_or(0))
            .sum::<u64>();
        let mut t = totals.lock().unwrap();
        t.0 += n;
        t.1 += usize::from(skipped > 0);
        t.2 += carved;
        t.3 += reference.len();
    };
    // Two at a time (the scans are short; yara-x compiles in the test too).
    std::thread::scope(|s| {
        for part in 0..2 {
            let check_set = &check_set;
            s.spawn(move || {
                for i in (part..sets).step_by(2) {
                    check_set(i);
                }
            });
        }
    });
    let (rules, sets_skipping, carved, image_matches) = *totals.lock().unwrap();
    println!(
        "seed {seed}: {sets} rule sets, {rules} generated rules; {carved} carved files checked, \
         {image_matches} image matches; in {sets_skipping} sets some carved files were known without a scan; \
         all equal to yara-x"
    );
    assert!(
        sets_skipping * 6 >= sets,
        "the shortcut was taken in only {sets_skipping} of {sets} sets: the comparison would not test it"
    );
}

/// The case: a rule whose only pattern is anchored at 0 matches the
/// carved files that start with it, and not the image (yara-x reports no
/// occurrence of an anchored pattern elsewhere than at its anchor).
#[test]
fn a_pattern_anchored_at_zero_matches_the_carved_files_it_starts() {
    let fx = small_fixture();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pdf.yar"),
        "rule pdf_at_start { strings: $h = \"%PDF-\" condition: $h at 0 }\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    run_ok(&[
        "scan",
        fx.image.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "carve,yara",
        "--rules",
        dir.path().to_str().unwrap(),
        "--shard-size",
        "1MiB",
    ]);
    let got = trawl_matches(out.path());
    let csv = std::fs::read_to_string(out.path().join("carved/manifest.csv")).unwrap();
    let pdfs: Vec<String> = csv
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2) == Some("pdf"))
        .map(|l| l.split(',').nth(6).unwrap().to_string())
        .collect();
    assert!(!pdfs.is_empty(), "no carved PDF");
    for p in &pdfs {
        let key = (p.clone(), "pdf.yar".to_string(), "pdf_at_start".to_string());
        assert_eq!(
            got.get(&key).map(|s| s.iter().cloned().collect::<Vec<_>>()),
            Some(vec![("$h".to_string(), 0)]),
            "{p}: {got:?}"
        );
    }
    let files = rule_files(dir.path());
    check_carved_files("pdf_at_start", out.path(), &files, &got, |_, _, _, _| {});
}
