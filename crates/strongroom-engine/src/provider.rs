//! The seam between the engine and a cryptographic library. The engine only ever calls
//! primitives through [`CryptoProvider`]; the production implementation lives in
//! `strongroom-crypto-awslc`. Errors carry no detail on purpose (no oracle).

/// An opaque failure of a primitive (bad tag, bad length, library failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cryptographic operation failed")]
pub struct CryptoError;

/// The AEAD algorithms the engine uses. Key length decides the AES variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadAlg {
    /// AES-GCM with a 128-, 192- or 256-bit key, 96-bit nonce, 128-bit tag.
    AesGcm,
}

/// A prepared AEAD key (key schedule done once). Implementations must not expose the key.
pub trait AeadKey: Send + Sync {
    /// Encrypts `in_out` in place and appends the 16-byte tag.
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut Vec<u8>) -> Result<(), CryptoError>;
    /// Decrypts `in_out` (ciphertext followed by tag) in place and truncates it to the
    /// plaintext. On failure the buffer content is unspecified and must be discarded.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut Vec<u8>) -> Result<(), CryptoError>;
}

/// A prepared HMAC-SHA-256 key: its inner and outer pads are hashed once, for many messages.
/// Implementations must not expose the key.
pub trait HmacSha256Key: Send + Sync {
    /// HMAC-SHA-256 over the concatenation of `parts`.
    fn sign(&self, parts: &[&[u8]]) -> [u8; 32];
}

/// The hash of RSA-OAEP (and of its MGF1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OaepHash {
    /// SHA-1 (the HPCS import variant `RSAES_OAEP_SHA_1`).
    Sha1,
    /// SHA-256 (`RSAES_OAEP_SHA_256`).
    Sha256,
}

/// Message digests (GREP11 Digest*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    /// SHA-1 (legacy; digests only).
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA-512/256.
    Sha512_256,
    /// SHA-512/224.
    Sha512_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

/// Signature algorithms of administrator keys and unit identity keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigAlg {
    /// Ed25519 (RFC 8032); public key: 32 bytes.
    Ed25519,
    /// ECDSA on P-256 over SHA-256, DER signatures; public key: uncompressed point (65 bytes).
    EcdsaP256Sha256,
    /// ECDSA on P-521 over SHA-512, DER signatures; public key: uncompressed point (133 bytes).
    EcdsaP521Sha512,
}

impl SigAlg {
    /// The name used in files and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SigAlg::Ed25519 => "ed25519",
            SigAlg::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SigAlg::EcdsaP521Sha512 => "ecdsa-p521-sha512",
        }
    }
    /// Parses [`SigAlg::name`] (also the short forms `p256` and `p521`).
    pub fn parse(s: &str) -> Option<SigAlg> {
        match s.to_ascii_lowercase().as_str() {
            "ed25519" => Some(SigAlg::Ed25519),
            "ecdsa-p256-sha256" | "p256" | "p-256" => Some(SigAlg::EcdsaP256Sha256),
            "ecdsa-p521-sha512" | "p521" | "p-521" => Some(SigAlg::EcdsaP521Sha512),
            _ => None,
        }
    }
}

/// Block ciphers of the PKCS#11 mechanisms. The key length picks the variant: AES 16, 24
/// or 32 bytes; triple DES 16 (two-key) or 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockCipher {
    /// AES (block 16 bytes).
    Aes,
    /// Triple DES (block 8 bytes; legacy, never FIPS-approved).
    Des3,
}

impl BlockCipher {
    /// The block length in bytes.
    pub fn block_len(self) -> usize {
        match self {
            BlockCipher::Aes => 16,
            BlockCipher::Des3 => 8,
        }
    }
}

/// Block cipher modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherMode {
    /// ECB, whole blocks only.
    Ecb,
    /// CBC without padding, whole blocks only.
    Cbc,
    /// CBC with PKCS#7 padding.
    CbcPad,
}

/// MAC algorithms of the PKCS#11 mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlg {
    /// HMAC over SHA-1 or SHA-2 (SHA-224/256/384/512, SHA-512/224, SHA-512/256).
    Hmac(DigestAlg),
    /// CMAC (SP 800-38B) over AES or triple DES; the key length picks the variant.
    Cmac(BlockCipher),
}

