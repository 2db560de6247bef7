//! The few aws-lc C functions the safe aws-lc-rs API lacks, called through `aws-lc-sys`
//! (pinned to the version aws-lc-rs links, so there is one AWS-LC in the binary):
//!
//! * raw RSA with PKCS#1 v1.5 type-1 padding over caller data (`CKM_RSA_PKCS` sign and
//!   verify, and with a DigestInfo in front, SHA-1 and SHA-224 RSA signatures),
//! * ECDH on secp256k1,
//! * SHA-512/224, and HMAC over SHA-512/224 and SHA-512/256.
//!
//! This is the only module of Strongroom with `unsafe` code. Keys cross from the safe API as
//! DER (PKCS#8 or SubjectPublicKeyInfo) and are parsed here into owned `EVP_PKEY`s; no
//! pointer is shared with aws-lc-rs. Every `unsafe` block says why it is sound, and the
//! tests at the end exercise each function, including bad input.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use aws_lc_sys as sys;
use strongroom_engine::provider::CryptoError;
use zeroize::Zeroizing;

/// An owned `EVP_PKEY` parsed from DER.
pub(crate) struct Pkey(NonNull<sys::EVP_PKEY>);

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from EVP_parse_*_key, which returned a new reference that
        // this value owns alone; it is freed exactly once, here.
        unsafe { sys::EVP_PKEY_free(self.0.as_ptr()) }
    }
}

// SAFETY: the EVP_PKEY is never mutated after parsing. aws-lc documents RSA and EC_KEY
// objects as safe for concurrent use by several threads (the RSA blinding and Montgomery
// caches are created under the object's own lock), so sharing `&Pkey` across threads and
// moving it between them is sound.
unsafe impl Send for Pkey {}
// SAFETY: as above.
unsafe impl Sync for Pkey {}

fn parse(der: &[u8], private: bool) -> Option<Pkey> {
    let mut cbs = sys::CBS {
        data: std::ptr::null(),
        len: 0,
    };
    // SAFETY: CBS_init only stores the pointer and length of `der`, which outlives this
    // function; EVP_parse_*_key read at most `der.len()` bytes through the CBS and return
    // either null or a new EVP_PKEY that we own; CBS_len reads the CBS we own.
    unsafe {
        sys::CBS_init(&mut cbs, der.as_ptr(), der.len());
        let p = if private {
            sys::EVP_parse_private_key(&mut cbs)
        } else {
            sys::EVP_parse_public_key(&mut cbs)
        };
        let key = NonNull::new(p).map(Pkey)?;
        // Trailing bytes after the structure: refuse (the key drops and is freed).
        (sys::CBS_len(&cbs) == 0).then_some(key)
    }
}

impl Pkey {
    /// Parses a PKCS#8 PrivateKeyInfo.
    pub(crate) fn private(der: &[u8]) -> Option<Pkey> {
        parse(der, true)
    }
    /// Parses a SubjectPublicKeyInfo.
    pub(crate) fn public(der: &[u8]) -> Option<Pkey> {
        parse(der, false)
    }

    fn rsa(&self) -> Result<NonNull<sys::RSA>, CryptoError> {
        // SAFETY: the EVP_PKEY is valid while `self` lives; get0 returns a borrowed pointer
        // (or null when the key is not RSA) that we use only while `self` is borrowed.
        NonNull::new(unsafe { sys::EVP_PKEY_get0_RSA(self.0.as_ptr()) }).ok_or(CryptoError)
    }

    fn ec(&self) -> Result<NonNull<sys::EC_KEY>, CryptoError> {
        // SAFETY: as for `rsa`.
        NonNull::new(unsafe { sys::EVP_PKEY_get0_EC_KEY(self.0.as_ptr()) }).ok_or(CryptoError)
    }

    /// The RSA modulus length in bytes.
    fn rsa_size(&self) -> Result<usize, CryptoError> {
        let rsa = self.rsa()?;
        // SAFETY: `rsa` is a valid RSA borrowed from `self`.
        Ok(unsafe { sys::RSA_size(rsa.as_ptr()) } as usize)
    }
}

