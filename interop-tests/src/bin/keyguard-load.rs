//! `keyguard-load`: drives a running keyguard with validator-duty traffic over HTTP/1.1
//! keep-alive and reports throughput and latency, each also as a ratio to the raw blst
//! signing rate measured on the same machine in the same run.
//!
//! Modes:
//! - `closed --concurrency C --requests N`: C clients, each sends its next request as soon
//!   as the previous one is answered (saturation throughput).
//! - `open --rate R --seconds S`: requests start at a fixed rate whatever the answers
//!   (latency at a given load; latency counts from the scheduled start, so a stalled signer
//!   cannot hide queueing).
//! - `burst --size N`: N same-slot attestations at once (one slot of 32·N validators).
//! - `duties --slots S`: realistic per-slot duty mix (attestations, selection proofs,
//!   aggregates, sync-committee messages, selection proofs and contributions, blocks).
//! - `flood --rate R --seconds S`: a victim client's attestations at rate R (open loop),
//!   first alone, then while a second client (connecting from `--flood-from`, so the signer
//!   sees another client) keeps `--flood-concurrency` requests in flight (RANDAO reveals
//!   or attestations for unknown keys); reports the victim's latency in both phases.
//!
//! Attestation roots: `--shared-roots` models Electra and later (every attester of a slot
//! signs the same AttestationData); without it every request has its own root.
//! Request bodies target the minimal-preset devnet of `config/networks/devnet-minimal.yaml`.
//! `--url a,b` spreads the requests over several signers round-robin (instances sharing
//! one PostgreSQL slashing database); the keys are listed by the first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use interop_tests::requests;

#[derive(Parser)]
#[command(
    name = "keyguard-load",
    about = "Load generator for keyguard's signing API"
)]
struct Args {
    /// Base URL of the signer; several (comma-separated) spread the requests over them
    /// round-robin (instances sharing one PostgreSQL slashing database).
    #[arg(long, default_value = "http://127.0.0.1:9000", value_delimiter = ',')]
    url: Vec<String>,
    /// Use at most this many of the signer's keys (default: all).
    #[arg(long)]
    validators: Option<usize>,
    /// Attestations of a slot share one signing root (Electra and later).
    #[arg(long)]
    shared_roots: bool,
    /// First epoch used for attestations; choose one above any earlier run's on the same
    /// database, or the slashing database refuses them.
    #[arg(long, default_value_t = 1000)]
    start_epoch: u64,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Seconds spent measuring the raw blst signing rate, half before the load and half
    /// after it (the ratio uses the mean, so drift of the machine's speed during the run
    /// counts on both sides).
    #[arg(long, default_value_t = 4.0)]
    raw_seconds: f64,
    /// Measure raw blst with one thread pinned to each of these CPUs (comma-separated):
    /// give the signer's CPUs when keyguard runs pinned (`taskset`) apart from this
    /// program, so both are measured on the same cores. Default: one thread per CPU this
    /// program may use.
    #[arg(long, value_delimiter = ',')]
    raw_cpus: Vec<usize>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Clone)]
enum Mode {
    /// C concurrent clients, N attestation requests in total.
    Closed {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 20_000)]
        requests: u64,
    },
    /// Attestation requests started at a fixed rate.
    Open {
        #[arg(long)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// One burst of same-slot attestations, all sent at once.
    Burst {
        #[arg(long, default_value_t = 3125)]
        size: usize,
    },
    /// The per-slot duty mix for S slots, each slot's requests sent as one burst.
    Duties {
        #[arg(long, default_value_t = 8)]
        slots: u64,
    },
    /// A victim's attestations (open loop), alone and then under another client's flood.
    Flood {
        /// The victim's attestations per second.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Seconds of each phase (alone, then flooded).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Requests the flooder keeps in flight (it resends at once, 503 or not).
        #[arg(long, default_value_t = 512)]
        flood_concurrency: usize,
        /// What the flooder sends.
        #[arg(long, value_enum, default_value_t = FloodKind::Randao)]
        flood: FloodKind,
        /// Source address of the flooder's connections: another loopback address is
        /// another (anonymous) client to the signer.
        #[arg(long, default_value = "127.0.0.2")]
        flood_from: std::net::IpAddr,
    },
}

