//! Several keyguard processes sharing one PostgreSQL slashing database, as an operator
//! runs them behind a load balancer, and the client side of talking to them.

use std::path::Path;
use std::time::Duration;

use crate::keyguard_process::KeyguardProcess;

/// The devnet the request bodies of [`crate::requests`] are made for.
const NETWORK: &str = "config/networks/devnet-minimal.yaml";

/// Starts `keyguard run` with `keys` interop keys, its own data directory `data_dir` (audit
/// log, keymanager state) and the slashing database `database_url`, and waits until
/// `/healthcheck` is 200. Blocking: call it from a test thread or `block_in_place`.
pub fn start(
    database_url: &str,
    keys: usize,
    data_dir: &Path,
    log_dir: &Path,
) -> anyhow::Result<KeyguardProcess> {
    let keys = keys.to_string();
    let data_dir = data_dir.display().to_string();
    KeyguardProcess::start_healthy(
        &[
            "--network",
            NETWORK,
            "--interop-keys",
            &keys,
            "--data-dir",
            &data_dir,
            "--slashing-database",
            database_url,
        ],
        log_dir,
    )
}

/// What a client got for one sign request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the whole body read: the signature (`0x` hex).
    Signed(String),
    /// Any other HTTP status (412 refused as slashable, 5xx, …).
    Status(u16),
    /// No complete answer: connection refused or reset, timeout, truncated body.
    NoAnswer,
}

/// An HTTP client for sign requests: JSON answers, a timeout so a stalled instance cannot
/// hang a test.
pub fn client() -> reqwest::Client {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

/// POSTs one sign request for `pubkey` to the signer at `url`.
pub async fn sign(client: &reqwest::Client, url: &str, pubkey: &str, body: String) -> Answer {
    let Ok(resp) = client
        .post(format!("{url}/api/v1/eth2/sign/{pubkey}"))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
    else {
        return Answer::NoAnswer;
    };
    let status = resp.status().as_u16();
    let Ok(text) = resp.text().await else {
        return Answer::NoAnswer;
    };
    if status != 200 {
        return Answer::Status(status);
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => match v["signature"].as_str() {
            Some(sig) => Answer::Signed(sig.to_owned()),
            None => Answer::NoAnswer,
        },
        Err(_) => Answer::NoAnswer,
    }
}
