//! Start-up cost of the `pkcs11-sealed` mode: loading N sealed keys (default 10,000) from
//! disk into the key table, unsealing each in SoftHSM2. Target: under 5 s for 10,000.
//!
//! Needs SoftHSM2 (`apt-get install softhsm2`); prints a skip otherwise. `KEYGUARD_BENCH_KEYS`
//! changes the key count. Compares unsealing on per-thread sessions with taking turns on
//! the one main session.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use keyguard::hsm::{self, HsmConfig, HsmSession};
use keyguard::keys::loader::run_jobs;
use keyguard::keys::{KeySource, KeyTable, LoadProgress, ValidatorKey};
use rayon::prelude::*;
use zeroize::Zeroizing;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

struct Setup {
    _root: tempfile::TempDir,
    dir: PathBuf,
    session: Arc<HsmSession>,
    keys: usize,
}

fn setup() -> Option<Setup> {
    if !Path::new(MODULE).is_file() {
        eprintln!("SKIPPING hsm_unseal bench: SoftHSM2 is not installed ({MODULE})");
        return None;
    }
    let keys: usize = std::env::var("KEYGUARD_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // tmpfs if available: the bench measures unsealing, not the disk.
    let base = if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let root = tempfile::Builder::new()
        .prefix("kg-bench-")
        .tempdir_in(base)
        .expect("temp dir");
    let tokendir = root.path().join("tokens");
    std::fs::create_dir(&tokendir).expect("token dir");
    let conf = root.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nlog.level = ERROR\n",
            tokendir.display()
        ),
    )
    .expect("conf");
    let status = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .output()
        .expect("softhsm2-util");
    assert!(status.status.success(), "{status:?}");
    // Set before the module is loaded; the bench is single-threaded until then.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var("KEYGUARD_BENCH_PIN", "1234");
    let mut cfg = HsmConfig::new(MODULE, "bench");
    cfg.pin_env = Some("KEYGUARD_BENCH_PIN".into());
    hsm::init_kek(&cfg).expect("init KEK");
    let session = Arc::new(HsmSession::open(&cfg).expect("open"));
    let dir = root.path().join("sealed");
    std::fs::create_dir(&dir).expect("sealed dir");
    let t = Instant::now();
    (0..keys).into_par_iter().for_each(|i| {
        let mut secret = Zeroizing::new([0u8; 32]);
        secret[0] = 0x11;
        secret[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        let key =
            ValidatorKey::from_secret_bytes(&secret, KeySource::Keystore, "bench").expect("key");
        hsm::seal_key(&session, &key, &dir).expect("seal");
    });
    eprintln!("sealed {keys} keys in {:.2?}", t.elapsed());
    Some(Setup {
        _root: root,
        dir,
        session,
        keys,
    })
}

fn load_all(s: &Setup) -> usize {
    let table = KeyTable::new();
    let progress = LoadProgress::new();
    let jobs = hsm::sealed_load_jobs(Arc::clone(&s.session), &s.dir).expect("jobs");
    progress.add_total(jobs.len());
    run_jobs(jobs, &table, &progress);
    let snap = progress.snapshot();
    assert_eq!((snap.loaded, snap.failed), (s.keys, 0));
    table.len()
}

fn bench(c: &mut Criterion) {
    let Some(s) = setup() else { return };
    for parallel in [true, false] {
        s.session.set_parallel_unseal(parallel);
        let t = Instant::now();
        let n = load_all(&s);
        eprintln!(
            "one-shot: loaded {n} sealed keys in {:.2?} ({} sessions, {} threads)",
            t.elapsed(),
            if parallel { "per-thread" } else { "one shared" },
            rayon::current_num_threads()
        );
    }
    let mut group = c.benchmark_group("hsm_unseal");
    group.sample_size(10);
    for parallel in [true, false] {
        s.session.set_parallel_unseal(parallel);
        let name = format!(
            "load_{}_sealed_keys_{}",
            s.keys,
            if parallel {
                "per_thread_sessions"
            } else {
                "shared_session"
            }
        );
        group.bench_function(name, |b| b.iter(|| std::hint::black_box(load_all(&s))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
