//! Writing backup archives, and where they go: a directory, or an S3-compatible object store
//! (`s3://bucket/prefix`). S3 credentials and region come from the standard `AWS_*`
//! environment variables; `STRONGROOM_S3_ENDPOINT` (or `AWS_ENDPOINT_URL`) points at a
//! non-AWS store (MinIO, Ceph, …).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use strongroom_service::backup::ArchiveKey;

/// The key that authenticates archives, from the backup key file at `path` (`--backup-key-file`):
/// created with 32 random bytes when absent and `create` is set (writing archives), required
/// otherwise (reading them).
pub fn archive_key(path: Option<&Path>, create: bool) -> Result<Option<ArchiveKey>, Error> {
    let Some(path) = path else { return Ok(None) };
    let p = strongroom_crypto_awslc::AwsLcProvider;
    let created = create.then_some(
        "created a new backup key file: keep a copy apart from the archives (a restore needs it)",
    );
    let secret = zeroize::Zeroizing::new(
        crate::node::load_or_create_secret(path, &p, created).map_err(Error::context(format!(
            "backup key file {}",
            path.display()
        )))?,
    );
    ArchiveKey::derive(&p, &secret)
        .map(Some)
        .map_err(|e| Error::other(e.message))
}

/// A backup destination.
pub enum Target {
    /// A directory on this machine.
    Dir(PathBuf),
    /// A bucket and key prefix of an S3-compatible store.
    S3 {
        store: Arc<dyn ObjectStore>,
        bucket: String,
        prefix: String,
    },
}

fn s3_store(bucket: &str) -> Result<Arc<dyn ObjectStore>, Error> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = std::env::var("STRONGROOM_S3_ENDPOINT")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok();
    if let Some(e) = endpoint {
        b = b.with_allow_http(e.starts_with("http://")).with_endpoint(e);
    }
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        b = b.with_region("us-east-1");
    }
    Ok(Arc::new(b.build().map_err(Error::context(format!(
        "S3 store for bucket '{bucket}' (set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for a non-AWS store, STRONGROOM_S3_ENDPOINT)"
    )))?))
}

