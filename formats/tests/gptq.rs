//! GPTQ (`gptq::gptq_quantize`) against round to nearest, against the NumPy reference
//! (`tests/reference/gptq_ref.py`, through `tests/reference/gptq_vectors.py`: needs the
//! reference venv, `LCR_VENV` or tests/reference/setup.sh's default place; skipped with a note
//! when it is missing, unless `LCR_REQUIRE_VENV` is set), and on bad input.

use std::path::PathBuf;
use std::process::Command;

use half::f16;
use listconranker_formats::gptq::{GptqOptions, gptq_quantize};
use listconranker_formats::quantize::{Quantized, Scheme, quantize};

/// A seeded generator: splitmix64, normals by Box-Muller.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (a, b) = (self.uniform(), self.uniform());
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    }
}

/// Weights as the reference's self-test makes them: normal, each row with its own spread.
fn weights(rng: &mut Rng, rows: usize, cols: usize) -> Vec<f32> {
    let mut w = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let spread = 0.01 + 0.19 * rng.uniform();
        w.extend((0..cols).map(|_| (rng.normal() * spread) as f32));
    }
    w
}

/// `X^T X` of `samples` correlated inputs (`X = Z (I + 2 M)`, `M` normal / sqrt(cols)), the
/// inputs in `dead` always 0.
fn correlated_hessian(rng: &mut Rng, cols: usize, samples: usize, dead: &[usize]) -> Vec<f64> {
    let scale = 1.0 / (cols as f64).sqrt();
    let mut mix: Vec<f64> = (0..cols * cols)
        .map(|_| 2.0 * rng.normal() * scale)
        .collect();
    for i in 0..cols {
        mix[i * cols + i] += 1.0;
    }
    let mut h = vec![0f64; cols * cols];
    let mut x = vec![0f64; cols];
    for _ in 0..samples {
        x.fill(0.0);
        for k in 0..cols {
            let z = rng.normal();
            for (xi, m) in x.iter_mut().zip(&mix[k * cols..(k + 1) * cols]) {
                *xi += z * m;
            }
        }
        for &d in dead {
            x[d] = 0.0;
        }
        for i in 0..cols {
            let xi = x[i];
            for (hij, xj) in h[i * cols..(i + 1) * cols].iter_mut().zip(&x) {
                *hij += xi * xj;
            }
        }
    }
    h
}

/// The levels of a quantized weight, one per value.
fn levels(scheme: Scheme, q: &Quantized) -> Vec<i8> {
    match scheme {
        Scheme::Q8Blocks { .. } => q.values.iter().map(|&b| b as i8).collect(),
        Scheme::Q4Blocks { .. } => q
            .values
            .iter()
            .flat_map(|&b| [(b & 0x0f) as i8 - 8, (b >> 4) as i8 - 8])
            .collect(),
    }
}

fn dequantize(scheme: Scheme, q: &Quantized, cols: usize) -> Vec<f64> {
    let blocks = q.scales_shape[1];
    let block = cols / blocks;
    levels(scheme, q)
        .iter()
        .enumerate()
        .map(|(i, &l)| l as f64 * q.scales[(i / cols) * blocks + (i % cols) / block].to_f64())
        .collect()
}

/// `tr(D H D^T)`, `D` = `a - b` (`[rows, cols]`).
fn output_error(a: &[f64], b: &[f64], h: &[f64], cols: usize) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mut total = 0.0;
    for row in d.chunks_exact(cols) {
        for i in 0..cols {
            let hd: f64 = h[i * cols..(i + 1) * cols]
                .iter()
                .zip(row)
                .map(|(x, y)| x * y)
                .sum();
            total += row[i] * hd;
        }
    }
    total
}

