//! The threat report on the dashboard (`/report?from&to`, its CSV files
//! under `/report/NAME.csv`) and as files ([`threat_report`], streamed by
//! the `Reports` service and written by `trawl report`): the same figures
//! ([`pages::figures`]), the same page body, the same CSV functions.

use super::extract::SignedIn;
use super::i18n::Lang;
use super::{Web, html, pages};
use crate::core::{Caller, Scheduler};
use crate::error::SchedError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html as m;

/// The report's style sheet: the dashboard's, the report's, and the print
/// rules (A4, no header or navigation, each section on a new page).
pub const REPORT_CSS: &str = r#"
section.report-section{margin:0 0 2em}
.period{font-size:1.1em;font-weight:600}
.csv-links a{margin-right:.6em}
@page{size:A4;margin:14mm 12mm}
@media print{
  header,nav,form,.no-print{display:none!important}
  body{background:#fff;color:#000;font-size:10pt}
  main{padding:0}
  section.report-section{break-before:page;page-break-before:always}
  section.report-section:first-of-type{break-before:auto;page-break-before:auto}
  svg.chart{max-width:100%;height:auto;break-inside:avoid;page-break-inside:avoid}
  table{break-inside:auto}
  tr{break-inside:avoid;page-break-inside:avoid}
  a{color:#000;text-decoration:none}
}
"#;

/// `print.css`: served at `/assets/print.css` and written next to the
/// exported `index.html`, which it makes self-contained.
pub fn print_css() -> String {
    [pages::CSS, REPORT_CSS].concat()
}

/// `GET /assets/print.css`.
pub(super) fn print_css_response() -> Response {
    let mut r = (StatusCode::OK, print_css()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r
}

/// The chart styles, put in each exported `charts/*.svg` (which has no page
/// around it).
const SVG_STYLE: &str = "svg.chart{background:#fff;font-family:system-ui,sans-serif}.grid{stroke:#e3e8ef}.axis-line{stroke:#33414f}text{font-size:11px;fill:#33414f}.chart-title{font-weight:600;font-size:12px}.axis-label{font-size:11px;font-weight:600}";

/// A chart as a file of its own: its `<style>` right after the opening
/// tag (maud escapes `>` in attribute values, so the first `>` ends it).
fn standalone_svg(chart: &maud::Markup) -> String {
    let s = chart.clone().into_string();
    match s.find('>') {
        Some(i) => [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            &s[..=i],
            "<style>",
            SVG_STYLE,
            "</style>",
            &s[i + 1..],
        ]
        .concat(),
        None => s,
    }
}

/// The language of a request (`""` or `en`, `fr`).
///
/// # Errors
/// Any other language.
pub fn lang_of(code: &str) -> Result<Lang, SchedError> {
    match code {
        "" | "en" => Ok(Lang::En),
        "fr" => Ok(Lang::Fr),
        other => Err(SchedError::InvalidArgument(format!(
            "lang {other:?}: the report is written in en or fr"
        ))),
    }
}

/// The threat report of `[from, to]` for `caller`, as files: (relative
/// path, content). `indicators.csv` is the indicators page's CSV over the
/// period (the same function, byte for byte). Audited `report.threat`.
/// Blocking (reads stored results).
///
/// # Errors
/// A bad period or language.
pub fn threat_report(
    sched: &Scheduler,
    caller: &Caller,
    from: &str,
    to: &str,
    lang: &str,
) -> Result<Vec<(String, Vec<u8>)>, SchedError> {
    let l = lang_of(lang)?;
    let p = pages::Period::parse(from, to).map_err(|e| SchedError::InvalidArgument(e.why))?;
    let f = pages::figures(sched, caller, &p);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "index.html".into(),
            super::no_controls(pages::export_page(l, &f).into_string()).into_bytes(),
        ),
        ("print.css".into(), print_css().into_bytes()),
    ];
    for (id, chart) in pages::charts_of(l, &f) {
        files.push((
            format!("charts/{id}.svg"),
            super::no_controls(standalone_svg(&chart)).into_bytes(),
        ));
    }
    files.push((
        "indicators.csv".into(),
        pages::indicators_csv(&f.rows).into_bytes(),
    ));
    files.push(("months.csv".into(), f.months_csv().into_bytes()));
    files.push(("alerts.csv".into(), f.alerts_csv().into_bytes()));
    files.push(("top_indicators.csv".into(), f.top_csv().into_bytes()));
    audit(sched, caller, &f, "files", files.len());
    Ok(files)
}

fn audit(sched: &Scheduler, caller: &Caller, f: &pages::Figures, how: &str, n: usize) {
    sched.audit(
        caller,
        "report.threat",
        &format!("{}..{}", f.period.from, f.period.to),
        "",
        format!(
            "threat report {} to {} ({how}, {n}): {} case-month row(s), {} alert(s), {} linked indicator(s)",
            f.period.from,
            f.period.to,
            f.rows.len(),
            f.alerts.len(),
            f.top.len()
        ),
    );
}

/// The period of a dashboard request (the current year when not given).
#[derive(serde::Deserialize, Default)]
pub(super) struct PeriodQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

impl PeriodQuery {
    /// `None`: no period asked (the whole history on `/indicators.csv`).
    fn period(&self) -> Option<Result<pages::Period, pages::BadPeriod>> {
        if self.from.is_none() && self.to.is_none() {
            return None;
        }
        let year = pages::Period::year_of(trawl_store::now_ms());
        let from = self.from.clone().unwrap_or(year.from);
        let to = self.to.clone().unwrap_or(year.to);
        Some(pages::Period::parse(&from, &to))
    }
}

fn bad_period(who: &SignedIn, e: &pages::BadPeriod) -> Response {
    let l = who.lang;
    let shown = if e.value.is_empty() {
        String::new()
    } else {
        format!(" {:?}", e.value)
    };
    who.refusal(
        StatusCode::BAD_REQUEST,
        l.t("tr_bad_period"),
        &[l.t("tr_bad_period_text"), &shown].concat(),
    )
}

async fn figures_for(w: &Web, c: &Caller, p: pages::Period) -> pages::Figures {
    let sched = w.sched.clone();
    let c2 = c.clone();
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || pages::figures(&sched, &c2, &p2))
        .await
        .unwrap_or_else(|_| pages::figures(&w.sched, c, &p))
}

