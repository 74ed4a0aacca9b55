//! Fine-tuning ListConRanker as the model card trains it: Circle loss over each list's scores,
//! AdamW. Stage one ([`HeadTrainer`]) freezes the encoder and trains `linear_in_embedding`, the
//! list transformer and the score heads on the encoder's pooled features, computed once
//! ([`PooledFeatures`]).

mod circle_loss;
mod features;
mod head_trainer;
mod lists;
mod named;

pub use circle_loss::CircleLoss;
pub use features::PooledFeatures;
pub use head_trainer::{HeadTrainer, TrainOptions};
pub use lists::TrainingList;
pub use named::{NamedTensor, named_gradients, named_parameters};
