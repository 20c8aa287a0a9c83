//! The epoch loop every paper trains with: schedule → batches → step → masks →
//! evaluation → best tracking → progress. The paper writes what happens inside an
//! epoch and how a model is evaluated ([`EpochTask`]); [`EpochLoop`] owns the rest.
//!
//! ```
//! use sparse_repro::epochs::{EpochLoop, EpochTask, Scores};
//! use sparse_repro::progress::ProgressMode;
//! use sparse_repro::train::Goal;
//! use sparse_repro::HarnessError;
//!
//! /// A "model" whose validation accuracy peaks at epoch 3.
//! struct Toy { epoch: usize, snapshots: Vec<usize> }
//!
//! impl EpochTask for Toy {
//!     type Error = HarnessError;
//!     fn train_epoch(&mut self, epoch: usize) -> Result<f64, HarnessError> {
//!         self.epoch = epoch;
//!         Ok(1.0 / (epoch + 1) as f64) // the epoch's mean training loss
//!     }
//!     fn evaluate(&mut self, _epoch: usize) -> Result<Option<Scores>, HarnessError> {
//!         let validation = [0.5, 0.6, 0.8, 0.7][self.epoch];
//!         Ok(Some(Scores::new(validation, validation - 0.1)))
//!     }
//!     fn on_new_best(&mut self, epoch: usize) -> Result<(), HarnessError> {
//!         self.snapshots.push(epoch); // e.g. ModelState::capture
//!         Ok(())
//!     }
//! }
//!
//! let mut toy = Toy { epoch: 0, snapshots: Vec::new() };
//! let outcome = EpochLoop::new(4, Goal::Maximize)
//!     .progress("toy", ProgressMode::Quiet)
//!     .run(&mut toy)?;
//! assert_eq!(outcome.best.epoch, 3); // epochs are numbered from 1
//! assert!((outcome.best.test - 0.7).abs() < 1e-12);
//! assert_eq!(toy.snapshots, vec![1, 2, 3]);
//! assert_eq!(outcome.last.map(|s| s.validation), Some(0.7));
//! # Ok::<(), HarnessError>(())
//! ```

use crate::error::HarnessError;
use crate::progress::{Progress, ProgressMode};
use crate::train::{BestEpoch, BestTracker, Goal};

/// One evaluation: the validation metric (model selection) and the test metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// The model-selection metric.
    pub validation: f64,
    /// The test metric at the same epoch.
    pub test: f64,
}

impl Scores {
    /// Validation and test metric of one evaluation.
    pub fn new(validation: f64, test: f64) -> Self {
        Self { validation, test }
    }
}

/// What a paper does within the loop.
pub trait EpochTask {
    /// The paper's error (harness errors convert into it).
    type Error: From<HarnessError>;

    /// One pass over the training data: the learning-rate schedule, batches,
    /// optimizer steps and mask updates of epoch `epoch` (0-based). Returns the
    /// epoch's mean training loss.
    fn train_epoch(&mut self, epoch: usize) -> Result<f64, Self::Error>;

    /// Evaluates after epoch `epoch` (0-based); `None` skips model selection this epoch.
    fn evaluate(&mut self, epoch: usize) -> Result<Option<Scores>, Self::Error>;

    /// Called when epoch `epoch` (1-based, as in [`BestEpoch`]) is the new best:
    /// typically a snapshot of the model to restore at the end.
    fn on_new_best(&mut self, epoch: usize) -> Result<(), Self::Error> {
        let _ = epoch;
        Ok(())
    }
}

/// What the loop measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopOutcome {
    /// The best epoch by validation (1-based) with its test metric.
    pub best: BestEpoch,
    /// The last evaluation, if any.
    pub last: Option<Scores>,
    /// Mean training loss of the last epoch.
    pub last_train_loss: f64,
    /// Epochs run.
    pub epochs: usize,
}

/// The loop: `epochs` passes, model selection by validation toward `goal`.
#[derive(Debug, Clone)]
pub struct EpochLoop {
    epochs: usize,
    goal: Goal,
    label: String,
    mode: ProgressMode,
}

