//! Shared helpers of the integration tests: fixture paths, expected values, device choice.
#![allow(dead_code)]

use std::path::PathBuf;

use listconranker::{Backend, LoadOptions, Precision, Reranker};
use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

pub fn model_dir(name: &str) -> PathBuf {
    fixtures().join("models").join(name)
}

/// The fixture models, each with its expected values from the PyTorch reference.
pub const MODELS: [&str; 2] = ["zh-tiny", "en-3layer"];

#[derive(Deserialize)]
pub struct Expected {
    pub compute_score: Vec<ScoreCase>,
    pub iterative: Vec<IterativeCase>,
    pub debug: Debug,
}

#[derive(Deserialize)]
pub struct ScoreCase {
    pub name: String,
    pub max_length: usize,
    pub batch: Vec<Vec<String>>,
    pub scores: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
pub struct IterativeCase {
    pub name: String,
    pub max_length: usize,
    pub list: Vec<String>,
    pub scores: Vec<f64>,
}

#[derive(Deserialize)]
pub struct Debug {
    pub texts: Vec<String>,
    pub max_length: usize,
    pub input_ids: Vec<Vec<u32>>,
}

pub fn expected(model: &str) -> Expected {
    let path = fixtures().join("expected").join(format!("{model}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (regenerate the fixtures)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads a fixture model; `None` when the backend is missing and not required (wgpu without
/// an adapter outside CI).
pub fn load(model: &str, backend: Backend, precision: Precision) -> Option<Reranker> {
    let options = LoadOptions {
        backend,
        precision,
        ..LoadOptions::default()
    };
    match Reranker::load(model_dir(model), options) {
        Ok(ranker) => Some(ranker),
        Err(e)
            if e.code() == "DEVICE_UNAVAILABLE"
                && std::env::var_os("LCR_REQUIRE_WGPU").is_none() =>
        {
            eprintln!("skipping {backend} {precision}: {e}");
            None
        }
        Err(e) => panic!("loading {model} on {backend} {precision}: {e}"),
    }
}

/// Largest |got - expected| over all values, with the place where it occurs.
pub fn max_abs_diff(got: &[f32], expected: &[f64]) -> (f64, usize) {
    assert_eq!(got.len(), expected.len(), "number of scores");
    got.iter()
        .zip(expected)
        .enumerate()
        .map(|(i, (&g, &e))| ((f64::from(g) - e).abs(), i))
        .fold(
            (0.0, 0),
            |best, cur| if cur.0 > best.0 { cur } else { best },
        )
}

/// Every pair that the reference orders with a margin above `margin` is ordered the same way.
pub fn assert_same_ranking(got: &[f32], expected: &[f64], margin: f64, what: &str) {
    for i in 0..expected.len() {
        for j in 0..expected.len() {
            if expected[i] - expected[j] > margin {
                assert!(
                    got[i] > got[j],
                    "{what}: passage {i} (expected {}, got {}) should rank above passage {j} (expected {}, got {})",
                    expected[i],
                    got[i],
                    expected[j],
                    got[j]
                );
            }
        }
    }
}