/// The flooder's requests.
#[derive(Clone, Copy, clap::ValueEnum)]
enum FloodKind {
    /// RANDAO reveals for the signer's own keys (signed: background work).
    Randao,
    /// Attestations for keys the signer does not have (answered 404).
    UnknownKeys,
    /// Attestations for the signer's own keys with a `Host` header it does not allow
    /// (answered 403 by the access layer, before the signing pipeline).
    ForeignHost,
    /// Signable attestations (duties) for the upper half of the signer's keys, a new
    /// target each round; the victim then uses the lower half.
    Attestations,
}

/// Latencies and outcomes of one run.
#[derive(Default)]
struct Stats {
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
}

impl Stats {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[idx.min(self.latencies.len() - 1)]
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One request: which key and what body.
struct Job {
    pubkey: Arc<str>,
    body: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let before = raw_blst_rate(args.raw_seconds / 2.0, &args.raw_cpus);
    let stats = runtime.block_on(drive(&args))?;
    let after = raw_blst_rate(args.raw_seconds / 2.0, &args.raw_cpus);
    report(&args, &stats, &before.mean_with(&after))
}

async fn drive(args: &Args) -> anyhow::Result<Stats> {
    interop_tests::install_crypto_provider();
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(4096)
        .build()?;
    let mut keys: Vec<String> = client
        .get(format!("{}/api/v1/eth2/publicKeys", args.url[0]))
        .send()
        .await
        .context("cannot reach the signer")?
        .json()
        .await?;
    if let Some(n) = args.validators {
        keys.truncate(n);
    }
    if keys.is_empty() {
        bail!("the signer has no keys");
    }
    let keys: Vec<Arc<str>> = keys.into_iter().map(Arc::from).collect();
    let gen = Arc::new(Generator {
        keys,
        shared_roots: args.shared_roots,
        start_epoch: args.start_epoch,
    });
    match args.mode.clone() {
        Mode::Closed {
            concurrency,
            requests,
        } => {
            if concurrency > gen.keys.len() {
                bail!("--concurrency must not exceed the number of validators, or one validator's attestations race each other");
            }
            closed_loop(&client, &args.url, Arc::clone(&gen), concurrency, requests).await
        }
        Mode::Open { rate, seconds } => open_loop(&client, &args.url, &gen, rate, seconds).await,
        Mode::Burst { size } => {
            let jobs = (0..size as u64).map(|i| gen.attestation(i)).collect();
            Ok(send_all(&client, &args.url, jobs).await)
        }
        Mode::Flood {
            rate,
            seconds,
            flood_concurrency,
            flood,
            flood_from,
        } => {
            // A duty flood signs for keys of its own, so that neither client's votes
            // are refused as slashable against the other's.
            let (victim_keys, flood_keys) = match flood {
                FloodKind::Attestations => {
                    let (low, high) = gen.keys.split_at(gen.keys.len() / 2);
                    (low.to_vec(), high.to_vec())
                }
                _ => (gen.keys.clone(), gen.keys.clone()),
            };
            if victim_keys.is_empty() {
                bail!("a duty flood needs at least two validators");
            }
            let victim = Generator {
                keys: victim_keys,
                shared_roots: gen.shared_roots,
                start_epoch: gen.start_epoch,
            };
            let flooder = Flooder {
                client: reqwest::Client::builder()
                    .http1_only()
                    .pool_max_idle_per_host(flood_concurrency)
                    .local_address(flood_from)
                    .build()?,
                // The flood goes to the first signer of `--url`.
                url: args.url[0].clone(),
                kind: flood,
                own: Generator {
                    keys: flood_keys,
                    shared_roots: false,
                    start_epoch: gen.start_epoch,
                },
            };
            flooded(
                &client,
                &args.url,
                &victim,
                rate,
                seconds,
                flooder,
                flood_concurrency,
            )
            .await
        }
        Mode::Duties { slots } => {
            let mut total = Stats::default();
            let started = Instant::now();
            for slot in 0..slots {
                let s = send_all(&client, &args.url, gen.duties(slot)).await;
                total.latencies.extend(s.latencies);
                total.errors += s.errors;
            }
            total.elapsed = started.elapsed();
            total.latencies.sort();
            Ok(total)
        }
    }
}

/// Builds request bodies. Request `i` is for validator `i % N` in epoch `start + i / N`,
/// so each validator's attestations move forward one epoch at a time and never conflict.
struct Generator {
    keys: Vec<Arc<str>>,
    shared_roots: bool,
    start_epoch: u64,
}

impl Generator {
    fn attestation(&self, i: u64) -> Job {
        let n = self.keys.len() as u64;
        let epoch = self.start_epoch + i / n;
        let validator = (i % n) as usize;
        // Shared roots: one AttestationData per epoch for everyone. Otherwise the block
        // root differs per validator, as committees voting on different heads would.
        let root_byte = if self.shared_roots {
            (epoch % 251) as u8
        } else {
            (validator % 251) as u8 ^ (epoch % 7) as u8
        };
        let body = if self.shared_roots {
            requests::attestation(epoch - 1, epoch, root_byte)
        } else {
            requests::attestation_with_index(epoch - 1, epoch, root_byte, validator as u64)
        };
        Job {
            pubkey: Arc::clone(&self.keys[validator]),
            body,
        }
    }

