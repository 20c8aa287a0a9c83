//! Distances from generated samples to a 2-D Gaussian mixture, exact in the
//! mixture (no second sample): the energy distance through the Rice mean, and the
//! Gaussian-kernel MMD in closed form.

use sparse_data::data::mixture::GaussianMixture2d;

/// `e^{−a}·I0(a)` and `e^{−a}·I1(a)` (exponentially scaled modified Bessel functions
/// of the first kind), `a ≥ 0`: power series up to 30, the asymptotic series above.
fn scaled_bessel_i0_i1(a: f64) -> (f64, f64) {
    if a <= 30.0 {
        let (mut i0, mut i1) = (0.0, 0.0);
        let half = a / 2.0;
        let mut term0 = 1.0; // (a/2)^{2k} / (k!)²
        let mut term1 = half; // (a/2)^{2k+1} / (k!(k+1)!)
        for k in 0..200 {
            i0 += term0;
            i1 += term1;
            let k = k as f64;
            term0 *= half * half / ((k + 1.0) * (k + 1.0));
            term1 *= half * half / ((k + 1.0) * (k + 2.0));
            if term0 < 1e-17 * i0 && term1 < 1e-17 * i1.max(f64::MIN_POSITIVE) {
                break;
            }
        }
        let scale = (-a).exp();
        (i0 * scale, i1 * scale)
    } else {
        let front = 1.0 / (2.0 * std::f64::consts::PI * a).sqrt();
        let (x, x2, x3) = (1.0 / a, 1.0 / (a * a), 1.0 / (a * a * a));
        (
            front * (1.0 + x / 8.0 + 9.0 * x2 / 128.0 + 225.0 * x3 / 3072.0),
            front * (1.0 - 3.0 * x / 8.0 - 15.0 * x2 / 128.0 - 315.0 * x3 / 3072.0),
        )
    }
}

/// The mean of `|Z|` for `Z ~ N(m, s²·I₂)` with `|m| = nu` (the Rice mean):
/// `s·√(π/2)·((1 + 2a)·I0e(a) + 2a·I1e(a))`, `a = nu² / (4s²)`.
pub fn rice_mean(nu: f64, s: f64) -> f64 {
    let a = nu * nu / (4.0 * s * s);
    let (i0e, i1e) = scaled_bessel_i0_i1(a);
    s * (std::f64::consts::PI / 2.0).sqrt() * ((1.0 + 2.0 * a) * i0e + 2.0 * a * i1e)
}

fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// The energy distance between the samples' empirical law and `mixture`:
/// `2·mean_i E|x_i − Y| − mean_{i,j} |x_i − x_j| − E|Y − Y'|` (the sample term over
/// all pairs, as [`sparse_repro::sample_quality::energy_distance`]).
pub fn energy_distance_to_mixture(samples: &[[f64; 2]], mixture: &GaussianMixture2d) -> f64 {
    let modes = mixture.modes();
    let k = modes.len() as f64;
    let s = mixture.std();
    let cross = samples
        .iter()
        .map(|&x| {
            modes
                .iter()
                .map(|&m| rice_mean(distance(x, m), s))
                .sum::<f64>()
                / k
        })
        .sum::<f64>()
        / samples.len().max(1) as f64;
    let mut within = 0.0;
    for &a in samples {
        for &b in samples {
            within += distance(a, b);
        }
    }
    within /= (samples.len() * samples.len()).max(1) as f64;
    let target = modes
        .iter()
        .flat_map(|&a| {
            modes
                .iter()
                .map(move |&b| rice_mean(distance(a, b), 2f64.sqrt() * s))
        })
        .sum::<f64>()
        / (k * k);
    2.0 * cross - within - target
}

/// The squared MMD with the kernel `exp(−|a − b|²/(2h²))` between the samples and
/// `mixture`, the within-sample term without the diagonal.
pub fn mmd_to_mixture(samples: &[[f64; 2]], mixture: &GaussianMixture2d, bandwidth: f64) -> f64 {
    let (h2, s2) = (bandwidth * bandwidth, mixture.std() * mixture.std());
    let modes = mixture.modes();
    let k = modes.len() as f64;
    let n = samples.len();
    let mut within = 0.0;
    for (i, &a) in samples.iter().enumerate() {
        for (j, &b) in samples.iter().enumerate() {
            if i != j {
                within += (-distance(a, b).powi(2) / (2.0 * h2)).exp();
            }
        }
    }
    within /= (n * n.saturating_sub(1)).max(1) as f64;
    let c1 = h2 / (h2 + s2);
    let cross = samples
        .iter()
        .map(|&x| {
            modes
                .iter()
                .map(|&m| c1 * (-distance(x, m).powi(2) / (2.0 * (h2 + s2))).exp())
                .sum::<f64>()
                / k
        })
        .sum::<f64>()
        / n.max(1) as f64;
    let c2 = h2 / (h2 + 2.0 * s2);
    let target = modes
        .iter()
        .flat_map(|&a| {
            modes
                .iter()
                .map(move |&b| c2 * (-distance(a, b).powi(2) / (2.0 * (h2 + 2.0 * s2))).exp())
        })
        .sum::<f64>()
        / (k * k);
    within - 2.0 * cross + target
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn normal_samples(n: usize, seed: u64) -> Vec<[f64; 2]> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                [
                    StandardNormal.sample(&mut rng),
                    StandardNormal.sample(&mut rng),
                ]
            })
            .collect()
    }

    #[test]
    fn the_rice_mean_has_its_limits() {
        assert!((rice_mean(0.0, 1.0) - (std::f64::consts::PI / 2.0).sqrt()).abs() < 1e-12);
        assert!((rice_mean(100.0, 0.02) - 100.0).abs() < 1e-4);
        // both sides of the switch between series and asymptotics agree
        let (below, above) = (rice_mean(10.954, 1.0), rice_mean(10.955, 1.0));
        assert!((below - above).abs() < 1e-3, "{below} {above}");
    }

    #[test]
    fn distances_to_a_shifted_gaussian_match_the_closed_forms() {
        let samples = normal_samples(4000, 3);
        let shifted = GaussianMixture2d::new(vec![[3.0, 0.0]], 1.0).unwrap();
        let ed = energy_distance_to_mixture(&samples, &shifted);
        assert!((ed - 3.175294).abs() < 0.1, "{ed}");
        let near = GaussianMixture2d::new(vec![[1.0, 0.0]], 1.0).unwrap();
        let ed = energy_distance_to_mixture(&samples, &near);
        assert!((ed - 0.429821).abs() < 0.05, "{ed}");
        let mmd = mmd_to_mixture(&samples[..1500], &shifted, 1.0);
        assert!((mmd - 0.517913).abs() < 0.02, "{mmd}");
        // the samples' own law: close to zero
        let same = GaussianMixture2d::new(vec![[0.0, 0.0]], 1.0).unwrap();
        assert!(energy_distance_to_mixture(&samples, &same).abs() < 0.02);
    }
}
