//! Attribution: which file-system file holds a byte of the image.
//!
//! A [`Locator`] is built once per job from the `files` listing: an
//! [`IntervalIndex`] over every record's byte runs (files, directories,
//! streams, deleted entries whose runs are known), the extent of each file
//! system, and each file system's unallocated space when the listing has
//! it. [`Locator::locate`] then places an offset:
//!
//! * in one or more files (every record whose runs contain the byte; the
//!   first is the one bulk_extractor's `identify_filenames.py` would name:
//!   allocated before deleted, then the innermost run: the latest start,
//!   then the shortest, as a resident attribute inside `$MFT`);
//! * else in a file system's unallocated space;
//! * else in a file system's own structures (boot sectors, FATs, inode
//!   tables, bitmaps: allocated, but no listed file's content);
//! * else outside every file system (partition gaps, unpartitioned space,
//!   volumes without a recognised file system).

mod interval;

pub use interval::IntervalIndex;
use trawl_core::{FileRecord, FilesSummary};

/// What kind of space a byte is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// Content (or resident data) of one or more listed files.
    File,
    /// A file system's unallocated space.
    Unallocated,
    /// Inside a file system, allocated, but in no listed file: the file
    /// system's own structures.
    Metadata,
    /// Inside a file system whose allocation map is not known (the listing
    /// predates it, or the map could not be read: a limitation says why).
    NotInFile,
    /// Outside every file system found.
    Outside,
}

impl Area {
    /// The name written in reports.
    pub fn name(self) -> &'static str {
        match self {
            Area::File => "file",
            Area::Unallocated => "unallocated",
            Area::Metadata => "file-system metadata",
            Area::NotInFile => "not in a file",
            Area::Outside => "outside file systems",
        }
    }
}

/// Where one byte of the image is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub area: Area,
    /// The image offset of the volume of the file system holding the byte.
    pub partition: Option<u64>,
    /// Indices (into the listing) of the records whose runs contain the
    /// byte, the preferred first (see the crate documentation); empty
    /// unless `area` is [`Area::File`].
    pub files: Vec<u32>,
}

/// One file system's extent and unallocated space.
#[derive(Clone, Debug)]
struct FsExtent {
    start: u64,
    end: u64,
    partition: u64,
    /// Sorted, merged; `None` when not known.
    unallocated: Option<Vec<(u64, u64)>>,
}

/// The per-job lookup structure: see the crate documentation.
#[derive(Clone, Debug, Default)]
pub struct Locator {
    runs: IntervalIndex,
    /// Allocation state of each record (allocated first in the preference).
    allocated: Vec<bool>,
    filesystems: Vec<FsExtent>,
}

