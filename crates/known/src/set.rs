//! One hash set whatever its format, and the collection with notable-wins.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::nsrl::{self, NsrlDb};
use crate::table::{is_table, read_up_to};
use crate::{
    Algorithm, DigestCounts, Digests, Hit, ImportOptions, Kind, KnownError, Table, import_with,
};

/// The format a set was opened from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetFormat {
    /// A trawl table, memory-mapped.
    Table,
    /// An NSRL RDSv3 SQLite database, queried through its indexes.
    NsrlSqlite,
    /// A text list, imported into a temporary table on open.
    TextList,
}

/// How to open a set.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Known or notable (`--known` or `--notable`). A trawl table records
    /// its kind; opening it as the other kind is refused.
    pub kind: Kind,
    /// The set's name in hits; by default the table's recorded name, the
    /// NSRL release (`NSRL RDS 2024.03.1 …` from its VERSION table) or the
    /// file's name without extension.
    pub name: Option<String>,
    /// How a text list is imported (malformed-line policy, memory).
    pub import: ImportOptions,
    /// Where a text list's temporary table goes (default: the system's
    /// temporary directory).
    pub temp_dir: Option<PathBuf>,
}

impl OpenOptions {
    /// Defaults for `kind`.
    #[must_use]
    pub fn new(kind: Kind) -> OpenOptions {
        OpenOptions {
            kind,
            name: None,
            import: ImportOptions::default(),
            temp_dir: None,
        }
    }
}

enum Backend {
    Table(Table),
    /// A text list's table, deleted with the set (the map is dropped
    /// first: fields drop in order).
    Imported {
        table: Table,
        _dir: tempfile::TempDir,
    },
    Sqlite(NsrlDb),
}

/// One opened hash set. `Send + Sync`: share it between workers.
pub struct KnownSet {
    name: Arc<str>,
    kind: Kind,
    path: PathBuf,
    format: SetFormat,
    backend: Backend,
}

impl std::fmt::Debug for KnownSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownSet")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

impl KnownSet {
    /// Opens `path` (format detected) as a set of `kind`.
    ///
    /// # Errors
    /// See [`KnownSet::open_with`].
    pub fn open(path: impl AsRef<Path>, kind: Kind) -> Result<KnownSet, KnownError> {
        Self::open_with(path, &OpenOptions::new(kind))
    }

