//! GELU in its exact form, `x * Φ(x)` with the normal CDF through erf, as BERT and the list
//! transformer use it: burn's kernel on a GPU, a vectorised one of our own on the CPU.
//!
//! burn's CPU backend computes GELU one element at a time on one thread, calling libm's scalar
//! `erff`: 11-16 % of the native CPU time on small encoders (docs/perf.md), and more of the wall
//! time, since the other core waits. No maintained crate offers an f32 erf that the compiler can
//! vectorise, so [`gelu_in_place`] is hand-written: the textbook approximation of Abramowitz &
//! Stegun (formula 7.1.26, |error| <= 1.5e-7 on erf) with an exp of our own (Cody-Waite range
//! reduction and a degree-7 Taylor polynomial), written without calls or branches so that it
//! compiles to SIMD code (SSE/AVX natively, simd128 in wasm). Natively it also runs on the thread
//! pool. Against the exact definition its error is below 2e-7 x max(1, |x|) (1.6e-7 measured; tested).

use burn::tensor::{DType, Tensor, TensorCreationOptions, TensorData};

use multiversion::multiversion;

use super::exp::exp_non_positive;
use super::{CHUNK, on_host, parallel_chunks};

/// Applies GELU. On the CPU device the values are taken out of the tensor (without a copy when
/// the tensor is not shared), transformed in place and put back; elsewhere burn's kernel runs.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_host(&x) {
        return burn::tensor::activation::gelu(x);
    }
    let device = x.device();
    let dtype = x.dtype();
    let mut data = x.into_data();
    if !gelu_data(&mut data) {
        // A float type this kernel does not handle (f64, bf16): burn's kernel.
        let x = Tensor::from_data(data, TensorCreationOptions::new(device).with_dtype(dtype));
        return burn::tensor::activation::gelu(x);
    }
    Tensor::from_data(data, TensorCreationOptions::new(device).with_dtype(dtype))
}

/// GELU over the values of `data` if their type is f32 or f16 (f16 computed in f32 and rounded,
/// as burn's CPU backend does); false, and `data` untouched, otherwise.
fn gelu_data(data: &mut TensorData) -> bool {
    match data.dtype() {
        DType::F32 => match data.as_mut_slice::<f32>() {
            Ok(values) => {
                parallel_chunks(values, CHUNK, |_, chunk| gelu_in_place(chunk));
                true
            }
            Err(_) => false,
        },
        DType::F16 => match data.as_mut_slice::<half::f16>() {
            Ok(values) => {
                parallel_chunks(values, CHUNK, |_, chunk| gelu_in_place_f16(chunk));
                true
            }
            Err(_) => false,
        },
        _ => false,
    }
}

/// f16 values: widened to f32 a block at a time, transformed, rounded back.
fn gelu_in_place_f16(values: &mut [half::f16]) {
    use half::slice::HalfFloatSliceExt;
    let mut buffer = [0f32; 1024];
    for block in values.chunks_mut(buffer.len()) {
        let wide = &mut buffer[..block.len()];
        block.convert_to_f32_slice(wide);
        gelu_in_place(wide);
        block.convert_from_f32_slice(wide);
    }
}

/// `x * Φ(x)` for every value, in place. Compiled for AVX-512 and AVX2 as well as the baseline;
/// the results are the same bits whichever runs (no fused multiply-adds are formed).
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn gelu_in_place(values: &mut [f32]) {
    for x in values.iter_mut() {
        *x = gelu_one(*x);
    }
}

// Abramowitz & Stegun 7.1.26: erfc(z) ~ t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-z^2),
// t = 1 / (1 + p z), z >= 0, absolute error <= 1.5e-7.
const P: f32 = 0.327_591_1;
const A1: f32 = 0.254_829_592;
const A2: f32 = -0.284_496_736;
const A3: f32 = 1.421_413_741;
const A4: f32 = -1.453_152_027;
const A5: f32 = 1.061_405_429;

/// One value; inlined into the loop above, which the compiler vectorises (every branch is a
/// select).
#[inline(always)]
fn gelu_one(x: f32) -> f32 {
    let z = x.abs() * core::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let erfc = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5)))) * exp_non_positive(-z * z);
    // Φ(x) = erfc(-x / sqrt 2) / 2: from the tail directly for x < 0, so that no cancellation
    // loses the small values there.
    let half_tail = 0.5 * erfc;
    let cdf = if x < 0.0 { half_tail } else { 1.0 - half_tail };
    x * cdf
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// The definition, in f64.
    fn gelu_exact(x: f32) -> f64 {
        let x = x as f64;
        0.5 * x * (1.0 + libm::erf(x / core::f64::consts::SQRT_2))
    }

    /// Every f32 in [-10, 10] on a grid of 2^-12, the extremes and the special values.
    fn samples() -> Vec<f32> {
        let mut xs: Vec<f32> = (-40_960..=40_960).map(|i| i as f32 / 4096.0).collect();
        xs.extend([
            -1e30,
            -1e6,
            -1000.0,
            -88.0,
            -87.0,
            -30.0,
            -13.5,
            13.5,
            30.0,
            1000.0,
            1e6,
            1e30,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-30,
            -1e-30,
            0.0,
            -0.0,
        ]);
        xs
    }

    #[test]
    fn matches_the_definition_within_its_bound() {
        let xs = samples();
        let mut ys = xs.clone();
        gelu_in_place(&mut ys);
        let mut worst = 0f64;
        for (&x, &y) in xs.iter().zip(&ys) {
            let exact = gelu_exact(x);
            let err = (y as f64 - exact).abs() / (x.abs() as f64).max(1.0);
            assert!(err <= 2e-7, "gelu({x}) = {y}, exact {exact}");
            worst = worst.max(err);
        }
        eprintln!("gelu: worst error / max(1, |x|) = {worst:e}");
        // The bound is not loose by orders of magnitude (the approximation is what runs).
        assert!(worst > 1e-8, "worst {worst}");
    }

    #[test]
    fn special_values_behave_like_the_definition() {
        let mut ys = [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 0.0, -0.0];
        gelu_in_place(&mut ys);
        assert_eq!(ys[0], f32::INFINITY);
        // -inf * Φ(-inf) = -inf * 0: NaN, as the definition (and burn's kernel) gives.
        assert!(ys[1].is_nan());
        assert!(ys[2].is_nan());
        assert_eq!(ys[3], 0.0);
        assert_eq!(ys[4], 0.0);
    }

    #[test]
    fn f16_values_are_computed_in_f32_and_rounded() {
        let xs: Vec<half::f16> = (-2000..2000)
            .map(|i| half::f16::from_f32(i as f32 / 200.0))
            .collect();
        let mut ys = xs.clone();
        gelu_in_place_f16(&mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            let mut wide = [x.to_f32()];
            gelu_in_place(&mut wide);
            assert_eq!(
                y.to_bits(),
                half::f16::from_f32(wide[0]).to_bits(),
                "x = {x}"
            );
        }
    }

    #[test]
    fn a_tensor_on_the_cpu_agrees_with_burns_kernel() {
        let device = Device::flex();
        let values: Vec<f32> = (0..3 * 5 * 4000)
            .map(|i| (i as f32 - 30_000.0) / 3000.0)
            .collect();
        let x = Tensor::<3>::from_data(TensorData::new(values, [3, 5, 4000]), &device);
        let ours = gelu(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let burns = burn::tensor::activation::gelu(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (a, b) in ours.iter().zip(&burns) {
            assert!((a - b).abs() <= 5e-7 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}
