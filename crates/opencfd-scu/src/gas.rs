//! The perfect gas and the nondimensionalisation of the official code.
//!
//! Lengths, velocities, density and temperature are scaled by the reference state,
//! so `p = ρT / (γ Ma²)`, `c² = T / Ma²`, `Cv = 1 / (γ(γ−1) Ma²)` and
//! `Cp = 1 / ((γ−1) Ma²)`; viscosity follows Sutherland's law scaled so that
//! `μ(T = 1) = 1 / Re`, with the Sutherland constant 110.4 K over the reference
//! temperature `T_REF`. Heat conduction is `μ Cp / Pr ∇T`.

use serde::{Deserialize, Serialize};

use crate::error::{CfdError, CfdResult};

/// Gas properties and flow parameters (`GAMMA`, `AMA`, `RE`, `PR`, `T_REF`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gas {
    /// Ratio of specific heats.
    pub gamma: f64,
    /// Reference Mach number.
    pub mach: f64,
    /// Reference Reynolds number (ignored by inviscid runs).
    pub reynolds: f64,
    /// Prandtl number.
    pub prandtl: f64,
    /// Reference temperature in kelvin, for Sutherland's law.
    pub reference_temperature: f64,
}

impl Gas {
    /// A checked gas.
    pub fn new(
        gamma: f64,
        mach: f64,
        reynolds: f64,
        prandtl: f64,
        reference_temperature: f64,
    ) -> CfdResult<Self> {
        let checks = [
            ("gamma", gamma, gamma > 1.0),
            ("mach", mach, mach > 0.0),
            ("reynolds", reynolds, reynolds > 0.0),
            ("prandtl", prandtl, prandtl > 0.0),
            (
                "reference_temperature",
                reference_temperature,
                reference_temperature > 0.0,
            ),
        ];
        for (name, value, ok) in checks {
            if !ok || !value.is_finite() {
                return Err(CfdError::Config(format!(
                    "gas parameter {name} = {value} is out of range"
                )));
            }
        }
        Ok(Self {
            gamma,
            mach,
            reynolds,
            prandtl,
            reference_temperature,
        })
    }

    /// Air (γ = 1.4, Pr = 0.72 is not used by inviscid runs) at Mach 1, for the Euler
    /// verification problems where `c² = T` keeps the primitive state readable.
    pub fn euler_air() -> Self {
        Self {
            gamma: 1.4,
            mach: 1.0,
            reynolds: 1.0,
            prandtl: 0.72,
            reference_temperature: 288.15,
        }
    }

    /// Specific heat at constant volume.
    pub fn cv(&self) -> f64 {
        1.0 / (self.gamma * (self.gamma - 1.0) * self.mach * self.mach)
    }

    /// Specific heat at constant pressure.
    pub fn cp(&self) -> f64 {
        1.0 / ((self.gamma - 1.0) * self.mach * self.mach)
    }

    /// Temperature of a state given density and pressure.
    pub fn temperature(&self, density: f64, pressure: f64) -> f64 {
        self.gamma * self.mach * self.mach * pressure / density
    }

    /// Pressure of a state given density and temperature.
    pub fn pressure(&self, density: f64, temperature: f64) -> f64 {
        density * temperature / (self.gamma * self.mach * self.mach)
    }

    /// Dynamic viscosity at a temperature (Sutherland, `μ(1) = 1/Re`).
    pub fn viscosity(&self, temperature: f64) -> f64 {
        let sutherland = 110.4 / self.reference_temperature;
        (1.0 + sutherland) / self.reynolds * temperature * temperature.sqrt()
            / (temperature + sutherland)
    }

    /// Conservative variables `(ρ, ρu, ρv, ρw, ρE)` from density, velocity and pressure.
    pub fn conservative(&self, density: f64, velocity: [f64; 3], pressure: f64) -> [f64; 5] {
        let [u, v, w] = velocity;
        let kinetic = 0.5 * density * (u * u + v * v + w * w);
        [
            density,
            density * u,
            density * v,
            density * w,
            pressure / (self.gamma - 1.0) + kinetic,
        ]
    }

    /// Density, velocity and pressure from conservative variables.
    pub fn primitive(&self, q: [f64; 5]) -> (f64, [f64; 3], f64) {
        let density = q[0];
        let inverse = 1.0 / density;
        let velocity = [q[1] * inverse, q[2] * inverse, q[3] * inverse];
        let kinetic = 0.5 * (q[1] * velocity[0] + q[2] * velocity[1] + q[3] * velocity[2]);
        (density, velocity, (self.gamma - 1.0) * (q[4] - kinetic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_viscosity_is_one_over_re_at_reference() {
        let gas = Gas::new(1.4, 0.1, 1600.0, 0.72, 288.15).unwrap();
        let q = gas.conservative(1.2, [0.3, -0.1, 0.05], 71.4);
        let (rho, vel, p) = gas.primitive(q);
        assert!((rho - 1.2).abs() < 1e-14 && (p - 71.4).abs() < 1e-11);
        assert!((vel[1] + 0.1).abs() < 1e-14);
        assert!((gas.viscosity(1.0) - 1.0 / 1600.0).abs() < 1e-18);
        let t = gas.temperature(1.2, 71.4);
        assert!((gas.pressure(1.2, t) - 71.4).abs() < 1e-12);
        assert!((gas.cp() - gas.cv() - 1.0 / (1.4 * 0.01)).abs() < 1e-9);
        assert!(Gas::new(1.0, 0.1, 1.0, 1.0, 1.0).is_err());
    }
}
