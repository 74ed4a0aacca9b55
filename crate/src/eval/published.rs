//! The ListConRanker model card's C-MTEB reranking figures (x100, MTEB 1.x semantics, fp16 on a
//! GPU), to print beside the figures of a run on the same data set.

use std::path::Path;

use super::metrics::RankingMetrics;
use super::scoring::Mode;

/// One column of the model card's table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishedSet {
    /// The column title on the card.
    pub title: &'static str,
    /// The Hugging Face data set and the split the card evaluated.
    pub dataset: &'static str,
    pub split: &'static str,
    /// With iterative inference: MAP, MRR@1, MRR@5, MRR@10 (the card's metadata, full digits).
    pub iterative: RankingMetrics,
    /// Without iterative inference the card gives the MAP only.
    pub plain_map: f64,
    /// Lower-case alphanumeric fragments of a path that name this data set.
    keys: &'static [&'static str],
}

impl PublishedSet {
    /// The card's figures for `mode`; `None` where the card gives none (MRR without iterative
    /// inference).
    pub fn figures(&self, mode: Mode) -> [Option<f64>; 4] {
        match mode {
            Mode::Iterative => {
                let m = self.iterative;
                [Some(m.ap), Some(m.mrr_1), Some(m.mrr_5), Some(m.mrr_10)]
            }
            Mode::Plain => [Some(self.plain_map), None, None, None],
        }
    }
}

pub const PUBLISHED: [PublishedSet; 4] = [
    PublishedSet {
        title: "cMedQA1.0",
        dataset: "C-MTEB/CMedQAv1-reranking",
        split: "test",
        iterative: RankingMetrics {
            ap: 90.55366308098787,
            mrr_1: 87.8,
            mrr_5: 92.325,
            mrr_10: 92.45134920634919,
        },
        plain_map: 90.20,
        keys: &["cmedqav1", "cmedqa1"],
    },
    PublishedSet {
        title: "cMedQA2.0",
        dataset: "C-MTEB/CMedQAv2-reranking",
        split: "test",
        iterative: RankingMetrics {
            ap: 89.38076135722042,
            mrr_1: 85.9,
            mrr_5: 91.08999999999999,
            mrr_10: 91.28769841269842,
        },
        plain_map: 89.98,
        keys: &["cmedqav2", "cmedqa2"],
    },
    PublishedSet {
        title: "MMarcoReranking",
        dataset: "C-MTEB/Mmarco-reranking",
        split: "dev",
        iterative: RankingMetrics {
            ap: 43.881461866703894,
            mrr_1: 32.0,
            mrr_5: 43.61666666666667,
            mrr_10: 44.700793650793656,
        },
        plain_map: 37.52,
        keys: &["mmarco"],
    },
    PublishedSet {
        title: "T2Reranking",
        dataset: "C-MTEB/T2Reranking",
        split: "dev",
        iterative: RankingMetrics {
            ap: 69.16513825032682,
            mrr_1: 67.41706161137441,
            mrr_5: 79.71676822387724,
            mrr_10: 80.0946053776961,
        },
        plain_map: 69.17,
        keys: &["t2reranking", "t2rank"],
    },
];

/// The card's data set that `path` names, if any. Files downloaded from the hub are called
/// `test-00000-of-00001.parquet` or the like, so the whole absolute path counts (the folder
/// usually carries the data set's name); when several sets match, the one named last wins.
pub fn published_for(path: &Path) -> Option<&'static PublishedSet> {
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name: String = full
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    PUBLISHED
        .iter()
        .filter_map(|set| {
            set.keys
                .iter()
                .filter_map(|k| name.rfind(k))
                .max()
                .map(|at| (at, set))
        })
        .max_by_key(|&(at, _)| at)
        .map(|(_, set)| set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_data_sets_by_path() {
        let title = |p: &str| published_for(Path::new(p)).map(|s| s.title);
        assert_eq!(
            title("C-MTEB/CMedQAv1-reranking/data/test-00000-of-00001.parquet"),
            Some("cMedQA1.0")
        );
        assert_eq!(title("cmedqa2.jsonl"), Some("cMedQA2.0"));
        assert_eq!(
            title("data/Mmarco-reranking/dev.parquet"),
            Some("MMarcoReranking")
        );
        assert_eq!(title("T2Reranking_dev.jsonl"), Some("T2Reranking"));
        assert_eq!(title("runs/t2reranking/cmedqav1.jsonl"), Some("cMedQA1.0"));
        assert_eq!(title("my-own-set.jsonl"), None);
    }
}
