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
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vp(pub [u8; 32]);

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

// ---------------------------------------------------------------------------------------
// Wire types (JSON; binary fields are base64, identifiers and digests hex).

/// A command as sent: the body bytes (base64) and the administrators' signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCommand {
    /// Base64 of the exact JSON bytes of a [`CommandBody`].
    pub body: String,
    /// Signatures over `"strongroom/unit-command/v1\0" ‖ body bytes`.
    #[serde(default)]
    pub signatures: Vec<CommandSignature>,
}

/// One administrator's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSignature {
    /// The signer's SKI (hex).
    pub ski: String,
    /// The signature (base64; DER for ECDSA).
    pub signature: String,
}

/// What administrators sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    /// [`WIRE_VERSION`].
    pub v: u8,
    /// The instance.
    pub instance: InstanceId,
    /// The target unit.
    pub unit: UnitId,
    /// The unit's epoch (bumped by zeroize).
    pub epoch: u64,
    /// The unit's transaction counter + 1.
    pub ctr: u64,
    /// The command.
    pub cmd: Cmd,
}

/// An entry of the instance roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterEntry {
    /// The unit.
    pub unit: UnitId,
    /// Its kind.
    pub kind: UnitKind,
    /// Its Ed25519 identity public key (base64).
    pub identity_key: String,
}

/// The commands (`spec/ceremony.md` §2.7 for their EP11 names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Cmd {
    /// Install an administrator (`cryptounit-admin-add`).
    AdminAdd {
        /// 1–30 printable characters.
        name: String,
        /// [`SigAlg::name`].
        alg: String,
        /// Raw public key (base64).
        public_key: String,
        /// Proof of possession: the new key's signature over [`pop_message`] (base64).
        pop: String,
    },
    /// Remove an administrator (`cryptounit-admin-rm`).
    AdminRemove {
        /// SKI (hex).
        ski: String,
    },
    /// Set both thresholds; from imprint mode this secures the unit (`cryptounit-thrhld-set`).
    SetThresholds {
        /// Signature threshold 1–8.
        sign: u8,
        /// Revocation threshold 1–8.
        revoke: u8,
    },
    /// Install the instance roster (units that may receive an exported master key).
    SetRoster {
        /// Every unit of the instance, this one included.
        units: Vec<RosterEntry>,
    },
    /// Create a fresh importer key for one load (`GEN_DOM_IMPORTER`).
    GenImporter,
    /// Load 2–3 key parts sealed to the importer key into the new register (`IMPORT_WK`).
    LoadNew {
        /// The importer id (hex) the parts are sealed to.
        importer: String,
        /// HPKE-sealed parts (base64).
        parts: Vec<String>,
    },
    /// Import a master key exported by a recovery unit of the roster into the new register.
    ImportTransfer {
        /// The recovery unit's signed `transfer` response.
        transfer: SignedResponse,
    },
    /// Commit the new register; names the key by its verification pattern (`COMMIT_WK`).
    Commit {
        /// Expected VP (hex).
        vp: String,
    },
    /// Start writing new blobs under the committed new key while both are readable.
    BeginRotation {
        /// Expected VP of the new register (hex).
        vp: String,
    },
    /// Promote the committed new register to current (`FINALIZE_WK`, `cryptounit-mk-setimm`).
    Finalize {
        /// Expected VP (hex).
        vp: String,
    },
    /// Empty the new register (`cryptounit-mk-clrnew`).
    ClearNew,
    /// Empty the current register (`cryptounit-mk-clrcur`).
    ClearCurrent,
    /// Back to imprint mode: administrators, thresholds, registers and roster erased.
    Zeroize,
    /// Recovery units: a random master key, into the current register when it is empty,
    /// else into the new register (`GEN_WK`).
    GenRandom,
    /// Recovery units: seal a register to a roster member's importer key (`EXPORT_WK`).
    Export {
        /// Which register.
        register: Which,
        /// The target unit's signed `importer` response.
        target: SignedResponse,
    },
}

impl Cmd {
    /// The command's name (audit, messages).
    pub fn name(&self) -> &'static str {
        match self {
            Cmd::AdminAdd { .. } => "admin_add",
            Cmd::AdminRemove { .. } => "admin_remove",
            Cmd::SetThresholds { .. } => "set_thresholds",
            Cmd::SetRoster { .. } => "set_roster",
            Cmd::GenImporter => "gen_importer",
            Cmd::LoadNew { .. } => "load_new",
            Cmd::ImportTransfer { .. } => "import_transfer",
            Cmd::Commit { .. } => "commit",
            Cmd::BeginRotation { .. } => "begin_rotation",
            Cmd::Finalize { .. } => "finalize",
            Cmd::ClearNew => "clear_new",
            Cmd::ClearCurrent => "clear_current",
            Cmd::Zeroize => "zeroize",
            Cmd::GenRandom => "gen_random",
            Cmd::Export { .. } => "export",
        }
    }
}

/// A response: body bytes (base64) signed by the unit's identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedResponse {
    /// Base64 of the exact JSON bytes of a [`ResponseBody`].
    pub body: String,
    /// Ed25519 signature over `"strongroom/unit-response/v1\0" ‖ body bytes` (base64).
    pub signature: String,
}

/// What a unit signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseBody {
    /// [`WIRE_VERSION`].
    pub v: u8,
    /// The instance.
    pub instance: InstanceId,
    /// The unit.
    pub unit: UnitId,
    /// Epoch after the command.
    pub epoch: u64,
    /// Counter after the command.
    pub ctr: u64,
    /// SHA-256 (hex) of the command body answered; absent for queries.
    pub request: Option<String>,
    /// What the command produced.
    pub output: Output,
    /// SHA-256 (hex) of the unit's status after the command.
    pub state_digest: String,
    /// Head of the unit's command hash chain (hex).
    pub audit_head: String,
}

