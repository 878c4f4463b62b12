//! Writing the report directory.

use crate::JobResults;
use crate::paths::{NameError, Refused, RelPath, ReportDir};
use serde_json::json;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why a report directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A name refused as a report path where the file is created.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Names of the results refused before anything was written.
    #[error("{refused}; nothing was written to {}", dir.display())]
    Refused { dir: PathBuf, refused: Refused },
    #[error("{0}")]
    Other(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the report directory for `results` into `dir`. Carved files are
/// copied out of `evidence` (their bytes are ranges of the image); without
/// it only their manifest is written.
///
/// Every name of the results that becomes a path is checked first
/// ([`crate::paths::check_names`]): when one is refused (a forged feature
/// recorder, carved type or extension, YARA target), the whole results set
/// is refused and nothing is written, not even `dir`; the error names each
/// refused record, field and value. Every file is then created through
/// [`ReportDir`], which checks each name again.
///
/// # Errors
/// Refused names; file-system errors, naming the file; evidence read
/// errors.
pub fn write_report_dir(
    dir: &Path,
    results: &JobResults,
    evidence: Option<&dyn trawl_evidence::Evidence>,
) -> Result<(), ReportError> {
    crate::paths::check_names(results).map_err(|refused| ReportError::Refused {
        dir: dir.to_path_buf(),
        refused,
    })?;
    let dir = ReportDir::new(dir);
    let dir = &dir;
    dir.create_root()?;
    // The parts are independent files: written in parallel, the carved
    // files (the bulk) spreading over the pool themselves.
    // Which file holds each finding: one index over the listing's runs.
    let attr = crate::attrib::Attribution::of(results);
    let attr = attr.as_ref();
    let parts: [&(dyn Fn() -> Result<(), ReportError> + Sync); 8] = [
        &|| crate::files::write(dir, results),
        &|| crate::carved::write(dir, results, evidence, attr),
        &|| crate::features::write(dir, results, attr),
        &|| crate::case::write(dir, results, attr),
        &|| crate::dfxml::write(dir, results, attr),
        &|| crate::yara::write(dir, results, attr),
        &|| write_piecewise(dir, results),
        &|| write_report_json(dir, results),
    ];
    use rayon::prelude::*;
    parts.par_iter().enumerate().try_for_each(|(i, w)| {
        let t = std::time::Instant::now();
        let r = w();
        tracing::debug!(
            part = i,
            ms = t.elapsed().as_millis() as u64,
            "report part written"
        );
        r
    })
}

/// Creates report file `rel` (a fixed name of the writer, such as
/// `report.json`, or one built by a [`RelPath`] constructor) for writing.
///
/// # Errors
/// As [`ReportDir::create_file`].
pub(crate) fn create_file(
    dir: &ReportDir,
    rel: &str,
) -> Result<(PathBuf, BufWriter<fs::File>), ReportError> {
    let rel = RelPath::parse("report file", rel)?;
    let (path, f) = dir.create_file(&rel)?;
    Ok((path, BufWriter::new(f)))
}

/// Maps an I/O error on `path`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    io(path)
}

fn write_piecewise(dir: &ReportDir, r: &JobResults) -> Result<(), ReportError> {
    if r.piecewise.is_empty() && r.hashes.blake3.is_none() {
        return Ok(());
    }
    let (path, w) = create_file(dir, "hashes/piecewise.csv")?;
    let mut w = trawl_core::csv::Writer::new(w);
    let with_md5 = r.piecewise.iter().any(|p| !p.md5.is_empty());
    let header: &[&str] = if with_md5 {
        &["offset", "length", "blake3", "md5"]
    } else {
        &["offset", "length", "blake3"]
    };
    w.row(header).map_err(io(&path))?;
    for p in &r.piecewise {
        let (offset, length) = (p.offset.to_string(), p.length.to_string());
        let mut cells = vec![offset.as_str(), &length, &p.blake3];
        if with_md5 {
            cells.push(&p.md5);
        }
        w.row(cells).map_err(io(&path))?;
    }
    w.into_inner()
        .and_then(|mut b| b.flush())
        .map_err(io(&path))
}

