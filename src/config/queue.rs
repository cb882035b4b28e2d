//! `[queue]`: the signing queue in front of the signing pipeline, and its flags.

use serde::Deserialize;

use super::error::ConfigError;
use super::overrides::set;

/// `[queue]`: how many sign requests run and wait, and how many per client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Most sign requests running the pipeline (key lookup, slashing check, signature) at
    /// once; more wait in the queue.
    pub concurrency: usize,
    /// Most background requests (RANDAO reveals, registrations, exits, ...) running at
    /// once: a duty request finds at most this many background signatures ahead of it.
    pub background_concurrency: usize,
    /// Most sign requests waiting, from all clients; beyond, 503 with `Retry-After`.
    pub depth: usize,
    /// Most sign requests waiting from one client (identity, or address if anonymous).
    pub per_client: usize,
    /// Cheap refusals (unknown key 404, scope or type 403, malformed 400/413) one client
    /// gets at once before their answers are delayed.
    pub refusal_burst: u32,
    /// Cheap refusals one client gets per second after the burst; beyond, each answer waits
    /// for its turn (at most 2 s). 0 turns the delay off.
    pub refusal_rate: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            // Enough requests in flight to fill the slashing database's group commits on
            // many cores; the signing threads still take them in arrival order.
            concurrency: 1024,
            // A few signatures: a duty waits behind at most these on the signing threads,
            // and background work (registrations of thousands of keys) still flows.
            background_concurrency: 4,
            // A slot's burst of 20,000 validators behind one client waits here, none shed
            // (server.max_connections_per_peer lets them connect).
            depth: 40_000,
            per_client: 30_000,
            // An honest client is refused now and then: a key list gone stale by a few
            // hundred keys costs one refusal per removed key and duty, at worst 500 keys
            // asked every slot (6 s on minimal, 12 s on mainnet) = 83 a second, below the
            // rate, and a registration burst for all of them fits in the burst. A flooder
            // asks thousands a second and is slowed to its concurrency / 2 s.
            refusal_burst: 1000,
            refusal_rate: 100,
        }
    }
}

impl QueueConfig {
    /// Every bound must let something through.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("queue.concurrency", self.concurrency),
            ("queue.background_concurrency", self.background_concurrency),
            ("queue.depth", self.depth),
            ("queue.per_client", self.per_client),
        ];
        match positive.iter().find(|(_, value)| *value == 0) {
            Some((setting, _)) => Err(ConfigError::new(*setting, "must be at least 1")),
            None if self.background_concurrency > self.concurrency => Err(ConfigError::new(
                "queue.background_concurrency",
                format!("must be at most queue.concurrency ({})", self.concurrency),
            )),
            None => Ok(()),
        }
    }
}

/// Flags of `[queue]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct QueueArgs {
    /// Most sign requests running at once [queue.concurrency].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_QUEUE_CONCURRENCY",
        value_name = "N"
    )]
    pub queue_concurrency: Option<usize>,
    /// Most background sign requests (RANDAO, registrations, exits, ...) running at once
    /// [queue.background_concurrency].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_QUEUE_BACKGROUND_CONCURRENCY",
        value_name = "N"
    )]
    pub queue_background_concurrency: Option<usize>,
    /// Most sign requests waiting, in all [queue.depth].
    #[arg(global = true, long, env = "KEYGUARD_QUEUE_DEPTH", value_name = "N")]
    pub queue_depth: Option<usize>,
    /// Most sign requests waiting from one client [queue.per_client].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_QUEUE_PER_CLIENT",
        value_name = "N"
    )]
    pub queue_per_client: Option<usize>,
    /// Cheap refusals (404 unknown key, 403, 400) one client gets at once before their
    /// answers are delayed [queue.refusal_burst].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_QUEUE_REFUSAL_BURST",
        value_name = "N"
    )]
    pub queue_refusal_burst: Option<u32>,
    /// Cheap refusals one client gets per second after the burst; 0: never delayed
    /// [queue.refusal_rate].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_QUEUE_REFUSAL_RATE",
        value_name = "N"
    )]
    pub queue_refusal_rate: Option<u32>,
}

impl QueueArgs {
    /// Applies the flags that were given to `c`.
    pub fn apply(&self, c: &mut QueueConfig) {
        set(&mut c.concurrency, &self.queue_concurrency);
        set(
            &mut c.background_concurrency,
            &self.queue_background_concurrency,
        );
        set(&mut c.depth, &self.queue_depth);
        set(&mut c.per_client, &self.queue_per_client);
        set(&mut c.refusal_burst, &self.queue_refusal_burst);
        set(&mut c.refusal_rate, &self.queue_refusal_rate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_a_slot_burst_and_are_valid() {
        let c = QueueConfig::default();
        assert!(c.validate().is_ok());
        assert!(c.concurrency + c.per_client >= 20_000);
        assert!(c.concurrency + c.depth >= 20_000);
        // 500 stale keys asked every 6 s slot are never slowed.
        assert!(500 / 6 < c.refusal_rate && c.refusal_burst >= 500);
    }

    #[test]
    fn zero_or_inconsistent_bounds_are_named() {
        let zero = QueueConfig {
            depth: 0,
            ..Default::default()
        };
        assert_eq!(zero.validate().unwrap_err().setting, "queue.depth");
        let inverted = QueueConfig {
            concurrency: 2,
            background_concurrency: 3,
            ..Default::default()
        };
        assert_eq!(
            inverted.validate().unwrap_err().setting,
            "queue.background_concurrency"
        );
    }
}
