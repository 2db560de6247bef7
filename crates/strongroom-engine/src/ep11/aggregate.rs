//! IBM's `CKM_IBM_EC_AGGREGATE`: BLS12-381 signatures aggregated by SignSingle without a
//! key, and public keys aggregated by DeriveKey without a base key. An aggregate signature of
//! one message verifies (CKM_IBM_ECDSA_OTHER, BLS) under the aggregate of the signers' keys.

use super::*;

/// ECAGGParm.Mode values (IBM's `CK_IBM_EC_AGG_BLS12_381_*`).
const MODE_SIGNATURES: u64 = 1;
const MODE_PUBLIC_KEYS: u64 = 2;
/// The parameter version IBM's examples send.
const AGG_VERSION: u64 = 0;
/// A compressed BLS12-381 G2 point: one signature.
const SIGNATURE_BYTES: u64 = 96;

/// The elements of an ECAGGParm of `mode`, checked: each `PerElementSize` bytes, at least one.
fn elements(mech: &Mech, mode: u64) -> Result<Vec<&[u8]>, Ep11Error> {
    let MechParam::EcAgg {
        version,
        mode: m,
        per_element,
        elements,
    } = &mech.param
    else {
        return err(
            ckr::MECHANISM_PARAM_INVALID,
            "CKM_IBM_EC_AGGREGATE needs an ECAGGParm",
        );
    };
    if *version != AGG_VERSION {
        return err(
            ckr::MECHANISM_PARAM_INVALID,
            format!("ECAGGParm.Version {version} is not known: 0 is"),
        );
    }
    if *m != mode {
        return err(
            ckr::MECHANISM_PARAM_INVALID,
            format!(
                "ECAGGParm.Mode {m}: SignSingle aggregates signatures (mode 1), DeriveKey \
                 public keys (mode 2)"
            ),
        );
    }
    let size = usize::try_from(*per_element).unwrap_or(0);
    if size == 0 || elements.is_empty() || elements.len() % size != 0 {
        return err(
            ckr::MECHANISM_PARAM_INVALID,
            format!(
                "ECAGGParm.Elements ({} bytes) must be one or more elements of PerElementSize \
                 ({per_element}) bytes",
                elements.len()
            ),
        );
    }
    Ok(elements.chunks(size).collect())
}

impl Ep11<'_> {
    /// SignSingle with `CKM_IBM_EC_AGGREGATE` (mode 1): the aggregate of the 96-byte BLS
    /// signatures given as the elements. No key is used.
    pub(super) fn aggregate_signatures(
        &self,
        mech: &Mech,
        key: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        if !key.is_empty() {
            return err(
                ckr::ARGUMENTS_BAD,
                "CKM_IBM_EC_AGGREGATE aggregates the signatures it is given: send no key",
            );
        }
        if let MechParam::EcAgg { per_element, .. } = &mech.param {
            if *per_element != SIGNATURE_BYTES {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "a BLS12-381 signature has 96 bytes: PerElementSize must be 96",
                );
            }
        }
        let sigs = elements(mech, MODE_SIGNATURES)?;
        self.provider.bls_aggregate_signatures(&sigs).map_err(|_| {
            Ep11Error::new(
                ckr::SIGNATURE_INVALID,
                "an element is not a BLS12-381 signature (a point of G2)",
            )
        })
    }

    /// DeriveKey with `CKM_IBM_EC_AGGREGATE` (mode 2): the public key blob of the aggregate
    /// of the BLS public keys given as the elements (each a public key blob). No base key.
    pub(super) fn aggregate_public_keys(
        &self,
        mech: &Mech,
        base: &[u8],
        t: &Template,
    ) -> Result<NewKey, Ep11Error> {
        if !base.is_empty() {
            return err(
                ckr::ARGUMENTS_BAD,
                "CKM_IBM_EC_AGGREGATE aggregates the public keys it is given: send no base key",
            );
        }
        let t = &attrs::for_derived_ec(t, cko::PUBLIC_KEY)?;
        let info = self.bls_aggregate(&elements(mech, MODE_PUBLIC_KEYS)?, None, "element")?;
        let mut a = Attrs::build(t, cko::PUBLIC_KEY, ckk::EC, false, Some(mech.code));
        add_public_attrs(&mut a, &info);
        Ok(NewKey {
            blob: self.mac_public(&info.spki, &a)?,
            checksum: public_checksum(&info),
            attrs: a,
        })
    }

    /// IBM's second BLS verification form: the signers' public key blobs joined in one
    /// KeyBlob. Each blob is checked (its MAC, BLS12-381, CKA_VERIFY) and the signature is
    /// verified against their aggregate, as with a key aggregated by DeriveKey.
    pub(super) fn aggregate_signers(
        &self,
        parts: &[&[u8]],
        mech: Ckm,
    ) -> Result<Arc<Resolved>, Ep11Error> {
        let info = self.bls_aggregate(
            parts,
            Some((cka::VERIFY, "CKA_VERIFY", mech)),
            "public key of the joined KeyBlob",
        )?;
        let mut t = Template::new();
        t.insert(cka::VERIFY, AttrValue::Bool(true));
        let mut attrs = Attrs::build(&t, cko::PUBLIC_KEY, ckk::EC, false, None);
        add_public_attrs(&mut attrs, &info);
        Ok(Arc::new(Resolved {
            attrs,
            body: Body::Public(info),
        }))
    }

    /// The aggregate of BLS12-381 public key blobs, each checked (its MAC, its curve, and
    /// the usage attribute when one is named); `what` names an element in refusals.
    fn bls_aggregate(
        &self,
        blobs: &[&[u8]],
        usage: Option<(Cka, &str, Ckm)>,
        what: &str,
    ) -> Result<PublicInfo, Ep11Error> {
        let mut raws = Vec::new();
        for (i, blob) in blobs.iter().enumerate() {
            let k = self.resolve(blob, Role::Key)?;
            match &k.body {
                Body::Public(info) if info.kind == AsymKind::Ec(Curve::Bls12381) => {
                    if let Some((a, name, mech)) = usage {
                        permit(&k, a, name, mech)?;
                    }
                    raws.push(info.raw.clone());
                }
                _ => {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        format!("{what} {i} is not a BLS12-381 public key"),
                    )
                }
            }
        }
        let refs: Vec<&[u8]> = raws.iter().map(Vec::as_slice).collect();
        self.provider.bls_aggregate_public_keys(&refs).map_err(|_| {
            Ep11Error::new(
                ckr::KEY_TYPE_INCONSISTENT,
                "the public keys do not aggregate (the point at infinity)",
            )
        })
    }
}
