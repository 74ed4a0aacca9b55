//! Ranking metrics of one query (AP, MRR@k) and their means over a data set, in the two tie
//! semantics that published C-MTEB reranking figures use.
//!
//! Ties matter: duplicated passages get identical scores, and both MTEB generations treat equal
//! scores differently, so the same scores can give different figures.

use std::fmt;

use crate::error::{Error, Result};

/// The cut-offs of the reported MRR@k (the model card's columns).
pub const MRR_CUTOFFS: [usize; 3] = [1, 5, 10];

/// trec_eval's `map_cut.1000`: relevant passages ranked below 1000 add nothing.
const MTEB2_AP_CUTOFF: usize = 1000;

/// How ties between equal scores are resolved. On the command line (`cli` feature): `mteb1` or
/// `mteb2`, the names of [`Semantics::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Semantics {
    /// MTEB 1.x (the model card's figures): AP is scikit-learn's `average_precision_score`,
    /// where tied scores form one threshold; MRR ranks by a stable descending sort, so ties keep
    /// input order (positives come first in C-MTEB lists).
    #[default]
    #[cfg_attr(feature = "cli", value(name = "mteb1"))]
    Mteb1,
    /// MTEB 2.x (pytrec_eval): AP is trec_eval's `map_cut.1000` and MRR uses the same ranking,
    /// where among equal scores every non-relevant passage ranks before every relevant one.
    #[cfg_attr(feature = "cli", value(name = "mteb2"))]
    Mteb2,
}

impl Semantics {
    pub fn name(self) -> &'static str {
        match self {
            Semantics::Mteb1 => "mteb1",
            Semantics::Mteb2 => "mteb2",
        }
    }
}

impl fmt::Display for Semantics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The metrics of one query, or their means over many, as fractions in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct RankingMetrics {
    /// Average precision (its mean over queries is the MAP).
    pub ap: f64,
    pub mrr_1: f64,
    pub mrr_5: f64,
    pub mrr_10: f64,
}

impl RankingMetrics {
    /// The metrics of one query: `relevant[i]` tells whether passage i is relevant, `scores[i]`
    /// is its score (higher ranks first). A query without a relevant passage scores 0 (MTEB
    /// skips such queries before they get here). `INPUT_INVALID` when the two lengths differ
    /// or a score is NaN (which has no rank).
    pub fn of_query(relevant: &[bool], scores: &[f64], semantics: Semantics) -> Result<Self> {
        Self::of_named_query(relevant, scores, semantics, "the query")
    }

    /// [`RankingMetrics::of_query`] whose errors begin with `name` (which query is at fault).
    pub(crate) fn of_named_query(
        relevant: &[bool],
        scores: &[f64],
        semantics: Semantics,
        name: &str,
    ) -> Result<Self> {
        if relevant.len() != scores.len() {
            return Err(Error::input(format!(
                "{name}: {} relevance flags for {} scores (one per passage)",
                relevant.len(),
                scores.len()
            )));
        }
        if let Some(i) = scores.iter().position(|s| s.is_nan()) {
            return Err(Error::input(format!(
                "{name}: the score of passage {i} is NaN, which cannot be ranked"
            )));
        }
        // From here on: one flag per score, no NaN (the invariant of the functions below).
        let order = ranking(relevant, scores, semantics);
        let ap = match semantics {
            Semantics::Mteb1 => average_precision_over_thresholds(relevant, scores),
            Semantics::Mteb2 => average_precision_of_ranking(relevant, &order, MTEB2_AP_CUTOFF),
        };
        let [mrr_1, mrr_5, mrr_10] =
            MRR_CUTOFFS.map(|k| reciprocal_rank_within(relevant, &order, k));
        Ok(Self {
            ap,
            mrr_1,
            mrr_5,
            mrr_10,
        })
    }

    /// The same figures x100, as the model card prints them.
    pub fn percent(self) -> Self {
        Self {
            ap: self.ap * 100.0,
            mrr_1: self.mrr_1 * 100.0,
            mrr_5: self.mrr_5 * 100.0,
            mrr_10: self.mrr_10 * 100.0,
        }
    }
}

/// Running sums of per-query metrics, for means over a data set.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsMean {
    sum: RankingMetrics,
    queries: usize,
}

impl MetricsMean {
    pub fn add(&mut self, m: RankingMetrics) {
        self.sum.ap += m.ap;
        self.sum.mrr_1 += m.mrr_1;
        self.sum.mrr_5 += m.mrr_5;
        self.sum.mrr_10 += m.mrr_10;
        self.queries += 1;
    }

    pub fn queries(&self) -> usize {
        self.queries
    }

    /// The means (MAP, MRR@k); all zero when no query was added.
    pub fn mean(&self) -> RankingMetrics {
        let n = self.queries.max(1) as f64;
        RankingMetrics {
            ap: self.sum.ap / n,
            mrr_1: self.sum.mrr_1 / n,
            mrr_5: self.sum.mrr_5 / n,
            mrr_10: self.sum.mrr_10 / n,
        }
    }
}

// The functions below take what `RankingMetrics::of_named_query` has checked: one relevance
// flag per score, no NaN score, and an `order` that is a permutation of the passage indices.

/// Passage indices best first. Mteb1: a stable sort by descending score (ties keep input
/// order). Mteb2: ties put non-relevant passages first (trec_eval orders equal scores by
/// document id, and MTEB 2's ids make that the pessimistic order).
fn ranking(relevant: &[bool], scores: &[f64], semantics: Semantics) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    match semantics {
        Semantics::Mteb1 => order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a])),
        Semantics::Mteb2 => order.sort_by(|&a, &b| {
            scores[b]
                .total_cmp(&scores[a])
                .then(relevant[a].cmp(&relevant[b]))
        }),
    }
    order
}

