//! Search: samplers and pruners as pure functions of (spec, trials so far).

pub mod prune;
