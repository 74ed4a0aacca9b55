//! Backend-free ranking logic: list validation, duplicate passages and the iterative-inference
//! schedule. Nothing here touches a tensor.

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
        if let Some(problem) = list_problem(list) {
            return Err(Error::input(format!("list {index}: {problem}")));
        }
    }
    Ok(())
}

/// Checks that a list holds a query and at least one passage.
pub fn validate_list<S: AsRef<str>>(list: &[S]) -> Result<()> {
    match list_problem(list) {
        Some(problem) => Err(Error::input(problem)),
        None => Ok(()),
    }
}

pub use listconranker_formats::input::list_problem;

/// Bytes the list transformer's attention takes per head and (item, item) cell of a list: the
/// f32 scores, their softmax and its weights (3 x 4 bytes). The mask is a per-item padding row
/// broadcast by burn, so it adds nothing per cell.
const LIST_ATTENTION_BYTES_PER_CELL: u64 = 12;

/// Memory the list attention of one scoring pass may take by default: a list's cost grows with
/// the square of its length, so the default longest list is derived from it.
pub const DEFAULT_LIST_ATTENTION_BYTES: u64 = 1 << 30;

/// How long lists may be, and how many go through the list transformer together: checked
/// before anything is tokenized or allocated.
#[derive(Debug, Clone, Copy)]
pub struct ListLimits {
    /// Most passages in one list.
    pub max_passages: usize,
    heads: u64,
}

impl ListLimits {
    /// Limits for a list transformer with `heads` attention heads: `max_passages`, or the
    /// longest list whose attention fits [`DEFAULT_LIST_ATTENTION_BYTES`].
    pub fn new(heads: usize, max_passages: Option<usize>) -> Self {
        let heads = heads.max(1) as u64;
        let cells = DEFAULT_LIST_ATTENTION_BYTES / (heads * LIST_ATTENTION_BYTES_PER_CELL);
        // The list holds the query too.
        let fitting = ((cells as f64).sqrt() as usize).saturating_sub(1).max(1);
        Self {
            max_passages: max_passages.unwrap_or(fitting).max(1),
            heads,
        }
    }

    /// Bytes of list attention for `lists` lists padded to `len` items.
    fn attention_bytes(&self, lists: usize, len: usize) -> u64 {
        (lists as u64)
            .saturating_mul((len as u64).saturating_pow(2))
            .saturating_mul(self.heads * LIST_ATTENTION_BYTES_PER_CELL)
    }

    /// Every list of `batch` (`[query, passages...]`) within `max_passages`, or an error naming
    /// the first that is not.
    pub fn check<L: AsRef<[S]>, S>(&self, batch: &[L]) -> Result<()> {
        let len = |list: &L| list.as_ref().len();
        match batch
            .iter()
            .position(|list| len(list).saturating_sub(1) > self.max_passages)
        {
            None => Ok(()),
            Some(list) => Err(Error::ListTooLong {
                list,
                line: None,
                passages: len(&batch[list]) - 1,
                limit: self.max_passages,
                attention_mib: self.attention_bytes(1, len(&batch[list])) >> 20,
            }),
        }
    }

    /// Consecutive groups of lists (by their lengths, query included) to score together: each
    /// group's padded attention stays within the memory budget, and holds at least one list.
    pub fn groups(&self, lengths: &[usize]) -> Vec<std::ops::Range<usize>> {
        let mut groups = Vec::new();
        let mut start = 0;
        while start < lengths.len() {
            let mut end = start + 1;
            let mut longest = lengths[start];
            while end < lengths.len() {
                let len = longest.max(lengths[end]);
                if self.attention_bytes(end + 1 - start, len) > DEFAULT_LIST_ATTENTION_BYTES {
                    break;
                }
                longest = len;
                end += 1;
            }
            groups.push(start..end);
            start = end;
        }
        groups
    }
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

    /// Records the scores of the round returned by `next_round` (same order): one per
    /// remaining passage, or an error.
    pub fn accept(&mut self, scores: &[f32]) -> Result<()> {
        if scores.len() != self.remaining.len() {
            return Err(Error::input(format!(
                "iterative inference: {} scores for a round of {} passages",
                scores.len(),
                self.remaining.len()
            )));
        }
        let offset = self.round as f32;
        if self.remaining.len() <= ITERATIVE_LIST_SIZE {
            for (&idx, &s) in self.remaining.iter().zip(scores) {
                self.finals[idx] = Some(s + offset);
            }
            self.remaining.clear();
            return Ok(());
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
        Ok(())
    }

    /// Final scores in input order, once `next_round` has returned `None`; before that, an
    /// error naming how many passages are still unscored.
    pub fn finish(self) -> Result<Vec<f32>> {
        if !self.remaining.is_empty() {
            return Err(Error::input(format!(
                "iterative inference ended with {} passages unscored",
                self.remaining.len()
            )));
        }
        Ok(self.finals.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        schedule.accept(&[0.1, 0.9, 0.5]).unwrap();
        assert!(schedule.next_round().is_none());
        assert_eq!(schedule.finish().unwrap(), vec![0.1, 0.9, 0.5]);
    }

    #[test]
    fn long_lists_drop_the_lowest_each_round_with_an_offset() {
        // 25 passages with score i/100: round 0 drops max(ceil(5), 10) = 10 lowest.
        let n = 25;
        let mut schedule = IterativeSchedule::new(n);
        let scores: Vec<f32> = (0..n).map(|i| i as f32 / 100.0).collect();
        schedule.accept(&scores).unwrap();
        assert_eq!(
            schedule.next_round().unwrap(),
            &(10..25).collect::<Vec<_>>()[..]
        );
        let second: Vec<f32> = (10..25).map(|i| i as f32 / 100.0).collect();
        schedule.accept(&second).unwrap();
        assert!(schedule.next_round().is_none());
        let finals = schedule.finish().unwrap();
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
        schedule.accept(&scores).unwrap();
        // All 20 tied scores sit at the cut: everything leaves in round 0.
        assert!(schedule.next_round().is_none());
        assert!(schedule.finish().unwrap().iter().all(|&s| s < 1.0));
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let mut schedule = IterativeSchedule::new(3);
        let e = schedule.accept(&[0.5]).unwrap_err();
        assert!(e.to_string().contains("1 scores for a round of 3"), "{e}");
        let e = schedule.finish().unwrap_err();
        assert!(e.to_string().contains("3 passages unscored"), "{e}");
        assert_eq!(validate_list(&["q"]).unwrap_err().code(), "INPUT_INVALID");
    }

    #[test]
    fn list_limits_follow_the_attention_memory() {
        // 16 heads (the released model): sqrt(2^30 / (16 * 12)) = 2364 items, 2363 passages.
        let limits = ListLimits::new(16, None);
        assert_eq!(limits.max_passages, 2363);
        let long = vec![vec!["t"; 2365]];
        let e = limits.check(&long).unwrap_err();
        assert_eq!(e.code(), "INPUT_INVALID");
        let text = e.to_string();
        assert!(
            text.contains("list 0: 2364 passages") && text.contains("limit of 2363"),
            "{text}"
        );
        assert!(limits.check(&[vec!["t"; 2364]]).is_ok());
        assert_eq!(ListLimits::new(16, Some(5)).max_passages, 5);
        // Groups: 1000-item lists take 192 MB each; five fit in 1 GiB, not six.
        let groups = limits.groups(&[1000; 12]);
        assert_eq!(groups, vec![0..5, 5..10, 10..12]);
        assert_eq!(limits.groups(&[3000, 2]), vec![0..1, 1..2]);
    }
}
