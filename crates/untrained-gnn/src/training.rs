//! One run: the network's parameters, the full-batch training loop and evaluation.
//!
//! Score methods (UGTs, edge-popup) keep the weights frozen and train one score per
//! weight through sparse-core's [`ScoreSubnetwork`] (threshold, straight-through
//! estimator, ramp); dense training trains the weights through the same forward
//! pass with every mask one. Each epoch is one AdamW step on the training nodes at
//! the scheduled sparsity, then an evaluation at the *target* sparsity; the state
//! with the best validation accuracy is kept and reported on test, as in the
//! official `train.py`.
//!
//! The epochs run on sparse-repro's [`EpochLoop`] (the per-epoch work is
//! [`RunState::train_step`] and [`RunState::evaluate_step`]); the best epoch's state is a
//! [`ModelState`] of every variable (weights and scores), restored at the end, so
//! [`train`] returns the best-validation model: the one the harness checkpoints.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sparse_core::init::init_var;
use sparse_core::lr::{LrSchedule, MultiStep};
use sparse_core::{
    Adam, AdamConfig, FanMode, InferenceFlops, Init, Mask, MaskSet, ModelState, Nonlinearity,
    Optimizer, ScoreSubnetwork, ScoredLayer, SparsityRamp,
};
use sparse_repro::epochs::{EpochLoop, EpochTask, Scores};
use sparse_repro::metrics::{accuracy, expected_calibration_error_from_logits, msp_auroc};
use sparse_repro::progress::ProgressMode;
use sparse_repro::rng::derive_rng;
use sparse_repro::train::{Goal, Stopwatch, cross_entropy};

use crate::config::{Method, TrainConfig};
use crate::data::{GraphData, index_tensor, label_tensor};
use crate::error::{Error, Result};
use crate::mad::mean_average_distance;
use crate::model::{Dropout, Gnn};
use crate::ood::{ClassSplit, OOD_STREAM};

/// The official initialisation of weights and scores: `kaiming_uniform(fan_in, relu)`.
pub const KAIMING_UNIFORM: Init = Init::KaimingUniform {
    mode: FanMode::FanIn,
    nonlinearity: Nonlinearity::Relu,
};

/// The official `MultiStepLR` milestones (past 400 epochs, so effectively constant).
pub const LR_MILESTONES: [u64; 3] = [900, 1000, 1100];

/// A model with its frozen (or trained) weights and, for score methods, its scores.
pub struct Network {
    model: Gnn,
    method: Method,
    varmap: VarMap,
    weights: BTreeMap<String, Var>,
    subnetwork: Option<ScoreSubnetwork>,
}

impl Network {
    /// A freshly initialised network for `config` on a graph with `in_dim` features
    /// and `classes` output classes. Weights come from the seed's `weights` stream and
    /// scores from its `scores` stream, so every method starts from the same weights.
    pub fn new(
        config: &TrainConfig,
        in_dim: usize,
        classes: usize,
        device: &Device,
    ) -> Result<Self> {
        let model = Gnn::new(
            config.model(),
            config.layers(),
            in_dim,
            config.hidden(),
            classes,
        )?;
        let varmap = VarMap::new();
        let mut weight_rng = derive_rng(config.seed(), "weights");
        let mut score_rng = derive_rng(config.seed(), "scores");
        let mut weights = BTreeMap::new();
        let mut layers = Vec::new();
        for spec in model.param_specs() {
            let w = new_var(
                &varmap,
                &format!("{}.weight", spec.name),
                &spec.shape,
                device,
            )?;
            init_var(&w, KAIMING_UNIFORM, &mut weight_rng)?;
            if config.method().trains_scores() {
                let s = new_var(
                    &varmap,
                    &format!("{}.score", spec.name),
                    &spec.shape,
                    device,
                )?;
                init_var(&s, KAIMING_UNIFORM, &mut score_rng)?;
                layers.push(ScoredLayer::new(spec.name.clone(), w.as_tensor(), s)?);
            }
            weights.insert(spec.name.clone(), w);
        }
        let subnetwork = match config.method().scope() {
            Some(scope) => Some(ScoreSubnetwork::new(
                layers,
                scope,
                config.method().count(),
            )?),
            None => None,
        };
        Ok(Self {
            model,
            method: config.method(),
            varmap,
            weights,
            subnetwork,
        })
    }

