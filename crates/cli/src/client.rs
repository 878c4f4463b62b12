//! gRPC client helpers shared by the commands and the embedded scan.

use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_stream::StreamExt;
use trawl_proto::connect::{AuthChannel, ConnectOptions};
use trawl_proto::convert::job_state_name;
use trawl_proto::v1::{
    self, admin_client::AdminClient, cluster_client::ClusterClient,
    evidence_client::EvidenceClient, intel_client::IntelClient, jobs_client::JobsClient,
    reports_client::ReportsClient, rules_client::RulesClient,
};
use trawl_report::JobResults;

/// Connections to one scheduler.
#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub jobs: JobsClient<AuthChannel>,
    pub evidence: EvidenceClient<AuthChannel>,
    pub cluster: ClusterClient<AuthChannel>,
    pub rules: RulesClient<AuthChannel>,
    pub admin: AdminClient<AuthChannel>,
    pub intel: IntelClient<AuthChannel>,
    pub reports: ReportsClient<AuthChannel>,
}

const MAX_MSG: usize = 1 << 30;

impl Client {
    /// Connects (lazily) to an uninitialised scheduler at `url`, without
    /// TLS or token.
    pub fn new(url: &str) -> Result<Self> {
        Self::connect(&ConnectOptions {
            url: url.into(),
            ..Default::default()
        })
    }

    /// Connects (lazily) as `opts` say: TLS with the lab CA, a bearer token.
    pub fn connect(opts: &ConnectOptions) -> Result<Self> {
        let ch = opts.auth_channel().map_err(|e| anyhow!(e))?;
        Ok(Self::over(opts.full_url(), ch))
    }

    /// Calls over a ready channel, without a token: the embedded scan's
    /// in-process transport. `label` stands for the URL in messages.
    pub fn with_channel(label: &str, channel: tonic::transport::Channel) -> Self {
        Self::over(
            label.to_string(),
            trawl_proto::connect::without_token(channel),
        )
    }

    fn over(url: String, ch: AuthChannel) -> Self {
        Self {
            url,
            jobs: JobsClient::new(ch.clone())
                .max_decoding_message_size(MAX_MSG)
                .max_encoding_message_size(MAX_MSG),
            evidence: EvidenceClient::new(ch.clone()).max_decoding_message_size(16 << 20),
            cluster: ClusterClient::new(ch.clone()).max_decoding_message_size(MAX_MSG),
            rules: RulesClient::new(ch.clone())
                .max_decoding_message_size(MAX_MSG)
                .max_encoding_message_size(MAX_MSG),
            admin: AdminClient::new(ch.clone()),
            intel: IntelClient::new(ch.clone()).max_decoding_message_size(MAX_MSG),
            reports: ReportsClient::new(ch).max_decoding_message_size(MAX_MSG),
        }
    }

    /// A job.
    pub async fn job(&self, id: &str) -> Result<v1::Job> {
        Ok(self
            .jobs
            .clone()
            .get_job(v1::GetJobRequest { job_id: id.into() })
            .await
            .map_err(status_err)?
            .into_inner())
    }

    /// Every results page of a job, reassembled.
    pub async fn results(&self, id: &str) -> Result<(v1::Job, JobResults)> {
        let mut stream = self
            .jobs
            .clone()
            .get_results(v1::GetResultsRequest {
                job_id: id.into(),
                page_size: 0,
            })
            .await
            .map_err(status_err)?
            .into_inner();
        let mut pages = Vec::new();
        while let Some(p) = stream.next().await {
            pages.push(p.map_err(status_err)?);
        }
        let (job, r) = trawl_scheduler::results::from_pages(pages).map_err(|e| anyhow!(e))?;
        Ok((job.ok_or_else(|| anyhow!("results without the job"))?, r))
    }

