//! Class names from raw labels: missing-value spellings, `data.label_map`, and
//! variants that differ only by case or numeric form (`Positive`/`positive`,
//! `3`/`3.0`). Variants are an error that lists them and prints the `label_map`
//! that merges them, unless `data.label_normalize` asks for the merge; every merge
//! (the `label_map`'s too) is recorded as a [`LabelMerge`].

use super::notes::LabelMerge;
use crate::spec::{DataSection, LabelNormalize};
use anyhow::bail;
use std::collections::{BTreeSet, HashMap};

/// Label spellings read as a missing value (compared ignoring ASCII case), as pandas
/// and spreadsheets write one: such a label is an empty label, unless
/// `data.label_map` maps it.
pub const MISSING: [&str; 7] = ["nan", "null", "none", "n/a", "na", "<na>", "#n/a"];

/// A trimmed label that is empty or spells a missing value (and `data.label_map`
/// does not map it, which keeps it as a class).
pub fn is_missing(label: &str, data: &DataSection) -> bool {
    if label.is_empty() {
        return true;
    }
    label.len() <= 4
        && MISSING.iter().any(|m| label.eq_ignore_ascii_case(m))
        && !data.label_map.contains_key(label)
}

/// The class a label found in a new file stands for, by the rules training applied:
/// trimmed, `data.label_map`, then the variants `data.label_normalize` merges (by
/// case, by numeric form). `None` when it is no class of `classes`.
pub fn class_of<'c>(label: &str, classes: &'c [String], data: &DataSection) -> Option<&'c str> {
    let label = label.trim();
    let label = data.label_map.get(label).map_or(label, String::as_str);
    if let Some(c) = classes.iter().find(|c| *c == label) {
        return Some(c);
    }
    let (case, numeric) = match data.label_normalize? {
        LabelNormalize::Case => (true, false),
        LabelNormalize::Numeric => (false, true),
        LabelNormalize::Both => (true, true),
    };
    let n = number(label);
    classes.iter().map(String::as_str).find(|c| {
        (numeric && n.is_some() && number(c) == n)
            || (case && n.is_none() && c.to_lowercase() == label.to_lowercase())
    })
}

/// One distinct raw label (trimmed) as read, with its rows.
#[derive(Debug, Clone)]
struct Seen {
    raw: String,
    count: usize,
    first_line: u64,
}

/// The distinct raw labels of a file, numbered in order of first appearance.
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
    seen: Vec<Seen>,
}

impl Interner {
    /// The id of raw label `raw` (trimmed, not missing), met at physical `line`.
    pub fn id(&mut self, raw: &str, line: u64) -> u32 {
        if let Some(&id) = self.ids.get(raw) {
            self.seen[id as usize].count += 1;
            return id;
        }
        let id = self.seen.len() as u32;
        self.ids.insert(raw.to_string(), id);
        self.seen.push(Seen {
            raw: raw.to_string(),
            count: 1,
            first_line: line,
        });
        id
    }
}

/// The classes the raw labels become.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Sorted class names (numerically when every name is a number).
    pub classes: Vec<String>,
    /// `class_of[raw id]`: the class (index into `classes`) of each raw label.
    pub class_of: Vec<u32>,
    /// Merges done (by `data.label_map`, then by `data.label_normalize`).
    pub merged: Vec<LabelMerge>,
}

/// A class name before the variant check: the raw labels that map to it.
#[derive(Debug, Clone)]
struct Name {
    name: String,
    count: usize,
    first_line: u64,
    raws: Vec<u32>,
}

