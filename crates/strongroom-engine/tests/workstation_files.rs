//! The ceremony workstation's protected files as bytes (`admin::files`): a sealed file opens
//! with its password only, every header field is authenticated, and files that ask for
//! absurd key derivations or carry damaged fields are refused with an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::admin::files::*;

fn header(format: &str) -> Header {
    ProtectedFile::parse(&format!(
        r#"{{"format":"{format}","id":"i","name":"part one","created":"2026-12-05T06:00:00Z",
            "kdf":{{"alg":"","v":0,"m_kib":0,"t":0,"p":0,"salt":""}},
            "aead":{{"alg":"","nonce":""}},"ct":""}}"#
    ))
    .unwrap()
    .header
}

#[test]
fn a_sealed_file_opens_with_its_password_only_and_its_header_is_authenticated() {
    let p = &AwsLcProvider;
    let secret = [7u8; 32];
    let f = seal(p, header(MKPART_FORMAT), b"pw-1", MIN_M_MIB, &secret).unwrap();
    assert_eq!(f.header.kdf.alg, "argon2id");
    assert_eq!(f.header.kdf.m_kib, MIN_M_MIB * 1024);
    let text = serde_json::to_string(&f).unwrap();
    assert!(!text.contains(&hex::encode(secret)));
    let back = ProtectedFile::parse(&text).unwrap();
    assert_eq!(open(p, &back, b"pw-1", "f").unwrap().as_slice(), &secret);
    assert!(matches!(
        open(p, &back, b"pw-2", "f"),
        Err(FileError::Check(_))
    ));
    // A description moved onto the file breaks it.
    let mut moved = back.clone();
    moved.header.name = "part two".into();
    assert!(matches!(
        open(p, &moved, b"pw-1", "f"),
        Err(FileError::Check(_))
    ));
    // Unknown fields are refused when reading.
    assert!(ProtectedFile::parse(&text.replacen('{', r#"{"extra":1,"#, 1)).is_err());
    // Too little Argon2id memory is refused when sealing, and so is more than a file may be
    // opened with (4,194,305 MiB in KiB would wrap to 1 MiB in 32 bits).
    for m in [MIN_M_MIB - 1, MAX_M_MIB + 1, 4_194_305, u32::MAX] {
        let e = seal(p, header(SIGKEY_FORMAT), b"pw", m, &secret).unwrap_err();
        assert!(e.to_string().contains("64 to 4096 MiB"), "{m}: {e}");
    }
}

#[test]
fn damaged_or_absurd_files_are_refused_with_an_error() {
    let p = &AwsLcProvider;
    let f = seal(p, header(MKPART_FORMAT), b"pw", MIN_M_MIB, &[1; 32]).unwrap();
    let refused = |g: &ProtectedFile| open(p, g, b"pw", "f").unwrap_err().to_string();
    let mut g = f.clone();
    g.header.kdf.m_kib = u32::MAX;
    assert!(refused(&g).contains("out of range"));
    let mut g = f.clone();
    g.header.kdf.alg = "scrypt".into();
    assert!(refused(&g).contains("unsupported key derivation"));
    let mut g = f.clone();
    g.header.aead.nonce = "AAEC".into();
    assert!(refused(&g).contains("bad nonce"));
    let mut g = f.clone();
    g.ct = "not base64!".into();
    assert!(refused(&g).contains("not base64"));
    let mut g = f;
    g.header.aead.alg = "A128CBC".into();
    assert!(refused(&g).contains("unsupported cipher"));
}

#[test]
fn hpcs_files_are_recognised_and_refused_when_damaged() {
    let p = &AwsLcProvider;
    let sigkey = HpcsFile::parse(
        r#"{"keyType":"p521ec","ski":"ab","seaSalt":"00","enckey":"00112233445566778899aabbccddeeff"}"#,
    )
    .unwrap();
    assert_eq!(sigkey.key_type.as_deref(), Some("p521ec"));
    assert!(matches!(
        sigkey.open(p, "f", b"pw"),
        Err(FileError::Check(_))
    ));
    let part = HpcsFile::parse(r#"{"seaSalt":"zz","enckey":"00"}"#).unwrap();
    assert!(part
        .open(p, "f", b"pw")
        .unwrap_err()
        .to_string()
        .contains("seaSalt"));
    let short = HpcsFile::parse(r#"{"seaSalt":"00","enckey":"0011"}"#).unwrap();
    assert!(short
        .open(p, "f", b"pw")
        .unwrap_err()
        .to_string()
        .contains("too short"));
    assert!(HpcsFile::parse(r#"{"format":"strongroom-mkpart/1"}"#).is_none());
}

/// One key part file, sealed once (Argon2id at 64 MiB is too slow to seal per case).
fn sealed_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut h = header(MKPART_FORMAT);
        h.part_vp = Some(hex::encode([9u8; 32]));
        let f = seal(&AwsLcProvider, h, b"pw", MIN_M_MIB, &[5; 32]).unwrap();
        serde_json::to_string(&f).unwrap()
    })
}

/// What a changed file gives: refused at parsing, or at opening, never a secret.
fn opens(bytes: &[u8]) -> Option<Vec<u8>> {
    let f = ProtectedFile::parse(std::str::from_utf8(bytes).ok()?).ok()?;
    open(&AwsLcProvider, &f, b"pw", "f")
        .ok()
        .map(|s| s.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A file prints back to the same text and opens to its secret; any one changed byte
    /// (header, key derivation, nonce, ciphertext, or the JSON around them) is refused.
    #[test]
    fn a_protected_file_round_trips_and_any_changed_byte_is_refused(
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let text = sealed_text();
        let f = ProtectedFile::parse(text).unwrap();
        prop_assert_eq!(serde_json::to_string(&f).unwrap(), text);
        prop_assert_eq!(opens(text.as_bytes()), Some(vec![5u8; 32]));
        let mut bad = text.as_bytes().to_vec();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        prop_assert_eq!(opens(&bad), None, "byte {} changed", i);
    }
}
