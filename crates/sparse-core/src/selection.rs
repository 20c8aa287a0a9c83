//! Which variables of a model get masks.
//!
//! The official codebases disagree on this (methods note B §1.2), so it is a policy:
//!
//! | codebase | rule | policy |
//! |---|---|---|
//! | sparse_learning, ITOP, Random_Pruning | every parameter except biases and BatchNorm parameters | [`SelectionPolicy::default`] |
//! | GraNet, Sup-tickets, SLaK | every parameter with `ndim == 2 or 4`; GraNet's `--rm-first` drops the first conv; SLaK leaves dense every layer whose density after init is `>= 0.99` | `.ndims([2, 4])`, `.exclude_first(true)`, `.dense_threshold(0.99)` |
//! | STU-GAN | convolutions only (`ndim == 4`) | `.convolutions_only()` (`ndim >= 3`, so DSN's 3-D conv1d weights count) or `.ndims([4])` |
//!
//! A candle [`VarMap`] knows names and tensors but not module types, so biases and
//! norms are recognised by name: a name containing `bias`, a path segment (the parts
//! between dots) that starts with `bn` or `ln` or contains `norm` (`bn1.weight`,
//! `layer_norm.weight`, `encoder.norm.weight`), and BatchNorm's running statistics
//! `running_mean` / `running_var`. The running statistics are always excluded: they live
//! in the `VarMap` (candle's `batch_norm` creates them through the `VarBuilder`) but are
//! not parameters. A 1-D weight whose name matches none of these (a bare learnable
//! scale) is kept by the default policy, as in the official code; `.ndims([2, 4])`
//! removes it.
//!
//! "First" and "last" layer are model-order notions, and a `VarMap` has no order (and
//! sorted-by-name order is not model order: `fc.weight` sorts before `layer1.…`). So
//! [`SelectionPolicyBuilder::exclude_first`] / [`SelectionPolicyBuilder::exclude_last`]
//! need the model order from [`SelectionPolicyBuilder::layer_order`]; alternatively
//! exclude layers by name with [`SelectionPolicyBuilder::exclude_names`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use candle_core::Var;
use candle_nn::VarMap;

use crate::batchnorm::{RUNNING_MEAN, RUNNING_VAR};
use crate::error::{Result, SparseError};

/// A predicate on variable names.
pub type NamePredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

// The name rules and `VarMap` helpers below are the crate's only definitions:
// `batchnorm`, `optim`, `flops`, `ema` and `checkpoint` all use these.

/// Whether `name` is a BatchNorm running statistic (`…running_mean` / `…running_var`):
/// it lives in the `VarMap` but is never a parameter (no gradient, no decay, no mask).
pub fn is_running_stat(name: &str) -> bool {
    name.ends_with(RUNNING_MEAN) || name.ends_with(RUNNING_VAR)
}

/// Whether `name` is a bias (the name contains `bias`).
pub fn is_bias(name: &str) -> bool {
    name.contains("bias")
}

/// Whether `name` belongs to a normalisation layer: a path segment starts with `bn` or
/// `ln`, or contains `norm` (case-insensitive), or the last segment is `gamma` / `beta`
/// (TensorFlow-style names of a norm's scale and shift).
pub fn is_norm(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    last == "gamma"
        || last == "beta"
        || name.split('.').any(|segment| {
            let s = segment.to_ascii_lowercase();
            s.starts_with("bn") || s.starts_with("ln") || s.contains("norm")
        })
}

/// Whether `name` is a bias or a normalisation parameter ([`is_bias`] or
/// [`is_norm`]): what PyTorch recipes usually exclude from weight decay, and what the
/// default [`SelectionPolicy`] leaves dense.
pub fn is_bias_or_norm(name: &str) -> bool {
    is_bias(name) || is_norm(name)
}

/// Number of trainable parameters in a `VarMap`: every element of every variable
/// except BatchNorm running statistics.
pub fn count_parameters(varmap: &VarMap) -> usize {
    trainable_vars(varmap)
        .iter()
        .map(|(_, var)| var.elem_count())
        .sum()
}

