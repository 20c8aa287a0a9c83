//! The run configuration: one arm of the paper on one data set, validated when it
//! is built ([`TrainConfig::builder`]); every error names the offending parameter.
//!
//! Defaults are the official code's UCR settings (`trainer_DSN.py`,
//! `sparselearning/core_kernel.py`; methods notes A §2.4): 1000 epochs, `ch_size`
//! 47, depth 4, kernel 39 in 3 constraint groups, density 0.2, `remain_sort`
//! initial masks, random growth, Adam 3e-4 with a per-epoch cosine to 1e-4, a mask
//! update every 5 epochs with a death rate falling from 0.5 to 0.001 over the first
//! 80 % of the steps.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// How a kernel-`k` convolution sees the end of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// `ReplicationPad1d((0, k-1))`: output `t` sees inputs `t..t+k` (official default).
    Replicate,
    /// Zero padding `((k-1)/2, k/2)` (the official `pad_zero=True`, "for UCR2018").
    Zero,
}

/// How the initial sparse masks are drawn inside each constraint region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskInit {
    /// `remain_sort`: the group's taps are filled tap by tap from tap 0 (all
    /// `(out, in)` pairs of tap 0, then tap 1, ...) until the budget is used.
    RemainSort,
    /// `remain_random`: the budget at uniformly random positions of the region.
    RemainRandom,
}

/// Where regrown weights go inside their group's region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Growth {
    /// Exactly as many positions as were pruned, uniformly at random (official default).
    Random,
    /// The inactive positions of largest `|gradient|` (the official `--growth gradient`).
    Gradient,
}

/// How the kernel convolutions of the sparse arms are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConvBackend {
    /// sparse-core's sparse conv1d over the active taps, returning the dense weight
    /// gradient, so Adam sees what it sees in the official code (default).
    SparseDenseGrad,
    /// The sparse conv1d with the gradient at active taps only: fastest, but Adam's
    /// moments at inactive positions then decay instead of following the dense
    /// gradient (not allowed with gradient growth, which reads that gradient).
    SparseMaskedGrad,
    /// A dense convolution on the weight holding zeros (the official code's way).
    MaskedDense,
}

/// The arms the reproduction compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    /// Same topology, every tap of the large kernel trained.
    Dense,
    /// Dense with the small kernel (13): the small-receptive-field reference.
    DenseSmallKernel,
    /// The DSN initial mask, never updated (`--fix True`).
    Static,
    /// Dynamic sparse training inside the constraint regions.
    Dsn,
}

impl Arm {
    /// Every arm, in report order.
    pub const ALL: [Arm; 4] = [Arm::Dense, Arm::DenseSmallKernel, Arm::Static, Arm::Dsn];

    /// The arm's name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Dense => "dense",
            Arm::DenseSmallKernel => "dense-small-kernel",
            Arm::Static => "static",
            Arm::Dsn => "dsn",
        }
    }

    /// Parses [`Arm::name`].
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                invalid(
                    "arm",
                    name,
                    "expected dense, dense-small-kernel, static or dsn",
                )
            })
    }

    /// Whether the large-kernel convolutions carry masks.
    pub fn is_sparse(self) -> bool {
        matches!(self, Arm::Static | Arm::Dsn)
    }
}

/// One validated training run (one arm, one data set, one seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    arm: Arm,
    epochs: usize,
    channels: usize,
    depth: usize,
    kernel: usize,
    small_kernel: usize,
    groups: usize,
    density: f64,
    mask_init: MaskInit,
    growth: Growth,
    padding: Padding,
    pooled_len: usize,
    lr: f64,
    lr_min: f64,
    update_every_epochs: usize,
    death_rate: f64,
    death_rate_min: f64,
    death_rate_fraction: f64,
    batch_size: Option<usize>,
    conv_backend: ConvBackend,
    seed: u64,
}

impl TrainConfig {
    /// A builder holding the official UCR defaults (see the module docs).
    pub fn builder() -> TrainConfigBuilder {
        TrainConfigBuilder {
            config: TrainConfig {
                arm: Arm::Dsn,
                epochs: 1000,
                channels: 47,
                depth: 4,
                kernel: 39,
                small_kernel: 13,
                groups: 3,
                density: 0.2,
                mask_init: MaskInit::RemainSort,
                growth: Growth::Random,
                padding: Padding::Replicate,
                pooled_len: 50,
                lr: 3e-4,
                lr_min: 1e-4,
                update_every_epochs: 5,
                death_rate: 0.5,
                death_rate_min: 0.001,
                death_rate_fraction: 0.8,
                batch_size: None,
                conv_backend: ConvBackend::SparseDenseGrad,
                seed: 17,
            },
        }
    }

    /// A builder starting from this configuration.
    pub fn to_builder(&self) -> TrainConfigBuilder {
        TrainConfigBuilder {
            config: self.clone(),
        }
    }

