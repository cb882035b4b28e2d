//! Request-level tests of [`super::prepare`]: error variants and the network-dependent rules.

use serde_json::{json, Value};

use super::*;

const GVR: &str = "0x04700007fabc8282644aed6d1c7c9e21d38a03a0c4ba193f3afe428824b3a673";

fn fork_info(prev: &str, cur: &str, epoch: u64) -> Value {
    json!({"fork": {"previous_version": prev, "current_version": cur, "epoch": epoch.to_string()},
           "genesis_validators_root": GVR})
}

fn attestation_body() -> Value {
    json!({
        "type": "ATTESTATION",
        "fork_info": fork_info("0x00000001", "0x01000001", 1),
        "attestation": {
            "slot": "32", "index": "0",
            "beacon_block_root": "0x0101010101010101010101010101010101010101010101010101010101010101",
            "source": {"epoch": "3", "root": "0x0202020202020202020202020202020202020202020202020202020202020202"},
            "target": {"epoch": "4", "root": "0x0303030303030303030303030303030303030303030303030303030303030303"}
        }
    })
}

fn run(body: &Value) -> Result<PreparedRequest, RequestError> {
    prepare(&serde_json::to_vec(body).unwrap(), &Network::devnet())
}

fn malformed_message(body: &Value) -> String {
    match run(body) {
        Err(RequestError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn attestation_subject_and_gvr() {
    let prepared = run(&attestation_body()).unwrap();
    assert_eq!(prepared.request_type, RequestType::Attestation);
    assert_eq!(
        prepared.slashing,
        Some(SlashingSubject::Attestation {
            source_epoch: 3,
            target_epoch: 4
        })
    );
    assert_eq!(
        hex::encode(prepared.genesis_validators_root.unwrap()),
        GVR.trim_start_matches("0x")
    );
}

#[test]
fn type_is_case_insensitive_and_unknown_fields_ignored() {
    let mut body = attestation_body();
    body["type"] = json!("attestation");
    body["something_new"] = json!({"x": 1});
    assert_eq!(
        run(&body).unwrap().signing_root,
        run(&attestation_body()).unwrap().signing_root
    );
}

#[test]
fn fork_version_follows_the_fork_epoch_not_the_network() {
    // Lodestar puts the message's epoch in fork.epoch: target 4 >= 4 picks current_version.
    let mut at = attestation_body();
    at["fork_info"] = fork_info("0x00000001", "0x01000001", 4);
    let mut after = attestation_body();
    after["fork_info"] = fork_info("0x00000009", "0x01000001", 0);
    let mut before = attestation_body();
    before["fork_info"] = fork_info("0x01000001", "0x07000001", 5);
    let root = |b: &Value| run(b).unwrap().signing_root;
    assert_eq!(root(&at), root(&after));
    assert_eq!(root(&at), root(&before));
    let mut other = attestation_body();
    other["fork_info"] = fork_info("0x00000001", "0x02000001", 4);
    assert_ne!(root(&at), root(&other));
}

#[test]
fn signing_root_mismatch_shows_both_roots() {
    let computed = run(&attestation_body()).unwrap().signing_root;
    let mut body = attestation_body();
    body["signingRoot"] = json!(format!("0x{}", "ab".repeat(32)));
    match run(&body) {
        Err(e @ RequestError::SigningRootMismatch { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&"ab".repeat(32)) && msg.contains(&hex::encode(computed)),
                "{msg}"
            );
        }
        other => panic!("expected mismatch, got {other:?}"),
    }
    let mut ok = attestation_body();
    ok["signing_root"] = json!(format!("0x{}", hex::encode(computed)));
    assert!(run(&ok).is_ok());
}

#[test]
fn malformed_inputs_name_the_field() {
    assert!(matches!(
        prepare(b"{not json", &Network::devnet()),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        prepare(b"[]", &Network::devnet()),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        prepare(b"", &Network::devnet()),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        prepare(b"{} trailing", &Network::devnet()),
        Err(RequestError::Malformed(_))
    ));

    let mut body = attestation_body();
    body["fork_info"]["genesis_validators_root"] = json!("0x1234");
    let m = malformed_message(&body);
    assert!(
        m.contains("fork_info.genesis_validators_root") && m.contains("64 hex digits"),
        "{m}"
    );

    let mut body = attestation_body();
    body["attestation"]["slot"] = json!("-5");
    assert!(malformed_message(&body).contains("attestation.slot"));

    let mut body = attestation_body();
    body["attestation"]["target"]["epoch"] = json!("99999999999999999999999");
    assert!(malformed_message(&body).contains("attestation.target.epoch"));

    let mut body = attestation_body();
    body["attestation"]["beacon_block_root"] = json!(format!("0xzz{}", "00".repeat(31)));
    assert!(malformed_message(&body).contains("attestation.beacon_block_root"));

    let mut body = attestation_body();
    body["attestation"]["source"] = json!(7);
    assert!(malformed_message(&body).contains("attestation.source"));

    let mut body = attestation_body();
    body["type"] = json!(12);
    assert!(malformed_message(&body).contains("type"));
}

#[test]
fn type_and_payload_errors_are_distinct() {
    let mut body = attestation_body();
    body.as_object_mut().unwrap().remove("type");
    assert_eq!(run(&body).unwrap_err(), RequestError::MissingType);

    let mut body = attestation_body();
    body["type"] = json!("ATTESTATION_V9");
    assert_eq!(
        run(&body).unwrap_err(),
        RequestError::UnknownType("ATTESTATION_V9".into())
    );

    let mut body = attestation_body();
    body.as_object_mut().unwrap().remove("attestation");
    assert!(matches!(
        run(&body),
        Err(RequestError::MissingPayload {
            key: "attestation",
            ..
        })
    ));

    let mut body = attestation_body();
    body["type"] = json!("RANDAO_REVEAL");
    assert!(matches!(
        run(&body),
        Err(RequestError::WrongPayload {
            expected: "randao_reveal",
            ..
        })
    ));

    let mut body = attestation_body();
    body["randao_reveal"] = json!({"epoch": "1"});
    assert!(matches!(run(&body), Err(RequestError::ExtraPayload { .. })));

    let mut body = attestation_body();
    body.as_object_mut().unwrap().remove("fork_info");
    assert_eq!(
        run(&body).unwrap_err(),
        RequestError::MissingForkInfo(RequestType::Attestation)
    );
}

fn exit_body(epoch: u64, info: Value) -> Value {
    json!({"type": "VOLUNTARY_EXIT", "fork_info": info,
           "voluntary_exit": {"epoch": epoch.to_string(), "validator_index": "7"}})
}

#[test]
fn eip7044_exits_use_the_capella_version_from_deneb_on() {
    let mainnet = Network::builtin("mainnet").unwrap();
    let deneb = mainnet.fork_epoch(Fork::Deneb);
    let root = |epoch: u64, info: Value| {
        prepare(
            &serde_json::to_vec(&exit_body(epoch, info)).unwrap(),
            &mainnet,
        )
        .unwrap()
        .signing_root
    };
    // Lighthouse: synthetic Capella fork_info; Teku: the real (Deneb/Electra) fork.
    let lighthouse = root(deneb, fork_info("0x03000000", "0x03000000", 194048));
    let teku = root(deneb, fork_info("0x03000000", "0x04000000", deneb));
    assert_eq!(lighthouse, teku);
    let electra = root(
        deneb + 100_000,
        fork_info("0x04000000", "0x05000000", 364032),
    );
    let capella_domain = domain::compute_domain(
        domain::DOMAIN_VOLUNTARY_EXIT,
        wire::Bytes([3, 0, 0, 0]),
        wire::Bytes32::from_hex(GVR).unwrap(),
    );
    let exit = containers::misc::VoluntaryExit {
        epoch: wire::Quantity(deneb + 100_000),
        validator_index: wire::Quantity(7),
    };
    use tree_hash::TreeHash;
    assert_eq!(
        electra,
        domain::compute_signing_root(exit.tree_hash_root(), capella_domain)
    );
    // One epoch before Deneb the fork_info rule applies.
    let before = root(deneb - 1, fork_info("0x02000000", "0x03000000", 194048));
    let before_other = root(deneb - 1, fork_info("0x02000000", "0x04000000", 194048));
    assert_ne!(before, before_other);
}

fn aggregate_body(slot: u64, committee_bits: Option<&str>) -> Value {
    let mut aggregate = json!({
        "aggregation_bits": "0x0b",
        "data": {"slot": slot.to_string(), "index": "0",
                 "beacon_block_root": format!("0x{}", "11".repeat(32)),
                 "source": {"epoch": "0", "root": format!("0x{}", "22".repeat(32))},
                 "target": {"epoch": "1", "root": format!("0x{}", "33".repeat(32))}},
        "signature": format!("0x{}", "44".repeat(96)),
    });
    if let Some(bits) = committee_bits {
        aggregate["committee_bits"] = json!(bits);
    }
    json!({"type": "AGGREGATE_AND_PROOF", "fork_info": fork_info("0x00000001", "0x00000001", 0),
           "aggregate_and_proof": {"aggregator_index": "1", "aggregate": aggregate,
                                   "selection_proof": format!("0x{}", "55".repeat(96))}})
}

#[test]
fn bare_aggregates_follow_the_network_schedule() {
    let config = "PRESET_BASE: minimal\nGENESIS_FORK_VERSION: 0x00000001\n\
                  ELECTRA_FORK_VERSION: 0x05000001\nELECTRA_FORK_EPOCH: 2\n";
    let net = Network::from_config_str(config, "t").unwrap();
    let run = |b: Value| prepare(&serde_json::to_vec(&b).unwrap(), &net);
    assert!(run(aggregate_body(15, None)).is_ok());
    assert!(run(aggregate_body(16, Some("0x01"))).is_ok());
    let missing = run(aggregate_body(16, None)).unwrap_err();
    assert!(
        matches!(missing, RequestError::Invalid { .. }),
        "{missing:?}"
    );
    assert!(
        missing.to_string().contains("committee_bits is required"),
        "{missing}"
    );
    let extra = run(aggregate_body(15, Some("0x01"))).unwrap_err();
    assert!(
        extra.to_string().contains("committee_bits must be absent"),
        "{extra}"
    );
    // Minimal preset: 4 committees, so 8 bytes of committee bits do not fit.
    let wide = run(aggregate_body(16, Some("0x0000000000000001"))).unwrap_err();
    assert!(wide.to_string().contains("committee_bits"), "{wide}");
}

#[test]
fn aggregate_v2_shape_rules() {
    let mut body = aggregate_body(0, None);
    body["type"] = json!("AGGREGATE_AND_PROOF_V2");
    assert!(matches!(run(&body), Err(RequestError::Invalid { .. })));
    let data = body["aggregate_and_proof"].clone();
    body["aggregate_and_proof"] = json!({"version": "PHASE0", "data": data.clone()});
    let v2 = run(&body).unwrap().signing_root;
    assert_eq!(v2, run(&aggregate_body(0, None)).unwrap().signing_root);
    body["aggregate_and_proof"] = json!({"version": "NOPE", "data": data});
    assert!(matches!(
        run(&body),
        Err(RequestError::UnknownVersion { .. })
    ));
}

#[test]
fn block_v2_header_and_unsupported_full_blocks() {
    let header = json!({"slot": "17", "proposer_index": "3",
        "parent_root": format!("0x{}", "01".repeat(32)), "state_root": format!("0x{}", "02".repeat(32)),
        "body_root": format!("0x{}", "03".repeat(32))});
    let body = json!({"type": "BLOCK_V2", "fork_info": fork_info("0x02000001", "0x03000001", 3),
                      "beacon_block": {"version": "CAPELLA", "block_header": header}});
    let prepared = run(&body).unwrap();
    assert_eq!(prepared.slashing, Some(SlashingSubject::Block { slot: 17 }));
    let mut gloas = body.clone();
    gloas["beacon_block"]["version"] = json!("GLOAS");
    assert_eq!(run(&gloas).unwrap().signing_root, prepared.signing_root);
    let mut neither = body.clone();
    neither["beacon_block"]
        .as_object_mut()
        .unwrap()
        .remove("block_header");
    assert!(matches!(
        run(&neither),
        Err(RequestError::Invalid {
            field: "beacon_block",
            ..
        })
    ));
    let mut unknown = body;
    unknown["beacon_block"]["version"] = json!("MERGE");
    assert!(matches!(
        run(&unknown),
        Err(RequestError::UnknownVersion { .. })
    ));
}

#[test]
fn registrations_and_deposits_need_no_fork_info() {
    let reg = json!({"type": "VALIDATOR_REGISTRATION", "validator_registration": {
        "fee_recipient": format!("0x{}", "aa".repeat(20)), "gas_limit": "30000000",
        "timestamp": "1700000000", "pubkey": format!("0x{}", "bb".repeat(48))}});
    let prepared = run(&reg).unwrap();
    assert_eq!(prepared.genesis_validators_root, None);
    assert_eq!(prepared.slashing, None);
    // The builder domain uses the network's genesis version.
    let on_mainnet = prepare(
        &serde_json::to_vec(&reg).unwrap(),
        &Network::builtin("mainnet").unwrap(),
    )
    .unwrap();
    assert_ne!(on_mainnet.signing_root, prepared.signing_root);
    let mut bad = reg.clone();
    bad["validator_registration"]["fee_recipient"] = json!(format!("0x{}", "aa".repeat(21)));
    assert!(malformed_message(&bad).contains("validator_registration.fee_recipient"));

    let dep = json!({"type": "DEPOSIT", "deposit": {"pubkey": format!("0x{}", "bb".repeat(48)),
        "withdrawal_credentials": format!("0x{}", "cc".repeat(32)), "amount": "32000000000",
        "genesis_fork_version": "0x00000000"}});
    assert!(run(&dep).is_ok());
}

#[test]
fn no_panics_on_hostile_input() {
    let inputs: [&[u8]; 8] = [
        b"null",
        b"{\"type\":\"BLOCK_V2\",\"beacon_block\":null}",
        b"{\"type\":\"BLOCK_V2\",\"beacon_block\":{}}",
        b"{\"type\":\"AGGREGATE_AND_PROOF\",\"aggregate_and_proof\":{}}",
        b"{\"type\":\"AGGREGATE_AND_PROOF\",\"aggregate_and_proof\":{\"aggregate\":{\"aggregation_bits\":\"0x\"}}}",
        b"{\"type\":\"SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF\",\"contribution_and_proof\":{\"contribution\":{\"aggregation_bits\":\"0xffffffffffff\"}}}",
        b"\xff\xfe",
        b"{\"type\":\"\\ud800\"}",
    ];
    for input in inputs {
        assert!(prepare(input, &Network::devnet()).is_err());
    }
}

fn phase0_block(with_sync_aggregate: bool) -> Value {
    let zero = format!("0x{}", "00".repeat(32));
    let mut body = json!({
        "randao_reveal": format!("0x{}", "99".repeat(96)),
        "eth1_data": {"deposit_root": zero, "deposit_count": "5", "block_hash": zero},
        "graffiti": zero, "proposer_slashings": [], "attester_slashings": [],
        "attestations": [], "deposits": [], "voluntary_exits": []
    });
    if with_sync_aggregate {
        body["sync_aggregate"] = json!({"sync_committee_bits": "0xffffffff",
            "sync_committee_signature": format!("0x{}", "c0".repeat(96))});
    }
    json!({"slot": "9", "proposer_index": "1", "parent_root": zero, "state_root": zero, "body": body})
}

#[test]
fn full_blocks_must_match_their_fork() {
    let info = fork_info("0x00000001", "0x01000001", 1);
    let v2 = |version: &str, block: Value| {
        json!({"type": "BLOCK_V2", "fork_info": info,
               "beacon_block": {"version": version, "block": block}})
    };
    assert!(run(&v2("PHASE0", phase0_block(false))).is_ok());
    assert!(run(&v2("ALTAIR", phase0_block(true))).is_ok());
    for (version, block) in [
        ("PHASE0", phase0_block(true)),
        ("ALTAIR", phase0_block(false)),
        ("BELLATRIX", phase0_block(true)),
    ] {
        let err = run(&v2(version, block)).unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::Invalid {
                    field: "beacon_block.block",
                    ..
                }
            ),
            "{version}: {err:?}"
        );
    }
    let legacy = json!({"type": "BLOCK", "fork_info": info, "block": phase0_block(false)});
    let prepared = run(&legacy).unwrap();
    assert_eq!(prepared.slashing, Some(SlashingSubject::Block { slot: 9 }));
    assert_eq!(
        prepared.signing_root,
        run(&v2("PHASE0", phase0_block(false)))
            .unwrap()
            .signing_root
    );
}
