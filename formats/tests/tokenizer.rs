//! `tokenizer.json` inputs on which the `tokenizers` loader panics instead of failing (found by
//! the `tokenizer` fuzz target): each must be an error.

use listconranker_formats::tokenize::TextTokenizer;

fn minimal(decoder: &str, normalizer: &str) -> String {
    format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": {normalizer}, "pre_tokenizer": null, "post_processor": null,
            "decoder": {decoder},
            "model": {{"type": "WordPiece", "unk_token": "[UNK]",
                       "continuing_subword_prefix": "\u0023\u0023", "max_input_chars_per_word": 100,
                       "vocab": {{"[UNK]": 0, "a": 1}}}}}}"#
    )
}

#[test]
fn the_minimal_tokenizer_loads() {
    TextTokenizer::from_json(minimal("null", "null").as_bytes(), "tokenizer.json").unwrap();
}

#[test]
fn a_syntax_error_inside_the_decoder_is_an_error() {
    // A raw control character in a string of the decoder (the fuzzer's crash).
    let text = minimal("{\"type\": \"WordPiece\", \"prefix\": \"\u{1}\"}", "null");
    let err = TextTokenizer::from_json(text.as_bytes(), "tokenizer.json")
        .err()
        .expect("an error");
    assert!(err.to_string().contains("not JSON"), "{err}");
}

#[test]
fn a_precompiled_normalizer_is_refused() {
    for normalizer in [
        r#"{"type": "Precompiled", "precompiled_charsmap": "not base64!"}"#,
        r#"{"type": "Sequence", "normalizers": [{"type": "Precompiled", "precompiled_charsmap": ""}]}"#,
    ] {
        let text = minimal("null", normalizer);
        let err = TextTokenizer::from_json(text.as_bytes(), "tokenizer.json")
            .err()
            .expect("an error");
        assert!(err.to_string().contains("Precompiled"), "{err}");
    }
}
