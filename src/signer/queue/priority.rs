//! Who waits for whom: the priority class of each request type, and the client a request
//! is queued under.

use std::fmt;
use std::net::IpAddr;

use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, Visitor};

use crate::access::ClientIdentity;
use crate::consensus::RequestType;

/// The two priority classes of the signing queue. Duty requests are served first; a
/// background request still gets one turn in every [`super::DUTY_TURNS`] + 1 while both
/// wait, so background work is slowed under load but never starved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Per-slot duties whose signature is worthless a few seconds late and whose loss costs
    /// rewards: blocks, attestations, aggregation, sync-committee and PTC duties.
    Duty,
    /// Everything else: RANDAO reveals, builder registrations, exits, deposits, Gloas
    /// builder and preference messages, and requests whose type cannot be read.
    Background,
}

impl Priority {
    /// Both classes, in serving order.
    pub const ALL: [Priority; 2] = [Priority::Duty, Priority::Background];

    /// The `priority` label of the queue metrics.
    pub fn label(self) -> &'static str {
        match self {
            Priority::Duty => "duty",
            Priority::Background => "background",
        }
    }

    /// Index into per-class arrays.
    pub(super) fn index(self) -> usize {
        match self {
            Priority::Duty => 0,
            Priority::Background => 1,
        }
    }

    /// The class of a request with this body (its top-level `type` only; nothing else is
    /// checked, and nothing after the `type` is read, so a large block or payload envelope
    /// is not parsed twice).
    pub fn of_body(body: &[u8]) -> Priority {
        Priority::of(leading_request_type(body))
    }

    /// The class of a request of type `request_type` (`None`: unreadable or unknown).
    ///
    /// Sync-committee messages, selection proofs and contributions are duties: a member
    /// signs them every slot for a whole period, they pay more per slot than attestations,
    /// and there are few of them (512 members network-wide), so they cannot crowd anything
    /// out. `AGGREGATION_SLOT` is a duty because some clients compute the selection proof
    /// in the slot, and it decides whether the validator aggregates. `RANDAO_REVEAL` is
    /// background although a proposer needs it: it is one request per proposal, cheap to
    /// flood (no slashing record), and one turn in [`super::DUTY_TURNS`] + 1 serves it
    /// within a few signatures even while duties saturate the signer.
    pub fn of(request_type: Option<RequestType>) -> Priority {
        use RequestType as T;
        match request_type {
            Some(
                T::Block
                | T::BlockV2
                | T::Attestation
                | T::AggregationSlot
                | T::AggregateAndProof
                | T::AggregateAndProofV2
                | T::SyncCommitteeMessage
                | T::SyncCommitteeSelectionProof
                | T::SyncCommitteeContributionAndProof
                | T::PayloadAttestationMessage
                | T::PayloadAttestation
                | T::ExecutionPayloadEnvelope,
            ) => Priority::Duty,
            Some(
                T::RandaoReveal
                | T::Deposit
                | T::VoluntaryExit
                | T::ValidatorRegistration
                | T::ExecutionPayloadBid
                | T::ProposerPreferences
                | T::BuilderRequestAuth,
            )
            | None => Priority::Background,
        }
    }
}

/// Whom a queued request counts against for fairness: the client identity from the access
/// layer, or for an anonymous client its peer address (each address is one client).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A client certificate or bearer token (its identity, as the audit log names it).
    Identified(String),
    /// An anonymous client, by address (IPv4-mapped IPv6 folded to IPv4).
    Peer(IpAddr),
    /// Anonymous and without a known address (in-process callers, tests).
    Unknown,
}