    /// The model.
    pub fn model(&self) -> &Gnn {
        &self.model
    }

    /// Every parameter (`<name>.weight`, `<name>.score`), as checkpoints hold them.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The weight `Var`s by parameter name.
    pub fn weights(&self) -> &BTreeMap<String, Var> {
        &self.weights
    }

    /// The score subnetwork (`None` for dense training).
    pub fn subnetwork(&self) -> Option<&ScoreSubnetwork> {
        self.subnetwork.as_ref()
    }

    /// The trained tensors, sorted by name: scores for score methods, weights for dense.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        match &self.subnetwork {
            Some(net) => net
                .layers()
                .map(|l| (format!("{}.score", l.name()), l.scores().clone()))
                .collect(),
            None => self
                .weights
                .iter()
                .map(|(n, v)| (format!("{n}.weight"), v.clone()))
                .collect(),
        }
    }

    /// The masks at `sparsity` (all ones for dense training).
    pub fn masks(&self, sparsity: f64) -> Result<BTreeMap<String, Mask>> {
        match &self.subnetwork {
            Some(net) => Ok(net.masks(sparsity)?),
            None => Ok(self
                .weights
                .iter()
                .map(|(n, w)| (n.clone(), Mask::ones(w.dims())))
                .collect()),
        }
    }

    /// The weights the forward pass uses under `masks`: `W ⊙ m` with the
    /// straight-through score gradient, or the trained `W` itself for dense training.
    pub fn effective_weights(
        &self,
        masks: &BTreeMap<String, Mask>,
    ) -> Result<BTreeMap<String, Tensor>> {
        match &self.subnetwork {
            Some(net) => net
                .layers()
                .map(|l| {
                    let mask = masks.get(l.name()).ok_or_else(|| {
                        Error::invalid("masks", l.name(), "no mask for this layer")
                    })?;
                    Ok((l.name().to_string(), l.effective_weight(mask)?))
                })
                .collect(),
            None => Ok(self
                .weights
                .iter()
                .map(|(n, w)| (n.clone(), w.as_tensor().clone()))
                .collect()),
        }
    }

    /// The official `L1_norm` term: `Σ_l mean(sigmoid(S_l))` (zero for dense).
    fn score_l1(&self) -> Result<Option<Tensor>> {
        let Some(net) = &self.subnetwork else {
            return Ok(None);
        };
        let mut total: Option<Tensor> = None;
        for l in net.layers() {
            let term = candle_nn::ops::sigmoid(l.scores().as_tensor())?.mean_all()?;
            total = Some(match total {
                Some(t) => (t + term)?,
                None => term,
            });
        }
        Ok(total)
    }

    /// The method the network was built for.
    pub fn method(&self) -> Method {
        self.method
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("model", &self.model)
            .field("method", &self.method)
            .field("weights", &self.weights.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn new_var(varmap: &VarMap, name: &str, shape: &[usize], device: &Device) -> Result<Var> {
    varmap.get(shape, name, candle_nn::Init::Const(0.0), DType::F32, device)?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::invalid("varmap", name, "the parameter map's lock is poisoned"))?;
    data.get(name)
        .cloned()
        .ok_or_else(|| Error::invalid("varmap", name, "variable was not created"))
}

/// Which nodes a run trains, selects and tests on. The OOD protocol holds
/// `ood_classes` classes, drawn from the run's seed ([`ClassSplit::drawn`]), out of
/// training, selection and the in-distribution test.
#[derive(Debug, Clone)]
pub struct NodeSplits {
    /// Classes the model predicts (`num_classes − ood_classes`).
    pub classes: usize,
    class_split: ClassSplit,
    train: (Tensor, Tensor),
    val: (Tensor, Tensor),
    test: (Tensor, Tensor),
    ood: Option<Tensor>,
}

impl NodeSplits {
    /// The splits of `graph` for `config`; checks `ood_classes` against the data.
    pub fn new(graph: &GraphData, config: &TrainConfig, device: &Device) -> Result<Self> {
        let held_out = config.ood_classes();
        let class_split = if held_out > 0 {
            let mut rng = derive_rng(config.seed(), OOD_STREAM);
            ClassSplit::drawn(graph.num_classes, held_out, &mut rng)?
        } else {
            ClassSplit::all(graph.num_classes)
        };
        let split = |nodes: &[usize], what: &'static str| -> Result<(Tensor, Tensor)> {
            let (ids, labels) = graph.nodes_in(nodes, &class_split);
            if ids.is_empty() {
                return Err(Error::invalid(what, 0, "no labelled in-distribution node"));
            }
            Ok((index_tensor(&ids, device)?, label_tensor(&labels, device)?))
        };
        let ood = if held_out > 0 {
            let ids = graph.nodes_held_out(&graph.test, &class_split);
            if ids.is_empty() {
                return Err(Error::invalid(
                    "ood_classes",
                    held_out,
                    "no test node of a held-out class",
                ));
            }
            Some(index_tensor(&ids, device)?)
        } else {
            None
        };
        Ok(Self {
            classes: class_split.predicted(),
            train: split(&graph.train, "train")?,
            val: split(&graph.val, "val")?,
            test: split(&graph.test, "test")?,
            ood,
            class_split,
        })
    }

    /// The classes held out as out-of-distribution (original class ids; empty
    /// outside the OOD protocol).
    pub fn held_out_classes(&self) -> &[u32] {
        self.class_split.held_out()
    }
}

