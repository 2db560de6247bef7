//! EP11 (Enterprise PKCS#11) semantics on a crypto unit: stateless key blobs, sealed
//! multi-part states, PKCS#11 attribute rules and the mechanisms GREP11 serves. Sans-I/O:
//! every primitive goes through the [`CryptoProvider`]. The byte formats are in [`object`];
//! the front end (`strongroom-grep11`) only converts protobuf to these calls.
//!
//! Errors carry a PKCS#11 return value (`CKR_*`) and a detail that never holds key
//! material or data.

mod attrbound;
pub mod attrs;
pub mod consts;
pub mod object;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use strongroom_model::InstanceId;
use zeroize::Zeroizing;

use crate::provider::{
    AeadAlg, AsymKind, BlockCipher, CipherMode, Curve, DigestAlg, MacAlg, PreparedPrivate,
    PublicInfo, RsaPadding, SignScheme,
};
use crate::secret::KeyMaterial;
use crate::{CryptoUnit, EngineError, MkId};

pub use attrs::{AttrValue, Attrs, Template};
use consts::{cka, ckf, ckk, ckm, cko, ckr};
use object::Parsed;

/// An EP11 error: a CK_RV and a detail for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail} (CKR 0x{ckr:x})")]
pub struct Ep11Error {
    /// The PKCS#11 return value.
    pub ckr: u64,
    /// What went wrong (never secrets).
    pub detail: String,
}

impl Ep11Error {
    /// An error with a code and a detail.
    pub fn new(ckr: u64, detail: impl Into<String>) -> Self {
        Ep11Error {
            ckr,
            detail: detail.into(),
        }
    }
}

fn err<T>(ckr: u64, detail: impl Into<String>) -> Result<T, Ep11Error> {
    Err(Ep11Error::new(ckr, detail))
}

/// Largest input of one call, and the most data a buffered multi-part state may hold.
pub const MAX_DATA: usize = 4 * 1024 * 1024;
/// Most bytes a multi-part state buffers (hash-then-sign, MAC, digest, GCM): the state
/// travels with every call, so it is kept small.
pub const MAX_STATE_DATA: usize = 1024 * 1024;
const CACHE_ENTRIES: usize = 20_000;
const SPENT_GENERATION: usize = 500_000;

/// Mechanism parameters (the `Mechanism.Parameter` oneof of GREP11).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MechParam {
    /// No parameter.
    #[default]
    None,
    /// Raw bytes (`ParameterB`): an IV, a peer public value.
    Bytes(Vec<u8>),
    /// RSA-OAEP: hash mechanism, MGF (CKG_MGF1_*), label.
    Oaep {
        /// CKM_* of the hash.
        hash: u64,
        /// CKG_MGF1_* value.
        mgf: u64,
        /// Encoding parameter (label).
        label: Vec<u8>,
    },
    /// RSA-PSS: hash mechanism, MGF, salt length.
    Pss {
        /// CKM_* of the hash.
        hash: u64,
        /// CKG_MGF1_* value.
        mgf: u64,
        /// Salt length in bytes.
        salt: u64,
    },
    /// ECDH1: KDF (CKD_*), shared data, the peer's public point.
    Ecdh {
        /// CKD_* value.
        kdf: u64,
        /// Shared data (must be empty with CKD_NULL).
        shared: Vec<u8>,
        /// Peer public data.
        public: Vec<u8>,
    },
    /// A parameter kind this server does not implement (by its oneof field number).
    Unsupported(u32),
}

/// A mechanism with its parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mech {
    /// CKM_* code.
    pub code: u64,
    /// Parameter.
    pub param: MechParam,
}

impl Mech {
    /// A mechanism without parameter.
    pub fn new(code: u64) -> Self {
        Mech {
            code,
            param: MechParam::None,
        }
    }
}

/// The four kinds of multi-part operation (and digests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Digest*.
    Digest = 1,
    /// Encrypt*.
    Encrypt = 2,
    /// Decrypt*.
    Decrypt = 3,
    /// Sign*.
    Sign = 4,
    /// Verify*.
    Verify = 5,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Digest => "digest",
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::Sign => "sign",
            Op::Verify => "verify",
        }
    }
}

/// A key or key pair created by the unit, as GREP11 returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The key blob (sealed object or MACed SPKI).
    pub blob: Vec<u8>,
    /// The check value (see GenerateKey/UnwrapKey/DeriveKey).
    pub checksum: Vec<u8>,
    /// The key's attributes.
    pub attrs: Attrs,
}

/// State ids already used: the current generation and the previous one.
type Spent = (HashSet<[u8; 16]>, HashSet<[u8; 16]>);

/// What the unit remembers between calls: parsed keys (by blob digest) and the ids of
/// states already used.
#[derive(Default)]
pub(crate) struct Ep11Cache {
    keys: Mutex<HashMap<[u8; 32], Arc<Resolved>>>,
    spent: Mutex<Spent>,
}

/// A key blob opened and parsed.
pub(crate) struct Resolved {
    attrs: Attrs,
    body: Body,
}

enum Body {
    Secret(KeyMaterial),
    Private(Box<dyn PreparedPrivate>),
    Public(PublicInfo),
}

/// Which argument a blob was, for the error code of a bad blob.
#[derive(Clone, Copy)]
enum Role {
    Key,
    Wrapping,
    Unwrapping,
}

impl Role {
    fn bad_blob(self) -> u64 {
        match self {
            Role::Key => ckr::KEY_HANDLE_INVALID,
            Role::Wrapping => ckr::WRAPPING_KEY_HANDLE_INVALID,
            Role::Unwrapping => ckr::UNWRAPPING_KEY_HANDLE_INVALID,
        }
    }
}

fn engine_err(e: EngineError, role: Role) -> Ep11Error {
    match e {
        // The detail does not echo the blob's master key id: a blob of another instance
        // must not tell its holder whose it is, nor confirm it against this unit's.
        EngineError::WrongMasterKey { .. } => Ep11Error::new(
            ckr::IBM_WKID_MISMATCH,
            "the key blob is sealed under a master key this crypto unit does not hold: a blob of another instance, or one older than the last completed rotation (rewrap blobs during a rotation with RewrapKeyBlob)",
        ),
        EngineError::NotInitialized => Ep11Error::new(
            ckr::IBM_WK_NOT_INITIALIZED,
            "the crypto unit has no master key",
        ),
        EngineError::BlobMalformed => Ep11Error::new(role.bad_blob(), "the key blob is malformed or truncated"),
        EngineError::BlobAuthFailed => Ep11Error::new(
            role.bad_blob(),
            "the key blob failed authentication (tampered, or made for another instance)",
        ),
        _ => Ep11Error::new(ckr::GENERAL_ERROR, "cryptographic operation failed"),
    }
}

/// The digest algorithm of a digest mechanism (CKM_SHA_1 … and the IBM ids).
pub fn digest_of(code: u64) -> Option<DigestAlg> {
    Some(match code {
        ckm::SHA_1 => DigestAlg::Sha1,
        ckm::SHA224 => DigestAlg::Sha224,
        ckm::SHA256 => DigestAlg::Sha256,
        ckm::SHA384 => DigestAlg::Sha384,
        ckm::SHA512 => DigestAlg::Sha512,
        ckm::SHA512_256 | ckm::IBM_SHA512_256 => DigestAlg::Sha512_256,
        ckm::SHA512_224 | ckm::IBM_SHA512_224 => DigestAlg::Sha512_224,
        ckm::IBM_SHA3_256 => DigestAlg::Sha3_256,
        ckm::IBM_SHA3_384 => DigestAlg::Sha3_384,
        ckm::IBM_SHA3_512 => DigestAlg::Sha3_512,
        _ => return None,
    })
}

fn digest_len(d: DigestAlg) -> usize {
    match d {
        DigestAlg::Sha1 => 20,
        DigestAlg::Sha224 | DigestAlg::Sha512_224 => 28,
        DigestAlg::Sha256 | DigestAlg::Sha512_256 | DigestAlg::Sha3_256 => 32,
        DigestAlg::Sha384 | DigestAlg::Sha3_384 => 48,
        DigestAlg::Sha512 | DigestAlg::Sha3_512 => 64,
    }
}

/// The hash of a CKG_MGF1_* value.
fn mgf_hash(mgf: u64) -> Option<DigestAlg> {
    Some(match mgf {
        1 => DigestAlg::Sha1,
        2 => DigestAlg::Sha256,
        3 => DigestAlg::Sha384,
        4 => DigestAlg::Sha512,
        5 => DigestAlg::Sha224,
        _ => return None,
    })
}

fn sha1_or_2(d: DigestAlg) -> bool {
    matches!(
        d,
        DigestAlg::Sha1
            | DigestAlg::Sha224
            | DigestAlg::Sha256
            | DigestAlg::Sha384
            | DigestAlg::Sha512
    )
}

/// What a mechanism does, resolved from its code and parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Cipher {
        cipher: BlockCipher,
        mode: CipherMode,
        iv: Vec<u8>,
    },
    Gcm {
        iv: [u8; 12],
        aad: Vec<u8>,
    },
    Rsa {
        padding: RsaPadding,
        label: Vec<u8>,
    },
    Digest(DigestAlg),
    /// CKM_IBM_EC_MULTIPLY: d·Q with the private key's scalar (Encrypt, single-part).
    EcMultiply,
    Mac {
        alg: MacAlg,
        len: usize,
    },
    Sign {
        scheme: SignScheme,
        hash: Option<DigestAlg>,
    },
}

impl Plan {
    fn multi_part(&self) -> bool {
        match self {
            Plan::Rsa { .. } | Plan::EcMultiply => false,
            Plan::Sign { hash, .. } => hash.is_some(),
            _ => true,
        }
    }
}

fn iv_param(m: &Mech, len: usize) -> Result<Vec<u8>, Ep11Error> {
    match &m.param {
        MechParam::Bytes(b) if b.len() == len => Ok(b.clone()),
        _ => err(
            ckr::MECHANISM_PARAM_INVALID,
            format!(
                "mechanism 0x{:x} needs a {len}-byte IV in ParameterB",
                m.code
            ),
        ),
    }
}

fn no_param(m: &Mech) -> Result<(), Ep11Error> {
    match &m.param {
        MechParam::None => Ok(()),
        MechParam::Bytes(b) if b.is_empty() => Ok(()),
        _ => err(
            ckr::MECHANISM_PARAM_INVALID,
            format!("mechanism 0x{:x} takes no parameter", m.code),
        ),
    }
}

fn hmac_general_len(m: &Mech, full: usize) -> Result<usize, Ep11Error> {
    // CK_MAC_GENERAL_PARAMS: a CK_ULONG, sent as 8 (or 4) big-endian bytes in ParameterB.
    let n = match &m.param {
        MechParam::Bytes(b) if b.len() == 8 || b.len() == 4 => {
            b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x))
        }
        _ => return err(
            ckr::MECHANISM_PARAM_INVALID,
            "a *_GENERAL MAC mechanism needs the MAC length as a big-endian CK_ULONG in ParameterB",
        ),
    };
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n == 0 || n > full {
        return err(
            ckr::MECHANISM_PARAM_INVALID,
            format!("MAC length {n} is outside 1..={full}"),
        );
    }
    Ok(n)
}

