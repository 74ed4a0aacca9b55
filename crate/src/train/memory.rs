//! What stage one will hold in memory, estimated before anything large is allocated, so that a
//! run that cannot fit is refused with the numbers instead of failing (or swapping) hours in.

use super::init_head::HeadShape;
use crate::error::{Error, Result};

/// The sizes a stage-one run's memory depends on.
#[derive(Clone, Copy, Debug)]
pub struct StageOneSizes {
    pub head: HeadShape,
    /// Distinct texts whose pooled features are cached (at most the data's texts).
    pub texts: usize,
    /// The longest training list, query included.
    pub list_len: usize,
    /// Lists per forward and backward pass.
    pub micro_batch: usize,
}

impl StageOneSizes {
    /// Bytes, with no allowance for the encoder itself (loaded before this is asked) or for
    /// the allocator's slack: the cached features, the head's parameters with their gradients
    /// and AdamW's two moments, and what autodiff keeps of one micro-batch for its backward
    /// pass (per list layer: the inputs and outputs of the projections, the feed-forward
    /// activations and the attention's scores and probabilities; the score heads'
    /// concatenations) counted twice, for the gradients flowing back through them.
    pub fn estimate_bytes(&self) -> u128 {
        let HeadShape {
            hidden,
            dim,
            ffn,
            layers,
            heads,
        } = self.head;
        let (hidden, dim, ffn, layers, heads) = (
            hidden as u128,
            dim as u128,
            ffn as u128,
            layers as u128,
            heads as u128,
        );
        let (texts, len, micro) = (
            self.texts as u128,
            self.list_len as u128,
            self.micro_batch as u128,
        );
        let features = texts * hidden;
        let per_layer_params = 4 * dim * dim + 2 * dim * ffn + 9 * dim + ffn;
        let params =
            hidden * dim + dim + 2 * dim + layers * per_layer_params + 4 * dim * dim + 3 * dim + 1;
        let per_layer_activations = len * (12 * dim + 4 * ffn) + 3 * heads * len * len;
        let per_list = layers * per_layer_activations + len * 12 * dim;
        4 * (features + 4 * params + 2 * micro * per_list)
    }

    /// Refuses the run when its estimate exceeds the memory the system has available (where
    /// the system says; elsewhere nothing is refused).
    pub fn check(&self) -> Result<()> {
        let Some(available) = available_memory() else {
            return Ok(());
        };
        let needed = self.estimate_bytes();
        if needed > u128::from(available) {
            return Err(Error::input(format!(
                "stage one would need about {:.1} GB (cached features of {} texts, a head of \
                 width {} with {} layers, micro-batches of {} lists of up to {} items) and \
                 {:.1} GB are available; lower --micro-batch or --passages-per-query, or \
                 train a smaller head",
                needed as f64 / 1e9,
                self.texts,
                self.head.dim,
                self.head.layers,
                self.micro_batch,
                self.list_len,
                available as f64 / 1e9
            )));
        }
        Ok(())
    }
}

/// The memory the system can give a new process without swapping: Linux's `MemAvailable`.
/// Read by hand from /proc/meminfo: one line of a text file, not worth a crate.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(micro_batch: usize, list_len: usize) -> StageOneSizes {
        StageOneSizes {
            head: HeadShape {
                hidden: 1024,
                dim: 1792,
                ffn: 2048,
                layers: 2,
                heads: 16,
            },
            texts: 100_000,
            list_len,
            micro_batch,
        }
    }

    #[test]
    fn the_estimate_grows_with_the_batch_and_the_square_of_the_list() {
        let base = sizes(1, 21).estimate_bytes();
        // The release's head: 55 M parameters, four copies of each (0.88 GB with the
        // gradients and AdamW's moments); 100k cached features of 1024 (0.41 GB).
        assert!((1.29e9..1.35e9).contains(&(base as f64)), "{base}");
        assert!(sizes(64, 21).estimate_bytes() > base);
        let long = sizes(64, 1001).estimate_bytes() - sizes(64, 501).estimate_bytes();
        let short = sizes(64, 501).estimate_bytes() - sizes(64, 1).estimate_bytes();
        assert!(long > short, "the attention's share is quadratic");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn available_memory_is_read_on_linux() {
        assert!(available_memory().is_some_and(|b| b > 0));
    }
}
