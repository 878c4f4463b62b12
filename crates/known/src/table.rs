//! The on-disk table (format in the crate docs): header, reader, checks.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::search::{self, Index};
use crate::{Algorithm, Digests, Kind, KnownError};

/// The first eight bytes of a table.
pub const MAGIC: [u8; 8] = *b"TRWLKNWN";
/// The table format version this crate writes; it reads this and
/// [`VERSION_1`].
pub const VERSION: u32 = 2;
/// The first format version (no page index), still read.
pub const VERSION_1: u32 = 1;
/// The header block; the first array starts here.
pub const HEADER_SIZE: u64 = 4096;
/// Arrays start on this alignment.
pub(crate) const ALIGN: u64 = 64;
/// Bytes of the header the CRC covers (followed, in version 2, by the index
/// descriptors at [`INDEX_FIELDS`], then by the metadata).
pub(crate) const CRC_COVERS: usize = 88;
/// Version 2: the page-index descriptors (offset u64, bits u32, width u32
/// per array), after the CRC.
pub(crate) const INDEX_FIELDS: Range<usize> = 92..140;
/// Metadata larger than this is refused (a corrupt length would otherwise
/// make `open` read gigabytes).
pub(crate) const MAX_META: u64 = 64 << 20;
/// Adjacent pairs checked for order, per array, on open.
const SPOT_CHECKS: u64 = 256;

/// Digest counts per algorithm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestCounts {
    pub md5: u64,
    pub sha1: u64,
    pub sha256: u64,
}

impl DigestCounts {
    pub(crate) fn add(&mut self, alg: Algorithm) {
        match alg {
            Algorithm::Md5 => self.md5 += 1,
            Algorithm::Sha1 => self.sha1 += 1,
            Algorithm::Sha256 => self.sha256 += 1,
        }
    }

    /// The count of `alg`.
    #[must_use]
    pub fn get(&self, alg: Algorithm) -> u64 {
        match alg {
            Algorithm::Md5 => self.md5,
            Algorithm::Sha1 => self.sha1,
            Algorithm::Sha256 => self.sha256,
        }
    }

    /// All three added up.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.md5 + self.sha1 + self.sha256
    }
}

/// A line (or NSRL row) an import skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedLine {
    /// 1-based line number (row number for an SQLite source).
    pub line: u64,
    pub reason: String,
}

/// Provenance of one source of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The path as given to the import.
    pub path: String,
    /// The detected format: `hashdeep`, `sums`, `nsrl-rdsv2-csv`,
    /// `nsrl-rdsv3-sqlite`, `trawl-table`.
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Lines read (rows, for an SQLite source).
    pub lines: u64,
    /// Digests read, before duplicates were removed.
    pub digests: DigestCounts,
    /// Lines skipped as malformed (only with `max_malformed` > 0).
    pub malformed: u64,
    /// The first few of them.
    pub malformed_examples: Vec<MalformedLine>,
}

/// One digest array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayInfo {
    pub algorithm: Algorithm,
    /// Entries (distinct digests).
    pub count: u64,
    /// SHA-256 of the array's bytes, lowercase hex.
    pub sha256: String,
}

/// The table's metadata (JSON after the arrays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMeta {
    /// Always `"trawl-known-table"`.
    pub format: String,
    pub version: u32,
    pub name: String,
    pub kind: Kind,
    /// `trawl-known <version>`.
    pub created_by: String,
    pub sources: Vec<SourceInfo>,
    /// MD5, SHA-1, SHA-256, in that order.
    pub arrays: Vec<ArrayInfo>,
}

/// The fixed header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: Kind,
    pub file_len: u64,
    pub meta_off: u64,
    pub meta_len: u64,
    /// (offset, count) per algorithm, in `Algorithm::ALL` order.
    pub arrays: [(u64, u64); 3],
    /// Page index (offset, prefix bits, entry width) per algorithm.
    pub index: [(u64, u32, u32); 3],
}

