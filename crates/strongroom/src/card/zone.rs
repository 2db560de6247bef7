//! Zones, zone certificates and key parts on cards (docs/adr/0004-key-parts-on-cards.md).
//!
//! Objects Strongroom keeps on a card, by label:
//! - `strongroom-zone-ca:<zone>`: a zone CA's P-256 key (CA cards; never extractable);
//! - `strongroom-zone`: the zone (name and CA keys), a public data object;
//! - `strongroom-card`: the card's own P-256 key, which signs part deliveries;
//! - `strongroom-card-unwrap`: the card's RSA-3072 key that receives card copies;
//! - `strongroom-card-cert`: the card's zone certificate, a public data object;
//! - `strongroom-part:<name>`: a master key part (AES-256; sensitive; wrapped only under a
//!   trusted key);
//! - `strongroom-unit:<unit id>`: a unit's key-transport key, marked trusted by the card's
//!   security officer.

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use strongroom_engine::admin::{
    card_cert_message, card_part_message, verify_card_certificate, CardCertBody, CardCertificate,
    CardPart, CertifiedCard, Zone, CARD_CERT_VERSION,
};
use strongroom_engine::der::{rsa_spki, rsa_spki_parts};
use strongroom_engine::{CryptoProvider, SigAlg};
use strongroom_model::{InstanceId, UnitId};

use super::{card_error, ec_point, Card, P256_PARAMS};
use crate::error::Error;

/// The label prefix of a zone CA key.
pub const CA_LABEL: &str = "strongroom-zone-ca:";
/// The label of the zone data object.
pub const ZONE_LABEL: &str = "strongroom-zone";
/// The label of the card's own signing key.
pub const CARD_KEY_LABEL: &str = "strongroom-card";
/// The label of the card's unwrap key.
pub const UNWRAP_LABEL: &str = "strongroom-card-unwrap";
/// The label of the card's zone certificate.
pub const CERT_LABEL: &str = "strongroom-card-cert";
/// The label prefix of a key part.
pub const PART_LABEL: &str = "strongroom-part:";
/// The label prefix of a unit's trusted key-transport key.
pub const UNIT_LABEL: &str = "strongroom-unit:";
/// Most key parts a card holds (as IBM's EP11 smart cards).
pub const MAX_CARD_PARTS: usize = 85;
/// The size of a card's unwrap key.
const UNWRAP_BITS: u64 = 3072;

/// RSA-OAEP with SHA-1 and MGF1-SHA-1, empty label: what tokens such as SoftHSM2 wrap with.
pub(super) fn oaep() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    ))
}

/// A unit that a card's officer marked trusted.
pub struct DeliveredTo {
    /// The unit.
    pub unit: UnitId,
    /// Its key-transport key (SPKI DER).
    pub spki: Vec<u8>,
}

fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.chars().count() > 30 || name.chars().any(char::is_control) {
        return Err(Error::usage(format!(
            "a {what} name has 1 to 30 printable characters"
        )));
    }
    Ok(())
}

