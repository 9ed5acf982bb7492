//! lab: declarative text-classification experiments (LSTM / GRU / BiLSTM) trained
//! with candle and recorded in SQLite. See DESIGN.md for the module map: data flows
//! one way, spec -> data -> model -> train -> store, and only `runner` wires them.

pub mod cli;
pub mod data;
pub mod kernels;
pub mod model;
pub mod report;
pub mod runner;
pub mod serve;
pub mod spec;
pub mod store;
pub mod train;
