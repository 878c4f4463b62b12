//! Serving the scheduler: gRPC services, health, reflection, the lease
//! reaper, graceful shutdown.

use crate::config::SchedulerConfig;
use crate::core::Scheduler;
use crate::service::{ClusterService, EvidenceService, JobsService, RulesService};
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trawl_proto::v1::rules_server::RulesServer;
use trawl_proto::v1::{
    cluster_server::ClusterServer, evidence_server::EvidenceServer, jobs_server::JobsServer,
};

/// Largest client request (a job with its inline rule sets).
const MAX_CLIENT_REQUEST: usize = 64 << 20;

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
                _ = t.tick() => reaper_sched.expire_leases(),
            }
        }
    });

    // Accepted connections get TCP_NODELAY (the builder's setting only applies
    // to listeners it binds itself): small gRPC frames must not wait for
    // delayed ACKs.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |s| {
            s.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        },
    );
    let result = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health)
        .add_service(reflection)
        .add_service(
            JobsServer::new(JobsService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(MAX_CLIENT_REQUEST)
            .max_encoding_message_size(max),
        )
        .add_service(
            ClusterServer::new(ClusterService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            RulesServer::new(RulesService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(MAX_CLIENT_REQUEST)
            .max_encoding_message_size(MAX_CLIENT_REQUEST),
        )
        .add_service(
            EvidenceServer::new(EvidenceService {
                sched: sched.clone(),
            })
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20),
        )
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
        .await;
    reaper.abort();
    let _ = sched.store().flush();
    result.context("gRPC server")
}

/// Opens the scheduler described by `cfg`, binds its address and serves
/// until `shutdown`. Plaintext is only allowed on loopback addresses.
///
/// # Errors
/// Bad configuration, the address in use, the data directory unusable.
pub async fn run(cfg: SchedulerConfig, shutdown: CancellationToken) -> Result<()> {
    if !cfg.listen.ip().is_loopback() {
        bail!(
            "refusing to serve plaintext gRPC on {}: without TLS only loopback addresses (127.0.0.1, ::1) are allowed",
            cfg.listen
        );
    }
    tracing::warn!(
        "INSECURE: serving plaintext gRPC without authentication on {} (loopback only)",
        cfg.listen
    );
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let sched = Scheduler::open(cfg).context("opening the scheduler state")?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "scheduler listening");
    // A machine-readable line for supervisors and tests (port 0 binds any).
    println!("trawl-scheduler listening on {addr}");
    serve(sched, listener, shutdown).await
}