fn plan(m: &Mech, op: Op) -> Result<Plan, Ep11Error> {
    use ckm::*;
    let cipher_ops = matches!(op, Op::Encrypt | Op::Decrypt);
    let sign_ops = matches!(op, Op::Sign | Op::Verify);
    let p = match m.code {
        AES_ECB | AES_CBC | AES_CBC_PAD | DES3_ECB | DES3_CBC | DES3_CBC_PAD if cipher_ops => {
            let cipher = if matches!(m.code, AES_ECB | AES_CBC | AES_CBC_PAD) {
                BlockCipher::Aes
            } else {
                BlockCipher::Des3
            };
            let mode = match m.code {
                AES_ECB | DES3_ECB => CipherMode::Ecb,
                AES_CBC | DES3_CBC => CipherMode::Cbc,
                _ => CipherMode::CbcPad,
            };
            let iv = if mode == CipherMode::Ecb {
                no_param(m)?;
                Vec::new()
            } else {
                iv_param(m, cipher.block_len())?
            };
            Plan::Cipher { cipher, mode, iv }
        }
        AES_GCM if cipher_ops => {
            // ParameterB = the 12-byte IV, then the additional authenticated data (if any);
            // the tag is 16 bytes (GREP11 does not document a GCM parameter encoding).
            let MechParam::Bytes(b) = &m.param else {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "CKM_AES_GCM needs ParameterB = 12-byte IV followed by the AAD",
                );
            };
            if b.len() < 12 {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "CKM_AES_GCM needs ParameterB = 12-byte IV followed by the AAD",
                );
            }
            let mut iv = [0u8; 12];
            iv.copy_from_slice(&b[..12]);
            Plan::Gcm {
                iv,
                aad: b[12..].to_vec(),
            }
        }
        IBM_EC_MULTIPLY if op == Op::Encrypt => {
            no_param(m)?;
            Plan::EcMultiply
        }
        RSA_PKCS if cipher_ops => {
            no_param(m)?;
            Plan::Rsa {
                padding: RsaPadding::Pkcs1,
                label: Vec::new(),
            }
        }
        RSA_PKCS_OAEP if cipher_ops => {
            let MechParam::Oaep { hash, mgf, label } = &m.param else {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "CKM_RSA_PKCS_OAEP needs RSAOAEPParameter",
                );
            };
            let (Some(h), Some(g)) = (digest_of(*hash).filter(|d| sha1_or_2(*d)), mgf_hash(*mgf)) else {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "OAEP: HashMech must be SHA-1 or SHA-2 and Mgf a CKG_MGF1_SHA* value",
                );
            };
            let padding = if h == g && h != DigestAlg::Sha224 {
                RsaPadding::Oaep(h)
            } else {
                RsaPadding::OaepWith { hash: h, mgf: g }
            };
            Plan::Rsa {
                padding,
                label: label.clone(),
            }
        }
        d if op == Op::Digest && digest_of(d).is_some() => {
            no_param(m)?;
            Plan::Digest(digest_of(d).ok_or_else(|| Ep11Error::new(ckr::MECHANISM_INVALID, "digest"))?)
        }
        SHA_1_HMAC | SHA224_HMAC | SHA256_HMAC | SHA384_HMAC | SHA512_HMAC | SHA512_224_HMAC
        | SHA512_256_HMAC | IBM_SHA512_224_HMAC | IBM_SHA512_256_HMAC | SHA_1_HMAC_GENERAL
        | SHA224_HMAC_GENERAL | SHA256_HMAC_GENERAL | SHA384_HMAC_GENERAL | SHA512_HMAC_GENERAL
        | SHA512_224_HMAC_GENERAL | SHA512_256_HMAC_GENERAL
            if sign_ops =>
        {
            let d = match m.code {
                SHA_1_HMAC | SHA_1_HMAC_GENERAL => DigestAlg::Sha1,
                SHA224_HMAC | SHA224_HMAC_GENERAL => DigestAlg::Sha224,
                SHA256_HMAC | SHA256_HMAC_GENERAL => DigestAlg::Sha256,
                SHA384_HMAC | SHA384_HMAC_GENERAL => DigestAlg::Sha384,
                SHA512_224_HMAC | SHA512_224_HMAC_GENERAL | IBM_SHA512_224_HMAC => {
                    DigestAlg::Sha512_224
                }
                SHA512_256_HMAC | SHA512_256_HMAC_GENERAL | IBM_SHA512_256_HMAC => {
                    DigestAlg::Sha512_256
                }
                _ => DigestAlg::Sha512,
            };
            let general = matches!(
                m.code,
                SHA_1_HMAC_GENERAL
                    | SHA224_HMAC_GENERAL
                    | SHA256_HMAC_GENERAL
                    | SHA384_HMAC_GENERAL
                    | SHA512_HMAC_GENERAL
                    | SHA512_224_HMAC_GENERAL
                    | SHA512_256_HMAC_GENERAL
            );
            let len = if general {
                hmac_general_len(m, digest_len(d))?
            } else {
                no_param(m)?;
                digest_len(d)
            };
            Plan::Mac {
                alg: MacAlg::Hmac(d),
                len,
            }
        }
        AES_CMAC | AES_CMAC_GENERAL | DES3_CMAC | IBM_CMAC if sign_ops => {
            let c = if m.code == DES3_CMAC {
                BlockCipher::Des3
            } else {
                BlockCipher::Aes
            };
            let len = if m.code == AES_CMAC_GENERAL {
                hmac_general_len(m, c.block_len())?
            } else {
                no_param(m)?;
                c.block_len()
            };
            Plan::Mac {
                alg: MacAlg::Cmac(c),
                len,
            }
        }
        RSA_PKCS if sign_ops => {
            no_param(m)?;
            Plan::Sign {
                scheme: SignScheme::RsaPkcs1Raw,
                hash: None,
            }
        }
        RSA_X9_31 | SHA1_RSA_X9_31 if sign_ops => {
            no_param(m)?;
            Plan::Sign {
                scheme: SignScheme::RsaX931,
                hash: (m.code == SHA1_RSA_X9_31).then_some(DigestAlg::Sha1),
            }
        }
        SHA1_RSA_PKCS | SHA224_RSA_PKCS if sign_ops => {
            no_param(m)?;
            Plan::Sign {
                scheme: SignScheme::RsaPkcs1Raw,
                hash: Some(if m.code == SHA1_RSA_PKCS {
                    DigestAlg::Sha1
                } else {
                    DigestAlg::Sha224
                }),
            }
        }
        SHA256_RSA_PKCS | SHA384_RSA_PKCS | SHA512_RSA_PKCS if sign_ops => {
            no_param(m)?;
            let d = match m.code {
                SHA256_RSA_PKCS => DigestAlg::Sha256,
                SHA384_RSA_PKCS => DigestAlg::Sha384,
                _ => DigestAlg::Sha512,
            };
            Plan::Sign {
                scheme: SignScheme::RsaPkcs1(d),
                hash: Some(d),
            }
        }
        RSA_PKCS_PSS | SHA1_RSA_PKCS_PSS | SHA224_RSA_PKCS_PSS | SHA256_RSA_PKCS_PSS
        | SHA384_RSA_PKCS_PSS | SHA512_RSA_PKCS_PSS
            if sign_ops =>
        {
            let MechParam::Pss { hash, mgf, salt } = &m.param else {
                return err(ckr::MECHANISM_PARAM_INVALID, "RSA-PSS needs RSAPSSParameter");
            };
            let (Some(d), Some(g)) = (digest_of(*hash).filter(|d| sha1_or_2(*d)), mgf_hash(*mgf)) else {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "PSS: HashMech must be SHA-1 or SHA-2 and Mgf a CKG_MGF1_SHA* value",
                );
            };
            let named = match m.code {
                SHA1_RSA_PKCS_PSS => Some(DigestAlg::Sha1),
                SHA224_RSA_PKCS_PSS => Some(DigestAlg::Sha224),
                SHA256_RSA_PKCS_PSS => Some(DigestAlg::Sha256),
                SHA384_RSA_PKCS_PSS => Some(DigestAlg::Sha384),
                SHA512_RSA_PKCS_PSS => Some(DigestAlg::Sha512),
                _ => None,
            };
            if named.is_some_and(|n| n != d) {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "PSS: HashMech must be the mechanism's hash",
                );
            }
            // 0 (unset in proto3) and 0xffffffff (XCP_PSS_DEFAULT_VALUE) mean the hash length.
            let hl = digest_len(d) as u64;
            let salt = if *salt == 0 || *salt == 0xffff_ffff { hl } else { *salt };
            let salt = u32::try_from(salt).map_err(|_| {
                Ep11Error::new(ckr::MECHANISM_PARAM_INVALID, "PSS salt length too large")
            })?;
            let scheme = if d == g && u64::from(salt) == hl && !matches!(d, DigestAlg::Sha1 | DigestAlg::Sha224) {
                SignScheme::RsaPss(d)
            } else {
                SignScheme::RsaPssWith { hash: d, mgf: g, salt }
            };
            Plan::Sign {
                scheme,
                hash: named,
            }
        }
        ECDSA | ECDSA_SHA1 | ECDSA_SHA224 | ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512 | IBM_ECDSA_SHA224
        | IBM_ECDSA_SHA256 | IBM_ECDSA_SHA384 | IBM_ECDSA_SHA512
            if sign_ops =>
        {
            no_param(m)?;
            let hash = match m.code {
                ECDSA => None,
                ECDSA_SHA1 => Some(DigestAlg::Sha1),
                ECDSA_SHA224 | IBM_ECDSA_SHA224 => Some(DigestAlg::Sha224),
                ECDSA_SHA256 | IBM_ECDSA_SHA256 => Some(DigestAlg::Sha256),
                ECDSA_SHA384 | IBM_ECDSA_SHA384 => Some(DigestAlg::Sha384),
                _ => Some(DigestAlg::Sha512),
            };
            Plan::Sign {
                scheme: SignScheme::EcdsaDigest,
                hash,
            }
        }
        DSA | DSA_SHA1 | DSA_SHA224 | DSA_SHA256 | DSA_SHA384 | DSA_SHA512 if sign_ops => {
            no_param(m)?;
            let hash = match m.code {
                DSA => None,
                DSA_SHA1 => Some(DigestAlg::Sha1),
                DSA_SHA224 => Some(DigestAlg::Sha224),
                DSA_SHA256 => Some(DigestAlg::Sha256),
                DSA_SHA384 => Some(DigestAlg::Sha384),
                _ => Some(DigestAlg::Sha512),
            };
            Plan::Sign {
                scheme: SignScheme::DsaDigest,
                hash,
            }
        }
        IBM_ED25519_SHA512 if sign_ops => {
            no_param(m)?;
            Plan::Sign {
                scheme: SignScheme::Ed25519,
                hash: None,
            }
        }
        code => {
            return err(
                ckr::MECHANISM_INVALID,
                format!(
                    "mechanism 0x{code:x} is not implemented for {} by this server (see GetMechanismList)",
                    op.name()
                ),
            )
        }
    };
    Ok(p)
}

/// A mechanism this server implements: code, CKF_* flags, min and max key size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechInfo {
    /// CKM_* code.
    pub code: u64,
    /// Smallest key (bits for RSA/EC, bytes for secret keys).
    pub min: u64,
    /// Largest key.
    pub max: u64,
    /// CKF_* flags.
    pub flags: u64,
}

const fn mi(code: u64, min: u64, max: u64, flags: u64) -> MechInfo {
    MechInfo {
        code,
        min,
        max,
        flags,
    }
}

const ED: u64 = ckf::ENCRYPT | ckf::DECRYPT;
const EDWU: u64 = ED | ckf::WRAP | ckf::UNWRAP;
const SV: u64 = ckf::SIGN | ckf::VERIFY;
const EC_FLAGS: u64 = ckf::EC_F_P | ckf::EC_NAMEDCURVE | ckf::EC_UNCOMPRESS;

