//! Parallel coordinates (Optuna's `plot_parallel_coordinate`): one vertical
//! axis per parameter and the metric last, one polyline per trial coloured by
//! its metric, so the settings of the best trials line up at a glance.

use super::{esc, num, open, Linear};
use std::fmt::Write;

/// One trial's value on one axis.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisValue {
    /// A number (a numeric axis when every present value is one).
    Number(f64),
    /// Any other value (a categorical axis).
    Text(String),
    /// The trial has no value for the parameter (drawn at the axis's foot).
    Missing,
}

/// One line: a trial's values on the parameter axes (in `params` order), its
/// metric and its tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// One value per parameter axis.
    pub values: Vec<AxisValue>,
    /// The metric: the last axis and the line's colour.
    pub metric: f64,
    /// Tooltip (e.g. `trial 12`).
    pub label: String,
}

const AXIS_GAP: f64 = 120.0;
/// The least distance from the first axis to the last.
const MIN_SPAN: f64 = 360.0;
const MARGIN: f64 = 60.0;
const TOP: f64 = 44.0;
const PLOT_H: f64 = 230.0;

/// How an axis maps its values to a 0..1 height.
enum Scale {
    /// log10 when the range spans two decades of positive values.
    Numeric(Linear, bool),
    /// Levels in sorted order, evenly spaced.
    Levels(Vec<String>),
}

impl Scale {
    fn of(values: impl Iterator<Item = AxisValue>) -> Scale {
        // A non-finite number is drawn as missing, not as a category.
        let values: Vec<AxisValue> = values
            .filter(|v| match v {
                AxisValue::Missing => false,
                AxisValue::Number(x) => x.is_finite(),
                AxisValue::Text(_) => true,
            })
            .collect();
        let numbers: Option<Vec<f64>> = values
            .iter()
            .map(|v| match v {
                AxisValue::Number(x) if x.is_finite() => Some(*x),
                _ => None,
            })
            .collect();
        match numbers {
            Some(xs) if !xs.is_empty() => {
                let lo = xs.iter().copied().fold(f64::MAX, f64::min);
                let hi = xs.iter().copied().fold(f64::MIN, f64::max);
                let log = lo > 0.0 && hi / lo >= 100.0;
                let (lo, hi) = if log {
                    (lo.log10(), hi.log10())
                } else {
                    (lo, hi)
                };
                let (lo, hi) = if hi - lo < 1e-12 {
                    (lo - 0.5, hi + 0.5)
                } else {
                    (lo, hi)
                };
                Scale::Numeric(
                    Linear {
                        d0: lo,
                        d1: hi,
                        p0: 0.0,
                        p1: 1.0,
                    },
                    log,
                )
            }
            _ => {
                let mut levels: Vec<String> = values.iter().map(text).collect();
                levels.sort();
                levels.dedup();
                Scale::Levels(levels)
            }
        }
    }

    /// Height in 0..1 (0 at the foot); `None` for a missing value.
    fn at(&self, v: &AxisValue) -> Option<f64> {
        match (self, v) {
            (_, AxisValue::Missing) => None,
            (Scale::Numeric(s, log), AxisValue::Number(x)) => {
                Some(s.at(if *log { x.log10() } else { *x }))
            }
            (Scale::Numeric(..), AxisValue::Text(_)) => None,
            (Scale::Levels(levels), v) => {
                let i = levels.iter().position(|l| *l == text(v))?;
                Some(if levels.len() == 1 {
                    0.5
                } else {
                    i as f64 / (levels.len() - 1) as f64
                })
            }
        }
    }

    /// (height, label) of the axis's tick marks.
    fn ticks(&self) -> Vec<(f64, String)> {
        match self {
            Scale::Numeric(s, log) => [s.d0, s.d1]
                .into_iter()
                .map(|d| (s.at(d), num(if *log { 10f64.powf(d) } else { d })))
                .collect(),
            Scale::Levels(levels) => {
                let step = levels.len().div_ceil(8).max(1);
                levels
                    .iter()
                    .enumerate()
                    .step_by(step)
                    .map(|(i, l)| {
                        let h = if levels.len() == 1 {
                            0.5
                        } else {
                            i as f64 / (levels.len() - 1) as f64
                        };
                        (h, super::cut(l, 14))
                    })
                    .collect()
            }
        }
    }
}

fn text(v: &AxisValue) -> String {
    match v {
        AxisValue::Number(x) => num(*x),
        AxisValue::Text(s) => s.clone(),
        AxisValue::Missing => String::new(),
    }
}

/// Light grey-blue for the worst metric to dark blue for the best.
fn shade(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(200.0, 20.0),
        mix(212.0, 70.0),
        mix(230.0, 150.0)
    )
}

