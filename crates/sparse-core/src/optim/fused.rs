//! In-place optimizer updates for f32 tensors on the CPU.
//!
//! Written as candle ops, one SGD step with momentum is eight element-wise ops per
//! parameter and an Adam step a dozen; each allocates a fresh buffer, and on a small
//! model the page faults of those buffers cost more than the arithmetic. Here each
//! buffer (parameter, momentum, moments) is rewritten in place in one pass that reads
//! the gradient directly.
//!
//! Every element goes through the same f32 operations in the same order as the
//! candle-op path (candle's `t * s` is `t·s + 0`, `t / s` is `t·(1/s) + 0`, with the
//! scalars rounded to f32 first), so the two paths give bit-identical results; the
//! tests check that over several steps of every option. Other dtypes and devices keep
//! the candle-op path.

use candle_core::{CpuStorage, DType, Layout, Tensor, bail};

use crate::mask::Mask;

#[cfg(test)]
thread_local! {
    /// Set by tests to run the candle-op path on f32 CPU tensors, as the reference.
    pub(super) static OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True when every tensor is a contiguous f32 tensor on the CPU.
pub(super) fn applies(tensors: &[&Tensor]) -> bool {
    #[cfg(test)]
    if OFF.with(std::cell::Cell::get) {
        return false;
    }
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous())
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => bail!("{what}: a contiguous f32 tensor is required"),
    }
}

fn slice_mut<'a>(
    s: &'a mut CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => bail!("{what}: a contiguous f32 tensor is required"),
    }
}

/// candle's affine `x·mul + add` (as `t * s` computes it).
#[inline(always)]
fn affine(x: f32, mul: f32, add: f32) -> f32 {
    x * mul + add
}

/// SGD's scalars, rounded to f32 as candle rounds them.
#[derive(Debug, Clone, Copy)]
pub(super) struct SgdScalars {
    pub lr: f32,
    /// `None` when the parameter has no weight decay.
    pub weight_decay: Option<f32>,
    pub momentum: f32,
    /// `1 − dampening`.
    pub keep: f32,
    pub nesterov: bool,
}

impl SgdScalars {
    /// The gradient with (coupled) weight decay.
    #[inline(always)]
    fn decayed(&self, g: f32, p: f32) -> f32 {
        match self.weight_decay {
            Some(wd) => g + affine(p, wd, 0.0),
            None => g,
        }
    }
}

/// `buf ← momentum·buf + (1 − dampening)·g'` (or `g'` on the first step), in place.
struct SgdMomentum {
    scalars: SgdScalars,
    first: bool,
}

impl candle_core::InplaceOp3 for SgdMomentum {
    fn name(&self) -> &'static str {
        "sgd-momentum"
    }

    fn cpu_fwd(
        &self,
        buf: &mut CpuStorage,
        buf_l: &Layout,
        grad: &CpuStorage,
        grad_l: &Layout,
        param: &CpuStorage,
        param_l: &Layout,
    ) -> candle_core::Result<()> {
        let s = self.scalars;
        let buf = slice_mut(buf, buf_l, "momentum buffer")?;
        let (g, p) = (
            slice(grad, grad_l, "gradient")?,
            slice(param, param_l, "parameter")?,
        );
        for ((b, &g), &p) in buf.iter_mut().zip(g).zip(p) {
            let g = s.decayed(g, p);
            *b = if self.first {
                g
            } else {
                affine(*b, s.momentum, 0.0) + affine(g, s.keep, 0.0)
            };
        }
        Ok(())
    }
}

/// `p ← p − lr·d`, `d` the (Nesterov) momentum direction, in place.
struct SgdParam {
    scalars: SgdScalars,
}

impl candle_core::InplaceOp3 for SgdParam {
    fn name(&self) -> &'static str {
        "sgd-param"
    }

    fn cpu_fwd(
        &self,
        param: &mut CpuStorage,
        param_l: &Layout,
        grad: &CpuStorage,
        grad_l: &Layout,
        buf: &CpuStorage,
        buf_l: &Layout,
    ) -> candle_core::Result<()> {
        let s = self.scalars;
        let p = slice_mut(param, param_l, "parameter")?;
        let (g, buf) = (
            slice(grad, grad_l, "gradient")?,
            slice(buf, buf_l, "momentum buffer")?,
        );
        for ((p, &g), &b) in p.iter_mut().zip(g).zip(buf) {
            let g = s.decayed(g, *p);
            let d = if s.nesterov {
                g + affine(b, s.momentum, 0.0)
            } else {
                b
            };
            *p -= affine(d, s.lr, 0.0);
        }
        Ok(())
    }
}

