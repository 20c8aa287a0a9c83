//! ReLU pieces that fold into the fused layers: the backward mask, and the
//! residual `relu(a + b)` of the ResNets as one op.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::{custom_applies, f32_data};

/// On (`dy`, `y`): `dy` where `y > 0`, else 0 — ReLU's backward read from its
/// output.
pub(crate) struct ReluMask;

impl CustomOp2 for ReluMask {
    fn name(&self) -> &'static str {
        "relu-mask"
    }

    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dy = f32_data(ds, dl, "relu output grad")?;
        let y = f32_data(ys, yl, "relu output")?;
        let g = dy
            .iter()
            .zip(y)
            .map(|(&d, &v)| if v > 0.0 { d } else { 0.0 })
            .collect();
        Ok((CpuStorage::F32(g), dl.shape().clone()))
    }
}

/// `dy` masked by the ReLU output `y` (both contiguous f32 on the CPU).
pub(crate) fn relu_backward(dy: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    dy.contiguous()?.apply_op2_no_bwd(y, &ReluMask)
}

/// `relu(a + b)` for two tensors of one shape (a residual connection), one pass
/// forward and one backward; other dtypes or devices run candle's ops.
pub fn add_relu(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    if a.shape() != b.shape() {
        candle_core::bail!(
            "add_relu: shapes {:?} and {:?} differ",
            a.shape(),
            b.shape()
        )
    }
    if !(custom_applies(a) && custom_applies(b)) {
        return (a + b)?.relu();
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, AddRelu)
}

struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "add-relu"
    }

    fn cpu_fwd(
        &self,
        as_: &CpuStorage,
        al: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let a = f32_data(as_, al, "add_relu lhs")?;
        let b = f32_data(bs, bl, "add_relu rhs")?;
        let y = a.iter().zip(b).map(|(&x, &y)| (x + y).max(0.0)).collect();
        Ok((CpuStorage::F32(y), al.shape().clone()))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = relu_backward(dy, y)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::{check_grads_match, rand_tensor};

    #[test]
    fn add_relu_matches_candle() {
        let inputs = [rand_tensor(&[3, 4, 5], 1), rand_tensor(&[3, 4, 5], 2)];
        let ours = |t: &[Tensor]| add_relu(&t[0], &t[1]).unwrap();
        let reference = |t: &[Tensor]| (&t[0] + &t[1]).unwrap().relu().unwrap();
        check_grads_match(&inputs, ours, reference, 3);
        assert!(add_relu(&inputs[0], &rand_tensor(&[3, 4], 4)).is_err());
    }
}
