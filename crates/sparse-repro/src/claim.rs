//! A paper's qualitative claim, checked against a run's own numbers.
//!
//! `passed` is always computed from `values` by the helpers below, so a report can be
//! audited: the numbers that decided a claim are stored beside it. A value that is NaN
//! (e.g. a diverged run) makes every comparison fail.
//!
//! ```
//! use sparse_repro::claim::Claim;
//! let claim = Claim::at_least("dsn-beats-static", "DSN >= static sparse on average",
//!     "dsn", 0.912, "static", 0.897);
//! assert!(claim.passed);
//! assert_eq!(claim.values["dsn"], 0.912);
//! assert_eq!(claim.status(), "PASS");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One claim of a paper, the numbers that test it, and whether they support it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// A short, stable, kebab-case identifier (e.g. `"dsn-beats-static"`).
    pub id: String,
    /// The claim in words, as in the paper's issue.
    pub statement: String,
    /// Whether this run's values support the claim.
    pub passed: bool,
    /// The named numbers the decision was made from (NaN is written as `null`).
    #[serde(with = "nan_as_null::map")]
    pub values: BTreeMap<String, f64>,
}

impl Claim {
    /// A claim whose outcome was decided by the caller from `values`.
    ///
    /// Prefer the comparison helpers, which derive `passed` from the values themselves.
    pub fn new<K: Into<String>>(
        id: impl Into<String>,
        statement: impl Into<String>,
        passed: bool,
        values: impl IntoIterator<Item = (K, f64)>,
    ) -> Self {
        Self {
            id: id.into(),
            statement: statement.into(),
            passed,
            values: values.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }

    /// Passes when `lhs >= rhs`.
    pub fn at_least(
        id: impl Into<String>,
        statement: impl Into<String>,
        lhs_name: &str,
        lhs: f64,
        rhs_name: &str,
        rhs: f64,
    ) -> Self {
        Self::new(
            id,
            statement,
            lhs >= rhs,
            [(lhs_name, lhs), (rhs_name, rhs)],
        )
    }

    /// Passes when `lhs <= rhs`.
    pub fn at_most(
        id: impl Into<String>,
        statement: impl Into<String>,
        lhs_name: &str,
        lhs: f64,
        rhs_name: &str,
        rhs: f64,
    ) -> Self {
        Self::new(
            id,
            statement,
            lhs <= rhs,
            [(lhs_name, lhs), (rhs_name, rhs)],
        )
    }

    /// Passes when `lhs > rhs` (strictly).
    pub fn greater_than(
        id: impl Into<String>,
        statement: impl Into<String>,
        lhs_name: &str,
        lhs: f64,
        rhs_name: &str,
        rhs: f64,
    ) -> Self {
        Self::new(id, statement, lhs > rhs, [(lhs_name, lhs), (rhs_name, rhs)])
    }

    /// Passes when `lhs >= rhs - margin` ("`lhs` is at most `margin` worse than `rhs`",
    /// e.g. a sparse model within one accuracy point of dense). The margin is stored
    /// in `values` as `"margin"`.
    pub fn within_margin_below(
        id: impl Into<String>,
        statement: impl Into<String>,
        lhs_name: &str,
        lhs: f64,
        rhs_name: &str,
        rhs: f64,
        margin: f64,
    ) -> Self {
        Self::new(
            id,
            statement,
            lhs >= rhs - margin,
            [(lhs_name, lhs), (rhs_name, rhs), ("margin", margin)],
        )
    }

    /// Passes when `|value - target| <= tolerance`; stored as `name`, `target_name` and `"tolerance"`.
    pub fn close_to(
        id: impl Into<String>,
        statement: impl Into<String>,
        name: &str,
        value: f64,
        target_name: &str,
        target: f64,
        tolerance: f64,
    ) -> Self {
        Self::new(
            id,
            statement,
            (value - target).abs() <= tolerance,
            [
                (name, value),
                (target_name, target),
                ("tolerance", tolerance),
            ],
        )
    }

    /// Passes when every value of `series` (in the given order) is `>=` the one before:
    /// a monotone non-decreasing trend, e.g. accuracy as density grows.
    pub fn non_decreasing<K: Into<String>>(
        id: impl Into<String>,
        statement: impl Into<String>,
        series: impl IntoIterator<Item = (K, f64)>,
    ) -> Self {
        let series: Vec<(String, f64)> = series.into_iter().map(|(k, v)| (k.into(), v)).collect();
        let passed = series.windows(2).all(|pair| pair[1].1 >= pair[0].1)
            && series.iter().all(|(_, v)| !v.is_nan());
        Self::new(id, statement, passed, series)
    }

    /// Passes when every value of `series` (in the given order) is `<=` the one before:
    /// a monotone non-increasing trend, e.g. bits per character as more experts are
    /// active.
    pub fn non_increasing<K: Into<String>>(
        id: impl Into<String>,
        statement: impl Into<String>,
        series: impl IntoIterator<Item = (K, f64)>,
    ) -> Self {
        let series: Vec<(String, f64)> = series.into_iter().map(|(k, v)| (k.into(), v)).collect();
        let passed = series.windows(2).all(|pair| pair[1].1 <= pair[0].1)
            && series.iter().all(|(_, v)| !v.is_nan());
        Self::new(id, statement, passed, series)
    }

    /// `"PASS"` or `"FAIL"`.
    pub fn status(&self) -> &'static str {
        if self.passed { "PASS" } else { "FAIL" }
    }
}

