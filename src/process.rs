//! Process-wide hardening: keep secrets out of core dumps (key memory is locked against
//! swap where it is allocated, in `bls::SecretKey`).

/// Marks the process non-dumpable so that no core dump or ptrace attach by an unprivileged
/// user can read key material. Returns false if the kernel refused.
pub fn set_non_dumpable() -> bool {
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 }
}
