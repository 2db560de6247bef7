//! Wrapping and unwrapping keys.

use super::*;

impl Ep11<'_> {
    /// `WrapKey`: encrypts a key's value (secret) or PKCS#8 (private) under a wrapping key.
    /// `mac_key` is used by `CKM_IBM_ATTRIBUTEBOUND_WRAP` only.
    pub fn wrap(
        &self,
        mech: &Mech,
        key: &[u8],
        kek: &[u8],
        mac_key: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        self.offered(mech.code, ckf::WRAP)?;
        if mech.code == ckm::IBM_ATTRIBUTEBOUND_WRAP {
            no_param(mech)?;
            return self.attrbound_wrap(key, kek, mac_key);
        }
        let k = self.resolve(key, Role::Key)?;
        let w = self.resolve(kek, Role::Wrapping)?;
        let plan = self.planned(mech, Op::Encrypt)?;
        fits(&plan, Op::Encrypt, &w)
            .map_err(|e| Ep11Error::new(ckr::WRAPPING_KEY_TYPE_INCONSISTENT, e.detail))?;
        permit(&w, cka::WRAP, "CKA_WRAP", mech.code)?;
        may_wrap(&k, &w)?;
        let encoding: Zeroizing<Vec<u8>> = match &k.body {
            Body::Secret(m) => Zeroizing::new(m.expose().to_vec()),
            Body::Private(pk) if !matches!(plan, Plan::Rsa { .. }) => Zeroizing::new(pk.pkcs8().to_vec()),
            _ => return err(ckr::KEY_NOT_WRAPPABLE, "this mechanism cannot wrap this kind of key (public keys are not wrapped; RSA wraps secret keys)"),
        };
        let mut st = OpState::start([0; 16], mech, &[], &plan);
        self.step(Op::Encrypt, &plan, Some(&w), &mut st, &encoding, Some(&[])).map_err(|e| match e.ckr {
            ckr::DATA_LEN_RANGE => Ep11Error::new(ckr::KEY_SIZE_RANGE, "the key's length does not fit the wrapping mechanism (use a padding mechanism)"),
            _ => e,
        })
    }

    /// `UnwrapKey`: decrypts wrapped key material and seals it as a new key per template.
    /// `CKM_IBM_TRANSPORTKEY` turns a plain SPKI into a MACed SPKI (the KeK is ignored).
    /// `mac_key` is used by `CKM_IBM_ATTRIBUTEBOUND_WRAP` only (the attributes come from
    /// the wrapped key; the template may only name the matching CKA_KEY_TYPE).
    pub fn unwrap(
        &self,
        mech: &Mech,
        kek: &[u8],
        mac_key: &[u8],
        wrapped: &[u8],
        t: &Template,
    ) -> Result<NewKey, Ep11Error> {
        self.offered(mech.code, ckf::UNWRAP)?;
        if mech.code == ckm::IBM_ATTRIBUTEBOUND_WRAP {
            no_param(mech)?;
            return self.attrbound_unwrap(kek, mac_key, wrapped, attrs::key_type_in(t));
        }
        let class = attrs::class_in(t).unwrap_or(if mech.code == ckm::IBM_TRANSPORTKEY {
            cko::PUBLIC_KEY
        } else {
            cko::SECRET_KEY
        });
        if !matches!(class, cko::SECRET_KEY | cko::PRIVATE_KEY | cko::PUBLIC_KEY) {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "CKA_CLASS must be a secret, private or public key",
            );
        }
        attrs::check_template(t, class)?;
        if mech.code == ckm::IBM_TRANSPORTKEY {
            if class != cko::PUBLIC_KEY {
                return err(
                    ckr::TEMPLATE_INCONSISTENT,
                    "CKM_IBM_TRANSPORTKEY imports public keys",
                );
            }
            let info = self.provider.public_info(wrapped).map_err(|_| {
                Ep11Error::new(
                    ckr::WRAPPED_KEY_INVALID,
                    "Wrapped is not a SubjectPublicKeyInfo of a supported key",
                )
            })?;
            let kt = key_type_of(info.kind);
            if attrs::key_type_in(t).is_some_and(|x| x != kt) {
                return err(
                    ckr::TEMPLATE_INCONSISTENT,
                    "CKA_KEY_TYPE does not match the public key",
                );
            }
            let mut a = Attrs::build(t, cko::PUBLIC_KEY, kt, false, None);
            add_public_attrs(&mut a, &info);
            return Ok(NewKey {
                blob: self.mac_public(&info.spki, &a)?,
                checksum: public_checksum(&info),
                attrs: a,
            });
        }
        if class == cko::PUBLIC_KEY {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "public keys are imported with CKM_IBM_TRANSPORTKEY",
            );
        }
        let kt = attrs::key_type_in(t).ok_or_else(|| {
            Ep11Error::new(
                ckr::TEMPLATE_INCOMPLETE,
                "UnwrapKey needs CKA_KEY_TYPE in the template",
            )
        })?;
        let w = self.resolve(kek, Role::Unwrapping)?;
        let plan = self.planned(mech, Op::Decrypt)?;
        fits(&plan, Op::Decrypt, &w)
            .map_err(|e| Ep11Error::new(ckr::UNWRAPPING_KEY_TYPE_INCONSISTENT, e.detail))?;
        permit(&w, cka::UNWRAP, "CKA_UNWRAP", mech.code)?;
        // What a trusted key takes in keeps its protection: otherwise a key marked
        // CKA_WRAP_WITH_TRUSTED, wrapped under it and unwrapped again, would come back
        // without the mark and leave under any KEK.
        if w.attrs.flag(cka::TRUSTED)
            && attrs::flag_of(t, cka::EXTRACTABLE)
            && !attrs::flag_of(t, cka::WRAP_WITH_TRUSTED)
        {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "a key unwrapped with a CKA_TRUSTED key may be extractable only with CKA_WRAP_WITH_TRUSTED",
            );
        }
        let mut st = OpState::start([0; 16], mech, &[], &plan);
        // One answer for every failure of the decryption (no padding oracle).
        let material = Zeroizing::new(
            self.step(Op::Decrypt, &plan, Some(&w), &mut st, wrapped, Some(&[]))
                .map_err(|_| {
                    Ep11Error::new(
                        ckr::WRAPPED_KEY_INVALID,
                        "the wrapped key cannot be unwrapped with this key and mechanism",
                    )
                })?,
        );
        if class == cko::SECRET_KEY {
            let len = material.len();
            if let Some(want) = attrs::ulong(t, cka::VALUE_LEN) {
                if want != len as u64 {
                    return err(
                        ckr::TEMPLATE_INCONSISTENT,
                        format!(
                            "CKA_VALUE_LEN {want} does not match the unwrapped key ({len} bytes)"
                        ),
                    );
                }
            }
            if !attrs::secret_len_ok(kt, len) {
                return err(
                    ckr::WRAPPED_KEY_LEN_RANGE,
                    format!("an unwrapped key of {len} bytes is not valid for key type {kt:#x}"),
                );
            }
            return self.new_secret(t, kt, KeyMaterial::new(material.to_vec()), false, None);
        }
        let pk = self.provider.prepare_private(&material).map_err(|_| {
            Ep11Error::new(
                ckr::WRAPPED_KEY_INVALID,
                "the unwrapped data is not a PKCS#8 private key of a supported type",
            )
        })?;
        let info = pk.public().clone();
        if key_type_of(info.kind) != kt {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "CKA_KEY_TYPE does not match the unwrapped private key",
            );
        }
        if let (Some(p), AsymKind::Ec(c)) = (attrs::bytes(t, cka::EC_PARAMS), info.kind) {
            if curve_of_params(p) != Some(c) {
                return err(
                    ckr::TEMPLATE_INCONSISTENT,
                    "CKA_EC_PARAMS does not match the unwrapped key's curve",
                );
            }
        }
        let mut a = Attrs::build(t, cko::PRIVATE_KEY, kt, false, None);
        add_public_attrs(&mut a, &info);
        let blob = self.seal_key(&a, &KeyMaterial::new(material.to_vec()))?;
        Ok(NewKey {
            blob,
            checksum: public_checksum(&info),
            attrs: a,
        })
    }
}