    /// Waits for a job to end, calling `on_event` with every update.
    pub async fn follow(
        &self,
        id: &str,
        mut on_event: impl FnMut(&v1::Job, &str),
    ) -> Result<v1::Job> {
        loop {
            let mut stream = match self
                .jobs
                .clone()
                .watch_job(v1::WatchJobRequest { job_id: id.into() })
                .await
            {
                Ok(s) => s.into_inner(),
                Err(s) if s.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(s) => return Err(status_err(s)),
            };
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => {
                        if let Some(j) = ev.job {
                            on_event(&j, &ev.message);
                            if is_final(j.state) {
                                return Ok(j);
                            }
                        }
                    }
                    Err(_) => break,
                }
            }
            // The stream ended early (scheduler restart): resubscribe.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Whether a wire job state is final.
pub fn is_final(state: i32) -> bool {
    matches!(job_state_name(state), "completed" | "failed" | "cancelled")
}

/// A gRPC status as a one-line error.
pub fn status_err(s: tonic::Status) -> anyhow::Error {
    // The whole cause chain: the transport's reason is often in a source.
    let mut chain = s.message().to_string();
    let mut src = std::error::Error::source(&s);
    while let Some(e) = src {
        chain.push_str(&format!(": {e}"));
        src = e.source();
    }
    match s.code() {
        tonic::Code::Unavailable
            if chain.contains("NoApplicationProtocol")
                || chain.contains("no application protocol") =>
        {
            anyhow!(
                "server unavailable: that address is the scheduler's web dashboard (HTTPS for browsers), not its gRPC port: give --server the address of the scheduler's --listen"
            )
        }
        tonic::Code::Unavailable => {
            let hint = if s.message().contains("tls") || s.message().contains("certificate") {
                ""
            } else {
                " (is the scheduler running at that address? does it need https:// and --ca?)"
            };
            anyhow!("server unavailable: {}{hint}", s.message())
        }
        tonic::Code::Unauthenticated => anyhow!(
            "not authenticated: {} (give a valid token: --token, TRAWL_TOKEN or the client config)",
            s.message()
        ),
        // The scheduler's message may already say so.
        tonic::Code::PermissionDenied if s.message().starts_with("permission denied") => {
            anyhow!("{}", s.message())
        }
        tonic::Code::PermissionDenied => anyhow!("permission denied: {}", s.message()),
        c => anyhow!("{} ({:?})", s.message(), c),
    }
}

/// Absolute paths (evidence paths must be readable by every node).
/// The path as the investigator gave it, made absolute without following
/// symbolic links (`.` and `..` resolved by name): the job records the path
/// submitted; the scheduler checks where it really leads.
pub fn absolute(paths: &[PathBuf]) -> Result<Vec<String>> {
    paths
        .iter()
        .map(|p| {
            // Object locators go to the scheduler as given (its nodes read
            // them); `file:///x` is the path `/x`.
            let s = p.to_string_lossy();
            let named = trawl_evidence::remote::locator_path(&s).map_err(|e| anyhow!("{e}"))?;
            if trawl_evidence::is_remote(Path::new(&named)) {
                return Ok(named);
            }
            let p = &PathBuf::from(named);
            std::fs::metadata(p).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow!("{}: evidence not found", p.display())
                } else {
                    anyhow!("{}: {e}", p.display())
                }
            })?;
            let abs = std::path::absolute(p).map_err(|e| anyhow!("{}: {e}", p.display()))?;
            let mut out = PathBuf::new();
            for c in abs.components() {
                match c {
                    std::path::Component::CurDir => {}
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    c => out.push(c),
                }
            }
            Ok(out.display().to_string())
        })
        .collect()
}

/// Uploads a file to the evidence store (resuming a cut upload), returning
/// its BLAKE3. `progress` gets (sent, total).
pub async fn upload(
    client: &Client,
    path: &Path,
    case: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let p2 = path.to_path_buf();
    let (digest, size) = tokio::task::spawn_blocking(move || -> Result<(String, u64)> {
        let mut f = std::fs::File::open(&p2).with_context(|| format!("{}", p2.display()))?;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let k = f.read(&mut buf)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
        }
        Ok((h.finalize().to_hex().to_string(), n))
    })
    .await??;
    let mut attempts = 0;
    loop {
        let st = match client
            .evidence
            .clone()
            .upload_status(v1::UploadStatusRequest {
                blake3: digest.clone(),
                case_id: case.to_string(),
            })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::Unavailable && attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(s) => bail!("upload of {}: {}", path.display(), status_err(s)),
        };
        if st.complete {
            progress(size, size);
            return Ok(digest);
        }
        let offset = st.received;
        let (tx, rx) = tokio::sync::mpsc::channel::<v1::UploadChunk>(4);
        let header = v1::UploadChunk {
            part: Some(v1::upload_chunk::Part::Header(v1::UploadHeader {
                blake3: digest.clone(),
                size,
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                offset,
                case_id: case.to_string(),
            })),
        };
        let p2 = path.to_path_buf();
        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let reader = tokio::task::spawn_blocking(move || -> Result<()> {
            let mut f = std::fs::File::open(&p2)?;
            f.seek(SeekFrom::Start(offset))?;
            if tx.blocking_send(header).is_err() {
                return Ok(());
            }
            let mut sent = offset;
            loop {
                let mut buf = vec![0u8; 1 << 20];
                let k = f.read(&mut buf)?;
                if k == 0 {
                    return Ok(());
                }
                buf.truncate(k);
                if tx
                    .blocking_send(v1::UploadChunk {
                        part: Some(v1::upload_chunk::Part::Data(buf)),
                    })
                    .is_err()
                {
                    return Ok(());
                }
                sent += k as u64;
                let _ = ptx.send(sent);
            }
        });
        let mut ev = client.evidence.clone();
        let call = tokio::spawn(async move {
            ev.upload_evidence(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        });
        while let Some(sent) = prx.recv().await {
            progress(sent, size);
        }
        reader.await??;
        match call.await? {
            Ok(r) => {
                let got = r.into_inner().digest;
                if got != digest {
                    bail!(
                        "upload of {}: the scheduler stored {got}, not the file's BLAKE3 {digest}",
                        path.display()
                    );
                }
                return Ok(got);
            }
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::Aborted
                        | tonic::Code::Unknown
                        | tonic::Code::Cancelled
                ) && attempts < 20 =>
            {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(s) => bail!("upload of {}: {}", path.display(), status_err(s)),
        }
    }
}
