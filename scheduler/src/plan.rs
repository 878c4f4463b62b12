//! Planning a job: open the evidence, record its size and format, cut it
//! into shards, create the tasks.

use crate::core::Scheduler;
use crate::error::SchedError;
use trawl_core::{JobId, JobSpec, ShardPlan};
use trawl_store::{EvidenceMeta, TaskKind, TaskRecord, TaskState};

/// The evidence facts, the plan and the tasks of a job.
pub(crate) fn plan_job(
    sched: &Scheduler,
    job_id: &JobId,
    spec: &JobSpec,
) -> Result<(EvidenceMeta, ShardPlan, Vec<TaskRecord>), SchedError> {
    let ev = sched.open_evidence(job_id, spec)?;
    let info = ev.info();
    let plan = spec
        .plan(info.size)
        .map_err(|e| SchedError::InvalidArgument(e.to_string()))?;
    sched.check_task_count(info.size, spec.shard_size)?;
    let mut meta = EvidenceMeta {
        path: info.path.display().to_string(),
        segments: info
            .segments
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        size: info.size,
        format: info.format.name().to_string(),
        stored_md5: info.stored.md5.clone(),
        stored_sha1: info.stored.sha1.clone(),
        metadata: info.metadata.clone(),
        acquisition_errors: info
            .acquisition_errors
            .iter()
            .map(|e| (e.first_sector, e.sector_count))
            .collect(),
        upload_blake3: match &spec.evidence {
            trawl_core::spec::EvidenceRef::Upload(d) => Some(d.clone()),
            _ => None,
        },
        carve_space: None,
    };
    let task = |kind, index: u32, order: u32, shard, bytes| TaskRecord {
        task_id: Scheduler::task_id(job_id, kind, index),
        job_id: job_id.clone(),
        kind,
        shard,
        order,
        state: TaskState::Queued,
        attempts: 0,
        worker: None,
        lease_deadline_ms: 0,
        lease_token: String::new(),
        errors: Vec::new(),
        failed_on: Vec::new(),
        bytes,
        first_lease_seq: 0,
        findings: Default::default(),
        yara_candidates: Vec::new(),
        yara_spans_known: Vec::new(),
        yara_windows: Vec::new(),
        carved: Vec::new(),
        finished_ms: 0,
        fs_files: Vec::new(),
        fs_names: Vec::new(),
    };
    let mut tasks = Vec::new();
    if spec.analyses.hash && !spec.hash.skip_stream {
        tasks.push(task(TaskKind::StreamHash, 0, 0, None, info.size));
    }
    for s in plan.shards() {
        tasks.push(task(
            TaskKind::Shard,
            s.index,
            s.index + 1,
            Some(s),
            s.len(),
        ));
    }
    // The YARA step that needs every shard first (see trawl_analyzers::yara):
    // waiting until the shards are done. Carved files are scanned by the
    // shards that carve them (YARA_CARVED tasks remain for jobs planned by
    // earlier versions).
    let n = plan.len();
    if spec.analyses.yara {
        let mut t = task(TaskKind::YaraWhole, 0, n + 1, None, 0);
        t.state = TaskState::Waiting;
        tasks.push(t);
    }
    // File systems: listed here, once (the metadata is small next to the
    // contents); the contents are hashed by the workers in groups of
    // bounded bytes, each group a task.
    if spec.analyses.files {
        // Hash sets are read by the scheduler: only from where this case's
        // evidence may be read.
        let conf = sched.confinement_for(spec.case_id.as_str());
        for p in spec.files.known.iter().chain(&spec.files.notable) {
            conf.check_path(std::path::Path::new(p))?;
        }
        let planned = trawl_analyzers::files::list(ev.as_ref())
            .map_err(|e| SchedError::InvalidArgument(format!("listing the file systems: {e}")))?;
        let task_bytes = match spec.files.task_bytes {
            0 => trawl_core::spec::DEFAULT_FILES_TASK_BYTES,
            b => b,
        };
        let groups = trawl_analyzers::files::groups(&planned, task_bytes);
        sched.store.put_listing(job_id, &planned.listing)?;
        if spec.carve.unallocated_only {
            // Carved: each file system's unallocated space and what lies
            // outside them, end to end (blkls's stream), by every shard.
            let space = trawl_attrib::CarveSpace::of(&planned.listing.summary, info.size);
            meta.carve_space = Some(space.ranges);
        }
        for (i, g) in groups.into_iter().enumerate() {
            let bytes = g.iter().map(|(_, c)| c.size()).sum();
            let mut t = task(TaskKind::FsHash, i as u32, n + 2 + i as u32, None, bytes);
            t.fs_names = g
                .iter()
                .map(|(index, _)| {
                    planned
                        .listing
                        .records
                        .get(*index as usize)
                        .map(|r| (r.partition_offset, r.path.clone()))
                        .unwrap_or_default()
                })
                .collect();
            t.fs_files = g;
            tasks.push(t);
        }
    }
    Ok((meta, plan, tasks))
}
