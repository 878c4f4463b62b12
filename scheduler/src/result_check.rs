//! The shape of a worker's result, checked before it is stored: the task it
//! names, offsets inside the image and inside the task's range, and every
//! name that later becomes part of a report path (feature scanners, carved
//! file types and extensions, YARA targets). A worker certificate cannot
//! plant findings outside its shard or names that lead out of a report
//! folder.

use std::collections::HashSet;
use trawl_analyzers::yara::scope as yara_scope;
use trawl_core::JobSpec;
use trawl_proto::v1;
use trawl_store::{TaskKind, TaskRecord};

/// Longest name accepted where a name becomes a path component.
const MAX_NAME: usize = 64;

/// A name that may become one path component: letters, digits, `_ - .`,
/// not starting with a dot.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {:?} is not a valid name (1-{MAX_NAME} of A-Z a-z 0-9 _ - ., not starting with a dot)",
            name.chars().take(80).collect::<String>()
        ))
    }
}

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
pub fn check(
    task: &TaskRecord,
    image_size: u64,
    _spec: &JobSpec,
    result: &v1::TaskResult,
) -> Result<(), String> {
    if result.task_id != task.task_id {
        return Err(format!(
            "the result names task {:?}, the report is for {:?}",
            result.task_id.chars().take(80).collect::<String>(),
            task.task_id
        ));
    }
    // The range the task's findings may start in.
    let (lo, hi) = match (task.kind, task.shard) {
        (TaskKind::Shard, Some(s)) => (s.start, s.scan_end.min(image_size)),
        _ => (0, image_size),
    };
    for f in &result.features {
        check_name("feature scanner", &f.scanner)?;
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
        check_name("carved file type", &c.file_type)?;
        check_name("carved file extension", &c.extension)?;
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
    for m in &result.yara {
        let scope = [yara_scope::SHARD, yara_scope::HIT, yara_scope::HIT_SPANS];
        let target_size = if m.target == "image" {
            if task.kind == TaskKind::YaraCarved {
                return Err("a YARA match on the image from a carved-file task".into());
            }
            image_size
        } else if task.kind == TaskKind::Shard && scope.contains(&m.target.as_str()) {
            // A shard's per-rule record (image offsets).
            image_size
        } else if carved_paths.contains(&m.target) || task_carved.contains(&m.target) {
            u64::MAX
        } else {
            return Err(format!(
                "YARA target {:?} is neither the image nor a file carved by this task",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_a_folder_are_refused() {
        for bad in [
            "",
            "/tmp/x",
            "../../../../tmp/y",
            "a/b",
            "..",
            ".hidden",
            "a\0b",
            "a\\b",
        ] {
            assert!(check_name("feature scanner", bad).is_err(), "{bad:?}");
        }
        for good in ["email", "ccn_track2", "jpg", "tar.gz", "exif-1"] {
            assert!(check_name("feature scanner", good).is_ok(), "{good:?}");
        }
    }
}
