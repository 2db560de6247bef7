//! KMIP's cryptographic operations: key generation (Create, CreateKeyPair, ReKey) and the
//! use of stored keys (Encrypt, Decrypt, Sign, SignatureVerify, MAC). Every primitive is
//! the crypto provider's (aws-lc-rs); keys are opened from the keystore for the call and
//! zeroized after it.

use strongroom_engine::provider::{AsymKind, BlockCipher, CipherMode, Curve, MacAlg, SignScheme};
use strongroom_engine::{AeadAlg, DigestAlg};
use strongroom_keystore::StoreError;
use strongroom_model::Role;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::model::*;
use super::objects::{KmipManaged, KmipSession, NewKmipObject};
use super::usage::KeyUse;
use crate::action::Action;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

/// Most bytes one Encrypt, Decrypt, Sign or MAC call takes.
pub const KMIP_MAX_DATA: usize = 1 << 20;

fn unsupported(msg: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::Unsupported, msg)
}

fn crypto_failed(msg: &str) -> ServiceError {
    ServiceError::new(ErrorKind::CryptoFailure, msg)
}

fn digest_of(h: KmipHash) -> DigestAlg {
    match h {
        KmipHash::Sha1 => DigestAlg::Sha1,
        KmipHash::Sha224 => DigestAlg::Sha224,
        KmipHash::Sha256 => DigestAlg::Sha256,
        KmipHash::Sha384 => DigestAlg::Sha384,
        KmipHash::Sha512 => DigestAlg::Sha512,
    }
}

fn curve_of(c: u32) -> Result<Curve> {
    match c {
        curve::P_256 => Ok(Curve::P256),
        curve::P_384 => Ok(Curve::P384),
        curve::P_521 => Ok(Curve::P521),
        other => Err(unsupported(format!(
            "Recommended Curve {other} is not supported (P-256, P-384 and P-521 are)"
        ))),
    }
}

fn curve_length(c: u32) -> i32 {
    match c {
        curve::P_384 => 384,
        curve::P_521 => 521,
        _ => 256,
    }
}

fn check_data(data: &[u8]) -> Result<()> {
    if data.len() > KMIP_MAX_DATA {
        return Err(ServiceError::new(
            ErrorKind::InvalidField,
            format!("at most {KMIP_MAX_DATA} bytes of data per call"),
        ));
    }
    Ok(())
}

/// ECDSA `r ‖ s` as the DER `Ecdsa-Sig-Value` every KMIP client expects.
fn ecdsa_der(rs: &[u8]) -> Vec<u8> {
    let (r, s) = rs.split_at(rs.len() / 2);
    let mut body = Vec::new();
    strongroom_engine::der::write_uint(&mut body, r);
    strongroom_engine::der::write_uint(&mut body, s);
    let mut out = Vec::new();
    strongroom_engine::der::write_tlv(&mut out, 0x30, &body);
    out
}

