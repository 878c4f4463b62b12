//! The job page: its facts, live progress, findings, quarantined ranges,
//! top features (card numbers masked unless revealed) and YARA hits.

use super::super::i18n::Lang;
use super::files::files_link;
use super::job_charts::{count_bars, throughput_chart, throughput_series};
use super::summary::{Summary, is_card, mask_card};
use super::{
    analyses, duration_ms, layout_signed, permille, progress_of, state_html, state_key, url_part,
};
use crate::core::Caller;
use maud::{Markup, html};
use std::collections::BTreeMap;
use trawl_proto::v1;
use trawl_store::{JobRecord, TaskKind, TaskRecord};

/// Findings per kind, most first, in words, with their counts.
fn findings_rows(l: Lang, f: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    findings_keyed(l, f)
        .into_iter()
        .map(|(_, w, n)| (w, n))
        .collect()
}

/// Findings per kind, most first: (kind, words, count).
fn findings_keyed(l: Lang, f: &BTreeMap<String, u64>) -> Vec<(String, String, u64)> {
    let mut v: Vec<(String, String, u64)> = f
        .iter()
        .map(|(k, n)| (k.clone(), l.word("kind", k), *n))
        .collect();
    v.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
    v
}

fn counts_note(l: Lang, j: &JobRecord) -> &'static str {
    if j.counts.is_some() {
        l.t("final_note")
    } else {
        l.t("provisional_note")
    }
}

/// One live update of the job page.
pub fn progress_json(l: Lang, j: &JobRecord, wire: &v1::Job) -> serde_json::Value {
    let p = wire.progress.clone().unwrap_or_default();
    let f = progress_of(j);
    serde_json::json!({
        "state": l.word("state", state_key(j.state)),
        "final": j.state.is_final(),
        "fraction": f,
        "pct": l.pct(f),
        "bytes_done": j.progress.bytes_done,
        "bytes_total": j.progress.bytes_total,
        "tasks": format!("{} / {}", l.int(u64::from(j.progress.tasks_done)), l.int(u64::from(j.progress.tasks_total))),
        "throughput_bps": p.throughput_bps.max(0.0),
        "throughput": l.rate(p.throughput_bps),
        "eta": if j.state.is_final() { "-".to_string() } else { l.eta(p.eta_seconds) },
        "findings": findings_rows(l, &j.progress.findings).into_iter().map(|(k, n)| (k, l.int(n))).collect::<Vec<_>>(),
        "findings_final": j.counts.is_some(),
        "counts_note": counts_note(l, j),
    })
}

/// The passes a job makes over its evidence: (words, bytes).
fn passes(l: Lang, tasks: &[TaskRecord], size: u64) -> Vec<(&'static str, u64)> {
    let mut v = Vec::new();
    if tasks.iter().any(|t| t.kind == TaskKind::Shard) {
        v.push((l.t("pass_shards"), size));
    }
    if tasks.iter().any(|t| t.kind == TaskKind::StreamHash) {
        v.push((l.t("pass_stream"), size));
    }
    v
}

/// Everything the job page needs.
pub struct JobView<'a> {
    pub job: &'a JobRecord,
    pub wire: &'a v1::Job,
    pub tasks: &'a [TaskRecord],
    pub summary: Option<&'a Summary>,
    pub may_cancel: bool,
    /// The caller may reveal card numbers (investigators).
    pub may_reveal: bool,
    /// Card numbers are shown in full (after an audited reveal).
    pub revealed: bool,
}

/// A setting's list, or "all" when empty (every default).
fn list_or_all(l: Lang, v: &[String]) -> String {
    if v.is_empty() {
        l.t("all").to_string()
    } else {
        v.join(", ")
    }
}

/// A time, or `-` for none.
fn ago_or_dash(l: Lang, ms: i64, now: i64) -> Markup {
    html! {
        @if ms > 0 { (l.ago(ms, now)) } @else { "-" }
    }
}