/// Every `(name, var)` of a `VarMap`, sorted by name (the map itself is unordered).
pub fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    // A poisoned lock still holds a consistent map: the vars are only read here.
    let guard = match varmap.data().lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut vars: Vec<(String, Var)> = guard
        .iter()
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// The trainable `(name, var)` pairs of a `VarMap`, sorted by name: every variable
/// except BatchNorm running statistics ([`is_running_stat`]).
pub fn trainable_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    sorted_vars(varmap)
        .into_iter()
        .filter(|(name, _)| !is_running_stat(name))
        .collect()
}

/// Which variables of a `VarMap` get masks. Build it with [`SelectionPolicy::builder`].
#[derive(Clone)]
pub struct SelectionPolicy {
    ndims: Option<BTreeSet<usize>>,
    min_ndim: usize,
    exclude_biases: bool,
    exclude_norms: bool,
    layer_order: Option<Vec<String>>,
    exclude_first: bool,
    exclude_last: bool,
    exclude_names: BTreeSet<String>,
    include_if: Option<NamePredicate>,
    exclude_if: Option<NamePredicate>,
    dense_threshold: Option<f64>,
}

impl fmt::Debug for SelectionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectionPolicy")
            .field("ndims", &self.ndims)
            .field("min_ndim", &self.min_ndim)
            .field("exclude_biases", &self.exclude_biases)
            .field("exclude_norms", &self.exclude_norms)
            .field("layer_order", &self.layer_order)
            .field("exclude_first", &self.exclude_first)
            .field("exclude_last", &self.exclude_last)
            .field("exclude_names", &self.exclude_names)
            .field("include_if", &self.include_if.is_some())
            .field("exclude_if", &self.exclude_if.is_some())
            .field("dense_threshold", &self.dense_threshold)
            .finish()
    }
}

impl Default for SelectionPolicy {
    /// The sparse_learning / ITOP / Random_Pruning rule: every variable except biases,
    /// norms and running statistics.
    fn default() -> Self {
        Self {
            ndims: None,
            min_ndim: 1,
            exclude_biases: true,
            exclude_norms: true,
            layer_order: None,
            exclude_first: false,
            exclude_last: false,
            exclude_names: BTreeSet::new(),
            include_if: None,
            exclude_if: None,
            dense_threshold: None,
        }
    }
}

impl SelectionPolicy {
    /// A builder starting from [`SelectionPolicy::default`].
    pub fn builder() -> SelectionPolicyBuilder {
        SelectionPolicyBuilder {
            policy: Self::default(),
        }
    }

    /// The model order given to the builder, if any.
    pub fn layer_order(&self) -> Option<&[String]> {
        self.layer_order.as_deref()
    }

    /// The density at or above which a layer is left dense after allocation (SLaK: 0.99).
    pub fn dense_threshold(&self) -> Option<f64> {
        self.dense_threshold
    }

    /// Whether a layer whose mask has `density` after allocation stays dense instead
    /// (SLaK's rule; always `false` without a threshold).
    pub fn keeps_dense(&self, density: f64) -> bool {
        self.dense_threshold.is_some_and(|t| density >= t)
    }

    /// Whether one variable passes the name and shape rules (first/last exclusion,
    /// which needs the whole model, is not checked here).
    pub fn accepts(&self, name: &str, shape: &[usize]) -> bool {
        if is_running_stat(name)
            || (self.exclude_biases && is_bias(name))
            || (self.exclude_norms && is_norm(name))
            || self.exclude_names.contains(name)
        {
            return false;
        }
        let ndim = shape.len();
        if ndim < self.min_ndim || self.ndims.as_ref().is_some_and(|set| !set.contains(&ndim)) {
            return false;
        }
        if self.include_if.as_ref().is_some_and(|p| !p(name)) {
            return false;
        }
        !self.exclude_if.as_ref().is_some_and(|p| p(name))
    }

