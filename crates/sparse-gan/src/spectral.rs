//! Spectral normalisation of the discriminator's weights, as PyTorch's
//! `spectral_norm` runs it: one power iteration per training forward pass on the
//! detached weight, then `W / σ` with `σ = uᵀ W v` in the graph (so the gradient
//! reaches `W` through `σ` too), and the stored vectors unchanged in evaluation.
//!
//! The vectors `u` and `v` are state, not parameters: they live in
//! [`SpectralState`], outside the `VarMap`, so that no optimizer, weight decay,
//! EMA or parameter count sees them (sparse-core's selection rules know BatchNorm
//! statistics as the only non-parameters of a `VarMap`). Checkpoints store them as
//! extra tensors under [`SN_PREFIX`].

use std::cell::RefCell;
use std::collections::BTreeMap;

use candle_core::{D, Tensor};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::Result;

/// The prefix of the vectors' names among a checkpoint's extra tensors.
pub const SN_PREFIX: &str = "sn/";

/// PyTorch's `eps` of the normalisations.
const EPS: f64 = 1e-12;

/// The power-iteration vectors of every normalised weight, by weight name.
#[derive(Debug, Default)]
pub struct SpectralState {
    vectors: RefCell<BTreeMap<String, (Tensor, Tensor)>>,
}

impl SpectralState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the vectors of `name` (a weight of `out` rows, `inner` columns once
    /// flattened) from standard normal draws of `rng`, normalised.
    pub fn register<R: Rng + ?Sized>(
        &self,
        name: &str,
        out: usize,
        inner: usize,
        device: &candle_core::Device,
        rng: &mut R,
    ) -> Result<()> {
        let mut draw = |n: usize| -> Result<Tensor> {
            let values: Vec<f32> = (0..n)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect();
            Ok(normalised(&Tensor::from_vec(values, n, device)?)?)
        };
        let u = draw(out)?;
        let v = draw(inner)?;
        self.vectors.borrow_mut().insert(name.to_string(), (u, v));
        Ok(())
    }

    /// `weight / σ(weight)`, updating the vectors of `name` first when `train`.
    pub fn normalise(&self, name: &str, weight: &Tensor, train: bool) -> Result<Tensor> {
        let out = weight.dim(0)?;
        let matrix = weight.reshape((out, ()))?;
        let mut vectors = self.vectors.borrow_mut();
        let (u, v) = vectors.get_mut(name).ok_or_else(|| {
            sparse_repro::HarnessError::invalid(
                "spectral_norm",
                name,
                "no power-iteration vectors were registered for this weight",
            )
        })?;
        if train {
            let detached = matrix.detach();
            *v = normalised(&detached.t()?.matmul(&u.unsqueeze(1)?)?.squeeze(1)?)?;
            *u = normalised(&detached.matmul(&v.unsqueeze(1)?)?.squeeze(1)?)?;
        }
        let sigma = u
            .unsqueeze(0)?
            .matmul(&matrix)?
            .matmul(&v.unsqueeze(1)?)?
            .reshape(())?;
        Ok(weight.broadcast_div(&sigma)?)
    }

    /// The vectors as checkpoint extras, `sn/<weight>.u` and `sn/<weight>.v`.
    pub fn to_extra(&self) -> BTreeMap<String, Tensor> {
        let mut extra = BTreeMap::new();
        for (name, (u, v)) in self.vectors.borrow().iter() {
            extra.insert(format!("{SN_PREFIX}{name}.u"), u.clone());
            extra.insert(format!("{SN_PREFIX}{name}.v"), v.clone());
        }
        extra
    }

    /// Replaces the registered vectors with those of a checkpoint's extras.
    pub fn load_extra(&self, extra: &BTreeMap<String, Tensor>) -> Result<()> {
        let mut vectors = self.vectors.borrow_mut();
        for (name, (u, v)) in vectors.iter_mut() {
            let get = |which: &str| -> Result<Tensor> {
                let key = format!("{SN_PREFIX}{name}.{which}");
                extra.get(&key).cloned().ok_or_else(|| {
                    sparse_repro::HarnessError::invalid(
                        "checkpoint",
                        key,
                        "the spectral-norm vector is missing",
                    )
                    .into()
                })
            };
            *u = get("u")?;
            *v = get("v")?;
        }
        Ok(())
    }
}

/// `x / max(‖x‖, eps)`.
fn normalised(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(EPS, f64::INFINITY)?;
    x.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn power_iteration_finds_the_largest_singular_value_and_gradients_flow() -> Result<()> {
        let w = Var::from_tensor(&Tensor::new(&[[3f32, 0.0], [0.0, 1.0]], &Device::Cpu)?)?;
        let state = SpectralState::new();
        state.register(
            "d.weight",
            2,
            2,
            &Device::Cpu,
            &mut ChaCha8Rng::seed_from_u64(1),
        )?;
        let mut normalised = state.normalise("d.weight", w.as_tensor(), true)?;
        for _ in 0..50 {
            normalised = state.normalise("d.weight", w.as_tensor(), true)?;
        }
        let values = normalised.flatten_all()?.to_vec1::<f32>()?;
        assert!(
            (values[0] - 1.0).abs() < 1e-5 && (values[3] - 1.0 / 3.0).abs() < 1e-5,
            "{values:?}"
        );
        // evaluation leaves the vectors alone
        let before = state.to_extra();
        state.normalise("d.weight", w.as_tensor(), false)?;
        let after = state.to_extra();
        for (k, t) in &before {
            assert_eq!(t.to_vec1::<f32>()?, after[k].to_vec1::<f32>()?);
        }
        // the gradient reaches W through σ = uᵀWv (u = v = e1 at the fixed point):
        // ∂(ΣW/σ)/∂W_ij = 1/σ − ΣW·u_i·v_j/σ² = 1/3 − 4/9 at (1,1), 1/3 elsewhere
        let grads = normalised.sum_all()?.backward()?;
        let g = grads
            .get(w.as_tensor())
            .expect("a gradient")
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert!(
            (g[0] + 1.0 / 9.0).abs() < 1e-4 && (g[3] - 1.0 / 3.0).abs() < 1e-4,
            "{g:?}"
        );
        // the vectors round-trip through checkpoint extras
        let fresh = SpectralState::new();
        fresh.register(
            "d.weight",
            2,
            2,
            &Device::Cpu,
            &mut ChaCha8Rng::seed_from_u64(9),
        )?;
        fresh.load_extra(&state.to_extra())?;
        assert_eq!(
            fresh.to_extra()["sn/d.weight.u"].to_vec1::<f32>()?,
            state.to_extra()["sn/d.weight.u"].to_vec1::<f32>()?
        );
        assert!(fresh.load_extra(&BTreeMap::new()).is_err());
        Ok(())
    }
}
