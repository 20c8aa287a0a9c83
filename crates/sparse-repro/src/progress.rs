//! Training progress: an indicatif bar on a terminal, plain lines otherwise, or nothing.
//!
//! ```
//! use sparse_repro::progress::{Progress, ProgressMode};
//! let mut progress = Progress::new("rigl-s0", 10, ProgressMode::Quiet).with_unit("epoch");
//! for _epoch in 0..10 {
//!     progress.update(&[("loss", 0.412), ("acc", 0.871)]);
//! }
//! progress.finish("done");
//! ```
//! In [`ProgressMode::Lines`] each update prints to stderr, for instance
//! `[rigl-s0] epoch 3/10 loss 0.412 acc 0.871`.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always an indicatif bar.
    Bars,
    /// Always one plain line per update on stderr (logs, CI).
    Lines,
    /// Nothing at all (tests).
    Quiet,
}

impl ProgressMode {
    /// Resolves [`ProgressMode::Auto`] by looking at stderr.
    pub fn resolve(self) -> Self {
        match self {
            Self::Auto if std::io::stderr().is_terminal() => Self::Bars,
            Self::Auto => Self::Lines,
            other => other,
        }
    }
}

/// Formats one progress line: `[label] unit done/total name value ...`, values with 3 decimals.
pub fn format_progress_line(
    label: &str,
    unit: &str,
    done: u64,
    total: u64,
    metrics: &[(&str, f64)],
) -> String {
    let mut line = format!("[{label}] {unit} {done}/{total}");
    line.push_str(&format_metrics(metrics));
    line
}

fn format_metrics(metrics: &[(&str, f64)]) -> String {
    metrics
        .iter()
        .map(|(name, value)| format!(" {name} {value:.3}"))
        .collect()
}

/// Progress of one arm's run over a known number of units (epochs or steps).
#[derive(Debug)]
pub struct Progress {
    label: String,
    unit: String,
    total: u64,
    done: u64,
    mode: ProgressMode,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Progress of `total` units labelled `label` (typically `arm-seed`), shown per `mode`.
    pub fn new(label: impl Into<String>, total: u64, mode: ProgressMode) -> Self {
        let label = label.into();
        let mode = mode.resolve();
        let bar = (mode == ProgressMode::Bars).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(format!("[{label}]"));
            bar
        });
        Self {
            label,
            unit: "epoch".into(),
            total,
            done: 0,
            mode,
            bar,
        }
    }

    /// Names the unit shown in lines (default `"epoch"`).
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = unit.into();
        self
    }

    /// The resolved mode (never [`ProgressMode::Auto`]).
    pub fn mode(&self) -> ProgressMode {
        self.mode
    }

    /// The number of units completed so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Marks one more unit done and shows `metrics` (name, value) beside it.
    pub fn update(&mut self, metrics: &[(&str, f64)]) {
        self.done += 1;
        match self.mode {
            ProgressMode::Bars => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format_metrics(metrics).trim_start().to_string());
                    bar.inc(1);
                }
            }
            ProgressMode::Lines => eprintln!(
                "{}",
                format_progress_line(&self.label, &self.unit, self.done, self.total, metrics)
            ),
            ProgressMode::Quiet | ProgressMode::Auto => {}
        }
    }

    /// Prints a free-form message (above the bar, or as a line), unless quiet.
    pub fn message(&self, text: &str) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(format!("[{}] {text}", self.label)),
            (None, ProgressMode::Lines) => eprintln!("[{}] {text}", self.label),
            _ => {}
        }
    }

    /// Ends the progress display with a final message.
    pub fn finish(&self, text: &str) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.finish_with_message(text.to_string()),
            (None, ProgressMode::Lines) => eprintln!("[{}] {text}", self.label),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let line = format_progress_line(
            "dense",
            "epoch",
            3,
            10,
            &[("loss", 0.4123), ("acc", 0.87149)],
        );
        assert_eq!(line, "[dense] epoch 3/10 loss 0.412 acc 0.871");
    }

    #[test]
    fn quiet_counts_without_output_and_modes_resolve() {
        let mut progress = Progress::new("arm", 2, ProgressMode::Quiet);
        progress.update(&[("loss", 1.0)]);
        progress.update(&[]);
        assert_eq!(progress.done(), 2);
        assert_eq!(progress.mode(), ProgressMode::Quiet);
        assert_ne!(ProgressMode::Auto.resolve(), ProgressMode::Auto);
        assert_eq!(ProgressMode::Lines.resolve(), ProgressMode::Lines);
    }
}
