//! One arm's settings: the network, its sparsity, the data sizes and the optimizer,
//! checked by [`SlakConfig::validate`] (errors name the field) before training.

use serde::{Deserialize, Serialize};
use sparse_core::kernels::WeightGrad;
use sparse_repro::splits::SplitSizes;

use crate::error::Result;
use crate::sparse::SlakSparsity;
use crate::spec::ModelSpec;

/// The weight gradient of a masked depthwise branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DwGrad {
    /// Dense (as PyTorch, which masks weight values: AdamW's moments at pruned
    /// positions follow the dense gradient).
    Dense,
    /// Zero at pruned positions (faster; moments there stay at zero).
    Masked,
}

impl From<DwGrad> for WeightGrad {
    fn from(g: DwGrad) -> Self {
        match g {
            DwGrad::Dense => WeightGrad::Dense,
            DwGrad::Masked => WeightGrad::Masked,
        }
    }
}

/// One arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlakConfig {
    /// The network.
    pub model: ModelSpec,
    /// Sparse training (`None`: dense).
    pub sparsity: Option<SlakSparsity>,
    /// How the data set is split.
    pub data: SplitSizes,
    /// Training epochs.
    pub epochs: usize,
    /// Images per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step (the official `--update_freq`).
    pub accumulation_steps: usize,
    /// AdamW's peak learning rate.
    pub lr: f64,
    /// The learning rate at the end of the cosine.
    pub min_lr: f64,
    /// Epochs of linear warmup from 0.
    pub warmup_epochs: f64,
    /// AdamW's decoupled weight decay (not on 1-D parameters).
    pub weight_decay: f64,
    /// Label smoothing of the training loss.
    pub label_smoothing: f64,
    /// SEMA decay (`None`: no average).
    pub ema_decay: Option<f64>,
    /// Weight gradient of the masked depthwise branches.
    pub dw_grad: DwGrad,
    /// Test images the effective receptive field is measured on.
    pub erf_images: usize,
    /// Each ERF image is up-sampled by this factor (nearest), so that large kernels
    /// do not cover the whole input.
    pub erf_upsample: usize,
}

impl SlakConfig {
    /// Checks every setting; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, value: String, why: &str| -> crate::Error {
            sparse_repro::HarnessError::invalid(name, value, why).into()
        };
        self.model.validate()?;
        if let Some(s) = &self.sparsity {
            s.validate()?;
        }
        self.data.validate()?;
        for (name, v) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("accumulation_steps", self.accumulation_steps),
            ("erf_images", self.erf_images),
            ("erf_upsample", self.erf_upsample),
        ] {
            if v == 0 {
                return Err(bad(name, "0".into(), "must be positive"));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(bad("lr", self.lr.to_string(), "must be positive"));
        }
        if !(self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(bad(
                "min_lr",
                self.min_lr.to_string(),
                "must lie in [0, lr]",
            ));
        }
        if !(self.warmup_epochs >= 0.0 && self.warmup_epochs < self.epochs as f64) {
            return Err(bad(
                "warmup_epochs",
                self.warmup_epochs.to_string(),
                "must lie in [0, epochs)",
            ));
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return Err(bad(
                "weight_decay",
                self.weight_decay.to_string(),
                "must be non-negative",
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(bad(
                "label_smoothing",
                self.label_smoothing.to_string(),
                "must lie in [0, 1)",
            ));
        }
        if let Some(d) = self.ema_decay
            && !(0.0..1.0).contains(&d)
        {
            return Err(bad("ema_decay", d.to_string(), "must lie in [0, 1)"));
        }
        Ok(())
    }
}
