//! EP11 (Enterprise PKCS#11) semantics on a crypto unit: stateless key blobs, sealed
//! multi-part states, PKCS#11 attribute rules and the mechanisms GREP11 serves. Sans-I/O:
//! every primitive goes through the [`CryptoProvider`]. The byte formats are in [`object`];
//! the front end (`strongroom-grep11`) only converts protobuf to these calls.
//!
//! Errors carry a PKCS#11 return value (`CKR_*`) and a detail that never holds key
//! material or data.

mod aggregate;
mod attrbound;
mod attributes;
pub mod attrs;
mod btc;
pub mod consts;
mod derive;
mod errors;
pub mod fips;
mod keygen;
mod mechanisms;
pub mod object;
mod ops;
mod plan;
mod resolve;
mod state;
mod support;
mod usage;
mod wrap;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use strongroom_model::InstanceId;
use zeroize::Zeroizing;

use crate::provider::{
    AeadAlg, AsymKind, BlockCipher, CipherMode, Curve, DigestAlg, EcSdsa, MacAlg, MlDsaSet,
    MlKemSet, PreparedPrivate, PublicInfo, RsaPadding, SignScheme,
};
use crate::secret::KeyMaterial;
use crate::{CryptoUnit, EngineError, MkId};

pub use attrs::{AttrValue, Attrs, Template};
use consts::{cka, ckf, ckk, ckm, cko, ckp, ckr, ecsg, Cka, Ckk, Ckm, Cko, Ckr};
use object::Parsed;

use errors::*;
pub use mechanisms::{
    curve_of_params, mechanism_info, params_of_curve, MechInfo, MechanismPolicy, MECHANISMS,
};
pub use plan::digest_of;
use plan::*;
use state::*;
use support::*;
use usage::*;

/// The EP11 operations of a crypto unit ([`CryptoUnit::ep11`]): what GREP11 serves, on
/// stateless key blobs and sealed States, for a caller who is the security officer or not
/// ([`Ep11::as_officer`]).
#[derive(Clone, Copy)]
pub struct Ep11<'a> {
    unit: &'a CryptoUnit,
    officer: bool,
}

impl std::ops::Deref for Ep11<'_> {
    type Target = CryptoUnit;

    fn deref(&self) -> &CryptoUnit {
        self.unit
    }
}

impl CryptoUnit {
    /// The unit's EP11 operations, for a caller who is not the security officer.
    pub fn ep11(&self) -> Ep11<'_> {
        Ep11 {
            unit: self,
            officer: false,
        }
    }
}

impl Ep11<'_> {
    /// The same operations for a caller who is (`true`) or is not the security officer:
    /// only the officer may make a key `CKA_TRUSTED` (PKCS#11 lets only the SO set it to
    /// true), since a trusted key may wrap the keys marked `CKA_WRAP_WITH_TRUSTED`.
    pub fn as_officer(self, officer: bool) -> Self {
        Ep11 { officer, ..self }
    }

    /// Refuses a new key with `CKA_TRUSTED` unless the caller is the security officer, and
    /// a trusted key that could decrypt.
    fn check_trust(&self, attrs: &Attrs) -> Result<(), Ep11Error> {
        self.may_grant_trust(attrs.flag(cka::TRUSTED))?;
        if decrypting_trust(attrs) {
            return Err(decrypting_trust_refused());
        }
        Ok(())
    }

    /// Refuses to make a key `CKA_TRUSTED` (`grants`: a new key with it, or a change that
    /// turns it on) unless the caller is the security officer.
    fn may_grant_trust(&self, grants: bool) -> Result<(), Ep11Error> {
        if grants && !self.officer {
            return err(
                ckr::ATTRIBUTE_READ_ONLY,
                "CKA_TRUSTED can be set only by the security officer (a Manager of the whole instance)",
            );
        }
        Ok(())
    }
}

/// An EP11 error: a CK_RV and a detail for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail} (CKR 0x{ckr:x})")]
pub struct Ep11Error {
    /// The PKCS#11 return value.
    pub ckr: Ckr,
    /// What went wrong (never secrets).
    pub detail: String,
}

impl Ep11Error {
    /// An error with a code and a detail.
    pub fn new(ckr: Ckr, detail: impl Into<String>) -> Self {
        Ep11Error {
            ckr,
            detail: detail.into(),
        }
    }
}

fn err<T>(ckr: Ckr, detail: impl Into<String>) -> Result<T, Ep11Error> {
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
        hash: Ckm,
        /// CKG_MGF1_* value.
        mgf: u64,
        /// Encoding parameter (label).
        label: Vec<u8>,
    },
    /// RSA-PSS: hash mechanism, MGF, salt length.
    Pss {
        /// CKM_* of the hash.
        hash: Ckm,
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
    /// CKM_IBM_BTC_DERIVE (BTCDeriveParm): the derivation (CK_IBM_BTC_* type), the child's
    /// index, the parent's chain code and the parameter version (1).
    BtcDerive {
        /// BTCDeriveParm.Type.
        kind: u64,
        /// ChildKeyIndex (hardened from 2³¹).
        index: u64,
        /// The parent's chain code (empty for a master key).
        chain: Vec<u8>,
        /// Version (XCP_BTC_VERSION = 1).
        version: u64,
    },
    /// CKM_IBM_ECDSA_OTHER (ECSGParm): the signature variant (ECSG type).
    Ecsg(u64),
    /// CKM_IBM_EC_AGGREGATE (ECAGGParm): version, mode (1 signatures, 2 public keys), the
    /// size of each element, and the elements one after the other.
    EcAgg {
        /// ECAGGParm.Version.
        version: u64,
        /// ECAGGParm.Mode.
        mode: u64,
        /// ECAGGParm.PerElementSize.
        per_element: u64,
        /// ECAGGParm.Elements.
        elements: Vec<u8>,
    },
    /// A parameter kind this server does not implement (by its oneof field number).
    Unsupported(u32),
}

/// A mechanism with its parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mech {
    /// CKM_* code.
    pub code: Ckm,
    /// Parameter.
    pub param: MechParam,
}

impl Mech {
    /// A mechanism without parameter.
    pub fn new(code: Ckm) -> Self {
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
    fn bad_blob(self) -> Ckr {
        match self {
            Role::Key => ckr::KEY_HANDLE_INVALID,
            Role::Wrapping => ckr::WRAPPING_KEY_HANDLE_INVALID,
            Role::Unwrapping => ckr::UNWRAPPING_KEY_HANDLE_INVALID,
        }
    }
}
