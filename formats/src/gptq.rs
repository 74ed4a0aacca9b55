//! GPTQ (Frantar et al. 2022) into the stored `q4` / `q8` block format: the quantizer half of a
//! calibrated `convert`, the Rust port of `gptq_quantize` in `tests/reference/gptq_ref.py`.
//!
//! The format is exactly [`quantize`](crate::quantize::quantize)'s (symmetric levels in
//! -qmax..=qmax, one f16 scale per `block` consecutive inputs of a row, q4 packed two per
//! byte); only the choice of the levels differs. Round to nearest rounds every weight on its
//! own; GPTQ quantizes the inputs (columns) one at a time, in stored order, and pushes each
//! column's rounding error, weighted by the upper Cholesky factor `U` of `H^-1`
//! (`H^-1 = U^T U`, `H = X^T X` of the layer's calibration inputs), onto the columns not yet
//! quantized, so that the layer's output `X W^T` moves as little as possible. Step by step, as
//! the reference does it:
//!
//! 1. an input never active (`H[i][i] == 0`) gets its row and column of `H` zeroed and
//!    `H[i][i] = 1` (its weights are then quantized by round to nearest plus whatever error
//!    reaches them; GPTQ's own code zeroes them instead);
//! 2. dampening: `damp * mean(diag H)` is added to the diagonal (the mean summed as NumPy's
//!    pairwise `np.mean` does, so the shift is the reference's to the bit);
//! 3. `U`, the upper Cholesky factor of `H^-1` (below);
//! 4. per block of `block` columns `[g0, g1)`, per row: the scale is
//!    `f16(f32(absmax of the block's weights as updated so far) / qmax)` (the division in f32,
//!    as `quantize` does); with `scale_search = n > 0` it is instead the best of
//!    `f16(absmax * f32(1 - 0.03 k) / qmax)`, `k < n`, by the round-to-nearest squared error
//!    of the block weighted by `H`'s (dampened) diagonal (first best on ties); then per column
//!    `j`: `q = clamp(round_half_even(f32(w_j) / f32(scale)), -qmax, qmax)` (0 where the scale
//!    is 0), `e = (w_j - q * scale) / U[j][j]`, `w[j+1..g1] -= e * U[j][j+1..g1]`; a weight can
//!    move after its block's scale is fixed, its level is then clipped;
//! 5. after the block, the lazy update of the later columns: `w[g1..] -= err @ U[g0..g1][g1..]`.
//!
//! f64 where the reference computes in float64 (the weights being updated, `H`, `U`, the
//! errors, the search's costs), f32 where it uses float32 (the absmax, the scale division, the
//! value's division and rounding), so that a diagonal `H` (no feedback: `U` is diagonal) gives
//! `quantize`'s values and scales bit for bit. With a full `H`, `U` and `err @ U` are computed
//! differently (LAPACK / BLAS there, the loops below here) and agree with the reference's only
//! up to the last bits of f64; a level or a scale could still differ where such a difference
//! puts an updated weight on the other side of an f32 rounding boundary (and a level that moves
//! changes the rest of its row, as GPTQ feeds it forward). Never seen so far: the levels and
//! scales of `formats/tests/gptq.rs`'s five reference cases are identical (the test asserts
//! it), and so were one-off cases of up to 256 x 1024 and 64 x 2048 with rank-deficient and
//! heavy-tailed Hessians.
//!
//! `U` without inverting `H`: with `J` the reversal permutation, the Cholesky factor of
//! `J H J = L L^T` gives `H = V V^T` with `V = J L J` upper triangular, so
//! `H^-1 = V^-T V^-1 = U^T U` with `U = V^-1` upper triangular with a positive diagonal: the
//! unique upper Cholesky factor of `H^-1`. One Cholesky (n^3/6 multiply-adds) and one
//! triangular inverse (n^3/6) instead of the reference's inverse, symmetrisation and second
//! Cholesky; both steps are backward stable, and the inverse's error grows with the condition
//! of the factor, `sqrt(cond H)`, where forming `H^-1` costs `cond H`. `H` must be symmetric
//! (a product `X^T X` is): only its upper triangle is read (the dead-input step aside).
//!
//! Hand-written linear algebra: this crate is also built instrumented for fuzzing and for wasm,
//! and a dense linear-algebra crate (faer, nalgebra) would be a large dependency for one
//! factorisation. The loops are arranged so that BERT-large's largest Linear (1024 x 4096, `H`
//! 4096 x 4096) takes under 30 s on one thread (16-21 s measured on a busy 2 GHz VM;
//! docs/quantization.md): every inner loop runs over contiguous memory; the dot products have
//! sixteen independent accumulators (they vectorise without the compiler reassociating
//! anything); the factorisation goes by panels of 64 rows, each row of the factor loaded once
//! per panel; the lazy update goes by 4 x 4 tiles. No FMA: Rust never fuses a multiply and an
//! add on its own, so the results do not depend on the CPU.
//!
//! Memory: a copy of `H` (n x n f64: 128 MiB at n = 4096), the weight in f64, its levels.

