//! `trawl-bench yara`: trawl against `yara -p 2` on the same image with the
//! same rule set, same run; `trawl-bench yara-live`: which rules an image
//! leaves live (diagnostics of the rule-set index).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use trawl_analyzers::yara::{RuleClass, RuleSetIndex};
use trawl_core::spec::RuleSource;

/// Every .yar/.yara file under `dir`, named by its path relative to `dir`.
pub fn rule_files(dir: &Path) -> Result<Vec<RuleSource>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| d.display().to_string())? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.eq_ignore_ascii_case("yar") || x.eq_ignore_ascii_case("yara"))
            {
                let text = String::from_utf8_lossy(&std::fs::read(&p)?).into_owned();
                let name = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
                out.push(RuleSource { name, text });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn live(args: &[String]) -> Result<()> {
    let (Some(rules), Some(image)) = (args.first(), args.get(1)) else {
        bail!("usage: trawl-bench yara-live RULES_DIR IMAGE");
    };
    let srcs = rule_files(&PathBuf::from(rules))?;
    let idx = RuleSetIndex::new(&srcs);
    let data = std::fs::read(image)?;
    let live = idx.live(data.len() as u64, &|o, n| {
        data.get(o as usize..o as usize + n).map(<[u8]>::to_vec)
    });
    let mut by = std::collections::BTreeMap::new();
    for (f, r) in &live {
        *by.entry(format!("{:?}", idx.files[*f].rules[*r].class))
            .or_insert(0usize) += 1;
    }
    let total: usize = idx.files.iter().map(|f| f.rules.len()).sum();
    println!("rules {total}, live for this image {} {by:?}", live.len());
    if args.get(2).map(String::as_str) == Some("--time") {
        use std::time::Instant;
        let window = &data[..data.len().min(64 << 20)];
        let t = Instant::now();
        let full = trawl_analyzers::yara::compile_cached(&srcs, false)?;
        println!(
            "full compile {:.2}s ({} rules)",
            t.elapsed().as_secs_f64(),
            full.rule_count()
        );
        let sub = idx.subset(&live);
        let t = Instant::now();
        let subc = trawl_analyzers::yara::compile_cached(&sub, false)?;
        println!(
            "live compile {:.2}s ({} rules)",
            t.elapsed().as_secs_f64(),
            subc.rule_count()
        );
        for (name, rules) in [("full", &full), ("live", &subc)] {
            let mut sc = rules.file_scanner(trawl_analyzers::yara::Limits::default());
            let t = Instant::now();
            let (m, _) = rules.scan_file(&mut sc, window, "w", 0, &[])?;
            println!(
                "{name}: scan of {} MiB {:.2}s, {} matches",
                window.len() >> 20,
                t.elapsed().as_secs_f64(),
                m.len()
            );
        }
        return Ok(());
    }
    for (f, r) in live
        .iter()
        .filter(|(f, r)| idx.files[*f].rules[*r].class != RuleClass::Shard)
        .take(40)
    {
        let rule = &idx.files[*f].rules[*r];
        let t = &idx.files[*f].text;
        let pos = t.find(&format!("rule {}", rule.name)).unwrap_or(0);
        let cond = t[pos..]
            .find("condition:")
            .map(|i| &t[pos + i..(pos + i + 140).min(t.len())])
            .unwrap_or("");
        println!(
            "{:?} {} :: {}",
            rule.class,
            rule.name,
            cond.replace('\n', " ")
        );
    }
    Ok(())
}

/// External variables the public rule sets use (THOR's), empty for an image.
const EXTERNALS: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Whether the `yara` CLI compiles `path` alone.
fn yara_accepts(path: &Path) -> bool {
    let mut cmd = std::process::Command::new("yara");
    for k in EXTERNALS {
        cmd.args(["-d", &format!("{k}=")]);
    }
    cmd.arg("-w")
        .arg(path)
        .arg("/dev/null")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// `trawl-bench yara [--size 1GiB] [--runs 3] [--rules DIR] [--dir DIR]`:
/// trawl (embedded, default settings) against `yara -p 2` on the same image
/// with the same rules (the files of the set the `yara` CLI compiles, each
/// in its own namespace as trawl loads them), alternating runs.
pub fn run(args: &[String]) -> Result<()> {
    use trawl_benches::{Contender, have, race, table};
    let size = trawl_core::size::parse_size(&arg(args, "--size").unwrap_or_else(|| "1GiB".into()))?;
    let runs: usize = arg(args, "--runs").unwrap_or_else(|| "3".into()).parse()?;
    if !have("yara") {
        bail!("the yara CLI is not installed (TRAWL_SETUP_BENCH=1 scripts/setup.sh)");
    }
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/yara-rules");
    // The largest set by rule count, unless one is named.
    let rules_dir = match arg(args, "--rules") {
        Some(d) => PathBuf::from(d),
        None => {
            let mut best: Option<(usize, PathBuf)> = None;
            for e in std::fs::read_dir(&corpora)
                .with_context(|| format!("{}: no rule sets (pass --rules)", corpora.display()))?
            {
                let p = e?.path();
                if !p.is_dir() {
                    continue;
                }
                let n: usize = rule_files(&p)?
                    .iter()
                    .map(|s| trawl_analyzers::yara::classify_source(&s.text).len())
                    .sum();
                if best.as_ref().is_none_or(|(b, _)| n > *b) {
                    best = Some((n, p));
                }
            }
            best.context("no rule set found")?.1
        }
    };
    let base = PathBuf::from(
        arg(args, "--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    )
    .join("trawl-bench-yara");
    std::fs::create_dir_all(&base)?;
    // The files yara compiles, copied under their relative names.
    let srcs = rule_files(&rules_dir)?;
    let set = base.join("rules");
    let _ = std::fs::remove_dir_all(&set);
    let mut yara_args: Vec<String> = Vec::new();
    let mut rules = 0usize;
    let mut skipped_index = 0;
    for s in &srcs {
        let from = rules_dir.join(&s.name);
        // Index files only include the others (the same rules twice).
        if s.text
            .lines()
            .any(|l| l.trim_start().starts_with("include "))
        {
            skipped_index += 1;
            continue;
        }
        if !yara_accepts(&from) {
            continue;
        }
        let to = set.join(&s.name);
        std::fs::create_dir_all(to.parent().unwrap())?;
        std::fs::copy(&from, &to)?;
        yara_args.push(format!("{}:{}", s.name, to.display()));
        rules += trawl_analyzers::yara::classify_source(&s.text).len();
    }
    let name = format!("bulk-{size}");
    let img = base.join(format!("{name}.raw"));
    if std::fs::metadata(&img).map(|m| m.len()).ok() != Some(size) {
        trawl_fixtures::write(&trawl_fixtures::Config::bulk(size, 7), &base, &name)?;
    }
    let trawl = super::trawl_bin();
    if !trawl.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --locked)",
            trawl.display()
        );
    }
    let out = base.join("out");
    let (i, t, o) = (
        img.display().to_string(),
        trawl.display().to_string(),
        out.display().to_string(),
    );
    let mut yara_cmd: Vec<String> = vec!["yara".into(), "-p".into(), "2".into(), "-w".into()];
    for k in EXTERNALS {
        yara_cmd.push("-d".into());
        yara_cmd.push(format!("{k}="));
    }
    yara_cmd.extend(yara_args.iter().cloned());
    yara_cmd.push(i.clone());
    let yara_argv: Vec<&str> = yara_cmd.iter().map(String::as_str).collect();
    let mut c = vec![
        Contender::new(
            "trawl scan --analyses yara",
            &[
                "sh",
                "-c",
                &format!(
                    "{t} scan {i} --analyses yara --rules {} --out {o} >/dev/null",
                    set.display()
                ),
            ],
        )
        .prep(&trawl_benches::fresh_output(&o, &i)),
        Contender::new("yara -p 2", &yara_argv),
    ];
    // `--baseline BIN`: an earlier build of trawl, alternating with this one.
    let baseline = arg(args, "--baseline");
    if let Some(b) = &baseline {
        c.push(
            Contender::new(
                "baseline build: trawl scan --analyses yara",
                &[
                    "sh",
                    "-c",
                    &format!(
                        "{b} scan {i} --analyses yara --rules {} --out {o} >/dev/null",
                        set.display()
                    ),
                ],
            )
            .prep(&trawl_benches::fresh_output(&o, &i)),
        );
    }
    race(&mut c, runs);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Input: {i} ({size} bytes, `Config::bulk({size}, 7)`), rules: {} ({} files the yara CLI compiles of {}, {skipped_index} index files of includes left out, {rules} rules), page cache warm, {runs} runs each after a warm-up, alternating; {cores} cores. Both compile the rules in every run.\n",
        rules_dir.display(),
        yara_args.len(),
        srcs.len()
    );
    println!("{}", table(&c, size));
    println!(
        "trawl vs yara -p 2: {:.2}x yara's throughput (target >= 1.0)",
        c[1].median_wall() / c[0].median_wall()
    );
    if let (Some(b), Some(base)) = (&baseline, c.get(2)) {
        println!(
            "\nagainst the baseline build ({b}): this build takes {:.3}x its wall time ({:.3}x its CPU time)",
            c[0].median_wall() / base.median_wall(),
            c[0].median_cpu() / base.median_cpu()
        );
    }
    trawl_benches::clean_outputs(&out.display().to_string());
    Ok(())
}
