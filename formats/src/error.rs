//! The crate's one error type. Every message names the file, key or input that is at fault, and
//! every variant maps to a stable `code()` that the JavaScript side exposes as `error.code`.

use std::fmt::Display;
use std::path::Path;

/// What an I/O error was doing: its code says which side failed (the model's files, the input,
/// or an output being written), not just that a file could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoAction {
    /// Reading a checkpoint or bundle from disk, or downloading one.
    ReadModel,
    /// Reading the texts or data to score.
    ReadInput,
    /// Writing a result: a bundle, a report, a downloaded file into its place.
    WriteOutput,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {reason}")]
    Io {
        action: IoAction,
        file: String,
        reason: String,
    },

    #[error("{dir}: no {what} found (looked for {candidates})")]
    MissingFile {
        dir: String,
        what: &'static str,
        candidates: String,
    },

    #[error("{file}: invalid checkpoint: {reason}")]
    InvalidCheckpoint { file: String, reason: String },

    #[error("{file}: missing key `{key}`")]
    MissingKey { file: String, key: String },

    #[error("{file}: key `{key}` has shape {found:?}, expected {expected:?}")]
    WrongShape {
        file: String,
        key: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },

    #[error("{file}: key `{key}` holds non-finite values (NaN or infinity)")]
    NonFinite { file: String, key: String },

    #[error("{file}: invalid config: {reason}")]
    InvalidConfig { file: String, reason: String },

    #[error("tokenizer ({file}): {reason}")]
    Tokenizer { file: String, reason: String },

    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A list longer than the list transformer may take (its attention grows with the square of
    /// the list's length). `line`, where a caller read the list from a numbered input, names it.
    #[error(
        "{}: {passages} passages, more than the limit of {limit} (the list attention would need about {attention_mib} MiB; `--max-passages` or `LoadOptions::max_passages` moves the limit, iterative inference does not lift it)",
        line.map_or(format!("list {list}"), |n| format!("line {n}"))
    )]
    ListTooLong {
        list: usize,
        line: Option<usize>,
        passages: usize,
        limit: usize,
        attention_mib: u64,
    },

    /// The model's arithmetic overflowed: finite but huge weights give NaN or infinite scores.
    /// `list` is the list's index in the call; `line`, where a caller read it from a numbered
    /// input, names it instead.
    #[error(
        "{}: the model gave a non-finite score (NaN or infinity); its weights overflow",
        line.map_or(format!("list {list}"), |n| format!("line {n}"))
    )]
    NonFiniteScore { list: usize, line: Option<usize> },

    #[error("device unavailable: {0}")]
    DeviceUnavailable(String),

    /// The browser has no usable WebGPU (no adapter, or one without a needed feature): the
    /// caller may fall back to the CPU backend.
    #[error("WebGPU unavailable: {0}")]
    WebGpuUnavailable(String),

    #[error("inference failed on the device: {0}")]
    Execution(String),

    /// An evaluation data file that cannot be read or has a malformed row (`row` is 1-based:
    /// the line of a JSON Lines file, the row of a Parquet file; `None` for the whole file).
    #[error("{file}{}: {reason}", row.map(|r| format!(": row {r}")).unwrap_or_default())]
    InvalidData {
        file: String,
        row: Option<usize>,
        reason: String,
    },
}

