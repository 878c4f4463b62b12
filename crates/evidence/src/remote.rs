//! Evidence in object storage (`s3://bucket/key`, `gs://bucket/key`,
//! `az://container/key`), read by byte ranges.
//!
//! This crate does not talk to object stores itself: a process that reads
//! such evidence installs a [`RemoteBackend`] once at start
//! ([`set_remote_backend`]; `trawl-objstore` provides the one built on the
//! `object_store` crate). Every reader then treats an object as it treats a
//! file: raw images, split images (`s3://b/disk.001`, `.002`, …, discovered
//! by name as on disk) and EWF segment sets, whose chunk reads become range
//! reads of the segment objects. Virtual-machine disks are read from local
//! files only.
//!
//! An object locator is kept as a path (`PathBuf::from("s3://b/k")`) so
//! errors, reports and job records name it exactly as given; it never holds
//! credentials (locators with a user or password are refused).

use crate::EvidenceError;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The URL schemes read through the remote backend.
pub const REMOTE_SCHEMES: [&str; 3] = ["s3", "gs", "az"];

/// One object, opened: its size fixed at open, read by ranges.
pub trait RemoteObject: Send + Sync + fmt::Debug {
    /// The object's size in bytes when it was opened.
    fn size(&self) -> u64;

    /// Reads up to `buf.len()` bytes at `offset`; short only at the end.
    ///
    /// # Errors
    /// Transport and store errors, naming the object and the offset.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError>;
}

/// Opens objects by locator.
pub trait RemoteBackend: Send + Sync {
    /// Opens `locator` (`s3://bucket/key`, …).
    ///
    /// # Errors
    /// [`EvidenceError::NotFound`] for a missing object,
    /// [`EvidenceError::PermissionDenied`] for refused credentials,
    /// [`EvidenceError::Remote`] otherwise.
    fn open(&self, locator: &str) -> Result<Arc<dyn RemoteObject>, EvidenceError>;

    /// Whether `locator` names an existing object.
    ///
    /// # Errors
    /// As [`RemoteBackend::open`], except that a missing object is `Ok(false)`.
    fn exists(&self, locator: &str) -> Result<bool, EvidenceError>;
}

static BACKEND: RwLock<Option<Arc<dyn RemoteBackend>>> = RwLock::new(None);

/// Installs the backend this process reads object-storage evidence with
/// (replacing any earlier one).
pub fn set_remote_backend(backend: Arc<dyn RemoteBackend>) {
    if let Ok(mut b) = BACKEND.write() {
        *b = Some(backend);
    }
}

/// Whether a backend is installed.
pub fn has_remote_backend() -> bool {
    BACKEND.read().map(|b| b.is_some()).unwrap_or(false)
}

fn backend(path: &Path) -> Result<Arc<dyn RemoteBackend>, EvidenceError> {
    BACKEND
        .read()
        .ok()
        .and_then(|b| b.clone())
        .ok_or_else(|| EvidenceError::Remote {
            path: path.to_path_buf(),
            what: "object storage is not configured on this node (set its [object_store] settings or the AWS_/GOOGLE_/AZURE_ environment variables)".into(),
        })
}

/// The scheme of an object locator (`s3`, `gs`, `az`), if `path` is one.
pub fn remote_scheme(path: &Path) -> Option<&'static str> {
    let s = path.to_str()?;
    REMOTE_SCHEMES.into_iter().find(|sch| {
        s.len() > sch.len() + 3 && s.starts_with(sch) && s[sch.len()..].starts_with("://")
    })
}

/// Whether `path` is an object locator rather than a file path.
pub fn is_remote(path: &Path) -> bool {
    remote_scheme(path).is_some()
}

/// A checked object locator: `scheme://bucket/key` with a bucket and a
/// key, no credentials, no query, no `.`/`..`/empty key segments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Locator {
    pub scheme: &'static str,
    pub bucket: String,
    /// The key, without a leading `/`.
    pub key: String,
}

impl Locator {
    /// Parses and checks `path`. A root (`s3://bucket/` or
    /// `s3://bucket/prefix/`) may have an empty key or end with `/` when
    /// `prefix` is true.
    ///
    /// # Errors
    /// [`EvidenceError::Remote`] naming what is wrong.
    pub fn parse(path: &Path, prefix: bool) -> Result<Self, EvidenceError> {
        let bad = |what: &str| EvidenceError::Remote {
            path: PathBuf::from(redact(&path.to_string_lossy())),
            what: what.to_string(),
        };
        let scheme =
            remote_scheme(path).ok_or_else(|| bad("not an s3://, gs:// or az:// locator"))?;
        let s = path.to_str().ok_or_else(|| bad("not valid UTF-8"))?;
        let rest = &s[scheme.len() + 3..];
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        if bucket.contains('@') || bucket.contains(':') {
            return Err(bad(
                "credentials or ports do not belong in an evidence locator (give them in the node's object-store settings)",
            ));
        }
        if key.contains('?') || key.contains('#') {
            return Err(bad("a locator takes no query or fragment"));
        }
        if !prefix && (key.is_empty() || key.ends_with('/')) {
            return Err(bad("names a bucket or a folder, not an object"));
        }
        let body = key.strip_suffix('/').unwrap_or(key);
        if !body.is_empty()
            && body
                .split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(bad("empty, '.' or '..' key segments are refused"));
        }
        Ok(Self {
            scheme,
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// Whether this object lies under `root` (same scheme and bucket, key
    /// under the root's prefix on a `/` boundary).
    pub fn is_under(&self, root: &Locator) -> bool {
        if self.scheme != root.scheme || self.bucket != root.bucket {
            return false;
        }
        let p = root.key.as_str();
        p.is_empty()
            || (p.ends_with('/') && self.key.starts_with(p))
            || self.key == p
            || (self.key.starts_with(p) && self.key.as_bytes().get(p.len()) == Some(&b'/'))
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.scheme, self.bucket, self.key)
    }
}

/// `s` with any `user:password@` part of an URL's authority masked, for
/// error messages.
pub fn redact(s: &str) -> String {
    if let Some(i) = s.find("://") {
        let after = &s[i + 3..];
        let auth_end = after.find('/').unwrap_or(after.len());
        if let Some(at) = after[..auth_end].rfind('@') {
            return format!("{}://***@{}", &s[..i], &after[at + 1..]);
        }
    }
    s.to_string()
}

/// What a submitted evidence string names: `file:///x` is the path `/x`
/// (percent-escapes decoded); object locators are checked and returned in
/// their normal form; anything else is returned as given.
///
/// # Errors
/// A malformed `file://` URL or object locator, named.
pub fn locator_path(s: &str) -> Result<String, EvidenceError> {
    if let Some(rest) = s.strip_prefix("file://") {
        let bad = |what: &str| EvidenceError::Remote {
            path: PathBuf::from(redact(s)),
            what: what.to_string(),
        };
        if !rest.starts_with('/') {
            return Err(bad(
                "a file:// URL needs an absolute path (file:///dir/image)",
            ));
        }
        let b = rest.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad("malformed %-escape"))?;
                out.push(hex);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        return String::from_utf8(out).map_err(|_| bad("not valid UTF-8 once unescaped"));
    }
    let p = Path::new(s);
    if is_remote(p) {
        return Ok(Locator::parse(p, false)?.to_string());
    }
    Ok(s.to_string())
}

