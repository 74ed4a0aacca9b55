//! Turning checkpoint tensors into burn parameters. PyTorch stores Linear weights as
//! [out, in]; burn's `Linear` multiplies by [in, out], so weights are transposed on the host.

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};

use crate::error::Result;
use crate::weights::{RawTensor, WeightMap};

/// Where and in which float type the parameters live.
#[derive(Clone, Debug)]
pub struct Placement {
    pub device: Device,
    pub dtype: FloatDType,
}

impl Placement {
    pub fn tensor<const D: usize>(&self, raw: RawTensor) -> Tensor<D> {
        let data = TensorData::new(raw.data, raw.shape);
        Tensor::from_data(data, (&self.device, self.dtype.into()))
    }

    /// `prefix.weight` [out, in] and `prefix.bias` [out] as a burn `Linear`.
    pub fn linear(&self, w: &mut WeightMap, prefix: &str, d_in: usize, d_out: usize) -> Result<Linear> {
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
        let weight = w.take(weight_key, &[d_out, d_in])?;
        let bias = w.take(bias_key, &[d_out])?;
        Ok(Linear {
            weight: Param::from_tensor(self.tensor(transpose(weight))),
            bias: Some(Param::from_tensor(self.tensor(bias))),
        })
    }

    /// `prefix.weight` / `prefix.bias` of a LayerNorm over `dim` features.
    pub fn layer_norm(&self, w: &mut WeightMap, prefix: &str, dim: usize, eps: f64) -> Result<LayerNorm> {
        let gamma = w.take(&format!("{prefix}.weight"), &[dim])?;
        let beta = w.take(&format!("{prefix}.bias"), &[dim])?;
        let mut norm = LayerNormConfig::new(dim).with_epsilon(eps).init(&self.device);
        norm.gamma = Param::from_tensor(self.tensor(gamma));
        norm.beta = Some(Param::from_tensor(self.tensor(beta)));
        Ok(norm)
    }

    pub fn embedding(&self, w: &mut WeightMap, key: &str, rows: usize, dim: usize) -> Result<Embedding> {
        let weight = w.take(key, &[rows, dim])?;
        Ok(Embedding {
            weight: Param::from_tensor(self.tensor(weight)),
        })
    }
}

/// Transposes a row-major 2-D tensor.
fn transpose(raw: RawTensor) -> RawTensor {
    let [rows, cols] = [raw.shape[0], raw.shape[1]];
    let mut data = vec![0.0f32; raw.data.len()];
    for (r, row) in raw.data.chunks_exact(cols).enumerate() {
        for (c, &value) in row.iter().enumerate() {
            data[c * rows + r] = value;
        }
    }
    RawTensor {
        shape: vec![cols, rows],
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let raw = RawTensor {
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let t = transpose(raw);
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.data, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
