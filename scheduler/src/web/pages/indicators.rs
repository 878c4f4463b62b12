//! The indicators page and its CSV: per month and case, images, bytes,
//! findings per kind (final counts only), times to result.

use super::super::charts::{self, Axis, Series};
use super::super::i18n::Lang;
use super::{byte_unit, layout_signed, mean_s};
use crate::core::{Caller, Scheduler};
use maud::{Markup, html};
use std::collections::{BTreeMap, BTreeSet};
use trawl_core::Counts;
use trawl_store::{JobRecord, JobState};

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

pub(super) fn p90(v: &[i64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = (0.9 * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1] as f64 / 1000.0
}

pub(super) fn month_of(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| format!("{:04}-{:02}", t.year(), u8::from(t.month())))
        .unwrap_or_else(|_| "?".into())
}

/// The indicators of `jobs`, per month and case. Jobs the scheduler made
/// itself (retrohunt and flash checks: `spec.origin` set) are left out:
/// they read evidence already counted (the threat report counts their
/// bytes apart).
pub fn indicator_rows(sched: &Scheduler, jobs: &[JobRecord]) -> Vec<IndicatorRow> {
    let mut rows: BTreeMap<(String, String), IndicatorRow> = BTreeMap::new();
    for j in jobs.iter().filter(|j| j.spec.origin.is_empty()) {
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

/// A monthly line chart of the indicators page.
struct Monthly<'a> {
    l: Lang,
    months: &'a dyn Fn(f64) -> String,
    n: f64,
}

impl Monthly<'_> {
    fn chart(&self, id: &str, title: &str, y: Axis, whole: bool, s: &[Series]) -> Markup {
        charts::line(
            id,
            title,
            title,
            &Axis::new(self.l.t("month"), self.months)
                .integral()
                .range(-0.5, self.n - 0.5),
            &if whole { y.integral() } else { y },
            s,
        )
    }
}

/// The charts of the indicators page: findings, images, bytes and times
/// to result per month.
fn charts_of(l: Lang, ms: &BTreeMap<&str, Month>) -> Markup {
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
    let pts = |f: &dyn Fn(&Month) -> f64| -> Vec<(f64, f64)> {
        ms.values()
            .enumerate()
            .map(|(i, m)| (i as f64, f(m)))
            .collect()
    };
    let mfmt = |v: f64| {
        if v.fract() == 0.0 && v >= 0.0 {
            cats.get(v as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let monthly = Monthly {
        l,
        months: &mfmt,
        n: ms.len() as f64,
    };
    let (div, unit) = byte_unit(l, ms.values().map(|m| m.bytes as f64).fold(0.0, f64::max));
    let bfmt = |v: f64| l.num(v, if v.fract() == 0.0 { 0 } else { 1 });
    let sfmt = |v: f64| l.duration_ms((v * 1000.0) as i64);
    let bytes_label = [l.t("bytes"), " (", unit, ")"].concat();
    html! {
        (charts::stacked_bars(
            "findings-month-chart",
            l.t("findings_per_month"),
            l.t("findings_per_month"),
            l.t("month"),
            &Axis::new(l.t("findings").to_string(), &int).integral(),
            &cats,
            &series,
        ))
        (monthly.chart("images-month-chart", l.t("images"), Axis::new(l.t("images"), &int), true, &[Series {
            name: l.t("images").to_string(),
            points: pts(&|m| m.images as f64),
        }]))
        (monthly.chart("bytes-month-chart", l.t("bytes"), Axis::new(bytes_label, &bfmt), false, &[Series {
            name: l.t("bytes").to_string(),
            points: pts(&|m| m.bytes as f64 / div),
        }]))
        (monthly.chart("ttr-month-chart", l.t("ttr_per_month"), Axis::new(l.t("duration"), &sfmt), false, &[
            Series {
                name: l.t("mean_ttr").to_string(),
                points: pts(&|m| mean_s(&m.ttr)),
            },
            Series {
                name: l.t("p90_ttr").to_string(),
                points: pts(&|m| p90(&m.ttr)),
            },
        ]))
    }
}

pub fn indicators(l: Lang, c: &Caller, csrf: &str, rows: &[IndicatorRow]) -> Markup {
    let ms = months(rows);
    let secs = |v: Option<f64>| {
        v.map(|v| l.duration_ms((v * 1000.0) as i64))
            .unwrap_or_default()
    };
    let body = html! {
        h1 { (l.t("indicators")) }
        p {
            a id="csv" href="/indicators.csv" { (l.t("export_csv")) }
            " · "
            a id="threat-report" href="/report" { (l.t("threat_report")) }
        }
        p class="note" { (l.t("final_note")) }
        (charts_of(l, &ms))
        // The table: one row per (month, case, kind), as the CSV.
        table id="indicators" {
            thead { tr {
                th { (l.t("month")) }
                th { (l.t("case")) }
                th { (l.t("kind")) }
                th class="num" { (l.t("findings")) }
                th class="num" { (l.t("images")) }
                th class="num" { (l.t("bytes")) }
                th class="num" { (l.t("jobs_completed")) }
                th class="num" { (l.t("mean_ttr")) }
                th class="num" { (l.t("p90_ttr")) }
            } }
            tbody {
                @for r in rows {
                    @for line in csv_lines(r) {
                        tr data-kind=(line.kind) data-case=(r.case) data-month=(r.month) {
                            td { (l.month(&r.month)) }
                            td { (r.case) }
                            td {
                                @match line.kind.split_once(':') {
                                    Some(("yara_family", ns)) => { (l.t("family")) " " (ns) }
                                    _ if line.kind == "all" => { (l.t("total")) }
                                    _ => { (l.word("kind", &line.kind)) }
                                }
                            }
                            td class="num" data-n=(line.findings) { (l.int(line.findings)) }
                            td class="num" { (l.int(line.images)) }
                            td class="num" { (line.bytes.map(|v| l.bytes(v)).unwrap_or_default()) }
                            td class="num" { (line.jobs_completed.map(|v| l.int(v)).unwrap_or_default()) }
                            td class="num" { (secs(line.mean_ttr_s)) }
                            td class="num" { (secs(line.p90_ttr_s)) }
                        }
                    }
                }
            }
        }
    };
    layout_signed(l, c, csrf, l.t("indicators"), body)
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

/// The indicators as CSV (`trawl_core::csv`: one quoting rule, formulas
/// defused).
pub fn indicators_csv(rows: &[IndicatorRow]) -> String {
    let header = [
        "month",
        "case",
        "kind",
        "findings",
        "images",
        "bytes_processed",
        "jobs_completed",
        "mean_time_to_result_s",
        "p90_time_to_result_s",
    ]
    .map(String::from);
    let opt_u = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let opt_f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
    let lines = rows.iter().flat_map(|r| {
        csv_lines(r).into_iter().map(move |line| {
            [
                r.month.clone(),
                r.case.clone(),
                line.kind,
                line.findings.to_string(),
                line.images.to_string(),
                opt_u(line.bytes),
                opt_u(line.jobs_completed),
                opt_f(line.mean_ttr_s),
                opt_f(line.p90_ttr_s),
            ]
        })
    });
    trawl_core::csv::to_string(std::iter::once(header).chain(lines))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
