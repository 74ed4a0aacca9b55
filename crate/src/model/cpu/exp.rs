//! e^y for the kernels of this module, written so that loops over it vectorise (see
//! [`super`]): no calls, no branches, no float-to-int casts.

/// e^y for y <= 0 (NaN gives NaN). Below -87 (e^-87 ~ 1.6e-38, the smallest normal f32s) it
/// returns e^-87, which the callers multiply by small numbers: their result stays below 1e-37.
#[inline(always)]
pub fn exp_non_positive(y: f32) -> f32 {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    // ln 2 split in two (Cody-Waite): n * LN2_HI is exact for |n| < 2^15 (LN2_HI has 9
    // significant bits), so r = y - n ln 2 keeps its precision.
    const LN2_HI: f32 = 0.693_359_375;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 x 2^23 rounds to the nearest integer with plain float
    // arithmetic (vectorises without SSE4.1's round instruction).
    const ROUND: f32 = 12_582_912.0;
    // The integer's bits are then the low bits of the sum's: read off as integers, not by a
    // float-to-int cast (whose saturation does not vectorise).
    const ROUND_BITS: u32 = 0x4B40_0000;
    let y = if y < -87.0 { -87.0 } else { y };
    let shifted = y * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    // e^r on |r| <= ln 2 / 2 by its Taylor polynomial of degree 7: relative error < 6e-9.
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^n with n in -126..=0: the exponent field of a normal f32.
    let two_to_n = f32::from_bits(shifted.to_bits().wrapping_sub(ROUND_BITS - 127) << 23);
    p * two_to_n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_exact_exponential() {
        let mut worst = 0f64;
        for i in 0..=870_000 {
            let y = -(i as f32) / 10_000.0;
            let exact = (y as f64).exp();
            let rel = ((exp_non_positive(y) as f64) - exact).abs() / exact;
            assert!(rel <= 3e-7, "exp({y}): {} vs {exact}", exp_non_positive(y));
            worst = worst.max(rel);
        }
        assert!(worst > 0.0);
        assert_eq!(exp_non_positive(0.0), 1.0);
        // Clamped below -87: e^-87, tiny and finite.
        assert_eq!(exp_non_positive(-1000.0), exp_non_positive(-87.0));
        assert_eq!(exp_non_positive(f32::NEG_INFINITY), exp_non_positive(-87.0));
        assert!(exp_non_positive(f32::NAN).is_nan());
    }
}
