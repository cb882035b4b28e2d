//! Configuration: one TOML file, every setting also a CLI flag and a `KEYGUARD_*` variable.
