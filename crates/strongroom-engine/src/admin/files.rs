//! The ceremony workstation's protected files (docs/formats.md, "Workstation files"), as
//! bytes: signature key files (`*.sigkey`) and master key part files (`*.mkpart`), each a JSON
//! document whose secret is sealed with AES-256-GCM under a key derived from a password with
//! Argon2id, every header field authenticated (AAD); and HPCS TKE CLI files, read to be
//! re-protected. Sans-I/O: the workstation (`strongroom tke`) reads and writes the files.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::provider::{AeadAlg, CryptoProvider};

/// `format` of a signature key file.
pub const SIGKEY_FORMAT: &str = "strongroom-sigkey/1";
/// `format` of a master key part file.
pub const MKPART_FORMAT: &str = "strongroom-mkpart/1";
/// Default Argon2id memory (RFC 9106's second recommended option).
pub const DEFAULT_M_MIB: u32 = 256;
/// Smallest memory accepted when creating a file.
pub const MIN_M_MIB: u32 = 64;
/// Largest memory a file may ask for (4 GiB): more is refused when creating a file, and
/// when opening one, so that a crafted file cannot make us allocate without bound.
pub const MAX_M_MIB: u32 = 4 * 1024;
const KDF_T: u32 = 3;
const KDF_P: u32 = 1;
/// PBKDF2 iterations of HPCS's workstation files.
const HPCS_PBKDF2_ITERATIONS: u32 = 4096;

/// Why a workstation file could not be sealed or opened. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file is damaged, altered, or the password is wrong: a failed check.
    #[error("{0}")]
    Check(String),
    /// The file asks for what this release does not do, or a primitive failed.
    #[error("{0}")]
    Other(String),
}

impl FileError {
    /// The same error, about the file `what`.
    fn of(self, what: &str) -> Self {
        match self {
            FileError::Check(m) => FileError::Check(format!("{what}: {m}")),
            FileError::Other(m) => FileError::Other(format!("{what}: {m}")),
        }
    }
}

fn other<T>(msg: impl Into<String>) -> Result<T, FileError> {
    Err(FileError::Other(msg.into()))
}

/// The key derivation of a protected file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    /// `argon2id`.
    pub alg: String,
    /// Argon2 version (0x13).
    pub v: u32,
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    /// The salt (base64).
    pub salt: String,
}

/// The cipher of a protected file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Aead {
    /// `A256GCM`.
    pub alg: String,
    /// The nonce (base64).
    pub nonce: String,
}

/// Header of a protected file: everything but the ciphertext, authenticated as AAD in this
/// field order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`SIGKEY_FORMAT`] or [`MKPART_FORMAT`].
    pub format: String,
    /// A random id.
    pub id: String,
    /// The administrator name (signature keys) or the part description (key parts).
    pub name: String,
    /// When the file was made (RFC 3339).
    pub created: String,
    /// Signature keys: the algorithm.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alg: Option<String>,
    /// Signature keys: the raw public key (base64).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub public_key: Option<String>,
    /// Signature keys: the SKI (hex).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ski: Option<String>,
    /// Key parts: the part's verification pattern (hex).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub part_vp: Option<String>,
    /// The key derivation.
    pub kdf: Kdf,
    /// The cipher.
    pub aead: Aead,
}

/// A protected file: its header and the sealed secret.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProtectedFile {
    /// Everything but the ciphertext, authenticated.
    #[serde(flatten)]
    pub header: Header,
    /// The ciphertext with its tag (base64).
    pub ct: String,
}

