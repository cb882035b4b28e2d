//! API errors: every failure is a status code and a JSON body `{"message": "..."}` that
//! says what was wrong. Messages never contain secrets.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::signer::queue::{Shed, RETRY_AFTER};
use crate::signer::{BodyError, SignError};

/// A request that was not signed, and why.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed body, unknown type, missing payload, bad hex, root mismatch (400).
    #[error("{0}")]
    BadRequest(String),
    /// The key is not loaded here, or no such route (404).
    #[error("{0}")]
    NotFound(String),
    /// Refused by slashing protection or because it is not configured (412).
    #[error("{message}")]
    Refused {
        /// Stable snake_case reason, for metrics labels.
        reason: &'static str,
        /// What the operator and the client read.
        message: String,
    },
    /// No or malformed credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that may not do this: wrong token, key outside the client's
    /// scope, Host not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Keys are still loading and this one is not loaded yet (503): ask again shortly.
    #[error("{0}")]
    Unavailable(String),
    /// Overloaded: the signing queue shed the request, or the slashing database's queue
    /// is full. Nothing was recorded or signed; ask again after `Retry-After` (503, never
    /// 412, which means a slashing refusal).
    #[error("{0}")]
    Overloaded(String),
    /// The route exists but not for this method (405, with an `Allow` header).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body is larger than the configured limit (413).
    #[error("request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// Database unusable, signing pool gone, HSM failure: nothing was signed (500).
    #[error("{0}")]
    Internal(String),
    /// A key's remote signer failed or returned a signature that does not verify: nothing
    /// was released (502).
    #[error("{0}")]
    BadGateway(String),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Refused { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl From<SignError> for ApiError {
    /// The status and message of each reason a request was not signed.
    fn from(error: SignError) -> Self {
        let message = error.to_string();
        match error {
            SignError::Body(BodyError::TooLarge(limit)) => ApiError::TooLarge(limit),
            SignError::Body(BodyError::Unreadable(_))
            | SignError::BadRequest(_)
            | SignError::WrongGenesis(_)
            | SignError::FutureDuty(_) => ApiError::BadRequest(message),
            SignError::UnknownKey(_) => ApiError::NotFound(message),
            SignError::StillLoading { .. } => ApiError::Unavailable(message),
            SignError::OutOfScope(_) | SignError::TypeNotAllowed(_) => ApiError::Forbidden(message),
            SignError::Refused { reason, message } => ApiError::Refused { reason, message },
            SignError::Backend(_) => ApiError::BadGateway(message),
            // Refused before the record was queued: safe to retry.
            SignError::Overloaded(_) => ApiError::Overloaded(message),
            SignError::Database(_) | SignError::Audit(_) | SignError::PoolClosed => {
                ApiError::Internal(message)
            }
        }
    }
}

impl From<Shed> for ApiError {
    fn from(shed: Shed) -> Self {
        ApiError::Overloaded(shed.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.to_string() });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let ApiError::Overloaded(_) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER.as_secs().into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_is_503_with_retry_after_never_412() {
        let queue_full = SignError::from(slashing_db::DbError::QueueFull { capacity: 1 });
        for error in [ApiError::from(queue_full), ApiError::from(Shed::QueueFull)] {
            let response = error.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        }
    }
}
