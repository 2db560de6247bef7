//! Password-protected keystores (IBM's authenticated keystores: `sessionauth` in
//! grep11client.yaml). From a keystore's password and its tokenspaceID the library derives,
//! once per process:
//!
//! - the **proof** it sends with every call on that keystore, which the server checks
//!   against the hash it keeps (so no other user of the instance can list, replace or
//!   delete the keystore's objects, whatever their role);
//! - the **object key** that encrypts each object before it leaves the process (so the
//!   server and its database hold only ciphertext).
//!
//! The formats are in docs/formats.md ("Password-protected keystores, v1").

use std::sync::{Mutex, OnceLock};

use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::{AeadAlg, AeadKey, CryptoProvider};
use strongroom_model::pkcs11::{ckr, Ckr};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::config::{KeystorePassword, Token};

/// Argon2id's memory (KiB), passes and lanes: RFC 9106's second recommended setting, with
/// one lane. About a third of a second here, once per keystore and process.
pub const ARGON2_M_KIB: u32 = 64 * 1024;
/// Argon2id passes.
pub const ARGON2_T: u32 = 3;
/// Argon2id lanes.
pub const ARGON2_P: u32 = 1;

/// The salt's prefix; the tokenspaceID's 16 bytes follow.
const SALT_V1: &[u8] = b"strongroom/keystore-password/v1";
/// HKDF info of the proof.
const PROOF_INFO: &[u8] = b"strongroom/keystore-proof/v1";
/// HKDF info of the object key.
const OBJECT_KEY_INFO: &[u8] = b"strongroom/keystore-objects/v1";
/// The first byte of a sealed object: its format version.
const SEALED_V1: u8 = 1;
/// The associated data's prefix; the tokenspaceID, the private flag and the object id
/// follow, so that an object cannot be moved to another id or keystore unnoticed.
const AAD_V1: &[u8] = b"strongroom/token-object/v1";
const NONCE_LEN: usize = 12;

/// What a keystore's password gives.
pub struct SpaceKeys {
    proof: Zeroizing<[u8; 32]>,
    objects: Box<dyn AeadKey>,
}

impl SpaceKeys {
    /// Derives the proof and the object key of keystore `space` from `password`.
    pub fn derive(password: &str, space: Uuid) -> Result<Self, Ckr> {
        let p = AwsLcProvider;
        let failed = |_| ckr::GENERAL_ERROR;
        let mut salt = SALT_V1.to_vec();
        salt.extend_from_slice(space.as_bytes());
        let mut master = Zeroizing::new([0u8; 32]);
        p.argon2id(
            password.as_bytes(),
            &salt,
            ARGON2_M_KIB,
            ARGON2_T,
            ARGON2_P,
            master.as_mut(),
        )
        .map_err(failed)?;
        let mut proof = Zeroizing::new([0u8; 32]);
        p.hkdf_sha256(&[], master.as_ref(), PROOF_INFO, proof.as_mut())
            .map_err(failed)?;
        let mut key = Zeroizing::new([0u8; 32]);
        p.hkdf_sha256(&[], master.as_ref(), OBJECT_KEY_INFO, key.as_mut())
            .map_err(failed)?;
        let objects = p.aead_key(AeadAlg::AesGcm, key.as_ref()).map_err(failed)?;
        Ok(SpaceKeys { proof, objects })
    }

    /// The proof the server checks.
    pub fn proof(&self) -> &[u8] {
        self.proof.as_ref()
    }

    fn aad(space: Uuid, private: bool, id: &str) -> Vec<u8> {
        let mut aad = AAD_V1.to_vec();
        aad.extend_from_slice(space.as_bytes());
        aad.push(u8::from(private));
        aad.extend_from_slice(id.as_bytes());
        aad
    }

