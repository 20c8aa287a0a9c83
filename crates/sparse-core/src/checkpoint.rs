//! Training checkpoints: one safetensors file holding everything needed to resume a
//! run bit-identically.
//!
//! Layout of the file:
//! - every `VarMap` entry under its own name (BatchNorm running statistics included),
//!   and every packed weight of the registry ([`SparseParams::insert_packed`]) in its
//!   dense shape under its name, so a file does not depend on how a weight was stored;
//! - masks of any [`MaskSet`] (a [`SparseParams`] registry, score-subnetwork masks)
//!   as `U8` tensors under `mask/<name>`;
//! - optimizer buffers under `optim/<param>/<buffer>`;
//! - optional caller tensors (e.g. an EMA copy) under `extra/<name>`;
//! - JSON [`CheckpointMeta`] in the header metadata under the key `sparseland`
//!   (the writing crate and its version, step, seed, config, data set, git commit,
//!   metrics, densities, optimizer step/lr, the ChaCha8 RNG position, and the sha256
//!   of every tensor).
//!
//! Files are written atomically (temporary sibling, fsync, rename). Loading first
//! verifies every tensor against its recorded sha256 ([`verify`]; files without hashes
//! are refused), then validates names, shapes and dtypes of everything before it
//! changes anything, and reports problems as [`CheckpointError`]s. A crate reads its
//! own files through [`read_meta_expecting`], which refuses another crate's file by
//! name.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CheckpointError, Result, SparseError};
use crate::mask::Mask;
use crate::mask_set::MaskSet;
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
///
/// Fields added after the first format carry `#[serde(default)]`, so older headers
/// still parse (their tensors are refused later for lack of hashes, see
/// [`verify`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The crate that wrote the file (e.g. `dsn-tsc`); [`save`] refuses an empty one.
    pub crate_name: String,
    /// Its version.
    pub crate_version: String,
    /// The run's configuration, as the caller serialised it.
    pub config: serde_json::Value,
    /// Training step (or epoch) the checkpoint was taken at.
    pub step: u64,
    /// The run's seed.
    pub seed: u64,
    /// The data set the run trained on, as the writing crate names it.
    #[serde(default)]
    pub dataset: Option<String>,
    /// The git commit of the code that wrote the file.
    #[serde(default)]
    pub git_commit: Option<String>,
    /// Recorded metrics (e.g. `test_accuracy`); values read back bit-exactly.
    /// [`save`] refuses non-finite values, which JSON cannot hold.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Per-mask densities at save time (filled by [`save`] from [`Sources::masks`]).
    #[serde(default)]
    pub densities: BTreeMap<String, f64>,
    /// The RNG position, for bit-identical resumption.
    #[serde(default)]
    pub rng: Option<RngState>,
    /// Optimizer facts (filled by [`save`]).
    #[serde(default)]
    pub optimizer: Option<OptimizerMeta>,
    /// Free-form key/values.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
    /// Lower-case hex sha256 of every tensor's raw little-endian bytes, keyed by the
    /// tensor's name in the file (filled by [`save`], checked by [`load`] and
    /// [`verify`]; whatever the caller puts here is replaced).
    #[serde(default)]
    pub tensor_sha256: BTreeMap<String, String>,
}

impl CheckpointMeta {
    /// Metadata of a checkpoint written by `crate_name` (pass
    /// `env!("CARGO_PKG_NAME")` and `env!("CARGO_PKG_VERSION")`), with no RNG,
    /// data set, commit, metrics, densities or extras.
    pub fn new(
        crate_name: &str,
        crate_version: &str,
        config: serde_json::Value,
        step: u64,
        seed: u64,
    ) -> Self {
        Self {
            crate_name: crate_name.to_string(),
            crate_version: crate_version.to_string(),
            config,
            step,
            seed,
            dataset: None,
            git_commit: None,
            metrics: BTreeMap::new(),
            densities: BTreeMap::new(),
            rng: None,
            optimizer: None,
            extra: BTreeMap::new(),
            tensor_sha256: BTreeMap::new(),
        }
    }

    /// Records the RNG position.
    pub fn with_rng(mut self, rng: &ChaCha8Rng) -> Self {
        self.rng = Some(RngState::capture(rng));
        self
    }

    /// Records the data set.
    pub fn with_dataset(mut self, dataset: impl Into<String>) -> Self {
        self.dataset = Some(dataset.into());
        self
    }

    /// Records the git commit of the writing code.
    pub fn with_git_commit(mut self, commit: impl Into<String>) -> Self {
        self.git_commit = Some(commit.into());
        self
    }

    /// Records one metric (replacing an earlier value of the same name).
    pub fn with_metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.insert(name.into(), value);
        self
    }

    /// Adds one free-form key/value.
    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// The recorded metric `name`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }
}

