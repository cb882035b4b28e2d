//! keyguard: a Web3Signer-compatible remote signer for Ethereum proof-of-stake validators.
//!
//! Every block and attestation is checked against the slashing-protection database and
//! recorded durably before it is signed. See `README.md` for how to run it.

// Every public item says what it is for.
#![warn(missing_docs)]
// Outside tests a failure is a typed error, never a panic: no unwrap, expect or panic!.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod access;
pub mod api;
pub mod audit;
pub mod bls;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod durable;
pub mod hsm;
pub mod http_server;
pub mod identity;
pub mod keymanager;
pub mod keys;
pub mod log_safe;
pub mod metrics;
pub mod outcome;
pub mod process;
pub mod secret_file;
pub mod server;
pub mod signer;
pub mod slashing_metrics;
pub mod slashing_store;
pub mod startup;
pub mod tls;
