//! Who may call the scheduler, and what they may do.
//!
//! A scheduler whose data directory was initialised (`trawl-scheduler init`)
//! has a private certificate authority and a user registry under
//! `DIR/auth/`:
//!
//! ```text
//! DIR/auth/ca.pem, ca.key          the lab's CA (the key never leaves DIR)
//! DIR/auth/server.pem, server.key  the scheduler's TLS identity, signed by the CA
//! DIR/auth/registry.json           users (role, cases, BLAKE3 of the token, expiry,
//!                                  revocation) and enrolled worker certificates
//!                                  (BLAKE3 fingerprint of the DER)
//! DIR/enroll/NAME/                 a worker's bundle: ca.pem, cert.pem, key.pem
//! ```
//!
//! Every connection is TLS. Workers present their certificate (mutual TLS):
//! it must be signed by the CA *and* enrolled, not revoked. Clients present
//! a bearer token (`authorization: Bearer ...`) bound to a user and a role:
//!
//! | role           | may                                                       |
//! |----------------|-----------------------------------------------------------|
//! | `investigator` | submit, upload, read, cancel jobs of its cases; read rules and the pool |
//! | `case_officer` | read jobs and results of its cases; read rules and the pool |
//! | `admin`        | everything on every case, users, rules, audit; not the worker calls |
//! | `worker`       | lease/report tasks, read evidence ranges, fetch rule sets |
//!
//! Only token hashes are stored; a token is shown once, when it is made.
//! The registry is a file so that `trawl-scheduler user add|revoke` works
//! while the scheduler runs (sled is locked by the running process); the
//! scheduler rereads it when it changes, and audits the changes it sees.

use crate::core::Caller;
use anyhow::{Context, Result, anyhow, bail};
use parking_lot::Mutex;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Default lifetime of a token: 90 days.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 90 * 24 * 3600;

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Investigator,
    CaseOfficer,
    Admin,
    /// An enrolled worker node (mutual TLS).
    Worker,
    /// The unauthenticated loopback caller of an uninitialised scheduler.
    Local,
}

impl Role {
    /// The role named `s` (`investigator`, `case_officer`/`case-officer`,
    /// `admin`); workers are enrolled, not added as users.
    ///
    /// # Errors
    /// Unknown names.
    pub fn parse_user_role(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "investigator" => Ok(Role::Investigator),
            "case_officer" | "officer" => Ok(Role::CaseOfficer),
            "admin" => Ok(Role::Admin),
            _ => bail!("unknown role {s:?} (investigator, case_officer, admin)"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Investigator => "investigator",
            Role::CaseOfficer => "case_officer",
            Role::Admin => "admin",
            Role::Worker => "worker",
            Role::Local => "local",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a call does, for the access check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// Submit a job or upload evidence to a case.
    Submit,
    /// Read a job of a case: status, tasks, progress, results.
    Read,
    /// Cancel a job of a case.
    Cancel,
    /// List and fetch rule sets.
    ReadRules,
    /// Add rule sets.
    ManageRules,
    /// See the worker pool.
    ReadPool,
    /// Worker calls: register, lease, report, read evidence ranges.
    Work,
    /// Users and the audit trail.
    Administer,
}

impl Perm {
    pub fn as_str(self) -> &'static str {
        match self {
            Perm::Submit => "submit to",
            Perm::Read => "read",
            Perm::Cancel => "cancel jobs of",
            Perm::ReadRules => "read rule sets",
            Perm::ManageRules => "manage rule sets",
            Perm::ReadPool => "see the worker pool",
            Perm::Work => "make worker calls",
            Perm::Administer => "administer users and the audit trail",
        }
    }

    /// Whether the permission is about one case.
    pub fn per_case(self) -> bool {
        matches!(self, Perm::Submit | Perm::Read | Perm::Cancel)
    }
}

impl Caller {
    /// Whether this caller may do `perm` (on `case` for per-case
    /// permissions).
    pub fn may(&self, perm: Perm, case: &str) -> bool {
        let own = || self.cases.iter().any(|c| c == case);
        match self.role {
            Role::Local => true,
            Role::Admin => perm != Perm::Work,
            Role::Worker => matches!(perm, Perm::Work | Perm::ReadRules),
            Role::Investigator => match perm {
                Perm::Submit | Perm::Read | Perm::Cancel => own(),
                Perm::ReadRules | Perm::ReadPool => true,
                _ => false,
            },
            Role::CaseOfficer => match perm {
                Perm::Read => own(),
                Perm::ReadRules | Perm::ReadPool => true,
                _ => false,
            },
        }
    }

