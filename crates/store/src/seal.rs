//! What ties the audit trail to something its data directory does not hold:
//! a secret key (HMAC-SHA256) kept outside the data directory, and an
//! append-only anchor file recording the chain's head.
//!
//! * Every entry appended with a key carries `mac = HMAC-SHA256(key,
//!   "trawl audit entry v1\n" || hash)`. The hash chains over every earlier
//!   entry, so one MAC vouches for the entry and everything before it; no
//!   one without the key can rewrite an entry (or recompute the chain after
//!   it) and make the MACs agree.
//! * The anchor file (`DIR/audit.anchor`, opened `O_APPEND`, never
//!   rewritten) gets one record `A <seq> <hash> <mac>` after each flush of
//!   the state database that made new entries durable (at most every
//!   200 ms, and at shutdown), with `mac = HMAC-SHA256(key, "trawl audit
//!   anchor v1\nA <seq> <hash>")`, then an `fsync`. The first record, `B`,
//!   is where anchoring began (entry 0 for a trail anchored from its start;
//!   the head at the time for a trail sealed later). Removing entries from
//!   the end of the store, or putting back an older copy of the database,
//!   leaves the anchor naming an entry the store no longer has.
//! * Without a key (a scheduler that was never initialised) the anchor is
//!   written with `-` for every MAC: it still catches a store cut short on
//!   its own, but anyone able to write the data directory can rewrite both.
//!
//! The key file is 32 random bytes as 64 hexadecimal digits (so `openssl dgst
//! -sha256 -mac HMAC -macopt hexkey:$(cat KEY)` recomputes any MAC).

use crate::audit::AuditError;
use hmac::{KeyInit, Mac};
use std::io::Write;
use std::path::{Path, PathBuf};

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// The first line of an anchor file.
const HEADER: &str = "trawl audit anchor v1";
/// The anchor file's name in a data directory.
pub const ANCHOR_FILE: &str = "audit.anchor";

/// The secret key of an audit trail (HMAC-SHA256). Never printed.
#[derive(Clone)]
pub struct AuditKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey(id {})", self.id())
    }
}

impl AuditKey {
    /// A fresh key from the operating system's random source, written to
    /// `path` (which must not exist) with mode 0600.
    ///
    /// # Errors
    /// The file exists or cannot be written, naming it.
    pub fn create(path: &Path) -> Result<Self, AuditError> {
        use rand::RngCore;
        use std::os::unix::fs::OpenOptionsExt;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| AuditError::Key(format!("{}: {e}", path.display())))?;
        f.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| AuditError::Key(format!("{}: {e}", path.display())))?;
        if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(Self { bytes })
    }

    /// Reads a key file. It must be readable by its owner only.
    ///
    /// # Errors
    /// Missing, readable by others, or not 64 hexadecimal digits, naming the
    /// file.
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        use std::os::unix::fs::PermissionsExt;
        let md = std::fs::metadata(path)
            .map_err(|e| AuditError::Key(format!("audit key {}: {e}", path.display())))?;
        let mode = md.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AuditError::Key(format!(
                "audit key {}: mode {mode:04o} lets other users read it (chmod 600 {})",
                path.display(),
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuditError::Key(format!("audit key {}: {e}", path.display())))?;
        let raw = hex::decode(text.trim()).ok().filter(|b| b.len() == 32);
        let Some(raw) = raw else {
            return Err(AuditError::Key(format!(
                "audit key {}: not a key (expected 64 hexadecimal digits)",
                path.display()
            )));
        };
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&raw);
        Ok(Self { bytes })
    }

    /// A key from its bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// A short public identifier of the key (the first 16 hex digits of
    /// HMAC-SHA256(key, "trawl audit key id")), to tell keys apart in
    /// messages without revealing them.
    pub fn id(&self) -> String {
        self.mac(b"trawl audit key id")[..16].to_string()
    }

    fn mac(&self, msg: &[u8]) -> String {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.bytes)
            .expect("HMAC takes keys of any length");
        m.update(msg);
        hex::encode(m.finalize().into_bytes())
    }

    /// The MAC of an entry whose chain hash is `hash`.
    pub fn entry_mac(&self, hash: &str) -> String {
        self.mac(format!("trawl audit entry v1\n{hash}").as_bytes())
    }

    fn record_mac(&self, kind: char, seq: u64, hash: &str) -> String {
        self.mac(format!("trawl audit anchor v1\n{kind} {seq} {hash}").as_bytes())
    }
}

