//! GIN (Xu et al. 2019) as the official DGL-based `gin_net.py` for node
//! classification: `H' = MLP((1 + ε) H + mean_{N(i)} H)` with `ε = 0` fixed, the
//! `mean` aggregator and a one-layer MLP (one linear map, no bias), ReLU between
//! layers; the output averages a prediction head on the last hidden layer with the
//! last layer: `(pred(H_{L-1}) + H_L) / 2`.

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::{Dropout, Gnn, dense_linear, sparse_input_linear, weight};
use crate::data::GraphData;
use crate::error::{Error, Result};

/// Name of the prediction head on the last hidden layer.
pub const PRED: &str = "pred.lin";

/// The logits of a GIN.
pub fn forward(
    model: &Gnn,
    graph: &GraphData,
    weights: &BTreeMap<String, Tensor>,
    mut dropout: Option<Dropout<'_>>,
) -> Result<Tensor> {
    let mut h: Option<Tensor> = None;
    let mut last_hidden: Option<Tensor> = None;
    for l in 0..model.layers() {
        let w = weight(weights, &Gnn::lin_name(l))?;
        // The map is linear, so (H + M H) Wᵀ = Z + M Z with Z = H Wᵀ: this keeps the
        // sparse features sparse in the first layer.
        let z = match &h {
            None => sparse_input_linear(graph, w, &mut dropout)?,
            Some(h) => dense_linear(h, w, &mut dropout)?,
        };
        let z = (&z + graph.mean_adjacency.matmul(&z)?)?;
        if l + 1 < model.layers() {
            h = Some(z.relu()?);
        } else {
            last_hidden = h.take();
            h = Some(z);
        }
    }
    let (Some(out), Some(hidden)) = (h, last_hidden) else {
        return Err(Error::invalid(
            "layers",
            model.layers(),
            "GIN needs at least 2 layers",
        ));
    };
    let pred = hidden.matmul(&weight(weights, PRED)?.t()?)?;
    Ok(((pred + out)? * 0.5)?)
}
