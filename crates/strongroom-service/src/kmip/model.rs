//! The KMIP object model the service keeps: object types and states (their KMIP values,
//! which Key Protect's REST API shows as well), attributes by their KMIP 1.x names, and
//! the cryptographic parameters an operation names. The KMIP front end converts TTLV to
//! these and back; nothing here knows the wire encoding.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// KMIP Object Type values.
pub mod object_type {
    /// Certificate.
    pub const CERTIFICATE: u32 = 1;
    /// Symmetric Key.
    pub const SYMMETRIC_KEY: u32 = 2;
    /// Public Key.
    pub const PUBLIC_KEY: u32 = 3;
    /// Private Key.
    pub const PRIVATE_KEY: u32 = 4;
    /// Secret Data.
    pub const SECRET_DATA: u32 = 7;
    /// Opaque Object.
    pub const OPAQUE_OBJECT: u32 = 8;
}

/// KMIP State values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KmipState {
    /// 1: made, not usable for protection yet.
    PreActive = 1,
    /// 2: in use.
    Active = 2,
    /// 3: only for processing (decrypt, verify).
    Deactivated = 3,
    /// 4: revoked for compromise.
    Compromised = 4,
    /// 5: material erased.
    Destroyed = 5,
    /// 6: compromised, then material erased.
    DestroyedCompromised = 6,
}

impl KmipState {
    /// The persisted (and KMIP) value.
    pub fn code(self) -> u32 {
        self as u32
    }
    /// From the persisted value.
    pub fn from_code(c: u32) -> Option<KmipState> {
        Some(match c {
            1 => KmipState::PreActive,
            2 => KmipState::Active,
            3 => KmipState::Deactivated,
            4 => KmipState::Compromised,
            5 => KmipState::Destroyed,
            6 => KmipState::DestroyedCompromised,
            _ => return None,
        })
    }
    /// Whether the material is gone.
    pub fn is_destroyed(self) -> bool {
        matches!(self, KmipState::Destroyed | KmipState::DestroyedCompromised)
    }
}

/// Key format values the service stores and converts between.
pub mod key_format {
    /// Raw bytes (symmetric keys, secret data, opaque objects).
    pub const RAW: u32 = 1;
    /// Opaque.
    pub const OPAQUE: u32 = 2;
    /// PKCS#1 (RSA keys).
    pub const PKCS_1: u32 = 3;
    /// PKCS#8 (private keys).
    pub const PKCS_8: u32 = 4;
    /// X.509: SubjectPublicKeyInfo for public keys, the DER certificate for certificates.
    pub const X_509: u32 = 5;
    /// Transparent Symmetric Key.
    pub const TRANSPARENT_SYMMETRIC_KEY: u32 = 7;
}

/// An attribute value, in the types KMIP defines. Structures keep their children's tags
/// (numbers) so that any attribute, including one this server does not interpret, is
/// kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v")]
pub enum AttrValue {
    /// Integer.
    Int(i32),
    /// Long Integer.
    Long(i64),
    /// Big Integer (two's complement bytes).
    Big(Vec<u8>),
    /// Enumeration.
    Enum(u32),
    /// Boolean.
    Bool(bool),
    /// Text String.
    Text(String),
    /// Byte String.
    Bytes(Vec<u8>),
    /// Date-Time (seconds since the epoch).
    DateTime(i64),
    /// Interval (seconds).
    Interval(u32),
    /// Structure: (tag, value) children in order.
    Struct(Vec<(u32, AttrValue)>),
}

