//! Parameter validation, in one place: every builder and config of the crate checks
//! its hyperparameters with these functions, and every rejection is a
//! [`SparseError::InvalidHyperparameter`] naming the parameter (built by
//! [`SparseError::invalid`]), so a new method's builder validates the same way.
//!
//! ```
//! use sparse_core::SparseError;
//! use sparse_core::validate::{check_fraction, check_positive};
//!
//! assert!(check_fraction("death_rate", 0.3).is_ok());
//! let err = check_positive("lr", -1.0).unwrap_err();
//! assert!(matches!(err, SparseError::InvalidHyperparameter { name: "lr", .. }));
//! ```

use crate::error::{Result, SparseError};

/// `v` in `[0, 1]` (a rate, a sparsity, a fraction of steps).
pub fn check_fraction(name: &'static str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(SparseError::invalid(name, v, "must lie in [0, 1]"))
    }
}

/// `v` finite and in `[0, 1)` (a decay or a momentum coefficient).
pub fn check_fraction_below_one(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(SparseError::invalid(name, v, "must lie in [0, 1)"))
    }
}

/// `v` in `(0, 1]`: a density (full but not empty), a BatchNorm momentum.
pub fn check_fraction_above_zero(name: &'static str, v: f64) -> Result<()> {
    if v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        Err(SparseError::invalid(name, v, "must lie in (0, 1]"))
    }
}

/// A global density in `(0, 1]`; the error names `density`.
pub fn check_density(density: f64) -> Result<()> {
    check_fraction_above_zero("density", density)
}

/// `v` finite and `> 0` (a learning rate, a scale).
pub fn check_positive(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(SparseError::invalid(name, v, "must be finite and > 0"))
    }
}

/// `v` finite and `>= 0` (a weight decay, an exponent).
pub fn check_non_negative(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(SparseError::invalid(name, v, "must be finite and >= 0"))
    }
}

/// A count or a period `> 0`.
pub fn check_nonzero(name: &'static str, v: usize) -> Result<()> {
    if v > 0 {
        Ok(())
    } else {
        Err(SparseError::invalid(name, v, "must be > 0"))
    }
}

/// `v` finite (any sign).
pub fn check_finite(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(SparseError::invalid(name, v, "must be finite"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(r: Result<()>) -> &'static str {
        match r {
            Err(SparseError::InvalidHyperparameter { name, .. }) => name,
            other => panic!("expected an invalid hyperparameter, got {other:?}"),
        }
    }

    #[test]
    fn each_check_accepts_its_range_and_names_the_parameter_outside_it() {
        assert!(check_fraction("a", 0.0).is_ok() && check_fraction("a", 1.0).is_ok());
        assert_eq!(name_of(check_fraction("a", 1.01)), "a");
        assert_eq!(name_of(check_fraction("a", f64::NAN)), "a");
        assert!(check_fraction_below_one("b", 0.0).is_ok());
        assert_eq!(name_of(check_fraction_below_one("b", 1.0)), "b");
        assert!(check_density(1.0).is_ok());
        assert_eq!(name_of(check_density(0.0)), "density");
        assert_eq!(name_of(check_fraction_above_zero("c", 1.5)), "c");
        assert!(check_positive("d", 1e-9).is_ok());
        assert_eq!(name_of(check_positive("d", 0.0)), "d");
        assert_eq!(name_of(check_positive("d", f64::INFINITY)), "d");
        assert!(check_non_negative("e", 0.0).is_ok());
        assert_eq!(name_of(check_non_negative("e", -1e-9)), "e");
        assert!(check_nonzero("f", 1).is_ok());
        assert_eq!(name_of(check_nonzero("f", 0)), "f");
        assert!(check_finite("g", -3.0).is_ok());
        assert_eq!(name_of(check_finite("g", f64::NAN)), "g");
    }

    #[test]
    fn the_message_carries_value_and_range() {
        let msg = check_fraction("death_rate", 1.5).unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid hyperparameter `death_rate` = 1.5: must lie in [0, 1]"
        );
    }
}
