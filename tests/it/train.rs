//! Tests of the `train` module: optimizers against PyTorch's update rules (values
//! computed by hand from torch's formulas), clipping, loss, metrics against sklearn,
//! early stopping, one training step, and the whole loop on a tiny model.

use candle_core::{DType, Device, Tensor, Var};
use lab::data::{Balanced, Batch, Dataset, Split, Vocab};
use lab::spec::{EarlyStopping, Mode, Optimizer as OptKind, TrainSection};
use lab::train::optim::{Adam, AdamW, Optimizer, Sgd};
use lab::train::{
    clip_grad_norm, cross_entropy, evaluate, predict_proba, train, train_step, EpochRecord, Fit,
    FitContext, Monitor, Patience, Progress, StepOptions, StoppingPolicy, TrainError, Trainable,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn assert_vec_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(close(*g as f64, *w, tol), "got {got:?}, want {want:?}");
    }
}

// ---------- optimizers ----------

const THETA0: [f32; 3] = [1.0, -2.0, 0.5];
const TARGET: [f32; 3] = [0.0, 1.0, 2.0];

/// Three steps on loss Σ(θ − target)², whose gradient 2(θ − target) is not
/// proportional to θ, so L2 and decoupled decay give visibly different results.
fn run_steps(make: impl FnOnce(Vec<Var>) -> Box<dyn Optimizer>) -> Vec<f32> {
    let dev = Device::Cpu;
    let var = Var::new(&THETA0, &dev).unwrap();
    let target = Tensor::new(&TARGET, &dev).unwrap();
    let mut opt = make(vec![var.clone()]);
    for _ in 0..3 {
        let loss = (var.as_tensor() - &target)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
    }
    var.as_tensor().to_vec1::<f32>().unwrap()
}

#[test]
fn adam_matches_torch_with_l2_weight_decay() {
    let got = run_steps(|v| Box::new(Adam::new(v, 0.1, 0.5)));
    assert_vec_close(&got, &[0.7015862726, -1.7004138773, 0.7986175555], 1e-5);
    let plain = run_steps(|v| Box::new(Adam::new(v, 0.1, 0.0)));
    assert_vec_close(&plain, &[0.7015862729, -1.7003815235, 0.7990971295], 1e-5);
}

#[test]
fn adamw_decouples_weight_decay() {
    let got = run_steps(|v| Box::new(AdamW::new(v, 0.1, 0.5)));
    assert_vec_close(&got, &[0.5749739307, -1.4303696126, 0.7133368527], 1e-5);
}

#[test]
fn sgd_momentum_matches_torch() {
    let got = run_steps(|v| Box::new(Sgd::new(v, 0.1, 0.9, 0.5)));
    assert_vec_close(&got, &[-0.118125, 1.13075, 1.7299375], 1e-5);
    let plain = run_steps(|v| Box::new(Sgd::new(v, 0.1, 0.0, 0.0)));
    assert_vec_close(&plain, &[0.512, -0.536, 1.232], 1e-5);
}

#[test]
fn optimizer_skips_vars_without_gradient() {
    let dev = Device::Cpu;
    let used = Var::new(&[1.0f32], &dev).unwrap();
    let unused = Var::new(&[5.0f32], &dev).unwrap();
    let mut opt = Adam::new(vec![used.clone(), unused.clone()], 0.1, 0.1);
    let grads = used
        .as_tensor()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    opt.step(&grads).unwrap();
    assert_eq!(unused.as_tensor().to_vec1::<f32>().unwrap(), vec![5.0]);
    assert!(close(
        used.as_tensor().to_vec1::<f32>().unwrap()[0] as f64,
        0.9,
        1e-5
    ));
}

#[test]
fn build_reports_learning_rate() {
    let cfg = TrainSection {
        optimizer: OptKind::Sgd,
        lr: 0.25,
        ..TrainSection::default()
    };
    let opt = lab::train::optim::build(&cfg, vec![]);
    assert_eq!(opt.learning_rate(), 0.25);
}

// ---------- clipping ----------

