//! Issue: YARA with yara-x. trawl's answer for the image equals `yara -s`
//! for the image as one file, whatever the shard size; carved files are
//! scanned as files; bad rules are refused with file, line and column and
//! the rest of the set still runs.

use crate::common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// trawl's YARA matches: (target, namespace, rule) → sorted (string, offset).
pub type Matches = BTreeMap<(String, String, String), BTreeSet<(String, u64)>>;

pub fn trawl_matches(out: &Path) -> Matches {
    let mut m = Matches::new();
    let text = std::fs::read_to_string(out.join("yara/matches.jsonl")).unwrap_or_default();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = (
            v["target"].as_str().unwrap().to_string(),
            v["namespace"].as_str().unwrap().to_string(),
            v["rule"].as_str().unwrap().to_string(),
        );
        let strings = v["strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["offset"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(
            m.insert(key.clone(), strings).is_none(),
            "{key:?} reported twice"
        );
    }
    m
}

fn scan_yara(image: &Path, rules: &Path, extra: &[&str]) -> (tempfile::TempDir, Matches, Value) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "scan",
        image.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "yara",
        "--rules",
        rules.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = trawl_matches(out.path());
    let r = report(out.path());
    (out, m, r)
}

/// Rule files under `dir`, named as trawl names them (relative path).
pub fn rule_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.eq_ignore_ascii_case("yar") || x.eq_ignore_ascii_case("yara"))
            {
                v.push((p.strip_prefix(dir).unwrap().display().to_string(), p));
            }
        }
    }
    v.sort();
    v
}

const EXTERNALS: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

fn yara_defines(values: &[(&str, &str)]) -> Vec<String> {
    EXTERNALS
        .iter()
        .map(|k| {
            let v = values
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| *v)
                .unwrap_or("");
            format!("{k}={v}")
        })
        .flat_map(|d| ["-d".to_string(), d])
        .collect()
}

/// The files of `dir` the `yara` CLI compiles (each alone, as trawl does).
pub fn yara_accepted(files: &[(String, PathBuf)]) -> Vec<(String, PathBuf)> {
    files
        .iter()
        .filter(|(_, p)| {
            Command::new("yara")
                .args(yara_defines(&[]))
                .arg("-w")
                .arg(p)
                .arg("/dev/null")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .cloned()
        .collect()
}

/// Runs a `yara -e -s` command on `target` and adds its matches to `m`.
fn parse_yara_output(cmd: &mut Command, target: &Path, target_name: &str, m: &mut Matches) {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "yara failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let mut current: Option<(String, String, String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("0x") {
            let (off, rest) = rest.split_once(':').unwrap();
            let id = rest.split(':').next().unwrap().to_string();
            let off = u64::from_str_radix(off, 16).unwrap();
            if let Some(k) = &current {
                m.get_mut(k).unwrap().insert((id, off));
            }
        } else if let Some(rule) = line.strip_suffix(&format!(" {}", target.display())) {
            let (ns, rule) = rule.rsplit_once(':').unwrap();
            let k = (target_name.to_string(), ns.to_string(), rule.to_string());
            m.insert(k.clone(), BTreeSet::new());
            current = Some(k);
        }
    }
}

/// The accepted files compiled once by `yarac` (each in its own
/// namespace), for many targets with their own external variables.
pub struct CompiledYara {
    _dir: tempfile::TempDir,
    bin: PathBuf,
}

