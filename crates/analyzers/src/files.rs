//! The file-system analysis: list an image's volumes and file systems
//! (`trawl-fs`), group the files into hashing tasks of bounded bytes, and
//! hash a group's contents (MD5, SHA-1, SHA-256) read through their runs.
//!
//! The listing is planned once per job (by the scheduler, which opens the
//! evidence anyway); the hashing, which reads the content, is what the
//! workers share. Records are sorted (partition, path, inode) and a file is
//! named by its index in that order, so the result does not depend on how
//! the groups were spread over workers.

use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use trawl_core::files::{FileSystemRecord, FileTime, FsLimitation, MacbTimes, VolumeRecord};
use trawl_core::{FileHashes, FileRecord, FilesListing, FilesSummary};
use trawl_evidence::Evidence;
use trawl_fs::{Content, ContentReader, FsError, Times, Timestamp, VolumeKind};

/// A job's listing and, for each record (same index), where its content is.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    pub listing: FilesListing,
    pub contents: Vec<Content>,
}

fn time(t: Option<Timestamp>) -> Option<FileTime> {
    t.map(|t| FileTime {
        secs: t.secs,
        nanos: t.nanos,
    })
}

fn macb(t: &Times) -> MacbTimes {
    MacbTimes {
        mtime: time(t.mtime),
        atime: time(t.atime),
        ctime: time(t.ctime),
        crtime: time(t.crtime),
    }
}

/// Lists every volume, file system and file of `ev`.
///
/// # Errors
/// I/O errors reading the evidence (damaged structures are limitations in
/// the summary, not errors).
pub fn list(ev: &dyn Evidence) -> Result<Planned, FsError> {
    let img = trawl_fs::list_image(ev)?;
    let mut summary = FilesSummary {
        volume_system: match img.volume_system {
            trawl_fs::volume::VolumeSystemKind::None => "none",
            trawl_fs::volume::VolumeSystemKind::Mbr => "mbr",
            trawl_fs::volume::VolumeSystemKind::Gpt => "gpt",
        }
        .to_string(),
        ..Default::default()
    };
    for v in &img.volumes {
        summary.volumes.push(VolumeRecord {
            slot: v.slot,
            offset: v.offset,
            length: v.length,
            kind: match &v.kind {
                VolumeKind::Whole => "whole",
                VolumeKind::Mbr { logical: false, .. } => "mbr",
                VolumeKind::Mbr { logical: true, .. } => "logical",
                VolumeKind::Extended { .. } => "extended",
                VolumeKind::Gpt { .. } => "gpt",
            }
            .to_string(),
            type_name: v.type_name.clone(),
            label: v.label.clone(),
            fs: img
                .filesystems
                .iter()
                .find(|f| f.partition_offset == v.offset)
                .map(|f| f.fs.name().to_string()),
        });
    }
    let lim = |l: &trawl_fs::Limitation| FsLimitation {
        volume_offset: l.volume_offset,
        structure: l.structure.clone(),
        offset: l.offset,
        what: l.what.clone(),
    };
    summary.limitations.extend(img.limitations.iter().map(lim));
    let mut pairs: Vec<(FileRecord, Content)> = Vec::new();
    for fs in img.filesystems {
        summary.filesystems.push(FileSystemRecord {
            partition_offset: fs.partition_offset,
            fs: fs.fs.name().to_string(),
            label: fs.label.clone(),
            block_size: fs.block_size,
            size: fs.size,
            entries: fs.entries.len() as u64,
            unallocated: Some(fs.unallocated.clone()),
        });
        summary.limitations.extend(fs.limitations.iter().map(lim));
        for e in fs.entries {
            let rec = FileRecord {
                partition_offset: fs.partition_offset,
                fs: fs.fs.name().to_string(),
                path: e.path,
                inode: e.inode,
                kind: match e.kind {
                    trawl_fs::FileType::File => "file",
                    trawl_fs::FileType::Dir => "dir",
                    trawl_fs::FileType::Link => "link",
                    trawl_fs::FileType::Other => "other",
                }
                .to_string(),
                alloc: match e.alloc {
                    trawl_fs::Alloc::Allocated => "allocated",
                    trawl_fs::Alloc::Deleted => "deleted",
                    trawl_fs::Alloc::Orphan => "orphan",
                }
                .to_string(),
                size: e.size,
                md5: None,
                sha1: None,
                sha256: None,
                times: macb(&e.times),
                fn_times: e.fn_times.as_ref().map(macb),
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                known: None,
                known_set: None,
                runs: e.content.image_runs(),
                error: None,
            };
            pairs.push((rec, e.content));
        }
    }
    pairs.par_sort_by(|a, b| a.0.sort_cmp(&b.0));
    let (records, contents) = pairs.into_iter().unzip();
    Ok(Planned {
        listing: FilesListing { summary, records },
        contents,
    })
}

