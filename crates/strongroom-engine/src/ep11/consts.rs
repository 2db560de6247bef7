//! PKCS#11 v2.40 and IBM EP11 constants (values from the PKCS#11 standard and IBM's
//! published `ep11.h` / `grep11.h`; see `spec/grep11-api.md` §3).

/// Return values (CK_RV).
pub mod ckr {
    /// CKR_GENERAL_ERROR
    pub const GENERAL_ERROR: u64 = 0x05;
    /// CKR_ARGUMENTS_BAD
    pub const ARGUMENTS_BAD: u64 = 0x07;
    /// CKR_ATTRIBUTE_READ_ONLY
    pub const ATTRIBUTE_READ_ONLY: u64 = 0x10;
    /// CKR_ATTRIBUTE_SENSITIVE
    pub const ATTRIBUTE_SENSITIVE: u64 = 0x11;
    /// CKR_ATTRIBUTE_TYPE_INVALID
    pub const ATTRIBUTE_TYPE_INVALID: u64 = 0x12;
    /// CKR_ATTRIBUTE_VALUE_INVALID
    pub const ATTRIBUTE_VALUE_INVALID: u64 = 0x13;
    /// CKR_DATA_INVALID
    pub const DATA_INVALID: u64 = 0x20;
    /// CKR_DATA_LEN_RANGE
    pub const DATA_LEN_RANGE: u64 = 0x21;
    /// CKR_DEVICE_ERROR
    pub const DEVICE_ERROR: u64 = 0x30;
    /// CKR_ENCRYPTED_DATA_INVALID
    pub const ENCRYPTED_DATA_INVALID: u64 = 0x40;
    /// CKR_ENCRYPTED_DATA_LEN_RANGE
    pub const ENCRYPTED_DATA_LEN_RANGE: u64 = 0x41;
    /// CKR_FUNCTION_NOT_SUPPORTED
    pub const FUNCTION_NOT_SUPPORTED: u64 = 0x54;
    /// CKR_KEY_HANDLE_INVALID
    pub const KEY_HANDLE_INVALID: u64 = 0x60;
    /// CKR_KEY_SIZE_RANGE
    pub const KEY_SIZE_RANGE: u64 = 0x62;
    /// CKR_KEY_TYPE_INCONSISTENT
    pub const KEY_TYPE_INCONSISTENT: u64 = 0x63;
    /// CKR_KEY_FUNCTION_NOT_PERMITTED
    pub const KEY_FUNCTION_NOT_PERMITTED: u64 = 0x68;
    /// CKR_KEY_NOT_WRAPPABLE
    pub const KEY_NOT_WRAPPABLE: u64 = 0x69;
    /// CKR_KEY_UNEXTRACTABLE
    pub const KEY_UNEXTRACTABLE: u64 = 0x6A;
    /// CKR_MECHANISM_INVALID
    pub const MECHANISM_INVALID: u64 = 0x70;
    /// CKR_MECHANISM_PARAM_INVALID
    pub const MECHANISM_PARAM_INVALID: u64 = 0x71;
    /// CKR_OPERATION_NOT_INITIALIZED
    pub const OPERATION_NOT_INITIALIZED: u64 = 0x91;
    /// CKR_SIGNATURE_INVALID
    pub const SIGNATURE_INVALID: u64 = 0xC0;
    /// CKR_SIGNATURE_LEN_RANGE
    pub const SIGNATURE_LEN_RANGE: u64 = 0xC1;
    /// CKR_TEMPLATE_INCOMPLETE
    pub const TEMPLATE_INCOMPLETE: u64 = 0xD0;
    /// CKR_TEMPLATE_INCONSISTENT
    pub const TEMPLATE_INCONSISTENT: u64 = 0xD1;
    /// CKR_UNWRAPPING_KEY_HANDLE_INVALID
    pub const UNWRAPPING_KEY_HANDLE_INVALID: u64 = 0xF0;
    /// CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT
    pub const UNWRAPPING_KEY_TYPE_INCONSISTENT: u64 = 0xF2;
    /// CKR_USER_NOT_LOGGED_IN
    pub const USER_NOT_LOGGED_IN: u64 = 0x101;
    /// CKR_WRAPPED_KEY_INVALID
    pub const WRAPPED_KEY_INVALID: u64 = 0x110;
    /// CKR_WRAPPED_KEY_LEN_RANGE
    pub const WRAPPED_KEY_LEN_RANGE: u64 = 0x112;
    /// CKR_WRAPPING_KEY_HANDLE_INVALID
    pub const WRAPPING_KEY_HANDLE_INVALID: u64 = 0x113;
    /// CKR_WRAPPING_KEY_TYPE_INCONSISTENT
    pub const WRAPPING_KEY_TYPE_INCONSISTENT: u64 = 0x115;
    /// CKR_DOMAIN_PARAMS_INVALID
    pub const DOMAIN_PARAMS_INVALID: u64 = 0x130;
    /// CKR_CURVE_NOT_SUPPORTED
    pub const CURVE_NOT_SUPPORTED: u64 = 0x140;
    /// CKR_PUBLIC_KEY_INVALID
    pub const PUBLIC_KEY_INVALID: u64 = 0x1B9;
    /// CKR_IBM_WKID_MISMATCH: the blob is sealed under another master key.
    pub const IBM_WKID_MISMATCH: u64 = 0x8001_0001;
    /// CKR_IBM_WK_NOT_INITIALIZED: the domain has no master key.
    pub const IBM_WK_NOT_INITIALIZED: u64 = 0x8001_0009;
}

