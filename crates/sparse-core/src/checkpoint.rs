//! Training checkpoints: one safetensors file holding everything needed to resume a
//! run bit-identically.
//!
//! Layout of the file:
//! - every `VarMap` entry under its own name (BatchNorm running statistics included);
//! - masks as `U8` tensors under `mask/<name>`;
//! - optimizer buffers under `optim/<param>/<buffer>`;
//! - optional caller tensors (e.g. an EMA copy) under `extra/<name>`;
//! - JSON [`CheckpointMeta`] in the header metadata under the key `sparseland`
//!   (step, seed, config, densities, optimizer step/lr, the ChaCha8 RNG position).
//!
//! Files are written atomically (temporary sibling, fsync, rename). Loading validates
//! names, shapes and dtypes of everything before it changes anything, and reports
//! problems as [`CheckpointError`]s.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::error::{CheckpointError, Result};
use crate::mask::Mask;
use crate::optim::{Optimizer, OptimizerState};
use crate::registry::SparseParams;
use crate::selection::sorted_vars;

/// Header-metadata key of the JSON [`CheckpointMeta`].
pub const METADATA_KEY: &str = "sparseland";
/// Name prefix of masks.
pub const MASK_PREFIX: &str = "mask/";
/// Name prefix of optimizer buffers.
pub const OPTIM_PREFIX: &str = "optim/";
/// Name prefix of caller-provided extra tensors.
pub const EXTRA_PREFIX: &str = "extra/";

/// The exact position of a [`ChaCha8Rng`], so a resumed run draws the same numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte seed, hex-encoded.
    pub seed: String,
    /// The stream number.
    pub stream: u64,
    /// The word position (a `u128`, as a decimal string because JSON numbers are f64).
    pub word_pos: String,
}

impl RngState {
    /// Records where `rng` stands.
    pub fn capture(rng: &ChaCha8Rng) -> Self {
        let seed = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
        Self {
            seed,
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    /// A generator at the recorded position.
    pub fn restore(&self) -> std::result::Result<ChaCha8Rng, CheckpointError> {
        use rand::SeedableRng;
        let bad = |reason: &str| CheckpointError::BadMetadata {
            path: PathBuf::new(),
            reason: format!("rng state: {reason}"),
        };
        if self.seed.len() != 64 || !self.seed.is_ascii() {
            return Err(bad("seed must be 64 hex digits"));
        }
        let mut seed = [0u8; 32];
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&self.seed[2 * i..2 * i + 2], 16)
                .map_err(|_| bad("seed is not hex"))?;
        }
        let word_pos: u128 = self
            .word_pos
            .parse()
            .map_err(|_| bad("word_pos is not an unsigned integer"))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }
}

/// Optimizer facts stored next to its buffers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerMeta {
    /// [`Optimizer::kind`].
    pub kind: String,
    /// [`Optimizer::step_count`].
    pub step: u64,
    /// [`Optimizer::learning_rate`].
    pub learning_rate: f64,
}

/// JSON metadata of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The crate that wrote the file (`sparse-core`).
    pub crate_name: String,
    /// Its version.
    pub crate_version: String,
    /// The run's configuration, as the caller serialised it.
    pub config: serde_json::Value,
    /// Training step (or epoch) the checkpoint was taken at.
    pub step: u64,
    /// The run's seed.
    pub seed: u64,
    /// Per-tensor densities at save time (filled by [`save`] from the masks).
    pub densities: BTreeMap<String, f64>,
    /// The RNG position, for bit-identical resumption.
    pub rng: Option<RngState>,
    /// Optimizer facts (filled by [`save`]).
    pub optimizer: Option<OptimizerMeta>,
    /// Free-form key/values.
    pub extra: BTreeMap<String, String>,
}

impl CheckpointMeta {
    /// Metadata with this crate's name and version and no RNG, densities or extras.
    pub fn new(config: serde_json::Value, step: u64, seed: u64) -> Self {
        Self {
            crate_name: env!("CARGO_PKG_NAME").to_string(),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            config,
            step,
            seed,
            densities: BTreeMap::new(),
            rng: None,
            optimizer: None,
            extra: BTreeMap::new(),
        }
    }

