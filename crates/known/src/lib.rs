//! Known-file and notable-file hash sets.
//!
//! `--known FILE` and `--notable FILE` name hash sets; every file trawl hashes
//! is looked up in them and gets `known` (NSRL / known-good), `notable` (with
//! the set's name: contraband, malware) or nothing. **Notable wins over
//! known**: a file in both is reported notable ([`KnownSets::lookup`]).
//!
//! # Inputs
//!
//! [`KnownSet::open`] detects the format from the file's first bytes:
//!
//! * **A trawl table** (below), written once by [`import`] (`trawl known
//!   import`): memory-mapped read-only, looked up through its page index. This
//!   is the format for large sets: nothing is loaded into memory, so a
//!   worker's memory stays bounded whatever the set's size (the mapped pages
//!   are the kernel's page cache, shared between workers and dropped under
//!   pressure).
//! * **A NIST NSRL RDSv3 SQLite database**: the published `FILE` view or table
//!   (columns `sha256`, `sha1`, `md5`, `file_name`, `file_size`,
//!   `package_id`). It is opened read-only and immutable (SQLite writes no
//!   journal or lock file next to it) and queried through its indexes. trawl
//!   does not guess which indexes a release has: on open it asks SQLite's
//!   planner (`EXPLAIN QUERY PLAN`) for each digest column, and refuses a
//!   column the planner would answer with a full scan, naming the column and
//!   telling the user to run `trawl known import` once — one full scan of a
//!   tens-of-GB database per looked-up file is never what anyone wants.
//! * **A text list**, imported into a temporary table on open: hashdeep output
//!   (`%%%% HASHDEEP-1.0`, then the column set `%%%% size,md5,sha256,filename`
//!   or any other hashdeep declares, `##` comments), `md5sum` / `sha1sum` /
//!   `sha256sum` output (`HEX  name`, `HEX *name`, the `\`-escaped form, and
//!   the BSD `--tag` form `SHA256 (name) = HEX`), the NSRL RDSv2
//!   `NSRLFile.txt` CSV, or plain hex digests one per line. The algorithm of a
//!   bare digest is its length: 32 hex digits MD5, 40 SHA-1, 64 SHA-256.
//!   Blank lines and `#` comments are skipped.
//!
//! # Malformed input
//!
//! A forensic tool must not silently drop lines. By default the first
//! malformed line (non-hex, a digest of the wrong length, a hashdeep line
//! with the wrong number of fields, a line over 64 KiB) refuses the import,
//! naming the file and the line. [`ImportOptions::max_malformed`] allows up
//! to N such lines: each is counted, the first
//! [`MAX_MALFORMED_EXAMPLES`] are recorded with their line number and reason,
//! and the count and examples are written into the table's metadata (so the
//! table itself says what was left out) and returned in the
//! [`ImportReport`].
//!
//! # Table format (version 2)
//!
//! One file; all integers little-endian.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `TRWLKNWN` |
//! | 8 | 4 | format version, `2` |
//! | 12 | 4 | kind: `0` known, `1` notable |
//! | 16 | 8 | file length in bytes |
//! | 24 | 8 | metadata offset |
//! | 32 | 8 | metadata length |
//! | 40 | 16 | MD5 array: offset, entry count |
//! | 56 | 16 | SHA-1 array: offset, entry count |
//! | 72 | 16 | SHA-256 array: offset, entry count |
//! | 88 | 4 | CRC-32 (IEEE) of bytes 0..88, then bytes 92..140, then the metadata bytes |
//! | 92 | 16 | MD5 page index: offset (8), prefix bits `b` (4), entry width `w` (4) |
//! | 108 | 16 | SHA-1 page index: the same |
//! | 124 | 16 | SHA-256 page index: the same |
//! | 140 | 3956 | zero |
//! | 4096 | 16 × n | MD5 digests, 16 bytes each, sorted ascending, no duplicates |
//! | … | 20 × n | SHA-1 digests (every array and index starts 64-byte aligned, zero padding between) |
//! | … | 32 × n | SHA-256 digests |
//! | … | w × (2ᵇ + 1) | MD5 page index |
//! | … | w × (2ᵇ + 1) | SHA-1 page index |
//! | … | w × (2ᵇ + 1) | SHA-256 page index |
//! | … | | metadata: UTF-8 JSON ([`TableMeta`]) |
//!
//! **The page index** of an array of `n` digests splits the digests by
//! their top `b` bits into 2ᵇ buckets; entry `j` (of 2ᵇ + 1) is the position
//! of the first digest whose top `b` bits are `≥ j`, so bucket `j` is
//! `[entry j, entry j + 1)` and the last entry is `n`. `b` is the largest
//! value (at most 32) with `n / 2ᵇ ≥ 32`
//! ([`search::index_bits`]): a bucket holds on average 32 to 64 digests
//! (1 to 2 KiB of SHA-256, usually inside one 4 KiB page), and the index
//! has one entry per 32 to 64 digests, of `w` = 4 bytes when `n` fits in 32
//! bits, else 8. For 100 million entries, `b` = 21 and each index is 8
//! MiB (24 MiB for all three arrays, against 6.8 GB of digests). The import
//! counts digests per bucket while merging (8 bytes per 32 to 64 digests
//! of the array being merged), so the index costs no second pass.
//!
//! **Version 1** (still read; `trawl known import` of a version-1 table
//! writes a version-2 one) is the same without the index: the CRC at 88
//! covers bytes 0..88 and the metadata, bytes 92..4096 are zero, and the
//! metadata directly follows the SHA-256 array. Its lookups use the
//! interpolation search below.
//!
//! The metadata holds the set's name and kind, the trawl version that wrote
//! it, and for every source file its path as given, detected format, size,
//! SHA-256, line and digest counts, malformed-line count and examples; and
//! for every array its entry count and the SHA-256 of its bytes. The header
//! CRC covers the header and the metadata, so a corrupt header, name, kind
//! or provenance record is refused on open; the arrays are checked on open
//! for fitting the file and, by spot checks at evenly spaced entries, for
//! being sorted; each page index is checked on open for fitting the file,
//! for its first entry being 0 and its last `n`, and at evenly spaced
//! entries for agreeing with the array; [`Table::verify`] checks everything
//! completely (strict order, each array's SHA-256, every index entry
//! recomputed from its array, zero padding). The table holds no timestamp:
//! the same sources, name and kind give a byte-identical table (whatever
//! the import's memory budget).
//!
//! # Lookups
//!
//! [`KnownSet::lookup`] takes the digests a file has ([`Digests`]) and tries
//! the strongest first (SHA-256, SHA-1, MD5); a [`Hit`] names the set, its
//! kind and the algorithm that matched, so a report can say exactly why a file
//! was marked. Arrays a set does not hold (count 0) are skipped, but a miss
//! on the SHA-256 array still tries SHA-1 and MD5: a set may hold only MD5s.
//!
//! On a version-2 table ([`search::contains_indexed`]) a lookup reads two
//! adjacent index entries (the index is small enough to stay mostly in the
//! CPU's cache), interpolates the digest's position inside its bucket from
//! the first eight bytes, and compares the ±8 entries around the estimate
//! (a few adjacent 64-byte lines of one page, prefetched together: one
//! cold memory access); a digest outside that window (rare) is
//! binary-searched in the rest of the bucket. A lookup with several digests
//! prefetches every array's window before comparing, so a miss on three
//! arrays costs about one memory latency, not three.
//!
//! **Batches.** [`KnownSets::lookup_many`] / [`KnownSet::lookup_many`] /
//! [`Table::lookup_many`] take a slice of [`Digests`] (a job's files) and
//! answer them all: each array is searched for all the files at once,
//! software-pipelined ([`search::contains_batch`]: index entries prefetched
//! 32 lookups ahead, bucket windows 16 ahead), so the cache and TLB misses
//! of independent lookups overlap. On a table far larger than the cache
//! this is several times faster per file than one call per file; callers
//! with many files (trawl looks up every file of a job) should pass them in
//! slices of a few thousand, one slice per worker thread. The results are
//! those of [`KnownSets::lookup`] file by file (notable wins, strongest
//! digest first).
//!
//! On a version-1 table, digests are uniformly distributed, so the search
//! ([`search::contains`]) interpolates from the first eight bytes, probes the
//! estimate and the entries about √n either side of it at once, keeps the
//! interval the target falls in, and repeats; after a few rounds (or at once,
//! on data that is not uniform) it finishes with a binary search, so a
//! crafted table cannot make a lookup slower than a few dozen probes.