/// Apply `data.label_map`, then check for (or, under `data.label_normalize`, merge)
/// variants, then sort the classes.
///
/// # Errors
/// Names that differ only by case or numeric form that `data.label_normalize` does
/// not cover: the message lists them with their row counts and first lines, and
/// prints the `[data.label_map]` that merges them.
pub fn resolve(interner: Interner, data: &DataSection, file: &str) -> anyhow::Result<Resolved> {
    let seen = interner.seen;
    warn_unused_label_map(&seen, data, file);
    let (names, mut merged) = apply_label_map(&seen, data);
    // Group the names by variant key, in order of first appearance.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_key: HashMap<Key, usize> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        let g = *by_key.entry(Key::of(&n.name)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let rule = data.label_normalize;
    let mut unmerged = Vec::new();
    let mut class_name: Vec<String> = names.iter().map(|n| n.name.clone()).collect();
    for group in groups.iter().filter(|g| g.len() > 1) {
        let numeric = number(&names[group[0]].name).is_some();
        let covered = match rule {
            Some(LabelNormalize::Both) => true,
            Some(LabelNormalize::Case) => !numeric,
            Some(LabelNormalize::Numeric) => numeric,
            None => false,
        };
        let canonical = canonical(&names, group, numeric);
        if !covered {
            unmerged.push((group.clone(), canonical, numeric));
            continue;
        }
        for &i in group {
            class_name[i].clone_from(&canonical);
        }
        merged.push(LabelMerge {
            class: canonical,
            variants: group
                .iter()
                .map(|&i| (names[i].name.clone(), names[i].count))
                .collect(),
            rule: if numeric { "numeric" } else { "case" }.into(),
        });
    }
    if !unmerged.is_empty() {
        bail!("{}", variants_error(file, data, &names, &unmerged));
    }
    let classes = sorted_classes(class_name.iter().map(String::as_str).collect());
    let index: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let mut class_of = vec![0u32; seen.len()];
    for (n, name) in names.iter().zip(&class_name) {
        for &raw in &n.raws {
            class_of[raw as usize] = index[name.as_str()];
        }
    }
    Ok(Resolved {
        classes,
        class_of,
        merged,
    })
}

/// A `data.label_map` key that no label spells is most likely a typo: say so, with
/// the labels there are.
fn warn_unused_label_map(seen: &[Seen], data: &DataSection, file: &str) {
    let raw: BTreeSet<&str> = seen.iter().map(|s| s.raw.as_str()).collect();
    let unused: Vec<String> = data
        .label_map
        .keys()
        .filter(|k| !raw.contains(k.as_str()))
        .map(|k| format!("{k:?}"))
        .collect();
    if unused.is_empty() {
        return;
    }
    let mut labels: Vec<String> = raw.iter().take(20).map(|r| format!("{r:?}")).collect();
    if raw.len() > 20 {
        labels.push("...".into());
    }
    tracing::warn!(
        "{file}: data.label_map key(s) {} match no label in column {:?} (the rows read have: {})",
        unused.join(", "),
        data.label,
        labels.join(", ")
    );
}

/// The names the raw labels take under `data.label_map` (in order of first
/// appearance), and a [`LabelMerge`] (rule "label_map") for each class a mapped
/// label went into.
fn apply_label_map(seen: &[Seen], data: &DataSection) -> (Vec<Name>, Vec<LabelMerge>) {
    let mut names: Vec<Name> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut mapped: BTreeSet<usize> = BTreeSet::new();
    for (raw_id, s) in seen.iter().enumerate() {
        let target = data.label_map.get(&s.raw);
        let name = target.map_or(s.raw.as_str(), String::as_str);
        let i = *index.entry(name).or_insert_with(|| {
            names.push(Name {
                name: name.to_string(),
                count: 0,
                first_line: s.first_line,
                raws: Vec::new(),
            });
            names.len() - 1
        });
        let n = &mut names[i];
        n.count += s.count;
        n.first_line = n.first_line.min(s.first_line);
        n.raws.push(raw_id as u32);
        if target.is_some() {
            mapped.insert(i);
        }
    }
    let merges = mapped
        .into_iter()
        .map(|i| LabelMerge {
            class: names[i].name.clone(),
            variants: names[i]
                .raws
                .iter()
                .map(|&r| (seen[r as usize].raw.clone(), seen[r as usize].count))
                .collect(),
            rule: "label_map".into(),
        })
        .collect();
    (names, merges)
}

/// What makes two names variants of one class: the same number, or the same text
/// ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Number(String),
    Text(String),
}

