//! Secret types: zeroized on drop, never `Clone`, `Debug` shows only lengths and ids.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::provider::{CryptoError, CryptoProvider};

/// Length of a master key: AES-256.
pub const MASTER_KEY_LEN: usize = 32;

/// A crypto unit's master key (the content of a master key register).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; MASTER_KEY_LEN]);

impl MasterKey {
    /// Takes ownership of raw master key bytes (from a key part combination or a sealed
    /// unit state file). The caller's copy should be zeroized.
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        MasterKey(bytes)
    }
    /// A fresh random master key (dev mode and tests only; real units get theirs through
    /// the ceremony).
    pub fn random(p: &dyn CryptoProvider) -> Result<Self, CryptoError> {
        let mut k = [0u8; MASTER_KEY_LEN];
        p.fill_random(&mut k)?;
        Ok(MasterKey(k))
    }
    /// The raw bytes, for sealing the unit state at rest. Handle with care.
    pub fn expose(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(AES-256, <redacted>)")
    }
}

/// Key material (a root key's AES key, a standard key's secret bytes).
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    /// Takes ownership of key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        KeyMaterial(Zeroizing::new(bytes))
    }
    /// Copies key bytes from a slice (the slice stays the caller's to zeroize).
    pub fn from_slice(bytes: &[u8]) -> Self {
        KeyMaterial(Zeroizing::new(bytes.to_vec()))
    }
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial({} bytes, <redacted>)", self.0.len())
    }
}
