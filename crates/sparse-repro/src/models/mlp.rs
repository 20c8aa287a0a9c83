use candle_core::{Result, Tensor};
use candle_nn::{Module, ModuleT, VarBuilder};
use sparse_core::kernels::FusedLinear;
use sparse_core::{LayerFlops, LayerShape};

/// A ReLU multilayer perceptron; images are flattened on entry.
#[derive(Debug)]
pub struct Mlp {
    hidden: Vec<FusedLinear>,
    classifier: FusedLinear,
    depth: usize,
    /// Fan-in and fan-out of every layer, classifier last.
    sizes: Vec<(usize, usize)>,
}

impl Mlp {
    /// `inputs -> width (x depth) -> classes`, parameters `hidden.{i}.*` and `classifier.*`.
    pub fn new(
        inputs: usize,
        width: usize,
        depth: usize,
        classes: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut hidden = Vec::with_capacity(depth);
        let mut fan_in = inputs;
        let mut sizes = Vec::new();
        for i in 0..depth {
            hidden.push(FusedLinear::new(
                fan_in,
                width,
                vb.pp(format!("hidden.{i}")),
            )?);
            sizes.push((fan_in, width));
            fan_in = width;
        }
        let classifier = FusedLinear::new(fan_in, classes, vb.pp("classifier"))?;
        sizes.push((fan_in, classes));
        Ok(Self {
            hidden,
            classifier,
            depth,
            sizes,
        })
    }

    /// Names of the weights in forward order, classifier last (no biases).
    pub fn weight_names_in_order(&self) -> Vec<String> {
        (0..self.depth)
            .map(|i| format!("hidden.{i}.weight"))
            .chain(std::iter::once("classifier.weight".to_string()))
            .collect()
    }

    /// FLOP descriptions of every weight layer, in [`Mlp::weight_names_in_order`] order.
    pub fn layer_flops(&self) -> Vec<LayerFlops> {
        self.weight_names_in_order()
            .into_iter()
            .zip(&self.sizes)
            .map(|(name, &(i, o))| {
                LayerFlops::new(
                    name,
                    LayerShape::Linear {
                        in_features: i,
                        out_features: o,
                        bias: true,
                    },
                )
            })
            .collect()
    }
}

impl ModuleT for Mlp {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        let mut h = xs.flatten_from(1)?;
        for layer in &self.hidden {
            h = layer.forward_relu(&h)?;
        }
        self.classifier.forward(&h)
    }
}
