//! One query of a C-MTEB reranking data set and the candidate list the model ranks for it.

/// A row of the C-MTEB reranking format: `{query, positive: [..], negative: [..]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub query: String,
    pub positive: Vec<String>,
    pub negative: Vec<String>,
}

impl Sample {
    /// MTEB evaluates only samples with at least one positive and one negative passage: with
    /// either side empty every ranking is perfect (or hopeless) and AP says nothing.
    pub fn is_rankable(&self) -> bool {
        !self.positive.is_empty() && !self.negative.is_empty()
    }

    /// `[query, positives..., negatives...]`: the list the model scores (MTEB's order, which
    /// decides the mteb1 ranking of tied scores).
    pub fn list(&self) -> Vec<&str> {
        std::iter::once(self.query.as_str())
            .chain(self.positive.iter().map(String::as_str))
            .chain(self.negative.iter().map(String::as_str))
            .collect()
    }

    /// Relevance of each candidate of [`Sample::list`] (the query excluded).
    pub fn relevance(&self) -> Vec<bool> {
        let mut relevant = vec![true; self.positive.len()];
        relevant.resize(self.candidates(), false);
        relevant
    }

    pub fn candidates(&self) -> usize {
        self.positive.len() + self.negative.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_positives_then_negatives() {
        let s = Sample {
            query: "q".into(),
            positive: vec!["p".into()],
            negative: vec!["n1".into(), "n2".into()],
        };
        assert_eq!(s.list(), ["q", "p", "n1", "n2"]);
        assert_eq!(s.relevance(), [true, false, false]);
        assert!(s.is_rankable());
        assert!(
            !Sample {
                negative: vec![],
                ..s
            }
            .is_rankable()
        );
    }
}
