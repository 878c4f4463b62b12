//! Merging task results into a job's results, and the paging of results on
//! the wire (both directions, so clients and the embedded scan share it).

use crate::error::SchedError;
use std::collections::BTreeMap;
use trawl_analyzers::hash::{Blake3Part, merge_blake3};
use trawl_core::ScannerStat;
use trawl_proto::v1;
use trawl_report::{EvidenceSummary, JobResults, Limitation, Provenance, Timings};
use trawl_store::{JobRecord, Store, TaskKind, TaskRecord, TaskState};

fn rfc3339(ms: i64) -> Option<String> {
    if ms <= 0 {
        return None;
    }
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// One finished task's result, decoded, its findings converted.
struct Decoded<'a> {
    task: &'a TaskRecord,
    res: v1::TaskResult,
    features: Vec<trawl_core::Feature>,
    carved: Vec<trawl_core::CarvedFile>,
    yara: Vec<trawl_core::YaraMatch>,
    piecewise: Vec<trawl_core::PiecewiseHash>,
}

/// Builds the job's results from the results of its finished tasks.
///
/// # Errors
/// The state database failing.
pub fn build(
    store: &Store,
    rec: &JobRecord,
    tasks: &[TaskRecord],
) -> Result<JobResults, SchedError> {
    let meta = rec.evidence.clone().unwrap_or_default();
    let mut r = JobResults {
        job_id: rec.job_id.to_string(),
        case_id: rec.spec.case_id.to_string(),
        state: rec.state.name().to_string(),
        evidence: EvidenceSummary {
            path: meta.path.clone(),
            size: meta.size,
            format: meta.format.clone(),
            segments: meta.segments.clone(),
            stored_md5: meta.stored_md5.clone(),
            stored_sha1: meta.stored_sha1.clone(),
            metadata: meta.metadata.clone(),
            acquisition_errors: meta.acquisition_errors.clone(),
            upload_blake3: meta.upload_blake3.clone(),
            ..Default::default()
        },
        piecewise_window: rec.spec.hash.piecewise_window,
        ..Default::default()
    };
    let plan = rec.plan;
    let nshards = plan.map(|p| p.len()).unwrap_or(0) as usize;
    let mut parts: Vec<Option<Blake3Part>> = vec![None; nshards];
    let mut stats: BTreeMap<String, ScannerStat> = BTreeMap::new();
    let mut yara_partials = Vec::new();
    let mut file_hashes: Vec<trawl_core::FileHashes> = Vec::new();
    let mut scan_ms = 0u64;
    // Each task's result decoded and converted in parallel (tens of
    // thousands of findings), then gathered in task order.
    use rayon::prelude::*;
    let decoded = tasks
        .par_iter()
        .filter(|t| t.state == TaskState::Done)
        .map(|t| -> Result<Decoded<'_>, SchedError> {
            let Some(res) = store.result(&t.task_id)? else {
                return Err(SchedError::Internal(format!(
                    "task {} is done but its result is missing",
                    t.task_id
                )));
            };
            let yara = res.yara.iter().map(trawl_core::YaraMatch::from).collect();
            Ok(Decoded {
                task: t,
                features: res.features.iter().map(Into::into).collect(),
                carved: res.carved.iter().map(Into::into).collect(),
                piecewise: res.piecewise.iter().map(Into::into).collect(),
                yara,
                res,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for d in decoded {
        let (t, res) = (d.task, d.res);
        scan_ms += res.elapsed_ms;
        if let Some(b) = &res.blake3
            && let (Some(slot), Ok(v)) = (
                parts.get_mut(b.shard_index as usize),
                <[u8; 32]>::try_from(b.value.as_slice()),
            )
        {
            *slot = Some(if b.is_root {
                Blake3Part::Root(v)
            } else {
                Blake3Part::ChainingValue(v)
            });
        }
        if t.kind == TaskKind::StreamHash
            && let Some(s) = &res.stream
        {
            r.hashes.md5 = Some(s.md5.clone());
            r.hashes.sha1 = Some(s.sha1.clone());
            r.hashes.sha256 = Some(s.sha256.clone());
        }
        file_hashes.extend(res.file_hashes.iter().map(Into::into));
        r.features.extend(d.features);
        r.carved.extend(d.carved);
        for y in d.yara {
            // A shard's records of image rules are partial (merged below);
            // its carved files' matches, like other tasks' matches, final.
            if t.kind == TaskKind::Shard && y.is_shard_record() {
                yara_partials.push(y);
            } else {
                r.yara.push(y);
            }
        }
        r.piecewise.extend(d.piecewise);
        r.notes.extend(res.notes.iter().map(Into::into));
        for s in &res.stats {
            let s: ScannerStat = s.into();
            stats
                .entry(s.scanner.clone())
                .or_insert_with(|| ScannerStat {
                    scanner: s.scanner.clone(),
                    ..Default::default()
                })
                .add(&s);
        }
    }
    if rec.spec.analyses.hash {
        if let Some(plan) = plan {
            if parts.iter().all(Option::is_some) {
                let parts: Vec<Blake3Part> = parts.into_iter().flatten().collect();
                match merge_blake3(&plan, &parts) {
                    Ok(h) => r.hashes.blake3 = Some(hex::encode(h)),
                    Err(e) => r.errors.push(format!("BLAKE3 merge: {e}")),
                }
            } else {
                let missing: Vec<String> = parts
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.is_none())
                    .map(|(i, _)| i.to_string())
                    .collect();
                r.errors.push(format!(
                    "BLAKE3 of the image not computed: shard(s) {} were not examined",
                    missing.join(", ")
                ));
            }
        }
        if r.hashes.md5.is_none() && !rec.spec.hash.skip_stream {
            r.errors.push(
                "MD5/SHA-1/SHA-256 not computed: the stream-hash task did not complete".into(),
            );
        }
        r.hashes.computed_at = rfc3339(rec.finished_ms.max(rec.started_ms));
    }
    if let Some(d) = &r.evidence.upload_blake3
        && let Some(e) = store.evidence(d)?
    {
        r.evidence.upload_verified_at = rfc3339(e.completed_ms);
        r.evidence.uploaded_by = Some(e.uploader);
    }
    if rec.spec.analyses.files {
        match store.listing(&rec.job_id)? {
            Some(mut l) => {
                let hashed = file_hashes.len();
                let expected = l.records.iter().filter(|f| f.hashable()).count();
                trawl_analyzers::files::apply_hashes(&mut l, file_hashes);
                if hashed < expected {
                    r.errors.push(format!(
                        "file contents: {} of {expected} files were not hashed (their tasks did not complete)",
                        expected - hashed
                    ));
                }
                if let Err(e) = trawl_analyzers::files::apply_known(
                    &mut l,
                    &rec.spec.files.known,
                    &rec.spec.files.notable,
                ) {
                    r.errors.push(format!("known-file lookup: {e}"));
                }
                r.files = l.records;
                r.filesystems = Some(l.summary);
            }
            None => r
                .errors
                .push("the file-system listing of this job is missing".into()),
        }
    }
    if rec.spec.analyses.yara {
        let (decided, _, capped) = trawl_analyzers::yara::merge_shard_records(
            &yara_partials,
            rec.spec.yara.max_matches_per_pattern as usize,
        );
        r.yara.extend(decided);
        r.notes.extend(capped);
        if let Some(rs) = store.ruleset(&rec.spec.yara.ruleset_digest)? {
            for d in rs.diagnostics.iter().filter(|d| d.severity == "error") {
                let msg = format!(
                    "rule refused by yara-x: {}:{}:{}{}: {}",
                    d.file,
                    d.line,
                    d.column,
                    if d.rule.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", d.rule)
                    },
                    d.message
                );
                if r.notes.iter().any(|n| n.message == msg) {
                    continue;
                }
                r.notes.push(trawl_core::Note {
                    analysis: "yara".into(),
                    offset: 0,
                    message: msg,
                });
            }
        }
    }
    r.stats = stats.into_values().collect();
    r.limitations = rec
        .limitations
        .iter()
        .map(|l| Limitation {
            start: l.start,
            end: l.end,
            task: l.task_id.to_string(),
            error: l.error.clone(),
            attempts: l.attempts,
        })
        .collect();
    if !rec.error.is_empty() {
        r.errors.push(rec.error.clone());
    }
    r.provenance = Provenance {
        tool: trawl_core::TOOL_NAME.into(),
        version: trawl_core::TOOL_VERSION.into(),
        shard_size: rec.spec.shard_size,
        margin: rec.spec.margin,
        shards: plan.map(|p| p.len()).unwrap_or(0),
        analyses: rec
            .spec
            .analyses
            .iter()
            .map(|a| a.name().to_string())
            .collect(),
        settings: serde_json::to_value(&rec.spec).unwrap_or_default(),
        command: Vec::new(),
        hostname: String::new(),
        workers: 0,
    };
    let end = if rec.finished_ms > 0 {
        rec.finished_ms
    } else {
        trawl_store::now_ms()
    };
    let wall = (end - rec.started_ms.max(rec.created_ms)).max(0) as u64;
    r.timings = Timings {
        submitted_at: rfc3339(rec.created_ms),
        started_at: rfc3339(rec.started_ms),
        finished_at: rfc3339(rec.finished_ms),
        wall_ms: wall,
        throughput_mb_s: if wall > 0 {
            meta.size as f64 / 1e3 / wall as f64
        } else {
            0.0
        },
    };
    let _ = scan_ms;
    r.verify_stored();
    // After every finding is in (the image matches decided from the
    // shards' records included).
    // A feature found both on the image and through a file: once (the
    // image's record; attribution names the file).
    // Identical decoded buffers (gzip, ZIP, base64 ...): the first copy in
    // image order is scanned, the others listed as its duplicates.
    let (dups, dup_bytes) = trawl_features::dedupe_layers(&mut r.features);
    if dups > 0 {
        r.notes.push(trawl_core::Note {
            analysis: "features".into(),
            offset: 0,
            message: format!(
                "{dups} decoded buffer(s), {dup_bytes} bytes, identical to one found earlier: not scanned again (features/decoded.txt lists them, duplicate_of=PATH)"
            ),
        });
    }
    let twice = trawl_analyzers::files::dedupe_file_features(&mut r.features);
    if twice > 0 {
        r.notes.push(trawl_core::Note {
            analysis: "features".into(),
            offset: 0,
            message: format!(
                "{twice} feature(s) found both on the image and in a fragmented or compressed file's content reported once, at their image offset"
            ),
        });
    }
    if rec.spec.analyses.files && rec.spec.files.skip_known {
        skip_known(&mut r);
    }
    if rec.spec.carve.unallocated_only {
        carve_unallocated_only(&mut r, rec.evidence.as_ref().map_or(0, |e| e.size));
    }
    r.sort();
    Ok(r)
}

/// `--skip-known`: features inside known files' content, image YARA
/// matches whose every string lies there, and the per-file YARA matches of
/// known files are dropped (and counted in a note); the files' own digests
/// stay in the listing.
fn skip_known(r: &mut JobResults) {
    use trawl_analyzers::files::{fs_target, in_ranges, known_ranges_of};
    let ranges = known_ranges_of(&r.files);
    if ranges.is_empty() {
        return;
    }
    let known: std::collections::HashSet<String> = r
        .files
        .iter()
        .filter(|f| f.known.as_deref() == Some("known"))
        .map(|f| fs_target(f.partition_offset, &f.path))
        .collect();
    let before = (r.features.len(), r.yara.len());
    r.features.retain(|f| !in_ranges(&ranges, f.offset));
    r.yara.retain(|y| {
        if y.target.starts_with("fs:") {
            return !known.contains(&y.target);
        }
        y.target != "image"
            || y.strings.is_empty()
            || !y.strings.iter().all(|s| in_ranges(&ranges, s.offset))
    });
    let (df, dy) = (before.0 - r.features.len(), before.1 - r.yara.len());
    r.notes.push(trawl_core::Note {
        analysis: "files".into(),
        offset: 0,
        message: format!(
            "--skip-known: {df} feature(s) and {dy} YARA match(es) inside known files were left out"
        ),
    });
}

/// `--carve-scope unallocated`: what was carved (the shards carved only
/// the space, see `trawl_attrib::CarveSpace`), in a note; file systems
/// whose allocation is not known were carved whole, and are named.
fn carve_unallocated_only(r: &mut JobResults, image_size: u64) {
    let Some(summary) = &r.filesystems else {
        return;
    };
    let space = trawl_attrib::CarveSpace::of(summary, image_size);
    let mut message = format!(
        "--carve-scope unallocated: {} of {image_size} bytes carved (the unallocated space of {} file system(s) and the space outside them, end to end)",
        space.bytes(),
        summary.filesystems.len() - space.unknown.len()
    );
    if !space.unknown.is_empty() {
        let at: Vec<String> = space.unknown.iter().map(u64::to_string).collect();
        message.push_str(&format!(
            "; carved whole, their allocation not known: the file system(s) at {}",
            at.join(", ")
        ));
    }
    r.notes.push(trawl_core::Note {
        analysis: "carve".into(),
        offset: 0,
        message,
    });
}

/// Builds the job's results as one wire page.
///
/// # Errors
/// As [`build`].
pub fn merge_job(
    store: &Store,
    rec: &JobRecord,
    tasks: &[TaskRecord],
) -> Result<v1::ResultsPage, SchedError> {
    Ok(to_page(&mut build(store, rec, tasks)?))
}

/// One page holding all of `r` (its lists are lent to the conversion and
/// put back, so the summary is serialized without copying them).
pub fn to_page(r: &mut JobResults) -> v1::ResultsPage {
    let features = std::mem::take(&mut r.features);
    let carved = std::mem::take(&mut r.carved);
    let yara = std::mem::take(&mut r.yara);
    let piecewise = std::mem::take(&mut r.piecewise);
    let files = std::mem::take(&mut r.files);
    let results_json = serde_json::to_string(&*r).unwrap_or_default();
    let wfiles = {
        use rayon::prelude::*;
        files.par_iter().map(Into::into).collect()
    };
    let ((wf, wc), (wy, wp)) = rayon::join(
        || {
            rayon::join(
                || features.iter().map(Into::into).collect(),
                || carved.iter().map(Into::into).collect(),
            )
        },
        || {
            rayon::join(
                || yara.iter().map(Into::into).collect(),
                || piecewise.iter().map(Into::into).collect(),
            )
        },
    );
    r.features = features;
    r.carved = carved;
    r.yara = yara;
    r.piecewise = piecewise;
    r.files = files;
    v1::ResultsPage {
        job: None,
        files: wfiles,
        features: wf,
        carved: wc,
        yara: wy,
        piecewise: wp,
        summary: Some(v1::JobSummary {
            md5: r.hashes.md5.clone().unwrap_or_default(),
            sha1: r.hashes.sha1.clone().unwrap_or_default(),
            sha256: r.hashes.sha256.clone().unwrap_or_default(),
            blake3: r.hashes.blake3.clone().unwrap_or_default(),
            stats: r.stats.iter().map(Into::into).collect(),
            notes: r.notes.iter().map(Into::into).collect(),
            results_json,
            scan_ms: r.timings.wall_ms,
        }),
        last: true,
    }
}

/// Splits a page into pages of at most `size` findings; the first carries
/// the job and the summary, the last has `last` set.
pub fn split_pages(page: v1::ResultsPage, size: usize) -> Vec<v1::ResultsPage> {
    let size = size.max(1);
    let mut out = vec![v1::ResultsPage {
        job: page.job,
        summary: page.summary,
        ..Default::default()
    }];
    fn chunks<T: Clone>(
        v: Vec<T>,
        size: usize,
        out: &mut Vec<v1::ResultsPage>,
        put: fn(&mut v1::ResultsPage, Vec<T>),
    ) {
        for c in v.chunks(size) {
            let mut p = v1::ResultsPage::default();
            put(&mut p, c.to_vec());
            out.push(p);
        }
    }
    chunks(page.features, size, &mut out, |p, v| p.features = v);
    chunks(page.carved, size, &mut out, |p, v| p.carved = v);
    chunks(page.yara, size, &mut out, |p, v| p.yara = v);
    chunks(page.piecewise, size, &mut out, |p, v| p.piecewise = v);
    chunks(page.files, size, &mut out, |p, v| p.files = v);
    if let Some(l) = out.last_mut() {
        l.last = true;
    }
    out
}

/// Reassembles results from pages (in order).
///
/// # Errors
/// No summary in the first page, or an undecodable summary.
pub fn from_pages(pages: Vec<v1::ResultsPage>) -> Result<(Option<v1::Job>, JobResults), String> {
    let mut it = pages.into_iter();
    let first = it.next().ok_or("no results received")?;
    let summary = first
        .summary
        .clone()
        .ok_or("the first results page has no summary")?;
    let mut r: JobResults = serde_json::from_str(&summary.results_json)
        .map_err(|e| format!("undecodable results summary: {e}"))?;
    let job = first.job.clone();
    for p in std::iter::once(first).chain(it) {
        r.features.extend(p.features.iter().map(Into::into));
        r.carved.extend(p.carved.iter().map(Into::into));
        r.yara.extend(p.yara.iter().map(Into::into));
        r.piecewise.extend(p.piecewise.iter().map(Into::into));
        r.files.extend(p.files.iter().map(Into::into));
    }
    Ok((job, r))
}
