//! Evaluation metrics shared by the reproductions: accuracy, mean ± std over seeds,
//! bits per character, expected calibration error, AUROC and max-softmax scores.

use std::fmt;

use candle_core::{D, DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{HarnessError, HarnessResult};

/// The number of equal-width confidence bins commonly used for ECE (Guo et al., 2017).
pub const ECE_BINS: usize = 15;

/// The number of rows `n` of `logits` (`[n, classes]`), after checking that
/// `labels` is `[n]`: the shape contract of every classification metric and loss.
pub(crate) fn rows_with_labels(logits: &Tensor, labels: &Tensor) -> HarnessResult<usize> {
    let (n, _classes) = logits.dims2()?;
    if labels.dims1()? != n {
        return Err(HarnessError::SizeMismatch {
            what: "labels (one per logits row)".into(),
            expected: n,
            got: labels.dims1()?,
        });
    }
    Ok(n)
}

/// The number of rows of `logits` (`[n, classes]`) whose arg-max equals `labels` (`[n]`, integer).
pub fn correct_count(logits: &Tensor, labels: &Tensor) -> HarnessResult<usize> {
    rows_with_labels(logits, labels)?;
    let predicted = logits.argmax(D::Minus1)?.to_dtype(DType::U32)?;
    let labels = labels.to_dtype(DType::U32)?;
    let equal = predicted.eq(&labels)?.to_dtype(DType::U32)?.sum_all()?;
    Ok(equal.to_scalar::<u32>()? as usize)
}

/// Top-1 accuracy in `[0, 1]` of `logits` (`[n, classes]`) against integer `labels` (`[n]`).
///
/// Errors if `n` is zero.
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> HarnessResult<f64> {
    let n = logits.dims2()?.0;
    if n == 0 {
        return Err(HarnessError::invalid(
            "logits",
            "0 rows",
            "accuracy needs at least one sample",
        ));
    }
    Ok(correct_count(logits, labels)? as f64 / n as f64)
}

/// Bits per character from a mean negative log-likelihood per character in nats.
pub fn bits_per_character(mean_nll_nats: f64) -> f64 {
    mean_nll_nats / std::f64::consts::LN_2
}

/// The softmax probability of the predicted class for each row of `logits` (`[n, classes]`).
///
/// This is the maximum-softmax-probability score used as the confidence for ECE and
/// as the in-distribution score of the MSP baseline for OOD detection.
pub fn max_softmax_scores(logits: &Tensor) -> HarnessResult<Vec<f64>> {
    logits.dims2()?;
    let probabilities = candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?;
    let max = probabilities.max(D::Minus1)?.to_vec1::<f32>()?;
    Ok(max.into_iter().map(f64::from).collect())
}

/// Expected calibration error with `bins` equal-width confidence bins over `(0, 1]`.
///
/// `ECE = Σ_b (|b| / n) · |accuracy(b) − mean confidence(b)|`. A confidence `c` falls in
/// bin `ceil(c · bins) − 1` (bins are closed on the right, like the common reference
/// implementation); a confidence of exactly 0 goes into the first bin.
pub fn expected_calibration_error(
    confidences: &[f64],
    correct: &[bool],
    bins: usize,
) -> HarnessResult<f64> {
    if bins == 0 {
        return Err(HarnessError::invalid("bins", 0, "must be at least 1"));
    }
    if confidences.len() != correct.len() {
        return Err(HarnessError::SizeMismatch {
            what: "correctness flags (one per confidence)".into(),
            expected: confidences.len(),
            got: correct.len(),
        });
    }
    if confidences.is_empty() {
        return Err(HarnessError::invalid(
            "confidences",
            "[]",
            "ECE needs at least one sample",
        ));
    }
    if let Some(bad) = confidences.iter().find(|c| !(0.0..=1.0).contains(*c)) {
        return Err(HarnessError::invalid(
            "confidences",
            bad,
            "each confidence must be in [0, 1]",
        ));
    }
    let mut count = vec![0usize; bins];
    let mut confidence_sum = vec![0f64; bins];
    let mut correct_sum = vec![0f64; bins];
    for (&c, &ok) in confidences.iter().zip(correct) {
        let bin = ((c * bins as f64).ceil() as usize)
            .saturating_sub(1)
            .min(bins - 1);
        count[bin] += 1;
        confidence_sum[bin] += c;
        correct_sum[bin] += f64::from(u8::from(ok));
    }
    let n = confidences.len() as f64;
    Ok((0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let size = count[b] as f64;
            (size / n) * (correct_sum[b] / size - confidence_sum[b] / size).abs()
        })
        .sum())
}

