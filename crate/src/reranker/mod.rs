//! The public reranker: tokenize, encode each distinct text once (length-bucketed batches),
//! gather the features into padded lists, score them; iterative inference reuses the features
//! of the first encoding for every round. Everything runs through the async path (`bridge`);
//! the blocking methods wait for it.

mod bridge;
#[cfg(feature = "native")]
mod sentence_encoder;

#[cfg(feature = "native")]
use std::path::Path;

use burn::tensor::Tensor;

use crate::config::{BertConfig, ModelConfig};
use crate::device::{LoadOptions, Placement};
use crate::encode::batching::UniqueTexts;
use crate::encode::{encode_in_length_batches, index_tensor};
use crate::error::{Error, Result};
use crate::model::{BertEncoder, ListConRankerModel, ListHead, ParamNames, list_config};
use crate::rank::{
    IterativeSchedule, ListLimits, unify_duplicate_scores, validate_batch, validate_list,
};
use crate::tokenize::TextTokenizer;
use crate::weights::WeightMap;
use bridge::{block_on, read_floats_async};
#[cfg(feature = "native")]
pub use sentence_encoder::SentenceEncoder;

/// One document of [`Reranker::rerank`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RankedDocument {
    /// Position in the input documents.
    pub index: usize,
    pub score: f32,
}

/// A loaded model's pieces, as training needs them ([`Reranker::into_training_parts`]).
pub struct TrainingParts {
    pub encoder: BertEncoder,
    pub head: ListHead,
    pub names: ParamNames,
    pub tokenizer: TextTokenizer,
    pub config: ModelConfig,
    pub placement: Placement,
}

pub struct Reranker {
    model: ListConRankerModel,
    /// Each parameter's checkpoint name, for training (a few hundred short strings).
    names: ParamNames,
    tokenizer: TextTokenizer,
    config: ModelConfig,
    placement: Placement,
    limits: ListLimits,
}

impl Reranker {
    /// Loads a checkpoint directory in the original split layout (or the merged one).
    /// A directory holding `manifest.json` is read as a web bundle (see `listconranker convert`).
    #[cfg(feature = "native")]
    pub fn load(dir: impl AsRef<Path>, options: LoadOptions) -> Result<Self> {
        use crate::weights::Destination;
        use crate::weights::bundle::{is_bundle, read_bundle_dir};
        let dir = dir.as_ref();
        if is_bundle(dir) {
            // The device first: each shard is uploaded as soon as it is read.
            let placement = Placement::open(options)?;
            let parts = read_bundle_dir(
                dir,
                Destination::Device(&placement),
                ListConRankerModel::check_plan,
            )?;
            let tokenizer = TextTokenizer::from_json(&parts.tokenizer_json, &parts.tokenizer_file)?;
            return Self::from_parts(parts.config, parts.weights, tokenizer, placement);
        }
        let files = crate::weights::find_model_files(dir)?;
        let bert = BertConfig::from_file(&files.encoder.config)?;
        let tokenizer = TextTokenizer::from_files(&files.encoder.tokenizer)?;
        // Every tensor's key is checked against the model before any value is decoded.
        ListConRankerModel::check_plan(crate::weights::plan_split_weights(&files)?, &bert)?;
        let weights = crate::weights::load_split_weights(&files)?;
        Self::from_parts(bert, weights, tokenizer, Placement::open(options)?)
    }

    /// Checks that the bundle in `dir` loads, as [`Reranker::load`] would check it (every file,
    /// tensor, shape and value; the tokenizer against the embedding table; no tensor left
    /// unused), without placing its weights: memory stays near one shard.
    #[cfg(feature = "native")]
    pub fn validate_bundle(dir: &Path) -> Result<()> {
        use crate::weights::Destination;
        use crate::weights::bundle::read_bundle_dir;
        let parts = read_bundle_dir(dir, Destination::ShapesOnly, ListConRankerModel::check_plan)?;
        let tokenizer = TextTokenizer::from_json(&parts.tokenizer_json, &parts.tokenizer_file)?;
        let options = LoadOptions {
            max_length: parts.config.max_position_embeddings.min(512),
            ..LoadOptions::default()
        };
        let placement = Placement::open(options)?;
        Self::from_parts(parts.config, parts.weights, tokenizer, placement).map(drop)
    }

