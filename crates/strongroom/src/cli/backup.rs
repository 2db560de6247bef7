//! `strongroom backup`: archives of the keystore (create, list, verify, restore).

use super::*;
use crate::error::Error;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The node's data directory (its SQLite keystore, unless --keystore-url is given).
    #[arg(
        long,
        env = "STRONGROOM_DATA_DIR",
        default_value = "./strongroom-data",
        global = true
    )]
    data_dir: PathBuf,
    /// The node's PostgreSQL keystore, when it runs on one.
    #[arg(
        long,
        env = "STRONGROOM_KEYSTORE_URL",
        hide_env_values = true,
        global = true
    )]
    keystore_url: Option<String>,
    /// A file of at least 32 secret bytes, kept apart from the archives: `create` adds an
    /// authentication code made with it to the archive (creating the file with 32 random
    /// bytes if absent), and `verify`, `list` and `restore` then refuse an archive without
    /// the right code, so that whoever can write to the backup store cannot plant API
    /// keys, roles or KMIP certificates for a restore to bring back. The checksum alone
    /// only finds damage. The same file as `serve --backup-key-file`.
    #[arg(long, env = "STRONGROOM_BACKUP_KEY_FILE", global = true)]
    backup_key_file: Option<PathBuf>,
    #[arg(long, value_enum, global = true, default_value = "human")]
    output: Output,
    #[command(subcommand)]
    cmd: BackupCmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum BackupCmd {
    /// Write a consistent, versioned, checksummed archive of the keystore (the whole node, or
    /// one instance) into DIR. The server may keep running.
    Create {
        /// Directory for the archive, or s3://bucket/prefix (S3-compatible store; AWS_*
        /// credentials, STRONGROOM_S3_ENDPOINT for a non-AWS store).
        #[arg(long)]
        dir: String,
        /// Only this instance.
        #[arg(long)]
        instance: Option<String>,
    },
    /// List the archives in DIR, checking each.
    List {
        /// Directory, or s3://bucket/prefix.
        #[arg(long)]
        dir: String,
    },
    /// Check an archive's checksum, format version and record count, and with
    /// --backup-key-file its authentication code.
    Verify {
        /// Archive file, or s3://bucket/key.
        file: String,
    },
    /// Restore an archive into an empty keystore (a fresh node). Load the same master keys
    /// (unit files, or the ceremony) before serving.
    Restore {
        /// Archive file, or s3://bucket/key.
        file: String,
    },
}

pub(crate) async fn open_keystore(
    data_dir: &std::path::Path,
    url: &Option<String>,
) -> Result<Arc<dyn strongroom_keystore::KeyStore>, Error> {
    Ok(match url {
        Some(u) => Arc::new(
            strongroom_keystore_postgres::PgStore::connect(u, &Default::default())
                .await
                .map_err(Error::context("cannot open the PostgreSQL keystore"))?,
        ),
        None => {
            std::fs::create_dir_all(data_dir).map_err(Error::context(format!(
                "cannot create {}",
                data_dir.display()
            )))?;
            let db = data_dir.join("keystore.db");
            Arc::new(
                strongroom_keystore_sqlite::SqliteStore::open(&db)
                    .await
                    .map_err(Error::context(format!("cannot open {}", db.display())))?,
            )
        }
    })
}

pub(crate) fn summary_json(s: &strongroom_service::backup::ArchiveSummary) -> Value {
    json!({"created_at": s.created_at, "instances": s.instances, "keys": s.keys, "versions": s.versions, "other_records": s.other, "authenticity": s.authenticity.code()})
}

/// What a reader should know of an archive's origin, for the human output.
fn origin(s: &strongroom_service::backup::ArchiveSummary) -> &'static str {
    use strongroom_service::backup::Authenticity::*;
    match s.authenticity {
        Verified => "authenticated by the backup key",
        NotChecked => "carries an authentication code, not checked (no --backup-key-file)",
        Unauthenticated => "not authenticated (written without a backup key; the checksum finds damage, not changes)",
    }
}

