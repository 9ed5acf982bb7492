//! The fused recurrent kernels against the reference layers (plain candle ops):
//! outputs and gradients on random inputs, both cells, both directions, ragged
//! lengths, batch 1, length 1, stacked and bidirectional models with dropout; and the
//! fused Adam against the formula applied with tensor ops.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use lab::kernels::fused_recurrent;
use lab::model::{Classifier, Kernel, RecurrentLayer};
use lab::spec::{Cell, ModelSection, Pooling, TrainSection};
use lab::train::optim;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOL: f64 = 1e-4;

/// max |a − b| / max |b|: the error relative to the tensor's scale.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, x| m.max(x.abs() as f64)).max(1e-12);
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs() as f64));
    diff / scale
}

fn random(rng: &mut ChaCha8Rng, shape: &[usize], bound: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-bound..bound)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn var(rng: &mut ChaCha8Rng, shape: &[usize], bound: f32) -> Var {
    Var::from_tensor(&random(rng, shape, bound)).unwrap()
}

/// One direction, fused vs reference: outputs, final state and the gradients of a
/// random linear function of both with respect to x, W_ih, W_hh, b_ih, b_hh.
fn check_layer(cell: Cell, reverse: bool, t: usize, lengths: &[usize], input: usize, h: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64((t * 31 + lengths.len() * 7 + h) as u64);
    let b = lengths.len();
    let g = if cell == Cell::Lstm { 4 } else { 3 };
    let x = var(&mut rng, &[t, b, input], 1.0);
    let w_ih = var(&mut rng, &[g * h, input], 0.6);
    let w_hh = var(&mut rng, &[g * h, h], 0.6);
    let b_ih = var(&mut rng, &[g * h], 0.6);
    let b_hh = var(&mut rng, &[g * h], 0.6);
    let probe_out = random(&mut rng, &[t, b, h], 1.0);
    let probe_last = random(&mut rng, &[b, h], 1.0);

    let layer = RecurrentLayer::new(
        cell,
        w_ih.as_tensor().clone(),
        w_hh.as_tensor().clone(),
        b_ih.as_tensor().clone(),
        b_hh.as_tensor().clone(),
        reverse,
    )
    .unwrap();
    let (ref_out, ref_state) = layer.forward(x.as_tensor(), Some(lengths)).unwrap();

    let (out, last) = fused_recurrent(
        cell.into(),
        reverse,
        x.as_tensor(),
        w_ih.as_tensor(),
        w_hh.as_tensor(),
        b_ih.as_tensor(),
        b_hh.as_tensor(),
        lengths,
        true,
    )
    .unwrap();

    let what = format!("{cell:?} reverse={reverse} t={t} lengths={lengths:?} h={h}");
    assert!(rel_err(&out, &ref_out) <= TOL, "outputs differ: {what}");
    assert!(
        rel_err(&last, &ref_state.h) <= TOL,
        "final state differs: {what}"
    );

    let objective = |o: &Tensor, l: &Tensor| {
        ((o * &probe_out).unwrap().sum_all().unwrap()
            + (l * &probe_last).unwrap().sum_all().unwrap())
        .unwrap()
    };
    let ref_grads = objective(&ref_out, &ref_state.h).backward().unwrap();
    let grads = objective(&out, &last).backward().unwrap();
    for (name, v) in [
        ("x", &x),
        ("w_ih", &w_ih),
        ("w_hh", &w_hh),
        ("b_ih", &b_ih),
        ("b_hh", &b_hh),
    ] {
        let want = ref_grads.get(v.as_tensor()).unwrap();
        let got = grads.get(v.as_tensor()).unwrap();
        let e = rel_err(got, want);
        assert!(e <= TOL, "gradient of {name} differs by {e:.2e}: {what}");
    }
}

#[test]
fn fused_layers_match_reference_outputs_and_gradients() {
    for cell in [Cell::Lstm, Cell::Gru] {
        for reverse in [false, true] {
            // Full batch, ragged lengths (incl. 0 and full), batch 1, length 1.
            check_layer(cell, reverse, 7, &[7, 7, 7], 5, 6);
            check_layer(cell, reverse, 9, &[9, 3, 1, 0, 6], 4, 8);
            check_layer(cell, reverse, 5, &[5], 3, 4);
            check_layer(cell, reverse, 6, &[2], 3, 4);
            check_layer(cell, reverse, 1, &[1, 1, 0], 5, 3);
            // Batches large enough to be split across threads (RAYON_NUM_THREADS > 1).
            let ragged: Vec<usize> = (0..21).map(|i| (i * 5) % 9).collect();
            check_layer(cell, reverse, 8, &ragged, 6, 5);
            check_layer(cell, reverse, 4, &[4; 16], 3, 7);
            // A hidden size that is not a multiple of the vector width.
            check_layer(cell, reverse, 12, &[12, 11, 4, 12], 10, 37);
            // Multiples of the vector width, with padded rows and sub-batches.
            check_layer(cell, reverse, 7, &[7, 2, 0, 7, 5, 1, 7, 3], 6, 16);
            check_layer(cell, reverse, 9, &ragged[..17], 9, 32);
        }
    }
}

