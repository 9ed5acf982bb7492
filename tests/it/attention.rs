//! Attention pooling: the weights against a hand computation, masking of padded
//! positions, gradients, save/load, and the model with every cell and depth.

use candle_core::{DType, Device, Tensor, Var};
use lab::model::{pooling, Classifier};
use lab::spec::{Cell, ModelSection, Pooling};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

fn cfg(cell: Cell, bidirectional: bool, layers: usize) -> ModelSection {
    ModelSection {
        cell,
        bidirectional,
        layers,
        embedding_dim: 5,
        hidden: 6,
        dropout: 0.3,
        pooling: Pooling::Attention,
        ..ModelSection::default()
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

/// score = v · tanh(W h + b) per true position, softmax over those, weighted sum;
/// all in f64 with plain loops.
fn reference(
    outputs: &[Vec<Vec<f32>>],
    w: &[Vec<f32>],
    b: &[f32],
    v: &[f32],
    lengths: &[usize],
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let t = outputs.len();
    let d = outputs[0][0].len();
    let mut weights = vec![vec![0.0; t]; lengths.len()];
    let mut pooled = vec![vec![0.0; d]; lengths.len()];
    for (i, &len) in lengths.iter().enumerate() {
        let scores: Vec<f64> = (0..len)
            .map(|s| {
                let h = &outputs[s][i];
                (0..v.len())
                    .map(|a| {
                        let z: f64 =
                            (0..d).map(|k| w[a][k] as f64 * h[k] as f64).sum::<f64>() + b[a] as f64;
                        v[a] as f64 * z.tanh()
                    })
                    .sum()
            })
            .collect();
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        for s in 0..len {
            weights[i][s] = exps[s] / total;
            for k in 0..d {
                pooled[i][k] += weights[i][s] * outputs[s][i][k] as f64;
            }
        }
    }
    (weights, pooled)
}

#[test]
fn weights_and_pooled_output_match_a_hand_computation() {
    // T = 4 steps, B = 3 sequences (lengths 4, 2, 1), D = 3 features, A = 2.
    let outputs = vec![
        vec![
            vec![0.5, -1.0, 0.2],
            vec![1.0, 0.0, -0.5],
            vec![0.3, 0.3, 0.3],
        ],
        vec![
            vec![-0.4, 0.8, 1.5],
            vec![0.2, 0.9, 0.1],
            vec![0.0, 0.0, 0.0],
        ],
        vec![
            vec![1.2, 0.1, -0.7],
            vec![0.0, 0.0, 0.0],
            vec![0.0, 0.0, 0.0],
        ],
        vec![
            vec![0.0, -0.3, 0.6],
            vec![0.0, 0.0, 0.0],
            vec![0.0, 0.0, 0.0],
        ],
    ];
    let w = vec![vec![0.7, -0.2, 0.4], vec![-0.5, 0.9, 0.3]];
    let b = vec![0.1, -0.2];
    let v = vec![1.3, -0.8];
    let lengths = [4, 2, 1];
    let dev = Device::Cpu;
    let flat: Vec<f32> = outputs.iter().flatten().flatten().copied().collect();
    let out_t = Tensor::from_vec(flat, (4, 3, 3), &dev).unwrap();
    let w_t = Tensor::from_vec(
        w.iter().flatten().copied().collect::<Vec<_>>(),
        (2, 3),
        &dev,
    )
    .unwrap();
    let b_t = Tensor::new(b.as_slice(), &dev).unwrap();
    let v_t = Tensor::new(v.as_slice(), &dev).unwrap();
    let weights = pooling::attention_weights(&out_t, &w_t, &b_t, &v_t, &lengths).unwrap();
    let pooled = pooling::attend(&out_t, &weights).unwrap();
    let (want_w, want_p) = reference(&outputs, &w, &b, &v, &lengths);

    let got_w: Vec<Vec<f32>> = weights.t().unwrap().to_vec2().unwrap();
    let got_p: Vec<Vec<f32>> = pooled.to_vec2().unwrap();
    for i in 0..3 {
        for s in 0..4 {
            assert!(
                (got_w[i][s] as f64 - want_w[i][s]).abs() < 1e-6,
                "weight seq {i} step {s}: {} vs {}",
                got_w[i][s],
                want_w[i][s]
            );
            if s >= lengths[i] {
                assert_eq!(got_w[i][s], 0.0, "padded step {s} of seq {i} has weight");
            }
        }
        for k in 0..3 {
            assert!(
                (got_p[i][k] as f64 - want_p[i][k]).abs() < 1e-6,
                "pooled seq {i} feature {k}: {} vs {}",
                got_p[i][k],
                want_p[i][k]
            );
        }
    }
    // The case means something only if the weights are not uniform.
    assert!((got_w[0][0] - 0.25).abs() > 1e-3, "{got_w:?}");
    assert_eq!(
        got_w[2][0], 1.0,
        "a length-1 sequence attends to its one step"
    );
}

#[test]
fn padded_positions_get_zero_weight_whatever_they_hold() {
    // Large values at padded steps must not leak into the weights or the sum.
    let dev = Device::Cpu;
    let mut data = vec![0.1f32; 3 * 2 * 2];
    for k in 0..2 {
        data[(2 * 2 + 1) * 2 + k] = 1e4; // step 2 of sequence 1 (length 2)
    }
    let outputs = Tensor::from_vec(data, (3, 2, 2), &dev).unwrap();
    let w = Tensor::new(&[[1.0f32, 0.5], [0.3, -1.0]], &dev).unwrap();
    let b = Tensor::new(&[0.0f32, 0.1], &dev).unwrap();
    let v = Tensor::new(&[2.0f32, 1.0], &dev).unwrap();
    let weights = pooling::attention_weights(&outputs, &w, &b, &v, &[3, 2]).unwrap();
    let w2: Vec<Vec<f32>> = weights.to_vec2().unwrap();
    assert_eq!(w2[2][1], 0.0);
    let pooled: Vec<Vec<f32>> = pooling::attend(&outputs, &weights)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert!((pooled[1][0] - 0.1).abs() < 1e-6, "{pooled:?}");
    // An empty sequence pools to zeros (its one eligible step is zero).
    let zeros = Tensor::zeros((2, 1, 2), DType::F32, &dev).unwrap();
    let wz = pooling::attention_weights(&zeros, &w, &b, &v, &[0]).unwrap();
    let pz: Vec<Vec<f32>> = pooling::attend(&zeros, &wz).unwrap().to_vec2().unwrap();
    assert_eq!(pz, vec![vec![0.0, 0.0]]);
}

#[test]
fn model_weights_are_masked_and_sum_to_one_for_every_cell_and_depth() {
    let seqs = vec![vec![3, 7, 2, 9, 4], vec![5, 1], vec![8]];
    for cell in [Cell::Lstm, Cell::Gru] {
        for (bi, layers) in [(false, 1), (true, 1), (true, 2), (false, 3)] {
            let model = Classifier::new(&cfg(cell, bi, layers), 12, 2, 4, &Device::Cpu).unwrap();
            let (ids, lengths) = batch(&seqs, 7);
            let w: Vec<Vec<f32>> = model
                .attention_weights(&ids, &lengths)
                .unwrap()
                .expect("attention model")
                .to_vec2()
                .unwrap();
            for (i, row) in w.iter().enumerate() {
                let sum: f32 = row.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-5,
                    "{cell:?} bi={bi} seq {i}: {row:?}"
                );
                assert!(row[lengths[i]..].iter().all(|&x| x == 0.0), "{row:?}");
                assert!(row[..lengths[i]].iter().all(|&x| x > 0.0), "{row:?}");
            }
            // More padding changes nothing: not the weights, not the logits.
            let (ids9, _) = batch(&seqs, 9);
            let w9: Vec<Vec<f32>> = model
                .attention_weights(&ids9, &lengths)
                .unwrap()
                .unwrap()
                .to_vec2()
                .unwrap();
            for i in 0..seqs.len() {
                for s in 0..7 {
                    assert!((w[i][s] - w9[i][s]).abs() < 1e-6);
                }
            }
            let a: Vec<Vec<f32>> = model
                .forward_inference(&ids, &lengths)
                .unwrap()
                .to_vec2()
                .unwrap();
            let b: Vec<Vec<f32>> = model
                .forward_inference(&ids9, &lengths)
                .unwrap()
                .to_vec2()
                .unwrap();
            for i in 0..seqs.len() {
                for k in 0..2 {
                    assert!((a[i][k] - b[i][k]).abs() < 1e-5);
                }
            }
        }
    }
    // Other poolings have no attention weights.
    let max = ModelSection {
        pooling: Pooling::Max,
        ..cfg(Cell::Lstm, false, 1)
    };
    let model = Classifier::new(&max, 12, 2, 4, &Device::Cpu).unwrap();
    let (ids, lengths) = batch(&seqs, 5);
    assert!(model.attention_weights(&ids, &lengths).unwrap().is_none());
    assert!(!model
        .named_vars()
        .iter()
        .any(|(n, _)| n.starts_with("attention")));
}

fn loss(model: &Classifier, ids: &Tensor, lengths: &[usize]) -> Tensor {
    model
        .forward(ids, lengths, None)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
}

#[test]
fn gradients_reach_the_attention_and_match_finite_differences() {
    let model = Classifier::new(&cfg(Cell::Lstm, true, 2), 12, 3, 9, &Device::Cpu).unwrap();
    let (ids, lengths) = batch(&[vec![3, 7, 2, 9], vec![5, 1]], 4);
    let grads = loss(&model, &ids, &lengths).backward().unwrap();
    let vars: HashMap<String, Var> = model.named_vars().into_iter().collect();
    for name in ["attention.weight", "attention.bias", "attention.v"] {
        assert!(vars.contains_key(name), "no parameter {name}");
    }
    for (name, v) in model.named_vars() {
        let g = grads
            .get(&v)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(norm > 0.0, "{name} has a zero gradient");
    }
    // Central differences on a few entries of each attention parameter.
    let eps = 1e-2f32;
    for name in ["attention.weight", "attention.bias", "attention.v"] {
        let var = &vars[name];
        let g: Vec<f32> = grads
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        for i in [0, base.len() / 2, base.len() - 1] {
            let at = |delta: f32| {
                let mut p = base.clone();
                p[i] += delta;
                var.set(&Tensor::from_vec(p, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                let l: f32 = loss(&model, &ids, &lengths).to_scalar().unwrap();
                l
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps);
            var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            assert!(
                (fd - g[i]).abs() <= 2e-2 * (1.0 + fd.abs()),
                "{name}[{i}]: autograd {} vs finite difference {fd}",
                g[i]
            );
        }
    }
}

#[test]
fn attention_models_train_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let c = cfg(Cell::Gru, true, 1);
    let model = Classifier::new(&c, 12, 2, 5, &Device::Cpu).unwrap();
    // A few Adam steps through the fused path change the attention parameters.
    let mut opt = lab::train::optim::build(&Default::default(), model.trainable_vars());
    let before: Vec<f32> = model.named_vars()[model.named_vars().len() - 3]
        .1
        .as_tensor()
        .to_vec1()
        .unwrap();
    let (ids, lengths) = batch(&[vec![3, 7, 2], vec![5, 1]], 3);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..3 {
        let l = model
            .forward(&ids, &lengths, Some(&mut rng))
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        opt.step(&l.backward().unwrap()).unwrap();
    }
    let (name, v) = &model.named_vars()[model.named_vars().len() - 3];
    assert_eq!(name, "attention.v");
    assert_ne!(before, v.as_tensor().to_vec1::<f32>().unwrap());

    model.save(&path).unwrap();
    let loaded = Classifier::load(&c, 12, 2, &path, &Device::Cpu).unwrap();
    let a: Vec<Vec<f32>> = model
        .forward_inference(&ids, &lengths)
        .unwrap()
        .to_vec2()
        .unwrap();
    let b: Vec<Vec<f32>> = loaded
        .forward_inference(&ids, &lengths)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(a, b);
    // Weights saved without attention do not load into an attention model.
    let plain = ModelSection {
        pooling: Pooling::Mean,
        ..c.clone()
    };
    let other = dir.path().join("plain.safetensors");
    Classifier::new(&plain, 12, 2, 5, &Device::Cpu)
        .unwrap()
        .save(&other)
        .unwrap();
    let err = Classifier::load(&c, 12, 2, &other, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("attention.weight"), "{err}");
}
