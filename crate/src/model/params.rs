//! Turning checkpoint tensors into burn parameters. PyTorch stores Linear weights as
//! [out, in]; burn's `Linear` multiplies by [in, out], so weights are transposed on the device.

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, FloatDType, Shape, Tensor, TensorData};

use crate::device::{Backend, Precision, check_precision};
use crate::error::Result;
use crate::weights::{Weight, WeightMap};

/// Where and in which float type the parameters live.
#[derive(Clone, Debug)]
pub struct Placement {
    pub device: Device,
    pub dtype: FloatDType,
}

impl Placement {
    /// Parameters on `device` in `precision`, once the device is known to compute in it.
    pub fn checked(device: Device, backend: Backend, precision: Precision) -> Result<Self> {
        check_precision(&device, backend, precision)?;
        Ok(Self {
            device,
            dtype: precision.float_dtype(),
        })
    }

    pub fn tensor<const D: usize>(&self, weight: Weight) -> Tensor<D> {
        match weight {
            Weight::Host(raw) => {
                let data = TensorData::new(raw.data, raw.shape);
                Tensor::from_data(data, (&self.device, self.dtype.into()))
            }
            Weight::Device { shape, tensor } => tensor.reshape(Shape::from(shape)),
        }
    }

    /// A Linear weight [out, in] as burn's [in, out], transposed on the device whether the
    /// loader uploaded it already or not (every layout then computes exactly alike).
    fn linear_weight(&self, weight: Weight) -> Tensor<2> {
        self.tensor::<2>(weight).transpose()
    }

    /// `prefix.weight` [out, in] and `prefix.bias` [out] as a burn `Linear`.
    pub fn linear(
        &self,
        w: &mut WeightMap,
        prefix: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<Linear> {
        let keys = [format!("{prefix}.weight"), format!("{prefix}.bias")];
        self.linear_from_keys(w, &keys, d_in, d_out)
    }

    /// A Linear whose weight and bias keys do not follow the `.weight` / `.bias` pattern.
    pub fn linear_from_keys(
        &self,
        w: &mut WeightMap,
        [weight_key, bias_key]: &[String; 2],
        d_in: usize,
        d_out: usize,
    ) -> Result<Linear> {
        let weight = w.take_weight(weight_key, &[d_out, d_in])?;
        let bias = w.take_weight(bias_key, &[d_out])?;
        Ok(Linear {
            weight: Param::from_tensor(self.linear_weight(weight)),
            bias: Some(Param::from_tensor(self.tensor(bias))),
        })
    }

    /// `prefix.weight` / `prefix.bias` of a LayerNorm over `dim` features.
    pub fn layer_norm(
        &self,
        w: &mut WeightMap,
        prefix: &str,
        dim: usize,
        eps: f64,
    ) -> Result<LayerNorm> {
        let gamma = w.take_weight(&format!("{prefix}.weight"), &[dim])?;
        let beta = w.take_weight(&format!("{prefix}.bias"), &[dim])?;
        let mut norm = LayerNormConfig::new(dim)
            .with_epsilon(eps)
            .init(&self.device);
        norm.gamma = Param::from_tensor(self.tensor(gamma));
        norm.beta = Some(Param::from_tensor(self.tensor(beta)));
        Ok(norm)
    }

    pub fn embedding(
        &self,
        w: &mut WeightMap,
        key: &str,
        rows: usize,
        dim: usize,
    ) -> Result<Embedding> {
        let weight = w.take_weight(key, &[rows, dim])?;
        Ok(Embedding {
            weight: Param::from_tensor(self.tensor(weight)),
        })
    }
}