/// Command output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Output {
    /// The unit's status (queries, and every state-changing command).
    Status(Box<StatusView>),
    /// A fresh importer key.
    Importer {
        /// Importer id (hex, 16 bytes).
        importer: String,
        /// X25519 public key (base64).
        public_key: String,
        /// The unit's status.
        status: Box<StatusView>,
    },
    /// An exported master key, sealed to a roster member's importer key.
    Transfer {
        /// The target unit.
        target: UnitId,
        /// The importer id (hex).
        importer: String,
        /// Which register was exported.
        register: Which,
        /// The exported key's verification pattern (hex).
        vp: String,
        /// HPKE ciphertext (base64).
        sealed: String,
    },
}

/// A register as shown (no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterView {
    /// `empty` | `valid` (current); `empty` | `full_uncommitted` | `full_committed` (new).
    pub state: String,
    /// Verification pattern (hex) when not empty.
    pub vp: Option<String>,
}

/// An administrator as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminView {
    /// SKI (hex).
    pub ski: String,
    /// Name.
    pub name: String,
    /// Algorithm.
    pub alg: String,
}

/// The unit's state as shown to administrators (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusView {
    /// The unit.
    pub unit: UnitId,
    /// The instance.
    pub instance: InstanceId,
    /// Kind.
    pub kind: UnitKind,
    /// Mode.
    pub mode: Mode,
    /// Epoch.
    pub epoch: u64,
    /// Transaction counter.
    pub ctr: u64,
    /// Administrators.
    pub admins: Vec<AdminView>,
    /// Signature threshold (0 in imprint mode).
    pub signature_threshold: u8,
    /// Revocation threshold (0 in imprint mode).
    pub revocation_threshold: u8,
    /// Current register.
    pub current: RegisterView,
    /// New register.
    pub new: RegisterView,
    /// Whether new blobs are written under the new register (rotation in progress).
    pub rotating: bool,
    /// The roster.
    pub roster: Vec<RosterEntry>,
    /// The unit's identity key (base64, Ed25519).
    pub identity_key: String,
    /// Whether this unit was initialised by `serve --dev` (random key, no ceremony).
    pub dev: bool,
}

// ---------------------------------------------------------------------------------------
// Refusals.

/// Why a command was refused. No state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The command cannot be decoded or a field is invalid.
    Malformed,
    /// Addressed to another instance, unit or epoch.
    WrongTarget,
    /// The counter is not stored + 1 (replay or stale command).
    Replay,
    /// Too few signatures, an unknown signer or a bad signature.
    Signatures,
    /// The unit's state does not allow the command.
    State,
    /// A roster or transfer check failed.
    Roster,
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The category.
    pub kind: RefusalKind,
    /// A message for the administrator (never key material).
    pub message: String,
}

fn refuse<T>(kind: RefusalKind, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        kind,
        message: message.into(),
    })
}

fn malformed(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: RefusalKind::Malformed,
        message: message.into(),
    }
}

fn state(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: RefusalKind::State,
        message: message.into(),
    }
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, Refusal> {
    B64.decode(s.trim())
        .map_err(|_| malformed(format!("{field} is not valid base64")))
}

fn hex32(field: &str, s: &str) -> Result<[u8; 32], Refusal> {
    let v = hex::decode(s.trim()).map_err(|_| malformed(format!("{field} is not hex")))?;
    v.try_into()
        .map_err(|_| malformed(format!("{field} must be 32 bytes (64 hex digits)")))
}

fn hex16(field: &str, s: &str) -> Result<[u8; 16], Refusal> {
    let v = hex::decode(s.trim()).map_err(|_| malformed(format!("{field} is not hex")))?;
    v.try_into()
        .map_err(|_| malformed(format!("{field} must be 16 bytes (32 hex digits)")))
}

fn crypto(_: impl std::fmt::Debug) -> Refusal {
    Refusal {
        kind: RefusalKind::State,
        message: "a cryptographic operation of the unit failed".into(),
    }
}

// ---------------------------------------------------------------------------------------
// State.

/// An installed administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// SKI.
    pub ski: [u8; 32],
    /// Name.
    pub name: String,
    /// Algorithm.
    pub alg: SigAlg,
    /// Raw public key.
    pub public_key: Vec<u8>,
}

/// A full register.
#[derive(Debug)]
pub struct Register {
    key: MasterKey,
    vp: Vp,
}

impl Register {
    fn new(p: &dyn CryptoProvider, key: MasterKey) -> Result<Self, EngineError> {
        let vp = vp_of(p, key.expose())?;
        Ok(Register { key, vp })
    }
    /// The verification pattern.
    pub fn vp(&self) -> Vp {
        self.vp
    }
    fn copy_key(&self) -> MasterKey {
        MasterKey::from_bytes(*self.key.expose())
    }
}

/// The new register.
#[derive(Debug, Default)]
pub enum NewRegister {
    /// Empty.
    #[default]
    Empty,
    /// Loaded, not committed.
    Uncommitted(Register),
    /// Committed.
    Committed(Register),
}

struct Importer {
    id: [u8; 16],
    private: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

/// One crypto unit's administrative state.
pub struct UnitState {
    id: UnitId,
    instance: InstanceId,
    kind: UnitKind,
    epoch: u64,
    ctr: u64,
    mode: Mode,
    admins: Vec<Admin>,
    sign: u8,
    revoke: u8,
    current: Option<Register>,
    new: NewRegister,
    rotating: bool,
    importer: Option<Importer>,
    roster: Vec<RosterEntry>,
    identity: Zeroizing<Vec<u8>>,
    identity_public: Vec<u8>,
    audit_head: [u8; 32],
    dev: bool,
}

impl std::fmt::Debug for UnitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitState")
            .field("id", &self.id)
            .field("instance", &self.instance)
            .field("kind", &self.kind)
            .field("mode", &self.mode)
            .field("ctr", &self.ctr)
            .finish_non_exhaustive()
    }
}

/// What a command did, for the node (which persists the state before answering).
#[derive(Debug)]
pub struct Executed {
    /// The command's name.
    pub command: &'static str,
    /// The signed response.
    pub response: SignedResponse,
    /// SKIs of the signers (hex).
    pub signers: Vec<String>,
}

