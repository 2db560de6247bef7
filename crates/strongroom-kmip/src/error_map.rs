//! The one table that turns service errors into KMIP Result Reasons, and the failures
//! this front end decides itself (a message it cannot read, a missing field).

use strongroom_service::{ErrorKind, ServiceError};

use crate::codes::reason;

/// A failed batch item: its Result Reason and a message safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipError {
    /// KMIP Result Reason.
    pub reason: u32,
    /// Result Message.
    pub message: String,
}

impl KmipError {
    /// A failure of `reason`.
    pub fn new(reason: u32, message: impl Into<String>) -> KmipError {
        KmipError {
            reason,
            message: message.into(),
        }
    }
    /// A required field is absent.
    pub fn missing(what: &str) -> KmipError {
        KmipError::new(reason::MISSING_DATA, format!("the request lacks {what}"))
    }
    /// A field has the wrong type or value.
    pub fn invalid(what: &str) -> KmipError {
        KmipError::new(reason::INVALID_FIELD, format!("invalid {what}"))
    }
    /// Something this server does not do.
    pub fn unsupported(what: impl Into<String>) -> KmipError {
        KmipError::new(reason::FEATURE_NOT_SUPPORTED, what)
    }
}

/// The Result Reason of every service error kind. Exhaustive on purpose: a new kind does
/// not compile until it is placed here. `v2` picks KMIP 2.x's finer reasons.
pub fn reason_of(kind: ErrorKind, v2: bool) -> u32 {
    use ErrorKind::*;
    match kind {
        Unauthenticated | MalformedToken => reason::AUTHENTICATION_NOT_SUCCESSFUL,
        Forbidden | InvalidInstanceHeader | CreateImportAccessDenied => reason::PERMISSION_DENIED,
        BadBody
        | NoBody
        | CollectionTotalMismatch
        | InvalidField
        | InvalidQueryParam
        | PayloadRequired
        | IncorrectNonce
        | IncorrectNonceIv
        | SearchTooBroad
        | KeyVersionInvalid
        | UnitCommandMalformed => reason::INVALID_FIELD,
        KmipObjectNotFound
        | KeyNotFound
        | InstanceNotFound
        | ApiKeyNotFound
        | ServiceIdNotFound
        | KeyRingNotFound
        | RegistrationNotFound
        | UnitNotFound
        | KmipAdapterNotFound
        | KmipCertificateNotFound => reason::ITEM_NOT_FOUND,
        InvalidKeyState
        | KeyExpired
        | RestoreExpired
        | KeyDeleted
        | RegistrationKeyInvalidState => {
            if v2 {
                reason::WRONG_KEY_LIFECYCLE_STATE
            } else {
                reason::ILLEGAL_OPERATION
            }
        }
        KmipAttributeReadOnly => {
            if v2 {
                reason::READ_ONLY_ATTRIBUTE
            } else {
                reason::PERMISSION_DENIED
            }
        }
        KmipUsageMaskForbids => {
            if v2 {
                reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK
            } else {
                reason::PERMISSION_DENIED
            }
        }
        KmipUsageLimitReached => {
            if v2 {
                reason::USAGE_LIMIT_EXCEEDED
            } else {
                reason::PERMISSION_DENIED
            }
        }
        KmipSensitive => reason::SENSITIVE,
        KmipNotExtractable => reason::NOT_EXTRACTABLE,
        AlreadyExists | AliasTaken => reason::OBJECT_ALREADY_EXISTS,
        Unsupported | RootKeyRequired | RegistrationRootRequired => reason::FEATURE_NOT_SUPPORTED,
        CryptoFailure => reason::CRYPTOGRAPHIC_FAILURE,
        LimitReached | RateLimited => {
            if v2 {
                reason::SERVER_LIMIT_EXCEEDED
            } else {
                reason::GENERAL_FAILURE
            }
        }
        TooEarly | RotationNotPermitted | InstanceNotEmpty | KeyRingNotEmpty
        | AuthorizationsNotMet | NotDualAuth | ImportTokenExpired | ProtectedResource
        | PreventKeyDeletion | KmipAdapterNotEmpty | UnitReplay | UnitState | UnitRoster
        | UnitSignatures => reason::ILLEGAL_OPERATION,
        Pkcs11(_) => reason::INVALID_FIELD,
        UnitNotInitialized | Unavailable | Conflict | Internal => reason::GENERAL_FAILURE,
    }
}

/// A service error as a KMIP failure.
pub fn from_service(e: &ServiceError, v2: bool) -> KmipError {
    KmipError::new(reason_of(e.kind, v2), e.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_a_kmip_reason() {
        for kind in ErrorKind::ALL {
            for v2 in [false, true] {
                let r = reason_of(kind, v2);
                assert!(
                    r == reason::GENERAL_FAILURE || (1..=0x47).contains(&r),
                    "{kind:?}"
                );
                if !v2 {
                    // KMIP 1.x defines reasons 1 to 0x18 and General Failure only.
                    assert!(r <= 0x18 || r == reason::GENERAL_FAILURE, "{kind:?} in 1.x");
                }
            }
        }
        assert_eq!(
            reason_of(ErrorKind::KmipObjectNotFound, false),
            reason::ITEM_NOT_FOUND
        );
        assert_eq!(
            reason_of(ErrorKind::InvalidKeyState, true),
            reason::WRONG_KEY_LIFECYCLE_STATE
        );
        assert_eq!(
            reason_of(ErrorKind::InvalidKeyState, false),
            reason::ILLEGAL_OPERATION
        );
        assert_eq!(
            reason_of(ErrorKind::Unauthenticated, false),
            reason::AUTHENTICATION_NOT_SUCCESSFUL
        );
    }
}