use half::f16;

use crate::error::{Error, Result};
use crate::quantize::{Quantized, Scheme};

/// The options of [`gptq_quantize`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GptqOptions {
    /// Added to `H`'s diagonal, as a fraction of its mean (the reference's default 0.01).
    pub damp: f64,
    /// 0: each block's scale is absmax / qmax of its updated weights. n > 0: the best of n
    /// shrinkings `absmax * (1 - 0.03 k) / qmax`, `k < n` (the reference's
    /// `scale_search`; it used 11), at most [`MAX_SCALE_SEARCH`].
    pub scale_search: usize,
}

impl Default for GptqOptions {
    fn default() -> Self {
        GptqOptions {
            damp: 0.01,
            scale_search: 0,
        }
    }
}

/// The most shrinkings the scale search may try: `1 - 0.03 k` stays positive for `k <= 33`.
pub const MAX_SCALE_SEARCH: usize = 34;

/// Rows of the Cholesky factor and of its inverse computed together (they share the loads of
/// the rows before them; 64 rows of 4096 f64 are 2 MiB, about a core's L2).
const PANEL: usize = 64;

/// GPTQ of `weight` `[rows, cols]` (row-major f32) against `hessian` `[cols, cols]` (row-major
/// f64, `X^T X` of the layer's inputs; any positive scale), into `scheme`'s stored format: the
/// same [`Quantized`] that [`quantize::quantize`](crate::quantize::quantize) returns (q4 packed
/// two per byte, q8 as i8 bytes, f16 scales `[rows, cols / block]`).
///
/// Errors (naming `name`, the weight's key; all checked before anything large is allocated):
/// a shape the scheme cannot take (cols not a multiple of the block, or an odd q4 block), a
/// weight or Hessian whose length does not match the shape, non-finite weights or Hessian
/// entries, options out of range, a Hessian that is not positive definite once dampened, and
/// (as `quantize`) a block whose scale overflows f16.
pub fn gptq_quantize(
    scheme: Scheme,
    name: &str,
    shape: &[usize],
    weight: &[f32],
    hessian: &[f64],
    options: &GptqOptions,
) -> Result<Quantized> {
    let bad = |why: String| Error::checkpoint(name, why);
    if !scheme.fits(shape) {
        return Err(bad(format!(
            "a weight of shape {shape:?} cannot be quantized as {scheme:?}"
        )));
    }
    let (rows, cols) = (shape[0], shape[1]);
    if rows.checked_mul(cols) != Some(weight.len()) {
        return Err(bad(format!(
            "a weight of shape {shape:?} but {} values",
            weight.len()
        )));
    }
    if cols.checked_mul(cols) != Some(hessian.len()) {
        return Err(bad(format!(
            "a Hessian of {} values for {cols} inputs (expected {cols} x {cols})",
            hessian.len()
        )));
    }
    if !(options.damp.is_finite() && options.damp >= 0.0) {
        return Err(bad(format!(
            "GPTQ's dampening must be finite and >= 0, not {}",
            options.damp
        )));
    }
    if options.scale_search > MAX_SCALE_SEARCH {
        return Err(bad(format!(
            "GPTQ's scale search tries at most {MAX_SCALE_SEARCH} scales, not {}",
            options.scale_search
        )));
    }
    if !weight.iter().all(|v| v.is_finite()) {
        return Err(bad(
            "the weight holds non-finite values (NaN or infinity)".into()
        ));
    }
    if !hessian.iter().all(|v| v.is_finite()) {
        return Err(bad(
            "the Hessian holds non-finite values (NaN or infinity)".into()
        ));
    }
    let (block, qmax) = match scheme {
        Scheme::Q8Blocks { block } => (block, 127f32),
        Scheme::Q4Blocks { block } => (block, 7f32),
    };
    let n = cols;

    // 1-2: dead inputs and dampening, on a copy.
    let mut a = hessian.to_vec();
    let dead: Vec<usize> = (0..n).filter(|&i| a[i * n + i] == 0.0).collect();
    for &i in &dead {
        a[i * n..(i + 1) * n].fill(0.0);
        for r in 0..n {
            a[r * n + i] = 0.0;
        }
    }
    for &i in &dead {
        a[i * n + i] = 1.0;
    }
    let diag: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    let shift = options.damp * (numpy_sum(&diag) / n as f64);
    for i in 0..n {
        a[i * n + i] += shift;
    }
    let hdiag: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();

    // 3: U in the upper triangle of `a`.
    inverse_cholesky_upper(&mut a, n).map_err(|why| bad(format!("the Hessian {why}")))?;
    let u = a;

    // 4-5.
    let mut w: Vec<f64> = weight.iter().map(|&v| v as f64).collect();
    let blocks = cols / block;
    let mut levels = vec![0i8; rows * cols];
    let mut scales = vec![f16::ZERO; rows * blocks];
    let mut err = vec![0f64; rows * block];
    let search = options.scale_search;
    for b in 0..blocks {
        let (g0, g1) = (b * block, (b + 1) * block);
        for r in 0..rows {
            let scale = quantize_block(
                &mut w[r * cols + g0..r * cols + g1],
                &u,
                n,
                g0,
                &hdiag[g0..g1],
                qmax,
                search,
                &mut levels[r * cols + g0..r * cols + g1],
                &mut err[r * block..(r + 1) * block],
            )
            .map_err(|why| bad(format!("{why} ({scheme:?}, row {r}, inputs {g0}..{g1})")))?;
            scales[r * blocks + b] = scale;
        }
        if g1 < cols {
            lazy_update(&mut w, cols, &err, block, &u, g0, g1);
        }
    }

    Ok(Quantized::pack(scheme, rows, cols, &levels, scales))
}

