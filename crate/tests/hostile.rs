//! Hostile and broken inputs, one test per class: each must end in a clear error with a stable
//! code (never a panic, an abort, a hang or a silent wrong answer), and leave nothing outside
//! the output changed. Every hostile input is built here, from the fixtures.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use listconranker::{Error, LoadOptions, Reranker};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_listconranker"))
}

use common::run_cli as run;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_fails_with(output: &Output, code: &str, words: &[&str]) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("[{code}]")),
        "no [{code}] in: {text}"
    );
    for word in words {
        assert!(text.contains(word), "no `{word}` in: {text}");
    }
    assert!(!text.contains("panicked"), "{text}");
}

fn load(dir: &Path) -> Result<Reranker, Error> {
    Reranker::load(dir, LoadOptions::default())
}

fn assert_error(result: Result<Reranker, Error>, code: &str, words: &[&str]) {
    let e = match result {
        Ok(_) => panic!("loaded; expected {code}"),
        Err(e) => e,
    };
    let text = e.to_string();
    assert_eq!(e.code(), code, "{text}");
    for word in words {
        assert!(text.contains(word), "no `{word}` in: {text}");
    }
}

/// A copy of a fixture model, to break.
fn copy_model(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, value.to_string()).unwrap();
}

/// Every tensor of a fixture model under its canonical key, f32.
fn tensors(name: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let files = listconranker::weights::find_model_files(&model_dir(name)).unwrap();
    let mut map = listconranker::weights::load_split_weights(&files).unwrap();
    let mut keys: Vec<(String, Vec<usize>)> = map
        .keys()
        .map(|k| (k.to_string(), map.shape(k).unwrap().to_vec()))
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|(key, shape)| {
            let raw = map.take(&key, &shape).unwrap();
            (key, shape, raw.data)
        })
        .collect()
}

/// A model in the merged layout (one `model.safetensors` under canonical keys) with the
/// fixture's config and tokenizer, from the given tensors.
fn merged_model(name: &str, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> tempfile::TempDir {
    let dir = copy_model(name);
    for file in [
        "linear_in_embedding.pt",
        "list_transformer.pt",
        "pytorch_model.bin",
    ] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, data)| data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((key, shape, _), b)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .unwrap();
            (key.clone(), view)
        })
        .collect();
    let file = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), file).unwrap();
    dir
}

fn scores_of(dir: &Path, batch: &[Vec<&str>]) -> Result<Vec<Vec<f32>>, Error> {
    load(dir)?.compute_score(batch)
}

// 1. Lists whose attention grows with the square of their length.

#[test]
fn lists_past_the_limit_are_refused_before_anything_is_allocated() {
    let ranker = load(&model_dir("zh-tiny")).unwrap();
    // 4 heads: sqrt(2^30 / (4 * 12)) = 4729 items.
    assert_eq!(ranker.max_passages(), 4728);
    let mut huge = vec!["查询"];
    huge.extend(std::iter::repeat_n("段落", 100_000));
    let e = ranker.compute_score(&[huge.clone()]).unwrap_err();
    assert_eq!(e.code(), "INPUT_INVALID");
    assert!(
        e.to_string()
            .contains("list 0: 100000 passages, more than the limit of 4728"),
        "{e}"
    );
    let e = ranker.iterative_inference(&huge).unwrap_err();
    assert_eq!(e.code(), "INPUT_INVALID", "{e}");

    let lines = "[\"q\", \"a\", \"b\"]\n[\"q\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\"]\n";
    let model = model_dir("zh-tiny").display().to_string();
    let output = run(
        &["score", "--model", &model, "--max-passages", "5"],
        lines.as_bytes(),
    );
    assert_fails_with(
        &output,
        "INPUT_INVALID",
        &[
            "line 2: 6 passages, more than the limit of 5",
            "--max-passages",
        ],
    );
    // The list before it was scored and printed.
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
}

// 2. Small inputs that would take large memory.

#[test]
fn a_line_without_newline_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("zeros");
    std::fs::write(&input, vec![b'a'; (1 << 20) + 10]).unwrap();
    let model = model_dir("zh-tiny").display().to_string();
    let output = run(
        &[
            "score",
            "--model",
            &model,
            "--input",
            input.to_str().unwrap(),
            "--max-line-mb",
            "1",
        ],
        b"",
    );
    assert_fails_with(&output, "INPUT_INVALID", &["line 1: longer than 1 MiB"]);
}

