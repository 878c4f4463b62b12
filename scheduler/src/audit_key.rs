//! The audit trail's key and anchor, as the scheduler and its commands see
//! them (the mechanism itself is [`trawl_store::seal`]).
//!
//! The key is 32 random bytes in a file (mode 0600) that must lie outside
//! the data directory: by default `DATA.audit-key` beside it, otherwise
//! `--audit-key FILE`, `TRAWL_AUDIT_KEY` or `audit_key_file` in the TOML
//! configuration. A copy of the data directory therefore never carries the
//! key, and whoever can only edit the data cannot make MACs. An initialised
//! data directory needs its key to start; a scheduler that was never
//! initialised anchors its trail without one (and `trawl scan`'s throw-away
//! state is not anchored at all).

use crate::config::SchedulerConfig;
use crate::error::SchedError;
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use trawl_proto::v1;
use trawl_store::{ANCHOR_FILE, Anchor, AnchorWriter, AuditError, AuditKey, Store, StoreError};

/// Where a data directory's key lives when none is configured:
/// `DATA.audit-key`, beside the data directory.
pub fn default_key_path(data: &Path) -> PathBuf {
    let abs = data
        .canonicalize()
        .or_else(|_| std::path::absolute(data))
        .unwrap_or_else(|_| data.to_path_buf());
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trawl-data".into());
    abs.with_file_name(format!("{name}.audit-key"))
}

/// The key file of `data`: `configured`, else the default beside it.
pub fn key_path(data: &Path, configured: Option<&Path>) -> PathBuf {
    configured
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_key_path(data))
}

/// `path` with its directory resolved (symbolic links followed); the file
/// itself when it exists.
fn resolved(path: &Path) -> Result<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Ok(p);
    }
    let abs = std::path::absolute(path).with_context(|| path.display().to_string())?;
    let dir = abs
        .parent()
        .ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("audit key {}: its directory", path.display()))?;
    Ok(dir.join(abs.file_name().unwrap_or_default()))
}

/// Refuses a key file inside the data directory (where a copy of the data,
/// or whoever can edit it, would have it too).
///
/// # Errors
/// The key lies under `data`, or its directory does not exist.
pub fn check_outside(key: &Path, data: &Path) -> Result<()> {
    let k = resolved(key)?;
    let d = data
        .canonicalize()
        .with_context(|| data.display().to_string())?;
    if k.starts_with(&d) {
        bail!(
            "the audit key {} lies inside the data directory {}: anyone who can copy or edit the data would hold the key and could forge the audit trail; keep it elsewhere (the default is {})",
            key.display(),
            data.display(),
            default_key_path(data).display()
        );
    }
    Ok(())
}

fn key_help(path: &Path) -> String {
    format!(
        "the audit key is looked for at {} (--audit-key FILE, TRAWL_AUDIT_KEY or audit_key_file in the configuration; `trawl-scheduler init` makes it beside the data directory)",
        path.display()
    )
}

/// Opens the scheduler's state database with its audit trail anchored: the
/// key is required for an initialised data directory (or when one is
/// configured or present at the default place), and the store must agree
/// with its anchor.
///
/// # Errors
/// A missing, misplaced or unreadable key; a store that no longer matches
/// its anchor (entries cut off or rewritten: the scheduler refuses to add
/// to a trail it cannot vouch for); the database failing.
pub fn open_store(cfg: &SchedulerConfig) -> Result<Store, SchedError> {
    if cfg.ephemeral {
        return Ok(Store::temporary()?);
    }
    let data = &cfg.data_dir;
    std::fs::create_dir_all(data)
        .map_err(|e| SchedError::FailedPrecondition(format!("{}: {e}", data.display())))?;
    let path = key_path(data, cfg.audit_key_file.as_deref());
    let needed = crate::auth::is_initialised(data) || cfg.audit_key_file.is_some();
    let key = if path.exists() {
        check_outside(&path, data).map_err(|e| SchedError::FailedPrecondition(format!("{e:#}")))?;
        Some(AuditKey::load(&path).map_err(|e| SchedError::FailedPrecondition(e.to_string()))?)
    } else if needed {
        return Err(SchedError::FailedPrecondition(format!(
            "audit key {} not found: the audit trail of {} is MACed with a key kept outside the data directory, and the scheduler will not add to it without one; {} (a data directory initialised before audit keys existed: `trawl-scheduler audit seal --data {}` makes one)",
            path.display(),
            data.display(),
            key_help(&path),
            data.display()
        )));
    } else {
        None
    };
    Store::open_anchored(data, key).map_err(|e| match e {
        StoreError::Audit(AuditError::Key(m)) => {
            SchedError::FailedPrecondition(format!("{m}; {}", key_help(&path)))
        }
        StoreError::Audit(AuditError::Broken { seq, problem }) => {
            SchedError::FailedPrecondition(format!(
                "refusing to start: the audit trail of {} is broken at entry {seq}: {problem}",
                data.display()
            ))
        }
        other => other.into(),
    })
}

