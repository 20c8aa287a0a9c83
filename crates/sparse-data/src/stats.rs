//! Summary statistics of a data set, computed by loading it with the loaders
//! of [`crate::data`] (so `sparse-data stats` also checks that it parses).
//!
//! The JSON form (`sparse-data stats NAME --json`) has these stable keys:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `name` | string | the catalogue name |
//! | `kind` | string | `images`, `time-series`, `graph`, `math-word-problems`, `text` or `vocabulary` |
//! | `path` | string or null | where it was read from (null when embedded) |
//! | `splits` | array of `{name, samples}` | split names (`train`, `val`, `test`, `all`) and sizes |
//! | `classes` | integer or null | number of classes, where the set has labels |
//! | `sample_shape` | array of integers or null | shape of one sample: images `[c, h, w]`, time series `[dims, max_length]`, graphs `[features]` |
//! | `details` | object | kind-specific counts, see [`DatasetStats::details`] |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalogue::{CatalogueError, Dataset, Format, Presence};
use crate::data::{self, ClassificationSet, DataError};
use crate::location::DataLocation;

/// Why statistics could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The data set is unknown or absent.
    #[error(transparent)]
    Missing(#[from] CatalogueError),
    /// The data set is present but did not load.
    #[error("{name}: {source}")]
    Load {
        /// The data set.
        name: String,
        /// The loader's error (names the file and line or byte offset).
        #[source]
        source: DataError,
    },
    /// `--fold` is out of range, or given for a set without folds.
    #[error("--fold {fold}: {problem}")]
    Fold {
        /// The requested fold.
        fold: usize,
        /// What is wrong.
        problem: String,
    },
}

/// Options of a statistics computation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsOptions {
    /// The cross-validation fold of MAWPS / ASDiv-A (default 0).
    pub fold: Option<usize>,
}

/// One split and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Split {
    /// `train`, `val`, `test` or `all`.
    pub name: String,
    /// Number of samples (images, series, nodes, problems, characters).
    pub samples: usize,
}

/// The statistics of one data set (see the module docs for the JSON keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetStats {
    /// The catalogue name.
    pub name: String,
    /// What kind of data it is.
    pub kind: &'static str,
    /// Where it was read from; `None` when embedded.
    pub path: Option<PathBuf>,
    /// The splits and their sizes.
    pub splits: Vec<Split>,
    /// The number of classes, where the set has labels.
    pub classes: Option<usize>,
    /// The shape of one sample, where it has one.
    pub sample_shape: Option<Vec<usize>>,
    /// Kind-specific counts:
    /// - images: `pixel_max`;
    /// - time series: `dims`, `min_length`, `max_length`, `equal_length`, `missing_values`;
    /// - graph: `nodes`, `labelled_nodes`, `undirected_edges`, `features`, `nonzero_features`;
    /// - math word problems: `fold` (folded sets only), `max_numbers`;
    /// - text: `characters`, `vocabulary` (and `files` for a folder of texts);
    /// - vocabulary: `tokens`.
    pub details: BTreeMap<&'static str, serde_json::Value>,
}

impl DatasetStats {
    fn new(name: &str, kind: &'static str, path: Option<&Path>) -> Self {
        DatasetStats {
            name: name.to_string(),
            kind,
            path: path.map(Path::to_path_buf),
            splits: Vec::new(),
            classes: None,
            sample_shape: None,
            details: BTreeMap::new(),
        }
    }

    fn split(&mut self, name: &str, samples: usize) {
        self.splits.push(Split {
            name: name.to_string(),
            samples,
        });
    }

    fn detail(&mut self, key: &'static str, value: impl Into<serde_json::Value>) {
        self.details.insert(key, value.into());
    }

    /// The size of the named split, if there is one.
    pub fn split_size(&self, name: &str) -> Option<usize> {
        self.splits
            .iter()
            .find(|split| split.name == name)
            .map(|split| split.samples)
    }

    /// A few lines for people (what `sparse-data stats` prints without `--json`).
    pub fn to_text(&self) -> String {
        let mut out = format!("{} ({})\n", self.name, self.kind);
        match &self.path {
            Some(path) => out.push_str(&format!("  path: {}\n", path.display())),
            None => out.push_str("  path: (embedded in sparse-data)\n"),
        }
        let splits: Vec<String> = self
            .splits
            .iter()
            .map(|split| format!("{} {}", split.name, split.samples))
            .collect();
        out.push_str(&format!("  splits: {}\n", splits.join(", ")));
        if let Some(classes) = self.classes {
            out.push_str(&format!("  classes: {classes}\n"));
        }
        if let Some(shape) = &self.sample_shape {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            out.push_str(&format!("  sample shape: {}\n", dims.join(" x ")));
        }
        for (key, value) in &self.details {
            out.push_str(&format!("  {}: {value}\n", key.replace('_', " ")));
        }
        out
    }
}

