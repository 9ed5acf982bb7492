//! lab: declarative text-classification experiments (LSTM / GRU / BiLSTM) trained
//! with candle and recorded in SQLite. See DESIGN.md for the module map: data flows
//! one way, spec -> data -> model -> train -> store, and only `runner` wires them.

// Every public item says what it is; `cargo clippy -D warnings` and CI's
// `cargo doc` with `-D warnings` hold the line.
#![warn(missing_docs)]
// `print!`/`eprint!`/`dbg!` panic when the output is closed (`lab run | head`),
// and a panic inside a trial would be recorded as its failure: output goes
// through `cli::out` (stdout) and `tracing` (stderr), which never panic.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod cli;
pub mod data;
pub mod files;
pub mod inference;
pub mod interrupt;
pub mod kernels;
pub mod model;
pub mod report;
pub mod runner;
pub mod search;
pub mod serve;
pub mod spec;
pub mod stats;
pub mod store;
pub mod train;
pub mod ui;

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
    set_purge_delay(-1);
}

/// Undoes [`keep_freed_memory`] for a long-running server (`lab serve`): freed
/// memory goes back to the OS after mimalloc's default delay (10 ms), so a burst of
/// large requests does not stay resident. `MIMALLOC_PURGE_DELAY` still wins.
pub fn return_freed_memory() {
    set_purge_delay(10);
}

fn set_purge_delay(ms: std::os::raw::c_long) {
    // `mi_option_purge_delay` in mimalloc.h (v3): not exported by libmimalloc-sys.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it at each purge.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, ms) };
    }
}
