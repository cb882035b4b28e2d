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

// ---- Gloas --------------------------------------------------------------------------

/// A minimal-preset network with FULU at epoch 3 and GLOAS at epoch 5.
fn gloas_network() -> Network {
    let config = "PRESET_BASE: minimal\nGENESIS_FORK_VERSION: 0x00000001\n\
                  ELECTRA_FORK_VERSION: 0x05000001\nELECTRA_FORK_EPOCH: 2\n\
                  FULU_FORK_VERSION: 0x06000001\nFULU_FORK_EPOCH: 3\n\
                  GLOAS_FORK_VERSION: 0x07000001\nGLOAS_FORK_EPOCH: 5\n";
    Network::from_config_str(config, "gloas-test").unwrap()
}

fn run_on(body: &Value, network: &Network) -> Result<PreparedRequest, RequestError> {
    prepare(&serde_json::to_vec(body).unwrap(), network)
}

fn gloas_info() -> Value {
    fork_info("0x06000001", "0x07000001", 5)
}

fn hex_of(byte: &str, n: usize) -> String {
    format!("0x{}", byte.repeat(n))
}

/// One valid body per Gloas type (the second value is its payload key).
fn gloas_bodies() -> Vec<(RequestType, Value)> {
    let ptc = json!({"beacon_block_root": hex_of("11", 32), "slot": "41",
                     "payload_present": true, "blob_data_available": false});
    let bid = json!({"parent_block_hash": hex_of("01", 32), "parent_block_root": hex_of("02", 32),
        "block_hash": hex_of("03", 32), "prev_randao": hex_of("04", 32),
        "fee_recipient": hex_of("05", 20), "gas_limit": "60000000", "builder_index": "7",
        "slot": "41", "value": "1000", "execution_payment": "0",
        "blob_kzg_commitments": [hex_of("06", 48)], "execution_requests_root": hex_of("07", 32)});
    let envelope = json!({
        "payload": {"parent_hash": hex_of("01", 32), "fee_recipient": hex_of("02", 20),
            "state_root": hex_of("03", 32), "receipts_root": hex_of("04", 32),
            "logs_bloom": hex_of("05", 256), "prev_randao": hex_of("06", 32),
            "block_number": "9", "gas_limit": "60000000", "gas_used": "21000",
            "timestamp": "1700000000", "extra_data": "0x6b6579", "base_fee_per_gas": "7",
            "block_hash": hex_of("07", 32), "transactions": ["0x02f8", "0x"],
            "withdrawals": [{"index": "1", "validator_index": "2", "address": hex_of("08", 20), "amount": "3"}],
            "blob_gas_used": "0", "excess_blob_gas": "0", "block_access_list": "0xc0",
            "slot_number": "41"},
        "execution_requests": {"deposits": [], "withdrawals": [], "consolidations": [],
            "builder_deposits": [], "builder_exits": []},
        "builder_index": "18446744073709551615", "beacon_block_root": hex_of("09", 32),
        "parent_beacon_block_root": hex_of("0a", 32)});
    let prefs = json!({"dependent_root": hex_of("0b", 32), "proposal_slot": "48",
        "validator_index": "12", "fee_recipient": hex_of("0c", 20), "target_gas_limit": "60000000"});
    let auth = json!({"data": "0x68747470733a2f2f6275696c646572", "slot": "41"});
    let versioned = |key: &str, data: &Value| json!({key: {"version": "GLOAS", "data": data}});
    let mut out = Vec::new();
    for (t, key, data) in [
        (
            RequestType::ExecutionPayloadBid,
            "execution_payload_bid",
            &bid,
        ),
        (
            RequestType::ExecutionPayloadEnvelope,
            "execution_payload_envelope",
            &envelope,
        ),
        (
            RequestType::PayloadAttestationMessage,
            "payload_attestation_message",
            &ptc,
        ),
        (
            RequestType::ProposerPreferences,
            "proposer_preferences",
            &prefs,
        ),
        (
            RequestType::BuilderRequestAuth,
            "builder_request_auth",
            &auth,
        ),
    ] {
        let mut body = versioned(key, data);
        body["type"] = json!(t.as_str());
        if t != RequestType::BuilderRequestAuth {
            body["fork_info"] = gloas_info();
        }
        out.push((t, body));
    }
    out.push((
        RequestType::PayloadAttestation,
        json!({"type": "PAYLOAD_ATTESTATION", "fork_info": gloas_info(), "payload_attestation_data": ptc}),
    ));
    out
}

#[test]
fn gloas_types_are_signed_and_never_slashable() {
    let net = gloas_network();
    for (t, body) in gloas_bodies() {
        let prepared = run_on(&body, &net).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(prepared.request_type, t);
        assert_eq!(prepared.slashing, None, "{t} must not be slashable");
        assert_eq!(
            prepared.genesis_validators_root.is_some(),
            t.needs_fork_info(),
            "{t}"
        );
    }
}