/// Elliptic curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
    /// secp256k1.
    Secp256k1,
    /// Edwards25519 (Ed25519 signatures).
    Ed25519,
    /// Curve25519 for key agreement (X25519, RFC 7748).
    X25519,
    /// BLS12-381 for BLS signatures (public keys in G1, signatures in G2).
    Bls12381,
}

impl Curve {
    /// A curve of ECDSA and ECDH1: P-256, P-384, P-521, secp256k1.
    pub fn is_ecdsa(self) -> bool {
        matches!(
            self,
            Curve::P256 | Curve::P384 | Curve::P521 | Curve::Secp256k1
        )
    }

    /// The length of the curve order in bytes (the native ECDSA digest length; 64 on
    /// P-521, whose order has 521 bits, because aws-lc signs at most 64-byte digests there).
    pub fn digest_len(self) -> usize {
        match self {
            Curve::P256 | Curve::Secp256k1 | Curve::Ed25519 | Curve::X25519 | Curve::Bls12381 => 32,
            Curve::P384 => 48,
            Curve::P521 => 64,
        }
    }
    /// The field length in bytes (ECDH secret length, half an r‖s signature).
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 | Curve::Secp256k1 | Curve::Ed25519 | Curve::X25519 => 32,
            Curve::P384 | Curve::Bls12381 => 48,
            Curve::P521 => 66,
        }
    }
}

/// The kind of an asymmetric key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsymKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus length in bits.
        bits: u32,
    },
    /// A key on an elliptic curve (ECDSA/ECDH or Ed25519).
    Ec(Curve),
    /// PKCS #3 Diffie-Hellman with a prime p of `bits` bits.
    Dh {
        /// Bits of p.
        bits: u32,
    },
    /// DSA with a prime p of `bits` bits and a subprime q of `q_len` bytes.
    Dsa {
        /// Bits of p.
        bits: u32,
        /// Bytes of q (half an r ‖ s signature).
        q_len: u8,
    },
    /// ML-DSA (FIPS 204) signatures.
    MlDsa(MlDsaSet),
    /// ML-KEM (FIPS 203) key encapsulation.
    MlKem(MlKemSet),
}

/// The parameter sets of ML-DSA (FIPS 204).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlDsaSet {
    /// ML-DSA-44 (category 2).
    P44,
    /// ML-DSA-65 (category 3).
    P65,
    /// ML-DSA-87 (category 5).
    P87,
}

impl MlDsaSet {
    /// Every set, smallest first.
    pub const ALL: [MlDsaSet; 3] = [MlDsaSet::P44, MlDsaSet::P65, MlDsaSet::P87];

    /// The signature length in bytes.
    pub fn signature_len(self) -> usize {
        match self {
            MlDsaSet::P44 => 2420,
            MlDsaSet::P65 => 3309,
            MlDsaSet::P87 => 4627,
        }
    }

    /// The public key length in bytes.
    pub fn public_key_len(self) -> usize {
        match self {
            MlDsaSet::P44 => 1312,
            MlDsaSet::P65 => 1952,
            MlDsaSet::P87 => 2592,
        }
    }

    /// The name FIPS 204 gives it.
    pub fn name(self) -> &'static str {
        match self {
            MlDsaSet::P44 => "ML-DSA-44",
            MlDsaSet::P65 => "ML-DSA-65",
            MlDsaSet::P87 => "ML-DSA-87",
        }
    }
}

/// The parameter sets of ML-KEM (FIPS 203).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlKemSet {
    /// ML-KEM-512 (category 1).
    K512,
    /// ML-KEM-768 (category 3).
    K768,
    /// ML-KEM-1024 (category 5).
    K1024,
}

impl MlKemSet {
    /// Every set, smallest first.
    pub const ALL: [MlKemSet; 3] = [MlKemSet::K512, MlKemSet::K768, MlKemSet::K1024];

    /// The ciphertext length in bytes.
    pub fn ciphertext_len(self) -> usize {
        match self {
            MlKemSet::K512 => 768,
            MlKemSet::K768 => 1088,
            MlKemSet::K1024 => 1568,
        }
    }

