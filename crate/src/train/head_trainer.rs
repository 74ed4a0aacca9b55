//! Stage one of the card's recipe: the encoder frozen, `linear_in_embedding`, the list
//! transformer and the score heads trained with AdamW on the cached pooled features.
//!
//! The head runs on burn's autodiff device over the CPU backend. There the model's own CPU
//! kernels (which work on host buffers burn cannot differentiate) step aside and burn's
//! differentiable ops run instead; the numbers are the same function.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Gradients, Tensor};

use super::circle_loss::CircleLoss;
use super::features::{PooledFeatures, padded_lists};
use super::lists::TrainingList;
use super::named::{NamedTensor, named_gradients, named_parameters};
use crate::error::{Error, Result};
use crate::model::{ListHead, ParamNames};

/// The optimizer's and the loss's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    pub loss: CircleLoss,
    /// AdamW's learning rate.
    pub lr: f64,
    /// AdamW's decoupled weight decay (PyTorch's `weight_decay`).
    pub weight_decay: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// Gradients are scaled down so that their global L2 norm (over every trained tensor)
    /// is at most this; `None`: not clipped.
    pub max_grad_norm: Option<f32>,
}

impl Default for TrainOptions {
    /// PyTorch's AdamW defaults apart from the learning rate; clipping at 1.0.
    fn default() -> Self {
        Self {
            loss: CircleLoss::default(),
            lr: 1e-4,
            weight_decay: 0.01,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            max_grad_norm: Some(1.0),
        }
    }
}

/// Trains a [`ListHead`] on pooled features.
pub struct HeadTrainer {
    head: ListHead,
    names: ParamNames,
    optimizer: ModuleOptimizer,
    options: TrainOptions,
    device: Device,
}

impl HeadTrainer {
    /// `head` as loaded (any device: its parameters are copied to the CPU's autodiff device);
    /// `names`: its parameters' checkpoint names.
    pub fn new(head: ListHead, names: ParamNames, options: TrainOptions) -> Self {
        let device = Device::flex().autodiff();
        let optimizer = AdamWConfig::new()
            .with_beta_1(options.beta_1)
            .with_beta_2(options.beta_2)
            .with_epsilon(options.epsilon)
            .with_weight_decay(options.weight_decay)
            .init();
        Self {
            head: head.fork(&device).train(),
            names,
            optimizer,
            options,
            device,
        }
    }

    /// The mean Circle loss of `lists`, tracked for backpropagation.
    fn loss(&self, features: &PooledFeatures, lists: &[TrainingList]) -> Result<Tensor<1>> {
        if lists.is_empty() {
            return Err(Error::input("a training step needs at least one list"));
        }
        for list in lists {
            list.check()?;
        }
        let pooled = features.of_lists(lists, &self.device)?;
        let (padded, lengths) = padded_lists(self.head.project(pooled), lists);
        let scores = self.head.score_lists(padded, &lengths);
        let labels: Vec<Vec<bool>> = lists.iter().map(|list| list.positive.clone()).collect();
        Ok(self.options.loss.forward(scores, &labels))
    }

    /// The loss of `lists` and its gradients, without changing anything. A non-finite loss is
    /// an error naming the lists.
    fn backward(
        &self,
        features: &PooledFeatures,
        lists: &[TrainingList],
    ) -> Result<(f32, Gradients)> {
        self.backward_weighted(features, lists, 1.0)
    }

    /// [`Self::backward`] of `weight` times the loss.
    fn backward_weighted(
        &self,
        features: &PooledFeatures,
        lists: &[TrainingList],
        weight: f32,
    ) -> Result<(f32, Gradients)> {
        let loss = self.loss(features, lists)?;
        let value = scalar(&loss);
        if !value.is_finite() {
            return Err(Error::input(format!(
                "the loss is {value} on a batch of {} lists (the first query: {:?})",
                lists.len(),
                lists[0].texts[0].chars().take(60).collect::<String>()
            )));
        }
        let loss = if weight == 1.0 {
            loss
        } else {
            loss.mul_scalar(weight)
        };
        Ok((value, loss.backward()))
    }

    /// One optimizer step on `lists` (one batch) at the options' learning rate. Returns the
    /// loss before the step. A non-finite loss is an error and leaves the parameters as they
    /// were.
    pub fn step(&mut self, features: &PooledFeatures, lists: &[TrainingList]) -> Result<f32> {
        self.step_batch(features, lists, lists.len(), self.options.lr)
    }

