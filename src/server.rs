//! `keyguard run`: assembles the signer from its configuration and serves until stopped.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::http_server::{self, Admission, ConnectionLimits, ConnectionMetrics, TcpIncoming};
use crate::keys::{self, KeyTable, LoadJob, LoadProgress};
use crate::signer::clock::SystemClock;
use crate::signer::queue::{QueueLimits, QueueMetrics, SigningQueue};
use crate::signer::{FutureGuard, GenesisPin, Signer, SigningPool};
use crate::tls::listener::{HandshakeLimits, TlsListener, TlsMetrics};

/// Runs the signer until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let network = config.network()?;
    http_server::check_listen_exposure(&config)?;
    tracing::info!(
        network = network.name(),
        "starting keyguard {}",
        env!("CARGO_PKG_VERSION")
    );
    // Bare aggregates take their container from this schedule: an operator compares it
    // with the beacon node's when a fork is announced.
    tracing::info!(
        network = network.name(),
        forks = %network.schedule_summary(),
        "fork schedule"
    );

    let metrics = Arc::new(
        crate::metrics::Metrics::new(config.metrics.web3signer_compat)
            .context("cannot create metrics")?,
    );
    // Before anything else starts: a TLS or access mistake is a config error (exit 2).
    let known_clients = crate::tls::load_known_clients(&config.tls)?;
    let access = Arc::new(crate::access::AccessPolicy::from_config(
        &config.access,
        &known_clients,
    )?);
    let tls = tls_setup(&config, &known_clients, &metrics)?;
    let connection_metrics = ConnectionMetrics::register(metrics.registry())
        .context("cannot register the connection metrics")?;
    let pool = SigningPool::new(config.server.signing_threads)
        .context("cannot start the signing threads")?
        .with_metrics(Arc::clone(&metrics));
    let slashing = open_slashing_db(&config, Arc::clone(&metrics), &pool)?;
    let genesis = pin_genesis(&network, slashing.clone()).await?;
    let future_guard = future_guard(&config, &network);
    // Held until the server stops (dropping it stops the pruning).
    let _pruner = start_pruning(&config, slashing.as_ref(), network.slots_per_epoch())?;
    let keys = Arc::new(KeyTable::new());
    let key_progress = Arc::new(LoadProgress::new());
    let audit = Arc::new(crate::audit::AuditLog::open(
        &config.audit,
        &config.data_dir,
        "keyguard run",
        Some(metrics.registry()),
    )?);
    let km_config = &config.keymanager;
    if km_config.enabled && km_config.max_body_bytes < 1024 {
        anyhow::bail!("keymanager.max_body_bytes must be at least 1024 bytes");
    }
    let inventory = crate::startup::key_inventory(&config, km_config.enabled)?;
    let keymanager = match inventory.store.filter(|_| km_config.enabled) {
        Some(store) => Some(Arc::new(crate::keymanager::start(
            km_config,
            &config.data_dir,
            store,
            inventory.stored_keys,
            &metrics,
        )?)),
        None => None,
    };
    // Before any key is unsealed, so every HSM operation is counted.
    let hsm_metrics = crate::hsm::HsmMetrics::register(metrics.registry())
        .context("cannot register the HSM metrics")?;
    let hsm = match inventory.hsm {
        Some(session) => {
            session.attach_metrics(hsm_metrics);
            Some(
                crate::hsm::liveness::HsmLiveness::spawn(session, metrics.registry())
                    .context("cannot register the HSM liveness metrics")?,
            )
        }
        None => None,
    };
    spawn_key_loading(
        inventory.jobs,
        Arc::clone(&keys),
        Arc::clone(&key_progress),
        Arc::clone(&audit),
    );

    let signer = Signer {
        genesis,
        future_guard,
        network,
        keys,
        key_progress,
        slashing,
        pool,
        access,
        audit: Arc::clone(&audit),
        metrics,
    };
    let signing_queue = signing_queue(&config, &signer.metrics)?;
    let state = Arc::new(
        AppState::new(signer, config.server.max_body_bytes, hsm, keymanager)
            .with_signing_queue(signing_queue),
    );
    if config.metrics.enabled {
        serve_metrics(&config, Arc::clone(&state)).await?;
    }
    let app = api::router(state, config.server.http_path_prefix.as_deref());
    serve_api(&config, app, tls, connection_metrics).await?;
    // Every request has been answered: write what is queued before exiting.
    // With `on_failure = "refuse"`, a lost lifecycle event makes the exit status non-zero.
    tokio::task::spawn_blocking(move || audit.close())
        .await
        .context("closing the audit log")??;
    tracing::info!("stopped");
    Ok(())
}

