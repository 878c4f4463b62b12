//! The carved files: `carved/TYPE/OFFSET.EXT`, their bytes copied out of
//! the evidence (a carved file is a range of the image, never shipped
//! between nodes), and `carved/manifest.csv`
//! (`offset,length,type,md5,sha256,validated,path`, then `file,placement`
//! when the file-system analysis ran: the file holding the first byte,
//! `*` before a deleted one's path, and
//! [`crate::attrib::Attribution::placement`]).

use crate::attrib::Attribution;
use crate::paths::{NameError, RelPath, ReportDir};
use crate::write::{create_file, io_err};
use crate::{JobResults, ReportError};
use std::io::{Seek, Write};
use std::path::Path;
use trawl_core::CarvedFile;

/// Bytes copied per read.
const CHUNK: u64 = 8 << 20;

/// The report path of a carved file (`carved/TYPE/OFFSET.EXT`).
///
/// # Errors
/// A type or extension the carver does not give (a forged name such as
/// `../x`): refused, never rewritten into another name.
pub(crate) fn path_of(f: &CarvedFile) -> Result<RelPath, NameError> {
    RelPath::carved_file(&f.file_type, f.offset, &f.extension)
}

/// Writes this part of the report directory.
pub(crate) fn write(
    dir: &ReportDir,
    r: &JobResults,
    evidence: Option<&dyn trawl_evidence::Evidence>,
    attr: Option<&Attribution<'_>>,
) -> Result<(), ReportError> {
    let ran = r.provenance.analyses.iter().any(|a| a == "carve");
    if r.carved.is_empty() && !ran {
        return Ok(());
    }
    let (mpath, m) = create_file(dir, "carved/manifest.csv")?;
    let mut m = trawl_core::csv::Writer::new(m);
    let mut head = vec![
        "offset",
        "length",
        "type",
        "md5",
        "sha256",
        "validated",
        "path",
    ];
    if attr.is_some() {
        head.extend(["file", "placement"]);
    }
    m.row(head).map_err(io_err(&mpath))?;
    let mut buf = Vec::new();
    let mut folders = std::collections::BTreeSet::new();
    for f in &r.carved {
        let rel = path_of(f)?;
        let (offset, length, validated) = (
            f.offset.to_string(),
            f.length.to_string(),
            f.validated.to_string(),
        );
        let mut row = vec![
            offset.as_str(),
            &length,
            &f.file_type,
            &f.md5,
            &f.sha256,
            &validated,
            rel.as_str(),
        ];
        let (file, placement);
        if let Some(a) = attr {
            file = match a.file_at(f.offset, &mut buf) {
                (_, _, Some(rec)) if rec.alloc != "allocated" => format!("*{}", rec.path),
                (_, _, Some(rec)) => rec.path.clone(),
                _ => String::new(),
            };
            placement = a.placement(f).text();
            row.extend([file.as_str(), placement.as_str()]);
        }
        m.row(row).map_err(io_err(&mpath))?;
        if let Some(parent) = rel.parent() {
            folders.insert(parent);
        }
    }
    m.flush().map_err(io_err(&mpath))?;
    if let Some(ev) = evidence {
        // Thousands of files: the folders once, then the copies in parallel
        // (file creation is most of the cost, and it scales with cores).
        for d in &folders {
            dir.create_dir(d)?;
        }
        use rayon::prelude::*;
        r.carved.par_iter().try_for_each(|f| {
            let (path, out) = dir.create_file(&path_of(f)?)?;
            copy_out(ev, f, out, &path)
        })?;
    }
    Ok(())
}

