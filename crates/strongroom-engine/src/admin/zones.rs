//! Card zones: the smart-card half of the ceremony (docs/adr/0004-key-parts-on-cards.md).
//!
//! A zone is a name and the P-256 public keys of its CA cards (the CA and its backups). A
//! zone CA certifies the EP11 cards of its zone: a [`CardCertificate`] binds a card's own
//! signing key (which signs part deliveries) and its unwrap key (which receives card
//! copies). A unit trusts a zone through a signed [`Cmd::TrustZone`]; from then on it
//! accepts [`CardPart`]s whose certificate chains to a CA of a trusted zone.
//!
//! A part leaves its card wrapped with RSA-OAEP (SHA-1, MGF1-SHA-1, empty label: the one
//! OAEP variant common tokens wrap with) under the unit's key-transport key, which the
//! card's security officer marked trusted. The card signs the wrapped part together with
//! the instance, the unit and the load's importer id, so a delivery cannot be moved to
//! another unit or replayed into another load.

use super::*;
use crate::provider::OaepHash;

/// Most zones a unit trusts.
pub const MAX_ZONES: usize = 4;
/// Most CA keys of one zone (the CA card and its backups).
pub const MAX_ZONE_CAS: usize = 4;
/// Longest zone name.
pub const MAX_ZONE_NAME: usize = 30;
/// The version of card certificates.
pub const CARD_CERT_VERSION: u8 = 1;
/// The size of a unit's key-transport key (RSA).
pub const TRANSPORT_BITS: usize = 3072;

const CARD_CERT_DOMAIN: &[u8] = b"strongroom/card-cert/v1\0";
const CARD_PART_DOMAIN: &[u8] = b"strongroom/card-part/v1\0";

/// A zone as units trust it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// 1–30 printable characters.
    pub name: String,
    /// The zone CAs' public keys: uncompressed P-256 points (base64).
    pub ca_keys: Vec<String>,
}

impl Zone {
    /// Checks the name and the keys; returns the raw keys.
    pub fn validate(&self) -> Result<Vec<Vec<u8>>, String> {
        let n = self.name.as_str();
        if n.trim() != n
            || n.is_empty()
            || n.chars().count() > MAX_ZONE_NAME
            || n.chars().any(char::is_control)
        {
            return Err(format!(
                "a zone name has 1 to {MAX_ZONE_NAME} printable characters and no surrounding spaces"
            ));
        }
        if self.ca_keys.is_empty() || self.ca_keys.len() > MAX_ZONE_CAS {
            return Err(format!("a zone has 1 to {MAX_ZONE_CAS} CA keys"));
        }
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for k in &self.ca_keys {
            let raw = B64
                .decode(k.trim())
                .map_err(|_| "a zone CA key is not base64".to_string())?;
            if raw.len() != 65 || raw[0] != 0x04 {
                return Err("a zone CA key is an uncompressed P-256 point (65 bytes)".into());
            }
            if keys.contains(&raw) {
                return Err("a zone lists a CA key twice".into());
            }
            keys.push(raw);
        }
        Ok(keys)
    }
}

/// What a zone CA signs about an EP11 card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardCertBody {
    /// [`CARD_CERT_VERSION`].
    pub v: u8,
    /// The zone's name.
    pub zone: String,
    /// The card's token label.
    pub card: String,
    /// The card's serial number.
    pub serial: String,
    /// The card's signing key: uncompressed P-256 point (base64).
    pub card_key: String,
    /// The card's unwrap key for card copies: RSA SubjectPublicKeyInfo DER (base64).
    pub unwrap_key: String,
}

/// A zone CA's certificate of a card: the body's bytes and the CA's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardCertificate {
    /// Base64 of the exact JSON bytes of a [`CardCertBody`].
    pub body: String,
    /// The signing CA key's SKI (hex).
    pub ca: String,
    /// ECDSA P-256 / SHA-256 signature (DER, base64) over
    /// `"strongroom/card-cert/v1\0" ‖ body bytes`.
    pub signature: String,
}

/// A key part delivered by a card to one unit for one load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardPart {
    /// The card's zone certificate.
    pub certificate: CardCertificate,
    /// The part, wrapped on the card under the unit's key-transport key (RSA-OAEP with
    /// SHA-1, base64).
    pub wrapped: String,
    /// The card key's ECDSA P-256 / SHA-256 signature (DER, base64) over
    /// [`card_part_message`].
    pub signature: String,
}

/// The message a zone CA signs for a certificate body.
pub fn card_cert_message(body: &[u8]) -> Vec<u8> {
    let mut m = CARD_CERT_DOMAIN.to_vec();
    m.extend_from_slice(body);
    m
}

/// The message a card signs for a part it delivers to `unit` for the load of `importer`.
pub fn card_part_message(
    instance: InstanceId,
    unit: UnitId,
    importer: &[u8; 16],
    wrapped: &[u8],
) -> Vec<u8> {
    let mut m = CARD_PART_DOMAIN.to_vec();
    m.extend_from_slice(instance.as_bytes());
    m.extend_from_slice(unit.as_bytes());
    m.extend_from_slice(importer);
    m.extend_from_slice(wrapped);
    m
}

/// A verified card certificate: the card's zone, label and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedCard {
    /// The zone.
    pub zone: String,
    /// The card's label.
    pub card: String,
    /// The card's serial number.
    pub serial: String,
    /// The card's signing key (raw P-256 point).
    pub card_key: Vec<u8>,
    /// The card's unwrap key (RSA SPKI DER).
    pub unwrap_key: Vec<u8>,
}