/// `p ← p − lr·g'` (SGD without momentum), in place.
struct SgdPlain {
    scalars: SgdScalars,
}

impl candle_core::InplaceOp2 for SgdPlain {
    fn name(&self) -> &'static str {
        "sgd-plain"
    }

    fn cpu_fwd(
        &self,
        param: &mut CpuStorage,
        param_l: &Layout,
        grad: &CpuStorage,
        grad_l: &Layout,
    ) -> candle_core::Result<()> {
        let s = self.scalars;
        let p = slice_mut(param, param_l, "parameter")?;
        for (p, &g) in p.iter_mut().zip(slice(grad, grad_l, "gradient")?) {
            let g = s.decayed(g, *p);
            *p -= affine(g, s.lr, 0.0);
        }
        Ok(())
    }
}

/// One SGD step of `param` in place. `buffer` is the momentum buffer (updated in
/// place; `None` on the first step with momentum, when the returned buffer is new).
/// Returns the momentum buffer, if momentum is on.
pub(super) fn sgd_step(
    param: &Tensor,
    grad: &Tensor,
    buffer: Option<Tensor>,
    s: SgdScalars,
) -> candle_core::Result<Option<Tensor>> {
    if s.momentum == 0.0 {
        param.inplace_op2(grad, &SgdPlain { scalars: s })?;
        return Ok(None);
    }
    let (buf, first) = match buffer {
        Some(b) => (b, false),
        None => (param.zeros_like()?, true),
    };
    buf.inplace_op3(grad, param, &SgdMomentum { scalars: s, first })?;
    param.inplace_op3(grad, &buf, &SgdParam { scalars: s })?;
    Ok(Some(buf))
}

/// Adam's scalars for one step, rounded to f32 as candle rounds them.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdamScalars {
    /// Coupled (L2) weight decay added to the gradient.
    pub l2: Option<f32>,
    /// Decoupled decay factor `1 − lr·wd` applied to the parameter.
    pub shrink: Option<f32>,
    pub beta1: f32,
    pub beta2: f32,
    /// `1 − β1`, `1 − β2`.
    pub keep1: f32,
    pub keep2: f32,
    /// `1 / sqrt(1 − β2^t)`.
    pub inv_bias2_sqrt: f32,
    pub eps: f32,
    /// `lr / (1 − β1^t)`.
    pub step_size: f32,
}

impl AdamScalars {
    #[inline(always)]
    fn decayed(&self, g: f32, p: f32) -> f32 {
        match self.l2 {
            Some(wd) => g + affine(p, wd, 0.0),
            None => g,
        }
    }
}

/// Which moment an [`AdamMoment`] pass updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    First,
    Second,
}

/// `m ← β1·m + (1 − β1)·g'` or `v ← β2·v + (1 − β2)·g'²` (without the old value on
/// the first step), in place.
struct AdamMoment {
    scalars: AdamScalars,
    which: Moment,
    first: bool,
}

impl candle_core::InplaceOp3 for AdamMoment {
    fn name(&self) -> &'static str {
        "adam-moment"
    }

    fn cpu_fwd(
        &self,
        moment: &mut CpuStorage,
        moment_l: &Layout,
        grad: &CpuStorage,
        grad_l: &Layout,
        param: &CpuStorage,
        param_l: &Layout,
    ) -> candle_core::Result<()> {
        let s = self.scalars;
        let m = slice_mut(moment, moment_l, "Adam moment")?;
        let (g, p) = (
            slice(grad, grad_l, "gradient")?,
            slice(param, param_l, "parameter")?,
        );
        let (beta, keep) = match self.which {
            Moment::First => (s.beta1, s.keep1),
            Moment::Second => (s.beta2, s.keep2),
        };
        for ((m, &g), &p) in m.iter_mut().zip(g).zip(p) {
            let g = s.decayed(g, p);
            let x = match self.which {
                Moment::First => g,
                Moment::Second => g * g,
            };
            let fresh = affine(x, keep, 0.0);
            *m = if self.first {
                fresh
            } else {
                affine(*m, beta, 0.0) + fresh
            };
        }
        Ok(())
    }
}

/// `max ← max(max, v)` (AMSGrad), in place.
struct RunningMax;

