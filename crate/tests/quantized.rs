//! Quantized bundles (`convert --dtype q8|q4`): the fixture models score close to the float64
//! reference, the stored values are exactly those of the independent NumPy quantizer
//! (tests/reference/quantize_ref.py), and damaged quantized bundles are refused naming the
//! tensor.
//!
//! The fixtures' hidden sizes (16, 24, 48) are not multiples of the default block of 32, so
//! these bundles use blocks of 8: every encoder FFN output weight is then stored as q4 (in q4
//! bundles) and every q8 weight has several blocks per row. `convert --calibration` (GPTQ-chosen
//! 4-bit weights) is checked here on the fixtures and in quant_quality.rs on real weights.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use listconranker::config::BertConfig;
use listconranker::convert::{
    MAX_CALIBRATION_BYTES, MAX_CALIBRATION_TEXTS, calibrate_q4, convert as write_bundle,
    read_calibration_texts,
};
use listconranker::encode::token_batch;
use listconranker::model::BertEncoder;
use listconranker::tokenize::TextTokenizer;
use listconranker::weights::bundle::{BundleDtype, ConvertOptions, Manifest, sha256_hex};
use listconranker::weights::{find_model_files, load_split_weights};
use listconranker::{LoadOptions, Placement, Reranker};

const FIXTURE_BLOCK: usize = 8;

/// Largest |score - float64 reference of the original weights| allowed for q8 bundles of the
/// random tiny fixtures (measured: 2.1e-2 on zh-tiny, 4.6e-2 on en-3layer). The fixtures' random
/// weights are drawn to spread the scores widely, which makes them far more sensitive than real
/// weights: the ranking quality on real weights is measured in docs/quantization.md.
const Q8_TOLERANCE: f64 = 0.1;
/// The same for q4 in blocks of 8 (measured: 0.43 on zh-tiny, 0.24 on en-3layer): on these
/// fixtures q4 keeps the scores in the right region only.
const Q4_TOLERANCE: f64 = 0.6;
/// Largest |score - float64 reference computing from the bundle's own (dequantized) weights|:
/// the engine computes exactly what the bundle holds, as for f32 (measured: 6.7e-7 for q4 on
/// zh-tiny).
const SAME_WEIGHTS_TOLERANCE: f64 = 1e-5;

/// Convert options for the fixtures: `dtype` in blocks of [`FIXTURE_BLOCK`].
fn fixture_options(dtype: BundleDtype) -> ConvertOptions {
    ConvertOptions {
        dtype,
        block: FIXTURE_BLOCK,
        ..ConvertOptions::default()
    }
}

fn convert(model: &Path, dtype: BundleDtype, out: &Path) -> Manifest {
    write_bundle(model, out, &fixture_options(dtype))
        .unwrap_or_else(|e| panic!("convert to {dtype:?}: {e}"))
}

fn options(max_length: usize) -> LoadOptions {
    LoadOptions {
        max_length,
        ..LoadOptions::default()
    }
}

/// Every compute_score case of `model`, scored from the bundle at `dir`: the largest
/// |score - reference|. (Iterative inference is left out: its scores encode the round in which
/// a passage left, so one swapped neighbour moves a score by a whole round; the real-weights
/// quality figures in docs/quantization.md measure orderings.)
fn worst_difference(model: &str, dir: &Path) -> f64 {
    let expected = expected(model);
    let mut worst = 0f64;
    for case in &expected.compute_score {
        let ranker = Reranker::load(dir, options(case.max_length)).unwrap();
        let got = ranker.compute_score(&case.batch).unwrap();
        for (g, e) in got.iter().zip(&case.scores) {
            worst = worst.max(max_abs_diff(g, e).0);
        }
    }
    worst
}