impl ProtectedFile {
    /// A protected file from its JSON text.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

fn derive(
    p: &dyn CryptoProvider,
    password: &[u8],
    kdf: &Kdf,
) -> Result<Zeroizing<[u8; 32]>, FileError> {
    if kdf.alg != "argon2id" || kdf.v != 0x13 {
        return Err(FileError::Other(format!(
            "unsupported key derivation {} v{}",
            kdf.alg, kdf.v
        )));
    }
    // Bounds protect against a file that would make us allocate absurd memory.
    if !(8..=MAX_M_MIB * 1024).contains(&kdf.m_kib)
        || !(1..=64).contains(&kdf.t)
        || !(1..=16).contains(&kdf.p)
    {
        return other("the file's Argon2id parameters are out of range");
    }
    let salt = B64
        .decode(&kdf.salt)
        .map_err(|_| FileError::Check("the file's salt is not base64".into()))?;
    let mut k = Zeroizing::new([0u8; 32]);
    p.argon2id(password, &salt, kdf.m_kib, kdf.t, kdf.p, k.as_mut())
        .map_err(|_| FileError::Other("key derivation failed".into()))?;
    Ok(k)
}

fn aad(h: &Header) -> Result<Vec<u8>, FileError> {
    serde_json::to_vec(h).map_err(|e| FileError::Other(format!("header: {e}")))
}

/// Seals `secret` into a new protected file body.
pub fn seal(
    p: &dyn CryptoProvider,
    mut header: Header,
    password: &[u8],
    m_mib: u32,
    secret: &[u8],
) -> Result<ProtectedFile, FileError> {
    // Above the bound, `m_mib * 1024` could also wrap to a small value: refused, never
    // sealed with less memory than asked for.
    if !(MIN_M_MIB..=MAX_M_MIB).contains(&m_mib) {
        return Err(FileError::Other(format!(
            "Argon2id memory must be {MIN_M_MIB} to {MAX_M_MIB} MiB, not {m_mib}"
        )));
    }
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 12];
    p.fill_random(&mut salt)
        .map_err(|_| FileError::Other("random generator failed".into()))?;
    p.fill_random(&mut nonce)
        .map_err(|_| FileError::Other("random generator failed".into()))?;
    header.kdf = Kdf {
        alg: "argon2id".into(),
        v: 0x13,
        m_kib: m_mib * 1024,
        t: KDF_T,
        p: KDF_P,
        salt: B64.encode(salt),
    };
    header.aead = Aead {
        alg: "A256GCM".into(),
        nonce: B64.encode(nonce),
    };
    let k = derive(p, password, &header.kdf)?;
    let key = p
        .aead_key(AeadAlg::AesGcm, k.as_ref())
        .map_err(|_| FileError::Other("cipher setup failed".into()))?;
    let mut body = Zeroizing::new(secret.to_vec());
    key.seal(&nonce, &aad(&header)?, &mut body)
        .map_err(|_| FileError::Other("encryption failed".into()))?;
    Ok(ProtectedFile {
        header,
        ct: B64.encode(body.as_slice()),
    })
}

/// Opens a protected file with its password.
pub fn open(
    p: &dyn CryptoProvider,
    f: &ProtectedFile,
    password: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, FileError> {
    if f.header.aead.alg != "A256GCM" {
        return Err(FileError::Other(format!(
            "{what}: unsupported cipher {}",
            f.header.aead.alg
        )));
    }
    let nonce: [u8; 12] = B64
        .decode(&f.header.aead.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| FileError::Other(format!("{what}: bad nonce")))?;
    let k = derive(p, password, &f.header.kdf).map_err(|e| e.of(what))?;
    let key = p
        .aead_key(AeadAlg::AesGcm, k.as_ref())
        .map_err(|_| FileError::Other("cipher setup failed".into()))?;
    let mut body = Zeroizing::new(
        B64.decode(&f.ct)
            .map_err(|_| FileError::Check(format!("{what}: the ciphertext is not base64")))?,
    );
    key.open(&nonce, &aad(&f.header)?, &mut body).map_err(|_| {
        FileError::Check(format!("{what}: wrong password, or the file was altered (its header and ciphertext are authenticated together)"))
    })?;
    Ok(body)
}

/// An HPCS TKE CLI workstation file (spec/ceremony.md §3.8): a JSON map of strings whose
/// secret is sealed with AES-256-GCM under PBKDF2-HMAC-SHA-256 of the file's password.
/// Signature key files carry `keyType` and `ski`; key part files, whose layout IBM does not
/// publish, are read as the same scheme without them (an inference, docs/formats.md).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpcsFile {
    /// Signature keys: the key type (`p521ec`; absent for RSA-2048).
    #[serde(default)]
    pub key_type: Option<String>,
    /// Signature keys: the SKI (hex).
    #[serde(default)]
    pub ski: Option<String>,
    sea_salt: String,
    enckey: String,
    /// Key parts: the description.
    #[serde(default)]
    pub description: Option<String>,
}

impl HpcsFile {
    /// The file, if `text` is an HPCS file at all.
    pub fn parse(text: &str) -> Option<HpcsFile> {
        serde_json::from_str(text).ok()
    }

    /// The sealed secret, opened with `password`.
    pub fn open(
        &self,
        p: &dyn CryptoProvider,
        what: &str,
        password: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, FileError> {
        let bad = |field: &str| FileError::Check(format!("{what}: HPCS field {field} is not hex"));
        let salt = hex::decode(&self.sea_salt).map_err(|_| bad("seaSalt"))?;
        let enc = hex::decode(&self.enckey).map_err(|_| bad("enckey"))?;
        let (nonce, ct) = enc
            .split_at_checked(12)
            .ok_or_else(|| FileError::Check(format!("{what}: HPCS field enckey is too short")))?;
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| FileError::Check(format!("{what}: bad nonce")))?;
        let mut k = Zeroizing::new([0u8; 32]);
        p.pbkdf2_hmac_sha256(password, &salt, HPCS_PBKDF2_ITERATIONS, k.as_mut())
            .map_err(|_| FileError::Other("key derivation failed".into()))?;
        let key = p
            .aead_key(AeadAlg::AesGcm, k.as_ref())
            .map_err(|_| FileError::Other("cipher setup failed".into()))?;
        let mut plain = Zeroizing::new(ct.to_vec());
        key.open(&nonce, &[], &mut plain).map_err(|_| {
            FileError::Check(format!(
                "{what}: wrong password, or the HPCS file was altered"
            ))
        })?;
        Ok(plain)
    }
}