/// A segment's handle: a local file or an object.
pub(crate) enum Handle {
    File(File),
    Remote(Arc<dyn RemoteObject>),
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handle::File(file) => file.fmt(f),
            Handle::Remote(o) => o.fmt(f),
        }
    }
}

impl Handle {
    /// Opens `path` (a file, or an object when it is a locator) read-only,
    /// checked against the confinement in force on this thread; returns it
    /// with its size.
    pub(crate) fn open(path: &Path) -> Result<(Handle, u64), EvidenceError> {
        if is_remote(path) {
            let loc = Locator::parse(path, false)?;
            crate::confine::check_remote(path, &loc)?;
            let o = backend(path)?.open(&loc.to_string())?;
            let size = o.size();
            Ok((Handle::Remote(o), size))
        } else {
            let (f, size) = crate::raw::open_file(path)?;
            Ok((Handle::File(f), size))
        }
    }

    pub(crate) fn file(&self) -> Option<&File> {
        match self {
            Handle::File(f) => Some(f),
            Handle::Remote(_) => None,
        }
    }

    /// Reads as much of `buf` as lies before the end, at `offset`.
    pub(crate) fn pread_full(
        &self,
        path: &Path,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, EvidenceError> {
        match self {
            Handle::File(f) => crate::raw::pread_full(f, path, offset, buf),
            Handle::Remote(o) => {
                let mut done = 0;
                while done < buf.len() {
                    let n = o.read_at(offset + done as u64, &mut buf[done..])?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                Ok(done)
            }
        }
    }
}

/// Whether a segment named `path` exists (a file, a symbolic link, or an
/// object).
pub(crate) fn segment_exists(path: &Path) -> bool {
    if is_remote(path) {
        let Ok(loc) = Locator::parse(path, false) else {
            return false;
        };
        backend(path)
            .and_then(|b| b.exists(&loc.to_string()))
            .unwrap_or(false)
    } else {
        path.exists() || std::fs::symlink_metadata(path).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_are_parsed_and_checked() {
        let l = Locator::parse(Path::new("s3://ev/case1/disk.E01"), false).unwrap();
        assert_eq!(
            (l.scheme, l.bucket.as_str(), l.key.as_str()),
            ("s3", "ev", "case1/disk.E01")
        );
        assert_eq!(l.to_string(), "s3://ev/case1/disk.E01");
        for bad in [
            "s3://",
            "s3:///k",
            "s3://ev/",
            "s3://ev",
            "s3://ev/a/../b",
            "s3://ev/a//b",
            "s3://ev/./b",
            "s3://user:secret@ev/k",
            "s3://ev/k?x=1",
            "http://ev/k",
        ] {
            let e = Locator::parse(Path::new(bad), false).unwrap_err();
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        let root = Locator::parse(Path::new("s3://ev/case1/"), true).unwrap();
        let whole = Locator::parse(Path::new("s3://ev/"), true).unwrap();
        let bare = Locator::parse(Path::new("s3://ev/case1"), true).unwrap();
        assert!(l.is_under(&root) && l.is_under(&whole) && l.is_under(&bare));
        let other = Locator::parse(Path::new("s3://ev/case10/x"), false).unwrap();
        assert!(!other.is_under(&root) && !other.is_under(&bare) && other.is_under(&whole));
        let gs = Locator::parse(Path::new("gs://ev/case1/disk.E01"), false).unwrap();
        assert!(!gs.is_under(&root));
        assert_eq!(redact("s3://a:b@ev/k"), "s3://***@ev/k");
        assert_eq!(
            locator_path("file:///cases/a%20b.E01").unwrap(),
            "/cases/a b.E01"
        );
        assert!(locator_path("file://host/x").is_err() && locator_path("file:///x%zz").is_err());
        assert_eq!(locator_path("s3://ev/k").unwrap(), "s3://ev/k");
        assert!(locator_path("s3://ev/../k").is_err());
        assert_eq!(locator_path("/plain/path").unwrap(), "/plain/path");
        assert!(is_remote(Path::new("az://c/k")) && !is_remote(Path::new("/s3://x")));
    }
}
