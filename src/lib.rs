//! lab: declarative text-classification experiments (LSTM / GRU / BiLSTM) trained
//! with candle and recorded in SQLite. See DESIGN.md for the module map: data flows
//! one way, spec -> data -> model -> train -> store, and only `runner` wires them.

// Every public item says what it is; `cargo clippy -D warnings` and CI's
// `cargo doc` with `-D warnings` hold the line.
#![warn(missing_docs)]

pub mod cli;
pub mod data;
pub mod files;
pub mod inference;
pub mod interrupt;
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

/// Tells the allocator to keep freed memory instead of returning it to the OS
/// 10 ms later (its default): a training step frees and re-allocates the same
/// tens of MB, and zeroing the re-faulted pages took 2-18% of a step
/// (`perf record` on `bench_step lstm`). Peak memory is unchanged. Call once at
/// start-up; `MIMALLOC_PURGE_DELAY` in the environment still wins.
pub fn keep_freed_memory() {
    // `mi_option_purge_delay` in mimalloc.h (v3): not exported by libmimalloc-sys.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it at each purge.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
    }
}
