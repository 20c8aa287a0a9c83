//! The image classification sets of the reproductions, as index pools over loaded
//! sets: the embedded 8x8 digits (zero set-up), Fashion-MNIST and MNIST (fetched with
//! `sparse-data`), CIFAR-10/100 binaries when a user has them (no package
//! registry carries CIFAR), and the generated long-range task `border-half`.
//!
//! Every set is found through sparse-data's [`DataLocation`] (`--data-dir`, then
//! `SPARSELAND_DATA`, then the defaults). A loaded set is shared: [`ImageData::limited`]
//! views the first images of it without copying the pixels.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalogue::{self, CatalogueError, Presence};
use crate::data::{ClassificationSet, DataError, ImageDataset, border_half, cifar, digits, idx};
use crate::location::DataLocation;
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Digits has no official test split: this many of its 1797 images, drawn once
/// with a fixed seed independent of the run's seed, form the test set (the seed
/// is random-pruning's arXiv number, where the split was first drawn).
const DIGITS_TEST_SIZE: usize = 360;
const DIGITS_SPLIT_SEED: u64 = 2202_02643;

/// Training images of the generated border-half task.
pub const BORDER_HALF_TRAIN: usize = 10_000;
/// Test images of the generated border-half task.
pub const BORDER_HALF_TEST: usize = 2_000;

/// Which data set to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ImageSetName {
    /// scikit-learn's 8x8 digits, embedded (1437 train / 360 test).
    Digits,
    /// Fashion-MNIST (60000 / 10000), fetched with `sparse-data fetch fashion-mnist`.
    FashionMnist,
    /// MNIST (60000 / 10000), fetched with `sparse-data fetch mnist`.
    Mnist,
    /// CIFAR-10 binary version (50000 / 10000), for users who have it (see [`ImageData::load`]).
    Cifar10,
    /// CIFAR-100 binary version (50000 / 10000, fine labels), for users who have it.
    Cifar100,
    /// The generated long-range task ([`crate::data::border_half`]; 10000 /
    /// 2000, two classes, 48x48 grey), needing no file.
    BorderHalf,
}

/// Where a CIFAR binary version is looked for: the folder names in the data roots
/// (the archive's own name, then the short one), the file that marks the folder,
/// and what the error message lists.
struct CifarLayout {
    name: &'static str,
    dirs: [&'static str; 2],
    marker: &'static str,
    files: &'static str,
}

const CIFAR10: CifarLayout = CifarLayout {
    name: "CIFAR-10",
    dirs: ["cifar-10-batches-bin", "cifar10"],
    marker: "data_batch_1.bin",
    files: "data_batch_1.bin..test_batch.bin",
};

const CIFAR100: CifarLayout = CifarLayout {
    name: "CIFAR-100",
    dirs: ["cifar-100-binary", "cifar100"],
    marker: "train.bin",
    files: "train.bin and test.bin",
};

impl ImageSetName {
    /// The catalogue name (`digits`, `fashion-mnist`, `mnist`, `cifar10`, `cifar100`,
    /// `border-half`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImageSetName::Digits => "digits",
            ImageSetName::FashionMnist => "fashion-mnist",
            ImageSetName::Mnist => "mnist",
            ImageSetName::Cifar10 => "cifar10",
            ImageSetName::Cifar100 => "cifar100",
            ImageSetName::BorderHalf => "border-half",
        }
    }

    /// The data set called `name` (as [`ImageSetName::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Self> {
        [
            ImageSetName::Digits,
            ImageSetName::FashionMnist,
            ImageSetName::Mnist,
            ImageSetName::Cifar10,
            ImageSetName::Cifar100,
            ImageSetName::BorderHalf,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }

    /// The data set called `name`, or [`ImageLoadError::Unknown`] naming it.
    pub fn from_name(name: &str) -> Result<Self, ImageLoadError> {
        Self::parse(name).ok_or_else(|| ImageLoadError::Unknown(name.to_string()))
    }

    /// The catalogue entries a run on the set called `name` needs checked or fetched
    /// first: the set itself when a registry carries it, else nothing (the digits are
    /// embedded, CIFAR is the user's; an unknown name is left to the loader's error).
    pub fn catalogue_needs(name: &str) -> Vec<String> {
        match Self::parse(name) {
            Some(set) if set.in_catalogue() => vec![set.as_str().to_string()],
            _ => Vec::new(),
        }
    }

    /// The out-of-distribution set scored against a model trained on this set.
    pub fn ood_partner(self) -> Option<ImageSetName> {
        match self {
            ImageSetName::FashionMnist => Some(ImageSetName::Mnist),
            ImageSetName::Mnist => Some(ImageSetName::FashionMnist),
            _ => None,
        }
    }

    /// Whether sparse-data's catalogue carries it (so a run can check and fetch it up
    /// front); CIFAR is in no registry, border-half is generated.
    pub fn in_catalogue(self) -> bool {
        !matches!(
            self,
            ImageSetName::Cifar10 | ImageSetName::Cifar100 | ImageSetName::BorderHalf
        )
    }
}

