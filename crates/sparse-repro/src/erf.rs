//! The effective receptive field (ERF) of a convolutional network, measured as
//! SLaK's `erf/` scripts measure it (after Luo et al. 2016 and RepLKNet).
//!
//! For each input image, the contribution map is `ReLU(∂ Σ_c ReLU(y[c, h/2, w/2]) / ∂x)`:
//! the gradient of the centre pixel of the network's output map (every channel,
//! after a ReLU) with respect to the input, negative parts cut, summed over input
//! channels. [`ErfMap`] averages these maps over the images (the official scripts
//! average over 50 validation images); [`ErfMap::scaled`] is the
//! official `log10(x + 1)` normalised to a maximum of 1; [`ErfMap::area_ratio`] is
//! the share of the image covered by the smallest centred square holding a fraction
//! `t` of the scaled map's total (the paper's "high-contribution area ratio" at
//! `t` ∈ {0.2, 0.3, 0.5, 0.99}).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use sparse_repro::erf::ErfMap;
//!
//! // A 3x3 box filter: every output pixel sees exactly a 3x3 input patch.
//! let kernel = Tensor::ones((1, 1, 3, 3), DType::F32, &Device::Cpu)?;
//! let images = Tensor::ones((2, 1, 9, 9), DType::F32, &Device::Cpu)?;
//! let erf = ErfMap::measure(|x| x.conv2d(&kernel, 1, 1, 1, 1), &images)?;
//! assert_eq!(erf.area_ratio(0.99)?, 9.0 / 81.0);
//! # Ok::<(), sparse_repro::HarnessError>(())
//! ```

use candle_core::{DType, Tensor, Var};

use crate::error::{HarnessError, HarnessResult};
use crate::plot::{GridLayout, write_image_grid};

/// The summed contribution map of an ERF measurement, `height × width` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ErfMap {
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// The mean over images of `ReLU(∂ centre / ∂ input)`, summed over input channels.
    pub values: Vec<f64>,
}

impl ErfMap {
    /// Measures `forward` (images `[n, c, h, w]` → feature map `[n, C, H, W]`, built
    /// from differentiable candle ops) on `images`, one image at a time.
    pub fn measure<F>(forward: F, images: &Tensor) -> HarnessResult<Self>
    where
        F: Fn(&Tensor) -> candle_core::Result<Tensor>,
    {
        let (n, _, height, width) = images.dims4()?;
        if n == 0 {
            return Err(HarnessError::invalid(
                "images",
                0,
                "at least one image is needed",
            ));
        }
        let mut values = vec![0f64; height * width];
        for i in 0..n {
            let input = Var::from_tensor(&images.narrow(0, i, 1)?.to_dtype(DType::F32)?)?;
            let out = forward(input.as_tensor())?;
            let (_, _, oh, ow) = out.dims4().map_err(|_| {
                HarnessError::invalid(
                    "forward",
                    format!("{:?}", out.dims()),
                    "must return a [n, channels, height, width] feature map",
                )
            })?;
            let centre = out.narrow(2, oh / 2, 1)?.narrow(3, ow / 2, 1)?;
            let target = centre.relu()?.sum_all()?;
            let grads = target.backward()?;
            let Some(grad) = grads.get(input.as_tensor()) else {
                continue; // the centre does not depend on the input (all ReLUs off)
            };
            let map = grad.relu()?.sum(1)?.flatten_all()?.to_vec1::<f32>()?;
            for (v, g) in values.iter_mut().zip(map) {
                *v += f64::from(g);
            }
        }
        for v in &mut values {
            *v /= n as f64;
        }
        Ok(Self {
            height,
            width,
            values,
        })
    }

    /// `log10(x + 1)` of the map, divided by its maximum (all zeros stay zeros).
    pub fn scaled(&self) -> Vec<f64> {
        let logged: Vec<f64> = self.values.iter().map(|v| (v + 1.0).log10()).collect();
        let max = logged.iter().copied().fold(0.0, f64::max);
        if max > 0.0 {
            logged.iter().map(|v| v / max).collect()
        } else {
            logged
        }
    }

