//! The sklearn "digits" data set: 1,797 grey-scale 8×8 images of digits.
//!
//! `digits.csv.gz` (from scikit-learn 1.9.1, BSD-3-Clause, see
//! `assets/README.md`) is embedded in the crate, so [`embedded`] needs no
//! download: it is the zero-setup default data set. Each line holds 64 pixel
//! values in `0..=16` (row by row) and then the label `0..=9`; no header.

use std::path::Path;

use super::error::{read_all, read_file, source_name};
use super::idx::maybe_gunzip;
use super::{DataError, ImageDataset, text_lines};

/// The embedded `digits.csv.gz`, as shipped by scikit-learn 1.9.1.
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../assets/digits.csv.gz");

const SIDE: usize = 8;
const PIXELS: usize = SIDE * SIDE;
const MAX_VALUE: u8 = 16;

/// The embedded data set: 1,797 images of shape `1×8×8`, 10 classes,
/// pixel maximum 16.
pub fn embedded() -> Result<ImageDataset, DataError> {
    parse_digits_csv(DIGITS_CSV_GZ, "embedded digits.csv.gz")
}

/// Parses a digits CSV (plain or gzipped) from memory.
pub fn parse_digits_csv(bytes: &[u8], source: &str) -> Result<ImageDataset, DataError> {
    let text = maybe_gunzip(bytes, source)?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for line in text_lines(&text, source) {
        let (number, line) = line?;
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = 0;
        for (column, field) in line.split(',').enumerate() {
            fields += 1;
            let max = if column < PIXELS { MAX_VALUE } else { 9 };
            let value = parse_small_int(field, max).ok_or_else(|| {
                DataError::line(
                    source,
                    number,
                    format!(
                        "column {}: expected an integer in 0..={max}, found {field:?}",
                        column + 1
                    ),
                )
            })?;
            if column < PIXELS {
                pixels.push(value);
            } else if column == PIXELS {
                labels.push(u32::from(value));
            }
        }
        if fields != PIXELS + 1 {
            return Err(DataError::line(
                source,
                number,
                format!(
                    "expected {} columns (64 pixels and a label), found {fields}",
                    PIXELS + 1
                ),
            ));
        }
    }
    let num_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    ImageDataset::new(pixels, labels, 1, SIDE, SIDE, num_classes, MAX_VALUE)
        .map_err(|e| DataError::invalid(source, e.to_string()))
}

/// Accepts `"7"` or `"7.0"` for a whole number in `0..=max`.
fn parse_small_int(field: &str, max: u8) -> Option<u8> {
    let value: f64 = field.trim().parse().ok()?;
    (value.fract() == 0.0 && (0.0..=f64::from(max)).contains(&value)).then_some(value as u8)
}

/// Reads a digits CSV (plain or gzipped) from any reader.
pub fn read_digits_csv(
    reader: impl std::io::Read,
    source: &str,
) -> Result<ImageDataset, DataError> {
    parse_digits_csv(&read_all(reader, source)?, source)
}

/// Loads a digits CSV (plain or gzipped) from a file.
pub fn load_digits_csv(path: impl AsRef<Path>) -> Result<ImageDataset, DataError> {
    let path = path.as_ref();
    parse_digits_csv(&read_file(path)?, &source_name(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ClassificationSet;
    use proptest::prelude::*;

    #[test]
    fn embedded_set_has_sklearn_shape_and_first_image() {
        let set = embedded().unwrap();
        assert_eq!(set.len(), 1797);
        assert_eq!(set.num_classes(), 10);
        assert_eq!(set.sample_shape(), vec![1, 8, 8]);
        assert_eq!(set.image(0).unwrap()[..8], [0, 0, 5, 13, 9, 1, 0, 0]);
        assert_eq!(set.labels()[..3], [0, 1, 2]);
        // sklearn documents about 180 images per class.
        for class in 0..10 {
            let count = set.labels().iter().filter(|&&l| l == class).count();
            assert!((174..=183).contains(&count), "class {class}: {count}");
        }
    }

    #[test]
    fn bad_rows_name_the_line() {
        let mut row: Vec<String> = (0..64).map(|_| "0".to_string()).collect();
        row.push("3".into());
        let good = row.join(",");
        let short = row[1..].join(",");
        let err = parse_digits_csv(format!("{good}\n{short}\n").as_bytes(), "d.csv").unwrap_err();
        assert!(
            err.to_string().starts_with("d.csv:2: expected 65 columns"),
            "{err}"
        );
        let bad = good.replacen('0', "x", 1);
        let err = parse_digits_csv(bad.as_bytes(), "d.csv").unwrap_err();
        assert!(err.to_string().contains("d.csv:1: column 1"), "{err}");
        let big = good.replacen('0', "17", 1);
        assert!(parse_digits_csv(big.as_bytes(), "d.csv").is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_digits_csv(&bytes, "random");
        }

        #[test]
        fn random_csv_never_panics(text in "([0-9]{1,2}[,\n]){0,140}") {
            let _ = parse_digits_csv(text.as_bytes(), "random");
        }
    }
}
