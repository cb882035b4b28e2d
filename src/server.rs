//! `keyguard run`: assembles the signer from its configuration and serves until stopped.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::hsm::HsmSession;
use crate::keys::{self, KeyTable, LoadJob, LoadProgress};
use crate::signing::SigningPool;
use crate::tls::listener::{PeerInfo, TlsListener, TlsMetrics};

/// Runs the signer until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    if !crate::process::set_non_dumpable() {
        tracing::warn!("could not mark the process non-dumpable");
    }
    let network = config.network()?;
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
    let signer = SigningPool::new(config.server.signing_threads)
        .context("cannot start the signing threads")?
        .with_metrics(Arc::clone(&metrics));
    let slashing = open_slashing_db(&config, Arc::clone(&metrics), &signer)?;
    let keys = Arc::new(KeyTable::new());
    let key_progress = Arc::new(LoadProgress::new());
    let audit = Arc::new(crate::audit::AuditLog::open(
        &config.audit,
        &config.data_dir,
        "keyguard run",
        Some(metrics.registry()),
    )?);
    let (mut jobs, hsm) = key_jobs(&config)?;
    let km = crate::keymanager::startup(&config, hsm, &metrics)?;
    jobs.extend(km.jobs);
    let hsm = km.hsm;
    spawn_key_loading(
        jobs,
        Arc::clone(&keys),
        Arc::clone(&key_progress),
        Arc::clone(&audit),
    );

    let state = Arc::new(AppState {
        network,
        keys,
        key_progress,
        slashing,
        signer,
        max_body_bytes: config.server.max_body_bytes,
        metrics,
        hsm,
        access,
        audit: Arc::clone(&audit),
        keymanager: km.keymanager,
    });
    if config.metrics.enabled {
        serve_metrics(&config, Arc::clone(&state)).await?;
    }
    let app = api::router(state, config.server.http_path_prefix.as_deref());
    serve_api(&config, app, tls).await?;
    // Every request has been answered: write what is queued before exiting.
    tokio::task::spawn_blocking(move || audit.close())
        .await
        .context("closing the audit log")?;
    tracing::info!("stopped");
    Ok(())
}

/// The rustls configuration and TLS metrics, when `[tls]` gives a server identity.
fn tls_setup(
    config: &Config,
    known_clients: &[crate::tls::known_clients::KnownClient],
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

/// Serves the signing API over plain TCP or TLS until SIGINT or SIGTERM. Either way each
/// request carries a `ConnectInfo<PeerInfo>` (with the client certificate on TLS).
async fn serve_api(
    config: &Config,
    app: axum::Router,
    tls: Option<(Arc<rustls::ServerConfig>, TlsMetrics)>,
) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (server.listen)"))?;
    let service = app.into_make_service_with_connect_info::<PeerInfo>();
    let served = match tls {
        None => {
            tracing::info!(%listen, "signing API listening (plain HTTP)");
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
        Some((server, tls_metrics)) => {
            let client_auth = config.tls.client_auth_configured(&config.access);
            let listener = TlsListener::spawn(listener, server, tls_metrics)
                .context("cannot start the TLS listener")?;
            tracing::info!(%listen, client_certificates = client_auth, "signing API listening (TLS)");
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
    };
    served.context("signing API server failed")
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
    signer: &SigningPool,
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
            signer.pacer(std::time::Duration::from_millis(
                config.slashing.max_commit_delay_ms,
            ))
        }),
        ..Default::default()
    };
    let db = crate::slashing_store::open(config, options)?;
    tracing::info!(database = %db.location(), "slashing protection enabled");
    Ok(Some(db))
}

/// Every key-loading job of every configured source, and the HSM session when sealed keys
/// are configured (kept open for the life of the process). A source that cannot be read
/// at all, or an HSM that cannot be opened, is a start-up error; a key that fails is
/// counted and reported by `/healthcheck`.
pub fn key_jobs(config: &Config) -> anyhow::Result<(Vec<LoadJob>, Option<Arc<HsmSession>>)> {
    let k = &config.keys;
    let sources = keys::KeySourcesConfig {
        keystores: k.keystores.clone(),
        passwords: k.passwords.clone(),
        key_definitions: k.key_definitions.clone(),
        interop_keys: k.interop_keys,
    };
    let mut jobs = keys::load_jobs(&sources).context("cannot read the configured key sources")?;
    let Some(sealed_dir) = &k.sealed else {
        return Ok((jobs, None));
    };
    let hsm_config = config.require_hsm()?;
    let hsm = Arc::new(HsmSession::open(hsm_config).context("cannot open the HSM")?);
    hsm.require_kek()
        .context("the HSM has no key-encryption key")?;
    jobs.extend(
        crate::hsm::sealed_load_jobs(Arc::clone(&hsm), sealed_dir)
            .with_context(|| format!("cannot read sealed keys in {}", sealed_dir.display()))?,
    );
    Ok((jobs, Some(hsm)))
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
            audit.record_key_event_waiting("key_load", key.pubkey(), &detail);
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
