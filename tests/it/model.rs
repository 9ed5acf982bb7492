//! The model module: recurrent layers against a plain-Rust f64 reference of PyTorch's
//! equations, gradients against finite differences, padding invariance, seeding,
//! save/load and dropout.

use candle_core::{DType, Device, Tensor, Var};
use lab::model::{Classifier, Projection, RecurrentLayer};
use lab::spec::{Cell, ModelSection, Pooling};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

const ALL_PROJECTIONS: [Projection; 3] = [
    Projection::BatchedTree,
    Projection::BatchedNarrow,
    Projection::PerStep,
];

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Row-major matrix (rows, cols) times vector.
fn matvec(w: &[f64], cols: usize, v: &[f64]) -> Vec<f64> {
    w.chunks(cols)
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

/// Raw weights of one direction in PyTorch layout, flattened row-major.
struct Weights {
    w_ih: Vec<f64>,
    w_hh: Vec<f64>,
    b_ih: Vec<f64>,
    b_hh: Vec<f64>,
}

fn gates(cell: Cell) -> usize {
    match cell {
        Cell::Lstm => 4,
        Cell::Gru => 3,
    }
}

fn random_vec(rng: &mut ChaCha8Rng, n: usize, bound: f64) -> Vec<f64> {
    (0..n).map(|_| rng.gen_range(-bound..bound)).collect()
}

fn random_weights(rng: &mut ChaCha8Rng, cell: Cell, input: usize, h: usize) -> Weights {
    let gh = gates(cell) * h;
    Weights {
        w_ih: random_vec(rng, gh * input, 0.6),
        w_hh: random_vec(rng, gh * h, 0.6),
        b_ih: random_vec(rng, gh, 0.6),
        b_hh: random_vec(rng, gh, 0.6),
    }
}

/// One sequence through one direction, straight from PyTorch's formulas.
/// `x` is [time][input]; returns outputs [time][h] (zero past `len`), final h and c.
fn reference(
    cell: Cell,
    w: &Weights,
    x: &[Vec<f64>],
    len: usize,
    h_dim: usize,
    reverse: bool,
) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
    let input = x[0].len();
    let mut h = vec![0.0; h_dim];
    let mut c = vec![0.0; h_dim];
    let mut outs = vec![vec![0.0; h_dim]; x.len()];
    let order: Vec<usize> = if reverse {
        (0..len).rev().collect()
    } else {
        (0..len).collect()
    };
    for t in order {
        let xi: Vec<f64> = matvec(&w.w_ih, input, &x[t])
            .iter()
            .zip(&w.b_ih)
            .map(|(a, b)| a + b)
            .collect();
        let hh: Vec<f64> = matvec(&w.w_hh, h_dim, &h)
            .iter()
            .zip(&w.b_hh)
            .map(|(a, b)| a + b)
            .collect();
        match cell {
            Cell::Lstm => {
                for k in 0..h_dim {
                    let i = sigmoid(xi[k] + hh[k]);
                    let f = sigmoid(xi[h_dim + k] + hh[h_dim + k]);
                    let g = (xi[2 * h_dim + k] + hh[2 * h_dim + k]).tanh();
                    let o = sigmoid(xi[3 * h_dim + k] + hh[3 * h_dim + k]);
                    c[k] = f * c[k] + i * g;
                    h[k] = o * c[k].tanh();
                }
            }
            Cell::Gru => {
                let mut next = vec![0.0; h_dim];
                for k in 0..h_dim {
                    let r = sigmoid(xi[k] + hh[k]);
                    let z = sigmoid(xi[h_dim + k] + hh[h_dim + k]);
                    let n = (xi[2 * h_dim + k] + r * hh[2 * h_dim + k]).tanh();
                    next[k] = (1.0 - z) * n + z * h[k];
                }
                h = next;
            }
        }
        outs[t] = h.clone();
    }
    (outs, h, c)
}

