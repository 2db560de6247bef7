//! FIPS mode: what a unit whose provider runs a validated FIPS 140-3 module (or that enforces
//! the policy, [`CryptoUnit::enforce_fips_policy`]) still offers, and what it refuses.
//!
//! The rules are NIST's, as they stand for new use: SP 800-131A Rev. 2 (transitions), FIPS
//! 186-5 (signatures: RSA, ECDSA on the NIST curves, EdDSA; DSA for verification only), SP
//! 800-56A/B (key agreement and transport), SP 800-38 (AES modes), FIPS 180-4/202/198-1
//! (hashes, HMAC), FIPS 203 (ML-KEM). Three kinds of answer, per mechanism:
//!
//! - approved: every use the mechanism table lists;
//! - legacy: only the uses that process what already exists (decrypt, unwrap, verify): SHA-1
//!   signatures, DSA, X9.31 RSA signatures, Triple-DES;
//! - refused: mechanisms outside the approved set (DH on arbitrary groups, X25519, secp256k1,
//!   BIP32/SLIP10, BIP340, BLS, the generic-secret derivations, EC multiply) and ML-DSA, which
//!   aws-lc's FIPS module (v3, the one aws-lc-fips-sys builds) does not list as approved yet.
//!
//! `docs/fips.md` has the table for people; a test keeps the two in step.

use super::*;

/// The CKF_* flags that name uses of a mechanism (the others describe it: EC curve kinds).
pub const USES: u64 = ckf::ENCRYPT
    | ckf::DECRYPT
    | ckf::DIGEST
    | ckf::SIGN
    | ckf::VERIFY
    | ckf::GENERATE
    | ckf::GENERATE_KEY_PAIR
    | ckf::WRAP
    | ckf::UNWRAP
    | ckf::DERIVE;

/// Legacy use: processing data protected before the transition.
const PROCESS: u64 = ckf::DECRYPT | ckf::UNWRAP | ckf::VERIFY;

/// The uses FIPS mode allows of `code` (a subset of [`USES`]; 0 when it is refused).
pub fn allowed_uses(code: Ckm) -> u64 {
    use ckm::*;
    match code {
        // PKCS#1 v1.5 signatures stay; its encryption (key transport) ended in 2023.
        RSA_PKCS => ckf::SIGN | ckf::VERIFY,
        RSA_PKCS_KEY_PAIR_GEN
        | RSA_PKCS_OAEP
        | RSA_PKCS_PSS
        | SHA224_RSA_PKCS
        | SHA256_RSA_PKCS
        | SHA384_RSA_PKCS
        | SHA512_RSA_PKCS
        | SHA224_RSA_PKCS_PSS
        | SHA256_RSA_PKCS_PSS
        | SHA384_RSA_PKCS_PSS
        | SHA512_RSA_PKCS_PSS
        | EC_KEY_PAIR_GEN
        | ECDSA
        | ECDSA_SHA224
        | ECDSA_SHA256
        | ECDSA_SHA384
        | ECDSA_SHA512
        | IBM_ECDSA_SHA224
        | IBM_ECDSA_SHA256
        | IBM_ECDSA_SHA384
        | IBM_ECDSA_SHA512
        | ECDH1_DERIVE
        | IBM_ED25519_SHA512
        | SHA_1
        | SHA224
        | SHA256
        | SHA384
        | SHA512
        | SHA512_224
        | SHA512_256
        | IBM_SHA512_224
        | IBM_SHA512_256
        | IBM_SHA3_256
        | IBM_SHA3_384
        | IBM_SHA3_512
        | SHA_1_HMAC
        | SHA_1_HMAC_GENERAL
        | SHA224_HMAC
        | SHA224_HMAC_GENERAL
        | SHA256_HMAC
        | SHA256_HMAC_GENERAL
        | SHA384_HMAC
        | SHA384_HMAC_GENERAL
        | SHA512_HMAC
        | SHA512_HMAC_GENERAL
        | SHA512_224_HMAC
        | SHA512_224_HMAC_GENERAL
        | SHA512_256_HMAC
        | SHA512_256_HMAC_GENERAL
        | IBM_SHA512_224_HMAC
        | IBM_SHA512_256_HMAC
        | GENERIC_SECRET_KEY_GEN
        | AES_KEY_GEN
        | AES_ECB
        | AES_CBC
        | AES_CBC_PAD
        | AES_GCM
        | AES_CMAC
        | AES_CMAC_GENERAL
        | IBM_CMAC
        // A plain SPKI made into a key blob: no key transport, only the blob's own sealing.
        | IBM_TRANSPORTKEY
        // AES-GCM, or KTS-OAEP to an RSA key, with HMAC-SHA-256 over the whole.
        | IBM_ATTRIBUTEBOUND_WRAP
        | ML_KEM_KEY_PAIR_GEN
        | ML_KEM => USES,
        SHA1_RSA_PKCS | SHA1_RSA_PKCS_PSS | ECDSA_SHA1 | RSA_X9_31 | SHA1_RSA_X9_31 | DSA
        | DSA_SHA1 | DSA_SHA224 | DSA_SHA256 | DSA_SHA384 | DSA_SHA512 | DES3_ECB | DES3_CBC
        | DES3_CBC_PAD | DES3_CMAC => PROCESS,
        _ => 0,
    }
}