/// Splits `s3://bucket/some/prefix` into bucket and prefix.
fn split_s3(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    Some((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl Target {
    /// A directory path, or `s3://bucket/prefix`.
    pub fn parse(s: &str) -> Result<Target, Error> {
        if s.starts_with("s3://") {
            let (bucket, prefix) = split_s3(s)
                .ok_or_else(|| Error::other(format!("'{s}' is not s3://bucket/prefix")))?;
            Ok(Target::S3 {
                store: s3_store(&bucket)?,
                bucket,
                prefix,
            })
        } else {
            Ok(Target::Dir(PathBuf::from(s)))
        }
    }

    fn key(&self, name: &str) -> ObjectPath {
        match self {
            Target::S3 { prefix, .. } if !prefix.is_empty() => {
                ObjectPath::from(format!("{prefix}/{name}"))
            }
            _ => ObjectPath::from(name),
        }
    }

    /// Where an archive of this name is, for people.
    pub fn location(&self, name: &str) -> String {
        match self {
            Target::Dir(d) => d.join(name).display().to_string(),
            Target::S3 { bucket, .. } => format!("s3://{bucket}/{}", self.key(name)),
        }
    }

    /// Writes an archive (atomically: a directory write is rename-based, an S3 PUT is
    /// atomic).
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<String, Error> {
        match self {
            Target::Dir(d) => {
                std::fs::create_dir_all(d)
                    .map_err(Error::context(format!("cannot create {}", d.display())))?;
                let path = d.join(name);
                crate::node::write_private(&path, &bytes)
                    .map_err(Error::context(format!("cannot write {}", path.display())))?;
            }
            Target::S3 { store, .. } => {
                store
                    .put(&self.key(name), bytes.into())
                    .await
                    .map_err(Error::context(format!(
                        "cannot write {}",
                        self.location(name)
                    )))?;
            }
        }
        Ok(self.location(name))
    }

    /// The archive names (`*.srbk`), oldest first (names carry their creation time).
    pub async fn list(&self) -> Result<Vec<String>, Error> {
        let mut names: Vec<String> = match self {
            Target::Dir(d) => std::fs::read_dir(d)
                .map_err(Error::context(format!("cannot read {}", d.display())))?
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .collect(),
            Target::S3 { store, prefix, .. } => {
                let p = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.as_str()));
                store
                    .list_with_delimiter(p.as_ref())
                    .await
                    .map_err(Error::context("cannot list the backups"))?
                    .objects
                    .into_iter()
                    .filter_map(|o| o.location.filename().map(String::from))
                    .collect()
            }
        };
        names.retain(|n| n.ends_with(".srbk"));
        names.sort();
        Ok(names)
    }

    /// Reads an archive by name.
    pub async fn get(&self, name: &str) -> Result<Vec<u8>, Error> {
        match self {
            Target::Dir(d) => {
                let path = d.join(name);
                std::fs::read(&path)
                    .map_err(Error::context(format!("cannot read {}", path.display())))
            }
            Target::S3 { store, .. } => Ok(store
                .get(&self.key(name))
                .await
                .map_err(Error::context(format!(
                    "cannot read {}",
                    self.location(name)
                )))?
                .bytes()
                .await
                .map_err(Error::context(format!(
                    "cannot read {}",
                    self.location(name)
                )))?
                .to_vec()),
        }
    }

    /// Deletes an archive by name.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        match self {
            Target::Dir(d) => std::fs::remove_file(d.join(name)).map_err(Error::from),
            Target::S3 { store, .. } => store.delete(&self.key(name)).await.map_err(Error::from),
        }
    }

    /// Keeps the newest `keep` archives.
    pub async fn prune(&self, keep: usize) {
        let names = match self.list().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list old backups");
                return;
            }
        };
        let excess = names.len().saturating_sub(keep);
        for old in names.into_iter().take(excess) {
            if let Err(e) = self.delete(&old).await {
                tracing::warn!(archive = %self.location(&old), error = %e, "cannot remove an old backup");
            }
        }
    }
}

/// Reads one archive given as a file path or as `s3://bucket/key`.
pub async fn read_archive(location: &str) -> Result<Vec<u8>, Error> {
    if let Some((bucket, key)) = split_s3(location) {
        let (prefix, name) = match key.rsplit_once('/') {
            Some((p, n)) => (p.to_string(), n.to_string()),
            None => (String::new(), key),
        };
        let t = Target::S3 {
            store: s3_store(&bucket)?,
            bucket,
            prefix,
        };
        return t.get(&name).await;
    }
    let path = Path::new(location);
    std::fs::read(path).map_err(Error::context(format!("cannot read {}", path.display())))
}

#[async_trait::async_trait]
impl strongroom_service::backups::BackupCatalog for Target {
    async fn names(&self) -> std::io::Result<Vec<String>> {
        if let Target::Dir(d) = self {
            if !d.exists() {
                return Ok(vec![]); // no backup written yet
            }
        }
        self.list()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Writes one archive of the keystore (or of one instance, `only`) to `target` and returns
/// where it went, with its summary: `backup create` and the server's daily job.
pub async fn write_backup(
    store: &dyn strongroom_keystore::KeyStore,
    target: &crate::backup_target::Target,
    only: Option<strongroom_model::InstanceId>,
    key: Option<&ArchiveKey>,
) -> Result<(String, strongroom_service::backup::ArchiveSummary), Error> {
    let p = strongroom_crypto_awslc::AwsLcProvider;
    let now = crate::cli::now_ms();
    let (bytes, sum) = strongroom_service::backup::export_archive(
        store,
        &p,
        only,
        strongroom_model::UnixMillis(now),
        key,
    )
    .await?;
    let name = match only {
        Some(i) => format!("strongroom-backup-{now}-{i}.srbk"),
        None => format!("strongroom-backup-{now}.srbk"),
    };
    let location = target.put(&name, bytes).await?;
    Ok((location, sum))
}
