//! Splits that cannot be scored (issue 13, item 6): refused in the pipeline's first
//! pass, so `lab run`, `prepare`, `queue add` and `submit` record nothing; and
//! metrics over zero rows are an error where they are computed.

use crate::labels::{refused, succeeds, Dir};

/// Both specs of the empty-splits fixture, refused by `cmd` with exit 1, the
/// numbers and what to change, and nothing recorded.
fn empty_splits_refused(cmd: &[&str]) {
    let dir = Dir::fixture("empty-splits");
    let mut args = cmd.to_vec();
    args.push("spec.toml");
    refused(
        &dir.lab(&args),
        &[
            "reviews.csv",
            "200 classes in 200 rows",
            "\"review_id\" (data.label)",
            "looks like an id",
            "review_id, review, sentiment",
            "train 200 rows (200 classes), valid 0 (0 classes), test 0 (0 classes)",
        ],
    );
    assert_eq!(dir.trials("any"), 0, "{cmd:?}: nothing recorded");
    args.pop();
    args.push("spec_four_rows.toml");
    refused(
        &dir.lab(&args),
        &[
            "reviews_four_rows.csv",
            "the valid and test splits are empty",
            "4 rows in 2 classes",
            "train 4 rows (2 classes), valid 0 (0 classes), test 0 (0 classes)",
            "raise data.split.valid and data.split.test",
        ],
    );
    assert_eq!(dir.trials("any"), 0, "{cmd:?}: nothing recorded");
    assert_eq!(dir.trials("done"), 0);
}

#[test]
fn empty_splits_are_refused_by_run() {
    empty_splits_refused(&["run"]);
}

#[test]
fn empty_splits_are_refused_by_prepare() {
    empty_splits_refused(&["prepare"]);
}

#[test]
fn empty_splits_are_refused_by_queue_add() {
    empty_splits_refused(&["queue", "add"]);
}

#[test]
fn empty_splits_are_refused_by_submit_before_sbatch() {
    let dir = Dir::fixture("empty-splits");
    let out = dir.lab(&[
        "submit",
        "spec_four_rows.toml",
        "--slurm",
        "--shards",
        "shards",
    ]);
    refused(&out, &["the valid and test splits are empty"]);
    assert!(!dir.path().join("shards").exists());
    assert_eq!(dir.trials("any"), 0);
}

#[test]
fn small_files_that_split_fine_still_run() {
    // 9 rows of 3 classes: each class reaches every split.
    let dir = Dir::new();
    let mut csv = String::from("text,label\n");
    for i in 0..9 {
        csv += &format!("review {i},c{}\n", i % 3);
    }
    dir.write("d.csv", csv);
    dir.spec("d.csv", "");
    succeeds(&dir.lab(&["run", "spec.toml"]));
    assert_eq!(dir.trials("done"), 1);
}

#[test]
fn metrics_over_zero_rows_are_an_error_not_zeros() {
    use lab::data::{Balanced, Dataset, Split, Vocab};
    use lab::train::{train, FitContext, TrainError};
    let mut train_split = Split::default();
    let mut valid = Split::default();
    for i in 0..8u32 {
        train_split.push(&[2 + i % 2], i % 2);
        valid.push(&[2 + i % 2], i % 2);
    }
    let mut itos: Vec<String> = vec!["<pad>".into(), "<unk>".into()];
    itos.extend(["a".to_string(), "b".to_string()]);
    let ds = Dataset {
        classes: vec!["x".into(), "y".into()],
        vocab: Vocab { itos },
        train: train_split,
        valid,
        test: Split::default(),
        rows_read: 16,
        rows_skipped: 0,
        report: None,
    };
    let model_cfg = lab::spec::ModelSection {
        embedding_dim: 4,
        hidden: 4,
        ..lab::spec::ModelSection::default()
    };
    let device = candle_core::Device::Cpu;
    let model = lab::model::Classifier::new(&model_cfg, 4, 2, 1, &device).unwrap();
    let balanced = Balanced {
        indices: (0..8).collect(),
        class_weights: None,
    };
    let cfg = lab::spec::TrainSection {
        epochs: 1,
        batch_size: 4,
        ..lab::spec::TrainSection::default()
    };
    // An empty test split fails at the final scores; an empty valid split (swapped
    // in) at the first epoch's validation.
    let mut ds = ds;
    for split in ["test", "valid"] {
        if split == "valid" {
            std::mem::swap(&mut ds.valid, &mut ds.test);
        }
        let ctx = FitContext {
            model: &model,
            dataset: &ds,
            balanced: &balanced,
            cfg: &cfg,
            seed: 1,
            device: &device,
        };
        let err = train(&ctx, &mut |_| {}).unwrap_err();
        assert!(
            matches!(err, TrainError::EmptySplit { split: s } if s == split),
            "{err}"
        );
        if split == "test" {
            assert!(
                err.to_string().contains("no rows in the test split"),
                "{err}"
            );
        }
    }
}
