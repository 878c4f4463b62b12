//! `DIR/case.jsonld`: the examination in CASE/UCO JSON-LD (CASE 1.x, UCO
//! 1.x), valid for `case_validate` (PyPI case-utils).
//!
//! * the tool (`uco-tool:Tool`, name and version);
//! * the evidence (`uco-observable:File` with a `FileFacet` — name, path,
//!   size — and a `ContentDataFacet` with MD5, SHA-1 and SHA-256 — BLAKE3 is not in
//!   UCO's hash vocabulary, it stays in report.json);
//! * every carved file (`uco-observable:File`: name, report path, extension,
//!   size, hashes), related to the evidence by a `Contained_Within`
//!   `ObservableRelationship` carrying a `DataRangeFacet` (offset, size);
//! * the examination (`case-investigation:InvestigativeAction`): instrument
//!   the tool, object the evidence, results the carved files.
//!
//! Identifiers end with UUIDs derived from the content (image digest,
//! offsets), so the file is the same bytes for the same job.

use crate::attrib::Attribution;
use crate::paths::ReportDir;
use crate::write::{create_file, io_err};
use crate::{JobResults, ReportError};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;

/// A UUID (version 5 layout) derived from `key`.
fn uuid(key: &str) -> String {
    let h = blake3::hash(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.as_bytes()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

fn int(v: u64) -> Value {
    json!({"@type": "xsd:integer", "@value": v.to_string()})
}

fn hashes(id: &str, list: &[(&str, &str)]) -> Vec<Value> {
    list.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(m, v)| {
            json!({
                "@id": format!("kb:hash-{}", uuid(&format!("{id}/{m}"))),
                "@type": "uco-types:Hash",
                "uco-types:hashMethod": m,
                "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": v},
            })
        })
        .collect()
}

