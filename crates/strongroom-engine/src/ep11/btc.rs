//! IBM's `CKM_IBM_BTC_DERIVE`: BIP32 and SLIP-0010 key trees through DeriveKey. The new
//! key's chain code comes back as its CheckSum, which the caller passes as the next
//! derivation's `BTCDeriveParm.ChainCode`.

use super::*;
use crate::provider::{HdError, HdParent, HdScheme};

use strongroom_model::pkcs11::btc as kind;

/// `XCP_BTC_VERSION`: the one parameter version there is.
const BTC_VERSION: u64 = 1;

/// What one derivation starts from and makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Seed (a secret key) → master private key.
    Master,
    /// Private parent → private child.
    PrivToPriv,
    /// Private parent → the public key of the private child.
    PrivToPub,
    /// Public parent → public child (non-hardened only).
    PubToPub,
}

fn step_of(k: u64) -> Option<(HdScheme, Step)> {
    Some(match k {
        kind::BIP32_MASTERK => (HdScheme::Bip32, Step::Master),
        kind::BIP32_PRV2PRV => (HdScheme::Bip32, Step::PrivToPriv),
        kind::BIP32_PRV2PUB => (HdScheme::Bip32, Step::PrivToPub),
        kind::BIP32_PUB2PUB => (HdScheme::Bip32, Step::PubToPub),
        kind::SLIP10_MASTERK => (HdScheme::Slip10, Step::Master),
        kind::SLIP10_PRV2PRV => (HdScheme::Slip10, Step::PrivToPriv),
        kind::SLIP10_PRV2PUB => (HdScheme::Slip10, Step::PrivToPub),
        kind::SLIP10_PUB2PUB => (HdScheme::Slip10, Step::PubToPub),
        _ => return None,
    })
}

fn refusal(e: HdError, index: u32) -> Ep11Error {
    match e {
        HdError::Curve => Ep11Error::new(
            ckr::CURVE_NOT_SUPPORTED,
            "BIP32 is defined on secp256k1, SLIP-0010 on secp256k1, P-256 and Ed25519",
        ),
        HdError::Hardened => Ep11Error::new(
            ckr::MECHANISM_PARAM_INVALID,
            format!(
                "child {index:#x}: a hardened child (index 2^31 or more) cannot be derived from a \
                 public key, and an Ed25519 key has hardened children only"
            ),
        ),
        HdError::Parent => Ep11Error::new(
            ckr::KEY_TYPE_INCONSISTENT,
            "the base key cannot start this derivation (BIP32: the seed gives no valid master key)",
        ),
        HdError::NoChild => Ep11Error::new(
            ckr::MECHANISM_PARAM_INVALID,
            format!("BIP32 child {index:#x} is not a valid key; derive the next index instead"),
        ),
    }
}