/// Whether FIPS mode allows keys on `c`: the NIST curves of FIPS 186-5 for ECDSA and
/// ECDH, and Ed25519 for EdDSA.
pub fn curve_allowed(c: Curve) -> bool {
    matches!(c, Curve::P256 | Curve::P384 | Curve::P521 | Curve::Ed25519)
}

impl Ep11<'_> {
    /// Refuses a use (`flag`, one CKF_* use) of a mechanism that this unit's policy took
    /// away from it: in FIPS mode, what [`allowed_uses`] leaves out; with PKCS#1 v1.5
    /// decryption switched off, `CKM_RSA_PKCS` decryption and unwrapping.
    pub(super) fn offered(&self, code: Ckm, flag: u64) -> Result<(), Ep11Error> {
        let policy = self.mechanism_policy();
        let base = mechanism_info(code).map_or(0, |m| m.flags);
        let offered = policy.info(code).map_or(0, |m| m.flags);
        let taken = (base & !offered) | if policy.fips && base == 0 { flag } else { 0 };
        if taken & flag == 0 {
            return Ok(());
        }
        if policy.fips && allowed_uses(code) & flag == 0 {
            return err(
                ckr::MECHANISM_INVALID,
                format!(
                    "mechanism 0x{code:x} is not approved for {} in FIPS mode (NIST SP 800-131A Rev. 2; \
                     docs/fips.md lists what is)",
                    use_name(flag)
                ),
            );
        }
        err(
            ckr::MECHANISM_INVALID,
            "CKM_RSA_PKCS decryption and unwrapping are switched off on this server \
             (PKCS#1 v1.5 padding oracles); use CKM_RSA_PKCS_OAEP",
        )
    }

    /// Refuses, in FIPS mode, a key on a curve FIPS mode does not allow.
    pub(super) fn fips_curve(&self, c: Curve) -> Result<(), Ep11Error> {
        if !self.mechanism_policy().fips || curve_allowed(c) {
            return Ok(());
        }
        err(
            ckr::CURVE_NOT_SUPPORTED,
            format!("{c:?} keys are not approved in FIPS mode (FIPS 186-5, SP 800-56A Rev. 3)"),
        )
    }

    /// Refuses, in FIPS mode, a key whose curve FIPS mode does not allow.
    pub(super) fn fips_key(&self, k: &Resolved) -> Result<(), Ep11Error> {
        match kind_of(k) {
            Some(AsymKind::Ec(c)) => self.fips_curve(c),
            _ => Ok(()),
        }
    }

    /// What this unit offers of the mechanism table.
    pub fn mechanism_policy(&self) -> MechanismPolicy {
        MechanismPolicy {
            rsa_pkcs1_decryption: self.rsa_pkcs1_decryption(),
            fips: self.fips_policy(),
        }
    }
}

fn use_name(flag: u64) -> &'static str {
    match flag {
        ckf::ENCRYPT => "encryption",
        ckf::DECRYPT => "decryption",
        ckf::DIGEST => "digests",
        ckf::SIGN => "signing",
        ckf::VERIFY => "verification",
        ckf::GENERATE => "key generation",
        ckf::GENERATE_KEY_PAIR => "key pair generation",
        ckf::WRAP => "wrapping",
        ckf::UNWRAP => "unwrapping",
        ckf::DERIVE => "derivation",
        _ => "this use",
    }
}

/// The CKF_* use of an operation.
pub(super) fn use_of(op: Op) -> u64 {
    match op {
        Op::Digest => ckf::DIGEST,
        Op::Encrypt => ckf::ENCRYPT,
        Op::Decrypt => ckf::DECRYPT,
        Op::Sign => ckf::SIGN,
        Op::Verify => ckf::VERIFY,
    }
}
