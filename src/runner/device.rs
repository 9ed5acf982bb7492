//! Device selection: `cpu`, `cuda`, `cuda:N` or `auto`. Asking for CUDA from a
//! build without the `cuda` feature is an error, never a silent CPU fallback.

use crate::spec;
use anyhow::{Context, Result};
use candle_core::{Device, DeviceLocation};

/// Opens the device named `name` (`--device`, `train.device`; surrounding blanks
/// are ignored).
///
/// # Errors
/// A name that is not `cpu`, `auto`, `cuda` or `cuda:N` (the message suggests the
/// nearest), or a GPU this build or machine cannot open.
pub fn select(name: &str) -> Result<Device> {
    let device: spec::Device = name.trim().parse()?;
    open(device)
}

/// Opens a parsed device.
///
/// # Errors
/// CUDA asked of a build without the `cuda` feature, or a GPU that cannot be opened.
pub fn open(device: spec::Device) -> Result<Device> {
    match device {
        spec::Device::Cpu => Ok(Device::Cpu),
        // A CUDA build on a machine without a usable GPU still runs on the CPU.
        spec::Device::Auto => Ok(cuda(0).unwrap_or(Device::Cpu)),
        spec::Device::Cuda(ordinal) => cuda(ordinal.unwrap_or(0)),
    }
}

fn cuda(ordinal: usize) -> Result<Device> {
    if !candle_core::utils::cuda_is_available() {
        anyhow::bail!(
            "device cuda:{ordinal} requested, but this lab was built without CUDA support; \
             rebuild with `cargo build --release --features cuda` on a machine with the CUDA toolkit"
        );
    }
    Device::new_cuda(ordinal).with_context(|| format!("cannot open CUDA device {ordinal}"))
}

/// The name recorded in the store for a device.
pub fn label(device: &Device) -> String {
    match device.location() {
        DeviceLocation::Cpu => "cpu".into(),
        DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// The CPU compute threads one process uses: `RAYON_NUM_THREADS` (or
/// `CANDLE_NUM_THREADS` for candle's own pool), else the physical cores, as candle
/// counts them.
pub fn cpu_threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}
