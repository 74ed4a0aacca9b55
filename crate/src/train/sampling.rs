//! Training lists from labelled queries: each list the query, some of its positives and
//! sampled negatives, up to the list size, drawn again every epoch from the seed.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};

use super::lists::TrainingList;

/// One labelled query of a training set (the C-MTEB reranking format's row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledQuery {
    pub query: String,
    pub positive: Vec<String>,
    pub negative: Vec<String>,
}

impl LabelledQuery {
    /// Every passage of the query, positives first: the list that validation ranks.
    pub fn full_list(&self) -> TrainingList {
        TrainingList {
            texts: std::iter::once(&self.query)
                .chain(&self.positive)
                .chain(&self.negative)
                .cloned()
                .collect(),
            positive: std::iter::repeat_n(true, self.positive.len())
                .chain(std::iter::repeat_n(false, self.negative.len()))
                .collect(),
        }
    }

    /// Whether it can make a training list: Circle loss needs a positive and a negative.
    pub fn is_trainable(&self) -> bool {
        !self.positive.is_empty() && !self.negative.is_empty()
    }
}

/// The training lists of one epoch, in a shuffled order: for each trainable query, up to
/// `passages - 1` of its positives (at least one) and negatives filling the list to `passages`
/// passages (at least one), each drawn at random, the passages of a list in a random order.
/// The same `seed` and `epoch` give the same lists.
pub fn epoch_lists(
    queries: &[LabelledQuery],
    passages: usize,
    seed: u64,
    epoch: u64,
) -> Vec<TrainingList> {
    let passages = passages.max(2);
    // One stream per epoch: a run resumed at epoch e draws what an uninterrupted one drew.
    let mut rng = StdRng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut lists: Vec<TrainingList> = queries
        .iter()
        .filter(|q| q.is_trainable())
        .map(|q| {
            let positives = q.positive.len().min(passages - 1);
            let negatives = q.negative.len().min(passages - positives);
            let mut chosen: Vec<(&String, bool)> = q
                .positive
                .choose_multiple(&mut rng, positives)
                .map(|p| (p, true))
                .chain(
                    q.negative
                        .choose_multiple(&mut rng, negatives)
                        .map(|n| (n, false)),
                )
                .collect();
            chosen.shuffle(&mut rng);
            TrainingList {
                texts: std::iter::once(q.query.clone())
                    .chain(chosen.iter().map(|(text, _)| (*text).clone()))
                    .collect(),
                positive: chosen.iter().map(|(_, positive)| *positive).collect(),
            }
        })
        .collect();
    lists.shuffle(&mut rng);
    lists
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(positives: usize, negatives: usize) -> LabelledQuery {
        LabelledQuery {
            query: "q".into(),
            positive: (0..positives).map(|i| format!("p{i}")).collect(),
            negative: (0..negatives).map(|i| format!("n{i}")).collect(),
        }
    }

    #[test]
    fn lists_fill_up_to_the_size_with_a_positive_and_a_negative_each() {
        let queries = [
            query(1, 40),
            query(30, 2),
            query(3, 3),
            query(0, 5),
            query(2, 0),
        ];
        let lists = epoch_lists(&queries, 20, 7, 0);
        assert_eq!(
            lists.len(),
            3,
            "queries without a positive or a negative are left out"
        );
        let mut sizes: Vec<(usize, usize)> = lists
            .iter()
            .map(|l| {
                l.check().unwrap();
                let positives = l.positive.iter().filter(|&&p| p).count();
                (positives, l.positive.len() - positives)
            })
            .collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [(1, 19), (3, 3), (19, 1)]);
        for list in &lists {
            for (text, &positive) in list.texts[1..].iter().zip(&list.positive) {
                assert_eq!(text.starts_with('p'), positive, "{text}");
            }
        }
    }

    #[test]
    fn the_same_seed_and_epoch_give_the_same_lists_and_another_epoch_others() {
        let queries: Vec<LabelledQuery> = (0..10).map(|_| query(3, 30)).collect();
        let a = epoch_lists(&queries, 8, 1, 2);
        assert_eq!(a, epoch_lists(&queries, 8, 1, 2));
        assert_ne!(a, epoch_lists(&queries, 8, 1, 3));
        assert_ne!(a, epoch_lists(&queries, 8, 2, 2));
    }
}
