//! The crate's one error type. Every message names the file, key or input that is at fault, and
//! every variant maps to a stable `code()` that the JavaScript side exposes as `error.code`.

use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {reason}")]
    Io { file: String, reason: String },

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

    #[error("device unavailable: {0}")]
    DeviceUnavailable(String),

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
            Error::Io { .. } => "MODEL_FETCH_FAILED",
            Error::MissingFile { .. }
            | Error::InvalidCheckpoint { .. }
            | Error::MissingKey { .. }
            | Error::WrongShape { .. }
            | Error::NonFinite { .. }
            | Error::InvalidConfig { .. }
            | Error::Tokenizer { .. } => "MODEL_INVALID",
            Error::InvalidInput(_) => "INPUT_INVALID",
            Error::DeviceUnavailable(_) => "DEVICE_UNAVAILABLE",
            Error::Execution(_) => "DEVICE_LOST",
            Error::InvalidData { .. } => "DATA_INVALID",
        }
    }

    // File I/O happens only in native builds; the browser fetches in JavaScript.
    #[cfg_attr(not(feature = "native"), allow(dead_code))]
    pub(crate) fn io(file: impl Display, err: impl Display) -> Self {
        Error::Io {
            file: file.to_string(),
            reason: err.to_string(),
        }
    }

    pub(crate) fn checkpoint(file: impl Display, reason: impl Display) -> Self {
        Error::InvalidCheckpoint {
            file: file.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn config(file: impl Display, reason: impl Display) -> Self {
        Error::InvalidConfig {
            file: file.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn input(reason: impl Display) -> Self {
        Error::InvalidInput(reason.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
