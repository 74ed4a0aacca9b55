//! Which texts go through the encoder together: each distinct text once, in batches of similar
//! length under a padded-token budget. Nothing here touches a tensor.

use std::collections::HashMap;

/// At most this many texts per encoder batch, as the reference chunks its encoding.
pub const MAX_TEXTS_PER_BATCH: usize = 400;

/// Distinct texts of a batch, in first-seen order, and for every list the index of each of its
/// texts in that order. Identical texts are encoded once: their features are identical anyway.
pub struct UniqueTexts<'a> {
    pub texts: Vec<&'a str>,
    pub lists: Vec<Vec<usize>>,
}

impl<'a> UniqueTexts<'a> {
    pub fn new<S: AsRef<str>>(batch: &'a [Vec<S>]) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut texts = Vec::new();
        let lists = batch
            .iter()
            .map(|list| {
                list.iter()
                    .map(|text| {
                        let text = text.as_ref();
                        *index.entry(text).or_insert_with(|| {
                            texts.push(text);
                            texts.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        Self { texts, lists }
    }
}

/// Groups texts into encoder batches of similar length: sorted by token count (longest first),
/// each batch padded to its longest text holds at most `max_tokens` padded tokens (and always at
/// least one text) and at most `max_texts` texts. Less padding, same numbers: mean pooling
/// ignores pads.
pub fn length_batches(lengths: &[usize], max_tokens: usize, max_texts: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted longest first, so the batch's first text sets its padded width.
        let width = current.first().map_or(lengths[i], |&first| lengths[first]);
        let fits = (current.len() + 1) * width <= max_tokens && current.len() < max_texts;
        if !current.is_empty() && !fits {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_budget_and_cover_every_text() {
        let lengths = [5, 100, 7, 100, 3, 50];
        let batches = length_batches(&lengths, 210, 400);
        assert_eq!(batches, vec![vec![1, 3], vec![5, 2, 0, 4]]);
        let single = length_batches(&[600], 100, 10);
        assert_eq!(
            single,
            vec![vec![0]],
            "an over-budget text still gets its own batch"
        );
        assert_eq!(
            length_batches(&[2; 5], 1000, 2).len(),
            3,
            "max_texts caps a batch"
        );
    }

    #[test]
    fn unique_texts_map_duplicates_to_one_row() {
        let batch = vec![vec!["q", "a", "b", "a"], vec!["q2", "b"]];
        let unique = UniqueTexts::new(&batch);
        assert_eq!(unique.texts, vec!["q", "a", "b", "q2"]);
        assert_eq!(unique.lists, vec![vec![0, 1, 2, 1], vec![3, 2]]);
    }
}