impl Ep11<'_> {
    /// `DeriveKey` with `CKM_IBM_BTC_DERIVE`: a master key from a seed (a secret key of
    /// 16 to 64 bytes; the template's CKA_EC_PARAMS names the curve), or a child of an EC
    /// private or public key. CheckSum is the new key's 32-byte chain code.
    pub(super) fn btc_derive(
        &self,
        mech: &Mech,
        base: &[u8],
        t: &Template,
    ) -> Result<NewKey, Ep11Error> {
        let MechParam::BtcDerive {
            kind,
            index,
            chain,
            version,
        } = &mech.param
        else {
            return err(
                ckr::MECHANISM_PARAM_INVALID,
                "CKM_IBM_BTC_DERIVE needs a BTCDeriveParm",
            );
        };
        if *version != BTC_VERSION {
            return err(
                ckr::MECHANISM_PARAM_INVALID,
                format!("BTCDeriveParm.Version {version} is not known: 1 (XCP_BTC_VERSION) is"),
            );
        }
        let (scheme, step) = step_of(*kind).ok_or_else(|| {
            Ep11Error::new(
                ckr::MECHANISM_PARAM_INVALID,
                format!("BTCDeriveParm.Type {kind} is not a derivation: 1 to 8 are"),
            )
        })?;
        let index = u32::try_from(*index).map_err(|_| {
            Ep11Error::new(
                ckr::MECHANISM_PARAM_INVALID,
                "BTCDeriveParm.ChildKeyIndex must be below 2^32",
            )
        })?;
        let class = match step {
            Step::Master | Step::PrivToPriv => cko::PRIVATE_KEY,
            Step::PrivToPub | Step::PubToPub => cko::PUBLIC_KEY,
        };
        let t = &attrs::for_derived_ec(t, class)?;
        let curve_named = match attrs::bytes(t, cka::EC_PARAMS) {
            None => None,
            Some(p) => Some(curve_of_params(p).ok_or_else(|| {
                Ep11Error::new(
                    ckr::CURVE_NOT_SUPPORTED,
                    "the template's CKA_EC_PARAMS names a curve these trees are not defined on",
                )
            })?),
        };
        let b = self.resolve(base, Role::Key)?;
        permit(&b, cka::DERIVE, "CKA_DERIVE", mech.code)?;
        if class == cko::PRIVATE_KEY {
            no_easier_to_export(&b, t, "base key")?;
        }
        let parent_chain = || -> Result<[u8; 32], Ep11Error> {
            chain.as_slice().try_into().map_err(|_| {
                Ep11Error::new(
                    ckr::MECHANISM_PARAM_INVALID,
                    format!(
                        "BTCDeriveParm.ChainCode must be the parent's 32-byte chain code (the \
                         CheckSum of its derivation), not {} bytes",
                        chain.len()
                    ),
                )
            })
        };
        let derive = |curve, parent| {
            self.provider
                .hd_derive(scheme, curve, parent, index)
                .map_err(|e| refusal(e, index))
        };
        let child = match (step, &b.body) {
            (Step::Master, Body::Secret(seed)) => {
                if !chain.is_empty() {
                    return err(
                        ckr::MECHANISM_PARAM_INVALID,
                        "a master key has no parent chain code: leave ChainCode empty",
                    );
                }
                let curve = curve_named.ok_or_else(|| {
                    Ep11Error::new(
                        ckr::TEMPLATE_INCOMPLETE,
                        "a master key derivation needs CKA_EC_PARAMS in the template",
                    )
                })?;
                let seed = seed.expose();
                if !(16..=64).contains(&seed.len()) {
                    return err(
                        ckr::KEY_SIZE_RANGE,
                        format!("a seed has 16 to 64 bytes, not {}", seed.len()),
                    );
                }
                derive(curve, HdParent::Seed(seed))?
            }
            (Step::PrivToPriv | Step::PrivToPub, Body::Private(pk)) => {
                let AsymKind::Ec(curve) = pk.public().kind else {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "this derivation needs an EC private key as its base",
                    );
                };
                let chain = parent_chain()?;
                derive(
                    curve,
                    HdParent::Private {
                        pkcs8: pk.pkcs8(),
                        chain: &chain,
                    },
                )?
            }
            (Step::PubToPub, Body::Public(info)) => {
                let AsymKind::Ec(curve) = info.kind else {
                    return err(
                        ckr::KEY_TYPE_INCONSISTENT,
                        "this derivation needs an EC public key as its base",
                    );
                };
                let chain = parent_chain()?;
                derive(
                    curve,
                    HdParent::Public {
                        public: info,
                        chain: &chain,
                    },
                )?
            }
            (Step::Master, _) => {
                return err(
                    ckr::KEY_TYPE_INCONSISTENT,
                    "a master key derivation needs the seed, a secret key, as its base",
                )
            }
            (Step::PrivToPriv | Step::PrivToPub, _) => {
                return err(
                    ckr::KEY_TYPE_INCONSISTENT,
                    "this derivation needs a private key as its base",
                )
            }
            (Step::PubToPub, _) => {
                return err(
                    ckr::KEY_TYPE_INCONSISTENT,
                    "this derivation needs a public key as its base",
                )
            }
        };
        if curve_named.is_some_and(|c| AsymKind::Ec(c) != child.public.kind) {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "the template's CKA_EC_PARAMS names another curve than the base key's",
            );
        }
        let mut a = Attrs::build(t, class, ckk::EC, false, Some(mech.code));
        add_public_attrs(&mut a, &child.public);
        let blob = match (class, &child.private) {
            (c, Some(pkcs8)) if c == cko::PRIVATE_KEY => {
                self.seal_key(&a, &KeyMaterial::new(pkcs8.to_vec()))?
            }
            _ => self.mac_public(&child.public.spki, &a)?,
        };
        Ok(NewKey {
            blob,
            checksum: child.chain.to_vec(),
            attrs: a,
        })
    }
}
