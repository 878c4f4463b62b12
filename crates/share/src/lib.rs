//! Sharing exports (issue 22): a STIX 2.1 bundle ([`stix_bundle`]), a MISP
//! event in MISP's JSON format ([`misp_event`]) and a MISP feed directory
//! ([`misp_feed`]: `manifest.json`, `hashes.csv`, one `<uuid>.json` per
//! event) from a neutral [`ShareSet`].
//!
//! **TLP.** The export has one TLP level; every written object carries it
//! (STIX: OASIS's TLP 2.0 marking definition in `object_marking_refs`;
//! MISP: the `tlp` taxonomy tag of the event). An item whose own marking is
//! stricter than the export's level is withheld, never written, and
//! counted ([`Written::withheld`]). Card-number hashes cannot be given:
//! [`ItemKind`] has no such kind.
//!
//! **Determinism.** The output depends on the set only: the export time is
//! passed in ([`ShareSet::created_ms`]), ids are derived from the content
//! (cyber-observables: STIX's UUIDv5; everything else: SHA-256 of the
//! identity, kind, value and object type in the version-4 layout), items
//! are written in (kind, value) order and JSON keys in sorted order.
//!
//! **Input checks.** The writers refuse, with a [`ShareError`] naming the
//! item, what neither format can carry: an empty value, a digest of the
//! wrong length, an IP address that does not parse, an e-mail address
//! without one `@`, an instant before 1970 or after 9999, a last-seen
//! before the first-seen, the same (kind, value) twice, a URL without a
//! scheme. They never panic. Values are written as found but for three
//! canonical forms: digests in lower case, IP addresses in their standard
//! text, URLs as RFC 3986 URIs (what a URI may not hold percent-encoded:
//! STIX validators check `url` values as URIs).

mod feed;
pub mod ids;
mod json;
mod misp;
mod model;
mod stix;

pub use feed::{FeedWritten, misp_feed};
pub use misp::misp_event;
pub use model::{Identity, Item, ItemKind, ShareSet, Tlp, YaraSource};
pub use stix::{indicator_pattern, stix_bundle};

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("identity uuid {0:?} is not a UUID (8-4-4-4-12 hex digits)")]
    IdentityUuid(String),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("item {index} ({kind} {value}): {reason}")]
    Item {
        index: usize,
        kind: ItemKind,
        value: String,
        reason: String,
    },
    #[error("YARA source {index} ({name}): {reason}")]
    Yara {
        index: usize,
        name: String,
        reason: &'static str,
    },
    #[error("{what}: {ms} ms is outside 1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999Z")]
    Time { what: String, ms: i64 },
    #[error("items {first} and {second} are both {kind} {value}")]
    Duplicate {
        first: usize,
        second: usize,
        kind: ItemKind,
        value: String,
    },
    #[error("feed: sets {first} and {second} make the same event {uuid} (same identity and title)")]
    DuplicateEvent {
        first: usize,
        second: usize,
        uuid: String,
    },
    #[error("feed directory {}: {reason}", path.display())]
    FeedDir { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a writer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file's bytes (pretty JSON, final newline).
    pub bytes: Vec<u8>,
    /// STIX: objects in the bundle; MISP: attributes of the event.
    pub objects: usize,
    /// Items not written: marked stricter than the export's TLP.
    pub withheld: usize,
    /// Items the format has no object for (STIX: bitcoin, IBAN, phone and
    /// YARA rule names, and domains or e-mail addresses outside the forms
    /// STIX validators accept; they go to MISP only).
    pub not_in_format: usize,
}

/// A value for error messages: quoted, at most 80 characters.
fn brief(v: &str) -> String {
    let mut s: String = v.chars().take(80).collect();
    if s.len() < v.len() {
        s.push('…');
    }
    format!("{s:?}")
}

/// An item that passed the checks, its value in the form written.
#[derive(Debug, Clone)]
pub(crate) struct Ready {
    pub kind: ItemKind,
    pub value: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub sightings: u64,
    pub jobs: u32,
}

/// A set that passed the checks, its shared items in (kind, value) order.
pub(crate) struct Prepared<'a> {
    pub identity_uuid: String,
    pub identity_name: &'a str,
    pub tlp: Tlp,
    pub title: &'a str,
    pub created_ms: i64,
    pub items: Vec<Ready>,
    pub yara: &'a [YaraSource],
    pub withheld: usize,
}

/// The value as written, or why it cannot be.
fn checked_value(kind: ItemKind, v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err("empty value".into());
    }
    let digest = |len: usize| {
        if v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(v.to_ascii_lowercase())
        } else {
            Err(format!("not {len} hex digits"))
        }
    };
    match kind {
        ItemKind::Md5 => digest(32),
        ItemKind::Sha1 => digest(40),
        ItemKind::Sha256 => digest(64),
        ItemKind::Ipv4 => v
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| "not an IPv4 address".into()),
        ItemKind::Ipv6 => v
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| "not an IPv6 address".into()),
        ItemKind::Email => match v.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(v.to_string())
            }
            _ => Err("not an e-mail address (one @ between non-empty parts)".into()),
        },
        ItemKind::Url => uri(v),
        ItemKind::Domain
        | ItemKind::Bitcoin
        | ItemKind::Iban
        | ItemKind::Phone
        | ItemKind::YaraRule => Ok(v.to_string()),
    }
}

