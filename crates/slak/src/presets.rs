//! The arms of each preset.
//!
//! Arms (the issue's): `a-3` dense 3×3 (the ConvNeXt setting), `b-K` a dense naive
//! K×K kernel, `c-K` the decomposed K×N ∥ N×K ∥ N×N kernel dense at width 1, `d-K`
//! the decomposed kernel at 40 % sparsity and width 1.3 (SLaK), N = 3.

use sparse_repro::HarnessError;
use sparse_repro::cli::Preset;
use sparse_repro::harness::ArmSpec;
use sparse_repro::splits::SplitSizes;

use crate::config::{DwGrad, SlakConfig};
use crate::error::Result;
use crate::sparse::SlakSparsity;
use crate::spec::ModelSpec;

/// The small kernel `N` of the decomposed arms.
pub const SMALL: usize = 3;
/// The density of the sparse-wide arms (sparsity 0.4).
pub const DENSITY: f64 = 0.6;
/// The width factor of the sparse-wide arms.
pub const WIDE: f64 = 1.3;

/// The kind of an arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmKind {
    /// Dense 3×3.
    A,
    /// Dense naive K×K.
    B,
    /// Decomposed, dense, width 1.
    C,
    /// Decomposed, sparse, wider.
    D,
}

impl ArmKind {
    /// The arm's name for kernel `k`.
    pub fn name(self, k: usize) -> String {
        match self {
            ArmKind::A => "a-3".to_string(),
            ArmKind::B => format!("b-{k}"),
            ArmKind::C => format!("c-{k}"),
            ArmKind::D => format!("d-{k}"),
        }
    }
}

/// The data sets a preset runs when none is asked for.
pub fn default_datasets(preset: Preset) -> &'static [&'static str] {
    match preset {
        Preset::Smoke => &["border-half"],
        Preset::Quick => &["border-half", "fashion-mnist"],
        Preset::Paper => &["imagenet"],
    }
}

/// `(input channels, classes)` of a data set.
fn data_shape(dataset: &str) -> Result<(usize, usize)> {
    match dataset {
        "border-half" => Ok((1, 2)),
        "fashion-mnist" | "mnist" => Ok((1, 10)),
        "cifar10" => Ok((3, 10)),
        "imagenet" => Ok((3, 1000)),
        other => Err(HarnessError::invalid(
            "dataset",
            other,
            "use border-half, fashion-mnist, mnist or cifar10 (imagenet for paper)",
        )
        .into()),
    }
}

fn arm_config(preset: Preset, dataset: &str, kind: ArmKind, k: usize) -> Result<SlakConfig> {
    let (in_chans, num_classes) = data_shape(dataset)?;
    let smoke = preset == Preset::Smoke;
    let paper = preset == Preset::Paper;
    let (depths, dims, stem) = if paper {
        (vec![3, 3, 9, 3], vec![96, 192, 384, 768], 4)
    } else if smoke {
        (vec![1, 1], vec![8, 16], 2)
    } else {
        (vec![1, 1], vec![24, 48], 2)
    };
    let stages = depths.len();
    let kernel_size = |large: Vec<usize>, small: usize| {
        let mut ks = large;
        ks.push(small);
        ks
    };
    let (kernels, decompose, width_factor) = match kind {
        // N > K: the ConvNeXt setting, one square branch
        ArmKind::A => (kernel_size(vec![3; stages], 100), false, 1.0),
        ArmKind::B => (kernel_size(vec![k; stages], 100), false, 1.0),
        ArmKind::C => (kernel_size(vec![k; stages], SMALL), true, 1.0),
        ArmKind::D => (kernel_size(vec![k; stages], SMALL), true, WIDE),
    };
    let kernels = if paper && kind == ArmKind::D {
        vec![51, 49, 47, 13, 5]
    } else {
        kernels
    };
    let model = ModelSpec {
        in_chans,
        num_classes,
        depths,
        dims,
        kernel_size: kernels,
        width_factor,
        decompose,
        stem,
        drop_path: if paper { 0.1 } else { 0.0 },
        layer_scale: 1e-6,
    };
    let sparsity = (kind == ArmKind::D).then_some(SlakSparsity {
        density: DENSITY,
        prune_rate: if paper { 0.5 } else { 0.3 },
        topology_period: if paper {
            2000
        } else if smoke {
            2
        } else {
            25
        },
        fix: false,
        exact_growth: false,
    });
    let data = if smoke {
        SplitSizes {
            train_pool: Some(320),
            validation_fraction: 0.2,
            test: Some(128),
            recalibration: None,
        }
    } else if paper {
        SplitSizes::full()
    } else if dataset == "border-half" {
        SplitSizes {
            train_pool: Some(2000),
            validation_fraction: 1.0 / 9.0,
            test: Some(1000),
            recalibration: None,
        }
    } else {
        SplitSizes {
            train_pool: Some(4500),
            validation_fraction: 1.0 / 9.0,
            test: Some(2000),
            recalibration: None,
        }
    };
    let config = SlakConfig {
        model,
        sparsity,
        data,
        epochs: if paper {
            300
        } else if smoke {
            1
        } else if dataset == "border-half" {
            5
        } else {
            3
        },
        batch_size: if paper {
            128
        } else if smoke {
            32
        } else {
            64
        },
        accumulation_steps: if paper { 32 } else { 1 },
        lr: if paper { 4e-3 } else { 2e-3 },
        min_lr: 1e-6,
        warmup_epochs: if paper {
            20.0
        } else if smoke {
            0.0
        } else {
            1.0
        },
        weight_decay: 0.05,
        label_smoothing: 0.1,
        ema_decay: Some(if paper { 0.9999 } else { 0.975 }),
        dw_grad: DwGrad::Dense,
        erf_images: if smoke { 4 } else { 32 },
        erf_upsample: if smoke { 1 } else { 3 },
    };
    config.validate()?;
    Ok(config)
}

/// The arms of `preset` on `dataset`.
pub fn arms(preset: Preset, dataset: &str) -> Result<Vec<ArmSpec<SlakConfig>>> {
    let list: Vec<(ArmKind, usize)> = match (preset, dataset) {
        (Preset::Smoke, _) => vec![(ArmKind::A, 3), (ArmKind::C, 7), (ArmKind::D, 7)],
        (Preset::Quick, _) => vec![
            (ArmKind::A, 3),
            (ArmKind::B, 7),
            (ArmKind::C, 7),
            (ArmKind::D, 7),
            (ArmKind::B, 13),
            (ArmKind::C, 13),
            (ArmKind::D, 13),
        ],
        // SLaK-T against ConvNeXt-T
        (Preset::Paper, _) => vec![(ArmKind::A, 7), (ArmKind::D, 51)],
    };
    list.into_iter()
        .map(|(kind, k)| {
            let mut config = arm_config(preset, dataset, kind, k)?;
            let name = if preset == Preset::Paper && kind == ArmKind::A {
                // ConvNeXt-T: 7×7 kernels
                config.model.kernel_size = vec![7, 7, 7, 7, 100];
                config.validate()?;
                "convnext-t".to_string()
            } else if preset == Preset::Paper {
                "slak-t".to_string()
            } else {
                kind.name(k)
            };
            Ok(ArmSpec::new(name, dataset, config))
        })
        .collect()
}
