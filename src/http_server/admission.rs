//! Caps on open connections, in total and per peer address, checked right after `accept`
//! (before any TLS handshake or HTTP parsing), so a flood from one address cannot take
//! every file descriptor.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};

use super::metrics::ConnectionMetrics;

/// Why [`Admission::admit`] refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `server.max_connections` connections are open.
    MaxConnections,
    /// `server.max_connections_per_peer` connections from this address are open.
    MaxConnectionsPerPeer,
}

impl Refusal {
    /// The `reason` label of `keyguard_http_connections_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxConnectionsPerPeer => "max_connections_per_peer",
        }
    }
}

/// Counts open connections and admits new ones within the caps.
pub struct Admission {
    max_total: usize,
    max_per_peer: usize,
    metrics: ConnectionMetrics,
    open: Mutex<OpenConnections>,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

impl Admission {
    /// Caps of `max_total` connections, `max_per_peer` of them from one address.
    pub fn new(max_total: usize, max_per_peer: usize, metrics: ConnectionMetrics) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_peer,
            metrics,
            open: Mutex::new(OpenConnections::default()),
        })
    }

    /// The metrics refusals and timeouts are counted in.
    pub fn metrics(&self) -> &ConnectionMetrics {
        &self.metrics
    }

    /// A permit for one more connection from `peer`, held for the connection's life; or
    /// the cap it would exceed (counted).
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionPermit, Refusal> {
        // An IPv4 client on a dual-stack socket is the same peer as on an IPv4 socket.
        let peer = peer.to_canonical();
        let refusal = {
            let mut open = self.open.lock();
            let from_peer = open.per_peer.get(&peer).copied().unwrap_or(0);
            if open.total >= self.max_total {
                Some(Refusal::MaxConnections)
            } else if from_peer >= self.max_per_peer {
                Some(Refusal::MaxConnectionsPerPeer)
            } else {
                open.total += 1;
                open.per_peer.insert(peer, from_peer + 1);
                None
            }
        };
        if let Some(refusal) = refusal {
            self.metrics.refused(refusal.label());
            return Err(refusal);
        }
        self.metrics.opened();
        Ok(ConnectionPermit {
            admission: Arc::clone(self),
            peer,
        })
    }

    fn release(&self, peer: IpAddr) {
        let mut open = self.open.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_peer.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                open.per_peer.remove(&peer);
            }
        }
        drop(open);
        self.metrics.closed();
    }
}

/// One admitted connection; dropping it frees its place.
pub struct ConnectionPermit {
    admission: Arc<Admission>,
    peer: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.admission.release(self.peer);
    }
}

/// Accepts the next connection within the caps; refused ones are closed at once (the
/// client sees a reset or EOF, and retries elsewhere or later). Sets `TCP_NODELAY`:
/// answers are one small write, and Nagle with delayed ACKs would hold them back.
pub async fn accept_admitted(
    listener: &TcpListener,
    admission: &Arc<Admission>,
) -> (TcpStream, SocketAddr, ConnectionPermit) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_error_pause(&e).await;
                continue;
            }
        };
        let Ok(permit) = admission.admit(addr.ip()) else {
            tracing::debug!(peer = %addr, "connection refused: connection limit reached");
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(peer = %addr, error = %e, "cannot set TCP_NODELAY");
        }
        return (stream, addr, permit);
    }
}

/// After a failed `accept`: a connection that died in the backlog costs nothing; anything
/// else (usually out of file descriptors) pauses briefly instead of spinning.
async fn accept_error_pause(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %error, "cannot accept a connection on the signing API");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(total: usize, per_peer: usize) -> Arc<Admission> {
        let metrics = ConnectionMetrics::register(&prometheus::Registry::new()).unwrap();
        Admission::new(total, per_peer, metrics)
    }

    #[test]
    fn per_peer_cap_leaves_room_for_other_peers() {
        let a = admission(10, 2);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let first = a.admit(one).unwrap();
        let _second = a.admit(one).unwrap();
        assert_eq!(a.admit(one).err(), Some(Refusal::MaxConnectionsPerPeer));
        let _other = a.admit(two).unwrap();
        drop(first);
        assert!(a.admit(one).is_ok(), "a closed connection frees its place");
    }

    #[test]
    fn total_cap_applies_across_peers() {
        let a = admission(2, 2);
        let _p1 = a.admit("10.0.0.1".parse().unwrap()).unwrap();
        let _p2 = a.admit("10.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(
            a.admit("10.0.0.3".parse().unwrap()).err(),
            Some(Refusal::MaxConnections)
        );
    }

    #[test]
    fn mapped_ipv4_counts_as_the_same_peer() {
        let a = admission(10, 1);
        let _v4 = a.admit("10.0.0.1".parse().unwrap()).unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(a.admit(mapped).err(), Some(Refusal::MaxConnectionsPerPeer));
    }
}
