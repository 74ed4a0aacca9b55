//! The crate's shape, checked: each module imports only the layers below it
//! (`docs/architecture.md`), and the JavaScript side knows every error code the Rust side has.

use std::path::{Path, PathBuf};

/// Top-level modules of `src/` by layer, lowest first. A module may name (`crate::m`) modules of
/// lower layers only; `error` names nothing, and the shells never name each other. `error`,
/// `config` and `tokenize` are re-exports of the burn-free `listconranker-formats` crate, which
/// names nothing of this one: they are base.
const LAYERS: [(&str, &[&str]); 8] = [
    (
        "base",
        &["error", "config", "tokenize", "device", "workload"],
    ),
    ("weights", &["weights"]),
    ("model", &["model"]),
    ("encoding", &["encode"]),
    ("ranking", &["rank"]),
    // The api layer: the reranker, then what is built on it: `hub` downloads a checkpoint and
    // loads it (`Reranker::from_pretrained`), `convert` validates what it writes by loading it.
    ("api: reranker", &["reranker"]),
    ("api: downloads and conversion", &["hub", "convert"]),
    ("shells", &["eval", "wasm", "serve", "train"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The items `lib.rs` re-exports at the crate root, by the module that defines them.
const ROOT_ITEMS: [(&str, &str); 9] = [
    ("Reranker", "reranker"),
    ("RankedDocument", "reranker"),
    ("SentenceEncoder", "reranker"),
    ("Backend", "device"),
    ("LoadOptions", "device"),
    ("Placement", "device"),
    ("Precision", "device"),
    ("Error", "error"),
    ("Result", "error"),
];

/// The modules a file's code names as `crate::name` (or through a root re-export,
/// `crate::Item`); comments (doc links included) are not imports.
fn crate_references(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = code.as_str();
    text.match_indices("crate::")
        .filter(|(at, _)| {
            // `crate::` itself, not `listconranker_crate::` or a word ending in "crate".
            !text[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            ROOT_ITEMS
                .iter()
                .find(|(item, _)| *item == name)
                .map_or(name, |(_, module)| module.to_string())
        })
        // A grouped import (`crate::{a, b}`) would hide its modules from this scan.
        .inspect(|name| {
            assert!(
                !name.is_empty(),
                "write one `use crate::module::...` per module"
            )
        })
        .collect()
}

#[test]
fn no_module_imports_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let module = top.to_str().unwrap().trim_end_matches(".rs");
        if module == "lib" || module == "bin" {
            continue;
        }
        let own = layer_of(module)
            .unwrap_or_else(|| panic!("{}: module `{module}` is in no layer", relative.display()));
        let text = std::fs::read_to_string(&file).unwrap();
        for name in crate_references(&text) {
            if name == module {
                continue;
            }
            let Some(theirs) = layer_of(&name) else {
                continue; // a crate-root item (`crate::Error` is spelt `crate::error::Error`)
            };
            let allowed = if module == "error" {
                false
            } else if own == 0 {
                name == "error"
            } else {
                theirs < own
            };
            checked += 1;
            if !allowed {
                violations.push(format!(
                    "{} ({}) names crate::{name} ({})",
                    relative.display(),
                    LAYERS[own].0,
                    LAYERS[theirs].0
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} references found: is the scan broken?"
    );
    assert!(
        violations.is_empty(),
        "imports that run up:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scan_sees_references() {
    let refs = crate_references(
        "use crate::device::Placement;\nlet x = my_crate::a; crate::rank::f(); crate::Reranker\n\
         /// [`crate::eval`]",
    );
    assert_eq!(refs, ["device", "rank", "reranker"]);
}

#[test]
fn javascript_knows_every_error_code() {
    let protocol = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/protocol.js");
    let text = std::fs::read_to_string(&protocol).expect("web/protocol.js");
    let missing: Vec<&str> = listconranker::Error::CODES
        .iter()
        .copied()
        .filter(|code| !text.contains(&format!("{code}: '{code}'")))
        .collect();
    assert!(missing.is_empty(), "web/protocol.js lacks {missing:?}");
}
