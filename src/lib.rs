//! keyguard: a Web3Signer-compatible remote signer for Ethereum proof-of-stake validators.
//!
//! Every block and attestation is checked against the slashing-protection database and
//! recorded durably before it is signed. See `README.md` for how to run it.

pub mod access;
pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod hsm;
pub mod keymanager;
pub mod keys;
pub mod keys_cli;
pub mod metrics;
pub mod process;
pub mod server;
pub mod signing;
pub mod slashing_cli;
pub mod slashing_store;
pub mod tls;