#[test]
fn both_payload_attestation_shapes_have_one_root() {
    let net = gloas_network();
    let bodies = gloas_bodies();
    let root = |t: RequestType| {
        let body = &bodies.iter().find(|(x, _)| *x == t).unwrap().1;
        run_on(body, &net).unwrap().signing_root
    };
    assert_eq!(
        root(RequestType::PayloadAttestationMessage),
        root(RequestType::PayloadAttestation)
    );
}

#[test]
fn builder_request_auth_ignores_fork_info_and_uses_the_genesis_version() {
    let net = gloas_network();
    let (_, body) = gloas_bodies().remove(4);
    let plain = run_on(&body, &net).unwrap().signing_root;
    let mut with_info = body.clone();
    with_info["fork_info"] = fork_info("0x01020304", "0x05060708", 0);
    assert_eq!(run_on(&with_info, &net).unwrap().signing_root, plain);
    // Another genesis version (mainnet's), another domain.
    let mainnet = Network::builtin("mainnet").unwrap();
    assert_ne!(run_on(&body, &mainnet).unwrap().signing_root, plain);
    let mut empty = body.clone();
    empty["builder_request_auth"]["data"]["data"] = json!("0x");
    let err = run_on(&empty, &net).unwrap_err();
    assert!(
        err.to_string().contains("builder_request_auth.data"),
        "{err}"
    );
}

#[test]
fn gloas_bad_input_is_refused_with_the_field_named() {
    let net = gloas_network();
    for (t, body) in gloas_bodies() {
        let key = t.payload_key();
        let versioned = t != RequestType::PayloadAttestation;
        let message = |b: &Value| match run_on(b, &net) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{t}: accepted {b}"),
        };
        if versioned {
            let mut wrong = body.clone();
            wrong[key]["version"] = json!("FULU");
            let m = message(&wrong);
            assert!(m.contains("version") && m.contains("GLOAS"), "{t}: {m}");
            wrong[key]["version"] = json!("NOPE");
            assert!(message(&wrong).contains("unknown fork version"), "{t}");
            let mut no_version = body.clone();
            no_version[key].as_object_mut().unwrap().remove("version");
            assert!(message(&no_version).contains(".version"), "{t}");
            let mut no_data = body.clone();
            no_data[key].as_object_mut().unwrap().remove("data");
            assert!(message(&no_data).contains(".data: missing"), "{t}");
            // A bare object where {version, data} is expected.
            let mut bare = body.clone();
            bare[key] = body[key]["data"].clone();
            assert!(run_on(&bare, &net).is_err(), "{t}: bare object accepted");
        }
        let mut missing = body.clone();
        missing.as_object_mut().unwrap().remove(key);
        assert!(
            matches!(
                run_on(&missing, &net),
                Err(RequestError::MissingPayload { .. })
            ),
            "{t}"
        );
        // Wrong JSON types: a number for the whole payload, an object for a string field.
        let mut wrong_type = body.clone();
        wrong_type[key] = json!(5);
        assert!(message(&wrong_type).contains(key), "{t}");
        let m = message(&wrong_type_data(&body, key, versioned));
        assert!(m.contains(key), "{t}: {m}");
        // A signingRoot that differs.
        let mut bad_root = body.clone();
        bad_root["signingRoot"] = json!(hex_of("ab", 32));
        assert!(
            matches!(
                run_on(&bad_root, &net),
                Err(RequestError::SigningRootMismatch { .. })
            ),
            "{t}"
        );
        if t.needs_fork_info() {
            let mut no_info = body.clone();
            no_info.as_object_mut().unwrap().remove("fork_info");
            assert_eq!(
                run_on(&no_info, &net).unwrap_err(),
                RequestError::MissingForkInfo(t)
            );
        }
    }
}

/// `body` with the first string field of its object replaced by an object.
fn wrong_type_data(body: &Value, key: &str, versioned: bool) -> Value {
    let mut out = body.clone();
    let object = if versioned {
        &mut out[key]["data"]
    } else {
        &mut out[key]
    };
    let data = object.as_object_mut().unwrap();
    let field = data
        .iter()
        .find(|(_, v)| v.is_string())
        .map(|(k, _)| k.clone())
        .unwrap();
    data.insert(field, json!({"x": 1}));
    out
}

#[test]
fn payload_attestation_data_needs_json_booleans() {
    let net = gloas_network();
    let (_, mut body) = gloas_bodies().remove(2);
    body["payload_attestation_message"]["data"]["payload_present"] = json!("true");
    let err = run_on(&body, &net).unwrap_err().to_string();
    assert!(
        err.contains("payload_attestation_message.data.payload_present"),
        "{err}"
    );
}