mod error;
mod import;
mod nsrl;
pub mod search;
mod set;
mod table;
mod text;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use error::KnownError;
pub use import::{
    ImportOptions, ImportReport, Importer, MAX_MALFORMED_EXAMPLES, import, import_with,
};
pub use set::{KnownSet, KnownSets, OpenOptions, SetFormat};
pub use table::{
    ArrayInfo, DigestCounts, HEADER_SIZE, MAGIC, MalformedLine, SourceInfo, Table, TableMeta,
    VERSION, VERSION_1,
};

/// Known-good or notable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Known files (NSRL, a known-good baseline): usually filtered out.
    Known,
    /// Notable files (contraband, malware): always reported.
    Notable,
}

impl Kind {
    /// `"known"` or `"notable"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Known => "known",
            Kind::Notable => "notable",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A digest algorithm a set can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
}

impl Algorithm {
    /// All three, in table order.
    pub const ALL: [Algorithm; 3] = [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256];
    /// The lookup order: strongest first.
    pub const STRONGEST_FIRST: [Algorithm; 3] =
        [Algorithm::Sha256, Algorithm::Sha1, Algorithm::Md5];

    /// Digest length in bytes.
    #[must_use]
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    /// The algorithm whose digests have `hex_digits` hex digits.
    #[must_use]
    pub fn from_hex_len(hex_digits: usize) -> Option<Algorithm> {
        match hex_digits {
            32 => Some(Algorithm::Md5),
            40 => Some(Algorithm::Sha1),
            64 => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    /// `"md5"`, `"sha1"`, `"sha256"` (the NSRL column names).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Algorithm::Md5 => 0,
            Algorithm::Sha1 => 1,
            Algorithm::Sha256 => 2,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Sha256 => "SHA-256",
        })
    }
}

