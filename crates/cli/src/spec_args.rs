//! Job settings shared by `scan` and `submit`.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use trawl_core::size::{format_size, parse_size};
use trawl_core::spec::{EvidenceRef, RuleSource};
use trawl_core::{AnalysisSet, CaseId, JobSpec, Priority};

/// What to run and how.
#[derive(Args, Debug, Clone)]
pub struct SpecArgs {
    /// Analyses to run, comma-separated: hash, carve, features, yara, files,
    /// or all.
    #[arg(long, default_value = "hash")]
    pub analyses: String,
    /// YARA rules: a file or a folder of .yar/.yara files.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Shard size (power of two, 1KiB..1GiB).
    #[arg(long, default_value = "64MiB")]
    pub shard_size: String,
    /// Bytes read past each shard's end.
    #[arg(long, default_value = "1MiB")]
    pub margin: String,
    /// Piecewise hash window (power of two; 0 turns piecewise hashes off).
    #[arg(long, default_value = "1MiB")]
    pub piecewise_window: String,
    /// Also MD5 per piecewise window.
    #[arg(long)]
    pub piecewise_md5: bool,
    /// Skip the sequential MD5/SHA-1/SHA-256 pass (BLAKE3 and piecewise
    /// hashes only).
    #[arg(long)]
    pub no_stream_hash: bool,
    /// Priority class: low, normal, high, urgent.
    #[arg(long, default_value = "normal")]
    pub priority: String,
    /// Free-text description recorded with the job.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Carving: only these types (comma-separated, e.g. jpg,png,pdf).
    #[arg(long, value_delimiter = ',')]
    pub carve_types: Vec<String>,
    /// Carving: only consider file headers at 512-byte sector starts (fast).
    #[arg(long)]
    pub sector_aligned: bool,
    /// Carving: a Scalpel/Foremost configuration file of custom types.
    #[arg(long)]
    pub carve_config: Option<PathBuf>,
    /// Carving: maximum file size per type, TYPE=SIZE (repeatable).
    #[arg(long = "carve-max-size")]
    pub carve_max_size: Vec<String>,
    /// Features: only these scanners (comma-separated, e.g. email,url,ccn;
    /// `trawl scan --list-scanners` lists them).
    #[arg(long, value_delimiter = ',')]
    pub scanners: Vec<String>,
    /// Features: also run these scanners or decoding layers (like
    /// bulk_extractor's -e; comma-separated, repeatable).
    #[arg(long, short = 'e', value_delimiter = ',')]
    pub enable: Vec<String>,
    /// Features: do not run these scanners or decoding layers (like
    /// bulk_extractor's -x; comma-separated, repeatable).
    #[arg(long, short = 'x', value_delimiter = ',')]
    pub disable: Vec<String>,
    /// Features: keyword list for the `find` scanner (one literal or /regex/
    /// per line).
    #[arg(long)]
    pub find: Option<PathBuf>,
    /// Features: the --find keywords match case-sensitively (default:
    /// ASCII case-insensitively, as bulk_extractor's find).
    #[arg(long)]
    pub find_case_sensitive: bool,
    /// Features: stop list (features, or feature<TAB>context, to suppress).
    #[arg(long)]
    pub stop_list: Option<PathBuf>,
    /// Features: alert list (features of interest, copied to alerts.txt).
    #[arg(long)]
    pub alert_list: Option<PathBuf>,
    /// YARA: a rule set registered with the scheduler, by name.
    #[arg(long)]
    pub ruleset: Option<String>,
    /// YARA: refuse the whole rule set if any rule fails to compile.
    #[arg(long)]
    pub yara_strict: bool,
    /// YARA: per-scan timeout in seconds.
    #[arg(long)]
    pub yara_timeout: Option<u32>,
    /// Files: a known-file hash set (NSRL RDSv3 SQLite, hashdeep or
    /// md5sum-style list, or a table made by `trawl known import`);
    /// repeatable. Read by the scheduler.
    #[arg(long)]
    pub known: Vec<PathBuf>,
    /// Files: a notable-file hash set (contraband, malware), same formats;
    /// repeatable.
    #[arg(long)]
    pub notable: Vec<PathBuf>,
    /// Files: keep known files out of YARA and feature extraction (their
    /// hashes are still reported).
    #[arg(long)]
    pub skip_known: bool,
    /// Carving: `all` space, or only the `unallocated` space of each file
    /// system and the space outside them (carved files starting elsewhere
    /// are left out; needs the files analysis).
    #[arg(long, value_enum, default_value = "all")]
    pub carve_scope: CarveScope,
    /// Files: content bytes per file-hashing task.
    #[arg(long, default_value = "256MiB")]
    pub files_task_size: String,
}