/// ECE with [`ECE_BINS`] bins of the max-softmax confidences of `logits` against `labels`.
pub fn expected_calibration_error_from_logits(
    logits: &Tensor,
    labels: &Tensor,
) -> HarnessResult<f64> {
    let confidences = max_softmax_scores(logits)?;
    let predicted = logits
        .argmax(D::Minus1)?
        .to_dtype(DType::U32)?
        .to_vec1::<u32>()?;
    let labels = labels.to_dtype(DType::U32)?.to_vec1::<u32>()?;
    if labels.len() != predicted.len() {
        return Err(HarnessError::SizeMismatch {
            what: "labels (one per logits row)".into(),
            expected: predicted.len(),
            got: labels.len(),
        });
    }
    let correct: Vec<bool> = predicted.iter().zip(&labels).map(|(p, l)| p == l).collect();
    expected_calibration_error(&confidences, &correct, ECE_BINS)
}

/// Exact area under the ROC curve for separating in-distribution from
/// out-of-distribution samples, where a higher score means "more in-distribution".
///
/// Computed as the Mann–Whitney statistic: the probability that a random in-sample
/// scores above a random out-sample, ties counting one half (tied scores get the
/// average of their ranks). 1 is perfect separation, 0.5 chance, 0 reversed.
pub fn auroc(in_scores: &[f64], out_scores: &[f64]) -> HarnessResult<f64> {
    if in_scores.is_empty() || out_scores.is_empty() {
        return Err(HarnessError::invalid(
            if in_scores.is_empty() {
                "in_scores"
            } else {
                "out_scores"
            },
            "[]",
            "AUROC needs at least one score of each kind",
        ));
    }
    if in_scores.iter().chain(out_scores).any(|s| s.is_nan()) {
        return Err(HarnessError::invalid(
            "scores",
            "NaN",
            "scores must not be NaN",
        ));
    }
    // (score, is_in), sorted by score; ranks are 1-based, ties share their mean rank.
    let mut all: Vec<(f64, bool)> = in_scores
        .iter()
        .map(|&s| (s, true))
        .chain(out_scores.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_in = 0f64;
    let mut start = 0;
    while start < all.len() {
        let mut end = start + 1;
        while end < all.len() && all[end].0 == all[start].0 {
            end += 1;
        }
        // Ranks start+1 ..= end share their mean.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let in_count = all[start..end].iter().filter(|(_, is_in)| *is_in).count();
        rank_sum_in += mean_rank * in_count as f64;
        start = end;
    }
    let n_in = in_scores.len() as f64;
    let n_out = out_scores.len() as f64;
    Ok((rank_sum_in - n_in * (n_in + 1.0) / 2.0) / (n_in * n_out))
}

/// AUROC of the maximum-softmax-probability detector: in-distribution logits against
/// out-of-distribution logits, each `[n, classes]` (Hendrycks & Gimpel's baseline).
pub fn msp_auroc(in_logits: &Tensor, out_logits: &Tensor) -> HarnessResult<f64> {
    auroc(
        &max_softmax_scores(in_logits)?,
        &max_softmax_scores(out_logits)?,
    )
}

/// The mean and sample standard deviation of a metric over seeds.
///
/// The standard deviation uses the `n − 1` (Bessel) denominator, as papers reporting
/// "mean ± std over runs" usually do; with a single run it is defined as 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// The arithmetic mean.
    pub mean: f64,
    /// The sample standard deviation (n − 1), 0 for one value.
    pub std: f64,
    /// The number of values.
    pub n: usize,
}

impl MeanStd {
    /// Mean and sample std of `values`; errors if `values` is empty or holds a NaN.
    pub fn from_values(values: &[f64]) -> HarnessResult<Self> {
        if values.is_empty() {
            return Err(HarnessError::invalid(
                "values",
                "[]",
                "need at least one value",
            ));
        }
        if values.iter().any(|v| v.is_nan()) {
            return Err(HarnessError::invalid(
                "values",
                "NaN",
                "values must not be NaN",
            ));
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n == 1 {
            0.0
        } else {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        };
        Ok(Self { mean, std, n })
    }

    /// Both mean and std multiplied by `factor` (e.g. 100 to show a fraction in percent).
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            mean: self.mean * factor,
            std: self.std * factor.abs(),
            n: self.n,
        }
    }
}