/// What a trained (or reloaded) network scores at the target sparsity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Validation accuracy (in-distribution nodes).
    pub val_accuracy: f64,
    /// Test accuracy (in-distribution nodes).
    pub test_accuracy: f64,
    /// Expected calibration error of the test predictions (15 bins).
    pub test_ece: f64,
    /// MAD of the final node embeddings (the logits) over all nodes.
    pub mad: f64,
    /// AUROC of the maximum softmax probability, in-distribution test nodes against
    /// test nodes of the held-out classes (OOD runs only).
    pub ood_auroc: Option<f64>,
    /// Fraction of weights kept by the masks.
    pub density: f64,
    /// Forward FLOPs of the linear maps for the whole graph at this density.
    pub inference_flops: f64,
}

/// The outcome of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The configuration.
    pub config: TrainConfig,
    /// The data set.
    pub dataset: String,
    /// Epoch (0-based) of the best validation accuracy, whose state is evaluated.
    pub best_epoch: usize,
    /// The best state's evaluation.
    pub eval: Evaluation,
    /// Training loss of the last epoch.
    pub final_train_loss: f64,
    /// Number of maskable parameters.
    pub params: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// `(epoch, validation accuracy)` of every epoch.
    pub val_curve: Vec<(usize, f64)>,
    /// The classes held out as out-of-distribution (empty outside the OOD protocol).
    #[serde(default)]
    pub held_out_classes: Vec<u32>,
}

