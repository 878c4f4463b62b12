//! Serving the scheduler: gRPC services, health, reflection, the lease
//! reaper, graceful shutdown; over TCP (TLS on an initialised scheduler) or
//! over an in-process transport with no socket at all (the embedded scan).

use crate::admin::AdminService;
use crate::config::SchedulerConfig;
use crate::core::Scheduler;
use crate::service::{
    Authz, ClusterService, EvidenceService, IntelService, JobsService, RulesService,
};
use anyhow::{Context, Result, bail};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::codegen::Service;
use tonic::transport::server::{Connected, Router};
use tonic::transport::{Channel, Endpoint, Uri};
use trawl_proto::v1::admin_server::AdminServer;
use trawl_proto::v1::intel_server::IntelServer;
use trawl_proto::v1::reports_server::ReportsServer;
use trawl_proto::v1::rules_server::RulesServer;
use trawl_proto::v1::{
    cluster_server::ClusterServer, evidence_server::EvidenceServer, jobs_server::JobsServer,
};

/// Largest client request (a job with its inline rule sets).
const MAX_CLIENT_REQUEST: usize = 64 << 20;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS connections of `listener`: each handshake runs on its own task (a
/// slow or hostile client cannot stall the others); failed handshakes (no
/// TLS, a certificate the CA did not sign) are audited and dropped.
pub(crate) fn tls_incoming(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    sched: Arc<Scheduler>,
    shutdown: CancellationToken,
    redirect_plain_http: bool,
) -> tokio_stream::wrappers::ReceiverStream<
    Result<tokio_rustls::server::TlsStream<TcpStream>, std::io::Error>,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let sched = sched.clone();
            tokio::spawn(async move {
                let mut tcp = tcp;
                if redirect_plain_http && redirect_if_plain_http(&mut tcp).await {
                    return;
                }
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "TLS handshake refused");
                        sched.audit_refusal("", &peer.to_string(), &format!("TLS handshake: {e}"));
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A browser speaking plain HTTP to the dashboard's TLS port: answered
/// with a redirect to the same host and path over https (a TLS client's
/// first byte is a handshake record, 0x16). Returns whether it was.
async fn redirect_if_plain_http(tcp: &mut TcpStream) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != 0x16 => {}
        _ => return false,
    }
    // The request head (at most 8 KiB, a few seconds).
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let text = String::from_utf8_lossy(&head);
    let path = text
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .filter(|p| p.starts_with('/') && p.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("/");
    let host = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("host")
                .then(|| v.trim().to_string())
        })
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .or_else(|| tcp.local_addr().ok().map(|a| a.to_string()))
        .unwrap_or_default();
    let body = "This is the trawl dashboard: it answers HTTPS only.\n";
    let answer = format!(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://{host}{path}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(answer.as_bytes()).await;
    let _ = tcp.shutdown().await;
    true
}

