//! The lab's certificate authority (ECDSA P-256, rcgen): `init` makes it
//! with the scheduler's certificate, the registry and the first worker
//! and admin; `enroll_worker` signs and enrols further workers.

use super::registry::{
    AuthPaths, Registry, WorkerCertRecord, is_initialised, mkdir_private, now_ms, update_registry,
    valid_name, write_file, write_registry,
};
use super::{DEFAULT_TOKEN_TTL_SECS, Role};
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};

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
    let (_, admin_token) =
        super::registry::add_user(data, admin, Role::Admin, &[], DEFAULT_TOKEN_TTL_SECS)?;
    Ok(InitReport {
        admin: admin.into(),
        admin_token,
        ca: paths.ca_pem(),
        worker_bundle,
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