#[test]
fn a_huge_passage_scores_as_its_first_tokens_do() {
    let ranker = load(&model_dir("en-3layer")).unwrap();
    // 40 MB of words: only the first 512 tokens count, and the tokenizer sees a bounded prefix.
    let huge = "alpha beta ".repeat(4_000_000);
    let short = "alpha beta ".repeat(600);
    let scores = ranker
        .compute_score(&[vec!["query", huge.as_str()], vec!["query", short.as_str()]])
        .unwrap();
    assert_eq!(scores[0], scores[1]);
}

// 3. Token ids outside the embedding table.

#[test]
fn a_token_past_the_embedding_table_is_refused_at_load() {
    let dir = copy_model("zh-tiny");
    edit_json(&dir.path().join("tokenizer.json"), |t| {
        t["model"]["vocab"]["zzz-beyond"] = serde_json::json!(21128 + 7);
    });
    assert_error(
        load(dir.path()),
        "MODEL_INVALID",
        &["zzz-beyond", "21135", "21128"],
    );
}

#[test]
fn duplicated_vocab_lines_push_ids_past_the_table_and_are_refused() {
    let dir = copy_model("en-3layer");
    let vocab = dir.path().join("vocab.txt");
    let mut text = std::fs::read_to_string(&vocab).unwrap();
    // A duplicated special token takes the id of its last line: 558, one past the table.
    text.push_str("[CLS]\n");
    std::fs::write(&vocab, text).unwrap();
    assert_error(load(dir.path()), "MODEL_INVALID", &["[CLS]", "558"]);
}

#[test]
fn a_tokenizer_that_gives_no_tokens_is_an_error() {
    let dir = copy_model("zh-tiny");
    edit_json(&dir.path().join("tokenizer.json"), |t| {
        t["post_processor"] = serde_json::Value::Null;
    });
    let e = scores_of(dir.path(), &[vec!["查询", ""]]).unwrap_err();
    assert_eq!(e.code(), "MODEL_INVALID", "{e}");
    assert!(e.to_string().contains("gives no tokens"), "{e}");
}

// 4. Checkpoints that disagree with themselves.

#[test]
fn layers_the_config_does_not_have_are_reported_unused() {
    let dir = copy_model("zh-tiny");
    edit_json(&dir.path().join("config.json"), |c| {
        c["num_hidden_layers"] = serde_json::json!(1);
    });
    assert_error(
        load(dir.path()),
        "MODEL_INVALID",
        &["does not use", "encoder.layer.1."],
    );
}

#[test]
fn a_misnumbered_list_layer_is_reported_unused() {
    let mut t = tensors("en-3layer");
    for (key, _, _) in &mut t {
        if let Some(rest) = key.strip_prefix("list_transformer.layers.2.") {
            *key = format!("list_transformer.layers.5.{rest}");
        }
    }
    let dir = merged_model("en-3layer", &t);
    assert_error(
        load(dir.path()),
        "MODEL_INVALID",
        &["does not use", "list_transformer.layers.5."],
    );
}

/// A list layer past the ones the model takes, whose tensor would be refused if it were read
/// (one stored float viewed as 2e9: 8 GB when gathered): the load must name it unused, which
/// shows it was judged from the pickle's metadata, never decoded.
#[test]
fn unused_tensors_are_reported_before_any_is_decoded() {
    let Some(venv) = reference_venv() else { return };
    let dir = copy_model("zh-tiny");
    let list = dir.path().join("list_transformer.pt");
    let script = "import sys, torch\n\
        state = torch.load(sys.argv[1], weights_only=True)\n\
        state['list_transformer.layers.7.linear1.weight'] = torch.zeros(1).expand(2_000_000_000)\n\
        torch.save(state, sys.argv[1])\n";
    let status = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(&list)
        .status()
        .unwrap();
    assert!(status.success());
    assert_error(
        load(dir.path()),
        "MODEL_INVALID",
        &[
            "does not use",
            "list_transformer.layers.7.linear1.weight",
            "list_transformer.pt",
        ],
    );
    // What decoding it would have said: so the error above came before any decoding.
    let files = listconranker::weights::find_model_files(dir.path()).unwrap();
    let decoded = listconranker::weights::load_split_weights(&files)
        .err()
        .unwrap();
    assert!(
        decoded.to_string().contains("declares more bytes"),
        "{decoded}"
    );
}

