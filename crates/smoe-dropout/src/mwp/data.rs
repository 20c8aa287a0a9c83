//! Math word problems as sequences: questions through the BERT WordPiece tokenizer
//! (uncased `vocab.txt`, `tokenizers`), prefix equations as target tokens.
//!
//! No pretrained BERT exists here, so the encoder is trained from scratch and only
//! needs embeddings for the WordPiece tokens the training questions use: source ids
//! are remapped to that compact vocabulary (`[PAD]`, `[UNK]`, then the seen BERT ids
//! in id order), and a test token never seen in training becomes `[UNK]`.
//!
//! About 15 reference equations of these sets do not evaluate to their stored
//! answer. Training drops them (a target that contradicts its answer teaches the
//! wrong equation); test sets keep them and, like every problem, score a prediction
//! by its value against the stored answer, so they count against every arm alike.
//! Both counts are recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sparse_data::catalogue::{self, Presence};
use sparse_data::data::mwp::{ANSWER_TOLERANCE, MwpProblem, load_mwp_csv};
use sparse_data::location::DataLocation;
use sparse_repro::HarnessError;
use tokenizers::Tokenizer;

use crate::error::Result;

/// The math-word-problem sets, as the catalogue names them.
pub const MWP_SETS: [&str; 3] = ["mawps", "asdiv-a", "svamp"];
/// The catalogue entry of the BERT vocabulary.
pub const BERT_VOCAB: &str = "bert-vocab";
/// The longest question kept, in WordPiece tokens with `[CLS]` and `[SEP]`
/// (longer ones are cut at the end).
pub const MAX_SOURCE: usize = 128;

/// Target specials: padding, start and end of an equation.
pub const PAD: u32 = 0;
/// The start token of every decoder input.
pub const BOS: u32 = 1;
/// The end of an equation.
pub const EOS: u32 = 2;
const TARGET_SPECIALS: [&str; 3] = ["<pad>", "<s>", "</s>"];
const OPERATORS: [&str; 4] = ["+", "-", "*", "/"];

/// The folds of the cross-validated sets.
pub const FOLDS: usize = 5;

/// A math-word-problem set and, for MAWPS and ASDiv-A, a fold: `mawps` (fold 0),
/// `mawps-fold3`, `asdiv-a-fold1`, `svamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MwpSet {
    /// The catalogue name.
    pub name: &'static str,
    /// The fold (0 for SVAMP, which has one split).
    pub fold: usize,
}

impl MwpSet {
    /// Parses a data-set name; `None` when it names no math-word-problem set.
    pub fn parse(dataset: &str) -> Option<Self> {
        MWP_SETS.iter().find_map(|&name| {
            let rest = dataset.strip_prefix(name)?;
            if rest.is_empty() {
                return Some(Self { name, fold: 0 });
            }
            let fold: usize = rest.strip_prefix("-fold")?.parse().ok()?;
            (name != "svamp" && fold < FOLDS).then_some(Self { name, fold })
        })
    }

    /// The training and test CSV files under the set's catalogue folder.
    pub fn files(&self) -> (String, String) {
        if self.name == "svamp" {
            ("train.csv".into(), "dev.csv".into())
        } else {
            (
                format!("fold{}/train.csv", self.fold),
                format!("fold{}/dev.csv", self.fold),
            )
        }
    }
}

/// Whether `name` is a math-word-problem set (see [`MwpSet::parse`]).
pub fn is_mwp(name: &str) -> bool {
    MwpSet::parse(name).is_some()
}

/// One problem as ids.
#[derive(Debug, Clone)]
pub struct Example {
    /// Compact source ids, `[CLS] … [SEP]`.
    pub source: Vec<u32>,
    /// Target ids `equation… </s>` (without the start token); empty when the
    /// equation uses a token outside the target vocabulary (test only).
    pub target: Vec<u32>,
    /// The problem (numbers and answer for scoring).
    pub problem: MwpProblem,
}

