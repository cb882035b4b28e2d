//! BLS signing paths, as ratios to blst's own `sign` measured in the same run: a root
//! signed once (hash-to-G2 + multiplication), a root whose hash is cached (multiplication
//! only), and a root with a fixed-base table (many keys signing one root), plus the cost
//! of building a table.

use criterion::{criterion_group, criterion_main, Criterion};
use keyguard::bls::{FixedBaseTable, HashedRoot, SecretKey};
use zeroize::Zeroizing;

fn bench_signing(c: &mut Criterion) {
    let key = SecretKey::from_bytes(&Zeroizing::new([0x3c; 32])).expect("key");
    let root = [0x5au8; 32];
    let hashed = HashedRoot::new(&root);
    let table = FixedBaseTable::new(hashed.point());
    let mut group = c.benchmark_group("sign");
    group.bench_function("blst_sign", |b| {
        b.iter(|| key.sign(std::hint::black_box(&root)))
    });
    group.bench_function("cached_hash", |b| {
        b.iter(|| key.sign_hashed(std::hint::black_box(&hashed)))
    });
    group.bench_function("fixed_base_table", |b| {
        b.iter(|| key.sign_with_table(std::hint::black_box(&table)))
    });
    group.bench_function("build_table", |b| {
        b.iter(|| FixedBaseTable::new(std::hint::black_box(hashed.point())))
    });
    group.finish();
}

criterion_group!(benches, bench_signing);
criterion_main!(benches);
