//! The full-size synthetic model: the released model's shapes (BERT-large encoder, D 1792,
//! F 2048, 2 list layers; 401 M parameters, 1.6 GB in f32) with random seeded weights, written by
//! `tests/reference/make_synthetic.py --expected` (tests/run.sh does it and sets
//! `LCR_FULL_MODEL`). The split layout scores like the float64 PyTorch reference; `convert`
//! writes shards of at most 64 MiB that score exactly like the split layout in f32, and within
//! 5e-3 of the reference, same ranking, in f16.
//!
//! Skipped (with a note) when `LCR_FULL_MODEL` is not set, unless `LCR_REQUIRE_FULL` is set.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use listconranker::convert::convert as write_bundle;
use listconranker::weights::bundle::{BundleDtype, ConvertOptions, Manifest};
use listconranker::{LoadOptions, Reranker};
use serde::Deserialize;

#[derive(Deserialize)]
struct FullExpected {
    compute_score: Vec<ScoreCase>,
    iterative: Vec<IterativeCase>,
}

/// The model directory and its expected scores (`<dir>.expected.json`), or `None` to skip.
fn full_model() -> Option<(PathBuf, FullExpected)> {
    let Some(dir) = std::env::var_os("LCR_FULL_MODEL").map(PathBuf::from) else {
        skip_unless_required(
            "LCR_REQUIRE_FULL",
            "LCR_FULL_MODEL is not set (tests/run.sh generates the model)",
        );
        return None;
    };
    let path = PathBuf::from(format!("{}.expected.json", dir.display()));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_synthetic.py --expected)", path.display()));
    Some((dir, serde_json::from_str(&text).expect("expected scores")))
}

fn load(dir: &Path) -> Reranker {
    Reranker::load(dir, LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

fn convert(model: &Path, dtype: BundleDtype, out: &Path) -> Manifest {
    let options = ConvertOptions {
        dtype,
        ..ConvertOptions::default()
    };
    write_bundle(model, out, &options).expect("convert")
}

/// Every case's scores: compute_score lists first, then the iterative lists.
fn all_scores(ranker: &Reranker, expected: &FullExpected) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for case in &expected.compute_score {
        out.extend(ranker.compute_score(&case.batch).expect("compute_score"));
    }
    for case in &expected.iterative {
        out.push(ranker.iterative_inference(&case.list).expect("iterative"));
    }
    out
}

fn expected_scores(expected: &FullExpected) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::new();
    for case in &expected.compute_score {
        out.extend(case.scores.iter().cloned());
    }
    for case in &expected.iterative {
        out.push(case.scores.clone());
    }
    out
}

#[test]
fn split_layout_and_f32_bundle_score_like_the_reference() {
    let Some((model, expected)) = full_model() else {
        return;
    };
    let want = expected_scores(&expected);
    let original = all_scores(&load(&model), &expected);
    let mut worst = 0f64;
    for (got, want) in original.iter().zip(&want) {
        let (diff, at) = max_abs_diff(got, want);
        assert!(diff <= 1e-5, "split layout: |diff| {diff} at {at}");
        worst = worst.max(diff);
    }
    eprintln!("split layout, f32 on the CPU: max |score - reference| {worst:.2e}");

    let dir = tempfile::tempdir().unwrap();
    let manifest = convert(&model, BundleDtype::F32, dir.path());
    check_shard_sizes(&manifest, dir.path(), 4);
    let bundle = all_scores(&load(dir.path()), &expected);
    assert_eq!(
        bundle, original,
        "f32 bundle scores differ from the split layout's"
    );
}

#[test]
fn f16_bundle_scores_within_tolerance_and_same_ranking() {
    let Some((model, expected)) = full_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manifest = convert(&model, BundleDtype::F16, dir.path());
    assert_eq!(manifest.dtype, "f16");
    check_shard_sizes(&manifest, dir.path(), 2);
    let got = all_scores(&load(dir.path()), &expected);
    let mut worst = 0f64;
    for (got, want) in got.iter().zip(&expected_scores(&expected)) {
        let (diff, at) = max_abs_diff(got, want);
        assert!(diff <= 5e-3, "f16 bundle: |diff| {diff} at {at}");
        assert_same_ranking(got, want, 1e-2, "f16 bundle");
        worst = worst.max(diff);
    }
    eprintln!("f16 bundle, computed in f32 on the CPU: max |score - reference| {worst:.2e}");
}

/// Every shard holds at most 64 MiB of tensor data, unless it is one tensor larger than that
/// (the word embeddings: 21128 x 1024 x `bytes_per_value`); the files are what the manifest says.
fn check_shard_sizes(manifest: &Manifest, dir: &Path, bytes_per_value: u64) {
    let limit = 64 << 20;
    let single = 21128 * 1024 * bytes_per_value;
    let mut shards = 0;
    for file in &manifest.files {
        let path = dir.join(&file.path);
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(
            size, file.bytes,
            "{}: size differs from the manifest",
            file.path
        );
        if file.tensors.is_empty() {
            continue;
        }
        shards += 1;
        let data = assert_shard_within(&path, limit);
        assert!(
            data <= limit || data == single,
            "{}: {data} bytes in one tensor, not the word embeddings' {single}",
            file.path
        );
    }
    // 24 encoder layers of 12.6 M parameters: at least one shard per layer in f32.
    assert!(
        shards >= 24 * bytes_per_value as usize / 4,
        "{shards} shards"
    );
}