#[test]
fn a_diagonal_hessian_gives_round_to_nearest_bit_for_bit() {
    let mut rng = Rng(7);
    for (scheme, block, rows, cols) in [
        (Scheme::Q4Blocks { block: 32 }, 32, 48, 256),
        (Scheme::Q8Blocks { block: 32 }, 32, 40, 96),
        (Scheme::Q8Blocks { block: 3 }, 3, 5, 12),
    ] {
        let mut w = weights(&mut rng, rows, cols);
        w[3 * cols..3 * cols + block].fill(0.0); // an all-zero block: scale 0, values 0
        w[cols + 1] = -0.0;
        let mut h = vec![0f64; cols * cols];
        for i in 0..cols {
            h[i * cols + i] = 0.5 + 1.5 * rng.uniform();
        }
        h[2 * cols + 2] = 0.0; // a dead input: kept, H[2][2] = 1
        let got =
            gptq_quantize(scheme, "w", &[rows, cols], &w, &h, &GptqOptions::default()).unwrap();
        let want = quantize(scheme, "w", &[rows, cols], &w).unwrap();
        assert_eq!(got.values_shape, want.values_shape);
        assert_eq!(got.scales_shape, want.scales_shape);
        assert_eq!(got.values, want.values, "{scheme:?}");
        let bits = |s: &[f16]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got.scales), bits(&want.scales), "{scheme:?}");
        assert_eq!(got.scales[3 * (cols / block)], f16::ZERO);
    }
}

#[test]
fn gptq_beats_round_to_nearest_on_correlated_inputs() {
    let mut rng = Rng(11);
    let (rows, cols) = (64, 256);
    let h = correlated_hessian(&mut rng, cols, 4096, &[7]);
    let w: Vec<f32> = (0..rows * cols)
        .map(|_| (rng.normal() * 0.05) as f32)
        .collect();
    let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
    let reference = output_error(&w64, &vec![0.0; w64.len()], &h, cols);
    for (scheme, search) in [
        (Scheme::Q4Blocks { block: 32 }, 0),
        (Scheme::Q4Blocks { block: 32 }, 11),
        (Scheme::Q8Blocks { block: 32 }, 0),
    ] {
        let options = GptqOptions {
            scale_search: search,
            ..GptqOptions::default()
        };
        let g = gptq_quantize(scheme, "w", &[rows, cols], &w, &h, &options).unwrap();
        let qmax = match scheme {
            Scheme::Q4Blocks { .. } => 7,
            Scheme::Q8Blocks { .. } => 127,
        };
        assert!(levels(scheme, &g).iter().all(|l| l.abs() <= qmax));
        let r = quantize(scheme, "w", &[rows, cols], &w).unwrap();
        let gptq = output_error(&w64, &dequantize(scheme, &g, cols), &h, cols) / reference;
        let rtn = output_error(&w64, &dequantize(scheme, &r, cols), &h, cols) / reference;
        eprintln!(
            "{scheme:?}, scale search {search}: relative output error GPTQ {gptq:.3e}, round to nearest {rtn:.3e}"
        );
        assert!(
            gptq < 0.7 * rtn,
            "{scheme:?}: GPTQ {gptq} vs round to nearest {rtn}"
        );
    }
}