/// RSA private-key operation with PKCS#1 v1.5 type-1 padding over `data` (at most k − 11
/// bytes): `CKM_RSA_PKCS` signing.
pub(crate) fn rsa_sign_pkcs1_raw(key: &Pkey, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let rsa = key.rsa()?;
    let k = key.rsa_size()?;
    if k < 11 || data.len() > k - 11 {
        return Err(CryptoError);
    }
    let mut out = vec![0u8; k];
    let mut out_len = 0usize;
    // SAFETY: `rsa` is valid while `key` is borrowed; `out` has `out.len()` writable bytes
    // and that is the max_out passed; `data` is readable for `data.len()` bytes; aws-lc
    // writes at most max_out bytes and sets out_len.
    let ok = unsafe {
        sys::RSA_sign_raw(
            rsa.as_ptr(),
            &mut out_len,
            out.as_mut_ptr(),
            out.len(),
            data.as_ptr(),
            data.len(),
            sys::RSA_PKCS1_PADDING,
        )
    };
    if ok != 1 || out_len != k {
        return Err(CryptoError);
    }
    Ok(out)
}

/// RSA public-key operation on `sig` and removal of the PKCS#1 v1.5 type-1 padding: the
/// data that was signed (`CKM_RSA_PKCS` verification compares it with the expected data).
pub(crate) fn rsa_recover_pkcs1_raw(key: &Pkey, sig: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let rsa = key.rsa()?;
    let k = key.rsa_size()?;
    if sig.len() != k {
        return Err(CryptoError);
    }
    let mut out = vec![0u8; k];
    let mut out_len = 0usize;
    // SAFETY: as in `rsa_sign_pkcs1_raw`: valid RSA, `out` holds max_out bytes, `sig` is
    // readable for its length.
    let ok = unsafe {
        sys::RSA_verify_raw(
            rsa.as_ptr(),
            &mut out_len,
            out.as_mut_ptr(),
            out.len(),
            sig.as_ptr(),
            sig.len(),
            sys::RSA_PKCS1_PADDING,
        )
    };
    if ok != 1 || out_len > k {
        return Err(CryptoError);
    }
    out.truncate(out_len);
    Ok(out)
}

/// Owned `EC_POINT`.
struct Point(NonNull<sys::EC_POINT>);

impl Drop for Point {
    fn drop(&mut self) {
        // SAFETY: the point came from EC_POINT_new and is owned by this value alone.
        unsafe { sys::EC_POINT_free(self.0.as_ptr()) }
    }
}

/// ECDH with a private EC key and a peer's encoded point: the x-coordinate of the shared
/// point, as long as the field (used for secp256k1, which aws-lc-rs does not offer).
pub(crate) fn ecdh_raw(key: &Pkey, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let ec = key.ec()?;
    // SAFETY: `ec` is valid while `key` is borrowed; the group pointer it returns is owned
    // by the key and only used within this function.
    let group = unsafe { sys::EC_KEY_get0_group(ec.as_ptr()) };
    if group.is_null() {
        return Err(CryptoError);
    }
    // SAFETY: `group` is valid (above); EC_POINT_new returns null or a new point we own.
    let point = Point(NonNull::new(unsafe { sys::EC_POINT_new(group) }).ok_or(CryptoError)?);
    // SAFETY: `group` and `point` are valid; `peer` is readable for its length; a null
    // BN_CTX makes aws-lc allocate its own. The call checks that the point is on the curve.
    let ok = unsafe {
        sys::EC_POINT_oct2point(
            group,
            point.0.as_ptr(),
            peer.as_ptr(),
            peer.len(),
            std::ptr::null_mut(),
        )
    };
    if ok != 1 {
        return Err(CryptoError);
    }
    // SAFETY: `group` is valid.
    let field = (unsafe { sys::EC_GROUP_get_degree(group) } as usize).div_ceil(8);
    let mut out = Zeroizing::new(vec![0u8; field]);
    // SAFETY: `out` has `field` writable bytes and that is the outlen passed; the point and
    // key are valid; no KDF. Returns the number of bytes written or -1.
    let n = unsafe {
        sys::ECDH_compute_key(
            out.as_mut_ptr().cast(),
            out.len(),
            point.0.as_ptr(),
            ec.as_ptr(),
            None,
        )
    };
    if usize::try_from(n).ok() != Some(field) {
        return Err(CryptoError);
    }
    Ok(out)
}

/// SHA-512/224 of `data`.
pub(crate) fn sha512_224(data: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 28];
    // SAFETY: `data` is readable for its length and `out` has the 28 bytes SHA512_224
    // writes (SHA512_224_DIGEST_LENGTH).
    unsafe { sys::SHA512_224(data.as_ptr(), data.len(), out.as_mut_ptr()) };
    out.to_vec()
}

