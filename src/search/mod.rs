//! Search: samplers and pruners as pure functions of (spec, trials so far).
//!
//! [`sample`] proposes the configurations of a grid, random or Sobol search
//! (a fixed list, computed from the spec alone); [`tpe`] proposes the next
//! configuration from the finished trials; [`prune`] decides after an epoch
//! whether a trial stops. Nothing here trains or touches SQLite: the runner
//! reads the store, calls these, and records what they decide.

pub mod prune;
pub mod sample;
pub mod tpe;
