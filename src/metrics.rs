//! Prometheus metrics: one [`Metrics`] value owns its own registry and every metric handle.
//!
//! The HTTP layer, the signing pool, the slashing-protection database, the key loader and the
//! HSM backend each call a few small recording methods; the metrics listener serves
//! [`Metrics::encode`]. Recording never allocates once a label combination has been seen
//! (and the common ones are created up front), and never blocks on anything but a
//! read lock of the label map.
//!
//! # Metric families
//!
//! | family | type | labels | fed by |
//! | --- | --- | --- | --- |
//! | `keyguard_sign_requests_total` | counter | `type`, `outcome`, `reason` | [`Metrics::observe_request`] |
//! | `keyguard_sign_request_duration_seconds` | histogram | `type`, `outcome` | [`Metrics::observe_request`] |
//! | `keyguard_bls_sign_duration_seconds` | histogram | | [`Metrics::observe_bls_sign`] |
//! | `keyguard_bls_signatures_total` | counter | `path` ([`SignPath`]) | [`Metrics::observe_bls_sign`] |
//! | `keyguard_slashing_check_duration_seconds` | histogram | | [`Metrics::slashing_check_latency`] |
//! | `keyguard_slashing_commit_batch_size` | histogram | | [`Metrics::slashing_commit`] |
//! | `keyguard_slashing_commit_duration_seconds` | histogram | | [`Metrics::slashing_commit`] |
//! | `keyguard_slashing_refusals_total` | counter | `reason` (each of `slashing_db::Refusal::REASONS` at 0 from start-up) | [`Metrics::slashing_refusal`] |
//! | `keyguard_slashing_db_up` | gauge | | [`Metrics::set_slashing_db_up`] (at each scrape) |
//! | `keyguard_keys_loaded` | gauge | `source`, `state` | [`Metrics::set_keys`], [`Metrics::add_keys`] |
//! | `keyguard_key_loading_progress_ratio` | gauge | | [`Metrics::set_key_loading_progress`] |
//! | `keyguard_key_loading_duration_seconds` | gauge | | [`Metrics::set_key_loading_duration`] (at each scrape, from the loader's progress) |
//! | `keyguard_build_info` | gauge (always 1) | `version` | [`Metrics::new`] |
//! | `process_*` (CPU seconds, RSS, open fds, ...) | various | | the `prometheus` crate's process collector (Linux) |
//!
//! Subsystems register further families on [`Metrics::registry`] and feed them themselves:
//! the HSM (`hsm/metrics.rs`: `keyguard_hsm_operations_total`, `keyguard_hsm_errors_total`,
//! `keyguard_hsm_up`), the audit log (`audit/metrics.rs`), the keymanager API
//! (`keymanager/metrics.rs`), the TLS listener (`tls/listener.rs`) and the slashing
//! database's writer cost and pruning (`slashing_metrics.rs`).
//!
//! # Web3Signer compatibility names
//!
//! With `web3signer_compat` set, the same recording methods also feed the names Web3Signer
//! exports, so that an operator migrating from Web3Signer keeps their alerts and dashboards:
//!
//! | Web3Signer name | type | fed by |
//! | --- | --- | --- |
//! | `signing_bls_signing_duration` | histogram (seconds) | every [`Metrics::observe_request`] |
//! | `eth2_slashingprotection_permitted_signings_total` | counter | [`Outcome::Signed`] |
//! | `eth2_slashingprotection_prevented_signings_total` | counter | [`Outcome::SlashingRefused`] |
//! | `signing_signers_loaded_count` | gauge | sum of `keyguard_keys_loaded{state="loaded"}` |
//! | `http_bls_malformed_request_count_total` | counter | [`Outcome::BadRequest`] |
//! | `signing_bls_missing_identifier_count_total` | counter | [`Outcome::UnknownKey`] |
//!
//! Names, units and (absent) labels match Web3Signer's. Deviations, all forced by what the
//! data or the `prometheus` crate allows:
//! - Web3Signer's `signing_bls_signing_duration` is a *summary* (series with a `quantile`
//!   label, plus `_sum` and `_count`); the `prometheus` crate has no summary type, so here it is
//!   a histogram with the request-latency buckets. `_sum` and `_count` mean the same thing
//!   (seconds spent in, and number of, sign requests of every outcome, as Web3Signer's timer
//!   wraps its whole sign handler); queries on `{quantile="..."}` must become
//!   `histogram_quantile(...)` over `_bucket`.
//! - Web3Signer counts permitted/prevented signings only when its slashing protection is
//!   enabled; keyguard's is always on, so these are always counted. As in Web3Signer, a
//!   request type with nothing to check (e.g. `RANDAO_REVEAL`) counts as permitted once signed.
//! - Web3Signer's signing-duration summary, missing-identifier and malformed-request counters
//!   exist per key type (`bls`, `secp256k1`); keyguard signs BLS only, so only the `bls` names.

