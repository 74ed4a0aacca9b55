//! Scoring the samples of a data set with a reranker, with or without iterative inference, and
//! turning the scores into the data set's MAP and MRR@k.

use std::fmt;

use super::metrics::{MetricsMean, RankingMetrics, Semantics};
use super::sample::Sample;
use crate::error::{Error, Result};
use crate::reranker::Reranker;

/// How each sample's list is scored. On the command line (`cli` feature): `iterative` or
/// `plain`, the names of [`Mode::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Mode {
    /// `iterative_inference`, one list at a time (the model card's headline figures).
    #[cfg_attr(feature = "cli", value(name = "iterative"))]
    Iterative,
    /// `compute_score` over the whole list at once ("w/o Iterative Inference").
    #[cfg_attr(feature = "cli", value(name = "plain"))]
    Plain,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Iterative => "iterative",
            Mode::Plain => "plain",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One score per candidate (positives then negatives) of every sample, in sample order.
/// Without iterative inference, consecutive lists go through one `compute_score` call while
/// their candidates add up to at most `passages_per_batch` (a longer list goes alone): the list
/// transformer's attention grows with lists x longest list squared, so the budget is in
/// passages, not lists. Iterative inference takes one list at a time. `on_scored` hears of
/// every finished group of samples, for progress reports.
pub fn score_samples(
    ranker: &Reranker,
    samples: &[Sample],
    mode: Mode,
    passages_per_batch: usize,
    mut on_scored: impl FnMut(&[Sample]),
) -> Result<Vec<Vec<f32>>> {
    let mut scores = Vec::with_capacity(samples.len());
    let mut start = 0;
    while start < samples.len() {
        let end = match mode {
            Mode::Iterative => start + 1,
            Mode::Plain => batch_end(samples, start, passages_per_batch),
        };
        let group = &samples[start..end];
        match mode {
            Mode::Iterative => scores.push(ranker.iterative_inference(&group[0].list())?),
            Mode::Plain => {
                let lists: Vec<Vec<&str>> = group.iter().map(Sample::list).collect();
                scores.extend(ranker.compute_score(&lists)?);
            }
        }
        on_scored(group);
        start = end;
    }
    Ok(scores)
}

/// The end of the batch that starts at `start`: at least one sample, then more while the
/// candidates stay within `budget`.
fn batch_end(samples: &[Sample], start: usize, budget: usize) -> usize {
    let mut total = samples[start].candidates();
    let mut end = start + 1;
    while end < samples.len() && total + samples[end].candidates() <= budget {
        total += samples[end].candidates();
        end += 1;
    }
    end
}

/// MAP and mean MRR@k of scored samples (fractions; `percent()` gives the card's figures):
/// `scores[i]` holds one score per candidate of `samples[i]`, as [`score_samples`] gives them.
/// `INPUT_INVALID` when the numbers of lists or of scores do not match or a score is NaN, naming
/// the sample (its index in `samples` and its query).
pub fn mean_metrics(
    samples: &[Sample],
    scores: &[Vec<f32>],
    semantics: Semantics,
) -> Result<RankingMetrics> {
    if samples.len() != scores.len() {
        return Err(Error::input(format!(
            "{} score lists for {} samples (one per sample)",
            scores.len(),
            samples.len()
        )));
    }
    let mut mean = MetricsMean::default();
    for (i, (sample, scores)) in samples.iter().zip(scores).enumerate() {
        // f32 -> f64 is exact, so ties stay ties.
        let scores: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
        mean.add(RankingMetrics::of_named_query(
            &sample.relevance(),
            &scores,
            semantics,
            &sample_name(i, sample),
        )?);
    }
    Ok(mean.mean())
}

/// `sample 3 (query "...")`, the query cut to its first 40 characters.
fn sample_name(index: usize, sample: &Sample) -> String {
    const SHOWN: usize = 40;
    let mut query: String = sample.query.chars().take(SHOWN).collect();
    if sample.query.chars().nth(SHOWN).is_some() {
        query.push_str("...");
    }
    format!("sample {index} (query {query:?})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(candidates: usize) -> Sample {
        Sample {
            query: "q".into(),
            positive: vec!["p".into()],
            negative: vec!["n".into(); candidates - 1],
        }
    }

    #[test]
    fn a_nan_score_is_an_error_naming_the_sample() {
        let samples = [sample(3), sample(2)];
        let scores = vec![vec![0.9, 0.1, 0.2], vec![f32::NAN, 0.3]];
        for semantics in [Semantics::Mteb1, Semantics::Mteb2] {
            let err = mean_metrics(&samples, &scores, semantics).unwrap_err();
            assert_eq!(err.code(), "INPUT_INVALID", "{err}");
            assert!(
                err.to_string()
                    .contains("sample 1 (query \"q\"): the score of passage 0 is NaN"),
                "{err}"
            );
        }
    }

    #[test]
    fn mismatched_scores_are_an_error_naming_the_sample() {
        let samples = [sample(3), sample(2)];
        let err = mean_metrics(&samples, &[vec![0.5; 3]], Semantics::Mteb1).unwrap_err();
        assert_eq!(err.code(), "INPUT_INVALID", "{err}");
        assert!(
            err.to_string().contains("1 score lists for 2 samples"),
            "{err}"
        );
        let err =
            mean_metrics(&samples, &[vec![0.5; 3], vec![0.5; 3]], Semantics::Mteb1).unwrap_err();
        assert!(
            err.to_string()
                .contains("sample 1 (query \"q\"): 2 relevance flags for 3 scores"),
            "{err}"
        );
    }

    #[test]
    fn batches_fill_up_to_the_passage_budget() {
        let samples: Vec<Sample> = [3, 4, 2, 10, 1].map(sample).into();
        assert_eq!(batch_end(&samples, 0, 9), 3);
        assert_eq!(
            batch_end(&samples, 3, 9),
            4,
            "a list over the budget goes alone"
        );
        assert_eq!(batch_end(&samples, 4, 9), 5);
    }
}