    /// Whether the caller sees every case.
    pub fn all_cases(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Local)
    }
}

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
    fn lock(&self) -> PathBuf {
        self.dir.join("registry.lock")
    }
}

/// Whether `data` was initialised (then TLS and tokens are required).
pub fn is_initialised(data: &Path) -> bool {
    let p = AuthPaths::new(data);
    p.registry().exists() || p.server_pem().exists() || p.ca_pem().exists()
}

fn now_ms() -> i64 {
    trawl_store::now_ms()
}

/// A fresh bearer token: 32 random bytes from the OS, hex.
fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("trawl_{}", hex::encode(b))
}

fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// Writes `data` to `path` atomically (temporary file, fsync, rename), with
/// mode 0600 when `secret`.
fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<()> {
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

fn mkdir_private(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .with_context(|| p.display().to_string())
}

fn valid_name(kind: &str, name: &str) -> Result<()> {
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

/// The CA's subject; the issuer of enrolled certificates is rebuilt from it
/// and the CA key.
fn ca_params() -> Result<rcgen::CertificateParams> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "trawl");
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "trawl lab CA");
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    Ok(p)
}

fn leaf_params(
    cn: &str,
    sans: Vec<String>,
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> Result<rcgen::CertificateParams> {
    let mut p = rcgen::CertificateParams::new(sans)?;
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "trawl");
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![usage];
    p.use_authority_key_identifier_extension = true;
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(825);
    Ok(p)
}

fn load_issuer(paths: &AuthPaths) -> Result<rcgen::Issuer<'static, rcgen::KeyPair>> {
    let key = std::fs::read_to_string(paths.ca_key())
        .with_context(|| paths.ca_key().display().to_string())?;
    let key =
        rcgen::KeyPair::from_pem(&key).map_err(|e| anyhow!("{}: {e}", paths.ca_key().display()))?;
    Ok(rcgen::Issuer::new(ca_params()?, key))
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    pub admin: String,
    pub admin_token: String,
    pub ca: PathBuf,
    pub worker_bundle: PathBuf,
}

/// Initialises `data`: the CA, the server certificate (for `hosts`, plus
/// localhost and the loopback addresses), one enrolled worker (`worker-1`)
/// and the first admin user, whose token is returned (and shown once).
///
/// # Errors
/// An already initialised directory, or I/O failures.
pub fn init(data: &Path, hosts: &[String], admin: &str) -> Result<InitReport> {
    valid_name("user", admin)?;
    if is_initialised(data) {
        bail!(
            "{} is already initialised (its CA and registry exist); add users with `trawl-scheduler user add`, workers with `trawl-scheduler worker enroll`",
            data.display()
        );
    }
    let paths = AuthPaths::new(data);
    mkdir_private(&paths.dir)?;
    let ca_key = rcgen::KeyPair::generate()?;
    let ca_cert = ca_params()?.self_signed(&ca_key)?;
    write_file(&paths.ca_key(), ca_key.serialize_pem().as_bytes(), true)?;
    write_file(&paths.ca_pem(), ca_cert.pem().as_bytes(), false)?;
    let issuer = rcgen::Issuer::new(ca_params()?, ca_key);

    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            sans.push(h.to_string());
        }
    }
    for h in hosts {
        if !sans.contains(h) {
            sans.push(h.clone());
        }
    }
    let server_key = rcgen::KeyPair::generate()?;
    let server = leaf_params(
        "trawl-scheduler",
        sans,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    )?
    .signed_by(&server_key, &issuer)?;
    write_file(
        &paths.server_key(),
        server_key.serialize_pem().as_bytes(),
        true,
    )?;
    write_file(&paths.server_pem(), server.pem().as_bytes(), false)?;
    write_registry(&paths, &Registry::default())?;
    let worker_bundle = enroll_worker(data, "worker-1")?;
    let (_, admin_token) = add_user(data, admin, Role::Admin, &[], DEFAULT_TOKEN_TTL_SECS)?;
    Ok(InitReport {
        admin: admin.into(),
        admin_token,
        ca: paths.ca_pem(),
        worker_bundle,
    })
}