impl AttrValue {
    /// The first child with `tag` of a structure.
    pub fn field(&self, tag: u32) -> Option<&AttrValue> {
        match self {
            AttrValue::Struct(f) => f.iter().find(|(t, _)| *t == tag).map(|(_, v)| v),
            _ => None,
        }
    }
    /// The text of a Text String.
    pub fn text(&self) -> Option<&str> {
        match self {
            AttrValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// One attribute instance: its KMIP name (`Cryptographic Algorithm`, `x-vendor`), and
/// its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// The KMIP 1.x attribute name.
    pub name: String,
    /// The value.
    pub value: AttrValue,
}

impl Attribute {
    /// An attribute.
    pub fn new(name: impl Into<String>, value: AttrValue) -> Attribute {
        Attribute {
            name: name.into(),
            value,
        }
    }
}

/// Attribute names the service reads or maintains.
pub mod names {
    /// Unique Identifier (server-maintained).
    pub const UNIQUE_IDENTIFIER: &str = "Unique Identifier";
    /// Name (a structure of Name Value and Name Type).
    pub const NAME: &str = "Name";
    /// Object Type (server-maintained).
    pub const OBJECT_TYPE: &str = "Object Type";
    /// Cryptographic Algorithm.
    pub const CRYPTOGRAPHIC_ALGORITHM: &str = "Cryptographic Algorithm";
    /// Cryptographic Length.
    pub const CRYPTOGRAPHIC_LENGTH: &str = "Cryptographic Length";
    /// Cryptographic Usage Mask.
    pub const CRYPTOGRAPHIC_USAGE_MASK: &str = "Cryptographic Usage Mask";
    /// State (server-maintained).
    pub const STATE: &str = "State";
    /// Initial Date (server-maintained).
    pub const INITIAL_DATE: &str = "Initial Date";
    /// Activation Date.
    pub const ACTIVATION_DATE: &str = "Activation Date";
    /// Deactivation Date.
    pub const DEACTIVATION_DATE: &str = "Deactivation Date";
    /// Process Start Date.
    pub const PROCESS_START_DATE: &str = "Process Start Date";
    /// Protect Stop Date.
    pub const PROTECT_STOP_DATE: &str = "Protect Stop Date";
    /// Destroy Date (server-maintained).
    pub const DESTROY_DATE: &str = "Destroy Date";
    /// Compromise Date (server-maintained).
    pub const COMPROMISE_DATE: &str = "Compromise Date";
    /// Compromise Occurrence Date.
    pub const COMPROMISE_OCCURRENCE_DATE: &str = "Compromise Occurrence Date";
    /// Revocation Reason (server-maintained).
    pub const REVOCATION_REASON: &str = "Revocation Reason";
    /// Last Change Date (server-maintained).
    pub const LAST_CHANGE_DATE: &str = "Last Change Date";
    /// Link.
    pub const LINK: &str = "Link";
    /// Recommended curve (inside Cryptographic Domain Parameters).
    pub const CRYPTOGRAPHIC_DOMAIN_PARAMETERS: &str = "Cryptographic Domain Parameters";
    /// Certificate Type.
    pub const CERTIFICATE_TYPE: &str = "Certificate Type";
    /// Key Value Present (server-maintained).
    pub const KEY_VALUE_PRESENT: &str = "Key Value Present";
    /// Original Creation Date (server-maintained).
    pub const ORIGINAL_CREATION_DATE: &str = "Original Creation Date";
    /// Usage Limits (its Count is the server's; see `kmip::usage`).
    pub const USAGE_LIMITS: &str = "Usage Limits";
    /// Sensitive: the value is returned only wrapped (so, here, never).
    pub const SENSITIVE: &str = "Sensitive";
    /// Extractable: when false, the value never leaves the server.
    pub const EXTRACTABLE: &str = "Extractable";
    /// Always Sensitive (server-maintained).
    pub const ALWAYS_SENSITIVE: &str = "Always Sensitive";
    /// Never Extractable (server-maintained).
    pub const NEVER_EXTRACTABLE: &str = "Never Extractable";

    /// Attributes the server keeps itself: a client may read them, never set them.
    pub const SERVER_MAINTAINED: &[&str] = &[
        UNIQUE_IDENTIFIER,
        OBJECT_TYPE,
        STATE,
        INITIAL_DATE,
        DESTROY_DATE,
        COMPROMISE_DATE,
        REVOCATION_REASON,
        LAST_CHANGE_DATE,
        KEY_VALUE_PRESENT,
        ORIGINAL_CREATION_DATE,
        CRYPTOGRAPHIC_ALGORITHM,
        CRYPTOGRAPHIC_LENGTH,
        ALWAYS_SENSITIVE,
        NEVER_EXTRACTABLE,
    ];
    /// Attributes an object has at most one of.
    pub const SINGLE_VALUED: &[&str] = &[
        UNIQUE_IDENTIFIER,
        OBJECT_TYPE,
        CRYPTOGRAPHIC_ALGORITHM,
        CRYPTOGRAPHIC_LENGTH,
        CRYPTOGRAPHIC_USAGE_MASK,
        STATE,
        INITIAL_DATE,
        ACTIVATION_DATE,
        DEACTIVATION_DATE,
        DESTROY_DATE,
        COMPROMISE_DATE,
        COMPROMISE_OCCURRENCE_DATE,
        REVOCATION_REASON,
        LAST_CHANGE_DATE,
        CERTIFICATE_TYPE,
        CRYPTOGRAPHIC_DOMAIN_PARAMETERS,
        USAGE_LIMITS,
        SENSITIVE,
        EXTRACTABLE,
        ALWAYS_SENSITIVE,
        NEVER_EXTRACTABLE,
    ];
}

/// Tags of the structure fields the service reads (KMIP tag numbers).
pub mod field {
    /// Name Value (in Name).
    pub const NAME_VALUE: u32 = 0x420055;
    /// Name Type (in Name).
    pub const NAME_TYPE: u32 = 0x420054;
    /// Link Type (in Link).
    pub const LINK_TYPE: u32 = 0x42004B;
    /// Linked Object Identifier (in Link).
    pub const LINKED_OBJECT_IDENTIFIER: u32 = 0x42004C;
    /// Revocation Reason Code (in Revocation Reason).
    pub const REVOCATION_REASON_CODE: u32 = 0x420082;
    /// Revocation Message (in Revocation Reason).
    pub const REVOCATION_MESSAGE: u32 = 0x420080;
    /// Recommended Curve (in Cryptographic Domain Parameters).
    pub const RECOMMENDED_CURVE: u32 = 0x420075;
    /// Usage Limits Count (in Usage Limits).
    pub const USAGE_LIMITS_COUNT: u32 = 0x420096;
    /// Usage Limits Total (in Usage Limits).
    pub const USAGE_LIMITS_TOTAL: u32 = 0x420097;
    /// Usage Limits Unit (in Usage Limits).
    pub const USAGE_LIMITS_UNIT: u32 = 0x420098;
}

/// KMIP Link Type values the service sets.
pub mod link_type {
    /// Public Key Link (on a private key).
    pub const PUBLIC_KEY: u32 = 0x102;
    /// Private Key Link (on a public key).
    pub const PRIVATE_KEY: u32 = 0x103;
    /// Replacement Object Link (on a re-keyed object).
    pub const REPLACEMENT_OBJECT: u32 = 0x106;
    /// Replaced Object Link (on the new key of a ReKey).
    pub const REPLACED_OBJECT: u32 = 0x107;
}

/// A Name attribute value.
pub fn name_value(name: &str) -> AttrValue {
    AttrValue::Struct(vec![
        (field::NAME_VALUE, AttrValue::Text(name.to_string())),
        (field::NAME_TYPE, AttrValue::Enum(1)),
    ])
}

/// A Link attribute value.
pub fn link_value(link_type: u32, to: Uuid) -> AttrValue {
    AttrValue::Struct(vec![
        (field::LINK_TYPE, AttrValue::Enum(link_type)),
        (
            field::LINKED_OBJECT_IDENTIFIER,
            AttrValue::Text(to.to_string()),
        ),
    ])
}

/// Hash functions an operation may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmipHash {
    /// SHA-1 (verification of old signatures only).
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// How Encrypt and Decrypt use a symmetric key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmipCipher {
    /// AES-GCM with a tag of `tag_len` bytes (12 to 16).
    AesGcm {
        /// Tag length in bytes.
        tag_len: usize,
    },
    /// AES-CBC, with PKCS#5 padding or none (whole blocks).
    AesCbc {
        /// PKCS#5 padding.
        pad: bool,
    },
}

/// How Sign and SignatureVerify use a key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmipSignature {
    /// RSASSA-PSS, MGF1 with the same hash, salt as long as the hash.
    RsaPss(KmipHash),
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(KmipHash),
    /// ECDSA, DER-encoded signature.
    Ecdsa(KmipHash),
}