fn write_report_json(dir: &ReportDir, r: &JobResults) -> Result<(), ReportError> {
    let counts = crate::counts(r);
    let virtual_size = ["qcow2", "vmdk", "vhd", "vhdx"]
        .contains(&r.evidence.format.as_str())
        .then_some(r.evidence.size);
    let doc = json!({
        "tool": { "name": r.provenance.tool, "version": r.provenance.version },
        "job_id": r.job_id,
        "case_id": r.case_id,
        "state": r.state,
        "evidence": {
            "path": r.evidence.path,
            "size": r.evidence.size,
            "format": r.evidence.format,
            // A virtual-machine disk: its size is the virtual disk's (what
            // was hashed and scanned); `segments` are the container files
            // read, `metadata` the container's own (descriptor, ids).
            "virtual_size": virtual_size,
            "segments": r.evidence.segments,
            "stored_hashes": { "md5": r.evidence.stored_md5, "sha1": r.evidence.stored_sha1 },
            "metadata": r.evidence.metadata,
            "acquisition_errors": r.evidence.acquisition_errors.iter()
                .map(|(s, n)| json!({"first_sector": s, "sectors": n})).collect::<Vec<_>>(),
            "upload_blake3": r.evidence.upload_blake3,
        },
        "hashes": {
            "md5": r.hashes.md5,
            "sha1": r.hashes.sha1,
            "sha256": r.hashes.sha256,
            "blake3": r.hashes.blake3,
            "computed_at": r.hashes.computed_at,
        },
        "verification": r.verification,
        "custody": custody(r),
        "piecewise": {
            "window": r.piecewise_window,
            "windows": r.piecewise.len(),
            "md5": r.piecewise.iter().any(|p| !p.md5.is_empty()),
            "file": if r.piecewise.is_empty() { None } else { Some("hashes/piecewise.csv") },
        },
        "counts": counts,
        "files": crate::files::summary_json(r),
        "stats": r.stats,
        "notes": r.notes,
        "limitations": r.limitations,
        "timings": r.timings,
        "provenance": r.provenance,
        "errors": r.errors,
    });
    let (path, mut w) = create_file(dir, "report.json")?;
    serde_json::to_writer_pretty(&mut w, &doc)
        .map_err(|e| ReportError::Other(format!("{}: {e}", path.display())))?;
    w.write_all(b"\n").map_err(io(&path))?;
    w.flush().map_err(io(&path))
}

/// The evidence's chain of custody as far as this report can state it:
/// the acquisition hashes stored by the imaging tool (and when it imaged),
/// the upload verified by the scheduler (when and by whom), and the
/// verification hashes computed here (when, and whether they match).
fn custody(r: &JobResults) -> serde_json::Value {
    let m = &r.evidence.metadata;
    let acquisition =
        if r.evidence.stored_md5.is_some() || r.evidence.stored_sha1.is_some() || !m.is_empty() {
            json!({
                "hashes": { "md5": r.evidence.stored_md5, "sha1": r.evidence.stored_sha1 },
                "acquired_at": m.get("acquiry_date"),
                "software": m.get("acquiry_software_version"),
                "examiner": m.get("examiner_name"),
            })
        } else {
            serde_json::Value::Null
        };
    let received = r.evidence.upload_blake3.as_ref().map(|d| {
        json!({ "blake3": d, "verified_at": r.evidence.upload_verified_at, "uploaded_by": r.evidence.uploaded_by })
    });
    let matches = if r.verification.is_empty() {
        None
    } else {
        Some(r.verification.iter().all(|v| v.matches))
    };
    json!({
        "acquisition": acquisition,
        "received": received,
        "verification": {
            "hashes": { "md5": r.hashes.md5, "sha1": r.hashes.sha1, "sha256": r.hashes.sha256, "blake3": r.hashes.blake3 },
            "computed_at": r.hashes.computed_at,
            "matches_acquisition": matches,
        },
    })
}
