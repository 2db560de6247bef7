//! The `strongroom tke` command line: its options and subcommands.

use super::*;

#[derive(Args, Debug)]
pub struct TkeArgs {
    #[command(flatten)]
    pub(super) conn: Conn,
    /// The workstation directory: signature key files, key part files, selections and the
    /// pinned identity keys of the units (like IBM's CLOUDTKEFILES).
    #[arg(
        long,
        env = "STRONGROOM_TKE_FILES",
        global = true,
        default_value = "./tke-files"
    )]
    pub(super) files: PathBuf,
    /// A file of passwords for automation, one '<file name>: <password>' per line (for
    /// example 'alice.sigkey: …'). Without it, passwords are asked on the terminal.
    #[arg(long, env = "STRONGROOM_TKE_PASSWORDS", global = true)]
    pub(super) passwords: Option<PathBuf>,
    /// The PKCS#11 module of the administrators' cards (smart cards, USB tokens), for
    /// signature keys named by a `pkcs11:` URI (default: the URI's module-path).
    #[arg(long, env = "STRONGROOM_PKCS11_MODULE", global = true)]
    pub(super) pkcs11_module: Option<PathBuf>,
    /// Print the unit commands this step would send and the signatures each needs, and
    /// change nothing.
    #[arg(long, global = true)]
    pub(super) plan: bool,
    /// Do not ask for confirmation of destructive steps.
    #[arg(long, global = true)]
    pub(super) yes: bool,
    #[command(subcommand)]
    pub(super) cmd: TkeCmd,
}

