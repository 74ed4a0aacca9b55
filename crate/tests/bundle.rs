//! Web bundles: `convert` writes manifest.json + shards + tokenizer.json; loading the bundle
//! gives the same scores as the original split layout (f32: bit-identical), and bad bundles are
//! refused with MODEL_INVALID.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use listconranker::convert::convert as write_bundle;
use listconranker::weights::bundle::{BundleDtype, ConvertOptions, Manifest};
use listconranker::{LoadOptions, Reranker};

fn options(max_length: usize) -> LoadOptions {
    LoadOptions {
        max_length,
        ..LoadOptions::default()
    }
}

fn convert(model: &str, dtype: BundleDtype, out: &Path) -> Manifest {
    let options = ConvertOptions {
        dtype,
        layers_per_shard: 1,
        ..ConvertOptions::default()
    };
    write_bundle(&model_dir(model), out, &options).expect("convert")
}

#[test]
fn f32_bundles_score_exactly_like_the_split_layout() {
    for model in MODELS {
        let dir = tempfile::tempdir().unwrap();
        convert(model, BundleDtype::F32, dir.path());
        let expected = expected(model);
        for case in &expected.compute_score {
            let original = Reranker::load(model_dir(model), options(case.max_length)).unwrap();
            let bundle = Reranker::load(dir.path(), options(case.max_length)).unwrap();
            let a = original.compute_score(&case.batch).unwrap();
            let b = bundle.compute_score(&case.batch).unwrap();
            assert_eq!(a, b, "{model} {}: bundle scores differ", case.name);
            let flat: Vec<f32> = b.concat();
            let want: Vec<f64> = case.scores.concat();
            let (diff, at) = max_abs_diff(&flat, &want);
            assert!(diff <= 1e-5, "{model} {}: |diff| {diff} at {at}", case.name);
        }
        let bundle = Reranker::load(dir.path(), options(512)).unwrap();
        for case in expected.iterative.iter().filter(|c| c.max_length == 512) {
            let got = bundle.iterative_inference(&case.list).unwrap();
            let (diff, at) = max_abs_diff(&got, &case.scores);
            assert!(diff <= 1e-5, "{model} {}: |diff| {diff} at {at}", case.name);
        }
    }
}

#[test]
fn the_manifest_lists_every_file_and_tensor() {
    for model in MODELS {
        let dir = tempfile::tempdir().unwrap();
        let written = convert(model, BundleDtype::F32, dir.path());
        let text = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
        let manifest = Manifest::parse(&text).unwrap();
        assert_eq!(manifest.format, "listconranker-bundle");
        assert_eq!(manifest.version, 1);
        assert_eq!(manifest.files.len(), written.files.len());
        let layers = manifest.config["num_hidden_layers"].as_u64().unwrap() as usize;
        let names: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names[0], "tokenizer.json");
        assert_eq!(names[1], "embeddings.safetensors");
        assert_eq!(*names.last().unwrap(), "head.safetensors");
        // One encoder shard per layer (layers_per_shard = 1).
        assert_eq!(names.len(), 3 + layers, "{names:?}");
        for file in &manifest.files {
            let bytes = std::fs::read(dir.path().join(&file.path)).unwrap();
            assert_eq!(bytes.len() as u64, file.bytes, "{}", file.path);
            assert_eq!(file.sha256.len(), 64);
            assert_eq!(
                file.path.ends_with(".safetensors"),
                !file.tensors.is_empty()
            );
        }
        let head = manifest
            .files
            .iter()
            .find(|f| f.path == "head.safetensors")
            .unwrap();
        assert!(head.tensors.iter().any(|k| k == "linear_score1.weight"));
        assert!(
            head.tensors
                .iter()
                .any(|k| k.starts_with("linear_in_embedding."))
        );
        assert!(
            !head
                .tensors
                .iter()
                .any(|k| k.starts_with("list_transformer_layer."))
        );
    }
}

