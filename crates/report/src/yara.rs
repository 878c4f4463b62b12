//! `yara/matches.jsonl`: one JSON object per (target, rule).

use crate::paths::ReportDir;
use crate::write::{create_file, io_err};
use crate::{JobResults, ReportError};
use std::io::Write;

/// Writes `yara/matches.jsonl` when YARA ran.
pub(crate) fn write(dir: &ReportDir, r: &JobResults) -> Result<(), ReportError> {
    if !r.provenance.analyses.iter().any(|a| a == "yara") && r.yara.is_empty() {
        return Ok(());
    }
    let (path, mut w) = create_file(dir, "yara/matches.jsonl")?;
    for m in &r.yara {
        let metadata: serde_json::Value = serde_json::from_str(&m.metadata_json)
            .unwrap_or(serde_json::Value::Object(Default::default()));
        let line = serde_json::json!({
            "target": m.target,
            "target_offset": m.target_offset,
            "rule": m.rule,
            "namespace": m.namespace,
            "tags": m.tags,
            "metadata": metadata,
            "strings": m.strings.iter().map(|s| serde_json::json!({
                "id": s.id, "offset": s.offset, "length": s.length,
            })).collect::<Vec<_>>(),
        });
        writeln!(w, "{line}").map_err(io_err(&path))?;
    }
    w.flush().map_err(io_err(&path))
}
