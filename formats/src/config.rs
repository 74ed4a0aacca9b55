//! Model sizes. The encoder's come from `config.json`; the list part's (D, F, number of layers)
//! are read off the checkpoint's tensor shapes, because the original release does not record
//! them anywhere else. Nothing here is hard-coded to the real model's 1024 / 1792 / 16.

use serde::Deserialize;

use crate::error::{Error, Result};

/// The fields of a HuggingFace `BertConfig` that inference depends on.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_bert_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub hidden_act: HiddenAct,
    #[serde(default)]
    pub position_embedding_type: PositionEmbeddingType,
}

/// The encoder's activation. The original model uses the exact (erf) GELU; other activations
/// are not part of it, and a config naming one fails to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiddenAct {
    #[default]
    Gelu,
}

/// How positions are embedded: only BERT's learned absolute positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionEmbeddingType {
    #[default]
    Absolute,
}

fn default_type_vocab_size() -> usize {
    2
}
fn default_bert_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// Parses and validates `config.json`; `file` names it in errors.
    pub fn from_json(text: &str, file: &str) -> Result<Self> {
        let config: BertConfig = serde_json::from_str(text).map_err(|e| Error::config(file, e))?;
        config.validate(file)?;
        Ok(config)
    }

    /// Reads `config.json` from disk.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::read_model(&file, e))?;
        Self::from_json(&text, &file)
    }

    fn validate(&self, file: &str) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::config(file, format!("{name} must be positive")));
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(Error::config(
                file,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    self.hidden_size, self.num_attention_heads
                ),
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(Error::config(
                file,
                "layer_norm_eps must be a positive number",
            ));
        }
        Ok(())
    }
}

/// Sizes of the listwise part, found from the checkpoint's shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListConfig {
    /// Feature size after `linear_in_embedding` (1792 in the real model).
    pub dim: usize,
    /// Feed-forward size of each list layer (2048 in the real model).
    pub ffn: usize,
    /// Number of list transformer layers (2 in the real model).
    pub layers: usize,
    /// Attention heads of the list layers: the encoder's `num_attention_heads`.
    pub heads: usize,
}

/// LayerNorm epsilon of the list part (PyTorch's default, used by the original code).
pub const LIST_LAYER_NORM_EPS: f64 = 1e-5;

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub bert: BertConfig,
    pub list: ListConfig,
}
