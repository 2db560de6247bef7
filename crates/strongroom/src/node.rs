//! The node's own files in the data directory: the node key (from which the token, audit
//! and unit-seal keys are derived), the administrator token, and the crypto unit state
//! files (master keys sealed under the node's unit-seal key). Formats: docs/formats.md.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use strongroom_engine::admin::UnitState;
use strongroom_engine::{AeadAlg, AeadKey, CryptoProvider, MasterKey, MASTER_KEY_LEN};
use strongroom_model::{InstanceId, UnitId};
use strongroom_service::{NodeSecrets, UnitVault};
use zeroize::Zeroizing;

const UNIT_MAGIC: &[u8; 4] = b"SRU1";
const UNIT_VERSION: u8 = 1;

fn other(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}

/// Writes `data` to `path` atomically and durably (temp file, fsync, rename, fsync dir),
/// readable by the owner only.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().ok_or_else(|| other("path has no parent"))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

/// Creates `dir` (and missing parents) readable by the owner only (0700). An existing
/// directory keeps its mode; a warning names one that others can read.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "the directory is readable by other users; run chmod 700 on it");
    }
    Ok(())
}

/// Reads a cluster secret file (at least 32 bytes), or creates it with 32 random bytes
/// (mode 0600) when it does not exist: copy it to the other nodes.
/// A secret file of at least 32 bytes (a cluster or backup key file). When it is absent and
/// `created` is given, it is created with 32 random bytes and `created` is logged.
pub(crate) fn load_or_create_secret(
    path: &Path,
    p: &dyn CryptoProvider,
    created: Option<&str>,
) -> std::io::Result<Vec<u8>> {
    match fs::read(path) {
        Ok(b) if b.len() >= 32 => Ok(b),
        Ok(_) => Err(other(format!(
            "{} must hold at least 32 bytes (create it with: head -c 32 /dev/urandom > {})",
            path.display(),
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && created.is_some() => {
            let mut k = vec![0u8; 32];
            p.fill_random(&mut k)
                .map_err(|_| other("random generator failed"))?;
            write_private(path, &k)?;
            tracing::warn!(file = %path.display(), "{}", created.unwrap_or_default());
            Ok(k)
        }
        Err(e) => Err(other(format!("cannot read {}: {e}", path.display()))),
    }
}

/// The node's secrets, created on first start.
pub struct NodeFiles {
    pub node_key: Zeroizing<[u8; 32]>,
    pub admin_token: Zeroizing<String>,
}

impl NodeFiles {
    /// Loads `node.key` and `admin.token` from `dir`, creating them if absent.
    pub fn load_or_create(dir: &Path, p: &dyn CryptoProvider) -> std::io::Result<Self> {
        create_private_dir(dir)?;
        let key_path = dir.join("node.key");
        let node_key = if key_path.exists() {
            let b = Zeroizing::new(fs::read(&key_path)?);
            let arr: [u8; 32] = b
                .as_slice()
                .try_into()
                .map_err(|_| other(format!("{} must hold exactly 32 bytes", key_path.display())))?;
            Zeroizing::new(arr)
        } else {
            let mut k = Zeroizing::new([0u8; 32]);
            p.fill_random(k.as_mut())
                .map_err(|_| other("random generator failed"))?;
            write_private(&key_path, k.as_ref())?;
            k
        };
        let tok_path = dir.join("admin.token");
        let admin_token = if tok_path.exists() {
            Zeroizing::new(fs::read_to_string(&tok_path)?.trim().to_string())
        } else {
            let mut t = Zeroizing::new([0u8; 32]);
            p.fill_random(t.as_mut())
                .map_err(|_| other("random generator failed"))?;
            let s = Zeroizing::new(format!("sradm.{}", URL_SAFE_NO_PAD.encode(t.as_ref())));
            write_private(&tok_path, s.as_bytes())?;
            s
        };
        Ok(NodeFiles {
            node_key,
            admin_token,
        })
    }

    /// A key shared by the nodes of a cluster: from the cluster key file when given, else
    /// from the node key.
    pub fn shared_key(
        p: &dyn CryptoProvider,
        node_key: &[u8; 32],
        cluster_key_file: Option<&Path>,
        purpose: &str,
    ) -> std::io::Result<[u8; 32]> {
        let Some(path) = cluster_key_file else {
            return Self::derive(p, node_key, purpose);
        };
        let secret = Zeroizing::new(load_or_create_secret(
            path,
            p,
            Some("created a new cluster key file: copy it to every node of the cluster"),
        )?);
        let mut out = [0u8; 32];
        p.hkdf_sha256(
            b"strongroom/cluster",
            &secret,
            format!("strongroom/cluster/{purpose}/v1").as_bytes(),
            &mut out,
        )
        .map_err(|_| other("key derivation failed"))?;
        Ok(out)
    }

    /// Loads the node key only (offline tools).
    pub fn load_key(dir: &Path) -> std::io::Result<Zeroizing<[u8; 32]>> {
        let key_path = dir.join("node.key");
        let b = Zeroizing::new(
            fs::read(&key_path)
                .map_err(|e| other(format!("cannot read {}: {e}", key_path.display())))?,
        );
        let arr: [u8; 32] = b
            .as_slice()
            .try_into()
            .map_err(|_| other("node.key must hold exactly 32 bytes"))?;
        Ok(Zeroizing::new(arr))
    }

    pub fn derive(
        p: &dyn CryptoProvider,
        node_key: &[u8; 32],
        purpose: &str,
    ) -> std::io::Result<[u8; 32]> {
        let mut out = [0u8; 32];
        p.hkdf_sha256(
            b"strongroom/node",
            node_key,
            format!("strongroom/node/{purpose}/v1").as_bytes(),
            &mut out,
        )
        .map_err(|_| other("key derivation failed"))?;
        Ok(out)
    }

    /// The node's secrets. With a cluster key file (shared by the nodes of a cluster), the
    /// token-signing and audit-chain keys are derived from it, so any node accepts a token
    /// another issued and every node extends the one audit chain; else from the node key.
    pub fn secrets(
        &self,
        p: &dyn CryptoProvider,
        cluster_key_file: Option<&Path>,
    ) -> std::io::Result<NodeSecrets> {
        Ok(NodeSecrets {
            token_key: Self::shared_key(p, &self.node_key, cluster_key_file, "token")?,
            audit_key: Self::shared_key(p, &self.node_key, cluster_key_file, "audit")?,
            admin_token: self.admin_token.to_string(),
        })
    }
}

/// Crypto unit state files: `units/<unit id>.unit`, the unit's state (administrators,
/// thresholds, registers, identity key; docs/formats.md) sealed with AES-256-GCM under the
/// node's unit-seal key. Version 1 files (`units/<instance id>.unit`, a bare master key)
/// are converted to version 2 on first start.
pub struct FileVault {
    dir: PathBuf,
    seal: Box<dyn AeadKey>,
    provider: Arc<dyn CryptoProvider>,
}

const UNIT_V2_MAGIC: &[u8; 4] = b"SRU2";
const UNIT_V2_VERSION: u8 = 2;
const SEAL_SALT_FILE: &str = "seal.salt";
/// Argon2id parameters of a passphrase-derived unit-seal key.
const PASSPHRASE_M_KIB: u32 = 64 * 1024;
const PASSPHRASE_T: u32 = 3;

impl FileVault {
    /// The unit-seal key comes from the node key (default) or, with `passphrase`, from
    /// Argon2id over the passphrase and a salt kept in `units/seal.salt` (then the unit
    /// files cannot be opened with the node's disk alone).
    pub fn new(
        data_dir: &Path,
        node_key: &[u8; 32],
        passphrase: Option<&[u8]>,
        provider: Arc<dyn CryptoProvider>,
    ) -> std::io::Result<Self> {
        let dir = data_dir.join("units");
        create_private_dir(&dir)?;
        let k = match passphrase {
            None => Zeroizing::new(NodeFiles::derive(provider.as_ref(), node_key, "unit-seal")?),
            Some(pw) => {
                let salt_path = dir.join(SEAL_SALT_FILE);
                let salt = if salt_path.exists() {
                    fs::read(&salt_path)?
                } else {
                    let mut s = vec![0u8; 32];
                    provider
                        .fill_random(&mut s)
                        .map_err(|_| other("random generator failed"))?;
                    write_private(&salt_path, &s)?;
                    s
                };
                let mut k = Zeroizing::new([0u8; 32]);
                provider
                    .argon2id(pw, &salt, PASSPHRASE_M_KIB, PASSPHRASE_T, 1, k.as_mut())
                    .map_err(|_| other("passphrase key derivation failed"))?;
                k
            }
        };
        let seal = provider
            .aead_key(AeadAlg::AesGcm, k.as_ref())
            .map_err(|_| other("cannot prepare the unit seal key"))?;
        Ok(FileVault {
            dir,
            seal,
            provider,
        })
    }

    fn path(&self, u: UnitId) -> PathBuf {
        self.dir.join(format!("{u}.unit"))
    }

    fn aad_v1(i: InstanceId) -> Vec<u8> {
        let mut a = UNIT_MAGIC.to_vec();
        a.push(UNIT_VERSION);
        a.extend_from_slice(i.as_bytes());
        a
    }

    fn aad_v2(u: UnitId) -> Vec<u8> {
        let mut a = UNIT_V2_MAGIC.to_vec();
        a.push(UNIT_V2_VERSION);
        a.extend_from_slice(u.as_bytes());
        a
    }

    fn open_v2(&self, path: &Path, u: UnitId, data: &[u8]) -> std::io::Result<Zeroizing<Vec<u8>>> {
        if data.len() < 4 + 1 + 12 + 16 || &data[..4] != UNIT_V2_MAGIC || data[4] != UNIT_V2_VERSION
        {
            return Err(other(format!(
                "{} is not a Strongroom v2 unit file",
                path.display()
            )));
        }
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&data[5..17]);
        let mut body = Zeroizing::new(data[17..].to_vec());
        self.seal.open(&nonce, &Self::aad_v2(u), &mut body).map_err(|_| {
            other(format!(
                "{} cannot be opened with this node's unit-seal key (wrong node.key or passphrase, or a tampered file)",
                path.display()
            ))
        })?;
        Ok(body)
    }

    /// Converts a v1 file (a bare master key of an instance) into a v2 unit state.
    fn migrate_v1(
        &self,
        path: &Path,
        i: InstanceId,
        data: &[u8],
    ) -> std::io::Result<Zeroizing<Vec<u8>>> {
        if data.len() != 4 + 1 + 12 + MASTER_KEY_LEN + 16 || data[4] != UNIT_VERSION {
            return Err(other(format!(
                "{} is not a Strongroom v1 unit file",
                path.display()
            )));
        }
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&data[5..17]);
        let mut body = Zeroizing::new(data[17..].to_vec());
        self.seal
            .open(&nonce, &Self::aad_v1(i), &mut body)
            .map_err(|_| {
                other(format!(
                    "{} cannot be opened with this node's key (wrong node.key or tampered file)",
                    path.display()
                ))
            })?;
        let arr: [u8; MASTER_KEY_LEN] = body
            .as_slice()
            .try_into()
            .map_err(|_| other("bad master key length"))?;
        let state = UnitState::with_current(
            self.provider.as_ref(),
            UnitId::random(),
            i,
            MasterKey::from_bytes(arr),
            false,
        )
        .map_err(|e| other(format!("cannot convert {}: {e}", path.display())))?;
        let bytes = state
            .to_persisted()
            .map_err(|_| other("cannot encode the unit state"))?;
        self.write_v2(state.id(), &bytes)?;
        fs::remove_file(path)?;
        fs::File::open(&self.dir)?.sync_all()?;
        tracing::warn!(instance = %i, unit = %state.id(), "converted a version 1 unit file (master key only) into a version 2 unit in imprint mode holding that key; install administrators with strongroom tke");
        Ok(bytes)
    }

    fn write_v2(&self, u: UnitId, state: &[u8]) -> std::io::Result<()> {
        let mut nonce = [0u8; 12];
        self.provider
            .fill_random(&mut nonce)
            .map_err(|_| other("random generator failed"))?;
        let mut body = Zeroizing::new(state.to_vec());
        self.seal
            .seal(&nonce, &Self::aad_v2(u), &mut body)
            .map_err(|_| other("sealing failed"))?;
        let mut out = UNIT_V2_MAGIC.to_vec();
        out.push(UNIT_V2_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        write_private(&self.path(u), &out)
    }
}

#[async_trait]
impl UnitVault for FileVault {
    async fn save(&self, u: UnitId, state: &[u8]) -> std::io::Result<()> {
        self.write_v2(u, state)
    }

    async fn load_all(&self) -> std::io::Result<Vec<Zeroizing<Vec<u8>>>> {
        let mut out = Vec::new();
        let mut entries: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("unit"))
            .collect();
        entries.sort();
        for path in entries {
            let id: uuid::Uuid = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| other(format!("{} is not named <uuid>.unit", path.display())))?;
            let data = fs::read(&path)?;
            if data.starts_with(UNIT_MAGIC) {
                out.push(self.migrate_v1(&path, InstanceId(id), &data)?);
            } else {
                out.push(self.open_v2(&path, UnitId(id), &data)?);
            }
        }
        Ok(out)
    }

    async fn destroy(&self, u: UnitId) -> std::io::Result<()> {
        let path = self.path(u);
        if path.exists() {
            // Crypto-shredding: once no copy of the master key remains, every blob sealed
            // under it (in the keystore or in backups) is unreadable.
            fs::remove_file(&path)?;
            fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use strongroom_crypto_awslc::AwsLcProvider;
    use strongroom_engine::admin::vp_of;

    fn provider() -> Arc<dyn CryptoProvider> {
        Arc::new(AwsLcProvider)
    }

    /// The keys derived from the node key and from a cluster key file are fixed by
    /// docs/formats.md: a change would orphan every token and audit chain made before it.
    /// Expected values computed independently (RFC 5869 over Python's `hmac`).
    #[test]
    fn node_and_cluster_keys_derive_as_documented() {
        let p = AwsLcProvider;
        let node_key = [0x11u8; 32];
        for (purpose, expected) in [
            (
                "token",
                "db444a62e1c67fa620b0c9327f0de2d13d553bbe99adc0a4d6365cd67f36af3c",
            ),
            (
                "audit",
                "030e3a8e1f8fb6029f2a1331008f2e3c318cafc0a550ea340d93d35ad0a78a97",
            ),
            (
                "unit-seal",
                "fc7ba31170b52f3d645e1f55896e979ae0ff924e4c2363d0e3f0776a7d194808",
            ),
        ] {
            let k = NodeFiles::derive(&p, &node_key, purpose).unwrap();
            assert_eq!(hex::encode(k), expected, "node key, {purpose}");
        }
        let dir = tempfile::tempdir().unwrap();
        let cluster = dir.path().join("cluster.key");
        std::fs::write(&cluster, [0x22u8; 32]).unwrap();
        for (purpose, expected) in [
            (
                "token",
                "201195cff94b8e6527dd1f444d44b1b4a039f58a258484575d953695da8be7cb",
            ),
            (
                "audit",
                "b97944663685338f2297a0268e8c971d7f135698dd674cd9a574bcec18b5bff6",
            ),
        ] {
            let k = NodeFiles::shared_key(&p, &node_key, Some(&cluster), purpose).unwrap();
            assert_eq!(hex::encode(k), expected, "cluster key, {purpose}");
        }
        // Without a cluster key file the shared keys are the node key's.
        let k = NodeFiles::shared_key(&p, &node_key, None, "audit").unwrap();
        assert_eq!(k, NodeFiles::derive(&p, &node_key, "audit").unwrap());
    }

    #[tokio::test]
    async fn a_version_1_unit_file_becomes_a_version_2_unit_holding_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let node_key = [9u8; 32];
        let vault = FileVault::new(dir.path(), &node_key, None, provider()).unwrap();
        // A v1 file as the previous release wrote it.
        let instance = InstanceId::random();
        let mk = [0x42u8; 32];
        let mut nonce = [0u8; 12];
        AwsLcProvider.fill_random(&mut nonce).unwrap();
        let mut body = mk.to_vec();
        vault
            .seal
            .seal(&nonce, &FileVault::aad_v1(instance), &mut body)
            .unwrap();
        let mut v1 = UNIT_MAGIC.to_vec();
        v1.push(UNIT_VERSION);
        v1.extend_from_slice(&nonce);
        v1.extend_from_slice(&body);
        let v1_path = dir.path().join("units").join(format!("{instance}.unit"));
        std::fs::write(&v1_path, &v1).unwrap();

        let states = vault.load_all().await.unwrap();
        assert_eq!(states.len(), 1);
        let u = UnitState::from_persisted(&AwsLcProvider, &states[0]).unwrap();
        assert_eq!(u.instance(), instance);
        assert_eq!(u.current_vp(), Some(vp_of(&AwsLcProvider, &mk).unwrap()));
        assert_eq!(u.mode(), strongroom_engine::admin::Mode::Imprint);
        assert!(!v1_path.exists(), "the v1 file is replaced");
        // The converted state loads again from its v2 file.
        let again = vault.load_all().await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].as_slice(), states[0].as_slice());
    }

    #[tokio::test]
    async fn unit_files_open_only_with_their_seal_key_and_detect_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let p = provider();
        let vault = FileVault::new(
            dir.path(),
            &[1u8; 32],
            Some(b"unit passphrase"),
            Arc::clone(&p),
        )
        .unwrap();
        let u = UnitState::new(
            p.as_ref(),
            UnitId::random(),
            InstanceId::random(),
            strongroom_engine::admin::UnitKind::Operational,
        )
        .unwrap();
        vault
            .save(u.id(), &u.to_persisted().unwrap())
            .await
            .unwrap();
        assert_eq!(vault.load_all().await.unwrap().len(), 1);
        // The same passphrase (and the salt in units/seal.salt) opens it again.
        let same = FileVault::new(
            dir.path(),
            &[2u8; 32],
            Some(b"unit passphrase"),
            Arc::clone(&p),
        )
        .unwrap();
        assert_eq!(same.load_all().await.unwrap().len(), 1);
        // Another passphrase, or the node key alone, does not.
        let wrong = FileVault::new(
            dir.path(),
            &[1u8; 32],
            Some(b"another passphrase"),
            Arc::clone(&p),
        )
        .unwrap();
        let e = wrong.load_all().await.unwrap_err().to_string();
        assert!(e.contains("wrong node.key or passphrase"), "{e}");
        let node_only = FileVault::new(dir.path(), &[1u8; 32], None, Arc::clone(&p)).unwrap();
        assert!(node_only.load_all().await.is_err());
        // A changed byte is detected.
        let path = dir.path().join("units").join(format!("{}.unit", u.id()));
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        std::fs::write(&path, data).unwrap();
        assert!(same.load_all().await.is_err());
    }
}
