use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// `n` images of `channels × height × width` with uniform random values in
/// `0..=max_value`, labels cycling over 3 classes.
fn random_set(
    n: usize,
    channels: usize,
    height: usize,
    width: usize,
    max_value: u8,
) -> ImageDataset {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let pixels = (0..n * channels * height * width)
        .map(|_| rng.random_range(0..=max_value))
        .collect();
    let labels = (0..n as u32).map(|i| i % 3).collect();
    ImageDataset::new(pixels, labels, channels, height, width, 3, max_value).unwrap()
}

/// Every image filled with `value`.
fn constant_set(n: usize, channels: usize, height: usize, width: usize, value: u8) -> ImageDataset {
    let pixels = vec![value; n * channels * height * width];
    ImageDataset::new(pixels, vec![0; n], channels, height, width, 1, 255).unwrap()
}

/// Mean |corrupted − clean| in `[0, 1]` units.
fn mean_abs_diff(clean: &ImageDataset, corrupted: &ImageDataset) -> f64 {
    let max = f64::from(clean.max_value());
    let total: f64 = clean
        .pixels()
        .iter()
        .zip(corrupted.pixels())
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs() / max)
        .sum();
    total / clean.pixels().len() as f64
}

/// Mean and standard deviation of all values, in `[0, 1]` units.
fn mean_std(set: &ImageDataset) -> (f64, f64) {
    let max = f64::from(set.max_value());
    let values: Vec<f64> = set.pixels().iter().map(|&p| f64::from(p) / max).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    (mean, var.sqrt())
}

/// The sizes the tests run on: digits, Fashion-MNIST, CIFAR, non-square, and
/// one above 32 (scaled blurs).
fn sample_sets() -> Vec<ImageDataset> {
    vec![
        random_set(12, 1, 8, 8, 16),
        random_set(6, 1, 28, 28, 255),
        random_set(4, 3, 32, 32, 255),
        random_set(40, 3, 5, 7, 255),
        random_set(2, 3, 64, 64, 255),
    ]
}

#[test]
fn shape_labels_classes_and_max_value_are_preserved() {
    for clean in sample_sets() {
        for corruption in Corruption::ALL {
            for severity in 1..=MAX_SEVERITY {
                let out = corrupt(&clean, corruption, severity, 1).unwrap();
                assert_eq!(out.sample_shape(), clean.sample_shape(), "{corruption}");
                assert_eq!(out.len(), clean.len());
                assert_eq!(out.labels(), clean.labels());
                assert_eq!(out.num_classes(), clean.num_classes());
                assert_eq!(out.max_value(), clean.max_value());
                assert!(out.pixels().iter().all(|&p| p <= clean.max_value()));
            }
        }
    }
}