/// What a checkpoint holds besides the `VarMap` weights.
#[derive(Default, Clone, Copy)]
pub struct Sources<'a> {
    /// Masks to store under `mask/<name>`: a [`SparseParams`], the
    /// `BTreeMap<String, Mask>` of [`crate::ScoreSubnetwork::masks`], or any other
    /// [`MaskSet`]. Their densities go to [`CheckpointMeta::densities`].
    pub masks: Option<&'a dyn MaskSet>,
    /// Optimizer whose state goes under `optim/`.
    pub optimizer: Option<&'a dyn Optimizer>,
    /// Extra tensors stored under `extra/`.
    pub extra: Option<&'a BTreeMap<String, Tensor>>,
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masks: Option<Vec<&str>> = self
            .masks
            .map(|m| m.mask_entries().map(|(n, _)| n).collect());
        f.debug_struct("Sources")
            .field("masks", &masks)
            .field("optimizer", &self.optimizer.map(|o| o.kind()))
            .field("extra", &self.extra.map(|e| e.keys().collect::<Vec<_>>()))
            .finish()
    }
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

/// A tensor converted to its file bytes once, so the same bytes are hashed and written.
struct RawTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl RawTensor {
    fn new(name: &str, t: &Tensor) -> Result<Self> {
        let dtype = st_dtype(t.dtype()).ok_or_else(|| SparseError::InvalidInput {
            what: format!("checkpoint tensor `{name}`"),
            reason: format!("dtype {:?} cannot be stored", t.dtype()),
        })?;
        // candle's own safetensors view: row-major little-endian bytes, from any device.
        let data = safetensors::View::data(t).into_owned();
        Ok(Self {
            dtype,
            shape: t.dims().to_vec(),
            data,
        })
    }
}

