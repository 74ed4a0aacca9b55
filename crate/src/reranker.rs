//! The public reranker: tokenize, encode each distinct text once (length-bucketed batches),
//! gather the features into padded lists, score them; iterative inference reuses the features
//! of the first encoding for every round.

#[cfg(feature = "native")]
use std::path::Path;

use burn::tensor::{Device, Tensor};

use crate::config::{BertConfig, ModelConfig};
use crate::device::{Backend, Precision};
use crate::encode::{block_on, encode_in_length_batches, index_tensor, read_floats_async};
use crate::error::{Error, Result};
use crate::model::{ListConRankerModel, Placement, list_config};
use crate::rank::{
    IterativeSchedule, UniqueTexts, unify_duplicate_scores, validate_batch, validate_list,
};
use crate::tokenize::TextTokenizer;
use crate::weights::WeightMap;

/// How a model is loaded and run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub backend: Backend,
    pub precision: Precision,
    /// Tokens per text, `[CLS]` and `[SEP]` included; longer texts are truncated (default 512).
    pub max_length: usize,
    /// Padded tokens per encoder batch; `None` picks the backend's best
    /// ([`Backend::default_batch_tokens`]).
    pub batch_tokens: Option<usize>,
}

impl LoadOptions {
    pub fn effective_batch_tokens(&self) -> usize {
        self.batch_tokens
            .unwrap_or_else(|| self.backend.default_batch_tokens())
            .max(1)
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Cpu,
            precision: Precision::F32,
            max_length: 512,
            batch_tokens: None,
        }
    }
}

/// One document of [`Reranker::rerank`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RankedDocument {
    /// Position in the input documents.
    pub index: usize,
    pub score: f32,
}

pub struct Reranker {
    model: ListConRankerModel,
    tokenizer: TextTokenizer,
    config: ModelConfig,
    device: Device,
    options: LoadOptions,
}

impl Reranker {
    /// Loads a checkpoint directory in the original split layout.
    /// A directory holding `manifest.json` is read as a web bundle (see `listconranker convert`).
    #[cfg(feature = "native")]
    pub fn load(dir: impl AsRef<Path>, options: LoadOptions) -> Result<Self> {
        if crate::weights::bundle::is_bundle(dir.as_ref()) {
            // The device first: each shard is uploaded as soon as it is read.
            let device = crate::device::open_device(options.backend)?;
            let placement = Placement::checked(device, options.backend, options.precision)?;
            let parts =
                crate::weights::bundle::read_bundle_dir(dir.as_ref(), Some(placement.clone()))?;
            return Self::from_parts(
                parts.config,
                parts.weights,
                parts.tokenizer,
                placement.device,
                options,
            );
        }
        let files = crate::weights::find_model_files(dir.as_ref())?;
        let bert = BertConfig::from_file(&files.encoder.config)?;
        let tokenizer = TextTokenizer::from_files(&files.encoder.tokenizer)?;
        let weights = crate::weights::load_split_weights(&files)?;
        let device = crate::device::open_device(options.backend)?;
        Self::from_parts(bert, weights, tokenizer, device, options)
    }