#[test]
fn quantized_bundles_score_close_to_the_reference_and_are_smaller() {
    for model in MODELS {
        let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let dtypes = [
            BundleDtype::F32,
            BundleDtype::F16,
            BundleDtype::Q8,
            BundleDtype::Q4,
        ];
        let manifests: Vec<Manifest> = dtypes
            .iter()
            .zip(&dirs)
            .map(|(&dtype, dir)| convert(&model_dir(model), dtype, dir.path()))
            .collect();
        let sizes: Vec<u64> = manifests.iter().map(weight_bytes).collect();
        assert!(
            sizes.windows(2).all(|w| w[1] < w[0]),
            "{model}: weight bytes f32, f16, q8, q4 = {sizes:?}"
        );
        let q8 = manifests[2].quantization.as_ref().expect("q8 quantization");
        assert_eq!(
            (q8.scheme.as_str(), q8.block_size),
            ("q8", Some(FIXTURE_BLOCK))
        );
        let q4 = manifests[3].quantization.as_ref().expect("q4 quantization");
        assert_eq!(
            (
                q4.scheme.as_str(),
                q4.block_size,
                q4.quantized_from.as_str()
            ),
            ("q4", Some(FIXTURE_BLOCK), "f32")
        );
        let q8_worst = worst_difference(model, dirs[2].path());
        let q4_worst = worst_difference(model, dirs[3].path());
        eprintln!(
            "{model}: weight bytes {sizes:?}; max |diff| q8 {q8_worst:.2e}, q4 {q4_worst:.2e}"
        );
        assert!(q8_worst <= Q8_TOLERANCE, "{model} q8: {q8_worst:e}");
        assert!(q4_worst <= Q4_TOLERANCE, "{model} q4: {q4_worst:e}");
    }
}