/// A set's training and test problems, encoded.
#[derive(Debug, Clone)]
pub struct MwpData {
    /// The set's name (`mawps`, `asdiv-a`, `svamp`).
    pub name: String,
    /// BERT id of each compact source id (0: `[PAD]`, 1: `[UNK]`).
    pub source_vocab: Vec<u32>,
    /// The target tokens (id = position).
    pub target_vocab: Vec<String>,
    /// Training examples (consistent equations only).
    pub train: Vec<Example>,
    /// Test examples (all).
    pub test: Vec<Example>,
    /// Training problems dropped because their equation misses their answer.
    pub dropped_inconsistent: usize,
    /// Test problems whose reference equation misses their answer.
    pub test_inconsistent: usize,
}

/// Whether a problem's reference equation evaluates to its stored answer.
pub fn is_consistent(problem: &MwpProblem) -> bool {
    problem
        .evaluate()
        .is_ok_and(|v| (v - problem.answer).abs() < ANSWER_TOLERANCE)
}

fn on_disk(name: &str, location: &DataLocation) -> Result<PathBuf> {
    match catalogue::find(name)?.resolve(location)? {
        Presence::OnDisk(path) => Ok(path),
        Presence::Embedded => {
            Err(HarnessError::invalid("dataset", name, "expected files on disk").into())
        }
    }
}

/// The uncased BERT tokenizer from the catalogue's `bert-vocab`.
pub fn bert_tokenizer(data_dir: Option<&Path>) -> Result<Tokenizer> {
    let location = DataLocation::from_process(data_dir);
    let dir = on_disk(BERT_VOCAB, &location)?;
    Ok(sparse_data::data::bert_vocab::load_tokenizer(
        dir.join("vocab.txt"),
    )?)
}

/// WordPiece ids of `question` with `[CLS]` and `[SEP]`, cut to [`MAX_SOURCE`].
pub fn wordpieces(tokenizer: &Tokenizer, question: &str) -> Result<Vec<u32>> {
    let encoding = tokenizer
        .encode(question, true)
        .map_err(|e| HarnessError::invalid("question", question, format!("tokenizer: {e}")))?;
    let mut ids = encoding.get_ids().to_vec();
    if ids.len() > MAX_SOURCE {
        let sep = ids[ids.len() - 1];
        ids.truncate(MAX_SOURCE - 1);
        ids.push(sep);
    }
    Ok(ids)
}

impl MwpData {
    /// Loads set `name` ([`MwpSet::parse`]: `mawps` is fold 0, `mawps-fold3` fold 3)
    /// and the BERT vocabulary found through `data_dir`, the environment or
    /// `../shared`.
    pub fn load(name: &str, data_dir: Option<&Path>) -> Result<Self> {
        let set = MwpSet::parse(name).ok_or_else(|| {
            HarnessError::invalid(
                "dataset",
                name,
                "expected mawps, asdiv-a (optionally -fold0 to -fold4) or svamp",
            )
        })?;
        let (train_file, test_file) = set.files();
        let location = DataLocation::from_process(data_dir);
        let dir = on_disk(set.name, &location)?;
        let train = load_mwp_csv(dir.join(train_file))?;
        let test = load_mwp_csv(dir.join(test_file))?;
        Self::from_problems(name, &bert_tokenizer(data_dir)?, train, test)
    }

