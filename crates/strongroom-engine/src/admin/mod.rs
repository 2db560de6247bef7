//! Crypto unit administration: the HPCS/EP11 domain model with modern cryptography
//! (`spec/ceremony.md` §3 and §6). A unit has a mode (imprint or secured), up to eight
//! administrators identified by the SKI of their public key, a signature and a revocation
//! threshold, a transaction counter, a new and a current master key register, an importer
//! key for delivering key parts, a signed roster of the instance's units and an identity key
//! that signs every response.
//!
//! Every state-changing command arrives as a [`SignedCommand`]: the exact bytes of a JSON
//! [`CommandBody`] (naming instance, unit, epoch and counter = stored + 1, so a captured
//! command cannot be replayed) plus administrator signatures over
//! `"strongroom/unit-command/v1\0" ‖ body`. [`UnitState::execute`] checks everything before
//! changing anything: a refused command leaves the state exactly as it was.
//!
//! Sans-I/O: the node persists the state ([`UnitState::to_persisted`]) sealed under its own
//! key; randomness and primitives come from the [`CryptoProvider`].

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use strongroom_model::{InstanceId, UnitId};
use zeroize::Zeroizing;

use crate::provider::{CryptoProvider, SigAlg};
use crate::secret::{MasterKey, MASTER_KEY_LEN};
use crate::{CryptoUnit, EngineError, MkId};

mod commands;
pub mod files;
mod persist;
mod refusals;
mod state;
mod wire;
mod workstation;
mod zones;

pub use refusals::*;
pub use state::*;
pub use wire::*;
pub use workstation::*;
pub use zones::*;

/// Most administrators a unit holds (EP11: `XCP_MAX_ADMINS`).
pub const MAX_ADMINS: usize = 8;
/// Longest administrator name.
pub const MAX_ADMIN_NAME: usize = 30;
/// Fewest and most key parts of a load.
pub const MIN_PARTS: usize = 2;
/// Most key parts of a load.
pub const MAX_PARTS: usize = 3;
/// Most units on a roster (3 operational + 2 recovery).
pub const MAX_ROSTER: usize = 5;
/// The version of command and response bodies.
pub const WIRE_VERSION: u8 = 1;

const CMD_DOMAIN: &[u8] = b"strongroom/unit-command/v1\0";
const RSP_DOMAIN: &[u8] = b"strongroom/unit-response/v1\0";
const POP_DOMAIN: &[u8] = b"strongroom/admin-pop/v1\0";
const SKI_DOMAIN: &[u8] = b"strongroom/ski/v1\0";
const AUDIT_DOMAIN: &[u8] = b"strongroom/unit-audit/v1\0";
/// HPKE `info` prefix for a key part sealed to a unit's importer key.
pub const PART_INFO: &[u8] = b"strongroom/mk-part/v1\0";
/// HPKE `info` prefix for a master key exported from a recovery unit.
pub const TRANSFER_INFO: &[u8] = b"strongroom/mk-transfer/v1\0";
const MK_VP_INFO: &[u8] = b"strongroom/mk-id/v1";
const PART_VP_INFO: &[u8] = b"strongroom/mk-part-vp/v1";

/// Operational units serve traffic; recovery units keep a master key and can export it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// Serves API traffic.
    Operational,
    /// Generates and keeps a master key; may export it to roster members; serves nothing.
    Recovery,
}

/// Imprint (cleared, unsigned administration) or secured (every change signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Thresholds 0/0; administrators may be added without signatures; no master key commands.
    Imprint,
    /// Thresholds set; every state-changing command needs its signatures.
    Secured,
}

/// Which register a transfer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    /// The current register.
    Current,
    /// The new register.
    New,
}

/// A 32-byte verification pattern of a master key: HKDF-SHA-256(salt = "", IKM = key,
/// info = "strongroom/mk-id/v1", L = 32). Its first 16 bytes are the [`MkId`] stamped in
/// every blob (HKDF output of length 16 is a prefix of the length-32 output).
/// Compared in constant time: a verification pattern is checked against keys the unit holds.
#[derive(Clone, Copy, Eq)]
pub struct Vp(pub [u8; 32]);

impl PartialEq for Vp {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl std::hash::Hash for Vp {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Vp {
    /// The master key id (first 16 bytes).
    pub fn mk_id(&self) -> MkId {
        let mut id = [0u8; 16];
        id.copy_from_slice(&self.0[..16]);
        MkId(id)
    }
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for Vp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vp({})", self.to_hex())
    }
}

/// The verification pattern of a master key value.
pub fn vp_of(p: &dyn CryptoProvider, key: &[u8; MASTER_KEY_LEN]) -> Result<Vp, EngineError> {
    let mut out = [0u8; 32];
    p.hkdf_sha256(&[], key, MK_VP_INFO, &mut out)?;
    Ok(Vp(out))
}

/// The verification pattern of a key part (lets a custodian show which part they hold).
pub fn part_vp_of(p: &dyn CryptoProvider, part: &[u8; MASTER_KEY_LEN]) -> Result<Vp, EngineError> {
    let mut out = [0u8; 32];
    p.hkdf_sha256(&[], part, PART_VP_INFO, &mut out)?;
    Ok(Vp(out))
}

/// The subject key identifier of an administrator key:
/// SHA-256("strongroom/ski/v1\0" ‖ algorithm name ‖ 0x00 ‖ raw public key).
pub fn ski_of(p: &dyn CryptoProvider, alg: SigAlg, public_key: &[u8]) -> [u8; 32] {
    p.sha256(&[SKI_DOMAIN, alg.name().as_bytes(), &[0], public_key])
}

/// The message an administrator signs to prove possession of a key being installed.
pub fn pop_message(
    instance: InstanceId,
    unit: UnitId,
    name: &str,
    alg: SigAlg,
    public_key: &[u8],
) -> Vec<u8> {
    let mut m = POP_DOMAIN.to_vec();
    m.extend_from_slice(instance.as_bytes());
    m.extend_from_slice(unit.as_bytes());
    m.extend_from_slice(alg.name().as_bytes());
    m.push(0);
    m.extend_from_slice(name.as_bytes());
    m.push(0);
    m.extend_from_slice(public_key);
    m
}

/// The message administrators sign for a command body.
pub fn command_message(body: &[u8]) -> Vec<u8> {
    let mut m = CMD_DOMAIN.to_vec();
    m.extend_from_slice(body);
    m
}

/// The message a unit signs for a response body.
pub fn response_message(body: &[u8]) -> Vec<u8> {
    let mut m = RSP_DOMAIN.to_vec();
    m.extend_from_slice(body);
    m
}

/// HPKE `info` for a key part sealed to `importer` of `unit`.
pub fn part_info(instance: InstanceId, unit: UnitId, importer: &[u8; 16]) -> Vec<u8> {
    let mut m = PART_INFO.to_vec();
    m.extend_from_slice(instance.as_bytes());
    m.extend_from_slice(unit.as_bytes());
    m.extend_from_slice(importer);
    m
}

fn transfer_info(instance: InstanceId, target: UnitId, importer: &[u8; 16]) -> Vec<u8> {
    let mut m = TRANSFER_INFO.to_vec();
    m.extend_from_slice(instance.as_bytes());
    m.extend_from_slice(target.as_bytes());
    m.extend_from_slice(importer);
    m
}

fn transfer_aad(source: UnitId, vp: &Vp) -> Vec<u8> {
    let mut m = source.as_bytes().to_vec();
    m.extend_from_slice(&vp.0);
    m
}
