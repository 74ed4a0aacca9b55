//! Golden tests: scores of the fixture models against the PyTorch reference's float64 values.
//! Tolerances: f32 on CPU 1e-5, f32 on wgpu 1e-4, f16 5e-3 with the same ranking.
//! A device that cannot load (no wgpu adapter, no f16) prints `skipped: ...` and its test
//! returns, unless `LCR_REQUIRE_DEVICES` is set (tests/run.sh sets it in CI).

mod common;

use common::*;
use listconranker::{Backend, Precision};

struct Tolerance {
    abs: f64,
    /// f16 rounding can swap passages whose reference scores are this close; farther apart,
    /// the order must hold.
    ranking_margin: f64,
}

fn check_model(model: &str, backend: Backend, precision: Precision, tol: &Tolerance) {
    let Some(mut ranker) = load(model, backend, precision) else {
        return;
    };
    let expected = expected(model);
    let mut worst = 0.0f64;
    for case in &expected.compute_score {
        ranker.set_max_length(case.max_length).unwrap();
        let got = ranker.compute_score(&case.batch).unwrap();
        assert_eq!(got.len(), case.scores.len(), "{model} {}: lists", case.name);
        for (list, (g, e)) in got.iter().zip(&case.scores).enumerate() {
            let (diff, at) = max_abs_diff(g, e);
            let what = format!(
                "{model} {backend} {precision} compute_score {} list {list}",
                case.name
            );
            assert!(
                diff <= tol.abs,
                "{what}: passage {at} off by {diff:e} (> {:e})",
                tol.abs
            );
            assert_same_ranking(g, e, tol.ranking_margin, &what);
            worst = worst.max(diff);
        }
    }
    for case in &expected.iterative {
        ranker.set_max_length(case.max_length).unwrap();
        let got = ranker.iterative_inference(&case.list).unwrap();
        let (diff, at) = max_abs_diff(&got, &case.scores);
        let what = format!("{model} {backend} {precision} iterative {}", case.name);
        assert!(
            diff <= tol.abs,
            "{what}: passage {at} off by {diff:e} (> {:e})",
            tol.abs
        );
        assert_same_ranking(&got, &case.scores, tol.ranking_margin, &what);
        worst = worst.max(diff);
    }
    eprintln!("{model} {backend} {precision}: max |diff| = {worst:e}");
}

const F32_CPU: Tolerance = Tolerance {
    abs: 1e-5,
    ranking_margin: 2e-5,
};
const F32_WGPU: Tolerance = Tolerance {
    abs: 1e-4,
    ranking_margin: 2e-4,
};
const F16: Tolerance = Tolerance {
    abs: 5e-3,
    ranking_margin: 1e-2,
};

#[test]
fn f32_cpu_matches_reference() {
    for model in MODELS {
        check_model(model, Backend::Cpu, Precision::F32, &F32_CPU);
    }
}

#[test]
fn f16_cpu_matches_reference() {
    for model in MODELS {
        check_model(model, Backend::Cpu, Precision::F16, &F16);
    }
}

#[test]
fn f32_wgpu_matches_reference() {
    for model in MODELS {
        check_model(model, Backend::Wgpu, Precision::F32, &F32_WGPU);
    }
}

#[test]
fn f16_wgpu_matches_reference() {
    for model in MODELS {
        check_model(model, Backend::Wgpu, Precision::F16, &F16);
    }
}

#[test]
fn token_ids_match_the_reference_tokenizer() {
    for model in MODELS {
        let mut ranker = load(model, Backend::Cpu, Precision::F32).unwrap();
        let debug = expected(model).debug;
        ranker.set_max_length(debug.max_length).unwrap();
        assert_eq!(
            ranker.token_ids(&debug.texts).unwrap(),
            debug.input_ids,
            "{model}"
        );
    }
}

#[test]
fn rerank_sorts_iterative_scores_best_first() {
    let ranker = load("zh-tiny", Backend::Cpu, Precision::F32).unwrap();
    let expected = expected("zh-tiny");
    let case = expected
        .iterative
        .iter()
        .max_by_key(|c| c.list.len())
        .unwrap();
    let ranked = ranker
        .rerank(&case.list[0], &case.list[1..], Some(5))
        .unwrap();
    assert_eq!(ranked.len(), 5);
    let mut order: Vec<usize> = (0..case.scores.len()).collect();
    order.sort_by(|&a, &b| case.scores[b].total_cmp(&case.scores[a]));
    let got: Vec<usize> = ranked.iter().map(|r| r.index).collect();
    assert_eq!(got, order[..5].to_vec());
}

#[test]
fn length_grouping_does_not_change_scores() {
    // A budget of one token per batch forces every text into its own batch (no padding at all);
    // the default budget pads texts of different lengths together. Mean pooling ignores pads.
    let expected = expected("zh-tiny");
    let case = expected
        .compute_score
        .iter()
        .max_by_key(|c| c.batch.len())
        .unwrap();
    let one_per_batch = listconranker::Reranker::load(
        model_dir("zh-tiny"),
        listconranker::LoadOptions {
            batch_tokens: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let grouped = load("zh-tiny", Backend::Cpu, Precision::F32).unwrap();
    let a = one_per_batch.compute_score(&case.batch).unwrap();
    let b = grouped.compute_score(&case.batch).unwrap();
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() <= 1e-6, "{x} vs {y}");
    }
}
