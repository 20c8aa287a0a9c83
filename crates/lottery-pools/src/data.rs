//! The splits of one run: training, validation (the last images of the training
//! pool, as the official 45k/5k split), test, and a corrupted copy of the test
//! images for the "-C" numbers.
//!
//! The corrupted set follows sparse-data's CIFAR-C recipe
//! ([`sparse_data::data::corrupt`]) on a budget: instead of every test image under
//! each of the 9 corruptions at 5 severities (45 copies), the first `n` test images
//! are each corrupted once, by the 45 (corruption, severity) pairs in turn. Every
//! pair covers `n/45` images (±1), so the accuracy over the set is the pairs' mean
//! accuracy as CIFAR-C averages it, at 1/45 of the cost. The corruption seed is
//! fixed ([`CORRUPTION_SEED`]): every run and seed sees the same corrupted images.

use std::ops::Range;

use candle_core::{Device, Tensor};
use sparse_data::data::corrupt::{Corruption, corrupt, suite_seed};
use sparse_data::data::{ClassificationSet, ImageDataset};
use sparse_data::images::{ImageData, ImageSetName};

use crate::config::{DataSizes, severities};
use sparse_repro::HarnessResult;

use crate::error::Result;

/// The seed of the corrupted test set (the paper's arXiv number).
pub const CORRUPTION_SEED: u64 = 2208_10842;

/// Batch size of evaluation passes (no gradients, so larger is cheaper).
pub const EVAL_BATCH: usize = 500;

/// A run's data: the loaded set and the index lists of its splits.
#[derive(Debug, Clone)]
pub struct Splits {
    /// The loaded data set (normalisation statistics included).
    pub data: ImageData,
    /// Training-set indices trained on.
    pub train: Vec<usize>,
    /// Training-set indices held out for validation.
    pub validation: Vec<usize>,
    /// Training-set indices BatchNorm is recalibrated over.
    pub recalibration: Vec<usize>,
    /// Test-set indices.
    pub test: Vec<usize>,
    /// The corrupted test images, if the run has them.
    pub corrupted: Option<CorruptedTest>,
}

/// The corrupted test images and which (corruption, severity) made each block.
#[derive(Debug, Clone)]
pub struct CorruptedTest {
    /// The images, grouped by pair.
    pub images: ImageDataset,
    /// Each pair with the range of `images` it made.
    pub pairs: Vec<(Corruption, u8, Range<usize>)>,
}

impl Splits {
    /// Loads `name` and cuts it as `sizes` asks.
    pub fn load(
        name: ImageSetName,
        dir: Option<&std::path::Path>,
        sizes: &DataSizes,
    ) -> Result<Self> {
        Self::new(ImageData::load(name, dir)?, sizes)
    }

    /// Cuts `data` as `sizes` asks: the first `train_pool` training images, of which
    /// the last `validation_fraction` validate; the first `test` test images.
    pub fn new(data: ImageData, sizes: &DataSizes) -> Result<Self> {
        let data = data.limited(sizes.train_pool, sizes.test);
        let pool = data.train_pool().to_vec();
        let n_val = ((pool.len() as f64) * sizes.validation_fraction).round() as usize;
        if n_val == 0 || n_val >= pool.len() {
            return Err(sparse_repro::HarnessError::invalid(
                "validation_fraction",
                sizes.validation_fraction,
                format!(
                    "leaves no training or no validation image of {}",
                    pool.len()
                ),
            )
            .into());
        }
        let (train, validation) = pool.split_at(pool.len() - n_val);
        let recalibration = match sizes.recalibration {
            Some(n) => train[..n.min(train.len())].to_vec(),
            None => train.to_vec(),
        };
        let test = data.test_pool().to_vec();
        let corrupted = if sizes.corrupted > 0 {
            let n = sizes.corrupted.min(test.len());
            Some(corrupted_test(data.test_set(), &test[..n])?)
        } else {
            None
        };
        Ok(Self {
            data,
            train: train.to_vec(),
            validation: validation.to_vec(),
            recalibration,
            test,
            corrupted,
        })
    }

    /// Normalised batches of the training set at `indices`, `EVAL_BATCH` at a time.
    pub fn train_batches<'a>(
        &'a self,
        indices: &'a [usize],
    ) -> impl Iterator<Item = HarnessResult<(Tensor, Tensor)>> + 'a {
        indices
            .chunks(EVAL_BATCH)
            .map(|chunk| Ok(self.data.train_batch(chunk, &Device::Cpu)?))
    }

    /// Normalised batches of the test set.
    pub fn test_batches(&self) -> impl Iterator<Item = HarnessResult<(Tensor, Tensor)>> + '_ {
        self.test
            .chunks(EVAL_BATCH)
            .map(|chunk| Ok(self.data.test_batch(chunk, &Device::Cpu)?))
    }

    /// Normalised batches of the corrupted test set (none when there is none).
    pub fn corrupted_batches(&self) -> impl Iterator<Item = HarnessResult<(Tensor, Tensor)>> + '_ {
        let (set, n) = match &self.corrupted {
            Some(c) => (Some(&c.images), c.images.len()),
            None => (None, 0),
        };
        let indices: Vec<usize> = (0..n).collect();
        let chunks: Vec<Vec<usize>> = indices.chunks(EVAL_BATCH).map(<[_]>::to_vec).collect();
        chunks.into_iter().filter_map(move |chunk| {
            set.map(|set| Ok(self.data.normalised(set, &chunk, &Device::Cpu)?))
        })
    }
}

/// Image `i` of `test` (test-set indices) corrupted by pair `i mod 45`, grouped by pair.
fn corrupted_test(set: &ImageDataset, test: &[usize]) -> Result<CorruptedTest> {
    let pairs: Vec<(Corruption, u8)> = Corruption::ALL
        .iter()
        .flat_map(|&c| severities().into_iter().map(move |s| (c, s)))
        .collect();
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut blocks = Vec::new();
    for (k, &(corruption, severity)) in pairs.iter().enumerate() {
        let members: Vec<usize> = test.iter().copied().skip(k).step_by(pairs.len()).collect();
        if members.is_empty() {
            continue;
        }
        let clean = set.subset(&members)?;
        let noisy = corrupt(
            &clean,
            corruption,
            severity,
            suite_seed(CORRUPTION_SEED, corruption, severity),
        )?;
        let start = labels.len();
        pixels.extend_from_slice(noisy.pixels());
        labels.extend_from_slice(noisy.labels());
        blocks.push((corruption, severity, start..labels.len()));
    }
    let images = ImageDataset::new(
        pixels,
        labels,
        set.channels(),
        set.height(),
        set.width(),
        set.num_classes(),
        set.max_value(),
    )?;
    Ok(CorruptedTest {
        images,
        pairs: blocks,
    })
}
