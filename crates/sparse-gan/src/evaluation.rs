//! Scoring a generator without an Inception network: on a mixture the exact energy
//! distance and MMD to the mixture, modes covered and the share of high-quality
//! samples; on images the Fréchet distance and KID between the feature network's
//! features of generated and of real test images, and the classes covered.
//!
//! Every score samples the same latent codes (the seed's `eval` stream), so `eval`
//! of a checkpoint reproduces training's numbers bit for bit.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use sparse_repro::rng::derive_rng;
use sparse_repro::sample_quality::{ModeCoverage, frechet_distance, kernel_distance};

use crate::data::GanData;
use crate::error::Result;
use crate::metrics::{energy_distance_to_mixture, mmd_to_mixture};
use crate::models::Generator;
use crate::training::latent_codes;

/// The MMD's kernel bandwidth on the mixtures.
pub const MMD_BANDWIDTH: f64 = 0.1;
/// A mode is covered when at least this share of the samples lies within 3σ of it
/// (PacGAN's rule: 20 of 2500).
pub const MODE_MIN_SHARE: f64 = 0.008;
/// Samples (of each side) in the KID, whose cost grows with the square.
pub const KID_SAMPLES: usize = 2000;
/// A class is covered when at least this share of the generated images is
/// classified into it.
pub const CLASS_MIN_SHARE: f64 = 0.01;
/// Images generated per forward pass.
const CHUNK: usize = 500;

/// The score every claim compares: the energy distance on a mixture, the Fréchet
/// distance (FID proxy) on images; smaller is better.
pub const SAMPLE_DISTANCE: &str = "sample_distance";

/// `n` samples of `generator` (in evaluation mode) for the seed's evaluation codes.
pub fn samples(generator: &Generator, latent: usize, n: usize, seed: u64) -> Result<Tensor> {
    let z = latent_codes(n, latent, &mut derive_rng(seed, "eval"))?;
    if let Generator::Mlp(_) = generator {
        return generator.forward(&z, false);
    }
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < n {
        let len = CHUNK.min(n - start);
        chunks.push(generator.forward(&z.narrow(0, start, len)?, false)?);
        start += len;
    }
    Ok(Tensor::cat(&chunks, 0)?)
}

/// 2-D points of a `[n, 2]` tensor.
pub fn points(samples: &Tensor) -> Result<Vec<[f64; 2]>> {
    Ok(samples
        .to_dtype(DType::F64)?
        .to_vec2::<f64>()?
        .iter()
        .map(|p| [p[0], p[1]])
        .collect())
}

/// Every score of `n` samples of `generator` against `data`.
pub fn score(
    data: &GanData,
    generator: &Generator,
    latent: usize,
    n: usize,
    seed: u64,
) -> Result<BTreeMap<String, f64>> {
    let x = samples(generator, latent, n, seed)?;
    let mut scores = BTreeMap::new();
    match data {
        GanData::Mixture(mixture) => {
            let points = points(&x)?;
            let flat: Vec<f64> = points.iter().flatten().copied().collect();
            let modes: Vec<Vec<f64>> = mixture.modes().iter().map(|m| m.to_vec()).collect();
            let coverage =
                ModeCoverage::measure(&flat, 2, &modes, mixture.std(), 3.0, MODE_MIN_SHARE)?;
            scores.insert(
                SAMPLE_DISTANCE.into(),
                energy_distance_to_mixture(&points, mixture),
            );
            scores.insert(
                "mmd".into(),
                mmd_to_mixture(&points, mixture, MMD_BANDWIDTH),
            );
            scores.insert("modes_covered".into(), coverage.modes_covered as f64);
            scores.insert("modes".into(), modes.len() as f64);
            scores.insert("high_quality".into(), coverage.high_quality);
        }
        GanData::Images(task) => {
            let dim = task.features.dim();
            let (features, labels) = task.features.predict(&x)?;
            scores.insert(
                SAMPLE_DISTANCE.into(),
                frechet_distance(&features, &task.reference, dim)?,
            );
            let kid_rows = KID_SAMPLES.min(n).min(task.reference.len() / dim);
            scores.insert(
                "kid".into(),
                kernel_distance(
                    &features[..kid_rows * dim],
                    &task.reference[..kid_rows * dim],
                    dim,
                )?,
            );
            let classes = task.data.num_classes();
            let mut counts = vec![0usize; classes];
            for l in labels {
                if l < classes {
                    counts[l] += 1;
                }
            }
            let covered = counts
                .iter()
                .filter(|&&c| c as f64 >= CLASS_MIN_SHARE * n as f64)
                .count();
            scores.insert("classes_covered".into(), covered as f64);
            scores.insert("classes".into(), classes as f64);
        }
    }
    Ok(scores)
}
