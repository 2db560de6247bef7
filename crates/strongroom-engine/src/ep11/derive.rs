//! Key derivation: ECDH (and X25519), DH, ML-KEM, generic-secret derivations, EC multiply.

use super::*;

impl Ep11<'_> {
    /// `DeriveKey`: ECDH1 (KDF NULL), DH, SHA*_KEY_DERIVATION, the concatenations, and
    /// ML-KEM: with a public key it encapsulates (the ciphertext follows the 7-byte check
    /// value in CheckSum, where IBM's Kyber puts it), with a private key it decapsulates
    /// the ciphertext given in ParameterB.
    pub fn derive(&self, mech: &Mech, base: &[u8], t: &Template) -> Result<NewKey, Ep11Error> {
        self.offered(mech.code, ckf::DERIVE)?;
        match mech.code {
            ckm::IBM_BTC_DERIVE => return self.btc_derive(mech, base, t),
            ckm::IBM_EC_AGGREGATE => return self.aggregate_public_keys(mech, base, t),
            _ => {}
        }
        let class = attrs::class_in(t).unwrap_or(cko::SECRET_KEY);
        if class != cko::SECRET_KEY {
            return err(ckr::TEMPLATE_INCONSISTENT, "DeriveKey creates secret keys");
        }
        attrs::check_template(t, cko::SECRET_KEY)?;
        let b = self.resolve(base, Role::Key)?;
        self.fips_key(&b)?;
        permit(&b, cka::DERIVE, "CKA_DERIVE", mech.code)?;
        no_easier_to_export(&b, t, "base key")?;
        // ML-KEM encapsulation hands the ciphertext back after the new key's check value.
        let mut ciphertext: Option<Vec<u8>> = None;
        let secret: Zeroizing<Vec<u8>> = match mech.code {
            ckm::ML_KEM => match &b.body {
                Body::Public(info) => {
                    if !matches!(info.kind, AsymKind::MlKem(_)) {
                        return err(
                            ckr::KEY_TYPE_INCONSISTENT,
                            "CKM_ML_KEM encapsulates to an ML-KEM public key",
                        );
                    }
                    no_param(mech)?;
                    let (ct, ss) = self.provider.ml_kem_encapsulate(info).map_err(|_| {
                        Ep11Error::new(ckr::GENERAL_ERROR, "ML-KEM encapsulation failed")
                    })?;
                    ciphertext = Some(ct);
                    ss
                }
                Body::Private(pk) => {
                    let AsymKind::MlKem(set) = pk.public().kind else {
                        return err(
                            ckr::KEY_TYPE_INCONSISTENT,
                            "CKM_ML_KEM decapsulates with an ML-KEM private key",
                        );
                    };
                    let MechParam::Bytes(ct) = &mech.param else {
                        return err(
                            ckr::MECHANISM_PARAM_INVALID,
                            "CKM_ML_KEM decapsulation needs the ciphertext in ParameterB",
                        );
                    };
                    if ct.len() != set.ciphertext_len() {
                        return err(
                            ckr::ENCRYPTED_DATA_LEN_RANGE,
                            format!(
                                "an {} ciphertext has {} bytes, not {}",
                                set.name(),
                                set.ciphertext_len(),
                                ct.len()
                            ),
                        );
                    }
                    pk.decapsulate(ct).map_err(|_| {
                        Ep11Error::new(ckr::GENERAL_ERROR, "ML-KEM decapsulation failed")
                    })?
                }
                Body::Secret(_) => {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "CKM_ML_KEM needs an ML-KEM public key (encapsulate) or private key (decapsulate)",
                    )
                }
            },
            ckm::ECDH1_DERIVE | ckm::IBM_EC_X25519 => {
                let peer = match &mech.param {
                    MechParam::Bytes(p) => p.clone(),
                    MechParam::Ecdh {
                        kdf,
                        shared,
                        public,
                    } => {
                        if !matches!(kdf, 0 | 1) || !shared.is_empty() {
                            return err(
                                ckr::MECHANISM_PARAM_INVALID,
                                "ECDH1: only CKD_NULL without shared data is implemented",
                            );
                        }
                        public.clone()
                    }
                    _ => {
                        return err(
                            ckr::MECHANISM_PARAM_INVALID,
                            "ECDH needs the peer's public point (ParameterB or ECDH1DeriveParm)",
                        )
                    }
                };
                let Body::Private(pk) = &b.body else {
                    return err(ckr::KEY_TYPE_INCONSISTENT, "ECDH needs an EC private key");
                };
                match (mech.code, pk.public().kind) {
                    (ckm::ECDH1_DERIVE, AsymKind::Ec(c)) if c.is_ecdsa() => {}
                    (ckm::IBM_EC_X25519, AsymKind::Ec(Curve::X25519)) => {}
                    (ckm::ECDH1_DERIVE, _) => {
                        return err(
                            ckr::KEY_TYPE_INCONSISTENT,
                            "CKM_ECDH1_DERIVE needs an EC private key on P-256, P-384, P-521 or \
                             secp256k1 (X25519 keys agree with CKM_IBM_EC_X25519)",
                        )
                    }
                    _ => {
                        return err(
                            ckr::KEY_TYPE_INCONSISTENT,
                            "CKM_IBM_EC_X25519 needs an X25519 private key",
                        )
                    }
                }
                // Accept the peer's point or its whole SPKI.
                let point = match self.provider.public_info(&peer) {
                    Ok(info) => info.raw,
                    Err(_) => peer,
                };
                pk.agree(&point).map_err(|_| {
                    Ep11Error::new(
                        ckr::MECHANISM_PARAM_INVALID,
                        "the peer's public point is not a valid point on the key's curve",
                    )
                })?
            }
            ckm::DH_PKCS_DERIVE => {
                let MechParam::Bytes(peer) = &mech.param else {
                    return err(
                        ckr::MECHANISM_PARAM_INVALID,
                        "CKM_DH_PKCS_DERIVE needs the peer's public value (big-endian) in ParameterB",
                    );
                };
                let Body::Private(pk) = &b.body else {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "DH derivation needs a DH private key",
                    );
                };
                if !matches!(pk.public().kind, AsymKind::Dh { .. }) {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "DH derivation needs a DH private key",
                    );
                }
                pk.agree(peer).map_err(|_| {
                    Ep11Error::new(
                        ckr::MECHANISM_PARAM_INVALID,
                        "the peer's public value is not valid in the key's group",
                    )
                })?
            }
            ckm::CONCATENATE_BASE_AND_DATA
            | ckm::CONCATENATE_DATA_AND_BASE
            | ckm::XOR_BASE_AND_DATA
            | ckm::CONCATENATE_BASE_AND_KEY => {
                let Body::Secret(base) = &b.body else {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "this derivation needs a secret base key",
                    );
                };
                let MechParam::Bytes(data) = &mech.param else {
                    return err(
                        ckr::MECHANISM_PARAM_INVALID,
                        "this derivation needs its data (or, for CONCATENATE_BASE_AND_KEY, the second key blob) in ParameterB",
                    );
                };
                let base = base.expose();
                match mech.code {
                    ckm::CONCATENATE_BASE_AND_DATA => Zeroizing::new([base, data].concat()),
                    ckm::CONCATENATE_DATA_AND_BASE => {
                        Zeroizing::new([data.as_slice(), base].concat())
                    }
                    ckm::XOR_BASE_AND_DATA => {
                        // A shorter result would hold only the first bytes of the base key
                        // (see the whole-result rule below).
                        if data.len() < base.len() {
                            return err(
                                ckr::MECHANISM_PARAM_INVALID,
                                format!(
                                    "XOR_BASE_AND_DATA needs at least as many bytes of data as \
                                     the base key has ({})",
                                    base.len()
                                ),
                            );
                        }
                        Zeroizing::new(base.iter().zip(data.iter()).map(|(a, b)| a ^ b).collect())
                    }
                    _ => {
                        let other = self.resolve(data, Role::Key)?;
                        permit(&other, cka::DERIVE, "CKA_DERIVE", mech.code)?;
                        let Body::Secret(o) = &other.body else {
                            return err(
                                ckr::KEY_TYPE_INCONSISTENT,
                                "CONCATENATE_BASE_AND_KEY joins two secret keys",
                            );
                        };
                        // The result may leave only as both keys may.
                        no_easier_to_export(&other, t, "second key")?;
                        Zeroizing::new([base, o.expose()].concat())
                    }
                }
            }
            ckm::SHA1_KEY_DERIVATION
            | ckm::SHA224_KEY_DERIVATION
            | ckm::SHA256_KEY_DERIVATION
            | ckm::SHA384_KEY_DERIVATION
            | ckm::SHA512_KEY_DERIVATION => {
                no_param(mech)?;
                let d = match mech.code {
                    ckm::SHA1_KEY_DERIVATION => DigestAlg::Sha1,
                    ckm::SHA224_KEY_DERIVATION => DigestAlg::Sha224,
                    ckm::SHA256_KEY_DERIVATION => DigestAlg::Sha256,
                    ckm::SHA384_KEY_DERIVATION => DigestAlg::Sha384,
                    _ => DigestAlg::Sha512,
                };
                let Body::Secret(m) = &b.body else {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "SHA*_KEY_DERIVATION needs a secret base key",
                    );
                };
                Zeroizing::new(self.provider.digest(d, m.expose()))
            }
            c => {
                return err(
                    ckr::MECHANISM_INVALID,
                    format!("mechanism 0x{c:x} does not derive keys here (see GetMechanismList)"),
                )
            }
        };
        let kt = attrs::key_type_in(t).unwrap_or(ckk::GENERIC_SECRET);
        let len = match attrs::ulong(t, cka::VALUE_LEN) {
            Some(0) | None if kt == ckk::GENERIC_SECRET => secret.len(),
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => match kt {
                ckk::DES2 => 16,
                ckk::DES3 => 24,
                _ => {
                    return err(
                        ckr::TEMPLATE_INCOMPLETE,
                        "DeriveKey needs CKA_VALUE_LEN for this key type",
                    )
                }
            },
        };
        // The mechanisms that copy the base key's bytes into the new key give the whole
        // result or nothing: a shorter key (say the data then one byte of the base key)
        // could be guessed with a MAC or DigestKey oracle, a byte at a time, until the
        // whole base key is known.
        let copies_base = matches!(
            mech.code,
            ckm::CONCATENATE_BASE_AND_DATA
                | ckm::CONCATENATE_DATA_AND_BASE
                | ckm::XOR_BASE_AND_DATA
                | ckm::CONCATENATE_BASE_AND_KEY
        );
        if copies_base && len != secret.len() {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                format!(
                    "this derivation copies the base key's bytes, so the new key takes the \
                     whole result ({} bytes), not {len}",
                    secret.len()
                ),
            );
        }
        if len > secret.len() || !attrs::secret_len_ok(kt, len) {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                format!(
                    "a derived key of {len} bytes is not possible here (the secret has {} bytes)",
                    secret.len()
                ),
            );
        }
        let mut key =
            self.new_secret(t, kt, KeyMaterial::new(secret[..len].to_vec()), false, None)?;
        if let Some(ct) = ciphertext {
            key.checksum.extend_from_slice(&ct);
        }
        Ok(key)
    }
}
