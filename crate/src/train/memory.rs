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
    /// Training lists per forward and backward pass.
    pub micro_batch: usize,
    /// The longest validation list, query included (validation ranks whole lists).
    pub valid_list_len: usize,
    /// Validation lists per forward pass (no gradients kept).
    pub valid_batch: usize,
    /// The encoder's weights when they are not loaded yet (0 once they are: the system's
    /// available memory counts them then).
    pub encoder_bytes: u64,
}

/// Copies of every head parameter a run holds: the parameter, its gradient, the gradient
/// accumulated over micro-batches, AdamW's two moments, and the starting head kept for the end.
const PARAMETER_COPIES: u128 = 6;

impl StageOneSizes {
    /// Bytes, with no allowance for the allocator's slack: the cached features, the head's
    /// parameter copies, and the larger of a training pass (what autodiff keeps of one
    /// micro-batch for its backward pass, counted twice for the gradients flowing back
    /// through it) and a validation pass (activations of one batch of whole lists); plus the
    /// encoder's weights when not loaded yet. What autodiff keeps, per list layer: the inputs
    /// and outputs of the projections, the feed-forward activations and the attention's
    /// scores and probabilities (quadratic in the list's length); for the score heads, their
    /// concatenations.
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
        let features = self.texts as u128 * hidden;
        // Per list layer: in-projection, out-projection, two feed-forward projections, two
        // LayerNorms; the projection, the query tag and its LayerNorm; the three score heads.
        let per_layer_params = 4 * dim * dim + 2 * dim * ffn + 9 * dim + ffn;
        let params =
            hidden * dim + dim + 4 * dim + layers * per_layer_params + 4 * dim * dim + 4 * dim + 1;
        let per_list = |len: u128| {
            layers * (len * (12 * dim + 4 * ffn) + 3 * heads * len * len) + len * 12 * dim
        };
        let training = 2 * self.micro_batch as u128 * per_list(self.list_len as u128);
        let validation = self.valid_batch as u128 * per_list(self.valid_list_len as u128);
        4 * (features + PARAMETER_COPIES * params + training.max(validation))
            + u128::from(self.encoder_bytes)
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
                 width {} with {} layers, micro-batches of {} lists of up to {} items, \
                 validation lists of up to {} items) and {:.1} GB are available; lower \
                 --micro-batch or --passages-per-query, shorten the validation lists, or train \
                 a smaller head",
                needed as f64 / 1e9,
                self.texts,
                self.head.dim,
                self.head.layers,
                self.micro_batch,
                self.list_len,
                self.valid_list_len,
                available as f64 / 1e9
            )));
        }
        Ok(())
    }
}

/// The memory the system can give this process without swapping: Linux's `MemAvailable`,
/// or less where a cgroup (a container's limit) allows less. Read by hand from /proc and
/// /sys: a line of a text file each, not worth a crate.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let available = kib.checked_mul(1024)?;
    Some(match cgroup_room() {
        Some(room) => available.min(room),
        None => available,
    })
}

/// What this process's cgroup (v2) still allows: its `memory.max` less its `memory.current`;
/// `None` without a limit ("max") or without cgroup v2.
fn cgroup_room() -> Option<u64> {
    let read = |name: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{name}")).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?;
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
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
            valid_list_len: 21,
            valid_batch: 64,
            encoder_bytes: 0,
        }
    }

    #[test]
    fn the_estimate_grows_with_the_batch_and_the_square_of_the_list() {
        let base = sizes(1, 21).estimate_bytes();
        // The release's head: 55 M parameters, six copies of each (1.32 GB); 100k cached
        // features of 1024 (0.41 GB); a validation batch of 64 lists of 21 (0.45 GB).
        assert!((2.15e9..2.25e9).contains(&(base as f64)), "{base}");
        assert!(sizes(64, 21).estimate_bytes() > base);
        let mut encoder = sizes(1, 21);
        encoder.encoder_bytes = 1_000_000;
        assert_eq!(encoder.estimate_bytes(), base + 1_000_000);
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
