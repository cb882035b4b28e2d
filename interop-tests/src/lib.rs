//! Shared helpers for keyguard's end-to-end tests: locating the shared test material,
//! starting a keyguard process, and talking to it over HTTP.
pub mod softhsm;