    /// The selected variables, sorted by name.
    ///
    /// Errors when a name given to `exclude_names` or `layer_order` is not in the
    /// `VarMap` (a typo would otherwise silently change the experiment), or when a
    /// layer order is given that misses a selected variable.
    pub fn select(&self, varmap: &VarMap) -> Result<Vec<(String, Var)>> {
        let mut selected = self.select_in_model_order(varmap)?;
        selected.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(selected)
    }

    /// The selected variables in model order (the builder's `layer_order`), or sorted
    /// by name when no order was given.
    pub fn select_in_model_order(&self, varmap: &VarMap) -> Result<Vec<(String, Var)>> {
        let all = sorted_vars(varmap);
        let known: BTreeSet<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        for name in &self.exclude_names {
            if !known.contains(name.as_str()) {
                return Err(SparseError::UnknownParameter(name.clone()));
            }
        }
        let candidates: Vec<(String, Var)> = all
            .iter()
            .filter(|(name, var)| self.accepts(name, var.dims()))
            .cloned()
            .collect();
        let mut ordered = match &self.layer_order {
            None => candidates,
            Some(order) => {
                for name in order {
                    if !known.contains(name.as_str()) {
                        return Err(SparseError::UnknownParameter(name.clone()));
                    }
                }
                if let Some((missing, _)) = candidates.iter().find(|(n, _)| !order.contains(n)) {
                    return Err(SparseError::invalid_input(
                        "layer_order",
                        format!("selected variable `{missing}` is not in the layer order"),
                    ));
                }
                order
                    .iter()
                    .filter_map(|name| candidates.iter().find(|(n, _)| n == name).cloned())
                    .collect()
            }
        };
        if self.exclude_last {
            ordered.pop();
        }
        if self.exclude_first && !ordered.is_empty() {
            ordered.remove(0);
        }
        Ok(ordered)
    }
}

/// Checked builder of a [`SelectionPolicy`].
#[derive(Debug, Clone)]
pub struct SelectionPolicyBuilder {
    policy: SelectionPolicy,
}

impl SelectionPolicyBuilder {
    /// Only variables with one of these numbers of dimensions (GraNet/SLaK: `[2, 4]`).
    pub fn ndims(mut self, ndims: impl IntoIterator<Item = usize>) -> Self {
        self.policy.ndims = Some(ndims.into_iter().collect());
        self
    }

    /// Only convolution weights (`ndim >= 3`: conv1d, conv2d, conv3d), as STU-GAN.
    pub fn convolutions_only(mut self) -> Self {
        self.policy.min_ndim = 3;
        self
    }

    /// Whether names containing `bias` are excluded (default `true`).
    pub fn exclude_biases(mut self, yes: bool) -> Self {
        self.policy.exclude_biases = yes;
        self
    }

    /// Whether normalisation parameters are excluded (default `true`); see the module
    /// docs for how norms are recognised. Running statistics are excluded regardless.
    pub fn exclude_norms(mut self, yes: bool) -> Self {
        self.policy.exclude_norms = yes;
        self
    }

