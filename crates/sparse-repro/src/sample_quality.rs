//! How close generated samples are to real ones, without an Inception network: the
//! measures of GAN reproductions at small scale.
//!
//! - [`energy_distance`] and [`mmd_rbf`]: two-sample distances on raw samples
//!   (2-D mixtures), exact over all pairs.
//! - [`ModeCoverage`]: modes of a mixture that the samples reach, and the share of
//!   samples close to some mode (the "high-quality" samples of VEEGAN and PacGAN).
//! - [`frechet_distance`] and [`kernel_distance`]: FID and KID computed on any
//!   features, e.g. a small classifier's penultimate layer trained once on the real
//!   data (an FID proxy).
//!
//! Samples are rows of a flat `&[f64]` with `dim` columns.
//!
//! ```
//! use sparse_repro::sample_quality::{energy_distance, frechet_distance};
//! let a = [0.0, 0.0, 1.0, 1.0, 2.0, 0.5];
//! assert_eq!(energy_distance(&a, &a, 2)?, 0.0);
//! assert!(frechet_distance(&a, &a, 2)?.abs() < 1e-9);
//! assert!(energy_distance(&a, &[5.0, 5.0, 6.0, 6.0], 2)? > 1.0);
//! # Ok::<(), sparse_repro::HarnessError>(())
//! ```

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::error::{HarnessError, HarnessResult};

/// Checks that `x` holds whole rows of `dim` finite values, at least `min_rows`.
fn rows(x: &[f64], dim: usize, name: &'static str, min_rows: usize) -> HarnessResult<usize> {
    if dim == 0 || !x.len().is_multiple_of(dim) {
        return Err(HarnessError::invalid(
            name,
            x.len(),
            format!("values must be whole rows of {dim} (dim must be positive)"),
        ));
    }
    let n = x.len() / dim;
    if n < min_rows {
        return Err(HarnessError::invalid(
            name,
            n,
            format!("at least {min_rows} samples are needed"),
        ));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(HarnessError::invalid(
            name,
            "NaN or infinity",
            "every value must be finite",
        ));
    }
    Ok(n)
}

fn row(x: &[f64], dim: usize, i: usize) -> &[f64] {
    &x[i * dim..(i + 1) * dim]
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum()
}

/// Mean of `f` over every pair `(i, j)` of `a` x `b` (`skip_diagonal`: `i ≠ j`, for
/// unbiased within-sample terms).
fn mean_over_pairs(
    a: &[f64],
    b: &[f64],
    dim: usize,
    skip_diagonal: bool,
    f: impl Fn(&[f64], &[f64]) -> f64,
) -> f64 {
    let (n, m) = (a.len() / dim, b.len() / dim);
    let mut sum = 0.0;
    let mut count = 0usize;
    for i in 0..n {
        for j in 0..m {
            if skip_diagonal && i == j {
                continue;
            }
            sum += f(row(a, dim, i), row(b, dim, j));
            count += 1;
        }
    }
    sum / count.max(1) as f64
}

/// The energy distance `2·E|X − Y| − E|X − X'| − E|Y − Y'|` between the empirical
/// distributions of `x` and `y` (all pairs, diagonal included: the V-statistic, zero
/// for identical samples and never negative).
pub fn energy_distance(x: &[f64], y: &[f64], dim: usize) -> HarnessResult<f64> {
    rows(x, dim, "x", 1)?;
    rows(y, dim, "y", 1)?;
    let norm = |a: &[f64], b: &[f64]| squared_distance(a, b).sqrt();
    let xy = mean_over_pairs(x, y, dim, false, norm);
    let xx = mean_over_pairs(x, x, dim, false, norm);
    let yy = mean_over_pairs(y, y, dim, false, norm);
    Ok((2.0 * xy - xx - yy).max(0.0))
}

/// The unbiased squared maximum mean discrepancy with the Gaussian kernel
/// `exp(−|a − b|² / (2·bandwidth²))` (within-sample terms without the diagonal; it
/// can be slightly negative for close distributions).
pub fn mmd_rbf(x: &[f64], y: &[f64], dim: usize, bandwidth: f64) -> HarnessResult<f64> {
    rows(x, dim, "x", 2)?;
    rows(y, dim, "y", 2)?;
    if !(bandwidth.is_finite() && bandwidth > 0.0) {
        return Err(HarnessError::invalid(
            "bandwidth",
            bandwidth,
            "must be positive",
        ));
    }
    let k = |a: &[f64], b: &[f64]| (-squared_distance(a, b) / (2.0 * bandwidth * bandwidth)).exp();
    Ok(
        mean_over_pairs(x, x, dim, true, k) + mean_over_pairs(y, y, dim, true, k)
            - 2.0 * mean_over_pairs(x, y, dim, false, k),
    )
}