impl UnitState {
    /// A new unit in imprint mode with empty registers and a fresh identity key.
    pub fn new(
        p: &dyn CryptoProvider,
        id: UnitId,
        instance: InstanceId,
        kind: UnitKind,
    ) -> Result<Self, EngineError> {
        let (identity, identity_public) = p.sig_generate(SigAlg::Ed25519)?;
        Ok(UnitState {
            id,
            instance,
            kind,
            epoch: 0,
            ctr: 0,
            mode: Mode::Imprint,
            admins: Vec::new(),
            sign: 0,
            revoke: 0,
            current: None,
            new: NewRegister::Empty,
            rotating: false,
            importer: None,
            roster: Vec::new(),
            identity,
            identity_public,
            audit_head: [0u8; 32],
            dev: false,
        })
    }

    /// A development unit: imprint mode, but the current register holds `mk` (a random key
    /// made by `serve --dev`, or a master key carried over from a v1 unit file).
    pub fn with_current(
        p: &dyn CryptoProvider,
        id: UnitId,
        instance: InstanceId,
        mk: MasterKey,
        dev: bool,
    ) -> Result<Self, EngineError> {
        let mut u = Self::new(p, id, instance, UnitKind::Operational)?;
        u.current = Some(Register::new(p, mk)?);
        u.dev = dev;
        Ok(u)
    }

    /// The unit id.
    pub fn id(&self) -> UnitId {
        self.id
    }
    /// The instance.
    pub fn instance(&self) -> InstanceId {
        self.instance
    }
    /// The kind.
    pub fn kind(&self) -> UnitKind {
        self.kind
    }
    /// The identity public key (Ed25519, raw).
    pub fn identity_key(&self) -> &[u8] {
        &self.identity_public
    }
    /// Whether a rotation is in progress (writes under the new register).
    pub fn rotating(&self) -> bool {
        self.rotating
    }
    /// The current register's VP.
    pub fn current_vp(&self) -> Option<Vp> {
        self.current.as_ref().map(|r| r.vp)
    }
    /// The new register's VP and whether it is committed.
    pub fn new_vp(&self) -> Option<(Vp, bool)> {
        match &self.new {
            NewRegister::Empty => None,
            NewRegister::Uncommitted(r) => Some((r.vp, false)),
            NewRegister::Committed(r) => Some((r.vp, true)),
        }
    }
    /// Administrators.
    pub fn admins(&self) -> &[Admin] {
        &self.admins
    }
    /// (signature, revocation) thresholds.
    pub fn thresholds(&self) -> (u8, u8) {
        (self.sign, self.revoke)
    }
    /// Mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The data-plane unit for this state: `None` when the current register is empty or
    /// the unit is a recovery unit (which serves no traffic). A committed new register is
    /// readable; new blobs go under it while a rotation is in progress.
    pub fn data_plane(
        &self,
        provider: std::sync::Arc<dyn CryptoProvider>,
    ) -> Result<Option<CryptoUnit>, EngineError> {
        if self.kind != UnitKind::Operational {
            return Ok(None);
        }
        let Some(cur) = &self.current else {
            return Ok(None);
        };
        let mut unit = CryptoUnit::new(provider)?;
        unit.set_instance(self.instance);
        unit.set_current_master_key(cur.copy_key());
        if let NewRegister::Committed(r) = &self.new {
            unit.set_next_master_key(r.copy_key(), self.rotating);
        }
        Ok(Some(unit))
    }

    /// The status view.
    pub fn status(&self) -> StatusView {
        let reg = |state: &str, r: Option<&Register>| RegisterView {
            state: state.into(),
            vp: r.map(|r| r.vp.to_hex()),
        };
        StatusView {
            unit: self.id,
            instance: self.instance,
            kind: self.kind,
            mode: self.mode,
            epoch: self.epoch,
            ctr: self.ctr,
            admins: self
                .admins
                .iter()
                .map(|a| AdminView {
                    ski: hex::encode(a.ski),
                    name: a.name.clone(),
                    alg: a.alg.name().into(),
                })
                .collect(),
            signature_threshold: self.sign,
            revocation_threshold: self.revoke,
            current: match &self.current {
                None => reg("empty", None),
                Some(r) => reg("valid", Some(r)),
            },
            new: match &self.new {
                NewRegister::Empty => reg("empty", None),
                NewRegister::Uncommitted(r) => reg("full_uncommitted", Some(r)),
                NewRegister::Committed(r) => reg("full_committed", Some(r)),
            },
            rotating: self.rotating,
            roster: self.roster.clone(),
            identity_key: B64.encode(&self.identity_public),
            dev: self.dev,
        }
    }

    fn sign_response(
        &self,
        p: &dyn CryptoProvider,
        request: Option<String>,
        output: Output,
    ) -> Result<SignedResponse, EngineError> {
        let status = serde_json::to_vec(&self.status()).map_err(|_| EngineError::Crypto)?;
        let body = ResponseBody {
            v: WIRE_VERSION,
            instance: self.instance,
            unit: self.id,
            epoch: self.epoch,
            ctr: self.ctr,
            request,
            output,
            state_digest: hex::encode(p.sha256(&[&status])),
            audit_head: hex::encode(self.audit_head),
        };
        let bytes = serde_json::to_vec(&body).map_err(|_| EngineError::Crypto)?;
        let sig = p.sig_sign(SigAlg::Ed25519, &self.identity, &response_message(&bytes))?;
        Ok(SignedResponse {
            body: B64.encode(&bytes),
            signature: B64.encode(sig),
        })
    }

    /// An unsigned query, answered with a signed status.
    pub fn query(&self, p: &dyn CryptoProvider) -> Result<SignedResponse, EngineError> {
        self.sign_response(p, None, Output::Status(Box::new(self.status())))
    }