/// Copies a carved file's byte runs out of the evidence into `out`, the
/// file created at `path`.
fn copy_out(
    ev: &dyn trawl_evidence::Evidence,
    f: &CarvedFile,
    mut out: std::fs::File,
    path: &Path,
) -> Result<(), ReportError> {
    let mut runs = f.byte_runs.clone();
    if runs.is_empty() {
        runs.push(trawl_core::ByteRun {
            img_offset: f.offset,
            file_offset: 0,
            len: f.length,
        });
    }
    runs.sort_by_key(|r| r.file_offset);
    for run in &runs {
        let end = run.img_offset.checked_add(run.len).ok_or_else(|| {
            ReportError::Other(format!(
                "{}: byte run at {} overflows",
                path.display(),
                run.img_offset
            ))
        })?;
        if end > ev.size() {
            return Err(ReportError::Other(format!(
                "{}: byte run {}..{end} passes the end of the evidence ({} bytes)",
                path.display(),
                run.img_offset,
                ev.size()
            )));
        }
        // Inside the kernel when the evidence allows it (no mapping, no
        // page faults, no user-space copy).
        if let Some(done) = ev.copy_range_to(run.img_offset, end, &out, run.file_offset) {
            done.map_err(|err| {
                ReportError::Other(format!(
                    "{}: copying bytes {}..{end} of the evidence: {err}",
                    path.display(),
                    run.img_offset
                ))
            })?;
            continue;
        }
        let mut pos = run.img_offset;
        if let Err(err) = out.seek(std::io::SeekFrom::Start(run.file_offset)) {
            return Err(ReportError::Other(format!("{}: {err}", path.display())));
        }
        while pos < end {
            let e = (pos + CHUNK).min(end);
            let bytes = ev.region(pos, e).map_err(|err| {
                ReportError::Other(format!("{}: reading the evidence: {err}", path.display()))
            })?;
            out.write_all(&bytes).map_err(io_err(path))?;
            drop(bytes);
            // The pages were only copied: keep them out of this process.
            ev.release(pos, e);
            pos = e;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobResults;
    use trawl_core::ByteRun;

    fn carved(offset: u64, length: u64, ty: &str, ext: &str, validated: bool) -> CarvedFile {
        CarvedFile {
            offset,
            length,
            file_type: ty.into(),
            extension: ext.into(),
            validated,
            note: String::new(),
            md5: format!("md5-{offset}"),
            sha1: String::new(),
            sha256: format!("sha-{offset}"),
            byte_runs: vec![ByteRun {
                img_offset: offset,
                file_offset: 0,
                len: length,
            }],
        }
    }

    #[test]
    fn files_are_copied_out_of_the_evidence_with_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img.raw");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&img, &data).unwrap();
        let ev = trawl_evidence::open(&img).unwrap();
        let mut r = JobResults::default();
        r.provenance.analyses = vec!["carve".into()];
        r.carved = vec![
            carved(10, 20_000, "jpg", "jpg", true),
            carved(30_000, 70_000, "exe", "dll", false),
        ];
        // Two runs, out of order: the file is their concatenation in file order.
        r.carved[1].byte_runs = vec![
            ByteRun {
                img_offset: 60_000,
                file_offset: 30_000,
                len: 40_000,
            },
            ByteRun {
                img_offset: 30_000,
                file_offset: 0,
                len: 30_000,
            },
        ];
        let out = dir.path().join("report");
        std::fs::create_dir_all(&out).unwrap();
        write(&ReportDir::new(&out), &r, Some(ev.as_ref()), None).unwrap();
        assert_eq!(
            std::fs::read(out.join("carved/jpg/10.jpg")).unwrap(),
            &data[10..20_010]
        );
        let dll = std::fs::read(out.join("carved/exe/30000.dll")).unwrap();
        assert_eq!(dll, &data[30_000..100_000]);
        let m = std::fs::read_to_string(out.join("carved/manifest.csv")).unwrap();
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines[0], "offset,length,type,md5,sha256,validated,path");
        assert_eq!(
            lines[1],
            "10,20000,jpg,md5-10,sha-10,true,carved/jpg/10.jpg"
        );
        assert_eq!(
            lines[2],
            "30000,70000,exe,md5-30000,sha-30000,false,carved/exe/30000.dll"
        );
        assert_eq!(lines.len(), 3);
        // Without the evidence, only the manifest.
        let bare = dir.path().join("bare");
        write(&ReportDir::new(&bare), &r, None, None).unwrap();
        assert!(bare.join("carved/manifest.csv").exists());
        assert!(!bare.join("carved/jpg/10.jpg").exists());
        // A run past the end of the evidence is an error, not a short file.
        r.carved = vec![carved(99_000, 5_000, "jpg", "jpg", true)];
        assert!(
            write(
                &ReportDir::new(dir.path().join("bad")),
                &r,
                Some(ev.as_ref()),
                None
            )
            .is_err()
        );
    }

    /// The carved part alone (without the writer's first check of every
    /// name) still refuses forged types and extensions where it creates
    /// the files, and writes nowhere outside the report folder.
    #[test]
    fn forged_types_are_refused_where_the_files_are_created() {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("img.raw");
        std::fs::write(&img, vec![7u8; 4096]).unwrap();
        let ev = trawl_evidence::open(&img).unwrap();
        let out = t.path().join("a/b/out");
        for (ty, ext, field) in [
            ("../../../x", "jpg", "carved file type"),
            ("/tmp/x", "jpg", "carved file type"),
            ("..", "jpg", "carved file type"),
            ("jpg", "../x", "carved file extension"),
            ("jpg", "a/b", "carved file extension"),
            ("jp\0g", "jpg", "carved file type"),
            ("", "jpg", "carved file type"),
        ] {
            let r = JobResults {
                carved: vec![carved(5, 3, ty, ext, false)],
                ..Default::default()
            };
            let e = write(&ReportDir::new(&out), &r, Some(ev.as_ref()), None).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with(field), "{ty:?} {ext:?}: {msg}");
            assert!(
                msg.contains(&format!(
                    "{:?}",
                    if field.ends_with("type") { ty } else { ext }
                )),
                "{msg}"
            );
        }
        // Nothing but the (empty) manifest, and nothing beside DIR.
        assert!(!t.path().join("x").exists() && !t.path().join("a/x").exists());
        assert_eq!(std::fs::read_dir(t.path().join("a")).unwrap().count(), 1);
        assert_eq!(std::fs::read_dir(t.path().join("a/b")).unwrap().count(), 1);
        let inside: Vec<_> = std::fs::read_dir(out.join("carved"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(inside, ["manifest.csv"]);
    }
}
