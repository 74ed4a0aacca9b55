//! C-MTEB reranking samples from JSON Lines: one `{"query": ..., "positive": [...],
//! "negative": [...]}` object per line (other keys are ignored, blank lines skipped).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::sample::Sample;
use crate::error::{Error, Result};

/// The samples of `path`, read lazily; each error names the file and its 1-based line.
pub fn read_samples(path: &Path) -> Result<impl Iterator<Item = Result<Sample>> + use<>> {
    let file =
        File::open(path).map_err(|e| Error::data(path, None, format!("cannot open: {e}")))?;
    let path = path.to_path_buf();
    let lines = BufReader::new(file).split(b'\n').enumerate();
    Ok(lines.filter_map(move |(index, line)| {
        let number = index + 1;
        let fail = |reason: String| Error::data(&path, Some(number), reason);
        let line = match line {
            Ok(line) => line,
            Err(e) => return Some(Err(fail(format!("cannot read: {e}")))),
        };
        // A byte-order mark is invisible in editors, so accept one at the start of the file.
        let line = if index == 0 {
            line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&line)
        } else {
            &line
        };
        let line = line.trim_ascii();
        if line.is_empty() {
            return None;
        }
        Some(match serde_json::from_slice::<Value>(line) {
            Err(e) => Err(fail(format!("invalid JSON ({e})"))),
            Ok(value) => sample_of(&value, &fail),
        })
    }))
}

/// The sample of one parsed JSON object. A value that is not one is an `INPUT_INVALID` error
/// saying what is wrong (the reader of a file reports the same words as `DATA_INVALID`, with
/// the file and the line).
pub fn sample_from_json(value: &Value) -> Result<Sample> {
    sample_of(value, &|reason| Error::input(reason))
}

/// The sample of `value`; `fail` turns the reason it is not one into the error.
fn sample_of(value: &Value, fail: &dyn Fn(String) -> Error) -> Result<Sample> {
    let Value::Object(object) = value else {
        return Err(fail(format!(
            "expected an object {{\"query\": ..., \"positive\": [...], \"negative\": [...]}}, found {}",
            kind(value)
        )));
    };
    let field = |name: &str| {
        object
            .get(name)
            .ok_or_else(|| fail(format!("missing field `{name}`")))
    };
    let query = match field("query")? {
        Value::String(s) => s.clone(),
        other => {
            return Err(fail(format!(
                "`query` must be a string, found {}",
                kind(other)
            )));
        }
    };
    Ok(Sample {
        query,
        positive: passages(field("positive")?, "positive", fail)?,
        negative: passages(field("negative")?, "negative", fail)?,
    })
}

fn passages(value: &Value, name: &str, fail: &dyn Fn(String) -> Error) -> Result<Vec<String>> {
    let Value::Array(items) = value else {
        return Err(fail(format!(
            "`{name}` must be a list of strings, found {}",
            kind(value)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(fail(format!(
                "`{name}[{i}]` must be a string, found {}",
                kind(other)
            ))),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Sample> {
        sample_from_json(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn reads_a_row_and_ignores_other_keys() {
        let s = parse(r#"{"query": "q", "positive": ["p"], "negative": [], "id": 3}"#).unwrap();
        assert_eq!(s.query, "q");
        assert_eq!(s.positive, ["p"]);
        assert!(s.negative.is_empty());
    }

    #[test]
    fn says_what_is_wrong() {
        let cases = [
            (r#"["q", "p"]"#, "expected an object"),
            (
                r#"{"positive": [], "negative": []}"#,
                "missing field `query`",
            ),
            (
                r#"{"query": 1, "positive": [], "negative": []}"#,
                "`query` must be a string, found a number",
            ),
            (
                r#"{"query": "q", "positive": "p", "negative": []}"#,
                "`positive` must be a list of strings, found a string",
            ),
            (
                r#"{"query": "q", "positive": ["p"], "negative": ["n", null]}"#,
                "`negative[1]` must be a string, found null",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.code(), "INPUT_INVALID", "{err}");
            let Error::InvalidInput(reason) = err else {
                unreachable!()
            };
            assert!(
                reason.starts_with(expected),
                "{reason:?} should start with {expected:?}"
            );
        }
    }
}
