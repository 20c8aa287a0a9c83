//! The mixture-of-experts feed-forward layer: N experts
//! `W2 · Dropout(ReLU(W1 x + b1)) + b2` of hidden size h behind a linear router
//! `W_r x + b_r`, top-k routing with the
//! softmax over the selected logits only (the official `CustomNaiveGate`), and real
//! dispatch: each expert runs on the tokens routed to it, so a step at k experts
//! does about k/N of the dense layer's work.
//!
//! [`MoeLayer::forward_all_experts`] is the test oracle: every expert on every
//! token, unselected experts weighted by zero.

use candle_core::Tensor;
use candle_nn::VarBuilder;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sparse_core::kernels::{Activation, linear, softmax_last_dim};
use sparse_repro::HarnessError;

use crate::error::Result;
use crate::layers::TwoLayer;
use crate::mode::Mode;

/// How the router picks experts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterKind {
    /// SMoE-Dropout: the randomly initialised router is never trained.
    Frozen,
    /// The learned-router SMoE baseline: the router trains with the model.
    Learned,
    /// `CustomRandomGate` (THOR's stochastic experts): uniform random scores at every
    /// forward pass, in training and at inference.
    Random,
}

/// Which experts each token goes to, and with what weight.
#[derive(Debug, Clone)]
pub struct Routing {
    /// The selected experts, `k` per token, row-major `[tokens, k]`, best first.
    pub experts: Vec<u32>,
    /// Their weights `[tokens, k]`: the softmax of the selected logits.
    pub weights: Tensor,
    /// Experts per token.
    pub k: usize,
}

impl Routing {
    /// How many token slots each of `num_experts` experts received.
    pub fn load(&self, num_experts: usize) -> Vec<usize> {
        let mut load = vec![0; num_experts];
        for &e in &self.experts {
            load[e as usize] += 1;
        }
        load
    }
}

/// The indices of the `k` largest of `scores`, largest first; ties go to the lower
/// index.
pub fn top_k(scores: &[f32], k: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    order.truncate(k);
    order
}

/// An MoE feed-forward layer.
#[derive(Debug, Clone)]
pub struct MoeLayer {
    router_weight: Tensor,
    router_bias: Tensor,
    experts: Vec<TwoLayer>,
    kind: RouterKind,
    /// Seeds the random router's scores at inference (deterministic evaluation).
    eval_seed: u64,
}

impl MoeLayer {
    /// `num_experts` experts of `hidden` units over `dim` features, the router under
    /// `router.{weight,bias}` and expert `j` under `experts.{j}.{w1,w2}.{weight,bias}`.
    /// Every tensor starts at zero: the model initialises them from its seed.
    pub fn new(
        dim: usize,
        num_experts: usize,
        hidden: usize,
        kind: RouterKind,
        eval_seed: u64,
        vb: VarBuilder,
    ) -> Result<Self> {
        if num_experts == 0 || hidden == 0 || dim == 0 {
            return Err(HarnessError::invalid(
                "num_experts",
                num_experts,
                format!("an MoE layer needs experts, hidden units and features (h = {hidden}, d = {dim})"),
            )
            .into());
        }
        let zeros = candle_nn::Init::Const(0.0);
        let router = vb.pp("router");
        let router_weight = router.get_with_hints((num_experts, dim), "weight", zeros)?;
        let router_bias = router.get_with_hints(num_experts, "bias", zeros)?;
        let experts = (0..num_experts)
            .map(|j| TwoLayer::new(dim, hidden, vb.pp(format!("experts.{j}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            router_weight,
            router_bias,
            experts,
            kind,
            eval_seed,
        })
    }

    /// Number of experts N.
    pub fn num_experts(&self) -> usize {
        self.experts.len()
    }

    /// How the router picks experts.
    pub fn kind(&self) -> RouterKind {
        self.kind
    }

    /// The router's logits `[tokens, N]` for `x: [tokens, dim]`. A frozen router's
    /// weights are detached (no gradient is computed for them); the logits still pass
    /// gradients to `x`, as PyTorch does with `requires_grad = False`.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b) = match self.kind {
            RouterKind::Frozen => (self.router_weight.detach(), self.router_bias.detach()),
            _ => (self.router_weight.clone(), self.router_bias.clone()),
        };
        Ok(linear(x, &w, Some(&b), Activation::Identity)?)
    }

