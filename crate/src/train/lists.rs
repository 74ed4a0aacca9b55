//! One training list: a query, then passages each labelled relevant or not.

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingList {
    /// `[query, passages...]`.
    pub texts: Vec<String>,
    /// Per passage (`texts[1..]`): relevant or not.
    pub positive: Vec<bool>,
}

impl TrainingList {
    /// A list of a query, its positives, then its negatives. Circle loss needs at least one of
    /// each.
    pub fn new(query: &str, positives: &[&str], negatives: &[&str]) -> Result<Self> {
        let list = Self {
            texts: std::iter::once(query)
                .chain(positives.iter().copied())
                .chain(negatives.iter().copied())
                .map(str::to_owned)
                .collect(),
            positive: std::iter::repeat_n(true, positives.len())
                .chain(std::iter::repeat_n(false, negatives.len()))
                .collect(),
        };
        list.check()?;
        Ok(list)
    }

    /// A list Circle loss can use: a label per passage, a positive and a negative.
    pub fn check(&self) -> Result<()> {
        if self.texts.len() != self.positive.len() + 1 {
            return Err(Error::input(format!(
                "a training list of {} texts has {} labels: it needs one per passage",
                self.texts.len(),
                self.positive.len()
            )));
        }
        if !self.positive.contains(&true) || !self.positive.contains(&false) {
            return Err(Error::input(
                "a training list needs at least one positive and one negative passage",
            ));
        }
        Ok(())
    }
}
