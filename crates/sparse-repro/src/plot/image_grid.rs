//! Grey-scale image grids as PNG files: generated digits, one picture per arm.

use std::path::Path;

use crate::error::{HarnessError, HarnessResult};
use crate::run_dir::write_atomic;

/// How a grid lays its images out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridLayout {
    /// Pixel rows of one image.
    pub height: usize,
    /// Pixel columns of one image.
    pub width: usize,
    /// Images per row of the grid.
    pub columns: usize,
    /// Every pixel drawn as a `scale`×`scale` block.
    pub scale: usize,
}

/// The PNG bytes of `values` (images of `layout.height × layout.width` grey values
/// in `[0, 1]`, clipped, one after the other) laid out `layout.columns` to a row
/// with a one-pixel (scaled) white gap.
///
/// ```
/// use sparse_repro::plot::{GridLayout, image_grid_png};
/// let two = [0.0f32, 1.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5]; // two 2x2 images
/// let png = image_grid_png(&two, GridLayout { height: 2, width: 2, columns: 2, scale: 1 })?;
/// assert_eq!(&png[1..4], b"PNG");
/// # Ok::<(), sparse_repro::HarnessError>(())
/// ```
pub fn image_grid_png(values: &[f32], layout: GridLayout) -> HarnessResult<Vec<u8>> {
    let GridLayout {
        height,
        width,
        columns,
        scale,
    } = layout;
    let size = height * width;
    if size == 0
        || columns == 0
        || scale == 0
        || values.is_empty()
        || !values.len().is_multiple_of(size)
    {
        return Err(HarnessError::invalid(
            "values",
            values.len(),
            format!(
                "whole images of {height}x{width} (at least one), with positive columns and scale"
            ),
        ));
    }
    let n = values.len() / size;
    let rows = n.div_ceil(columns);
    let cell = |extent: usize| (extent + 1) * scale;
    let (out_w, out_h) = (columns * cell(width) + scale, rows * cell(height) + scale);
    let mut pixels = vec![255u8; out_w * out_h];
    for (k, image) in values.chunks(size).enumerate() {
        let (top, left) = (
            (k / columns) * cell(height) + scale,
            (k % columns) * cell(width) + scale,
        );
        for (i, &v) in image.iter().enumerate() {
            let grey = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let (r, c) = (i / width, i % width);
            for dy in 0..scale {
                let start = (top + r * scale + dy) * out_w + left + c * scale;
                pixels[start..start + scale].fill(grey);
            }
        }
    }
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, out_w as u32, out_h as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let encode = |e: png::EncodingError| HarnessError::Plot {
            path: "image grid".into(),
            message: e.to_string(),
        };
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(&pixels).map_err(encode)?;
    }
    Ok(png)
}

/// [`image_grid_png`] written (atomically) to `path`.
pub fn write_image_grid(path: &Path, values: &[f32], layout: GridLayout) -> HarnessResult<()> {
    write_atomic(path, &image_grid_png(values, layout)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_the_images_in_place_with_gaps() -> HarnessResult<()> {
        // three 2x3 images: all black, all white, a gradient
        let mut values = vec![0.0f32; 6];
        values.extend([1.0; 6]);
        values.extend([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        let layout = GridLayout {
            height: 2,
            width: 3,
            columns: 2,
            scale: 2,
        };
        let png = image_grid_png(&values, layout)?;
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        // 2 columns of (3 + 1)·2 plus a 2-pixel border; 2 rows of (2 + 1)·2 plus 2
        assert_eq!((info.width, info.height), (18, 14));
        let px = |x: usize, y: usize| buf[y * 18 + x];
        assert_eq!(px(0, 0), 255); // the border
        assert_eq!(px(2, 2), 0); // image 0, black
        assert_eq!(px(10, 2), 255); // image 1, white
        assert_eq!(px(6, 8), 102); // image 2, row 0, column 2: 0.4
        assert_eq!(px(4, 10), 204); // image 2, row 1, column 1: 0.8
        assert_eq!(px(10, 8), 255); // no fourth image: white
        assert!(image_grid_png(&values[..5], layout).is_err());
        Ok(())
    }
}
