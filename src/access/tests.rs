//! Identity resolution, known-client enforcement and key scopes.

use super::*;

const PK_A: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";
const PK_B: &str = "0xb89bebc699769726a318c8e9971bd3171297c61aea4a6578a7a4f94b547dcba5bac16a89108b6b6a1fe3695d1a874a0b";

fn fp(n: u8) -> Fingerprint {
    [n; 32]
}

fn pk(s: &str) -> PubkeyBytes {
    crate::keys::parse_pubkey(s).unwrap()
}

struct Setup {
    policy: AccessPolicy,
    _dir: tempfile::TempDir,
}

/// Clients: `scoped` (cert fp(1), token "tok-scoped-7c1e9a4b2d8f6e3a", only PK_A), `free` (cert fp(2), no
/// scope); the known-clients file names fp(3) `from-file` and fp(1) `shadowed`.
fn setup(require_known_client: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("scoped.token");
    std::fs::write(&token, "tok-scoped-7c1e9a4b2d8f6e3a\n").unwrap();
    let config = AccessConfig {
        allowed_hosts: vec!["localhost".into()],
        require_known_client,
        clients: vec![
            ClientConfig {
                name: "scoped".into(),
                fingerprints: vec![hex::encode(fp(1))],
                token_file: Some(token),
                pubkeys: Some(vec![PK_A.into()]),
                types: None,
            },
            ClientConfig {
                name: "free".into(),
                fingerprints: vec![hex::encode(fp(2))],
                ..Default::default()
            },
        ],
    };
    let known = [
        KnownClient {
            name: "from-file".into(),
            fingerprint: fp(3),
        },
        KnownClient {
            name: "shadowed".into(),
            fingerprint: fp(1),
        },
    ];
    Setup {
        policy: AccessPolicy::from_config(&config, &known).unwrap(),
        _dir: dir,
    }
}

#[test]
fn certificate_identity_is_named_from_clients_then_known_clients_file() {
    let s = setup(false);
    let id = s.policy.identify(Some(&fp(1)), None).unwrap();
    assert_eq!(
        id,
        ClientIdentity::Certificate {
            fingerprint: fp(1),
            name: Some("scoped".into())
        }
    );
    let id = s.policy.identify(Some(&fp(3)), None).unwrap();
    assert_eq!(
        id,
        ClientIdentity::Certificate {
            fingerprint: fp(3),
            name: Some("from-file".into())
        }
    );
    let id = s.policy.identify(Some(&fp(9)), None).unwrap();
    assert_eq!(
        id,
        ClientIdentity::Certificate {
            fingerprint: fp(9),
            name: None
        }
    );
}

#[test]
fn a_named_certificate_with_another_clients_token_is_refused() {
    let s = setup(false);
    let err = s
        .policy
        .identify(Some(&fp(2)), Some("Bearer tok-scoped-7c1e9a4b2d8f6e3a"))
        .unwrap_err();
    assert_eq!(err.reason(), DenyReason::CredentialsDisagree);
    assert!(matches!(err, Denied::Forbidden(..)));
    // The certificate and token of one client: the certificate names it.
    let id = s
        .policy
        .identify(Some(&fp(1)), Some("Bearer tok-scoped-7c1e9a4b2d8f6e3a"))
        .unwrap();
    assert_eq!(
        id,
        ClientIdentity::Certificate {
            fingerprint: fp(1),
            name: Some("scoped".into())
        }
    );
    // A wrong token is refused, not ignored, also under a named certificate.
    let err = s
        .policy
        .identify(Some(&fp(2)), Some("Bearer wrong"))
        .unwrap_err();
    assert_eq!(err.reason(), DenyReason::UnknownToken);
}

#[test]
fn a_token_is_honoured_under_an_unnamed_certificate() {
    // A CA-issued certificate that no client entry names, with require_known_client.
    let s = setup(true);
    let id = s
        .policy
        .identify(Some(&fp(9)), Some("Bearer tok-scoped-7c1e9a4b2d8f6e3a"))
        .unwrap();
    assert_eq!(
        id,
        ClientIdentity::Token {
            name: "scoped".into()
        }
    );
    assert!(s.policy.check_key(&id, &pk(PK_A)).is_ok());
    assert!(s.policy.check_key(&id, &pk(PK_B)).is_err());
    let err = s.policy.identify(Some(&fp(9)), None).unwrap_err();
    assert_eq!(err.reason(), DenyReason::UnknownClient);
}

