//! Device selection: `cpu`, `cuda`, `cuda:N` or `auto`. Asking for CUDA from a
//! build without the `cuda` feature is an error, never a silent CPU fallback; so is
//! a CUDA build on a machine without an NVIDIA driver, its libraries or a GPU.
//!
//! A CUDA build made by `bench/cuda-build.sh` (cfg `cuda_dynamic_loading`) opens the
//! driver and the CUDA libraries only when a GPU is asked for: it starts and runs
//! on the CPU anywhere, and says here which library is missing instead of letting
//! cudarc panic.

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
             rebuild with `cargo build --release --features cuda` on a machine with the CUDA toolkit, \
             or build one without a GPU: `bash bench/cuda-build.sh` (docs/devices.md)"
        );
    }
    #[cfg(all(feature = "cuda", cuda_dynamic_loading))]
    libraries::check(ordinal)?;
    Device::new_cuda(ordinal).with_context(|| {
        format!(
            "cannot open CUDA device cuda:{ordinal} (is there a GPU numbered {ordinal}? \
             `nvidia-smi -L` lists them)"
        )
    })
}

/// The libraries a CUDA device opens, checked before candle opens them (cudarc's
/// dynamic loading panics on a missing one).
#[cfg(all(feature = "cuda", cuda_dynamic_loading))]
mod libraries {
    use candle_core::cuda_backend::cudarc;

    /// Whether cudarc finds the driver, cuBLAS and cuRAND under any of the names it
    /// tries (`libcuda.so.1`, `libcublas.so.13`, `.12`, ...).
    ///
    /// # Errors
    /// The first one missing, named, with what to do about it.
    pub(super) fn check(ordinal: usize) -> anyhow::Result<()> {
        // SAFETY: each call only tries to dlopen the library, under cudarc's names;
        // loading a shared library runs its initialisers, as opening the device would.
        let driver = unsafe { cudarc::driver::sys::is_culib_present() };
        if !driver {
            anyhow::bail!(
                "device cuda:{ordinal} requested, but there is no NVIDIA driver on this machine \
                 (libcuda.so.1 not found by the dynamic loader): no GPU can be used here; \
                 `--device cpu` runs on the CPU"
            );
        }
        // SAFETY: as above.
        let present = unsafe {
            [
                (
                    "cuBLAS",
                    "libcublas.so",
                    cudarc::cublas::sys::is_culib_present(),
                ),
                (
                    "cuRAND",
                    "libcurand.so",
                    cudarc::curand::sys::is_culib_present(),
                ),
            ]
        };
        for (name, file, found) in present {
            if !found {
                anyhow::bail!(
                    "device cuda:{ordinal} requested: the NVIDIA driver is here, but not {name} \
                     ({file}.13 or .12 ...): add its directory to LD_LIBRARY_PATH (PyTorch's pip \
                     wheels carry it under site-packages/nvidia/*/lib; bench/gpu.sh finds it)"
                );
            }
        }
        Ok(())
    }
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
