//! Corrupted copies of an [`ImageDataset`], after the CIFAR-C recipe
//! (Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to
//! Common Corruptions and Perturbations"): an out-of-distribution test set
//! with the same labels, shape and pixel scale as the clean one.
//!
//! [`corrupt`] applies one [`Corruption`] at one severity (1..=5) to every
//! image; [`corrupted_suite`] builds every (corruption, severity) pair, for a
//! "-C" accuracy averaged over corruptions and severities.
//!
//! Pixels are taken to `[0, 1]` (divided by [`ImageDataset::max_value`]),
//! corrupted, clipped to `[0, 1]` and rounded back to the same `max_value`.
//! Random corruptions draw image `i`'s noise from `ChaCha8Rng` seeded with
//! the seed on stream `i`, so an image's noise depends only on the seed, its
//! index and its own pixels, never on the other images or on the order (or
//! the thread) in which images are processed.
//!
//! # Severity parameters
//!
//! The five levels are those of the recipe's 32×32 (CIFAR) version:
//!
//! | corruption | parameter | severities 1..5 |
//! |---|---|---|
//! | gaussian-noise | σ of `x + N(0, σ²)` | 0.04, 0.06, 0.08, 0.09, 0.10 |
//! | shot-noise | rate λ of `Poisson(λx)/λ` | 500, 250, 100, 75, 50 |
//! | impulse-noise | fraction of values set to 0 or 1 | 0.01, 0.02, 0.03, 0.05, 0.07 |
//! | speckle-noise | σ of `x + x·N(0, σ²)` | 0.06, 0.10, 0.12, 0.16, 0.20 |
//! | gaussian-blur | σ (pixels) | 0.4, 0.6, 0.7, 0.8, 1.0 |
//! | defocus-blur | (disk radius, anti-alias σ) (pixels) | (0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1) |
//! | contrast | factor `c` of `(x − m)·c + m` | 0.75, 0.5, 0.4, 0.3, 0.15 |
//! | brightness | added to the HSV value | 0.05, 0.1, 0.15, 0.2, 0.3 |
//! | pixelate | side kept, `⌊side·f⌋` | 0.95, 0.9, 0.85, 0.75, 0.65 |
//!
//! # Image size
//!
//! Only the blurs are defined in pixels. For images **larger** than 32×32
//! their lengths (σ, disk radius, anti-alias σ) are multiplied by
//! `min(height, width) / 32`, so they cover the same fraction of the image.
//! For images of 32×32 **or smaller** they are kept in pixels: scaled down,
//! they vanish (at 8×8, σ = 1 × 8/32 gives a neighbour weight of
//! `e⁻⁸ ≈ 3·10⁻⁴`, less than half a grey level at the digits' 16 levels, so
//! every level would be the identity), and the disk kernel is discrete, so a
//! scaled radius can shrink a level's kernel below the previous level's (at
//! 28×28, level 4's radius 0.875 would leave a single pixel). Pixelation is
//! relative to the side already: a side of `n` is shrunk to
//! `max(1, ⌊n·f⌋)` (8 → 7, 7, 6, 6, 5; 28 → 26, 25, 23, 21, 18; 32 → 30, 28,
//! 27, 24, 20). The noises, contrast and brightness act per value and do not
//! depend on the size.
//!
//! # Left out
//!
//! Glass, motion and zoom blur, snow, frost, fog, spatter, elastic transform,
//! saturate and JPEG compression (no JPEG codec among the dependencies).

mod ops;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{ClassificationSet, DataError, ImageDataset};
use ops::Shape;

/// The highest severity; severities run from 1 to `MAX_SEVERITY`.
pub const MAX_SEVERITY: u8 = 5;

/// The side length (pixels) the recipe's blur parameters are given for.
const RECIPE_SIDE: f64 = 32.0;

/// One corruption of the CIFAR-C recipe (see the [module docs](self) for the
/// parameters of each severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Corruption {
    /// Additive Gaussian noise on every value.
    GaussianNoise,
    /// Poisson (photon) noise: `Poisson(λx)/λ`.
    ShotNoise,
    /// Salt-and-pepper noise: a fraction of the values set to 0 or 1.
    ImpulseNoise,
    /// Multiplicative Gaussian noise: `x + x·N(0, σ²)`.
    SpeckleNoise,
    /// Gaussian blur, edges extended by their nearest pixel.
    GaussianBlur,
    /// Blur by an anti-aliased disk kernel, edges mirrored.
    DefocusBlur,
    /// Each channel pulled towards its mean over the image.
    Contrast,
    /// The HSV value raised (for one channel: the value itself).
    Brightness,
    /// Shrunk by area averaging, enlarged back by nearest neighbour.
    Pixelate,
}

