//! Tokenization with the `tokenizers` crate, exactly as the reference calls its HF tokenizer:
//! every text alone as `[CLS] text [SEP]`, truncated to `max_length` tokens (special tokens
//! included), no padding here (the encoder batches pad).

use ahash::AHashMap;
use serde::Deserialize;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};

/// Bytes of a text handed to the tokenizer per token of `max_length`: it normalises a whole
/// text before truncating, so a 60 MB passage would take gigabytes to give 512 tokens. A token
/// comes from at most a 100-character word (longer words are one `[UNK]`) and the whitespace
/// before it, so 1024 bytes per token keeps every text whose first `max_length` tokens lie in
/// its first `max_length` KiB exactly as the reference tokenizes it.
pub const TEXT_BYTES_PER_TOKEN: usize = 1024;

pub struct TextTokenizer {
    inner: Tokenizer,
    file: String,
    /// Ids must stay below this (the embedding table's rows), once set by `limit_ids`.
    id_limit: Option<u32>,
}

/// The `tokenizer_config.json` fields that shape a BERT tokenizer built from `vocab.txt`.
#[derive(Deserialize)]
struct BertTokenizerConfig {
    #[serde(default = "yes")]
    do_lower_case: bool,
    #[serde(default)]
    strip_accents: Option<bool>,
    #[serde(default = "yes")]
    tokenize_chinese_chars: bool,
    #[serde(default = "unk")]
    unk_token: String,
    #[serde(default = "cls")]
    cls_token: String,
    #[serde(default = "sep")]
    sep_token: String,
}

fn yes() -> bool {
    true
}
fn unk() -> String {
    "[UNK]".into()
}
fn cls() -> String {
    "[CLS]".into()
}
fn sep() -> String {
    "[SEP]".into()
}

impl TextTokenizer {
    /// From a `tokenizer.json`. Its own padding and truncation settings are replaced by ours.
    ///
    /// The text is checked before `tokenizers` sees it, because its loader panics instead of
    /// failing on two kinds of input (both found by fuzzing): a syntax error inside the
    /// `decoder` (it buffers that part and `expect`s it to parse), and a `Precompiled`
    /// (SentencePiece) normalizer whose char map does not parse. So: the whole text must be
    /// JSON, and a `Precompiled` normalizer, which no BERT tokenizer has, is refused. Its
    /// encoder panics on a third (fuzzing again): a `TemplateProcessing` post-processor whose
    /// template names a special token it does not define, or puts the pair's second sequence in
    /// the single-text template; such templates are refused here (`broken_template`).
    pub fn from_json(bytes: &[u8], file: &str) -> Result<Self> {
        let fail = |reason: String| Error::Tokenizer {
            file: file.into(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| fail(format!("not JSON: {e}")))?;
        if has_precompiled_normalizer(&value) {
            return Err(fail(
                "a `Precompiled` (SentencePiece) normalizer is not supported".into(),
            ));
        }
        if let Some(reason) = broken_template(&value) {
            return Err(fail(format!("post-processor: {reason}")));
        }
        let inner = Tokenizer::from_bytes(bytes).map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            inner,
            file: file.into(),
            id_limit: None,
        })
    }

    /// A BERT WordPiece tokenizer from `vocab.txt` (one token per line, id = line number) and
    /// optionally `tokenizer_config.json`, as transformers' `BertTokenizerFast` builds it.
    pub fn from_vocab(vocab: &str, config_json: Option<&str>, file: &str) -> Result<Self> {
        let fail = |reason: String| Error::Tokenizer {
            file: file.into(),
            reason,
        };
        let config: BertTokenizerConfig = serde_json::from_str(config_json.unwrap_or("{}"))
            .map_err(|e| fail(format!("tokenizer_config.json: {e}")))?;
        let vocab: AHashMap<String, u32> = vocab
            .lines()
            .enumerate()
            .map(|(id, token)| (token.trim_end().to_string(), id as u32))
            .collect();
        let id_of = |token: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| fail(format!("special token {token} is not in the vocabulary")))
        };
        let cls_id = id_of(&config.cls_token)?;
        let sep_id = id_of(&config.sep_token)?;
        id_of(&config.unk_token)?;
        let model = WordPiece::builder()
            .vocab(vocab)
            .unk_token(config.unk_token.clone())
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut inner = Tokenizer::new(model);
        inner
            .with_normalizer(Some(BertNormalizer::new(
                true,
                config.tokenize_chinese_chars,
                config.strip_accents,
                config.do_lower_case,
            )))
            .map_err(|e| fail(e.to_string()))?;
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_post_processor(Some(BertProcessing::new(
            (config.sep_token, sep_id),
            (config.cls_token, cls_id),
        )));
        Ok(Self {
            inner,
            file: file.into(),
            id_limit: None,
        })
    }

    /// Sets the truncation length: at most `max_length` ids per text, special tokens included.
    pub fn set_max_length(&mut self, max_length: usize) -> Result<()> {
        if max_length < 2 {
            return Err(Error::input(format!(
                "max_length {max_length} leaves no room for [CLS] and [SEP] (minimum 2)"
            )));
        }
        let truncation = TruncationParams {
            direction: TruncationDirection::Right,
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        };
        self.inner.with_padding(None);
        if let Err(e) = self.inner.with_truncation(Some(truncation)) {
            return Err(self.error(e));
        }
        Ok(())
    }

    /// Ties the tokenizer to an embedding table of `rows` rows: every token it knows must
    /// have a smaller id (checked now, naming the first that does not), and every id it
    /// produces later is checked too (a post-processor can add ids of its own), so that no
    /// embedding is ever indexed out of range.
    pub fn limit_ids(&mut self, rows: usize) -> Result<()> {
        let limit = u32::try_from(rows).unwrap_or(u32::MAX);
        let vocab = self.inner.get_vocab(true);
        if let Some((token, id)) = vocab
            .iter()
            .filter(|(_, id)| **id >= limit)
            .min_by_key(|(_, id)| **id)
        {
            return Err(self.error(format!(
                "token `{token}` has id {id}, outside the model's embedding table (vocab_size {rows})"
            )));
        }
        self.id_limit = Some(limit);
        Ok(())
    }

    /// Token ids of each text, `[CLS] ... [SEP]`, truncated as set by `set_max_length`. A text
    /// that gives no token at all (a tokenizer without the `[CLS] ... [SEP]` post-processor)
    /// or an id past `limit_ids` is an error, not a sequence the model cannot take.
    pub fn encode_all(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let cap = self.text_byte_cap();
        let texts: Vec<&str> = texts.iter().map(|t| cut_at_char(t, cap)).collect();
        let encodings = self
            .inner
            .encode_batch(texts, true)
            .map_err(|e| self.error(e))?;
        let ids: Vec<Vec<u32>> = encodings.iter().map(|e| e.get_ids().to_vec()).collect();
        for (index, text_ids) in ids.iter().enumerate() {
            if text_ids.is_empty() {
                return Err(self.error(format!(
                    "text {index} gives no tokens (the tokenizer adds no [CLS] ... [SEP])"
                )));
            }
            if let Some(limit) = self.id_limit
                && let Some(id) = text_ids.iter().find(|&&id| id >= limit)
            {
                return Err(self.error(format!(
                    "text {index} gives token id {id}, outside the model's embedding table \
                     (vocab_size {limit})"
                )));
            }
        }
        Ok(ids)
    }

    /// The most bytes of a text the tokenizer sees: [`TEXT_BYTES_PER_TOKEN`] per token of the
    /// truncation length.
    fn text_byte_cap(&self) -> usize {
        let max_length = self.inner.get_truncation().map_or(512, |t| t.max_length);
        max_length.saturating_mul(TEXT_BYTES_PER_TOKEN)
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Tokenizer {
            file: self.file.clone(),
            reason: e.to_string(),
        }
    }
}

