//! `keyguard run`: assembles the signer from its configuration and serves until stopped.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::http_server::{self, Admission, ConnectionLimits, ConnectionMetrics, TcpIncoming};
use crate::keys::{self, KeyTable, LoadJob, LoadProgress};
use crate::signer::{Signer, SigningPool};
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
        network,
        keys,
        key_progress,
        slashing,
        pool,
        access,
        audit: Arc::clone(&audit),
        metrics,
    };
    let state = Arc::new(AppState::new(
        signer,
        config.server.max_body_bytes,
        hsm,
        keymanager,
    ));
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
    let options = slashing_db::OpenOptions {
        max_batch: config.slashing.max_batch,
        observer: Some(metrics),
        pacer: (config.slashing.max_commit_delay_ms > 0).then(|| {
            pool.pacer(std::time::Duration::from_millis(
                config.slashing.max_commit_delay_ms,
            ))
        }),
        ..Default::default()
    };
    let db = crate::slashing_store::open(config, options)?;
    tracing::info!(database = %db.location(), "slashing protection enabled");
    Ok(Some(db))
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
