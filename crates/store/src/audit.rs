//! Append-only, hash-chained audit log (chain of custody).
//!
//! Entry `n` stores `hash = BLAKE3(prev_hash || canonical JSON of its
//! fields)`, where `prev_hash` is entry `n-1`'s hash (64 zeros for the
//! first). Altering, removing or reordering any entry breaks the chain at
//! that entry, which [`AuditLog::verify`] reports.

use serde::{Deserialize, Serialize};

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

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("audit entry {seq}: {problem}")]
    Broken { seq: u64, problem: String },
    #[error("audit log: {0}")]
    Store(String),
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn entry_hash(e: &AuditEntry) -> String {
    let canonical = serde_json::json!([
        e.seq, e.time_ms, e.actor, e.role, e.action, e.target, e.case_id, e.from, e.detail
    ]);
    let mut h = blake3::Hasher::new();
    h.update(e.prev_hash.as_bytes());
    h.update(canonical.to_string().as_bytes());
    h.finalize().to_hex().to_string()
}

/// The audit tree.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tree: sled::Tree,
    /// Serialises appends (sequence numbers and the chain).
    lock: std::sync::Arc<std::sync::Mutex<()>>,
}

impl AuditLog {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Self {
            tree,
            lock: Default::default(),
        }
    }

    /// Appends an entry and returns it.
    ///
    /// # Errors
    /// sled failures.
    pub fn append(&self, new: NewAuditEntry) -> Result<AuditEntry, AuditError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let last = self
            .tree
            .last()
            .map_err(|e| AuditError::Store(e.to_string()))?;
        let (seq, prev_hash) = match last {
            Some((_, v)) => {
                let prev: AuditEntry =
                    serde_json::from_slice(&v).map_err(|e| AuditError::Store(e.to_string()))?;
                (prev.seq + 1, prev.hash)
            }
            None => (1, GENESIS.to_string()),
        };
        let mut e = AuditEntry {
            seq,
            time_ms: now_ms(),
            actor: new.actor,
            role: new.role,
            action: new.action,
            target: new.target,
            case_id: new.case_id,
            from: new.from,
            detail: new.detail,
            prev_hash,
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        let bytes = serde_json::to_vec(&e).map_err(|x| AuditError::Store(x.to_string()))?;
        self.tree
            .insert(seq.to_be_bytes(), bytes)
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
                let seq = k.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
                serde_json::from_slice(&v).map_err(|e| AuditError::Broken {
                    seq,
                    problem: format!("undecodable entry: {e}"),
                })
            })
            .collect()
    }

    /// Up to `limit` entries with sequence >= `from_seq`, of one case when
    /// `case_id` is not empty.
    ///
    /// # Errors
    /// sled failures or undecodable entries.
    pub fn page(
        &self,
        from_seq: u64,
        limit: usize,
        case_id: &str,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let mut out = Vec::new();
        for kv in self.tree.range(from_seq.max(1).to_be_bytes()..) {
            let (k, v) = kv.map_err(|e| AuditError::Store(e.to_string()))?;
            let seq = k.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            let e: AuditEntry = serde_json::from_slice(&v).map_err(|e| AuditError::Broken {
                seq,
                problem: format!("undecodable entry: {e}"),
            })?;
            if case_id.is_empty() || e.case_id == case_id {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Checks the whole chain; returns the number of entries.
    ///
    /// # Errors
    /// The first entry that was altered, removed or reordered.
    pub fn verify(&self) -> Result<u64, AuditError> {
        let mut prev = GENESIS.to_string();
        let mut expect_seq = 1u64;
        for kv in self.tree.iter() {
            let (k, v) = kv.map_err(|e| AuditError::Store(e.to_string()))?;
            let key_seq = k.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            let e: AuditEntry = serde_json::from_slice(&v).map_err(|x| AuditError::Broken {
                seq: key_seq,
                problem: format!("undecodable entry: {x}"),
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
            prev = e.hash;
            expect_seq += 1;
        }
        Ok(expect_seq - 1)
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

    #[test]
    fn chain_detects_alteration_and_removal() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = AuditLog::new(db.open_tree("audit").unwrap());
        for i in 0..5 {
            log.append(NewAuditEntry {
                actor: "alice".into(),
                action: "job.submit".into(),
                target: format!("job-{i}"),
                ..Default::default()
            })
            .unwrap();
        }
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
}
