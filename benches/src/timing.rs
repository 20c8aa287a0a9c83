//! Median wall-clock timing with a time budget.

use std::time::{Duration, Instant};

use anyhow::Result;

/// How many repetitions to run, within which time budget.
#[derive(Debug, Clone, Copy)]
pub struct Timer {
    /// At least this many timed repetitions while the budget lasts.
    pub reps: usize,
    /// Stop repeating once this much time has been spent (at least one repetition
    /// always runs: nothing is extrapolated).
    pub budget: Duration,
    /// Keep repeating (beyond `reps`, within the budget) until this much time has been
    /// sampled: a median of 15 runs of a 0.3 ms kernel spans 5 ms, so one burst of
    /// interference on a shared 2-core machine can move it by half; a median over
    /// half a second cannot be moved that way.
    pub min_sampled: Duration,
}

/// A measured median.
#[derive(Debug, Clone, Copy)]
pub struct Measurement {
    /// Median over the repetitions, in milliseconds.
    pub median_ms: f64,
    /// How many repetitions were timed.
    pub reps: usize,
}

impl Timer {
    /// Times `f`. A first run under 1 s is a discarded warm-up; a slower first run is
    /// kept as a sample (warming up a 50 s candle baseline would double the report).
    pub fn measure(&self, mut f: impl FnMut() -> Result<()>) -> Result<Measurement> {
        let start = Instant::now();
        let t0 = Instant::now();
        f()?;
        let first = t0.elapsed();
        let mut samples = Vec::new();
        if first > Duration::from_secs(1) {
            samples.push(first.as_secs_f64() * 1e3);
        }
        let sampled = Instant::now();
        let wants_more = |n: usize| n < self.reps || sampled.elapsed() < self.min_sampled;
        while wants_more(samples.len()) && (samples.is_empty() || start.elapsed() < self.budget) {
            let t = Instant::now();
            f()?;
            samples.push(t.elapsed().as_secs_f64() * 1e3);
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median_ms = if n % 2 == 1 {
            samples[n / 2]
        } else {
            0.5 * (samples[n / 2 - 1] + samples[n / 2])
        };
        Ok(Measurement { median_ms, reps: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(reps: usize, budget: Duration, min_sampled: Duration) -> Timer {
        Timer {
            reps,
            budget,
            min_sampled,
        }
    }

    fn count_calls(timer: Timer, call: Duration) -> Measurement {
        timer
            .measure(|| {
                std::thread::sleep(call);
                Ok(())
            })
            .expect("the closure cannot fail")
    }

    #[test]
    fn short_kernels_are_sampled_for_the_minimum_time() {
        let timer = timer(3, Duration::from_secs(5), Duration::from_millis(60));
        // 1 ms calls: three repetitions would span 3 ms, so the minimum time rules
        // (loosely bounded: a loaded machine may stretch each sleep).
        let m = count_calls(timer, Duration::from_millis(1));
        assert!(m.reps > 6, "{} repetitions in 60 ms of 1 ms calls", m.reps);
        assert!(m.median_ms >= 1.0, "median {} ms", m.median_ms);
    }

    #[test]
    fn without_a_minimum_time_the_repetition_count_rules() {
        let timer = timer(3, Duration::from_secs(5), Duration::ZERO);
        assert_eq!(count_calls(timer, Duration::from_millis(1)).reps, 3);
    }

    #[test]
    fn the_budget_caps_the_minimum_time() {
        let timer = timer(3, Duration::from_millis(30), Duration::from_secs(10));
        let m = count_calls(timer, Duration::from_millis(5));
        assert!(
            (1..=8).contains(&m.reps),
            "{} repetitions in a 30 ms budget",
            m.reps
        );
    }
}
