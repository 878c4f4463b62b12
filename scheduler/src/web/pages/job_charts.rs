//! The job page's charts: its throughput over time, and bars of counts.

use super::super::charts::{self, Axis, Series};
use super::super::i18n::Lang;
use super::byte_unit;
use maud::{Markup, html};
use trawl_store::{JobRecord, TaskRecord};

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

/// The throughput chart of a job (SVG) and its data table.
pub fn throughput_chart(l: Lang, series: &[(i64, u64)]) -> (Markup, Markup) {
    let raw = rates(series);
    let (div, unit) = byte_unit(l, raw.iter().map(|p| p.1).fold(0.0, f64::max));
    let pts: Vec<(f64, f64)> = raw.iter().map(|(t, r)| (*t, r / div)).collect();
    let secs = |v: f64| l.duration_ms((v * 1000.0) as i64);
    let mib = |v: f64| l.num(v, if v.fract() == 0.0 { 0 } else { 1 });
    let desc = [
        l.t("throughput_chart"),
        " — ",
        &raw.iter()
            .map(|(t, r)| [secs(*t), l.rate(*r)].join(": "))
            .collect::<Vec<_>>()
            .join("; "),
    ]
    .concat();
    let svg = charts::line(
        "throughput-chart",
        l.t("throughput_chart"),
        &desc,
        &Axis::new(l.t("time_s").to_string(), &secs),
        &Axis::new([l.t("rate_axis"), " (", unit, "/s)"].concat(), &mib),
        &[Series {
            name: l.t("throughput").to_string(),
            points: pts,
        }],
    );
    let table = html! {
        details {
            summary { (l.t("chart_table")) }
            table class="chart-data" id="throughput-data" {
                tr { th { (l.t("elapsed")) } th class="num" { (l.t("throughput")) } }
                @for (t, r) in &raw {
                    tr { td { (secs(*t)) } td class="num" { (l.rate(*r)) } }
                }
            }
        }
    };
    (svg, table)
}

/// Bars of (label, count), with the table under them.
pub(super) fn count_bars(
    l: Lang,
    id: &str,
    title: &str,
    x_label: &str,
    rows: &[(String, u64)],
) -> Markup {
    let int = |v: f64| l.int(v.round().max(0.0) as u64);
    let desc = [
        title,
        " — ",
        &rows
            .iter()
            .map(|(k, n)| [k.as_str(), ": ", &l.int(*n)].concat())
            .collect::<Vec<_>>()
            .join("; "),
    ]
    .concat();
    charts::stacked_bars(
        id,
        title,
        &desc,
        x_label,
        &Axis::new(l.t("count").to_string(), &int).integral(),
        &rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        &[(
            l.t("count").to_string(),
            rows.iter().map(|r| r.1 as f64).collect(),
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
