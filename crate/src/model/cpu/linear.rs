//! Linear layers on the CPU with the bias (and GELU, where one follows) applied in one
//! parallel pass over the product.
//!
//! burn adds a Linear's bias as a separate element-wise pass, which the CPU backend runs on one
//! thread; with the matrix products spread over the cores, those passes (and GELU's, a third one
//! over the FFN's widest activation) were the serial part of each layer. Here the product comes
//! from burn (the CPU backend's gemm, on every core) without its bias, and one pass over its
//! rows, split over the thread pool, adds the bias and applies the activation.

use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use multiversion::multiversion;

use super::gelu::{gelu, gelu_in_place};
use super::{f32_values, on_host_f32, parallel_rows};

/// What follows the bias.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Then {
    Nothing,
    Gelu,
}

/// `layer` over the last dimension of `x`, then `then`.
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>, then: Then) -> Tensor<D> {
    if !on_host_f32(&x) {
        let y = layer.forward(x);
        return match then {
            Then::Nothing => y,
            Then::Gelu => gelu(y),
        };
    }
    finish(layer, x, then == Then::Gelu, None)
}

/// `layer(x) + residual`, the sum a residual connection makes.
pub fn linear_plus<const D: usize>(layer: &Linear, x: Tensor<D>, residual: Tensor<D>) -> Tensor<D> {
    if !on_host_f32(&x) || !on_host_f32(&residual) {
        return layer.forward(x) + residual;
    }
    finish(layer, x, false, Some(residual))
}

/// The product from burn, then one pass: + bias, GELU if asked, + the residual if any, in the
/// order burn's ops would round them.
fn finish<const D: usize>(
    layer: &Linear,
    x: Tensor<D>,
    then_gelu: bool,
    residual: Option<Tensor<D>>,
) -> Tensor<D> {
    let y = burn::tensor::module::linear(x, layer.weight.val(), None);
    let bias = layer.bias.as_ref().map(|bias| bias.val().into_data());
    let bias = bias.as_ref().map(f32_values);
    let residual = residual.map(Tensor::into_data);
    let residual = residual.as_ref().map(f32_values);
    let device = y.device();
    let shape = y.shape();
    let width = *shape
        .as_slice()
        .last()
        .expect("a Linear's output has a last dimension");
    if let Some(residual) = &residual {
        assert_eq!(
            residual.len(),
            shape.num_elements(),
            "residual of another shape"
        );
    }
    let mut data = y.into_data();
    let pass = |values: &mut [f32]| {
        parallel_rows(values, width, |index, row| {
            let residual = residual
                .as_deref()
                .map(|r| &r[index * width..(index + 1) * width]);
            bias_then(row, bias.as_deref(), then_gelu, residual)
        })
    };
    match data.as_mut_slice::<f32>() {
        Ok(values) => pass(values),
        Err(_) => {
            // A buffer not aligned for f32 (not seen from the CPU backend): on a copy.
            let mut values: Vec<f32> = data.iter::<f32>().collect();
            pass(&mut values);
            data = TensorData::new(values, shape);
        }
    }
    Tensor::from_data(data, &device)
}

/// One row: + bias, then GELU if asked, then + the residual's row.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn bias_then(row: &mut [f32], bias: Option<&[f32]>, then_gelu: bool, residual: Option<&[f32]>) {
    if let Some(bias) = bias {
        for (y, b) in row.iter_mut().zip(bias) {
            *y += b;
        }
    }
    if then_gelu {
        gelu_in_place(row);
    }
    if let Some(residual) = residual {
        for (y, r) in row.iter_mut().zip(residual) {
            *y += r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::Device;

    #[test]
    fn equals_burns_linear_then_gelu() {
        let device = Device::flex();
        let layer = LinearConfig::new(24, 40).init(&device);
        let values: Vec<f32> = (0..3 * 7 * 24).map(|i| ((i as f32) * 0.37).sin()).collect();
        let x = Tensor::<3>::from_data(TensorData::new(values, [3, 7, 24]), &device);
        for then in [Then::Nothing, Then::Gelu] {
            let ours = linear(&layer, x.clone(), then);
            assert_eq!(ours.dims(), [3, 7, 40]);
            let burns = layer.forward(x.clone());
            let burns = match then {
                Then::Nothing => burns,
                Then::Gelu => burn::tensor::activation::gelu(burns),
            };
            let (ours, burns): (Vec<f32>, Vec<f32>) = (
                ours.into_data().try_to_vec().unwrap(),
                burns.into_data().try_to_vec().unwrap(),
            );
            for (a, b) in ours.iter().zip(&burns) {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{then:?}: {a} vs {b}"
                );
            }
        }
        let residual = Tensor::<3>::from_data(
            TensorData::new(
                (0..3 * 7 * 40).map(|i| i as f32 * 0.01).collect::<Vec<_>>(),
                [3, 7, 40],
            ),
            &device,
        );
        let ours: Vec<f32> = linear_plus(&layer, x.clone(), residual.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let burns: Vec<f32> = (layer.forward(x) + residual)
            .into_data()
            .try_to_vec()
            .unwrap();
        // The same operations in the same order: the same bits.
        assert_eq!(ours, burns);
    }
}