    /// The arm.
    pub fn arm(&self) -> Arm {
        self.arm
    }
    /// Training epochs.
    pub fn epochs(&self) -> usize {
        self.epochs
    }
    /// `ch_size` (`nf`): every module outputs `3 · channels` channels.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Number of modules.
    pub fn depth(&self) -> usize {
        self.depth
    }
    /// The large kernel (39).
    pub fn kernel(&self) -> usize {
        self.kernel
    }
    /// The small kernel of [`Arm::DenseSmallKernel`] (13).
    pub fn small_kernel(&self) -> usize {
        self.small_kernel
    }
    /// The kernel this run's convolutions use.
    pub fn arm_kernel(&self) -> usize {
        if self.arm == Arm::DenseSmallKernel {
            self.small_kernel
        } else {
            self.kernel
        }
    }
    /// Constraint groups along the output channels (`c_size`, 3).
    pub fn groups(&self) -> usize {
        self.groups
    }
    /// Density inside the constraint regions (sparse arms).
    pub fn density(&self) -> f64 {
        self.density
    }
    /// Initial masks.
    pub fn mask_init(&self) -> MaskInit {
        self.mask_init
    }
    /// Growth criterion.
    pub fn growth(&self) -> Growth {
        self.growth
    }
    /// Padding of the kernel convolutions.
    pub fn padding(&self) -> Padding {
        self.padding
    }
    /// Output length of the head's adaptive average pool (50).
    pub fn pooled_len(&self) -> usize {
        self.pooled_len
    }
    /// Adam's initial learning rate (3e-4).
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// Floor of the per-epoch cosine learning rate (1e-4).
    pub fn lr_min(&self) -> f64 {
        self.lr_min
    }
    /// Epochs between mask updates (5).
    pub fn update_every_epochs(&self) -> usize {
        self.update_every_epochs
    }
    /// Initial death rate (0.5).
    pub fn death_rate(&self) -> f64 {
        self.death_rate
    }
    /// Final death rate (0.001).
    pub fn death_rate_min(&self) -> f64 {
        self.death_rate_min
    }
    /// Share of the training steps over which the death rate decays (0.8).
    pub fn death_rate_fraction(&self) -> f64 {
        self.death_rate_fraction
    }
    /// An explicit batch size, or `None` for the official `max(min(N/10, 16), 2)`.
    pub fn batch_size(&self) -> Option<usize> {
        self.batch_size
    }
    /// How the sparse arms' kernel convolutions are computed.
    pub fn conv_backend(&self) -> ConvBackend {
        self.conv_backend
    }
    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The batch size for `n_train` training samples: the explicit one, else the
    /// official `max(int(min(N/10, 16)), 2)`.
    pub fn batch_size_for(&self, n_train: usize) -> usize {
        self.batch_size
            .unwrap_or_else(|| ((n_train as f64 / 10.0).min(16.0) as usize).max(2))
    }

    /// Output channels of every module (`3 · channels`, the official `OUT_NUM = 3`).
    pub fn out_channels(&self) -> usize {
        OUT_NUM * self.channels
    }
}

/// Output channels per module as a multiple of `ch_size` (official `OUT_NUM`).
pub const OUT_NUM: usize = 3;

