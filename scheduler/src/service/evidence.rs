//! The Evidence service: uploads (resumable, deduplicated per case) and
//! remote reads of an image's bytes.

use super::{
    BoxStream, Call, MAX_ID, MAX_READ_RANGE, async_stream_job, bounded, check_id, check_upload_name,
};
use crate::auth::{Perm, Role};
use crate::core::Scheduler;
use crate::error::SchedError;
use std::sync::Arc;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use trawl_proto::v1::{self, evidence_server::Evidence};
use trawl_store::now_ms;

/// Evidence store and remote reads.
#[derive(Clone, Debug)]
pub struct EvidenceService {
    pub sched: Arc<Scheduler>,
}

#[tonic::async_trait]
impl Evidence for EvidenceService {
    async fn upload_evidence(
        &self,
        req: Request<Streaming<v1::UploadChunk>>,
    ) -> Result<Response<v1::UploadResponse>, Status> {
        let call = Call::of(&req)?;
        let caller = call.caller.clone();
        let mut stream = req.into_inner();
        let header = match stream.next().await {
            Some(Ok(v1::UploadChunk {
                part: Some(v1::upload_chunk::Part::Header(h)),
            })) => h,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Status::invalid_argument(
                    "the first upload message must be the header",
                ));
            }
        };
        bounded("case_id", &header.case_id, MAX_ID)?;
        bounded("blake3", &header.blake3, 64)?;
        bounded("name", &header.name, 255)?;
        call.case(&self.sched, &header.case_id, &header.blake3)?;
        if let Err(why) = check_upload_name(&header.name) {
            self.sched.audit(
                &caller,
                "evidence.upload.rejected",
                &header.blake3,
                &header.case_id,
                why.clone(),
            );
            return Err(Status::invalid_argument(why));
        }
        let max = self.sched.config().max_upload_bytes;
        let sched = self.sched.clone();
        let digest = crate::evidence_store::check_digest(&header.blake3)?;
        // The upload runs on a blocking thread, fed through a channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
        let h2 = header.clone();
        let caller2 = caller.clone();
        let worker = tokio::task::spawn_blocking(move || -> Result<(bool, u64), SchedError> {
            let Some(mut session) = sched.uploads.begin(&h2.blake3, h2.size, h2.offset, max)?
            else {
                // Already stored. The same case (or an admin) needs no bytes;
                // another case must prove it holds the content: the whole
                // stream is hashed and must equal the digest.
                let d = h2.blake3.to_ascii_lowercase();
                let mut rec = sched.store.evidence(&d)?;
                let known = rec
                    .as_ref()
                    .is_none_or(|r| caller2.all_cases() || r.belongs_to(&h2.case_id));
                if known {
                    while rx.blocking_recv().is_some() {}
                    return Ok((true, h2.size));
                }
                let mut h = blake3::Hasher::new();
                let mut n = 0u64;
                while let Some(data) = rx.blocking_recv() {
                    h.update(&data);
                    n += data.len() as u64;
                }
                if h2.offset != 0 || n != h2.size || h.finalize().to_hex().as_str() != d {
                    return Err(SchedError::PermissionDenied(format!(
                        "upload {d} belongs to another case: send the whole content from offset 0 to attach it to case {:?}",
                        h2.case_id
                    )));
                }
                if let Some(r) = rec.as_mut() {
                    r.other_cases.push(h2.case_id.clone());
                    sched.store.put_evidence(r)?;
                }
                return Ok((true, h2.size));
            };
            // A partial upload belongs to the case that started it: its
            // status is answered to that case only.
            let d = h2.blake3.to_ascii_lowercase();
            if sched.store.evidence(&d)?.is_none() {
                sched.store.put_evidence(&trawl_store::EvidenceRecord {
                    blake3: d.clone(),
                    size: h2.size,
                    name: h2.name.clone(),
                    case_id: h2.case_id.clone(),
                    uploader: caller2.user.clone(),
                    received: 0,
                    complete: false,
                    created_ms: now_ms(),
                    completed_ms: 0,
                    other_cases: Vec::new(),
                })?;
            }
            while let Some(data) = rx.blocking_recv() {
                session.write(&data)?;
            }
            if !session.is_complete() {
                return Ok((false, session.received()));
            }
            session.finish()?;
            // The case that started the upload keeps it; another case that
            // finished it is attached only if it sent every byte.
            let started = sched.store.evidence(&d)?;
            let mut rec = trawl_store::EvidenceRecord {
                blake3: d.clone(),
                size: h2.size,
                name: h2.name.clone(),
                case_id: h2.case_id.clone(),
                uploader: caller2.user.clone(),
                received: h2.size,
                complete: true,
                created_ms: now_ms(),
                completed_ms: now_ms(),
                other_cases: Vec::new(),
            };
            if let Some(s) = started.filter(|s| s.case_id != h2.case_id) {
                rec.case_id = s.case_id;
                rec.name = s.name;
                rec.uploader = s.uploader;
                rec.created_ms = s.created_ms;
                rec.other_cases = s.other_cases;
                if h2.offset == 0 {
                    rec.other_cases.push(h2.case_id.clone());
                }
            }
            sched.store.put_evidence(&rec)?;
            Ok((false, h2.size))
        });
        let mut stream_err = None;
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(v1::UploadChunk {
                    part: Some(v1::upload_chunk::Part::Data(d)),
                }) => {
                    if tx.send(d).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {
                    stream_err = Some(Status::invalid_argument(
                        "only data may follow the upload header",
                    ));
                    break;
                }
                Err(e) => {
                    stream_err = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let outcome = worker.await.map_err(|e| Status::internal(e.to_string()))?;
        let (dedup, size) = match outcome {
            Ok(v) => v,
            Err(e) => {
                self.sched.audit(
                    &caller,
                    "evidence.upload.rejected",
                    &digest,
                    &header.case_id,
                    e.to_string(),
                );
                return Err(e.into());
            }
        };
        if let Some(e) = stream_err {
            return Err(e);
        }
        let (received, complete) = self.sched.uploads.received(&digest)?;
        if !complete {
            return Err(Status::aborted(format!(
                "upload of {digest} incomplete: {received} of {} bytes received; resume at offset {received}",
                header.size
            )));
        }
        self.sched.audit(
            &caller,
            "evidence.upload",
            &digest,
            &header.case_id,
            format!("name={:?} size={size} dedup={dedup}", header.name),
        );
        Ok(Response::new(v1::UploadResponse {
            digest,
            size,
            deduplicated: dedup,
        }))
    }

    async fn upload_status(
        &self,
        req: Request<v1::UploadStatusRequest>,
    ) -> Result<Response<v1::UploadStatusResponse>, Status> {
        let call = Call::of(&req)?;
        let r = req.into_inner();
        let d = crate::evidence_store::check_digest(&r.blake3)?;
        bounded("case_id", &r.case_id, MAX_ID)?;
        call.case(&self.sched, &r.case_id, &d)?;
        let caller = call.caller;
        // Another case's upload is answered as an unknown one.
        let mine = caller.all_cases()
            || self
                .sched
                .store()
                .evidence(&d)
                .map_err(SchedError::from)?
                .is_some_and(|e| e.belongs_to(&r.case_id));
        let (received, complete) = if mine {
            self.sched.uploads.received(&d)?
        } else {
            (0, false)
        };
        Ok(Response::new(v1::UploadStatusResponse {
            received,
            complete,
        }))
    }

    type ReadRangeStream = BoxStream<v1::ReadRangeChunk>;

    async fn read_range(
        &self,
        req: Request<v1::ReadRangeRequest>,
    ) -> Result<Response<Self::ReadRangeStream>, Status> {
        // Workers read the shards they lease; clients read the carved files
        // of the jobs they may read (`trawl results` without the mount).
        let call = Call::of(&req)?;
        let caller = &call.caller;
        let r = req.into_inner();
        let job = if caller.may(Perm::Work, "") {
            check_id("job_id", &r.job_id)?;
            if caller.role == Role::Worker
                && let Err(e) =
                    self.sched
                        .worker_may_read(&caller.user, &r.job_id, r.offset, r.length)
            {
                self.sched.audit(
                    caller,
                    "denied",
                    &r.job_id,
                    "",
                    format!("read bytes {}+{}: {e}", r.offset, r.length),
                );
                return Err(e.into());
            }
            self.sched.job(&r.job_id)?
        } else {
            let job = call.job(&self.sched, &r.job_id)?;
            self.sched.audit(
                caller,
                "evidence.read",
                &job.job_id,
                job.spec.case_id.as_str(),
                format!("bytes {}+{}", r.offset, r.length),
            );
            job
        };
        if r.length > MAX_READ_RANGE {
            return Err(Status::invalid_argument(format!(
                "length {} exceeds {MAX_READ_RANGE}",
                r.length
            )));
        }
        let sched = self.sched.clone();
        let ev = tokio::task::spawn_blocking(move || sched.open_evidence(&job.job_id, &job.spec))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        let size = ev.size();
        if r.offset > size {
            return Err(Status::out_of_range(format!(
                "offset {} is past the end ({size} bytes)",
                r.offset
            )));
        }
        let end = r.offset.saturating_add(r.length).min(size);
        let start = r.offset;
        let stream = async_stream_job(move |tx| async move {
            let mut off = start;
            while off < end {
                let n = (end - off).min(1 << 20) as usize;
                let ev2 = ev.clone();
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; n];
                    ev2.read_exact_at(off, &mut buf).map(|_| buf)
                })
                .await;
                let msg = match read {
                    Ok(Ok(data)) => Ok(v1::ReadRangeChunk { offset: off, data }),
                    Ok(Err(e)) => Err(Status::data_loss(e.to_string())),
                    Err(e) => Err(Status::internal(e.to_string())),
                };
                let stop = msg.is_err();
                if tx.send(msg).await.is_err() || stop {
                    return;
                }
                off += n as u64;
            }
        });
        Ok(Response::new(stream))
    }
}
