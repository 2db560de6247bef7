//! The service's error vocabulary. Each front end maps [`ErrorKind`] in one exhaustive
//! table; messages never carry secrets.

use strongroom_keystore::StoreError;

/// The class of a call's outcome in an audit record (audit format v1, docs/formats.md).
///
/// The recorded number follows HTTP's numbering, as the `reasonCode` of a CADF event does,
/// whatever interface the call came through: a GREP11 or KMIP refusal is classed like the
/// REST answer to the same condition. The REST adapter's table agrees with it (tested there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum StatusClass {
    /// The call succeeded.
    Success = 200,
    /// The request was malformed or named something invalid.
    Invalid = 400,
    /// No valid credentials, or the credentials do not grant the call.
    Unauthenticated = 401,
    /// Signatures of a crypto unit command are missing or wrong.
    Refused = 403,
    /// What the call names does not exist (for this caller).
    NotFound = 404,
    /// The current state does not allow the call.
    Conflict = 409,
    /// The key is deleted.
    Gone = 410,
    /// The request is well formed but names an unusable version or key.
    Unprocessable = 422,
    /// The instance's rate limit is reached.
    Throttled = 429,
    /// A bug or corrupted data.
    Internal = 500,
    /// The keystore, audit log or crypto unit is unavailable.
    Unavailable = 503,
}

impl StatusClass {
    /// The number recorded in the audit log.
    pub fn code(self) -> u16 {
        self as u16
    }
}

/// What went wrong, by condition. Stable: front ends and the audit log depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No credentials, bad signature, expired token, unknown API key.
    Unauthenticated,
    /// The bearer token cannot be parsed at all.
    MalformedToken,
    /// Authenticated, but the role or instance does not allow the action.
    Forbidden,
    /// The instance header is missing or not a UUID.
    InvalidInstanceHeader,
    /// The request body cannot be used (malformed JSON, wrong shape, extra fields).
    BadBody,
    /// The request body is missing where one is required.
    NoBody,
    /// The envelope's collectionTotal does not match its resources.
    CollectionTotalMismatch,
    /// A field has an invalid value.
    InvalidField,
    /// A query parameter is invalid.
    InvalidQueryParam,
    /// The key does not exist (or is purged, or is another instance's).
    KeyNotFound,
    /// The action needs a root key.
    RootKeyRequired,
    /// Rotating an imported key needs a payload.
    PayloadRequired,
    /// The key is expired.
    KeyExpired,
    /// The restore window (30 days) has passed.
    RestoreExpired,
    /// The key's state does not allow the action.
    InvalidKeyState,
    /// A cool-down has not passed yet (enable, restore, purge).
    TooEarly,
    /// The key was rotated less than an hour ago.
    RotationNotPermitted,
    /// The key is already deleted.
    KeyDeleted,
    /// An alias is already used in the instance.
    AliasTaken,
    /// The instance does not exist.
    InstanceNotFound,
    /// The instance still holds keys.
    InstanceNotEmpty,
    /// A name is already used (instance name).
    AlreadyExists,
    /// An API key does not exist.
    ApiKeyNotFound,
    /// A service ID does not exist.
    ServiceIdNotFound,
    /// The instance's crypto unit holds no valid master key.
    UnitNotInitialized,
    /// The key ring does not exist.
    KeyRingNotFound,
    /// The key ring still holds keys.
    KeyRingNotEmpty,
    /// Dual authorization: deleting needs a prior authorization by another user.
    AuthorizationsNotMet,
    /// The key has no dual authorization delete policy.
    NotDualAuth,
    /// A per-key or per-instance limit is reached (aliases, key rings).
    LimitReached,
    /// The import token is missing, expired or used up.
    ImportTokenExpired,
    /// Secure import: the decrypted nonce is not the import token's nonce.
    IncorrectNonce,
    /// Secure import: the nonce could not be decrypted with the key material and IV.
    IncorrectNonceIv,
    /// The instance's keyCreateImportAccess policy forbids this creation or import.
    CreateImportAccessDenied,
    /// A search would look at more than 5,000 keys.
    SearchTooBroad,
    /// The registration does not exist.
    RegistrationNotFound,
    /// Registrations need an active key.
    RegistrationKeyInvalidState,
    /// Registrations need a root key.
    RegistrationRootRequired,
    /// The key version named by a registration is not a version of the key.
    KeyVersionInvalid,
    /// The key has registrations; deleting it needs force.
    ProtectedResource,
    /// A registration forbids deleting the key, even with force.
    PreventKeyDeletion,
    /// The instance sends more requests than its rate limit allows; retry later.
    RateLimited,
    /// The crypto unit is not hosted by this node (or belongs to another instance).
    UnitNotFound,
    /// A crypto unit command cannot be decoded or has an invalid field.
    UnitCommandMalformed,
    /// A crypto unit command lacks signatures, or one does not verify.
    UnitSignatures,
    /// A crypto unit command's counter is stale (replayed) or it targets another unit/epoch.
    UnitReplay,
    /// The crypto unit's state does not allow the command.
    UnitState,
    /// A roster or transfer check of a crypto unit failed.
    UnitRoster,
    /// The KMIP adapter does not exist.
    KmipAdapterNotFound,
    /// The KMIP client certificate does not exist.
    KmipCertificateNotFound,
    /// The KMIP object does not exist (or is another instance's).
    KmipObjectNotFound,
    /// The KMIP adapter still holds objects that are not destroyed.
    KmipAdapterNotEmpty,
    /// A KMIP attribute that the server maintains cannot be set or removed.
    KmipAttributeReadOnly,
    /// The KMIP object's Cryptographic Usage Mask does not allow the operation.
    KmipUsageMaskForbids,
    /// The KMIP object's Usage Limits have too little left for the operation.
    KmipUsageLimitReached,
    /// The KMIP object is Sensitive: its value is never returned in the clear.
    KmipSensitive,
    /// The KMIP object is not Extractable: its value never leaves the server.
    KmipNotExtractable,
    /// A KMIP feature, format, algorithm or parameter this server does not offer.
    Unsupported,
    /// A cryptographic check failed (a tag, a padding): the input is not authentic.
    CryptoFailure,
    /// A PKCS#11 (GREP11) operation failed with this CK_RV.
    Pkcs11(strongroom_model::pkcs11::Ckr),
    /// A concurrent change won; retry.
    Conflict,
    /// The keystore or audit log is unavailable; retry later.
    Unavailable,
    /// A bug or corrupted data. Details are in the server log only.
    Internal,
}