#[test]
fn envelope_epoch_comes_from_the_payload_slot() {
    let net = gloas_network();
    let (_, body) = gloas_bodies().remove(1);
    let at = |slot: &str| {
        let mut b = body.clone();
        b["execution_payload_envelope"]["data"]["payload"]["slot_number"] = json!(slot);
        b["fork_info"] = fork_info("0x06000001", "0x07000001", 5);
        run_on(&b, &net).unwrap().signing_root
    };
    let mut over_long = body.clone();
    over_long["execution_payload_envelope"]["data"]["payload"]["extra_data"] =
        json!(hex_of("01", 33));
    let err = run_on(&over_long, &net).unwrap_err().to_string();
    assert!(err.contains("extra_data"), "{err}");
    // Slot 39 is epoch 4 (< fork epoch 5: previous version), slot 40 epoch 5.
    assert_ne!(at("39"), at("40"));
}

fn gloas_aggregate(slot: u64, v2_version: Option<&str>) -> Value {
    let mut body = aggregate_body(slot, Some("0x01"));
    body["fork_info"] = gloas_info();
    body["aggregate_and_proof"]["aggregate"]["data"]["index"] = json!("1");
    if let Some(version) = v2_version {
        let data = body["aggregate_and_proof"].clone();
        body["type"] = json!("AGGREGATE_AND_PROOF_V2");
        body["aggregate_and_proof"] = json!({"version": version, "data": data});
    }
    body
}

#[test]
fn gloas_aggregates_hash_as_progressive_containers() {
    let net = gloas_network();
    let root = |b: Value| run_on(&b, &net).unwrap().signing_root;
    // Same JSON, same fork_info: only the SSZ type differs.
    let gloas = root(gloas_aggregate(40, Some("GLOAS")));
    let electra = root(gloas_aggregate(40, Some("ELECTRA")));
    let fulu = root(gloas_aggregate(40, Some("FULU")));
    assert_ne!(gloas, electra);
    assert_eq!(electra, fulu);
    // A bare aggregate takes the container from the network's schedule.
    assert_eq!(root(gloas_aggregate(40, None)), gloas);
    let last_fulu = root(gloas_aggregate(39, None));
    assert_eq!(last_fulu, root(gloas_aggregate(39, Some("FULU"))));
    assert_ne!(last_fulu, root(gloas_aggregate(39, Some("GLOAS"))));
    // committee_bits stays required, and the aggregation bits need their delimiter.
    let mut missing = gloas_aggregate(40, None);
    missing["aggregate_and_proof"]["aggregate"]
        .as_object_mut()
        .unwrap()
        .remove("committee_bits");
    assert!(run_on(&missing, &net).is_err());
    let mut no_delimiter = gloas_aggregate(40, None);
    no_delimiter["aggregate_and_proof"]["aggregate"]["aggregation_bits"] = json!("0x0b00");
    let err = run_on(&no_delimiter, &net).unwrap_err().to_string();
    assert!(err.contains("aggregation_bits"), "{err}");
}

#[test]
fn attestation_index_is_not_refused_at_gloas() {
    let net = gloas_network();
    for index in ["0", "1"] {
        let mut body = attestation_body();
        body["fork_info"] = gloas_info();
        body["attestation"]["slot"] = json!("40");
        body["attestation"]["index"] = json!(index);
        body["attestation"]["target"]["epoch"] = json!("5");
        let prepared = run_on(&body, &net).unwrap();
        assert!(matches!(
            prepared.slashing,
            Some(SlashingSubject::Attestation {
                target_epoch: 5,
                ..
            })
        ));
    }
}

/// The slot or epoch each type hands the future guard (and the types it exempts).
#[test]
fn duty_times_per_type() {
    assert_eq!(
        run(&attestation_body()).unwrap().duty,
        Some(DutyTime::Epoch(4))
    );
    assert_eq!(
        run(&aggregate_body(17, None)).unwrap().duty,
        Some(DutyTime::Slot(17))
    );
    let randao = json!({"type": "RANDAO_REVEAL", "fork_info": fork_info("0x00000001", "0x00000001", 0),
                        "randao_reveal": {"epoch": "9"}});
    assert_eq!(run(&randao).unwrap().duty, Some(DutyTime::Epoch(9)));
    let selection = json!({"type": "AGGREGATION_SLOT", "fork_info": fork_info("0x00000001", "0x00000001", 0),
                           "aggregation_slot": {"slot": "33"}});
    assert_eq!(run(&selection).unwrap().duty, Some(DutyTime::Slot(33)));
    // Exits are not duties: a pre-signed exit for a later epoch is legitimate.
    let exit = exit_body(1_000_000, fork_info("0x00000001", "0x00000001", 0));
    assert_eq!(run(&exit).unwrap().duty, None);
    let net = gloas_network();
    for (t, body) in gloas_bodies() {
        let expected = match t {
            RequestType::BuilderRequestAuth => None,
            RequestType::ProposerPreferences => Some(DutyTime::Slot(48)),
            _ => Some(DutyTime::Slot(41)),
        };
        assert_eq!(run_on(&body, &net).unwrap().duty, expected, "{t}");
    }
}
