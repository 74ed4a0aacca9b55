//! Evaluation: the metrics against scikit-learn / pytrec_eval (tests/fixtures/metrics.json), the
//! data readers (JSON Lines, Parquet, bad files), and `listconranker eval` end to end against
//! figures computed by the PyTorch reference (tests/fixtures/eval/, written by
//! tests/reference/make_eval_fixtures.py).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use listconranker::eval::{
    Mode, RankingMetrics, Semantics, mean_metrics, read_data_set, score_samples,
};
use listconranker::{Backend, Precision};
use serde::Deserialize;

/// The x100 figures may differ from the reference's by float noise only: the scores differ by
/// less than 1e-5 and the fixture keeps distinct scores at least 1e-4 apart, so every ranking
/// is the same.
const FIGURE_TOLERANCE: f64 = 1e-6;
const METRIC_TOLERANCE: f64 = 1e-9;

fn eval_dir() -> PathBuf {
    fixtures().join("eval")
}

// ------------------------------------------------------------------------------- metrics

#[derive(Deserialize)]
struct MetricCases {
    cases: Vec<MetricCase>,
}

#[derive(Deserialize)]
struct MetricCase {
    #[serde(default)]
    name: Option<String>,
    relevant: Vec<u8>,
    scores: Vec<f64>,
    mteb1: RankingMetrics,
    mteb2: RankingMetrics,
}

fn metrics_of(relevant: &[u8], scores: &[f64], semantics: Semantics) -> RankingMetrics {
    let relevant: Vec<bool> = relevant.iter().map(|&r| r == 1).collect();
    RankingMetrics::of_query(&relevant, scores, semantics).unwrap()
}

fn assert_metrics(got: RankingMetrics, want: RankingMetrics, tolerance: f64, what: &str) {
    for (name, g, w) in [
        ("ap", got.ap, want.ap),
        ("mrr_1", got.mrr_1, want.mrr_1),
        ("mrr_5", got.mrr_5, want.mrr_5),
        ("mrr_10", got.mrr_10, want.mrr_10),
    ] {
        assert!(
            (g - w).abs() <= tolerance,
            "{what} {name}: got {g}, want {w}"
        );
    }
}

#[test]
fn metrics_match_the_hand_checked_vectors() {
    let m = |ap, mrr_1, mrr_5, mrr_10| RankingMetrics {
        ap,
        mrr_1,
        mrr_5,
        mrr_10,
    };
    let cases: [(&str, &[u8], &[f64], RankingMetrics, RankingMetrics); 3] = [
        (
            "no ties",
            &[1, 0, 0, 1],
            &[4.0, 3.0, 2.0, 1.0],
            m(0.75, 1.0, 1.0, 1.0),
            m(0.75, 1.0, 1.0, 1.0),
        ),
        (
            "five tied, two relevant",
            &[1, 0, 0, 1, 0],
            &[0.5; 5],
            m(0.40, 1.0, 1.0, 1.0),
            m(0.325, 0.0, 0.25, 0.25),
        ),
        (
            "a positive tied with the top negative",
            &[1, 0, 0],
            &[0.9, 0.9, 0.1],
            m(0.5, 1.0, 1.0, 1.0),
            m(0.5, 0.0, 0.5, 0.5),
        ),
    ];
    for (name, relevant, scores, mteb1, mteb2) in cases {
        assert_metrics(
            metrics_of(relevant, scores, Semantics::Mteb1),
            mteb1,
            1e-12,
            &format!("{name} mteb1"),
        );
        assert_metrics(
            metrics_of(relevant, scores, Semantics::Mteb2),
            mteb2,
            1e-12,
            &format!("{name} mteb2"),
        );
    }
}