impl fmt::Display for MeanStd {
    /// `"87.3 ± 0.4"`; the precision (`{:.1}`) applies to both numbers, default 3.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precision = f.precision().unwrap_or(3);
        write!(
            f,
            "{:.*} ± {:.*}",
            precision, self.mean, precision, self.std
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn accuracy_of_hand_made_logits() -> HarnessResult<()> {
        let logits = Tensor::new(
            &[[2f32, 1., 0.], [0., 3., 1.], [1., 0., 5.], [9., 0., 0.]],
            &Device::Cpu,
        )?;
        let labels = Tensor::new(&[0u32, 1, 0, 2], &Device::Cpu)?;
        assert_eq!(correct_count(&logits, &labels)?, 2);
        assert!(close(accuracy(&logits, &labels)?, 0.5));
        let labels_i64 = Tensor::new(&[0i64, 1, 2, 0], &Device::Cpu)?;
        assert!(close(accuracy(&logits, &labels_i64)?, 1.0));
        let short = Tensor::new(&[0u32, 1], &Device::Cpu)?;
        assert!(accuracy(&logits, &short).is_err());
        Ok(())
    }

    #[test]
    fn bits_per_character_of_ln2_is_one() {
        assert!(close(bits_per_character(std::f64::consts::LN_2), 1.0));
        assert!(close(bits_per_character(2.0 * std::f64::consts::LN_2), 2.0));
    }

    #[test]
    fn max_softmax_of_uniform_and_peaked_rows() -> HarnessResult<()> {
        let logits = Tensor::new(
            &[[0f32, 0., 0., 0.], [0., 2f32.ln() + 0.0, 0., 0.]],
            &Device::Cpu,
        )?;
        let scores = max_softmax_scores(&logits)?;
        assert!((scores[0] - 0.25).abs() < 1e-6);
        // exp(ln 2) / (2 + 3) = 0.4
        assert!((scores[1] - 0.4).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn ece_hand_computed() -> HarnessResult<()> {
        // Bin (0.8667, 0.9333] holds 0.9, 0.9 (1 correct): |0.5 - 0.9| = 0.4, weight 2/4.
        // Bin (0.2667, 0.3333] holds 0.3 (correct): |1 - 0.3| = 0.7, weight 1/4.
        // Bin (0.9333, 1] holds 1.0 (correct): 0, weight 1/4.
        let ece =
            expected_calibration_error(&[0.9, 0.9, 0.3, 1.0], &[true, false, true, true], 15)?;
        assert!(close(ece, 0.5 * 0.4 + 0.25 * 0.7), "ece {ece}");
        // Perfectly calibrated in a single bin.
        let ece = expected_calibration_error(&[0.5, 0.5], &[true, false], 15)?;
        assert!(close(ece, 0.0));
        assert!(expected_calibration_error(&[1.2], &[true], 15).is_err());
        assert!(expected_calibration_error(&[0.5], &[true, true], 15).is_err());
        Ok(())
    }

    #[test]
    fn ece_bins_are_closed_on_the_right() -> HarnessResult<()> {
        // With 2 bins, 0.5 belongs to (0, 0.5] and 0.75 to (0.5, 1].
        // Bin 1: {0.5 wrong} -> |0 - 0.5| = 0.5; bin 2: {0.75 right} -> 0.25. Weights 1/2.
        let ece = expected_calibration_error(&[0.5, 0.75], &[false, true], 2)?;
        assert!(close(ece, 0.5 * 0.5 + 0.5 * 0.25));
        Ok(())
    }

    #[test]
    fn auroc_separated_reversed_tied_and_mixed() -> HarnessResult<()> {
        assert!(close(auroc(&[0.9, 0.8, 0.7], &[0.1, 0.2])?, 1.0));
        assert!(close(auroc(&[0.1, 0.2], &[0.9, 0.8, 0.7])?, 0.0));
        assert!(close(auroc(&[0.5, 0.5], &[0.5, 0.5, 0.5])?, 0.5));
        // Pairs (in, out): (3,2)>, (3,4)<, (1,2)<, (1,4)< -> 1/4.
        assert!(close(auroc(&[3.0, 1.0], &[2.0, 4.0])?, 0.25));
        // One tie among 4 pairs: (2,2) = 1/2, (2,1) = 1, (3,2) = 1, (3,1) = 1 -> 3.5/4.
        assert!(close(auroc(&[2.0, 3.0], &[2.0, 1.0])?, 0.875));
        assert!(auroc(&[], &[1.0]).is_err());
        assert!(auroc(&[f64::NAN], &[1.0]).is_err());
        Ok(())
    }

    #[test]
    fn msp_auroc_prefers_confident_in_distribution() -> HarnessResult<()> {
        let confident = Tensor::new(&[[5f32, 0.], [0., 4.]], &Device::Cpu)?;
        let unsure = Tensor::new(&[[0.1f32, 0.], [0., 0.2]], &Device::Cpu)?;
        assert!(close(msp_auroc(&confident, &unsure)?, 1.0));
        assert!(close(msp_auroc(&unsure, &confident)?, 0.0));
        Ok(())
    }

    #[test]
    fn mean_std_sample_std_and_single_value() -> HarnessResult<()> {
        let ms = MeanStd::from_values(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])?;
        assert!(close(ms.mean, 5.0));
        // Sum of squares 32, n - 1 = 7.
        assert!(close(ms.std, (32.0f64 / 7.0).sqrt()));
        assert_eq!(ms.n, 8);
        let one = MeanStd::from_values(&[0.3])?;
        assert_eq!((one.mean, one.std), (0.3, 0.0));
        assert!(MeanStd::from_values(&[]).is_err());
        Ok(())
    }

    #[test]
    fn mean_std_formatting() -> HarnessResult<()> {
        let ms = MeanStd::from_values(&[0.870, 0.876])?;
        assert_eq!(format!("{:.1}", ms.scaled(100.0)), "87.3 ± 0.4");
        assert_eq!(format!("{ms}"), "0.873 ± 0.004");
        Ok(())
    }
}