impl Key {
    fn of(name: &str) -> Key {
        match number(name) {
            Some(n) => Key::Number(n),
            None => Key::Text(name.to_lowercase()),
        }
    }
}

/// The canonical form of a finite number (`3.00` -> `3`, `2.50` -> `2.5`,
/// `1e3` -> `1000`); `None` for anything else.
pub fn number(name: &str) -> Option<String> {
    let v: f64 = name.parse().ok().filter(|v: &f64| v.is_finite())?;
    let v = if v == 0.0 { 0.0 } else { v }; // -0 is 0
    Some(if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    })
}

/// The class a group of variants becomes: the canonical number, or the most
/// frequent spelling (ties: the first seen).
fn canonical(names: &[Name], group: &[usize], numeric: bool) -> String {
    if numeric {
        return number(&names[group[0]].name).unwrap_or_default();
    }
    let mut best = group[0];
    for &i in &group[1..] {
        let (a, b) = (&names[i], &names[best]);
        if a.count > b.count || (a.count == b.count && a.first_line < b.first_line) {
            best = i;
        }
    }
    names[best].name.clone()
}

/// Groups of variants a refusal lists (a label column of ids could have thousands).
const SHOWN: usize = 10;

/// The refusal of unmerged variants: each group with its spellings, counts and
/// first lines, the setting that merges them and the `[data.label_map]` that does.
fn variants_error(
    file: &str,
    data: &DataSection,
    names: &[Name],
    unmerged: &[(Vec<usize>, String, bool)],
) -> String {
    let mut msg = format!(
        "{file}: labels in column {:?} (data.label) differ only by case or numeric form, \
         so each spelling would be a class of its own:",
        data.label
    );
    let mut map = String::from("[data.label_map]");
    for (group, canonical, _) in unmerged.iter().take(SHOWN) {
        let spellings: Vec<String> = group
            .iter()
            .map(|&i| {
                let n = &names[i];
                format!(
                    "{:?} ({} row(s), first at line {})",
                    n.name, n.count, n.first_line
                )
            })
            .collect();
        msg.push_str(&format!("\n  {canonical:?}: {}", spellings.join(", ")));
        for &i in group {
            if names[i].name != *canonical {
                map.push_str(&format!(
                    "\n{} = {}",
                    toml_string(&names[i].name),
                    toml_string(canonical)
                ));
            }
        }
    }
    if unmerged.len() > SHOWN {
        msg.push_str(&format!(
            "\n  ... and {} more group(s) of variants (the label_map below covers the \
             first {SHOWN})",
            unmerged.len() - SHOWN
        ));
    }
    // The setting that covers these variants and what is merged already.
    let rule = data.label_normalize;
    let numeric = unmerged.iter().any(|u| u.2)
        || matches!(rule, Some(LabelNormalize::Numeric | LabelNormalize::Both));
    let case = unmerged.iter().any(|u| !u.2)
        || matches!(rule, Some(LabelNormalize::Case | LabelNormalize::Both));
    let setting = match (case, numeric) {
        (true, true) => "both",
        (false, true) => "numeric",
        _ => "case",
    };
    msg.push_str(&format!(
        "\nmerge them with data.label_normalize = \"{setting}\", or add to the spec \
         (labels are matched after trimming):\n{map}"
    ));
    msg
}

