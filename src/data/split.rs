//! Train/valid/test split, fixed by `split.seed` (not the trial seed).

use super::load::Labels;
use crate::spec::{DataSection, SplitSection};
use anyhow::bail;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Row indices of the train, valid and test splits, each in file order.
///
/// Stratified: each class is shuffled and cut by the fractions on its own, so class
/// shares match across splits to within one row, and every class with >= 3 rows lands in
/// all three splits (when their fractions are positive). Otherwise one shuffled cut.
/// Fractions are normalised by their sum.
pub fn split_indices(
    labels: &[u32],
    n_classes: usize,
    cfg: &SplitSection,
) -> anyhow::Result<[Vec<usize>; 3]> {
    let fracs = [cfg.train, cfg.valid, cfg.test];
    let sum: f64 = fracs.iter().sum();
    if fracs.iter().any(|f| !f.is_finite() || *f < 0.0) || sum <= 0.0 {
        bail!(
            "data.split: fractions train = {}, valid = {}, test = {} must be >= 0 with a positive sum",
            cfg.train,
            cfg.valid,
            cfg.test
        );
    }
    let fracs = fracs.map(|f| f / sum);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut out: [Vec<usize>; 3] = Default::default();
    let groups: Vec<Vec<usize>> = if cfg.stratify {
        let mut by_class = vec![Vec::new(); n_classes];
        for (i, &l) in labels.iter().enumerate() {
            if let Some(g) = by_class.get_mut(l as usize) {
                g.push(i);
            }
        }
        by_class
    } else {
        vec![(0..labels.len()).collect()]
    };
    for mut group in groups {
        group.shuffle(&mut rng);
        let [n_train, n_valid, _] = cut_sizes(group.len(), fracs);
        out[0].extend_from_slice(&group[..n_train]);
        out[1].extend_from_slice(&group[n_train..n_train + n_valid]);
        out[2].extend_from_slice(&group[n_train + n_valid..]);
    }
    for s in out.iter_mut() {
        s.sort_unstable();
    }
    Ok(out)
}

/// Sizes of the three parts of `n` rows. Valid and test are rounded from their
/// fractions, train takes the rest; with >= 3 rows every part with a positive
/// fraction gets at least one.
fn cut_sizes(n: usize, fracs: [f64; 3]) -> [usize; 3] {
    let mut sizes = [0usize; 3];
    for k in 1..3 {
        sizes[k] = (n as f64 * fracs[k]).round() as usize;
        if n >= 3 && fracs[k] > 0.0 {
            sizes[k] = sizes[k].max(1);
        }
    }
    let min_train = usize::from(n >= 3 && fracs[0] > 0.0);
    while sizes[1] + sizes[2] + min_train > n {
        // Take from the larger of valid/test, keeping each at >= 1 while possible.
        let k = if sizes[1] >= sizes[2] { 1 } else { 2 };
        sizes[k] -= 1;
    }
    sizes[0] = n - sizes[1] - sizes[2];
    sizes
}

/// Refuse splits that cannot be scored, with the numbers and what to change: a
/// label column with a class for (nearly) every row, an empty valid or test split,
/// a class the train split never shows (the model could never predict it) or the
/// test split never shows (its scores would be undefined). `parts` are the row
/// indices of train, valid and test.
///
/// # Errors
/// Each of the above, naming the file and `data.label` / `data.split`.
pub fn check_splits(
    path: &Path,
    data: &DataSection,
    scan: &Labels,
    parts: [&[usize]; 3],
) -> anyhow::Result<()> {
    let file = path.display();
    let (rows, n_classes) = (scan.labels.len(), scan.classes.len());
    let mut per_class = vec![0usize; n_classes];
    for &l in &scan.labels {
        per_class[l as usize] += 1;
    }
    let fewest = per_class.iter().min().copied().unwrap_or(0);
    let summary = summary(scan, parts, &data.split);
    if n_classes * 2 > rows {
        bail!(
            "{file}: {n_classes} classes in {rows} rows of column {:?} (data.label): more \
             than half the rows have a class of their own, so the splits cannot each hold \
             every class ({summary}). The label column looks like an id: set data.label to \
             the column that holds the classes (the header has: {}), merge classes with \
             data.label_map, or add rows (each class needs at least 3 to reach train, \
             valid and test)",
            data.label,
            scan.columns.join(", ")
        );
    }
    let empty: Vec<&str> = [("valid", parts[1]), ("test", parts[2])]
        .into_iter()
        .filter(|(_, part)| part.is_empty())
        .map(|(name, _)| name)
        .collect();
    if !empty.is_empty() {
        let (what, raise) = match empty[..] {
            [one] => (format!("the {one} split is"), format!("data.split.{one}")),
            _ => (
                "the valid and test splits are".to_string(),
                "data.split.valid and data.split.test".to_string(),
            ),
        };
        bail!(
            "{file}: {what} empty: {rows} rows in {n_classes} classes (the fewest rows in \
             a class: {fewest}) give {summary}; nothing could be scored on it. Add rows \
             (with data.split.stratify each class needs at least 3 to reach every split) \
             or raise {raise}"
        );
    }
    for (name, part) in [("train", parts[0]), ("test", parts[2])] {
        let mut seen = vec![false; n_classes];
        for &i in part {
            seen[scan.labels[i] as usize] = true;
        }
        let Some(c) = seen.iter().position(|&s| !s) else {
            continue;
        };
        let why = if name == "train" {
            "the model could never predict it"
        } else {
            "its scores would be undefined"
        };
        bail!(
            "{file}: class {:?} (column {:?}) has no rows in the {name} split, so {why} \
             ({} row(s) of it in all; {summary}); add rows of it, raise data.split.{name}, \
             keep data.split.stratify = true, or merge it with data.label_map",
            scan.classes[c],
            data.label,
            per_class[c]
        );
    }
    Ok(())
}

