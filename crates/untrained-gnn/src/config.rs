//! One training run's configuration, with a checked builder.
//!
//! Defaults are the official UGTs settings (`UGTs_GNN/main.py`, `base_options.py`
//! and the README runs): 2 layers, hidden 256, 400 full-batch epochs, AdamW with
//! lr 0.01, no weight decay and no dropout for score training, the sparsity ramped
//! linearly from 0 to the target over the first half of training. The trained
//! dense baseline uses weight decay 5e-4 and dropout 0.6 (Cora's options) for GAT
//! and GIN; GCN's official forward pass has its dropout commented out, so the
//! dense GCN trains without dropout (set it with [`TrainConfigBuilder::dropout`]).

use serde::{Deserialize, Serialize};
use sparse_core::{ScoreCount, SparsityRamp, ThresholdScope};

use crate::error::{Error, Result};

/// The graph layer family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Graph convolution (Kipf & Welling), `Â X W`.
    Gcn,
    /// Graph attention (one head, PyG `GATConv`).
    Gat,
    /// Graph isomorphism network with mean aggregation (DGL `GINConv`).
    Gin,
}

impl ModelKind {
    /// `gcn`, `gat` or `gin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gcn => "gcn",
            Self::Gat => "gat",
            Self::Gin => "gin",
        }
    }
}

/// How the network is obtained from its random initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Untrained GNN tickets: frozen weights, scores trained, one global threshold,
    /// sparsity ramped from 0 to the target.
    Ugt,
    /// Edge-popup: frozen weights, scores trained, one threshold per layer, the
    /// target sparsity from the first epoch.
    EdgePopup,
    /// Ordinary training of every weight (all masks one).
    Dense,
}

impl Method {
    /// `ugt`, `edge-popup` or `dense`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ugt => "ugt",
            Self::EdgePopup => "edge-popup",
            Self::Dense => "dense",
        }
    }

    /// Whether the weights are frozen and only scores are trained.
    pub fn trains_scores(self) -> bool {
        !matches!(self, Self::Dense)
    }

    /// The threshold scope of the score methods (`None` for dense training).
    pub fn scope(self) -> Option<ThresholdScope> {
        match self {
            Self::Ugt => Some(ThresholdScope::Global),
            Self::EdgePopup => Some(ThresholdScope::PerLayer),
            Self::Dense => None,
        }
    }

    /// How many scores a sparsity removes: the official `percentile` rule for both
    /// score methods, so that edge-popup differs from UGTs only in scope and ramp.
    pub fn count(self) -> ScoreCount {
        ScoreCount::Percentile
    }
}

/// Everything one training run needs; build it with [`TrainConfig::builder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    model: ModelKind,
    method: Method,
    layers: usize,
    hidden: usize,
    sparsity: f64,
    ramp_fraction: f64,
    epochs: usize,
    lr: f64,
    weight_decay: f64,
    dropout: f64,
    weight_l1: f64,
    ood_classes: usize,
    seed: u64,
}

impl TrainConfig {
    /// A builder with the official defaults for `model` trained by `method`.
    pub fn builder(model: ModelKind, method: Method) -> TrainConfigBuilder {
        let dense = method == Method::Dense;
        TrainConfigBuilder(Self {
            model,
            method,
            layers: 2,
            hidden: 256,
            sparsity: if dense { 0.0 } else { 0.9 },
            ramp_fraction: if method == Method::Ugt { 0.5 } else { 0.0 },
            epochs: 400,
            lr: 0.01,
            weight_decay: if dense { 5e-4 } else { 0.0 },
            // The official GCN forward has its dropout commented out; GAT and GIN
            // apply Cora's 0.6 when training weights.
            dropout: if dense && model != ModelKind::Gcn {
                0.6
            } else {
                0.0
            },
            weight_l1: 0.0,
            ood_classes: 0,
            seed: 0,
        })
    }