impl ErrorKind {
    /// Every kind (for exhaustive mapping tests).
    pub const ALL: [ErrorKind; 63] = [
        ErrorKind::Unauthenticated,
        ErrorKind::MalformedToken,
        ErrorKind::Forbidden,
        ErrorKind::InvalidInstanceHeader,
        ErrorKind::BadBody,
        ErrorKind::NoBody,
        ErrorKind::CollectionTotalMismatch,
        ErrorKind::InvalidField,
        ErrorKind::InvalidQueryParam,
        ErrorKind::KeyNotFound,
        ErrorKind::RootKeyRequired,
        ErrorKind::PayloadRequired,
        ErrorKind::KeyExpired,
        ErrorKind::RestoreExpired,
        ErrorKind::InvalidKeyState,
        ErrorKind::TooEarly,
        ErrorKind::RotationNotPermitted,
        ErrorKind::KeyDeleted,
        ErrorKind::AliasTaken,
        ErrorKind::InstanceNotFound,
        ErrorKind::InstanceNotEmpty,
        ErrorKind::AlreadyExists,
        ErrorKind::ApiKeyNotFound,
        ErrorKind::ServiceIdNotFound,
        ErrorKind::UnitNotInitialized,
        ErrorKind::KeyRingNotFound,
        ErrorKind::KeyRingNotEmpty,
        ErrorKind::AuthorizationsNotMet,
        ErrorKind::NotDualAuth,
        ErrorKind::LimitReached,
        ErrorKind::ImportTokenExpired,
        ErrorKind::IncorrectNonce,
        ErrorKind::IncorrectNonceIv,
        ErrorKind::CreateImportAccessDenied,
        ErrorKind::SearchTooBroad,
        ErrorKind::RegistrationNotFound,
        ErrorKind::RegistrationKeyInvalidState,
        ErrorKind::RegistrationRootRequired,
        ErrorKind::KeyVersionInvalid,
        ErrorKind::ProtectedResource,
        ErrorKind::PreventKeyDeletion,
        ErrorKind::RateLimited,
        ErrorKind::UnitNotFound,
        ErrorKind::UnitCommandMalformed,
        ErrorKind::UnitSignatures,
        ErrorKind::UnitReplay,
        ErrorKind::UnitState,
        ErrorKind::UnitRoster,
        ErrorKind::KmipAdapterNotFound,
        ErrorKind::KmipCertificateNotFound,
        ErrorKind::KmipObjectNotFound,
        ErrorKind::KmipAdapterNotEmpty,
        ErrorKind::KmipAttributeReadOnly,
        ErrorKind::KmipUsageMaskForbids,
        ErrorKind::KmipUsageLimitReached,
        ErrorKind::KmipSensitive,
        ErrorKind::KmipNotExtractable,
        ErrorKind::Unsupported,
        ErrorKind::CryptoFailure,
        ErrorKind::Pkcs11(strongroom_model::pkcs11::ckr::GENERAL_ERROR),
        ErrorKind::Conflict,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// A stable code for the audit log and logs.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::MalformedToken => "malformed_token",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::InvalidInstanceHeader => "invalid_instance_header",
            ErrorKind::BadBody => "bad_body",
            ErrorKind::NoBody => "no_body",
            ErrorKind::CollectionTotalMismatch => "collection_total_mismatch",
            ErrorKind::InvalidField => "invalid_field",
            ErrorKind::InvalidQueryParam => "invalid_query_param",
            ErrorKind::KeyNotFound => "key_not_found",
            ErrorKind::RootKeyRequired => "root_key_required",
            ErrorKind::PayloadRequired => "payload_required",
            ErrorKind::KeyExpired => "key_expired",
            ErrorKind::RestoreExpired => "restore_expired",
            ErrorKind::InvalidKeyState => "invalid_key_state",
            ErrorKind::TooEarly => "too_early",
            ErrorKind::RotationNotPermitted => "rotation_not_permitted",
            ErrorKind::KeyDeleted => "key_deleted",
            ErrorKind::AliasTaken => "alias_taken",
            ErrorKind::InstanceNotFound => "instance_not_found",
            ErrorKind::InstanceNotEmpty => "instance_not_empty",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::ApiKeyNotFound => "api_key_not_found",
            ErrorKind::ServiceIdNotFound => "service_id_not_found",
            ErrorKind::UnitNotInitialized => "unit_not_initialized",
            ErrorKind::KeyRingNotFound => "key_ring_not_found",
            ErrorKind::KeyRingNotEmpty => "key_ring_not_empty",
            ErrorKind::AuthorizationsNotMet => "authorizations_not_met",
            ErrorKind::NotDualAuth => "not_dual_auth",
            ErrorKind::LimitReached => "limit_reached",
            ErrorKind::ImportTokenExpired => "import_token_expired",
            ErrorKind::IncorrectNonce => "incorrect_nonce",
            ErrorKind::IncorrectNonceIv => "incorrect_nonce_iv",
            ErrorKind::CreateImportAccessDenied => "create_import_access_denied",
            ErrorKind::SearchTooBroad => "search_too_broad",
            ErrorKind::RegistrationNotFound => "registration_not_found",
            ErrorKind::RegistrationKeyInvalidState => "registration_key_invalid_state",
            ErrorKind::RegistrationRootRequired => "registration_root_required",
            ErrorKind::KeyVersionInvalid => "key_version_invalid",
            ErrorKind::ProtectedResource => "protected_resource",
            ErrorKind::PreventKeyDeletion => "prevent_key_deletion",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::UnitNotFound => "unit_not_found",
            ErrorKind::UnitCommandMalformed => "unit_command_malformed",
            ErrorKind::UnitSignatures => "unit_signatures",
            ErrorKind::UnitReplay => "unit_replay",
            ErrorKind::UnitState => "unit_state",
            ErrorKind::UnitRoster => "unit_roster",
            ErrorKind::KmipAdapterNotFound => "kmip_adapter_not_found",
            ErrorKind::KmipCertificateNotFound => "kmip_certificate_not_found",
            ErrorKind::KmipObjectNotFound => "kmip_object_not_found",
            ErrorKind::KmipAdapterNotEmpty => "kmip_adapter_not_empty",
            ErrorKind::KmipAttributeReadOnly => "kmip_attribute_read_only",
            ErrorKind::KmipUsageMaskForbids => "kmip_usage_mask_forbids",
            ErrorKind::KmipUsageLimitReached => "kmip_usage_limit_reached",
            ErrorKind::KmipSensitive => "kmip_sensitive",
            ErrorKind::KmipNotExtractable => "kmip_not_extractable",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::CryptoFailure => "crypto_failure",
            ErrorKind::Pkcs11(_) => "pkcs11",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// The class of outcome the audit log records for this kind (see [`StatusClass`]).
    pub fn status_class(self) -> StatusClass {
        use ErrorKind::*;
        use StatusClass as S;
        match self {
            Unauthenticated | Forbidden => S::Unauthenticated,
            MalformedToken
            | InvalidInstanceHeader
            | BadBody
            | NoBody
            | CollectionTotalMismatch
            | InvalidField
            | InvalidQueryParam
            | RootKeyRequired
            | PayloadRequired
            | KeyExpired
            | RestoreExpired
            | IncorrectNonce
            | IncorrectNonceIv
            | SearchTooBroad
            | KmipAttributeReadOnly
            | KmipUsageMaskForbids
            | Unsupported
            | CryptoFailure
            | UnitCommandMalformed
            | Pkcs11(_) => S::Invalid,
            KeyNotFound
            | InstanceNotFound
            | ApiKeyNotFound
            | ServiceIdNotFound
            | KeyRingNotFound
            | RegistrationNotFound
            | KmipAdapterNotFound
            | KmipCertificateNotFound
            | KmipObjectNotFound
            | UnitNotFound => S::NotFound,
            RegistrationKeyInvalidState | RegistrationRootRequired | KeyVersionInvalid => {
                S::Unprocessable
            }
            InvalidKeyState
            | TooEarly
            | RotationNotPermitted
            | AliasTaken
            | InstanceNotEmpty
            | AlreadyExists
            | Conflict
            | KeyRingNotEmpty
            | AuthorizationsNotMet
            | NotDualAuth
            | LimitReached
            | ImportTokenExpired
            | CreateImportAccessDenied
            | ProtectedResource
            | PreventKeyDeletion
            | KmipAdapterNotEmpty
            | KmipUsageLimitReached
            | KmipSensitive
            | KmipNotExtractable
            | UnitReplay
            | UnitState
            | UnitRoster => S::Conflict,
            KeyDeleted => S::Gone,
            RateLimited => S::Throttled,
            UnitSignatures => S::Refused,
            UnitNotInitialized | Unavailable => S::Unavailable,
            Internal => S::Internal,
        }
    }
}

/// A service error: a kind, a human message safe to show the caller, and for field errors
/// the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    /// The condition.
    pub kind: ErrorKind,
    /// What to tell the caller (never secrets).
    pub message: String,
    /// The offending field, for field errors.
    pub field: Option<&'static str>,
}

