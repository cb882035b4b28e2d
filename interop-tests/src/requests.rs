//! Sign-request bodies shaped as validator clients send them, for end-to-end tests on the
//! minimal-preset devnet of `config/networks/devnet-minimal.yaml`.

/// The devnet's genesis fork version (minimal preset, Lodestar dev defaults).
pub const DEVNET_GENESIS_FORK_VERSION: &str = "0x00000001";
/// A genesis validators root used by the tests (any fixed value binds the database).
pub const TEST_GVR: &str = "0x270d43e74ce340de4bca2b1936beca0f4f5408d9e78aec4850920baf659d5b69";
/// The devnet's slots per epoch (minimal preset).
pub const SLOTS_PER_EPOCH: u64 = 8;

fn fork_info() -> String {
    format!(
        r#"{{"fork":{{"previous_version":"{v}","current_version":"{v}","epoch":"0"}},"genesis_validators_root":"{TEST_GVR}"}}"#,
        v = DEVNET_GENESIS_FORK_VERSION
    )
}

/// A 32-byte root filled with `byte`, as `0x` hex.
pub fn root(byte: u8) -> String {
    format!("0x{}", hex::encode([byte; 32]))
}

/// An `ATTESTATION` request; `root_byte` varies the signing root.
pub fn attestation(source_epoch: u64, target_epoch: u64, root_byte: u8) -> String {
    let r = root(root_byte);
    format!(
        r#"{{"type":"ATTESTATION","fork_info":{fi},"attestation":{{"slot":"{slot}","index":"0","beacon_block_root":"{r}","source":{{"epoch":"{source_epoch}","root":"{r}"}},"target":{{"epoch":"{target_epoch}","root":"{r}"}}}}}}"#,
        fi = fork_info(),
        slot = target_epoch * SLOTS_PER_EPOCH
    )
}

/// An `ATTESTATION` request whose committee `index` is given (pre-Electra committees).
pub fn attestation_with_index(
    source_epoch: u64,
    target_epoch: u64,
    root_byte: u8,
    index: u64,
) -> String {
    attestation(source_epoch, target_epoch, root_byte).replacen(
        r#""index":"0""#,
        &format!(r#""index":"{index}""#),
        1,
    )
}

/// The point at infinity: a syntactically valid signature for payloads that carry one.
const SIGNATURE: &str = "0xc00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

/// An `AGGREGATION_SLOT` (attestation aggregator selection proof) request.
pub fn aggregation_slot(slot: u64) -> String {
    format!(
        r#"{{"type":"AGGREGATION_SLOT","fork_info":{fi},"aggregation_slot":{{"slot":"{slot}"}}}}"#,
        fi = fork_info()
    )
}

/// An `AGGREGATE_AND_PROOF` request (pre-Electra Attestation: the devnet has no Electra).
pub fn aggregate_and_proof(slot: u64, aggregator_index: u64, target_epoch: u64) -> String {
    let r = root(5);
    format!(
        r#"{{"type":"AGGREGATE_AND_PROOF","fork_info":{fi},"aggregate_and_proof":{{"aggregator_index":"{aggregator_index}","aggregate":{{"aggregation_bits":"0x0101","data":{{"slot":"{slot}","index":"0","beacon_block_root":"{r}","source":{{"epoch":"{s}","root":"{r}"}},"target":{{"epoch":"{target_epoch}","root":"{r}"}}}},"signature":"{SIGNATURE}"}},"selection_proof":"{SIGNATURE}"}}}}"#,
        fi = fork_info(),
        s = target_epoch.saturating_sub(1)
    )
}

/// A `SYNC_COMMITTEE_MESSAGE` request.
pub fn sync_committee_message(slot: u64) -> String {
    format!(
        r#"{{"type":"SYNC_COMMITTEE_MESSAGE","fork_info":{fi},"sync_committee_message":{{"beacon_block_root":"{r}","slot":"{slot}"}}}}"#,
        fi = fork_info(),
        r = root(6)
    )
}

/// A `SYNC_COMMITTEE_SELECTION_PROOF` request.
pub fn sync_selection_proof(slot: u64, subcommittee_index: u64) -> String {
    format!(
        r#"{{"type":"SYNC_COMMITTEE_SELECTION_PROOF","fork_info":{fi},"sync_aggregator_selection_data":{{"slot":"{slot}","subcommittee_index":"{subcommittee_index}"}}}}"#,
        fi = fork_info()
    )
}

/// A `SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF` request (minimal preset: 8-bit contribution
/// bitvector).
pub fn contribution_and_proof(slot: u64, aggregator_index: u64, subcommittee_index: u64) -> String {
    format!(
        r#"{{"type":"SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF","fork_info":{fi},"contribution_and_proof":{{"aggregator_index":"{aggregator_index}","selection_proof":"{SIGNATURE}","contribution":{{"slot":"{slot}","beacon_block_root":"{r}","subcommittee_index":"{subcommittee_index}","aggregation_bits":"0x01","signature":"{SIGNATURE}"}}}}}}"#,
        fi = fork_info(),
        r = root(6)
    )
}

/// A `BLOCK_V2` request for a phase0-versioned block header at `slot` (`BLOCK_V2` with
/// `block_header` as Lighthouse sends from Bellatrix on).
pub fn block_header(slot: u64, root_byte: u8) -> String {
    let r = root(root_byte);
    format!(
        r#"{{"type":"BLOCK_V2","fork_info":{fi},"beacon_block":{{"version":"BELLATRIX","block_header":{{"slot":"{slot}","proposer_index":"3","parent_root":"{r}","state_root":"{r}","body_root":"{r}"}}}}}}"#,
        fi = fork_info()
    )
}

/// A `RANDAO_REVEAL` request.
pub fn randao(epoch: u64) -> String {
    format!(
        r#"{{"type":"RANDAO_REVEAL","fork_info":{fi},"randao_reveal":{{"epoch":"{epoch}"}}}}"#,
        fi = fork_info()
    )
}

/// A `DEPOSIT` request for `pubkey` (`0x…`): a DepositMessage of 32 ETH, on the genesis fork
/// version 0x00000000 (no `fork_info`).
pub fn deposit(pubkey: &str) -> String {
    format!(
        r#"{{"type":"DEPOSIT","deposit":{{"pubkey":"{pubkey}","withdrawal_credentials":"0x00{wc}","amount":"32000000000","genesis_fork_version":"0x00000000"}}}}"#,
        wc = "ab".repeat(31)
    )
}
