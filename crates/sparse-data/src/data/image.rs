//! [`ImageDataset`]: labelled images stored as bytes.

use candle_core::{Device, Tensor};

use super::{Batch, ClassificationSet, DataError, check_indices};

/// Labelled images, stored compactly as one byte per pixel value.
///
/// Pixels are kept as `u8` (MNIST's 60,000 training images take 47 MB instead
/// of 188 MB as `f32`) and scaled to `[0, 1]` by [`ImageDataset::max_value`]
/// only when a batch is built. Images are stored in `(n, channels, height,
/// width)` order (CHW per image), the layout candle's `conv2d` expects.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDataset {
    pixels: Vec<u8>,
    labels: Vec<u32>,
    channels: usize,
    height: usize,
    width: usize,
    num_classes: usize,
    max_value: u8,
}

impl ImageDataset {
    /// Builds a data set, checking that the sizes agree.
    ///
    /// `pixels` holds `labels.len() * channels * height * width` values in CHW
    /// order per image; every label must be below `num_classes`; `max_value`
    /// (the largest possible pixel value, 255 for MNIST, 16 for sklearn digits)
    /// must be positive.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u32>,
        channels: usize,
        height: usize,
        width: usize,
        num_classes: usize,
        max_value: u8,
    ) -> Result<Self, DataError> {
        let per_image = channels
            .checked_mul(height)
            .and_then(|v| v.checked_mul(width))
            .ok_or_else(|| DataError::argument("channels", "image size overflows"))?;
        if per_image == 0 {
            return Err(DataError::argument(
                "channels",
                format!("images must not be empty, got {channels}x{height}x{width}"),
            ));
        }
        if Some(pixels.len()) != labels.len().checked_mul(per_image) {
            return Err(DataError::argument(
                "pixels",
                format!(
                    "{} pixel values for {} images of {channels}x{height}x{width}",
                    pixels.len(),
                    labels.len()
                ),
            ));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= num_classes) {
            return Err(DataError::argument(
                "labels",
                format!("label {bad} is not below num_classes = {num_classes}"),
            ));
        }
        if max_value == 0 {
            return Err(DataError::argument("max_value", "must be positive"));
        }
        Ok(Self {
            pixels,
            labels,
            channels,
            height,
            width,
            num_classes,
            max_value,
        })
    }

    /// All pixel values, `(n, channels, height, width)` row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixel values of image `i`, or `None` if out of range.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let size = self.image_size();
        let start = i.checked_mul(size)?;
        self.pixels.get(start..start.checked_add(size)?)
    }

    /// Number of channels (1 for grey-scale, 3 for RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of values of one image: `channels * height * width`.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The largest possible pixel value; batches divide by it.
    pub fn max_value(&self) -> u8 {
        self.max_value
    }

    /// Returns the same images with `num_classes` raised to `num_classes`
    /// (e.g. so that a test split lacking the last class agrees with its
    /// training split). Fails if a label is not below it.
    pub fn with_num_classes(mut self, num_classes: usize) -> Result<Self, DataError> {
        if let Some(bad) = self.labels.iter().find(|&&l| l as usize >= num_classes) {
            return Err(DataError::argument(
                "num_classes",
                format!("label {bad} is not below {num_classes}"),
            ));
        }
        self.num_classes = num_classes;
        Ok(self)
    }

    /// The images at `indices`, in that order, as a new data set with the same
    /// shape, classes and pixel scale.
    pub fn subset(&self, indices: &[usize]) -> Result<Self, DataError> {
        check_indices(indices, self.len())?;
        let size = self.image_size();
        let mut pixels = Vec::with_capacity(indices.len() * size);
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * size..(i + 1) * size]);
        }
        Ok(Self {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            ..*self
        })
    }

    /// Images at `indices` as `f32` values in `[0, 1]`, flattened `(b, c*h*w)`.
    pub fn batch_values(&self, indices: &[usize]) -> Result<Vec<f32>, DataError> {
        check_indices(indices, self.len())?;
        let size = self.image_size();
        let scale = 1.0 / f32::from(self.max_value);
        let mut values = Vec::with_capacity(indices.len() * size);
        for &i in indices {
            values.extend(
                self.pixels[i * size..(i + 1) * size]
                    .iter()
                    .map(|&p| f32::from(p) * scale),
            );
        }
        Ok(values)
    }
}

impl ClassificationSet for ImageDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn sample_shape(&self) -> Vec<usize> {
        vec![self.channels, self.height, self.width]
    }

    fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Inputs have shape `(b, channels, height, width)`, values in `[0, 1]`.
    fn batch(&self, indices: &[usize], device: &Device) -> Result<Batch, DataError> {
        let values = self.batch_values(indices)?;
        let inputs = Tensor::from_vec(
            values,
            (indices.len(), self.channels, self.height, self.width),
            device,
        )?;
        let targets: Vec<u32> = indices.iter().map(|&i| self.labels[i]).collect();
        let targets = Tensor::from_vec(targets, indices.len(), device)?;
        Ok(Batch { inputs, targets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_images() -> ImageDataset {
        ImageDataset::new(
            vec![0, 255, 51, 102, 10, 20, 30, 40],
            vec![1, 0],
            1,
            2,
            2,
            2,
            255,
        )
        .unwrap()
    }

    #[test]
    fn subset_keeps_the_chosen_images_in_order() {
        let set = two_images();
        let sub = set.subset(&[1, 1, 0]).unwrap();
        assert_eq!(sub.len(), 3);
        assert_eq!(sub.labels(), &[0, 0, 1]);
        assert_eq!(sub.image(0), set.image(1));
        assert_eq!(sub.image(2), set.image(0));
        assert_eq!(sub.max_value(), 255);
        assert!(set.subset(&[2]).is_err());
    }

    #[test]
    fn batch_scales_and_orders_by_index() {
        let set = two_images();
        let batch = set.batch(&[1, 0, 1], &Device::Cpu).unwrap();
        assert_eq!(batch.inputs.dims(), &[3, 1, 2, 2]);
        let flat: Vec<f32> = batch.inputs.flatten_all().unwrap().to_vec1().unwrap();
        assert!((flat[0] - 10.0 / 255.0).abs() < 1e-7);
        assert!((flat[5] - 1.0).abs() < 1e-7);
        assert_eq!(batch.targets.to_vec1::<u32>().unwrap(), vec![0, 1, 0]);
    }

    #[test]
    fn out_of_range_index_is_an_error() {
        let err = two_images().batch(&[2], &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("index 2"), "{err}");
    }

    #[test]
    fn new_rejects_inconsistent_sizes_and_labels() {
        assert!(ImageDataset::new(vec![0; 7], vec![0, 0], 1, 2, 2, 1, 255).is_err());
        assert!(ImageDataset::new(vec![0; 8], vec![0, 2], 1, 2, 2, 2, 255).is_err());
        assert!(ImageDataset::new(vec![0; 8], vec![0, 1], 1, 2, 2, 2, 0).is_err());
    }
}
