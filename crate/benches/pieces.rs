//! Criterion benches of the pieces, on the CPU backend in f32: tokenization, compute_score on one
//! 20-passage list (the encoder dominates), iterative inference over 100 passages (one encoder
//! pass, then the list transformer and heads per round), and compute_score on the same 100
//! passages at once (one round: the difference is what the later rounds cost).
//!
//!     cargo bench -p listconranker --bench pieces [-- filter]
//!
//! The fixture models by default; `LCR_BENCH_MODEL=DIR` benches another checkpoint or bundle
//! (e.g. `tests/reference/make_synthetic.py --preset small`). Workloads are seeded: queries of
//! 10-30 characters, passages of 60-250, as in `listconranker bench`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use listconranker::{LoadOptions, Reranker};

/// SplitMix64: a seeded, dependency-free source of text.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn text(&mut self, min: usize, max: usize) -> String {
        const CHARS: &str = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月";
        let chars: Vec<char> = CHARS.chars().collect();
        let len = min + (self.next() as usize) % (max - min + 1);
        (0..len)
            .map(|_| chars[(self.next() as usize) % chars.len()])
            .collect()
    }

    fn list(&mut self, passages: usize) -> Vec<String> {
        let mut list = vec![self.text(10, 30)];
        list.extend((0..passages).map(|_| self.text(60, 250)));
        list
    }
}

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
        let mut seeded = Seeded(42);
        let list20 = seeded.list(20);
        let list100 = seeded.list(100);

        let mut group = c.benchmark_group(name.as_str());
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("tokenize", "21 texts"), |b| {
            b.iter(|| ranker.token_ids(black_box(&list20)).unwrap())
        });
        group.bench_function(BenchmarkId::new("compute_score", "1 x 20"), |b| {
            b.iter(|| ranker.compute_score(black_box(&[list20.clone()])).unwrap())
        });
        group.bench_function(BenchmarkId::new("iterative_inference", "100"), |b| {
            b.iter(|| ranker.iterative_inference(black_box(&list100)).unwrap())
        });
        // The same 100 passages scored at once (one encoder pass, one list-transformer pass):
        // iterative inference minus this is the cost of its later rounds.
        group.bench_function(BenchmarkId::new("compute_score", "1 x 100"), |b| {
            b.iter(|| ranker.compute_score(black_box(&[list100.clone()])).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, pieces);
criterion_main!(benches);