    fn required(&self, cmd: &Cmd) -> Result<usize, Refusal> {
        let sign = usize::from(self.sign);
        let revoke = usize::from(self.revoke);
        Ok(match self.mode {
            Mode::Imprint => match cmd {
                Cmd::AdminAdd { .. } | Cmd::AdminRemove { .. } | Cmd::Zeroize => 0,
                Cmd::SetThresholds { sign, .. } => usize::from(*sign),
                other => {
                    return refuse(
                        RefusalKind::State,
                        format!(
                            "the unit is in imprint mode: '{}' needs administrators and thresholds first (cryptounit-admin-add, cryptounit-thrhld-set)",
                            other.name()
                        ),
                    )
                }
            },
            Mode::Secured => match cmd {
                Cmd::AdminAdd { .. }
                | Cmd::SetThresholds { .. }
                | Cmd::SetRoster { .. }
                | Cmd::Commit { .. }
                | Cmd::Export { .. } => sign,
                Cmd::AdminRemove { .. } => revoke,
                Cmd::GenImporter
                | Cmd::LoadNew { .. }
                | Cmd::ImportTransfer { .. }
                | Cmd::BeginRotation { .. }
                | Cmd::Finalize { .. }
                | Cmd::ClearNew
                | Cmd::ClearCurrent
                | Cmd::Zeroize
                | Cmd::GenRandom => 1,
            },
        })
    }

    /// Decodes a command and checks its target, counter and signatures, without executing
    /// it. Returns the body and the command's bytes.
    pub fn check(
        &self,
        p: &dyn CryptoProvider,
        cmd: &SignedCommand,
    ) -> Result<(CommandBody, Vec<u8>, Vec<String>), Refusal> {
        let bytes = b64("body", &cmd.body)?;
        let body: CommandBody = serde_json::from_slice(&bytes)
            .map_err(|e| malformed(format!("the command body is not a valid command: {e}")))?;
        if body.v != WIRE_VERSION {
            return refuse(
                RefusalKind::Malformed,
                format!(
                    "command version {} is not supported (expected {WIRE_VERSION})",
                    body.v
                ),
            );
        }
        if body.instance != self.instance || body.unit != self.id {
            return refuse(
                RefusalKind::WrongTarget,
                format!(
                    "the command is addressed to unit {} of instance {}, not to this unit",
                    body.unit, body.instance
                ),
            );
        }
        if body.epoch != self.epoch {
            return refuse(
                RefusalKind::WrongTarget,
                format!(
                    "the command was made for epoch {} but the unit is in epoch {} (it was zeroized since)",
                    body.epoch, self.epoch
                ),
            );
        }
        if body.ctr != self.ctr.wrapping_add(1) {
            return refuse(
                RefusalKind::Replay,
                format!(
                    "transaction counter {} refused: the unit expects {} (a replayed or stale command; query the unit and sign again)",
                    body.ctr,
                    self.ctr.wrapping_add(1)
                ),
            );
        }
        let needed = self.required(&body.cmd)?;
        let msg = command_message(&bytes);
        let mut seen: Vec<[u8; 32]> = Vec::new();
        for s in &cmd.signatures {
            let ski = hex32("signature ski", &s.ski)?;
            if seen.contains(&ski) {
                return refuse(
                    RefusalKind::Signatures,
                    format!("administrator {} signed twice", s.ski),
                );
            }
            let Some(admin) = self.admins.iter().find(|a| a.ski == ski) else {
                return refuse(
                    RefusalKind::Signatures,
                    format!("signer {} is not an administrator of this unit", s.ski),
                );
            };
            let sig = b64("signature", &s.signature)?;
            if !p.sig_verify(admin.alg, &admin.public_key, &msg, &sig) {
                return refuse(
                    RefusalKind::Signatures,
                    format!(
                        "the signature of administrator '{}' does not verify",
                        admin.name
                    ),
                );
            }
            seen.push(ski);
        }
        if seen.len() < needed {
            return refuse(
                RefusalKind::Signatures,
                format!(
                    "'{}' needs {needed} administrator signature(s); {} given",
                    body.cmd.name(),
                    seen.len()
                ),
            );
        }
        let signers = seen.iter().map(hex::encode).collect();
        Ok((body, bytes, signers))
    }

    /// Checks and executes a signed command. On refusal the state is unchanged.
    pub fn execute(
        &mut self,
        p: &dyn CryptoProvider,
        cmd: &SignedCommand,
    ) -> Result<Executed, Refusal> {
        let (body, bytes, signers) = self.check(p, cmd)?;
        let output = self.apply(p, &body.cmd)?;
        self.ctr = body.ctr;
        let req = p.sha256(&[&bytes]);
        self.audit_head = p.sha256(&[AUDIT_DOMAIN, &self.audit_head, &req]);
        // Statuses in the output show the state after the command (counter included).
        let output = match output {
            Some(Output::Importer {
                importer,
                public_key,
                ..
            }) => Output::Importer {
                importer,
                public_key,
                status: Box::new(self.status()),
            },
            Some(o) => o,
            None => Output::Status(Box::new(self.status())),
        };
        let response = self
            .sign_response(p, Some(hex::encode(req)), output)
            .map_err(crypto)?;
        Ok(Executed {
            command: body.cmd.name(),
            response,
            signers,
        })
    }

    fn expect_vp(&self, given: &str, actual: Vp, what: &str) -> Result<(), Refusal> {
        let given = hex32("vp", given)?;
        if given != actual.0 {
            return refuse(
                RefusalKind::State,
                format!(
                    "verification pattern mismatch: the {what} holds {}, the command names {}",
                    actual.to_hex(),
                    hex::encode(given)
                ),
            );
        }
        Ok(())
    }

    fn require_secured(&self, what: &str) -> Result<(), Refusal> {
        if self.mode != Mode::Secured {
            return refuse(RefusalKind::State, format!("{what} needs a secured unit"));
        }
        Ok(())
    }

    fn require_recovery(&self, what: &str) -> Result<(), Refusal> {
        if self.kind != UnitKind::Recovery {
            return refuse(
                RefusalKind::State,
                format!("{what} is allowed only on recovery units"),
            );
        }
        Ok(())
    }

    fn roster_key(&self, unit: UnitId) -> Result<(&RosterEntry, Vec<u8>), Refusal> {
        let e = self
            .roster
            .iter()
            .find(|e| e.unit == unit)
            .ok_or_else(|| Refusal {
                kind: RefusalKind::Roster,
                message: format!("unit {unit} is not on this unit's signed roster"),
            })?;
        let k = b64("roster identity key", &e.identity_key)?;
        Ok((e, k))
    }