    /// Builds a reranker from an already-read config, weights and tokenizer (every loader ends
    /// here).
    pub fn from_parts(
        bert: BertConfig,
        weights: WeightMap,
        mut tokenizer: TextTokenizer,
        device: Device,
        options: LoadOptions,
    ) -> Result<Self> {
        let placement = Placement::checked(device, options.backend, options.precision)?;
        check_max_length(options.max_length, &bert)?;
        tokenizer.set_max_length(options.max_length)?;
        if tokenizer.vocab_size() > bert.vocab_size {
            return Err(Error::config(
                "config.json",
                format!(
                    "the tokenizer has {} tokens but vocab_size is {}",
                    tokenizer.vocab_size(),
                    bert.vocab_size
                ),
            ));
        }
        let list = list_config(&weights, &bert)?;
        let config = ModelConfig { bert, list };
        let model = ListConRankerModel::load(weights, &config, &placement)?;
        Ok(Self {
            model,
            tokenizer,
            config,
            device: placement.device,
            options,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    /// Changes the truncation length for later calls.
    pub fn set_max_length(&mut self, max_length: usize) -> Result<()> {
        check_max_length(max_length, &self.config.bert)?;
        self.tokenizer.set_max_length(max_length)?;
        self.options.max_length = max_length;
        Ok(())
    }

    /// Token ids of each text as the model sees it: `[CLS] ... [SEP]`, truncated.
    pub fn token_ids<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        self.tokenizer.encode_all(&texts)
    }

    /// One score in (0, 1) per passage of each `[query, passage, ...]` list, in input order.
    pub fn compute_score<S: AsRef<str>>(&self, batch: &[Vec<S>]) -> Result<Vec<Vec<f32>>> {
        block_on(self.compute_score_async(batch))
    }

    /// [`Self::compute_score`] with an asynchronous readback: the form to use on wasm32, where a
    /// blocking readback is not possible.
    pub async fn compute_score_async<S: AsRef<str>>(
        &self,
        batch: &[Vec<S>],
    ) -> Result<Vec<Vec<f32>>> {
        validate_batch(batch)?;
        let unique = UniqueTexts::new(batch);
        let features = self.encode_texts(&unique.texts)?;
        let flat = read_floats_async(self.score_features(features, &unique.lists)).await?;
        Ok(split_list_scores(&unique.lists, &flat))
    }

    /// Iterative inference over one `[query, passage, ...]` list (for lists longer than about
    /// 20 passages): each round ranks the remaining passages and settles the lowest 20% (at least
    /// 10); later rounds add their round number. Scores are for ranking only. Passages are
    /// encoded once; only the list transformer runs again each round.
    pub fn iterative_inference<S: AsRef<str>>(&self, list: &[S]) -> Result<Vec<f32>> {
        block_on(self.iterative_inference_async(list))
    }

    /// [`Self::iterative_inference`] with asynchronous readbacks (wasm32).
    pub async fn iterative_inference_async<S: AsRef<str>>(&self, list: &[S]) -> Result<Vec<f32>> {
        validate_list(list).map_err(Error::input)?;
        let batch = [list.iter().map(AsRef::as_ref).collect::<Vec<&str>>()];
        let unique = UniqueTexts::new(&batch);
        let ids = &unique.lists[0];
        let features = self.encode_texts(&unique.texts)?;
        let mut schedule = IterativeSchedule::new(ids.len() - 1);
        while let Some(remaining) = schedule.next_round() {
            let round: Vec<usize> = std::iter::once(ids[0])
                .chain(remaining.iter().map(|&p| ids[p + 1]))
                .collect();
            let scores = self.score_features(features.clone(), std::slice::from_ref(&round));
            let mut scores = read_floats_async(scores).await?;
            unify_duplicate_scores(&round[1..], &mut scores);
            schedule.accept(&scores);
        }
        Ok(schedule.finish())
    }

    /// Documents sorted by score, best first (fastembed's `rerank`), through iterative
    /// inference, which equals `compute_score` for up to 20 documents. `top_k` keeps the best k.
    pub fn rerank<S: AsRef<str>>(
        &self,
        query: &str,
        documents: &[S],
        top_k: Option<usize>,
    ) -> Result<Vec<RankedDocument>> {
        let list: Vec<&str> = std::iter::once(query)
            .chain(documents.iter().map(AsRef::as_ref))
            .collect();
        let scores = self.iterative_inference(&list)?;
        let mut ranked: Vec<RankedDocument> = scores
            .into_iter()
            .enumerate()
            .map(|(index, score)| RankedDocument { index, score })
            .collect();
        // Stable: equal scores keep input order.
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked.truncate(top_k.unwrap_or(usize::MAX));
        Ok(ranked)
    }

    /// Features [texts.len(), D] of each text alone, rows in `texts` order.
    fn encode_texts(&self, texts: &[&str]) -> Result<Tensor<2>> {
        let ids = self.tokenizer.encode_all(texts)?;
        let dtype = self.options.precision.float_dtype();
        Ok(encode_in_length_batches(
            &ids,
            self.options.effective_batch_tokens(),
            &self.device,
            |ids, real| self.model.encode(ids, real, dtype),
        ))
    }

    /// Scores of lists given as rows of `features` (`[query, passages...]` each):
    /// [lists, longest - 1], garbage past each list's end.
    fn score_features(&self, features: Tensor<2>, lists: &[Vec<usize>]) -> Tensor<2> {
        let len = lists.iter().map(Vec::len).max().unwrap_or(0);
        let [_, dim] = features.dims();
        // Pad slots repeat row 0; the attention masks keep them out of every real result.
        let gather: Vec<i64> = lists
            .iter()
            .flat_map(|list| (0..len).map(move |i| list.get(i).copied().unwrap_or(0) as i64))
            .collect();
        let stacked = features
            .select(0, index_tensor(gather, &self.device))
            .reshape([lists.len(), len, dim]);
        let lengths: Vec<usize> = lists.iter().map(Vec::len).collect();
        self.model.score_lists(stacked, &lengths)
    }
}

/// Texts may not be longer than the model has position embeddings for.
fn check_max_length(max_length: usize, bert: &BertConfig) -> Result<()> {
    if max_length > bert.max_position_embeddings {
        return Err(Error::input(format!(
            "max_length {max_length} exceeds the model's max_position_embeddings {}",
            bert.max_position_embeddings
        )));
    }
    Ok(())
}

/// Cuts the flat [lists, longest - 1] scores into one row per list (pads dropped), giving
/// duplicate passages of a list one score.
fn split_list_scores(lists: &[Vec<usize>], flat: &[f32]) -> Vec<Vec<f32>> {
    let width = lists.iter().map(Vec::len).max().unwrap_or(0) - 1;
    lists
        .iter()
        .zip(flat.chunks_exact(width))
        .map(|(ids, row)| {
            let mut scores = row[..ids.len() - 1].to_vec();
            unify_duplicate_scores(&ids[1..], &mut scores);
            scores
        })
        .collect()
}