fn read_registry(paths: &AuthPaths) -> Result<Registry> {
    let p = paths.registry();
    let text = std::fs::read(&p).with_context(|| p.display().to_string())?;
    serde_json::from_slice(&text).with_context(|| format!("{}: invalid registry", p.display()))
}

fn write_registry(paths: &AuthPaths, r: &Registry) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(r)?;
    text.push(b'\n');
    write_file(&paths.registry(), &text, true)
}

/// Changes the registry under an exclusive lock.
fn update_registry<T>(data: &Path, f: impl FnOnce(&mut Registry) -> Result<T>) -> Result<T> {
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
    if role != Role::Admin && cases.is_empty() {
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

/// Issues a worker certificate signed by the CA and enrolls it; returns the
/// bundle directory (ca.pem, cert.pem, key.pem) to copy to the worker.
///
/// # Errors
/// Not initialised, an enrolled worker of that name, or I/O failures.
pub fn enroll_worker(data: &Path, name: &str) -> Result<PathBuf> {
    valid_name("worker", name)?;
    // `NAME@...` are the worker ids a certificate may act as: a certificate
    // name with an `@` would reach into another certificate's ids.
    if name.contains('@') {
        bail!("invalid worker name {name:?}: '@' is reserved (worker ids are NAME@...)");
    }
    let paths = AuthPaths::new(data);
    let issuer = load_issuer(&paths)?;
    let key = rcgen::KeyPair::generate()?;
    let cert = leaf_params(
        &format!("trawl-worker {name}"),
        vec![name.to_string()],
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    )?
    .signed_by(&key, &issuer)?;
    let fingerprint = blake3::hash(cert.der()).to_hex().to_string();
    update_registry(data, |r| {
        if r.workers
            .iter()
            .any(|w| w.name == name && w.revoked_ms == 0)
        {
            bail!("worker {name:?} is already enrolled (revoke it first)");
        }
        r.workers.push(WorkerCertRecord {
            name: name.into(),
            fingerprint,
            created_ms: now_ms(),
            revoked_ms: 0,
        });
        Ok(())
    })?;
    let dir = paths.enroll.join(name);
    mkdir_private(&dir)?;
    std::fs::copy(paths.ca_pem(), dir.join("ca.pem"))
        .with_context(|| dir.join("ca.pem").display().to_string())?;
    write_file(&dir.join("cert.pem"), cert.pem().as_bytes(), false)?;
    write_file(&dir.join("key.pem"), key.serialize_pem().as_bytes(), true)?;
    Ok(dir)
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

/// The registry as the scheduler sees it, indexed.
#[derive(Debug, Default)]
struct Index {
    registry: Registry,
    by_token: HashMap<String, usize>,
    by_fingerprint: HashMap<String, usize>,
}

impl Index {
    fn new(registry: Registry) -> Self {
        let by_token = registry
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.token_blake3.clone(), i))
            .collect();
        let by_fingerprint = registry
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| (w.fingerprint.clone(), i))
            .collect();
        Self {
            registry,
            by_token,
            by_fingerprint,
        }
    }
}

#[derive(Debug)]
struct Cached {
    stamp: Option<(SystemTime, u64)>,
    index: Arc<Index>,
}

/// Why a call was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Who the call claimed to be, if anyone.
    pub who: String,
    pub reason: String,
}

/// Authenticates calls of an initialised scheduler.
#[derive(Debug)]
pub struct Authenticator {
    paths: AuthPaths,
    cache: Mutex<Cached>,
}

impl Authenticator {
    /// Opens the registry of `data`.
    ///
    /// # Errors
    /// Missing or invalid registry.
    pub fn open(data: &Path) -> Result<Self> {
        let paths = AuthPaths::new(data);
        let a = Self {
            paths,
            cache: Mutex::new(Cached {
                stamp: None,
                index: Arc::default(),
            }),
        };
        a.reload()?;
        Ok(a)
    }

    /// Rereads the registry if the file changed; returns the current one and
    /// the previous one when it changed.
    ///
    /// # Errors
    /// The file became unreadable or invalid (the last good one stays).
    pub fn reload(&self) -> Result<Option<(Registry, Registry)>> {
        let p = self.paths.registry();
        let md = std::fs::metadata(&p).with_context(|| p.display().to_string())?;
        let stamp = Some((md.modified()?, md.len()));
        let mut c = self.cache.lock();
        if c.stamp == stamp {
            return Ok(None);
        }
        let reg = read_registry(&self.paths)?;
        let old = c.index.registry.clone();
        c.index = Arc::new(Index::new(reg.clone()));
        c.stamp = stamp;
        Ok(Some((old, reg)))
    }