/// Loads `dataset` from `location` and summarises it.
pub fn compute(
    dataset: &Dataset,
    location: &DataLocation,
    options: StatsOptions,
) -> Result<DatasetStats, StatsError> {
    let presence = dataset.resolve(location)?;
    let path = match &presence {
        Presence::OnDisk(path) => Some(path.as_path()),
        Presence::Embedded => None,
    };
    let folded = matches!(dataset.format, Format::MwpFolds { .. });
    if let (Some(fold), false) = (options.fold, folded) {
        return Err(StatsError::Fold {
            fold,
            problem: format!("{} has no cross-validation folds", dataset.name),
        });
    }
    let load = |source: DataError| StatsError::Load {
        name: dataset.name.to_string(),
        source,
    };
    let dir = path.unwrap_or(Path::new(""));
    let name = dataset.name;
    match dataset.format {
        Format::Idx => {
            let sets = data::idx::load_mnist_dir(dir).map_err(load)?;
            Ok(image_stats(
                name,
                path,
                &[("train", &sets.train), ("test", &sets.test)],
            ))
        }
        Format::EmbeddedDigits => {
            let set = data::digits::embedded().map_err(load)?;
            Ok(image_stats(name, path, &[("all", &set)]))
        }
        Format::Ts { problem } => {
            let sets = data::ts::load_ucr(dir, problem).map_err(load)?;
            Ok(series_stats(name, path, &sets.train, &sets.test))
        }
        Format::Planetoid => {
            let graph = data::Planetoid::load(dir).map_err(load)?;
            Ok(graph_stats(name, path, &graph))
        }
        Format::MwpFolds { folds } => {
            let fold = options.fold.unwrap_or(0);
            if fold >= folds {
                return Err(StatsError::Fold {
                    fold,
                    problem: format!("{name} has folds 0..{}", folds - 1),
                });
            }
            let fold_dir = dir.join(format!("fold{fold}"));
            let mut stats = mwp_stats(name, &fold_dir, path).map_err(load)?;
            stats.detail("fold", fold);
            Ok(stats)
        }
        Format::MwpSplit => mwp_stats(name, dir, path).map_err(load),
        Format::CharText { file } => {
            let corpus = data::CharCorpus::load(dir.join(file)).map_err(load)?;
            let (train, val) = corpus.train_val();
            let mut stats = DatasetStats::new(name, "text", path);
            stats.split("train", train.len());
            stats.split("val", val.len());
            stats.detail("characters", corpus.tokens().len());
            stats.detail("vocabulary", corpus.vocab().len());
            Ok(stats)
        }
        Format::TextDir => {
            let corpus = data::CharCorpus::load_txt_dir(dir).map_err(load)?;
            let files = count_files_with_suffix(dir, ".txt");
            let mut stats = DatasetStats::new(name, "text", path);
            stats.split("all", corpus.tokens().len());
            stats.detail("characters", corpus.tokens().len());
            stats.detail("vocabulary", corpus.vocab().len());
            stats.detail("files", files);
            Ok(stats)
        }
        Format::BertVocab => {
            let tokens = data::bert_vocab::load_vocab_txt(dir.join("vocab.txt")).map_err(load)?;
            let mut stats = DatasetStats::new(name, "vocabulary", path);
            stats.split("all", tokens.len());
            stats.detail("tokens", tokens.len());
            Ok(stats)
        }
    }
}

fn image_stats(
    name: &str,
    path: Option<&Path>,
    splits: &[(&str, &data::ImageDataset)],
) -> DatasetStats {
    let mut stats = DatasetStats::new(name, "images", path);
    for (split, set) in splits {
        stats.split(split, set.len());
    }
    if let Some((_, first)) = splits.first() {
        let classes = splits.iter().map(|(_, set)| set.num_classes()).max();
        stats.classes = classes;
        stats.sample_shape = Some(first.sample_shape());
        stats.detail("pixel_max", first.max_value());
    }
    stats
}

fn series_stats(
    name: &str,
    path: Option<&Path>,
    train: &data::TimeSeriesDataset,
    test: &data::TimeSeriesDataset,
) -> DatasetStats {
    let mut stats = DatasetStats::new(name, "time-series", path);
    stats.split("train", train.len());
    stats.split("test", test.len());
    stats.classes = Some(train.num_classes().max(test.num_classes()));
    let lengths = train.lengths().iter().chain(test.lengths());
    let min_length = lengths.clone().copied().min().unwrap_or(0);
    let max_length = lengths.copied().max().unwrap_or(0);
    stats.sample_shape = Some(vec![train.dims(), max_length]);
    stats.detail("dims", train.dims());
    stats.detail("min_length", min_length);
    stats.detail("max_length", max_length);
    stats.detail("equal_length", min_length == max_length);
    stats.detail(
        "missing_values",
        train.missing_values() + test.missing_values(),
    );
    stats
}

