//! The image data sets of this reproduction: sparse-data's image sets.
//!
//! The paper uses CIFAR-10/100 and ImageNet; no package registry carries them, so
//! the presets use the embedded 8x8 digits (zero set-up) and Fashion-MNIST / MNIST
//! (fetched with `sparse-data`), and read CIFAR binaries when a user has them. The
//! loader, the index pools and the normalisation live in
//! [`sparse_data::images`], shared with the other image reproductions.

pub use sparse_data::images::{
    ImageData, ImageLoadError as LoadError, ImageSetName as DatasetName, InputShape,
};
