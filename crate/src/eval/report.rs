//! What an evaluation reports: one record per data set and mode (the `--json` file's rows) and
//! the Markdown tables printed for people, in the model card's layout, with the card's figures
//! beside ours when the data set is one of the card's.

use std::fmt::Write as _;

use serde::Serialize;

use super::data::DataSet;
use super::metrics::{RankingMetrics, Semantics};
use super::published::{PublishedSet, published_for};
use super::scoring::Mode;

/// The figures of one data set in one mode (x100, like the card).
#[derive(Debug, Clone, Serialize)]
pub struct EvalResult {
    /// The data file as given.
    pub data: String,
    #[serde(serialize_with = "as_name")]
    pub mode: Mode,
    #[serde(serialize_with = "as_name")]
    pub semantics: Semantics,
    /// Samples evaluated (with at least one positive and one negative).
    pub queries: usize,
    /// Samples left out for lacking a positive or a negative.
    pub skipped: usize,
    pub map: f64,
    pub mrr_1: f64,
    pub mrr_5: f64,
    pub mrr_10: f64,
    /// Positives and negatives scored.
    #[serde(skip)]
    pub candidates: usize,
    /// Wall time of the scoring.
    #[serde(skip)]
    pub seconds: f64,
    /// The card's data set this file matches.
    #[serde(skip)]
    pub published: Option<&'static PublishedSet>,
}

fn as_name<T: std::fmt::Display, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

impl EvalResult {
    /// The record of scoring `set` in `mode`: `metrics` are the means as fractions (as
    /// `mean_metrics` gives them), stored x100; `seconds` is the scoring's wall time.
    pub fn new(
        set: &DataSet,
        mode: Mode,
        semantics: Semantics,
        metrics: RankingMetrics,
        seconds: f64,
    ) -> Self {
        let percent = metrics.percent();
        Self {
            data: set.path.display().to_string(),
            mode,
            semantics,
            queries: set.samples.len(),
            skipped: set.skipped,
            map: percent.ap,
            mrr_1: percent.mrr_1,
            mrr_5: percent.mrr_5,
            mrr_10: percent.mrr_10,
            candidates: set.candidates(),
            seconds,
            published: published_for(&set.path),
        }
    }

    pub fn figures(&self) -> [f64; 4] {
        [self.map, self.mrr_1, self.mrr_5, self.mrr_10]
    }

    /// The card's column title when the file is one of the card's sets, else the file's name.
    pub fn title(&self) -> String {
        match self.published {
            Some(set) => set.title.to_string(),
            None => std::path::Path::new(&self.data)
                .file_name()
                .map_or_else(|| self.data.clone(), |n| n.to_string_lossy().into_owned()),
        }
    }
}

/// The `--json` file: `{"results": [...]}`.
#[derive(Debug, Serialize)]
pub struct EvalReport<'a> {
    pub results: &'a [EvalResult],
}

fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Iterative => "with iterative inference",
        Mode::Plain => "without iterative inference",
    }
}

fn semantics_label(semantics: Semantics) -> &'static str {
    match semantics {
        Semantics::Mteb1 => "MTEB 1.x semantics",
        Semantics::Mteb2 => "MTEB 2.x semantics",
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

/// A Markdown table with right-aligned figure columns, padded so that it also reads as text.
fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            std::iter::once(&header[c])
                .chain(rows.iter().map(|r| &r[c]))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(3)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (s, &w))| {
                if c == 0 {
                    format!("{s:<w$}")
                } else {
                    format!("{s:>w$}")
                }
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, &w)| {
            if c == 0 {
                format!(":{}", "-".repeat(w - 1))
            } else {
                format!("{}:", "-".repeat(w - 1))
            }
        })
        .collect();
    let mut out = line(header);
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// The figures of one data set and mode: a heading, the sizes and throughput, and a table of
/// MAP / MRR@1 / MRR@5 / MRR@10 with the card's row beneath when the set is one of the card's.
pub fn result_table(result: &EvalResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## {}: {}, {}",
        result.data,
        mode_label(result.mode),
        semantics_label(result.semantics)
    );
    let seconds = result.seconds.max(1e-9);
    let _ = writeln!(
        out,
        "{} queries ({} skipped), {} passages in {:.1} s: {:.2} queries/s, {:.1} passages/s\n",
        result.queries,
        result.skipped,
        result.candidates,
        result.seconds,
        result.queries as f64 / seconds,
        result.candidates as f64 / seconds
    );
    let header: Vec<String> = ["", "MAP", "MRR@1", "MRR@5", "MRR@10"]
        .map(String::from)
        .into();
    let mut rows = vec![
        std::iter::once("this run".to_string())
            .chain(result.figures().map(|v| cell(Some(v))))
            .collect::<Vec<_>>(),
    ];
    if let Some(set) = result.published {
        rows.push(
            std::iter::once(format!("model card ({}, {})", set.title, set.split))
                .chain(set.figures(result.mode).map(cell))
                .collect(),
        );
    }
    out.push_str(&markdown_table(&header, &rows));
    out
}