#[test]
fn metrics_match_scikit_learn_and_trec_eval_on_random_cases() {
    let path = fixtures().join("metrics.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixture: MetricCases = serde_json::from_str(&text).unwrap();
    assert!(fixture.cases.len() >= 1000, "{} cases", fixture.cases.len());
    for (i, case) in fixture.cases.iter().enumerate() {
        let what = format!("case {i} {}", case.name.as_deref().unwrap_or(""));
        assert_metrics(
            metrics_of(&case.relevant, &case.scores, Semantics::Mteb1),
            case.mteb1,
            METRIC_TOLERANCE,
            &format!("{what} mteb1"),
        );
        assert_metrics(
            metrics_of(&case.relevant, &case.scores, Semantics::Mteb2),
            case.mteb2,
            METRIC_TOLERANCE,
            &format!("{what} mteb2"),
        );
    }
}

// ------------------------------------------------------------------------------- data

#[test]
fn json_lines_and_parquet_hold_the_same_samples() {
    let jsonl = read_data_set(&eval_dir().join("cmteb-mini.jsonl"), None).unwrap();
    let expected = expected_eval();
    assert_eq!(jsonl.samples.len(), expected.queries);
    assert_eq!(jsonl.skipped, expected.skipped);
    assert_eq!(jsonl.candidates(), expected.candidates);
    for name in ["cmteb-mini.parquet", "cmteb-mini-zstd.parquet"] {
        let parquet = read_data_set(&eval_dir().join(name), None).unwrap();
        assert_eq!(parquet.samples, jsonl.samples, "{name}");
        assert_eq!(parquet.skipped, jsonl.skipped, "{name}");
    }
}

#[test]
fn limit_counts_evaluated_samples_only() {
    // The fixture's sixth row has no negative: the first five samples are read without it.
    let five = read_data_set(&eval_dir().join("cmteb-mini.jsonl"), Some(5)).unwrap();
    assert_eq!((five.samples.len(), five.skipped), (5, 0));
    let six = read_data_set(&eval_dir().join("cmteb-mini.parquet"), Some(6)).unwrap();
    assert_eq!((six.samples.len(), six.skipped), (6, 1));
}

/// The error of reading `path`: its code and message.
fn data_error(path: &Path) -> (String, String) {
    let err = read_data_set(path, None).expect_err("bad data must fail");
    (err.code().to_string(), err.to_string())
}

#[test]
fn bad_json_lines_name_the_file_and_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"query": "q", "positive": ["p"], "negative": ["n"]}"#;
    let cases = [
        (
            "malformed.jsonl",
            format!("{good}\n{{\"query\": \"q\", \"positive\": [\"p\"]\n"),
            "row 2: invalid JSON",
        ),
        (
            "no-query.jsonl",
            format!("{good}\n\n{{\"positive\": [\"p\"], \"negative\": []}}\n"),
            "row 3: missing field `query`",
        ),
        (
            "no-negative-field.jsonl",
            r#"{"query": "q", "positive": ["p"]}"#.to_string(),
            "row 1: missing field `negative`",
        ),
        (
            "number-passage.jsonl",
            format!(
                "{good}\n{}",
                r#"{"query": "q", "positive": ["p"], "negative": ["n", 7]}"#
            ),
            "row 2: `negative[1]` must be a string, found a number",
        ),
        (
            "string-list.jsonl",
            r#"{"query": "q", "positive": "p", "negative": ["n"]}"#.to_string(),
            "row 1: `positive` must be a list of strings",
        ),
        (
            "array-row.jsonl",
            r#"["q", "p", "n"]"#.to_string(),
            "row 1: expected an object",
        ),
        (
            "empty.jsonl",
            String::new(),
            "no samples: the file is empty",
        ),
        (
            "blank.jsonl",
            "\n  \n".to_string(),
            "no samples: the file is empty",
        ),
        (
            "all-skipped.jsonl",
            r#"{"query": "q", "positive": ["p"], "negative": []}"#.to_string(),
            "none of its 1 samples has both a positive and a negative",
        ),
    ];
    for (name, content, reason) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        assert_data_error(&path, reason);
    }
    let (_, message) = data_error(&dir.path().join("missing.jsonl"));
    assert!(message.contains("missing.jsonl: cannot open"), "{message}");
}

/// The error for `path` is DATA_INVALID, starts with the file's path and gives `reason`.
fn assert_data_error(path: &Path, reason: &str) {
    let (code, message) = data_error(path);
    assert_eq!(code, "DATA_INVALID", "{message}");
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(reason),
        "{message:?} should contain {reason:?}"
    );
}

