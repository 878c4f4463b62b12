//! The report directory of a job as a tar archive, for download.

use crate::core::Scheduler;

/// Writes the job's report directory (the `trawl results` layout, carved
/// files included) and packs it as `trawl-JOB/...` into a temporary tar
/// file, deleted when the returned handle drops.
///
/// # Errors
/// The job is unknown or not finished, its evidence cannot be opened, or a
/// write fails.
pub fn report_tar(sched: &Scheduler, job_id: &str) -> Result<tempfile::NamedTempFile, String> {
    let job = sched.job(job_id).map_err(|e| e.to_string())?;
    if !job.state.is_final() {
        return Err(format!("job {job_id} is not finished yet"));
    }
    let page = sched.results(job_id).map_err(|e| e.to_string())?;
    let (_, results) = crate::results::from_pages(vec![page])?;
    let evidence = if results.carved.is_empty() {
        None
    } else {
        Some(
            sched
                .open_evidence(job_id, &job.spec)
                .map_err(|e| e.to_string())?,
        )
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    trawl_report::write_report_dir(dir.path(), &results, evidence.as_deref())
        .map_err(|e| e.to_string())?;
    let tmp = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut b = tar::Builder::new(tmp.reopen().map_err(|e| e.to_string())?);
    b.mode(tar::HeaderMode::Deterministic);
    b.append_dir_all(format!("trawl-{job_id}"), dir.path())
        .map_err(|e| e.to_string())?;
    b.into_inner()
        .and_then(|mut f| std::io::Write::flush(&mut f))
        .map_err(|e| e.to_string())?;
    Ok(tmp)
}