/// What a new key pair is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmipKeyPairSpec {
    /// RSA with a modulus of this many bits.
    Rsa(u32),
    /// ECDSA/ECDH on P-256, P-384 or P-521 (the Recommended Curve's KMIP value).
    Ec(u32),
}

/// KMIP Cryptographic Algorithm values the service acts on.
pub mod algorithm {
    /// AES.
    pub const AES: u32 = 3;
    /// RSA.
    pub const RSA: u32 = 4;
    /// ECDSA.
    pub const ECDSA: u32 = 6;
    /// HMAC-SHA1.
    pub const HMAC_SHA1: u32 = 7;
    /// HMAC-SHA224.
    pub const HMAC_SHA224: u32 = 8;
    /// HMAC-SHA256.
    pub const HMAC_SHA256: u32 = 9;
    /// HMAC-SHA384.
    pub const HMAC_SHA384: u32 = 10;
    /// HMAC-SHA512.
    pub const HMAC_SHA512: u32 = 11;
    /// ECDH.
    pub const ECDH: u32 = 0x0E;
    /// EC.
    pub const EC: u32 = 0x1A;
}

/// KMIP Recommended Curve values the service supports.
pub mod curve {
    /// P-256.
    pub const P_256: u32 = 7;
    /// P-384.
    pub const P_384: u32 = 10;
    /// P-521.
    pub const P_521: u32 = 13;
}

