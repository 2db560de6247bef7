//! The one table that turns service errors into Key Protect error envelopes.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strongroom_service::{ErrorKind, ServiceError};

/// HTTP status and Key Protect reason code of every error kind. Exhaustive on purpose: a
/// new kind does not compile until it is mapped here.
pub fn status_and_code(kind: ErrorKind) -> (StatusCode, &'static str) {
    use ErrorKind::*;
    match kind {
        Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED_ERR"),
        MalformedToken => (StatusCode::BAD_REQUEST, "BEARER_SUB_EXTRACTION_ERR"),
        Forbidden => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED_ERR"),
        InvalidInstanceHeader => (StatusCode::BAD_REQUEST, "INVALID_FIELD_ERR"),
        BadBody => (StatusCode::BAD_REQUEST, "BAD_BODY_ERR"),
        NoBody => (StatusCode::BAD_REQUEST, "NO_BODY_ERR"),
        CollectionTotalMismatch => (StatusCode::BAD_REQUEST, "COLLECTION_TOTAL_MISMATCH_ERR"),
        InvalidField => (StatusCode::BAD_REQUEST, "INVALID_FIELD_ERR"),
        InvalidQueryParam => (StatusCode::BAD_REQUEST, "INVALID_QUERY_PARAM_ERR"),
        KeyNotFound => (StatusCode::NOT_FOUND, "KEY_NOT_FOUND_ERR"),
        RootKeyRequired => (StatusCode::BAD_REQUEST, "KEY_ROOT_REQ_ERR"),
        PayloadRequired => (StatusCode::BAD_REQUEST, "KEY_PAYLOAD_REQ_ERR"),
        KeyExpired => (StatusCode::BAD_REQUEST, "KEY_EXPIRED_ERR"),
        RestoreExpired => (StatusCode::BAD_REQUEST, "KEY_RESTORE_EXPIRED"),
        InvalidKeyState => (StatusCode::CONFLICT, "KEY_ACTION_INVALID_STATE_ERR"),
        TooEarly => (StatusCode::CONFLICT, "REQ_TOO_EARLY_ERR"),
        RotationNotPermitted => (StatusCode::CONFLICT, "KEY_ROTATION_NOT_PERMITTED"),
        KeyDeleted => (StatusCode::GONE, "KEY_DELETED_ERR"),
        AliasTaken => (StatusCode::CONFLICT, "KEY_ALIAS_NOT_UNIQUE_ERR"),
        InstanceNotFound => (StatusCode::NOT_FOUND, "INSTANCE_NOT_FOUND_ERR"),
        InstanceNotEmpty => (StatusCode::CONFLICT, "INSTANCE_NOT_EMPTY_ERR"),
        AlreadyExists => (StatusCode::CONFLICT, "RESOURCE_ALREADY_EXISTS_ERR"),
        ApiKeyNotFound => (StatusCode::NOT_FOUND, "API_KEY_NOT_FOUND_ERR"),
        ServiceIdNotFound => (StatusCode::NOT_FOUND, "SERVICE_ID_NOT_FOUND_ERR"),
        UnitNotInitialized => (
            StatusCode::SERVICE_UNAVAILABLE,
            "CRYPTO_UNIT_NOT_INITIALIZED_ERR",
        ),
        KeyRingNotFound => (StatusCode::NOT_FOUND, "KEY_RING_NOT_FOUND_ERR"),
        KeyRingNotEmpty => (StatusCode::CONFLICT, "KEY_RING_NOT_EMPTY_ERR"),
        AuthorizationsNotMet => (StatusCode::CONFLICT, "AUTHORIZATIONS_NOT_MET"),
        NotDualAuth => (StatusCode::CONFLICT, "NOT_DUAL_AUTH_ERR"),
        LimitReached => (StatusCode::CONFLICT, "QUOTA_EXCEEDED_ERR"),
        ImportTokenExpired => (StatusCode::CONFLICT, "IMPORT_TOKEN_EXPIRED_ERR"),
        IncorrectNonce => (StatusCode::BAD_REQUEST, "INCORRECT_NONCE_ERR"),
        IncorrectNonceIv => (StatusCode::BAD_REQUEST, "INCORRECT_NONCE_IV_ERR"),
        CreateImportAccessDenied => (StatusCode::CONFLICT, "KEY_CREATE_IMPORT_ACCESS_ERR"),
        SearchTooBroad => (StatusCode::BAD_REQUEST, "KEY_SEARCH_TOO_BROAD"),
        RegistrationNotFound => (StatusCode::NOT_FOUND, "REGISTRATION_NOT_FOUND_ERR"),
        RegistrationKeyInvalidState => (StatusCode::UNPROCESSABLE_ENTITY, "KEY_INVALID_STATE_ERR"),
        RegistrationRootRequired => (StatusCode::UNPROCESSABLE_ENTITY, "KEY_ROOT_REQ_REG_ERR"),
        KeyVersionInvalid => (StatusCode::UNPROCESSABLE_ENTITY, "KEY_VERSION_INVALID"),
        ProtectedResource => (StatusCode::CONFLICT, "PROTECTED_RESOURCE_ERR"),
        PreventKeyDeletion => (StatusCode::CONFLICT, "PREV_KEY_DEL_ERR"),
        RateLimited => (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS_ERR"),
        Conflict => (StatusCode::CONFLICT, "CONCURRENT_MODIFICATION_ERR"),
        UnitNotFound => (StatusCode::NOT_FOUND, "CRYPTO_UNIT_NOT_FOUND_ERR"),
        UnitCommandMalformed => (StatusCode::BAD_REQUEST, "CRYPTO_UNIT_COMMAND_MALFORMED_ERR"),
        UnitSignatures => (StatusCode::FORBIDDEN, "CRYPTO_UNIT_SIGNATURES_ERR"),
        UnitReplay => (StatusCode::CONFLICT, "CRYPTO_UNIT_REPLAY_ERR"),
        UnitState => (StatusCode::CONFLICT, "CRYPTO_UNIT_STATE_ERR"),
        UnitRoster => (StatusCode::CONFLICT, "CRYPTO_UNIT_ROSTER_ERR"),
        KmipAdapterNotFound => (StatusCode::NOT_FOUND, "KMIP_ADAPTER_NOT_FOUND_ERR"),
        KmipCertificateNotFound => (StatusCode::NOT_FOUND, "KMIP_CERT_NOT_FOUND_ERR"),
        KmipObjectNotFound => (StatusCode::NOT_FOUND, "KMIP_OBJECT_NOT_FOUND_ERR"),
        KmipAdapterNotEmpty => (StatusCode::CONFLICT, "KMIP_ADAPTER_HAS_OBJECTS_ERR"),
        KmipAttributeReadOnly => (StatusCode::BAD_REQUEST, "INVALID_FIELD_ERR"),
        KmipUsageMaskForbids => (StatusCode::BAD_REQUEST, "BAD_REQUEST_ERR"),
        KmipUsageLimitReached => (StatusCode::CONFLICT, "QUOTA_EXCEEDED_ERR"),
        KmipSensitive | KmipNotExtractable => {
            (StatusCode::CONFLICT, "KEY_ACTION_INVALID_STATE_ERR")
        }
        Unsupported => (StatusCode::BAD_REQUEST, "FEATURE_RESTRICTED_ERR"),
        CryptoFailure => (StatusCode::BAD_REQUEST, "BAD_REQUEST_ERR"),
        Pkcs11(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST_ERR"),
        Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE_ERR"),
        Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERR"),
    }
}

/// An error response in the Key Protect envelope. `what` completes "… could not be …",
/// e.g. "Key could not be wrapped".
pub struct ApiError {
    pub err: ServiceError,
    pub what: &'static str,
}

impl ApiError {
    pub fn new(err: ServiceError, what: &'static str) -> Self {
        ApiError { err, what }
    }
}

pub fn envelope(err: &ServiceError, what: &str) -> (StatusCode, serde_json::Value) {
    let (status, code) = status_and_code(err.kind);
    let target = if let Some(field) = err.field {
        Some(json!({"type": "field", "name": field}))
    } else if err.kind == ErrorKind::InvalidInstanceHeader {
        Some(json!({"type": "header", "name": "Bluemix-Instance"}))
    } else {
        None
    };
    (
        status,
        envelope_of(status, code, &err.message, target, what),
    )
}

/// Refusals the adapter decides before a request reaches the service: routing and URL
/// decoding. They have no service error kind, and answer in the same envelope.
#[derive(Debug)]
pub enum RequestRefusal {
    /// The path exists, the method does not.
    MethodNotAllowed(http::Method),
    /// A path segment is not valid percent-encoded UTF-8, or not of the expected shape.
    BadPath(String),
}

impl RequestRefusal {
    /// HTTP status and reason code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            RequestRefusal::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED_ERR")
            }
            RequestRefusal::BadPath(_) => (StatusCode::BAD_REQUEST, "INVALID_PATH_PARAM_ERR"),
        }
    }
}