impl Error {
    /// A stable, machine-readable code (the JS API's `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { action, .. } => match action {
                IoAction::ReadModel => "MODEL_FETCH_FAILED",
                IoAction::ReadInput => "INPUT_READ_FAILED",
                IoAction::WriteOutput => "OUTPUT_WRITE_FAILED",
            },
            Error::MissingFile { .. }
            | Error::InvalidCheckpoint { .. }
            | Error::MissingKey { .. }
            | Error::WrongShape { .. }
            | Error::NonFinite { .. }
            | Error::InvalidConfig { .. }
            | Error::Tokenizer { .. }
            | Error::NonFiniteScore { .. } => "MODEL_INVALID",
            Error::InvalidInput(_) | Error::ListTooLong { .. } => "INPUT_INVALID",
            Error::DeviceUnavailable(_) => "DEVICE_UNAVAILABLE",
            Error::WebGpuUnavailable(_) => "WEBGPU_UNAVAILABLE",
            Error::Execution(_) => "DEVICE_LOST",
            Error::InvalidData { .. } => "DATA_INVALID",
        }
    }

    /// Every code `code()` can return, for tools that list them (the JavaScript side's
    /// protocol.js, tests).
    pub const CODES: [&'static str; 9] = [
        "MODEL_FETCH_FAILED",
        "INPUT_READ_FAILED",
        "OUTPUT_WRITE_FAILED",
        "MODEL_INVALID",
        "INPUT_INVALID",
        "DEVICE_UNAVAILABLE",
        "WEBGPU_UNAVAILABLE",
        "DEVICE_LOST",
        "DATA_INVALID",
    ];

    fn io(action: IoAction, file: impl Display, err: impl Display) -> Self {
        Error::Io {
            action,
            file: file.to_string(),
            reason: err.to_string(),
        }
    }

    /// A model file (checkpoint, bundle, tokenizer, config) that could not be read or fetched.
    pub fn read_model(file: impl Display, err: impl Display) -> Self {
        Self::io(IoAction::ReadModel, file, err)
    }

    /// Input texts or data that could not be read.
    pub fn read_input(file: impl Display, err: impl Display) -> Self {
        Self::io(IoAction::ReadInput, file, err)
    }

    /// An output that could not be written.
    pub fn write_output(file: impl Display, err: impl Display) -> Self {
        Self::io(IoAction::WriteOutput, file, err)
    }

    /// A malformed evaluation data file (`row` 1-based; `None` for the whole file).
    pub fn data(path: &Path, row: Option<usize>, reason: impl Display) -> Self {
        Error::InvalidData {
            file: path.display().to_string(),
            row,
            reason: reason.to_string(),
        }
    }

    pub fn checkpoint(file: impl Display, reason: impl Display) -> Self {
        Error::InvalidCheckpoint {
            file: file.to_string(),
            reason: reason.to_string(),
        }
    }

    pub fn config(file: impl Display, reason: impl Display) -> Self {
        Error::InvalidConfig {
            file: file.to_string(),
            reason: reason.to_string(),
        }
    }

    pub fn input(reason: impl Display) -> Self {
        Error::InvalidInput(reason.to_string())
    }

    /// The error with the list it names (`list N` of a call) named by the input line it was
    /// read from instead (`lines[N]`), for callers that read lists from numbered lines.
    pub fn at_line(self, lines: &[usize]) -> Self {
        match self {
            Error::NonFiniteScore { list, .. } => Error::NonFiniteScore {
                list,
                line: lines.get(list).copied(),
            },
            Error::ListTooLong {
                list,
                passages,
                limit,
                attention_mib,
                ..
            } => Error::ListTooLong {
                list,
                line: lines.get(list).copied(),
                passages,
                limit,
                attention_mib,
            },
            other => other,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once() {
        let errors = [
            Error::read_model("f", "r"),
            Error::read_input("f", "r"),
            Error::write_output("f", "r"),
            Error::checkpoint("f", "r"),
            Error::input("r"),
            Error::DeviceUnavailable("r".into()),
            Error::WebGpuUnavailable("r".into()),
            Error::Execution("r".into()),
            Error::data(Path::new("f"), Some(1), "r"),
        ];
        for e in &errors {
            assert!(
                Error::CODES.contains(&e.code()),
                "{} is not in CODES",
                e.code()
            );
        }
        let mut codes = Error::CODES.to_vec();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Error::CODES.len(), "a code is listed twice");
        let produced: std::collections::BTreeSet<&str> = errors.iter().map(Error::code).collect();
        assert_eq!(
            produced.len(),
            Error::CODES.len(),
            "a listed code is never produced"
        );
    }
}