/// Verifies `cert` against the zones in `zones`: it must be signed by a CA key of the zone
/// it names. The message says why not, in terms an administrator can act on.
pub fn verify_card_certificate(
    p: &dyn CryptoProvider,
    zones: &[Zone],
    cert: &CardCertificate,
) -> Result<CertifiedCard, String> {
    let bytes = B64
        .decode(cert.body.trim())
        .map_err(|_| "the card certificate's body is not base64".to_string())?;
    let body: CardCertBody = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the card certificate is malformed: {e}"))?;
    if body.v != CARD_CERT_VERSION {
        return Err(format!(
            "card certificate version {} is not supported (expected {CARD_CERT_VERSION})",
            body.v
        ));
    }
    let Some(zone) = zones.iter().find(|z| z.name == body.zone) else {
        return Err(format!(
            "card '{}' is certified in zone '{}', which is not trusted here",
            body.card, body.zone
        ));
    };
    let ca = hex::decode(cert.ca.trim())
        .map_err(|_| "the card certificate's CA SKI is not hex".to_string())?;
    let keys = zone.validate()?;
    let Some(key) = keys
        .iter()
        .find(|k| ski_of(p, SigAlg::EcdsaP256Sha256, k).as_slice() == ca.as_slice())
    else {
        return Err(format!(
            "card '{}' is certified by a CA that is not a CA of zone '{}'",
            body.card, body.zone
        ));
    };
    let sig = B64
        .decode(cert.signature.trim())
        .map_err(|_| "the card certificate's signature is not base64".to_string())?;
    if !p.sig_verify(
        SigAlg::EcdsaP256Sha256,
        key,
        &card_cert_message(&bytes),
        &sig,
    ) {
        return Err(format!(
            "the certificate of card '{}' does not verify with the CA key of zone '{}' (altered, or made by another CA)",
            body.card, body.zone
        ));
    }
    let card_key = B64
        .decode(body.card_key.trim())
        .map_err(|_| "the card key is not base64".to_string())?;
    let unwrap_key = B64
        .decode(body.unwrap_key.trim())
        .map_err(|_| "the card's unwrap key is not base64".to_string())?;
    Ok(CertifiedCard {
        zone: body.zone,
        card: body.card,
        serial: body.serial,
        card_key,
        unwrap_key,
    })
}

/// A unit's long-term key-transport key: card parts are wrapped to it.
pub(super) struct Transport {
    pub(super) private: Zeroizing<Vec<u8>>,
    pub(super) public: Vec<u8>,
}

impl UnitState {
    /// The zones this unit trusts.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The key-transport public key (SPKI DER), once the unit trusts a zone.
    pub fn transport_key(&self) -> Option<&[u8]> {
        self.transport.as_ref().map(|t| t.public.as_slice())
    }

    pub(super) fn trust_zone(
        &mut self,
        p: &dyn CryptoProvider,
        zone: &Zone,
    ) -> Result<Option<Output>, Refusal> {
        zone.validate().map_err(malformed)?;
        let others = self.zones.iter().filter(|z| z.name != zone.name).count();
        if others >= MAX_ZONES {
            return refuse(
                RefusalKind::State,
                format!("a unit trusts at most {MAX_ZONES} zones"),
            );
        }
        if self.transport.is_none() {
            let (private, public) = p.rsa_generate(TRANSPORT_BITS).map_err(crypto)?;
            self.transport = Some(Transport { private, public });
        }
        self.zones.retain(|z| z.name != zone.name);
        self.zones.push(zone.clone());
        Ok(None)
    }

    pub(super) fn forget_zone(&mut self, name: &str) -> Result<Option<Output>, Refusal> {
        if !self.zones.iter().any(|z| z.name == name) {
            return refuse(
                RefusalKind::State,
                format!("zone '{name}' is not trusted by this unit"),
            );
        }
        self.zones.retain(|z| z.name != name);
        Ok(None)
    }

    /// Opens a part a card delivered for the load of `importer`: the certificate must
    /// chain to a trusted zone, the card's signature must cover this unit and load, and
    /// the part must unwrap under the transport key.
    pub(super) fn open_card_part(
        &self,
        p: &dyn CryptoProvider,
        importer: &[u8; 16],
        n: usize,
        part: &CardPart,
    ) -> Result<Zeroizing<Vec<u8>>, Refusal> {
        let zone_refusal = |m: String| Refusal {
            kind: RefusalKind::Roster,
            message: format!("key part {n}: {m}"),
        };
        let card =
            verify_card_certificate(p, &self.zones, &part.certificate).map_err(zone_refusal)?;
        let wrapped = b64("wrapped", &part.wrapped)?;
        let sig = b64("signature", &part.signature)?;
        if !p.sig_verify(
            SigAlg::EcdsaP256Sha256,
            &card.card_key,
            &card_part_message(self.instance, self.id, importer, &wrapped),
            &sig,
        ) {
            return Err(zone_refusal(format!(
                "the delivery is not signed by card '{}' for this unit and this load (altered, or made for another unit or load)",
                card.card
            )));
        }
        let Some(t) = &self.transport else {
            return refuse(
                RefusalKind::State,
                "the unit has no key-transport key: trust a zone first (cryptounit-zone-trust)",
            );
        };
        p.rsa_oaep_decrypt(&t.private, OaepHash::Sha1, &wrapped)
            .map_err(|_| {
                zone_refusal(format!(
                    "the part from card '{}' cannot be unwrapped with this unit's key-transport key (wrapped for another unit, or altered)",
                    card.card
                ))
            })
    }
}
