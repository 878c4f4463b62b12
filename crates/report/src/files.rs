//! The file-system analysis' report files:
//!
//! ```text
//! DIR/files/files.jsonl      one object per file or directory
//! DIR/files/files.hashdeep   hashdeep's format (hashdeep -k / -a)
//! DIR/files/bodyfile.txt     TSK's body file (what fls -m writes; mactime)
//! DIR/files/notable.txt      files found in a notable hash set
//! ```

use crate::paths::ReportDir;
use crate::write::{create_file, io_err};
use crate::{JobResults, ReportError};
use serde_json::{Map, Value, json};
use std::io::Write;
use trawl_core::FileRecord;
use trawl_core::files::{FileTime, MacbTimes};

/// RFC 3339 UTC of a file time (fraction only when not whole seconds).
pub(crate) fn rfc3339(t: FileTime) -> Option<String> {
    let ns = i128::from(t.secs) * 1_000_000_000 + i128::from(t.nanos);
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(ns).ok()?;
    dt.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn put_times(m: &mut Map<String, Value>, prefix: &str, t: &MacbTimes) {
    for (name, v) in [
        ("mtime", t.mtime),
        ("atime", t.atime),
        ("ctime", t.ctime),
        ("crtime", t.crtime),
    ] {
        if let Some(s) = v.and_then(rfc3339) {
            m.insert(format!("{prefix}{name}"), Value::String(s));
        }
    }
}

/// The `files.jsonl` object of a record.
pub fn file_json(f: &FileRecord) -> Value {
    let mut m = Map::new();
    m.insert("partition_offset".into(), json!(f.partition_offset));
    m.insert("fs".into(), json!(f.fs));
    m.insert("path".into(), json!(f.path));
    m.insert("inode".into(), json!(f.inode));
    m.insert("type".into(), json!(f.kind));
    m.insert("alloc".into(), json!(f.alloc));
    m.insert("size".into(), json!(f.size));
    for (k, v) in [("md5", &f.md5), ("sha1", &f.sha1), ("sha256", &f.sha256)] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    put_times(&mut m, "", &f.times);
    if let Some(t) = &f.fn_times {
        put_times(&mut m, "fn_", t);
    }
    if f.mode != 0 {
        m.insert("mode".into(), json!(f.mode));
        m.insert("uid".into(), json!(f.uid));
        m.insert("gid".into(), json!(f.gid));
    }
    if let Some(k) = &f.known {
        m.insert("known".into(), json!(k));
    }
    if let Some(k) = &f.known_set {
        m.insert("known_set".into(), json!(k));
    }
    m.insert(
        "runs".into(),
        Value::Array(f.runs.iter().map(|&(o, l)| json!([o, l])).collect()),
    );
    if let Some(e) = &f.error {
        m.insert("error".into(), json!(e));
    }
    Value::Object(m)
}

/// A record's name in flat lists (hashdeep, body file): its path, prefixed
/// by the partition when the image has several file systems.
fn flat_name(r: &JobResults, f: &FileRecord) -> String {
    let several = r
        .filesystems
        .as_ref()
        .is_some_and(|s| s.filesystems.len() > 1);
    if several {
        format!("@{}/{}", f.partition_offset, f.path)
    } else {
        f.path.clone()
    }
}

/// TSK's mode string: `r/rrwxr-xr-x` (name type / metadata type + bits).
fn mode_string(f: &FileRecord) -> String {
    let t = match f.kind.as_str() {
        "file" => 'r',
        "dir" => 'd',
        "link" => 'l',
        _ => '-',
    };
    let bits = if f.mode & 0o7777 == 0 && f.mode == 0 {
        0o777
    } else {
        f.mode & 0o777
    };
    let mut s = format!("{t}/{t}");
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if bits & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    s
}

fn secs(t: Option<FileTime>) -> i64 {
    t.map_or(0, |t| t.secs)
}

/// Writes the `files/` directory when the file-system analysis ran.
pub(crate) fn write(dir: &ReportDir, r: &JobResults) -> Result<(), ReportError> {
    if r.filesystems.is_none() && r.files.is_empty() {
        return Ok(());
    }
    let (path, mut w) = create_file(dir, "files/files.jsonl")?;
    for f in &r.files {
        writeln!(w, "{}", file_json(f)).map_err(io_err(&path))?;
    }
    w.flush().map_err(io_err(&path))?;

    let (path, mut w) = create_file(dir, "files/files.hashdeep")?;
    let mut head = String::from("%%%% HASHDEEP-1.0\n%%%% size,md5,sha256,filename\n");
    // No job id or time: like every result file but report.json, a pure
    // function of the evidence and the settings.
    head.push_str(&format!(
        "## Invoked from: trawl {}\n## $ trawl scan --analyses files {}\n##\n",
        r.provenance.version, r.evidence.path
    ));
    w.write_all(head.as_bytes()).map_err(io_err(&path))?;
    for f in r.files.iter().filter(|f| f.hashable()) {
        if let (Some(md5), Some(sha256)) = (&f.md5, &f.sha256) {
            writeln!(w, "{},{md5},{sha256},{}", f.size, flat_name(r, f)).map_err(io_err(&path))?;
        }
    }
    w.flush().map_err(io_err(&path))?;

    let (path, mut w) = create_file(dir, "files/bodyfile.txt")?;
    for f in &r.files {
        let name = flat_name(r, f).replace('|', "\\|");
        let deleted = if f.alloc == "allocated" {
            ""
        } else {
            " (deleted)"
        };
        let md5 = f.md5.as_deref().unwrap_or("0");
        let mode = mode_string(f);
        let t = &f.times;
        writeln!(
            w,
            "{md5}|/{name}{deleted}|{}|{mode}|{}|{}|{}|{}|{}|{}|{}",
            f.inode,
            f.uid,
            f.gid,
            f.size,
            secs(t.atime),
            secs(t.mtime),
            secs(t.ctime),
            secs(t.crtime)
        )
        .map_err(io_err(&path))?;
        if let Some(t) = &f.fn_times {
            writeln!(
                w,
                "{md5}|/{name} ($FILE_NAME){deleted}|{}|{mode}|{}|{}|{}|{}|{}|{}|{}",
                f.inode,
                f.uid,
                f.gid,
                f.size,
                secs(t.atime),
                secs(t.mtime),
                secs(t.ctime),
                secs(t.crtime)
            )
            .map_err(io_err(&path))?;
        }
    }
    w.flush().map_err(io_err(&path))?;

    let notable: Vec<&FileRecord> = r
        .files
        .iter()
        .filter(|f| f.known.as_deref() == Some("notable"))
        .collect();
    if !notable.is_empty() {
        let (path, mut w) = create_file(dir, "files/notable.txt")?;
        writeln!(
            w,
            "# files found in a notable hash set: set<TAB>md5<TAB>sha256<TAB>size<TAB>path"
        )
        .map_err(io_err(&path))?;
        for f in notable {
            writeln!(
                w,
                "{}\t{}\t{}\t{}\t{}",
                f.known_set.as_deref().unwrap_or(""),
                f.md5.as_deref().unwrap_or(""),
                f.sha256.as_deref().unwrap_or(""),
                f.size,
                flat_name(r, f)
            )
            .map_err(io_err(&path))?;
        }
        w.flush().map_err(io_err(&path))?;
    }
    Ok(())
}

/// The `files` section of `report.json`.
pub(crate) fn summary_json(r: &JobResults) -> Value {
    let Some(s) = &r.filesystems else {
        return Value::Null;
    };
    let count = |a: &str| r.files.iter().filter(|f| f.alloc == a).count();
    json!({
        "volume_system": s.volume_system,
        "volumes": s.volumes,
        "filesystems": s.filesystems.iter().map(|f| {
            let mut v = json!({
                "partition_offset": f.partition_offset,
                "fs": f.fs,
                "label": f.label,
                "block_size": f.block_size,
                "size": f.size,
                "entries": f.entries,
            });
            if let Some(u) = &f.unallocated {
                v["unallocated_bytes"] = json!(u.iter().map(|r| r.1).sum::<u64>());
                v["unallocated_ranges"] = json!(u.len());
            }
            v
        }).collect::<Vec<_>>(),
        "limitations": s.limitations,
        "entries": r.files.len(),
        "regular_files": r.files.iter().filter(|f| f.hashable()).count(),
        "allocated": count("allocated"),
        "deleted": count("deleted"),
        "orphan": count("orphan"),
        "known": r.files.iter().filter(|f| f.known.as_deref() == Some("known")).count(),
        "notable": r.files.iter().filter(|f| f.known.as_deref() == Some("notable")).count(),
        "file": "files/files.jsonl",
    })
}
