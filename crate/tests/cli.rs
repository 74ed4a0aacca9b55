//! The `listconranker score` command: JSON Lines in, one JSON array of scores per line out.

mod common;

use std::io::Write;
use std::process::Output;

use common::*;

use common::run_cli as run;

fn model_arg() -> String {
    model_dir("zh-tiny").display().to_string()
}

fn output_scores(output: &Output) -> Vec<Vec<f64>> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn scores_both_line_shapes_like_the_reference() {
    let expected = expected("zh-tiny");
    let case = expected
        .compute_score
        .iter()
        .find(|c| c.max_length == 512)
        .unwrap();
    let mut input = Vec::new();
    for (i, list) in case.batch.iter().enumerate() {
        let line = if i % 2 == 0 {
            serde_json::to_string(list).unwrap()
        } else {
            serde_json::json!({"query": list[0], "passages": &list[1..]}).to_string()
        };
        writeln!(input, "{line}").unwrap();
    }
    let output = run(&["score", "--model", &model_arg()], &input);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got = output_scores(&output);
    assert_eq!(got.len(), case.scores.len());
    for (g, e) in got.iter().zip(&case.scores) {
        for (a, b) in g.iter().zip(e) {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
        }
    }
    assert!(String::from_utf8_lossy(&output.stderr).contains("texts/s"));
}

#[test]
fn iterative_flag_matches_the_reference() {
    let expected = expected("zh-tiny");
    let case = expected
        .iterative
        .iter()
        .max_by_key(|c| c.list.len())
        .unwrap();
    let input = format!("{}\n", serde_json::to_string(&case.list).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.jsonl");
    std::fs::write(&file, input).unwrap();
    let output = run(
        &[
            "score",
            "--model",
            &model_arg(),
            "--iterative",
            "--input",
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got = output_scores(&output);
    for (a, b) in got[0].iter().zip(&case.scores) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
}

#[test]
fn a_bad_line_stops_the_run_after_printing_the_lines_before_it() {
    let input = b"[\"q\", \"a\", \"b\"]\n{\"query\": \"q\", \"passages\": [\"c\"]}\n[\"q\", \"x\"\n[\"q\", \"never scored\"]\n";
    let output = run(&["score", "--model", &model_arg()], input);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        output_scores(&output).len(),
        2,
        "only the lines before the bad one"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("invalid JSON"),
        "{stderr}"
    );

    let output = run(
        &["score", "--model", &model_arg()],
        b"[\"q\", \"\xff\xfe\"]\n",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1: not valid UTF-8"));

    let output = run(&["score", "--model", &model_arg()], b"[\"only a query\"]\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no passage"));
}

#[test]
fn bad_arguments_exit_with_2_and_bad_models_with_1() {
    let output = run(&["score", "--model", &model_arg(), "--device", "tpu"], b"");
    assert_eq!(output.status.code(), Some(2));
    let output = run(&["score"], b"");
    assert_eq!(output.status.code(), Some(2));
    let output = run(&["score", "--model", "/nonexistent"], b"[\"q\", \"p\"]\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent"));
}
