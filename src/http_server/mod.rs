//! The signing API's HTTP server: an accept loop with caps on open connections (in total
//! and per peer address), header, body and keep-alive idle deadlines, and graceful shutdown.
//! It replaces `axum::serve`, which runs hyper without any of these.
//!
//! Connections come from plain TCP ([`TcpIncoming`]) or the TLS listener
//! (`crate::tls::listener::TlsListener`); both admit connections right after `accept`.

pub mod admission;
mod connection;
pub mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use admission::{accept_admitted, Admission, ConnectionPermit, Refusal};
pub use metrics::ConnectionMetrics;

use crate::config::{Config, ConfigError, ServerConfig};
use crate::tls::listener::{PeerInfo, TlsListener};

/// The kernel's queue of connections not yet accepted. The kernel caps it at
/// `net.core.somaxconn`; std's default of 128 (tokio's 1024) overflows in a burst of
/// thousands of fresh connections, and an overflow costs the client a SYN retry (1 s).
const ACCEPT_BACKLOG: i32 = 65_535;

/// File descriptors kept free of connections (database, logs, keys, HSM).
const RESERVED_FILE_DESCRIPTORS: u64 = 256;

/// The connection limits in force (from `[server]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head must arrive within this time of its first byte (or of the
    /// connection opening).
    pub header_read_timeout: Duration,
    /// A request body must arrive within this time of its head.
    pub body_read_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one peer address.
    pub max_connections_per_peer: usize,
    /// A TLS handshake must finish within this time.
    pub tls_handshake_timeout: Duration,
    /// Most TLS handshakes in progress; a connection arriving when all are taken is closed.
    pub max_pending_tls_handshakes: usize,
}

impl ConnectionLimits {
    /// The limits of `[server]`.
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(server.body_read_timeout_ms),
            idle_timeout: Duration::from_millis(server.idle_timeout_ms),
            max_connections: server.max_connections,
            max_connections_per_peer: server.max_connections_per_peer,
            tls_handshake_timeout: Duration::from_millis(server.tls_handshake_timeout_ms),
            max_pending_tls_handshakes: server.max_pending_tls_handshakes,
        }
    }

    /// These limits with `max_connections` lowered to what `open_files` file descriptors
    /// allow (logged when lowered).
    pub fn within_open_file_limit(mut self, open_files: u64) -> Self {
        let usable = open_files.saturating_sub(RESERVED_FILE_DESCRIPTORS).max(1);
        let usable = usize::try_from(usable).unwrap_or(usize::MAX);
        if self.max_connections > usable {
            tracing::warn!(
                configured = self.max_connections,
                allowed = usable,
                open_file_limit = open_files,
                "server.max_connections lowered to fit the open-file limit (raise `ulimit -n` \
                 or LimitNOFILE to serve more)"
            );
            self.max_connections = usable;
        }
        self
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::from_config(&ServerConfig::default())
    }
}

/// Where admitted connections come from.
pub trait Incoming {
    /// The connection's stream.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The next admitted connection.
    fn next(&mut self) -> impl Future<Output = (Self::Io, PeerInfo, ConnectionPermit)> + Send;
}

/// Plain TCP connections, admitted within the caps.
pub struct TcpIncoming {
    listener: TcpListener,
    admission: Arc<Admission>,
}

impl TcpIncoming {
    /// Admits connections accepted on `listener`.
    pub fn new(listener: TcpListener, admission: Arc<Admission>) -> Self {
        Self {
            listener,
            admission,
        }
    }
}

impl Incoming for TcpIncoming {
    type Io = TcpStream;

    async fn next(&mut self) -> (TcpStream, PeerInfo, ConnectionPermit) {
        let (stream, addr, permit) = accept_admitted(&self.listener, &self.admission).await;
        let peer = PeerInfo {
            addr,
            certificate: None,
        };
        (stream, peer, permit)
    }
}

impl Incoming for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;

    async fn next(&mut self) -> (Self::Io, PeerInfo, ConnectionPermit) {
        self.accept().await
    }
}

