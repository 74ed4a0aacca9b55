//! Bad input and bad checkpoints give clear errors (with a stable code), never a panic.
//! The empty-string check compares with the PyTorch reference through the reference venv's
//! Python: skipped (with a note) without the venv, unless `LCR_REQUIRE_VENV` is set.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use listconranker::{Backend, Error, LoadOptions, Precision, Reranker};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn cpu() -> Reranker {
    load("zh-tiny", Backend::Cpu, Precision::F32).unwrap()
}

/// A copy of a fixture model in a temporary directory, to be damaged by the test.
fn copy_model(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(model_dir(name)).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn load_err(dir: &Path) -> Error {
    match Reranker::load(dir, LoadOptions::default()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e,
    }
}

fn assert_error(err: &Error, code: &str, fragments: &[&str]) {
    let message = err.to_string();
    assert_eq!(err.code(), code, "{message}");
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "{message:?} should mention {fragment:?}"
        );
    }
}

/// Rewrites `model.safetensors` with `edit` applied to its (name, dtype, shape, bytes) list.
fn rewrite_safetensors(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = fs::read(&path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let mut entries: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), Dtype::F32);
            (
                name.to_string(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    edit(&mut entries);
    let views: Vec<(String, TensorView)> = entries
        .iter()
        .map(|(name, shape, data)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
}

const WORD_EMBEDDINGS: &str = "embeddings.word_embeddings.weight";

#[test]
fn empty_batch_and_lists_without_passages_are_input_errors() {
    let ranker = cpu();
    let empty: Vec<Vec<String>> = vec![];
    assert_error(
        &ranker.compute_score(&empty).unwrap_err(),
        "INPUT_INVALID",
        &["empty"],
    );
    let no_passage = vec![vec!["q", "p"], vec!["query alone"]];
    assert_error(
        &ranker.compute_score(&no_passage).unwrap_err(),
        "INPUT_INVALID",
        &["list 1", "no passage"],
    );
    let empty_list: Vec<Vec<&str>> = vec![vec![]];
    assert_error(
        &ranker.compute_score(&empty_list).unwrap_err(),
        "INPUT_INVALID",
        &["list 0"],
    );
    assert_error(
        &ranker.iterative_inference(&["q"]).unwrap_err(),
        "INPUT_INVALID",
        &["no passage"],
    );
    let none: [&str; 0] = [];
    assert_error(
        &ranker.iterative_inference(&none).unwrap_err(),
        "INPUT_INVALID",
        &["empty"],
    );
    assert_error(
        &ranker.rerank("q", &none, None).unwrap_err(),
        "INPUT_INVALID",
        &["no passage"],
    );
}

/// The reference's float64 scores (tests/reference/listconranker_ref.py, run by the venv's
/// Python) of one list on a fixture model; `None` when the venv is missing (see
/// `reference_venv`).
fn reference_scores(model: &str, list: &[&str], max_length: usize) -> Option<Vec<f64>> {
    const SCRIPT: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import torch
import listconranker_ref as ref
torch.set_num_threads(1)
model = ref.load(sys.argv[2], torch.float64)
print(json.dumps(model.compute_score([json.loads(sys.argv[3])], int(sys.argv[4]))[0]))
"#;
    let venv = reference_venv()?;
    let output = Command::new(venv.join("bin").join("python"))
        .env("HF_HUB_OFFLINE", "1")
        .arg("-c")
        .arg(SCRIPT)
        .arg(fixtures().join("../reference"))
        .arg(model_dir(model))
        .arg(serde_json::to_string(list).unwrap())
        .arg(max_length.to_string())
        .output()
        .expect("running the reference's Python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "reference on {model}: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    Some(serde_json::from_str(last).unwrap_or_else(|e| panic!("reference output {last:?}: {e}")))
}

#[test]
fn empty_strings_are_scored_like_the_reference() {
    // The reference tokenizes "" as [CLS] [SEP] and scores it; so does this crate: an empty
    // query with an empty passage gives the reference's scores (f32 on the CPU: 1e-5).
    let list = ["", "", "a passage"];
    for model in MODELS {
        let ranker = load(model, Backend::Cpu, Precision::F32).unwrap();
        let scores = ranker.compute_score(&[list.to_vec()]).unwrap();
        assert_eq!(scores[0].len(), 2);
        assert!(
            scores[0]
                .iter()
                .all(|s| s.is_finite() && *s > 0.0 && *s < 1.0)
        );
        let Some(want) = reference_scores(model, &list, 512) else {
            continue;
        };
        let (diff, at) = max_abs_diff(&scores[0], &want);
        eprintln!("{model}: empty query and passage: max |diff| = {diff:e}");
        assert!(
            diff <= 1e-5,
            "{model}: passage {at} off by {diff:e} (> 1e-5)"
        );
    }
}

#[test]
fn max_length_outside_the_model_is_rejected() {
    let mut ranker = cpu();
    assert_error(
        &ranker.set_max_length(100_000).unwrap_err(),
        "INPUT_INVALID",
        &["max_position_embeddings"],
    );
    assert_error(
        &ranker.set_max_length(1).unwrap_err(),
        "INPUT_INVALID",
        &["max_length 1"],
    );
}

#[test]
fn missing_directory_and_files_are_named() {
    let err = load_err(Path::new("/nonexistent/model"));
    assert_error(&err, "MODEL_FETCH_FAILED", &["/nonexistent/model"]);
    let dir = copy_model("zh-tiny");
    fs::remove_file(dir.path().join("list_transformer.pt")).unwrap();
    assert_error(
        &load_err(dir.path()),
        "MODEL_INVALID",
        &["list_transformer.pt"],
    );
    let dir = copy_model("zh-tiny");
    fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    fs::remove_file(dir.path().join("vocab.txt")).unwrap();
    assert_error(&load_err(dir.path()), "MODEL_INVALID", &["tokenizer"]);
}

#[test]
fn truncated_safetensors_is_a_model_error() {
    let dir = copy_model("zh-tiny");
    let path = dir.path().join("model.safetensors");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_error(
        &load_err(dir.path()),
        "MODEL_INVALID",
        &["model.safetensors"],
    );
    fs::write(&path, &bytes[..5]).unwrap();
    assert_error(
        &load_err(dir.path()),
        "MODEL_INVALID",
        &["model.safetensors"],
    );
}

#[test]
fn missing_encoder_key_is_named_with_its_file() {
    let dir = copy_model("zh-tiny");
    rewrite_safetensors(dir.path(), |entries| {
        entries.retain(|(name, ..)| name != WORD_EMBEDDINGS)
    });
    assert_error(
        &load_err(dir.path()),
        "MODEL_INVALID",
        &["model.safetensors", WORD_EMBEDDINGS],
    );
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let dir = copy_model("zh-tiny");
    rewrite_safetensors(dir.path(), |entries| {
        let layer_norm = entries
            .iter_mut()
            .find(|(name, ..)| name == "encoder.layer.1.output.LayerNorm.weight")
            .unwrap();
        layer_norm.1 = vec![layer_norm.1[0] / 2, 2];
    });
    assert_error(
        &load_err(dir.path()),
        "MODEL_INVALID",
        &["encoder.layer.1.output.LayerNorm.weight", "shape"],
    );
}

#[test]
fn non_finite_weights_are_rejected() {
    let dir = copy_model("zh-tiny");
    rewrite_safetensors(dir.path(), |entries| {
        let (_, _, data) = entries
            .iter_mut()
            .find(|(name, ..)| name == WORD_EMBEDDINGS)
            .unwrap();
        data[40..44].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert_error(
        &load_err(dir.path()),
        "MODEL_INVALID",
        &[WORD_EMBEDDINGS, "non-finite"],
    );
}

#[test]
fn list_part_of_another_model_is_a_shape_error() {
    // en-3layer's projection maps its hidden size 24 to D = 20; zh-tiny's encoder has 16.
    let dir = copy_model("zh-tiny");
    fs::copy(
        model_dir("en-3layer").join("linear_in_embedding.pt"),
        dir.path().join("linear_in_embedding.pt"),
    )
    .unwrap();
    assert_error(
        &load_err(dir.path()),
        "MODEL_INVALID",
        &["linear_in_embedding.pt", "shape"],
    );
}

#[test]
fn corrupt_pickle_and_config_are_model_errors() {
    let dir = copy_model("zh-tiny");
    fs::write(
        dir.path().join("list_transformer.pt"),
        b"not a pickle at all",
    )
    .unwrap();
    assert_error(
        &load_err(dir.path()),
        "MODEL_INVALID",
        &["list_transformer.pt"],
    );
    let dir = copy_model("zh-tiny");
    fs::write(dir.path().join("config.json"), b"{\"hidden_size\": 16").unwrap();
    assert_error(&load_err(dir.path()), "MODEL_INVALID", &["config.json"]);
}

#[test]
fn pickle_missing_key_is_named_with_its_file() {
    let dir = copy_model("zh-tiny");
    fs::copy(
        fixtures().join("broken/list_transformer_missing_key.pt"),
        dir.path().join("list_transformer.pt"),
    )
    .unwrap();
    assert_error(
        &load_err(dir.path()),
        "MODEL_INVALID",
        &["list_transformer.pt", "linear_score1.bias"],
    );
}
