//! Checkpoints in the training loop: a run stopped after some epochs and resumed
//! from its checkpoint ends exactly as an uninterrupted run (CPU, same seed), for
//! every optimizer, with dropout and with early stopping.

use candle_core::Device;
use lab::data::{Balanced, Dataset, Split, Vocab};
use lab::model::Classifier;
use lab::spec::{EarlyStopping, Mode, ModelSection, Optimizer, TrainSection};
use lab::train::{train_resumable, Checkpointer, DirCheckpointer, FitContext, TrainOutcome};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Two classes told apart by their word ids, with shared noise.
fn synthetic() -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut split = |n: usize| {
        let mut s = Split::default();
        for i in 0..n {
            let label = (i % 2) as u32;
            let len = rng.gen_range(2..=6);
            let ids: Vec<u32> = (0..len)
                .map(|_| {
                    if rng.gen_bool(0.3) {
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
    let (train, valid, test) = (split(64), split(24), split(24));
    let mut itos = vec!["<pad>".to_string(), "<unk>".to_string()];
    itos.extend((2..=12).map(|i| format!("w{i}")));
    Dataset {
        classes: vec!["neg".into(), "pos".into()],
        vocab: Vocab { itos },
        train,
        valid,
        test,
        rows_read: 112,
        rows_skipped: 0,
        report: None,
    }
}

fn run(
    cfg: &TrainSection,
    data: &Dataset,
    checkpointer: Option<&mut dyn Checkpointer>,
) -> TrainOutcome {
    let model_cfg = ModelSection {
        embedding_dim: 8,
        hidden: 8,
        dropout: 0.3,
        ..ModelSection::default()
    };
    let model = Classifier::new(&model_cfg, data.vocab.len(), 2, 11, &Device::Cpu).unwrap();
    let balanced = Balanced {
        indices: (0..data.train.len()).collect(),
        class_weights: None,
    };
    let ctx = FitContext {
        model: &model,
        dataset: data,
        balanced: &balanced,
        cfg,
        seed: 5,
        device: &Device::Cpu,
    };
    train_resumable(&ctx, &mut |_| {}, checkpointer).unwrap()
}

/// Everything but the timings.
fn numbers(out: &TrainOutcome) -> (Vec<[f64; 5]>, usize, bool, String, String) {
    (
        out.epochs
            .iter()
            .map(|e| {
                [
                    e.epoch as f64,
                    e.train_loss,
                    e.valid_loss,
                    e.valid_accuracy,
                    e.valid_macro_f1,
                ]
            })
            .collect(),
        out.best_epoch,
        out.stopped_early,
        format!("{:?}", out.valid),
        format!("{:?}", out.test),
    )
}

#[test]
fn resumed_runs_end_as_uninterrupted_ones() {
    let data = synthetic();
    let early = Some(EarlyStopping {
        monitor: lab::spec::Monitor::ValidLoss,
        mode: Mode::Min,
        patience: 2,
    });
    for (optimizer, momentum, weight_decay, early_stopping) in [
        (Optimizer::Adam, 0.0, 0.0, None),
        (Optimizer::Adamw, 0.0, 0.01, early.clone()),
        (Optimizer::Sgd, 0.9, 0.001, None),
        (Optimizer::Adam, 0.0, 0.0, early),
    ] {
        let cfg = TrainSection {
            epochs: 6,
            batch_size: 8,
            lr: if optimizer == Optimizer::Sgd {
                0.1
            } else {
                0.01
            },
            optimizer,
            momentum,
            weight_decay,
            early_stopping,
            ..TrainSection::default()
        };
        let reference = run(&cfg, &data, None);
        for stop_after in [1, 3] {
            let dir = tempfile::tempdir().unwrap();
            let mut files = DirCheckpointer::new(dir.path().join("checkpoint"));
            let first = TrainSection {
                epochs: stop_after,
                ..cfg.clone()
            };
            run(&first, &data, Some(&mut files));
            assert_eq!(files.load().unwrap().unwrap().epoch, stop_after);
            // A fresh model, as after a crash, picks up from the checkpoint.
            let resumed = run(&cfg, &data, Some(&mut files));
            assert_eq!(
                numbers(&resumed),
                numbers(&reference),
                "{optimizer:?} stopped after {stop_after}"
            );
        }
    }
}

#[test]
fn checkpoints_are_replaced_atomically() {
    let data = synthetic();
    let dir = tempfile::tempdir().unwrap();
    let mut files = DirCheckpointer::new(dir.path().join("checkpoint"));
    let cfg = TrainSection {
        epochs: 2,
        batch_size: 8,
        ..TrainSection::default()
    };
    run(&cfg, &data, Some(&mut files));
    let names: Vec<String> = std::fs::read_dir(dir.path().join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["checkpoint.safetensors"], "no temp file left");
    files.clear().unwrap();
    assert!(files.load().unwrap().is_none());
}