/// Mechanisms (CKM_*).
pub mod ckm {
    #![allow(missing_docs)]
    pub const RSA_PKCS_KEY_PAIR_GEN: u64 = 0x0;
    pub const RSA_PKCS: u64 = 0x1;
    pub const DSA_KEY_PAIR_GEN: u64 = 0x10;
    pub const DSA: u64 = 0x11;
    pub const DSA_SHA1: u64 = 0x12;
    pub const DSA_SHA224: u64 = 0x13;
    pub const DSA_SHA256: u64 = 0x14;
    pub const DSA_SHA384: u64 = 0x15;
    pub const DSA_SHA512: u64 = 0x16;
    pub const DSA_PARAMETER_GEN: u64 = 0x2000;
    pub const DH_PKCS_KEY_PAIR_GEN: u64 = 0x20;
    pub const DH_PKCS_DERIVE: u64 = 0x21;
    pub const DH_PKCS_PARAMETER_GEN: u64 = 0x2001;
    pub const RSA_PKCS_OAEP: u64 = 0x9;
    pub const RSA_X9_31_KEY_PAIR_GEN: u64 = 0xA;
    pub const RSA_X9_31: u64 = 0xB;
    pub const SHA1_RSA_X9_31: u64 = 0xC;
    pub const SHA1_RSA_PKCS: u64 = 0x6;
    pub const RSA_PKCS_PSS: u64 = 0xD;
    pub const SHA1_RSA_PKCS_PSS: u64 = 0xE;
    pub const SHA256_RSA_PKCS: u64 = 0x40;
    pub const SHA384_RSA_PKCS: u64 = 0x41;
    pub const SHA512_RSA_PKCS: u64 = 0x42;
    pub const SHA256_RSA_PKCS_PSS: u64 = 0x43;
    pub const SHA384_RSA_PKCS_PSS: u64 = 0x44;
    pub const SHA512_RSA_PKCS_PSS: u64 = 0x45;
    pub const SHA224_RSA_PKCS: u64 = 0x46;
    pub const SHA224_RSA_PKCS_PSS: u64 = 0x47;
    pub const SHA512_224: u64 = 0x48;
    pub const SHA512_224_HMAC: u64 = 0x49;
    pub const SHA512_224_HMAC_GENERAL: u64 = 0x4A;
    pub const SHA512_256: u64 = 0x4C;
    pub const SHA512_256_HMAC: u64 = 0x4D;
    pub const SHA512_256_HMAC_GENERAL: u64 = 0x4E;
    pub const SHA_1: u64 = 0x220;
    pub const SHA_1_HMAC: u64 = 0x221;
    pub const SHA_1_HMAC_GENERAL: u64 = 0x222;
    pub const SHA256: u64 = 0x250;
    pub const SHA256_HMAC: u64 = 0x251;
    pub const SHA256_HMAC_GENERAL: u64 = 0x252;
    pub const SHA224: u64 = 0x255;
    pub const SHA224_HMAC: u64 = 0x256;
    pub const SHA224_HMAC_GENERAL: u64 = 0x257;
    pub const SHA384: u64 = 0x260;
    pub const SHA384_HMAC: u64 = 0x261;
    pub const SHA384_HMAC_GENERAL: u64 = 0x262;
    pub const SHA512: u64 = 0x270;
    pub const SHA512_HMAC: u64 = 0x271;
    pub const SHA512_HMAC_GENERAL: u64 = 0x272;
    pub const DES2_KEY_GEN: u64 = 0x130;
    pub const DES3_KEY_GEN: u64 = 0x131;
    pub const DES3_ECB: u64 = 0x132;
    pub const DES3_CBC: u64 = 0x133;
    pub const DES3_CBC_PAD: u64 = 0x136;
    pub const DES3_CMAC: u64 = 0x138;
    pub const GENERIC_SECRET_KEY_GEN: u64 = 0x350;
    pub const CONCATENATE_BASE_AND_KEY: u64 = 0x360;
    pub const CONCATENATE_BASE_AND_DATA: u64 = 0x362;
    pub const CONCATENATE_DATA_AND_BASE: u64 = 0x363;
    pub const XOR_BASE_AND_DATA: u64 = 0x364;
    pub const SHA1_KEY_DERIVATION: u64 = 0x392;
    pub const SHA256_KEY_DERIVATION: u64 = 0x393;
    pub const SHA384_KEY_DERIVATION: u64 = 0x394;
    pub const SHA512_KEY_DERIVATION: u64 = 0x395;
    pub const SHA224_KEY_DERIVATION: u64 = 0x396;
    pub const EC_KEY_PAIR_GEN: u64 = 0x1040;
    pub const ECDSA: u64 = 0x1041;
    pub const ECDSA_SHA1: u64 = 0x1042;
    pub const ECDSA_SHA224: u64 = 0x1043;
    pub const ECDSA_SHA256: u64 = 0x1044;
    pub const ECDSA_SHA384: u64 = 0x1045;
    pub const ECDSA_SHA512: u64 = 0x1046;
    pub const ECDH1_DERIVE: u64 = 0x1050;
    pub const AES_KEY_GEN: u64 = 0x1080;
    pub const AES_ECB: u64 = 0x1081;
    pub const AES_CBC: u64 = 0x1082;
    pub const AES_CBC_PAD: u64 = 0x1085;
    pub const AES_GCM: u64 = 0x1087;
    pub const AES_CMAC: u64 = 0x108A;
    pub const AES_CMAC_GENERAL: u64 = 0x108B;
    pub const IBM_SHA3_256: u64 = 0x8001_0002;
    pub const IBM_SHA3_384: u64 = 0x8001_0003;
    pub const IBM_SHA3_512: u64 = 0x8001_0004;
    pub const IBM_CMAC: u64 = 0x8001_0007;
    pub const IBM_ECDSA_SHA224: u64 = 0x8001_0008;
    pub const IBM_ECDSA_SHA256: u64 = 0x8001_0009;
    pub const IBM_ECDSA_SHA384: u64 = 0x8001_000A;
    pub const IBM_ECDSA_SHA512: u64 = 0x8001_000B;
    pub const IBM_SHA512_256: u64 = 0x8001_0012;
    pub const IBM_SHA512_224: u64 = 0x8001_0013;
    pub const IBM_SHA512_256_HMAC: u64 = 0x8001_0014;
    pub const IBM_SHA512_224_HMAC: u64 = 0x8001_0015;
    pub const IBM_EC_MULTIPLY: u64 = 0x8001_000C;
    pub const IBM_ED25519_SHA512: u64 = 0x8001_001C;
    pub const IBM_ATTRIBUTEBOUND_WRAP: u64 = 0x8002_0004;
    pub const IBM_TRANSPORTKEY: u64 = 0x8002_0005;
}

