//! Smart cards and USB tokens as the administrators' cards, through their PKCS#11 module
//! (OpenSC, SmartCard-HSM, YubiHSM, SoftHSM2 in tests). An EP11 card holds an
//! administrator's signature key, generated on the card: sensitive, never extractable, and
//! used only by the card to sign unit commands. The workstation holds the card's public key
//! and the signatures it returns, never the private key.
//!
//! Cards are named by RFC 7512 `pkcs11:` URIs (`pkcs11:token=alice-card`). A PIN is asked
//! once per card session; automation gives it in the passwords file as
//! `<token label>.card: <PIN>`, never on the command line.

pub mod cli;
mod copy;
pub(crate) mod uri;
mod zone;

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use strongroom_engine::admin::{ecdsa_raw_to_der, ski_of, CommandSigner};
use strongroom_engine::{CryptoProvider, EngineError, SigAlg};
use zeroize::Zeroizing;

use crate::error::Error;
pub use uri::CardUri;

/// DER of the P-256 curve's OID, as `CKA_EC_PARAMS` holds it.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The label prefix of a signature key on a card: `strongroom-sigkey:<administrator>`.
pub const SIGKEY_LABEL: &str = "strongroom-sigkey:";

/// Where the card's PKCS#11 module comes from: `--pkcs11-module`, else the URI's
/// `module-path`, else `STRONGROOM_PKCS11_MODULE` (read by clap into the option).
pub fn module_path(option: Option<&Path>, uri: &CardUri) -> Result<PathBuf, Error> {
    option
        .map(Path::to_path_buf)
        .or_else(|| uri.module_path.clone())
        .ok_or_else(|| {
            Error::usage(format!(
                "no PKCS#11 module for {uri}: give --pkcs11-module (for example /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so) or module-path in the URI"
            ))
        })
}

/// What a PKCS#11 error means to the person holding the card.
fn card_error(uri: &CardUri, what: &str, e: cryptoki::error::Error) -> Error {
    let reason = match &e {
        cryptoki::error::Error::Pkcs11(rv, _) => match rv {
            RvError::PinIncorrect => "the PIN is wrong (the card counts the attempts)".to_string(),
            RvError::PinLocked => "the PIN is locked: unblock it with the security officer's PIN".to_string(),
            RvError::PinLenRange | RvError::PinInvalid => "the PIN does not fit the card's rules".to_string(),
            RvError::DeviceRemoved | RvError::TokenNotPresent | RvError::SessionHandleInvalid | RvError::SessionClosed => {
                "the card was removed".to_string()
            }
            RvError::DeviceError | RvError::DeviceMemory => "the card reader or the card failed".to_string(),
            RvError::MechanismInvalid | RvError::FunctionNotSupported => {
                "the card does not support the mechanism this needs (docs/runbooks/ceremony-smart-cards.md lists what cards need)".to_string()
            }
            other => format!("the card answered {other}"),
        },
        cryptoki::error::Error::LibraryLoading(_) => "its PKCS#11 module cannot be loaded".to_string(),
        other => other.to_string(),
    };
    Error::other(format!("card {uri}: {what}: {reason}"))
}

/// The module at `path`, loaded and initialised once per process: several cards of one
/// module share it (a module is initialised once, and finalised when the last card goes).
fn context(path: &Path) -> cryptoki::error::Result<Pkcs11> {
    static MODULES: std::sync::Mutex<Vec<(PathBuf, Pkcs11)>> = std::sync::Mutex::new(Vec::new());
    let mut modules = MODULES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, ctx)) = modules.iter().find(|(p, _)| p == path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path)?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    modules.push((path.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

/// An inserted card, as its reader reports it (no PIN needed).
pub struct Inserted {
    /// Its label.
    pub label: String,
    /// Its manufacturer.
    pub manufacturer: String,
    /// Its model.
    pub model: String,
    /// Its serial number.
    pub serial: String,
}

/// The cards inserted in the readers of `module`.
pub fn inserted(module: &Path) -> Result<Vec<Inserted>, Error> {
    let what = || CardUri::any(module);
    let ctx = context(module).map_err(|e| card_error(&what(), "open", e))?;
    let mut cards = Vec::new();
    for slot in ctx
        .get_slots_with_token()
        .map_err(|e| card_error(&what(), "list the readers", e))?
    {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| card_error(&what(), "read a card", e))?;
        if !info.token_initialized() {
            // An empty slot of a software token, or a card its tool never initialised.
            continue;
        }
        cards.push(Inserted {
            label: info.label().trim_end().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            model: info.model().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
        });
    }
    Ok(cards)
}

/// Who logs in to a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The card's holder (the user PIN).
    User,
    /// The card's security officer (the SO PIN): marks keys trusted.
    Officer,
}