/// One row's block `wb` (its weights as updated so far, updated in place by the error feedback
/// within the block): its f16 scale, its levels and its errors `e_j` (step 4).
#[allow(clippy::too_many_arguments)]
fn quantize_block(
    wb: &mut [f64],
    u: &[f64],
    n: usize,
    g0: usize,
    hdiag: &[f64],
    qmax: f32,
    search: usize,
    levels: &mut [i8],
    err: &mut [f64],
) -> std::result::Result<f16, String> {
    let mut absmax = 0f32;
    for &v in wb.iter() {
        let x = (v as f32).abs();
        if !x.is_finite() {
            return Err(format!("GPTQ's updates overflowed ({v})"));
        }
        absmax = absmax.max(x);
    }
    let mut scale = f16::from_f32(absmax / qmax);
    if !scale.is_finite() {
        return Err(format!(
            "values up to {absmax} (as updated by GPTQ) do not fit the f16 scales"
        ));
    }
    if search > 0 {
        let mut best = f64::INFINITY;
        let mut terms = vec![0f64; wb.len()];
        for k in 0..search {
            let factor = (1.0 - 0.03 * k as f64) as f32;
            let candidate = f16::from_f32(absmax * factor / qmax);
            let step = candidate.to_f32();
            for (t, (&v, &h)) in terms.iter_mut().zip(wb.iter().zip(hdiag)) {
                // (w - f32(q * step))^2 * H[i][i], as the reference computes it (`q * step` is
                // exact in f32 anyway).
                let d = v - (level(v as f32, step, qmax) * step) as f64;
                *t = d * d * h;
            }
            let cost = numpy_sum(&terms);
            if cost < best {
                best = cost;
                scale = candidate;
            }
        }
    }
    let step = scale.to_f32();
    let len = wb.len();
    for j in 0..len {
        let q = level(wb[j] as f32, step, qmax);
        levels[j] = q as i8;
        let row = &u[(g0 + j) * n + g0..(g0 + j) * n + g0 + len];
        let e = (wb[j] - q as f64 * step as f64) / row[j];
        if !e.is_finite() {
            return Err(format!("GPTQ's updates overflowed ({})", wb[j]));
        }
        for (v, &x) in wb[j + 1..].iter_mut().zip(&row[j + 1..]) {
            *v -= e * x;
        }
        err[j] = e;
    }
    Ok(scale)
}

