//! UCR/UEA time-series classification files in the sktime `.ts` format.
//!
//! A `.ts` file has `#` (or ARFF-style `%`) comment lines, `@` header lines (`@problemName`,
//! `@timeStamps false`, `@missing`, `@univariate`, `@dimensions`,
//! `@equalLength`, `@seriesLength`, `@classLabel true <labels...>`), then
//! `@data` and one case per line: the dimensions separated by `:`, the values
//! of a dimension by `,`, and the class label last. `?` and `NaN` are missing
//! values (stored as `f32::NAN`). Unequal-length files (`@equalLength false`)
//! keep each case's length; all dimensions of one case must share it.
//! Header keywords are case-insensitive; unknown ones are ignored.
//! Time-stamped data (`@timeStamps true`) and regression targets are not
//! supported and are reported as errors.

use std::io::Read;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::error::{read_all, read_file, source_name};
use super::{Batch, ClassificationSet, DataError, TrainTest, check_indices, text_lines};

/// A labelled set of (possibly multivariate, possibly unequal-length) series.
///
/// Case `i` is stored dimension by dimension: `dims × length(i)` values.
/// [`TimeSeriesDataset::padded`] and [`ClassificationSet::batch`] pad every
/// case to [`TimeSeriesDataset::max_length`] at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeriesDataset {
    problem_name: Option<String>,
    dims: usize,
    class_names: Vec<String>,
    values: Vec<f32>,
    offsets: Vec<usize>,
    lengths: Vec<usize>,
    labels: Vec<u32>,
}

impl TimeSeriesDataset {
    /// The `@problemName` header, if any.
    pub fn problem_name(&self) -> Option<&str> {
        self.problem_name.as_deref()
    }

    /// Number of dimensions (channels) of every case.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The class labels in `@classLabel` order; label id `k` is `class_names()[k]`.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The length (time steps) of case `i`, or `None` if out of range.
    pub fn length(&self, i: usize) -> Option<usize> {
        self.lengths.get(i).copied()
    }

    /// The length of every case.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// The longest case's length (0 for an empty set).
    pub fn max_length(&self) -> usize {
        self.lengths.iter().copied().max().unwrap_or(0)
    }

    /// `true` when all cases have the same length.
    pub fn is_equal_length(&self) -> bool {
        self.lengths.windows(2).all(|w| w[0] == w[1])
    }

    /// Case `i`'s values, `dims × length(i)`, dimension by dimension
    /// (missing values are NaN), or `None` if out of range.
    pub fn series(&self, i: usize) -> Option<&[f32]> {
        Some(&self.values[*self.offsets.get(i)?..*self.offsets.get(i + 1)?])
    }

    /// Number of missing (NaN) values over all cases.
    pub fn missing_values(&self) -> usize {
        self.values.iter().filter(|v| v.is_nan()).count()
    }

    /// All cases as one dense `(n, dims, max_length)` array: shorter cases are
    /// padded at the end with `pad`; missing values are replaced by `missing`
    /// (pass `f32::NAN` to keep them).
    pub fn padded(&self, pad: f32, missing: f32) -> Vec<f32> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.padded_rows(&all, pad, missing)
    }

    fn padded_rows(&self, indices: &[usize], pad: f32, missing: f32) -> Vec<f32> {
        let max_len = self.max_length();
        let mut out = Vec::with_capacity(indices.len() * self.dims * max_len);
        for &i in indices {
            let len = self.lengths[i];
            let case = &self.values[self.offsets[i]..self.offsets[i + 1]];
            // Every case has length >= 1: an empty dimension fails to parse.
            for dim in case.chunks_exact(len.max(1)) {
                out.extend(dim.iter().map(|&v| if v.is_nan() { missing } else { v }));
                out.extend(std::iter::repeat_n(pad, max_len - len));
            }
        }
        out
    }

    /// Gives this set the class list of `other` (e.g. a test split whose
    /// header lists the labels in another order), remapping label ids by name.
    /// Fails if a class of this set is not in `class_names`.
    pub fn with_class_names(mut self, class_names: &[String]) -> Result<Self, DataError> {
        let mut map = Vec::with_capacity(self.class_names.len());
        for name in &self.class_names {
            let id = class_names.iter().position(|n| n == name).ok_or_else(|| {
                DataError::argument("class_names", format!("class {name:?} is missing"))
            })?;
            map.push(id as u32);
        }
        for label in &mut self.labels {
            *label = map[*label as usize];
        }
        self.class_names = class_names.to_vec();
        Ok(self)
    }
}