/// What the keystore's opaque attribute column holds: version 1 of the stored form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StoredAttributes {
    /// Format version (1).
    pub v: u32,
    /// Client-visible attributes (the server-maintained ones are computed on read).
    pub attrs: Vec<Attribute>,
    /// The key format the material is stored in.
    pub format: u32,
    /// Cryptographic Algorithm.
    pub algorithm: Option<u32>,
    /// Cryptographic Length.
    pub length: Option<i32>,
    /// Secret Data Type, Certificate Type or Opaque Data Type.
    #[serde(default)]
    pub subtype: Option<u32>,
    /// The key format the client registered the object in (Get answers in it by
    /// default); the stored `format` when absent.
    #[serde(default)]
    pub presented: Option<u32>,
    /// When it became Active (seconds).
    pub activated: Option<i64>,
    /// When it was deactivated (seconds).
    pub deactivated: Option<i64>,
    /// When it was compromised (seconds).
    pub compromised: Option<i64>,
    /// When it was destroyed (seconds).
    pub destroyed: Option<i64>,
    /// Revocation reason code and message.
    pub revocation: Option<(u32, Option<String>)>,
    /// Last change (seconds).
    pub changed: i64,
    /// Certificate that last changed it.
    pub updated_by: Option<Uuid>,
    /// Certificate that destroyed it.
    pub destroyed_by: Option<Uuid>,
    /// It was Sensitive from its creation (and, Sensitive being one-way, still is):
    /// Always Sensitive.
    #[serde(default)]
    pub born_sensitive: bool,
    /// It was not Extractable from its creation (and still is not): Never Extractable.
    #[serde(default)]
    pub born_unextractable: bool,
}

impl StoredAttributes {
    /// The value of the client's (first) attribute `name`, if any.
    pub(crate) fn value(&self, name: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|a| a.name == name).map(|a| &a.value)
    }

    /// A date attribute the client set (seconds), if any.
    pub(crate) fn date(&self, name: &str) -> Option<i64> {
        match self.value(name)? {
            AttrValue::DateTime(t) => Some(*t),
            _ => None,
        }
    }

    /// The Activation Date: the client's, else when an Activate made the object Active.
    pub(crate) fn activation(&self) -> Option<i64> {
        self.date(names::ACTIVATION_DATE).or(self.activated)
    }

    /// The Deactivation Date: the client's, else when a Revoke deactivated the object.
    pub(crate) fn deactivation(&self) -> Option<i64> {
        self.date(names::DEACTIVATION_DATE).or(self.deactivated)
    }

    /// The state at `now` (seconds): the stored state moved on by KMIP's transitions on
    /// time. A Pre-Active object whose Activation Date has come is Active, and an Active
    /// one whose Deactivation Date has come is Deactivated. Nothing else moves with time,
    /// so a stored state is never ahead of this one.
    pub(crate) fn state_at(&self, stored: KmipState, now: i64) -> KmipState {
        let due = |name: &str| self.date(name).is_some_and(|t| t <= now);
        let mut state = stored;
        if state == KmipState::PreActive && due(names::ACTIVATION_DATE) {
            state = KmipState::Active;
        }
        if state == KmipState::Active && due(names::DEACTIVATION_DATE) {
            state = KmipState::Deactivated;
        }
        state
    }
}