/// The job's settings, in one line.
fn settings(l: Lang, j: &JobRecord) -> Markup {
    let s = &j.spec;
    let rule_set = if s.yara.ruleset_name.is_empty() && s.yara.sources.is_empty() {
        l.t("inline_rules").to_string()
    } else if s.yara.ruleset_name.is_empty() {
        s.yara
            .sources
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        s.yara.ruleset_name.clone()
    };
    html! {
        (l.t("shard_size")) ": " (l.bytes(s.shard_size)) " · " (l.t("priority")) ": " (l.word("priority", s.priority.name()))
        @if s.analyses.hash {
            " · " (l.t("piecewise")) ": "
            @if s.hash.piecewise_window > 0 { (l.bytes(s.hash.piecewise_window)) } @else { (l.t("no")) }
        }
        @if s.analyses.features {
            " · " (l.t("scanners")) ": " (list_or_all(l, &s.features.scanners))
        }
        @if s.analyses.carve {
            " · " (l.t("carve_types")) ": " (list_or_all(l, &s.carve.types))
        }
        @if s.analyses.yara {
            " · " (l.t("rule_set")) ": " (rule_set) " (" (l.t("digest")) ": " span class="mono" { (s.yara.ruleset_digest) } ")"
        }
    }
}

/// The facts of the job: evidence, people, times, outcome, settings,
/// passes and hashes.
fn facts(l: Lang, v: &JobView, size: u64) -> Markup {
    let j = v.job;
    let now = trawl_store::now_ms();
    let ps = passes(l, v.tasks, size);
    let read: u64 = ps.iter().map(|p| p.1).sum();
    let pass_names = ps.iter().map(|p| p.0).collect::<Vec<_>>().join(", ");
    html! {
        h2 { (l.t("facts")) }
        dl class="facts" id="facts" {
            dt { (l.t("evidence")) }
            dd {
                span class="mono" { (j.spec.evidence_name) } " — " (l.bytes(size)) " "
                @if let Some(e) = &j.evidence { "(" (e.format) ")" }
            }
            dt { (l.t("submitter")) } dd { (j.submitter) }
            dt { (l.t("submitted")) } dd { (l.ago(j.created_ms, now)) }
            dt { (l.t("started")) } dd { (ago_or_dash(l, j.started_ms, now)) }
            dt { (l.t("finished")) } dd { (ago_or_dash(l, j.finished_ms, now)) }
            dt { (l.t("duration")) }
            dd { (duration_ms(j).map(|d| l.duration_ms(d)).unwrap_or_else(|| "-".into())) }
            dt { (l.t("outcome")) }
            dd {
                (state_html(l, j.state))
                @if !j.error.is_empty() { " — " span class="err" { (j.error) } }
                @if !j.limitations.is_empty() {
                    " — " (l.t("quarantined")) ": " (l.int(j.limitations.len() as u64))
                }
            }
            dt { (l.t("analyses")) } dd { (analyses(l, j)) }
            dt { (l.t("settings")) } dd { (settings(l, j)) }
            dt { (l.t("passes")) }
            dd {
                span data-passes=(ps.len()) { (l.int(ps.len() as u64)) }
                " (" (pass_names) ") — " (l.t("evidence_read")) ": " (l.bytes(read))
            }
            dt { (l.t("hashes")) }
            dd {
                @match v.summary {
                    Some(sm) if !sm.hashes.is_empty() => {
                        @for (a, d) in &sm.hashes {
                            (a) ": " span class="mono" { (d) } br;
                        }
                        @for (a, stored, _, ok) in &sm.verification {
                            (l.t("stored_hashes")) " (" (a) "): " span class="mono" { (stored) }
                            " — " (if *ok { l.t("yes") } else { l.t("no") }) br;
                        }
                    }
                    Some(_) => { (l.t("none")) }
                    None => { (l.t("when_complete")) }
                }
            }
        }
    }
}

