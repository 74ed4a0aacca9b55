//! Training against the PyTorch reference (tests/reference/train_ref.py): the Circle loss, the
//! gradient of every trained parameter and the parameters after AdamW steps, in stage one
//! (encoder frozen); the encoder untouched by stage one; bad lists refused.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{model_dir, reference_venv};
use listconranker::train::{
    CircleLoss, EncoderWeights, HeadTrainer, NamedTensor, PooledFeatures, TrainOptions,
    TrainingList, named_parameters,
};
use listconranker::{LoadOptions, Reranker};
use serde_json::{Value, json};

/// The lists of the fixture's compute_score cases, the first passage of each the positive.
fn fixture_lists(model: &str, count: usize) -> Vec<TrainingList> {
    let raw: Value = serde_json::from_str(
        &std::fs::read_to_string(
            common::fixtures()
                .join("expected")
                .join(format!("{model}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    raw["compute_score"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|case| case["batch"].as_array().unwrap().clone())
        .filter_map(|list| {
            let texts: Vec<String> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect();
            // Circle loss needs a positive and a negative; distinct texts keep the cache simple.
            (texts.len() >= 3).then(|| {
                let passages = texts.len() - 1;
                TrainingList {
                    texts,
                    positive: (0..passages).map(|i| i == 0).collect(),
                }
            })
        })
        .take(count)
        .collect()
}

struct Setup {
    trainer: HeadTrainer,
    features: PooledFeatures,
    parts_encoder: Vec<NamedTensor>,
}

fn setup(model: &str, lists: &[TrainingList], options: TrainOptions) -> Setup {
    let ranker = Reranker::load(model_dir(model), LoadOptions::default()).unwrap();
    let batch_tokens = ranker.options().effective_batch_tokens();
    let parts = ranker.into_training_parts();
    let features = PooledFeatures::compute(
        &parts.encoder,
        &parts.tokenizer,
        lists,
        batch_tokens,
        parts.placement.device(),
    )
    .unwrap();
    let parts_encoder = named_parameters(&parts.encoder, &parts.names);
    Setup {
        trainer: HeadTrainer::new(parts.head, parts.names, options),
        features,
        parts_encoder,
    }
}

/// The reference's answer for `lists` trained `steps` steps with `options`.
fn reference(
    venv: &std::path::Path,
    model: &str,
    lists: &[TrainingList],
    options: &TrainOptions,
    steps: usize,
) -> Value {
    let case = json!({
        "model": model_dir(model),
        "stage": 1,
        "lists": lists.iter().map(|l| json!({"texts": l.texts, "positive": l.positive})).collect::<Vec<_>>(),
        "margin": options.loss.margin,
        "gamma": options.loss.gamma,
        "lr": options.lr,
        "weight_decay": options.weight_decay,
        "betas": [options.beta_1, options.beta_2],
        "eps": options.epsilon,
        "max_grad_norm": options.max_grad_norm,
        "steps": steps,
    });
    let mut child = Command::new(venv.join("bin/python"))
        .arg(common::fixtures().join("../reference/train_ref.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(case.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn as_f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Largest |got - want| over a tensor, relative to the largest |want| of that tensor.
fn relative_error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "element count");
    let scale = want.iter().fold(0f64, |m, w| m.max(w.abs())).max(1e-30);
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (f64::from(g) - w).abs())
        .fold(0f64, f64::max)
        / scale
}

fn by_key(v: &Value) -> HashMap<String, Vec<f64>> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), as_f64s(v)))
        .collect()
}

/// Every tensor of `got` against the reference's `want` (keyed by checkpoint name): the same
/// names, each within `tolerance` relative. Elements listed in `noise_only` (by key) are left
/// out of the relative comparison. Returns the worst error and where.
fn compare(
    got: &[NamedTensor],
    want: &HashMap<String, Vec<f64>>,
    tolerance: f64,
    noise_only: &HashMap<String, Vec<usize>>,
    what: &str,
) -> (f64, String) {
    let mut got_keys: Vec<&str> = got.iter().map(|t| t.key.as_str()).collect();
    let mut want_keys: Vec<&str> = want.keys().map(String::as_str).collect();
    got_keys.sort_unstable();
    want_keys.sort_unstable();
    assert_eq!(got_keys, want_keys, "{what}: the trained parameters differ");
    let mut worst = (0f64, String::new());
    for tensor in got {
        let mut got_values = tensor.values.clone();
        let mut want_values = want[&tensor.key].clone();
        if let Some(skip) = noise_only.get(&tensor.key) {
            for &i in skip {
                got_values[i] = 0.0;
                want_values[i] = 0.0;
            }
        }
        let error = relative_error(&got_values, &want_values);
        assert!(
            error <= tolerance,
            "{what} of {}: relative error {error:.3e} > {tolerance:e}",
            tensor.key
        );
        if error > worst.0 {
            worst = (error, tensor.key.clone());
        }
    }
    worst
}

