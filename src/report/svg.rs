//! Hand-written SVG charts (line, grouped bar, heatmap): small, dependency-free
//! and self-contained, so a report opens offline. Every chart is one `<svg
//! class="chart">` element with a title and drawn marks.

use std::fmt::Write;

pub const PALETTE: [&str; 8] = [
    "#3b6ea5", "#d9822b", "#3a9e5c", "#b84a4a", "#7d5ba6", "#8c6d4f", "#c25b9b", "#6b6b6b",
];

const W: f64 = 520.0;
const H: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

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

fn legend(out: &mut String, items: &[(&str, &str, bool)]) {
    for (i, (name, color, dashed)) in items.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 16.0;
        let x = W - RIGHT + 12.0;
        let dash = if *dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            x + 18.0,
            x + 22.0,
            y + 4.0,
            esc(name)
        );
    }
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
    axes(&mut out, x_label, y_label);
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
    let items: Vec<(&str, &str, bool)> = series
        .iter()
        .map(|s| (s.name.as_str(), s.color, s.dashed))
        .collect();
    legend(&mut out, &items);
    out.push_str("</svg>");
    out
}

fn axes(out: &mut String, x_label: &str, y_label: &str) {
    let ph = H - TOP - BOTTOM;
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="#444"/><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#444"/><text x="{cx}" y="{xl}" text-anchor="middle">{x}</text><text transform="translate(14,{cy}) rotate(-90)" text-anchor="middle">{y}</text>"##,
        b = TOP + ph,
        r = W - RIGHT,
        cx = LEFT + (W - LEFT - RIGHT) / 2.0,
        xl = H - 8.0,
        cy = TOP + ph / 2.0,
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
    axes(&mut out, "", y_label);
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
    let items: Vec<(&str, &str, bool)> = series
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), PALETTE[i % PALETTE.len()], false))
        .collect();
    legend(&mut out, &items);
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