    /// Encrypts object `id`'s encoding: version, nonce, then AES-256-GCM's output.
    pub fn seal(&self, space: Uuid, private: bool, id: &str, plain: &[u8]) -> Result<Vec<u8>, Ckr> {
        let mut nonce = [0u8; NONCE_LEN];
        AwsLcProvider
            .fill_random(&mut nonce)
            .map_err(|_| ckr::GENERAL_ERROR)?;
        let mut body = plain.to_vec();
        self.objects
            .seal(&nonce, &Self::aad(space, private, id), &mut body)
            .map_err(|_| ckr::GENERAL_ERROR)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts what [`SpaceKeys::seal`] made for the same keystore and id; `None` when it
    /// was made for another, under another password, or changed since.
    pub fn open(
        &self,
        space: Uuid,
        private: bool,
        id: &str,
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let mut buf = Zeroizing::new(body.to_vec());
        self.objects
            .open(&nonce, &Self::aad(space, private, id), &mut buf)
            .ok()?;
        Some(buf)
    }
}

/// One of a token's two keystores, as the configuration names it.
struct Space {
    id: Option<Uuid>,
    password: Option<KeystorePassword>,
    keys: OnceLock<SpaceKeys>,
    /// One derivation at a time (each takes 64 MiB). A failed one is not remembered: the
    /// next call tries again.
    deriving: Mutex<()>,
}

impl Space {
    fn keys(&self) -> Result<Option<&SpaceKeys>, Ckr> {
        self.keys_with(SpaceKeys::derive)
    }

    fn keys_with(
        &self,
        derive: impl FnOnce(&str, Uuid) -> Result<SpaceKeys, Ckr>,
    ) -> Result<Option<&SpaceKeys>, Ckr> {
        let (Some(id), Some(pw)) = (self.id, &self.password) else {
            return Ok(None);
        };
        if let Some(k) = self.keys.get() {
            return Ok(Some(k));
        }
        let _one = self.deriving.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = self.keys.get() {
            return Ok(Some(k));
        }
        let k = derive(&pw.0, id)?;
        Ok(Some(self.keys.get_or_init(|| k)))
    }
}

/// A token's keystores: the private one (`users.1`) and the public one (`users.2`).
pub struct Spaces {
    private: Space,
    public: Space,
}

impl Spaces {
    /// The keystores `t` names, with their passwords; nothing is derived yet.
    pub fn of(t: &Token) -> Self {
        let space = |u: &crate::config::User| Space {
            id: u.tokenspace,
            password: u.password.clone(),
            keys: OnceLock::new(),
            deriving: Mutex::new(()),
        };
        Spaces {
            private: space(&t.user),
            public: space(&t.anonymous),
        }
    }

    fn space(&self, private: bool) -> &Space {
        if private {
            &self.private
        } else {
            &self.public
        }
    }

    /// Whether the keystore has a password.
    pub fn protected(&self, private: bool) -> bool {
        self.space(private).password.is_some()
    }

    /// The proof to send with a call on the keystore (empty without a password).
    pub fn proof(&self, private: bool) -> Result<Vec<u8>, Ckr> {
        Ok(self
            .space(private)
            .keys()?
            .map(|k| k.proof().to_vec())
            .unwrap_or_default())
    }

    /// What the server is to keep of object `id`: its encoding, sealed when the keystore
    /// has a password.
    pub fn encode(&self, private: bool, id: &str, plain: Vec<u8>) -> Result<Vec<u8>, Ckr> {
        let s = self.space(private);
        match (s.keys()?, s.id) {
            (Some(k), Some(space)) => k.seal(space, private, id, &plain),
            _ => Ok(plain),
        }
    }

