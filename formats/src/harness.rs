//! One entry per fuzz target (`fuzz/fuzz_targets/`): the same functions replay the saved corpus
//! as ordinary tests (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes and may return an
//! error; it must never panic, abort or allocate without bound.

use std::sync::OnceLock;

use crate::tokenize::TextTokenizer;

/// The fuzz targets by name, each with its entry.
pub const TARGETS: [(&str, fn(&[u8])); 6] = [
    ("pickle", pickle),
    ("safetensors", safetensors),
    ("manifest", manifest),
    ("config", config),
    ("list_line", list_line),
    ("tokenizer", tokenizer),
];

/// `read_pickle` on `data` written to a file (the reader takes a path).
#[cfg(feature = "pickle")]
pub fn pickle(data: &[u8]) {
    thread_local! {
        static FILE: tempfile::NamedTempFile = tempfile::NamedTempFile::new().expect("temp file");
    }
    FILE.with(|file| {
        std::fs::write(file.path(), data).expect("write the input");
        let _ = crate::pickle::read_pickle(file.path(), |k| Some(k.to_string()), |_, _| Ok(()));
    });
}

#[cfg(not(feature = "pickle"))]
pub fn pickle(_data: &[u8]) {}

/// The checkpoint reader and the bundle shard reader (quantized weights and their scales).
pub fn safetensors(data: &[u8]) {
    let _ = crate::safetensors_file::read_safetensors(
        data,
        "fuzz.safetensors",
        |k| Some(k.to_string()),
        |_, _| Ok(()),
    );
    let _ = crate::safetensors_file::read_bundle_shard(
        data,
        "fuzz.safetensors",
        Some(8),
        |_, _| Ok(()),
    );
}

pub fn manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::bundle::Manifest::parse(text);
    }
}

pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::config::BertConfig::from_json(text, "config.json");
    }
}

pub fn list_line(data: &[u8]) {
    let _ = crate::input::parse_list_line(data, 1);
}

/// The first byte chooses: even, the rest is a `tokenizer.json` to load (and, when it loads, to
/// encode a short text with); odd, the rest is text for the fixture tokenizer
/// (`tests/fixtures/models/en-3layer/vocab.txt`, truncating to 64 tokens).
pub fn tokenizer(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(mut tokenizer) = TextTokenizer::from_json(rest, "tokenizer.json") {
            let _ = tokenizer.set_max_length(16);
            let _ = tokenizer.encode_all(&["hello world", "皮蛋"]);
        }
    } else {
        static FIXTURE: OnceLock<TextTokenizer> = OnceLock::new();
        let tokenizer = FIXTURE.get_or_init(|| {
            let vocab = include_str!("../../tests/fixtures/models/en-3layer/vocab.txt");
            let config =
                include_str!("../../tests/fixtures/models/en-3layer/tokenizer_config.json");
            let mut tokenizer =
                TextTokenizer::from_vocab(vocab, Some(config), "vocab.txt").expect("fixture");
            tokenizer.set_max_length(64).expect("fixture");
            tokenizer
        });
        let text = String::from_utf8_lossy(rest);
        let _ = tokenizer.encode_all(&[&text, "query"]);
    }
}