/// Serves `router` on every connection of `incoming` until `shutdown` resolves, then
/// stops accepting and waits for the requests in flight to be answered.
pub async fn serve<I: Incoming>(
    mut incoming: I,
    router: axum::Router,
    limits: ConnectionLimits,
    metrics: ConnectionMetrics,
    shutdown: impl Future<Output = ()>,
) {
    // No hyper timer: the connection watchdog owns the header and idle deadlines.
    let builder = Arc::new(Builder::new(TokioExecutor::new()));
    let (signal, watch_signal) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (io, peer, permit) = tokio::select! {
            () = &mut shutdown => break,
            next = incoming.next() => next,
        };
        tokio::spawn(connection::serve(
            io,
            peer,
            permit,
            router.clone(),
            Arc::clone(&builder),
            limits,
            metrics.clone(),
            watch_signal.clone(),
        ));
    }
    drop(incoming);
    drop(watch_signal);
    let _ = signal.send(true);
    // Every connection task holds a receiver; all are gone once the last one finished.
    signal.closed().await;
}

/// Binds the signing API's listener with a deep accept backlog (see [`ACCEPT_BACKLOG`]).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std and tokio do: a restarted signer can bind while old connections linger.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(ACCEPT_BACKLOG)?;
    TcpListener::from_std(std::net::TcpListener::from(socket))
}

/// Raises the open-file soft limit to the hard limit (each connection is a file
/// descriptor) and returns the soft limit in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open-file limit");
        return 1024;
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        } else {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot raise the open-file limit");
        }
    }
    tracing::info!(
        soft_before = before,
        soft = limit.rlim_cur,
        hard = limit.rlim_max,
        "open-file limit"
    );
    limit.rlim_cur
}

/// Refuses a signing API listening beyond loopback unless clients must authenticate
/// (TLS client certificates, or known clients with tokens) or the operator accepted the
/// risk with `server.allow_insecure_listen` (then warns at every start).
pub fn check_listen_exposure(config: &Config) -> Result<(), ConfigError> {
    if config.server.listen.ip().is_loopback() || clients_must_authenticate(config) {
        return Ok(());
    }
    if config.server.allow_insecure_listen {
        tracing::warn!(
            listen = %config.server.listen,
            "the signing API listens beyond loopback without client authentication \
             (server.allow_insecure_listen): anyone who can reach it can ask for signatures"
        );
        return Ok(());
    }
    Err(ConfigError::new(
        "server.listen",
        format!(
            "{} is not a loopback address and clients need not authenticate: configure TLS \
             client certificates (tls.client_ca or fingerprints) or client tokens with \
             access.require_known_client = true, or set --allow-insecure-listen \
             (server.allow_insecure_listen) to accept the risk",
            config.server.listen
        ),
    ))
}

/// True when every signing request must come from an authenticated client.
fn clients_must_authenticate(config: &Config) -> bool {
    let certificates = config.tls.enabled() && config.tls.client_auth_configured(&config.access);
    let tokens = config.access.require_known_client
        && config.access.clients.iter().any(|c| c.token_file.is_some());
    certificates || tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str) -> Config {
        let mut c = Config::default();
        c.server.listen = listen.parse().unwrap();
        c
    }

    #[test]
    fn loopback_listen_needs_nothing() {
        assert!(check_listen_exposure(&config("127.0.0.1:9000")).is_ok());
        assert!(check_listen_exposure(&config("[::1]:9000")).is_ok());
    }

    #[test]
    fn open_listen_without_authentication_is_refused_unless_allowed() {
        let mut c = config("0.0.0.0:9000");
        let err = check_listen_exposure(&c).unwrap_err();
        assert_eq!(err.setting, "server.listen");
        assert!(err.message.contains("--allow-insecure-listen"), "{err}");
        c.server.allow_insecure_listen = true;
        assert!(check_listen_exposure(&c).is_ok());
    }

    #[test]
    fn open_listen_with_required_tokens_is_accepted() {
        let mut c = config("10.1.2.3:9000");
        c.access.require_known_client = true;
        c.access.clients.push(crate::access::ClientConfig {
            name: "vc".into(),
            token_file: Some("token".into()),
            ..Default::default()
        });
        assert!(check_listen_exposure(&c).is_ok());
        c.access.require_known_client = false;
        assert!(
            check_listen_exposure(&c).is_err(),
            "a token that is optional is no guard"
        );
    }

    #[test]
    fn connections_are_capped_below_the_open_file_limit() {
        let limits = ConnectionLimits::default();
        assert!(limits.max_connections >= 20_000);
        assert!(limits.max_connections_per_peer >= 20_000);
        let capped = limits.within_open_file_limit(4096);
        assert_eq!(capped.max_connections, 4096 - 256);
        let roomy = limits.within_open_file_limit(1 << 20);
        assert_eq!(roomy.max_connections, limits.max_connections);
    }
}