/// Attribute types (CKA_*).
pub mod cka {
    #![allow(missing_docs)]
    pub const CLASS: u64 = 0x0;
    pub const TOKEN: u64 = 0x1;
    pub const PRIVATE: u64 = 0x2;
    pub const LABEL: u64 = 0x3;
    pub const VALUE: u64 = 0x11;
    pub const CHECK_VALUE: u64 = 0x90;
    pub const TRUSTED: u64 = 0x86;
    pub const KEY_TYPE: u64 = 0x100;
    pub const ID: u64 = 0x102;
    pub const SENSITIVE: u64 = 0x103;
    pub const ENCRYPT: u64 = 0x104;
    pub const DECRYPT: u64 = 0x105;
    pub const WRAP: u64 = 0x106;
    pub const UNWRAP: u64 = 0x107;
    pub const SIGN: u64 = 0x108;
    pub const SIGN_RECOVER: u64 = 0x109;
    pub const VERIFY: u64 = 0x10A;
    pub const VERIFY_RECOVER: u64 = 0x10B;
    pub const DERIVE: u64 = 0x10C;
    pub const MODULUS: u64 = 0x120;
    pub const MODULUS_BITS: u64 = 0x121;
    pub const PUBLIC_EXPONENT: u64 = 0x122;
    pub const PUBLIC_KEY_INFO: u64 = 0x129;
    pub const PRIME_BITS: u64 = 0x133;
    pub const VALUE_LEN: u64 = 0x161;
    pub const EXTRACTABLE: u64 = 0x162;
    pub const LOCAL: u64 = 0x163;
    pub const NEVER_EXTRACTABLE: u64 = 0x164;
    pub const ALWAYS_SENSITIVE: u64 = 0x165;
    pub const KEY_GEN_MECHANISM: u64 = 0x166;
    pub const MODIFIABLE: u64 = 0x170;
    pub const COPYABLE: u64 = 0x171;
    pub const DESTROYABLE: u64 = 0x172;
    pub const EC_PARAMS: u64 = 0x180;
    pub const EC_POINT: u64 = 0x181;
    pub const WRAP_WITH_TRUSTED: u64 = 0x210;
    pub const IBM_RESTRICTABLE: u64 = 0x8001_0001;
    pub const IBM_NEVER_MODIFIABLE: u64 = 0x8001_0002;
    pub const IBM_ATTRBOUND: u64 = 0x8001_0004;
    pub const IBM_USE_AS_DATA: u64 = 0x8001_0008;
    pub const IBM_STRUCT_PARAMS: u64 = 0x8001_0009;
}