/// When an archive was written, and how long ago: restoring an archive older than the one
/// expected is what a rollback looks like, so every reader's output says it.
fn written(created_at: i64, now_ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(created_at) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{created_at} ms"));
    let age = now_ms.saturating_sub(created_at) / 1000;
    let ago = match age {
        a if a < 0 => "in the future by this machine's clock".to_string(),
        a if a < 120 => format!("{a} s ago"),
        a if a < 2 * 3600 => format!("{} min ago", a / 60),
        a if a < 2 * 86_400 => format!("{} h ago", a / 3600),
        a => format!("{} days ago", a / 86_400),
    };
    format!("written {at}, {ago}")
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub async fn backup(a: BackupArgs) -> Result<(), Error> {
    let p = strongroom_crypto_awslc::AwsLcProvider;
    let creating = matches!(a.cmd, BackupCmd::Create { .. });
    let new_key_file = a
        .backup_key_file
        .as_ref()
        .filter(|f| creating && !f.exists());
    let key = crate::backup_target::archive_key(a.backup_key_file.as_deref(), creating)?;
    if let Some(f) = new_key_file {
        eprintln!(
            "created a new backup key file {}: keep a copy apart from the archives; a restore needs it",
            f.display()
        );
    }
    let key = key.as_ref();
    match a.cmd {
        BackupCmd::Create { dir, instance } => {
            let only = instance
                .map(|i| {
                    i.parse()
                        .map_err(|_| Error::usage(format!("'{i}' is not an instance id")))
                })
                .transpose()?;
            let store = open_keystore(&a.data_dir, &a.keystore_url).await?;
            let started = std::time::Instant::now();
            let target = crate::backup_target::Target::parse(&dir)?;
            let (path, sum) =
                crate::backup_target::write_backup(store.as_ref(), &target, only, key).await?;
            let mut v = summary_json(&sum);
            v["file"] = json!(path);
            v["seconds"] = json!(started.elapsed().as_secs_f64());
            print(
                a.output,
                format!(
                    "wrote {} ({} instances, {} keys, {} versions) in {:.1} s; {}",
                    path,
                    sum.instances,
                    sum.keys,
                    sum.versions,
                    started.elapsed().as_secs_f64(),
                    origin(&sum)
                ),
                &v,
            );
        }
        BackupCmd::List { dir } => {
            let target = crate::backup_target::Target::parse(&dir)?;
            let mut rows = Vec::new();
            for name in target.list().await? {
                let bytes = target.get(&name).await?;
                let mut v = match strongroom_service::backup::verify_archive(&bytes, &p, key) {
                    Ok(s) => summary_json(&s),
                    Err(err) => json!({"error": err.message}),
                };
                v["file"] = json!(target.location(&name));
                rows.push(v);
            }
            let human = rows
                .iter()
                .map(|r| match r.get("error") {
                    Some(err) => format!(
                        "{}  DAMAGED: {}",
                        r["file"].as_str().unwrap_or(""),
                        err.as_str().unwrap_or("")
                    ),
                    None => format!(
                        "{}  {} keys, {} versions, {}, {}",
                        r["file"].as_str().unwrap_or(""),
                        r["keys"],
                        r["versions"],
                        written(r["created_at"].as_i64().unwrap_or(0), now_ms()),
                        r["authenticity"].as_str().unwrap_or("")
                    ),
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(
                a.output,
                if human.is_empty() {
                    "no archives".into()
                } else {
                    human
                },
                &Value::Array(rows),
            );
        }
        BackupCmd::Verify { file } => {
            let bytes = crate::backup_target::read_archive(&file).await?;
            let sum = strongroom_service::backup::verify_archive(&bytes, &p, key)
                .map_err(|e| Error::other(format!("{file}: {}", e.message)))?;
            print(
                a.output,
                format!(
                    "{} is intact: {} instances, {} keys, {} versions; {}; {}",
                    file,
                    sum.instances,
                    sum.keys,
                    sum.versions,
                    written(sum.created_at, now_ms()),
                    origin(&sum)
                ),
                &summary_json(&sum),
            );
        }
        BackupCmd::Restore { file } => {
            let bytes = crate::backup_target::read_archive(&file).await?;
            strongroom_service::backup::verify_archive(&bytes, &p, key)
                .map_err(|e| Error::other(format!("{file}: {}", e.message)))?;
            let store = open_keystore(&a.data_dir, &a.keystore_url).await?;
            let started = std::time::Instant::now();
            let sum = strongroom_service::backup::restore_archive(store.as_ref(), &bytes, &p, key)
                .await?;
            let seconds = started.elapsed().as_secs_f64();
            let (ready, waiting) = served_here(&a.data_dir, store.as_ref()).await?;
            let mut v = summary_json(&sum);
            v["seconds"] = json!(seconds);
            v["ready_instances"] = json!(ready.iter().map(|i| i.to_string()).collect::<Vec<_>>());
            v["instances_needing_master_keys"] =
                json!(waiting.iter().map(|i| i.to_string()).collect::<Vec<_>>());
            let next = if waiting.is_empty() {
                "this node's crypto units already hold the master keys of every instance: start the node".to_string()
            } else {
                format!(
                    "load the master keys of {} instance(s) before they serve ({}): strongroom tke cryptounit-mk-load, or auto-mk-recover from a recovery unit",
                    waiting.len(),
                    waiting.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
                )
            };
            print(
                a.output,
                format!(
                    "restored {} instances, {} keys, {} versions in {seconds:.1} s ({}; {}); {next}",
                    sum.instances,
                    sum.keys,
                    sum.versions,
                    written(sum.created_at, now_ms()),
                    origin(&sum)
                ),
                &v,
            );
        }
    }
    Ok(())
}

/// The instances of `store` this node can serve at once, and those that wait for their
/// master key. An instance is ready when one of this node's operational crypto units holds,
/// as its current key, the master key that every key version of the instance is sealed
/// under. Unit files this command cannot open (sealed under a unit passphrase, or under
/// another node's key) count as not holding the key.
async fn served_here(
    data_dir: &std::path::Path,
    store: &dyn strongroom_keystore::KeyStore,
) -> Result<
    (
        Vec<strongroom_model::InstanceId>,
        Vec<strongroom_model::InstanceId>,
    ),
    Error,
> {
    use strongroom_engine::admin::{UnitKind, UnitState};
    use strongroom_service::UnitVault as _;
    let provider: Arc<dyn strongroom_engine::CryptoProvider> =
        Arc::new(strongroom_crypto_awslc::AwsLcProvider);
    let mut held = Vec::new();
    if data_dir.join("units").is_dir() {
        if let Ok(node_key) = crate::node::NodeFiles::load_key(data_dir) {
            let vault =
                crate::node::FileVault::new(data_dir, &node_key, None, Arc::clone(&provider))?;
            for bytes in vault.load_all().await.unwrap_or_default() {
                if let Ok(u) = UnitState::from_persisted(provider.as_ref(), &bytes) {
                    if u.kind() == UnitKind::Operational {
                        if let Some(vp) = u.current_vp() {
                            held.push((u.instance(), vp.mk_id().0));
                        }
                    }
                }
            }
        }
    }
    let (mut ready, mut waiting) = (Vec::new(), Vec::new());
    for rec in store.list_instances().await? {
        let mut serves = false;
        for (_, mk) in held.iter().filter(|(i, _)| *i == rec.id) {
            if store.count_versions_not_under(rec.id, mk).await? == 0 {
                serves = true;
                break;
            }
        }
        if serves {
            ready.push(rec.id);
        } else {
            waiting.push(rec.id);
        }
    }
    Ok((ready, waiting))
}

#[cfg(test)]
mod tests {
    use super::written;

    #[test]
    fn an_archive_says_when_it_was_written_and_how_long_ago() {
        let at = 1_796_688_000_000; // 2026-12-08T00:00:00Z
        assert_eq!(
            written(at, at + 5_000),
            "written 2026-12-08T00:00:00Z, 5 s ago"
        );
        assert_eq!(
            written(at, at + 90 * 60_000),
            "written 2026-12-08T00:00:00Z, 90 min ago"
        );
        assert_eq!(
            written(at, at + 30 * 3_600_000),
            "written 2026-12-08T00:00:00Z, 30 h ago"
        );
        assert_eq!(
            written(at, at + 6 * 86_400_000),
            "written 2026-12-08T00:00:00Z, 6 days ago"
        );
        assert_eq!(
            written(at, at - 60_000),
            "written 2026-12-08T00:00:00Z, in the future by this machine's clock"
        );
    }
}
