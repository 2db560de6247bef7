//! PKCS#11 codes as open newtypes: a mechanism ([`Ckm`]), an attribute type ([`Cka`]), a
//! return value ([`Ckr`]), a key type ([`Ckk`]) and an object class ([`Cko`]). Each is a
//! `CK_ULONG` that may hold any value a peer sends (the set is open: vendors define their
//! own), and the named values are constants of the modules below. Values come from the
//! PKCS#11 standard (v2.40 and 3.x) and IBM's published `ep11.h` / `grep11.h` (see
//! `spec/grep11-api.md` §3).

macro_rules! code {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl std::fmt::LowerHex for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::LowerHex::fmt(&self.0, f)
            }
        }

        impl $name {
            /// The value as 8 big-endian bytes (EP11's encoding in blobs and states).
            pub const fn to_be_bytes(self) -> [u8; 8] {
                self.0.to_be_bytes()
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                $name(v)
            }
        }

        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0
            }
        }
    };
}

code!(
    /// A return value (`CK_RV`).
    Ckr
);
code!(
    /// An attribute type (`CK_ATTRIBUTE_TYPE`).
    Cka
);
code!(
    /// A mechanism type (`CK_MECHANISM_TYPE`).
    Ckm
);
code!(
    /// A key type (`CK_KEY_TYPE`).
    Ckk
);
code!(
    /// An object class (`CK_OBJECT_CLASS`).
    Cko
);

/// Return values (CK_RV).
pub mod ckr {
    use super::Ckr;