/// Key types (CKK_*).
pub mod ckk {
    #![allow(missing_docs)]
    pub const RSA: u64 = 0x0;
    pub const DSA: u64 = 0x1;
    pub const DH: u64 = 0x2;
    pub const EC: u64 = 0x3;
    pub const GENERIC_SECRET: u64 = 0x10;
    pub const DES2: u64 = 0x14;
    pub const DES3: u64 = 0x15;
    pub const AES: u64 = 0x1F;
    /// CKK_EC_EDWARDS (PKCS#11 3.0), what Ed25519 keys report.
    pub const EC_EDWARDS: u64 = 0x40;
}

/// Object classes (CKO_*).
pub mod cko {
    #![allow(missing_docs)]
    pub const PUBLIC_KEY: u64 = 0x2;
    pub const DOMAIN_PARAMETERS: u64 = 0x6;
    pub const PRIVATE_KEY: u64 = 0x3;
    pub const SECRET_KEY: u64 = 0x4;
}

/// Mechanism info flags (CKF_*).
pub mod ckf {
    #![allow(missing_docs)]
    pub const HW: u64 = 0x1;
    pub const ENCRYPT: u64 = 0x100;
    pub const DECRYPT: u64 = 0x200;
    pub const DIGEST: u64 = 0x400;
    pub const SIGN: u64 = 0x800;
    pub const VERIFY: u64 = 0x2000;
    pub const GENERATE: u64 = 0x8000;
    pub const GENERATE_KEY_PAIR: u64 = 0x10000;
    pub const WRAP: u64 = 0x20000;
    pub const UNWRAP: u64 = 0x40000;
    pub const DERIVE: u64 = 0x80000;
    pub const EC_F_P: u64 = 0x10_0000;
    pub const EC_NAMEDCURVE: u64 = 0x80_0000;
    pub const EC_UNCOMPRESS: u64 = 0x100_0000;
}
