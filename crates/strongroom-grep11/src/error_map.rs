//! The one table from service errors to GREP11 answers (gRPC code, CK_RV, retry), the
//! Grep11Error detail every refusal carries, and the refusals tonic makes before a handler
//! runs (undecodable or oversized messages).

use crate::*;
use strongroom_model::pkcs11::Ckr;

/// A gRPC status whose details carry one `grep11.Grep11Error` (as IBM's clients expect).
pub fn grep11_status(code: tonic::Code, ckr: Ckr, detail: &str, retry: bool) -> Status {
    let err = pb::Grep11Error {
        code: ckr.0,
        detail: detail.to_string(),
        retry,
    };
    let status = rpc::Status {
        code: code as i32,
        message: detail.to_string(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/grep11.Grep11Error".into(),
            value: err.encode_to_vec(),
        }],
    };
    Status::with_details(code, detail, status.encode_to_vec().into())
}

/// The `grep11.Grep11Error` carried by a status, if it has exactly one (what IBM's clients
/// read; anything else they report as CKR_GENERAL_ERROR).
pub fn grep11_error_of(status: &Status) -> Option<pb::Grep11Error> {
    let rich = rpc::Status::decode(status.details()).ok()?;
    match rich.details.as_slice() {
        [any] if any.type_url.ends_with("/grep11.Grep11Error") => {
            pb::Grep11Error::decode(any.value.as_slice()).ok()
        }
        _ => None,
    }
}

/// The one table from service errors to (gRPC code, CK_RV, retry).
pub fn ckr_of(kind: ErrorKind) -> (tonic::Code, Ckr, bool) {
    use tonic::Code;
    use ErrorKind::*;
    match kind {
        Unauthenticated | MalformedToken => (Code::Unauthenticated, ckr::USER_NOT_LOGGED_IN, false),
        Forbidden | InvalidInstanceHeader => {
            (Code::PermissionDenied, ckr::USER_NOT_LOGGED_IN, false)
        }
        BadBody | NoBody | CollectionTotalMismatch | InvalidField | InvalidQueryParam => {
            (Code::InvalidArgument, ckr::ARGUMENTS_BAD, false)
        }
        RateLimited => (Code::ResourceExhausted, ckr::DEVICE_ERROR, true),
        Pkcs11(ckr::IBM_WK_NOT_INITIALIZED) => {
            (Code::FailedPrecondition, ckr::IBM_WK_NOT_INITIALIZED, false)
        }
        Pkcs11(c @ (ckr::GENERAL_ERROR | ckr::DEVICE_ERROR)) => (Code::Internal, c, false),
        Pkcs11(c) => (Code::InvalidArgument, c, false),
        UnitNotInitialized | Unavailable => (Code::Unavailable, ckr::DEVICE_ERROR, true),
        Conflict => (Code::Aborted, ckr::GENERAL_ERROR, true),
        // Kinds of the key API and the administration that a GREP11 call does not meet
        // today; mapped so that a new use answers sensibly, and so that a new kind does
        // not compile until it is placed here.
        RootKeyRequired
        | PayloadRequired
        | IncorrectNonce
        | IncorrectNonceIv
        | SearchTooBroad
        | RegistrationRootRequired
        | KeyVersionInvalid
        | UnitCommandMalformed
        | KmipAttributeReadOnly => (Code::InvalidArgument, ckr::ARGUMENTS_BAD, false),
        KmipUsageMaskForbids => (
            Code::InvalidArgument,
            ckr::KEY_FUNCTION_NOT_PERMITTED,
            false,
        ),
        KmipSensitive | KmipNotExtractable => {
            (Code::InvalidArgument, ckr::KEY_UNEXTRACTABLE, false)
        }
        KmipUsageLimitReached => (
            Code::FailedPrecondition,
            ckr::KEY_FUNCTION_NOT_PERMITTED,
            false,
        ),
        Unsupported => (Code::InvalidArgument, ckr::MECHANISM_INVALID, false),
        CryptoFailure => (Code::InvalidArgument, ckr::ENCRYPTED_DATA_INVALID, false),
        KeyNotFound
        | InstanceNotFound
        | ApiKeyNotFound
        | ServiceIdNotFound
        | KeyRingNotFound
        | RegistrationNotFound
        | UnitNotFound
        | KmipAdapterNotFound
        | KmipCertificateNotFound
        | KmipObjectNotFound => (Code::NotFound, ckr::ARGUMENTS_BAD, false),
        KeyExpired
        | RestoreExpired
        | InvalidKeyState
        | TooEarly
        | RotationNotPermitted
        | KeyDeleted
        | AliasTaken
        | InstanceNotEmpty
        | AlreadyExists
        | KeyRingNotEmpty
        | AuthorizationsNotMet
        | NotDualAuth
        | ImportTokenExpired
        | CreateImportAccessDenied
        | RegistrationKeyInvalidState
        | ProtectedResource
        | PreventKeyDeletion
        | UnitReplay
        | UnitState
        | UnitRoster
        | KmipAdapterNotEmpty => (Code::FailedPrecondition, ckr::GENERAL_ERROR, false),
        // The instance's quota (of token objects, the only thing GREP11 stores).
        LimitReached => (Code::ResourceExhausted, ckr::DEVICE_MEMORY, false),
        UnitSignatures => (Code::PermissionDenied, ckr::GENERAL_ERROR, false),
        Internal => (Code::Internal, ckr::GENERAL_ERROR, false),
    }
}

