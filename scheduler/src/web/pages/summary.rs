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
}

/// Most features listed per scanner.
pub const TOP_PER_SCANNER: usize = 10;

/// The top features, YARA hits, counts and hashes of a job's merged
/// results.
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