fn grads_3_4() -> (Var, candle_core::backprop::GradStore) {
    let dev = Device::Cpu;
    let var = Var::new(&[1.0f32, 1.0], &dev).unwrap();
    let c = Tensor::new(&[3.0f32, 4.0], &dev).unwrap();
    let grads = (var.as_tensor() * &c)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    (var, grads)
}

#[test]
fn clip_scales_to_max_norm() {
    let (var, mut grads) = grads_3_4();
    let norm = clip_grad_norm(&mut grads, std::slice::from_ref(&var), 1.0).unwrap();
    assert!(close(norm, 5.0, 1e-6));
    let g = grads
        .get(var.as_tensor())
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let coef = 1.0 / (5.0 + 1e-6);
    assert_vec_close(&g, &[3.0 * coef, 4.0 * coef], 1e-6);
}

#[test]
fn clip_leaves_small_or_disabled_gradients() {
    for max_norm in [10.0, 0.0] {
        let (var, mut grads) = grads_3_4();
        let norm = clip_grad_norm(&mut grads, std::slice::from_ref(&var), max_norm).unwrap();
        assert!(close(norm, 5.0, 1e-6));
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(g, vec![3.0, 4.0]);
    }
}

// ---------- loss ----------

#[test]
fn cross_entropy_plain_and_weighted() {
    let dev = Device::Cpu;
    let logits = Tensor::new(&[[2.0f32, 0.0], [0.0, 1.0]], &dev).unwrap();
    let labels = Tensor::new(&[0u32, 1], &dev).unwrap();
    // nll = ln(1+e^-2), ln(1+e^-1)
    let (a, b) = ((1.0 + (-2.0f64).exp()).ln(), (1.0 + (-1.0f64).exp()).ln());
    let plain = cross_entropy(&logits, &labels, None).unwrap();
    assert!(close(
        plain.to_scalar::<f32>().unwrap() as f64,
        (a + b) / 2.0,
        1e-6
    ));
    let w = Tensor::new(&[1.0f32, 3.0], &dev).unwrap();
    let weighted = cross_entropy(&logits, &labels, Some(&w)).unwrap();
    assert!(close(
        weighted.to_scalar::<f32>().unwrap() as f64,
        (a + 3.0 * b) / 4.0,
        1e-6
    ));
}

// ---------- metrics ----------

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn binary_metrics_match_sklearn() {
    // sklearn's documentation example: roc_auc 0.75, average_precision 0.8333.
    let labels = [0u32, 0, 1, 1];
    let probs: Vec<Vec<f32>> = [0.1f32, 0.4, 0.35, 0.8]
        .iter()
        .map(|&p| vec![1.0 - p, p])
        .collect();
    let ev = evaluate(&labels, &probs, &names(&["neg", "pos"]), Some(0.5));
    let want = [
        ("accuracy", 0.75),
        ("loss", 0.5),
        ("precision.neg", 2.0 / 3.0),
        ("recall.neg", 1.0),
        ("f1.neg", 0.8),
        ("precision.pos", 1.0),
        ("recall.pos", 0.5),
        ("f1.pos", 2.0 / 3.0),
        ("support.pos", 2.0),
        ("macro_precision", 5.0 / 6.0),
        ("macro_recall", 0.75),
        ("macro_f1", (0.8 + 2.0 / 3.0) / 2.0),
        ("roc_auc", 0.75),
        ("average_precision", 5.0 / 6.0),
    ];
    for (name, v) in want {
        let got = ev.get(name).unwrap_or_else(|| panic!("missing {name}"));
        assert!(close(got, v, 1e-6), "{name}: got {got}, want {v}");
    }
    assert_eq!(ev.confusion, vec![vec![2, 0], vec![1, 1]]);
}

#[test]
fn binary_metrics_with_tied_scores() {
    let labels = [0u32, 1, 0, 1];
    let probs: Vec<Vec<f32>> = [0.5f32, 0.5, 0.2, 0.8]
        .iter()
        .map(|&p| vec![1.0 - p, p])
        .collect();
    let ev = evaluate(&labels, &probs, &names(&["no", "yes"]), None);
    assert!(close(ev.get("roc_auc").unwrap(), 0.875, 1e-9));
    assert!(close(ev.get("average_precision").unwrap(), 5.0 / 6.0, 1e-9));
    assert_eq!(ev.get("loss"), None);
}