/// The input a model receives: `channels x height x width` images, flattened for an MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape {
    /// Image channels.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

impl InputShape {
    /// Number of values per sample.
    pub fn numel(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// Errors while finding or reading a data set.
#[derive(Debug, thiserror::Error)]
pub enum ImageLoadError {
    /// The data set is not present; the message says how to get it.
    #[error(transparent)]
    Missing(#[from] CatalogueError),
    /// CIFAR-10 or CIFAR-100 is not in any data root.
    #[error(
        "{name} is in no package registry: download its binary version yourself and put \
         the folder holding {files} at {places} (or pass that folder with --data-dir)"
    )]
    Cifar {
        /// `CIFAR-10` or `CIFAR-100`.
        name: &'static str,
        /// The files the folder must hold.
        files: &'static str,
        /// Every place looked at, joined by ` or `.
        places: String,
    },
    /// The name is none of the image sets.
    #[error(
        "unknown data set `{0}`: digits, fashion-mnist, mnist, cifar10, cifar100 or border-half"
    )]
    Unknown(String),
    /// The files are there but could not be parsed.
    #[error(transparent)]
    Data(#[from] DataError),
}

/// A loaded data set: a pool of training images (split later into train and
/// validation by the run's seed) and a test pool.
#[derive(Debug, Clone)]
pub struct ImageData {
    /// Which data set.
    pub name: ImageSetName,
    train_set: Arc<ImageDataset>,
    train_pool: Vec<usize>,
    test_set: Arc<ImageDataset>,
    test_pool: Vec<usize>,
    mean: f32,
    std: f32,
}

impl ImageData {
    /// Loads `name` from the data location of `dir` (`--data-dir`, else
    /// `SPARSELAND_DATA`, else the defaults); unused for the embedded digits.
    /// CIFAR-10 (CIFAR-100) is read from `dir` itself when it holds the batches,
    /// else from `cifar-10-batches-bin/` or `cifar10/` (`cifar-100-binary/` or
    /// `cifar100/`) under the location's roots.
    pub fn load(name: ImageSetName, dir: Option<&Path>) -> Result<Self, ImageLoadError> {
        match name {
            ImageSetName::Digits => Ok(Self::digits()?),
            ImageSetName::BorderHalf => Ok(Self::border_half()?),
            ImageSetName::FashionMnist | ImageSetName::Mnist => {
                let location = DataLocation::from_process(dir);
                let path = match catalogue::find(name.as_str())?.resolve(&location)? {
                    Presence::OnDisk(path) => path,
                    Presence::Embedded => unreachable_embedded(name)?,
                };
                let tt = idx::load_mnist_dir(&path)?;
                Ok(Self::from_sets(name, tt.train, tt.test))
            }
            ImageSetName::Cifar10 => {
                let dir = cifar_dir(&CIFAR10, &DataLocation::from_process(dir), dir)?;
                let tt = cifar::load_cifar10_dir(dir)?;
                Ok(Self::from_sets(name, tt.train, tt.test))
            }
            ImageSetName::Cifar100 => {
                let dir = cifar_dir(&CIFAR100, &DataLocation::from_process(dir), dir)?;
                let tt = cifar::load_cifar100_dir(dir, cifar::Cifar100Label::Fine)?;
                Ok(Self::from_sets(name, tt.train, tt.test))
            }
        }
    }