/// Checked builder of [`TrainConfig`].
#[derive(Debug, Clone)]
pub struct TrainConfigBuilder {
    config: TrainConfig,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl TrainConfigBuilder {
    setter!(/// The arm.
        arm: Arm);
    setter!(/// Training epochs (>= 1).
        epochs: usize);
    setter!(/// `ch_size` (>= 1).
        channels: usize);
    setter!(/// Number of modules (>= 1).
        depth: usize);
    setter!(/// The large kernel (>= groups).
        kernel: usize);
    setter!(/// The small kernel of the small-receptive-field arm (1..=kernel).
        small_kernel: usize);
    setter!(/// Constraint groups (>= 1, divides `3 · channels`).
        groups: usize);
    setter!(/// Density in (0, 1].
        density: f64);
    setter!(/// Initial masks.
        mask_init: MaskInit);
    setter!(/// Growth criterion.
        growth: Growth);
    setter!(/// Padding of the kernel convolutions.
        padding: Padding);
    setter!(/// Output length of the head's adaptive pool (>= 1).
        pooled_len: usize);
    setter!(/// Adam's learning rate (> 0).
        lr: f64);
    setter!(/// Floor of the cosine learning rate (0..=lr).
        lr_min: f64);
    setter!(/// Epochs between mask updates (>= 1).
        update_every_epochs: usize);
    setter!(/// Initial death rate in [0, 1].
        death_rate: f64);
    setter!(/// Final death rate in [0, 1].
        death_rate_min: f64);
    setter!(/// Share of steps of the death-rate decay, in (0, 1].
        death_rate_fraction: f64);
    setter!(/// Explicit batch size (>= 1), or `None` for the official rule.
        batch_size: Option<usize>);
    setter!(/// How the sparse arms' kernel convolutions are computed.
        conv_backend: ConvBackend);
    setter!(/// The run's seed.
        seed: u64);

    /// Validates every parameter; the error names the first bad one.
    pub fn build(self) -> Result<TrainConfig> {
        let c = self.config;
        for (name, value) in [
            ("epochs", c.epochs),
            ("channels", c.channels),
            ("depth", c.depth),
            ("groups", c.groups),
            ("pooled_len", c.pooled_len),
            ("update_every_epochs", c.update_every_epochs),
        ] {
            if value == 0 {
                return Err(invalid(name, value, "must be at least 1"));
            }
        }
        if c.kernel < c.groups {
            return Err(invalid(
                "kernel",
                c.kernel,
                format!(
                    "must be >= groups ({}) so that every region has a tap",
                    c.groups
                ),
            ));
        }
        if c.small_kernel == 0 || c.small_kernel > c.kernel {
            return Err(invalid(
                "small_kernel",
                c.small_kernel,
                "must lie in 1..=kernel",
            ));
        }
        if !c.out_channels().is_multiple_of(c.groups) {
            return Err(invalid(
                "groups",
                c.groups,
                format!(
                    "must divide the {} output channels (3 · channels)",
                    c.out_channels()
                ),
            ));
        }
        if !(c.density > 0.0 && c.density <= 1.0) {
            return Err(invalid("density", c.density, "must lie in (0, 1]"));
        }
        if !(c.lr.is_finite() && c.lr > 0.0) {
            return Err(invalid("lr", c.lr, "must be finite and > 0"));
        }
        if !(c.lr_min >= 0.0 && c.lr_min <= c.lr) {
            return Err(invalid("lr_min", c.lr_min, "must lie in [0, lr]"));
        }
        for (name, value) in [
            ("death_rate", c.death_rate),
            ("death_rate_min", c.death_rate_min),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(invalid(name, value, "must lie in [0, 1]"));
            }
        }
        if !(c.death_rate_fraction > 0.0 && c.death_rate_fraction <= 1.0) {
            return Err(invalid(
                "death_rate_fraction",
                c.death_rate_fraction,
                "must lie in (0, 1]",
            ));
        }
        if c.conv_backend == ConvBackend::SparseMaskedGrad && c.growth == Growth::Gradient {
            return Err(invalid(
                "conv_backend",
                "sparse-masked-grad",
                "gradient growth needs the dense weight gradient (use sparse-dense-grad)",
            ));
        }
        if c.batch_size == Some(0) {
            return Err(invalid("batch_size", 0, "must be at least 1"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use sparse_repro::HarnessError;

    fn bad_name(result: Result<TrainConfig>) -> &'static str {
        match result {
            Err(Error::Harness(HarnessError::InvalidParameter { name, .. })) => name,
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_official_ucr_settings() {
        let c = TrainConfig::builder().build().unwrap();
        assert_eq!(
            (c.epochs(), c.channels(), c.depth(), c.kernel()),
            (1000, 47, 4, 39)
        );
        assert_eq!(c.out_channels(), 141);
        assert_eq!(c.density(), 0.2);
        // max(int(min(N/10, 16)), 2)
        assert_eq!(c.batch_size_for(50), 5);
        assert_eq!(c.batch_size_for(15), 2);
        assert_eq!(c.batch_size_for(1000), 16);
        assert_eq!(c.batch_size_for(67), 6);
    }

    #[test]
    fn errors_name_the_parameter() {
        let b = TrainConfig::builder;
        assert_eq!(bad_name(b().epochs(0).build()), "epochs");
        assert_eq!(bad_name(b().density(0.0).build()), "density");
        assert_eq!(bad_name(b().density(1.5).build()), "density");
        assert_eq!(bad_name(b().kernel(2).build()), "kernel");
        assert_eq!(bad_name(b().small_kernel(40).build()), "small_kernel");
        assert_eq!(bad_name(b().groups(4).build()), "groups");
        assert_eq!(bad_name(b().lr(-1.0).build()), "lr");
        assert_eq!(bad_name(b().lr_min(1.0).build()), "lr_min");
        assert_eq!(bad_name(b().death_rate(1.5).build()), "death_rate");
        assert_eq!(
            bad_name(b().death_rate_fraction(0.0).build()),
            "death_rate_fraction"
        );
        assert_eq!(bad_name(b().batch_size(Some(0)).build()), "batch_size");
        assert_eq!(
            bad_name(
                b().growth(Growth::Gradient)
                    .conv_backend(ConvBackend::SparseMaskedGrad)
                    .build()
            ),
            "conv_backend"
        );
        assert_eq!(Arm::from_name("dsn").unwrap(), Arm::Dsn);
        assert!(Arm::from_name("rigl").is_err());
    }
}
