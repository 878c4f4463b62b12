//! Evidence roots: the folders a node may read evidence from.
//!
//! A path is checked twice. [`Confinement::check_path`] resolves it with
//! every symbolic link followed and refuses it unless the result lies under
//! a root and outside every excluded folder (a scheduler's data directory),
//! so a request is refused with a clear message before anything is
//! planned. [`Confinement::open_segments`] then opens the evidence with
//! every file the readers open checked *after* it was opened: the kernel's
//! name of the open file (`/proc/self/fd/N`) must pass the same test. A
//! symbolic link swapped between the check and the open therefore cannot
//! lead outside the roots: what is checked is the file that was opened, not
//! a name that may since point elsewhere.

use crate::remote::Locator;
use crate::{Evidence, EvidenceError};
use std::cell::RefCell;
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Folders (or single files) evidence may be read from, and folders it may
/// never be read from even when a root contains them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    roots: Vec<PathBuf>,
    excluded: Vec<PathBuf>,
    /// Allowed buckets and prefixes (`s3://bucket/prefix/`).
    remote_roots: Vec<Locator>,
}

/// Splits roots into local paths and object-storage prefixes (a root that
/// is not a valid locator is dropped with a warning: it allows nothing).
fn split_roots<R: AsRef<Path>>(roots: &[R]) -> (Vec<&Path>, Vec<Locator>) {
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for r in roots.iter().map(AsRef::as_ref) {
        if crate::remote::is_remote(r) {
            match Locator::parse(r, true) {
                Ok(l) => remote.push(l),
                Err(e) => tracing::warn!("evidence root ignored: {e}"),
            }
        } else if !r.as_os_str().is_empty() {
            // An empty path is no root (it would contain every path).
            local.push(r);
        }
    }
    (local, remote)
}

impl Confinement {
    /// Roots and exclusions, each resolved (symbolic links followed). A root
    /// that does not exist is kept as given (it confines to nothing that
    /// exists; it may be mounted later).
    pub fn new<R: AsRef<Path>, E: AsRef<Path>>(roots: &[R], excluded: &[E]) -> Self {
        let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| lexical(p));
        let (local, remote_roots) = split_roots(roots);
        Self {
            roots: local.into_iter().map(resolve).collect(),
            excluded: excluded.iter().map(|e| resolve(e.as_ref())).collect(),
            remote_roots,
        }
    }

    /// Whether no root is configured (every server path is then refused).
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty() && self.remote_roots.is_empty()
    }

    /// The allowed buckets and prefixes.
    pub fn remote_roots(&self) -> &[Locator] {
        &self.remote_roots
    }

    /// Whether the object `loc` lies under an allowed bucket or prefix.
    pub fn allows_remote(&self, loc: &Locator) -> bool {
        self.remote_roots.iter().any(|r| loc.is_under(r))
    }

    /// The resolved roots.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// This confinement with more roots (a case's own roots).
    #[must_use]
    pub fn with_roots<R: AsRef<Path>>(&self, more: &[R]) -> Self {
        let mut c = self.clone();
        let (local, remote) = split_roots(more);
        c.roots.extend(
            local
                .into_iter()
                .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| lexical(r))),
        );
        c.remote_roots.extend(remote);
        c
    }

    /// Whether an already resolved path is allowed.
    pub fn allows_resolved(&self, real: &Path) -> bool {
        self.roots.iter().any(|r| real.starts_with(r))
            && !self.excluded.iter().any(|e| real.starts_with(e))
    }

    /// Resolves `path` (symbolic links followed) and returns the real path
    /// when it is allowed.
    ///
    /// # Errors
    /// [`EvidenceError::OutsideRoots`] naming the path and where it leads;
    /// [`EvidenceError::NotFound`] when it cannot be resolved.
    /// An object locator is checked by its bucket and key, without
    /// contacting the store.
    pub fn check_path(&self, path: &Path) -> Result<PathBuf, EvidenceError> {
        if crate::remote::is_remote(path) {
            let loc = Locator::parse(path, false)?;
            return if self.allows_remote(&loc) {
                Ok(PathBuf::from(loc.to_string()))
            } else {
                Err(self.remote_refusal(path))
            };
        }
        let real = std::fs::canonicalize(path).map_err(|e| EvidenceError::from_open(path, e))?;
        if self.allows_resolved(&real) {
            Ok(real)
        } else {
            Err(self.refusal(path, &real))
        }
    }

    fn remote_refusal(&self, path: &Path) -> EvidenceError {
        EvidenceError::OutsideRoots {
            path: path.to_path_buf(),
            real: path.to_path_buf(),
            why: if self.remote_roots.is_empty() {
                "no object-storage evidence root (bucket or prefix) is configured".to_string()
            } else {
                "it is not under an allowed bucket or prefix".to_string()
            },
        }
    }

    fn refusal(&self, path: &Path, real: &Path) -> EvidenceError {
        let why = if self.roots.is_empty() {
            "no evidence root is configured".to_string()
        } else if self.excluded.iter().any(|e| real.starts_with(e)) {
            "it lies in the scheduler's data directory".to_string()
        } else {
            "it is not under an evidence root".to_string()
        };
        EvidenceError::OutsideRoots {
            path: path.to_path_buf(),
            real: real.to_path_buf(),
            why,
        }
    }

    /// Checks a file this process has just opened under the name `asked`:
    /// the kernel's name of the open file must be allowed.
    ///
    /// # Errors
    /// [`EvidenceError::OutsideRoots`].
    pub fn check_opened(&self, file: &File, asked: &Path) -> Result<(), EvidenceError> {
        let real = opened_path(file).map_err(|e| EvidenceError::io(asked, 0, e))?;
        if self.allows_resolved(&real) {
            Ok(())
        } else {
            Err(self.refusal(asked, &real))
        }
    }

    /// Opens evidence (as [`crate::open_segments`]) with every file the
    /// readers open on this thread checked against this confinement after
    /// it was opened (segment files discovered from the first name
    /// included).
    ///
    /// # Errors
    /// As [`crate::open_segments`]; [`EvidenceError::OutsideRoots`].
    pub fn open_segments(&self, paths: &[PathBuf]) -> Result<Arc<dyn Evidence>, EvidenceError> {
        let _scope = Scope::enter(self.clone());
        crate::open_segments(paths)
    }
}

