//! The evidence a leaderboard states for each row: an interval for the ranked
//! metric and what a paired test against the best row says.

/// How a row's interval was computed (`lab compare --ci`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CiMethod {
    /// No interval.
    None,
    /// A t-interval over the row's seeds (a bootstrap over test rows where it has
    /// one seed).
    Seeds,
    /// A percentile bootstrap over test rows of the seed-averaged metric.
    Bootstrap,
}

/// What the paired test of a row against the best row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// The best row itself.
    Best,
    /// Cannot be told apart from the best at the chosen alpha (Holm-corrected).
    Indistinguishable,
    /// Different from the best at the chosen alpha (Holm-corrected).
    Different,
    /// Too little evidence to say (too few test rows, or no predictions).
    TooFew,
}

/// One row's evidence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    /// The interval's bounds (low, high) for the ranked metric, in its units;
    /// `None` when not computed.
    pub interval: Option<(f64, f64)>,
    /// How `interval` was computed.
    pub method: CiMethod,
    /// p-value of the paired test against the best row (unadjusted).
    pub p_value: Option<f64>,
    /// `p_value` after Holm's correction across the rows compared with the best.
    pub p_adjusted: Option<f64>,
    /// The verdict.
    pub mark: Mark,
}
