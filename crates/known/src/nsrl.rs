//! NIST NSRL RDSv3 SQLite databases.
//!
//! RDSv3 publishes its data as an SQLite database whose `FILE` view (a table
//! in some builds) has the RDSv2-like columns `sha256`, `sha1`, `md5`,
//! `file_name`, `file_size`, `package_id`; digests are upper-case hex. The
//! database is opened read-only with `immutable=1`: SQLite then takes no
//! locks and creates no journal, WAL or shared-memory file beside it.
//!
//! Lookups query `FILE` directly, but only through an index: on open each
//! digest column's query is run through `EXPLAIN QUERY PLAN`, and a column
//! SQLite would answer by scanning a table refuses the open
//! ([`KnownError::SqliteNoIndex`]). The check asks the planner rather than
//! assuming an index layout, because releases (full, minimal, delta-applied)
//! differ and a user may have added indexes of their own.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::text::parse_hex;
use crate::{Algorithm, Digests, KnownError};

/// The first 16 bytes of every SQLite 3 database.
pub(crate) const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

pub(crate) fn is_sqlite(head: &[u8]) -> bool {
    head.len() >= 16 && &head[..16] == SQLITE_MAGIC
}

/// `file:` URI for `path`, read-only and immutable.
fn uri(path: &Path) -> String {
    let mut s = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push_str("?mode=ro&immutable=1");
    s
}

fn connect(path: &Path) -> Result<Connection, KnownError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(uri(path), flags).map_err(|e| KnownError::sqlite(path, e))?;
    // A lookup reads a few index pages; a small cache keeps each
    // connection's memory bounded (2 MiB).
    conn.pragma_update(None, "cache_size", -2048)
        .map_err(|e| KnownError::sqlite(path, e))?;
    Ok(conn)
}

/// The digest columns `FILE` has, in `Algorithm::ALL` order.
fn file_columns(conn: &Connection, path: &Path) -> Result<Vec<Algorithm>, KnownError> {
    let sq = |e| KnownError::sqlite(path, e);
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') \
             AND name = 'FILE' COLLATE NOCASE",
            [],
            |r| r.get(0),
        )
        .map_err(sq)?;
    if n == 0 {
        return Err(KnownError::SqliteSchema {
            path: path.to_path_buf(),
            what: "it has no FILE table or view".into(),
        });
    }
    let mut stmt = conn.prepare("PRAGMA table_info(\"FILE\")").map_err(sq)?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(1))
        .map_err(sq)?
        .collect::<Result<_, _>>()
        .map_err(sq)?;
    let algs: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| names.iter().any(|n| n.eq_ignore_ascii_case(a.name())))
        .collect();
    if algs.is_empty() {
        return Err(KnownError::SqliteSchema {
            path: path.to_path_buf(),
            what: format!(
                "its FILE has none of the columns sha256, sha1, md5 (it has {})",
                names.join(", ")
            ),
        });
    }
    Ok(algs)
}

fn lookup_sql(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Md5 => "SELECT 1 FROM FILE WHERE md5 IN (?1, ?2) LIMIT 1",
        Algorithm::Sha1 => "SELECT 1 FROM FILE WHERE sha1 IN (?1, ?2) LIMIT 1",
        Algorithm::Sha256 => "SELECT 1 FROM FILE WHERE sha256 IN (?1, ?2) LIMIT 1",
    }
}

/// The query plan of `alg`'s lookup, and whether it avoids table scans.
fn plan(conn: &Connection, path: &Path, alg: Algorithm) -> Result<(String, bool), KnownError> {
    let sq = |e| KnownError::sqlite(path, e);
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", lookup_sql(alg)))
        .map_err(sq)?;
    let details: Vec<String> = stmt
        .query_map(["", ""], |r| r.get::<_, String>(3))
        .map_err(sq)?
        .collect::<Result<_, _>>()
        .map_err(sq)?;
    let indexed = !details.is_empty() && !details.iter().any(|d| d.starts_with("SCAN"));
    Ok((details.join("; "), indexed))
}