/// The MAP of every result in the card's layout: one column per data set (and their average
/// when there are several), one row per mode, then the card's rows where it has the sets.
pub fn card_table(results: &[EvalResult]) -> String {
    let mut sets: Vec<(String, Option<&'static PublishedSet>)> = Vec::new();
    for r in results {
        if !sets.iter().any(|(data, _)| *data == r.data) {
            sets.push((r.data.clone(), r.published));
        }
    }
    let titles: Vec<String> = sets
        .iter()
        .map(|(data, _)| {
            results
                .iter()
                .find(|r| &r.data == data)
                .map(EvalResult::title)
                .unwrap_or_default()
        })
        .collect();
    let with_average = sets.len() > 1;
    let mut header = vec!["MAP".to_string()];
    header.extend(titles);
    if with_average {
        header.push("Avg.".into());
    }
    let row = |label: String, values: Vec<Option<f64>>| {
        let average = values
            .iter()
            .copied()
            .sum::<Option<f64>>()
            .map(|s| s / values.len() as f64);
        let mut cells = vec![label];
        cells.extend(values.into_iter().map(cell));
        if with_average {
            cells.push(cell(average));
        }
        cells
    };
    let mut rows = Vec::new();
    for mode in [Mode::Iterative, Mode::Plain] {
        if !results.iter().any(|r| r.mode == mode) {
            continue;
        }
        let values = sets
            .iter()
            .map(|(data, _)| {
                results
                    .iter()
                    .find(|r| &r.data == data && r.mode == mode)
                    .map(|r| r.map)
            })
            .collect();
        rows.push(row(card_row_label(mode, "this run"), values));
    }
    if sets.iter().any(|(_, p)| p.is_some()) {
        for mode in [Mode::Iterative, Mode::Plain] {
            if !results.iter().any(|r| r.mode == mode) {
                continue;
            }
            let values = sets
                .iter()
                .map(|(_, p)| p.and_then(|set| set.figures(mode)[0]))
                .collect();
            rows.push(row(card_row_label(mode, "model card"), values));
        }
    }
    markdown_table(&header, &rows)
}

fn card_row_label(mode: Mode, source: &str) -> String {
    match mode {
        Mode::Iterative => format!("ListConRanker ({source})"),
        Mode::Plain => format!("- w/o Iterative Inference ({source})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::published::PUBLISHED;

    fn result(data: &str, mode: Mode, map: f64) -> EvalResult {
        EvalResult {
            data: data.into(),
            mode,
            semantics: Semantics::Mteb1,
            queries: 10,
            skipped: 1,
            map,
            mrr_1: 50.0,
            mrr_5: 60.0,
            mrr_10: 61.0,
            candidates: 100,
            seconds: 2.0,
            published: None,
        }
    }

    #[test]
    fn the_json_record_has_the_documented_fields() {
        let r = result("set.jsonl", Mode::Plain, 42.0);
        let json = serde_json::to_value(EvalReport { results: &[r] }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"results": [{"data": "set.jsonl", "mode": "plain", "semantics": "mteb1",
                "queries": 10, "skipped": 1, "map": 42.0, "mrr_1": 50.0, "mrr_5": 60.0, "mrr_10": 61.0}]})
        );
    }

    #[test]
    fn the_card_row_stands_under_ours() {
        let mut r = result("T2Reranking/dev.parquet", Mode::Iterative, 69.0);
        r.published = Some(&PUBLISHED[3]);
        let table = result_table(&r);
        assert!(table.contains("| this run"), "{table}");
        assert!(
            table.contains("| model card (T2Reranking, dev) | 69.17 | 67.42 | 79.72 |  80.09 |"),
            "{table}"
        );
        assert!(table.contains("5.00 queries/s, 50.0 passages/s"), "{table}");
    }

    #[test]
    fn the_summary_has_a_column_per_set_and_their_average() {
        let results = [
            result("a.jsonl", Mode::Iterative, 40.0),
            result("b.jsonl", Mode::Iterative, 50.0),
            result("a.jsonl", Mode::Plain, 30.0),
        ];
        let table = card_table(&results);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].contains("a.jsonl")
                && lines[0].contains("b.jsonl")
                && lines[0].contains("Avg."),
            "{table}"
        );
        assert!(
            lines[2].contains("40.00") && lines[2].contains("45.00"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("| - w/o Iterative Inference (this run)")
                && lines[3].ends_with("- |"),
            "{table}"
        );
    }
}
