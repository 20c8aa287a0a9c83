//! UTC timestamps formatted by hand from [`SystemTime`] (no date-time dependency).

use std::time::{SystemTime, UNIX_EPOCH};

/// Calendar date and time of day in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDateTime {
    /// Year, e.g. 2026.
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=59.
    pub second: u32,
}

impl UtcDateTime {
    /// The UTC date and time of `time` (times before 1970 are clamped to the epoch).
    pub fn from_system_time(time: SystemTime) -> Self {
        let seconds = time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::from_unix_seconds(seconds as i64)
    }

    /// The UTC date and time `seconds` after 1970-01-01T00:00:00Z.
    pub fn from_unix_seconds(seconds: i64) -> Self {
        let days = seconds.div_euclid(86_400);
        let of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: (of_day / 3600) as u32,
            minute: (of_day % 3600 / 60) as u32,
            second: (of_day % 60) as u32,
        }
    }

    /// The current UTC time.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// ISO-8601 extended format, e.g. `2026-11-28T10:15:00Z`.
    pub fn iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// ISO-8601 basic format, safe in file names, e.g. `20261128T101500Z`.
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), by the
/// era-based algorithm of Howard Hinnant's "chrono-compatible low-level date algorithms".
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(
            UtcDateTime::from_unix_seconds(0).iso8601(),
            "1970-01-01T00:00:00Z"
        );
        // 2000-02-29T12:34:56Z, a leap day in a century leap year.
        assert_eq!(
            UtcDateTime::from_unix_seconds(951_827_696).iso8601(),
            "2000-02-29T12:34:56Z"
        );
        // 2026-11-28T10:15:00Z
        let t = UtcDateTime::from_unix_seconds(1_795_860_900);
        assert_eq!(t.iso8601(), "2026-11-28T10:15:00Z");
        assert_eq!(t.compact(), "20261128T101500Z");
        // 2024-12-31T23:59:59Z then 2025-01-01.
        assert_eq!(
            UtcDateTime::from_unix_seconds(1_735_689_599).iso8601(),
            "2024-12-31T23:59:59Z"
        );
        assert_eq!(
            UtcDateTime::from_unix_seconds(1_735_689_600).iso8601(),
            "2025-01-01T00:00:00Z"
        );
    }
}
