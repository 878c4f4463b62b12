//! The registry file (`DIR/auth/registry.json`): users (role, cases,
//! BLAKE3 of the token, expiry, revocation) and enrolled worker
//! certificates, changed under an exclusive lock so that
//! `trawl-scheduler user add|revoke` works while the scheduler runs, and
//! the differences between two snapshots that the scheduler audits.

use super::Role;
use super::authenticator::{new_token, token_hash};
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A user of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub cases: Vec<String>,
    /// BLAKE3 (hex) of the bearer token.
    pub token_blake3: String,
    pub created_ms: i64,
    /// 0: never.
    #[serde(default)]
    pub expires_ms: i64,
    /// 0: active.
    #[serde(default)]
    pub revoked_ms: i64,
}

/// An enrolled worker certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerCertRecord {
    pub name: String,
    /// BLAKE3 (hex) of the certificate's DER.
    pub fingerprint: String,
    pub created_ms: i64,
    #[serde(default)]
    pub revoked_ms: i64,
}

/// The registry file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    #[serde(default)]
    pub users: Vec<UserRecord>,
    #[serde(default)]
    pub workers: Vec<WorkerCertRecord>,
}

/// Files of an initialised data directory.
#[derive(Debug, Clone)]
pub struct AuthPaths {
    pub dir: PathBuf,
    pub enroll: PathBuf,
}

impl AuthPaths {
    pub fn new(data: &Path) -> Self {
        Self {
            dir: data.join("auth"),
            enroll: data.join("enroll"),
        }
    }
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_pem(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn registry(&self) -> PathBuf {
        self.dir.join("registry.json")
    }
    pub(super) fn lock(&self) -> PathBuf {
        self.dir.join("registry.lock")
    }
}

/// Whether `data` was initialised (then TLS and tokens are required).
pub fn is_initialised(data: &Path) -> bool {
    let p = AuthPaths::new(data);
    p.registry().exists() || p.server_pem().exists() || p.ca_pem().exists()
}
pub(super) fn now_ms() -> i64 {
    trawl_store::now_ms()
}
/// Writes `data` to `path` atomically (temporary file, fsync, rename), with
/// mode 0600 when `secret`.
pub(super) fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .with_context(|| tmp.display().to_string())?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())
}

pub(super) fn mkdir_private(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .with_context(|| p.display().to_string())
}

pub(super) fn valid_name(kind: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
        || name.starts_with('.')
    {
        bail!("invalid {kind} name {name:?}: 1-64 characters of A-Z a-z 0-9 - _ . @");
    }
    Ok(())
}
pub(super) fn read_registry(paths: &AuthPaths) -> Result<Registry> {
    let p = paths.registry();
    let text = std::fs::read(&p).with_context(|| p.display().to_string())?;
    serde_json::from_slice(&text).with_context(|| format!("{}: invalid registry", p.display()))
}

pub(super) fn write_registry(paths: &AuthPaths, r: &Registry) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(r)?;
    text.push(b'\n');
    write_file(&paths.registry(), &text, true)
}

/// Changes the registry under an exclusive lock.
pub(super) fn update_registry<T>(
    data: &Path,
    f: impl FnOnce(&mut Registry) -> Result<T>,
) -> Result<T> {
    let paths = AuthPaths::new(data);
    if !paths.dir.exists() {
        bail!(
            "{} is not initialised: run `trawl-scheduler init --data {}` first",
            data.display(),
            data.display()
        );
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.lock())
        .with_context(|| paths.lock().display().to_string())?;
    lock.lock()
        .with_context(|| paths.lock().display().to_string())?;
    let mut r = if paths.registry().exists() {
        read_registry(&paths)?
    } else {
        Registry::default()
    };
    let out = f(&mut r)?;
    write_registry(&paths, &r)?;
    Ok(out)
}

/// The registry of an initialised data directory.
///
/// # Errors
/// Missing or invalid registry.
pub fn registry(data: &Path) -> Result<Registry> {
    read_registry(&AuthPaths::new(data))
}

/// Adds a user and returns it with its token (shown once).
///
/// # Errors
/// Invalid name, an active user of that name, or I/O failures.
pub fn add_user(
    data: &Path,
    name: &str,
    role: Role,
    cases: &[String],
    ttl_secs: u64,
) -> Result<(UserRecord, String)> {
    valid_name("user", name)?;
    if matches!(role, Role::Worker | Role::Local) {
        bail!("role {role} cannot be given to a user");
    }
    if !matches!(role, Role::Admin | Role::Analyst) && cases.is_empty() {
        bail!("a {role} needs at least one case");
    }
    for c in cases {
        if c.is_empty() || c.len() > 256 {
            bail!("invalid case id {c:?}");
        }
    }
    let token = new_token();
    let now = now_ms();
    let rec = UserRecord {
        name: name.into(),
        role,
        cases: cases.to_vec(),
        token_blake3: token_hash(&token),
        created_ms: now,
        expires_ms: if ttl_secs == 0 {
            0
        } else {
            now.saturating_add((ttl_secs.min(i64::MAX as u64 / 1000) * 1000) as i64)
        },
        revoked_ms: 0,
    };
    update_registry(data, |r| {
        if r.users.iter().any(|u| u.name == name && u.revoked_ms == 0) {
            bail!("user {name:?} already exists (revoke it first to issue a new token)");
        }
        r.users.push(rec.clone());
        Ok(())
    })?;
    Ok((rec, token))
}

