//! Training or evaluation: where the randomness of a forward pass comes from.

use candle_core::Tensor;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;

/// How a forward pass runs. Training draws dropout masks (and random routes) from a
/// seeded generator, because candle's own CPU generator cannot be seeded.
#[derive(Debug)]
pub enum Mode<'a> {
    /// No dropout; routers route as they do at inference.
    Eval,
    /// Dropout with probability `dropout`, masks drawn from `rng`.
    Train {
        /// The run's generator for dropout masks and random routes.
        rng: &'a mut ChaCha8Rng,
        /// The dropout probability in `[0, 1)`.
        dropout: f32,
    },
}

impl Mode<'_> {
    /// Whether this is a training pass.
    pub fn is_train(&self) -> bool {
        matches!(self, Self::Train { .. })
    }

    /// Inverted dropout on `x` in training, `x` itself in evaluation.
    pub fn dropout(&mut self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Eval => Ok(x.clone()),
            Self::Train { rng, dropout } => {
                Ok(sparse_repro::rng::dropout(*rng, x, *dropout, true)?)
            }
        }
    }

    /// The training generator (`None` in evaluation).
    pub fn rng(&mut self) -> Option<&mut ChaCha8Rng> {
        match self {
            Self::Eval => None,
            Self::Train { rng, .. } => Some(*rng),
        }
    }
}
