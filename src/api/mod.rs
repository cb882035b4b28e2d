//! The HTTP API: Web3Signer-compatible signing routes, health and key listing.