#[test]
fn roc_auc_is_omitted_with_one_class_present() {
    let probs = vec![vec![0.3f32, 0.7], vec![0.6, 0.4]];
    let ev = evaluate(&[0, 0], &probs, &names(&["a", "b"]), None);
    assert_eq!(ev.get("roc_auc"), None);
    assert_eq!(ev.get("average_precision"), Some(0.0));
}

#[test]
fn multiclass_with_a_class_never_predicted() {
    let labels = [0u32, 1, 2, 2, 1, 0, 2];
    let probs = vec![
        vec![0.5f32, 0.5, 0.0], // tie: the first class wins, as numpy's argmax
        vec![0.6, 0.3, 0.1],
        vec![0.1, 0.2, 0.7],
        vec![0.2, 0.2, 0.6],
        vec![0.7, 0.2, 0.1],
        vec![0.8, 0.1, 0.1],
        vec![0.0, 0.1, 0.9],
    ];
    let ev = evaluate(&labels, &probs, &names(&["a", "b", "c"]), None);
    assert_eq!(
        ev.confusion,
        vec![vec![2, 0, 0], vec![2, 0, 0], vec![0, 0, 3]]
    );
    let want = [
        ("accuracy", 5.0 / 7.0),
        ("precision.a", 0.5),
        ("f1.a", 2.0 / 3.0),
        ("precision.b", 0.0),
        ("recall.b", 0.0),
        ("f1.b", 0.0),
        ("support.c", 3.0),
        ("macro_precision", 0.5),
        ("macro_recall", 2.0 / 3.0),
        ("macro_f1", (2.0 / 3.0 + 1.0) / 3.0),
        ("weighted_precision", 4.0 / 7.0),
        ("weighted_recall", 5.0 / 7.0),
        ("weighted_f1", (2.0 * 2.0 / 3.0 + 3.0) / 7.0),
    ];
    for (name, v) in want {
        let got = ev.get(name).unwrap();
        assert!(close(got, v, 1e-9), "{name}: got {got}, want {v}");
    }
    assert_eq!(ev.get("roc_auc"), None);
}

#[test]
fn empty_input_gives_zeros() {
    let ev = evaluate(&[], &[], &names(&["a", "b"]), None);
    assert_eq!(ev.get("accuracy"), Some(0.0));
    assert_eq!(ev.get("macro_f1"), Some(0.0));
    assert_eq!(ev.confusion, vec![vec![0, 0], vec![0, 0]]);
}

// ---------- early stopping ----------

fn record(epoch: usize, loss: f64, f1: f64) -> EpochRecord {
    EpochRecord {
        epoch,
        train_loss: 0.0,
        valid_loss: loss,
        valid_accuracy: 0.0,
        valid_macro_f1: f1,
        lr: 0.0,
        seconds: 0.0,
        samples_per_second: 0.0,
    }
}

#[test]
fn patience_counts_epochs_without_strict_improvement() {
    let mut p = Patience::new(Monitor::ValidLoss, Mode::Min, 2);
    let losses = [1.0, 0.8, 0.8, 0.9];
    let verdicts: Vec<_> = losses
        .iter()
        .enumerate()
        .map(|(i, &l)| p.observe(&record(i + 1, l, 0.0)))
        .collect();
    let improved: Vec<bool> = verdicts.iter().map(|v| v.improved).collect();
    let stop: Vec<bool> = verdicts.iter().map(|v| v.stop).collect();
    assert_eq!(improved, [true, true, false, false]); // equal is not better
    assert_eq!(stop, [false, false, false, true]);
    assert_eq!(p.best_epoch(), Some(2));
}

#[test]
fn patience_max_mode_and_zero_patience() {
    let mut p = Patience::new(Monitor::ValidMacroF1, Mode::Max, 0);
    assert!(!p.observe(&record(1, 0.0, 0.5)).stop);
    assert!(p.observe(&record(2, 0.0, 0.6)).improved);
    let v = p.observe(&record(3, 0.0, 0.55));
    assert!(!v.improved && v.stop);
    assert_eq!(p.best_epoch(), Some(2));
}

