//! Charts as inline SVG, drawn on the server (no script, no external
//! asset): line charts and bar charts with axes, ticks, units and a
//! legend. Each chart is an `<svg role="img">` with a `<title>` and a
//! `<desc>` (its text alternative); the pages put the data's table below
//! it. Drawn with maud's `html!`, which escapes every text that comes
//! from data.

use maud::{Markup, html};

const W: f64 = 680.0;
const H: f64 = 260.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 56.0;

/// Series colours (distinguishable, readable on white).
const PALETTE: [&str; 16] = [
    "#1d5fa0", "#d0651a", "#2a8a4a", "#a02060", "#6a4fb0", "#8a6a10", "#1a8a8a", "#b03030",
    "#4a4a4a", "#7a9a20", "#e0a800", "#5ab4e8", "#e377c2", "#8c564b", "#17becf", "#9a9a30",
];

/// The colour of series `i`.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// An axis: its label (with the unit) and how its values read.
pub struct Axis<'a> {
    pub label: String,
    pub fmt: &'a dyn Fn(f64) -> String,
    /// Whole values only (counts): ticks at least 1 apart.
    pub integral: bool,
    /// The range to show (x axes), instead of the data's.
    pub range: Option<(f64, f64)>,
}

impl<'a> Axis<'a> {
    pub fn new(label: impl Into<String>, fmt: &'a dyn Fn(f64) -> String) -> Self {
        Self {
            label: label.into(),
            fmt,
            integral: false,
            range: None,
        }
    }

    /// Ticks on whole values only.
    pub fn integral(mut self) -> Self {
        self.integral = true;
        self
    }

    /// Shows `[from, to]`.
    pub fn range(mut self, from: f64, to: f64) -> Self {
        self.range = Some((from, to));
        self
    }
}

/// A named line.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A step of 1, 2 or 5 times a power of ten giving about `n` ticks up to
/// `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / n;
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let k = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 2.5 {
        2.5
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    k * p
}

/// Ticks from `lo` to at least `hi` (whole steps when `integral`).
fn ticks_of(lo: f64, hi: f64, n: f64, integral: bool) -> Vec<f64> {
    let mut step = nice_step((hi - lo).max(f64::MIN_POSITIVE), n);
    if integral {
        step = step.max(1.0).round();
    }
    let start = (lo / step).floor() * step;
    let mut v = Vec::new();
    let mut x = start;
    while v.len() < 64 {
        v.push(x);
        if x >= hi {
            break;
        }
        x += step;
    }
    v
}

/// Pixels, to a tenth.
struct Px(f64);

impl std::fmt::Display for Px {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}", self.0)
    }
}

/// The chart's frame: the `<svg>` with its title, description and heading
/// around `inner`.
fn chart(id: &str, title: &str, desc: &str, height: f64, inner: Markup) -> Markup {
    let title_id = [id, "-title"].concat();
    let desc_id = [id, "-desc"].concat();
    html! {
        svg class="chart" id=(id) role="img" aria-labelledby={ (title_id) " " (desc_id) }
            width=(W) height=(height) viewBox={ "0 0 " (W) " " (height) }
            xmlns="http://www.w3.org/2000/svg" {
            title id=(title_id) { (title) }
            desc id=(desc_id) { (desc) }
            text class="chart-title" x=(LEFT) y="16" { (title) }
            (inner)
        }
    }
}

/// The legend under the plot, wrapped to the chart's width: the SVG and
/// the height it takes.
fn legend(names: &[String], top: f64) -> (Markup, f64) {
    if names.len() < 2 {
        return (html! {}, 0.0);
    }
    let mut items = Vec::new();
    let mut x = LEFT;
    let mut y = top + 12.0;
    for (i, n) in names.iter().enumerate() {
        let w = 24.0 + 6.5 * n.chars().count() as f64;
        if x > LEFT && x + w > W - RIGHT {
            x = LEFT;
            y += 16.0;
        }
        items.push((x, y, colour(i), n));
        x += w;
    }
    let svg = html! {
        @for (x, y, c, n) in items {
            g class="legend" {
                rect x=(Px(x)) y=(Px(y - 9.0)) width="10" height="10" fill=(c) {}
                text x=(Px(x + 14.0)) y=(Px(y)) { (n) }
            }
        }
    };
    (svg, y - top + 6.0)
}

