//! Hand-written SVG charts (line, grouped bar, heatmap, interval plot, and a
//! search's optimisation history and slice plots; parallel coordinates and
//! parameter effects in `parallel` and `effects`): small,
//! dependency-free and self-contained, so a report opens offline. Every chart is
//! one `<svg class="chart">` element with a title and drawn marks.

use super::evidence::Mark;
use std::fmt::Write;

mod effects;
mod parallel;

pub use effects::{effect_chart, Effect};
pub use parallel::{parallel_coordinates, AxisValue, Line};

pub const PALETTE: [&str; 8] = [
    "#3b6ea5", "#d9822b", "#3a9e5c", "#b84a4a", "#7d5ba6", "#8c6d4f", "#c25b9b", "#6b6b6b",
];

const W: f64 = 520.0;
const H: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// A chart's size and the margins around its plot area, in pixels.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    /// Plot area width.
    fn pw(&self) -> f64 {
        self.width - self.left - self.right
    }

    /// Plot area height.
    fn ph(&self) -> f64 {
        self.height - self.top - self.bottom
    }
}

/// The frame of the line and bar charts.
const STANDARD: Frame = Frame {
    width: W,
    height: H,
    left: LEFT,
    right: RIGHT,
    top: TOP,
    bottom: BOTTOM,
};

/// One legend entry: a short line in `color` (dashed by `dash`, an SVG
/// `stroke-dasharray`), with a dot on it when `dot` is `Some(filled)`.
struct Key<'a> {
    name: &'a str,
    color: &'a str,
    dash: Option<&'a str>,
    dot: Option<bool>,
}

/// One line of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: &'static str,
    pub dashed: bool,
}

fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

fn open(out: &mut String, title: &str, width: f64, height: f64) {
    let _ = write!(
        out,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11"><title>{t}</title><rect width="{width}" height="{height}" fill="white"/><text x="{x}" y="18" text-anchor="middle" font-size="13" font-weight="bold">{t}</text>"#,
        t = esc(title),
        x = width / 2.0
    );
}

/// Round axis bounds with a little margin; a flat range gets some height.
fn bounds(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

/// The legend, in the frame's right margin.
fn legend(out: &mut String, frame: &Frame, items: &[Key]) {
    for (i, key) in items.iter().enumerate() {
        let y = frame.top + 10.0 + i as f64 * 16.0;
        let x = frame.width - frame.right + 12.0;
        let dash = key
            .dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{c}" stroke-width="2"{dash}/>"#,
            x + 18.0,
            c = key.color
        );
        if let Some(filled) = key.dot {
            dot(out, "key", x + 9.0, y, key.color, filled);
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            x + 22.0,
            y + 4.0,
            esc(key.name)
        );
    }
}

/// A dot of class `class`: filled, or white with a coloured ring.
fn dot(out: &mut String, class: &str, x: f64, y: f64, color: &str, filled: bool) {
    let fill = if filled { color } else { "white" };
    let _ = write!(
        out,
        r#"<circle class="{class}" cx="{x:.1}" cy="{y:.1}" r="4" fill="{fill}" stroke="{color}" stroke-width="2"/>"#
    );
}

/// Dashed lines for the legends of line charts.
fn line_keys<'a>(items: impl Iterator<Item = (&'a str, &'a str, bool)>) -> Vec<Key<'a>> {
    items
        .map(|(name, color, dashed)| Key {
            name,
            color,
            dash: dashed.then_some("4 3"),
            dot: None,
        })
        .collect()
}

/// Lines over a numeric x axis (epochs).
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts.filter(|p| p.0.is_finite() && p.1.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let (x0, x1) = if x0 > x1 {
        (0.0, 1.0)
    } else if x0 == x1 {
        (x0 - 1.0, x1 + 1.0)
    } else {
        (x0, x1)
    };
    let (y0, y1) = bounds(y0, y1);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;

    let mut out = String::new();
    open(&mut out, title, W, H);
    axes(&mut out, &STANDARD, x_label, y_label);
    for i in 0..=4 {
        let v = y0 + (y1 - y0) * i as f64 / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}" stroke="#e4e4e4"/><text x="{}" y="{ty}" text-anchor="end">{v:.3}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            y = sy(v),
            ty = sy(v) + 4.0,
        );
    }
    let (first, last) = (x0.ceil() as i64, x1.floor() as i64);
    let step = ((last - first) / 8).max(1);
    for x in (first..=last).step_by(step as usize) {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{x}</text>"#,
            sx(x as f64),
            TOP + ph + 14.0
        );
    }
    for s in series {
        let d: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if d.is_empty() {
            continue;
        }
        let dash = if s.dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<polyline class="series" fill="none" stroke="{}" stroke-width="2"{dash} points="{}"><title>{}</title></polyline>"#,
            s.color,
            d.join(" "),
            esc(&s.name)
        );
        for p in &d {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                out,
                r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{}"/>"#,
                s.color
            );
        }
    }
    let items = line_keys(series.iter().map(|s| (s.name.as_str(), s.color, s.dashed)));
    legend(&mut out, &STANDARD, &items);
    out.push_str("</svg>");
    out
}

