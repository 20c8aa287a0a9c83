//! `border-half`: a seeded 48×48 two-class image task that a network can solve only
//! if one unit sees a marker and an image border at once, so that the receptive field
//! decides (SLaK's large kernels against a 3×3 ConvNeXt).
//!
//! The image is a 24×24 grid of 2×2-pixel cells on a black background with one white
//! marker cell. Label 0 puts the marker [`MIN_DISTANCE`] to [`MAX_DISTANCE`] pixels
//! below the top border, label 1 as far above the bottom border; its column is
//! uniform over the whole row in both classes.
//!
//! Why the receptive field decides: a convolutional unit whose window spans `w`
//! pixels sees the padding beyond a border and a marker `d` pixels inside it together
//! only if `w ≥ d + 2`. For every window of at most [`MIN_DISTANCE`] + 1 pixels, the
//! local pictures of the two classes are the same in law (a marker far
//! from any top or bottom border, or a border with nothing in view), so after global
//! pooling such a network stays at chance however long it trains. A network whose
//! units span `MAX_DISTANCE` + 2 pixels or more sees every marker with its border.
//! The background is constant on purpose: grey noise under a LayerNorm right after
//! the stem gives every noise position full scale and pooling buries the marker.
//!
//! (An earlier task of the family, two markers on a row against two on a column,
//! carried its class only in the relation of the two markers, a second-order signal
//! that no small ConvNeXt learned in our budgets; see the slak crate's README.)

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DataError, ImageDataset};

/// Image side in pixels.
pub const SIDE: usize = 48;
/// Cell side in pixels.
pub const CELL: usize = 2;
/// Cells per row and column.
pub const GRID: usize = SIDE / CELL;
/// The least distance in pixels between the marker and its border.
pub const MIN_DISTANCE: usize = 16;
/// The largest distance in pixels between the marker and its border.
pub const MAX_DISTANCE: usize = 22;
/// The marker's grey value.
pub const MARKER: u8 = 255;
/// The seed of the training images.
pub const TRAIN_SEED: u64 = 2207_03620;
/// The seed of the test images.
pub const TEST_SEED: u64 = 2207_03621;

/// The marker cell `(row, col)` of an image of `label` whose marker lies
/// `distance` pixels from its border (a multiple of [`CELL`]).
pub fn marker_cell(label: u32, distance: usize, col: usize) -> (usize, usize) {
    let cells = distance / CELL;
    if label == 0 {
        (cells, col)
    } else {
        (GRID - 1 - cells, col)
    }
}

/// `n` border-half images from `seed` (grey, 48×48, two classes), with each image's
/// marker cell. Labels alternate 0, 1, 0, … so that every even-sized prefix (a
/// preset's first `k` test images) is balanced exactly.
pub fn generate(n: usize, seed: u64) -> Result<(ImageDataset, Vec<(usize, usize)>), DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let distances: Vec<usize> = (MIN_DISTANCE..=MAX_DISTANCE).step_by(CELL).collect();
    let mut pixels = vec![0u8; n * SIDE * SIDE];
    let mut markers = Vec::with_capacity(n);
    for (image, &label) in pixels.chunks_exact_mut(SIDE * SIDE).zip(&labels) {
        let distance = distances[rng.random_range(0..distances.len())];
        let (row, col) = marker_cell(label, distance, rng.random_range(0..GRID));
        for dy in 0..CELL {
            let start = (row * CELL + dy) * SIDE + col * CELL;
            image[start..start + CELL].fill(MARKER);
        }
        markers.push((row, col));
    }
    let set = ImageDataset::new(pixels, labels, 1, SIDE, SIDE, 2, u8::MAX)?;
    Ok((set, markers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ClassificationSet;

    /// The distance in pixels from the marker's nearest pixel to the border its
    /// label names.
    fn distance_to_border(label: u32, (row, _): (usize, usize)) -> usize {
        if label == 0 {
            row * CELL
        } else {
            SIDE - (row + 1) * CELL
        }
    }

    #[test]
    fn every_image_holds_one_marker_at_the_distance_of_its_label() {
        let (set, markers) = generate(501, 7).unwrap();
        assert_eq!(set.len(), 501);
        for prefix in [2, 100, 500] {
            let ones = set.labels()[..prefix].iter().filter(|&&l| l == 1).count();
            assert_eq!(2 * ones, prefix, "balanced exactly");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, &cell) in markers.iter().enumerate() {
            let label = set.labels()[i];
            let distance = distance_to_border(label, cell);
            assert!(
                (MIN_DISTANCE..=MAX_DISTANCE).contains(&distance),
                "{distance}"
            );
            seen.insert(distance);
            let image = set.image(i).unwrap();
            let lit: Vec<usize> = (0..SIDE * SIDE).filter(|&p| image[p] == MARKER).collect();
            assert_eq!(lit.len(), CELL * CELL);
            assert!(image.iter().all(|&p| p == MARKER || p == 0));
            assert!(
                lit.iter()
                    .all(|&p| p / SIDE / CELL == cell.0 && p % SIDE / CELL == cell.1)
            );
        }
        assert_eq!(seen.len(), (MAX_DISTANCE - MIN_DISTANCE) / CELL + 1);
    }

    /// Two histograms over `per_class` draws each agree within 5 binomial sd.
    fn assert_same_law(a: &[f64], b: &[f64], per_class: f64) {
        for (bin, (&x, &y)) in a.iter().zip(b).enumerate() {
            let (p0, p1) = (x / per_class, y / per_class);
            let sd = (p0 * (1.0 - p0) / per_class).sqrt().max(1e-3);
            assert!(
                (p0 - p1).abs() < 5.0 * sd * 2f64.sqrt(),
                "{bin}: {p0} vs {p1}"
            );
        }
    }

    #[test]
    fn the_classes_are_mirror_images_in_law() {
        // the marker's column is uniform in both classes and its distance to its own
        // border follows one law: the classes differ only by which border that is
        let n = 20_000;
        let (set, markers) = generate(n, 11).unwrap();
        let mut by_distance = [[0f64; SIDE]; 2];
        let mut by_col = [[0f64; GRID]; 2];
        for (&cell, &label) in markers.iter().zip(set.labels()) {
            by_distance[label as usize][distance_to_border(label, cell)] += 1.0;
            by_col[label as usize][cell.1] += 1.0;
        }
        let per_class = n as f64 / 2.0;
        assert_same_law(&by_distance[0], &by_distance[1], per_class);
        assert_same_law(&by_col[0], &by_col[1], per_class);
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
