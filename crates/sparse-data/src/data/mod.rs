//! Data loaders for the data sets the Sparseland reproductions use.
//!
//! Every loader parses from memory (`&[u8]` or `impl Read`, with a `source`
//! name used in error messages) and has a `from_path`-style wrapper. Bad input
//! gives a [`DataError`] naming the file and the line (text formats) or the
//! byte offset (binary formats); no loader panics on any input.
//!
//! | module | format | result |
//! |---|---|---|
//! | [`idx`] | IDX (MNIST, Fashion-MNIST), plain or gzipped | [`ImageDataset`] |
//! | [`digits`] | sklearn `digits.csv.gz` (8×8, values 0..16); embedded copy | [`ImageDataset`] |
//! | [`cifar`] | CIFAR-10 / CIFAR-100 binary records | [`ImageDataset`] |
//! | [`ts`] | UCR/UEA `.ts` (uni/multivariate, equal/unequal length) | [`TimeSeriesDataset`] |
//! | [`planetoid`] | Planetoid citation graphs as TSV (Cora, Citeseer) | [`Planetoid`] with a [`CsrMatrix`] adjacency |
//! | [`mwp`] | math word problems CSV (MAWPS, ASDiv-A, SVAMP) + prefix evaluator | [`MwpProblem`] |
//! | [`text`] | plain-text corpora with a character vocabulary | [`CharCorpus`] |
//! | [`bert_vocab`] | BERT WordPiece vocabulary (`vocab.json` → `vocab.txt`) | a `tokenizers::Tokenizer` |
//!
//! [`corrupt()`] and [`corrupted_suite`] (module [`mod@corrupt`]) build
//! corrupted copies of an [`ImageDataset`] after the CIFAR-C recipe (noise,
//! blur, contrast, brightness, pixelation at severities 1..=5): an
//! out-of-distribution test set.
//!
//! [`mixture`] generates the two-dimensional Gaussian mixtures (eight on a ring,
//! twenty-five on a grid) that GAN studies use to count collapsed modes;
//! [`border_half`] generates a two-class image task that only a wide receptive
//! field solves.
//!
//! Image and time-series sets implement [`ClassificationSet`], so training
//! loops can build `(inputs, targets)` tensors batch by batch from index lists
//! without knowing the format.

pub mod bert_vocab;
pub mod border_half;
pub mod cifar;
pub mod corrupt;
mod csr;
pub mod digits;
mod error;
pub mod idx;
mod image;
pub mod mixture;
pub mod mwp;
pub mod planetoid;
pub mod text;
pub mod ts;

pub use corrupt::{Corruption, MAX_SEVERITY, corrupt, corrupted_suite, suite_seed};
pub use csr::CsrMatrix;
pub use error::DataError;
pub use image::ImageDataset;
pub use mwp::MwpProblem;
pub use planetoid::Planetoid;
pub use text::{CharCorpus, CharVocab};
pub use ts::TimeSeriesDataset;

use candle_core::{Device, Tensor};

/// A train and a test split of the same data set.
#[derive(Debug, Clone)]
pub struct TrainTest<T> {
    /// The training split.
    pub train: T,
    /// The test split.
    pub test: T,
}

/// One mini-batch as candle tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Inputs, `f32`, shape `(batch, ..sample_shape)`.
    pub inputs: Tensor,
    /// Class ids, `u32`, shape `(batch,)` (what `candle_nn::loss::cross_entropy` expects).
    pub targets: Tensor,
}

/// A labelled data set of fixed-shape samples, for classification.
pub trait ClassificationSet {
    /// Number of samples.
    fn len(&self) -> usize;

    /// `true` when the set holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of classes; every label is below it.
    fn num_classes(&self) -> usize;

    /// Shape of one sample as it appears in [`Batch::inputs`], e.g. `[1, 28, 28]`.
    fn sample_shape(&self) -> Vec<usize>;

    /// The class id of every sample, in order.
    fn labels(&self) -> &[u32];

    /// Builds the batch made of the samples at `indices` (in that order, repeats allowed).
    ///
    /// Fails with [`DataError::Argument`] if an index is out of range.
    fn batch(&self, indices: &[usize], device: &Device) -> Result<Batch, DataError>;
}

/// Checks that every index is below `len`.
pub(crate) fn check_indices(indices: &[usize], len: usize) -> Result<(), DataError> {
    match indices.iter().find(|&&i| i >= len) {
        Some(i) => Err(DataError::argument(
            "indices",
            format!("index {i} is out of range for a data set of {len} samples"),
        )),
        None => Ok(()),
    }
}

/// The lines of a UTF-8 text, numbered from 1, without their `\n` / `\r\n`.
///
/// A line that is not valid UTF-8 gives an error naming it.
pub(crate) fn text_lines<'a>(
    bytes: &'a [u8],
    source: &'a str,
) -> impl Iterator<Item = Result<(usize, &'a str), DataError>> + 'a {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if ends_with_newline || bytes.is_empty() {
        lines.pop();
    }
    lines.into_iter().enumerate().map(move |(i, line)| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        std::str::from_utf8(line)
            .map(|text| (i + 1, text))
            .map_err(|e| DataError::line(source, i + 1, format!("not valid UTF-8: {e}")))
    })
}

/// Where a test finds the catalogued data set `name`: resolved through
/// [`crate::catalogue`] and [`crate::location::DataLocation::from_process`], so the
/// tests read exactly what `sparse-data fetch` (and CI's `.ci/fetch-test-data`)
/// put in the fetch root. `None`, after printing a "skipped" line that says how
/// to get the data, when it is absent.
#[cfg(test)]
pub(crate) fn test_dataset_path(name: &str) -> Option<std::path::PathBuf> {
    use crate::catalogue::{self, Presence};
    let location = crate::location::DataLocation::from_process(None);
    match catalogue::find(name).and_then(|dataset| dataset.resolve(&location)) {
        Ok(Presence::OnDisk(path)) => Some(path),
        Ok(Presence::Embedded) => panic!("{name} is embedded: load it without a path"),
        Err(err) => {
            println!("skipped: {err}");
            None
        }
    }
}
