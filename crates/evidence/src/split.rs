//! Split raw images: `NAME.001`, `NAME.002`, … (or `.000`…, `.aa`/`.ab`…),
//! read as their concatenation.

use crate::raw::{map_file, release_range};
use crate::remote::Handle;
use crate::{Evidence, EvidenceError, EvidenceInfo, Format, StoredHashes};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    start: u64,
    len: u64,
    file: Handle,
    map: Option<Mmap>,
}

/// Several raw files read as one image.
#[derive(Debug)]
pub struct SplitRawEvidence {
    info: EvidenceInfo,
    segments: Vec<Segment>,
}

impl SplitRawEvidence {
    /// Opens the given segment files, in order, as one image.
    ///
    /// # Errors
    /// A missing or unreadable segment.
    pub fn open(paths: &[PathBuf]) -> Result<Self, EvidenceError> {
        let mut segments = Vec::with_capacity(paths.len());
        let mut start = 0u64;
        // (device, inode) of each segment: a segment given twice (under
        // two names, or through a symbolic link) would read the same bytes
        // twice as different parts of the image.
        // Objects are told apart by their locator.
        let mut seen: Vec<Option<(u64, u64)>> = Vec::with_capacity(paths.len());
        for p in paths {
            let (file, len) = Handle::open(p)?;
            let mut id = None;
            #[cfg(unix)]
            if let Some(m) = file.file().and_then(|f| f.metadata().ok()) {
                use std::os::unix::fs::MetadataExt;
                id = Some((m.dev(), m.ino()));
            }
            let dup = match id {
                Some(id) => seen.iter().position(|s| *s == Some(id)),
                None => paths[..seen.len()].iter().position(|q| q == p),
            };
            if let Some(i) = dup {
                return Err(EvidenceError::DuplicateSegment {
                    path: p.clone(),
                    first: paths[i].clone(),
                    first_index: i,
                });
            }
            seen.push(id);
            let map = file.file().and_then(|f| map_file(f, len));
            segments.push(Segment {
                path: p.clone(),
                start,
                len,
                file,
                map,
            });
            start += len;
        }
        let first = paths.first().cloned().unwrap_or_default();
        Ok(Self {
            info: EvidenceInfo {
                path: first,
                segments: paths.to_vec(),
                size: start,
                format: if paths.len() > 1 {
                    Format::SplitRaw
                } else {
                    Format::Raw
                },
                stored: StoredHashes::default(),
                metadata: BTreeMap::new(),
                acquisition_errors: Vec::new(),
                bytes_per_sector: 512,
            },
            segments,
        })
    }

    fn segment_index(&self, offset: u64) -> usize {
        // Last segment whose start is <= offset (empty segments skipped by the
        // partition point on start).
        self.segments
            .partition_point(|s| s.start <= offset)
            .saturating_sub(1)
    }
}

impl Evidence for SplitRawEvidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        let size = self.info.size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min((size - offset) as usize);
        let mut done = 0usize;
        let mut i = self.segment_index(offset);
        while done < want && i < self.segments.len() {
            let seg = &self.segments[i];
            let pos = offset + done as u64;
            if pos >= seg.start + seg.len {
                i += 1;
                continue;
            }
            let in_seg = pos - seg.start;
            let n = (want - done).min((seg.len - in_seg) as usize);
            let dst = &mut buf[done..done + n];
            if let Some(map) = &seg.map {
                dst.copy_from_slice(&map[in_seg as usize..in_seg as usize + n]);
            } else {
                let got = seg.file.pread_full(&seg.path, in_seg, dst)?;
                if got < n {
                    return Err(EvidenceError::Truncated {
                        path: seg.path.clone(),
                        offset: in_seg + got as u64,
                        what: format!("segment shrank below its opened size of {} bytes", seg.len),
                    });
                }
            }
            done += n;
            i += 1;
        }
        Ok(done)
    }

    fn release(&self, start: u64, end: u64) {
        for seg in &self.segments {
            let (s, e) = (start.max(seg.start), end.min(seg.start + seg.len));
            if s < e
                && let Some(map) = &seg.map
            {
                release_range(map, s - seg.start, e - seg.start);
            }
        }
    }

    fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let seg = &self.segments[self.segment_index(offset)];
        let map = seg.map.as_ref()?;
        let in_seg = offset.checked_sub(seg.start)?;
        let end = in_seg.checked_add(len as u64)?;
        (end <= seg.len).then(|| &map[in_seg as usize..end as usize])
    }
}

/// The segment files of a split raw image whose first segment is `first`:
/// `x.001` → `x.002`…, `x.000` → `x.001`…, `x.aa` → `x.ab`…. Returns just
/// `first` when its name does not follow a split pattern.
pub(crate) fn discover_segments(first: &Path) -> Vec<PathBuf> {
    let name = match first.file_name().and_then(|n| n.to_str()) {
        Some(n) => n,
        None => return vec![first.to_path_buf()],
    };
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return vec![first.to_path_buf()];
    };
    let dir = first.parent().unwrap_or(Path::new(""));
    let mut out = vec![first.to_path_buf()];
    if !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_digit()) && ext.len() >= 2 {
        let width = ext.len();
        let Ok(n0) = ext.parse::<u64>() else {
            return out;
        };
        if n0 > 1 {
            return out;
        }
        for n in n0 + 1.. {
            let p = dir.join(format!("{stem}.{n:0width$}"));
            if !crate::remote::segment_exists(&p) {
                break;
            }
            out.push(p);
        }
    } else if ext.len() == 2 && ext == "aa" {
        let mut cur = *b"aa";
        loop {
            if cur[1] == b'z' {
                if cur[0] == b'z' {
                    break;
                }
                cur = [cur[0] + 1, b'a'];
            } else {
                cur[1] += 1;
            }
            let p = dir.join(format!(
                "{stem}.{}",
                std::str::from_utf8(&cur).unwrap_or("zz")
            ));
            if !crate::remote::segment_exists(&p) {
                break;
            }
            out.push(p);
        }
    }
    out
}

#[cfg(all(test, unix))]
mod duplicate_tests {
    use super::*;

    /// A segment given twice, or through a symbolic link to another, is
    /// refused, naming both.
    #[test]
    fn the_same_file_twice_is_not_two_segments() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("disk.001");
        let b = d.path().join("disk.002");
        std::fs::write(&a, vec![1u8; 4096]).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let Err(e) = SplitRawEvidence::open(&[a.clone(), b.clone()]) else {
            panic!("the same file twice was accepted as two segments")
        };
        assert_eq!(
            e.to_string(),
            format!(
                "{}: the same file as segment 1 ({}): a split image's segments must be distinct files",
                b.display(),
                a.display()
            )
        );
        let c = d.path().join("disk.003");
        std::fs::write(&c, vec![2u8; 4096]).unwrap();
        assert!(SplitRawEvidence::open(&[a, c]).is_ok());
    }
}
