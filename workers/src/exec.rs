//! Running one task: open the evidence (cached per job), build the job's
//! analyzers (cached per job), read the shard plus margin once, run the
//! analyses on the rayon pool (bridged with a oneshot; a panic becomes a
//! task error, never a dead worker).

use crate::convert::shard_result;
use crate::remote::RemoteEvidence;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tokio::runtime::Handle;
use tonic::transport::Channel;
use trawl_analyzers::{JobAnalyzers, hash};
use trawl_core::{JobSpec, Shard};
use trawl_evidence::SharedEvidence;
use trawl_proto::v1;

/// A job's evidence, and its remote reader when not read locally.
type JobEvidence = (SharedEvidence, Option<Arc<RemoteEvidence>>);

/// Shared state of a worker's executors.
pub struct ExecContext {
    pub pool: Arc<rayon::ThreadPool>,
    pub evidence_roots: Vec<PathBuf>,
    pub evidence_client: trawl_proto::v1::evidence_client::EvidenceClient<Channel>,
    pub rt: Handle,
    evidence: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<JobEvidence>>>>,
    analyzers: Mutex<HashMap<String, Arc<JobAnalyzers>>>,
}

const CACHE_JOBS: usize = 32;

impl ExecContext {
    pub fn new(
        pool: Arc<rayon::ThreadPool>,
        evidence_roots: Vec<PathBuf>,
        evidence_client: trawl_proto::v1::evidence_client::EvidenceClient<Channel>,
        rt: Handle,
    ) -> Self {
        Self {
            pool,
            evidence_roots,
            evidence_client,
            rt,
            evidence: Mutex::new(HashMap::new()),
            analyzers: Mutex::new(HashMap::new()),
        }
    }

    fn readable_locally(&self, paths: &[String]) -> bool {
        !paths.is_empty()
            && paths.iter().all(|p| {
                let p = Path::new(p);
                p.is_file()
                    && (self.evidence_roots.is_empty()
                        || self.evidence_roots.iter().any(|r| p.starts_with(r)))
            })
    }

    /// The job's evidence: local (mmap) when every segment is readable here,
    /// otherwise read through the scheduler.
    async fn evidence(&self, task: &v1::Task) -> Result<JobEvidence, String> {
        // One open per job, even when several of its tasks start at once.
        let cell = {
            let mut c = self.evidence.lock();
            if c.len() >= CACHE_JOBS && !c.contains_key(&task.job_id) {
                c.clear();
            }
            c.entry(task.job_id.clone()).or_default().clone()
        };
        let r = cell
            .get_or_try_init(|| self.open_evidence(task))
            .await
            .cloned();
        if r.is_err() {
            self.evidence.lock().remove(&task.job_id);
        }
        r
    }

    async fn open_evidence(&self, task: &v1::Task) -> Result<JobEvidence, String> {
        let info = task.evidence.clone().ok_or("task without evidence info")?;
        if self.readable_locally(&info.segments) {
            let paths: Vec<PathBuf> = info.segments.iter().map(PathBuf::from).collect();
            let ev = tokio::task::spawn_blocking(move || trawl_evidence::open_segments(&paths))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if ev.size() != info.size {
                return Err(format!(
                    "{}: evidence is {} bytes here, {} when the job was planned",
                    info.path,
                    ev.size(),
                    info.size
                ));
            }
            Ok((ev, None))
        } else {
            let r = Arc::new(RemoteEvidence::new(
                &task.job_id,
                info.size,
                &info.path,
                self.evidence_client.clone(),
                self.rt.clone(),
            ));
            Ok((r.clone() as SharedEvidence, Some(r)))
        }
    }

