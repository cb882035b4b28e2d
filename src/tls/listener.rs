//! The TLS listener of the signing API, and the per-connection [`PeerInfo`] the HTTP layer
//! reads the client certificate from.
//!
//! Handshakes run in their own tasks (bounded in number and time), so a slow or hostile
//! client cannot stall `accept` for everyone else; finished sessions are handed to axum
//! through a channel. A failed handshake closes the connection without any HTTP response
//! and is counted in `keyguard_tls_handshake_failures_total{reason}`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::identity::fingerprint::{self, Fingerprint};

/// A handshake that takes longer than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; further connections wait in the kernel backlog.
const MAX_PENDING_HANDSHAKES: usize = 256;

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

impl Connected<IncomingStream<'_, TlsListener>> for PeerInfo {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        *stream.remote_addr()
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for PeerInfo {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        PeerInfo {
            addr: *stream.remote_addr(),
            certificate: None,
        }
    }
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

/// An `axum::serve::Listener` yielding established TLS sessions.
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, PeerInfo)>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; handshakes use `config`.
    pub fn spawn(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        metrics: TlsMetrics,
    ) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), metrics, tx));
        Ok(Self { local_addr, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = PeerInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
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

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(PeerInfo {
            addr: self.local_addr,
            certificate: None,
        })
    }
}

/// Accepts TCP connections and runs each handshake in its own task until the listener
/// is dropped.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    metrics: TlsMetrics,
    tx: mpsc::Sender<(TlsStream<TcpStream>, PeerInfo)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "cannot accept a connection on the signing API");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (acceptor, metrics, tx) = (acceptor.clone(), metrics.clone(), tx.clone());
        tokio::spawn(async move {
            if let Some(session) = handshake(&acceptor, stream, addr, &metrics).await {
                // The receiver is gone only while shutting down; the session just closes.
                let _ = tx.send(session).await;
            }
            drop(permit);
        });
    }
}

/// One handshake; failures are logged (at debug: anyone can cause them) and counted.
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
    metrics: &TlsMetrics,
) -> Option<(TlsStream<TcpStream>, PeerInfo)> {
    let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
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