#[test]
fn bad_parquet_files_name_the_file_and_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let not_parquet = dir.path().join("not.parquet");
    std::fs::write(&not_parquet, "{\"query\": \"q\"}\n").unwrap();
    let cases = [
        (
            eval_dir().join("bad-no-negative-column.parquet"),
            "no column `negative`",
        ),
        (
            eval_dir().join("bad-number-passages.parquet"),
            "row 1: `negative[0]` must be a string, found a number",
        ),
        (
            eval_dir().join("bad-null-passage.parquet"),
            "row 3: `negative[1]` must be a string, found null",
        ),
        (not_parquet, "not a readable Parquet file"),
    ];
    for (path, reason) in cases {
        assert_data_error(&path, reason);
    }
}

// ------------------------------------------------------------------------------- scores and figures

#[derive(Deserialize)]
struct ExpectedEval {
    queries: usize,
    skipped: usize,
    candidates: usize,
    longest_list: usize,
    /// mode -> semantics -> figures x100
    figures: std::collections::HashMap<String, std::collections::HashMap<String, Figures>>,
    /// mode -> per-sample scores
    scores: std::collections::HashMap<String, Vec<Vec<f64>>>,
}

#[derive(Deserialize, Debug, Clone, Copy)]
struct Figures {
    map: f64,
    mrr_1: f64,
    mrr_5: f64,
    mrr_10: f64,
}

