//! The threat report: the lab's figures for a period, as one reader may
//! read them. The jobs' figures are the indicators page's rows
//! ([`indicator_rows`], the same definitions), restricted to the jobs
//! created in the period in the cases the reader may read; retrohunt jobs
//! (made by the scheduler for a flash) are counted apart, as retrohunt
//! bytes. Alerts are those the reader may see; flashes are counted; the
//! most-linked indicators are counts, their values shown to admins and
//! analysts, and to others only when one of their cases holds them.

use super::super::charts::{self, Axis, Series};
use super::super::i18n::{Lang, iso};
use super::indicators::{IndicatorRow, indicator_rows, month_of, p90};
use super::{byte_unit, mean_s};
use crate::auth::{Perm, Role};
use crate::core::{Caller, Scheduler};
use maud::{DOCTYPE, Markup, html};
use std::collections::{BTreeMap, BTreeSet};
use trawl_intel::flash::AlertRecord;
use trawl_store::JobRecord;

/// How many indicators the most-linked table lists.
pub const TOP_INDICATORS: usize = 20;
/// The longest period a report covers, in months.
pub const MAX_MONTHS: usize = 120;

/// A period of whole days (UTC), both ends included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub from: String,
    pub to: String,
    /// First and last millisecond of the period.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Every month of the period, `YYYY-MM`.
    pub months: Vec<String>,
}

/// Why a period was refused: the bad value (empty when the dates are
/// fine but out of order or too far apart) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPeriod {
    pub value: String,
    pub why: String,
}

impl std::fmt::Display for BadPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