impl ClassificationSet for TimeSeriesDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    fn sample_shape(&self) -> Vec<usize> {
        vec![self.dims, self.max_length()]
    }

    fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Inputs have shape `(b, dims, max_length)`; padding and missing values
    /// become 0, as the DSN code does (NaN padding, then NaN → 0).
    fn batch(&self, indices: &[usize], device: &Device) -> Result<Batch, DataError> {
        check_indices(indices, self.len())?;
        let values = self.padded_rows(indices, 0.0, 0.0);
        let inputs = Tensor::from_vec(
            values,
            (indices.len(), self.dims, self.max_length()),
            device,
        )?;
        let targets: Vec<u32> = indices.iter().map(|&i| self.labels[i]).collect();
        let targets = Tensor::from_vec(targets, indices.len(), device)?;
        Ok(Batch { inputs, targets })
    }
}

/// Header facts collected before `@data`.
#[derive(Default)]
struct Header {
    problem_name: Option<String>,
    dims: Option<usize>,
    univariate: Option<bool>,
    equal_length: Option<bool>,
    series_length: Option<usize>,
    class_names: Option<Vec<String>>,
}

fn parse_bool(value: &str, key: &str, number: usize, source: &str) -> Result<bool, DataError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(DataError::line(
            source,
            number,
            format!("@{key} expects true or false, found {value:?}"),
        )),
    }
}

fn parse_count(value: &str, key: &str, number: usize, source: &str) -> Result<usize, DataError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            DataError::line(
                source,
                number,
                format!("@{key} expects a positive integer, found {value:?}"),
            )
        })
}

fn parse_header_line(
    header: &mut Header,
    line: &str,
    number: usize,
    source: &str,
) -> Result<(), DataError> {
    let mut words = line[1..].split_whitespace();
    let key = words.next().unwrap_or("").to_ascii_lowercase();
    let first = words.next().unwrap_or("");
    match key.as_str() {
        "problemname" => header.problem_name = Some(first.to_owned()),
        "timestamps" if parse_bool(first, "timeStamps", number, source)? => {
            return Err(DataError::line(
                source,
                number,
                "time-stamped data (@timeStamps true) is not supported",
            ));
        }
        "missing" => {
            parse_bool(first, "missing", number, source)?;
        }
        "univariate" => header.univariate = Some(parse_bool(first, "univariate", number, source)?),
        "dimensions" => header.dims = Some(parse_count(first, "dimensions", number, source)?),
        "equallength" => {
            header.equal_length = Some(parse_bool(first, "equalLength", number, source)?)
        }
        "serieslength" => {
            header.series_length = Some(parse_count(first, "seriesLength", number, source)?)
        }
        "classlabel" => {
            if !parse_bool(first, "classLabel", number, source)? {
                return Err(DataError::line(
                    source,
                    number,
                    "only classification files (@classLabel true ...) are supported",
                ));
            }
            let names: Vec<String> = words.map(str::to_owned).collect();
            if names.is_empty() {
                return Err(DataError::line(
                    source,
                    number,
                    "@classLabel true lists no label",
                ));
            }
            if let Some(dup) = names
                .iter()
                .enumerate()
                .find(|(k, n)| names[..*k].contains(n))
            {
                return Err(DataError::line(
                    source,
                    number,
                    format!("label {:?} is declared twice", dup.1),
                ));
            }
            header.class_names = Some(names);
        }
        "targetlabel" => {
            return Err(DataError::line(
                source,
                number,
                "regression files (@targetLabel) are not supported",
            ));
        }
        _ => {}
    }
    Ok(())
}

