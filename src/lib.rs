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

/// Training allocates and frees buffers of tens of MB at every step; glibc's malloc
/// hands each back to the OS and page-faults it in again (a third of a training
/// step's CPU time under `perf stat`). mimalloc keeps and reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
