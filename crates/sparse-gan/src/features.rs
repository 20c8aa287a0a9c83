//! The FID proxy's feature network: an MLP classifier trained once per data set on
//! its real training images (in `[-1, 1]`, as the generators produce them). Its
//! penultimate ReLU layer is the feature space of the Fréchet and kernel distances;
//! its predicted labels count the classes a generator covers. It stands in for the
//! Inception network, which this workspace cannot fetch.
//!
//! Training is deterministic (fixed seed, fixed order, thread-count-independent
//! kernels), so `eval` rebuilds the very same network.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sparse_core::kernels::{Activation, cross_entropy, linear};
use sparse_core::optim::trainable_vars;
use sparse_core::{Adam, AdamConfig, Optimizer};
use sparse_data::data::ClassificationSet;
use sparse_data::images::ImageData;
use sparse_repro::batch::BatchIndices;
use sparse_repro::rng::derive_rng;

use crate::error::Result;
use crate::models::{Layer, initialise};

/// Hidden sizes of the feature network; the features are the last hidden layer.
pub const HIDDEN: [usize; 2] = [256, 128];
/// Training epochs over the real training images.
pub const EPOCHS: usize = 3;
/// Images per training batch.
pub const BATCH: usize = 128;
/// Adam's learning rate.
pub const LEARNING_RATE: f64 = 1e-3;
/// Images per forward pass when extracting features.
const CHUNK: usize = 1000;

/// The trained feature network.
#[derive(Debug)]
pub struct FeatureNet {
    layers: Vec<Layer>,
    /// Accuracy on the test images (a sanity check of the feature space).
    pub test_accuracy: f64,
}

/// Images of `set` at `indices`, in `[-1, 1]`, `[n, c, h, w]`.
pub fn real_images(set: &impl ClassificationSet, indices: &[usize]) -> Result<Tensor> {
    let batch = set.batch(indices, &Device::Cpu)?;
    Ok(batch.inputs.affine(2.0, -1.0)?)
}

impl FeatureNet {
    /// Trains the network on every training image of `data` (seeded by the data
    /// set's name, so every arm and every `eval` gets the same one).
    pub fn train(data: &ImageData) -> Result<Self> {
        let shape = data.input_shape();
        let classes = data.num_classes();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let sizes = [shape.numel(), HIDDEN[0], HIDDEN[1], classes];
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, pair)| Layer::linear(pair[0], pair[1], true, vb.pp(format!("fc{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let stream = format!("feature-net-{}", data.name.as_str());
        initialise(&varmap, &mut derive_rng(0, &stream))?;
        let mut net = Self {
            layers,
            test_accuracy: f64::NAN,
        };
        let mut adam = Adam::from_params(
            trainable_vars(&varmap),
            AdamConfig::adam(LEARNING_RATE).build()?,
        )?;
        let train = data.train_set();
        let pool = data.train_pool();
        let mut order_rng = derive_rng(1, &stream);
        for _ in 0..EPOCHS {
            for batch in BatchIndices::shuffled(pool.len(), BATCH, false, &mut order_rng)? {
                let indices: Vec<usize> = batch.iter().map(|&i| pool[i]).collect();
                let x = real_images(train, &indices)?;
                let labels = train.batch(&indices, &Device::Cpu)?.targets;
                let logits = net.logits_and_features(&x)?.0;
                let loss = cross_entropy(&logits, &labels, 0.0)?;
                adam.step(&loss.backward()?)?;
            }
        }
        let test = data.test_set();
        let (mut correct, mut seen) = (0usize, 0usize);
        for batch in BatchIndices::sequential(data.test_pool().len(), CHUNK, false)? {
            let indices: Vec<usize> = batch.iter().map(|&i| data.test_pool()[i]).collect();
            let predicted = net.predict(&real_images(test, &indices)?)?.1;
            let labels = test.labels();
            correct += indices
                .iter()
                .zip(&predicted)
                .filter(|&(&i, &p)| labels[i] as usize == p)
                .count();
            seen += indices.len();
        }
        net.test_accuracy = correct as f64 / seen.max(1) as f64;
        Ok(net)
    }

    fn logits_and_features(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut h = x.flatten_from(1)?;
        let mut features = h.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let last = i + 1 == self.layers.len();
            if last {
                features = h.clone();
            }
            let activation = if last {
                Activation::Identity
            } else {
                Activation::Relu
            };
            h = linear(&h, &layer.weight, layer.bias.as_ref(), activation)?;
        }
        Ok((h, features))
    }

    /// The features (`[n, HIDDEN[1]]`, row-major, f64) and predicted labels of images
    /// `x` in `[-1, 1]`, computed in chunks.
    pub fn predict(&self, x: &Tensor) -> Result<(Vec<f64>, Vec<usize>)> {
        let n = x.dim(0)?;
        let (mut features, mut labels) = (Vec::new(), Vec::new());
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            let (logits, f) = self.logits_and_features(&x.narrow(0, start, len)?)?;
            features.extend(f.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
            labels.extend(
                logits
                    .argmax(D::Minus1)?
                    .to_vec1::<u32>()?
                    .into_iter()
                    .map(|l| l as usize),
            );
            start += len;
        }
        Ok((features, labels))
    }

    /// The feature dimension.
    pub fn dim(&self) -> usize {
        HIDDEN[1]
    }
}
