//! Helpers shared by the crate's unit tests.

use crate::{Approval, Epoch, SignCheckError, Subject};

/// The attestation `s -> t`.
pub(crate) fn att(s: u64, t: u64) -> Subject {
    Subject::Attestation {
        source: Epoch(s),
        target: Epoch(t),
    }
}

/// A check's answer as a label: `ok`, `repeat` or the refusal's reason; a database error
/// fails the test.
pub(crate) fn outcome(answer: Result<Approval, SignCheckError>) -> &'static str {
    match answer {
        Ok(Approval::Recorded) => "ok",
        Ok(Approval::Repeat) => "repeat",
        Err(SignCheckError::Refused(refusal)) => refusal.reason(),
        Err(SignCheckError::Db(e)) => panic!("db error: {e}"),
    }
}