/// Serde helpers that write NaN as JSON `null` and read `null` back as NaN
/// (serde_json writes non-finite floats as `null` but refuses to read `null` as `f64`).
pub mod nan_as_null {
    /// For `BTreeMap<String, f64>` fields: `#[serde(with = "nan_as_null::map")]`.
    pub mod map {
        use std::collections::BTreeMap;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Serialises the map (NaN and infinities become `null`).
        pub fn serialize<S: Serializer>(
            map: &BTreeMap<String, f64>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.collect_map(map.iter().map(|(k, v)| (k, v.is_finite().then_some(*v))))
        }

        /// Deserialises the map (`null` becomes NaN).
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<BTreeMap<String, f64>, D::Error> {
            let raw = BTreeMap::<String, Option<f64>>::deserialize(deserializer)?;
            Ok(raw
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_compute_passed_from_values() {
        assert!(Claim::at_least("a", "s", "x", 2.0, "y", 1.0).passed);
        assert!(Claim::at_least("a", "s", "x", 1.0, "y", 1.0).passed);
        assert!(!Claim::at_least("a", "s", "x", 0.5, "y", 1.0).passed);
        assert!(Claim::at_most("a", "s", "x", 0.5, "y", 1.0).passed);
        assert!(!Claim::at_most("a", "s", "x", 1.5, "y", 1.0).passed);
        assert!(!Claim::greater_than("a", "s", "x", 1.0, "y", 1.0).passed);
        assert!(Claim::greater_than("a", "s", "x", 1.1, "y", 1.0).passed);
        assert!(Claim::within_margin_below("a", "s", "sparse", 0.905, "dense", 0.91, 0.01).passed);
        assert!(!Claim::within_margin_below("a", "s", "sparse", 0.89, "dense", 0.91, 0.01).passed);
        assert!(Claim::close_to("a", "s", "v", 0.52, "t", 0.5, 0.05).passed);
        assert!(!Claim::close_to("a", "s", "v", 0.6, "t", 0.5, 0.05).passed);
        assert!(
            Claim::non_decreasing("a", "s", [("d0.1", 0.8), ("d0.5", 0.85), ("d1", 0.85)]).passed
        );
        assert!(!Claim::non_decreasing("a", "s", [("d0.1", 0.8), ("d0.5", 0.79)]).passed);
        assert!(Claim::non_increasing("a", "s", [("k1", 1.9), ("k2", 1.7), ("k4", 1.7)]).passed);
        assert!(!Claim::non_increasing("a", "s", [("k1", 1.9), ("k2", 1.91)]).passed);
    }

    #[test]
    fn nan_fails_and_values_are_kept() {
        let claim = Claim::at_least("a", "s", "x", f64::NAN, "y", 1.0);
        assert!(!claim.passed);
        assert_eq!(claim.status(), "FAIL");
        let claim = Claim::within_margin_below("id", "st", "sparse", 0.9, "dense", 0.92, 0.01);
        assert_eq!(claim.values.len(), 3);
        assert_eq!(claim.values["margin"], 0.01);
        assert_eq!(claim.values["dense"], 0.92);
        assert!(!Claim::non_decreasing("a", "s", [("x", 0.8), ("y", f64::NAN)]).passed);
        assert!(!Claim::non_increasing("a", "s", [("x", 0.8), ("y", f64::NAN)]).passed);
    }
}