    /// Verifies a response signed by a roster member and returns its body.
    fn roster_response(
        &self,
        r: &SignedResponse,
        p: &dyn CryptoProvider,
    ) -> Result<ResponseBody, Refusal> {
        let bytes = b64("response body", &r.body)?;
        let body: ResponseBody = serde_json::from_slice(&bytes)
            .map_err(|e| malformed(format!("the enclosed response is malformed: {e}")))?;
        if body.instance != self.instance {
            return refuse(
                RefusalKind::Roster,
                "the enclosed response comes from another instance",
            );
        }
        let (_, key) = self.roster_key(body.unit)?;
        let sig = b64("response signature", &r.signature)?;
        if !p.sig_verify(SigAlg::Ed25519, &key, &response_message(&bytes), &sig) {
            return refuse(
                RefusalKind::Roster,
                format!(
                    "the enclosed response is not signed by unit {}'s identity key",
                    body.unit
                ),
            );
        }
        Ok(body)
    }

    fn take_importer(&self, id: &[u8; 16]) -> Result<&Importer, Refusal> {
        match &self.importer {
            Some(i) if &i.id == id => Ok(i),
            Some(_) => refuse(
                RefusalKind::State,
                "the parts are sealed to an importer key this unit no longer holds (a newer one was generated); load again",
            ),
            None => refuse(
                RefusalKind::State,
                "the unit holds no importer key; generate one (gen_importer) and seal the parts to it",
            ),
        }
    }

    fn new_must_be_empty(&self) -> Result<(), Refusal> {
        if !matches!(self.new, NewRegister::Empty) {
            return refuse(
                RefusalKind::State,
                "the new master key register is not empty: commit and finalize it, or clear it (cryptounit-mk-clrnew)",
            );
        }
        Ok(())
    }

    /// Puts a delivered key into the new register (uncommitted) and consumes the importer;
    /// refuses a key equal to the current one.
    fn load_new(&mut self, reg: Register, equal_current: &str) -> Result<Option<Output>, Refusal> {
        if self.current.as_ref().is_some_and(|c| c.vp == reg.vp) {
            return refuse(RefusalKind::State, equal_current);
        }
        self.new = NewRegister::Uncommitted(reg);
        self.importer = None;
        Ok(None)
    }