impl safetensors::View for &RawTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
/// `meta.densities`, `meta.optimizer` and `meta.tensor_sha256` are filled here.
///
/// Refuses an empty `meta.crate_name` ([`CheckpointError::MissingCrateName`]), a
/// non-finite metric ([`CheckpointError::BadMetadata`]) and two tensors with the same
/// file name.
pub fn save(
    path: impl AsRef<Path>,
    varmap: &VarMap,
    sources: Sources<'_>,
    meta: &CheckpointMeta,
) -> Result<()> {
    let path = path.as_ref();
    if meta.crate_name.trim().is_empty() {
        return Err(CheckpointError::MissingCrateName {
            path: path.to_path_buf(),
        }
        .into());
    }
    if let Some((name, value)) = meta.metrics.iter().find(|(_, v)| !v.is_finite()) {
        return Err(CheckpointError::BadMetadata {
            path: path.to_path_buf(),
            reason: format!("metric `{name}` = {value} is not finite (JSON cannot hold it)"),
        }
        .into());
    }
    let mut meta = meta.clone();
    let mut tensors: BTreeMap<String, RawTensor> = BTreeMap::new();
    let mut add = |name: String, t: &Tensor| -> Result<()> {
        let raw = RawTensor::new(&name, t)?;
        if tensors.insert(name.clone(), raw).is_some() {
            return Err(SparseError::InvalidInput {
                what: format!("checkpoint tensor `{name}`"),
                reason: "two tensors would be stored under this name".into(),
            });
        }
        Ok(())
    };
    for (name, var) in sorted_vars(varmap) {
        add(name, var.as_tensor())?;
    }
    if let Some(masks) = sources.masks {
        for (name, weight) in masks.packed_weights() {
            add(name, &weight.to_dense()?)?;
        }
        meta.densities = masks.mask_densities();
        for (name, mask) in masks.mask_entries() {
            let m = mask.to_tensor(DType::U8, &candle_core::Device::Cpu)?;
            add(format!("{MASK_PREFIX}{name}"), &m)?;
        }
    }
    if let Some(opt) = sources.optimizer {
        let state = opt.export_state()?;
        meta.optimizer = Some(OptimizerMeta {
            kind: opt.kind().to_string(),
            step: state.step,
            learning_rate: state.learning_rate,
        });
        for (k, t) in &state.tensors {
            add(format!("{OPTIM_PREFIX}{k}"), t)?;
        }
    }
    if let Some(extra) = sources.extra {
        for (k, t) in extra {
            add(format!("{EXTRA_PREFIX}{k}"), t)?;
        }
    }
    meta.tensor_sha256 = tensors
        .iter()
        .map(|(n, t)| (n.clone(), sha256_hex(&t.data)))
        .collect();
    let json = serde_json::to_string(&meta).map_err(|e| CheckpointError::BadMetadata {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let header = HashMap::from([(METADATA_KEY.to_string(), json)]);
    let bytes = safetensors::serialize(tensors.iter(), Some(header)).map_err(|e| {
        CheckpointError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
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
        SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Malformed {
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
        SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    parse_meta(path, metadata.metadata())
}

/// Reads the metadata and refuses a checkpoint written by another crate than
/// `crate_name` ([`CheckpointError::WrongCrate`], naming both). Like [`read_meta`] it
/// does not hash the tensors; [`load`], [`load_masks`] and [`verify`] do.
pub fn read_meta_expecting(path: impl AsRef<Path>, crate_name: &str) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    let meta = read_meta(path)?;
    if meta.crate_name != crate_name {
        return Err(CheckpointError::WrongCrate {
            path: path.to_path_buf(),
            expected: crate_name.to_string(),
            found: meta.crate_name,
        }
        .into());
    }
    Ok(meta)
}

/// The parsed file and its metadata, every tensor checked against its recorded hash.
fn open_verified<'a>(path: &Path, bytes: &'a [u8]) -> Result<(SafeTensors<'a>, CheckpointMeta)> {
    let st = deserialize(path, bytes)?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| CheckpointError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let meta = parse_meta(path, header.metadata())?;
    check_hashes(path, &st, &meta)?;
    Ok((st, meta))
}

/// The integrity rule: every tensor in the file has a recorded hash equal to the
/// sha256 of its bytes, and every recorded hash names a tensor in the file. A file
/// that holds tensors but records no hash at all predates hashing and is refused
/// with [`CheckpointError::MissingChecksums`].
fn check_hashes(path: &Path, st: &SafeTensors<'_>, meta: &CheckpointMeta) -> Result<()> {
    let corrupt = |tensor: &str| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
    };
    let mut names = st.names();
    if meta.tensor_sha256.is_empty() && !names.is_empty() {
        return Err(CheckpointError::MissingChecksums {
            path: path.to_path_buf(),
        }
        .into());
    }
    // Name order, so the first bad tensor reported does not depend on hashing order.
    names.sort_unstable();
    for name in names {
        let view = st.tensor(name).map_err(|_| corrupt(name))?;
        match meta.tensor_sha256.get(name) {
            Some(h) if *h == sha256_hex(view.data()) => {}
            _ => return Err(corrupt(name).into()),
        }
    }
    if let Some(name) = meta.tensor_sha256.keys().find(|n| st.tensor(n).is_err()) {
        return Err(corrupt(name).into());
    }
    Ok(())
}

/// Checks the file's integrity (every tensor against the sha256 recorded at save
/// time, see [`CheckpointError::Corrupt`] and [`CheckpointError::MissingChecksums`])
/// without restoring anything, and returns its metadata.
pub fn verify(path: impl AsRef<Path>) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let (_, meta) = open_verified(path, &bytes)?;
    Ok(meta)
}

/// Every `mask/` tensor of a verified file, by name without the prefix: the masks of
/// any [`MaskSet`] that was saved (a registry, score-subnetwork masks, ...).
pub fn load_masks(path: impl AsRef<Path>) -> Result<BTreeMap<String, Mask>> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let (st, _) = open_verified(path, &bytes)?;
    let mut masks = BTreeMap::new();
    for (name, view) in st.tensors() {
        if let Some(n) = name.strip_prefix(MASK_PREFIX) {
            if view.dtype() != Dtype::U8 {
                return Err(CheckpointError::DTypeMismatch {
                    name,
                    expected: "U8".into(),
                    got: format!("{:?}", view.dtype()),
                }
                .into());
            }
            masks.insert(
                n.to_string(),
                Mask::from_bits(view.shape(), view.data().to_vec())?,
            );
        }
    }
    Ok(masks)
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

/// Restores `varmap` (and the `targets`) from `path`. The file is verified first
/// (see [`verify`]): a tensor whose bytes changed since [`save`] is a
/// [`CheckpointError::Corrupt`] naming it. Every `VarMap` entry must be in
/// the file with its shape and dtype, as must every mask of `targets.params`; the
/// optimizer must be of the stored kind. Nothing is modified unless all checks pass.
/// Weight tensors in the file that `varmap` lacks are an error, except the dense form of
/// a packed weight of `targets.params` (restored with its mask); `mask/` and `optim/`
/// entries are ignored when no matching target is given.
pub fn load(path: impl AsRef<Path>, varmap: &VarMap, targets: Targets<'_>) -> Result<Loaded> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let (st, meta) = open_verified(path, &bytes)?;

    let vars = sorted_vars(varmap);
    let mut weights = Vec::with_capacity(vars.len());
    for (name, var) in &vars {
        let t = checked(&st, name, var.dims(), var.dtype(), var.device())?;
        weights.push((var.clone(), t));
    }
    let mut packed = BTreeMap::new();
    if let Some(params) = targets.params.as_deref() {
        for (name, weight) in params.packed_weights() {
            let values = weight.values();
            let t = checked(&st, &name, &weight.shape(), weight.dtype(), values.device())?;
            packed.insert(name, t);
        }
    }
    for name in st.names() {
        let prefixed = [MASK_PREFIX, OPTIM_PREFIX, EXTRA_PREFIX]
            .iter()
            .any(|p| name.starts_with(p));
        if !prefixed && !vars.iter().any(|(n, _)| n == name) && !packed.contains_key(name) {
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
            match packed.get(&name) {
                Some(dense) => params.load_packed(&name, dense, mask)?,
                None => params.set_mask(&name, mask)?,
            }
        }
    }
    Ok(Loaded { meta, extra })
}

#[cfg(test)]
mod tests;