fn date(name: &str, v: &str) -> Result<time::Date, BadPeriod> {
    let bad = || BadPeriod {
        value: v.to_string(),
        why: format!("{name} date {v:?} is not a day written YYYY-MM-DD"),
    };
    let p: Vec<&str> = v.split('-').collect();
    if p.len() != 3
        || p[0].len() != 4
        || p[1].len() != 2
        || p[2].len() != 2
        || !p.iter().all(|x| x.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let (y, m, d) = (
        p[0].parse::<i32>().map_err(|_| bad())?,
        p[1].parse::<u8>().map_err(|_| bad())?,
        p[2].parse::<u8>().map_err(|_| bad())?,
    );
    let month = time::Month::try_from(m).map_err(|_| bad())?;
    time::Date::from_calendar_date(y, month, d).map_err(|_| bad())
}

impl Period {
    /// The period from `from` to `to` (`YYYY-MM-DD`, both included).
    ///
    /// # Errors
    /// A date that is not a day, `from` after `to`, more than
    /// [`MAX_MONTHS`] months.
    pub fn parse(from: &str, to: &str) -> Result<Self, BadPeriod> {
        let f = date("from", from)?;
        let t = date("to", to)?;
        if f > t {
            return Err(BadPeriod {
                value: String::new(),
                why: format!("the period starts ({from}) after it ends ({to})"),
            });
        }
        let ms = |d: time::Date| d.midnight().assume_utc().unix_timestamp() * 1000;
        let mut months = Vec::new();
        let (mut y, mut m) = (f.year(), u8::from(f.month()));
        while (y, m) <= (t.year(), u8::from(t.month())) {
            months.push(format!("{y:04}-{m:02}"));
            if months.len() > MAX_MONTHS {
                return Err(BadPeriod {
                    value: String::new(),
                    why: format!("the period is longer than {MAX_MONTHS} months"),
                });
            }
            (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        }
        Ok(Self {
            from: from.to_string(),
            to: to.to_string(),
            from_ms: ms(f),
            to_ms: ms(t) + 86_400_000 - 1,
            months,
        })
    }

    /// The calendar year of `now_ms`.
    pub fn year_of(now_ms: i64) -> Self {
        let y = month_of(now_ms).get(..4).unwrap_or("2026").to_string();
        Self::parse(&format!("{y}-01-01"), &format!("{y}-12-31"))
            .unwrap_or_else(|_| Self::parse("2026-01-01", "2026-12-31").expect("a year"))
    }

    pub fn holds(&self, ms: i64) -> bool {
        (self.from_ms..=self.to_ms).contains(&ms)
    }
}

/// The jobs `c` may read, created in `p` (every one without a period;
/// retrohunt jobs included: the rows leave them out, the report counts
/// their bytes apart).
pub fn period_jobs(sched: &Scheduler, c: &Caller, p: Option<&Period>) -> Vec<JobRecord> {
    sched
        .list_jobs(None, None, None, 0)
        .into_iter()
        .filter(|j| {
            c.may(Perm::Read, j.spec.case_id.as_str()) && p.is_none_or(|p| p.holds(j.created_ms))
        })
        .collect()
}

/// One of the most-linked indicators, as the reader may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopIndicator {
    pub kind: String,
    /// `None`: hidden from this reader.
    pub value: Option<String>,
    pub cases: u64,
    /// Admins only: the cases.
    pub case_ids: Vec<String>,
}

/// The report's figures for one reader.
#[derive(Debug, Clone)]
pub struct Figures {
    pub period: Period,
    pub reader: String,
    pub role: Role,
    pub generated_ms: i64,
    /// The indicators page's rows over the period's readable jobs.
    pub rows: Vec<IndicatorRow>,
    /// Retrohunt bytes and jobs per month.
    pub retro: BTreeMap<String, (u64, u64)>,
    /// The alerts the reader may see, raised in the period.
    pub alerts: Vec<AlertRecord>,
    /// Flashes published per month.
    pub flashes: BTreeMap<String, u64>,
    pub top: Vec<TopIndicator>,
}

/// Computes the figures (blocking: reads stored results of old jobs).
pub fn figures(sched: &Scheduler, c: &Caller, p: &Period) -> Figures {
    let jobs = period_jobs(sched, c, Some(p));
    let rows = indicator_rows(sched, &jobs);
    let mut retro: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for j in jobs.iter().filter(|j| !j.spec.origin.is_empty()) {
        let e = retro.entry(month_of(j.created_ms)).or_default();
        e.0 += j.progress.bytes_done;
        e.1 += 1;
    }
    let alerts: Vec<AlertRecord> = sched
        .alerts(c, "", "", 0, usize::MAX)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| p.holds(a.created_ms))
        .collect();
    let mut flashes: BTreeMap<String, u64> = BTreeMap::new();
    for (f, _) in sched.flashes().unwrap_or_default() {
        if p.holds(f.published_ms) {
            *flashes.entry(month_of(f.published_ms)).or_default() += 1;
        }
    }
    let sees_values = matches!(c.role, Role::Admin | Role::Analyst | Role::Local);
    let top = sched
        .intel
        .as_ref()
        .and_then(|i| i.index.most_linked(TOP_INDICATORS, p.from_ms, p.to_ms).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(ind, cases)| {
            let own = cases.iter().any(|k| c.may(Perm::Read, k));
            TopIndicator {
                kind: ind.kind.name().to_string(),
                value: (sees_values || own).then_some(ind.value),
                cases: cases.len() as u64,
                case_ids: if c.all_cases() { cases } else { Vec::new() },
            }
        })
        .collect();
    Figures {
        period: p.clone(),
        reader: c.user.clone(),
        role: c.role,
        generated_ms: trawl_store::now_ms(),
        rows,
        retro,
        alerts,
        flashes,
        top,
    }
}

/// One month of the report, all cases together.
#[derive(Debug, Default, Clone)]
pub struct MonthFigures {
    pub images: u64,
    pub bytes: u64,
    pub findings: BTreeMap<String, u64>,
    pub families: BTreeMap<String, u64>,
    pub ttr: Vec<i64>,
    pub alerts: BTreeMap<String, u64>,
    pub flashes: u64,
    pub retro_bytes: u64,
    pub retro_jobs: u64,
}

