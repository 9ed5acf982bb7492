//! Numbers behind a ranking: intervals, paired tests, multiple-comparison
//! correction and test-split fingerprints. Knows nothing but numbers.

pub mod fingerprint;
