//! The math-word-problem task: MAWPS, ASDiv-A (fold 0) and SVAMP, questions
//! through the BERT WordPiece tokenizer, a small encoder–decoder trained from
//! scratch to write prefix equations, value accuracy.

pub mod data;
pub mod model;
pub mod training;
