//! Stage one's cache of the frozen encoder's pooled features: each distinct text of the training
//! lists goes through the encoder once, and every epoch then costs only the list head.

use std::collections::HashMap;

use burn::tensor::{Device, Tensor, TensorData};

use super::lists::TrainingList;
use crate::encode::{encode_in_length_batches, index_tensor};
use crate::error::{Error, Result};
use crate::model::BertEncoder;
use crate::tokenize::TextTokenizer;

/// Mean-pooled encoder output of each distinct text, [texts, hidden], in host memory.
pub struct PooledFeatures {
    hidden: usize,
    values: Vec<f32>,
    row_of: HashMap<String, usize>,
}

impl PooledFeatures {
    /// Encodes every distinct text of `lists` (batches of similar length under `batch_tokens`
    /// padded tokens, as scoring does) on `device`.
    pub fn compute(
        encoder: &BertEncoder,
        tokenizer: &TextTokenizer,
        lists: &[TrainingList],
        batch_tokens: usize,
        device: &Device,
    ) -> Result<Self> {
        let mut row_of = HashMap::new();
        let mut texts: Vec<&str> = Vec::new();
        for text in lists.iter().flat_map(|list| &list.texts) {
            row_of.entry(text.clone()).or_insert_with(|| {
                texts.push(text);
                texts.len() - 1
            });
        }
        let ids = tokenizer.encode_all(&texts)?;
        let pooled = encode_in_length_batches(&ids, batch_tokens, device, |batch| {
            encoder.forward_pooled(batch.ids, batch.real)
        });
        let [_, hidden] = pooled.dims();
        let values = pooled
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::input(format!("reading pooled features: {e:?}")))?;
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            let text = texts[bad / hidden.max(1)];
            return Err(Error::input(format!(
                "the encoder gave a non-finite feature for the text {:?}",
                text.chars().take(60).collect::<String>()
            )));
        }
        Ok(Self {
            hidden,
            values,
            row_of,
        })
    }

    /// How many distinct texts are cached.
    pub fn len(&self) -> usize {
        self.row_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.row_of.is_empty()
    }

    /// The encoder's width.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The features of every text of `lists`, list after list, on `device`: [texts, hidden].
    /// Fails on a text that was not encoded.
    pub fn of_lists(&self, lists: &[TrainingList], device: &Device) -> Result<Tensor<2>> {
        let rows = lists
            .iter()
            .flat_map(|list| &list.texts)
            .map(|text| {
                self.row_of.get(text).copied().ok_or_else(|| {
                    Error::input("a training text is missing from the feature cache")
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        let mut values = Vec::with_capacity(rows.len() * self.hidden);
        for row in &rows {
            values.extend_from_slice(&self.values[row * self.hidden..(row + 1) * self.hidden]);
        }
        Ok(Tensor::from_data(
            TensorData::new(values, [rows.len(), self.hidden]),
            device,
        ))
    }
}

/// Rows of `flat` ([texts of all lists, D], list after list) as padded lists [lists, longest, D];
/// a pad slot repeats its list's query row (the attention masks keep pads out of every real
/// result). Also gives each list's length.
pub fn padded_lists(flat: Tensor<2>, lists: &[TrainingList]) -> (Tensor<3>, Vec<usize>) {
    let lengths: Vec<usize> = lists.iter().map(|list| list.texts.len()).collect();
    let len = lengths.iter().copied().max().unwrap_or(0);
    let [_, dim] = flat.dims();
    let mut start = 0;
    let mut gather = Vec::with_capacity(lists.len() * len);
    for &n in &lengths {
        gather.extend((0..len).map(|i| (start + if i < n { i } else { 0 }) as i64));
        start += n;
    }
    let device = flat.device();
    let stacked = flat
        .select(0, index_tensor(gather, &device))
        .reshape([lists.len(), len, dim]);
    (stacked, lengths)
}
