#!/usr/bin/env bash
# Builds the CUDA `lab` (and bench_step) on a machine with no GPU and no NVIDIA
# driver, for carrying to a GPU box (bench/gpu.sh runs the check there).
#   bash bench/cuda-build.sh      # → target/cuda/lab, target/cuda/bench_step (stripped)
# and their xz-compressed copies lab.xz, bench_step.xz (a fifth of the size, for
# carrying: bench/gpu.sh unpacks them when the plain files are absent).
# CUDA_COMPUTE_CAP=80 (or 89, 100...) builds candle's kernels for another GPU
# (default 90: H100/H200); CUDA_TARGET_DIR moves the build (default target/cuda-build,
# apart from the normal target/release).
#
# The toolkit is .ci/cuda-toolkit.sh's PyPI wheels (nvcc 13.5). candle 0.11 asks
# cudarc for `dynamic-linking` (-lcuda -lnvrtc -lcurand -lcublas -lcublasLt), which
# needs a driver and the CUDA libraries at link time and pins their versions at
# run time. Instead cudarc is compiled with its `dynamic-loading` code (a --cfg in
# RUSTFLAGS, read by cudarc alone; --target keeps it from build scripts, where
# cudarc's refuses both modes at once): the driver and libraries are dlopen'ed
# when a CUDA device is first opened, trying each version's name (libcublas.so.13,
# .12, ...); `cuda_dynamic_loading` tells lab (src/runner/device.rs) to check them
# first and name a missing one. The -l flags cudarc's build script still prints are met by empty
# stub libraries that the linker then drops (--as-needed: nothing refers to them).
# candle's MoE kernels (unused by lab) ask for -lcudart: a linker script names the
# toolkit's libcudart_static.a, which itself dlopens the driver. The binary thus
# needs no CUDA library to start: `--device cpu` works anywhere, and `cuda:N`
# without a driver is an error naming what is missing. The script checks that
# no CUDA library is among the binary's NEEDED entries.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/cuda-toolkit.sh
source .ci/cuda-toolkit.sh
nvcc --version | tail -1

host=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${CUDA_TARGET_DIR:-target/cuda-build}
stubs="$target_dir/link-stubs"
mkdir -p "$stubs" target/cuda
stubs=$(cd "$stubs" && pwd)
: >"$stubs/empty.c"
for lib in cuda nvrtc curand cublas cublasLt; do
  gcc -shared -o "$stubs/lib$lib.so" "$stubs/empty.c"
done
echo "INPUT($cuda_root/lib/libcudart_static.a -ldl -lrt -lpthread)" >"$stubs/libcudart.so"

start=$(date +%s)
CARGO_TARGET_DIR="$target_dir" \
  RUSTFLAGS="${RUSTFLAGS:-} --cfg feature=\"dynamic-loading\" --cfg cuda_dynamic_loading -L native=$stubs" \
  cargo build --release --features cuda --target "$host" --bin lab --example bench_step
seconds=$(($(date +%s) - start))

out="$target_dir/$host/release"
# What gpu.sh records of the build it checks.
echo "$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo '+changes'), nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), compute capability $CUDA_COMPUTE_CAP" >target/cuda/build.txt
strip -o target/cuda/lab "$out/lab"
strip -o target/cuda/bench_step "$out/examples/bench_step"
for bin in target/cuda/lab target/cuda/bench_step; do
  needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  case "$needed" in
    *libcuda* | *libcublas* | *libcurand* | *libnvrtc* | *libcudart*)
      echo "error: $bin needs a CUDA library at start-up (NEEDED: $needed)" >&2
      exit 1
      ;;
  esac
  xz -T2 -6 -f -c "$bin" >"$bin.xz"
  echo "$bin: $(du -h "$bin" | cut -f1) stripped, $(du -h "$bin.xz" | cut -f1) as $bin.xz (NEEDED: $needed)"
done
echo "built in ${seconds}s for compute capability $CUDA_COMPUTE_CAP"
