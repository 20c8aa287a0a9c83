//! Keeping freed memory in the process, so that a training step's buffers are
//! recycled instead of being returned to the kernel and faulted in afresh.
//!
//! Every candle op allocates its result. With glibc's defaults, blocks above the
//! (adaptive) mmap threshold come straight from `mmap` and go back with `munmap`,
//! and a freed heap top above 128 KiB is trimmed: the next step then pays a page
//! fault and the zeroing of every page it touches. On random-pruning's ResNet-8 that
//! was a third of the step (`clear_page_erms`, `exc_page_fault` and the memory
//! cgroup's bookkeeping in `perf`), and the settings below halved the step time (see
//! the crate README). The cost is a larger resident set: up to [`TRIM_THRESHOLD`]
//! of freed memory stays mapped.

/// Blocks below this come from the heap (glibc's largest allowed value, 32 MiB on
/// 64-bit targets), so one step's tensors are reused by the next.
pub const MMAP_THRESHOLD: usize = 32 * 1024 * 1024;

/// Freed memory at the top of the heap is returned to the kernel only above this.
pub const TRIM_THRESHOLD: usize = 1024 * 1024 * 1024;

/// What [`retain_freed_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MallocTuning {
    /// glibc's thresholds were raised.
    Applied,
    /// `GLIBC_TUNABLES` already sets malloc parameters: the user's choice stands.
    LeftToEnvironment,
    /// Not glibc (musl, macOS, Windows): nothing to do.
    Unsupported,
    /// glibc refused a value (it returns 0 from `mallopt`).
    Refused,
}

/// Raises glibc's mmap and trim thresholds for this process (see the module docs).
///
/// Call it once at the start of a binary, before the first large allocation; the
/// paper binaries and `sparse-benches` do. Safe to call more than once.
pub fn retain_freed_memory() -> MallocTuning {
    if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.")) {
        return MallocTuning::LeftToEnvironment;
    }
    imp::apply()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::{MMAP_THRESHOLD, MallocTuning, TRIM_THRESHOLD};
    use std::ffi::c_int;

    // From glibc's <malloc.h>.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;

    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    pub(super) fn apply() -> MallocTuning {
        let set = |param, value: usize| {
            let value = c_int::try_from(value).unwrap_or(c_int::MAX);
            // SAFETY: `mallopt` only updates malloc's parameters under its own lock.
            unsafe { mallopt(param, value) == 1 }
        };
        if set(M_MMAP_THRESHOLD, MMAP_THRESHOLD) && set(M_TRIM_THRESHOLD, TRIM_THRESHOLD) {
            MallocTuning::Applied
        } else {
            MallocTuning::Refused
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn apply() -> super::MallocTuning {
        super::MallocTuning::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_accepts_the_thresholds() {
        let outcome = retain_freed_memory();
        if cfg!(all(target_os = "linux", target_env = "gnu"))
            && std::env::var("GLIBC_TUNABLES").is_err()
        {
            assert_eq!(outcome, MallocTuning::Applied);
        } else {
            assert_ne!(outcome, MallocTuning::Refused);
        }
        // Allocation still works afterwards, above and below the threshold.
        let big = vec![1u8; MMAP_THRESHOLD + 1];
        let small = vec![2u8; 4096];
        assert_eq!(big[MMAP_THRESHOLD] + small[0], 3);
    }
}