/// Writes `DIR/case.jsonld`.
pub(crate) fn write(
    dir: &ReportDir,
    r: &JobResults,
    attr: Option<&Attribution<'_>>,
) -> Result<(), ReportError> {
    let h = &r.hashes;
    let digest = h
        .blake3
        .clone()
        .or_else(|| h.sha256.clone())
        .unwrap_or_else(|| format!("{}:{}", r.evidence.path, r.evidence.size));
    let tool_name = if r.provenance.tool.is_empty() {
        trawl_core::TOOL_NAME
    } else {
        &r.provenance.tool
    };
    let version = if r.provenance.version.is_empty() {
        trawl_core::TOOL_VERSION
    } else {
        &r.provenance.version
    };
    let tool_id = format!("kb:tool-{}", uuid(&format!("tool/{tool_name}/{version}")));
    let image_key = format!("image/{digest}");
    let image_id = format!("kb:file-{}", uuid(&image_key));
    let name = Path::new(&r.evidence.path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| r.evidence.path.clone());
    let head = [
        json!({
            "@id": tool_id,
            "@type": "uco-tool:Tool",
            "uco-core:name": tool_name,
            "uco-tool:version": version,
            "uco-tool:toolType": "digital forensics",
        }),
        json!({
            "@id": image_id,
            "@type": "uco-observable:File",
            "uco-core:hasFacet": [
                {
                    "@id": format!("kb:file-facet-{}", uuid(&format!("{image_key}/file"))),
                    "@type": "uco-observable:FileFacet",
                    "uco-observable:fileName": name,
                    "uco-observable:filePath": r.evidence.path,
                    "uco-observable:sizeInBytes": int(r.evidence.size),
                },
                {
                    "@id": format!("kb:content-data-facet-{}", uuid(&format!("{image_key}/content"))),
                    "@type": "uco-observable:ContentDataFacet",
                    "uco-observable:sizeInBytes": int(r.evidence.size),
                    "uco-observable:hash": hashes(&image_key, &[
                        ("MD5", h.md5.as_deref().unwrap_or("")),
                        ("SHA1", h.sha1.as_deref().unwrap_or("")),
                        ("SHA256", h.sha256.as_deref().unwrap_or("")),
                    ]),
                },
            ],
        }),
    ];
    // Thousands of carved files: each one's two nodes built and printed in
    // parallel, then written in order (the same bytes as printing the whole
    // document at once).
    use rayon::prelude::*;
    let carved: Vec<(String, Vec<String>)> = r
        .carved
        .par_iter()
        .map(|c| {
            let key = format!("{image_key}/carved/{}/{}", c.offset, c.file_type);
            let id = format!("kb:file-{}", uuid(&key));
            let path = crate::carved::path_of(c)?.to_string();
            let file = json!({
                "@id": id,
                "@type": "uco-observable:File",
                "uco-core:description": if c.validated {
                    format!("{} carved at offset {}, structure validated", c.file_type, c.offset)
                } else {
                    format!("{} carved at offset {}, not validated: {}", c.file_type, c.offset, c.note)
                },
                "uco-core:hasFacet": [
                    {
                        "@id": format!("kb:file-facet-{}", uuid(&format!("{key}/file"))),
                        "@type": "uco-observable:FileFacet",
                        "uco-observable:fileName": format!("{}.{}", c.offset, c.extension),
                        "uco-observable:filePath": path,
                        "uco-observable:extension": c.extension,
                        "uco-observable:sizeInBytes": int(c.length),
                    },
                    {
                        "@id": format!("kb:content-data-facet-{}", uuid(&format!("{key}/content"))),
                        "@type": "uco-observable:ContentDataFacet",
                        "uco-observable:sizeInBytes": int(c.length),
                        "uco-observable:hash": hashes(&key, &[
                            ("MD5", &c.md5),
                            ("SHA1", &c.sha1),
                            ("SHA256", &c.sha256),
                        ]),
                    },
                ],
            });
            let within = json!({
                "@id": format!("kb:relationship-{}", uuid(&format!("{key}/within"))),
                "@type": "uco-observable:ObservableRelationship",
                "uco-core:source": {"@id": id},
                "uco-core:target": {"@id": image_id},
                "uco-core:kindOfRelationship": "Contained_Within",
                "uco-core:isDirectional": true,
                "uco-core:hasFacet": [{
                    "@id": format!("kb:data-range-facet-{}", uuid(&format!("{key}/range"))),
                    "@type": "uco-observable:DataRangeFacet",
                    "uco-observable:rangeOffset": int(c.offset),
                    "uco-observable:rangeSize": int(c.length),
                }],
            });
            let mut nodes = vec![element(&file), element(&within)];
            // Inside a file-system file: related to that file's node.
            if let Some(a) = attr
                && let p = a.placement(c)
                && let Some(f) = p.file
            {
                nodes.push(element(&json!({
                    "@id": format!("kb:relationship-{}", uuid(&format!("{key}/in-file"))),
                    "@type": "uco-observable:ObservableRelationship",
                    "uco-core:source": {"@id": id},
                    "uco-core:target": {"@id": fs_file_id(&image_key, f)},
                    "uco-core:kindOfRelationship": "Contained_Within",
                    "uco-core:description": p.kind,
                    "uco-core:isDirectional": true,
                })));
            }
            Ok::<_, ReportError>((id, nodes))
        })
        .collect::<Result<_, _>>()?;
    let fs_nodes = file_system_nodes(r, &image_key, &image_id);
    let mut results: Vec<Value> = carved.iter().map(|(id, _)| json!({"@id": id})).collect();
    results.extend(fs_nodes.iter().map(|(id, _)| json!({"@id": id})));
    let action = json!({
        "@id": format!("kb:investigative-action-{}", uuid(&format!("{image_key}/action"))),
        "@type": "case-investigation:InvestigativeAction",
        "uco-core:name": "trawl examination",
        "uco-action:instrument": {"@id": tool_id},
        "uco-action:object": [{"@id": image_id}],
        "uco-action:result": results,
    });
    let context = json!({
            "kb": "urn:trawl:kb:",
            "case-investigation": "https://ontology.caseontology.org/case/investigation/",
            "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
            "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
            "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
            "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
            "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
    });
    // The document as `serde_json::to_writer_pretty` prints it: the
    // context at depth 1, the graph's nodes at depth 2; the tool and the
    // image first, each carved file and its relationship, the action last.
    let (path, mut w) = create_file(dir, "case.jsonld")?;
    let ctx = pretty(&context).replace('\n', "\n  ");
    let all = head
        .iter()
        .map(element)
        .chain(carved.into_iter().flat_map(|(_, pair)| pair))
        .chain(fs_nodes.into_iter().flat_map(|(_, nodes)| nodes))
        .chain([element(&action)]);
    (|| {
        write!(w, "{{\n  \"@context\": {ctx},\n  \"@graph\": [")?;
        for (i, node) in all.enumerate() {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            w.write_all(node.as_bytes())?;
        }
        w.write_all(b"\n  ]\n}\n")?;
        w.flush()
    })()
    .map_err(io_err(&path))
}

