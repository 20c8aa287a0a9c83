//! One arm's configuration, with a checked builder.
//!
//! Defaults are the official CIFAR recipe (`main_imp.py` and `Lottery_pools.py`):
//! SGD with momentum 0.9 and weight decay 1e-4 at learning rate 0.1, divided by 10
//! at epochs 91 and 136 of 182, batch 128; IMP pruning 20 % of the remaining
//! convolution weights per round with rewinding; a validation split of 1/10 of the
//! training set (5k of 50k); pools over the "interpolation" grid.
//!
//! An [`LotteryConfig`] is everything of an arm except its seed and data set (the
//! harness passes those), including how much of the data set it uses, so that a
//! checkpoint alone rebuilds the run's data.

use serde::{Deserialize, Serialize};
use sparse_core::imp::ImpSchedule;
use sparse_core::lr::MultiStep;
use sparse_core::pools::{Acceptance, PoolConfig, PoolMethod};
use sparse_data::data::corrupt::MAX_SEVERITY;
use sparse_repro::HarnessError;
use sparse_repro::models::Architecture;
use sparse_repro::splits::SplitSizes;

use crate::error::Result;

/// How much of the data set a run uses: the splits, and the corrupted test images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DataSizes {
    /// Training, validation, recalibration and test images.
    #[serde(flatten)]
    pub splits: SplitSizes,
    /// Images of the corrupted test set (the first test images, each corrupted
    /// once, by the corruption-severity pairs in turn); 0 leaves it out.
    pub corrupted: usize,
}

/// The IMP stage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImpSettings {
    /// Tickets, the dense round 0 included.
    pub rounds: usize,
    /// Share of the remaining convolution weights pruned before each later round.
    pub rate: f64,
    /// Epochs done when round 0 captures the rewind point.
    pub rewind_epoch: usize,
    /// Epochs of a whole round (later rounds train `rewind_epoch..epochs`).
    pub epochs: usize,
}

/// The optimizer and its schedule (one fresh optimizer per round).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSettings {
    /// Learning rate before the first milestone.
    pub lr: f64,
    /// Heavy-ball momentum.
    pub momentum: f64,
    /// Coupled weight decay (every trainable tensor, as `torch.optim.SGD`).
    pub weight_decay: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Epochs at which the learning rate is divided by 10.
    pub milestones: Vec<u64>,
}

/// The pool stage and its baselines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolSettings {
    /// Tickets each search uses, the target included (`search_num`).
    pub search_num: usize,
    /// The "interpolation" pool's coefficients.
    pub coefficients: Vec<f64>,
    /// When a candidate's best model replaces the current one.
    pub acceptance: Acceptance,
    /// The EMA baseline's decay (weight of the current model).
    pub ema_decay: f64,
    /// Points of the linear path between adjacent tickets (0 and 1 are the tickets).
    pub path_alphas: Vec<f64>,
}

/// One arm: a model, its data and the two stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LotteryConfig {
    architecture: Architecture,
    data: DataSizes,
    imp: ImpSettings,
    optimizer: OptimizerSettings,
    pools: PoolSettings,
}

impl LotteryConfig {
    /// A builder with the official recipe for `architecture`.
    pub fn builder(architecture: Architecture) -> LotteryConfigBuilder {
        LotteryConfigBuilder(Self {
            architecture,
            data: DataSizes {
                splits: SplitSizes::full(),
                corrupted: 0,
            },
            imp: ImpSettings {
                rounds: 19,
                rate: 0.2,
                rewind_epoch: 9,
                epochs: 182,
            },
            optimizer: OptimizerSettings {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 1e-4,
                batch_size: 128,
                milestones: vec![91, 136],
            },
            pools: PoolSettings {
                search_num: 19,
                coefficients: interpolation_coefficients(),
                acceptance: Acceptance::AtLeast,
                ema_decay: 0.95,
                path_alphas: (0..=10).map(|i| f64::from(i) / 10.0).collect(),
            },
        })
    }

    /// A builder starting from this configuration (to change a few settings).
    pub fn rebuild(&self) -> LotteryConfigBuilder {
        LotteryConfigBuilder(self.clone())
    }

    /// The model.
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// How much data the run uses.
    pub fn data(&self) -> &DataSizes {
        &self.data
    }

