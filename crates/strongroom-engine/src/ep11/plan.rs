//! Mechanism planning: what a mechanism code and its parameter mean for one operation
//! (a [`Plan`]), the digest tables, and the parameter checks.

use super::*;

/// The digest algorithm of a digest mechanism (CKM_SHA_1 … and the IBM ids).
pub fn digest_of(code: Ckm) -> Option<DigestAlg> {
    Some(match code {
        ckm::SHA_1 => DigestAlg::Sha1,
        ckm::SHA224 => DigestAlg::Sha224,
        ckm::SHA256 => DigestAlg::Sha256,
        ckm::SHA384 => DigestAlg::Sha384,
        ckm::SHA512 => DigestAlg::Sha512,
        ckm::SHA512_256 | ckm::IBM_SHA512_256 => DigestAlg::Sha512_256,
        ckm::SHA512_224 | ckm::IBM_SHA512_224 => DigestAlg::Sha512_224,
        ckm::IBM_SHA3_256 => DigestAlg::Sha3_256,
        ckm::IBM_SHA3_384 => DigestAlg::Sha3_384,
        ckm::IBM_SHA3_512 => DigestAlg::Sha3_512,
        _ => return None,
    })
}

pub(super) fn digest_len(d: DigestAlg) -> usize {
    match d {
        DigestAlg::Sha1 => 20,
        DigestAlg::Sha224 | DigestAlg::Sha512_224 => 28,
        DigestAlg::Sha256 | DigestAlg::Sha512_256 | DigestAlg::Sha3_256 => 32,
        DigestAlg::Sha384 | DigestAlg::Sha3_384 => 48,
        DigestAlg::Sha512 | DigestAlg::Sha3_512 => 64,
    }
}

/// The hash of a CKG_MGF1_* value.
pub(super) fn mgf_hash(mgf: u64) -> Option<DigestAlg> {
    Some(match mgf {
        1 => DigestAlg::Sha1,
        2 => DigestAlg::Sha256,
        3 => DigestAlg::Sha384,
        4 => DigestAlg::Sha512,
        5 => DigestAlg::Sha224,
        _ => return None,
    })
}

pub(super) fn sha1_or_2(d: DigestAlg) -> bool {
    matches!(
        d,
        DigestAlg::Sha1
            | DigestAlg::Sha224
            | DigestAlg::Sha256
            | DigestAlg::Sha384
            | DigestAlg::Sha512
    )
}

/// What a mechanism does, resolved from its code and parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Plan {
    Cipher {
        cipher: BlockCipher,
        mode: CipherMode,
        iv: Vec<u8>,
    },
    Gcm {
        iv: [u8; 12],
        aad: Vec<u8>,
    },
    Rsa {
        padding: RsaPadding,
        label: Vec<u8>,
    },
    Digest(DigestAlg),
    /// CKM_IBM_EC_MULTIPLY: d·Q with the private key's scalar (Encrypt, single-part).
    EcMultiply,
    Mac {
        alg: MacAlg,
        len: usize,
    },
    Sign {
        scheme: SignScheme,
        hash: Option<DigestAlg>,
    },
}

impl Plan {
    pub(super) fn multi_part(&self) -> bool {
        match self {
            Plan::Rsa { .. } | Plan::EcMultiply => false,
            Plan::Sign { hash, .. } => hash.is_some(),
            _ => true,
        }
    }
}

pub(super) fn iv_param(m: &Mech, len: usize) -> Result<Vec<u8>, Ep11Error> {
    match &m.param {
        MechParam::Bytes(b) if b.len() == len => Ok(b.clone()),
        _ => err(
            ckr::MECHANISM_PARAM_INVALID,
            format!(
                "mechanism 0x{:x} needs a {len}-byte IV in ParameterB",
                m.code
            ),
        ),
    }
}

pub(super) fn no_param(m: &Mech) -> Result<(), Ep11Error> {
    match &m.param {
        MechParam::None => Ok(()),
        MechParam::Bytes(b) if b.is_empty() => Ok(()),
        _ => err(
            ckr::MECHANISM_PARAM_INVALID,
            format!("mechanism 0x{:x} takes no parameter", m.code),
        ),
    }
}

/// The context string of a `CKM_ML_DSA` parameter: over GREP11, ParameterB holds the
/// context itself (0 to 255 bytes; none means the empty context). Signatures are always
/// hedged (FIPS 204's default); PKCS#11 3.2's deterministic variant is not offered.
pub(super) fn ml_dsa_context(m: &Mech) -> Result<&[u8], Ep11Error> {
    match &m.param {
        MechParam::None => Ok(&[]),
        MechParam::Bytes(b) if b.len() <= 255 => Ok(b),
        MechParam::Bytes(b) => err(
            ckr::MECHANISM_PARAM_INVALID,
            format!(
                "CKM_ML_DSA: the context string has {} bytes; FIPS 204 allows at most 255",
                b.len()
            ),
        ),
        _ => err(
            ckr::MECHANISM_PARAM_INVALID,
            "CKM_ML_DSA takes its context string (at most 255 bytes) in ParameterB",
        ),
    }
}