impl Role {
    fn user_type(self) -> UserType {
        match self {
            Role::User => UserType::User,
            Role::Officer => UserType::So,
        }
    }
}

/// A card with a logged-in session: one "insertion".
pub struct Card {
    uri: CardUri,
    label: String,
    serial: String,
    session: Session,
    // Dropped after the session, which it outlives.
    _ctx: Pkcs11,
}

impl Card {
    /// Opens the one token that `uri` names in `module`, and logs the user in with the PIN
    /// `pin` gives (asked only once the card is found).
    pub fn open(
        module: &Path,
        uri: &CardUri,
        pin: impl FnOnce() -> Result<Zeroizing<String>, Error>,
    ) -> Result<Card, Error> {
        Self::open_as(module, uri, Role::User, pin)
    }

    /// Opens the card as [`Card::open`] does, logged in as `role`.
    pub fn open_as(
        module: &Path,
        uri: &CardUri,
        role: Role,
        pin: impl FnOnce() -> Result<Zeroizing<String>, Error>,
    ) -> Result<Card, Error> {
        let card = Self::open_public(module, uri)?;
        card.login(role, pin)?;
        Ok(card)
    }

    /// Opens the card without logging in: its public objects only.
    pub fn open_public(module: &Path, uri: &CardUri) -> Result<Card, Error> {
        let ctx = context(module).map_err(|e| card_error(uri, "open", e))?;
        let mut found = Vec::new();
        for slot in ctx
            .get_slots_with_token()
            .map_err(|e| card_error(uri, "list the readers", e))?
        {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| card_error(uri, "read the card", e))?;
            if uri.matches(
                info.label(),
                info.manufacturer_id(),
                info.model(),
                info.serial_number(),
            ) {
                found.push((slot, info));
            }
        }
        let (slot, info) = match found.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::other(format!(
                    "card {uri}: no inserted card matches (is it in the reader? `strongroom card list` shows the cards)"
                )))
            }
            _ => {
                return Err(Error::usage(format!(
                    "card {uri}: {} cards match; name one with token= or serial=",
                    found.len()
                )))
            }
        };
        let session = ctx
            .open_rw_session(slot)
            .map_err(|e| card_error(uri, "open a session", e))?;
        Ok(Card {
            uri: uri.clone(),
            label: info.label().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
            session,
            _ctx: ctx,
        })
    }

    /// Logs `role` in with the PIN `pin` gives, after logging out whoever was logged in
    /// (a card has one login state per application).
    pub fn login(
        &self,
        role: Role,
        pin: impl FnOnce() -> Result<Zeroizing<String>, Error>,
    ) -> Result<(), Error> {
        // One insertion, one PIN: a card this process already logged its user in to (for
        // signing and for a key part in the same command) is not asked again.
        if role == Role::User
            && self.session.get_session_info().is_ok_and(|i| {
                matches!(
                    i.session_state(),
                    cryptoki::session::SessionState::RoUser
                        | cryptoki::session::SessionState::RwUser
                )
            })
        {
            return Ok(());
        }
        let pin = pin()?;
        match self
            .session
            .login(role.user_type(), Some(&AuthPin::from(pin.to_string())))
        {
            Ok(()) => Ok(()),
            // Another command of this process already logged this card's user in.
            Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _))
                if role == Role::User =>
            {
                Ok(())
            }
            Err(cryptoki::error::Error::Pkcs11(RvError::UserAnotherAlreadyLoggedIn, _)) => {
                let _ = self.session.logout();
                self.session
                    .login(role.user_type(), Some(&AuthPin::from(pin.to_string())))
                    .map_err(|e| card_error(&self.uri, "log in", e))
            }
            Err(e) => Err(card_error(
                &self.uri,
                match role {
                    Role::User => "log in",
                    Role::Officer => "log the security officer in",
                },
                e,
            )),
        }
    }

    /// Logs out (best effort: a removed card has no login left).
    pub fn logout(&self) {
        let _ = self.session.logout();
    }

    /// The card's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The card's serial number.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The URI the card was opened with.
    pub fn uri(&self) -> &CardUri {
        &self.uri
    }

    /// Generates an administrator's P-256 signature key on the card: the private key is a
    /// token object, private and sensitive, and signs only. On a card of a zone it is
    /// `copyable`: it leaves the card only wrapped under a key the card's security officer
    /// trusted, for a card copy within the zone. Otherwise it never leaves the card.
    pub fn generate_sigkey(
        &self,
        p: &dyn CryptoProvider,
        name: &str,
        copyable: bool,
    ) -> Result<CardKey, Error> {
        if name.is_empty() || name.chars().count() > 30 || name.chars().any(char::is_control) {
            return Err(Error::usage(
                "an administrator's name has 1 to 30 printable characters",
            ));
        }
        let label = format!("{SIGKEY_LABEL}{name}");
        if self.find(&label, ObjectClass::PRIVATE_KEY)?.is_some() {
            return Err(Error::other(format!(
                "card {}: it already holds the signature key of {name}",
                self.uri
            )));
        }
        let mut id = [0u8; 16];
        p.fill_random(&mut id)
            .map_err(|_| Error::other("random generator failed"))?;
        self.generate_p256(&label, &id, copyable)?;
        self.sigkey(p, name)?.ok_or_else(|| {
            Error::other(format!(
                "card {}: the key it generated cannot be found",
                self.uri
            ))
        })
    }

    /// The signature key of administrator `name` on the card, if it holds one.
    pub fn sigkey(&self, p: &dyn CryptoProvider, name: &str) -> Result<Option<CardKey>, Error> {
        let label = format!("{SIGKEY_LABEL}{name}");
        let (Some(private), Some(public)) = (
            self.find(&label, ObjectClass::PRIVATE_KEY)?,
            self.find(&label, ObjectClass::PUBLIC_KEY)?,
        ) else {
            return Ok(None);
        };
        let point = self
            .session
            .get_attributes(public, &[AttributeType::EcPoint])
            .map_err(|e| card_error(&self.uri, "read the public key", e))?;
        let Some(Attribute::EcPoint(der)) = point.into_iter().next() else {
            return Err(Error::other(format!(
                "card {}: the signature key of {name} has no public point",
                self.uri
            )));
        };
        let public_key = ec_point(&der).ok_or_else(|| {
            Error::other(format!(
                "card {}: the signature key of {name} is not a P-256 key",
                self.uri
            ))
        })?;
        let alg = SigAlg::EcdsaP256Sha256;
        Ok(Some(CardKey {
            name: name.to_string(),
            ski: ski_of(p, alg, &public_key),
            public_key,
            handle: private,
        }))
    }

    /// The administrators whose signature keys the card holds.
    pub fn sigkey_names(&self) -> Result<Vec<String>, Error> {
        let handles = self
            .session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .map_err(|e| card_error(&self.uri, "list its keys", e))?;
        let mut names = Vec::new();
        for h in handles {
            let attrs = self
                .session
                .get_attributes(h, &[AttributeType::Label])
                .map_err(|e| card_error(&self.uri, "read a key's label", e))?;
            if let Some(Attribute::Label(l)) = attrs.into_iter().next() {
                if let Some(name) = String::from_utf8_lossy(&l).strip_prefix(SIGKEY_LABEL) {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// What the card says of a signature key's protection.
    pub fn protection(&self, key: &CardKey) -> Result<Protection, Error> {
        self.protection_of(key.handle)
    }

    pub(crate) fn protection_of(&self, handle: ObjectHandle) -> Result<Protection, Error> {
        let attrs = self
            .session
            .get_attributes(
                handle,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::WrapWithTrusted,
                ],
            )
            .map_err(|e| card_error(&self.uri, "read the key's attributes", e))?;
        let mut p = Protection {
            sensitive: false,
            extractable: true,
            wrap_with_trusted: false,
        };
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => p.sensitive = v,
                Attribute::Extractable(v) => p.extractable = v,
                Attribute::WrapWithTrusted(v) => p.wrap_with_trusted = v,
                _ => {}
            }
        }
        Ok(p)
    }

    /// Changes the user PIN (the card checks the old one).
    pub fn change_pin(&self, old: &str, new: &str) -> Result<(), Error> {
        self.session
            .set_pin(
                &AuthPin::from(old.to_string()),
                &AuthPin::from(new.to_string()),
            )
            .map_err(|e| card_error(&self.uri, "change the PIN", e))
    }

    /// Signs `msg` with `key` on the card: SHA-256 here, ECDSA on the card.
    fn sign(&self, p: &dyn CryptoProvider, key: &CardKey, msg: &[u8]) -> Result<Vec<u8>, Error> {
        self.sign_with(p, key.handle, msg)
    }

    /// Signs `msg` with the P-256 private key `handle` (DER signature).
    fn sign_with(
        &self,
        p: &dyn CryptoProvider,
        handle: ObjectHandle,
        msg: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let digest = p.sha256(&[msg]);
        let raw = self
            .session
            .sign(&Mechanism::Ecdsa, handle, &digest)
            .map_err(|e| card_error(&self.uri, "sign", e))?;
        ecdsa_raw_to_der(&raw).ok_or_else(|| {
            Error::other(format!(
                "card {}: its signature has an odd length",
                self.uri
            ))
        })
    }

    fn find(&self, label: &str, class: ObjectClass) -> Result<Option<ObjectHandle>, Error> {
        let mut template = vec![
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        if class == ObjectClass::PRIVATE_KEY || class == ObjectClass::PUBLIC_KEY {
            template.push(Attribute::KeyType(KeyType::EC));
        }
        let found = self
            .session
            .find_objects(&template)
            .map_err(|e| card_error(&self.uri, "search its objects", e))?;
        Ok(found.into_iter().next())
    }
}

/// The uncompressed point of a P-256 `CKA_EC_POINT` (DER OCTET STRING, or the raw point
/// that some modules give).
fn ec_point(der: &[u8]) -> Option<Vec<u8>> {
    let point = match der {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        raw if raw.len() == 65 => raw,
        _ => return None,
    };
    (point.first() == Some(&0x04)).then(|| point.to_vec())
}

/// What a card says of a key's protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    /// `CKA_SENSITIVE`: its value cannot be read.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`: it can be wrapped.
    pub extractable: bool,
    /// `CKA_WRAP_WITH_TRUSTED`: only under a key the security officer trusted.
    pub wrap_with_trusted: bool,
}

