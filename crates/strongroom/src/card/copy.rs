//! Card copy within a zone: key parts and copyable signature keys move card to card,
//! encrypted, and are never readable in between.
//!
//! 1. The source card's security officer makes a one-time AES-256 transfer key on the
//!    source card and marks it trusted (only an officer can): the only key the source's
//!    parts and signature keys can be wrapped under.
//! 2. The source's user wraps the transfer key under the target card's unwrap key (from the
//!    target's zone certificate, which must chain to the source's zone), wraps each object
//!    under the transfer key, and destroys the transfer key.
//! 3. The target unwraps the transfer key with its unwrap key, which never leaves it, and
//!    then each object, with the same protection as on the source.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use strongroom_engine::admin::verify_card_certificate;
use strongroom_engine::der::rsa_spki_parts;
use strongroom_engine::CryptoProvider;

use super::zone::{oaep, part_template, PART_LABEL};
use super::{Card, Role, P256_PARAMS, SIGKEY_LABEL};
use crate::error::Error;

const TRANSFER_LABEL: &str = "strongroom-copy";

/// One object in transit: wrapped under the transfer key.
struct Wrapped {
    label: String,
    id: Vec<u8>,
    kind: Kind,
    bytes: Vec<u8>,
}

enum Kind {
    Part,
    /// A signature key and its public point.
    Sigkey(Vec<u8>),
}

/// What a copy moved.
pub struct Copied {
    /// Key part names.
    pub parts: Vec<String>,
    /// Signature keys (administrator names).
    pub sigkeys: Vec<String>,
    /// Objects the target already held (by label), left as they were.
    pub skipped: Vec<String>,
}

impl Card {
    fn attr_bytes(&self, h: ObjectHandle, t: AttributeType) -> Result<Vec<u8>, Error> {
        let attrs = self
            .session
            .get_attributes(h, &[t])
            .map_err(|e| super::card_error(&self.uri, "read an attribute", e))?;
        Ok(attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::Id(v) | Attribute::EcPoint(v) => Some(v),
                _ => None,
            })
            .unwrap_or_default())
    }
}

/// Copies the key parts and the copyable signature keys of `source` to `target`.
///
/// `source` is open with no login yet; `officer_pin` and `user_pin` log its officer and
/// then its user in. `target` is open with its user logged in. Refused, before anything
/// is wrapped, when the target is not certified in the source's zone.
pub fn copy(
    p: &dyn CryptoProvider,
    source: &Card,
    officer_pin: impl FnOnce() -> Result<zeroize::Zeroizing<String>, Error>,
    user_pin: impl FnOnce() -> Result<zeroize::Zeroizing<String>, Error>,
    target: &Card,
) -> Result<Copied, Error> {
    // The zone check uses public objects only.
    let zone = source.zone()?.ok_or_else(|| {
        Error::other(format!(
            "card {} is not certified in a zone: only cards of a zone are copied",
            source.uri
        ))
    })?;
    let target_cert = target.certificate()?.ok_or_else(|| {
        Error::other(format!(
            "card {} is not certified in a zone; certify it in zone {} first (`strongroom card init --ca …`)",
            target.uri, zone.name
        ))
    })?;
    let certified =
        verify_card_certificate(p, std::slice::from_ref(&zone), &target_cert).map_err(|m| {
            Error::other(format!(
                "copy refused: card {} is outside zone {} ({m})",
                target.uri, zone.name
            ))
        })?;
    if certified.serial != target.serial || certified.card != target.label {
        return Err(Error::other(format!(
            "copy refused: the zone certificate on card {} was made for another card",
            target.uri
        )));
    }
    let (n, e) = rsa_spki_parts(&certified.unwrap_key)
        .ok_or_else(|| Error::other("the target's unwrap key is not an RSA key"))?;

    // 1. The officer's trusted transfer key (a session object).
    source.login(Role::Officer, officer_pin)?;
    let transfer = source
        .session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Private(false),
                Attribute::Sensitive(true),
                Attribute::Extractable(true),
                Attribute::Trusted(true),
                Attribute::Wrap(true),
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
                Attribute::Label(TRANSFER_LABEL.as_bytes().to_vec()),
            ],
        )
        .map_err(|e| super::card_error(&source.uri, "make the transfer key", e));
    let transfer = match transfer {
        Ok(t) => t,
        Err(e) => {
            source.logout();
            return Err(e);
        }
    };
    source.logout();
    let moved = wrap_all(source, transfer, user_pin, n, e);
    let _ = source.session.destroy_object(transfer);
    let (wrapped_transfer, objects) = moved?;

    // 3. The target unwraps.
    let key = target.session.unwrap_key(
        &oaep(),
        target.private(super::zone::UNWRAP_LABEL)?,
        &wrapped_transfer,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Unwrap(true),
        ],
    );
    let key = key.map_err(|e| super::card_error(&target.uri, "unwrap the transfer key", e))?;
    let result = unwrap_all(target, key, &objects);
    let _ = target.session.destroy_object(key);
    result
}

