//! The tarpit for cheap refusals: a per-client token bucket of refusals, and a delay for
//! the refusals beyond it.
//!
//! **Why.** A request for an unknown key (404), out of the client's scope or of a type it
//! may not sign (403), or malformed (400, 413) is answered in microseconds: it never
//! fills the signing queue, so the queue cannot bound it, and a closed-loop flooder with
//! hundreds in flight makes tens of thousands of such requests a second whose HTTP work
//! delays every other client. Delaying the answers of a client that keeps being refused
//! slows such a flooder to about its concurrency divided by the delay, while an honest
//! client, refused now and then, never waits.
//!
//! **How.** Each client ([`ClientKey`]) may be refused `refusal_burst` times at once and
//! then `refusal_rate` times a second. A refusal beyond that is answered when the bucket
//! would hold its token again: the bucket runs into debt, so refusals arriving together
//! wait one token interval after another, at most [`MAX_DELAY`] (then the answer goes out
//! anyway, and the debt stops growing, so a client is never held beyond `MAX_DELAY` after
//! its flood ends). The delay is served after the request left the queue (its permit
//! released), so a tarpitted request holds a connection, not a place in the pipeline.
//!
//! **Never delayed.** Signatures, slashing refusals (412), overload answers (503) and
//! backend or database errors: only refusals decided before anything was recorded count
//! ([`counts`]), so no request whose slashing record was written is ever held.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::metrics::QueueMetrics;
use super::priority::ClientKey;
use crate::signer::{BodyError, SignError};

/// Longest delay of one answer: long enough to make a closed-loop flood of 512 in flight
/// slow (256 requests a second instead of tens of thousands), short enough that a client
/// that erred in bulk (a key list gone stale) is not timed out by its own HTTP client.
pub const MAX_DELAY: Duration = Duration::from_secs(2);

/// Buckets kept before full ones are forgotten (a full bucket is the same as none): bounds
/// the memory of a flood from many addresses to what is in debt.
const PRUNE_ABOVE: usize = 4096;

/// How many cheap refusals a client gets before they are slowed (from `[queue]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalLimits {
    /// Refusals a client may get at once.
    pub burst: u32,
    /// Refusals a client may get per second after the burst; 0 turns the tarpit off.
    pub rate: u32,
}

/// Whether a sign request that ended in `outcome` is a cheap refusal, decided before the
/// slashing check: an unknown key, a scope or type the client may not use, or a malformed
/// request. No wildcard: a new error must be placed here on purpose.
pub fn counts(outcome: &SignError) -> bool {
    match outcome {
        SignError::Body(BodyError::TooLarge(_) | BodyError::Unreadable(_))
        | SignError::BadRequest(_)
        | SignError::WrongGenesis(_)
        | SignError::FutureDuty(_)
        | SignError::UnknownKey(_)
        | SignError::OutOfScope(_)
        | SignError::TypeNotAllowed(_) => true,
        // 412: the slashing check ran (and may have been recorded as a decision); 503:
        // the client should retry; 502/500: the signer's fault, not the client's.
        SignError::Refused { .. }
        | SignError::StillLoading { .. }
        | SignError::Database(_)
        | SignError::Overloaded(_)
        | SignError::Audit(_)
        | SignError::PoolClosed
        | SignError::Backend(_) => false,
    }
}

/// The refusal buckets of all clients.
pub struct Tarpit {
    limits: RefusalLimits,
    buckets: Mutex<Buckets>,
    metrics: Option<QueueMetrics>,
}

/// The buckets, and when full ones were last forgotten.
struct Buckets {
    by_client: HashMap<ClientKey, Bucket>,
    pruned_at: Option<Instant>,
}

/// One client's refusals: `tokens` at `at` (negative: refusals owed, already delayed).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Tarpit {
    /// A tarpit within `limits`, counted in `metrics` when given.
    pub fn new(limits: RefusalLimits, metrics: Option<QueueMetrics>) -> Self {
        Self {
            limits,
            buckets: Mutex::new(Buckets {
                by_client: HashMap::new(),
                pruned_at: None,
            }),
            metrics,
        }
    }

    /// Holds the answer of `client`'s request that ended in `outcome`, if it is a cheap
    /// refusal beyond the client's allowance. Call with no queue permit held.
    pub async fn hold(&self, client: &ClientKey, outcome: &SignError) {
        if counts(outcome) {
            self.hold_cheap(client).await;
        }
    }

    /// Holds the answer of a cheap refusal of `client` (see [`Tarpit::hold`]) decided
    /// outside the sign pipeline: the access layer's 401 and 403.
    pub async fn hold_cheap(&self, client: &ClientKey) {
        let Some(delay) = self.charge(client, Instant::now()) else {
            return;
        };
        if let Some(metrics) = &self.metrics {
            metrics.tarpitted(delay);
        }
        tokio::time::sleep(delay).await;
    }

    /// Takes one refusal from `client`'s bucket at `now`: how long its answer waits, or
    /// `None` when the bucket had a token (or the tarpit is off).
    fn charge(&self, client: &ClientKey, now: Instant) -> Option<Duration> {
        if self.limits.rate == 0 {
            return None;
        }
        let rate = f64::from(self.limits.rate);
        let burst = f64::from(self.limits.burst);
        let mut buckets = self.buckets.lock();
        buckets.prune(now, rate, burst);
        let bucket = buckets.by_client.entry(client.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = bucket.refilled(now, rate, burst);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            return None;
        }
        // Owed refusals wait one interval each; the debt stops at MAX_DELAY.
        let floor = -rate * MAX_DELAY.as_secs_f64();
        *bucket = Bucket {
            tokens: (tokens - 1.0).max(floor),
            at: now,
        };
        Some(Duration::from_secs_f64((1.0 - tokens) / rate).min(MAX_DELAY))
    }
}