/// KID: the unbiased squared MMD with the cubic polynomial kernel
/// `(a·b / dim + 1)³` of Bińkowski et al., on features.
pub fn kernel_distance(x: &[f64], y: &[f64], dim: usize) -> HarnessResult<f64> {
    rows(x, dim, "x", 2)?;
    rows(y, dim, "y", 2)?;
    let k = |a: &[f64], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
        (dot / dim as f64 + 1.0).powi(3)
    };
    Ok(
        mean_over_pairs(x, x, dim, true, k) + mean_over_pairs(y, y, dim, true, k)
            - 2.0 * mean_over_pairs(x, y, dim, false, k),
    )
}

/// Mean and (unbiased) covariance of the rows of `x`.
fn moments(x: &[f64], dim: usize) -> (DVector<f64>, DMatrix<f64>) {
    let n = x.len() / dim;
    let data = DMatrix::from_row_slice(n, dim, x);
    let mean = DVector::from_iterator(dim, (0..dim).map(|j| data.column(j).mean()));
    let mut centred = data;
    for mut r in centred.row_iter_mut() {
        r -= mean.transpose();
    }
    let cov = centred.transpose() * &centred / (n as f64 - 1.0);
    (mean, cov)
}

/// The square root of a symmetric positive semi-definite matrix (negative
/// eigenvalues from rounding are taken as zero).
fn sqrt_psd(m: DMatrix<f64>) -> DMatrix<f64> {
    let eigen = SymmetricEigen::new(m);
    let roots = eigen.eigenvalues.map(|v| v.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

/// The Fréchet distance between Gaussians fitted to the rows of `x` and of `y` (FID
/// on whatever features the rows are): `|μx − μy|² + tr(Σx + Σy − 2(Σx^½ Σy Σx^½)^½)`,
/// through symmetric eigendecompositions (the product's square root taken in its
/// symmetric form, which has the same trace).
pub fn frechet_distance(x: &[f64], y: &[f64], dim: usize) -> HarnessResult<f64> {
    rows(x, dim, "x", 2)?;
    rows(y, dim, "y", 2)?;
    let (mx, cx) = moments(x, dim);
    let (my, cy) = moments(y, dim);
    let root_x = sqrt_psd(cx.clone());
    let middle = &root_x * &cy * &root_x;
    let middle = (&middle + middle.transpose()) * 0.5;
    let cross = SymmetricEigen::new(middle)
        .eigenvalues
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum::<f64>();
    Ok(((mx - my).norm_squared() + cx.trace() + cy.trace() - 2.0 * cross).max(0.0))
}

/// Which modes of a mixture the samples reach.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeCoverage {
    /// Modes with at least the required share of the samples near them.
    pub modes_covered: usize,
    /// Share of the samples within the threshold of their nearest mode.
    pub high_quality: f64,
    /// High-quality samples per mode.
    pub per_mode: Vec<usize>,
}

impl ModeCoverage {
    /// Assigns every sample of `x` (rows of `dim`) to its nearest mode; it is high
    /// quality within `sigmas · std` of it, and a mode is covered when it holds at
    /// least `min_share` of all samples as high-quality ones (PacGAN's rule: 3σ, and
    /// 20 of 2500 samples, `min_share` 0.008).
    pub fn measure(
        x: &[f64],
        dim: usize,
        modes: &[Vec<f64>],
        std: f64,
        sigmas: f64,
        min_share: f64,
    ) -> HarnessResult<Self> {
        let n = rows(x, dim, "x", 1)?;
        if modes.is_empty() || modes.iter().any(|m| m.len() != dim) {
            return Err(HarnessError::invalid(
                "modes",
                modes.len(),
                format!("at least one mode, each of {dim} values"),
            ));
        }
        let radius = sigmas * std;
        if !(radius.is_finite() && radius > 0.0) {
            return Err(HarnessError::invalid(
                "std",
                std,
                "std and sigmas must be positive",
            ));
        }
        let mut per_mode = vec![0usize; modes.len()];
        for i in 0..n {
            let p = row(x, dim, i);
            let (nearest, d2) = modes
                .iter()
                .map(|m| squared_distance(p, m))
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("at least one mode");
            if d2.sqrt() <= radius {
                per_mode[nearest] += 1;
            }
        }
        let threshold = min_share * n as f64;
        Ok(Self {
            modes_covered: per_mode
                .iter()
                .filter(|&&c| c as f64 >= threshold && c > 0)
                .count(),
            high_quality: per_mode.iter().sum::<usize>() as f64 / n as f64,
            per_mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn gaussian(n: usize, dim: usize, mean: f64, std: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * dim)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                mean + std * z
            })
            .collect()
    }

    #[test]
    fn energy_distance_of_two_normals_matches_the_closed_form() {
        // 1-D N(0,1) against N(μ,1): 2·E|N(μ,2)| − 2·E|N(0,2)|, E|N(0,2)| = 2/√π.
        let mu: f64 = 1.0;
        let s = 2f64.sqrt();
        let phi = |t: f64| 0.5 * (1.0 + erf(t / 2f64.sqrt()));
        let folded = s * (2.0 / std::f64::consts::PI).sqrt() * (-mu * mu / 4.0).exp()
            + mu * (1.0 - 2.0 * phi(-mu / s));
        let expected = 2.0 * folded - 2.0 * 2.0 / std::f64::consts::PI.sqrt();
        let x = gaussian(1500, 1, 0.0, 1.0, 1);
        let y = gaussian(1500, 1, mu, 1.0, 2);
        let got = energy_distance(&x, &y, 1).unwrap();
        assert!((got - expected).abs() < 0.05, "{got} vs {expected}");
        assert_eq!(energy_distance(&x, &x, 1).unwrap(), 0.0);
    }

    /// The error function (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7).
    fn erf(x: f64) -> f64 {
        let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        let y = 1.0 - poly * (-x * x).exp();
        if x >= 0.0 { y } else { -y }
    }

    #[test]
    fn frechet_distance_of_gaussians_is_mean_gap_plus_covariance_term() {
        // N(0, I) against N(1, 4I) in 3-D: |Δμ|² = 3, tr(I + 4I − 2·2I) = 3.
        let x = gaussian(20_000, 3, 0.0, 1.0, 3);
        let y = gaussian(20_000, 3, 1.0, 2.0, 4);
        let got = frechet_distance(&x, &y, 3).unwrap();
        assert!((got - 6.0).abs() < 0.15, "{got}");
        assert!(frechet_distance(&x, &x, 3).unwrap() < 1e-9);
    }

    #[test]
    fn mmd_and_kid_separate_shifted_samples_and_vanish_on_the_same_law() {
        let x = gaussian(400, 2, 0.0, 1.0, 5);
        let same = gaussian(400, 2, 0.0, 1.0, 6);
        let far = gaussian(400, 2, 1.5, 1.0, 7);
        let near = mmd_rbf(&x, &same, 2, 1.0).unwrap();
        let apart = mmd_rbf(&x, &far, 2, 1.0).unwrap();
        assert!(near.abs() < 0.01 && apart > 0.2, "{near} {apart}");
        let near = kernel_distance(&x, &same, 2).unwrap();
        let apart = kernel_distance(&x, &far, 2).unwrap();
        assert!(near.abs() < 0.1 && apart > 1.0, "{near} {apart}");
    }

    #[test]
    fn mode_coverage_counts_modes_and_close_samples() {
        let modes = vec![vec![0.0, 0.0], vec![10.0, 0.0], vec![0.0, 10.0]];
        // 10 samples at mode 0, 5 near mode 1 (within 3σ = 0.3), 1 far from everything
        let mut x = vec![0.0; 20];
        x.extend([10.1, 0.0].repeat(5));
        x.extend([5.0, 5.0]);
        let c = ModeCoverage::measure(&x, 2, &modes, 0.1, 3.0, 0.2).unwrap();
        assert_eq!(c.per_mode, vec![10, 5, 0]);
        assert_eq!(c.modes_covered, 2); // 5 of 16 ≥ 0.2·16
        assert!((c.high_quality - 15.0 / 16.0).abs() < 1e-12);
        let strict = ModeCoverage::measure(&x, 2, &modes, 0.1, 3.0, 0.5).unwrap();
        assert_eq!(strict.modes_covered, 1);
    }

    #[test]
    fn bad_samples_are_refused_with_the_parameter_named() {
        let err = energy_distance(&[1.0, 2.0, 3.0], &[1.0, 2.0], 2).unwrap_err();
        assert!(err.to_string().contains('x'), "{err}");
        assert!(frechet_distance(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2).is_err()); // one row
        assert!(mmd_rbf(&[0.0; 4], &[0.0; 4], 2, 0.0).is_err());
        assert!(energy_distance(&[f64::NAN, 0.0], &[0.0, 0.0], 2).is_err());
        assert!(ModeCoverage::measure(&[0.0, 0.0], 2, &[vec![0.0]], 1.0, 3.0, 0.1).is_err());
    }
}