/// An absolute URL as an RFC 3986 URI, which both formats' tools demand
/// (`url` values are checked as `uri`): every character a URI may not hold
/// where it stands (blanks, quotes, backslashes, `[`/`]` outside the host,
/// a second `#`, non-ASCII: UTF-8 bytes) percent-encoded, a `%` that does
/// not start an escape too. The scheme is required.
fn uri(v: &str) -> Result<String, String> {
    let scheme_len = v.find(':').filter(|&n| {
        let s = v.as_bytes();
        n > 0
            && s[0].is_ascii_alphabetic()
            && s[..n]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    });
    let Some(n) = scheme_len else {
        return Err("not an absolute URL (no scheme)".into());
    };
    let b = v.as_bytes();
    let mut out = String::with_capacity(v.len() + 8);
    out.push_str(&v[..=n]);
    let rest = &b[n + 1..];
    // The authority, when there is one, ends at the first `/`, `?` or `#`.
    let auth_end = if rest.starts_with(b"//") {
        2 + rest[2..]
            .iter()
            .position(|c| matches!(c, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len() - 2)
    } else {
        0
    };
    let mut fragment = false;
    for (i, &c) in rest.iter().enumerate() {
        let escape = c == b'%'
            && rest.len() > i + 2
            && rest[i + 1].is_ascii_hexdigit()
            && rest[i + 2].is_ascii_hexdigit();
        let allowed = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            )
            || escape
            || (i < auth_end && matches!(c, b'/' | b'[' | b']'))
            || (i >= auth_end && matches!(c, b'/' | b'?'))
            || (i >= auth_end && c == b'#' && !fragment);
        if c == b'#' && i >= auth_end {
            fragment = true;
        }
        if allowed {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    Ok(out)
}

fn check_time(what: impl FnOnce() -> String, ms: i64) -> Result<(), ShareError> {
    if (0..=ids::MAX_MS).contains(&ms) {
        Ok(())
    } else {
        Err(ShareError::Time { what: what(), ms })
    }
}

/// Checks a set and applies the TLP rule.
pub(crate) fn prepare(set: &ShareSet) -> Result<Prepared<'_>, ShareError> {
    let identity_uuid = ids::parse_uuid(&set.identity.uuid)
        .ok_or_else(|| ShareError::IdentityUuid(set.identity.uuid.clone()))?;
    if set.identity.name.trim().is_empty() {
        return Err(ShareError::Empty("the identity's name"));
    }
    if set.title.trim().is_empty() {
        return Err(ShareError::Empty("the title"));
    }
    check_time(|| "the export time".into(), set.created_ms)?;
    let mut withheld = 0;
    let mut kept: Vec<(usize, Ready)> = Vec::with_capacity(set.items.len());
    for (index, it) in set.items.iter().enumerate() {
        if it.marking > set.tlp {
            withheld += 1;
            continue;
        }
        let fail = |reason: String| ShareError::Item {
            index,
            kind: it.kind,
            value: brief(&it.value),
            reason,
        };
        let value = checked_value(it.kind, &it.value).map_err(fail)?;
        let what = |end: &str| format!("item {index} ({} {}) {end}", it.kind, brief(&it.value));
        check_time(|| what("first seen"), it.first_ms)?;
        check_time(|| what("last seen"), it.last_ms)?;
        if it.last_ms < it.first_ms {
            return Err(fail(format!(
                "last seen ({} ms) before first seen ({} ms)",
                it.last_ms, it.first_ms
            )));
        }
        kept.push((
            index,
            Ready {
                kind: it.kind,
                value,
                first_ms: it.first_ms,
                last_ms: it.last_ms,
                sightings: it.sightings,
                jobs: it.jobs,
            },
        ));
    }
    kept.sort_by(|(ia, a), (ib, b)| (a.kind, &a.value, ia).cmp(&(b.kind, &b.value, ib)));
    for w in kept.windows(2) {
        let ((first, a), (second, b)) = (&w[0], &w[1]);
        if a.kind == b.kind && a.value == b.value {
            return Err(ShareError::Duplicate {
                first: *first,
                second: *second,
                kind: a.kind,
                value: brief(&a.value),
            });
        }
    }
    for (index, y) in set.yara.iter().enumerate() {
        let reason = if y.name.trim().is_empty() {
            "empty name"
        } else if y.text.trim().is_empty() {
            "empty rule text"
        } else {
            continue;
        };
        return Err(ShareError::Yara {
            index,
            name: brief(&y.name),
            reason,
        });
    }
    Ok(Prepared {
        identity_uuid,
        identity_name: &set.identity.name,
        tlp: set.tlp,
        title: &set.title,
        created_ms: set.created_ms,
        items: kept.into_iter().map(|(_, r)| r).collect(),
        yara: &set.yara,
        withheld,
    })
}

#[cfg(test)]
mod tests;
