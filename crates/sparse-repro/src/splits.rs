//! The splits of an image run as the official CIFAR codes cut them: training,
//! validation (the **last** images of the training pool, as their 45k/5k split),
//! a BatchNorm-recalibration subset of the training split, and test; with the
//! evaluation batches of each.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sparse_data::images::ImageData;

use crate::error::{HarnessError, HarnessResult};

/// Batch size of evaluation passes (no gradients, so larger is cheaper).
pub const EVAL_BATCH: usize = 500;

/// How much of an image set a run uses (`None`: all of it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitSizes {
    /// Training images, validation included (the first ones of the training set).
    pub train_pool: Option<usize>,
    /// Share of those held out for validation, the last ones (official: 5k of 50k).
    pub validation_fraction: f64,
    /// Test images (the first ones of the test set).
    pub test: Option<usize>,
    /// Training images BatchNorm is recalibrated over (the first ones of the
    /// training split; `None`: the whole split, as `update_bn` does).
    pub recalibration: Option<usize>,
}

impl SplitSizes {
    /// Everything, 10 % of the training set held out.
    pub fn full() -> Self {
        Self {
            train_pool: None,
            validation_fraction: 0.1,
            test: None,
            recalibration: None,
        }
    }

    /// Checks the sizes (fractions in range, no empty part).
    pub fn validate(&self) -> HarnessResult<()> {
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return Err(HarnessError::invalid(
                "validation_fraction",
                self.validation_fraction,
                "must lie strictly between 0 and 1",
            ));
        }
        for (name, value) in [
            ("train_pool", self.train_pool),
            ("test", self.test),
            ("recalibration", self.recalibration),
        ] {
            if value == Some(0) {
                return Err(HarnessError::invalid(
                    name,
                    0,
                    "must be positive (or left out)",
                ));
            }
        }
        Ok(())
    }
}

/// A run's images: the loaded set and the index lists of its splits.
#[derive(Debug, Clone)]
pub struct ImageSplits {
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
}

impl ImageSplits {
    /// Cuts `data` as `sizes` asks: the first `train_pool` training images, of which
    /// the last `validation_fraction` validate; the first `test` test images.
    pub fn new(data: ImageData, sizes: &SplitSizes) -> HarnessResult<Self> {
        sizes.validate()?;
        let data = data.limited(sizes.train_pool, sizes.test);
        let pool = data.train_pool().to_vec();
        let n_val = ((pool.len() as f64) * sizes.validation_fraction).round() as usize;
        if n_val == 0 || n_val >= pool.len() {
            return Err(HarnessError::invalid(
                "validation_fraction",
                sizes.validation_fraction,
                format!(
                    "leaves no training or no validation image of {}",
                    pool.len()
                ),
            ));
        }
        let (train, validation) = pool.split_at(pool.len() - n_val);
        let recalibration = match sizes.recalibration {
            Some(n) => train[..n.min(train.len())].to_vec(),
            None => train.to_vec(),
        };
        let test = data.test_pool().to_vec();
        Ok(Self {
            data,
            train: train.to_vec(),
            validation: validation.to_vec(),
            recalibration,
            test,
        })
    }

    /// Normalised batches of the training set at `indices`, [`EVAL_BATCH`] at a time.
    pub fn train_batches<'a>(
        &'a self,
        indices: &'a [usize],
    ) -> impl Iterator<Item = HarnessResult<(Tensor, Tensor)>> + 'a {
        indices
            .chunks(EVAL_BATCH)
            .map(|chunk| Ok(self.data.train_batch(chunk, &Device::Cpu)?))
    }

    /// Normalised batches of the validation split.
    pub fn validation_batches(&self) -> impl Iterator<Item = HarnessResult<(Tensor, Tensor)>> + '_ {
        self.train_batches(&self.validation)
    }

    /// Normalised batches of the recalibration images.
    pub fn recalibration_batches(
        &self,
    ) -> impl Iterator<Item = HarnessResult<(Tensor, Tensor)>> + '_ {
        self.train_batches(&self.recalibration)
    }

    /// Normalised batches of the test split.
    pub fn test_batches(&self) -> impl Iterator<Item = HarnessResult<(Tensor, Tensor)>> + '_ {
        self.test
            .chunks(EVAL_BATCH)
            .map(|chunk| Ok(self.data.test_batch(chunk, &Device::Cpu)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_is_the_last_share_of_the_pool() {
        let data = ImageData::digits().unwrap();
        let sizes = SplitSizes {
            train_pool: Some(100),
            validation_fraction: 0.2,
            test: Some(30),
            recalibration: Some(50),
        };
        let s = ImageSplits::new(data.clone(), &sizes).unwrap();
        assert_eq!(
            (s.train.len(), s.validation.len(), s.test.len()),
            (80, 20, 30)
        );
        assert_eq!(s.validation, data.train_pool()[80..100].to_vec());
        assert_eq!(s.recalibration, s.train[..50].to_vec());
        let bad = SplitSizes {
            validation_fraction: 1.0,
            ..sizes
        };
        assert!(ImageSplits::new(data, &bad).is_err());
    }
}
