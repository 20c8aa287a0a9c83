//! Seeded weight initialisation with PyTorch's formulas.
//!
//! candle's own initialisers draw from the unseeded thread RNG, and its `linear`
//! default (Kaiming-normal) differs from PyTorch's. These functions write values into
//! existing `Var`s from a [`ChaCha8Rng`]; when several vars are initialised together
//! they are visited in name order, so a seed fixes the result.

use candle_core::{Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::error::{Result, SparseError};
use crate::validate::{check_fraction_above_zero, check_non_negative, check_positive};

/// The non-linearity that follows a layer, for [`Nonlinearity::gain`]
/// (`torch.nn.init.calculate_gain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nonlinearity {
    /// Identity / linear / convolution: gain 1.
    Linear,
    /// Sigmoid: gain 1.
    Sigmoid,
    /// Tanh: gain 5/3.
    Tanh,
    /// ReLU: gain √2.
    Relu,
    /// Leaky ReLU with negative slope `a`: gain √(2/(1 + a²)). PyTorch's default `a` is 0.01.
    LeakyRelu(f64),
}

impl Nonlinearity {
    /// The recommended gain.
    pub fn gain(self) -> f64 {
        match self {
            Self::Linear | Self::Sigmoid => 1.0,
            Self::Tanh => 5.0 / 3.0,
            Self::Relu => 2f64.sqrt(),
            Self::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
        }
    }
}

/// Which fan Kaiming initialisation preserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// Preserve the forward variance.
    FanIn,
    /// Preserve the backward variance.
    FanOut,
}

/// An initialisation rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// `N(0, std²)` with `std = gain/√fan`.
    KaimingNormal {
        /// Which fan.
        mode: FanMode,
        /// The following non-linearity.
        nonlinearity: Nonlinearity,
    },
    /// `U(±bound)` with `bound = gain·√(3/fan)`.
    KaimingUniform {
        /// Which fan.
        mode: FanMode,
        /// The following non-linearity.
        nonlinearity: Nonlinearity,
    },
    /// `N(0, std²)` with `std = gain·√(2/(fan_in + fan_out))`.
    XavierNormal {
        /// Gain.
        gain: f64,
    },
    /// `U(±bound)` with `bound = gain·√(6/(fan_in + fan_out))`.
    XavierUniform {
        /// Gain.
        gain: f64,
    },
    /// PyTorch's default weight init of `nn.Linear`/`nn.ConvNd`:
    /// `kaiming_uniform(a = √5)`, i.e. `U(±1/√fan_in)`.
    TorchDefaultWeight,
    /// PyTorch's default bias init: `U(±1/√fan_in)` with the fan-in of the layer's weight.
    TorchDefaultBias {
        /// Fan-in of the weight the bias belongs to.
        fan_in: usize,
    },
    /// Random pruning's `--scaled` init: `N(0, std²)`, `std = gain/√(fan_in·density)`.
    ScaledKaimingNormal {
        /// The following non-linearity (the official code uses leaky ReLU).
        nonlinearity: Nonlinearity,
        /// Layer density in `(0, 1]`.
        density: f64,
    },
    /// `N(mean, std²)`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation, `>= 0`.
        std: f64,
    },
    /// `U(low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound, `> low`.
        high: f64,
    },
    /// Every entry equal to the value.
    Constant(f64),
}

/// `(fan_in, fan_out)` as `torch.nn.init._calculate_fan_in_and_fan_out`: for a weight
/// `[out, in, k...]`, `fan_in = in·∏k` and `fan_out = out·∏k`. Needs at least 2 dims.
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(SparseError::invalid(
            "shape",
            format!("{shape:?}"),
            "fan in/out need a tensor with at least 2 dimensions",
        ));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

enum Dist {
    Normal(f64, f64),
    Uniform(f64, f64),
    Constant(f64),
}

