//! Invariants of scoring, over generated lists (proptest): a passage's score does not depend
//! on how lists are batched, identical passages get identical scores, and iterative inference
//! gives one finite score per passage for any list size. CPU, f32, the zh-tiny fixture.

mod common;

use std::sync::OnceLock;

use common::*;
use listconranker::{LoadOptions, Reranker};
use proptest::prelude::*;

fn ranker() -> &'static Reranker {
    static RANKER: OnceLock<Reranker> = OnceLock::new();
    RANKER.get_or_init(|| Reranker::load(model_dir("zh-tiny"), LoadOptions::default()).unwrap())
}

/// Texts from a small vocabulary, so that lists repeat passages and share texts across lists.
fn text() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "query", "passage", "搜索", "排序", "model", "the", "rerank", "文本", "a", "",
    ]);
    prop::collection::vec(words, 0..12).prop_map(|w| w.join(" "))
}

fn list(max_passages: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 2..=max_passages + 1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_score_does_not_depend_on_batching(lists in prop::collection::vec(list(12), 1..5)) {
        let together = ranker().compute_score(&lists).unwrap();
        for (list, scores) in lists.iter().zip(&together) {
            let alone = ranker().compute_score(std::slice::from_ref(list)).unwrap();
            prop_assert_eq!(alone[0].len(), scores.len());
            for (a, b) in alone[0].iter().zip(scores) {
                prop_assert!((a - b).abs() <= 1e-6, "alone {a} vs batched {b}");
            }
        }
    }

    #[test]
    fn identical_passages_get_identical_scores(
        list in list(16),
        copied in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
    ) {
        // Every generated list gets a duplicate: a copy of one passage at another position.
        let mut list = list;
        let passage = list[1 + copied.index(list.len() - 1)].clone();
        list.insert(1 + at.index(list.len()), passage);
        let scores = &ranker().compute_score(std::slice::from_ref(&list)).unwrap()[0];
        prop_assert_eq!(scores.len(), list.len() - 1);
        let mut duplicates = 0;
        for i in 1..list.len() {
            for j in i + 1..list.len() {
                if list[i] == list[j] {
                    duplicates += 1;
                    prop_assert_eq!(scores[i - 1], scores[j - 1]);
                }
            }
        }
        prop_assert!(duplicates > 0);
    }

    #[test]
    fn iterative_inference_scores_every_passage_once(list in list(60)) {
        let scores = ranker().iterative_inference(&list).unwrap();
        prop_assert_eq!(scores.len(), list.len() - 1);
        prop_assert!(scores.iter().all(|s| s.is_finite()));
        // Up to 20 passages it is compute_score.
        if list.len() <= 21 {
            let plain = &ranker().compute_score(std::slice::from_ref(&list)).unwrap()[0];
            for (a, b) in plain.iter().zip(&scores) {
                prop_assert!((a - b).abs() <= 1e-6);
            }
        }
    }
}