/// The elements whose gradient is zero in exact arithmetic (the reference's, in f64, is below
/// 1e-9 of its tensor's largest): the key projection's bias, to which attention is invariant,
/// and the weights of ReLU units that no list activates.
/// Their gradients are rounding noise in any implementation, and AdamW, which divides by the
/// gradient's own size, turns that noise into steps of up to lr in directions no two
/// implementations share; they are checked for staying within those steps instead.
fn gradient_free(grads: &HashMap<String, Vec<f64>>) -> HashMap<String, Vec<usize>> {
    grads
        .iter()
        .map(|(key, g)| {
            let scale = g.iter().fold(0f64, |m, x| m.max(x.abs()));
            let free = (0..g.len())
                .filter(|&i| g[i].abs() <= 1e-9 * scale)
                .collect();
            (key.clone(), free)
        })
        .collect()
}

fn parity_options() -> TrainOptions {
    TrainOptions {
        lr: 1e-3,
        max_grad_norm: Some(1.0),
        ..TrainOptions::default()
    }
}

#[test]
fn stage_one_matches_pytorch_loss_gradients_and_three_adamw_steps() {
    let Some(venv) = reference_venv() else { return };
    for model in common::MODELS {
        let lists = fixture_lists(model, 3);
        assert!(lists.len() >= 2, "{model}: fixture lists");
        let options = parity_options();
        let want = reference(&venv, model, &lists, &options, 3);
        let Setup {
            mut trainer,
            features,
            ..
        } = setup(model, &lists, options);

        let (loss, grads) = trainer.gradients(&features, &lists).unwrap();
        let want_loss = want["loss"].as_f64().unwrap();
        let loss_error = (f64::from(loss) - want_loss).abs() / want_loss.abs();
        assert!(
            loss_error <= 1e-4,
            "{model}: loss {loss} against {want_loss}"
        );
        let want_grads = by_key(&want["grads"]);
        let (grad_error, grad_at) = compare(&grads, &want_grads, 1e-4, &HashMap::new(), "gradient");

        let mut losses = Vec::new();
        for _ in 0..3 {
            losses.push(trainer.step(&features, &lists).unwrap());
        }
        for (step, (got, want)) in losses.iter().zip(as_f64s(&want["losses"])).enumerate() {
            assert!(
                (f64::from(*got) - want).abs() <= 1e-4 * want.abs(),
                "{model}: loss at step {step}: {got} against {want}"
            );
        }
        let noise_only = gradient_free(&want_grads);
        let want_params = by_key(&want["params"]);
        let params = trainer.parameters();
        let (param_error, param_at) = compare(
            &params,
            &want_params,
            1e-4,
            &noise_only,
            "parameter after 3 steps",
        );
        let mut free = 0;
        for tensor in &params {
            for &i in &noise_only[&tensor.key] {
                let moved = (f64::from(tensor.values[i]) - want_params[&tensor.key][i]).abs();
                assert!(
                    moved <= 2.0 * 3.0 * options.lr,
                    "{}[{i}] moved {moved}",
                    tensor.key
                );
                free += 1;
            }
        }
        eprintln!(
            "{model}: loss {loss} (rel. error {loss_error:.1e}); worst gradient {grad_error:.1e} ({grad_at}); worst parameter after 3 steps {param_error:.1e} ({param_at}; {free} gradient-free elements within 6 lr)"
        );
    }
}

#[test]
fn stage_one_leaves_the_encoder_bit_identical_and_lowers_the_loss() {
    let model = "zh-tiny";
    let lists = fixture_lists(model, 3);
    let Setup {
        mut trainer,
        features,
        parts_encoder,
    } = setup(model, &lists, parity_options());
    let first = trainer.step(&features, &lists).unwrap();
    let mut last = first;
    for _ in 0..20 {
        last = trainer.step(&features, &lists).unwrap();
    }
    assert!(
        last < first,
        "20 steps on the same lists: loss {first} -> {last}"
    );
    // A fresh load's encoder equals the one that the steps ran beside, bit for bit.
    let fresh = setup(model, &lists, parity_options()).parts_encoder;
    assert!(!fresh.is_empty());
    assert_eq!(fresh, parts_encoder, "stage one changed the encoder");
}