impl Init {
    fn distribution(&self, shape: &[usize]) -> Result<Dist> {
        let fan = |mode: FanMode| -> Result<f64> {
            let (i, o) = fans(shape)?;
            let f = match mode {
                FanMode::FanIn => i,
                FanMode::FanOut => o,
            };
            if f == 0 {
                return Err(SparseError::invalid(
                    "fan",
                    0.0,
                    "a zero fan cannot be initialised",
                ));
            }
            Ok(f as f64)
        };
        Ok(match *self {
            Init::KaimingNormal { mode, nonlinearity } => {
                Dist::Normal(0.0, nonlinearity.gain() / fan(mode)?.sqrt())
            }
            Init::KaimingUniform { mode, nonlinearity } => {
                let b = nonlinearity.gain() * (3.0 / fan(mode)?).sqrt();
                Dist::Uniform(-b, b)
            }
            Init::XavierNormal { gain } => {
                let (i, o) = fans(shape)?;
                Dist::Normal(0.0, gain * (2.0 / (i + o) as f64).sqrt())
            }
            Init::XavierUniform { gain } => {
                let (i, o) = fans(shape)?;
                let b = gain * (6.0 / (i + o) as f64).sqrt();
                Dist::Uniform(-b, b)
            }
            Init::TorchDefaultWeight => {
                let b = 1.0 / fan(FanMode::FanIn)?.sqrt();
                Dist::Uniform(-b, b)
            }
            Init::TorchDefaultBias { fan_in } => {
                check_positive("fan_in", fan_in as f64)?;
                let b = 1.0 / (fan_in as f64).sqrt();
                Dist::Uniform(-b, b)
            }
            Init::ScaledKaimingNormal {
                nonlinearity,
                density,
            } => {
                check_fraction_above_zero("density", density)?;
                Dist::Normal(
                    0.0,
                    nonlinearity.gain() / (fan(FanMode::FanIn)? * density).sqrt(),
                )
            }
            Init::Normal { mean, std } => {
                check_non_negative("std", std)?;
                Dist::Normal(mean, std)
            }
            Init::Uniform { low, high } => {
                if !(low.is_finite() && high.is_finite() && low < high) {
                    return Err(SparseError::invalid("high", high, "must be > low"));
                }
                Dist::Uniform(low, high)
            }
            Init::Constant(v) => Dist::Constant(v),
        })
    }

    /// Fresh values with `shape`, drawn from `rng` in row-major order (as `f32`).
    pub fn sample(&self, shape: &[usize], rng: &mut ChaCha8Rng) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        Ok(match self.distribution(shape)? {
            Dist::Constant(v) => vec![v as f32; n],
            Dist::Normal(mean, std) => {
                let d = Normal::new(mean as f32, std as f32)
                    .map_err(|e| SparseError::invalid("std", std, e.to_string()))?;
                (0..n).map(|_| d.sample(rng)).collect()
            }
            Dist::Uniform(lo, hi) => {
                let d = Uniform::new(lo as f32, hi as f32)
                    .map_err(|e| SparseError::invalid("bound", hi, e.to_string()))?;
                (0..n).map(|_| rng.sample(d)).collect()
            }
        })
    }
}

/// Writes `init`'s values into `var` (keeping its dtype and device).
pub fn init_var(var: &Var, init: Init, rng: &mut ChaCha8Rng) -> Result<()> {
    let shape = var.dims().to_vec();
    let values = init.sample(&shape, rng)?;
    let t = Tensor::from_vec(values, shape.as_slice(), var.device())?.to_dtype(var.dtype())?;
    var.set(&t)?;
    Ok(())
}

/// Initialises every var for which `rule(name, shape)` returns `Some`, in name order.
pub fn init_vars(
    vars: &[(String, Var)],
    rule: impl Fn(&str, &[usize]) -> Option<Init>,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    let mut sorted: Vec<&(String, Var)> = vars.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in sorted {
        if let Some(init) = rule(name, var.dims()) {
            init_var(var, init, rng)?;
        }
    }
    Ok(())
}

