//! Permission checks on files that hold secrets (HSM PIN, keystore passwords, TLS private
//! keys and their passwords, raw keys in key definitions, bearer tokens).
//!
//! A secret file readable by group or others is warned about at every read, naming the
//! file and its mode, not refused: container platforms mount secrets 0644 by default
//! (Kubernetes' `defaultMode`), so refusing would stop signers whose files only the signer's
//! own container can reach. Operators who see the warning should `chmod 600` the file.

use std::path::Path;

/// The permission bits of `path` that give group or others any access, or `None` when
/// there are none (or the file cannot be inspected; reading it reports that).
pub fn exposed_bits(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    let exposed = mode & 0o077;
    (exposed != 0).then_some(mode & 0o777)
}

/// Logs a warning when `path`, holding `what` (e.g. "HSM PIN"), is readable by group or
/// others; returns true when it is.
pub fn warn_if_exposed(path: &Path, what: &str) -> bool {
    let Some(mode) = exposed_bits(path) else {
        return false;
    };
    tracing::warn!(
        file = %path.display(),
        mode = format_args!("{mode:03o}"),
        "secret file ({what}) is readable by group or others; chmod 600 it"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn group_or_world_access_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234").unwrap();
        for (mode, exposed) in [(0o600, false), (0o400, false), (0o640, true), (0o604, true)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(exposed_bits(&path).is_some(), exposed, "{mode:o}");
            assert_eq!(warn_if_exposed(&path, "test"), exposed, "{mode:o}");
        }
        assert_eq!(exposed_bits(&dir.path().join("missing")), None);
    }
}