#[test]
fn lists_without_a_positive_or_a_negative_are_refused() {
    for (positives, negatives) in [(&[][..], &["n"][..]), (&["p"][..], &[][..])] {
        let e = TrainingList::new("q", positives, negatives).unwrap_err();
        assert_eq!(e.code(), "INPUT_INVALID", "{e}");
    }
    let e = TrainingList {
        texts: vec!["q".into(), "p".into()],
        positive: vec![true, false],
    }
    .check()
    .unwrap_err();
    assert!(e.to_string().contains("one per passage"), "{e}");
}

#[test]
fn circle_loss_of_one_list_is_the_formula() {
    use burn::tensor::{Device, Tensor, TensorData};
    let loss = CircleLoss {
        margin: 0.25,
        gamma: 8.0,
    };
    // Two lists, the second padded by one slot (its pad's score must not count).
    let scores = [[0.9f32, 0.2, 0.6], [0.3, 0.7, 0.99]];
    let labels = vec![vec![true, false, false], vec![false, true]];
    let got = loss.forward(
        Tensor::<2>::from_data(TensorData::new(scores.concat(), [2, 3]), &Device::flex()),
        &labels,
    );
    let got = got.into_data().try_to_vec::<f32>().unwrap()[0];
    let (m, g) = (0.25f64, 8.0f64);
    let one = |s: &[f32], pos: &[bool]| {
        let lse = |v: Vec<f64>| v.iter().map(|x| x.exp()).sum::<f64>().ln();
        let p = s.iter().zip(pos).filter(|(_, p)| **p).map(|(&s, _)| {
            let s = f64::from(s);
            -g * (1.0 + m - s).max(0.0) * (s - 1.0 + m)
        });
        let n = s.iter().zip(pos).filter(|(_, p)| !**p).map(|(&s, _)| {
            let s = f64::from(s);
            g * (s + m).max(0.0) * (s - m)
        });
        (1.0 + (lse(p.collect()) + lse(n.collect())).exp()).ln()
    };
    let want = (one(&scores[0], &labels[0]) + one(&scores[1][..2], &labels[1])) / 2.0;
    assert!((f64::from(got) - want).abs() < 1e-5, "{got} against {want}");
}