fn parse_value(field: &str, number: usize, source: &str) -> Result<f32, DataError> {
    let field = field.trim();
    if field == "?" || field.eq_ignore_ascii_case("nan") {
        return Ok(f32::NAN);
    }
    field
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            DataError::line(
                source,
                number,
                format!("{field:?} is not a number (nor ? / NaN for missing)"),
            )
        })
}

/// Parses a `.ts` file from memory; `source` names it in errors.
pub fn parse_ts(bytes: &[u8], source: &str) -> Result<TimeSeriesDataset, DataError> {
    let mut header = Header::default();
    let mut in_data = false;
    let mut set = TimeSeriesDataset {
        problem_name: None,
        dims: 0,
        class_names: Vec::new(),
        values: Vec::new(),
        offsets: vec![0],
        lengths: Vec::new(),
        labels: Vec::new(),
    };
    let mut expected_dims: Option<usize> = None;
    let mut last_line = 0;
    for line in text_lines(bytes, source) {
        let (number, line) = line?;
        last_line = number;
        let line = line.trim();
        // Some archive files also use ARFF's `%` for comments.
        if line.is_empty() || line.starts_with(['#', '%']) {
            continue;
        }
        if !in_data {
            if !line.starts_with('@') {
                return Err(DataError::line(
                    source,
                    number,
                    format!(
                        "expected a # comment or an @ header before @data, found {:.40?}",
                        line
                    ),
                ));
            }
            if line[1..]
                .split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("data"))
            {
                if header.class_names.is_none() {
                    return Err(DataError::line(
                        source,
                        number,
                        "@data before any @classLabel true <labels...> header",
                    ));
                }
                expected_dims = match (header.dims, header.univariate) {
                    (Some(d), Some(true)) if d != 1 => {
                        return Err(DataError::line(
                            source,
                            number,
                            format!("@univariate true but @dimensions {d}"),
                        ));
                    }
                    (Some(d), _) => Some(d),
                    (None, Some(true)) => Some(1),
                    (None, _) => None,
                };
                in_data = true;
            } else {
                parse_header_line(&mut header, line, number, source)?;
            }
            continue;
        }
        let class_names = header.class_names.as_deref().unwrap_or_default();
        let (series, label) = line.rsplit_once(':').ok_or_else(|| {
            DataError::line(
                source,
                number,
                "a case needs its values, a ':' and a class label",
            )
        })?;
        let label = label.trim();
        let label_id = class_names.iter().position(|n| n == label).ok_or_else(|| {
            DataError::line(
                source,
                number,
                format!(
                    "label {label:?} is not declared in @classLabel ({})",
                    class_names.join(" ")
                ),
            )
        })?;
        let mut dims = 0;
        let mut length = None;
        for dim in series.split(':') {
            dims += 1;
            let start = set.values.len();
            for field in dim.split(',') {
                set.values.push(parse_value(field, number, source)?);
            }
            let len = set.values.len() - start;
            match length {
                None => length = Some(len),
                Some(l) if l != len => {
                    return Err(DataError::line(
                        source,
                        number,
                        format!("dimension {dims} has {len} values but dimension 1 has {l}"),
                    ));
                }
                Some(_) => {}
            }
        }
        let length = length.unwrap_or(0);
        match expected_dims {
            Some(d) if d != dims => {
                return Err(DataError::line(
                    source,
                    number,
                    format!("{dims} dimensions, expected {d}"),
                ));
            }
            None => expected_dims = Some(dims),
            Some(_) => {}
        }
        if header.equal_length == Some(true) {
            let expected = header
                .series_length
                .or_else(|| set.lengths.first().copied());
            if let Some(expected) = expected.filter(|&e| e != length) {
                return Err(DataError::line(
                    source,
                    number,
                    format!(
                        "series of length {length} in an equal-length file of length {expected}"
                    ),
                ));
            }
        }
        set.lengths.push(length);
        set.offsets.push(set.values.len());
        set.labels.push(label_id as u32);
    }
    if !in_data {
        return Err(DataError::line(
            source,
            last_line.max(1),
            "no @data section",
        ));
    }
    set.problem_name = header.problem_name;
    set.class_names = header.class_names.unwrap_or_default();
    set.dims = expected_dims.unwrap_or(1);
    Ok(set)
}

