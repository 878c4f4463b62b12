//! The dashboard's pages, rendered on the server. Every value that comes
//! from evidence, users or rules goes through [`esc`].

use super::esc;
use super::i18n::Lang;
use crate::core::{Caller, Scheduler};
use std::collections::BTreeMap;
use trawl_proto::v1;
use trawl_store::{JobRecord, JobState, WorkerRecord};

pub const CSS: &str = r#"
body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#f5f7fa}
header{background:#1d3557;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header .me{margin-left:auto;font-size:.9em}
header form{display:inline}
main{padding:1em 1.5em}
table{border-collapse:collapse;background:#fff;margin:.5em 0 1.5em}
th,td{border:1px solid #d0d7e1;padding:.3em .6em;text-align:left;font-size:.92em}
th{background:#e8edf3}
progress{width:18em;height:1.1em}
.state-completed{color:#2a7a2a}.state-failed,.state-cancelled{color:#a02020}.state-running{color:#1d5fa0}
.err{color:#a02020}
svg{background:#fff;border:1px solid #d0d7e1}
.mono{font-family:ui-monospace,monospace}
"#;

pub const JS: &str = r#"
(function(){
  var el = document.getElementById('live');
  if (!el || !window.EventSource) return;
  var url = el.getAttribute('data-events');
  var pts = [];
  var es = new EventSource(url);
  function text(id, v){ var e = document.getElementById(id); if (e) e.textContent = v; }
  es.onmessage = function(m){
    var d = JSON.parse(m.data);
    var p = document.getElementById('progress');
    if (p) { p.max = 1000; p.value = Math.round(d.fraction * 1000); }
    text('pct', (d.fraction * 100).toFixed(1) + ' %');
    text('state', d.state);
    text('rate', d.throughput);
    text('eta', d.eta);
    text('tasks', d.tasks_done + ' / ' + d.tasks_total);
    var tb = document.getElementById('findings');
    if (tb) {
      while (tb.firstChild) tb.removeChild(tb.firstChild);
      d.findings.forEach(function(f){
        var tr = document.createElement('tr');
        var a = document.createElement('td'); a.textContent = f[0];
        var b = document.createElement('td'); b.textContent = f[1];
        tr.appendChild(a); tr.appendChild(b); tb.appendChild(tr);
      });
    }
    pts.push(d.throughput_bps);
    if (pts.length > 120) pts.shift();
    var line = document.getElementById('spark');
    if (line) {
      var max = Math.max.apply(null, pts.concat([1]));
      line.setAttribute('points', pts.map(function(v, i){
        return (i * 3) + ',' + (60 - 58 * v / max).toFixed(1);
      }).join(' '));
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

fn human_bytes(n: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Completed => "completed",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

/// The page frame: navigation, the signed-in user, sign out.
pub fn layout(l: Lang, who: Option<&Caller>, title: &str, body: &str) -> String {
    layout_csrf(l, who, "", title, body)
}

fn layout_csrf(l: Lang, who: Option<&Caller>, csrf: &str, title: &str, body: &str) -> String {
    let nav = match who {
        Some(c) => format!(
            "<a href=\"/cases\">{}</a><a href=\"/pool\">{}</a><a href=\"/indicators\">{}</a><span class=\"me\">{} <b>{}</b> ({}) {}</span>",
            l.t("cases"),
            l.t("pool"),
            l.t("indicators"),
            l.t("signed_in_as"),
            esc(&c.user),
            esc(c.role.as_str()),
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

pub fn cases(l: Lang, c: &Caller, csrf: &str, jobs: &[JobRecord]) -> String {
    let mut by_case: BTreeMap<&str, Vec<&JobRecord>> = BTreeMap::new();
    for j in jobs {
        by_case.entry(j.spec.case_id.as_str()).or_default().push(j);
    }
    let mut body = format!("<h1>{}</h1>", l.t("cases"));
    if by_case.is_empty() {
        body.push_str(&format!("<p>{}</p>", l.t("no_jobs")));
    }
    for (case, js) in by_case {
        body.push_str(&format!(
            "<h2>{} {}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            l.t("case"),
            esc(case),
            l.t("job"),
            l.t("state"),
            l.t("submitter"),
            l.t("evidence"),
            l.t("progress")
        ));
        for j in js {
            let f = progress_of(j);
            body.push_str(&format!(
                "<tr><td><a class=\"job\" href=\"/jobs/{}\">{}</a></td><td class=\"state-{st}\">{st}</td><td>{}</td><td>{}</td><td><progress max=\"1000\" value=\"{}\"></progress> {:.1} %</td></tr>",
                url_part(&j.job_id),
                esc(&j.job_id),
                esc(&j.submitter),
                esc(&j.spec.evidence_name),
                (f * 1000.0).round(),
                f * 100.0,
                st = state_name(j.state),
            ));
        }
        body.push_str("</table>");
    }
    layout_csrf(l, Some(c), csrf, l.t("cases"), &body)
}

/// What the job page shows of a finished job's results.
#[derive(Debug, Default)]
pub struct Summary {
    /// (scanner, feature, count), most frequent first.
    pub top_features: Vec<(String, String, u64)>,
    /// (namespace, rule, targets matched).
    pub yara: Vec<(String, String, u64)>,
}

/// The top features and YARA hits of a job's merged results.
pub fn summarize(sched: &Scheduler, job_id: &str) -> Option<Summary> {
    let page = sched.results(job_id).ok()?;
    let (_, r) = crate::results::from_pages(vec![page]).ok()?;
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in &r.features {
        *counts
            .entry((
                f.scanner.clone(),
                String::from_utf8_lossy(&f.feature).into_owned(),
            ))
            .or_default() += 1;
    }
    let mut top: Vec<(String, String, u64)> =
        counts.into_iter().map(|((s, f), n)| (s, f, n)).collect();
    top.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    top.truncate(20);
    let mut yara: BTreeMap<(String, String), u64> = BTreeMap::new();
    for m in &r.yara {
        *yara
            .entry((m.namespace.clone(), m.rule.clone()))
            .or_default() += 1;
    }
    let mut yara: Vec<(String, String, u64)> =
        yara.into_iter().map(|((a, b), n)| (a, b, n)).collect();
    yara.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    yara.truncate(20);
    Some(Summary {
        top_features: top,
        yara,
    })
}

fn findings_sorted(j: &JobRecord) -> Vec<(String, u64)> {
    let mut f: Vec<(String, u64)> = j
        .progress
        .findings
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    f.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    f
}

/// One live update of the job page.
pub fn progress_json(j: &JobRecord, wire: &v1::Job) -> serde_json::Value {
    let p = wire.progress.clone().unwrap_or_default();
    serde_json::json!({
        "state": state_name(j.state),
        "final": j.state.is_final(),
        "fraction": progress_of(j),
        "bytes_done": j.progress.bytes_done,
        "bytes_total": j.progress.bytes_total,
        "tasks_done": j.progress.tasks_done,
        "tasks_total": j.progress.tasks_total,
        "throughput_bps": p.throughput_bps.max(0.0),
        "throughput": format!("{}/s", human_bytes(p.throughput_bps.max(0.0) as u64)),
        "eta": if j.state.is_final() { "-".to_string() } else { crate::text::eta(p.eta_seconds) },
        "findings": findings_sorted(j),
    })
}

pub fn job(
    l: Lang,
    c: &Caller,
    csrf: &str,
    j: &JobRecord,
    wire: &v1::Job,
    summary: Option<&Summary>,
    may_cancel: bool,
) -> String {
    let p = wire.progress.clone().unwrap_or_default();
    let f = progress_of(j);
    let st = state_name(j.state);
    let id = url_part(&j.job_id);
    let mut b = format!(
        "<h1>{} {} — {} {}</h1><p>{}: <span class=\"mono\">{}</span> ({}) · {}: {}</p>",
        l.t("job"),
        esc(&j.job_id),
        l.t("case"),
        esc(j.spec.case_id.as_str()),
        l.t("evidence"),
        esc(&j.spec.evidence_name),
        human_bytes(j.progress.bytes_total),
        l.t("submitter"),
        esc(&j.submitter),
    );
    b.push_str(&format!(
        "<div id=\"live\" data-events=\"/jobs/{id}/events\"><p>{}: <b id=\"state\" class=\"state-{st}\">{st}</b></p><p><progress id=\"progress\" max=\"1000\" value=\"{}\"></progress> <span id=\"pct\">{:.1} %</span> · {}: <span id=\"rate\">{}/s</span> · {}: <span id=\"eta\">{}</span> · {}: <span id=\"tasks\">{} / {}</span></p><svg width=\"360\" height=\"60\" viewBox=\"0 0 360 60\"><polyline id=\"spark\" fill=\"none\" stroke=\"#1d5fa0\" stroke-width=\"2\" points=\"\"></polyline></svg></div>",
        l.t("state"),
        (f * 1000.0).round(),
        f * 100.0,
        l.t("throughput"),
        human_bytes(p.throughput_bps.max(0.0) as u64),
        l.t("eta"),
        if j.state.is_final() { "-".into() } else { crate::text::eta(p.eta_seconds) },
        l.t("tasks"),
        j.progress.tasks_done,
        j.progress.tasks_total,
    ));
    if !j.error.is_empty() {
        b.push_str(&format!("<p class=\"err\">{}</p>", esc(&j.error)));
    }
    b.push_str(&format!(
        "<h2>{}</h2><table><thead><tr><th>{}</th><th>{}</th></tr></thead><tbody id=\"findings\">",
        l.t("findings"),
        l.t("kind"),
        l.t("count")
    ));
    for (k, n) in findings_sorted(j) {
        b.push_str(&format!("<tr><td>{}</td><td>{n}</td></tr>", esc(&k)));
    }
    b.push_str("</tbody></table>");
    b.push_str(&format!("<h2>{}</h2>", l.t("quarantined")));
    if j.limitations.is_empty() {
        b.push_str(&format!("<p>{}</p>", l.t("none")));
    } else {
        b.push_str(&format!(
            "<table><tr><th>bytes</th><th>task</th><th>{}</th></tr>",
            l.t("reason")
        ));
        for q in &j.limitations {
            b.push_str(&format!(
                "<tr><td>{}..{}</td><td>{}</td><td>{}</td></tr>",
                q.start,
                q.end,
                esc(&q.task_id),
                esc(&q.error)
            ));
        }
        b.push_str("</table>");
    }
    if may_cancel && !j.state.is_final() {
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
    b.push_str(&format!("<h2>{}</h2>", l.t("top_features")));
    match summary {
        Some(s) if !s.top_features.is_empty() => {
            b.push_str(&format!(
                "<table id=\"top-features\"><tr><th>scanner</th><th>feature</th><th>{}</th></tr>",
                l.t("count")
            ));
            for (sc, feat, n) in &s.top_features {
                b.push_str(&format!(
                    "<tr><td>{}</td><td class=\"mono\">{}</td><td>{n}</td></tr>",
                    esc(sc),
                    esc(feat)
                ));
            }
            b.push_str("</table>");
        }
        Some(_) => b.push_str(&format!("<p>{}</p>", l.t("none"))),
        None => b.push_str(&format!("<p>{}</p>", l.t("when_complete"))),
    }
    b.push_str(&format!("<h2>{}</h2>", l.t("yara_hits")));
    match summary {
        Some(s) if !s.yara.is_empty() => {
            b.push_str(&format!(
                "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
                l.t("family"),
                l.t("rule"),
                l.t("count")
            ));
            for (ns, r, n) in &s.yara {
                b.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>",
                    esc(ns),
                    esc(r)
                ));
            }
            b.push_str("</table>");
        }
        Some(_) => b.push_str(&format!("<p>{}</p>", l.t("none"))),
        None => b.push_str(&format!("<p>{}</p>", l.t("when_complete"))),
    }
    layout_csrf(l, Some(c), csrf, &j.job_id, &b)
}

pub fn pool(
    l: Lang,
    c: &Caller,
    csrf: &str,
    workers: &[(WorkerRecord, u32)],
    hb_ms: i64,
) -> String {
    let now = trawl_store::now_ms();
    let mut b = format!("<h1>{}</h1>", l.t("pool"));
    if workers.is_empty() {
        b.push_str(&format!("<p>{}</p>", l.t("no_workers")));
    } else {
        b.push_str(&format!(
            "<table id=\"workers\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            l.t("worker"),
            l.t("host"),
            l.t("slots"),
            l.t("load"),
            l.t("memory"),
            l.t("roots"),
            l.t("heartbeat"),
            l.t("health"),
            l.t("tasks"),
            l.t("bytes")
        ));
        for (w, busy) in workers {
            let up = now - w.last_heartbeat_ms <= 3 * hb_ms + 1000;
            b.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><progress max=\"{}\" value=\"{busy}\"></progress> {busy}/{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&w.worker_id),
                esc(&w.hostname),
                w.slots,
                w.slots.max(1),
                w.slots,
                human_bytes(w.memory_bytes),
                esc(&w.evidence_roots.join(", ")),
                crate::text::utc_ms(w.last_heartbeat_ms),
                if up { "state-completed" } else { "state-failed" },
                if up { "up" } else { "lost" },
                w.tasks_done,
                human_bytes(w.bytes_done),
            ));
        }
        b.push_str("</table>");
    }
    layout_csrf(l, Some(c), csrf, l.t("pool"), &b)
}

/// Indicators of one month and case.
#[derive(Debug, Default, Clone)]
pub struct IndicatorRow {
    pub month: String,
    pub case: String,
    pub images: u64,
    pub bytes: u64,
    pub findings: BTreeMap<String, u64>,
    pub yara_families: BTreeMap<String, u64>,
    /// Sum of (finished - created) over finished jobs, and their count.
    pub ttr_ms: i64,
    pub finished: u64,
}

impl IndicatorRow {
    fn mean_ttr_s(&self) -> f64 {
        if self.finished == 0 {
            0.0
        } else {
            self.ttr_ms as f64 / self.finished as f64 / 1000.0
        }
    }
}

pub fn indicator_rows(sched: &Scheduler, jobs: &[JobRecord]) -> Vec<IndicatorRow> {
    let mut rows: BTreeMap<(String, String), IndicatorRow> = BTreeMap::new();
    for j in jobs {
        let month = time::OffsetDateTime::from_unix_timestamp(j.created_ms / 1000)
            .map(|t| format!("{:04}-{:02}", t.year(), u8::from(t.month())))
            .unwrap_or_else(|_| "?".into());
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
        for (k, n) in &j.progress.findings {
            *r.findings.entry(k.clone()).or_default() += n;
        }
        if j.state == JobState::Completed && j.finished_ms > 0 {
            r.ttr_ms += j.finished_ms - j.created_ms;
            r.finished += 1;
            if j.spec.analyses.yara
                && let Ok(page) = sched.results(&j.job_id)
            {
                for m in &page.yara {
                    *r.yara_families.entry(m.namespace.clone()).or_default() += 1;
                }
            }
        }
    }
    rows.into_values().collect()
}

fn map_text(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn indicators(l: Lang, c: &Caller, csrf: &str, rows: &[IndicatorRow]) -> String {
    let mut b = format!(
        "<h1>{}</h1><p><a id=\"csv\" href=\"/indicators.csv\">{}</a></p><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        l.t("indicators"),
        l.t("export_csv"),
        l.t("month"),
        l.t("case"),
        l.t("images"),
        l.t("bytes"),
        l.t("findings"),
        l.t("family"),
        l.t("mean_ttr")
    );
    for r in rows {
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td></tr>",
            esc(&r.month),
            esc(&r.case),
            r.images,
            human_bytes(r.bytes),
            esc(&map_text(&r.findings)),
            esc(&map_text(&r.yara_families)),
            r.mean_ttr_s()
        ));
    }
    b.push_str("</table>");
    layout_csrf(l, Some(c), csrf, l.t("indicators"), &b)
}

fn csv_field(s: &str) -> String {
    // Quote, and defuse spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn indicators_csv(rows: &[IndicatorRow]) -> String {
    let mut o = String::from(
        "month,case,images,bytes_processed,findings,yara_rule_families,mean_time_to_result_s\n",
    );
    for r in rows {
        o.push_str(&format!(
            "{},{},{},{},{},{},{:.1}\n",
            csv_field(&r.month),
            csv_field(&r.case),
            r.images,
            r.bytes,
            csv_field(&map_text(&r.findings)),
            csv_field(&map_text(&r.yara_families)),
            r.mean_ttr_s()
        ));
    }
    o
}
