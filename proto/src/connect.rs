//! Connecting to a scheduler: plaintext on loopback, or TLS with the lab's
//! CA (and, for workers, a client certificate for mutual TLS); a bearer
//! token on every call for clients.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// How to reach a scheduler.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `https://host:port` (TLS) or `http://127.0.0.1:port` (an
    /// uninitialised scheduler on loopback). Without a scheme: https when a
    /// CA is given, else http.
    pub url: String,
    /// The lab CA certificate (PEM) that signed the scheduler's certificate.
    pub ca: Option<PathBuf>,
    /// A client certificate and key (PEM): a worker's enrolment.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// A bearer token (clients).
    pub token: Option<String>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

impl ConnectOptions {
    /// The URL with its scheme.
    pub fn full_url(&self) -> String {
        if self.url.contains("://") {
            self.url.clone()
        } else if self.ca.is_some() {
            format!("https://{}", self.url)
        } else {
            format!("http://{}", self.url)
        }
    }

    /// A lazily connecting channel.
    ///
    /// # Errors
    /// An invalid URL, unreadable certificate files, https without a CA or
    /// a CA with http.
    pub fn channel(&self) -> Result<Channel, String> {
        let url = self.full_url();
        let mut ep = Endpoint::from_shared(url.clone())
            .map_err(|e| format!("invalid server URL {url:?}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(20));
        let https = url.starts_with("https://");
        match (&self.ca, https) {
            (Some(ca), true) => {
                let mut tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?));
                if let Some((cert, key)) = &self.identity {
                    tls = tls.identity(Identity::from_pem(
                        read(cert, "certificate")?,
                        read(key, "key")?,
                    ));
                }
                ep = ep
                    .tls_config(tls)
                    .map_err(|e| format!("TLS configuration: {e}"))?;
            }
            (Some(_), false) => {
                return Err(format!(
                    "{url}: a CA certificate was given but the URL is not https://"
                ));
            }
            (None, true) => {
                return Err(format!(
                    "{url}: https needs the lab's CA certificate (--ca FILE or TRAWL_CA)"
                ));
            }
            (None, false) => {
                if self.identity.is_some() {
                    return Err(format!(
                        "{url}: a client certificate needs https:// and the CA certificate"
                    ));
                }
            }
        }
        Ok(ep.connect_lazy())
    }

    /// A lazily connecting channel that adds the bearer token to every call.
    ///
    /// # Errors
    /// As [`ConnectOptions::channel`] and [`ConnectOptions::bearer`].
    pub fn auth_channel(&self) -> Result<AuthChannel, String> {
        Ok(tonic::service::interceptor::InterceptedService::new(
            self.channel()?,
            self.bearer()?,
        ))
    }

    /// The interceptor adding the bearer token.
    ///
    /// # Errors
    /// A token that is not printable ASCII.
    pub fn bearer(&self) -> Result<Bearer, String> {
        let value = match &self.token {
            Some(t) if !t.trim().is_empty() => Some(
                format!("Bearer {}", t.trim())
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| "the token is not printable ASCII".to_string())?,
            ),
            _ => None,
        };
        Ok(Bearer(value))
    }
}

/// Adds `authorization: Bearer TOKEN` to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A ready channel (for example an in-process one, see
/// `trawl_scheduler::server::in_process`) as an [`AuthChannel`] that sends
/// no token: for a scheduler that needs none.
pub fn without_token(channel: Channel) -> AuthChannel {
    tonic::service::interceptor::InterceptedService::new(channel, Bearer(None))
}

/// A channel that authenticates every call.
pub type AuthChannel = tonic::service::interceptor::InterceptedService<Channel, Bearer>;
