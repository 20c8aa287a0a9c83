//! Steger–Warming flux-vector splitting along a grid direction.
//!
//! For the direction with metric vector `A` (the cofactor vector `det · ∇ξ`, see
//! [`crate::geometry`]) the flux `A·F` has eigenvalues `λ₁ = A·u` (three times) and
//! `λ₂,₃ = λ₁ ∓ c|A|`. Each is split as `λ± = (λ ± √(λ² + ε²)) / 2`, where `ε` is the
//! official entropy fix `EPSL_SW` (0 gives the plain `max(λ, 0)`), and the split fluxes
//! are the usual closed forms rebuilt from the split eigenvalues.

/// The positive and negative split fluxes `(F⁺, F⁻)` of one point, with `F⁺ + F⁻ = A·F`.
#[inline]
pub fn steger_warming(
    q: &[f64; 5],
    metric: &[f64; 3],
    gamma: f64,
    epsilon: f64,
) -> ([f64; 5], [f64; 5]) {
    let density = q[0];
    let inverse = 1.0 / density;
    let velocity = [q[1] * inverse, q[2] * inverse, q[3] * inverse];
    let speed2 = velocity.iter().map(|v| v * v).sum::<f64>();
    let pressure = (gamma - 1.0) * (q[4] - 0.5 * density * speed2);
    let c = (gamma * pressure * inverse).sqrt();
    steger_warming_primitive(density, velocity, c, metric, gamma, epsilon)
}

/// [`steger_warming`] from density, velocity and sound speed (the kernels' primitives).
#[inline(always)]
pub fn steger_warming_primitive(
    density: f64,
    velocity: [f64; 3],
    c: f64,
    metric: &[f64; 3],
    gamma: f64,
    epsilon: f64,
) -> ([f64; 5], [f64; 5]) {
    let [u, v, w] = velocity;
    let speed2 = u * u + v * v + w * w;
    let [a1, a2, a3] = *metric;
    let norm = (a1 * a1 + a2 * a2 + a3 * a3).sqrt();
    let inverse_norm = 1.0 / norm;
    let (n1, n2, n3) = (a1 * inverse_norm, a2 * inverse_norm, a3 * inverse_norm);
    let l1 = a1 * u + a2 * v + a3 * w;
    let l2 = l1 - c * norm;
    let l3 = l1 + c * norm;
    let eps2 = epsilon * epsilon;
    // Without the entropy fix √(λ²) is |λ| (exactly, barring underflow), and cheaper.
    let plus = |l: f64| {
        if eps2 == 0.0 {
            0.5 * (l + l.abs())
        } else {
            0.5 * (l + (l * l + eps2).sqrt())
        }
    };
    let (p1, p2, p3) = (plus(l1), plus(l2), plus(l3));
    let (m1, m2, m3) = (l1 - p1, l2 - p2, l3 - p3);

    let (ua, va, wa) = (u - c * n1, v - c * n2, w - c * n3);
    let (ub, vb, wb) = (u + c * n1, v + c * n2, w + c * n3);
    let ka = 0.5 * (ua * ua + va * va + wa * wa);
    let kb = 0.5 * (ub * ub + vb * vb + wb * wb);
    let scale = density / (2.0 * gamma);
    let c1 = 2.0 * (gamma - 1.0);
    let c3 = (3.0 - gamma) / (2.0 * (gamma - 1.0)) * c * c;
    let g1 = (gamma - 1.0) * speed2;
    let flux = |e1: f64, e2: f64, e3: f64| {
        [
            scale * (c1 * e1 + e2 + e3),
            scale * (c1 * e1 * u + e2 * ua + e3 * ub),
            scale * (c1 * e1 * v + e2 * va + e3 * vb),
            scale * (c1 * e1 * w + e2 * wa + e3 * wb),
            scale * (e1 * g1 + e2 * ka + e3 * kb + c3 * (e2 + e3)),
        ]
    };
    (flux(p1, p2, p3), flux(m1, m2, m3))
}

/// The unsplit flux `A·F` of one point (the sum the split must reproduce).
pub fn physical_flux(q: &[f64; 5], metric: &[f64; 3], gamma: f64) -> [f64; 5] {
    let density = q[0];
    let (u, v, w) = (q[1] / density, q[2] / density, q[3] / density);
    let pressure = (gamma - 1.0) * (q[4] - 0.5 * density * (u * u + v * v + w * w));
    let contravariant = metric[0] * u + metric[1] * v + metric[2] * w;
    [
        density * contravariant,
        q[1] * contravariant + metric[0] * pressure,
        q[2] * contravariant + metric[1] * pressure,
        q[3] * contravariant + metric[2] * pressure,
        (q[4] + pressure) * contravariant,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gas::Gas;

    #[test]
    fn split_fluxes_sum_to_the_flux_and_are_one_sided_when_supersonic() {
        let gas = Gas::euler_air();
        let q = gas.conservative(1.3, [0.4, -0.2, 0.7], 0.9);
        for metric in [[1.0, 0.0, 0.0], [0.3, -1.2, 0.5], [0.0, 0.0, 2.0]] {
            let (plus, minus) = steger_warming(&q, &metric, 1.4, 0.0);
            let flux = physical_flux(&q, &metric, 1.4);
            for c in 0..5 {
                assert!(
                    (plus[c] + minus[c] - flux[c]).abs() < 1e-13,
                    "{c}: {plus:?} {minus:?} {flux:?}"
                );
            }
        }
        // Mach 3 to the right: everything goes through the positive flux.
        let fast = gas.conservative(1.0, [3.0 * 1.4f64.sqrt(), 0.0, 0.0], 1.0);
        let (plus, minus) = steger_warming(&fast, &[1.0, 0.0, 0.0], 1.4, 0.0);
        assert!(minus.iter().all(|m| m.abs() < 1e-15), "{minus:?}");
        assert!(plus[0] > 0.0);
        // The entropy fix keeps the sum exact.
        let (plus, minus) = steger_warming(&q, &[1.0, 0.0, 0.0], 1.4, 0.3);
        let flux = physical_flux(&q, &[1.0, 0.0, 0.0], 1.4);
        assert!((plus[4] + minus[4] - flux[4]).abs() < 1e-13);
    }
}
