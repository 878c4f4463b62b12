//! Streaming an entry's content: runs (sparse runs as zeros), resident
//! bytes, LZNT1-compressed units.

use crate::{Content, FsError, Run, lznt1};
use trawl_evidence::Evidence;

/// Bytes handed to the sink per call at most.
const CHUNK: u64 = 1 << 20;
/// Mapped pieces at least this long are released once read.
const RELEASE_FROM: u64 = 256 << 10;

/// Streams the content of `c` from `img` into `sink`, in order, exactly
/// `c.size()` bytes in total. Runs that pass the image end, or compressed
/// units that do not decode, are errors naming the offset.
///
/// # Errors
/// [`FsError::Corrupt`] for unreadable runs/units; I/O errors.
pub fn read_content(
    img: &dyn Evidence,
    c: &Content,
    mut sink: impl FnMut(&[u8]),
) -> Result<(), FsError> {
    ContentReader { img }.read(c, &mut sink)
}

/// Reads contents from one image with a reusable buffer.
pub struct ContentReader<'a> {
    pub img: &'a dyn Evidence,
}

impl ContentReader<'_> {
    /// As [`read_content`].
    ///
    /// # Errors
    /// As [`read_content`].
    pub fn read(&self, c: &Content, sink: &mut dyn FnMut(&[u8])) -> Result<(), FsError> {
        match c {
            Content::None => Ok(()),
            Content::Resident { bytes, .. } => {
                sink(bytes);
                Ok(())
            }
            Content::Runs { runs, size } => self.runs(runs, *size, sink),
            Content::Lznt1 {
                runs,
                cluster_size,
                unit_clusters,
                size,
            } => self.lznt1(runs, *cluster_size, *unit_clusters, *size, sink),
        }
    }

    fn runs(&self, runs: &[Run], size: u64, sink: &mut dyn FnMut(&[u8])) -> Result<(), FsError> {
        let mut left = size;
        let mut buf = Vec::new();
        for r in runs {
            if left == 0 {
                break;
            }
            let mut n = r.length.min(left);
            left -= n;
            let mut at = r.offset;
            while n > 0 {
                let k = n.min(CHUNK);
                // Mapped evidence: the bytes handed over in place, no copy.
                if let Some(o) = at
                    && o.checked_add(k).is_some_and(|e| e <= self.img.size())
                    && let Some(m) = self.img.mapped(o, k as usize)
                {
                    sink(m);
                    // Read once: large pieces leave this process (the page
                    // cache keeps them), so hashing a file system's files
                    // does not grow the worker by their size. (Small ones
                    // stay: a release per small file costs more system
                    // time than it saves.)
                    if k >= RELEASE_FROM {
                        self.img.release(o, o + k);
                    }
                    at = Some(o + k);
                    n -= k;
                    continue;
                }
                buf.resize(k as usize, 0);
                match at {
                    None => buf.fill(0),
                    Some(o) => {
                        let end = o.checked_add(k).filter(|&e| e <= self.img.size());
                        if end.is_none() {
                            return Err(FsError::corrupt(
                                "file content run",
                                o,
                                format!(
                                    "{k} bytes at image offset {o} pass the image end ({} bytes)",
                                    self.img.size()
                                ),
                            ));
                        }
                        self.img.read_exact_at(o, &mut buf)?;
                        at = Some(o + k);
                    }
                }
                sink(&buf);
                n -= k;
            }
        }
        if left > 0 {
            // The runs cover less than the size: the rest was never
            // allocated (NTFS initialised size, ext holes at the end).
            let z = vec![0u8; left.min(CHUNK) as usize];
            while left > 0 {
                let k = left.min(CHUNK);
                sink(&z[..k as usize]);
                left -= k;
            }
        }
        Ok(())
    }

    fn lznt1(
        &self,
        runs: &[Run],
        cluster: u64,
        unit_clusters: u64,
        size: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), FsError> {
        if cluster == 0 || unit_clusters == 0 || cluster.saturating_mul(unit_clusters) > 1 << 24 {
            return Err(FsError::corrupt(
                "compressed attribute",
                runs.iter().find_map(|r| r.offset).unwrap_or(0),
                format!("compression unit of {unit_clusters} clusters of {cluster} bytes"),
            ));
        }
        let unit = cluster * unit_clusters;
        // Cluster-granular view of the runs: (image offset or sparse) per
        // cluster, consumed a unit at a time.
        let mut clusters = runs.iter().flat_map(|r| {
            let n = r.length / cluster;
            (0..n).map(move |i| r.offset.map(|o| o + i * cluster))
        });
        let mut left = size;
        let mut raw = Vec::with_capacity(unit as usize);
        let mut out = Vec::with_capacity(unit as usize);
        while left > 0 {
            let unit_cl: Vec<Option<u64>> =
                clusters.by_ref().take(unit_clusters as usize).collect();
            let want = left.min(unit);
            out.clear();
            let allocated = unit_cl.iter().take_while(|c| c.is_some()).count();
            if unit_cl.is_empty() || allocated == 0 {
                out.resize(want as usize, 0);
            } else {
                raw.clear();
                for c in unit_cl.iter().take(allocated).flatten() {
                    let s = raw.len();
                    raw.resize(s + cluster as usize, 0);
                    self.img.read_exact_at(*c, &mut raw[s..])?;
                }
                if allocated as u64 == unit_clusters {
                    // Stored uncompressed.
                    out.extend_from_slice(&raw);
                } else {
                    lznt1::decompress(&raw, &mut out, unit as usize).map_err(|e| {
                        FsError::corrupt(
                            "LZNT1 compression unit",
                            unit_cl[0].unwrap_or(0),
                            e.to_string(),
                        )
                    })?;
                }
                out.resize(unit as usize, 0);
                out.truncate(want as usize);
            }
            sink(&out);
            left -= want;
        }
        Ok(())
    }
}