/// Progress, live while running (`/assets/app.js` follows the events).
fn live(l: Lang, v: &JobView) -> Markup {
    let j = v.job;
    let p = v.wire.progress.clone().unwrap_or_default();
    let f = progress_of(j);
    let id = url_part(&j.job_id);
    let (svg, table) = throughput_chart(l, &throughput_series(j, v.tasks));
    html! {
        h2 { (l.t("progress")) }
        div id="live" data-events={ "/jobs/" (id) "/events" } data-chart={ "/jobs/" (id) "/throughput.svg" } {
            p { (l.t("state")) ": " b id="state" { (l.word("state", state_key(j.state))) } }
            p {
                progress id="progress" max="1000" value=(permille(f)) {}
                " " span id="pct" { (l.pct(f)) }
                " · " (l.t("throughput")) ": " span id="rate" { (l.rate(p.throughput_bps)) }
                " · " (l.t("tasks")) ": "
                span id="tasks" { (l.int(u64::from(j.progress.tasks_done))) " / " (l.int(u64::from(j.progress.tasks_total))) }
                @if !j.state.is_final() {
                    " · " (l.t("eta")) ": " span id="eta" { (l.eta(p.eta_seconds)) }
                }
            }
            div id="throughput-box" { (svg) }
            (table)
        }
    }
}

/// Findings per kind (final counts, or provisional sums while running),
/// and the carved files per type.
fn findings(l: Lang, v: &JobView) -> Markup {
    let j = v.job;
    let counts = j
        .counts
        .clone()
        .or_else(|| v.summary.map(|s| s.counts.clone()));
    let findings = counts
        .as_ref()
        .map(|c| c.findings())
        .unwrap_or_else(|| j.progress.findings.clone());
    let rows = findings_rows(l, &findings);
    let carved: Option<(Vec<(String, u64)>, u64)> =
        counts.as_ref().filter(|c| c.carve.total > 0).map(|c| {
            let mut per: Vec<(String, u64)> = c
                .carve
                .per_type
                .iter()
                .map(|(k, n)| (k.clone(), *n))
                .collect();
            per.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            (per, c.carve.validated)
        });
    html! {
        h2 { (l.t("findings")) }
        p class=(if counts.is_some() { "note" } else { "provisional" }) id="counts-note" {
            (if counts.is_some() { l.t("final_note") } else { counts_note(l, j) })
        }
        table id="findings-table" {
            thead { tr { th { (l.t("kind")) } th class="num" { (l.t("count")) } } }
            tbody id="findings" {
                @for (k, w, n) in findings_keyed(l, &findings) {
                    tr data-kind=(k) data-n=(n) { td { (w) } td class="num" { (l.int(n)) } }
                }
            }
        }
        @if counts.is_some() && !rows.is_empty() {
            (count_bars(l, "findings-chart", l.t("findings_per_kind"), l.t("kind"), &rows))
        }
        @if let Some((per, validated)) = &carved {
            h3 { (l.t("carved_per_type")) }
            (count_bars(l, "carved-chart", l.t("carved_per_type"), l.t("file_type"), per))
            table id="carved-types" {
                tr { th { (l.t("file_type")) } th class="num" { (l.t("count")) } }
                @for (k, n) in per {
                    tr data-kind=(k) data-n=(n) { td { (k) } td class="num" { (l.int(*n)) } }
                }
                tr { td { (l.t("validated")) } td class="num" { (l.int(*validated)) } }
            }
        }
    }
}

/// A form posting the session's CSRF token to `action`.
fn post_button(action: &str, csrf: &str, id: &str, label: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            button id=(id) { (label) }
        }
    }
}