/// The y and x axis lines of the frame's plot area, and their labels.
fn axes(out: &mut String, frame: &Frame, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r##"<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#444"/><line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#444"/><text x="{cx}" y="{xl}" text-anchor="middle">{x}</text><text transform="translate(14,{cy}) rotate(-90)" text-anchor="middle">{y}</text>"##,
        l = frame.left,
        t = frame.top,
        b = frame.top + frame.ph(),
        r = frame.width - frame.right,
        cx = frame.left + frame.pw() / 2.0,
        xl = frame.height - 8.0,
        cy = frame.top + frame.ph() / 2.0,
        x = esc(x_label),
        y = esc(y_label),
    );
}

/// Grouped bars: one group per category, one bar per series.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> String {
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let max = if max <= 0.0 { 1.0 } else { max * 1.1 };
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let group_w = pw / categories.len().max(1) as f64;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    let mut out = String::new();
    open(&mut out, title, W, H);
    axes(&mut out, &STANDARD, "", y_label);
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let y = TOP + ph - v / max * ph;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}" stroke="#e4e4e4"/><text x="{}" y="{y}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            short(v)
        );
    }
    for (c, category) in categories.iter().enumerate() {
        let gx = LEFT + c as f64 * group_w + group_w * 0.1;
        for (s, (name, values)) in series.iter().enumerate() {
            let v = values
                .get(c)
                .copied()
                .filter(|v| v.is_finite())
                .unwrap_or(0.0);
            let h = v / max * ph;
            let _ = write!(
                out,
                r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                gx + s as f64 * bar_w,
                TOP + ph - h,
                (bar_w - 2.0).max(1.0),
                h,
                PALETTE[s % PALETTE.len()],
                esc(name),
                short(v)
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + (c as f64 + 0.5) * group_w,
            TOP + ph + 14.0,
            esc(category)
        );
    }
    let items = line_keys(
        series
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.as_str(), PALETTE[i % PALETTE.len()], false)),
    );
    legend(&mut out, &STANDARD, &items);
    out.push_str("</svg>");
    out
}

fn short(v: f64) -> String {
    if (v.fract() == 0.0 || v.abs() >= 100.0) && v.abs() < 1e12 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Confusion matrix: rows true classes, columns predicted; cell shade by the
/// row's share, the count written in the cell.
pub fn heatmap(title: &str, labels: &[String], matrix: &[Vec<u64>]) -> String {
    let n = labels.len().max(1) as f64;
    let cell = (320.0 / n).clamp(24.0, 90.0);
    let left = 110.0;
    let top = 60.0;
    let width = left + cell * n + 20.0;
    let height = top + cell * n + 40.0;
    let mut out = String::new();
    open(&mut out, title, width, height);
    let _ = write!(
        out,
        r#"<text x="{}" y="40" text-anchor="middle">predicted</text><text transform="translate(14,{}) rotate(-90)" text-anchor="middle">true</text>"#,
        left + cell * n / 2.0,
        top + cell * n / 2.0
    );
    for (i, row) in matrix.iter().enumerate() {
        let total: u64 = row.iter().sum::<u64>().max(1);
        for (j, &count) in row.iter().enumerate() {
            let share = count as f64 / total as f64;
            // White to blue by share; dark cells get white text.
            let shade = |c: f64| (255.0 - share * (255.0 - c)).round() as u8;
            let fill = format!("rgb({},{},{})", shade(59.0), shade(110.0), shade(165.0));
            let ink = if share > 0.55 { "white" } else { "#222" };
            let (x, y) = (left + j as f64 * cell, top + i as f64 * cell);
            let _ = write!(
                out,
                r##"<rect class="cell" x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#fff"><title>true {} / predicted {}: {count}</title></rect><text x="{}" y="{}" text-anchor="middle" fill="{ink}">{count}</text>"##,
                esc(labels.get(i).map_or("", |s| s)),
                esc(labels.get(j).map_or("", |s| s)),
                x + cell / 2.0,
                y + cell / 2.0 + 4.0
            );
        }
    }
    for (k, label) in labels.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{l}</text><text x="{}" y="{}" text-anchor="middle">{l}</text>"#,
            left - 4.0,
            top + (k as f64 + 0.5) * cell + 4.0,
            left + (k as f64 + 0.5) * cell,
            top + cell * n + 14.0,
            l = esc(label)
        );
    }
    out.push_str("</svg>");
    out
}

