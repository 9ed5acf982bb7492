//! lab's side of bench/compare.sh: times training steps (forward, cross-entropy,
//! backward, Adam) and inference batches for one model at the shape, and
//! measures the GEMM peak. Prints one JSON object.
//!
//! cargo run --release --example bench_step -- MODEL [--kernel fused|reference]
//!     [--steps N] [--batch B] [--time T] [--vocab V] [--infer-only] [--train-only]
//!     [--sparse-embedding] [--device cpu|cuda:N]
//!     MODEL: lstm | gru | bilstm | lstm2 | peak | packed M K N
//!
//! On a GPU (`--device cuda:0`, a build with the `cuda` feature: bench/cuda-build.sh)
//! the model runs its reference layers (the fused kernels are CPU-only) and each
//! timed phase ends with a device synchronisation, so the times are the GPU's.

use candle_core::Tensor;
use lab::model::{Classifier, Kernel};
use lab::spec::{Cell, ModelSection, Pooling, TrainSection};
use lab::train::{cross_entropy, optim};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

const VOCAB: usize = 20000;
const EMB: usize = 100;
const HIDDEN: usize = 128;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// The median; 0 for no samples (`--infer-only` times no training step).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// GFLOP/s of a large square product through the same gemm crate, on candle's threads.
fn gemm_peak() -> f64 {
    let n = 1024;
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0f32; n * n];
    let threads = lab::kernels::matmul::threads();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        lab::kernels::matmul::gemm(
            &mut c,
            (n, n, n),
            lab::kernels::matmul::View::rows(&a, n),
            lab::kernels::matmul::View::rows(&b, n),
            false,
            threads,
        );
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// GFLOP/s of the packed kernel on one (m × k) · (k × n) product, one thread.
fn packed_rate(m: usize, k: usize, n: usize) -> f64 {
    use lab::kernels::matmul::View;
    let a = vec![0.5f32; m * k];
    let w = vec![0.25f32; n * k];
    let mut c = vec![0f32; m * n];
    let reps = 400_000_000 / (m * n * k);
    let packed = lab::kernels::packed::Packed::new(View::transposed(&w, k), k, n);
    let start = Instant::now();
    for _ in 0..reps {
        packed.mul(&a, m, &mut c);
    }
    2.0 * (m * n * k * reps) as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// GFLOP/s of the per-step product (64 × 128) · (128 × 512): `gemm` crate vs packed.
fn step_product() -> (f64, f64) {
    use lab::kernels::matmul::{gemm, View};
    let (m, k, n) = (64, 128, 512);
    let a = vec![0.5f32; m * k];
    let w = vec![0.25f32; n * k];
    let mut c = vec![0f32; m * n];
    let reps = 2000;
    let flops = 2.0 * (m * n * k) as f64 * reps as f64;
    let start = Instant::now();
    for _ in 0..reps {
        gemm(
            &mut c,
            (m, n, k),
            View::rows(&a, k),
            View::transposed(&w, k),
            false,
            1,
        );
    }
    let general = flops / start.elapsed().as_secs_f64() / 1e9;
    (general, packed_rate(m, k, n))
}

fn main() -> anyhow::Result<()> {
    lab::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().cloned().unwrap_or_else(|| "lstm".into());
    if model == "packed" {
        // One shape through the packed kernel: `packed M K N` (for perf stat).
        let dim = |i: usize| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(64);
        let rate = packed_rate(dim(1), dim(2), dim(3));
        println!("{{\"packed_gflops\": {rate:.1}}}");
        return Ok(());
    }
    if model == "peak" {
        let (general, packed) = step_product();
        // A thread's share of the batch, forward (h·W_hhᵀ) and backward (d·W_hh).
        let (fwd32, bwd32) = (packed_rate(32, 128, 512), packed_rate(32, 512, 128));
        println!(
            "{{\"gemm_gflops\": {:.1}, \"step_gemm_crate_gflops\": {general:.1}, \"step_packed_gflops\": {packed:.1}, \"step32_fwd_gflops\": {fwd32:.1}, \"step32_bwd_gflops\": {bwd32:.1}}}",
            gemm_peak()
        );
        return Ok(());
    }
    let steps: usize = arg(&args, "--steps", "10").parse()?;
    let batch: usize = arg(&args, "--batch", "64").parse()?;
    let time: usize = arg(&args, "--time", "128").parse()?;
    let vocab: usize = arg(&args, "--vocab", &VOCAB.to_string()).parse()?;
    let kernel = match arg(&args, "--kernel", "fused").as_str() {
        "reference" => Kernel::Reference,
        _ => Kernel::Fused,
    };
    let (cell, bidirectional, layers) = match model.as_str() {
        "lstm" => (Cell::Lstm, false, 1),
        "gru" => (Cell::Gru, false, 1),
        "bilstm" => (Cell::Lstm, true, 1),
        "lstm2" => (Cell::Lstm, false, 2),
        other => anyhow::bail!("unknown model {other}: lstm | gru | bilstm | lstm2 | peak"),
    };
    let cfg = ModelSection {
        cell,
        bidirectional,
        layers,
        embedding_dim: EMB,
        hidden: HIDDEN,
        dropout: 0.0,
        pooling: Pooling::Last,
        embeddings: None,
    };
    let device = lab::runner::device::select(&arg(&args, "--device", "cpu"))?;
    let mut net = Classifier::new(&cfg, vocab, 2, 1, &device)?;
    net.set_kernel(kernel);
    // `--sparse-embedding`: lazy Adam on the batch's embedding rows only.
    if args.iter().any(|a| a == "--sparse-embedding") {
        net.enable_sparse_embedding();
    }
    let vars = net.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = optim::build(&TrainSection::default(), vars);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let ids: Vec<u32> = (0..batch * time)
        .map(|_| rng.gen_range(1..vocab as u32))
        .collect();
    let ids = Tensor::from_vec(ids, (batch, time), &device)?;
    let labels: Vec<u32> = (0..batch).map(|i| (i % 2) as u32).collect();
    let labels = Tensor::new(labels.as_slice(), &device)?;
    let lengths = vec![time; batch];

    let (mut train, mut fwd, mut bwd) = (Vec::new(), Vec::new(), Vec::new());
    // `--infer-only` skips training, `--train-only` inference (for profiling one alone).
    let train_steps = if args.iter().any(|a| a == "--infer-only") {
        0
    } else {
        steps + 2
    };
    for i in 0..train_steps {
        let start = Instant::now();
        let logits = net.forward(&ids, &lengths, None)?;
        let loss = cross_entropy(&logits, &labels, None)?;
        device.synchronize()?;
        let t1 = start.elapsed().as_secs_f64() * 1e3;
        let grads = loss.backward()?;
        device.synchronize()?;
        let t2 = start.elapsed().as_secs_f64() * 1e3;
        opt.step(&grads)?;
        if let Some((var, rows)) = net.take_sparse_embedding_grad() {
            opt.step_rows(&var, &rows)?;
        }
        device.synchronize()?;
        if i >= 2 {
            train.push(start.elapsed().as_secs_f64() * 1e3);
            fwd.push(t1);
            bwd.push(t2 - t1);
        }
    }
    let mut infer = Vec::new();
    let infer_steps = if args.iter().any(|a| a == "--train-only") {
        0
    } else {
        steps + 2
    };
    for i in 0..infer_steps {
        let start = Instant::now();
        let logits = net.forward_inference(&ids, &lengths)?;
        let _ = logits.to_vec2::<f32>()?;
        if i >= 2 {
            infer.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    println!(
        "{{\"model\": \"{model}\", \"device\": \"{}\", \"kernel\": \"{}\", \"train_ms\": {:.2}, \"infer_ms\": {:.2}, \"threads\": {}, \"fwd_ms\": {:.2}, \"bwd_ms\": {:.2}}}",
        lab::runner::device::label(&device),
        // The fused kernels run on CPU f32 only; elsewhere the reference layers do.
        match (device.is_cpu(), kernel) {
            (true, Kernel::Fused) => "fused",
            _ => "reference",
        },
        median(train),
        median(infer),
        lab::kernels::matmul::threads(),
        median(fwd),
        median(bwd)
    );
    Ok(())
}