    /// CKR_GENERAL_ERROR
    pub const GENERAL_ERROR: Ckr = Ckr(0x05);
    /// CKR_ARGUMENTS_BAD
    pub const ARGUMENTS_BAD: Ckr = Ckr(0x07);
    /// CKR_ATTRIBUTE_READ_ONLY
    pub const ATTRIBUTE_READ_ONLY: Ckr = Ckr(0x10);
    /// CKR_ATTRIBUTE_SENSITIVE
    pub const ATTRIBUTE_SENSITIVE: Ckr = Ckr(0x11);
    /// CKR_ATTRIBUTE_TYPE_INVALID
    pub const ATTRIBUTE_TYPE_INVALID: Ckr = Ckr(0x12);
    /// CKR_ATTRIBUTE_VALUE_INVALID
    pub const ATTRIBUTE_VALUE_INVALID: Ckr = Ckr(0x13);
    /// CKR_DATA_INVALID
    pub const DATA_INVALID: Ckr = Ckr(0x20);
    /// CKR_DATA_LEN_RANGE
    pub const DATA_LEN_RANGE: Ckr = Ckr(0x21);
    /// CKR_DEVICE_ERROR
    pub const DEVICE_ERROR: Ckr = Ckr(0x30);
    /// CKR_DEVICE_MEMORY
    pub const DEVICE_MEMORY: Ckr = Ckr(0x31);
    /// CKR_ENCRYPTED_DATA_INVALID
    pub const ENCRYPTED_DATA_INVALID: Ckr = Ckr(0x40);
    /// CKR_ENCRYPTED_DATA_LEN_RANGE
    pub const ENCRYPTED_DATA_LEN_RANGE: Ckr = Ckr(0x41);
    /// CKR_FUNCTION_NOT_SUPPORTED
    pub const FUNCTION_NOT_SUPPORTED: Ckr = Ckr(0x54);
    /// CKR_KEY_HANDLE_INVALID
    pub const KEY_HANDLE_INVALID: Ckr = Ckr(0x60);
    /// CKR_KEY_SIZE_RANGE
    pub const KEY_SIZE_RANGE: Ckr = Ckr(0x62);
    /// CKR_KEY_TYPE_INCONSISTENT
    pub const KEY_TYPE_INCONSISTENT: Ckr = Ckr(0x63);
    /// CKR_KEY_FUNCTION_NOT_PERMITTED
    pub const KEY_FUNCTION_NOT_PERMITTED: Ckr = Ckr(0x68);
    /// CKR_KEY_NOT_WRAPPABLE
    pub const KEY_NOT_WRAPPABLE: Ckr = Ckr(0x69);
    /// CKR_KEY_UNEXTRACTABLE
    pub const KEY_UNEXTRACTABLE: Ckr = Ckr(0x6A);
    /// CKR_MECHANISM_INVALID
    pub const MECHANISM_INVALID: Ckr = Ckr(0x70);
    /// CKR_MECHANISM_PARAM_INVALID
    pub const MECHANISM_PARAM_INVALID: Ckr = Ckr(0x71);
    /// CKR_OPERATION_NOT_INITIALIZED
    pub const OPERATION_NOT_INITIALIZED: Ckr = Ckr(0x91);
    /// CKR_SIGNATURE_INVALID
    pub const SIGNATURE_INVALID: Ckr = Ckr(0xC0);
    /// CKR_SIGNATURE_LEN_RANGE
    pub const SIGNATURE_LEN_RANGE: Ckr = Ckr(0xC1);
    /// CKR_TEMPLATE_INCOMPLETE
    pub const TEMPLATE_INCOMPLETE: Ckr = Ckr(0xD0);
    /// CKR_TEMPLATE_INCONSISTENT
    pub const TEMPLATE_INCONSISTENT: Ckr = Ckr(0xD1);
    /// CKR_UNWRAPPING_KEY_HANDLE_INVALID
    pub const UNWRAPPING_KEY_HANDLE_INVALID: Ckr = Ckr(0xF0);
    /// CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT
    pub const UNWRAPPING_KEY_TYPE_INCONSISTENT: Ckr = Ckr(0xF2);
    /// CKR_USER_NOT_LOGGED_IN
    pub const USER_NOT_LOGGED_IN: Ckr = Ckr(0x101);
    /// CKR_WRAPPED_KEY_INVALID
    pub const WRAPPED_KEY_INVALID: Ckr = Ckr(0x110);
    /// CKR_WRAPPED_KEY_LEN_RANGE
    pub const WRAPPED_KEY_LEN_RANGE: Ckr = Ckr(0x112);
    /// CKR_WRAPPING_KEY_HANDLE_INVALID
    pub const WRAPPING_KEY_HANDLE_INVALID: Ckr = Ckr(0x113);
    /// CKR_WRAPPING_KEY_TYPE_INCONSISTENT
    pub const WRAPPING_KEY_TYPE_INCONSISTENT: Ckr = Ckr(0x115);
    /// CKR_DOMAIN_PARAMS_INVALID
    pub const DOMAIN_PARAMS_INVALID: Ckr = Ckr(0x130);
    /// CKR_CURVE_NOT_SUPPORTED
    pub const CURVE_NOT_SUPPORTED: Ckr = Ckr(0x140);
    /// CKR_PUBLIC_KEY_INVALID
    pub const PUBLIC_KEY_INVALID: Ckr = Ckr(0x1B9);
    /// CKR_IBM_WKID_MISMATCH: the blob is sealed under another master key.
    pub const IBM_WKID_MISMATCH: Ckr = Ckr(0x8001_0001);
    /// CKR_IBM_WK_NOT_INITIALIZED: the domain has no master key.
    pub const IBM_WK_NOT_INITIALIZED: Ckr = Ckr(0x8001_0009);
    /// CKR_OK
    pub const OK: Ckr = Ckr(0x0);
    /// CKR_HOST_MEMORY
    pub const HOST_MEMORY: Ckr = Ckr(0x2);
    /// CKR_SLOT_ID_INVALID
    pub const SLOT_ID_INVALID: Ckr = Ckr(0x3);
    /// CKR_FUNCTION_FAILED
    pub const FUNCTION_FAILED: Ckr = Ckr(0x6);
    /// CKR_CANT_LOCK
    pub const CANT_LOCK: Ckr = Ckr(0xa);
    /// CKR_ACTION_PROHIBITED
    pub const ACTION_PROHIBITED: Ckr = Ckr(0x1b);
    /// CKR_FUNCTION_NOT_PARALLEL
    pub const FUNCTION_NOT_PARALLEL: Ckr = Ckr(0x51);
    /// CKR_OBJECT_HANDLE_INVALID
    pub const OBJECT_HANDLE_INVALID: Ckr = Ckr(0x82);
    /// CKR_OPERATION_ACTIVE
    pub const OPERATION_ACTIVE: Ckr = Ckr(0x90);
    /// CKR_PIN_INCORRECT
    pub const PIN_INCORRECT: Ckr = Ckr(0xa0);
    /// CKR_PIN_LEN_RANGE
    pub const PIN_LEN_RANGE: Ckr = Ckr(0xa2);
    /// CKR_SESSION_HANDLE_INVALID
    pub const SESSION_HANDLE_INVALID: Ckr = Ckr(0xb3);
    /// CKR_SESSION_PARALLEL_NOT_SUPPORTED
    pub const SESSION_PARALLEL_NOT_SUPPORTED: Ckr = Ckr(0xb4);
    /// CKR_SESSION_READ_ONLY
    pub const SESSION_READ_ONLY: Ckr = Ckr(0xb5);
    /// CKR_SESSION_EXISTS
    pub const SESSION_EXISTS: Ckr = Ckr(0xb6);
    /// CKR_SESSION_READ_ONLY_EXISTS
    pub const SESSION_READ_ONLY_EXISTS: Ckr = Ckr(0xb7);
    /// CKR_SESSION_READ_WRITE_SO_EXISTS
    pub const SESSION_READ_WRITE_SO_EXISTS: Ckr = Ckr(0xb8);
    /// CKR_TOKEN_NOT_RECOGNIZED
    pub const TOKEN_NOT_RECOGNIZED: Ckr = Ckr(0xe1);
    /// CKR_TOKEN_WRITE_PROTECTED
    pub const TOKEN_WRITE_PROTECTED: Ckr = Ckr(0xe2);
    /// CKR_USER_ALREADY_LOGGED_IN
    pub const USER_ALREADY_LOGGED_IN: Ckr = Ckr(0x100);
    /// CKR_USER_TYPE_INVALID
    pub const USER_TYPE_INVALID: Ckr = Ckr(0x103);
    /// CKR_USER_ANOTHER_ALREADY_LOGGED_IN
    pub const USER_ANOTHER_ALREADY_LOGGED_IN: Ckr = Ckr(0x104);
    /// CKR_RANDOM_SEED_NOT_SUPPORTED
    pub const RANDOM_SEED_NOT_SUPPORTED: Ckr = Ckr(0x120);
    /// CKR_BUFFER_TOO_SMALL
    pub const BUFFER_TOO_SMALL: Ckr = Ckr(0x150);
    /// CKR_CRYPTOKI_NOT_INITIALIZED
    pub const CRYPTOKI_NOT_INITIALIZED: Ckr = Ckr(0x190);
    /// CKR_CRYPTOKI_ALREADY_INITIALIZED
    pub const CRYPTOKI_ALREADY_INITIALIZED: Ckr = Ckr(0x191);
}

