//! Charts as inline SVG, drawn on the server (no script, no external
//! asset): line charts and bar charts with axes, ticks, units and a
//! legend. Each chart is an `<svg role="img">` with a `<title>` and a
//! `<desc>` (its text alternative); the pages put the data's table below
//! it. Every text that comes from data goes through [`esc`].

use super::esc;

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

fn open(id: &str, title: &str, desc: &str, height: f64) -> String {
    format!(
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc><text class=\"chart-title\" x=\"{LEFT}\" y=\"16\">{}</text>",
        esc(title),
        esc(desc),
        esc(title),
    )
}

/// The legend under the plot, wrapped to the chart's width: the SVG and
/// the height it takes.
fn legend(names: &[String], top: f64) -> (String, f64) {
    if names.len() < 2 {
        return (String::new(), 0.0);
    }
    let mut o = String::new();
    let mut x = LEFT;
    let mut y = top + 12.0;
    for (i, n) in names.iter().enumerate() {
        let w = 24.0 + 6.5 * n.chars().count() as f64;
        if x > LEFT && x + w > W - RIGHT {
            x = LEFT;
            y += 16.0;
        }
        o.push_str(&format!(
            "<g class=\"legend\"><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"></rect><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            y - 9.0,
            colour(i),
            x + 14.0,
            y,
            esc(n)
        ));
        x += w;
    }
    (o, y - top + 6.0)
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
) -> (String, impl Fn(f64, f64) -> (f64, f64) + use<>) {
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
    let mut o = String::new();
    o.push_str("<g class=\"axis y-axis\">");
    for t in &yt {
        let (_, py) = map(xa, *t);
        o.push_str(&format!(
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\"></line><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            esc(&(y.fmt)(*t))
        ));
    }
    o.push_str(&format!(
        "<line class=\"axis-line\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\"></line><text class=\"axis-label\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text></g>",
        TOP + plot_h,
        TOP + plot_h / 2.0,
        esc(&y.label)
    ));
    o.push_str("<g class=\"axis x-axis\">");
    o.push_str(&format!(
        "<line class=\"axis-line\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"></line>",
        W - RIGHT,
        TOP + plot_h,
        TOP + plot_h
    ));
    if x_ticks {
        for t in &xt {
            let (px, _) = map(*t, 0.0);
            o.push_str(&format!(
                "<text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                TOP + plot_h + 16.0,
                esc(&(x.fmt)(*t))
            ));
        }
    }
    o.push_str(&format!(
        "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
        LEFT + pw / 2.0,
        TOP + plot_h + 48.0,
        esc(&x.label)
    ));
    (o, map)
}

/// A line chart: one path per series (with a marker per point), over a
/// y axis from 0.
pub fn line(id: &str, title: &str, desc: &str, x: &Axis, y: &Axis, series: &[Series]) -> String {
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
    let height = H + legend_h;
    let plot_h = H - TOP - BOTTOM;
    let mut o = open(id, title, desc, height);
    let (axes, map) = frame(x, y, (x0, x1), y1, plot_h, true);
    o.push_str(&axes);
    for (i, s) in series.iter().enumerate() {
        if s.points.is_empty() {
            continue;
        }
        let d: Vec<String> = s
            .points
            .iter()
            .enumerate()
            .map(|(k, (a, b))| {
                let (px, py) = map(*a, *b);
                format!("{}{px:.1},{py:.1}", if k == 0 { "M" } else { "L" })
            })
            .collect();
        o.push_str(&format!(
            "<path class=\"series\" data-series=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"></path>",
            esc(&s.name),
            d.join(" "),
            colour(i)
        ));
        if s.points.len() <= 60 {
            for (a, b) in &s.points {
                let (px, py) = map(*a, *b);
                o.push_str(&format!(
                    "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"2.5\" fill=\"{}\"></circle>",
                    colour(i)
                ));
            }
        }
    }
    o.push_str(&legend_svg);
    o.push_str("</svg>");
    o
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
) -> String {
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
    let height = H + legend_h;
    let plot_h = H - TOP - BOTTOM;
    let mut o = open(id, title, desc, height);
    let xfmt = |_: f64| String::new();
    let xa = Axis::new(x_label, &xfmt);
    let n = categories.len().max(1) as f64;
    let (axes, map) = frame(&xa, y, (0.0, n), y1, plot_h, false);
    o.push_str(&axes);
    let slot = (W - LEFT - RIGHT) / n;
    let bw = (slot * 0.7).min(60.0);
    for (c, name) in categories.iter().enumerate() {
        let cx = LEFT + slot * (c as f64 + 0.5);
        let mut base = 0.0;
        for (i, (sname, vals)) in series.iter().enumerate() {
            let v = vals.get(c).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let (_, ytop) = map(0.0, base + v);
            let (_, ybot) = map(0.0, base);
            o.push_str(&format!(
                "<rect class=\"bar\" data-series=\"{}\" data-value=\"{v}\" x=\"{:.1}\" y=\"{ytop:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                esc(sname),
                cx - bw / 2.0,
                (ybot - ytop).max(0.5),
                colour(i),
                esc(&format!("{name} — {sname}")),
                esc(&(y.fmt)(v))
            ));
            base += v;
        }
        let (_, ytop) = map(0.0, base);
        if base > 0.0 {
            o.push_str(&format!(
                "<text class=\"bar-value\" x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                ytop - 4.0,
                esc(&(y.fmt)(base))
            ));
        }
        // Narrow slots: labels slanted so that they do not run together.
        let slanted = slot < 48.0;
        let ty = TOP + plot_h + 14.0;
        o.push_str(&format!(
            "<text class=\"tick\" x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"{}\"{}>{}</text>",
            if slanted { "end" } else { "middle" },
            if slanted {
                format!(" transform=\"rotate(-40 {cx:.1} {ty:.1})\"")
            } else {
                String::new()
            },
            esc(&shorten(
                name,
                if slanted { 8 } else { (slot / 7.0) as usize }
            ))
        ));
    }
    o.push_str(&legend_svg);
    o.push_str("</svg>");
    o
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
        );
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
        );
        assert_eq!(bars.matches("class=\"bar\"").count(), 3, "{bars}");
        assert!(bars.contains(">6 u</text>"), "{bars}");
    }
}
