//! The shape of a worker's result, checked before it is stored: the task it
//! names, offsets inside the image and inside the task's range, and every
//! name that later becomes part of a report path (feature scanners, carved
//! file types and extensions, YARA targets). A worker certificate cannot
//! plant findings outside its shard or names that lead out of a report
//! folder.

use std::collections::HashSet;
use trawl_analyzers::yara::scope as yara_scope;
use trawl_proto::v1;
use trawl_report::paths::{NameCheck, quote};
use trawl_store::{TaskKind, TaskRecord};

fn within(what: &str, start: u64, len: u64, lo: u64, hi: u64) -> Result<(), String> {
    let end = start
        .checked_add(len)
        .ok_or_else(|| format!("{what} at {start} with length {len} overflows"))?;
    if start < lo || end > hi {
        return Err(format!("{what} [{start}, {end}) lies outside [{lo}, {hi})"));
    }
    Ok(())
}

/// Checks `result` against the task it reports and the job's image size.
///
/// # Errors
/// The first problem found, naming the field and the value.
pub fn check(task: &TaskRecord, image_size: u64, result: &v1::TaskResult) -> Result<(), String> {
    check_result_names(result)?;
    if result.task_id != task.task_id {
        return Err(format!(
            "the result names task {:?}, the report is for {:?}",
            result.task_id.chars().take(80).collect::<String>(),
            task.task_id
        ));
    }
    // File digests: exactly the task's files, each once, well-formed.
    if task.kind == TaskKind::FsHash || !result.file_hashes.is_empty() {
        let want: HashSet<u32> = task.fs_files.iter().map(|(i, _)| *i).collect();
        let mut seen = HashSet::new();
        for h in &result.file_hashes {
            if !want.contains(&h.index) || !seen.insert(h.index) {
                return Err(format!(
                    "file digest for file {} which the task does not hold (or twice)",
                    h.index
                ));
            }
            let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
            let ok = if h.error.is_empty() {
                hex(&h.md5, 32) && hex(&h.sha1, 40) && hex(&h.sha256, 64)
            } else {
                h.md5.is_empty()
                    && h.sha1.is_empty()
                    && h.sha256.is_empty()
                    && h.error.len() <= 4096
            };
            if !ok {
                return Err(format!("file digest for file {} is malformed", h.index));
            }
        }
        if seen.len() != want.len() {
            return Err(format!(
                "the result has digests for {} of the task's {} files",
                seen.len(),
                want.len()
            ));
        }
    }
    // The range the task's findings may start in.
    let (lo, hi) = match (task.kind, task.shard) {
        (TaskKind::Shard, Some(s)) => (s.start, s.scan_end.min(image_size)),
        _ => (0, image_size),
    };
    for f in &result.features {
        if f.offset < lo || f.offset >= hi.max(lo + 1) {
            return Err(format!(
                "feature of {} at {} lies outside the task's range [{lo}, {hi})",
                f.scanner, f.offset
            ));
        }
        if f.path.len() > 4096 {
            return Err(format!(
                "feature path of {} longer than 4096 bytes",
                f.scanner
            ));
        }
    }
    let mut carved_paths: HashSet<String> = HashSet::new();
    for c in &result.carved {
        if c.offset < lo || c.offset >= hi.max(lo + 1) {
            return Err(format!(
                "carved {} at {} starts outside the task's range [{lo}, {hi})",
                c.file_type, c.offset
            ));
        }
        within("carved file", c.offset, c.length, 0, image_size)?;
        for r in &c.byte_runs {
            within("carved byte run", r.img_offset, r.len, 0, image_size)?;
            within(
                "carved byte run (file offsets)",
                r.file_offset,
                r.len,
                0,
                c.length,
            )?;
        }
        carved_paths.insert(format!(
            "carved/{}/{}.{}",
            c.file_type, c.offset, c.extension
        ));
    }
    let task_carved: HashSet<String> = task.carved.iter().map(|c| c.report_path()).collect();
    // An FS_HASH task's files, by target, with their content sizes.
    let task_files: std::collections::HashMap<String, u64> = task
        .fs_names
        .iter()
        .zip(&task.fs_files)
        .map(|((part, path), (_, c))| (trawl_analyzers::files::fs_target(*part, path), c.size()))
        .collect();
    for m in &result.yara {
        // A shard's per-rule records: `shard`, `hit`, `hit:spans`, with
        // `:matched` (names checked above).
        let target_size = if m.target == "image" {
            if matches!(task.kind, TaskKind::YaraCarved | TaskKind::FsHash) {
                return Err("a YARA match on the image from a carved-file or file task".into());
            }
            image_size
        } else if task.kind == TaskKind::Shard
            && (m.target.starts_with(yara_scope::SHARD) || m.target.starts_with(yara_scope::HIT))
        {
            // A shard's per-rule record (image offsets).
            image_size
        } else if carved_paths.contains(&m.target) || task_carved.contains(&m.target) {
            u64::MAX
        } else if let Some(size) = task_files.get(&m.target) {
            *size
        } else {
            return Err(format!(
                "YARA target {:?} is neither the image nor a file carved or read by this task",
                m.target.chars().take(120).collect::<String>()
            ));
        };
        if m.rule.is_empty() || m.rule.len() > 256 || m.namespace.len() > 256 {
            return Err("YARA rule or namespace name empty or longer than 256 bytes".into());
        }
        for st in &m.strings {
            if target_size != u64::MAX {
                within(
                    &format!("YARA string {} of {}", st.id, m.rule),
                    st.offset,
                    st.length,
                    0,
                    target_size,
                )?;
            }
        }
    }
    for p in &result.piecewise {
        if p.offset > image_size {
            return Err(format!(
                "piecewise hash at {} past the end of the image ({image_size} bytes)",
                p.offset
            ));
        }
    }
    Ok(())
}