    fn analyzers(&self, task: &v1::Task, size: u64) -> Result<Arc<JobAnalyzers>, String> {
        if let Some(a) = self.analyzers.lock().get(&task.job_id) {
            return Ok(a.clone());
        }
        let spec = task.spec.as_ref().ok_or("task without job spec")?;
        let spec = JobSpec::try_from(spec).map_err(|e| e.to_string())?;
        let plan = spec.plan(size).map_err(|e| e.to_string())?;
        let a = Arc::new(JobAnalyzers::build(&spec, plan).map_err(|e| e.to_string())?);
        let mut c = self.analyzers.lock();
        if c.len() >= CACHE_JOBS {
            c.clear();
        }
        c.insert(task.job_id.clone(), a.clone());
        Ok(a)
    }

    /// Forgets a job's cached evidence and analyzers.
    pub fn forget(&self, job_id: &str) {
        self.evidence.lock().remove(job_id);
        self.analyzers.lock().remove(job_id);
    }

    /// Runs a task to its wire result, or an error message.
    pub async fn execute(
        &self,
        task: &v1::Task,
        cancel: Arc<AtomicBool>,
    ) -> Result<v1::TaskResult, String> {
        let started = Instant::now();
        let (ev, remote) = self.evidence(task).await?;
        match v1::TaskKind::try_from(task.kind) {
            Ok(v1::TaskKind::Shard) => {
                let s = task.shard.as_ref().ok_or("shard task without a range")?;
                let shard = Shard {
                    index: s.index,
                    start: s.start,
                    end: s.end,
                    scan_end: s.scan_end,
                };
                if shard.end > ev.size()
                    || shard.scan_end > ev.size()
                    || shard.start > shard.end
                    || shard.end > shard.scan_end
                {
                    return Err(format!(
                        "shard {} range {}..{} invalid for {} bytes",
                        shard.index,
                        shard.start,
                        shard.scan_end,
                        ev.size()
                    ));
                }
                let analyzers = self.analyzers(task, ev.size())?;
                let prefetched = match &remote {
                    Some(r) => Some(
                        r.fetch(shard.start, shard.scan_len())
                            .await
                            .map_err(|e| e.to_string())?,
                    ),
                    None => None,
                };
                let (tx, rx) = tokio::sync::oneshot::channel();
                let task_id = task.task_id.clone();
                let span = tracing::info_span!("shard", task = %task_id, job = %task.job_id);
                self.pool.spawn(move || {
                    let _g = span.enter();
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let region;
                        let data: &[u8] = match &prefetched {
                            Some(d) => d,
                            None => {
                                region = ev
                                    .region(shard.start, shard.scan_end)
                                    .map_err(|e| e.to_string())?;
                                &region
                            }
                        };
                        let out = analyzers
                            .scan_shard(ev.as_ref(), &shard, data, &cancel)
                            .map_err(|e| e.to_string());
                        ev.release(shard.start, shard.scan_end);
                        out
                    }));
                    let out = match run {
                        Ok(r) => r,
                        Err(p) => Err(format!("analysis panicked: {}", panic_message(&p))),
                    };
                    let _ = tx.send(out);
                });
                let out = rx.await.map_err(|_| "worker pool stopped".to_string())??;
                Ok(shard_result(
                    &task.task_id,
                    shard.index,
                    &out,
                    started.elapsed().as_millis() as u64,
                ))
            }
            Ok(v1::TaskKind::StreamHash) => {
                let span = tracing::info_span!("stream", task = %task.task_id, job = %task.job_id);
                let ev2 = ev.clone();
                let s = tokio::task::spawn_blocking(move || {
                    let _g = span.enter();
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        hash::stream_hash(ev2.as_ref(), &|_| {}, &cancel).map_err(|e| e.to_string())
                    }))
                    .unwrap_or_else(|p| Err(format!("stream hash panicked: {}", panic_message(&p))))
                })
                .await
                .map_err(|e| e.to_string())??;
                Ok(v1::TaskResult {
                    task_id: task.task_id.clone(),
                    stream: Some(v1::StreamHashes {
                        md5: s.md5,
                        sha1: s.sha1,
                        sha256: s.sha256,
                        bytes: s.bytes,
                    }),
                    bytes_scanned: s.bytes,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    ..Default::default()
                })
            }
            _ => Err(format!(
                "task kind {} is not supported by this worker",
                task.kind
            )),
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}
