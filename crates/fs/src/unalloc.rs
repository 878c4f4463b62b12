//! Unallocated space: the free units of a file system's allocation
//! structure as sorted, merged `(offset, length)` ranges in image
//! coordinates, cut at the end of the file system and of the readable
//! volume (so never past the image's end).

use crate::VolumeReader;

/// Collects free byte ranges of one volume.
pub(crate) struct FreeRanges {
    /// Image offset of the volume.
    base: u64,
    /// Volume-relative end: the file system's size or the readable volume,
    /// whichever is shorter.
    end: u64,
    ranges: Vec<(u64, u64)>,
}

impl FreeRanges {
    /// For the file system of `fs_size` bytes at the start of `r`.
    pub(crate) fn new(r: &VolumeReader<'_>, fs_size: u64) -> Self {
        Self {
            base: r.base(),
            end: fs_size.min(r.len()),
            ranges: Vec::new(),
        }
    }

    /// `len` bytes at volume offset `off` are free (the part past the end
    /// is dropped).
    pub(crate) fn free(&mut self, off: u64, len: u64) {
        let end = off.saturating_add(len).min(self.end);
        if off >= end {
            return;
        }
        let (start, n) = (self.base + off, end - off);
        match self.ranges.last_mut() {
            Some(last) if last.0 + last.1 == start => last.1 += n,
            _ => self.ranges.push((start, n)),
        }
    }

    /// The clear bits of `bits` (least significant bit first), of which the
    /// first `count` are used: bit `i` is the unit of `unit` bytes at volume
    /// offset `first + i * unit`. Returns how many bits `bits` held of the
    /// `count` wanted.
    pub(crate) fn bitmap(&mut self, bits: &[u8], count: u64, first: u64, unit: u64) -> u64 {
        let have = count.min((bits.len() as u64).saturating_mul(8));
        let mut run: Option<u64> = None;
        let mut i = 0u64;
        while i < have {
            let byte = bits[(i / 8) as usize];
            // Whole bytes at once when aligned.
            if i.is_multiple_of(8) && i + 8 <= have && (byte == 0 || byte == 0xff) {
                if byte == 0xff {
                    self.flush(&mut run, i, first, unit);
                } else {
                    run.get_or_insert(i);
                }
                i += 8;
                continue;
            }
            if byte >> (i % 8) & 1 == 1 {
                self.flush(&mut run, i, first, unit);
            } else {
                run.get_or_insert(i);
            }
            i += 1;
        }
        self.flush(&mut run, have, first, unit);
        have
    }

    /// Ends a run of free units `[start, i)`.
    fn flush(&mut self, run: &mut Option<u64>, i: u64, first: u64, unit: u64) {
        if let Some(s) = run.take() {
            let off = s.saturating_mul(unit).saturating_add(first);
            self.free(off, (i - s).saturating_mul(unit));
        }
    }

    /// The ranges, sorted and merged.
    pub(crate) fn done(self) -> Vec<(u64, u64)> {
        merge(self.ranges)
    }
}

/// Sorts `v` and joins adjacent and overlapping ranges; empty ones go.
pub(crate) fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.retain(|r| r.1 > 0);
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (o, n) in v {
        let e = o.saturating_add(n);
        match out.last_mut() {
            Some(last) if o <= last.0 + last.1 => {
                last.1 = last.1.max(e - last.0);
            }
            _ => out.push((o, e - o)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use trawl_evidence::MemEvidence;

    fn ranges_of(
        img_len: usize,
        base: u64,
        fs: u64,
        f: impl FnOnce(&mut FreeRanges),
    ) -> Vec<(u64, u64)> {
        let ev = MemEvidence::new("u", vec![0u8; img_len], false);
        let r = VolumeReader::new(&ev, base, u64::MAX);
        let mut fr = FreeRanges::new(&r, fs);
        f(&mut fr);
        fr.done()
    }

    #[test]
    fn bitmap_runs_and_cut() {
        // Bits: 0b1111_0010, 0x00, 0xff, 0b0000_0001 -> free 0, 2-3, 8-15,
        // 25-29 (count 30).
        let got = ranges_of(4096, 100, 3000, |f| {
            assert_eq!(f.bitmap(&[0xf2, 0x00, 0xff, 0x01], 30, 10, 4), 30);
        });
        assert_eq!(got, vec![(110, 4), (118, 8), (142, 32), (210, 20)]);
        // The file system ends inside a run; the bitmap is short.
        let got = ranges_of(4096, 0, 50, |f| {
            assert_eq!(f.bitmap(&[0x00], 30, 10, 4), 8);
        });
        assert_eq!(got, vec![(10, 32)]);
        // The image ends first.
        let got = ranges_of(60, 0, 1000, |f| {
            f.bitmap(&[0x00], 8, 10, 10);
        });
        assert_eq!(got, vec![(10, 50)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever arrives, in whatever order: sorted, merged, non-empty,
        /// inside the volume, the file system and the image; and every free
        /// bit inside them is covered.
        #[test]
        fn ranges_are_sorted_merged_and_inside(
            bits in proptest::collection::vec(any::<u8>(), 0..64),
            count in 0u64..600,
            unit in 1u64..64,
            first in 0u64..300,
            base in 0u64..200,
            fs in 0u64..40_000,
            img_len in 0usize..40_000,
            extra in proptest::collection::vec((0u64..50_000, 0u64..5_000), 0..8),
        ) {
            let got = ranges_of(img_len, base, fs, |f| {
                f.bitmap(&bits, count, first, unit);
                for &(o, n) in &extra {
                    f.free(o, n);
                }
            });
            let base = base.min(img_len as u64);
            let end = base + fs.min(img_len as u64 - base);
            for w in got.windows(2) {
                prop_assert!(w[0].0 + w[0].1 < w[1].0, "{:?}", got);
            }
            for &(o, n) in &got {
                prop_assert!(n > 0 && o >= base && o + n <= end, "{:?} end {}", got, end);
            }
            let covered = |x: u64| got.iter().any(|&(o, n)| x >= o && x < o + n);
            let in_extra = |x: u64| extra.iter().any(|&(o, n)| x >= base + o && x < base + o + n);
            for i in 0..count.min(bits.len() as u64 * 8) {
                let at = base + first + i * unit;
                let free = bits[(i / 8) as usize] >> (i % 8) & 1 == 0;
                if at + unit <= end {
                    for x in [at, at + unit - 1] {
                        prop_assert_eq!(covered(x), free || in_extra(x), "bit {} at {}", i, x);
                    }
                }
            }
        }
    }

    #[test]
    fn merge_joins_overlaps() {
        assert_eq!(
            merge(vec![(10, 5), (0, 3), (3, 2), (12, 10), (40, 0), (30, 1)]),
            vec![(0, 5), (10, 12), (30, 1)]
        );
    }
}
