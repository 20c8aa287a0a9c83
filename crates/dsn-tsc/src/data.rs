//! UCR/UEA data for DSN: catalogue names or `.ts` paths, resolved through
//! sparse-data's catalogue and data location, loaded with its `.ts` loader.
//!
//! What this module adds to the loader is DSN's input convention: both splits
//! are padded **at the end with zeros to one common length** (the longest case
//! of either split, as the official UEA loader pads to the archive's maximum) and
//! missing values become 0 (official: NaN padding, then NaN → 0). Label ids follow
//! the training split's `@classLabel` order; the test split is remapped by name.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sparse_data::catalogue::{self, Format, Presence};
use sparse_data::data::ts::load_ucr;
use sparse_data::data::{ClassificationSet, TimeSeriesDataset};
use sparse_data::location::DataLocation;
use sparse_repro::batch::gather_batch;

use crate::error::{Error, Result};

/// One split as a dense `[n, dims, length]` store.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    values: Vec<f32>,
    labels: Vec<u32>,
}

impl Split {
    /// A split from raw values (`n · dims · length`, row-major) and labels.
    pub fn new(values: Vec<f32>, labels: Vec<u32>) -> Self {
        Self { values, labels }
    }

    /// Number of cases.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no case.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The values, `[n, dims, length]` row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The class ids.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
}

/// A train/test pair ready for the SCNN.
#[derive(Debug, Clone, PartialEq)]
pub struct TsData {
    /// The data set's name (e.g. `GunPoint`).
    pub name: String,
    /// Dimensions (input channels).
    pub dims: usize,
    /// Common length of every case after padding.
    pub length: usize,
    /// Class names in id order.
    pub classes: Vec<String>,
    /// The training split.
    pub train: Split,
    /// The test split.
    pub test: Split,
}

impl TsData {
    /// Pads both splits of a loaded pair to a common length.
    pub fn from_splits(
        name: impl Into<String>,
        train: &TimeSeriesDataset,
        test: &TimeSeriesDataset,
    ) -> Result<Self> {
        let name = name.into();
        let bad = |reason: String| Error::BadDataset {
            path: PathBuf::from(&name),
            reason,
        };
        if train.is_empty() || test.is_empty() {
            return Err(bad("both splits need at least one case".into()));
        }
        if train.dims() != test.dims() {
            return Err(bad(format!(
                "train has {} dimensions, test {}",
                train.dims(),
                test.dims()
            )));
        }
        if train.class_names() != test.class_names() {
            return Err(bad("train and test list different classes".into()));
        }
        if train.num_classes() < 2 {
            return Err(bad(format!(
                "{} class(es); at least 2 are needed",
                train.num_classes()
            )));
        }
        let length = train.max_length().max(test.max_length());
        Ok(Self {
            dims: train.dims(),
            length,
            classes: train.class_names().to_vec(),
            train: pad_split(train, length),
            test: pad_split(test, length),
            name,
        })
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The shape of one case, `[dims, length]`.
    pub fn sample_shape(&self) -> [usize; 2] {
        [self.dims, self.length]
    }

    /// The batches of `split` in order, `batch_size` cases each (for evaluation).
    pub fn ordered_batches<'a>(
        &'a self,
        split: &'a Split,
        batch_size: usize,
        device: &'a Device,
    ) -> impl Iterator<Item = sparse_repro::HarnessResult<(Tensor, Tensor)>> + 'a {
        let n = split.len();
        (0..n.div_ceil(batch_size.max(1))).map(move |b| {
            let indices: Vec<usize> = (b * batch_size..((b + 1) * batch_size).min(n)).collect();
            gather_batch(
                &split.values,
                &self.sample_shape(),
                &split.labels,
                &indices,
                device,
            )
        })
    }

    /// `(inputs [b, dims, length], labels [b])` of the cases `indices` of `split`.
    pub fn batch(
        &self,
        split: &Split,
        indices: &[usize],
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        Ok(gather_batch(
            &split.values,
            &self.sample_shape(),
            &split.labels,
            indices,
            device,
        )?)
    }
}