/// Checks the names of a task result: each feature's recorder (a scanner's
/// name, `NAME_stopped` or `alerts`), each carved file's type and extension
/// (the carver's type table, or a custom type's name as the carver derives
/// it), each YARA match's target (`image`, a shard record's scope, or a
/// carved file's `carved/TYPE/OFFSET.EXT`).
///
/// # Errors
/// The refused names, counted, the first ten listed with their record,
/// field and escaped value, e.g. `task "j-1/3": 1 name in the results
/// cannot be report paths: feature 0 (offset 512): feature scanner
/// "../../tmp/y" refused: contains a path separator (/ or \)`.
pub fn check_result_names(result: &v1::TaskResult) -> Result<(), String> {
    let mut c = NameCheck::default();
    for (i, f) in result.features.iter().enumerate() {
        c.feature(i, f.offset, &f.scanner);
    }
    for (i, f) in result.carved.iter().enumerate() {
        c.carved(i, f.offset, &f.file_type, &f.extension);
    }
    for (i, y) in result.yara.iter().enumerate() {
        c.yara(i, y.target_offset, &y.target);
    }
    c.finish()
        .map_err(|e| format!("task {}: {e}", quote(&result.task_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(scanner: &str, offset: u64) -> v1::Feature {
        v1::Feature {
            scanner: scanner.into(),
            offset,
            path: offset.to_string(),
            feature: b"a@b.c".to_vec(),
            context: Vec::new(),
            utf16: false,
        }
    }

    fn carved(file_type: &str, extension: &str, offset: u64) -> v1::CarvedFile {
        v1::CarvedFile {
            offset,
            length: 10,
            file_type: file_type.into(),
            extension: extension.into(),
            ..Default::default()
        }
    }

    fn yara(target: &str) -> v1::YaraMatch {
        v1::YaraMatch {
            target: target.into(),
            rule: "r".into(),
            ..Default::default()
        }
    }

    #[test]
    fn what_the_analyzers_produce_passes() {
        let r = v1::TaskResult {
            task_id: "j-1/0".into(),
            features: vec![
                feature("email", 1),
                feature("email_stopped", 2),
                feature("alerts", 3),
                feature("find", 4),
            ],
            carved: vec![
                carved("jpg", "jpg", 5),
                carved("exe", "dll", 6),
                carved("none", "bin", 7),
                carved("my-type_2", "MyExt", 8),
            ],
            yara: vec![
                yara("image"),
                yara("shard:matched"),
                yara("hit"),
                yara("hit:spans"),
                yara("carved/jpg/5.jpg"),
            ],
            ..Default::default()
        };
        check_result_names(&r).unwrap();
    }

    #[test]
    fn forged_names_are_refused_with_record_field_and_escaped_value() {
        let r = v1::TaskResult {
            task_id: "j-1/3".into(),
            features: vec![
                feature("email", 0),
                feature("/tmp/x", 512),
                feature("../../../../tmp/y", 1024),
                feature("a/b", 1),
                feature("..", 2),
                feature("", 3),
                feature("em\0ail", 4),
                feature("nosuchscanner", 5),
            ],
            carved: vec![carved("../x", "jpg", 9), carved("jpg", "/x", 10)],
            yara: vec![yara("carved/../../x.jpg"), yara("../etc/passwd")],
            ..Default::default()
        };
        let e = check_result_names(&r).unwrap_err();
        assert!(
            e.starts_with(
                "task \"j-1/3\": 11 names in the results cannot be report paths: feature 1 (offset 512): feature scanner \"/tmp/x\" refused: contains a path separator (/ or \\)"
            ),
            "{e}"
        );
        for part in [
            "feature 2 (offset 1024): feature scanner \"../../../../tmp/y\" refused",
            "feature 4 (offset 2): feature scanner \"..\" refused: a reference to a folder",
            "feature 5 (offset 3): feature scanner \"\" refused: empty",
            "feature 6 (offset 4): feature scanner \"em\\0ail\" refused: contains a control character",
            "feature 7 (offset 5): feature scanner \"nosuchscanner\" refused: not a feature recorder",
            "carved file 0 (offset 9): carved file type \"../x\" refused",
            "and 1 more",
        ] {
            assert!(e.contains(part), "{part}\n{e}");
        }
    }
}
