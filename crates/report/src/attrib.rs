//! Attribution in the report: the file (or the kind of space) holding each
//! finding, from the job's `files` listing ([`trawl_attrib::Locator`], built
//! once per report).
//!
//! * `features/annotated/NAME.txt`: each feature file in the layout of
//!   bulk_extractor's `identify_filenames.py` (its `annotated_NAME.txt`):
//!   the feature line, then the file's path (`*` before it when the file is
//!   deleted or orphaned) and MD5, as identify_filenames reads them from
//!   fiwalk's DFXML: the allocated file first, then the innermost run.
//!   Features in no file have no further column. The closing totals are
//!   identify_filenames' but for its processing time (left out: the files
//!   are a function of the results, byte-identical on a rerun).
//! * `file` in `yara/matches.jsonl` and the `file` and `placement` columns
//!   of `carved/manifest.csv`: see [`place_json`] and [`placement`].

use serde_json::{Value, json};
use trawl_attrib::{Area, Locator};
use trawl_core::{CarvedFile, FileRecord};

/// The job's locator and the listing it indexes.
pub(crate) struct Attribution<'a> {
    pub records: &'a [FileRecord],
    pub locator: Locator,
}

impl<'a> Attribution<'a> {
    /// `None` when the file-system analysis did not run.
    pub fn of(r: &'a crate::JobResults) -> Option<Self> {
        let summary = r.filesystems.as_ref()?;
        Some(Self {
            records: &r.files,
            locator: Locator::new(&r.files, Some(summary)),
        })
    }

    /// The preferred record holding `offset`, and the place.
    pub fn file_at(
        &self,
        offset: u64,
        buf: &mut Vec<u32>,
    ) -> (Area, Option<u64>, Option<&'a FileRecord>) {
        let (area, partition) = self.locator.locate_into(offset, buf);
        let rec = buf.first().and_then(|&i| self.records.get(i as usize));
        (area, partition, rec)
    }

    /// `offset`'s place as a JSON object: `{"place": "file",
    /// "partition_offset", "path", "inode", "alloc"[, "also": [...]]}` or
    /// `{"place": "unallocated" | "file-system metadata" | "not in a file" |
    /// "outside file systems", "partition_offset"}`.
    pub fn place_json(&self, offset: u64) -> Value {
        let mut buf = Vec::new();
        let (area, partition) = self.locator.locate_into(offset, &mut buf);
        let mut v = json!({ "place": area.name(), "partition_offset": partition });
        let mut recs = buf.iter().filter_map(|&i| self.records.get(i as usize));
        if let Some(f) = recs.next() {
            v["path"] = json!(f.path);
            v["inode"] = json!(f.inode);
            v["alloc"] = json!(f.alloc);
            let also: Vec<Value> = recs
                .map(|o| json!({ "path": o.path, "inode": o.inode, "alloc": o.alloc }))
                .collect();
            if !also.is_empty() {
                v["also"] = json!(also);
            }
        }
        v
    }

    /// A carved file's placement: `allocated_file=PATH` when its bytes are
    /// exactly an allocated file's content (the listing already has it),
    /// `embedded_in=PATH` when they lie wholly inside one file's runs (the
    /// innermost such file), else the space its first byte is in
    /// (`unallocated`, `file-system metadata`, `outside file systems`, or
    /// `partly_in=PATH` when it starts inside a file and leaves it).
    pub fn placement(&self, c: &CarvedFile) -> Placement<'a> {
        let runs = carved_runs(c);
        let total: u64 = runs.iter().map(|r| r.1).sum();
        // Bytes of the carved file each record's runs hold.
        let mut held: Vec<(u32, u64)> = Vec::new();
        for &(off, len) in &runs {
            for (i, n) in self.locator.overlapping(off, off.saturating_add(len)) {
                match held.iter_mut().find(|h| h.0 == i) {
                    Some(h) => h.1 += n,
                    None => held.push((i, n)),
                }
            }
        }
        let records = self.records;
        let rec = |i: u32| records.get(i as usize);
        for &(i, _) in &held {
            if let Some(f) = rec(i)
                && f.alloc == "allocated"
                && f.kind == "file"
                && f.size == total
                && content_runs(f) == runs
            {
                return Placement {
                    kind: "allocated_file",
                    file: Some(f),
                };
            }
        }
        // The innermost file holding every byte: the fewest bytes of runs.
        let whole = held
            .iter()
            .filter(|h| h.1 == total)
            .filter_map(|h| rec(h.0).map(|f| (f.runs.iter().map(|r| r.1).sum::<u64>(), h.0, f)))
            .min_by_key(|(size, i, _)| (*size, *i));
        if let Some((_, _, f)) = whole {
            return Placement {
                kind: "embedded_in",
                file: Some(f),
            };
        }
        let mut buf = Vec::new();
        match self.file_at(c.offset, &mut buf) {
            (Area::File, _, Some(f)) => Placement {
                kind: "partly_in",
                file: Some(f),
            },
            (area, _, _) => Placement {
                kind: area.name(),
                file: None,
            },
        }
    }
}

/// Where a carved file lies (see [`Attribution::placement`]).
pub(crate) struct Placement<'a> {
    /// `allocated_file`, `embedded_in`, `partly_in`, or the space
    /// ([`Area::name`]).
    pub kind: &'static str,
    pub file: Option<&'a FileRecord>,
}

impl Placement<'_> {
    /// `KIND=PATH`, or the space's name.
    pub fn text(&self) -> String {
        match self.file {
            Some(f) => format!("{}={}", self.kind, f.path),
            None => self.kind.to_string(),
        }
    }
}

/// A carved file's image runs in file order, adjacent ones joined.
fn carved_runs(c: &CarvedFile) -> Vec<(u64, u64)> {
    let mut r: Vec<(u64, u64, u64)> = c
        .byte_runs
        .iter()
        .map(|b| (b.file_offset, b.img_offset, b.len))
        .collect();
    if r.is_empty() {
        r.push((0, c.offset, c.length));
    }
    r.sort_unstable();
    joined(r.into_iter().map(|(_, o, l)| (o, l)))
}

/// A file's content runs cut at its size, adjacent ones joined.
fn content_runs(f: &FileRecord) -> Vec<(u64, u64)> {
    let mut left = f.size;
    joined(f.runs.iter().map_while(|&(o, l)| {
        if left == 0 {
            return None;
        }
        let n = l.min(left);
        left -= n;
        Some((o, n))
    }))
}

fn joined(runs: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (o, l) in runs {
        if l == 0 {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.0 + last.1 == o => last.1 += l,
            _ => out.push((o, l)),
        }
    }
    out
}