/// Mechanisms (CKM_*).
pub mod ckm {
    #![allow(missing_docs)]
    use super::Ckm;
    pub const RSA_PKCS_KEY_PAIR_GEN: Ckm = Ckm(0x0);
    pub const RSA_PKCS: Ckm = Ckm(0x1);
    pub const DSA_KEY_PAIR_GEN: Ckm = Ckm(0x10);
    pub const DSA: Ckm = Ckm(0x11);
    pub const DSA_SHA1: Ckm = Ckm(0x12);
    pub const DSA_SHA224: Ckm = Ckm(0x13);
    pub const DSA_SHA256: Ckm = Ckm(0x14);
    pub const DSA_SHA384: Ckm = Ckm(0x15);
    pub const DSA_SHA512: Ckm = Ckm(0x16);
    pub const DSA_PARAMETER_GEN: Ckm = Ckm(0x2000);
    pub const DH_PKCS_KEY_PAIR_GEN: Ckm = Ckm(0x20);
    pub const DH_PKCS_DERIVE: Ckm = Ckm(0x21);
    pub const DH_PKCS_PARAMETER_GEN: Ckm = Ckm(0x2001);
    pub const RSA_PKCS_OAEP: Ckm = Ckm(0x9);
    pub const RSA_X9_31_KEY_PAIR_GEN: Ckm = Ckm(0xA);
    pub const RSA_X9_31: Ckm = Ckm(0xB);
    pub const SHA1_RSA_X9_31: Ckm = Ckm(0xC);
    pub const SHA1_RSA_PKCS: Ckm = Ckm(0x6);
    pub const RSA_PKCS_PSS: Ckm = Ckm(0xD);
    pub const SHA1_RSA_PKCS_PSS: Ckm = Ckm(0xE);
    pub const SHA256_RSA_PKCS: Ckm = Ckm(0x40);
    pub const SHA384_RSA_PKCS: Ckm = Ckm(0x41);
    pub const SHA512_RSA_PKCS: Ckm = Ckm(0x42);
    pub const SHA256_RSA_PKCS_PSS: Ckm = Ckm(0x43);
    pub const SHA384_RSA_PKCS_PSS: Ckm = Ckm(0x44);
    pub const SHA512_RSA_PKCS_PSS: Ckm = Ckm(0x45);
    pub const SHA224_RSA_PKCS: Ckm = Ckm(0x46);
    pub const SHA224_RSA_PKCS_PSS: Ckm = Ckm(0x47);
    pub const SHA512_224: Ckm = Ckm(0x48);
    pub const SHA512_224_HMAC: Ckm = Ckm(0x49);
    pub const SHA512_224_HMAC_GENERAL: Ckm = Ckm(0x4A);
    pub const SHA512_256: Ckm = Ckm(0x4C);
    pub const SHA512_256_HMAC: Ckm = Ckm(0x4D);
    pub const SHA512_256_HMAC_GENERAL: Ckm = Ckm(0x4E);
    pub const SHA_1: Ckm = Ckm(0x220);
    pub const SHA_1_HMAC: Ckm = Ckm(0x221);
    pub const SHA_1_HMAC_GENERAL: Ckm = Ckm(0x222);
    pub const SHA256: Ckm = Ckm(0x250);
    pub const SHA256_HMAC: Ckm = Ckm(0x251);
    pub const SHA256_HMAC_GENERAL: Ckm = Ckm(0x252);
    pub const SHA224: Ckm = Ckm(0x255);
    pub const SHA224_HMAC: Ckm = Ckm(0x256);
    pub const SHA224_HMAC_GENERAL: Ckm = Ckm(0x257);
    pub const SHA384: Ckm = Ckm(0x260);
    pub const SHA384_HMAC: Ckm = Ckm(0x261);
    pub const SHA384_HMAC_GENERAL: Ckm = Ckm(0x262);
    pub const SHA512: Ckm = Ckm(0x270);
    pub const SHA512_HMAC: Ckm = Ckm(0x271);
    pub const SHA512_HMAC_GENERAL: Ckm = Ckm(0x272);
    pub const DES2_KEY_GEN: Ckm = Ckm(0x130);
    pub const DES3_KEY_GEN: Ckm = Ckm(0x131);
    pub const DES3_ECB: Ckm = Ckm(0x132);
    pub const DES3_CBC: Ckm = Ckm(0x133);
    pub const DES3_CBC_PAD: Ckm = Ckm(0x136);
    pub const DES3_CMAC: Ckm = Ckm(0x138);
    pub const GENERIC_SECRET_KEY_GEN: Ckm = Ckm(0x350);
    pub const CONCATENATE_BASE_AND_KEY: Ckm = Ckm(0x360);
    pub const CONCATENATE_BASE_AND_DATA: Ckm = Ckm(0x362);
    pub const CONCATENATE_DATA_AND_BASE: Ckm = Ckm(0x363);
    pub const XOR_BASE_AND_DATA: Ckm = Ckm(0x364);
    pub const SHA1_KEY_DERIVATION: Ckm = Ckm(0x392);
    pub const SHA256_KEY_DERIVATION: Ckm = Ckm(0x393);
    pub const SHA384_KEY_DERIVATION: Ckm = Ckm(0x394);
    pub const SHA512_KEY_DERIVATION: Ckm = Ckm(0x395);
    pub const SHA224_KEY_DERIVATION: Ckm = Ckm(0x396);
    pub const EC_KEY_PAIR_GEN: Ckm = Ckm(0x1040);
    pub const ECDSA: Ckm = Ckm(0x1041);
    pub const ECDSA_SHA1: Ckm = Ckm(0x1042);
    pub const ECDSA_SHA224: Ckm = Ckm(0x1043);
    pub const ECDSA_SHA256: Ckm = Ckm(0x1044);
    pub const ECDSA_SHA384: Ckm = Ckm(0x1045);
    pub const ECDSA_SHA512: Ckm = Ckm(0x1046);
    pub const ECDH1_DERIVE: Ckm = Ckm(0x1050);
    pub const AES_KEY_GEN: Ckm = Ckm(0x1080);
    pub const AES_ECB: Ckm = Ckm(0x1081);
    pub const AES_CBC: Ckm = Ckm(0x1082);
    pub const AES_CBC_PAD: Ckm = Ckm(0x1085);
    pub const AES_GCM: Ckm = Ckm(0x1087);
    pub const AES_CMAC: Ckm = Ckm(0x108A);
    pub const AES_CMAC_GENERAL: Ckm = Ckm(0x108B);
    pub const IBM_SHA3_256: Ckm = Ckm(0x8001_0002);
    pub const IBM_SHA3_384: Ckm = Ckm(0x8001_0003);
    pub const IBM_SHA3_512: Ckm = Ckm(0x8001_0004);
    pub const IBM_CMAC: Ckm = Ckm(0x8001_0007);
    pub const IBM_ECDSA_SHA224: Ckm = Ckm(0x8001_0008);
    pub const IBM_ECDSA_SHA256: Ckm = Ckm(0x8001_0009);
    pub const IBM_ECDSA_SHA384: Ckm = Ckm(0x8001_000A);
    pub const IBM_ECDSA_SHA512: Ckm = Ckm(0x8001_000B);
    pub const IBM_SHA512_256: Ckm = Ckm(0x8001_0012);
    pub const IBM_SHA512_224: Ckm = Ckm(0x8001_0013);
    pub const IBM_SHA512_256_HMAC: Ckm = Ckm(0x8001_0014);
    pub const IBM_SHA512_224_HMAC: Ckm = Ckm(0x8001_0015);
    pub const IBM_EC_MULTIPLY: Ckm = Ckm(0x8001_000C);
    pub const IBM_ED25519_SHA512: Ckm = Ckm(0x8001_001C);
    pub const IBM_EC_X25519: Ckm = Ckm(0x8001_001B);
    pub const IBM_ECDSA_OTHER: Ckm = Ckm(0x8001_0031);
    pub const IBM_EC_AGGREGATE: Ckm = Ckm(0x8001_0034);
    pub const IBM_BTC_DERIVE: Ckm = Ckm(0x8007_0001);
    pub const IBM_ATTRIBUTEBOUND_WRAP: Ckm = Ckm(0x8002_0004);
    pub const IBM_TRANSPORTKEY: Ckm = Ckm(0x8002_0005);
    /// PKCS#11 3.2: ML-KEM (FIPS 203) key pair generation.
    pub const ML_KEM_KEY_PAIR_GEN: Ckm = Ckm(0xF);
    /// PKCS#11 3.2: ML-KEM encapsulation and decapsulation.
    pub const ML_KEM: Ckm = Ckm(0x17);
    /// PKCS#11 3.2: ML-DSA (FIPS 204) key pair generation.
    pub const ML_DSA_KEY_PAIR_GEN: Ckm = Ckm(0x1C);
    /// PKCS#11 3.2: pure ML-DSA signatures (CK_SIGN_ADDITIONAL_CONTEXT parameter).
    pub const ML_DSA: Ckm = Ckm(0x1D);
    /// IBM's pre-standard Dilithium (round 2/3): refused, see docs/compatibility.md.
    pub const IBM_DILITHIUM: Ckm = Ckm(0x8001_0023);
    /// IBM's pre-standard Kyber (round 2/3): refused, see docs/compatibility.md.
    pub const IBM_KYBER: Ckm = Ckm(0x8001_0024);
}

