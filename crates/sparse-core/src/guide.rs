//! # A guide to the axes of sparse training, in sparse-core's API
//!
//! "Ten Lessons We Have Learned in the New 'Sparseland': A Short Handbook for Sparse
//! Neural Network Researchers" (Liu & Wang, arXiv 2302.02596) names, in its abstract,
//! the axes along which sparse-network papers differ: *dense vs. sparse*,
//! *unstructured vs. structured sparsity*, *pruning vs. sparse training*,
//! *dense-to-sparse vs. sparse-to-sparse training*, *static vs. dynamic sparsity*, and
//! *before-, during- vs. after-training sparsity*. This guide walks those axes (plus
//! three that every comparison needs: counting parameters and FLOPs, layer-wise
//! allocation, and the ITOP rate, and one the family's papers share: merging tickets)
//! and shows, for each, the part of sparse-core that expresses it. The guide only uses the abstract's list of axes; the reasoning under
//! each heading is ours, not a quotation of the handbook's lessons.
//!
//! Every example below is a doc-test: it runs on the CPU in milliseconds and checks
//! real values.
//!
//! ## 1. Dense vs. sparse
//!
//! A sparse network is a dense architecture with most of its weights absent. sparse-core
//! keeps the dense tensor (a candle [`Var`](candle_core::Var)) and a binary
//! [`Mask`](crate::Mask) beside it; the [`SparseParams`](crate::SparseParams) registry
//! guarantees that inactive weights are exact zeros after every optimizer step. The
//! weight is used raw in the forward pass, so candle's gradient stays dense, which is
//! what gradient-based regrowth (RigL) needs. Which tensors get masks is a policy
//! ([`SelectionPolicy`](crate::SelectionPolicy)): by default every weight except
//! biases, normalisation parameters and BatchNorm statistics.
//!
//! ```rust
//! use candle_core::{DType, Device};
//! use candle_nn::{VarBuilder, VarMap, linear};
//! use sparse_core::{Mask, ParamReport, SelectionPolicy, SparseParams};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let _fc = linear(4, 2, vb.pp("fc"))?; // fc.weight [2, 4] and fc.bias [2]
//!
//! // The default policy masks the weight, not the bias.
//! let selected = SelectionPolicy::default().select(&varmap)?;
//! assert_eq!(selected.len(), 1);
//! let (name, weight) = &selected[0];
//! assert_eq!(name, "fc.weight");
//!
//! let mut params = SparseParams::new();
//! let mask = Mask::from_bits(&[2, 4], vec![1, 0, 1, 0, 0, 1, 0, 1])?;
//! params.insert(name.clone(), weight.clone(), mask)?; // zeroes the inactive weights now
//! let w = weight.as_tensor().flatten_all()?.to_vec1::<f32>()?;
//! assert_eq!(w.iter().filter(|v| **v == 0.0).count(), 4);
//!
//! // 8 weights at density 0.5 plus 2 dense biases: 6 of 10 parameters exist.
//! let report = ParamReport::new(&varmap, &params);
//! assert_eq!((report.total_params(), report.dense_params()), (6, 10));
//! # Ok(())
//! # }
//! ```
//!
//! ## 2. Unstructured vs. structured sparsity
//!
//! Unstructured masks keep any individual weights and lose the least accuracy, but
//! only hardware or kernels that exploit irregular zeros turn them into speed.
//! Structured masks remove whole groups (channels, blocks) or impose a regular
//! pattern such as N:M (`n` of every `m` consecutive weights), which dense hardware
//! can use directly. [`Granularity`](crate::Granularity) names the group and
//! [`mask_from_scores`](crate::mask_from_scores) keeps the best-scoring groups (scores
//! are "higher = more important": magnitudes, SNIP scores, ...).
//!
//! ```rust
//! use sparse_core::{Granularity, mask_from_scores};
//!
//! # fn main() -> sparse_core::Result<()> {
//! let scores = [0.1, 0.9, 0.3, 0.7, /* row 2 */ 0.8, 0.2, 0.6, 0.5];
//! let shape = [2, 4];
//!
//! let unstructured = mask_from_scores(&scores, &shape, 3, Granularity::Unstructured)?;
//! assert_eq!(unstructured.as_bits(), &[0, 1, 0, 1, 1, 0, 0, 0]);
//!
//! // 2:4 keeps two of every four consecutive weights: density 0.5 by construction.
//! let two_four = mask_from_scores(&scores, &shape, 0, Granularity::nm(2, 4)?)?;
//! assert_eq!(two_four.as_bits(), &[0, 1, 0, 1, 1, 0, 1, 0]);
//!
//! // Channel pruning keeps whole output rows, ranked by mean |score| (row 2 wins).
//! let channel = mask_from_scores(&scores, &shape, 4, Granularity::Channel)?;
//! assert_eq!(channel.as_bits(), &[0, 0, 0, 0, 1, 1, 1, 1]);
//! # Ok(())
//! # }
//! ```
//!
//! ## 3. Pruning vs. sparse training
//!
//! *Pruning* removes weights from a network that was trained (or is being trained)
//! dense; the dense training cost is paid. *Sparse training* trains a network that is
//! sparse throughout, so memory and (with sparse kernels) compute scale with the
//! density. In sparse-core pruning is a function on host copies of the weights
//! ([`keep_top_magnitude`](crate::keep_top_magnitude) over
//! [`LayerView`](crate::LayerView)s), while sparse training is a
//! [`SparsityEngine`](crate::SparsityEngine) called after every optimizer step (next
//! sections).
//!
//! ```rust
//! use sparse_core::{KeepRule, LayerView, Mask, keep_top_magnitude};
//!
//! # fn main() -> sparse_core::Result<()> {
//! let trained = [0.1, -0.9, 0.3, 0.7];
//! let dense = Mask::ones(&[1, 4]);
//! let layer = LayerView { name: "fc.weight", weights: &trained, grads: None, mask: &dense };
//! // Keep half of the weights by magnitude: |-0.9| and |0.7|.
//! let masks = keep_top_magnitude(&[layer], 0.5, false, KeepRule::Exact)?;
//! assert_eq!(masks[0].as_bits(), &[0, 1, 0, 1]);
//! // The official GraNet / GMP rule keeps `|W| > t`, t the 2nd largest: one fewer.
//! let masks = keep_top_magnitude(&[layer], 0.5, false, KeepRule::Strict)?;
//! assert_eq!(masks[0].as_bits(), &[0, 1, 0, 0]);
//! # Ok(())
//! # }
//! ```
//!
//! ## 4. Dense-to-sparse vs. sparse-to-sparse training
//!
//! Dense-to-sparse methods start dense and prune during training on a schedule
//! (gradual magnitude pruning, GMP; GraNet with initial density 1); their early steps
//! cost dense FLOPs. Sparse-to-sparse methods (SET, RigL, ITOP, static random
//! sparsity) hold the target density from the first step. Both are presets of one
//! engine configuration, [`DynamicSparsity`](crate::DynamicSparsity):
//! [`gradual_magnitude`](crate::DynamicSparsity::gradual_magnitude) /
//! [`granet`](crate::DynamicSparsity::granet) take a
//! [`GradualPruning`](crate::GradualPruning) whose `initial_density` is 1 for
//! dense-to-sparse, while [`set`](crate::DynamicSparsity::set) /
//! [`rigl`](crate::DynamicSparsity::rigl) keep the density of the initial masks.
//!
//! ```rust
//! use sparse_core::{DynamicSparsity, GradualPruning};
//!
//! # fn main() -> sparse_core::Result<()> {
//! // Dense (1.0) towards 10% density between steps 0 and 100, pruning every 10 steps.
//! let gmp = GradualPruning::new(1.0, 0.1, 0, 100, 10, true)?;
//! let schedule = gmp.schedule();
//! assert_eq!(schedule.density_at(0), 1.0);
//! // Cubic: d_f + (d_i - d_f)(1 - 5/10)^3 = 0.1 + 0.9 / 8.
//! assert!((schedule.density_at(50) - 0.2125).abs() < 1e-12);
//! // GraNet's code skips the last iteration: it ends at 0.1 + 0.9 (1/10)^3 ...
//! assert!((schedule.reached_density() - 0.1009).abs() < 1e-12);
//! // ... while the paper's formula taken to its end reaches 0.1.
//! let to_final = gmp.with_window(sparse_core::PruningWindow::ReachesFinal);
//! assert_eq!(to_final.schedule().density_at(100), 0.1);
//!
//! let dense_to_sparse = DynamicSparsity::gradual_magnitude(gmp).build()?;
//! assert!(dense_to_sparse.gradual().is_some());
//! let sparse_to_sparse = DynamicSparsity::rigl(100, 10_000).build()?;
//! assert!(sparse_to_sparse.gradual().is_none());
//! # Ok(())
//! # }
//! ```
//!
//! ## 5. Static vs. dynamic sparsity
//!
//! Static sparse training fixes the mask at initialisation (`--fix` in the official
//! code); dynamic sparse training (DST) prunes and regrows every `period` steps, so
//! the network explores other connections at the same parameter count.
//! [`DynamicSparsity::static_sparse`](crate::DynamicSparsity::static_sparse) has no
//! period; [`set`](crate::DynamicSparsity::set) (random regrowth) and
//! [`rigl`](crate::DynamicSparsity::rigl) (gradient regrowth) prune `rate·nnz` weights
//! per layer with a cosine death rate 0.5 → 0.005 ([`DeathRate`](crate::DeathRate)) and
//! regrow as many.
//!
//! ```rust
//! use candle_core::{Device, Tensor, Var};
//! use sparse_core::optim::{Optimizer, Sgd, SgdConfig};
//! use sparse_core::{DeathRate, DynamicSparsity, Mask, SparseParams, SparsityEngine};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fixed = DynamicSparsity::static_sparse().build()?;
//! assert!(!fixed.is_update_step(100));
//!
//! let cosine = DeathRate::cosine(0.5, 1000)?;
//! assert_eq!(cosine.rate_at(0), 0.5);
//! assert!((cosine.rate_at(1000) - 0.005).abs() < 1e-12);
//!
//! // Three RigL steps on a 2x4 layer at density 0.5, one topology update per step.
//! let w = Var::from_tensor(&Tensor::new(
//!     &[[0.5f32, -0.4, 0.3, 0.2], [0.1, 0.6, -0.7, 0.8]],
//!     &Device::Cpu,
//! )?)?;
//! let mut params = SparseParams::new();
//! params.insert("fc.weight", w.clone(), Mask::from_bits(&[2, 4], vec![1, 1, 0, 0, 0, 0, 1, 1])?)?;
//! let mut sgd = Sgd::from_params(vec![("fc.weight".into(), w.clone())], SgdConfig::builder(0.1).momentum(0.9).build()?)?;
//! let mut engine = SparsityEngine::new(DynamicSparsity::rigl(1, 3).seed(0).build()?, &params)?;
//! let x = Tensor::new(&[[1f32], [-2.], [3.], [-4.]], &Device::Cpu)?;
//! for step in 1..=3 {
//!     let loss = w.as_tensor().matmul(&x)?.sqr()?.sum_all()?;
//!     let grads = loss.backward()?;
//!     sgd.step(&grads)?;
//!     let report = engine.after_optimizer_step(step, &mut params, &grads, Some(&mut sgd))?;
//!     assert!(report.prune_regrow);
//!     let mask = params.mask("fc.weight")?;
//!     assert_eq!(mask.nnz(), 4); // same parameter count after every update
//!     let values = w.as_tensor().flatten_all()?.to_vec1::<f32>()?;
//!     for i in mask.inactive_indices() {
//!         assert_eq!(values[i], 0.0); // inactive weights are exact zeros
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## 6. Before, during and after training
//!
//! *Before training* (pruning at initialisation), a mask is chosen once, from layer
//! shapes alone (random pruning with an [`Allocation`](crate::Allocation) such as ERK)
//! or from saliency scores of one minibatch ([`saliency`](crate::saliency): SNIP,
//! GraSP, magnitude) turned into layer densities by a global top-k
//! ([`Allocation::SnipRatio`](crate::Allocation::SnipRatio), ...). *During training*,
//! the [`SparsityEngine`](crate::SparsityEngine) changes masks on a schedule (GMP,
//! GraNet, DST). *After training*, one-shot magnitude pruning
//! ([`keep_top_magnitude`](crate::keep_top_magnitude), section 3) removes the smallest
//! trained weights, usually followed by fine-tuning.
//!
//! ```rust
//! use candle_core::{Device, Tensor};
//! use sparse_core::saliency::{global_topk_densities, snip_scores};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // SNIP: |W ⊙ ∂L/∂W| on one minibatch.
//! let w = Tensor::new(&[1.0f32, -2.0], &Device::Cpu)?;
//! let g = Tensor::new(&[2.5f32, 1.0], &Device::Cpu)?;
//! let first = snip_scores(&w, &g)?;
//! assert_eq!(first, vec![2.5, 2.0]);
//! let second = vec![1.0, 0.1, 0.2, 3.0];
//! // Keep the global top half (3 of 6 scores: 3.0, 2.5, 2.0): the first layer
//! // stays dense and the second keeps one weight in four.
//! let densities = global_topk_densities(&[first, second], 0.5)?;
//! assert_eq!(densities, vec![1.0, 0.25]);
//! # Ok(())
//! # }
//! ```
//!
//! ## 7. Counting parameters and FLOPs; theoretical vs. measured speed-up
//!
//! Sparse methods are compared at equal parameter count and equal training budget, so
//! both must be counted the same way. [`ParamReport`](crate::ParamReport) counts
//! existing parameters (masked non-zeros plus dense tensors);
//! [`InferenceFlops`](crate::InferenceFlops) counts forward FLOPs per sample with
//! `2·nnz` per output position; [`TrainingFlops`](crate::TrainingFlops) accumulates a
//! run step by step (`3·f_S` for a sparse step, `2·f_S + f_D` for a step that needs the
//! dense gradient, as RigL's updates do). These are **theoretical** FLOPs. By default
//! the engine emulates sparsity with masked dense tensors, like every official
//! codebase, and masked-dense computation gives **no** measured speed-up: the zeros
//! are multiplied all the same. A wall-clock gain needs kernels that skip the zeros
//! (`sparse_core::kernels`: `SparseLinear` and `SparseConv2d` over a dense-stored
//! weight, or `PackedSparseLinear` and `PackedSparseConv2d` over a
//! [`PackedWeight`](crate::kernels::PackedWeight) that the engine trains without any
//! dense copy); report which of the two a number is.
//!
//! ```rust
//! use std::collections::BTreeMap;
//! use candle_core::{Device, Tensor, Var};
//! use sparse_core::{InferenceFlops, LayerFlops, LayerShape, Mask, SparseParams, StepKind, TrainingFlops};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fc = LayerFlops::new("fc.weight", LayerShape::Linear { in_features: 100, out_features: 10, bias: true });
//! // Dense: 2·1000 multiply-adds + 10 bias adds.
//! assert_eq!(fc.dense_flops(), 2010.0);
//!
//! // Keep 100 of the 1000 weights (density 0.1).
//! let w = Var::from_tensor(&Tensor::ones((10, 100), candle_core::DType::F32, &Device::Cpu)?)?;
//! let bits: Vec<u8> = (0..1000).map(|i| u8::from(i % 10 == 0)).collect();
//! let mut params = SparseParams::new();
//! params.insert("fc.weight", w, Mask::from_bits(&[10, 100], bits)?)?;
//! let inference = InferenceFlops::new(&[fc.clone()], &params);
//! assert_eq!(inference.sparse_total(), 210.0);
//! assert!((inference.relative() - 210.0 / 2010.0).abs() < 1e-12);
//!
//! // Training: two sparse steps and one RigL update step, batch size 1.
//! let mut training = TrainingFlops::new(vec![fc]);
//! let densities: BTreeMap<String, f64> = params.densities();
//! training.record_step(&densities, StepKind::Sparse, 1);
//! training.record_step(&densities, StepKind::Sparse, 1);
//! training.record_step(&densities, StepKind::DenseGradient, 1);
//! assert_eq!(training.total(), 2.0 * 3.0 * 210.0 + (2.0 * 210.0 + 2010.0));
//! assert_eq!(training.dense_total(), 3.0 * 3.0 * 2010.0);
//! # Ok(())
//! # }
//! ```
//!
//! ## 8. Layer-wise allocation: ERK vs. uniform
//!
//! The same global density can be spread very differently across layers. Uniform
//! gives every layer the global density; ERK (Erdős–Rényi-Kernel, RigL) gives layer
//! `l` a density proportional to `(Σ shape / Π shape)`, so small layers (the first
//! convolution, the classifier) stay denser and large ones sparser, at the same total
//! budget. [`AllocationConfig`](crate::AllocationConfig) computes the densities and
//! draws the random masks at initialisation
//! ([`init_sparse_params`](crate::AllocationConfig::init_sparse_params));
//! [`Sampling::ExactCount`](crate::Sampling::ExactCount) meets the budget exactly,
//! while the official [`Sampling::Bernoulli`](crate::Sampling::Bernoulli) meets it in
//! expectation.
//!
//! ```rust
//! use candle_core::{DType, Device};
//! use candle_nn::{VarBuilder, VarMap, linear};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use sparse_core::{Allocation, AllocationConfig, LayerSpec, Sampling, SelectionPolicy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layers = [LayerSpec::new("fc1", &[300, 784]), LayerSpec::new("fc2", &[100, 300]), LayerSpec::new("fc3", &[10, 100])];
//! let n: usize = layers.iter().map(LayerSpec::numel).sum();
//! let budget = |d: &[f64]| layers.iter().zip(d).map(|(l, d)| d * l.numel() as f64).sum::<f64>();
//!
//! let uniform = Allocation::Uniform.densities(&layers, 0.1, None)?;
//! assert_eq!(uniform, vec![0.1, 0.1, 0.1]);
//! let erk = Allocation::erk().densities(&layers, 0.1, None)?;
//! assert!(erk[0] < 0.1 && erk[2] > erk[1] && erk[1] > erk[0]); // small layers denser
//! assert!((budget(&erk) - 0.1 * n as f64).abs() < 1e-6); // same total budget
//!
//! // The same allocation on a real model, with exactly the budgeted count.
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! for (name, shape) in [("fc1", (784, 300)), ("fc2", (300, 100)), ("fc3", (100, 10))] {
//!     linear(shape.0, shape.1, vb.pp(name))?;
//! }
//! let config = AllocationConfig::builder().density(0.1).sampling(Sampling::ExactCount).build()?;
//! let mut rng = ChaCha8Rng::seed_from_u64(0);
//! let params = config.init_sparse_params(&varmap, &SelectionPolicy::default(), None, &mut rng)?;
//! let nnz: usize = params.iter().map(|p| p.mask.nnz()).sum();
//! assert_eq!(nnz, (0.1 * n as f64).round() as usize);
//! # Ok(())
//! # }
//! ```
//!
//! ## 9. The ITOP rate
//!
//! Dynamic sparse training visits more weights over time than it holds at any moment.
//! In-Time Over-Parameterization (Liu et al., ICML 2021) measures this with the ITOP
//! rate `R_s = Σ_l |∪_t M_l(t)| / Σ_l N_l`, the share of weights that were ever
//! active. [`FiredMasks`](crate::FiredMasks) keeps the union; the engine updates it at
//! every topology update ([`SparsityEngine::fired_masks`](crate::SparsityEngine::fired_masks))
//! and reports it in each [`UpdateReport`](crate::UpdateReport).
//!
//! ```rust
//! use candle_core::{Device, Tensor, Var};
//! use sparse_core::{FiredMasks, Mask, SparseParams};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let w = Var::from_tensor(&Tensor::ones((1, 4), candle_core::DType::F32, &Device::Cpu)?)?;
//! let mut params = SparseParams::new();
//! params.insert("fc.weight", w, Mask::from_bits(&[1, 4], vec![1, 1, 0, 0])?)?;
//! let mut fired = FiredMasks::new(&params);
//! assert_eq!(fired.rate(), 0.5);
//! // A topology update moves one connection: 3 of the 4 weights have now been active.
//! params.set_mask("fc.weight", Mask::from_bits(&[1, 4], vec![0, 1, 1, 0])?)?;
//! fired.record(&params)?;
//! assert_eq!(fired.rate(), 0.75);
//! # Ok(())
//! # }
//! ```
//!
//! ## 10. Tickets, and merging them
//!
//! Iterative magnitude pruning ([`imp`](crate::imp)) leaves one *ticket* per round,
//! and a cyclic tail of dynamic sparse training leaves several cheap ones. Two papers
//! of the family merge tickets into a better one at the same sparsity, with the same
//! three steps: interpolate every state entry
//! ([`ModelState::lerp`](crate::ModelState::lerp), BatchNorm statistics included),
//! re-prune the masked weights to the budget by global magnitude
//! ([`ModelState::prune_to_density`](crate::ModelState::prune_to_density)), then
//! recalibrate BatchNorm ([`batchnorm::recalibrate`](crate::batchnorm::recalibrate)).
//! Lottery Pools ([`pools`](crate::pools)) searches the coefficient greedily over the
//! neighbouring tickets (the lottery-pools crate); Sup-tickets takes a cumulative
//! average of each new ticket (the sup-tickets crate). A merge has the union support
//! of its inputs, so the re-pruned mask may differ from every ticket's.
//!
//! ```rust
//! use std::collections::BTreeMap;
//! use candle_core::{Device, Tensor};
//! use sparse_core::ModelState;
//! use sparse_core::pools::candidate_order;
//! use sparse_core::scores::ThresholdScope;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let state = |w: &[f32]| -> sparse_core::Result<ModelState> {
//!     let t = Tensor::new(w, &Device::Cpu)?;
//!     ModelState::from_tensors(&BTreeMap::from([("conv.weight".to_string(), t)]))
//! };
//! let a = state(&[1.0, 0.0, -0.5, 0.0])?;
//! let b = state(&[0.0, 0.5, -1.0, 0.0])?;
//! // The average has three non-zeros; the budget of two keeps the largest.
//! let mut merged = ModelState::lerp(&a, &b, 0.5)?;
//! let masks = merged.prune_to_density(&["conv.weight"], 0.5, ThresholdScope::Global)?;
//! assert_eq!(masks["conv.weight"].as_bits(), &[1, 0, 1, 0]);
//! assert_eq!(merged.get("conv.weight").unwrap().to_vec1::<f32>()?, vec![0.5, 0.0, -0.75, 0.0]);
//! // Lottery Pools visits the tickets nearest to the target first: t−1, t+1, t−2, …
//! assert_eq!(candidate_order(3, 8, 5), vec![2, 4, 1, 5]);
//! # Ok(())
//! # }
//! ```