/// Lexically normalised absolute form (`.` and `..` removed) of a path that
/// cannot be resolved.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// The name the kernel gives an open file.
fn opened_path(file: &File) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

thread_local! {
    static ACTIVE: RefCell<Option<Confinement>> = const { RefCell::new(None) };
}

/// The confinement in force on this thread while opening evidence.
struct Scope {
    previous: Option<Confinement>,
}

impl Scope {
    fn enter(c: Confinement) -> Self {
        Self {
            previous: ACTIVE.with(|a| a.borrow_mut().replace(c)),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let prev = self.previous.take();
        ACTIVE.with(|a| *a.borrow_mut() = prev);
    }
}

/// Every evidence file opened by this crate passes here: checked against
/// the confinement in force on this thread, if any.
pub(crate) fn checked_open(path: &Path) -> Result<File, EvidenceError> {
    let file = File::open(path).map_err(|e| EvidenceError::from_open(path, e))?;
    ACTIVE.with(|a| match a.borrow().as_ref() {
        Some(c) => c.check_opened(&file, path),
        None => Ok(()),
    })?;
    Ok(file)
}

/// Every object opened by this crate passes here: checked against the
/// confinement in force on this thread, if any.
pub(crate) fn check_remote(path: &Path, loc: &Locator) -> Result<(), EvidenceError> {
    ACTIVE.with(|a| match a.borrow().as_ref() {
        Some(c) if !c.allows_remote(loc) => Err(c.remote_refusal(path)),
        _ => Ok(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_out_of_a_root_are_refused_by_name_and_after_opening() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        let data = root.join("data");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(root.join("ok.dd"), vec![1u8; 4096]).unwrap();
        std::fs::write(outside.join("secret"), vec![2u8; 4096]).unwrap();
        std::fs::write(data.join("key.pem"), vec![3u8; 4096]).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("link.dd")).unwrap();
        let c = Confinement::new(&[&root], &[&data]);
        assert!(c.check_path(&root.join("ok.dd")).is_ok());
        assert!(c.open_segments(&[root.join("ok.dd")]).is_ok());
        for bad in [
            root.join("link.dd"),
            outside.join("secret"),
            data.join("key.pem"),
            root.join("../outside/secret"),
        ] {
            let e = c.check_path(&bad).unwrap_err();
            assert!(
                matches!(e, EvidenceError::OutsideRoots { .. }),
                "{bad:?}: {e}"
            );
            let e = c.open_segments(std::slice::from_ref(&bad)).err().unwrap();
            assert!(
                matches!(e, EvidenceError::OutsideRoots { .. }),
                "{bad:?}: {e}"
            );
        }
        // The check after opening holds on its own: a name that passed the
        // check but leads elsewhere when opened is refused.
        let _scope = Scope::enter(c.clone());
        let e = checked_open(&root.join("link.dd")).unwrap_err();
        assert!(matches!(e, EvidenceError::OutsideRoots { .. }), "{e}");
        assert!(checked_open(&root.join("ok.dd")).is_ok());
        drop(_scope);
        // Without roots nothing is allowed.
        let none = Confinement::new::<&Path, &Path>(&[], &[]);
        assert!(none.check_path(&root.join("ok.dd")).is_err());
        // A root may be a single file.
        let one = Confinement::new(&[root.join("ok.dd")], &[&data]);
        assert!(one.check_path(&root.join("ok.dd")).is_ok());
        assert!(one.check_path(&root.join("link.dd")).is_err());
    }
}