use std::fmt;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::consensus::RequestType;
use crate::keys::KeySource;
use crate::outcome::{Outcome, UNKNOWN_REQUEST_TYPE};

/// The `Content-Type` of [`Metrics::encode`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// How the signing pool computed a signature: the `path` label of
/// `keyguard_bls_signatures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignPath {
    /// The root was new: hash-to-G2, then the multiplication (a full signature).
    NewRoot = 0,
    /// The root's hash-to-G2 point was cached: the multiplication only.
    CachedRoot = 1,
    /// The root had a fixed-base table: table additions only.
    FixedBase = 2,
}

impl SignPath {
    /// Every path, in discriminant order.
    pub const ALL: [SignPath; 3] = [SignPath::NewRoot, SignPath::CachedRoot, SignPath::FixedBase];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SignPath::NewRoot => "new_root",
            SignPath::CachedRoot => "cached_root",
            SignPath::FixedBase => "fixed_base",
        }
    }
}

/// Buckets (seconds) of the request, slashing-check and slashing-commit latency histograms:
/// 100 µs to 5 s.
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Buckets (seconds) of the BLS signing histogram: a BLS12-381 signature takes a few hundred
/// microseconds, so these are finer at the low end (50 µs to 100 ms).
pub const BLS_SIGN_BUCKETS: [f64; 12] = [
    0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1,
];

/// Buckets of the slashing-commit batch-size histogram: powers of two from 1 to 4096.
pub const BATCH_SIZE_BUCKETS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Whether keys counted by `keyguard_keys_loaded` were loaded or failed to load; becomes the
/// `state` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Loaded and available for signing.
    Loaded,
    /// Found but could not be loaded (bad password, corrupt file, HSM refused, ...).
    Failed,
}

impl KeyState {
    /// The `state` label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyState::Loaded => "loaded",
            KeyState::Failed => "failed",
        }
    }
}

/// Web3Signer's metric names, present only when built with `web3signer_compat`.
#[derive(Clone)]
struct Web3SignerCompat {
    signing_duration: Histogram,
    permitted: IntCounter,
    prevented: IntCounter,
    signers_loaded: IntGauge,
    malformed: IntCounter,
    missing_identifier: IntCounter,
}

/// Every metric of keyguard, registered in a registry of its own (not the global default).
///
/// Share one value (e.g. in an `Arc`) between the HTTP layer, the slashing database and the
/// key loader; every recording method takes `&self`.
pub struct Metrics {
    registry: Registry,
    sign_requests: IntCounterVec,
    sign_request_duration: HistogramVec,
    bls_sign_duration: Histogram,
    /// One handle per [`SignPath`], in [`SignPath::ALL`] order (no label lookup per sign).
    bls_signatures: Vec<IntCounter>,
    slashing_check_duration: Histogram,
    slashing_commit_batch_size: Histogram,
    slashing_commit_duration: Histogram,
    slashing_refusals: IntCounterVec,
    keys_loaded: IntGaugeVec,
    key_loading_progress: prometheus::Gauge,
    key_loading_duration: prometheus::Gauge,
    slashing_db_up: IntGauge,
    compat: Option<Web3SignerCompat>,
    /// Serialises key-count updates so `signing_signers_loaded_count` stays their exact sum.
    keys_lock: Mutex<()>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("web3signer_compat", &self.compat.is_some())
            .finish_non_exhaustive()
    }
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> Result<Histogram, prometheus::Error> {
    register(
        registry,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?,
    )
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    register(registry, IntCounter::with_opts(Opts::new(name, help))?)
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
) -> Result<prometheus::Gauge, prometheus::Error> {
    register(
        registry,
        prometheus::Gauge::with_opts(Opts::new(name, help))?,
    )
}

fn int_gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, prometheus::Error> {
    register(registry, IntGaugeVec::new(Opts::new(name, help), labels)?)
}

impl Metrics {
    /// Creates every metric in a new registry. With `web3signer_compat`, Web3Signer's metric
    /// names are registered too (see the module documentation).
    ///
    /// Fails only if a metric definition is invalid or a name is registered twice, which
    /// would be a bug in this module.
    pub fn new(web3signer_compat: bool) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;

