//! Chosen ranges of an evidence item read end to end, as one stream: the
//! stream `blkls` writes for a file system's unallocated space. Carving
//! that stream finds a file whose clusters sit on either side of an
//! allocated one; [`Spans::image_runs`] maps what was found back to image
//! byte runs.

use crate::{Evidence, EvidenceError, EvidenceInfo};

/// `ranges` of `inner`, end to end. Offsets of this evidence are stream
/// offsets.
#[derive(Debug)]
pub struct Spans<'a> {
    inner: &'a dyn Evidence,
    info: EvidenceInfo,
    /// `(stream offset, image offset, length)`, by stream offset.
    runs: Vec<(u64, u64, u64)>,
}

/// One piece of a stream range in the image: `len` bytes at image offset
/// `img_offset`, at `stream_offset - first stream offset` in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRun {
    pub img_offset: u64,
    /// Offset inside the mapped stream range.
    pub rel_offset: u64,
    pub len: u64,
}

impl<'a> Spans<'a> {
    /// The image ranges `ranges` (`[start, end)`, sorted, disjoint, inside
    /// the media) of `inner`, end to end.
    ///
    /// # Errors
    /// [`EvidenceError::Corrupt`] naming the first range that is empty,
    /// out of order, overlapping or past the end of the media.
    pub fn new(inner: &'a dyn Evidence, ranges: &[(u64, u64)]) -> Result<Self, EvidenceError> {
        let mut runs = Vec::with_capacity(ranges.len());
        let mut pos = 0u64;
        let mut prev_end = 0u64;
        for (i, &(start, end)) in ranges.iter().enumerate() {
            if start >= end || start < prev_end || end > inner.size() {
                return Err(EvidenceError::Corrupt {
                    path: inner.info().path.clone(),
                    offset: start,
                    what: format!(
                        "range {i} ({start}..{end}) of a span list is empty, out of order, overlapping or past the end ({} bytes)",
                        inner.size()
                    ),
                });
            }
            runs.push((pos, start, end - start));
            pos += end - start;
            prev_end = end;
        }
        let mut info = inner.info().clone();
        info.size = pos;
        Ok(Self { inner, info, runs })
    }

    /// Index of the run holding stream offset `off` (`off` < size).
    fn run_of(&self, off: u64) -> usize {
        self.runs.partition_point(|r| r.0 <= off) - 1
    }

    /// The image offset of stream offset `off`, `None` past the end.
    pub fn to_image(&self, off: u64) -> Option<u64> {
        if off >= self.info.size {
            return None;
        }
        let (s, i, _) = self.runs[self.run_of(off)];
        Some(i + (off - s))
    }

    /// The image runs of stream bytes `[off, off + len)` (clipped to the
    /// stream), in order.
    pub fn image_runs(&self, off: u64, len: u64) -> Vec<SpanRun> {
        let end = off.saturating_add(len).min(self.info.size);
        let mut out = Vec::new();
        if off >= end {
            return out;
        }
        let mut k = self.run_of(off);
        let mut pos = off;
        while pos < end {
            let Some(&(s, i, l)) = self.runs.get(k) else {
                break;
            };
            let e = (s + l).min(end);
            out.push(SpanRun {
                img_offset: i + (pos - s),
                rel_offset: pos - off,
                len: e - pos,
            });
            pos = e;
            k += 1;
        }
        out
    }
}

impl Evidence for Spans<'_> {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        let mut done = 0usize;
        for r in self.image_runs(offset, buf.len() as u64) {
            let n = r.len as usize;
            self.inner
                .read_exact_at(r.img_offset, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(done)
    }

    fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len as u64)?;
        if end > self.info.size {
            return None;
        }
        if len == 0 {
            return Some(&[]);
        }
        let (s, i, l) = self.runs[self.run_of(offset)];
        if end > s + l {
            return None;
        }
        self.inner.mapped(i + (offset - s), len)
    }

    fn release(&self, start: u64, end: u64) {
        for r in self.image_runs(start, end.saturating_sub(start)) {
            self.inner.release(r.img_offset, r.img_offset + r.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemEvidence;

    fn image() -> MemEvidence {
        MemEvidence::new("img", (0..=255u8).cycle().take(4096).collect(), true)
    }

    #[test]
    fn reads_the_ranges_end_to_end_and_maps_back() {
        let ev = image();
        let sp = Spans::new(&ev, &[(10, 20), (100, 105), (4000, 4096)]).unwrap();
        assert_eq!(sp.size(), 10 + 5 + 96);
        let mut buf = vec![0u8; 20];
        assert_eq!(sp.read_at(5, &mut buf).unwrap(), 20);
        let want: Vec<u8> = (15..20u64)
            .chain(100..105)
            .chain(4000..4010)
            .map(|i| (i % 256) as u8)
            .collect();
        assert_eq!(buf, want);
        assert_eq!(sp.to_image(0), Some(10));
        assert_eq!(sp.to_image(10), Some(100));
        assert_eq!(sp.to_image(15), Some(4000));
        assert_eq!(sp.to_image(111), None);
        assert_eq!(
            sp.image_runs(8, 10),
            vec![
                SpanRun {
                    img_offset: 18,
                    rel_offset: 0,
                    len: 2
                },
                SpanRun {
                    img_offset: 100,
                    rel_offset: 2,
                    len: 5
                },
                SpanRun {
                    img_offset: 4000,
                    rel_offset: 7,
                    len: 3
                },
            ]
        );
        // Mapped only inside one run.
        assert_eq!(sp.mapped(10, 5), Some(&ev.bytes()[100..105]));
        assert_eq!(sp.mapped(9, 2), None);
        // Short at the end.
        let mut tail = vec![0u8; 10];
        assert_eq!(sp.read_at(105, &mut tail).unwrap(), 6);
        assert_eq!(sp.read_at(111, &mut tail).unwrap(), 0);
        assert!(sp.read_exact_at(105, &mut tail).is_err());
    }

    #[test]
    fn refuses_bad_ranges() {
        let ev = image();
        for bad in [
            vec![(5, 5)],
            vec![(10, 20), (15, 30)],
            vec![(30, 40), (10, 20)],
            vec![(4000, 4097)],
        ] {
            let e = Spans::new(&ev, &bad).unwrap_err().to_string();
            assert!(e.contains("span list"), "{e}");
        }
        assert_eq!(Spans::new(&ev, &[]).unwrap().size(), 0);
    }
}
