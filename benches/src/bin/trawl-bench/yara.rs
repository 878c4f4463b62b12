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

pub fn run(_args: &[String]) -> Result<()> {
    bail!("trawl-bench yara: not written yet")
}