    /// The layer family.
    pub fn model(&self) -> ModelKind {
        self.model
    }
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }
    /// Number of graph layers.
    pub fn layers(&self) -> usize {
        self.layers
    }
    /// Hidden width.
    pub fn hidden(&self) -> usize {
        self.hidden
    }
    /// Target sparsity (fraction of weights removed), 0 for dense training.
    pub fn sparsity(&self) -> f64 {
        self.sparsity
    }
    /// Fraction of the epochs over which the sparsity rises from 0 to the target.
    pub fn ramp_fraction(&self) -> f64 {
        self.ramp_fraction
    }
    /// Number of full-batch epochs (one optimizer step each).
    pub fn epochs(&self) -> usize {
        self.epochs
    }
    /// AdamW learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// AdamW (decoupled) weight decay.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
    /// Dropout probability (dense training only): before every layer for GCN and
    /// GIN; for GAT on every layer's input but the last and on the attention
    /// coefficients, as the official `GAT.py`.
    pub fn dropout(&self) -> f64 {
        self.dropout
    }
    /// Coefficient of the official `L1_norm` term `Σ_l mean(sigmoid(S_l))`.
    pub fn weight_l1(&self) -> f64 {
        self.weight_l1
    }
    /// Number of classes held out as out-of-distribution (0: ordinary training).
    pub fn ood_classes(&self) -> usize {
        self.ood_classes
    }
    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The sparsity schedule of the score methods (`None` for dense training).
    pub fn ramp(&self) -> Result<Option<SparsityRamp>> {
        if !self.method.trains_scores() {
            return Ok(None);
        }
        Ok(Some(SparsityRamp::new(self.sparsity, self.ramp_fraction)?))
    }

    /// A short label, e.g. `gcn-ugt-s0.90` or `gcn16-dense`.
    pub fn label(&self) -> String {
        let depth = if self.layers == 2 {
            String::new()
        } else {
            self.layers.to_string()
        };
        let base = format!("{}{depth}-{}", self.model.as_str(), self.method.as_str());
        match self.method {
            Method::Dense => base,
            _ => format!("{base}-s{:.2}", self.sparsity),
        }
    }

    /// A builder starting from this configuration (e.g. to change the seed).
    pub fn to_builder(&self) -> TrainConfigBuilder {
        TrainConfigBuilder(self.clone())
    }
}

/// Checked builder of a [`TrainConfig`]; every value is validated in [`Self::build`].
#[derive(Debug, Clone)]
pub struct TrainConfigBuilder(TrainConfig);

