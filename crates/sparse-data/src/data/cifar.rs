//! CIFAR-10 and CIFAR-100 in their binary distribution format.
//!
//! A CIFAR-10 record is one label byte followed by 3,072 pixel bytes (the
//! 1,024 red values of the 32×32 image row by row, then green, then blue).
//! A CIFAR-100 record has two label bytes, coarse (20 super-classes) then
//! fine (100 classes), before the same 3,072 bytes. No registry ships CIFAR;
//! these loaders are for users who have the files
//! (`cifar-10-batches-bin/`, `cifar-100-binary/`).

use std::path::Path;

use super::error::{read_file, source_name};
use super::{DataError, ImageDataset, TrainTest};

const SIDE: usize = 32;
const IMAGE_BYTES: usize = 3 * SIDE * SIDE;

/// Which CIFAR-100 label to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar100Label {
    /// The 20 super-classes (first label byte).
    Coarse,
    /// The 100 classes (second label byte), the usual choice.
    Fine,
}

/// Parses CIFAR-10 binary records (one or more batch files concatenated).
pub fn parse_cifar10(bytes: &[u8], source: &str) -> Result<ImageDataset, DataError> {
    parse_records(bytes, source, 1, 0, 10)
}

/// Parses CIFAR-100 binary records, keeping the chosen label.
pub fn parse_cifar100(
    bytes: &[u8],
    source: &str,
    label: Cifar100Label,
) -> Result<ImageDataset, DataError> {
    match label {
        Cifar100Label::Coarse => parse_records(bytes, source, 2, 0, 20),
        Cifar100Label::Fine => parse_records(bytes, source, 2, 1, 100),
    }
}

fn parse_records(
    bytes: &[u8],
    source: &str,
    label_bytes: usize,
    label_at: usize,
    num_classes: usize,
) -> Result<ImageDataset, DataError> {
    let record = label_bytes + IMAGE_BYTES;
    if !bytes.len().is_multiple_of(record) {
        let complete = bytes.len() / record * record;
        return Err(DataError::byte(
            source,
            complete,
            format!(
                "truncated record: {} bytes left, a record has {record}",
                bytes.len() - complete
            ),
        ));
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for (i, chunk) in bytes.chunks_exact(record).enumerate() {
        let label = chunk[label_at];
        if usize::from(label) >= num_classes {
            return Err(DataError::byte(
                source,
                i * record + label_at,
                format!("label {label} is not below {num_classes}"),
            ));
        }
        labels.push(u32::from(label));
        pixels.extend_from_slice(&chunk[label_bytes..]);
    }
    ImageDataset::new(pixels, labels, 3, SIDE, SIDE, num_classes, 255)
        .map_err(|e| DataError::invalid(source, e.to_string()))
}

/// Loads CIFAR-10 records from one file.
pub fn load_cifar10(path: impl AsRef<Path>) -> Result<ImageDataset, DataError> {
    let path = path.as_ref();
    parse_cifar10(&read_file(path)?, &source_name(path))
}

/// Loads CIFAR-100 records from one file.
pub fn load_cifar100(
    path: impl AsRef<Path>,
    label: Cifar100Label,
) -> Result<ImageDataset, DataError> {
    let path = path.as_ref();
    parse_cifar100(&read_file(path)?, &source_name(path), label)
}

/// Loads `cifar-10-batches-bin/`: `data_batch_1.bin` … `data_batch_5.bin`
/// (train, in that order) and `test_batch.bin` (test).
pub fn load_cifar10_dir(dir: impl AsRef<Path>) -> Result<TrainTest<ImageDataset>, DataError> {
    let dir = dir.as_ref();
    let mut train = Vec::new();
    for k in 1..=5 {
        let path = dir.join(format!("data_batch_{k}.bin"));
        let bytes = read_file(&path)?;
        // Parse each file on its own so that errors name the right file and offset.
        parse_cifar10(&bytes, &source_name(&path))?;
        train.extend_from_slice(&bytes);
    }
    Ok(TrainTest {
        train: parse_cifar10(&train, &source_name(dir))?,
        test: load_cifar10(dir.join("test_batch.bin"))?,
    })
}

/// Loads `cifar-100-binary/`: `train.bin` and `test.bin`.
pub fn load_cifar100_dir(
    dir: impl AsRef<Path>,
    label: Cifar100Label,
) -> Result<TrainTest<ImageDataset>, DataError> {
    let dir = dir.as_ref();
    Ok(TrainTest {
        train: load_cifar100(dir.join("train.bin"), label)?,
        test: load_cifar100(dir.join("test.bin"), label)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ClassificationSet;
    use proptest::prelude::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets/fixtures/cifar");

    #[test]
    fn cifar10_fixture_has_two_records_in_planar_rgb() {
        let set = load_cifar10(format!("{FIXTURES}/cifar10-2.bin")).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.labels(), &[3, 9]);
        assert_eq!(set.sample_shape(), vec![3, 32, 32]);
        let first = set.image(0).unwrap();
        // The fixture fills channel c of record r with 10*r + c + 1.
        assert_eq!(
            (first[0], first[1024], first[2048], first[3071]),
            (1, 2, 3, 3)
        );
        assert_eq!(set.image(1).unwrap()[0], 11);
    }

    #[test]
    fn cifar100_fixture_keeps_the_chosen_label() {
        let path = format!("{FIXTURES}/cifar100-2.bin");
        let fine = load_cifar100(&path, Cifar100Label::Fine).unwrap();
        let coarse = load_cifar100(&path, Cifar100Label::Coarse).unwrap();
        assert_eq!(fine.labels(), &[42, 99]);
        assert_eq!(coarse.labels(), &[5, 19]);
        assert_eq!((fine.num_classes(), coarse.num_classes()), (100, 20));
        assert_eq!(fine.pixels(), coarse.pixels());
    }

    #[test]
    fn truncated_and_bad_labels_name_the_offset() {
        let mut bytes = vec![1u8; 2 * 3073 - 5];
        let err = parse_cifar10(&bytes, "c.bin").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("c.bin: at byte 3073: truncated"),
            "{err}"
        );
        bytes.resize(2 * 3073, 0);
        bytes[3073] = 10;
        let err = parse_cifar10(&bytes, "c.bin").unwrap_err();
        assert!(
            err.to_string().starts_with("c.bin: at byte 3073: label 10"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(len in 0usize..7000, fill in any::<u8>()) {
            let bytes = vec![fill; len];
            let _ = parse_cifar10(&bytes, "random");
            let _ = parse_cifar100(&bytes, "random", Cifar100Label::Fine);
        }
    }
}