impl Buckets {
    /// Forgets full buckets when there are many, at most once a second (under a flood
    /// from many addresses, most are in debt and a scan per refusal would cost too much).
    fn prune(&mut self, now: Instant, rate: f64, burst: f64) {
        let due = self
            .pruned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
        if self.by_client.len() > PRUNE_ABOVE && due {
            self.by_client
                .retain(|_, b| b.refilled(now, rate, burst) < burst);
            self.pruned_at = Some(now);
        }
    }
}

impl Bucket {
    /// The tokens at `now`, refilled at `rate` a second up to `burst`.
    fn refilled(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarpit(burst: u32, rate: u32) -> Tarpit {
        Tarpit::new(RefusalLimits { burst, rate }, None)
    }

    fn client(name: &str) -> ClientKey {
        ClientKey::Identified(name.into())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Rounded to the millisecond (float arithmetic).
    fn charge_ms(t: &Tarpit, who: &str, now: Instant) -> Option<u128> {
        t.charge(&client(who), now)
            .map(|d| (d.as_micros() + 500) / 1000)
    }

    #[test]
    fn the_burst_is_free_then_refusals_wait_one_interval_each() {
        let t = tarpit(3, 10);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(charge_ms(&t, "a", now), None);
        }
        // 10 a second: the 4th waits 100 ms, the 5th 200 ms (it queues behind the 4th).
        assert_eq!(charge_ms(&t, "a", now), Some(100));
        assert_eq!(charge_ms(&t, "a", now), Some(200));
    }

    #[test]
    fn the_bucket_refills_at_the_rate_up_to_the_burst() {
        let t = tarpit(2, 10);
        let start = Instant::now();
        assert_eq!(charge_ms(&t, "a", start), None);
        assert_eq!(charge_ms(&t, "a", start), None);
        assert_eq!(charge_ms(&t, "a", start), Some(100));
        // 300 ms later: the debt of one is repaid and two tokens came back.
        let later = start + ms(300);
        assert_eq!(charge_ms(&t, "a", later), None);
        assert_eq!(charge_ms(&t, "a", later), None);
        assert_eq!(charge_ms(&t, "a", later), Some(100));
        // A long pause refills to the burst, no further.
        let much_later = later + Duration::from_secs(60);
        assert_eq!(charge_ms(&t, "a", much_later), None);
        assert_eq!(charge_ms(&t, "a", much_later), None);
        assert_eq!(charge_ms(&t, "a", much_later), Some(100));
    }

    #[test]
    fn delays_and_debt_are_capped() {
        let t = tarpit(0, 10);
        let now = Instant::now();
        let delays: Vec<_> = (0..100).filter_map(|_| charge_ms(&t, "a", now)).collect();
        assert_eq!(delays.len(), 100);
        assert_eq!(delays[0], 100);
        assert_eq!(delays[19], 2000);
        assert!(delays.iter().all(|&d| d <= 2000));
        assert_eq!(delays[99], 2000);
        // The debt stopped at MAX_DELAY: once that has passed, the next refusal waits one
        // interval, not the 80 that were refused at the cap.
        let after = now + MAX_DELAY;
        assert_eq!(charge_ms(&t, "a", after), Some(100));
    }

    #[test]
    fn clients_have_their_own_buckets() {
        let t = tarpit(1, 10);
        let now = Instant::now();
        assert_eq!(charge_ms(&t, "flooder", now), None);
        assert_eq!(charge_ms(&t, "flooder", now), Some(100));
        assert_eq!(charge_ms(&t, "honest", now), None);
        let peer = ClientKey::Peer("10.0.0.1".parse().unwrap());
        assert_eq!(t.charge(&peer, now), None);
    }

    #[test]
    fn rate_zero_turns_the_tarpit_off() {
        let t = tarpit(0, 0);
        let now = Instant::now();
        assert!((0..1000).all(|_| t.charge(&client("a"), now).is_none()));
    }

    #[test]
    fn full_buckets_are_forgotten_beyond_the_prune_limit() {
        let t = tarpit(1, 1000);
        let now = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            t.charge(&client(&i.to_string()), now);
        }
        // One second later every bucket is full again; the next charge prunes them all.
        t.charge(&client("new"), now + Duration::from_secs(1));
        assert_eq!(t.buckets.lock().by_client.len(), 1);
    }

    #[test]
    fn only_refusals_decided_before_the_slashing_check_count() {
        assert!(counts(&SignError::UnknownKey("0xab".into())));
        assert!(counts(&SignError::OutOfScope("no".into())));
        assert!(counts(&SignError::TypeNotAllowed("no".into())));
        assert!(counts(&SignError::BadRequest("no".into())));
        assert!(counts(&SignError::Body(BodyError::TooLarge(1))));
        assert!(!counts(&SignError::Refused {
            reason: "slashable",
            message: "no".into()
        }));
        assert!(!counts(&SignError::StillLoading {
            pubkey: "0xab".into(),
            done: 1,
            total: 2
        }));
        assert!(!counts(&SignError::PoolClosed));
        assert!(!counts(&SignError::from(slashing_db::DbError::QueueFull {
            capacity: 1
        })));
    }

    #[tokio::test]
    async fn hold_charges_and_sleeps_for_counted_refusals_only() {
        let t = tarpit(0, 20);
        let who = client("a");
        t.hold(&who, &SignError::PoolClosed).await;
        assert!(
            t.buckets.lock().by_client.is_empty(),
            "not a cheap refusal: not charged"
        );
        let start = Instant::now();
        t.hold(&who, &SignError::UnknownKey("0xab".into())).await;
        // A lower bound only: the answer was held at least one interval (1/20 s).
        assert!(start.elapsed() >= ms(50));
    }
}