    /// Encodes `train` and `test` problems with `tokenizer`.
    pub fn from_problems(
        name: &str,
        tokenizer: &Tokenizer,
        train: Vec<MwpProblem>,
        test: Vec<MwpProblem>,
    ) -> Result<Self> {
        let total_train = train.len();
        let train: Vec<MwpProblem> = train.into_iter().filter(is_consistent).collect();
        let dropped_inconsistent = total_train - train.len();
        let test_inconsistent = test.iter().filter(|p| !is_consistent(p)).count();
        if train.is_empty() || test.is_empty() {
            return Err(
                HarnessError::invalid("dataset", name, "needs training and test problems").into(),
            );
        }
        let train_pieces = train
            .iter()
            .map(|p| wordpieces(tokenizer, &p.question))
            .collect::<Result<Vec<_>>>()?;
        let test_pieces = test
            .iter()
            .map(|p| wordpieces(tokenizer, &p.question))
            .collect::<Result<Vec<_>>>()?;
        let seen: BTreeSet<u32> = train_pieces.iter().flatten().copied().collect();
        let unk = tokenizer.token_to_id("[UNK]").unwrap_or(0);
        let pad = tokenizer.token_to_id("[PAD]").unwrap_or(0);
        let mut source_vocab = vec![pad, unk];
        source_vocab.extend(seen.iter().filter(|&&id| id != pad && id != unk));
        let compact: BTreeMap<u32, u32> = source_vocab
            .iter()
            .enumerate()
            .skip(2)
            .map(|(i, &id)| (id, i as u32))
            .collect();
        let remap = |pieces: &[u32]| -> Vec<u32> {
            pieces
                .iter()
                .map(|id| *compact.get(id).unwrap_or(&1))
                .collect()
        };

        let numbers = train
            .iter()
            .chain(&test)
            .map(|p| p.numbers.len())
            .max()
            .unwrap_or(0);
        let constants: BTreeSet<&str> = train
            .iter()
            .flat_map(|p| p.equation.iter())
            .map(String::as_str)
            .filter(|t| !OPERATORS.contains(t) && !t.starts_with("number"))
            .collect();
        let mut target_vocab: Vec<String> = TARGET_SPECIALS
            .iter()
            .chain(&OPERATORS)
            .map(|s| s.to_string())
            .collect();
        target_vocab.extend((0..numbers).map(|i| format!("number{i}")));
        target_vocab.extend(constants.iter().map(|c| c.to_string()));
        let target_index: BTreeMap<&str, u32> = target_vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let encode_target = |equation: &[String]| -> Vec<u32> {
            let ids: Option<Vec<u32>> = equation
                .iter()
                .map(|t| target_index.get(t.as_str()).copied())
                .collect();
            ids.map(|mut ids| {
                ids.push(EOS);
                ids
            })
            .unwrap_or_default()
        };
        let examples = |problems: Vec<MwpProblem>, pieces: Vec<Vec<u32>>| -> Vec<Example> {
            problems
                .into_iter()
                .zip(pieces)
                .map(|(problem, pieces)| Example {
                    source: remap(&pieces),
                    target: encode_target(&problem.equation),
                    problem,
                })
                .collect()
        };
        Ok(Self {
            name: name.to_string(),
            source_vocab,
            train: examples(train, train_pieces),
            test: examples(test, test_pieces),
            target_vocab,
            dropped_inconsistent,
            test_inconsistent,
        })
    }

    /// The longest target with its end token, over both splits.
    pub fn max_target(&self) -> usize {
        self.train
            .iter()
            .chain(&self.test)
            .map(|e| e.target.len().max(e.problem.equation.len() + 1))
            .max()
            .unwrap_or(1)
    }

    /// The tokens of target ids up to the first end token.
    pub fn equation(&self, ids: &[u32]) -> Vec<&str> {
        ids.iter()
            .take_while(|&&id| id != EOS)
            .filter_map(|&id| self.target_vocab.get(id as usize).map(String::as_str))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names_carry_folds() {
        let parse = |name| MwpSet::parse(name).map(|s| (s.name, s.fold));
        assert_eq!(parse("mawps"), Some(("mawps", 0)));
        assert_eq!(parse("asdiv-a-fold4"), Some(("asdiv-a", 4)));
        assert_eq!(parse("svamp"), Some(("svamp", 0)));
        for bad in [
            "mawps-fold5",
            "svamp-fold1",
            "mawps-fold",
            "mawpsx",
            "tinyshakespeare",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let files = MwpSet::parse("mawps-fold2").unwrap().files();
        assert_eq!(files, ("fold2/train.csv".into(), "fold2/dev.csv".into()));
    }
}
