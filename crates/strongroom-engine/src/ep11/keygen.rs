//! Key and key-pair generation, domain parameters, check values.

use super::*;

impl Ep11<'_> {
    pub(super) fn check_value(&self, key_type: Ckk, value: &[u8]) -> Vec<u8> {
        let p = self.provider.as_ref();
        let kcv = match key_type {
            ckk::AES => p
                .block_encrypt(BlockCipher::Aes, CipherMode::Ecb, value, &[], &[0u8; 16])
                .ok(),
            ckk::DES2 | ckk::DES3 => p
                .block_encrypt(BlockCipher::Des3, CipherMode::Ecb, value, &[], &[0u8; 8])
                .ok(),
            _ => None,
        }
        .unwrap_or_else(|| p.sha256(&[b"strongroom/ep11/kcv/v1", value]).to_vec());
        let mut out = kcv[..3].to_vec();
        out.extend_from_slice(&((value.len() as u32) * 8).to_be_bytes());
        out
    }

    pub(super) fn new_secret(
        &self,
        t: &Template,
        key_type: Ckk,
        value: KeyMaterial,
        local: bool,
        gen: Option<Ckm>,
    ) -> Result<NewKey, Ep11Error> {
        let mut attrs = Attrs::build(t, cko::SECRET_KEY, key_type, local, gen);
        attrs.set(cka::VALUE_LEN, AttrValue::Int(value.len() as i64));
        let checksum = self.check_value(key_type, value.expose());
        let blob = self.seal_key(&attrs, &value)?;
        Ok(NewKey {
            blob,
            checksum,
            attrs,
        })
    }

    pub(super) fn random_secret(
        &self,
        key_type: Ckk,
        len: usize,
    ) -> Result<KeyMaterial, Ep11Error> {
        let p = self.provider.as_ref();
        for _ in 0..16 {
            let mut v = Zeroizing::new(vec![0u8; len]);
            p.fill_random(&mut v)
                .map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "random generator failed"))?;
            if matches!(key_type, ckk::DES2 | ckk::DES3) {
                for b in v.iter_mut() {
                    // Odd parity in the low bit of every byte, as DES keys carry it.
                    *b = (*b & 0xfe) | u8::from((*b >> 1).count_ones() % 2 == 0);
                }
                // aws-lc refuses weak keys and keys with equal parts: draw again.
                if p.block_encrypt(BlockCipher::Des3, CipherMode::Ecb, &v, &[], &[0u8; 8])
                    .is_err()
                {
                    continue;
                }
            }
            return Ok(KeyMaterial::new(v.to_vec()));
        }
        err(ckr::GENERAL_ERROR, "could not draw a valid key")
    }

    /// `GenerateKey` (AES, DES2/DES3, generic secret).
    pub fn generate_key(&self, mech: &Mech, t: &Template) -> Result<NewKey, Ep11Error> {
        no_param(mech)?;
        self.offered(mech.code, ckf::GENERATE)?;
        if matches!(
            mech.code,
            ckm::DSA_PARAMETER_GEN | ckm::DH_PKCS_PARAMETER_GEN
        ) {
            attrs::check_template(t, cko::DOMAIN_PARAMETERS)?;
            return self.parameter_gen(mech.code == ckm::DH_PKCS_PARAMETER_GEN, t);
        }
        attrs::check_template(t, cko::SECRET_KEY)?;
        let (key_type, len) = match mech.code {
            ckm::AES_KEY_GEN => (
                ckk::AES,
                attrs::ulong(t, cka::VALUE_LEN).ok_or_else(|| {
                    Ep11Error::new(
                        ckr::TEMPLATE_INCOMPLETE,
                        "CKM_AES_KEY_GEN needs CKA_VALUE_LEN (16, 24 or 32)",
                    )
                })?,
            ),
            // IBM's examples send CKA_VALUE_LEN 32 with DES3: the length is fixed, so ignore it.
            ckm::DES2_KEY_GEN => (ckk::DES2, 16),
            ckm::DES3_KEY_GEN => (ckk::DES3, 24),
            ckm::GENERIC_SECRET_KEY_GEN => (
                ckk::GENERIC_SECRET,
                attrs::ulong(t, cka::VALUE_LEN).ok_or_else(|| {
                    Ep11Error::new(
                        ckr::TEMPLATE_INCOMPLETE,
                        "CKM_GENERIC_SECRET_KEY_GEN needs CKA_VALUE_LEN",
                    )
                })?,
            ),
            c => {
                return err(
                    ckr::MECHANISM_INVALID,
                    format!(
                    "mechanism 0x{c:x} does not generate secret keys here (see GetMechanismList)"
                ),
                )
            }
        };
        if let Some(kt) = attrs::key_type_in(t) {
            if kt != key_type {
                return err(
                    ckr::TEMPLATE_INCONSISTENT,
                    format!("CKA_KEY_TYPE {kt:#x} does not match the mechanism"),
                );
            }
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if !attrs::secret_len_ok(key_type, len) {
            return err(
                ckr::ATTRIBUTE_VALUE_INVALID,
                format!("CKA_VALUE_LEN {len} is not valid for this key type"),
            );
        }
        let value = self.random_secret(key_type, len)?;
        self.new_secret(t, key_type, value, true, Some(mech.code))
    }

    /// `GenerateKey` with `CKM_DSA_PARAMETER_GEN` or `CKM_DH_PKCS_PARAMETER_GEN`: domain
    /// parameters in the clear (DER Dss-Parms or DHParameter) in place of a blob, as EP11
    /// does; clients pass them back as `CKA_IBM_STRUCT_PARAMS` of the key pair template.
    /// DH parameters are the RFC 7919 group of the requested size (no safe-prime search,
    /// which takes tens of seconds at 2048 bits and gives no better groups).
    pub(super) fn parameter_gen(&self, dh: bool, t: &Template) -> Result<NewKey, Ep11Error> {
        let (name, sizes): (&str, &[u64]) = if dh {
            ("CKM_DH_PKCS_PARAMETER_GEN", &[2048, 3072, 4096, 8192])
        } else {
            ("CKM_DSA_PARAMETER_GEN", &[2048, 3072])
        };
        let bits = attrs::ulong(t, cka::PRIME_BITS).ok_or_else(|| {
            Ep11Error::new(
                ckr::TEMPLATE_INCOMPLETE,
                format!("{name} needs CKA_PRIME_BITS ({sizes:?})"),
            )
        })?;
        if !sizes.contains(&bits) {
            return err(
                ckr::ATTRIBUTE_VALUE_INVALID,
                format!("CKA_PRIME_BITS {bits}: {name} makes parameters of {sizes:?} bits"),
            );
        }
        let made = if dh {
            self.provider.dh_parameters(bits as u32)
        } else {
            self.provider.dsa_parameters(bits as u32)
        };
        let params =
            made.map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "parameter generation failed"))?;
        let mut a = Attrs::default();
        a.set(cka::CLASS, AttrValue::ulong(cko::DOMAIN_PARAMETERS));
        a.set(
            cka::KEY_TYPE,
            AttrValue::ulong(if dh { ckk::DH } else { ckk::DSA }),
        );
        a.set(cka::PRIME_BITS, AttrValue::Int(bits as i64));
        a.set(cka::IBM_STRUCT_PARAMS, AttrValue::Bytes(params.clone()));
        Ok(NewKey {
            blob: params,
            checksum: Vec::new(),
            attrs: a,
        })
    }

    /// `GenerateKeyPair` (RSA, EC on P-256/384/521/secp256k1, Ed25519, DSA): (public, private).
    pub fn generate_key_pair(
        &self,
        mech: &Mech,
        pub_t: &Template,
        priv_t: &Template,
    ) -> Result<(NewKey, NewKey), Ep11Error> {
        no_param(mech)?;
        self.offered(mech.code, ckf::GENERATE_KEY_PAIR)?;
        attrs::check_template(pub_t, cko::PUBLIC_KEY)?;
        attrs::check_template(priv_t, cko::PRIVATE_KEY)?;
        let mut exponent = 65537u64;
        let mut domain_params: Option<Vec<u8>> = None;
        let kind = match mech.code {
            ckm::RSA_PKCS_KEY_PAIR_GEN | ckm::RSA_X9_31_KEY_PAIR_GEN => {
                let bits = attrs::ulong(pub_t, cka::MODULUS_BITS).ok_or_else(|| {
                    Ep11Error::new(
                        ckr::TEMPLATE_INCOMPLETE,
                        "RSA key generation needs CKA_MODULUS_BITS in the public template",
                    )
                })?;
                let e = match pub_t.get(&cka::PUBLIC_EXPONENT) {
                    None => 65537,
                    Some(AttrValue::Int(i)) => u64::try_from(*i).unwrap_or(0),
                    Some(AttrValue::Bytes(b)) if b.len() <= 8 && !b.is_empty() => {
                        b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x))
                    }
                    Some(_) => 0,
                };
                if e < 17 || e.is_multiple_of(2) || e >= 1 << 32 {
                    return err(
                        ckr::ATTRIBUTE_VALUE_INVALID,
                        "CKA_PUBLIC_EXPONENT must be odd, at least 17 and below 2^32",
                    );
                }
                if mech.code == ckm::RSA_X9_31_KEY_PAIR_GEN
                    && !bits
                        .checked_sub(1024)
                        .is_some_and(|b| b.is_multiple_of(256))
                {
                    return err(
                        ckr::KEY_SIZE_RANGE,
                        format!("X9.31 keys have 1024 + 256·s bits; {bits} is not one"),
                    );
                }
                if !(2048..=8192).contains(&bits) || !bits.is_multiple_of(128) {
                    return err(
                        ckr::KEY_SIZE_RANGE,
                        format!("RSA modulus of {bits} bits: 2048 to 8192 bits in steps of 128 are generated"),
                    );
                }
                exponent = e;
                AsymKind::Rsa { bits: bits as u32 }
            }
            ckm::DSA_KEY_PAIR_GEN => {
                let params = attrs::bytes(pub_t, cka::IBM_STRUCT_PARAMS)
                    .or_else(|| attrs::bytes(priv_t, cka::IBM_STRUCT_PARAMS))
                    .ok_or_else(|| {
                        Ep11Error::new(
                            ckr::TEMPLATE_INCOMPLETE,
                            "DSA key generation needs the domain parameters as CKA_IBM_STRUCT_PARAMS (from CKM_DSA_PARAMETER_GEN)",
                        )
                    })?;
                domain_params = Some(params.to_vec());
                AsymKind::Dsa { bits: 0, q_len: 0 }
            }
            ckm::DH_PKCS_KEY_PAIR_GEN => {
                let params = attrs::bytes(pub_t, cka::IBM_STRUCT_PARAMS)
                    .or_else(|| attrs::bytes(priv_t, cka::IBM_STRUCT_PARAMS))
                    .ok_or_else(|| {
                        Ep11Error::new(
                            ckr::TEMPLATE_INCOMPLETE,
                            "DH key generation needs the domain parameters as CKA_IBM_STRUCT_PARAMS (from CKM_DH_PKCS_PARAMETER_GEN)",
                        )
                    })?;
                domain_params = Some(params.to_vec());
                AsymKind::Dh { bits: 0 }
            }
            ckm::EC_KEY_PAIR_GEN => {
                let params = attrs::bytes(pub_t, cka::EC_PARAMS)
                    .or_else(|| attrs::bytes(priv_t, cka::EC_PARAMS))
                    .ok_or_else(|| {
                        Ep11Error::new(
                            ckr::TEMPLATE_INCOMPLETE,
                            "EC key generation needs CKA_EC_PARAMS",
                        )
                    })?;
                let c = curve_of_params(params).ok_or_else(|| {
                    Ep11Error::new(
                        ckr::CURVE_NOT_SUPPORTED,
                        "curve not supported: P-256, P-384, P-521, secp256k1, Ed25519 and X25519 are",
                    )
                })?;
                self.fips_curve(c)?;
                if let (Some(a), Some(b)) = (
                    attrs::bytes(pub_t, cka::EC_PARAMS),
                    attrs::bytes(priv_t, cka::EC_PARAMS),
                ) {
                    if curve_of_params(a) != curve_of_params(b) {
                        return err(
                            ckr::TEMPLATE_INCONSISTENT,
                            "the public and private templates name different curves",
                        );
                    }
                }
                AsymKind::Ec(c)
            }
            ckm::ML_DSA_KEY_PAIR_GEN => {
                let set = match parameter_set(pub_t, priv_t, "ML-DSA")? {
                    ckp::ML_DSA_44 => MlDsaSet::P44,
                    ckp::ML_DSA_65 => MlDsaSet::P65,
                    ckp::ML_DSA_87 => MlDsaSet::P87,
                    n => {
                        return bad_parameter_set(
                            "ML-DSA",
                            n,
                            "1 (ML-DSA-44), 2 (ML-DSA-65) or 3 (ML-DSA-87)",
                        )
                    }
                };
                AsymKind::MlDsa(set)
            }
            ckm::ML_KEM_KEY_PAIR_GEN => {
                let set = match parameter_set(pub_t, priv_t, "ML-KEM")? {
                    ckp::ML_KEM_512 => MlKemSet::K512,
                    ckp::ML_KEM_768 => MlKemSet::K768,
                    ckp::ML_KEM_1024 => MlKemSet::K1024,
                    n => {
                        return bad_parameter_set(
                            "ML-KEM",
                            n,
                            "1 (ML-KEM-512), 2 (ML-KEM-768) or 3 (ML-KEM-1024)",
                        )
                    }
                };
                AsymKind::MlKem(set)
            }
            c => {
                return err(
                    ckr::MECHANISM_INVALID,
                    format!(
                        "mechanism 0x{c:x} does not generate key pairs here (see GetMechanismList)"
                    ),
                )
            }
        };
        let kt = key_type_of(kind);
        for t in [pub_t, priv_t] {
            if let Some(x) = attrs::key_type_in(t) {
                if x != kt {
                    return err(
                        ckr::TEMPLATE_INCONSISTENT,
                        format!("CKA_KEY_TYPE {x:#x} does not match the mechanism"),
                    );
                }
            }
        }
        let fail = |_| Ep11Error::new(ckr::GENERAL_ERROR, "key generation failed");
        let (pkcs8, info) = match (kind, &domain_params) {
            (AsymKind::Dsa { .. }, Some(p)) => self.provider.dsa_generate(p).map_err(|_| {
                Ep11Error::new(
                    ckr::DOMAIN_PARAMS_INVALID,
                    "CKA_IBM_STRUCT_PARAMS is not a DER Dss-Parms of usable DSA parameters",
                )
            })?,
            (AsymKind::Dh { .. }, Some(p)) => self.provider.dh_generate(p).map_err(|_| {
                Ep11Error::new(
                    ckr::DOMAIN_PARAMS_INVALID,
                    "CKA_IBM_STRUCT_PARAMS is not a DER DHParameter of at least 2048 bits",
                )
            })?,
            (AsymKind::Rsa { bits }, _)
                if exponent != 65537 || !matches!(bits, 2048 | 3072 | 4096 | 8192) =>
            {
                self.provider
                    .rsa_generate_with(bits, exponent)
                    .map_err(fail)?
            }
            _ => self.provider.asym_generate(kind).map_err(fail)?,
        };
        let mut pa = Attrs::build(pub_t, cko::PUBLIC_KEY, kt, true, Some(mech.code));
        add_public_attrs(&mut pa, &info);
        let mut sa = Attrs::build(priv_t, cko::PRIVATE_KEY, kt, true, Some(mech.code));
        add_public_attrs(&mut sa, &info);
        // The private half of a trusted public KEK is trusted too, so that the rules of a
        // trusted key hold for what it unwraps (and it does not decrypt what its public half
        // wrapped).
        if pa.flag(cka::TRUSTED) {
            sa.set(cka::TRUSTED, AttrValue::Bool(true));
        }
        let public = NewKey {
            blob: self.mac_public(&info.spki, &pa)?,
            checksum: public_checksum(&info),
            attrs: pa,
        };
        let private = NewKey {
            blob: self.seal_key(&sa, &KeyMaterial::new(pkcs8.to_vec()))?,
            checksum: public_checksum(&info),
            attrs: sa,
        };
        Ok((public, private))
    }
}

/// `CKA_PARAMETER_SET` of a key pair template (public or private; both must agree).
fn parameter_set(pub_t: &Template, priv_t: &Template, alg: &str) -> Result<u64, Ep11Error> {
    let a = attrs::ulong(pub_t, cka::PARAMETER_SET);
    let b = attrs::ulong(priv_t, cka::PARAMETER_SET);
    match (a, b) {
        (Some(x), Some(y)) if x != y => err(
            ckr::TEMPLATE_INCONSISTENT,
            "the public and private templates name different parameter sets",
        ),
        (Some(x), _) | (None, Some(x)) => Ok(x),
        (None, None) => err(
            ckr::TEMPLATE_INCOMPLETE,
            format!("{alg} key generation needs CKA_PARAMETER_SET in the public template"),
        ),
    }
}

fn bad_parameter_set<T>(alg: &str, n: u64, valid: &str) -> Result<T, Ep11Error> {
    err(
        ckr::ATTRIBUTE_VALUE_INVALID,
        format!("CKA_PARAMETER_SET {n} is not an {alg} parameter set: {valid} are"),
    )
}