impl CompiledYara {
    pub fn new(files: &[(String, PathBuf)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("rules.yarc");
        let mut cmd = Command::new("yarac");
        cmd.args(yara_defines(&[])).arg("-w");
        for (ns, p) in files {
            cmd.arg(format!("{ns}:{}", p.display()));
        }
        let o = cmd.arg(&bin).output().unwrap();
        assert!(
            o.status.success(),
            "yarac: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Self { _dir: dir, bin }
    }

    pub fn scan(&self, target: &Path, target_name: &str, defines: &[(&str, &str)]) -> Matches {
        let mut m = Matches::new();
        let mut cmd = Command::new("yara");
        cmd.arg("-C")
            .arg(&self.bin)
            .args(yara_defines(defines))
            .args(["-e", "-s", "-w"])
            .arg(target);
        parse_yara_output(&mut cmd, target, target_name, &mut m);
        m
    }
}

/// yara-x on the whole target as one file (the reference trawl's sharded
/// answer must equal exactly).
pub fn yarax_whole(files: &[(String, PathBuf)], target: &Path, target_name: &str) -> Matches {
    yarax_file(files, target, target_name, &[])
}

/// yara-x on one file, with external variables.
pub fn yarax_file(
    files: &[(String, PathBuf)],
    target: &Path,
    target_name: &str,
    externals: &[(&str, &str)],
) -> Matches {
    let sources: Vec<trawl_core::spec::RuleSource> = files
        .iter()
        .map(|(n, p)| trawl_core::spec::RuleSource {
            name: n.clone(),
            text: String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned(),
        })
        .collect();
    let rules = trawl_analyzers::yara::compile_cached(&sources, false).unwrap();
    let mut scanner = rules.file_scanner(trawl_analyzers::yara::Limits::default());
    let data = std::fs::read(target).unwrap();
    let (m, _) = rules
        .scan_file(&mut scanner, &data, target_name, 0, externals)
        .unwrap();
    m.into_iter()
        .map(|y| {
            (
                (y.target, y.namespace, y.rule),
                y.strings.into_iter().map(|s| (s.id, s.offset)).collect(),
            )
        })
        .collect()
}

/// Checks trawl's matches `got` on every carved file of the report in
/// `out` against yara-x on the file, with its external variables
/// (filename, filepath, extension, filetype); then calls `each` with the
/// report path, the file, the variables and yara-x's matches. Returns the
/// number of carved files.
pub fn check_carved_files(
    label: &str,
    out: &Path,
    files: &[(String, PathBuf)],
    got: &Matches,
    mut each: impl FnMut(&str, &Path, &[(&str, &str)], &Matches),
) -> usize {
    let csv = std::fs::read_to_string(out.join("carved/manifest.csv")).unwrap();
    let mut carved = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (ty, path) = (f[2], f[6]);
        let file = out.join(path);
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let ext = file
            .extension()
            .map(|e| e.to_string_lossy().to_string())
            .unwrap_or_default();
        let ext_vars = [
            ("filename", name.as_str()),
            ("filepath", path),
            ("extension", ext.as_str()),
            ("filetype", ty),
        ];
        let mine: Matches = got
            .iter()
            .filter(|((t, _, _), _)| t == path)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let reference = yarax_file(files, &file, path, &ext_vars);
        assert!(
            mine == reference,
            "{label}, {path}: trawl vs yara-x on the carved file:\n{}",
            diff(&mine, &reference)
        );
        each(path, &file, &ext_vars, &reference);
        carved += 1;
    }
    carved
}

/// Rules yara-x accepts in `files` (namespace, rule).
pub fn yarax_accepted(files: &[(String, PathBuf)]) -> BTreeSet<(String, String)> {
    let sources: Vec<trawl_core::spec::RuleSource> = files
        .iter()
        .map(|(n, p)| trawl_core::spec::RuleSource {
            name: n.clone(),
            text: String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned(),
        })
        .collect();
    trawl_analyzers::yara::compile_cached(&sources, false)
        .unwrap()
        .rule_names()
        .into_iter()
        .collect()
}

/// A compact description of how two match sets differ.
pub fn diff(got: &Matches, want: &Matches) -> String {
    let mut out = Vec::new();
    for (k, v) in got {
        match want.get(k) {
            None => out.push(format!("only trawl: {k:?} ({} strings)", v.len())),
            Some(w) if w != v => {
                let extra: Vec<_> = v.difference(w).take(5).collect();
                let missing: Vec<_> = w.difference(v).take(5).collect();
                out.push(format!(
                    "{k:?}: {} vs {} strings; only trawl {extra:?}; only yara {missing:?}",
                    v.len(),
                    w.len()
                ));
            }
            _ => {}
        }
    }
    for (k, w) in want {
        if !got.contains_key(k) {
            out.push(format!("only yara: {k:?} ({} strings)", w.len()));
        }
    }
    out.join("\n")
}

pub fn restrict(m: &Matches, both: &BTreeSet<(String, String)>) -> Matches {
    m.iter()
        .filter(|((_, ns, r), _)| both.contains(&(ns.clone(), r.clone())))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Corpus files scanned as images by the comparison: bulk_extractor's test
/// data files (documents, archives, mail, logs) and its RAR samples.
fn corpus_targets(c: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(c.join("bulk-extractor-test-data/tests/Data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && std::fs::metadata(p).unwrap().len() < (2 << 20))
        .collect();
    v.push(c.join("bulk-extractor-test-data/src/tests/jpegs.rar"));
    v.sort();
    // Distinct file names (each gets DIR/<name>/).
    let mut seen = BTreeSet::new();
    v.retain(|p| seen.insert(p.file_name().unwrap().to_owned()));
    v
}

#[test]
fn straddling_string_matches_once_at_the_right_offset() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img.raw");
    let mut data = vec![0x20u8; 3 << 20];
    let needle = b"TRAWL-STRADDLE-NEEDLE";
    // Across the 1 MiB boundary, and once more well inside shard 2.
    let a = (1 << 20) - 7;
    data[a..a + needle.len()].copy_from_slice(needle);
    let b = (2 << 20) + 100;
    data[b..b + needle.len()].copy_from_slice(needle);
    // A fullword string right after the 2 MiB boundary, preceded by a
    // letter before the boundary: no fullword match.
    data[(2 << 20) - 1] = b'x';
    data[2 << 20..(2 << 20) + 4].copy_from_slice(b"WORD");
    std::fs::write(&img, &data).unwrap();
    let rules = dir.path().join("r.yar");
    std::fs::write(
        &rules,
        "rule straddle { strings: $n = \"TRAWL-STRADDLE-NEEDLE\" condition: $n }\n\
         rule counted { strings: $n = \"TRAWL-STRADDLE-NEEDLE\" condition: #n == 2 and @n[1] < 1048576 }\n\
         rule word { strings: $w = \"WORD\" fullword condition: $w }\n",
    )
    .unwrap();
    for shard in ["1MiB", "2MiB", "64MiB"] {
        let (_o, m, _) = scan_yara(&img, &rules, &["--shard-size", shard]);
        let want: BTreeSet<(String, u64)> =
            [("$n".to_string(), a as u64), ("$n".to_string(), b as u64)].into();
        assert_eq!(
            m.get(&("image".into(), "r.yar".into(), "straddle".into())),
            Some(&want),
            "shard {shard}: {m:?}"
        );
        assert_eq!(
            m.get(&("image".into(), "r.yar".into(), "counted".into())),
            Some(&want),
            "shard {shard}: {m:?}"
        );
        assert!(
            !m.keys().any(|k| k.2 == "word"),
            "fullword context lost at the shard start ({shard}): {m:?}"
        );
        assert_eq!(m.len(), 2, "{m:?}");
    }
}

#[test]
fn bad_rules_are_listed_and_the_rest_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fx = small_fixture();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("good.yar"),
        "rule good { strings: $a = \"@exemple.fr\" condition: $a }\n",
    )
    .unwrap();
    std::fs::write(rules.join("syntax.yar"), "rule ok_in_bad_file { condition: true }\nrule broken {\n  strings: $a = \"x\"\n  condition: $a and and\n}\n").unwrap();
    std::fs::write(
        rules.join("module.yar"),
        "import \"nosuchmodule\"\nrule needs_module { condition: nosuchmodule.x == 1 }\n",
    )
    .unwrap();
    std::fs::write(rules.join("semantic.yar"), "rule unknown_ident { condition: no_such_identifier > 1 }\nrule fine_too { strings: $b = \"exemple\" condition: $b }\n").unwrap();
    // Matches everything: bounded by the per-pattern limit, with a note.
    std::fs::write(
        rules.join("everything.yar"),
        "rule every_byte { strings: $z = { 00 } condition: $z }\n",
    )
    .unwrap();
    let (_o, m, r) = scan_yara(&fx.image, &rules, &["--shard-size", "1MiB"]);
    assert!(
        m.contains_key(&("image".into(), "good.yar".into(), "good".into())),
        "{m:?}"
    );
    assert!(
        m.contains_key(&("image".into(), "semantic.yar".into(), "fine_too".into())),
        "{m:?}"
    );
    assert!(m.contains_key(&("image".into(), "everything.yar".into(), "every_byte".into())));
    let notes: Vec<String> = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["message"].as_str().unwrap().to_string())
        .collect();
    let has = |needle: &str| notes.iter().any(|n| n.contains(needle));
    assert!(
        has("syntax.yar:4:"),
        "syntax error with file and line: {notes:?}"
    );
    assert!(
        has("module.yar:1:") || has("nosuchmodule"),
        "unknown module: {notes:?}"
    );
    assert!(
        has("semantic.yar:1:") && has("unknown_identifier") || has("no_such_identifier"),
        "{notes:?}"
    );
    // Strict mode refuses the whole set, naming the problem.
    let out = tempfile::tempdir().unwrap();
    let o = run(&[
        "scan",
        fx.image.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "yara",
        "--rules",
        rules.to_str().unwrap(),
        "--yara-strict",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("strict") && err.contains(".yar:"), "{err}");
    // Nothing compiles: a clear error, not a silent empty result.
    let none = dir.path().join("none.yar");
    std::fs::write(&none, "rule x { condition: and }").unwrap();
    let o = run(&[
        "scan",
        fx.image.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "yara",
        "--rules",
        none.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
}

#[test]
fn slow_rules_time_out_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.raw");
    std::fs::write(&img, vec![b'a'; 8 << 20]).unwrap();
    let rules = dir.path().join("slow.yar");
    // Quadratic work per position on a run of 'a's, decided on the whole
    // image (a loop over every match).
    std::fs::write(&rules, "rule slow { strings: $a = /a{1,200}b?/ condition: for all i in (1..#a) : (@a[i] >= 0) and filesize > 0 }\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run(&[
        "scan",
        img.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--analyses",
        "yara",
        "--rules",
        rules.to_str().unwrap(),
        "--yara-timeout",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report(out.path());
    let notes = r["notes"].to_string();
    assert!(
        notes.contains("timed out") || notes.contains("matches") || notes.contains("slow"),
        "{notes}"
    );
}

/// For each public rule set of the corpora: trawl's matching (target, rule)
/// pairs on the fixture images equal the `yara` CLI's, for every rule both
/// engines accept, and so do the string matches.
#[test]
fn public_rule_sets_match_the_yara_cli() {
    let Some(c) = corpora("public_rule_sets_match_the_yara_cli") else {
        return;
    };
    if !have("yara") {
        trawl_fixtures::skip(
            "public_rule_sets_match_the_yara_cli",
            "the yara CLI (Debian yara)",
        );
        return;
    }
    let fx = small_fixture();
    let mut report_lines = Vec::new();
    let mut engine_diffs = Vec::new();
    for set in [
        "yara-rules-community",
        "signature-base",
        "reversinglabs",
        "elastic-protections-artifacts",
    ] {
        let dir = c.join("yara-rules").join(set);
        let files = rule_files(&dir);
        let accepted = yara_accepted(&files);
        let yx = yarax_accepted(&files);
        let yara_rules: BTreeSet<(String, String)> = {
            // Every rule of a file yara accepts.
            let srcs: Vec<trawl_core::spec::RuleSource> = accepted
                .iter()
                .map(|(n, p)| trawl_core::spec::RuleSource {
                    name: n.clone(),
                    text: String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned(),
                })
                .collect();
            srcs.iter()
                .flat_map(|s| {
                    trawl_analyzers::yara::classify_source(&s.text)
                        .into_iter()
                        .filter(|r| !r.private)
                        .map(move |r| (s.name.clone(), r.name))
                })
                .collect()
        };
        let both: BTreeSet<(String, String)> = yx.intersection(&yara_rules).cloned().collect();
        // trawl, sharded, equals yara-x on the whole image exactly; yara-x
        // and the yara CLI are compared on the rules both accept, and their
        // differences (engine differences) listed.
        let reference = yarax_whole(&files, &fx.image, "image");
        for shard in ["1MiB", "64MiB"] {
            let (_o, m, _) = scan_yara(&fx.image, &dir, &["--shard-size", shard]);
            assert!(
                m == reference,
                "{set}, shard {shard}: trawl vs yara-x on the whole image:\n{}",
                diff(&m, &reference)
            );
        }
        let compiled = CompiledYara::new(&accepted);
        let want = restrict(&compiled.scan(&fx.image, "image", &[]), &both);
        let engine = diff(&restrict(&reference, &both), &want);
        if !engine.is_empty() {
            engine_diffs.push(format!("{set}, fixture image:\n{engine}"));
        }
        // Every carved file of the fixture, scanned as a file with its
        // external variables (filename, filepath, extension, filetype).
        let out = tempfile::tempdir().unwrap();
        run_ok(&[
            "scan",
            fx.image.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--analyses",
            "carve,yara",
            "--rules",
            dir.to_str().unwrap(),
            "--shard-size",
            "1MiB",
        ]);
        let got = trawl_matches(out.path());
        let mut carved_matches = 0;
        let carved = check_carved_files(
            set,
            out.path(),
            &files,
            &got,
            |path, file, ext_vars, reference| {
                let want = restrict(&compiled.scan(file, path, ext_vars), &both);
                let engine = diff(&restrict(reference, &both), &want);
                if !engine.is_empty() {
                    engine_diffs.push(format!("{set}, {path}:\n{engine}"));
                }
                carved_matches += want.len();
            },
        );
        assert!(carved > 10, "{set}: only {carved} carved files");
        // nothing else but the image and the carved files
        assert!(
            got.keys()
                .all(|(t, _, _)| t == "image" || t.starts_with("carved/")),
            "{set}: {:?}",
            got.keys().collect::<Vec<_>>()
        );
        report_lines.push(format!(
            "{set}: {carved} carved files of the fixture, {carved_matches} matching (rule, carved file) pairs for yara"
        ));
        // Real files of the corpora, each scanned as an image (one trawl
        // run, one job per file): the whole-image step meets real headers
        // and sizes (Cloaked_RAR_File, SUSP_* rules...).
        let targets = corpus_targets(&c);
        let out = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = vec!["scan".into()];
        args.extend(targets.iter().map(|p| p.display().to_string()));
        args.extend(
            [
                "--out",
                out.path().to_str().unwrap(),
                "--analyses",
                "yara",
                "--rules",
                dir.to_str().unwrap(),
                "--shard-size",
                "64KiB",
            ]
            .map(String::from),
        );
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut file_matches = 0;
        for t in &targets {
            let name = t.file_name().unwrap().to_string_lossy().to_string();
            let got = trawl_matches(&out.path().join(&name));
            let reference = yarax_whole(&files, t, "image");
            assert!(
                got == reference,
                "{set}, {}: trawl vs yara-x on the whole file:\n{}",
                t.display(),
                diff(&got, &reference)
            );
            let want = restrict(&compiled.scan(t, "image", &[]), &both);
            let engine = diff(&restrict(&reference, &both), &want);
            if !engine.is_empty() {
                engine_diffs.push(format!("{set}, {}:\n{engine}", t.display()));
            }
            file_matches += want.len();
        }
        report_lines.push(format!(
            "{set}: {} files ({} accepted by yara), {} rules accepted by both ({} by yara-x, {} by yara), {} matching (rule, target) pairs for yara on the fixture image, {} on {} corpus files; trawl equal to yara-x on every target",
            files.len(),
            accepted.len(),
            both.len(),
            yx.len(),
            yara_rules.len(),
            want.len(),
            file_matches,
            targets.len()
        ));
    }
    for l in report_lines {
        println!("{l}");
    }
    println!(
        "differences between yara-x and the yara CLI on rules both accept ({}):",
        engine_diffs.len()
    );
    for d in &engine_diffs {
        println!("{d}");
    }
}

/// Carved files no rule can match are not scanned (the shard's own scan
/// and the file's facts tell), and the answer stays exactly yara-x's on
/// every carved file: rules whose matches depend on what surrounds them
/// (`fullword`, regexp anchors) are still scanned, with a letter planted
/// right before every carved file so that the image and the file disagree.
#[test]
fn carved_files_known_without_a_scan_only_when_decided() {
    let fx = small_fixture();
    let dir = tempfile::tempdir().unwrap();
    // Where the carved files start, then a letter before each.
    let first = tempfile::tempdir().unwrap();
    run_ok(&[
        "scan",
        fx.image.to_str().unwrap(),
        "--out",
        first.path().to_str().unwrap(),
        "--analyses",
        "carve",
    ]);
    let csv = std::fs::read_to_string(first.path().join("carved/manifest.csv")).unwrap();
    let mut data = std::fs::read(&fx.image).unwrap();
    for line in csv.lines().skip(1) {
        let off: usize = line.split(',').next().unwrap().parse().unwrap();
        if off > 0 {
            data[off - 1] = b'A';
        }
    }
    let img = dir.path().join("img.raw");
    std::fs::write(&img, &data).unwrap();
    // Patterns matching their own bytes only, and facts of the file.
    let plain = r#"import "pe"
rule eof_plain { strings: $e = "%%EOF" condition: $e }
rule never_seen { strings: $n = "TRAWL-NO-SUCH-BYTES" condition: $n }
rule is_pe { condition: pe.is_pe }
rule not_pe_small { condition: not pe.is_pe and filesize < 2KB }
rule jpeg_small { condition: uint16be(0) == 0xFFD8 and filesize < 50KB }
rule zip_without { strings: $a = "TRAWL-ABSENT" condition: not $a and uint32(0) == 0x04034b50 }
rule many_at { strings: $at = "@" condition: #at > 2 }
"#;
    // Patterns whose matches depend on the bytes around them.
    let edges = r#"
rule pk_fullword { strings: $pk = "PK" fullword condition: $pk at 0 }
rule pdf_anchored { strings: $r = /^%PDF-1\.[0-9]/ condition: $r }
"#;
    // Scans with `rules`, checks every carved file against yara-x on the
    // file; returns the matching files per rule and the yara-carved stat.
    let check = |name: &str, rules: &str| -> (BTreeMap<String, usize>, Value) {
        let rules_dir = dir.path().join(name);
        std::fs::create_dir(&rules_dir).unwrap();
        std::fs::write(rules_dir.join(format!("{name}.yar")), rules).unwrap();
        let out = tempfile::tempdir().unwrap();
        run_ok(&[
            "scan",
            img.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--analyses",
            "carve,yara",
            "--rules",
            rules_dir.to_str().unwrap(),
            "--shard-size",
            "1MiB",
        ]);
        let files = rule_files(&rules_dir);
        let got = trawl_matches(out.path());
        let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
        let carved = check_carved_files(name, out.path(), &files, &got, |_, _, _, reference| {
            for (_, _, rule) in reference.keys() {
                *per_rule.entry(rule.clone()).or_default() += 1;
            }
        });
        assert!(carved > 10, "only {carved} carved files");
        let r = report(out.path());
        let stat = r["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scanner"] == "yara-carved")
            .expect("yara-carved stat")
            .clone();
        println!("{name}: {carved} carved files; matching files per rule: {per_rule:?}; {stat}");
        (per_rule, stat)
    };
    let (per_rule, stat) = check("plain", plain);
    for rule in ["eof_plain", "is_pe", "zip_without", "jpeg_small"] {
        assert!(
            per_rule.get(rule).copied().unwrap_or(0) > 0,
            "{rule} matched no carved file: {per_rule:?}"
        );
    }
    assert!(!per_rule.contains_key("never_seen"));
    assert!(
        stat["skipped_bytes"].as_u64().unwrap() > 0,
        "no carved file known without a scan: {stat}"
    );
    // Rules decided by a file's facts alone (magic numbers, size): files
    // whose every rule is so decided are not scanned, matching or not, and
    // their matches are what yara-x finds in each file (checked above).
    // (Here the image itself matches no rule: its shards are not scanned.)
    let magic = r#"import "pe"
rule not_pe_small { condition: not pe.is_pe and filesize < 2KB }
rule jpeg_small { condition: uint16be(0) == 0xFFD8 and filesize < 50KB }
rule zip_without { strings: $a = "TRAWL-ABSENT" condition: not $a and uint32(0) == 0x04034b50 }
"#;
    let (per_rule, stat) = check("magic", magic);
    for rule in ["jpeg_small", "zip_without"] {
        assert!(
            per_rule.get(rule).copied().unwrap_or(0) > 0,
            "{rule} matched no carved file: {per_rule:?}"
        );
    }
    assert!(
        stat["skipped_bytes"].as_u64().unwrap() > 0,
        "no carved file known without a scan: {stat}"
    );
    // With the context-dependent rules, matches that exist only in the
    // carved file (not in the image) are still found.
    let (per_rule, _) = check("edges", &format!("{plain}{edges}"));
    for rule in ["pk_fullword", "pdf_anchored"] {
        assert!(
            per_rule.get(rule).copied().unwrap_or(0) > 0,
            "{rule} matched no carved file: {per_rule:?}"
        );
    }
}
