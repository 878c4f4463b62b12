//! The dashboard's pages, rendered on the server with maud's `html!`:
//! every interpolated value (from evidence, users or rules) is escaped by
//! the template engine; `PreEscaped` is never given anything but markup
//! maud produced. Every word goes through [`Lang`].
//!
//! Counts: a completed job shows its merged report's counts
//! ([`trawl_core::Counts`], stored with the completed state); a running
//! job shows per-shard sums, labelled provisional.

mod alerts;
mod assets;
mod cases;
mod files;
mod flashes;
mod indicators;
mod job;
mod job_charts;
mod layout;
mod links;
mod pool;
mod summary;
mod threat;

pub use alerts::{AlertsQuery, SHOWN as ALERTS_SHOWN, alerts, alerts_table};
pub use assets::{CSS, JS};
pub use cases::{CasesQuery, cases};
pub use files::{FilesQuery, files};
pub use flashes::flashes;
pub use indicators::{IndicatorRow, indicator_rows, indicators, indicators_csv};
pub use job::{JobView, job, progress_json};
pub use job_charts::{throughput_chart, throughput_series};
pub use layout::{layout_signed, login, message, refusal, unauthorized};
pub use links::{LinksQuery, LinksView, links};
pub use pool::{load_chart, pool};
pub use summary::summarize;
pub use threat::{
    BadPeriod, CsvLinks, Figures, Period, charts_of, export_page, figures, period_form,
    period_jobs, report_body,
};

use super::i18n::Lang;
use maud::{Markup, html};
use trawl_store::{JobRecord, JobState};

/// A path segment for a URL (job ids are `[A-Za-z0-9_-]`; anything else is
/// percent-encoded).
pub fn url_part(s: &str) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
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

/// A job's state, in words, marked with its key.
fn state_html(l: Lang, s: JobState) -> Markup {
    let k = state_key(s);
    html! {
        span class={ "state-" (k) } data-state=(k) { (l.word("state", k)) }
    }
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

/// A fraction as a `<progress max="1000">` value.
fn permille(f: f64) -> f64 {
    (f * 1000.0).round()
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

/// The mean of durations in ms, in seconds (0 for none).
fn mean_s(v: &[i64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<i64>() as f64 / v.len() as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests;