    /// One optimizer step at learning rate `lr` on `batch`, which goes through in micro-batches
    /// of at most `micro_batch` lists (so that a large batch fits in memory): each
    /// micro-batch's gradient is weighted by its share of the batch, so that together they are
    /// the gradient of the batch's mean loss. Returns that mean loss. A non-finite loss is an
    /// error and leaves the parameters as they were.
    pub fn step_batch(
        &mut self,
        features: &PooledFeatures,
        batch: &[TrainingList],
        micro_batch: usize,
        lr: f64,
    ) -> Result<f32> {
        if batch.is_empty() {
            return Err(Error::input("a training step needs at least one list"));
        }
        let mut accumulator = GradientsAccumulator::<ListHead>::new();
        let mut mean_loss = 0.0;
        for chunk in batch.chunks(micro_batch.max(1)) {
            let weight = chunk.len() as f32 / batch.len() as f32;
            let (loss, grads) = self.backward_weighted(features, chunk, weight)?;
            accumulator.accumulate(&self.head, GradientsParams::from_grads(grads, &self.head));
            mean_loss += loss * weight;
        }
        let mut grads = accumulator.grads();
        if let Some(max_norm) = self.options.max_grad_norm {
            clip_global_norm(&self.head, &mut grads, max_norm);
        }
        let head = self.head.clone();
        self.head = self.optimizer.step(lr, head, grads);
        Ok(mean_loss)
    }

    /// The scores of `lists` under the current parameters (no gradient; the CPU kernels run),
    /// one per passage: what validation ranks. Each list needs a positive and a negative (AP
    /// means nothing otherwise).
    pub fn scores(
        &self,
        features: &PooledFeatures,
        lists: &[TrainingList],
    ) -> Result<Vec<Vec<f32>>> {
        if lists.is_empty() {
            return Ok(Vec::new());
        }
        for list in lists {
            list.check()?;
        }
        let head = self.head.valid();
        let pooled = features.of_lists(lists, &Device::flex())?;
        let (padded, lengths) = padded_lists(head.project(pooled), lists);
        let [_, len, _] = padded.dims();
        let flat = head
            .score_lists(padded, &lengths)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::input(format!("reading scores: {e:?}")))?;
        Ok(lists
            .iter()
            .zip(flat.chunks_exact(len - 1))
            .map(|(list, row)| row[..list.texts.len() - 1].to_vec())
            .collect())
    }

    /// The loss of `lists` and the gradient of every trained parameter, by checkpoint name in
    /// PyTorch's layout, without a step.
    pub fn gradients(
        &self,
        features: &PooledFeatures,
        lists: &[TrainingList],
    ) -> Result<(f32, Vec<NamedTensor>)> {
        let (loss, grads) = self.backward(features, lists)?;
        Ok((loss, named_gradients(&self.head, &self.names, &grads)))
    }

    /// The trained parameters by checkpoint name, in PyTorch's layout.
    pub fn parameters(&self) -> Vec<NamedTensor> {
        named_parameters(&self.head, &self.names)
    }

    /// The trained head, off the autodiff device, for scoring.
    pub fn into_head(self) -> ListHead {
        self.head.valid()
    }
}

fn scalar(x: &Tensor<1>) -> f32 {
    x.clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN)
}

/// Scales every gradient in `grads` by `max_norm / norm` when their global L2 norm exceeds
/// `max_norm` (PyTorch's `clip_grad_norm_`). burn's own clipping by norm works tensor by tensor,
/// which changes the direction of the update; the recipe clips the whole gradient.
fn clip_global_norm(module: &ListHead, grads: &mut GradientsParams, max_norm: f32) {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: f64,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                let sum = grad.square().sum().into_data().convert::<f64>();
                self.total += sum.try_to_vec::<f64>().map_or(f64::NAN, |v| v[0]);
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f32,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, grad.mul_scalar(self.factor));
            }
        }
    }
    let mut sum = SumSquares { grads, total: 0.0 };
    module.visit(&mut sum);
    let norm = sum.total.sqrt();
    // PyTorch's clip_grad_norm_: max_norm / (norm + 1e-6), applied only when below 1.
    let factor = f64::from(max_norm) / (norm + 1e-6);
    if factor < 1.0 {
        module.visit(&mut Scale {
            grads,
            factor: factor as f32,
        });
    }
}
