//! What the job page shows of a finished job's merged results: top
//! features, YARA hits, counts and hashes; card numbers masked.

use crate::core::Scheduler;
use std::collections::BTreeMap;
use trawl_core::Counts;

/// What the job page shows of a finished job's results.
#[derive(Debug, Default)]
pub struct Summary {
    /// (scanner, feature, count): features seen at least twice, the most
    /// frequent first, at most [`TOP_PER_SCANNER`] per scanner.
    pub top_features: Vec<(String, String, u64)>,
    /// (namespace, rule, targets matched).
    pub yara: Vec<(String, String, u64)>,
    /// The merged results' counts.
    pub counts: Counts,
    /// (algorithm, hex digest) of the evidence.
    pub hashes: Vec<(String, String)>,
    /// (algorithm, stored, computed, matches).
    pub verification: Vec<(String, String, String, bool)>,
    /// With the files analysis: the path of the file holding the first
    /// occurrence of each top feature, by (scanner, feature).
    pub feature_files: BTreeMap<(String, String), String>,
    /// With the files analysis: the path of the file of each YARA rule's
    /// first match, by (namespace, rule).
    pub yara_files: BTreeMap<(String, String), String>,
    /// Whether the job listed file systems.
    pub has_files: bool,
}

/// Most features listed per scanner.
pub const TOP_PER_SCANNER: usize = 10;

/// The top features, YARA hits, counts and hashes of a job's merged
/// results.
/// The files holding the first occurrence of each top feature and of each
/// YARA rule's first match (per-file matches name their file; image
/// matches the file of their first string; carved files the file of their
/// first byte).
#[allow(clippy::type_complexity)]
fn file_links(
    r: &trawl_report::JobResults,
    top: &[(String, String, u64)],
    yara: &[(String, String, u64)],
) -> (
    BTreeMap<(String, String), String>,
    BTreeMap<(String, String), String>,
) {
    let (mut ff, mut yf) = (BTreeMap::new(), BTreeMap::new());
    let Some(summary) = &r.filesystems else {
        return (ff, yf);
    };
    let loc = trawl_attrib::Locator::new(&r.files, Some(summary));
    let mut buf = Vec::new();
    let mut file_at = |off: u64| {
        loc.locate_into(off, &mut buf);
        buf.first()
            .and_then(|&i| r.files.get(i as usize))
            .map(|f| f.path.clone())
    };
    let wanted: std::collections::BTreeSet<(&str, &[u8])> = top
        .iter()
        .map(|(s, f, _)| (s.as_str(), f.as_bytes()))
        .collect();
    for f in &r.features {
        let key = (f.scanner.as_str(), f.feature.as_slice());
        let k = (
            f.scanner.clone(),
            String::from_utf8_lossy(&f.feature).into_owned(),
        );
        if wanted.contains(&key)
            && !ff.contains_key(&k)
            && let Some(p) = file_at(f.offset)
        {
            ff.insert(k, p);
        }
    }
    let rules: std::collections::BTreeSet<(&str, &str)> = yara
        .iter()
        .map(|(n, r, _)| (n.as_str(), r.as_str()))
        .collect();
    for m in &r.yara {
        let k = (m.namespace.clone(), m.rule.clone());
        if !rules.contains(&(m.namespace.as_str(), m.rule.as_str())) || yf.contains_key(&k) {
            continue;
        }
        let path = if let Some(rest) = m.target.strip_prefix("fs:") {
            rest.split_once('/').map(|(_, p)| p.to_string())
        } else if m.target == "image" {
            m.strings
                .iter()
                .map(|s| s.offset)
                .min()
                .and_then(&mut file_at)
        } else {
            file_at(m.target_offset)
        };
        if let Some(p) = path {
            yf.insert(k, p);
        }
    }
    (ff, yf)
}

pub fn summarize(sched: &Scheduler, job_id: &str) -> Option<Summary> {
    let page = sched.results(job_id).ok()?;
    let (_, r) = crate::results::from_pages(vec![page]).ok()?;
    let mut counts: BTreeMap<(&str, &[u8]), u64> = BTreeMap::new();
    for f in &r.features {
        *counts
            .entry((f.scanner.as_str(), f.feature.as_slice()))
            .or_default() += 1;
    }
    let mut per: BTreeMap<&str, Vec<(&[u8], u64)>> = BTreeMap::new();
    for ((s, f), n) in counts {
        if n >= 2 {
            per.entry(s).or_default().push((f, n));
        }
    }
    let mut top = Vec::new();
    for (s, mut v) in per {
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(TOP_PER_SCANNER);
        top.extend(
            v.into_iter()
                .map(|(f, n)| (s.to_string(), String::from_utf8_lossy(f).into_owned(), n)),
        );
    }
    let mut yara: BTreeMap<(String, String), u64> = BTreeMap::new();
    for m in &r.yara {
        *yara
            .entry((m.namespace.clone(), m.rule.clone()))
            .or_default() += 1;
    }
    let mut yara: Vec<(String, String, u64)> =
        yara.into_iter().map(|((a, b), n)| (a, b, n)).collect();
    yara.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    yara.truncate(50);
    let (feature_files, yara_files) = file_links(&r, &top, &yara);
    let h = &r.hashes;
    let hashes = [
        ("MD5", &h.md5),
        ("SHA-1", &h.sha1),
        ("SHA-256", &h.sha256),
        ("BLAKE3", &h.blake3),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.as_ref().map(|v| (a.to_string(), v.clone())))
    .collect();
    Some(Summary {
        top_features: top,
        yara,
        counts: trawl_report::counts(&r),
        hashes,
        feature_files,
        yara_files,
        has_files: r
            .filesystems
            .as_ref()
            .is_some_and(|s| !s.filesystems.is_empty()),
        verification: r
            .verification
            .iter()
            .map(|v| {
                (
                    v.algorithm.clone(),
                    v.stored.clone(),
                    v.computed.clone(),
                    v.matches,
                )
            })
            .collect(),
    })
}

/// A card number with all but its first 6 and last 4 digits masked
/// (separators kept).
pub fn mask_card(s: &str) -> String {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen > 6 && seen + 4 <= digits {
                    return '•';
                }
            }
            c
        })
        .collect()
}

/// Whether a feature of `scanner` is a card number (masked by default).
pub(super) fn is_card(scanner: &str) -> bool {
    matches!(
        scanner.strip_suffix("_stopped").unwrap_or(scanner),
        "ccn" | "ccn_track2"
    )
}