/// What [`seal`] did.
#[derive(Debug)]
pub struct Sealed {
    pub key: PathBuf,
    pub key_created: bool,
    pub key_id: String,
    /// Entries written before anchoring began (0: anchored from the start).
    pub before: u64,
}

/// Keys and anchors the audit trail of `data`: creates the key (outside the
/// data directory) unless it exists, checks the existing trail (its chain,
/// and its unkeyed anchor if it has one, which is then kept aside as
/// `audit.anchor.unkeyed-TIME`), anchors the current head, and records an
/// `audit.seal` entry saying which entries came before. For a fresh data
/// directory (no entries) the anchor simply starts at entry 0. The
/// scheduler must be stopped.
///
/// # Errors
/// A keyed anchor already there, a broken trail, a misplaced key, the
/// database locked (scheduler running) or failing.
pub fn seal(data: &Path, configured: Option<&Path>) -> Result<Sealed> {
    std::fs::create_dir_all(data).with_context(|| data.display().to_string())?;
    let kpath = key_path(data, configured);
    check_outside(&kpath, data)?;
    let anchor_path = data.join(ANCHOR_FILE);
    let existing = if anchor_path.exists() {
        let a = Anchor::read(&anchor_path)?;
        if let Some(id) = &a.key_id {
            bail!(
                "the audit trail of {} is already keyed (key {id}) and anchored ({})",
                data.display(),
                anchor_path.display()
            );
        }
        Some(a)
    } else {
        None
    };
    let store = Store::open(data).map_err(|e| {
        anyhow!(
            "{}: {e} (is the scheduler running? stop it first)",
            data.display()
        )
    })?;
    let checked = match &existing {
        Some(_) => store
            .audit()
            .verify_with(&anchor_path, None)
            .map(|v| v.entries),
        None => store.audit().verify(),
    };
    let n = checked.map_err(|e| {
        anyhow!(
            "not sealing the audit trail of {}: {e}; examine it first (`trawl audit verify --data {}`)",
            data.display(),
            data.display()
        )
    })?;
    if let Some(e) = store.audit().entries()?.iter().find(|e| !e.mac.is_empty()) {
        bail!(
            "not sealing the audit trail of {}: entry {} carries a MAC, so the trail was keyed and anchored before and its anchor {} was removed; sealing would vouch for whatever was cut off with it: restore the anchor from a backup, and examine the data directory",
            data.display(),
            e.seq,
            anchor_path.display()
        );
    }
    let (key, key_created) = if kpath.exists() {
        (AuditKey::load(&kpath)?, false)
    } else {
        (AuditKey::create(&kpath)?, true)
    };
    if existing.is_some() {
        let aside = data.join(format!("{ANCHOR_FILE}.unkeyed-{}", trawl_store::now_ms()));
        std::fs::rename(&anchor_path, &aside)
            .with_context(|| format!("moving {} aside", anchor_path.display()))?;
    }
    let (seq, hash) = store.audit().head()?;
    AnchorWriter::create(&anchor_path, Some(key.clone()), seq, &hash)?;
    drop(store);
    if n > 0 {
        // Reopen the database (sled may take a moment to release it).
        let mut tries = 0;
        let store = loop {
            match Store::open_anchored(data, Some(key.clone())) {
                Ok(s) => break s,
                Err(e) if tries < 50 && e.to_string().contains("lock") => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        };
        store.audit().append(trawl_store::NewAuditEntry {
            actor: "trawl-scheduler".into(),
            role: "local".into(),
            action: "audit.seal".into(),
            target: "audit".into(),
            case_id: String::new(),
            from: "data directory".into(),
            detail: format!(
                "keyed (key {}) and anchored from entry {} on; entries 1 to {n} were written before: their hash chain was verified now, they carry no MAC",
                key.id(),
                n + 1
            ),
        })?;
        store.flush()?;
    }
    Ok(Sealed {
        key: kpath,
        key_created,
        key_id: key.id(),
        before: n,
    })
}

/// Checks an audit trail (entries, MACs, anchor) as the VerifyAudit call
/// answers: broken trails are answers, not errors.
///
/// # Errors
/// A key problem or the store failing (not a finding about the trail).
pub fn verify_log(
    log: &trawl_store::AuditLog,
    anchor: Option<&Path>,
    key: Option<&AuditKey>,
) -> Result<v1::VerifyAuditResponse, AuditError> {
    let r = match anchor {
        Some(a) => log.verify_with(a, key),
        None => log.verify().map(|n| trawl_store::Verified {
            entries: n,
            notes: vec!["a throw-away state: the trail is not anchored".into()],
            ..Default::default()
        }),
    };
    match r {
        Ok(v) => Ok(v1::VerifyAuditResponse {
            ok: true,
            entries: v.entries,
            anchored_seq: v.anchored_seq,
            anchored_hash: v.anchored_hash,
            head_hash: v.head_hash,
            keyed: v.keyed,
            key_id: v.key_id,
            notes: v.notes,
            ..Default::default()
        }),
        Err(AuditError::Broken { seq, problem }) => Ok(v1::VerifyAuditResponse {
            ok: false,
            broken_seq: seq,
            problem,
            ..Default::default()
        }),
        Err(AuditError::Unverifiable(problem)) => Ok(v1::VerifyAuditResponse {
            ok: false,
            broken_seq: 0,
            problem,
            ..Default::default()
        }),
        Err(e) => Err(e),
    }
}

/// Checks the audit trail of a stopped scheduler's data directory, with its
/// key (`configured`, else the default place when the file is there). A
/// database that cannot be read is a finding (the trail cannot be shown
/// intact), not an error.
///
/// # Errors
/// No state there, the database locked (scheduler running), a keyed trail
/// without its key.
pub fn verify_data_dir(data: &Path, configured: Option<&Path>) -> Result<v1::VerifyAuditResponse> {
    if !data.join("state.sled").exists() {
        bail!(
            "{}: no scheduler state here (expected {})",
            data.display(),
            data.join("state.sled").display()
        );
    }
    let kpath = key_path(data, configured);
    let key = if kpath.exists() || configured.is_some() {
        Some(AuditKey::load(&kpath)?)
    } else {
        None
    };
    let store = match Store::open(data) {
        Ok(s) => s,
        Err(e) if e.is_corruption() => {
            return Ok(v1::VerifyAuditResponse {
                ok: false,
                broken_seq: 0,
                problem: format!(
                    "the state database cannot be read ({e}): none of its entries can be shown intact"
                ),
                ..Default::default()
            });
        }
        Err(e) => bail!(
            "{}: {e} (is the scheduler still running? stop it, or ask it: --server)",
            data.display()
        ),
    };
    verify_log(store.audit(), Some(&data.join(ANCHOR_FILE)), key.as_ref()).map_err(|e| match e {
        AuditError::Key(m) => anyhow!("{m}; {}", key_help(&kpath)),
        e => anyhow!("{}: {e}", data.display()),
    })
}

/// How a verification reads for people: the text and the exit status
/// (0 intact, 4 broken or not verifiable).
pub fn verify_report(r: &v1::VerifyAuditResponse) -> (u8, String) {
    if r.ok {
        let mut s = format!(
            "audit trail intact: {} entries, hash chain verified{}, anchored head: entry {} ({})",
            r.entries,
            if r.keyed {
                format!(", every MAC verified (key {})", r.key_id)
            } else {
                String::new()
            },
            r.anchored_seq,
            if r.anchored_hash.is_empty() {
                "-"
            } else {
                &r.anchored_hash
            }
        );
        for n in &r.notes {
            s.push_str("\n  note: ");
            s.push_str(n);
        }
        (0, s)
    } else if r.broken_seq > 0 {
        (
            4,
            format!(
                "audit trail BROKEN at entry {}: {}",
                r.broken_seq, r.problem
            ),
        )
    } else {
        (4, format!("audit trail NOT VERIFIED: {}", r.problem))
    }
}