/// A checkpoint written after stage-one steps loads here and in the PyTorch reference (which
/// reads its `.pt` files with `torch.load(weights_only=True)` strictly) and scores the same there
/// as here, within 1e-5 (f32 against float64).
#[test]
fn a_trained_checkpoint_scores_the_same_here_and_in_the_reference() {
    let Some(venv) = reference_venv() else { return };
    let model = "zh-tiny";
    let lists = fixture_lists(model, 3);
    let Setup {
        mut trainer,
        features,
        parts_encoder,
    } = setup(model, &lists, parity_options());
    for _ in 0..3 {
        trainer.step(&features, &lists).unwrap();
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("trained");
    listconranker::train::write_split_checkpoint(
        &model_dir(model),
        &out,
        EncoderWeights::Tensors(&parts_encoder),
        &trainer.parameters(),
    )
    .unwrap();

    let batch: Vec<Vec<String>> = lists.iter().map(|l| l.texts.clone()).collect();
    let got = Reranker::load(&out, LoadOptions::default())
        .unwrap()
        .compute_score(&batch)
        .unwrap();
    let before = Reranker::load(model_dir(model), LoadOptions::default())
        .unwrap()
        .compute_score(&batch)
        .unwrap();
    assert_ne!(got, before, "the steps changed no score");

    let input = scratch.path().join("lists.jsonl");
    let lines: Vec<String> = batch
        .iter()
        .map(|l| serde_json::to_string(l).unwrap())
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let scores = scratch.path().join("scores.json");
    let status = Command::new(venv.join("bin/python"))
        .arg(common::fixtures().join("../reference/score_lists.py"))
        .args(["--model".as_ref(), out.as_os_str()])
        .args(["--input".as_ref(), input.as_os_str()])
        .args(["--out".as_ref(), scores.as_os_str()])
        .status()
        .unwrap();
    assert!(status.success());
    let want: Vec<Vec<f64>> =
        serde_json::from_str(&std::fs::read_to_string(&scores).unwrap()).unwrap();
    let (worst, at) = common::max_abs_diff(&got.concat(), &want.concat());
    assert!(worst <= 1e-5, "score {at}: |difference| {worst:e}");

    // Writing again over the checkpoint replaces it, the encoder now taken over as the
    // source's file (stage one's way): the same scores; a directory of other files is refused.
    listconranker::train::write_split_checkpoint(
        &model_dir(model),
        &out,
        EncoderWeights::FromSource,
        &trainer.parameters(),
    )
    .unwrap();
    let again = Reranker::load(&out, LoadOptions::default())
        .unwrap()
        .compute_score(&batch)
        .unwrap();
    assert_eq!(again, got);
    let other = scratch.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let e = listconranker::train::write_split_checkpoint(
        &model_dir(model),
        &other,
        EncoderWeights::Tensors(&parts_encoder),
        &trainer.parameters(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "INPUT_INVALID", "{e}");
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// `listconranker train` end to end on the fixture data: epochs run, validation is reported, the
/// best epoch's checkpoint loads and scores; bad requests are refused before training.
#[test]
fn the_train_command_writes_a_checkpoint_that_loads() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("trained");
    let data = common::fixtures().join("eval/cmteb-mini.jsonl");
    let model = model_dir("zh-tiny");
    let (model, data, out_s) = (
        model.to_str().unwrap(),
        data.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--model",
            model,
            "--data",
            data,
            "--valid",
            data,
            "--out",
            out_s,
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--micro-batch",
            "3",
            "--lr",
            "1e-3",
            "--passages-per-query",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run =
        |a: &[String]| common::run_cli(&a.iter().map(String::as_str).collect::<Vec<_>>(), b"");
    let done = run(&args(&[]));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        stderr.contains("epoch 0 (untrained head): validation MAP"),
        "{stderr}"
    );
    assert!(stderr.contains("epoch 2: mean loss"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&done.stdout).trim(), out_s);
    let ranker = Reranker::load(&out, LoadOptions::default()).unwrap();
    let scores = ranker
        .compute_score(&[vec!["长期失眠应该看哪个科", "神经内科", "跑步"]])
        .unwrap();
    assert!(scores[0].iter().all(|s| s.is_finite()));

    // A run that diverges stops with the epoch named and leaves the checkpoint there as it was.
    let before = files_of(&out);
    let mut a = args(&[]);
    for (flag, value) in [("--lr", "1e30"), ("--batch-size", "100")] {
        let at = a.iter().position(|s| s == flag).unwrap();
        a[at + 1] = value.into();
    }
    let diverged = run(&a);
    let stderr = String::from_utf8_lossy(&diverged.stderr);
    assert!(!diverged.status.success(), "{stderr}");
    assert!(
        stderr.contains("training diverged") || stderr.contains("the loss is"),
        "{stderr}"
    );
    let after = files_of(&out);
    assert!(before == after, "the diverged run changed the checkpoint");

    // Refused before anything runs: stage two, a non-empty foreign output, an empty data file.
    let refused = run(&args(&["--stage", "2"]));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("[INPUT_INVALID]"));
    let foreign = scratch.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("keep.txt"), "mine").unwrap();
    let mut a = args(&[]);
    let at = a.iter().position(|s| s == "--out").unwrap();
    a[at + 1] = foreign.to_str().unwrap().to_string();
    let refused = run(&a);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("neither empty nor a checkpoint"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("pooled features"),
        "refused only after encoding: {stderr}"
    );
    let empty = scratch.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let mut a = args(&[]);
    let at = a.iter().position(|s| s == "--data").unwrap();
    a[at + 1] = empty.to_str().unwrap().to_string();
    let refused = run(&a);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("empty") && stderr.contains("[DATA_INVALID]"),
        "{stderr}"
    );
}