/// Compares two hex MACs in constant time.
pub(crate) fn same_mac(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// One record of an anchor file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorRecord {
    /// 1-based line number in the file.
    pub line: usize,
    /// `B` (where anchoring began) or `A` (a head).
    pub kind: char,
    pub seq: u64,
    pub hash: String,
    /// `-` when the trail is not keyed.
    pub mac: String,
}

/// An anchor file as read back.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub path: PathBuf,
    /// The id of the key the anchor was made with (`None`: not keyed).
    pub key_id: Option<String>,
    /// The `B` record then every `A` record, in file order.
    pub records: Vec<AnchorRecord>,
    /// The file ended in the middle of a line (ignored: a write in
    /// progress, or cut by a power loss).
    pub torn_tail: bool,
}

impl Anchor {
    /// Reads and parses an anchor file (MACs are checked by the verifier).
    ///
    /// # Errors
    /// Unreadable file (`Store`), or a line that is not a record
    /// (`Unverifiable`, naming the line).
    pub fn read(path: &Path) -> Result<Self, AuditError> {
        let text = std::fs::read(path)
            .map_err(|e| AuditError::Store(format!("audit anchor {}: {e}", path.display())))?;
        let text = String::from_utf8_lossy(&text);
        let bad = |line: usize, what: &str| {
            AuditError::Unverifiable(format!(
                "audit anchor {} line {line}: {what} (the file was edited, or a write was cut short by a power loss)",
                path.display()
            ))
        };
        let torn_tail = !text.is_empty() && !text.ends_with('\n');
        let mut lines: Vec<&str> = text.split('\n').collect();
        // The piece after the last newline: empty, or a torn write.
        lines.pop();
        let mut it = lines.iter().enumerate();
        let key_id = match it.next() {
            None => return Err(bad(1, "empty anchor")),
            Some((_, h)) => {
                let rest = h
                    .strip_prefix(HEADER)
                    .ok_or_else(|| bad(1, "not an anchor header"))?;
                match rest.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["keyed", id] => Some(id.to_string()),
                    ["unkeyed"] => None,
                    _ => return Err(bad(1, "not an anchor header")),
                }
            }
        };
        let mut records = Vec::new();
        for (i, l) in it {
            let line = i + 1;
            let parts: Vec<&str> = l.split(' ').collect();
            let [kind, seq, hash, mac] = parts.as_slice() else {
                return Err(bad(line, "not a record"));
            };
            let kind = match *kind {
                "A" => 'A',
                "B" => 'B',
                _ => return Err(bad(line, "not a record")),
            };
            let seq: u64 = seq.parse().map_err(|_| bad(line, "not a record"))?;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(line, "not a record"));
            }
            records.push(AnchorRecord {
                line,
                kind,
                seq,
                hash: hash.to_string(),
                mac: mac.to_string(),
            });
        }
        if records.first().map(|r| r.kind) != Some('B') {
            return Err(bad(2, "the first record is not where anchoring began (B)"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            key_id,
            records,
            torn_tail,
        })
    }

    /// Where anchoring began.
    pub fn begin(&self) -> &AnchorRecord {
        &self.records[0]
    }

    /// The last record (the anchored head).
    pub fn last(&self) -> &AnchorRecord {
        self.records.last().expect("read() requires a B record")
    }

    /// Checks every record's MAC with `key` (keyed anchors) and that the
    /// sequence numbers only go up.
    ///
    /// # Errors
    /// The first record that fails, naming its line.
    pub fn check(&self, key: Option<&AuditKey>) -> Result<(), AuditError> {
        let mut prev: Option<&AnchorRecord> = None;
        for r in &self.records {
            if r.kind == 'B' && r.line != self.records[0].line {
                return Err(AuditError::Broken {
                    seq: r.seq,
                    problem: format!(
                        "audit anchor {} line {}: a second beginning record",
                        self.path.display(),
                        r.line
                    ),
                });
            }
            if let Some(p) = prev
                && r.seq <= p.seq
            {
                return Err(AuditError::Broken {
                    seq: r.seq,
                    problem: format!(
                        "audit anchor {} line {}: entry {} anchored after entry {} (records reordered or forged)",
                        self.path.display(),
                        r.line,
                        r.seq,
                        p.seq
                    ),
                });
            }
            match (key, &self.key_id) {
                (Some(k), Some(_)) => {
                    if !same_mac(&r.mac, &k.record_mac(r.kind, r.seq, &r.hash)) {
                        return Err(AuditError::Broken {
                            seq: r.seq,
                            problem: format!(
                                "audit anchor {} line {}: its MAC does not verify with key {} (a forged record, or not this trail's key{})",
                                self.path.display(),
                                r.line,
                                k.id(),
                                self.key_id
                                    .as_deref()
                                    .filter(|id| *id != k.id())
                                    .map(|id| format!(": the anchor was made with key {id}"))
                                    .unwrap_or_default()
                            ),
                        });
                    }
                }
                (None, Some(id)) => {
                    return Err(AuditError::Key(format!(
                        "the audit trail is keyed (anchor {} names key {id}): its key is needed to verify it",
                        self.path.display()
                    )));
                }
                (_, None) => {
                    if r.mac != "-" {
                        return Err(AuditError::Broken {
                            seq: r.seq,
                            problem: format!(
                                "audit anchor {} line {}: a MAC in an anchor whose header says it is not keyed (the header was edited)",
                                self.path.display(),
                                r.line
                            ),
                        });
                    }
                }
            }
            prev = Some(r);
        }
        Ok(())
    }
}