#[test]
fn bearer_token_identifies_its_client() {
    let s = setup(false);
    for header in [
        "Bearer tok-scoped-7c1e9a4b2d8f6e3a",
        "bearer tok-scoped-7c1e9a4b2d8f6e3a",
        "  BEARER   tok-scoped-7c1e9a4b2d8f6e3a ",
    ] {
        assert_eq!(
            s.policy.identify(None, Some(header)),
            Ok(ClientIdentity::Token {
                name: "scoped".into()
            }),
            "{header}"
        );
    }
}

#[test]
fn unknown_token_is_forbidden_and_malformed_header_unauthorized() {
    let s = setup(false);
    assert!(matches!(
        s.policy.identify(None, Some("Bearer wrong")),
        Err(Denied::Forbidden(..))
    ));
    for bad in [
        "tok-scoped-7c1e9a4b2d8f6e3a",
        "Basic dXNlcjpwdw==",
        "Bearer ",
        "Bearer",
    ] {
        assert!(
            matches!(
                s.policy.identify(None, Some(bad)),
                Err(Denied::Unauthorized(..))
            ),
            "{bad}"
        );
    }
}

#[test]
fn anonymous_without_credentials() {
    let s = setup(false);
    assert_eq!(s.policy.identify(None, None), Ok(ClientIdentity::Anonymous));
}

#[test]
fn require_known_client_refuses_anonymous_and_unnamed_certificates() {
    let s = setup(true);
    assert!(matches!(
        s.policy.identify(None, None),
        Err(Denied::Forbidden(..))
    ));
    assert!(matches!(
        s.policy.identify(Some(&fp(9)), None),
        Err(Denied::Forbidden(..))
    ));
    assert!(s.policy.identify(Some(&fp(3)), None).is_ok());
    assert!(s
        .policy
        .identify(None, Some("Bearer tok-scoped-7c1e9a4b2d8f6e3a"))
        .is_ok());
}

#[test]
fn scoped_client_may_use_only_its_keys() {
    let s = setup(false);
    let by_cert = s.policy.identify(Some(&fp(1)), None).unwrap();
    let by_token = s
        .policy
        .identify(None, Some("Bearer tok-scoped-7c1e9a4b2d8f6e3a"))
        .unwrap();
    for id in [&by_cert, &by_token] {
        assert!(s.policy.check_key(id, &pk(PK_A)).is_ok());
        let err = s.policy.check_key(id, &pk(PK_B)).unwrap_err();
        assert!(err.client.contains("scoped"), "{err}");
        assert!(!s.policy.may_use(id, &pk(PK_B)));
    }
}

#[test]
fn once_a_client_is_scoped_identities_without_a_scope_get_no_key() {
    let s = setup(false);
    let free = s.policy.identify(Some(&fp(2)), None).unwrap();
    let file = s.policy.identify(Some(&fp(3)), None).unwrap();
    let unnamed = s.policy.identify(Some(&fp(9)), None).unwrap();
    for id in [&free, &file, &unnamed, &ClientIdentity::Anonymous] {
        assert!(s.policy.check_key(id, &pk(PK_A)).is_err(), "{id}");
        assert!(!s.policy.may_use(id, &pk(PK_B)), "{id}");
    }
}

/// Two clients without `pubkeys` and an anonymous caller, `scoped` optionally with `*`.
fn policy_with(clients: Vec<ClientConfig>) -> AccessPolicy {
    let config = AccessConfig {
        clients,
        ..Default::default()
    };
    AccessPolicy::from_config(&config, &[]).unwrap()
}

fn cert_client(name: &str, n: u8) -> ClientConfig {
    ClientConfig {
        name: name.into(),
        fingerprints: vec![hex::encode(fp(n))],
        ..Default::default()
    }
}

#[test]
fn without_any_scope_every_identity_may_use_every_key() {
    let p = policy_with(vec![cert_client("a", 1), cert_client("b", 2)]);
    for id in [
        p.identify(Some(&fp(1)), None).unwrap(),
        p.identify(Some(&fp(9)), None).unwrap(),
        ClientIdentity::Anonymous,
    ] {
        assert!(p.check_key(&id, &pk(PK_A)).is_ok(), "{id}");
        assert!(p.check_key(&id, &pk(PK_B)).is_ok(), "{id}");
    }
}

#[test]
fn star_scope_is_every_key_explicitly() {
    let mut all = cert_client("all", 1);
    all.pubkeys = Some(vec!["*".into()]);
    let mut one = cert_client("one", 2);
    one.pubkeys = Some(vec![PK_B.into()]);
    let p = policy_with(vec![all, one, cert_client("none", 3)]);
    let all = p.identify(Some(&fp(1)), None).unwrap();
    let one = p.identify(Some(&fp(2)), None).unwrap();
    let none = p.identify(Some(&fp(3)), None).unwrap();
    assert!(p.may_use(&all, &pk(PK_A)) && p.may_use(&all, &pk(PK_B)));
    assert!(!p.may_use(&one, &pk(PK_A)) && p.may_use(&one, &pk(PK_B)));
    assert!(!p.may_use(&none, &pk(PK_A)) && !p.may_use(&none, &pk(PK_B)));
    assert!(!p.may_use(&ClientIdentity::Anonymous, &pk(PK_A)));
}

