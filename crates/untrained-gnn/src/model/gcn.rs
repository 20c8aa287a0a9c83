//! GCN (Kipf & Welling 2017) as the official `GCN.py`: `H' = Â H Wᵀ` with the cached
//! symmetric normalisation `Â = D^-1/2 (A + I) D^-1/2`, no bias, no normalisation
//! layers, ReLU between layers.

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::{Dropout, Gnn, dense_linear, sparse_input_linear, weight};
use crate::data::GraphData;
use crate::error::Result;

/// The logits of a GCN.
pub fn forward(
    model: &Gnn,
    graph: &GraphData,
    weights: &BTreeMap<String, Tensor>,
    mut dropout: Option<Dropout<'_>>,
) -> Result<Tensor> {
    let mut h: Option<Tensor> = None;
    for l in 0..model.layers() {
        let w = weight(weights, &Gnn::lin_name(l))?;
        let z = match &h {
            None => sparse_input_linear(graph, w, &mut dropout)?,
            Some(h) => dense_linear(h, w, &mut dropout)?,
        };
        let z = graph.gcn_adjacency.matmul(&z)?;
        h = Some(if l + 1 < model.layers() { z.relu()? } else { z });
    }
    h.ok_or_else(|| crate::error::Error::invalid("layers", 0, "a model needs layers"))
}