impl Card {
    fn err(&self, what: &str) -> impl FnOnce(cryptoki::error::Error) -> Error + '_ {
        let what = what.to_string();
        move |e| card_error(&self.uri, &what, e)
    }

    /// The objects of `class` whose label is `label`.
    pub(super) fn objects(
        &self,
        class: ObjectClass,
        label: &str,
    ) -> Result<Vec<ObjectHandle>, Error> {
        self.session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(self.err("search its objects"))
    }

    fn one(&self, class: ObjectClass, label: &str) -> Result<Option<ObjectHandle>, Error> {
        Ok(self.objects(class, label)?.into_iter().next())
    }

    /// The labels of `class` objects that start with `prefix` (the prefix cut off).
    pub(super) fn labelled(&self, class: ObjectClass, prefix: &str) -> Result<Vec<String>, Error> {
        let handles = self
            .session
            .find_objects(&[Attribute::Class(class)])
            .map_err(self.err("list its objects"))?;
        let mut names = Vec::new();
        for h in handles {
            let attrs = self
                .session
                .get_attributes(h, &[AttributeType::Label])
                .map_err(self.err("read a label"))?;
            if let Some(Attribute::Label(l)) = attrs.into_iter().next() {
                if let Some(n) = String::from_utf8_lossy(&l).strip_prefix(prefix) {
                    names.push(n.to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn read_data(&self, label: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(h) = self.one(ObjectClass::DATA, label)? else {
            return Ok(None);
        };
        let attrs = self
            .session
            .get_attributes(h, &[AttributeType::Value])
            .map_err(self.err("read a data object"))?;
        Ok(attrs.into_iter().find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        }))
    }

    /// Replaces the public data object `label` with `value`.
    fn write_data(&self, label: &str, value: &[u8]) -> Result<(), Error> {
        let old = self.objects(ObjectClass::DATA, label)?;
        self.session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Application(b"strongroom".to_vec()),
                Attribute::Value(value.to_vec()),
            ])
            .map_err(self.err("write a data object"))?;
        for h in old {
            self.session
                .destroy_object(h)
                .map_err(self.err("replace a data object"))?;
        }
        Ok(())
    }

    pub(super) fn public_point(&self, label: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(h) = self.one(ObjectClass::PUBLIC_KEY, label)? else {
            return Ok(None);
        };
        let attrs = self
            .session
            .get_attributes(h, &[AttributeType::EcPoint])
            .map_err(self.err("read a public key"))?;
        let Some(Attribute::EcPoint(der)) = attrs.into_iter().next() else {
            return Ok(None);
        };
        Ok(ec_point(&der))
    }

    /// Generates a P-256 key pair labelled `label` on the card that only signs. `copyable`
    /// keys may leave the card wrapped under a key its officer trusted (card copy);
    /// others never leave it.
    pub(super) fn generate_p256(
        &self,
        label: &str,
        id: &[u8],
        copyable: bool,
    ) -> Result<Vec<u8>, Error> {
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(copyable),
            Attribute::WrapWithTrusted(true),
            Attribute::Sign(true),
            Attribute::Derive(false),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        self.session
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .map_err(self.err("generate a P-256 key"))?;
        self.public_point(label)?.ok_or_else(|| {
            Error::other(format!(
                "card {}: the key it generated cannot be read back",
                self.uri
            ))
        })
    }

    pub(super) fn private(&self, label: &str) -> Result<ObjectHandle, Error> {
        self.one(ObjectClass::PRIVATE_KEY, label)?
            .ok_or_else(|| Error::other(format!("card {}: it holds no key '{label}'", self.uri)))
    }

    // ---- zone CA cards ----

    /// Generates the CA key of zone `zone` on this card (never extractable) and records
    /// the zone on it. Refused when the card already holds that zone's CA key.
    pub fn generate_ca(&self, zone: &str) -> Result<Vec<u8>, Error> {
        check_name("zone", zone)?;
        let label = format!("{CA_LABEL}{zone}");
        if self.one(ObjectClass::PRIVATE_KEY, &label)?.is_some() {
            return Err(Error::other(format!(
                "card {}: it already holds the CA key of zone {zone}",
                self.uri
            )));
        }
        self.generate_p256(&label, zone.as_bytes(), false)
    }

    /// The CA public key of `zone` on this card, if it holds one.
    pub fn ca_key(&self, zone: &str) -> Result<Option<Vec<u8>>, Error> {
        self.public_point(&format!("{CA_LABEL}{zone}"))
    }

    /// The zone recorded on the card (CA cards, and EP11 cards once certified).
    pub fn zone(&self) -> Result<Option<Zone>, Error> {
        let Some(bytes) = self.read_data(ZONE_LABEL)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::other(format!(
                "card {}: its zone record is malformed: {e}",
                self.uri
            ))
        })
    }

    /// Records `zone` on the card.
    pub fn set_zone(&self, zone: &Zone) -> Result<(), Error> {
        let bytes = serde_json::to_vec(zone).map_err(|_| Error::other("encoding"))?;
        self.write_data(ZONE_LABEL, &bytes)
    }

    /// Certifies a card: this CA card signs `body` with its CA key of `body.zone`.
    pub fn certify(
        &self,
        p: &dyn CryptoProvider,
        body: &CardCertBody,
    ) -> Result<CardCertificate, Error> {
        let label = format!("{CA_LABEL}{}", body.zone);
        let handle = self.private(&label)?;
        let point = self.ca_key(&body.zone)?.ok_or_else(|| {
            Error::other(format!(
                "card {}: no public CA key of zone {}",
                self.uri, body.zone
            ))
        })?;
        let bytes = serde_json::to_vec(body).map_err(|_| Error::other("encoding"))?;
        let sig = self.sign_with(p, handle, &card_cert_message(&bytes))?;
        Ok(CardCertificate {
            body: b64(&bytes),
            ca: hex::encode(strongroom_engine::admin::ski_of(
                p,
                SigAlg::EcdsaP256Sha256,
                &point,
            )),
            signature: b64(&sig),
        })
    }

    // ---- EP11 cards of a zone ----

    /// The card's own signing key and unwrap key, generated on the card the first time:
    /// (P-256 point, RSA SPKI DER).
    pub fn card_keys(&self, p: &dyn CryptoProvider) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let point = match self.public_point(CARD_KEY_LABEL)? {
            Some(pt) => pt,
            None => {
                let mut id = [0u8; 16];
                p.fill_random(&mut id)
                    .map_err(|_| Error::other("random generator failed"))?;
                self.generate_p256(CARD_KEY_LABEL, &id, false)?
            }
        };
        let unwrap = match self.unwrap_spki()? {
            Some(s) => s,
            None => {
                let label = UNWRAP_LABEL.as_bytes().to_vec();
                let public = [
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Wrap(true),
                    Attribute::Encrypt(false),
                    Attribute::Verify(false),
                    Attribute::ModulusBits(UNWRAP_BITS.into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                    Attribute::Label(label.clone()),
                ];
                let private = [
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Unwrap(true),
                    Attribute::Decrypt(false),
                    Attribute::Sign(false),
                    Attribute::Label(label),
                ];
                self.session
                    .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
                    .map_err(self.err("generate the card's unwrap key"))?;
                self.unwrap_spki()?.ok_or_else(|| {
                    Error::other(format!("card {}: its unwrap key cannot be read", self.uri))
                })?
            }
        };
        Ok((point, unwrap))
    }

    fn unwrap_spki(&self) -> Result<Option<Vec<u8>>, Error> {
        let Some(h) = self.one(ObjectClass::PUBLIC_KEY, UNWRAP_LABEL)? else {
            return Ok(None);
        };
        self.rsa_public(h).map(Some)
    }

    pub(super) fn rsa_public(&self, h: ObjectHandle) -> Result<Vec<u8>, Error> {
        let attrs = self
            .session
            .get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])
            .map_err(self.err("read an RSA public key"))?;
        let (mut n, mut e) = (None, None);
        for a in attrs {
            match a {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        match (n, e) {
            (Some(n), Some(e)) => Ok(rsa_spki(&n, &e)),
            _ => Err(Error::other(format!(
                "card {}: an RSA public key lacks its modulus or exponent",
                self.uri
            ))),
        }
    }

    /// What a zone CA certifies about this card.
    pub fn cert_body(&self, p: &dyn CryptoProvider, zone: &str) -> Result<CardCertBody, Error> {
        let (point, unwrap) = self.card_keys(p)?;
        Ok(CardCertBody {
            v: CARD_CERT_VERSION,
            zone: zone.to_string(),
            card: self.label.clone(),
            serial: self.serial.clone(),
            card_key: b64(&point),
            unwrap_key: b64(&unwrap),
        })
    }

    /// Stores the card's zone certificate and its zone.
    pub fn set_certificate(&self, cert: &CardCertificate, zone: &Zone) -> Result<(), Error> {
        let bytes = serde_json::to_vec(cert).map_err(|_| Error::other("encoding"))?;
        self.write_data(CERT_LABEL, &bytes)?;
        self.set_zone(zone)
    }

    /// The card's zone certificate, if it has one.
    pub fn certificate(&self) -> Result<Option<CardCertificate>, Error> {
        let Some(bytes) = self.read_data(CERT_LABEL)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::other(format!(
                "card {}: its zone certificate is malformed: {e}",
                self.uri
            ))
        })
    }

    /// The card's certificate, verified against the zone recorded on the card, and
    /// checked to name this card's own keys.
    pub fn certified(
        &self,
        p: &dyn CryptoProvider,
    ) -> Result<(CardCertificate, Zone, CertifiedCard), Error> {
        let not = || {
            Error::other(format!(
                "card {} is not certified in a zone (`strongroom card init --ca …`)",
                self.uri
            ))
        };
        let cert = self.certificate()?.ok_or_else(not)?;
        let zone = self.zone()?.ok_or_else(not)?;
        let card = verify_card_certificate(p, std::slice::from_ref(&zone), &cert)
            .map_err(|m| Error::other(format!("card {}: {m}", self.uri)))?;
        let point = self.public_point(CARD_KEY_LABEL)?;
        if point.as_deref() != Some(card.card_key.as_slice()) {
            return Err(Error::other(format!(
                "card {}: its zone certificate names another card's key",
                self.uri
            )));
        }
        Ok((cert, zone, card))
    }

    /// Generates master key part `name` on the card: AES-256, sensitive, wrapped only
    /// under a key the card's officer trusted, and usable for nothing else.
    pub fn generate_part(&self, p: &dyn CryptoProvider, name: &str) -> Result<(), Error> {
        check_name("key part", name)?;
        let parts = self.parts()?;
        if parts.iter().any(|n| n == name) {
            return Err(Error::other(format!(
                "card {}: it already holds key part {name}",
                self.uri
            )));
        }
        if parts.len() >= MAX_CARD_PARTS {
            return Err(Error::other(format!(
                "card {}: a card holds at most {MAX_CARD_PARTS} key parts",
                self.uri
            )));
        }
        let mut id = [0u8; 16];
        p.fill_random(&mut id)
            .map_err(|_| Error::other("random generator failed"))?;
        self.session
            .generate_key(&Mechanism::AesKeyGen, &part_template(name, &id))
            .map_err(self.err("generate the key part"))?;
        Ok(())
    }

    /// The key parts on the card, by name.
    pub fn parts(&self) -> Result<Vec<String>, Error> {
        self.labelled(ObjectClass::SECRET_KEY, PART_LABEL)
    }

    /// The part the URI's `object` names, or the card's only part.
    pub fn part_name(&self) -> Result<String, Error> {
        let parts = self.parts()?;
        match (&self.uri.object, parts.as_slice()) {
            (Some(o), _) if parts.contains(o) => Ok(o.clone()),
            (Some(o), _) => Err(Error::other(format!(
                "card {}: it holds no key part {o}",
                self.uri
            ))),
            (None, [one]) => Ok(one.clone()),
            (None, []) => Err(Error::other(format!(
                "card {}: it holds no key part (`strongroom tke mk-add --card …`)",
                self.uri
            ))),
            (None, _) => Err(Error::usage(format!(
                "card {} holds {} key parts: name one with object=<name> in the URI",
                self.uri,
                parts.len()
            ))),
        }
    }

    /// The protection of key part `name`.
    pub fn part_protection(&self, name: &str) -> Result<super::Protection, Error> {
        let h = self
            .one(ObjectClass::SECRET_KEY, &format!("{PART_LABEL}{name}"))?
            .ok_or_else(|| Error::other(format!("card {}: no key part {name}", self.uri)))?;
        self.protection_of(h)
    }

    // ---- units ----

    /// The security officer marks `unit`'s key-transport key trusted on the card, so that
    /// the card's key parts can be wrapped to it (and only to trusted keys). Needs an
    /// officer login.
    pub fn trust_unit(&self, unit: UnitId, spki: &[u8]) -> Result<(), Error> {
        let (n, e) = rsa_spki_parts(spki).ok_or_else(|| {
            Error::other(format!(
                "unit {unit}: its key-transport key is not an RSA key"
            ))
        })?;
        let label = format!("{UNIT_LABEL}{unit}");
        let old = self.objects(ObjectClass::PUBLIC_KEY, &label)?;
        self.session
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Wrap(true),
                Attribute::Encrypt(false),
                Attribute::Verify(false),
                Attribute::Trusted(true),
                Attribute::Modulus(n.to_vec()),
                Attribute::PublicExponent(e.to_vec()),
                Attribute::Label(label.into_bytes()),
            ])
            .map_err(self.err("trust the unit's key-transport key"))?;
        for h in old {
            self.session
                .destroy_object(h)
                .map_err(self.err("replace the unit's old key"))?;
        }
        Ok(())
    }

    /// The units whose key-transport keys the card trusts.
    pub fn trusted_units(&self) -> Result<Vec<DeliveredTo>, Error> {
        let mut out = Vec::new();
        for name in self.labelled(ObjectClass::PUBLIC_KEY, UNIT_LABEL)? {
            let Ok(unit) = name.parse::<UnitId>() else {
                continue;
            };
            if let Some(h) = self.one(ObjectClass::PUBLIC_KEY, &format!("{UNIT_LABEL}{name}"))? {
                out.push(DeliveredTo {
                    unit,
                    spki: self.rsa_public(h)?,
                });
            }
        }
        Ok(out)
    }

    /// Delivers key part `name` to `unit` for the load of `importer`: the card wraps the
    /// part under the unit's trusted key-transport key (which must be `transport`, the key
    /// the unit's signed status shows) and signs the wrapped part with its card key. The
    /// workstation sees only the wrapped part.
    pub fn deliver_part(
        &self,
        p: &dyn CryptoProvider,
        name: &str,
        instance: InstanceId,
        unit: UnitId,
        importer: &[u8; 16],
        transport: &[u8],
    ) -> Result<CardPart, Error> {
        let (cert, _, _) = self.certified(p)?;
        let part = self
            .one(ObjectClass::SECRET_KEY, &format!("{PART_LABEL}{name}"))?
            .ok_or_else(|| Error::other(format!("card {}: no key part {name}", self.uri)))?;
        let key = self
            .one(ObjectClass::PUBLIC_KEY, &format!("{UNIT_LABEL}{unit}"))?
            .ok_or_else(|| {
                Error::other(format!(
                    "card {} does not trust unit {unit}: its security officer enrolls the unit first (`strongroom tke cryptounit-card-enroll --card {}`)",
                    self.uri, self.uri
                ))
            })?;
        if self.rsa_public(key)? != transport {
            return Err(Error::other(format!(
                "card {} trusts another key-transport key for unit {unit} than the unit shows; enroll the unit again",
                self.uri
            )));
        }
        let wrapped = self
            .session
            .wrap_key(&oaep(), key, part)
            .map_err(self.err("wrap the key part for the unit"))?;
        let handle = self.private(CARD_KEY_LABEL)?;
        let sig = self.sign_with(
            p,
            handle,
            &card_part_message(instance, unit, importer, &wrapped),
        )?;
        Ok(CardPart {
            certificate: cert,
            wrapped: b64(&wrapped),
            signature: b64(&sig),
        })
    }
}

/// The template of a key part named `name` (generated, or unwrapped by a card copy).
pub(super) fn part_template(name: &str, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::WrapWithTrusted(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(format!("{PART_LABEL}{name}").into_bytes()),
        Attribute::Id(id.to_vec()),
    ]
}

pub(super) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
