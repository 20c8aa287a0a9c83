//! SVG line plots (plotters, SVG backend only) such as accuracy vs density, one series per arm;
//! SVG scatter plots of samples over reference points ([`ScatterPlot`]); PNG grids of
//! grey-scale images ([`write_image_grid`]).
//!
//! Text needs no system font: without plotters' `ttf` feature, labels are written as
//! SVG `<text>` elements whose size plotters only estimates, and the viewer renders
//! them with its own font.
//!
//! ```
//! use sparse_repro::plot::{LinePlot, Series};
//! let plot = LinePlot::new("Accuracy vs density", "density", "test accuracy")
//!     .log_x(true)
//!     .with_series(Series::new("rigl", vec![(0.05, 0.88), (0.1, 0.91), (0.2, 0.93)])
//!         .with_errors(vec![0.01, 0.004, 0.003]))
//!     .with_series(Series::new("static", vec![(0.05, 0.84), (0.1, 0.89), (0.2, 0.92)]));
//! let svg = plot.to_svg_string().unwrap();
//! assert!(svg.contains("Accuracy vs density"));
//! ```

mod image_grid;
mod scatter;

pub use image_grid::{GridLayout, image_grid_png, write_image_grid};
pub use scatter::ScatterPlot;

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::error::{HarnessError, HarnessResult};
use crate::run_dir::write_atomic;

/// One named line of `(x, y)` points, with optional symmetric error bars (± per point).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend name (e.g. the arm).
    pub name: String,
    /// The points, drawn in the given order.
    pub points: Vec<(f64, f64)>,
    /// Half-heights of error bars (e.g. std over seeds), one per point.
    pub errors: Option<Vec<f64>>,
}

impl Series {
    /// A series without error bars.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            errors: None,
        }
    }

    /// Adds error bars, one half-height per point.
    pub fn with_errors(mut self, errors: Vec<f64>) -> Self {
        self.errors = Some(errors);
        self
    }
}

/// A line plot with a title, axis labels, a legend and one or more series.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    /// The title above the plot.
    pub title: String,
    /// The x-axis label.
    pub x_label: String,
    /// The y-axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Whether the x axis is logarithmic (all x must then be positive).
    pub log_x: bool,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