    /// Records the RNG position.
    pub fn with_rng(mut self, rng: &ChaCha8Rng) -> Self {
        self.rng = Some(RngState::capture(rng));
        self
    }
}

/// What a checkpoint holds besides the `VarMap` weights.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sources<'a> {
    /// Masks to store under `mask/`.
    pub params: Option<&'a SparseParams>,
    /// Optimizer whose state goes under `optim/`.
    pub optimizer: Option<&'a dyn Optimizer>,
    /// Extra tensors stored under `extra/`.
    pub extra: Option<&'a BTreeMap<String, Tensor>>,
}

/// Where a loaded checkpoint is restored to besides the `VarMap`.
#[derive(Default)]
pub struct Targets<'a> {
    /// Registry whose masks are replaced from `mask/` (every mask must be present).
    pub params: Option<&'a mut SparseParams>,
    /// Optimizer whose state is replaced from `optim/`.
    pub optimizer: Option<&'a mut dyn Optimizer>,
}

/// A restored checkpoint's metadata and extra tensors.
#[derive(Debug)]
pub struct Loaded {
    /// The metadata.
    pub meta: CheckpointMeta,
    /// The `extra/` tensors, without the prefix.
    pub extra: BTreeMap<String, Tensor>,
}

/// The safetensors dtype of a candle dtype (`None` for the exotic float formats).
fn st_dtype(dtype: DType) -> Option<Dtype> {
    Some(match dtype {
        DType::U8 => Dtype::U8,
        DType::U32 => Dtype::U32,
        DType::I16 => Dtype::I16,
        DType::I32 => Dtype::I32,
        DType::I64 => Dtype::I64,
        DType::BF16 => Dtype::BF16,
        DType::F16 => Dtype::F16,
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        _ => return None,
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `varmap`, the masks, optimizer state and extras to `path` atomically.
/// `meta.densities` and `meta.optimizer` are filled from `sources`.
pub fn save(
    path: impl AsRef<Path>,
    varmap: &VarMap,
    sources: Sources<'_>,
    meta: &CheckpointMeta,
) -> Result<()> {
    let path = path.as_ref();
    let mut meta = meta.clone();
    let mut tensors: Vec<(String, Tensor)> = sorted_vars(varmap)
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect();
    if let Some(params) = sources.params {
        meta.densities = params.densities();
        for p in params.iter() {
            let m = p.mask.to_tensor(DType::U8, &candle_core::Device::Cpu)?;
            tensors.push((format!("{MASK_PREFIX}{}", p.name), m));
        }
    }
    if let Some(opt) = sources.optimizer {
        let state = opt.export_state()?;
        meta.optimizer = Some(OptimizerMeta {
            kind: opt.kind().to_string(),
            step: state.step,
            learning_rate: state.learning_rate,
        });
        for (k, t) in state.tensors {
            tensors.push((format!("{OPTIM_PREFIX}{k}"), t));
        }
    }
    if let Some(extra) = sources.extra {
        for (k, t) in extra {
            tensors.push((format!("{EXTRA_PREFIX}{k}"), t.clone()));
        }
    }
    let json = serde_json::to_string(&meta).map_err(|e| CheckpointError::BadMetadata {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let header = HashMap::from([(METADATA_KEY.to_string(), json)]);
    let bytes =
        safetensors::serialize(tensors, Some(header)).map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    write_atomically(path, &bytes)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        // Persist the rename; not every platform can fsync a directory, so best effort.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn parse_meta(path: &Path, st_meta: &Option<HashMap<String, String>>) -> Result<CheckpointMeta> {
    let bad = |reason: String| CheckpointError::BadMetadata {
        path: path.to_path_buf(),
        reason,
    };
    let json = st_meta
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| bad(format!("no `{METADATA_KEY}` entry in the header metadata")))?;
    Ok(serde_json::from_str(json).map_err(|e| bad(e.to_string()))?)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    Ok(std::fs::read(path).map_err(io(path))?)
}

fn deserialize<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    Ok(
        SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?,
    )
}

/// Reads only the metadata of a checkpoint.
pub fn read_meta(path: impl AsRef<Path>) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let (_, metadata) =
        SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    parse_meta(path, metadata.metadata())
}

/// Loads one tensor checked against the expected shape and dtype.
fn checked(
    st: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
    dtype: DType,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let view = st
        .tensor(name)
        .map_err(|_| CheckpointError::MissingTensor(name.to_string()))?;
    if st_dtype(dtype) != Some(view.dtype()) {
        return Err(CheckpointError::DTypeMismatch {
            name: name.to_string(),
            expected: format!("{dtype:?}"),
            got: format!("{:?}", view.dtype()),
        }
        .into());
    }
    if view.shape() != shape {
        return Err(CheckpointError::ShapeMismatch {
            name: name.to_string(),
            expected: shape.to_vec(),
            got: view.shape().to_vec(),
        }
        .into());
    }
    Ok(view.load(device)?)
}

/// Restores `varmap` (and the `targets`) from `path`. Every `VarMap` entry must be in
/// the file with its shape and dtype, as must every mask of `targets.params`; the
/// optimizer must be of the stored kind. Nothing is modified unless all checks pass.
/// Weight tensors in the file that `varmap` lacks are an error; `mask/` and `optim/`
/// entries are ignored when no matching target is given.
pub fn load(path: impl AsRef<Path>, varmap: &VarMap, targets: Targets<'_>) -> Result<Loaded> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let st = deserialize(path, &bytes)?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let meta = parse_meta(path, header.metadata())?;

    let vars = sorted_vars(varmap);
    let mut weights = Vec::with_capacity(vars.len());
    for (name, var) in &vars {
        let t = checked(&st, name, var.dims(), var.dtype(), var.device())?;
        weights.push((var.clone(), t));
    }
    for name in st.names() {
        let prefixed = [MASK_PREFIX, OPTIM_PREFIX, EXTRA_PREFIX]
            .iter()
            .any(|p| name.starts_with(p));
        if !prefixed && !vars.iter().any(|(n, _)| n == name) {
            return Err(CheckpointError::UnexpectedTensor(name.to_string()).into());
        }
    }

    let mut masks = Vec::new();
    if let Some(params) = targets.params.as_deref() {
        for p in params.iter() {
            let key = format!("{MASK_PREFIX}{}", p.name);
            let t = checked(
                &st,
                &key,
                p.mask.shape(),
                DType::U8,
                &candle_core::Device::Cpu,
            )?;
            let bits = t.flatten_all()?.to_vec1::<u8>()?;
            masks.push((p.name.clone(), Mask::from_bits(p.mask.shape(), bits)?));
        }
        for name in st.names() {
            if let Some(n) = name.strip_prefix(MASK_PREFIX)
                && !params.contains(n)
            {
                return Err(CheckpointError::UnexpectedTensor(name.to_string()).into());
            }
        }
    }

    let mut extra = BTreeMap::new();
    for (name, view) in st.tensors() {
        if let Some(n) = name.strip_prefix(EXTRA_PREFIX) {
            extra.insert(n.to_string(), view.load(&candle_core::Device::Cpu)?);
        }
    }

    if let Some(opt) = targets.optimizer {
        let om = meta
            .optimizer
            .as_ref()
            .ok_or_else(|| CheckpointError::BadMetadata {
                path: path.to_path_buf(),
                reason: "the file holds no optimizer state".into(),
            })?;
        if om.kind != opt.kind() {
            return Err(CheckpointError::BadMetadata {
                path: path.to_path_buf(),
                reason: format!(
                    "optimizer kind `{}` stored, `{}` given",
                    om.kind,
                    opt.kind()
                ),
            }
            .into());
        }
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if let Some(k) = name.strip_prefix(OPTIM_PREFIX) {
                tensors.insert(k.to_string(), view.load(&candle_core::Device::Cpu)?);
            }
        }
        // Validates everything and is all-or-nothing.
        opt.import_state(&OptimizerState {
            step: om.step,
            learning_rate: om.learning_rate,
            tensors,
        })?;
    }

    for (var, t) in weights {
        var.set(&t)?;
    }
    if let Some(params) = targets.params {
        for (name, mask) in masks {
            params.set_mask(&name, mask)?;
        }
    }
    Ok(Loaded { meta, extra })
}

#[cfg(test)]
mod tests;
