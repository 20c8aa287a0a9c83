//! The arms and sizes of the `smoke`, `quick` and `paper` presets.

use serde::{Deserialize, Serialize};
use sparse_repro::HarnessError;
use sparse_repro::cli::Preset;
use sparse_repro::harness::ArmSpec;

use crate::config::LmConfig;
use crate::data::TINY_SHAKESPEARE;
use crate::error::Result;
use crate::model::{FeedForwardKind, LmSpec};
use crate::moe::RouterKind;
use crate::mwp::model::Seq2SeqSpec;
use crate::mwp::training::MwpConfig;
use crate::schedule::{KMode, KSchedule};

/// The k at which the learned-router SMoE and THOR train, and the official
/// "sparse" evaluation k (`--moe-top-k 2`).
pub const SPARSE_K: usize = 2;
/// The expert-dropout baseline's group-drop probability.
pub const EXPERT_DROPOUT_RATE: f64 = 0.5;
/// THOR's consistency weight.
pub const THOR_ALPHA: f64 = 1.0;

/// The arms of the paper's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArmKind {
    /// The dense transformer with `N · h` hidden units.
    Dense,
    /// The learned-router SMoE at a fixed k = 2.
    LearnedSmoe,
    /// SMoE-Dropout: a frozen random router, k growing from `N / 2` to N.
    SmoeDropout,
    /// The dense model with expert (hidden-group) dropout.
    ExpertDropout,
    /// THOR: random routing at k = 2 and a two-pass consistency loss.
    Thor,
}

impl ArmKind {
    /// Every arm, in report order.
    pub const ALL: [ArmKind; 5] = [
        Self::Dense,
        Self::LearnedSmoe,
        Self::SmoeDropout,
        Self::ExpertDropout,
        Self::Thor,
    ];

    /// The arm's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dense => "dense",
            Self::LearnedSmoe => "smoe",
            Self::SmoeDropout => "smoe-dropout",
            Self::ExpertDropout => "expert-dropout",
            Self::Thor => "thor",
        }
    }

    /// The arm called `name`.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                HarnessError::invalid(
                    "arm",
                    name,
                    "expected dense, smoe, smoe-dropout, expert-dropout or thor",
                )
                .into()
            })
    }
}

/// The sizes of one preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizes {
    /// The model (its feed-forward kind is the arm's).
    pub model: LmSpec,
    /// Training steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// The sweep of k after training.
    pub sweep: Vec<usize>,
    /// The evaluated held-out characters (`None`: all).
    pub eval_chars: Option<usize>,
    /// The arms `reproduce` trains.
    pub arms: Vec<ArmKind>,
}

/// The sizes of `preset`.
pub fn sizes(preset: Preset) -> Sizes {
    let model = |context, dim, heads, layers, num_experts, expert_hidden| LmSpec {
        vocab: 0,
        context,
        dim,
        heads,
        layers,
        num_experts,
        expert_hidden,
        dropout: 0.1,
        ffn: FeedForwardKind::Dense,
    };
    let compared = vec![ArmKind::Dense, ArmKind::LearnedSmoe, ArmKind::SmoeDropout];
    match preset {
        Preset::Smoke => Sizes {
            model: model(32, 32, 2, 1, 4, 16),
            steps: 30,
            batch_size: 4,
            lr: 1e-3,
            sweep: vec![1, 2, 4],
            eval_chars: Some(2048),
            arms: compared,
        },
        Preset::Quick => Sizes {
            model: model(64, 128, 4, 2, 8, 64),
            steps: 2500,
            batch_size: 16,
            lr: 1e-3,
            sweep: vec![1, 2, 4, 8],
            eval_chars: None,
            arms: compared,
        },
        // `script/table1/transformer_xl/smoe_dropout.sh`: 4 layers, d 256, 8 heads,
        // 16 experts of 512, tgt_len 512, batch 22, lr 2.5e-4, 400k steps.
        Preset::Paper => Sizes {
            model: model(512, 256, 8, 4, 16, 512),
            steps: 400_000,
            batch_size: 22,
            lr: 2.5e-4,
            sweep: vec![1, 2, 4, 8, 16],
            eval_chars: None,
            arms: ArmKind::ALL.to_vec(),
        },
    }
}

/// The feed-forward block of `kind`.
pub fn feed_forward(kind: ArmKind) -> FeedForwardKind {
    match kind {
        ArmKind::Dense => FeedForwardKind::Dense,
        ArmKind::ExpertDropout => FeedForwardKind::ExpertDropout {
            rate: EXPERT_DROPOUT_RATE,
        },
        ArmKind::LearnedSmoe => FeedForwardKind::Moe {
            router: RouterKind::Learned,
        },
        ArmKind::SmoeDropout => FeedForwardKind::Moe {
            router: RouterKind::Frozen,
        },
        ArmKind::Thor => FeedForwardKind::Moe {
            router: RouterKind::Random,
        },
    }
}