/// The trawl services, health, reflection and the lease reaper, ready to
/// serve any transport. The reaper runs until `shutdown` (or until the
/// returned handle is aborted).
async fn prepare(
    sched: &Arc<Scheduler>,
    shutdown: &CancellationToken,
) -> Result<(Router, tokio::task::JoinHandle<()>)> {
    let max = sched.config().max_message_bytes;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<JobsServer<JobsService>>()
        .await;
    health_reporter
        .set_serving::<ClusterServer<ClusterService>>()
        .await;
    health_reporter
        .set_serving::<EvidenceServer<EvidenceService>>()
        .await;
    health_reporter
        .set_serving::<RulesServer<RulesService>>()
        .await;
    health_reporter
        .set_serving::<IntelServer<IntelService>>()
        .await;
    health_reporter
        .set_serving::<ReportsServer<crate::service::ReportsService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(trawl_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    // The lab's webhook delivers new alerts.
    sched.spawn_webhook(shutdown.clone());
    // The reaper: expired leases go back to the queue.
    let reaper_sched = sched.clone();
    let reaper_stop = shutdown.clone();
    let period = Duration::from_millis((sched.config().lease_ms / 4).clamp(20, 1000));
    let reaper = tokio::spawn(async move {
        let mut t = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = reaper_stop.cancelled() => break,
                _ = t.tick() => {
                    reaper_sched.expire_leases();
                    reaper_sched.sync_registry(true);
                    reaper_sched.flush_refusal_windows(false);
                }
            }
        }
    });

    // Every call of the trawl services (and reflection) passes one layer:
    // authentication, then the method's permission from one table
    // (`service::authz`). Health stays open.
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health)
        // Reflection describes the API: only to authenticated callers.
        .add_service(Authz::new(sched.clone(), reflection))
        .add_service(Authz::new(
            sched.clone(),
            JobsServer::new(JobsService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(MAX_CLIENT_REQUEST)
            .max_encoding_message_size(max),
        ))
        .add_service(Authz::new(
            sched.clone(),
            ClusterServer::new(ClusterService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        ))
        .add_service(Authz::new(
            sched.clone(),
            RulesServer::new(RulesService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(MAX_CLIENT_REQUEST)
            .max_encoding_message_size(MAX_CLIENT_REQUEST),
        ))
        .add_service(Authz::new(
            sched.clone(),
            EvidenceServer::new(EvidenceService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20),
        ))
        .add_service(Authz::new(
            sched.clone(),
            AdminServer::new(AdminService {
                sched: sched.clone(),
            }),
        ))
        .add_service(Authz::new(
            sched.clone(),
            IntelServer::new(IntelService {
                sched: sched.clone(),
            }),
        ))
        .add_service(Authz::new(
            sched.clone(),
            ReportsServer::new(crate::service::ReportsService {
                sched: sched.clone(),
            })
            .max_encoding_message_size(max),
        ));
    Ok((router, reaper))
}

/// Serves `sched` on an already bound listener until `shutdown`: TLS when
/// the scheduler was initialised, plaintext otherwise.
///
/// # Errors
/// Transport failures.
pub async fn serve(
    sched: Arc<Scheduler>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let (router, reaper) = prepare(&sched, &shutdown).await?;
    let result = match sched.authenticator() {
        Some(a) => {
            let acceptor = a.tls_acceptor().context("loading the TLS identity")?;
            let incoming = tls_incoming(listener, acceptor, sched.clone(), shutdown.clone(), false);
            router
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
                .await
        }
        None => {
            // Accepted connections get TCP_NODELAY (the builder's setting
            // only applies to listeners it binds itself): small gRPC frames
            // must not wait for delayed ACKs.
            let incoming = tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                |s| {
                    s.inspect(|s| {
                        let _ = s.set_nodelay(true);
                    })
                },
            );
            router
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
                .await
        }
    };
    reaper.abort();
    sched.flush_refusal_windows(true);
    let _ = sched.store().flush();
    result.context("gRPC server")
}

/// Serves `sched` over the in-process transport of [`in_process`] until
/// `shutdown` (or until every [`InProcessConnector`] is gone): no socket,
/// no port, nothing another process or user can reach. The embedded scan
/// (`trawl scan`) runs its scheduler this way. Calls are authenticated as
/// on TCP (an uninitialised scheduler: the local caller), and their peer,
/// in the audit trail and the logs, is `in-process`.
///
/// # Errors
/// Transport failures.
pub async fn serve_in_process(
    sched: Arc<Scheduler>,
    incoming: InProcessIncoming,
    shutdown: CancellationToken,
) -> Result<()> {
    let (router, reaper) = prepare(&sched, &shutdown).await?;
    let result = router
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(incoming.rx),
            shutdown.cancelled(),
        )
        .await;
    reaper.abort();
    let _ = sched.store().flush();
    result.context("gRPC server (in-process)")
}

/// The peer of in-process calls, as the audit trail and logs name it.
pub const IN_PROCESS_PEER: &str = "in-process";

/// Bytes buffered in each direction of an in-process connection: room for
/// several HTTP/2 frames of a large task result in flight, so neither side
/// waits on the other more than a socket pair would make it.
const IN_PROCESS_BUFFER: usize = 4 << 20;

/// Marks requests that came over the in-process transport (a request
/// extension set by tonic from [`Connected`]).
#[derive(Debug, Clone, Copy)]
pub struct InProcessPeer;

/// The scheduler's end of one in-process connection: a
/// [`tokio::io::DuplexStream`], which is memory inside this process, not a
/// file descriptor.
#[derive(Debug)]
pub struct InProcessStream(DuplexStream);

impl Connected for InProcessStream {
    type ConnectInfo = InProcessPeer;

    fn connect_info(&self) -> InProcessPeer {
        InProcessPeer
    }
}

impl AsyncRead for InProcessStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for InProcessStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The connections [`serve_in_process`] accepts.
#[derive(Debug)]
pub struct InProcessIncoming {
    rx: tokio::sync::mpsc::Receiver<Result<InProcessStream, std::io::Error>>,
}

/// Opens in-process connections to [`serve_in_process`]: each connection
/// is a pair of [`tokio::io::duplex`] ends, the client's wrapped for hyper
/// and the scheduler's handed to the server.
#[derive(Debug, Clone)]
pub struct InProcessConnector {
    tx: tokio::sync::mpsc::Sender<Result<InProcessStream, std::io::Error>>,
}