/// Every case of `set` padded at the end with zeros to `length`; NaN → 0.
pub fn pad_split(set: &TimeSeriesDataset, length: usize) -> Split {
    let own = set.max_length();
    let values = set.padded(0.0, 0.0);
    let dims = set.dims();
    let mut out = Vec::with_capacity(set.len() * dims * length);
    for row in values.chunks_exact(own.max(1)) {
        out.extend_from_slice(row);
        out.extend(std::iter::repeat_n(0.0, length - own));
    }
    Split::new(out, set.labels().to_vec())
}

/// Where a data set comes from: a catalogue name or a `.ts` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSource {
    /// A UCR/UEA name of sparse-data's catalogue (`gunpoint`, `BasicMotions`, ...).
    Catalogue(String),
    /// `<dir>/<Name>_TRAIN.ts` (its `_TEST.ts` sibling is loaded too).
    Path(PathBuf),
    /// The generated two-class set of [`synthetic`] (`synthetic:<train>:<test>:<length>:<seed>`).
    Synthetic {
        /// Training cases.
        n_train: usize,
        /// Test cases.
        n_test: usize,
        /// Length of every case.
        length: usize,
        /// Generator seed.
        seed: u64,
    },
}

impl DatasetSource {
    /// A path when `text` ends in `.ts` or names an existing file,
    /// `synthetic:<train>:<test>:<length>:<seed>` for the generated set, else a
    /// catalogue name.
    pub fn parse(text: &str) -> Self {
        if let Some(rest) = text.strip_prefix("synthetic:") {
            let parts: Vec<Option<u64>> = rest.split(':').map(|p| p.parse().ok()).collect();
            if let [Some(a), Some(b), Some(c), Some(d)] = parts[..] {
                return Self::Synthetic {
                    n_train: a as usize,
                    n_test: b as usize,
                    length: c as usize,
                    seed: d,
                };
            }
        }
        if text.ends_with(".ts") || Path::new(text).is_file() {
            Self::Path(PathBuf::from(text))
        } else {
            Self::Catalogue(text.to_string())
        }
    }

    /// How the source is written on the command line and in checkpoints.
    pub fn to_arg(&self) -> String {
        match self {
            Self::Catalogue(name) => name.clone(),
            Self::Path(path) => path.display().to_string(),
            Self::Synthetic {
                n_train,
                n_test,
                length,
                seed,
            } => format!("synthetic:{n_train}:{n_test}:{length}:{seed}"),
        }
    }

    /// Loads the train/test pair.
    pub fn load(&self, location: &DataLocation) -> Result<TsData> {
        let (dir, problem) = match self {
            Self::Catalogue(name) => {
                let entry = catalogue::find(name)?;
                let Format::Ts { problem } = entry.format else {
                    return Err(Error::UnknownDataset(name.clone()));
                };
                match entry.resolve(location)? {
                    Presence::OnDisk(dir) => (dir, problem.to_string()),
                    Presence::Embedded => return Err(Error::UnknownDataset(name.clone())),
                }
            }
            Self::Path(path) => {
                let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
                let problem = file
                    .strip_suffix("_TRAIN.ts")
                    .ok_or_else(|| Error::BadDataset {
                        path: path.clone(),
                        reason: "expected a file named <Name>_TRAIN.ts".into(),
                    })?;
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (dir, problem.to_string())
            }
            Self::Synthetic {
                n_train,
                n_test,
                length,
                seed,
            } => {
                if *n_train < 2 || *n_test < 1 || *length < 1 {
                    return Err(Error::UnknownDataset(self.to_arg()));
                }
                return Ok(synthetic(*n_train, *n_test, *length, *seed));
            }
        };
        let pair = load_ucr(&dir, &problem)?;
        TsData::from_splits(problem, &pair.train, &pair.test)
    }
}