/// The chart: `params` axes then the metric's (`metric`, better up when
/// `maximize`, else inverted so better is still up), lines drawn worst first so
/// the best lie on top (`polyline.trial`, one per line).
pub fn parallel_coordinates(
    title: &str,
    params: &[String],
    metric: &str,
    maximize: bool,
    lines: &[Line],
) -> String {
    let axes = params.len() + 1;
    // Few axes spread over a readable width.
    let gap = AXIS_GAP.max(MIN_SPAN / params.len().max(1) as f64);
    let width = 2.0 * MARGIN + gap * params.len() as f64;
    let height = TOP + PLOT_H + 50.0;
    let scales: Vec<Scale> = (0..params.len())
        .map(|i| {
            Scale::of(
                lines
                    .iter()
                    .map(|l| l.values.get(i).cloned().unwrap_or(AxisValue::Missing)),
            )
        })
        .chain(std::iter::once(Scale::of(
            lines.iter().map(|l| AxisValue::Number(l.metric)),
        )))
        .collect();
    let x = |i: usize| MARGIN + gap * i as f64;
    let y = |h: f64| TOP + PLOT_H * (1.0 - h);
    let mut out = String::new();
    open(&mut out, title, width, height);
    let goodness = |m: f64| {
        let h = scales[axes - 1].at(&AxisValue::Number(m)).unwrap_or(0.0);
        if maximize {
            h
        } else {
            1.0 - h
        }
    };
    let mut order: Vec<&Line> = lines.iter().filter(|l| l.metric.is_finite()).collect();
    order.sort_by(|a, b| goodness(a.metric).total_cmp(&goodness(b.metric)));
    for line in order {
        let good = goodness(line.metric);
        let pts: Vec<String> = line
            .values
            .iter()
            .cloned()
            .chain(std::iter::once(AxisValue::Number(line.metric)))
            .enumerate()
            .map(|(i, v)| {
                let h = scales[i].at(&v).unwrap_or(0.0);
                let h = if i == axes - 1 && !maximize {
                    1.0 - h
                } else {
                    h
                };
                format!("{:.1},{:.1}", x(i), y(h))
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="trial" fill="none" stroke="{}" stroke-opacity="0.75" stroke-width="1.5" points="{}"><title>{}: {metric} {}</title></polyline>"#,
            shade(good),
            pts.join(" "),
            esc(&line.label),
            num(line.metric)
        );
    }
    for (i, scale) in scales.iter().enumerate() {
        let name = params.get(i).map_or(metric, String::as_str);
        let _ = write!(
            out,
            r##"<line class="axis" x1="{x}" x2="{x}" y1="{}" y2="{}" stroke="#444"/><text x="{x}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"##,
            y(0.0),
            y(1.0),
            y(0.0) + 30.0,
            esc(&super::cut(name, 22)),
            x = x(i),
        );
        for (h, label) in scale.ticks() {
            let h = if i == axes - 1 && !maximize {
                1.0 - h
            } else {
                h
            };
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">{}</text>"#,
                x(i) - 4.0,
                y(h) + 3.0,
                esc(&label)
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(lr: f64, cell: &str, metric: f64) -> Line {
        Line {
            values: vec![AxisValue::Number(lr), AxisValue::Text(cell.into())],
            metric,
            label: format!("{cell} {lr}"),
        }
    }

    #[test]
    fn one_polyline_per_finite_trial_with_a_point_per_axis() {
        let lines = [
            line(0.001, "lstm", 0.8),
            line(0.1, "gru", 0.7),
            line(0.01, "gru", f64::NAN),
        ];
        let svg =
            parallel_coordinates("t", &["lr".into(), "cell".into()], "macro_f1", true, &lines);
        assert_eq!(svg.matches("<polyline class=\"trial\"").count(), 2);
        assert_eq!(svg.matches("class=\"axis\"").count(), 3);
        // Two decades: a log axis, labelled by its ends.
        assert!(svg.contains(">0.001<") && svg.contains(">0.1<"), "{svg}");
        // The best line is drawn last (on top) and darkest.
        let last = svg.rfind("<polyline").unwrap();
        assert!(svg[last..].contains("lstm 0.001"));
        assert!(svg[last..].contains(&shade(1.0)));
    }

    #[test]
    fn a_lower_is_better_metric_still_puts_the_best_on_top() {
        let lines = [line(1.0, "a", 0.2), line(2.0, "b", 0.9)];
        let svg = parallel_coordinates("t", &["x".into(), "c".into()], "loss", false, &lines);
        let last = svg.rfind("<polyline").unwrap();
        // Best (loss 0.2) is drawn last; its metric point is at the top (y = TOP).
        let points = &svg[last..];
        assert!(
            points.contains(&format!(
                "{:.1},{:.1}\"",
                MARGIN + 2.0 * AXIS_GAP.max(MIN_SPAN / 2.0),
                TOP
            )),
            "{points}"
        );
    }
}
