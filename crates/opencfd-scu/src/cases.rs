//! The flows of the verification suite: grids, boundary conditions and initial states.

use std::f64::consts::PI;

use crate::domain::Boundary;
use crate::gas::Gas;
use crate::metrics::{Coordinates, Extent};
use crate::riemann::Primitive;

/// A 1-D Riemann problem along x on `[0, 1]` with the jump at 0.5 and outflow ends.
pub fn shock_tube_grid(points: usize) -> Coordinates {
    Coordinates::uniform(
        Extent::new(points, 1, 1),
        [1.0, 1.0, 1.0],
        [0.0; 3],
        [false, true, true],
    )
}

/// Outflow along x, periodic (trivially, one point) along y and z.
pub fn one_dimensional_boundaries() -> [[Boundary; 2]; 3] {
    [
        [Boundary::Outflow; 2],
        [Boundary::Periodic; 2],
        [Boundary::Periodic; 2],
    ]
}

/// The piecewise-constant initial state of a Riemann problem with the jump at `x0`.
pub fn riemann_initial(
    gas: Gas,
    left: Primitive,
    right: Primitive,
    x0: f64,
) -> impl Fn([f64; 3]) -> [f64; 5] {
    move |[x, _, _]| {
        let side = if x < x0 { left } else { right };
        gas.conservative(side.density, [side.velocity, 0.0, 0.0], side.pressure)
    }
}

/// The Shu–Osher problem on `[-5, 5]`: a Mach 3 shock running into a sinusoidal
/// density field (jump at x = −4).
pub fn shu_osher_grid(points: usize) -> Coordinates {
    Coordinates::uniform(
        Extent::new(points, 1, 1),
        [10.0, 1.0, 1.0],
        [-5.0, 0.0, 0.0],
        [false, true, true],
    )
}

/// The Shu–Osher initial state.
pub fn shu_osher_initial(gas: Gas) -> impl Fn([f64; 3]) -> [f64; 5] {
    move |[x, _, _]| {
        if x < -4.0 {
            gas.conservative(3.857143, [2.629369, 0.0, 0.0], 10.333333)
        } else {
            gas.conservative(1.0 + 0.2 * (5.0 * x).sin(), [0.0; 3], 1.0)
        }
    }
}

/// The isentropic vortex of Shu in a periodic square,
/// advected diagonally at unit speed per axis.
#[derive(Debug, Clone, Copy)]
pub struct IsentropicVortex {
    /// The gas (γ; the Mach number sets the temperature scale).
    pub gas: Gas,
    /// Vortex strength.
    pub strength: f64,
    /// Initial centre.
    pub centre: [f64; 2],
    /// Advection velocity.
    pub velocity: [f64; 2],
    /// Side of the periodic square.
    pub side: f64,
}

impl IsentropicVortex {
    /// Shu's vortex of `strength` (5 in Shu's test) carried at `velocity`, centred in a periodic box of
    /// side `side`. Shu's box of 10 leaves the vortex's tail, about 1e-5 at the edges,
    /// out of the exact solution; a box of 20 pushes it below 1e-20.
    pub fn standard(gas: Gas, strength: f64, side: f64, velocity: [f64; 2]) -> Self {
        Self {
            gas,
            strength,
            centre: [0.5 * side, 0.5 * side],
            velocity,
            side,
        }
    }

    /// The exact solution at time `t` (the vortex translates with the flow).
    pub fn exact(&self, point: [f64; 3], t: f64) -> [f64; 5] {
        let gamma = self.gas.gamma;
        let wrap = |value: f64| value - self.side * (value / self.side + 0.5).floor();
        let dx = wrap(point[0] - self.centre[0] - self.velocity[0] * t);
        let dy = wrap(point[1] - self.centre[1] - self.velocity[1] * t);
        let r2 = dx * dx + dy * dy;
        let bump = (0.5 * (1.0 - r2)).exp();
        let swirl = self.strength / (2.0 * PI) * bump;
        // Temperature in units where p = ρT (T = p/ρ) and the free stream has p = ρ = 1.
        let temperature = 1.0
            - (gamma - 1.0) * self.strength * self.strength / (8.0 * gamma * PI * PI) * bump * bump;
        let density = temperature.powf(1.0 / (gamma - 1.0));
        let pressure = density * temperature;
        self.gas.conservative(
            density,
            [
                self.velocity[0] - swirl * dy,
                self.velocity[1] + swirl * dx,
                0.0,
            ],
            pressure,
        )
    }

    /// A uniform or perturbed periodic grid of `points²`.
    pub fn grid(&self, points: usize, perturbation: f64) -> Coordinates {
        let extent = Extent::new(points, points, 1);
        let lengths = [self.side, self.side, 1.0];
        let periodic = [true, true, true];
        if perturbation > 0.0 {
            Coordinates::perturbed(extent, lengths, [0.0; 3], periodic, perturbation)
        } else {
            Coordinates::uniform(extent, lengths, [0.0; 3], periodic)
        }
    }
}

/// The Taylor–Green vortex in the periodic box `[−π, π]³` (Mach `gas.mach`, the
/// usual incompressible-like initial pressure field).
pub fn taylor_green_initial(gas: Gas) -> impl Fn([f64; 3]) -> [f64; 5] {
    move |[x, y, z]| {
        let u = x.sin() * y.cos() * z.cos();
        let v = -x.cos() * y.sin() * z.cos();
        let reference_pressure = 1.0 / (gas.gamma * gas.mach * gas.mach);
        let pressure = reference_pressure
            + ((2.0 * x).cos() + (2.0 * y).cos()) * ((2.0 * z).cos() + 2.0) / 16.0;
        // Isothermal start at T = 1: ρ follows the pressure.
        let density = pressure / reference_pressure;
        gas.conservative(density, [u, v, 0.0], pressure)
    }
}

/// The Taylor–Green grid of `points³`.
pub fn taylor_green_grid(points: usize) -> Coordinates {
    Coordinates::uniform(
        Extent::new(points, points, points),
        [2.0 * PI; 3],
        [-PI; 3],
        [true; 3],
    )
}

/// Periodic boundaries in every direction.
pub fn periodic_boundaries() -> [[Boundary; 2]; 3] {
    [[Boundary::Periodic; 2]; 3]
}