    /// Routes every token of `x: [tokens, dim]` to `k` experts.
    pub fn route(&self, x: &Tensor, k: usize, mode: &mut Mode) -> Result<Routing> {
        let n = self.num_experts();
        if k == 0 || k > n {
            return Err(HarnessError::invalid("k", k, format!("must be in 1..={n}")).into());
        }
        let tokens = x.dim(0)?;
        let scores = match self.kind {
            RouterKind::Random => {
                let mut eval_rng;
                let rng: &mut ChaCha8Rng = match mode.rng() {
                    Some(rng) => rng,
                    None => {
                        eval_rng = sparse_repro::rng::rng_from_seed(self.eval_seed);
                        &mut eval_rng
                    }
                };
                let values: Vec<f32> = (0..tokens * n).map(|_| rng.random::<f32>()).collect();
                Tensor::from_vec(values, (tokens, n), x.device())?
            }
            _ => self.logits(x)?,
        };
        let rows: Vec<Vec<f32>> = scores.detach().to_vec2()?;
        let experts: Vec<u32> = rows.iter().flat_map(|row| top_k(row, k)).collect();
        let index = Tensor::from_vec(experts.clone(), (tokens, k), x.device())?;
        let weights = softmax_last_dim(&scores.gather(&index, 1)?.contiguous()?)?;
        Ok(Routing {
            experts,
            weights,
            k,
        })
    }

    /// The layer's output `[tokens, dim]` for `x: [tokens, dim]` at `k` experts per
    /// token, through real dispatch.
    pub fn forward(&self, x: &Tensor, k: usize, mode: &mut Mode) -> Result<Tensor> {
        let routing = self.route(x, k, mode)?;
        self.dispatch(x, &routing, mode)
    }

    /// Runs each expert on the tokens routed to it and adds the weighted outputs back
    /// in place.
    pub fn dispatch(&self, x: &Tensor, routing: &Routing, mode: &mut Mode) -> Result<Tensor> {
        let (tokens, dim) = x.dims2()?;
        let k = routing.k;
        let n = self.num_experts();
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut slots: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (slot, &expert) in routing.experts.iter().enumerate() {
            rows[expert as usize].push((slot / k) as u32);
            slots[expert as usize].push(slot as u32);
        }
        let flat_weights = routing.weights.flatten_all()?;
        let device = x.device();
        let mut outputs = Vec::with_capacity(n);
        let mut destinations = Vec::with_capacity(tokens * k);
        for (j, expert) in self.experts.iter().enumerate() {
            if rows[j].is_empty() {
                continue;
            }
            let count = rows[j].len();
            let row_index = Tensor::from_slice(&rows[j], count, device)?;
            let slot_index = Tensor::from_slice(&slots[j], count, device)?;
            let y = expert.forward(&x.index_select(&row_index, 0)?, None, mode)?;
            let w = flat_weights.index_select(&slot_index, 0)?.unsqueeze(1)?;
            outputs.push(y.broadcast_mul(&w)?);
            destinations.extend_from_slice(&rows[j]);
        }
        let stacked = Tensor::cat(&outputs, 0)?;
        let destinations = Tensor::from_vec(destinations, tokens * k, device)?;
        Ok(Tensor::zeros((tokens, dim), x.dtype(), device)?.index_add(
            &destinations,
            &stacked,
            0,
        )?)
    }

    /// The oracle: every expert on every token, weighted by the routing's weights
    /// and by zero where an expert was not selected (no dropout).
    pub fn forward_all_experts(&self, x: &Tensor, routing: &Routing) -> Result<Tensor> {
        let tokens = x.dim(0)?;
        let n = self.num_experts();
        // [tokens, N] = Σ over slots s of onehot(expert of s) · weight of s,
        // differentiable in the routing weights
        let mut dense = Tensor::zeros((tokens, n), routing.weights.dtype(), x.device())?;
        for s in 0..routing.k {
            let mut onehot = vec![0f32; tokens * n];
            for t in 0..tokens {
                onehot[t * n + routing.experts[t * routing.k + s] as usize] = 1.0;
            }
            let onehot = Tensor::from_vec(onehot, (tokens, n), x.device())?;
            dense = (dense + onehot.broadcast_mul(&routing.weights.narrow(1, s, 1)?)?)?;
        }
        let mut total: Option<Tensor> = None;
        for (j, expert) in self.experts.iter().enumerate() {
            let y = expert
                .forward(x, None, &mut Mode::Eval)?
                .broadcast_mul(&dense.narrow(1, j, 1)?)?;
            total = Some(match total {
                None => y,
                Some(t) => (t + y)?,
            });
        }
        total.ok_or_else(|| HarnessError::invalid("num_experts", 0, "no experts").into())
    }

    /// The router's weight and bias (for the frozen-router check).
    pub fn router(&self) -> (&Tensor, &Tensor) {
        (&self.router_weight, &self.router_bias)
    }
}
