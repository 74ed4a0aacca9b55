//! Shared helpers of the integration tests: fixture paths, expected values, device choice.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use listconranker::{Backend, LoadOptions, Precision, Reranker};
use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

pub fn model_dir(name: &str) -> PathBuf {
    fixtures().join("models").join(name)
}

/// The fixture models, each with its expected values from the PyTorch reference.
pub const MODELS: [&str; 2] = ["zh-tiny", "en-3layer"];

#[derive(Deserialize)]
pub struct Expected {
    pub compute_score: Vec<ScoreCase>,
    pub iterative: Vec<IterativeCase>,
    pub debug: Debug,
}

#[derive(Deserialize)]
pub struct ScoreCase {
    pub name: String,
    pub max_length: usize,
    pub batch: Vec<Vec<String>>,
    pub scores: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
pub struct IterativeCase {
    pub name: String,
    pub max_length: usize,
    pub list: Vec<String>,
    pub scores: Vec<f64>,
}

#[derive(Deserialize)]
pub struct Debug {
    pub texts: Vec<String>,
    pub max_length: usize,
    pub input_ids: Vec<Vec<u32>>,
}

pub fn expected(model: &str) -> Expected {
    let path = fixtures().join("expected").join(format!("{model}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (regenerate the fixtures)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Set (tests/run.sh sets it in CI): every backend and precision the tests try must load, so a
/// DEVICE_UNAVAILABLE error fails the test instead of skipping it (wgpu f32 and f16 without an
/// adapter, and f16 on a CPU backend that lacks it).
pub const REQUIRE_DEVICES: &str = "LCR_REQUIRE_DEVICES";

/// Set (tests/run.sh sets it in CI): the reference venv (`LCR_VENV`, made by
/// tests/reference/setup.sh) must be there, so the tests that need it fail instead of skipping.
pub const REQUIRE_VENV: &str = "LCR_REQUIRE_VENV";

/// A test that cannot run here: prints `skipped: <reason>` on stderr (the test then returns
/// and passes), or fails with the reason when `require` (an environment variable) is set.
/// Written to the process's stderr directly, not through `eprintln!`, so that the test
/// harness does not capture it: the skip shows in a plain `cargo test` run.
pub fn skip_unless_required(require: &str, reason: &str) {
    use std::io::Write;
    assert!(
        std::env::var_os(require).is_none(),
        "{require} is set, but {reason}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {reason} (set {require}=1 to make this a failure)"
    );
}

/// Loads a fixture model; `None` when the device is unavailable and not required (wgpu without
/// an adapter, or a precision the device lacks, outside CI): the caller returns, and the reason
/// has been printed as `skipped: ...`.
pub fn load(model: &str, backend: Backend, precision: Precision) -> Option<Reranker> {
    load_path(&model_dir(model), backend, precision)
}

/// [`load`] for a model at any path.
pub fn load_path(dir: &Path, backend: Backend, precision: Precision) -> Option<Reranker> {
    let options = LoadOptions {
        backend,
        precision,
        ..LoadOptions::default()
    };
    let model = dir.display();
    match Reranker::load(dir, options) {
        Ok(ranker) => Some(ranker),
        Err(e) if e.code() == "DEVICE_UNAVAILABLE" => {
            skip_unless_required(
                REQUIRE_DEVICES,
                &format!("{model} on {backend} {precision}: {e}"),
            );
            None
        }
        Err(e) => panic!("loading {model} on {backend} {precision}: {e}"),
    }
}

/// The reference's venv: `LCR_VENV`, else where tests/reference/setup.sh puts it by default;
/// `None` (after printing why, or failing when `LCR_REQUIRE_VENV` is set) when it does not
/// exist or lacks the reference's packages (its install stamp).
pub fn reference_venv() -> Option<PathBuf> {
    let venv = std::env::var_os("LCR_VENV").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/listconranker-venv"))
    });
    let reason = match &venv {
        None => "LCR_VENV and HOME are not set".to_string(),
        Some(dir) if !dir.join(".listconranker-requirements.sha256").is_file() => format!(
            "no complete reference venv at {} (run `bash tests/reference/setup.sh` or set LCR_VENV)",
            dir.display()
        ),
        Some(_) => return venv,
    };
    skip_unless_required(REQUIRE_VENV, &reason);
    None
}

/// Largest |got - expected| over all values, with the place where it occurs.
pub fn max_abs_diff(got: &[f32], expected: &[f64]) -> (f64, usize) {
    assert_eq!(got.len(), expected.len(), "number of scores");
    got.iter()
        .zip(expected)
        .enumerate()
        .map(|(i, (&g, &e))| ((f64::from(g) - e).abs(), i))
        .fold(
            (0.0, 0),
            |best, cur| if cur.0 > best.0 { cur } else { best },
        )
}

/// Every pair that the reference orders with a margin above `margin` is ordered the same way.
pub fn assert_same_ranking(got: &[f32], expected: &[f64], margin: f64, what: &str) {
    for i in 0..expected.len() {
        for j in 0..expected.len() {
            if expected[i] - expected[j] > margin {
                assert!(
                    got[i] > got[j],
                    "{what}: passage {i} (expected {}, got {}) should rank above passage {j} (expected {}, got {})",
                    expected[i],
                    got[i],
                    expected[j],
                    got[j]
                );
            }
        }
    }
}

/// A safetensors shard as written: bytes of tensor data (the file less its 8-byte length
/// prefix and JSON header) and the number of tensors. Reads the header only, and checks that
/// the file is exactly prefix + header + the tensors' data.
pub fn shard_data(path: &Path) -> (u64, usize) {
    use std::io::Read;
    let what = path.display();
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let header_len = u64::from_le_bytes(prefix);
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).unwrap_or_else(|e| panic!("{what}: header: {e}"));
    let mut data = 0u64;
    let mut tensors = 0usize;
    for (name, entry) in &header {
        if name == "__metadata__" {
            continue;
        }
        tensors += 1;
        let end = entry["data_offsets"][1]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: {name} has no data_offsets"));
        data = data.max(end);
    }
    let size = file.metadata().unwrap().len();
    assert_eq!(size, 8 + header_len + data, "{what}: size");
    (data, tensors)
}

/// Every shard's tensor data is within `limit` bytes, except a shard of one tensor that is
/// alone larger than `limit` (a tensor is never split). Returns the shard's data bytes.
pub fn assert_shard_within(path: &Path, limit: u64) -> u64 {
    let (data, tensors) = shard_data(path);
    assert!(
        data <= limit || tensors == 1,
        "{}: {data} bytes of tensor data in {tensors} tensors, over the limit of {limit} \
         (only a single tensor larger than the limit may exceed it)",
        path.display()
    );
    data
}

/// Runs the `listconranker` binary with `args`, feeding it `stdin`.
pub fn run_cli(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_listconranker"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may exit (bad arguments) before reading its input: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// Bytes of a bundle's weight shards (every listed file that holds tensors).
pub fn weight_bytes(manifest: &listconranker::weights::bundle::Manifest) -> u64 {
    manifest
        .files
        .iter()
        .filter(|f| !f.tensors.is_empty())
        .map(|f| f.bytes)
        .sum()
}

/// The error of loading `dir` with the default options (a panic if it loads).
pub fn load_error(dir: &Path) -> listconranker::Error {
    match Reranker::load(dir, LoadOptions::default()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e,
    }
}