/// The top features, card numbers masked unless revealed.
fn top_features(l: Lang, csrf: &str, v: &JobView) -> Markup {
    let id = url_part(&v.job.job_id);
    html! {
        h2 { (l.t("top_features")) }
        p class="note" { (l.t("top_features_note")) }
        @match v.summary {
            Some(s) if !s.top_features.is_empty() => {
                @if s.top_features.iter().any(|t| is_card(&t.0)) {
                    @if v.revealed {
                        p class="note" id="revealed" { (l.t("revealed_note")) }
                    } @else {
                        p class="note" id="masked" { (l.t("masked_note")) }
                        @if v.may_reveal {
                            (post_button(&["/jobs/", &id, "/reveal"].concat(), csrf, "reveal", l.t("reveal")))
                        }
                    }
                }
                table id="top-features" {
                    tr {
                        th { (l.t("scanner")) } th { (l.t("feature")) } th class="num" { (l.t("count")) }
                        @if s.has_files { th { (l.t("file")) } }
                    }
                    @for (sc, feat, n) in &s.top_features {
                        @let shown = if is_card(sc) && !v.revealed { mask_card(feat) } else { feat.clone() };
                        tr {
                            td { (l.word("kind", sc)) } td class="mono" { (shown) } td class="num" { (l.int(*n)) }
                            @if s.has_files {
                                td class="mono" {
                                    @if let Some(p) = s.feature_files.get(&(sc.clone(), feat.clone())) {
                                        a href=(files_link(&v.job.job_id, p)) { (p) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Some(_) => { p { (l.t("none")) } }
            None => { p { (l.t("when_complete")) } }
        }
    }
}

pub fn job(l: Lang, c: &Caller, csrf: &str, v: &JobView) -> Markup {
    let j = v.job;
    let id = url_part(&j.job_id);
    let size = j
        .evidence
        .as_ref()
        .map_or(j.progress.bytes_total, |e| e.size);
    let body = html! {
        h1 { (l.t("job")) " " (j.job_id) " — " (l.t("case")) " " (j.spec.case_id.as_str()) }
        (facts(l, v, size))
        (live(l, v))
        (findings(l, v))
        h2 { (l.t("quarantined")) }
        @if j.limitations.is_empty() {
            p { (l.t("none")) }
        } @else {
            table {
                tr { th { (l.t("bytes_range")) } th { (l.t("task")) } th { (l.t("attempts")) } th { (l.t("reason")) } }
                @for q in &j.limitations {
                    tr {
                        td class="num" { (q.start) ".." (q.end) }
                        td { (q.task_id) }
                        td class="num" { (q.attempts) }
                        td { (q.error) }
                    }
                }
            }
        }
        @if v.may_cancel && !j.state.is_final() {
            (post_button(&["/jobs/", &id, "/cancel"].concat(), csrf, "cancel", l.t("cancel")))
        }
        @if j.state.is_final() {
            p { a id="download" href={ "/jobs/" (id) "/report.tar" } { (l.t("download")) } }
        }
        @if j.spec.analyses.files {
            p { a id="files-link" href={ "/jobs/" (id) "/files" } { (l.t("files")) } }
        }
        (top_features(l, csrf, v))
        h2 { (l.t("yara_hits")) }
        @match v.summary {
            Some(s) if !s.yara.is_empty() => {
                table id="yara-hits" {
                    tr {
                        th { (l.t("family")) } th { (l.t("rule")) } th class="num" { (l.t("count")) }
                        @if s.has_files { th { (l.t("file")) } }
                    }
                    @for (ns, r, n) in &s.yara {
                        tr {
                            td { (ns) } td { (r) } td class="num" { (l.int(*n)) }
                            @if s.has_files {
                                td class="mono" {
                                    @if let Some(p) = s.yara_files.get(&(ns.clone(), r.clone())) {
                                        a href=(files_link(&j.job_id, p)) { (p) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Some(_) => { p { (l.t("none")) } }
            None => { p { (l.t("when_complete")) } }
        }
    };
    layout_signed(l, c, csrf, &j.job_id, body)
}