    /// An object's encoding from what the server keeps; `None` when a password-protected
    /// keystore returns something not sealed under its password for this id.
    pub fn decode(&self, private: bool, id: &str, stored: Vec<u8>) -> Option<Zeroizing<Vec<u8>>> {
        let s = self.space(private);
        match (s.keys(), s.id) {
            (Ok(Some(k)), Some(space)) => k.open(space, private, id, &stored),
            (Ok(None), _) => Some(Zeroizing::new(stored)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Uuid {
        Uuid::parse_str("f00db2f1-4421-4032-a505-465bedfa845b").unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The formats of docs/formats.md, computed independently: the proof with
    /// argon2-cffi and pyca/cryptography's HKDF, the sealed object with its AES-GCM
    /// (the script is in docs/formats.md). A keystore written by one release must open
    /// in the next: a changed parameter fails here.
    #[test]
    fn a_failed_derivation_is_tried_again_and_a_good_one_kept() {
        let s = Space {
            id: Some(space()),
            password: Some(KeystorePassword(zeroize::Zeroizing::new(
                "s3cret-pw".into(),
            ))),
            keys: OnceLock::new(),
            deriving: Mutex::new(()),
        };
        // Argon2id's 64 MiB could not be had: this call fails, the next one derives.
        assert_eq!(
            s.keys_with(|_, _| Err(ckr::HOST_MEMORY)).err(),
            Some(ckr::HOST_MEMORY)
        );
        let k = s.keys().unwrap().unwrap();
        assert_eq!(
            k.proof(),
            hex("1a632d725cd0d3d18eba7e98c070a39b5f3fcc17cbb92b10d6f6a9cc3ce92a0c")
        );
        // Once derived, the keys are kept: no second derivation.
        let again = s
            .keys_with(|_, _| unreachable!("derived twice"))
            .unwrap()
            .unwrap();
        assert_eq!(again.proof(), k.proof());
    }

    #[test]
    fn proof_and_sealed_object_match_an_independent_implementation() {
        let k = SpaceKeys::derive("s3cret-pw", space()).unwrap();
        assert_eq!(
            k.proof(),
            hex("1a632d725cd0d3d18eba7e98c070a39b5f3fcc17cbb92b10d6f6a9cc3ce92a0c")
        );
        let sealed =
            hex("01000102030405060708090a0b1848cd8c3e3f453aa22352457ebd581e8ad8cdc5e650c3");
        assert_eq!(
            k.open(space(), true, "obj-1", &sealed).unwrap().as_slice(),
            b"{\"v\":1}"
        );
    }

    #[test]
    fn a_sealed_object_opens_only_where_and_as_it_was_sealed() {
        let k = SpaceKeys::derive("s3cret-pw", space()).unwrap();
        let sealed = k.seal(space(), true, "obj-1", b"{\"v\":1}").unwrap();
        assert_eq!(sealed[0], SEALED_V1);
        assert!(!sealed.windows(7).any(|w| w == b"{\"v\":1}"));
        assert_eq!(
            k.open(space(), true, "obj-1", &sealed).unwrap().as_slice(),
            b"{\"v\":1}"
        );
        // Another id, the other keystore kind, another keystore, another password.
        assert!(k.open(space(), true, "obj-2", &sealed).is_none());
        assert!(k.open(space(), false, "obj-1", &sealed).is_none());
        assert!(k.open(Uuid::nil(), true, "obj-1", &sealed).is_none());
        let other = SpaceKeys::derive("s3cret-pX", space()).unwrap();
        assert!(other.open(space(), true, "obj-1", &sealed).is_none());
        // Any changed byte, and any truncation.
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(k.open(space(), true, "obj-1", &t).is_none(), "byte {i}");
        }
        for n in 0..sealed.len() {
            assert!(
                k.open(space(), true, "obj-1", &sealed[..n]).is_none(),
                "{n} bytes"
            );
        }
    }

    #[test]
    fn the_proof_depends_on_the_password_and_the_keystore() {
        let a = SpaceKeys::derive("s3cret-pw", space()).unwrap();
        let again = SpaceKeys::derive("s3cret-pw", space()).unwrap();
        let pw = SpaceKeys::derive("s3cret-pW", space()).unwrap();
        let ks = SpaceKeys::derive("s3cret-pw", Uuid::nil()).unwrap();
        assert_eq!(a.proof(), again.proof());
        assert_eq!(a.proof().len(), 32);
        assert_ne!(a.proof(), pw.proof());
        assert_ne!(a.proof(), ks.proof());
    }
}
