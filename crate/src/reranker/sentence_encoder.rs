//! A plain BERT checkpoint used on its own as a mean-pooling sentence encoder: the first stage
//! of ListConRanker, exposed so that it can be checked against transformers on real weights.

use std::path::Path;

use super::bridge::read_floats;
use crate::config::BertConfig;
use crate::device::{LoadOptions, Placement};
use crate::encode::encode_in_length_batches;
use crate::error::Result;
use crate::model::BertEncoder;
use crate::tokenize::TextTokenizer;
use crate::weights::{WeightMap, find_encoder_files, load_encoder_weights, plan_encoder_weights};

pub struct SentenceEncoder {
    encoder: BertEncoder,
    tokenizer: TextTokenizer,
    placement: Placement,
}

impl SentenceEncoder {
    /// Loads `config.json`, `model.safetensors` (or `pytorch_model.bin`) and the tokenizer.
    pub fn load(dir: impl AsRef<Path>, options: &LoadOptions) -> Result<Self> {
        let files = find_encoder_files(dir.as_ref())?;
        let config = BertConfig::from_file(&files.config)?;
        let mut tokenizer = TextTokenizer::from_files(&files.tokenizer)?;
        tokenizer.set_max_length(options.max_length.min(config.max_position_embeddings))?;
        tokenizer.limit_ids(config.vocab_size)?;
        BertEncoder::check_plan(plan_encoder_weights(&files.weights)?, &config)?;
        let mut weights = WeightMap::default();
        load_encoder_weights(&files.weights, &mut weights)?;
        let placement = Placement::open(options.clone())?;
        let encoder = BertEncoder::load_all(weights, &config, &placement)?;
        Ok(Self {
            encoder,
            tokenizer,
            placement,
        })
    }

    /// Mean-pooled last hidden state of each text (not normalised).
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let ids = self.tokenizer.encode_all(&texts)?;
        let pooled = encode_in_length_batches(
            &ids,
            self.placement.options().effective_batch_tokens(),
            self.placement.device(),
            |batch| self.encoder.forward_pooled(batch.ids, batch.real),
        );
        let [_, hidden] = pooled.dims();
        let flat = read_floats(pooled)?;
        Ok(flat.chunks_exact(hidden).map(<[f32]>::to_vec).collect())
    }
}