/// Whether any object in `value` is a `{"type": "Precompiled", ...}` normalizer.
fn has_precompiled_normalizer(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            map.get("type").and_then(|t| t.as_str()) == Some("Precompiled")
                || map.values().any(has_precompiled_normalizer)
        }
        serde_json::Value::Array(items) => items.iter().any(has_precompiled_normalizer),
        _ => false,
    }
}

/// Why a `TemplateProcessing` post-processor (any object with its `single`, `pair` or
/// `special_tokens` fields) anywhere in `value` would make `tokenizers` panic
/// while encoding (it indexes its special tokens and the encodings without checking): a
/// template piece naming a special token not in `special_tokens`, a special token whose `ids`
/// and `tokens` differ in length, or sequence `B` in the `single` template. Shapes that do not
/// deserialize are left to `tokenizers`, which reports them.
fn broken_template(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            // By its fields, not its `type`: `tokenizers` reads post-processors untagged, so
            // a misspelt type still makes a template.
            if ["single", "pair", "special_tokens"]
                .iter()
                .any(|field| map.contains_key(*field))
            {
                let special = map.get("special_tokens").and_then(Value::as_object);
                for (name, token) in special.into_iter().flatten() {
                    let len = |field| token.get(field).and_then(Value::as_array).map(Vec::len);
                    if len("ids") != len("tokens") {
                        return Some(format!(
                            "special token `{name}` has a different number of ids and tokens"
                        ));
                    }
                }
                for template in ["single", "pair"] {
                    let pieces = map.get(template).and_then(Value::as_array);
                    for piece in pieces.into_iter().flatten() {
                        if let Some(id) = piece
                            .get("SpecialToken")
                            .and_then(|t| t.get("id"))
                            .and_then(Value::as_str)
                            && !special.is_some_and(|s| s.contains_key(id))
                        {
                            return Some(format!(
                                "the {template} template uses special token `{id}`, which \
                                 special_tokens does not define"
                            ));
                        }
                        let sequence = piece.get("Sequence").and_then(|s| s.get("id"));
                        if template == "single" && sequence.and_then(Value::as_str) == Some("B") {
                            return Some("the single template uses sequence B".into());
                        }
                    }
                }
            }
            map.values().find_map(broken_template)
        }
        Value::Array(items) => items.iter().find_map(broken_template),
        _ => None,
    }
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character boundary.
fn cut_at_char(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl TextTokenizer {
    /// The tokenizer as `tokenizer.json` text (what a web bundle stores).
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(|e| self.error(e))
    }
}

/// Where a checkpoint's tokenizer is: `tokenizer.json`, or a WordPiece `vocab.txt` with an
/// optional `tokenizer_config.json`.
#[derive(Debug, Clone)]
pub enum TokenizerFiles {
    Json(std::path::PathBuf),
    Vocab {
        vocab: std::path::PathBuf,
        config: Option<std::path::PathBuf>,
    },
}

impl TextTokenizer {
    /// Reads `tokenizer.json`, or `vocab.txt` (+ `tokenizer_config.json`), from disk.
    pub fn from_files(files: &TokenizerFiles) -> Result<Self> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|e| Error::read_model(path.display(), e))
        };
        match files {
            TokenizerFiles::Json(path) => {
                Self::from_json(read(path)?.as_bytes(), &path.display().to_string())
            }
            TokenizerFiles::Vocab { vocab, config } => {
                let config_text = config.as_deref().map(read).transpose()?;
                Self::from_vocab(
                    &read(vocab)?,
                    config_text.as_deref(),
                    &vocab.display().to_string(),
                )
            }
        }
    }
}
