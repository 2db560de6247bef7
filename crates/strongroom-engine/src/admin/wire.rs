//! The wire format of administrative commands and responses (JSON; binary fields base64,
//! identifiers and digests hex): what the workstation sends and the unit answers.

use super::*;

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
    /// Trust a card zone (or replace the CA keys of a trusted zone of that name): key
    /// parts are then accepted from cards its CAs certified. The first zone gives the
    /// unit its key-transport key.
    TrustZone {
        /// The zone.
        zone: Zone,
    },
    /// Stop trusting a card zone.
    ForgetZone {
        /// The zone's name.
        name: String,
    },
    /// Create a fresh importer key for one load (`GEN_DOM_IMPORTER`).
    GenImporter,
    /// Load 2–3 key parts sealed to the importer key into the new register (`IMPORT_WK`).
    LoadNew {
        /// The importer id (hex) the parts are sealed to.
        importer: String,
        /// HPKE-sealed parts from key part files (base64).
        parts: Vec<String>,
        /// Parts delivered by cards of a trusted zone.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        card_parts: Vec<CardPart>,
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
            Cmd::TrustZone { .. } => "trust_zone",
            Cmd::ForgetZone { .. } => "forget_zone",
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
    /// The card zones the unit trusts.
    #[serde(default)]
    pub zones: Vec<Zone>,
    /// The key-transport public key that cards wrap parts to (RSA SPKI DER, base64), once
    /// the unit trusts a zone.
    #[serde(default)]
    pub transport_key: Option<String>,
}
