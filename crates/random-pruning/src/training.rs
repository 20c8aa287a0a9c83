//! One run: build, randomly prune at initialisation, train with a fixed mask,
//! select on validation, and measure.
//!
//! This is the whole method of the paper: the mask is drawn once, before training,
//! from the layer-wise densities of an allocation, and never changes; after every
//! optimizer step sparse-core zeroes the pruned weights again. The epochs run in
//! sparse-repro's [`EpochLoop`]; the best-validation model is kept as a
//! [`ModelState`] (the mask is fixed, so the weights are all there is to keep).

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use candle_nn::{ModuleT, VarMap};
use rand_chacha::ChaCha8Rng;
use sparse_core::init::Init;
use sparse_core::lr::{LrSchedule, MultiStep};
use sparse_core::optim::trainable_vars;
use sparse_core::{
    InferenceFlops, LayerSpec, Mask, ModelState, Optimizer, ParamReport, SelectionPolicy, Sgd,
    SgdConfig, SparseParams, saliency,
};
use sparse_repro::batch::BatchIndices;
use sparse_repro::epochs::{EpochLoop, EpochTask, Scores};
use sparse_repro::metrics;
use sparse_repro::models::{InputShape, Model, build_initialised, kaiming_normal_weights};
use sparse_repro::progress::ProgressMode;
use sparse_repro::rng::{derive_rng, streams};
use sparse_repro::train::{Evaluation, Goal, cross_entropy, evaluate_classifier};

use crate::config::{AllocationKind, Sparsity, TrainConfig};
use crate::data::ImageData;
use crate::error::{Error, Result};

/// Batch size of evaluation passes (no gradients, so larger is cheaper).
pub const EVAL_BATCH: usize = 512;

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
    /// Builds the model of `config` with initialisation and, for sparse runs, random
    /// mask drawn from `seed`.
    pub fn new(config: &TrainConfig, data: &ImageData, seed: u64) -> Result<Self> {
        Self::build(
            config,
            data.input_shape(),
            data.num_classes(),
            Some(data),
            seed,
        )
    }

    /// [`Network::new`] for inputs of `input` and `num_classes` classes, without a
    /// data set: the same model, initialisation and random mask, for benchmarks on
    /// synthetic inputs (`sparse-benches train`). SNIP and GraSP ratios score a
    /// training batch, so they need [`Network::new`].
    pub fn for_shape(
        config: &TrainConfig,
        input: InputShape,
        num_classes: usize,
        seed: u64,
    ) -> Result<Self> {
        Self::build(config, input, num_classes, None, seed)
    }

    fn build(
        config: &TrainConfig,
        input: InputShape,
        num_classes: usize,
        data: Option<&ImageData>,
        seed: u64,
    ) -> Result<Self> {
        let (varmap, mut model) = build_model_for(
            config,
            input,
            num_classes,
            &mut derive_rng(seed, streams::INIT),
            kaiming_normal_weights,
        )?;
        let params = match config.sparsity().allocation_config()? {
            None => SparseParams::new(),
            Some(alloc) => {
                let policy = selection_policy(&model)?;
                let scores = match config.sparsity() {
                    Sparsity::Random {
                        allocation: kind @ (AllocationKind::Snip | AllocationKind::Grasp),
                        ..
                    } => {
                        let data = data.ok_or_else(|| {
                            sparse_repro::HarnessError::invalid(
                                "allocation",
                                kind.label(),
                                "scores a training batch: build with Network::new",
                            )
                        })?;
                        Some(saliency_scores(config, data, seed, kind)?)
                    }
                    _ => None,
                };
                alloc.init_sparse_params(
                    &varmap,
                    &policy,
                    scores.as_ref(),
                    &mut derive_rng(seed, streams::MASK),
                )?
            }
        };
        // convolutions sparse enough compute over their active weights only
        model.set_sparse_masks(&params)?;
        Ok(Self {
            varmap,
            model,
            params,
        })
    }

    /// The model of `config` without a mask, initialised from `seed`: what a
    /// checkpoint's weights are loaded into.
    pub fn unmasked(config: &TrainConfig, data: &ImageData, seed: u64) -> Result<Self> {
        let (varmap, model) = build_model(config, data, &mut derive_rng(seed, streams::INIT))?;
        Ok(Self {
            varmap,
            model,
            params: SparseParams::new(),
        })
    }

    /// One training step of the run's loop: forward in training mode,
    /// cross-entropy, backward, `optimizer` step, masks re-applied. Returns the
    /// loss (still on the graph; `to_scalar` it to read it).
    pub fn train_step(
        &self,
        optimizer: &mut Sgd,
        inputs: &Tensor,
        targets: &Tensor,
    ) -> Result<Tensor> {
        let logits = self.model.forward_t(inputs, true)?;
        let loss = cross_entropy(&logits, targets, 0.0)?;
        let grads = loss.backward()?;
        optimizer.step(&grads)?;
        self.params.apply_masks()?;
        Ok(loss)
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

    /// Expected calibration error on the test set.
    pub fn test_ece(&self, data: &ImageData) -> Result<f64> {
        let (logits, labels) = self.test_logits(data, data.test_pool())?;
        Ok(metrics::expected_calibration_error_from_logits(
            &logits, &labels,
        )?)
    }

    /// AUROC of the maximum softmax probability separating `data`'s test images (in
    /// distribution) from `ood`'s (normalised as `data`'s).
    pub fn ood_auroc(&self, data: &ImageData, ood: &ImageData) -> Result<f64> {
        let (in_logits, _) = self.test_logits(data, data.test_pool())?;
        let mut out = Vec::new();
        for chunk in ood.test_pool().chunks(EVAL_BATCH) {
            let x = data.foreign_batch(ood, chunk, &Device::Cpu)?;
            out.push(self.logits(&x)?);
        }
        let out_logits = Tensor::cat(&out, 0)?;
        Ok(metrics::msp_auroc(&in_logits, &out_logits)?)
    }

    /// The masks by parameter name (empty for a dense run).
    pub fn masks(&self) -> BTreeMap<String, Mask> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.mask.clone()))
            .collect()
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// AUROC of max-softmax, test set against the out-of-distribution set, if any.
    pub ood_auroc: Option<f64>,
    /// Non-zero trainable parameters (BatchNorm running statistics excluded).
    pub nonzero_params: usize,
    /// All trainable parameters of the dense model (masked weights counted in full).
    pub total_params: usize,
    /// Active share of the prunable (masked) weights.
    pub masked_density: f64,
    /// The weights the allocation granted, Σ d_l·N_l over the masked layers
    /// (`None` for dense); claim 3 compares the checkpoint's masks with it.
    pub budget: Option<f64>,
    /// Inference FLOPs of one sample with the sparse weights.
    pub inference_flops: f64,
    /// Inference FLOPs of one sample of the dense model.
    pub dense_inference_flops: f64,
    /// Whether every mask at the end equals the mask drawn at initialisation and
    /// no pruned weight is non-zero.
    pub masks_unchanged: bool,
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