/// The configuration of `kind` at `preset`'s sizes; `k_mode` replaces
/// SMoE-Dropout's linear schedule (the schedule ablation).
pub fn config(preset: Preset, kind: ArmKind, k_mode: KMode) -> Result<LmConfig> {
    let sizes = sizes(preset);
    let n = sizes.model.num_experts;
    let ffn = feed_forward(kind);
    let schedule = match kind {
        ArmKind::SmoeDropout => KSchedule::new(k_mode, n / 2, n, sizes.steps)?,
        ArmKind::LearnedSmoe | ArmKind::Thor => KSchedule::constant(SPARSE_K)?,
        ArmKind::Dense | ArmKind::ExpertDropout => KSchedule::constant(n)?,
    };
    let config = LmConfig {
        model: LmSpec { ffn, ..sizes.model },
        schedule,
        steps: sizes.steps,
        batch_size: sizes.batch_size,
        seq_len: sizes.model.context,
        lr: sizes.lr,
        grad_clip: 0.25,
        consistency: (kind == ArmKind::Thor).then_some(THOR_ALPHA),
        sweep: sizes.sweep,
        eval_chars: sizes.eval_chars,
    };
    config.validate()?;
    Ok(config)
}

/// The arms `reproduce` trains for `preset` on `dataset`.
pub fn arms(preset: Preset, dataset: &str, k_mode: KMode) -> Result<Vec<ArmSpec<LmConfig>>> {
    sizes(preset)
        .arms
        .into_iter()
        .map(|kind| {
            Ok(ArmSpec::new(
                kind.name(),
                dataset,
                config(preset, kind, k_mode)?,
            ))
        })
        .collect()
}

/// The default data set.
pub fn default_dataset() -> &'static str {
    TINY_SHAKESPEARE
}

/// Which task a `reproduce` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Task {
    /// Character-level language modelling (tiny-shakespeare).
    #[default]
    Lm,
    /// Math word problems (MAWPS fold 0 and SVAMP; ASDiv-A too under `paper`).
    Mwp,
}

/// The math-word-problem sets `reproduce --task mwp` runs: fold 0 of MAWPS under
/// `smoke` and `quick`, every fold of MAWPS and ASDiv-A under `paper`, and SVAMP.
pub fn mwp_datasets(preset: Preset) -> Vec<String> {
    match preset {
        Preset::Smoke => vec!["mawps".to_string()],
        Preset::Quick => vec!["mawps".to_string(), "svamp".to_string()],
        Preset::Paper => {
            let folds = |name: &'static str| {
                (0..crate::mwp::data::FOLDS).map(move |fold| format!("{name}-fold{fold}"))
            };
            folds("mawps")
                .chain(folds("asdiv-a"))
                .chain(std::iter::once("svamp".to_string()))
                .collect()
        }
    }
}

/// The math-word-problem arms of `preset`.
pub fn mwp_arm_kinds(preset: Preset) -> Vec<ArmKind> {
    match preset {
        Preset::Smoke | Preset::Quick => vec![ArmKind::Dense, ArmKind::SmoeDropout],
        Preset::Paper => vec![ArmKind::Dense, ArmKind::LearnedSmoe, ArmKind::SmoeDropout],
    }
}

/// The math-word-problem configuration of `kind` at `preset`'s sizes.
///
/// `paper` takes BERT-base's encoder sizes (12 layers, d 768, 12 heads, d_inner
/// 3072 = 16 experts of 192) and the paper's fine-tuning rate, trained from scratch.
pub fn mwp_config(preset: Preset, kind: ArmKind, k_mode: KMode) -> Result<MwpConfig> {
    let spec =
        |dim, heads, encoder_layers, decoder_layers, num_experts, expert_hidden| Seq2SeqSpec {
            source_vocab: 0,
            target_vocab: 0,
            max_source: crate::mwp::data::MAX_SOURCE,
            max_target: 0,
            dim,
            heads,
            encoder_layers,
            decoder_layers,
            num_experts,
            expert_hidden,
            dropout: 0.1,
            ffn: FeedForwardKind::Dense,
        };
    let (model, steps, batch_size, lr, sweep, max_train, max_test) = match preset {
        Preset::Smoke => (
            spec(32, 2, 1, 1, 4, 16),
            20,
            8,
            1e-3,
            vec![1, 2, 4],
            Some(64),
            Some(32),
        ),
        Preset::Quick => (
            spec(128, 4, 2, 2, 8, 64),
            700,
            32,
            5e-4,
            vec![1, 2, 4, 8],
            None,
            None,
        ),
        Preset::Paper => (
            spec(768, 12, 12, 2, 16, 192),
            100_000,
            64,
            5e-5,
            vec![1, 2, 4, 8, 16],
            None,
            None,
        ),
    };
    if kind == ArmKind::Thor {
        return Err(HarnessError::invalid(
            "arm",
            kind.name(),
            "THOR's two-pass loss is built for the language model only",
        )
        .into());
    }
    let n = model.num_experts;
    let schedule = match kind {
        ArmKind::SmoeDropout => KSchedule::new(k_mode, n / 2, n, steps)?,
        ArmKind::LearnedSmoe | ArmKind::Thor => KSchedule::constant(SPARSE_K)?,
        ArmKind::Dense | ArmKind::ExpertDropout => KSchedule::constant(n)?,
    };
    let config = MwpConfig {
        model: Seq2SeqSpec {
            ffn: feed_forward(kind),
            ..model
        },
        schedule,
        steps,
        batch_size,
        lr,
        grad_clip: 1.0,
        sweep,
        max_train,
        max_test,
    };
    config.validate()?;
    Ok(config)
}