/// Cuts the hashable records into groups of about `task_bytes` bytes of
/// content each (a file larger than that is a group of its own), in index
/// order. Deterministic: depends only on the listing and `task_bytes`.
pub fn groups(p: &Planned, task_bytes: u64) -> Vec<Vec<(u32, Content)>> {
    let task_bytes = task_bytes.max(1);
    let mut out: Vec<Vec<(u32, Content)>> = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0u64;
    for (i, (r, c)) in p.listing.records.iter().zip(&p.contents).enumerate() {
        if !r.hashable() {
            continue;
        }
        let n = c.size().max(1);
        if !cur.is_empty() && bytes.saturating_add(n) > task_bytes {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push((i as u32, c.clone()));
        bytes = bytes.saturating_add(n);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// MD5, SHA-1 and SHA-256 of each file's content, files in parallel. A
/// file whose content cannot be read gets an error naming why, and the
/// others are still hashed. `cancel` stops early (the result is then
/// incomplete and the caller discards it).
pub fn hash_files(
    ev: &dyn Evidence,
    files: &[(u32, Content)],
    cancel: &AtomicBool,
) -> Vec<FileHashes> {
    files
        .par_iter()
        .map(|(index, c)| {
            let mut h = FileHashes {
                index: *index,
                md5: String::new(),
                sha1: String::new(),
                sha256: String::new(),
                error: String::new(),
            };
            if cancel.load(Ordering::Relaxed) {
                h.error = "cancelled".into();
                return h;
            }
            let mut md5 = trawl_hash::md5::Md5::new();
            let mut sha = trawl_hash::sha_pair::Sha1Sha256::new();
            let r = ContentReader { img: ev }.read(c, &mut |b: &[u8]| {
                md5.update(b);
                sha.update(b);
            });
            match r
                .map_err(|e| e.to_string())
                .and_then(|()| md5.finalize().map_err(|e| e.to_string()))
            {
                Ok(m) => {
                    let (s1, s256) = sha.finalize();
                    h.md5 = hex::encode(m);
                    h.sha1 = hex::encode(s1);
                    h.sha256 = hex::encode(s256);
                }
                Err(e) => h.error = e,
            }
            h
        })
        .collect()
}

/// Fills the listing's records with the digests of the hashing tasks.
pub fn apply_hashes(listing: &mut FilesListing, hashes: impl IntoIterator<Item = FileHashes>) {
    for h in hashes {
        if let Some(r) = listing.records.get_mut(h.index as usize) {
            if h.error.is_empty() {
                r.md5 = Some(h.md5);
                r.sha1 = Some(h.sha1);
                r.sha256 = Some(h.sha256);
            } else {
                r.error = Some(h.error);
            }
        }
    }
}

/// Looks every hashed file up in the known-file and notable-file hash sets
/// (notable wins), setting `known` / `known_set` and the summary's counts.
///
/// # Errors
/// A set that cannot be opened or read, naming it.
pub fn apply_known(
    listing: &mut FilesListing,
    known: &[String],
    notable: &[String],
) -> Result<(), String> {
    if known.is_empty() && notable.is_empty() {
        return Ok(());
    }
    let sets = trawl_known::KnownSets::open(known, notable).map_err(|e| e.to_string())?;
    // Batched lookups (the set's index and pages of many files fetched
    // together), batches spread over the pool.
    let digests: Vec<Option<trawl_known::Digests>> = listing
        .records
        .iter()
        .map(|r| {
            if r.md5.is_none() && r.sha1.is_none() && r.sha256.is_none() {
                return Ok(None);
            }
            trawl_known::Digests::from_hex(r.md5.as_deref(), r.sha1.as_deref(), r.sha256.as_deref())
                .map(Some)
        })
        .collect::<Result<_, String>>()?;
    let batches: Vec<Vec<Option<trawl_known::Hit>>> = digests
        .par_chunks(4096)
        .map(|chunk| {
            let present: Vec<trawl_known::Digests> = chunk.iter().flatten().copied().collect();
            let mut found = sets
                .lookup_many(&present)
                .map_err(|e| e.to_string())?
                .into_iter();
            Ok(chunk
                .iter()
                .map(|d| d.as_ref().and_then(|_| found.next().flatten()))
                .collect())
        })
        .collect::<Result<_, String>>()?;
    let hits = batches.into_iter().flatten().map(Ok::<_, String>);
    let (mut k, mut n) = (0, 0);
    for (r, h) in listing.records.iter_mut().zip(hits) {
        if let Some(h) = h? {
            let notable = h.kind == trawl_known::Kind::Notable;
            if notable {
                n += 1;
            } else {
                k += 1;
            }
            r.known = Some(if notable { "notable" } else { "known" }.to_string());
            r.known_set = Some(h.set.to_string());
        }
    }
    listing.summary.known = k;
    listing.summary.notable = n;
    Ok(())
}

/// The image ranges of the known files' content, sorted and merged: what
/// `--skip-known` keeps out of feature extraction and YARA.
pub fn known_ranges(listing: &FilesListing) -> Vec<(u64, u64)> {
    known_ranges_of(&listing.records)
}

/// As [`known_ranges`], from the records.
pub fn known_ranges_of(records: &[FileRecord]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = records
        .iter()
        .filter(|r| r.known.as_deref() == Some("known"))
        .flat_map(|r| r.runs.iter().map(|&(o, l)| (o, o.saturating_add(l))))
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

/// Whether image offset `off` lies in one of the sorted, merged `ranges`.
pub fn in_ranges(ranges: &[(u64, u64)], off: u64) -> bool {
    let i = ranges.partition_point(|r| r.1 <= off);
    ranges.get(i).is_some_and(|r| r.0 <= off)
}

/// The step of a forensic path that reads a file through its byte runs:
/// `FILESTART-FILE-L…` is the feature at offset `L` of the content of the
/// file whose first byte is at image offset `FILESTART` (then the usual
/// steps: `…-GZIP-N`, `…-UTF16`).
pub const FILE_STEP: &str = "FILE";

/// Whether the raw pass cannot read `c` as it lies on the image: compressed,
/// sparse inside its size, or in runs that do not follow one another.
pub fn needs_file_pass(c: &Content) -> bool {
    match c {
        Content::None | Content::Resident { .. } => false,
        Content::Lznt1 { .. } => true,
        Content::Runs { runs, size } => {
            let mut left = *size;
            let mut next: Option<u64> = None;
            for r in runs {
                if left == 0 {
                    break;
                }
                let Some(o) = r.offset else { return true };
                if next.is_some_and(|n| n != o) {
                    return true;
                }
                let n = r.length.min(left);
                left -= n;
                next = Some(o.saturating_add(n));
            }
            false
        }
    }
}

/// The image offset of logical byte `l` of `c`; `None` in compressed or
/// sparse content, or past its size.
pub fn image_offset(c: &Content, l: u64) -> Option<u64> {
    match c {
        Content::Runs { runs, size } if l < *size => {
            let mut at = 0u64;
            for r in runs {
                if l < at.saturating_add(r.length) {
                    return r.offset.map(|o| o + (l - at));
                }
                at = at.saturating_add(r.length);
            }
            None
        }
        Content::Resident { bytes, offset } if l < bytes.len() as u64 => Some(offset + l),
        _ => None,
    }
}

/// The features of the files the raw pass cannot read as they lie
/// ([`needs_file_pass`]: fragmented, sparse, NTFS-compressed), each file's
/// content scanned as a buffer of its own (decoded containers inside it
/// included). A feature's forensic path gets the [`FILE_STEP`] prefix, its
/// offset is the image offset of its first byte when that byte lies on the
/// image as it is, else of the file's first byte. The results merge drops
/// those the raw pass also found ([`file_feature_raw_path`]). Files larger
/// than [`MAX_ASSEMBLED`] get a note.
///
/// # Errors
/// Cancellation.
pub fn features_files(
    ev: &dyn Evidence,
    files: &[(u32, Content)],
    scanner: &trawl_features::FeatureScanner,
    cancel: &AtomicBool,
) -> Result<(Vec<trawl_core::Feature>, Vec<trawl_core::Note>), String> {
    let each = files
        .par_iter()
        .filter(|(_, c)| needs_file_pass(c))
        .map(|(index, c)| {
            if cancel.load(Ordering::Relaxed) {
                return Err("cancelled".to_string());
            }
            let start = c.image_runs().first().map_or(0, |r| r.0);
            let note = |msg: String| trawl_core::Note {
                analysis: "features".into(),
                offset: start,
                message: format!("file {index} of the listing (first byte at {start}): {msg}"),
            };
            let size = c.size();
            if size > MAX_ASSEMBLED {
                return Ok((Vec::new(), vec![note(format!(
                    "not scanned as a file: fragmented or compressed, {size} bytes (more than {MAX_ASSEMBLED} assembled in memory); its runs were scanned on the image"
                ))]));
            }
            let mut data = Vec::with_capacity(size as usize);
            if let Err(e) =
                (ContentReader { img: ev }).read(c, &mut |b: &[u8]| data.extend_from_slice(b))
            {
                return Ok((Vec::new(), vec![note(e.to_string())]));
            }
            let out = scanner.scan_buffer(&data, cancel).map_err(|e| e.to_string())?;
            let features = out
                .features
                .into_iter()
                .map(|mut f| {
                    f.path = format!("{start}-{FILE_STEP}-{}", f.path);
                    f.offset = image_offset(c, f.offset).unwrap_or(start);
                    f
                })
                .collect::<Vec<_>>();
            let notes = out.notes.into_iter().map(|n| note(n.message)).collect();
            Ok((features, notes))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut features = Vec::new();
    let mut notes = Vec::new();
    for (f, n) in each {
        features.extend(f);
        notes.extend(n);
    }
    Ok((features, notes))
}

/// The forensic path the raw pass gives a feature that a file pass found
/// at `f.path` (`FILESTART-FILE-L…`), when its first byte lies on the image
/// at `f.offset`: `OFFSET…`. `None` for a path without the file step.
pub fn file_feature_raw_path(f: &trawl_core::Feature) -> Option<String> {
    let (_, rest) = f.path.split_once(&format!("-{FILE_STEP}-"))?;
    let tail = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    Some(format!("{}{tail}", f.offset))
}

/// Drops the features found by a file pass that the raw pass also found
/// (same scanner, same feature, the same place on the image): each feature
/// is reported once. Returns how many were dropped.
pub fn dedupe_file_features(features: &mut Vec<trawl_core::Feature>) -> usize {
    let step = format!("-{FILE_STEP}-");
    if !features.iter().any(|f| f.path.contains(&step)) {
        return 0;
    }
    let raw: std::collections::HashSet<(&str, &[u8], &str)> = features
        .iter()
        .filter(|f| !f.path.contains(&step))
        .map(|f| (f.scanner.as_str(), f.feature.as_slice(), f.path.as_str()))
        .collect();
    let drop: Vec<bool> = features
        .iter()
        .map(|f| {
            file_feature_raw_path(f).is_some_and(|p| {
                raw.contains(&(f.scanner.as_str(), f.feature.as_slice(), p.as_str()))
            })
        })
        .collect();
    let before = features.len();
    let mut i = 0;
    features.retain(|_| {
        i += 1;
        !drop[i - 1]
    });
    before - features.len()
}

/// The YARA target of a file-system file: `fs:PARTITION_OFFSET/PATH`.
pub fn fs_target(partition_offset: u64, path: &str) -> String {
    format!("fs:{partition_offset}/{path}")
}

#[cfg(feature = "yara")]
mod per_file_yara {
    use super::*;

    /// A file-system file to scan as a file: its index in the listing, its
    /// content, and where it is.
    #[derive(Clone, Debug)]
    pub struct NamedContent {
        pub index: u32,
        pub content: Content,
        pub partition_offset: u64,
        /// From the file system's root (`DOCS/NOTES.TXT`, `a.txt:stream`).
        pub path: String,
    }

    /// The largest content a per-file scan assembles in memory from several
    /// runs (a contiguous file is scanned where it lies, whatever its size).
    pub const MAX_ASSEMBLED: u64 = 256 << 20;

    /// What [`yara_files`] found.
    #[derive(Debug, Default)]
    pub struct FileScan {
        pub matches: Vec<trawl_core::YaraMatch>,
        pub notes: Vec<trawl_core::Note>,
        /// Content bytes scanned.
        pub bytes: u64,
    }

    /// Scans each file's content as a file with the whole rule set, external
    /// variables set (`filename`: the last path component, `filepath`: the
    /// path, `extension`: after the name's last dot, `filetype`: `file`), as
    /// `yara` scans the files `tsk_recover` extracts. Fragmented, sparse and
    /// compressed files are scanned as their logical content; string offsets
    /// are offsets in that content. Matches are targeted at
    /// [`fs_target`], with the file's first image byte as target offset. A file
    /// whose content cannot be read, or that is fragmented and larger than
    /// [`MAX_ASSEMBLED`], gets a note naming it and why.
    ///
    /// # Errors
    /// The rule set failing to compile; cancellation.
    pub fn yara_files(
        ev: &dyn Evidence,
        files: &[NamedContent],
        rules: &crate::yara::RuleSet,
        limits: crate::yara::Limits,
        cancel: &AtomicBool,
    ) -> Result<FileScan, String> {
        let full = rules.full().map_err(|e| e.to_string())?;
        let note = |f: &NamedContent, at: u64, msg: String| trawl_core::Note {
            analysis: "yara".into(),
            offset: at,
            message: format!("{}: {msg}", fs_target(f.partition_offset, &f.path)),
        };
        type One = (Vec<trawl_core::YaraMatch>, Option<trawl_core::Note>, u64);
        let scan_one = |scanner: &mut crate::yara::Scanner<'_>,
                        f: &NamedContent|
         -> Result<One, String> {
            if cancel.load(Ordering::Relaxed) {
                return Err("cancelled".into());
            }
            let runs = f.content.image_runs();
            let first = runs.first().map_or(f.partition_offset, |r| r.0);
            let target = fs_target(f.partition_offset, &f.path);
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            let extension = name.rsplit_once('.').map_or("", |(_, e)| e);
            let externals = [
                ("filename", name),
                ("filepath", f.path.as_str()),
                ("extension", extension),
                ("filetype", "file"),
            ];
            let size = f.content.size();
            // Contiguous content: scanned where it lies.
            let contiguous = match &f.content {
                Content::Runs { runs, .. } => runs
                    .first()
                    .and_then(|r| r.offset.filter(|_| r.length >= size)),
                _ => None,
            };
            let (m, n) = if let Some(at) = contiguous {
                let data = ev
                    .region(at, at.saturating_add(size))
                    .map_err(|e| e.to_string());
                let data = match data {
                    Ok(d) if d.len() as u64 == size => d,
                    Ok(_) => {
                        return Ok((
                            Vec::new(),
                            Some(note(f, first, "content passes the image end".into())),
                            0,
                        ));
                    }
                    Err(e) => return Ok((Vec::new(), Some(note(f, first, e)), 0)),
                };
                let r = full
                    .scan_file(scanner, &data, &target, first, &externals)
                    .map_err(|e| e.to_string())?;
                drop(data);
                ev.release(at, at.saturating_add(size));
                r
            } else {
                if size > MAX_ASSEMBLED {
                    let msg = format!(
                        "not scanned as a file: fragmented or compressed, {size} bytes (more than {MAX_ASSEMBLED} assembled in memory); its runs were scanned on the image"
                    );
                    return Ok((Vec::new(), Some(note(f, first, msg)), 0));
                }
                let mut data = Vec::with_capacity(size as usize);
                if let Err(e) = (ContentReader { img: ev })
                    .read(&f.content, &mut |b: &[u8]| data.extend_from_slice(b))
                {
                    return Ok((Vec::new(), Some(note(f, first, e.to_string())), 0));
                }
                full.scan_file(scanner, &data, &target, first, &externals)
                    .map_err(|e| e.to_string())?
            };
            Ok((m, n, size))
        };
        let each = full
            .scan_in_groups(limits, files, |f| f.content.size(), scan_one)
            .into_iter()
            .collect::<Result<Vec<One>, String>>()?;
        let mut out = FileScan::default();
        for (m, n, b) in each {
            out.matches.extend(m);
            out.notes.extend(n);
            out.bytes += b;
        }
        Ok(out)
    }
}
#[cfg(feature = "yara")]
pub use per_file_yara::*;

#[cfg(test)]
mod file_pass_tests {
    use super::*;
    use trawl_fs::Run;

    fn runs(v: &[(Option<u64>, u64)], size: u64) -> Content {
        Content::Runs {
            runs: v
                .iter()
                .map(|&(offset, length)| Run { offset, length })
                .collect(),
            size,
        }
    }

    #[test]
    fn which_files_need_a_file_pass_and_where_their_bytes_are() {
        let contiguous = runs(&[(Some(4096), 4096), (Some(8192), 4096)], 6000);
        assert!(!needs_file_pass(&contiguous));
        assert_eq!(image_offset(&contiguous, 5000), Some(9096));
        let split = runs(&[(Some(4096), 4096), (Some(65536), 4096)], 6000);
        assert!(needs_file_pass(&split));
        assert_eq!(image_offset(&split, 4095), Some(8191));
        assert_eq!(image_offset(&split, 4096), Some(65536));
        assert_eq!(image_offset(&split, 6000), None);
        // a second run past the size does not count
        let tail = runs(&[(Some(4096), 4096), (Some(65536), 4096)], 4000);
        assert!(!needs_file_pass(&tail));
        let sparse = runs(&[(Some(4096), 4096), (None, 4096)], 8192);
        assert!(needs_file_pass(&sparse));
        assert_eq!(image_offset(&sparse, 5000), None);
    }

    fn feat(path: &str, offset: u64, text: &str) -> trawl_core::Feature {
        trawl_core::Feature {
            scanner: "email".into(),
            offset,
            path: path.into(),
            feature: text.as_bytes().to_vec(),
            context: Vec::new(),
            utf16: false,
        }
    }

    #[test]
    fn a_feature_seen_on_the_image_and_in_a_file_is_kept_once() {
        let mut v = vec![
            feat("4196", 4196, "a@b.org"),
            // the same, through the file (logical 100, first byte at 4096)
            feat("4096-FILE-100", 4196, "a@b.org"),
            // across the runs' boundary: only in the file
            feat("4096-FILE-4090", 8186, "c@d.org"),
            // decoded inside a stream, both ways
            feat("5000-GZIP-7", 5000, "e@f.org"),
            feat("4096-FILE-904-GZIP-7", 5000, "e@f.org"),
        ];
        assert_eq!(file_feature_raw_path(&v[4]).as_deref(), Some("5000-GZIP-7"));
        assert_eq!(dedupe_file_features(&mut v), 2);
        let paths: Vec<&str> = v.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["4196", "4096-FILE-4090", "5000-GZIP-7"]);
    }
}