/// A bundle whose manifest lists a tensor the model does not use is refused before any shard
/// is read (the shard holding it is corrupt here: reading it would fail on its sha256).
#[test]
fn a_bundle_listing_an_unused_tensor_is_refused_before_its_shards_are_read() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("bundle");
    let output = convert(&model_dir("en-3layer"), &out);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut shard = String::new();
    edit_json(&out.join("manifest.json"), |manifest| {
        let files = manifest["files"].as_array_mut().unwrap();
        let head = files
            .iter_mut()
            .find(|f| f["path"].as_str().unwrap().starts_with("head"))
            .unwrap();
        let tensors = head["tensors"].as_array_mut().unwrap();
        tensors.push(serde_json::json!("linear_score9.weight"));
        shard = head["path"].as_str().unwrap().to_string();
    });
    let shard_path = out.join(shard);
    let mut bytes = std::fs::read(&shard_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&shard_path, bytes).unwrap();
    assert_error(
        load(&out),
        "MODEL_INVALID",
        &["does not use", "linear_score9.weight"],
    );
}

#[test]
fn a_zero_dimensional_weight_is_an_error() {
    let mut t = tensors("zh-tiny");
    let bias = t
        .iter_mut()
        .find(|(k, _, _)| k == "linear_score1.bias")
        .unwrap();
    bias.1 = vec![];
    let dir = merged_model("zh-tiny", &t);
    assert_error(load(dir.path()), "MODEL_INVALID", &["linear_score1.bias"]);
    // The same for the weight the list sizes are read from.
    let mut t = tensors("zh-tiny");
    let first = t
        .iter_mut()
        .find(|(k, _, _)| k == "list_transformer.layers.0.linear1.weight")
        .unwrap();
    first.1 = vec![];
    first.2.truncate(1);
    let dir = merged_model("zh-tiny", &t);
    assert_error(load(dir.path()), "MODEL_INVALID", &["linear1.weight"]);
}

#[test]
fn a_tensor_in_two_shards_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    let options = listconranker::weights::bundle::ConvertOptions::default();
    listconranker::convert::convert(&model_dir("zh-tiny"), &bundle, &options).unwrap();
    // Add a copy of a head tensor to the embeddings shard, and list it there too.
    let manifest_path = bundle.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let files = manifest["files"].as_array_mut().unwrap();
    let shard = files
        .iter_mut()
        .find(|f| f["path"] == "embeddings.safetensors")
        .unwrap();
    let bytes = std::fs::read(bundle.join("embeddings.safetensors")).unwrap();
    let loaded = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut views: Vec<(String, safetensors::tensor::TensorView)> =
        loaded.tensors().into_iter().collect();
    let copy = [0u8; 4];
    views.push((
        "linear_score1.bias".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &copy).unwrap(),
    ));
    let rewritten = safetensors::serialize(views, None).unwrap();
    std::fs::write(bundle.join("embeddings.safetensors"), &rewritten).unwrap();
    shard["bytes"] = serde_json::json!(rewritten.len());
    shard["sha256"] = serde_json::json!(listconranker::weights::bundle::sha256_hex(&rewritten));
    shard["tensors"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!("linear_score1.bias"));
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    assert_error(
        load(&bundle),
        "MODEL_INVALID",
        &["linear_score1.bias", "also in"],
    );
}

// 5. Finite weights that overflow.

#[test]
fn overflowing_weights_are_an_error_naming_the_list() {
    let mut t = tensors("zh-tiny");
    for (key, _, data) in &mut t {
        if key == "linear_score2.weight" || key == "linear_score1.weight" {
            for (i, v) in data.iter_mut().enumerate() {
                *v = if i % 2 == 0 { 3e38 } else { -3e38 };
            }
        }
    }
    let dir = merged_model("zh-tiny", &t);
    let e = scores_of(dir.path(), &[vec!["q", "a"], vec!["q", "b", "c"]]).unwrap_err();
    assert_eq!(e.code(), "MODEL_INVALID", "{e}");
    assert!(
        e.to_string()
            .contains("list 0: the model gave a non-finite score"),
        "{e}"
    );

    let model = dir.path().display().to_string();
    let output = run(&["score", "--model", &model], b"\n[\"q\", \"a\"]\n");
    assert_fails_with(&output, "MODEL_INVALID", &["line 2:", "non-finite"]);
}

