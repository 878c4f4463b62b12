//! Append-only, hash-chained audit log (chain of custody).
//!
//! Entry `n` stores `hash = BLAKE3(prev_hash || canonical JSON of its
//! fields)`, where `prev_hash` is entry `n-1`'s hash (64 zeros for the
//! first). Altering, removing or reordering any entry breaks the chain at
//! that entry. With a key, every entry also carries an HMAC of its hash and
//! the head is anchored outside the store ([`crate::seal`]), so cutting
//! entries off the end, or rewriting the chain, is caught too:
//! [`AuditLog::verify_with`] reports the first bad entry.
//!
//! Every field is capped in length ([`MAX_FIELD_BYTES`],
//! [`MAX_DETAIL_BYTES`]): a longer value is cut at a character boundary and
//! ends with `…[cut: N bytes]` (`N` its original length), so no caller can
//! make one entry large.

use crate::seal::{Anchor, AuditKey, same_mac};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Longest stored actor, role, action, target, case or peer, in bytes.
pub const MAX_FIELD_BYTES: usize = 1024;
/// Longest stored detail, in bytes.
pub const MAX_DETAIL_BYTES: usize = 8192;

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub time_ms: i64,
    /// Who: user name (or worker id).
    pub actor: String,
    pub role: String,
    /// What: e.g. `job.submit`, `evidence.upload`, `results.get`, `denied`.
    pub action: String,
    /// On what: a job, task, evidence digest, rule set, user.
    pub target: String,
    pub case_id: String,
    /// From where: the peer address.
    pub from: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    /// HMAC-SHA256 of `hash` with the trail's key (empty: not keyed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

/// The fields a caller supplies; sequence, time and hashes are filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub case_id: String,
    pub from: String,
    pub detail: String,
}

/// Why a trail is not shown intact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// This entry (the first bad one) was altered, removed, reordered,
    /// forged or cannot be read.
    #[error("audit entry {seq}: {problem}")]
    Broken { seq: u64, problem: String },
    /// The trail cannot be shown intact, but no single entry is to blame
    /// (no anchor, an unreadable anchor).
    #[error("audit trail: {0}")]
    Unverifiable(String),
    /// A key is missing, unreadable or misplaced (not a finding about the
    /// trail itself).
    #[error("{0}")]
    Key(String),
    #[error("audit log: {0}")]
    Store(String),
}

/// What a verification established.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Entries in the trail.
    pub entries: u64,
    /// The hash of the last entry (zeros: none).
    pub head_hash: String,
    /// The last anchored entry and its hash (0: none anchored yet).
    pub anchored_seq: u64,
    pub anchored_hash: String,
    /// Entries MACed with the trail's key.
    pub keyed: bool,
    /// The key's public id (empty: not keyed).
    pub key_id: String,
    /// Limits of what was shown (entries before anchoring, an unkeyed
    /// trail, entries written after the last anchor record).
    pub notes: Vec<String>,
}

pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn entry_hash(e: &AuditEntry) -> String {
    let canonical = serde_json::json!([
        e.seq, e.time_ms, e.actor, e.role, e.action, e.target, e.case_id, e.from, e.detail
    ]);
    let mut h = blake3::Hasher::new();
    h.update(e.prev_hash.as_bytes());
    h.update(canonical.to_string().as_bytes());
    h.finalize().to_hex().to_string()
}

/// `s` cut to at most `max` bytes (plus the marker) at a character
/// boundary, ending with `…[cut: N bytes]` when it was longer.
pub fn cap_field(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut: {} bytes]", &s[..end], s.len())
}

fn seq_of(k: &[u8]) -> u64 {
    k.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// The audit tree.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tree: sled::Tree,
    /// Serialises appends (sequence numbers and the chain).
    lock: std::sync::Arc<std::sync::Mutex<()>>,
    /// MACs new entries (a keyed trail).
    key: Option<AuditKey>,
}