/// The digests of one file; any may be absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Digests {
    pub md5: Option<[u8; 16]>,
    pub sha1: Option<[u8; 20]>,
    pub sha256: Option<[u8; 32]>,
}

impl Digests {
    /// Parses hex digests (either case); `None` or `""` leaves one absent.
    ///
    /// # Errors
    /// A digest that is not hex or not of its algorithm's length.
    pub fn from_hex(
        md5: Option<&str>,
        sha1: Option<&str>,
        sha256: Option<&str>,
    ) -> Result<Digests, String> {
        fn one<const N: usize>(s: Option<&str>, alg: Algorithm) -> Result<Option<[u8; N]>, String> {
            match s {
                None | Some("") => Ok(None),
                Some(s) => text::parse_hex::<N>(s.as_bytes())
                    .map(Some)
                    .map_err(|e| format!("{alg}: {e}")),
            }
        }
        Ok(Digests {
            md5: one(md5, Algorithm::Md5)?,
            sha1: one(sha1, Algorithm::Sha1)?,
            sha256: one(sha256, Algorithm::Sha256)?,
        })
    }

    /// The digest of `alg`, if present.
    #[must_use]
    pub fn get(&self, alg: Algorithm) -> Option<&[u8]> {
        match alg {
            Algorithm::Md5 => self.md5.as_ref().map(|d| d.as_slice()),
            Algorithm::Sha1 => self.sha1.as_ref().map(|d| d.as_slice()),
            Algorithm::Sha256 => self.sha256.as_ref().map(|d| d.as_slice()),
        }
    }

    /// True when no digest is present.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.md5.is_none() && self.sha1.is_none() && self.sha256.is_none()
    }
}

/// A match: which set, its kind, and the algorithm whose digest matched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hit {
    pub set: std::sync::Arc<str>,
    pub kind: Kind,
    pub algorithm: Algorithm,
}
