//! GAT (Veličković et al. 2018) as PyG's `GATConv` with one head, which the
//! official `GAT.py` uses with maskable `lin`, `att_src` and `att_dst`: for the edge
//! `j → i` of `A + I`,
//! `e_ij = LeakyReLU_0.2(⟨att_src, W h_j⟩ + ⟨att_dst, W h_i⟩)`,
//! `α_ij = softmax_j(e_ij)`, `h'_i = Σ_j α_ij W h_j`; no bias, ReLU between layers.
//!
//! Dropout (trained dense GAT only; score training has none) sits where the official
//! `GAT.forward` and `GATConv` put it: on the input of every layer but the last, and
//! on the attention coefficients `α` of every layer, both with the data set's rate.

use std::collections::BTreeMap;

use candle_core::{D, Tensor};

use super::{Dropout, Gnn, dense_linear, sparse_input_linear, weight};
use crate::data::GraphData;
use crate::error::Result;

/// PyG's default negative slope of the attention LeakyReLU.
pub const NEGATIVE_SLOPE: f64 = 0.2;

/// The logits of a GAT.
pub fn forward(
    model: &Gnn,
    graph: &GraphData,
    weights: &BTreeMap<String, Tensor>,
    mut dropout: Option<Dropout<'_>>,
) -> Result<Tensor> {
    let mut h: Option<Tensor> = None;
    for l in 0..model.layers() {
        let w = weight(weights, &Gnn::lin_name(l))?;
        // The official `GAT.forward` leaves the last layer's input undropped.
        let mut input_dropout = if l + 1 < model.layers() {
            reborrow(&mut dropout)
        } else {
            None
        };
        let z = match &h {
            None => sparse_input_linear(graph, w, &mut input_dropout)?,
            Some(h) => dense_linear(h, w, &mut input_dropout)?,
        };
        let att_src = weight(weights, &format!("l{l:02}.att_src"))?;
        let att_dst = weight(weights, &format!("l{l:02}.att_dst"))?;
        let z = attend(graph, &z, att_src, att_dst, reborrow(&mut dropout))?;
        h = Some(if l + 1 < model.layers() { z.relu()? } else { z });
    }
    h.ok_or_else(|| crate::error::Error::invalid("layers", 0, "a model needs layers"))
}

/// The same dropout stream for one more use, without giving it up.
fn reborrow<'a>(dropout: &'a mut Option<Dropout<'_>>) -> Option<Dropout<'a>> {
    dropout.as_mut().map(|d| Dropout {
        rng: &mut *d.rng,
        p: d.p,
    })
}

/// One attention aggregation of the transformed features `z` (`(nodes, out)`);
/// with `dropout`, the normalised coefficients are dropped (inverted dropout) as
/// `GATConv`'s `F.dropout(alpha)` does when training.
pub fn attend(
    graph: &GraphData,
    z: &Tensor,
    att_src: &Tensor,
    att_dst: &Tensor,
    dropout: Option<Dropout<'_>>,
) -> Result<Tensor> {
    let adj = &graph.gcn_adjacency; // rows: destination i, columns: source j
    let a_src = z.broadcast_mul(att_src)?.sum_keepdim(D::Minus1)?;
    let a_dst = z.broadcast_mul(att_dst)?.sum_keepdim(D::Minus1)?;
    let e = (a_src.index_select(adj.col(), 0)? + a_dst.index_select(adj.row(), 0)?)?;
    let e = e.maximum(&(&e * NEGATIVE_SLOPE)?)?;
    // A per-destination constant leaves the softmax unchanged; subtracting the
    // segment maximum (computed on the host, outside the graph) keeps exp finite.
    let shift = segment_max(&e, adj.row(), adj.rows())?;
    let ex = e.sub(&shift.index_select(adj.row(), 0)?)?.exp()?;
    let zeros = Tensor::zeros((adj.rows(), 1), ex.dtype(), ex.device())?;
    let denom = zeros.index_add(adj.row(), &ex, 0)?;
    let alpha = ex.div(&denom.index_select(adj.row(), 0)?)?;
    let alpha = match dropout {
        Some(d) => sparse_repro::rng::dropout(d.rng, &alpha, d.p, true)?,
        None => alpha,
    };
    adj.matmul_with(&alpha, z)
}

/// The maximum of `values` (`(nnz, 1)`) per segment id in `segments`, detached, `(n, 1)`.
fn segment_max(values: &Tensor, segments: &Tensor, n: usize) -> Result<Tensor> {
    let v = values.flatten_all()?.to_vec1::<f32>()?;
    let s = segments.to_vec1::<u32>()?;
    let mut max = vec![f32::NEG_INFINITY; n];
    for (&seg, &x) in s.iter().zip(&v) {
        let m = &mut max[seg as usize];
        *m = m.max(x);
    }
    for m in &mut max {
        if !m.is_finite() {
            *m = 0.0;
        }
    }
    Ok(Tensor::from_vec(max, (n, 1), values.device())?)
}
