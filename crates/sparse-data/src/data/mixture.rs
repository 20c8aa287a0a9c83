//! Two-dimensional Gaussian mixtures, the toy targets of GAN mode-collapse studies:
//! eight Gaussians on a ring and twenty-five on a grid, equal weights, isotropic.
//!
//! ```
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use sparse_data::data::mixture::GaussianMixture2d;
//!
//! let ring = GaussianMixture2d::ring();
//! assert_eq!(ring.modes().len(), 8);
//! let points = ring.sample(1000, &mut ChaCha8Rng::seed_from_u64(0));
//! assert_eq!(points.len(), 1000);
//! // every point lies near one of the modes
//! let near = |p: &[f64; 2]| ring.modes().iter().any(|m| (p[0] - m[0]).hypot(p[1] - m[1]) < 6.0 * ring.std());
//! assert!(points.iter().all(near));
//! ```

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::DataError;

/// An equal-weight mixture of isotropic Gaussians in the plane.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture2d {
    modes: Vec<[f64; 2]>,
    std: f64,
}

impl GaussianMixture2d {
    /// Gaussians of deviation `std` at `modes`; at least one mode, `std` positive.
    pub fn new(modes: Vec<[f64; 2]>, std: f64) -> Result<Self, DataError> {
        if modes.is_empty() {
            return Err(DataError::argument(
                "modes",
                "a mixture needs at least one mode",
            ));
        }
        if !(std.is_finite() && std > 0.0) {
            return Err(DataError::argument(
                "std",
                format!("must be a positive number, got {std}"),
            ));
        }
        if modes.iter().flatten().any(|v| !v.is_finite()) {
            return Err(DataError::argument(
                "modes",
                "every coordinate must be finite",
            ));
        }
        Ok(Self { modes, std })
    }

    /// Eight modes evenly on the circle of radius 2, deviation 0.02 (the ring of
    /// the unrolled-GAN, VEEGAN and PacGAN experiments).
    pub fn ring() -> Self {
        let modes = (0..8)
            .map(|k| {
                let angle = std::f64::consts::TAU * k as f64 / 8.0;
                [2.0 * angle.cos(), 2.0 * angle.sin()]
            })
            .collect();
        Self { modes, std: 0.02 }
    }

    /// Twenty-five modes on the grid `{−4, −2, 0, 2, 4}²`, deviation 0.05 (the grid of
    /// the same studies).
    pub fn grid() -> Self {
        let axis = [-4.0, -2.0, 0.0, 2.0, 4.0];
        let modes = axis
            .iter()
            .flat_map(|&x| axis.iter().map(move |&y| [x, y]))
            .collect();
        Self { modes, std: 0.05 }
    }

    /// The centres of the components.
    pub fn modes(&self) -> &[[f64; 2]] {
        &self.modes
    }

    /// The deviation of every component along each axis.
    pub fn std(&self) -> f64 {
        self.std
    }

    /// `n` points: a uniformly chosen mode plus isotropic Gaussian noise, from `rng`
    /// (the same seed gives the same points).
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<[f64; 2]> {
        (0..n)
            .map(|_| {
                let m = self.modes[rng.random_range(0..self.modes.len())];
                let dx: f64 = StandardNormal.sample(rng);
                let dy: f64 = StandardNormal.sample(rng);
                [m[0] + self.std * dx, m[1] + self.std * dy]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn ring_and_grid_have_their_modes_and_samples_spread_over_all_of_them() {
        let grid = GaussianMixture2d::grid();
        assert_eq!(grid.modes().len(), 25);
        assert!(grid.modes().contains(&[-4.0, 4.0]));
        let ring = GaussianMixture2d::ring();
        for m in ring.modes() {
            assert!((m[0].hypot(m[1]) - 2.0).abs() < 1e-12);
        }
        let points = ring.sample(8000, &mut ChaCha8Rng::seed_from_u64(1));
        let mut counts = [0usize; 8];
        for p in &points {
            let nearest = (0..8)
                .min_by(|&a, &b| {
                    let d = |k: usize| (p[0] - ring.modes()[k][0]).hypot(p[1] - ring.modes()[k][1]);
                    d(a).total_cmp(&d(b))
                })
                .unwrap();
            counts[nearest] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        // deviation along x around the assigned mode
        let var: f64 = points
            .iter()
            .map(|p| {
                let m = ring
                    .modes()
                    .iter()
                    .min_by(|a, b| {
                        (p[0] - a[0])
                            .hypot(p[1] - a[1])
                            .total_cmp(&(p[0] - b[0]).hypot(p[1] - b[1]))
                    })
                    .unwrap();
                (p[0] - m[0]).powi(2)
            })
            .sum::<f64>()
            / points.len() as f64;
        assert!((var.sqrt() - 0.02).abs() < 0.002, "{}", var.sqrt());
        assert_eq!(points, ring.sample(8000, &mut ChaCha8Rng::seed_from_u64(1)));
    }

    #[test]
    fn bad_mixtures_are_refused() {
        assert!(GaussianMixture2d::new(Vec::new(), 1.0).is_err());
        assert!(GaussianMixture2d::new(vec![[0.0, 0.0]], 0.0).is_err());
        assert!(GaussianMixture2d::new(vec![[f64::NAN, 0.0]], 1.0).is_err());
    }
}
