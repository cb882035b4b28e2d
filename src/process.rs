//! Process-wide hardening: keep secrets out of core dumps (key memory is locked against
//! swap where it is allocated, in `bls::SecretKey`). Every command calls [`harden`]
//! first (`cli/mod.rs`), not only `run`.

/// Marks the process non-dumpable so that no core dump or ptrace attach by an unprivileged
/// user can read key material. Returns false if the kernel refused.
pub fn set_non_dumpable() -> bool {
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 }
}

/// Sets the core-file size limit to 0 (soft and hard), so that even a crash of a process
/// that later becomes dumpable again writes no core file. Returns false if refused.
pub fn disable_core_dumps() -> bool {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads a valid rlimit struct that lives for the call.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) == 0 }
}

/// Hardening every keyguard command applies before it reads any secret: not dumpable (no
/// core dump, no ptrace by unprivileged users) and a core-file limit of 0. Returns the
/// names of the measures the kernel refused, for the caller to warn about.
///
/// Key pages are not marked `MADV_DONTDUMP`: a scalar is a 32-byte heap allocation, and
/// marking each one's page would split the heap into one mapping per key (100,000 keys
/// exceed the kernel's default of 65,530 mappings); the two measures above already keep
/// every page out of core files.
pub fn harden() -> Vec<&'static str> {
    let mut refused = Vec::new();
    if !set_non_dumpable() {
        refused.push("PR_SET_DUMPABLE=0");
    }
    if !disable_core_dumps() {
        refused.push("RLIMIT_CORE=0");
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardening_leaves_no_core_limit_and_no_dumpable_flag() {
        assert!(harden().is_empty());
        let mut limit = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: getrlimit writes into a valid rlimit struct.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
        assert_eq!((limit.rlim_cur, limit.rlim_max), (0, 0));
        // SAFETY: prctl with PR_GET_DUMPABLE takes no pointer arguments.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    }
}