    /// The model order of the (weight) variables, first layer first. Needed by
    /// `exclude_first`/`exclude_last` and by allocations that single out the first
    /// layer or the classifier. Every selected variable must appear in it; names that
    /// are not selected (biases, ...) may appear and are skipped.
    pub fn layer_order<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.policy.layer_order = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Leave the first selected layer (in `layer_order`) dense (GraNet's `--rm-first`).
    pub fn exclude_first(mut self, yes: bool) -> Self {
        self.policy.exclude_first = yes;
        self
    }

    /// Leave the last selected layer (in `layer_order`, usually the classifier) dense.
    pub fn exclude_last(mut self, yes: bool) -> Self {
        self.policy.exclude_last = yes;
        self
    }

    /// Leave these variables dense, by exact name.
    pub fn exclude_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.policy
            .exclude_names
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Only variables whose name satisfies `predicate` (e.g. SLaK's `--only-L`).
    pub fn include_if(mut self, predicate: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.policy.include_if = Some(Arc::new(predicate));
        self
    }

    /// Exclude variables whose name satisfies `predicate`.
    pub fn exclude_if(mut self, predicate: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.policy.exclude_if = Some(Arc::new(predicate));
        self
    }

    /// Leave dense every layer whose mask density after allocation is `>= threshold`
    /// (SLaK: 0.99). Must lie in `(0, 1]`.
    pub fn dense_threshold(mut self, threshold: f64) -> Self {
        self.policy.dense_threshold = Some(threshold);
        self
    }

    /// Validates and returns the policy.
    pub fn build(self) -> Result<SelectionPolicy> {
        let p = &self.policy;
        if let Some(t) = p.dense_threshold {
            crate::validate::check_fraction_above_zero("dense_threshold", t)?;
        }
        if let Some(set) = &p.ndims
            && (set.is_empty() || set.contains(&0))
        {
            return Err(SparseError::invalid(
                "ndims",
                format!("{set:?}"),
                "must be a non-empty set of positive dimension counts",
            ));
        }
        if (p.exclude_first || p.exclude_last) && p.layer_order.is_none() {
            return Err(SparseError::invalid(
                if p.exclude_first {
                    "exclude_first"
                } else {
                    "exclude_last"
                },
                "true",
                "needs the model order: call `layer_order` (name order is not model order)",
            ));
        }
        Ok(self.policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, batch_norm, conv2d, linear};

    /// conv(3→4, k3) + bn + linear(4→2) + layer norm, all through one `VarMap`.
    fn small_model() -> VarMap {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        conv2d(3, 4, 3, Default::default(), vb.pp("conv1")).unwrap();
        batch_norm(4, 1e-5, vb.pp("bn1")).unwrap();
        linear(4, 2, vb.pp("fc")).unwrap();
        candle_nn::layer_norm(2, 1e-5, vb.pp("head_norm")).unwrap();
        varmap
    }

    fn names(v: &[(String, Var)]) -> Vec<&str> {
        v.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn default_policy_keeps_only_weights_of_convs_and_linears() {
        let varmap = small_model();
        let all = sorted_vars(&varmap);
        assert!(all.iter().any(|(n, _)| n == "bn1.running_mean"));
        assert!(all.iter().any(|(n, _)| n == "bn1.running_var"));
        let selected = SelectionPolicy::default().select(&varmap).unwrap();
        assert_eq!(names(&selected), vec!["conv1.weight", "fc.weight"]);
    }

    #[test]
    fn ndims_and_convolutions_only() {
        let varmap = small_model();
        let p = SelectionPolicy::builder()
            .exclude_norms(false)
            .exclude_biases(false)
            .ndims([2, 4])
            .build()
            .unwrap();
        assert_eq!(
            names(&p.select(&varmap).unwrap()),
            vec!["conv1.weight", "fc.weight"]
        );
        let p = SelectionPolicy::builder()
            .convolutions_only()
            .build()
            .unwrap();
        assert_eq!(names(&p.select(&varmap).unwrap()), vec!["conv1.weight"]);
        // Without the norm and bias rules the 1-D vectors come back, running stats never.
        let p = SelectionPolicy::builder()
            .exclude_norms(false)
            .exclude_biases(false)
            .build()
            .unwrap();
        let got = p.select(&varmap).unwrap();
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|(n, _)| !is_running_stat(n)));
    }

    #[test]
    fn first_and_last_follow_the_given_model_order() {
        let varmap = small_model();
        let order = ["conv1.weight", "fc.weight"];
        let p = SelectionPolicy::builder()
            .layer_order(order)
            .exclude_first(true)
            .build()
            .unwrap();
        assert_eq!(names(&p.select(&varmap).unwrap()), vec!["fc.weight"]);
        let p = SelectionPolicy::builder()
            .layer_order(order)
            .exclude_last(true)
            .build()
            .unwrap();
        assert_eq!(names(&p.select(&varmap).unwrap()), vec!["conv1.weight"]);
        // Reversed "model order" flips which one is first.
        let p = SelectionPolicy::builder()
            .layer_order(["fc.weight", "conv1.weight"])
            .exclude_first(true)
            .build()
            .unwrap();
        assert_eq!(names(&p.select(&varmap).unwrap()), vec!["conv1.weight"]);
        let err = SelectionPolicy::builder()
            .exclude_first(true)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("exclude_first"), "{err}");
        let p = SelectionPolicy::builder()
            .layer_order(["conv1.weight"])
            .build()
            .unwrap();
        assert!(
            p.select(&varmap)
                .unwrap_err()
                .to_string()
                .contains("fc.weight")
        );
    }

    #[test]
    fn name_rules_and_predicates() {
        let varmap = small_model();
        let p = SelectionPolicy::builder()
            .exclude_names(["fc.weight"])
            .build()
            .unwrap();
        assert_eq!(names(&p.select(&varmap).unwrap()), vec!["conv1.weight"]);
        let p = SelectionPolicy::builder()
            .exclude_names(["fc.weigth"])
            .build()
            .unwrap();
        assert!(matches!(
            p.select(&varmap),
            Err(SparseError::UnknownParameter(n)) if n == "fc.weigth"
        ));
        let p = SelectionPolicy::builder()
            .include_if(|n| n.starts_with("fc"))
            .build()
            .unwrap();
        assert_eq!(names(&p.select(&varmap).unwrap()), vec!["fc.weight"]);
        let p = SelectionPolicy::builder()
            .exclude_if(|n| n.starts_with("fc"))
            .build()
            .unwrap();
        assert_eq!(names(&p.select(&varmap).unwrap()), vec!["conv1.weight"]);
    }

    /// One rule for "bias or norm" everywhere: the weight-decay split of the
    /// optimizers and the default mask selection agree name by name.
    #[test]
    fn weight_decay_and_mask_selection_share_the_name_rules() {
        let no_decay = [
            "fc.bias",
            "layer1.0.bn1.weight",
            "encoder.LayerNorm.weight",
            "ln_f.weight",
            "bert.LayerNorm.gamma",
            "head.beta",
        ];
        let decayed = [
            "conv1.weight",
            "linear.weight",
            "fc.weight",
            "blocks.0.attn.weight",
        ];
        for name in no_decay {
            assert!(is_bias_or_norm(name), "{name}");
            assert!(crate::optim::is_bias_or_norm(name), "{name}");
            assert!(!SelectionPolicy::default().accepts(name, &[4, 4]), "{name}");
        }
        for name in decayed {
            assert!(!is_bias_or_norm(name), "{name}");
            assert!(SelectionPolicy::default().accepts(name, &[4, 4]), "{name}");
        }
    }

    #[test]
    fn dense_threshold_is_checked_and_applied() {
        let p = SelectionPolicy::builder()
            .dense_threshold(0.99)
            .build()
            .unwrap();
        assert!(p.keeps_dense(0.995));
        assert!(!p.keeps_dense(0.5));
        assert!(!SelectionPolicy::default().keeps_dense(1.0));
        for bad in [0.0, 1.5, f64::NAN] {
            let err = SelectionPolicy::builder()
                .dense_threshold(bad)
                .build()
                .unwrap_err();
            assert!(err.to_string().contains("dense_threshold"), "{err}");
        }
    }

    #[test]
    fn parameter_count_skips_running_stats() {
        let varmap = small_model();
        // conv 4*3*3*3 + 4, bn 4 + 4, fc 2*4 + 2, layer norm 2 + 2.
        assert_eq!(count_parameters(&varmap), 108 + 4 + 8 + 8 + 2 + 4);
    }

    #[test]
    fn name_classifiers() {
        assert!(is_norm("layer1.0.bn2.weight"));
        assert!(is_norm("encoder.LayerNorm.weight"));
        assert!(is_norm("ln_f.weight"));
        assert!(!is_norm("layer1.0.conv1.weight"));
        assert!(!is_norm("linear.weight"));
        assert!(is_bias("fc.bias"));
        assert!(is_running_stat("bn.running_var"));
    }
}
