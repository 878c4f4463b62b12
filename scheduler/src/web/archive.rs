//! The report directory of a job as a tar archive, for download.

use crate::core::Scheduler;
use trawl_report::ReportError;
use trawl_report::paths::{RelPath, ReportDir};

/// Writes the job's report directory (the `trawl results` layout, carved
/// files included) and packs it as `trawl-JOB/...` into a temporary tar
/// file, deleted when the returned handle drops.
///
/// The report is written by [`trawl_report::write_report_dir`], which
/// refuses results carrying a name that cannot be a report path (a forged
/// feature scanner or carved type) before writing anything. Every entry
/// name of the archive is built from a checked [`RelPath`] of the report
/// folder ([`ReportDir::list`]) under a checked top folder, and every file
/// packed is read from [`ReportDir::file`]'s path.
///
/// # Errors
/// The job is unknown or not finished, its evidence cannot be opened, a
/// name is refused, or a write fails.
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
                .open_evidence(&job.job_id, &job.spec)
                .map_err(|e| e.to_string())?,
        )
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    trawl_report::write_report_dir(dir.path(), &results, evidence.as_deref()).map_err(|e| {
        match e {
            // The scheduler's temporary folder is none of the reader's business.
            ReportError::Refused { refused, .. } => format!("{refused}; no report was written"),
            e => e.to_string(),
        }
    })?;
    pack(&ReportDir::new(dir.path()), &format!("trawl-{job_id}"))
}

/// Packs report folder `dir` as `TOP/...` into a temporary tar file
/// (deterministic headers, entries in name order).
///
/// # Errors
/// A `top` or a name in the folder that cannot be a report path, a
/// symbolic link in the folder, or a write failing.
pub fn pack(dir: &ReportDir, top: &str) -> Result<tempfile::NamedTempFile, String> {
    let top_rel = RelPath::name("archive folder", top).map_err(|e| e.to_string())?;
    let entries = dir.list().map_err(|e| e.to_string())?;
    let tmp = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut b = tar::Builder::new(tmp.reopen().map_err(|e| e.to_string())?);
    b.mode(tar::HeaderMode::Deterministic);
    b.append_dir(top_rel.as_str(), dir.root())
        .map_err(|e| format!("{}: {e}", top_rel))?;
    for (rel, is_dir) in entries {
        let name = rel
            .under("archive folder", top)
            .map_err(|e| e.to_string())?;
        let src = dir.file(&rel).map_err(|e| e.to_string())?;
        if is_dir {
            b.append_dir(name.as_str(), &src)
        } else {
            b.append_path_with_name(&src, name.as_str())
        }
        .map_err(|e| format!("{}: {e}", src.display()))?;
    }
    b.into_inner()
        .and_then(|mut f| std::io::Write::flush(&mut f))
        .map_err(|e| e.to_string())?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(f: &tempfile::NamedTempFile) -> Vec<String> {
        let mut a = tar::Archive::new(std::fs::File::open(f.path()).unwrap());
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    /// The dashboard's archive of forged results: the writer refuses them
    /// before anything is written, so there is nothing to pack, and
    /// nothing appears outside the report folder.
    #[test]
    fn forged_names_are_neither_written_nor_packed() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("a/b/report");
        let mut r = trawl_report::JobResults::default();
        for (i, name) in ["../../../x", "/tmp/x", "email"].iter().enumerate() {
            r.features.push(trawl_core::Feature {
                scanner: (*name).into(),
                offset: i as u64,
                path: i.to_string(),
                feature: b"a@b.c".to_vec(),
                context: Vec::new(),
                utf16: false,
            });
        }
        let e = trawl_report::write_report_dir(&out, &r, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("2 names in the results cannot be report paths: feature 0 (offset 0): feature scanner \"../../../x\" refused: contains a path separator"),
            "{e}"
        );
        assert!(
            e.contains("feature 1 (offset 1): feature scanner \"/tmp/x\""),
            "{e}"
        );
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    /// Entry names come from the checked relative paths of the folder:
    /// everything written is packed under the top folder, a top folder
    /// that is not one plain name is refused, and so is a symbolic link.
    #[test]
    fn entries_are_checked_report_paths_under_the_top_folder() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("report");
        let mut r = trawl_report::JobResults::default();
        r.features.push(trawl_core::Feature {
            scanner: "email".into(),
            offset: 3,
            path: "3".into(),
            feature: b"a@b.c".to_vec(),
            context: Vec::new(),
            utf16: false,
        });
        trawl_report::write_report_dir(&out, &r, None).unwrap();
        let d = ReportDir::new(&out);
        let tar = pack(&d, "trawl-job-1").unwrap();
        assert_eq!(
            entries(&tar),
            [
                "trawl-job-1",
                "trawl-job-1/case.jsonld",
                "trawl-job-1/dfxml.xml",
                "trawl-job-1/features",
                "trawl-job-1/features/email.txt",
                "trawl-job-1/features/email_histogram.txt",
                "trawl-job-1/report.json",
            ]
        );
        for top in ["..", "../x", "/tmp/x", "a/b", "", "x\0"] {
            let e = pack(&d, top).unwrap_err();
            assert!(e.starts_with("archive folder "), "{top:?}: {e}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", out.join("features/passwd")).unwrap();
            let e = pack(&d, "trawl-job-1").unwrap_err();
            assert!(e.contains("symbolic link"), "{e}");
        }
    }
}