    /// One slot's duties for all validators (32 slots per epoch, mainnet-like ratios).
    fn duties(&self, slot: u64) -> Vec<Job> {
        let n = self.keys.len();
        let abs_slot = self.start_epoch * requests::SLOTS_PER_EPOCH + slot;
        let epoch = abs_slot / requests::SLOTS_PER_EPOCH;
        let attesters: Vec<usize> = (0..n)
            .filter(|v| *v as u64 % requests::SLOTS_PER_EPOCH == slot % requests::SLOTS_PER_EPOCH)
            .collect();
        let mut jobs = Vec::new();
        let key = |v: usize| Arc::clone(&self.keys[v % n]);
        for &v in &attesters {
            let body = if self.shared_roots {
                requests::attestation(epoch - 1, epoch, 9)
            } else {
                requests::attestation_with_index(epoch - 1, epoch, 9, (v % 4) as u64)
            };
            jobs.push(Job {
                pubkey: key(v),
                body,
            });
            jobs.push(Job {
                pubkey: key(v),
                body: requests::aggregation_slot(abs_slot),
            });
        }
        // About 16 aggregators per committee: here one attester in 8.
        for &v in attesters.iter().step_by(8) {
            jobs.push(Job {
                pubkey: key(v),
                body: requests::aggregate_and_proof(abs_slot, v as u64, epoch),
            });
        }
        // Sync committee: up to 32 members (minimal preset), 4 subcommittees.
        for v in 0..n.min(32) {
            jobs.push(Job {
                pubkey: key(v),
                body: requests::sync_committee_message(abs_slot),
            });
            jobs.push(Job {
                pubkey: key(v),
                body: requests::sync_selection_proof(abs_slot, (v % 4) as u64),
            });
            if v % 8 == 0 {
                jobs.push(Job {
                    pubkey: key(v),
                    body: requests::contribution_and_proof(abs_slot, v as u64, (v % 4) as u64),
                });
            }
        }
        let proposer = (abs_slot as usize) % n;
        jobs.push(Job {
            pubkey: key(proposer),
            body: requests::randao(epoch),
        });
        jobs.push(Job {
            pubkey: key(proposer),
            body: requests::block_header(abs_slot, 3),
        });
        jobs
    }
}

async fn sign(client: &reqwest::Client, url: &str, job: &Job) -> Result<(), ()> {
    let resp = client
        .post(format!("{url}/api/v1/eth2/sign/{}", job.pubkey))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(job.body.clone())
        .send()
        .await
        .map_err(|_| ())?;
    let ok = resp.status().is_success();
    let _ = resp.bytes().await;
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

async fn closed_loop(
    client: &reqwest::Client,
    urls: &[String],
    gen: Arc<Generator>,
    concurrency: usize,
    total: u64,
) -> anyhow::Result<Stats> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (client, url, gen, next) = (
            client.clone(),
            urls[worker % urls.len()].clone(),
            Arc::clone(&gen),
            Arc::clone(&next),
        );
        workers.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return (lat, errors);
                }
                let job = gen.attestation(i);
                let t = Instant::now();
                match sign(&client, &url, &job).await {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(()) => errors += 1,
                }
            }
        });
    }
    let results = workers.join_all().await;
    Ok(collect(results, started.elapsed()))
}