/// Evaluates `net` on `graph` at `sparsity` (no dropout).
pub fn evaluate(
    net: &Network,
    graph: &GraphData,
    splits: &NodeSplits,
    sparsity: f64,
) -> Result<Evaluation> {
    let masks = net.masks(sparsity)?;
    let logits = net
        .model()
        .forward(graph, &net.effective_weights(&masks)?, None)?
        .detach();
    let pick = |(ids, labels): &(Tensor, Tensor)| -> Result<(Tensor, Tensor)> {
        Ok((logits.index_select(ids, 0)?, labels.clone()))
    };
    let (val_logits, val_labels) = pick(&splits.val)?;
    let (test_logits, test_labels) = pick(&splits.test)?;
    let ood_auroc = match &splits.ood {
        Some(ids) => Some(msp_auroc(&test_logits, &logits.index_select(ids, 0)?)?),
        None => None,
    };
    let inference_flops = InferenceFlops::new(&net.model().layer_flops(), &masks).sparse_total()
        * graph.num_nodes as f64;
    Ok(Evaluation {
        val_accuracy: accuracy(&val_logits, &val_labels)?,
        test_accuracy: accuracy(&test_logits, &test_labels)?,
        test_ece: expected_calibration_error_from_logits(&test_logits, &test_labels)?,
        mad: mean_average_distance(&logits)?,
        ood_auroc,
        density: masks.overall_density(),
        inference_flops,
    })
}

/// One run's network, splits, optimizer and schedules as [`train`] builds them, and
/// its training step: what the epoch loop repeats, reachable on its own so that
/// `sparse-benches train` times exactly the step the runs take.
pub struct RunState {
    /// The network (frozen weights and scores, or trained weights).
    pub net: Network,
    /// The nodes it trains, selects and tests on.
    pub splits: NodeSplits,
    /// AdamW over the trainable variables (the schedule sets its rate per epoch).
    pub optimizer: Adam,
    schedule: MultiStep,
    ramp: Option<SparsityRamp>,
    dropout_rng: ChaCha8Rng,
    /// Masks at the target sparsity for the current scores, reused by the next
    /// training step once the ramp is over (the scores have not changed since).
    target_masks: Option<BTreeMap<String, Mask>>,
}

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState")
            .field("net", &self.net)
            .field("classes", &self.splits.classes)
            .finish_non_exhaustive()
    }
}

impl RunState {
    /// The run of `config` on `graph`: splits, network (initialised from the seed),
    /// AdamW, the learning-rate schedule, the sparsity ramp and the dropout stream.
    pub fn new(config: &TrainConfig, graph: &GraphData, device: &Device) -> Result<Self> {
        let splits = NodeSplits::new(graph, config, device)?;
        let net = Network::new(config, graph.num_features, splits.classes, device)?;
        let adam = AdamConfig::adamw(config.lr(), config.weight_decay()).build()?;
        Ok(Self {
            optimizer: Adam::from_params(net.trainable(), adam)?,
            net,
            splits,
            schedule: MultiStep::new(config.lr(), 0.1, LR_MILESTONES.to_vec())?,
            ramp: config.ramp()?,
            dropout_rng: derive_rng(config.seed(), "dropout"),
            target_masks: None,
        })
    }

    /// The training step of `epoch` (0-based): the scheduled learning rate and
    /// sparsity, masks from the current scores, a forward pass over the whole graph
    /// (with the configured dropout), the loss on the training nodes and one AdamW
    /// step. Returns the training loss.
    pub fn train_step(
        &mut self,
        config: &TrainConfig,
        graph: &GraphData,
        epoch: usize,
    ) -> Result<f64> {
        self.schedule.apply(&mut self.optimizer, epoch as f64);
        let s = self
            .ramp
            .map_or(0.0, |r| r.sparsity_at(epoch, config.epochs()));
        let net = &self.net;
        let masks = match self.target_masks.take() {
            Some(m) if s == config.sparsity() => m,
            _ => net.masks(s)?,
        };
        let weights = net.effective_weights(&masks)?;
        let dropout = (config.dropout() > 0.0).then(|| Dropout {
            rng: &mut self.dropout_rng,
            p: config.dropout() as f32,
        });
        let logits = net.model().forward(graph, &weights, dropout)?;
        let mut loss = cross_entropy(
            &logits.index_select(&self.splits.train.0, 0)?,
            &self.splits.train.1,
            0.0,
        )?;
        if config.weight_l1() > 0.0
            && let Some(l1) = net.score_l1()?
        {
            loss = (loss + (l1 * config.weight_l1())?)?;
        }
        let train_loss = f64::from(loss.to_scalar::<f32>()?);
        let grads = loss.backward()?;
        self.optimizer.step(&grads)?;
        Ok(train_loss)
    }

