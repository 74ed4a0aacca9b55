//! PyTorch pickles that declare more than they hold. Needs the reference venv's torch to write
//! them (`LCR_VENV`, else tests/reference/setup.sh's default place); skipped with a note when it
//! is missing, unless `LCR_REQUIRE_VENV` is set.
#![cfg(feature = "pickle")]

use std::path::{Path, PathBuf};
use std::process::Command;

use listconranker_formats::pickle::read_pickle;

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

fn torch_save(python: &Path, expression: &str, out: &Path) {
    let status = Command::new(python)
        .arg("-c")
        .arg(format!(
            "import sys, torch; torch.save({expression}, sys.argv[1])"
        ))
        .arg(out)
        .status()
        .expect("run python");
    assert!(status.success(), "torch.save failed");
}

#[test]
fn a_zero_stride_view_of_billions_of_elements_is_refused_before_reading() {
    let Some(python) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("expanded.pt");
    // One stored float viewed as 2e9 (stride 0): 8 GB if gathered.
    torch_save(
        &python,
        "{'w': torch.zeros(1).expand(2_000_000_000)}",
        &path,
    );
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len < 16 * 1024, "the file should be small, is {len} bytes");

    let mut taken = 0;
    let err = read_pickle(
        &path,
        |k| Some(k.to_string()),
        |_, _| {
            taken += 1;
            Ok(())
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), "MODEL_INVALID", "{err}");
    let message = err.to_string();
    assert!(message.contains("`w`"), "names the tensor: {message}");
    assert!(message.contains("declares more bytes"), "{message}");
    assert_eq!(taken, 0);
}

#[test]
fn a_small_view_of_a_small_storage_still_reads() {
    let Some(python) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.pt");
    // A zero-stride view that fits the file: read (gathered) as before.
    torch_save(
        &python,
        "{'w': torch.arange(3, dtype=torch.float32), 'e': torch.ones(1).expand(4)}",
        &path,
    );
    let mut got = Vec::new();
    read_pickle(
        &path,
        |k| Some(k.to_string()),
        |k, t| {
            got.push((k, t.shape, t.data));
            Ok(())
        },
    )
    .unwrap();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("e".to_string(), vec![4], vec![1.0; 4]),
            ("w".to_string(), vec![3], vec![0.0, 1.0, 2.0]),
        ]
    );
}