/// One configuration of an interval plot.
pub struct IntervalRow {
    /// Shown left of the row (escaped here; long labels are shortened, the
    /// full one is the row's tooltip).
    pub label: String,
    /// The ranked metric's mean over the row's seeds.
    pub mean: f64,
    /// The interval's (low, high), in the metric's units; `None`: a dot only.
    pub interval: Option<(f64, f64)>,
    /// The row's verdict against the best row.
    pub mark: Mark,
    /// Tooltip text after the label (the numbers and the verdict).
    pub note: String,
}

/// Colour, whisker dash and filled dot of each verdict, and its legend text:
/// never told apart by colour alone.
fn mark_style(mark: Mark) -> (&'static str, Option<&'static str>, bool, &'static str) {
    match mark {
        Mark::Best => (PALETTE[0], None, true, "best (shaded: its CI)"),
        Mark::Indistinguishable => (PALETTE[2], None, true, "≈ best"),
        Mark::Different => (PALETTE[3], Some("5 3"), false, "worse"),
        Mark::NotTested => (PALETTE[7], Some("1 3"), false, "n/a (not tested)"),
    }
}

/// CSS class of a verdict's row group.
fn mark_class(mark: Mark) -> &'static str {
    match mark {
        Mark::Best => "best",
        Mark::Indistinguishable => "indistinguishable",
        Mark::Different => "different",
        Mark::NotTested => "too-few",
    }
}

/// Label characters shown before a long label is cut.
const LABEL_CHARS: usize = 34;

/// A horizontal interval plot, one row per configuration in the given order
/// (best first): a dot at the mean (`circle.mean`), a whisker over the interval
/// (`line.whisker`, with end caps), the first row's interval shaded across the
/// plot and its mean as a dashed vertical line; a legend of the verdicts.
/// Rows with a non-finite mean are left out.
pub fn interval_chart(title: &str, x_label: &str, rows: &[IntervalRow]) -> String {
    let rows: Vec<&IntervalRow> = rows.iter().filter(|r| r.mean.is_finite()).collect();
    let labels: Vec<String> = rows.iter().map(|r| short_label(&r.label)).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let left = (longest as f64 * 6.2 + 16.0).clamp(60.0, 240.0);
    let row_h = 26.0;
    let frame = Frame {
        width: left + 320.0 + 170.0,
        height: TOP + 8.0 + row_h * rows.len().max(1) as f64 + BOTTOM,
        left,
        right: 170.0,
        top: TOP + 8.0,
        bottom: BOTTOM,
    };
    let (lo, hi) = rows
        .iter()
        .flat_map(|r| {
            let (lo, hi) = r.interval.unwrap_or((r.mean, r.mean));
            [lo, hi, r.mean]
        })
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (x0, x1) = if lo > hi { (0.0, 1.0) } else { bounds(lo, hi) };
    let sx = |x: f64| frame.left + (x.clamp(x0, x1) - x0) / (x1 - x0) * frame.pw();

    let mut out = String::new();
    open(&mut out, title, frame.width, frame.height);
    let bottom = frame.top + frame.ph();
    for i in 0..=4 {
        let v = x0 + (x1 - x0) * i as f64 / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{t}" y2="{bottom}" stroke="#e4e4e4"/><text x="{x:.1}" y="{}" text-anchor="middle">{v:.3}</text>"##,
            bottom + 14.0,
            x = sx(v),
            t = frame.top,
        );
    }
    if let Some(best) = rows.first() {
        best_reference(&mut out, &frame, best, &sx);
    }
    axes(&mut out, &frame, x_label, "");
    for (i, (r, label)) in rows.iter().zip(&labels).enumerate() {
        let y = frame.top + (i as f64 + 0.5) * row_h;
        interval_row(&mut out, r, label, y, left, &sx);
    }
    let mut marks = vec![Mark::Best];
    for r in &rows {
        if !marks.contains(&r.mark) {
            marks.push(r.mark);
        }
    }
    let keys: Vec<Key> = marks
        .into_iter()
        .map(|m| {
            let (color, dash, filled, name) = mark_style(m);
            Key {
                name,
                color,
                dash,
                dot: Some(filled),
            }
        })
        .collect();
    legend(&mut out, &frame, &keys);
    out.push_str("</svg>");
    out
}