#[test]
fn a_tokenizer_built_from_vocab_txt_is_saved_as_tokenizer_json() {
    // en-3layer has only vocab.txt + tokenizer_config.json.
    assert!(!model_dir("en-3layer").join("tokenizer.json").exists());
    let dir = tempfile::tempdir().unwrap();
    convert("en-3layer", BundleDtype::F32, dir.path());
    let original = Reranker::load(model_dir("en-3layer"), options(512)).unwrap();
    let bundle = Reranker::load(dir.path(), options(512)).unwrap();
    let debug = expected("en-3layer").debug;
    assert_eq!(bundle.token_ids(&debug.texts).unwrap(), debug.input_ids);
    assert_eq!(
        original.token_ids(&debug.texts).unwrap(),
        bundle.token_ids(&debug.texts).unwrap()
    );
}

#[test]
fn f16_bundles_are_half_the_size_and_close() {
    let model = "zh-tiny";
    let f32_dir = tempfile::tempdir().unwrap();
    let f16_dir = tempfile::tempdir().unwrap();
    let a = convert(model, BundleDtype::F32, f32_dir.path());
    let b = convert(model, BundleDtype::F16, f16_dir.path());
    assert_eq!(b.dtype, "f16");
    // Same headers, half the tensor bytes.
    assert!(
        weight_bytes(&b) * 100 <= weight_bytes(&a) * 51,
        "{} vs {}",
        weight_bytes(&b),
        weight_bytes(&a)
    );
    // Weights rounded to f16 (about 3 decimal digits), computed in f32: the f16 tolerance of
    // the golden tests, 5e-3, with the same ranking wherever the reference's scores are more
    // than 1e-2 apart.
    let mut worst = 0f64;
    for case in &expected(model).compute_score {
        let ranker = Reranker::load(f16_dir.path(), options(case.max_length)).unwrap();
        let got = ranker.compute_score(&case.batch).unwrap();
        for (list, (g, e)) in got.iter().zip(&case.scores).enumerate() {
            let what = format!("f16 bundle {} list {list}", case.name);
            let (diff, at) = max_abs_diff(g, e);
            assert!(diff <= 5e-3, "{what}: |diff| {diff:e} at {at}");
            assert_same_ranking(g, e, 1e-2, &what);
            worst = worst.max(diff);
        }
    }
    eprintln!("{model} f16 bundle, computed in f32 on the CPU: max |diff| = {worst:e}");
}

#[test]
fn bad_bundles_are_refused_with_model_invalid() {
    let dir = tempfile::tempdir().unwrap();
    convert("zh-tiny", BundleDtype::F32, dir.path());
    let manifest_path = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).unwrap();

    // A newer format version.
    std::fs::write(
        &manifest_path,
        text.replace("\"version\": 1", "\"version\": 99"),
    )
    .unwrap();
    let e = load_error(dir.path());
    assert_eq!(e.code(), "MODEL_INVALID", "{e}");
    assert!(e.to_string().contains("version 99"), "{e}");

    // A corrupted shard: sha256 mismatch, naming the file.
    std::fs::write(&manifest_path, &text).unwrap();
    let shard = dir.path().join("head.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&shard, &bytes).unwrap();
    let e = load_error(dir.path());
    assert_eq!(e.code(), "MODEL_INVALID", "{e}");
    assert!(e.to_string().contains("head.safetensors"), "{e}");

    // A missing shard.
    std::fs::remove_file(&shard).unwrap();
    let e = load_error(dir.path());
    assert!(e.to_string().contains("head.safetensors"), "{e}");
}

