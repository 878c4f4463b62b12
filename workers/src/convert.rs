//! Analyzer outputs to wire results.

use trawl_core::{Blake3Part, ShardOutput};
use trawl_proto::v1;

/// Wire result of a shard task.
pub fn shard_result(
    task_id: &str,
    shard_index: u32,
    out: &ShardOutput,
    elapsed_ms: u64,
) -> v1::TaskResult {
    v1::TaskResult {
        task_id: task_id.to_string(),
        features: out.features.iter().map(Into::into).collect(),
        carved: out.carved.iter().map(Into::into).collect(),
        yara: out.yara.iter().map(Into::into).collect(),
        piecewise: out.piecewise.iter().map(Into::into).collect(),
        blake3: out.blake3.map(|b| match b {
            Blake3Part::ChainingValue(v) => v1::Blake3Part {
                shard_index,
                value: v.to_vec(),
                is_root: false,
            },
            Blake3Part::Root(v) => v1::Blake3Part {
                shard_index,
                value: v.to_vec(),
                is_root: true,
            },
        }),
        stream: None,
        stats: out.stats.iter().map(Into::into).collect(),
        notes: out.notes.iter().map(Into::into).collect(),
        bytes_scanned: out.bytes_scanned,
        elapsed_ms,
    }
}
