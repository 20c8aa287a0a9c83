//! The data of one run: sparse-repro's image splits (training, validation as the
//! last images of the training pool like the official 45k/5k split, recalibration,
//! test) and a corrupted copy of the test images for the "-C" numbers.
//!
//! The corrupted set follows sparse-data's CIFAR-C recipe
//! ([`sparse_data::data::corrupt`](mod@sparse_data::data::corrupt)) on a budget: instead of every test image under
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
use sparse_repro::splits::{EVAL_BATCH, ImageSplits};

use crate::error::Result;

/// The seed of the corrupted test set (the paper's arXiv number).
pub const CORRUPTION_SEED: u64 = 2208_10842;

/// A run's data: sparse-repro's image splits and the corrupted test images.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Training, validation, recalibration and test index lists with their batches.
    pub images: ImageSplits,
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

    /// Cuts `data` as `sizes` asks (see [`ImageSplits::new`]) and corrupts the first
    /// `sizes.corrupted` test images.
    pub fn new(data: ImageData, sizes: &DataSizes) -> Result<Self> {
        let images = ImageSplits::new(data, &sizes.splits)?;
        let corrupted = if sizes.corrupted > 0 {
            let n = sizes.corrupted.min(images.test.len());
            Some(corrupted_test(images.data.test_set(), &images.test[..n])?)
        } else {
            None
        };
        Ok(Self { images, corrupted })
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
            set.map(|set| Ok(self.images.data.normalised(set, &chunk, &Device::Cpu)?))
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
