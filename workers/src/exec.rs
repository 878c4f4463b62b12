//! Running one task: open the evidence (cached per job), build the job's
//! analyzers (cached per job), read the shard plus margin once, run the
//! analyses on the rayon pool (bridged with a oneshot; a panic becomes a
//! task error, never a dead worker).

use crate::remote::RemoteEvidence;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tokio::runtime::Handle;
use trawl_analyzers::{JobAnalyzers, hash, yara};
use trawl_core::spec::RuleSource;
use trawl_core::{JobSpec, Shard};
use trawl_evidence::SharedEvidence;
use trawl_proto::connect::AuthChannel as Channel;
use trawl_proto::convert::shard_result;
use trawl_proto::v1;

/// A job's evidence, and its remote reader when not read locally.
type JobEvidence = (SharedEvidence, Option<Arc<RemoteEvidence>>);

/// Shared state of a worker's executors.
pub struct ExecContext {
    pub pool: Arc<rayon::ThreadPool>,
    confinement: trawl_evidence::Confinement,
    pub evidence_client: trawl_proto::v1::evidence_client::EvidenceClient<Channel>,
    pub rules_client: trawl_proto::v1::rules_client::RulesClient<Channel>,
    pub rt: Handle,
    evidence: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<JobEvidence>>>>,
    analyzers: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<JobAnalyzers>>>>>,
    /// Digests of the rule sets compiled here recently (newest last), told
    /// to the scheduler with each heartbeat (the capacity map).
    rule_sets: Mutex<std::collections::VecDeque<String>>,
}

const CACHE_JOBS: usize = 32;