        let sign_requests = counter_vec(
            r,
            "keyguard_sign_requests_total",
            "Sign requests answered, by request type, outcome and slashing-refusal reason.",
            &["type", "outcome", "reason"],
        )?;
        let sign_request_duration = register(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "keyguard_sign_request_duration_seconds",
                    "Time from receiving a sign request to answering it, by type and outcome.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["type", "outcome"],
            )?,
        )?;
        let bls_sign_duration = histogram(
            r,
            "keyguard_bls_sign_duration_seconds",
            "Time to compute one BLS signature in the signing pool.",
            &BLS_SIGN_BUCKETS,
        )?;
        let bls_signatures_vec = counter_vec(
            r,
            "keyguard_bls_signatures_total",
            "BLS signatures computed, by how the signing root's hash-to-G2 point was \
             obtained: new_root (hashed for this signature), cached_root (hashed before), \
             fixed_base (a precomputed table of the cached point, for roots many keys sign).",
            &["path"],
        )?;
        let bls_signatures = SignPath::ALL
            .iter()
            .map(|p| bls_signatures_vec.with_label_values(&[p.as_str()]))
            .collect();
        let slashing_check_duration = histogram(
            r,
            "keyguard_slashing_check_duration_seconds",
            "Time to check one request against the slashing-protection database.",
            &LATENCY_BUCKETS,
        )?;
        let slashing_commit_batch_size = histogram(
            r,
            "keyguard_slashing_commit_batch_size",
            "Signing records made durable by one slashing-protection database commit.",
            &BATCH_SIZE_BUCKETS,
        )?;
        let slashing_commit_duration = histogram(
            r,
            "keyguard_slashing_commit_duration_seconds",
            "Time of one durable slashing-protection database commit.",
            &LATENCY_BUCKETS,
        )?;
        let slashing_refusals = counter_vec(
            r,
            "keyguard_slashing_refusals_total",
            "Signings refused by slashing protection, by reason.",
            &["reason"],
        )?;
        let keys_loaded = int_gauge_vec(
            r,
            "keyguard_keys_loaded",
            "Validator keys by source and state (loaded or failed to load).",
            &["source", "state"],
        )?;
        let key_loading_progress = gauge(
            r,
            "keyguard_key_loading_progress_ratio",
            "Fraction of the keys found at startup or reload that have been processed (0 to 1).",
        )?;
        let key_loading_duration = gauge(
            r,
            "keyguard_key_loading_duration_seconds",
            "Wall-clock time the last (or current) key loading has taken.",
        )?;
        // Every refusal series exists at 0, so `increase()` sees the first refusal after
        // a restart (a series born at 1 has no earlier sample to increase from).
        for reason in slashing_db::Refusal::REASONS {
            slashing_refusals.get_metric_with_label_values(&[reason])?;
        }
        let slashing_db_up = register(
            r,
            IntGauge::with_opts(Opts::new(
                "keyguard_slashing_db_up",
                "1 while the slashing-protection database commits (or protection is off), \
                 0 while it fails and blocks and attestations are refused.",
            ))?,
        )?;
        slashing_db_up.set(1);
        let build_info = int_gauge_vec(
            r,
            "keyguard_build_info",
            "Always 1; the version label names the running keyguard build.",
            &["version"],
        )?;
        build_info
            .get_metric_with_label_values(&[env!("CARGO_PKG_VERSION")])?
            .set(1);

        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        let compat = if web3signer_compat {
            Some(Web3SignerCompat {
                signing_duration: histogram(
                    r,
                    "signing_bls_signing_duration",
                    "Duration of a signing event (Web3Signer name; seconds).",
                    &LATENCY_BUCKETS,
                )?,
                permitted: counter(
                    r,
                    "eth2_slashingprotection_permitted_signings_total",
                    "The number of slashing checks which have reported 'safe to sign' \
                     (Web3Signer name).",
                )?,
                prevented: counter(
                    r,
                    "eth2_slashingprotection_prevented_signings_total",
                    "The number of prevented signings due to violation of slashing conditions \
                     (Web3Signer name).",
                )?,
                signers_loaded: register(
                    r,
                    IntGauge::with_opts(Opts::new(
                        "signing_signers_loaded_count",
                        "Number of keys loaded (Web3Signer name).",
                    ))?,
                )?,
                malformed: counter(
                    r,
                    "http_bls_malformed_request_count_total",
                    "Number of requests received which had illegally formatted body \
                     (Web3Signer name).",
                )?,
                missing_identifier: counter(
                    r,
                    "signing_bls_missing_identifier_count_total",
                    "Number of signing operations requested, for keys which are not available \
                     (Web3Signer name).",
                )?,
            })
        } else {
            None
        };

        // Create the common request series up front: they are exported as 0 from the start
        // (so rate() and increase() see their first increment) and never allocate later.
        for request_type in RequestType::ALL.iter().map(RequestType::as_str) {
            // The latency panels read the signed requests' histogram.
            sign_request_duration
                .get_metric_with_label_values(&[request_type, Outcome::Signed.as_str()])?;
            for outcome in Outcome::WITHOUT_REASON {
                sign_requests.get_metric_with_label_values(&[
                    request_type,
                    outcome.as_str(),
                    outcome.reason(),
                ])?;
            }
        }
        sign_requests.get_metric_with_label_values(&[
            UNKNOWN_REQUEST_TYPE,
            Outcome::BadRequest.as_str(),
            "",
        ])?;

        Ok(Metrics {
            registry,
            sign_requests,
            sign_request_duration,
            bls_sign_duration,
            bls_signatures,
            slashing_check_duration,
            slashing_commit_batch_size,
            slashing_commit_duration,
            slashing_refusals,
            keys_loaded,
            key_loading_progress,
            key_loading_duration,
            slashing_db_up,
            compat,
            keys_lock: Mutex::new(()),
        })
    }

    /// The registry holding every metric, e.g. to register more collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether Web3Signer's metric names are exported too.
    pub fn web3signer_compat(&self) -> bool {
        self.compat.is_some()
    }

    /// Every metric in the Prometheus text format ([`CONTENT_TYPE`]).
    ///
    /// Should encoding ever fail, the output is a single comment line saying why (still valid
    /// text format), so a scrape never breaks the listener; see [`Metrics::try_encode`].
    pub fn encode(&self) -> String {
        self.try_encode()
            .unwrap_or_else(|e| format!("# keyguard: encoding metrics failed: {e}\n"))
    }

    /// Every metric in the Prometheus text format, or why it could not be encoded.
    pub fn try_encode(&self) -> Result<String, prometheus::Error> {
        let families = self.registry.gather();
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&families, &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    /// Records one answered sign request: `keyguard_sign_requests_total{type,outcome,reason}`
    /// +1 and `keyguard_sign_request_duration_seconds{type,outcome}` observes `elapsed`
    /// (receipt to answer). With Web3Signer names: `signing_bls_signing_duration` observes
    /// `elapsed`, and the permitted/prevented/malformed/missing-identifier counter matching
    /// `outcome` moves by 1.
    ///
    /// `request_type` is the wire name ([`RequestType::as_str`]), or [`UNKNOWN_REQUEST_TYPE`]
    /// when the body could not be parsed far enough to tell.
    pub fn observe_request(&self, request_type: &'static str, outcome: Outcome, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let outcome_label = outcome.as_str();
        // Label cardinality is fixed by this module, so these lookups cannot fail.
        if let Ok(c) = self.sign_requests.get_metric_with_label_values(&[
            request_type,
            outcome_label,
            outcome.reason(),
        ]) {
            c.inc();
        }
        if let Ok(h) = self
            .sign_request_duration
            .get_metric_with_label_values(&[request_type, outcome_label])
        {
            h.observe(secs);
        }
        if let Some(compat) = &self.compat {
            compat.signing_duration.observe(secs);
            match outcome {
                Outcome::Signed => compat.permitted.inc(),
                Outcome::SlashingRefused(_) => compat.prevented.inc(),
                Outcome::BadRequest => compat.malformed.inc(),
                Outcome::UnknownKey => compat.missing_identifier.inc(),
                Outcome::Forbidden | Outcome::Error => {}
            }
        }
    }

    /// Records one BLS signature: its time in `keyguard_bls_sign_duration_seconds`, and
    /// `keyguard_bls_signatures_total{path}` +1.
    pub fn observe_bls_sign(&self, path: SignPath, elapsed: Duration) {
        self.bls_sign_duration.observe(elapsed.as_secs_f64());
        if let Some(counter) = self.bls_signatures.get(path as usize) {
            counter.inc();
        }
    }

    /// Slashing database hook (`DbObserver::check_latency`): one check of a request against
    /// the database took `d`; `keyguard_slashing_check_duration_seconds`.
    pub fn slashing_check_latency(&self, d: Duration) {
        self.slashing_check_duration.observe(d.as_secs_f64());
    }

    /// Slashing database hook (`DbObserver::commit`): one durable commit wrote `batch_size`
    /// records in `commit_time`; `keyguard_slashing_commit_batch_size` and
    /// `keyguard_slashing_commit_duration_seconds`.
    pub fn slashing_commit(&self, batch_size: usize, commit_time: Duration) {
        // Exact for every batch size below 2^53.
        self.slashing_commit_batch_size.observe(batch_size as f64);
        self.slashing_commit_duration
            .observe(commit_time.as_secs_f64());
    }

    /// Slashing database hook (`DbObserver::refusal`): the database refused a signing for
    /// `reason`; `keyguard_slashing_refusals_total{reason}` +1.
    pub fn slashing_refusal(&self, reason: &'static str) {
        if let Ok(c) = self
            .slashing_refusals
            .get_metric_with_label_values(&[reason])
        {
            c.inc();
        }
    }

    /// Sets `keyguard_keys_loaded{source,state}` to `count` (e.g. after a full load or reload).
    /// With Web3Signer names, `signing_signers_loaded_count` follows the sum over `loaded`.
    pub fn set_keys(&self, source: KeySource, state: KeyState, count: u64) {
        let _guard = self.keys_lock.lock();
        if let Ok(g) = self
            .keys_loaded
            .get_metric_with_label_values(&[source.as_str(), state.as_str()])
        {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            let old = g.get();
            g.set(count);
            self.signers_loaded_add(state, count.saturating_sub(old));
        }
    }

    /// Adds `delta` (negative to remove) to `keyguard_keys_loaded{source,state}`, e.g. +1 per
    /// key loaded or imported, -1 per key deleted through the keymanager API.
    pub fn add_keys(&self, source: KeySource, state: KeyState, delta: i64) {
        let _guard = self.keys_lock.lock();
        if let Ok(g) = self
            .keys_loaded
            .get_metric_with_label_values(&[source.as_str(), state.as_str()])
        {
            g.add(delta);
            self.signers_loaded_add(state, delta);
        }
    }

    /// Keeps `signing_signers_loaded_count` equal to the sum of
    /// `keyguard_keys_loaded{state="loaded"}`; called with `keys_lock` held.
    fn signers_loaded_add(&self, state: KeyState, delta: i64) {
        if let (Some(compat), KeyState::Loaded) = (&self.compat, state) {
            compat.signers_loaded.add(delta);
        }
    }

    /// Sets `keyguard_key_loading_progress_ratio` to `processed / total` (loaded or failed over
    /// found); 1 when `total` is 0 (nothing to load is a finished load).
    pub fn set_key_loading_progress(&self, processed: usize, total: usize) {
        let ratio = if total == 0 {
            1.0
        } else {
            (processed as f64 / total as f64).clamp(0.0, 1.0)
        };
        self.key_loading_progress.set(ratio);
    }

    /// Sets `keyguard_key_loading_duration_seconds`: how long the last (or, updated as it
    /// goes, the current) key loading has taken.
    pub fn set_key_loading_duration(&self, elapsed: Duration) {
        self.key_loading_duration.set(elapsed.as_secs_f64());
    }

    /// Sets `keyguard_slashing_db_up`: whether the slashing-protection database's last
    /// transaction committed.
    pub fn set_slashing_db_up(&self, up: bool) {
        self.slashing_db_up.set(i64::from(up));
    }
}