/// Every mechanism implemented, in the order GetMechanismList reports them (CKM_RSA_PKCS
/// first, as IBM's examples expect).
pub const MECHANISMS: &[MechInfo] = &[
    mi(ckm::RSA_PKCS, 2048, 8192, EDWU | SV),
    mi(
        ckm::RSA_PKCS_KEY_PAIR_GEN,
        2048,
        8192,
        ckf::GENERATE_KEY_PAIR,
    ),
    mi(ckm::RSA_PKCS_OAEP, 2048, 8192, EDWU),
    mi(ckm::RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA1_RSA_PKCS, 2048, 8192, SV),
    mi(
        ckm::RSA_X9_31_KEY_PAIR_GEN,
        2048,
        8192,
        ckf::GENERATE_KEY_PAIR,
    ),
    mi(ckm::RSA_X9_31, 2048, 8192, SV),
    mi(ckm::SHA1_RSA_X9_31, 2048, 8192, SV),
    mi(ckm::DSA_KEY_PAIR_GEN, 2048, 3072, ckf::GENERATE_KEY_PAIR),
    mi(ckm::DSA, 2048, 3072, SV),
    mi(ckm::DSA_SHA1, 2048, 3072, SV),
    mi(ckm::DSA_SHA224, 2048, 3072, SV),
    mi(ckm::DSA_SHA256, 2048, 3072, SV),
    mi(ckm::DSA_SHA384, 2048, 3072, SV),
    mi(ckm::DSA_SHA512, 2048, 3072, SV),
    mi(
        ckm::DH_PKCS_KEY_PAIR_GEN,
        2048,
        8192,
        ckf::GENERATE_KEY_PAIR,
    ),
    mi(ckm::DH_PKCS_DERIVE, 2048, 8192, ckf::DERIVE),
    mi(ckm::SHA224_RSA_PKCS, 2048, 8192, SV),
    mi(ckm::SHA256_RSA_PKCS, 2048, 8192, SV),
    mi(ckm::SHA384_RSA_PKCS, 2048, 8192, SV),
    mi(ckm::SHA512_RSA_PKCS, 2048, 8192, SV),
    mi(ckm::SHA1_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA224_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA256_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA384_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA512_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA512_224, 0, 0, ckf::DIGEST),
    mi(ckm::SHA512_224_HMAC, 1, 512, SV),
    mi(ckm::SHA512_224_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA512_256, 0, 0, ckf::DIGEST),
    mi(ckm::SHA512_256_HMAC, 1, 512, SV),
    mi(ckm::SHA512_256_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::DES2_KEY_GEN, 16, 16, ckf::GENERATE),
    mi(ckm::DES3_KEY_GEN, 24, 24, ckf::GENERATE),
    mi(ckm::DES3_ECB, 16, 24, EDWU),
    mi(ckm::DES3_CBC, 16, 24, EDWU),
    mi(ckm::DES3_CBC_PAD, 16, 24, EDWU),
    mi(ckm::DES3_CMAC, 24, 24, SV),
    mi(ckm::SHA_1, 0, 0, ckf::DIGEST),
    mi(ckm::SHA_1_HMAC, 1, 512, SV),
    mi(ckm::SHA_1_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA256, 0, 0, ckf::DIGEST),
    mi(ckm::SHA256_HMAC, 1, 512, SV),
    mi(ckm::SHA256_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA224, 0, 0, ckf::DIGEST),
    mi(ckm::SHA224_HMAC, 1, 512, SV),
    mi(ckm::SHA224_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA384, 0, 0, ckf::DIGEST),
    mi(ckm::SHA384_HMAC, 1, 512, SV),
    mi(ckm::SHA384_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA512, 0, 0, ckf::DIGEST),
    mi(ckm::SHA512_HMAC, 1, 512, SV),
    mi(ckm::SHA512_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::GENERIC_SECRET_KEY_GEN, 1, 512, ckf::GENERATE),
    mi(ckm::CONCATENATE_BASE_AND_KEY, 1, 512, ckf::DERIVE),
    mi(ckm::CONCATENATE_BASE_AND_DATA, 1, 512, ckf::DERIVE),
    mi(ckm::CONCATENATE_DATA_AND_BASE, 1, 512, ckf::DERIVE),
    mi(ckm::XOR_BASE_AND_DATA, 1, 512, ckf::DERIVE),
    mi(ckm::SHA1_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(ckm::SHA256_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(ckm::SHA384_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(ckm::SHA512_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(ckm::SHA224_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(
        ckm::EC_KEY_PAIR_GEN,
        256,
        521,
        ckf::GENERATE_KEY_PAIR | EC_FLAGS,
    ),
    mi(ckm::ECDSA, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA1, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA224, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA256, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA384, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA512, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDH1_DERIVE, 256, 521, ckf::DERIVE | EC_FLAGS),
    mi(ckm::AES_KEY_GEN, 16, 32, ckf::GENERATE),
    mi(ckm::AES_ECB, 16, 32, EDWU),
    mi(ckm::AES_CBC, 16, 32, EDWU),
    mi(ckm::AES_CBC_PAD, 16, 32, EDWU),
    mi(ckm::AES_GCM, 16, 32, EDWU),
    mi(ckm::AES_CMAC, 16, 32, SV),
    mi(ckm::AES_CMAC_GENERAL, 16, 32, SV),
    mi(ckm::IBM_SHA3_256, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_SHA3_384, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_SHA3_512, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_CMAC, 16, 32, SV),
    mi(ckm::IBM_ECDSA_SHA224, 256, 521, SV | EC_FLAGS),
    mi(ckm::IBM_ECDSA_SHA256, 256, 521, SV | EC_FLAGS),
    mi(ckm::IBM_ECDSA_SHA384, 256, 521, SV | EC_FLAGS),
    mi(ckm::IBM_ECDSA_SHA512, 256, 521, SV | EC_FLAGS),
    mi(ckm::IBM_SHA512_256, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_SHA512_224, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_SHA512_256_HMAC, 1, 512, SV),
    mi(ckm::IBM_SHA512_224_HMAC, 1, 512, SV),
    mi(ckm::IBM_ED25519_SHA512, 256, 256, SV | EC_FLAGS),
    mi(ckm::IBM_EC_MULTIPLY, 256, 521, ckf::ENCRYPT | EC_FLAGS),
    mi(ckm::IBM_TRANSPORTKEY, 0, 0, ckf::UNWRAP),
    mi(ckm::IBM_ATTRIBUTEBOUND_WRAP, 0, 0, ckf::WRAP | ckf::UNWRAP),
    mi(ckm::DSA_PARAMETER_GEN, 2048, 3072, ckf::GENERATE),
    mi(ckm::DH_PKCS_PARAMETER_GEN, 2048, 8192, ckf::GENERATE),
];

/// The info of one mechanism.
pub fn mechanism_info(code: u64) -> Option<MechInfo> {
    MECHANISMS.iter().copied().find(|m| m.code == code)
}

/// Curve of a CKA_EC_PARAMS value: a DER OID, or one of IBM's ASCII names.
pub fn curve_of_params(p: &[u8]) -> Option<Curve> {
    use crate::der::oid;
    if let Some((crate::der::tag::OID, c, [])) = crate::der::read_tlv(p) {
        return match c {
            x if x == oid::P256 => Some(Curve::P256),
            x if x == oid::P384 => Some(Curve::P384),
            x if x == oid::P521 => Some(Curve::P521),
            x if x == oid::SECP256K1 => Some(Curve::Secp256k1),
            x if x == oid::ED25519 => Some(Curve::Ed25519),
            _ => None,
        };
    }
    match p {
        b"P-256" | b"secp256r1" | b"prime256v1" => Some(Curve::P256),
        b"P-384" | b"secp384r1" => Some(Curve::P384),
        b"P-521" | b"secp521r1" => Some(Curve::P521),
        b"secp256k1" => Some(Curve::Secp256k1),
        b"Ed25519" | b"ED25519" => Some(Curve::Ed25519),
        _ => None,
    }
}

/// The DER of a curve's OID (CKA_EC_PARAMS).
pub fn params_of_curve(c: Curve) -> Vec<u8> {
    use crate::der::oid;
    let o = match c {
        Curve::P256 => oid::P256,
        Curve::P384 => oid::P384,
        Curve::P521 => oid::P521,
        Curve::Secp256k1 => oid::SECP256K1,
        Curve::Ed25519 => oid::ED25519,
    };
    let mut out = Vec::new();
    crate::der::write_tlv(&mut out, crate::der::tag::OID, o);
    out
}

/// A multi-part operation in progress (what a State blob carries).
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpState {
    id: [u8; 16],
    mech: Mech,
    key: Vec<u8>,
    iv: Vec<u8>,
    buf: Zeroizing<Vec<u8>>,
    /// An exported SHA-1/SHA-2 state (multi-part digests and hash-then-sign).
    hash: Zeroizing<Vec<u8>>,
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn take<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    if b.len() < 4 {
        return None;
    }
    let n = u32::from_be_bytes(b[..4].try_into().ok()?) as usize;
    let rest = &b[4..];
    if rest.len() < n {
        return None;
    }
    let (v, r) = rest.split_at(n);
    *b = r;
    Some(v)
}

fn take_u64(b: &mut &[u8]) -> Option<u64> {
    let v = take(b)?;
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

impl OpState {
    /// A fresh operation of `plan`: the chaining value starts at the mechanism's IV.
    fn start(id: [u8; 16], mech: &Mech, key: &[u8], plan: &Plan) -> OpState {
        OpState {
            id,
            mech: mech.clone(),
            key: key.to_vec(),
            iv: match plan {
                Plan::Cipher { iv, .. } => iv.clone(),
                _ => Vec::new(),
            },
            buf: Zeroizing::new(Vec::new()),
            hash: Zeroizing::new(Vec::new()),
        }
    }

    fn encode(&self) -> KeyMaterial {
        let mut out = Vec::with_capacity(64 + self.key.len() + self.buf.len());
        out.push(2);
        out.extend_from_slice(&self.id);
        put(&mut out, &self.mech.code.to_be_bytes());
        match &self.mech.param {
            MechParam::None => out.push(0),
            MechParam::Bytes(b) => {
                out.push(1);
                put(&mut out, b);
            }
            MechParam::Oaep { hash, mgf, label } => {
                out.push(2);
                put(&mut out, &hash.to_be_bytes());
                put(&mut out, &mgf.to_be_bytes());
                put(&mut out, label);
            }
            MechParam::Pss { hash, mgf, salt } => {
                out.push(3);
                put(&mut out, &hash.to_be_bytes());
                put(&mut out, &mgf.to_be_bytes());
                put(&mut out, &salt.to_be_bytes());
            }
            MechParam::Ecdh { .. } | MechParam::Unsupported(_) => out.push(0xff),
        }
        put(&mut out, &self.key);
        put(&mut out, &self.iv);
        put(&mut out, &self.buf);
        put(&mut out, &self.hash);
        KeyMaterial::new(out)
    }

    fn decode(mut b: &[u8]) -> Option<OpState> {
        let (&v, rest) = b.split_first()?;
        if v != 2 || rest.len() < 16 {
            return None;
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&rest[..16]);
        b = &rest[16..];
        let code = take_u64(&mut b)?;
        let (&kind, rest) = b.split_first()?;
        b = rest;
        let param = match kind {
            0 => MechParam::None,
            1 => MechParam::Bytes(take(&mut b)?.to_vec()),
            2 => MechParam::Oaep {
                hash: take_u64(&mut b)?,
                mgf: take_u64(&mut b)?,
                label: take(&mut b)?.to_vec(),
            },
            3 => MechParam::Pss {
                hash: take_u64(&mut b)?,
                mgf: take_u64(&mut b)?,
                salt: take_u64(&mut b)?,
            },
            _ => return None,
        };
        let key = take(&mut b)?.to_vec();
        let iv = take(&mut b)?.to_vec();
        let buf = Zeroizing::new(take(&mut b)?.to_vec());
        let hash = Zeroizing::new(take(&mut b)?.to_vec());
        b.is_empty().then_some(OpState {
            id,
            mech: Mech { code, param },
            key,
            iv,
            buf,
            hash,
        })
    }
}

/// The usage attribute an operation needs.
fn usage_attr(op: Op) -> (u64, &'static str) {
    match op {
        Op::Encrypt => (cka::ENCRYPT, "CKA_ENCRYPT"),
        Op::Decrypt => (cka::DECRYPT, "CKA_DECRYPT"),
        Op::Sign => (cka::SIGN, "CKA_SIGN"),
        Op::Verify => (cka::VERIFY, "CKA_VERIFY"),
        Op::Digest => (cka::DERIVE, "CKA_DERIVE"),
    }
}

fn permit(k: &Resolved, attr: u64, name: &str) -> Result<(), Ep11Error> {
    if k.attrs.flag(attr) {
        Ok(())
    } else {
        err(
            ckr::KEY_FUNCTION_NOT_PERMITTED,
            format!("the key's {name} attribute is false"),
        )
    }
}

fn type_mismatch(plan: &Plan) -> Ep11Error {
    Ep11Error::new(
        ckr::KEY_TYPE_INCONSISTENT,
        format!(
            "the key's type does not fit the mechanism ({})",
            plan_name(plan)
        ),
    )
}

fn plan_name(plan: &Plan) -> &'static str {
    match plan {
        Plan::Cipher {
            cipher: BlockCipher::Aes,
            ..
        }
        | Plan::Gcm { .. } => "an AES key is needed",
        Plan::Cipher { .. } => "a DES2 or DES3 key is needed",
        Plan::Rsa { .. } => "an RSA key is needed",
        Plan::Digest(_) => "no key",
        Plan::EcMultiply => "an EC private key on P-256, P-384, P-521 or secp256k1 is needed",
        Plan::Sign {
            scheme: SignScheme::DsaDigest,
            ..
        } => "a DSA key is needed",
        Plan::Mac {
            alg: MacAlg::Cmac(BlockCipher::Aes),
            ..
        } => "an AES key is needed",
        Plan::Mac {
            alg: MacAlg::Cmac(BlockCipher::Des3),
            ..
        } => "a DES3 key is needed",
        Plan::Mac { .. } => "a secret key is needed",
        Plan::Sign {
            scheme:
                SignScheme::RsaPkcs1(_)
                | SignScheme::RsaPss(_)
                | SignScheme::RsaPssWith { .. }
                | SignScheme::RsaPkcs1Raw
                | SignScheme::RsaX931,
            ..
        } => "an RSA key is needed",
        Plan::Sign {
            scheme: SignScheme::EcdsaDigest,
            ..
        } => "an EC key on P-256, P-384, P-521 or secp256k1 is needed",
        Plan::Sign {
            scheme: SignScheme::Ed25519,
            ..
        } => "an Ed25519 key is needed",
    }
}

fn kind_of(k: &Resolved) -> Option<AsymKind> {
    match &k.body {
        Body::Private(p) => Some(p.public().kind),
        Body::Public(p) => Some(p.kind),
        Body::Secret(_) => None,
    }
}

/// Checks that the key fits the plan (type and, for asymmetric keys, the half needed).
fn fits(plan: &Plan, op: Op, k: &Resolved) -> Result<(), Ep11Error> {
    let kt = k.attrs.key_type();
    let private_op = matches!(op, Op::Decrypt | Op::Sign);
    let ok = match plan {
        Plan::Cipher {
            cipher: BlockCipher::Aes,
            ..
        }
        | Plan::Gcm { .. } => kt == ckk::AES && matches!(k.body, Body::Secret(_)),
        Plan::Cipher { .. } => {
            matches!(kt, ckk::DES2 | ckk::DES3) && matches!(k.body, Body::Secret(_))
        }
        Plan::Mac {
            alg: MacAlg::Cmac(BlockCipher::Aes),
            ..
        } => kt == ckk::AES,
        Plan::Mac {
            alg: MacAlg::Cmac(BlockCipher::Des3),
            ..
        } => kt == ckk::DES3,
        Plan::Mac { .. } => {
            matches!(k.body, Body::Secret(_)) && !matches!(kt, ckk::DES2 | ckk::DES3)
        }
        Plan::Rsa { .. }
        | Plan::Sign {
            scheme:
                SignScheme::RsaPkcs1(_)
                | SignScheme::RsaPss(_)
                | SignScheme::RsaPssWith { .. }
                | SignScheme::RsaPkcs1Raw
                | SignScheme::RsaX931,
            ..
        } => {
            matches!(kind_of(k), Some(AsymKind::Rsa { .. }))
        }
        Plan::Sign {
            scheme: SignScheme::EcdsaDigest,
            ..
        } => {
            matches!(kind_of(k), Some(AsymKind::Ec(c)) if c != Curve::Ed25519)
        }
        Plan::Sign {
            scheme: SignScheme::DsaDigest,
            ..
        } => matches!(kind_of(k), Some(AsymKind::Dsa { .. })),
        Plan::Sign {
            scheme: SignScheme::Ed25519,
            ..
        } => {
            matches!(kind_of(k), Some(AsymKind::Ec(Curve::Ed25519)))
        }
        Plan::Digest(_) => true,
        Plan::EcMultiply => {
            matches!(&k.body, Body::Private(_))
                && matches!(kind_of(k), Some(AsymKind::Ec(c)) if c != Curve::Ed25519)
        }
    };
    if !ok {
        return Err(type_mismatch(plan));
    }
    let asym = matches!(
        plan,
        Plan::Rsa { .. }
            | Plan::Sign {
                scheme: SignScheme::RsaPkcs1(_)
                    | SignScheme::RsaPss(_)
                    | SignScheme::RsaPssWith { .. }
                    | SignScheme::RsaPkcs1Raw
                    | SignScheme::RsaX931
                    | SignScheme::EcdsaDigest
                    | SignScheme::DsaDigest
                    | SignScheme::Ed25519,
                ..
            }
    );
    if asym {
        match (&k.body, private_op) {
            (Body::Private(_), true) | (Body::Public(_), false) => {}
            (_, true) => {
                return err(
                    ckr::KEY_TYPE_INCONSISTENT,
                    format!("{} needs the private key", op.name()),
                )
            }
            (_, false) => {
                return err(
                    ckr::KEY_TYPE_INCONSISTENT,
                    format!("{} needs the public key", op.name()),
                )
            }
        }
    }
    Ok(())
}

/// ECDSA input rule: a digest longer than the curve's is cut to its leading bytes, a
/// shorter one is left-padded with zeros (standard ECDSA truncation for byte lengths).
fn fit_digest(curve: Curve, d: &[u8]) -> Result<Vec<u8>, Ep11Error> {
    let n = curve.digest_len();
    if d.is_empty() {
        return err(ckr::DATA_LEN_RANGE, "CKM_ECDSA needs a non-empty digest");
    }
    if d.len() > n && curve == Curve::P521 {
        return err(
            ckr::DATA_LEN_RANGE,
            "CKM_ECDSA on P-521 takes at most 64 bytes",
        );
    }
    if d.len() >= n {
        return Ok(d[..n].to_vec());
    }
    let mut v = vec![0u8; n - d.len()];
    v.extend_from_slice(d);
    Ok(v)
}

fn sig_len(k: &Resolved, scheme: SignScheme) -> usize {
    match (kind_of(k), scheme) {
        (Some(AsymKind::Rsa { bits }), _) => (bits as usize).div_ceil(8),
        (Some(AsymKind::Dsa { q_len, .. }), _) => 2 * usize::from(q_len),
        (Some(AsymKind::Ec(Curve::Ed25519)), _) => 64,
        (Some(AsymKind::Ec(c)), _) => 2 * c.field_len(),
        _ => 0,
    }
}

impl CryptoUnit {
    fn instance_for_ep11(&self) -> Result<InstanceId, Ep11Error> {
        self.instance.ok_or_else(|| {
            Ep11Error::new(
                ckr::IBM_WK_NOT_INITIALIZED,
                "the crypto unit is not bound to an instance",
            )
        })
    }

    fn register_by_id(&self, id: MkId) -> Result<(&crate::MasterKey, MkId), EngineError> {
        let (cur, cur_id) = self.current()?;
        if id == cur_id {
            return Ok((cur, cur_id));
        }
        match &self.next {
            Some((k, nid)) if *nid == id => Ok((k, *nid)),
            _ => Err(EngineError::WrongMasterKey { blob: id }),
        }
    }

    fn resolve(&self, blob: &[u8], role: Role) -> Result<Arc<Resolved>, Ep11Error> {
        if blob.is_empty() {
            return err(role.bad_blob(), "no key blob was given");
        }
        let h = self.provider.sha256(&[blob]);
        if let Some(r) = self.ep11.keys.lock().ok().and_then(|c| c.get(&h).cloned()) {
            return Ok(r);
        }
        let instance = self.instance_for_ep11()?;
        let p = self.provider.as_ref();
        let parsed =
            object::parse(blob).ok_or_else(|| engine_err(EngineError::BlobMalformed, role))?;
        let r = match parsed {
            Parsed::Sealed {
                class,
                attrs,
                header,
                inner,
            } => {
                let mk = crate::blob::blob_mk_id(inner).map_err(|e| engine_err(e, role))?;
                let (k, id) = self.register_by_id(mk).map_err(|e| engine_err(e, role))?;
                let m = object::open_object(p, k, id, instance, header, inner)
                    .map_err(|e| engine_err(e, role))?;
                let body = match u64::from(class) {
                    cko::SECRET_KEY => Body::Secret(m),
                    cko::PRIVATE_KEY => {
                        Body::Private(p.prepare_private(m.expose()).map_err(|_| {
                            Ep11Error::new(
                                role.bad_blob(),
                                "the private key in the blob cannot be parsed",
                            )
                        })?)
                    }
                    _ => return Err(engine_err(EngineError::BlobMalformed, role)),
                };
                Resolved { attrs, body }
            }
            Parsed::Public {
                spki,
                mk,
                attrs,
                attr_block,
                mac,
            } => {
                let (k, id) = self.register_by_id(mk).map_err(|e| engine_err(e, role))?;
                object::check_spki(p, k, id, instance, spki, attr_block, mac)
                    .map_err(|e| engine_err(e, role))?;
                let info = p.public_info(spki).map_err(|_| {
                    Ep11Error::new(ckr::PUBLIC_KEY_INVALID, "the public key cannot be parsed")
                })?;
                Resolved {
                    attrs,
                    body: Body::Public(info),
                }
            }
            Parsed::RawSpki(spki) => {
                let info = p.public_info(spki).map_err(|_| {
                    Ep11Error::new(
                        ckr::PUBLIC_KEY_INVALID,
                        "the SubjectPublicKeyInfo cannot be parsed or names an unsupported key",
                    )
                })?;
                // A plain SPKI carries no attributes: it may verify, nothing else (as EP11).
                let mut t = Template::new();
                t.insert(cka::VERIFY, AttrValue::Bool(true));
                let mut attrs =
                    Attrs::build(&t, cko::PUBLIC_KEY, key_type_of(info.kind), false, None);
                add_public_attrs(&mut attrs, &info);
                Resolved {
                    attrs,
                    body: Body::Public(info),
                }
            }
        };
        let r = Arc::new(r);
        if let Ok(mut c) = self.ep11.keys.lock() {
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert(h, Arc::clone(&r));
        }
        Ok(r)
    }

    fn seal_key(&self, attrs: &Attrs, material: &KeyMaterial) -> Result<Vec<u8>, Ep11Error> {
        let instance = self.instance_for_ep11()?;
        let (mk, id) = self.sealing().map_err(|e| engine_err(e, Role::Key))?;
        object::seal_object(self.provider.as_ref(), mk, id, instance, attrs, material)
            .map_err(|e| engine_err(e, Role::Key))
    }

    fn mac_public(&self, spki: &[u8], attrs: &Attrs) -> Result<Vec<u8>, Ep11Error> {
        let instance = self.instance_for_ep11()?;
        let (mk, id) = self.sealing().map_err(|e| engine_err(e, Role::Key))?;
        object::mac_spki(self.provider.as_ref(), mk, id, instance, spki, attrs)
            .map_err(|e| engine_err(e, Role::Key))
    }

    /// Seals a resolved key again, with `attrs`, under the master key `(mk, id)`.
    fn reseal(
        &self,
        k: &Resolved,
        attrs: &Attrs,
        mk: &crate::MasterKey,
        id: MkId,
    ) -> Result<Vec<u8>, Ep11Error> {
        let instance = self.instance_for_ep11()?;
        let p = self.provider.as_ref();
        match &k.body {
            Body::Secret(m) => object::seal_object(p, mk, id, instance, attrs, m),
            Body::Private(pk) => object::seal_object(
                p,
                mk,
                id,
                instance,
                attrs,
                &KeyMaterial::from_slice(pk.pkcs8()),
            ),
            Body::Public(info) => object::mac_spki(p, mk, id, instance, &info.spki, attrs),
        }
        .map_err(|e| engine_err(e, Role::Key))
    }

    fn seal_op(&self, op: Op, st: &OpState) -> Result<Vec<u8>, Ep11Error> {
        let instance = self.instance_for_ep11()?;
        let (mk, id) = self.sealing().map_err(|e| engine_err(e, Role::Key))?;
        object::seal_state(
            self.provider.as_ref(),
            mk,
            id,
            instance,
            op as u8,
            &st.encode(),
        )
        .map_err(|e| engine_err(e, Role::Key))
    }

    fn open_op(&self, op: Op, state: &[u8]) -> Result<OpState, Ep11Error> {
        let bad = |d: &str| Ep11Error::new(ckr::OPERATION_NOT_INITIALIZED, d.to_string());
        let (kind, inner) = object::state_op(state).ok_or_else(|| {
            bad("the State is not a state this server issued (malformed or truncated)")
        })?;
        if kind != op as u8 {
            return Err(bad(&format!(
                "the State belongs to another operation, not to {}",
                op.name()
            )));
        }
        let instance = self.instance_for_ep11()?;
        let mk = crate::blob::blob_mk_id(inner).map_err(|_| bad("the State is malformed"))?;
        let (k, id) = self
            .register_by_id(mk)
            .map_err(|e| engine_err(e, Role::Key))?;
        let m = object::open_state(self.provider.as_ref(), k, id, instance, op as u8, inner)
            .map_err(|_| {
                bad("the State failed authentication (tampered, or made for another instance)")
            })?;
        let st = OpState::decode(m.expose()).ok_or_else(|| bad("the State is malformed"))?;
        // A State is good for one call: remember its id.
        if let Ok(mut spent) = self.ep11.spent.lock() {
            let (cur, prev) = &mut *spent;
            if prev.contains(&st.id) || !cur.insert(st.id) {
                return Err(bad(
                    "the State was already used; each call returns a new State for the next call",
                ));
            }
            if cur.len() >= SPENT_GENERATION {
                *prev = std::mem::take(cur);
            }
        }
        Ok(st)
    }

    fn new_state(&self, mech: &Mech, key: &[u8], plan: &Plan) -> Result<OpState, Ep11Error> {
        let mut id = [0u8; 16];
        self.provider
            .fill_random(&mut id)
            .map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "random generator failed"))?;
        Ok(OpState::start(id, mech, key, plan))
    }

    fn key_for(&self, op: Op, plan: &Plan, key: &[u8]) -> Result<Option<Arc<Resolved>>, Ep11Error> {
        if op == Op::Digest {
            return Ok(None);
        }
        let k = self.resolve(key, Role::Key)?;
        fits(plan, op, &k)?;
        // EC multiply is a key agreement step: the private key must allow derivation.
        let (a, name) = match plan {
            Plan::EcMultiply => (cka::DERIVE, "CKA_DERIVE"),
            _ => usage_attr(op),
        };
        permit(&k, a, name)?;
        Ok(Some(k))
    }

    /// The core of every Encrypt/Decrypt/Sign/Verify/Digest call: feeds `data` to the
    /// operation; with `finish = Some(sig)` produces the result (for Verify: checks `sig`).
    fn step(
        &self,
        op: Op,
        plan: &Plan,
        key: Option<&Resolved>,
        st: &mut OpState,
        data: &[u8],
        finish: Option<&[u8]>,
    ) -> Result<Vec<u8>, Ep11Error> {
        let sig = finish.unwrap_or_default();
        let finish = finish.is_some();
        let p = self.provider.as_ref();
        if data.len() > MAX_DATA {
            return err(
                ckr::DATA_LEN_RANGE,
                format!("data larger than {MAX_DATA} bytes"),
            );
        }
        let secret = || match key.map(|k| &k.body) {
            Some(Body::Secret(m)) => Ok(m.expose()),
            _ => err(ckr::KEY_TYPE_INCONSISTENT, "a secret key is needed"),
        };
        let crypt_err = |op: Op| match op {
            Op::Decrypt => Ep11Error::new(
                ckr::ENCRYPTED_DATA_INVALID,
                "the ciphertext is invalid (bad padding, tag or length)",
            ),
            _ => Ep11Error::new(
                ckr::DATA_LEN_RANGE,
                "the data length does not fit the mechanism",
            ),
        };
        if let Plan::Cipher { cipher, mode, .. } = plan {
            let bs = cipher.block_len();
            st.buf.extend_from_slice(data);
            if finish {
                let all = std::mem::take(&mut *st.buf);
                let all = Zeroizing::new(all);
                let whole = all.len().is_multiple_of(bs)
                    && !(op == Op::Decrypt && *mode == CipherMode::CbcPad && all.is_empty());
                if (*mode != CipherMode::CbcPad || op == Op::Decrypt) && !whole {
                    return Err(if op == Op::Decrypt {
                        Ep11Error::new(
                            ckr::ENCRYPTED_DATA_LEN_RANGE,
                            format!("ciphertext length must be a non-zero multiple of {bs}"),
                        )
                    } else {
                        Ep11Error::new(
                            ckr::DATA_LEN_RANGE,
                            format!("data length must be a multiple of {bs} for a mechanism without padding"),
                        )
                    });
                }
                return match op {
                    Op::Encrypt => p
                        .block_encrypt(*cipher, *mode, secret()?, &st.iv, &all)
                        .map_err(|_| crypt_err(op)),
                    _ => p
                        .block_decrypt(*cipher, *mode, secret()?, &st.iv, &all)
                        .map(|v| v.to_vec())
                        .map_err(|_| crypt_err(op)),
                };
            }
            // Update: process whole blocks; CBC_PAD decryption keeps the last block back
            // (it may hold the padding).
            let mut n = st.buf.len() / bs * bs;
            if op == Op::Decrypt && *mode == CipherMode::CbcPad && n == st.buf.len() && n > 0 {
                n -= bs;
            }
            if n == 0 {
                return Ok(Vec::new());
            }
            let chunk: Zeroizing<Vec<u8>> = Zeroizing::new(st.buf.drain(..n).collect());
            let raw = if *mode == CipherMode::Ecb {
                CipherMode::Ecb
            } else {
                CipherMode::Cbc
            };
            let out = match op {
                Op::Encrypt => p
                    .block_encrypt(*cipher, raw, secret()?, &st.iv, &chunk)
                    .map_err(|_| crypt_err(op))?,
                _ => p
                    .block_decrypt(*cipher, raw, secret()?, &st.iv, &chunk)
                    .map(|v| v.to_vec())
                    .map_err(|_| crypt_err(op))?,
            };
            if raw == CipherMode::Cbc {
                let last = if op == Op::Encrypt {
                    &out[out.len() - bs..]
                } else {
                    &chunk[n - bs..]
                };
                st.iv = last.to_vec();
            }
            return Ok(out);
        }
        if !plan.multi_part() && !finish {
            return err(
                ckr::MECHANISM_INVALID,
                format!(
                    "mechanism 0x{:x} is single-part only: use {} or the *Single call",
                    st.mech.code,
                    op.name()
                ),
            );
        }
        // Digests and hash-then-sign over SHA-1/SHA-2 keep the hash state, not the data:
        // no limit on the length of a multi-part message. (Single calls hash in one go.)
        let stream = match plan {
            Plan::Digest(d) => Some(*d),
            Plan::Sign { hash: Some(h), .. } => Some(*h),
            _ => None,
        };
        let mut prehashed: Option<Vec<u8>> = None;
        if let Some(h) = stream.filter(|_| !finish || !st.hash.is_empty()) {
            if st.hash.is_empty() {
                if let Some(fresh) = p.digest_state_new(h) {
                    st.hash = Zeroizing::new(fresh);
                }
            }
            if !st.hash.is_empty() {
                let bad = |_| {
                    Ep11Error::new(
                        ckr::OPERATION_NOT_INITIALIZED,
                        "the State's digest is damaged",
                    )
                };
                st.hash = Zeroizing::new(p.digest_state_update(h, &st.hash, data).map_err(bad)?);
                if !finish {
                    return Ok(Vec::new());
                }
                prehashed = Some(p.digest_state_finish(h, &st.hash).map_err(bad)?);
            }
        }
        if prehashed.is_none()
            && st.buf.len() + data.len() > MAX_STATE_DATA
            && (!finish || !st.buf.is_empty())
        {
            return err(
                ckr::DATA_LEN_RANGE,
                format!(
                    "a multi-part {} of this mechanism buffers at most {MAX_STATE_DATA} bytes",
                    op.name()
                ),
            );
        }
        if !finish {
            st.buf.extend_from_slice(data);
            return Ok(Vec::new());
        }
        let joined;
        let all: &[u8] = if st.buf.is_empty() || prehashed.is_some() {
            data
        } else {
            st.buf.extend_from_slice(data);
            joined = std::mem::take(&mut *st.buf);
            &joined
        };
        match plan {
            Plan::Cipher { .. } => unreachable_plan(),
            Plan::Gcm { iv, aad } => {
                let k = p
                    .aead_key(AeadAlg::AesGcm, secret()?)
                    .map_err(|_| crypt_err(op))?;
                let mut buf = all.to_vec();
                if op == Op::Encrypt {
                    k.seal(iv, aad, &mut buf).map_err(|_| crypt_err(op))?;
                } else {
                    if buf.len() < 16 {
                        return err(
                            ckr::ENCRYPTED_DATA_LEN_RANGE,
                            "GCM ciphertext shorter than its tag",
                        );
                    }
                    k.open(iv, aad, &mut buf).map_err(|_| crypt_err(op))?;
                }
                Ok(buf)
            }
            Plan::Rsa { padding, label } => match (op, key.map(|k| &k.body)) {
                (Op::Encrypt, Some(Body::Public(info))) => {
                    p.rsa_encrypt(*padding, info, label, all).map_err(|_| {
                        Ep11Error::new(
                            ckr::DATA_LEN_RANGE,
                            "the data is too long for this RSA key and padding",
                        )
                    })
                }
                (Op::Decrypt, Some(Body::Private(k))) => k
                    .rsa_decrypt(*padding, label, all)
                    .map(|v| v.to_vec())
                    .map_err(|_| {
                        Ep11Error::new(ckr::ENCRYPTED_DATA_INVALID, "RSA decryption failed")
                    }),
                _ => err(ckr::KEY_TYPE_INCONSISTENT, "wrong half of the RSA key pair"),
            },
            Plan::Digest(d) => Ok(prehashed.unwrap_or_else(|| p.digest(*d, all))),
            Plan::EcMultiply => match key.map(|k| &k.body) {
                Some(Body::Private(pk)) => pk.ec_multiply(all).map(|v| v.to_vec()).map_err(|_| {
                    Ep11Error::new(
                        ckr::DATA_INVALID,
                        "the data is not a point on the key's curve",
                    )
                }),
                _ => err(
                    ckr::KEY_TYPE_INCONSISTENT,
                    "EC multiply needs an EC private key",
                ),
            },
            Plan::Mac { alg, len } => {
                let full = p.mac(*alg, secret()?, all).map_err(|_| {
                    Ep11Error::new(ckr::KEY_SIZE_RANGE, "the key length does not fit the MAC")
                })?;
                let tag = &full[..*len];
                if op == Op::Sign {
                    return Ok(tag.to_vec());
                }
                if sig.len() != *len {
                    return err(
                        ckr::SIGNATURE_LEN_RANGE,
                        format!("the MAC must be {len} bytes"),
                    );
                }
                if p.ct_eq(tag, sig) {
                    Ok(Vec::new())
                } else {
                    err(ckr::SIGNATURE_INVALID, "the MAC does not match")
                }
            }
            Plan::Sign { scheme, hash } => {
                let k = key.ok_or_else(|| Ep11Error::new(ckr::KEY_HANDLE_INVALID, "no key"))?;
                let input = match (scheme, hash) {
                    (SignScheme::Ed25519, _) => all.to_vec(),
                    (_, Some(h)) => match prehashed {
                        Some(d) => d,
                        None => p.digest(*h, all),
                    },
                    (SignScheme::RsaPss(d) | SignScheme::RsaPssWith { hash: d, .. }, None) => {
                        if all.len() != digest_len(*d) {
                            return err(
                                ckr::DATA_LEN_RANGE,
                                format!("CKM_RSA_PKCS_PSS signs a {}-byte digest", digest_len(*d)),
                            );
                        }
                        all.to_vec()
                    }
                    (_, None) => all.to_vec(),
                };
                let input = match (scheme, kind_of(k)) {
                    (SignScheme::EcdsaDigest, Some(AsymKind::Ec(c))) => fit_digest(c, &input)?,
                    (SignScheme::RsaX931, Some(AsymKind::Rsa { .. })) if hash.is_some() => {
                        let mut v = input;
                        v.extend_from_slice(&[0x33, 0xCC]);
                        v
                    }
                    (SignScheme::RsaPkcs1Raw, Some(AsymKind::Rsa { bits })) => {
                        let mut v = match hash {
                            Some(h) => digest_info(*h),
                            None => Vec::new(),
                        };
                        v.extend_from_slice(&input);
                        if v.len() + 11 > (bits as usize).div_ceil(8) {
                            return err(
                                ckr::DATA_LEN_RANGE,
                                "CKM_RSA_PKCS signs at most the modulus length minus 11 bytes",
                            );
                        }
                        v
                    }
                    _ => input,
                };
                match (&k.body, op) {
                    (Body::Private(pk), Op::Sign) => pk
                        .sign(*scheme, &input)
                        .map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "signing failed")),
                    (Body::Public(info), Op::Verify) => {
                        if sig.len() != sig_len(k, *scheme) {
                            return err(
                                ckr::SIGNATURE_LEN_RANGE,
                                format!("the signature must be {} bytes", sig_len(k, *scheme)),
                            );
                        }
                        if p.verify(*scheme, info, &input, sig) {
                            Ok(Vec::new())
                        } else {
                            err(ckr::SIGNATURE_INVALID, "the signature does not verify")
                        }
                    }
                    _ => err(ckr::KEY_TYPE_INCONSISTENT, "wrong half of the key pair"),
                }
            }
        }
    }

    /// `EncryptInit`, `DecryptInit`, `SignInit`, `VerifyInit`, `DigestInit`: a State.
    pub fn ep11_init(&self, op: Op, mech: &Mech, key: &[u8]) -> Result<Vec<u8>, Ep11Error> {
        let plan = plan(mech, op)?;
        self.key_for(op, &plan, key)?;
        let st = self.new_state(mech, key, &plan)?;
        self.seal_op(op, &st)
    }

    /// `*Update`: (new State, output).
    pub fn ep11_update(
        &self,
        op: Op,
        state: &[u8],
        data: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), Ep11Error> {
        let mut st = self.open_op(op, state)?;
        let plan = plan(&st.mech, op)?;
        let key = self.key_for(op, &plan, &st.key)?;
        let out = self.step(op, &plan, key.as_deref(), &mut st, data, None)?;
        self.provider
            .fill_random(&mut st.id)
            .map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "random generator failed"))?;
        Ok((self.seal_op(op, &st)?, out))
    }

    /// `DigestKey`: feeds a secret key's value into a digest State.
    pub fn ep11_digest_key(&self, state: &[u8], key: &[u8]) -> Result<Vec<u8>, Ep11Error> {
        let k = self.resolve(key, Role::Key)?;
        let Body::Secret(m) = &k.body else {
            return err(
                ckr::KEY_TYPE_INCONSISTENT,
                "DigestKey digests secret keys only",
            );
        };
        let (st, _) = self.ep11_update(Op::Digest, state, m.expose())?;
        Ok(st)
    }

    /// `*Final` (with `data` empty) and the one-shot `Encrypt`/`Decrypt`/`Sign`/`Verify`/
    /// `Digest` after Init: the result (empty for Verify, which fails on a bad signature).
    pub fn ep11_finish(
        &self,
        op: Op,
        state: &[u8],
        data: &[u8],
        sig: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        let mut st = self.open_op(op, state)?;
        let plan = plan(&st.mech, op)?;
        let key = self.key_for(op, &plan, &st.key)?;
        self.step(op, &plan, key.as_deref(), &mut st, data, Some(sig))
    }

    /// The `*Single` calls (and `DigestSingle`): one call, no State.
    pub fn ep11_single(
        &self,
        op: Op,
        mech: &Mech,
        key: &[u8],
        data: &[u8],
        sig: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        let plan = plan(mech, op)?;
        let k = self.key_for(op, &plan, key)?;
        let mut st = OpState::start([0; 16], mech, &[], &plan);
        self.step(op, &plan, k.as_deref(), &mut st, data, Some(sig))
    }

    /// `ReencryptSingle`: decrypts with one key and encrypts with another, in the unit.
    pub fn ep11_reencrypt(
        &self,
        dec: &Mech,
        dec_key: &[u8],
        enc: &Mech,
        enc_key: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        let plain = Zeroizing::new(self.ep11_single(Op::Decrypt, dec, dec_key, data, &[])?);
        self.ep11_single(Op::Encrypt, enc, enc_key, &plain, &[])
    }

    fn check_value(&self, key_type: u64, value: &[u8]) -> Vec<u8> {
        let p = self.provider.as_ref();
        let kcv = match key_type {
            ckk::AES => p
                .block_encrypt(BlockCipher::Aes, CipherMode::Ecb, value, &[], &[0u8; 16])
                .ok(),
            ckk::DES2 | ckk::DES3 => p
                .block_encrypt(BlockCipher::Des3, CipherMode::Ecb, value, &[], &[0u8; 8])
                .ok(),
            _ => None,
        }
        .unwrap_or_else(|| p.sha256(&[b"strongroom/ep11/kcv/v1", value]).to_vec());
        let mut out = kcv[..3].to_vec();
        out.extend_from_slice(&((value.len() as u32) * 8).to_be_bytes());
        out
    }

    fn new_secret(
        &self,
        t: &Template,
        key_type: u64,
        value: KeyMaterial,
        local: bool,
        gen: Option<u64>,
    ) -> Result<NewKey, Ep11Error> {
        let mut attrs = Attrs::build(t, cko::SECRET_KEY, key_type, local, gen);
        attrs.set(cka::VALUE_LEN, AttrValue::Int(value.len() as i64));
        let checksum = self.check_value(key_type, value.expose());
        let blob = self.seal_key(&attrs, &value)?;
        Ok(NewKey {
            blob,
            checksum,
            attrs,
        })
    }

    fn random_secret(&self, key_type: u64, len: usize) -> Result<KeyMaterial, Ep11Error> {
        let p = self.provider.as_ref();
        for _ in 0..16 {
            let mut v = Zeroizing::new(vec![0u8; len]);
            p.fill_random(&mut v)
                .map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "random generator failed"))?;
            if matches!(key_type, ckk::DES2 | ckk::DES3) {
                for b in v.iter_mut() {
                    // Odd parity in the low bit of every byte, as DES keys carry it.
                    *b = (*b & 0xfe) | u8::from((*b >> 1).count_ones() % 2 == 0);
                }
                // aws-lc refuses weak keys and keys with equal parts: draw again.
                if p.block_encrypt(BlockCipher::Des3, CipherMode::Ecb, &v, &[], &[0u8; 8])
                    .is_err()
                {
                    continue;
                }
            }
            return Ok(KeyMaterial::new(v.to_vec()));
        }
        err(ckr::GENERAL_ERROR, "could not draw a valid key")
    }

    /// `GenerateKey` (AES, DES2/DES3, generic secret).
    pub fn ep11_generate_key(&self, mech: &Mech, t: &Template) -> Result<NewKey, Ep11Error> {
        no_param(mech)?;
        if matches!(
            mech.code,
            ckm::DSA_PARAMETER_GEN | ckm::DH_PKCS_PARAMETER_GEN
        ) {
            attrs::check_template(t, cko::DOMAIN_PARAMETERS)?;
            return self.parameter_gen(mech.code == ckm::DH_PKCS_PARAMETER_GEN, t);
        }
        attrs::check_template(t, cko::SECRET_KEY)?;
        let (key_type, len) = match mech.code {
            ckm::AES_KEY_GEN => (
                ckk::AES,
                attrs::ulong(t, cka::VALUE_LEN).ok_or_else(|| {
                    Ep11Error::new(
                        ckr::TEMPLATE_INCOMPLETE,
                        "CKM_AES_KEY_GEN needs CKA_VALUE_LEN (16, 24 or 32)",
                    )
                })?,
            ),
            // IBM's examples send CKA_VALUE_LEN 32 with DES3: the length is fixed, so ignore it.
            ckm::DES2_KEY_GEN => (ckk::DES2, 16),
            ckm::DES3_KEY_GEN => (ckk::DES3, 24),
            ckm::GENERIC_SECRET_KEY_GEN => (
                ckk::GENERIC_SECRET,
                attrs::ulong(t, cka::VALUE_LEN).ok_or_else(|| {
                    Ep11Error::new(
                        ckr::TEMPLATE_INCOMPLETE,
                        "CKM_GENERIC_SECRET_KEY_GEN needs CKA_VALUE_LEN",
                    )
                })?,
            ),
            c => {
                return err(
                    ckr::MECHANISM_INVALID,
                    format!(
                    "mechanism 0x{c:x} does not generate secret keys here (see GetMechanismList)"
                ),
                )
            }
        };
        if let Some(kt) = attrs::ulong(t, cka::KEY_TYPE) {
            if kt != key_type {
                return err(
                    ckr::TEMPLATE_INCONSISTENT,
                    format!("CKA_KEY_TYPE {kt:#x} does not match the mechanism"),
                );
            }
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if !attrs::secret_len_ok(key_type, len) {
            return err(
                ckr::ATTRIBUTE_VALUE_INVALID,
                format!("CKA_VALUE_LEN {len} is not valid for this key type"),
            );
        }
        let value = self.random_secret(key_type, len)?;
        self.new_secret(t, key_type, value, true, Some(mech.code))
    }

    /// `GenerateKey` with `CKM_DSA_PARAMETER_GEN` or `CKM_DH_PKCS_PARAMETER_GEN`: domain
    /// parameters in the clear (DER Dss-Parms or DHParameter) in place of a blob, as EP11
    /// does; clients pass them back as `CKA_IBM_STRUCT_PARAMS` of the key pair template.
    /// DH parameters are the RFC 7919 group of the requested size (no safe-prime search,
    /// which takes tens of seconds at 2048 bits and gives no better groups).
    fn parameter_gen(&self, dh: bool, t: &Template) -> Result<NewKey, Ep11Error> {
        let (name, sizes): (&str, &[u64]) = if dh {
            ("CKM_DH_PKCS_PARAMETER_GEN", &[2048, 3072, 4096, 8192])
        } else {
            ("CKM_DSA_PARAMETER_GEN", &[2048, 3072])
        };
        let bits = attrs::ulong(t, cka::PRIME_BITS).ok_or_else(|| {
            Ep11Error::new(
                ckr::TEMPLATE_INCOMPLETE,
                format!("{name} needs CKA_PRIME_BITS ({sizes:?})"),
            )
        })?;
        if !sizes.contains(&bits) {
            return err(
                ckr::ATTRIBUTE_VALUE_INVALID,
                format!("CKA_PRIME_BITS {bits}: {name} makes parameters of {sizes:?} bits"),
            );
        }
        let made = if dh {
            self.provider.dh_parameters(bits as u32)
        } else {
            self.provider.dsa_parameters(bits as u32)
        };
        let params =
            made.map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "parameter generation failed"))?;
        let mut a = Attrs::default();
        a.set(cka::CLASS, AttrValue::Int(cko::DOMAIN_PARAMETERS as i64));
        a.set(
            cka::KEY_TYPE,
            AttrValue::Int(if dh { ckk::DH } else { ckk::DSA } as i64),
        );
        a.set(cka::PRIME_BITS, AttrValue::Int(bits as i64));
        a.set(cka::IBM_STRUCT_PARAMS, AttrValue::Bytes(params.clone()));
        Ok(NewKey {
            blob: params,
            checksum: Vec::new(),
            attrs: a,
        })
    }

    /// `GenerateKeyPair` (RSA, EC on P-256/384/521/secp256k1, Ed25519, DSA): (public, private).
    pub fn ep11_generate_key_pair(
        &self,
        mech: &Mech,
        pub_t: &Template,
        priv_t: &Template,
    ) -> Result<(NewKey, NewKey), Ep11Error> {
        no_param(mech)?;
        attrs::check_template(pub_t, cko::PUBLIC_KEY)?;
        attrs::check_template(priv_t, cko::PRIVATE_KEY)?;
        let mut exponent = 65537u64;
        let mut domain_params: Option<Vec<u8>> = None;
        let kind = match mech.code {
            ckm::RSA_PKCS_KEY_PAIR_GEN | ckm::RSA_X9_31_KEY_PAIR_GEN => {
                let bits = attrs::ulong(pub_t, cka::MODULUS_BITS).ok_or_else(|| {
                    Ep11Error::new(
                        ckr::TEMPLATE_INCOMPLETE,
                        "RSA key generation needs CKA_MODULUS_BITS in the public template",
                    )
                })?;
                let e = match pub_t.get(&cka::PUBLIC_EXPONENT) {
                    None => 65537,
                    Some(AttrValue::Int(i)) => u64::try_from(*i).unwrap_or(0),
                    Some(AttrValue::Bytes(b)) if b.len() <= 8 && !b.is_empty() => {
                        b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x))
                    }
                    Some(_) => 0,
                };
                if e < 17 || e.is_multiple_of(2) || e >= 1 << 32 {
                    return err(
                        ckr::ATTRIBUTE_VALUE_INVALID,
                        "CKA_PUBLIC_EXPONENT must be odd, at least 17 and below 2^32",
                    );
                }
                if mech.code == ckm::RSA_X9_31_KEY_PAIR_GEN
                    && !bits
                        .checked_sub(1024)
                        .is_some_and(|b| b.is_multiple_of(256))
                {
                    return err(
                        ckr::KEY_SIZE_RANGE,
                        format!("X9.31 keys have 1024 + 256·s bits; {bits} is not one"),
                    );
                }
                if !(2048..=8192).contains(&bits) || !bits.is_multiple_of(128) {
                    return err(
                        ckr::KEY_SIZE_RANGE,
                        format!("RSA modulus of {bits} bits: 2048 to 8192 bits in steps of 128 are generated"),
                    );
                }
                exponent = e;
                AsymKind::Rsa { bits: bits as u32 }
            }
            ckm::DSA_KEY_PAIR_GEN => {
                let params = attrs::bytes(pub_t, cka::IBM_STRUCT_PARAMS)
                    .or_else(|| attrs::bytes(priv_t, cka::IBM_STRUCT_PARAMS))
                    .ok_or_else(|| {
                        Ep11Error::new(
                            ckr::TEMPLATE_INCOMPLETE,
                            "DSA key generation needs the domain parameters as CKA_IBM_STRUCT_PARAMS (from CKM_DSA_PARAMETER_GEN)",
                        )
                    })?;
                domain_params = Some(params.to_vec());
                AsymKind::Dsa { bits: 0, q_len: 0 }
            }
            ckm::DH_PKCS_KEY_PAIR_GEN => {
                let params = attrs::bytes(pub_t, cka::IBM_STRUCT_PARAMS)
                    .or_else(|| attrs::bytes(priv_t, cka::IBM_STRUCT_PARAMS))
                    .ok_or_else(|| {
                        Ep11Error::new(
                            ckr::TEMPLATE_INCOMPLETE,
                            "DH key generation needs the domain parameters as CKA_IBM_STRUCT_PARAMS (from CKM_DH_PKCS_PARAMETER_GEN)",
                        )
                    })?;
                domain_params = Some(params.to_vec());
                AsymKind::Dh { bits: 0 }
            }
            ckm::EC_KEY_PAIR_GEN => {
                let params = attrs::bytes(pub_t, cka::EC_PARAMS)
                    .or_else(|| attrs::bytes(priv_t, cka::EC_PARAMS))
                    .ok_or_else(|| {
                        Ep11Error::new(
                            ckr::TEMPLATE_INCOMPLETE,
                            "EC key generation needs CKA_EC_PARAMS",
                        )
                    })?;
                let c = curve_of_params(params).ok_or_else(|| {
                    Ep11Error::new(
                        ckr::CURVE_NOT_SUPPORTED,
                        "curve not supported: P-256, P-384, P-521, secp256k1 and Ed25519 are",
                    )
                })?;
                if let (Some(a), Some(b)) = (
                    attrs::bytes(pub_t, cka::EC_PARAMS),
                    attrs::bytes(priv_t, cka::EC_PARAMS),
                ) {
                    if curve_of_params(a) != curve_of_params(b) {
                        return err(
                            ckr::TEMPLATE_INCONSISTENT,
                            "the public and private templates name different curves",
                        );
                    }
                }
                AsymKind::Ec(c)
            }
            c => {
                return err(
                    ckr::MECHANISM_INVALID,
                    format!(
                        "mechanism 0x{c:x} does not generate key pairs here (see GetMechanismList)"
                    ),
                )
            }
        };
        let kt = key_type_of(kind);
        for t in [pub_t, priv_t] {
            if let Some(x) = attrs::ulong(t, cka::KEY_TYPE) {
                if x != kt {
                    return err(
                        ckr::TEMPLATE_INCONSISTENT,
                        format!("CKA_KEY_TYPE {x:#x} does not match the mechanism"),
                    );
                }
            }
        }
        let fail = |_| Ep11Error::new(ckr::GENERAL_ERROR, "key generation failed");
        let (pkcs8, info) = match (kind, &domain_params) {
            (AsymKind::Dsa { .. }, Some(p)) => self.provider.dsa_generate(p).map_err(|_| {
                Ep11Error::new(
                    ckr::DOMAIN_PARAMS_INVALID,
                    "CKA_IBM_STRUCT_PARAMS is not a DER Dss-Parms of usable DSA parameters",
                )
            })?,
            (AsymKind::Dh { .. }, Some(p)) => self.provider.dh_generate(p).map_err(|_| {
                Ep11Error::new(
                    ckr::DOMAIN_PARAMS_INVALID,
                    "CKA_IBM_STRUCT_PARAMS is not a DER DHParameter of at least 2048 bits",
                )
            })?,
            (AsymKind::Rsa { bits }, _)
                if exponent != 65537 || !matches!(bits, 2048 | 3072 | 4096 | 8192) =>
            {
                self.provider
                    .rsa_generate_with(bits, exponent)
                    .map_err(fail)?
            }
            _ => self.provider.asym_generate(kind).map_err(fail)?,
        };
        let mut pa = Attrs::build(pub_t, cko::PUBLIC_KEY, kt, true, Some(mech.code));
        add_public_attrs(&mut pa, &info);
        let mut sa = Attrs::build(priv_t, cko::PRIVATE_KEY, kt, true, Some(mech.code));
        add_public_attrs(&mut sa, &info);
        let public = NewKey {
            blob: self.mac_public(&info.spki, &pa)?,
            checksum: public_checksum(&info),
            attrs: pa,
        };
        let private = NewKey {
            blob: self.seal_key(&sa, &KeyMaterial::new(pkcs8.to_vec()))?,
            checksum: public_checksum(&info),
            attrs: sa,
        };
        Ok((public, private))
    }

    /// `WrapKey`: encrypts a key's value (secret) or PKCS#8 (private) under a wrapping key.
    /// `mac_key` is used by `CKM_IBM_ATTRIBUTEBOUND_WRAP` only.
    pub fn ep11_wrap(
        &self,
        mech: &Mech,
        key: &[u8],
        kek: &[u8],
        mac_key: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        if mech.code == ckm::IBM_ATTRIBUTEBOUND_WRAP {
            no_param(mech)?;
            return self.attrbound_wrap(key, kek, mac_key);
        }
        let k = self.resolve(key, Role::Key)?;
        let w = self.resolve(kek, Role::Wrapping)?;
        let plan = plan(mech, Op::Encrypt)?;
        fits(&plan, Op::Encrypt, &w)
            .map_err(|e| Ep11Error::new(ckr::WRAPPING_KEY_TYPE_INCONSISTENT, e.detail))?;
        permit(&w, cka::WRAP, "CKA_WRAP")?;
        if !k.attrs.flag(cka::EXTRACTABLE) {
            return err(
                ckr::KEY_UNEXTRACTABLE,
                "the key's CKA_EXTRACTABLE attribute is false",
            );
        }
        if k.attrs.flag(cka::WRAP_WITH_TRUSTED) && !w.attrs.flag(cka::TRUSTED) {
            return err(
                ckr::KEY_NOT_WRAPPABLE,
                "the key may only be wrapped by a CKA_TRUSTED key",
            );
        }
        let encoding: Zeroizing<Vec<u8>> = match &k.body {
            Body::Secret(m) => Zeroizing::new(m.expose().to_vec()),
            Body::Private(pk) if !matches!(plan, Plan::Rsa { .. }) => Zeroizing::new(pk.pkcs8().to_vec()),
            _ => return err(ckr::KEY_NOT_WRAPPABLE, "this mechanism cannot wrap this kind of key (public keys are not wrapped; RSA wraps secret keys)"),
        };
        let mut st = OpState::start([0; 16], mech, &[], &plan);
        self.step(Op::Encrypt, &plan, Some(&w), &mut st, &encoding, Some(&[])).map_err(|e| match e.ckr {
            ckr::DATA_LEN_RANGE => Ep11Error::new(ckr::KEY_SIZE_RANGE, "the key's length does not fit the wrapping mechanism (use a padding mechanism)"),
            _ => e,
        })
    }

    /// `UnwrapKey`: decrypts wrapped key material and seals it as a new key per template.
    /// `CKM_IBM_TRANSPORTKEY` turns a plain SPKI into a MACed SPKI (the KeK is ignored).
    /// `mac_key` is used by `CKM_IBM_ATTRIBUTEBOUND_WRAP` only (the attributes come from
    /// the wrapped key; the template may only name the matching CKA_KEY_TYPE).
    pub fn ep11_unwrap(
        &self,
        mech: &Mech,
        kek: &[u8],
        mac_key: &[u8],
        wrapped: &[u8],
        t: &Template,
    ) -> Result<NewKey, Ep11Error> {
        if mech.code == ckm::IBM_ATTRIBUTEBOUND_WRAP {
            no_param(mech)?;
            return self.attrbound_unwrap(kek, mac_key, wrapped, attrs::ulong(t, cka::KEY_TYPE));
        }
        let class = attrs::ulong(t, cka::CLASS).unwrap_or(if mech.code == ckm::IBM_TRANSPORTKEY {
            cko::PUBLIC_KEY
        } else {
            cko::SECRET_KEY
        });
        if !matches!(class, cko::SECRET_KEY | cko::PRIVATE_KEY | cko::PUBLIC_KEY) {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "CKA_CLASS must be a secret, private or public key",
            );
        }
        attrs::check_template(t, class)?;
        if mech.code == ckm::IBM_TRANSPORTKEY {
            if class != cko::PUBLIC_KEY {
                return err(
                    ckr::TEMPLATE_INCONSISTENT,
                    "CKM_IBM_TRANSPORTKEY imports public keys",
                );
            }
            let info = self.provider.public_info(wrapped).map_err(|_| {
                Ep11Error::new(
                    ckr::WRAPPED_KEY_INVALID,
                    "Wrapped is not a SubjectPublicKeyInfo of a supported key",
                )
            })?;
            let kt = key_type_of(info.kind);
            if attrs::ulong(t, cka::KEY_TYPE).is_some_and(|x| x != kt) {
                return err(
                    ckr::TEMPLATE_INCONSISTENT,
                    "CKA_KEY_TYPE does not match the public key",
                );
            }
            let mut a = Attrs::build(t, cko::PUBLIC_KEY, kt, false, None);
            add_public_attrs(&mut a, &info);
            return Ok(NewKey {
                blob: self.mac_public(&info.spki, &a)?,
                checksum: public_checksum(&info),
                attrs: a,
            });
        }
        if class == cko::PUBLIC_KEY {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "public keys are imported with CKM_IBM_TRANSPORTKEY",
            );
        }
        let kt = attrs::ulong(t, cka::KEY_TYPE).ok_or_else(|| {
            Ep11Error::new(
                ckr::TEMPLATE_INCOMPLETE,
                "UnwrapKey needs CKA_KEY_TYPE in the template",
            )
        })?;
        let w = self.resolve(kek, Role::Unwrapping)?;
        let plan = plan(mech, Op::Decrypt)?;
        fits(&plan, Op::Decrypt, &w)
            .map_err(|e| Ep11Error::new(ckr::UNWRAPPING_KEY_TYPE_INCONSISTENT, e.detail))?;
        permit(&w, cka::UNWRAP, "CKA_UNWRAP")?;
        let mut st = OpState::start([0; 16], mech, &[], &plan);
        // One answer for every failure of the decryption (no padding oracle).
        let material = Zeroizing::new(
            self.step(Op::Decrypt, &plan, Some(&w), &mut st, wrapped, Some(&[]))
                .map_err(|_| {
                    Ep11Error::new(
                        ckr::WRAPPED_KEY_INVALID,
                        "the wrapped key cannot be unwrapped with this key and mechanism",
                    )
                })?,
        );
        if class == cko::SECRET_KEY {
            let len = material.len();
            if let Some(want) = attrs::ulong(t, cka::VALUE_LEN) {
                if want != len as u64 {
                    return err(
                        ckr::TEMPLATE_INCONSISTENT,
                        format!(
                            "CKA_VALUE_LEN {want} does not match the unwrapped key ({len} bytes)"
                        ),
                    );
                }
            }
            if !attrs::secret_len_ok(kt, len) {
                return err(
                    ckr::WRAPPED_KEY_LEN_RANGE,
                    format!("an unwrapped key of {len} bytes is not valid for key type {kt:#x}"),
                );
            }
            return self.new_secret(t, kt, KeyMaterial::new(material.to_vec()), false, None);
        }
        let pk = self.provider.prepare_private(&material).map_err(|_| {
            Ep11Error::new(
                ckr::WRAPPED_KEY_INVALID,
                "the unwrapped data is not a PKCS#8 private key of a supported type",
            )
        })?;
        let info = pk.public().clone();
        if key_type_of(info.kind) != kt {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "CKA_KEY_TYPE does not match the unwrapped private key",
            );
        }
        if let (Some(p), AsymKind::Ec(c)) = (attrs::bytes(t, cka::EC_PARAMS), info.kind) {
            if curve_of_params(p) != Some(c) {
                return err(
                    ckr::TEMPLATE_INCONSISTENT,
                    "CKA_EC_PARAMS does not match the unwrapped key's curve",
                );
            }
        }
        let mut a = Attrs::build(t, cko::PRIVATE_KEY, kt, false, None);
        add_public_attrs(&mut a, &info);
        let blob = self.seal_key(&a, &KeyMaterial::new(material.to_vec()))?;
        Ok(NewKey {
            blob,
            checksum: public_checksum(&info),
            attrs: a,
        })
    }

    /// `DeriveKey`: ECDH1 (KDF NULL) and SHA*_KEY_DERIVATION.
    pub fn ep11_derive(&self, mech: &Mech, base: &[u8], t: &Template) -> Result<NewKey, Ep11Error> {
        let class = attrs::ulong(t, cka::CLASS).unwrap_or(cko::SECRET_KEY);
        if class != cko::SECRET_KEY {
            return err(ckr::TEMPLATE_INCONSISTENT, "DeriveKey creates secret keys");
        }
        attrs::check_template(t, cko::SECRET_KEY)?;
        let b = self.resolve(base, Role::Key)?;
        permit(&b, cka::DERIVE, "CKA_DERIVE")?;
        // A derived key must not be easier to take out than its base key (otherwise
        // CONCATENATE_BASE_AND_DATA would export a non-extractable key).
        if !b.attrs.flag(cka::EXTRACTABLE) && attrs::flag_of(t, cka::EXTRACTABLE) {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "the base key is not extractable, so a key derived from it cannot be",
            );
        }
        let secret: Zeroizing<Vec<u8>> = match mech.code {
            ckm::ECDH1_DERIVE => {
                let peer = match &mech.param {
                    MechParam::Bytes(p) => p.clone(),
                    MechParam::Ecdh {
                        kdf,
                        shared,
                        public,
                    } => {
                        if !matches!(kdf, 0 | 1) || !shared.is_empty() {
                            return err(
                                ckr::MECHANISM_PARAM_INVALID,
                                "ECDH1: only CKD_NULL without shared data is implemented",
                            );
                        }
                        public.clone()
                    }
                    _ => {
                        return err(
                            ckr::MECHANISM_PARAM_INVALID,
                            "CKM_ECDH1_DERIVE needs the peer's public point",
                        )
                    }
                };
                let Body::Private(pk) = &b.body else {
                    return err(ckr::KEY_TYPE_INCONSISTENT, "ECDH needs an EC private key");
                };
                match pk.public().kind {
                    AsymKind::Ec(Curve::P256 | Curve::P384 | Curve::P521 | Curve::Secp256k1) => {}
                    _ => {
                        return err(
                            ckr::KEY_TYPE_INCONSISTENT,
                            "ECDH needs an EC private key on P-256, P-384, P-521 or secp256k1",
                        )
                    }
                }
                // Accept the peer's point or its whole SPKI.
                let point = match self.provider.public_info(&peer) {
                    Ok(info) => info.raw,
                    Err(_) => peer,
                };
                pk.agree(&point).map_err(|_| {
                    Ep11Error::new(
                        ckr::MECHANISM_PARAM_INVALID,
                        "the peer's public point is not a valid point on the key's curve",
                    )
                })?
            }
            ckm::DH_PKCS_DERIVE => {
                let MechParam::Bytes(peer) = &mech.param else {
                    return err(
                        ckr::MECHANISM_PARAM_INVALID,
                        "CKM_DH_PKCS_DERIVE needs the peer's public value (big-endian) in ParameterB",
                    );
                };
                let Body::Private(pk) = &b.body else {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "DH derivation needs a DH private key",
                    );
                };
                if !matches!(pk.public().kind, AsymKind::Dh { .. }) {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "DH derivation needs a DH private key",
                    );
                }
                pk.agree(peer).map_err(|_| {
                    Ep11Error::new(
                        ckr::MECHANISM_PARAM_INVALID,
                        "the peer's public value is not valid in the key's group",
                    )
                })?
            }
            ckm::CONCATENATE_BASE_AND_DATA
            | ckm::CONCATENATE_DATA_AND_BASE
            | ckm::XOR_BASE_AND_DATA
            | ckm::CONCATENATE_BASE_AND_KEY => {
                let Body::Secret(base) = &b.body else {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "this derivation needs a secret base key",
                    );
                };
                let MechParam::Bytes(data) = &mech.param else {
                    return err(
                        ckr::MECHANISM_PARAM_INVALID,
                        "this derivation needs its data (or, for CONCATENATE_BASE_AND_KEY, the second key blob) in ParameterB",
                    );
                };
                let base = base.expose();
                match mech.code {
                    ckm::CONCATENATE_BASE_AND_DATA => Zeroizing::new([base, data].concat()),
                    ckm::CONCATENATE_DATA_AND_BASE => {
                        Zeroizing::new([data.as_slice(), base].concat())
                    }
                    ckm::XOR_BASE_AND_DATA => {
                        Zeroizing::new(base.iter().zip(data.iter()).map(|(a, b)| a ^ b).collect())
                    }
                    _ => {
                        let other = self.resolve(data, Role::Key)?;
                        permit(&other, cka::DERIVE, "CKA_DERIVE")?;
                        let Body::Secret(o) = &other.body else {
                            return err(
                                ckr::KEY_TYPE_INCONSISTENT,
                                "CONCATENATE_BASE_AND_KEY joins two secret keys",
                            );
                        };
                        // The result may be extracted only if both keys may be.
                        if !other.attrs.flag(cka::EXTRACTABLE)
                            && attrs::flag_of(t, cka::EXTRACTABLE)
                        {
                            return err(
                                ckr::TEMPLATE_INCONSISTENT,
                                "the second key is not extractable, so the derived key cannot be",
                            );
                        }
                        Zeroizing::new([base, o.expose()].concat())
                    }
                }
            }
            ckm::SHA1_KEY_DERIVATION
            | ckm::SHA224_KEY_DERIVATION
            | ckm::SHA256_KEY_DERIVATION
            | ckm::SHA384_KEY_DERIVATION
            | ckm::SHA512_KEY_DERIVATION => {
                no_param(mech)?;
                let d = match mech.code {
                    ckm::SHA1_KEY_DERIVATION => DigestAlg::Sha1,
                    ckm::SHA224_KEY_DERIVATION => DigestAlg::Sha224,
                    ckm::SHA256_KEY_DERIVATION => DigestAlg::Sha256,
                    ckm::SHA384_KEY_DERIVATION => DigestAlg::Sha384,
                    _ => DigestAlg::Sha512,
                };
                let Body::Secret(m) = &b.body else {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "SHA*_KEY_DERIVATION needs a secret base key",
                    );
                };
                Zeroizing::new(self.provider.digest(d, m.expose()))
            }
            c => {
                return err(
                    ckr::MECHANISM_INVALID,
                    format!("mechanism 0x{c:x} does not derive keys here (see GetMechanismList)"),
                )
            }
        };
        let kt = attrs::ulong(t, cka::KEY_TYPE).unwrap_or(ckk::GENERIC_SECRET);
        let len = match attrs::ulong(t, cka::VALUE_LEN) {
            Some(0) | None if kt == ckk::GENERIC_SECRET => secret.len(),
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => match kt {
                ckk::DES2 => 16,
                ckk::DES3 => 24,
                _ => {
                    return err(
                        ckr::TEMPLATE_INCOMPLETE,
                        "DeriveKey needs CKA_VALUE_LEN for this key type",
                    )
                }
            },
        };
        if len > secret.len() || !attrs::secret_len_ok(kt, len) {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                format!(
                    "a derived key of {len} bytes is not possible here (the secret has {} bytes)",
                    secret.len()
                ),
            );
        }
        self.new_secret(t, kt, KeyMaterial::new(secret[..len].to_vec()), false, None)
    }

    /// `GetAttributeValue`: the requested attributes (all when none are named).
    pub fn ep11_get_attributes(&self, blob: &[u8], which: &[u64]) -> Result<Attrs, Ep11Error> {
        let k = self.resolve(blob, Role::Key)?;
        let mut all = k.attrs.clone();
        let info = match &k.body {
            Body::Private(p) => Some(p.public().clone()),
            Body::Public(p) => Some(p.clone()),
            Body::Secret(_) => None,
        };
        if let Some(i) = &info {
            all.set(cka::PUBLIC_KEY_INFO, AttrValue::Bytes(i.spki.clone()));
        }
        if which.is_empty() {
            return Ok(all);
        }
        let mut out = Attrs::default();
        for a in which {
            if *a == cka::VALUE && !matches!(k.body, Body::Public(_)) {
                return err(
                    ckr::ATTRIBUTE_SENSITIVE,
                    "CKA_VALUE of a secret or private key is never revealed",
                );
            }
            match all.0.get(a) {
                Some(v) => out.set(*a, v.clone()),
                None => {
                    return err(
                        ckr::ATTRIBUTE_TYPE_INVALID,
                        format!("the key has no attribute 0x{a:x}"),
                    )
                }
            }
        }
        Ok(out)
    }

    /// `SetAttributeValue`: changes boolean attributes as PKCS#11 allows and returns the
    /// re-sealed blob.
    pub fn ep11_set_attributes(
        &self,
        blob: &[u8],
        t: &Template,
    ) -> Result<(Vec<u8>, Attrs), Ep11Error> {
        let k = self.resolve(blob, Role::Key)?;
        if !k.attrs.flag(cka::MODIFIABLE) {
            return err(
                ckr::ATTRIBUTE_READ_ONLY,
                "the key's CKA_MODIFIABLE attribute is false",
            );
        }
        let mut a = k.attrs.clone();
        for (&attr, v) in t {
            let Some(on) = v.as_bool() else {
                return err(
                    ckr::ATTRIBUTE_VALUE_INVALID,
                    format!("attribute 0x{attr:x}: only boolean attributes can be changed"),
                );
            };
            if !a
                .0
                .get(&attr)
                .is_some_and(|x| matches!(x, AttrValue::Bool(_)))
                || matches!(
                    attr,
                    cka::TOKEN
                        | cka::PRIVATE
                        | cka::MODIFIABLE
                        | cka::LOCAL
                        | cka::NEVER_EXTRACTABLE
                        | cka::ALWAYS_SENSITIVE
                        | cka::IBM_ATTRBOUND
                )
            {
                return err(
                    ckr::ATTRIBUTE_READ_ONLY,
                    format!("attribute 0x{attr:x} cannot be changed"),
                );
            }
            if (attr == cka::EXTRACTABLE && on && !a.flag(cka::EXTRACTABLE))
                || (attr == cka::SENSITIVE && !on && a.flag(cka::SENSITIVE))
                || (attr == cka::WRAP_WITH_TRUSTED && !on && a.flag(cka::WRAP_WITH_TRUSTED))
            {
                return err(
                    ckr::ATTRIBUTE_READ_ONLY,
                    format!("attribute 0x{attr:x} can only be changed towards more protection"),
                );
            }
            a.set(attr, AttrValue::Bool(on));
        }
        if matches!(object::parse(blob), Some(Parsed::RawSpki(_))) {
            return err(
                ckr::ATTRIBUTE_READ_ONLY,
                "a plain SPKI has no attributes; import it with CKM_IBM_TRANSPORTKEY first",
            );
        }
        let (mk, id) = self.sealing().map_err(|e| engine_err(e, Role::Key))?;
        let blob = self.reseal(&k, &a, mk, id)?;
        Ok((blob, a))
    }

    /// `RewrapKeyBlob`: re-seals a key blob under the committed new master key (from the
    /// commit of a rotation on; the unit opens both until the old key is gone). Without a
    /// new key, or for a blob already under it, the blob comes back as it is.
    pub fn ep11_rewrap(&self, blob: &[u8]) -> Result<Vec<u8>, Ep11Error> {
        let (mk, target) = match &self.next {
            Some((k, id)) => (k, *id),
            None => self.current().map_err(|e| engine_err(e, Role::Key))?,
        };
        match object::mk_of(blob).map_err(|e| engine_err(e, Role::Key))? {
            None => {
                return err(
                    ckr::KEY_HANDLE_INVALID,
                    "a plain SPKI is not sealed under any master key",
                )
            }
            Some(id) if id == target => return Ok(blob.to_vec()),
            Some(_) => {}
        }
        let k = self.resolve(blob, Role::Key)?;
        self.reseal(&k, &k.attrs, mk, target)
    }
}