/// Step 2, on the source with its user logged in: (transfer key wrapped for the target,
/// the objects wrapped under the transfer key).
fn wrap_all(
    source: &Card,
    transfer: ObjectHandle,
    user_pin: impl FnOnce() -> Result<zeroize::Zeroizing<String>, Error>,
    n: &[u8],
    e: &[u8],
) -> Result<(Vec<u8>, Vec<Wrapped>), Error> {
    source.login(Role::User, user_pin)?;
    let err = |what: &'static str| move |e| super::card_error(&source.uri, what, e);
    let target_key = source
        .session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::Wrap(true),
            Attribute::Modulus(n.to_vec()),
            Attribute::PublicExponent(e.to_vec()),
        ])
        .map_err(err("import the target's unwrap key"))?;
    let wrapped_transfer = source
        .session
        .wrap_key(&oaep(), target_key, transfer)
        .map_err(err("wrap the transfer key for the target"));
    let _ = source.session.destroy_object(target_key);
    let wrapped_transfer = wrapped_transfer?;
    let mut objects = Vec::new();
    for name in source.parts()? {
        let label = format!("{PART_LABEL}{name}");
        let Some(h) = source.one_secret(&label)? else {
            continue;
        };
        let bytes = source
            .session
            .wrap_key(&Mechanism::AesKeyWrapPad, transfer, h)
            .map_err(err("wrap a key part"))?;
        objects.push(Wrapped {
            id: source.attr_bytes(h, AttributeType::Id)?,
            label,
            kind: Kind::Part,
            bytes,
        });
    }
    for name in source.sigkey_names()? {
        let label = format!("{SIGKEY_LABEL}{name}");
        let h = source.private(&label)?;
        let point = source.public_point(&label)?.ok_or_else(|| {
            Error::other(format!("card {}: no public key for {name}", source.uri))
        })?;
        let bytes = match source
            .session
            .wrap_key(&Mechanism::AesKeyWrapPad, transfer, h)
        {
            Ok(b) => b,
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::KeyUnextractable,
                _,
            )) => {
                return Err(Error::other(format!(
                    "card {}: the signature key of {name} was made to never leave the card (before the card joined a zone), so it cannot be copied; give the backup card its own key (`strongroom card init --name …`) and install it as an administrator",
                    source.uri
                )))
            }
            Err(e) => return Err(super::card_error(&source.uri, "wrap a signature key", e)),
        };
        objects.push(Wrapped {
            id: source.attr_bytes(h, AttributeType::Id)?,
            label,
            kind: Kind::Sigkey(point),
            bytes,
        });
    }
    Ok((wrapped_transfer, objects))
}

fn unwrap_all(target: &Card, key: ObjectHandle, objects: &[Wrapped]) -> Result<Copied, Error> {
    let mut copied = Copied {
        parts: Vec::new(),
        sigkeys: Vec::new(),
        skipped: Vec::new(),
    };
    let err = |what: &'static str| move |e| super::card_error(&target.uri, what, e);
    for o in objects {
        match &o.kind {
            Kind::Part => {
                let name = o.label.trim_start_matches(PART_LABEL);
                if target.one_secret(&o.label)?.is_some() {
                    copied.skipped.push(o.label.clone());
                    continue;
                }
                let template: Vec<Attribute> = part_template(name, &o.id)
                    .into_iter()
                    .filter(|a| !matches!(a, Attribute::ValueLen(_)))
                    .collect();
                target
                    .session
                    .unwrap_key(&Mechanism::AesKeyWrapPad, key, &o.bytes, &template)
                    .map_err(err("unwrap a key part"))?;
                copied.parts.push(name.to_string());
            }
            Kind::Sigkey(point) => {
                let name = o.label.trim_start_matches(SIGKEY_LABEL);
                if !target
                    .objects(ObjectClass::PRIVATE_KEY, &o.label)?
                    .is_empty()
                {
                    copied.skipped.push(o.label.clone());
                    continue;
                }
                target
                    .session
                    .unwrap_key(
                        &Mechanism::AesKeyWrapPad,
                        key,
                        &o.bytes,
                        &[
                            Attribute::Class(ObjectClass::PRIVATE_KEY),
                            Attribute::KeyType(KeyType::EC),
                            Attribute::Token(true),
                            Attribute::Private(true),
                            Attribute::Sensitive(true),
                            Attribute::Extractable(true),
                            Attribute::WrapWithTrusted(true),
                            Attribute::Sign(true),
                            Attribute::Derive(false),
                            Attribute::Decrypt(false),
                            Attribute::Unwrap(false),
                            Attribute::Label(o.label.as_bytes().to_vec()),
                            Attribute::Id(o.id.clone()),
                        ],
                    )
                    .map_err(err("unwrap a signature key"))?;
                let mut der = vec![0x04, 0x41];
                der.extend_from_slice(point);
                target
                    .session
                    .create_object(&[
                        Attribute::Class(ObjectClass::PUBLIC_KEY),
                        Attribute::KeyType(KeyType::EC),
                        Attribute::Token(true),
                        Attribute::Private(false),
                        Attribute::Verify(true),
                        Attribute::EcParams(P256_PARAMS.to_vec()),
                        Attribute::EcPoint(der),
                        Attribute::Label(o.label.as_bytes().to_vec()),
                        Attribute::Id(o.id.clone()),
                    ])
                    .map_err(err("store a signature key's public key"))?;
                copied.sigkeys.push(name.to_string());
            }
        }
    }
    Ok(copied)
}

impl Card {
    fn one_secret(&self, label: &str) -> Result<Option<ObjectHandle>, Error> {
        Ok(self
            .objects(ObjectClass::SECRET_KEY, label)?
            .into_iter()
            .next())
    }
}