/// A small synthetic two-class set for the `smoke` preset and tests: class 0 is a
/// slow sine, class 1 a fast one, both with seeded noise and random phase.
pub fn synthetic(n_train: usize, n_test: usize, length: usize, seed: u64) -> TsData {
    let mut rng: ChaCha8Rng = sparse_repro::rng::derive_rng(seed, "synthetic-data");
    let mut make = |n: usize| {
        let mut values = Vec::with_capacity(n * length);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = (i % 2) as u32;
            let freq = if class == 0 { 1.0 } else { 3.0 };
            let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
            for t in 0..length {
                let x = t as f32 / length as f32 * std::f32::consts::TAU * freq + phase;
                values.push(x.sin() + rng.random_range(-0.3..0.3));
            }
            labels.push(class);
        }
        Split::new(values, labels)
    };
    let train = make(n_train);
    let test = make(n_test);
    TsData {
        name: "Synthetic".into(),
        dims: 1,
        length,
        classes: vec!["slow".into(), "fast".into()],
        train,
        test,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparse_data::data::ts::parse_ts;

    const TRAIN: &str = "@problemName P\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true x y\n@data\n1,2,3:4,5,6:y\n7,?:8,9:x\n";
    const TEST: &str = "@problemName P\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true y x\n@data\n1,2,3,4:5,6,7,8:x\n";

    #[test]
    fn unequal_lengths_pad_to_the_longest_of_both_splits() {
        let train = parse_ts(TRAIN.as_bytes(), "train").unwrap();
        let test = parse_ts(TEST.as_bytes(), "test")
            .unwrap()
            .with_class_names(train.class_names())
            .unwrap();
        let data = TsData::from_splits("P", &train, &test).unwrap();
        assert_eq!((data.dims, data.length), (2, 4));
        // case 0: dims padded from 3 to 4; case 1: length 2, missing -> 0, padded to 4
        assert_eq!(
            data.train.values(),
            &[
                1., 2., 3., 0., 4., 5., 6., 0., 7., 0., 0., 0., 8., 9., 0., 0.
            ]
        );
        assert_eq!(data.train.labels(), &[1, 0]);
        // the test header lists "y x": its x is still id 0
        assert_eq!(data.test.labels(), &[0]);
        assert_eq!(data.test.values().len(), 8);
        let (x, y) = data.batch(&data.train, &[1, 0], &Device::Cpu).unwrap();
        assert_eq!(x.dims(), &[2, 2, 4]);
        assert_eq!(y.to_vec1::<u32>().unwrap(), vec![0, 1]);
    }

    #[test]
    fn bad_pairs_are_rejected_with_the_name() {
        let train = parse_ts(TRAIN.as_bytes(), "train").unwrap();
        let uni = parse_ts(
            b"@univariate true\n@classLabel true x y\n@data\n1,2:x\n",
            "u",
        )
        .unwrap();
        let err = TsData::from_splits("P", &train, &uni)
            .unwrap_err()
            .to_string();
        assert!(err.contains("P") && err.contains("dimensions"), "{err}");
        let one_class =
            parse_ts(b"@univariate true\n@classLabel true x\n@data\n1,2:x\n", "o").unwrap();
        assert!(TsData::from_splits("O", &one_class, &one_class).is_err());
    }

    #[test]
    fn sources_parse_and_paths_need_train_files() {
        assert_eq!(
            DatasetSource::parse("gunpoint"),
            DatasetSource::Catalogue("gunpoint".into())
        );
        assert_eq!(
            DatasetSource::parse("/x/Foo_TRAIN.ts"),
            DatasetSource::Path(PathBuf::from("/x/Foo_TRAIN.ts"))
        );
        let loc = DataLocation::with_roots("/nonexistent", "/nonexistent");
        assert!(matches!(
            DatasetSource::Path(PathBuf::from("/x/Foo.ts")).load(&loc),
            Err(Error::BadDataset { .. })
        ));
        assert!(DatasetSource::Catalogue("nope".into()).load(&loc).is_err());
        let syn = DatasetSource::parse("synthetic:6:4:10:3");
        assert_eq!(syn.to_arg(), "synthetic:6:4:10:3");
        assert_eq!(syn.load(&loc).unwrap(), synthetic(6, 4, 10, 3));
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../datasets/fixtures/ts/Tiny_TRAIN.ts"
        );
        let data = DatasetSource::parse(fixtures).load(&loc).unwrap();
        assert_eq!(
            (data.name.as_str(), data.dims, data.num_classes()),
            ("Tiny", 1, 2)
        );
    }

    #[test]
    fn synthetic_is_deterministic() {
        let a = synthetic(6, 4, 10, 3);
        assert_eq!(a, synthetic(6, 4, 10, 3));
        assert_ne!(a, synthetic(6, 4, 10, 4));
        assert_eq!(a.train.labels(), &[0, 1, 0, 1, 0, 1]);
        assert_eq!(a.train.values().len(), 60);
    }
}