/// The epochs of one run, as [`EpochLoop`] drives them.
struct Trainer<'a> {
    net: &'a Network,
    data: &'a ImageData,
    config: &'a TrainConfig,
    optimizer: Sgd,
    schedule: MultiStep,
    shuffle_rng: ChaCha8Rng,
    train_idx: Vec<usize>,
    val_idx: Vec<usize>,
    best_state: ModelState,
    final_test: f64,
}

impl EpochTask for Trainer<'_> {
    type Error = Error;

    fn train_epoch(&mut self, epoch: usize) -> Result<f64> {
        self.schedule.apply(&mut self.optimizer, epoch as f64);
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        for positions in BatchIndices::shuffled(
            self.train_idx.len(),
            self.config.batch_size(),
            false,
            &mut self.shuffle_rng,
        )? {
            let indices: Vec<usize> = positions.iter().map(|&p| self.train_idx[p]).collect();
            let (x, y) = self.data.train_batch(&indices, &Device::Cpu)?;
            let loss = self.net.train_step(&mut self.optimizer, &x, &y)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            batches += 1;
        }
        Ok(loss_sum / batches.max(1) as f64)
    }

    fn evaluate(&mut self, _epoch: usize) -> Result<Option<Scores>> {
        let val = self.net.evaluate_train_set(self.data, &self.val_idx)?;
        let test = self.net.evaluate_test(self.data, self.data.test_pool())?;
        self.final_test = test.accuracy;
        Ok(Some(Scores::new(val.accuracy, test.accuracy)))
    }

    fn on_new_best(&mut self, _epoch: usize) -> Result<()> {
        self.best_state = ModelState::capture(&self.net.varmap)?;
        Ok(())
    }
}