#[test]
fn the_cli_converts_and_scores_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let status = Command::new(env!("CARGO_BIN_EXE_listconranker"))
        .args(["convert", "--model"])
        .arg(model_dir("zh-tiny"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(out.join("manifest.json").is_file());
    let case = &expected("zh-tiny").compute_score[0];
    let input: String = case
        .batch
        .iter()
        .map(|list| serde_json::to_string(list).unwrap() + "\n")
        .collect();
    let input_path = dir.path().join("input.jsonl");
    std::fs::write(&input_path, input).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_listconranker"))
        .args(["score", "--model"])
        .arg(&out)
        .arg("--input")
        .arg(&input_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got: Vec<f32> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .flat_map(|l| serde_json::from_str::<Vec<f32>>(l).unwrap())
        .collect();
    let (diff, at) = max_abs_diff(&got, &case.scores.concat());
    assert!(diff <= 1e-5, "|diff| {diff} at {at}");
}

#[test]
fn shards_respect_the_size_limit_and_keep_the_scores() {
    let model = "zh-tiny";
    let dir = tempfile::tempdir().unwrap();
    let limit = 30_000u64;
    let options = ConvertOptions {
        dtype: BundleDtype::F32,
        shard_bytes: limit,
        ..ConvertOptions::default()
    };
    let manifest = write_bundle(&model_dir(model), dir.path(), &options).expect("convert");
    let shards: Vec<_> = manifest
        .files
        .iter()
        .filter(|f| !f.tensors.is_empty())
        .collect();
    assert!(
        shards.len() > 4,
        "{:?}",
        shards.iter().map(|f| &f.path).collect::<Vec<_>>()
    );
    let mut over = 0;
    for file in &shards {
        // Every shard: data within the limit, unless it is one tensor alone larger than it.
        let path = dir.path().join(&file.path);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            file.bytes,
            "{}",
            file.path
        );
        let (_, tensors) = shard_data(&path);
        assert_eq!(tensors, file.tensors.len(), "{}", file.path);
        if assert_shard_within(&path, limit) > limit {
            over += 1;
        }
    }
    // zh-tiny's word embeddings (21128 x 16 f32, 1.35 MB) are such a tensor.
    assert!(
        over >= 1,
        "no shard holds a tensor over the limit: the case is not exercised"
    );
    let case = &expected(model).compute_score[0];
    let original = Reranker::load(model_dir(model), options_for(case.max_length)).unwrap();
    let bundle = Reranker::load(dir.path(), options_for(case.max_length)).unwrap();
    assert_eq!(
        original.compute_score(&case.batch).unwrap(),
        bundle.compute_score(&case.batch).unwrap()
    );
}

fn options_for(max_length: usize) -> LoadOptions {
    options(max_length)
}

/// The merged layout: every tensor in one safetensors under prefixes (`model.hf_model.` for the
/// encoder, `model.` for the list part), with the unused template and pooler present.
fn write_merged(model: &str, out: &Path) {
    let files = listconranker::weights::find_model_files(&model_dir(model)).unwrap();
    let mut map = listconranker::weights::load_split_weights(&files).unwrap();
    let keys: Vec<String> = map.keys().map(str::to_string).collect();
    let mut tensors = Vec::new();
    for key in keys {
        let shape = map.shape(&key).unwrap().to_vec();
        let t = map.take(&key, &shape).unwrap();
        let name = match key.strip_prefix("bert.") {
            Some(bare) => format!("model.hf_model.{bare}"),
            None => format!("model.{key}"),
        };
        let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name, shape, bytes));
    }
    tensors.push((
        "model.list_transformer_layer.linear1.bias".into(),
        vec![2],
        vec![0; 8],
    ));
    tensors.push((
        "model.hf_model.pooler.dense.bias".into(),
        vec![2],
        vec![0; 8],
    ));
    let views = tensors
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect::<Vec<_>>();
    std::fs::write(
        out.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    for name in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ] {
        let src = model_dir(model).join(name);
        if src.exists() {
            std::fs::copy(src, out.join(name)).unwrap();
        }
    }
}

#[test]
fn a_merged_single_safetensors_loads_and_converts_like_the_split_layout() {
    let model = "zh-tiny";
    let merged = tempfile::tempdir().unwrap();
    write_merged(model, merged.path());
    let bundle = tempfile::tempdir().unwrap();
    write_bundle(merged.path(), bundle.path(), &ConvertOptions::default()).expect("convert merged");
    for case in &expected(model).compute_score {
        let original = Reranker::load(model_dir(model), options(case.max_length)).unwrap();
        let from_merged = Reranker::load(merged.path(), options(case.max_length)).unwrap();
        let from_bundle = Reranker::load(bundle.path(), options(case.max_length)).unwrap();
        let want = original.compute_score(&case.batch).unwrap();
        assert_eq!(
            from_merged.compute_score(&case.batch).unwrap(),
            want,
            "{}",
            case.name
        );
        assert_eq!(
            from_bundle.compute_score(&case.batch).unwrap(),
            want,
            "{}",
            case.name
        );
    }
}