fn graph_stats(name: &str, path: Option<&Path>, graph: &data::Planetoid) -> DatasetStats {
    let mut stats = DatasetStats::new(name, "graph", path);
    stats.split("train", graph.train.len());
    stats.split("val", graph.val.len());
    stats.split("test", graph.test.len());
    stats.classes = Some(graph.num_classes);
    stats.sample_shape = Some(vec![graph.num_features]);
    stats.detail("nodes", graph.num_nodes);
    stats.detail("labelled_nodes", graph.num_labelled());
    stats.detail("undirected_edges", graph.edges.len());
    stats.detail("features", graph.num_features);
    stats.detail("nonzero_features", graph.features.nnz());
    stats
}

fn mwp_stats(name: &str, dir: &Path, path: Option<&Path>) -> Result<DatasetStats, DataError> {
    let train = data::mwp::load_mwp_csv(dir.join("train.csv"))?;
    let test = data::mwp::load_mwp_csv(dir.join("dev.csv"))?;
    let mut stats = DatasetStats::new(name, "math-word-problems", path);
    stats.split("train", train.len());
    stats.split("test", test.len());
    let max_numbers = train
        .iter()
        .chain(&test)
        .map(|problem| problem.numbers.len())
        .max()
        .unwrap_or(0);
    stats.detail("max_numbers", max_numbers);
    Ok(stats)
}

fn count_files_with_suffix(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue;

    fn empty_location() -> (tempfile::TempDir, DataLocation) {
        let dir = tempfile::tempdir().unwrap();
        let location =
            DataLocation::with_roots(dir.path().join("cache"), dir.path().join("shared"));
        (dir, location)
    }

    #[test]
    fn embedded_digits_need_no_data_dir() {
        let (_dir, location) = empty_location();
        let stats = compute(
            catalogue::find("digits").unwrap(),
            &location,
            StatsOptions::default(),
        )
        .unwrap();
        assert_eq!(stats.split_size("all"), Some(1797));
        assert_eq!(stats.classes, Some(10));
        assert_eq!(stats.sample_shape, Some(vec![1, 8, 8]));
        assert_eq!(stats.details["pixel_max"], 16);
        assert_eq!(stats.path, None);
    }

    #[test]
    fn json_keys_are_stable() {
        let (_dir, location) = empty_location();
        let stats = compute(
            catalogue::find("digits").unwrap(),
            &location,
            StatsOptions::default(),
        )
        .unwrap();
        let json = serde_json::to_value(&stats).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "classes",
                "details",
                "kind",
                "name",
                "path",
                "sample_shape",
                "splits"
            ]
        );
        assert_eq!(
            json["splits"][0],
            serde_json::json!({"name": "all", "samples": 1797})
        );
    }

    #[test]
    fn fold_is_checked() {
        let (dir, location) = empty_location();
        let err = compute(
            catalogue::find("digits").unwrap(),
            &location,
            StatsOptions { fold: Some(1) },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--fold 1: digits has no cross-validation folds"
        );
        // Make mawps present (fold0 files) so that the fold range is reached.
        let fold0 = dir.path().join("shared/mwp/cv_mawps/fold0");
        std::fs::create_dir_all(&fold0).unwrap();
        std::fs::write(fold0.join("train.csv"), "").unwrap();
        std::fs::write(fold0.join("dev.csv"), "").unwrap();
        let err = compute(
            catalogue::find("mawps").unwrap(),
            &location,
            StatsOptions { fold: Some(5) },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "--fold 5: mawps has folds 0..4");
    }

    #[test]
    fn absent_data_is_a_catalogue_error() {
        let (_dir, location) = empty_location();
        let err = compute(
            catalogue::find("gunpoint").unwrap(),
            &location,
            StatsOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, StatsError::Missing(CatalogueError::NotFetched { .. })),
            "{err}"
        );
    }

    #[test]
    fn ucr_layout_is_read_from_the_fixture_folder() {
        // The loaders' fixture `Tiny_{TRAIN,TEST}.ts`, placed where a fetch puts GunPoint.
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fixtures/ts");
        let (dir, location) = empty_location();
        let dest = dir.path().join("cache/ucr/Tiny");
        std::fs::create_dir_all(&dest).unwrap();
        let mut listed = String::from("fixture\n");
        for split in ["TRAIN", "TEST"] {
            let file = format!("Tiny_{split}.ts");
            std::fs::copy(fixtures.join(&file), dest.join(&file)).unwrap();
            listed.push_str(&file);
            listed.push('\n');
        }
        std::fs::write(dest.join(catalogue::COMPLETE_STAMP), listed).unwrap();
        let tiny = Dataset {
            name: "tiny",
            format: Format::Ts { problem: "Tiny" },
            storage: catalogue::Storage::Fetched(catalogue::Extraction {
                dest: "ucr/Tiny",
                ..*catalogue::find("gunpoint").unwrap().extraction().unwrap()
            }),
            ..*catalogue::find("gunpoint").unwrap()
        };
        let stats = compute(&tiny, &location, StatsOptions::default()).unwrap();
        let train = crate::data::ts::load_ts(fixtures.join("Tiny_TRAIN.ts")).unwrap();
        assert_eq!(stats.split_size("train"), Some(train.len()));
        assert_eq!(stats.details["dims"], train.dims());
        assert_eq!(stats.kind, "time-series");
    }
}