impl Locator {
    /// Builds the locator from a job's listing (records in result order)
    /// and its summary.
    pub fn new(records: &[FileRecord], summary: Option<&FilesSummary>) -> Self {
        let mut items = Vec::with_capacity(records.iter().map(|r| r.runs.len()).sum());
        for (i, r) in records.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            for &(off, len) in &r.runs {
                items.push((off, off.saturating_add(len), i));
            }
        }
        let mut filesystems: Vec<FsExtent> = summary
            .map(|s| {
                s.filesystems
                    .iter()
                    .map(|f| FsExtent {
                        start: f.partition_offset,
                        end: f.partition_offset.saturating_add(f.size),
                        partition: f.partition_offset,
                        unallocated: f.unallocated.as_ref().map(|u| merged(u)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        filesystems.sort_by_key(|f| (f.start, f.end));
        Self {
            runs: IntervalIndex::new(items),
            allocated: records.iter().map(|r| r.alloc == "allocated").collect(),
            filesystems,
        }
    }

    /// Number of byte runs indexed.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Where image byte `offset` is.
    pub fn locate(&self, offset: u64) -> Place {
        let mut files = Vec::new();
        let (area, partition) = self.locate_into(offset, &mut files);
        Place {
            area,
            partition,
            files,
        }
    }

    /// As [`Locator::locate`], the files written into `files` (cleared
    /// first): no allocation once `files` has grown, for placing many
    /// findings in a row.
    pub fn locate_into(&self, offset: u64, files: &mut Vec<u32>) -> (Area, Option<u64>) {
        files.clear();
        // Most bytes lie in one run: the hits are kept inline.
        let mut inline = [(0u64, 0u64, 0u32); 4];
        let mut n = 0usize;
        let mut more: Vec<(u64, u64, u32)> = Vec::new();
        self.runs.containing(offset, |s, e, v| {
            if n < inline.len() {
                inline[n] = (s, e, v);
                n += 1;
            } else {
                more.push((s, e, v));
            }
        });
        let fs = self.filesystem(offset);
        let partition = fs.map(|f| f.partition);
        if n == 1 {
            files.push(inline[0].2);
            return (Area::File, partition);
        }
        if n > 1 {
            more.extend_from_slice(&inline[..n]);
            let alloc = |v: u32| self.allocated.get(v as usize).copied().unwrap_or(false);
            // allocated first, then the latest start, the shortest run, the
            // record order
            more.sort_by(|a, b| {
                alloc(b.2)
                    .cmp(&alloc(a.2))
                    .then(b.0.cmp(&a.0))
                    .then(a.1.cmp(&b.1))
                    .then(a.2.cmp(&b.2))
            });
            for (_, _, v) in more {
                if !files.contains(&v) {
                    files.push(v);
                }
            }
            return (Area::File, partition);
        }
        let area = match fs {
            None => Area::Outside,
            Some(f) => match &f.unallocated {
                None => Area::NotInFile,
                Some(u) if in_ranges(u, offset) => Area::Unallocated,
                Some(_) => Area::Metadata,
            },
        };
        (area, partition)
    }

    /// The records whose runs overlap `[start, end)`, each with the bytes
    /// of the range its runs cover, in record order.
    pub fn overlapping(&self, start: u64, end: u64) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = Vec::new();
        self.runs.overlapping(start, end, |s, e, i| {
            v.push((i, e.min(end) - s.max(start)));
        });
        v.sort_unstable();
        let mut out: Vec<(u32, u64)> = Vec::with_capacity(v.len());
        for (i, n) in v {
            match out.last_mut() {
                Some(last) if last.0 == i => last.1 += n,
                _ => out.push((i, n)),
            }
        }
        out
    }

    /// The file system whose extent holds `offset` (the innermost, should
    /// extents nest).
    fn filesystem(&self, offset: u64) -> Option<&FsExtent> {
        let p = self.filesystems.partition_point(|f| f.start <= offset);
        self.filesystems[..p].iter().rev().find(|f| offset < f.end)
    }
}

/// `ranges` sorted and merged.
fn merged(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = ranges
        .iter()
        .filter(|r| r.1 > 0)
        .map(|&(o, l)| (o, o.saturating_add(l)))
        .collect();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The space `--carve-scope unallocated` carves: every file system's
/// unallocated space, and the image outside every file system (partition
/// gaps, slack after the last volume, volumes without a file system).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CarveSpace {
    /// Image ranges `[start, end)`, sorted, disjoint, none empty.
    pub ranges: Vec<(u64, u64)>,
    /// Partition offsets of the file systems whose allocation is not known
    /// (their whole extent is carved: nothing is left unexamined).
    pub unknown: Vec<u64>,
}

impl CarveSpace {
    /// The carving space of an image of `image_size` bytes whose file
    /// systems are `summary`'s.
    pub fn of(summary: &FilesSummary, image_size: u64) -> Self {
        let clip = |v: Vec<(u64, u64)>| -> Vec<(u64, u64)> {
            v.into_iter()
                .map(|(s, e)| (s, e.min(image_size)))
                .filter(|r| r.0 < r.1)
                .collect()
        };
        let mut unknown = Vec::new();
        let mut known = Vec::new();
        let mut free = Vec::new();
        for f in &summary.filesystems {
            match &f.unallocated {
                Some(u) => {
                    known.push((f.partition_offset, f.size));
                    free.extend_from_slice(u);
                }
                None => unknown.push(f.partition_offset),
            }
        }
        let known = clip(merged(&known));
        // Outside the file systems whose allocation is known ...
        let mut ranges = Vec::with_capacity(known.len() + 1 + free.len());
        let mut pos = 0u64;
        for &(s, e) in &known {
            if s > pos {
                ranges.push((pos, s.min(image_size)));
            }
            pos = pos.max(e);
        }
        if pos < image_size {
            ranges.push((pos, image_size));
        }
        // ... and their unallocated space.
        ranges.extend(clip(merged(&free)));
        let ranges: Vec<(u64, u64)> = ranges.iter().map(|&(s, e)| (s, e - s)).collect();
        unknown.sort_unstable();
        unknown.dedup();
        Self {
            ranges: clip(merged(&ranges)),
            unknown,
        }
    }

    /// Bytes in the space.
    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.1 - r.0).sum()
    }
}

/// Whether `offset` is in one of the sorted, merged `[start, end)` ranges.
fn in_ranges(ranges: &[(u64, u64)], offset: u64) -> bool {
    let p = ranges.partition_point(|r| r.0 <= offset);
    p > 0 && offset < ranges[p - 1].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carve_space_is_free_space_and_what_lies_outside_file_systems() {
        let fs =
            |off: u64, size: u64, u: Option<Vec<(u64, u64)>>| trawl_core::files::FileSystemRecord {
                partition_offset: off,
                fs: "ext4".into(),
                label: None,
                block_size: 4096,
                size,
                entries: 0,
                unallocated: u,
            };
        let summary = FilesSummary {
            filesystems: vec![
                fs(1000, 1000, Some(vec![(1500, 100), (1100, 50), (1550, 100)])),
                fs(3000, 500, None),
                // past the end of a truncated image
                fs(4000, 5000, Some(vec![(4100, 10), (7000, 10)])),
            ],
            ..Default::default()
        };
        let sp = CarveSpace::of(&summary, 5000);
        assert_eq!(
            sp.ranges,
            vec![
                (0, 1000),
                (1100, 1150),
                (1500, 1650),
                (2000, 4000),
                (4100, 4110)
            ]
        );
        assert_eq!(sp.unknown, vec![3000]);
        assert_eq!(sp.bytes(), 1000 + 50 + 150 + 2000 + 10);
        assert_eq!(
            CarveSpace::of(&FilesSummary::default(), 77).ranges,
            vec![(0, 77)]
        );
    }
    use trawl_core::files::{FileSystemRecord, MacbTimes};

    fn rec(path: &str, alloc: &str, runs: &[(u64, u64)]) -> FileRecord {
        FileRecord {
            partition_offset: 1000,
            fs: "fat16".into(),
            path: path.into(),
            inode: 0,
            kind: "file".into(),
            alloc: alloc.into(),
            size: runs.iter().map(|r| r.1).sum(),
            md5: None,
            sha1: None,
            sha256: None,
            times: MacbTimes::default(),
            fn_times: None,
            mode: 0,
            uid: 0,
            gid: 0,
            known: None,
            known_set: None,
            runs: runs.to_vec(),
            error: None,
        }
    }

    fn summary(unallocated: Option<Vec<(u64, u64)>>) -> FilesSummary {
        FilesSummary {
            filesystems: vec![FileSystemRecord {
                partition_offset: 1000,
                fs: "fat16".into(),
                label: None,
                block_size: 512,
                size: 10_000,
                entries: 3,
                unallocated,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn places() {
        let recs = vec![
            rec("$MFT", "allocated", &[(2000, 4096)]),
            rec("a.txt", "allocated", &[(3000, 100)]),
            rec("old.txt", "deleted", &[(1500, 600), (8000, 512)]),
            rec("frag.bin", "allocated", &[(7000, 512), (9000, 512)]),
        ];
        let s = summary(Some(vec![(8000, 1000), (9512, 488)]));
        let l = Locator::new(&recs, Some(&s));
        assert_eq!(l.runs(), 6);
        // resident data inside $MFT: the innermost run first
        assert_eq!(l.locate(3050).files, vec![1, 0]);
        // deleted and allocated overlap: allocated first
        assert_eq!(l.locate(2050).files, vec![0, 2]);
        let p = l.locate(1600);
        assert_eq!(
            (p.area, p.partition, p.files),
            (Area::File, Some(1000), vec![2])
        );
        assert_eq!(l.locate(9511).files, vec![3]);
        assert_eq!(l.locate(8600).area, Area::Unallocated);
        assert_eq!(l.locate(9600).area, Area::Unallocated);
        assert_eq!(l.locate(1100).area, Area::Metadata);
        assert_eq!(l.locate(999).area, Area::Outside);
        assert_eq!(l.locate(999).partition, None);
        assert_eq!(l.locate(11_000).area, Area::Outside);
        // a carved range over two files
        assert_eq!(l.overlapping(7400, 9100), vec![(2, 512), (3, 212)]);
        // no allocation map: not said to be metadata
        let l = Locator::new(&recs, Some(&summary(None)));
        assert_eq!(l.locate(8600).area, Area::NotInFile);
    }
}
