//! SVG scatter plots: groups of points (e.g. a GAN's samples, one group per arm)
//! over marked reference points (e.g. the modes of the target mixture).

use std::path::Path;

use plotters::prelude::*;

use crate::error::{HarnessError, HarnessResult};
use crate::run_dir::write_atomic;

/// A scatter plot: named groups of points, and reference marks drawn as crosses.
///
/// ```
/// use sparse_repro::plot::ScatterPlot;
/// let svg = ScatterPlot::new("samples", "x", "y")
///     .with_group("dense", vec![(0.1, 0.0), (1.9, 0.1)])
///     .with_marks("modes", vec![(0.0, 0.0), (2.0, 0.0)])
///     .to_svg_string()?;
/// assert!(svg.contains("dense") && svg.contains("modes"));
/// # Ok::<(), sparse_repro::HarnessError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPlot {
    /// The title above the plot.
    pub title: String,
    /// The x-axis label.
    pub x_label: String,
    /// The y-axis label.
    pub y_label: String,
    /// Named groups of points, one colour each.
    pub groups: Vec<(String, Vec<(f64, f64)>)>,
    /// Named reference points, drawn as black crosses over the groups.
    pub marks: Option<(String, Vec<(f64, f64)>)>,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

impl ScatterPlot {
    /// An empty 600×600 plot.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            groups: Vec::new(),
            marks: None,
            size: (600, 600),
        }
    }

    /// Adds a group of points.
    pub fn with_group(mut self, name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.groups.push((name.into(), points));
        self
    }

    /// Sets the reference marks.
    pub fn with_marks(mut self, name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.marks = Some((name.into(), points));
        self
    }

    fn all_points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.groups
            .iter()
            .flat_map(|(_, p)| p.iter())
            .chain(self.marks.iter().flat_map(|(_, p)| p.iter()))
    }

    /// Renders the plot as an SVG document.
    pub fn to_svg_string(&self) -> HarnessResult<String> {
        if self.all_points().next().is_none() {
            return Err(HarnessError::invalid(
                "groups",
                "no points",
                "a plot needs at least one point",
            ));
        }
        if self
            .all_points()
            .any(|(x, y)| !x.is_finite() || !y.is_finite())
        {
            return Err(HarnessError::invalid(
                "points",
                &self.title,
                "coordinates must be finite",
            ));
        }
        let (mut lo, mut hi) = (
            (f64::INFINITY, f64::INFINITY),
            (f64::NEG_INFINITY, f64::NEG_INFINITY),
        );
        for &(x, y) in self.all_points() {
            lo = (lo.0.min(x), lo.1.min(y));
            hi = (hi.0.max(x), hi.1.max(y));
        }
        let pad = |a: f64, b: f64| {
            let m = if b > a { 0.05 * (b - a) } else { 0.5 };
            (a - m)..(b + m)
        };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
            self.draw(&root, pad(lo.0, hi.0), pad(lo.1, hi.1))
                .map_err(|message| HarnessError::Plot {
                    path: self.title.clone().into(),
                    message,
                })?;
        }
        Ok(svg)
    }

    /// Renders the plot and writes it (atomically) to `path`.
    pub fn write_svg(&self, path: &Path) -> HarnessResult<()> {
        write_atomic(path, self.to_svg_string()?.as_bytes())
    }

    fn draw(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        x: std::ops::Range<f64>,
        y: std::ops::Range<f64>,
    ) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(x, y)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .draw()
            .map_err(|e| err(&e))?;
        for (index, (name, points)) in self.groups.iter().enumerate() {
            let color = Palette99::pick(index).to_rgba().mix(0.6);
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 2, color.filled())))
                .map_err(|e| err(&e))?
                .label(name.as_str())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
        if let Some((name, points)) = &self.marks {
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Cross::new(p, 6, BLACK.stroke_width(2))),
                )
                .map_err(|e| err(&e))?
                .label(name.as_str())
                .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
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

    #[test]
    fn groups_and_marks_are_drawn_and_bad_points_refused() -> HarnessResult<()> {
        let svg = ScatterPlot::new("8 Gaussians", "x", "y")
            .with_group("dense", vec![(0.0, 2.0), (2.0, 0.0), (0.1, 1.9)])
            .with_group("static", vec![(0.0, -2.0)])
            .with_marks("modes", vec![(0.0, 2.0), (2.0, 0.0), (0.0, -2.0)])
            .to_svg_string()?;
        assert!(svg.starts_with("<svg"));
        for text in ["8 Gaussians", "dense", "static", "modes"] {
            assert!(svg.contains(text), "missing {text}");
        }
        // 4 group points + 1 legend dot per group
        assert_eq!(svg.matches("<circle").count(), 4 + 2);
        assert!(ScatterPlot::new("t", "x", "y").to_svg_string().is_err());
        let nan = ScatterPlot::new("t", "x", "y").with_group("a", vec![(f64::NAN, 0.0)]);
        assert!(nan.to_svg_string().is_err());
        Ok(())
    }
}