impl TrainConfigBuilder {
    /// Number of graph layers, at least 2.
    pub fn layers(mut self, layers: usize) -> Self {
        self.0.layers = layers;
        self
    }
    /// Hidden width, at least 1.
    pub fn hidden(mut self, hidden: usize) -> Self {
        self.0.hidden = hidden;
        self
    }
    /// Target sparsity in `[0, 1)`; must be 0 for dense training.
    pub fn sparsity(mut self, sparsity: f64) -> Self {
        self.0.sparsity = sparsity;
        self
    }
    /// Ramp fraction in `[0, 1]`; UGTs only (edge-popup and dense need 0).
    pub fn ramp_fraction(mut self, ramp_fraction: f64) -> Self {
        self.0.ramp_fraction = ramp_fraction;
        self
    }
    /// Number of epochs, at least 1.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.0.epochs = epochs;
        self
    }
    /// Learning rate, positive and finite.
    pub fn lr(mut self, lr: f64) -> Self {
        self.0.lr = lr;
        self
    }
    /// Weight decay, non-negative.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.0.weight_decay = weight_decay;
        self
    }
    /// Dropout in `[0, 1)`; must be 0 when only scores are trained.
    pub fn dropout(mut self, dropout: f64) -> Self {
        self.0.dropout = dropout;
        self
    }
    /// Coefficient of the score L1 term, non-negative; score methods only.
    pub fn weight_l1(mut self, weight_l1: f64) -> Self {
        self.0.weight_l1 = weight_l1;
        self
    }
    /// Classes held out as out-of-distribution (checked against the data at run time).
    pub fn ood_classes(mut self, ood_classes: usize) -> Self {
        self.0.ood_classes = ood_classes;
        self
    }
    /// The run's seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }

    /// Validates every value; the error names the first bad parameter.
    pub fn build(self) -> Result<TrainConfig> {
        let c = self.0;
        let scores = c.method.trains_scores();
        if c.layers < 2 {
            return Err(Error::invalid(
                "layers",
                c.layers,
                "needs at least 2 layers",
            ));
        }
        if c.hidden == 0 {
            return Err(Error::invalid("hidden", 0, "must be at least 1"));
        }
        if !(0.0..1.0).contains(&c.sparsity) {
            return Err(Error::invalid("sparsity", c.sparsity, "must be in [0, 1)"));
        }
        if !scores && c.sparsity != 0.0 {
            return Err(Error::invalid(
                "sparsity",
                c.sparsity,
                "dense training keeps every weight: use 0",
            ));
        }
        if !(0.0..=1.0).contains(&c.ramp_fraction) {
            return Err(Error::invalid(
                "ramp_fraction",
                c.ramp_fraction,
                "must be in [0, 1]",
            ));
        }
        if c.method != Method::Ugt && c.ramp_fraction != 0.0 {
            return Err(Error::invalid(
                "ramp_fraction",
                c.ramp_fraction,
                "only UGTs ramp the sparsity; edge-popup and dense use 0",
            ));
        }
        if c.epochs == 0 {
            return Err(Error::invalid("epochs", 0, "must be at least 1"));
        }
        if !(c.lr.is_finite() && c.lr > 0.0) {
            return Err(Error::invalid("lr", c.lr, "must be positive and finite"));
        }
        if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
            return Err(Error::invalid(
                "weight_decay",
                c.weight_decay,
                "must be non-negative and finite",
            ));
        }
        if !(0.0..1.0).contains(&c.dropout) {
            return Err(Error::invalid("dropout", c.dropout, "must be in [0, 1)"));
        }
        if scores && c.dropout != 0.0 {
            return Err(Error::invalid(
                "dropout",
                c.dropout,
                "score training runs without dropout (as the official score_only mode)",
            ));
        }
        if !(c.weight_l1.is_finite() && c.weight_l1 >= 0.0) {
            return Err(Error::invalid(
                "weight_l1",
                c.weight_l1,
                "must be non-negative and finite",
            ));
        }
        if !scores && c.weight_l1 != 0.0 {
            return Err(Error::invalid(
                "weight_l1",
                c.weight_l1,
                "the L1 term acts on scores; dense training has none",
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparse_repro::HarnessError;

    fn name_of(err: Error) -> &'static str {
        match err {
            Error::Harness(HarnessError::InvalidParameter { name, .. }) => name,
            other => panic!("not a config error: {other}"),
        }
    }

    #[test]
    fn defaults_are_the_official_settings() {
        let ugt = TrainConfig::builder(ModelKind::Gcn, Method::Ugt)
            .build()
            .unwrap();
        assert_eq!((ugt.layers(), ugt.hidden(), ugt.epochs()), (2, 256, 400));
        assert_eq!(
            (ugt.lr(), ugt.weight_decay(), ugt.dropout()),
            (0.01, 0.0, 0.0)
        );
        assert_eq!(ugt.ramp_fraction(), 0.5);
        assert_eq!(ugt.label(), "gcn-ugt-s0.90");
        let dense = TrainConfig::builder(ModelKind::Gcn, Method::Dense)
            .layers(16)
            .build()
            .unwrap();
        assert_eq!((dense.weight_decay(), dense.dropout()), (5e-4, 0.0));
        let gat = TrainConfig::builder(ModelKind::Gat, Method::Dense)
            .build()
            .unwrap();
        assert_eq!(gat.dropout(), 0.6);
        assert_eq!(dense.label(), "gcn16-dense");
        assert!(dense.ramp().unwrap().is_none());
    }

    #[test]
    fn errors_name_the_parameter() {
        let b = || TrainConfig::builder(ModelKind::Gat, Method::Ugt);
        assert_eq!(name_of(b().layers(1).build().unwrap_err()), "layers");
        assert_eq!(name_of(b().hidden(0).build().unwrap_err()), "hidden");
        assert_eq!(name_of(b().sparsity(1.0).build().unwrap_err()), "sparsity");
        assert_eq!(name_of(b().epochs(0).build().unwrap_err()), "epochs");
        assert_eq!(name_of(b().lr(0.0).build().unwrap_err()), "lr");
        assert_eq!(name_of(b().dropout(0.5).build().unwrap_err()), "dropout");
        assert_eq!(
            name_of(b().weight_l1(-1.0).build().unwrap_err()),
            "weight_l1"
        );
        assert_eq!(
            name_of(b().weight_decay(f64::NAN).build().unwrap_err()),
            "weight_decay"
        );
        let ep = TrainConfig::builder(ModelKind::Gcn, Method::EdgePopup);
        assert_eq!(
            name_of(ep.ramp_fraction(0.5).build().unwrap_err()),
            "ramp_fraction"
        );
        let dense = TrainConfig::builder(ModelKind::Gin, Method::Dense);
        assert_eq!(
            name_of(dense.sparsity(0.5).build().unwrap_err()),
            "sparsity"
        );
    }
}