impl AuditLog {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Self {
            tree,
            lock: Default::default(),
            key: None,
        }
    }

    pub(crate) fn set_key(&mut self, key: Option<AuditKey>) {
        self.key = key;
    }

    /// The key new entries are MACed with.
    pub fn key(&self) -> Option<&AuditKey> {
        self.key.as_ref()
    }

    /// The last entry's sequence number and hash (0 and zeros: empty).
    ///
    /// # Errors
    /// sled failures, an undecodable last entry.
    pub fn head(&self) -> Result<(u64, String), AuditError> {
        match self
            .tree
            .last()
            .map_err(|e| AuditError::Store(e.to_string()))?
        {
            Some((k, v)) => {
                let e: AuditEntry = serde_json::from_slice(&v).map_err(|x| AuditError::Broken {
                    seq: seq_of(&k),
                    problem: format!("undecodable entry: {x}"),
                })?;
                Ok((e.seq, e.hash))
            }
            None => Ok((0, GENESIS.to_string())),
        }
    }

    /// Appends an entry (every field capped in length) and returns it.
    ///
    /// # Errors
    /// sled failures.
    pub fn append(&self, new: NewAuditEntry) -> Result<AuditEntry, AuditError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let (last, prev_hash) = self.head()?;
        let mut e = AuditEntry {
            seq: last + 1,
            time_ms: now_ms(),
            actor: cap_field(new.actor, MAX_FIELD_BYTES),
            role: cap_field(new.role, MAX_FIELD_BYTES),
            action: cap_field(new.action, MAX_FIELD_BYTES),
            target: cap_field(new.target, MAX_FIELD_BYTES),
            case_id: cap_field(new.case_id, MAX_FIELD_BYTES),
            from: cap_field(new.from, MAX_FIELD_BYTES),
            detail: cap_field(new.detail, MAX_DETAIL_BYTES),
            prev_hash,
            hash: String::new(),
            mac: String::new(),
        };
        e.hash = entry_hash(&e);
        if let Some(k) = &self.key {
            e.mac = k.entry_mac(&e.hash);
        }
        let bytes = serde_json::to_vec(&e).map_err(|x| AuditError::Store(x.to_string()))?;
        self.tree
            .insert(e.seq.to_be_bytes(), bytes)
            .map_err(|x| AuditError::Store(x.to_string()))?;
        Ok(e)
    }

    /// Every entry, in order.
    ///
    /// # Errors
    /// sled failures or undecodable entries.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, AuditError> {
        self.tree
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(|e| AuditError::Store(e.to_string()))?;
                serde_json::from_slice(&v).map_err(|e| AuditError::Broken {
                    seq: seq_of(&k),
                    problem: format!("undecodable entry: {e}"),
                })
            })
            .collect()
    }

    /// Up to `limit` entries with sequence >= `from_seq`, of one case when
    /// `case_id` is not empty, stopping early (after at least one) once the
    /// stored entries add up to `max_bytes`; and whether more may follow.
    ///
    /// # Errors
    /// sled failures or undecodable entries.
    pub fn page(
        &self,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
        case_id: &str,
    ) -> Result<(Vec<AuditEntry>, bool), AuditError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for kv in self.tree.range(from_seq.max(1).to_be_bytes()..) {
            let (k, v) = kv.map_err(|e| AuditError::Store(e.to_string()))?;
            let e: AuditEntry = serde_json::from_slice(&v).map_err(|e| AuditError::Broken {
                seq: seq_of(&k),
                problem: format!("undecodable entry: {e}"),
            })?;
            if case_id.is_empty() || e.case_id == case_id {
                if !out.is_empty() && bytes + v.len() > max_bytes {
                    return Ok((out, true));
                }
                bytes += v.len();
                out.push(e);
                if out.len() >= limit {
                    return Ok((out, true));
                }
            }
        }
        Ok((out, false))
    }

    /// Checks the hash chain alone; returns the number of entries. Says
    /// nothing about entries cut off the end: see [`AuditLog::verify_with`].
    ///
    /// # Errors
    /// The first entry that was altered, removed or reordered.
    pub fn verify(&self) -> Result<u64, AuditError> {
        self.walk(None, None, 0).map(|v| v.entries)
    }

    /// Checks the whole trail against its anchor file: the hash chain, each
    /// entry's MAC (with `key`, for entries after anchoring began), that the
    /// entries the anchor names are there with the hashes it recorded (none
    /// cut off the end, none rewritten), and that the anchor's own records
    /// are genuine.
    ///
    /// # Errors
    /// `Broken` naming the first bad entry (altered, removed, reordered,
    /// forged, unreadable, or missing from the end); `Unverifiable` without
    /// an anchor; `Key` when the trail is keyed and `key` is `None`.
    pub fn verify_with(
        &self,
        anchor_path: &Path,
        key: Option<&AuditKey>,
    ) -> Result<Verified, AuditError> {
        if !anchor_path.exists() {
            return Err(AuditError::Unverifiable(format!(
                "no anchor {}: nothing outside the store records where the trail ends, so entries cut off its end would go unnoticed (a data directory from before anchoring: check it, then `trawl-scheduler audit seal`; otherwise the anchor was deleted)",
                anchor_path.display()
            )));
        }
        let anchor = Anchor::read(anchor_path)?;
        anchor.check(key)?;
        let key = if anchor.key_id.is_some() { key } else { None };
        let mut v = self.walk(Some(&anchor), key, anchor.begin().seq)?;
        let last = anchor.last();
        v.anchored_seq = last.seq;
        v.anchored_hash = last.hash.clone();
        if key.is_none() {
            v.notes.push(
                "not keyed (the scheduler was never initialised): the chain and its anchor carry no MAC, so whoever can write the data directory could rewrite both consistently".into(),
            );
        }
        let begin = anchor.begin().seq;
        if begin > 0 {
            v.notes.push(format!(
                "entries 1 to {begin} were written before the trail was anchored: their hash chain is verified, but they carry no MAC"
            ));
        }
        if v.entries > last.seq {
            v.notes.push(format!(
                "the last {} entries were written after the last anchor record (entry {}): the scheduler anchors at most 200 ms after writing, so it is running or stopped without a clean shutdown",
                v.entries - last.seq,
                last.seq
            ));
        }
        if anchor.torn_tail {
            v.notes.push(format!(
                "the anchor's last line is incomplete and was ignored (a write in progress, or cut short by a power loss): {}",
                anchor_path.display()
            ));
        }
        Ok(v)
    }

    /// Walks the chain from entry 1. With an anchor: each anchored entry
    /// must carry the anchored hash and the trail must reach the last
    /// anchored entry; with a key: every entry after `begin` must carry a
    /// valid MAC (and any earlier MAC must be valid too).
    fn walk(
        &self,
        anchor: Option<&Anchor>,
        key: Option<&AuditKey>,
        begin: u64,
    ) -> Result<Verified, AuditError> {
        let anchored: std::collections::HashMap<u64, &crate::seal::AnchorRecord> = anchor
            .map(|a| a.records.iter().map(|r| (r.seq, r)).collect())
            .unwrap_or_default();
        let mut prev = GENESIS.to_string();
        let mut expect_seq = 1u64;
        for kv in self.tree.iter() {
            let (k, v) = kv.map_err(|e| AuditError::Broken {
                seq: expect_seq,
                problem: format!("the state database cannot read this entry: {e}"),
            })?;
            let key_seq = seq_of(&k);
            let e: AuditEntry = serde_json::from_slice(&v).map_err(|x| AuditError::Broken {
                seq: key_seq,
                problem: format!("undecodable entry (corrupted or edited): {x}"),
            })?;
            if key_seq != expect_seq || e.seq != expect_seq {
                return Err(AuditError::Broken {
                    seq: expect_seq,
                    problem: format!(
                        "entry missing or out of order (found sequence {} under key {key_seq})",
                        e.seq
                    ),
                });
            }
            if e.prev_hash != prev {
                return Err(AuditError::Broken {
                    seq: e.seq,
                    problem:
                        "does not chain to the previous entry (an entry was removed or altered)"
                            .into(),
                });
            }
            if entry_hash(&e) != e.hash {
                return Err(AuditError::Broken {
                    seq: e.seq,
                    problem: "content does not match its hash (the entry was altered)".into(),
                });
            }
            if let Some(k) = key {
                if e.mac.is_empty() && e.seq > begin {
                    return Err(AuditError::Broken {
                        seq: e.seq,
                        problem: "no MAC, although the trail was keyed before this entry (written or rewritten without the key)".into(),
                    });
                }
                if !e.mac.is_empty() && !same_mac(&e.mac, &k.entry_mac(&e.hash)) {
                    return Err(AuditError::Broken {
                        seq: e.seq,
                        problem: "its MAC does not verify (the entry, or the chain before it, was rewritten by someone without the key)".into(),
                    });
                }
            } else if anchor.is_some() && !e.mac.is_empty() {
                return Err(AuditError::Broken {
                    seq: e.seq,
                    problem: "carries a MAC, but the anchor says the trail is not keyed (the anchor was replaced)".into(),
                });
            }
            if let Some(r) = anchored.get(&e.seq)
                && r.hash != e.hash
            {
                return Err(AuditError::Broken {
                    seq: e.seq,
                    problem: format!(
                        "differs from the hash the anchor recorded for it (line {}): the entry, or the chain before it, was rewritten",
                        r.line
                    ),
                });
            }
            prev = e.hash;
            expect_seq += 1;
        }
        let n = expect_seq - 1;
        if let Some(a) = anchor {
            let last = a.last();
            if last.seq > n {
                return Err(AuditError::Broken {
                    seq: n + 1,
                    problem: format!(
                        "missing: the trail ends at entry {n} but its anchor ({} line {}) records entry {}: entries {} to {} were cut off the end (or the database was replaced by an older copy)",
                        a.path.display(),
                        last.line,
                        last.seq,
                        n + 1,
                        last.seq
                    ),
                });
            }
        }
        Ok(Verified {
            entries: n,
            head_hash: prev,
            keyed: key.is_some(),
            key_id: key.map(|k| k.id()).unwrap_or_default(),
            ..Default::default()
        })
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(log: &AuditLog, n: usize) {
        for i in 0..n {
            log.append(NewAuditEntry {
                actor: "alice".into(),
                action: "job.submit".into(),
                target: format!("job-{i}"),
                ..Default::default()
            })
            .unwrap();
        }
    }

    #[test]
    fn chain_detects_alteration_and_removal() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = AuditLog::new(db.open_tree("audit").unwrap());
        add(&log, 5);
        assert_eq!(log.verify().unwrap(), 5);
        // Alter entry 3.
        let v = log.tree.get(3u64.to_be_bytes()).unwrap().unwrap();
        let mut e: AuditEntry = serde_json::from_slice(&v).unwrap();
        e.actor = "mallory".into();
        log.tree
            .insert(3u64.to_be_bytes(), serde_json::to_vec(&e).unwrap())
            .unwrap();
        assert!(matches!(
            log.verify(),
            Err(AuditError::Broken { seq: 3, .. })
        ));
        log.tree.insert(3u64.to_be_bytes(), v).unwrap();
        assert_eq!(log.verify().unwrap(), 5);
        // Remove entry 2.
        log.tree.remove(2u64.to_be_bytes()).unwrap();
        assert!(matches!(
            log.verify(),
            Err(AuditError::Broken { seq: 2, .. })
        ));
    }

    #[test]
    fn pages_stop_at_their_byte_budget() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = AuditLog::new(db.open_tree("audit").unwrap());
        for _ in 0..10 {
            log.append(NewAuditEntry {
                detail: "d".repeat(1000),
                ..Default::default()
            })
            .unwrap();
        }
        let (p, more) = log.page(0, 100, 3000, "").unwrap();
        assert!(more && (1..10).contains(&p.len()), "{}", p.len());
        let (q, more) = log
            .page(p.last().unwrap().seq + 1, 100, usize::MAX, "")
            .unwrap();
        assert!(!more);
        assert_eq!(p.len() + q.len(), 10);
        // A budget smaller than one entry still moves forward.
        assert_eq!(log.page(0, 100, 1, "").unwrap().0.len(), 1);
    }

    #[test]
    fn long_fields_are_cut_with_their_length() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = AuditLog::new(db.open_tree("audit").unwrap());
        let e = log
            .append(NewAuditEntry {
                case_id: "é".repeat(3 << 20),
                detail: "x".repeat(10_000),
                ..Default::default()
            })
            .unwrap();
        assert!(
            e.case_id.len() <= MAX_FIELD_BYTES + 32,
            "{}",
            e.case_id.len()
        );
        assert!(e.case_id.ends_with(&format!("…[cut: {} bytes]", 6 << 20)));
        assert!(e.detail.ends_with("…[cut: 10000 bytes]"));
        assert_eq!(cap_field("short".into(), 8), "short");
        assert_eq!(log.verify().unwrap(), 1);
    }

    #[test]
    fn a_keyed_trail_catches_truncation_rewriting_and_a_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::from_bytes([7; 32]);
        let anchor = dir.path().join(crate::ANCHOR_FILE);
        {
            let s = crate::Store::open_anchored(dir.path(), Some(key.clone())).unwrap();
            add(s.audit(), 6);
            s.flush().unwrap();
            let v = s.audit().verify_with(&anchor, Some(&key)).unwrap();
            assert_eq!((v.entries, v.anchored_seq, v.keyed), (6, 6, true));
            assert_eq!(v.anchored_hash, v.head_hash);
            assert!(v.notes.is_empty(), "{:?}", v.notes);
        }
        let s = crate::Store::open(dir.path()).unwrap();
        // Cut the last two entries: the anchor names entry 6.
        let t = s.audit().tree.clone();
        let e5 = t.remove(5u64.to_be_bytes()).unwrap().unwrap();
        let e6 = t.remove(6u64.to_be_bytes()).unwrap().unwrap();
        match s.audit().verify_with(&anchor, Some(&key)) {
            Err(AuditError::Broken { seq: 5, problem }) => {
                assert!(problem.contains("cut off the end"), "{problem}")
            }
            other => panic!("{other:?}"),
        }
        t.insert(5u64.to_be_bytes(), e5).unwrap();
        t.insert(6u64.to_be_bytes(), e6).unwrap();
        assert!(s.audit().verify_with(&anchor, Some(&key)).is_ok());
        // Rewrite entry 4 and recompute the chain after it (no key: the
        // MAC is left as it was).
        let mut prev = String::new();
        for seq in 4..=6u64 {
            let v = t.get(seq.to_be_bytes()).unwrap().unwrap();
            let mut e: AuditEntry = serde_json::from_slice(&v).unwrap();
            if seq == 4 {
                e.case_id = "Z".into();
            } else {
                e.prev_hash = prev.clone();
            }
            e.hash = entry_hash(&e);
            prev = e.hash.clone();
            t.insert(seq.to_be_bytes(), serde_json::to_vec(&e).unwrap())
                .unwrap();
        }
        match s.audit().verify_with(&anchor, Some(&key)) {
            Err(AuditError::Broken { seq: 4, problem }) => {
                assert!(problem.contains("MAC"), "{problem}")
            }
            other => panic!("{other:?}"),
        }
        // Another key: the anchor's own records do not verify.
        let other = AuditKey::from_bytes([8; 32]);
        assert!(matches!(
            s.audit().verify_with(&anchor, Some(&other)),
            Err(AuditError::Broken { seq: 0, .. })
        ));
        // No key: a keyed trail cannot be verified.
        assert!(matches!(
            s.audit().verify_with(&anchor, None),
            Err(AuditError::Key(_))
        ));
        // No anchor at all.
        assert!(matches!(
            s.audit().verify_with(&dir.path().join("nope"), Some(&key)),
            Err(AuditError::Unverifiable(_))
        ));
    }

    #[test]
    fn opening_refuses_a_store_behind_its_anchor_and_a_missing_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::from_bytes([1; 32]);
        let copy = tempfile::tempdir().unwrap();
        {
            let s = crate::Store::open_anchored(dir.path(), Some(key.clone())).unwrap();
            add(s.audit(), 3);
            s.flush().unwrap();
        }
        // An older copy of the database, the newer anchor kept.
        let cp = |from: &Path, to: &Path| {
            std::process::Command::new("cp")
                .args(["-a", &from.display().to_string(), &to.display().to_string()])
                .status()
                .unwrap();
        };
        cp(&dir.path().join("state.sled"), copy.path());
        {
            let s = crate::Store::open_anchored(dir.path(), Some(key.clone())).unwrap();
            add(s.audit(), 2);
        }
        std::fs::remove_dir_all(dir.path().join("state.sled")).unwrap();
        cp(&copy.path().join("state.sled"), dir.path());
        match crate::Store::open_anchored(dir.path(), Some(key.clone())) {
            Err(crate::StoreError::Audit(AuditError::Broken { seq: 4, problem })) => {
                assert!(problem.contains("records entry 5"), "{problem}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            crate::Store::open_anchored(dir.path(), None),
            Err(crate::StoreError::Audit(AuditError::Key(_)))
        ));
        // Without the anchor, a keyed store with entries does not open.
        std::fs::remove_file(dir.path().join(crate::ANCHOR_FILE)).unwrap();
        assert!(matches!(
            crate::Store::open_anchored(dir.path(), Some(key)),
            Err(crate::StoreError::Audit(AuditError::Key(_)))
        ));
    }

    #[test]
    fn an_unkeyed_store_is_anchored_from_its_head() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = crate::Store::open(dir.path()).unwrap();
            add(s.audit(), 2);
            s.flush().unwrap();
        }
        let anchor = dir.path().join(crate::ANCHOR_FILE);
        let s = crate::Store::open_anchored(dir.path(), None).unwrap();
        add(s.audit(), 1);
        s.flush().unwrap();
        let v = s.audit().verify_with(&anchor, None).unwrap();
        assert_eq!((v.entries, v.anchored_seq, v.keyed), (3, 3, false));
        assert!(v.notes.iter().any(|n| n.contains("entries 1 to 2")));
        assert!(v.notes.iter().any(|n| n.contains("not keyed")));
    }
}
