//! Checkpoint reading: every format is decoded into one [`WeightMap`] of f32 host tensors under
//! canonical key names, which the model builders then take from, checking shapes and values.

pub mod bundle;
mod map;
#[cfg(feature = "native")]
mod split_layout;
#[cfg(feature = "native")]
pub mod staging;
#[cfg(feature = "train")]
pub mod torch_save;

pub use listconranker_formats::safetensors_file::read_safetensors;
pub use listconranker_formats::tensor::{RawTensor, StoredDType, decode_to_f32};
pub use listconranker_formats::tokenize::TokenizerFiles;
pub use map::{Destination, Weight, WeightMap};
#[cfg(feature = "native")]
pub use split_layout::{
    EncoderFiles, IndexedTensor, ListPartFiles, ModelFiles, SafetensorsIndex, encoder_key,
    find_encoder_files, find_model_files, load_encoder_weights, load_list_part_weights,
    load_split_weights, merged_key, plan_encoder_weights, plan_split_weights,
};
