//! The signing queue: bounded, prioritised and fair admission in front of the signing
//! pipeline.
//!
//! **Where.** A sign request is admitted before the pipeline starts (before the key
//! lookup), and holds its place ([`Permit`]) until it is answered. So a flood of requests
//! for unknown keys waits and is shed like any other, and shedding happens only before
//! anything was checked, audited or recorded: a request whose slashing record was written
//! is always answered (this queue never drops a running request).
//!
//! **Bounds.** At most `concurrency` requests run the pipeline at once, at most
//! `background_concurrency` of them background requests (so a duty request finds at most
//! that many background signatures ahead of it on the signing threads). Requests beyond
//! wait here, at most `depth` in all and `per_client` per client; a request that finds
//! no room is answered 503 with `Retry-After` ([`Shed`]), never 412 (which means a
//! slashing refusal). A shed request is counted in the metrics, not in the audit log: under
//! a flood, one audit event per shed request would fill the audit queue, and with
//! `audit.on_failure = "refuse"` that would refuse the other clients' duties.
//!
//! **Order.** Duty requests ([`Priority::Duty`]) before background ones, except that a
//! waiting background request gets a turn after [`DUTY_TURNS`] duty turns, so it is
//! slowed but never starved. Within a class, clients take turns ([`fair`]): one client's
//! thousand waiting requests do not delay another client's one.
//!
//! **Cheap refusals.** A request refused in microseconds (unknown key, out of scope,
//! malformed) never waits here long; a client that keeps sending them has its answers
//! delayed instead, after its permit is released ([`tarpit`]).
//!
//! **Full queue.** A newcomer may push out the newest waiting request of the client with
//! the most waiting in the lowest class, if that request is of a lower class, or of the
//! same class and its client has more waiting than the newcomer's would: a flood fills the
//! queue with its own requests, and sheds its own requests first.

mod fair;
mod metrics;
mod priority;
mod tarpit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

pub(crate) use fair::{ClassTurns, FairQueue};
pub use metrics::QueueMetrics;
pub use priority::{ClientKey, Priority};
pub use tarpit::{RefusalLimits, MAX_DELAY as TARPIT_MAX_DELAY};

use crate::config::QueueConfig;
use crate::signer::SignError;
use tarpit::Tarpit;

/// Duty turns in a row while background requests wait, before one of those gets a turn.
pub const DUTY_TURNS: usize = 16;

/// How long an overloaded signer asks a client to wait (`Retry-After`): one second is a
/// sixth of a minimal slot and a twelfth of a mainnet one, long enough for a backlog of a
/// few thousand signatures to drain.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The queue's bounds (from `[queue]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most requests running the pipeline at once.
    pub concurrency: usize,
    /// Most background requests running the pipeline at once.
    pub background_concurrency: usize,
    /// Most requests waiting, in all.
    pub depth: usize,
    /// Most requests waiting from one client.
    pub per_client: usize,
    /// Cheap refusals a client gets before their answers are slowed ([`tarpit`]).
    pub refusals: RefusalLimits,
}

impl QueueLimits {
    /// The limits of `[queue]`.
    pub fn from_config(config: &QueueConfig) -> Self {
        Self {
            concurrency: config.concurrency,
            background_concurrency: config.background_concurrency,
            depth: config.depth,
            per_client: config.per_client,
            refusals: RefusalLimits {
                burst: config.refusal_burst,
                rate: config.refusal_rate,
            },
        }
    }
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self::from_config(&QueueConfig::default())
    }
}

/// Why a request was not admitted: the signer is overloaded. Answered 503 with
/// `Retry-After`; nothing was checked, recorded or signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Shed {
    /// The queue holds `queue.depth` requests and none gives way to this one.
    #[error("the signer is overloaded (signing queue full); nothing signed, retry later")]
    QueueFull,
    /// This client has `queue.per_client` requests waiting.
    #[error(
        "the signer is overloaded (this client's share of the signing queue is full); \
         nothing signed, retry later"
    )]
    ClientQueueFull,
    /// The request waited, then gave way to a more urgent request or a client with fewer
    /// requests waiting.
    #[error(
        "the signer is overloaded (request displaced from the signing queue); nothing \
         signed, retry later"
    )]
    Displaced,
}

impl Shed {
    /// Every reason, for metrics that exist at zero.
    pub const ALL: [Shed; 3] = [Shed::QueueFull, Shed::ClientQueueFull, Shed::Displaced];

