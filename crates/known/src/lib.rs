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
//!   import`): memory-mapped read-only, looked up by interpolation search. This
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
//! # Table format (version 1)
//!
//! One file; all integers little-endian.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `TRWLKNWN` |
//! | 8 | 4 | format version, `1` |
//! | 12 | 4 | kind: `0` known, `1` notable |
//! | 16 | 8 | file length in bytes |
//! | 24 | 8 | metadata offset |
//! | 32 | 8 | metadata length |
//! | 40 | 16 | MD5 array: offset, entry count |
//! | 56 | 16 | SHA-1 array: offset, entry count |
//! | 72 | 16 | SHA-256 array: offset, entry count |
//! | 88 | 4 | CRC-32 (IEEE) of bytes 0..88 followed by the metadata bytes |
//! | 92 | 4004 | zero |
//! | 4096 | 16 × n | MD5 digests, 16 bytes each, sorted ascending, no duplicates |
//! | … | 20 × n | SHA-1 digests (array starts 64-byte aligned, zero padding between) |
//! | … | 32 × n | SHA-256 digests |
//! | … | | metadata: UTF-8 JSON ([`TableMeta`]) |
//!
//! The metadata holds the set's name and kind, the trawl version that wrote
//! it, and for every source file its path as given, detected format, size,
//! SHA-256, line and digest counts, malformed-line count and examples; and
//! for every array its entry count and the SHA-256 of its bytes. The header
//! CRC covers the header and the metadata, so a corrupt header, name, kind
//! or provenance record is refused on open; the arrays are checked on open
//! for fitting the file and, by spot checks at evenly spaced entries, for
//! being sorted; [`Table::verify`] checks them completely (strict order and
//! each array's SHA-256). The table holds no timestamp: the same sources,
//! name and kind give a byte-identical table.
//!
//! # Lookups
//!
//! [`KnownSet::lookup`] takes the digests a file has ([`Digests`]) and tries
//! the strongest first (SHA-256, SHA-1, MD5); a [`Hit`] names the set, its
//! kind and the algorithm that matched, so a report can say exactly why a file
//! was marked. Digests are uniformly distributed, so the search
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
    VERSION,
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