/// A new in-process transport: the connector for clients and workers, the
/// incoming connections for [`serve_in_process`].
pub fn in_process() -> (InProcessConnector, InProcessIncoming) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    (InProcessConnector { tx }, InProcessIncoming { rx })
}

impl InProcessConnector {
    /// A lazily connecting channel over its own in-process connection
    /// (each call makes a new one, as each TCP client would have its own).
    pub fn channel(&self) -> Channel {
        Endpoint::from_static("http://in-process.trawl.invalid")
            .connect_with_connector_lazy(self.clone())
    }
}

impl Service<Uri> for InProcessConnector {
    type Response = TokioIo<DuplexStream>;
    type Error = std::io::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<TokioIo<DuplexStream>, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(IN_PROCESS_BUFFER);
            tx.send(Ok(InProcessStream(server))).await.map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the in-process scheduler has stopped",
                )
            })?;
            Ok(TokioIo::new(client))
        })
    }
}

/// Opens the scheduler described by `cfg`, binds its address and serves
/// until `shutdown`. An initialised data directory means TLS and
/// authentication on every call; without it, plaintext is only allowed on
/// loopback addresses, with a loud warning.
///
/// # Errors
/// Bad configuration, the address in use, the data directory unusable.
pub async fn run(cfg: SchedulerConfig, shutdown: CancellationToken) -> Result<()> {
    let secure = !cfg.ephemeral && crate::auth::is_initialised(&cfg.data_dir);
    if !secure {
        if !cfg.listen.ip().is_loopback() {
            bail!(
                "refusing to serve plaintext gRPC on {}: {} was not initialised with TLS (run `trawl-scheduler init --data {}`); without TLS only loopback addresses (127.0.0.1, ::1) are allowed",
                cfg.listen,
                cfg.data_dir.display(),
                cfg.data_dir.display()
            );
        }
        tracing::warn!(
            "INSECURE: serving plaintext gRPC WITHOUT TLS OR AUTHENTICATION on {} (loopback only); run `trawl-scheduler init --data {}` for TLS, tokens and roles",
            cfg.listen,
            cfg.data_dir.display()
        );
        eprintln!(
            "trawl-scheduler: WARNING: insecure mode: no TLS, no authentication, every local caller is admin (loopback only)"
        );
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let http = match cfg.http {
        Some(a) => {
            if !secure {
                bail!(
                    "--http: the dashboard needs a data directory initialised with `trawl-scheduler init --data {}` (users sign in with their tokens over TLS)",
                    cfg.data_dir.display()
                );
            }
            Some(
                TcpListener::bind(a)
                    .await
                    .with_context(|| format!("binding the dashboard address {a}"))?,
            )
        }
        None => None,
    };
    let metrics = match cfg.metrics_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the metrics address {a}"))?,
        ),
        None => None,
    };
    let health = match cfg.health_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the health address {a}"))?,
        ),
        None => None,
    };
    let sched = Scheduler::open(cfg).context("opening the scheduler state")?;
    if let Some(l) = health {
        // Health alone, plaintext: SERVING once the state is open, until
        // shutdown.
        let addr = l.local_addr()?;
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        println!("trawl-scheduler health on {addr}");
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
            let not_serving = async move {
                stop.cancelled().await;
                reporter
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
            };
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, not_serving)
                .await
            {
                tracing::error!(error = %e, "health endpoint stopped");
            }
        });
    }
    if let Some(l) = metrics {
        let addr = l.local_addr()?;
        println!("trawl-scheduler metrics on http://{addr}/metrics");
        let (s2, stop) = (sched.clone(), shutdown.clone());
        tokio::spawn(async move {
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let s = s2.clone();
                    async move {
                        let body = tokio::task::spawn_blocking(move || s.metrics_text())
                            .await
                            .unwrap_or_default();
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            body,
                        )
                    }
                }),
            );
            if let Err(e) = axum::serve(l, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
            {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        });
    }
    if let Some(l) = http {
        let addr = l.local_addr()?;
        println!("trawl-scheduler dashboard on https://{addr}");
        let (s2, stop) = (sched.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::web::serve(s2, l, stop).await {
                tracing::error!(error = %format!("{e:#}"), "dashboard stopped");
            }
        });
    }
    if secure {
        tracing::info!(
            "TLS required; clients authenticate with bearer tokens, workers with enrolled certificates"
        );
    }
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "scheduler listening");
    // A machine-readable line for supervisors and tests (port 0 binds any).
    println!("trawl-scheduler listening on {addr}");
    serve(sched, listener, shutdown).await
}