// 6. Outputs: never destroy the source or the user's files.

fn convert(model: &Path, out: &Path) -> Output {
    run(
        &[
            "convert",
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        b"",
    )
}

fn listing(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap_or_default();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn convert_refuses_outputs_that_would_destroy_files() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for (path, bytes) in listing(&model_dir("zh-tiny")) {
        std::fs::write(model.join(path.file_name().unwrap()), bytes).unwrap();
    }
    let before = listing(&model);

    let output = convert(&model, &model);
    assert_fails_with(&output, "INPUT_INVALID", &["inside it"]);
    let output = convert(&model, &model.join("sub"));
    assert_fails_with(&output, "INPUT_INVALID", &["inside it"]);

    let mine = work.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let output = convert(&model, &mine);
    assert_fails_with(&output, "INPUT_INVALID", &["neither empty nor a bundle"]);
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep me"
    );

    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let link = work.path().join("link");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let output = convert(&model, &link);
    assert_fails_with(&output, "INPUT_INVALID", &["symlink"]);
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());

    assert_eq!(listing(&model), before, "the source changed");
    // Nothing half-written is left beside the outputs.
    let names: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn a_failed_convert_leaves_the_old_bundle_and_a_good_one_replaces_it() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("bundle");
    let output = convert(&model_dir("zh-tiny"), &out);
    assert!(output.status.success(), "{}", stderr(&output));
    let old = listing(&out);

    // A checkpoint that cannot load: convert fails after writing, before replacing.
    let broken = copy_model("zh-tiny");
    edit_json(&broken.path().join("config.json"), |c| {
        c["num_hidden_layers"] = serde_json::json!(1);
    });
    let output = convert(broken.path(), &out);
    assert_fails_with(&output, "MODEL_INVALID", &["does not use"]);
    assert_eq!(listing(&out), old, "the old bundle changed");

    // A good one replaces it whole.
    let output = run(
        &[
            "convert",
            "--model",
            model_dir("en-3layer").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--dtype",
            "f16",
        ],
        b"",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["dtype"], "f16");
    let listed = manifest["files"].as_array().unwrap().len() + 1;
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        listed,
        "leftover files"
    );
    let names: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["bundle"], "staging directories left behind");
}

// 8. Output that cannot be delivered.

#[test]
fn a_closed_standard_output_is_an_error() {
    let model = model_dir("zh-tiny").display().to_string();
    let output = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" score --model \"$1\" >&-")
        .arg(env!("CARGO_BIN_EXE_listconranker"))
        .arg(&model)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_fails_with(&output, "OUTPUT_WRITE_FAILED", &["standard output"]);
}

#[test]
fn a_reader_that_goes_away_ends_the_program_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let model = model_dir("zh-tiny").display().to_string();
    let mut child = bin()
        .args(["score", "--model", &model, "--lists-per-batch", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..50 {
        if stdin.write_all(b"[\"q\", \"a\", \"b\"]\n").is_err() {
            break;
        }
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let text = stderr(&output);
    assert!(!output.status.success(), "{text}");
    assert_eq!(output.status.signal(), Some(SIGPIPE), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// The signal number of SIGPIPE on every Unix this runs on.
const SIGPIPE: i32 = 13;

// 9. Smaller ones.

#[test]
fn a_byte_order_mark_on_the_first_line_is_accepted() {
    let model = model_dir("zh-tiny").display().to_string();
    let output = run(
        &["score", "--model", &model],
        b"\xef\xbb\xbf[\"q\", \"a\"]\n",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
}

#[test]
fn a_bundle_shard_that_is_a_symlink_or_of_another_size_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let options = listconranker::weights::bundle::ConvertOptions::default();
    listconranker::convert::convert(&model_dir("zh-tiny"), &bundle, &options).unwrap();
    let shard = bundle.join("head.safetensors");
    let moved = work.path().join("head.safetensors");
    std::fs::rename(&shard, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &shard).unwrap();
    assert_error(
        load(&bundle),
        "MODEL_INVALID",
        &["head.safetensors", "not a plain file"],
    );

    std::fs::remove_file(&shard).unwrap();
    let mut bytes = std::fs::read(&moved).unwrap();
    bytes.push(0);
    std::fs::write(&shard, bytes).unwrap();
    assert_error(
        load(&bundle),
        "MODEL_INVALID",
        &["head.safetensors", "manifest.json says"],
    );
}
