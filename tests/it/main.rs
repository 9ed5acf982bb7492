//! The integration tests, one binary: each module is one former test file.
//! One binary links once (faster CI, less disk) and shares the trained stores of
//! `common` between modules.

mod attention;
mod bad_inputs;
mod browser;
mod checkpoint;
mod cli;
mod cluster;
mod common;
mod crash;
mod data;
mod data_report;
mod dialects;
mod docs;
mod e2e;
mod embeddings;
mod fault;
mod formats;
mod fuzz;
mod grid_limits;
mod integrity;
mod kernels;
mod labels;
mod liveness;
mod merge_safety;
mod model;
mod pinned;
mod plots;
mod predict_formats;
mod prepare;
mod race;
mod report;
mod serve;
mod serve_limits;
mod signals;
mod slurm;
mod soak;
mod sparse_embedding;
mod spec;
mod splits;
mod store;
mod store_check;
mod store_check_self;
mod train;
mod trial_state;