/// Every file of `dir` with its bytes, sorted by name.
fn files_of(dir: &std::path::Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The fixture's encoder alone (config, weights, tokenizer; no list head) in `dir`: a plain
/// BERT checkpoint.
fn plain_bert(model: &str, dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(model_dir(model)).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.extension().is_none_or(|e| e != "pt") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn a_similarity_head_starts_as_the_distance_of_the_normalised_embeddings() {
    use listconranker::SentenceEncoder;
    use listconranker::config::BertConfig;
    use listconranker::train::{HeadInit, HeadShape, fresh_head, stage_fresh_head};

    let scratch = tempfile::tempdir().unwrap();
    let plain = scratch.path().join("plain");
    plain_bert("en-3layer", &plain);
    let config = BertConfig::from_file(&plain.join("config.json")).unwrap();
    let hidden = config.hidden_size;
    let shape = HeadShape::for_encoder(hidden, config.num_attention_heads, HeadInit::Similarity);
    let head = fresh_head(shape, HeadInit::Similarity, 3).unwrap();
    let staged = stage_fresh_head(&plain, &scratch.path().join("out"), &head).unwrap();
    let ranker = Reranker::load(staged.path(), LoadOptions::default()).unwrap();
    let list = [
        "how do I bake bread at home",
        "Mix flour, water, yeast and salt, knead, let it rise and bake it hot.",
        "The stock market fell sharply on Monday.",
        "Bread machines knead and bake a loaf for you.",
        "Cats sleep for most of the day.",
    ];
    let scores = ranker.compute_score(&[list.to_vec()]).unwrap().remove(0);
    let encoder = SentenceEncoder::load(&plain, &LoadOptions::default()).unwrap();
    let normalised: Vec<Vec<f64>> = encoder
        .embed(&list)
        .unwrap()
        .into_iter()
        .map(|e| {
            let rms =
                (e.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / e.len() as f64).sqrt();
            e.iter().map(|v| f64::from(*v) / rms).collect()
        })
        .collect();
    for (i, got) in scores.iter().enumerate() {
        // [q; -q] against [p; -p] through a ReLU: each entry's difference once.
        let l1: f64 = normalised[0]
            .iter()
            .zip(&normalised[i + 1])
            .map(|(q, p)| (q - p).abs())
            .sum::<f64>();
        let want = 1.0 / (1.0 + (-(3.2 - 4.0 / hidden as f64 * l1)).exp());
        assert!(
            (f64::from(*got) - want).abs() < 1e-4,
            "passage {i}: {got} against {want}"
        );
    }
    let staged_path = staged.path().to_path_buf();
    drop(staged);
    assert!(!staged_path.exists(), "the staged checkpoint is removed");

    // A checkpoint that has a head is not a plain BERT one.
    assert!(stage_fresh_head(&model_dir("en-3layer"), &scratch.path().join("x"), &head).is_err());
}

#[test]
fn the_train_command_starts_a_fresh_head_on_a_plain_encoder() {
    let scratch = tempfile::tempdir().unwrap();
    let plain = scratch.path().join("plain");
    plain_bert("zh-tiny", &plain);
    let out = scratch.path().join("trained");
    let data = common::fixtures().join("eval/cmteb-mini.jsonl");
    let (plain_s, data_s, out_s) = (
        plain.to_str().unwrap(),
        data.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let base = [
        "train",
        "--model",
        plain_s,
        "--data",
        data_s,
        "--valid",
        data_s,
        "--out",
        out_s,
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--passages-per-query",
        "5",
        "--init-head",
    ];
    for (extra, wants) in [
        (&[][..], "similarity start"),
        (
            &[
                "--head-init",
                "random",
                "--head-dim",
                "24",
                "--head-ffn",
                "16",
                "--head-layers",
                "1",
            ][..],
            "random start): D 24, F 16, 1 layers",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let done = common::run_cli(&args, b"");
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert!(done.status.success(), "{stderr}");
        assert!(stderr.contains(wants), "{stderr}");
        let ranker = Reranker::load(&out, LoadOptions::default()).unwrap();
        let scores = ranker
            .compute_score(&[vec!["长期失眠应该看哪个科", "神经内科", "跑步"]])
            .unwrap();
        assert!(scores[0].iter().all(|s| s.is_finite()));
        let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    }
    // A head too large for the machine (312 GB by the estimate: six copies of its 13 G
    // parameters) is refused from the estimate, before anything is allocated or encoded (where
    // the system says how much memory it has: Linux).
    if cfg!(target_os = "linux") {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--head-init", "random", "--head-dim", "32768"]);
        let refused = common::run_cli(&args, b"");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains("stage one would need about"),
            "{stderr}"
        );
        assert!(!stderr.contains("pooled features"), "{stderr}");
    }
    // --epochs 0 writes the starting head as drawn: here the similarity start.
    let mut args = base.to_vec();
    let at = args.iter().position(|a| *a == "--epochs").unwrap();
    args[at + 1] = "0";
    let done = common::run_cli(&args, b"");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        done.status.success() && !stderr.contains("warning"),
        "{stderr}"
    );
    assert!(out.join("list_transformer.pt").is_file());
    // Training a checkpoint into itself is refused before anything is read.
    let mut args: Vec<&str> = base
        .iter()
        .copied()
        .filter(|a| *a != "--init-head")
        .collect();
    args[2] = out_s;
    let refused = common::run_cli(&args, b"");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is the model being trained"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // The similarity start needs D = 2 x hidden; a model with a head is not a plain encoder.
    let mut args = base.to_vec();
    args.extend_from_slice(&["--head-dim", "24"]);
    let refused = common::run_cli(&args, b"");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("twice the encoder's hidden size"));
    let mut args = base.to_vec();
    let with_head = model_dir("zh-tiny");
    args[2] = with_head.to_str().unwrap();
    let refused = common::run_cli(&args, b"");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already has a list head"));
}
