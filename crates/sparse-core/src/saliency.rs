//! Saliency scores for pruning at initialisation (SNIP, GraSP) and magnitude pruning.
//!
//! Scores are returned as flat row-major `Vec<f32>`, one per weight, in the order of
//! the variables given. Turn them into layer-wise densities with
//! [`global_topk_densities`] (SNIP ratio / global magnitude, the Random_Pruning
//! "ratio" inits of methods note B §1.7) or into masks with
//! [`crate::granularity::mask_from_scores`].
//!
//! - **Magnitude**: `|W|`.
//! - **SNIP** (Lee et al. 2019): `|W ⊙ ∂L/∂W|` on one minibatch. Official SNIP (and
//!   Random_Pruning's `snip` ratio) scores a deep copy of the network whose Conv/Linear
//!   weights are re-initialised with `xavier_normal_`; SLaK scores the real weights.
//!   The re-initialisation is the caller's choice: write the Xavier weights into the
//!   vars (on a copy of the model) before computing the gradient. `|∂L/∂m|` of the
//!   official mask formulation equals `|W ⊙ ∂L/∂W|`.
//! - **GraSP** (Wang et al. 2020): `S = −W ⊙ (H g)`, `g = ∂L/∂W`, `H` the Hessian.
//!   The official code keeps the weights with the *lowest* `S` (it removes the top
//!   scores), so GraSP scores rank the other way round: [`grasp_scores`] returns the
//!   official `S`; [`crate::allocation::Allocation::GraspRatio`] keeps the lowest.
//!   `H g` is computed by central finite differences of gradients,
//!   `H g ≈ (∇L(W + εg) − ∇L(W − εg)) / 2ε`, which is exact for quadratic losses and
//!   needs no double backward (candle has none).

use candle_core::{DType, Tensor, Var, backprop::GradStore};

use crate::error::{Result, SparseError};
use crate::validate::{check_density, check_positive};

fn flat_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
}

fn grad_of(grads: &GradStore, name: &str, var: &Var) -> Result<Tensor> {
    grads
        .get(var.as_tensor())
        .cloned()
        .ok_or_else(|| SparseError::MissingGradient(name.to_string()))
}

/// Magnitude scores `|W|`, flat row-major.
pub fn magnitude_scores(weight: &Tensor) -> Result<Vec<f32>> {
    Ok(flat_f32(weight)?.into_iter().map(f32::abs).collect())
}

/// SNIP scores `|W ⊙ grad|`, flat row-major. Errors when the shapes differ.
pub fn snip_scores(weight: &Tensor, grad: &Tensor) -> Result<Vec<f32>> {
    if weight.dims() != grad.dims() {
        return Err(SparseError::ShapeMismatch {
            what: "gradient".into(),
            expected: weight.dims().to_vec(),
            got: grad.dims().to_vec(),
        });
    }
    let w = flat_f32(weight)?;
    let g = flat_f32(grad)?;
    Ok(w.iter().zip(&g).map(|(w, g)| (w * g).abs()).collect())
}

/// SNIP scores of several variables from one `GradStore` (one entry per variable, in
/// the given order). Errors with [`SparseError::MissingGradient`] for a var without
/// a gradient.
pub fn snip_scores_for(vars: &[(String, Var)], grads: &GradStore) -> Result<Vec<Vec<f32>>> {
    vars.iter()
        .map(|(name, var)| snip_scores(var.as_tensor(), &grad_of(grads, name, var)?))
        .collect()
}