/// `label`, cut to `LABEL_CHARS` characters with an ellipsis.
fn short_label(label: &str) -> String {
    cut(label, LABEL_CHARS)
}

/// The best row's interval shaded over the plot's height (`rect.best-band`)
/// and its mean as a dashed vertical line (`line.best-mean`).
fn best_reference(out: &mut String, frame: &Frame, best: &IntervalRow, sx: &dyn Fn(f64) -> f64) {
    let color = PALETTE[0];
    let (top, bottom) = (frame.top, frame.top + frame.ph());
    if let Some((lo, hi)) = best
        .interval
        .filter(|(lo, hi)| lo.is_finite() && hi.is_finite())
    {
        let _ = write!(
            out,
            r#"<rect class="best-band" x="{:.1}" y="{top}" width="{:.1}" height="{}" fill="{color}" fill-opacity="0.12"/>"#,
            sx(lo),
            (sx(hi) - sx(lo)).max(1.0),
            frame.ph()
        );
    }
    let _ = write!(
        out,
        r#"<line class="best-mean" x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{bottom}" stroke="{color}" stroke-dasharray="2 3"/>"#,
        x = sx(best.mean)
    );
}

/// One row of the interval plot at height `y`: its label, whisker and dot.
fn interval_row(
    out: &mut String,
    r: &IntervalRow,
    label: &str,
    y: f64,
    left: f64,
    sx: &dyn Fn(f64) -> f64,
) {
    let (color, dash, filled, _) = mark_style(r.mark);
    let _ = write!(
        out,
        r#"<g class="row {}"><title>{}: {}</title><text class="label" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
        mark_class(r.mark),
        esc(&r.label),
        esc(&r.note),
        left - 6.0,
        y + 4.0,
        esc(label)
    );
    if let Some((lo, hi)) = r
        .interval
        .filter(|(lo, hi)| lo.is_finite() && hi.is_finite())
    {
        let dash = dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<line class="whisker" x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"{dash}/>"#,
            sx(lo),
            sx(hi)
        );
        for end in [lo, hi] {
            let _ = write!(
                out,
                r#"<line class="cap" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"/>"#,
                y - 5.0,
                y + 5.0,
                x = sx(end)
            );
        }
    }
    dot(out, "mean", sx(r.mean), y, color, filled);
    out.push_str("</g>");
}

/// A linear map from the data interval `d0..d1` to the pixels `p0..p1`
/// (`d0 != d1`).
#[derive(Clone, Copy)]
struct Linear {
    d0: f64,
    d1: f64,
    p0: f64,
    p1: f64,
}

impl Linear {
    fn at(&self, v: f64) -> f64 {
        self.p0 + (v - self.d0) / (self.d1 - self.d0) * (self.p1 - self.p0)
    }
}

/// The least and greatest finite value, `None` when there is none.
fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |r, v| match r {
        None => Some((v, v)),
        Some((lo, hi)) => Some((v.min(lo), v.max(hi))),
    })
}

/// The frame's y scale over the finite `values` (padded by [`bounds`]).
fn y_scale(frame: &Frame, values: impl Iterator<Item = f64>) -> Linear {
    let (d0, d1) = finite_range(values).map_or((0.0, 1.0), |(lo, hi)| bounds(lo, hi));
    Linear {
        d0,
        d1,
        p0: frame.top + frame.ph(),
        p1: frame.top,
    }
}

/// The frame's x scale from `d0` to `d1`.
fn x_scale(frame: &Frame, (d0, d1): (f64, f64)) -> Linear {
    Linear {
        d0,
        d1,
        p0: frame.left,
        p1: frame.width - frame.right,
    }
}

/// A tick label: up to three decimals without trailing zeros, or `1.5e-4`
/// style for very small and very large magnitudes.
fn num(v: f64) -> String {
    short_num(v)
}

/// A value as a chart labels it: up to three decimals without trailing
/// zeros, or `1.5e-4` style for very small and very large magnitudes.
pub fn short_num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() < 1e-3 || v.abs() >= 1e5 {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Five horizontal grid lines over the plot with their values at the left.
fn y_grid(out: &mut String, frame: &Frame, ys: &Linear) {
    for i in 0..=4 {
        let v = ys.d0 + (ys.d1 - ys.d0) * i as f64 / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            frame.left,
            frame.width - frame.right,
            frame.left - 4.0,
            ys.at(v) + 4.0,
            num(v),
            y = ys.at(v),
        );
    }
}