/// The `r ‖ s` of a DER ECDSA signature, each padded to `n` bytes.
fn ecdsa_raw(der: &[u8], n: usize) -> Option<Vec<u8>> {
    let (seq, rest) = strongroom_engine::der::expect(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (r, rest) = strongroom_engine::der::expect(seq, 0x02)?;
    let (s, rest) = strongroom_engine::der::expect(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(2 * n);
    for v in [r, s] {
        let v = strongroom_engine::der::uint_value(v)?;
        if v.len() > n {
            return None;
        }
        out.extend(std::iter::repeat_n(0, n - v.len()));
        out.extend_from_slice(v);
    }
    Some(out)
}

/// The existing key's attributes a ReKey does not copy: its links, the dates it sets
/// itself ([`rekey_dates`]), and its compromise (KMIP's Re-key attribute rules).
const NOT_CARRIED_BY_REKEY: &[&str] = &[
    names::LINK,
    names::ACTIVATION_DATE,
    names::PROCESS_START_DATE,
    names::PROTECT_STOP_DATE,
    names::DEACTIVATION_DATE,
    names::COMPROMISE_OCCURRENCE_DATE,
];

/// The dates of a ReKey's replacement, from the existing key's (`st`), as KMIP's Re-key
/// operation sets them. Without an Offset, the Activation, Process Start, Protect Stop
/// and Deactivation Dates are copied. With one, the Activation Date is now + Offset, and
/// each other date moves by as much as the Activation Date moved, so that the
/// replacement's periods are as long as the existing key's. An existing key with no
/// Activation Date gives nothing to move the others by: they are not carried over.
fn rekey_dates(st: &StoredAttributes, now: i64, offset: Option<u32>) -> Vec<Attribute> {
    let dates = [
        (
            names::PROCESS_START_DATE,
            st.date(names::PROCESS_START_DATE),
        ),
        (names::PROTECT_STOP_DATE, st.date(names::PROTECT_STOP_DATE)),
        (names::DEACTIVATION_DATE, st.deactivation()),
    ];
    let (activation, shift) = match (offset, st.activation()) {
        (None, old) => (old, Some(0)),
        (Some(o), old) => {
            let new = now.saturating_add(i64::from(o));
            (Some(new), old.map(|old| new.saturating_sub(old)))
        }
    };
    let date = |name: &str, t: i64| Attribute::new(name, AttrValue::DateTime(t));
    let mut out: Vec<Attribute> = activation
        .map(|t| date(names::ACTIVATION_DATE, t))
        .into_iter()
        .collect();
    if let Some(shift) = shift {
        for (name, t) in dates {
            if let Some(t) = t {
                out.push(date(name, t.saturating_add(shift)));
            }
        }
    }
    out
}

/// Whether `m` may be put to `use` now: by its state, by its Protect Stop Date
/// (protection: encrypt, sign, MAC) or Process Start Date (processing: decrypt, verify),
/// and by its Cryptographic Usage Mask.
fn usable(m: &KmipManaged, use_: KeyUse) -> Result<()> {
    let processing = !use_.protects();
    let ok = match m.state {
        KmipState::Active => true,
        KmipState::Deactivated | KmipState::Compromised => processing,
        _ => false,
    };
    let refused = |why: String| {
        Err(ServiceError::new(
            ErrorKind::InvalidKeyState,
            format!("{why}: it cannot be used to {}", use_.verb()),
        ))
    };
    if !ok {
        refused(format!("The object is {:?}", m.state))
    } else if processing && m.process_pending {
        refused("The object's Process Start Date has not come".into())
    } else if !processing && m.protect_stopped {
        refused("The object's Protect Stop Date has passed".into())
    } else {
        m.usage_mask.map_or(Ok(()), |mask| use_.allowed_by(mask))
    }
}

impl Service {
    /// Create: a new symmetric key (AES 128/192/256, or an HMAC key).
    pub async fn kmip_create(
        &self,
        s: &KmipSession,
        algorithm: u32,
        length: i32,
        attributes: Vec<Attribute>,
    ) -> Result<Uuid> {
        let op = async {
            self.check_key_creation(&s.ctx, false).await?;
            // Keys for ciphers that only the client runs (IDEA, Camellia, …) are made too:
            // random bytes of the length asked. Only AES and HMAC keys are used here.
            let ok = match algorithm {
                algorithm::AES => matches!(length, 128 | 192 | 256),
                algorithm::RSA | algorithm::ECDSA | algorithm::EC | 5 | 0x0D..=0x0F => {
                    return Err(unsupported(format!(
                        "Cryptographic Algorithm {algorithm} is asymmetric: use CreateKeyPair"
                    )))
                }
                _ => (8..=4096).contains(&length) && length % 8 == 0,
            };
            if !ok {
                return Err(ServiceError::new(
                    ErrorKind::InvalidField,
                    format!("Cryptographic Length {length} does not fit algorithm {algorithm}"),
                ));
            }
            let mut key = Zeroizing::new(vec![0u8; usize::try_from(length / 8).unwrap_or(0)]);
            self.provider
                .fill_random(&mut key)
                .map_err(|_| ServiceError::new(ErrorKind::Internal, "random generator failed"))?;
            self.kmip_store_new(
                s,
                NewKmipObject {
                    object_type: object_type::SYMMETRIC_KEY,
                    format: key_format::RAW,
                    algorithm: Some(algorithm),
                    length: Some(length),
                    subtype: None,
                    presented: None,
                    material: key,
                    attributes,
                },
            )
            .await
        };
        self.audited(&s.ctx, Action::KmipCreate, Role::Writer, None, op)
            .await
    }

    /// CreateKeyPair: RSA or EC; returns (private key id, public key id), linked to each
    /// other.
    pub async fn kmip_create_key_pair(
        &self,
        s: &KmipSession,
        spec: KmipKeyPairSpec,
        algorithm: u32,
        private_attrs: Vec<Attribute>,
        public_attrs: Vec<Attribute>,
    ) -> Result<(Uuid, Uuid)> {
        let op = async {
            let (kind, length) = match spec {
                KmipKeyPairSpec::Rsa(bits) => {
                    if !matches!(bits, 2048 | 3072 | 4096) {
                        return Err(unsupported(format!(
                            "RSA keys of {bits} bits cannot be created here (2048, 3072 and 4096 can)"
                        )));
                    }
                    (AsymKind::Rsa { bits }, i32::try_from(bits).unwrap_or(0))
                }
                KmipKeyPairSpec::Ec(c) => (AsymKind::Ec(curve_of(c)?), curve_length(c)),
            };
            // What would refuse the pair is checked before any key is made.
            for a in private_attrs.iter().chain(&public_attrs) {
                super::usage::admit(a.clone())?;
            }
            self.check_key_creation(&s.ctx, false).await?;
            self.kmip_check_room(s, 2).await?;
            let (pkcs8, public) = self.provider.asym_generate(kind).map_err(|_| {
                ServiceError::new(ErrorKind::Internal, "key pair generation failed")
            })?;
            // Both keys, each linked to the other, are stored in one write: a refusal of
            // either leaves neither.
            let (private_id, public_id) = (Uuid::new_v4(), Uuid::new_v4());
            let mut private_attrs = private_attrs;
            private_attrs.push(Attribute::new(
                names::LINK,
                link_value(link_type::PUBLIC_KEY, public_id),
            ));
            let mut public_attrs = public_attrs;
            public_attrs.push(Attribute::new(
                names::LINK,
                link_value(link_type::PRIVATE_KEY, private_id),
            ));
            let key = |object_type, format, material, attributes| NewKmipObject {
                object_type,
                format,
                algorithm: Some(algorithm),
                length: Some(length),
                subtype: None,
                presented: None,
                material,
                attributes,
            };
            let private = key(
                object_type::PRIVATE_KEY,
                key_format::PKCS_8,
                pkcs8,
                private_attrs,
            );
            let public = key(
                object_type::PUBLIC_KEY,
                key_format::X_509,
                Zeroizing::new(public.spki),
                public_attrs,
            );
            let records = [
                self.kmip_new_record(s, private_id, private).await?,
                self.kmip_new_record(s, public_id, public).await?,
            ];
            self.kmip_write(&records, &[])
                .await
                .map_err(super::objects::kmip_write_error)?;
            Ok((private_id, public_id))
        };
        self.audited(&s.ctx, Action::KmipCreateKeyPair, Role::Writer, None, op)
            .await
    }

    /// Checks registered material: keys parse as what they claim to be.
    pub(crate) fn check_kmip_material(&self, new: &NewKmipObject) -> Result<()> {
        let bad = |what: &str| {
            ServiceError::new(
                ErrorKind::InvalidField,
                format!("The key material is not {what}"),
            )
        };
        if new.material.is_empty() {
            return Err(bad("present"));
        }
        match (new.object_type, new.format) {
            // A key this server cannot use itself (RSA below 2048 bits, another curve) is
            // still kept for its clients, as long as its encoding holds together.
            (object_type::PRIVATE_KEY, key_format::PKCS_8) => {
                if self.provider.prepare_private(&new.material).is_ok()
                    || strongroom_engine::der::pkcs8_algorithm(&new.material).is_some()
                {
                    Ok(())
                } else {
                    Err(bad("a PKCS#8 private key"))
                }
            }
            (object_type::PUBLIC_KEY, key_format::X_509) => {
                if self.provider.public_info(&new.material).is_ok()
                    || strongroom_engine::der::spki(&new.material).is_some()
                {
                    Ok(())
                } else {
                    Err(bad("a SubjectPublicKeyInfo"))
                }
            }
            (object_type::SYMMETRIC_KEY, key_format::RAW)
            | (object_type::SECRET_DATA, key_format::RAW | key_format::OPAQUE)
            | (object_type::OPAQUE_OBJECT, _)
            | (object_type::CERTIFICATE, key_format::X_509) => Ok(()),
            // Kept as sent; the server does not use such keys itself.
            (object_type::PRIVATE_KEY | object_type::PUBLIC_KEY, key_format::RAW) => Ok(()),
            (t, f) => Err(unsupported(format!(
                "objects of type {t} in key format {f} cannot be registered here"
            ))),
        }
    }

    /// ReKey: a new symmetric key of the same algorithm and length with the old one's
    /// client attributes; the two are linked (Replacement/Replaced Object). As KMIP's
    /// Re-key rules say, the replacement takes over the existing key's Names (a Locate by
    /// name then finds only the replacement), and its dates are the existing key's: copied
    /// without `offset`, and with it moved so that its Activation Date is `offset` seconds
    /// from now (see [`rekey_dates`]). Its state follows from those dates.
    pub async fn kmip_rekey(&self, s: &KmipSession, id: &str, offset: Option<u32>) -> Result<Uuid> {
        let op = async {
            // The existing key, if it can be re-keyed.
            let read = || async {
                let r = self.kmip_record(s, id).await?;
                if r.object_type != object_type::SYMMETRIC_KEY {
                    return Err(unsupported("ReKey applies to symmetric keys"));
                }
                if KmipState::from_code(r.state).is_none_or(KmipState::is_destroyed) {
                    return Err(ServiceError::new(
                        ErrorKind::InvalidKeyState,
                        "The object is destroyed: it cannot be re-keyed",
                    ));
                }
                let st = super::objects::stored(&r)?;
                Ok((r, st))
            };
            let (mut r, mut st) = read().await?;
            self.check_key_creation(&s.ctx, false).await?;
            let length = st.length.unwrap_or(256);
            let mut key = Zeroizing::new(vec![0u8; usize::try_from(length / 8).unwrap_or(32)]);
            self.provider
                .fill_random(&mut key)
                .map_err(|_| ServiceError::new(ErrorKind::Internal, "random generator failed"))?;
            let new_id = Uuid::new_v4();
            // The replacement and the existing key's change (its Names gone, its link to
            // the replacement) are one write; a concurrent change of the existing key is
            // read again and retried.
            for attempt in 0..super::objects::CHANGE_TRIES {
                if attempt > 0 {
                    self.kmip_backoff(attempt).await;
                }
                let mut attrs: Vec<Attribute> = st
                    .attrs
                    .iter()
                    .filter(|a| {
                        let n = a.name.as_str();
                        !NOT_CARRIED_BY_REKEY.contains(&n) && !names::SERVER_MAINTAINED.contains(&n)
                    })
                    .cloned()
                    .collect();
                attrs.push(Attribute::new(
                    names::LINK,
                    link_value(link_type::REPLACED_OBJECT, r.id),
                ));
                let now = self.kmip_now();
                attrs.extend(rekey_dates(&st, now, offset));
                let replacement = NewKmipObject {
                    object_type: object_type::SYMMETRIC_KEY,
                    format: key_format::RAW,
                    algorithm: st.algorithm,
                    length: Some(length),
                    subtype: None,
                    presented: None,
                    material: key.clone(),
                    attributes: attrs,
                };
                let replacement = self.kmip_new_record(s, new_id, replacement).await?;
                st.attrs.retain(|a| a.name != names::NAME);
                st.attrs.push(Attribute::new(
                    names::LINK,
                    link_value(link_type::REPLACEMENT_OBJECT, new_id),
                ));
                self.kmip_restamp(s, &mut r, &mut st)?;
                let written = self
                    .kmip_write(std::slice::from_ref(&replacement), std::slice::from_ref(&r))
                    .await;
                match written {
                    Ok(()) => return Ok(new_id),
                    Err(StoreError::Conflict) => (r, st) = read().await?,
                    Err(e) => return Err(super::objects::kmip_write_error(e)),
                }
            }
            Err(ServiceError::new(
                ErrorKind::Conflict,
                "the object was changed concurrently; retry",
            ))
        };
        self.audited(&s.ctx, Action::KmipReKey, Role::Writer, Some(id), op)
            .await
    }

    async fn kmip_key(&self, s: &KmipSession, id: &str) -> Result<KmipManaged> {
        let now = self.kmip_now();
        self.kmip_cached(s, id).await?.managed(now).ok_or_else(|| {
            ServiceError::new(
                ErrorKind::InvalidKeyState,
                "The object is destroyed: it cannot be used",
            )
        })
    }

    /// The asymmetric key `id` for a signature operation: usable to `verb`, and a private
    /// key in PKCS#8 (signing) or a public key in X.509 (verifying); else `refusal`.
    async fn signature_key(
        &self,
        s: &KmipSession,
        id: &str,
        use_: KeyUse,
        refusal: &'static str,
    ) -> Result<KmipManaged> {
        let k = self.kmip_key(s, id).await?;
        usable(&k, use_)?;
        let want = if use_ == KeyUse::Verify {
            (object_type::PUBLIC_KEY, key_format::X_509)
        } else {
            (object_type::PRIVATE_KEY, key_format::PKCS_8)
        };
        if (k.object_type, k.format) != want {
            return Err(ServiceError::new(ErrorKind::InvalidField, refusal));
        }
        Ok(k)
    }

    /// Encrypt with a symmetric key. Returns (ciphertext, IV the server chose, tag).
    pub async fn kmip_encrypt(
        &self,
        s: &KmipSession,
        id: &str,
        cipher: KmipCipher,
        iv: Option<Vec<u8>>,
        aad: &[u8],
        data: &[u8],
    ) -> Result<(Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>)> {
        let op = async {
            check_data(data)?;
            let k = self.kmip_key(s, id).await?;
            usable(&k, KeyUse::Encrypt)?;
            self.symmetric_key(&k)?;
            let out = match cipher {
                KmipCipher::AesGcm { tag_len } => {
                    let (nonce, chosen) = match iv {
                        Some(v) => (
                            <[u8; 12]>::try_from(v.as_slice()).map_err(|_| {
                                unsupported("AES-GCM takes a 12-byte IV/Counter/Nonce")
                            })?,
                            None,
                        ),
                        None => {
                            let mut n = [0u8; 12];
                            self.provider.fill_random(&mut n).map_err(|_| {
                                ServiceError::new(ErrorKind::Internal, "random generator failed")
                            })?;
                            (n, Some(n.to_vec()))
                        }
                    };
                    let key = self
                        .provider
                        .aead_key(AeadAlg::AesGcm, &k.material)
                        .map_err(|_| crypto_failed("the key cannot be used for AES-GCM"))?;
                    let mut buf = data.to_vec();
                    key.seal(&nonce, aad, &mut buf)
                        .map_err(|_| crypto_failed("encryption failed"))?;
                    let tag = buf.split_off(buf.len() - 16);
                    (buf, chosen, Some(tag[..tag_len].to_vec()))
                }
                KmipCipher::AesCbc { pad } => {
                    let (iv, chosen) = match iv {
                        Some(v) if v.len() == 16 => (v, None),
                        Some(_) => return Err(unsupported("AES-CBC takes a 16-byte IV")),
                        None => {
                            let mut n = vec![0u8; 16];
                            self.provider.fill_random(&mut n).map_err(|_| {
                                ServiceError::new(ErrorKind::Internal, "random generator failed")
                            })?;
                            (n.clone(), Some(n))
                        }
                    };
                    let mode = if pad {
                        CipherMode::CbcPad
                    } else {
                        CipherMode::Cbc
                    };
                    let ct = self
                        .provider
                        .block_encrypt(BlockCipher::Aes, mode, &k.material, &iv, data)
                        .map_err(|_| {
                            ServiceError::new(
                                ErrorKind::InvalidField,
                                "AES-CBC without padding takes whole 16-byte blocks",
                            )
                        })?;
                    (ct, chosen, None)
                }
            };
            self.kmip_spend(s, &k, data.len()).await?;
            Ok(out)
        };
        self.audited(&s.ctx, Action::KmipEncrypt, Role::Writer, Some(id), op)
            .await
    }

    /// Decrypt with a symmetric key.
    #[allow(clippy::too_many_arguments)]
    pub async fn kmip_decrypt(
        &self,
        s: &KmipSession,
        id: &str,
        cipher: KmipCipher,
        iv: Option<Vec<u8>>,
        aad: &[u8],
        data: &[u8],
        tag: Option<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let op = async {
            check_data(data)?;
            let k = self.kmip_key(s, id).await?;
            usable(&k, KeyUse::Decrypt)?;
            self.symmetric_key(&k)?;
            let iv = iv.ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::InvalidField,
                    "Decrypt needs the IV/Counter/Nonce",
                )
            })?;
            match cipher {
                KmipCipher::AesGcm { .. } => {
                    let nonce = <[u8; 12]>::try_from(iv.as_slice())
                        .map_err(|_| unsupported("AES-GCM takes a 12-byte IV/Counter/Nonce"))?;
                    let tag = tag.filter(|t| t.len() == 16).ok_or_else(|| {
                        unsupported("AES-GCM decryption takes the full 16-byte tag")
                    })?;
                    let key = self
                        .provider
                        .aead_key(AeadAlg::AesGcm, &k.material)
                        .map_err(|_| crypto_failed("the key cannot be used for AES-GCM"))?;
                    let mut buf = Zeroizing::new(data.to_vec());
                    buf.extend_from_slice(&tag);
                    key.open(&nonce, aad, &mut buf).map_err(|_| {
                        crypto_failed("the ciphertext, tag or additional data is not authentic")
                    })?;
                    Ok(buf)
                }
                KmipCipher::AesCbc { pad } => {
                    let mode = if pad {
                        CipherMode::CbcPad
                    } else {
                        CipherMode::Cbc
                    };
                    self.provider
                        .block_decrypt(BlockCipher::Aes, mode, &k.material, &iv, data)
                        .map_err(|_| crypto_failed("decryption failed (wrong key, IV or padding)"))
                }
            }
        };
        self.audited(&s.ctx, Action::KmipDecrypt, Role::Writer, Some(id), op)
            .await
    }

    fn symmetric_key(&self, k: &KmipManaged) -> Result<()> {
        if k.object_type != object_type::SYMMETRIC_KEY || k.algorithm != Some(algorithm::AES) {
            return Err(ServiceError::new(
                ErrorKind::InvalidField,
                "Encrypt and Decrypt take an AES symmetric key",
            ));
        }
        Ok(())
    }

    /// Sign with a private key. `data` is the message; the server hashes it.
    pub async fn kmip_sign(
        &self,
        s: &KmipSession,
        id: &str,
        sig: KmipSignature,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let op = async {
            if scheme_of(sig).1 == KmipHash::Sha1 && self.mechanism_policy().fips {
                return Err(unsupported(
                    "SHA-1 signatures are not approved in FIPS mode (NIST SP 800-131A Rev. 2); \
                     verifying existing ones stays",
                ));
            }
            check_data(data)?;
            let k = self
                .signature_key(s, id, KeyUse::Sign, "Sign takes a private key")
                .await?;
            let key = self
                .provider
                .prepare_private(&k.material)
                .map_err(|_| crypto_failed("the private key cannot be used"))?;
            let (scheme, hash) = scheme_of(sig);
            let digest = self.provider.digest(digest_of(hash), data);
            let out = key
                .sign(scheme, &digest_for(sig, &digest, key.public()))
                .map_err(|_| unsupported("the key does not fit the signature parameters"))?;
            self.kmip_spend(s, &k, data.len()).await?;
            Ok(match sig {
                KmipSignature::Ecdsa(_) => ecdsa_der(&out),
                _ => out,
            })
        };
        self.audited(&s.ctx, Action::KmipSign, Role::Writer, Some(id), op)
            .await
    }

    /// SignatureVerify with a public key.
    pub async fn kmip_verify(
        &self,
        s: &KmipSession,
        id: &str,
        sig: KmipSignature,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        let op = async {
            check_data(data)?;
            let k = self
                .signature_key(s, id, KeyUse::Verify, "SignatureVerify takes a public key")
                .await?;
            let public = self
                .provider
                .public_info(&k.material)
                .map_err(|_| crypto_failed("the public key cannot be used"))?;
            let (scheme, hash) = scheme_of(sig);
            let digest = self.provider.digest(digest_of(hash), data);
            let signature = match (sig, public.kind) {
                (KmipSignature::Ecdsa(_), AsymKind::Ec(c)) => {
                    match ecdsa_raw(signature, c.field_len()) {
                        Some(raw) => raw,
                        None => return Ok(false),
                    }
                }
                _ => signature.to_vec(),
            };
            Ok(self.provider.verify(
                scheme,
                &public,
                &digest_for(sig, &digest, &public),
                &signature,
            ))
        };
        self.audited(
            &s.ctx,
            Action::KmipSignatureVerify,
            Role::Reader,
            Some(id),
            op,
        )
        .await
    }

    /// MAC (HMAC) with a symmetric key.
    pub async fn kmip_mac(
        &self,
        s: &KmipSession,
        id: &str,
        hash: Option<KmipHash>,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let op = async {
            check_data(data)?;
            let k = self.kmip_key(s, id).await?;
            usable(&k, KeyUse::Mac)?;
            if k.object_type != object_type::SYMMETRIC_KEY {
                return Err(ServiceError::new(
                    ErrorKind::InvalidField,
                    "MAC takes a symmetric key",
                ));
            }
            let hash = match (hash, k.algorithm) {
                (Some(h), _) => h,
                (None, Some(algorithm::HMAC_SHA1)) => KmipHash::Sha1,
                (None, Some(algorithm::HMAC_SHA384)) => KmipHash::Sha384,
                (None, Some(algorithm::HMAC_SHA512)) => KmipHash::Sha512,
                (None, _) => KmipHash::Sha256,
            };
            let mac = self
                .provider
                .mac(MacAlg::Hmac(digest_of(hash)), &k.material, data)
                .map_err(|_| crypto_failed("the MAC cannot be computed with this key"))?;
            self.kmip_spend(s, &k, data.len()).await?;
            Ok(mac)
        };
        self.audited(&s.ctx, Action::KmipMac, Role::Writer, Some(id), op)
            .await
    }
}

fn scheme_of(sig: KmipSignature) -> (SignScheme, KmipHash) {
    match sig {
        KmipSignature::RsaPss(h) => (SignScheme::RsaPss(digest_of(h)), h),
        KmipSignature::RsaPkcs1(h) => (SignScheme::RsaPkcs1(digest_of(h)), h),
        KmipSignature::Ecdsa(h) => (SignScheme::EcdsaDigest, h),
    }
}

/// ECDSA signs a digest cut or padded to the curve's order length; the RSA schemes take
/// the digest as it is.
fn digest_for(
    sig: KmipSignature,
    digest: &[u8],
    public: &strongroom_engine::provider::PublicInfo,
) -> Vec<u8> {
    match (sig, public.kind) {
        (KmipSignature::Ecdsa(_), AsymKind::Ec(c)) => {
            let n = c.digest_len();
            if digest.len() >= n {
                digest[..n].to_vec()
            } else {
                let mut v = vec![0u8; n - digest.len()];
                v.extend_from_slice(digest);
                v
            }
        }
        _ => digest.to_vec(),
    }
}