    /// The `reason` label of `keyguard_signing_queue_rejected_total`.
    pub fn label(self) -> &'static str {
        match self {
            Shed::QueueFull => "queue_full",
            Shed::ClientQueueFull => "client_queue_full",
            Shed::Displaced => "displaced",
        }
    }
}

/// The admission queue; shared by all requests.
pub struct SigningQueue {
    limits: QueueLimits,
    state: Mutex<State>,
    metrics: Option<QueueMetrics>,
    tarpit: Tarpit,
}

/// A place in the pipeline, held until the request is answered; dropping it lets the
/// next waiting request in.
pub struct Permit {
    queue: Arc<SigningQueue>,
    priority: Priority,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.queue.release(self.priority);
    }
}

/// A waiting request: where to send its permit or its shedding.
struct Waiter {
    reply: oneshot::Sender<Result<Permit, Shed>>,
    since: Instant,
}

/// Answers decided under the lock, sent after it is released (a permit that cannot be
/// delivered is dropped, and its release takes the lock again).
type Replies = Vec<(Waiter, Result<Permit, Shed>)>;

struct State {
    waiting: FairQueue<Waiter>,
    /// Requests running, per class.
    running: [usize; 2],
    /// Whose class's turn it is.
    turns: ClassTurns,
    next_id: u64,
}

impl SigningQueue {
    /// A queue within `limits`, counted in `metrics` when given.
    pub fn new(limits: QueueLimits, metrics: Option<QueueMetrics>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            state: Mutex::new(State {
                waiting: FairQueue::new(),
                running: [0; 2],
                turns: ClassTurns::default(),
                next_id: 0,
            }),
            tarpit: Tarpit::new(limits.refusals, metrics.clone()),
            metrics,
        })
    }

    /// The bounds in force.
    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// Requests waiting now, in all classes.
    pub fn waiting(&self) -> usize {
        self.state.lock().waiting.len()
    }

    /// A place in the pipeline for a request of `priority` from `client`: at once when
    /// there is room, else after waiting its turn; or why not.
    pub async fn admit(
        self: &Arc<Self>,
        client: ClientKey,
        priority: Priority,
    ) -> Result<Permit, Shed> {
        let (id, reply, displaced) = {
            let mut state = self.state.lock();
            if state.may_start(priority, &self.limits) {
                state.start(priority);
                self.publish(&state);
                drop(state);
                self.observe_admitted(priority, Duration::ZERO);
                return Ok(self.permit(priority));
            }
            let displaced = match state.make_room(&self.limits, priority, &client) {
                Ok(displaced) => displaced,
                Err(shed) => {
                    drop(state);
                    self.observe_shed(shed, Some(&client));
                    return Err(shed);
                }
            };
            let (tx, rx) = oneshot::channel();
            let id = state.next_id;
            state.next_id += 1;
            let waiter = Waiter {
                reply: tx,
                since: Instant::now(),
            };
            state.waiting.push(priority, client.clone(), id, waiter);
            self.publish(&state);
            (id, rx, displaced)
        };
        if let Some(waiter) = displaced {
            self.deliver(vec![(waiter, Err(Shed::Displaced))]);
        }
        let mut cancel = CancelOnDrop {
            queue: self,
            priority,
            client,
            id,
            armed: true,
        };
        let answer = reply.await;
        cancel.armed = false;
        // The sender is dropped unanswered only if the queue itself is gone.
        answer.unwrap_or(Err(Shed::QueueFull))
    }

    /// Holds the answer of `client`'s request that ended in `outcome` while `client` is
    /// over its allowance of cheap refusals ([`tarpit`]). Call after the request's
    /// [`Permit`] was dropped: a held request must not keep a place in the pipeline.
    pub async fn hold_refusal(&self, client: &ClientKey, outcome: &SignError) {
        self.tarpit.hold(client, outcome).await;
    }

    /// Holds an access-layer refusal (401, 403: unknown credentials, Host not allowed)
    /// of `client` while it is over the same allowance of cheap refusals.
    pub async fn hold_access_refusal(&self, client: &ClientKey) {
        self.tarpit.hold_cheap(client).await;
    }

    fn permit(self: &Arc<Self>, priority: Priority) -> Permit {
        Permit {
            queue: Arc::clone(self),
            priority,
        }
    }

    /// A running request of `priority` finished: start whoever is next.
    fn release(self: &Arc<Self>, priority: Priority) {
        let replies = {
            let mut state = self.state.lock();
            state.running[priority.index()] -= 1;
            let replies = self.grant(&mut state);
            self.publish(&state);
            replies
        };
        self.deliver(replies);
    }

    /// Starts waiting requests while there is room, in serving order.
    fn grant(self: &Arc<Self>, state: &mut State) -> Replies {
        let mut replies = Vec::new();
        while let Some(priority) = state.next_class(&self.limits) {
            let Some(waiter) = state.waiting.pop(priority) else {
                break;
            };
            state.start(priority);
            replies.push((waiter, Ok(self.permit(priority))));
        }
        replies
    }

    /// Sends decided answers (outside the lock). A request that stopped waiting drops its
    /// receiver; its permit is then dropped here, which starts the next one.
    fn deliver(&self, replies: Replies) {
        for (waiter, answer) in replies {
            match &answer {
                Ok(permit) => self.observe_admitted(permit.priority, waiter.since.elapsed()),
                Err(shed) => self.observe_shed(*shed, None),
            }
            let _ = waiter.reply.send(answer);
        }
    }

    fn publish(&self, state: &State) {
        if let Some(metrics) = &self.metrics {
            let waiting = Priority::ALL.map(|p| state.waiting.len_of(p));
            metrics.set_counts(waiting, state.running);
        }
    }

    fn observe_admitted(&self, priority: Priority, waited: Duration) {
        if let Some(metrics) = &self.metrics {
            metrics.admitted(priority, waited);
        }
    }

    /// Counts and logs a shed request (`client`: when known here).
    fn observe_shed(&self, shed: Shed, client: Option<&ClientKey>) {
        if let Some(metrics) = &self.metrics {
            metrics.rejected(shed);
        }
        // DEBUG only: under a flood this line would repeat thousands of times a second;
        // the counter is what an operator watches.
        tracing::debug!(
            ?client,
            reason = shed.label(),
            "sign request shed: overloaded"
        );
    }
}

