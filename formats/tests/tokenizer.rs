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

/// The minimal tokenizer with a `TemplateProcessing` post-processor of these parts.
fn with_template(single: &str, special_tokens: &str) -> String {
    let template = format!(
        r#"{{"type": "TemplateProcessing", "single": {single},
             "pair": [{{"Sequence": {{"id": "A", "type_id": 0}}}}, {{"Sequence": {{"id": "B", "type_id": 1}}}}],
             "special_tokens": {special_tokens}}}"#
    );
    minimal("null", "null").replace(
        r#""post_processor": null"#,
        &format!(r#""post_processor": {template}"#),
    )
}

#[test]
fn a_template_that_would_panic_while_encoding_is_refused() {
    const CLS_A: &str = r#"[{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]"#;
    const CLS: &str = r#"{"[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["a"]}}"#;
    // A well-formed template loads and encodes.
    let good =
        TextTokenizer::from_json(with_template(CLS_A, CLS).as_bytes(), "tokenizer.json").unwrap();
    assert_eq!(good.encode_all(&["a"]).unwrap(), [vec![1, 1]]);
    for (single, special, words) in [
        // The fuzzer's crash: `[CLS]` in the template, not in special_tokens.
        (CLS_A, "{}", "special token `[CLS]`"),
        (
            CLS_A,
            r#"{"[CLS]": {"id": "[CLS]", "ids": [1, 1], "tokens": ["a"]}}"#,
            "ids and tokens",
        ),
        (
            r#"[{"Sequence": {"id": "B", "type_id": 0}}]"#,
            CLS,
            "sequence B",
        ),
    ] {
        // The type as written, and misspelt (tokenizers reads post-processors untagged: the
        // fuzzer's second crash).
        for text in [
            with_template(single, special),
            with_template(single, special).replace("TemplateProcessing", "Template@rocessing"),
        ] {
            let err = TextTokenizer::from_json(text.as_bytes(), "tokenizer.json")
                .err()
                .expect("an error");
            assert_eq!(err.code(), "MODEL_INVALID", "{err}");
            assert!(err.to_string().contains(words), "`{words}` not in: {err}");
        }
    }
}
