//! Holm's step-down correction for testing several rows against the best.

/// Holm-adjusted p-values, in the order given (Holm 1979): sort ascending, the
/// i-th smallest (0-based) becomes `max_{j ≤ i} min(1, (m − j) · p_(j))` for
/// `m` tests. A row is significant at alpha when its adjusted p is < alpha; this
/// controls the family-wise error rate at alpha under any dependence.
///
/// Same as `statsmodels.stats.multitest.multipletests(p, method="holm")[1]`.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (j, &i) in order.iter().enumerate() {
        running = running.max(((m - j) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_by_hand() {
        // m = 4, sorted 0.01, 0.02, 0.03, 0.5:
        //   4·0.01 = 0.04; max(0.04, 3·0.02 = 0.06) = 0.06;
        //   max(0.06, 2·0.03 = 0.06) = 0.06; max(0.06, 1·0.5) = 0.5.
        let got = holm(&[0.03, 0.5, 0.01, 0.02]);
        let want = [0.06, 0.5, 0.04, 0.06];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        // Capped at 1 and monotone: 3·0.4 = 1.2 -> 1, then max(1, 2·0.45) = 1.
        assert_eq!(holm(&[0.4, 0.45, 0.9]), vec![1.0, 1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn holm_matches_statsmodels() {
        // multipletests([0.001, 0.04, 0.012, 0.2, 0.03], method="holm")[1]
        //   -> [0.005, 0.09, 0.048, 0.2, 0.09]
        let got = holm(&[0.001, 0.04, 0.012, 0.2, 0.03]);
        let want = [0.005, 0.09, 0.048, 0.2, 0.09];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }
}