impl ClientKey {
    /// The key of `identity`, connected from `peer`.
    pub fn of(identity: &ClientIdentity, peer: Option<IpAddr>) -> ClientKey {
        match (identity, peer) {
            (ClientIdentity::Anonymous, Some(ip)) => ClientKey::Peer(ip.to_canonical()),
            (ClientIdentity::Anonymous, None) => ClientKey::Unknown,
            (named, _) => ClientKey::Identified(named.to_string()),
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKey::Identified(name) => f.write_str(name),
            ClientKey::Peer(ip) => write!(f, "anonymous@{ip}"),
            ClientKey::Unknown => f.write_str("anonymous"),
        }
    }
}

/// The `type` of a JSON object body, read up to that member: the deserializer is stopped
/// once it is found. `None` when the body is not an object or has no known `type` there.
fn leading_request_type(body: &[u8]) -> Option<RequestType> {
    /// Walks the top-level members, skipping values, and keeps the first `type`.
    struct TypeFinder<'a>(&'a mut Option<String>);

    impl<'de> Visitor<'de> for TypeFinder<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "type" {
                    *self.0 = map.next_value::<String>().ok();
                    // Stop here: the rest of the body is the pipeline's to parse.
                    return Err(de::Error::custom("type found"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    // An error is expected (the early stop), or the body is bad: either way `found` says.
    let _ = deserializer.deserialize_map(TypeFinder(&mut found));
    RequestType::from_wire(&found?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_class() {
        let duties: Vec<_> = RequestType::ALL
            .into_iter()
            .filter(|t| Priority::of(Some(*t)) == Priority::Duty)
            .map(|t| t.as_str())
            .collect();
        for must in [
            "BLOCK",
            "BLOCK_V2",
            "ATTESTATION",
            "AGGREGATE_AND_PROOF",
            "AGGREGATE_AND_PROOF_V2",
            "SYNC_COMMITTEE_MESSAGE",
            "PAYLOAD_ATTESTATION",
            "PAYLOAD_ATTESTATION_MESSAGE",
        ] {
            assert!(duties.contains(&must), "{must} is not a duty");
        }
        for background in [
            RequestType::RandaoReveal,
            RequestType::ValidatorRegistration,
            RequestType::VoluntaryExit,
            RequestType::Deposit,
        ] {
            assert_eq!(Priority::of(Some(background)), Priority::Background);
        }
        assert_eq!(Priority::of(None), Priority::Background);
    }

    #[test]
    fn the_type_is_read_up_to_itself_only() {
        let of = |body: &str| leading_request_type(body.as_bytes());
        assert_eq!(
            of(r#"{"fork_info":{"type":"BLOCK"},"type":"ATTESTATION","attestation":{}}"#),
            Some(RequestType::Attestation),
            "a nested `type` is not the request's"
        );
        assert_eq!(of(r#"{"type":"block_v2"}"#), Some(RequestType::BlockV2));
        assert_eq!(
            of(r#"{"type":"RANDAO_REVEAL","randao_reveal": not json at all"#),
            Some(RequestType::RandaoReveal),
            "what follows the type is not read"
        );
        assert_eq!(of(r#"{"type":"NOPE"}"#), None);
        assert_eq!(of(r#"{"type":1}"#), None);
        assert_eq!(of(r#"{"fork_info":{}}"#), None);
        assert_eq!(of("not json"), None);
        assert_eq!(of(r#"["type","ATTESTATION"]"#), None);
        assert_eq!(Priority::of_body(b"{}"), Priority::Background);
    }

    #[test]
    fn anonymous_clients_are_told_apart_by_address() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let anon = ClientIdentity::Anonymous;
        assert_eq!(
            ClientKey::of(&anon, Some(v4)),
            ClientKey::of(&anon, Some(mapped))
        );
        assert_ne!(
            ClientKey::of(&anon, Some(v4)),
            ClientKey::of(&anon, Some("10.0.0.2".parse().unwrap()))
        );
        let named = ClientIdentity::Token { name: "vc".into() };
        assert_eq!(
            ClientKey::of(&named, Some(v4)),
            ClientKey::of(&named, Some("10.0.0.9".parse().unwrap())),
            "a named client is one client from any address"
        );
    }
}
