//! The lab's webhook: every new alert is POSTed as JSON to the lab's
//! messaging, signed so the receiver can trust it.
//!
//! Headers: `X-Trawl-Timestamp: T` (unix seconds), `X-Trawl-Delivery:
//! AL000001`, `X-Trawl-Signature: sha256=HEX` where HEX is
//! HMAC-SHA256(secret, `T` ‖ `.` ‖ body). The secret is a file outside the
//! data directory (like the audit key). Deliveries are durable: an outbox
//! tree holds each alert until a 2xx answer; failures are retried after
//! 1 s, 2 s, 4 s ... up to an hour between tries, 20 tries in all, then
//! given up (audited). Details of a flash marked above `webhook_max_tlp`
//! are withheld from the message (the alert id still goes, to be read in
//! the dashboard).

use crate::config::IntelSettings;
use crate::core::Scheduler;
use anyhow::{Context, Result, anyhow, bail};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use trawl_intel::flash::{AlertRecord, AlertWhat, Tlp};
use trawl_store::now_ms;

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// Most tries of one delivery.
const MAX_ATTEMPTS: u32 = 20;

/// A configured webhook.
pub struct Webhook {
    url: hyper::Uri,
    secret: Vec<u8>,
    max_tlp: Tlp,
    tls: Option<tokio_rustls::TlsConnector>,
    outbox: sled::Tree,
    pub(crate) wake: tokio::sync::Notify,
}

/// One delivery's progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Delivery {
    attempts: u32,
    next_ms: i64,
    last_error: String,
    delivered_ms: i64,
    given_up: bool,
}

impl Webhook {
    /// The webhook of `settings`, if one is configured.
    ///
    /// # Errors
    /// A bad URL, a missing or misplaced secret, an unreadable CA.
    pub fn open(
        data: &Path,
        s: &IntelSettings,
        store: &trawl_store::Store,
    ) -> Result<Option<Self>> {
        let Some(url) = &s.webhook_url else {
            return Ok(None);
        };
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("webhook_url {url:?}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("webhook_url {url:?}: http:// or https://"),
        };
        if uri.host().is_none() {
            bail!("webhook_url {url:?}: no host");
        }
        let secret_path = s
            .webhook_secret_file
            .as_ref()
            .ok_or_else(|| anyhow!("webhook_url is set but not webhook_secret_file (the HMAC key the lab's receiver checks signatures with)"))?;
        crate::audit_key::check_outside(secret_path, data)
            .with_context(|| format!("webhook secret {}", secret_path.display()))?;
        let secret = std::fs::read_to_string(secret_path)
            .with_context(|| format!("webhook secret {}", secret_path.display()))?
            .trim()
            .as_bytes()
            .to_vec();
        if secret.len() < 16 {
            bail!(
                "webhook secret {}: shorter than 16 bytes",
                secret_path.display()
            );
        }
        let max_tlp = Tlp::parse(&s.webhook_max_tlp)
            .ok_or_else(|| anyhow!("webhook_max_tlp {:?}", s.webhook_max_tlp))?;
        let tls = if https {
            let mut roots = rustls::RootCertStore::empty();
            let ca = s
                .webhook_ca
                .as_ref()
                .ok_or_else(|| anyhow!("an https webhook needs webhook_ca (the PEM CA that signed the receiver's certificate)"))?;
            use rustls_pki_types::pem::PemObject;
            let pem = std::fs::read(ca).with_context(|| format!("webhook_ca {}", ca.display()))?;
            for c in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                roots
                    .add(c.with_context(|| format!("webhook_ca {}", ca.display()))?)
                    .with_context(|| format!("webhook_ca {}", ca.display()))?;
            }
            let cfg = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
        } else {
            None
        };
        Ok(Some(Self {
            url: uri,
            secret,
            max_tlp,
            tls,
            outbox: store.db().open_tree("webhook")?,
            wake: tokio::sync::Notify::new(),
        }))
    }

    /// Queues an alert's delivery (durable).
    pub fn queue(&self, a: &AlertRecord) {
        let d = Delivery::default();
        if let Err(e) = self.outbox.insert(
            a.seq.to_be_bytes(),
            serde_json::to_vec(&d).unwrap_or_default(),
        ) {
            tracing::error!(alert = %a.id, error = %e, "queueing the webhook delivery");
        }
        self.wake.notify_one();
    }

    /// The signature header value of `body` sent at `ts`.
    pub fn signature(secret: &[u8], ts: &str, body: &[u8]) -> String {
        let mut m =
            <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
        m.update(ts.as_bytes());
        m.update(b".");
        m.update(body);
        format!("sha256={}", hex::encode(m.finalize().into_bytes()))
    }

    /// The message for an alert.
    fn body(&self, a: &AlertRecord, contacts: &[String]) -> Vec<u8> {
        let mut v = serde_json::json!({
            "alert_id": a.id,
            "created_unix_ms": a.created_ms,
            "case": a.case,
            "job": a.job,
            "flash": {"id": a.flash, "tlp": a.tlp.name()},
            "state": a.state.name(),
            "contacts": contacts,
        });
        if a.tlp <= self.max_tlp {
            v["flash"]["title"] = a.flash_title.clone().into();
            match &a.what {
                AlertWhat::Indicator {
                    indicator_kind,
                    value,
                } => {
                    v["kind"] = "indicator".into();
                    v["indicator"] = serde_json::json!({"kind": indicator_kind,
                        "value": if indicator_kind == "ccn_hmac" { "(card number)" } else { value }});
                }
                AlertWhat::Rule { rules, hits } => {
                    v["kind"] = "rule".into();
                    v["rules"] = serde_json::json!(rules);
                    v["hits"] = (*hits).into();
                }
            }
        } else {
            v["withheld"] = format!(
                "details of a {} flash are not sent over the webhook",
                a.tlp.label()
            )
            .into();
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }

    async fn post(&self, id: &str, body: Vec<u8>) -> Result<()> {
        use http_body_util::{BodyExt, Full};
        let host = self.url.host().unwrap_or_default().to_string();
        let port = self
            .url
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let ts = (now_ms() / 1000).to_string();
        let sig = Self::signature(&self.secret, &ts, &body);
        let path = self
            .url
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string());
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-trawl-timestamp", &ts)
            .header("x-trawl-delivery", id)
            .header("x-trawl-signature", sig)
            .body(Full::new(bytes::Bytes::from(body)))?;
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| anyhow!("connecting to {host}:{port} timed out"))??;
        let status = match &self.tls {
            None => send(hyper_util::rt::TokioIo::new(tcp), req).await?,
            Some(tls) => {
                let name = rustls_pki_types::ServerName::try_from(host.clone())?;
                let s = tls.connect(name, tcp).await?;
                send(hyper_util::rt::TokioIo::new(s), req).await?
            }
        };
        async fn send<T>(
            io: T,
            req: hyper::Request<Full<bytes::Bytes>>,
        ) -> Result<hyper::StatusCode>
        where
            T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        {
            let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await?;
            let driver = tokio::spawn(conn);
            let resp = tokio::time::timeout(Duration::from_secs(30), tx.send_request(req))
                .await
                .map_err(|_| anyhow!("no answer within 30 s"))??;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            driver.abort();
            Ok(status)
        }
        if status.is_success() {
            Ok(())
        } else {
            bail!("answered {status}")
        }
    }
}