/// Appends records to an anchor file.
#[derive(Debug)]
pub struct AnchorWriter {
    file: std::fs::File,
    path: PathBuf,
    key: Option<AuditKey>,
    /// The last anchored sequence number.
    pub last_seq: u64,
}

impl AnchorWriter {
    /// Creates an anchor file (which must not exist): the header and the
    /// `B` record (`seq`, `hash`: the head where anchoring begins).
    ///
    /// # Errors
    /// The file exists or cannot be written.
    pub fn create(
        path: &Path,
        key: Option<AuditKey>,
        seq: u64,
        hash: &str,
    ) -> Result<Self, AuditError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| AuditError::Store(format!("audit anchor {}: {e}", path.display())))?;
        let header = match &key {
            Some(k) => format!("{HEADER} keyed {}\n", k.id()),
            None => format!("{HEADER} unkeyed\n"),
        };
        let mut w = Self {
            file,
            path: path.to_path_buf(),
            key,
            last_seq: seq,
        };
        w.write(&header)?;
        w.record('B', seq, hash)?;
        if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(w)
    }

    /// Opens an existing anchor file to append to it (`last_seq`: its last
    /// record). A line cut short by a crash is ended first.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path, key: Option<AuditKey>, anchor: &Anchor) -> Result<Self, AuditError> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| AuditError::Store(format!("audit anchor {}: {e}", path.display())))?;
        let mut w = Self {
            file,
            path: path.to_path_buf(),
            key,
            last_seq: anchor.last().seq,
        };
        if anchor.torn_tail {
            w.write("\n")?;
        }
        Ok(w)
    }

    fn write(&mut self, text: &str) -> Result<(), AuditError> {
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| AuditError::Store(format!("audit anchor {}: {e}", self.path.display())))
    }

    fn record(&mut self, kind: char, seq: u64, hash: &str) -> Result<(), AuditError> {
        let mac = self
            .key
            .as_ref()
            .map(|k| k.record_mac(kind, seq, hash))
            .unwrap_or_else(|| "-".into());
        // One write(2) per record: O_APPEND keeps records whole.
        self.write(&format!("{kind} {seq} {hash} {mac}\n"))?;
        self.last_seq = seq;
        Ok(())
    }

    /// Anchors the head `seq`/`hash` (which must already be durable in the
    /// store), unless it is anchored already.
    ///
    /// # Errors
    /// I/O failures.
    pub fn anchor(&mut self, seq: u64, hash: &str) -> Result<(), AuditError> {
        if seq <= self.last_seq {
            return Ok(());
        }
        self.record('A', seq, hash)
    }

    /// The key entries are MACed with.
    pub fn key(&self) -> Option<&AuditKey> {
        self.key.as_ref()
    }
}
