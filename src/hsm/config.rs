//! Checks of the `[hsm]` section (defined in the `config::hsm` module) that belong to the
//! HSM, and where the user PIN comes from.
//!
//! The PIN is read from a file or an environment variable only: a PIN in the config file
//! would end up in backups and config management, one on the command line in `ps` output.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;

use zeroize::Zeroizing;

use super::HsmError;
use crate::config::hsm::HsmConfig;
#[cfg(test)]
use crate::config::hsm::DEFAULT_KEK_LABEL;

impl HsmConfig {
    /// Checks what can be checked without touching the token: exactly one PIN source and a
    /// non-empty token and KEK label.
    pub fn validate(&self) -> Result<(), HsmError> {
        if self.token_label.is_empty() {
            return Err(HsmError::Config("token_label must not be empty".into()));
        }
        if self.kek_label.is_empty() {
            return Err(HsmError::Config("kek_label must not be empty".into()));
        }
        match (&self.pin_file, &self.pin_env) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            (None, None) => Err(HsmError::Config(
                "no PIN source: set exactly one of pin_file or pin_env (the PIN itself never \
                 goes in the config file or on the command line)"
                    .into(),
            )),
            (Some(_), Some(_)) => Err(HsmError::Config(
                "both pin_file and pin_env are set: set exactly one".into(),
            )),
        }
    }

    /// Reads the user PIN from its file or environment variable, in zeroizing memory.
    pub fn read_pin(&self) -> Result<Zeroizing<String>, HsmError> {
        self.validate()?;
        let (raw, from) = match (&self.pin_file, &self.pin_env) {
            (Some(path), _) => (
                read_secret_file(path)?,
                format!("PIN file {}", path.display()),
            ),
            (None, Some(var)) => {
                let value = std::env::var_os(var)
                    .ok_or_else(|| HsmError::PinEnvMissing { var: var.clone() })?;
                // OsString has no zeroizing conversion; copy the bytes into zeroizing memory.
                let bytes = Zeroizing::new(value.as_bytes().to_vec());
                (bytes, format!("environment variable {var}"))
            }
            // `validate` above has ruled this out.
            (None, None) => return Err(HsmError::Config("no PIN source configured".into())),
        };
        let trimmed = trim_newline(&raw);
        if trimmed.is_empty() {
            return Err(HsmError::PinEmpty { from });
        }
        let pin = std::str::from_utf8(trimmed).map_err(|_| HsmError::PinNotUtf8 { from })?;
        // Exact capacity: converting into the PKCS#11 binding's SecretString must not
        // reallocate and leave an unzeroized copy behind.
        let mut out = Zeroizing::new(String::with_capacity(pin.len()));
        out.push_str(pin);
        Ok(out)
    }
}

/// Strips one trailing `\n` or `\r\n` (editors add one) but nothing else: spaces may be
/// part of a PIN.
fn trim_newline(raw: &[u8]) -> &[u8] {
    let s = raw.strip_suffix(b"\n").unwrap_or(raw);
    s.strip_suffix(b"\r").unwrap_or(s)
}

/// Reads a small secret file into zeroizing memory, sized up front so no reallocation
/// leaves copies behind.
fn read_secret_file(path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>, HsmError> {
    let unreadable = |source| HsmError::PinFileUnreadable {
        path: path.to_path_buf(),
        source,
    };
    crate::secret_file::warn_if_exposed(path, "HSM PIN");
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    if len > 4096 {
        return Err(HsmError::Config(format!(
            "PIN file {} is {len} bytes: that is not a PIN",
            path.display()
        )));
    }
    // `len` fits: checked just above.
    let mut buf = Zeroizing::new(Vec::with_capacity(len as usize + 1));
    file.read_to_end(&mut buf).map_err(unreadable)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_pin_source() {
        let mut cfg = HsmConfig::new("/x.so", "t");
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("no PIN source"));
        cfg.pin_env = Some("A".into());
        cfg.pin_file = Some("/p".into());
        assert!(cfg.validate().unwrap_err().to_string().contains("both"));
        cfg.pin_file = None;
        cfg.validate().unwrap();
    }

    #[test]
    fn pin_file_trailing_newline_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "12 34\r\n").unwrap();
        let mut cfg = HsmConfig::new("/x.so", "t");
        cfg.pin_file = Some(path);
        assert_eq!(cfg.read_pin().unwrap().as_str(), "12 34");
    }

    #[test]
    fn unreadable_pin_file_names_path() {
        let mut cfg = HsmConfig::new("/x.so", "t");
        cfg.pin_file = Some("/nonexistent/keyguard-pin".into());
        let err = cfg.read_pin().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/keyguard-pin"), "{err}");
    }

    #[test]
    fn deserialize_defaults_and_rejects_unknown_fields() {
        let cfg: HsmConfig =
            toml::from_str("module = \"/m.so\"\ntoken_label = \"t\"\npin_env = \"P\"\n").unwrap();
        assert_eq!(cfg.kek_label, DEFAULT_KEK_LABEL);
        assert!(toml::from_str::<HsmConfig>(
            "module = \"/m.so\"\ntoken_label = \"t\"\npin = \"1234\"\n"
        )
        .is_err());
    }
}
