//! Math word problems (MAWPS, ASDiv-A, SVAMP) and a prefix-equation evaluator.
//!
//! The CSV files have a header line with at least the columns `Question`
//! (numbers replaced by `number0`, `number1`, …), `Numbers` (space-separated
//! values), `Equation` (prefix notation over `numberK`, numeric constants and
//! `+ - * /`) and `Answer`; other columns are ignored. The usual metric is
//! value accuracy: [`evaluate_prefix`] the predicted equation with the
//! problem's numbers and compare with the answer ([`MwpProblem::is_correct`]).

use std::io::Read;
use std::path::Path;

use super::DataError;
use super::error::{read_all, read_file, source_name};

/// The tolerance of value accuracy: `|predicted - answer| < 1e-4`.
pub const ANSWER_TOLERANCE: f64 = 1e-4;

/// One math word problem.
#[derive(Debug, Clone, PartialEq)]
pub struct MwpProblem {
    /// The question text, with numbers replaced by `number0`, `number1`, ….
    pub question: String,
    /// The values of `number0`, `number1`, … in order.
    pub numbers: Vec<f64>,
    /// The reference equation as prefix tokens, e.g. `["*", "number0", "number1"]`.
    pub equation: Vec<String>,
    /// The reference answer.
    pub answer: f64,
}

impl MwpProblem {
    /// Evaluates the reference equation with this problem's numbers.
    pub fn evaluate(&self) -> Result<f64, EquationError> {
        evaluate_prefix(&self.equation, &self.numbers)
    }

    /// `true` when `equation` evaluates to this problem's answer within
    /// [`ANSWER_TOLERANCE`]; a malformed equation is simply wrong.
    pub fn is_correct<S: AsRef<str>>(&self, equation: &[S]) -> bool {
        evaluate_prefix(equation, &self.numbers)
            .is_ok_and(|value| (value - self.answer).abs() < ANSWER_TOLERANCE)
    }
}

/// Why a prefix equation cannot be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EquationError {
    /// The token list is empty.
    #[error("empty equation")]
    Empty,
    /// A token is neither an operator, `numberK` nor a number.
    #[error("token {position}: {token:?} is not an operator, numberK or a number")]
    UnknownToken {
        /// 0-based token position.
        position: usize,
        /// The token.
        token: String,
    },
    /// `numberK` with `K` not below the number of numbers.
    #[error("token {position}: number{index} does not exist (the problem has {available} numbers)")]
    UnknownNumber {
        /// 0-based token position.
        position: usize,
        /// The `K` of `numberK`.
        index: usize,
        /// How many numbers the problem has.
        available: usize,
    },
    /// An operator lacks operands.
    #[error("operator {operator:?} at token {position} lacks an operand")]
    MissingOperand {
        /// 0-based token position of the operator.
        position: usize,
        /// The operator.
        operator: char,
    },
    /// The tokens form more than one expression (too few operators).
    #[error("{count} operands left over: too few operators for one expression")]
    ExtraOperands {
        /// How many operands are left over.
        count: usize,
    },
    /// Division by zero.
    #[error("division by zero at token {position}")]
    DivisionByZero {
        /// 0-based token position of the `/`.
        position: usize,
    },
}

enum Token {
    Operator(char),
    Value(f64),
}

fn classify(position: usize, token: &str, numbers: &[f64]) -> Result<Token, EquationError> {
    if let [op @ (b'+' | b'-' | b'*' | b'/')] = token.as_bytes() {
        return Ok(Token::Operator(char::from(*op)));
    }
    if let Some(index) = token.strip_prefix("number") {
        let index: usize = index.parse().map_err(|_| EquationError::UnknownToken {
            position,
            token: token.to_owned(),
        })?;
        return numbers
            .get(index)
            .map(|&v| Token::Value(v))
            .ok_or(EquationError::UnknownNumber {
                position,
                index,
                available: numbers.len(),
            });
    }
    token
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Token::Value)
        .ok_or_else(|| EquationError::UnknownToken {
            position,
            token: token.to_owned(),
        })
}