    fn index(&self) -> Arc<Index> {
        if let Err(e) = self.reload() {
            tracing::error!(error = %format!("{e:#}"), "user registry unreadable; keeping the last good one");
        }
        self.cache.lock().index.clone()
    }

    /// The current registry.
    pub fn registry(&self) -> Registry {
        self.index().registry.clone()
    }

    /// The TLS acceptor: the server identity, client certificates optional
    /// but, when presented, verified against the CA.
    ///
    /// # Errors
    /// Unreadable or invalid certificate files.
    pub fn tls_acceptor(&self) -> Result<tokio_rustls::TlsAcceptor> {
        self.tls_acceptor_alpn(b"h2")
    }

    /// The TLS acceptor of the web dashboard (HTTP/1.1).
    ///
    /// # Errors
    /// As [`Authenticator::tls_acceptor`].
    pub fn tls_acceptor_http(&self) -> Result<tokio_rustls::TlsAcceptor> {
        self.tls_acceptor_alpn(b"http/1.1")
    }

    fn tls_acceptor_alpn(&self, alpn: &[u8]) -> Result<tokio_rustls::TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca = CertificateDer::pem_file_iter(self.paths.ca_pem())
            .with_context(|| self.paths.ca_pem().display().to_string())?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| self.paths.ca_pem().display().to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        for c in ca {
            roots.add(c).context("adding the CA certificate")?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .context("client certificate verifier")?;
        let certs = CertificateDer::pem_file_iter(self.paths.server_pem())
            .with_context(|| self.paths.server_pem().display().to_string())?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| self.paths.server_pem().display().to_string())?;
        let key = PrivateKeyDer::from_pem_file(self.paths.server_key())
            .with_context(|| self.paths.server_key().display().to_string())?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .context("server certificate and key")?;
        cfg.alpn_protocols = vec![alpn.to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
    }

    /// Who is calling: a bearer token in `authorization`, else a verified
    /// client certificate (a worker).
    ///
    /// # Errors
    /// No credentials, an unknown, expired or revoked token, a certificate
    /// that is not enrolled or was revoked.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        peer_certs: Option<&[CertificateDer<'static>]>,
        peer: &str,
    ) -> Result<Caller, Refusal> {
        let idx = self.index();
        let now = now_ms();
        if let Some(h) = authorization {
            let token = h
                .strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .ok_or_else(|| Refusal {
                    who: String::new(),
                    reason: "authorization is not a bearer token".into(),
                })?
                .trim();
            let Some(&i) = idx.by_token.get(&token_hash(token)) else {
                return Err(Refusal {
                    who: String::new(),
                    reason: "unknown token".into(),
                });
            };
            let u = &idx.registry.users[i];
            if u.revoked_ms != 0 {
                return Err(Refusal {
                    who: u.name.clone(),
                    reason: format!("the token of user {} was revoked", u.name),
                });
            }
            if u.expires_ms != 0 && u.expires_ms <= now {
                return Err(Refusal {
                    who: u.name.clone(),
                    reason: format!("the token of user {} has expired", u.name),
                });
            }
            return Ok(Caller {
                user: u.name.clone(),
                role: u.role,
                cases: u.cases.clone(),
                peer: peer.into(),
            });
        }
        if let Some(leaf) = peer_certs.and_then(|c| c.first()) {
            let fp = blake3::hash(leaf.as_ref()).to_hex().to_string();
            let Some(&i) = idx.by_fingerprint.get(&fp) else {
                return Err(Refusal {
                    who: String::new(),
                    reason: "client certificate is not enrolled".into(),
                });
            };
            let w = &idx.registry.workers[i];
            if w.revoked_ms != 0 {
                return Err(Refusal {
                    who: w.name.clone(),
                    reason: format!("the certificate of worker {} was revoked", w.name),
                });
            }
            return Ok(Caller {
                user: w.name.clone(),
                role: Role::Worker,
                cases: Vec::new(),
                peer: peer.into(),
            });
        }
        Err(Refusal {
            who: String::new(),
            reason: "no credentials: a bearer token (or a worker certificate) is required".into(),
        })
    }
}