/// Both axes with their ticks and labels, for a plot of `[x0, x1] ×
/// [0, y1]`; returns the SVG and the mapping to pixels.
fn frame(
    x: &Axis,
    y: &Axis,
    (x0, x1): (f64, f64),
    y1: f64,
    plot_h: f64,
    x_ticks: bool,
) -> (Markup, impl Fn(f64, f64) -> (f64, f64) + use<>) {
    let yt = ticks_of(0.0, y1, 4.0, y.integral);
    let ymax = yt.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
    let xt = ticks_of(x0, x1, 5.0, x.integral);
    let (xa, xb) = if x_ticks {
        (
            xt.first().copied().unwrap_or(x0),
            xt.last().copied().unwrap_or(x1),
        )
    } else {
        (x0, x1)
    };
    let xspan = (xb - xa).max(f64::MIN_POSITIVE);
    let pw = W - LEFT - RIGHT;
    let map = move |vx: f64, vy: f64| {
        (
            LEFT + (vx - xa) / xspan * pw,
            TOP + plot_h - vy / ymax * plot_h,
        )
    };
    let bottom = TOP + plot_h;
    let svg = html! {
        g class="axis y-axis" {
            @for t in &yt {
                @let py = Px(map(xa, *t).1);
                line class="grid" x1=(LEFT) x2=(Px(W - RIGHT)) y1=(py) y2=(py) {}
                text class="tick" x=(Px(LEFT - 6.0)) y=(Px(py.0 + 4.0)) text-anchor="end" { ((y.fmt)(*t)) }
            }
            line class="axis-line" x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(Px(bottom)) {}
            text class="axis-label" transform={ "translate(14 " (Px(TOP + plot_h / 2.0)) ") rotate(-90)" }
                text-anchor="middle" { (y.label) }
        }
        g class="axis x-axis" {
            line class="axis-line" x1=(LEFT) x2=(Px(W - RIGHT)) y1=(Px(bottom)) y2=(Px(bottom)) {}
            @if x_ticks {
                @for t in &xt {
                    text class="tick" x=(Px(map(*t, 0.0).0)) y=(Px(bottom + 16.0)) text-anchor="middle" { ((x.fmt)(*t)) }
                }
            }
            text class="axis-label" x=(Px(LEFT + pw / 2.0)) y=(Px(bottom + 48.0)) text-anchor="middle" { (x.label) }
        }
    };
    (svg, map)
}

/// A line chart: one path per series (with a marker per point), over a
/// y axis from 0.
pub fn line(id: &str, title: &str, desc: &str, x: &Axis, y: &Axis, series: &[Series]) -> Markup {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for (a, b) in pts {
        x0 = x0.min(*a);
        x1 = x1.max(*a);
        y1 = y1.max(*b);
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if let Some(r) = x.range {
        (x0, x1) = r;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let names: Vec<String> = series.iter().map(|s| s.name.clone()).collect();
    let (legend_svg, legend_h) = legend(&names, H);
    let plot_h = H - TOP - BOTTOM;
    let (axes, map) = frame(x, y, (x0, x1), y1, plot_h, true);
    let inner = html! {
        (axes)
        @for (i, s) in series.iter().enumerate().filter(|(_, s)| !s.points.is_empty()) {
            path class="series" data-series=(s.name) d=(PathData(s.points.iter().map(|(a, b)| map(*a, *b)).collect()))
                fill="none" stroke=(colour(i)) stroke-width="2" {}
            @if s.points.len() <= 60 {
                @for (a, b) in &s.points {
                    @let (px, py) = map(*a, *b);
                    circle cx=(Px(px)) cy=(Px(py)) r="2.5" fill=(colour(i)) {}
                }
            }
        }
        (legend_svg)
    };
    chart(id, title, desc, H + legend_h, inner)
}

/// A path's `d`: `M x,y L x,y ...`.
struct PathData(Vec<(f64, f64)>);

impl std::fmt::Display for PathData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (k, (x, y)) in self.0.iter().enumerate() {
            let sep = match k {
                0 => "M",
                _ => " L",
            };
            write!(f, "{sep}{x:.1},{y:.1}")?;
        }
        Ok(())
    }
}

