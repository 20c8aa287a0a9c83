//! The image data sets of this reproduction, as index pools over loaded sets.
//!
//! The paper uses CIFAR-10/100 and ImageNet; no package registry carries them, so
//! the presets use the embedded 8x8 digits (zero set-up) and Fashion-MNIST / MNIST
//! (fetched with `sparse-data`), and read CIFAR-10 binaries when a user has them.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sparse_data::catalogue::{self, CatalogueError, Presence};
use sparse_data::data::{ClassificationSet, DataError, ImageDataset, cifar, digits, idx};
use sparse_data::location::DataLocation;
use sparse_repro::models::InputShape;

/// Digits has no official test split: this many of its 1797 images, drawn once
/// with a fixed seed independent of the run's seed, form the test set.
const DIGITS_TEST_SIZE: usize = 360;
const DIGITS_SPLIT_SEED: u64 = 2202_02643;

/// Which data set to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// scikit-learn's 8x8 digits, embedded (1437 train / 360 test).
    Digits,
    /// Fashion-MNIST (60000 / 10000), fetched with `sparse-data fetch fashion-mnist`.
    FashionMnist,
    /// MNIST (60000 / 10000), fetched with `sparse-data fetch mnist`.
    Mnist,
    /// CIFAR-10 binary version (50000 / 10000), for users who have it (`--data-dir`).
    Cifar10,
}

impl DatasetName {
    /// The catalogue name (`digits`, `fashion-mnist`, `mnist`, `cifar10`).
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Digits => "digits",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Mnist => "mnist",
            DatasetName::Cifar10 => "cifar10",
        }
    }
}

/// Errors while finding or reading a data set.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The data set is not present; the message says how to get it.
    #[error(transparent)]
    Missing(#[from] CatalogueError),
    /// CIFAR-10 needs a folder given with `--data-dir`.
    #[error(
        "CIFAR-10 is in no package registry: download its binary version yourself and pass \
         the folder holding data_batch_1.bin..test_batch.bin with --data-dir{0}"
    )]
    Cifar(String),
    /// The files are there but could not be parsed.
    #[error(transparent)]
    Data(#[from] DataError),
}

/// A loaded data set: a pool of training images (split later into train and
/// validation by the run's seed) and a test pool.
#[derive(Debug, Clone)]
pub struct ImageData {
    /// Which data set.
    pub name: DatasetName,
    train_set: ImageDataset,
    train_pool: Vec<usize>,
    test_set: ImageDataset,
    test_pool: Vec<usize>,
    mean: f32,
    std: f32,
}

impl ImageData {
    /// Loads `name`; `dir` is the folder holding the fetched files (e.g.
    /// `datasets/cache/fashion-mnist`), unused for the embedded digits.
    pub fn load(name: DatasetName, dir: Option<&Path>) -> Result<Self, LoadError> {
        match name {
            DatasetName::Digits => Ok(Self::digits()?),
            DatasetName::FashionMnist | DatasetName::Mnist => {
                let location = DataLocation::from_process(dir);
                let path = match catalogue::find(name.as_str())?.resolve(&location)? {
                    Presence::OnDisk(path) => path,
                    Presence::Embedded => unreachable_embedded(name)?,
                };
                let tt = idx::load_mnist_dir(&path)?;
                Ok(Self::from_sets(name, tt.train, tt.test))
            }
            DatasetName::Cifar10 => match dir {
                Some(d) if d.is_dir() => {
                    let tt = cifar::load_cifar10_dir(d)?;
                    Ok(Self::from_sets(name, tt.train, tt.test))
                }
                Some(d) => Err(LoadError::Cifar(format!(
                    " ({} is not a folder)",
                    d.display()
                ))),
                None => Err(LoadError::Cifar(String::new())),
            },
        }
    }