/// Where carving keeps its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CarveScope {
    All,
    Unallocated,
}

/// A hash-set path as the scheduler must read it: absolute, existing.
fn set_path(p: &PathBuf, flag: &str) -> Result<String> {
    let abs = std::fs::canonicalize(p).with_context(|| format!("{flag} {}", p.display()))?;
    Ok(abs.display().to_string())
}

fn read_text(p: &PathBuf, what: &str) -> Result<String> {
    let b = std::fs::read(p).with_context(|| format!("{what} {}", p.display()))?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Reads a rules argument: one file, or every .yar/.yara file of a folder
/// (recursively, sorted).
pub fn read_rules(path: &PathBuf) -> Result<Vec<RuleSource>> {
    let mut files = Vec::new();
    if path.is_dir() {
        let mut stack = vec![path.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).with_context(|| format!("{}", d.display()))? {
                let p = e?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                    x.eq_ignore_ascii_case("yar") || x.eq_ignore_ascii_case("yara")
                }) {
                    files.push(p);
                }
            }
        }
        files.sort();
        if files.is_empty() {
            bail!("{}: no .yar or .yara files", path.display());
        }
    } else {
        files.push(path.clone());
    }
    files
        .into_iter()
        .map(|p| {
            let bytes =
                std::fs::read(&p).with_context(|| format!("reading rules {}", p.display()))?;
            // Named by the path relative to the folder, or by the file name
            // for a single file: the name is the rule namespace.
            let name = match p
                .strip_prefix(path)
                .ok()
                .filter(|r| !r.as_os_str().is_empty())
            {
                Some(rel) => rel.display().to_string(),
                None => p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.display().to_string()),
            };
            Ok(RuleSource {
                name,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })
        })
        .collect()
}

