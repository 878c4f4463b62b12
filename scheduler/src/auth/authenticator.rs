//! Who is calling: a bearer token (BLAKE3 of it looked up in the
//! registry) or an enrolled, unrevoked worker certificate, to a
//! [`Caller`]; the TLS acceptors of the gRPC port and the dashboard.

use super::Role;
use super::registry::{AuthPaths, Registry, now_ms, read_registry};
use crate::core::Caller;
use anyhow::{Context, Result};
use parking_lot::Mutex;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// A fresh bearer token: 32 random bytes from the OS, hex.
pub(super) fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("trawl_{}", hex::encode(b))
}

pub(super) fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{add_user, changes, init, revoke_user, revoke_worker};

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
}