    fn apply(&mut self, p: &dyn CryptoProvider, cmd: &Cmd) -> Result<Option<Output>, Refusal> {
        match cmd {
            Cmd::AdminAdd {
                name,
                alg,
                public_key,
                pop,
            } => {
                let n = name.trim();
                if n.is_empty()
                    || n.chars().count() > MAX_ADMIN_NAME
                    || n.chars().any(char::is_control)
                {
                    return Err(malformed(format!(
                        "administrator name must be 1 to {MAX_ADMIN_NAME} printable characters"
                    )));
                }
                let alg = SigAlg::parse(alg).ok_or_else(|| {
                    malformed(format!(
                        "unknown administrator key algorithm '{alg}' (ed25519, ecdsa-p256-sha256, ecdsa-p521-sha512)"
                    ))
                })?;
                let pk = b64("public_key", public_key)?;
                let pop = b64("pop", pop)?;
                if !p.sig_verify(
                    alg,
                    &pk,
                    &pop_message(self.instance, self.id, n, alg, &pk),
                    &pop,
                ) {
                    return refuse(
                        RefusalKind::Signatures,
                        "the proof of possession does not verify with the administrator's public key",
                    );
                }
                let ski = ski_of(p, alg, &pk);
                if self.admins.iter().any(|a| a.ski == ski) {
                    return refuse(
                        RefusalKind::State,
                        format!("administrator {} is already installed", hex::encode(ski)),
                    );
                }
                if self.admins.len() >= MAX_ADMINS {
                    return refuse(
                        RefusalKind::State,
                        format!("a unit holds at most {MAX_ADMINS} administrators"),
                    );
                }
                self.admins.push(Admin {
                    ski,
                    name: n.to_string(),
                    alg,
                    public_key: pk,
                });
                Ok(None)
            }
            Cmd::AdminRemove { ski } => {
                let ski = hex32("ski", ski)?;
                let Some(pos) = self.admins.iter().position(|a| a.ski == ski) else {
                    return refuse(
                        RefusalKind::State,
                        format!("administrator {} is not installed", hex::encode(ski)),
                    );
                };
                if self.mode == Mode::Secured
                    && self.admins.len() - 1 < usize::from(self.sign.max(self.revoke))
                {
                    return refuse(
                        RefusalKind::State,
                        format!(
                            "removing it would leave {} administrator(s), fewer than the thresholds {}/{}; lower the thresholds first",
                            self.admins.len() - 1,
                            self.sign,
                            self.revoke
                        ),
                    );
                }
                self.admins.remove(pos);
                Ok(None)
            }
            Cmd::SetThresholds { sign, revoke } => {
                if !(1..=MAX_ADMINS as u8).contains(sign)
                    || !(1..=MAX_ADMINS as u8).contains(revoke)
                {
                    return Err(malformed(format!(
                        "thresholds must be between 1 and {MAX_ADMINS}"
                    )));
                }
                if self.admins.len() < usize::from(*sign.max(revoke)) {
                    return refuse(
                        RefusalKind::State,
                        format!(
                            "thresholds {sign}/{revoke} need at least {} administrators; {} installed",
                            sign.max(revoke),
                            self.admins.len()
                        ),
                    );
                }
                self.sign = *sign;
                self.revoke = *revoke;
                self.mode = Mode::Secured;
                Ok(None)
            }
            Cmd::SetRoster { units } => {
                if units.is_empty() || units.len() > MAX_ROSTER {
                    return Err(malformed(format!("a roster lists 1 to {MAX_ROSTER} units")));
                }
                for (i, e) in units.iter().enumerate() {
                    if units[..i].iter().any(|o| o.unit == e.unit) {
                        return Err(malformed(format!("unit {} is listed twice", e.unit)));
                    }
                    let k = b64("identity_key", &e.identity_key)?;
                    if k.len() != 32 {
                        return Err(malformed("identity keys are 32-byte Ed25519 public keys"));
                    }
                    if e.unit == self.id && (k != self.identity_public || e.kind != self.kind) {
                        return refuse(RefusalKind::Roster, "the roster's entry for this unit does not match its identity key or kind");
                    }
                }
                if !units.iter().any(|e| e.unit == self.id) {
                    return refuse(RefusalKind::Roster, "the roster must list this unit");
                }
                self.roster = units.clone();
                Ok(None)
            }
            Cmd::GenImporter => {
                self.require_secured("gen_importer")?;
                let (private, public) = p.hpke_generate().map_err(crypto)?;
                let mut id = [0u8; 16];
                p.fill_random(&mut id).map_err(crypto)?;
                self.importer = Some(Importer {
                    id,
                    private,
                    public,
                });
                let i = self.importer.as_ref().ok_or_else(|| state("importer"))?;
                Ok(Some(Output::Importer {
                    importer: hex::encode(i.id),
                    public_key: B64.encode(&i.public),
                    status: Box::new(self.status()),
                }))
            }
            Cmd::LoadNew { importer, parts } => {
                self.require_secured("loading a master key")?;
                self.new_must_be_empty()?;
                let id = hex16("importer", importer)?;
                let imp = self.take_importer(&id)?;
                if !(MIN_PARTS..=MAX_PARTS).contains(&parts.len()) {
                    return Err(malformed(format!(
                        "a master key is loaded from {MIN_PARTS} or {MAX_PARTS} key parts; {} given",
                        parts.len()
                    )));
                }
                let info = part_info(self.instance, self.id, &id);
                let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
                let mut part_vps: Vec<Vp> = Vec::new();
                for (i, sealed) in parts.iter().enumerate() {
                    let ct = b64("part", sealed)?;
                    let part = p.hpke_open(&imp.private, &info, b"", &ct).map_err(|_| Refusal {
                        kind: RefusalKind::Malformed,
                        message: format!("key part {} cannot be opened with this unit's importer key (sealed to another unit or importer, or altered)", i + 1),
                    })?;
                    let part: &[u8; MASTER_KEY_LEN] = part.as_slice().try_into().map_err(|_| {
                        malformed(format!("key part {} is not {MASTER_KEY_LEN} bytes", i + 1))
                    })?;
                    if part.iter().all(|b| *b == 0) {
                        return Err(malformed(format!("key part {} is all zeros", i + 1)));
                    }
                    let pv = part_vp_of(p, part).map_err(crypto)?;
                    if part_vps.contains(&pv) {
                        return Err(malformed(format!(
                            "key part {} is a duplicate of another part",
                            i + 1
                        )));
                    }
                    part_vps.push(pv);
                    for (k, b) in key.iter_mut().zip(part.iter()) {
                        *k ^= b;
                    }
                }
                if key.iter().all(|b| *b == 0) {
                    return Err(malformed("the parts combine to an all-zero key"));
                }
                let reg = Register::new(p, MasterKey::from_bytes(*key)).map_err(crypto)?;
                self.load_new(
                    reg,
                    "the parts combine to the current master key; at least one part must be new",
                )
            }
            Cmd::ImportTransfer { transfer } => {
                self.require_secured("importing a master key")?;
                self.new_must_be_empty()?;
                let body = self.roster_response(transfer, p)?;
                let (source, _) = self.roster_key(body.unit)?;
                if source.kind != UnitKind::Recovery {
                    return refuse(
                        RefusalKind::Roster,
                        format!("unit {} is not a recovery unit of the roster", body.unit),
                    );
                }
                let Output::Transfer {
                    target,
                    importer,
                    vp,
                    sealed,
                    ..
                } = &body.output
                else {
                    return Err(malformed("the enclosed response is not a transfer"));
                };
                if *target != self.id {
                    return refuse(
                        RefusalKind::Roster,
                        format!("the transfer is addressed to unit {target}, not to this unit"),
                    );
                }
                let id = hex16("importer", importer)?;
                let imp = self.take_importer(&id)?;
                let vp = Vp(hex32("vp", vp)?);
                let ct = b64("sealed", sealed)?;
                let key = p
                    .hpke_open(
                        &imp.private,
                        &transfer_info(self.instance, self.id, &id),
                        &transfer_aad(body.unit, &vp),
                        &ct,
                    )
                    .map_err(|_| Refusal {
                        kind: RefusalKind::Roster,
                        message: "the transfer cannot be opened with this unit's importer key"
                            .into(),
                    })?;
                let key: [u8; MASTER_KEY_LEN] = key
                    .as_slice()
                    .try_into()
                    .map_err(|_| malformed("the transferred key has the wrong length"))?;
                let reg = Register::new(p, MasterKey::from_bytes(key)).map_err(crypto)?;
                if reg.vp != vp {
                    return refuse(
                        RefusalKind::Roster,
                        "the transferred key does not match its verification pattern",
                    );
                }
                self.load_new(reg, "the transferred key equals the current master key")
            }
            Cmd::Commit { vp } => {
                self.require_secured("commit")?;
                let NewRegister::Uncommitted(r) = &self.new else {
                    return refuse(
                        RefusalKind::State,
                        "the new register is not full and uncommitted",
                    );
                };
                self.expect_vp(vp, r.vp, "new register")?;
                if let NewRegister::Uncommitted(r) = std::mem::take(&mut self.new) {
                    self.new = NewRegister::Committed(r);
                }
                Ok(None)
            }
            Cmd::BeginRotation { vp } => {
                self.require_secured("rotation")?;
                let NewRegister::Committed(r) = &self.new else {
                    return refuse(RefusalKind::State, "the new register is not committed");
                };
                self.expect_vp(vp, r.vp, "new register")?;
                if self.current.is_none() {
                    return refuse(RefusalKind::State, "the current register is empty: there is nothing to rotate from (use cryptounit-mk-setimm)");
                }
                self.rotating = true;
                Ok(None)
            }
            Cmd::Finalize { vp } => {
                self.require_secured("finalize")?;
                let NewRegister::Committed(r) = &self.new else {
                    return refuse(RefusalKind::State, "the new register is not committed");
                };
                self.expect_vp(vp, r.vp, "new register")?;
                if let NewRegister::Committed(r) = std::mem::take(&mut self.new) {
                    self.current = Some(r);
                }
                self.rotating = false;
                Ok(None)
            }
            Cmd::ClearNew => {
                self.require_secured("clear new")?;
                if matches!(self.new, NewRegister::Empty) {
                    return refuse(RefusalKind::State, "the new register is already empty");
                }
                if self.rotating {
                    return refuse(RefusalKind::State, "a rotation is in progress: blobs may already be sealed under the new key; finish it (cryptounit-mk-rotate, then cryptounit-mk-setimm)");
                }
                self.new = NewRegister::Empty;
                Ok(None)
            }
            Cmd::ClearCurrent => {
                self.require_secured("clear current")?;
                if self.current.is_none() {
                    return refuse(RefusalKind::State, "the current register is already empty");
                }
                if self.rotating {
                    return refuse(
                        RefusalKind::State,
                        "a rotation is in progress; finish it first",
                    );
                }
                self.current = None;
                Ok(None)
            }
            Cmd::Zeroize => {
                self.mode = Mode::Imprint;
                self.admins.clear();
                self.sign = 0;
                self.revoke = 0;
                self.current = None;
                self.new = NewRegister::Empty;
                self.rotating = false;
                self.importer = None;
                self.roster.clear();
                self.epoch += 1;
                self.dev = false;
                Ok(None)
            }
            Cmd::GenRandom => {
                self.require_secured("gen_random")?;
                self.require_recovery("generating a random master key")?;
                let mut k = Zeroizing::new([0u8; MASTER_KEY_LEN]);
                p.fill_random(k.as_mut()).map_err(crypto)?;
                let reg = Register::new(p, MasterKey::from_bytes(*k)).map_err(crypto)?;
                if self.current.is_none() {
                    self.current = Some(reg);
                } else {
                    self.new_must_be_empty()?;
                    self.new = NewRegister::Uncommitted(reg);
                }
                Ok(None)
            }
            Cmd::Export { register, target } => {
                self.require_secured("export")?;
                self.require_recovery("exporting a master key")?;
                let body = self.roster_response(target, p)?;
                if body.unit == self.id {
                    return refuse(RefusalKind::Roster, "a unit does not export to itself");
                }
                let Output::Importer {
                    importer,
                    public_key,
                    ..
                } = &body.output
                else {
                    return Err(malformed("the enclosed response is not an importer key"));
                };
                let id = hex16("importer", importer)?;
                let pk = b64("public_key", public_key)?;
                let reg = match register {
                    Which::Current => self.current.as_ref(),
                    Which::New => match &self.new {
                        NewRegister::Empty => None,
                        NewRegister::Uncommitted(r) | NewRegister::Committed(r) => Some(r),
                    },
                }
                .ok_or_else(|| state("the register to export is empty"))?;
                let sealed = p
                    .hpke_seal(
                        &pk,
                        &transfer_info(self.instance, body.unit, &id),
                        &transfer_aad(self.id, &reg.vp),
                        reg.key.expose(),
                    )
                    .map_err(|_| {
                        malformed("the target's importer key is not a valid X25519 public key")
                    })?;
                Ok(Some(Output::Transfer {
                    target: body.unit,
                    importer: hex::encode(id),
                    register: *register,
                    vp: reg.vp.to_hex(),
                    sealed: B64.encode(sealed),
                }))
            }
        }
    }
}