impl SpecArgs {
    /// The job specification for `evidence`.
    pub fn spec(
        &self,
        case: &str,
        evidence: EvidenceRef,
        evidence_name: String,
    ) -> Result<JobSpec> {
        let analyses = AnalysisSet::parse(&self.analyses).context("--analyses")?;
        let mut spec = JobSpec::new(CaseId::new(case).context("--case")?, evidence, analyses);
        spec.shard_size = shard_size(&self.shard_size)?;
        spec.margin = parse_size(&self.margin).context("--margin")?;
        spec.hash.piecewise_window =
            parse_size(&self.piecewise_window).context("--piecewise-window")?;
        spec.hash.piecewise_md5 = self.piecewise_md5;
        spec.hash.skip_stream = self.no_stream_hash;
        spec.priority = self.priority.parse::<Priority>().context("--priority")?;
        spec.description = self.description.clone();
        spec.evidence_name = evidence_name;
        spec.carve.types = self.carve_types.clone();
        spec.carve.sector_aligned = self.sector_aligned;
        if let Some(p) = &self.carve_config {
            spec.carve.custom_config = read_text(p, "--carve-config")?;
        }
        for kv in &self.carve_max_size {
            let (t, v) = kv
                .split_once('=')
                .with_context(|| format!("--carve-max-size {kv:?}: expected TYPE=SIZE"))?;
            let n = parse_size(v).with_context(|| format!("--carve-max-size {kv:?}"))?;
            spec.carve.max_size.insert(t.trim().to_ascii_lowercase(), n);
        }
        spec.features.scanners = self.scanners.clone();
        spec.features
            .scanners
            .extend(self.enable.iter().map(|n| format!("+{n}")));
        spec.features
            .scanners
            .extend(self.disable.iter().map(|n| format!("-{n}")));
        if let Some(p) = &self.find {
            spec.features.find_keywords = read_text(p, "--find")?;
            spec.features.find_case_sensitive = self.find_case_sensitive;
        }
        if let Some(p) = &self.stop_list {
            spec.features.stop_list = read_text(p, "--stop-list")?;
        }
        if let Some(p) = &self.alert_list {
            spec.features.alert_list = read_text(p, "--alert-list")?;
        }
        if analyses.yara {
            match (&self.rules, &self.ruleset) {
                (Some(rules), _) => spec.yara.sources = read_rules(rules)?,
                (None, Some(name)) => spec.yara.ruleset_name = name.clone(),
                (None, None) => bail!("--analyses yara needs --rules FILE|DIR (or --ruleset NAME)"),
            }
            spec.yara.scan_carved = true;
            spec.yara.strict = self.yara_strict;
            spec.yara.timeout_seconds = self.yara_timeout.unwrap_or(0);
        }
        spec.files.known = self
            .known
            .iter()
            .map(|p| set_path(p, "--known"))
            .collect::<Result<_>>()?;
        spec.files.notable = self
            .notable
            .iter()
            .map(|p| set_path(p, "--notable"))
            .collect::<Result<_>>()?;
        spec.files.skip_known = self.skip_known;
        spec.files.task_bytes = parse_size(&self.files_task_size).context("--files-task-size")?;
        if spec.files.task_bytes == 0 {
            bail!("--files-task-size must be at least one byte");
        }
        if !analyses.files
            && (!spec.files.known.is_empty() || !spec.files.notable.is_empty() || self.skip_known)
        {
            bail!(
                "--known, --notable and --skip-known need the files analysis (--analyses files or all)"
            );
        }
        spec.carve.unallocated_only = self.carve_scope == CarveScope::Unallocated;
        if spec.carve.unallocated_only && !(analyses.carve && analyses.files) {
            bail!(
                "--carve-scope unallocated needs the carve and files analyses (--analyses carve,files or all): the file systems' allocation maps come from the listing"
            );
        }
        spec.validate()?;
        Ok(spec)
    }
}

/// `--shard-size` as typed: a power of two from 1 KiB to 1 GiB. Anything
/// else is refused as the user wrote it, with the nearest valid sizes.
pub fn shard_size(typed: &str) -> Result<u64> {
    const MIN: u64 = 1 << 10;
    const MAX: u64 = 1 << 30;
    let n = parse_size(typed).context("--shard-size")?;
    if n.is_power_of_two() && (MIN..=MAX).contains(&n) {
        return Ok(n);
    }
    let below = if n < MIN {
        None
    } else {
        Some((1u64 << (63 - n.leading_zeros())).min(MAX))
    };
    let above = n
        .checked_next_power_of_two()
        .filter(|a| *a <= MAX)
        .map(|a| a.max(MIN));
    let nearest: Vec<String> = [below, above]
        .into_iter()
        .flatten()
        .filter(|v| *v != n)
        .map(format_size)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    bail!(
        "--shard-size {typed:?} ({n} bytes) is not a shard size: it must be a power of two from 1 KiB to 1 GiB (the nearest: {})",
        nearest.join(" or ")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn shard_sizes_are_refused_as_typed_with_the_nearest() {
        assert_eq!(super::shard_size("16MiB").unwrap(), 16 << 20);
        let e = super::shard_size("10MB").unwrap_err().to_string();
        assert_eq!(
            e,
            "--shard-size \"10MB\" (10485760 bytes) is not a shard size: it must be a power of two from 1 KiB to 1 GiB (the nearest: 16 MiB or 8 MiB)"
        );
        let e = super::shard_size("2GiB").unwrap_err().to_string();
        assert!(e.ends_with("(the nearest: 1 GiB)"), "{e}");
        let e = super::shard_size("100").unwrap_err().to_string();
        assert!(e.ends_with("(the nearest: 1 KiB)"), "{e}");
    }
}
