//! Interchange import speed on a generated file (criterion size: 1,000 validators x 100
//! attestations + 10 blocks). The full 10,000 x 1,000 + 100 run is the `import_large`
//! example: `cargo run --release -p slashing-db --example import_large`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use slashing_db::{OpenOptions, SlashingDb};

mod gen_interchange;

fn import(c: &mut Criterion) {
    let json = gen_interchange::generate(1_000, 100, 10);
    let mut g = c.benchmark_group("interchange_import");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("1000v_x_100att_10blk_fresh_db", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let db = SlashingDb::open(&dir.path().join("i.sqlite"), OpenOptions::default())
                    .expect("open");
                (dir, db)
            },
            |(dir, db)| {
                db.import_interchange(&json).expect("import");
                (dir, db)
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, import);
criterion_main!(benches);