/// `s` as a TOML string (quoted and escaped).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Numbers sort as numbers ("2" < "10") when every class name is one; otherwise by string.
pub fn sorted_classes(names: BTreeSet<&str>) -> Vec<String> {
    // A BTreeSet iterates in string order already.
    let mut classes: Vec<String> = names.into_iter().map(str::to_string).collect();
    let numbers: Option<Vec<f64>> = classes.iter().map(|c| c.parse::<f64>().ok()).collect();
    if numbers.is_some() {
        classes.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
    }
    classes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(normalize: Option<LabelNormalize>) -> DataSection {
        DataSection {
            label_normalize: normalize,
            ..DataSection::default()
        }
    }

    fn interner(labels: &[&str]) -> Interner {
        let mut i = Interner::default();
        for (line, l) in labels.iter().enumerate() {
            i.id(l, line as u64 + 2);
        }
        i
    }

    #[test]
    fn numbers_have_one_canonical_form() {
        assert_eq!(number("3").as_deref(), Some("3"));
        assert_eq!(number("3.00").as_deref(), Some("3"));
        assert_eq!(number("+3.0").as_deref(), Some("3"));
        assert_eq!(number("2.50").as_deref(), Some("2.5"));
        assert_eq!(number("1e3").as_deref(), Some("1000"));
        assert_eq!(number("-0.0").as_deref(), Some("0"));
        assert_eq!(number("inf"), None);
        assert_eq!(number("pos"), None);
    }

    #[test]
    fn missing_spellings_unless_mapped() {
        let mut d = data(None);
        for s in [
            "", "nan", "NaN", "NULL", "None", "n/a", "NA", "<NA>", "#N/A",
        ] {
            assert!(is_missing(s, &d), "{s}");
        }
        for s in ["nano", "0", "none of it", "positive"] {
            assert!(!is_missing(s, &d), "{s}");
        }
        d.label_map.insert("None".into(), "none".into());
        assert!(!is_missing("None", &d));
    }

    #[test]
    fn case_variants_refused_then_merged_by_count() {
        let labels = ["positive", "Positive", "POSITIVE", "Positive", "neg", "neg"];
        let err = resolve(interner(&labels), &data(None), "f.csv").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"positive\" (1 row(s), first at line 2)"),
            "{msg}"
        );
        assert!(
            msg.contains("\"Positive\" (2 row(s), first at line 3)"),
            "{msg}"
        );
        assert!(
            msg.contains("[data.label_map]\n\"positive\" = \"Positive\""),
            "{msg}"
        );
        assert!(msg.contains("\"POSITIVE\" = \"Positive\""), "{msg}");
        assert!(msg.contains("data.label_normalize = \"case\""), "{msg}");
        let r = resolve(interner(&labels), &data(Some(LabelNormalize::Case)), "f").unwrap();
        assert_eq!(r.classes, ["Positive", "neg"]);
        assert_eq!(r.class_of, [0, 0, 0, 1]);
        assert_eq!(r.merged[0].rule, "case");
        assert_eq!(r.merged[0].variants.len(), 3);
    }

    #[test]
    fn numeric_variants_need_numeric() {
        let labels = ["3", "3.0", "3.00", "4"];
        let case = resolve(interner(&labels), &data(Some(LabelNormalize::Case)), "f");
        assert!(case.unwrap_err().to_string().contains("= \"both\""));
        let none = resolve(interner(&labels), &data(None), "f").unwrap_err();
        assert!(none.to_string().contains("= \"numeric\""), "{none}");
        assert!(none.to_string().contains("\"3.0\" = \"3\""), "{none}");
        let r = resolve(interner(&labels), &data(Some(LabelNormalize::Numeric)), "f").unwrap();
        assert_eq!(r.classes, ["3", "4"]);
        assert_eq!(r.class_of, [0, 0, 0, 1]);
    }

    #[test]
    fn many_groups_are_listed_up_to_a_cap() {
        let labels: Vec<String> = (0..30)
            .flat_map(|i| [format!("l{i}"), format!("L{i}")])
            .collect();
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let msg = resolve(interner(&labels), &data(None), "f")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("... and 20 more group(s)"), "{msg}");
        assert_eq!(msg.matches(" = \"").count(), 11, "{msg}"); // the setting, 10 entries
    }

    #[test]
    fn label_map_applies_first_and_is_recorded() {
        let mut d = data(None);
        d.label_map.insert("Positive".into(), "positive".into());
        let r = resolve(interner(&["positive", "Positive", "neg"]), &d, "f").unwrap();
        assert_eq!(r.classes, ["neg", "positive"]);
        assert_eq!(r.merged.len(), 1);
        assert_eq!(r.merged[0].rule, "label_map");
        assert_eq!(
            r.merged[0].variants,
            [("positive".to_string(), 1), ("Positive".to_string(), 1)]
        );
    }
}