/// "NSRL RDS <version> <build_set>" from the VERSION table, if it has one.
fn version_name(conn: &Connection) -> Option<String> {
    let mut stmt = conn.prepare("SELECT * FROM VERSION LIMIT 1").ok()?;
    let cols: Vec<String> = stmt.column_names().map(str::to_lowercase).collect();
    let vi = cols.iter().position(|c| c == "version")?;
    let bi = cols.iter().position(|c| c == "build_set");
    stmt.query_row([], |r| {
        let v: String = r.get(vi)?;
        let b: Option<String> = match bi {
            Some(i) => r.get(i).ok(),
            None => None,
        };
        Ok(match b {
            Some(b) if !b.is_empty() => format!("NSRL RDS {v} {b}"),
            _ => format!("NSRL RDS {v}"),
        })
    })
    .ok()
}

/// An NSRL database opened for lookups.
pub(crate) struct NsrlDb {
    path: PathBuf,
    algs: Vec<Algorithm>,
    /// Idle connections; a lookup takes one (or opens one) and puts it back,
    /// so concurrent workers do not serialise on one connection.
    pool: Mutex<Vec<Connection>>,
    pub(crate) version: Option<String>,
}

impl NsrlDb {
    pub(crate) fn open(path: &Path) -> Result<NsrlDb, KnownError> {
        let conn = connect(path)?;
        let algs = file_columns(&conn, path)?;
        for &alg in &algs {
            let (plan, indexed) = plan(&conn, path, alg)?;
            if !indexed {
                return Err(KnownError::SqliteNoIndex {
                    path: path.to_path_buf(),
                    column: alg.name().into(),
                    plan,
                });
            }
        }
        let version = version_name(&conn);
        Ok(NsrlDb {
            path: path.to_path_buf(),
            algs,
            pool: Mutex::new(vec![conn]),
            version,
        })
    }

    pub(crate) fn algorithms(&self) -> &[Algorithm] {
        &self.algs
    }

    pub(crate) fn contains(&self, alg: Algorithm, digest: &[u8]) -> Result<bool, KnownError> {
        if !self.algs.contains(&alg) || digest.len() != alg.digest_len() {
            return Ok(false);
        }
        let conn = self.pool.lock().pop();
        let conn = match conn {
            Some(c) => c,
            None => connect(&self.path)?,
        };
        let upper = hex::encode_upper(digest);
        let lower = hex::encode(digest);
        let found = conn
            .prepare_cached(lookup_sql(alg))
            .and_then(|mut s| s.exists([&upper, &lower]));
        self.pool.lock().push(conn);
        found.map_err(|e| KnownError::sqlite(&self.path, e))
    }
}

fn cell<const N: usize>(v: ValueRef<'_>, alg: Algorithm) -> Result<Option<[u8; N]>, String> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => {
            let t = t.trim_ascii();
            if t.is_empty() {
                Ok(None)
            } else {
                parse_hex::<N>(t)
                    .map(Some)
                    .map_err(|e| format!("{}: {e}", alg.name()))
            }
        }
        ValueRef::Blob(_) => Err(format!("{}: a BLOB, not hex text", alg.name())),
        ValueRef::Integer(_) | ValueRef::Real(_) => {
            Err(format!("{}: a number, not hex text", alg.name()))
        }
    }
}

/// Streams every row of `FILE` to `f` (row number from 1, its digests or
/// why they are malformed); the row count.
pub(crate) fn stream(
    path: &Path,
    mut f: impl FnMut(u64, Result<Digests, String>) -> Result<(), KnownError>,
) -> Result<u64, KnownError> {
    let sq = |e| KnownError::sqlite(path, e);
    let conn = connect(path)?;
    let algs = file_columns(&conn, path)?;
    let col = |a: Algorithm| if algs.contains(&a) { a.name() } else { "NULL" };
    let sql = format!(
        "SELECT {}, {}, {} FROM FILE",
        col(Algorithm::Md5),
        col(Algorithm::Sha1),
        col(Algorithm::Sha256)
    );
    let mut stmt = conn.prepare(&sql).map_err(sq)?;
    let mut rows = stmt.query([]).map_err(sq)?;
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(sq)? {
        n += 1;
        let parsed = (|| -> Result<Digests, String> {
            let get = |i: usize| row.get_ref(i).map_err(|e| e.to_string());
            Ok(Digests {
                md5: cell::<16>(get(0)?, Algorithm::Md5)?,
                sha1: cell::<20>(get(1)?, Algorithm::Sha1)?,
                sha256: cell::<32>(get(2)?, Algorithm::Sha256)?,
            })
        })();
        f(n, parsed)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_escapes() {
        assert_eq!(
            uri(Path::new("/a b/x?y#z%.db")),
            "file:/a%20b/x%3Fy%23z%25.db?mode=ro&immutable=1"
        );
    }
}