impl Figures {
    /// Every month of the period, with its figures (zeros included).
    pub fn months(&self) -> Vec<(String, MonthFigures)> {
        let mut m: BTreeMap<String, MonthFigures> = self
            .period
            .months
            .iter()
            .map(|k| (k.clone(), MonthFigures::default()))
            .collect();
        for r in &self.rows {
            let e = m.entry(r.month.clone()).or_default();
            e.images += r.images;
            e.bytes += r.bytes;
            e.ttr.extend(&r.ttr_ms);
            for (k, (n, _)) in &r.findings {
                *e.findings.entry(k.clone()).or_default() += n;
            }
            for (k, n) in &r.yara_families {
                *e.families.entry(k.clone()).or_default() += n;
            }
        }
        for a in &self.alerts {
            let e = m.entry(month_of(a.created_ms)).or_default();
            *e.alerts.entry(a.state.name().to_string()).or_default() += 1;
        }
        for (k, n) in &self.flashes {
            m.entry(k.clone()).or_default().flashes += n;
        }
        for (k, (b, j)) in &self.retro {
            let e = m.entry(k.clone()).or_default();
            e.retro_bytes += b;
            e.retro_jobs += j;
        }
        m.into_iter().collect()
    }

    /// Findings per kind over the period: (findings, images).
    pub fn kinds(&self) -> BTreeMap<String, (u64, u64)> {
        let mut k: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for r in &self.rows {
            for (kind, (n, imgs)) in &r.findings {
                let e = k.entry(kind.clone()).or_default();
                e.0 += n;
                e.1 += imgs;
            }
        }
        k
    }

    /// The months' figures as CSV (`months.csv`).
    pub fn months_csv(&self) -> String {
        let header = [
            "month",
            "images",
            "bytes_processed",
            "findings",
            "jobs_completed",
            "mean_time_to_result_s",
            "p90_time_to_result_s",
            "alerts",
            "flashes",
            "retrohunt_jobs",
            "retrohunt_bytes",
        ]
        .map(String::from);
        let lines = self.months().into_iter().map(|(k, m)| {
            [
                k,
                m.images.to_string(),
                m.bytes.to_string(),
                m.findings.values().sum::<u64>().to_string(),
                m.ttr.len().to_string(),
                format!("{:.1}", mean_s(&m.ttr)),
                format!("{:.1}", p90(&m.ttr)),
                m.alerts.values().sum::<u64>().to_string(),
                m.flashes.to_string(),
                m.retro_jobs.to_string(),
                m.retro_bytes.to_string(),
            ]
        });
        trawl_core::csv::to_string(std::iter::once(header).chain(lines))
    }

    /// The alerts as CSV (`alerts.csv`).
    pub fn alerts_csv(&self) -> String {
        let header = [
            "alert",
            "created_utc",
            "case",
            "flash",
            "flash_title",
            "tlp",
            "job",
            "kind",
            "indicator_kind",
            "indicator_value",
            "rules",
            "hits",
            "state",
        ]
        .map(String::from);
        let lines = self.alerts.iter().map(|a| {
            let (kind, ik, iv, rules, hits) = match &a.what {
                trawl_intel::flash::AlertWhat::Indicator {
                    indicator_kind,
                    value,
                } => (
                    "indicator",
                    indicator_kind.clone(),
                    value.clone(),
                    String::new(),
                    1,
                ),
                trawl_intel::flash::AlertWhat::Rule { rules, hits } => {
                    ("rule", String::new(), String::new(), rules.join(" "), *hits)
                }
            };
            [
                a.id.clone(),
                iso(a.created_ms),
                a.case.clone(),
                a.flash.clone(),
                a.flash_title.clone(),
                a.tlp.name().to_string(),
                a.job.clone(),
                kind.to_string(),
                ik,
                iv,
                rules,
                hits.to_string(),
                a.state.name().to_string(),
            ]
        });
        trawl_core::csv::to_string(std::iter::once(header).chain(lines))
    }