impl Authenticator {
    /// `caller` as the registry describes it now: `None` when its token or
    /// certificate was revoked or expired since it was authenticated (open
    /// streams then end), else with its current role and cases.
    pub fn refresh(&self, caller: &Caller) -> Option<Caller> {
        let idx = self.index();
        let now = now_ms();
        if caller.role == Role::Worker {
            return idx
                .registry
                .workers
                .iter()
                .any(|w| w.name == caller.user && w.revoked_ms == 0)
                .then(|| caller.clone());
        }
        if caller.role == Role::Local {
            return Some(caller.clone());
        }
        let u = idx.registry.users.iter().find(|u| u.name == caller.user)?;
        if u.revoked_ms != 0 || (u.expires_ms != 0 && u.expires_ms <= now) {
            return None;
        }
        Some(Caller {
            user: u.name.clone(),
            role: u.role,
            cases: u.cases.clone(),
            peer: caller.peer.clone(),
        })
    }
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
    fn roles_permissions() {
        let c = |role, cases: &[&str]| Caller {
            user: "u".into(),
            role,
            cases: cases.iter().map(|s| s.to_string()).collect(),
            peer: String::new(),
        };
        let inv = c(Role::Investigator, &["A"]);
        assert!(inv.may(Perm::Submit, "A") && !inv.may(Perm::Submit, "B"));
        assert!(inv.may(Perm::Cancel, "A") && !inv.may(Perm::ManageRules, ""));
        let off = c(Role::CaseOfficer, &["A"]);
        assert!(off.may(Perm::Read, "A") && !off.may(Perm::Read, "B"));
        assert!(!off.may(Perm::Submit, "A") && !off.may(Perm::Cancel, "A"));
        let adm = c(Role::Admin, &[]);
        assert!(
            adm.may(Perm::Read, "Z") && adm.may(Perm::Administer, "") && !adm.may(Perm::Work, "")
        );
        let w = c(Role::Worker, &[]);
        assert!(w.may(Perm::Work, "") && !w.may(Perm::Read, "A") && !w.may(Perm::Submit, "A"));
    }

    #[test]
    fn init_users_tokens_and_workers() {
        let d = tempfile::tempdir().unwrap();
        let r = init(d.path(), &["sched.lab".into()], "root").unwrap();
        assert!(init(d.path(), &[], "root").is_err(), "init twice");
        let a = Authenticator::open(d.path()).unwrap();
        let me = a
            .authenticate(Some(&format!("Bearer {}", r.admin_token)), None, "p")
            .unwrap();
        assert_eq!((me.user.as_str(), me.role), ("root", Role::Admin));
        assert!(a.authenticate(Some("Bearer nope"), None, "p").is_err());
        assert!(a.authenticate(None, None, "p").is_err());
        let (_, t) = add_user(d.path(), "alice", Role::Investigator, &["C1".into()], 3600).unwrap();
        assert!(add_user(d.path(), "alice", Role::Admin, &[], 0).is_err());
        // Only admins see every case: anyone else needs one.
        assert!(add_user(d.path(), "bob", Role::CaseOfficer, &[], 60).is_err());
        let alice = a
            .authenticate(Some(&format!("Bearer {t}")), None, "p")
            .unwrap();
        assert_eq!(alice.cases, vec!["C1".to_string()]);
        let old = a.registry();
        revoke_user(d.path(), "alice").unwrap();
        let e = a
            .authenticate(Some(&format!("Bearer {t}")), None, "p")
            .unwrap_err();
        assert!(e.reason.contains("revoked"), "{e:?}");
        let ch = changes(&old, &a.registry());
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].0, "user.revoke");
        // Worker certificates: enrolled one accepted, by fingerprint.
        let cert = CertificateDer::from_pem_file(r.worker_bundle.join("cert.pem")).unwrap();
        let w = a
            .authenticate(None, Some(std::slice::from_ref(&cert)), "p")
            .unwrap();
        assert_eq!((w.user.as_str(), w.role), ("worker-1", Role::Worker));
        revoke_worker(d.path(), "worker-1").unwrap();
        assert!(a.authenticate(None, Some(&[cert]), "p").is_err());
        assert!(a.tls_acceptor().is_ok());
    }

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