/// Attribute types (CKA_*).
pub mod cka {
    #![allow(missing_docs)]
    use super::Cka;
    pub const CLASS: Cka = Cka(0x0);
    pub const TOKEN: Cka = Cka(0x1);
    pub const PRIVATE: Cka = Cka(0x2);
    pub const LABEL: Cka = Cka(0x3);
    pub const VALUE: Cka = Cka(0x11);
    pub const CHECK_VALUE: Cka = Cka(0x90);
    pub const TRUSTED: Cka = Cka(0x86);
    pub const KEY_TYPE: Cka = Cka(0x100);
    pub const ID: Cka = Cka(0x102);
    pub const SENSITIVE: Cka = Cka(0x103);
    pub const ENCRYPT: Cka = Cka(0x104);
    pub const DECRYPT: Cka = Cka(0x105);
    pub const WRAP: Cka = Cka(0x106);
    pub const UNWRAP: Cka = Cka(0x107);
    pub const SIGN: Cka = Cka(0x108);
    pub const SIGN_RECOVER: Cka = Cka(0x109);
    pub const VERIFY: Cka = Cka(0x10A);
    pub const VERIFY_RECOVER: Cka = Cka(0x10B);
    pub const DERIVE: Cka = Cka(0x10C);
    pub const MODULUS: Cka = Cka(0x120);
    pub const MODULUS_BITS: Cka = Cka(0x121);
    pub const PUBLIC_EXPONENT: Cka = Cka(0x122);
    pub const PUBLIC_KEY_INFO: Cka = Cka(0x129);
    pub const PRIME_BITS: Cka = Cka(0x133);
    pub const VALUE_LEN: Cka = Cka(0x161);
    pub const EXTRACTABLE: Cka = Cka(0x162);
    pub const LOCAL: Cka = Cka(0x163);
    pub const NEVER_EXTRACTABLE: Cka = Cka(0x164);
    pub const ALWAYS_SENSITIVE: Cka = Cka(0x165);
    pub const KEY_GEN_MECHANISM: Cka = Cka(0x166);
    pub const MODIFIABLE: Cka = Cka(0x170);
    pub const COPYABLE: Cka = Cka(0x171);
    pub const DESTROYABLE: Cka = Cka(0x172);
    pub const EC_PARAMS: Cka = Cka(0x180);
    pub const EC_POINT: Cka = Cka(0x181);
    pub const WRAP_WITH_TRUSTED: Cka = Cka(0x210);
    pub const IBM_RESTRICTABLE: Cka = Cka(0x8001_0001);
    pub const IBM_NEVER_MODIFIABLE: Cka = Cka(0x8001_0002);
    pub const IBM_ATTRBOUND: Cka = Cka(0x8001_0004);
    pub const IBM_USE_AS_DATA: Cka = Cka(0x8001_0008);
    pub const IBM_STRUCT_PARAMS: Cka = Cka(0x8001_0009);
    pub const PRIME: Cka = Cka(0x130);
    pub const SUBPRIME: Cka = Cka(0x131);
    pub const BASE: Cka = Cka(0x132);
    /// PKCS#11 3.2: the parameter set of an ML-DSA or ML-KEM key (CKP_*).
    pub const PARAMETER_SET: Cka = Cka(0x61D);
    /// PKCS#11 3.2: the key may encapsulate (ML-KEM public key).
    pub const ENCAPSULATE: Cka = Cka(0x633);
    /// PKCS#11 3.2: the key may decapsulate (ML-KEM private key).
    pub const DECAPSULATE: Cka = Cka(0x634);
    /// The mechanisms a key may be used with (an array of CK_MECHANISM_TYPE; absent or
    /// empty: any). CKF_ARRAY_ATTRIBUTE | 0x600.
    pub const ALLOWED_MECHANISMS: Cka = Cka(0x4000_0600);
    /// Templates PKCS#11 applies to keys a key wraps, unwraps or derives
    /// (CKF_ARRAY_ATTRIBUTE | 0x211, 0x212, 0x213).
    pub const WRAP_TEMPLATE: Cka = Cka(0x4000_0211);
    pub const UNWRAP_TEMPLATE: Cka = Cka(0x4000_0212);
    pub const DERIVE_TEMPLATE: Cka = Cka(0x4000_0213);
}

