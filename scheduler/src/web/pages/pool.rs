//! The capacity map: the queue per priority, sites, workers and their load
//! over the last hours.

use super::super::charts::{self, Axis, Series};
use super::super::i18n::Lang;
use super::{layout_signed, permille, url_part};
use crate::core::{Caller, PoolView, WorkerView};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// A capability in words: `format:ewf` -> "container ewf".
fn capability(l: Lang, c: &str) -> String {
    match c.split_once(':') {
        Some(("ruleset", d)) => [l.t("cap.ruleset"), " ", &d[..d.len().min(12)]].concat(),
        Some((k, v)) => [l.word("cap", k).as_str(), " ", v].concat(),
        None => l.word("cap", c),
    }
}

fn hhmm(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
        .unwrap_or_default()
}

/// The pool's load chart (busy slots per worker over the last hours) and
/// its data table.
pub fn load_chart(l: Lang, view: &PoolView) -> (Markup, Markup) {
    let series: Vec<Series> = view
        .workers
        .iter()
        .map(|w| Series {
            name: w.rec.worker_id.to_string(),
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
    let table = html! {
        details {
            summary { (l.t("chart_table")) }
            table class="chart-data" id="load-data" {
                tr { th { (l.t("worker")) } th { (l.t("time_utc")) } th class="num" { (l.t("busy_slots")) } }
                @for w in &view.workers {
                    @for (ts, busy) in &w.load {
                        tr { td { (w.rec.worker_id) } td { (l.datetime(*ts)) } td class="num" { (busy) } }
                    }
                }
            }
        }
    };
    (svg, table)
}

/// A site's name, or "no site".
fn site_name(l: Lang, site: &str) -> &str {
    if site.is_empty() {
        l.t("no_site")
    } else {
        site
    }
}

pub fn pool(l: Lang, c: &Caller, csrf: &str, view: &PoolView, hb_ms: i64) -> Markup {
    let now = trawl_store::now_ms();
    let up = |w: &trawl_store::WorkerRecord| now - w.last_heartbeat_ms <= 3 * hb_ms + 1000;
    let queued: u64 = view.queue.iter().map(|q| q.2).sum();
    let queue = html! {
        h1 { (l.t("capacity")) }
        p class="note" id="bytes-note" { (l.t("bytes_note")) }
        h2 { (l.t("queue")) }
        table id="queue" {
            tr { th { (l.t("priority")) } th class="num" { (l.t("queued_jobs")) } th class="num" { (l.t("queued_tasks")) } }
            @for p in ["urgent", "high", "normal", "low"] {
                @let (jobs, tasks) = view.queue.iter().find(|q| q.0 == p).map_or((0, 0), |q| (q.1, q.2));
                tr { td { (l.word("priority", p)) } td class="num" { (l.int(jobs)) } td class="num" { (l.int(tasks)) } }
            }
        }
    };
    if view.workers.is_empty() {
        let body = html! { (queue) p { (l.t("no_workers")) } };
        return layout_signed(l, c, csrf, l.t("capacity"), body);
    }
    let mut sites: BTreeMap<&str, Vec<&WorkerView>> = BTreeMap::new();
    for w in &view.workers {
        sites.entry(w.rec.site.as_str()).or_default().push(w);
    }
    let site_rows = html! {
        h2 { (l.t("site_summary")) }
        table id="sites" {
            tr {
                th { (l.t("site")) }
                th class="num" { (l.t("workers_up")) }
                th class="num" { (l.t("cores")) }
                th class="num" { (l.t("slots")) }
                th class="num" { (l.t("free_slots")) }
                th class="num" { (l.t("memory_free_total")) }
                th { (l.t("utilisation")) }
                th { (l.t("state")) }
            }
            @for (site, ws) in &sites {
                @let live: Vec<_> = ws.iter().filter(|w| up(&w.rec)).collect();
                @let slots: u64 = live.iter().map(|w| u64::from(w.rec.slots)).sum();
                @let busy: u64 = live.iter().map(|w| u64::from(w.busy)).sum();
                @let cores: u64 = live.iter().map(|w| u64::from(w.rec.cores)).sum();
                @let (mt, mf) = live.iter().fold((0u64, 0u64), |a, w| (a.0 + w.rec.memory_bytes, a.1 + w.rec.memory_free_bytes));
                @let free = slots.saturating_sub(busy);
                @let util = if slots > 0 { busy as f64 / slots as f64 } else { 0.0 };
                @let saturated = free == 0 && (queued > 0 || slots == 0);
                tr data-site=(site) {
                    td { (site_name(l, site)) }
                    td class="num" { (l.int(live.len() as u64)) " / " (l.int(ws.len() as u64)) }
                    td class="num" { (l.int(cores)) }
                    td class="num" { (l.int(slots)) }
                    td class="num" { (l.int(free)) }
                    td class="num" { (l.bytes(mf)) " / " (l.bytes(mt)) }
                    td { progress max="1000" value=(permille(util)) {} " " (l.pct(util)) }
                    td class=(if saturated { "health-lost" } else { "health-up" }) {
                        (if saturated { l.t("saturated") } else { l.t("available") })
                    }
                }
            }
        }
    };
    let workers = html! {
        @for (site, ws) in &sites {
            section class="site" {
                h3 { (l.t("site")) " " (site_name(l, site)) }
                table class="workers" id={ "workers-" (url_part(site)) } {
                    tr {
                        th { (l.t("worker")) }
                        th { (l.t("host")) }
                        th class="num" { (l.t("cores")) }
                        th class="num" { (l.t("memory_total")) }
                        th class="num" { (l.t("memory_free")) }
                        th { (l.t("load")) }
                        th { (l.t("capabilities")) }
                        th { (l.t("roots")) }
                        th { (l.t("heartbeat")) }
                        th { (l.t("health")) }
                        th class="num" { (l.t("tasks")) }
                        th class="num" { (l.t("bytes")) }
                    }
                    @for w in ws {
                        @let r = &w.rec;
                        @let health = if up(r) { "up" } else { "lost" };
                        tr data-worker=(r.worker_id) {
                            td { (r.worker_id) }
                            td { (r.hostname) }
                            td class="num" { (l.int(u64::from(r.cores))) }
                            td class="num" { (l.bytes(r.memory_bytes)) }
                            td class="num" { (l.bytes(r.memory_free_bytes)) }
                            td { progress max=(r.slots.max(1)) value=(w.busy) {} " " (w.busy) " / " (r.slots) }
                            td { @for cap in &r.capabilities { span class="tag" { (capability(l, cap)) } } }
                            td { (r.evidence_roots.join(", ")) }
                            td { (l.ago(r.last_heartbeat_ms, now)) }
                            td class={ "health-" (health) } { (l.word("health", health)) }
                            td class="num" { (l.int(r.tasks_done)) }
                            td class="num" data-bytes=(r.bytes_done) { (l.bytes(r.bytes_done)) }
                        }
                    }
                }
            }
        }
    };
    let (svg, table) = load_chart(l, view);
    let body = html! {
        (queue)
        (site_rows)
        (workers)
        h2 { (l.t("load_chart")) }
        (svg)
        (table)
    };
    layout_signed(l, c, csrf, l.t("capacity"), body)
}