impl Corruption {
    /// Every corruption, in the order of the recipe (noise, blur, digital).
    pub const ALL: [Corruption; 9] = [
        Corruption::GaussianNoise,
        Corruption::ShotNoise,
        Corruption::ImpulseNoise,
        Corruption::SpeckleNoise,
        Corruption::GaussianBlur,
        Corruption::DefocusBlur,
        Corruption::Contrast,
        Corruption::Brightness,
        Corruption::Pixelate,
    ];

    /// The kebab-case name, e.g. `"gaussian-noise"` (what [`FromStr`] parses).
    pub fn name(self) -> &'static str {
        match self {
            Corruption::GaussianNoise => "gaussian-noise",
            Corruption::ShotNoise => "shot-noise",
            Corruption::ImpulseNoise => "impulse-noise",
            Corruption::SpeckleNoise => "speckle-noise",
            Corruption::GaussianBlur => "gaussian-blur",
            Corruption::DefocusBlur => "defocus-blur",
            Corruption::Contrast => "contrast",
            Corruption::Brightness => "brightness",
            Corruption::Pixelate => "pixelate",
        }
    }

    /// `true` for the corruptions that draw random numbers (the noises); the
    /// others ignore the seed.
    pub fn is_random(self) -> bool {
        matches!(
            self,
            Corruption::GaussianNoise
                | Corruption::ShotNoise
                | Corruption::ImpulseNoise
                | Corruption::SpeckleNoise
        )
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Corruption {
    type Err = DataError;

    /// Parses a kebab-case name (case-insensitive; `_` accepted for `-`).
    /// An unknown name gives an error naming `corruption` and listing the
    /// valid names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Corruption::ALL
            .into_iter()
            .find(|c| c.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Corruption::ALL.iter().map(|c| c.name()).collect();
                DataError::argument(
                    "corruption",
                    format!("unknown corruption {s:?}; valid: {}", names.join(", ")),
                )
            })
    }
}

/// The recipe's parameter for `severity` (1-based, checked by the caller).
fn level<T: Copy>(levels: [T; 5], severity: u8) -> T {
    levels[usize::from(severity) - 1]
}

/// Checks that `severity` is in `1..=MAX_SEVERITY`.
fn check_severity(severity: u8) -> Result<(), DataError> {
    if (1..=MAX_SEVERITY).contains(&severity) {
        Ok(())
    } else {
        Err(DataError::argument(
            "severity",
            format!("must be in 1..={MAX_SEVERITY}, got {severity}"),
        ))
    }
}

/// The random stream of image `index` under `seed`.
fn image_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Corrupts one image (values in `[0, 1]`, CHW) in place.
fn corrupt_values(
    values: &mut [f32],
    shape: Shape,
    corruption: Corruption,
    severity: u8,
    rng: &mut ChaCha8Rng,
) {
    // Blur lengths grow with the image above the recipe's 32×32 only (module docs).
    let side = shape.height.min(shape.width) as f64;
    let length_scale = (side / RECIPE_SIDE).max(1.0);
    match corruption {
        Corruption::GaussianNoise => {
            ops::gaussian_noise(values, level([0.04, 0.06, 0.08, 0.09, 0.10], severity), rng)
        }
        Corruption::ShotNoise => ops::shot_noise(
            values,
            level([500.0, 250.0, 100.0, 75.0, 50.0], severity),
            rng,
        ),
        Corruption::ImpulseNoise => {
            ops::impulse_noise(values, level([0.01, 0.02, 0.03, 0.05, 0.07], severity), rng)
        }
        Corruption::SpeckleNoise => {
            ops::speckle_noise(values, level([0.06, 0.10, 0.12, 0.16, 0.20], severity), rng)
        }
        Corruption::GaussianBlur => {
            let sigma = level([0.4, 0.6, 0.7, 0.8, 1.0], severity) * length_scale;
            ops::gaussian_blur(values, shape, sigma);
        }
        Corruption::DefocusBlur => {
            let (radius, alias) = level(
                [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)],
                severity,
            );
            let (half, kernel) = ops::disk_kernel(radius * length_scale, alias * length_scale);
            ops::filter(values, shape, half, &kernel);
        }
        Corruption::Contrast => {
            ops::contrast(values, shape, level([0.75, 0.5, 0.4, 0.3, 0.15], severity))
        }
        Corruption::Brightness => {
            ops::brightness(values, shape, level([0.05, 0.1, 0.15, 0.2, 0.3], severity))
        }
        Corruption::Pixelate => {
            let kept = level([0.95, 0.9, 0.85, 0.75, 0.65], severity);
            let low = |n: usize| ((n as f64 * kept).floor() as usize).max(1);
            ops::pixelate(values, shape, low(shape.height), low(shape.width));
        }
    }
}