/// The signing queue of `[queue]`, counted in the metrics.
fn signing_queue(
    config: &Config,
    metrics: &crate::metrics::Metrics,
) -> anyhow::Result<Arc<SigningQueue>> {
    let queue_metrics = QueueMetrics::register(metrics.registry())
        .context("cannot register the signing queue metrics")?;
    let limits = QueueLimits::from_config(&config.queue);
    tracing::info!(
        concurrency = limits.concurrency,
        background_concurrency = limits.background_concurrency,
        depth = limits.depth,
        per_client = limits.per_client,
        refusal_burst = limits.refusals.burst,
        refusal_rate = limits.refusals.rate,
        "signing queue"
    );
    Ok(SigningQueue::new(limits, Some(queue_metrics)))
}

/// The rustls configuration and TLS metrics, when `[tls]` gives a server identity.
fn tls_setup(
    config: &Config,
    known_clients: &[crate::identity::known_clients::KnownClient],
    metrics: &crate::metrics::Metrics,
) -> anyhow::Result<Option<(Arc<rustls::ServerConfig>, TlsMetrics)>> {
    if !config.tls.enabled() {
        return Ok(None);
    }
    let server = crate::tls::server_config(&config.tls, &config.access, known_clients)?;
    let tls_metrics =
        TlsMetrics::register(metrics.registry()).context("cannot register the TLS metrics")?;
    Ok(Some((server, tls_metrics)))
}

/// Serves the signing API over plain TCP or TLS until SIGINT or SIGTERM, within the
/// connection limits of `[server]`. Either way each request carries a
/// `ConnectInfo<PeerInfo>` (with the client certificate on TLS).
async fn serve_api(
    config: &Config,
    app: axum::Router,
    tls: Option<(Arc<rustls::ServerConfig>, TlsMetrics)>,
    metrics: ConnectionMetrics,
) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let open_files = http_server::raise_open_file_limit();
    let limits = ConnectionLimits::from_config(&config.server).within_open_file_limit(open_files);
    let admission = Admission::new(
        limits.max_connections,
        limits.max_connections_per_peer,
        metrics.clone(),
    );
    let listener = http_server::bind(listen)
        .with_context(|| format!("cannot listen on {listen} (server.listen)"))?;
    match tls {
        None => {
            tracing::info!(%listen, "signing API listening (plain HTTP)");
            let incoming = TcpIncoming::new(listener, admission);
            http_server::serve(incoming, app, limits, metrics, shutdown_signal()).await;
        }
        Some((server, tls_metrics)) => {
            let client_auth = config.tls.client_auth_configured(&config.access);
            let handshakes = HandshakeLimits {
                timeout: limits.tls_handshake_timeout,
                max_pending: limits.max_pending_tls_handshakes,
            };
            let incoming = TlsListener::spawn(listener, server, tls_metrics, admission, handshakes);
            tracing::info!(%listen, client_certificates = client_auth, "signing API listening (TLS)");
            http_server::serve(incoming, app, limits, metrics, shutdown_signal()).await;
        }
    }
    Ok(())
}