/// Verifies a unit's response against its identity key and decodes it.
pub fn verify_response(
    p: &dyn CryptoProvider,
    identity_key: &[u8],
    r: &SignedResponse,
) -> Result<ResponseBody, String> {
    let bytes = B64
        .decode(r.body.trim())
        .map_err(|_| "the response body is not base64".to_string())?;
    let sig = B64
        .decode(r.signature.trim())
        .map_err(|_| "the response signature is not base64".to_string())?;
    if !p.sig_verify(
        SigAlg::Ed25519,
        identity_key,
        &response_message(&bytes),
        &sig,
    ) {
        return Err("the response is not signed by the unit's identity key".into());
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("the response body is malformed: {e}"))
}

// ---------------------------------------------------------------------------------------
// Persistence (the node seals these bytes under its unit-seal key).

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersistedAdmin {
    name: String,
    alg: String,
    public_key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersistedUnit {
    format: String,
    id: UnitId,
    instance: InstanceId,
    kind: UnitKind,
    epoch: u64,
    ctr: u64,
    mode: Mode,
    admins: Vec<PersistedAdmin>,
    sign: u8,
    revoke: u8,
    current: Option<Zeroizing<String>>,
    new: Option<Zeroizing<String>>,
    new_committed: bool,
    rotating: bool,
    importer: Option<(String, Zeroizing<String>, String)>,
    roster: Vec<RosterEntry>,
    identity: Zeroizing<String>,
    audit_head: String,
    dev: bool,
}

const PERSIST_FORMAT: &str = "strongroom-unit-state/2";

impl UnitState {
    /// The state as bytes (JSON, secrets base64) for the node to seal. Zeroized on drop.
    pub fn to_persisted(&self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let sec = |k: &MasterKey| Zeroizing::new(B64.encode(k.expose()));
        let (new, new_committed) = match &self.new {
            NewRegister::Empty => (None, false),
            NewRegister::Uncommitted(r) => (Some(sec(&r.key)), false),
            NewRegister::Committed(r) => (Some(sec(&r.key)), true),
        };
        let pu = PersistedUnit {
            format: PERSIST_FORMAT.into(),
            id: self.id,
            instance: self.instance,
            kind: self.kind,
            epoch: self.epoch,
            ctr: self.ctr,
            mode: self.mode,
            admins: self
                .admins
                .iter()
                .map(|a| PersistedAdmin {
                    name: a.name.clone(),
                    alg: a.alg.name().into(),
                    public_key: B64.encode(&a.public_key),
                })
                .collect(),
            sign: self.sign,
            revoke: self.revoke,
            current: self.current.as_ref().map(|r| sec(&r.key)),
            new,
            new_committed,
            rotating: self.rotating,
            importer: self.importer.as_ref().map(|i| {
                (
                    hex::encode(i.id),
                    Zeroizing::new(B64.encode(&i.private)),
                    B64.encode(&i.public),
                )
            }),
            roster: self.roster.clone(),
            identity: Zeroizing::new(B64.encode(&*self.identity)),
            audit_head: hex::encode(self.audit_head),
            dev: self.dev,
        };
        serde_json::to_vec(&pu)
            .map(Zeroizing::new)
            .map_err(|_| EngineError::Crypto)
    }

    /// Restores a state from [`UnitState::to_persisted`] bytes.
    pub fn from_persisted(p: &dyn CryptoProvider, bytes: &[u8]) -> Result<Self, String> {
        let pu: PersistedUnit =
            serde_json::from_slice(bytes).map_err(|e| format!("unit state is malformed: {e}"))?;
        if pu.format != PERSIST_FORMAT {
            return Err(format!(
                "unit state format '{}' is not supported",
                pu.format
            ));
        }
        let key = |s: &str| -> Result<MasterKey, String> {
            let v = Zeroizing::new(B64.decode(s).map_err(|_| "bad key encoding".to_string())?);
            let a: [u8; MASTER_KEY_LEN] = v
                .as_slice()
                .try_into()
                .map_err(|_| "bad key length".to_string())?;
            Ok(MasterKey::from_bytes(a))
        };
        let reg = |s: &str| -> Result<Register, String> {
            Register::new(p, key(s)?).map_err(|e| e.to_string())
        };
        let mut admins = Vec::new();
        for a in &pu.admins {
            let alg = SigAlg::parse(&a.alg).ok_or("bad admin algorithm")?;
            let pk = B64.decode(&a.public_key).map_err(|_| "bad admin key")?;
            admins.push(Admin {
                ski: ski_of(p, alg, &pk),
                name: a.name.clone(),
                alg,
                public_key: pk,
            });
        }
        let identity = Zeroizing::new(
            B64.decode(pu.identity.as_bytes())
                .map_err(|_| "bad identity key")?,
        );
        let identity_public = p
            .sig_public_key(SigAlg::Ed25519, &identity)
            .map_err(|_| "bad identity key")?;
        let importer = match &pu.importer {
            None => None,
            Some((id, private, public)) => Some(Importer {
                id: hex16("importer", id).map_err(|e| e.message)?,
                private: Zeroizing::new(
                    B64.decode(private.as_bytes())
                        .map_err(|_| "bad importer key")?,
                ),
                public: B64.decode(public).map_err(|_| "bad importer key")?,
            }),
        };
        Ok(UnitState {
            id: pu.id,
            instance: pu.instance,
            kind: pu.kind,
            epoch: pu.epoch,
            ctr: pu.ctr,
            mode: pu.mode,
            admins,
            sign: pu.sign,
            revoke: pu.revoke,
            current: pu.current.as_deref().map(|s| reg(s)).transpose()?,
            new: match (&pu.new, pu.new_committed) {
                (None, _) => NewRegister::Empty,
                (Some(s), false) => NewRegister::Uncommitted(reg(s)?),
                (Some(s), true) => NewRegister::Committed(reg(s)?),
            },
            rotating: pu.rotating,
            importer,
            roster: pu.roster,
            identity,
            identity_public,
            audit_head: hex32("audit_head", &pu.audit_head).map_err(|e| e.message)?,
            dev: pu.dev,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Workstation side: building and signing commands (used by the CLI and the tests).

/// An administrator's private key, ready to sign.
pub struct Signer<'a> {
    /// Algorithm.
    pub alg: SigAlg,
    /// PKCS#8 private key.
    pub pkcs8: &'a [u8],
    /// SKI of its public key.
    pub ski: [u8; 32],
}

/// Serialises `body` and signs it with each of `signers`.
pub fn sign_command(
    p: &dyn CryptoProvider,
    body: &CommandBody,
    signers: &[Signer<'_>],
) -> Result<SignedCommand, EngineError> {
    let bytes = serde_json::to_vec(body).map_err(|_| EngineError::Crypto)?;
    let msg = command_message(&bytes);
    let mut signatures = Vec::with_capacity(signers.len());
    for s in signers {
        let sig = p.sig_sign(s.alg, s.pkcs8, &msg)?;
        signatures.push(CommandSignature {
            ski: hex::encode(s.ski),
            signature: B64.encode(sig),
        });
    }
    Ok(SignedCommand {
        body: B64.encode(bytes),
        signatures,
    })
}

/// The `admin_add` command for a key, with its proof of possession.
pub fn admin_add_command(
    p: &dyn CryptoProvider,
    instance: InstanceId,
    unit: UnitId,
    name: &str,
    alg: SigAlg,
    pkcs8: &[u8],
) -> Result<Cmd, EngineError> {
    let pk = p.sig_public_key(alg, pkcs8)?;
    let pop = p.sig_sign(
        alg,
        pkcs8,
        &pop_message(instance, unit, name.trim(), alg, &pk),
    )?;
    Ok(Cmd::AdminAdd {
        name: name.trim().to_string(),
        alg: alg.name().into(),
        public_key: B64.encode(&pk),
        pop: B64.encode(pop),
    })
}

/// Seals one key part to a unit's importer key (for `load_new`).
pub fn seal_part(
    p: &dyn CryptoProvider,
    instance: InstanceId,
    unit: UnitId,
    importer: &[u8; 16],
    importer_public: &[u8],
    part: &[u8; MASTER_KEY_LEN],
) -> Result<String, EngineError> {
    let sealed = p.hpke_seal(
        importer_public,
        &part_info(instance, unit, importer),
        b"",
        part,
    )?;
    Ok(B64.encode(sealed))
}
