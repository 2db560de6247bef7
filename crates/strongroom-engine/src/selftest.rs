//! Known-answer self-tests run before a crypto unit is created. Primitive vectors come from
//! their standards (NIST GCM spec test cases 13/14, RFC 5869 case 1, RFC 4231 case 2,
//! FIPS 180-2 "abc", SP 800-38A F.2.5, RFC 4493 example 2); the format vectors are the example vectors of `docs/formats.md`.

use strongroom_model::{InstanceId, KeyId, KeyKind, VersionId};

use crate::provider::{AeadAlg, BlockCipher, CipherMode, CryptoProvider, MacAlg};
use crate::secret::{KeyMaterial, MasterKey};
use crate::{blob, envelope, mk_id, BlobBinding, EngineError, WrappingKey};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| {
            s.get(2 * i..2 * i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

fn check(ok: bool, what: &'static str) -> Result<(), EngineError> {
    if ok {
        Ok(())
    } else {
        Err(EngineError::SelfTestFailed(what))
    }
}

/// Runs every known-answer test against `p`. Any mismatch is fatal for the unit.
pub fn run_self_tests(p: &dyn CryptoProvider) -> Result<(), EngineError> {
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    check(
        p.sha256(&[b"ab", b"c"]).to_vec()
            == unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        "SHA-256",
    )?;
    // HMAC-SHA-256, RFC 4231 test case 2: once with the key set up for the message, and
    // twice with a prepared key (the second from the same prepared state).
    let rfc4231 = unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    let parts: [&[u8]; 2] = [b"what do ya want ", b"for nothing?"];
    check(
        // ct-exempt: RFC 4231's published key and MAC
        p.hmac_sha256(b"Jefe", &parts).to_vec() == rfc4231,
        "HMAC-SHA-256",
    )?;
    let prepared = p.hmac_sha256_key(b"Jefe");
    check(
        // ct-exempt: RFC 4231's published key and MAC
        prepared.sign(&parts).to_vec() == rfc4231 && prepared.sign(&parts).to_vec() == rfc4231,
        "HMAC-SHA-256 (prepared key)",
    )?;
    // AES-256-CBC, SP 800-38A F.2.5 (first block), encrypt and decrypt.
    let k256 = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
    let iv = unhex("000102030405060708090a0b0c0d0e0f");
    let pt = unhex("6bc1bee22e409f96e93d7e117393172a");
    let ct = unhex("f58c4c04d6e5f1ba779eabfb5f7bfbd6");
    check(
        p.block_encrypt(BlockCipher::Aes, CipherMode::Cbc, &k256, &iv, &pt)
            .is_ok_and(|c| c == ct)
            && p.block_decrypt(BlockCipher::Aes, CipherMode::Cbc, &k256, &iv, &ct)
                .is_ok_and(|m| *m == pt),
        "AES-256-CBC",
    )?;
    // AES-128-CMAC, RFC 4493 example 2.
    check(
        p.mac(
            MacAlg::Cmac(BlockCipher::Aes),
            &unhex("2b7e151628aed2a6abf7158809cf4f3c"),
            &pt,
        )
        .is_ok_and(|t| t == unhex("070a16b46b4d4144f79bdd9dd04a287c")),
        "AES-CMAC",
    )?;
    // HKDF-SHA-256, RFC 5869 test case 1.
    let mut okm = [0u8; 42];
    p.hkdf_sha256(
        &unhex("000102030405060708090a0b0c"),
        &[0x0b; 22],
        &unhex("f0f1f2f3f4f5f6f7f8f9"),
        &mut okm,
    )
    .map_err(|_| EngineError::SelfTestFailed("HKDF-SHA-256"))?;
    check(
        okm.to_vec()
            == unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
        "HKDF-SHA-256",
    )?;
    // PBKDF2-HMAC-SHA-256, RFC 7914 section 11 (c = 1).
    let mut dk = [0u8; 64];
    p.pbkdf2_hmac_sha256(b"passwd", b"salt", 1, &mut dk)
        .map_err(|_| EngineError::SelfTestFailed("PBKDF2-HMAC-SHA-256"))?;
    check(
        dk.to_vec()
            == unhex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"),
        "PBKDF2-HMAC-SHA-256",
    )?;
    // AES-256-GCM, GCM specification test case 14 (seal), and a flipped tag must not open.
    let key = p
        .aead_key(AeadAlg::AesGcm, &[0u8; 32])
        .map_err(|_| EngineError::SelfTestFailed("AES-256-GCM"))?;
    let mut buf = vec![0u8; 16];
    key.seal(&[0u8; 12], &[], &mut buf)
        .map_err(|_| EngineError::SelfTestFailed("AES-256-GCM"))?;
    check(
        buf == unhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"),
        "AES-256-GCM seal",
    )?;
    let mut tampered = buf.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 1;
    }
    check(
        key.open(&[0u8; 12], &[], &mut tampered).is_err(),
        "AES-256-GCM tag check",
    )?;
    key.open(&[0u8; 12], &[], &mut buf)
        .map_err(|_| EngineError::SelfTestFailed("AES-256-GCM open"))?;
    check(buf == vec![0u8; 16], "AES-256-GCM open")?;
    // Test case 13: empty plaintext, tag only.
    let mut empty = Vec::new();
    key.seal(&[0u8; 12], &[], &mut empty)
        .map_err(|_| EngineError::SelfTestFailed("AES-256-GCM"))?;
    check(
        empty == unhex("530f8afbc74536b9a963b4f1c4cb738b"),
        "AES-256-GCM empty",
    )?;
    check(
        p.ct_eq(b"same", b"same") && !p.ct_eq(b"same", b"diff"),
        "constant-time compare",
    )?;

    format_vectors(p)
}

/// The example vectors of `docs/formats.md`: fixed master key, salt, nonce and binding.
pub(crate) struct FormatVector {
    pub mk: [u8; 32],
    pub binding: BlobBinding,
    pub material: [u8; 32],
    pub salt: [u8; 32],
    pub nonce: [u8; 12],
}

pub(crate) fn format_vector() -> FormatVector {
    let id = |b: u8| uuid::Uuid::from_bytes([b; 16]);
    FormatVector {
        mk: [0x11; 32],
        binding: BlobBinding {
            instance: InstanceId(id(0x22)),
            key: KeyId(id(0x33)),
            version: VersionId(id(0x33)),
            kind: KeyKind::Root,
            imported: false,
        },
        material: [0x44; 32],
        salt: [0x55; 32],
        nonce: [0x66; 12],
    }
}

pub(crate) const MK_ID_HEX: &str = "1098ffdeb46db6eb83eea0b2084d767c";
pub(crate) const BLOB_HEX: &str = "011098ffdeb46db6eb83eea0b2084d767c555555555555555555555555555555555555555555555555555555555555555566666666666666666666666657e3812e343595d679c0c2a3c93c70b68de0c535c10861a770f5aedc8c7643b829479c632200cfac3c9c318ed00bb6de";
pub(crate) const WDEK_HEX: &str = "01333333333333333333333333333333336666666666666666666666669de48db574bcee284d14f72a892b35f084cf0a1946a9dc6014ff63c9df316bff6287d477ed16e906847df3573e385b33";

/// Computes the three format example vectors (master key id, blob, WDEK) as hex, for the
/// documentation and its test. Not part of the stable API.
#[doc(hidden)]
pub fn compute_format_vectors(p: &dyn CryptoProvider) -> Result<[String; 3], EngineError> {
    let v = format_vector();
    let mk = MasterKey::from_bytes(v.mk);
    let id = mk_id(p, &mk);
    let material = KeyMaterial::from_slice(&v.material);
    let sealed = blob::seal_with(p, &mk, id, &v.binding, &material, &v.salt, &v.nonce)?;
    let wk = WrappingKey::new(p, &material)?;
    let w = envelope::wrap_with_nonce(
        &wk,
        v.binding.version,
        &[0x77; 32],
        &["tenant-a".to_string()],
        v.nonce,
    )?;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    Ok([id.to_hex(), hex(&sealed), hex(&w)])
}

fn format_vectors(p: &dyn CryptoProvider) -> Result<(), EngineError> {
    let v = format_vector();
    let mk = MasterKey::from_bytes(v.mk);
    let id = mk_id(p, &mk);
    check(id.to_hex() == MK_ID_HEX, "master key id vector")?;
    let material = KeyMaterial::from_slice(&v.material);
    let sealed = blob::seal_with(p, &mk, id, &v.binding, &material, &v.salt, &v.nonce)?;
    check(sealed == unhex(BLOB_HEX), "key blob vector")?;
    let opened = blob::open(p, &mk, id, &v.binding, &sealed)?;
    check(opened.expose() == v.material, "key blob open")?;
    let mut other = v.binding;
    other.kind = KeyKind::Standard;
    check(
        blob::open(p, &mk, id, &other, &sealed).is_err(),
        "key blob binding",
    )?;

    let wk = WrappingKey::new(p, &material)?;
    let aad = ["tenant-a".to_string()];
    let w = envelope::wrap_with_nonce(&wk, v.binding.version, &[0x77; 32], &aad, v.nonce)?;
    check(w == unhex(WDEK_HEX), "WDEK vector")?;
    let parsed = envelope::Wdek::parse(&w)?;
    check(
        envelope::unwrap(&wk, &parsed, &aad)?.as_slice() == [0x77; 32],
        "WDEK unwrap",
    )?;
    check(
        envelope::unwrap(&wk, &parsed, &[]).is_err(),
        "WDEK AAD binding",
    )?;
    Ok(())
}