    /// The embedded digits with the fixed 360-image test split.
    pub fn digits() -> Result<Self, DataError> {
        let all = digits::embedded()?;
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.shuffle(&mut sparse_repro::rng::rng_from_seed(DIGITS_SPLIT_SEED));
        let mut test_pool = order[..DIGITS_TEST_SIZE].to_vec();
        let mut train_pool = order[DIGITS_TEST_SIZE..].to_vec();
        test_pool.sort_unstable();
        train_pool.sort_unstable();
        let (mean, std) = pixel_moments(&all, &train_pool)?;
        Ok(Self {
            name: DatasetName::Digits,
            train_set: all.clone(),
            train_pool,
            test_set: all,
            test_pool,
            mean,
            std,
        })
    }

    fn from_sets(name: DatasetName, train: ImageDataset, test: ImageDataset) -> Self {
        let train_pool: Vec<usize> = (0..train.len()).collect();
        let test_pool: Vec<usize> = (0..test.len()).collect();
        // Moments over at most 10k images: exact enough, and fast.
        let sample: Vec<usize> = train_pool
            .iter()
            .copied()
            .step_by((train.len() / 10_000).max(1))
            .collect();
        let (mean, std) = pixel_moments(&train, &sample).unwrap_or((0.0, 1.0));
        Self {
            name,
            train_set: train,
            train_pool,
            test_set: test,
            test_pool,
            mean,
            std,
        }
    }

    /// Keeps only the first `n` training and `m` test images (quick presets).
    pub fn truncated(mut self, n_train: Option<usize>, n_test: Option<usize>) -> Self {
        if let Some(n) = n_train {
            self.train_pool.truncate(n);
        }
        if let Some(m) = n_test {
            self.test_pool.truncate(m);
        }
        self
    }

    /// Indices (into the training set) available for training and validation.
    pub fn train_pool(&self) -> &[usize] {
        &self.train_pool
    }

    /// Indices of the test set.
    pub fn test_pool(&self) -> &[usize] {
        &self.test_pool
    }

    /// The shape of one image.
    pub fn input_shape(&self) -> InputShape {
        InputShape {
            channels: self.train_set.channels(),
            height: self.train_set.height(),
            width: self.train_set.width(),
        }
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.train_set
            .num_classes()
            .max(self.test_set.num_classes())
    }

    /// A normalised training batch `(inputs, targets)` from training-set indices.
    pub fn train_batch(
        &self,
        indices: &[usize],
        device: &Device,
    ) -> Result<(Tensor, Tensor), DataError> {
        self.normalised(&self.train_set, indices, device)
    }

    /// A normalised test batch `(inputs, targets)` from test-set indices.
    pub fn test_batch(
        &self,
        indices: &[usize],
        device: &Device,
    ) -> Result<(Tensor, Tensor), DataError> {
        self.normalised(&self.test_set, indices, device)
    }

    /// A test batch of `other`'s images normalised with this data set's statistics
    /// (out-of-distribution inputs must be seen as the model sees its own data).
    pub fn foreign_batch(
        &self,
        other: &ImageData,
        indices: &[usize],
        device: &Device,
    ) -> Result<Tensor, DataError> {
        Ok(self.normalised(&other.test_set, indices, device)?.0)
    }

    fn normalised(
        &self,
        set: &ImageDataset,
        indices: &[usize],
        device: &Device,
    ) -> Result<(Tensor, Tensor), DataError> {
        let batch = set.batch(indices, device)?;
        let inputs = ((batch.inputs - f64::from(self.mean))? / f64::from(self.std))?;
        Ok((inputs, batch.targets))
    }
}

/// The catalogue stores MNIST-like sets as fetched folders; an embedded entry
/// would be a catalogue change this crate does not know how to read.
fn unreachable_embedded(name: DatasetName) -> Result<PathBuf, LoadError> {
    Err(LoadError::Data(DataError::Argument {
        parameter: "dataset",
        message: format!("`{}` is embedded, not a folder of IDX files", name.as_str()),
    }))
}

/// Mean and standard deviation of the scaled pixel values of `indices`.
fn pixel_moments(set: &ImageDataset, indices: &[usize]) -> Result<(f32, f32), DataError> {
    let values = set.batch_values(indices)?;
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    Ok((mean as f32, (var.sqrt() as f32).max(1e-6)))
}