/// Starts the metrics listener in the background.
async fn serve_metrics(config: &Config, state: Arc<AppState>) -> anyhow::Result<()> {
    let addr = config.metrics.listen;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (metrics.listen)"))?;
    tracing::info!(listen = %addr, "metrics listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, api::metrics_router(state)).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    Ok(())
}

/// Binds the slashing database to the network's genesis validators root (refusing to
/// start on another chain's database), or learns the root it is bound to.
async fn pin_genesis(
    network: &crate::consensus::Network,
    slashing: Option<slashing_db::SlashingDb>,
) -> anyhow::Result<GenesisPin> {
    let network = network.clone();
    let pin = tokio::task::spawn_blocking(move || GenesisPin::at_startup(&network, slashing))
        .await
        .context("pinning the genesis validators root")??;
    if let Some(root) = pin.root() {
        tracing::info!(root = %format!("0x{}", hex::encode(root)), "genesis validators root pinned");
    }
    Ok(pin)
}

/// The future guard `[chain]` asks for; off (with a warning) where the genesis time is
/// unknown.
fn future_guard(config: &Config, network: &crate::consensus::Network) -> FutureGuard {
    if !config.chain.future_guard {
        tracing::warn!("the future guard is off (chain.future_guard = false)");
        return FutureGuard::off();
    }
    let guard = FutureGuard::new(
        network,
        config.chain.future_tolerance_slots,
        Arc::new(SystemClock),
    );
    match guard.latest_allowed_slot() {
        Some(latest) => tracing::info!(
            tolerance_slots = config.chain.future_tolerance_slots,
            latest_allowed_slot = latest,
            "future guard on"
        ),
        None => tracing::warn!(
            network = network.name(),
            "future guard off: the network's genesis time is unknown (set chain.genesis_time)"
        ),
    }
    guard
}

/// Opens the slashing database; its commits are paced by the signing queue (see
/// `slashing.max_commit_delay_ms`).
fn open_slashing_db(
    config: &Config,
    metrics: Arc<crate::metrics::Metrics>,
    pool: &SigningPool,
) -> anyhow::Result<Option<slashing_db::SlashingDb>> {
    if !config.slashing.enabled {
        tracing::warn!(
            "slashing protection is disabled: blocks and attestations will be refused (412)"
        );
        return Ok(None);
    }
    let observer = crate::slashing_metrics::SlashingDbObserver::register(metrics)
        .context("cannot register the slashing database metrics")?;
    let options = slashing_db::OpenOptions {
        max_batch: config.slashing.max_batch,
        observer: Some(Arc::new(observer)),
        pacer: (config.slashing.max_commit_delay_ms > 0).then(|| {
            pool.pacer(std::time::Duration::from_millis(
                config.slashing.max_commit_delay_ms,
            ))
        }),
        ..Default::default()
    };
    // On a plain thread: the PostgreSQL client blocks on a runtime of its own, which
    // panics on a thread that drives this one (`keyguard run` on PostgreSQL did).
    let db = std::thread::scope(|s| {
        s.spawn(|| crate::slashing_store::open(config, options))
            .join()
            .map_err(|_| anyhow::anyhow!("opening the slashing database panicked"))
    })??;
    tracing::info!(database = %db.location(), "slashing protection enabled");
    Ok(Some(db))
}

/// Starts background pruning of the slashing database (`slashing.prune`, on by default):
/// rounds every `slashing.prune_interval_secs`, the first after a minute (or one interval
/// if shorter), keeping `slashing.prune_keep_epochs` epochs per validator.
fn start_pruning(
    config: &Config,
    db: Option<&slashing_db::SlashingDb>,
    slots_per_epoch: u64,
) -> anyhow::Result<Option<slashing_db::Pruner>> {
    let (Some(db), true) = (db, config.slashing.prune) else {
        return Ok(None);
    };
    let c = &config.slashing;
    let interval = std::time::Duration::from_secs(c.prune_interval_secs.max(1));
    let schedule = slashing_db::PruneSchedule {
        settings: slashing_db::PruneSettings {
            keep_epochs: c.prune_keep_epochs,
            slots_per_epoch,
            batch_rows: c.prune_batch_size.max(1),
        },
        first_delay: interval.min(std::time::Duration::from_secs(60)),
        interval,
    };
    let pruner = db
        .start_pruning(schedule)
        .context("cannot start slashing database pruning")?;
    tracing::info!(
        keep_epochs = c.prune_keep_epochs,
        interval_secs = interval.as_secs(),
        batch_size = schedule.settings.batch_rows,
        "slashing database pruning in the background"
    );
    Ok(Some(pruner))
}

/// Loads keys on a background thread (in parallel across cores) while the server runs;
/// each loaded key becomes a `key_load` audit event.
fn spawn_key_loading(
    jobs: Vec<LoadJob>,
    table: Arc<KeyTable>,
    progress: Arc<LoadProgress>,
    audit: Arc<crate::audit::AuditLog>,
) {
    progress.add_total(jobs.len());
    std::thread::spawn(move || {
        let started = Instant::now();
        keys::loader::run_jobs(jobs, &table, &progress);
        for key in table.keys() {
            let detail = format!("{} {}", key.source().as_str(), key.origin());
            audit.record_key_event_waiting(crate::audit::EventName::KeyLoad, key.pubkey(), &detail);
        }
        // `/healthcheck` gives counts only; which key failed, and why, is logged here
        // (before loading is reported finished).
        for failure in &progress.snapshot().failures {
            tracing::warn!(
                origin = %failure.origin,
                error = %failure.error,
                "a key failed to load"
            );
        }
        progress.finish();
        let s = progress.snapshot();
        tracing::info!(
            loaded = s.loaded,
            failed = s.failed,
            elapsed = ?started.elapsed(),
            "key loading finished"
        );
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
