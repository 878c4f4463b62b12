//! The cases page: every job the caller may read, per case, with filters
//! and sorting (a plain GET form).

use super::super::i18n::Lang;
use super::{
    analyses, duration_ms, layout_signed, permille, progress_of, state_html, state_key, url_part,
};
use crate::core::Caller;
use maud::{Markup, html};
use std::collections::{BTreeMap, BTreeSet};
use trawl_store::JobRecord;

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

/// A `<select>` of (value, label) options, `current` selected.
fn select(name: &str, id: &str, current: &str, options: &[(String, String)]) -> Markup {
    html! {
        select name=(name) id=(id) {
            @for (v, label) in options {
                option value=(v) selected[v == current] { (label) }
            }
        }
    }
}

pub fn cases(l: Lang, c: &Caller, csrf: &str, jobs: &[JobRecord], q: &CasesQuery) -> Markup {
    let now = trawl_store::now_ms();
    let submitters: BTreeSet<&str> = jobs.iter().map(|j| j.submitter.as_str()).collect();
    let mut by_case: BTreeMap<&str, Vec<&JobRecord>> = BTreeMap::new();
    for j in jobs.iter().filter(|j| q.keep(j)) {
        by_case.entry(j.spec.case_id.as_str()).or_default().push(j);
    }
    for js in by_case.values_mut() {
        js.sort_by(|a, b| q.order(a, b));
    }
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
    let body = html! {
        h1 { (l.t("cases")) }
        form class="filters" method="get" action="/cases" id="filters" {
            label { (l.t("state")) " " (select("state", "f-state", &q.state, &states)) }
            label { (l.t("submitter")) " " (select("submitter", "f-submitter", &q.submitter, &subs)) }
            label { (l.t("from")) " " input type="date" name="from" id="f-from" value=(q.from); }
            label { (l.t("to")) " " input type="date" name="to" id="f-to" value=(q.to); }
            label { (l.t("sort")) " " (select("sort", "f-sort", &q.sort, &sorts)) }
            label { "\u{a0}" (select("dir", "f-dir", &q.dir, &dirs)) }
            button id="f-apply" { (l.t("apply")) }
        }
        @if by_case.is_empty() {
            p { (l.t("no_jobs")) }
        }
        @for (case, js) in &by_case {
            h2 { (l.t("case")) " " (case) " "
                a class="case-links" href={ "/links?case=" (url_part(case)) } { (l.t("links")) }
            }
            table class="jobs" {
                thead { tr {
                    th { (l.t("job")) }
                    th { (l.t("state")) }
                    th { (l.t("submitted")) }
                    th { (l.t("submitter")) }
                    th { (l.t("evidence")) }
                    th { (l.t("analyses")) }
                    th { (l.t("duration")) }
                    th { (l.t("progress")) }
                } }
                tbody {
                    @for j in js {
                        @let f = progress_of(j);
                        tr data-job=(j.job_id) {
                            td { a class="job" href={ "/jobs/" (url_part(&j.job_id)) } { (j.job_id) } }
                            td { (state_html(l, j.state)) }
                            td { (l.ago(j.created_ms, now)) }
                            td { (j.submitter) }
                            td { (j.spec.evidence_name) " " span class="note" { "(" (l.bytes(j.progress.bytes_total)) ")" } }
                            td { (analyses(l, j)) }
                            td class="num" { (duration_ms(j).map(|d| l.duration_ms(d)).unwrap_or_else(|| "-".into())) }
                            td { progress max="1000" value=(permille(f)) {} " " (l.pct(f)) }
                        }
                    }
                }
            }
        }
    };
    layout_signed(l, c, csrf, l.t("cases"), body)
}