impl candle_core::InplaceOp2 for RunningMax {
    fn name(&self) -> &'static str {
        "adam-running-max"
    }

    fn cpu_fwd(
        &self,
        max: &mut CpuStorage,
        max_l: &Layout,
        v: &CpuStorage,
        v_l: &Layout,
    ) -> candle_core::Result<()> {
        let max = slice_mut(max, max_l, "AMSGrad maximum")?;
        for (m, &v) in max.iter_mut().zip(slice(v, v_l, "exp_avg_sq")?) {
            // candle's `maximum` keeps the left operand unless the right one is larger
            *m = if v > *m { v } else { *m };
        }
        Ok(())
    }
}

/// `p ← p' − step_size·m / (sqrt(v)/sqrt(1 − β2^t) + ε)`, `p'` the decoupled-decayed
/// parameter, in place.
struct AdamParam {
    scalars: AdamScalars,
}

impl candle_core::InplaceOp3 for AdamParam {
    fn name(&self) -> &'static str {
        "adam-param"
    }

    fn cpu_fwd(
        &self,
        param: &mut CpuStorage,
        param_l: &Layout,
        exp_avg: &CpuStorage,
        exp_avg_l: &Layout,
        second: &CpuStorage,
        second_l: &Layout,
    ) -> candle_core::Result<()> {
        let s = self.scalars;
        let p = slice_mut(param, param_l, "parameter")?;
        let m = slice(exp_avg, exp_avg_l, "exp_avg")?;
        let v = slice(second, second_l, "exp_avg_sq")?;
        for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
            let base = match s.shrink {
                Some(f) => affine(*p, f, 0.0),
                None => *p,
            };
            let denom = affine(affine(v.sqrt(), s.inv_bias2_sqrt, 0.0), 1.0, s.eps);
            *p = base - affine(m / denom, s.step_size, 0.0);
        }
        Ok(())
    }
}

/// Adam's buffers of one parameter, updated in place by [`adam_step`].
pub(super) struct AdamBuffers {
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
    pub max_exp_avg_sq: Option<Tensor>,
}

/// One Adam step of `param` in place. `buffers` are the moments of the previous
/// step (`None` on the first step); `amsgrad` keeps the running maximum. Returns the
/// updated moments.
pub(super) fn adam_step(
    param: &Tensor,
    grad: &Tensor,
    buffers: Option<AdamBuffers>,
    amsgrad: bool,
    s: AdamScalars,
) -> candle_core::Result<AdamBuffers> {
    let first = buffers.is_none();
    let mut b = match buffers {
        Some(b) => b,
        None => AdamBuffers {
            exp_avg: param.zeros_like()?,
            exp_avg_sq: param.zeros_like()?,
            max_exp_avg_sq: None,
        },
    };
    for (moment, which) in [(&b.exp_avg, Moment::First), (&b.exp_avg_sq, Moment::Second)] {
        moment.inplace_op3(
            grad,
            param,
            &AdamMoment {
                scalars: s,
                which,
                first,
            },
        )?;
    }
    if amsgrad {
        b.max_exp_avg_sq = Some(match b.max_exp_avg_sq.take() {
            Some(max) => {
                max.inplace_op2(&b.exp_avg_sq, &RunningMax)?;
                max
            }
            None => b.exp_avg_sq.copy()?,
        });
    }
    let second = b.max_exp_avg_sq.as_ref().unwrap_or(&b.exp_avg_sq);
    param.inplace_op3(&b.exp_avg, second, &AdamParam { scalars: s })?;
    Ok(b)
}

/// `t ← t ⊙ mask` in place when `t` is a contiguous f32 CPU tensor (returns `false`,
/// changing nothing, otherwise).
pub(crate) fn mask_in_place(t: &Tensor, mask: &Mask) -> candle_core::Result<bool> {
    if !applies(&[t]) {
        return Ok(false);
    }
    t.inplace_op1(&ZeroInactive { mask })?;
    Ok(true)
}

/// `w ← w·0` at every inactive position of `mask` (what `w·m` gives for a 0/1 mask,
/// signs of zero included), in place.
struct ZeroInactive<'a> {
    mask: &'a Mask,
}

impl candle_core::InplaceOp1 for ZeroInactive<'_> {
    fn name(&self) -> &'static str {
        "zero-inactive"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let w = slice_mut(storage, layout, "masked weight")?;
        if w.len() != self.mask.numel() {
            bail!(
                "mask of {} entries for a weight of {}",
                self.mask.numel(),
                w.len()
            );
        }
        // Branch-free (so it vectorises): active entries are multiplied by 1, which
        // leaves every value unchanged.
        for (w, &bit) in w.iter_mut().zip(self.mask.as_bits()) {
            *w *= f32::from(u8::from(bit != 0));
        }
        Ok(())
    }
}
