//! Reading and changing a key's attributes, and rewrapping a blob under the new master
//! key.

use super::*;

impl Ep11<'_> {
    /// `GetAttributeValue`: the requested attributes (all when none are named).
    pub fn get_attributes(&self, blob: &[u8], which: &[Cka]) -> Result<Attrs, Ep11Error> {
        let k = self.resolve(blob, Role::Key)?;
        let mut all = k.attrs.clone();
        let info = match &k.body {
            Body::Private(p) => Some(p.public().clone()),
            Body::Public(p) => Some(p.clone()),
            Body::Secret(_) => None,
        };
        if let Some(i) = &info {
            all.set(cka::PUBLIC_KEY_INFO, AttrValue::Bytes(i.spki.clone()));
        }
        if which.is_empty() {
            return Ok(all);
        }
        let mut out = Attrs::default();
        for a in which {
            if *a == cka::VALUE && !matches!(k.body, Body::Public(_)) {
                return err(
                    ckr::ATTRIBUTE_SENSITIVE,
                    "CKA_VALUE of a secret or private key is never revealed",
                );
            }
            match all.0.get(a) {
                Some(v) => out.set(*a, v.clone()),
                None => {
                    return err(
                        ckr::ATTRIBUTE_TYPE_INVALID,
                        format!("the key has no attribute 0x{a:x}"),
                    )
                }
            }
        }
        Ok(out)
    }

    /// `SetAttributeValue`: changes boolean attributes as PKCS#11 allows and returns the
    /// re-sealed blob.
    pub fn set_attributes(&self, blob: &[u8], t: &Template) -> Result<(Vec<u8>, Attrs), Ep11Error> {
        let k = self.resolve(blob, Role::Key)?;
        if !k.attrs.flag(cka::MODIFIABLE) {
            return err(
                ckr::ATTRIBUTE_READ_ONLY,
                "the key's CKA_MODIFIABLE attribute is false",
            );
        }
        let mut a = k.attrs.clone();
        for (&attr, v) in t {
            let Some(on) = v.as_bool() else {
                return err(
                    ckr::ATTRIBUTE_VALUE_INVALID,
                    format!("attribute 0x{attr:x}: only boolean attributes can be changed"),
                );
            };
            if !a
                .0
                .get(&attr)
                .is_some_and(|x| matches!(x, AttrValue::Bool(_)))
                || matches!(
                    attr,
                    cka::TOKEN
                        | cka::PRIVATE
                        | cka::MODIFIABLE
                        | cka::LOCAL
                        | cka::NEVER_EXTRACTABLE
                        | cka::ALWAYS_SENSITIVE
                        | cka::IBM_ATTRBOUND
                )
            {
                return err(
                    ckr::ATTRIBUTE_READ_ONLY,
                    format!("attribute 0x{attr:x} cannot be changed"),
                );
            }
            if (attr == cka::EXTRACTABLE && on && !a.flag(cka::EXTRACTABLE))
                || (attr == cka::SENSITIVE && !on && a.flag(cka::SENSITIVE))
                || (attr == cka::WRAP_WITH_TRUSTED && !on && a.flag(cka::WRAP_WITH_TRUSTED))
            {
                return err(
                    ckr::ATTRIBUTE_READ_ONLY,
                    format!("attribute 0x{attr:x} can only be changed towards more protection"),
                );
            }
            self.may_grant_trust(attr == cka::TRUSTED && on && !a.flag(cka::TRUSTED))?;
            a.set(attr, AttrValue::Bool(on));
        }
        if decrypting_trust(&a) && !decrypting_trust(&k.attrs) {
            return Err(decrypting_trust_refused());
        }
        if matches!(object::parse(blob), Some(Parsed::RawSpki(_))) {
            return err(
                ckr::ATTRIBUTE_READ_ONLY,
                "a plain SPKI has no attributes; import it with CKM_IBM_TRANSPORTKEY first",
            );
        }
        let (mk, id) = self.sealing().map_err(|e| engine_err(e, Role::Key))?;
        let blob = self.reseal(&k, &a, mk, id)?;
        Ok((blob, a))
    }

    /// `RewrapKeyBlob`: re-seals a key blob under the committed new master key (from the
    /// commit of a rotation on; the unit opens both until the old key is gone). Without a
    /// new key, or for a blob already under it, the blob comes back as it is.
    pub fn rewrap(&self, blob: &[u8]) -> Result<Vec<u8>, Ep11Error> {
        let (mk, target) = match &self.next {
            Some((k, id)) => (k, *id),
            None => self.current().map_err(|e| engine_err(e, Role::Key))?,
        };
        match object::mk_of(blob).map_err(|e| engine_err(e, Role::Key))? {
            None => {
                return err(
                    ckr::KEY_HANDLE_INVALID,
                    "a plain SPKI is not sealed under any master key",
                )
            }
            Some(id) if id == target => return Ok(blob.to_vec()),
            Some(_) => {}
        }
        let k = self.resolve(blob, Role::Key)?;
        self.reseal(&k, &k.attrs, mk, target)
    }
}