    /// The area (share of the image) of the smallest square centred on the image
    /// centre whose scaled contributions sum to more than `t` of the total, `t` in
    /// `(0, 1)`; 1 when only the whole image does.
    pub fn area_ratio(&self, t: f64) -> HarnessResult<f64> {
        if !(t > 0.0 && t < 1.0) {
            return Err(HarnessError::invalid(
                "t",
                t,
                "must lie strictly between 0 and 1",
            ));
        }
        let scaled = self.scaled();
        let total: f64 = scaled.iter().sum();
        if total <= 0.0 {
            return Ok(0.0);
        }
        let (ch, cw) = (self.height / 2, self.width / 2);
        let largest = self.height.max(self.width);
        for half in 0..=largest {
            let rows = ch.saturating_sub(half)..(ch + half + 1).min(self.height);
            let cols = cw.saturating_sub(half)..(cw + half + 1).min(self.width);
            let sum: f64 = rows
                .clone()
                .flat_map(|r| cols.clone().map(move |c| r * self.width + c))
                .map(|i| scaled[i])
                .sum();
            if sum > t * total {
                return Ok((rows.len() * cols.len()) as f64 / (self.height * self.width) as f64);
            }
        }
        Ok(1.0)
    }

    /// Writes the scaled map as a grey-scale PNG (white = the largest contribution),
    /// each pixel drawn `scale` times larger.
    pub fn write_png(&self, path: &std::path::Path, scale: usize) -> HarnessResult<()> {
        let pixels: Vec<f32> = self.scaled().iter().map(|&v| v as f32).collect();
        write_image_grid(
            path,
            &pixels,
            GridLayout {
                height: self.height,
                width: self.width,
                columns: 1,
                scale,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_known_kernel_gives_its_footprint_and_larger_kernels_larger_areas() -> HarnessResult<()> {
        let images = Tensor::ones((1, 1, 11, 11), DType::F32, &Device::Cpu)?;
        // a 3x3 kernel with weights 1..9: the contribution map is the kernel itself
        // around the centre (cross-correlation: input (5+i−1, 5+j−1) meets k[i][j])
        let kernel = Tensor::arange(1f32, 10.0, &Device::Cpu)?.reshape((1, 1, 3, 3))?;
        let erf = ErfMap::measure(|x| x.conv2d(&kernel, 1, 1, 1, 1), &images)?;
        for i in 0..3 {
            for j in 0..3 {
                assert_eq!(erf.values[(4 + i) * 11 + 4 + j], (3 * i + j + 1) as f64);
            }
        }
        assert_eq!(erf.values.iter().filter(|v| **v != 0.0).count(), 9);
        let scaled = erf.scaled();
        assert!((scaled[6 * 11 + 6] - 1.0).abs() < 1e-12); // the 9 is the maximum
        assert_eq!(erf.area_ratio(0.99)?, 9.0 / 121.0);
        // the centre pixel alone holds log10(6)/log10(10) of the maximum: more than
        // 0.1 of the total? total = Σ log10(k+1)/1 for k = 1..9
        let total: f64 = (1..=9).map(|k| ((k + 1) as f64).log10()).sum();
        let centre = 6f64.log10();
        assert_eq!(erf.area_ratio(centre / total * 0.99)?, 1.0 / 121.0);
        // two stacked 3x3 box filters see 5x5
        let ones = Tensor::ones((1, 1, 3, 3), DType::F32, &Device::Cpu)?;
        let two = ErfMap::measure(
            |x| x.conv2d(&ones, 1, 1, 1, 1)?.conv2d(&ones, 1, 1, 1, 1),
            &images,
        )?;
        // the map is a mean over images: three copies of the image give the same map
        let three = Tensor::ones((3, 1, 11, 11), DType::F32, &Device::Cpu)?;
        let mean = ErfMap::measure(|x| x.conv2d(&kernel, 1, 1, 1, 1), &three)?;
        assert_eq!(mean.values, erf.values);
        assert_eq!(two.values.iter().filter(|v| **v != 0.0).count(), 25);
        assert!(two.area_ratio(0.99)? > erf.area_ratio(0.99)?);
        assert!(erf.area_ratio(1.0).is_err());
        Ok(())
    }
}
