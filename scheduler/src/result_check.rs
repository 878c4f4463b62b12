//! Names in a worker's task result, checked where results enter the
//! scheduler (before they are stored): every name that a report writer
//! turns into a path, or that names a report path, against its allowed set
//! ([`trawl_report::paths`]). The report writers check them again where
//! they create the files.

use trawl_proto::v1;
use trawl_report::paths::{NameCheck, quote};

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
