use std::path::PathBuf;

/// Why evidence could not be opened or read. Every variant names the file,
/// and the offset where one applies.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{}: evidence not found", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: permission denied", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{}: is a directory, not an image", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{}: I/O error at offset {offset}: {source}", path.display())]
    Io {
        path: PathBuf,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unsupported format {format}: {hint}", path.display())]
    Unsupported {
        path: PathBuf,
        format: &'static str,
        hint: &'static str,
    },
    #[error("{}: unknown format: {reason}", path.display())]
    UnknownFormat { path: PathBuf, reason: String },
    #[error("{}: truncated at offset {offset}: {what}", path.display())]
    Truncated {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{}: corrupt at offset {offset}: {what}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{}: missing segment {expected} ({what})", path.display())]
    MissingSegment {
        path: PathBuf,
        expected: String,
        what: String,
    },
    #[error("{}: the same file as segment {} ({}): a split image's segments must be distinct files", path.display(), first_index + 1, first.display())]
    DuplicateSegment {
        path: PathBuf,
        first: PathBuf,
        first_index: usize,
    },
    #[error("{}: refused: {why} (it resolves to {})", path.display(), real.display())]
    OutsideRoots {
        path: PathBuf,
        real: PathBuf,
        why: String,
    },
    #[error("{}: object storage: {what}", path.display())]
    Remote { path: PathBuf, what: String },
    #[error("{}: read at offset {offset} is past the end of the media ({size} bytes)", path.display())]
    OutOfRange {
        path: PathBuf,
        offset: u64,
        size: u64,
    },
}

impl EvidenceError {
    /// Maps an `open` error to the variant naming its cause.
    pub fn from_open(path: &std::path::Path, e: std::io::Error) -> Self {
        let path = path.to_path_buf();
        match e.kind() {
            std::io::ErrorKind::NotFound => EvidenceError::NotFound { path },
            std::io::ErrorKind::PermissionDenied => EvidenceError::PermissionDenied { path },
            std::io::ErrorKind::IsADirectory => EvidenceError::IsDirectory { path },
            _ => EvidenceError::Io {
                path,
                offset: 0,
                source: e,
            },
        }
    }

    /// An I/O error at `offset` of `path`.
    pub fn io(path: &std::path::Path, offset: u64, source: std::io::Error) -> Self {
        EvidenceError::Io {
            path: path.to_path_buf(),
            offset,
            source,
        }
    }
}