    /// Builds a reranker from an already-read config, weights and tokenizer on an opened
    /// placement (every loader ends here).
    pub fn from_parts(
        bert: BertConfig,
        weights: WeightMap,
        mut tokenizer: TextTokenizer,
        placement: Placement,
    ) -> Result<Self> {
        let max_length = placement.options().max_length;
        check_max_length(max_length, &bert)?;
        tokenizer.set_max_length(max_length)?;
        tokenizer.limit_ids(bert.vocab_size)?;
        let list = list_config(&weights, &bert)?;
        let config = ModelConfig { bert, list };
        let (model, names) = ListConRankerModel::load_named(weights, &config, &placement)?;
        let limits = ListLimits::new(config.list.heads, placement.options().max_passages);
        Ok(Self {
            model,
            names,
            tokenizer,
            config,
            placement,
            limits,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The loaded model taken apart for training: the encoder, the list head, every parameter's
    /// checkpoint name and the tokenizer.
    pub fn into_training_parts(self) -> TrainingParts {
        let (encoder, head) = self.model.into_parts();
        TrainingParts {
            encoder,
            head,
            names: self.names,
            tokenizer: self.tokenizer,
            config: self.config,
            placement: self.placement,
        }
    }

    pub fn options(&self) -> &LoadOptions {
        self.placement.options()
    }

    /// Checks one list's length against [`Reranker::max_passages`] as scoring would, so that
    /// a caller reading lists one by one can refuse a long one before it joins a batch (its
    /// shape, a query and a passage, is the caller's to check).
    pub fn check_list_length<S: AsRef<str>>(&self, list: &[S]) -> Result<()> {
        self.limits.check(std::slice::from_ref(&list))
    }

    /// The longest list (in passages) this reranker takes.
    pub fn max_passages(&self) -> usize {
        self.limits.max_passages
    }

    /// Changes the truncation length for later calls.
    pub fn set_max_length(&mut self, max_length: usize) -> Result<()> {
        check_max_length(max_length, &self.config.bert)?;
        self.tokenizer.set_max_length(max_length)?;
        self.placement.set_max_length(max_length);
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
        self.limits.check(batch)?;
        let unique = UniqueTexts::new(batch);
        let features = self.encode_texts(&unique.texts)?;
        let lengths: Vec<usize> = unique.lists.iter().map(Vec::len).collect();
        let mut scores = Vec::with_capacity(batch.len());
        // Lists go through the list transformer in groups whose attention fits the budget.
        for group in self.limits.groups(&lengths) {
            let lists = &unique.lists[group];
            let flat = read_floats_async(self.score_features(features.clone(), lists)).await?;
            scores.extend(split_list_scores(lists, &flat));
        }
        if let Some(list) = scores.iter().position(|s| s.iter().any(|v| !v.is_finite())) {
            return Err(Error::NonFiniteScore { list, line: None });
        }
        Ok(scores)
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
        validate_list(list)?;
        let batch = [list.iter().map(AsRef::as_ref).collect::<Vec<&str>>()];
        self.limits.check(&batch)?;
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
            if scores.iter().any(|v| !v.is_finite()) {
                return Err(Error::NonFiniteScore {
                    list: 0,
                    line: None,
                });
            }
            unify_duplicate_scores(&round[1..], &mut scores);
            schedule.accept(&scores)?;
        }
        schedule.finish()
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
        Ok(encode_in_length_batches(
            &ids,
            self.options().effective_batch_tokens(),
            self.placement.device(),
            |batch| self.model.encode(batch),
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
            .select(0, index_tensor(gather, self.placement.device()))
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
