//! IDX files (MNIST, Fashion-MNIST), plain or gzipped.
//!
//! An IDX file is a big-endian header — two zero bytes, a type byte (`0x08`
//! for unsigned bytes, the only type MNIST uses and the only one supported
//! here), the number of dimensions, then each dimension as a `u32` — followed
//! by the values. Gzip is detected by its magic bytes `1f 8b`, whatever the
//! file is called; byte offsets in errors then refer to the decompressed data.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::error::{read_file, source_name};
use super::{ClassificationSet, DataError, ImageDataset, TrainTest};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const TYPE_U8: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The size of each dimension, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Decompresses `bytes` if they start with the gzip magic, else borrows them.
pub fn maybe_gunzip<'a>(
    bytes: &'a [u8],
    source: &str,
) -> Result<std::borrow::Cow<'a, [u8]>, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| DataError::invalid(source, format!("corrupt gzip data: {e}")))?;
        Ok(std::borrow::Cow::Owned(out))
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// Parses an IDX array (plain or gzipped) from memory.
pub fn parse_idx(bytes: &[u8], source: &str) -> Result<IdxArray, DataError> {
    let bytes = maybe_gunzip(bytes, source)?;
    let bytes = bytes.as_ref();
    if bytes.len() < 4 {
        return Err(DataError::byte(
            source,
            bytes.len(),
            "truncated IDX header (needs 4 magic bytes)",
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::byte(
            source,
            0,
            format!(
                "wrong magic {:02x} {:02x}: an IDX file starts with 00 00",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != TYPE_U8 {
        return Err(DataError::byte(
            source,
            2,
            format!(
                "unsupported IDX data type 0x{:02x} (only 0x08, unsigned byte)",
                bytes[2]
            ),
        ));
    }
    let ndims = usize::from(bytes[3]);
    if ndims == 0 {
        return Err(DataError::byte(source, 3, "IDX array with 0 dimensions"));
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::byte(
            source,
            bytes.len(),
            format!("truncated IDX header: {ndims} dimensions need {header_len} bytes"),
        ));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::byte(source, 4, format!("dimensions {dims:?} overflow")))?;
    let data = &bytes[header_len..];
    if data.len() < count {
        return Err(DataError::byte(
            source,
            bytes.len(),
            format!(
                "truncated IDX data: dimensions {dims:?} need {count} bytes after the header, found {}",
                data.len()
            ),
        ));
    }
    if data.len() > count {
        return Err(DataError::byte(
            source,
            header_len + count,
            format!(
                "{} unexpected bytes after the data of dimensions {dims:?}",
                data.len() - count
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: data.to_vec(),
    })
}

/// Reads an IDX array from any reader; `source` names it in errors.
pub fn read_idx(reader: impl Read, source: &str) -> Result<IdxArray, DataError> {
    let bytes = super::error::read_all(reader, source)?;
    parse_idx(&bytes, source)
}

/// Reads an IDX array from a file (plain or gzipped).
pub fn load_idx(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    parse_idx(&read_file(path)?, &source_name(path))
}

/// Combines an images array `(n, h, w)` and a labels array `(n,)` into a
/// grey-scale [`ImageDataset`] with pixel maximum 255 and `max label + 1` classes.
pub fn images_from_arrays(
    images: IdxArray,
    labels: IdxArray,
    images_source: &str,
    labels_source: &str,
) -> Result<ImageDataset, DataError> {
    let [n, height, width] = images.dims[..] else {
        return Err(DataError::byte(
            images_source,
            3,
            format!("an images file has 3 dimensions, found {:?}", images.dims),
        ));
    };
    let [n_labels] = labels.dims[..] else {
        return Err(DataError::byte(
            labels_source,
            3,
            format!("a labels file has 1 dimension, found {:?}", labels.dims),
        ));
    };
    if n != n_labels {
        return Err(DataError::invalid(
            labels_source,
            format!("{n_labels} labels for {n} images in {images_source}"),
        ));
    }
    let labels: Vec<u32> = labels.data.iter().map(|&l| u32::from(l)).collect();
    let num_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    ImageDataset::new(images.data, labels, 1, height, width, num_classes, 255)
        .map_err(|e| DataError::invalid(images_source, e.to_string()))
}

/// Loads an images file and a labels file (each plain or gzipped).
pub fn load_images(
    images_path: impl AsRef<Path>,
    labels_path: impl AsRef<Path>,
) -> Result<ImageDataset, DataError> {
    let (images_path, labels_path) = (images_path.as_ref(), labels_path.as_ref());
    images_from_arrays(
        load_idx(images_path)?,
        load_idx(labels_path)?,
        &source_name(images_path),
        &source_name(labels_path),
    )
}

/// Finds `<prefix>-<kind>-ubyte`, `<prefix>-<kind>.ubyte` style names, with
/// or without `.gz`, in `dir`.
fn find_mnist_file(dir: &Path, prefix: &str, kind: &str, idx: &str) -> Result<PathBuf, DataError> {
    let mut tried = Vec::new();
    for sep in ['-', '.'] {
        for ext in ["", ".gz"] {
            let name = format!("{prefix}-{kind}{sep}{idx}-ubyte{ext}");
            let path = dir.join(&name);
            if path.is_file() {
                return Ok(path);
            }
            tried.push(name);
        }
    }
    Err(DataError::invalid(
        &source_name(dir),
        format!("no {prefix} {kind} file; looked for {}", tried.join(", ")),
    ))
}

/// Loads an MNIST-layout directory: `{train,t10k}-{images-idx3,labels-idx1}-ubyte`,
/// also spelled `train-images.idx3-ubyte`, each optionally gzipped (`.gz`).
///
/// Both splits get the same `num_classes` (the larger of the two).
pub fn load_mnist_dir(dir: impl AsRef<Path>) -> Result<TrainTest<ImageDataset>, DataError> {
    let dir = dir.as_ref();
    let load = |prefix: &str| {
        load_images(
            find_mnist_file(dir, prefix, "images", "idx3")?,
            find_mnist_file(dir, prefix, "labels", "idx1")?,
        )
    };
    let (train, test) = (load("train")?, load("t10k")?);
    let classes = train.num_classes().max(test.num_classes());
    Ok(TrainTest {
        train: train.with_num_classes(classes)?,
        test: test.with_num_classes(classes)?,
    })
}

/// Encodes bytes as an IDX array (used to write fixtures and in tests).
pub fn encode_idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use proptest::prelude::*;
    use std::io::Write;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets/fixtures/idx");

    #[test]
    fn parses_plain_and_gzipped_the_same() {
        let plain = encode_idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let a = parse_idx(&plain, "plain").unwrap();
        let b = parse_idx(&gz, "named-without-gz").unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(a, b);
    }

    #[test]
    fn truncated_data_names_file_and_offset() {
        let bytes = encode_idx(&[2, 3], &[1, 2, 3, 4, 5]);
        let err = parse_idx(&bytes, "x.idx").unwrap_err();
        match &err {
            DataError::Byte { file, offset, .. } => {
                assert_eq!(file, "x.idx");
                assert_eq!(*offset, 17);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn wrong_magic_and_type_are_errors() {
        let err = parse_idx(&[1, 0, 8, 1, 0, 0, 0, 0], "m").unwrap_err();
        assert!(err.to_string().contains("wrong magic"), "{err}");
        let err = parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 0], "m").unwrap_err();
        assert!(err.to_string().contains("0x0d"), "{err}");
        let err = parse_idx(&[0, 0, 8, 2, 0, 0], "m").unwrap_err();
        assert!(err.to_string().contains("truncated IDX header"), "{err}");
    }

    #[test]
    fn loads_fixture_directory() {
        let split = load_mnist_dir(FIXTURES).unwrap();
        assert_eq!(split.train.len(), 3);
        assert_eq!(split.test.len(), 3);
        assert_eq!(split.train.sample_shape(), vec![1, 4, 4]);
        assert_eq!(split.train.labels(), &[7, 2, 1]);
        // The t10k files are gzipped: same images, labels in reverse order.
        assert_eq!(split.test.labels(), &[1, 2, 7]);
        assert_eq!(split.train.num_classes(), 8);
        assert_eq!(split.train.image(0).unwrap()[..4], [0, 64, 128, 255]);
        assert_eq!(split.test.image(2).unwrap(), split.train.image(0).unwrap());
    }

    #[test]
    fn mismatched_counts_are_an_error() {
        let images = parse_idx(&encode_idx(&[2, 1, 1], &[0, 1]), "i").unwrap();
        let labels = parse_idx(&encode_idx(&[3], &[0, 1, 1]), "l").unwrap();
        let err = images_from_arrays(images, labels, "i", "l").unwrap_err();
        assert!(err.to_string().contains("3 labels for 2 images"), "{err}");
    }

    #[test]
    fn real_mnist_when_present() {
        let Some(dir) = crate::data::test_dataset_path("mnist") else {
            return;
        };
        let start = std::time::Instant::now();
        let split = load_mnist_dir(&dir).unwrap();
        println!("MNIST loaded in {:?}", start.elapsed());
        assert_eq!((split.train.len(), split.test.len()), (60_000, 10_000));
        assert_eq!(split.train.sample_shape(), vec![1, 28, 28]);
        assert_eq!(split.train.num_classes(), 10);
        // Well-known MNIST facts: the first training label is 5, the first test label 7.
        assert_eq!((split.train.labels()[0], split.test.labels()[0]), (5, 7));
        assert_eq!(
            split.train.labels().iter().filter(|&&l| l == 1).count(),
            6742
        );
    }

    #[test]
    fn real_fashion_mnist_when_present() {
        // The Debian package ships the four files gzipped.
        let Some(dir) = crate::data::test_dataset_path("fashion-mnist") else {
            return;
        };
        let split = load_mnist_dir(&dir).unwrap();
        assert_eq!((split.train.len(), split.test.len()), (60_000, 10_000));
        assert_eq!(split.train.sample_shape(), vec![1, 28, 28]);
        assert_eq!(split.train.num_classes(), 10);
        // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
        for class in 0..10u32 {
            let count = |labels: &[u32]| labels.iter().filter(|&&l| l == class).count();
            assert_eq!(
                (count(split.train.labels()), count(split.test.labels())),
                (6000, 1000)
            );
        }
        // First training image: label 9 (ankle boot); first test image: 9 as well.
        assert_eq!((split.train.labels()[0], split.test.labels()[0]), (9, 9));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_idx(&bytes, "random");
        }

        #[test]
        fn random_headers_never_panic(ndims in 0u8..4, dims in proptest::collection::vec(0u32..6, 0..4),
                                       data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut bytes = vec![0, 0, 8, ndims];
            for d in dims { bytes.extend_from_slice(&d.to_be_bytes()); }
            bytes.extend(data);
            if let Ok(a) = parse_idx(&bytes, "random") {
                prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            }
        }
    }
}