/// HMAC over SHA-512/224 (`wide = false`) or SHA-512/256 (`wide = true`).
pub(crate) fn hmac_sha512_t(wide: bool, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    // SAFETY: these return pointers to static EVP_MD tables.
    let md = unsafe {
        if wide {
            sys::EVP_sha512_256()
        } else {
            sys::EVP_sha512_224()
        }
    };
    let mut out = [0u8; 64];
    let mut len: std::os::raw::c_uint = 0;
    // SAFETY: `md` is a static table; `key` and `data` are readable for their lengths;
    // `out` has 64 bytes (EVP_MAX_MD_SIZE for SHA-512 family outputs is at most 64) and
    // HMAC writes the digest length into `len`.
    let r = unsafe {
        sys::HMAC(
            md,
            key.as_ptr().cast(),
            key.len(),
            data.as_ptr(),
            data.len(),
            out.as_mut_ptr(),
            &mut len,
        )
    };
    if r.is_null() || len as usize > out.len() {
        return Err(CryptoError);
    }
    Ok(out[..len as usize].to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{self, KeyPair as _};

    fn rsa_pkcs8() -> Vec<u8> {
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let d: aws_lc_rs::encoding::Pkcs8V1Der = kp.as_der().unwrap();
        d.as_ref().to_vec()
    }

    #[test]
    fn raw_rsa_over_a_digest_info_equals_the_safe_pkcs1_signature() {
        let der = rsa_pkcs8();
        let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).unwrap();
        let spki = kp.public_key().as_der().unwrap();
        let msg = b"strongroom";
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, msg);
        // DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
        let mut di = hex_lit("3031300d060960864801650304020105000420");
        di.extend_from_slice(digest.as_ref());
        let key = Pkey::private(&der).unwrap();
        let raw = rsa_sign_pkcs1_raw(&key, &di).unwrap();
        let mut safe = vec![0u8; kp.public_modulus_len()];
        kp.sign(
            &signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            msg,
            &mut safe,
        )
        .unwrap();
        assert_eq!(raw, safe);
        let public = Pkey::public(spki.as_ref()).unwrap();
        assert_eq!(rsa_recover_pkcs1_raw(&public, &raw).unwrap(), di);
        let mut bad = raw.clone();
        bad[10] ^= 1;
        assert!(rsa_recover_pkcs1_raw(&public, &bad).is_err());
        assert!(rsa_recover_pkcs1_raw(&public, &raw[1..]).is_err());
        // Too long for the padding.
        assert!(rsa_sign_pkcs1_raw(&key, &[0u8; 246]).is_err());
        assert!(rsa_sign_pkcs1_raw(&key, &[0u8; 245]).is_ok());
    }

    #[test]
    fn parsing_refuses_garbage_trailing_bytes_and_the_wrong_key_kind() {
        let der = rsa_pkcs8();
        assert!(Pkey::private(&der[..der.len() - 1]).is_none());
        let mut long = der.clone();
        long.push(0);
        assert!(Pkey::private(&long).is_none());
        assert!(Pkey::private(b"not a key").is_none());
        assert!(Pkey::public(&der).is_none());
        let key = Pkey::private(&der).unwrap();
        assert!(ecdh_raw(&key, &[4; 65]).is_err());
    }

    #[test]
    fn secp256k1_ecdh_agrees_both_ways_and_refuses_points_off_the_curve() {
        let gen = || {
            let kp =
                signature::EcdsaKeyPair::generate(&signature::ECDSA_P256K1_SHA256_FIXED_SIGNING)
                    .unwrap();
            let point = kp.public_key().as_ref().to_vec();
            (kp.to_pkcs8v1().unwrap().as_ref().to_vec(), point)
        };
        let (a, pa) = gen();
        let (b, pb) = gen();
        let ka = Pkey::private(&a).unwrap();
        let kb = Pkey::private(&b).unwrap();
        let z1 = ecdh_raw(&ka, &pb).unwrap();
        let z2 = ecdh_raw(&kb, &pa).unwrap();
        assert_eq!(z1.len(), 32);
        assert_eq!(*z1, *z2);
        let mut off = pb.clone();
        off[40] ^= 1;
        assert!(ecdh_raw(&ka, &off).is_err());
        assert!(ecdh_raw(&ka, &[]).is_err());
    }

    #[test]
    fn sha512_224_and_hmac_known_answers() {
        // FIPS 180-4 example "abc" for SHA-512/224.
        assert_eq!(
            sha512_224(b"abc"),
            hex_lit("4634270f707b6a54daae7530460842e20e37ed265ceee9a43e8924aa")
        );
        let t = hmac_sha512_t(true, b"key", b"data").unwrap();
        assert_eq!(t.len(), 32);
        assert_eq!(hmac_sha512_t(false, b"key", b"data").unwrap().len(), 28);
    }

    fn hex_lit(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }
}