    /// The IMP stage.
    pub fn imp(&self) -> &ImpSettings {
        &self.imp
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &OptimizerSettings {
        &self.optimizer
    }

    /// The pool stage.
    pub fn pools(&self) -> &PoolSettings {
        &self.pools
    }

    /// The checked IMP schedule.
    pub fn imp_schedule(&self) -> Result<ImpSchedule> {
        Ok(ImpSchedule::builder(self.imp.rounds, self.imp.rate)
            .rewind_epoch(self.imp.rewind_epoch)
            .epochs(self.imp.epochs)
            .build()?)
    }

    /// The learning rate per epoch.
    pub fn lr_schedule(&self) -> Result<MultiStep> {
        Ok(MultiStep::new(
            self.optimizer.lr,
            0.1,
            self.optimizer.milestones.clone(),
        )?)
    }

    /// The pool of `method` over `prunable` tensors.
    pub fn pool_config(
        &self,
        method: PoolMethod,
        prunable: impl IntoIterator<Item = String>,
    ) -> Result<PoolConfig> {
        Ok(PoolConfig::builder(method)
            .search_num(self.pools.search_num)
            .prunable(prunable)
            .build()?)
    }

    /// The "interpolation" pool of this arm (its grid and acceptance rule).
    pub fn interpolation(&self) -> PoolMethod {
        PoolMethod::Greedy {
            coefficients: self.pools.coefficients.clone(),
            acceptance: self.pools.acceptance,
        }
    }

    /// The "average" pool, `{0.5}`, with this arm's acceptance rule.
    pub fn average(&self) -> PoolMethod {
        PoolMethod::Greedy {
            coefficients: vec![0.5],
            acceptance: self.pools.acceptance,
        }
    }

    /// Checks every setting (also for a configuration read from a checkpoint).
    pub fn validate(&self) -> Result<()> {
        let invalid = |name, value: String, reason: &str| -> crate::Error {
            HarnessError::invalid(name, value, reason).into()
        };
        if matches!(self.architecture, Architecture::Mlp { .. }) {
            return Err(invalid(
                "architecture",
                self.architecture.label(),
                "IMP prunes convolution weights only: use a ResNet or a VGG",
            ));
        }
        self.data.splits.validate()?;
        if self.imp.rounds < 2 {
            return Err(invalid(
                "rounds",
                self.imp.rounds.to_string(),
                "a pool needs at least two tickets",
            ));
        }
        self.imp_schedule()?;
        let o = &self.optimizer;
        if !(0.0..1.0).contains(&o.momentum) {
            return Err(invalid(
                "momentum",
                o.momentum.to_string(),
                "must lie in [0, 1)",
            ));
        }
        if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
            return Err(invalid(
                "weight_decay",
                o.weight_decay.to_string(),
                "must be a non-negative number",
            ));
        }
        if o.batch_size == 0 {
            return Err(invalid("batch_size", "0".into(), "must be positive"));
        }
        self.lr_schedule()?;
        let p = &self.pools;
        if p.path_alphas.iter().any(|a| !(0.0..=1.0).contains(a)) || p.path_alphas.len() < 2 {
            return Err(invalid(
                "path_alphas",
                format!("{:?}", p.path_alphas),
                "at least two points, each in [0, 1]",
            ));
        }
        for method in [self.interpolation(), PoolMethod::Ema { decay: p.ema_decay }] {
            self.pool_config(method, Vec::new())?;
        }
        Ok(())
    }
}

/// The paper's "interpolation" grid, `{0.05, 0.1, 0.2, …, 0.9, 0.95}`.
pub fn interpolation_coefficients() -> Vec<f64> {
    match PoolMethod::interpolation() {
        PoolMethod::Greedy { coefficients, .. } => coefficients,
        _ => unreachable!("the interpolation pool is greedy"),
    }
}

/// Builder of a [`LotteryConfig`]; [`build`](Self::build) validates.
#[derive(Debug, Clone)]
pub struct LotteryConfigBuilder(LotteryConfig);

impl LotteryConfigBuilder {
    /// The model.
    pub fn architecture(mut self, architecture: Architecture) -> Self {
        self.0.architecture = architecture;
        self
    }

    /// Training images used, validation included (`None`: all).
    pub fn train_pool(mut self, n: Option<usize>) -> Self {
        self.0.data.splits.train_pool = n;
        self
    }

    /// Share of the training pool held out for validation (the last images).
    pub fn validation_fraction(mut self, fraction: f64) -> Self {
        self.0.data.splits.validation_fraction = fraction;
        self
    }

    /// Test images used (`None`: all).
    pub fn test_images(mut self, n: Option<usize>) -> Self {
        self.0.data.splits.test = n;
        self
    }

    /// Training images BatchNorm recalibration passes over (`None`: the split).
    pub fn recalibration_images(mut self, n: Option<usize>) -> Self {
        self.0.data.splits.recalibration = n;
        self
    }

    /// Images of the corrupted test set (0: none).
    pub fn corrupted_images(mut self, n: usize) -> Self {
        self.0.data.corrupted = n;
        self
    }

    /// IMP rounds (tickets, dense included) and the share pruned per round.
    pub fn rounds(mut self, rounds: usize, rate: f64) -> Self {
        self.0.imp.rounds = rounds;
        self.0.imp.rate = rate;
        self
    }

    /// Epochs per round and the rewind epoch.
    pub fn epochs(mut self, epochs: usize, rewind_epoch: usize) -> Self {
        self.0.imp.epochs = epochs;
        self.0.imp.rewind_epoch = rewind_epoch;
        self
    }

    /// Learning rate and its milestones (divided by 10 at each).
    pub fn lr(mut self, lr: f64, milestones: Vec<u64>) -> Self {
        self.0.optimizer.lr = lr;
        self.0.optimizer.milestones = milestones;
        self
    }

    /// Momentum and weight decay.
    pub fn momentum(mut self, momentum: f64, weight_decay: f64) -> Self {
        self.0.optimizer.momentum = momentum;
        self.0.optimizer.weight_decay = weight_decay;
        self
    }

    /// Mini-batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.0.optimizer.batch_size = batch_size;
        self
    }

    /// Tickets per search, the target included.
    pub fn search_num(mut self, search_num: usize) -> Self {
        self.0.pools.search_num = search_num;
        self
    }

    /// The interpolation pool's coefficients.
    pub fn coefficients(mut self, coefficients: Vec<f64>) -> Self {
        self.0.pools.coefficients = coefficients;
        self
    }

    /// The acceptance rule of the greedy pools.
    pub fn acceptance(mut self, acceptance: Acceptance) -> Self {
        self.0.pools.acceptance = acceptance;
        self
    }

    /// The EMA baseline's decay.
    pub fn ema_decay(mut self, decay: f64) -> Self {
        self.0.pools.ema_decay = decay;
        self
    }

    /// Points of the linear path between adjacent tickets.
    pub fn path_alphas(mut self, alphas: Vec<f64>) -> Self {
        self.0.pools.path_alphas = alphas;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<LotteryConfig> {
        self.0.validate()?;
        Ok(self.0)
    }
}

/// Severities of the corrupted test set (all of the recipe's).
pub fn severities() -> Vec<u8> {
    (1..=MAX_SEVERITY).collect()
}