/// `clamp(round_half_even(v / step), -qmax, qmax)`, 0 where the step is 0 (`quantize`'s rule).
fn level(v: f32, step: f32, qmax: f32) -> f32 {
    if step == 0.0 {
        0.0
    } else {
        (v / step).round_ties_even().clamp(-qmax, qmax)
    }
}

/// Step 5 for every row: `w[r][g1..] -= sum_t err[r][t] * U[g0 + t][g1..]`, the sum formed in
/// `t` order before it is subtracted (as `w -= err @ U` does). Four rows and four columns at a
/// time, so that each load of `U` serves four rows.
fn lazy_update(
    w: &mut [f64],
    cols: usize,
    err: &[f64],
    block: usize,
    u: &[f64],
    g0: usize,
    g1: usize,
) {
    let n = cols;
    let rows = w.len() / cols;
    let width = cols - g1;
    let wide = width - width % 4;
    let mut r = 0;
    while r + 4 <= rows {
        let e: [&[f64]; 4] = std::array::from_fn(|i| &err[(r + i) * block..(r + i + 1) * block]);
        let mut c = g1;
        while c < g1 + wide {
            let mut acc = [[0f64; 4]; 4];
            for t in 0..block {
                let ut: &[f64; 4] = u[(g0 + t) * n + c..(g0 + t) * n + c + 4]
                    .try_into()
                    .unwrap();
                for i in 0..4 {
                    let et = e[i][t];
                    for l in 0..4 {
                        acc[i][l] += et * ut[l];
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                let wr = &mut w[(r + i) * cols + c..(r + i) * cols + c + 4];
                for l in 0..4 {
                    wr[l] -= acc[l];
                }
            }
            c += 4;
        }
        for i in 0..4 {
            lazy_update_row(
                &mut w[(r + i) * cols..(r + i + 1) * cols],
                e[i],
                u,
                n,
                g0,
                g1 + wide,
            );
        }
        r += 4;
    }
    while r < rows {
        let e = &err[r * block..(r + 1) * block];
        lazy_update_row(&mut w[r * cols..(r + 1) * cols], e, u, n, g0, g1);
        r += 1;
    }
}

/// [`lazy_update`] for one row from column `c0` on, the same sums in the same order.
fn lazy_update_row(w: &mut [f64], e: &[f64], u: &[f64], n: usize, g0: usize, c0: usize) {
    for c in c0..w.len() {
        let mut acc = 0f64;
        for (t, &et) in e.iter().enumerate() {
            acc += et * u[(g0 + t) * n + c];
        }
        w[c] -= acc;
    }
}

/// NumPy's sum of a float64 array (`np.add.reduce`: 0 plus the pairwise sum with eight
/// accumulators below 128 values), so that `np.mean` and the search's costs come out as the
/// reference's to the bit.
fn numpy_sum(a: &[f64]) -> f64 {
    0.0 + pairwise_sum(a)
}

fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r: [f64; 8] = a[..8].try_into().unwrap();
        let whole = n - n % 8;
        for chunk in a[8..whole].chunks_exact(8) {
            for j in 0..8 {
                r[j] += chunk[j];
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[whole..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// Replaces the symmetric positive definite `a` (`[n, n]` row-major, only its upper triangle
/// read) by `U` in its upper triangle (diagonal included), `H^-1 = U^T U`; the strict lower
/// triangle is left holding scratch. Errs (with the reason) when `a` is not positive definite
/// or `U` overflows.
fn inverse_cholesky_upper(a: &mut [f64], n: usize) -> std::result::Result<(), String> {
    // J H J: reversing the flat row-major buffer reverses both indices.
    a.reverse();
    if let Err(j) = cholesky_lower(a, n) {
        return Err(format!(
            "is not positive definite once dampened (pivot of input {} of {n})",
            n - 1 - j
        ));
    }
    // J L J = V, upper: H = V V^T.
    a.reverse();
    let vd: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    // V^T into the strict lower triangle: row b of V^T (column b of V) becomes contiguous.
    transpose_upper_to_lower(a, n);
    // U = V^-1, row by row: U[a][a] = 1 / V[a][a], and for b > a
    // U[a][b] = -(sum_{a <= p < b} U[a][p] V[p][b]) / V[b][b], i.e. a dot product of U's row
    // with V^T's row b. Rows are independent; PANEL of them share the loads of V^T's rows.
    let mut panel = vec![0f64; PANEL * n];
    for a0 in (0..n).step_by(PANEL) {
        let a1 = (a0 + PANEL).min(n);
        let height = a1 - a0;
        panel[..height * n].fill(0.0);
        for b in a0..n {
            if b < a1 {
                panel[(b - a0) * n + b] = 1.0 / vd[b];
            }
            // The rows a < b of the panel.
            let below = (b.min(a1) - a0).min(height);
            let vt = &a[b * n + a0..b * n + b];
            for k in 0..below {
                let d = dot(&panel[k * n + a0..k * n + b], vt);
                panel[k * n + b] = -d / vd[b];
            }
        }
        for k in 0..height {
            let row = a0 + k;
            a[row * n + row..(row + 1) * n].copy_from_slice(&panel[k * n + row..(k + 1) * n]);
        }
    }
    for i in 0..n {
        if !a[i * n + i..(i + 1) * n].iter().all(|v| v.is_finite()) {
            return Err("is too close to singular: its inverse overflows".into());
        }
    }
    Ok(())
}

/// `a[b][p] = a[p][b]` for `p < b`, in tiles (both sides stay in cache).
fn transpose_upper_to_lower(a: &mut [f64], n: usize) {
    const TILE: usize = 32;
    for b0 in (0..n).step_by(TILE) {
        for p0 in (0..=b0).step_by(TILE) {
            for b in b0..(b0 + TILE).min(n) {
                for p in p0..(p0 + TILE).min(b) {
                    a[b * n + p] = a[p * n + b];
                }
            }
        }
    }
}

/// In-place Cholesky `a = L L^T` of the lower triangle (row-major, upper triangle ignored and
/// left as it was): `L[r][j] = (a[r][j] - L[r][..j] . L[j][..j]) / L[j][j]`, by panels of rows
/// (each row `j` above a panel is loaded once for all its rows). `Err(j)`: pivot `j` is not
/// positive (or not finite).
fn cholesky_lower(a: &mut [f64], n: usize) -> std::result::Result<(), usize> {
    for i0 in (0..n).step_by(PANEL) {
        let i1 = (i0 + PANEL).min(n);
        for j in 0..i1 {
            if j >= i0 {
                let row = &a[j * n..j * n + j];
                let d = a[j * n + j] - dot(row, row);
                if !(d > 0.0 && d.is_finite()) {
                    return Err(j);
                }
                a[j * n + j] = d.sqrt();
            }
            let pivot = a[j * n + j];
            let first = i0.max(j + 1);
            let (head, tail) = a.split_at_mut(first * n);
            let lj = &head[j * n..j * n + j];
            for r in 0..i1 - first {
                let d = dot(&tail[r * n..r * n + j], lj);
                let x = &mut tail[r * n + j];
                *x = (*x - d) / pivot;
            }
        }
    }
    Ok(())
}

/// A dot product with sixteen independent accumulators (vectorised without reassociation;
/// enough chains to hide the adds' latency).
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let len = x.len().min(y.len());
    let (x, y) = (&x[..len], &y[..len]);
    let mut acc = [0f64; 16];
    let xc = x.chunks_exact(16);
    let yc = y.chunks_exact(16);
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..16 {
            acc[l] += a[l] * b[l];
        }
    }
    // Summed lane-wise as the vector registers hold them (no shuffles in the loop), then across.
    let mut v = [0f64; 4];
    for l in 0..4 {
        v[l] = (acc[l] + acc[l + 8]) + (acc[l + 4] + acc[l + 12]);
    }
    let mut s = (v[0] + v[2]) + (v[1] + v[3]);
    for (a, b) in xr.iter().zip(yr) {
        s += a * b;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// U^T U == H^-1, i.e. (U^T U) H == I, on a small random SPD matrix.
    #[test]
    fn u_is_the_upper_cholesky_factor_of_the_inverse() {
        for n in [1usize, 3, 7, 70, 130] {
            let mut seed = 12345u64 + n as u64;
            let mut next = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            };
            let x: Vec<f64> = (0..n * (n + 5)).map(|_| next()).collect();
            let m = n + 5;
            let mut h = vec![0f64; n * n];
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] = (0..m).map(|s| x[s * n + i] * x[s * n + j]).sum::<f64>()
                        + if i == j { 0.1 } else { 0.0 };
                }
            }
            let mut a = h.clone();
            inverse_cholesky_upper(&mut a, n).unwrap();
            let uu = |i: usize, j: usize| if j >= i { a[i * n + j] } else { 0.0 };
            for i in 0..n {
                assert!(uu(i, i) > 0.0);
                for j in 0..n {
                    // ((U^T U) H)[i][j]
                    let mut s = 0.0;
                    for k in 0..n {
                        let hinv_ik: f64 = (0..n).map(|p| uu(p, i) * uu(p, k)).sum();
                        s += hinv_ik * h[k * n + j];
                    }
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((s - want).abs() < 1e-8, "n {n}: [{i}][{j}] = {s}");
                }
            }
        }
    }

    #[test]
    fn a_negative_pivot_is_an_error() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert!(inverse_cholesky_upper(&mut a, 2).is_err());
    }

    #[test]
    fn the_pairwise_sum_adds_in_numpys_order() {
        // 1e16 + 1 + ... : the order decides; eight accumulators keep the ones apart.
        let mut a = vec![1.0f64; 16];
        a[0] = 1e16;
        // r[0] = 1e16 + 1 (rounds to 1e16), r[1..8] = 2: ((1e16 + 2) + 4) + 8 = 1e16 + 14.
        assert_eq!(numpy_sum(&a), 1e16 + 14.0);
    }
}
