//! JSON Lines input of the CLI's `score` command: one list per line, either
//! `[query, passage, ...]` or `{"query": ..., "passages": [...]}`.

use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(untagged)]
enum ListLine {
    Array(Vec<String>),
    Object {
        query: String,
        passages: Vec<String>,
    },
}

/// What is wrong with a `[query, passage, ...]` list, if anything (callers add where it is).
pub fn list_problem<S: AsRef<str>>(list: &[S]) -> Option<&'static str> {
    match list.len() {
        0 => Some("the list is empty: expected [query, passage, ...]"),
        1 => Some("the list has a query but no passage"),
        _ => None,
    }
}

/// Parses one input line (1-based `number` for messages) into `[query, passages...]`.
pub fn parse_list_line(bytes: &[u8], number: usize) -> Result<Vec<String>> {
    let fail = |reason: String| Error::input(format!("line {number}: {reason}"));
    let text = std::str::from_utf8(bytes).map_err(|e| fail(format!("not valid UTF-8 ({e})")))?;
    let list = match serde_json::from_str::<ListLine>(text) {
        Ok(ListLine::Array(list)) => list,
        Ok(ListLine::Object { query, passages }) => {
            std::iter::once(query).chain(passages).collect()
        }
        Err(_) => {
            // Say what is wrong: bad JSON, or valid JSON of the wrong shape.
            let reason = match serde_json::from_str::<serde_json::Value>(text) {
                Err(e) => format!("invalid JSON ({e})"),
                Ok(_) => "expected [query, passage, ...] or {\"query\": ..., \"passages\": [...]} with strings".into(),
            };
            return Err(fail(reason));
        }
    };
    if let Some(problem) = list_problem(&list) {
        return Err(fail(problem.into()));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_line_shapes_parse_to_the_same_list() {
        let a = parse_list_line(br#"["q", "p1", "p2"]"#, 1).unwrap();
        let b = parse_list_line(br#"{"query": "q", "passages": ["p1", "p2"]}"#, 1).unwrap();
        assert_eq!(a, vec!["q", "p1", "p2"]);
        assert_eq!(a, b);
    }

    #[test]
    fn bad_lines_name_their_number_and_the_problem() {
        let cases: [(&[u8], &str); 5] = [
            (b"[\"q\", \"p\"", "line 7: invalid JSON"),
            (b"{\"query\": \"q\"}", "line 7: expected"),
            (b"[\"q\", 3]", "line 7: expected"),
            (b"[\"q\"]", "line 7: the list has a query but no passage"),
            (b"[\"q\", \"\xff\"]", "line 7: not valid UTF-8"),
        ];
        for (line, expected) in cases {
            let err = parse_list_line(line, 7).unwrap_err();
            assert_eq!(err.code(), "INPUT_INVALID");
            let err = err.to_string();
            let err = err.strip_prefix("invalid input: ").unwrap_or(&err);
            assert!(
                err.starts_with(expected),
                "{err:?} should start with {expected:?}"
            );
        }
    }
}
