//! Numbers behind a ranking: intervals, paired tests, multiple-comparison
//! correction and test-split fingerprints. Knows nothing but numbers.

pub mod bootstrap;
pub mod fingerprint;
pub mod holm;
pub mod interval;
pub mod metric;
pub mod paired;

pub use bootstrap::{bootstrap_interval, Arm, MIN_TEST_ROWS};
pub use holm::holm;
pub use interval::{t_interval, Interval};
pub use metric::ConfusionMetric;
pub use paired::{mcnemar_exact, paired_bootstrap, Contingency, PairedTest};