impl LinePlot {
    /// An empty 800×500 plot with linear axes.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            log_x: false,
            size: (800, 500),
        }
    }

    /// Adds a series.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Makes the x axis logarithmic (useful for density from 1 % to 100 %).
    pub fn log_x(mut self, log_x: bool) -> Self {
        self.log_x = log_x;
        self
    }

    /// Renders the plot as an SVG document.
    pub fn to_svg_string(&self) -> HarnessResult<String> {
        self.validate()?;
        let (x_range, y_range) = self.ranges();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
            let drawn = if self.log_x {
                self.draw(&root, x_range.log_scale(), y_range)
            } else {
                self.draw(&root, x_range, y_range)
            };
            drawn.map_err(|message| self.plot_error(message))?;
        }
        Ok(svg)
    }

    /// Renders the plot and writes it (atomically) to `path`.
    pub fn write_svg(&self, path: &Path) -> HarnessResult<()> {
        let svg = self.to_svg_string()?;
        write_atomic(path, svg.as_bytes())
    }

    fn plot_error(&self, message: String) -> HarnessError {
        HarnessError::Plot {
            path: self.title.clone().into(),
            message,
        }
    }

    fn validate(&self) -> HarnessResult<()> {
        if self.series.iter().all(|s| s.points.is_empty()) {
            return Err(HarnessError::invalid(
                "series",
                "no points",
                "a plot needs at least one point",
            ));
        }
        for series in &self.series {
            if series
                .points
                .iter()
                .any(|(x, y)| !x.is_finite() || !y.is_finite())
            {
                return Err(HarnessError::invalid(
                    "points",
                    &series.name,
                    "coordinates must be finite",
                ));
            }
            if self.log_x && series.points.iter().any(|(x, _)| *x <= 0.0) {
                return Err(HarnessError::invalid(
                    "points",
                    &series.name,
                    "a log x axis needs x > 0",
                ));
            }
            if let Some(errors) = &series.errors
                && errors.len() != series.points.len()
            {
                return Err(HarnessError::SizeMismatch {
                    what: format!("error bars of series `{}`", series.name),
                    expected: series.points.len(),
                    got: errors.len(),
                });
            }
        }
        Ok(())
    }

    /// Data ranges with a 5 % margin on y (including error bars) and a non-empty span.
    fn ranges(&self) -> (Range<f64>, Range<f64>) {
        let mut x = (f64::INFINITY, f64::NEG_INFINITY);
        let mut y = (f64::INFINITY, f64::NEG_INFINITY);
        for series in &self.series {
            for (i, &(px, py)) in series.points.iter().enumerate() {
                let e = series.errors.as_ref().map_or(0.0, |errors| errors[i].abs());
                x = (x.0.min(px), x.1.max(px));
                y = (y.0.min(py - e), y.1.max(py + e));
            }
        }
        let widen = |(lo, hi): (f64, f64), relative: bool| {
            if hi > lo {
                let pad = if relative { 0.0 } else { 0.05 * (hi - lo) };
                (lo - pad)..(hi + pad)
            } else if relative {
                (lo / 2.0)..(hi * 2.0)
            } else {
                (lo - 0.5)..(hi + 0.5)
            }
        };
        (widen(x, self.log_x), widen(y, false))
    }

    fn draw<X>(
        &self,
        root: &DrawingArea<SVGBackend<'_>, Shift>,
        x_range: X,
        y_range: Range<f64>,
    ) -> Result<(), String>
    where
        X: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
    {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .draw()
            .map_err(|e| err(&e))?;
        for (index, series) in self.series.iter().enumerate() {
            let color = Palette99::pick(index).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    series.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(series.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    series
                        .points
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| err(&e))?;
            if let Some(errors) = &series.errors {
                // Vertical bars only: caps would need the x scale's pixel width.
                let bars = series.points.iter().zip(errors).map(|(&(x, y), &e)| {
                    PathElement::new(
                        vec![(x, y - e.abs()), (x, y + e.abs())],
                        color.stroke_width(1),
                    )
                });
                chart.draw_series(bars).map_err(|e| err(&e))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot() -> LinePlot {
        LinePlot::new("Accuracy vs density", "density", "test accuracy")
            .with_series(
                Series::new("rigl", vec![(0.1, 0.9), (0.5, 0.93)]).with_errors(vec![0.01, 0.02]),
            )
            .with_series(Series::new("static", vec![(0.1, 0.85), (0.5, 0.92)]))
    }

    #[test]
    fn svg_has_labels_and_one_path_per_series() -> HarnessResult<()> {
        for log_x in [false, true] {
            let svg = plot().log_x(log_x).to_svg_string()?;
            assert!(svg.starts_with("<svg"), "{svg}");
            let texts: Vec<&str> = svg.lines().map(str::trim).collect();
            for text in [
                "Accuracy vs density",
                "density",
                "test accuracy",
                "rigl",
                "static",
            ] {
                assert!(
                    texts.contains(&text),
                    "missing text {text} (log_x = {log_x})"
                );
            }
            // 2 lines + 2 legend samples + 2 error bars (PathElement) are polylines.
            assert!(svg.matches("<polyline").count() >= 6, "{svg}");
            assert_eq!(svg.matches("<circle").count(), 4);
        }
        Ok(())
    }

    #[test]
    fn invalid_plots_are_rejected() {
        assert!(LinePlot::new("t", "x", "y").to_svg_string().is_err());
        let bad_errors = LinePlot::new("t", "x", "y")
            .with_series(Series::new("a", vec![(1.0, 1.0)]).with_errors(vec![]));
        assert!(bad_errors.to_svg_string().is_err());
        let bad_log = LinePlot::new("t", "x", "y")
            .log_x(true)
            .with_series(Series::new("a", vec![(0.0, 1.0)]));
        assert!(bad_log.to_svg_string().is_err());
        let single = LinePlot::new("t", "x", "y").with_series(Series::new("a", vec![(1.0, 1.0)]));
        assert!(single.to_svg_string().is_ok());
    }

    #[test]
    fn write_svg_creates_the_file() -> HarnessResult<()> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::io("tempdir", e))?;
        let path = dir.path().join("acc.svg");
        plot().write_svg(&path)?;
        let text = std::fs::read_to_string(&path).map_err(|e| HarnessError::io(&path, e))?;
        assert!(text.contains("</svg>"));
        Ok(())
    }
}
