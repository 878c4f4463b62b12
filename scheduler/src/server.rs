//! Serving the scheduler: gRPC services, health, reflection, the lease
//! reaper, graceful shutdown.

use crate::admin::AdminService;
use crate::config::SchedulerConfig;
use crate::core::{Caller, Scheduler};
use crate::service::{ClusterService, EvidenceService, JobsService, RulesService};
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};
use trawl_proto::v1::admin_server::AdminServer;
use trawl_proto::v1::rules_server::RulesServer;
use trawl_proto::v1::{
    cluster_server::ClusterServer, evidence_server::EvidenceServer, jobs_server::JobsServer,
};

/// Largest client request (a job with its inline rule sets).
const MAX_CLIENT_REQUEST: usize = 64 << 20;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Authenticates every call of the trawl services: on an initialised
/// scheduler a bearer token or an enrolled worker certificate (refusals are
/// audited), otherwise the local caller.
#[derive(Clone)]
struct Authn {
    sched: Arc<Scheduler>,
}

impl tonic::service::Interceptor for Authn {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let peer = req
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        let caller = match self.sched.authenticator() {
            None => Caller::local(peer),
            Some(a) => {
                let authorization = req
                    .metadata()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or("(not text)"));
                let certs = req.peer_certs();
                match a.authenticate(authorization, certs.as_deref().map(|c| c.as_slice()), &peer) {
                    Ok(c) => c,
                    Err(r) => {
                        self.sched.audit_refusal(&r.who, &peer, &r.reason);
                        return Err(Status::unauthenticated(r.reason));
                    }
                }
            }
        };
        req.extensions_mut().insert(caller);
        Ok(req)
    }
}

/// TLS connections of `listener`: each handshake runs on its own task (a
/// slow or hostile client cannot stall the others); failed handshakes (no
/// TLS, a certificate the CA did not sign) are audited and dropped.
pub(crate) fn tls_incoming(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    sched: Arc<Scheduler>,
    shutdown: CancellationToken,
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

/// Serves `sched` on an already bound listener until `shutdown`.
///
/// # Errors
/// Transport failures.
pub async fn serve(
    sched: Arc<Scheduler>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
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
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(trawl_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

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

    // Accepted connections get TCP_NODELAY (the builder's setting only applies
    // to listeners it binds itself): small gRPC frames must not wait for
    // delayed ACKs.
    let authn = Authn {
        sched: sched.clone(),
    };
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health)
        .add_service(reflection)
        .add_service(InterceptedService::new(
            JobsServer::new(JobsService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(MAX_CLIENT_REQUEST)
            .max_encoding_message_size(max),
            authn.clone(),
        ))
        .add_service(InterceptedService::new(
            ClusterServer::new(ClusterService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
            authn.clone(),
        ))
        .add_service(InterceptedService::new(
            RulesServer::new(RulesService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(MAX_CLIENT_REQUEST)
            .max_encoding_message_size(MAX_CLIENT_REQUEST),
            authn.clone(),
        ))
        .add_service(InterceptedService::new(
            EvidenceServer::new(EvidenceService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20),
            authn.clone(),
        ))
        .add_service(InterceptedService::new(
            AdminServer::new(AdminService {
                sched: sched.clone(),
            }),
            authn,
        ));
    let result = match sched.authenticator() {
        Some(a) => {
            let acceptor = a.tls_acceptor().context("loading the TLS identity")?;
            let incoming = tls_incoming(listener, acceptor, sched.clone(), shutdown.clone());
            router
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
                .await
        }
        None => {
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
    let sched = Scheduler::open(cfg).context("opening the scheduler state")?;
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
