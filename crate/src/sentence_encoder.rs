//! A plain BERT checkpoint used on its own as a mean-pooling sentence encoder: the first stage
//! of ListConRanker, exposed so that it can be checked against transformers on real weights.

use std::path::Path;

use burn::tensor::Device;

use crate::config::BertConfig;
use crate::device::open_device;
use crate::encode::{encode_in_length_batches, read_floats};
use crate::error::Result;
use crate::model::{BertEncoder, Placement};
use crate::reranker::LoadOptions;
use crate::tokenize::TextTokenizer;
use crate::weights::{WeightMap, find_encoder_files, load_encoder_weights};

pub struct SentenceEncoder {
    encoder: BertEncoder,
    tokenizer: TextTokenizer,
    device: Device,
    batch_tokens: usize,
}

impl SentenceEncoder {
    /// Loads `config.json`, `model.safetensors` (or `pytorch_model.bin`) and the tokenizer.
    pub fn load(dir: impl AsRef<Path>, options: &LoadOptions) -> Result<Self> {
        let files = find_encoder_files(dir.as_ref())?;
        let config = BertConfig::from_file(&files.config)?;
        let mut tokenizer = TextTokenizer::from_files(&files.tokenizer)?;
        tokenizer.set_max_length(options.max_length.min(config.max_position_embeddings))?;
        let mut weights = WeightMap::default();
        load_encoder_weights(&files.weights, &mut weights)?;
        let device = open_device(options.backend)?;
        let placement = Placement::checked(device, options.backend, options.precision)?;
        Ok(Self {
            encoder: BertEncoder::load(&mut weights, &placement, &config)?,
            tokenizer,
            device: placement.device,
            batch_tokens: options.effective_batch_tokens(),
        })
    }

    /// Mean-pooled last hidden state of each text (not normalised).
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let ids = self.tokenizer.encode_all(&texts)?;
        let pooled =
            encode_in_length_batches(&ids, self.batch_tokens, &self.device, |ids, real| {
                self.encoder.forward_pooled(ids, real)
            });
        let [_, hidden] = pooled.dims();
        let flat = read_floats(pooled)?;
        Ok(flat.chunks_exact(hidden).map(<[f32]>::to_vec).collect())
    }
}