    /// The encapsulation key length in bytes.
    pub fn public_key_len(self) -> usize {
        match self {
            MlKemSet::K512 => 800,
            MlKemSet::K768 => 1184,
            MlKemSet::K1024 => 1568,
        }
    }

    /// The name FIPS 203 gives it.
    pub fn name(self) -> &'static str {
        match self {
            MlKemSet::K512 => "ML-KEM-512",
            MlKemSet::K768 => "ML-KEM-768",
            MlKemSet::K1024 => "ML-KEM-1024",
        }
    }
}

/// A public key as the provider understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicInfo {
    /// What kind of key.
    pub kind: AsymKind,
    /// DER SubjectPublicKeyInfo (RFC 5280; RFC 8410 for Ed25519).
    pub spki: Vec<u8>,
    /// The raw public key: an uncompressed point `04‖X‖Y`, 32 bytes for Ed25519, the
    /// PKCS#1 RSAPublicKey DER for RSA.
    pub raw: Vec<u8>,
}

/// A signature scheme applied to data or to a digest the engine computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignScheme {
    /// RSASSA-PKCS1-v1_5 over a digest of `DigestAlg` (SHA-256/384/512).
    RsaPkcs1(DigestAlg),
    /// RSASSA-PKCS1-v1_5 type-1 padding over caller data of at most k − 11 bytes (a
    /// DigestInfo, usually): `CKM_RSA_PKCS` signing.
    RsaPkcs1Raw,
    /// RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash.
    RsaPss(DigestAlg),
    /// RSASSA-PSS over a digest of `hash` with MGF1(`mgf`) and a salt of `salt` bytes.
    RsaPssWith {
        /// Message hash (the digest's algorithm).
        hash: DigestAlg,
        /// MGF1 hash.
        mgf: DigestAlg,
        /// Salt length in bytes.
        salt: u32,
    },
    /// ECDSA over a digest already cut or padded to [`Curve::digest_len`]; raw `r‖s`.
    EcdsaDigest,
    /// ANSI X9.31 RSA over caller data `hash ‖ hash id ‖ 0xCC` (the mechanism adds the
    /// header and padding; the signature is min(s, n − s)).
    RsaX931,
    /// Ed25519 over the message (RFC 8032).
    Ed25519,
    /// DSA over a digest; r ‖ s, each as long as q.
    DsaDigest,
    /// BLS over the message on BLS12-381 (Ethereum's proof-of-possession ciphersuite): 96
    /// bytes.
    Bls,
    /// BIP340 Schnorr over the message on secp256k1: 64 bytes, under the x-only public key,
    /// with fresh auxiliary randomness.
    Bip340,
    /// Pure ML-DSA over the message with an empty context (a context string goes through
    /// [`PreparedPrivate::ml_dsa_sign`] and [`CryptoProvider::ml_dsa_verify`]).
    MlDsa,
    /// IBM's EC-SDSA (Schnorr) over the message with SHA-256, on P-256 or secp256k1: `r ‖ s`,
    /// 32 bytes each, with a fresh random nonce.
    EcSdsa(EcSdsa),
}

/// The two EC-SDSA forms of IBM's `CKM_IBM_ECDSA_OTHER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcSdsa {
    /// ECSG type 3 (`ECSG_IBM_ECSDSA_S256`): EC-SDSA of BSI TR-03111 and ISO/IEC 14888-3,
    /// `r = SHA-256(x(W) ‖ y(W) ‖ M)`, `s = k + r·d mod n`.
    Standard,
    /// ECSG type 5 (`ECSG_IBM_ECSDSA_COMPR_MULTI`): over compressed points and including the
    /// signer's public key `P`, `r = SHA-256(W ‖ P ‖ M) mod n`, `s = k − r·d mod n` (the
    /// Schnorr signature of Zilliqa, which IBM's own example verifies with).
    CompressedMulti,
}

/// RSA encryption padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RsaPadding {
    /// RSAES-PKCS1-v1_5.
    Pkcs1,
    /// RSAES-OAEP with MGF1 of the same hash (SHA-1, SHA-256, SHA-384, SHA-512).
    Oaep(DigestAlg),
    /// RSAES-OAEP with any SHA-1/SHA-2 hash and MGF1 hash.
    OaepWith {
        /// OAEP hash.
        hash: DigestAlg,
        /// MGF1 hash.
        mgf: DigestAlg,
    },
}

