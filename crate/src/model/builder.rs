//! Building burn parameters from a [`WeightMap`] through key prefixes, as candle's
//! `VarBuilder::pp` does: each loader asks its builder for `pp("attention").pp("self")` and then
//! for `linear(..)`, so the loaders mirror the checkpoint's module tree and no key is spelt out
//! with `format!`. Every tensor is taken out of the map (checked for shape and finiteness), so
//! what is left afterwards was never used.
//!
//! PyTorch stores Linear weights as [out, in]; burn's `Linear` multiplies by [in, out], so
//! weights are transposed on the device.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;

use burn::module::{Param, ParamId};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{FloatDType, Shape, Tensor, TensorData};

use crate::device::Placement;
use crate::error::Result;
use crate::weights::{Weight, WeightMap};

/// Where a parameter came from in the checkpoint: its key, and whether burn holds it transposed
/// (a Linear weight: PyTorch's [out, in] is burn's [in, out]). What writing a trained model
/// back, or comparing its gradients with PyTorch's, needs to name each parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointName {
    pub key: String,
    pub transposed: bool,
}

/// The checkpoint name of every parameter a load built, by burn's parameter id (which moving a
/// module to another device keeps).
pub type ParamNames = HashMap<ParamId, CheckpointName>;

/// Takes the tensors under one key prefix out of a [`WeightMap`] and places them. Builders of
/// sub-modules share the map (a `RefCell`: one loader runs at a time), so a loader can hold
/// several of them, as the module tree has several children.
#[derive(Clone)]
pub struct ParamBuilder<'a> {
    weights: &'a RefCell<WeightMap>,
    at: &'a Placement,
    prefix: String,
    /// The float type of the parameters built: the placement's, unless [`ParamBuilder::in_f32`].
    dtype: FloatDType,
    /// Where each parameter built is recorded under its checkpoint name, when asked for.
    names: Option<&'a RefCell<ParamNames>>,
}

impl<'a> ParamBuilder<'a> {
    /// A builder at the root of the canonical key tree.
    pub fn new(weights: &'a RefCell<WeightMap>, at: &'a Placement) -> Self {
        Self {
            weights,
            at,
            prefix: String::new(),
            dtype: at.dtype(),
            names: None,
        }
    }

    /// This builder, recording the checkpoint name of every parameter it (or a sub-module's
    /// builder) builds into `names`.
    pub fn recording_names(self, names: &'a RefCell<ParamNames>) -> Self {
        Self {
            names: Some(names),
            ..self
        }
    }

    /// `value` as a parameter named `key` in the checkpoint.
    fn param<const D: usize>(
        &self,
        key: String,
        value: Tensor<D>,
        transposed: bool,
    ) -> Param<Tensor<D>> {
        let param = Param::from_tensor(value);
        if let Some(names) = self.names {
            names
                .borrow_mut()
                .insert(param.id, CheckpointName { key, transposed });
        }
        param
    }

    /// This builder, building its parameters in f32 whatever the model's float type: for the
    /// few places where f16 rounding costs more than the parameters' size is worth.
    pub fn in_f32(&self) -> ParamBuilder<'a> {
        ParamBuilder {
            dtype: FloatDType::F32,
            ..self.clone()
        }
    }

    /// The builder of the sub-module `name` (`prefix.name`).
    pub fn pp(&self, name: impl Display) -> ParamBuilder<'a> {
        ParamBuilder {
            prefix: self.key(name),
            weights: self.weights,
            at: self.at,
            dtype: self.dtype,
            names: self.names,
        }
    }

    fn key(&self, name: impl Display) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The tensor `name` of `shape`, on the device in this builder's float type.
    pub fn tensor<const D: usize>(&self, name: &str, shape: &[usize]) -> Result<Tensor<D>> {
        let weight = self
            .weights
            .borrow_mut()
            .take_weight(&self.key(name), shape)?;
        Ok(match weight {
            Weight::Host(raw) => {
                let data = TensorData::new(raw.data, raw.shape);
                Tensor::from_data(data, (self.at.device(), self.dtype.into()))
            }
            // Uploaded in the placement's type as its shard was read (the model's keys were
            // not known yet): a no-op cast unless this builder differs, and then an f32
            // parameter of an f16 placement holds f16-rounded values.
            Weight::Device { shape, tensor } => tensor.reshape(Shape::from(shape)).cast(self.dtype),
            // Validation only: the model is built to check every key and shape, never run.
            Weight::Checked { .. } => {
                let data = TensorData::new(vec![0f32], [1; D]);
                Tensor::from_data(data, (self.at.device(), self.dtype.into()))
            }
        })
    }

    /// `weight` [out, in] and `bias` [out] as a burn `Linear`.
    pub fn linear(&self, d_in: usize, d_out: usize) -> Result<Linear> {
        self.linear_from("weight", "bias", d_in, d_out)
    }

    /// A Linear whose tensors are not called `weight` / `bias` (PyTorch attention's packed
    /// `in_proj_weight` / `in_proj_bias`).
    pub fn linear_from(
        &self,
        weight: &str,
        bias: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<Linear> {
        // Transposed on the device whether the loader uploaded it already or not, so that every
        // layout computes exactly alike.
        let (weight_name, bias_name) = (weight, bias);
        let weight = self.tensor::<2>(weight_name, &[d_out, d_in])?.transpose();
        let bias = self.tensor::<1>(bias_name, &[d_out])?;
        Ok(Linear {
            weight: self.param(self.key(weight_name), weight, true),
            bias: Some(self.param(self.key(bias_name), bias, false)),
        })
    }

    /// `weight` / `bias` of a LayerNorm over `dim` features.
    pub fn layer_norm(&self, dim: usize, eps: f64) -> Result<LayerNorm> {
        let mut norm = LayerNormConfig::new(dim)
            .with_epsilon(eps)
            .init(self.at.device());
        norm.gamma = self.param(self.key("weight"), self.tensor("weight", &[dim])?, false);
        norm.beta = Some(self.param(self.key("bias"), self.tensor("bias", &[dim])?, false));
        Ok(norm)
    }

    /// `weight` [rows, dim] of an embedding table.
    pub fn embedding(&self, rows: usize, dim: usize) -> Result<Embedding> {
        Ok(Embedding {
            weight: self.param(
                self.key("weight"),
                self.tensor("weight", &[rows, dim])?,
                false,
            ),
        })
    }
}
