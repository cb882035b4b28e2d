//! Process-wide hardening: keep secrets out of core dumps and swap.

/// Marks the process non-dumpable so that no core dump or ptrace attach by an unprivileged
/// user can read key material. Returns false if the kernel refused.
pub fn set_non_dumpable() -> bool {
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 }
}

/// Locks the memory range `[ptr, ptr+len)` into RAM so it is never written to swap.
/// Returns false if the kernel refused (typically `RLIMIT_MEMLOCK`).
pub fn lock_memory(ptr: *const u8, len: usize) -> bool {
    // SAFETY: mlock only reads the address range; the caller passes a live allocation.
    unsafe { libc::mlock(ptr.cast(), len) == 0 }
}
