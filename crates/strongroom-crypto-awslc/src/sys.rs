//! The few aws-lc C functions the safe aws-lc-rs API lacks, called through `aws-lc-sys`
//! (pinned to the version aws-lc-rs links, so there is one AWS-LC in the binary):
//!
//! * raw RSA with PKCS#1 v1.5 type-1 padding over caller data (`CKM_RSA_PKCS` sign and
//!   verify, and with a DigestInfo in front, SHA-1 and SHA-224 RSA signatures),
//! * ECDH on secp256k1, and the point multiplication d·Q (CKM_IBM_EC_MULTIPLY),
//! * SHA-512/224, and HMAC over SHA-512/224 and SHA-512/256,
//! * RSA key generation with a chosen size and public exponent,
//! * DSA: parameters, key pairs, signatures (r ‖ s),
//! * Diffie-Hellman (PKCS #3): RFC 7919 groups, key pairs, the padded shared secret,
//! * ANSI X9.31 RSA signatures (raw RSA on the X9.31 encoding, min(s, n − s)),
//! * SHA-1/SHA-2 contexts whose state is exported between calls (GREP11 multi-part
//!   digests and hash-then-sign keep a fixed-size state instead of the data),
//! * RSA-PSS and RSA-OAEP with any SHA-1/SHA-2 hash, an MGF1 hash of their own and (PSS)
//!   any salt length — the combinations the safe API's fixed algorithms do not cover.
//! * (tests only) ML-KEM encapsulation with a given `m`, for NIST's encapsulation vectors.
//!
//! This is the only module of Strongroom with `unsafe` code. Keys cross from the safe API as
//! DER (PKCS#8 or SubjectPublicKeyInfo) and are parsed here into owned `EVP_PKEY`s; no
//! pointer is shared with aws-lc-rs. Every `unsafe` block says why it is sound, and the
//! tests at the end exercise each function, including bad input.
#![allow(unsafe_code)]

use std::ptr::NonNull;

#[cfg(feature = "fips")]
use aws_lc_fips_sys as sys;
#[cfg(not(feature = "fips"))]
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

/// The raw RSA operation of `key` on `input` (private: sign, public: verify/recover) with
/// aws-lc's `padding` (PKCS#1 type 1 or none): at most k bytes out.
fn rsa_raw(
    key: &Pkey,
    private: bool,
    input: &[u8],
    padding: std::os::raw::c_int,
) -> Result<Vec<u8>, CryptoError> {
    let rsa = key.rsa()?;
    let k = key.rsa_size()?;
    let mut out = vec![0u8; k];
    let mut out_len = 0usize;
    // SAFETY: `rsa` is valid while `key` is borrowed; `out` has `out.len()` writable bytes
    // and that is the max_out passed; `input` is readable for its length; aws-lc writes at
    // most max_out bytes and sets out_len (it checks the input length for the padding).
    let ok = unsafe {
        if private {
            sys::RSA_sign_raw(
                rsa.as_ptr(),
                &mut out_len,
                out.as_mut_ptr(),
                out.len(),
                input.as_ptr(),
                input.len(),
                padding,
            )
        } else {
            sys::RSA_verify_raw(
                rsa.as_ptr(),
                &mut out_len,
                out.as_mut_ptr(),
                out.len(),
                input.as_ptr(),
                input.len(),
                padding,
            )
        }
    };
    if ok != 1 || out_len > k {
        return Err(CryptoError);
    }
    out.truncate(out_len);
    Ok(out)
}

/// RSA private-key operation with PKCS#1 v1.5 type-1 padding over `data` (at most k − 11
/// bytes): `CKM_RSA_PKCS` signing.
pub(crate) fn rsa_sign_pkcs1_raw(key: &Pkey, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let k = key.rsa_size()?;
    if k < 11 || data.len() > k - 11 {
        return Err(CryptoError);
    }
    let out = rsa_raw(key, true, data, sys::RSA_PKCS1_PADDING)?;
    if out.len() != k {
        return Err(CryptoError);
    }
    Ok(out)
}

/// RSA public-key operation on `sig` and removal of the PKCS#1 v1.5 type-1 padding: the
/// data that was signed (`CKM_RSA_PKCS` verification compares it with the expected data).
pub(crate) fn rsa_recover_pkcs1_raw(key: &Pkey, sig: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sig.len() != key.rsa_size()? {
        return Err(CryptoError);
    }
    rsa_raw(key, false, sig, sys::RSA_PKCS1_PADDING)
}

/// Owned `EC_POINT`.
struct Point(NonNull<sys::EC_POINT>);

impl Drop for Point {
    fn drop(&mut self) {
        // SAFETY: the point came from EC_POINT_new and is owned by this value alone.
        unsafe { sys::EC_POINT_free(self.0.as_ptr()) }
    }
}

/// The peer point `peer` parsed on the key's curve (checked to lie on it), with the group.
fn peer_point(
    key: &Pkey,
    peer: &[u8],
) -> Result<(NonNull<sys::EC_KEY>, *const sys::EC_GROUP, Point), CryptoError> {
    let ec = key.ec()?;
    // SAFETY: `ec` is valid while `key` is borrowed; the group pointer it returns is owned
    // by the key and used only while `key` is borrowed.
    let group = unsafe { sys::EC_KEY_get0_group(ec.as_ptr()) };
    if group.is_null() {
        return Err(CryptoError);
    }
    // SAFETY: `group` is valid; EC_POINT_new returns null or a new point we own.
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
    Ok((ec, group, point))
}