fn expected_eval() -> ExpectedEval {
    let text = std::fs::read_to_string(eval_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn expected_figures(expected: &ExpectedEval, mode: &str, semantics: &str) -> RankingMetrics {
    let f = expected.figures[mode][semantics];
    RankingMetrics {
        ap: f.map,
        mrr_1: f.mrr_1,
        mrr_5: f.mrr_5,
        mrr_10: f.mrr_10,
    }
}

#[test]
fn scores_and_figures_match_the_reference() {
    let expected = expected_eval();
    assert!(
        expected.longest_list > 20,
        "the fixture must exercise iterative inference"
    );
    let set = read_data_set(&eval_dir().join("cmteb-mini.jsonl"), None).unwrap();
    let ranker = load("zh-tiny", Backend::Cpu, Precision::F32).unwrap();
    for mode in [Mode::Iterative, Mode::Plain] {
        let scores = score_samples(&ranker, &set.samples, mode, 60, |_| {}).unwrap();
        for (i, (got, want)) in scores.iter().zip(&expected.scores[mode.name()]).enumerate() {
            let (diff, at) = max_abs_diff(got, want);
            assert!(
                diff <= 1e-5,
                "{mode} sample {i} passage {at}: off by {diff}"
            );
        }
        for semantics in [Semantics::Mteb1, Semantics::Mteb2] {
            let got = mean_metrics(&set.samples, &scores, semantics)
                .unwrap()
                .percent();
            let want = expected_figures(&expected, mode.name(), semantics.name());
            assert_metrics(got, want, FIGURE_TOLERANCE, &format!("{mode} {semantics}"));
        }
    }
    // The fixture is only useful if the modes and the semantics differ on it.
    let differ = |a: RankingMetrics, b: RankingMetrics| a != b;
    assert!(differ(
        expected_figures(&expected, "iterative", "mteb1"),
        expected_figures(&expected, "plain", "mteb1")
    ));
    assert!(differ(
        expected_figures(&expected, "iterative", "mteb1"),
        expected_figures(&expected, "iterative", "mteb2")
    ));
}

// ------------------------------------------------------------------------------- the command

fn run_eval(args: &[&str]) -> Output {
    let model = model_dir("zh-tiny");
    Command::new(env!("CARGO_BIN_EXE_listconranker"))
        .arg("eval")
        .args(["--model", model.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

#[derive(Deserialize)]
struct JsonReport {
    results: Vec<JsonResult>,
}

#[derive(Deserialize, Debug)]
struct JsonResult {
    data: String,
    mode: String,
    semantics: String,
    queries: usize,
    skipped: usize,
    map: f64,
    mrr_1: f64,
    mrr_5: f64,
    mrr_10: f64,
}

fn eval_json(args: &[&str]) -> (Vec<JsonResult>, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("figures.json");
    let mut all = args.to_vec();
    all.extend(["--json", json.to_str().unwrap()]);
    let output = run_eval(&all);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: JsonReport =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (report.results, String::from_utf8(output.stdout).unwrap())
}

fn assert_result(r: &JsonResult, expected: &ExpectedEval) {
    assert_eq!(
        (r.queries, r.skipped),
        (expected.queries, expected.skipped),
        "{r:?}"
    );
    let got = RankingMetrics {
        ap: r.map,
        mrr_1: r.mrr_1,
        mrr_5: r.mrr_5,
        mrr_10: r.mrr_10,
    };
    assert_metrics(
        got,
        expected_figures(expected, &r.mode, &r.semantics),
        FIGURE_TOLERANCE,
        &format!("{} {} {}", r.data, r.mode, r.semantics),
    );
}

#[test]
fn eval_reproduces_the_reference_figures_with_and_without_iterative_inference() {
    let expected = expected_eval();
    let data = eval_dir().join("cmteb-mini.jsonl");
    let (results, stdout) = eval_json(&["--data", data.to_str().unwrap(), "--both"]);
    let modes: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r.mode.as_str(), r.semantics.as_str()))
        .collect();
    assert_eq!(modes, [("iterative", "mteb1"), ("plain", "mteb1")]);
    for r in &results {
        assert_eq!(r.data, data.display().to_string());
        assert_result(r, &expected);
    }
    assert!(
        stdout.contains("with iterative inference, MTEB 1.x semantics"),
        "{stdout}"
    );
    assert!(stdout.contains("without iterative inference"), "{stdout}");
    assert!(stdout.contains("| MAP"), "{stdout}");
    assert!(stdout.contains("13 queries (2 skipped)"), "{stdout}");
}

#[test]
fn eval_reads_parquet_and_applies_mteb2_semantics() {
    let expected = expected_eval();
    let snappy = eval_dir().join("cmteb-mini.parquet");
    let zstd = eval_dir().join("cmteb-mini-zstd.parquet");
    let (results, stdout) = eval_json(&[
        "--data",
        snappy.to_str().unwrap(),
        "--data",
        zstd.to_str().unwrap(),
        "--no-iterative",
        "--semantics",
        "MTEB2",
    ]);
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!((r.mode.as_str(), r.semantics.as_str()), ("plain", "mteb2"));
        assert_result(r, &expected);
    }
    // `--semantics` ignores case; two data sets: the summary in the card's layout, with their
    // average.
    assert!(
        stdout.contains("MAP in the model card's layout"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| - w/o Iterative Inference (this run)"),
        "{stdout}"
    );
    assert!(stdout.contains("Avg."), "{stdout}");
}

#[test]
fn eval_shows_the_card_figures_beside_a_card_data_set() {
    // A hub download keeps the data set's name in the folder only.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("CMedQAv1-reranking").join("data");
    std::fs::create_dir_all(&folder).unwrap();
    let data = folder.join("test-00000-of-00001.parquet");
    std::fs::copy(eval_dir().join("cmteb-mini.parquet"), &data).unwrap();
    let (results, stdout) = eval_json(&["--data", data.to_str().unwrap(), "--limit", "3"]);
    assert_eq!(
        (results[0].mode.as_str(), results[0].queries),
        ("iterative", 3)
    );
    assert!(
        stdout.contains("| model card (cMedQA1.0, test) | 90.55 | 87.80 | 92.33 |  92.45 |"),
        "{stdout}"
    );
}

#[test]
fn eval_fails_on_bad_data_before_loading_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let good = eval_dir().join("cmteb-mini.jsonl");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"query\": \"q\", \"positive\": [\"p\"], \"negative\": [\"n\"]}\n{\"query\": \"q\", \"positive\": [1], \"negative\": []}\n").unwrap();
    let output = run_eval(&[
        "--data",
        good.to_str().unwrap(),
        "--data",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: {}: row 2: `positive[0]` must be a string, found a number",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("loaded"),
        "the model must not load for bad data: {stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn eval_fails_early_when_the_json_output_cannot_be_written() {
    let data = eval_dir().join("cmteb-mini.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("no-such-folder").join("figures.json");
    let output = run_eval(&[
        "--data",
        data.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("error: {}", json.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("loaded"), "{stderr}");
}

#[test]
fn eval_rejects_conflicting_modes_and_unknown_semantics() {
    let data = eval_dir().join("cmteb-mini.jsonl");
    let data = data.to_str().unwrap();
    for args in [
        vec!["--data", data, "--both", "--no-iterative"],
        vec!["--data", data, "--semantics", "trec"],
        vec!["--data", data, "--limit", "0"],
    ] {
        let output = run_eval(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
