//! Backend-free ranking logic: input checks, length-bucketed encoder batches, duplicate
//! handling and the iterative-inference schedule. Nothing here touches a tensor.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Lists longer than this are scored in rounds by iterative inference (the model was trained on
/// lists of about 20 passages).
pub const ITERATIVE_LIST_SIZE: usize = 20;

/// Checks that a batch holds at least one list and every list a query and at least one passage.
pub fn validate_batch<S: AsRef<str>>(batch: &[Vec<S>]) -> Result<()> {
    if batch.is_empty() {
        return Err(Error::input(
            "the batch is empty: give at least one [query, passage, ...] list",
        ));
    }
    for (index, list) in batch.iter().enumerate() {
        validate_list(list).map_err(|e| Error::input(format!("list {index}: {e}")))?;
    }
    Ok(())
}

pub fn validate_list<S: AsRef<str>>(list: &[S]) -> std::result::Result<(), String> {
    match list.len() {
        0 => Err("the list is empty: expected [query, passage, ...]".into()),
        1 => Err("the list has a query but no passage".into()),
        _ => Ok(()),
    }
}

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

/// Gives passages of identical text the exact score of their first occurrence in the list.
/// They are mathematically equal; this removes float noise before iterative inference compares
/// scores for ties.
pub fn unify_duplicate_scores(passage_ids: &[usize], scores: &mut [f32]) {
    let mut first: HashMap<usize, f32> = HashMap::new();
    for (id, score) in passage_ids.iter().zip(scores.iter_mut()) {
        *score = *first.entry(*id).or_insert(*score);
    }
}

/// The iterative-inference schedule of one list, as a state machine so that the same logic
/// drives synchronous (native) and asynchronous (browser) scoring: ask `next_round` which
/// passages to score, score them as `[query] + those`, hand the scores to `accept`.
pub struct IterativeSchedule {
    remaining: Vec<usize>,
    round: usize,
    finals: Vec<Option<f32>>,
}

impl IterativeSchedule {
    pub fn new(passages: usize) -> Self {
        Self {
            remaining: (0..passages).collect(),
            round: 0,
            finals: vec![None; passages],
        }
    }

    /// Passage indices to score next, in the order to score them; `None` when done.
    pub fn next_round(&self) -> Option<&[usize]> {
        (!self.remaining.is_empty()).then_some(self.remaining.as_slice())
    }

    /// Records the scores of the round returned by `next_round` (same order).
    pub fn accept(&mut self, scores: &[f32]) {
        assert_eq!(
            scores.len(),
            self.remaining.len(),
            "one score per remaining passage"
        );
        let offset = self.round as f32;
        if self.remaining.len() <= ITERATIVE_LIST_SIZE {
            for (&idx, &s) in self.remaining.iter().zip(scores) {
                self.finals[idx] = Some(s + offset);
            }
            self.remaining.clear();
            return;
        }
        // Ascending, stable: equal scores keep their order in `remaining`.
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let n = scores.len();
        // `ceil(0.2 * n)` in f64, as the reference computes it.
        let mut k = ((n as f64 * 0.2).ceil() as usize).max(10).min(n);
        // Ties at the cut leave together.
        while k < n && scores[order[k]] == scores[order[k - 1]] {
            k += 1;
        }
        for &pos in &order[..k] {
            self.finals[self.remaining[pos]] = Some(scores[pos] + offset);
        }
        self.remaining = order[k..].iter().map(|&pos| self.remaining[pos]).collect();
        self.round += 1;
    }

    /// Final scores in input order (after `next_round` returned `None`).
    pub fn finish(self) -> Vec<f32> {
        self.finals
            .into_iter()
            .map(|s| s.expect("every passage is scored before the schedule ends"))
            .collect()
    }
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

    #[test]
    fn duplicate_scores_take_the_first_occurrence() {
        let mut scores = [0.5, 0.25, 0.5000001];
        unify_duplicate_scores(&[7, 8, 7], &mut scores);
        assert_eq!(scores, [0.5, 0.25, 0.5]);
    }

    #[test]
    fn short_lists_are_scored_in_one_round() {
        let mut schedule = IterativeSchedule::new(3);
        assert_eq!(schedule.next_round(), Some(&[0, 1, 2][..]));
        schedule.accept(&[0.1, 0.9, 0.5]);
        assert!(schedule.next_round().is_none());
        assert_eq!(schedule.finish(), vec![0.1, 0.9, 0.5]);
    }

    #[test]
    fn long_lists_drop_the_lowest_each_round_with_an_offset() {
        // 25 passages with score i/100: round 0 drops max(ceil(5), 10) = 10 lowest.
        let n = 25;
        let mut schedule = IterativeSchedule::new(n);
        let scores: Vec<f32> = (0..n).map(|i| i as f32 / 100.0).collect();
        schedule.accept(&scores);
        assert_eq!(
            schedule.next_round().unwrap(),
            &(10..25).collect::<Vec<_>>()[..]
        );
        let second: Vec<f32> = (10..25).map(|i| i as f32 / 100.0).collect();
        schedule.accept(&second);
        assert!(schedule.next_round().is_none());
        let finals = schedule.finish();
        assert_eq!(finals[0], 0.0);
        assert_eq!(finals[9], 0.09);
        assert_eq!(finals[10], 1.10);
        assert_eq!(finals[24], 1.24);
    }

    #[test]
    fn ties_at_the_cut_leave_together_but_never_past_the_end() {
        let n = 21;
        let mut scores = vec![0.5f32; n];
        scores[0] = 0.1;
        let mut schedule = IterativeSchedule::new(n);
        schedule.accept(&scores);
        // All 20 tied scores sit at the cut: everything leaves in round 0.
        assert!(schedule.next_round().is_none());
        assert!(schedule.finish().iter().all(|&s| s < 1.0));
    }
}
