//! The three GNNs of the paper, as the official code builds them: every linear
//! map without bias, weights given by name so the same forward pass serves the
//! masked (`W ⊙ m(S)`) and the trained dense (`W`) networks.
//!
//! | model | layer | between layers |
//! |---|---|---|
//! | [`gcn`] | `Â H Wᵀ`, `Â = D^-1/2 (A + I) D^-1/2` | ReLU |
//! | [`gat`] | one-head attention over `A + I`, LeakyReLU(0.2) scores | ReLU |
//! | [`gin`] | `(H + mean_{N(i)} H) Wᵀ` (ε = 0), output `(pred(H_{L-1}) + H_L) / 2` | ReLU |

pub mod gat;
pub mod gcn;
pub mod gin;

use std::collections::BTreeMap;

use candle_core::Tensor;
use rand_chacha::ChaCha8Rng;
use sparse_core::flops::{LayerFlops, LayerShape};

use crate::config::ModelKind;
use crate::data::GraphData;
use crate::error::{Error, Result};

/// One maskable parameter of a model: its name and shape (`[out, in]` for linear maps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// Name, e.g. `l00.lin` (weights are stored as `<name>.weight`, scores as `<name>.score`).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
}

/// Seeded dropout of the dense training (where each model applies it: see the models).
#[derive(Debug)]
pub struct Dropout<'a> {
    /// The stream the masks are drawn from.
    pub rng: &'a mut ChaCha8Rng,
    /// Drop probability.
    pub p: f32,
}

/// A GNN of `layers` graph layers, `in_dim → hidden → … → classes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gnn {
    kind: ModelKind,
    dims: Vec<usize>,
}

impl Gnn {
    /// A model of `kind` with `layers ≥ 2` layers.
    pub fn new(
        kind: ModelKind,
        layers: usize,
        in_dim: usize,
        hidden: usize,
        classes: usize,
    ) -> Result<Self> {
        if layers < 2 {
            return Err(Error::invalid("layers", layers, "needs at least 2 layers"));
        }
        let mut dims = vec![in_dim];
        dims.extend(std::iter::repeat_n(hidden, layers - 1));
        dims.push(classes);
        Ok(Self { kind, dims })
    }

    /// The layer family.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// Number of graph layers.
    pub fn layers(&self) -> usize {
        self.dims.len() - 1
    }

    /// `(in, out)` of layer `l`.
    pub fn layer_dims(&self, l: usize) -> (usize, usize) {
        (self.dims[l], self.dims[l + 1])
    }

    /// Name of the linear map of layer `l` (zero-padded so names sort by depth).
    pub fn lin_name(l: usize) -> String {
        format!("l{l:02}.lin")
    }

    /// Every maskable parameter, sorted by name.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let mut specs = Vec::new();
        for l in 0..self.layers() {
            let (i, o) = self.layer_dims(l);
            specs.push(ParamSpec {
                name: Self::lin_name(l),
                shape: vec![o, i],
            });
            if self.kind == ModelKind::Gat {
                for a in ["att_dst", "att_src"] {
                    specs.push(ParamSpec {
                        name: format!("l{l:02}.{a}"),
                        shape: vec![1, o],
                    });
                }
            }
        }
        if self.kind == ModelKind::Gin {
            let (i, o) = self.layer_dims(self.layers() - 1);
            specs.push(ParamSpec {
                name: gin::PRED.into(),
                shape: vec![o, i],
            });
        }
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }

    /// The logits `(nodes, classes)`: the final node embeddings (MAD is measured on them).
    pub fn forward(
        &self,
        graph: &GraphData,
        weights: &BTreeMap<String, Tensor>,
        dropout: Option<Dropout<'_>>,
    ) -> Result<Tensor> {
        match self.kind {
            ModelKind::Gcn => gcn::forward(self, graph, weights, dropout),
            ModelKind::Gat => gat::forward(self, graph, weights, dropout),
            ModelKind::Gin => gin::forward(self, graph, weights, dropout),
        }
    }

    /// FLOP shapes of the linear maps (per node; the sparse aggregations and the
    /// attention vectors are not counted), for sparse-core's FLOP accounting.
    pub fn layer_flops(&self) -> Vec<LayerFlops> {
        self.param_specs()
            .into_iter()
            .filter(|s| s.name.ends_with("lin"))
            .map(|s| {
                // Named like the masks (no `.weight` suffix), so that the
                // subnetwork's masks count the layer's FLOPs.
                LayerFlops::new(
                    s.name.clone(),
                    LayerShape::Linear {
                        in_features: s.shape[1],
                        out_features: s.shape[0],
                        bias: false,
                    },
                )
            })
            .collect()
    }
}

/// The weight called `name`, or an error naming it.
pub(crate) fn weight<'a>(weights: &'a BTreeMap<String, Tensor>, name: &str) -> Result<&'a Tensor> {
    weights
        .get(name)
        .ok_or_else(|| Error::invalid("weights", name, "the model has no such weight"))
}

/// `X Wᵀ` for the sparse node features `X` (with input dropout when training dense).
pub(crate) fn sparse_input_linear(
    graph: &GraphData,
    w: &Tensor,
    dropout: &mut Option<Dropout<'_>>,
) -> Result<Tensor> {
    let x = &graph.features;
    let w_t = w.t()?.contiguous()?;
    match dropout {
        Some(d) => {
            // Dropout on the stored entries of the sparse features, as
            // `F.dropout` on a sparse-backed dense X would zero exactly those.
            let keep = sparse_repro::rng::dropout_mask(d.rng, x.nnz(), d.p, w.device())?
                .to_vec1::<f32>()?;
            let values: Vec<f32> = x
                .matrix()
                .values()
                .iter()
                .zip(keep)
                .map(|(v, k)| v * k)
                .collect();
            Ok(x.matrix().with_values(values)?.matmul(&w_t)?)
        }
        None => x.matmul(&w_t),
    }
}

/// `H Wᵀ` for dense hidden features (with dropout on `H` when training dense).
pub(crate) fn dense_linear(
    h: &Tensor,
    w: &Tensor,
    dropout: &mut Option<Dropout<'_>>,
) -> Result<Tensor> {
    let h = match dropout {
        Some(d) => sparse_repro::rng::dropout(d.rng, h, d.p, true)?,
        None => h.clone(),
    };
    Ok(h.matmul(&w.t()?)?)
}