pub(crate) fn status_of(e: ServiceError) -> Status {
    let (code, ckr, retry) = ckr_of(e.kind);
    grep11_status(code, ckr, &e.message, retry)
}

pub(crate) fn not_supported(rpc: &str) -> Status {
    grep11_status(
        tonic::Code::Unimplemented,
        ckr::FUNCTION_NOT_SUPPORTED,
        &format!("{rpc} is not implemented by this Strongroom release"),
        false,
    )
}

/// Largest gRPC message accepted or sent: room for the engine's 4 MiB data limit plus a
/// State, so that oversized data gets CKR_DATA_LEN_RANGE rather than a transport error.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024 + 64 * 1024;

/// CKR_IBM_GREP11_CANNOT_UNMARSHAL (`grep11.h`): the request is not a valid message.
pub const CKR_IBM_GREP11_CANNOT_UNMARSHAL: Ckr = Ckr(0x8004_0002);

/// A request that is not valid protobuf fails in tonic's codec, before any handler, as a
/// bare INTERNAL status; answer it like every other error: a Grep11Error with
/// CKR_IBM_GREP11_CANNOT_UNMARSHAL. A request over [`MAX_MESSAGE`] gets CKR_DATA_LEN_RANGE.
pub(crate) async fn unmarshal_errors(resp: axum::response::Response) -> axum::response::Response {
    if let Some(st) = Status::from_header_map(resp.headers()) {
        if st.code() == tonic::Code::Internal
            && st.details().is_empty()
            && st
                .message()
                .starts_with("failed to decode Protobuf message")
        {
            return grep11_status(
                tonic::Code::InvalidArgument,
                CKR_IBM_GREP11_CANNOT_UNMARSHAL,
                &format!(
                    "the request is not a valid protobuf message for this RPC ({})",
                    st.message()
                ),
                false,
            )
            .into_http();
        }
        // tonic's own size check ("decoded message length too large") also comes bare.
        if st.code() == tonic::Code::OutOfRange
            && st.details().is_empty()
            && st.message().contains("message length too large")
        {
            return grep11_status(
                tonic::Code::ResourceExhausted,
                ckr::DATA_LEN_RANGE,
                &format!("the request is larger than the {MAX_MESSAGE}-byte message limit"),
                false,
            )
            .into_http();
        }
    }
    resp
}

#[cfg(test)]
mod error_table_tests {
    use super::*;

    #[test]
    fn every_error_kind_has_a_grep11_answer() {
        for kind in ErrorKind::ALL {
            let (code, rv, retry) = ckr_of(kind);
            assert_ne!(code, tonic::Code::Ok, "{kind:?}");
            assert_ne!(rv, Ckr(0), "{kind:?} answers CKR_OK");
            let transient = matches!(
                kind,
                ErrorKind::Unavailable
                    | ErrorKind::UnitNotInitialized
                    | ErrorKind::RateLimited
                    | ErrorKind::Conflict
            );
            assert_eq!(
                retry, transient,
                "{kind:?}: only transient errors are retryable"
            );
        }
        assert_eq!(
            ckr_of(ErrorKind::Pkcs11(ckr::IBM_WK_NOT_INITIALIZED)).0,
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            ckr_of(ErrorKind::Pkcs11(ckr::SIGNATURE_INVALID)),
            (tonic::Code::InvalidArgument, ckr::SIGNATURE_INVALID, false)
        );
    }
}
