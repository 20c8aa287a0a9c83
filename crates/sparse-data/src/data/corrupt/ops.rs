//! The pixel operations behind [`super::corrupt`]: each works on one image
//! held as `f32` values in `[0, 1]`, channel-major (CHW), in place.
//!
//! Nothing here clips; [`super::corrupt`] clips once, when converting back to
//! bytes, as the CIFAR-C recipe does after every corruption.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};

/// The shape of one image: channels, height, width.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Shape {
    fn plane(&self) -> usize {
        self.height * self.width
    }
}

/// `x + N(0, sigma²)` on every value.
pub(super) fn gaussian_noise(values: &mut [f32], sigma: f64, rng: &mut ChaCha8Rng) {
    let normal = Normal::new(0.0, sigma).expect("noise scales are positive and finite");
    for v in values {
        *v += normal.sample(rng) as f32;
    }
}

/// `Poisson(x · rate) / rate` on every value (photon noise at `rate` photons
/// for a full-scale value).
pub(super) fn shot_noise(values: &mut [f32], rate: f64, rng: &mut ChaCha8Rng) {
    for v in values {
        let lambda = f64::from(v.max(0.0)) * rate;
        let count = if lambda > 0.0 {
            Poisson::new(lambda)
                .expect("lambda is positive and finite")
                .sample(rng)
        } else {
            0.0
        };
        *v = (count / rate) as f32;
    }
}

/// Salt-and-pepper noise: each value independently, with probability
/// `amount`, becomes 0 or 1 (even odds).
pub(super) fn impulse_noise(values: &mut [f32], amount: f64, rng: &mut ChaCha8Rng) {
    for v in values {
        if rng.random::<f64>() < amount {
            *v = if rng.random::<bool>() { 1.0 } else { 0.0 };
        }
    }
}

/// `x + x · N(0, sigma²)` on every value (multiplicative noise).
pub(super) fn speckle_noise(values: &mut [f32], sigma: f64, rng: &mut ChaCha8Rng) {
    let normal = Normal::new(0.0, sigma).expect("noise scales are positive and finite");
    for v in values {
        *v += *v * normal.sample(rng) as f32;
    }
}

/// `(x − m) · factor + m`, with `m` the mean of the channel over the image.
pub(super) fn contrast(values: &mut [f32], shape: Shape, factor: f32) {
    for plane in values.chunks_mut(shape.plane()) {
        let mean = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / plane.len() as f64;
        let mean = mean as f32;
        for v in plane {
            *v = (*v - mean) * factor + mean;
        }
    }
}

/// Raises the HSV value (`max(r, g, b)`) of every pixel by `delta`, capped at
/// 1, keeping hue and saturation.
///
/// With hue and saturation fixed every RGB component is proportional to the
/// value, so this scales the pixel by `v' / v` (a black pixel, saturation 0,
/// becomes the grey `v'`). With a number of channels other than 3, each value
/// is its own HSV value: `min(x + delta, 1)`.
pub(super) fn brightness(values: &mut [f32], shape: Shape, delta: f32) {
    let plane = shape.plane();
    if shape.channels != 3 {
        for v in values {
            *v = (*v + delta).min(1.0);
        }
        return;
    }
    let (r, rest) = values.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let value = r.max(*g).max(*b);
        let raised = (value + delta).min(1.0);
        if value > 0.0 {
            let scale = raised / value;
            *r *= scale;
            *g *= scale;
            *b *= scale;
        } else {
            (*r, *g, *b) = (raised, raised, raised);
        }
    }
}

/// The normalised 1-D Gaussian `exp(−i² / 2σ²)` for `i` in `−radius..=radius`.
fn gaussian_taps(sigma: f64, radius: usize) -> Vec<f32> {
    let r = radius as isize;
    let taps: Vec<f64> = (-r..=r)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = taps.iter().sum();
    taps.iter().map(|t| (t / total) as f32).collect()
}

/// Index `i` (possibly outside `0..n`) clamped to the edge (`aaa|abcd|ddd`).
fn clamp_index(i: isize, n: usize) -> usize {
    i.clamp(0, n as isize - 1) as usize
}