/// Key types (CKK_*).
pub mod ckk {
    #![allow(missing_docs)]
    use super::Ckk;
    pub const RSA: Ckk = Ckk(0x0);
    pub const DSA: Ckk = Ckk(0x1);
    pub const DH: Ckk = Ckk(0x2);
    pub const EC: Ckk = Ckk(0x3);
    pub const GENERIC_SECRET: Ckk = Ckk(0x10);
    pub const DES2: Ckk = Ckk(0x14);
    pub const DES3: Ckk = Ckk(0x15);
    pub const AES: Ckk = Ckk(0x1F);
    /// CKK_EC_EDWARDS (PKCS#11 3.0), what Ed25519 keys report.
    pub const EC_EDWARDS: Ckk = Ckk(0x40);
    /// PKCS#11 3.2: ML-KEM (FIPS 203).
    pub const ML_KEM: Ckk = Ckk(0x49);
    /// PKCS#11 3.2: ML-DSA (FIPS 204).
    pub const ML_DSA: Ckk = Ckk(0x4A);
}

/// The derivations of `CKM_IBM_BTC_DERIVE` (IBM's `CK_IBM_BTC_*` types, GREP11's
/// `BTCDeriveParm.Type`).
pub mod btc {
    #![allow(missing_docs)]
    pub const BIP32_PRV2PRV: u64 = 1;
    pub const BIP32_PRV2PUB: u64 = 2;
    pub const BIP32_PUB2PUB: u64 = 3;
    pub const BIP32_MASTERK: u64 = 4;
    pub const SLIP10_PRV2PRV: u64 = 5;
    pub const SLIP10_PRV2PUB: u64 = 6;
    pub const SLIP10_PUB2PUB: u64 = 7;
    pub const SLIP10_MASTERK: u64 = 8;

