//! One run: build, randomly prune at initialisation, train with a fixed mask,
//! select on validation, and measure.
//!
//! This is the whole method of the paper: the mask is drawn once, before training,
//! from the layer-wise densities of an allocation, and never changes; after every
//! optimizer step sparse-core zeroes the pruned weights again.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use rand_chacha::ChaCha8Rng;
use sparse_core::init::{self, FanMode, Init, Nonlinearity};
use sparse_core::lr::LrSchedule;
use sparse_core::optim::trainable_vars;
use sparse_core::{
    InferenceFlops, LayerSpec, Mask, Optimizer, ParamReport, SelectionPolicy, Sgd, SgdConfig,
    SparseParams, saliency,
};
use sparse_repro::batch::BatchIndices;
use sparse_repro::metrics;
use sparse_repro::models::Model;
use sparse_repro::progress::{Progress, ProgressMode};
use sparse_repro::rng::{derive_rng, streams};
use sparse_repro::train::{BestTracker, Evaluation, Goal, cross_entropy, evaluate_classifier};

use crate::config::{AllocationKind, Sparsity, TrainConfig};
use crate::data::ImageData;
use crate::error::{Error, Result};

/// Batch size of evaluation passes (no gradients, so larger is cheaper).
const EVAL_BATCH: usize = 512;

/// A model with its parameters and (for sparse runs) its masks.
pub struct Network {
    /// Every tensor of the model, BatchNorm running statistics included.
    pub varmap: VarMap,
    /// The model.
    pub model: Model,
    /// The masked weights (empty for a dense run).
    pub params: SparseParams,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("model", &self.model)
            .field("masked", &self.params.len())
            .finish()
    }
}

impl Network {
    /// Builds the model of `config` with seeded initialisation and, for sparse runs,
    /// its random mask.
    pub fn new(config: &TrainConfig, data: &ImageData) -> Result<Self> {
        let (varmap, model) =
            build_model(config, data, &mut derive_rng(config.seed, streams::INIT))?;
        let params = match config.sparsity.allocation_config()? {
            None => SparseParams::new(),
            Some(alloc) => {
                let policy = selection_policy(&model)?;
                let scores = match config.sparsity {
                    Sparsity::Random {
                        allocation: kind @ (AllocationKind::Snip | AllocationKind::Grasp),
                        ..
                    } => Some(saliency_scores(config, data, kind)?),
                    _ => None,
                };
                alloc.init_sparse_params(
                    &varmap,
                    &policy,
                    scores.as_ref(),
                    &mut derive_rng(config.seed, streams::MASK),
                )?
            }
        };
        Ok(Self {
            varmap,
            model,
            params,
        })
    }

    /// Logits in inference mode (BatchNorm running statistics).
    pub fn logits(&self, inputs: &Tensor) -> candle_core::Result<Tensor> {
        self.model.forward_t(inputs, false)
    }

    /// Loss and accuracy over test-set `indices`.
    pub fn evaluate_test(&self, data: &ImageData, indices: &[usize]) -> Result<Evaluation> {
        let batches = indices
            .chunks(EVAL_BATCH)
            .map(|chunk| data.test_batch(chunk, &Device::Cpu).map_err(Into::into));
        Ok(evaluate_classifier(|x| self.logits(x), batches)?)
    }

    /// Loss and accuracy over training-set `indices` (the validation split).
    pub fn evaluate_train_set(&self, data: &ImageData, indices: &[usize]) -> Result<Evaluation> {
        let batches = indices
            .chunks(EVAL_BATCH)
            .map(|chunk| data.train_batch(chunk, &Device::Cpu).map_err(Into::into));
        Ok(evaluate_classifier(|x| self.logits(x), batches)?)
    }

    /// All test logits and labels, for calibration and OOD metrics.
    pub fn test_logits(&self, data: &ImageData, indices: &[usize]) -> Result<(Tensor, Tensor)> {
        let batches = indices
            .chunks(EVAL_BATCH)
            .map(|chunk| data.test_batch(chunk, &Device::Cpu).map_err(Into::into));
        Ok(sparse_repro::train::collect_logits(
            |x| self.logits(x),
            batches,
        )?)
    }

    /// Copies of every tensor, to restore the best epoch later.
    fn snapshot(&self) -> Result<BTreeMap<String, Tensor>> {
        let data = self.varmap.data().lock().map_err(|_| Error::Poisoned)?;
        data.iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
            .collect()
    }