    /// Validation and test accuracy at the target sparsity (the masks are kept for
    /// the next training step).
    pub fn evaluate_step(&mut self, config: &TrainConfig, graph: &GraphData) -> Result<(f64, f64)> {
        let net = &self.net;
        let masks = net.masks(config.sparsity())?;
        let logits = net
            .model()
            .forward(graph, &net.effective_weights(&masks)?, None)?
            .detach();
        let splits = &self.splits;
        let val = accuracy(&logits.index_select(&splits.val.0, 0)?, &splits.val.1)?;
        let test = accuracy(&logits.index_select(&splits.test.0, 0)?, &splits.test.1)?;
        self.target_masks = Some(masks);
        Ok((val, test))
    }
}

/// The per-epoch work of one run, driven by [`EpochLoop`].
struct Trainer<'a> {
    config: &'a TrainConfig,
    graph: &'a GraphData,
    run: &'a mut RunState,
    val_curve: Vec<(usize, f64)>,
    best: Option<ModelState>,
}

impl EpochTask for Trainer<'_> {
    type Error = Error;

    fn train_epoch(&mut self, epoch: usize) -> Result<f64> {
        self.run.train_step(self.config, self.graph, epoch)
    }

    fn evaluate(&mut self, epoch: usize) -> Result<Option<Scores>> {
        let (val, test) = self.run.evaluate_step(self.config, self.graph)?;
        self.val_curve.push((epoch, val));
        Ok(Some(Scores::new(val, test)))
    }

    fn on_new_best(&mut self, _epoch: usize) -> Result<()> {
        self.best = Some(ModelState::capture(self.run.net.varmap())?);
        Ok(())
    }
}

/// Trains `config` on `graph`; returns the network restored to its best-validation
/// state (the model to checkpoint) and the outcome.
pub fn train(
    config: &TrainConfig,
    graph: &GraphData,
    device: &Device,
    progress: ProgressMode,
) -> Result<(Network, RunOutcome)> {
    let clock = Stopwatch::start();
    let mut run = RunState::new(config, graph, device)?;
    let mut trainer = Trainer {
        config,
        graph,
        run: &mut run,
        val_curve: Vec::with_capacity(config.epochs()),
        best: None,
    };
    let label = format!("{}-{}-seed{}", graph.name, config.label(), config.seed());
    let outcome = EpochLoop::new(config.epochs(), Goal::Maximize)
        .progress(label, progress)
        .run(&mut trainer)?;
    let Trainer {
        best, val_curve, ..
    } = trainer;
    // The loop returns only after a best epoch, whose `on_new_best` stored the state.
    let best =
        best.ok_or_else(|| Error::invalid("epochs", config.epochs(), "no epoch was selected"))?;
    let RunState { net, splits, .. } = run;
    best.restore(net.varmap())?;
    let eval = evaluate(&net, graph, &splits, config.sparsity())?;
    let params = net.weights().values().map(|w| w.elem_count()).sum();
    let outcome = RunOutcome {
        config: config.clone(),
        dataset: graph.name.clone(),
        // The loop numbers epochs from 1; outcomes and reports keep the 0-based epoch.
        best_epoch: outcome.best.epoch.saturating_sub(1),
        eval,
        final_train_loss: outcome.last_train_loss,
        params,
        seconds: clock.elapsed_seconds(),
        val_curve,
        held_out_classes: splits.held_out_classes().to_vec(),
    };
    Ok((net, outcome))
}
