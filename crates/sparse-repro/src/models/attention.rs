//! Multi-head scaled dot-product attention for the transformer reproductions,
//! differentiable end to end on candle 0.11 (whose fused `sdpa` and
//! `softmax_last_dim` have no backward): projections through sparse-core's
//! `linear`, scores through batched matmuls, masks as additive `−∞`, and
//! sparse-core's `softmax_last_dim`.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{VarBuilder, VarMap};
//! use sparse_repro::models::attention::MultiHeadAttention;
//!
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let attention = MultiHeadAttention::new(16, 4, vb)?;
//! let x = Tensor::randn(0f32, 1.0, (2, 5, 16), &Device::Cpu)?;
//! let y = attention.forward(&x, None, true, None)?; // causal self-attention
//! assert_eq!(y.dims(), &[2, 5, 16]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use sparse_core::kernels::{Activation, linear, softmax_last_dim};

/// A projection's weight `[out, in]` and bias `[out]` (candle-nn `Linear` names).
#[derive(Debug, Clone)]
struct Projection {
    weight: Tensor,
    bias: Tensor,
}

impl Projection {
    fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / (dim as f64).sqrt();
        Ok(Self {
            weight: vb.get_with_hints(
                (dim, dim),
                "weight",
                candle_nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?,
            bias: vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
        })
    }

    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        linear(x, &self.weight, Some(&self.bias), Activation::Identity)
    }
}

/// Multi-head attention with `q_proj`, `k_proj`, `v_proj` and `out_proj` (all
/// `dim × dim` with biases).
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    q: Projection,
    k: Projection,
    v: Projection,
    out: Projection,
    heads: usize,
    dim: usize,
}