    fn restore(&self, snapshot: &BTreeMap<String, Tensor>) -> Result<()> {
        let data = self.varmap.data().lock().map_err(|_| Error::Poisoned)?;
        for (name, var) in data.iter() {
            if let Some(t) = snapshot.get(name) {
                var.set(t)?;
            }
        }
        Ok(())
    }
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunOutcome {
    /// Epoch (1-based) with the best validation accuracy.
    pub best_epoch: usize,
    /// Validation accuracy at that epoch.
    pub best_validation_accuracy: f64,
    /// Test accuracy at that epoch (the reported number, as the official code).
    pub test_accuracy: f64,
    /// Test accuracy after the last epoch.
    pub final_test_accuracy: f64,
    /// Expected calibration error of the selected model on the test set.
    pub test_ece: f64,
    /// Non-zero trainable parameters (BatchNorm running statistics excluded).
    pub nonzero_params: usize,
    /// All trainable parameters of the dense model.
    pub total_params: usize,
    /// Active share of the prunable (masked) weights.
    pub masked_density: f64,
    /// Inference FLOPs of one sample with the sparse weights.
    pub inference_flops: f64,
    /// Inference FLOPs of one sample of the dense model.
    pub dense_inference_flops: f64,
    /// Whether every mask at the end equals the mask drawn at initialisation and
    /// no pruned weight is non-zero.
    pub masks_unchanged: bool,
    /// Training wall time in seconds.
    pub train_seconds: f64,
}

/// Options of a run that are not hyperparameters.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How progress is shown.
    pub progress: ProgressMode,
    /// Label of the progress line.
    pub label: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            progress: ProgressMode::Auto,
            label: "train".into(),
        }
    }
}

/// Trains `config` on `data` and returns the measurements and the network restored
/// to its best-validation epoch.
pub fn train(
    config: &TrainConfig,
    data: &ImageData,
    options: &RunOptions,
) -> Result<(RunOutcome, Network)> {
    let stopwatch = sparse_repro::train::Stopwatch::start();
    let net = Network::new(config, data)?;
    let initial_masks: Vec<Mask> = net.params.iter().map(|p| p.mask.clone()).collect();

    let split = sparse_repro::batch::train_validation_split(
        data.train_pool().len(),
        config.validation_fraction,
        &mut derive_rng(config.seed, streams::SPLIT),
    )?;
    let train_idx: Vec<usize> = split.train.iter().map(|&i| data.train_pool()[i]).collect();
    let val_idx: Vec<usize> = split
        .validation
        .iter()
        .map(|&i| data.train_pool()[i])
        .collect();

    let sgd = SgdConfig::builder(config.learning_rate)
        .momentum(config.momentum)
        .nesterov(config.momentum > 0.0)
        .weight_decay(config.weight_decay)
        .build()?;
    let mut optimizer = Sgd::from_params(trainable_vars(&net.varmap), sgd)?;
    let schedule = config.lr_schedule()?;

    let mut shuffle_rng = derive_rng(config.seed, streams::SHUFFLE);
    let mut best = BestTracker::new(Goal::Maximize);
    let mut best_state = net.snapshot()?;
    let mut final_test = 0.0;
    let mut progress = Progress::new(
        options.label.clone(),
        config.epochs as u64,
        options.progress,
    )
    .with_unit("epoch");
    for epoch in 0..config.epochs {
        schedule.apply(&mut optimizer, epoch as f64);
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        for positions in
            BatchIndices::shuffled(train_idx.len(), config.batch_size, false, &mut shuffle_rng)?
        {
            let indices: Vec<usize> = positions.iter().map(|&p| train_idx[p]).collect();
            let (x, y) = data.train_batch(&indices, &Device::Cpu)?;
            let logits = net.model.forward_t(&x, true)?;
            let loss = cross_entropy(&logits, &y, 0.0)?;
            let grads = loss.backward()?;
            optimizer.step(&grads)?;
            net.params.apply_masks()?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            batches += 1;
        }
        let val = net.evaluate_train_set(data, &val_idx)?;
        let test = net.evaluate_test(data, data.test_pool())?;
        final_test = test.accuracy;
        if best.update(epoch + 1, val.accuracy, test.accuracy) {
            best_state = net.snapshot()?;
        }
        progress.update(&[
            ("loss", loss_sum / batches.max(1) as f64),
            ("val", val.accuracy),
            ("test", test.accuracy),
        ]);
    }
    progress.finish("done");
    let train_seconds = stopwatch.elapsed_seconds();

    let masks_unchanged = masks_intact(&net.params, &initial_masks)?;
    net.restore(&best_state)?;
    let best = best.best().ok_or(Error::NoEpoch)?;
    let (logits, labels) = net.test_logits(data, data.test_pool())?;
    let test_ece = metrics::expected_calibration_error_from_logits(&logits, &labels)?;

    let report = ParamReport::new(&net.varmap, &net.params);
    let flops = InferenceFlops::new(&net.model.layer_flops(data.input_shape()), &net.params);
    let outcome = RunOutcome {
        best_epoch: best.epoch,
        best_validation_accuracy: best.validation,
        test_accuracy: best.test,
        final_test_accuracy: final_test,
        test_ece,
        nonzero_params: nonzero_params(&net.varmap)?,
        total_params: report.total_params(),
        masked_density: net.params.total_density(),
        inference_flops: flops.sparse_total(),
        dense_inference_flops: flops.dense_total(),
        masks_unchanged,
        train_seconds,
    };
    Ok((outcome, net))
}

