//! `train.sparse_embedding`: the embedding's row gradients instead of a dense one.
//! Exact for SGD without momentum (clipping included); lazy for Adam, which
//! matches dense Adam on its first step and leaves rows the batches never used
//! untouched; the real `lab` binary trains quick.toml with it.

use crate::common::{lab, ok};
use candle_core::{Device, Tensor};
use lab::data::Batch;
use lab::model::Classifier;
use lab::spec::{Cell, ModelSection, Optimizer, Pooling, TrainSection};
use lab::train::{optim, train_step, StepOptions, Trainable};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 30;

fn model(cell: Cell, sparse: bool) -> Classifier {
    let cfg = ModelSection {
        cell,
        bidirectional: true,
        layers: 1,
        embedding_dim: 6,
        hidden: 5,
        dropout: 0.0,
        pooling: Pooling::Mean,
        embeddings: None,
    };
    let mut m = Classifier::new(&cfg, VOCAB, 3, 4, &Device::Cpu).unwrap();
    if sparse {
        m.enable_sparse_embedding();
    }
    m
}

/// A batch of ragged rows using ids from `ids` only (0 is padding).
fn batch(ids: &[u32], lengths: &[usize]) -> Batch {
    let time = *lengths.iter().max().unwrap();
    let mut flat = vec![0u32; lengths.len() * time];
    let mut next = ids.iter().cycle();
    for (r, &l) in lengths.iter().enumerate() {
        for t in 0..l {
            flat[r * time + t] = *next.next().unwrap();
        }
    }
    Batch {
        ids: flat,
        lengths: lengths.to_vec(),
        labels: (0..lengths.len() as u32).map(|i| i % 3).collect(),
        rows: (0..lengths.len()).collect(),
        batch: lengths.len(),
        time,
    }
}

fn train_section(optimizer: Optimizer, grad_clip: f64) -> TrainSection {
    TrainSection {
        optimizer,
        lr: 0.05,
        momentum: 0.0,
        grad_clip,
        ..TrainSection::default()
    }
}

/// Runs the batches through `train_step` on a dense and a sparse copy of one model.
fn train_both(cfg: &TrainSection, cell: Cell, batches: &[Batch]) -> (Classifier, Classifier) {
    let (dense, sparse) = (model(cell, false), model(cell, true));
    for net in [&dense, &sparse] {
        let mut opt = optim::build(cfg, net.vars());
        let opts = StepOptions {
            class_weights: None,
            grad_clip: cfg.grad_clip,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for b in batches {
            train_step(net, opt.as_mut(), b, &opts, &mut rng, &Device::Cpu).unwrap();
        }
        // Nothing is left waiting in the slot once the step has run.
        assert!(net.take_sparse_embedding_grad().is_none());
    }
    (dense, sparse)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn max_diff(a: &Classifier, b: &Classifier) -> f32 {
    a.named_vars()
        .iter()
        .zip(b.named_vars())
        .flat_map(|((_, x), (_, y))| {
            values(x.as_tensor())
                .into_iter()
                .zip(values(y.as_tensor()))
                .map(|(p, q)| (p - q).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f32::max)
}

fn embedding_row(m: &Classifier, id: usize) -> Vec<f32> {
    let (_, e) = &m.named_vars()[0];
    values(&e.as_tensor().get(id).unwrap())
}

#[test]
fn sgd_rows_are_exactly_dense_sgd_with_and_without_clipping() {
    let batches = [
        batch(&[3, 4, 5, 4, 9], &[4, 2, 3]),
        batch(&[7, 3, 11, 12], &[3, 3]),
        batch(&[4, 4, 4, 20], &[1, 4, 2]),
    ];
    for cell in [Cell::Lstm, Cell::Gru] {
        // 0.05 clips every step here (the norms are larger), 0 never does.
        for clip in [0.0, 0.05] {
            let (dense, sparse) = train_both(&train_section(Optimizer::Sgd, clip), cell, &batches);
            let d = max_diff(&dense, &sparse);
            assert!(d < 1e-6, "{cell:?} clip {clip}: differ by {d}");
            // And training did move the used rows.
            assert_ne!(
                embedding_row(&sparse, 4),
                embedding_row(&model(cell, true), 4)
            );
        }
    }
}

#[test]
fn lazy_adam_matches_dense_adam_on_its_first_step_and_leaves_unused_rows() {
    let first = batch(&[3, 4, 5, 6], &[3, 2]);
    let second = batch(&[7, 8, 9], &[2, 3]);
    let cfg = train_section(Optimizer::Adam, 1.0);
    let (dense, sparse) = train_both(&cfg, Cell::Lstm, std::slice::from_ref(&first));
    let d = max_diff(&dense, &sparse);
    assert!(d < 1e-6, "after one step: differ by {d}");

    let (dense, sparse) = train_both(&cfg, Cell::Lstm, &[first, second]);
    let fresh = model(Cell::Lstm, true);
    // Row 20 was never used: lazy Adam never touched it (and dense Adam, whose
    // moments for it stayed zero, did not either).
    assert_eq!(embedding_row(&sparse, 20), embedding_row(&fresh, 20));
    assert_eq!(embedding_row(&dense, 20), embedding_row(&fresh, 20));
    // Row 3 was used in the first batch only: dense Adam keeps moving it with
    // its momentum in the second step, lazy Adam does not.
    assert_ne!(embedding_row(&dense, 3), embedding_row(&sparse, 3));
    // Row 8, used in the second batch, moved in both.
    assert_ne!(embedding_row(&sparse, 8), embedding_row(&fresh, 8));
}

#[test]
fn inference_is_unchanged_and_records_no_rows() {
    let b = batch(&[3, 4, 5, 6], &[3, 2]);
    let ids = Tensor::from_slice(&b.ids, (b.batch, b.time), &Device::Cpu).unwrap();
    let (dense, sparse) = (model(Cell::Gru, false), model(Cell::Gru, true));
    let a = values(&dense.forward_inference(&ids, &b.lengths).unwrap());
    let c = values(&sparse.forward_inference(&ids, &b.lengths).unwrap());
    assert_eq!(a, c);
    assert!(sparse.take_sparse_embedding_grad().is_none());
}

#[test]
fn lab_run_trains_with_sparse_embedding() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    ok(&lab(&[
        "run",
        "experiments/quick.toml",
        "--db",
        db.to_str().unwrap(),
        "--set",
        "train.sparse_embedding=true",
        "--set",
        "experiment.seeds=[3]",
    ]));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (done, sparse): (i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(json_extract(config_json, '$.train.sparse_embedding')) FROM trials WHERE status = 'done'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((done, sparse), (2, 2));
}