/// The file systems' partitions (`uco-observable:DiskPartition`, within the
/// image) and every file-system file (`uco-observable:File` with its path,
/// times and hashes, within its partition), printed: (id, nodes).
fn file_system_nodes(
    r: &JobResults,
    image_key: &str,
    image_id: &str,
) -> Vec<(String, Vec<String>)> {
    use rayon::prelude::*;
    let Some(s) = &r.filesystems else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for fs in &s.filesystems {
        let pkey = format!("{image_key}/partition/{}", fs.partition_offset);
        let pid = format!("kb:disk-partition-{}", uuid(&pkey));
        let part = json!({
            "@id": pid,
            "@type": "uco-observable:DiskPartition",
            "uco-core:description": format!("{} file system at offset {}", fs.fs, fs.partition_offset),
            "uco-core:hasFacet": [{
                "@id": format!("kb:disk-partition-facet-{}", uuid(&format!("{pkey}/facet"))),
                "@type": "uco-observable:DiskPartitionFacet",
                "uco-observable:partitionOffset": int(fs.partition_offset),
                "uco-observable:partitionLength": int(fs.size),
            }],
        });
        let within = json!({
            "@id": format!("kb:relationship-{}", uuid(&format!("{pkey}/within"))),
            "@type": "uco-observable:ObservableRelationship",
            "uco-core:source": {"@id": pid},
            "uco-core:target": {"@id": image_id},
            "uco-core:kindOfRelationship": "Contained_Within",
            "uco-core:isDirectional": true,
        });
        out.push((pid.clone(), vec![element(&part), element(&within)]));
        let files: Vec<(String, Vec<String>)> = r
            .files
            .par_iter()
            .filter(|f| f.partition_offset == fs.partition_offset)
            .map(|f| {
                let key = fs_file_key(image_key, f);
                let id = format!("kb:file-{}", uuid(&key));
                let text = file_node_text(f, &key, &id, &pid);
                (id, vec![text])
            })
            .collect();
        out.extend(files);
    }
    out
}

/// The identifying key of a file-system file's nodes.
fn fs_file_key(image_key: &str, f: &trawl_core::FileRecord) -> String {
    format!(
        "{image_key}/partition/{}/file/{}/{}/{}",
        f.partition_offset, f.inode, f.alloc, f.path
    )
}

/// The `@id` of a file-system file's `File` node.
fn fs_file_id(image_key: &str, f: &trawl_core::FileRecord) -> String {
    format!("kb:file-{}", uuid(&fs_file_key(image_key, f)))
}