#[test]
fn bad_input_is_an_error_naming_the_tensor() {
    let scheme = Scheme::Q4Blocks { block: 32 };
    let (rows, cols) = (2, 64);
    let w = vec![0.1f32; rows * cols];
    let mut h = vec![0f64; cols * cols];
    for i in 0..cols {
        h[i * cols + i] = 1.0;
    }
    let options = GptqOptions::default();
    let name = "bert.encoder.layer.0.output.dense.weight";
    let check = |result: listconranker_formats::Result<Quantized>, what: &str| {
        let e = result.expect_err(what);
        assert_eq!(e.code(), "MODEL_INVALID", "{what}: {e}");
        assert!(e.to_string().contains(name), "{what}: {e}");
        e.to_string()
    };
    gptq_quantize(scheme, name, &[rows, cols], &w, &h, &options).unwrap();
    check(
        gptq_quantize(scheme, name, &[rows, cols], &w[1..], &h, &options),
        "short weight",
    );
    check(
        gptq_quantize(scheme, name, &[rows, cols], &w, &h[1..], &options),
        "short Hessian",
    );
    check(
        gptq_quantize(scheme, name, &[rows * cols], &w, &h, &options),
        "one dimension",
    );
    check(
        gptq_quantize(scheme, name, &[usize::MAX, 64], &w, &h, &options),
        "an overflowing shape",
    );
    // 48 inputs: not a multiple of the block of 32.
    let e = check(
        gptq_quantize(scheme, name, &[1, 48], &w[..48], &h[..48 * 48], &options),
        "cols not a multiple of the block",
    );
    assert!(e.contains("cannot be quantized"), "{e}");
    let mut nan = w.clone();
    nan[5] = f32::NAN;
    check(
        gptq_quantize(scheme, name, &[rows, cols], &nan, &h, &options),
        "NaN weight",
    );
    nan[5] = f32::INFINITY;
    check(
        gptq_quantize(scheme, name, &[rows, cols], &nan, &h, &options),
        "infinite weight",
    );
    let mut bad_h = h.clone();
    bad_h[3 * cols + 9] = f64::NAN;
    check(
        gptq_quantize(scheme, name, &[rows, cols], &w, &bad_h, &options),
        "NaN Hessian",
    );
    // Indefinite: -1 on the diagonal (dampening adds only 1 % of the mean).
    let mut indefinite = h.clone();
    indefinite[10 * cols + 10] = -1.0;
    let e = check(
        gptq_quantize(scheme, name, &[rows, cols], &w, &indefinite, &options),
        "indefinite Hessian",
    );
    assert!(e.contains("not positive definite"), "{e}");
    // Indefinite off the diagonal: [[1, 2], [2, 1]] in inputs 0 and 1.
    let mut indefinite = h.clone();
    indefinite[1] = 2.0;
    indefinite[cols] = 2.0;
    let e = check(
        gptq_quantize(scheme, name, &[rows, cols], &w, &indefinite, &options),
        "indefinite Hessian",
    );
    assert!(e.contains("not positive definite"), "{e}");
    // All inputs dead: H = I + damp I, fine.
    gptq_quantize(
        scheme,
        name,
        &[rows, cols],
        &w,
        &vec![0.0; cols * cols],
        &options,
    )
    .unwrap();
    for bad in [
        GptqOptions {
            damp: f64::NAN,
            ..options
        },
        GptqOptions {
            damp: -0.5,
            ..options
        },
        GptqOptions {
            scale_search: 35,
            ..options
        },
    ] {
        check(
            gptq_quantize(scheme, name, &[rows, cols], &w, &h, &bad),
            "bad options",
        );
    }
    // A scale past f16's range.
    let mut huge = w.clone();
    huge[0] = 1e9;
    let e = check(
        gptq_quantize(scheme, name, &[rows, cols], &huge, &h, &options),
        "huge weight",
    );
    assert!(e.contains("do not fit"), "{e}");
}