#[test]
fn patience_rejects_unknown_monitor() {
    // The monitor is typed: an unknown name fails when the config is read.
    let cfg = serde_json::json!({ "monitor": "valid.f1", "mode": "max", "patience": 1 });
    let err = serde_json::from_value::<EarlyStopping>(cfg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown metric `valid.f1`") && err.contains("valid.macro_f1"));
    let cfg = EarlyStopping {
        monitor: Monitor::ValidLoss,
        mode: Mode::Min,
        patience: 1,
    };
    assert_eq!(Patience::from_spec(&cfg).best_epoch(), None);
}

// ---------- a tiny model ----------

/// Mean of the embeddings over the true length, then a linear head.
struct BagModel {
    emb: Var,
    w: Var,
    b: Var,
    /// Makes every logit NaN, to exercise the non-finite check.
    poison: bool,
}

impl BagModel {
    fn new(vocab: usize, dim: usize, classes: usize, seed: u64) -> Self {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut init =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-0.1..0.1)).collect() };
        let dev = Device::Cpu;
        Self {
            emb: Var::from_vec(init(vocab * dim), (vocab, dim), &dev).unwrap(),
            w: Var::from_vec(init(dim * classes), (dim, classes), &dev).unwrap(),
            b: Var::zeros(classes, DType::F32, &dev).unwrap(),
            poison: false,
        }
    }

    fn logits(&self, ids: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
        let (batch, time) = ids.dims2()?;
        let dim = self.emb.dim(1)?;
        let e = self
            .emb
            .as_tensor()
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, time, dim))?;
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..time).map(move |t| if t < l { 1.0 / l as f32 } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (batch, time, 1), ids.device())?;
        let pooled = e.broadcast_mul(&mask)?.sum(1)?;
        let out = pooled
            .matmul(self.w.as_tensor())?
            .broadcast_add(self.b.as_tensor())?;
        if self.poison {
            out.affine(f64::NAN, 0.0)
        } else {
            Ok(out)
        }
    }
}

impl Trainable for BagModel {
    fn forward(
        &self,
        ids: &Tensor,
        lengths: &[usize],
        dropout: Option<&mut ChaCha8Rng>,
    ) -> candle_core::Result<Tensor> {
        let logits = self.logits(ids, lengths)?;
        match dropout {
            // Crude row-wise dropout on the logits: enough to make training draw
            // from the rng, which the determinism test relies on.
            Some(rng) => {
                let keep: Vec<f32> = (0..lengths.len())
                    .map(|_| if rng.gen_bool(0.9) { 1.0 / 0.9 } else { 0.0 })
                    .collect();
                let keep = Tensor::from_vec(keep, (lengths.len(), 1), ids.device())?;
                logits.broadcast_mul(&keep)
            }
            None => Ok(logits),
        }
    }
    fn forward_inference(&self, ids: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
        Ok(self.logits(ids, lengths)?.detach())
    }
    fn vars(&self) -> Vec<Var> {
        vec![self.emb.clone(), self.w.clone(), self.b.clone()]
    }
}

fn hand_batch() -> Batch {
    // Class 0 uses ids 2..=3, class 1 ids 4..=5; padded with 0 to time 3.
    Batch {
        ids: vec![2, 3, 0, 4, 5, 4, 3, 2, 2, 5, 0, 0],
        lengths: vec![2, 3, 3, 1],
        labels: vec![0, 1, 0, 1],
        rows: vec![0, 1, 2, 3],
        batch: 4,
        time: 3,
    }
}