/// A JSON string literal.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A file-system file's two nodes (the `File` and its `Contained_Within`
/// relationship to the partition), printed as `element` prints them at
/// depth 2 of the document, written directly: a disk has hundreds of
/// thousands of files, and building a `serde_json::Value` per node and
/// re-indenting its printout cost more than hashing their contents.
fn file_node_text(f: &trawl_core::FileRecord, key: &str, id: &str, pid: &str) -> String {
    use std::fmt::Write as _;
    let name = f.path.rsplit('/').next().unwrap_or(&f.path);
    let int = |v: u64| {
        format!(
            "{{\n            \"@type\": \"xsd:integer\",\n            \"@value\": \"{v}\"\n          }}"
        )
    };
    let mut o = String::with_capacity(2048);
    let _ = write!(
        o,
        "    {{\n      \"@id\": {},\n      \"@type\": \"uco-observable:File\",\n      \"uco-core:description\": {},\n      \"uco-core:hasFacet\": [\n        {{\n          \"@id\": {},\n          \"@type\": \"uco-observable:FileFacet\",\n          \"uco-observable:fileName\": {},\n          \"uco-observable:filePath\": {},\n          \"uco-observable:isDirectory\": {},\n          \"uco-observable:sizeInBytes\": {}",
        q(id),
        q(&format!("{} {} ({})", f.alloc, f.kind, f.fs)),
        q(&format!("kb:file-facet-{}", uuid(&format!("{key}/file")))),
        q(name),
        q(&f.path),
        f.kind == "dir",
        int(f.size),
    );
    for (k, t) in [
        ("uco-observable:modifiedTime", f.times.mtime),
        ("uco-observable:accessedTime", f.times.atime),
        ("uco-observable:metadataChangeTime", f.times.ctime),
        ("uco-observable:observableCreatedTime", f.times.crtime),
    ] {
        if let Some(v) = t.and_then(crate::files::rfc3339) {
            let _ = write!(
                o,
                ",\n          \"{k}\": {{\n            \"@type\": \"xsd:dateTime\",\n            \"@value\": {}\n          }}",
                q(&v)
            );
        }
    }
    o.push_str("\n        }");
    if f.md5.is_some() {
        let _ = write!(
            o,
            ",\n        {{\n          \"@id\": {},\n          \"@type\": \"uco-observable:ContentDataFacet\",\n          \"uco-observable:sizeInBytes\": {},\n          \"uco-observable:hash\": [",
            q(&format!(
                "kb:content-data-facet-{}",
                uuid(&format!("{key}/content"))
            )),
            int(f.size),
        );
        let mut first = true;
        for (m, v) in [("MD5", &f.md5), ("SHA1", &f.sha1), ("SHA256", &f.sha256)] {
            let Some(v) = v.as_deref().filter(|v| !v.is_empty()) else {
                continue;
            };
            let _ = write!(
                o,
                "{}\n            {{\n              \"@id\": {},\n              \"@type\": \"uco-types:Hash\",\n              \"uco-types:hashMethod\": {},\n              \"uco-types:hashValue\": {{\n                \"@type\": \"xsd:hexBinary\",\n                \"@value\": {}\n              }}\n            }}",
                if first { "" } else { "," },
                q(&format!("kb:hash-{}", uuid(&format!("{key}/{m}")))),
                q(m),
                q(v),
            );
            first = false;
        }
        o.push_str(if first {
            "]\n        }"
        } else {
            "\n          ]\n        }"
        });
    }
    let _ = write!(
        o,
        "\n      ]\n    }},\n    {{\n      \"@id\": {},\n      \"@type\": \"uco-observable:ObservableRelationship\",\n      \"uco-core:source\": {{\n        \"@id\": {}\n      }},\n      \"uco-core:target\": {{\n        \"@id\": {}\n      }},\n      \"uco-core:kindOfRelationship\": \"Contained_Within\",\n      \"uco-core:isDirectional\": true\n    }}",
        q(&format!(
            "kb:relationship-{}",
            uuid(&format!("{key}/within"))
        )),
        q(id),
        q(pid),
    );
    o
}

/// `v` printed by serde_json's pretty printer.
fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A node of the graph as printed at depth 2 of the document.
fn element(v: &Value) -> String {
    let mut out = String::from("    ");
    out.push_str(&pretty(v).replace('\n', "\n    "));
    out
}