/// A label under the plot at pixel `x` (escaped).
fn x_tick(out: &mut String, frame: &Frame, x: f64, label: &str) {
    let _ = write!(
        out,
        r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
        frame.top + frame.ph() + 14.0,
        esc(label)
    );
}

/// A dot of a search chart (`circle.trial`) with its tooltip.
fn trial_dot(out: &mut String, x: f64, y: f64, tip: &str) {
    let _ = write!(
        out,
        r#"<circle class="trial" cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{c}" fill-opacity="0.7" stroke="{c}"><title>{}</title></circle>"#,
        esc(tip),
        c = PALETTE[0]
    );
}

/// The best value after each point, in the order given.
fn best_so_far(points: &[(i64, f64)], maximize: bool) -> Vec<(i64, f64)> {
    let mut best: Option<f64> = None;
    points
        .iter()
        .map(|&(n, y)| {
            let b = match best {
                Some(b) if (maximize && b >= y) || (!maximize && b <= y) => b,
                _ => y,
            };
            best = Some(b);
            (n, b)
        })
        .collect()
}

/// Optimisation history: one dot per finished trial (x = trial number in the
/// order given, y = objective), and the best-so-far step line; `direction`
/// decides "best".
///
/// `maximize` is the direction: the best so far is the running maximum, else
/// the running minimum. Points with a non-finite objective are left out. Marks:
/// `circle.trial` per point (tooltip: trial and value) and one
/// `path.best-so-far` when there is a point.
pub fn optimization_history(
    title: &str,
    y_label: &str,
    points: &[(i64, f64)],
    maximize: bool,
) -> String {
    let points: Vec<(i64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    let frame = &STANDARD;
    let xr = finite_range(points.iter().map(|p| p.0 as f64)).map_or((0.0, 1.0), |(lo, hi)| {
        if lo == hi {
            (lo - 1.0, hi + 1.0)
        } else {
            (lo, hi)
        }
    });
    let (xs, ys) = (
        x_scale(frame, xr),
        y_scale(frame, points.iter().map(|p| p.1)),
    );
    let mut out = String::new();
    open(&mut out, title, frame.width, frame.height);
    y_grid(&mut out, frame, &ys);
    let (first, last) = (xr.0.ceil() as i64, xr.1.floor() as i64);
    let step = ((last - first) / 8).max(1) as usize;
    for n in (first..=last).step_by(step) {
        x_tick(&mut out, frame, xs.at(n as f64), &n.to_string());
    }
    axes(&mut out, frame, "trial", y_label);
    let best = best_so_far(&points, maximize);
    if let Some(&(n, b)) = best.first() {
        let mut d = format!("M{:.1},{:.1}", xs.at(n as f64), ys.at(b));
        for &(n, b) in &best[1..] {
            let _ = write!(d, " H{:.1} V{:.1}", xs.at(n as f64), ys.at(b));
        }
        let _ = write!(
            out,
            r#"<path class="best-so-far" d="{d}" fill="none" stroke="{}" stroke-width="2"/>"#,
            PALETTE[1]
        );
    }
    for &(n, y) in &points {
        trial_dot(
            &mut out,
            xs.at(n as f64),
            ys.at(y),
            &format!("trial {n}: {}", num(y)),
        );
    }
    let keys = [
        Key {
            name: "trial",
            color: PALETTE[0],
            dash: None,
            dot: Some(true),
        },
        Key {
            name: "best so far",
            color: PALETTE[1],
            dash: None,
            dot: None,
        },
    ];
    legend(&mut out, frame, &keys);
    out.push_str("</svg>");
    out
}

/// The x values of a slice plot: one per trial, in the order of the objectives.
pub enum SliceX {
    /// A numeric parameter's values, on a log axis when `log_x` (values that
    /// are not positive are then left out).
    Numeric {
        /// The parameter's value per trial.
        values: Vec<f64>,
        /// Whether the x axis is logarithmic (decades).
        log_x: bool,
    },
    /// A categorical parameter: the categories and each trial's index into them.
    Categorical {
        /// The categories, one evenly spaced column each, in this order.
        labels: Vec<String>,
        /// Each trial's category (an index into `labels`; out of range: left out).
        index: Vec<usize>,
    },
}

/// Slice plot of one searched parameter: objective (y) against the parameter's
/// value (x); numeric values on a linear or log axis (`log_x`), categorical
/// values as evenly spaced labelled columns.
///
/// `y[i]` is the objective of the trial whose value is `x`'s i-th; pairs with
/// a NaN (or a value the axis cannot place) are left out. Marks: one
/// `circle.trial` per point (tooltip: `param = value: objective`). A log axis
/// spans whole decades, from the decade at or below the least value to the one
/// at or above the greatest.
pub fn slice_plot(title: &str, param: &str, y_label: &str, x: &SliceX, y: &[f64]) -> String {
    let frame = &STANDARD;
    let mut ticks = String::new();
    let points = slice_points(&mut ticks, frame, x, y);
    let ys = y_scale(frame, points.iter().map(|p| p.1));
    let mut out = String::new();
    open(&mut out, title, frame.width, frame.height);
    y_grid(&mut out, frame, &ys);
    out.push_str(&ticks);
    axes(&mut out, frame, param, y_label);
    for (px, v, label) in &points {
        trial_dot(
            &mut out,
            *px,
            ys.at(*v),
            &format!("{param} = {label}: {}", num(*v)),
        );
    }
    out.push_str("</svg>");
    out
}

/// The points of a slice plot as (x pixel, objective, x value's text), with
/// the x axis's tick labels written to `ticks`.
fn slice_points(
    ticks: &mut String,
    frame: &Frame,
    x: &SliceX,
    y: &[f64],
) -> Vec<(f64, f64, String)> {
    match x {
        SliceX::Numeric { values, log_x } => {
            let pairs: Vec<(f64, f64)> = values
                .iter()
                .zip(y)
                .filter(|(v, o)| v.is_finite() && o.is_finite() && (!log_x || **v > 0.0))
                .map(|(&v, &o)| (v, o))
                .collect();
            let xs = numeric_axis(ticks, frame, pairs.iter().map(|p| p.0), *log_x);
            let place = |v: f64| xs.at(if *log_x { v.log10() } else { v });
            pairs.iter().map(|&(v, o)| (place(v), o, num(v))).collect()
        }
        SliceX::Categorical { labels, index } => {
            let col = frame.pw() / labels.len().max(1) as f64;
            let at = |i: usize| frame.left + (i as f64 + 0.5) * col;
            let fits = ((col / 6.5) as usize).max(3);
            for (i, label) in labels.iter().enumerate() {
                x_tick(ticks, frame, at(i), &cut(label, fits));
            }
            index
                .iter()
                .zip(y)
                .filter(|(i, o)| **i < labels.len() && o.is_finite())
                .map(|(&i, &o)| (at(i), o, labels[i].clone()))
                .collect()
        }
    }
}

/// The x scale of a numeric slice plot over `values` (finite; positive when
/// `log_x`, then in log10 units over whole decades), its ticks written to `ticks`.
fn numeric_axis(
    ticks: &mut String,
    frame: &Frame,
    values: impl Iterator<Item = f64>,
    log_x: bool,
) -> Linear {
    if !log_x {
        let range = finite_range(values).map_or((0.0, 1.0), |(lo, hi)| bounds(lo, hi));
        let xs = x_scale(frame, range);
        for i in 0..=4 {
            let v = range.0 + (range.1 - range.0) * i as f64 / 4.0;
            x_tick(ticks, frame, xs.at(v), &num(v));
        }
        return xs;
    }
    let (lo, hi) = finite_range(values.map(f64::log10))
        .map_or((-1.0, 0.0), |(lo, hi)| (lo.floor(), hi.ceil()));
    let (lo, hi) = if lo == hi {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    };
    let xs = x_scale(frame, (lo, hi));
    let (first, last) = (lo as i32, hi as i32);
    let step = ((last - first) / 8).max(1) as usize;
    for k in (first..=last).step_by(step) {
        x_tick(ticks, frame, xs.at(k as f64), &decade(k));
    }
    xs
}

/// The label of 10^k: `1`, `10`, `100`, `1000`, else `1e-4` style.
fn decade(k: i32) -> String {
    match k {
        0..=3 => 10_i64.pow(k as u32).to_string(),
        _ => format!("1e{k}"),
    }
}

/// `label` cut to `max` characters with an ellipsis.
fn cut(label: &str, max: usize) -> String {
    if label.chars().count() > max {
        label
            .chars()
            .take(max.saturating_sub(1))
            .collect::<String>()
            + "…"
    } else {
        label.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, mean: f64, interval: Option<(f64, f64)>, mark: Mark) -> IntervalRow {
        IntervalRow {
            label: label.into(),
            mean,
            interval,
            mark,
            note: "p<0.05 & more".into(),
        }
    }

    #[test]
    fn interval_chart_draws_a_whisker_per_interval_and_a_legend_per_verdict() {
        let long = "model.cell = <gru>, train.lr = 0.001, model.hidden = 128";
        let svg = interval_chart(
            "f1 & co",
            "macro_f1",
            &[
                row("a", 0.8, Some((0.75, 0.85)), Mark::Best),
                row(long, 0.7, Some((0.6, 0.8)), Mark::Different),
                row("c", 0.6, None, Mark::NotTested),
                row("d", f64::NAN, Some((0.1, 0.2)), Mark::Indistinguishable),
            ],
        );
        assert!(svg.starts_with("<svg class=\"chart\"") && svg.ends_with("</svg>"));
        // The NaN row is left out; the row without an interval has a dot only.
        assert_eq!(svg.matches("<line class=\"whisker\"").count(), 2);
        assert_eq!(svg.matches("<line class=\"cap\"").count(), 4);
        assert_eq!(svg.matches("<circle class=\"mean\"").count(), 3);
        assert_eq!(svg.matches("<rect class=\"best-band\"").count(), 1);
        assert!(!svg.contains(">d</text>"));
        // Escaped everywhere; a long label is cut, its tooltip is whole.
        assert!(svg.contains("<title>f1 &amp; co</title>"));
        assert!(svg.contains("model.cell = &lt;gru&gt;, train.lr = 0.001, model.hidden = 128: p&lt;0.05 &amp; more</title>"));
        assert!(
            svg.contains(">model.cell = &lt;gru&gt;, train.lr = 0.…</text>"),
            "{svg}"
        );
        assert!(!svg.contains("<gru>"));
        // A legend entry per verdict shown, none for verdicts absent.
        for key in [">best (shaded: its CI)<", ">worse<", ">n/a (not tested)<"] {
            assert!(svg.contains(key), "{key}");
        }
        assert!(!svg.contains(">≈ best<"));
        // The worse row's whisker is dashed and its dot open.
        assert!(svg.contains(r##"stroke="#b84a4a" stroke-width="2" stroke-dasharray="5 3"/>"##));
        assert!(svg.contains(r##"fill="white" stroke="#b84a4a""##));
    }

    #[test]
    fn interval_chart_of_no_rows_is_an_empty_frame() {
        let svg = interval_chart("t", "x", &[]);
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("class=\"mean\"").count(), 0);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    /// The `cx` of every `circle.trial`, in drawing order.
    fn trial_xs(svg: &str) -> Vec<f64> {
        svg.split(r#"<circle class="trial" cx=""#)
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
            .collect()
    }

    /// The best-so-far path's starting y and the y of each vertical move after it.
    fn best_path(svg: &str) -> Option<(String, Vec<String>)> {
        let d = svg.split(r#"<path class="best-so-far" d=""#).nth(1)?;
        let d = d.split('"').next()?;
        let start_y = d.split(',').nth(1)?.split(' ').next()?.to_string();
        let vs = d
            .split(" V")
            .skip(1)
            .map(|v| v.split(' ').next().unwrap_or("").to_string())
            .collect();
        Some((start_y, vs))
    }

    #[test]
    fn optimization_history_draws_a_dot_per_trial_and_the_best_so_far() {
        let points = [(1, 0.5), (2, 0.7), (3, 0.6), (4, f64::NAN), (5, 0.8)];
        let svg = optimization_history("search <1> & co", "valid <f1>", &points, true);
        assert!(svg.starts_with("<svg class=\"chart\"") && svg.ends_with("</svg>"));
        // The NaN trial is left out; one step line through the other four.
        assert_eq!(svg.matches("<circle class=\"trial\"").count(), 4);
        assert_eq!(svg.matches("<path class=\"best-so-far\"").count(), 1);
        let (start, vs) = best_path(&svg).unwrap();
        // Maximizing, the best so far is 0.5 0.7 0.7 0.8: three steps, the
        // second flat (same y as the first), the third higher (smaller y).
        assert_eq!(vs.len(), 3);
        assert_eq!(vs[0], vs[1]);
        assert_ne!(start, vs[0]);
        assert!(vs[2].parse::<f64>().unwrap() < vs[1].parse::<f64>().unwrap());
        // Minimizing, the first trial (0.5) stays the best: a flat line.
        let svg_min = optimization_history("t", "loss", &points, false);
        let (start, vs) = best_path(&svg_min).unwrap();
        assert!(vs.iter().all(|v| *v == start), "{start} {vs:?}");
        // Trials left to right in trial order.
        let xs = trial_xs(&svg);
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        // Escaped everywhere.
        assert!(svg.contains("<title>search &lt;1&gt; &amp; co</title>"));
        assert!(svg.contains(">valid &lt;f1&gt;</text>"));
        assert!(!svg.contains("<f1>") && !svg.contains("NaN"));
        assert!(svg.contains("<title>trial 5: 0.8</title>"));
    }

    #[test]
    fn optimization_history_of_zero_or_one_point_draws_what_there_is() {
        for points in [vec![], vec![(7, f64::NAN)]] {
            let svg = optimization_history("t", "y", &points, true);
            assert!(svg.ends_with("</svg>"));
            assert_eq!(svg.matches("class=\"trial\"").count(), 0);
            assert_eq!(svg.matches("class=\"best-so-far\"").count(), 0);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        let svg = optimization_history("t", "y", &[(7, 0.5)], false);
        assert_eq!(svg.matches("class=\"trial\"").count(), 1);
        let (_, vs) = best_path(&svg).unwrap();
        assert!(vs.is_empty());
        // A lone trial sits mid-plot: (56 + 390) / 2 = 223.
        assert_eq!(trial_xs(&svg), [223.0]);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn slice_plot_on_a_log_axis_puts_the_decades_at_the_ends() {
        let x = SliceX::Numeric {
            values: vec![1e-4, 1e-3, 1e-2, f64::NAN, -1.0, 5e-3],
            log_x: true,
        };
        let y = [0.5, 0.6, 0.7, 0.8, 0.9, f64::NAN];
        let svg = slice_plot("lr <slice>", "train.lr", "valid f1", &x, &y);
        // NaN x, a negative x on a log axis and a NaN objective are left out.
        assert_eq!(svg.matches("<circle class=\"trial\"").count(), 3);
        // 1e-4 at the plot's left edge (56), 1e-2 at its right edge (520 - 130),
        // 1e-3 half way between: (56 + 390) / 2.
        assert_eq!(trial_xs(&svg), [56.0, 223.0, 390.0]);
        for tick in [">1e-4</text>", ">1e-3</text>", ">1e-2</text>"] {
            assert!(svg.contains(tick), "{tick}");
        }
        assert!(svg.contains("<title>lr &lt;slice&gt;</title>"));
        assert!(svg.contains("<title>train.lr = 1.0e-4: 0.5</title>"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn slice_plot_on_a_linear_axis_spaces_values_in_proportion() {
        let x = SliceX::Numeric {
            values: vec![0.0, 0.15, 0.6],
            log_x: false,
        };
        let svg = slice_plot("t", "model.dropout", "f1", &x, &[0.7, 0.72, 0.6]);
        let xs = trial_xs(&svg);
        assert_eq!(xs.len(), 3);
        // 0.15 is a quarter of the way from 0.0 to 0.6.
        assert!(
            (xs[1] - (xs[0] + (xs[2] - xs[0]) / 4.0)).abs() < 0.11,
            "{xs:?}"
        );
        assert!(svg.contains(">model.dropout</text>"));
    }

    #[test]
    fn slice_plot_of_a_category_draws_a_labelled_column_per_value() {
        let x = SliceX::Categorical {
            labels: vec!["lstm".into(), "<gru>".into()],
            index: vec![0, 1, 1, 5],
        };
        let svg = slice_plot("t", "model.cell", "f1", &x, &[0.5, 0.6, f64::NAN, 0.7]);
        // The NaN objective and the index past the labels are left out.
        assert_eq!(svg.matches("<circle class=\"trial\"").count(), 2);
        // Columns at the centres of two halves of the 334-pixel plot:
        // 56 + 83.5 and 56 + 250.5.
        assert_eq!(trial_xs(&svg), [139.5, 306.5]);
        assert!(svg.contains(">lstm</text>") && svg.contains(">&lt;gru&gt;</text>"));
        assert!(svg.contains("<title>model.cell = &lt;gru&gt;: 0.6</title>"));
        assert!(!svg.contains("<gru>"));
    }

    #[test]
    fn slice_plot_of_zero_or_one_point_does_not_break() {
        let empty = [
            SliceX::Numeric {
                values: vec![],
                log_x: true,
            },
            SliceX::Numeric {
                values: vec![f64::NAN],
                log_x: false,
            },
            SliceX::Categorical {
                labels: vec![],
                index: vec![0],
            },
        ];
        for x in &empty {
            let svg = slice_plot("t", "p", "y", x, &[0.5]);
            assert!(svg.ends_with("</svg>"));
            assert_eq!(svg.matches("class=\"trial\"").count(), 0);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        let one = SliceX::Numeric {
            values: vec![1e-3],
            log_x: true,
        };
        let svg = slice_plot("t", "p", "y", &one, &[0.5]);
        // One decade either side: 1e-4 .. 1e-2, the point in the middle.
        assert_eq!(trial_xs(&svg), [223.0]);
        assert!(svg.contains(">1e-4</text>") && svg.contains(">1e-2</text>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }
}