#[derive(Subcommand, Debug)]
pub(super) enum TkeCmd {
    /// List the signature key files of this workstation.
    Sigkeys,
    /// Create an administrator signature key in a password-protected file, or on a card
    /// (`--card pkcs11:…`, as `strongroom card init`: ECDSA P-256, never extractable).
    #[command(name = "sigkey-add")]
    SigkeyAdd {
        /// The administrator's name (1-30 characters), also the file name.
        #[arg(long)]
        name: String,
        /// Generate the key on this card instead of in a file.
        #[arg(long)]
        card: Option<String>,
        /// ed25519 (default), ecdsa-p256-sha256 or ecdsa-p521-sha512 (as HPCS).
        #[arg(long, default_value = "ed25519")]
        alg: String,
        /// Argon2id memory in MiB (64 to 4096; default 256).
        #[arg(long, default_value_t = files::DEFAULT_M_MIB)]
        kdf_memory_mib: u32,
    },
    /// Delete a signature key file (if it is the only copy of an installed administrator's
    /// key, that administrator can never sign again).
    #[command(name = "sigkey-rm")]
    SigkeyRm { key: String },
    /// Select the signature keys that sign the next commands: numbers or file names, or
    /// cards as `pkcs11:` URIs (every administrator's key the card holds; its PIN is asked
    /// once per command, or read from the passwords file as '<token label>.card: <PIN>').
    #[command(name = "sigkey-sel")]
    SigkeySel {
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// List the master key part files of this workstation.
    Mks,
    /// Create a master key part file: a random 32-byte part, or a value you give. With
    /// --card, the part is generated on a card of a zone instead (AES-256, sensitive; it
    /// leaves the card only wrapped for a unit the card trusts, or for a card of its zone).
    #[command(name = "mk-add")]
    MkAdd {
        /// Generate the part on this card (a pkcs11: URI); --description names it.
        #[arg(long, conflicts_with_all = ["random", "value"])]
        card: Option<String>,
        /// Generate a random part.
        #[arg(long, conflicts_with = "value")]
        random: bool,
        /// The part as 64 hex digits ('-' reads it from standard input).
        #[arg(long)]
        value: Option<String>,
        /// A description (also the file name).
        #[arg(long)]
        description: String,
        /// Argon2id memory in MiB (64 to 4096; default 256).
        #[arg(long, default_value_t = files::DEFAULT_M_MIB)]
        kdf_memory_mib: u32,
    },
    /// Delete a key part file.
    #[command(name = "mk-rm")]
    MkRm { part: String },
    /// List the crypto units of the instance on every endpoint (pins their identity keys).
    Cryptounits,
    /// Add units to the selection that the cryptounit-* commands act on.
    #[command(name = "cryptounit-add")]
    CryptounitAdd {
        /// Unit numbers (from `cryptounits`) or ids.
        units: Vec<String>,
        /// Select every unit of the instance.
        #[arg(long)]
        all: bool,
    },
    /// Remove units from the selection.
    #[command(name = "cryptounit-rm")]
    CryptounitRm { units: Vec<String> },
    /// Show the administrators of the selected units.
    #[command(name = "cryptounit-admins")]
    CryptounitAdmins,
    /// Show the signature and revocation thresholds of the selected units.
    #[command(name = "cryptounit-thrhlds")]
    CryptounitThrhlds,
    /// Show the master key registers (state and verification pattern) of the selected units.
    #[command(name = "cryptounit-mk", alias = "cryptounit-mks")]
    CryptounitMk,
    /// Install an administrator in the selected units: from a signature key file, or from
    /// a card (`pkcs11:` URI) whose signature key signs the proof of possession itself.
    #[command(name = "cryptounit-admin-add")]
    CryptounitAdminAdd {
        /// The signature key file to install (number or file name), or a card's URI.
        sigkey: String,
    },
    /// Remove an administrator (by name or SKI) from the selected units.
    #[command(name = "cryptounit-admin-rm")]
    CryptounitAdminRm { admin: String },
    /// Set the signature and revocation thresholds (1-8); from imprint mode this secures
    /// the units.
    #[command(name = "cryptounit-thrhld-set")]
    CryptounitThrhldSet {
        #[arg(long)]
        signature_threshold: u8,
        #[arg(long)]
        revocation_threshold: u8,
    },
    /// Install the selected units as the instance roster in each of them (the units a
    /// recovery unit may export the master key to).
    #[command(name = "cryptounit-roster-set")]
    CryptounitRosterSet,
    /// Load key parts into the new master key register of the selected units: 2 or 3
    /// parts in all, from key part files and from cards. A card part is wrapped on the
    /// card for each unit and never passes through this workstation in the clear.
    #[command(name = "cryptounit-mk-load")]
    CryptounitMkLoad {
        /// Key part files (numbers or file names).
        #[arg(num_args = 0..=3)]
        parts: Vec<String>,
        /// A key part on a card: pkcs11:token=<label>[;object=<part name>] (repeatable).
        #[arg(long = "card")]
        cards: Vec<String>,
    },
    /// Make the selected units trust a card zone, as its CA card records it (no PIN: the
    /// zone is public). Needs the signature threshold. The first zone gives a unit its
    /// key-transport key, which `cryptounit-card-enroll` puts on part cards.
    #[command(name = "cryptounit-zone-trust")]
    CryptounitZoneTrust {
        /// The zone's CA card (or backup CA card), as a pkcs11: URI.
        #[arg(long)]
        ca: String,
    },
    /// Make the selected units stop trusting a card zone.
    #[command(name = "cryptounit-zone-forget")]
    CryptounitZoneForget { zone: String },
    /// The card's security officer trusts the selected units: their key-transport keys
    /// (from their signed status) are marked trusted on the card, so that its key parts can
    /// be delivered to them. Asks the card's security officer PIN.
    #[command(name = "cryptounit-card-enroll")]
    CryptounitCardEnroll {
        /// The card, as a pkcs11: URI.
        #[arg(long)]
        card: String,
    },
    /// Commit the new master key register of the selected units.
    #[command(name = "cryptounit-mk-commit")]
    CryptounitMkCommit {
        /// The verification pattern you expect (hex); default: the one the units show.
        #[arg(long)]
        vp: Option<String>,
    },
    /// Promote the committed new register to current (initialisation, or the last step of
    /// a rotation; refused while keys are still sealed under the current key).
    #[command(name = "cryptounit-mk-setimm")]
    CryptounitMkSetimm,
    /// Empty the new master key register of the selected units.
    #[command(name = "cryptounit-mk-clrnew")]
    CryptounitMkClrnew,
    /// Empty the current master key register of the selected units.
    #[command(name = "cryptounit-mk-clrcur")]
    CryptounitMkClrcur,
    /// Rotate: re-encrypt the key storage under the committed new master key while the
    /// service keeps serving, then promote it in every selected unit. Safe to run again
    /// after an interruption.
    #[command(name = "cryptounit-mk-rotate")]
    CryptounitMkRotate {
        /// Key blobs re-encrypted per request.
        #[arg(long, default_value_t = 2000)]
        batch: u32,
    },
    /// Compare administrators, thresholds, modes and registers of the selected units.
    #[command(name = "cryptounit-compare")]
    CryptounitCompare,
    /// Zeroize the selected units: administrators, thresholds and registers erased. Refused
    /// while the instance's keystore holds keys (deleted keys that can still be restored
    /// count), unless --force: keys whose master key no unit holds any more are lost.
    #[command(name = "cryptounit-zeroize")]
    CryptounitZeroize {
        /// Zeroize even though the instance's keystore holds keys.
        #[arg(long)]
        force: bool,
    },
    /// Initialise the selected units (all in imprint mode, at least one recovery unit):
    /// install the selected signature keys as administrators, set the thresholds and the
    /// roster, generate a random master key inside a recovery unit and transfer it sealed to
    /// every other unit.
    ///
    /// As IBM's TKE does, it asks on a terminal for what is missing: administrators to
    /// create when no signature key is selected, and the thresholds. Scripts pass
    /// --new-admins (passwords from the passwords file) and both thresholds.
    #[command(name = "auto-init")]
    AutoInit {
        /// Signatures needed for most commands (asked on a terminal when absent).
        #[arg(long)]
        signature_threshold: Option<u8>,
        /// Signatures needed to remove an administrator (asked on a terminal when absent).
        #[arg(long)]
        revocation_threshold: Option<u8>,
        /// Administrators whose signature keys are created in the flow (comma-separated
        /// names) and installed with the selected ones.
        #[arg(long, value_delimiter = ',')]
        new_admins: Vec<String>,
    },
    /// Rotate with a random master key generated inside a recovery unit.
    #[command(name = "auto-mk-rotate")]
    AutoMkRotate {
        #[arg(long, default_value_t = 2000)]
        batch: u32,
    },
    /// Copy the current master key of a recovery unit into the selected units whose
    /// current register is empty (after zeroize or replacement).
    #[command(name = "auto-mk-recover", alias = "auto-recover")]
    AutoMkRecover,
}