/// Trains `config` with `seed` on `data` (and scores `ood` against it, if given);
/// returns the measurements and the network restored to its best-validation epoch.
pub fn train(
    config: &TrainConfig,
    data: &ImageData,
    ood: Option<&ImageData>,
    seed: u64,
    options: &RunOptions,
) -> Result<(RunOutcome, Network)> {
    let net = Network::new(config, data, seed)?;
    let initial_masks: Vec<Mask> = net.params.iter().map(|p| p.mask.clone()).collect();

    let split = sparse_repro::batch::train_validation_split(
        data.train_pool().len(),
        config.validation_fraction(),
        &mut derive_rng(seed, streams::SPLIT),
    )?;
    let train_idx: Vec<usize> = split.train.iter().map(|&i| data.train_pool()[i]).collect();
    let val_idx: Vec<usize> = split
        .validation
        .iter()
        .map(|&i| data.train_pool()[i])
        .collect();

    let mut trainer = Trainer {
        net: &net,
        data,
        config,
        optimizer: optimizer(config, &net)?,
        schedule: config.lr_schedule()?,
        shuffle_rng: derive_rng(seed, streams::SHUFFLE),
        train_idx,
        val_idx,
        // The initial model is the fallback "best" should no epoch improve on
        // nothing (as in the official code, which saves before training).
        best_state: ModelState::capture(&net.varmap)?,
        final_test: 0.0,
    };
    let outcome = EpochLoop::new(config.epochs(), Goal::Maximize)
        .progress(options.label.clone(), options.progress)
        .run(&mut trainer)?;
    let final_test = trainer.final_test;
    let best_state = trainer.best_state;

    let masks_unchanged = masks_intact(&net.params, &initial_masks)?;
    best_state.restore(&net.varmap)?;
    let best = outcome.best;
    let test_ece = net.test_ece(data)?;
    let ood_auroc = match ood {
        Some(ood) => Some(net.ood_auroc(data, ood)?),
        None => None,
    };

    let report = ParamReport::new(&net.varmap, &net.params);
    let flops = InferenceFlops::new(&net.model.layer_flops(data.input_shape()), &net.params);
    let outcome = RunOutcome {
        best_epoch: best.epoch,
        best_validation_accuracy: best.validation,
        test_accuracy: best.test,
        final_test_accuracy: final_test,
        test_ece,
        ood_auroc,
        nonzero_params: nonzero_params(&net.varmap)?,
        total_params: report.dense_params(),
        masked_density: net.params.total_density(),
        budget: budget(config, &net)?,
        inference_flops: flops.sparse_total(),
        dense_inference_flops: flops.dense_total(),
        masks_unchanged,
    };
    Ok((outcome, net))
}

/// The run's optimizer over every trainable variable of `net`: SGD at
/// `config.lr()` (the schedule sets it per epoch) with Nesterov momentum and
/// coupled weight decay.
pub fn optimizer(config: &TrainConfig, net: &Network) -> Result<Sgd> {
    let sgd = SgdConfig::builder(config.lr())
        .momentum(config.momentum())
        .nesterov(config.momentum() > 0.0)
        .weight_decay(config.weight_decay())
        .build()?;
    Ok(Sgd::from_params(trainable_vars(&net.varmap), sgd)?)
}

/// Σ d_l·N_l of the run's allocation, recomputed from the layer shapes (`None` for dense).
pub fn budget(config: &TrainConfig, net: &Network) -> Result<Option<f64>> {
    let Some(alloc) = config.sparsity().allocation_config()? else {
        return Ok(None);
    };
    let layers: Vec<LayerSpec> = masked_layers(net)?;
    let total: usize = layers.iter().map(LayerSpec::numel).sum();
    if alloc.allocation().needs_scores() {
        // Score-based ratios keep exactly the global top floor(d·N) weights.
        return Ok(Some((alloc.density() * total as f64).floor()));
    }
    let densities = alloc.layer_densities(&layers, None)?;
    Ok(Some(
        layers
            .iter()
            .zip(&densities)
            .map(|(l, d)| d * l.numel() as f64)
            .sum(),
    ))
}

/// Builds the model and initialises every weight from `rng`: Kaiming-normal
/// (fan-in, ReLU gain) for convolutions and linear weights, as the official
/// `cifar_resnet`, PyTorch's default uniform for biases; BatchNorm keeps 1 and 0.
pub fn build_model(
    config: &TrainConfig,
    data: &ImageData,
    rng: &mut ChaCha8Rng,
) -> Result<(VarMap, Model)> {
    build_model_with(config, data, rng, kaiming_normal_weights)
}

fn build_model_with(
    config: &TrainConfig,
    data: &ImageData,
    rng: &mut ChaCha8Rng,
    weight_init: impl Fn(&[usize]) -> Option<Init>,
) -> Result<(VarMap, Model)> {
    build_model_for(
        config,
        data.input_shape(),
        data.num_classes(),
        rng,
        weight_init,
    )
}

fn build_model_for(
    config: &TrainConfig,
    input: InputShape,
    num_classes: usize,
    rng: &mut ChaCha8Rng,
    weight_init: impl Fn(&[usize]) -> Option<Init>,
) -> Result<(VarMap, Model)> {
    Ok(build_initialised(
        config.architecture(),
        input,
        num_classes,
        rng,
        weight_init,
    )?)
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
    seed: u64,
    kind: AllocationKind,
) -> Result<BTreeMap<String, Vec<f32>>> {
    let mut rng = derive_rng(seed, "saliency");
    let (varmap, model) = build_model_with(config, data, &mut rng, |shape| {
        (shape.len() >= 2).then_some(Init::XavierNormal { gain: 1.0 })
    })?;
    let policy = selection_policy(&model)?;
    let vars = policy.select_in_model_order(&varmap)?;
    let batch: Vec<usize> = data
        .train_pool()
        .iter()
        .copied()
        .take(config.batch_size().max(64))
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
        let nonzero = Mask::from_nonzero(&param.dense_weight()?)?;
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
