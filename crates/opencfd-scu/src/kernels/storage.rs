//! Access to the `f64` storage behind a field tensor, for the fused kernels.
//!
//! Every field is a contiguous `[components, nz + 8, ny + 8, nx + 8]` tensor: the
//! components outermost (structure of arrays, as the official code stores them) and
//! `x` fastest, with [`crate::GHOST`] ghost layers on each side.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout};

use crate::GHOST;

/// The shape of a padded field as the kernels see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldShape {
    /// Number of components (5 conservative variables, 10 geometry terms...).
    pub components: usize,
    /// Padded sizes `[x, y, z]`, ghosts included.
    pub padded: [usize; 3],
}

impl FieldShape {
    /// Reads the shape of a contiguous `[c, z, y, x]` layout.
    pub fn of(layout: &Layout) -> candle_core::Result<Self> {
        let dims = layout.dims();
        if dims.len() != 4 || !layout.is_contiguous() {
            candle_core::bail!(
                "a field must be a contiguous [c, z, y, x] tensor, got {:?}",
                layout.shape()
            );
        }
        let shape = Self {
            components: dims[0],
            padded: [dims[3], dims[2], dims[1]],
        };
        if shape.padded.iter().any(|&n| n <= 2 * GHOST) {
            candle_core::bail!(
                "a field needs {GHOST} ghost layers around at least one point, got {:?}",
                layout.shape()
            );
        }
        Ok(shape)
    }

    /// Interior sizes `[nx, ny, nz]`.
    pub fn interior(&self) -> [usize; 3] {
        self.padded.map(|n| n - 2 * GHOST)
    }

    /// Points in one component.
    pub fn plane_len(&self) -> usize {
        self.padded.iter().product()
    }

    /// Element stride of a unit step along direction `d` (0 = x, 1 = y, 2 = z).
    pub fn stride(&self, d: usize) -> usize {
        match d {
            0 => 1,
            1 => self.padded[0],
            _ => self.padded[0] * self.padded[1],
        }
    }

    /// Offset of padded point `(i, j, k)` within one component.
    #[inline]
    pub fn at(&self, i: usize, j: usize, k: usize) -> usize {
        (k * self.padded[1] + j) * self.padded[0] + i
    }
}

/// The `f64` values of a contiguous storage, from its layout's start.
pub fn values<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f64]> {
    match storage {
        CpuStorage::F64(data) => Ok(&data[layout.start_offset()..]),
        other => candle_core::bail!("fields are f64, got {:?}", other.dtype()),
    }
}

/// The mutable `f64` values of a contiguous storage, from its layout's start.
pub fn values_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a mut [f64]> {
    match storage {
        CpuStorage::F64(data) => Ok(&mut data[layout.start_offset()..]),
        other => candle_core::bail!("fields are f64, got {:?}", other.dtype()),
    }
}

/// A raw pointer to an output buffer that parallel workers write at disjoint indices.
///
/// The kernels split the work by lines or planes so that no two workers touch the same
/// element; the slice borrow outlives every worker because rayon joins them first.
#[derive(Clone, Copy)]
pub(crate) struct DisjointWriter {
    ptr: *mut f64,
    len: usize,
}

// SAFETY: workers only write indices no other worker reads or writes (see each use).
unsafe impl Send for DisjointWriter {}
unsafe impl Sync for DisjointWriter {}

impl DisjointWriter {
    pub(crate) fn new(data: &mut [f64]) -> Self {
        Self {
            ptr: data.as_mut_ptr(),
            len: data.len(),
        }
    }

    /// Adds `value` to element `index`.
    ///
    /// # Safety
    /// No other worker may access `index` concurrently.
    #[inline]
    pub(crate) unsafe fn add(&self, index: usize, value: f64) {
        debug_assert!(index < self.len);
        unsafe { *self.ptr.add(index) += value };
    }

    /// Reads element `index`.
    ///
    /// # Safety
    /// No other worker may write `index` concurrently.
    #[inline]
    pub(crate) unsafe fn get(&self, index: usize) -> f64 {
        debug_assert!(index < self.len);
        unsafe { *self.ptr.add(index) }
    }

    /// Overwrites element `index`.
    ///
    /// # Safety
    /// No other worker may access `index` concurrently.
    #[inline]
    pub(crate) unsafe fn set(&self, index: usize, value: f64) {
        debug_assert!(index < self.len);
        unsafe { *self.ptr.add(index) = value };
    }
}
