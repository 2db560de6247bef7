//! KMIP enumeration values this front end reads or writes (the OASIS specifications'
//! numbers, as data).

/// Operation values.
pub mod op {
    pub const CREATE: u32 = 0x01;
    pub const CREATE_KEY_PAIR: u32 = 0x02;
    pub const REGISTER: u32 = 0x03;
    pub const REKEY: u32 = 0x04;
    pub const LOCATE: u32 = 0x08;
    pub const GET: u32 = 0x0A;
    pub const GET_ATTRIBUTES: u32 = 0x0B;
    pub const GET_ATTRIBUTE_LIST: u32 = 0x0C;
    pub const ADD_ATTRIBUTE: u32 = 0x0D;
    pub const MODIFY_ATTRIBUTE: u32 = 0x0E;
    pub const DELETE_ATTRIBUTE: u32 = 0x0F;
    pub const GET_USAGE_ALLOCATION: u32 = 0x10;
    pub const ACTIVATE: u32 = 0x12;
    pub const REVOKE: u32 = 0x13;
    pub const DESTROY: u32 = 0x14;
    pub const QUERY: u32 = 0x18;
    pub const DISCOVER_VERSIONS: u32 = 0x1E;
    pub const ENCRYPT: u32 = 0x1F;
    pub const DECRYPT: u32 = 0x20;
    pub const SIGN: u32 = 0x21;
    pub const SIGNATURE_VERIFY: u32 = 0x22;
    pub const MAC: u32 = 0x23;
    pub const SET_ATTRIBUTE: u32 = 0x31;

    /// Every operation this server answers, in the order Query lists them.
    pub const SUPPORTED: &[u32] = &[
        CREATE,
        CREATE_KEY_PAIR,
        REGISTER,
        REKEY,
        LOCATE,
        GET,
        GET_ATTRIBUTES,
        GET_ATTRIBUTE_LIST,
        ADD_ATTRIBUTE,
        MODIFY_ATTRIBUTE,
        DELETE_ATTRIBUTE,
        GET_USAGE_ALLOCATION,
        ACTIVATE,
        REVOKE,
        DESTROY,
        QUERY,
        DISCOVER_VERSIONS,
        ENCRYPT,
        DECRYPT,
        SIGN,
        SIGNATURE_VERIFY,
        MAC,
        SET_ATTRIBUTE,
    ];
}

/// Result Status values.
pub mod status {
    pub const SUCCESS: u32 = 0;
    pub const OPERATION_FAILED: u32 = 1;
}

/// Result Reason values.
pub mod reason {
    pub const ITEM_NOT_FOUND: u32 = 0x01;
    pub const AUTHENTICATION_NOT_SUCCESSFUL: u32 = 0x03;
    pub const INVALID_MESSAGE: u32 = 0x04;
    pub const OPERATION_NOT_SUPPORTED: u32 = 0x05;
    pub const MISSING_DATA: u32 = 0x06;
    pub const INVALID_FIELD: u32 = 0x07;
    pub const FEATURE_NOT_SUPPORTED: u32 = 0x08;
    pub const CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;
    pub const ILLEGAL_OPERATION: u32 = 0x0B;
    pub const PERMISSION_DENIED: u32 = 0x0C;
    pub const KEY_FORMAT_TYPE_NOT_SUPPORTED: u32 = 0x10;
    pub const SENSITIVE: u32 = 0x16;
    pub const NOT_EXTRACTABLE: u32 = 0x17;
    pub const OBJECT_ALREADY_EXISTS: u32 = 0x18;
    pub const USAGE_LIMIT_EXCEEDED: u32 = 0x1A;
    pub const READ_ONLY_ATTRIBUTE: u32 = 0x1D;
    pub const INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK: u32 = 0x29;
    pub const WRONG_KEY_LIFECYCLE_STATE: u32 = 0x43;
    pub const SERVER_LIMIT_EXCEEDED: u32 = 0x3A;
    pub const UNSUPPORTED_PROTOCOL_VERSION: u32 = 0x3F;
    pub const GENERAL_FAILURE: u32 = 0x100;
}

/// Object Type values (the service's KMIP model).
pub use strongroom_service::kmip::object_type as object;

/// Key Format Type values (the service's KMIP model).
pub use strongroom_service::kmip::key_format as format;

/// Query Function values.
pub mod query {
    pub const OPERATIONS: u32 = 1;
    pub const OBJECTS: u32 = 2;
    pub const SERVER_INFORMATION: u32 = 3;
}

/// Block Cipher Mode values.
pub mod mode {
    pub const CBC: u32 = 1;
    pub const GCM: u32 = 9;
}

/// Padding Method values.
pub mod padding {
    pub const NONE: u32 = 1;
    pub const PKCS5: u32 = 3;
    pub const PKCS1_V1_5: u32 = 8;
    pub const PSS: u32 = 10;
}

/// Hashing Algorithm values.
pub mod hash {
    pub const SHA_1: u32 = 4;
    pub const SHA_224: u32 = 5;
    pub const SHA_256: u32 = 6;
    pub const SHA_384: u32 = 7;
    pub const SHA_512: u32 = 8;
}

/// Digital Signature Algorithm values.
pub mod dsa {
    pub const SHA1_WITH_RSA: u32 = 0x03;
    pub const SHA224_WITH_RSA: u32 = 0x04;
    pub const SHA256_WITH_RSA: u32 = 0x05;
    pub const SHA384_WITH_RSA: u32 = 0x06;
    pub const SHA512_WITH_RSA: u32 = 0x07;
    pub const RSASSA_PSS: u32 = 0x08;
    pub const ECDSA_WITH_SHA1: u32 = 0x0C;
    pub const ECDSA_WITH_SHA224: u32 = 0x0D;
    pub const ECDSA_WITH_SHA256: u32 = 0x0E;
    pub const ECDSA_WITH_SHA384: u32 = 0x0F;
    pub const ECDSA_WITH_SHA512: u32 = 0x10;
}

/// Cryptographic Algorithm values (the service's KMIP model).
pub use strongroom_service::kmip::algorithm as alg;

/// Revocation Reason Code values.
pub mod revocation {
    pub const KEY_COMPROMISE: u32 = 2;
    pub const CA_COMPROMISE: u32 = 3;
}

/// Validity Indicator values.
pub mod validity {
    pub const VALID: u32 = 1;
    pub const INVALID: u32 = 2;
}
