//! One HTTP connection: hyper serves it while a watchdog enforces the header-read and
//! keep-alive idle deadlines, and each request body gets its own read deadline.
//!
//! hyper's own header timeout also runs while a keep-alive connection waits for its next
//! request, so it cannot tell a slow header (seconds) from an idle pool connection (minutes);
//! the watchdog can, because it sees both the bytes read and the requests in flight.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tower::Service;

use super::admission::ConnectionPermit;
use super::metrics::ConnectionMetrics;
use super::ConnectionLimits;
use crate::tls::listener::PeerInfo;

/// Serves one connection until it closes, misses a deadline, or (after `shutdown` turns
/// true) finishes its request in flight.
#[allow(clippy::too_many_arguments)] // the parts of one connection, each used once
pub(super) async fn serve<IO>(
    io: IO,
    peer: PeerInfo,
    permit: ConnectionPermit,
    router: axum::Router,
    builder: Arc<Builder<TokioExecutor>>,
    limits: ConnectionLimits,
    metrics: ConnectionMetrics,
    mut shutdown: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(WatchedIo {
        inner: io,
        activity: Arc::clone(&activity),
    });
    let service = RequestService {
        router,
        peer,
        activity: Arc::clone(&activity),
        body_timeout: limits.body_read_timeout,
        metrics: metrics.clone(),
    };
    let conn = builder.serve_connection(io, hyper_util::service::TowerToHyperService::new(service));
    tokio::pin!(conn);
    let watchdog = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(watchdog);
    let mut shutting_down = *shutdown.borrow();
    if shutting_down {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(peer = %peer.addr, error = %e, "connection ended with an error");
                }
                break;
            }
            () = &mut watchdog => match activity.check(&limits) {
                Ok(recheck) => watchdog.as_mut().reset(tokio::time::Instant::now() + recheck),
                Err(phase) => {
                    tracing::debug!(peer = %peer.addr, phase, "connection timed out");
                    metrics.timed_out(phase);
                    break;
                }
            },
            changed = shutdown.changed(), if !shutting_down => {
                // A closed channel also means shutting down.
                let _ = changed;
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(permit);
}

/// What the watchdog knows about a connection. Times are milliseconds since the
/// connection opened, plus one, so that 0 can mean "not set".
struct Activity {
    opened: Instant,
    /// When the first byte of a request head arrived (or the connection opened, before its
    /// first request); 0 while no head is being read.
    head_since: AtomicU64,
    /// When the last request in flight was answered.
    idle_since: AtomicU64,
    in_flight: AtomicU32,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            // A fresh connection owes its first request head within the header timeout.
            head_since: AtomicU64::new(1),
            idle_since: AtomicU64::new(1),
            in_flight: AtomicU32::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Bytes arrived: with no request in flight they start a request head.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self.head_since.compare_exchange(
                0,
                self.now(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// hyper parsed a request head and called the service.
    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
        InFlight(Arc::clone(self))
    }

    /// `Ok(wait)`: no deadline missed, look again after `wait`; `Err(phase)`: the deadline
    /// of `phase` passed.
    fn check(&self, limits: &ConnectionLimits) -> Result<Duration, &'static str> {
        let now = self.now();
        let head_since = self.head_since.load(Ordering::Acquire);
        if head_since != 0 {
            return remaining(now, head_since, limits.header_read_timeout).ok_or("header");
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Request bodies have their own deadline; handlers answer or time out on theirs.
            return Ok(limits.header_read_timeout);
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        remaining(now, idle_since, limits.idle_timeout).ok_or("idle")
    }
}

/// Time left until `since + limit`, or `None` when it has passed.
fn remaining(now: u64, since: u64, limit: Duration) -> Option<Duration> {
    let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    let deadline = since.saturating_add(limit_ms);
    (now < deadline).then(|| Duration::from_millis(deadline - now))
}

/// A request in flight; dropping it (answered or cancelled) starts the idle time.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's stream, reporting reads to the watchdog.
struct WatchedIo<IO> {
    inner: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for WatchedIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WatchedIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router behind one connection: adds `ConnectInfo<PeerInfo>` (read by the access
/// layer), a read deadline on the body, and in-flight accounting for the watchdog.
#[derive(Clone)]
struct RequestService {
    router: axum::Router,
    peer: PeerInfo,
    activity: Arc<Activity>,
    body_timeout: Duration,
    metrics: ConnectionMetrics,
}

impl Service<hyper::Request<Incoming>> for RequestService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.request_started();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let body = DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(self.body_timeout)),
            timeout: self.body_timeout,
            metrics: self.metrics.clone(),
        };
        let req = hyper::Request::from_parts(parts, Body::new(body));
        let mut router = self.router.clone();
        Box::pin(async move {
            let response = router.call(req).await;
            drop(in_flight);
            response
        })
    }
}

/// A request body that fails once its read deadline passes, so a client trickling a body
/// cannot hold a handler (and its connection) for long.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    metrics: ConnectionMetrics,
}

/// The error a body past its deadline ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?} (server.body_read_timeout_ms)")]
struct BodyTimeout(Duration);

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.metrics.timed_out("body");
            let timeout = self.timeout;
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(5_000),
            idle_timeout: Duration::from_millis(60_000),
            ..ConnectionLimits::default()
        }
    }

    #[test]
    fn a_fresh_connection_owes_its_head_within_the_header_timeout() {
        let a = Activity::new();
        let wait = a.check(&limits()).unwrap();
        assert!(wait <= Duration::from_millis(5_000), "{wait:?}");
        assert_eq!(remaining(5_002, 1, Duration::from_millis(5_000)), None);
    }

    #[test]
    fn an_answered_connection_gets_the_idle_timeout() {
        let a = Arc::new(Activity::new());
        let in_flight = a.request_started();
        // While a request is in flight no connection deadline runs.
        assert_eq!(a.check(&limits()), Ok(Duration::from_millis(5_000)));
        drop(in_flight);
        let wait = a.check(&limits()).unwrap();
        assert!(wait > Duration::from_millis(50_000), "{wait:?}");
        // The next request's first bytes start the header deadline again.
        a.bytes_read();
        let wait = a.check(&limits()).unwrap();
        assert!(wait <= Duration::from_millis(5_000), "{wait:?}");
    }

    #[test]
    fn body_bytes_do_not_start_a_head() {
        let a = Arc::new(Activity::new());
        let _in_flight = a.request_started();
        a.bytes_read();
        assert_eq!(a.head_since.load(Ordering::Acquire), 0);
    }
}
