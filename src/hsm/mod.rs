//! The HSM backend: a PKCS#11 token holds a key-encryption key (KEK) that seals BLS keys.
//! See `../shared/docs/hsm-design.md` for the design and what each mode protects against.