async fn open_loop(
    client: &reqwest::Client,
    urls: &[String],
    gen: &Generator,
    rate: f64,
    seconds: f64,
) -> anyhow::Result<Stats> {
    let total = (rate * seconds) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let jobs: Vec<Job> = (0..total).map(|i| gen.attestation(i)).collect();
    let runtime = tokio::runtime::Handle::current();
    let (client, urls) = (client.clone(), urls.to_vec());
    // Requests start from a thread of their own that sleeps with the OS's high-resolution
    // timer: tokio's timer wheel has 1 ms ticks, which would release requests in clumps
    // and count up to 1 ms of the generator's own lateness as the signer's latency.
    let started = Instant::now();
    let pacer = std::thread::spawn(move || {
        jobs.into_iter()
            .enumerate()
            .map(|(i, job)| {
                let scheduled = started + interval.mul_f64(i as f64);
                if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let (client, url) = (client.clone(), urls[i % urls.len()].clone());
                runtime.spawn(async move {
                    let r = sign(&client, &url, &job).await;
                    (r, scheduled.elapsed())
                })
            })
            .collect::<Vec<_>>()
    });
    let handles = tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the request pacer thread panicked"))?;
    let mut results = Vec::new();
    for h in handles {
        let (r, lat) = h.await?;
        results.push(match r {
            Ok(()) => (vec![lat], 0),
            Err(()) => (vec![], 1),
        });
    }
    Ok(collect(results, started.elapsed()))
}

/// The second client of `flood` mode.
struct Flooder {
    client: reqwest::Client,
    url: String,
    kind: FloodKind,
    /// The flooder's keys, and its attestations for [`FloodKind::Attestations`].
    own: Generator,
}

/// What the flooder's requests got.
#[derive(Default)]
struct FloodCounts {
    ok: AtomicU64,
    shed: AtomicU64,
    not_found: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
}

impl Flooder {
    /// Request `i` of the flood.
    fn job(&self, i: u64) -> Job {
        let keys = &self.own.keys;
        let key = || Arc::clone(&keys[(i % keys.len() as u64) as usize]);
        match self.kind {
            FloodKind::Randao => Job {
                pubkey: key(),
                body: requests::randao(i),
            },
            FloodKind::Attestations => self.own.attestation(i),
            FloodKind::ForeignHost => Job {
                pubkey: key(),
                body: requests::attestation(1, 2, 7),
            },
            FloodKind::UnknownKeys => {
                let mut pubkey = [0xb0u8; 48];
                pubkey[..8].copy_from_slice(&i.to_le_bytes());
                Job {
                    pubkey: Arc::from(format!("0x{}", hex::encode(pubkey))),
                    body: requests::attestation(1, 2, 7),
                }
            }
        }
    }