    /// The most-linked indicators as CSV (`top_indicators.csv`): hidden
    /// values empty; the cases' ids for admins only.
    pub fn top_csv(&self) -> String {
        let header = ["rank", "kind", "value", "cases", "case_ids"].map(String::from);
        let lines = self.top.iter().enumerate().map(|(i, t)| {
            [
                (i + 1).to_string(),
                t.kind.clone(),
                t.value.clone().unwrap_or_default(),
                t.cases.to_string(),
                t.case_ids.join(" "),
            ]
        });
        trawl_core::csv::to_string(std::iter::once(header).chain(lines))
    }
}

/// The report's charts: (id, chart).
pub fn charts_of(l: Lang, f: &Figures) -> Vec<(&'static str, Markup)> {
    let ms = f.months();
    let cats: Vec<String> = ms.iter().map(|(k, _)| l.month(k)).collect();
    let n = ms.len() as f64;
    let int = |v: f64| l.int(v.round().max(0.0) as u64);
    let mfmt = |v: f64| {
        if v.fract() == 0.0 && v >= 0.0 {
            cats.get(v as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let x = || {
        Axis::new(l.t("month"), &mfmt)
            .integral()
            .range(-0.5, n - 0.5)
    };
    let pts = |g: &dyn Fn(&MonthFigures) -> f64| -> Vec<(f64, f64)> {
        ms.iter()
            .enumerate()
            .map(|(i, (_, m))| (i as f64, g(m)))
            .collect()
    };
    let (div, unit) = byte_unit(
        l,
        ms.iter().map(|(_, m)| m.bytes as f64).fold(0.0, f64::max),
    );
    let bfmt = |v: f64| l.num(v, if v.fract() == 0.0 { 0 } else { 1 });
    let sfmt = |v: f64| l.duration_ms((v * 1000.0) as i64);
    let bytes_label = [l.t("bytes"), " (", unit, ")"].concat();
    let kinds = f.kinds();
    let kind_names: Vec<String> = kinds.keys().map(|k| l.word("kind", k)).collect();
    let families: BTreeSet<&String> = ms.iter().flat_map(|(_, m)| m.families.keys()).collect();
    let fam_series: Vec<(String, Vec<f64>)> = families
        .iter()
        .map(|k| {
            (
                k.to_string(),
                ms.iter()
                    .map(|(_, m)| m.families.get(*k).copied().unwrap_or(0) as f64)
                    .collect(),
            )
        })
        .collect();
    let states = ["new", "seen", "dismissed"];
    let alert_series: Vec<(String, Vec<f64>)> = states
        .iter()
        .map(|s| {
            (
                l.word("tr_alert_state", s),
                ms.iter()
                    .map(|(_, m)| m.alerts.get(*s).copied().unwrap_or(0) as f64)
                    .collect(),
            )
        })
        .collect();
    vec![
        (
            "images-chart",
            charts::line(
                "images-chart",
                l.t("images"),
                l.t("images"),
                &x(),
                &Axis::new(l.t("images"), &int).integral(),
                &[Series {
                    name: l.t("images").to_string(),
                    points: pts(&|m| m.images as f64),
                }],
            ),
        ),
        (
            "bytes-chart",
            charts::line(
                "bytes-chart",
                l.t("bytes"),
                l.t("bytes"),
                &x(),
                &Axis::new(bytes_label, &bfmt),
                &[Series {
                    name: l.t("bytes").to_string(),
                    points: pts(&|m| m.bytes as f64 / div),
                }],
            ),
        ),
        (
            "kinds-chart",
            charts::stacked_bars(
                "kinds-chart",
                l.t("tr_findings_per_kind"),
                l.t("tr_findings_per_kind"),
                l.t("kind"),
                &Axis::new(l.t("findings"), &int).integral(),
                &kind_names,
                &[(
                    l.t("findings").to_string(),
                    kinds.values().map(|v| v.0 as f64).collect(),
                )],
            ),
        ),
        (
            "families-chart",
            charts::stacked_bars(
                "families-chart",
                l.t("tr_yara_families_month"),
                l.t("tr_yara_families_month"),
                l.t("month"),
                &Axis::new(l.t("yara_hits"), &int).integral(),
                &cats,
                &fam_series,
            ),
        ),
        (
            "ttr-chart",
            charts::line(
                "ttr-chart",
                l.t("ttr_per_month"),
                l.t("ttr_per_month"),
                &x(),
                &Axis::new(l.t("duration"), &sfmt),
                &[
                    Series {
                        name: l.t("mean_ttr").to_string(),
                        points: pts(&|m| mean_s(&m.ttr)),
                    },
                    Series {
                        name: l.t("p90_ttr").to_string(),
                        points: pts(&|m| p90(&m.ttr)),
                    },
                ],
            ),
        ),
        (
            "alerts-chart",
            charts::stacked_bars(
                "alerts-chart",
                l.t("tr_alerts_per_month"),
                l.t("tr_alerts_per_month"),
                l.t("month"),
                &Axis::new(l.t("tr_alerts"), &int).integral(),
                &cats,
                &alert_series,
            ),
        ),
        (
            "flashes-chart",
            charts::line(
                "flashes-chart",
                l.t("tr_flashes_per_month"),
                l.t("tr_flashes_per_month"),
                &x(),
                &Axis::new(l.t("tr_flashes"), &int).integral(),
                &[Series {
                    name: l.t("tr_flashes").to_string(),
                    points: pts(&|m| m.flashes as f64),
                }],
            ),
        ),
    ]
}

/// Where the report's CSV files are: the dashboard's URLs or the exported
/// files next to `index.html`.
pub enum CsvLinks {
    Dashboard,
    Files,
}

/// The report's body (the same on the dashboard and in the export).
pub fn report_body(l: Lang, f: &Figures, links: &CsvLinks) -> Markup {
    let charts: BTreeMap<&str, Markup> = charts_of(l, f).into_iter().collect();
    let chart = |id: &str| charts.get(id).cloned().unwrap_or_default();
    let ms = f.months();
    let all_ttr: Vec<i64> = ms.iter().flat_map(|(_, m)| m.ttr.clone()).collect();
    let secs = |v: f64| l.duration_ms((v * 1000.0) as i64);
    let total = |g: &dyn Fn(&MonthFigures) -> u64| ms.iter().map(|(_, m)| g(m)).sum::<u64>();
    let kinds = f.kinds();
    let families: BTreeMap<String, u64> = ms.iter().fold(BTreeMap::new(), |mut acc, (_, m)| {
        for (k, n) in &m.families {
            *acc.entry(k.clone()).or_default() += n;
        }
        acc
    });
    let q = format!("from={}&to={}", f.period.from, f.period.to);
    let csv = |name: &str| match links {
        CsvLinks::Files => name.to_string(),
        CsvLinks::Dashboard if name == "indicators.csv" => format!("/indicators.csv?{q}"),
        CsvLinks::Dashboard => format!("/report/{name}?{q}"),
    };
    html! {
        section class="report-section" id="summary" {
            h1 { (l.t("threat_report")) }
            p class="period" id="period" data-from=(f.period.from) data-to=(f.period.to) {
                (l.t("tr_period")) ": " (f.period.from) " — " (f.period.to)
            }
            p class="note" { (l.t("tr_report_scope")) }
            dl class="facts" id="report-facts" {
                dt { (l.t("tr_reader")) } dd { (f.reader) " (" (l.word("role", f.role.as_str())) ")" }
                dt { (l.t("tr_generated")) } dd { (l.datetime(f.generated_ms)) }
                dt { (l.t("images")) } dd data-n=(total(&|m| m.images)) { (l.int(total(&|m| m.images))) }
                dt { (l.t("bytes")) } dd data-n=(total(&|m| m.bytes)) { (l.bytes(total(&|m| m.bytes))) }
                dt { (l.t("findings")) } dd data-n=(total(&|m| m.findings.values().sum())) { (l.int(total(&|m| m.findings.values().sum()))) }
                dt { (l.t("jobs_completed")) } dd { (l.int(all_ttr.len() as u64)) }
                dt { (l.t("mean_ttr")) } dd { (secs(mean_s(&all_ttr))) }
                dt { (l.t("p90_ttr")) } dd { (secs(p90(&all_ttr))) }
                dt { (l.t("tr_retro_bytes")) } dd data-n=(total(&|m| m.retro_bytes)) { (l.bytes(total(&|m| m.retro_bytes))) }
                dt { (l.t("tr_alerts")) } dd data-n=(f.alerts.len()) { (l.int(f.alerts.len() as u64)) }
                dt { (l.t("tr_flashes")) } dd data-n=(total(&|m| m.flashes)) { (l.int(total(&|m| m.flashes))) }
            }
            p class="csv-links" {
                (l.t("tr_figures_csv")) " : "
                @for name in ["indicators.csv", "months.csv", "alerts.csv", "top_indicators.csv"] {
                    a class="csv" href=(csv(name)) { (name) } " "
                }
            }
        }
        section class="report-section" id="activity" {
            h2 { (l.t("tr_activity")) }
            (chart("images-chart"))
            (chart("bytes-chart"))
            table id="months" {
                thead { tr {
                    th { (l.t("month")) }
                    th class="num" { (l.t("images")) }
                    th class="num" { (l.t("bytes")) }
                    th class="num" { (l.t("findings")) }
                    th class="num" { (l.t("jobs_completed")) }
                    th class="num" { (l.t("mean_ttr")) }
                    th class="num" { (l.t("p90_ttr")) }
                    th class="num" { (l.t("tr_alerts")) }
                    th class="num" { (l.t("tr_flashes")) }
                    th class="num" { (l.t("tr_retro_bytes")) }
                } }
                tbody {
                    @for (k, m) in &ms {
                        tr data-month=(k) {
                            td { (l.month(k)) }
                            td class="num" data-n=(m.images) { (l.int(m.images)) }
                            td class="num" { (l.bytes(m.bytes)) }
                            td class="num" { (l.int(m.findings.values().sum())) }
                            td class="num" { (l.int(m.ttr.len() as u64)) }
                            td class="num" { (secs(mean_s(&m.ttr))) }
                            td class="num" { (secs(p90(&m.ttr))) }
                            td class="num" { (l.int(m.alerts.values().sum())) }
                            td class="num" { (l.int(m.flashes)) }
                            td class="num" { (l.bytes(m.retro_bytes)) }
                        }
                    }
                }
            }
        }
        section class="report-section" id="kinds" {
            h2 { (l.t("tr_findings_per_kind")) }
            (chart("kinds-chart"))
            table id="kinds-table" {
                thead { tr {
                    th { (l.t("kind")) }
                    th class="num" { (l.t("findings")) }
                    th class="num" { (l.t("images_with")) }
                } }
                tbody {
                    @for (k, (n, imgs)) in &kinds {
                        tr data-kind=(k) {
                            td { (l.word("kind", k)) }
                            td class="num" data-n=(n) { (l.int(*n)) }
                            td class="num" { (l.int(*imgs)) }
                        }
                    }
                }
            }
        }
        section class="report-section" id="families" {
            h2 { (l.t("tr_yara_families")) }
            (chart("families-chart"))
            table id="families-table" {
                thead { tr {
                    th { (l.t("family")) }
                    th class="num" { (l.t("yara_hits")) }
                } }
                tbody {
                    @for (k, n) in &families {
                        tr data-family=(k) {
                            td { (k) }
                            td class="num" data-n=(n) { (l.int(*n)) }
                        }
                    }
                }
            }
        }
        section class="report-section" id="ttr" {
            h2 { (l.t("ttr_per_month")) }
            (chart("ttr-chart"))
        }
        section class="report-section" id="alerts" {
            h2 { (l.t("tr_alerts_flashes")) }
            (chart("alerts-chart"))
            (chart("flashes-chart"))
            @if f.alerts.is_empty() {
                p class="note" { (l.t("tr_no_data")) }
            } @else {
                table id="alerts-table" {
                    thead { tr {
                        th { (l.t("tr_alert")) }
                        th { (l.t("time_utc")) }
                        th { (l.t("case")) }
                        th { (l.t("tr_flash")) }
                        th { (l.t("kind")) }
                        th { (l.t("state")) }
                    } }
                    tbody {
                        @for a in &f.alerts {
                            tr data-alert=(a.id) data-case=(a.case) {
                                td class="mono" { (a.id) }
                                td { (l.datetime(a.created_ms)) }
                                td { (a.case) }
                                td { (a.flash) " " (a.flash_title) " (" (a.tlp.name()) ")" }
                                td { @match &a.what {
                                    trawl_intel::flash::AlertWhat::Indicator { indicator_kind, value } => {
                                        (l.word("tr_alert_kind", "indicator")) " " (indicator_kind) " " span class="mono" { (value) }
                                    }
                                    trawl_intel::flash::AlertWhat::Rule { rules, hits } => {
                                        (l.word("tr_alert_kind", "rule")) " " (rules.join(", ")) " ×" (hits)
                                    }
                                } }
                                td { (l.word("tr_alert_state", a.state.name())) }
                            }
                        }
                    }
                }
            }
        }
        section class="report-section" id="top" {
            h2 { (l.t("tr_top_indicators")) }
            p class="note" { (l.t("tr_top_note")) }
            @if f.top.is_empty() {
                p class="note" { (l.t("tr_no_data")) }
            } @else {
                table id="top-table" {
                    thead { tr {
                        th class="num" { (l.t("tr_rank")) }
                        th { (l.t("kind")) }
                        th { (l.t("tr_value")) }
                        th class="num" { (l.t("tr_linked_cases")) }
                    } }
                    tbody {
                        @for (i, t) in f.top.iter().enumerate() {
                            tr data-kind=(t.kind) data-hidden=(t.value.is_none()) {
                                td class="num" { (i + 1) }
                                td { (t.kind) }
                                td class="mono" {
                                    @match &t.value {
                                        Some(v) => { (v) }
                                        None => { em { (l.t("tr_hidden")) } }
                                    }
                                    @if !t.case_ids.is_empty() {
                                        " (" (t.case_ids.join(", ")) ")"
                                    }
                                }
                                td class="num" data-n=(t.cases) { (l.int(t.cases)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The period form of the dashboard page.
pub fn period_form(l: Lang, p: &Period) -> Markup {
    html! {
        form class="filters no-print" method="get" action="/report" {
            label { (l.t("from")) input type="date" name="from" id="from" value=(p.from); }
            label { (l.t("to")) input type="date" name="to" id="to" value=(p.to); }
            button id="apply" { (l.t("apply")) }
        }
    }
}

/// The exported `index.html`: the report on its own, styled by
/// `print.css` next to it, its charts inline.
pub fn export_page(l: Lang, f: &Figures) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                title { (l.t("threat_report")) " " (f.period.from) " — " (f.period.to) " — trawl" }
                link rel="stylesheet" href="print.css";
            }
            body class="report" {
                main { (report_body(l, f, &CsvLinks::Files)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_intel::flash::{AlertState, AlertWhat, Tlp};

    #[test]
    fn periods_are_whole_days_and_refusals_name_the_bad_date() {
        let p = Period::parse("2026-01-01", "2026-12-31").unwrap();
        assert_eq!(p.months.len(), 12);
        assert_eq!(p.months[0], "2026-01");
        assert_eq!(p.months[11], "2026-12");
        assert_eq!(p.from_ms, 1_767_225_600_000);
        assert_eq!(p.to_ms, 1_798_761_600_000 - 1);
        assert!(p.holds(p.to_ms) && !p.holds(p.to_ms + 1) && !p.holds(p.from_ms - 1));
        let one = Period::parse("2024-02-29", "2024-02-29").unwrap();
        assert_eq!(one.months, ["2024-02"]);
        for (f, t, bad) in [
            ("2026-02-30", "2026-12-31", "2026-02-30"),
            ("2026-1-01", "2026-12-31", "2026-1-01"),
            ("2026-01-01", "2026-13-01", "2026-13-01"),
            ("2026-01-01", "", ""),
            ("+2026-01-01", "2026-12-31", "+2026-01-01"),
        ] {
            let e = Period::parse(f, t).unwrap_err();
            assert_eq!(e.value, bad, "{f} {t}");
            assert!(e.why.contains(&format!("{bad:?}")), "{}", e.why);
        }
        let e = Period::parse("2026-12-01", "2026-01-31").unwrap_err();
        assert!(e.why.contains("after"), "{}", e.why);
        assert!(Period::parse("2000-01-01", "2010-12-31").is_err());
        assert_eq!(Period::year_of(1_780_000_000_000).from, "2026-01-01");
    }

    fn sample() -> Figures {
        let p = Period::parse("2026-01-01", "2026-03-31").unwrap();
        let mut r = IndicatorRow {
            month: "2026-02".into(),
            case: "A".into(),
            images: 2,
            bytes: 3 << 20,
            ttr_ms: vec![1000, 3000],
            ..Default::default()
        };
        r.findings.insert("email".into(), (5, 2));
        r.findings.insert("yara".into(), (3, 1));
        r.yara_families.insert("demo.yar".into(), 3);
        Figures {
            period: p,
            reader: "olga".into(),
            role: Role::CaseOfficer,
            generated_ms: 1_772_000_000_000,
            rows: vec![r],
            retro: [("2026-03".to_string(), (1 << 20, 1))].into(),
            alerts: vec![AlertRecord {
                seq: 1,
                id: "AL000001".into(),
                case: "A".into(),
                flash: "F000001".into(),
                flash_title: "<b>campaign</b>".into(),
                tlp: Tlp::Amber,
                job: "J000001".into(),
                what: AlertWhat::Indicator {
                    indicator_kind: "email".into(),
                    value: "x@evil.example".into(),
                },
                created_ms: 1_772_000_000_000,
                state: AlertState::New,
            }],
            flashes: [("2026-02".to_string(), 1)].into(),
            top: vec![
                TopIndicator {
                    kind: "email".into(),
                    value: Some("x@evil.example".into()),
                    cases: 3,
                    case_ids: Vec::new(),
                },
                TopIndicator {
                    kind: "domain".into(),
                    value: None,
                    cases: 2,
                    case_ids: Vec::new(),
                },
            ],
        }
    }

    #[test]
    fn every_month_of_the_period_and_the_figures_as_csv() {
        let f = sample();
        let ms = f.months();
        assert_eq!(
            ms.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["2026-01", "2026-02", "2026-03"]
        );
        let csv = f.months_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert_eq!(lines[1], "2026-01,0,0,0,0,0.0,0.0,0,0,0,0");
        assert_eq!(lines[2], "2026-02,2,3145728,8,2,2.0,3.0,1,1,0,0");
        assert_eq!(lines[3], "2026-03,0,0,0,0,0.0,0.0,0,0,1,1048576");
        assert_eq!(
            f.top_csv().lines().collect::<Vec<_>>(),
            [
                "rank,kind,value,cases,case_ids",
                "1,email,x@evil.example,3,",
                "2,domain,,2,"
            ]
        );
        let alerts = f.alerts_csv();
        assert!(
            alerts
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("AL000001,2026-02-25T"),
            "{alerts}"
        );
    }

    #[test]
    fn the_page_is_escaped_translated_and_holds_every_chart() {
        let f = sample();
        for l in [Lang::En, Lang::Fr] {
            let page = export_page(l, &f).into_string();
            assert!(!page.contains('⟦'), "{page}");
            assert!(!page.contains("<b>campaign"), "escaped");
            assert!(page.contains("href=\"print.css\""));
            for (id, _) in charts_of(l, &f) {
                assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
            }
            assert_eq!(page.matches("class=\"report-section\"").count(), 7);
            assert!(page.contains("data-hidden=\"true\""));
        }
        let fr = export_page(Lang::Fr, &f).into_string();
        assert!(fr.contains("Rapport sur la menace") && fr.contains("masquée"));
    }
}