/// `GET /report?from&to`: the report page (the current year by default).
pub(super) async fn report_page(
    State(w): State<Web>,
    who: SignedIn,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let p = match q.period() {
        None => pages::Period::year_of(trawl_store::now_ms()),
        Some(Ok(p)) => p,
        Some(Err(e)) => return bad_period(&who, &e),
    };
    let l = who.lang;
    let f = figures_for(&w, &who.caller, p).await;
    audit(&w.sched, &who.caller, &f, "page", 1);
    let body = m! {
        link rel="stylesheet" href="/assets/print.css";
        (pages::period_form(l, &f.period))
        (pages::report_body(l, &f, &pages::CsvLinks::Dashboard))
    };
    html(
        StatusCode::OK,
        pages::layout_signed(
            l,
            &who.caller,
            &who.session.csrf,
            l.t("threat_report"),
            body,
        ),
    )
}

fn csv(body: String, name: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"trawl-{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /report/{months,alerts,top_indicators}.csv?from&to`.
pub(super) async fn report_csv(
    State(w): State<Web>,
    who: SignedIn,
    Path(name): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let name: &'static str = match name.as_str() {
        "months.csv" => "months.csv",
        "alerts.csv" => "alerts.csv",
        "top_indicators.csv" => "top_indicators.csv",
        _ => return super::not_found(who.lang, &who.caller, &who.session.csrf),
    };
    let p = match q.period() {
        None => pages::Period::year_of(trawl_store::now_ms()),
        Some(Ok(p)) => p,
        Some(Err(e)) => return bad_period(&who, &e),
    };
    let f = figures_for(&w, &who.caller, p).await;
    audit(&w.sched, &who.caller, &f, name, 1);
    csv(
        match name {
            "months.csv" => f.months_csv(),
            "alerts.csv" => f.alerts_csv(),
            _ => f.top_csv(),
        },
        name,
    )
}

/// `GET /indicators.csv?from&to`: the indicators of the jobs created in
/// the period (all of them without a period), as the report's
/// `indicators.csv`.
pub(super) async fn indicators_csv(
    State(w): State<Web>,
    who: SignedIn,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let p = match q.period() {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return bad_period(&who, &e),
    };
    let sched = w.sched.clone();
    let c = who.caller.clone();
    let rows = tokio::task::spawn_blocking(move || {
        let jobs = pages::period_jobs(&sched, &c, p.as_ref());
        pages::indicator_rows(&sched, &jobs)
    })
    .await
    .unwrap_or_default();
    csv(pages::indicators_csv(&rows), "indicators.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_charts_carry_their_style() {
        let c = m! { svg class="chart" id="x" aria-label="a > b" { text { "t" } } };
        let s = standalone_svg(&c);
        assert!(s.starts_with("<?xml"), "{s}");
        assert!(
            s.contains("aria-label=\"a &gt; b\"><style>svg.chart{"),
            "{s}"
        );
        assert!(s.ends_with("<text>t</text></svg>"), "{s}");
    }

    #[test]
    fn languages() {
        assert_eq!(lang_of("").unwrap(), Lang::En);
        assert_eq!(lang_of("fr").unwrap(), Lang::Fr);
        assert!(lang_of("de").is_err());
    }
}