    /// Keeps `concurrency` requests in flight until `stop` is set.
    async fn run(self: Arc<Self>, concurrency: usize, stop: Arc<AtomicBool>) -> FloodCounts {
        let counts = Arc::new(FloodCounts::default());
        let next = Arc::new(AtomicU64::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (me, counts, next, stop) = (
                Arc::clone(&self),
                Arc::clone(&counts),
                Arc::clone(&next),
                Arc::clone(&stop),
            );
            workers.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let job = me.job(next.fetch_add(1, Ordering::Relaxed));
                    let mut request = me
                        .client
                        .post(format!("{}/api/v1/eth2/sign/{}", me.url, job.pubkey))
                        .header("Content-Type", "application/json");
                    if let FloodKind::ForeignHost = me.kind {
                        request = request.header("Host", "evil.example");
                    }
                    let status = request
                        .body(job.body)
                        .send()
                        .await
                        .map(|r| r.status().as_u16());
                    let counter = match status {
                        Ok(200) => &counts.ok,
                        Ok(503) => &counts.shed,
                        Ok(404) => &counts.not_found,
                        Ok(401 | 403) => &counts.refused,
                        _ => &counts.other,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        workers.join_all().await;
        Arc::try_unwrap(counts).unwrap_or_default()
    }
}

/// `flood` mode: the victim's open-loop attestations alone, then under the flood (which
/// starts a second before them); prints both and returns the flooded phase.
async fn flooded(
    client: &reqwest::Client,
    urls: &[String],
    gen: &Generator,
    rate: f64,
    seconds: f64,
    flooder: Flooder,
    concurrency: usize,
) -> anyhow::Result<Stats> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let alone = open_loop(client, urls, gen, rate, seconds).await?;
    // The flooded phase's attestations come after the first phase's epochs.
    let per_phase = (rate * seconds) as u64;
    let later = Generator {
        keys: gen.keys.clone(),
        shared_roots: gen.shared_roots,
        start_epoch: gen.start_epoch + per_phase / gen.keys.len() as u64 + 2,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn(Arc::new(flooder).run(concurrency, Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let flood_started = Instant::now();
    let under_flood = open_loop(client, urls, &later, rate, seconds).await?;
    let flood_seconds = flood_started.elapsed().as_secs_f64() + 1.0;
    stop.store(true, Ordering::Relaxed);
    let counts = flood.await?;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "victim alone:       {} ok, {} errors; p50 {:.2} ms, p99 {:.2} ms",
        alone.latencies.len(),
        alone.errors,
        ms(alone.percentile(0.5)),
        ms(alone.percentile(0.99))
    );
    println!(
        "victim under flood: {} ok, {} errors; p50 {:.2} ms, p99 {:.2} ms (p99 ratio {:.2}x, \
         +{:.2} ms)",
        under_flood.latencies.len(),
        under_flood.errors,
        ms(under_flood.percentile(0.5)),
        ms(under_flood.percentile(0.99)),
        ms(under_flood.percentile(0.99)) / ms(alone.percentile(0.99)).max(1e-9),
        ms(under_flood.percentile(0.99)) - ms(alone.percentile(0.99))
    );
    let total = load(&counts.ok)
        + load(&counts.shed)
        + load(&counts.not_found)
        + load(&counts.refused)
        + load(&counts.other);
    println!(
        "flooder: {total} requests ({:.0}/s): {} signed, {} shed (503), {} unknown key (404), \
         {} refused (401/403), {} other",
        total as f64 / flood_seconds,
        load(&counts.ok),
        load(&counts.shed),
        load(&counts.not_found),
        load(&counts.refused),
        load(&counts.other)
    );
    Ok(under_flood)
}

/// Sends every job at once and waits for all answers.
async fn send_all(client: &reqwest::Client, urls: &[String], jobs: Vec<Job>) -> Stats {
    let started = Instant::now();
    let handles: Vec<_> = jobs
        .into_iter()
        .enumerate()
        .map(|(i, job)| {
            let (client, url) = (client.clone(), urls[i % urls.len()].clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let r = sign(&client, &url, &job).await;
                (r, t.elapsed())
            })
        })
        .collect();
    let mut results = Vec::new();
    for h in handles {
        if let Ok((r, lat)) = h.await {
            results.push(match r {
                Ok(()) => (vec![lat], 0),
                Err(()) => (vec![], 1),
            });
        }
    }
    collect(results, started.elapsed())
}

fn collect(results: Vec<(Vec<Duration>, u64)>, elapsed: Duration) -> Stats {
    let mut stats = Stats {
        elapsed,
        ..Default::default()
    };
    for (lat, err) in results {
        stats.latencies.extend(lat);
        stats.errors += err;
    }
    stats.latencies.sort();
    stats
}

/// The machine's signing limits, measured here: full signatures per second on every core,
/// and blst multiplications with a cached hash-to-G2 point (what a shared root costs
/// without fixed-base tables).
struct RawRate {
    threads: usize,
    cpus: Vec<usize>,
    sign_per_sec: f64,
    shared_root_per_sec: f64,
    /// The full-signature rates measured before and after the load (their mean is
    /// `sign_per_sec`).
    sign_per_sec_samples: Vec<f64>,
}

impl RawRate {
    /// The mean of two measurements (before and after the load).
    fn mean_with(&self, other: &RawRate) -> RawRate {
        RawRate {
            threads: self.threads,
            cpus: self.cpus.clone(),
            sign_per_sec: (self.sign_per_sec + other.sign_per_sec) / 2.0,
            shared_root_per_sec: (self.shared_root_per_sec + other.shared_root_per_sec) / 2.0,
            sign_per_sec_samples: vec![self.sign_per_sec, other.sign_per_sec],
        }
    }
}

fn raw_blst_rate(seconds: f64, cpus: &[usize]) -> RawRate {
    let threads = if cpus.is_empty() {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cpus.len()
    };
    let measure = |shared: bool| -> f64 {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds / 2.0);
        let counts: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        if let Some(&cpu) = cpus.get(t) {
                            pin_to_cpu(cpu);
                        }
                        let mut ikm = [7u8; 32];
                        ikm[0] = t as u8;
                        let key = keyguard::bls::SecretKey::from_bytes(&zeroize::Zeroizing::new(
                            blst::min_pk::SecretKey::key_gen(&ikm, &[])
                                .expect("ikm is 32 bytes")
                                .to_bytes(),
                        ))
                        .expect("valid key");
                        let hashed = keyguard::bls::HashedRoot::new(&[1u8; 32]);
                        let mut n = 0u64;
                        let mut root = [0u8; 32];
                        while Instant::now() < deadline {
                            if shared {
                                std::hint::black_box(key.sign_hashed(&hashed));
                            } else {
                                root[..8].copy_from_slice(&n.to_le_bytes());
                                std::hint::black_box(key.sign(&root));
                            }
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        counts.iter().sum::<u64>() as f64 / (seconds / 2.0)
    };
    RawRate {
        threads,
        cpus: cpus.to_vec(),
        sign_per_sec: measure(false),
        shared_root_per_sec: measure(true),
        sign_per_sec_samples: Vec::new(),
    }
}

/// Pins the calling thread to one CPU; exits with a message if the CPU is not usable.
fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET and sched_setaffinity(0 = this thread)
    // only read and write the set we own.
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    if !ok {
        eprintln!("keyguard-load: cannot pin a thread to CPU {cpu}");
        std::process::exit(2);
    }
}

fn report(args: &Args, s: &Stats, raw: &RawRate) -> anyhow::Result<()> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mode = match &args.mode {
        Mode::Closed {
            concurrency,
            requests,
        } => format!("closed c={concurrency} n={requests}"),
        Mode::Open { rate, seconds } => format!("open rate={rate}/s for {seconds}s"),
        Mode::Burst { size } => format!("burst of {size}"),
        Mode::Duties { slots } => format!("duties for {slots} slots"),
        Mode::Flood {
            rate,
            seconds,
            flood_concurrency,
            flood,
            ..
        } => format!(
            "victim at {rate}/s for {seconds}s under a flood of {flood_concurrency} in flight ({})",
            match flood {
                FloodKind::Randao => "randao",
                FloodKind::UnknownKeys => "unknown keys",
                FloodKind::ForeignHost => "foreign Host header",
                FloodKind::Attestations => "attestations for other keys",
            }
        ),
    };
    println!(
        "keyguard-load: {mode}, shared roots: {}, {} signer URL(s)",
        args.shared_roots,
        args.url.len()
    );
    println!(
        "raw blst on {} threads (CPUs {:?}, empty = unpinned): {:.0} sign/s \
         (before/after the load: {:.0?}); cached-hash limit {:.0} sign/s",
        raw.threads, raw.cpus, raw.sign_per_sec, raw.sign_per_sec_samples, raw.shared_root_per_sec
    );
    println!(
        "answered {} ok, {} errors in {:.3} s",
        s.latencies.len(),
        s.errors,
        s.elapsed.as_secs_f64()
    );
    println!(
        "throughput {:.0}/s = {:.3}x raw blst signing",
        s.throughput(),
        s.throughput() / raw.sign_per_sec
    );
    println!(
        "latency ms: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        ms(s.percentile(0.5)),
        ms(s.percentile(0.9)),
        ms(s.percentile(0.99)),
        ms(s.latencies.last().copied().unwrap_or_default())
    );
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "mode": mode,
            "shared_roots": args.shared_roots,
            "signers": args.url.len(),
            "ok": s.latencies.len(),
            "errors": s.errors,
            "elapsed_s": s.elapsed.as_secs_f64(),
            "throughput_per_s": s.throughput(),
            "raw_blst_threads": raw.threads,
            "raw_blst_cpus": raw.cpus,
            "raw_blst_sign_per_s": raw.sign_per_sec,
            "raw_blst_sign_per_s_before_after": raw.sign_per_sec_samples,
            "raw_blst_shared_root_per_s": raw.shared_root_per_sec,
            "throughput_ratio_to_raw": s.throughput() / raw.sign_per_sec,
            "latency_ms": {
                "p50": ms(s.percentile(0.5)),
                "p90": ms(s.percentile(0.9)),
                "p99": ms(s.percentile(0.99)),
                "max": ms(s.latencies.last().copied().unwrap_or_default()),
            },
        });
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
    }
    Ok(())
}