/// Hierarchical deterministic key derivation: BIP32 (secp256k1) and SLIP-0010
/// (secp256k1, P-256, Ed25519).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HdScheme {
    /// BIP32: secp256k1 only; an index whose child is not a valid key has no child.
    Bip32,
    /// SLIP-0010: the same tree on more curves; on NIST curves an invalid child is retried
    /// as the specification says, and Ed25519 knows hardened private derivation only.
    Slip10,
}

/// Indexes from this one up are hardened (BIP32's `i ≥ 2³¹`).
pub const HD_HARDENED: u32 = 0x8000_0000;

/// What an HD derivation starts from.
#[derive(Clone, Copy)]
pub enum HdParent<'a> {
    /// A seed (16 to 64 bytes in BIP32): the master key.
    Seed(&'a [u8]),
    /// A private key (PKCS#8) and its chain code.
    Private {
        /// The parent's PKCS#8.
        pkcs8: &'a [u8],
        /// The parent's chain code.
        chain: &'a [u8; 32],
    },
    /// A public key and its chain code.
    Public {
        /// The parent's public key.
        public: &'a PublicInfo,
        /// The parent's chain code.
        chain: &'a [u8; 32],
    },
}

/// A derived key with its chain code.
pub struct HdChild {
    /// The child's private key (PKCS#8), unless it was derived from a public key.
    pub private: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// The child's public key.
    pub public: PublicInfo,
    /// The child's chain code.
    pub chain: [u8; 32],
}

/// Why an HD derivation gave no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HdError {
    /// The scheme is not defined on the key's curve.
    Curve,
    /// A hardened index from a public key, or a non-hardened one on Ed25519.
    Hardened,
    /// The parent key or seed cannot be used.
    Parent,
    /// BIP32: the index gives no valid key (probability below 2⁻¹²⁷); use the next one.
    NoChild,
}

