//! Parameter effects: for each value of one parameter, the metric's mean over
//! the trials that had it, with its interval (a marginal mean: the other
//! parameters averaged over however the grid or search sampled them).

use super::{axes, esc, num, open, x_tick, y_grid, y_scale, Frame, PALETTE, STANDARD};
use std::fmt::Write;

/// One value of the parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// The value, as shown under its column.
    pub label: String,
    /// Mean metric over the trials with this value.
    pub mean: f64,
    /// The interval (low, high) of that mean; `None` with one trial.
    pub interval: Option<(f64, f64)>,
    /// Trials with this value.
    pub n: usize,
}

/// One column per value, in the order given: a dot at the mean
/// (`circle.mean`), a whisker over the interval (`line.whisker`), `n` under
/// the value's label.
pub fn effect_chart(title: &str, param: &str, y_label: &str, effects: &[Effect]) -> String {
    let frame: &Frame = &STANDARD;
    let ys = y_scale(
        frame,
        effects
            .iter()
            .flat_map(|e| {
                [
                    Some(e.mean),
                    e.interval.map(|i| i.0),
                    e.interval.map(|i| i.1),
                ]
            })
            .flatten(),
    );
    let col = frame.pw() / effects.len().max(1) as f64;
    let mut out = String::new();
    open(&mut out, title, frame.width, frame.height);
    y_grid(&mut out, frame, &ys);
    axes(&mut out, frame, param, y_label);
    let step = effects.len().div_ceil(10).max(1);
    for (i, e) in effects.iter().enumerate() {
        let x = frame.left + col * (i as f64 + 0.5);
        if i % step == 0 {
            x_tick(&mut out, frame, x, &super::cut(&e.label, 12));
        }
        if !e.mean.is_finite() {
            continue;
        }
        let tip = match e.interval {
            Some((lo, hi)) => format!(
                "{param} = {}: mean {} [{}, {}], n = {}",
                e.label,
                num(e.mean),
                num(lo),
                num(hi),
                e.n
            ),
            None => format!("{param} = {}: {} (n = {})", e.label, num(e.mean), e.n),
        };
        if let Some((lo, hi)) = e.interval {
            let _ = write!(
                out,
                r#"<line class="whisker" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="2"/>"#,
                ys.at(lo),
                ys.at(hi),
                c = PALETTE[0]
            );
        }
        let _ = write!(
            out,
            r#"<circle class="mean" cx="{x:.1}" cy="{:.1}" r="4.5" fill="{c}"><title>{}</title></circle>"#,
            ys.at(e.mean),
            esc(&tip),
            c = PALETTE[0]
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dot_per_value_and_a_whisker_per_interval() {
        let effects = [
            Effect {
                label: "lstm".into(),
                mean: 0.8,
                interval: Some((0.75, 0.85)),
                n: 4,
            },
            Effect {
                label: "gru".into(),
                mean: 0.7,
                interval: None,
                n: 1,
            },
        ];
        let svg = effect_chart("Effect of model.cell", "model.cell", "macro_f1", &effects);
        assert_eq!(svg.matches("class=\"mean\"").count(), 2);
        assert_eq!(svg.matches("class=\"whisker\"").count(), 1);
        assert!(svg.contains("model.cell = lstm: mean 0.8 [0.75, 0.85], n = 4"));
    }
}