    /// Opens `path` with options: a trawl table is checked and mapped, an
    /// NSRL database is checked for usable indexes, a text list is imported
    /// into a temporary table.
    ///
    /// # Errors
    /// Unreadable, corrupt or unrecognised files; an NSRL database without
    /// an index for one of its digest columns; a text list with malformed
    /// lines (beyond `import.max_malformed`); a table of the other kind.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<KnownSet, KnownError> {
        let path = path.as_ref();
        let mut head = [0u8; 16];
        let mut f = File::open(path).map_err(|e| KnownError::io(path, e))?;
        let got = read_up_to(&mut f, &mut head).map_err(|e| KnownError::io(path, e))?;
        drop(f);
        let head = &head[..got];
        let (format, backend, default_name) = if is_table(head) {
            let t = Table::open(path)?;
            let name = t.meta().name.clone();
            (SetFormat::Table, Backend::Table(t), name)
        } else if nsrl::is_sqlite(head) {
            let db = NsrlDb::open(path)?;
            let name = db.version.clone().unwrap_or_else(|| stem(path));
            (SetFormat::NsrlSqlite, Backend::Sqlite(db), name)
        } else {
            let dir = match &opts.temp_dir {
                Some(d) => tempfile::Builder::new()
                    .prefix("trawl-known-")
                    .tempdir_in(d),
                None => tempfile::Builder::new().prefix("trawl-known-").tempdir(),
            }
            .map_err(|e| KnownError::io(path, e))?;
            let out = dir.path().join("list.trawlknown");
            let name = opts.name.clone().unwrap_or_else(|| stem(path));
            let import = ImportOptions {
                sync: false,
                ..opts.import.clone()
            };
            import_with(&[path], &out, &name, opts.kind, &import)?;
            let t = Table::open(&out)?;
            (
                SetFormat::TextList,
                Backend::Imported {
                    table: t,
                    _dir: dir,
                },
                name,
            )
        };
        if let Backend::Table(t) = &backend
            && t.kind() != opts.kind
        {
            return Err(KnownError::KindMismatch {
                path: path.to_path_buf(),
                stored: t.kind(),
                requested: opts.kind,
            });
        }
        Ok(KnownSet {
            name: opts.name.clone().unwrap_or(default_name).into(),
            kind: opts.kind,
            path: path.to_path_buf(),
            format,
            backend,
        })
    }

    /// True when `digest` (an `alg` digest) is in the set.
    ///
    /// # Errors
    /// SQLite errors (an NSRL database); a table lookup cannot fail.
    pub fn contains(&self, alg: Algorithm, digest: &[u8]) -> Result<bool, KnownError> {
        match &self.backend {
            Backend::Table(t) | Backend::Imported { table: t, .. } => Ok(t.contains(alg, digest)),
            Backend::Sqlite(db) => db.contains(alg, digest),
        }
    }

    /// Looks the file's digests up, strongest first (SHA-256, SHA-1, MD5);
    /// the first that matches gives the hit.
    ///
    /// # Errors
    /// SQLite errors (an NSRL database).
    pub fn lookup(&self, d: &Digests) -> Result<Option<Hit>, KnownError> {
        if let Some(t) = self.table() {
            return Ok(t.lookup(d).map(|alg| self.hit(alg)));
        }
        for alg in Algorithm::STRONGEST_FIRST {
            if let Some(x) = d.get(alg)
                && self.contains(alg, x)?
            {
                return Ok(Some(Hit {
                    set: self.name.clone(),
                    kind: self.kind,
                    algorithm: alg,
                }));
            }
        }
        Ok(None)
    }

    fn hit(&self, alg: Algorithm) -> Hit {
        Hit {
            set: self.name.clone(),
            kind: self.kind,
            algorithm: alg,
        }
    }

    /// [`KnownSet::lookup`] for many files at once: `result[i]` is the hit
    /// of `ds[i]`. On a table the lookups are batched ([`Table::lookup_many`]:
    /// the memory accesses of independent lookups overlap), several times
    /// faster per lookup than one call per file on a table larger than the
    /// CPU's caches; an NSRL database is queried file by file.
    ///
    /// # Errors
    /// SQLite errors (an NSRL database).
    pub fn lookup_many(&self, ds: &[Digests]) -> Result<Vec<Option<Hit>>, KnownError> {
        match self.table() {
            Some(t) => Ok(t
                .lookup_many(ds)
                .into_iter()
                .map(|a| a.map(|alg| self.hit(alg)))
                .collect()),
            None => ds.iter().map(|d| self.lookup(d)).collect(),
        }
    }

    /// The set's name (as it appears in hits).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Known or notable.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The file it was opened from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format it was opened from.
    #[must_use]
    pub fn format(&self) -> SetFormat {
        self.format
    }

    /// The table behind it (a trawl table or an imported list).
    #[must_use]
    pub fn table(&self) -> Option<&Table> {
        match &self.backend {
            Backend::Table(t) | Backend::Imported { table: t, .. } => Some(t),
            Backend::Sqlite(_) => None,
        }
    }

    /// Distinct digests per algorithm (a table), `None` for a database.
    #[must_use]
    pub fn counts(&self) -> Option<DigestCounts> {
        self.table().map(Table::counts)
    }

    /// The algorithms the set can match.
    #[must_use]
    pub fn algorithms(&self) -> Vec<Algorithm> {
        match &self.backend {
            Backend::Table(t) | Backend::Imported { table: t, .. } => {
                let c = t.counts();
                Algorithm::ALL
                    .into_iter()
                    .filter(|a| c.get(*a) > 0)
                    .collect()
            }
            Backend::Sqlite(db) => db.algorithms().to_vec(),
        }
    }
}