/// Evaluates a prefix equation over `numberK` (the `K`-th of `numbers`),
/// numeric constants and the binary operators `+ - * /`.
///
/// ```
/// use sparse_data::data::mwp::evaluate_prefix;
/// let value = evaluate_prefix(&["-", "*", "number0", "number1", "2.0"], &[3.0, 4.0]).unwrap();
/// assert_eq!(value, 10.0);
/// ```
pub fn evaluate_prefix<S: AsRef<str>>(tokens: &[S], numbers: &[f64]) -> Result<f64, EquationError> {
    if tokens.is_empty() {
        return Err(EquationError::Empty);
    }
    // Scan right to left with a value stack: no recursion, so no stack overflow on long input.
    let mut stack: Vec<f64> = Vec::with_capacity(tokens.len());
    for (position, token) in tokens.iter().enumerate().rev() {
        match classify(position, token.as_ref(), numbers)? {
            Token::Value(v) => stack.push(v),
            Token::Operator(operator) => {
                let (Some(left), Some(right)) = (stack.pop(), stack.pop()) else {
                    return Err(EquationError::MissingOperand { position, operator });
                };
                stack.push(match operator {
                    '+' => left + right,
                    '-' => left - right,
                    '*' => left * right,
                    _ if right == 0.0 => return Err(EquationError::DivisionByZero { position }),
                    _ => left / right,
                });
            }
        }
    }
    match stack.as_slice() {
        [value] => Ok(*value),
        _ => Err(EquationError::ExtraOperands {
            count: stack.len().saturating_sub(1),
        }),
    }
}

fn column(headers: &csv::StringRecord, name: &str, source: &str) -> Result<usize, DataError> {
    headers
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| DataError::line(source, 1, format!("missing column {name:?} in the header")))
}

/// Parses a MWP CSV file from memory; `source` names it in errors.
pub fn parse_mwp_csv(bytes: &[u8], source: &str) -> Result<Vec<MwpProblem>, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let csv_error = |e: csv::Error| {
        let line = e.position().map_or(1, |p| p.line() as usize);
        DataError::line(source, line, format!("malformed CSV: {e}"))
    };
    let headers = reader.headers().map_err(csv_error)?.clone();
    let [question, numbers, equation, answer] =
        ["Question", "Numbers", "Equation", "Answer"].map(|name| column(&headers, name, source));
    let (question, numbers, equation, answer) = (question?, numbers?, equation?, answer?);
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let field = |k: usize, name: &str| {
            record
                .get(k)
                .ok_or_else(|| DataError::line(source, line, format!("missing field {name:?}")))
        };
        let numbers: Vec<f64> = field(numbers, "Numbers")?
            .split_whitespace()
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        DataError::line(source, line, format!("Numbers: {v:?} is not a number"))
                    })
            })
            .collect::<Result<_, _>>()?;
        let answer_text = field(answer, "Answer")?.trim();
        let answer = answer_text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                DataError::line(
                    source,
                    line,
                    format!("Answer: {answer_text:?} is not a number"),
                )
            })?;
        let equation: Vec<String> = field(equation, "Equation")?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if equation.is_empty() {
            return Err(DataError::line(source, line, "empty Equation"));
        }
        problems.push(MwpProblem {
            question: field(question, "Question")?.to_owned(),
            numbers,
            equation,
            answer,
        });
    }
    Ok(problems)
}

/// Reads a MWP CSV file from any reader; `source` names it in errors.
pub fn read_mwp_csv(reader: impl Read, source: &str) -> Result<Vec<MwpProblem>, DataError> {
    parse_mwp_csv(&read_all(reader, source)?, source)
}

