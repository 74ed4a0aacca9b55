//! The fuzz targets' saved corpora (`fuzz/corpus/<target>/`: the seeds from `fuzz/seeds.py` and
//! the inputs of crashes found and fixed) replayed through the targets' own entries
//! (`listconranker_formats::harness`): errors are fine, a panic fails.

use std::path::Path;

use listconranker_formats::harness::TARGETS;

#[test]
fn every_saved_input_runs_without_a_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, run) in TARGETS {
        if target == "pickle" && !cfg!(feature = "pickle") {
            continue;
        }
        let dir = corpus.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no inputs", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target}: {} panicked", file.display());
        }
    }
}