/// `[t, s]` additive mask: 0 where key `j ≤` query `i + offset`, `−∞` after.
pub fn causal_mask(t: usize, s: usize, device: &candle_core::Device) -> Result<Tensor> {
    let offset = s.saturating_sub(t);
    let values: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..s).map(move |j| {
                if j <= i + offset {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_vec(values, (t, s), device)
}

impl MultiHeadAttention {
    /// `heads` heads over `dim` features (`dim` divisible by `heads`).
    pub fn new(dim: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) {
            candle_core::bail!("attention over {dim} features cannot have {heads} heads")
        }
        Ok(Self {
            q: Projection::new(dim, vb.pp("q_proj"))?,
            k: Projection::new(dim, vb.pp("k_proj"))?,
            v: Projection::new(dim, vb.pp("v_proj"))?,
            out: Projection::new(dim, vb.pp("out_proj"))?,
            heads,
            dim,
        })
    }

    /// `[b, n, dim]` to `[b, heads, n, dim / heads]`.
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, _) = x.dims3()?;
        x.reshape((b, n, self.heads, self.dim / self.heads))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// The attention weights `[b, heads, t, s]` of the queries `x: [b, t, dim]` over
    /// the keys of `source: [b, s, dim]`, with the masks of [`Self::forward`].
    fn attention_weights(
        &self,
        x: &Tensor,
        source: &Tensor,
        causal: bool,
        key_padding: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t, dim) = x.dims3()?;
        if dim != self.dim {
            candle_core::bail!("attention over {} features got {:?}", self.dim, x.shape())
        }
        let s = source.dim(1)?;
        let q = self.split(&self.q.apply(x)?)?;
        let k = self.split(&self.k.apply(source)?)?;
        let scale = 1.0 / ((self.dim / self.heads) as f64).sqrt();
        let mut scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? * scale)?;
        if causal {
            scores = scores.broadcast_add(&causal_mask(t, s, x.device())?)?;
        }
        if let Some(keep) = key_padding {
            // 1 → 0, 0 → −∞, as [b, 1, 1, s]
            let keep = keep.to_dtype(DType::F32)?;
            let hide = keep.eq(0f32)?;
            let zeros = keep.zeros_like()?;
            let neg = Tensor::full(f32::NEG_INFINITY, keep.shape(), keep.device())?;
            let additive = hide.where_cond(&neg, &zeros)?.reshape((b, 1, 1, s))?;
            scores = scores.broadcast_add(&additive)?;
        }
        softmax_last_dim(&scores)
    }

    /// Attention of the queries `x: [b, t, dim]` over `memory: [b, s, dim]` (the
    /// queries themselves when `None`: self-attention). `causal` hides keys after
    /// each query (aligned at the end when `s > t`); `key_padding: [b, s]` (1 for a
    /// real key, 0 for padding) hides padded keys. Returns `[b, t, dim]`.
    pub fn forward(
        &self,
        x: &Tensor,
        memory: Option<&Tensor>,
        causal: bool,
        key_padding: Option<&Tensor>,
    ) -> Result<Tensor> {
        let source = memory.unwrap_or(x);
        let weights = self.attention_weights(x, source, causal, key_padding)?;
        let v = self.split(&self.v.apply(source)?)?;
        let (b, t, _) = x.dims3()?;
        let context = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, self.dim))?;
        self.out.apply(&context)
    }

    /// The self-attention weights `[b, heads, t, t]` of `forward(x, None, causal,
    /// None)` (for inspection and tests).
    pub fn weights(&self, x: &Tensor, causal: bool) -> Result<Tensor> {
        self.attention_weights(x, x, causal, None)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, IndexOp, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    use super::*;

    fn build(dim: usize, heads: usize) -> (VarMap, MultiHeadAttention) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let a = MultiHeadAttention::new(dim, heads, vb).unwrap();
        (varmap, a)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .unwrap_or(f32::INFINITY)
    }

    #[test]
    fn matches_a_per_head_reference() -> Result<()> {
        let (_, a) = build(8, 2);
        let x = Tensor::randn(0f32, 1.0, (1, 3, 8), &Device::Cpu)?;
        let y = a.forward(&x, None, false, None)?;
        // head by head with candle's composed softmax
        let (q, k, v) = (a.q.apply(&x)?, a.k.apply(&x)?, a.v.apply(&x)?);
        let mut heads = Vec::new();
        for h in 0..2 {
            let cols = |t: &Tensor| t.i((0, .., h * 4..(h + 1) * 4));
            let (qh, kh, vh) = (cols(&q)?, cols(&k)?, cols(&v)?);
            let scores = (qh.matmul(&kh.t()?)? / 2.0)?;
            let w = candle_nn::ops::softmax(&scores, D::Minus1)?;
            heads.push(w.matmul(&vh)?);
        }
        let reference = a.out.apply(&Tensor::cat(&heads, 1)?.unsqueeze(0)?)?;
        assert!(max_diff(&y, &reference) < 1e-5);
        Ok(())
    }

    #[test]
    fn causal_attention_ignores_the_future_and_padding_hides_keys() -> Result<()> {
        let (varmap, a) = build(8, 2);
        let x = Tensor::randn(0f32, 1.0, (1, 4, 8), &Device::Cpu)?;
        let y = a.forward(&x, None, true, None)?;
        // change the last token: the first three outputs stay
        let changed = Tensor::cat(&[x.narrow(1, 0, 3)?, (x.narrow(1, 3, 1)? + 5.0)?], 1)?;
        let y2 = a.forward(&changed, None, true, None)?;
        assert!(max_diff(&y.narrow(1, 0, 3)?, &y2.narrow(1, 0, 3)?) < 1e-6);
        assert!(max_diff(&y.narrow(1, 3, 1)?, &y2.narrow(1, 3, 1)?) > 1e-3);
        let w: Vec<Vec<f32>> = a.weights(&x, true)?.i((0, 0))?.to_vec2()?;
        assert_eq!(w[0][1..], [0.0, 0.0, 0.0]);
        // padding: the last key hidden → changing it changes nothing
        let keep = Tensor::new(&[[1f32, 1.0, 1.0, 0.0]], &Device::Cpu)?;
        let p1 = a.forward(&x, None, false, Some(&keep))?;
        let p2 = a.forward(&changed, None, false, Some(&keep))?;
        assert!(max_diff(&p1.narrow(1, 0, 3)?, &p2.narrow(1, 0, 3)?) < 1e-6);
        // gradients reach every projection
        let grads = y.sum_all()?.backward()?;
        let data = varmap.data().lock().unwrap();
        for name in [
            "q_proj.weight",
            "k_proj.weight",
            "v_proj.weight",
            "out_proj.weight",
        ] {
            let g = grads.get(data[name].as_tensor()).expect(name);
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0, "{name}");
        }
        Ok(())
    }

    #[test]
    fn cross_attention_reads_the_memory() -> Result<()> {
        let (_, a) = build(8, 4);
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8), &Device::Cpu)?;
        let memory = Tensor::randn(0f32, 1.0, (2, 6, 8), &Device::Cpu)?;
        assert_eq!(a.forward(&x, Some(&memory), false, None)?.dims(), [2, 3, 8]);
        assert!(
            MultiHeadAttention::new(
                6,
                4,
                VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu)
            )
            .is_err()
        );
        Ok(())
    }
}