pub(super) fn hmac_general_len(m: &Mech, full: usize) -> Result<usize, Ep11Error> {
    // CK_MAC_GENERAL_PARAMS: a CK_ULONG, sent as 8 (or 4) big-endian bytes in ParameterB.
    let n = match &m.param {
        MechParam::Bytes(b) if b.len() == 8 || b.len() == 4 => {
            b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x))
        }
        _ => return err(
            ckr::MECHANISM_PARAM_INVALID,
            "a *_GENERAL MAC mechanism needs the MAC length as a big-endian CK_ULONG in ParameterB",
        ),
    };
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n == 0 || n > full {
        return err(
            ckr::MECHANISM_PARAM_INVALID,
            format!("MAC length {n} is outside 1..={full}"),
        );
    }
    Ok(n)
}

pub(super) fn plan(m: &Mech, op: Op) -> Result<Plan, Ep11Error> {
    use ckm::*;
    let cipher_ops = matches!(op, Op::Encrypt | Op::Decrypt);
    let sign_ops = matches!(op, Op::Sign | Op::Verify);
    let p = match m.code {
        AES_ECB | AES_CBC | AES_CBC_PAD | DES3_ECB | DES3_CBC | DES3_CBC_PAD if cipher_ops => {
            let cipher = if matches!(m.code, AES_ECB | AES_CBC | AES_CBC_PAD) {
                BlockCipher::Aes
            } else {
                BlockCipher::Des3
            };
            let mode = match m.code {
                AES_ECB | DES3_ECB => CipherMode::Ecb,
                AES_CBC | DES3_CBC => CipherMode::Cbc,
                _ => CipherMode::CbcPad,
            };
            let iv = if mode == CipherMode::Ecb {
                no_param(m)?;
                Vec::new()
            } else {
                iv_param(m, cipher.block_len())?
            };
            Plan::Cipher { cipher, mode, iv }
        }
        AES_GCM if cipher_ops => {
            // ParameterB = the 12-byte IV, then the additional authenticated data (if any);
            // the tag is 16 bytes (GREP11 does not document a GCM parameter encoding).
            let MechParam::Bytes(b) = &m.param else {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "CKM_AES_GCM needs ParameterB = 12-byte IV followed by the AAD",
                );
            };
            if b.len() < 12 {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "CKM_AES_GCM needs ParameterB = 12-byte IV followed by the AAD",
                );
            }
            let mut iv = [0u8; 12];
            iv.copy_from_slice(&b[..12]);
            Plan::Gcm {
                iv,
                aad: b[12..].to_vec(),
            }
        }
        IBM_EC_MULTIPLY if op == Op::Encrypt => {
            no_param(m)?;
            Plan::EcMultiply
        }
        RSA_PKCS if cipher_ops => {
            no_param(m)?;
            Plan::Rsa {
                padding: RsaPadding::Pkcs1,
                label: Vec::new(),
            }
        }
        RSA_PKCS_OAEP if cipher_ops => {
            let MechParam::Oaep { hash, mgf, label } = &m.param else {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "CKM_RSA_PKCS_OAEP needs RSAOAEPParameter",
                );
            };
            let (Some(h), Some(g)) = (digest_of(*hash).filter(|d| sha1_or_2(*d)), mgf_hash(*mgf)) else {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "OAEP: HashMech must be SHA-1 or SHA-2 and Mgf a CKG_MGF1_SHA* value",
                );
            };
            let padding = if h == g && h != DigestAlg::Sha224 {
                RsaPadding::Oaep(h)
            } else {
                RsaPadding::OaepWith { hash: h, mgf: g }
            };
            Plan::Rsa {
                padding,
                label: label.clone(),
            }
        }
        d if op == Op::Digest && digest_of(d).is_some() => {
            no_param(m)?;
            Plan::Digest(digest_of(d).ok_or_else(|| Ep11Error::new(ckr::MECHANISM_INVALID, "digest"))?)
        }
        SHA_1_HMAC | SHA224_HMAC | SHA256_HMAC | SHA384_HMAC | SHA512_HMAC | SHA512_224_HMAC
        | SHA512_256_HMAC | IBM_SHA512_224_HMAC | IBM_SHA512_256_HMAC | SHA_1_HMAC_GENERAL
        | SHA224_HMAC_GENERAL | SHA256_HMAC_GENERAL | SHA384_HMAC_GENERAL | SHA512_HMAC_GENERAL
        | SHA512_224_HMAC_GENERAL | SHA512_256_HMAC_GENERAL
            if sign_ops =>
        {
            let d = match m.code {
                SHA_1_HMAC | SHA_1_HMAC_GENERAL => DigestAlg::Sha1,
                SHA224_HMAC | SHA224_HMAC_GENERAL => DigestAlg::Sha224,
                SHA256_HMAC | SHA256_HMAC_GENERAL => DigestAlg::Sha256,
                SHA384_HMAC | SHA384_HMAC_GENERAL => DigestAlg::Sha384,
                SHA512_224_HMAC | SHA512_224_HMAC_GENERAL | IBM_SHA512_224_HMAC => {
                    DigestAlg::Sha512_224
                }
                SHA512_256_HMAC | SHA512_256_HMAC_GENERAL | IBM_SHA512_256_HMAC => {
                    DigestAlg::Sha512_256
                }
                _ => DigestAlg::Sha512,
            };
            let general = matches!(
                m.code,
                SHA_1_HMAC_GENERAL
                    | SHA224_HMAC_GENERAL
                    | SHA256_HMAC_GENERAL
                    | SHA384_HMAC_GENERAL
                    | SHA512_HMAC_GENERAL
                    | SHA512_224_HMAC_GENERAL
                    | SHA512_256_HMAC_GENERAL
            );
            let len = if general {
                hmac_general_len(m, digest_len(d))?
            } else {
                no_param(m)?;
                digest_len(d)
            };
            Plan::Mac {
                alg: MacAlg::Hmac(d),
                len,
            }
        }
        AES_CMAC | AES_CMAC_GENERAL | DES3_CMAC | IBM_CMAC if sign_ops => {
            let c = if m.code == DES3_CMAC {
                BlockCipher::Des3
            } else {
                BlockCipher::Aes
            };
            let len = if m.code == AES_CMAC_GENERAL {
                hmac_general_len(m, c.block_len())?
            } else {
                no_param(m)?;
                c.block_len()
            };
            Plan::Mac {
                alg: MacAlg::Cmac(c),
                len,
            }
        }
        RSA_PKCS if sign_ops => {
            no_param(m)?;
            Plan::Sign {
                scheme: SignScheme::RsaPkcs1Raw,
                hash: None,
            }
        }
        RSA_X9_31 | SHA1_RSA_X9_31 if sign_ops => {
            no_param(m)?;
            Plan::Sign {
                scheme: SignScheme::RsaX931,
                hash: (m.code == SHA1_RSA_X9_31).then_some(DigestAlg::Sha1),
            }
        }
        SHA1_RSA_PKCS | SHA224_RSA_PKCS if sign_ops => {
            no_param(m)?;
            Plan::Sign {
                scheme: SignScheme::RsaPkcs1Raw,
                hash: Some(if m.code == SHA1_RSA_PKCS {
                    DigestAlg::Sha1
                } else {
                    DigestAlg::Sha224
                }),
            }
        }
        SHA256_RSA_PKCS | SHA384_RSA_PKCS | SHA512_RSA_PKCS if sign_ops => {
            no_param(m)?;
            let d = match m.code {
                SHA256_RSA_PKCS => DigestAlg::Sha256,
                SHA384_RSA_PKCS => DigestAlg::Sha384,
                _ => DigestAlg::Sha512,
            };
            Plan::Sign {
                scheme: SignScheme::RsaPkcs1(d),
                hash: Some(d),
            }
        }
        RSA_PKCS_PSS | SHA1_RSA_PKCS_PSS | SHA224_RSA_PKCS_PSS | SHA256_RSA_PKCS_PSS
        | SHA384_RSA_PKCS_PSS | SHA512_RSA_PKCS_PSS
            if sign_ops =>
        {
            let MechParam::Pss { hash, mgf, salt } = &m.param else {
                return err(ckr::MECHANISM_PARAM_INVALID, "RSA-PSS needs RSAPSSParameter");
            };
            let (Some(d), Some(g)) = (digest_of(*hash).filter(|d| sha1_or_2(*d)), mgf_hash(*mgf)) else {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "PSS: HashMech must be SHA-1 or SHA-2 and Mgf a CKG_MGF1_SHA* value",
                );
            };
            let named = match m.code {
                SHA1_RSA_PKCS_PSS => Some(DigestAlg::Sha1),
                SHA224_RSA_PKCS_PSS => Some(DigestAlg::Sha224),
                SHA256_RSA_PKCS_PSS => Some(DigestAlg::Sha256),
                SHA384_RSA_PKCS_PSS => Some(DigestAlg::Sha384),
                SHA512_RSA_PKCS_PSS => Some(DigestAlg::Sha512),
                _ => None,
            };
            if named.is_some_and(|n| n != d) {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    "PSS: HashMech must be the mechanism's hash",
                );
            }
            // 0 (unset in proto3) and 0xffffffff (XCP_PSS_DEFAULT_VALUE) mean the hash length.
            let hl = digest_len(d) as u64;
            let salt = if *salt == 0 || *salt == 0xffff_ffff { hl } else { *salt };
            let salt = u32::try_from(salt).map_err(|_| {
                Ep11Error::new(ckr::MECHANISM_PARAM_INVALID, "PSS salt length too large")
            })?;
            let scheme = if d == g && u64::from(salt) == hl && !matches!(d, DigestAlg::Sha1 | DigestAlg::Sha224) {
                SignScheme::RsaPss(d)
            } else {
                SignScheme::RsaPssWith { hash: d, mgf: g, salt }
            };
            Plan::Sign {
                scheme,
                hash: named,
            }
        }
        ECDSA | ECDSA_SHA1 | ECDSA_SHA224 | ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512 | IBM_ECDSA_SHA224
        | IBM_ECDSA_SHA256 | IBM_ECDSA_SHA384 | IBM_ECDSA_SHA512
            if sign_ops =>
        {
            no_param(m)?;
            let hash = match m.code {
                ECDSA => None,
                ECDSA_SHA1 => Some(DigestAlg::Sha1),
                ECDSA_SHA224 | IBM_ECDSA_SHA224 => Some(DigestAlg::Sha224),
                ECDSA_SHA256 | IBM_ECDSA_SHA256 => Some(DigestAlg::Sha256),
                ECDSA_SHA384 | IBM_ECDSA_SHA384 => Some(DigestAlg::Sha384),
                _ => Some(DigestAlg::Sha512),
            };
            Plan::Sign {
                scheme: SignScheme::EcdsaDigest,
                hash,
            }
        }
        DSA | DSA_SHA1 | DSA_SHA224 | DSA_SHA256 | DSA_SHA384 | DSA_SHA512 if sign_ops => {
            no_param(m)?;
            let hash = match m.code {
                DSA => None,
                DSA_SHA1 => Some(DigestAlg::Sha1),
                DSA_SHA224 => Some(DigestAlg::Sha224),
                DSA_SHA256 => Some(DigestAlg::Sha256),
                DSA_SHA384 => Some(DigestAlg::Sha384),
                _ => Some(DigestAlg::Sha512),
            };
            Plan::Sign {
                scheme: SignScheme::DsaDigest,
                hash,
            }
        }
        IBM_ED25519_SHA512 if sign_ops => {
            no_param(m)?;
            Plan::Sign {
                scheme: SignScheme::Ed25519,
                hash: None,
            }
        }
        IBM_ECDSA_OTHER if sign_ops => match m.param {
            MechParam::Ecsg(ecsg::BIP340) => Plan::Sign {
                scheme: SignScheme::Bip340,
                hash: None,
            },
            MechParam::Ecsg(ecsg::BLS) => Plan::Sign {
                scheme: SignScheme::Bls,
                hash: None,
            },
            MechParam::Ecsg(ecsg::ECSDSA_S256) => Plan::Sign {
                scheme: SignScheme::EcSdsa(EcSdsa::Standard),
                hash: None,
            },
            MechParam::Ecsg(ecsg::ECSDSA_COMPR_MULTI) => Plan::Sign {
                scheme: SignScheme::EcSdsa(EcSdsa::CompressedMulti),
                hash: None,
            },
            _ => {
                return err(
                    ckr::MECHANISM_PARAM_INVALID,
                    format!(
                        "CKM_IBM_ECDSA_OTHER needs an ECSGParm: type 3 is EC-SDSA, 5 EC-SDSA over \
                         compressed points, 6 BLS, {} BIP340 Schnorr",
                        ecsg::BIP340
                    ),
                )
            }
        },
        ML_DSA if sign_ops => {
            ml_dsa_context(m)?;
            Plan::Sign {
                scheme: SignScheme::MlDsa,
                hash: None,
            }
        }
        code => {
            return err(
                ckr::MECHANISM_INVALID,
                format!(
                    "mechanism 0x{code:x} is not implemented for {} by this server (see GetMechanismList)",
                    op.name()
                ),
            )
        }
    };
    Ok(p)
}

impl Ep11<'_> {
    /// The plan of a call, under this unit's policy ([`MechanismPolicy`]): with PKCS#1 v1.5
    /// decryption switched off, `CKM_RSA_PKCS` neither decrypts nor unwraps; in FIPS mode,
    /// only approved uses are planned.
    pub(super) fn planned(&self, m: &Mech, op: Op) -> Result<Plan, Ep11Error> {
        self.offered(m.code, fips::use_of(op))?;
        plan(m, op)
    }

    /// A mechanism's information as this unit offers it (the list GetMechanismInfo gives).
    pub fn mechanism_info(&self, code: Ckm) -> Option<MechInfo> {
        self.mechanism_policy().info(code)
    }
}