impl Header {
    /// The 140 header bytes (magic … index descriptors) of a version-2
    /// table with these fields and metadata.
    pub(crate) fn encode(&self, meta: &[u8]) -> [u8; 140] {
        let mut h = [0u8; 140];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let k: u32 = match self.kind {
            Kind::Known => 0,
            Kind::Notable => 1,
        };
        h[12..16].copy_from_slice(&k.to_le_bytes());
        h[16..24].copy_from_slice(&self.file_len.to_le_bytes());
        h[24..32].copy_from_slice(&self.meta_off.to_le_bytes());
        h[32..40].copy_from_slice(&self.meta_len.to_le_bytes());
        for (i, (off, count)) in self.arrays.iter().enumerate() {
            let at = 40 + i * 16;
            h[at..at + 8].copy_from_slice(&off.to_le_bytes());
            h[at + 8..at + 16].copy_from_slice(&count.to_le_bytes());
        }
        for (i, (off, bits, width)) in self.index.iter().enumerate() {
            let at = INDEX_FIELDS.start + i * 16;
            h[at..at + 8].copy_from_slice(&off.to_le_bytes());
            h[at + 8..at + 12].copy_from_slice(&bits.to_le_bytes());
            h[at + 12..at + 16].copy_from_slice(&width.to_le_bytes());
        }
        let crc = header_crc(&h, VERSION, meta);
        h[88..92].copy_from_slice(&crc.to_le_bytes());
        h
    }
}

/// The header CRC: bytes 0..88, in version 2 the index descriptors
/// (92..140), then the metadata. `head` holds at least the header bytes
/// of its version.
pub(crate) fn header_crc(head: &[u8], version: u32, meta: &[u8]) -> u32 {
    let mut c = crc32fast::Hasher::new();
    c.update(&head[..CRC_COVERS]);
    if version >= 2 {
        c.update(&head[INDEX_FIELDS]);
    }
    c.update(meta);
    c.finalize()
}

