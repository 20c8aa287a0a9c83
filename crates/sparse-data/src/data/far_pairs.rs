//! `far-pairs`: a seeded 32×32 two-class image task whose label depends on context
//! far apart in the image, so that a network's receptive field matters (SLaK's
//! large kernels against a 3×3 ConvNeXt).
//!
//! The image is a 16×16 grid of 2×2-pixel cells over grey noise (every pixel uniform
//! in `0..=32`). Two identical markers (cells at 255) are placed at least
//! [`MIN_GAP`] cells apart, on one row (label 0, "row pair") or on one column
//! (label 1, "column pair"): for a pair `(a, b)` drawn uniformly from the 36 ordered
//! pairs with `b − a ≥ 8` and a shared coordinate `r` drawn from the marginal of one
//! end of such a pair, label 0 puts them at `(r, a)` and `(r, b)`, label 1 at `(a, r)`
//! and `(b, r)`.
//!
//! By construction every single-marker statistic is the same in both classes: each
//! marker's cell is distributed as `f(row)·f(col)` either way (`f` the marginal of one
//! end of a pair), every image holds exactly two markers, and the background is
//! label-free. Only the *relation* between the two markers, at least 18 pixels apart
//! along the separating axis, tells the classes apart: a network has to see both at
//! once, or encode their absolute positions and compare them after pooling.
//!
//! Known limitation: because the class signal is the relation of the two markers
//! alone (second order), small ConvNeXt-style networks at a few epochs stay at chance
//! on it (measured with slak's mini-SLaK, large kernels included), and with the noise
//! background a LayerNorm right after the stem gives every noise position full scale,
//! so pooling buries the markers. Treat it as a hard benchmark, not a calibrated one.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DataError, ImageDataset};

/// Image side in pixels.
pub const SIDE: usize = 32;
/// Cell side in pixels.
pub const CELL: usize = 2;
/// Cells per row and column.
pub const GRID: usize = SIDE / CELL;
/// The least distance, in cells, between the two markers.
pub const MIN_GAP: usize = 8;
/// The markers' grey value.
pub const MARKER: u8 = 255;
/// The largest background grey value.
pub const BACKGROUND_MAX: u8 = 32;
/// The seed of the training images.
pub const TRAIN_SEED: u64 = 2207_03620;
/// The seed of the test images.
pub const TEST_SEED: u64 = 2207_03621;

/// The 36 ordered cell pairs `(a, b)` with `b − a ≥ MIN_GAP`.
pub fn pairs() -> Vec<(usize, usize)> {
    (0..GRID)
        .flat_map(|a| (a + MIN_GAP..GRID).map(move |b| (a, b)))
        .collect()
}

/// The smallest pixel span of the two markers along the axis that separates them:
/// from the first pixel of one to the last of the other.
pub fn min_span_px() -> usize {
    MIN_GAP * CELL + CELL
}

/// The two marker cells `(row, col)` of one image.
pub type Markers = [(usize, usize); 2];

/// Where the markers of an image of `label` go, for the pair `(a, b)` and the shared
/// coordinate `r`.
pub fn marker_cells(label: u32, (a, b): (usize, usize), r: usize) -> Markers {
    if label == 0 {
        [(r, a), (r, b)]
    } else {
        [(a, r), (b, r)]
    }
}

/// One image's label and marker cells, drawn from `rng`.
fn draw(label: u32, pairs: &[(usize, usize)], rng: &mut ChaCha8Rng) -> Markers {
    let pair = pairs[rng.random_range(0..pairs.len())];
    // the shared coordinate follows one end of an independent uniform pair
    let other = pairs[rng.random_range(0..pairs.len())];
    let r = if rng.random_bool(0.5) {
        other.0
    } else {
        other.1
    };
    marker_cells(label, pair, r)
}

/// `n` far-pairs images from `seed` (grey, 32×32, two classes, labels balanced
/// exactly: `n/2` of each, the odd one out of class 0), with each image's marker
/// cells.
pub fn generate(n: usize, seed: u64) -> Result<(ImageDataset, Vec<Markers>), DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    labels.shuffle(&mut rng);
    let pairs = pairs();
    let mut pixels = vec![0u8; n * SIDE * SIDE];
    let mut markers = Vec::with_capacity(n);
    for (image, &label) in pixels.chunks_exact_mut(SIDE * SIDE).zip(&labels) {
        for p in image.iter_mut() {
            *p = rng.random_range(0..=BACKGROUND_MAX);
        }
        let cells = draw(label, &pairs, &mut rng);
        for (row, col) in cells {
            for dy in 0..CELL {
                let start = (row * CELL + dy) * SIDE + col * CELL;
                image[start..start + CELL].fill(MARKER);
            }
        }
        markers.push(cells);
    }
    let set = ImageDataset::new(pixels, labels, 1, SIDE, SIDE, 2, u8::MAX)?;
    Ok((set, markers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ClassificationSet;

    #[test]
    fn every_image_holds_two_far_markers_on_its_label_axis() {
        assert_eq!(pairs().len(), 36);
        assert_eq!(min_span_px(), 18);
        let (set, markers) = generate(501, 7).unwrap();
        assert_eq!(set.len(), 501);
        let ones = set.labels().iter().filter(|&&l| l == 1).count();
        assert_eq!(ones, 250, "balanced exactly");
        for (i, cells) in markers.iter().enumerate() {
            let [(r0, c0), (r1, c1)] = *cells;
            let label = set.labels()[i];
            if label == 0 {
                assert_eq!(r0, r1);
                assert!(c1 >= c0 + MIN_GAP);
            } else {
                assert_eq!(c0, c1);
                assert!(r1 >= r0 + MIN_GAP);
            }
            let image = set.image(i).unwrap();
            assert_eq!(
                image.iter().filter(|&&p| p == MARKER).count(),
                2 * CELL * CELL
            );
            assert!(image.iter().all(|&p| p == MARKER || p <= BACKGROUND_MAX));
        }
    }

    #[test]
    fn a_marker_alone_does_not_tell_the_classes_apart() {
        // per class, how often a marker falls on each row and on each column: the
        // two classes draw from the same law f(row)·f(col)
        let n = 20_000;
        let (set, markers) = generate(n, 11).unwrap();
        let mut rows = [[0f64; GRID]; 2];
        let mut cols = [[0f64; GRID]; 2];
        for (cells, &label) in markers.iter().zip(set.labels()) {
            for &(r, c) in cells {
                rows[label as usize][r] += 1.0;
                cols[label as usize][c] += 1.0;
            }
        }
        let per_class = n as f64; // two markers per image, n/2 images per class
        for cell in 0..GRID {
            for hist in [&rows, &cols] {
                let (p0, p1) = (hist[0][cell] / per_class, hist[1][cell] / per_class);
                let sd = (p0 * (1.0 - p0) / per_class).sqrt().max(1e-3);
                assert!(
                    (p0 - p1).abs() < 5.0 * sd * 2f64.sqrt(),
                    "{cell}: {p0} vs {p1}"
                );
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_images() {
        let (a, _) = generate(64, 3).unwrap();
        let (b, _) = generate(64, 3).unwrap();
        let (c, _) = generate(64, 4).unwrap();
        assert_eq!(a.pixels(), b.pixels());
        assert_ne!(a.pixels(), c.pixels());
    }
}