fn cfg(cell: Cell, bidirectional: bool, layers: usize, pooling: Pooling) -> ModelSection {
    ModelSection {
        cell,
        bidirectional,
        layers,
        embedding_dim: 8,
        hidden: 10,
        dropout: 0.25,
        pooling,
        embeddings: None,
    }
}

/// Inference on batches large enough for the first layer's per-word projection
/// table: the same logits as the reference layers, also after the embedding and
/// W_ih change (a stale table would keep the old projections).
#[test]
fn projection_table_inference_matches_reference_and_follows_weight_changes() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (vocab, classes) = (50, 3);
    // 32 rows x 40 steps = 1280 tokens, above the table's threshold.
    let lengths: Vec<usize> = (0..32).map(|i| 1 + (i * 7) % 40).collect();
    let (b, t) = (lengths.len(), 40);
    let mut ids = vec![0u32; b * t];
    for (r, &l) in lengths.iter().enumerate() {
        for s in 0..l {
            ids[r * t + s] = rng.gen_range(1..vocab as u32);
        }
    }
    let ids = Tensor::from_vec(ids, (b, t), &Device::Cpu).unwrap();
    for cell in [Cell::Lstm, Cell::Gru] {
        for (bidirectional, layers) in [(false, 1), (true, 2)] {
            let c = cfg(cell, bidirectional, layers, Pooling::Mean);
            let fused = Classifier::new(&c, vocab, classes, 3, &Device::Cpu).unwrap();
            let mut reference = Classifier::new(&c, vocab, classes, 3, &Device::Cpu).unwrap();
            reference.set_kernel(Kernel::Reference);
            for round in 0..3 {
                let what = format!("{c:?} round {round}");
                let lf = fused.forward_inference(&ids, &lengths).unwrap();
                let lr = reference.forward_inference(&ids, &lengths).unwrap();
                assert!(rel_err(&lf, &lr) <= TOL, "logits differ: {what}");
                // New weights for the table's inputs, the same in both models.
                let emb = random(&mut rng, &[vocab, 8], 1.0);
                let emb: Vec<f32> = emb.flatten_all().unwrap().to_vec1().unwrap();
                fused.set_embedding(&emb).unwrap();
                reference.set_embedding(&emb).unwrap();
                let (_, w) = &fused.named_vars()[1];
                let (_, w_ref) = &reference.named_vars()[1];
                let scaled = (w.as_tensor() * 1.5).unwrap();
                w.set(&scaled).unwrap();
                w_ref.set(&scaled).unwrap();
            }
        }
    }
}

/// Whole models, fused vs reference, with the same seed and the same dropout stream:
/// logits and every parameter's gradient.
#[test]
fn fused_models_match_reference_logits_and_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (vocab, classes) = (40, 3);
    for cell in [Cell::Lstm, Cell::Gru] {
        for (bidirectional, layers, pooling) in [
            (false, 1, Pooling::Last),
            (true, 1, Pooling::Mean),
            (true, 2, Pooling::Max),
            (false, 3, Pooling::Last),
            (true, 2, Pooling::Last),
            (true, 2, Pooling::Attention),
        ] {
            for lengths in [vec![6, 2, 5, 1], vec![1], vec![3, 3]] {
                let b = lengths.len();
                let t = *lengths.iter().max().unwrap();
                let mut ids = vec![0u32; b * t];
                for (r, &l) in lengths.iter().enumerate() {
                    for s in 0..l {
                        ids[r * t + s] = rng.gen_range(1..vocab as u32);
                    }
                }
                let ids = Tensor::from_vec(ids, (b, t), &Device::Cpu).unwrap();
                let c = cfg(cell, bidirectional, layers, pooling);
                let fused = Classifier::new(&c, vocab, classes, 9, &Device::Cpu).unwrap();
                let mut reference = Classifier::new(&c, vocab, classes, 9, &Device::Cpu).unwrap();
                reference.set_kernel(Kernel::Reference);
                assert_eq!(fused.kernel(), Kernel::Fused);
                let what = format!("{c:?} lengths {lengths:?}");

                let mut d1 = ChaCha8Rng::seed_from_u64(1);
                let mut d2 = ChaCha8Rng::seed_from_u64(1);
                let lf = fused.forward(&ids, &lengths, Some(&mut d1)).unwrap();
                let lr = reference.forward(&ids, &lengths, Some(&mut d2)).unwrap();
                assert!(rel_err(&lf, &lr) <= TOL, "logits differ: {what}");
                let inf = fused.forward_inference(&ids, &lengths).unwrap();
                let inr = reference.forward_inference(&ids, &lengths).unwrap();
                assert!(
                    rel_err(&inf, &inr) <= TOL,
                    "inference logits differ: {what}"
                );

                let probe = random(&mut rng, &[b, classes], 1.0);
                let gf: GradStore = (lf * &probe)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let gr: GradStore = (lr * &probe)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                for ((name, vf), (_, vr)) in fused.named_vars().iter().zip(reference.named_vars()) {
                    let got = gf.get(vf.as_tensor()).unwrap();
                    let want = gr.get(vr.as_tensor()).unwrap();
                    let e = rel_err(got, want);
                    assert!(e <= TOL, "gradient of {name} differs by {e:.2e}: {what}");
                }
            }
        }
    }
}

