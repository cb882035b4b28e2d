//! How a sign request ended: the one vocabulary that the HTTP layer, the audit log and
//! the metrics share. A leaf: it imports nothing else of the crate.

/// The `type` label of a request whose type could not be parsed.
pub const UNKNOWN_REQUEST_TYPE: &str = "UNKNOWN";

/// How a sign request ended; becomes the `outcome` (and `reason`) label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Signed and answered with a signature (HTTP 200).
    Signed,
    /// Refused by slashing protection (HTTP 412); the reason label, e.g. `"double_vote"`.
    SlashingRefused(&'static str),
    /// The request was malformed (HTTP 400).
    BadRequest,
    /// No key with the requested public key is loaded (HTTP 404).
    UnknownKey,
    /// The client may not use this key, or is not authenticated (HTTP 401/403).
    Forbidden,
    /// An internal error (HTTP 5xx).
    Error,
}

impl Outcome {
    /// Every outcome without a reason, in label order; refusals carry a reason and are not
    /// listed.
    pub const WITHOUT_REASON: [Outcome; 5] = [
        Outcome::Signed,
        Outcome::BadRequest,
        Outcome::UnknownKey,
        Outcome::Forbidden,
        Outcome::Error,
    ];

    /// The `outcome` label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Signed => "signed",
            Outcome::SlashingRefused(_) => "slashing_refused",
            Outcome::BadRequest => "bad_request",
            Outcome::UnknownKey => "unknown_key",
            Outcome::Forbidden => "forbidden",
            Outcome::Error => "error",
        }
    }

    /// The `reason` label value: the refusal reason, or empty (an absent label to Prometheus).
    pub fn reason(&self) -> &'static str {
        match self {
            Outcome::SlashingRefused(reason) => reason,
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_reasons() {
        assert_eq!(Outcome::SlashingRefused("r").as_str(), "slashing_refused");
        assert_eq!(Outcome::SlashingRefused("r").reason(), "r");
        assert_eq!(Outcome::Signed.reason(), "");
        assert!(!Outcome::WITHOUT_REASON.contains(&Outcome::SlashingRefused("r")));
    }
}
