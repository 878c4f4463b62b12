//! `yara/matches.jsonl`: one JSON object per (target, rule).

use crate::attrib::Attribution;
use crate::paths::ReportDir;
use crate::write::{create_file, io_err};
use crate::{JobResults, ReportError};
use std::io::Write;

/// Writes `yara/matches.jsonl` when YARA ran.
///
/// With the file-system listing, each match has `file`: the place of its
/// first string's offset for a match on the image, of the carved file's
/// first byte for one on a carved file (see
/// [`crate::attrib::Attribution::place_json`]); and each string on the
/// image its own `file` when it is elsewhere than the match's.
pub(crate) fn write(
    dir: &ReportDir,
    r: &JobResults,
    attr: Option<&Attribution<'_>>,
) -> Result<(), ReportError> {
    if !r.provenance.analyses.iter().any(|a| a == "yara") && r.yara.is_empty() {
        return Ok(());
    }
    let (path, mut w) = create_file(dir, "yara/matches.jsonl")?;
    for m in &r.yara {
        let metadata: serde_json::Value = serde_json::from_str(&m.metadata_json)
            .unwrap_or(serde_json::Value::Object(Default::default()));
        let mut line = serde_json::json!({
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
        if let Some(a) = attr {
            let on_image = m.target == "image";
            let first = if on_image {
                m.strings.iter().map(|s| s.offset).min()
            } else {
                Some(m.target_offset)
            };
            if let Some(at) = first {
                let place = a.place_json(at);
                if on_image && let Some(list) = line["strings"].as_array_mut() {
                    for (j, s) in m.strings.iter().enumerate() {
                        let p = a.place_json(s.offset);
                        if p != place {
                            list[j]["file"] = p;
                        }
                    }
                }
                line["file"] = place;
            }
        }
        writeln!(w, "{line}").map_err(io_err(&path))?;
    }
    w.flush().map_err(io_err(&path))
}