/// The page index of an `n`-entry array of `digest_len`-byte digests, as
/// stored: `2^bits + 1` little-endian integers (4 bytes when `n` fits in
/// 32 bits, else 8), entry `j` the position of the first digest whose
/// top `bits` prefix bits are `≥ j`. `bucket_counts` counts the digests per
/// bucket at `fine_bits ≥ bits` bits.
pub(crate) fn encode_index(bucket_counts: &[u64], fine_bits: u32, bits: u32, n: u64) -> Vec<u8> {
    let width: usize = if n <= u64::from(u32::MAX) { 4 } else { 8 };
    let group = 1usize << (fine_bits - bits);
    let mut out = Vec::with_capacity(((1usize << bits) + 1) * width);
    let mut at = 0u64;
    let push = |v: u64, out: &mut Vec<u8>| {
        if width == 4 {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    };
    for chunk in bucket_counts.chunks(group) {
        push(at, &mut out);
        at += chunk.iter().sum::<u64>();
    }
    push(at, &mut out);
    out
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// True when `head` starts with the table magic.
pub(crate) fn is_table(head: &[u8]) -> bool {
    head.len() >= 8 && head[..8] == MAGIC
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
fn map(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the map is read-only and private to this process. A table is
    // written once by `import` (to a temporary name, renamed into place when
    // complete) and never modified after: trawl opens it read-only and
    // nothing in trawl writes to it. If another process truncated the file
    // while it is mapped, a read past the new end would raise SIGBUS; tables
    // are build artefacts kept beside the case, not files anyone edits in
    // place.
    let map = unsafe { memmap2::Mmap::map(file) }?;
    #[cfg(unix)]
    {
        // Lookups touch random entries: no read-ahead.
        let _ = map.advise(memmap2::Advice::Random);
    }
    Ok(map)
}

/// A page index's place in the map.
#[derive(Debug, Clone)]
struct IndexLoc {
    range: Range<usize>,
    bits: u32,
    width: usize,
}

/// An opened, checked, memory-mapped table.
pub struct Table {
    path: PathBuf,
    map: Mmap,
    meta: TableMeta,
    kind: Kind,
    version: u32,
    ranges: [Range<usize>; 3],
    /// Version 2: the page index of each array.
    index: [Option<IndexLoc>; 3],
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.path)
            .field("name", &self.meta.name)
            .field("kind", &self.kind)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Opens and checks a table: magic, version, length, header CRC (over
    /// the header and the metadata), array bounds and alignment, the
    /// metadata's agreement with the header, and the order of each array at
    /// evenly spaced spot checks. The arrays are mapped, not read.
    ///
    /// # Errors
    /// A file that is not a table, truncated, or corrupt (see
    /// [`KnownError`]); I/O errors.
    pub fn open(path: &Path) -> Result<Table, KnownError> {
        let p = || path.to_path_buf();
        let mut file = File::open(path).map_err(|e| KnownError::io(path, e))?;
        let len = file.metadata().map_err(|e| KnownError::io(path, e))?.len();
        let mut head = [0u8; 140];
        let got = read_up_to(&mut file, &mut head).map_err(|e| KnownError::io(path, e))?;
        if got < 8 || !is_table(&head) {
            return Err(KnownError::BadMagic { path: p() });
        }
        let mut version = VERSION;
        if got >= 12 {
            version = le32(&head, 8);
            if version != VERSION && version != VERSION_1 {
                return Err(KnownError::Version {
                    path: p(),
                    found: version,
                    supported: VERSION,
                });
            }
        }
        let head_len = if version == VERSION_1 {
            92
        } else {
            INDEX_FIELDS.end
        };
        if len < HEADER_SIZE {
            return Err(KnownError::Truncated {
                path: p(),
                what: "the header".into(),
                need: HEADER_SIZE,
                have: len,
            });
        }
        let file_len = le64(&head, 16);
        if file_len > len {
            return Err(KnownError::Truncated {
                path: p(),
                what: "the table the header describes".into(),
                need: file_len,
                have: len,
            });
        }
        if file_len < len {
            return Err(KnownError::Corrupt {
                path: p(),
                offset: file_len,
                what: format!(
                    "{} bytes past the table's recorded end {file_len}",
                    len - file_len
                ),
            });
        }
        let meta_off = le64(&head, 24);
        let meta_len = le64(&head, 32);
        let meta_end = meta_off.checked_add(meta_len);
        if meta_len > MAX_META || meta_off < HEADER_SIZE || meta_end.is_none_or(|e| e != len) {
            return Err(KnownError::Corrupt {
                path: p(),
                offset: 24,
                what: format!(
                    "metadata at {meta_off}, {meta_len} bytes, does not end the {len}-byte file"
                ),
            });
        }
        let map = map(&file).map_err(|e| KnownError::io(path, e))?;
        if map.len() as u64 != len {
            return Err(KnownError::Corrupt {
                path: p(),
                offset: 0,
                what: "the file changed size while being opened".into(),
            });
        }
        if let Some(i) = map[head_len..HEADER_SIZE as usize]
            .iter()
            .position(|&b| b != 0)
        {
            return Err(KnownError::Corrupt {
                path: p(),
                offset: (head_len + i) as u64,
                what: "non-zero byte in the header's reserved space".into(),
            });
        }
        // Bounds were checked above; usize conversions cannot fail for a
        // mapped file.
        let meta_bytes = &map[meta_off as usize..len as usize];
        let stored = le32(&head, 88);
        let computed = header_crc(&head, version, meta_bytes);
        if stored != computed {
            return Err(KnownError::HeaderChecksum {
                path: p(),
                stored,
                computed,
            });
        }
        let kind = match le32(&head, 12) {
            0 => Kind::Known,
            1 => Kind::Notable,
            k => {
                return Err(KnownError::Corrupt {
                    path: p(),
                    offset: 12,
                    what: format!("kind {k} is neither 0 (known) nor 1 (notable)"),
                });
            }
        };
        let meta: TableMeta =
            serde_json::from_slice(meta_bytes).map_err(|e| KnownError::Corrupt {
                path: p(),
                offset: meta_off,
                what: format!("metadata is not valid: {e}"),
            })?;
        let mut ranges: [Range<usize>; 3] = [0..0, 0..0, 0..0];
        let mut prev_end = HEADER_SIZE;
        for alg in Algorithm::ALL {
            let i = alg.index();
            let at = 40 + i * 16;
            let off = le64(&head, at);
            let count = le64(&head, at + 8);
            let bad = |what: String| KnownError::Corrupt {
                path: p(),
                offset: at as u64,
                what,
            };
            let bytes = count.checked_mul(alg.digest_len() as u64);
            let end = bytes.and_then(|b| off.checked_add(b));
            match end {
                Some(end) if off >= prev_end && off.is_multiple_of(ALIGN) && end <= meta_off => {
                    ranges[i] = off as usize..end as usize;
                    prev_end = end;
                }
                _ => {
                    return Err(bad(format!(
                        "{alg} array of {count} entries at offset {off} does not fit between \
                         offset {prev_end} and the metadata at {meta_off} (or is misaligned)"
                    )));
                }
            }
            let info = meta.arrays.get(i);
            if info.is_none_or(|a| a.algorithm != alg || a.count != count) {
                return Err(bad(format!(
                    "{alg} count {count} in the header disagrees with the metadata"
                )));
            }
        }
        let mut index: [Option<IndexLoc>; 3] = [None, None, None];
        if version >= 2 {
            for alg in Algorithm::ALL {
                let i = alg.index();
                let at = INDEX_FIELDS.start + i * 16;
                let off = le64(&head, at);
                let bits = le32(&head, at + 8);
                let width = le32(&head, at + 12);
                let count = (ranges[i].len() / alg.digest_len()) as u64;
                let size = 1u64
                    .checked_shl(bits)
                    .filter(|_| bits <= search::MAX_INDEX_BITS)
                    .and_then(|b| (b + 1).checked_mul(u64::from(width)));
                let end = size.and_then(|s| off.checked_add(s));
                let wide_enough = width == 8 || (width == 4 && count <= u64::from(u32::MAX));
                match end {
                    Some(end)
                        if wide_enough
                            && off >= prev_end
                            && off.is_multiple_of(ALIGN)
                            && end <= meta_off =>
                    {
                        index[i] = Some(IndexLoc {
                            range: off as usize..end as usize,
                            bits,
                            width: width as usize,
                        });
                        prev_end = end;
                    }
                    _ => {
                        return Err(KnownError::Corrupt {
                            path: p(),
                            offset: at as u64,
                            what: format!(
                                "{alg} page index at offset {off} ({bits} bits, {width}-byte \
                                 entries) does not fit between offset {prev_end} and the \
                                 metadata at {meta_off} (or is misaligned or too narrow)"
                            ),
                        });
                    }
                }
            }
        }
        if prev_end != meta_off {
            return Err(KnownError::Corrupt {
                path: p(),
                offset: 24,
                what: format!(
                    "metadata at {meta_off} does not follow the last array or page index (ends at \
                     {prev_end})"
                ),
            });
        }
        if meta.format != "trawl-known-table" || meta.version != version || meta.kind != kind {
            return Err(KnownError::Corrupt {
                path: p(),
                offset: meta_off,
                what: "metadata disagrees with the header (format, version or kind)".into(),
            });
        }
        let table = Table {
            path: p(),
            map,
            meta,
            kind,
            version,
            ranges,
            index,
        };
        table.spot_check()?;
        table.spot_check_index()?;
        Ok(table)
    }

    fn spot_check(&self) -> Result<(), KnownError> {
        fn check<const N: usize>(
            t: &Table,
            alg: Algorithm,
            a: &[[u8; N]],
        ) -> Result<(), KnownError> {
            let n = a.len() as u64;
            if n < 2 {
                return Ok(());
            }
            let step = ((n - 1) / SPOT_CHECKS).max(1);
            let mut prev: Option<&[u8; N]> = None;
            let mut i = 0u64;
            while i + 1 < n {
                let (x, y) = (&a[i as usize], &a[i as usize + 1]);
                if prev.is_some_and(|p| p > x) || x >= y {
                    return Err(t.unsorted(alg, i));
                }
                prev = Some(y);
                i += step;
            }
            if prev.is_some_and(|p| p > &a[n as usize - 1]) {
                return Err(t.unsorted(alg, n - 1));
            }
            Ok(())
        }
        check(self, Algorithm::Md5, self.md5())?;
        check(self, Algorithm::Sha1, self.sha1())?;
        check(self, Algorithm::Sha256, self.sha256())
    }

    /// The page index of `alg`'s array (version 2).
    fn index_of(&self, alg: Algorithm) -> Option<Index<'_>> {
        let loc = self.index[alg.index()].as_ref()?;
        Index::new(&self.map[loc.range.clone()], loc.bits, loc.width)
    }

    fn bad_index(&self, alg: Algorithm, bucket: u64, what: &str) -> KnownError {
        let (offset, width) = self.index[alg.index()]
            .as_ref()
            .map_or((0, 0), |l| (l.range.start as u64, l.width as u64));
        KnownError::Corrupt {
            path: self.path.clone(),
            offset: offset + bucket * width,
            what: format!("{alg} page index entry {bucket} {what}"),
        }
    }

    /// Checks index entry `j` against the array: within it, and the entries
    /// either side of the position it gives in the right buckets.
    fn check_index_entry<const N: usize>(
        &self,
        alg: Algorithm,
        a: &[[u8; N]],
        idx: &Index<'_>,
        j: u64,
    ) -> Result<u64, KnownError> {
        let n = a.len() as u64;
        let s = idx.start(j);
        if s > n {
            return Err(self.bad_index(alg, j, &format!("({s}) is past the array's {n} entries")));
        }
        let bucket = |i: u64| search::bucket_of(search::prefix_of(&a[i as usize]), idx.bits());
        if (s < n && bucket(s) < j) || (s > 0 && bucket(s - 1) >= j) {
            return Err(self.bad_index(
                alg,
                j,
                &format!("({s}) is not where the bucket starts in the array"),
            ));
        }
        Ok(s)
    }

    /// Version 2: the first and last index entries, and evenly spaced ones,
    /// agree with the array (ascending, each where its bucket starts).
    fn spot_check_index(&self) -> Result<(), KnownError> {
        fn check<const N: usize>(
            t: &Table,
            alg: Algorithm,
            a: &[[u8; N]],
        ) -> Result<(), KnownError> {
            let Some(idx) = t.index_of(alg) else {
                return Ok(());
            };
            let last = idx.buckets();
            if idx.start(0) != 0 {
                return Err(t.bad_index(alg, 0, "is not 0"));
            }
            if idx.start(last) != a.len() as u64 {
                return Err(t.bad_index(alg, last, "is not the array's entry count"));
            }
            let step = (last / SPOT_CHECKS).max(1);
            let mut prev = 0u64;
            let mut j = 0u64;
            while j <= last {
                let s = t.check_index_entry(alg, a, &idx, j)?;
                if s < prev {
                    return Err(t.bad_index(alg, j, "is smaller than an earlier one"));
                }
                prev = s;
                j += step;
            }
            Ok(())
        }
        check(self, Algorithm::Md5, self.md5())?;
        check(self, Algorithm::Sha1, self.sha1())?;
        check(self, Algorithm::Sha256, self.sha256())
    }

    /// Version 2: every index entry as the array gives it.
    fn verify_index(&self) -> Result<(), KnownError> {
        fn check<const N: usize>(
            t: &Table,
            alg: Algorithm,
            a: &[[u8; N]],
        ) -> Result<(), KnownError> {
            let Some(idx) = t.index_of(alg) else {
                return Ok(());
            };
            let mut i = 0u64;
            for j in 0..=idx.buckets() {
                while (i as usize) < a.len()
                    && search::bucket_of(search::prefix_of(&a[i as usize]), idx.bits()) < j
                {
                    i += 1;
                }
                if idx.start(j) != i {
                    return Err(t.bad_index(
                        alg,
                        j,
                        &format!("is {}, the array gives {i}", idx.start(j)),
                    ));
                }
            }
            Ok(())
        }
        check(self, Algorithm::Md5, self.md5())?;
        check(self, Algorithm::Sha1, self.sha1())?;
        check(self, Algorithm::Sha256, self.sha256())
    }

    fn unsorted(&self, alg: Algorithm, index: u64) -> KnownError {
        KnownError::Unsorted {
            path: self.path.clone(),
            algorithm: alg,
            index,
            offset: self.ranges[alg.index()].start as u64 + index * alg.digest_len() as u64,
        }
    }

    /// Checks the whole table: the padding between arrays (and page
    /// indexes) zero, every array in strictly ascending order and its
    /// SHA-256 as recorded in the metadata, and (version 2) every page
    /// index entry equal to the one the array gives. Reads every byte: with
    /// the checks on open, any change to any byte of a table is detected (a
    /// CRC-32 or SHA-256 collision aside).
    ///
    /// # Errors
    /// [`KnownError::Unsorted`] or [`KnownError::ArrayChecksum`].
    pub fn verify(&self) -> Result<(), KnownError> {
        fn order<const N: usize>(
            t: &Table,
            alg: Algorithm,
            a: &[[u8; N]],
        ) -> Result<(), KnownError> {
            match a.windows(2).position(|w| w[0] >= w[1]) {
                Some(i) => Err(t.unsorted(alg, i as u64)),
                None => Ok(()),
            }
        }
        let mut at = HEADER_SIZE as usize;
        let index_ranges = self.index.iter().flatten().map(|l| &l.range);
        for r in self.ranges.iter().chain(index_ranges) {
            if let Some(i) = self.map[at..r.start].iter().position(|&b| b != 0) {
                return Err(KnownError::Corrupt {
                    path: self.path.clone(),
                    offset: (at + i) as u64,
                    what: "non-zero byte in the padding between arrays".into(),
                });
            }
            at = r.end;
        }
        order(self, Algorithm::Md5, self.md5())?;
        order(self, Algorithm::Sha1, self.sha1())?;
        order(self, Algorithm::Sha256, self.sha256())?;
        for alg in Algorithm::ALL {
            let computed = hex::encode(Sha256::digest(&self.map[self.ranges[alg.index()].clone()]));
            let recorded = &self.meta.arrays[alg.index()].sha256;
            if &computed != recorded {
                return Err(KnownError::ArrayChecksum {
                    path: self.path.clone(),
                    algorithm: alg,
                    recorded: recorded.clone(),
                    computed,
                });
            }
        }
        self.verify_index()
    }

    /// The sorted MD5 array.
    #[must_use]
    pub fn md5(&self) -> &[[u8; 16]] {
        self.map[self.ranges[0].clone()].as_chunks().0
    }

    /// The sorted SHA-1 array.
    #[must_use]
    pub fn sha1(&self) -> &[[u8; 20]] {
        self.map[self.ranges[1].clone()].as_chunks().0
    }

    /// The sorted SHA-256 array.
    #[must_use]
    pub fn sha256(&self) -> &[[u8; 32]] {
        self.map[self.ranges[2].clone()].as_chunks().0
    }

    /// True when `digest` (of `alg`'s length) is in the table; a digest of
    /// another length is never present. Version 2: through the page index
    /// (one bucket, usually one page); version 1: interpolation search.
    #[must_use]
    pub fn contains(&self, alg: Algorithm, digest: &[u8]) -> bool {
        match alg {
            Algorithm::Md5 => digest
                .try_into()
                .is_ok_and(|d: &[u8; 16]| self.contains_in(alg, self.md5(), d)),
            Algorithm::Sha1 => digest
                .try_into()
                .is_ok_and(|d: &[u8; 20]| self.contains_in(alg, self.sha1(), d)),
            Algorithm::Sha256 => digest
                .try_into()
                .is_ok_and(|d: &[u8; 32]| self.contains_in(alg, self.sha256(), d)),
        }
    }

    #[inline]
    fn contains_in<const N: usize>(&self, alg: Algorithm, a: &[[u8; N]], d: &[u8; N]) -> bool {
        match self.index_of(alg) {
            Some(idx) => search::contains_indexed(a, &idx, d),
            None => search::contains(a, d),
        }
    }

    #[inline]
    fn prefetch_in<const N: usize>(&self, alg: Algorithm, a: &[[u8; N]], d: &[u8; N]) {
        if let Some(idx) = self.index_of(alg) {
            search::prefetch_indexed(a, &idx, d);
        }
    }

    /// The strongest of the file's digests in the table (SHA-256, SHA-1,
    /// MD5), skipping the arrays that are empty. The lines of every array it
    /// will search are prefetched first (version 2), so a miss on three
    /// arrays costs about one memory latency, not three.
    #[must_use]
    pub fn lookup(&self, d: &Digests) -> Option<Algorithm> {
        let sha256 = d.sha256.as_ref().filter(|_| !self.sha256().is_empty());
        let sha1 = d.sha1.as_ref().filter(|_| !self.sha1().is_empty());
        let md5 = d.md5.as_ref().filter(|_| !self.md5().is_empty());
        if let Some(x) = sha1 {
            self.prefetch_in(Algorithm::Sha1, self.sha1(), x);
        }
        if let Some(x) = md5 {
            self.prefetch_in(Algorithm::Md5, self.md5(), x);
        }
        if let Some(x) = sha256
            && self.contains_in(Algorithm::Sha256, self.sha256(), x)
        {
            return Some(Algorithm::Sha256);
        }
        if let Some(x) = sha1
            && self.contains_in(Algorithm::Sha1, self.sha1(), x)
        {
            return Some(Algorithm::Sha1);
        }
        if let Some(x) = md5
            && self.contains_in(Algorithm::Md5, self.md5(), x)
        {
            return Some(Algorithm::Md5);
        }
        None
    }

    /// [`Table::lookup`] for many files at once: `out[i]` is the strongest
    /// algorithm of `ds[i]` in the table. Each algorithm is a batched pass
    /// over the files not matched yet ([`search::contains_batch`]: the cache
    /// and TLB misses of independent lookups overlap), strongest first, and
    /// arrays that are empty are skipped. Memory: one flag per file.
    #[must_use]
    pub fn lookup_many(&self, ds: &[Digests]) -> Vec<Option<Algorithm>> {
        let mut out: Vec<Option<Algorithm>> = vec![None; ds.len()];
        let mut found = vec![false; ds.len()];
        fn pass<const N: usize>(
            t: &Table,
            alg: Algorithm,
            a: &[[u8; N]],
            targets: &[Option<&[u8; N]>],
            found: &mut [bool],
            out: &mut [Option<Algorithm>],
        ) {
            if a.is_empty() {
                return;
            }
            match t.index_of(alg) {
                Some(idx) => search::contains_batch(a, &idx, targets, found),
                None => {
                    for (f, x) in found.iter_mut().zip(targets) {
                        *f = x.is_some_and(|x| search::contains(a, x));
                    }
                }
            }
            for (o, f) in out.iter_mut().zip(found.iter_mut()) {
                if *f && o.is_none() {
                    *o = Some(alg);
                }
                *f = false;
            }
        }
        let sha256: Vec<Option<&[u8; 32]>> = ds.iter().map(|d| d.sha256.as_ref()).collect();
        pass(
            self,
            Algorithm::Sha256,
            self.sha256(),
            &sha256,
            &mut found,
            &mut out,
        );
        drop(sha256);
        let sha1: Vec<Option<&[u8; 20]>> = ds
            .iter()
            .zip(&out)
            .map(|(d, o)| d.sha1.as_ref().filter(|_| o.is_none()))
            .collect();
        pass(
            self,
            Algorithm::Sha1,
            self.sha1(),
            &sha1,
            &mut found,
            &mut out,
        );
        drop(sha1);
        let md5: Vec<Option<&[u8; 16]>> = ds
            .iter()
            .zip(&out)
            .map(|(d, o)| d.md5.as_ref().filter(|_| o.is_none()))
            .collect();
        pass(self, Algorithm::Md5, self.md5(), &md5, &mut found, &mut out);
        out
    }

    /// The format version the table was written in (1 or 2).
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Version 2: the page index of `alg`'s array (`None` for version 1).
    #[must_use]
    pub fn index(&self, alg: Algorithm) -> Option<Index<'_>> {
        self.index_of(alg)
    }

    /// The metadata: name, kind, provenance, array digests.
    #[must_use]
    pub fn meta(&self) -> &TableMeta {
        &self.meta
    }

    /// The set's kind.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The table's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries per algorithm.
    #[must_use]
    pub fn counts(&self) -> DigestCounts {
        DigestCounts {
            md5: self.md5().len() as u64,
            sha1: self.sha1().len() as u64,
            sha256: self.sha256().len() as u64,
        }
    }
}

/// Reads until `buf` is full or end of file; the byte count read.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