/// d·Q for the key's private scalar d and a peer point Q (encoded): the uncompressed point.
pub(crate) fn ec_multiply(key: &Pkey, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (ec, group, q) = peer_point(key, peer)?;
    // SAFETY: `ec` is valid; the private scalar is borrowed from it (null if absent).
    let d = unsafe { sys::EC_KEY_get0_private_key(ec.as_ptr()) };
    if d.is_null() {
        return Err(CryptoError);
    }
    // SAFETY: `group` is valid; the result point is new and owned by `Point`.
    let r = Point(NonNull::new(unsafe { sys::EC_POINT_new(group) }).ok_or(CryptoError)?);
    // SAFETY: all pointers are valid; n = null means no generator term; null BN_CTX.
    if unsafe {
        sys::EC_POINT_mul(
            group,
            r.0.as_ptr(),
            std::ptr::null(),
            q.0.as_ptr(),
            d,
            std::ptr::null_mut(),
        )
    } != 1
    {
        return Err(CryptoError);
    }
    let form = sys::point_conversion_form_t::POINT_CONVERSION_UNCOMPRESSED;
    // SAFETY: with a null buffer point2oct returns the length it needs; the second call
    // writes exactly that many bytes into `out`. The point at infinity gives length 1 and
    // is refused.
    unsafe {
        let len = sys::EC_POINT_point2oct(
            group,
            r.0.as_ptr(),
            form,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        if len < 2 {
            return Err(CryptoError);
        }
        let mut out = Zeroizing::new(vec![0u8; len]);
        if sys::EC_POINT_point2oct(
            group,
            r.0.as_ptr(),
            form,
            out.as_mut_ptr(),
            len,
            std::ptr::null_mut(),
        ) != len
        {
            return Err(CryptoError);
        }
        Ok(out)
    }
}

/// ECDH with a private EC key and a peer's encoded point: the x-coordinate of the shared
/// point, as long as the field (used for secp256k1, which aws-lc-rs does not offer).
pub(crate) fn ecdh_raw(key: &Pkey, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (ec, group, point) = peer_point(key, peer)?;
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

/// Runs a marshalling function into a fresh CBB and returns the bytes it wrote.
fn marshal(f: impl FnOnce(*mut sys::CBB) -> std::os::raw::c_int) -> Result<Vec<u8>, CryptoError> {
    let mut cbb = std::mem::MaybeUninit::<sys::CBB>::uninit();
    // SAFETY: CBB_init initialises the CBB (returns 0 only on allocation failure, after
    // which the CBB is still safe to clean up); `f` writes into it; CBB_finish hands us a
    // buffer of `len` bytes allocated by aws-lc, which we copy and free with OPENSSL_free;
    // on any failure CBB_cleanup releases what the CBB holds.
    unsafe {
        if sys::CBB_init(cbb.as_mut_ptr(), 64) != 1 {
            return Err(CryptoError);
        }
        if f(cbb.as_mut_ptr()) != 1 {
            sys::CBB_cleanup(cbb.as_mut_ptr());
            return Err(CryptoError);
        }
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut len = 0usize;
        if sys::CBB_finish(cbb.as_mut_ptr(), &mut data, &mut len) != 1 || data.is_null() {
            sys::CBB_cleanup(cbb.as_mut_ptr());
            return Err(CryptoError);
        }
        let out = std::slice::from_raw_parts(data, len).to_vec();
        sys::OPENSSL_free(data.cast());
        Ok(out)
    }
}

/// A new EVP_PKEY owning `assign`'s key (RSA or DSA).
fn pkey_from(
    assign: impl FnOnce(*mut sys::EVP_PKEY) -> std::os::raw::c_int,
) -> Result<Pkey, CryptoError> {
    // SAFETY: EVP_PKEY_new returns null or a new EVP_PKEY that `Pkey` owns from here on, so
    // it is freed on every path; `assign` transfers ownership of its key into it.
    let pkey = Pkey(NonNull::new(unsafe { sys::EVP_PKEY_new() }).ok_or(CryptoError)?);
    if assign(pkey.0.as_ptr()) != 1 {
        return Err(CryptoError);
    }
    Ok(pkey)
}

impl Pkey {
    /// PKCS#8 PrivateKeyInfo of this (private) key.
    pub(crate) fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        // SAFETY: the EVP_PKEY is valid while `self` lives; the CBB comes from `marshal`.
        marshal(|cbb| unsafe { sys::EVP_marshal_private_key(cbb, self.0.as_ptr()) })
            .map(Zeroizing::new)
    }
    /// SubjectPublicKeyInfo of this key.
    pub(crate) fn to_spki(&self) -> Result<Vec<u8>, CryptoError> {
        // SAFETY: as above.
        marshal(|cbb| unsafe { sys::EVP_marshal_public_key(cbb, self.0.as_ptr()) })
    }
    fn dsa(&self) -> Result<NonNull<sys::DSA>, CryptoError> {
        // SAFETY: as for `rsa`.
        NonNull::new(unsafe { sys::EVP_PKEY_get0_DSA(self.0.as_ptr()) }).ok_or(CryptoError)
    }
    /// DSA: (bits of p, bytes of q).
    pub(crate) fn dsa_sizes(&self) -> Result<(u32, usize), CryptoError> {
        let dsa = self.dsa()?;
        let (mut p, mut q, mut g) = (std::ptr::null(), std::ptr::null(), std::ptr::null());
        // SAFETY: `dsa` is valid while `self` is borrowed; get0 fills borrowed pointers.
        unsafe { sys::DSA_get0_pqg(dsa.as_ptr(), &mut p, &mut q, &mut g) };
        if p.is_null() || q.is_null() {
            return Err(CryptoError);
        }
        // SAFETY: p and q are valid BIGNUMs owned by the DSA.
        Ok(unsafe { (sys::BN_num_bits(p), sys::BN_num_bytes(q) as usize) })
    }
}

/// Owned BIGNUM.
struct Bn(NonNull<sys::BIGNUM>);
impl Drop for Bn {
    fn drop(&mut self) {
        // SAFETY: owned by this value alone.
        unsafe { sys::BN_free(self.0.as_ptr()) }
    }
}

/// Generates an RSA key of `bits` bits with public exponent `e` (odd, 17 ≤ e < 2³²):
/// PKCS#8. aws-lc rounds sizes down to a multiple of 128; the caller checks the result.
pub(crate) fn rsa_generate(bits: u32, e: u64) -> Result<Pkey, CryptoError> {
    if e < 17
        || e.is_multiple_of(2)
        || e >= 1 << 32
        || !(2048..=8192).contains(&bits)
        || !bits.is_multiple_of(128)
    {
        return Err(CryptoError);
    }
    // SAFETY: BN_new returns null or a BIGNUM that `Bn` owns; BN_set_word writes it.
    let bn = Bn(NonNull::new(unsafe { sys::BN_new() }).ok_or(CryptoError)?);
    // SAFETY: `bn` is valid.
    if unsafe { sys::BN_set_word(bn.0.as_ptr(), e) } != 1 {
        return Err(CryptoError);
    }
    // SAFETY: RSA_new returns null or a new RSA we own until EVP_PKEY_assign_RSA takes it.
    let rsa = unsafe { sys::RSA_new() };
    if rsa.is_null() {
        return Err(CryptoError);
    }
    // SAFETY: `rsa` and `bn` are valid; no callback. On failure we free `rsa` ourselves.
    let ok = unsafe {
        sys::RSA_generate_key_ex(
            rsa,
            bits as std::os::raw::c_int,
            bn.0.as_ptr(),
            std::ptr::null_mut(),
        )
    };
    if ok != 1 {
        // SAFETY: `rsa` is still ours.
        unsafe { sys::RSA_free(rsa) };
        return Err(CryptoError);
    }
    pkey_from(|pk| {
        // SAFETY: `pk` is a valid new EVP_PKEY; assign takes ownership of `rsa` on success.
        let r = unsafe { sys::EVP_PKEY_assign_RSA(pk, rsa) };
        if r != 1 {
            // SAFETY: on failure `rsa` is still ours, and freed once here.
            unsafe { sys::RSA_free(rsa) };
        }
        r
    })
}

/// DSA domain parameters of `bits` bits (q: 160 bits below 2048, 256 from 2048 up), as
/// the DER Dss-Parms SEQUENCE { p, q, g }.
pub(crate) fn dsa_parameters(bits: u32) -> Result<Vec<u8>, CryptoError> {
    if !(2048..=3072).contains(&bits) {
        return Err(CryptoError);
    }
    // SAFETY: DSA_new returns null or a DSA we own and free below on every path.
    let dsa = unsafe { sys::DSA_new() };
    if dsa.is_null() {
        return Err(CryptoError);
    }
    // SAFETY: `dsa` is valid; no seed, counter, h or callback.
    let ok = unsafe {
        sys::DSA_generate_parameters_ex(
            dsa,
            bits,
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    // SAFETY: `dsa` is valid for marshalling when generation succeeded.
    let out = if ok == 1 {
        marshal(|cbb| unsafe { sys::DSA_marshal_parameters(cbb, dsa) })
    } else {
        Err(CryptoError)
    };
    // SAFETY: `dsa` is ours.
    unsafe { sys::DSA_free(dsa) };
    out
}

/// A DSA key pair in the given parameters (DER Dss-Parms).
pub(crate) fn dsa_generate(params: &[u8]) -> Result<Pkey, CryptoError> {
    let mut cbs = sys::CBS {
        data: std::ptr::null(),
        len: 0,
    };
    // SAFETY: the CBS points into `params`, which outlives the parse; DSA_parse_parameters
    // returns null or a new DSA we own until EVP_PKEY_assign_DSA takes it.
    let dsa = unsafe {
        sys::CBS_init(&mut cbs, params.as_ptr(), params.len());
        sys::DSA_parse_parameters(&mut cbs)
    };
    if dsa.is_null() {
        return Err(CryptoError);
    }
    // SAFETY: `cbs` is ours; `dsa` is valid.
    let ok = unsafe { sys::CBS_len(&cbs) == 0 && sys::DSA_generate_key(dsa) == 1 };
    if !ok {
        // SAFETY: `dsa` is still ours.
        unsafe { sys::DSA_free(dsa) };
        return Err(CryptoError);
    }
    pkey_from(|pk| {
        // SAFETY: `pk` is a valid new EVP_PKEY; assign takes ownership of `dsa` on success.
        let r = unsafe { sys::EVP_PKEY_assign_DSA(pk, dsa) };
        if r != 1 {
            // SAFETY: on failure `dsa` is still ours, and freed once here.
            unsafe { sys::DSA_free(dsa) };
        }
        r
    })
}

/// DSA signature over a digest: r ‖ s, each as long as q.
pub(crate) fn dsa_sign(key: &Pkey, digest: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let dsa = key.dsa()?;
    let (_, qlen) = key.dsa_sizes()?;
    // SAFETY: `dsa` is valid while `key` is borrowed; `digest` is readable; the result is
    // null or a DSA_SIG we own and free below.
    let sig = unsafe { sys::DSA_do_sign(digest.as_ptr(), digest.len(), dsa.as_ptr()) };
    if sig.is_null() {
        return Err(CryptoError);
    }
    let (mut r, mut s) = (std::ptr::null(), std::ptr::null());
    let mut out = vec![0u8; 2 * qlen];
    // SAFETY: `sig` is valid; get0 borrows r and s from it; each BN_bn2bin_padded writes
    // exactly `qlen` bytes into its half of `out` (fails if the number is longer).
    let ok = unsafe {
        sys::DSA_SIG_get0(sig, &mut r, &mut s);
        let ok = !r.is_null()
            && !s.is_null()
            && sys::BN_bn2bin_padded(out.as_mut_ptr(), qlen, r) == 1
            && sys::BN_bn2bin_padded(out.as_mut_ptr().add(qlen), qlen, s) == 1;
        sys::DSA_SIG_free(sig);
        ok
    };
    if ok {
        Ok(out)
    } else {
        Err(CryptoError)
    }
}

/// Verifies an r ‖ s DSA signature over a digest.
pub(crate) fn dsa_verify(key: &Pkey, digest: &[u8], sig: &[u8]) -> bool {
    let (Ok(dsa), Ok((_, qlen))) = (key.dsa(), key.dsa_sizes()) else {
        return false;
    };
    if sig.len() != 2 * qlen {
        return false;
    }
    // SAFETY: BN_bin2bn reads `qlen` bytes from each half of `sig` and returns new BIGNUMs
    // (or null); DSA_SIG_new returns a new DSA_SIG; DSA_SIG_set0 takes ownership of r and s
    // on success, after which freeing the DSA_SIG frees them; on failure we free them.
    unsafe {
        let r = sys::BN_bin2bn(sig.as_ptr(), qlen, std::ptr::null_mut());
        let s = sys::BN_bin2bn(sig.as_ptr().add(qlen), qlen, std::ptr::null_mut());
        let ds = sys::DSA_SIG_new();
        if r.is_null() || s.is_null() || ds.is_null() || sys::DSA_SIG_set0(ds, r, s) != 1 {
            if !r.is_null() {
                sys::BN_free(r);
            }
            if !s.is_null() {
                sys::BN_free(s);
            }
            if !ds.is_null() {
                sys::DSA_SIG_free(ds);
            }
            return false;
        }
        let ok = sys::DSA_do_verify(digest.as_ptr(), digest.len(), ds, dsa.as_ptr()) == 1;
        sys::DSA_SIG_free(ds);
        ok
    }
}

/// Owned DH.
struct Dh(NonNull<sys::DH>);
impl Drop for Dh {
    fn drop(&mut self) {
        // SAFETY: owned by this value alone.
        unsafe { sys::DH_free(self.0.as_ptr()) }
    }
}

fn dh_parse(params: &[u8]) -> Result<Dh, CryptoError> {
    let mut cbs = sys::CBS {
        data: std::ptr::null(),
        len: 0,
    };
    // SAFETY: the CBS points into `params`, which outlives the parse; the result is null
    // or a new DH that `Dh` owns; CBS_len reads our CBS.
    unsafe {
        sys::CBS_init(&mut cbs, params.as_ptr(), params.len());
        let dh = Dh(NonNull::new(sys::DH_parse_parameters(&mut cbs)).ok_or(CryptoError)?);
        if sys::CBS_len(&cbs) != 0 {
            return Err(CryptoError);
        }
        Ok(dh)
    }
}

fn bn_bytes(bn: *const sys::BIGNUM) -> Vec<u8> {
    // SAFETY: `bn` is a valid BIGNUM (checked non-null by the callers); BN_bn2bin writes
    // exactly BN_num_bytes bytes into a buffer of that size.
    unsafe {
        let mut out = vec![0u8; sys::BN_num_bytes(bn) as usize];
        let n = sys::BN_bn2bin(bn, out.as_mut_ptr());
        out.truncate(n);
        out
    }
}

/// The RFC 7919 finite-field group of `bits` bits (2048, 3072, 4096 or 8192) as a DER
/// DHParameter.
pub(crate) fn dh_rfc7919(bits: u32) -> Result<Vec<u8>, CryptoError> {
    let nid = match bits {
        2048 => sys::NID_ffdhe2048,
        3072 => sys::NID_ffdhe3072,
        4096 => sys::NID_ffdhe4096,
        8192 => sys::NID_ffdhe8192,
        _ => return Err(CryptoError),
    };
    // SAFETY: DH_new_by_nid returns null or a new DH that `Dh` owns.
    let dh = Dh(NonNull::new(unsafe { sys::DH_new_by_nid(nid) }).ok_or(CryptoError)?);
    // SAFETY: `dh` is valid; the CBB comes from `marshal`.
    marshal(|cbb| unsafe { sys::DH_marshal_parameters(cbb, dh.0.as_ptr()) })
}

/// (private value x, public value y, bits of p).
pub(crate) type DhPair = (Zeroizing<Vec<u8>>, Vec<u8>, u32);

/// A DH key pair in the given DER DHParameter: (private value x, public value y), both
/// unsigned big-endian, and the bits of p.
pub(crate) fn dh_generate(params: &[u8]) -> Result<DhPair, CryptoError> {
    let dh = dh_parse(params)?;
    // SAFETY: `dh` is valid; DH_generate_key stores a fresh key pair in it.
    if unsafe { sys::DH_generate_key(dh.0.as_ptr()) } != 1 {
        return Err(CryptoError);
    }
    let (mut y, mut x) = (std::ptr::null(), std::ptr::null());
    let (mut p, mut q, mut g) = (std::ptr::null(), std::ptr::null(), std::ptr::null());
    // SAFETY: `dh` is valid; get0 fills borrowed pointers that live as long as `dh`.
    unsafe {
        sys::DH_get0_key(dh.0.as_ptr(), &mut y, &mut x);
        sys::DH_get0_pqg(dh.0.as_ptr(), &mut p, &mut q, &mut g);
    }
    if x.is_null() || y.is_null() || p.is_null() {
        return Err(CryptoError);
    }
    // SAFETY: `p` is a valid BIGNUM owned by `dh`.
    let bits = unsafe { sys::BN_num_bits(p) };
    Ok((Zeroizing::new(bn_bytes(x)), bn_bytes(y), bits))
}

/// The DH shared secret (padded to the length of p) of private value `x` in `params` with
/// the peer's public value (unsigned big-endian). aws-lc checks the peer value.
pub(crate) fn dh_agree(
    params: &[u8],
    x: &[u8],
    peer: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let dh = dh_parse(params)?;
    // SAFETY: BN_bin2bn reads the given slices and returns new BIGNUMs (or null); DH_set0_key
    // takes ownership of both on success (we pass our own copy of the public value, which
    // it only needs to be non-null); on failure we free them.
    unsafe {
        let priv_bn = sys::BN_bin2bn(x.as_ptr(), x.len(), std::ptr::null_mut());
        let pub_bn = sys::BN_bin2bn(peer.as_ptr(), peer.len(), std::ptr::null_mut());
        if priv_bn.is_null()
            || pub_bn.is_null()
            || sys::DH_set0_key(dh.0.as_ptr(), std::ptr::null_mut(), priv_bn) != 1
        {
            if !priv_bn.is_null() {
                sys::BN_free(priv_bn);
            }
            if !pub_bn.is_null() {
                sys::BN_free(pub_bn);
            }
            return Err(CryptoError);
        }
        let size = sys::DH_size(dh.0.as_ptr());
        let Ok(size) = usize::try_from(size) else {
            sys::BN_free(pub_bn);
            return Err(CryptoError);
        };
        let mut out = Zeroizing::new(vec![0u8; size]);
        // `out` holds DH_size bytes, what DH_compute_key_padded writes.
        let n = sys::DH_compute_key_padded(out.as_mut_ptr(), pub_bn, dh.0.as_ptr());
        sys::BN_free(pub_bn);
        if usize::try_from(n).ok() != Some(size) {
            return Err(CryptoError);
        }
        Ok(out)
    }
}

/// The EVP_MD of a SHA-1/SHA-2 hash.
pub(crate) fn md(
    h: strongroom_engine::provider::DigestAlg,
) -> Result<*const sys::EVP_MD, CryptoError> {
    use strongroom_engine::provider::DigestAlg::*;
    // SAFETY: these return pointers to static EVP_MD tables.
    let m = unsafe {
        match h {
            Sha1 => sys::EVP_sha1(),
            Sha224 => sys::EVP_sha224(),
            Sha256 => sys::EVP_sha256(),
            Sha384 => sys::EVP_sha384(),
            Sha512 => sys::EVP_sha512(),
            _ => return Err(CryptoError),
        }
    };
    if m.is_null() {
        Err(CryptoError)
    } else {
        Ok(m)
    }
}

/// RSA-PSS signature over `digest` (as long as `hash`'s output) with MGF1(`mgf`) and a salt
/// of `salt` bytes.
pub(crate) fn rsa_pss_sign(
    key: &Pkey,
    hash: *const sys::EVP_MD,
    mgf: *const sys::EVP_MD,
    salt: usize,
    digest: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let rsa = key.rsa()?;
    let k = key.rsa_size()?;
    let salt = std::os::raw::c_int::try_from(salt).map_err(|_| CryptoError)?;
    let mut out = vec![0u8; k];
    let mut out_len = 0usize;
    // SAFETY: `rsa` is valid while `key` is borrowed; `out` holds max_out bytes; `digest`
    // is readable; `hash` and `mgf` are static EVP_MD tables from `md`. aws-lc checks that
    // the digest length matches `hash` and that the salt fits the modulus.
    let ok = unsafe {
        sys::RSA_sign_pss_mgf1(
            rsa.as_ptr(),
            &mut out_len,
            out.as_mut_ptr(),
            out.len(),
            digest.as_ptr(),
            digest.len(),
            hash,
            mgf,
            salt,
        )
    };
    if ok != 1 || out_len != k {
        return Err(CryptoError);
    }
    Ok(out)
}

/// Verifies an RSA-PSS signature (see [`rsa_pss_sign`]).
pub(crate) fn rsa_pss_verify(
    key: &Pkey,
    hash: *const sys::EVP_MD,
    mgf: *const sys::EVP_MD,
    salt: usize,
    digest: &[u8],
    sig: &[u8],
) -> bool {
    let (Ok(rsa), Ok(salt)) = (key.rsa(), std::os::raw::c_int::try_from(salt)) else {
        return false;
    };
    // SAFETY: as in `rsa_pss_sign`; `sig` is readable for its length.
    unsafe {
        sys::RSA_verify_pss_mgf1(
            rsa.as_ptr(),
            digest.as_ptr(),
            digest.len(),
            hash,
            mgf,
            salt,
            sig.as_ptr(),
            sig.len(),
        ) == 1
    }
}

/// Owned EVP_PKEY_CTX.
struct Ctx(NonNull<sys::EVP_PKEY_CTX>);
impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: owned by this value alone.
        unsafe { sys::EVP_PKEY_CTX_free(self.0.as_ptr()) }
    }
}

/// RSA-OAEP with hash `hash`, MGF1(`mgf`) and `label`: encryption (public key) or
/// decryption (private key).
pub(crate) fn rsa_oaep(
    key: &Pkey,
    decrypt: bool,
    hash: *const sys::EVP_MD,
    mgf: *const sys::EVP_MD,
    label: &[u8],
    input: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let k = key.rsa_size()?;
    // SAFETY: the EVP_PKEY is valid; EVP_PKEY_CTX_new takes its own reference and returns
    // null or a context that `Ctx` owns.
    let ctx =
        Ctx(
            NonNull::new(unsafe { sys::EVP_PKEY_CTX_new(key.0.as_ptr(), std::ptr::null_mut()) })
                .ok_or(CryptoError)?,
        );
    let c = ctx.0.as_ptr();
    // SAFETY: `c` is a valid context; `hash`/`mgf` are static tables. The label is copied
    // into a buffer from OPENSSL_malloc because the context takes ownership of it (on
    // failure the buffer is ours to free). `out` holds `k` bytes, the most RSA produces.
    unsafe {
        let init = if decrypt {
            sys::EVP_PKEY_decrypt_init(c)
        } else {
            sys::EVP_PKEY_encrypt_init(c)
        };
        if init != 1
            || sys::EVP_PKEY_CTX_set_rsa_padding(c, sys::RSA_PKCS1_OAEP_PADDING) != 1
            || sys::EVP_PKEY_CTX_set_rsa_oaep_md(c, hash) != 1
            || sys::EVP_PKEY_CTX_set_rsa_mgf1_md(c, mgf) != 1
        {
            return Err(CryptoError);
        }
        if !label.is_empty() {
            let buf = sys::OPENSSL_malloc(label.len()).cast::<u8>();
            if buf.is_null() {
                return Err(CryptoError);
            }
            std::ptr::copy_nonoverlapping(label.as_ptr(), buf, label.len());
            if sys::EVP_PKEY_CTX_set0_rsa_oaep_label(c, buf, label.len()) != 1 {
                sys::OPENSSL_free(buf.cast());
                return Err(CryptoError);
            }
        }
        let mut out = Zeroizing::new(vec![0u8; k]);
        let mut out_len = out.len();
        let ok = if decrypt {
            sys::EVP_PKEY_decrypt(
                c,
                out.as_mut_ptr(),
                &mut out_len,
                input.as_ptr(),
                input.len(),
            )
        } else {
            sys::EVP_PKEY_encrypt(
                c,
                out.as_mut_ptr(),
                &mut out_len,
                input.as_ptr(),
                input.len(),
            )
        };
        if ok != 1 || out_len > k {
            return Err(CryptoError);
        }
        out.truncate(out_len);
        Ok(out)
    }
}

/// A SHA-1/SHA-2 computation in progress.
enum Sha {
    One(sys::SHA_CTX),
    Two256(sys::SHA256_CTX),
    Two512(sys::SHA512_CTX),
}

/// (context family, md_len, block length) of an exportable digest.
fn sha_kind(alg: strongroom_engine::provider::DigestAlg) -> Option<(u8, u32, usize)> {
    use strongroom_engine::provider::DigestAlg::*;
    Some(match alg {
        Sha1 => (1, 20, 64),
        Sha224 => (2, 28, 64),
        Sha256 => (2, 32, 64),
        Sha384 => (3, 48, 128),
        Sha512 => (3, 64, 128),
        Sha512_224 => (3, 28, 128),
        Sha512_256 => (3, 32, 128),
        _ => return None,
    })
}

impl Sha {
    fn new(alg: strongroom_engine::provider::DigestAlg) -> Option<Sha> {
        use strongroom_engine::provider::DigestAlg::*;
        // SAFETY: each *_Init fully initialises the plain-data context it is given (which
        // is first zeroed so that no field is ever read uninitialised); they cannot fail.
        unsafe {
            Some(match alg {
                Sha1 => {
                    let mut c: sys::SHA_CTX = std::mem::zeroed();
                    sys::SHA1_Init(&mut c);
                    Sha::One(c)
                }
                Sha224 | Sha256 => {
                    let mut c: sys::SHA256_CTX = std::mem::zeroed();
                    if alg == Sha224 {
                        sys::SHA224_Init(&mut c);
                    } else {
                        sys::SHA256_Init(&mut c);
                    }
                    Sha::Two256(c)
                }
                Sha384 | Sha512 | Sha512_224 | Sha512_256 => {
                    let mut c: sys::SHA512_CTX = std::mem::zeroed();
                    match alg {
                        Sha384 => sys::SHA384_Init(&mut c),
                        Sha512 => sys::SHA512_Init(&mut c),
                        Sha512_224 => sys::SHA512_224_Init(&mut c),
                        _ => sys::SHA512_256_Init(&mut c),
                    };
                    Sha::Two512(c)
                }
                _ => return None,
            })
        }
    }

    fn update(&mut self, alg: strongroom_engine::provider::DigestAlg, data: &[u8]) {
        use strongroom_engine::provider::DigestAlg::*;
        let (p, n) = (data.as_ptr().cast(), data.len());
        // SAFETY: the context was initialised by `new` or rebuilt by `import` from checked
        // fields; `data` is readable for `n` bytes. The update function matches the
        // context's algorithm (the SHA-224/384 and 512/t variants share the update code of
        // their family, keyed by md_len).
        unsafe {
            match (self, alg) {
                (Sha::One(c), _) => {
                    sys::SHA1_Update(c, p, n);
                }
                (Sha::Two256(c), Sha224) => {
                    sys::SHA224_Update(c, p, n);
                }
                (Sha::Two256(c), _) => {
                    sys::SHA256_Update(c, p, n);
                }
                (Sha::Two512(c), Sha384) => {
                    sys::SHA384_Update(c, p, n);
                }
                (Sha::Two512(c), Sha512_224) => {
                    sys::SHA512_224_Update(c, p, n);
                }
                (Sha::Two512(c), Sha512_256) => {
                    sys::SHA512_256_Update(c, p, n);
                }
                (Sha::Two512(c), _) => {
                    sys::SHA512_Update(c, p, n);
                }
            }
        }
    }

    fn finish(mut self, alg: strongroom_engine::provider::DigestAlg) -> Vec<u8> {
        use strongroom_engine::provider::DigestAlg::*;
        let mut out = [0u8; 64];
        let len = sha_kind(alg).map_or(0, |k| k.1 as usize);
        // SAFETY: `out` has 64 bytes, at least the digest length of every algorithm here;
        // the final function matches the context's algorithm.
        unsafe {
            match (&mut self, alg) {
                (Sha::One(c), _) => {
                    sys::SHA1_Final(out.as_mut_ptr(), c);
                }
                (Sha::Two256(c), Sha224) => {
                    sys::SHA224_Final(out.as_mut_ptr(), c);
                }
                (Sha::Two256(c), _) => {
                    sys::SHA256_Final(out.as_mut_ptr(), c);
                }
                (Sha::Two512(c), Sha384) => {
                    sys::SHA384_Final(out.as_mut_ptr(), c);
                }
                (Sha::Two512(c), Sha512_224) => {
                    sys::SHA512_224_Final(out.as_mut_ptr(), c);
                }
                (Sha::Two512(c), Sha512_256) => {
                    sys::SHA512_256_Final(out.as_mut_ptr(), c);
                }
                (Sha::Two512(c), _) => {
                    sys::SHA512_Final(out.as_mut_ptr(), c);
                }
            }
        }
        out[..len].to_vec()
    }

    /// The state, field by field (little-endian words, only the pending bytes of the
    /// block buffer): never the raw struct, whose layout belongs to aws-lc.
    fn export(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        match self {
            Sha::One(c) => {
                c.h.iter()
                    .for_each(|w| out.extend_from_slice(&w.to_le_bytes()));
                out.extend_from_slice(&c.Nl.to_le_bytes());
                out.extend_from_slice(&c.Nh.to_le_bytes());
                out.extend_from_slice(&c.num.to_le_bytes());
                out.extend_from_slice(&c.data[..(c.num as usize).min(64)]);
            }
            Sha::Two256(c) => {
                c.h.iter()
                    .for_each(|w| out.extend_from_slice(&w.to_le_bytes()));
                out.extend_from_slice(&c.Nl.to_le_bytes());
                out.extend_from_slice(&c.Nh.to_le_bytes());
                out.extend_from_slice(&c.md_len.to_le_bytes());
                out.extend_from_slice(&c.num.to_le_bytes());
                out.extend_from_slice(&c.data[..(c.num as usize).min(64)]);
            }
            Sha::Two512(c) => {
                c.h.iter()
                    .for_each(|w| out.extend_from_slice(&w.to_le_bytes()));
                out.extend_from_slice(&c.Nl.to_le_bytes());
                out.extend_from_slice(&c.Nh.to_le_bytes());
                out.extend_from_slice(&c.md_len.to_le_bytes());
                out.extend_from_slice(&c.num.to_le_bytes());
                out.extend_from_slice(&c.p[..(c.num as usize).min(128)]);
            }
        }
        out
    }

    /// Rebuilds a state from [`Sha::export`], checking every field.
    fn import(alg: strongroom_engine::provider::DigestAlg, b: &[u8]) -> Option<Sha> {
        let (_, md_len, block) = sha_kind(alg)?;
        let mut sha = Sha::new(alg)?;
        let mut r = b;
        fn u32le(r: &mut &[u8]) -> Option<u32> {
            let (v, rest) = r.split_first_chunk::<4>()?;
            *r = rest;
            Some(u32::from_le_bytes(*v))
        }
        fn u64le(r: &mut &[u8]) -> Option<u64> {
            let (v, rest) = r.split_first_chunk::<8>()?;
            *r = rest;
            Some(u64::from_le_bytes(*v))
        }
        match &mut sha {
            Sha::One(c) => {
                for w in c.h.iter_mut() {
                    *w = u32le(&mut r)?;
                }
                c.Nl = u32le(&mut r)?;
                c.Nh = u32le(&mut r)?;
                c.num = u32le(&mut r)?;
                let n = c.num as usize;
                (n < block && r.len() == n).then_some(())?;
                c.data[..n].copy_from_slice(r);
            }
            Sha::Two256(c) => {
                for w in c.h.iter_mut() {
                    *w = u32le(&mut r)?;
                }
                c.Nl = u32le(&mut r)?;
                c.Nh = u32le(&mut r)?;
                (u32le(&mut r)? == md_len && c.md_len == md_len).then_some(())?;
                c.num = u32le(&mut r)?;
                let n = c.num as usize;
                (n < block && r.len() == n).then_some(())?;
                c.data[..n].copy_from_slice(r);
            }
            Sha::Two512(c) => {
                for w in c.h.iter_mut() {
                    *w = u64le(&mut r)?;
                }
                c.Nl = u64le(&mut r)?;
                c.Nh = u64le(&mut r)?;
                (u32le(&mut r)? == md_len && c.md_len == md_len).then_some(())?;
                c.num = u32le(&mut r)?;
                let n = c.num as usize;
                (n < block && r.len() == n).then_some(())?;
                c.p[..n].copy_from_slice(r);
            }
        }
        Some(sha)
    }
}

/// A fresh exported digest state (None: the algorithm has no exportable state).
pub(crate) fn digest_state_new(alg: strongroom_engine::provider::DigestAlg) -> Option<Vec<u8>> {
    Sha::new(alg).map(|s| s.export())
}

/// Feeds `data` to an exported state.
pub(crate) fn digest_state_update(
    alg: strongroom_engine::provider::DigestAlg,
    state: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut s = Sha::import(alg, state).ok_or(CryptoError)?;
    s.update(alg, data);
    Ok(s.export())
}

/// The digest of an exported state.
pub(crate) fn digest_state_finish(
    alg: strongroom_engine::provider::DigestAlg,
    state: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    Ok(Sha::import(alg, state).ok_or(CryptoError)?.finish(alg))
}

/// The X9.31 encoding of `input` (hash ‖ trailer) to `k` bytes: `6A ‖ input` when it fills
/// the block, else `6B ‖ BB… ‖ BA ‖ input`.
pub(crate) fn x931_encode(k: usize, input: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if input.len() + 1 > k || input.len() < 2 || input.last() != Some(&0xCC) {
        return Err(CryptoError);
    }
    let mut em = Vec::with_capacity(k);
    if input.len() + 1 == k {
        em.push(0x6A);
    } else {
        em.push(0x6B);
        em.resize(k - input.len() - 1, 0xBB);
        em.push(0xBA);
    }
    em.extend_from_slice(input);
    Ok(em)
}

/// `a − b` (both k-byte big-endian, a > b) as k bytes.
fn bn_sub_padded(a: *const sys::BIGNUM, b: &[u8], k: usize) -> Result<Vec<u8>, CryptoError> {
    // SAFETY: `a` is a valid BIGNUM owned by the caller's key; BN_bin2bn and BN_new return
    // new BIGNUMs (or null) that `Bn` owns and frees; BN_sub writes `r`; BN_bn2bin_padded
    // writes exactly `k` bytes into `out` (fails if the value is longer).
    unsafe {
        let bb = Bn(
            NonNull::new(sys::BN_bin2bn(b.as_ptr(), b.len(), std::ptr::null_mut()))
                .ok_or(CryptoError)?,
        );
        let r = Bn(NonNull::new(sys::BN_new()).ok_or(CryptoError)?);
        if sys::BN_sub(r.0.as_ptr(), a, bb.0.as_ptr()) != 1 {
            return Err(CryptoError);
        }
        let mut out = vec![0u8; k];
        if sys::BN_bn2bin_padded(out.as_mut_ptr(), k, r.0.as_ptr()) != 1 {
            return Err(CryptoError);
        }
        Ok(out)
    }
}

fn rsa_n(key: &Pkey) -> Result<*const sys::BIGNUM, CryptoError> {
    let rsa = key.rsa()?;
    // SAFETY: `rsa` is valid while `key` is borrowed; get0 returns a borrowed pointer.
    let n = unsafe { sys::RSA_get0_n(rsa.as_ptr()) };
    if n.is_null() {
        Err(CryptoError)
    } else {
        Ok(n)
    }
}

/// ANSI X9.31 signature of `input` (hash ‖ hash id ‖ 0xCC): min(s, n − s).
pub(crate) fn rsa_x931_sign(key: &Pkey, input: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let k = key.rsa_size()?;
    let em = x931_encode(k, input)?;
    // With no padding the input is exactly k bytes and below n (it starts with 0x6A/0x6B
    // while n has its top bit set).
    let s = rsa_raw(key, true, &em, sys::RSA_NO_PADDING)?;
    if s.len() != k {
        return Err(CryptoError);
    }
    let alt = bn_sub_padded(rsa_n(key)?, &s, k)?;
    // Both are k-byte big-endian numbers: the smaller compares lower byte-wise.
    Ok(if alt < s { alt } else { s })
}

/// Verifies an ANSI X9.31 signature of `input` (hash ‖ hash id ‖ 0xCC).
pub(crate) fn rsa_x931_verify(key: &Pkey, input: &[u8], sig: &[u8]) -> bool {
    let (Ok(k), Ok(n)) = (key.rsa_size(), rsa_n(key)) else {
        return false;
    };
    let Ok(em) = x931_encode(k, input) else {
        return false;
    };
    if sig.len() != k {
        return false;
    }
    let t = match rsa_raw(key, false, sig, sys::RSA_NO_PADDING) {
        Ok(t) if t.len() == k => t,
        _ => return false,
    };
    let t = if t[k - 1] & 0x0F == 0x0C {
        t
    } else {
        match bn_sub_padded(n, &t, k) {
            Ok(v) => v,
            Err(_) => return false,
        }
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(&t, &em).is_ok()
}

/// Owned EVP_MD_CTX.
struct MdCtx(NonNull<sys::EVP_MD_CTX>);
impl Drop for MdCtx {
    fn drop(&mut self) {
        // SAFETY: owned by this value alone; freeing also frees the EVP_PKEY_CTX that
        // EVP_Digest{Sign,Verify}Init attached to it.
        unsafe { sys::EVP_MD_CTX_free(self.0.as_ptr()) }
    }
}

/// A digest-sign or digest-verify context over `key` with the ML-DSA context string
/// `context` (pure ML-DSA: no digest is named; aws-lc refuses a context over 255 bytes).
fn ml_dsa_ctx(key: &Pkey, context: &[u8], sign: bool) -> Result<MdCtx, CryptoError> {
    // SAFETY: EVP_MD_CTX_new returns null or a context that `MdCtx` owns.
    let md = MdCtx(NonNull::new(unsafe { sys::EVP_MD_CTX_new() }).ok_or(CryptoError)?);
    let mut pctx: *mut sys::EVP_PKEY_CTX = std::ptr::null_mut();
    // SAFETY: `md` and the EVP_PKEY are valid; the init call stores a new EVP_PKEY_CTX
    // (owned by `md`) in `pctx`, which is used only while `md` lives; `context` is
    // readable for its length and copied by aws-lc.
    let ok = unsafe {
        let init = if sign {
            sys::EVP_DigestSignInit(
                md.0.as_ptr(),
                &mut pctx,
                std::ptr::null(),
                std::ptr::null_mut(),
                key.0.as_ptr(),
            )
        } else {
            sys::EVP_DigestVerifyInit(
                md.0.as_ptr(),
                &mut pctx,
                std::ptr::null(),
                std::ptr::null_mut(),
                key.0.as_ptr(),
            )
        };
        init == 1
            && !pctx.is_null()
            && sys::EVP_PKEY_CTX_set_signature_context(pctx, context.as_ptr(), context.len()) == 1
    };
    if ok {
        Ok(md)
    } else {
        Err(CryptoError)
    }
}

/// Pure ML-DSA signature of `msg` with a context string (FIPS 204 §5.2, hedged).
pub(crate) fn ml_dsa_sign(key: &Pkey, context: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let md = ml_dsa_ctx(key, context, true)?;
    let mut len = 0usize;
    // SAFETY: with a null output EVP_DigestSign only writes the signature length to `len`.
    if unsafe {
        sys::EVP_DigestSign(
            md.0.as_ptr(),
            std::ptr::null_mut(),
            &mut len,
            msg.as_ptr(),
            msg.len(),
        )
    } != 1
    {
        return Err(CryptoError);
    }
    let mut sig = vec![0u8; len];
    // SAFETY: `sig` holds `len` bytes, the most aws-lc writes; `msg` is readable.
    if unsafe {
        sys::EVP_DigestSign(
            md.0.as_ptr(),
            sig.as_mut_ptr(),
            &mut len,
            msg.as_ptr(),
            msg.len(),
        )
    } != 1
        || len > sig.len()
    {
        return Err(CryptoError);
    }
    sig.truncate(len);
    Ok(sig)
}

/// Verifies a pure ML-DSA signature with a context string.
pub(crate) fn ml_dsa_verify(key: &Pkey, context: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(md) = ml_dsa_ctx(key, context, false) else {
        return false;
    };
    // SAFETY: `sig` and `msg` are readable for their lengths.
    unsafe {
        sys::EVP_DigestVerify(
            md.0.as_ptr(),
            sig.as_ptr(),
            sig.len(),
            msg.as_ptr(),
            msg.len(),
        ) == 1
    }
}

/// FIPS 203 ML-KEM.Encaps_internal: encapsulation to the raw key `ek` with the caller's
/// 32-byte `m` in place of the RBG's, so that NIST's ACVP encapsulation vectors can be
/// checked against the code that [`crate::pq::encapsulate`] runs with fresh randomness.
/// Tests only: a caller-chosen `m` has no place in production.
#[cfg(test)]
pub(crate) fn ml_kem_encapsulate_with(
    set: strongroom_engine::provider::MlKemSet,
    ek: &[u8],
    m: &[u8; 32],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), CryptoError> {
    use strongroom_engine::provider::MlKemSet;
    let nid = match set {
        MlKemSet::K512 => sys::NID_MLKEM512,
        MlKemSet::K768 => sys::NID_MLKEM768,
        MlKemSet::K1024 => sys::NID_MLKEM1024,
    };
    // SAFETY: `ek` is readable for its length and copied by aws-lc, which returns null or a
    // new EVP_PKEY that `Pkey` owns.
    let key = Pkey(
        NonNull::new(unsafe { sys::EVP_PKEY_kem_new_raw_public_key(nid, ek.as_ptr(), ek.len()) })
            .ok_or(CryptoError)?,
    );
    // SAFETY: the EVP_PKEY is valid; EVP_PKEY_CTX_new takes its own reference and returns
    // null or a context that `Ctx` owns.
    let ctx =
        Ctx(
            NonNull::new(unsafe { sys::EVP_PKEY_CTX_new(key.0.as_ptr(), std::ptr::null_mut()) })
                .ok_or(CryptoError)?,
        );
    let (mut ct, mut ss) = (
        vec![0u8; set.ciphertext_len()],
        Zeroizing::new(vec![0u8; 32]),
    );
    let (mut ct_len, mut ss_len, mut m_len) = (ct.len(), ss.len(), m.len());
    // SAFETY: `ct` and `ss` are writable for the lengths passed, which aws-lc checks against
    // the parameter set before writing and then sets to what it wrote; `m` is readable for
    // `m_len` bytes, which aws-lc checks to be 32.
    let ok = unsafe {
        sys::EVP_PKEY_encapsulate_deterministic(
            ctx.0.as_ptr(),
            ct.as_mut_ptr(),
            &mut ct_len,
            ss.as_mut_ptr(),
            &mut ss_len,
            m.as_ptr(),
            &mut m_len,
        )
    };
    if ok != 1 || ct_len != ct.len() || ss_len != ss.len() {
        return Err(CryptoError);
    }
    Ok((ct, ss))
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

    #[test]
    fn rsa_generation_with_a_chosen_exponent_loads_into_the_safe_api() {
        let k = rsa_generate(2048, 17).unwrap();
        let der = k.to_pkcs8().unwrap();
        let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).unwrap();
        assert_eq!(kp.public_modulus_len(), 256);
        assert_eq!(
            Pkey::public(&k.to_spki().unwrap())
                .unwrap()
                .rsa_size()
                .unwrap(),
            256
        );
        for (bits, e) in [
            (2048, 3),
            (2048, 16),
            (1024, 65537),
            (2100, 65537),
            (2048, 1 << 32),
        ] {
            assert!(rsa_generate(bits, e).is_err(), "{bits} {e}");
        }
    }

    #[test]
    fn dsa_parameters_keys_and_signatures() {
        let params = dsa_parameters(2048).unwrap();
        let a = dsa_generate(&params).unwrap();
        let b = dsa_generate(&params).unwrap();
        assert_eq!(a.dsa_sizes().unwrap(), (2048, 32));
        let digest = [7u8; 32];
        let sig = dsa_sign(&a, &digest).unwrap();
        assert_eq!(sig.len(), 64);
        let public = Pkey::public(&a.to_spki().unwrap()).unwrap();
        assert!(dsa_verify(&public, &digest, &sig));
        let back = Pkey::private(&a.to_pkcs8().unwrap()).unwrap();
        assert!(dsa_verify(
            &back,
            &digest,
            &dsa_sign(&back, &digest).unwrap()
        ));
        assert!(!dsa_verify(&b, &digest, &sig));
        let mut bad = sig.clone();
        bad[3] ^= 1;
        assert!(!dsa_verify(&public, &digest, &bad));
        assert!(!dsa_verify(&public, &digest, &sig[1..]));
        assert!(dsa_generate(&params[..params.len() - 1]).is_err());
        assert!(dsa_parameters(1024).is_err());
    }

    #[test]
    fn dh_rfc7919_pairs_agree_and_bad_peers_are_refused() {
        let params = dh_rfc7919(2048).unwrap();
        let (xa, ya, bits) = dh_generate(&params).unwrap();
        let (xb, yb, _) = dh_generate(&params).unwrap();
        assert_eq!(bits, 2048);
        let s1 = dh_agree(&params, &xa, &yb).unwrap();
        let s2 = dh_agree(&params, &xb, &ya).unwrap();
        assert_eq!(s1.len(), 256);
        assert_eq!(*s1, *s2);
        assert!(dh_agree(&params, &xa, &[1]).is_err());
        assert!(dh_agree(&params, &xa, &[0]).is_err());
        assert!(dh_rfc7919(1024).is_err());
        assert!(dh_generate(b"junk").is_err());
    }

    #[test]
    fn exported_digest_states_resume_to_the_one_shot_digest() {
        use strongroom_engine::provider::DigestAlg::*;
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        for alg in [Sha1, Sha224, Sha256, Sha384, Sha512, Sha512_224, Sha512_256] {
            let want = {
                let mut s = Sha::new(alg).unwrap();
                s.update(alg, &data);
                s.finish(alg)
            };
            for split in [0usize, 1, 63, 64, 65, 127, 128, 129, 999, 1000] {
                let mut st = digest_state_new(alg).unwrap();
                st = digest_state_update(alg, &st, &data[..split]).unwrap();
                st = digest_state_update(alg, &st, &data[split..]).unwrap();
                assert_eq!(
                    digest_state_finish(alg, &st).unwrap(),
                    want,
                    "{alg:?} {split}"
                );
            }
            // Bad states are refused, never read out of bounds.
            let st =
                digest_state_update(alg, &digest_state_new(alg).unwrap(), &data[..10]).unwrap();
            assert!(digest_state_finish(alg, &st[..st.len() - 1]).is_err());
            let mut long = st.clone();
            long.push(0);
            assert!(digest_state_finish(alg, &long).is_err());
        }
        assert_eq!(
            digest_state_finish(
                Sha256,
                &digest_state_update(Sha256, &digest_state_new(Sha256).unwrap(), b"abc").unwrap()
            )
            .unwrap(),
            hex_lit("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(digest_state_new(Sha3_256).is_none());
        // A state of one algorithm is not accepted as another's.
        let st = digest_state_new(Sha512).unwrap();
        assert!(digest_state_finish(Sha384, &st).is_err());
    }

    #[test]
    fn x931_signatures_round_trip_and_refuse_changes() {
        let der = rsa_pkcs8();
        let key = Pkey::private(&der).unwrap();
        let mut input =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, b"m")
                .as_ref()
                .to_vec();
        input.extend_from_slice(&[0x33, 0xCC]);
        let sig = x931_sign_and_check(&key, &input);
        let mut bad = sig.clone();
        bad[100] ^= 1;
        assert!(!rsa_x931_verify(&key, &input, &bad));
        let mut other = input.clone();
        other[0] ^= 1;
        assert!(!rsa_x931_verify(&key, &other, &sig));
        assert!(
            rsa_x931_sign(&key, &input[..input.len() - 1]).is_err(),
            "no 0xCC trailer"
        );
        assert_eq!(
            x931_encode(8, &[1, 2, 0xCC]).unwrap(),
            vec![0x6B, 0xBB, 0xBB, 0xBB, 0xBA, 1, 2, 0xCC]
        );
        assert_eq!(
            x931_encode(4, &[1, 2, 0xCC]).unwrap(),
            vec![0x6A, 1, 2, 0xCC]
        );
    }

    fn x931_sign_and_check(key: &Pkey, input: &[u8]) -> Vec<u8> {
        let sig = rsa_x931_sign(key, input).unwrap();
        assert!(rsa_x931_verify(key, input, &sig));
        sig
    }

    #[test]
    fn ec_multiply_gives_the_point_whose_x_is_the_ecdh_secret() {
        for alg in [
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
        ] {
            let a = signature::EcdsaKeyPair::generate(alg).unwrap();
            let b = signature::EcdsaKeyPair::generate(alg).unwrap();
            let ka = Pkey::private(a.to_pkcs8v1().unwrap().as_ref()).unwrap();
            let p = ec_multiply(&ka, b.public_key().as_ref()).unwrap();
            assert_eq!(p.len(), 65);
            assert_eq!(p[0], 4);
            assert_eq!(
                &p[1..33],
                &ecdh_raw(&ka, b.public_key().as_ref()).unwrap()[..]
            );
            assert!(ec_multiply(&ka, &[4; 65]).is_err());
        }
    }

    fn hex_lit(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }
}
