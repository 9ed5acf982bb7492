//! Device selection: `cpu`, `cuda`, `cuda:N` or `auto`. Asking for CUDA from a
//! build without the `cuda` feature is an error, never a silent CPU fallback.

use anyhow::{bail, Context, Result};
use candle_core::{Device, DeviceLocation};

/// The device `name` names: `cpu`, `cuda`, `cuda:N` or `auto` (CUDA 0 when
/// usable, else the CPU).
///
/// # Errors
/// An unknown name, or CUDA asked of a build or machine without it.
pub fn select(name: &str) -> Result<Device> {
    let name = name.trim();
    match name {
        "cpu" => Ok(Device::Cpu),
        // A CUDA build on a machine without a usable GPU still runs on the CPU.
        "auto" => Ok(cuda(0).unwrap_or(Device::Cpu)),
        "cuda" => cuda(0),
        _ => match name.strip_prefix("cuda:") {
            Some(n) => {
                let ordinal = n.parse::<usize>().with_context(|| {
                    format!("device `{name}`: expected cuda:N with N a GPU number")
                })?;
                cuda(ordinal)
            }
            None => bail!("unknown device `{name}`: expected cpu, cuda, cuda:N or auto"),
        },
    }
}

fn cuda(ordinal: usize) -> Result<Device> {
    if !candle_core::utils::cuda_is_available() {
        bail!(
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