/// "train 160 rows (2 classes), valid 20 (2), test 20 (2) with data.split train =
/// 0.8, valid = 0.1, test = 0.1".
fn summary(scan: &Labels, parts: [&[usize]; 3], cfg: &SplitSection) -> String {
    let counts: Vec<String> = ["train", "valid", "test"]
        .iter()
        .zip(parts)
        .enumerate()
        .map(|(k, (name, part))| {
            let mut classes: Vec<u32> = part.iter().map(|&i| scan.labels[i]).collect();
            classes.sort_unstable();
            classes.dedup();
            let rows = if k == 0 { " rows" } else { "" };
            format!("{name} {}{rows} ({} classes)", part.len(), classes.len())
        })
        .collect();
    format!(
        "{} with data.split train = {}, valid = {}, test = {}",
        counts.join(", "),
        cfg.train,
        cfg.valid,
        cfg.test
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `labels` of classes "a", "b", ... as a scan would find them.
    fn scan(labels: &[u32]) -> Labels {
        let n = labels.iter().max().map_or(0, |&m| m as usize + 1);
        Labels {
            labels: labels.to_vec(),
            classes: (0..n)
                .map(|c| ((b'a' + c as u8) as char).to_string())
                .collect(),
            rows_read: labels.len(),
            rows_skipped: 0,
            kept: vec![true; labels.len()],
            notes: Default::default(),
            columns: vec!["text".into(), "label".into()],
        }
    }

    fn check(labels: &[u32], parts: [&[usize]; 3]) -> String {
        let data = DataSection::default();
        match check_splits(Path::new("d.csv"), &data, &scan(labels), parts) {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn splits_that_cannot_be_scored_are_refused() {
        let labels = [0, 1, 0, 1, 0, 1];
        assert_eq!(check(&labels, [&[0, 1], &[2, 3], &[4, 5]]), "ok");
        let e = check(&labels, [&[0, 1, 2, 3], &[], &[4, 5]]);
        assert!(e.contains("the valid split is empty"), "{e}");
        assert!(
            e.contains("train 4 rows (2 classes), valid 0 (0 classes), test 2 (2 classes)"),
            "{e}"
        );
        assert!(e.contains("raise data.split.valid"), "{e}");
        let e = check(&labels, [&[0, 2, 4], &[1], &[3, 5]]);
        assert!(
            e.contains("class \"b\" (column \"label\") has no rows in the train split"),
            "{e}"
        );
        assert!(e.contains("3 row(s) of it in all"), "{e}");
        let e = check(&labels, [&[0, 1, 2], &[3], &[4]]);
        assert!(
            e.contains("class \"b\"") && e.contains("no rows in the test split"),
            "{e}"
        );
        let e = check(&[0, 1, 2, 3], [&[0, 1], &[2], &[3]]);
        assert!(
            e.contains("4 classes in 4 rows") && e.contains("looks like an id"),
            "{e}"
        );
        assert!(e.contains("the header has: text, label"), "{e}");
    }

    #[test]
    fn three_rows_go_one_to_each_split() {
        assert_eq!(cut_sizes(3, [0.8, 0.1, 0.1]), [1, 1, 1]);
        assert_eq!(cut_sizes(100, [0.8, 0.1, 0.1]), [80, 10, 10]);
        assert_eq!(cut_sizes(2, [0.8, 0.1, 0.1]), [2, 0, 0]);
        assert_eq!(cut_sizes(10, [1.0, 0.0, 0.0]), [10, 0, 0]);
    }
}
