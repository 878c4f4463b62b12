//! The one definition of a job's finding counts.
//!
//! `report.json`'s `counts`, the dashboard, `trawl watch`/`status`, the
//! indicators page and its CSV all read these numbers, computed once from
//! the merged results ([`Counts::of`]) when the job completes. While a job
//! runs, the per-shard sums it shows are *provisional*: shards overlap
//! and YARA decides rules over the whole image, so a running sum may
//! differ from (and exceed) the final count; every view says so.

use crate::{CarvedFile, Feature, YaraMatch};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Piecewise hashing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashCounts {
    pub piecewise_windows: u64,
}

/// Features, in total and per scanner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureCounts {
    pub total: u64,
    pub per_scanner: BTreeMap<String, u64>,
}

/// Carved files, in total, validated and per type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarveCounts {
    pub total: u64,
    pub validated: u64,
    pub per_type: BTreeMap<String, u64>,
}

/// YARA matches: one per (rule, target).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct YaraCounts {
    pub matches: u64,
    pub image_matches: u64,
    pub carved_matches: u64,
    /// Matches per rule namespace (the rule set's family).
    #[serde(default)]
    pub per_namespace: BTreeMap<String, u64>,
}

/// File-system entries: every one, regular files, deleted and orphan ones,
/// those in a known set, those in a notable set (alerts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCounts {
    pub entries: u64,
    pub files: u64,
    pub deleted: u64,
    pub orphan: u64,
    pub known: u64,
    pub notable: u64,
}

/// A job's counts, as `report.json` writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub hash: HashCounts,
    pub features: FeatureCounts,
    pub carve: CarveCounts,
    pub yara: YaraCounts,
    /// Absent in jobs recorded before the file-system analysis existed.
    #[serde(default)]
    pub files: FileCounts,
}

/// The finding kind of carved files in [`Counts::findings`].
pub const KIND_CARVED: &str = "carved";
/// The finding kind of YARA matches in [`Counts::findings`].
pub const KIND_YARA: &str = "yara";
/// The finding kind of files found in a notable hash set (alerts) in
/// [`Counts::findings`].
pub const KIND_NOTABLE: &str = "notable_files";

impl Counts {
    /// The counts of merged results.
    pub fn of(
        piecewise_windows: usize,
        features: &[Feature],
        carved: &[CarvedFile],
        yara: &[YaraMatch],
    ) -> Self {
        let mut c = Counts {
            hash: HashCounts {
                piecewise_windows: piecewise_windows as u64,
            },
            ..Default::default()
        };
        // `decoded` (trawl_features::DECODED_RECORDER) lists the decoded
        // buffers scanned: a listing, not findings
        for f in features.iter().filter(|f| f.scanner != "decoded") {
            c.features.total += 1;
            *c.features.per_scanner.entry(f.scanner.clone()).or_default() += 1;
        }
        c.carve.total = carved.len() as u64;
        for f in carved {
            c.carve.validated += u64::from(f.validated);
            *c.carve.per_type.entry(f.file_type.clone()).or_default() += 1;
        }
        c.yara.matches = yara.len() as u64;
        for m in yara {
            if m.target == "image" {
                c.yara.image_matches += 1;
            } else {
                c.yara.carved_matches += 1;
            }
            *c.yara.per_namespace.entry(m.namespace.clone()).or_default() += 1;
        }
        c
    }

    /// Adds the counts of file-system records.
    #[must_use]
    pub fn with_files(mut self, files: &[crate::FileRecord]) -> Self {
        let f = &mut self.files;
        f.entries = files.len() as u64;
        for r in files {
            f.files += u64::from(r.hashable());
            f.deleted += u64::from(r.alloc == "deleted");
            f.orphan += u64::from(r.alloc == "orphan");
            f.known += u64::from(r.known.as_deref() == Some("known"));
            f.notable += u64::from(r.known.as_deref() == Some("notable"));
        }
        self
    }

    /// Findings per kind: each feature scanner by name, `carved` files,
    /// `yara` matches and `notable_files`; kinds with none are left out.
    pub fn findings(&self) -> BTreeMap<String, u64> {
        let mut m: BTreeMap<String, u64> = self
            .features
            .per_scanner
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        if self.carve.total > 0 {
            m.insert(KIND_CARVED.into(), self.carve.total);
        }
        if self.yara.matches > 0 {
            m.insert(KIND_YARA.into(), self.yara.matches);
        }
        if self.files.notable > 0 {
            m.insert(KIND_NOTABLE.into(), self.files.notable);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_the_counts_per_kind() {
        let f = |s: &str| Feature {
            scanner: s.into(),
            offset: 0,
            path: "0".into(),
            feature: b"x".to_vec(),
            context: Vec::new(),
            utf16: false,
        };
        let m = |t: &str, ns: &str| YaraMatch {
            target: t.into(),
            target_offset: 0,
            rule: "r".into(),
            namespace: ns.into(),
            tags: Vec::new(),
            metadata_json: "{}".into(),
            strings: Vec::new(),
        };
        let c = Counts::of(
            3,
            &[f("email"), f("email"), f("url")],
            &[],
            &[m("image", "a"), m("carved/jpg/1.jpg", "a"), m("image", "b")],
        );
        assert_eq!(c.features.total, 3);
        assert_eq!(c.yara.image_matches, 2);
        assert_eq!(c.yara.carved_matches, 1);
        assert_eq!(c.yara.per_namespace["a"], 2);
        let k = c.findings();
        assert_eq!(
            k.into_iter().collect::<Vec<_>>(),
            [
                ("email".to_string(), 2),
                ("url".to_string(), 1),
                ("yara".to_string(), 3)
            ]
        );
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(j["carve"]["total"], 0);
        assert_eq!(j["hash"]["piecewise_windows"], 3);
    }
}
