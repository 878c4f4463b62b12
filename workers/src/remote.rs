//! Evidence read from the scheduler (`Evidence.ReadRange`) for workers
//! without the shared mount.

use std::path::PathBuf;
use tokio::runtime::Handle;
use tokio_stream::StreamExt;
use trawl_evidence::{Evidence, EvidenceError, EvidenceInfo, Format, StoredHashes};
use trawl_proto::connect::AuthChannel as Channel;
use trawl_proto::v1::{ReadRangeRequest, evidence_client::EvidenceClient};

/// A job's evidence, read over gRPC.
#[derive(Debug)]
pub struct RemoteEvidence {
    info: EvidenceInfo,
    job_id: String,
    client: EvidenceClient<Channel>,
    rt: Handle,
}

impl RemoteEvidence {
    /// A remote view of `job_id`'s evidence of `size` bytes.
    pub fn new(
        job_id: &str,
        size: u64,
        path: &str,
        client: EvidenceClient<Channel>,
        rt: Handle,
    ) -> Self {
        Self {
            info: EvidenceInfo {
                path: PathBuf::from(path),
                segments: vec![PathBuf::from(path)],
                size,
                format: Format::Raw,
                stored: StoredHashes::default(),
                metadata: Default::default(),
                acquisition_errors: Vec::new(),
                bytes_per_sector: 512,
            },
            job_id: job_id.to_string(),
            client,
            rt,
        }
    }

    /// Reads `[offset, offset + len)` (clamped) asynchronously.
    ///
    /// # Errors
    /// Transport errors and refused reads.
    pub async fn fetch(&self, offset: u64, len: u64) -> Result<Vec<u8>, EvidenceError> {
        let err = |e: String| EvidenceError::Io {
            path: self.info.path.clone(),
            offset,
            source: std::io::Error::other(format!("remote read of job {}: {e}", self.job_id)),
        };
        let mut client = self.client.clone();
        let mut stream = client
            .read_range(ReadRangeRequest {
                job_id: self.job_id.clone(),
                offset,
                length: len,
            })
            .await
            .map_err(|s| err(s.message().to_string()))?
            .into_inner();
        let mut out = Vec::with_capacity(len.min(1 << 30) as usize);
        while let Some(chunk) = stream.next().await {
            let c = chunk.map_err(|s| err(s.message().to_string()))?;
            if c.offset != offset + out.len() as u64 {
                return Err(err(format!("chunk at {} out of order", c.offset)));
            }
            out.extend_from_slice(&c.data);
        }
        Ok(out)
    }
}

impl Evidence for RemoteEvidence {
    fn info(&self) -> &EvidenceInfo {
        &self.info
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EvidenceError> {
        if offset >= self.info.size || buf.is_empty() {
            return Ok(0);
        }
        // Called from rayon threads, never from the runtime's own.
        let data = self.rt.block_on(self.fetch(offset, buf.len() as u64))?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }
}
