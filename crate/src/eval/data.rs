//! Reading one evaluation data set: the file format from its extension, then MTEB's rule of
//! skipping samples that lack a positive or a negative passage.

use std::path::{Path, PathBuf};

use super::sample::Sample;
use crate::error::{Error, Result};

/// The samples of one data file that will be evaluated.
#[derive(Debug, Clone)]
pub struct DataSet {
    pub path: PathBuf,
    /// Samples with at least one positive and one negative passage, in file order.
    pub samples: Vec<Sample>,
    /// Samples read but left out for lacking a positive or a negative passage.
    pub skipped: usize,
}

impl DataSet {
    /// Candidates (positives and negatives) over all samples.
    pub fn candidates(&self) -> usize {
        self.samples.iter().map(Sample::candidates).sum()
    }
}

/// Reads `path`: Parquet when it ends in `.parquet`, JSON Lines otherwise. With `limit`, stops
/// after that many rankable samples (skipped ones do not count towards it). Fails on the first
/// malformed row, on an empty file and on a file without any rankable sample.
pub fn read_data_set(path: &Path, limit: Option<usize>) -> Result<DataSet> {
    let mut samples = Vec::new();
    let (mut rows, mut skipped) = (0usize, 0usize);
    for sample in read_rows(path)? {
        if limit.is_some_and(|n| samples.len() >= n) {
            break;
        }
        let sample = sample?;
        rows += 1;
        if sample.is_rankable() {
            samples.push(sample);
        } else {
            skipped += 1;
        }
    }
    if rows == 0 {
        return Err(Error::data(path, None, "no samples: the file is empty"));
    }
    if samples.is_empty() {
        return Err(Error::data(
            path,
            None,
            format!("none of its {rows} samples has both a positive and a negative passage"),
        ));
    }
    Ok(DataSet {
        path: path.to_path_buf(),
        samples,
        skipped,
    })
}

fn read_rows(path: &Path) -> Result<Box<dyn Iterator<Item = Result<Sample>>>> {
    if is_parquet(path) {
        read_parquet(path)
    } else {
        Ok(Box::new(super::json_lines::read_samples(path)?))
    }
}

fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

#[cfg(feature = "parquet")]
fn read_parquet(path: &Path) -> Result<Box<dyn Iterator<Item = Result<Sample>>>> {
    Ok(Box::new(super::parquet_file::read_samples(path)?))
}

#[cfg(not(feature = "parquet"))]
fn read_parquet(path: &Path) -> Result<Box<dyn Iterator<Item = Result<Sample>>>> {
    Err(Error::data(
        path,
        None,
        "this build cannot read Parquet (enable the `parquet` feature)",
    ))
}
