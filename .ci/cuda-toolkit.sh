# shellcheck shell=bash
# Sourced by .ci/cuda-check and bench/cuda-build.sh: NVIDIA's compiler (nvcc 13.0),
# runtime headers and library (libcudart_static.a) and libdevice, as PyPI wheels
# unpacked into CUDA_PYPI_DIR (default target/cuda-pypi/13.0), downloaded once.
# CUDA 13.0 rather than the newest: candle's kernels are embedded as PTX, which the
# driver compiles at run time and accepts only up to its own CUDA version; 13.0's
# PTX (ISA 9.0) loads on every CUDA 13 driver (R580 and later).
# Exports the variables candle's build scripts read: PATH (nvcc), CUDA_ROOT and
# CUDA_PATH, CUDA_COMPUTE_CAP (default 90: H100/H200; set it to override) and
# CUDARC_CUDA_VERSION=13000 (cudarc's bindings: the driver API of CUDA 13.0, and
# library names tried newest first: libcublas.so.13, then .12, ...); and sets
# cuda_root to the toolkit's directory (bin/, include/, lib/).
# Needs python3 with pip, and PyPI, on the first call.
cuda_pypi_dir=${CUDA_PYPI_DIR:-target/cuda-pypi/13.0}
if [ ! -x "$cuda_pypi_dir/nvidia/cu13/bin/nvcc" ]; then
  mkdir -p "$cuda_pypi_dir"
  python3 -m pip download --quiet --no-deps -d "$cuda_pypi_dir/wheels" \
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
  for w in "$cuda_pypi_dir"/wheels/*.whl; do python3 -m zipfile -e "$w" "$cuda_pypi_dir"; done
  chmod +x "$cuda_pypi_dir"/nvidia/cu13/bin/* "$cuda_pypi_dir"/nvidia/cu13/nvvm/bin/*
fi
cuda_root=$(cd "$cuda_pypi_dir/nvidia/cu13" && pwd)
export PATH="$cuda_root/bin:$PATH" CUDA_ROOT="$cuda_root" CUDA_PATH="$cuda_root" \
  CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} CUDARC_CUDA_VERSION=13000
