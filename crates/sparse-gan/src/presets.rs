//! The arms of each preset on each data set.
//!
//! - `smoke` (seconds; the tests): the ring with tiny MLPs, and the digits with a
//!   tiny SNGAN (the `paper` model, masks on its convolutions).
//! - `quick` (minutes on two cores, 3 seeds): the ring with the MLP GAN, or
//!   `--dataset mnist` (any 28×28 set) with the small DCGAN at one density pair.
//! - `paper`: SNGAN on CIFAR-10 with the official hyperparameters.

use sparse_repro::HarnessError;
use sparse_repro::cli::Preset;
use sparse_repro::harness::ArmSpec;

use crate::config::{Explore, GanArch, GanConfig, MaskScope};
use crate::data::MIXTURES;
use crate::error::Result;
use crate::schedule::DeathSchedule;

/// The generator densities of the density sweep.
pub const DENSITIES_G: [f64; 3] = [0.05, 0.1, 0.2];
/// The discriminator's density in every sparse arm (the paper's densest G/D gap).
pub const DENSITY_D: f64 = 0.5;

/// The data sets a preset runs when none is asked for.
pub fn default_datasets(preset: Preset) -> &'static [&'static str] {
    match preset {
        Preset::Smoke => &["ring", "digits"],
        Preset::Quick => &["ring"],
        Preset::Paper => &["cifar10"],
    }
}

fn is_mixture(dataset: &str) -> bool {
    MIXTURES.contains(&dataset)
}

/// `(channels, side)` of a known image set.
fn image_shape(dataset: &str) -> Result<(usize, usize)> {
    match dataset {
        "digits" => Ok((1, 8)),
        "mnist" | "fashion-mnist" => Ok((1, 28)),
        "cifar10" | "cifar100" => Ok((3, 32)),
        other => Err(HarnessError::invalid(
            "dataset",
            other,
            "use ring, grid, digits, mnist, fashion-mnist or cifar10",
        )
        .into()),
    }
}

/// The shared settings of `preset` on `dataset` (dense, static).
pub fn base_config(preset: Preset, dataset: &str) -> Result<GanConfig> {
    let common = |arch, mask_scope| GanConfig {
        arch,
        mask_scope,
        density_g: None,
        density_d: None,
        explore: Explore::Static,
        g_steps: 0,
        n_critic: 5,
        dis_batch: 64,
        gen_batch: 128,
        lr: 2e-4,
        update_frequency: 1,
        death_rate: 0.5,
        schedule: DeathSchedule::PerDStep2021,
        sema: Some(0.999),
        spectral_norm: true,
        exact_d_growth: false,
        eval_samples: 10_000,
    };
    let mlp = |width, depth| GanArch::Mlp {
        width,
        depth,
        latent: 2,
    };
    let config = if is_mixture(dataset) {
        match preset {
            Preset::Smoke => GanConfig {
                g_steps: 40,
                n_critic: 2,
                dis_batch: 32,
                gen_batch: 64,
                update_frequency: 10,
                sema: Some(0.9),
                eval_samples: 500,
                ..common(mlp(16, 2), MaskScope::AllWeights)
            },
            Preset::Quick => GanConfig {
                g_steps: 2000,
                update_frequency: 100,
                sema: Some(0.99),
                eval_samples: 2500,
                ..common(mlp(128, 3), MaskScope::AllWeights)
            },
            Preset::Paper => {
                return Err(HarnessError::invalid(
                    "dataset",
                    dataset,
                    "the paper preset trains SNGAN on 32x32 images (cifar10); the mixtures \
                     run as smoke and quick",
                )
                .into());
            }
        }
    } else {
        let (image_channels, side) = image_shape(dataset)?;
        match preset {
            Preset::Smoke if dataset == "digits" => GanConfig {
                g_steps: 20,
                n_critic: 2,
                dis_batch: 16,
                gen_batch: 32,
                update_frequency: 5,
                sema: Some(0.9),
                eval_samples: 500,
                ..common(
                    GanArch::SnGan {
                        gf: 8,
                        df: 8,
                        latent: 8,
                        bottom: 1,
                        image_channels,
                    },
                    MaskScope::ConvOnly,
                )
            },
            Preset::Smoke | Preset::Quick => {
                if side % 4 != 0 {
                    return Err(HarnessError::invalid(
                        "dataset",
                        dataset,
                        "the DCGAN needs an image side divisible by 4",
                    )
                    .into());
                }
                let smoke = preset == Preset::Smoke;
                GanConfig {
                    g_steps: if smoke { 10 } else { 1500 },
                    n_critic: 1,
                    dis_batch: 32,
                    gen_batch: 64,
                    update_frequency: if smoke { 5 } else { 75 },
                    sema: Some(if smoke { 0.9 } else { 0.99 }),
                    eval_samples: if smoke { 500 } else { 10_000 },
                    ..common(
                        GanArch::Dcgan {
                            width: if smoke { 4 } else { 16 },
                            latent: 32,
                            bottom: side / 4,
                            image_channels,
                        },
                        MaskScope::AllWeights,
                    )
                }
            }
            Preset::Paper => {
                if side % 8 != 0 {
                    return Err(HarnessError::invalid(
                        "dataset",
                        dataset,
                        "SNGAN needs an image side divisible by 8 (cifar10: 32)",
                    )
                    .into());
                }
                GanConfig {
                    g_steps: 50_000,
                    update_frequency: 1000,
                    ..common(
                        GanArch::SnGan {
                            gf: 256,
                            df: 128,
                            latent: 128,
                            bottom: side / 8,
                            image_channels,
                        },
                        MaskScope::ConvOnly,
                    )
                }
            }
        }
    };
    config.validate()?;
    Ok(config)
}

/// The generator densities `preset` sweeps on `dataset`.
pub fn densities(preset: Preset, dataset: &str) -> Vec<f64> {
    match (preset, is_mixture(dataset), dataset) {
        (Preset::Smoke, false, _) => vec![0.2],
        (Preset::Quick, false, _) => vec![0.05],
        _ => DENSITIES_G.to_vec(),
    }
}

/// The name of an arm: `dense`, or `static@0.05`, `dst-g@0.05`, `dst-gd@0.05`.
pub fn arm_name(explore: Explore, density_g: f64) -> String {
    let kind = match explore {
        Explore::Static => "static",
        Explore::G => "dst-g",
        Explore::GD => "dst-gd",
    };
    format!("{kind}@{density_g}")
}

/// Every arm of `preset` on `dataset`: dense, then static, DST on G and DST on G and
/// D at each generator density, the discriminator at [`DENSITY_D`].
pub fn arms(preset: Preset, dataset: &str) -> Result<Vec<ArmSpec<GanConfig>>> {
    let base = base_config(preset, dataset)?;
    let mut arms = vec![ArmSpec::new("dense", dataset, base.clone())];
    for density in densities(preset, dataset) {
        for explore in [Explore::Static, Explore::G, Explore::GD] {
            let config = GanConfig {
                density_g: Some(density),
                density_d: Some(DENSITY_D),
                explore,
                ..base.clone()
            };
            config.validate()?;
            arms.push(ArmSpec::new(arm_name(explore, density), dataset, config));
        }
    }
    Ok(arms)
}