fn layer_from(
    cell: Cell,
    w: &Weights,
    input: usize,
    h: usize,
    reverse: bool,
    dtype: DType,
) -> RecurrentLayer {
    let dev = Device::Cpu;
    let gh = gates(cell) * h;
    let t = |v: &[f64], shape: &[usize]| {
        Tensor::from_vec(v.to_vec(), shape, &dev)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    };
    RecurrentLayer::new(
        cell,
        t(&w.w_ih, &[gh, input]),
        t(&w.w_hh, &[gh, h]),
        t(&w.b_ih, &[gh]),
        t(&w.b_hh, &[gh]),
        reverse,
    )
    .unwrap()
}

#[test]
fn layer_matches_scalar_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (input, h) = (3, 4);
    let mut checked = 0;
    for cell in [Cell::Lstm, Cell::Gru] {
        for reverse in [false, true] {
            for b in 2..=3 {
                for t in 1..=4 {
                    let w = random_weights(&mut rng, cell, input, h);
                    // [batch][time][input]
                    let x: Vec<Vec<Vec<f64>>> = (0..b)
                        .map(|_| (0..t).map(|_| random_vec(&mut rng, input, 1.0)).collect())
                        .collect();
                    let mut lengths: Vec<usize> = (0..b).map(|_| rng.gen_range(1..=t)).collect();
                    lengths[0] = t;
                    let mut flat = Vec::new();
                    for s in 0..t {
                        for row in &x {
                            flat.extend_from_slice(&row[s]);
                        }
                    }
                    let xt = Tensor::from_vec(flat, (t, b, input), &Device::Cpu)
                        .unwrap()
                        .to_dtype(DType::F32)
                        .unwrap();
                    for projection in ALL_PROJECTIONS {
                        let mut layer = layer_from(cell, &w, input, h, reverse, DType::F32);
                        layer.projection = projection;
                        let (outs, state) = layer.forward(&xt, Some(&lengths)).unwrap();
                        let outs: Vec<Vec<Vec<f32>>> = outs.to_vec3().unwrap();
                        let hs: Vec<Vec<f32>> = state.h.to_vec2().unwrap();
                        let cs: Option<Vec<Vec<f32>>> = state.c.map(|c| c.to_vec2().unwrap());
                        for (bi, seq) in x.iter().enumerate() {
                            let (r_outs, r_h, r_c) =
                                reference(cell, &w, seq, lengths[bi], h, reverse);
                            for s in 0..t {
                                for k in 0..h {
                                    let got = outs[s][bi][k] as f64;
                                    assert!(
                                        (got - r_outs[s][k]).abs() < 1e-5,
                                        "{cell:?} rev={reverse} {projection:?} out[{s}][{bi}][{k}]: {got} vs {}",
                                        r_outs[s][k]
                                    );
                                }
                            }
                            for k in 0..h {
                                assert!((hs[bi][k] as f64 - r_h[k]).abs() < 1e-5);
                                if let Some(cs) = &cs {
                                    assert!((cs[bi][k] as f64 - r_c[k]).abs() < 1e-5);
                                }
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * 2 * (2 + 3) * 4 * 3);
}

/// A scalar loss that touches every output and the final state, with fixed weights
/// so that errors in any position show up.
fn layer_loss(layer: &RecurrentLayer, x: &Tensor, lengths: &[usize]) -> Tensor {
    let (outs, state) = layer.forward(x, Some(lengths)).unwrap();
    let n = outs.elem_count();
    let r: Vec<f64> = (0..n).map(|i| ((i * 7 % 11) as f64 - 5.0) / 5.0).collect();
    let r = Tensor::from_vec(r, outs.shape(), x.device()).unwrap();
    let mut loss = (outs * r).unwrap().sum_all().unwrap();
    loss = (loss + state.h.sqr().unwrap().sum_all().unwrap()).unwrap();
    if let Some(c) = state.c {
        loss = (loss + (c * 0.5).unwrap().sum_all().unwrap()).unwrap();
    }
    loss
}

#[test]
fn gradients_match_finite_differences() {
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (t, b, input, h) = (4, 3, 3, 4);
    let lengths = [4, 2, 3];
    for cell in [Cell::Lstm, Cell::Gru] {
        for reverse in [false, true] {
            for projection in ALL_PROJECTIONS {
                let w = random_weights(&mut rng, cell, input, h);
                let x = random_vec(&mut rng, t * b * input, 1.0);
                let gh = gates(cell) * h;
                let params: Vec<(&str, Vec<f64>, Vec<usize>)> = vec![
                    ("w_ih", w.w_ih.clone(), vec![gh, input]),
                    ("w_hh", w.w_hh.clone(), vec![gh, h]),
                    ("b_ih", w.b_ih.clone(), vec![gh]),
                    ("b_hh", w.b_hh.clone(), vec![gh]),
                    ("x", x.clone(), vec![t, b, input]),
                ];
                let build = |vals: &[Vec<f64>]| -> Vec<Var> {
                    vals.iter()
                        .zip(&params)
                        .map(|(v, (_, _, s))| Var::from_vec(v.clone(), s.as_slice(), &dev).unwrap())
                        .collect()
                };
                let loss_of = |vars: &[Var]| -> Tensor {
                    let mut layer = RecurrentLayer::new(
                        cell,
                        vars[0].as_tensor().clone(),
                        vars[1].as_tensor().clone(),
                        vars[2].as_tensor().clone(),
                        vars[3].as_tensor().clone(),
                        reverse,
                    )
                    .unwrap();
                    layer.projection = projection;
                    layer_loss(&layer, vars[4].as_tensor(), &lengths)
                };
                let base: Vec<Vec<f64>> = params.iter().map(|p| p.1.clone()).collect();
                let vars = build(&base);
                let grads = loss_of(&vars).backward().unwrap();
                let eps = 1e-6;
                for (pi, (name, values, _)) in params.iter().enumerate() {
                    let g: Vec<f64> = grads
                        .get(&vars[pi])
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1()
                        .unwrap();
                    let mut any_nonzero = false;
                    for i in 0..values.len() {
                        let mut plus = base.clone();
                        plus[pi][i] += eps;
                        let mut minus = base.clone();
                        minus[pi][i] -= eps;
                        let lp: f64 = loss_of(&build(&plus)).to_scalar().unwrap();
                        let lm: f64 = loss_of(&build(&minus)).to_scalar().unwrap();
                        let fd = (lp - lm) / (2.0 * eps);
                        assert!(
                            (g[i] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                            "{cell:?} rev={reverse} {projection:?} d/d{name}[{i}]: autograd {} vs fd {fd}",
                            g[i]
                        );
                        any_nonzero |= fd.abs() > 1e-6;
                    }
                    assert!(any_nonzero, "{name} has an all-zero gradient");
                }
            }
        }
    }
}

fn small_cfg(cell: Cell, bidirectional: bool, pooling: Pooling, layers: usize) -> ModelSection {
    ModelSection {
        cell,
        bidirectional,
        layers,
        embedding_dim: 5,
        hidden: 6,
        dropout: 0.3,
        pooling,
        embeddings: None,
    }
}

/// Right-pads `seqs` with 0 to `time` steps.
fn batch(seqs: &[Vec<u32>], time: usize) -> (Tensor, Vec<usize>) {
    let mut ids = Vec::new();
    for s in seqs {
        ids.extend_from_slice(s);
        ids.extend(std::iter::repeat_n(0, time - s.len()));
    }
    let t = Tensor::from_vec(ids, (seqs.len(), time), &Device::Cpu).unwrap();
    (t, seqs.iter().map(|s| s.len()).collect())
}

fn logits(model: &Classifier, seqs: &[Vec<u32>], time: usize) -> Vec<Vec<f32>> {
    let (ids, lengths) = batch(seqs, time);
    model
        .forward(&ids, &lengths, None)
        .unwrap()
        .to_vec2()
        .unwrap()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < tol, "{what}: {a:?} vs {b:?}");
    }
}

#[test]
fn logits_do_not_depend_on_padding() {
    let seqs = vec![vec![3, 7, 2, 9, 4], vec![5, 1], vec![8, 8, 6]];
    for cell in [Cell::Lstm, Cell::Gru] {
        for bi in [false, true] {
            for pooling in [
                Pooling::Last,
                Pooling::Mean,
                Pooling::Max,
                Pooling::Attention,
            ] {
                let cfg = small_cfg(cell, bi, pooling, 2);
                let model = Classifier::new(&cfg, 12, 3, 5, &Device::Cpu).unwrap();
                let what = format!("{cell:?} bi={bi} {pooling:?}");
                let tight = logits(&model, &seqs, 5);
                let loose = logits(&model, &seqs, 9);
                for (i, s) in seqs.iter().enumerate() {
                    assert_close(
                        &tight[i],
                        &loose[i],
                        1e-5,
                        &format!("{what} more padding, seq {i}"),
                    );
                    let alone = logits(&model, std::slice::from_ref(s), s.len());
                    assert_close(
                        &tight[i],
                        &alone[0],
                        1e-5,
                        &format!("{what} alone, seq {i}"),
                    );
                }
                // The check above means something only if sequences differ.
                assert!(
                    (tight[0][0] - tight[1][0]).abs() > 1e-4,
                    "{what}: {tight:?}"
                );
                let (ids, lengths) = batch(&seqs, 9);
                let inf: Vec<Vec<f32>> = model
                    .forward_inference(&ids, &lengths)
                    .unwrap()
                    .to_vec2()
                    .unwrap();
                for i in 0..seqs.len() {
                    assert_close(
                        &inf[i],
                        &loose[i],
                        1e-6,
                        &format!("{what} inference, seq {i}"),
                    );
                }
            }
        }
    }
}

#[test]
fn projections_agree_on_the_whole_model() {
    let seqs = vec![vec![3, 7, 2, 9, 4], vec![5, 1], vec![8, 8, 6]];
    let cfg = small_cfg(Cell::Lstm, true, Pooling::Mean, 2);
    let mut model = Classifier::new(&cfg, 12, 3, 5, &Device::Cpu).unwrap();
    let base = logits(&model, &seqs, 6);
    for p in ALL_PROJECTIONS {
        model.set_projection(p);
        let other = logits(&model, &seqs, 6);
        for i in 0..seqs.len() {
            assert_close(&base[i], &other[i], 1e-5, &format!("{p:?}"));
        }
    }
}

#[test]
fn empty_sequences_and_batches_are_handled() {
    let cfg = small_cfg(Cell::Gru, true, Pooling::Max, 1);
    let model = Classifier::new(&cfg, 12, 2, 1, &Device::Cpu).unwrap();
    let out = logits(&model, &[vec![], vec![4, 2]], 2);
    // An empty sequence pools to zeros, so its logits are the head's bias.
    let bias: Vec<f32> = model
        .named_vars()
        .last()
        .unwrap()
        .1
        .as_tensor()
        .to_vec1()
        .unwrap();
    assert_close(&out[0], &bias, 1e-6, "empty sequence");
    let out = logits(&model, &[vec![], vec![]], 0);
    assert_close(&out[1], &bias, 1e-6, "empty batch");
    let (ids, _) = batch(&[vec![1, 2]], 2);
    assert!(model.forward(&ids, &[3], None).is_err());
    assert!(model.forward(&ids, &[1, 1], None).is_err());
}

#[test]
fn seed_fixes_the_weights() {
    let cfg = small_cfg(Cell::Lstm, true, Pooling::Last, 2);
    let seqs = vec![vec![3, 7, 2], vec![5, 1, 9]];
    let a = Classifier::new(&cfg, 12, 3, 42, &Device::Cpu).unwrap();
    let b = Classifier::new(&cfg, 12, 3, 42, &Device::Cpu).unwrap();
    let c = Classifier::new(&cfg, 12, 3, 43, &Device::Cpu).unwrap();
    assert_eq!(logits(&a, &seqs, 3), logits(&b, &seqs, 3));
    let (la, lc) = (logits(&a, &seqs, 3), logits(&c, &seqs, 3));
    assert!((la[0][0] - lc[0][0]).abs() > 1e-4, "{la:?} vs {lc:?}");
}

#[test]
fn init_follows_pytorch_schemes() {
    let cfg = ModelSection {
        hidden: 64,
        embedding_dim: 32,
        bidirectional: true,
        ..ModelSection::default()
    };
    let model = Classifier::new(&cfg, 500, 4, 3, &Device::Cpu).unwrap();
    let vars: HashMap<String, Var> = model.named_vars().into_iter().collect();
    let names: Vec<String> = model.named_vars().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "embedding.weight",
            "rnn.0.fwd.w_ih",
            "rnn.0.fwd.w_hh",
            "rnn.0.fwd.b_ih",
            "rnn.0.fwd.b_hh",
            "rnn.0.bwd.w_ih",
            "rnn.0.bwd.w_hh",
            "rnn.0.bwd.b_ih",
            "rnn.0.bwd.b_hh",
            "head.weight",
            "head.bias"
        ]
    );
    let values = |n: &str| -> Vec<f32> {
        vars[n]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let emb: Vec<Vec<f32>> = vars["embedding.weight"].as_tensor().to_vec2().unwrap();
    assert!(emb[0].iter().all(|&v| v == 0.0), "pad row must be zero");
    let rest: Vec<f32> = emb[1..].concat();
    let mean = rest.iter().sum::<f32>() / rest.len() as f32;
    let var = rest.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / rest.len() as f32;
    assert!(
        mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
        "N(0,1)? mean {mean} var {var}"
    );
    let bound = 1.0 / 8.0;
    let w = values("rnn.0.bwd.w_hh");
    assert_eq!(w.len(), 4 * 64 * 64);
    assert!(w.iter().all(|v| v.abs() <= bound));
    // U(-b, b) has variance b²/3.
    let var = w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32;
    assert!(
        (var - bound * bound / 3.0).abs() < 0.1 * bound * bound / 3.0,
        "{var}"
    );
    let head_bound = 1.0 / (128f32).sqrt();
    let hw = values("head.weight");
    assert!(hw.iter().all(|v| v.abs() <= head_bound));
    assert!(hw.iter().any(|v| v.abs() > 0.5 * head_bound));
    assert!(vars.values().all(|v| v.dtype() == DType::F32));
}

#[test]
fn every_parameter_gets_a_gradient() {
    let cfg = small_cfg(Cell::Gru, true, Pooling::Max, 2);
    let model = Classifier::new(&cfg, 12, 3, 9, &Device::Cpu).unwrap();
    let (ids, lengths) = batch(&[vec![3, 7, 2, 9], vec![5, 1]], 4);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let loss = model
        .forward(&ids, &lengths, Some(&mut rng))
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    for (name, v) in model.named_vars() {
        let g = grads
            .get(&v)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(norm > 0.0, "{name} has a zero gradient");
    }
    // Inference builds no graph: nothing to differentiate.
    let inf = model
        .forward_inference(&ids, &lengths)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = inf.backward().unwrap();
    assert!(model
        .named_vars()
        .iter()
        .all(|(_, v)| grads.get(v).is_none()));
}

#[test]
fn save_load_round_trip_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let cfg = small_cfg(Cell::Lstm, true, Pooling::Mean, 2);
    let model = Classifier::new(&cfg, 12, 3, 77, &Device::Cpu).unwrap();
    model.save(&path).unwrap();
    let seqs = vec![vec![3, 7, 2], vec![5, 1]];
    let loaded = Classifier::load(&cfg, 12, 3, &path, &Device::Cpu).unwrap();
    assert_eq!(logits(&model, &seqs, 4), logits(&loaded, &seqs, 4));

    // A wrong shape names the tensor.
    let mut tensors: HashMap<String, Tensor> = model
        .named_vars()
        .into_iter()
        .map(|(n, v)| (n, v.as_detached_tensor()))
        .collect();
    tensors.insert(
        "head.weight".into(),
        Tensor::zeros((3, 7), DType::F32, &Device::Cpu).unwrap(),
    );
    let bad = dir.path().join("bad.safetensors");
    candle_core::safetensors::save(&tensors, &bad).unwrap();
    let err = Classifier::load(&cfg, 12, 3, &bad, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("head.weight") && err.contains("[3, 7]"),
        "{err}"
    );

    // A config with more tensors than the file: the missing one is named.
    let three = ModelSection {
        layers: 3,
        ..cfg.clone()
    };
    let err = Classifier::load(&three, 12, 3, &path, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("rnn.2.fwd.w_ih"), "{err}");
    // A file with a tensor the config lacks: the extra one is named.
    tensors.insert(
        "head.weight".into(),
        model
            .named_vars()
            .into_iter()
            .find(|(n, _)| n == "head.weight")
            .unwrap()
            .1
            .as_detached_tensor(),
    );
    tensors.insert(
        "rnn.0.side.w_ih".into(),
        Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &bad).unwrap();
    let err = Classifier::load(&cfg, 12, 3, &bad, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("rnn.0.side.w_ih"), "{err}");
    let missing = dir.path().join("none.safetensors");
    let err = Classifier::load(&cfg, 12, 3, &missing, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("none.safetensors"), "{err}");
}

#[test]
fn dropout_only_with_an_rng() {
    let cfg = small_cfg(Cell::Lstm, true, Pooling::Last, 2);
    let model = Classifier::new(&cfg, 12, 3, 1, &Device::Cpu).unwrap();
    let (ids, lengths) = batch(&[vec![3, 7, 2, 9], vec![5, 1]], 4);
    let eval = |m: &Classifier| -> Vec<Vec<f32>> {
        m.forward(&ids, &lengths, None).unwrap().to_vec2().unwrap()
    };
    let train = |m: &Classifier, seed| -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        m.forward(&ids, &lengths, Some(&mut rng))
            .unwrap()
            .to_vec2()
            .unwrap()
    };
    assert_eq!(eval(&model), eval(&model));
    assert_eq!(train(&model, 5), train(&model, 5));
    assert_ne!(train(&model, 5), eval(&model));
    assert_ne!(train(&model, 5), train(&model, 6));
    // With a rate of 0 an rng changes nothing.
    let mut cfg0 = cfg.clone();
    cfg0.dropout = 0.0;
    let model0 = Classifier::new(&cfg0, 12, 3, 1, &Device::Cpu).unwrap();
    assert_eq!(train(&model0, 5), eval(&model0));
}

#[test]
fn dropout_keeps_the_expected_value() {
    let x = Tensor::ones((100, 100), DType::F32, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let y: Vec<f32> = lab::model::dropout::dropout(&x, 0.25, &mut rng)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f32 / y.len() as f32;
    assert!((zeros - 0.25).abs() < 0.02, "{zeros}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
}

/// Forward+backward time of the speed-relevant configuration (B=64, T=40, E=100,
/// H=128, bidirectional LSTM) for every way of computing the input projection. Run with
/// `CANDLE_NUM_THREADS=1 cargo test --test model bench -- --ignored --nocapture`.
/// Measured on the shared 2-core box, 1 thread, median of 7: BatchedTree ~189 ms,
/// PerStep ~192 ms, BatchedNarrow ~250 ms (its backward is quadratic in T).
#[test]
#[ignore]
fn bench_recurrent() {
    let (b, t, e, h) = (64, 40, 100, 128);
    let cfg = ModelSection {
        cell: Cell::Lstm,
        bidirectional: true,
        layers: 1,
        embedding_dim: e,
        hidden: h,
        dropout: 0.3,
        pooling: Pooling::Last,
        embeddings: None,
    };
    let mut model = Classifier::new(&cfg, 5000, 2, 0, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let ids: Vec<u32> = (0..b * t).map(|_| rng.gen_range(1..5000)).collect();
    let ids = Tensor::from_vec(ids, (b, t), &Device::Cpu).unwrap();
    let lengths: Vec<usize> = (0..b).map(|i| t - i % 8).collect();
    for p in ALL_PROJECTIONS {
        model.set_projection(p);
        let mut times = Vec::new();
        for _ in 0..7 {
            let start = std::time::Instant::now();
            let loss = model
                .forward(&ids, &lengths, Some(&mut rng))
                .unwrap()
                .sum_all()
                .unwrap();
            let _ = loss.backward().unwrap();
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let start = std::time::Instant::now();
        let _ = model.forward_inference(&ids, &lengths).unwrap();
        let inf = start.elapsed().as_secs_f64() * 1e3;
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{p:?}: forward+backward best {:.1} ms, median {:.1} ms; inference {inf:.1} ms",
            times[0], times[3]
        );
    }
}
