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