/// Every set given to a run; [`KnownSets::lookup`] applies notable-wins.
#[derive(Debug, Default)]
pub struct KnownSets {
    sets: Vec<KnownSet>,
}

impl KnownSets {
    /// No sets.
    #[must_use]
    pub fn new() -> KnownSets {
        KnownSets::default()
    }

    /// Opens `--known` and `--notable` files.
    ///
    /// # Errors
    /// The first set that fails to open.
    pub fn open<P: AsRef<Path>, Q: AsRef<Path>>(
        known: &[P],
        notable: &[Q],
    ) -> Result<KnownSets, KnownError> {
        let mut s = KnownSets::new();
        for p in notable {
            s.push(KnownSet::open(p, Kind::Notable)?);
        }
        for p in known {
            s.push(KnownSet::open(p, Kind::Known)?);
        }
        Ok(s)
    }

    /// Adds a set.
    pub fn push(&mut self, set: KnownSet) {
        self.sets.push(set);
    }

    /// The sets, in the order added.
    #[must_use]
    pub fn sets(&self) -> &[KnownSet] {
        &self.sets
    }

    /// True when there are no sets.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The file's classification: the first notable set that matches (sets
    /// in the order added); else the first known set; else `None`. Notable
    /// wins over known.
    ///
    /// # Errors
    /// SQLite errors (an NSRL database).
    pub fn lookup(&self, d: &Digests) -> Result<Option<Hit>, KnownError> {
        for kind in [Kind::Notable, Kind::Known] {
            for s in self.sets.iter().filter(|s| s.kind == kind) {
                if let Some(h) = s.lookup(d)? {
                    return Ok(Some(h));
                }
            }
        }
        Ok(None)
    }

    /// [`KnownSets::lookup`] for many files at once (notable wins, as
    /// there): `result[i]` is the classification of `ds[i]`. Each set is
    /// searched in one batch ([`KnownSet::lookup_many`]) for the files no
    /// earlier set matched. This is the call for a job's whole file list
    /// (or chunks of a few thousand files, one per worker thread): on a
    /// large table it is several times faster per file than
    /// [`KnownSets::lookup`] per file. Memory: about 80 bytes per file.
    ///
    /// # Errors
    /// SQLite errors (an NSRL database).
    pub fn lookup_many(&self, ds: &[Digests]) -> Result<Vec<Option<Hit>>, KnownError> {
        let mut out: Vec<Option<Hit>> = vec![None; ds.len()];
        let mut left: Vec<usize> = (0..ds.len()).collect();
        for kind in [Kind::Notable, Kind::Known] {
            for s in self.sets.iter().filter(|s| s.kind == kind) {
                if left.is_empty() {
                    return Ok(out);
                }
                let hits = if left.len() == ds.len() {
                    s.lookup_many(ds)?
                } else {
                    let sub: Vec<Digests> = left.iter().map(|&i| ds[i]).collect();
                    s.lookup_many(&sub)?
                };
                let mut still = Vec::with_capacity(left.len());
                for (i, h) in left.into_iter().zip(hits) {
                    match h {
                        Some(h) => out[i] = Some(h),
                        None => still.push(i),
                    }
                }
                left = still;
            }
        }
        Ok(out)
    }

    /// Every set that matches (notable sets first), for a report that
    /// lists them all.
    ///
    /// # Errors
    /// SQLite errors (an NSRL database).
    pub fn lookup_all(&self, d: &Digests) -> Result<Vec<Hit>, KnownError> {
        let mut hits = Vec::new();
        for kind in [Kind::Notable, Kind::Known] {
            for s in self.sets.iter().filter(|s| s.kind == kind) {
                if let Some(h) = s.lookup(d)? {
                    hits.push(h);
                }
            }
        }
        Ok(hits)
    }
}