/// Takes a waiting request out of the queue when its caller stops waiting (the client
/// went away); disarmed once an answer arrived.
struct CancelOnDrop<'a> {
    queue: &'a Arc<SigningQueue>,
    priority: Priority,
    client: ClientKey,
    id: u64,
    /// False once the answer arrived.
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.queue.state.lock();
        // Gone already when it was admitted or displaced: the permit, if any, is dropped
        // with the receiver and lets the next request in.
        if state
            .waiting
            .remove(self.priority, &self.client, self.id)
            .is_some()
        {
            self.queue.publish(&state);
        }
    }
}

impl State {
    fn running_total(&self) -> usize {
        self.running.iter().sum()
    }

    /// Whether a request of `priority` arriving now may start without waiting: there is
    /// room, and nobody of its class waits before it.
    fn may_start(&self, priority: Priority, limits: &QueueLimits) -> bool {
        self.waiting.len_of(priority) == 0 && self.has_room(priority, limits)
    }

    fn has_room(&self, priority: Priority, limits: &QueueLimits) -> bool {
        self.running_total() < limits.concurrency
            && (priority == Priority::Duty
                || self.running[Priority::Background.index()] < limits.background_concurrency)
    }

    /// The class whose turn it is, if one has a request waiting and room to start it.
    fn next_class(&self, limits: &QueueLimits) -> Option<Priority> {
        let ready = |p: Priority| self.waiting.len_of(p) > 0 && self.has_room(p, limits);
        self.turns
            .choose(ready(Priority::Duty), ready(Priority::Background))
    }

    fn start(&mut self, priority: Priority) {
        self.running[priority.index()] += 1;
        self.turns.taken(priority);
    }

    /// Room for one more waiting request of `priority` from `client`: `Ok(None)` when
    /// there is room, `Ok(Some(waiter))` when `waiter` gives way, or why the newcomer is
    /// shed.
    fn make_room(
        &mut self,
        limits: &QueueLimits,
        priority: Priority,
        client: &ClientKey,
    ) -> Result<Option<Waiter>, Shed> {
        if self.waiting.client_len(client) >= limits.per_client {
            return Err(Shed::ClientQueueFull);
        }
        if self.waiting.len() < limits.depth {
            return Ok(None);
        }
        let (class, heaviest, count) = self.waiting.heaviest().ok_or(Shed::QueueFull)?;
        let lower_class = class.index() > priority.index();
        let heavier_peer = class == priority
            && heaviest != client
            && count > self.waiting.client_len_of(priority, client) + 1;
        if !(lower_class || heavier_peer) {
            return Err(Shed::QueueFull);
        }
        let heaviest = heaviest.clone();
        Ok(self.waiting.pop_newest(class, &heaviest))
    }
}

#[cfg(test)]
mod tests;
