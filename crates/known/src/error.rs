//! Errors: each names the file, and the line or offset where it applies.

use std::path::PathBuf;

use crate::{Algorithm, Kind};

/// Why a set could not be imported, opened or looked up in.
#[derive(Debug, thiserror::Error)]
pub enum KnownError {
    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a trawl known-file table (bad magic)", path = path.display())]
    BadMagic { path: PathBuf },
    #[error("{path}: table format version {found}; this trawl reads version {supported}", path = path.display())]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path}: truncated table: {what} needs {need} bytes, the file has {have}", path = path.display())]
    Truncated {
        path: PathBuf,
        what: String,
        need: u64,
        have: u64,
    },
    #[error(
        "{path}: header checksum mismatch (stored {stored:08x}, computed {computed:08x}): the table is corrupt",
        path = path.display()
    )]
    HeaderChecksum {
        path: PathBuf,
        stored: u32,
        computed: u32,
    },
    #[error("{path}: corrupt table at offset {offset}: {what}", path = path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error(
        "{path}: corrupt table: {algorithm} array not in strictly ascending order at entry {index} (offset {offset})",
        path = path.display()
    )]
    Unsorted {
        path: PathBuf,
        algorithm: Algorithm,
        index: u64,
        offset: u64,
    },
    #[error(
        "{path}: corrupt table: {algorithm} array SHA-256 is {computed}, the metadata records {recorded}",
        path = path.display()
    )]
    ArrayChecksum {
        path: PathBuf,
        algorithm: Algorithm,
        recorded: String,
        computed: String,
    },
    #[error("{path}:{line}: {reason}", path = path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error(
        "{path}: {count} malformed lines, more than the {limit} allowed (first at line {first_line}: {first_reason})",
        path = path.display()
    )]
    TooManyMalformed {
        path: PathBuf,
        count: u64,
        limit: u64,
        first_line: u64,
        first_reason: String,
    },
    #[error("{path}: no digests found (read as {format})", path = path.display())]
    NoDigests { path: PathBuf, format: String },
    #[error("{path}: SQLite: {source}", path = path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: not an NSRL RDSv3 database: {what}", path = path.display())]
    SqliteSchema { path: PathBuf, what: String },
    #[error(
        "{path}: the NSRL database has no index SQLite can use for `{column}` (query plan: {plan}); \
         every lookup would scan the whole database. Build a trawl table from it once with \
         `trawl known import --name NAME {path} OUT.trawlknown` and pass OUT.trawlknown instead",
        path = path.display()
    )]
    SqliteNoIndex {
        path: PathBuf,
        column: String,
        plan: String,
    },
    #[error(
        "{path}: the table was imported as a {stored} set but is used as {requested}",
        path = path.display()
    )]
    KindMismatch {
        path: PathBuf,
        stored: Kind,
        requested: Kind,
    },
    #[error("{path}: {what}", path = path.display())]
    Invalid { path: PathBuf, what: String },
}

impl KnownError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> KnownError {
        KnownError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sqlite(path: impl Into<PathBuf>, source: rusqlite::Error) -> KnownError {
        KnownError::Sqlite {
            path: path.into(),
            source,
        }
    }
}
