//! Checkpoints in the one format every crate writes: sparse-core's safetensors
//! file with the arm, data set, seed, commit and recorded metrics in its metadata.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use sparse_core::checkpoint::{self, Sources, Targets};
use sparse_core::{CheckpointMeta, Mask};

use crate::error::{HarnessError, HarnessResult};
use crate::report::git_commit;

use super::paper::{ArmSpec, Metrics, Paper, Trained};

/// What the checkpoint's `config` holds: the arm and the seed, enough for `eval`
/// to rebuild the model and its data.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRun<A> {
    arm: ArmSpec<A>,
    seed: u64,
}

/// Writes `trained`'s model atomically to `path`, recording `arm`, `seed` and `metrics`.
pub fn save_model<P: Paper>(
    path: &Path,
    arm: &ArmSpec<P::Arm>,
    seed: u64,
    trained: &Trained<P::Outcome>,
    metrics: &Metrics,
) -> HarnessResult<()> {
    save_variables::<P>(
        path,
        arm,
        seed,
        ModelParts {
            varmap: &trained.varmap,
            masks: &trained.masks,
            extra: &trained.extra,
            step: trained.step,
        },
        metrics,
    )
}

/// What a checkpoint holds besides its metadata.
#[derive(Clone, Copy)]
pub struct ModelParts<'a> {
    /// Every variable of the model.
    pub varmap: &'a VarMap,
    /// Its masks, by parameter name.
    pub masks: &'a BTreeMap<String, Mask>,
    /// Further tensors (stored under `extra/`).
    pub extra: &'a BTreeMap<String, Tensor>,
    /// The training step (or epoch, or round) it was taken at.
    pub step: u64,
}

impl std::fmt::Debug for ModelParts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelParts")
            .field("masks", &self.masks.keys().collect::<Vec<_>>())
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// [`save_model`] for a model that is not a run's result (an IMP ticket, an
/// interpolated model): the same format, so [`read_stored`] and [`load_model`]
/// read it.
pub fn save_variables<P: Paper>(
    path: &Path,
    arm: &ArmSpec<P::Arm>,
    seed: u64,
    model: ModelParts<'_>,
    metrics: &Metrics,
) -> HarnessResult<()> {
    let stored = StoredRun {
        arm: arm.clone(),
        seed,
    };
    let config =
        serde_json::to_value(&stored).map_err(|e| HarnessError::Serialise(e.to_string()))?;
    let mut meta = CheckpointMeta::new(P::NAME, P::VERSION, config, model.step, seed)
        .with_dataset(&arm.dataset)
        .with_git_commit(git_commit());
    for (name, value) in metrics {
        meta = meta.with_metric(name, *value);
    }
    checkpoint::save(
        path,
        model.varmap,
        Sources {
            masks: Some(model.masks),
            optimizer: None,
            extra: (!model.extra.is_empty()).then_some(model.extra),
        },
        &meta,
    )?;
    Ok(())
}

/// A checkpoint written by [`save_model`], read back.
#[derive(Debug, Clone)]
pub struct StoredModel<A> {
    /// The checkpoint file.
    pub path: PathBuf,
    /// The arm it was trained as.
    pub arm: ArmSpec<A>,
    /// Its seed.
    pub seed: u64,
    /// The metadata (recorded metrics, commit, densities, ...).
    pub meta: CheckpointMeta,
}

/// Reads the arm and seed of a checkpoint after checking that `P` wrote it and
/// that no tensor was altered since.
pub fn read_stored<P: Paper>(path: &Path) -> HarnessResult<StoredModel<P::Arm>> {
    checkpoint::read_meta_expecting(path, P::NAME)?;
    let meta = checkpoint::verify(path)?;
    let stored: StoredRun<P::Arm> =
        serde_json::from_value(meta.config.clone()).map_err(|e| HarnessError::BadCheckpoint {
            path: path.to_path_buf(),
            reason: format!("its configuration is not a {} arm: {e}", P::NAME),
        })?;
    Ok(StoredModel {
        path: path.to_path_buf(),
        arm: stored.arm,
        seed: stored.seed,
        meta,
    })
}

/// The masks and extra tensors of a checkpoint whose weights were loaded into a varmap.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// Every `mask/` tensor, by parameter name.
    pub masks: BTreeMap<String, Mask>,
    /// Every `extra/` tensor, by name.
    pub extra: BTreeMap<String, Tensor>,
    /// The metadata.
    pub meta: CheckpointMeta,
}

/// Loads the weights of `path` into `varmap` (which must hold the same names and
/// shapes) and returns its masks and extra tensors; the integrity of every tensor is
/// checked first.
pub fn load_model(path: &Path, varmap: &VarMap) -> HarnessResult<LoadedModel> {
    let loaded = checkpoint::load(
        path,
        varmap,
        Targets {
            params: None,
            optimizer: None,
        },
    )?;
    let masks = checkpoint::load_masks(path)?;
    Ok(LoadedModel {
        masks,
        extra: loaded.extra,
        meta: loaded.meta,
    })
}
