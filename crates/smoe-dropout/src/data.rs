//! The character-level text: tiny-shakespeare by default (from `../shared`, through
//! sparse-data's catalogue), or any UTF-8 file.

use std::path::Path;

use sparse_data::catalogue::{self, Presence};
use sparse_data::data::text::CharCorpus;
use sparse_data::location::DataLocation;
use sparse_repro::HarnessError;

use crate::error::Result;

/// The catalogue name of the default corpus.
pub const TINY_SHAKESPEARE: &str = "tinyshakespeare";

/// A corpus split into training, validation and test characters: the usual first
/// 90 % for training; the last 10 % (char-rnn's validation text) halved into
/// validation and test, so that nothing is chosen on the numbers we report.
#[derive(Debug, Clone)]
pub struct CharData {
    /// The corpus's characters, sorted (id = position).
    pub chars: Vec<char>,
    /// Training ids.
    pub train: Vec<u32>,
    /// Validation ids.
    pub validation: Vec<u32>,
    /// Test ids.
    pub test: Vec<u32>,
}

impl CharData {
    /// Splits `corpus`.
    pub fn from_corpus(corpus: &CharCorpus) -> Result<Self> {
        let (train, held_out) = corpus.train_val();
        let half = held_out.len() / 2;
        if train.len() < 2 || half < 2 {
            return Err(HarnessError::invalid(
                "corpus",
                corpus.tokens().len(),
                "too few characters to split into training, validation and test text",
            )
            .into());
        }
        Ok(Self {
            chars: corpus.vocab().chars().to_vec(),
            train: train.to_vec(),
            validation: held_out[..half].to_vec(),
            test: held_out[half..].to_vec(),
        })
    }

    /// Loads `dataset`: `tinyshakespeare` (found through `data_dir`, the environment
    /// or `../shared`) or a path to a UTF-8 text file.
    pub fn load(dataset: &str, data_dir: Option<&Path>) -> Result<Self> {
        let path = if dataset == TINY_SHAKESPEARE {
            let location = DataLocation::from_process(data_dir);
            match catalogue::find(dataset)?.resolve(&location)? {
                Presence::OnDisk(dir) => dir.join("input.txt"),
                Presence::Embedded => {
                    return Err(HarnessError::invalid(
                        "dataset",
                        dataset,
                        "expected a file on disk",
                    )
                    .into());
                }
            }
        } else {
            let path = Path::new(dataset);
            if !path.is_file() {
                return Err(HarnessError::invalid(
                    "dataset",
                    dataset,
                    "neither `tinyshakespeare` nor a readable text file",
                )
                .into());
            }
            path.to_path_buf()
        };
        Self::from_corpus(&CharCorpus::load(&path)?)
    }

    /// The vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.chars.len()
    }
}

/// A loaded data set of either task.
#[derive(Debug, Clone)]
pub enum TaskData {
    /// A character-level text.
    Text(CharData),
    /// A math-word-problem set.
    Mwp(crate::mwp::data::MwpData),
}

impl TaskData {
    /// Loads `dataset`: a math-word-problem set by name (`mawps`, `asdiv-a`,
    /// `svamp`), otherwise a text ([`CharData::load`]).
    pub fn load(dataset: &str, data_dir: Option<&Path>) -> Result<Self> {
        if crate::mwp::data::is_mwp(dataset) {
            Ok(Self::Mwp(crate::mwp::data::MwpData::load(
                dataset, data_dir,
            )?))
        } else {
            Ok(Self::Text(CharData::load(dataset, data_dir)?))
        }
    }
}