#[test]
fn severity_outside_one_to_five_is_rejected_naming_it() {
    let clean = random_set(2, 1, 8, 8, 16);
    for severity in [0, 6, 255] {
        for corruption in Corruption::ALL {
            let err = corrupt(&clean, corruption, severity, 0).unwrap_err();
            assert!(
                matches!(
                    err,
                    DataError::Argument {
                        parameter: "severity",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let err = corrupted_suite(&clean, &Corruption::ALL, &[1, severity], 0).unwrap_err();
        assert!(err.to_string().contains("`severity`"), "{err}");
    }
}

#[test]
fn names_round_trip_and_an_unknown_name_lists_the_valid_ones() {
    for corruption in Corruption::ALL {
        assert_eq!(corruption.name().parse::<Corruption>().unwrap(), corruption);
        assert_eq!(corruption.to_string(), corruption.name());
    }
    assert_eq!(
        "Gaussian_Noise".parse::<Corruption>().unwrap(),
        Corruption::GaussianNoise
    );
    let err = "fog".parse::<Corruption>().unwrap_err();
    let message = err.to_string();
    assert!(message.contains("`corruption`"), "{message}");
    for corruption in Corruption::ALL {
        assert!(message.contains(corruption.name()), "{message}");
    }
}

#[test]
fn same_seed_same_output_and_another_seed_other_noise() {
    let clean = random_set(4, 3, 32, 32, 255);
    for corruption in Corruption::ALL {
        let a = corrupt(&clean, corruption, 3, 42).unwrap();
        assert_eq!(
            a,
            corrupt(&clean, corruption, 3, 42).unwrap(),
            "{corruption}"
        );
        let b = corrupt(&clean, corruption, 3, 43).unwrap();
        assert_eq!(a != b, corruption.is_random(), "{corruption}");
    }
}

#[test]
fn an_images_noise_does_not_depend_on_the_other_images() {
    // Shot and impulse noise consume a content-dependent amount of randomness,
    // so a single stream shared by all images would fail this.
    let clean = random_set(3, 3, 16, 16, 255);
    let mut pixels = clean.pixels().to_vec();
    let first = clean.image_size();
    pixels[..first].iter_mut().for_each(|p| *p = 255 - *p);
    let altered = ImageDataset::new(pixels, clean.labels().to_vec(), 3, 16, 16, 3, 255).unwrap();
    for corruption in Corruption::ALL.into_iter().filter(|c| c.is_random()) {
        let a = corrupt(&clean, corruption, 5, 8).unwrap();
        let b = corrupt(&altered, corruption, 5, 8).unwrap();
        assert_ne!(a.image(0), b.image(0), "{corruption}");
        for i in 1..3 {
            assert_eq!(a.image(i), b.image(i), "{corruption}, image {i}");
            // Processing image i alone (as a parallel worker would) gives the same bytes.
            let alone = corrupt_image(&clean, i, corruption, 5, 8);
            assert_eq!(
                a.image(i),
                Some(alone.as_slice()),
                "{corruption}, image {i}"
            );
        }
    }
}

#[test]
fn damage_grows_with_severity_for_every_corruption() {
    for clean in sample_sets() {
        for corruption in Corruption::ALL {
            let damage: Vec<f64> = (1..=MAX_SEVERITY)
                .map(|s| mean_abs_diff(&clean, &corrupt(&clean, corruption, s, 5).unwrap()))
                .collect();
            let shape = clean.sample_shape();
            assert!(damage[0] > 0.0, "{corruption} {shape:?}: {damage:?}");
            assert!(
                damage.windows(2).all(|w| w[1] >= w[0]),
                "{corruption} {shape:?}: {damage:?}"
            );
        }
    }
}

#[test]
fn noise_levels_match_the_recipe() {
    // Mid-grey, so that clipping does not bite.
    let clean = constant_set(4, 3, 32, 32, 128);
    let gauss = corrupt(&clean, Corruption::GaussianNoise, 5, 3).unwrap();
    let (_, std) = mean_std(&gauss);
    assert!((std - 0.10).abs() < 0.01, "gaussian σ 0.10, got {std}");
    let impulse = corrupt(&clean, Corruption::ImpulseNoise, 5, 3).unwrap();
    let hit = impulse
        .pixels()
        .iter()
        .filter(|&&p| p == 0 || p == 255)
        .count() as f64;
    let fraction = hit / impulse.pixels().len() as f64;
    assert!(
        (fraction - 0.07).abs() < 0.015,
        "impulse 0.07, got {fraction}"
    );
    // Shot noise at λ = 50: std of Poisson(50x)/50 is sqrt(x/50).
    let shot = corrupt(&clean, Corruption::ShotNoise, 5, 3).unwrap();
    let (_, std) = mean_std(&shot);
    let expected = (128.0 / 255.0 / 50.0f64).sqrt();
    assert!(
        (std - expected).abs() < 0.1 * expected,
        "shot {expected}, got {std}"
    );
}

#[test]
fn brightness_raises_the_mean_and_contrast_lowers_the_std() {
    for clean in [random_set(6, 3, 32, 32, 255), random_set(12, 1, 8, 8, 16)] {
        let (mean, std) = mean_std(&clean);
        for severity in 1..=MAX_SEVERITY {
            let bright = corrupt(&clean, Corruption::Brightness, severity, 0).unwrap();
            assert!(mean_std(&bright).0 > mean, "brightness {severity}");
            let flat = corrupt(&clean, Corruption::Contrast, severity, 0).unwrap();
            let (flat_mean, flat_std) = mean_std(&flat);
            assert!(flat_std < std, "contrast {severity}");
            assert!((flat_mean - mean).abs() < 0.01, "contrast keeps the mean");
        }
    }
}

#[test]
fn brightness_shifts_the_hsv_value_and_keeps_the_hue() {
    // One RGB pixel (0.4, 0.2, 0), one black pixel, as 1×2 images of 3 channels.
    let clean = ImageDataset::new(vec![100, 0, 50, 0, 0, 0], vec![0], 3, 1, 2, 1, 250).unwrap();
    let out = corrupt(&clean, Corruption::Brightness, 5, 0).unwrap();
    // Value 0.4 → 0.7: every component scaled by 7/4; black → grey 0.3.
    assert_eq!(out.pixels(), &[175, 75, 88, 75, 0, 75]);
    let grey = ImageDataset::new(vec![4, 15], vec![0], 1, 1, 2, 1, 16).unwrap();
    let out = corrupt(&grey, Corruption::Brightness, 3, 0).unwrap();
    // 4/16 + 0.15 = 0.4 → 6.4 → 6; 15/16 + 0.15 clipped to 1.
    assert_eq!(out.pixels(), &[6, 16]);
}

#[test]
fn blur_of_a_constant_image_is_that_constant() {
    for (channels, height, width) in [(1, 8, 8), (3, 32, 32), (1, 3, 11), (1, 1, 5), (3, 96, 96)] {
        let clean = constant_set(2, channels, height, width, 77);
        for corruption in [Corruption::GaussianBlur, Corruption::DefocusBlur] {
            for severity in 1..=MAX_SEVERITY {
                let out = corrupt(&clean, corruption, severity, 0).unwrap();
                assert_eq!(out, clean, "{corruption} {severity} at {height}x{width}");
            }
        }
    }
}

#[test]
fn blur_spreads_a_point_and_keeps_its_mass() {
    let mut values = vec![0.0f32; 9 * 9];
    values[4 * 9 + 4] = 1.0;
    let shape = Shape {
        channels: 1,
        height: 9,
        width: 9,
    };
    let mut blurred = values.clone();
    ops::gaussian_blur(&mut blurred, shape, 1.0);
    let total: f32 = blurred.iter().sum();
    assert!((total - 1.0).abs() < 1e-5);
    assert!(blurred[4 * 9 + 4] < 0.2 && blurred[4 * 9 + 5] > 0.05);
    let (half, kernel) = ops::disk_kernel(1.5, 0.1);
    ops::filter(&mut values, shape, half, &kernel);
    // Radius 1.5 covers the 3×3 square: 1/9 each.
    assert!((values[3 * 9 + 3] - 1.0 / 9.0).abs() < 1e-3);
    assert!(values[2 * 9 + 4] < 1e-3);
}

#[test]
fn pixelate_of_a_block_multiple_is_piecewise_constant() {
    let clean = random_set(1, 2, 8, 12, 255);
    let max = 255.0f32;
    let mut values: Vec<f32> = clean.pixels().iter().map(|&p| f32::from(p) / max).collect();
    let original = values.clone();
    let shape = Shape {
        channels: 2,
        height: 8,
        width: 12,
    };
    // Blocks of 2 × 3.
    ops::pixelate(&mut values, shape, 4, 4);
    for c in 0..2 {
        let plane = |v: &[f32], y: usize, x: usize| v[c * 96 + y * 12 + x];
        for by in 0..4 {
            for bx in 0..4 {
                let cells: Vec<(usize, usize)> = (0..2)
                    .flat_map(|dy| (0..3).map(move |dx| (2 * by + dy, 3 * bx + dx)))
                    .collect();
                let mean = cells
                    .iter()
                    .map(|&(y, x)| plane(&original, y, x))
                    .sum::<f32>()
                    / 6.0;
                for &(y, x) in &cells {
                    assert!(
                        (plane(&values, y, x) - mean).abs() < 1e-5,
                        "block ({by}, {bx})"
                    );
                }
            }
        }
    }
    // Through `corrupt`: a 3×3 image at severity 5 keeps ⌊3 · 0.65⌋ = 1 pixel,
    // one block, so every pixel becomes the (rounded) mean.
    let small = ImageDataset::new(
        vec![0, 10, 20, 30, 40, 50, 60, 70, 80],
        vec![0],
        1,
        3,
        3,
        1,
        255,
    )
    .unwrap();
    let out = corrupt(&small, Corruption::Pixelate, 5, 0).unwrap();
    assert_eq!(out.pixels(), &[40; 9]);
}

#[test]
fn suite_builds_every_pair_with_its_own_seed() {
    let clean = random_set(3, 1, 8, 8, 16);
    let corruptions = [Corruption::ShotNoise, Corruption::Contrast];
    let suite = corrupted_suite(&clean, &corruptions, &[1, 4], 11).unwrap();
    let pairs: Vec<(Corruption, u8)> = suite.iter().map(|(c, s, _)| (*c, *s)).collect();
    assert_eq!(
        pairs,
        vec![
            (Corruption::ShotNoise, 1),
            (Corruption::ShotNoise, 4),
            (Corruption::Contrast, 1),
            (Corruption::Contrast, 4),
        ]
    );
    for (corruption, severity, set) in &suite {
        let seed = suite_seed(11, *corruption, *severity);
        assert_eq!(set, &corrupt(&clean, *corruption, *severity, seed).unwrap());
    }
    let seeds: std::collections::HashSet<u64> = Corruption::ALL
        .into_iter()
        .flat_map(|c| (1..=MAX_SEVERITY).map(move |s| suite_seed(11, c, s)))
        .collect();
    assert_eq!(
        seeds.len(),
        Corruption::ALL.len() * usize::from(MAX_SEVERITY)
    );
    assert!(corrupted_suite(&clean, &[], &[1], 0).is_err());
    assert!(corrupted_suite(&clean, &corruptions, &[], 0).is_err());
}