/// The slashing database reports check latency, commit batches and refusals here.
impl slashing_db::DbObserver for Metrics {
    fn check_latency(&self, d: Duration) {
        self.slashing_check_latency(d);
    }

    fn commit(&self, batch_size: usize, commit_time: Duration) {
        self.slashing_commit(batch_size, commit_time);
    }

    fn refusal(&self, reason: &'static str) {
        self.slashing_refusal(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// One sample line: name and sorted `k="v"` labels, e.g. `a_total{x="1",y="2"}`.
    fn parse(text: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
            let value: f64 = value.parse().expect("numeric value");
            let key = match series.split_once('{') {
                None => series.to_string(),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let mut labels: Vec<&str> = body.split(',').filter(|s| !s.is_empty()).collect();
                    labels.sort_unstable();
                    format!("{name}{{{}}}", labels.join(","))
                }
            };
            assert!(out.insert(key, value).is_none(), "duplicate series: {line}");
        }
        out
    }

    fn families(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .map(str::to_string)
            .collect()
    }

    /// Series whose value differs between `before` and `after`, with the difference.
    fn diff(
        before: &BTreeMap<String, f64>,
        after: &BTreeMap<String, f64>,
    ) -> BTreeMap<String, f64> {
        let mut d = BTreeMap::new();
        for (k, v) in after {
            // process_* metrics move on their own.
            if k.starts_with("process_") {
                continue;
            }
            let old = before.get(k).copied().unwrap_or(0.0);
            if (v - old).abs() > 0.0 {
                d.insert(k.clone(), v - old);
            }
        }
        for k in before.keys() {
            assert!(after.contains_key(k), "series disappeared: {k}");
        }
        d
    }

