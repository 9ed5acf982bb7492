//! `lab diff` printed: the two sides and their difference, the contingency
//! table, the notes, and the disagreeing rows (texts cut to `TEXT_CHARS` in
//! table and markdown form, whole in CSV and JSON).

use super::Diff;
use crate::report::{render_rows, Format};
use anyhow::Result;

/// Characters of a text shown in a table or markdown row.
const TEXT_CHARS: usize = 100;

/// `diff` in `format`: JSON is the whole [`Diff`]; CSV is one table after each
/// `# title` line (summary, difference, contingency, disagreements, notes).
///
/// # Errors
/// Serialising to JSON failed (it does not, for these types).
pub fn render_diff(diff: &Diff, format: Format) -> Result<String> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(diff)?);
    }
    let text = format != Format::Csv;
    let sides = render_rows(
        &strings(&["side", "name", "trials", &diff.metric]),
        &sides(diff),
        format,
    );
    let tables = [
        ("summary", sides),
        ("difference", difference(diff, format)),
        ("contingency", contingency(diff, format)),
        ("disagreements", disagreements(diff, format)),
    ];
    let mut out = Vec::new();
    for (title, table) in tables {
        match (title, format) {
            (_, Format::Csv) => out.push(format!("# {title}\n{table}")),
            ("disagreements", _) if diff.disagreements.is_empty() => {
                out.push(disagreement_title(diff))
            }
            ("disagreements", _) => out.push(format!("{}\n{table}", disagreement_title(diff))),
            _ => out.push(table),
        }
    }
    if text {
        out.push(diff.notes.join("\n"));
    } else {
        let notes: Vec<Vec<String>> = diff.notes.iter().map(|n| vec![n.clone()]).collect();
        out.push(format!(
            "# notes\n{}",
            render_rows(&strings(&["note"]), &notes, format)
        ));
    }
    let sep = if format == Format::Csv { "\n" } else { "\n\n" };
    Ok(out.join(sep))
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A and B: name, trials, seed-averaged metric (and each seed's).
fn sides(diff: &Diff) -> Vec<Vec<String>> {
    [("A", &diff.a), ("B", &diff.b)]
        .into_iter()
        .map(|(label, s)| {
            let trials: Vec<String> = s.trials.iter().map(i64::to_string).collect();
            let metric = if s.seeds.len() > 1 {
                let each: Vec<String> = s.seeds.iter().map(|v| format!("{v:.4}")).collect();
                format!("{:.4} (mean of {})", s.metric, each.join(", "))
            } else {
                format!("{:.4}", s.metric)
            };
            vec![label.into(), s.name.clone(), trials.join(", "), metric]
        })
        .collect()
}

/// A − B with its interval and p-value (and McNemar's p for single trials).
fn difference(diff: &Diff, format: Format) -> String {
    let ci = format!("{:.0}% CI", diff.level * 100.0);
    let header = strings(&[
        &format!("{} A − B", diff.metric),
        &ci,
        "p (paired bootstrap)",
        "McNemar p (accuracy)",
    ]);
    let (interval, p) = match diff.paired {
        Some(t) => (
            format!("[{:+.4}, {:+.4}]", t.interval.low, t.interval.high),
            p_text(t.p_value),
        ),
        None => ("-".into(), "-".into()),
    };
    let mcnemar = diff.mcnemar_p.map_or("-".into(), p_text);
    let row = vec![format!("{:+.4}", diff.difference), interval, p, mcnemar];
    render_rows(&header, &[row], format)
}

/// Both right, only A, only B, both wrong, as a 2×2 table.
fn contingency(diff: &Diff, format: Format) -> String {
    let c = &diff.contingency;
    let header = strings(&[
        if diff.pooled {
            "rows (pooled seeds)"
        } else {
            "rows"
        },
        "B right",
        "B wrong",
    ]);
    let rows = vec![
        vec![
            "A right".into(),
            c.both_right.to_string(),
            c.only_a.to_string(),
        ],
        vec![
            "A wrong".into(),
            c.only_b.to_string(),
            c.both_wrong.to_string(),
        ],
    ];
    render_rows(&header, &rows, format)
}

fn disagreement_title(diff: &Diff) -> String {
    let (n, shown, split) = (diff.disagreeing, diff.disagreements.len(), &diff.split);
    match (n, shown) {
        (0, _) => format!(
            "A and B predict the same class on all {} {split} rows.",
            diff.rows
        ),
        (_, 0) => {
            format!("{n} {split} rows where A and B predict differently (--show N lists them).")
        }
        _ if shown == n => format!("{n} {split} rows where A and B predict differently:"),
        _ => format!("{n} {split} rows where A and B predict differently; the first {shown}:"),
    }
}

/// The shown disagreeing rows.
fn disagreements(diff: &Diff, format: Format) -> String {
    let csv = format == Format::Csv;
    let header = if csv {
        strings(&[
            "row",
            "truth",
            "a",
            "a_probability",
            "b",
            "b_probability",
            "text",
        ])
    } else {
        strings(&["data row", "truth", "A", "B", "text"])
    };
    let rows: Vec<Vec<String>> = diff
        .disagreements
        .iter()
        .map(|d| {
            let text = d.text.clone().unwrap_or_default();
            if csv {
                vec![
                    d.row.to_string(),
                    d.truth.clone(),
                    d.a.clone(),
                    format!("{:.4}", d.a_probability),
                    d.b.clone(),
                    format!("{:.4}", d.b_probability),
                    text,
                ]
            } else {
                vec![
                    d.row.to_string(),
                    d.truth.clone(),
                    format!("{} ({:.2})", d.a, d.a_probability),
                    format!("{} ({:.2})", d.b, d.b_probability),
                    d.text.as_deref().map_or("-".into(), cut),
                ]
            }
        })
        .collect();
    render_rows(&header, &rows, format)
}

/// A text on one line, cut to `TEXT_CHARS` characters with "…".
fn cut(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= TEXT_CHARS {
        return one_line;
    }
    let mut out: String = one_line.chars().take(TEXT_CHARS - 1).collect();
    out.push('…');
    out
}

/// A p-value to three decimals, small ones as "<0.001".
fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_one_line() {
        assert_eq!(cut("a\nb  c"), "a b c");
        let long = "é".repeat(150);
        let got = cut(&long);
        assert_eq!(got.chars().count(), TEXT_CHARS);
        assert!(got.ends_with('…'));
    }
}