/// Inference builds no graph: its logits carry no backprop op.
#[test]
fn inference_records_no_graph() {
    let c = cfg(Cell::Lstm, true, 2, Pooling::Last);
    let model = Classifier::new(&c, 30, 2, 1, &Device::Cpu).unwrap();
    let ids = Tensor::from_vec(vec![1u32, 2, 3, 4, 5, 0], (2, 3), &Device::Cpu).unwrap();
    let logits = model.forward_inference(&ids, &[3, 2]).unwrap();
    assert!(!logits.track_op());
    let grads = logits.sum_all().unwrap().backward().unwrap();
    for (name, v) in model.named_vars() {
        assert!(grads.get(v.as_tensor()).is_none(), "{name} got a gradient");
    }
    let train = model.forward(&ids, &[3, 2], None).unwrap();
    assert!(train.track_op());
}

/// The fused Adam/AdamW against the same update written with tensor ops, over
/// several steps, with weight decay; and state()/load_state() round-trips.
#[test]
fn fused_adam_matches_formula_and_state_round_trips() {
    for (kind, wd) in [
        (lab::spec::Optimizer::Adam, 0.0),
        (lab::spec::Optimizer::Adam, 0.1),
        (lab::spec::Optimizer::Adamw, 0.05),
    ] {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let start = random(&mut rng, &[7, 5], 1.0);
        let v = Var::from_tensor(&start).unwrap();
        let cfg = TrainSection {
            optimizer: kind,
            lr: 0.01,
            weight_decay: wd,
            ..TrainSection::default()
        };
        let mut opt = optim::build(&cfg, vec![v.clone()]);
        // Reference in f64 on the host.
        let mut theta: Vec<f64> = start
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect();
        let (mut m, mut s) = (vec![0f64; 35], vec![0f64; 35]);
        for step in 1..=5 {
            let g = random(&mut rng, &[7, 5], 1.0);
            let loss = (v.as_tensor() * &g).unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
            let gv: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
            let (b1, b2, lr) = (0.9f64, 0.999f64, 0.01f64);
            for i in 0..35 {
                let mut gi = gv[i] as f64;
                if kind == lab::spec::Optimizer::Adam {
                    gi += wd * theta[i];
                } else {
                    theta[i] *= 1.0 - lr * wd;
                }
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                s[i] = b2 * s[i] + (1.0 - b2) * gi * gi;
                let mh = m[i] / (1.0 - b1.powi(step));
                let vh = s[i] / (1.0 - b2.powi(step));
                theta[i] -= lr * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        for (g, w) in got.iter().zip(&theta) {
            assert!((*g as f64 - w).abs() < 1e-5, "{kind:?}: {g} vs {w}");
        }
        // A fresh optimizer loaded with the state continues identically.
        let state = opt.state().unwrap();
        assert!(state.iter().any(|(n, _)| n == "m.0"));
        let v2 = Var::from_tensor(&v.as_tensor().copy().unwrap()).unwrap();
        let mut opt2 = optim::build(&cfg, vec![v2.clone()]);
        opt2.load_state(state).unwrap();
        let g = random(&mut rng, &[7, 5], 1.0);
        for (o, var) in [(&mut opt, &v), (&mut opt2, &v2)] {
            let loss = (var.as_tensor() * &g).unwrap().sum_all().unwrap();
            o.step(&loss.backward().unwrap()).unwrap();
        }
        assert_eq!(rel_err(v.as_tensor(), v2.as_tensor()), 0.0);
        let _ = DType::F32;
    }
}
