//! Shared helpers for keyguard's end-to-end tests: locating the shared test material,
//! starting a keyguard process, and building request bodies.

pub mod keyguard_process;
pub mod requests;
