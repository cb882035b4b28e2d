//! The TLS listener of the signing API, and the per-connection [`PeerInfo`] the HTTP layer
//! reads the client certificate from.
//!
//! Each TCP connection is admitted within the connection caps right after `accept`, then
//! its handshake runs in its own task, bounded in number and time: when every handshake
//! slot is taken the new connection is closed at once (counted in
//! `keyguard_http_connections_refused_total{reason="tls_handshake_slots"}`), so `accept`
//! never waits and a slow or hostile client cannot stall it for everyone else. Finished
//! sessions go to the HTTP server through a channel. A failed handshake closes the
//! connection without any HTTP response and is counted in
//! `keyguard_tls_handshake_failures_total{reason}`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounterVec, Opts, Registry};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::http_server::admission::{accept_admitted, Admission, ConnectionPermit};
use crate::identity::fingerprint::{self, Fingerprint};

/// What the HTTP layer knows about a connection: the peer address and, on TLS with a
/// client certificate, the certificate's SHA-256 fingerprint. Read it with
/// `ConnectInfo<PeerInfo>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// The client's address.
    pub addr: SocketAddr,
    /// SHA-256 of the client certificate, when one was verified in the handshake.
    pub certificate: Option<Fingerprint>,
}

/// `keyguard_tls_handshake_failures_total{reason}`.
#[derive(Clone)]
pub struct TlsMetrics {
    handshake_failures: IntCounterVec,
}

impl TlsMetrics {
    /// Registers the TLS metrics on `registry` (the one of `crate::metrics::Metrics`).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let handshake_failures = IntCounterVec::new(
            Opts::new(
                "keyguard_tls_handshake_failures_total",
                "TLS handshakes on the signing API that failed, by reason: client_certificate \
                 (missing or refused client certificate), timeout, or protocol (anything else, \
                 e.g. plain HTTP on the TLS port)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(handshake_failures.clone()))?;
        // Zero series exist from the start, so rate() and alerts work before a failure.
        for reason in ["client_certificate", "timeout", "protocol"] {
            handshake_failures.with_label_values(&[reason]);
        }
        Ok(Self { handshake_failures })
    }

    fn failure(&self, reason: &'static str) {
        self.handshake_failures.with_label_values(&[reason]).inc();
    }
}

/// An established TLS session with its peer and its place within the connection caps.
type Session = (TlsStream<TcpStream>, PeerInfo, ConnectionPermit);

/// How many handshakes may run at once, and for how long each.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeLimits {
    /// A handshake that takes longer is abandoned.
    pub timeout: Duration,
    /// Most handshakes in progress; a connection arriving when all are taken is closed.
    pub max_pending: usize,
}

/// Yields established TLS sessions to the HTTP server (its `Incoming` source).
pub struct TlsListener {
    ready: mpsc::Receiver<Session>,
}

impl TlsListener {
    /// Starts accepting on `tcp`: connections are admitted by `admission`, then
    /// handshakes use `config` within `limits`.
    pub fn spawn(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        metrics: TlsMetrics,
        admission: Arc<Admission>,
        limits: HandshakeLimits,
    ) -> Self {
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(accept_loop(tcp, acceptor, metrics, admission, limits, tx));
        Self { ready }
    }

    /// The next established session.
    pub async fn accept(&mut self) -> Session {
        match self.ready.recv().await {
            Some(session) => session,
            None => {
                // The accept loop only ends when this listener is dropped, so this is
                // unreachable in practice; never busy-loop if it happens anyway.
                tracing::error!("the TLS accept loop stopped; no new connections are accepted");
                std::future::pending().await
            }
        }
    }
}

/// Accepts TCP connections and runs each handshake in its own task until the listener
/// is dropped. Never waits for a handshake slot: a connection that finds none is closed.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    metrics: TlsMetrics,
    admission: Arc<Admission>,
    limits: HandshakeLimits,
    tx: mpsc::Sender<Session>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_pending.max(1)));
    loop {
        let (stream, addr, permit) = tokio::select! {
            () = tx.closed() => return,
            accepted = accept_admitted(&tcp, &admission) => accepted,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(peer = %addr, "connection refused: every TLS handshake slot is taken");
            admission.metrics().refused("tls_handshake_slots");
            continue;
        };
        let (acceptor, metrics, tx) = (acceptor.clone(), metrics.clone(), tx.clone());
        tokio::spawn(async move {
            let session = handshake(&acceptor, stream, addr, limits.timeout, &metrics).await;
            drop(slot);
            if let Some((tls, peer)) = session {
                // The receiver is gone only while shutting down; the session just closes.
                let _ = tx.send((tls, peer, permit)).await;
            }
        });
    }
}

/// One handshake; failures are logged (at debug: anyone can cause them) and counted.
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
    timeout: Duration,
    metrics: &TlsMetrics,
) -> Option<(TlsStream<TcpStream>, PeerInfo)> {
    let result = tokio::time::timeout(timeout, acceptor.accept(stream)).await;
    let tls = match result {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let reason = failure_reason(&e);
            tracing::debug!(peer = %addr, reason, error = %e, "TLS handshake failed");
            metrics.failure(reason);
            return None;
        }
        Err(_) => {
            tracing::debug!(peer = %addr, "TLS handshake timed out");
            metrics.failure("timeout");
            return None;
        }
    };
    let certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| fingerprint::of_der(leaf));
    Some((tls, PeerInfo { addr, certificate }))
}

/// The metric label of a failed handshake.
fn failure_reason(error: &io::Error) -> &'static str {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            "client_certificate"
        }
        _ => "protocol",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_are_told_apart_from_protocol_errors() {
        let refused = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        assert_eq!(failure_reason(&refused), "client_certificate");
        let missing = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::NoCertificatesPresented,
        );
        assert_eq!(failure_reason(&missing), "client_certificate");
        let plaintext = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert_eq!(failure_reason(&plaintext), "protocol");
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(failure_reason(&reset), "protocol");
    }

    #[test]
    fn metrics_register_with_zero_series() {
        let registry = Registry::new();
        let metrics = TlsMetrics::register(&registry).unwrap();
        metrics.failure("timeout");
        let families = registry.gather();
        let family = families
            .iter()
            .find(|f| f.name() == "keyguard_tls_handshake_failures_total")
            .unwrap();
        assert_eq!(family.get_metric().len(), 3);
        let count = |reason| {
            metrics
                .handshake_failures
                .with_label_values(&[reason])
                .get()
        };
        assert_eq!(count("timeout"), 1);
        assert_eq!(count("protocol"), 0);
    }
}
