//! The identity of a test split: two trials can be ranked together only when
//! they were scored on the same rows, with the same texts and the same labels.

use sha2::{Digest, Sha256};

/// The fingerprint of a test split: hex sha256 over the class names in order,
/// then each row's record index in the data file, its text hash
/// (`data::row_hash`) and its class, for (n) rows in split order.
///
/// It changes with anything that changes which rows are tested or what they
/// hold: the data file's test rows, the split seed and fractions, `limit` and
/// `sample`, cleaning that drops rows, the label map. It does not change with
/// preprocessing that keeps the rows (lowercasing, `max_len`, stop words), so
/// trials that differ only there are still compared on the same rows.
pub fn test_split(classes: &[String], rows: &[u32], hashes: &[u64], labels: &[u32]) -> String {
    let mut h = Sha256::new();
    h.update(b"lab-test-split-v1");
    h.update((classes.len() as u64).to_le_bytes());
    for class in classes {
        h.update((class.len() as u64).to_le_bytes());
        h.update(class.as_bytes());
    }
    h.update((rows.len() as u64).to_le_bytes());
    for ((row, hash), label) in rows.iter().zip(hashes).zip(labels) {
        h.update(row.to_le_bytes());
        h.update(hash.to_le_bytes());
        h.update(label.to_le_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_of_rows_texts_or_labels_changes_the_fingerprint() {
        let classes = vec!["neg".to_string(), "pos".to_string()];
        let base = test_split(&classes, &[1, 5], &[10, 20], &[0, 1]);
        assert_eq!(base, test_split(&classes, &[1, 5], &[10, 20], &[0, 1]));
        assert_ne!(base, test_split(&classes, &[1, 6], &[10, 20], &[0, 1]));
        assert_ne!(base, test_split(&classes, &[1, 5], &[10, 21], &[0, 1]));
        assert_ne!(base, test_split(&classes, &[1, 5], &[10, 20], &[1, 1]));
        let renamed = vec!["negative".to_string(), "pos".to_string()];
        assert_ne!(base, test_split(&renamed, &[1, 5], &[10, 20], &[0, 1]));
    }
}