    /// The embedded digits with the fixed 360-image test split.
    pub fn digits() -> Result<Self, DataError> {
        let all = digits::embedded()?;
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(DIGITS_SPLIT_SEED));
        let mut test_pool = order[..DIGITS_TEST_SIZE].to_vec();
        let mut train_pool = order[DIGITS_TEST_SIZE..].to_vec();
        test_pool.sort_unstable();
        train_pool.sort_unstable();
        let (mean, std) = pixel_moments(&all, &train_pool)?;
        let all = Arc::new(all);
        Ok(Self {
            name: ImageSetName::Digits,
            train_set: Arc::clone(&all),
            train_pool,
            test_set: all,
            test_pool,
            mean,
            std,
        })
    }

    /// The generated border-half task: [`BORDER_HALF_TRAIN`] training and
    /// [`BORDER_HALF_TEST`] test images from their fixed seeds.
    pub fn border_half() -> Result<Self, DataError> {
        let (train, _) = border_half::generate(BORDER_HALF_TRAIN, border_half::TRAIN_SEED)?;
        let (test, _) = border_half::generate(BORDER_HALF_TEST, border_half::TEST_SEED)?;
        Ok(Self::from_sets(ImageSetName::BorderHalf, train, test))
    }

    fn from_sets(name: ImageSetName, train: ImageDataset, test: ImageDataset) -> Self {
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
            train_set: Arc::new(train),
            train_pool,
            test_set: Arc::new(test),
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

    /// The first `n` training and `m` test images of this set, sharing its pixels
    /// (the normalisation stays that of the whole training set).
    pub fn limited(&self, n_train: Option<usize>, n_test: Option<usize>) -> Self {
        Self {
            name: self.name,
            train_set: Arc::clone(&self.train_set),
            train_pool: self.train_pool.clone(),
            test_set: Arc::clone(&self.test_set),
            test_pool: self.test_pool.clone(),
            mean: self.mean,
            std: self.std,
        }
        .truncated(n_train, n_test)
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

    /// The training images (every one, whatever [`Self::train_pool`] keeps), e.g. as
    /// the real samples of a GAN.
    pub fn train_set(&self) -> &ImageDataset {
        &self.train_set
    }

    /// The clean test images (e.g. to build a corrupted copy, see
    /// [`corrupt`](mod@crate::data::corrupt)).
    pub fn test_set(&self) -> &ImageDataset {
        &self.test_set
    }

    /// A batch of `set`'s images at `indices`, normalised with this data set's
    /// statistics: how a model trained on this set sees images from elsewhere (a
    /// corrupted copy of its test set, another data set).
    pub fn normalised(
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

/// The CIFAR folder of `layout`: `dir` itself when it holds the batches (the folder
/// given with `--data-dir`), else one of its folder names under the location's roots.
fn cifar_dir(
    layout: &CifarLayout,
    location: &DataLocation,
    dir: Option<&Path>,
) -> Result<PathBuf, ImageLoadError> {
    let holds_batches = |d: &Path| d.join(layout.marker).is_file();
    if let Some(d) = dir.filter(|d| holds_batches(d)) {
        return Ok(d.to_path_buf());
    }
    let mut roots = vec![location.fetch_root().to_path_buf()];
    roots.extend(location.shared_roots().iter().cloned());
    let candidates: Vec<PathBuf> = roots
        .iter()
        .flat_map(|root| layout.dirs.iter().map(move |name| root.join(name)))
        .collect();
    candidates
        .iter()
        .find(|d| holds_batches(d))
        .cloned()
        .ok_or_else(|| ImageLoadError::Cifar {
            name: layout.name,
            files: layout.files,
            places: candidates
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" or "),
        })
}

/// The catalogue stores MNIST-like sets as fetched folders; an embedded entry
/// would be a catalogue change this crate does not know how to read.
fn unreachable_embedded(name: ImageSetName) -> Result<PathBuf, ImageLoadError> {
    Err(ImageLoadError::Data(DataError::Argument {
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
