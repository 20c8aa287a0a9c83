//! ReLU pieces that fold into the fused layers: the backward mask, the residual
//! `relu(a + b)` of the ResNets as one op, and a bias plus activation after a sparse
//! product as one op.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::{Activation, custom_applies, f32_data};

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

/// `activation(y + bias)` for `y: [rows, out]` and `bias: [out]`, one pass forward and
/// one backward (the bias gradient summed over rows in order); other dtypes or devices
/// run candle's ops.
pub(crate) fn bias_activation(
    y: &Tensor,
    bias: &Tensor,
    activation: Activation,
) -> candle_core::Result<Tensor> {
    let (_, out) = y.dims2()?;
    if bias.dims() != [out] {
        candle_core::bail!("bias {:?} does not fit rows of width {out}", bias.dims())
    }
    if !(custom_applies(y) && custom_applies(bias)) {
        let z = y.broadcast_add(bias)?;
        return match activation {
            Activation::Identity => Ok(z),
            Activation::Relu => z.relu(),
        };
    }
    y.contiguous()?
        .apply_op2(&bias.contiguous()?, BiasActivation(activation))
}

struct BiasActivation(Activation);

impl CustomOp2 for BiasActivation {
    fn name(&self) -> &'static str {
        "bias-activation"
    }

    fn cpu_fwd(
        &self,
        ys: &CpuStorage,
        yl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = f32_data(ys, yl, "bias_activation input")?;
        let b = f32_data(bs, bl, "bias_activation bias")?;
        let mut z = Vec::with_capacity(y.len());
        for row in y.chunks_exact(b.len().max(1)) {
            match self.0 {
                Activation::Identity => z.extend(row.iter().zip(b).map(|(&v, &c)| v + c)),
                Activation::Relu => z.extend(row.iter().zip(b).map(|(&v, &c)| (v + c).max(0.0))),
            }
        }
        Ok((CpuStorage::F32(z), yl.shape().clone()))
    }

    fn bwd(
        &self,
        _y: &Tensor,
        _bias: &Tensor,
        z: &Tensor,
        dz: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = match self.0 {
            Activation::Identity => dz.contiguous()?,
            Activation::Relu => relu_backward(dz, z)?,
        };
        let db = g.apply_op1_no_bwd(&ColumnSums)?;
        Ok((Some(g), Some(db)))
    }
}

/// The column sums of a `[rows, cols]` matrix, rows added in order.
struct ColumnSums;

impl candle_core::CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "column-sums"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, cols) = l.shape().dims2()?;
        let g = f32_data(s, l, "column sums input")?;
        let mut sums = vec![0.0f32; cols];
        for row in g.chunks_exact(cols.max(1)) {
            for (acc, &v) in sums.iter_mut().zip(row) {
                *acc += v;
            }
        }
        Ok((CpuStorage::F32(sums), Shape::from(cols)))
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

    #[test]
    fn bias_activation_matches_candle() {
        for activation in [Activation::Identity, Activation::Relu] {
            let inputs = [rand_tensor(&[7, 5], 1), rand_tensor(&[5], 2)];
            let ours = |t: &[Tensor]| bias_activation(&t[0], &t[1], activation).unwrap();
            let reference = |t: &[Tensor]| {
                let z = t[0].broadcast_add(&t[1]).unwrap();
                match activation {
                    Activation::Identity => z,
                    Activation::Relu => z.relu().unwrap(),
                }
            };
            check_grads_match(&inputs, ours, reference, 3);
        }
        let y = rand_tensor(&[7, 5], 1);
        assert!(bias_activation(&y, &rand_tensor(&[4], 2), Activation::Relu).is_err());
    }
}
