//! Fine-tuning ListConRanker as the model card trains it: Circle loss over each list's scores,
//! AdamW. Stage one ([`HeadTrainer`]) freezes the encoder and trains `linear_in_embedding`, the
//! list transformer and the score heads on the encoder's pooled features, computed once
//! ([`PooledFeatures`]). [`write_split_checkpoint`] writes the result in the original layout.

mod checkpoint;
mod circle_loss;
mod features;
mod head_trainer;
mod init_head;
mod lists;
mod memory;
mod named;
mod sampling;
mod schedule;

pub use checkpoint::{
    EncoderWeights, check_checkpoint_output, has_merged_weights, stage_fresh_head,
    write_split_checkpoint,
};
pub use circle_loss::CircleLoss;
pub use features::PooledFeatures;
pub use head_trainer::{HeadTrainer, TrainOptions};
pub use init_head::{HeadInit, HeadShape, fresh_head};
pub use lists::TrainingList;
pub use memory::StageOneSizes;
pub use named::{NamedTensor, named_gradients, named_parameters};
pub use sampling::{LabelledQuery, epoch_lists};
pub use schedule::LinearSchedule;
