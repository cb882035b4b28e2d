//! Generator of large, valid EIP-3076 interchange files for benchmarks (shared by the
//! `import` bench and the `import_large` example through `#[path]`).

use std::io::Write;

/// Genesis validators root used by generated files.
pub const GEN_GVR: [u8; 32] = [0x42; 32];

/// Deterministic pubkey of validator `i`.
pub fn gen_pubkey(i: u64) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = 0x80;
    p[1..9].copy_from_slice(&i.to_be_bytes());
    p
}

/// An interchange with `validators` validators, each with `attestations` attestations
/// (source = target - 1, signing roots included) and `blocks` blocks.
pub fn generate(validators: u64, attestations: u64, blocks: u64) -> Vec<u8> {
    let per_validator = 200 + attestations * 160 + blocks * 110;
    let mut out = Vec::with_capacity((validators * per_validator) as usize + 256);
    let _ = write!(
        out,
        "{{\"metadata\":{{\"interchange_format_version\":\"5\",\"genesis_validators_root\":\"0x{}\"}},\"data\":[",
        hex::encode(GEN_GVR)
    );
    let mut root = [0u8; 32];
    for v in 0..validators {
        if v > 0 {
            out.push(b',');
        }
        let _ = write!(
            out,
            "\n{{\"pubkey\":\"0x{}\",\"signed_blocks\":[",
            hex::encode(gen_pubkey(v))
        );
        for b in 0..blocks {
            if b > 0 {
                out.push(b',');
            }
            root[..8].copy_from_slice(&(v * 1_000_003 + b).to_be_bytes());
            let _ = write!(
                out,
                "{{\"slot\":\"{}\",\"signing_root\":\"0x{}\"}}",
                1_000 + b * 32 + (v % 32),
                hex::encode(root)
            );
        }
        out.extend_from_slice(b"],\"signed_attestations\":[");
        for a in 0..attestations {
            if a > 0 {
                out.push(b',');
            }
            root[8..16].copy_from_slice(&(v * 7_000_001 + a).to_be_bytes());
            let _ = write!(
                out,
                "{{\"source_epoch\":\"{}\",\"target_epoch\":\"{}\",\"signing_root\":\"0x{}\"}}",
                10_000 + a,
                10_001 + a,
                hex::encode(root)
            );
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}\n");
    out
}