/// PyTorch's default init of a Linear/Conv layer: weight `U(±1/√fan_in)`
/// (`kaiming_uniform(a = √5)`), then bias `U(±1/√fan_in)`.
pub fn torch_default_layer(weight: &Var, bias: Option<&Var>, rng: &mut ChaCha8Rng) -> Result<()> {
    let (fan_in, _) = fans(weight.dims())?;
    init_var(weight, Init::TorchDefaultWeight, rng)?;
    if let Some(b) = bias {
        init_var(b, Init::TorchDefaultBias { fan_in }, rng)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use rand::SeedableRng;

    fn stats(v: &[f32]) -> (f64, f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let max = v.iter().map(|x| x.abs() as f64).fold(0.0, f64::max);
        (mean, var.sqrt(), max)
    }

    #[test]
    fn fans_follow_pytorch() {
        assert_eq!(fans(&[10, 20]).unwrap(), (20, 10));
        assert_eq!(fans(&[8, 4, 3]).unwrap(), (12, 24));
        assert_eq!(fans(&[16, 3, 3, 3]).unwrap(), (27, 144));
        assert!(fans(&[5]).is_err());
    }

    #[test]
    fn gains() {
        assert!((Nonlinearity::Relu.gain() - 2f64.sqrt()).abs() < 1e-12);
        assert!(
            (Nonlinearity::LeakyRelu(5f64.sqrt()).gain() - (1.0f64 / 3.0).sqrt()).abs() < 1e-12
        );
        assert!((Nonlinearity::Tanh.gain() - 5.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn kaiming_normal_has_the_right_std_and_is_seeded() {
        let shape = [256, 64, 3, 3]; // fan_in 576
        let init = Init::KaimingNormal {
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::Relu,
        };
        let a = init
            .sample(&shape, &mut ChaCha8Rng::seed_from_u64(3))
            .unwrap();
        let b = init
            .sample(&shape, &mut ChaCha8Rng::seed_from_u64(3))
            .unwrap();
        assert_eq!(a, b);
        let (mean, std, _) = stats(&a);
        let expected = (2.0f64 / 576.0).sqrt();
        assert!(mean.abs() < 3e-3 * expected * 10.0);
        assert!((std / expected - 1.0).abs() < 0.01, "{std} vs {expected}");
        let c = init
            .sample(&shape, &mut ChaCha8Rng::seed_from_u64(4))
            .unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn torch_default_and_scaled_bounds() {
        let dev = Device::Cpu;
        let w = Var::zeros((50, 100), DType::F32, &dev).unwrap();
        let b = Var::zeros(50, DType::F32, &dev).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        torch_default_layer(&w, Some(&b), &mut rng).unwrap();
        let wv = w
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let (_, std, max) = stats(&wv);
        // U(±0.1): max close to 0.1, std 0.1/√3.
        assert!(max <= 0.1 && max > 0.099);
        assert!((std - 0.1 / 3f64.sqrt()).abs() < 0.003);
        let bv = b.as_tensor().to_vec1::<f32>().unwrap();
        assert!(bv.iter().all(|x| x.abs() <= 0.1) && bv.iter().any(|&x| x != 0.0));

        let scaled = Init::ScaledKaimingNormal {
            nonlinearity: Nonlinearity::Relu,
            density: 0.25,
        };
        let v = scaled.sample(&[512, 100], &mut rng).unwrap();
        let expected = 2f64.sqrt() / (100.0f64 * 0.25).sqrt();
        assert!((stats(&v).1 / expected - 1.0).abs() < 0.02);
        assert!(
            Init::ScaledKaimingNormal {
                nonlinearity: Nonlinearity::Relu,
                density: 0.0
            }
            .sample(&[2, 2], &mut rng)
            .unwrap_err()
            .to_string()
            .contains("`density`")
        );
    }

    #[test]
    fn xavier_uniform_bound_and_sorted_visit_order() {
        let dev = Device::Cpu;
        let a = Var::zeros((4, 6), DType::F32, &dev).unwrap();
        let z = Var::zeros((4, 6), DType::F32, &dev).unwrap();
        // Given in reverse order: "a" must still be drawn first.
        let vars = vec![("z".to_string(), z.clone()), ("a".to_string(), a.clone())];
        let init = Init::XavierUniform { gain: 1.0 };
        init_vars(&vars, |_, _| Some(init), &mut ChaCha8Rng::seed_from_u64(9)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let first = init.sample(&[4, 6], &mut rng).unwrap();
        assert_eq!(
            a.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            first
        );
        let bound = (6.0f64 / 10.0).sqrt() as f32;
        assert!(first.iter().all(|x| x.abs() <= bound));
        init_var(&a, Init::Constant(0.5), &mut rng).unwrap();
        assert!(
            a.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .all(|&x| x == 0.5)
        );
    }
}