/// Index `i` (possibly outside `0..n`) mirrored without repeating the edge
/// (`dcb|abcd|cba`, OpenCV's default border).
fn reflect_index(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let i = i.rem_euclid(period);
    (if i >= n as isize { period - i } else { i }) as usize
}

/// Gaussian blur of every channel with standard deviation `sigma` (pixels),
/// the kernel truncated at `⌊4σ + 0.5⌋` pixels, edges extended by their
/// nearest pixel (scikit-image's `gaussian` defaults).
pub(super) fn gaussian_blur(values: &mut [f32], shape: Shape, sigma: f64) {
    let radius = (4.0 * sigma + 0.5) as usize;
    let taps = gaussian_taps(sigma, radius);
    let (h, w) = (shape.height, shape.width);
    let r = radius as isize;
    let mut tmp = vec![0.0f32; shape.plane()];
    for plane in values.chunks_mut(shape.plane()) {
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] = (-r..=r)
                    .map(|d| taps[(d + r) as usize] * plane[y * w + clamp_index(x as isize + d, w)])
                    .sum();
            }
        }
        for y in 0..h {
            for x in 0..w {
                plane[y * w + x] = (-r..=r)
                    .map(|d| taps[(d + r) as usize] * tmp[clamp_index(y as isize + d, h) * w + x])
                    .sum();
            }
        }
    }
}

/// The defocus kernel of the recipe: the aliased disk `x² + y² ≤ radius²` on
/// the integer grid, normalised, then anti-aliased by a 3×3 Gaussian of
/// standard deviation `alias_sigma` (5×5 for radii above 8). Returns the
/// kernel's half-width and its `(2·half + 1)²` weights, row-major.
pub(super) fn disk_kernel(radius: f64, alias_sigma: f64) -> (usize, Vec<f32>) {
    let alias = if radius <= 8.0 { 1 } else { 2 };
    let half = radius.ceil() as usize + alias;
    let side = 2 * half + 1;
    let h = half as isize;
    let mut disk = vec![0.0f64; side * side];
    for y in -h..=h {
        for x in -h..=h {
            if ((x * x + y * y) as f64) <= radius * radius {
                disk[((y + h) as usize) * side + (x + h) as usize] = 1.0;
            }
        }
    }
    let total: f64 = disk.iter().sum();
    disk.iter_mut().for_each(|d| *d /= total);
    let taps = gaussian_taps(alias_sigma, alias);
    let a = alias as isize;
    let mut kernel = vec![0.0f32; side * side];
    for y in 0..side as isize {
        for x in 0..side as isize {
            let mut sum = 0.0f64;
            for dy in -a..=a {
                for dx in -a..=a {
                    let (sy, sx) = (y + dy, x + dx);
                    if (0..side as isize).contains(&sy) && (0..side as isize).contains(&sx) {
                        sum += f64::from(taps[(dy + a) as usize] * taps[(dx + a) as usize])
                            * disk[sy as usize * side + sx as usize];
                    }
                }
            }
            kernel[y as usize * side + x as usize] = sum as f32;
        }
    }
    (half, kernel)
}

/// Filters every channel with a square kernel (`(2·half + 1)²` weights),
/// edges mirrored without repeating the edge pixel (OpenCV's `filter2D`).
pub(super) fn filter(values: &mut [f32], shape: Shape, half: usize, kernel: &[f32]) {
    let (h, w) = (shape.height, shape.width);
    let side = 2 * half + 1;
    let k = half as isize;
    let mut out = vec![0.0f32; shape.plane()];
    for plane in values.chunks_mut(shape.plane()) {
        for y in 0..h {
            for x in 0..w {
                let mut sum = 0.0f32;
                for dy in -k..=k {
                    let row = reflect_index(y as isize + dy, h) * w;
                    for dx in -k..=k {
                        let weight = kernel[(dy + k) as usize * side + (dx + k) as usize];
                        sum += weight * plane[row + reflect_index(x as isize + dx, w)];
                    }
                }
                out[y * w + x] = sum;
            }
        }
        plane.copy_from_slice(&out);
    }
}