/// Loads a MWP CSV file, e.g. `cv_mawps/fold0/train.csv`.
pub fn load_mwp_csv(path: impl AsRef<Path>) -> Result<Vec<MwpProblem>, DataError> {
    let path = path.as_ref();
    parse_mwp_csv(&read_file(path)?, &source_name(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/fixtures/mwp/five.csv"
    );
    const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets/mwp");

    #[test]
    fn evaluator_handles_operators_constants_and_errors() {
        let n = [6.0, 3.0, 0.0];
        assert_eq!(evaluate_prefix(&["/", "number0", "number1"], &n), Ok(2.0));
        assert_eq!(evaluate_prefix(&["-", "number1", "number0"], &n), Ok(-3.0));
        assert_eq!(
            evaluate_prefix(&["+", "*", "number0", "100.0", "number1"], &n),
            Ok(603.0)
        );
        assert_eq!(evaluate_prefix(&["number1"], &n), Ok(3.0));
        assert_eq!(evaluate_prefix::<&str>(&[], &n), Err(EquationError::Empty));
        assert_eq!(
            evaluate_prefix(&["/", "number0", "number2"], &n),
            Err(EquationError::DivisionByZero { position: 0 })
        );
        assert_eq!(
            evaluate_prefix(&["+", "number0", "number7"], &n),
            Err(EquationError::UnknownNumber {
                position: 2,
                index: 7,
                available: 3
            })
        );
        assert_eq!(
            evaluate_prefix(&["+", "number0"], &n),
            Err(EquationError::MissingOperand {
                position: 0,
                operator: '+'
            })
        );
        assert!(matches!(
            evaluate_prefix(&["number0", "number1"], &n),
            Err(EquationError::ExtraOperands { count: 1 })
        ));
        assert!(matches!(
            evaluate_prefix(&["x"], &n),
            Err(EquationError::UnknownToken { .. })
        ));
        assert!(matches!(
            evaluate_prefix(&["numberx"], &n),
            Err(EquationError::UnknownToken { .. })
        ));
    }

    #[test]
    fn fixture_parses_and_every_equation_is_right() {
        let problems = load_mwp_csv(FIXTURE).unwrap();
        assert_eq!(problems.len(), 5);
        assert_eq!(problems[0].numbers, vec![56.0, 9.0]);
        assert_eq!(problems[0].equation, vec!["*", "number0", "number1"]);
        assert_eq!(problems[0].answer, 504.0);
        assert!(problems[1].question.contains(", with a comma"));
        for p in &problems {
            assert!(p.is_correct(&p.equation), "{p:?}");
        }
        assert!(!problems[0].is_correct(&["+", "number0", "number1"]));
    }

    #[test]
    fn bad_csv_names_file_and_line() {
        let err = parse_mwp_csv(b"Question,Numbers,Answer\nq,1,1\n", "m.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.csv:1: missing column \"Equation\" in the header"
        );
        let text = b"Question,Numbers,Equation,Answer\nq,1 2,+ number0 number1,3\nq,1 x,+ number0 number1,3\n";
        let err = parse_mwp_csv(text, "m.csv").unwrap_err();
        assert_eq!(err.to_string(), "m.csv:3: Numbers: \"x\" is not a number");
        let text = b"Question,Numbers,Equation,Answer\nq,1 2,+ number0 number1\n";
        assert!(
            parse_mwp_csv(text, "m.csv")
                .unwrap_err()
                .to_string()
                .starts_with("m.csv:2:")
        );
    }

    /// Loads a shared file, or prints why not.
    fn shared(relative: &str) -> Option<Vec<MwpProblem>> {
        let path = format!("{SHARED}/{relative}");
        if !Path::new(&path).is_file() {
            println!("skipped: {path} not found");
            return None;
        }
        Some(load_mwp_csv(&path).unwrap())
    }

    fn wrong(problems: &[MwpProblem]) -> usize {
        problems
            .iter()
            .filter(|p| !p.is_correct(&p.equation))
            .count()
    }

    #[test]
    fn shared_files_have_expected_sizes() {
        for (relative, expected) in [
            ("mawps-asdiv-a_svamp/dev.csv", 1000),
            ("mawps-asdiv-a_svamp/train.csv", 3138),
            ("cv_mawps/fold0/train.csv", 1537),
            ("cv_mawps/fold0/dev.csv", 384),
            ("cv_asdiv-a/fold0/train.csv", 979),
            ("cv_asdiv-a/fold0/dev.csv", 238),
        ] {
            if let Some(problems) = shared(relative) {
                assert_eq!(problems.len(), expected, "{relative}");
            }
        }
    }

    #[test]
    fn every_svamp_test_equation_gives_its_answer() {
        if let Some(problems) = shared("mawps-asdiv-a_svamp/dev.csv") {
            let first_wrong = problems.iter().find(|p| !p.is_correct(&p.equation));
            assert_eq!(first_wrong, None);
        }
    }

    /// A few MAWPS and ASDiv-A reference answers are rounded or wrong in the
    /// data itself (e.g. 2.99 / 12 with answer 0.25). Each fold partitions the
    /// same problems, so train + dev must hold the same such problems in every fold.
    #[test]
    fn cross_validation_folds_agree_on_inconsistent_answers() {
        for set in ["cv_mawps", "cv_asdiv-a"] {
            let mut per_fold = Vec::new();
            for fold in 0..5 {
                let (Some(train), Some(dev)) = (
                    shared(&format!("{set}/fold{fold}/train.csv")),
                    shared(&format!("{set}/fold{fold}/dev.csv")),
                ) else {
                    return;
                };
                let total = train.len() + dev.len();
                let bad = wrong(&train) + wrong(&dev);
                println!(
                    "{set} fold{fold}: {bad} of {total} reference equations miss their answer by >= 1e-4"
                );
                assert!(bad * 100 < total, "{set} fold{fold}: {bad} of {total}");
                per_fold.push((total, bad));
            }
            assert!(
                per_fold.windows(2).all(|w| w[0] == w[1]),
                "{set}: {per_fold:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_mwp_csv(&bytes, "random");
        }

        #[test]
        fn random_equations_never_panic(tokens in proptest::collection::vec("[-+*/]|number[0-9]{1,2}|[0-9.]{1,3}|x", 0..12),
                                        numbers in proptest::collection::vec(-5.0f64..5.0, 0..4)) {
            let _ = evaluate_prefix(&tokens, &numbers);
        }
    }
}