#[test]
fn train_step_lowers_the_loss_on_a_hand_made_batch() {
    use rand::SeedableRng;
    let model = BagModel::new(6, 4, 2, 7);
    let mut opt = Adam::new(model.vars(), 0.05, 0.0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let batch = hand_batch();
    let opts = StepOptions {
        class_weights: None,
        grad_clip: 1.0,
    };
    let first = train_step(&model, &mut opt, &batch, &opts, &mut rng, &Device::Cpu).unwrap();
    // ln 2 at small random weights.
    assert!(close(first, 2f64.ln(), 0.05), "first loss {first}");
    let ids = lab::train::batch_ids(&batch, &Device::Cpu).unwrap();
    let eval_loss = |m: &BagModel| -> f64 {
        let logits = m.forward_inference(&ids, &batch.lengths).unwrap();
        let labels = Tensor::new(batch.labels.as_slice(), &Device::Cpu).unwrap();
        cross_entropy(&logits, &labels, None)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64
    };
    let before = eval_loss(&model);
    for _ in 0..30 {
        train_step(&model, &mut opt, &batch, &opts, &mut rng, &Device::Cpu).unwrap();
    }
    let after = eval_loss(&model);
    assert!(after < before * 0.5, "loss {before} -> {after}");
}

#[test]
fn train_step_reports_non_finite_loss_without_updating() {
    use rand::SeedableRng;
    let mut model = BagModel::new(6, 4, 2, 7);
    model.poison = true;
    let before = model.w.as_tensor().to_vec2::<f32>().unwrap();
    let mut opt = Sgd::new(model.vars(), 0.1, 0.0, 0.0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let loss = train_step(
        &model,
        &mut opt,
        &hand_batch(),
        &StepOptions::default(),
        &mut rng,
        &Device::Cpu,
    )
    .unwrap();
    assert!(loss.is_nan());
    assert_eq!(model.w.as_tensor().to_vec2::<f32>().unwrap(), before);
}

// ---------- the whole loop (needs data::batches) ----------

/// 60 train, 20 valid, 20 test rows; class 0 draws ids 2..=6, class 1 ids 7..=11,
/// with one shared noise id 12; lengths 2..=6.
fn synthetic(seed: u64) -> Dataset {
    use rand::SeedableRng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut split = |n: usize| {
        let mut s = Split::default();
        for i in 0..n {
            let label = (i % 2) as u32;
            let len = rng.gen_range(2..=6);
            let ids: Vec<u32> = (0..len)
                .map(|_| {
                    if rng.gen_bool(0.2) {
                        12
                    } else {
                        2 + 5 * label + rng.gen_range(0..5)
                    }
                })
                .collect();
            s.push(&ids, label);
        }
        s
    };
    let (train, valid, test) = (split(60), split(20), split(20));
    let mut itos = vec!["<pad>".to_string(), "<unk>".to_string()];
    itos.extend((2..=12).map(|i| format!("w{i}")));
    Dataset {
        classes: vec!["neg".into(), "pos".into()],
        vocab: Vocab { itos },
        train,
        valid,
        test,
        rows_read: 100,
        rows_skipped: 0,
        report: None,
    }
}

fn cfg(epochs: usize) -> TrainSection {
    TrainSection {
        epochs,
        batch_size: 8,
        lr: 0.05,
        ..TrainSection::default()
    }
}

fn all_rows(d: &Dataset) -> Balanced {
    Balanced {
        indices: (0..d.train.len()).collect(),
        class_weights: None,
    }
}

#[test]
fn train_learns_the_synthetic_task() {
    let data = synthetic(3);
    let model = BagModel::new(13, 8, 2, 5);
    let mut events = Vec::new();
    let out = train(
        &FitContext {
            model: &model,
            dataset: &data,
            balanced: &all_rows(&data),
            cfg: &cfg(6),
            seed: 42,
            device: &Device::Cpu,
        },
        &mut |p| events.push(p),
    )
    .unwrap();
    assert_eq!(out.epochs.len(), 6);
    assert_eq!(out.best_epoch, 6); // no early stopping: last weights kept
    assert!(!out.stopped_early);
    let first = &out.epochs[0];
    let last = &out.epochs[5];
    assert!(
        last.train_loss < first.train_loss * 0.7,
        "{first:?} -> {last:?}"
    );
    assert!(last.valid_loss < first.valid_loss);
    assert!(out.test.get("accuracy").unwrap() >= 0.8, "{:?}", out.test);
    assert_eq!(out.valid.get("accuracy"), Some(last.valid_accuracy));
    assert_eq!(last.lr, 0.05);
    // 8 batches of 8 rows per epoch: EpochStart, 8 × Batch, EpochEnd.
    assert_eq!(events.len(), 6 * 10);
    assert!(matches!(
        events[0],
        Progress::EpochStart {
            epoch: 1,
            epochs: 6,
            batches: 8
        }
    ));
    assert!(matches!(events[8], Progress::Batch { done: 8, .. }));

    let rows: Vec<Vec<u32>> = data.test.rows().map(|r| r.to_vec()).collect();
    let probs = predict_proba(&model, &rows, 3, &Device::Cpu).unwrap();
    assert_eq!(probs.len(), data.test.len());
    let correct = probs
        .iter()
        .zip(&data.test.labels)
        .filter(|(p, &y)| (p[1] > p[0]) == (y == 1))
        .count();
    assert!(correct as f64 / 20.0 >= 0.8);
    assert!(probs
        .iter()
        .all(|p| close(p.iter().sum::<f32>() as f64, 1.0, 1e-5)));
}

#[test]
fn same_seed_same_numbers() {
    let data = synthetic(3);
    let run = |seed: u64| {
        let model = BagModel::new(13, 8, 2, 5);
        let out = train(
            &FitContext {
                model: &model,
                dataset: &data,
                balanced: &all_rows(&data),
                cfg: &cfg(3),
                seed,
                device: &Device::Cpu,
            },
            &mut |_| {},
        )
        .unwrap();
        let losses: Vec<(f64, f64)> = out
            .epochs
            .iter()
            .map(|e| (e.train_loss, e.valid_loss))
            .collect();
        (losses, out.test.metrics)
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42).0, run(43).0);
}

/// `Fit`'s pieces driven one by one (half way, a checkpoint resumed by a
/// second `Fit` over another model) end with the numbers `train` gives.
#[test]
fn fit_driven_piece_by_piece_equals_train() {
    let data = synthetic(3);
    let balanced = all_rows(&data);
    let cfg = cfg(4);
    let numbers = |out: &lab::train::TrainOutcome| {
        let epochs: Vec<[f64; 5]> = out
            .epochs
            .iter()
            .map(|e| {
                let a = e.to_array();
                [a[0], a[1], a[2], a[3], a[4]]
            })
            .collect();
        (
            epochs,
            format!("{:?}", out.valid),
            format!("{:?}", out.test),
        )
    };
    let whole = BagModel::new(13, 8, 2, 5);
    let ctx = FitContext {
        model: &whole,
        dataset: &data,
        balanced: &balanced,
        cfg: &cfg,
        seed: 9,
        device: &Device::Cpu,
    };
    let expected = numbers(&train(&ctx, &mut |_| {}).unwrap());

    let pieces = BagModel::new(13, 8, 2, 5);
    let ctx = FitContext {
        model: &pieces,
        ..ctx
    };
    let mut first = Fit::new(&ctx).unwrap();
    assert_eq!(first.next_epoch(), Some(1));
    let record = first.run_epoch(&mut |_| {}).unwrap();
    assert_eq!(record.epoch, 1);
    first.run_epoch(&mut |_| {}).unwrap();
    let checkpoint = first.checkpoint().unwrap();
    assert_eq!(checkpoint.epoch, 2);
    drop(first);
    // Another model (other initial weights): the checkpoint sets them all.
    let other = BagModel::new(13, 8, 2, 6);
    let ctx = FitContext {
        model: &other,
        ..ctx
    };
    let mut second = Fit::new(&ctx).unwrap();
    second.resume(checkpoint).unwrap();
    assert_eq!(second.next_epoch(), Some(3));
    while second.next_epoch().is_some() {
        second.run_epoch(&mut |_| {}).unwrap();
    }
    assert_eq!(second.next_epoch(), None);
    let valid = second.validate(&data.valid).unwrap();
    let out = second.finish().unwrap();
    assert_eq!(format!("{valid:?}"), format!("{:?}", out.valid));
    assert_eq!(numbers(&out), expected);
}

#[test]
fn early_stopping_restores_the_best_weights() {
    let data = synthetic(3);
    let model = BagModel::new(13, 8, 2, 5);
    // Valid loss falls as the model learns, so "max" makes epoch 1 the best: with
    // patience 1 the run stops after epoch 2 and must restore epoch 1's weights.
    let cfg = TrainSection {
        early_stopping: Some(EarlyStopping {
            monitor: Monitor::ValidLoss,
            mode: Mode::Max,
            patience: 1,
        }),
        ..cfg(10)
    };
    let out = train(
        &FitContext {
            model: &model,
            dataset: &data,
            balanced: &all_rows(&data),
            cfg: &cfg,
            seed: 1,
            device: &Device::Cpu,
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(out.stopped_early);
    assert_eq!(out.epochs.len(), 2);
    assert_eq!((out.best_epoch, out.best_monitored_epoch), (1, 1));
    let (first, second) = (out.epochs[0].valid_loss, out.epochs[1].valid_loss);
    assert!(second < first - 1e-3, "{first} -> {second}");
    // Valid is re-scored with the restored weights: epoch 1's loss, not epoch 2's.
    assert!(close(out.valid.get("loss").unwrap(), first, 1e-9));
}

#[test]
fn without_early_stopping_the_last_weights_are_kept() {
    let data = synthetic(3);
    let model = BagModel::new(13, 8, 2, 5);
    let out = train(
        &FitContext {
            model: &model,
            dataset: &data,
            balanced: &all_rows(&data),
            cfg: &cfg(3),
            seed: 1,
            device: &Device::Cpu,
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(out.best_epoch, 3);
    assert!((1..=3).contains(&out.best_monitored_epoch));
    assert!(close(
        out.valid.get("loss").unwrap(),
        out.epochs[2].valid_loss,
        1e-9
    ));
}

#[test]
fn class_weights_change_the_training_loss() {
    let data = synthetic(3);
    let run = |class_weights: Option<Vec<f32>>| {
        let model = BagModel::new(13, 8, 2, 5);
        let balanced = Balanced {
            indices: (0..data.train.len()).collect(),
            class_weights,
        };
        let out = train(
            &FitContext {
                model: &model,
                dataset: &data,
                balanced: &balanced,
                cfg: &cfg(1),
                seed: 1,
                device: &Device::Cpu,
            },
            &mut |_| {},
        )
        .unwrap();
        (out.epochs[0].train_loss, out.epochs[0].valid_loss)
    };
    let (plain, weighted) = (run(None), run(Some(vec![1.0, 3.0])));
    assert!(plain.0.is_finite() && weighted.0.is_finite());
    assert_ne!(plain.0, weighted.0);
    assert_ne!(plain.1, weighted.1); // different updates, same unweighted valid loss formula
}

#[test]
fn non_finite_loss_stops_with_its_position() {
    let data = synthetic(3);
    let mut model = BagModel::new(13, 8, 2, 5);
    model.poison = true;
    let err = train(
        &FitContext {
            model: &model,
            dataset: &data,
            balanced: &all_rows(&data),
            cfg: &cfg(2),
            seed: 1,
            device: &Device::Cpu,
        },
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { epoch: 1, batch: 1, value } if value.is_nan()),
        "{err}"
    );
}

#[test]
fn empty_training_set_is_an_error() {
    let data = synthetic(3);
    let model = BagModel::new(13, 8, 2, 5);
    let none = Balanced {
        indices: vec![],
        class_weights: None,
    };
    let ctx = FitContext {
        model: &model,
        dataset: &data,
        balanced: &none,
        cfg: &cfg(1),
        seed: 1,
        device: &Device::Cpu,
    };
    let err = train(&ctx, &mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::EmptyTrainingSet), "{err}");
    assert!(err.to_string().contains("no training rows"), "{err}");
}

#[test]
fn predict_proba_of_nothing_is_empty() {
    let model = BagModel::new(13, 8, 2, 5);
    assert!(predict_proba(&model, &[], 4, &Device::Cpu)
        .unwrap()
        .is_empty());
}