    /// Whether the derivation makes a public key (private → public, public → public).
    pub fn makes_public(kind: u64) -> bool {
        matches!(
            kind,
            BIP32_PRV2PUB | BIP32_PUB2PUB | SLIP10_PRV2PUB | SLIP10_PUB2PUB
        )
    }
}

/// The signature variants of `CKM_IBM_ECDSA_OTHER` (GREP11's `ECSGParm.Type`): IBM's
/// `ECSG_IBM_*` values, and Strongroom's BIP340 Schnorr, which IBM's list lacks.
pub mod ecsg {
    #![allow(missing_docs)]
    /// BSI TR-03111 EC-SDSA with SHA-256.
    pub const ECSDSA_S256: u64 = 3;
    /// EC-SDSA over the compressed public key and the signer's key (Zilliqa's Schnorr).
    pub const ECSDSA_COMPR_MULTI: u64 = 5;
    /// BLS12-381 signatures.
    pub const BLS: u64 = 6;
    /// BIP340 Schnorr on secp256k1 (a Strongroom extension: `CkEcsgStrongroomBip340`).
    pub const BIP340: u64 = 256;
}

/// Parameter sets of PKCS#11 3.2 (`CKA_PARAMETER_SET`): the same numbers name ML-DSA-44/65/87
/// and ML-KEM-512/768/1024.
pub mod ckp {
    #![allow(missing_docs)]
    pub const ML_DSA_44: u64 = 1;
    pub const ML_DSA_65: u64 = 2;
    pub const ML_DSA_87: u64 = 3;
    pub const ML_KEM_512: u64 = 1;
    pub const ML_KEM_768: u64 = 2;
    pub const ML_KEM_1024: u64 = 3;
}

/// Object classes (CKO_*).
pub mod cko {
    #![allow(missing_docs)]
    use super::Cko;
    pub const PUBLIC_KEY: Cko = Cko(0x2);
    pub const DOMAIN_PARAMETERS: Cko = Cko(0x6);
    pub const PRIVATE_KEY: Cko = Cko(0x3);
    pub const SECRET_KEY: Cko = Cko(0x4);
    pub const DATA: Cko = Cko(0x0);
    pub const CERTIFICATE: Cko = Cko(0x1);
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