/// scikit-learn's `average_precision_score`: the sum over distinct score thresholds t, highest
/// first, of (R_t - R_{t-1}) * P_t, where R and P are recall and precision over every passage
/// scoring at least t. A block of tied scores is one threshold, so its order does not matter.
fn average_precision_over_thresholds(relevant: &[bool], scores: &[f64]) -> f64 {
    let total_relevant = relevant.iter().filter(|&&r| r).count();
    if total_relevant == 0 {
        return 0.0;
    }
    let order = ranking(relevant, scores, Semantics::Mteb1);
    let (mut seen, mut hits, mut ap) = (0usize, 0usize, 0.0f64);
    let mut recall_before = 0.0f64;
    let mut start = 0;
    while start < order.len() {
        let threshold = scores[order[start]];
        // A block holds at least its first passage, so the loop advances even on a score that
        // equals nothing (NaN, which the caller rejects before).
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| scores[i] == threshold)
                .count()
                .max(1);
        seen += end - start;
        hits += order[start..end].iter().filter(|&&i| relevant[i]).count();
        // As scikit-learn does: recalls are divided first, then differenced.
        let recall = hits as f64 / total_relevant as f64;
        ap += (recall - recall_before) * (hits as f64 / seen as f64);
        recall_before = recall;
        start = end;
    }
    ap
}

/// trec_eval's AP of a ranking cut at `cutoff`: the mean over all relevant passages of the
/// precision at each one's rank, counting 0 for those ranked below the cut-off.
fn average_precision_of_ranking(relevant: &[bool], order: &[usize], cutoff: usize) -> f64 {
    let total_relevant = relevant.iter().filter(|&&r| r).count();
    if total_relevant == 0 {
        return 0.0;
    }
    let mut hits = 0usize;
    let mut sum = 0.0f64;
    for (rank, &i) in order.iter().take(cutoff).enumerate() {
        if relevant[i] {
            hits += 1;
            sum += hits as f64 / (rank + 1) as f64;
        }
    }
    sum / total_relevant as f64
}

/// 1 / rank of the first relevant passage of `order` if that rank is at most `k`, else 0.
fn reciprocal_rank_within(relevant: &[bool], order: &[usize], k: usize) -> f64 {
    order
        .iter()
        .take(k)
        .position(|&i| relevant[i])
        .map_or(0.0, |rank| 1.0 / (rank + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(v: &[u8]) -> Vec<bool> {
        v.iter().map(|&x| x == 1).collect()
    }

    #[cfg(feature = "cli")]
    #[test]
    fn semantics_parse_and_print() {
        use clap::ValueEnum;
        // As the command line parses them (`ignore_case`).
        let parse = |s: &str| Semantics::from_str(s, true);
        assert_eq!(parse("MTEB2").unwrap(), Semantics::Mteb2);
        assert_eq!(Semantics::Mteb1.to_string(), "mteb1");
        assert!(parse("trec").is_err());
        for semantics in Semantics::value_variants() {
            assert_eq!(parse(semantics.name()).unwrap(), *semantics);
        }
    }

    #[test]
    fn a_nan_score_is_an_error_naming_the_passage() {
        let relevant = flags(&[1, 0, 0, 1]);
        let scores = [0.5, f64::NAN, 0.5, 0.2];
        for semantics in [Semantics::Mteb1, Semantics::Mteb2] {
            let err = RankingMetrics::of_query(&relevant, &scores, semantics).unwrap_err();
            assert_eq!(err.code(), "INPUT_INVALID", "{err}");
            assert!(err.to_string().contains("passage 1 is NaN"), "{err}");
        }
        // The tie grouping itself ends on NaN too (it is never given one).
        let ap = average_precision_over_thresholds(&relevant, &scores);
        assert!((0.0..=1.0).contains(&ap), "{ap}");
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        let err = RankingMetrics::of_query(&flags(&[1, 0]), &[0.5], Semantics::Mteb1).unwrap_err();
        assert_eq!(err.code(), "INPUT_INVALID", "{err}");
        assert!(
            err.to_string().contains("2 relevance flags for 1 scores"),
            "{err}"
        );
    }

    #[test]
    fn relevant_below_the_cutoff_counts_zero() {
        let relevant = flags(&[0, 0, 1]);
        let order = [0, 1, 2];
        assert_eq!(reciprocal_rank_within(&relevant, &order, 2), 0.0);
        assert_eq!(reciprocal_rank_within(&relevant, &order, 3), 1.0 / 3.0);
        assert_eq!(average_precision_of_ranking(&relevant, &order, 2), 0.0);
    }

    #[test]
    fn means_average_the_queries() {
        let mut mean = MetricsMean::default();
        mean.add(RankingMetrics {
            ap: 1.0,
            mrr_1: 1.0,
            mrr_5: 1.0,
            mrr_10: 1.0,
        });
        mean.add(RankingMetrics {
            ap: 0.5,
            mrr_1: 0.0,
            mrr_5: 0.5,
            mrr_10: 0.5,
        });
        assert_eq!(mean.queries(), 2);
        assert_eq!(
            mean.mean(),
            RankingMetrics {
                ap: 0.75,
                mrr_1: 0.5,
                mrr_5: 0.75,
                mrr_10: 0.75
            }
        );
        assert_eq!(mean.mean().percent().ap, 75.0);
    }
}