impl EpochLoop {
    /// `epochs` epochs, selecting on validation toward `goal`; progress is quiet
    /// until [`EpochLoop::progress`] names it.
    pub fn new(epochs: usize, goal: Goal) -> Self {
        Self {
            epochs,
            goal,
            label: String::new(),
            mode: ProgressMode::Quiet,
        }
    }

    /// Shows progress labelled `label` in `mode`.
    pub fn progress(mut self, label: impl Into<String>, mode: ProgressMode) -> Self {
        self.label = label.into();
        self.mode = mode;
        self
    }

    /// Runs the loop on `task`.
    pub fn run<T: EpochTask>(&self, task: &mut T) -> Result<LoopOutcome, T::Error> {
        if self.epochs == 0 {
            return Err(HarnessError::invalid("epochs", 0, "at least one epoch is needed").into());
        }
        let mut progress =
            Progress::new(self.label.clone(), self.epochs as u64, self.mode).with_unit("epoch");
        let mut tracker = BestTracker::new(self.goal);
        let mut last = None;
        let mut last_train_loss = f64::NAN;
        for epoch in 0..self.epochs {
            last_train_loss = task.train_epoch(epoch)?;
            let scores = task.evaluate(epoch)?;
            if let Some(scores) = scores {
                if tracker.update(epoch + 1, scores.validation, scores.test) {
                    task.on_new_best(epoch + 1)?;
                }
                last = Some(scores);
                progress.update(&[
                    ("loss", last_train_loss),
                    ("val", scores.validation),
                    ("test", scores.test),
                ]);
            } else {
                progress.update(&[("loss", last_train_loss)]);
            }
        }
        progress.finish("done");
        let best = tracker.best().ok_or_else(|| {
            HarnessError::invalid(
                "evaluation",
                "none",
                "no epoch produced a validation metric to select on",
            )
        })?;
        Ok(LoopOutcome {
            best,
            last,
            last_train_loss,
            epochs: self.epochs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed {
        validation: Vec<f64>,
        epoch: usize,
        best_calls: Vec<usize>,
    }

    impl EpochTask for Fixed {
        type Error = HarnessError;
        fn train_epoch(&mut self, epoch: usize) -> Result<f64, HarnessError> {
            self.epoch = epoch;
            Ok(0.0)
        }
        fn evaluate(&mut self, _: usize) -> Result<Option<Scores>, HarnessError> {
            Ok(self
                .validation
                .get(self.epoch)
                .map(|&v| Scores::new(v, 10.0 * v)))
        }
        fn on_new_best(&mut self, epoch: usize) -> Result<(), HarnessError> {
            self.best_calls.push(epoch);
            Ok(())
        }
    }

    fn run(
        validation: &[f64],
        goal: Goal,
        epochs: usize,
    ) -> Result<(LoopOutcome, Vec<usize>), HarnessError> {
        let mut task = Fixed {
            validation: validation.to_vec(),
            epoch: 0,
            best_calls: Vec::new(),
        };
        let outcome = EpochLoop::new(epochs, goal).run(&mut task)?;
        Ok((outcome, task.best_calls))
    }

    #[test]
    fn selects_on_validation_and_reports_test_there() -> Result<(), HarnessError> {
        let (outcome, calls) = run(&[0.3, 0.2, 0.5, 0.5, 0.1], Goal::Maximize, 5)?;
        assert_eq!(outcome.best.epoch, 3);
        assert_eq!(outcome.best.test, 5.0);
        assert_eq!(calls, vec![1, 3]);
        assert_eq!(outcome.last, Some(Scores::new(0.1, 1.0)));
        let (outcome, _) = run(&[0.3, 0.2, 0.5], Goal::Minimize, 3)?;
        assert_eq!(outcome.best.epoch, 2);
        Ok(())
    }

    #[test]
    fn skipped_evaluations_and_empty_loops_are_handled() -> Result<(), HarnessError> {
        // Evaluations only exist for the first two epochs.
        let (outcome, _) = run(&[0.1, 0.4], Goal::Maximize, 4)?;
        assert_eq!(outcome.best.epoch, 2);
        assert_eq!(outcome.epochs, 4);
        assert!(run(&[], Goal::Maximize, 3).is_err());
        assert!(run(&[0.5], Goal::Maximize, 0).is_err());
        Ok(())
    }
}
