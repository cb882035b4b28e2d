//! Generates the full-size interchange (default 10,000 validators x 1,000 attestations +
//! 100 blocks, ~1.2 GB) and imports it once into a fresh database, printing the times.
//!
//! `cargo run --release -p slashing-db --example import_large [validators] [attestations] [blocks]`

#[path = "../benches/gen_interchange.rs"]
mod gen_interchange;

use std::time::Instant;

use slashing_db::{OpenOptions, SlashingDb};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric argument"))
        .collect();
    let validators = args.first().copied().unwrap_or(10_000);
    let attestations = args.get(1).copied().unwrap_or(1_000);
    let blocks = args.get(2).copied().unwrap_or(100);
    let t0 = Instant::now();
    let json = gen_interchange::generate(validators, attestations, blocks);
    println!(
        "generated {validators} validators x ({attestations} attestations + {blocks} blocks): {:.2} GB in {:.1?}",
        json.len() as f64 / 1e9,
        t0.elapsed()
    );
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let db =
        SlashingDb::open(&dir.path().join("large.sqlite"), OpenOptions::default()).expect("open");
    let t0 = Instant::now();
    let summary = db.import_interchange(&json).expect("import");
    let took = t0.elapsed();
    println!("IMPORT: {summary:?} in {took:.2?}");
    // A second import of the same file into the now populated database (merge path).
    let t0 = Instant::now();
    db.import_interchange(&json).expect("re-import");
    println!("RE-IMPORT (merge with existing): {:.2?}", t0.elapsed());
}
