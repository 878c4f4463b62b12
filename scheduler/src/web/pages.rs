//! The dashboard's pages, rendered on the server. Every value that comes
//! from evidence, users or rules goes through [`esc`]; every word through
//! [`Lang`].
//!
//! Counts: a completed job shows its merged report's counts
//! ([`trawl_core::Counts`], stored with the completed state); a running
//! job shows per-shard sums, labelled provisional.

use super::charts::{self, Axis, Series};
use super::esc;
use super::i18n::Lang;
use crate::core::{Caller, PoolView, Scheduler};
use std::collections::{BTreeMap, BTreeSet};
use trawl_core::Counts;
use trawl_proto::v1;
use trawl_store::{JobRecord, JobState, TaskKind, TaskRecord};

pub const CSS: &str = r#"
body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#f5f7fa}
header{background:#1d3557;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header .me{margin-left:auto;font-size:.9em}
header form{display:inline}
main{padding:1em 1.5em}
table{border-collapse:collapse;background:#fff;margin:.5em 0 1.5em}
th,td{border:1px solid #d0d7e1;padding:.3em .6em;text-align:left;font-size:.92em;vertical-align:top}
th{background:#e8edf3}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
progress{width:14em;height:1.1em}
.state-completed,.health-up{color:#2a7a2a}.state-failed,.state-cancelled,.health-lost{color:#a02020}.state-running{color:#1d5fa0}
.err{color:#a02020}
.note{color:#4a5a6a;font-size:.9em}
.provisional{color:#8a5a00;font-style:italic}
svg.chart{background:#fff;border:1px solid #d0d7e1;display:block;margin:.5em 0}
svg.chart .grid{stroke:#e3e8ef}
svg.chart .axis-line{stroke:#33414f}
svg.chart text{font-size:11px;fill:#33414f}
svg.chart .chart-title{font-weight:600;font-size:12px}
svg.chart .axis-label{font-size:11px;font-weight:600}
.mono{font-family:ui-monospace,monospace}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.25em 1em;background:#fff;padding:.8em;border:1px solid #d0d7e1;max-width:70em}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
.site{background:#fff;border:1px solid #d0d7e1;padding:.6em 1em;margin:0 0 1.2em}
.tag{display:inline-block;background:#e8edf3;border-radius:3px;padding:0 .4em;margin:0 .2em .2em 0;font-size:.85em}
form.filters{background:#fff;border:1px solid #d0d7e1;padding:.5em .8em;display:flex;flex-wrap:wrap;gap:.8em;align-items:end}
form.filters label{display:flex;flex-direction:column;font-size:.85em}
details{margin:0 0 1.2em}
#indicators td:first-child,#indicators td:nth-child(2){white-space:nowrap}
"#;

pub const JS: &str = r#"
(function(){
  var el = document.getElementById('live');
  if (!el || !window.EventSource) return;
  var url = el.getAttribute('data-events');
  var chartUrl = el.getAttribute('data-chart');
  var es = new EventSource(url);
  var lastChart = 0;
  function text(id, v){ var e = document.getElementById(id); if (e) e.textContent = v; }
  es.onmessage = function(m){
    var d = JSON.parse(m.data);
    var p = document.getElementById('progress');
    if (p) { p.max = 1000; p.value = Math.round(d.fraction * 1000); }
    text('pct', d.pct);
    text('state', d.state);
    text('rate', d.throughput);
    text('eta', d.eta);
    text('tasks', d.tasks);
    text('counts-note', d.counts_note);
    var tb = document.getElementById('findings');
    if (tb) {
      while (tb.firstChild) tb.removeChild(tb.firstChild);
      d.findings.forEach(function(f){
        var tr = document.createElement('tr');
        var a = document.createElement('td'); a.textContent = f[0];
        var b = document.createElement('td'); b.textContent = f[1]; b.className = 'num';
        tr.appendChild(a); tr.appendChild(b); tb.appendChild(tr);
      });
    }
    var box = document.getElementById('throughput-box');
    var now = Date.now();
    if (box && chartUrl && now - lastChart > 2000) {
      lastChart = now;
      fetch(chartUrl, {credentials: 'same-origin'}).then(function(r){ return r.ok ? r.text() : null; })
        .then(function(svg){ if (svg) box.innerHTML = svg; });
    }
    if (d.final) { es.close(); setTimeout(function(){ location.reload(); }, 800); }
  };
})();
"#;

/// A path segment for a URL (job ids are `[A-Za-z0-9_-]`; anything else is
/// percent-encoded).
pub fn url_part(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn state_key(s: JobState) -> &'static str {
    match s {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Completed => "completed",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

fn state_html(l: Lang, s: JobState) -> String {
    let k = state_key(s);
    format!(
        "<span class=\"state-{k}\" data-state=\"{k}\">{}</span>",
        esc(&l.word("state", k))
    )
}

/// The page frame: navigation, the signed-in user, sign out.
pub fn layout(l: Lang, who: Option<&Caller>, title: &str, body: &str) -> String {
    layout_csrf(l, who, "", title, body)
}

/// The page frame for a signed-in user (with the sign-out button).
pub fn layout_signed(l: Lang, who: &Caller, csrf: &str, title: &str, body: &str) -> String {
    layout_csrf(l, Some(who), csrf, title, body)
}

fn layout_csrf(l: Lang, who: Option<&Caller>, csrf: &str, title: &str, body: &str) -> String {
    let nav = match who {
        Some(c) => format!(
            "<a href=\"/cases\">{}</a><a href=\"/pool\">{}</a><a href=\"/indicators\">{}</a><span class=\"me\">{} <b>{}</b> ({}) {}</span>",
            l.t("cases"),
            l.t("capacity"),
            l.t("indicators"),
            l.t("signed_in_as"),
            esc(&c.user),
            esc(&l.word("role", c.role.as_str())),
            if csrf.is_empty() {
                String::new()
            } else {
                format!(
                    "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>{}</button></form>",
                    esc(csrf),
                    l.t("sign_out")
                )
            }
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{} — trawl</title><link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body><header><span>trawl</span>{nav}</header><main>{body}</main><script src=\"/assets/app.js\"></script></body></html>",
        l.code(),
        esc(title)
    )
}

pub fn login(l: Lang, csrf: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"err\" id=\"login-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    layout(
        l,
        None,
        l.t("sign_in"),
        &format!(
            "<h1>{}</h1>{err}<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><label>{} <input type=\"password\" name=\"token\" id=\"token\" size=\"70\" autocomplete=\"off\"></label> <button id=\"sign-in\">{}</button></form>",
            l.t("title"),
            esc(csrf),
            l.t("token"),
            l.t("sign_in")
        ),
    )
}

fn progress_of(j: &JobRecord) -> f64 {
    let p = &j.progress;
    if p.bytes_total > 0 {
        (p.bytes_done as f64 / p.bytes_total as f64).min(1.0)
    } else if j.state == JobState::Completed {
        1.0
    } else {
        0.0
    }
}

/// The analyses of a job, in words.
fn analyses(l: Lang, j: &JobRecord) -> String {
    let a = &j.spec.analyses;
    [
        (a.hash, "hash"),
        (a.carve, "carve"),
        (a.features, "features"),
        (a.yara, "yara"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, k)| l.word("analysis", k))
    .collect::<Vec<_>>()
    .join(", ")
}

/// How long a job took (or has been running).
fn duration_ms(j: &JobRecord) -> Option<i64> {
    let start = if j.started_ms > 0 {
        j.started_ms
    } else {
        j.created_ms
    };
    if j.finished_ms > 0 {
        Some(j.finished_ms - start)
    } else if j.state == JobState::Running {
        Some(trawl_store::now_ms() - start)
    } else {
        None
    }
}

/// The filters and order of the cases list (query string).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct CasesQuery {
    pub state: String,
    /// `YYYY-MM-DD` (UTC), inclusive.
    pub from: String,
    pub to: String,
    pub submitter: String,
    /// `submitted` (default), `duration`, `state`, `evidence`, `job`.
    pub sort: String,
    /// `asc` or `desc` (default).
    pub dir: String,
}

/// Midnight UTC of `YYYY-MM-DD` in Unix ms.
fn day_ms(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u8 = it.next()?.parse().ok()?;
    let d: u8 = it.next()?.parse().ok()?;
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

impl CasesQuery {
    fn keep(&self, j: &JobRecord) -> bool {
        (self.state.is_empty() || self.state == state_key(j.state))
            && (self.submitter.is_empty() || j.submitter == self.submitter)
            && day_ms(&self.from).is_none_or(|t| j.created_ms >= t)
            && day_ms(&self.to).is_none_or(|t| j.created_ms < t + 86_400_000)
    }

    fn order(&self, a: &JobRecord, b: &JobRecord) -> std::cmp::Ordering {
        let o = match self.sort.as_str() {
            "duration" => duration_ms(a).cmp(&duration_ms(b)),
            "state" => state_key(a.state).cmp(state_key(b.state)),
            "evidence" => a.spec.evidence_name.cmp(&b.spec.evidence_name),
            "job" => a.seq.cmp(&b.seq),
            _ => a.created_ms.cmp(&b.created_ms),
        }
        .then(a.seq.cmp(&b.seq));
        if self.dir == "asc" { o } else { o.reverse() }
    }
}

fn select(name: &str, id: &str, current: &str, options: &[(String, String)]) -> String {
    let mut o = format!("<select name=\"{name}\" id=\"{id}\">");
    for (v, label) in options {
        o.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            esc(v),
            if v == current { " selected" } else { "" },
            esc(label)
        ));
    }
    o.push_str("</select>");
    o
}

pub fn cases(l: Lang, c: &Caller, csrf: &str, jobs: &[JobRecord], q: &CasesQuery) -> String {
    let now = trawl_store::now_ms();
    let submitters: BTreeSet<&str> = jobs.iter().map(|j| j.submitter.as_str()).collect();
    let mut by_case: BTreeMap<&str, Vec<&JobRecord>> = BTreeMap::new();
    for j in jobs.iter().filter(|j| q.keep(j)) {
        by_case.entry(j.spec.case_id.as_str()).or_default().push(j);
    }
    let mut body = format!("<h1>{}</h1>", l.t("cases"));
    // Filters and sorting: a plain GET form.
    let mut states = vec![(String::new(), l.t("all").to_string())];
    for s in ["queued", "running", "completed", "failed", "cancelled"] {
        states.push((s.into(), l.word("state", s)));
    }
    let mut subs = vec![(String::new(), l.t("all").to_string())];
    subs.extend(submitters.iter().map(|s| (s.to_string(), s.to_string())));
    let sorts: Vec<(String, String)> = [
        ("submitted", l.t("submitted")),
        ("duration", l.t("duration")),
        ("state", l.t("state")),
        ("evidence", l.t("evidence")),
        ("job", l.t("job")),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let dirs = vec![
        ("desc".to_string(), l.t("descending").to_string()),
        ("asc".to_string(), l.t("ascending").to_string()),
    ];
    body.push_str(&format!(
        "<form class=\"filters\" method=\"get\" action=\"/cases\" id=\"filters\"><label>{} {}</label><label>{} {}</label><label>{} <input type=\"date\" name=\"from\" id=\"f-from\" value=\"{}\"></label><label>{} <input type=\"date\" name=\"to\" id=\"f-to\" value=\"{}\"></label><label>{} {}</label><label>&nbsp;{}</label><button id=\"f-apply\">{}</button></form>",
        l.t("state"),
        select("state", "f-state", &q.state, &states),
        l.t("submitter"),
        select("submitter", "f-submitter", &q.submitter, &subs),
        l.t("from"),
        esc(&q.from),
        l.t("to"),
        esc(&q.to),
        l.t("sort"),
        select("sort", "f-sort", &q.sort, &sorts),
        select("dir", "f-dir", &q.dir, &dirs),
        l.t("apply"),
    ));
    if by_case.is_empty() {
        body.push_str(&format!("<p>{}</p>", l.t("no_jobs")));
    }
    for (case, mut js) in by_case {
        js.sort_by(|a, b| q.order(a, b));
        body.push_str(&format!(
            "<h2>{} {}</h2><table class=\"jobs\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            l.t("case"),
            esc(case),
            l.t("job"),
            l.t("state"),
            l.t("submitted"),
            l.t("submitter"),
            l.t("evidence"),
            l.t("analyses"),
            l.t("duration"),
            l.t("progress"),
        ));
        for j in js {
            let f = progress_of(j);
            body.push_str(&format!(
                "<tr data-job=\"{}\"><td><a class=\"job\" href=\"/jobs/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{} <span class=\"note\">({})</span></td><td>{}</td><td class=\"num\">{}</td><td><progress max=\"1000\" value=\"{}\"></progress> {}</td></tr>",
                esc(&j.job_id),
                url_part(&j.job_id),
                esc(&j.job_id),
                state_html(l, j.state),
                l.ago(j.created_ms, now),
                esc(&j.submitter),
                esc(&j.spec.evidence_name),
                l.bytes(j.progress.bytes_total),
                esc(&analyses(l, j)),
                duration_ms(j).map(|d| l.duration_ms(d)).unwrap_or_else(|| "-".into()),
                (f * 1000.0).round(),
                l.pct(f),
            ));
        }
        body.push_str("</tbody></table>");
    }
    layout_csrf(l, Some(c), csrf, l.t("cases"), &body)
}

/// What the job page shows of a finished job's results.
#[derive(Debug, Default)]
pub struct Summary {
    /// (scanner, feature, count): features seen at least twice, the most
    /// frequent first, at most [`TOP_PER_SCANNER`] per scanner.
    pub top_features: Vec<(String, String, u64)>,
    /// (namespace, rule, targets matched).
    pub yara: Vec<(String, String, u64)>,
    /// The merged results' counts.
    pub counts: Counts,
    /// (algorithm, hex digest) of the evidence.
    pub hashes: Vec<(String, String)>,
    /// (algorithm, stored, computed, matches).
    pub verification: Vec<(String, String, String, bool)>,
}

/// Most features listed per scanner.
pub const TOP_PER_SCANNER: usize = 10;

/// The top features, YARA hits, counts and hashes of a job's merged
/// results.
pub fn summarize(sched: &Scheduler, job_id: &str) -> Option<Summary> {
    let page = sched.results(job_id).ok()?;
    let (_, r) = crate::results::from_pages(vec![page]).ok()?;
    let mut counts: BTreeMap<(&str, &[u8]), u64> = BTreeMap::new();
    for f in &r.features {
        *counts
            .entry((f.scanner.as_str(), f.feature.as_slice()))
            .or_default() += 1;
    }
    let mut per: BTreeMap<&str, Vec<(&[u8], u64)>> = BTreeMap::new();
    for ((s, f), n) in counts {
        if n >= 2 {
            per.entry(s).or_default().push((f, n));
        }
    }
    let mut top = Vec::new();
    for (s, mut v) in per {
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(TOP_PER_SCANNER);
        top.extend(
            v.into_iter()
                .map(|(f, n)| (s.to_string(), String::from_utf8_lossy(f).into_owned(), n)),
        );
    }
    let mut yara: BTreeMap<(String, String), u64> = BTreeMap::new();
    for m in &r.yara {
        *yara
            .entry((m.namespace.clone(), m.rule.clone()))
            .or_default() += 1;
    }
    let mut yara: Vec<(String, String, u64)> =
        yara.into_iter().map(|((a, b), n)| (a, b, n)).collect();
    yara.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    yara.truncate(50);
    let h = &r.hashes;
    let hashes = [
        ("MD5", &h.md5),
        ("SHA-1", &h.sha1),
        ("SHA-256", &h.sha256),
        ("BLAKE3", &h.blake3),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.as_ref().map(|v| (a.to_string(), v.clone())))
    .collect();
    Some(Summary {
        top_features: top,
        yara,
        counts: trawl_report::counts(&r),
        hashes,
        verification: r
            .verification
            .iter()
            .map(|v| {
                (
                    v.algorithm.clone(),
                    v.stored.clone(),
                    v.computed.clone(),
                    v.matches,
                )
            })
            .collect(),
    })
}

/// A card number with all but its first 6 and last 4 digits masked
/// (separators kept).
pub fn mask_card(s: &str) -> String {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen > 6 && seen + 4 <= digits {
                    return '•';
                }
            }
            c
        })
        .collect()
}

/// Whether a feature of `scanner` is a card number (masked by default).
fn is_card(scanner: &str) -> bool {
    matches!(
        scanner.strip_suffix("_stopped").unwrap_or(scanner),
        "ccn" | "ccn_track2"
    )
}

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

/// The throughput series of a job: its stored series once finished, or
/// the one of its tasks so far.
pub fn throughput_series(j: &JobRecord, tasks: &[TaskRecord]) -> Vec<(i64, u64)> {
    if !j.throughput.is_empty() {
        j.throughput.clone()
    } else {
        trawl_store::throughput_series(j.started_ms, tasks)
    }
}

/// Most intervals the throughput chart is drawn over.
const RATE_BUCKETS: i64 = 40;

/// (seconds since start, mean bytes per second over the interval ending
/// there): the run cut into at most [`RATE_BUCKETS`] equal intervals (no
/// shorter than 100 ms), so that shards finishing together do not draw
/// spikes.
fn rates(series: &[(i64, u64)]) -> Vec<(f64, f64)> {
    let (Some(&(t0, _)), Some(&(t1, _))) = (series.first(), series.last()) else {
        return Vec::new();
    };
    let span = (t1 - t0).max(1);
    // About two finished shards per interval at least: shards finishing
    // together do not draw spikes.
    let points = series.len() as i64 - 1;
    let n = RATE_BUCKETS.min(span / 100).min(points / 2).max(1);
    let width = span as f64 / n as f64;
    // Cumulative bytes at time t (the last point at or before t).
    let at = |t: f64| -> u64 {
        let i = series.partition_point(|p| (p.0 - t0) as f64 <= t);
        if i == 0 { 0 } else { series[i - 1].1 }
    };
    let mut out = vec![(0.0, 0.0)];
    let mut prev = 0u64;
    for k in 1..=n {
        let end = if k == n {
            span as f64
        } else {
            width * k as f64
        };
        let done = at(end);
        out.push((
            end / 1000.0,
            done.saturating_sub(prev) as f64 / (width / 1000.0),
        ));
        prev = done;
    }
    out
}

/// The binary unit that shows `max` bytes best: (divisor, unit).
fn byte_unit(l: Lang, max: f64) -> (f64, &'static str) {
    let fr = l == Lang::Fr;
    let units: [(&str, &str); 5] = [
        ("B", "o"),
        ("KiB", "Kio"),
        ("MiB", "Mio"),
        ("GiB", "Gio"),
        ("TiB", "Tio"),
    ];
    let mut i = 0;
    let mut d = 1.0;
    while max >= d * 1024.0 && i + 1 < units.len() {
        d *= 1024.0;
        i += 1;
    }
    (d, if fr { units[i].1 } else { units[i].0 })
}

/// The throughput chart of a job (SVG) and its data table.
pub fn throughput_chart(l: Lang, series: &[(i64, u64)]) -> (String, String) {
    let raw = rates(series);
    let (div, unit) = byte_unit(l, raw.iter().map(|p| p.1).fold(0.0, f64::max));
    let pts: Vec<(f64, f64)> = raw.iter().map(|(t, r)| (*t, r / div)).collect();
    let secs = |v: f64| l.duration_ms((v * 1000.0) as i64);
    let mib = |v: f64| l.num(v, if v.fract() == 0.0 { 0 } else { 1 });
    let svg = charts::line(
        "throughput-chart",
        l.t("throughput_chart"),
        &format!(
            "{} — {}",
            l.t("throughput_chart"),
            raw.iter()
                .map(|(t, r)| format!("{}: {}", secs(*t), l.rate(*r)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        &Axis::new(l.t("time_s").to_string(), &secs),
        &Axis::new(format!("{} ({unit}/s)", l.t("rate_axis")), &mib),
        &[Series {
            name: l.t("throughput").to_string(),
            points: pts.clone(),
        }],
    );
    let mut table = format!(
        "<details><summary>{}</summary><table class=\"chart-data\" id=\"throughput-data\"><tr><th>{}</th><th class=\"num\">{}</th></tr>",
        l.t("chart_table"),
        l.t("elapsed"),
        l.t("throughput")
    );
    for (t, r) in &raw {
        table.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            secs(*t),
            l.rate(*r)
        ));
    }
    table.push_str("</table></details>");
    (svg, table)
}

/// Bars of (label, count), with the table under them.
fn count_bars(l: Lang, id: &str, title: &str, x_label: &str, rows: &[(String, u64)]) -> String {
    let int = |v: f64| l.int(v.round().max(0.0) as u64);
    charts::stacked_bars(
        id,
        title,
        &format!(
            "{title} — {}",
            rows.iter()
                .map(|(k, n)| format!("{k}: {}", l.int(*n)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        x_label,
        &Axis::new(l.t("count").to_string(), &int).integral(),
        &rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        &[(
            l.t("count").to_string(),
            rows.iter().map(|r| r.1 as f64).collect(),
        )],
    )
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

/// A setting's list, escaped, or "all" when empty (every default).
fn list_or_all(l: Lang, v: &[String]) -> String {
    if v.is_empty() {
        l.t("all").to_string()
    } else {
        esc(&v.join(", "))
    }
}

fn fact(b: &mut String, label: &str, value: &str) {
    b.push_str(&format!("<dt>{}</dt><dd>{value}</dd>", esc(label)));
}

pub fn job(l: Lang, c: &Caller, csrf: &str, v: &JobView) -> String {
    let j = v.job;
    let now = trawl_store::now_ms();
    let p = v.wire.progress.clone().unwrap_or_default();
    let f = progress_of(j);
    let id = url_part(&j.job_id);
    let size = j
        .evidence
        .as_ref()
        .map_or(j.progress.bytes_total, |e| e.size);
    let mut b = format!(
        "<h1>{} {} — {} {}</h1>",
        l.t("job"),
        esc(&j.job_id),
        l.t("case"),
        esc(j.spec.case_id.as_str()),
    );
    // The facts.
    b.push_str("<h2>");
    b.push_str(l.t("facts"));
    b.push_str("</h2><dl class=\"facts\" id=\"facts\">");
    fact(
        &mut b,
        l.t("evidence"),
        &format!(
            "<span class=\"mono\">{}</span> — {} {}",
            esc(&j.spec.evidence_name),
            l.bytes(size),
            j.evidence
                .as_ref()
                .map(|e| format!("({})", esc(&e.format)))
                .unwrap_or_default()
        ),
    );
    fact(&mut b, l.t("submitter"), &esc(&j.submitter));
    fact(&mut b, l.t("submitted"), &l.ago(j.created_ms, now));
    fact(
        &mut b,
        l.t("started"),
        &if j.started_ms > 0 {
            l.ago(j.started_ms, now)
        } else {
            "-".into()
        },
    );
    fact(
        &mut b,
        l.t("finished"),
        &if j.finished_ms > 0 {
            l.ago(j.finished_ms, now)
        } else {
            "-".into()
        },
    );
    fact(
        &mut b,
        l.t("duration"),
        &duration_ms(j)
            .map(|d| l.duration_ms(d))
            .unwrap_or_else(|| "-".into()),
    );
    let mut outcome = state_html(l, j.state);
    if !j.error.is_empty() {
        outcome.push_str(&format!(" — <span class=\"err\">{}</span>", esc(&j.error)));
    }
    if !j.limitations.is_empty() {
        outcome.push_str(&format!(
            " — {}: {}",
            l.t("quarantined"),
            l.int(j.limitations.len() as u64)
        ));
    }
    fact(&mut b, l.t("outcome"), &outcome);
    fact(&mut b, l.t("analyses"), &esc(&analyses(l, j)));
    let s = &j.spec;
    let mut settings = format!(
        "{}: {} · {}: {}",
        l.t("shard_size"),
        l.bytes(s.shard_size),
        l.t("priority"),
        esc(&l.word("priority", s.priority.name())),
    );
    if s.analyses.hash {
        settings.push_str(&format!(
            " · {}: {}",
            l.t("piecewise"),
            if s.hash.piecewise_window > 0 {
                l.bytes(s.hash.piecewise_window)
            } else {
                l.t("no").to_string()
            }
        ));
    }
    if s.analyses.features {
        settings.push_str(&format!(
            " · {}: {}",
            l.t("scanners"),
            list_or_all(l, &s.features.scanners)
        ));
    }
    if s.analyses.carve {
        settings.push_str(&format!(
            " · {}: {}",
            l.t("carve_types"),
            list_or_all(l, &s.carve.types)
        ));
    }
    if s.analyses.yara {
        settings.push_str(&format!(
            " · {}: {} ({}: <span class=\"mono\">{}</span>)",
            l.t("rule_set"),
            if s.yara.ruleset_name.is_empty() && s.yara.sources.is_empty() {
                l.t("inline_rules").to_string()
            } else if s.yara.ruleset_name.is_empty() {
                esc(&s
                    .yara
                    .sources
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
            } else {
                esc(&s.yara.ruleset_name)
            },
            l.t("digest"),
            esc(&s.yara.ruleset_digest)
        ));
    }
    fact(&mut b, l.t("settings"), &settings);
    let ps = passes(l, v.tasks, size);
    let read: u64 = ps.iter().map(|p| p.1).sum();
    fact(
        &mut b,
        l.t("passes"),
        &format!(
            "<span data-passes=\"{}\">{}</span> ({}) — {}: {}",
            ps.len(),
            l.int(ps.len() as u64),
            esc(&ps.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")),
            l.t("evidence_read"),
            l.bytes(read)
        ),
    );
    match v.summary {
        Some(sm) if !sm.hashes.is_empty() => {
            let mut h = String::new();
            for (a, d) in &sm.hashes {
                h.push_str(&format!(
                    "{}: <span class=\"mono\">{}</span><br>",
                    esc(a),
                    esc(d)
                ));
            }
            for (a, stored, _, ok) in &sm.verification {
                h.push_str(&format!(
                    "{} ({}): <span class=\"mono\">{}</span> — {}<br>",
                    l.t("stored_hashes"),
                    esc(a),
                    esc(stored),
                    if *ok { l.t("yes") } else { l.t("no") }
                ));
            }
            fact(&mut b, l.t("hashes"), &h);
        }
        Some(_) => fact(&mut b, l.t("hashes"), l.t("none")),
        None => fact(&mut b, l.t("hashes"), l.t("when_complete")),
    }
    b.push_str("</dl>");

    // Progress, live while running.
    let (svg, table) = throughput_chart(l, &throughput_series(j, v.tasks));
    b.push_str(&format!(
        "<h2>{}</h2><div id=\"live\" data-events=\"/jobs/{id}/events\" data-chart=\"/jobs/{id}/throughput.svg\"><p>{}: <b id=\"state\">{}</b></p><p><progress id=\"progress\" max=\"1000\" value=\"{}\"></progress> <span id=\"pct\">{}</span> · {}: <span id=\"rate\">{}</span> · {}: <span id=\"tasks\">{} / {}</span>",
        l.t("progress"),
        l.t("state"),
        esc(&l.word("state", state_key(j.state))),
        (f * 1000.0).round(),
        l.pct(f),
        l.t("throughput"),
        l.rate(p.throughput_bps),
        l.t("tasks"),
        l.int(u64::from(j.progress.tasks_done)),
        l.int(u64::from(j.progress.tasks_total)),
    ));
    if !j.state.is_final() {
        b.push_str(&format!(
            " · {}: <span id=\"eta\">{}</span>",
            l.t("eta"),
            l.eta(p.eta_seconds)
        ));
    }
    b.push_str(&format!(
        "</p><div id=\"throughput-box\">{svg}</div>{table}</div>"
    ));

    // Findings.
    let counts = j
        .counts
        .clone()
        .or_else(|| v.summary.map(|s| s.counts.clone()));
    let findings = counts
        .as_ref()
        .map(|c| c.findings())
        .unwrap_or_else(|| j.progress.findings.clone());
    b.push_str(&format!(
        "<h2>{}</h2><p class=\"{}\" id=\"counts-note\">{}</p><table id=\"findings-table\"><thead><tr><th>{}</th><th class=\"num\">{}</th></tr></thead><tbody id=\"findings\">",
        l.t("findings"),
        if counts.is_some() { "note" } else { "provisional" },
        if counts.is_some() { l.t("final_note") } else { counts_note(l, j) },
        l.t("kind"),
        l.t("count"),
    ));
    for (k, w, n) in findings_keyed(l, &findings) {
        b.push_str(&format!(
            "<tr data-kind=\"{}\" data-n=\"{n}\"><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&k),
            esc(&w),
            l.int(n)
        ));
    }
    let rows = findings_rows(l, &findings);
    b.push_str("</tbody></table>");
    if counts.is_some() && !rows.is_empty() {
        b.push_str(&count_bars(
            l,
            "findings-chart",
            l.t("findings_per_kind"),
            l.t("kind"),
            &rows,
        ));
    }
    if let Some(c) = &counts
        && c.carve.total > 0
    {
        let mut per: Vec<(String, u64)> = c
            .carve
            .per_type
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        per.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        b.push_str(&format!("<h3>{}</h3>", l.t("carved_per_type")));
        b.push_str(&count_bars(
            l,
            "carved-chart",
            l.t("carved_per_type"),
            l.t("file_type"),
            &per,
        ));
        b.push_str(&format!(
            "<table id=\"carved-types\"><tr><th>{}</th><th class=\"num\">{}</th></tr>",
            l.t("file_type"),
            l.t("count")
        ));
        for (k, n) in &per {
            b.push_str(&format!(
                "<tr data-kind=\"{}\" data-n=\"{n}\"><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(k),
                esc(k),
                l.int(*n)
            ));
        }
        b.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td></tr></table>",
            l.t("validated"),
            l.int(c.carve.validated)
        ));
    }

    b.push_str(&format!("<h2>{}</h2>", l.t("quarantined")));
    if j.limitations.is_empty() {
        b.push_str(&format!("<p>{}</p>", l.t("none")));
    } else {
        b.push_str(&format!(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            l.t("bytes_range"),
            l.t("task"),
            l.t("attempts"),
            l.t("reason")
        ));
        for q in &j.limitations {
            b.push_str(&format!(
                "<tr><td class=\"num\">{}..{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                q.start,
                q.end,
                esc(&q.task_id),
                q.attempts,
                esc(&q.error)
            ));
        }
        b.push_str("</table>");
    }
    if v.may_cancel && !j.state.is_final() {
        b.push_str(&format!(
            "<form method=\"post\" action=\"/jobs/{id}/cancel\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button id=\"cancel\">{}</button></form>",
            esc(csrf),
            l.t("cancel")
        ));
    }
    if j.state.is_final() {
        b.push_str(&format!(
            "<p><a id=\"download\" href=\"/jobs/{id}/report.tar\">{}</a></p>",
            l.t("download")
        ));
    }
    b.push_str(&format!(
        "<h2>{}</h2><p class=\"note\">{}</p>",
        l.t("top_features"),
        l.t("top_features_note")
    ));
    match v.summary {
        Some(s) if !s.top_features.is_empty() => {
            let cards = s.top_features.iter().any(|t| is_card(&t.0));
            if cards {
                if v.revealed {
                    b.push_str(&format!(
                        "<p class=\"note\" id=\"revealed\">{}</p>",
                        l.t("revealed_note")
                    ));
                } else {
                    b.push_str(&format!(
                        "<p class=\"note\" id=\"masked\">{}</p>",
                        l.t("masked_note")
                    ));
                    if v.may_reveal {
                        b.push_str(&format!(
                            "<form method=\"post\" action=\"/jobs/{id}/reveal\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button id=\"reveal\">{}</button></form>",
                            esc(csrf),
                            l.t("reveal")
                        ));
                    }
                }
            }
            b.push_str(&format!(
                "<table id=\"top-features\"><tr><th>{}</th><th>{}</th><th class=\"num\">{}</th></tr>",
                l.t("scanner"),
                l.t("feature"),
                l.t("count")
            ));
            for (sc, feat, n) in &s.top_features {
                let shown = if is_card(sc) && !v.revealed {
                    mask_card(feat)
                } else {
                    feat.clone()
                };
                b.push_str(&format!(
                    "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&l.word("kind", sc)),
                    esc(&shown),
                    l.int(*n)
                ));
            }
            b.push_str("</table>");
        }
        Some(_) => b.push_str(&format!("<p>{}</p>", l.t("none"))),
        None => b.push_str(&format!("<p>{}</p>", l.t("when_complete"))),
    }
    b.push_str(&format!("<h2>{}</h2>", l.t("yara_hits")));
    match v.summary {
        Some(s) if !s.yara.is_empty() => {
            b.push_str(&format!(
                "<table id=\"yara-hits\"><tr><th>{}</th><th>{}</th><th class=\"num\">{}</th></tr>",
                l.t("family"),
                l.t("rule"),
                l.t("count")
            ));
            for (ns, r, n) in &s.yara {
                b.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                    esc(ns),
                    esc(r),
                    l.int(*n)
                ));
            }
            b.push_str("</table>");
        }
        Some(_) => b.push_str(&format!("<p>{}</p>", l.t("none"))),
        None => b.push_str(&format!("<p>{}</p>", l.t("when_complete"))),
    }
    layout_csrf(l, Some(c), csrf, &j.job_id, &b)
}

/// A capability in words: `format:ewf` -> "container ewf".
fn capability(l: Lang, c: &str) -> String {
    match c.split_once(':') {
        Some(("ruleset", d)) => format!("{} {}", l.t("cap.ruleset"), &d[..d.len().min(12)]),
        Some((k, v)) => format!("{} {v}", l.word("cap", k)),
        None => l.word("cap", c),
    }
}

fn hhmm(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
        .unwrap_or_default()
}

/// The pool's load chart (busy slots per worker over the last hours).
pub fn load_chart(l: Lang, view: &PoolView) -> (String, String) {
    let series: Vec<Series> = view
        .workers
        .iter()
        .map(|w| Series {
            name: w.rec.worker_id.clone(),
            points: w
                .load
                .iter()
                .map(|(t, b)| (*t as f64, f64::from(*b)))
                .collect(),
        })
        .collect();
    let tfmt = |v: f64| hhmm(v as i64);
    let int = |v: f64| l.num(v, if v.fract() == 0.0 { 0 } else { 1 });
    let svg = charts::line(
        "load-chart",
        l.t("load_chart"),
        l.t("load_chart"),
        &Axis::new(l.t("time_utc").to_string(), &tfmt),
        &Axis::new(l.t("busy_slots").to_string(), &int).integral(),
        &series,
    );
    let mut t = format!(
        "<details><summary>{}</summary><table class=\"chart-data\" id=\"load-data\"><tr><th>{}</th><th>{}</th><th class=\"num\">{}</th></tr>",
        l.t("chart_table"),
        l.t("worker"),
        l.t("time_utc"),
        l.t("busy_slots")
    );
    for w in &view.workers {
        for (ts, busy) in &w.load {
            t.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{busy}</td></tr>",
                esc(&w.rec.worker_id),
                l.datetime(*ts)
            ));
        }
    }
    t.push_str("</table></details>");
    (svg, t)
}

pub fn pool(l: Lang, c: &Caller, csrf: &str, view: &PoolView, hb_ms: i64) -> String {
    let now = trawl_store::now_ms();
    let up = |w: &trawl_store::WorkerRecord| now - w.last_heartbeat_ms <= 3 * hb_ms + 1000;
    let mut b = format!(
        "<h1>{}</h1><p class=\"note\" id=\"bytes-note\">{}</p>",
        l.t("capacity"),
        l.t("bytes_note")
    );
    // The queue per priority.
    let queued: u64 = view.queue.iter().map(|q| q.2).sum();
    b.push_str(&format!(
        "<h2>{}</h2><table id=\"queue\"><tr><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th></tr>",
        l.t("queue"),
        l.t("priority"),
        l.t("queued_jobs"),
        l.t("queued_tasks")
    ));
    for p in ["urgent", "high", "normal", "low"] {
        let (jobs, tasks) = view
            .queue
            .iter()
            .find(|q| q.0 == p)
            .map_or((0, 0), |q| (q.1, q.2));
        b.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&l.word("priority", p)),
            l.int(jobs),
            l.int(tasks)
        ));
    }
    b.push_str("</table>");
    if view.workers.is_empty() {
        b.push_str(&format!("<p>{}</p>", l.t("no_workers")));
        return layout_csrf(l, Some(c), csrf, l.t("capacity"), &b);
    }
    // Sites.
    let mut sites: BTreeMap<&str, Vec<&crate::core::WorkerView>> = BTreeMap::new();
    for w in &view.workers {
        sites.entry(w.rec.site.as_str()).or_default().push(w);
    }
    b.push_str(&format!(
        "<h2>{}</h2><table id=\"sites\"><tr><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th>{}</th><th>{}</th></tr>",
        l.t("site_summary"),
        l.t("site"),
        l.t("workers_up"),
        l.t("cores"),
        l.t("slots"),
        l.t("free_slots"),
        l.t("memory_free_total"),
        l.t("utilisation"),
        l.t("state"),
    ));
    for (site, ws) in &sites {
        let live: Vec<_> = ws.iter().filter(|w| up(&w.rec)).collect();
        let slots: u64 = live.iter().map(|w| u64::from(w.rec.slots)).sum();
        let busy: u64 = live.iter().map(|w| u64::from(w.busy)).sum();
        let cores: u64 = live.iter().map(|w| u64::from(w.rec.cores)).sum();
        let (mt, mf): (u64, u64) = live.iter().fold((0, 0), |a, w| {
            (a.0 + w.rec.memory_bytes, a.1 + w.rec.memory_free_bytes)
        });
        let free = slots.saturating_sub(busy);
        let util = if slots > 0 {
            busy as f64 / slots as f64
        } else {
            0.0
        };
        let saturated = free == 0 && (queued > 0 || slots == 0);
        b.push_str(&format!(
            "<tr data-site=\"{}\"><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {}</td><td><progress max=\"1000\" value=\"{}\"></progress> {}</td><td class=\"{}\">{}</td></tr>",
            esc(site),
            if site.is_empty() { l.t("no_site").to_string() } else { esc(site) },
            l.int(live.len() as u64),
            l.int(ws.len() as u64),
            l.int(cores),
            l.int(slots),
            l.int(free),
            l.bytes(mf),
            l.bytes(mt),
            (util * 1000.0).round(),
            l.pct(util),
            if saturated { "health-lost" } else { "health-up" },
            if saturated { l.t("saturated") } else { l.t("available") },
        ));
    }
    b.push_str("</table>");
    for (site, ws) in &sites {
        b.push_str(&format!(
            "<section class=\"site\"><h3>{} {}</h3><table class=\"workers\" id=\"workers-{}\"><tr><th>{}</th><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th></tr>",
            l.t("site"),
            if site.is_empty() { l.t("no_site").to_string() } else { esc(site) },
            url_part(site),
            l.t("worker"),
            l.t("host"),
            l.t("cores"),
            l.t("memory_total"),
            l.t("memory_free"),
            l.t("load"),
            l.t("capabilities"),
            l.t("roots"),
            l.t("heartbeat"),
            l.t("health"),
            l.t("tasks"),
            l.t("bytes"),
        ));
        for w in ws {
            let r = &w.rec;
            let ok = up(r);
            let caps: String = r
                .capabilities
                .iter()
                .map(|c| format!("<span class=\"tag\">{}</span>", esc(&capability(l, c))))
                .collect();
            b.push_str(&format!(
                "<tr data-worker=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><progress max=\"{}\" value=\"{}\"></progress> {} / {}</td><td>{caps}</td><td>{}</td><td>{}</td><td class=\"health-{}\">{}</td><td class=\"num\">{}</td><td class=\"num\" data-bytes=\"{}\">{}</td></tr>",
                esc(&r.worker_id),
                esc(&r.worker_id),
                esc(&r.hostname),
                l.int(u64::from(r.cores)),
                l.bytes(r.memory_bytes),
                l.bytes(r.memory_free_bytes),
                r.slots.max(1),
                w.busy,
                w.busy,
                r.slots,
                esc(&r.evidence_roots.join(", ")),
                l.ago(r.last_heartbeat_ms, now),
                if ok { "up" } else { "lost" },
                esc(&l.word("health", if ok { "up" } else { "lost" })),
                l.int(r.tasks_done),
                r.bytes_done,
                l.bytes(r.bytes_done),
            ));
        }
        b.push_str("</table></section>");
    }
    let (svg, table) = load_chart(l, view);
    b.push_str(&format!("<h2>{}</h2>{svg}{table}", l.t("load_chart")));
    layout_csrf(l, Some(c), csrf, l.t("capacity"), &b)
}

/// The counts a job contributes to the indicators: its final counts
/// (completed jobs only; computed from its stored results for jobs
/// completed by an earlier version).
pub fn final_counts(sched: &Scheduler, j: &JobRecord) -> Option<Counts> {
    if j.state != JobState::Completed {
        return None;
    }
    if let Some(c) = &j.counts {
        return Some(c.clone());
    }
    let page = sched.results(&j.job_id).ok()?;
    let (_, r) = crate::results::from_pages(vec![page]).ok()?;
    Some(trawl_report::counts(&r))
}

/// Indicators of one month and case.
#[derive(Debug, Default, Clone)]
pub struct IndicatorRow {
    pub month: String,
    pub case: String,
    /// Jobs submitted (one image each).
    pub images: u64,
    /// Evidence bytes examined (each byte once).
    pub bytes: u64,
    /// Completed jobs and their times to result (ms).
    pub ttr_ms: Vec<i64>,
    /// Final findings per kind, and the images each kind was found in.
    pub findings: BTreeMap<String, (u64, u64)>,
    /// YARA matches per rule family (namespace).
    pub yara_families: BTreeMap<String, u64>,
}

impl IndicatorRow {
    pub fn mean_ttr_s(&self) -> f64 {
        mean_s(&self.ttr_ms)
    }

    /// The 90th percentile (nearest rank) time to result.
    pub fn p90_ttr_s(&self) -> f64 {
        p90(&self.ttr_ms)
    }

    pub fn findings_total(&self) -> u64 {
        self.findings.values().map(|v| v.0).sum()
    }
}

/// The mean of durations in ms, in seconds (0 for none).
fn mean_s(v: &[i64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<i64>() as f64 / v.len() as f64 / 1000.0
    }
}

fn p90(v: &[i64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = (0.9 * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1] as f64 / 1000.0
}

fn month_of(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| format!("{:04}-{:02}", t.year(), u8::from(t.month())))
        .unwrap_or_else(|_| "?".into())
}

pub fn indicator_rows(sched: &Scheduler, jobs: &[JobRecord]) -> Vec<IndicatorRow> {
    let mut rows: BTreeMap<(String, String), IndicatorRow> = BTreeMap::new();
    for j in jobs {
        let month = month_of(j.created_ms);
        let case = j.spec.case_id.as_str().to_string();
        let r = rows
            .entry((month.clone(), case.clone()))
            .or_insert_with(|| IndicatorRow {
                month,
                case,
                ..Default::default()
            });
        r.images += 1;
        r.bytes += j.progress.bytes_done;
        if let Some(c) = final_counts(sched, j) {
            if j.finished_ms > 0 {
                r.ttr_ms.push(j.finished_ms - j.created_ms);
            }
            for (k, n) in c.findings() {
                let e = r.findings.entry(k).or_default();
                e.0 += n;
                e.1 += 1;
            }
            for (ns, n) in &c.yara.per_namespace {
                *r.yara_families.entry(ns.clone()).or_default() += n;
            }
        }
    }
    rows.into_values().collect()
}

/// Per month (all cases): images, bytes, findings per kind, TTR values.
struct Month {
    images: u64,
    bytes: u64,
    findings: BTreeMap<String, u64>,
    ttr: Vec<i64>,
}

fn months(rows: &[IndicatorRow]) -> BTreeMap<&str, Month> {
    let mut m: BTreeMap<&str, Month> = BTreeMap::new();
    for r in rows {
        let e = m.entry(r.month.as_str()).or_insert_with(|| Month {
            images: 0,
            bytes: 0,
            findings: BTreeMap::new(),
            ttr: Vec::new(),
        });
        e.images += r.images;
        e.bytes += r.bytes;
        e.ttr.extend(&r.ttr_ms);
        for (k, (n, _)) in &r.findings {
            *e.findings.entry(k.clone()).or_default() += n;
        }
    }
    m
}

pub fn indicators(l: Lang, c: &Caller, csrf: &str, rows: &[IndicatorRow]) -> String {
    let mut b = format!(
        "<h1>{}</h1><p><a id=\"csv\" href=\"/indicators.csv\">{}</a></p><p class=\"note\">{}</p>",
        l.t("indicators"),
        l.t("export_csv"),
        l.t("final_note"),
    );
    let ms = months(rows);
    let cats: Vec<String> = ms.keys().map(|m| l.month(m)).collect();
    let kinds: BTreeSet<&String> = ms.values().flat_map(|m| m.findings.keys()).collect();
    let int = |v: f64| l.int(v.round().max(0.0) as u64);
    let series: Vec<(String, Vec<f64>)> = kinds
        .iter()
        .map(|k| {
            (
                l.word("kind", k),
                ms.values()
                    .map(|m| m.findings.get(*k).copied().unwrap_or(0) as f64)
                    .collect(),
            )
        })
        .collect();
    b.push_str(&charts::stacked_bars(
        "findings-month-chart",
        l.t("findings_per_month"),
        l.t("findings_per_month"),
        l.t("month"),
        &Axis::new(l.t("findings").to_string(), &int).integral(),
        &cats,
        &series,
    ));
    let pts = |f: &dyn Fn(&Month) -> f64| -> Vec<(f64, f64)> {
        ms.values()
            .enumerate()
            .map(|(i, m)| (i as f64, f(m)))
            .collect()
    };
    let cat_names = cats.clone();
    let mfmt = move |v: f64| {
        if v.fract() == 0.0 && v >= 0.0 {
            cat_names.get(v as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let n_months = ms.len() as f64;
    let monthly = |id: &str,
                   title: &str,
                   y_label: &str,
                   fmt: &dyn Fn(f64) -> String,
                   whole: bool,
                   s: Vec<Series>| {
        let y = Axis::new(y_label, fmt);
        charts::line(
            id,
            title,
            title,
            &Axis::new(l.t("month"), &mfmt)
                .integral()
                .range(-0.5, n_months - 0.5),
            &if whole { y.integral() } else { y },
            &s,
        )
    };
    b.push_str(&monthly(
        "images-month-chart",
        l.t("images"),
        l.t("images"),
        &int,
        true,
        vec![Series {
            name: l.t("images").to_string(),
            points: pts(&|m| m.images as f64),
        }],
    ));
    let (div, unit) = byte_unit(l, ms.values().map(|m| m.bytes as f64).fold(0.0, f64::max));
    let bfmt = |v: f64| l.num(v, if v.fract() == 0.0 { 0 } else { 1 });
    b.push_str(&monthly(
        "bytes-month-chart",
        l.t("bytes"),
        &format!("{} ({unit})", l.t("bytes")),
        &bfmt,
        false,
        vec![Series {
            name: l.t("bytes").to_string(),
            points: pts(&|m| m.bytes as f64 / div),
        }],
    ));
    let sfmt = |v: f64| l.duration_ms((v * 1000.0) as i64);
    b.push_str(&monthly(
        "ttr-month-chart",
        l.t("ttr_per_month"),
        l.t("duration"),
        &sfmt,
        false,
        vec![
            Series {
                name: l.t("mean_ttr").to_string(),
                points: pts(&|m| mean_s(&m.ttr)),
            },
            Series {
                name: l.t("p90_ttr").to_string(),
                points: pts(&|m| p90(&m.ttr)),
            },
        ],
    ));
    // The table: one row per (month, case, kind), as the CSV.
    b.push_str(&format!(
        "<table id=\"indicators\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th></tr></thead><tbody>",
        l.t("month"),
        l.t("case"),
        l.t("kind"),
        l.t("findings"),
        l.t("images"),
        l.t("bytes"),
        l.t("jobs_completed"),
        l.t("mean_ttr"),
        l.t("p90_ttr"),
    ));
    for r in rows {
        for line in csv_lines(r) {
            let kind_words = match line.kind.split_once(':') {
                Some(("yara_family", ns)) => format!("{} {ns}", l.t("family")),
                _ if line.kind == "all" => l.t("total").to_string(),
                _ => l.word("kind", &line.kind),
            };
            let opt = |v: Option<String>| v.unwrap_or_default();
            b.push_str(&format!(
                "<tr data-kind=\"{}\" data-case=\"{}\" data-month=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\" data-n=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&line.kind),
                esc(&r.case),
                esc(&r.month),
                esc(&l.month(&r.month)),
                esc(&r.case),
                esc(&kind_words),
                line.findings,
                l.int(line.findings),
                l.int(line.images),
                opt(line.bytes.map(|v| l.bytes(v))),
                opt(line.jobs_completed.map(|v| l.int(v))),
                opt(line.mean_ttr_s.map(|v| l.duration_ms((v * 1000.0) as i64))),
                opt(line.p90_ttr_s.map(|v| l.duration_ms((v * 1000.0) as i64))),
            ));
        }
    }
    b.push_str("</tbody></table>");
    layout_csrf(l, Some(c), csrf, l.t("indicators"), &b)
}

/// One line of the indicators CSV: a (month, case, kind). Kind `all` is
/// the month and case as a whole (its findings are the sum of the finding
/// kinds, and it alone carries bytes, jobs completed and times to result);
/// `yara_family:NAME` lines break the `yara` kind down by rule family.
pub struct CsvLine {
    pub kind: String,
    pub findings: u64,
    /// Images (jobs) in which the kind was found (`all`: every image).
    pub images: u64,
    pub bytes: Option<u64>,
    pub jobs_completed: Option<u64>,
    pub mean_ttr_s: Option<f64>,
    pub p90_ttr_s: Option<f64>,
}

pub fn csv_lines(r: &IndicatorRow) -> Vec<CsvLine> {
    let mut v = vec![CsvLine {
        kind: "all".into(),
        findings: r.findings_total(),
        images: r.images,
        bytes: Some(r.bytes),
        jobs_completed: Some(r.ttr_ms.len() as u64),
        mean_ttr_s: Some(r.mean_ttr_s()),
        p90_ttr_s: Some(r.p90_ttr_s()),
    }];
    for (k, (n, imgs)) in &r.findings {
        v.push(CsvLine {
            kind: k.clone(),
            findings: *n,
            images: *imgs,
            bytes: None,
            jobs_completed: None,
            mean_ttr_s: None,
            p90_ttr_s: None,
        });
    }
    for (ns, n) in &r.yara_families {
        v.push(CsvLine {
            kind: format!("yara_family:{ns}"),
            findings: *n,
            images: 0,
            bytes: None,
            jobs_completed: None,
            mean_ttr_s: None,
            p90_ttr_s: None,
        });
    }
    v
}

pub fn indicators_csv(rows: &[IndicatorRow]) -> String {
    let mut o = String::from(
        "month,case,kind,findings,images,bytes_processed,jobs_completed,mean_time_to_result_s,p90_time_to_result_s\n",
    );
    for r in rows {
        for line in csv_lines(r) {
            let opt_u = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
            let opt_f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
            o.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                trawl_core::csv::field(&r.month),
                trawl_core::csv::field(&r.case),
                trawl_core::csv::field(&line.kind),
                line.findings,
                line.images,
                opt_u(line.bytes),
                opt_u(line.jobs_completed),
                opt_f(line.mean_ttr_s),
                opt_f(line.p90_ttr_s),
            ));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_keep_the_first_six_and_last_four_digits() {
        assert_eq!(mask_card("4111111111111111"), "411111••••••1111");
        assert_eq!(mask_card("4111 1111 1111 1111"), "4111 11•• •••• 1111");
        assert_eq!(mask_card("1234567890"), "1234567890");
    }

    #[test]
    fn csv_rows_per_month_case_and_kind() {
        let mut r = IndicatorRow {
            month: "2026-12".into(),
            case: "=cmd|x".into(),
            images: 2,
            bytes: 100,
            ttr_ms: vec![1000, 3000],
            ..Default::default()
        };
        r.findings.insert("email".into(), (5, 2));
        r.findings.insert("yara".into(), (3, 1));
        r.yara_families.insert("demo".into(), 3);
        let csv = indicators_csv(&[r]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 5, "{csv}");
        assert_eq!(lines[1], "2026-12,'=cmd|x,all,8,2,100,2,2.0,3.0");
        assert_eq!(lines[2], "2026-12,'=cmd|x,email,5,2,,,,");
        assert_eq!(lines[4], "2026-12,'=cmd|x,yara_family:demo,3,0,,,,");
        assert_eq!(p90(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 0.009);
    }

    #[test]
    fn rates_over_equal_intervals() {
        // 4 s, 100 shard points: 40 intervals of 100 ms.
        let mut s = vec![(1000, 0)];
        s.extend((1..=100).map(|i| (1000 + i * 40, i as u64 * 100)));
        let r = rates(&s);
        assert_eq!(r.len(), 41);
        assert_eq!(r[0], (0.0, 0.0));
        assert_eq!(r[40].0, 4.0);
        let total: f64 = r.iter().skip(1).map(|p| p.1 * 0.1).sum();
        assert!((total - 10_000.0).abs() < 1e-6, "{total}");
        // Few points: about two per interval.
        let r = rates(&[
            (1000, 0),
            (2000, 1000),
            (3000, 2000),
            (5000, 4000),
            (5000, 4000),
        ]);
        assert_eq!(r, [(0.0, 0.0), (2.0, 1000.0), (4.0, 1000.0)]);
        assert!(rates(&[]).is_empty());
        assert_eq!(rates(&[(5, 0)]), [(0.0, 0.0), (0.001, 0.0)]);
    }
}