/// The venv's python, or `None` after printing why (failing when `LCR_REQUIRE_VENV` is set).
fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("LCR_VENV").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/listconranker-venv"))
    });
    let reason = match &venv {
        None => "LCR_VENV and HOME are not set".to_string(),
        Some(dir) if !dir.join(".listconranker-requirements.sha256").is_file() => format!(
            "no complete reference venv at {} (run `bash tests/reference/setup.sh` or set LCR_VENV)",
            dir.display()
        ),
        Some(dir) => return Some(dir.join("bin/python")),
    };
    assert!(
        std::env::var_os("LCR_REQUIRE_VENV").is_none(),
        "LCR_REQUIRE_VENV is set, but {reason}"
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {reason} (set LCR_REQUIRE_VENV=1 to make this a failure)"
    );
    None
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn agrees_with_the_numpy_reference() {
    let Some(python) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gptq_vectors.safetensors");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/reference/gptq_vectors.py"
    );
    let status = Command::new(&python)
        .arg(script)
        .arg(&path)
        .status()
        .expect("run python");
    assert!(status.success(), "gptq_vectors.py failed");
    let bytes = std::fs::read(&path).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let cases: serde_json::Value =
        serde_json::from_str(&metadata.metadata().as_ref().unwrap()["cases"]).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut compared = 0;
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let bits = case["bits"].as_u64().unwrap();
        let options = GptqOptions {
            damp: case["damp"].as_f64().unwrap(),
            scale_search: case["scale_search"].as_u64().unwrap() as usize,
        };
        let tensor = |part: &str| tensors.tensor(&format!("{name}.{part}")).unwrap();
        let weight = tensor("weight");
        let shape = weight.shape().to_vec();
        let (rows, cols) = (shape[0], shape[1]);
        let w: Vec<f32> = weight
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let h = f64s(tensor("hessian").data());
        for i in 0..cols {
            for j in 0..i {
                assert_eq!(
                    h[i * cols + j],
                    h[j * cols + i],
                    "{name}: the Hessian is symmetric"
                );
            }
        }
        let want_levels: Vec<i8> = tensor("values").data().iter().map(|&b| b as i8).collect();
        let want_scales: Vec<u16> = tensor("scales")
            .data()
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let scheme = match bits {
            4 => Scheme::Q4Blocks { block: 32 },
            _ => Scheme::Q8Blocks { block: 32 },
        };
        let got = gptq_quantize(scheme, name, &shape, &w, &h, &options).unwrap();
        let got_levels = levels(scheme, &got);
        let got_scales: Vec<u16> = got.scales.iter().map(|s| s.to_bits()).collect();
        let differ = got_levels
            .iter()
            .zip(&want_levels)
            .filter(|(a, b)| a != b)
            .count();
        let differ_scales = got_scales
            .iter()
            .zip(&want_scales)
            .filter(|(a, b)| a != b)
            .count();
        eprintln!(
            "{name} ({rows} x {cols}, {options:?}): {differ} of {} levels and {differ_scales} of {} scales differ",
            got_levels.len(),
            got_scales.len()
        );
        assert_eq!(got_levels, want_levels, "{name}: levels");
        assert_eq!(got_scales, want_scales, "{name}: scales");
        compared += 1;
    }
    assert_eq!(compared, 5);
}

/// BERT-large's largest Linear (FFN out: 1024 outputs, 4096 inputs): the time GPTQ takes on one
/// thread. `cargo test --release -p listconranker-formats --test gptq -- --ignored --nocapture`.
#[test]
#[ignore]
fn bert_large_ffn_out_timing() {
    let (rows, cols) = (1024, 4096);
    let mut rng = Rng(3);
    // A dense SPD Hessian, cheap to make: a diagonal plus 32 random rank-one terms (a banded
    // one would give a factor with exponentially small entries, subnormals, slow on x86).
    let factors: Vec<Vec<f64>> = (0..32)
        .map(|_| (0..cols).map(|_| rng.normal()).collect())
        .collect();
    let mut h = vec![0f64; cols * cols];
    for v in &factors {
        for i in 0..cols {
            for (hij, vj) in h[i * cols..(i + 1) * cols].iter_mut().zip(v) {
                *hij += v[i] * vj;
            }
        }
    }
    for i in 0..cols {
        h[i * cols + i] += 1.0 + rng.uniform();
    }
    let w: Vec<f32> = (0..rows * cols)
        .map(|_| (rng.normal() * 0.05) as f32)
        .collect();
    let start = std::time::Instant::now();
    let q = gptq_quantize(
        Scheme::Q4Blocks { block: 32 },
        "w",
        &[rows, cols],
        &w,
        &h,
        &GptqOptions::default(),
    )
    .unwrap();
    let q4 = start.elapsed();
    let start = std::time::Instant::now();
    let options = GptqOptions {
        scale_search: 11,
        ..GptqOptions::default()
    };
    gptq_quantize(
        Scheme::Q4Blocks { block: 32 },
        "w",
        &[rows, cols],
        &w,
        &h,
        &options,
    )
    .unwrap();
    let searched = start.elapsed();
    eprintln!(
        "GPTQ q4 of [{rows}, {cols}]: {:.2} s; with the scale search (11): {:.2} s",
        q4.as_secs_f64(),
        searched.as_secs_f64()
    );
    assert_eq!(q.values.len(), rows * cols / 2);
}
