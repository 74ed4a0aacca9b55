//! JSON Lines input of the `score` command: one list per line, either `[query, passage, ...]`
//! or `{"query": ..., "passages": [...]}`. The parser lives in the burn-free formats crate,
//! where it is fuzzed.

pub use listconranker_formats::input::parse_list_line;
