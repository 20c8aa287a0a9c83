//! What a GAN learns from: a 2-D Gaussian mixture (sampled on the fly) or an image
//! set with the FID proxy's feature network and the test set's reference features.

use std::path::Path;

use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use sparse_data::data::mixture::GaussianMixture2d;
use sparse_data::data::{ClassificationSet, ImageDataset};
use sparse_data::images::{ImageData, ImageSetName};
use sparse_repro::HarnessError;
use sparse_repro::batch::BatchIndices;

use crate::error::Result;
use crate::features::{FeatureNet, real_images};

/// Test images whose features are the Fréchet distance's reference.
pub const REFERENCE_IMAGES: usize = 10_000;

/// The mixtures by name.
pub const MIXTURES: [&str; 2] = ["ring", "grid"];

/// A run's real data.
#[derive(Debug)]
pub enum GanData {
    /// 2-D points from a Gaussian mixture.
    Mixture(GaussianMixture2d),
    /// Images, with what scoring them needs.
    Images(Box<ImageTask>),
}

/// An image set with the trained feature network and the test images' features.
#[derive(Debug)]
pub struct ImageTask {
    /// The images.
    pub data: ImageData,
    /// The FID proxy's network.
    pub features: FeatureNet,
    /// Features of the first [`REFERENCE_IMAGES`] test images, row-major.
    pub reference: Vec<f64>,
}

impl GanData {
    /// `ring` or `grid` (generated), or an image set (`mnist`, `fashion-mnist`,
    /// `digits`, `cifar10`) read from `data_dir` or the data location; training the
    /// feature network takes seconds (about 10 s on MNIST).
    pub fn load(name: &str, data_dir: Option<&Path>) -> Result<Self> {
        match name {
            "ring" => return Ok(GanData::Mixture(GaussianMixture2d::ring())),
            "grid" => return Ok(GanData::Mixture(GaussianMixture2d::grid())),
            _ => {}
        }
        let set = ImageSetName::parse(name).ok_or_else(|| {
            HarnessError::invalid(
                "dataset",
                name,
                "use ring, grid, digits, mnist, fashion-mnist or cifar10",
            )
        })?;
        let data = ImageData::load(set, data_dir)?;
        let features = FeatureNet::train(&data)?;
        let pool: Vec<usize> = data
            .test_pool()
            .iter()
            .copied()
            .take(REFERENCE_IMAGES)
            .collect();
        let reference = features.predict(&real_images(data.test_set(), &pool)?)?.0;
        Ok(GanData::Images(Box::new(ImageTask {
            data,
            features,
            reference,
        })))
    }

    /// The real samples of a run, drawn from `rng`.
    pub(crate) fn sampler(&self, rng: ChaCha8Rng) -> RealSampler<'_> {
        match self {
            GanData::Mixture(mixture) => RealSampler::Mixture { mixture, rng },
            GanData::Images(task) => RealSampler::Images {
                set: task.data.train_set(),
                pool: task.data.train_pool(),
                rng,
                epoch: None,
            },
        }
    }

    /// `(channels, side)` of the images; `None` for a mixture.
    pub fn image(&self) -> Option<(usize, usize)> {
        match self {
            GanData::Mixture(_) => None,
            GanData::Images(task) => {
                let shape = task.data.input_shape();
                Some((shape.channels, shape.height))
            }
        }
    }
}

/// Real batches: fresh mixture points, or the training images in shuffled epochs
/// (the last, partial batch of an epoch kept, as the official loader does).
pub(crate) enum RealSampler<'a> {
    Mixture {
        mixture: &'a GaussianMixture2d,
        rng: ChaCha8Rng,
    },
    Images {
        set: &'a ImageDataset,
        pool: &'a [usize],
        rng: ChaCha8Rng,
        epoch: Option<BatchIndices>,
    },
}

impl RealSampler<'_> {
    /// About `n` real samples (fewer at the end of an image epoch).
    pub(crate) fn next_batch(&mut self, n: usize) -> Result<Tensor> {
        match self {
            RealSampler::Mixture { mixture, rng } => {
                let points = mixture.sample(n, rng);
                let flat: Vec<f32> = points
                    .iter()
                    .flat_map(|q| [q[0] as f32, q[1] as f32])
                    .collect();
                Ok(Tensor::from_vec(flat, (points.len(), 2), &Device::Cpu)?)
            }
            RealSampler::Images {
                set,
                pool,
                rng,
                epoch,
            } => loop {
                if let Some(batch) = epoch.as_mut().and_then(Iterator::next) {
                    let indices: Vec<usize> = batch.iter().map(|&i| pool[i]).collect();
                    return real_images(*set, &indices);
                }
                if pool.is_empty() || set.is_empty() {
                    return Err(HarnessError::invalid("dataset", "", "no training images").into());
                }
                *epoch = Some(BatchIndices::shuffled(pool.len(), n, false, rng)?);
            },
        }
    }
}