impl Scheduler {
    /// A new or changed alert: to the watchers; a new one to the webhook.
    pub(crate) fn alert_raised(&self, a: &AlertRecord) {
        let Some(intel) = &self.intel else { return };
        let _ = intel.alerts.send(a.clone());
        if a.state.name() == "new"
            && let Some(w) = &intel.webhook
        {
            w.queue(a);
        }
    }

    /// Delivers the webhook's outbox until `shutdown`.
    pub fn spawn_webhook(self: &Arc<Self>, shutdown: CancellationToken) {
        if self.intel.as_ref().is_none_or(|i| i.webhook.is_none()) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let next = me.webhook_round().await;
                let Some(w) = me.intel.as_ref().and_then(|i| i.webhook.as_ref()) else {
                    return;
                };
                let wait = Duration::from_millis(next.clamp(50, 60_000) as u64);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = w.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }

    /// Tries every delivery that is due; returns the ms until the next one.
    async fn webhook_round(&self) -> i64 {
        let Some(intel) = &self.intel else {
            return 60_000;
        };
        let Some(w) = &intel.webhook else {
            return 60_000;
        };
        let mut next = 60_000i64;
        let due: Vec<(Vec<u8>, Delivery)> = w
            .outbox
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                Some((k.to_vec(), serde_json::from_slice::<Delivery>(&v[..]).ok()?))
            })
            .filter(|(_, d)| d.delivered_ms == 0 && !d.given_up)
            .collect();
        for (k, mut d) in due {
            let now = now_ms();
            if d.next_ms > now {
                next = next.min(d.next_ms - now);
                continue;
            }
            let Some(seq) = <[u8; 8]>::try_from(&k[..]).ok().map(u64::from_be_bytes) else {
                continue;
            };
            let Ok(a) = intel.flashes.alert(&format!("AL{seq:06}")) else {
                let _ = w.outbox.remove(&k);
                continue;
            };
            let body = w.body(&a, &self.case_contacts(&a.case));
            d.attempts += 1;
            match w.post(&a.id, body).await {
                Ok(()) => {
                    d.delivered_ms = now_ms();
                    tracing::info!(alert = %a.id, "alert delivered to the webhook");
                }
                Err(e) => {
                    d.last_error = format!("{e:#}");
                    let backoff = 1000i64 << (d.attempts - 1).min(12);
                    d.next_ms = now_ms() + backoff.min(3_600_000);
                    next = next.min(backoff);
                    tracing::warn!(alert = %a.id, attempt = d.attempts, error = %d.last_error, "webhook delivery failed");
                    if d.attempts >= MAX_ATTEMPTS {
                        d.given_up = true;
                        self.audit(
                            &super::system_caller(),
                            "alert.webhook",
                            &a.id,
                            &a.case,
                            format!("given up after {} tries: {}", d.attempts, d.last_error),
                        );
                    }
                }
            }
            let _ = w
                .outbox
                .insert(&k, serde_json::to_vec(&d).unwrap_or_default());
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::Webhook;

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let s = Webhook::signature(b"0123456789abcdef", "1700000000", b"{\"a\":1}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64, "{s}");
        assert_ne!(
            s,
            Webhook::signature(b"0123456789abcdef", "1700000001", b"{\"a\":1}")
        );
        assert_ne!(
            s,
            Webhook::signature(b"0123456789abcdef", "1700000000", b"{\"a\":2}")
        );
        assert_ne!(
            s,
            Webhook::signature(b"0123456789abcdeF", "1700000000", b"{\"a\":1}")
        );
    }
}