/// Vertical bars, one per category, stacked by series (one series: plain
/// bars). `values[s][c]` is series `s` in category `c`.
pub fn stacked_bars(
    id: &str,
    title: &str,
    desc: &str,
    x_label: &str,
    y: &Axis,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Markup {
    let totals: Vec<f64> = (0..categories.len())
        .map(|c| {
            series
                .iter()
                .map(|s| s.1.get(c).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let y1 = totals.iter().copied().fold(0.0, f64::max);
    let names: Vec<String> = series.iter().map(|s| s.0.clone()).collect();
    let (legend_svg, legend_h) = legend(&names, H);
    let plot_h = H - TOP - BOTTOM;
    let xfmt = |_: f64| String::new();
    let xa = Axis::new(x_label, &xfmt);
    let n = categories.len().max(1) as f64;
    let (axes, map) = frame(&xa, y, (0.0, n), y1, plot_h, false);
    let slot = (W - LEFT - RIGHT) / n;
    let bw = (slot * 0.7).min(60.0);
    // Narrow slots: labels slanted so that they do not run together.
    let slanted = slot < 48.0;
    let ty = TOP + plot_h + 14.0;
    let inner = html! {
        (axes)
        @for (c, name) in categories.iter().enumerate() {
            @let cx = LEFT + slot * (c as f64 + 0.5);
            // Each series' segment: (series, name, value, from, to).
            @let segments: Vec<(usize, &String, f64, f64, f64)> = series
                .iter()
                .enumerate()
                .map(|(i, (sname, vals))| (i, sname, vals.get(c).copied().unwrap_or(0.0)))
                .filter(|s| s.2 > 0.0)
                .scan(0.0, |base, (i, sname, v)| {
                    let from = *base;
                    *base += v;
                    Some((i, sname, v, from, *base))
                })
                .collect();
            @let base = segments.last().map_or(0.0, |s| s.4);
            @for (i, sname, v, from, to) in segments {
                @let (_, ytop) = map(0.0, to);
                @let (_, ybot) = map(0.0, from);
                rect class="bar" data-series=(sname) data-value=(v) x=(Px(cx - bw / 2.0)) y=(Px(ytop))
                    width=(Px(bw)) height=(Px((ybot - ytop).max(0.5))) fill=(colour(i)) {
                    title { (name) " — " (sname) ": " ((y.fmt)(v)) }
                }
            }
            @if base > 0.0 {
                text class="bar-value" x=(Px(cx)) y=(Px(map(0.0, base).1 - 4.0)) text-anchor="middle" { ((y.fmt)(base)) }
            }
            @let label = shorten(name, if slanted { 8 } else { (slot / 7.0) as usize });
            @if slanted {
                text class="tick" x=(Px(cx)) y=(Px(ty)) text-anchor="end"
                    transform={ "rotate(-40 " (Px(cx)) " " (Px(ty)) ")" } { (label) }
            } @else {
                text class="tick" x=(Px(cx)) y=(Px(ty)) text-anchor="middle" { (label) }
            }
        }
        (legend_svg)
    };
    chart(id, title, desc, H + legend_h, inner)
}

/// A node of a [`columns`] graph: a key (for edges and tests), its label
/// and its class.
pub struct Node {
    pub key: String,
    pub label: String,
    pub class: &'static str,
}

/// A graph in three columns (cases, what joins them, cases): a box per
/// node, a line per edge. `edges` join node `a` of column `c` to node `b`
/// of column `c + 1`: `(c, a, b)`.
pub fn columns(
    id: &str,
    title: &str,
    desc: &str,
    heads: [&str; 3],
    cols: &[Vec<Node>; 3],
    edges: &[(usize, usize, usize)],
) -> Markup {
    const GW: f64 = 900.0;
    const ROW: f64 = 26.0;
    const TOP_G: f64 = 52.0;
    // (left edge, width, characters shown) per column
    const BOX: [(f64, f64, usize); 3] = [(16.0, 170.0, 22), (300.0, 300.0, 42), (714.0, 170.0, 22)];
    let rows = cols.iter().map(Vec::len).max().unwrap_or(0).max(1) as f64;
    let height = TOP_G + rows * ROW + 16.0;
    let y_of = |c: usize, i: usize| {
        let n = cols[c].len().max(1) as f64;
        TOP_G + (i as f64 + 0.5) * (rows * ROW / n)
    };
    let title_id = [id, "-title"].concat();
    let desc_id = [id, "-desc"].concat();
    html! {
        svg class="chart graph" id=(id) role="img" aria-labelledby={ (title_id) " " (desc_id) }
            width=(GW) height=(Px(height)) viewBox={ "0 0 " (GW) " " (Px(height)) }
            xmlns="http://www.w3.org/2000/svg" {
            title id=(title_id) { (title) }
            desc id=(desc_id) { (desc) }
            text class="chart-title" x="16" y="16" { (title) }
            @for (c, h) in heads.iter().enumerate() {
                text class="axis-label" x=(Px(BOX[c].0 + BOX[c].1 / 2.0)) y="40" text-anchor="middle" { (h) }
            }
            g class="edges" {
                @for (c, a, b) in edges.iter().filter(|(c, a, b)| *c < 2 && *a < cols[*c].len() && *b < cols[*c + 1].len()) {
                    line class="edge" x1=(Px(BOX[*c].0 + BOX[*c].1)) y1=(Px(y_of(*c, *a)))
                        x2=(Px(BOX[*c + 1].0)) y2=(Px(y_of(*c + 1, *b)))
                        data-from=(cols[*c][*a].key) data-to=(cols[*c + 1][*b].key) {}
                }
            }
            @for (c, col) in cols.iter().enumerate() {
                @for (i, n) in col.iter().enumerate() {
                    @let y = y_of(c, i);
                    g class={ "node " (n.class) } data-key=(n.key) {
                        title { (n.label) }
                        rect x=(Px(BOX[c].0)) y=(Px(y - 10.0)) width=(Px(BOX[c].1)) height="20" rx="4" {}
                        text x=(Px(BOX[c].0 + 6.0)) y=(Px(y + 4.0)) { (shorten(&n.label, BOX[c].2)) }
                    }
                }
            }
        }
    }
}

/// `s` cut to `n` characters with an ellipsis.
fn shorten(s: &str, n: usize) -> String {
    let n = n.max(4);
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut o: String = s.chars().take(n - 1).collect();
        o.push('…');
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(lo: f64, hi: f64, n: f64) -> Vec<f64> {
        ticks_of(lo, hi, n, false)
    }

    #[test]
    fn nice_ticks() {
        assert_eq!(ticks(0.0, 95.0, 4.0), [0.0, 25.0, 50.0, 75.0, 100.0]);
        assert_eq!(ticks(0.0, 70.0, 4.0), [0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(ticks(0.0, 3.0, 4.0), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(ticks(0.0, 0.0, 4.0)[0], 0.0);
        assert_eq!(ticks_of(0.0, 2.0, 4.0, true), [0.0, 1.0, 2.0]);
        assert_eq!(ticks_of(-0.5, 0.5, 5.0, true), [-1.0, 0.0, 1.0]);
    }

    #[test]
    fn a_line_chart_has_axes_points_and_escaped_text() {
        let f = |v: f64| format!("{v} u");
        let a = Axis::new("x <s>", &f);
        let svg = line(
            "c",
            "T <b>",
            "d",
            &a,
            &a,
            &[Series {
                name: "<script>".into(),
                points: vec![(0.0, 0.0), (1.0, 5.0), (2.0, 3.0)],
            }],
        )
        .into_string();
        assert!(svg.contains("<path class=\"series\""), "{svg}");
        assert!(svg.contains(" L"), "{svg}");
        assert!(svg.contains("class=\"axis-label\""));
        assert!(svg.contains("x &lt;s&gt;"));
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("role=\"img\""));
        let bars = stacked_bars(
            "b",
            "B",
            "d",
            "month",
            &a,
            &["2026-11".into(), "2026-12".into()],
            &[
                ("email".into(), vec![1.0, 2.0]),
                ("url".into(), vec![0.0, 4.0]),
            ],
        )
        .into_string();
        assert_eq!(bars.matches("class=\"bar\"").count(), 3, "{bars}");
        assert!(bars.contains(">6 u</text>"), "{bars}");
    }

    #[test]
    fn a_column_graph_has_nodes_edges_and_escaped_labels() {
        let n = |k: &str, l: &str| Node {
            key: k.into(),
            label: l.into(),
            class: "x",
        };
        let svg = columns(
            "g",
            "T",
            "D <d>",
            ["a", "b", "c"],
            &[
                vec![n("A", "case A")],
                vec![n("i1", "<script>"), n("i2", "two")],
                vec![n("B", "case B")],
            ],
            &[(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0), (1, 5, 0)],
        )
        .into_string();
        assert!(svg.contains("role=\"img\""), "{svg}");
        assert_eq!(svg.matches("<line class=\"edge\"").count(), 4, "{svg}");
        assert_eq!(svg.matches("<g class=\"node x\"").count(), 4, "{svg}");
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        assert!(svg.contains("D &lt;d&gt;"));
    }
}