/// Reads a `.ts` file from any reader; `source` names it in errors.
pub fn read_ts(reader: impl Read, source: &str) -> Result<TimeSeriesDataset, DataError> {
    parse_ts(&read_all(reader, source)?, source)
}

/// Loads a `.ts` file.
pub fn load_ts(path: impl AsRef<Path>) -> Result<TimeSeriesDataset, DataError> {
    let path = path.as_ref();
    parse_ts(&read_file(path)?, &source_name(path))
}

/// Loads `dir/<name>_TRAIN.ts` and `dir/<name>_TEST.ts`; the test split is
/// given the training split's class list, so label ids agree.
pub fn load_ucr(
    dir: impl AsRef<Path>,
    name: &str,
) -> Result<TrainTest<TimeSeriesDataset>, DataError> {
    let dir = dir.as_ref();
    let train = load_ts(dir.join(format!("{name}_TRAIN.ts")))?;
    let test_path = dir.join(format!("{name}_TEST.ts"));
    let test = load_ts(&test_path)?;
    if test.dims() != train.dims() {
        return Err(DataError::invalid(
            &source_name(&test_path),
            format!(
                "{} dimensions but the training split has {}",
                test.dims(),
                train.dims()
            ),
        ));
    }
    let test = test
        .with_class_names(train.class_names())
        .map_err(|e| DataError::invalid(&source_name(&test_path), e.to_string()))?;
    Ok(TrainTest { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets/fixtures/ts");

    #[test]
    fn univariate_fixture() {
        let set = load_ts(format!("{FIXTURES}/Tiny_TRAIN.ts")).unwrap();
        assert_eq!(set.problem_name(), Some("Tiny"));
        assert_eq!((set.len(), set.dims(), set.max_length()), (3, 1, 4));
        assert_eq!(set.class_names(), &["a".to_string(), "b".to_string()]);
        assert_eq!(set.labels(), &[1, 0, 1]);
        assert_eq!(set.series(0).unwrap(), &[1.0, 2.0, 3.0, 4.0]);
        assert!(set.series(1).unwrap()[1].is_nan());
        assert!(set.series(2).unwrap()[3].is_nan());
        assert_eq!(set.missing_values(), 2);
        let batch = set.batch(&[1], &Device::Cpu).unwrap();
        assert_eq!(batch.inputs.dims(), &[1, 1, 4]);
        assert_eq!(
            batch
                .inputs
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            vec![0.5, 0.0, -1.5, 2e-3]
        );
        let split = load_ucr(FIXTURES, "Tiny").unwrap();
        // The test header lists "b a": ids are remapped to the training order.
        assert_eq!(split.test.class_names(), split.train.class_names());
        assert_eq!(split.test.labels(), &[0, 1]);
    }

    #[test]
    fn multivariate_unequal_fixture_pads_at_the_end() {
        let set = load_ts(format!("{FIXTURES}/multivariate_unequal.ts")).unwrap();
        assert_eq!((set.len(), set.dims()), (3, 2));
        assert_eq!(set.lengths(), &[3, 2, 1]);
        assert!(!set.is_equal_length());
        assert_eq!(set.class_names(), &["up".to_string(), "down".to_string()]);
        assert_eq!(set.series(1).unwrap(), &[4.0, 5.0, 40.0, 50.0]);
        let padded = set.padded(-9.0, f32::NAN);
        assert_eq!(padded.len(), 3 * 2 * 3);
        assert_eq!(&padded[6..12], &[4.0, 5.0, -9.0, 40.0, 50.0, -9.0]);
        assert_eq!(set.sample_shape(), vec![2, 3]);
    }

    fn err(text: &str) -> String {
        parse_ts(text.as_bytes(), "t.ts").unwrap_err().to_string()
    }

    #[test]
    fn bad_files_name_file_and_line() {
        let head =
            "@problemName X\n@univariate true\n@equalLength true\n@classLabel true 1 2\n@data\n";
        assert_eq!(
            err(&format!("{head}1,2,3:1\n1,2:2\n")),
            "t.ts:7: series of length 2 in an equal-length file of length 3"
        );
        assert!(err(&format!("{head}1,2:3\n")).starts_with("t.ts:6: label \"3\" is not declared"));
        assert!(err(&format!("{head}1,x:1\n")).starts_with("t.ts:6: \"x\" is not a number"));
        assert_eq!(
            err(&format!("{head}1,2:3,4:1\n")),
            "t.ts:6: 2 dimensions, expected 1"
        );
        let multi = "@dimensions 2\n@equalLength false\n@classLabel true a\n@data\n1,2:3:a\n";
        assert_eq!(
            err(multi),
            "t.ts:5: dimension 2 has 1 values but dimension 1 has 2"
        );
        assert!(err("@classLabel true a\n1,2:a\n").starts_with("t.ts:2: expected a # comment"));
        assert!(err("@timeStamps true\n@classLabel true a\n@data\n").contains("not supported"));
        assert!(err("@classLabel true a\n").contains("no @data"));
        assert!(err("@data\n1:a\n").contains("@data before any @classLabel"));
    }

    /// The `.ts` folder of the catalogued UCR/UEA set `name` (e.g. `gunpoint`).
    fn real(name: &str) -> Option<std::path::PathBuf> {
        crate::data::test_dataset_path(name)
    }

    #[test]
    fn real_gunpoint_when_present() {
        let Some(dir) = real("gunpoint") else { return };
        let s = load_ucr(&dir, "GunPoint").unwrap();
        assert_eq!(
            (
                s.train.len(),
                s.test.len(),
                s.train.max_length(),
                s.train.dims()
            ),
            (50, 150, 150, 1)
        );
        assert!(s.train.is_equal_length());
        assert_eq!(s.train.num_classes(), 2);
    }

    #[test]
    fn real_basicmotions_when_present() {
        let Some(dir) = real("basicmotions") else {
            return;
        };
        let s = load_ucr(&dir, "BasicMotions").unwrap();
        assert_eq!(
            (
                s.train.len(),
                s.test.len(),
                s.train.dims(),
                s.train.max_length()
            ),
            (40, 40, 6, 100)
        );
        assert_eq!(
            s.train.class_names().join(" "),
            "Standing Running Walking Badminton"
        );
    }

    #[test]
    fn real_japanesevowels_when_present() {
        let Some(dir) = real("japanesevowels") else {
            return;
        };
        let s = load_ucr(&dir, "JapaneseVowels").unwrap();
        assert_eq!(
            (s.train.len(), s.test.len(), s.train.dims()),
            (270, 370, 12)
        );
        assert!(!s.train.is_equal_length());
        assert_eq!(s.train.lengths().iter().min(), Some(&7));
        assert_eq!(s.train.max_length(), 26);
    }

    /// Every fetched UCR/UEA set of the catalogue parses, with the catalogue's
    /// train/test counts.
    #[test]
    fn every_fetched_ucr_set_parses_with_catalogued_counts() {
        let mut parsed = 0;
        for dataset in crate::catalogue::all() {
            let crate::catalogue::Format::Ts { problem } = dataset.format else {
                continue;
            };
            let Some(dir) = real(dataset.name) else {
                continue;
            };
            let s = load_ucr(&dir, problem).unwrap();
            assert_eq!(
                (Some(s.train.len()), Some(s.test.len())),
                (dataset.train, dataset.test),
                "{}",
                dataset.name
            );
            assert!(s.train.num_classes() > 0, "{}", dataset.name);
            parsed += 1;
        }
        println!("{parsed} fetched UCR/UEA sets parsed");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_ts(&bytes, "random");
        }

        #[test]
        fn random_ts_text_never_panics(
            header in "(@(problemName x|univariate (true|false)|dimensions [0-3]|equalLength (true|false)|seriesLength [0-3]|classLabel true a b|missing true|timeStamps false)\n){0,6}",
            data in "(@data\n)?(([0-9?.,:-]|NaN){0,12}:(a|b|c)?\n){0,5}") {
            let text = format!("#c\n{header}{data}");
            if let Ok(set) = parse_ts(text.as_bytes(), "random") {
                let all: Vec<usize> = (0..set.len()).collect();
                let batch = set.batch(&all, &Device::Cpu);
                prop_assert!(batch.is_ok());
            }
        }
    }
}