/// Image `index` of `images` corrupted, as bytes at the same `max_value`.
fn corrupt_image(
    images: &ImageDataset,
    index: usize,
    corruption: Corruption,
    severity: u8,
    seed: u64,
) -> Vec<u8> {
    let pixels = images
        .image(index)
        .expect("index below the number of images");
    let max = f32::from(images.max_value());
    let mut values: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / max).collect();
    let shape = Shape {
        channels: images.channels(),
        height: images.height(),
        width: images.width(),
    };
    let mut rng = image_rng(seed, index);
    corrupt_values(&mut values, shape, corruption, severity, &mut rng);
    values
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * max).round() as u8)
        .collect()
}

/// A corrupted copy of `images`: `corruption` at `severity` (1..=5) applied
/// to every image, with the same labels, number of classes, shape and
/// `max_value`.
///
/// Values are corrupted in `[0, 1]` (pixel / `max_value`), clipped to
/// `[0, 1]` and rounded back. Random corruptions are reproducible from
/// `seed`: image `i` draws from `ChaCha8Rng::seed_from_u64(seed)` on stream
/// `i`, so its noise does not depend on the other images. The parameters of
/// each severity, and how they follow the image size, are in the
/// [module docs](self).
///
/// Fails with [`DataError::Argument`] naming `severity` when it is not in
/// `1..=5`.
///
/// ```
/// use sparse_data::data::{ClassificationSet, Corruption, ImageDataset, corrupt};
///
/// // Two 1×4×4 grey-scale images with values 0..=16.
/// let pixels: Vec<u8> = (0..32).map(|i| (i % 17) as u8).collect();
/// let clean = ImageDataset::new(pixels, vec![0, 1], 1, 4, 4, 2, 16)?;
/// let noisy = corrupt(&clean, Corruption::GaussianNoise, 3, 7)?;
/// assert_eq!(noisy.labels(), clean.labels());
/// assert_eq!(noisy.max_value(), 16);
/// assert_eq!(noisy, corrupt(&clean, "gaussian-noise".parse()?, 3, 7)?);
/// assert!(corrupt(&clean, Corruption::Contrast, 6, 7).is_err());
/// # Ok::<(), sparse_data::DataError>(())
/// ```
pub fn corrupt(
    images: &ImageDataset,
    corruption: Corruption,
    severity: u8,
    seed: u64,
) -> Result<ImageDataset, DataError> {
    check_severity(severity)?;
    let mut pixels = Vec::with_capacity(images.pixels().len());
    for index in 0..images.len() {
        pixels.extend(corrupt_image(images, index, corruption, severity, seed));
    }
    ImageDataset::new(
        pixels,
        images.labels().to_vec(),
        images.channels(),
        images.height(),
        images.width(),
        images.num_classes(),
        images.max_value(),
    )
}

/// The seed [`corrupted_suite`] gives `corrupt` for one (corruption,
/// severity) pair under the suite's `seed`: distinct pairs get unrelated
/// seeds (a SplitMix64 mix of the three).
pub fn suite_seed(seed: u64, corruption: Corruption, severity: u8) -> u64 {
    let tag = (corruption as u64) << 8 | u64::from(severity);
    let mut z = seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Every combination of `corruptions` and `severities`, corruption-major,
/// each built by [`corrupt`] with its own seed, [`suite_seed`]`(seed,
/// corruption, severity)`: the pieces of a "-C" test set, whose accuracy is
/// averaged over corruptions and severities.
///
/// Fails with [`DataError::Argument`] when either list is empty or a
/// severity is not in `1..=5` (checked before anything is corrupted).
pub fn corrupted_suite(
    images: &ImageDataset,
    corruptions: &[Corruption],
    severities: &[u8],
    seed: u64,
) -> Result<Vec<(Corruption, u8, ImageDataset)>, DataError> {
    if corruptions.is_empty() {
        return Err(DataError::argument("corruptions", "must not be empty"));
    }
    if severities.is_empty() {
        return Err(DataError::argument("severities", "must not be empty"));
    }
    for &severity in severities {
        check_severity(severity)?;
    }
    let mut suite = Vec::with_capacity(corruptions.len() * severities.len());
    for &corruption in corruptions {
        for &severity in severities {
            let set = corrupt(
                images,
                corruption,
                severity,
                suite_seed(seed, corruption, severity),
            )?;
            suite.push((corruption, severity, set));
        }
    }
    Ok(suite)
}
