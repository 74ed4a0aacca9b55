//! Criterion benches of the pieces, on the CPU backend in f32: tokenization, compute_score on one
//! 20-passage list (the encoder dominates), iterative inference over 100 passages (one encoder
//! pass, then the list transformer and heads per round), and compute_score on the same 100
//! passages at once (one round: the difference is what the later rounds cost).
//!
//!     cargo bench -p listconranker --bench pieces [-- filter]
//!
//! The fixture models by default; `LCR_BENCH_MODEL=DIR` benches another checkpoint or bundle
//! (e.g. `tests/reference/make_synthetic.py --preset small`). The lists are `listconranker
//! bench`'s seeded workload: queries of 10-30 tokens, passages of 60-250.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use listconranker::workload::workload;
use listconranker::{LoadOptions, Reranker};

fn models() -> Vec<(String, PathBuf)> {
    if let Some(dir) = std::env::var_os("LCR_BENCH_MODEL") {
        let dir = PathBuf::from(dir);
        let name = dir
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy().into_owned());
        return vec![(name, dir)];
    }
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    ["zh-tiny", "en-3layer"]
        .into_iter()
        .map(|m| (m.to_string(), fixtures.join(m)))
        .collect()
}

fn pieces(c: &mut Criterion) {
    for (name, dir) in models() {
        let ranker = Reranker::load(&dir, LoadOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let batch20 = workload(1, 20, 42);
        let batch100 = workload(1, 100, 43);

        let mut group = c.benchmark_group(name.as_str());
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("tokenize", "21 texts"), |b| {
            b.iter(|| ranker.token_ids(black_box(&batch20[0])).unwrap())
        });
        group.bench_function(BenchmarkId::new("compute_score", "1 x 20"), |b| {
            b.iter(|| ranker.compute_score(black_box(&batch20)).unwrap())
        });
        group.bench_function(BenchmarkId::new("iterative_inference", "100"), |b| {
            b.iter(|| ranker.iterative_inference(black_box(&batch100[0])).unwrap())
        });
        // The same 100 passages scored at once (one encoder pass, one list-transformer pass):
        // iterative inference minus this is the cost of its later rounds.
        group.bench_function(BenchmarkId::new("compute_score", "1 x 100"), |b| {
            b.iter(|| ranker.compute_score(black_box(&batch100)).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, pieces);
criterion_main!(benches);