/// Builds the model and initialises every weight from `rng`: Kaiming-normal
/// (fan-in, ReLU gain) for convolutions and linear weights, as the official
/// `cifar_resnet`, PyTorch's default uniform for biases; BatchNorm keeps 1 and 0.
pub fn build_model(
    config: &TrainConfig,
    data: &ImageData,
    rng: &mut ChaCha8Rng,
) -> Result<(VarMap, Model)> {
    build_model_with(config, data, rng, |shape| {
        if shape.len() >= 2 {
            Some(Init::KaimingNormal {
                mode: FanMode::FanIn,
                nonlinearity: Nonlinearity::Relu,
            })
        } else {
            None
        }
    })
}

fn build_model_with(
    config: &TrainConfig,
    data: &ImageData,
    rng: &mut ChaCha8Rng,
    weight_init: impl Fn(&[usize]) -> Option<Init>,
) -> Result<(VarMap, Model)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Model::new(
        &config.architecture,
        data.input_shape(),
        data.num_classes(),
        vb,
    )?;
    let vars = trainable_vars(&varmap);
    // Fan-in of each bias, from the weight it belongs to.
    let fan_in: BTreeMap<String, usize> = vars
        .iter()
        .filter(|(_, v)| v.rank() >= 2)
        .filter_map(|(n, v)| {
            let prefix = n.strip_suffix(".weight")?;
            Some((format!("{prefix}.bias"), v.dims()[1..].iter().product()))
        })
        .collect();
    init::init_vars(
        &vars,
        |name, shape| {
            if let Some(&fan_in) = fan_in.get(name) {
                return Some(Init::TorchDefaultBias { fan_in });
            }
            if sparse_core::selection::is_norm(name) {
                return None;
            }
            weight_init(shape)
        },
        rng,
    )?;
    Ok((varmap, model))
}

/// Masks every prunable weight: all convolution and linear weights, first layer
/// and classifier included (the official rule), in forward order.
pub fn selection_policy(model: &Model) -> Result<SelectionPolicy> {
    Ok(SelectionPolicy::builder()
        .layer_order(model.weight_names_in_order())
        .build()?)
}

/// SNIP or GraSP scores of the official recipe: a copy of the network re-initialised
/// with Xavier-normal weights, one training batch.
fn saliency_scores(
    config: &TrainConfig,
    data: &ImageData,
    kind: AllocationKind,
) -> Result<BTreeMap<String, Vec<f32>>> {
    let mut rng = derive_rng(config.seed, "saliency");
    let (varmap, model) = build_model_with(config, data, &mut rng, |shape| {
        (shape.len() >= 2).then_some(Init::XavierNormal { gain: 1.0 })
    })?;
    let policy = selection_policy(&model)?;
    let vars = policy.select_in_model_order(&varmap)?;
    let batch: Vec<usize> = data
        .train_pool()
        .iter()
        .copied()
        .take(config.batch_size.max(64))
        .collect();
    let (x, y) = data.train_batch(&batch, &Device::Cpu)?;
    let gradients = || -> sparse_core::Result<candle_core::backprop::GradStore> {
        let logits = model.forward_t(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        Ok(loss.backward()?)
    };
    let scores = match kind {
        AllocationKind::Snip => saliency::snip_scores_for(&vars, &gradients()?)?,
        _ => saliency::grasp_scores(&vars, 1e-3, gradients)?,
    };
    Ok(vars.into_iter().map(|(n, _)| n).zip(scores).collect())
}

/// Non-zero entries of every trainable tensor (running statistics excluded).
pub fn nonzero_params(varmap: &VarMap) -> Result<usize> {
    let mut total = 0;
    for (_, var) in trainable_vars(varmap) {
        total += Mask::from_nonzero(var.as_tensor())?.nnz();
    }
    Ok(total)
}

fn masks_intact(params: &SparseParams, initial: &[Mask]) -> Result<bool> {
    for (param, first) in params.iter().zip(initial) {
        if &param.mask != first {
            return Ok(false);
        }
        let nonzero = Mask::from_nonzero(param.var.as_tensor())?;
        let outside = nonzero
            .as_bits()
            .iter()
            .zip(param.mask.as_bits())
            .any(|(&nz, &m)| nz == 1 && m == 0);
        if outside {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Layer specs (name, shape) of the masked weights, in forward order.
pub fn masked_layers(net: &Network) -> Result<Vec<LayerSpec>> {
    let policy = selection_policy(&net.model)?;
    Ok(policy
        .select_in_model_order(&net.varmap)?
        .into_iter()
        .map(|(n, v)| LayerSpec::new(n, v.dims()))
        .collect())
}