/// The float64 reference's scores of `model`'s compute_score cases with the weights of the
/// bundle at `dir` as NumPy decodes them.
fn reference_scores_of_bundle(
    venv: &Path,
    model: &str,
    dir: &Path,
) -> std::collections::HashMap<String, Vec<Vec<f64>>> {
    let out = Command::new(venv.join("bin/python"))
        .arg(fixtures().join("../reference/quantize_ref.py"))
        .arg("--score")
        .arg(model_dir(model))
        .arg(dir)
        .arg(fixtures().join("expected").join(format!("{model}.json")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn quantized_bundles_score_what_their_dequantized_weights_give_the_reference() {
    let Some(venv) = reference_venv() else {
        return;
    };
    for model in MODELS {
        for dtype in [BundleDtype::Q8, BundleDtype::Q4] {
            let dir = tempfile::tempdir().unwrap();
            convert(&model_dir(model), dtype, dir.path());
            let reference = reference_scores_of_bundle(&venv, model, dir.path());
            let mut worst = 0f64;
            for case in &expected(model).compute_score {
                let ranker = Reranker::load(dir.path(), options(case.max_length)).unwrap();
                let got = ranker.compute_score(&case.batch).unwrap();
                for (g, e) in got.iter().zip(&reference[&case.name]) {
                    worst = worst.max(max_abs_diff(g, e).0);
                }
            }
            eprintln!(
                "{model} {dtype:?}: max |diff| to the reference on the same weights {worst:.2e}"
            );
            assert!(
                worst <= SAME_WEIGHTS_TOLERANCE,
                "{model} {dtype:?}: {worst:e}"
            );
        }
    }
}

#[test]
fn stored_values_match_the_numpy_quantizer() {
    let Some(venv) = reference_venv() else {
        return;
    };
    let script = fixtures().join("../reference/quantize_ref.py");
    for model in MODELS {
        let f32_dir = tempfile::tempdir().unwrap();
        convert(&model_dir(model), BundleDtype::F32, f32_dir.path());
        for dtype in [BundleDtype::Q8, BundleDtype::Q4] {
            let dir = tempfile::tempdir().unwrap();
            convert(&model_dir(model), dtype, dir.path());
            let out = Command::new(venv.join("bin/python"))
                .arg(&script)
                .arg(f32_dir.path())
                .arg(dir.path())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{model} {dtype:?}: {}{stdout}",
                String::from_utf8_lossy(&out.stderr)
            );
            let counts: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
            let quantized = counts["q8"].as_u64().unwrap() + counts["q4"].as_u64().unwrap();
            assert!(quantized > 0, "{model} {dtype:?}: {stdout}");
            if dtype == BundleDtype::Q4 {
                assert!(counts["q4"].as_u64().unwrap() > 0, "{model}: {stdout}");
            }
        }
    }
}

/// A bundle of `dtype` in a fresh directory, with its manifest text.
fn bundle(dtype: BundleDtype) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    convert(&model_dir("zh-tiny"), dtype, dir.path());
    let text = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
    (dir, text)
}

/// Rewrites the shard holding `key` with `edit` applied to its tensors (name -> (dtype, shape,
/// bytes)), and updates the manifest's size, sha256 and tensor list to match: only the
/// quantization checks can then refuse it.
fn edit_shard(
    dir: &Path,
    key: &str,
    edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) {
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let files = manifest["files"].as_array_mut().unwrap();
    let entry = files
        .iter_mut()
        .find(|f| {
            f["tensors"]
                .as_array()
                .is_some_and(|t| t.iter().any(|k| k == key))
        })
        .unwrap_or_else(|| panic!("no shard holds {key}"));
    let path = dir.join(entry["path"].as_str().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = parsed
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    edit(&mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.clone(),
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    let written = safetensors::serialize(views, None).unwrap();
    std::fs::write(&path, &written).unwrap();
    entry["bytes"] = written.len().into();
    entry["sha256"] = sha256_hex(&written).into();
    let mut names: Vec<String> = tensors.iter().map(|t| t.0.clone()).collect();
    names.sort();
    entry["tensors"] = names.into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
}

fn assert_invalid(dir: &Path, words: &[&str]) {
    let e = load_error(dir);
    assert_eq!(e.code(), "MODEL_INVALID", "{e}");
    let text = e.to_string();
    for w in words {
        assert!(text.contains(w), "`{w}` not in: {text}");
    }
}

const QUERY: &str = "bert.encoder.layer.0.attention.self.query.weight";

#[test]
fn a_missing_or_misshapen_scale_is_refused_naming_the_tensor() {
    let (dir, _) = bundle(BundleDtype::Q8);
    edit_shard(dir.path(), QUERY, |t| {
        t.retain(|(name, ..)| *name != format!("{QUERY}.scale"))
    });
    assert_invalid(dir.path(), &[QUERY, "no scale tensor"]);

    // The scales of `key` cut to `shape` (the bytes with them), in a bundle of `dtype`.
    let with_scales = |dtype, key: &str, shape: [usize; 2]| {
        let (dir, _) = bundle(dtype);
        edit_shard(dir.path(), key, |t| {
            let scale = t
                .iter_mut()
                .find(|(name, ..)| *name == format!("{key}.scale"))
                .unwrap();
            scale.2 = shape.to_vec();
            scale.3.truncate(shape[0] * shape[1] * 2);
        });
        dir
    };
    // One row of scales short: [15, 2] for 16 rows of 2 blocks.
    let dir = with_scales(BundleDtype::Q8, QUERY, [15, 2]);
    assert_invalid(dir.path(), &[QUERY, "scales of shape [15, 2]"]);
    // Blocks of 16 where the manifest says 8: a q8 weight, and the 4-bit FFN output weight of a
    // q4 bundle ([16, 32]: 4 blocks of 8 per row, 2 of 16).
    let dir = with_scales(BundleDtype::Q8, QUERY, [16, 1]);
    assert_invalid(dir.path(), &[QUERY, "manifest.json says 8"]);
    let ffn_output = "bert.encoder.layer.0.output.dense.weight";
    let dir = with_scales(BundleDtype::Q4, ffn_output, [16, 2]);
    assert_invalid(
        dir.path(),
        &[ffn_output, "q4 blocks of 16", "manifest.json says 8"],
    );

    // A scale whose weight is stored as a float.
    let (dir, _) = bundle(BundleDtype::Q8);
    edit_shard(dir.path(), QUERY, |t| {
        t.push((
            "bert.encoder.layer.0.attention.self.query.bias.scale".into(),
            safetensors::Dtype::F16,
            vec![1],
            vec![0, 0x3c],
        ))
    });
    assert_invalid(dir.path(), &["query.bias.scale", "no quantized weight"]);
}

#[test]
fn values_that_do_not_match_their_shape_are_refused_naming_the_tensor() {
    let (dir, _) = bundle(BundleDtype::Q8);
    let shard = {
        let manifest: Manifest =
            Manifest::parse(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        let file = manifest
            .files
            .iter()
            .find(|f| f.tensors.iter().any(|k| k == QUERY))
            .unwrap()
            .path
            .clone();
        dir.path().join(file)
    };
    // Declare the q8 values one row longer than their bytes (the header is edited in place:
    // same length, so the file is otherwise unchanged), and keep the manifest's sha256 true.
    let mut bytes = std::fs::read(&shard).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
    let needle = format!("\"{QUERY}\":{{\"dtype\":\"I8\",\"shape\":[16,16]");
    assert!(header.contains(&needle), "{header}");
    let edited = header.replace(&needle, &needle.replace("[16,16]", "[17,16]"));
    bytes[8..8 + header_len].copy_from_slice(edited.as_bytes());
    std::fs::write(&shard, &bytes).unwrap();
    let manifest_path = dir.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        if dir.path().join(f["path"].as_str().unwrap()) == shard {
            f["sha256"] = sha256_hex(&bytes).into();
        }
    }
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    assert_invalid(dir.path(), &[QUERY, "do not match its shape"]);
}

#[test]
fn an_unknown_scheme_or_a_requantized_bundle_is_refused() {
    let (dir, text) = bundle(BundleDtype::Q8);
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(
        &manifest_path,
        text.replace("\"scheme\": \"q8\"", "\"scheme\": \"q3\""),
    )
    .unwrap();
    assert_invalid(
        dir.path(),
        &["manifest.json", "unknown quantization scheme `q3`"],
    );

    std::fs::write(
        &manifest_path,
        text.replace("\"dtype\": \"q8\"", "\"dtype\": \"q2\""),
    )
    .unwrap();
    assert_invalid(dir.path(), &["unknown dtype `q2`"]);

    // Quantizing a quantized bundle again would add the errors up: refused, nothing written.
    std::fs::write(&manifest_path, &text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("q4");
    let options = ConvertOptions {
        dtype: BundleDtype::Q4,
        ..ConvertOptions::default()
    };
    let e = write_bundle(dir.path(), &target, &options).unwrap_err();
    assert_eq!(e.code(), "INPUT_INVALID", "{e}");
    assert!(e.to_string().contains("q8 bundle"), "{e}");
    assert!(!target.exists());
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

/// Every text of `model`'s compute_score cases, once: the calibration text of the GPTQ tests
/// (calibrating on the very texts scored is the case GPTQ optimises: the weights' outputs on
/// these inputs).
fn fixture_texts(model: &str) -> Vec<String> {
    let mut texts: Vec<String> = expected(model)
        .compute_score
        .iter()
        .flat_map(|case| case.batch.iter().flatten().cloned())
        .collect();
    texts.sort();
    texts.dedup();
    texts
}

/// Mean |score - float64 reference| over every compute_score case of `model` from `dir`.
fn mean_difference(model: &str, dir: &Path) -> f64 {
    let (mut sum, mut count) = (0f64, 0usize);
    for case in &expected(model).compute_score {
        let ranker = Reranker::load(dir, options(case.max_length)).unwrap();
        let got = ranker.compute_score(&case.batch).unwrap();
        for (g, e) in got.iter().zip(&case.scores) {
            for (a, b) in g.iter().zip(e) {
                sum += (f64::from(*a) - b).abs();
                count += 1;
            }
        }
    }
    sum / count as f64
}

#[test]
fn calibrated_q4_weights_are_recorded_and_move_the_scores_less_than_rounding() {
    for model in MODELS {
        let q4 = fixture_options(BundleDtype::Q4);
        let texts = fixture_texts(model);
        let mut layers_done = Vec::new();
        let calibrated = calibrate_q4(&model_dir(model), &texts, &q4, |done, of| {
            layers_done.push((done, of))
        })
        .unwrap();
        let layers = layers_done.last().unwrap().1;
        assert_eq!(
            layers_done,
            (1..=layers).map(|n| (n, layers)).collect::<Vec<_>>()
        );
        // One FFN output weight per layer, in 4 bits.
        let keys: Vec<String> = (0..layers)
            .map(|n| format!("bert.encoder.layer.{n}.output.dense.weight"))
            .collect();
        assert_eq!(calibrated.weights.keys().cloned().collect::<Vec<_>>(), keys);
        assert_eq!(calibrated.calibration.texts, texts.len());
        // The real tokens of the texts as the model's tokenizer cuts them.
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = fixture_encoder(model).1.encode_all(&refs).unwrap();
        assert_eq!(
            calibrated.calibration.tokens,
            ids.iter().map(Vec::len).sum::<usize>()
        );

        let rounded = tempfile::tempdir().unwrap();
        write_bundle(&model_dir(model), rounded.path(), &q4).unwrap();
        let gptq = tempfile::tempdir().unwrap();
        let options = ConvertOptions {
            calibrated: Some(calibrated.clone()),
            ..q4.clone()
        };
        let manifest = write_bundle(&model_dir(model), gptq.path(), &options).unwrap();
        let recorded = manifest
            .quantization
            .as_ref()
            .and_then(|q| q.calibration.clone())
            .expect("the manifest records the calibration");
        assert_eq!(
            (
                recorded.method.as_str(),
                recorded.tensors.clone(),
                recorded.texts
            ),
            ("gptq", keys.clone(), texts.len())
        );
        // The stored values are the calibrated ones: the same bytes as GPTQ's output.
        let stored = stored_tensor(gptq.path(), &keys[0]);
        assert_eq!(stored, calibrated.weights[&keys[0]].values, "{model}");
        assert_ne!(stored, stored_tensor(rounded.path(), &keys[0]), "{model}");

        let rounded_error = mean_difference(model, rounded.path());
        let gptq_error = mean_difference(model, gptq.path());
        eprintln!(
            "{model}: mean |score - reference| q4 rounded {rounded_error:.3e}, GPTQ {gptq_error:.3e}"
        );
        assert!(
            gptq_error < rounded_error,
            "{model}: {gptq_error} >= {rounded_error}"
        );
        assert!(worst_difference(model, gptq.path()) <= Q4_TOLERANCE);
    }
}

/// The stored bytes of tensor `name` in the bundle at `dir`.
fn stored_tensor(dir: &Path, name: &str) -> Vec<u8> {
    let manifest =
        Manifest::parse(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let file = manifest
        .files
        .iter()
        .find(|f| f.tensors.iter().any(|k| k == name))
        .unwrap_or_else(|| panic!("no shard holds {name}"));
    let bytes = std::fs::read(dir.join(&file.path)).unwrap();
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    parsed.tensor(name).unwrap().data().to_vec()
}

#[test]
fn bad_calibration_input_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let input_error = |path: &Path, words: &[&str]| {
        let e = read_calibration_texts(path).unwrap_err();
        assert_eq!(e.code(), "INPUT_INVALID", "{e}");
        for w in words {
            assert!(e.to_string().contains(w), "`{w}` not in: {e}");
        }
    };
    input_error(&write("blank.txt", b"\n  \n\n"), &["no text"]);
    input_error(&write("latin1.txt", b"caf\xe9\n"), &["not UTF-8"]);
    input_error(&dir.path().join("missing.txt"), &["missing.txt"]);
    // Not a regular file (a directory; pipes and devices alike): no size to check first.
    input_error(dir.path(), &["not a regular file"]);
    let many = "a text\n".repeat(MAX_CALIBRATION_TEXTS + 1);
    input_error(&write("many.txt", many.as_bytes()), &["4097 texts"]);
    // Past the size limit: refused from its size, before reading (a sparse file).
    let huge = dir.path().join("huge.txt");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_CALIBRATION_BYTES + 1)
        .unwrap();
    input_error(&huge, &["bytes"]);
    let texts = read_calibration_texts(&write("ok.txt", b" one \n\ntwo\n")).unwrap();
    assert_eq!(texts, ["one", "two"]);

    // Calibration chooses 4-bit weights: another dtype, or a quantized source, is refused.
    let zh = model_dir("zh-tiny");
    let q8 = fixture_options(BundleDtype::Q8);
    let e = calibrate_q4(&zh, &texts, &q8, |_, _| {}).unwrap_err();
    assert_eq!(e.code(), "INPUT_INVALID", "{e}");
    for block in [0, 7] {
        let odd = ConvertOptions {
            block,
            ..fixture_options(BundleDtype::Q4)
        };
        let e = calibrate_q4(&zh, &texts, &odd, |_, _| {}).unwrap_err();
        assert_eq!(e.code(), "INPUT_INVALID", "block {block}: {e}");
    }
    let q4 = fixture_options(BundleDtype::Q4);
    let (quantized, _) = bundle(BundleDtype::Q8);
    let e = calibrate_q4(quantized.path(), &texts, &q4, |_, _| {}).unwrap_err();
    assert_eq!(e.code(), "INPUT_INVALID", "{e}");
    assert!(e.to_string().contains("q8 bundle"), "{e}");

    // Calibrated weights the bundle would not store in 4 bits, or of the wrong shape: refused,
    // nothing written.
    let calibrated = calibrate_q4(&zh, &texts, &q4, |_, _| {}).unwrap();
    let key = "bert.encoder.layer.0.output.dense.weight";
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("bundle");
    let refused = |calibrated| {
        let options = ConvertOptions {
            calibrated: Some(calibrated),
            ..q4.clone()
        };
        write_bundle(&zh, &target, &options).unwrap_err()
    };
    let mut stray = calibrated.clone();
    let weight = stray.weights.remove(key).unwrap();
    let missing = "bert.encoder.layer.99.output.dense.weight";
    stray.weights.insert(missing.into(), weight);
    let e = refused(stray);
    assert_eq!(e.code(), "INPUT_INVALID", "{e}");
    assert!(e.to_string().contains(missing), "{e}");
    let mut misshapen = calibrated.clone();
    misshapen.weights.get_mut(key).unwrap().scales_shape[1] += 1;
    let e = refused(misshapen);
    assert_eq!(e.code(), "MODEL_INVALID", "{e}");
    assert!(e.to_string().contains(key), "{e}");
    assert!(!target.exists());
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    // The command line: --calibration with q8 is refused with the same code.
    let calibration = dir.path().join("ok.txt");
    let output = run_cli(
        &[
            "convert",
            "--model",
            zh.to_str().unwrap(),
            "--out",
            target.to_str().unwrap(),
            "--dtype",
            "q8",
            "--calibration",
            calibration.to_str().unwrap(),
        ],
        b"",
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INPUT_INVALID"), "{stderr}");
    assert!(!target.exists());
}

/// The encoder of a fixture (its `bert.*` tensors) on the host in f32, and its tokenizer.
fn fixture_encoder(model: &str) -> (BertEncoder, TextTokenizer) {
    let files = find_model_files(&model_dir(model)).unwrap();
    let bert = BertConfig::from_file(&files.encoder.config).unwrap();
    let mut weights = load_split_weights(&files).unwrap();
    weights.retain(|key| key.starts_with("bert."));
    let encoder = BertEncoder::load_all(weights, &bert, &Placement::host_f32()).unwrap();
    let mut tokenizer = TextTokenizer::from_files(&files.encoder.tokenizer).unwrap();
    tokenizer
        .set_max_length(bert.max_position_embeddings.min(512))
        .unwrap();
    (encoder, tokenizer)
}

#[test]
fn calibration_hessians_count_real_tokens_only_and_an_identity_replacement_changes_nothing() {
    for model in MODELS {
        let (mut padded, tokenizer) = fixture_encoder(model);
        let (mut one_by_one, _) = fixture_encoder(model);
        let (untouched, _) = fixture_encoder(model);
        let texts = fixture_texts(model);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = tokenizer.encode_all(&refs).unwrap();
        let device = Placement::host_f32().device().clone();
        let all: Vec<usize> = (0..ids.len()).collect();
        // Texts of different lengths in one padded batch, and each text alone (no padding):
        // the Hessians must agree if padding is left out.
        let batch = || token_batch(&ids, &all, &device);
        let singles: Vec<_> = (0..ids.len())
            .map(|i| token_batch(&ids, &[i], &device))
            .collect();
        let record = |into: &mut Vec<Vec<f64>>, hessian: Vec<f64>, weight: Vec<f32>| {
            into.push(hessian);
            Ok(weight)
        };
        let (mut from_padded, mut from_singles) = (Vec::new(), Vec::new());
        padded
            .recalibrate_ffn_outputs(&[batch()], |_, h, w| record(&mut from_padded, h, w))
            .unwrap();
        one_by_one
            .recalibrate_ffn_outputs(&singles, |_, h, w| record(&mut from_singles, h, w))
            .unwrap();
        assert!(!from_padded.is_empty());
        for (layer, (a, b)) in from_padded.iter().zip(&from_singles).enumerate() {
            let scale = a.iter().fold(0f64, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
            assert!(scale > 0.0, "{model} layer {layer}: an empty Hessian");
            assert!(
                worst <= 1e-5 * scale,
                "{model} layer {layer}: padded and unpadded Hessians differ by {worst:e} (of {scale:e})"
            );
        }
        // Returning each weight unchanged leaves the encoder computing what it did.
        let pooled = |encoder: &BertEncoder| {
            let b = batch();
            encoder
                .forward_pooled(b.ids, b.real)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (before, after) = (pooled(&untouched), pooled(&padded));
        let worst = before
            .iter()
            .zip(&after)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            worst <= 1e-6,
            "{model}: identity replacement moved pooled features by {worst:e}"
        );
    }
}
