//! Published test accuracies on the `quick`/`paper` data sets, shown beside our
//! DSN arm in `report.md` ([`anchors`]).
//!
//! The DSN paper's own per-data-set tables could not be read for this
//! reproduction, so the numbers are two widely used published baselines, read
//! from the result files their authors committed to their repositories:
//!
//! - univariate (UCR 2018): ROCKET (Dempster, Petitjean & Webb, *Data Mining and
//!   Knowledge Discovery* 2020), `angus924/rocket`, `results/results_ucr.csv`
//!   (commit `41cfd4b`, the default train/test split), column `accuracy_mean`
//!   (mean over runs; the repository's script defaults to 10 runs);
//! - multivariate (UEA 2018): InceptionTime (Ismail Fawaz et al., *Data Mining
//!   and Knowledge Discovery* 2020), `hfawaz/InceptionTime`, `results-mts.csv`
//!   (commit `0d623a3`), column `accuracy` (one run, iteration 0).
//!
//! They are other methods at full training budgets, not DSN: a reference for
//! what these sets allow, not a target this crate's `quick` sizes should reach.

use sparse_repro::report::Anchor;

use crate::config::Arm;

/// The source of the univariate numbers.
pub const ROCKET_SOURCE: &str = "ROCKET (Dempster et al. 2020): angus924/rocket results/results_ucr.csv @41cfd4b, accuracy_mean (10 runs)";

/// The source of the multivariate numbers.
pub const INCEPTION_TIME_SOURCE: &str = "InceptionTime (Ismail Fawaz et al. 2020): hfawaz/InceptionTime results-mts.csv @0d623a3, accuracy (1 run)";

/// Published test accuracy per data set: `(name, accuracy, source)`, the
/// accuracy exactly as written in the source file.
pub const PUBLISHED: [(&str, f64, &str); 7] = [
    ("GunPoint", 1.0, ROCKET_SOURCE),
    ("ItalyPowerDemand", 0.96958212, ROCKET_SOURCE),
    ("ArrowHead", 0.81428571, ROCKET_SOURCE),
    ("OSULeaf", 0.94090909, ROCKET_SOURCE),
    ("ACSF1", 0.886, ROCKET_SOURCE),
    ("BasicMotions", 1.0, INCEPTION_TIME_SOURCE),
    ("JapaneseVowels", 0.9918918918918921, INCEPTION_TIME_SOURCE),
];

/// The published accuracy of the data set called `name` (case-insensitive).
pub fn published_accuracy(name: &str) -> Option<(f64, &'static str)> {
    PUBLISHED
        .iter()
        .find(|(known, _, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, accuracy, source)| (accuracy, source))
}

/// One anchor per data set of `names` with a published number, beside our DSN
/// arm on that data set (mean test accuracy, official model selection).
pub fn anchors(names: &[String]) -> Vec<Anchor> {
    names
        .iter()
        .filter_map(|name| {
            published_accuracy(name).map(|(accuracy, source)| {
                Anchor::new(Arm::Dsn.name(), "test_accuracy_mean", accuracy, source)
                    .on_dataset(name.clone())
                    .with_note(
                        "published: another method at full budget; ours: DSN at the preset's size",
                    )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_data_set_has_a_number_and_lookup_ignores_case() {
        for name in [
            "gunpoint",
            "italypowerdemand",
            "arrowhead",
            "osuleaf",
            "acsf1",
            "basicmotions",
            "japanesevowels",
        ] {
            assert!(published_accuracy(name).is_some(), "{name}");
        }
        assert_eq!(
            published_accuracy("osuleaf"),
            Some((0.94090909, ROCKET_SOURCE))
        );
        assert_eq!(published_accuracy("Wafer"), None);
    }

    #[test]
    fn anchors_name_the_dsn_arm_and_the_data_set() {
        let names = vec![
            "ACSF1".to_string(),
            "Wafer".to_string(),
            "BasicMotions".to_string(),
        ];
        let anchors = anchors(&names);
        assert_eq!(anchors.len(), 2);
        assert_eq!(anchors[0].arm, "dsn");
        assert_eq!(anchors[0].metric, "test_accuracy_mean");
        assert_eq!(anchors[0].dataset.as_deref(), Some("ACSF1"));
        assert_eq!(anchors[0].paper, 0.886);
        assert_eq!(anchors[1].dataset.as_deref(), Some("BasicMotions"));
        assert_eq!(anchors[1].source, INCEPTION_TIME_SOURCE);
    }
}