#[test]
fn bad_scopes_and_types_are_config_errors() {
    for (pubkeys, types, setting) in [
        (
            Some(vec!["*".to_string(), PK_A.to_string()]),
            None,
            "pubkeys",
        ),
        (Some(vec![]), None, "pubkeys"),
        (None, Some(vec!["ATTESTATIONS".to_string()]), "types"),
        (None, Some(vec![]), "types"),
    ] {
        let mut c = cert_client("c", 1);
        c.pubkeys = pubkeys;
        c.types = types;
        let config = AccessConfig {
            clients: vec![c],
            ..Default::default()
        };
        let err = validate(&config, false).unwrap_err();
        assert_eq!(err.setting, format!("access.clients[0].{setting}"), "{err}");
    }
}

#[test]
fn deposit_is_refused_unless_a_clients_types_allow_it() {
    let mut depositor = cert_client("depositor", 1);
    depositor.types = Some(vec!["DEPOSIT".into(), "voluntary_exit".into()]);
    let mut attester = cert_client("attester", 2);
    attester.types = Some(vec!["ATTESTATION".into(), "AGGREGATION_SLOT".into()]);
    let p = policy_with(vec![depositor, attester, cert_client("plain", 3)]);
    let depositor = p.identify(Some(&fp(1)), None).unwrap();
    let attester = p.identify(Some(&fp(2)), None).unwrap();
    let plain = p.identify(Some(&fp(3)), None).unwrap();
    for t in RequestType::ALL {
        let is = |allowed: &[RequestType]| allowed.contains(&t);
        let exit_or_deposit = is(&[RequestType::Deposit, RequestType::VoluntaryExit]);
        assert_eq!(
            p.check_type(&depositor, t).is_ok(),
            exit_or_deposit,
            "{t:?}"
        );
        let attest = is(&[RequestType::Attestation, RequestType::AggregationSlot]);
        assert_eq!(p.check_type(&attester, t).is_ok(), attest, "{t:?}");
        let not_deposit = t != RequestType::Deposit;
        assert_eq!(p.check_type(&plain, t).is_ok(), not_deposit, "{t:?}");
        let anonymous = p.check_type(&ClientIdentity::Anonymous, t);
        assert_eq!(anonymous.is_ok(), not_deposit, "{t:?}");
    }
    let err = p
        .check_type(&ClientIdentity::Anonymous, RequestType::Deposit)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "client anonymous may not sign DEPOSIT requests (DEPOSIT needs a client whose types list it)"
    );
    // The permissive policy (no [access] at all) refuses deposits too.
    let open = AccessPolicy::permissive();
    assert!(open
        .check_type(&ClientIdentity::Anonymous, RequestType::Deposit)
        .is_err());
    assert!(open
        .check_type(&ClientIdentity::Anonymous, RequestType::Attestation)
        .is_ok());
}

#[test]
fn host_check_error_names_the_setting() {
    let s = setup(false);
    assert!(s.policy.check_host(Some("localhost:9000")).is_ok());
    let Err(Denied::Forbidden(DenyReason::HostNotAllowed, message)) =
        s.policy.check_host(Some("evil.example"))
    else {
        panic!("evil.example must be refused");
    };
    assert_eq!(
        message,
        "Host header `evil.example` is not allowed; add it to access.allowed_hosts"
    );
    assert!(s.policy.check_host(None).is_err());
}

#[test]
fn permissive_policy_allows_everything() {
    let p = AccessPolicy::permissive();
    assert!(p.check_host(None).is_ok());
    assert!(p.check_host(Some("evil.example")).is_ok());
    assert_eq!(p.identify(None, None), Ok(ClientIdentity::Anonymous));
    assert!(p.check_key(&ClientIdentity::Anonymous, &pk(PK_A)).is_ok());
}

#[test]
fn validate_refuses_empty_hosts_and_require_known_client_without_clients() {
    let mut c = AccessConfig::default();
    assert!(validate(&c, false).is_ok());
    c.allowed_hosts.clear();
    assert_eq!(
        validate(&c, false).unwrap_err().setting,
        "access.allowed_hosts"
    );
    let c = AccessConfig {
        require_known_client: true,
        ..Default::default()
    };
    assert_eq!(
        validate(&c, false).unwrap_err().setting,
        "access.require_known_client"
    );
    assert!(validate(&c, true).is_ok());
}