impl ExecContext {
    pub fn new(
        pool: Arc<rayon::ThreadPool>,
        evidence_roots: Vec<PathBuf>,
        evidence_client: trawl_proto::v1::evidence_client::EvidenceClient<Channel>,
        rules_client: trawl_proto::v1::rules_client::RulesClient<Channel>,
        rt: Handle,
    ) -> Self {
        let no_exclusions: [&Path; 0] = [];
        Self {
            pool,
            confinement: trawl_evidence::Confinement::new(&evidence_roots, &no_exclusions),
            evidence_client,
            rules_client,
            rt,
            evidence: Mutex::new(HashMap::new()),
            analyzers: Mutex::new(HashMap::new()),
            rule_sets: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// The rule sets compiled here recently.
    pub fn rule_sets(&self) -> Vec<String> {
        self.rule_sets.lock().iter().cloned().collect()
    }

    /// Whether every segment resolves (symbolic links followed) under this
    /// node's evidence roots, or is an object under one of its allowed
    /// buckets/prefixes (read from the store directly). A node without
    /// roots reads nothing itself: everything comes through the scheduler,
    /// which confines it.
    fn readable_locally(&self, paths: &[String]) -> bool {
        !paths.is_empty()
            && paths.iter().all(|p| {
                let p = Path::new(p);
                let reachable = if trawl_evidence::is_remote(p) {
                    trawl_evidence::remote::has_remote_backend()
                } else {
                    p.is_file()
                };
                reachable && self.confinement.check_path(p).is_ok()
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
            // Checked again on the files as opened.
            let conf = self.confinement.clone();
            let ev = tokio::task::spawn_blocking(move || conf.open_segments(&paths))
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

    /// A job's YARA rules: fetched from the scheduler by digest, the digest
    /// checked, compiled once per process.
    async fn rules(&self, digest: &str, strict: bool) -> Result<Arc<yara::RuleSet>, String> {
        let mut client = self.rules_client.clone();
        let set = client
            .get_rule_set(v1::GetRuleSetRequest {
                name: digest.to_string(),
            })
            .await
            .map_err(|s| format!("fetching rule set {digest}: {}", s.message()))?
            .into_inner();
        let sources: Vec<RuleSource> = set
            .sources
            .into_iter()
            .map(|s| RuleSource {
                name: s.name,
                text: s.text,
            })
            .collect();
        let got = yara::digest(&sources);
        if got != digest {
            return Err(format!(
                "rule set digest mismatch: asked for {digest}, received {got}"
            ));
        }
        let set = tokio::task::spawn_blocking(move || yara::rule_set(&sources, strict))
            .await
            .map_err(|e| e.to_string())?;
        let mut known = self.rule_sets.lock();
        known.retain(|d| d != digest);
        known.push_back(digest.to_string());
        while known.len() > CACHE_JOBS {
            known.pop_front();
        }
        Ok(set)
    }

    /// The job's analyzers, built once per job even when several of its
    /// tasks start at once.
    async fn analyzers(
        &self,
        task: &v1::Task,
        ev: &SharedEvidence,
    ) -> Result<Arc<JobAnalyzers>, String> {
        let cell = {
            let mut c = self.analyzers.lock();
            if c.len() >= CACHE_JOBS && !c.contains_key(&task.job_id) {
                c.clear();
            }
            c.entry(task.job_id.clone()).or_default().clone()
        };
        let r = cell
            .get_or_try_init(|| self.build_analyzers(task, ev))
            .await
            .cloned();
        if r.is_err() {
            self.analyzers.lock().remove(&task.job_id);
        }
        r
    }

    async fn build_analyzers(
        &self,
        task: &v1::Task,
        ev: &SharedEvidence,
    ) -> Result<Arc<JobAnalyzers>, String> {
        let spec = task.spec.as_ref().ok_or("task without job spec")?;
        let spec = JobSpec::try_from(spec).map_err(|e| e.to_string())?;
        let plan = spec.plan(ev.size()).map_err(|e| e.to_string())?;
        let rules = if spec.analyses.yara {
            let set = if spec.yara.sources.is_empty() {
                self.rules(&spec.yara.ruleset_digest, spec.yara.strict)
                    .await?
            } else {
                let (src, strict) = (spec.yara.sources.clone(), spec.yara.strict);
                tokio::task::spawn_blocking(move || yara::rule_set(&src, strict))
                    .await
                    .map_err(|e| e.to_string())?
            };
            let ev = ev.clone();
            let prepared = tokio::task::spawn_blocking(move || set.for_image(ev.as_ref()))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            Some(Arc::new(prepared))
        } else {
            None
        };
        Ok(Arc::new(
            JobAnalyzers::build_with_rules(&spec, plan, rules).map_err(|e| e.to_string())?,
        ))
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
                let analyzers = self.analyzers(task, &ev).await?;
                let prefetched = match &remote {
                    Some(r) => Some(
                        r.fetch(shard.start, shard.scan_len())
                            .await
                            .map_err(|e| e.to_string())?,
                    ),
                    None => None,
                };
                // --carve-scope unallocated: the space to carve (checked by
                // the carver: sorted, disjoint, inside the image).
                let carve_space: Option<Vec<(u64, u64)>> = task
                    .carve_restricted
                    .then(|| task.carve_space.iter().map(|r| (r.start, r.end)).collect());
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
                            .scan_shard(ev.as_ref(), &shard, data, carve_space.as_deref(), &cancel)
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
            Ok(v1::TaskKind::YaraWhole) => {
                let analyzers = self.analyzers(task, &ev).await?;
                let (rules, limits) = analyzers
                    .yara()
                    .cloned()
                    .ok_or("a YARA task for a job without YARA")?;
                let mut candidates: Vec<(String, String)> = task
                    .yara_candidates
                    .iter()
                    .map(|r| (r.namespace.clone(), r.rule.clone()))
                    .collect();
                let spans_known: std::collections::HashSet<(String, String)> = task
                    .yara_candidates
                    .iter()
                    .filter(|r| r.spans_known)
                    .map(|r| (r.namespace.clone(), r.rule.clone()))
                    .collect();
                let windows: Vec<(u64, u64)> =
                    task.yara_windows.iter().map(|r| (r.start, r.end)).collect();
                let task_hits: std::collections::HashSet<(String, String)> =
                    candidates.iter().cloned().collect();
                candidates.extend(rules.always_rules().iter().cloned());
                let rules_for_notes = rules.clone();
                candidates.sort();
                candidates.dedup();
                let span =
                    tracing::info_span!("yara-whole", task = %task.task_id, job = %task.job_id);
                let cancel = cancel.clone();
                let block = task
                    .spec
                    .as_ref()
                    .map(|s| s.shard_size)
                    .filter(|&s| s > 0)
                    .unwrap_or(64 << 20);
                let (matches, notes) = self
                    .on_pool(move || {
                        let _g = span.enter();
                        if candidates.is_empty() {
                            return Ok((Vec::new(), Vec::new()));
                        }
                        // Conditions on pattern matches alone: block by
                        // block, in bounded memory; the rest on the image as
                        // one buffer.
                        let (blocks, whole_only) = rules.split_whole(&candidates);
                        // Only around the matches the shards listed, when
                        // they listed every match of these rules (rules
                        // without any hit have none to list).
                        // Rules whose occurrences the shards could not
                        // report are read everywhere.
                        let listed = blocks.iter().all(|k| {
                            rules.occurrences_known(&k.0, &k.1)
                                && (spans_known.contains(k) || !task_hits.contains(k))
                        });
                        let (mut matches, mut notes) = rules
                            .scan_blocks(
                                ev.as_ref(),
                                block,
                                &blocks,
                                listed.then_some(windows.as_slice()),
                                limits,
                                &cancel,
                            )
                            .map_err(|e| e.to_string())?;
                        if !whole_only.is_empty() {
                            let whole = whole_image(ev.as_ref())?;
                            let (m, n) = rules
                                .scan_whole(&whole, &whole_only, limits)
                                .map_err(|e| e.to_string())?;
                            matches.extend(m);
                            notes.extend(n);
                        }
                        Ok((matches, notes))
                    })
                    .await?;
                let mut notes: Vec<trawl_core::Note> = notes;
                notes.extend(rules_for_notes.diagnostic_notes());
                Ok(v1::TaskResult {
                    task_id: task.task_id.clone(),
                    yara: matches.iter().map(Into::into).collect(),
                    notes: notes.iter().map(Into::into).collect(),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    ..Default::default()
                })
            }
            Ok(v1::TaskKind::YaraCarved) => {
                let analyzers = self.analyzers(task, &ev).await?;
                let (rules, limits) = analyzers
                    .yara()
                    .cloned()
                    .ok_or("a YARA task for a job without YARA")?;
                let carved: Vec<trawl_core::CarvedFile> =
                    task.carved.iter().map(Into::into).collect();
                let span =
                    tracing::info_span!("yara-carved", task = %task.task_id, job = %task.job_id);
                let trawl_analyzers::yara::CarvedScan {
                    matches,
                    notes,
                    bytes,
                    ..
                } = self
                    .on_pool(move || {
                        let _g = span.enter();
                        rules
                            .scan_carved(ev.as_ref(), (0, &[]), &carved, None, limits, &cancel)
                            .map_err(|e| e.to_string())
                    })
                    .await?;
                Ok(v1::TaskResult {
                    task_id: task.task_id.clone(),
                    yara: matches.iter().map(Into::into).collect(),
                    notes: notes.iter().map(Into::into).collect(),
                    bytes_scanned: bytes,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    ..Default::default()
                })
            }
            Ok(v1::TaskKind::FsHash) => {
                let files = task
                    .fs_files
                    .iter()
                    .map(|f| {
                        let c = f
                            .content
                            .as_ref()
                            .ok_or_else(|| format!("file {} without content", f.index))?;
                        trawl_fs::Content::try_from(c)
                            .map(|c| (f.index, c))
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                let bytes: u64 = files.iter().map(|(_, c)| c.size()).sum();
                // With YARA in the job, each named file is also scanned as
                // a file (tasks planned before the per-file scan carry no
                // names).
                let analyzers = self.analyzers(task, &ev).await?;
                let yara = match analyzers.yara() {
                    Some((rules, limits)) if task.fs_files.iter().all(|f| !f.path.is_empty()) => {
                        Some((rules.set().clone(), *limits))
                    }
                    _ => None,
                };
                let named: Vec<trawl_analyzers::files::NamedContent> = if yara.is_some() {
                    task.fs_files
                        .iter()
                        .zip(&files)
                        .map(|(f, (index, c))| trawl_analyzers::files::NamedContent {
                            index: *index,
                            content: c.clone(),
                            partition_offset: f.partition_offset,
                            path: f.path.clone(),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let span = tracing::info_span!("files", task = %task.task_id, job = %task.job_id);
                let (hashes, scan, (features, feature_notes)) = self
                    .on_pool(move || {
                        let _g = span.enter();
                        let h = trawl_analyzers::files::hash_files(ev.as_ref(), &files, &cancel);
                        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                            return Err("cancelled".to_string());
                        }
                        let scan = match yara {
                            Some((rules, limits)) => trawl_analyzers::files::yara_files(
                                ev.as_ref(),
                                &named,
                                &rules,
                                limits,
                                &cancel,
                            )?,
                            None => Default::default(),
                        };
                        // Features of the files the raw pass cannot read
                        // as they lie (fragmented, sparse, compressed).
                        let features = match analyzers.features() {
                            Some(sc) => trawl_analyzers::files::features_files(
                                ev.as_ref(),
                                &files,
                                sc,
                                &cancel,
                            )?,
                            None => Default::default(),
                        };
                        Ok((h, scan, features))
                    })
                    .await?;
                Ok(v1::TaskResult {
                    task_id: task.task_id.clone(),
                    file_hashes: hashes.iter().map(Into::into).collect(),
                    yara: scan.matches.iter().map(Into::into).collect(),
                    features: features.iter().map(Into::into).collect(),
                    notes: scan
                        .notes
                        .iter()
                        .chain(&feature_notes)
                        .map(Into::into)
                        .collect(),
                    bytes_scanned: bytes,
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

impl ExecContext {
    /// Runs CPU work on the analysis pool, bridged back with a oneshot; a
    /// panic becomes an error.
    async fn on_pool<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|p| Err(format!("analysis panicked: {}", panic_message(&p))));
            let _ = tx.send(r);
        });
        rx.await.map_err(|_| "worker pool stopped".to_string())?
    }
}

/// The whole image as one buffer for the YARA whole-image step: the mapping
/// itself for raw images; otherwise a temporary raw copy (mapped), so even
/// a large E01 is not held in memory.
fn whole_image(ev: &dyn trawl_evidence::Evidence) -> Result<WholeImage<'_>, String> {
    let size = ev.size();
    if let Some(m) = ev.mapped(0, size as usize) {
        return Ok(WholeImage::Mapped(m));
    }
    if size <= 256 << 20 {
        let mut v = vec![0u8; size as usize];
        ev.read_exact_at(0, &mut v).map_err(|e| e.to_string())?;
        return Ok(WholeImage::Owned(v));
    }
    let mut tmp =
        tempfile::NamedTempFile::new().map_err(|e| format!("temporary copy for YARA: {e}"))?;
    let mut buf = vec![0u8; 8 << 20];
    let mut off = 0u64;
    while off < size {
        let n = (size - off).min(buf.len() as u64) as usize;
        ev.read_exact_at(off, &mut buf[..n])
            .map_err(|e| e.to_string())?;
        std::io::Write::write_all(&mut tmp, &buf[..n])
            .map_err(|e| format!("temporary copy for YARA: {e}"))?;
        off += n as u64;
    }
    let raw = trawl_evidence::RawEvidence::open(tmp.path()).map_err(|e| e.to_string())?;
    Ok(WholeImage::Temp { raw, _file: tmp })
}

enum WholeImage<'a> {
    Mapped(&'a [u8]),
    Owned(Vec<u8>),
    /// The mapped copy, and the temporary file it lives in (deleted on drop).
    Temp {
        raw: trawl_evidence::RawEvidence,
        _file: tempfile::NamedTempFile,
    },
}

impl std::ops::Deref for WholeImage<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            WholeImage::Mapped(m) => m,
            WholeImage::Owned(v) => v,
            WholeImage::Temp { raw, .. } => {
                use trawl_evidence::Evidence;
                raw.mapped(0, raw.size() as usize).unwrap_or(&[])
            }
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