    fn recorded<F: FnOnce(&Metrics)>(compat: bool, f: F) -> BTreeMap<String, f64> {
        let m = Metrics::new(compat).expect("metrics");
        let before = parse(&m.encode());
        f(&m);
        diff(&before, &parse(&m.encode()))
    }

    fn expect(d: &BTreeMap<String, f64>, want: &[(&str, f64)]) {
        let want: BTreeMap<String, f64> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let close = d.len() == want.len()
            && d.iter().zip(want.iter()).all(|((ka, va), (kb, vb))| {
                ka == kb && (va - vb).abs() <= 1e-9 * vb.abs().max(1.0)
            });
        assert!(close, "moved:\n{d:#?}\nexpected:\n{want:#?}");
    }

    #[test]
    fn signed_request_moves_counter_and_histogram_only() {
        let d = recorded(false, |m| {
            m.observe_request("ATTESTATION", Outcome::Signed, Duration::from_micros(700))
        });
        let h = "keyguard_sign_request_duration_seconds";
        let l = r#"outcome="signed",type="ATTESTATION""#;
        let mut want = vec![(
            r#"keyguard_sign_requests_total{outcome="signed",reason="",type="ATTESTATION"}"#
                .to_string(),
            1.0,
        )];
        for le in [
            "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
        ]
        .into_iter()
        .chain(["1", "2.5", "5", "+Inf"])
        {
            want.push((format!(r#"{h}_bucket{{le="{le}",{l}}}"#), 1.0));
        }
        want.push((format!("{h}_count{{{l}}}"), 1.0));
        want.push((format!("{h}_sum{{{l}}}"), 0.0007));
        let want: Vec<(&str, f64)> = want.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        expect(&d, &want);
    }

    #[test]
    fn refusal_carries_reason_and_feeds_compat_prevented() {
        let d = recorded(true, |m| {
            m.observe_request(
                "BLOCK_V2",
                Outcome::SlashingRefused("double_proposal"),
                Duration::from_secs(3),
            )
        });
        assert_eq!(
            d.get(
                r#"keyguard_sign_requests_total{outcome="slashing_refused",reason="double_proposal",type="BLOCK_V2"}"#
            ),
            Some(&1.0)
        );
        assert_eq!(
            d.get(r#"keyguard_sign_request_duration_seconds_bucket{le="5",outcome="slashing_refused",type="BLOCK_V2"}"#),
            Some(&1.0)
        );
        assert_eq!(
            d.get(r#"keyguard_sign_request_duration_seconds_bucket{le="2.5",outcome="slashing_refused",type="BLOCK_V2"}"#),
            None
        );
        assert_eq!(
            d.get("eth2_slashingprotection_prevented_signings_total"),
            Some(&1.0)
        );
        assert_eq!(
            d.get("eth2_slashingprotection_permitted_signings_total"),
            None
        );
        assert_eq!(d.get("signing_bls_signing_duration_count"), Some(&1.0));
        assert_eq!(d.get("signing_bls_signing_duration_sum"), Some(&3.0));
        assert_eq!(
            d.get(r#"signing_bls_signing_duration_bucket{le="5"}"#),
            Some(&1.0)
        );
        assert_eq!(
            d.get(r#"signing_bls_signing_duration_bucket{le="2.5"}"#),
            None
        );
    }

    #[test]
    fn each_outcome_feeds_its_compat_counter() {
        let cases = [
            (
                Outcome::Signed,
                "eth2_slashingprotection_permitted_signings_total",
            ),
            (
                Outcome::BadRequest,
                "http_bls_malformed_request_count_total",
            ),
            (
                Outcome::UnknownKey,
                "signing_bls_missing_identifier_count_total",
            ),
        ];
        for (outcome, name) in cases {
            let d = recorded(true, |m| {
                m.observe_request("RANDAO_REVEAL", outcome, Duration::from_millis(1))
            });
            let compat: Vec<_> = d
                .iter()
                .filter(|(k, _)| {
                    !k.starts_with("keyguard_") && !k.starts_with("signing_bls_signing_duration")
                })
                .collect();
            assert_eq!(compat, vec![(&name.to_string(), &1.0)], "{outcome:?}");
            let key = format!(
                r#"keyguard_sign_requests_total{{outcome="{}",reason="",type="RANDAO_REVEAL"}}"#,
                outcome.as_str()
            );
            assert_eq!(d.get(&key), Some(&1.0), "{outcome:?}");
        }
        // An internal error moves no Web3Signer counter, only the duration.
        let d = recorded(true, |m| {
            m.observe_request("DEPOSIT", Outcome::Error, Duration::from_millis(1))
        });
        assert!(d
            .keys()
            .all(|k| k.starts_with("keyguard_") || k.starts_with("signing_bls_signing_duration")));
        assert_eq!(
            d.get(r#"keyguard_sign_requests_total{outcome="error",reason="",type="DEPOSIT"}"#),
            Some(&1.0)
        );
    }

    #[test]
    fn bls_sign_moves_only_its_histogram_and_path_counter() {
        let d = recorded(true, |m| {
            m.observe_bls_sign(SignPath::FixedBase, Duration::from_micros(400))
        });
        let h = "keyguard_bls_sign_duration_seconds";
        let mut want: Vec<(String, f64)> = [
            "0.0005", "0.00075", "0.001", "0.002", "0.005", "0.01", "0.025", "0.1", "+Inf",
        ]
        .iter()
        .map(|le| (format!(r#"{h}_bucket{{le="{le}"}}"#), 1.0))
        .collect();
        want.push((format!("{h}_count"), 1.0));
        want.push((format!("{h}_sum"), 0.0004));
        want.push((
            r#"keyguard_bls_signatures_total{path="fixed_base"}"#.to_string(),
            1.0,
        ));
        let want: Vec<(&str, f64)> = want.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        expect(&d, &want);
    }

    #[test]
    fn slashing_hooks() {
        let d = recorded(false, |m| {
            m.slashing_check_latency(Duration::from_micros(200))
        });
        assert_eq!(
            d.get("keyguard_slashing_check_duration_seconds_count"),
            Some(&1.0)
        );
        assert_eq!(
            d.get(r#"keyguard_slashing_check_duration_seconds_bucket{le="0.0001"}"#),
            None
        );
        assert_eq!(
            d.get(r#"keyguard_slashing_check_duration_seconds_bucket{le="0.00025"}"#),
            Some(&1.0)
        );
        assert_eq!(d.len(), 14 + 1 + 2, "{d:#?}");

        let d = recorded(false, |m| m.slashing_commit(100, Duration::from_millis(3)));
        assert_eq!(
            d.get("keyguard_slashing_commit_batch_size_count"),
            Some(&1.0)
        );
        assert_eq!(
            d.get("keyguard_slashing_commit_batch_size_sum"),
            Some(&100.0)
        );
        assert_eq!(
            d.get(r#"keyguard_slashing_commit_batch_size_bucket{le="64"}"#),
            None
        );
        assert_eq!(
            d.get(r#"keyguard_slashing_commit_batch_size_bucket{le="128"}"#),
            Some(&1.0)
        );
        assert_eq!(
            d.get(r#"keyguard_slashing_commit_batch_size_bucket{le="4096"}"#),
            Some(&1.0)
        );
        assert_eq!(
            d.get("keyguard_slashing_commit_duration_seconds_count"),
            Some(&1.0)
        );
        assert_eq!(
            d.get(r#"keyguard_slashing_commit_duration_seconds_bucket{le="0.005"}"#),
            Some(&1.0)
        );
        assert_eq!(
            d.get(r#"keyguard_slashing_commit_duration_seconds_bucket{le="0.0025"}"#),
            None
        );
        // 6 batch buckets (128..4096) + +Inf + sum + count; 10 duration buckets + +Inf + sum + count.
        assert_eq!(d.len(), 9 + 13, "{d:#?}");

        let d = recorded(true, |m| {
            m.slashing_refusal("surround_vote");
            m.slashing_refusal("surround_vote");
        });
        expect(
            &d,
            &[(
                r#"keyguard_slashing_refusals_total{reason="surround_vote"}"#,
                2.0,
            )],
        );
    }

    #[test]
    fn keys_gauges_and_compat_sum() {
        let d = recorded(true, |m| {
            m.set_keys(KeySource::Keystore, KeyState::Loaded, 10);
            m.set_keys(KeySource::Keystore, KeyState::Failed, 2);
            m.add_keys(KeySource::Imported, KeyState::Loaded, 3);
            m.add_keys(KeySource::Imported, KeyState::Loaded, -1);
            m.set_key_loading_progress(6, 12);
            m.set_key_loading_duration(Duration::from_millis(1500));
        });
        expect(
            &d,
            &[
                (
                    r#"keyguard_keys_loaded{source="keystore",state="loaded"}"#,
                    10.0,
                ),
                (
                    r#"keyguard_keys_loaded{source="keystore",state="failed"}"#,
                    2.0,
                ),
                (
                    r#"keyguard_keys_loaded{source="imported",state="loaded"}"#,
                    2.0,
                ),
                ("keyguard_key_loading_progress_ratio", 0.5),
                ("keyguard_key_loading_duration_seconds", 1.5),
                ("signing_signers_loaded_count", 12.0),
            ],
        );
        let m = Metrics::new(false).expect("metrics");
        m.set_key_loading_progress(0, 0);
        assert_eq!(
            parse(&m.encode()).get("keyguard_key_loading_progress_ratio"),
            Some(&1.0)
        );
    }

    #[test]
    fn refusal_series_exist_at_zero_and_db_up_follows_health() {
        let m = Metrics::new(false).expect("metrics");
        let s = parse(&m.encode());
        for reason in slashing_db::Refusal::REASONS {
            let key = format!(r#"keyguard_slashing_refusals_total{{reason="{reason}"}}"#);
            assert_eq!(s.get(&key), Some(&0.0), "{key}");
        }
        assert_eq!(s.get("keyguard_slashing_db_up"), Some(&1.0));
        let d = recorded(false, |m| m.set_slashing_db_up(false));
        expect(&d, &[("keyguard_slashing_db_up", -1.0)]);
    }

    #[test]
    fn build_info_process_metrics_and_precreated_series() {
        let m = Metrics::new(false).expect("metrics");
        let s = parse(&m.encode());
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            s.get(&format!(r#"keyguard_build_info{{version="{version}"}}"#)),
            Some(&1.0)
        );
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(s.contains_key(name), "{name} missing");
        }
        for t in RequestType::ALL {
            let key = format!(
                r#"keyguard_sign_requests_total{{outcome="error",reason="",type="{}"}}"#,
                t.as_str()
            );
            assert_eq!(s.get(&key), Some(&0.0));
            let key = format!(
                r#"keyguard_sign_request_duration_seconds_count{{outcome="signed",type="{}"}}"#,
                t.as_str()
            );
            assert_eq!(s.get(&key), Some(&0.0));
        }
        // Two instances have independent registries.
        let other = Metrics::new(false).expect("second metrics");
        other.slashing_refusal("x");
        assert!(!m
            .encode()
            .contains(r#"keyguard_slashing_refusals_total{reason="x"}"#));
    }

    #[test]
    fn compat_names_only_with_flag() {
        let compat_names = [
            "signing_bls_signing_duration",
            "eth2_slashingprotection_permitted_signings_total",
            "eth2_slashingprotection_prevented_signings_total",
            "signing_signers_loaded_count",
            "http_bls_malformed_request_count_total",
            "signing_bls_missing_identifier_count_total",
        ];
        let with = Metrics::new(true).expect("metrics");
        let without = Metrics::new(false).expect("metrics");
        assert!(with.web3signer_compat() && !without.web3signer_compat());
        let with = families(&with.encode());
        let without = families(&without.encode());
        for name in compat_names {
            assert!(with.iter().any(|f| f == name), "{name} missing with compat");
            assert!(
                !without.iter().any(|f| f == name),
                "{name} present without compat"
            );
        }
        assert!(without
            .iter()
            .all(|f| f.starts_with("keyguard_") || f.starts_with("process_")));
        let with_text = Metrics::new(true).expect("metrics").encode();
        assert!(with_text.contains("# TYPE signing_bls_signing_duration histogram"));
        assert!(with_text.contains("# TYPE signing_signers_loaded_count gauge"));
    }

    #[test]
    fn outcome_labels() {
        assert_eq!(Outcome::SlashingRefused("r").as_str(), "slashing_refused");
        assert_eq!(Outcome::SlashingRefused("r").reason(), "r");
        assert_eq!(Outcome::Signed.reason(), "");
        assert_eq!(KeyState::Failed.as_str(), "failed");
    }
}