/// Revokes every active token of a user.
///
/// # Errors
/// No active user of that name, or I/O failures.
pub fn revoke_user(data: &Path, name: &str) -> Result<UserRecord> {
    update_registry(data, |r| {
        let now = now_ms();
        let mut last = None;
        for u in r
            .users
            .iter_mut()
            .filter(|u| u.name == name && u.revoked_ms == 0)
        {
            u.revoked_ms = now;
            last = Some(u.clone());
        }
        last.ok_or_else(|| anyhow!("no active user {name:?}"))
    })
}
/// Revokes an enrolled worker's certificate.
///
/// # Errors
/// No enrolled worker of that name, or I/O failures.
pub fn revoke_worker(data: &Path, name: &str) -> Result<WorkerCertRecord> {
    update_registry(data, |r| {
        let now = now_ms();
        let mut last = None;
        for w in r
            .workers
            .iter_mut()
            .filter(|w| w.name == name && w.revoked_ms == 0)
        {
            w.revoked_ms = now;
            last = Some(w.clone());
        }
        last.ok_or_else(|| anyhow!("no enrolled worker {name:?}"))
    })
}
fn expiry(ms: i64) -> String {
    if ms == 0 {
        "never".into()
    } else {
        crate::text::utc_ms(ms)
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// What changed in a user record that is still the same user (same token,
/// or the same name with a replaced token): role, cases, expiry,
/// revocation and the token itself, each as (action, detail).
fn user_diff(o: &UserRecord, u: &UserRecord) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if o.name != u.name {
        out.push(("user.rename", format!("name: {} -> {}", o.name, u.name)));
    }
    if o.token_blake3 != u.token_blake3 {
        out.push((
            "user.token",
            format!(
                "token replaced: blake3 {}… -> {}…",
                short(&o.token_blake3),
                short(&u.token_blake3)
            ),
        ));
    }
    if o.role != u.role {
        out.push(("user.role", format!("role: {} -> {}", o.role, u.role)));
    }
    if o.cases != u.cases {
        out.push((
            "user.cases",
            format!("cases: {:?} -> {:?}", o.cases, u.cases),
        ));
    }
    if o.expires_ms != u.expires_ms {
        out.push((
            "user.expiry",
            format!(
                "expires: {} -> {}",
                expiry(o.expires_ms),
                expiry(u.expires_ms)
            ),
        ));
    }
    if o.created_ms != u.created_ms {
        out.push((
            "user.created",
            format!(
                "created: {} -> {}",
                crate::text::utc_ms(o.created_ms),
                crate::text::utc_ms(u.created_ms)
            ),
        ));
    }
    if u.revoked_ms != 0 && o.revoked_ms == 0 {
        out.push(("user.revoke", String::new()));
    } else if u.revoked_ms == 0 && o.revoked_ms != 0 {
        out.push((
            "user.unrevoke",
            format!(
                "revocation of {} removed: the token works again",
                crate::text::utc_ms(o.revoked_ms)
            ),
        ));
    } else if u.revoked_ms != o.revoked_ms {
        out.push((
            "user.revoke",
            format!(
                "revoked: {} -> {}",
                crate::text::utc_ms(o.revoked_ms),
                crate::text::utc_ms(u.revoked_ms)
            ),
        ));
    }
    out
}

/// The registry differences worth an audit entry: (action, name, detail).
///
/// Users are matched by token first, then (for a token replaced by hand) by
/// name; every change of role, cases, expiry, revocation or token gets its
/// own entry with the old and new values, and records that disappear are
/// reported as removed. Workers likewise, by certificate fingerprint then
/// name.
pub fn changes(old: &Registry, new: &Registry) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let mut matched_old = vec![false; old.users.len()];
    let mut pairs: Vec<(Option<usize>, usize)> = Vec::new();
    for (ni, u) in new.users.iter().enumerate() {
        let i = old
            .users
            .iter()
            .position(|o| o.token_blake3 == u.token_blake3);
        if let Some(i) = i {
            matched_old[i] = true;
        }
        pairs.push((i, ni));
    }
    // A token replaced in place: same name, the old token gone.
    for p in pairs.iter_mut().filter(|p| p.0.is_none()) {
        let u = &new.users[p.1];
        if let Some(i) =
            (0..old.users.len()).find(|&i| !matched_old[i] && old.users[i].name == u.name)
        {
            matched_old[i] = true;
            p.0 = Some(i);
        }
    }
    for (oi, ni) in pairs {
        let u = &new.users[ni];
        match oi {
            None => {
                out.push((
                    "user.add",
                    u.name.clone(),
                    format!(
                        "role={} cases={:?} expires={}",
                        u.role,
                        u.cases,
                        expiry(u.expires_ms)
                    ),
                ));
                if u.revoked_ms != 0 {
                    out.push(("user.revoke", u.name.clone(), String::new()));
                }
            }
            Some(i) => {
                for (action, detail) in user_diff(&old.users[i], u) {
                    out.push((action, u.name.clone(), detail));
                }
            }
        }
    }
    for (i, o) in old.users.iter().enumerate() {
        if !matched_old[i] {
            out.push((
                "user.remove",
                o.name.clone(),
                format!(
                    "record removed from the registry (role={} cases={:?}, token blake3 {}…)",
                    o.role,
                    o.cases,
                    short(&o.token_blake3)
                ),
            ));
        }
    }
    let mut matched_old = vec![false; old.workers.len()];
    for w in &new.workers {
        let i = old
            .workers
            .iter()
            .position(|o| o.fingerprint == w.fingerprint)
            .or_else(|| {
                (0..old.workers.len()).find(|&i| {
                    !matched_old[i]
                        && old.workers[i].name == w.name
                        && !new
                            .workers
                            .iter()
                            .any(|n| n.fingerprint == old.workers[i].fingerprint)
                })
            });
        let Some(i) = i else {
            out.push((
                "worker.enroll",
                w.name.clone(),
                format!("fingerprint={}", w.fingerprint),
            ));
            if w.revoked_ms != 0 {
                out.push(("worker.revoke", w.name.clone(), String::new()));
            }
            continue;
        };
        matched_old[i] = true;
        let o = &old.workers[i];
        if o.fingerprint != w.fingerprint {
            out.push((
                "worker.certificate",
                w.name.clone(),
                format!(
                    "certificate replaced: fingerprint {} -> {}",
                    o.fingerprint, w.fingerprint
                ),
            ));
        }
        if o.name != w.name {
            out.push((
                "worker.rename",
                w.name.clone(),
                format!("name: {} -> {}", o.name, w.name),
            ));
        }
        if w.revoked_ms != 0 && o.revoked_ms == 0 {
            out.push(("worker.revoke", w.name.clone(), String::new()));
        } else if w.revoked_ms == 0 && o.revoked_ms != 0 {
            out.push((
                "worker.unrevoke",
                w.name.clone(),
                format!(
                    "revocation of {} removed: the certificate works again",
                    crate::text::utc_ms(o.revoked_ms)
                ),
            ));
        }
    }
    for (i, o) in old.workers.iter().enumerate() {
        if !matched_old[i] {
            out.push((
                "worker.remove",
                o.name.clone(),
                format!(
                    "record removed from the registry (fingerprint={})",
                    o.fingerprint
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_edits_of_the_registry_are_all_reported() {
        let user = |name: &str, token: &str, role, cases: &[&str]| UserRecord {
            name: name.into(),
            role,
            cases: cases.iter().map(|c| c.to_string()).collect(),
            token_blake3: token.into(),
            created_ms: 1,
            expires_ms: 0,
            revoked_ms: 0,
        };
        let old = Registry {
            users: vec![
                user("ivy", "t1", Role::Investigator, &["A"]),
                user("otto", "t2", Role::CaseOfficer, &["A"]),
                user("gone", "t3", Role::Investigator, &["A"]),
                UserRecord {
                    revoked_ms: 5,
                    ..user("back", "t4", Role::Investigator, &["A"])
                },
            ],
            workers: Vec::new(),
        };
        let mut new = old.clone();
        new.users[0].role = Role::Admin;
        new.users[0].cases = vec!["A".into(), "B".into()];
        new.users[0].expires_ms = 86_400_000;
        new.users[1].token_blake3 = "t9".into();
        new.users.remove(2);
        new.users[2].revoked_ms = 0;
        let ch = changes(&old, &new);
        let has = |a: &str, n: &str, d: &str| {
            ch.iter()
                .any(|(x, y, z)| *x == a && y == n && z.contains(d))
        };
        assert!(has("user.role", "ivy", "investigator -> admin"), "{ch:?}");
        assert!(has("user.cases", "ivy", r#"["A"] -> ["A", "B"]"#), "{ch:?}");
        assert!(has("user.expiry", "ivy", "never -> 1970-01-02"), "{ch:?}");
        assert!(has("user.token", "otto", "token replaced"), "{ch:?}");
        assert!(has("user.remove", "gone", "role=investigator"), "{ch:?}");
        assert!(has("user.unrevoke", "back", "works again"), "{ch:?}");
        assert_eq!(ch.len(), 6, "{ch:?}");
        assert!(changes(&new, &new).is_empty());
    }
}