/// GraSP scores `−W ⊙ (H g)` of `vars` (lower = more important, see the module docs).
///
/// `gradients` computes the loss gradients at the vars' *current* values (same batch
/// every call, so the differences measure curvature only). It is called three times:
/// at `W`, at `W + eps·g` and at `W − eps·g`, where every var in `vars` is moved
/// together. The vars are restored bit for bit afterwards, also when a call fails.
/// `eps` must be finite and positive; about `1e-3 / ‖g‖` is a reasonable choice in f32.
pub fn grasp_scores<F>(vars: &[(String, Var)], eps: f64, mut gradients: F) -> Result<Vec<Vec<f32>>>
where
    F: FnMut() -> Result<GradStore>,
{
    check_positive("eps", eps)?;
    let originals: Vec<Tensor> = vars
        .iter()
        .map(|(_, v)| v.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?;
    let grads = gradients()?;
    let g: Vec<Tensor> = vars
        .iter()
        .map(|(name, var)| grad_of(&grads, name, var))
        .collect::<Result<_>>()?;
    drop(grads);

    let perturbed = |sign: f64, gradients: &mut F| -> Result<Vec<Tensor>> {
        for ((_, var), (w0, gi)) in vars.iter().zip(originals.iter().zip(&g)) {
            var.set(&(w0 + (gi * (sign * eps))?)?)?;
        }
        let grads = gradients()?;
        vars.iter()
            .map(|(name, var)| grad_of(&grads, name, var))
            .collect()
    };
    let plus = perturbed(1.0, &mut gradients);
    let minus = plus.as_ref().ok().map(|_| perturbed(-1.0, &mut gradients));
    for ((_, var), w0) in vars.iter().zip(&originals) {
        var.set(w0)?;
    }
    let plus = plus?;
    let minus = minus.unwrap_or_else(|| Ok(Vec::new()))?;

    originals
        .iter()
        .zip(plus.iter().zip(&minus))
        .map(|(w0, (gp, gm))| {
            let hg = ((gp - gm)? / (2.0 * eps))?;
            flat_f32(&(w0 * hg)?.neg()?)
        })
        .collect()
}

/// Layer-wise densities from per-layer scores by one global top-k: the
/// `floor(density · N)` highest scores over all layers are kept (as the official
/// `int(N·d)`), and each layer's density is its kept share. Ties are broken by layer
/// order, then flat index (deterministic); the official code keeps every score
/// `>=` the threshold, which differs only when scores tie at the threshold. A layer
/// may get density 0.
///
/// Errors on a density outside `(0, 1]`, a NaN score or an empty layer list.
pub fn global_topk_densities(scores: &[Vec<f32>], density: f64) -> Result<Vec<f64>> {
    check_density(density)?;
    let total: usize = scores.iter().map(Vec::len).sum();
    if total == 0 {
        return Err(SparseError::invalid_input("scores", "no weights to rank"));
    }
    let mut flat: Vec<(f32, usize)> = Vec::with_capacity(total);
    for (layer, s) in scores.iter().enumerate() {
        if let Some(i) = s.iter().position(|v| v.is_nan()) {
            return Err(SparseError::invalid_input(
                "scores",
                format!("NaN score in layer {layer} at flat index {i}"),
            ));
        }
        flat.extend(s.iter().map(|&v| (v, layer)));
    }
    let keep = ((density * total as f64).floor() as usize).min(total);
    let mut kept = vec![0usize; scores.len()];
    if keep > 0 {
        // Positions in `flat` are the global order, so comparing them breaks ties.
        let mut idx: Vec<usize> = (0..total).collect();
        if keep < total {
            idx.select_nth_unstable_by(keep - 1, |&a, &b| {
                flat[b].0.total_cmp(&flat[a].0).then(a.cmp(&b))
            });
        }
        for &i in &idx[..keep] {
            kept[flat[i].1] += 1;
        }
    }
    Ok(scores
        .iter()
        .zip(kept)
        .map(|(s, k)| {
            if s.is_empty() {
                1.0
            } else {
                k as f64 / s.len() as f64
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn snip_score_hand_computed() {
        let dev = Device::Cpu;
        let w = Tensor::new(&[[1.0f32, -2.0], [0.5, 3.0]], &dev).unwrap();
        let g = Tensor::new(&[[0.5f32, 0.25], [-4.0, 0.0]], &dev).unwrap();
        assert_eq!(snip_scores(&w, &g).unwrap(), vec![0.5, 0.5, 2.0, 0.0]);
        assert!(snip_scores(&w, &Tensor::zeros(4, DType::F32, &dev).unwrap()).is_err());
    }

    #[test]
    fn snip_scores_from_a_real_backward() {
        // L = sum(x · W) with x = [1, 2, 3]: dL/dW = x, so SNIP = |W · x|.
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[2.0f32, -1.0, 0.5], &dev).unwrap()).unwrap();
        let x = Tensor::new(&[1.0f32, 2.0, 3.0], &dev).unwrap();
        let grads = (w.as_tensor() * &x)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let vars = vec![("w".to_string(), w.clone())];
        assert_eq!(
            snip_scores_for(&vars, &grads).unwrap(),
            vec![vec![2.0, 2.0, 1.5]]
        );
        let other = Var::zeros(3, DType::F32, &dev).unwrap();
        let err = snip_scores_for(&[("other".to_string(), other)], &grads).unwrap_err();
        assert!(matches!(err, SparseError::MissingGradient(n) if n == "other"));
    }

    #[test]
    fn grasp_on_a_quadratic_is_exact_and_restores_weights() {
        // L = ½ Σ a_i w_i²: g = a ⊙ w, H = diag(a), H g = a² ⊙ w, S = −a² w².
        let dev = Device::Cpu;
        let w0 = [1.0f32, -2.0, 0.5];
        let a = Tensor::new(&[2.0f32, 0.5, 4.0], &dev).unwrap();
        let w = Var::from_tensor(&Tensor::new(&w0, &dev).unwrap()).unwrap();
        let vars = vec![("w".to_string(), w.clone())];
        let mut calls = 0;
        let scores = grasp_scores(&vars, 1e-2, || {
            calls += 1;
            let loss = ((w.as_tensor().sqr()? * &a)?.sum_all()? * 0.5)?;
            Ok(loss.backward()?)
        })
        .unwrap();
        assert_eq!(calls, 3);
        let expected = [-4.0f32, -1.0, -4.0];
        for (s, e) in scores[0].iter().zip(expected) {
            assert!((s - e).abs() < 1e-3, "{s} vs {e}");
        }
        assert_eq!(w.as_tensor().to_vec1::<f32>().unwrap(), w0.to_vec());
        assert!(grasp_scores(&vars, 0.0, || unreachable!()).is_err());
    }

    #[test]
    fn global_topk_gives_each_layer_its_share() {
        let scores = vec![
            vec![9.0, 1.0, 8.0, 2.0],
            vec![7.0, 0.0],
            vec![3.0, 6.0, 5.0, 4.0],
        ];
        // N = 10, d = 0.5: keep 9, 8, 7, 6, 5.
        let d = global_topk_densities(&scores, 0.5).unwrap();
        assert_eq!(d, vec![0.5, 0.5, 0.5]);
        // d = 0.3: keep 9, 8, 7.
        let d = global_topk_densities(&scores, 0.3).unwrap();
        assert_eq!(d, vec![0.5, 0.5, 0.0]);
        assert!(global_topk_densities(&scores, 0.0).is_err());
        assert!(global_topk_densities(&[vec![f32::NAN]], 0.5).is_err());
    }
}
