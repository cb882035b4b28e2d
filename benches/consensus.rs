//! Per-request cost of `consensus::prepare` (the signing hot path) on spec-generated bodies:
//! the small duties a validator signs every slot, and a full altair block.

use criterion::{criterion_group, criterion_main, Criterion};
use keyguard::consensus::{prepare, Network};
use serde_json::Value;

const FIXTURES: &str = include_str!("../interop-tests/fixtures/signing-fixtures.json");

fn bodies(names: &[&str]) -> Vec<(String, Vec<u8>)> {
    let doc: Value = serde_json::from_str(FIXTURES).expect("fixtures parse");
    let fixtures = doc["fixtures"].as_array().expect("fixtures array");
    names
        .iter()
        .map(|name| {
            let f = fixtures
                .iter()
                .find(|f| f["name"] == *name)
                .unwrap_or_else(|| panic!("no fixture {name}"));
            (
                name.to_string(),
                serde_json::to_vec(&f["body"]).expect("body"),
            )
        })
        .collect()
}

fn bench_prepare(c: &mut Criterion) {
    let mainnet = Network::builtin("mainnet").expect("mainnet");
    let cases = bodies(&[
        "mainnet/electra/ATTESTATION",
        "mainnet/electra/AGGREGATE_AND_PROOF",
        "mainnet/electra/SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF",
        "mainnet/electra/BLOCK_V2",
        "mainnet/altair/BLOCK_V2",
    ]);
    let mut group = c.benchmark_group("prepare");
    for (name, body) in &cases {
        group.bench_function(name.as_str(), |b| {
            b.iter(|| prepare(std::hint::black_box(body), &mainnet).expect("prepares"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_prepare);
criterion_main!(benches);