impl ServiceError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ServiceError {
            kind,
            message: message.into(),
            field: None,
        }
    }
    /// A field error.
    pub fn field(kind: ErrorKind, field: &'static str, message: impl Into<String>) -> Self {
        ServiceError {
            kind,
            message: message.into(),
            field: Some(field),
        }
    }
}

/// Result of service calls.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ServiceError::new(ErrorKind::KeyNotFound, "key does not exist"),
            StoreError::Conflict => ServiceError::new(
                ErrorKind::Conflict,
                "the key was changed concurrently; retry",
            ),
            StoreError::AlreadyExists(strongroom_keystore::Unique::Alias) => ServiceError::field(
                ErrorKind::AliasTaken,
                "aliases",
                "an alias is already used by another key in this instance",
            ),
            StoreError::AlreadyExists(what) => {
                ServiceError::new(ErrorKind::AlreadyExists, format!("{what} already exists"))
            }
            StoreError::InstanceNotEmpty(n) => ServiceError::new(
                ErrorKind::InstanceNotEmpty,
                format!("instance still holds {n} keys; delete and purge them first"),
            ),
            StoreError::QuotaExceeded(max) => ServiceError::new(
                ErrorKind::LimitReached,
                format!("The instance holds {max} keys, the most this server allows; purge keys or raise --max-keys-per-instance"),
            ),
            StoreError::AdapterNotEmpty(n) => ServiceError::new(
                ErrorKind::KmipAdapterNotEmpty,
                format!("The KMIP adapter still holds {n} KMIP object(s) that are not destroyed; destroy them first"),
            ),
            StoreError::RingNotEmpty(n) => ServiceError::new(
                ErrorKind::KeyRingNotEmpty,
                format!("The specified key ring contains {n} key(s); move or delete them first (destroyed keys move to 'default' with force=true)"),
            ),
            StoreError::Corrupt(what) => {
                tracing::error!(%what, "keystore data is corrupt");
                ServiceError::new(ErrorKind::Internal, "stored key metadata is corrupt")
            }
            e @ (StoreError::Undecodable(_) | StoreError::Unreadable { .. }) => {
                let source = std::error::Error::source(&e).map(|s| s.to_string());
                tracing::error!(error = %e, source = ?source, "keystore data cannot be read");
                ServiceError::new(ErrorKind::Internal, "stored key metadata is corrupt")
            }
            StoreError::Unavailable(source) => {
                tracing::error!(error = %source, "keystore unavailable");
                ServiceError::new(
                    ErrorKind::Unavailable,
                    "the keystore is unavailable; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "keystore error");
                ServiceError::new(ErrorKind::Internal, "internal keystore error")
            }
        }
    }
}