impl Protection {
    /// Whether no one holding only the user PIN can read the key.
    pub fn safe(&self) -> bool {
        self.sensitive && (!self.extractable || self.wrap_with_trusted)
    }

    /// In words.
    pub fn describe(&self) -> &'static str {
        match (self.safe(), self.extractable) {
            (true, false) => "sensitive, never extractable",
            (true, true) => "sensitive; leaves the card only wrapped for a card of its zone",
            (false, _) => "WARNING: readable from the card",
        }
    }
}

/// An administrator's signature key on a card.
pub struct CardKey {
    /// The administrator's name (from the key's label).
    pub name: String,
    /// The raw public key (uncompressed P-256 point), as units install it.
    pub public_key: Vec<u8>,
    /// Its SKI.
    pub ski: [u8; 32],
    handle: ObjectHandle,
}

/// A card's key that signs commands: the card signs, the workstation never holds the key.
pub struct CardSigner<'a> {
    card: &'a Card,
    key: &'a CardKey,
    failure: std::cell::RefCell<Option<Error>>,
}

impl<'a> CardSigner<'a> {
    /// `key` of `card`, ready to sign.
    pub fn new(card: &'a Card, key: &'a CardKey) -> Self {
        CardSigner {
            card,
            key,
            failure: std::cell::RefCell::new(None),
        }
    }

