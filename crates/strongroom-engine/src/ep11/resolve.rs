//! Opening key blobs and States on a unit, sealing new ones.

use super::*;

impl Ep11<'_> {
    pub(super) fn instance_for_ep11(&self) -> Result<InstanceId, Ep11Error> {
        self.instance.ok_or_else(|| {
            Ep11Error::new(
                ckr::IBM_WK_NOT_INITIALIZED,
                "the crypto unit is not bound to an instance",
            )
        })
    }

    pub(super) fn register_by_id(
        &self,
        id: MkId,
    ) -> Result<(&crate::MasterKey, MkId), EngineError> {
        let (cur, cur_id) = self.current()?;
        if id == cur_id {
            return Ok((cur, cur_id));
        }
        match &self.next {
            Some((k, nid)) if *nid == id => Ok((k, *nid)),
            _ => Err(EngineError::WrongMasterKey { blob: id }),
        }
    }

    pub(super) fn resolve(&self, blob: &[u8], role: Role) -> Result<Arc<Resolved>, Ep11Error> {
        if blob.is_empty() {
            return err(role.bad_blob(), "no key blob was given");
        }
        let h = self.provider.sha256(&[blob]);
        if let Some(r) = self.ep11.keys.lock().ok().and_then(|c| c.get(&h).cloned()) {
            return Ok(r);
        }
        let instance = self.instance_for_ep11()?;
        let p = self.provider.as_ref();
        let parsed =
            object::parse(blob).ok_or_else(|| engine_err(EngineError::BlobMalformed, role))?;
        let r = match parsed {
            Parsed::Sealed {
                class,
                attrs,
                header,
                inner,
            } => {
                let mk = crate::blob::blob_mk_id(inner).map_err(|e| engine_err(e, role))?;
                let (k, id) = self.register_by_id(mk).map_err(|e| engine_err(e, role))?;
                let m = object::open_object(p, k, id, instance, header, inner)
                    .map_err(|e| engine_err(e, role))?;
                let body = match Cko(u64::from(class)) {
                    cko::SECRET_KEY => Body::Secret(m),
                    cko::PRIVATE_KEY => {
                        Body::Private(p.prepare_private(m.expose()).map_err(|_| {
                            Ep11Error::new(
                                role.bad_blob(),
                                "the private key in the blob cannot be parsed",
                            )
                        })?)
                    }
                    _ => return Err(engine_err(EngineError::BlobMalformed, role)),
                };
                Resolved { attrs, body }
            }
            Parsed::Public {
                spki,
                mk,
                attrs,
                attr_block,
                mac,
            } => {
                let (k, id) = self.register_by_id(mk).map_err(|e| engine_err(e, role))?;
                object::check_spki(p, k, id, instance, spki, attr_block, mac)
                    .map_err(|e| engine_err(e, role))?;
                let info = p.public_info(spki).map_err(|_| {
                    Ep11Error::new(ckr::PUBLIC_KEY_INVALID, "the public key cannot be parsed")
                })?;
                Resolved {
                    attrs,
                    body: Body::Public(info),
                }
            }
            Parsed::RawSpki(spki) => {
                let info = p.public_info(spki).map_err(|_| {
                    Ep11Error::new(
                        ckr::PUBLIC_KEY_INVALID,
                        "the SubjectPublicKeyInfo cannot be parsed or names an unsupported key",
                    )
                })?;
                // A plain SPKI carries no attributes: it may verify, nothing else (as EP11).
                let mut t = Template::new();
                t.insert(cka::VERIFY, AttrValue::Bool(true));
                let mut attrs =
                    Attrs::build(&t, cko::PUBLIC_KEY, key_type_of(info.kind), false, None);
                add_public_attrs(&mut attrs, &info);
                Resolved {
                    attrs,
                    body: Body::Public(info),
                }
            }
        };
        let r = Arc::new(r);
        if let Ok(mut c) = self.ep11.keys.lock() {
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert(h, Arc::clone(&r));
        }
        Ok(r)
    }

    pub(super) fn seal_key(
        &self,
        attrs: &Attrs,
        material: &KeyMaterial,
    ) -> Result<Vec<u8>, Ep11Error> {
        self.check_trust(attrs)?;
        let instance = self.instance_for_ep11()?;
        let (mk, id) = self.sealing().map_err(|e| engine_err(e, Role::Key))?;
        object::seal_object(self.provider.as_ref(), mk, id, instance, attrs, material)
            .map_err(|e| engine_err(e, Role::Key))
    }

    pub(super) fn mac_public(&self, spki: &[u8], attrs: &Attrs) -> Result<Vec<u8>, Ep11Error> {
        self.check_trust(attrs)?;
        let instance = self.instance_for_ep11()?;
        let (mk, id) = self.sealing().map_err(|e| engine_err(e, Role::Key))?;
        object::mac_spki(self.provider.as_ref(), mk, id, instance, spki, attrs)
            .map_err(|e| engine_err(e, Role::Key))
    }

    /// Seals a resolved key again, with `attrs`, under the master key `(mk, id)`.
    pub(super) fn reseal(
        &self,
        k: &Resolved,
        attrs: &Attrs,
        mk: &crate::MasterKey,
        id: MkId,
    ) -> Result<Vec<u8>, Ep11Error> {
        let instance = self.instance_for_ep11()?;
        let p = self.provider.as_ref();
        match &k.body {
            Body::Secret(m) => object::seal_object(p, mk, id, instance, attrs, m),
            Body::Private(pk) => object::seal_object(
                p,
                mk,
                id,
                instance,
                attrs,
                &KeyMaterial::from_slice(pk.pkcs8()),
            ),
            Body::Public(info) => object::mac_spki(p, mk, id, instance, &info.spki, attrs),
        }
        .map_err(|e| engine_err(e, Role::Key))
    }

    pub(super) fn seal_op(&self, op: Op, st: &OpState) -> Result<Vec<u8>, Ep11Error> {
        let instance = self.instance_for_ep11()?;
        let (mk, id) = self.sealing().map_err(|e| engine_err(e, Role::Key))?;
        object::seal_state(
            self.provider.as_ref(),
            mk,
            id,
            instance,
            op as u8,
            &st.encode(),
        )
        .map_err(|e| engine_err(e, Role::Key))
    }

    pub(super) fn open_op(&self, op: Op, state: &[u8]) -> Result<OpState, Ep11Error> {
        let bad = |d: &str| Ep11Error::new(ckr::OPERATION_NOT_INITIALIZED, d.to_string());
        let (kind, inner) = object::state_op(state).ok_or_else(|| {
            bad("the State is not a state this server issued (malformed or truncated)")
        })?;
        if kind != op as u8 {
            return Err(bad(&format!(
                "the State belongs to another operation, not to {}",
                op.name()
            )));
        }
        let instance = self.instance_for_ep11()?;
        let mk = crate::blob::blob_mk_id(inner).map_err(|_| bad("the State is malformed"))?;
        let (k, id) = self
            .register_by_id(mk)
            .map_err(|e| engine_err(e, Role::Key))?;
        let m = object::open_state(self.provider.as_ref(), k, id, instance, op as u8, inner)
            .map_err(|_| {
                bad("the State failed authentication (tampered, or made for another instance)")
            })?;
        let st = OpState::decode(m.expose()).ok_or_else(|| bad("the State is malformed"))?;
        // A State is good for one call: remember its id.
        if let Ok(mut spent) = self.ep11.spent.lock() {
            let (cur, prev) = &mut *spent;
            if prev.contains(&st.id) || !cur.insert(st.id) {
                return Err(bad(
                    "the State was already used; each call returns a new State for the next call",
                ));
            }
            if cur.len() >= SPENT_GENERATION {
                *prev = std::mem::take(cur);
            }
        }
        Ok(st)
    }

    pub(super) fn new_state(
        &self,
        mech: &Mech,
        key: &[u8],
        plan: &Plan,
    ) -> Result<OpState, Ep11Error> {
        let mut id = [0u8; 16];
        self.provider
            .fill_random(&mut id)
            .map_err(|_| Ep11Error::new(ckr::GENERAL_ERROR, "random generator failed"))?;
        Ok(OpState::start(id, mech, key, plan))
    }

    pub(super) fn key_for(
        &self,
        op: Op,
        mech: Ckm,
        plan: &Plan,
        key: &[u8],
    ) -> Result<Option<Arc<Resolved>>, Ep11Error> {
        if op == Op::Digest {
            return Ok(None);
        }
        let bls_verify = op == Op::Verify
            && matches!(
                plan,
                Plan::Sign {
                    scheme: SignScheme::Bls,
                    ..
                }
            );
        let k = match object::split_public_blobs(key) {
            Some(parts) if bls_verify => self.aggregate_signers(&parts, mech)?,
            _ => self.resolve(key, Role::Key)?,
        };
        fits(plan, op, &k)?;
        self.fips_key(&k)?;
        // EC multiply is a key agreement step: the private key must allow derivation.
        let (a, name) = match plan {
            Plan::EcMultiply => (cka::DERIVE, "CKA_DERIVE"),
            _ => usage_attr(op),
        };
        permit(&k, a, name, mech)?;
        Ok(Some(k))
    }
}