/// The DER DigestInfo prefix of a hash (RFC 8017 §9.2, note 1), for hash-then-raw-RSA.
fn digest_info(h: DigestAlg) -> Vec<u8> {
    let hex = match h {
        DigestAlg::Sha1 => "3021300906052b0e03021a05000414",
        DigestAlg::Sha224 => "302d300d06096086480165030402040500041c",
        _ => "",
    };
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn unreachable_plan() -> Result<Vec<u8>, Ep11Error> {
    err(
        ckr::GENERAL_ERROR,
        "internal: cipher plan reached the buffered path",
    )
}

fn key_type_of(k: AsymKind) -> u64 {
    match k {
        AsymKind::Rsa { .. } => ckk::RSA,
        AsymKind::Ec(_) => ckk::EC,
        AsymKind::Dsa { .. } => ckk::DSA,
        AsymKind::Dh { .. } => ckk::DH,
    }
}

fn add_public_attrs(a: &mut Attrs, info: &PublicInfo) {
    match info.kind {
        AsymKind::Rsa { bits } => a.set(cka::MODULUS_BITS, AttrValue::Int(i64::from(bits))),
        AsymKind::Ec(c) => {
            a.set(cka::EC_PARAMS, AttrValue::Bytes(params_of_curve(c)));
            if a.class() == cko::PUBLIC_KEY {
                a.set(cka::EC_POINT, AttrValue::Bytes(info.raw.clone()));
            }
        }
        AsymKind::Dsa { bits, .. } | AsymKind::Dh { bits } => {
            a.set(cka::PRIME_BITS, AttrValue::Int(i64::from(bits)))
        }
    }
}

/// CheckSum of an asymmetric key (UnwrapKey, GenerateKeyPair): SPKI ‖ bit length (4, BE).
fn public_checksum(info: &PublicInfo) -> Vec<u8> {
    let bits = match info.kind {
        AsymKind::Rsa { bits } | AsymKind::Dsa { bits, .. } | AsymKind::Dh { bits } => bits,
        AsymKind::Ec(Curve::Ed25519) => 255,
        AsymKind::Ec(c) => match c {
            Curve::P521 => 521,
            Curve::P384 => 384,
            _ => 256,
        },
    };
    let mut out = info.spki.clone();
    out.extend_from_slice(&bits.to_be_bytes());
    out
}