/// For each of the `n_out` cells of a side of `n_in` pixels, the input pixels
/// it covers and the fraction of the cell each covers (area averaging).
fn area_weights(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f32)>> {
    let step = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|j| {
            let (start, end) = (j as f64 * step, (j + 1) as f64 * step);
            let first = start.floor() as usize;
            let last = (end.ceil() as usize).min(n_in);
            (first..last)
                .filter_map(|i| {
                    let overlap = end.min(i as f64 + 1.0) - start.max(i as f64);
                    (overlap > 1e-12).then_some((i, (overlap / step) as f32))
                })
                .collect()
        })
        .collect()
}

/// Pixelation: every channel shrunk to `low_h × low_w` by area averaging,
/// then enlarged back by nearest neighbour (what PIL's box filter does when
/// enlarging). When the sides are multiples of the low sides, the result is
/// constant on each block, equal to the block's mean.
pub(super) fn pixelate(values: &mut [f32], shape: Shape, low_h: usize, low_w: usize) {
    let (h, w) = (shape.height, shape.width);
    let rows = area_weights(h, low_h);
    let cols = area_weights(w, low_w);
    let mut narrow = vec![0.0f32; h * low_w];
    let mut low = vec![0.0f32; low_h * low_w];
    for plane in values.chunks_mut(shape.plane()) {
        for y in 0..h {
            for (j, weights) in cols.iter().enumerate() {
                narrow[y * low_w + j] = weights.iter().map(|&(x, f)| f * plane[y * w + x]).sum();
            }
        }
        for (i, weights) in rows.iter().enumerate() {
            for j in 0..low_w {
                low[i * low_w + j] = weights
                    .iter()
                    .map(|&(y, f)| f * narrow[y * low_w + j])
                    .sum();
            }
        }
        for y in 0..h {
            let sy = ((y as f64 + 0.5) * low_h as f64 / h as f64) as usize;
            for x in 0..w {
                let sx = ((x as f64 + 0.5) * low_w as f64 / w as f64) as usize;
                plane[y * w + x] = low[sy.min(low_h - 1) * low_w + sx.min(low_w - 1)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_index_mirrors_without_repeating_the_edge() {
        let mirrored: Vec<usize> = (-3..7).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(mirrored, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect_index(-2, 1), 0);
    }

    #[test]
    fn disk_kernel_sums_to_one_and_matches_the_recipe_shapes() {
        for (radius, alias) in [(0.3, 0.4), (1.0, 0.2), (1.5, 0.1), (9.5, 0.5)] {
            let (_, kernel) = disk_kernel(radius, alias);
            let total: f32 = kernel.iter().sum();
            assert!((total - 1.0).abs() < 1e-5, "{radius}: {total}");
        }
        // radius 1, almost no anti-aliasing: the 5-pixel plus, 1/5 each.
        let (half, kernel) = disk_kernel(1.0, 0.05);
        let side = 2 * half + 1;
        let at = |y: usize, x: usize| kernel[y * side + x];
        assert!((at(half, half) - 0.2).abs() < 1e-4);
        assert!((at(half - 1, half) - 0.2).abs() < 1e-4);
        assert!(at(half - 1, half - 1) < 1e-4);
    }

    #[test]
    fn area_weights_cover_each_cell_exactly_once() {
        for (n_in, n_out) in [(32, 30), (32, 20), (8, 5), (7, 3), (4, 1)] {
            let weights = area_weights(n_in, n_out);
            let mut per_input = vec![0.0f32; n_in];
            for cell in &weights {
                let total: f32 = cell.iter().map(|&(_, f)| f).sum();
                assert!((total - 1.0).abs() < 1e-5, "{n_in}->{n_out}: {total}");
                for &(i, f) in cell {
                    per_input[i] += f;
                }
            }
            let expected = n_out as f32 / n_in as f32;
            assert!(per_input.iter().all(|&p| (p - expected).abs() < 1e-5));
        }
    }
}