    /// Why the last signature failed, in the card's terms.
    pub fn take_failure(&self) -> Option<Error> {
        self.failure.borrow_mut().take()
    }
}

impl CommandSigner for CardSigner<'_> {
    fn alg(&self) -> SigAlg {
        SigAlg::EcdsaP256Sha256
    }
    fn ski(&self) -> [u8; 32] {
        self.key.ski
    }
    fn sign(&self, p: &dyn CryptoProvider, msg: &[u8]) -> Result<Vec<u8>, EngineError> {
        self.card.sign(p, self.key, msg).map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            EngineError::Crypto
        })
    }
}

/// A card's PIN: from the passwords file (`<token label>.card: <PIN>`), else asked once.
pub fn pin(passwords: &crate::tke::Passwords, uri: &CardUri) -> Result<Zeroizing<String>, Error> {
    passwords.get(
        &format!("{}.card", uri.token_name()),
        &format!("PIN of card {uri}: "),
    )
}

/// A card's security officer PIN: from the passwords file (`<token label>.card-so: <PIN>`),
/// else asked once.
pub fn officer_pin(
    passwords: &crate::tke::Passwords,
    uri: &CardUri,
) -> Result<Zeroizing<String>, Error> {
    passwords.get(
        &format!("{}.card-so", uri.token_name()),
        &format!("Security officer PIN of card {uri}: "),
    )
}

/// Opens a CA card with both of its PINs: the officer's is checked by the card first, then
/// the user logs in to use the CA key (as the seed's CA cards need both).
pub fn open_ca(
    module: &Path,
    uri: &CardUri,
    passwords: &crate::tke::Passwords,
) -> Result<Card, Error> {
    let card = Card::open_as(module, uri, Role::Officer, || officer_pin(passwords, uri))?;
    card.logout();
    card.login(Role::User, || pin(passwords, uri))?;
    Ok(card)
}