impl IntoResponse for RequestRefusal {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (message, what) = match &self {
            RequestRefusal::MethodNotAllowed(m) => (
                format!("method {m} is not allowed on this endpoint"),
                "Request could not be processed",
            ),
            RequestRefusal::BadPath(detail) => (
                format!("The path is not valid: {detail}"),
                "Request could not be processed",
            ),
        };
        json_response(status, envelope_of(status, code, &message, None, what))
    }
}

fn envelope_of(
    status: StatusCode,
    code: &str,
    message: &str,
    target: Option<serde_json::Value>,
    what: &str,
) -> serde_json::Value {
    let phrase = status.canonical_reason().unwrap_or("Error");
    let mut reason = json!({
        "code": code,
        "message": message,
        "status": status.as_u16(),
        "moreInfo": "https://cloud.ibm.com/apidocs/key-protect",
    });
    if let Some(t) = target {
        reason["target"] = t;
    }
    json!({
        "metadata": {"collectionType": "application/vnd.ibm.kms.error+json", "collectionTotal": 1},
        "resources": [{
            "errorMsg": format!("{phrase}: {what}: Please see `reasons` for more details ({code})"),
            "reasons": [reason],
        }],
    })
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = envelope(&self.err, self.what);
        json_response(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_a_client_or_server_status() {
        for kind in ErrorKind::ALL {
            let (status, code) = status_and_code(kind);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{kind:?}"
            );
            assert!(
                code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{code}"
            );
            assert_eq!(
                status.as_u16(),
                kind.status_class().code(),
                "{kind:?} audit status agrees"
            );
        }
    }

    #[test]
    fn envelope_has_the_key_protect_shape() {
        let e = ServiceError::field(ErrorKind::InvalidField, "plaintext", "bad base64");
        let (status, body) = envelope(&e, "Key could not be wrapped");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["metadata"]["collectionType"],
            "application/vnd.ibm.kms.error+json"
        );
        let r = &body["resources"][0];
        assert_eq!(r["errorMsg"], "Bad Request: Key could not be wrapped: Please see `reasons` for more details (INVALID_FIELD_ERR)");
        assert_eq!(r["reasons"][0]["code"], "INVALID_FIELD_ERR");
        assert_eq!(r["reasons"][0]["status"], 400);
        assert_eq!(r["reasons"][0]["target"]["name"], "plaintext");
    }
}