/// A private key parsed once and used many times (the service caches these).
pub trait PreparedPrivate: Send + Sync {
    /// The public half.
    fn public(&self) -> &PublicInfo;
    /// Signs: `data` is the digest for the digest schemes, the message for Ed25519.
    fn sign(&self, scheme: SignScheme, data: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// RSA decryption (`label` only for OAEP).
    fn rsa_decrypt(
        &self,
        padding: RsaPadding,
        label: &[u8],
        ciphertext: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// Key agreement with a peer's public value: ECDH (the x-coordinate of the shared point,
    /// [`Curve::field_len`] bytes; the peer sends its uncompressed point) or PKCS #3 DH (the
    /// secret padded to the length of p; the peer sends its public value, big-endian).
    fn agree(&self, peer: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// EC point multiplication d·Q with the key's private scalar and a peer's encoded point:
    /// the uncompressed result point.
    fn ec_multiply(&self, point: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// The PKCS#8 encoding (for wrapping out).
    fn pkcs8(&self) -> &[u8];
    /// Pure ML-DSA over `msg` with a context string of at most 255 bytes (FIPS 204 §5.2),
    /// hedged with fresh randomness.
    fn ml_dsa_sign(&self, _context: &[u8], _msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError)
    }
    /// ML-KEM decapsulation: the 32-byte shared secret of `ciphertext` (implicit rejection:
    /// a ciphertext of the right length never fails, a forged one gives an unrelated secret).
    fn decapsulate(&self, _ciphertext: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        Err(CryptoError)
    }
}

/// The primitives a crypto unit needs. Implementations are stateless and thread-safe.
pub trait CryptoProvider: Send + Sync + 'static {
    /// A short name for logs (`aws-lc-rs 1.x`).
    fn name(&self) -> &'static str;
    /// Whether the primitives run in a validated FIPS 140 module that is in its approved
    /// mode (reported by `/health` and the start-up log).
    fn fips_mode(&self) -> bool {
        false
    }
    /// Fills `out` from a cryptographically secure generator.
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError>;
    /// Prepares an AEAD key. Key lengths: 16, 24 or 32 bytes.
    fn aead_key(&self, alg: AeadAlg, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError>;
    /// HKDF-SHA-256 (extract then expand) into `out` (at most 255 × 32 bytes).
    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError>;
    /// HMAC-SHA-256 over the concatenation of `parts`, with a key used once.
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        self.hmac_sha256_key(key).sign(parts)
    }
    /// Prepares `key` for many HMAC-SHA-256 computations (the audit chain's key, which
    /// signs every record).
    fn hmac_sha256_key(&self, key: &[u8]) -> Box<dyn HmacSha256Key>;
    /// SHA-256 over the concatenation of `parts`.
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32];
    /// Compares two secrets in time independent of their content.
    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool;
    /// Generates an RSA key pair: (PKCS#8 private key DER, SubjectPublicKeyInfo DER).
    fn rsa_generate(
        &self,
        bits: usize,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CryptoError>;
    /// RSA-OAEP decryption (MGF1 with the same hash, empty label) with a PKCS#8 key.
    fn rsa_oaep_decrypt(
        &self,
        pkcs8: &[u8],
        hash: OaepHash,
        ciphertext: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// RSA-OAEP encryption to a SubjectPublicKeyInfo (the CLI's secure-import helper).
    fn rsa_oaep_encrypt(
        &self,
        spki: &[u8],
        hash: OaepHash,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// AES-CBC decryption with PKCS#7 padding (16-byte IV).
    fn aes_cbc_pkcs7_decrypt(
        &self,
        key: &[u8],
        iv: &[u8; 16],
        ciphertext: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// Generates a signature key pair: (PKCS#8 private key DER, raw public key).
    fn sig_generate(
        &self,
        alg: SigAlg,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CryptoError>;
    /// PBKDF2-HMAC-SHA-256 (RFC 8018): only to read files of tools that use it (HPCS's TKE
    /// signature key files); Strongroom's own files use Argon2id.
    fn pbkdf2_hmac_sha256(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        out: &mut [u8],
    ) -> Result<(), CryptoError>;
    /// An ECDSA private key in DER, SEC1 (RFC 5915) or PKCS#8, as the PKCS#8 of `alg`.
    fn ec_private_to_pkcs8(
        &self,
        alg: SigAlg,
        der: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// The raw public key of a PKCS#8 private key (fails if it is not a key of `alg`).
    fn sig_public_key(&self, alg: SigAlg, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Signs `msg` with a PKCS#8 private key.
    fn sig_sign(&self, alg: SigAlg, pkcs8: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Verifies a signature over `msg` by the raw public key.
    fn sig_verify(&self, alg: SigAlg, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool;
    /// Generates an HPKE key pair (DHKEM(X25519, HKDF-SHA256)): (private key, public key).
    fn hpke_generate(&self) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CryptoError>;
    /// HPKE base-mode single-shot seal (RFC 9180; DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
    /// AES-256-GCM) to `public_key`: returns `enc (32 bytes) ‖ ciphertext ‖ tag`.
    fn hpke_seal(
        &self,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// Opens what [`CryptoProvider::hpke_seal`] produced.
    fn hpke_open(
        &self,
        private_key: &[u8],
        info: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// Argon2id (RFC 9106, version 0x13) of `password` into `out`.
    fn argon2id(
        &self,
        password: &[u8],
        salt: &[u8],
        m_kib: u32,
        t: u32,
        p: u32,
        out: &mut [u8],
    ) -> Result<(), CryptoError>;
    /// The digest of `data`.
    fn digest(&self, alg: DigestAlg, data: &[u8]) -> Vec<u8>;
    /// A fresh exported digest state for multi-part digests, or `None` when the algorithm
    /// has no exportable state (SHA-3): the caller then buffers the data.
    fn digest_state_new(&self, alg: DigestAlg) -> Option<Vec<u8>>;
    /// Feeds `data` to an exported digest state; fails on a damaged state.
    fn digest_state_update(
        &self,
        alg: DigestAlg,
        state: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// The digest of an exported state.
    fn digest_state_finish(&self, alg: DigestAlg, state: &[u8]) -> Result<Vec<u8>, CryptoError>;

    /// Block cipher encryption (ECB and CBC: whole blocks; CBC_PAD pads). `iv` is empty
    /// for ECB, one block otherwise.
    fn block_encrypt(
        &self,
        cipher: BlockCipher,
        mode: CipherMode,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// Block cipher decryption (CBC_PAD checks and removes the padding).
    fn block_decrypt(
        &self,
        cipher: BlockCipher,
        mode: CipherMode,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// A MAC over `data` (full length).
    fn mac(&self, alg: MacAlg, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// AES key wrap with padding (NIST SP 800-38F KWP, RFC 5649) under a 16- or 32-byte
    /// key.
    fn aes_kwp_wrap(&self, kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Unwraps AES-KWP; fails on a wrong key, a modified ciphertext or bad padding.
    fn aes_kwp_unwrap(
        &self,
        kek: &[u8],
        ciphertext: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// The aggregate of BLS signatures (96-byte compressed G2 points).
    fn bls_aggregate_signatures(&self, sigs: &[&[u8]]) -> Result<Vec<u8>, CryptoError>;
    /// The aggregate of BLS public keys (48-byte compressed G1 points).
    fn bls_aggregate_public_keys(&self, keys: &[&[u8]]) -> Result<PublicInfo, CryptoError>;
    /// One step of BIP32 / SLIP-0010 on `curve`: the master key of a seed, or the child
    /// `index` of a private or public parent.
    fn hd_derive(
        &self,
        scheme: HdScheme,
        curve: Curve,
        parent: HdParent<'_>,
        index: u32,
    ) -> Result<HdChild, HdError>;
    /// Generates a key pair: (PKCS#8 private key, public key). RSA sizes: 2048, 3072, 4096
    /// or 8192 bits, exponent 65537.
    fn asym_generate(
        &self,
        kind: AsymKind,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, PublicInfo), CryptoError>;
    /// Generates an RSA key pair with a chosen size (2048–8192, a multiple of 128) and odd
    /// public exponent (17 ≤ e < 2³²).
    fn rsa_generate_with(
        &self,
        bits: u32,
        exponent: u64,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, PublicInfo), CryptoError>;
    /// DSA domain parameters of `bits` bits (2048 or 3072) as DER Dss-Parms.
    fn dsa_parameters(&self, bits: u32) -> Result<Vec<u8>, CryptoError>;
    /// A DSA key pair in the given DER Dss-Parms.
    fn dsa_generate(
        &self,
        params: &[u8],
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, PublicInfo), CryptoError>;
    /// Diffie-Hellman parameters of `bits` bits (2048, 3072, 4096, 8192): the RFC 7919
    /// group of that size, as a DER DHParameter.
    fn dh_parameters(&self, bits: u32) -> Result<Vec<u8>, CryptoError>;
    /// A DH key pair in the given DER DHParameter: (PKCS#8 with the PKCS #3 OID, public).
    fn dh_generate(
        &self,
        params: &[u8],
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, PublicInfo), CryptoError>;
    /// Parses a PKCS#8 private key (RSA, EC on the supported curves, Ed25519, DSA, DH).
    fn prepare_private(&self, pkcs8: &[u8]) -> Result<Box<dyn PreparedPrivate>, CryptoError>;
    /// Parses a SubjectPublicKeyInfo (RSA, EC on the supported curves, Ed25519).
    fn public_info(&self, spki: &[u8]) -> Result<PublicInfo, CryptoError>;
    /// Verifies a signature (see [`PreparedPrivate::sign`] for `data`).
    fn verify(&self, scheme: SignScheme, public: &PublicInfo, data: &[u8], sig: &[u8]) -> bool;
    /// RSA encryption to a public key (`label` only for OAEP).
    fn rsa_encrypt(
        &self,
        padding: RsaPadding,
        public: &PublicInfo,
        label: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// Verifies a pure ML-DSA signature with a context string (see
    /// [`PreparedPrivate::ml_dsa_sign`]).
    fn ml_dsa_verify(
        &self,
        _public: &PublicInfo,
        _context: &[u8],
        _msg: &[u8],
        _sig: &[u8],
    ) -> bool {
        false
    }
    /// ML-KEM encapsulation to a public key: (ciphertext, 32-byte shared secret).
    fn ml_kem_encapsulate(
        &self,
        _public: &PublicInfo,
    ) -> Result<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>), CryptoError> {
        Err(CryptoError)
    }
}
